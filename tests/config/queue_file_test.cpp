#include "config/queue_file.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace vapor::config {
namespace {

using namespace std::chrono_literals;

const std::filesystem::path data_dir = std::filesystem::path(VAPOR_TEST_DATA_DIR) / "data";
constexpr std::size_t one_mebibyte = 1024 * 1024;

std::vector<std::string> error_lines(const std::vector<ConfigError>& errors) {
  std::vector<std::string> lines;
  for (const ConfigError& error : errors) lines.push_back(error.to_string());
  return lines;
}

/// A temporary file removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    path_ = std::filesystem::temp_directory_path() /
            ("vapor-config-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++) +
             ".yaml");
    std::ofstream(path_, std::ios::binary) << content;
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() { std::filesystem::remove(path_); }

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

// ---------------------------------------------------------------------------------------------
// Bad queue files: each file gives exactly these errors, in file order. Expected lines leave out
// the folder; the test adds it, since load_queue_file labels errors with the path it was given.

struct BadFileCase {
  std::string file;
  std::vector<std::string> errors;
};

std::ostream& operator<<(std::ostream& out, const BadFileCase& bad) { return out << bad.file; }

std::string bad_file_test_name(const testing::TestParamInfo<BadFileCase>& param_info) {
  return param_info.param.file.substr(0, param_info.param.file.find('.'));
}

class BadQueueFileTest : public testing::TestWithParam<BadFileCase> {};

TEST_P(BadQueueFileTest, ReportsEveryErrorWithItsLocation) {
  const BadFileCase& bad = GetParam();
  const std::filesystem::path path = data_dir / "bad" / bad.file;
  const Parsed<QueueFile> parsed = load_queue_file(path, SpecDefaults{}, one_mebibyte);

  EXPECT_FALSE(parsed.ok());
  EXPECT_TRUE(parsed.value.jobs.empty()) << "no partial queue on error";
  std::vector<std::string> expected;
  for (const std::string& error : bad.errors) {
    expected.push_back((data_dir / "bad").string() + "/" + error);
  }
  EXPECT_EQ(error_lines(parsed.errors), expected);
}

const std::string job_keys =
    "name, model, epochs, steps_per_epoch, learning_rate, batch_size, seed, step_interval, "
    "start, priority, on_nonfinite, simulate, faults, kind, command, cwd, env, stop_grace, "
    "on_daemon_restart, stall_timeout";
const std::string duration_expected =
    "expected a duration from 1ms to 1h with a unit (ms, s, m, h or d), got ";
const std::string name_expected =
    "expected a job name of 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-', got ";

INSTANTIATE_TEST_SUITE_P(
    Corpus, BadQueueFileTest,
    testing::Values(
        BadFileCase{"wrong_type.yaml",
                    {"wrong_type.yaml:7:13: jobs[2].epochs: expected a positive integer, got "
                     "\"ten\""}},
        BadFileCase{"truncated.yaml",
                    {"truncated.yaml:5:1: invalid YAML: end of map flow not found"}},
        BadFileCase{"syntax_error.yaml",
                    {"syntax_error.yaml:4:4: invalid YAML: end of sequence not found"}},
        BadFileCase{"empty.yaml",
                    {"empty.yaml: the file is empty; expected a map with a \"jobs\" list"}},
        BadFileCase{"comments_only.yaml",
                    {"comments_only.yaml: the file is empty; expected a map with a \"jobs\" "
                     "list"}},
        BadFileCase{"not_a_map.yaml",
                    {"not_a_map.yaml:1:1: expected a map with a \"jobs\" list, got a list"}},
        BadFileCase{"missing_jobs.yaml",
                    {"missing_jobs.yaml:1:1: job: unknown key (did you mean \"jobs\"?); allowed "
                     "keys: jobs",
                     "missing_jobs.yaml:1:1: missing required key \"jobs\""}},
        BadFileCase{"jobs_not_a_list.yaml",
                    {"jobs_not_a_list.yaml:2:3: jobs: expected a list of jobs, got a map"}},
        BadFileCase{
            "numbers.yaml",
            {"numbers.yaml:3:13: jobs[0].epochs: expected a positive integer, got \"0\"",
             "numbers.yaml:4:22: jobs[0].steps_per_epoch: expected a positive integer, got "
             "\"-5\"",
             "numbers.yaml:5:17: jobs[0].batch_size: expected a positive integer up to "
             "18446744073709551615, got \"99999999999999999999\"",
             "numbers.yaml:6:11: jobs[0].seed: expected a non-negative integer, got \"-1\"",
             "numbers.yaml:7:20: jobs[0].learning_rate: expected a positive number, got \"0\"",
             "numbers.yaml:8:15: jobs[0].priority: expected an integer, got \"1.5\"",
             "numbers.yaml:10:13: jobs[1].epochs: expected a positive integer, got the string "
             "\"10\"",
             "numbers.yaml:11:20: jobs[1].learning_rate: expected a positive number, got "
             "\"true\"",
             "numbers.yaml:12:17: jobs[1].batch_size: expected a positive integer, got \"1e3\"",
             "numbers.yaml:13:11: jobs[1].seed: expected a non-negative integer up to "
             "18446744073709551615, got \"18446744073709551616\"",
             "numbers.yaml:15:13: jobs[2].epochs: epochs * steps_per_epoch is 100000000 steps, "
             "more than the limit of 10000000",
             "numbers.yaml:17:26: jobs[3].epochs: expected a positive integer up to 10000000, "
             "got \"20000000\"",
             "numbers.yaml:17:46: jobs[3].priority: expected an integer from "
             "-9223372036854775808 to 9223372036854775807, got \"9223372036854775808\""}},
        BadFileCase{"unknown_keys.yaml",
                    {"unknown_keys.yaml:2:5: jobs[0]: missing required key \"epochs\"",
                     "unknown_keys.yaml:3:5: jobs[0].epoch: unknown key (did you mean "
                     "\"epochs\"?); allowed keys: " +
                         job_keys,
                     "unknown_keys.yaml:5:7: jobs[0].simulate.initial_los: unknown key (did you "
                     "mean \"initial_loss\"?); allowed keys: initial_loss, final_loss, noise, "
                     "initial_accuracy, final_accuracy, decay",
                     "unknown_keys.yaml:6:1: version: unknown key; allowed keys: jobs"}},
        BadFileCase{"duplicate_names.yaml",
                    {"duplicate_names.yaml:6:11: jobs[2].name: duplicate job name \"train-a\"; "
                     "first used by jobs[0] at line 2",
                     "duplicate_names.yaml:8:12: jobs[3].name: duplicate job name \"train-b\"; "
                     "first used by jobs[1] at line 4"}},
        BadFileCase{"duplicate_keys.yaml",
                    {"duplicate_keys.yaml:4:5: jobs[0].epochs: duplicate key; first given at "
                     "line 3, column 5",
                     "duplicate_keys.yaml:7:7: jobs[0].faults.nan_at_step: duplicate key; first "
                     "given at line 6, column 7"}},
        BadFileCase{"deep_nesting.yaml", {"deep_nesting.yaml:4:44: nested deeper than 32 levels"}},
        BadFileCase{"invalid_utf8.yaml",
                    {"invalid_utf8.yaml:6:14: invalid UTF-8 (byte 0xEF); the file must be saved "
                     "as UTF-8"}},
        BadFileCase{"tabs.yaml",
                    {"tabs.yaml:3:1: tab character in indentation; YAML indents with spaces",
                     "tabs.yaml:5:5: tab character in indentation; YAML indents with spaces"}},
        BadFileCase{"two_documents.yaml",
                    {"two_documents.yaml:4:1: a second YAML document starts here; the file "
                     "must hold one"}},
        BadFileCase{
            "bad_duration.yaml",
            {"bad_duration.yaml:2:44: jobs[0].step_interval: " + duration_expected + "\"150\"",
             "bad_duration.yaml:3:44: jobs[1].step_interval: " + duration_expected + "\"2d\"",
             "bad_duration.yaml:4:48: jobs[2].step_interval: " + duration_expected + "\"-1s\"",
             "bad_duration.yaml:5:44: jobs[3].step_interval: " + duration_expected + "\"0ms\"",
             "bad_duration.yaml:6:48: jobs[4].step_interval: " + duration_expected + "\"2h\"",
             "bad_duration.yaml:7:45: jobs[5].step_interval: " + duration_expected + "\"5 m\"",
             "bad_duration.yaml:8:48: jobs[6].step_interval: " + duration_expected +
                 "\"99999999999999999999h\""}},
        BadFileCase{"bad_name.yaml",
                    {"bad_name.yaml:2:11: jobs[0].name: " + name_expected + "\"bad name!\"",
                     "bad_name.yaml:4:11: jobs[1].name: " + name_expected +
                         "\"a123456789012345678901234567890123456789...\"",
                     "bad_name.yaml:6:11: jobs[2].name: " + name_expected + "\"\"",
                     "bad_name.yaml:8:11: jobs[3].name: expected a string, got a list",
                     "bad_name.yaml:10:5: jobs[4]: missing required key \"name\""}},
        BadFileCase{
            "faults.yaml",
            {"faults.yaml:5:12: jobs[0].start: expected one of auto, manual, got \"later\"",
             "faults.yaml:6:19: jobs[0].on_nonfinite: expected one of fail, record, got "
             "\"ignore\"",
             "faults.yaml:9:19: jobs[0].simulate.final_loss: expected a number less than "
             "initial_loss (1), got \"1.5\"",
             "faults.yaml:10:14: jobs[0].simulate.noise: expected a number from 0 to 1, got "
             "\"2\"",
             "faults.yaml:11:23: jobs[0].simulate.final_accuracy: expected a number from 0 to 1, "
             "got \"1.01\"",
             "faults.yaml:12:14: jobs[0].simulate.decay: expected a positive number, got \"-1\"",
             "faults.yaml:14:21: jobs[0].faults.fail_at_step: expected a step from 1 to 100 "
             "(epochs * steps_per_epoch), got \"101\"",
             "faults.yaml:15:20: jobs[0].faults.nan_at_step: expected a step from 1 to 100 "
             "(epochs * steps_per_epoch), got \"0\"",
             "faults.yaml:17:25: jobs[0].faults.fail_probability: expected a number from 0 to 1, "
             "got \"1.5\"",
             "faults.yaml:18:17: jobs[0].faults.slowdown: missing required key \"factor\"",
             "faults.yaml:21:30: jobs[1].simulate.initial_loss: expected a number greater than "
             "final_loss (0.05), got \"0.01\"",
             "faults.yaml:22:13: jobs[1].faults: expected a map, got a list"}},
        BadFileCase{
            "several_errors.yaml",
            {"several_errors.yaml:6:13: jobs[1].epochs: expected a positive integer, got "
             "\"ten\"",
             "several_errors.yaml:9:20: jobs[2].learning_rate: expected a positive number, got "
             "\"fast\"",
             "several_errors.yaml:10:11: jobs[3].name: duplicate job name \"ok-job\"; first "
             "used by jobs[0] at line 3",
             "several_errors.yaml:14:5: jobs[4].colour: unknown key; allowed keys: " + job_keys,
             "several_errors.yaml:17:20: jobs[5].step_interval: " + duration_expected + "\"10\"",
             "several_errors.yaml:18:1: extra: unknown key; allowed keys: jobs"}}),
    bad_file_test_name);

TEST(QueueFileErrorTest, CarriesFileLineColumnPathAndMessageApart) {
  const Parsed<QueueFile> parsed =
      parse_queue("jobs:\n  - name: a\n    epochs: ten\n", "jobs.yaml", SpecDefaults{});

  ASSERT_EQ(parsed.errors.size(), 1U);
  EXPECT_EQ(parsed.errors[0], (ConfigError{"jobs.yaml", 3, 13, "jobs[0].epochs",
                                           "expected a positive integer, got \"ten\""}));
  EXPECT_EQ(format_errors(parsed.errors),
            "jobs.yaml:3:13: jobs[0].epochs: expected a positive integer, got \"ten\"");
}

TEST(QueueFileErrorTest, FormatsOneErrorPerLine) {
  const std::vector<ConfigError> errors{{"jobs.yaml", 0, 0, "", "the file is empty"},
                                        {"jobs.yaml", 2, 3, "jobs[0]", "bad"}};
  EXPECT_EQ(format_errors(errors), "jobs.yaml: the file is empty\njobs.yaml:2:3: jobs[0]: bad");
}

TEST(QueueFileErrorTest, EmptyValueIsReportedAtItsKey) {
  const Parsed<QueueFile> parsed =
      parse_queue("jobs:\n  - name: a\n    epochs:\n    model: x\n", "jobs.yaml", {});
  EXPECT_EQ(error_lines(parsed.errors),
            std::vector<std::string>{
                "jobs.yaml:3:5: jobs[0].epochs: expected a positive integer, got null"});
}

// ---------------------------------------------------------------------------------------------
// Hostile input: deep nesting and alias cycles give an error, never a crash or a hang.

TEST(QueueFileHostileInputTest, HundredThousandOpenBracketsGiveAnError) {
  // Unclosed, yaml-cpp reads `[[` as a list holding a one-pair map whose key is a list, so each
  // bracket after the first opens two levels: the 33rd level is the 17th bracket (column 23).
  const std::string text = "jobs: " + std::string(100'000, '[');
  const Parsed<QueueFile> parsed = parse_queue(text, "jobs.yaml", {});
  EXPECT_EQ(error_lines(parsed.errors),
            std::vector<std::string>{"jobs.yaml:1:23: nested deeper than 32 levels"});
}

TEST(QueueFileHostileInputTest, DeeplyNestedBlockListsGiveAnError) {
  std::string text = "jobs:\n";
  // List n starts at column 2n-1 and is level n+1 (under the top map): level 33 is column 63.
  for (int level = 0; level < 100'000; ++level) text += "- ";
  text += "x\n";
  const Parsed<QueueFile> parsed = parse_queue(text, "jobs.yaml", {});
  EXPECT_EQ(error_lines(parsed.errors),
            std::vector<std::string>{"jobs.yaml:2:63: nested deeper than 32 levels"});
}

TEST(QueueFileHostileInputTest, DeepFlowMapsGiveAnError) {
  std::string text = "jobs: ";
  for (int level = 0; level < 50'000; ++level) text += "{a: ";
  const Parsed<QueueFile> parsed = parse_queue(text, "jobs.yaml", {});
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.errors[0].message, "nested deeper than 32 levels");
}

TEST(QueueFileHostileInputTest, SelfReferentialAliasIsReportedNotFollowed) {
  const Parsed<QueueFile> parsed = parse_queue("jobs: &loop [*loop]\n", "jobs.yaml", {});
  EXPECT_EQ(error_lines(parsed.errors),
            std::vector<std::string>{"jobs.yaml:1:7: jobs[0]: expected a job spec (a map of "
                                     "job keys), got a list"});
}

TEST(QueueFileHostileInputTest, LongValuesAreCutInMessages) {
  const std::string text = "jobs:\n  - name: a\n    epochs: " + std::string(10'000, 'x') + "\n";
  const Parsed<QueueFile> parsed = parse_queue(text, "jobs.yaml", {});
  ASSERT_EQ(parsed.errors.size(), 1U);
  EXPECT_EQ(parsed.errors[0].message,
            "expected a positive integer, got \"" + std::string(40, 'x') + "...\"");
}

TEST(QueueFileHostileInputTest, ControlCharactersAreEscapedInMessages) {
  const Parsed<QueueFile> parsed =
      parse_queue("jobs:\n  - name: \"a\\tb\\u0001\\\"\"\n    epochs: 1\n", "jobs.yaml", {});
  ASSERT_EQ(parsed.errors.size(), 1U);
  EXPECT_EQ(parsed.errors[0].message, name_expected + "\"a\\tb\\x01\\\"\"");
}

TEST(QueueFileHostileInputTest, InvalidUtf8IsFoundBeforeParsing) {
  struct Case {
    std::string text;
    std::string expected;
  };
  const std::vector<Case> cases{
      {"jobs: [\xC0\xAF]",
       "x.yaml:1:8: invalid UTF-8 (byte 0xC0); the file must be saved as UTF-8"},
      {"a\nb: \xED\xA0\x80",
       "x.yaml:2:4: invalid UTF-8 (byte 0xED); the file must be saved as UTF-8"},
      {"jobs: \xF4\x90\x80\x80",
       "x.yaml:1:7: invalid UTF-8 (byte 0xF4); the file must be saved as UTF-8"},
      {"jobs: \xE2\x82", "x.yaml:1:7: invalid UTF-8 (byte 0xE2); the file must be saved as UTF-8"},
      {"\xFF\xFEj\0o\0b\0s\0",
       "x.yaml:1:1: invalid UTF-8 (byte 0xFF); the file must be saved as UTF-8"},
  };
  for (const Case& bad : cases) {
    EXPECT_EQ(error_lines(parse_queue(bad.text, "x.yaml", {}).errors),
              std::vector<std::string>{bad.expected})
        << bad.text;
  }
}

// ---------------------------------------------------------------------------------------------
// Reading files: size limit, unreadable files.

TEST(LoadQueueFileTest, RefusesAFileLargerThanTheLimit) {
  const TempFile file("jobs:\n  - name: a\n    epochs: 1\n" + std::string(2000, '#') + "\n");
  const Parsed<QueueFile> parsed = load_queue_file(file.path(), {}, 1000);
  EXPECT_EQ(error_lines(parsed.errors),
            std::vector<std::string>{file.path().string() +
                                     ": the file is 2033 bytes, over the limit of 1000 bytes"});
}

TEST(LoadQueueFileTest, AcceptsAFileOfExactlyTheLimit) {
  const std::string text = "jobs:\n  - name: a\n    epochs: 1\n";
  const TempFile file(text);
  EXPECT_TRUE(load_queue_file(file.path(), {}, text.size()).ok());
}

TEST(LoadQueueFileTest, NamesTheReasonAMissingFileCannotBeRead) {
  const std::filesystem::path missing = data_dir / "no-such-file.yaml";
  EXPECT_EQ(
      error_lines(load_queue_file(missing, {}, one_mebibyte).errors),
      std::vector<std::string>{missing.string() + ": cannot open: No such file or directory"});
}

TEST(LoadQueueFileTest, NamesTheReasonADirectoryCannotBeRead) {
  EXPECT_EQ(error_lines(load_queue_file(data_dir, {}, one_mebibyte).errors),
            std::vector<std::string>{data_dir.string() + ": cannot read: Is a directory"});
}

// ---------------------------------------------------------------------------------------------
// Good files.

TEST(GoodQueueFileTest, ReadsEveryKey) {
  const Parsed<QueueFile> parsed =
      load_queue_file(data_dir / "good/full.yaml", SpecDefaults{}, one_mebibyte);
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors);
  ASSERT_EQ(parsed.value.jobs.size(), 3U);

  core::JobSpec full;
  full.name = "resnet50-imagenet";
  full.model = "resnet50";
  full.epochs = 90;
  full.steps_per_epoch = 500;
  full.learning_rate = 0.1;
  full.batch_size = 256;
  full.seed = std::numeric_limits<std::uint64_t>::max();
  full.step_interval = 150ms;
  full.start = core::StartMode::manual;
  full.priority = -3;
  full.on_nonfinite = core::NonFinitePolicy::record;
  full.simulate = core::SimulationParams{6.9, 0.8, 0.02, 0.001, 0.76, 3.5};
  full.faults.fail_at_step = 40000;
  full.faults.fail_probability = 0.0001;
  full.faults.nan_at_step = 30000;
  full.faults.stall_at_step = 44000;
  full.faults.slowdown = core::Slowdown{1000, 2.5};
  EXPECT_EQ(parsed.value.jobs[0], full);

  core::JobSpec json_style;
  json_style.name = "json.style_job";
  json_style.epochs = 2;
  json_style.step_interval = 2s;
  json_style.seed = 0;
  EXPECT_EQ(parsed.value.jobs[1], json_style);

  EXPECT_EQ(parsed.value.jobs[2].name, "long-interval");
  EXPECT_EQ(parsed.value.jobs[2].step_interval, 1h);
}

TEST(GoodQueueFileTest, AppliesDefaultsAndDerivesTheSeedFromTheName) {
  const Parsed<QueueFile> parsed =
      load_queue_file(data_dir / "good/minimal.yaml", SpecDefaults{750ms}, one_mebibyte);
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors);
  ASSERT_EQ(parsed.value.jobs.size(), 1U);

  core::JobSpec expected;
  expected.name = "mnist-mlp";
  expected.epochs = 3;
  expected.seed = core::seed_from_name("mnist-mlp");
  expected.step_interval = 750ms;  // from SpecDefaults, not JobSpec's own default
  EXPECT_EQ(parsed.value.jobs[0], expected);
  EXPECT_EQ(expected.model, "mlp");
  EXPECT_EQ(expected.steps_per_epoch, 100U);
  EXPECT_NE(expected.seed, 0U);
}

TEST(GoodQueueFileTest, SameNameGivesSameSeedAcrossParses) {
  const auto first = parse_queue("jobs: [{name: a, epochs: 1}]", "x", {});
  const auto second = parse_queue("jobs:\n  - epochs: 5\n    name: a\n", "y", {});
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first.value.jobs[0].seed, second.value.jobs[0].seed);
  const auto other = parse_queue("jobs: [{name: b, epochs: 1}]", "x", {});
  EXPECT_NE(first.value.jobs[0].seed, other.value.jobs[0].seed);
}

TEST(GoodQueueFileTest, ACommentedOutQueueIsEmptyNotAnError) {
  const Parsed<QueueFile> parsed =
      load_queue_file(data_dir / "good/empty_list.yaml", {}, one_mebibyte);
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors);
  EXPECT_TRUE(parsed.value.jobs.empty());
  EXPECT_TRUE(parse_queue("jobs: []", "x", {}).ok());
}

TEST(GoodQueueFileTest, KeepsFileOrder) {
  const auto parsed = parse_queue("jobs: [{name: c, epochs: 1}, {name: a, epochs: 1}]", "x", {});
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed.value.jobs.size(), 2U);
  EXPECT_EQ(parsed.value.jobs[0].name, "c");
  EXPECT_EQ(parsed.value.jobs[1].name, "a");
}

