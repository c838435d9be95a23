// The voting tier: every reference's local descriptors in one FAISS index,
// used to vote for the references a query shows, even when a reference fills
// only part of the query (crops, collages, screenshots, re-photographs).
// Every descriptor is kept: as itself ("Flat", "IVF1024,Flat": about 150 KB
// per reference) or as a 64-bit Hamming-embedded signature ("IVF1024,PCA64,
// SHm", the default: 16 bytes a descriptor with its id). A search's cost
// grows with them, even in lists: the tier for small and medium indexes;
// large ones give it more lists or turn it off ("none") and rely on the
// global tier.
//
// Vector ids pack the reference id and the keypoint number:
// id = ref_id * kMaxKeypointsPerRef + keypoint.
//
// Thread safety: const methods may run concurrently; others need exclusive
// access (ReferenceIndex holds the lock).
#ifndef SPOOR_INDEX_DESCRIPTOR_INDEX_H_
#define SPOOR_INDEX_DESCRIPTOR_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "index/vector_index.h"
#include "spoor/local_features.h"

namespace spoor {

inline constexpr std::int64_t kMaxKeypointsPerRef = 4096;

struct Vote {
  std::int64_t ref_id = 0;
  float votes = 0;  ///< number of query descriptors whose neighbours hit it
};

struct VoteOptions {
  // Neighbours looked up per query descriptor. Default: 4.
  int neighbours = 4;
  // Squared RootSIFT distance under which a neighbour counts, in an index
  // of the descriptors themselves (Flat, IVF, or any tier's exact stand-in).
  // Default: 0.15.
  float max_distance_sq = 0.15f;
  // In a Hamming-embedded index (an "SH" factory), the share of signature
  // bits in which a neighbour may differ and still count. Default: 0.25,
  // 16 of 64 bits (at 103 references, 12, 16 and 22 bits measured µAP
  // 0.973, 0.978 and 0.965).
  float max_hamming_share = 0.25f;
  // References returned, most votes first. Default: 8.
  int max_results = 8;
  // Fewest votes a reference needs to be returned. Default: 1.
  float min_votes = 1;
};

class DescriptorIndex {
 public:
  // InvalidArgument when FAISS cannot build `factory`.
  static absl::StatusOr<std::unique_ptr<DescriptorIndex>> Create(
      const std::string& factory);
  static absl::StatusOr<std::unique_ptr<DescriptorIndex>> Read(
      const std::string& path, const std::string& factory);

  VectorIndex& vectors() { return *vectors_; }
  const VectorIndex& vectors() const { return *vectors_; }

  // Trains on `descriptors` (n * kDescriptorDim floats) when the index type
  // needs it; FailedPrecondition when there are too few.
  absl::Status Train(const std::vector<float>& descriptors);
  absl::Status Add(std::int64_t ref_id, const LocalFeatures& features);
  // Unimplemented when the index type cannot remove (HNSW): rebuild instead.
  absl::Status Remove(std::int64_t ref_id);

  std::vector<Vote> Search(const std::vector<float>& query_descriptors,
                           const VoteOptions& options) const;

 private:
  explicit DescriptorIndex(std::unique_ptr<VectorIndex> vectors);

  std::unique_ptr<VectorIndex> vectors_;
};

}  // namespace spoor

#endif  // SPOOR_INDEX_DESCRIPTOR_INDEX_H_
