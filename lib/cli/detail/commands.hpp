#pragma once

// vaporctl's commands, one file per kind (job_commands.cpp, push_command.cpp,
// watch_command.cpp), and what they share: the options, and turning vapord's answers into exit
// codes, tables and text (output.cpp). Included by lib/cli's sources alone.

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "cli/vaporctl.hpp"
#include "support/result.hpp"

namespace vapor::client {
class ApiClient;
struct ApiResponse;
}  // namespace vapor::client

namespace vapor::cli::detail {

struct Options {
  std::string url = "http://127.0.0.1:9786";
  std::optional<std::string> token_file;
  bool json_output = false;
  bool follow = false;  ///< logs -f
  std::size_t batch = 1000;  ///< push --batch
  std::string command;
  std::vector<std::string> arguments;
};

/// Maps an HTTP status to an exit code, printing vapord's error message.
int report_status(const client::ApiResponse& response, std::ostream& err);
/// Settles an answer that needs no table: prints why it failed and returns its exit code, or
/// with --output json prints vapord's JSON and returns ok. Nothing means "print it as a table".
std::optional<int> finish(const Result<client::ApiResponse>& response, const Options& options,
                          std::ostream& out, std::ostream& err);
/// A field as a table shows it: "-" when absent (or its `_nonfinite` flag), numbers short.
std::string field_text(const boost::json::object& object, std::string_view key);
void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out);
std::string eta_text(const boost::json::object& job);
std::string progress_text(const boost::json::object& job);

int command_jobs(const client::ApiClient& api, const Options& options, std::ostream& out,
                 std::ostream& err);
int command_show(const client::ApiClient& api, const Options& options, std::ostream& out,
                 std::ostream& err);
int command_events(const client::ApiClient& api, const Options& options, std::ostream& out,
                   std::ostream& err);
/// start JOB / stop JOB (`verb`).
int command_change(const client::ApiClient& api, const Options& options, std::string_view verb,
                   std::ostream& out, std::ostream& err);
int command_submit(const client::ApiClient& api, const Options& options, std::ostream& out,
                   std::ostream& err);
int command_logs(const client::ApiClient& api, const Options& options, std::ostream& out,
                 std::ostream& err);
/// push JOB [FILE|-]: NDJSON points to a push job, `options.batch` lines a request.
int command_push(const client::ApiClient& api, const Options& options, std::ostream& out,
                 std::ostream& err);
int command_watch(const client::ApiClient& api, const Options& options, std::ostream& out,
                  std::ostream& err, const Terminal& terminal);

}  // namespace vapor::cli::detail
