#include "config/daemon_config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vapor::config {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path data_dir = std::filesystem::path(VAPOR_TEST_DATA_DIR) / "data";

std::vector<std::string> error_lines(const std::vector<ConfigError>& errors) {
  std::vector<std::string> lines;
  for (const ConfigError& error : errors) lines.push_back(error.to_string());
  return lines;
}

Parsed<DaemonConfig> parse(std::string_view text) {
  return parse_daemon_config(text, "vapord.yaml", "/etc/vapor");
}

TEST(DaemonConfigTest, ReadsEveryKey) {
  const std::filesystem::path file = data_dir / "vapord/full.yaml";
  const Parsed<DaemonConfig> parsed = load_daemon_config(file);
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors);

  const std::filesystem::path base = std::filesystem::absolute(file).parent_path();
  DaemonConfig expected;
  expected.listen_host = "::1";
  expected.listen_port = 9900;
  expected.database = base / "state/vapor.db";
  expected.queue = "/etc/vapor/jobs.yaml";
  expected.queue_max_bytes = 65536;
  expected.scheduler = {8, 250ms, 2min, 5000};
  expected.store = {2s, 750, SynchronousMode::full, 0ms, 20000, 8 * 1024 * 1024, 48h, 100};
  expected.metrics.finished_job_ttl = 1h;
  expected.api.token_file = base / "secrets/token";
  expected.api.allowed_origins = {"https://grafana.example.com", "http://localhost:3000"};
  expected.api.allowed_hosts = {"vapor.example.com", "vapor.example.com:9900"};
  expected.api.max_body_bytes = 2048;
  expected.api.max_header_bytes = 4096;
  expected.api.read_timeout = 10s;
  expected.api.max_connections = 64;
  expected.api.allow_command_jobs = true;
  expected.websocket = {16, 1048576};
  EXPECT_EQ(parsed.value, expected);
}

TEST(DaemonConfigTest, AnEmptyFileMeansEveryDefault) {
  for (const char* text : {"", "# only a comment\n", "---\n", "scheduler:\n"}) {
    const Parsed<DaemonConfig> parsed = parse_daemon_config(text, "vapord.yaml", "");
    ASSERT_TRUE(parsed.ok()) << text << format_errors(parsed.errors);
    EXPECT_EQ(parsed.value, DaemonConfig{}) << text;
  }
  const Parsed<DaemonConfig> loaded = load_daemon_config(data_dir / "vapord/empty.yaml");
  ASSERT_TRUE(loaded.ok()) << format_errors(loaded.errors);
  EXPECT_EQ(loaded.value.listen_host, "127.0.0.1");
  EXPECT_EQ(loaded.value.listen_port, 9786);
  EXPECT_EQ(loaded.value.scheduler.step_interval, 1500ms);
}

TEST(DaemonConfigTest, ResolvesRelativePathsAgainstTheConfigFolder) {
  const Parsed<DaemonConfig> parsed =
      parse("database: data/vapor.db\nqueue: /srv/jobs.yaml\napi: {token_file: token}\n");
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors);
  EXPECT_EQ(parsed.value.database, "/etc/vapor/data/vapor.db");
  EXPECT_EQ(parsed.value.queue, "/srv/jobs.yaml");
  EXPECT_EQ(parsed.value.api.token_file, std::filesystem::path("/etc/vapor/token"));

  // Defaults are relative too, and land beside the config file.
  const Parsed<DaemonConfig> defaults = parse("");
  EXPECT_EQ(defaults.value.database, "/etc/vapor/vapor.db");
  EXPECT_EQ(defaults.value.queue, "/etc/vapor/jobs.yaml");
  EXPECT_EQ(defaults.value.api.token_file, std::nullopt);
}

TEST(DaemonConfigTest, LoadResolvesAgainstTheFilesOwnFolder) {
  const std::filesystem::path folder =
      std::filesystem::temp_directory_path() / ("vapor-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  std::ofstream(folder / "vapord.yaml") << "database: vapor.db\n";
  const Parsed<DaemonConfig> parsed = load_daemon_config(folder / "vapord.yaml");
  std::filesystem::remove_all(folder);
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors);
  EXPECT_EQ(parsed.value.database, folder / "vapor.db");
}

