#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"

namespace vapor::config {

/// SQLite's `PRAGMA synchronous` levels that a user may choose.
enum class SynchronousMode { off, normal, full, extra };

/// vapord.yaml, typed and validated. Relative paths are resolved against the config file's
/// folder. Every limit the daemon enforces is named here with its default.
struct DaemonConfig {
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 9786;
  std::filesystem::path database = "vapor.db";
  std::filesystem::path queue = "jobs.yaml";
  std::size_t queue_max_bytes = 1024 * 1024;  ///< a larger queue file is refused

  struct Scheduler {
    std::size_t max_concurrent = 4;
    std::chrono::milliseconds step_interval{1500};  ///< default for jobs that set none
    std::chrono::milliseconds stall_timeout{60'000};
    std::size_t max_jobs = 10'000;  ///< queued + running + finished jobs held in memory

    bool operator==(const Scheduler&) const = default;
  } scheduler;

  struct Store {
    std::chrono::milliseconds flush_interval{1000};
    /// A commit also starts as soon as this many rows wait, so fast queues get several small
    /// commits instead of one large one per interval.
    std::size_t flush_rows = 5'000;
    SynchronousMode synchronous = SynchronousMode::normal;
    /// How long a commit waits for another writer's lock (on the store thread). Short: the rows
    /// stay buffered for the next commit anyway.
    std::chrono::milliseconds busy_timeout{250};
    std::size_t max_pending_rows = 1'000'000;  ///< beyond this, jobs pause until a flush succeeds
    /// SQLite page cache. Points of many jobs land on different B-tree leaves; a cache that
    /// holds them keeps a commit from re-reading and re-writing pages it just touched.
    std::size_t cache_bytes = 64 * 1024 * 1024;
    /// Points of a job that finished longer ago than this are deleted (the job, its summary and
    /// transitions stay); 0 keeps them forever. Prometheus's default retention: a run's history
    /// in SQLite lives as long as its series do in a default Prometheus.
    std::chrono::milliseconds keep_points{15LL * 24 * 60 * 60 * 1000};
    /// Points deleted per retention transaction: small, so commits interleave with the pruning.
    std::size_t prune_batch_rows = 5'000;

    bool operator==(const Store&) const = default;
  } store;

  struct Metrics {
    std::chrono::milliseconds finished_job_ttl{10 * 60 * 1000};

    bool operator==(const Metrics&) const = default;
  } metrics;

  struct Api {
    std::optional<std::filesystem::path> token_file;
    std::vector<std::string> allowed_origins;
    std::vector<std::string> allowed_hosts;
    std::size_t max_body_bytes = 1024 * 1024;
    std::size_t max_header_bytes = 8 * 1024;
    std::chrono::milliseconds read_timeout{30'000};
    std::size_t max_connections = 512;
    /// Whether POST /api/v1/jobs may create command jobs (processes vapord runs): whoever holds
    /// the API token could then run any program as vapord's user. Off: queue file only.
    bool allow_command_jobs = false;
    /// Points in one push batch (POST /api/v1/jobs/{id}/points) at most.
    std::size_t max_batch_points = 10'000;

    bool operator==(const Api&) const = default;
  } api;

  /// Command jobs (kind: command).
  struct Jobs {
    std::size_t max_metric_line_bytes = 64 * 1024;  ///< a longer line is skipped and counted
    std::size_t log_max_bytes = 8 * 1024 * 1024;    ///< per job log; the newest bytes are kept

    bool operator==(const Jobs&) const = default;
  } jobs;

  struct Websocket {
    std::size_t max_clients = 256;
    std::size_t send_queue_bytes = 4 * 1024 * 1024;

    bool operator==(const Websocket&) const = default;
  } websocket;

  bool operator==(const DaemonConfig&) const = default;
};

/// Parses vapord.yaml text. `file` labels errors; `base_dir` resolves relative paths.
[[nodiscard]] Parsed<DaemonConfig> parse_daemon_config(std::string_view text, std::string_view file,
                                                       const std::filesystem::path& base_dir);

/// Reads and parses a vapord.yaml file (refuses files over 1 MiB).
[[nodiscard]] Parsed<DaemonConfig> load_daemon_config(const std::filesystem::path& path);

/// `1500ms`, `2s`, `5m`, `1h`, `15d`, or `0` (any other bare number is refused: the unit must be
/// said).
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace vapor::config
