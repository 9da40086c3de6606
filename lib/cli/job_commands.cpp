#include <chrono>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>

#include <boost/json.hpp>
#include <yaml-cpp/yaml.h>

#include "cli/detail/commands.hpp"
#include "client/api_client.hpp"
#include "config/queue_file.hpp"

namespace vapor::cli::detail {
namespace {

namespace json = boost::json;

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

}  // namespace

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

}  // namespace vapor::cli::detail
