#include "http/request_target.hpp"

#include <cctype>
#include <charconv>
#include <limits>
#include <system_error>
#include <utility>

#include "http/static_assets.hpp"

namespace vapor::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// The paths that name one resource, whatever follows.
struct FixedPath {
  std::string_view path;
  Resource resource;
};

constexpr FixedPath fixed_paths[] = {
    {"/metrics", Resource::metrics}, {"/healthz", Resource::healthz},
    {"/readyz", Resource::readyz},   {"/ws", Resource::ws},
    {jobs_path, Resource::jobs},
};

/// What may follow /api/v1/jobs/{id}/.
struct JobAction {
  std::string_view tail;
  Resource resource;
};

constexpr JobAction job_actions[] = {
    {"metrics", Resource::points},
    {"events", Resource::events},
    {"start", Resource::start},
    {"stop", Resource::stop},
    {"log", Resource::log},
    {"points", Resource::push},
    {"finish", Resource::finish},
};

}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out.push_back(static_cast<char>(high * 16 + low));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, failure] = std::from_chars(text.data(), end, value);
  if (failure != std::errc() || stop != end) return std::nullopt;
  return value;
}

std::optional<AbsoluteForm> absolute_form(std::string_view target) {
  const auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  std::string scheme(target.substr(0, scheme_end));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") return std::nullopt;

  const std::string_view rest = target.substr(scheme_end + 3);
  const auto path_start = rest.find_first_of("/?#");
  AbsoluteForm form;
  form.authority = rest.substr(0, path_start);
  const std::string_view path =
      path_start == std::string_view::npos ? std::string_view{} : rest.substr(path_start);
  form.origin_form = path.starts_with('/') ? std::string(path) : "/" + std::string(path);
  form.valid = !form.authority.empty() && form.authority.find('@') == std::string_view::npos;
  return form;
}

Target parse_target(std::string_view target) {
  Target out;
  if (const auto question = target.find('?'); question != std::string_view::npos) {
    out.query = target.substr(question + 1);
    target = target.substr(0, question);
  }
  // Only the listed files: "/assets/../x" or an unknown name is not found.
  if (target == "/" || target.starts_with("/assets/")) {
    out.asset = find_static_asset(target);
    if (target == "/") {
      out.resource = Resource::index;
    } else if (out.asset != nullptr) {
      out.resource = Resource::asset;
    }
    return out;
  }
  for (const auto& fixed : fixed_paths) {
    if (target == fixed.path) {
      out.resource = fixed.resource;
      return out;
    }
  }

  if (!target.starts_with(jobs_path) || target.size() <= jobs_path.size() + 1 ||
      target[jobs_path.size()] != '/') {
    return out;
  }
  const std::string_view rest = target.substr(jobs_path.size() + 1);
  const auto slash = rest.find('/');
  const std::string_view id = rest.substr(0, slash);
  auto decoded = percent_decode(id, false);
  if (id.empty() || !decoded) return out;
  if (slash == std::string_view::npos) {
    out.resource = Resource::job;
  } else {
    const std::string_view tail = rest.substr(slash + 1);
    for (const auto& action : job_actions) {
      if (tail == action.tail) out.resource = action.resource;
    }
    if (out.resource == Resource::unknown) return out;
  }
  out.job_ref = std::move(*decoded);
  return out;
}

std::optional<std::string> QueryReader::text(std::string_view name) {
  if (problem_) return std::nullopt;
  std::optional<std::string> found;
  std::string_view query = query_;
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto equals = pair.find('=');
    auto key = percent_decode(pair.substr(0, equals), true);
    if (!key || *key != name) continue;
    auto value = percent_decode(
        equals == std::string_view::npos ? std::string_view{} : pair.substr(equals + 1), true);
    if (!value) {
      problem_ = std::string(name) + ": malformed percent-encoding";
      return std::nullopt;
    }
    found = std::move(*value);
  }
  return found;
}

std::optional<std::uint64_t> QueryReader::integer(std::string_view name, std::uint64_t min,
                                                  std::uint64_t max) {
  const auto given = text(name);
  if (!given || problem_) return std::nullopt;
  const auto value = parse_unsigned(*given);
  if (!value || *value < min || *value > max) {
    std::string expected = "expected an integer";
    if (max == std::numeric_limits<std::uint64_t>::max()) {
      expected += min == 0 ? " >= 0" : " >= " + std::to_string(min);
    } else {
      expected += " from " + std::to_string(min) + " to " + std::to_string(max);
    }
    problem_ = std::string(name) + ": " + expected + ", got \"" + *given + "\"";
    return std::nullopt;
  }
  return value;
}

}  // namespace vapor::http
