#pragma once

// Reading the end of a growing file (a command job's log), blocking: for a worker thread, never
// the event loop.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "support/result.hpp"

namespace vapor {

struct FileTail {
  std::string text;       ///< the bytes read
  std::uint64_t size = 0;  ///< the file's size when read: the offset to continue from
};

/// The bytes of `path` from `after_byte` on (or the last `max_bytes` when `after_byte` is not
/// given), at most `max_bytes`, the newest kept. Leading NUL bytes (a head given back to the
/// file system, which reads as zeros) are dropped. A missing file is an error naming it.
[[nodiscard]] Result<FileTail> read_file_tail(const std::filesystem::path& path,
                                              std::optional<std::uint64_t> after_byte,
                                              std::size_t max_bytes);

}  // namespace vapor