TEST(GoodQueueFileTest, AcceptsTheEdgesOfEachRange) {
  const auto parsed = parse_queue(R"(jobs:
  - name: edges
    epochs: 100000
    steps_per_epoch: 100
    step_interval: 1ms
    simulate: {noise: 0, initial_accuracy: 0, final_accuracy: 1}
    faults:
      fail_at_step: 10000000
      fail_probability: 1
      slowdown: {at_step: 1, factor: 1000}
)",
                                  "x", {});
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors);
  EXPECT_EQ(parsed.value.jobs[0].total_steps(), 10'000'000U);
  EXPECT_EQ(parsed.value.jobs[0].step_interval, 1ms);
}

// ---------------------------------------------------------------------------------------------
// One spec as JSON (the API) and back.

TEST(ParseJobSpecTest, ReadsJson) {
  const auto parsed =
      parse_job_spec(R"({"name":"api-job","epochs":4,"learning_rate":3E-4,"start":"manual",)"
                     R"("faults":{"slowdown":{"at_step":10,"factor":1.5E0}}})",
                     "request body", SpecDefaults{2s});
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors);
  EXPECT_EQ(parsed.value.name, "api-job");
  EXPECT_EQ(parsed.value.epochs, 4U);
  EXPECT_EQ(parsed.value.learning_rate, 3e-4);
  EXPECT_EQ(parsed.value.start, core::StartMode::manual);
  EXPECT_EQ(parsed.value.step_interval, 2s);
  EXPECT_EQ(parsed.value.seed, core::seed_from_name("api-job"));
  EXPECT_EQ(parsed.value.faults.slowdown, (core::Slowdown{10, 1.5}));
}

