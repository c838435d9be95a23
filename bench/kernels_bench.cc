// Google Benchmark micro-benchmarks of the hot kernels, each against the
// same photo; setup outside the timed loop. BM_Decode is the baseline the
// other kernels are read against.
#include <benchmark/benchmark.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFSpectralHash.h>
#include <faiss/index_factory.h>

#include <cmath>
#include <opencv2/imgproc.hpp>
#include <random>

#include "features/feature_codec.h"
#include "features/vlad.h"
#include "index/descriptor_index.h"
#include "index/global_index.h"
#include "index/hamming_search.h"
#include "index/pq_search.h"
#include "spoor/blas_kernels.h"
#include "spoor/image.h"
#include "spoor/local_features.h"
#include "spoor/perceptual_hash.h"
#include "spoor/text.h"
#include "util/blas_threads.h"
#include "verify/descriptor_matching.h"
#include "verify/geometric_verifier.h"

namespace {

const std::string kPhoto = "/usr/share/doc/opencv-doc/examples/data/graf1.png";
const std::string kOther = "/usr/share/doc/opencv-doc/examples/data/graf3.png";

spoor::DecodeOptions Options() { return spoor::DecodeOptions{.max_side = 800}; }

std::vector<std::uint8_t> Bytes(const std::string& path) {
  return *spoor::ReadFileBytes(path, 64 << 20);
}

spoor::Image Decoded(const std::string& path) {
  return *spoor::DecodeImage(Bytes(path), Options());
}

void BM_Decode(benchmark::State& state) {
  auto bytes = Bytes(kPhoto);
  for (auto _ : state)
    benchmark::DoNotOptimize(spoor::DecodeImage(bytes, Options()));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_HashVariants(benchmark::State& state) {
  auto image = Decoded(kPhoto);
  for (auto _ : state)
    benchmark::DoNotOptimize(spoor::ComputeHashVariants(image));
}
BENCHMARK(BM_HashVariants)->Unit(benchmark::kMillisecond);

void BM_LocalFeatures(benchmark::State& state) {
  auto image = Decoded(kPhoto);
  spoor::FeatureOptions options;
  options.max_features = static_cast<int>(state.range(0));
  for (auto _ : state)
    benchmark::DoNotOptimize(spoor::ExtractLocalFeatures(image, options));
}
BENCHMARK(BM_LocalFeatures)->Arg(500)->Arg(1000)->Unit(benchmark::kMillisecond);

// SIFT by the side of its first octave (1000 features) and contrast
// threshold (thousandths): 1600 keeps the doubled octave of the 800 px image
// (the first engine), 1024 is the queries' default, 800 the references';
// 10 is the feature floor's second pass.
void BM_LocalFeaturesOctave(benchmark::State& state) {
  auto image = Decoded(kPhoto);
  spoor::FeatureOptions options;
  options.octave_side = static_cast<int>(state.range(0));
  options.contrast_threshold = state.range(1) / 1000.0;
  for (auto _ : state)
    benchmark::DoNotOptimize(spoor::ExtractLocalFeatures(image, options));
}
BENCHMARK(BM_LocalFeaturesOctave)
    ->Args({1600, 40})
    ->Args({1024, 40})
    ->Args({800, 40})
    ->Args({800, 20})
    ->Args({1024, 10})
    ->Unit(benchmark::kMillisecond);

// The feature floor (first argument: 0 off, 400 the default) on graf1 as it
// is (second argument 0: textured, over the floor, the same keypoints either
// way) and blurred until SIFT finds under 400 keypoints at its threshold
// (1: smooth, described again at a quarter of the threshold, up to the
// floor).
void BM_LocalFeaturesFloor(benchmark::State& state) {
  spoor::Image image = Decoded(kPhoto);
  if (state.range(1) != 0) {
    cv::Mat bgr(image.height, image.width, CV_8UC3, image.bgr.data());
    cv::GaussianBlur(bgr, bgr, cv::Size(), 5);
  }
  spoor::FeatureOptions options;
  options.min_features = static_cast<int>(state.range(0));
  int found = 0;
  for (auto _ : state)
    found = spoor::ExtractLocalFeatures(image, options).size();
  state.counters["keypoints"] = found;
}
BENCHMARK(BM_LocalFeaturesFloor)
    ->Args({0, 0})
    ->Args({400, 0})
    ->Args({0, 1})
    ->Args({400, 1})
    ->Unit(benchmark::kMillisecond);

// The voting tier's search: a real photo's descriptors against N
// references' random RootSIFT-shaped descriptors, 1000 each (fixed seed):
// exact ("Flat"), in 1024 lists of which 16 are visited ("IVF1024,Flat"),
// or as 64-bit Hamming-embedded signatures in such lists ("IVF1024,PCA64,
// SHm"), trained on the same descriptors.
void DescriptorSearch(benchmark::State& state, const char* factory) {
  const int refs = static_cast<int>(state.range(0));
  auto index = *spoor::DescriptorIndex::Create(factory);
  index->vectors().SetSearchBreadth(16);
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> byte(0, 60);
  std::vector<spoor::LocalFeatures> all(refs);
  std::vector<float> training;
  for (int r = 0; r < refs; ++r) {
    spoor::LocalFeatures& f = all[r];
    f.keypoints.resize(1000);
    f.descriptors.resize(1000 * spoor::kDescriptorDim);
    for (auto& d : f.descriptors) d = static_cast<std::uint8_t>(byte(rng));
    // Trained on up to 100 references' descriptors, as an index samples.
    if (index->vectors().needs_training() && r < 100) {
      auto x = spoor::DescriptorsAsFloat(f);
      training.insert(training.end(), x.begin(), x.end());
    }
  }
  if (index->vectors().needs_training()) (void)index->Train(training);
  for (int r = 1; r <= refs; ++r) (void)index->Add(r, all[r - 1]);
  auto query = spoor::ExtractLocalFeatures(Decoded(kPhoto), {});
  auto q = spoor::DescriptorsAsFloat(query);
  spoor::VoteOptions options;
  for (auto _ : state) benchmark::DoNotOptimize(index->Search(q, options));
  state.counters["descriptors"] = static_cast<double>(index->vectors().size());
  state.counters["trained"] = index->vectors().needs_training() ? 0 : 1;
}
void BM_DescriptorSearch(benchmark::State& state) {
  DescriptorSearch(state, "Flat");
}
void BM_DescriptorSearchIvf(benchmark::State& state) {
  DescriptorSearch(state, "IVF1024,Flat");
}
void BM_DescriptorSearchHamming(benchmark::State& state) {
  DescriptorSearch(state, "IVF1024,PCA64,SHm");
}
BENCHMARK(BM_DescriptorSearch)
    ->Arg(10)
    ->Arg(100)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DescriptorSearchIvf)
    ->Arg(100)
    ->Arg(1000)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_DescriptorSearchHamming)
    ->Arg(100)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond);

