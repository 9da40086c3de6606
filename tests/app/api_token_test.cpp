#include "app/api_token.hpp"

#include <sys/stat.h>

#include <gtest/gtest.h>

#include "support/daemon_process.hpp"

namespace vapor::app {
namespace {

using testing::TempDir;

TEST(ApiToken, CreatedOnceWithMode0600AndReusedAfterwards) {
  TempDir dir;
  auto created = load_api_token(std::nullopt, dir.path());
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->path, dir / "api-token");
  EXPECT_EQ(created->token.size(), 64u);
  struct stat st {};
  ASSERT_EQ(::stat(created->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto again = load_api_token(std::nullopt, dir.path());
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->token, created->token);
  EXPECT_NE(load_api_token(std::nullopt, TempDir().path())->token, created->token);
}

TEST(ApiToken, ConfiguredFileIsReadAndTrimmed) {
  TempDir dir;
  testing::write_file(dir / "token", "  s3cret-token-value-123\n");
  ::chmod((dir / "token").c_str(), 0600);
  auto token = load_api_token(dir / "token", dir.path());
  ASSERT_TRUE(token) << token.error().message;
  EXPECT_EQ(token->token, "s3cret-token-value-123");
}

TEST(ApiToken, RefusesFilesOthersCanReadShortTokensAndSymlinks) {
  TempDir dir;
  testing::write_file(dir / "shared", "s3cret-token-value-123\n");
  ::chmod((dir / "shared").c_str(), 0644);
  auto shared = load_api_token(dir / "shared", dir.path());
  ASSERT_FALSE(shared);
  EXPECT_NE(shared.error().message.find("chmod 600"), std::string::npos) << shared.error().message;

  testing::write_file(dir / "short", "abc\n");
  ::chmod((dir / "short").c_str(), 0600);
  auto short_token = load_api_token(dir / "short", dir.path());
  ASSERT_FALSE(short_token);
  EXPECT_NE(short_token.error().message.find("at least 16"), std::string::npos);

  std::filesystem::create_symlink(dir / "short", dir / "link");
  EXPECT_FALSE(load_api_token(dir / "link", dir.path()));
  EXPECT_FALSE(load_api_token(dir / "missing", dir.path()));
}

}  // namespace
}  // namespace vapor::app
