#include "index/global_index.h"

#include <algorithm>
#include <unordered_map>

#include "util/status_macros.h"

namespace spoor {

constexpr const char* kWhat = "global index";

GlobalIndex::GlobalIndex(std::unique_ptr<VectorIndex> vectors)
    : vectors_(std::move(vectors)) {}

absl::StatusOr<std::unique_ptr<GlobalIndex>> GlobalIndex::Create(
    const std::string& factory) {
  SPOOR_ASSIGN_OR_RETURN(auto vectors,
                         VectorIndex::Create(kGlobalDim, factory, kWhat));
  return std::unique_ptr<GlobalIndex>(new GlobalIndex(std::move(vectors)));
}

absl::StatusOr<std::unique_ptr<GlobalIndex>> GlobalIndex::Read(
    const std::string& path, const std::string& factory) {
  SPOOR_ASSIGN_OR_RETURN(auto vectors,
                         VectorIndex::Read(path, kGlobalDim, factory, kWhat));
  return std::unique_ptr<GlobalIndex>(new GlobalIndex(std::move(vectors)));
}

absl::Status GlobalIndex::Train(std::int64_t n, const float* x) {
  return vectors_->Train(n, x);
}

absl::Status GlobalIndex::Add(std::int64_t ref_id,
                              const RegionVectors& regions) {
  std::vector<std::int64_t> ids;
  for (int r : regions.regions) ids.push_back(ref_id * kGlobalIdStride + r);
  return vectors_->Add(regions.size(), regions.vectors.data(), ids.data());
}

absl::Status GlobalIndex::Remove(std::int64_t ref_id) {
  return vectors_->RemoveRange(ref_id * kGlobalIdStride,
                               (ref_id + 1) * kGlobalIdStride);
}

std::vector<GlobalHit> GlobalIndex::Search(const RegionVectors& query,
                                           int neighbours,
                                           int max_results) const {
  return SearchEach(query, {query.size()}, neighbours, max_results)[0];
}

std::vector<std::vector<GlobalHit>> GlobalIndex::SearchEach(
    const RegionVectors& query, const std::vector<int>& sizes, int neighbours,
    int max_results) const {
  std::vector<std::vector<GlobalHit>> out(sizes.size());
  VectorIndex::Neighbours nn =
      vectors_->Search(query.size(), query.vectors.data(), neighbours);
  std::size_t row = 0;  // first query region of the group
  for (std::size_t g = 0; g < sizes.size(); ++g) {
    const std::size_t rows = static_cast<std::size_t>(std::max(0, sizes[g]));
    std::unordered_map<std::int64_t, float> best;
    const std::size_t k = static_cast<std::size_t>(nn.k);
    const std::size_t end = std::min(nn.ids.size(), (row + rows) * k);
    for (std::size_t i = row * k; i < end; ++i) {
      if (nn.ids[i] < 0) continue;
      // Unit vectors: squared distance = 2 - 2 cos.
      float similarity = 1.0f - nn.distances[i] / 2;
      float& b =
          best.try_emplace(nn.ids[i] / kGlobalIdStride, -1.0f).first->second;
      b = std::max(b, similarity);
    }
    row += rows;
    std::vector<GlobalHit>& hits = out[g];
    hits.reserve(best.size());
    for (const auto& [ref, similarity] : best)
      hits.push_back({ref, similarity});
    std::sort(
        hits.begin(), hits.end(), [](const GlobalHit& a, const GlobalHit& b) {
          return a.similarity != b.similarity ? a.similarity > b.similarity
                                              : a.ref_id < b.ref_id;
        });
    if (static_cast<int>(hits.size()) > max_results)
      hits.resize(std::max(0, max_results));
  }
  return out;
}

}  // namespace spoor
