#include "http/subscription.hpp"

#include <limits>
#include <string>

#include <boost/json/parse.hpp>

namespace vapor::http {

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
    if (key != "type" && key != "job_ids" && key != "since_step") {
      return fail("unknown key \"" + std::string(key) +
                  "\" in subscribe; allowed: type, job_ids, since_step");
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
    if (since->is_int64() && since->get_int64() >= 0) {
      subscription.since_step = static_cast<std::uint64_t>(since->get_int64());
    } else if (since->is_uint64()) {
      subscription.since_step = since->get_uint64();
    } else {
      return fail("since_step must be a non-negative integer");
    }
  }
  return subscription;
}

}  // namespace vapor::http
