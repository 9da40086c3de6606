#include "config/queue_file.hpp"

#include <map>
#include <string>
#include <utility>

#include "config/detail/config_file_reader.hpp"
#include "config/detail/document_parser.hpp"
#include "config/detail/job_spec_reader.hpp"

namespace vapor::config {
namespace {

using detail::Field;
using detail::NodeValidator;

constexpr std::string_view queue_keys[] = {"jobs"};

/// Reports a job whose name an earlier job of the file already has.
class DuplicateNameCheck {
 public:
  explicit DuplicateNameCheck(NodeValidator& validator) : validator_(validator) {}

  void check(const Field& job, const Field& name_field, const std::string& name) {
    const FirstUse use{job.path, name_field.value.Mark().line + 1};
    const auto [first, inserted] = first_use_.try_emplace(name, use);
    if (inserted) return;
    validator_.report(name_field, "duplicate job name \"" + name + "\"; first used by " +
                                      first->second.job_path + " at line " +
                                      std::to_string(first->second.line));
  }

 private:
  struct FirstUse {
    std::string job_path;
    int line = 0;
  };

  NodeValidator& validator_;
  std::map<std::string, FirstUse, std::less<>> first_use_;
};

void read_queue(NodeValidator& validator, const YAML::Node& root, const SpecDefaults& defaults,
                QueueFile& queue) {
  if (root.IsNull()) {
    validator.report_file("the file is empty; expected a map with a \"jobs\" list");
    return;
  }
  const auto fields =
      validator.read_map(detail::root_field(root), queue_keys, "a map with a \"jobs\" list");
  if (!fields || !validator.require(*fields, "jobs")) return;
  const auto jobs = validator.read_list(*fields->find("jobs"), "a list of jobs");
  if (!jobs) return;
  DuplicateNameCheck duplicates(validator);
  for (const Field& job : *jobs) {
    detail::JobSpecRead read = detail::read_job_spec(validator, job, defaults);
    if (read.name) duplicates.check(job, *read.name, read.spec.name);
    queue.jobs.push_back(std::move(read.spec));
  }
}

}  // namespace

Parsed<QueueFile> parse_queue(std::string_view text, std::string_view file,
                              const SpecDefaults& defaults) {
  return detail::parse_document<QueueFile>(
      text, file, [&](NodeValidator& validator, const YAML::Node& root, QueueFile& queue) {
        read_queue(validator, root, defaults, queue);
      });
}

Parsed<QueueFile> load_queue_file(const std::filesystem::path& path, const SpecDefaults& defaults,
                                  std::size_t max_bytes) {
  Parsed<std::string> text = detail::read_config_file(path, max_bytes);
  if (!text.ok()) return Parsed<QueueFile>{{}, std::move(text.errors)};
  SpecDefaults with_folder = defaults;
  with_folder.base_dir = std::filesystem::absolute(path).parent_path();
  return parse_queue(text.value, path.string(), with_folder);
}

Parsed<core::JobSpec> parse_job_spec(std::string_view text, std::string_view file,
                                     const SpecDefaults& defaults) {
  return detail::parse_document<core::JobSpec>(
      text, file, [&](NodeValidator& validator, const YAML::Node& root, core::JobSpec& spec) {
        if (root.IsNull()) {
          validator.report_file("empty; expected a job spec (a map of job keys)");
          return;
        }
        spec = detail::read_job_spec(validator, detail::root_field(root), defaults).spec;
      });
}

}  // namespace vapor::config
