#include "store/sqlite_job_store.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace vapor::store {
namespace {

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
};

static_assert(std::size(migrations) == current_schema_version,
              "one migration per schema version, in order");

constexpr std::string_view insert_job_sql =
    "INSERT INTO jobs(id, name, spec_json, created_at) VALUES(?1, ?2, ?3, ?4)";
// REPLACE: a step re-run after a crash overwrites its point instead of failing or duplicating.
constexpr std::string_view upsert_point_sql =
    "INSERT OR REPLACE INTO points(job_id, step, epoch, loss, accuracy, ts)"
    " VALUES(?1, ?2, ?3, ?4, ?5, ?6)";
constexpr std::string_view insert_transition_sql =
    "INSERT INTO transitions(job_id, from_state, to_state, reason, ts) VALUES(?1, ?2, ?3, ?4, ?5)";
constexpr std::string_view apply_transition_sql =
    "UPDATE jobs SET state = ?2, reason = ?3,"
    " started_at = CASE WHEN ?2 = 'running' THEN coalesce(started_at, ?4) ELSE started_at END,"
    " finished_at = CASE WHEN ?5 THEN ?4 ELSE finished_at END"
    " WHERE id = ?1";
constexpr std::string_view update_step_sql = "UPDATE jobs SET step = max(step, ?2) WHERE id = ?1";
constexpr std::string_view select_jobs_sql =
    "SELECT id, name, spec_json, state, reason, step, created_at, started_at, finished_at"
    " FROM jobs ORDER BY id";
constexpr std::string_view select_points_sql =
    "SELECT step, epoch, loss, accuracy, ts FROM points"
    " WHERE job_id = ?1 AND step > ?2 ORDER BY step LIMIT ?3";
// Downsampling: ?1 job, ?2 after_step, ?3 up_to_step, ?4 bucket width in steps. `buckets` counts
// off the lower bound of each bucket; for each one a correlated subquery scans that bucket's step
// range on the primary key and keeps the step of its min (then max) loss. SQLite documents that a
// bare column next to a lone min()/max() comes from the row holding that extreme; min() skips
// NULL (NaN) losses, and max() ranks them as +inf through ifnull so a NaN point survives. UNION
// drops the step of a bucket whose min and max are one row, and the NULL of an empty bucket
// matches nothing in the join. One range scan per bucket avoids the temp B-tree (a sort of
// every row) that a GROUP BY over a computed bucket would need: about 4x faster on 1M points.
constexpr std::string_view select_points_downsampled_sql =
    "WITH RECURSIVE buckets(low) AS ("
    "  SELECT ?2 UNION ALL SELECT low + ?4 FROM buckets WHERE low + ?4 < ?3),"
    " picked(step) AS ("
    "  SELECT (SELECT step FROM (SELECT min(loss), step FROM points"
    "          WHERE job_id = ?1 AND step > low AND step <= min(low + ?4, ?3))) FROM buckets"
    "  UNION"
    "  SELECT (SELECT step FROM (SELECT max(ifnull(loss, 9e999)), step FROM points"
    "          WHERE job_id = ?1 AND step > low AND step <= min(low + ?4, ?3))) FROM buckets)"
    " SELECT p.step, p.epoch, p.loss, p.accuracy, p.ts"
    " FROM picked JOIN points AS p ON p.job_id = ?1 AND p.step = picked.step"
    " ORDER BY p.step";
constexpr std::string_view select_prunable_job_sql =
    "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?1"
    " AND EXISTS (SELECT 1 FROM points WHERE job_id = jobs.id) ORDER BY id LIMIT 1";
// The oldest steps first, on the primary key: a pass never sorts more than `?2` rows.
constexpr std::string_view prune_points_sql =
    "DELETE FROM points WHERE job_id = ?1 AND step IN"
    " (SELECT step FROM points WHERE job_id = ?1 ORDER BY step LIMIT ?2)";
constexpr std::string_view select_transitions_sql =
    "SELECT from_state, to_state, reason, ts FROM transitions WHERE job_id = ?1 ORDER BY id";

/// Above this many buffered points the buffer's memory is given back after a flush, so that one
/// backlog does not pin its peak allocation for the rest of the process's life.
constexpr std::size_t retained_point_capacity = 65'536;

