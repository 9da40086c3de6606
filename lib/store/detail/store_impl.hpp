#pragma once

// What a SqliteJobStore holds, shared by its two source files: sqlite_job_store.cpp (opening,
// buffering, commits, retention) and sqlite_job_store_reads.cpp (what it reads back). Included
// by those alone.

#include <sys/types.h>

#include <optional>
#include <utility>
#include <vector>

#include "store/detail/pending_rows.hpp"
#include "store/detail/statements.hpp"
#include "store/sqlite_database.hpp"
#include "store/sqlite_job_store.hpp"

namespace vapor::store {

struct SqliteJobStore::Impl {
  Impl(const StoreOptions& store_options, Database database)
      : options(store_options), db(std::move(database)) {}

  StoreOptions options;
  Database db;  // declared before the statements: they must be finalized first
  std::optional<detail::CachedStatements> statements;

  // The buffer, in the order flush() writes it: jobs, then points, then transitions.
  std::vector<NewJob> jobs;
  detail::PendingRows pending;

  FailureKind last_failure = FailureKind::transient;
  /// The database file's device and inode once open (none in memory): a flush first checks that
  /// the path still names it, so a file deleted or replaced under vapord does not go unnoticed.
  std::optional<std::pair<dev_t, ino_t>> file_identity;
};

}  // namespace vapor::store
