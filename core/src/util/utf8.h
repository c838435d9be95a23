// Checks on text that clients and manifests send, before it reaches the
// database, JSON output and protobuf strings (which require UTF-8).
#ifndef SPOOR_UTIL_UTF8_H_
#define SPOOR_UTIL_UTF8_H_

#include <string>

namespace spoor {

// True when `s` is well-formed UTF-8 (no overlongs, surrogates or code
// points past U+10FFFF). Abseil in Debian 12 has no public validator.
bool IsUtf8(const std::string& s);

// IsUtf8, and no ASCII control characters (a field that is one line).
bool IsPlainText(const std::string& s);

}  // namespace spoor

#endif  // SPOOR_UTIL_UTF8_H_