// The Hamming scan alone: FAISS's (kernel 0) against Spoor's list-major
// one with the popcount instruction (1) or AVX-512's vector popcount (2),
// within a radius of 64 bits (any neighbour) or 16 (the voting tier's):
// a real photo's descriptors against N thousand random RootSIFT-shaped
// ones in "IVF1024,PCA64,SHm" (lists trained on 10k of them, so uneven),
// 16 lists visited, 4 neighbours, on the calling thread.
void BM_HammingScan(benchmark::State& state) {
  const int kernel = static_cast<int>(state.range(0));
  const std::int64_t n = state.range(1) * 1000;
  const int max_bits = static_cast<int>(state.range(2));
  const auto scan_kernel = kernel == 2 ? spoor::HammingKernel::kAvx512
                                       : spoor::HammingKernel::kPopcnt;
  if (kernel > 0 && !spoor::HasHammingKernel(scan_kernel)) {
    state.SkipWithError("this processor lacks the kernel");
    return;
  }
  std::unique_ptr<faiss::Index> made(
      faiss::index_factory(spoor::kDescriptorDim, "IVF1024,PCA64,SHm"));
  auto& sh = dynamic_cast<faiss::IndexIVFSpectralHash&>(*made);
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> byte(0, 60);
  spoor::LocalFeatures chunk;
  chunk.keypoints.resize(10000);
  chunk.descriptors.resize(10000 * spoor::kDescriptorDim);
  for (std::int64_t done = 0; done < n; done += 10000) {
    for (auto& d : chunk.descriptors) d = static_cast<std::uint8_t>(byte(rng));
    auto x = spoor::DescriptorsAsFloat(chunk);
    if (!sh.is_trained) sh.train(10000, x.data());  // the first chunk
    sh.add(std::min<std::int64_t>(10000, n - done), x.data());
  }
  sh.nprobe = 16;
  auto q = spoor::DescriptorsAsFloat(
      spoor::ExtractLocalFeatures(Decoded(kPhoto), {}));
  const std::int64_t nq = q.size() / spoor::kDescriptorDim;
  std::vector<float> d(nq * 4);
  std::vector<std::int64_t> ids(nq * 4);
  std::vector<faiss::Index::idx_t> faiss_ids(nq * 4);
  // As the voting tier searches: OpenMP and OpenBLAS on this thread.
  spoor::FaissOnThisThread one_thread;
  spoor::SetBlasThreads(1);
  for (auto _ : state) {
    if (kernel > 0) {
      spoor::SearchHamming(sh, nq, q.data(), 4, max_bits, d.data(), ids.data(),
                           scan_kernel);
    } else {
      sh.search(nq, q.data(), 4, d.data(), faiss_ids.data());
    }
    benchmark::DoNotOptimize(d.data());
  }
  state.counters["queries"] = static_cast<double>(nq);
}
BENCHMARK(BM_HammingScan)
    ->Args({0, 1000, 64})
    ->Args({1, 1000, 64})
    ->Args({1, 1000, 16})
    ->Args({2, 1000, 64})
    ->Args({2, 1000, 16})
    ->Args({0, 10000, 64})
    ->Args({1, 10000, 64})
    ->Args({1, 10000, 16})
    ->Args({2, 10000, 64})
    ->Args({2, 10000, 16})
    ->Unit(benchmark::kMillisecond);

