#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.hpp"

/// Internal to the config module.
namespace vapor::config::detail {

/// One value in the tree and the key path that names it in errors (`jobs[2].epochs`).
/// `key_mark` locates errors about an empty value, whose own mark yaml-cpp puts at the next token.
struct Field {
  YAML::Node value;
  YAML::Mark key_mark;
  std::string path;
};

/// The entries of one map whose keys are allowed, each key once; duplicate and unknown keys have
/// already been reported.
class MapFields {
 public:
  MapFields(Field map, std::vector<Field> entries);

  /// The entry for `key`, or null when the map does not have it.
  [[nodiscard]] const Field* find(std::string_view key) const;
  [[nodiscard]] const Field& map() const { return map_; }

 private:
  Field map_;
  std::vector<Field> entries_;
};

/// Whole numbers accepted for a field. `description` replaces the generated "an integer from
/// 1 to 10" when set.
struct IntegerRange {
  std::uint64_t min = 0;
  std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  std::string description;
};

/// Finite numbers accepted for a field; infinite bounds mean "no bound".
struct NumberRange {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  bool max_exclusive = false;
};

inline constexpr NumberRange positive_number{0.0, std::numeric_limits<double>::infinity(), true,
                                             false};
inline constexpr NumberRange unit_interval{0.0, 1.0, false, false};

struct DurationRange {
  std::chrono::milliseconds min;
  std::chrono::milliseconds max;
};

/// One accepted word of an enumerated field (`start: manual`).
template <class T>
struct Choice {
  std::string_view text;
  T value;
};

/// Walks a YAML tree against a schema: reads typed values, and records a located error for each
/// problem instead of stopping at the first. Not thread-safe; one per parse.
class NodeValidator {
 public:
  NodeValidator(std::string_view file, std::vector<ConfigError>& errors);

  /// The allowed entries of a map; reports a value that is not a map as "expected <what>".
  [[nodiscard]] std::optional<MapFields> read_map(const Field& field,
                                                  std::span<const std::string_view> allowed_keys,
                                                  std::string_view what = "a map");
  /// The items of a list (empty for an empty value); reports anything else.
  [[nodiscard]] std::optional<std::vector<Field>> read_list(const Field& field,
                                                            std::string_view what);
  /// Reports `key` missing from `map`; returns whether it is there.
  bool require(const MapFields& map, std::string_view key);

  [[nodiscard]] std::optional<std::uint64_t> read_unsigned(const Field& field,
                                                           const IntegerRange& range);
  [[nodiscard]] std::optional<std::int64_t> read_signed(const Field& field);
  [[nodiscard]] std::optional<double> read_number(const Field& field, const NumberRange& range);
  /// Any scalar, quoted or not, as text.
  [[nodiscard]] std::optional<std::string> read_text(const Field& field);
  [[nodiscard]] std::optional<std::chrono::milliseconds> read_duration(const Field& field,
                                                                       const DurationRange& range);
  template <class T>
  [[nodiscard]] std::optional<T> read_choice(const Field& field,
                                             std::span<const Choice<T>> choices);

  /// "expected <what>, got <the value>", located at the field.
  void report_expected(const Field& field, std::string_view what);
  /// `message` located at the field's value, or at its key when the value is empty.
  void report(const Field& field, std::string message);
  /// `message` located at the field's key (unknown and duplicate keys).
  void report_at_key(const Field& field, std::string message);
  /// A problem with the whole file.
  void report_file(std::string message);

 private:
  void collect_entry(const Field& map, const YAML::Node& key, const YAML::Node& value,
                     std::span<const std::string_view> allowed_keys, std::vector<Field>& entries);

  std::string file_;
  std::vector<ConfigError>& errors_;
};

/// How a value is shown after "got": `null`, `a list`, `a map`, or the scalar in quotes.
[[nodiscard]] std::string describe(const YAML::Node& node);
/// "a positive integer", "a non-negative integer up to 10" (with `say_maximum`),
/// "an integer from 1024 to 2048", or the range's own description.
[[nodiscard]] std::string describe(const IntegerRange& range, bool say_maximum);
/// "a number from 0 to 1", "a positive number", ...
[[nodiscard]] std::string describe(const NumberRange& range);

/// `parent.key` (or `key` at the top); odd keys are quoted.
[[nodiscard]] std::string join_path(std::string_view parent, std::string_view key);
/// `parent[index]`
[[nodiscard]] std::string index_path(std::string_view parent, std::size_t index);

/// The field for a whole document, whose path is empty.
[[nodiscard]] Field root_field(const YAML::Node& root);

template <class T>
std::optional<T> NodeValidator::read_choice(const Field& field,
                                            std::span<const Choice<T>> choices) {
  if (field.value.IsScalar()) {
    for (const Choice<T>& choice : choices) {
      if (field.value.Scalar() == choice.text) return choice.value;
    }
  }
  std::string what = "one of";
  for (const Choice<T>& choice : choices) {
    what += (&choice == choices.data() ? " " : ", ") + std::string(choice.text);
  }
  report_expected(field, what);
  return std::nullopt;
}

}  // namespace vapor::config::detail
