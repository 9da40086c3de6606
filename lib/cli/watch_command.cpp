#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "cli/detail/commands.hpp"
#include "cli/progress_view.hpp"
#include "client/api_client.hpp"

namespace vapor::cli::detail {
namespace {

namespace json = boost::json;

/// Whether `watch` follows the job: one of those named, or with none named every unfinished one.
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

}  // namespace

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

}  // namespace vapor::cli::detail
