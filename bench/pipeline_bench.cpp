// Ingest benchmark: rows per second through the whole pipeline (scheduler + simulator + batched
// SQLite store, 1,000 concurrent jobs at a 1 ms step interval) against a bare batched-insert loop
// into the same schema, both measured in this run on one core, same file system, same batch size.
//
//   pipeline_bench [rows] [folder]     (defaults: 2,000,000 rows, the system temp folder)

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/counter_rng.hpp"
#include "runtime/clock.hpp"
#include "runtime/scheduler.hpp"
#include "store/sqlite_database.hpp"
#include "store/sqlite_job_store.hpp"

namespace {

using namespace vapor;
using Seconds = std::chrono::duration<double>;

constexpr int job_count = 1000;
constexpr int steps_per_flush = 100;  // per job: 100,000 rows per transaction

std::filesystem::path fresh_file(const std::filesystem::path& folder, const std::string& name) {
  const auto path = folder / name;
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path.string() + suffix);
  }
  return path;
}

store::StoreOptions options_for(const std::filesystem::path& path) {
  store::StoreOptions options;
  options.path = path;
  options.synchronous = store::Synchronous::normal;
  options.max_pending_rows = 10'000'000;
  return options;
}

/// The peer: prepared INSERTs of precomputed-looking rows, committed every `batch` rows.
double bare_insert_rows_per_second(const std::filesystem::path& path, std::int64_t rows) {
  {
    auto created = store::SqliteJobStore::open(options_for(path)).value();
    for (int job = 1; job <= job_count; ++job) {
      created->add_job({job, "job" + std::to_string(job), "{}", std::chrono::system_clock::now()});
    }
    created->flush().value();
  }
  auto db = store::Database::open(path, store::Database::Mode::read_write_create).value();
  // The same settings the store uses: WAL, synchronous NORMAL, the same page cache.
  db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-" +
          std::to_string(store::StoreOptions{}.cache_bytes / 1024))
      .value();
  auto insert = store::Statement::prepare(
                    db, "INSERT OR REPLACE INTO points(job_id, step, epoch, loss, accuracy, ts) "
                        "VALUES (?, ?, ?, ?, ?, ?)")
                    .value();
  const core::CounterRng rng(42);
  const std::int64_t batch = static_cast<std::int64_t>(job_count) * steps_per_flush;
  const auto start = std::chrono::steady_clock::now();
  std::int64_t written = 0;
  std::int64_t step = 0;
  while (written < rows) {
    auto transaction = store::Transaction::begin(db).value();
    for (std::int64_t i = 0; i < batch && written < rows; ++i, ++written) {
      const auto job = written % job_count + 1;
      if (job == 1) ++step;
      insert.bind(1, job);
      insert.bind(2, step);
      insert.bind(3, std::int64_t{1});
      insert.bind(4, rng.uniform(static_cast<std::uint64_t>(written), 1));
      insert.bind(5, 0.5);
      insert.bind(6, std::int64_t{1'800'000'000'000} + written);
      insert.run().value();
    }
    transaction.commit().value();
  }
  return static_cast<double>(rows) / Seconds(std::chrono::steady_clock::now() - start).count();
}

/// The pipeline: 1,000 running jobs stepping every 1 ms of a manual clock, every step simulated,
/// fanned out to the store, committed once per 100 ms of simulated time.
double pipeline_rows_per_second(const std::filesystem::path& path, std::int64_t rows) {
  auto store = store::SqliteJobStore::open(options_for(path)).value();
  runtime::ManualClock clock;
  runtime::Scheduler scheduler({job_count, std::chrono::hours(1), job_count}, clock);
  scheduler.add_listener(*store);
  for (int job = 1; job <= job_count; ++job) {
    core::JobSpec spec;
    spec.name = "job" + std::to_string(job);
    spec.epochs = 1000;
    spec.steps_per_epoch = 1000;
    spec.step_interval = std::chrono::milliseconds(1);
    spec.seed = core::seed_from_name(spec.name);
    store->add_job({job, spec.name, "{}", clock.wall_now()});
    scheduler.add_job(job, spec, clock.wall_now()).value();
  }
  store->flush().value();

  const auto start = std::chrono::steady_clock::now();
  std::int64_t produced = 0;
  while (produced < rows) {
    for (int tick = 0; tick < steps_per_flush; ++tick) {
      clock.advance(std::chrono::milliseconds(1));
      scheduler.advance();
    }
    produced += static_cast<std::int64_t>(store->flush().value().points);
  }
  return static_cast<double>(produced) / Seconds(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::int64_t rows = argc > 1 ? std::atoll(argv[1]) : 2'000'000;
  const std::filesystem::path folder =
      argc > 2 ? std::filesystem::path(argv[2]) : std::filesystem::temp_directory_path();

  const double bare = bare_insert_rows_per_second(fresh_file(folder, "vapor-bench-bare.db"), rows);
  const double pipeline =
      pipeline_rows_per_second(fresh_file(folder, "vapor-bench-pipeline.db"), rows);
  std::printf("ingest, %d concurrent jobs, %lld rows, %d rows per transaction\n", job_count,
              static_cast<long long>(rows), job_count * steps_per_flush);
  std::printf("  bare batched INSERT loop   %12.0f rows/s\n", bare);
  std::printf("  vapord pipeline            %12.0f rows/s\n", pipeline);
  std::printf("  ratio pipeline / bare      %12.2f  (goal >= 0.50)\n", pipeline / bare);
  for (const char* name : {"vapor-bench-bare.db", "vapor-bench-pipeline.db"}) {
    fresh_file(folder, name);
  }
  return 0;
}
