#include "support/secret_token.hpp"

#include <openssl/evp.h>
#include <sys/random.h>

#include <array>
#include <cerrno>
#include <cstring>

namespace vapor {
namespace {

template <std::size_t N>
std::string hex(const std::array<unsigned char, N>& bytes, std::size_t count = N) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string text;
  text.reserve(count * 2);
  for (std::size_t i = 0; i < count; ++i) {
    text += digits[bytes[i] >> 4];
    text += digits[bytes[i] & 0x0f];
  }
  return text;
}

}  // namespace

Result<std::string> random_token() {
  std::array<unsigned char, 32> random{};
  if (::getrandom(random.data(), random.size(), 0) != static_cast<ssize_t>(random.size())) {
    return fail(std::string("cannot generate a token: getrandom: ") + std::strerror(errno));
  }
  return Result<std::string>(boost::system::in_place_value, hex(random));
}

std::optional<std::string> sha256_hex(std::string_view token) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(token.data(), token.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    return std::nullopt;
  }
  return hex(digest, size);
}

}  // namespace vapor
