#include "app/api_token.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace vapor::app {
namespace {

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

Result<std::string> read_token(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fail("api token file " + path.string() + ": " + std::strerror(errno));
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return fail("api token file " + path.string() +
                " can be read by other users; chmod 600 it");
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  auto token = trim(text.str());
  if (!in.good() && !in.eof()) return fail("api token file " + path.string() + ": cannot read");
  if (token.size() < 16) {
    return fail("api token file " + path.string() + " holds " + std::to_string(token.size()) +
                " characters; a token needs at least 16");
  }
  return Result<std::string>(boost::system::in_place_value, std::move(token));
}

Result<std::string> create_token(const std::filesystem::path& path) {
  std::array<unsigned char, 32> random{};
  if (::getrandom(random.data(), random.size(), 0) != static_cast<ssize_t>(random.size())) {
    return fail(std::string("cannot generate an api token: getrandom: ") + std::strerror(errno));
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string token;
  for (const auto byte : random) {
    token += hex[byte >> 4];
    token += hex[byte & 0x0f];
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail("cannot create api token file " + path.string() + ": " + std::strerror(errno));
  const std::string line = token + "\n";
  const auto written = ::write(fd, line.data(), line.size());
  ::close(fd);
  if (written != static_cast<ssize_t>(line.size())) {
    return fail("cannot write api token file " + path.string());
  }
  return Result<std::string>(boost::system::in_place_value, std::move(token));
}

}  // namespace

Result<ApiToken> load_api_token(const std::optional<std::filesystem::path>& configured,
                                const std::filesystem::path& state_dir) {
  if (configured) {
    auto token = read_token(*configured);
    if (!token) return token.error();
    return ApiToken{std::move(*token), *configured, false};
  }
  const auto path = state_dir / "api-token";
  if (std::filesystem::exists(path)) {
    auto token = read_token(path);
    if (!token) return token.error();
    return ApiToken{std::move(*token), path, false};
  }
  auto token = create_token(path);
  if (!token) return token.error();
  return ApiToken{std::move(*token), path, true};
}

}  // namespace vapor::app
