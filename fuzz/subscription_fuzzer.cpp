// The WebSocket feed's subscribe-message parser: never crash, every refusal says why, and an
// accepted subscription is within the limits and reads back the same when written out again.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "fuzz_check.hpp"
#include "http/subscription.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace vapor;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto parsed = http::parse_subscription(text);
  if (!parsed) {
    fuzz::check(!parsed.error().message.empty(), "a refused message has no reason");
    return 0;
  }
  const http::Subscription& subscription = *parsed;
  fuzz::check(subscription.job_ids.size() <= http::max_subscribed_jobs,
              "more job ids accepted than the limit");
  boost::json::array ids;
  for (const core::JobId id : subscription.job_ids) {
    fuzz::check(id > 0, "a job id that is not positive: " + std::to_string(id));
    ids.emplace_back(id);
  }
  boost::json::object message{{"type", "subscribe"}, {"job_ids", std::move(ids)}};
  if (subscription.since_step) message["since_step"] = *subscription.since_step;
  const std::string written = boost::json::serialize(message);
  const auto again = http::parse_subscription(written);
  fuzz::check(again.has_value(), "a subscription does not parse back: " + written);
  fuzz::check(again->job_ids == subscription.job_ids && again->since_step == subscription.since_step,
              "a subscription parses back differently: " + written);
  return 0;
}
