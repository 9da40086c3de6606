#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <vector>

#include "core/job_events.hpp"
#include "support/result.hpp"

namespace vapor::http {

/// A client's `{"type":"subscribe","job_ids":[...],"since_step":N}` (or per job:
/// `"since":{"3":120,"5":0}`): which jobs to follow (all when `job_ids` is empty) and after which
/// step to replay each one's history (`since` first, then `since_step`; neither: no replay).
struct Subscription {
  std::vector<core::JobId> job_ids;
  std::optional<std::uint64_t> since_step;
  std::map<core::JobId, std::uint64_t> since;

  /// Where job `id`'s replay starts, if it has one.
  [[nodiscard]] std::optional<std::uint64_t> replay_after(core::JobId id) const {
    if (auto found = since.find(id); found != since.end()) return found->second;
    return since_step;
  }
};

/// Limits on what a client may ask for in one message.
inline constexpr std::size_t max_subscribed_jobs = 10'000;

/// Parses one client message; anything other than a well-formed subscribe is an error whose
/// message says what was wrong (sent back to the client as `{"type":"error",...}`).
[[nodiscard]] Result<Subscription> parse_subscription(std::string_view text);

}  // namespace vapor::http
