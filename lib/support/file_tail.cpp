#include "support/file_tail.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vapor {

Result<FileTail> read_file_tail(const std::filesystem::path& path,
                                std::optional<std::uint64_t> after_byte, std::size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(path.string() + ": " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    const int error = errno;
    ::close(fd);
    return fail(path.string() + ": " + std::strerror(error));
  }
  FileTail tail;
  tail.size = static_cast<std::uint64_t>(info.st_size);
  std::uint64_t start = after_byte ? std::min(*after_byte, tail.size)
                                   : (tail.size > max_bytes ? tail.size - max_bytes : 0);
  if (tail.size - start > max_bytes) start = tail.size - max_bytes;
  tail.text.resize(static_cast<std::size_t>(tail.size - start));
  std::size_t done = 0;
  while (done < tail.text.size()) {
    const ssize_t got = ::pread(fd, tail.text.data() + done, tail.text.size() - done,
                                static_cast<off_t>(start + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // the file shrank meanwhile: what was read stands
    done += static_cast<std::size_t>(got);
  }
  ::close(fd);
  tail.text.resize(done);
  const auto first = tail.text.find_first_not_of('\0');
  tail.text.erase(0, first == std::string::npos ? tail.text.size() : first);
  return tail;
}

}  // namespace vapor
