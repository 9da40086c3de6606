#pragma once

#include <string>
#include <utility>

#include <boost/system/result.hpp>
#include <boost/throw_exception.hpp>

#include <stdexcept>

namespace vapor {

/// A failure a user can act on: one sentence that names what failed, where, and why.
struct Error {
  std::string message;
};

/// Lets `Result<T>::value()` throw a std::runtime_error carrying the message (startup paths only).
[[noreturn]] inline void throw_exception_from_error(const Error& error,
                                                    const boost::source_location& location) {
  boost::throw_exception(std::runtime_error(error.message), location);
}

/// The return type of every fallible function: a value, or an Error with a message.
template <class T>
using Result = boost::system::result<T, Error>;

/// Builds the error alternative: `return fail("cannot open " + path);`
inline Error fail(std::string message) { return Error{std::move(message)}; }

}  // namespace vapor