std::int64_t to_millis(core::WallTime time) {
  return std::chrono::floor<std::chrono::milliseconds>(time.time_since_epoch()).count();
}

core::WallTime from_millis(std::int64_t millis) {
  return core::WallTime(std::chrono::milliseconds(millis));
}

std::int64_t to_sql_int(std::uint64_t value) {
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(std::min(value, max));
}

std::uint64_t from_sql_uint(std::int64_t value) {
  return value < 0 ? 0 : static_cast<std::uint64_t>(value);
}

std::string_view synchronous_pragma(Synchronous level) {
  switch (level) {
    case Synchronous::off: return "PRAGMA synchronous = OFF";
    case Synchronous::normal: return "PRAGMA synchronous = NORMAL";
    case Synchronous::full: return "PRAGMA synchronous = FULL";
    case Synchronous::extra: return "PRAGMA synchronous = EXTRA";
  }
  return "PRAGMA synchronous = FULL";
}

/// Appends what was being done to an error: "<file>: <sqlite message> (while ...)".
Error while_doing(const Error& error, std::string_view what) {
  return fail(error.message + " (while " + std::string(what) + ")");
}

/// For errors found before Vapor wrote anything to an existing file.
Error left_untouched(const Error& error) {
  return fail(error.message + "; the file was left untouched");
}

/// Resets a statement when a read loop ends, however it ends.
class ResetOnExit {
 public:
  explicit ResetOnExit(Statement& statement) : statement_(statement) {}
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;
  ~ResetOnExit() { statement_.reset(); }

 private:
  Statement& statement_;
};

struct PendingPoint {
  core::JobId job_id;
  std::uint64_t step;
  std::uint64_t epoch;
  double loss;
  double accuracy;
  std::int64_t ts_millis;
};

struct PendingTransition {
  core::JobId job_id;
  core::JobState from;
  core::JobState to;
  std::string reason;
  std::int64_t ts_millis;
};

StoredPoint to_stored(const PendingPoint& pending) {
  return StoredPoint{pending.job_id, pending.step,     pending.epoch,
                     pending.loss,   pending.accuracy, from_millis(pending.ts_millis)};
}

/// The buffered points of `job_id` with `after_step` < step <= `up_to_step`, ascending by step;
/// of a step recorded twice, the later recording (the one the flush's REPLACE keeps).
std::vector<StoredPoint> buffered_points(const std::vector<PendingPoint>& buffer,
                                         core::JobId job_id, std::uint64_t after_step,
                                         std::uint64_t up_to_step) {
  std::vector<StoredPoint> points;
  for (const PendingPoint& pending : buffer) {
    if (pending.job_id == job_id && pending.step > after_step && pending.step <= up_to_step) {
      points.push_back(to_stored(pending));
    }
  }
  // Stable: equal steps keep buffer order, so the last of each run is the latest recording.
  std::stable_sort(points.begin(), points.end(),
                   [](const StoredPoint& a, const StoredPoint& b) { return a.step < b.step; });
  std::vector<StoredPoint> unique;
  unique.reserve(points.size());
  for (const StoredPoint& point : points) {
    if (!unique.empty() && unique.back().step == point.step) {
      unique.back() = point;
    } else {
      unique.push_back(point);
    }
  }
  return unique;
}

/// Two ascending point lists as one, ascending and without duplicate steps (`buffered` wins a
/// tie), cut at `limit`.
std::vector<StoredPoint> merge_points(std::vector<StoredPoint> committed,
                                      const std::vector<StoredPoint>& buffered,
                                      std::size_t limit) {
  if (buffered.empty()) {
    if (committed.size() > limit) committed.resize(limit);
    return committed;
  }
  std::vector<StoredPoint> merged;
  merged.reserve(std::min(limit, committed.size() + buffered.size()));
  auto from_store = committed.begin();
  auto from_buffer = buffered.begin();
  while (merged.size() < limit &&
         (from_store != committed.end() || from_buffer != buffered.end())) {
    if (from_buffer == buffered.end() ||
        (from_store != committed.end() && from_store->step < from_buffer->step)) {
      merged.push_back(*from_store++);
      continue;
    }
    if (from_store != committed.end() && from_store->step == from_buffer->step) ++from_store;
    merged.push_back(*from_buffer++);
  }
  return merged;
}

