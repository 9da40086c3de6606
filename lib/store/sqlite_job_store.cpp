#include "store/sqlite_job_store.hpp"

#include <sched.h>
#include <sys/stat.h>
#include <sqlite3.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "store/detail/pending_rows.hpp"
#include "store/detail/scalars_column.hpp"
#include "store/detail/sql_values.hpp"
#include "store/detail/statements.hpp"
#include "store/detail/store_impl.hpp"
#include "store/schema.hpp"

namespace vapor::store {
namespace {

using detail::CachedStatements;
using detail::encode_scalars;
using detail::PendingPoint;
using detail::PendingTransition;
using detail::ResetOnExit;
using detail::to_millis;
using detail::to_sql_int;
using detail::while_doing;

std::string_view synchronous_pragma(Synchronous level) {
  switch (level) {
    case Synchronous::off: return "PRAGMA synchronous = OFF";
    case Synchronous::normal: return "PRAGMA synchronous = NORMAL";
    case Synchronous::full: return "PRAGMA synchronous = FULL";
    case Synchronous::extra: return "PRAGMA synchronous = EXTRA";
  }
  return "PRAGMA synchronous = FULL";
}

/// For errors found before Vapor wrote anything to an existing file.
Error left_untouched(const Error& error) {
  return fail(error.message + "; the file was left untouched");
}

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

}  // namespace

// ---------------------------------------------------------------------------------------------
// SqliteJobStore

namespace {

std::optional<std::pair<dev_t, ino_t>> identity_of(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::pair{st.st_dev, st.st_ino};
}

}  // namespace

Result<std::unique_ptr<SqliteJobStore>> SqliteJobStore::open(const StoreOptions& options) {
  const bool in_memory = options.path.native() == ":memory:";
  std::error_code exists_error;
  const bool existed = !in_memory && std::filesystem::exists(options.path, exists_error);
  const std::filesystem::path wal = options.path.string() + "-wal";
  const std::filesystem::path shm = options.path.string() + "-shm";
  const bool wal_existed = std::filesystem::exists(wal, exists_error);
  const bool shm_existed = std::filesystem::exists(shm, exists_error);

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
      // Reading a WAL-mode file made SQLite create an empty -wal and its -shm index; with the
      // checkpoint on close off, closing leaves them. Those that were not there go again.
      impl.reset();
      std::error_code ignored;
      if (!wal_existed && std::filesystem::exists(wal, ignored) &&
          std::filesystem::file_size(wal, ignored) == 0) {
        std::filesystem::remove(wal, ignored);
        if (!shm_existed) std::filesystem::remove(shm, ignored);
      }
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
  if (!in_memory) impl->file_identity = identity_of(options.path);

  return std::unique_ptr<SqliteJobStore>(new SqliteJobStore(std::move(impl)));
}

SqliteJobStore::SqliteJobStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SqliteJobStore::~SqliteJobStore() = default;

void SqliteJobStore::add_job(const NewJob& job) { impl_->jobs.push_back(job); }

void SqliteJobStore::add_rows(std::vector<NewJob> jobs, detail::PendingRows rows) {
  if (impl_->jobs.empty()) {
    impl_->jobs = std::move(jobs);
  } else {
    impl_->jobs.insert(impl_->jobs.end(), jobs.begin(), jobs.end());
  }
  impl_->pending.append(std::move(rows));
}

void SqliteJobStore::on_step(const core::StepRecorded& event) {
  impl_->pending.add_point(event);
}

void SqliteJobStore::on_state_changed(const core::JobStateChanged& event) {
  impl_->pending.add_transition(event);
}

void SqliteJobStore::on_start_requested(core::JobId job_id) {
  impl_->pending.add_start_request(job_id);
}

std::size_t SqliteJobStore::pending_rows() const {
  return impl_->jobs.size() + impl_->pending.point_count() + impl_->pending.transitions().size();
}

bool SqliteJobStore::backlogged() const {
  return pending_rows() >= impl_->options.max_pending_rows;
}

Result<FlushStats> SqliteJobStore::flush() {
  Impl& s = *impl_;
  const std::size_t pending = pending_rows();
  if (pending == 0) return FlushStats{};
  if (s.file_identity && identity_of(s.options.path) != s.file_identity) {
    // Commits would go on into a file nobody can open again: stop, and say so.
    s.last_failure = FailureKind::permanent;
    return fail(s.db.name() + ": the database file was deleted or replaced while vapord ran; " +
                std::to_string(pending) + " rows and later ones cannot be kept (restart vapord " +
                "once the file is back, or to start a new one)");
  }
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
    if (job.push_token_sha256.empty()) {
      sql.insert_job.bind_null(5);
    } else {
      sql.insert_job.bind(5, std::string_view(job.push_token_sha256));
    }
    if (auto done = sql.insert_job.run(); !done) {
      return failed(done.error(),
                    "inserting job " + std::to_string(job.id) + " \"" + job.name + "\"");
    }
  }