TEST(DaemonConfigTest, ReadsListenAddresses) {
  struct Case {
    std::string listen;
    std::string host;
    std::uint16_t port;
  };
  const std::vector<Case> cases{
      {"127.0.0.1:9786", "127.0.0.1", 9786},
      {"0.0.0.0:0", "0.0.0.0", 0},
      {"'[::1]:9786'", "::1", 9786},
      {"\"[::]:80\"", "::", 80},
      {"localhost:8080", "localhost", 8080},
      {"vapor.example.com:65535", "vapor.example.com", 65535},
  };
  for (const Case& good : cases) {
    const Parsed<DaemonConfig> parsed = parse("listen: " + good.listen + "\n");
    ASSERT_TRUE(parsed.ok()) << good.listen << ": " << format_errors(parsed.errors);
    EXPECT_EQ(parsed.value.listen_host, good.host);
    EXPECT_EQ(parsed.value.listen_port, good.port);
  }
}

TEST(DaemonConfigTest, RefusesBadListenAddresses) {
  for (const char* listen : {"127.0.0.1", "::1:9786", "'[::1]'", "host:65536", "host:-1", "':9786'",
                             "256.1.1.1:80", "bad_host:80", "'[nothost]:80'", "127.0.0.1:80x",
                             "'host: 80'", "-host:80", "'[1::2:80'", "9786"}) {
    const Parsed<DaemonConfig> parsed = parse(std::string("listen: ") + listen + "\n");
    ASSERT_EQ(parsed.errors.size(), 1U) << listen;
    EXPECT_EQ(parsed.errors[0].path, "listen");
    EXPECT_EQ(parsed.errors[0].line, 1);
    EXPECT_EQ(parsed.errors[0].column, 9);
    EXPECT_TRUE(parsed.errors[0].message.starts_with(
        "expected host:port such as 127.0.0.1:9786 or [::1]:9786, got "))
        << parsed.errors[0].message;
  }
  EXPECT_EQ(error_lines(parse("listen: 127.0.0.1\n").errors),
            std::vector<std::string>{"vapord.yaml:1:9: listen: expected host:port such as "
                                     "127.0.0.1:9786 or [::1]:9786, got \"127.0.0.1\""});
}

TEST(DaemonConfigTest, RefusesAnUnknownSynchronousMode) {
  EXPECT_EQ(error_lines(parse("store:\n  synchronous: fast\n").errors),
            std::vector<std::string>{"vapord.yaml:2:16: store.synchronous: expected one of off, "
                                     "normal, full, extra, got \"fast\""});
  for (const auto& [text, mode] :
       std::vector<std::pair<std::string, SynchronousMode>>{{"off", SynchronousMode::off},
                                                            {"normal", SynchronousMode::normal},
                                                            {"full", SynchronousMode::full},
                                                            {"extra", SynchronousMode::extra}}) {
    EXPECT_EQ(parse("store: {synchronous: " + text + "}").value.store.synchronous, mode);
  }
}

TEST(DaemonConfigTest, RefusesASendQueueTooSmallForAReplayPage) {
  EXPECT_EQ(error_lines(parse("websocket:\n  send_queue_bytes: 4096\n").errors),
            std::vector<std::string>{"vapord.yaml:2:21: websocket.send_queue_bytes: expected an "
                                     "integer from 65536 to 1073741824, got \"4096\""});
  EXPECT_TRUE(parse("websocket: {send_queue_bytes: 65536}").ok());
}

TEST(DaemonConfigTest, RefusesUnknownKeysAndNamesTheAllowedOnes) {
  EXPECT_EQ(error_lines(parse("schedular:\n  max_concurrent: 2\nwebsocket: {clients: 3}\n").errors),
            (std::vector<std::string>{
                "vapord.yaml:1:1: schedular: unknown key (did you mean \"scheduler\"?); allowed "
                "keys: listen, database, queue, queue_max_bytes, scheduler, store, metrics, api, "
                "websocket, jobs",
                "vapord.yaml:3:13: websocket.clients: unknown key; allowed keys: max_clients, "
                "send_queue_bytes"}));
}

