#include <cstdio>
#include <ostream>

#include <boost/json.hpp>

#include "cli/detail/commands.hpp"
#include "cli/progress_view.hpp"
#include "client/api_client.hpp"

namespace vapor::cli::detail {

namespace json = boost::json;

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

namespace {

std::string pad(std::string text, std::size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

}  // namespace

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

}  // namespace vapor::cli::detail