TEST(ParseJobSpecTest, PathsStartAtTheSpecKeys) {
  const auto parsed =
      parse_job_spec(R"({"name": "x", "epochs": "3", "simulate": {"noise": -1}, "colour": 1})",
                     "request body", {});
  EXPECT_EQ(error_lines(parsed.errors),
            (std::vector<std::string>{
                "request body:1:25: epochs: expected a positive integer, got the string \"3\"",
                "request body:1:52: simulate.noise: expected a number from 0 to 1, got \"-1\"",
                "request body:1:57: colour: unknown key; allowed keys: " + job_keys}));
}

TEST(ParseJobSpecTest, ReportsWholeBodyProblems) {
  EXPECT_EQ(
      error_lines(parse_job_spec("", "request body", {}).errors),
      std::vector<std::string>{"request body: empty; expected a job spec (a map of job keys)"});
  EXPECT_EQ(error_lines(parse_job_spec("[1, 2]", "request body", {}).errors),
            std::vector<std::string>{
                "request body:1:1: expected a job spec (a map of job keys), got a list"});
  EXPECT_EQ(error_lines(parse_job_spec("{}", "request body", {}).errors),
            (std::vector<std::string>{"request body:1:1: missing required key \"name\"",
                                      "request body:1:1: missing required key \"epochs\""}));
  EXPECT_EQ(error_lines(parse_job_spec(R"({"name": "a", "epochs": 1)", "request body", {}).errors),
            std::vector<std::string>{"request body:1:1: invalid YAML: end of map flow not found"});
}