/// Orders losses for the downsampling's minimum: NaN never wins unless nothing else is there.
bool lower_loss(double a, double b) {
  if (std::isnan(b)) return !std::isnan(a);
  return !std::isnan(a) && a < b;
}

/// Orders losses for the downsampling's maximum: NaN ranks with +inf, above every number.
bool higher_loss(double a, double b) {
  const double infinity = std::numeric_limits<double>::infinity();
  return (std::isnan(a) ? infinity : a) > (std::isnan(b) ? infinity : b);
}

/// Keeps the lowest- and highest-loss point of each bucket of `points` (ascending by step),
/// ascending and without duplicates. Buckets are `width` steps wide starting after `after_step`.
std::vector<StoredPoint> extremes_per_bucket(const std::vector<StoredPoint>& points,
                                             std::uint64_t after_step, std::uint64_t width) {
  std::vector<StoredPoint> kept;
  std::size_t begin = 0;
  while (begin < points.size()) {
    const std::uint64_t bucket = (points[begin].step - after_step - 1) / width;
    std::size_t end = begin;
    std::size_t lowest = begin;
    std::size_t highest = begin;
    while (end < points.size() && (points[end].step - after_step - 1) / width == bucket) {
      if (lower_loss(points[end].loss, points[lowest].loss)) lowest = end;
      if (higher_loss(points[end].loss, points[highest].loss)) highest = end;
      ++end;
    }
    kept.push_back(points[std::min(lowest, highest)]);
    if (lowest != highest) kept.push_back(points[std::max(lowest, highest)]);
    begin = end;
  }
  return kept;
}

/// The statements a store reuses for its whole life.
struct CachedStatements {
  Statement insert_job;
  Statement upsert_point;
  Statement insert_transition;
  Statement apply_transition;
  Statement update_step;
  Statement select_jobs;
  Statement select_points;
  Statement select_points_downsampled;
  Statement select_transitions;
  Statement select_prunable_job;
  Statement prune_points;

  static Result<CachedStatements> prepare(Database& db) {
    auto insert_job = Statement::prepare(db, insert_job_sql);
    if (!insert_job) return insert_job.error();
    auto upsert_point = Statement::prepare(db, upsert_point_sql);
    if (!upsert_point) return upsert_point.error();
    auto insert_transition = Statement::prepare(db, insert_transition_sql);
    if (!insert_transition) return insert_transition.error();
    auto apply_transition = Statement::prepare(db, apply_transition_sql);
    if (!apply_transition) return apply_transition.error();
    auto update_step = Statement::prepare(db, update_step_sql);
    if (!update_step) return update_step.error();
    auto select_jobs = Statement::prepare(db, select_jobs_sql);
    if (!select_jobs) return select_jobs.error();
    auto select_points = Statement::prepare(db, select_points_sql);
    if (!select_points) return select_points.error();
    auto select_points_downsampled = Statement::prepare(db, select_points_downsampled_sql);
    if (!select_points_downsampled) return select_points_downsampled.error();
    auto select_transitions = Statement::prepare(db, select_transitions_sql);
    if (!select_transitions) return select_transitions.error();
    auto select_prunable_job = Statement::prepare(db, select_prunable_job_sql);
    if (!select_prunable_job) return select_prunable_job.error();
    auto prune_points = Statement::prepare(db, prune_points_sql);
    if (!prune_points) return prune_points.error();
    return CachedStatements{std::move(*insert_job),
                            std::move(*upsert_point),
                            std::move(*insert_transition),
                            std::move(*apply_transition),
                            std::move(*update_step),
                            std::move(*select_jobs),
                            std::move(*select_points),
                            std::move(*select_points_downsampled),
                            std::move(*select_transitions),
                            std::move(*select_prunable_job),
                            std::move(*prune_points)};
  }
};