  for (const auto& [job_id, points] : s.pending.points()) {
    std::uint64_t max_step = 0;
    core::Scalars latest;  // each name's value in this batch's last point that has it
    for (const PendingPoint& point : points) {
      core::merge_scalars(latest, point.scalars);
      sql.upsert_point.bind(1, job_id);
      sql.upsert_point.bind(2, to_sql_int(point.step));
      sql.upsert_point.bind(3, to_sql_int(point.epoch));
      sql.upsert_point.bind(4, point.loss);  // NaN becomes NULL; +/-inf stays REAL
      sql.upsert_point.bind(5, point.accuracy);
      sql.upsert_point.bind(6, point.ts_millis);
      if (point.scalars.empty()) {
        sql.upsert_point.bind_null(7);
      } else {
        sql.upsert_point.bind(7, std::string_view(encode_scalars(point.scalars)));
      }
      if (auto done = sql.upsert_point.run(); !done) {
        return failed(done.error(), "writing the point of job " + std::to_string(job_id) +
                                        " step " + std::to_string(point.step));
      }
      max_step = std::max(max_step, point.step);
    }
    sql.update_step.bind(1, job_id);
    sql.update_step.bind(2, to_sql_int(max_step));
    if (latest.empty()) {
      sql.update_step.bind_null(3);
    } else {
      sql.update_step.bind(3, std::string_view(encode_scalars(latest)));
    }
    if (auto done = sql.update_step.run(); !done) {
      return failed(done.error(), "updating the step of job " + std::to_string(job_id));
    }
  }

  // Before the transitions: a job started in this same batch clears its request again.
  for (const core::JobId job_id : s.pending.start_requests()) {
    sql.request_start.bind(1, job_id);
    if (auto done = sql.request_start.run(); !done) {
      return failed(done.error(), "recording the start of job " + std::to_string(job_id));
    }
  }

  for (const PendingTransition& transition : s.pending.transitions()) {
    const std::string_view to = core::to_string(transition.to);
    sql.insert_transition.bind(1, transition.job_id);
    sql.insert_transition.bind(2, core::to_string(transition.from));
    sql.insert_transition.bind(3, to);
    sql.insert_transition.bind(4, std::string_view(transition.reason));
    sql.insert_transition.bind(5, transition.ts_millis);
    sql.insert_transition.bind(6, to_sql_int(transition.step));
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
  stats.points = s.pending.point_count();
  stats.transitions = s.pending.transitions().size();
  s.jobs.clear();
  s.pending.clear();
  stats.duration = std::chrono::steady_clock::now() - started;
  return stats;
}

void SqliteJobStore::yield_during_statements(int instructions) {
  if (instructions <= 0) {
    sqlite3_progress_handler(impl_->db.handle(), 0, nullptr, nullptr);
    return;
  }
  sqlite3_progress_handler(
      impl_->db.handle(), instructions,
      [](void*) {
        sched_yield();
        return 0;  // never interrupts the statement
      },
      nullptr);
}

FailureKind SqliteJobStore::last_failure_kind() const { return impl_->last_failure; }

std::size_t SqliteJobStore::discard_pending() {
  const std::size_t dropped = pending_rows();
  impl_->jobs.clear();
  impl_->pending.clear();
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

}  // namespace vapor::store
