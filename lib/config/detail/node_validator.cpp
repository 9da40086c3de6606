#include "config/detail/node_validator.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "config/daemon_config.hpp"
#include "config/detail/scalar_text.hpp"
#include "config/detail/yaml_document.hpp"

namespace vapor::config::detail {
namespace {

bool is_plain_key(std::string_view key) {
  if (key.empty()) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

/// A quoted scalar is a string even when it looks like a number.
bool is_quoted(const YAML::Node& node) { return node.IsScalar() && node.Tag() == "!"; }

/// What "got" shows where a number is expected: a quoted "10" is named as a string.
std::string describe_for_number(const YAML::Node& node) {
  return is_quoted(node) ? "the string " + describe(node) : describe(node);
}

/// The scalar text of a plain (unquoted) scalar, the only form a number may take.
std::optional<std::string> plain_scalar(const YAML::Node& node) {
  if (!node.IsScalar() || is_quoted(node)) return std::nullopt;
  return node.Scalar();
}

/// Digits with an optional sign, whether or not they fit an integer type.
bool is_integer_syntax(std::string_view text) {
  if (!text.empty() && (text.front() == '+' || text.front() == '-')) text.remove_prefix(1);
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool in_range(double value, const NumberRange& range) {
  const bool above_min = range.min_exclusive ? value > range.min : value >= range.min;
  const bool below_max = range.max_exclusive ? value < range.max : value <= range.max;
  return above_min && below_max;
}

/// Levenshtein distance, for suggesting the key that a typo meant.
std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitution});
    }
    std::swap(previous, current);
  }
  return previous[b.size()];
}

/// The allowed key within two edits of `key`, if one is.
std::optional<std::string_view> closest_key(std::string_view key,
                                            std::span<const std::string_view> allowed_keys) {
  constexpr std::size_t max_edits = 2;
  std::optional<std::string_view> best;
  std::size_t best_distance = max_edits + 1;
  for (const std::string_view allowed : allowed_keys) {
    const std::size_t distance = edit_distance(key, allowed);
    if (distance < best_distance && distance < key.size()) {
      best = allowed;
      best_distance = distance;
    }
  }
  return best;
}

std::string allowed_keys_list(std::span<const std::string_view> allowed_keys) {
  std::string list;
  for (const std::string_view key : allowed_keys) {
    if (!list.empty()) list += ", ";
    list += key;
  }
  return list;
}

std::string unknown_key_message(std::string_view key,
                                std::span<const std::string_view> allowed_keys) {
  std::string message = "unknown key";
  // Our keys are short; a long key is no typo of one and is not worth comparing.
  if (key.size() <= 64) {
    if (const auto suggestion = closest_key(key, allowed_keys)) {
      message += " (did you mean \"" + std::string(*suggestion) + "\"?)";
    }
  }
  return message + "; allowed keys: " + allowed_keys_list(allowed_keys);
}

}  // namespace

MapFields::MapFields(Field map, std::vector<Field> entries)
    : map_(std::move(map)), entries_(std::move(entries)) {}

const Field* MapFields::find(std::string_view key) const {
  const std::string path = join_path(map_.path, key);
  for (const Field& entry : entries_) {
    if (entry.path == path) return &entry;
  }
  return nullptr;
}

NodeValidator::NodeValidator(std::string_view file, std::vector<ConfigError>& errors)
    : file_(file), errors_(errors) {}

std::optional<MapFields> NodeValidator::read_map(const Field& field,
                                                 std::span<const std::string_view> allowed_keys,
                                                 std::string_view what) {
  if (!field.value.IsMap()) {
    report_expected(field, what);
    return std::nullopt;
  }
  std::vector<Field> entries;
  for (auto entry = field.value.begin(); entry != field.value.end(); ++entry) {
    collect_entry(field, entry->first, entry->second, allowed_keys, entries);
  }
  return MapFields(field, std::move(entries));
}

void NodeValidator::collect_entry(const Field& map, const YAML::Node& key, const YAML::Node& value,
                                  std::span<const std::string_view> allowed_keys,
                                  std::vector<Field>& entries) {
  if (!key.IsScalar()) {
    errors_.push_back(
        located_error(file_, key.Mark(), map.path, "expected a key name, got " + describe(key)));
    return;
  }
  Field entry{value, key.Mark(), join_path(map.path, key.Scalar())};
  const auto same_path = [&](const Field& other) { return other.path == entry.path; };
  if (const auto first = std::find_if(entries.begin(), entries.end(), same_path);
      first != entries.end()) {
    report_at_key(entry, "duplicate key; first given at line " +
                             std::to_string(first->key_mark.line + 1) + ", column " +
                             std::to_string(first->key_mark.column + 1));
    return;
  }
  if (std::find(allowed_keys.begin(), allowed_keys.end(), key.Scalar()) == allowed_keys.end()) {
    report_at_key(entry, unknown_key_message(key.Scalar(), allowed_keys));
    // Kept (never looked up) so that a repeated unknown key is reported once, as unknown.
  }
  entries.push_back(std::move(entry));
}

