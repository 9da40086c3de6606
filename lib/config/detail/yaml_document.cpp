#include "config/detail/yaml_document.hpp"

#include "support/utf8.hpp"

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

/// The offset of the first byte that is not valid UTF-8, if any.
std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  std::size_t offset = 0;
  while (offset < text.size()) {
    const std::size_t length = utf8::valid_length(text, offset);
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
