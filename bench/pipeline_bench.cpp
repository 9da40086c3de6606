// Ingest benchmark: rows per second through the whole pipeline (scheduler + simulator on the loop,
// batched SQLite commits on the store thread, 1,000 concurrent jobs at a 1 ms step interval)
// against a bare batched-insert loop into the same schema, both measured in this run, same file
// system, same batch size. The pipeline uses two threads as vapord does; the peer is one loop.
//
//   pipeline_bench [rows] [folder]     (defaults: 2,000,000 rows, the system temp folder)

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <boost/asio/io_context.hpp>

#include "core/counter_rng.hpp"
#include "runtime/clock.hpp"
#include "runtime/scheduler.hpp"
#include "store/sqlite_database.hpp"
#include "store/sqlite_job_store.hpp"
#include "store/store_thread.hpp"

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

/// The pipeline as vapord runs it: 1,000 running jobs stepping every 1 ms of a manual clock,
/// every step simulated on this thread (the event loop) and handed to the store thread, which
/// commits once per 100 ms of simulated time while the next 100 ms are being simulated (one
/// commit in flight at a time, as the write-behind flusher keeps it).
double pipeline_rows_per_second(const std::filesystem::path& path, std::int64_t rows) {
  boost::asio::io_context loop;
  store::StoreThread store(loop.get_executor(), store::SqliteJobStore::open(options_for(path)).value(),
                           options_for(path).max_pending_rows);
  runtime::ManualClock clock;
  runtime::Scheduler scheduler({job_count, std::chrono::hours(1), job_count}, clock);
  scheduler.add_listener(store);
  for (int job = 1; job <= job_count; ++job) {
    core::JobSpec spec;
    spec.name = "job" + std::to_string(job);
    spec.epochs = 1000;
    spec.steps_per_epoch = 1000;
    spec.step_interval = std::chrono::milliseconds(1);
    spec.seed = core::seed_from_name(spec.name);
    store.add_job({job, spec.name, "{}", clock.wall_now()});
    scheduler.add_job(job, spec, clock.wall_now()).value();
  }
  store.start();

  std::int64_t committed = 0;
  bool in_flight = false;
  const auto commit = [&] {
    in_flight = true;
    store.commit([&](store::CommitOutcome outcome) {
      committed += static_cast<std::int64_t>(outcome.result.value().points);
      in_flight = false;
    });
  };
  const auto wait_for_commit = [&] {
    while (in_flight) {
      loop.restart();
      loop.run_one();
    }
  };

  const auto start = std::chrono::steady_clock::now();
  std::int64_t produced = 0;
  while (produced < rows) {
    for (int tick = 0; tick < steps_per_flush; ++tick) {
      clock.advance(std::chrono::milliseconds(1));
      scheduler.advance();
    }
    produced += static_cast<std::int64_t>(job_count) * steps_per_flush;
    wait_for_commit();
    commit();
  }
  wait_for_commit();
  const auto elapsed = Seconds(std::chrono::steady_clock::now() - start).count();
  if (committed < rows) {
    std::fprintf(stderr, "pipeline_bench: %lld rows committed of %lld\n",
                 static_cast<long long>(committed), static_cast<long long>(rows));
    std::exit(1);
  }
  return static_cast<double>(committed) / elapsed;
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
  std::printf("  ratio pipeline / bare      %12.2f  (goal >= 0.90)\n", pipeline / bare);
  for (const char* name : {"vapor-bench-bare.db", "vapor-bench-pipeline.db"}) {
    fresh_file(folder, name);
  }
  return 0;
}
