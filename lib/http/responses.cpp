#include "http/responses.hpp"

#include <utility>

#include <boost/beast/http/field.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "support/utf8.hpp"

namespace vapor::http {

using boost::beast::http::field;

Response make_response(unsigned status, std::string_view content_type, std::string body,
                       unsigned version, bool keep_alive) {
  Response response;
  response.result(status);
  response.version(version);
  response.keep_alive(keep_alive);
  response.set(field::content_type, content_type);
  response.set("X-Content-Type-Options", "nosniff");
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

Response json_response(unsigned status, const boost::json::value& body, const Request& request) {
  Response response = make_response(status, json_type, boost::json::serialize(body),
                                    request.version(), request.keep_alive());
  response.set(field::cache_control, "no-store");
  return response;
}

Response error_response(unsigned status, std::string_view code, std::string_view message,
                        unsigned version, bool keep_alive) {
  const boost::json::object body{
      {"error", boost::json::object{{"code", code}, {"message", utf8::replace_invalid(message)}}}};
  Response response =
      make_response(status, json_type, boost::json::serialize(body), version, keep_alive);
  response.set(field::cache_control, "no-store");
  return response;
}

Response error(unsigned status, std::string_view code, std::string_view message,
               const Request& request) {
  return error_response(status, code, message, request.version(), request.keep_alive());
}

Response error_with_details(unsigned status, std::string_view code, std::string_view message,
                            boost::json::array details, const Request& request) {
  boost::json::object error{{"code", code}, {"message", utf8::replace_invalid(message)}};
  if (!details.empty()) error["details"] = std::move(details);
  return json_response(status, boost::json::object{{"error", std::move(error)}}, request);
}

Response control_error(const ControlError& failure, const Request& request) {
  const auto code_or = [&](std::string_view usual) {
    return failure.code.empty() ? usual : std::string_view(failure.code);
  };
  switch (failure.kind) {
    case ControlFailure::not_found:
      return error(404, code_or("not_found"), failure.message, request);
    case ControlFailure::conflict: return error(409, code_or("conflict"), failure.message, request);
    case ControlFailure::invalid:
      return error(400, code_or("invalid_request"), failure.message, request);
    case ControlFailure::unavailable:
      return error(503, code_or("unavailable"), failure.message, request);
    case ControlFailure::forbidden:
      return error(403, code_or("forbidden"), failure.message, request);
    case ControlFailure::busy: {
      // The store is behind: the client retries after a flush or two.
      Response response = error(429, code_or("store_behind"), failure.message, request);
      response.set(boost::beast::http::field::retry_after, "1");
      return response;
    }
  }
  return error(500, "internal_error", failure.message, request);
}

Response unauthorized(TokenCheck check, const Request& request) {
  std::string_view message;
  std::string_view challenge = R"(Bearer realm="vapor")";
  switch (check) {
    case TokenCheck::no_token_set:
      message = "changes through the API are disabled: no API token is configured (api.token_file)";
      challenge = R"(Bearer realm="vapor", error="invalid_token")";
      break;
    case TokenCheck::wrong_token:
      message = "the bearer token is not valid";
      challenge = R"(Bearer realm="vapor", error="invalid_token")";
      break;
    case TokenCheck::missing:
    case TokenCheck::accepted:
      message = "this request changes state and needs an 'Authorization: Bearer <token>' header";
      break;
  }
  Response response = error(401, "unauthorized", message, request);
  response.set(field::www_authenticate, challenge);
  return response;
}

std::string_view field_value(const Request& request, field name) {
  const auto found = request.find(name);
  if (found == request.end()) return {};
  const auto value = found->value();
  return {value.data(), value.size()};
}

}  // namespace vapor::http
