#include "store/schema.hpp"

#include <algorithm>
#include <iterator>
#include <string>
#include <string_view>

#include "store/detail/sql_values.hpp"

namespace vapor::store {
namespace {

using detail::while_doing;

/// One schema step: applied in its own transaction when the file's `user_version` is below it.
struct Migration {
  int version;
  std::string_view sql;
};

constexpr Migration migrations[] = {
    {1,
     "CREATE TABLE jobs("
     "  id INTEGER PRIMARY KEY,"
     "  name TEXT NOT NULL UNIQUE,"
     "  spec_json TEXT NOT NULL,"
     "  state TEXT NOT NULL DEFAULT 'queued',"
     "  step INTEGER NOT NULL DEFAULT 0,"
     "  created_at INTEGER NOT NULL,"
     "  started_at INTEGER,"
     "  finished_at INTEGER);"
     "CREATE TABLE points("
     "  job_id INTEGER NOT NULL REFERENCES jobs(id),"
     "  step INTEGER NOT NULL,"
     "  epoch INTEGER NOT NULL,"
     "  loss REAL,"
     "  accuracy REAL NOT NULL,"
     "  ts INTEGER NOT NULL,"
     "  PRIMARY KEY(job_id, step)) WITHOUT ROWID;"
     "CREATE TABLE transitions("
     "  id INTEGER PRIMARY KEY,"
     "  job_id INTEGER NOT NULL REFERENCES jobs(id),"
     "  from_state TEXT NOT NULL,"
     "  to_state TEXT NOT NULL,"
     "  ts INTEGER NOT NULL);"},
    {2,
     "ALTER TABLE jobs ADD COLUMN reason TEXT NOT NULL DEFAULT '';"
     "ALTER TABLE transitions ADD COLUMN reason TEXT NOT NULL DEFAULT '';"
     "CREATE INDEX transitions_by_job ON transitions(job_id, id);"},
    // A real job's named scalars, one JSON object per point (store/detail/scalars_column.hpp),
    // and each name's latest value on its job row (what a restart restores); a push job's token,
    // as its SHA-256 in hex; the step a transition followed (where it goes among the points in a
    // replay); whether a user started a manual job that still waits for a slot. Adding a column
    // rewrites nothing: existing rows read it as NULL (or 0).
    {3,
     "ALTER TABLE points ADD COLUMN scalars TEXT;"
     "ALTER TABLE jobs ADD COLUMN scalars TEXT;"
     "ALTER TABLE jobs ADD COLUMN push_token_sha256 TEXT;"
     "ALTER TABLE jobs ADD COLUMN start_requested INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE transitions ADD COLUMN step INTEGER;"},
};

static_assert(std::size(migrations) == current_schema_version,
              "one migration per schema version, in order");

}  // namespace

Result<void> check_existing_database(Database& db) {
  auto check = db.query_text("PRAGMA integrity_check");
  if (!check) return fail(db.last_error("cannot be read as a database"));
  if (*check != "ok") {
    std::string finding = *check;
    std::replace(finding.begin(), finding.end(), '\n', ' ');
    return fail(db.name() + ": the database is corrupt (integrity_check: " + finding + ")");
  }

  auto version = db.query_int("PRAGMA user_version");
  if (!version) return while_doing(version.error(), "reading the schema version");
  if (*version > current_schema_version) {
    return fail(db.name() + ": schema version " + std::to_string(*version) +
                " is newer than this build supports (" + std::to_string(current_schema_version) +
                "); run a newer vapord or point it at another file");
  }
  if (*version < 0) {
    return fail(db.name() + ": unknown schema version " + std::to_string(*version));
  }
  if (*version == 0) {
    auto objects = db.query_int("SELECT count(*) FROM sqlite_schema");
    if (!objects) return while_doing(objects.error(), "reading the schema");
    if (*objects > 0) {
      return fail(db.name() +
                  ": an SQLite database that Vapor did not create (schema version 0 "
                  "with existing tables)");
    }
  }
  return {};
}

Result<void> migrate_schema(Database& db, int target_version) {
  if (target_version < 0 || target_version > current_schema_version) {
    return fail(db.name() + ": no schema version " + std::to_string(target_version) +
                " (this build knows 0 to " + std::to_string(current_schema_version) + ")");
  }
  auto version = db.query_int("PRAGMA user_version");
  if (!version) return while_doing(version.error(), "reading the schema version");
  if (*version > target_version) {
    return fail(db.name() + ": schema version " + std::to_string(*version) +
                " is newer than the requested version " + std::to_string(target_version));
  }

  for (const Migration& migration : migrations) {
    if (migration.version <= *version || migration.version > target_version) continue;
    const std::string doing = "migrating the schema to version " +
                              std::to_string(migration.version) +
                              "; that migration was rolled back";
    auto transaction = Transaction::begin(db);
    if (!transaction) return while_doing(transaction.error(), doing);
    // Re-read under the write lock: another process may have migrated in the meantime.
    auto locked_version = db.query_int("PRAGMA user_version");
    if (!locked_version) return while_doing(locked_version.error(), doing);
    if (*locked_version >= migration.version) continue;
    if (auto applied = db.exec(migration.sql); !applied) return while_doing(applied.error(), doing);
    if (auto stamped = db.exec("PRAGMA user_version = " + std::to_string(migration.version));
        !stamped) {
      return while_doing(stamped.error(), doing);
    }
    if (auto committed = transaction->commit(); !committed) {
      return while_doing(committed.error(), doing);
    }
  }
  return {};
}

}  // namespace vapor::store
