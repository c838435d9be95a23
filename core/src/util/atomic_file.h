// Writes a file so that readers see either the old or the new content, never
// half of it: write to PATH.tmp, fsync, rename over PATH. And reads a file's
// digest, which the index manifest keeps to know its files are the ones it
// wrote.
#ifndef SPOOR_UTIL_ATOMIC_FILE_H_
#define SPOOR_UTIL_ATOMIC_FILE_H_

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace spoor {

// `write` fills the open file; it may throw (FAISS does), which is reported
// as an Internal error naming `path`, and the old file is left untouched.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::function<void(std::FILE*)>& write);

// Writes `bytes` the same way (an index serialised earlier, under a lock
// that need not be held while the disk works).
absl::Status WriteBytesAtomically(const std::string& path,
                                  const std::vector<std::uint8_t>& bytes);

// Hex SHA-256 of the file at `path`, read in blocks. NotFound when it cannot
// be opened, DataLoss when a read fails.
absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path);

}  // namespace spoor

#endif  // SPOOR_UTIL_ATOMIC_FILE_H_
