#pragma once

// The database's schema: its versions, the migrations between them, and the checks that keep
// vapord from writing to a file it must not touch.

#include "store/sqlite_database.hpp"
#include "support/result.hpp"

namespace vapor::store {

/// The schema version this build writes (`PRAGMA user_version`).
inline constexpr int current_schema_version = 3;

/// Brings a database up to `target_version` by running each migration in its own transaction
/// (exposed so tests and benchmarks can build old or bare schemas).
Result<void> migrate_schema(Database& db, int target_version);

/// Refuses a file this build must not write to: corrupt, newer, or someone else's database
/// (tables without Vapor's schema version).
Result<void> check_existing_database(Database& db);

}  // namespace vapor::store