core::JobSpec spec_with_everything() {
  core::JobSpec spec;
  spec.name = "everything";
  spec.model = "vit \"large\" \xC3\xA9";
  spec.epochs = 12;
  spec.steps_per_epoch = 345;
  spec.learning_rate = 1.0 / 3.0;
  spec.batch_size = 7;
  spec.seed = std::numeric_limits<std::uint64_t>::max();
  spec.step_interval = 1500ms;
  spec.start = core::StartMode::manual;
  spec.priority = std::numeric_limits<std::int64_t>::min();
  spec.on_nonfinite = core::NonFinitePolicy::record;
  spec.simulate = core::SimulationParams{
      std::numeric_limits<double>::max(), 5e-324, 0.1, 0.0, 1.0, 2.2250738585072014e-308};
  spec.faults.fail_at_step = 1;
  spec.faults.fail_probability = 0.3;
  spec.faults.nan_at_step = 4140;
  spec.faults.stall_at_step = 4000;
  spec.faults.slowdown = core::Slowdown{2, 1.0000000000000002};
  return spec;
}

TEST(JobSpecJsonTest, WritesEveryFieldExplicitly) {
  const boost::json::object json =
      boost::json::parse(job_spec_to_json(spec_with_everything())).as_object();
  for (const char* key :
       {"name", "model", "epochs", "steps_per_epoch", "learning_rate", "batch_size", "seed",
        "step_interval", "start", "priority", "on_nonfinite", "simulate", "faults"}) {
    EXPECT_TRUE(json.contains(key)) << key;
  }
  EXPECT_EQ(json.at("seed").as_uint64(), std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(json.at("step_interval").as_string(), "1500ms");
  EXPECT_EQ(json.at("start").as_string(), "manual");
  EXPECT_EQ(json.at("on_nonfinite").as_string(), "record");
  EXPECT_EQ(json.at("simulate").as_object().size(), 6U);
  EXPECT_EQ(json.at("faults").as_object().size(), 5U);
}

TEST(JobSpecJsonTest, WritesOnlyTheFaultsThatAreSet) {
  core::JobSpec spec;
  spec.name = "a";
  spec.seed = core::seed_from_name("a");
  spec.faults.nan_at_step = 3;
  const boost::json::object json = boost::json::parse(job_spec_to_json(spec)).as_object();
  EXPECT_EQ(boost::json::serialize(json.at("faults")), R"({"nan_at_step":3})");
  EXPECT_EQ(json.at("start").as_string(), "auto");
  EXPECT_EQ(json.at("on_nonfinite").as_string(), "fail");
}

TEST(JobSpecJsonTest, WritesStepIntervalInTheLargestExactUnit) {
  const std::vector<std::pair<std::chrono::milliseconds, std::string>> cases{
      {150ms, "150ms"}, {1500ms, "1500ms"}, {2s, "2s"}, {90s, "90s"}, {5min, "5m"}, {1h, "1h"}};
  for (const auto& [interval, text] : cases) {
    core::JobSpec spec;
    spec.name = "a";
    spec.step_interval = interval;
    const boost::json::object json = boost::json::parse(job_spec_to_json(spec)).as_object();
    EXPECT_EQ(json.at("step_interval").as_string(), text);
  }
}

void expect_round_trip(const core::JobSpec& spec) {
  const std::string json = job_spec_to_json(spec);
  // Other defaults at read time must not matter: every field is written.
  const Parsed<core::JobSpec> parsed = parse_job_spec(json, "stored spec", SpecDefaults{42ms});
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors) << "\n" << json;
  EXPECT_EQ(parsed.value, spec) << json;
}

