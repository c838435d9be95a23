#include "index/descriptor_index.h"

#include <algorithm>
#include <unordered_map>

#include "util/status_macros.h"

namespace spoor {

constexpr const char* kWhat = "descriptor index";

DescriptorIndex::DescriptorIndex(std::unique_ptr<VectorIndex> vectors)
    : vectors_(std::move(vectors)) {}

absl::StatusOr<std::unique_ptr<DescriptorIndex>> DescriptorIndex::Create(
    const std::string& factory) {
  SPOOR_ASSIGN_OR_RETURN(auto vectors,
                         VectorIndex::Create(kDescriptorDim, factory, kWhat));
  return std::unique_ptr<DescriptorIndex>(
      new DescriptorIndex(std::move(vectors)));
}

absl::StatusOr<std::unique_ptr<DescriptorIndex>> DescriptorIndex::Read(
    const std::string& path, const std::string& factory) {
  SPOOR_ASSIGN_OR_RETURN(
      auto vectors, VectorIndex::Read(path, kDescriptorDim, factory, kWhat));
  return std::unique_ptr<DescriptorIndex>(
      new DescriptorIndex(std::move(vectors)));
}

absl::Status DescriptorIndex::Train(const std::vector<float>& descriptors) {
  return vectors_->Train(descriptors.size() / kDescriptorDim,
                         descriptors.data());
}

absl::Status DescriptorIndex::Add(std::int64_t ref_id,
                                  const LocalFeatures& features) {
  const int n = features.size();
  std::vector<float> x = DescriptorsAsFloat(features);
  std::vector<std::int64_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = ref_id * kMaxKeypointsPerRef + i;
  return vectors_->Add(n, x.data(), ids.data());
}

absl::Status DescriptorIndex::Remove(std::int64_t ref_id) {
  return vectors_->RemoveRange(ref_id * kMaxKeypointsPerRef,
                               (ref_id + 1) * kMaxKeypointsPerRef);
}

std::vector<Vote> DescriptorIndex::Search(
    const std::vector<float>& query_descriptors,
    const VoteOptions& options) const {
  std::vector<Vote> out;
  const std::int64_t n = query_descriptors.size() / kDescriptorDim;
  const int bits = vectors_->signature_bits();
  const float max_distance =
      bits > 0 ? options.max_hamming_share * static_cast<float>(bits)
               : options.max_distance_sq;
  // Only neighbours within max_distance vote: the search leaves out the
  // rest, and is faster for it in a Hamming-embedded index.
  VectorIndex::Neighbours nn = vectors_->Search(
      n, query_descriptors.data(), options.neighbours, max_distance);
  if (nn.k == 0) return out;
  const int k = nn.k;
  std::unordered_map<std::int64_t, float> votes;
  std::vector<std::int64_t> seen;
  for (std::int64_t q = 0; q < n; ++q) {
    seen.clear();
    for (int j = 0; j < k; ++j) {
      std::int64_t label = nn.ids[q * k + j];
      if (label < 0 || nn.distances[q * k + j] > max_distance) break;
      std::int64_t ref = label / kMaxKeypointsPerRef;
      // One vote per reference per query descriptor: repeated texture in one
      // reference must not outvote a distinct match elsewhere.
      if (std::find(seen.begin(), seen.end(), ref) != seen.end()) continue;
      seen.push_back(ref);
      votes[ref] += 1.0f;
    }
  }
  out.reserve(votes.size());
  for (const auto& [ref, count] : votes)
    if (count >= options.min_votes) out.push_back({ref, count});
  std::sort(out.begin(), out.end(), [](const Vote& a, const Vote& b) {
    return a.votes != b.votes ? a.votes > b.votes : a.ref_id < b.ref_id;
  });
  if (static_cast<int>(out.size()) > options.max_results)
    out.resize(options.max_results);
  return out;
}

}  // namespace spoor
