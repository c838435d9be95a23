// Writes a file so that readers see either the old or the new content, never
// half of it: write to PATH.tmp, fsync, rename over PATH.
#ifndef SPOOR_UTIL_ATOMIC_FILE_H_
#define SPOOR_UTIL_ATOMIC_FILE_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace spoor {

// `write` fills the open file; it may throw (FAISS does), which is reported
// as an Internal error naming `path`, and the old file is left untouched.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::function<void(std::FILE*)>& write);

// Writes `bytes` the same way (an index serialised earlier, under a lock
// that need not be held while the disk works).
absl::Status WriteBytesAtomically(const std::string& path,
                                  const std::vector<std::uint8_t>& bytes);

}  // namespace spoor

#endif  // SPOOR_UTIL_ATOMIC_FILE_H_
