#include "index/descriptor_index.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "util/atomic_file.h"

namespace spoor {

using idx_t = faiss::Index::idx_t;

DescriptorIndex::DescriptorIndex(std::unique_ptr<faiss::Index> index,
                                 std::string factory)
    : index_(std::move(index)), factory_(std::move(factory)) {}
DescriptorIndex::~DescriptorIndex() = default;

absl::StatusOr<std::unique_ptr<DescriptorIndex>> DescriptorIndex::Create(
    const std::string& factory) {
  try {
    auto* inner = faiss::index_factory(kDescriptorDim, factory.c_str());
    auto map = std::make_unique<faiss::IndexIDMap>(inner);
    map->own_fields = true;
    return std::unique_ptr<DescriptorIndex>(
        new DescriptorIndex(std::move(map), factory));
  } catch (const faiss::FaissException& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "descriptor index factory '", factory, "' is not valid: ", e.what()));
  }
}

void DescriptorIndex::SetSearchBreadth(int breadth) {
  auto* map = dynamic_cast<faiss::IndexIDMap*>(index_.get());
  faiss::Index* inner = map ? map->index : index_.get();
  if (auto* ivf = faiss::ivflib::try_extract_index_ivf(inner)) {
    ivf->nprobe = std::max(1, breadth);
  } else if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(inner)) {
    hnsw->hnsw.efSearch = std::max(16, breadth);
  }
}

bool DescriptorIndex::needs_training() const { return !index_->is_trained; }

absl::Status DescriptorIndex::Train(const std::vector<float>& descriptors) {
  if (index_->is_trained) return absl::OkStatus();
  try {
    index_->train(descriptors.size() / kDescriptorDim, descriptors.data());
    return absl::OkStatus();
  } catch (const faiss::FaissException& e) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot train descriptor index '", factory_, "': ", e.what()));
  }
}

absl::Status DescriptorIndex::Add(std::int64_t ref_id,
                                  const LocalFeatures& features) {
  if (!index_->is_trained) {
    return absl::FailedPreconditionError(absl::StrCat(
        "descriptor index '", factory_, "' is not trained; rebuild the index"));
  }
  const int n = features.size();
  if (n == 0) return absl::OkStatus();
  std::vector<float> x = DescriptorsAsFloat(features);
  std::vector<idx_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = ref_id * kMaxKeypointsPerRef + i;
  try {
    index_->add_with_ids(n, x.data(), ids.data());
    return absl::OkStatus();
  } catch (const faiss::FaissException& e) {
    return absl::InternalError(
        absl::StrCat("descriptor index add: ", e.what()));
  }
}

absl::Status DescriptorIndex::Remove(std::int64_t ref_id) {
  try {
    faiss::IDSelectorRange selector(ref_id * kMaxKeypointsPerRef,
                                    (ref_id + 1) * kMaxKeypointsPerRef);
    index_->remove_ids(selector);
    return absl::OkStatus();
  } catch (const faiss::FaissException& e) {
    return absl::UnimplementedError(absl::StrCat(
        "descriptor index '", factory_, "' cannot remove: ", e.what()));
  }
}

std::int64_t DescriptorIndex::size() const { return index_->ntotal; }

std::vector<Vote> DescriptorIndex::Search(
    const std::vector<float>& query_descriptors,
    const VoteOptions& options) const {
  std::vector<Vote> out;
  const idx_t n = query_descriptors.size() / kDescriptorDim;
  if (n == 0 || index_->ntotal == 0) return out;
  const int k = static_cast<int>(
      std::min<idx_t>(std::max(1, options.neighbours), index_->ntotal));
  std::vector<float> distances(n * k);
  std::vector<idx_t> labels(n * k);
  index_->search(n, query_descriptors.data(), k, distances.data(),
                 labels.data());
  std::unordered_map<std::int64_t, float> votes;
  std::vector<std::int64_t> seen;
  for (idx_t q = 0; q < n; ++q) {
    seen.clear();
    for (int j = 0; j < k; ++j) {
      idx_t label = labels[q * k + j];
      if (label < 0 || distances[q * k + j] > options.max_distance_sq) break;
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

absl::Status DescriptorIndex::Write(const std::string& path) const {
  return WriteFileAtomically(
      path, [this](std::FILE* f) { faiss::write_index(index_.get(), f); });
}

absl::StatusOr<std::unique_ptr<DescriptorIndex>> DescriptorIndex::Read(
    const std::string& path, const std::string& factory) {
  try {
    std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
    if (loaded->d != kDescriptorDim ||
        dynamic_cast<faiss::IndexIDMap*>(loaded.get()) == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": dimension ", loaded->d, " or layout does not match ",
          kDescriptorDim, "-d descriptors with ids"));
    }
    return std::unique_ptr<DescriptorIndex>(
        new DescriptorIndex(std::move(loaded), factory));
  } catch (const faiss::FaissException& e) {
    return absl::DataLossError(
        absl::StrCat(path, ": cannot read descriptor index: ", e.what()));
  }
}

}  // namespace spoor
