#include "config/daemon_config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <string>
#include <system_error>
#include <utility>

#include "config/detail/config_file_reader.hpp"
#include "config/detail/document_parser.hpp"

namespace vapor::config {
namespace {

using namespace std::chrono_literals;
using detail::DurationRange;
using detail::Field;
using detail::IntegerRange;
using detail::MapFields;
using detail::NodeValidator;

constexpr std::size_t max_daemon_config_bytes = 1024 * 1024;
constexpr std::uint64_t one_gibibyte = 1024 * 1024 * 1024;

constexpr std::string_view top_level_keys[] = {"listen",          "database",  "queue",
                                               "queue_max_bytes", "scheduler", "store",
                                               "metrics",         "api",       "websocket",
                                               "jobs"};
constexpr std::string_view scheduler_keys[] = {"max_concurrent", "step_interval", "stall_timeout",
                                               "max_jobs"};
constexpr std::string_view store_keys[] = {"flush_interval", "flush_rows",       "synchronous",
                                           "busy_timeout",   "max_pending_rows", "cache_bytes",
                                           "keep_points",    "prune_batch_rows"};
constexpr std::string_view metrics_keys[] = {"finished_job_ttl"};
constexpr std::string_view api_keys[] = {"token_file",     "allowed_origins",  "allowed_hosts",
                                         "max_body_bytes", "max_header_bytes", "read_timeout",
                                         "max_connections", "allow_command_jobs",
                                         "max_batch_points"};
constexpr std::string_view websocket_keys[] = {"max_clients", "send_queue_bytes"};
constexpr std::string_view jobs_keys[] = {"max_metric_line_bytes", "log_max_bytes"};

constexpr detail::Choice<bool> boolean_choices[] = {{"true", true}, {"false", false}};

constexpr detail::Choice<SynchronousMode> synchronous_choices[] = {
    {"off", SynchronousMode::off},
    {"normal", SynchronousMode::normal},
    {"full", SynchronousMode::full},
    {"extra", SynchronousMode::extra}};

struct ListenAddress {
  std::string host;
  std::uint16_t port = 0;
};

bool is_ip_address(int family, const std::string& text) {
  std::array<unsigned char, 16> address{};
  return ::inet_pton(family, text.c_str(), address.data()) == 1;
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
bool is_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  std::size_t label_start = 0;
  while (label_start <= name.size()) {
    std::size_t label_end = name.find('.', label_start);
    if (label_end == std::string_view::npos) label_end = name.size();
    const std::string_view label = name.substr(label_start, label_end - label_start);
    const bool valid_label = !label.empty() && label.size() <= 63 && label.front() != '-' &&
                             label.back() != '-' &&
                             std::all_of(label.begin(), label.end(), [](char c) {
                               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                      (c >= '0' && c <= '9') || c == '-';
                             });
    if (!valid_label) return false;
    label_start = label_end + 1;
  }
  return true;
}

/// An IPv4 address or host name, or an IPv6 address in brackets.
std::optional<std::string> parse_listen_host(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    std::string inner(text.substr(1, text.size() - 2));
    if (is_ip_address(AF_INET6, inner)) return inner;
    return std::nullopt;
  }
  const std::string host(text);
  const bool looks_numeric = std::all_of(host.begin(), host.end(),
                                         [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
  if (looks_numeric ? is_ip_address(AF_INET, host) : is_host_name(host)) return host;
  return std::nullopt;
}

std::optional<ListenAddress> parse_listen_address(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  const std::string_view port_text = text.substr(colon + 1);
  std::uint64_t port = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  for (const char c : port_text) port = port * 10 + static_cast<std::uint64_t>(c - '0');
  if (port > 65535) return std::nullopt;
  std::optional<std::string> host = parse_listen_host(text.substr(0, colon));
  if (!host) return std::nullopt;
  return ListenAddress{std::move(*host), static_cast<std::uint16_t>(port)};
}

/// `https://grafana.example.com` or `http://localhost:3000`: what a browser sends as Origin.
bool is_origin(std::string_view text) {
  std::string_view rest;
  if (text.starts_with("http://")) {
    rest = text.substr(7);
  } else if (text.starts_with("https://")) {
    rest = text.substr(8);
  } else {
    return false;
  }
  return !rest.empty() && std::none_of(rest.begin(), rest.end(), [](char c) {
    return c == '/' || c == '?' || c == '#' || c == '@' || static_cast<unsigned char>(c) <= ' ';
  });
}

/// A Host header value: a name, optionally with a port.
bool is_host_header_value(std::string_view text) {
  return !text.empty() && std::none_of(text.begin(), text.end(), [](char c) {
    return c == '/' || c == '@' || static_cast<unsigned char>(c) <= ' ';
  });
}

std::filesystem::path resolve(const std::filesystem::path& base_dir,
                              const std::filesystem::path& path) {
  if (path.is_absolute() || base_dir.empty()) return path.lexically_normal();
  return (base_dir / path).lexically_normal();
}

/// Reads each section of vapord.yaml into a DaemonConfig.
class DaemonConfigReader {
 public:
  DaemonConfigReader(NodeValidator& validator, DaemonConfig& config)
      : validator_(validator), config_(config) {}

  void read(const YAML::Node& root) {
    if (root.IsNull()) return;  // an empty file: every default
    const auto fields =
        validator_.read_map(detail::root_field(root), top_level_keys, "a map of settings");
    if (!fields) return;
    if (const Field* listen = fields->find("listen")) read_listen(*listen);
    if (const Field* database = fields->find("database")) read_path(*database, config_.database);
    if (const Field* queue = fields->find("queue")) read_path(*queue, config_.queue);
    read_size(*fields, "queue_max_bytes", IntegerRange{1, one_gibibyte, ""},
              config_.queue_max_bytes);
    read_section(*fields, "scheduler", scheduler_keys, &DaemonConfigReader::read_scheduler);
    read_section(*fields, "store", store_keys, &DaemonConfigReader::read_store);
    read_section(*fields, "metrics", metrics_keys, &DaemonConfigReader::read_metrics);
    read_section(*fields, "api", api_keys, &DaemonConfigReader::read_api);
    read_section(*fields, "websocket", websocket_keys, &DaemonConfigReader::read_websocket);
    read_section(*fields, "jobs", jobs_keys, &DaemonConfigReader::read_jobs);
  }

 private:
  using SectionReader = void (DaemonConfigReader::*)(const MapFields&);

  void read_section(const MapFields& fields, std::string_view key,
                    std::span<const std::string_view> allowed_keys, SectionReader read_fields) {
    const Field* section = fields.find(key);
    if (section == nullptr || section->value.IsNull()) return;
    if (const auto section_fields = validator_.read_map(*section, allowed_keys)) {
      (this->*read_fields)(*section_fields);
    }
  }

  void read_scheduler(const MapFields& fields) {
    DaemonConfig::Scheduler& scheduler = config_.scheduler;
    read_size(fields, "max_concurrent", IntegerRange{1, 10'000, ""}, scheduler.max_concurrent);
    read_duration(fields, "step_interval", {1ms, 1h}, scheduler.step_interval);
    read_duration(fields, "stall_timeout", {1ms, 24h}, scheduler.stall_timeout);
    read_size(fields, "max_jobs", IntegerRange{1, 10'000'000, ""}, scheduler.max_jobs);
  }

  void read_store(const MapFields& fields) {
    DaemonConfig::Store& store = config_.store;
    read_duration(fields, "flush_interval", {1ms, 1h}, store.flush_interval);
    read_size(fields, "flush_rows", IntegerRange{1, 100'000'000, ""}, store.flush_rows);
    if (const Field* synchronous = fields.find("synchronous")) {
      if (const auto mode =
              validator_.read_choice<SynchronousMode>(*synchronous, synchronous_choices)) {
        store.synchronous = *mode;
      }
    }
    read_duration(fields, "busy_timeout", {0ms, 1h}, store.busy_timeout);
    read_size(fields, "max_pending_rows", IntegerRange{1, 100'000'000, ""}, store.max_pending_rows);
    read_size(fields, "cache_bytes", IntegerRange{1024 * 1024, 64 * one_gibibyte, ""},
              store.cache_bytes);
    read_duration(fields, "keep_points", {0ms, 24h * 365 * 100}, store.keep_points);
    read_size(fields, "prune_batch_rows", IntegerRange{1, 10'000'000, ""}, store.prune_batch_rows);
  }

  void read_metrics(const MapFields& fields) {
    read_duration(fields, "finished_job_ttl", {0ms, 24h * 365}, config_.metrics.finished_job_ttl);
  }

  void read_jobs(const MapFields& fields) {
    DaemonConfig::Jobs& jobs = config_.jobs;
    read_size(fields, "max_metric_line_bytes", IntegerRange{64, 64 * 1024 * 1024, ""},
              jobs.max_metric_line_bytes);
    read_size(fields, "log_max_bytes", IntegerRange{4096, 64 * one_gibibyte, ""},
              jobs.log_max_bytes);
  }

  void read_api(const MapFields& fields) {
    DaemonConfig::Api& api = config_.api;
    if (const Field* allow = fields.find("allow_command_jobs")) {
      if (const auto value = validator_.read_choice<bool>(*allow, boolean_choices)) {
        api.allow_command_jobs = *value;
      }
    }
    if (const Field* token_file = fields.find("token_file")) {
      std::filesystem::path path;
      if (read_path(*token_file, path)) api.token_file = path;
    }
    read_strings(fields, "allowed_origins", is_origin,
                 "an origin such as https://grafana.example.com (scheme, host and optional "
                 "port; no path)",
                 api.allowed_origins);
    read_strings(fields, "allowed_hosts", is_host_header_value,
                 "a host name such as vapor.example.com, optionally with :port", api.allowed_hosts);
    read_size(fields, "max_body_bytes", IntegerRange{1, one_gibibyte, ""}, api.max_body_bytes);
    read_size(fields, "max_header_bytes", IntegerRange{1024, 1024 * 1024, ""},
              api.max_header_bytes);
    read_duration(fields, "read_timeout", {1ms, 1h}, api.read_timeout);
    read_size(fields, "max_connections", IntegerRange{1, 1'000'000, ""}, api.max_connections);
    read_size(fields, "max_batch_points", IntegerRange{1, 1'000'000, ""}, api.max_batch_points);
  }

  void read_websocket(const MapFields& fields) {
    DaemonConfig::Websocket& websocket = config_.websocket;
    read_size(fields, "max_clients", IntegerRange{1, 1'000'000, ""}, websocket.max_clients);
    // At least 64 KiB: a replay page and a burst of live points must fit below the limit, or
    // healthy clients would be closed as slow consumers.
    read_size(fields, "send_queue_bytes", IntegerRange{64 * 1024, one_gibibyte, ""},
              websocket.send_queue_bytes);
  }

  void read_listen(const Field& field) {
    const std::optional<std::string> text = validator_.read_text(field);
    if (!text) return;
    if (const std::optional<ListenAddress> address = parse_listen_address(*text)) {
      config_.listen_host = address->host;
      config_.listen_port = address->port;
      return;
    }
    validator_.report_expected(field, "host:port such as 127.0.0.1:9786 or [::1]:9786");
  }

  bool read_path(const Field& field, std::filesystem::path& out) {
    const std::optional<std::string> text = validator_.read_text(field);
    if (!text) return false;
    if (text->empty()) {
      validator_.report_expected(field, "a file path");
      return false;
    }
    out = *text;
    return true;
  }

  void read_size(const MapFields& fields, std::string_view key, const IntegerRange& range,
                 std::size_t& out) {
    const Field* field = fields.find(key);
    if (field == nullptr) return;
    if (const std::optional<std::uint64_t> value = validator_.read_unsigned(*field, range)) {
      out = static_cast<std::size_t>(*value);
    }
  }

  void read_duration(const MapFields& fields, std::string_view key, const DurationRange& range,
                     std::chrono::milliseconds& out) {
    const Field* field = fields.find(key);
    if (field == nullptr) return;
    if (const auto value = validator_.read_duration(*field, range)) out = *value;
  }

  void read_strings(const MapFields& fields, std::string_view key, bool (*valid)(std::string_view),
                    std::string_view what, std::vector<std::string>& out) {
    const Field* field = fields.find(key);
    if (field == nullptr) return;
    const auto items = validator_.read_list(*field, "a list of strings");
    if (!items) return;
    out.clear();
    for (const Field& item : *items) {
      if (item.value.IsScalar() && valid(item.value.Scalar())) {
        out.push_back(item.value.Scalar());
      } else {
        validator_.report_expected(item, what);
      }
    }
  }

  NodeValidator& validator_;
  DaemonConfig& config_;
};

void resolve_paths(DaemonConfig& config, const std::filesystem::path& base_dir) {
  config.database = resolve(base_dir, config.database);
  config.queue = resolve(base_dir, config.queue);
  if (config.api.token_file) config.api.token_file = resolve(base_dir, *config.api.token_file);
}

}  // namespace

Parsed<DaemonConfig> parse_daemon_config(std::string_view text, std::string_view file,
                                         const std::filesystem::path& base_dir) {
  Parsed<DaemonConfig> parsed = detail::parse_document<DaemonConfig>(
      text, file, [](NodeValidator& validator, const YAML::Node& root, DaemonConfig& config) {
        DaemonConfigReader(validator, config).read(root);
      });
  if (parsed.ok()) resolve_paths(parsed.value, base_dir);
  return parsed;
}

Parsed<DaemonConfig> load_daemon_config(const std::filesystem::path& path) {
  Parsed<std::string> text = detail::read_config_file(path, max_daemon_config_bytes);
  if (!text.ok()) return Parsed<DaemonConfig>{{}, std::move(text.errors)};
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(path, error);
  if (error) absolute = path;
  return parse_daemon_config(text.value, path.string(), absolute.parent_path());
}

}  // namespace vapor::config