// A codebook learnt from two real photos' descriptors, as an index learns its
// own from its references.
std::unique_ptr<spoor::VladCodebook> Codebook() {
  auto a = spoor::DescriptorsAsFloat(
      spoor::ExtractLocalFeatures(Decoded(kPhoto), {}));
  auto b = spoor::DescriptorsAsFloat(
      spoor::ExtractLocalFeatures(Decoded(kOther), {}));
  a.insert(a.end(), b.begin(), b.end());
  return *spoor::VladCodebook::Train(a.size() / spoor::kDescriptorDim,
                                     a.data());
}

// Aggregation: 1000 RootSIFT descriptors into VLAD region vectors.
void BM_VladDescribe(benchmark::State& state) {
  auto codebook = Codebook();
  auto features = spoor::ExtractLocalFeatures(Decoded(kPhoto), {});
  const int regions = static_cast<int>(state.range(0));
  for (auto _ : state)
    benchmark::DoNotOptimize(codebook->Describe(features, regions));
}
BENCHMARK(BM_VladDescribe)
    ->Arg(spoor::kReferenceRegions)
    ->Arg(spoor::kQueryRegions)
    ->Unit(benchmark::kMillisecond);

// The global tier's exact search: a query's 14 regions against the 5 regions
// of N references (random unit vectors; Flat cost does not depend on them).
void BM_GlobalSearch(benchmark::State& state) {
  const int refs = static_cast<int>(state.range(0));
  auto index = *spoor::GlobalIndex::Create("Flat");
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  auto random_regions = [&](int count) {
    spoor::RegionVectors r;
    for (int i = 0; i < count; ++i) {
      r.regions.push_back(i);
      std::vector<float> v(spoor::kGlobalDim);
      float norm = 0;
      for (float& e : v) {
        e = normal(rng);
        norm += e * e;
      }
      for (float& e : v) e /= std::sqrt(norm);
      r.vectors.insert(r.vectors.end(), v.begin(), v.end());
    }
    return r;
  };
  for (int r = 1; r <= refs; ++r)
    (void)index->Add(r, random_regions(spoor::kReferenceRegions));
  auto query = random_regions(spoor::kQueryRegions);
  for (auto _ : state) benchmark::DoNotOptimize(index->Search(query, 16, 8));
  state.counters["vectors"] = static_cast<double>(index->vectors().size());
}
BENCHMARK(BM_GlobalSearch)
    ->Arg(1000)
    ->Arg(10000)
    ->Unit(benchmark::kMillisecond);

