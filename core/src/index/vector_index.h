// A FAISS index of float vectors with 64-bit ids, built from a factory
// string ("Flat", "HNSW32", "IVF1024,PQ32", ...): the storage and search that
// the descriptor and global tiers share. It knows nothing of what the vectors
// or ids mean.
//
// Thread safety: const methods may run concurrently; others need exclusive
// access (ReferenceIndex holds the lock).
#ifndef SPOOR_INDEX_VECTOR_INDEX_H_
#define SPOOR_INDEX_VECTOR_INDEX_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace faiss {
struct Index;
}

namespace spoor {

class VectorIndex {
 public:
  // `what` names the index in error messages ("descriptor index").
  // InvalidArgument when FAISS cannot build `factory` for `dim`.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Create(
      int dim, const std::string& factory, const std::string& what);
  // DataLoss when the file cannot be read; FailedPrecondition when it holds
  // another dimension or an index without ids.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Read(
      const std::string& path, int dim, const std::string& factory,
      const std::string& what);
  ~VectorIndex();

  int dim() const { return dim_; }
  const std::string& factory() const { return factory_; }
  bool needs_training() const;
  // Trains on n vectors when the index type needs it; FailedPrecondition
  // when there are too few.
  absl::Status Train(std::int64_t n, const float* x);
  // nprobe for IVF, efSearch for HNSW; ignored by exact indexes.
  void SetSearchBreadth(int breadth);

  // FailedPrecondition when the index still needs training.
  absl::Status Add(std::int64_t n, const float* x, const std::int64_t* ids);
  // Removes ids in [first, last). Unimplemented when the index type cannot
  // remove (HNSW): rebuild instead.
  absl::Status RemoveRange(std::int64_t first, std::int64_t last);
  std::int64_t size() const;

  // k nearest neighbours of each of n queries: squared L2 distances and ids
  // (-1 past the end), n * k each. k is capped at size().
  struct Neighbours {
    int k = 0;
    std::vector<float> distances;
    std::vector<std::int64_t> ids;
  };
  Neighbours Search(std::int64_t n, const float* x, int k) const;

  absl::Status Write(const std::string& path) const;
  // The bytes Write puts in the file; Internal if FAISS throws.
  absl::StatusOr<std::vector<std::uint8_t>> Serialize() const;

 private:
  VectorIndex(std::unique_ptr<faiss::Index> index, int dim, std::string factory,
              std::string what);

  std::unique_ptr<faiss::Index> index_;
  int dim_;
  std::string factory_;
  std::string what_;
};

}  // namespace spoor

#endif  // SPOOR_INDEX_VECTOR_INDEX_H_
