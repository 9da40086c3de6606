#include "cli/vaporctl.hpp"

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include "cli/progress_view.hpp"
#include "client/api_client.hpp"
#include "config/queue_file.hpp"

namespace vapor::cli {
namespace {

namespace json = boost::json;

struct Options {
  std::string url = "http://127.0.0.1:9786";
  std::optional<std::string> token_file;
  bool json_output = false;
  bool follow = false;  ///< logs -f
  std::size_t batch = 1000;  ///< push --batch
  std::string command;
  std::vector<std::string> arguments;
};

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

/// Maps an HTTP status to an exit code, printing vapord's error message.
int report_status(const client::ApiResponse& response, std::ostream& err) {
  if (response.status < 300) return exit_code::ok;
  std::string message = "HTTP " + std::to_string(response.status);
  if (const auto* object = response.body.if_object()) {
    if (const auto* error = object->if_contains("error"); error != nullptr && error->is_object()) {
      if (const auto* text = error->as_object().if_contains("message"); text && text->is_string()) {
        message += ": " + std::string(text->get_string());
      }
      if (const auto* details = error->as_object().if_contains("details");
          details != nullptr && details->is_array()) {
        for (const auto& detail : details->as_array()) {
          if (detail.is_string()) message += "\n  " + std::string(detail.get_string());
        }
      }
    }
  }
  err << "vaporctl: " << message << '\n';
  switch (response.status) {
    case 401:
    case 403: return exit_code::unauthorized;
    case 404: return exit_code::not_found;
    case 409: return exit_code::conflict;
    case 400:
    case 413:
    case 415: return exit_code::usage;
    default: return exit_code::failed;
  }
}

/// Settles an answer that needs no table: prints why it failed and returns its exit code, or
/// with --output json prints vapord's JSON and returns ok. Nothing means "print it as a table".
std::optional<int> finish(const Result<client::ApiResponse>& response, const Options& options,
                          std::ostream& out, std::ostream& err) {
  if (!response) {
    err << "vaporctl: " << response.error().message << '\n';
    return exit_code::unreachable;
  }
  if (const int code = report_status(*response, err); code != exit_code::ok) return code;
  if (options.json_output) {
    out << json::serialize(response->body) << '\n';
    return exit_code::ok;
  }
  return std::nullopt;
}

std::string field_text(const json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  if (value == nullptr || value->is_null()) {
    const auto* flag = object.if_contains(std::string(key) + "_nonfinite");
    return flag != nullptr && flag->is_string() ? std::string(flag->get_string()) : "-";
  }
  if (value->is_string()) return std::string(value->get_string());
  if (value->is_double()) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%.4g", value->get_double());
    return buffer;
  }
  return json::serialize(*value);
}

std::string pad(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

void print_table(const std::vector<std::vector<std::string>>& rows, std::ostream& out) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += i + 1 == row.size() ? row[i] : pad(row[i], widths[i] + 2);
    }
    out << line << '\n';
  }
}

std::string eta_text(const json::object& job) {
  const auto* eta = job.if_contains("eta_seconds");
  if (eta == nullptr || eta->is_null()) return "-";
  return format_eta(eta->is_double() ? eta->get_double() : static_cast<double>(eta->to_number<double>()));
}

std::string progress_text(const json::object& job) {
  const auto* progress = job.if_contains("progress");
  if (progress == nullptr || !progress->is_number()) return "-";
  char buffer[16];
  std::snprintf(buffer, sizeof buffer, "%.0f%%", progress->to_number<double>() * 100.0);
  return buffer;
}

int command_jobs(const client::ApiClient& api, const Options& options, std::ostream& out,
                 std::ostream& err) {
  auto response = api.get("/api/v1/jobs");
  if (const auto done = finish(response, options, out, err)) return *done;
  std::vector<std::vector<std::string>> rows{
      {"ID", "NAME", "STATE", "PROGRESS", "EPOCH", "STEP", "LOSS", "ACCURACY", "ETA"}};
  for (const auto& value : response->body.at("jobs").as_array()) {
    const auto& job = value.as_object();
    std::string state = field_text(job, "state");
    if (const auto reason = field_text(job, "reason"); reason != "-") state += " (" + reason + ")";
    rows.push_back({field_text(job, "id"), field_text(job, "name"), state, progress_text(job),
                    field_text(job, "epoch") + "/" + field_text(job, "epochs"),
                    field_text(job, "step") + "/" + field_text(job, "steps"),
                    field_text(job, "loss"), field_text(job, "accuracy"), eta_text(job)});
  }
  print_table(rows, out);
  return exit_code::ok;
}