// The global tier's product-quantised search alone, FAISS's (0) against
// Spoor's list-major one (1): a query's 39 regions against the 50,000
// vectors of 10,000 references (random unit vectors) in "IVF1024,PQ64"
// trained on 20,000 of them, 16 lists visited, 16 neighbours, on the
// calling thread. The index is built once for both.
void BM_PqScan(benchmark::State& state) {
  struct Built {
    std::unique_ptr<faiss::IndexIVFPQ> index;
    std::vector<float> queries;  // stored vectors, one a region
  };
  static const Built built = [] {
    std::mt19937 rng(9);
    std::normal_distribution<float> normal;
    std::vector<float> x(50000 * spoor::kGlobalDim);
    for (std::size_t i = 0; i < x.size(); i += spoor::kGlobalDim) {
      float norm = 0;
      for (int j = 0; j < spoor::kGlobalDim; ++j) {
        x[i + j] = normal(rng);
        norm += x[i + j] * x[i + j];
      }
      for (int j = 0; j < spoor::kGlobalDim; ++j) x[i + j] /= std::sqrt(norm);
    }
    std::unique_ptr<faiss::IndexIVFPQ> made(dynamic_cast<faiss::IndexIVFPQ*>(
        faiss::index_factory(spoor::kGlobalDim, "IVF1024,PQ64")));
    made->do_polysemous_training = false;
    made->train(20000, x.data());
    made->add(50000, x.data());
    made->nprobe = 16;
    x.resize(spoor::kQueryRegions * spoor::kGlobalDim);
    return Built{std::move(made), std::move(x)};
  }();
  const faiss::IndexIVFPQ& index = *built.index;
  const float* q = built.queries.data();
  constexpr int k = 16;
  std::vector<float> d(spoor::kQueryRegions * k);
  std::vector<faiss::Index::idx_t> ids(spoor::kQueryRegions * k);
  // As the global tier searches: OpenMP and OpenBLAS on this thread.
  spoor::FaissOnThisThread one_thread;
  spoor::SetBlasThreads(1);
  for (auto _ : state) {
    if (state.range(0) == 1) {
      spoor::SearchPq(index, spoor::kQueryRegions, q, k, d.data(), ids.data());
    } else {
      index.search(spoor::kQueryRegions, q, k, d.data(), ids.data());
    }
    benchmark::DoNotOptimize(d.data());
  }
}
BENCHMARK(BM_PqScan)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

// Arg: the matching kernel (1 float product, 2 AVX-512 VNNI; skipped where
// the processor lacks it). graf3 against graf1, 1000 features each.
spoor::MatchKernel KernelArg(benchmark::State& state) {
  auto kernel = static_cast<spoor::MatchKernel>(state.range(0));
  if (!spoor::HasMatchKernel(kernel))
    state.SkipWithError("this processor lacks the kernel");
  spoor::SetBlasThreads(1);  // as the library runs it
  return kernel;
}

