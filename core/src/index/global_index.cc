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
  std::vector<GlobalHit> out;
  VectorIndex::Neighbours nn =
      vectors_->Search(query.size(), query.vectors.data(), neighbours);
  std::unordered_map<std::int64_t, float> best;
  for (size_t i = 0; i < nn.ids.size(); ++i) {
    if (nn.ids[i] < 0) continue;
    // Unit vectors: squared distance = 2 - 2 cos.
    float similarity = 1.0f - nn.distances[i] / 2;
    float& b =
        best.try_emplace(nn.ids[i] / kGlobalIdStride, -1.0f).first->second;
    b = std::max(b, similarity);
  }
  out.reserve(best.size());
  for (const auto& [ref, similarity] : best) out.push_back({ref, similarity});
  std::sort(out.begin(), out.end(), [](const GlobalHit& a, const GlobalHit& b) {
    return a.similarity != b.similarity ? a.similarity > b.similarity
                                        : a.ref_id < b.ref_id;
  });
  if (static_cast<int>(out.size()) > max_results)
    out.resize(std::max(0, max_results));
  return out;
}

}  // namespace spoor