std::optional<std::vector<Field>> NodeValidator::read_list(const Field& field,
                                                           std::string_view what) {
  std::vector<Field> items;
  if (field.value.IsNull()) return items;
  if (!field.value.IsSequence()) {
    report_expected(field, what);
    return std::nullopt;
  }
  std::size_t index = 0;
  for (const YAML::Node& item : field.value) {
    const YAML::Mark mark = item.IsNull() ? field.key_mark : item.Mark();
    items.push_back(Field{item, mark, index_path(field.path, index)});
    ++index;
  }
  return items;
}

bool NodeValidator::require(const MapFields& map, std::string_view key) {
  if (map.find(key) != nullptr) return true;
  errors_.push_back(located_error(file_, map.map().value.Mark(), map.map().path,
                                  "missing required key \"" + std::string(key) + "\""));
  return false;
}

std::optional<std::uint64_t> NodeValidator::read_unsigned(const Field& field,
                                                          const IntegerRange& range) {
  const std::optional<std::string> text = plain_scalar(field.value);
  const std::optional<std::uint64_t> value = text ? parse_unsigned_integer(*text) : std::nullopt;
  if (value && *value >= range.min && *value <= range.max) return value;
  // Digits that overflow, or parse to a value above the maximum.
  const bool too_large =
      text && is_integer_syntax(*text) && (*text)[0] != '-' && (!value || *value > range.max);
  report(field,
         "expected " + describe(range, too_large) + ", got " + describe_for_number(field.value));
  return std::nullopt;
}

std::optional<std::int64_t> NodeValidator::read_signed(const Field& field) {
  const std::optional<std::string> text = plain_scalar(field.value);
  const std::optional<std::int64_t> value = text ? parse_signed_integer(*text) : std::nullopt;
  if (value) return value;
  std::string what = "an integer";
  if (text && is_integer_syntax(*text)) {
    what += " from " + std::to_string(std::numeric_limits<std::int64_t>::min()) + " to " +
            std::to_string(std::numeric_limits<std::int64_t>::max());
  }
  report(field, "expected " + what + ", got " + describe_for_number(field.value));
  return std::nullopt;
}

std::optional<double> NodeValidator::read_number(const Field& field, const NumberRange& range) {
  const std::optional<std::string> text = plain_scalar(field.value);
  const std::optional<double> value = text ? parse_real_number(*text) : std::nullopt;
  if (value && in_range(*value, range)) return value;
  report(field, "expected " + describe(range) + ", got " + describe_for_number(field.value));
  return std::nullopt;
}

std::optional<std::string> NodeValidator::read_text(const Field& field) {
  if (field.value.IsScalar()) return field.value.Scalar();
  report_expected(field, "a string");
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> NodeValidator::read_duration(const Field& field,
                                                                      const DurationRange& range) {
  const std::optional<std::chrono::milliseconds> value =
      field.value.IsScalar() ? parse_duration(field.value.Scalar()) : std::nullopt;
  if (value && *value >= range.min && *value <= range.max) return value;
  report_expected(field, "a duration from " + format_duration(range.min) + " to " +
                             format_duration(range.max) + " with a unit (ms, s, m, h or d)");
  return std::nullopt;
}

void NodeValidator::report_expected(const Field& field, std::string_view what) {
  report(field, "expected " + std::string(what) + ", got " + describe(field.value));
}

void NodeValidator::report(const Field& field, std::string message) {
  const YAML::Mark mark = field.value.IsNull() ? field.key_mark : field.value.Mark();
  errors_.push_back(located_error(file_, mark, field.path, std::move(message)));
}

void NodeValidator::report_at_key(const Field& field, std::string message) {
  errors_.push_back(located_error(file_, field.key_mark, field.path, std::move(message)));
}

void NodeValidator::report_file(std::string message) {
  errors_.push_back(located_error(file_, YAML::Mark::null_mark(), "", std::move(message)));
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return quote_for_message(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "null";
}

std::string describe(const IntegerRange& range, bool say_maximum) {
  if (!range.description.empty()) return range.description;
  if (range.min > 1) {
    return "an integer from " + std::to_string(range.min) + " to " + std::to_string(range.max);
  }
  std::string text = range.min == 1 ? "a positive integer" : "a non-negative integer";
  if (say_maximum) text += " up to " + std::to_string(range.max);
  return text;
}

std::string describe(const NumberRange& range) {
  const bool has_min = std::isfinite(range.min);
  const bool has_max = std::isfinite(range.max);
  if (has_min && has_max && !range.min_exclusive && !range.max_exclusive) {
    return "a number from " + format_real_number(range.min) + " to " +
           format_real_number(range.max);
  }
  if (has_min && !has_max && range.min_exclusive && range.min == 0.0) return "a positive number";
  std::string text = "a number";
  if (has_min) {
    text += (range.min_exclusive ? " greater than " : " at least ") + format_real_number(range.min);
  }
  if (has_min && has_max) text += " and";
  if (has_max) {
    text += (range.max_exclusive ? " less than " : " at most ") + format_real_number(range.max);
  }
  return text;
}

std::string join_path(std::string_view parent, std::string_view key) {
  std::string segment = is_plain_key(key) ? std::string(key) : quote_for_message(key);
  if (parent.empty()) return segment;
  return std::string(parent) + '.' + segment;
}

std::string index_path(std::string_view parent, std::size_t index) {
  return std::string(parent) + '[' + std::to_string(index) + ']';
}

Field root_field(const YAML::Node& root) { return Field{root, root.Mark(), ""}; }

}  // namespace vapor::config::detail