/// Sorts an SQLite result code: only the ones a later attempt can outlive are transient.
FailureKind failure_kind(int code) {
  switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_NOMEM:
    case SQLITE_INTERRUPT:
    case SQLITE_PROTOCOL:
      return FailureKind::transient;
    default:
      return FailureKind::permanent;  // constraint, corrupt, notadb, readonly, mismatch, ...
  }
}

/// Refuses a file this build must not write to: corrupt, newer, or someone else's database.
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

}  // namespace

// ---------------------------------------------------------------------------------------------
// Schema

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

// ---------------------------------------------------------------------------------------------
// SqliteJobStore

struct SqliteJobStore::Impl {
  Impl(const StoreOptions& store_options, Database database)
      : options(store_options), db(std::move(database)) {}

  StoreOptions options;
  Database db;  // declared before the statements: they must be finalized first
  std::optional<CachedStatements> statements;

  // The buffer, in the order flush() writes it: jobs, then points, then transitions.
  std::vector<NewJob> jobs;
  std::vector<PendingPoint> points;
  std::vector<PendingTransition> transitions;

  // Scratch for flush(): the highest buffered step of each job (few jobs, so a flat vector).
  std::vector<std::pair<core::JobId, std::uint64_t>> max_steps;

  FailureKind last_failure = FailureKind::transient;
};

