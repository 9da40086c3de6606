#pragma once

#include <string_view>

namespace vapor::log {

/// syslog priorities, as journald reads them from a `<N>` line prefix.
enum class Level { error = 3, warning = 4, notice = 5, info = 6, debug = 7 };

/// Writes one line to stderr. Under systemd (JOURNAL_STREAM names our stderr) the line starts with
/// `<N>` so journald records its priority; elsewhere it starts with a UTC timestamp and the level.
/// Lines are written with one write(2) each, so concurrent writers never interleave inside a line.
void write(Level level, std::string_view message);

inline void error(std::string_view message) { write(Level::error, message); }
inline void warning(std::string_view message) { write(Level::warning, message); }
inline void notice(std::string_view message) { write(Level::notice, message); }
inline void info(std::string_view message) { write(Level::info, message); }

/// Suppresses lines above `level` (default: info).
void set_max_level(Level level);

}  // namespace vapor::log
