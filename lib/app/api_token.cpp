#include "app/api_token.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "support/secret_token.hpp"

namespace vapor::app {
namespace {

std::string trim(std::string text) {
  const auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

Result<std::string> read_token(const std::filesystem::path& path) {
  // Check the file we actually read (fstat on the open descriptor), not a path that could be
  // swapped in between; never follow a symlink planted in its place.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return fail("api token file " + path.string() + ": " + std::strerror(errno));
  struct stat st {};
  const bool stat_ok = ::fstat(fd, &st) == 0;
  std::string text;
  if (stat_ok && S_ISREG(st.st_mode) && (st.st_mode & (S_IRWXG | S_IRWXO)) == 0 &&
      st.st_uid == ::geteuid()) {
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0 && text.size() < 64 * 1024) {
      text.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    return fail("api token file " + path.string() + " is not a regular file");
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return fail("api token file " + path.string() + " can be read by other users; chmod 600 it");
  }
  if (st.st_uid != ::geteuid()) {
    return fail("api token file " + path.string() + " belongs to another user; chown it to " +
                "the user vapord runs as");
  }
  auto token = trim(std::move(text));
  if (token.size() < 16) {
    return fail("api token file " + path.string() + " holds " + std::to_string(token.size()) +
                " characters; a token needs at least 16");
  }
  return Result<std::string>(boost::system::in_place_value, std::move(token));
}

Result<std::string> create_token(const std::filesystem::path& path) {
  auto generated = random_token();
  if (!generated) return fail("cannot generate an api token: " + generated.error().message);
  const std::string token = std::move(*generated);
  // Write a temp file completely, then link it into place: a crash never leaves an empty
  // token file behind, and two starts never both win.
  const auto temporary = path.string() + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return fail("cannot create api token file " + temporary + ": " + std::strerror(errno));
  const std::string line = token + "\n";
  const bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  const bool linked = written && ::link(temporary.c_str(), path.c_str()) == 0;
  const int link_errno = errno;
  ::unlink(temporary.c_str());
  if (!linked) {
    return fail("cannot create api token file " + path.string() + ": " +
                std::strerror(written ? link_errno : EIO));
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