TEST(JobSpecJsonTest, RoundTripsHandPickedSpecs) {
  core::JobSpec plain;
  plain.name = "plain";
  plain.seed = core::seed_from_name("plain");
  expect_round_trip(plain);

  expect_round_trip(spec_with_everything());

  core::JobSpec slowdown_only;
  slowdown_only.name = "slow.down_1";
  slowdown_only.epochs = 2;
  slowdown_only.step_interval = 1h;
  slowdown_only.seed = 0;
  slowdown_only.priority = std::numeric_limits<std::int64_t>::max();
  slowdown_only.faults.slowdown = core::Slowdown{200, 1000.0};
  expect_round_trip(slowdown_only);

  core::JobSpec tiny_numbers;
  tiny_numbers.name = "tiny";
  tiny_numbers.learning_rate = 5e-324;
  tiny_numbers.simulate.noise = 1e-300;
  tiny_numbers.faults.fail_probability = 0.1 + 0.2;
  expect_round_trip(tiny_numbers);
}

TEST(JobSpecJsonTest, RoundTripsRandomSpecs) {
  std::mt19937_64 random(20240601);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_real_distribution<double> exponent(-300.0, 300.0);
  for (int i = 0; i < 500; ++i) {
    core::JobSpec spec;
    spec.name = "job-" + std::to_string(i);
    spec.model = "model" + std::to_string(random() % 1000);
    spec.epochs = 1 + random() % 1000;
    spec.steps_per_epoch = 1 + random() % 10'000;
    spec.learning_rate = std::pow(10.0, exponent(random));
    spec.batch_size = 1 + random();
    spec.seed = random();
    spec.step_interval =
        std::chrono::milliseconds(1 + static_cast<std::int64_t>(random() % 3'600'000));
    spec.start = random() % 2 == 0 ? core::StartMode::automatic : core::StartMode::manual;
    spec.priority = static_cast<std::int64_t>(random());
    spec.on_nonfinite =
        random() % 2 == 0 ? core::NonFinitePolicy::fail : core::NonFinitePolicy::record;
    spec.simulate.initial_loss = 1.0 + unit(random) * 10.0;
    spec.simulate.final_loss = unit(random) * 0.9 + 1e-9;
    spec.simulate.noise = unit(random);
    spec.simulate.initial_accuracy = unit(random);
    spec.simulate.final_accuracy = unit(random);
    spec.simulate.decay = std::pow(10.0, exponent(random));
    const std::uint64_t total = spec.total_steps();
    if (random() % 2 == 0) spec.faults.fail_at_step = 1 + random() % total;
    if (random() % 2 == 0) spec.faults.fail_probability = unit(random);
    if (random() % 2 == 0) spec.faults.nan_at_step = 1 + random() % total;
    if (random() % 2 == 0) spec.faults.stall_at_step = 1 + random() % total;
    if (random() % 2 == 0) {
      spec.faults.slowdown = core::Slowdown{1 + random() % total, 1e-3 + unit(random) * 999.0};
    }
    expect_round_trip(spec);
    if (testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace vapor::config

namespace vapor::config {
namespace {

// ---------------------------------------------------------------------------------------------
// Command jobs (kind: command)

TEST(CommandJobSpecTest, ReadsTheProcessAndResolvesCwdAgainstTheQueueFolder) {
  const SpecDefaults defaults{1500ms, "/srv/queue"};
  const Parsed<QueueFile> parsed = parse_queue(
      "jobs:\n"
      "  - name: digits-mlp\n"
      "    kind: command\n"
      "    command: [python3, train.py, --epochs, \"30\"]\n"
      "    cwd: experiments/digits\n"
      "    env: {OMP_NUM_THREADS: \"4\"}\n"
      "    epochs: 30\n"
      "    steps_per_epoch: 1\n"
      "    stop_grace: 30s\n"
      "    on_daemon_restart: requeue\n"
      "  - name: unplanned\n"
      "    kind: command\n"
      "    command: [./run.sh]\n",
      "jobs.yaml", defaults);
  ASSERT_TRUE(parsed.ok()) << format_errors(parsed.errors);
  const core::JobSpec& digits = parsed.value.jobs[0];
  EXPECT_EQ(digits.kind, core::JobKind::command);
  EXPECT_EQ(digits.command.argv,
            (std::vector<std::string>{"python3", "train.py", "--epochs", "30"}));
  EXPECT_EQ(digits.command.cwd, "/srv/queue/experiments/digits");
  EXPECT_EQ(digits.command.env,
            (std::vector<std::pair<std::string, std::string>>{{"OMP_NUM_THREADS", "4"}}));
  EXPECT_EQ(digits.command.stop_grace, 30s);
  EXPECT_EQ(digits.command.on_daemon_restart, core::OnDaemonRestart::requeue);
  EXPECT_EQ(digits.total_steps(), 30u);
  const core::JobSpec& unplanned = parsed.value.jobs[1];
  EXPECT_EQ(unplanned.total_steps(), 0u) << "no epochs: the trainer's points say the progress";
  EXPECT_EQ(unplanned.command.cwd, "/srv/queue") << "the queue file's folder by default";

  // Stored as JSON and read back at restart: the same spec, cwd absolute.
  for (const core::JobSpec& spec : parsed.value.jobs) {
    const auto again = parse_job_spec(job_spec_to_json(spec), "stored", SpecDefaults{});
    ASSERT_TRUE(again.ok()) << format_errors(again.errors) << job_spec_to_json(spec);
    EXPECT_EQ(again.value, spec) << job_spec_to_json(spec);
  }
}

TEST(CommandJobSpecTest, RefusalsSayWhatBelongsToWhichKind) {
  const Parsed<QueueFile> parsed = parse_queue(
      "jobs:\n"
      "  - {name: a, kind: command}\n"
      "  - {name: b, epochs: 1, command: [x], cwd: /tmp}\n"
      "  - {name: c, kind: command, command: [x], simulate: {noise: 0.1}}\n"
      "  - {name: d, kind: command, command: [], env: {VAPOR_JOB_ID: \"9\", A=B: x}}\n"
      "  - {name: e, kind: docker, epochs: 1}\n",
      "jobs.yaml", {});
  EXPECT_EQ(error_lines(parsed.errors),
            (std::vector<std::string>{
                "jobs.yaml:2:5: jobs[0]: missing required key \"command\"",
                "jobs.yaml:3:26: jobs[1].command: command is for command jobs (kind: command)",
                "jobs.yaml:3:40: jobs[1].cwd: cwd is for command jobs (kind: command)",
                "jobs.yaml:4:44: jobs[2].simulate: simulate is for simulated jobs",
                "jobs.yaml:5:39: jobs[3].command: expected a list of 1 to 4096 arguments (the "
                "program first), got a list",
                "jobs.yaml:5:49: jobs[3].env.VAPOR_JOB_ID: \"VAPOR_JOB_ID\" is not an environment "
                "variable vapord can set (no '=', and VAPOR_* are vapord's own)",
                "jobs.yaml:5:68: jobs[3].env.A=B: \"A=B\" is not an environment variable vapord can "
                "set (no '=', and VAPOR_* are vapord's own)",
                "jobs.yaml:6:21: jobs[4].kind: expected one of simulated, command, push, got "
                "\"docker\""}));
}

}  // namespace
}  // namespace vapor::config

namespace vapor::config {
namespace {

TEST(JobNameTest, AllDigitNamesAreRefusedForNewJobsAndKeptForStoredOnes) {
  const Parsed<QueueFile> parsed = parse_queue(
      "jobs:\n  - {name: \"0003\", epochs: 1}\n  - {name: run-3, epochs: 1}\n", "jobs.yaml", {});
  EXPECT_EQ(error_lines(parsed.errors),
            (std::vector<std::string>{
                "jobs.yaml:2:12: jobs[0].name: expected a job name with a character other than a "
                "digit (an all-digit name would be read as a job id), got \"0003\""}));
  SpecDefaults stored;
  stored.allow_numeric_names = true;
  const auto restored = parse_job_spec(R"({"name":"0003","epochs":1})", "stored", stored);
  ASSERT_TRUE(restored.ok()) << format_errors(restored.errors);
  EXPECT_EQ(restored.value.name, "0003");
}

}  // namespace
}  // namespace vapor::config
