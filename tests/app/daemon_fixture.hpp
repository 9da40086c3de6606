#pragma once

// Shared pieces for tests that run vapord on a temp folder and read its SQLite file.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite_database.hpp"
#include "support/daemon_process.hpp"

namespace vapor::testing {

/// A vapord.yaml for tests: fast flushes, the database and queue inside `dir`.
inline std::string test_daemon_config(const TempDir& dir, const std::string& extra = "") {
  return "listen: 127.0.0.1:0\n"
         "database: " + (dir / "vapor.db").string() + "\n"
         "queue: " + (dir / "jobs.yaml").string() + "\n"
         "scheduler:\n  max_concurrent: 2\n  step_interval: 5ms\n  stall_timeout: 5s\n"
         "store:\n  flush_interval: 50ms\n" + extra;
}

struct JobRow {
  std::string state;
  std::string reason;
  std::int64_t step = 0;
  bool operator==(const JobRow&) const = default;
};

/// name → job row, read through a read-only connection (the daemon may be writing).
inline std::map<std::string, JobRow> read_jobs(const std::filesystem::path& db_path) {
  std::map<std::string, JobRow> jobs;
  if (!std::filesystem::exists(db_path)) return jobs;
  auto db = store::Database::open(db_path, store::Database::Mode::read_only);
  if (!db) {
    ADD_FAILURE() << db.error().message;
    return jobs;
  }
  // The daemon may be committing (or recovering its WAL after a kill): wait, do not fail.
  if (auto set = db->exec("PRAGMA busy_timeout = 5000"); !set) ADD_FAILURE() << set.error().message;
  auto statement = store::Statement::prepare(*db, "SELECT name, state, reason, step FROM jobs");
  if (!statement) {
    // A database the daemon has not finished creating yet has no jobs table.
    return jobs;
  }
  while (true) {
    auto row = statement->step();
    if (!row) {
      ADD_FAILURE() << row.error().message;
      break;
    }
    if (!*row) break;
    jobs[statement->column_text(0)] = {statement->column_text(1), statement->column_text(2),
                                       statement->column_int(3)};
  }
  return jobs;
}

/// Polls the database until every one of `expected` jobs is finished, or `timeout` passes.
inline bool wait_all_finished(const std::filesystem::path& db_path, std::size_t expected,
                              std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto jobs = read_jobs(db_path);
    std::size_t finished = 0;
    for (const auto& [name, row] : jobs) {
      if (row.state == "complete" || row.state == "failed" || row.state == "stopped") ++finished;
    }
    if (jobs.size() == expected && finished == expected) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

/// Sum of committed steps over all jobs.
inline std::int64_t committed_steps(const std::filesystem::path& db_path) {
  std::int64_t total = 0;
  for (const auto& [name, row] : read_jobs(db_path)) total += row.step;
  return total;
}

/// Polls `predicate` every 20 ms until it holds or `timeout` passes.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

}  // namespace vapor::testing
