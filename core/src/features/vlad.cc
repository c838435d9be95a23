#include "features/vlad.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "util/blas_threads.h"
#include "util/faiss_bytes.h"
#include "util/status_macros.h"

namespace spoor {
namespace {

using idx_t = faiss::Index::idx_t;

// A region as fractions of the width and height.
struct Window {
  float x0, y0, x1, y1;
};

std::array<Window, kQueryRegions> MakeWindows() {
  std::array<Window, kQueryRegions> w{};
  w[0] = {0, 0, 1, 1};
  int next = 1;
  for (int level : {2, 3, 5}) {
    float size = 2.0f / (level + 1);  // 2/3, 1/2, then 1/3
    float step = 1.0f / (level + 1);  // windows overlap by half
    for (int row = 0; row < level; ++row)
      for (int col = 0; col < level; ++col)
        w[next++] = {col * step, row * step, col * step + size,
                     row * step + size};
  }
  return w;
}

const std::array<Window, kQueryRegions> kWindows = MakeWindows();

const faiss::IndexFlatL2& Words(const faiss::IndexPreTransform& model) {
  return *static_cast<const faiss::IndexFlatL2*>(model.index);
}

}  // namespace

VladCodebook::VladCodebook(std::unique_ptr<faiss::IndexPreTransform> model)
    : model_(std::move(model)) {}
VladCodebook::~VladCodebook() = default;

absl::StatusOr<std::unique_ptr<VladCodebook>> VladCodebook::Train(
    std::int64_t n, const float* x) {
  if (n < kMinVladTraining) {
    return absl::FailedPreconditionError(
        absl::StrCat("VLAD codebook needs at least ", kMinVladTraining,
                     " descriptors to train; got ", n));
  }
  try {
    auto* pca = new faiss::PCAMatrix(kDescriptorDim, kVladReducedDim);
    pca->train(n, x);
    std::vector<float> reduced(n * kVladReducedDim);
    pca->apply_noalloc(n, x, reduced.data());
    auto* words = new faiss::IndexFlatL2(kVladReducedDim);
    faiss::ClusteringParameters params;
    params.niter = 20;
    params.seed = 20101;  // fixed: the same references give the same words
    params.max_points_per_centroid = 4096;
    faiss::Clustering kmeans(kVladReducedDim, kVladWords, params);
    kmeans.train(n, reduced.data(), *words);
    auto model = std::make_unique<faiss::IndexPreTransform>(pca, words);
    model->own_fields = true;
    return std::unique_ptr<VladCodebook>(new VladCodebook(std::move(model)));
  } catch (const std::exception& e) {  // FaissException, bad_alloc
    return absl::FailedPreconditionError(
        absl::StrCat("VLAD codebook training failed: ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<VladCodebook>> VladCodebook::Read(
    const std::string& path) {
  try {
    std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
    auto* model = dynamic_cast<faiss::IndexPreTransform*>(loaded.get());
    bool ok = model != nullptr && model->d == kDescriptorDim &&
              model->chain.size() == 1 &&
              dynamic_cast<faiss::PCAMatrix*>(model->chain[0]) != nullptr &&
              dynamic_cast<faiss::IndexFlatL2*>(model->index) != nullptr &&
              model->index->d == kVladReducedDim &&
              model->index->ntotal == kVladWords;
    if (!ok) {
      return absl::DataLossError(absl::StrCat(path, ": not a ", kVladWords,
                                              "-word VLAD codebook over ",
                                              kVladReducedDim, "-d PCA"));
    }
    loaded.release();
    return std::unique_ptr<VladCodebook>(
        new VladCodebook(std::unique_ptr<faiss::IndexPreTransform>(model)));
  } catch (const std::exception& e) {  // FaissException, bad_alloc
    return absl::DataLossError(
        absl::StrCat(path, ": cannot read VLAD codebook: ", e.what()));
  }
}

absl::StatusOr<std::vector<std::uint8_t>> VladCodebook::Serialize() const {
  return SerializeFaiss(*model_, "VLAD codebook");
}

RegionVectors VladCodebook::Describe(const LocalFeatures& features,
                                     int regions) const {
  RegionVectors out;
  const idx_t n = features.size();
  if (n == 0 || features.width <= 0 || features.height <= 0) return out;
  regions = std::clamp(regions, 1, kQueryRegions);

  // Reduce, assign, and take each descriptor's residual to its word.
  std::vector<float> x = DescriptorsAsFloat(features);
  std::vector<float> reduced(n * kVladReducedDim);
  model_->chain[0]->apply_noalloc(n, x.data(), reduced.data());
  std::vector<float> distances(n);
  std::vector<idx_t> word(n);
  {
    FaissOnThisThread one_thread;  // util/blas_threads.h
    Words(*model_).search(n, reduced.data(), 1, distances.data(), word.data());
  }
  const float* centroids = Words(*model_).get_xb();
  for (idx_t i = 0; i < n; ++i) {
    const float* c = centroids + word[i] * kVladReducedDim;
    float* r = reduced.data() + i * kVladReducedDim;
    for (int j = 0; j < kVladReducedDim; ++j) r[j] -= c[j];
  }

  std::vector<float> v(kGlobalDim);
  for (int region = 0; region < regions; ++region) {
    const Window& w = kWindows[region];
    float x0 = w.x0 * features.width, x1 = w.x1 * features.width;
    float y0 = w.y0 * features.height, y1 = w.y1 * features.height;
    std::fill(v.begin(), v.end(), 0.0f);
    int count = 0;
    for (idx_t i = 0; i < n; ++i) {
      const Keypoint& k = features.keypoints[i];
      if (k.x < x0 || k.x >= x1 || k.y < y0 || k.y >= y1) continue;
      ++count;
      float* block = v.data() + word[i] * kVladReducedDim;
      const float* r = reduced.data() + i * kVladReducedDim;
      for (int j = 0; j < kVladReducedDim; ++j) block[j] += r[j];
    }
    if (count < kMinRegionKeypoints) continue;
    // Signed square root damps bursts (repeated texture); normalising each
    // word's block stops one word from dominating; then unit length.
    for (float& e : v) e = std::copysign(std::sqrt(std::abs(e)), e);
    double total = 0;
    for (int b = 0; b < kVladWords; ++b) {
      float* block = v.data() + b * kVladReducedDim;
      double sq = 0;
      for (int j = 0; j < kVladReducedDim; ++j) sq += block[j] * block[j];
      if (sq <= 0) continue;
      float inv = static_cast<float>(1.0 / std::sqrt(sq));
      for (int j = 0; j < kVladReducedDim; ++j) block[j] *= inv;
      total += 1;
    }
    if (total == 0) continue;
    float inv = static_cast<float>(1.0 / std::sqrt(total));
    for (float& e : v) e *= inv;
    out.regions.push_back(region);
    out.vectors.insert(out.vectors.end(), v.begin(), v.end());
  }
  return out;
}

}  // namespace spoor