Result<std::unique_ptr<SqliteJobStore>> SqliteJobStore::open(const StoreOptions& options) {
  const bool in_memory = options.path.native() == ":memory:";
  std::error_code exists_error;
  const bool existed = !in_memory && std::filesystem::exists(options.path, exists_error);

  auto database = Database::open(options.path, Database::Mode::read_write_create);
  if (!database) return existed ? left_untouched(database.error()) : database.error();
  auto impl = std::make_unique<Impl>(options, std::move(*database));
  Database& db = impl->db;

  const auto busy_millis = std::clamp<std::chrono::milliseconds::rep>(
      options.busy_timeout.count(), 0, std::numeric_limits<int>::max());
  if (auto set = db.exec("PRAGMA busy_timeout = " + std::to_string(busy_millis)); !set) {
    return set.error();
  }

  // Nothing may write to an existing file before it has been checked. Closing the last
  // connection would checkpoint a leftover WAL into the file, so that is off until it passes.
  if (existed) {
    sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    if (auto checked = check_existing_database(db); !checked) {
      return left_untouched(checked.error());
    }
    sqlite3_db_config(db.handle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
  }

  auto journal_mode = db.query_text("PRAGMA journal_mode = WAL");
  if (!journal_mode) return while_doing(journal_mode.error(), "switching to WAL mode");
  if (*journal_mode != "wal" && !(in_memory && *journal_mode == "memory")) {
    return fail(db.name() + ": cannot switch to WAL journal mode (still \"" + *journal_mode +
                "\"); is the file on a network file system?");
  }
  if (auto set = db.exec(synchronous_pragma(options.synchronous)); !set) return set.error();
  if (auto set = db.exec("PRAGMA foreign_keys = ON"); !set) return set.error();
  // A negative cache_size is in KiB.
  const auto cache_kib = std::max<std::size_t>(options.cache_bytes / 1024, 64);
  if (auto set = db.exec("PRAGMA cache_size = -" + std::to_string(cache_kib)); !set) {
    return set.error();
  }

  if (auto migrated = migrate_schema(db, current_schema_version); !migrated) {
    return migrated.error();
  }

  auto statements = CachedStatements::prepare(db);
  if (!statements) return statements.error();
  impl->statements.emplace(std::move(*statements));

  return std::unique_ptr<SqliteJobStore>(new SqliteJobStore(std::move(impl)));
}

SqliteJobStore::SqliteJobStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteJobStore::~SqliteJobStore() = default;

void SqliteJobStore::add_job(const NewJob& job) { impl_->jobs.push_back(job); }

void SqliteJobStore::on_step(const core::StepRecorded& event) {
  impl_->points.push_back(PendingPoint{event.job_id, event.step, event.epoch, event.loss,
                                       event.accuracy, to_millis(event.ts)});
}

void SqliteJobStore::on_state_changed(const core::JobStateChanged& event) {
  impl_->transitions.push_back(
      PendingTransition{event.job_id, event.from, event.to, event.reason, to_millis(event.ts)});
}

std::size_t SqliteJobStore::pending_rows() const {
  return impl_->jobs.size() + impl_->points.size() + impl_->transitions.size();
}

bool SqliteJobStore::backlogged() const {
  return pending_rows() >= impl_->options.max_pending_rows;
}

Result<FlushStats> SqliteJobStore::flush() {
  Impl& s = *impl_;
  const std::size_t pending = pending_rows();
  if (pending == 0) return FlushStats{};
  const auto started = std::chrono::steady_clock::now();
  CachedStatements& sql = *s.statements;

  // Builds the error for a failed flush; only ever called on the error path, before the
  // rollback, so the connection's error code is still the failure's.
  const auto failed = [&](const Error& error, const std::string& what) {
    s.last_failure = failure_kind(sqlite3_extended_errcode(s.db.handle()));
    return while_doing(error, what + "; the flush was rolled back and its " +
                                  std::to_string(pending) + " rows stay buffered");
  };

  auto transaction = Transaction::begin(s.db);
  if (!transaction) return failed(transaction.error(), "starting the flush");

  for (const NewJob& job : s.jobs) {
    sql.insert_job.bind(1, job.id);
    sql.insert_job.bind(2, std::string_view(job.name));
    sql.insert_job.bind(3, std::string_view(job.spec_json));
    sql.insert_job.bind(4, to_millis(job.created_at));
    if (auto done = sql.insert_job.run(); !done) {
      return failed(done.error(),
                    "inserting job " + std::to_string(job.id) + " \"" + job.name + "\"");
    }
  }

  s.max_steps.clear();
  std::size_t last_job = 0;
  for (const PendingPoint& point : s.points) {
    sql.upsert_point.bind(1, point.job_id);
    sql.upsert_point.bind(2, to_sql_int(point.step));
    sql.upsert_point.bind(3, to_sql_int(point.epoch));
    sql.upsert_point.bind(4, point.loss);  // NaN becomes NULL; +/-inf stays REAL
    sql.upsert_point.bind(5, point.accuracy);
    sql.upsert_point.bind(6, point.ts_millis);
    if (auto done = sql.upsert_point.run(); !done) {
      return failed(done.error(), "writing the point of job " + std::to_string(point.job_id) +
                                      " step " + std::to_string(point.step));
    }
    // Points of one job come in runs, so the last job seen is usually the one.
    if (last_job >= s.max_steps.size() || s.max_steps[last_job].first != point.job_id) {
      const auto found =
          std::find_if(s.max_steps.begin(), s.max_steps.end(),
                       [&](const auto& entry) { return entry.first == point.job_id; });
      if (found == s.max_steps.end()) {
        s.max_steps.emplace_back(point.job_id, point.step);
        last_job = s.max_steps.size() - 1;
      } else {
        last_job = static_cast<std::size_t>(found - s.max_steps.begin());
      }
    }
    s.max_steps[last_job].second = std::max(s.max_steps[last_job].second, point.step);
  }
  for (const auto& [job_id, step] : s.max_steps) {
    sql.update_step.bind(1, job_id);
    sql.update_step.bind(2, to_sql_int(step));
    if (auto done = sql.update_step.run(); !done) {
      return failed(done.error(), "updating the step of job " + std::to_string(job_id));
    }
  }

  for (const PendingTransition& transition : s.transitions) {
    const std::string_view to = core::to_string(transition.to);
    sql.insert_transition.bind(1, transition.job_id);
    sql.insert_transition.bind(2, core::to_string(transition.from));
    sql.insert_transition.bind(3, to);
    sql.insert_transition.bind(4, std::string_view(transition.reason));
    sql.insert_transition.bind(5, transition.ts_millis);
    if (auto done = sql.insert_transition.run(); !done) {
      return failed(done.error(), "recording the transition of job " +
                                      std::to_string(transition.job_id) + " to " + std::string(to));
    }
    sql.apply_transition.bind(1, transition.job_id);
    sql.apply_transition.bind(2, to);
    sql.apply_transition.bind(3, std::string_view(transition.reason));
    sql.apply_transition.bind(4, transition.ts_millis);
    sql.apply_transition.bind(5, std::int64_t{core::is_terminal(transition.to) ? 1 : 0});
    if (auto done = sql.apply_transition.run(); !done) {
      return failed(done.error(), "updating the state of job " + std::to_string(transition.job_id) +
                                      " to " + std::string(to));
    }
  }

  if (auto committed = transaction->commit(); !committed) {
    return failed(committed.error(), "committing the flush");
  }

  FlushStats stats;
  stats.jobs = s.jobs.size();
  stats.points = s.points.size();
  stats.transitions = s.transitions.size();
  s.jobs.clear();
  s.transitions.clear();
  if (s.points.capacity() > retained_point_capacity) {
    s.points = {};
  } else {
    s.points.clear();
  }
  stats.duration = std::chrono::steady_clock::now() - started;
  return stats;
}

FailureKind SqliteJobStore::last_failure_kind() const { return impl_->last_failure; }

std::size_t SqliteJobStore::discard_pending() {
  const std::size_t dropped = pending_rows();
  impl_->jobs.clear();
  impl_->points = {};
  impl_->transitions.clear();
  return dropped;
}

Result<PruneStats> SqliteJobStore::prune_points(core::WallTime finished_before,
                                                std::size_t max_rows) {
  CachedStatements& sql = *impl_->statements;
  PruneStats stats;
  {
    const ResetOnExit reset(sql.select_prunable_job);
    sql.select_prunable_job.bind(1, to_millis(finished_before));
    auto row = sql.select_prunable_job.step();
    if (!row) return while_doing(row.error(), "finding points to delete (store.keep_points)");
    if (!*row) return stats;
    stats.job_id = sql.select_prunable_job.column_int(0);
  }
  const ResetOnExit reset(sql.prune_points);
  sql.prune_points.bind(1, stats.job_id);
  sql.prune_points.bind(2, to_sql_int(max_rows));
  if (auto done = sql.prune_points.run(); !done) {
    return while_doing(done.error(), "deleting old points of job " + std::to_string(stats.job_id));
  }
  stats.points = static_cast<std::size_t>(sqlite3_changes(impl_->db.handle()));
  return stats;
}

Result<std::vector<StoredJob>> SqliteJobStore::load_jobs() {
  Statement& select = impl_->statements->select_jobs;
  const ResetOnExit reset(select);
  std::vector<StoredJob> jobs;
  for (;;) {
    auto row = select.step();
    if (!row) return while_doing(row.error(), "reading jobs");
    if (!*row) break;
    StoredJob job;
    job.id = select.column_int(0);
    job.name = select.column_text(1);
    job.spec_json = select.column_text(2);
    const std::string state = select.column_text(3);
    const auto parsed = core::parse_job_state(state);
    if (!parsed) {
      return fail(impl_->db.name() + ": job " + std::to_string(job.id) +
                  " has an unknown state \"" + state + "\"");
    }
    job.state = *parsed;
    job.reason = select.column_text(4);
    job.step = from_sql_uint(select.column_int(5));
    job.created_at = from_millis(select.column_int(6));
    if (!select.column_is_null(7)) job.started_at = from_millis(select.column_int(7));
    if (!select.column_is_null(8)) job.finished_at = from_millis(select.column_int(8));
    jobs.push_back(std::move(job));
  }
  return jobs;
}

namespace {

/// Reads the rows of a points query (columns step, epoch, loss, accuracy, ts).
Result<std::vector<StoredPoint>> read_points(Statement& select, core::JobId job_id) {
  std::vector<StoredPoint> points;
  for (;;) {
    auto row = select.step();
    if (!row) {
      return while_doing(row.error(), "reading the points of job " + std::to_string(job_id));
    }
    if (!*row) break;
    StoredPoint point;
    point.job_id = job_id;
    point.step = from_sql_uint(select.column_int(0));
    point.epoch = from_sql_uint(select.column_int(1));
    point.loss = select.column_double(2);  // NULL (a NaN loss) reads back as NaN
    point.accuracy = select.column_double(3);
    point.ts = from_millis(select.column_int(4));
    points.push_back(point);
  }
  return points;
}

}  // namespace

Result<std::vector<StoredPoint>> SqliteJobStore::load_points(core::JobId job_id,
                                                             std::uint64_t after_step,
                                                             std::size_t limit) {
  if (limit == 0) return std::vector<StoredPoint>{};
  Statement& select = impl_->statements->select_points;
  const ResetOnExit reset(select);
  select.bind(1, job_id);
  select.bind(2, to_sql_int(after_step));
  select.bind(3, to_sql_int(limit));
  auto committed = read_points(select, job_id);
  if (!committed) return committed.error();
  return merge_points(std::move(*committed),
                      buffered_points(impl_->points, job_id, after_step,
                                      std::numeric_limits<std::uint64_t>::max()),
                      limit);
}

Result<std::vector<StoredPoint>> SqliteJobStore::load_points_downsampled(
    core::JobId job_id, std::uint64_t after_step, std::uint64_t up_to_step,
    std::size_t max_points) {
  if (max_points < 2) {
    return fail("cannot downsample the points of job " + std::to_string(job_id) + " to " +
                std::to_string(max_points) + " points; at least 2 are needed");
  }
  // Steps are stored as SQLite integers (int64): cap the range there so its arithmetic holds.
  const auto max_step = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  up_to_step = std::min(up_to_step, max_step);
  if (up_to_step <= after_step) return std::vector<StoredPoint>{};
  const std::uint64_t span = up_to_step - after_step;
  if (span <= max_points) {
    // Few enough steps to send them all (steps are unique, so at most `span` points).
    auto all = load_points(job_id, after_step, static_cast<std::size_t>(span));
    if (!all) return all.error();
    std::erase_if(*all, [&](const StoredPoint& point) { return point.step > up_to_step; });
    return all;
  }

  const std::uint64_t buckets = max_points / 2;
  const std::uint64_t width = span / buckets + (span % buckets != 0 ? 1 : 0);
  Statement& select = impl_->statements->select_points_downsampled;
  const ResetOnExit reset(select);
  select.bind(1, job_id);
  select.bind(2, to_sql_int(after_step));
  select.bind(3, to_sql_int(up_to_step));
  select.bind(4, to_sql_int(width));
  auto committed = read_points(select, job_id);
  if (!committed) return committed.error();

  const auto buffered = buffered_points(impl_->points, job_id, after_step, up_to_step);
  if (buffered.empty()) return committed;
  // Buffered points join their buckets' committed extremes and each bucket picks again. A
  // committed extreme that a buffered point re-records is replaced by it; the simulation is
  // deterministic, so a re-recorded step carries the same loss and the pick stays exact.
  const std::size_t candidates = committed->size() + buffered.size();
  return extremes_per_bucket(merge_points(std::move(*committed), buffered, candidates),
                             after_step, width);
}

Result<std::vector<StoredTransition>> SqliteJobStore::load_transitions(core::JobId job_id) {
  Statement& select = impl_->statements->select_transitions;
  const ResetOnExit reset(select);
  select.bind(1, job_id);
  std::vector<StoredTransition> transitions;
  for (;;) {
    auto row = select.step();
    if (!row) {
      return while_doing(row.error(), "reading the transitions of job " + std::to_string(job_id));
    }
    if (!*row) break;
    const std::string from = select.column_text(0);
    const std::string to = select.column_text(1);
    const auto parsed_from = core::parse_job_state(from);
    const auto parsed_to = core::parse_job_state(to);
    if (!parsed_from || !parsed_to) {
      return fail(impl_->db.name() + ": job " + std::to_string(job_id) +
                  " has a transition with an unknown state (\"" + from + "\" to \"" + to + "\")");
    }
    StoredTransition transition;
    transition.job_id = job_id;
    transition.from = *parsed_from;
    transition.to = *parsed_to;
    transition.reason = select.column_text(2);
    transition.ts = from_millis(select.column_int(3));
    transitions.push_back(std::move(transition));
  }
  for (const PendingTransition& pending : impl_->transitions) {
    if (pending.job_id != job_id) continue;
    transitions.push_back(StoredTransition{job_id, pending.from, pending.to, pending.reason,
                                           from_millis(pending.ts_millis)});
  }
  return transitions;
}

}  // namespace vapor::store
