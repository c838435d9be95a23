// FAISS binary index of 256-bit perceptual hashes, keyed by reference id:
// the fast path that finds exact and near-exact copies in any of the eight
// flip/rotate orientations.
//
// Thread safety: const methods may run concurrently; others need exclusive
// access (ReferenceIndex holds the lock).
#ifndef SPOOR_INDEX_HASH_INDEX_H_
#define SPOOR_INDEX_HASH_INDEX_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spoor/perceptual_hash.h"

namespace faiss {
struct IndexBinary;
}

namespace spoor {

struct HashHit {
  std::int64_t ref_id = 0;
  int distance = 0;  ///< Hamming distance of the best orientation, bits
  Orientation orientation = Orientation::kIdentity;  ///< query -> reference
};

class HashIndex {
 public:
  HashIndex();
  ~HashIndex();

  void Add(std::int64_t ref_id, const Hash256& hash);
  void Remove(std::int64_t ref_id);
  std::int64_t size() const;

  // References within `max_distance` bits of any variant, best first, one hit
  // per reference.
  std::vector<HashHit> Search(
      const std::array<Hash256, kOrientationCount>& variants, int max_distance,
      int max_results) const;

  // The index as FAISS writes it to a file (Read reads it back); Internal
  // if FAISS throws. ReferenceIndex::Save writes these bytes atomically.
  absl::StatusOr<std::vector<std::uint8_t>> Serialize() const;
  static absl::StatusOr<std::unique_ptr<HashIndex>> Read(
      const std::string& path);

 private:
  std::unique_ptr<faiss::IndexBinary> index_;
};

}  // namespace spoor

#endif  // SPOOR_INDEX_HASH_INDEX_H_
