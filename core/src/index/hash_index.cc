#include "index/hash_index.h"

#include <faiss/IndexBinaryFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "util/blas_threads.h"
#include "util/faiss_bytes.h"
#include "util/status_macros.h"

namespace spoor {

using idx_t = faiss::Index::idx_t;

HashIndex::HashIndex()
    : index_(std::make_unique<faiss::IndexBinaryIDMap>(
          new faiss::IndexBinaryFlat(kHashBits))) {
  static_cast<faiss::IndexBinaryIDMap*>(index_.get())->own_fields = true;
}
HashIndex::~HashIndex() = default;

void HashIndex::Add(std::int64_t ref_id, const Hash256& hash) {
  idx_t id = ref_id;
  index_->add_with_ids(1, hash.data(), &id);
}

void HashIndex::Remove(std::int64_t ref_id) {
  faiss::IDSelectorRange selector(ref_id, ref_id + 1);
  index_->remove_ids(selector);
}

std::int64_t HashIndex::size() const { return index_->ntotal; }

std::vector<HashHit> HashIndex::Search(
    const std::array<Hash256, kOrientationCount>& variants, int max_distance,
    int max_results) const {
  std::vector<HashHit> hits;
  if (index_->ntotal == 0 || max_results <= 0) return hits;
  const int k =
      static_cast<int>(std::min<std::int64_t>(max_results, index_->ntotal));
  std::vector<std::uint8_t> queries(kOrientationCount * sizeof(Hash256));
  for (int i = 0; i < kOrientationCount; ++i) {
    std::copy(variants[i].begin(), variants[i].end(),
              queries.begin() + i * sizeof(Hash256));
  }
  std::vector<std::int32_t> distances(kOrientationCount * k);
  std::vector<idx_t> labels(kOrientationCount * k);
  {
    FaissOnThisThread one_thread;  // util/blas_threads.h
    index_->search(kOrientationCount, queries.data(), k, distances.data(),
                   labels.data());
  }
  std::map<std::int64_t, HashHit> best;
  for (int q = 0; q < kOrientationCount; ++q) {
    for (int j = 0; j < k; ++j) {
      idx_t label = labels[q * k + j];
      int distance = distances[q * k + j];
      if (label < 0 || distance > max_distance) continue;
      auto [it, inserted] = best.try_emplace(
          label, HashHit{label, distance, static_cast<Orientation>(q)});
      if (!inserted && distance < it->second.distance) {
        it->second = HashHit{label, distance, static_cast<Orientation>(q)};
      }
    }
  }
  for (const auto& [id, hit] : best) hits.push_back(hit);
  std::sort(hits.begin(), hits.end(), [](const HashHit& a, const HashHit& b) {
    return a.distance != b.distance ? a.distance < b.distance
                                    : a.ref_id < b.ref_id;
  });
  if (static_cast<int>(hits.size()) > max_results) hits.resize(max_results);
  return hits;
}

absl::StatusOr<std::vector<std::uint8_t>> HashIndex::Serialize() const {
  return SerializeFaiss(*index_, "hash index");
}

absl::StatusOr<std::unique_ptr<HashIndex>> HashIndex::Read(
    const std::string& path) {
  try {
    std::unique_ptr<faiss::IndexBinary> loaded(
        faiss::read_index_binary(path.c_str()));
    if (loaded->d != kHashBits ||
        dynamic_cast<faiss::IndexBinaryIDMap*>(loaded.get()) == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": not a ", kHashBits, "-bit hash index with ids"));
    }
    auto index = std::make_unique<HashIndex>();
    index->index_ = std::move(loaded);
    return index;
  } catch (const std::exception& e) {  // FaissException, bad_alloc
    return absl::DataLossError(
        absl::StrCat(path, ": cannot read hash index: ", e.what()));
  }
}

}  // namespace spoor
