#include "config/detail/yaml_document.hpp"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <utility>

namespace vapor::config::detail {
namespace {

/// A position in the text, counted the way yaml-cpp counts (0-based, columns in bytes).
YAML::Mark mark_at(std::string_view text, std::size_t offset) {
  YAML::Mark mark;
  mark.pos = static_cast<int>(offset);
  mark.line = 0;
  mark.column = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++mark.line;
      mark.column = 0;
    } else {
      ++mark.column;
    }
  }
  return mark;
}

bool is_continuation(std::string_view text, std::size_t offset) {
  return offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80;
}

/// Length of the valid UTF-8 sequence at `offset` (RFC 3629: no overlong forms, no surrogates,
/// nothing above U+10FFFF), or 0 when the byte there starts no valid sequence.
std::size_t valid_utf8_length(std::string_view text, std::size_t offset) {
  const auto lead = static_cast<unsigned char>(text[offset]);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char second_min = 0x80;
  unsigned char second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) second_min = 0xA0;  // overlong
    if (lead == 0xED) second_max = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) second_min = 0x90;  // overlong
    if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (offset + 1 >= text.size()) return 0;
  const auto second = static_cast<unsigned char>(text[offset + 1]);
  if (second < second_min || second > second_max) return 0;
  for (std::size_t i = 2; i < length; ++i) {
    if (!is_continuation(text, offset + i)) return 0;
  }
  return length;
}

/// The offset of the first byte that is not valid UTF-8, if any.
std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  std::size_t offset = 0;
  while (offset < text.size()) {
    const std::size_t length = valid_utf8_length(text, offset);
    if (length == 0) return offset;
    offset += length;
  }
  return std::nullopt;
}

std::string byte_in_hex(char byte) {
  constexpr std::string_view hex = "0123456789ABCDEF";
  const auto value = static_cast<unsigned char>(byte);
  return std::string("0x") + hex[value >> 4] + hex[value & 0x0F];
}

/// One error for each line whose indentation holds a tab (YAML indents with spaces only).
void check_tab_indentation(std::string_view text, std::string_view file,
                           std::vector<ConfigError>& errors) {
  int line = 0;
  std::size_t line_start = 0;
  while (line_start <= text.size()) {
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    const std::string_view content = text.substr(line_start, line_end - line_start);
    const std::size_t first_visible = content.find_first_not_of(" \t\r");
    const std::size_t first_tab = content.find('\t');
    if (first_visible != std::string_view::npos && first_tab < first_visible) {
      YAML::Mark mark;
      mark.line = line;
      mark.column = static_cast<int>(first_tab);
      errors.push_back(
          located_error(file, mark, "", "tab character in indentation; YAML indents with spaces"));
    }
    ++line;
    line_start = line_end + 1;
  }
}

/// Thrown out of yaml-cpp's parser by StructureCheck; never leaves this file.
struct StructureProblem {
  YAML::Mark mark;
  std::string message;
};

/// Watches the parser's events for what a tree cannot show: how deep collections nest (checked
/// before yaml-cpp's own recursion limit, whose report has no useful location) and how many
/// documents the text holds.
class StructureCheck : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) {
      throw StructureProblem{mark, "a second YAML document starts here; the file must hold one"};
    }
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    enter_collection(mark);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    enter_collection(mark);
  }
  void OnMapEnd() override { --depth_; }

 private:
  void enter_collection(const YAML::Mark& mark) {
    if (++depth_ > max_yaml_depth) {
      throw StructureProblem{mark,
                             "nested deeper than " + std::to_string(max_yaml_depth) + " levels"};
    }
  }

  int depth_ = 0;
  int documents_ = 0;
};

/// Runs the parser over every document of `text` with StructureCheck watching.
void check_structure(const std::string& text) {
  std::istringstream input(text);
  YAML::Parser parser(input);
  StructureCheck check;
  while (parser.HandleNextDocument(check)) {
  }
}

void check_text(std::string_view text, std::string_view file, std::vector<ConfigError>& errors) {
  if (const std::optional<std::size_t> bad = find_invalid_utf8(text)) {
    errors.push_back(located_error(
        file, mark_at(text, *bad), "",
        "invalid UTF-8 (byte " + byte_in_hex(text[*bad]) + "); the file must be saved as UTF-8"));
    return;
  }
  check_tab_indentation(text, file, errors);
}

}  // namespace

ConfigError located_error(std::string_view file, const YAML::Mark& mark, std::string path,
                          std::string message) {
  ConfigError error;
  error.file = std::string(file);
  if (!mark.is_null()) {
    error.line = mark.line + 1;
    error.column = mark.column + 1;
  }
  error.path = std::move(path);
  error.message = std::move(message);
  return error;
}

void sort_by_location(std::vector<ConfigError>& errors) {
  std::stable_sort(errors.begin(), errors.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
}

Parsed<YAML::Node> parse_yaml_document(std::string_view text, std::string_view file) {
  Parsed<YAML::Node> parsed;
  check_text(text, file, parsed.errors);
  if (!parsed.ok()) return parsed;
  const std::string owned(text);
  try {
    check_structure(owned);
    parsed.value = YAML::Load(owned);
  } catch (const StructureProblem& problem) {
    parsed.errors.push_back(located_error(file, problem.mark, "", problem.message));
  } catch (const YAML::ParserException& error) {
    parsed.errors.push_back(located_error(file, error.mark, "", "invalid YAML: " + error.msg));
  } catch (const std::exception& error) {
    parsed.errors.push_back(located_error(file, YAML::Mark::null_mark(), "",
                                          std::string("cannot parse: ") + error.what()));
  }
  return parsed;
}

}  // namespace vapor::config::detail
