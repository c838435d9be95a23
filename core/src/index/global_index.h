// The global tier: a few VLAD vectors per reference (features/vlad.h) in one
// FAISS index, searched with the query's region vectors to shortlist the
// references worth verifying. 20 KB per reference with "Flat" (exact), about
// 400 bytes with "IVF1024,PQ64" (docs/BENCHMARKS.md), so it scales where the
// voting tier cannot.
//
// Vector ids pack the reference id and the region:
// id = ref_id * kGlobalIdStride + region.
//
// Thread safety: const methods may run concurrently; others need exclusive
// access (ReferenceIndex holds the lock).
#ifndef SPOOR_INDEX_GLOBAL_INDEX_H_
#define SPOOR_INDEX_GLOBAL_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "features/vlad.h"
#include "index/vector_index.h"

namespace spoor {

inline constexpr std::int64_t kGlobalIdStride = 16;

struct GlobalHit {
  std::int64_t ref_id = 0;
  float similarity = 0;  ///< best cosine over (query, reference) region pairs
};

class GlobalIndex {
 public:
  // InvalidArgument when FAISS cannot build `factory`.
  static absl::StatusOr<std::unique_ptr<GlobalIndex>> Create(
      const std::string& factory);
  static absl::StatusOr<std::unique_ptr<GlobalIndex>> Read(
      const std::string& path, const std::string& factory);

  VectorIndex& vectors() { return *vectors_; }
  const VectorIndex& vectors() const { return *vectors_; }

  // Trains the FAISS index (IVF, PQ) on n region vectors when it needs it.
  absl::Status Train(std::int64_t n, const float* x);
  absl::Status Add(std::int64_t ref_id, const RegionVectors& regions);
  // Unimplemented when the index type cannot remove (HNSW): rebuild instead.
  absl::Status Remove(std::int64_t ref_id);

  // References nearest to any of the query's regions, most similar first,
  // at most `max_results`. `neighbours` vectors are looked up per region.
  std::vector<GlobalHit> Search(const RegionVectors& query, int neighbours,
                                int max_results) const;
  // Search for each group of the query's regions, in one pass over the
  // index: the query's regions in order, `sizes[g]` of them in group g
  // (sizes summing to query.size()). An exact index reads every stored
  // vector once for all groups instead of once for each.
  std::vector<std::vector<GlobalHit>> SearchEach(const RegionVectors& query,
                                                 const std::vector<int>& sizes,
                                                 int neighbours,
                                                 int max_results) const;

 private:
  explicit GlobalIndex(std::unique_ptr<VectorIndex> vectors);

  std::unique_ptr<VectorIndex> vectors_;
};

}  // namespace spoor

#endif  // SPOOR_INDEX_GLOBAL_INDEX_H_
