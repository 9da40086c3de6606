#include "config/detail/config_file_reader.hpp"

#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <system_error>

namespace vapor::config::detail {
namespace {

struct FileCloser {
  void operator()(std::FILE* file) const { std::fclose(file); }
};
using FileHandle = std::unique_ptr<std::FILE, FileCloser>;

Parsed<std::string> file_error(const std::filesystem::path& path, std::string message) {
  Parsed<std::string> parsed;
  parsed.errors.push_back(ConfigError{path.string(), 0, 0, "", std::move(message)});
  return parsed;
}

std::string os_reason() { return std::error_code(errno, std::generic_category()).message(); }

}  // namespace

Parsed<std::string> read_config_file(const std::filesystem::path& path, std::size_t max_bytes) {
  const FileHandle file(std::fopen(path.c_str(), "rb"));
  if (!file) return file_error(path, "cannot open: " + os_reason());

  // Refuse a large regular file before reading it; the read below also stops at the limit, for
  // files that grow and for pipes.
  struct stat status {};
  if (::fstat(::fileno(file.get()), &status) == 0 && S_ISREG(status.st_mode) &&
      static_cast<std::uintmax_t>(status.st_size) > max_bytes) {
    return file_error(path, "the file is " + std::to_string(status.st_size) +
                                " bytes, over the limit of " + std::to_string(max_bytes) +
                                " bytes");
  }

  Parsed<std::string> parsed;
  std::array<char, 64 * 1024> buffer{};
  while (true) {
    const std::size_t count = std::fread(buffer.data(), 1, buffer.size(), file.get());
    parsed.value.append(buffer.data(), count);
    if (parsed.value.size() > max_bytes) {
      return file_error(path,
                        "the file is over the limit of " + std::to_string(max_bytes) + " bytes");
    }
    if (count < buffer.size()) break;
  }
  if (std::ferror(file.get()) != 0) {
    return file_error(path, "cannot read: " + os_reason());
  }
  return parsed;
}

}  // namespace vapor::config::detail