void BM_Verify(benchmark::State& state) {
  const spoor::MatchKernel kernel = KernelArg(state);
  auto a = spoor::ExtractLocalFeatures(Decoded(kPhoto), {});
  auto b = spoor::ExtractLocalFeatures(Decoded(kOther), {});
  spoor::VerifyOptions options;
  options.kernel = kernel;
  for (auto _ : state)
    benchmark::DoNotOptimize(spoor::VerifyGeometry(b, a, options));
}
BENCHMARK(BM_Verify)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// The tentative matches alone, which were most of BM_Verify.
void BM_NearestPassingRatio(benchmark::State& state) {
  const spoor::MatchKernel kernel = KernelArg(state);
  auto a = spoor::ExtractLocalFeatures(Decoded(kPhoto), {});
  auto b = spoor::ExtractLocalFeatures(Decoded(kOther), {});
  for (auto _ : state)
    benchmark::DoNotOptimize(spoor::NearestPassingRatio(b, a, 0.64f, kernel));
}
BENCHMARK(BM_NearestPassingRatio)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond);

// The mirror pass's features, permuted from the direct pass's (it replaced a
// second BM_LocalFeatures on the flipped image).
void BM_MirrorFeatures(benchmark::State& state) {
  auto f = spoor::ExtractLocalFeatures(Decoded(kPhoto), {});
  for (auto _ : state) benchmark::DoNotOptimize(spoor::MirrorFeatures(f));
}
BENCHMARK(BM_MirrorFeatures)->Unit(benchmark::kMicrosecond);

// Packing a reference's features for the database and reading them back;
// the argument is the packing (2: 4-bit bins, 3: 4-bit codes on the PCA
// basis, feature_codec.h).
void BM_PackFeatures(benchmark::State& state) {
  auto f = spoor::ExtractLocalFeatures(Decoded(kPhoto), {});
  const int packing = static_cast<int>(state.range(0));
  for (auto _ : state) {
    auto k = spoor::PackKeypoints(f);
    auto d = spoor::PackDescriptors(f, packing);
    benchmark::DoNotOptimize(d.data());
    benchmark::DoNotOptimize(k.data());
  }
}
BENCHMARK(BM_PackFeatures)
    ->Arg(spoor::kNibblePacking)
    ->Arg(spoor::kBasisPacking)
    ->Unit(benchmark::kMicrosecond);

void BM_UnpackFeatures(benchmark::State& state) {
  auto f = spoor::ExtractLocalFeatures(Decoded(kPhoto), {});
  const int packing = static_cast<int>(state.range(0));
  auto k = spoor::PackKeypoints(f);
  auto d = spoor::PackDescriptors(f, packing);
  spoor::LocalFeatures out;
  out.width = f.width;
  out.height = f.height;
  for (auto _ : state) {
    benchmark::DoNotOptimize(spoor::UnpackFeatures(k, d, packing, out));
  }
}
BENCHMARK(BM_UnpackFeatures)
    ->Arg(spoor::kNibblePacking)
    ->Arg(spoor::kBasisPacking)
    ->Unit(benchmark::kMicrosecond);

// Reading text: a busy photo with no words (the line finder's candidates
// are read and rejected), and a sample ad: a screenshot with a caption.
void BM_ReadText(benchmark::State& state) {
  const std::string path =
      state.range(0) == 0
          ? kPhoto
          : std::string(SPOOR_SOURCE_DIR) +
                "/reference_images/sample_ads/ad_screenshot_rotated_rhino.png";
  auto image = Decoded(path);
  (void)spoor::ReadText(image);  // loads this thread's Tesseract model
  std::size_t words = 0;
  for (auto _ : state) {
    auto read = spoor::ReadText(image);
    words = read.ok() ? read->size() : 0;
  }
  state.counters["words"] = static_cast<double>(words);
}
BENCHMARK(BM_ReadText)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  spoor::RerunWithFasterBlasKernels(argv);
  benchmark::AddCustomContext("blas_kernels", spoor::BlasKernels());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