int command_show(const client::ApiClient& api, const Options& options, std::ostream& out,
                 std::ostream& err) {
  auto response = api.get("/api/v1/jobs/" + options.arguments.at(0));
  if (const auto done = finish(response, options, out, err)) return *done;
  const auto& job = response->body.as_object();
  std::vector<std::vector<std::string>> rows;
  for (const char* key : {"id", "name", "model", "state", "reason", "epoch", "epochs", "step",
                          "steps", "loss", "accuracy", "created_at", "started_at", "finished_at"}) {
    rows.push_back({std::string(key) + ":", field_text(job, key)});
  }
  rows.push_back({"progress:", progress_text(job)});
  rows.push_back({"eta:", eta_text(job)});
  print_table(rows, out);
  if (const auto* spec = job.if_contains("spec")) out << "spec: " << json::serialize(*spec) << '\n';
  return exit_code::ok;
}

int command_events(const client::ApiClient& api, const Options& options, std::ostream& out,
                   std::ostream& err) {
  auto response = api.get("/api/v1/jobs/" + options.arguments.at(0) + "/events");
  if (const auto done = finish(response, options, out, err)) return *done;
  std::vector<std::vector<std::string>> rows{{"TIME", "FROM", "TO", "REASON"}};
  for (const auto& value : response->body.at("events").as_array()) {
    const auto& event = value.as_object();
    rows.push_back({field_text(event, "ts"), field_text(event, "from"), field_text(event, "to"),
                    field_text(event, "reason")});
  }
  print_table(rows, out);
  return exit_code::ok;
}

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

/// push JOB [FILE|-]: NDJSON points to a push job, `options.batch` lines a request.
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

int command_logs(const client::ApiClient& api, const Options& options, std::ostream& out,
                 std::ostream& err) {
  const std::string job = "/api/v1/jobs/" + options.arguments.at(0);
  auto response = api.get(job + "/log");
  std::string size;
  for (;;) {
    if (!response) {
      err << "vaporctl: " << response.error().message << "\n";
      return exit_code::unreachable;
    }
    if (response->status != 200) {
      // The API's JSON error, as every other command reports it.
      if (const auto done = finish(response, options, out, err)) return *done;
      return exit_code::failed;
    }
    out << response->text << std::flush;
    const bool grew = response->log_size != size;
    size = response->log_size;
    if (!options.follow) return exit_code::ok;
    if (!grew) {
      // Nothing new: stop once the job has ended (its last words are in by then).
      auto state = api.get(job);
      if (state && state->status == 200 && state->body.is_object()) {
        const auto now = field_text(state->body.as_object(), "state");
        if (now == "complete" || now == "failed" || now == "stopped") return exit_code::ok;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    response = api.get(job + "/log?after_byte=" + (size.empty() ? "0" : size));
  }
}

int command_change(const client::ApiClient& api, const Options& options, std::string_view verb,
                   std::ostream& out, std::ostream& err) {
  auto response = api.post("/api/v1/jobs/" + options.arguments.at(0) + "/" + std::string(verb));
  if (const auto done = finish(response, options, out, err)) return *done;
  const auto& job = response->body.as_object();
  const auto state = field_text(job, "state");
  out << "job " << field_text(job, "id") << " " << field_text(job, "name") << ": " << state
      << (verb == "start" && state == "queued" ? " (start requested; waiting for a free slot)" : "")
      << '\n';
  return exit_code::ok;
}

/// A YAML node as JSON, keeping plain scalars' types (numbers, booleans) and quoted ones as
/// strings, so that vapord validates exactly what the file says.
json::value yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      json::object object;
      for (const auto& entry : node) object[entry.first.Scalar()] = yaml_to_json(entry.second);
      return object;
    }
    case YAML::NodeType::Sequence: {
      json::array array;
      for (const auto& item : node) array.push_back(yaml_to_json(item));
      return array;
    }
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (node.Tag() == "!") return json::value(text);  // quoted: a string
      if (text == "true" || text == "false") return json::value(text == "true");
      if (text == "null" || text == "~") return nullptr;
      boost::system::error_code ec;
      auto parsed = json::parse(text, ec);
      if (!ec && parsed.is_number()) return parsed;
      return json::value(text);
    }
    default: return nullptr;
  }
}