TEST(DaemonConfigTest, ReportsEveryError) {
  const std::string text = R"(listen: "::1:80"
scheduler: {stall_timeout: 90, max_concurrent: 0}
store:
  flush_interval: 2h
  synchronous: full
  synchronous: off
api:
  allowed_origins: [https://grafana.example.com/, 3]
  allowed_hosts: vapor.example.com
  max_header_bytes: 10
  token_file: ""
websocket: 12
metrics: {finished_job_ttl: -1s}
)";
  EXPECT_EQ(
      error_lines(parse(text).errors),
      (std::vector<std::string>{
          "vapord.yaml:1:9: listen: expected host:port such as 127.0.0.1:9786 or [::1]:9786, got "
          "\"::1:80\"",
          "vapord.yaml:2:28: scheduler.stall_timeout: expected a duration from 1ms to 24h with a "
          "unit (ms, s, m, h or d), got \"90\"",
          "vapord.yaml:2:48: scheduler.max_concurrent: expected a positive integer, got \"0\"",
          "vapord.yaml:4:19: store.flush_interval: expected a duration from 1ms to 1h with a unit "
          "(ms, s, m, h or d), got \"2h\"",
          "vapord.yaml:6:3: store.synchronous: duplicate key; first given at line 5, column 3",
          "vapord.yaml:8:21: api.allowed_origins[0]: expected an origin such as "
          "https://grafana.example.com (scheme, host and optional port; no path), got "
          "\"https://grafana.example.com/\"",
          "vapord.yaml:8:51: api.allowed_origins[1]: expected an origin such as "
          "https://grafana.example.com (scheme, host and optional port; no path), got \"3\"",
          "vapord.yaml:9:18: api.allowed_hosts: expected a list of strings, got "
          "\"vapor.example.com\"",
          "vapord.yaml:10:21: api.max_header_bytes: expected an integer from 1024 to 1048576, got "
          "\"10\"",
          "vapord.yaml:11:15: api.token_file: expected a file path, got \"\"",
          "vapord.yaml:12:12: websocket: expected a map, got \"12\"",
          "vapord.yaml:13:29: metrics.finished_job_ttl: expected a duration from 0ms to 8760h "
          "with a unit (ms, s, m, h or d), got \"-1s\""}));
}

TEST(DaemonConfigTest, RefusesAFileThatIsNotAMap) {
  EXPECT_EQ(error_lines(parse("- listen: 1\n").errors),
            std::vector<std::string>{"vapord.yaml:1:1: expected a map of settings, got a list"});
}

TEST(DaemonConfigTest, LoadRefusesFilesOverOneMebibyte) {
  const std::filesystem::path file = std::filesystem::temp_directory_path() /
                                     ("vapor-config-test-big-" + std::to_string(::getpid()));
  std::ofstream(file) << std::string(1024 * 1024 + 1, '#');
  const Parsed<DaemonConfig> parsed = load_daemon_config(file);
  std::filesystem::remove(file);
  EXPECT_EQ(error_lines(parsed.errors),
            std::vector<std::string>{file.string() +
                                     ": the file is 1048577 bytes, over the limit of 1048576 "
                                     "bytes"});
}

TEST(DaemonConfigTest, LoadNamesTheReasonAFileCannotBeRead) {
  const std::filesystem::path missing = data_dir / "vapord/missing.yaml";
  EXPECT_EQ(
      error_lines(load_daemon_config(missing).errors),
      std::vector<std::string>{missing.string() + ": cannot open: No such file or directory"});
}

// ---------------------------------------------------------------------------------------------
// Durations (vapord.yaml and job specs share the syntax).

TEST(ParseDurationTest, ReadsEachUnit) {
  const std::vector<std::pair<std::string, std::chrono::milliseconds>> cases{
      {"0ms", 0ms},
      {"1ms", 1ms},
      {"1500ms", 1500ms},
      {"2s", 2s},
      {"5m", 5min},
      {"1h", 1h},
      {"15d", 360h},
      {"0", 0ms},
      {"007s", 7s},
      {"9223372036854775807ms", std::chrono::milliseconds::max()},
      {"2562047788015h", std::chrono::hours(2'562'047'788'015)},
  };
  for (const auto& [text, expected] : cases) {
    EXPECT_EQ(parse_duration(text), expected) << text;
  }
}

TEST(ParseDurationTest, RefusesAnythingElse) {
  for (const char* text : {"",
                           "ms",
                           "s",
                           "150",
                           "-1s",
                           "+1s",
                           "1.5s",
                           "1 s",
                           " 1s",
                           "1s ",
                           "1S",
                           "1MS",
                           "1D",
                           "00",
                           "1hm",
                           "1m30s",
                           "0x10ms",
                           "1e3ms",
                           "9223372036854775808ms",
                           "9223372036854776s",
                           "2562047788016h",
                           "99999999999999999999999h"}) {
    EXPECT_EQ(parse_duration(text), std::nullopt) << text;
  }
}

}  // namespace
}  // namespace vapor::config
