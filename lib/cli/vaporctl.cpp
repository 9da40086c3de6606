#include "cli/vaporctl.hpp"

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "cli/detail/commands.hpp"
#include "client/api_client.hpp"

namespace vapor::cli {
namespace {

using namespace detail;

const char* const usage_text =
    "Usage: vaporctl [--url URL] [--token-file FILE] [--output table|json] COMMAND [ARGS]\n"
    "\n"
    "Commands:\n"
    "  jobs                 list every job\n"
    "  show JOB             one job and its spec (JOB: id or name)\n"
    "  events JOB           a job's state transitions\n"
    "  start JOB            start a queued job (needs the API token)\n"
    "  stop JOB             stop a queued or running job (needs the API token)\n"
    "  submit FILE          submit a job spec written in YAML or JSON (needs the API token)\n"
    "  watch [JOB...]       live progress of the given jobs (default: every unfinished job)\n"
    "  logs JOB [-f]        a command job's output (the last 64 KiB); -f: follow it until the\n"
    "                       job ends\n"
    "  push JOB [FILE|-]    send a push job's points: NDJSON, one point per line, from FILE or\n"
    "                       stdin, in batches (--batch N lines, default 1000, and at most\n"
    "                       512 KiB; sent again while vapord answers 429); the token is\n"
    "                       $VAPOR_PUSH_TOKEN (the job's push token) or the API token\n"
    "\n"
    "Options:\n"
    "  --url URL            vapord's address (default http://127.0.0.1:9786, or $VAPOR_URL)\n"
    "  --token-file FILE    the API token (default $VAPOR_TOKEN_FILE, then\n"
    "                       /var/lib/vapor/api-token)\n"
    "  --output json        print vapord's JSON instead of a table (read commands)\n"
    "\n"
    "Exit codes: 0 ok, 1 failed (a watched job failed, or a refusal), 2 usage or invalid spec,\n"
    "3 vapord unreachable, 4 no such job, 5 conflict, 6 unauthorized.\n";

std::optional<Options> parse_options(std::span<const std::string_view> args, std::ostream& err) {
  Options options;
  if (const char* url = std::getenv("VAPOR_URL"); url != nullptr && *url != '\0') options.url = url;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto arg = args[i];
    const auto value = [&](std::string_view name) -> std::optional<std::string> {
      if (i + 1 >= args.size()) {
        err << "vaporctl: " << name << " needs a value\n";
        return std::nullopt;
      }
      return std::string(args[++i]);
    };
    if (arg == "--url") {
      auto v = value(arg);
      if (!v) return std::nullopt;
      options.url = *v;
    } else if (arg == "--token-file") {
      auto v = value(arg);
      if (!v) return std::nullopt;
      options.token_file = *v;
    } else if (arg == "--output" || arg == "-o") {
      auto v = value(arg);
      if (!v) return std::nullopt;
      if (*v != "json" && *v != "table") {
        err << "vaporctl: --output takes table or json, not '" << *v << "'\n";
        return std::nullopt;
      }
      options.json_output = *v == "json";
    } else if (arg == "--batch") {
      auto v = value(arg);
      if (!v) return std::nullopt;
      std::size_t batch = 0;
      const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), batch);
      if (ec != std::errc() || end != v->data() + v->size() || batch == 0) {
        err << "vaporctl: --batch takes a number of points above 0, not '" << *v << "'\n";
        return std::nullopt;
      }
      options.batch = batch;
    } else if (arg == "-f" || arg == "--follow") {
      options.follow = true;
    } else if (arg == "--help" || arg == "-h") {
      options.command = "help";
    } else if (arg.starts_with("-") && arg.size() > 1) {
      err << "vaporctl: unknown option '" << arg << "'\n";
      return std::nullopt;
    } else if (options.command.empty()) {
      options.command = std::string(arg);
    } else {
      options.arguments.emplace_back(arg);
    }
  }
  return options;
}

std::string read_token(const Options& options) {
  std::vector<std::string> candidates;
  if (options.token_file) {
    candidates.push_back(*options.token_file);
  } else {
    if (const char* file = std::getenv("VAPOR_TOKEN_FILE"); file != nullptr && *file != '\0') {
      candidates.emplace_back(file);
    }
    candidates.emplace_back("/var/lib/vapor/api-token");
  }
  for (const auto& path : candidates) {
    std::ifstream in(path);
    std::string token;
    if (in >> token) return token;
  }
  return {};
}

}  // namespace

int run_vaporctl(std::span<const std::string_view> args, std::ostream& out, std::ostream& err,
                 const Terminal& terminal) {
  const auto options = parse_options(args, err);
  if (!options) {
    err << usage_text;
    return exit_code::usage;
  }
  if (options->command == "help") {
    out << usage_text;
    return exit_code::ok;
  }
  const auto endpoint = client::Endpoint::parse(options->url);
  if (!endpoint) {
    err << "vaporctl: " << endpoint.error().message << '\n';
    return exit_code::usage;
  }
  std::string token = read_token(*options);
  if (const char* push = std::getenv("VAPOR_PUSH_TOKEN");
      options->command == "push" && push != nullptr && *push != '\0') {
    token = push;  // the job's own token: it may push, and nothing else
  }
  const client::ApiClient api(*endpoint, std::move(token), std::chrono::seconds(10));
  const auto& command = options->command;
  const auto needs = [&](std::size_t count) {
    if (options->arguments.size() == count) return true;
    err << "vaporctl: '" << command << "' takes " << count
        << (count == 1 ? " argument" : " arguments") << "\n" << usage_text;
    return false;
  };
  if (command == "jobs") return needs(0) ? command_jobs(api, *options, out, err) : exit_code::usage;
  if (command == "show") return needs(1) ? command_show(api, *options, out, err) : exit_code::usage;
  if (command == "events") return needs(1) ? command_events(api, *options, out, err) : exit_code::usage;
  if (command == "start") return needs(1) ? command_change(api, *options, "start", out, err) : exit_code::usage;
  if (command == "stop") return needs(1) ? command_change(api, *options, "stop", out, err) : exit_code::usage;
  if (command == "submit") return needs(1) ? command_submit(api, *options, out, err) : exit_code::usage;
  if (command == "watch") return command_watch(api, *options, out, err, terminal);
  if (command == "logs") return needs(1) ? command_logs(api, *options, out, err) : exit_code::usage;
  if (command == "push") {
    if (options->arguments.empty() || options->arguments.size() > 2) {
      err << "vaporctl: 'push' takes a job and an optional file\n" << usage_text;
      return exit_code::usage;
    }
    return command_push(api, *options, out, err);
  }
  err << (command.empty() ? std::string("vaporctl: a command is needed\n")
                          : "vaporctl: unknown command '" + command + "'\n")
      << usage_text;
  return exit_code::usage;
}

}  // namespace vapor::cli
