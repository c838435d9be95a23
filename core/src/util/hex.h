// Lower-case hex of bytes, as Spoor writes every digest.
#ifndef SPOOR_UTIL_HEX_H_
#define SPOOR_UTIL_HEX_H_

#include <cstddef>
#include <string>

namespace spoor {

inline std::string HexEncode(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    hex.push_back(kDigits[data[i] >> 4]);
    hex.push_back(kDigits[data[i] & 15]);
  }
  return hex;
}

}  // namespace spoor

#endif  // SPOOR_UTIL_HEX_H_
