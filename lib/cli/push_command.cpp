#include <chrono>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "cli/detail/commands.hpp"
#include "client/api_client.hpp"

namespace vapor::cli::detail {
namespace {

/// A push batch stays well within vapord's default api.max_body_bytes (1 MiB).
constexpr std::size_t push_batch_bytes = 512 * 1024;
/// How often a batch is sent again while vapord answers 429 (its store is behind).
constexpr int push_retries = 30;

/// Sends one batch of NDJSON lines (file lines `first_line`..); false when it was refused.
bool push_batch(const client::ApiClient& api, const std::string& target, const std::string& body,
                std::size_t first_line, std::size_t last_line, std::size_t& pushed,
                std::ostream& err, int& code) {
  auto response = api.post(target, body, "application/x-ndjson");
  for (int retry = 0; retry < push_retries && response && response->status == 429; ++retry) {
    std::this_thread::sleep_for(std::chrono::seconds(1));  // vapord says Retry-After: 1
    response = api.post(target, body, "application/x-ndjson");
  }
  if (!response) {
    err << "vaporctl: " << response.error().message << '\n';
    code = exit_code::unreachable;
    return false;
  }
  if (response->status >= 300) {
    err << "vaporctl: the batch of lines " << first_line << " to " << last_line
        << " was refused; nothing of it was recorded\n";
    code = report_status(*response, err);
    return false;
  }
  const auto* answer = response->body.if_object();
  const auto* accepted = answer ? answer->if_contains("accepted") : nullptr;
  pushed += accepted && accepted->is_uint64() ? accepted->get_uint64()
            : accepted && accepted->is_int64() ? static_cast<std::size_t>(accepted->get_int64())
                                               : 0;
  return true;
}

}  // namespace

int command_push(const client::ApiClient& api, const Options& options, std::ostream& out,
                 std::ostream& err) {
  const std::string& job = options.arguments.at(0);
  const std::string source = options.arguments.size() > 1 ? options.arguments[1] : "-";
  std::ifstream file;
  if (source != "-") {
    file.open(source);
    if (!file) {
      err << "vaporctl: cannot read " << source << '\n';
      return exit_code::usage;
    }
  }
  std::istream& in = source == "-" ? std::cin : file;
  const std::string target = "/api/v1/jobs/" + job + "/points";  // names need no escaping
  std::string body;
  std::size_t lines_in_batch = 0;
  std::size_t line_number = 0;
  std::size_t first_line = 1;
  std::size_t pushed = 0;
  std::size_t batches = 0;
  int code = exit_code::ok;
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    if (lines_in_batch == 0) first_line = line_number;
    body += line;
    body += '\n';
    if (++lines_in_batch == options.batch || body.size() >= push_batch_bytes) {
      if (!push_batch(api, target, body, first_line, line_number, pushed, err, code)) return code;
      ++batches;
      body.clear();
      lines_in_batch = 0;
    }
  }
  if (lines_in_batch > 0) {
    if (!push_batch(api, target, body, first_line, line_number, pushed, err, code)) return code;
    ++batches;
  }
  out << "pushed " << pushed << (pushed == 1 ? " point" : " points") << " to " << job << " in "
      << batches << (batches == 1 ? " batch" : " batches") << '\n';
  return exit_code::ok;
}

}  // namespace vapor::cli::detail
