// A FAISS index of float vectors with 64-bit ids, built from a factory
// string ("Flat", "HNSW32", "IVF1024,PQ32", ...): the storage and search that
// the descriptor and global tiers share. It knows nothing of what the vectors
// or ids mean.
//
// An IVF index keeps the ids it is given; every other type is wrapped in an
// IndexIDMap.
//
// An index type that must be trained (IVF, PQ) cannot hold vectors before it
// is. Until then its vectors go to an exact index that stands in for it
// (searched, removed from and written the same way), and Train moves them
// into the trained one: what is added is searchable at once, whatever the
// factory.
//
// Thread safety: const methods may run concurrently; others need exclusive
// access (ReferenceIndex holds the lock).
#ifndef SPOOR_INDEX_VECTOR_INDEX_H_
#define SPOOR_INDEX_VECTOR_INDEX_H_

#include <cstdint>
#include <limits>
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
  // another dimension or an index without ids. A file written while the
  // index awaited training holds the exact stand-in, and reads back as one.
  static absl::StatusOr<std::unique_ptr<VectorIndex>> Read(
      const std::string& path, int dim, const std::string& factory,
      const std::string& what);
  ~VectorIndex();

  int dim() const { return dim_; }
  const std::string& factory() const { return factory_; }
  // True until an index type that must be trained is: its vectors are
  // searched exactly meanwhile.
  bool needs_training() const;
  // Trains on n vectors when the index type needs it, then moves in what the
  // exact stand-in held. FailedPrecondition when there are too few: an IVF
  // index needs kMinTrainingPerList vectors for each of its lists.
  absl::Status Train(std::int64_t n, const float* x);
  static constexpr std::int64_t kMinTrainingPerList = 10;
  // True when the index needs training and holds enough vectors for it.
  bool ReadyToTrain() const;
  // nprobe for IVF, efSearch for HNSW; ignored by exact indexes.
  void SetSearchBreadth(int breadth);

  absl::Status Add(std::int64_t n, const float* x, const std::int64_t* ids);
  // Removes ids in [first, last). Unimplemented when the index type cannot
  // remove (HNSW): rebuild instead.
  absl::Status RemoveRange(std::int64_t first, std::int64_t last);
  std::int64_t size() const;

  // k nearest neighbours of each of n queries within max_distance of it:
  // distances (squared L2, or Hamming: signature_bits()) and ids (-1 past
  // the end), n * k each. k is capped at size(). A Hamming-embedded index
  // searches faster for a small radius; others search as far and drop what
  // lies beyond it.
  struct Neighbours {
    int k = 0;
    std::vector<float> distances;
    std::vector<std::int64_t> ids;
  };
  Neighbours Search(
      std::int64_t n, const float* x, int k,
      float max_distance = std::numeric_limits<float>::infinity()) const;
  // The bits of each binary signature when Search's distances are Hamming
  // distances between signatures (a trained "IVFn,PCAb,SHm" index), else 0:
  // they are squared L2 distances.
  int signature_bits() const;

  absl::Status Write(const std::string& path) const;
  // The bytes Write puts in the file; Internal if FAISS throws.
  absl::StatusOr<std::vector<std::uint8_t>> Serialize() const;

 private:
  VectorIndex(std::unique_ptr<faiss::Index> index,
              std::unique_ptr<faiss::Index> exact, int dim, std::string factory,
              std::string what);

  std::int64_t MinTraining() const;
  // The index that answers: exact_ while index_ awaits training.
  faiss::Index& active() const { return exact_ ? *exact_ : *index_; }

  // The factory's index: as it is when it keeps ids itself (IVF), else in
  // an IndexIDMap.
  std::unique_ptr<faiss::Index> index_;
  // IndexIDMap over IndexFlatL2 while index_ awaits training, else null.
  std::unique_ptr<faiss::Index> exact_;
  // When the active index is exact (the stand-in or "Flat"): the squared
  // norm of each of its vectors, in storage order, kept in step by Add,
  // RemoveRange and Train so that Search need not compute them again.
  std::vector<float> exact_norms_;
  int dim_;
  std::string factory_;
  std::string what_;
};

}  // namespace spoor

#endif  // SPOOR_INDEX_VECTOR_INDEX_H_