int command_submit(const client::ApiClient& api, const Options& options, std::ostream& out,
                   std::ostream& err) {
  const auto& path = options.arguments.at(0);
  std::ifstream in(path);
  if (!in) {
    err << "vaporctl: cannot read " << path << '\n';
    return exit_code::usage;
  }
  std::stringstream text;
  text << in.rdbuf();
  // Validate here first, for errors located in the user's own file.
  const auto parsed = config::parse_job_spec(text.str(), path, config::SpecDefaults{});
  if (!parsed.ok()) {
    err << config::format_errors(parsed.errors) << '\n';
    return exit_code::usage;
  }
  // Send what the file says (not our defaults), so vapord applies its own.
  std::string body;
  try {
    body = json::serialize(yaml_to_json(YAML::Load(text.str())));
  } catch (const YAML::Exception& error) {
    err << path << ": " << error.what() << '\n';
    return exit_code::usage;
  }
  auto response = api.post("/api/v1/jobs", body);
  if (const auto done = finish(response, options, out, err)) return *done;
  const auto& job = response->body.as_object();
  out << "submitted job " << field_text(job, "id") << " " << field_text(job, "name") << " ("
      << response->location << ")\n";
  if (job.contains("push_token")) {
    out << "push token (shown this once; vapord keeps only its hash): "
        << field_text(job, "push_token") << '\n';
  }
  return exit_code::ok;
}

bool matches(const json::object& job, const std::vector<std::string>& wanted) {
  if (wanted.empty()) {
    const auto state = field_text(job, "state");
    return state == "queued" || state == "running";
  }
  for (const auto& name : wanted) {
    if (name == field_text(job, "name") || name == field_text(job, "id")) return true;
  }
  return false;
}

int command_watch(const client::ApiClient& api, const Options& options, std::ostream& out,
                  std::ostream& err, const Terminal& terminal) {
  auto feed = client::FeedConnection::open(api.endpoint());
  if (!feed) {
    err << "vaporctl: " << feed.error().message << '\n';
    return exit_code::unreachable;
  }
  auto hello = (*feed)->next();
  if (!hello) {
    err << "vaporctl: " << hello.error().message << '\n';
    return exit_code::unreachable;
  }
  ProgressView view;
  json::array ids;
  for (const auto& value : hello->at("jobs").as_array()) {
    const auto& job = value.as_object();
    if (matches(job, options.arguments)) {
      view.add_job(job);
      ids.push_back(job.at("id"));
    }
  }
  for (const auto& name : options.arguments) {
    bool known = false;
    for (const auto& [id, job] : view.jobs()) known = known || job.name == name || std::to_string(id) == name;
    if (!known) {
      err << "vaporctl: no job '" << name << "'\n";
      return exit_code::not_found;
    }
  }
  if (view.jobs().empty()) {
    out << "nothing to watch: no queued or running job\n";
    return exit_code::ok;
  }
  (*feed)->send(json::serialize(json::object{{"type", "subscribe"}, {"job_ids", ids}}));

  std::size_t drawn = 0;
  auto last_draw = std::chrono::steady_clock::time_point{};
  const auto draw = [&](bool force) {
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_draw < std::chrono::milliseconds(100)) return;
    last_draw = now;
    if (drawn > 0) out << "\x1b[" << drawn << "A";  // back to the first bar
    const auto lines = view.render_bars(terminal.width);
    for (const auto& line : lines) out << "\r\x1b[2K" << line << '\n';
    drawn = lines.size();
    out.flush();
  };

  if (terminal.is_tty) draw(true);
  while (!view.all_finished()) {
    auto message = (*feed)->next();
    if (!message) {
      if (terminal.is_tty) draw(true);
      err << "vaporctl: " << message.error().message << '\n';
      return exit_code::unreachable;
    }
    if (!view.apply(*message)) continue;
    if (terminal.is_tty) {
      draw(field_text(*message, "type") == "state");
    } else if (const auto line = view.plain_line(*message); !line.empty()) {
      out << line << '\n' << std::flush;
    }
  }
  if (terminal.is_tty) draw(true);
  out << view.summary() << '\n';
  return view.any_failed() ? exit_code::failed : exit_code::ok;
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
