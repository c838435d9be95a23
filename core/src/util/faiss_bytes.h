// FAISS indexes as bytes in memory, so they can be copied under a lock and
// written to disk after it is released (ReferenceIndex::Save).
#ifndef SPOOR_UTIL_FAISS_BYTES_H_
#define SPOOR_UTIL_FAISS_BYTES_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace faiss {
struct Index;
struct IndexBinary;
}  // namespace faiss

namespace spoor {

// The bytes faiss::write_index would write to a file; `what` names the index
// in the error.
absl::StatusOr<std::vector<std::uint8_t>> SerializeFaiss(
    const faiss::Index& index, absl::string_view what);
absl::StatusOr<std::vector<std::uint8_t>> SerializeFaiss(
    const faiss::IndexBinary& index, absl::string_view what);

}  // namespace spoor

#endif  // SPOOR_UTIL_FAISS_BYTES_H_
