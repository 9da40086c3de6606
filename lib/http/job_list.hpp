#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/job_events.hpp"
#include "core/job_state.hpp"

namespace vapor::runtime {
struct Job;
}

namespace vapor::http {

/// The JSON array of every job's JobSummary, as GET /api/v1/jobs and the feed's hello send it.
///
/// Each job's summary is serialised once and kept until the job moves: a summary is a function
/// of the job's spec (fixed), its state (which also decides reason and timestamps), its step
/// (which decides loss, accuracy and progress) and its ETA, so an entry is reused while those
/// four are unchanged. Listing 1,000 jobs then costs a copy of the text plus the summaries of the
/// jobs that stepped since the last list. Event-loop thread only.
class JobListCache {
 public:
  /// Appends `[JobSummary,...]` for `jobs`, in id order, to `out` (the caller's prefix is
  /// already there: the text is copied once, straight into the response).
  void append_array(std::string& out, const std::map<core::JobId, runtime::Job>& jobs);

 private:
  struct Entry {
    std::uint64_t step = 0;
    core::JobState state = core::JobState::queued;
    std::optional<double> eta_seconds;
    std::string json;
  };

  std::unordered_map<core::JobId, Entry> entries_;
  std::size_t last_array_bytes_ = 0;  ///< to reserve the next list's room in one go
};

}  // namespace vapor::http
