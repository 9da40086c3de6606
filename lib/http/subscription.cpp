#include "http/subscription.hpp"

#include <charconv>
#include <limits>
#include <optional>
#include <system_error>
#include <string>

#include <boost/json/parse.hpp>

namespace vapor::http {

namespace {

/// A step: a JSON integer >= 0.
std::optional<std::uint64_t> step_value(const boost::json::value& value) {
  if (value.is_int64() && value.get_int64() >= 0) {
    return static_cast<std::uint64_t>(value.get_int64());
  }
  if (value.is_uint64()) return value.get_uint64();
  return std::nullopt;
}

}  // namespace

Result<Subscription> parse_subscription(std::string_view text) {
  boost::system::error_code ec;
  const boost::json::value message = boost::json::parse(text, ec);
  if (ec) return fail("message is not valid JSON: " + ec.message());
  const auto* object = message.if_object();
  if (object == nullptr) return fail("message must be a JSON object");
  const auto* type = object->if_contains("type");
  if (type == nullptr || !type->is_string()) return fail("message needs a string \"type\"");
  if (type->get_string() != "subscribe") {
    return fail("unknown message type \"" + std::string(type->get_string()) +
                "\"; the only one accepted is \"subscribe\"");
  }
  for (const auto& [key, value] : *object) {
    if (key != "type" && key != "job_ids" && key != "since_step" && key != "since") {
      return fail("unknown key \"" + std::string(key) +
                  "\" in subscribe; allowed: type, job_ids, since_step, since");
    }
  }

  Subscription subscription;
  if (const auto* ids = object->if_contains("job_ids"); ids != nullptr && !ids->is_null()) {
    const auto* array = ids->if_array();
    if (array == nullptr) return fail("job_ids must be an array of job ids");
    if (array->size() > max_subscribed_jobs) {
      return fail("job_ids lists " + std::to_string(array->size()) + " jobs; at most " +
                  std::to_string(max_subscribed_jobs) + " are allowed");
    }
    for (const auto& id : *array) {
      if (id.is_int64() && id.get_int64() > 0) {
        subscription.job_ids.push_back(id.get_int64());
      } else if (id.is_uint64() && id.get_uint64() <= std::numeric_limits<std::int64_t>::max()) {
        subscription.job_ids.push_back(static_cast<core::JobId>(id.get_uint64()));
      } else {
        return fail("job_ids must hold positive integer job ids");
      }
    }
  }
  if (const auto* since = object->if_contains("since_step"); since != nullptr && !since->is_null()) {
    subscription.since_step = step_value(*since);
    if (!subscription.since_step) return fail("since_step must be a non-negative integer");
  }
  if (const auto* since = object->if_contains("since"); since != nullptr && !since->is_null()) {
    const auto* per_job = since->if_object();
    if (per_job == nullptr) return fail("since must map job ids to steps, e.g. {\"3\":120}");
    if (per_job->size() > max_subscribed_jobs) {
      return fail("since names " + std::to_string(per_job->size()) + " jobs; at most " +
                  std::to_string(max_subscribed_jobs) + " are allowed");
    }
    for (const auto& [key, value] : *per_job) {
      core::JobId id = 0;
      const auto [end, error] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (error != std::errc() || end != key.data() + key.size() || id <= 0) {
        return fail("since: \"" + std::string(key) + "\" is not a job id");
      }
      const auto step = step_value(value);
      if (!step) {
        return fail("since: the step for job " + std::string(key) +
                    " must be a non-negative integer");
      }
      subscription.since[id] = *step;
    }
  }
  return subscription;
}

}  // namespace vapor::http
