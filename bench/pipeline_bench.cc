// spoor-bench-pipeline: indexing and query throughput of the whole pipeline
// on this machine, next to decode-only throughput of the same images measured
// in the same run (the physical floor: no pipeline can beat its decoder).
//
//   spoor-bench-pipeline [--threads N] [--repeat R] [--queries DIR]... DIR...
//
// Every image under the DIRs becomes a reference; queries are the images
// under --queries DIRs plus the references themselves. All bytes are read
// into memory before timing starts.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <random>
#include <set>
#include <thread>

#include "bench_util.h"
#include "spoor/blas_kernels.h"
#include "spoor/image.h"
#include "spoor/matcher.h"
#include "spoor/reference_index.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Input {
  std::string name;
  std::vector<std::uint8_t> bytes;
};

std::vector<Input> Collect(const std::vector<std::string>& dirs) {
  static const std::set<std::string> kExt = {".jpg", ".jpeg", ".png", ".webp",
                                             ".gif", ".tif",  ".tiff"};
  std::vector<Input> out;
  for (const auto& dir : dirs) {
    std::vector<fs::path> files;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file() && kExt.count(e.path().extension().string()))
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto bytes = spoor::ReadFileBytes(f.string(), 64LL << 20);
      if (bytes.ok()) out.push_back({f.string(), std::move(*bytes)});
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  spoor::RerunWithFasterBlasKernels(argv);
  CLI::App app{"spoor-bench-pipeline: indexing and query throughput"};
  std::vector<std::string> ref_dirs, query_dirs;
  int threads =
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int repeat = 1;
  app.add_option("DIR", ref_dirs, "folders of reference images")->required();
  app.add_option("--queries", query_dirs, "folders of extra query images");
  app.add_option("--threads", threads, "worker threads")
      ->check(CLI::Range(1, 64));
  app.add_option("--repeat", repeat, "passes over the queries")
      ->check(CLI::Range(1, 100));
  spoor::IndexOptions options;
  app.add_option("--factory", options.descriptor_factory,
                 "FAISS factory string of the descriptor index")
      ->capture_default_str();
  app.add_option("--search-breadth", options.descriptor_search_breadth,
                 "IVF nprobe / HNSW efSearch")
      ->capture_default_str();
  app.add_option("--max-features", options.features.max_features,
                 "local features per image")
      ->capture_default_str();
  int pad = 0;
  app.add_option("--pad", pad,
                 "extra references cut from random windows of the reference "
                 "photos (flipped, scaled), to measure larger indexes")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<Input> refs = Collect(ref_dirs);
  std::vector<Input> queries = Collect(query_dirs);
  queries.insert(queries.end(), refs.begin(), refs.end());
  // Padding references: random 400x300 windows of the reference photos,
  // sometimes flipped; fixed seed. They make the index bigger without
  // adding answers the queries could be confused with beyond what the
  // originals already share.
  std::mt19937_64 rng(7);
  std::vector<cv::Mat> sources;
  for (const auto& r : refs) {
    auto img =
        spoor::DecodeImage(r.bytes, spoor::DecodeOptions{.max_side = 1200});
    if (img.ok() && img->width >= 500 && img->height >= 400)
      sources.push_back(
          cv::Mat(img->height, img->width, CV_8UC3, img->bgr.data()).clone());
  }
  for (int i = 0; i < pad && !sources.empty(); ++i) {
    const cv::Mat& src = sources[rng() % sources.size()];
    int w = 400, h = 300;
    cv::Rect window(static_cast<int>(rng() % (src.cols - w)),
                    static_cast<int>(rng() % (src.rows - h)), w, h);
    cv::Mat cut = src(window).clone();
    if (rng() % 2) cv::flip(cut, cut, 1);
    std::vector<std::uint8_t> bytes;
    cv::imencode(".jpg", cut, bytes, {cv::IMWRITE_JPEG_QUALITY, 85});
    refs.push_back({"pad_" + std::to_string(i), std::move(bytes)});
  }
  if (refs.empty()) {
    std::fprintf(stderr,
                 "spoor-bench-pipeline: no images under the given folders\n");
    return 2;
  }
  std::string dir = (fs::temp_directory_path() /
                     ("spoor-bench-" + std::to_string(::getpid())))
                        .string();
  fs::remove_all(dir);
  auto index = spoor::ReferenceIndex::Create(dir, options);
  if (!index.ok()) {
    std::fprintf(stderr, "spoor-bench-pipeline: %s\n",
                 index.status().ToString().c_str());
    return 1;
  }

  // Decode-only baseline over the references, then over the queries.
  std::atomic<long> decoded{0};
  double decode_refs_s =
      spoor::bench::ParallelFor(refs.size(), threads, [&](size_t i) {
        if (spoor::DecodeImage(refs[i].bytes, options.decode, refs[i].name)
                .ok())
          ++decoded;
      });

  // Indexing: parallel decode + describe, serial insert (as spoor-indexer).
  std::vector<std::optional<spoor::PreparedReference>> prepared(refs.size());
  double prepare_s =
      spoor::bench::ParallelFor(refs.size(), threads, [&](size_t i) {
        auto p =
            (*index)->Prepare(refs[i].bytes, refs[i].name, spoor::Labels{});
        if (p.ok()) prepared[i] = std::move(*p);
      });
  auto insert_start = Clock::now();
  for (auto& p : prepared)
    if (p) (void)(*index)->Insert(std::move(*p));
  if (auto saved = (*index)->Save(); !saved.ok()) {
    std::fprintf(stderr, "spoor-bench-pipeline: %s\n",
                 saved.ToString().c_str());
    return 1;
  }
  double insert_s =
      std::chrono::duration<double>(Clock::now() - insert_start).count();
  double index_s = prepare_s + insert_s;

  double decode_queries_s =
      spoor::bench::ParallelFor(queries.size(), threads, [&](size_t i) {
        (void)spoor::DecodeImage(queries[i].bytes, options.decode,
                                 queries[i].name);
      });

  spoor::Matcher matcher(**index);
  size_t total = queries.size() * repeat;
  std::vector<double> latency_ms(total);
  std::atomic<long> matched{0};
  double query_s = spoor::bench::ParallelFor(total, threads, [&](size_t i) {
    const Input& q = queries[i % queries.size()];
    auto start = Clock::now();
    auto r = matcher.Match(q.bytes, spoor::MatchOptions{}, q.name);
    latency_ms[i] =
        std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (r.ok() && !r->matches.empty()) ++matched;
  });

  auto stats = (*index)->Stats();
  double decode_ref_rate = refs.size() / decode_refs_s;
  double decode_query_rate = queries.size() / decode_queries_s;
  double index_rate = refs.size() / index_s;
  double query_rate = total / query_s;
  std::printf(
      "spoor-bench-pipeline: %zu references, %zu queries x %d, %d threads, "
      "%u cores, descriptor index %s (breadth %d), %d features\n",
      refs.size(), queries.size(), repeat, threads,
      std::thread::hardware_concurrency(), options.descriptor_factory.c_str(),
      options.descriptor_search_breadth, options.features.max_features);
  std::printf("%-28s %10s %14s\n", "stage", "images/s", "x decode-only");
  std::printf("%-28s %10.1f %14.3f\n", "decode only (references)",
              decode_ref_rate, 1.0);
  std::printf("%-28s %10.1f %14.3f\n", "index (decode+describe+ins)",
              index_rate, index_rate / decode_ref_rate);
  std::printf("%-28s %10.1f %14.3f\n", "decode only (queries)",
              decode_query_rate, 1.0);
  std::printf("%-28s %10.1f %14.3f\n", "query (decode..verify)", query_rate,
              query_rate / decode_query_rate);
  std::printf(
      "query latency ms: p50 %.1f  p95 %.1f  p99 %.1f  (%ld of %zu matched)\n",
      spoor::bench::Percentile(latency_ms, 0.5),
      spoor::bench::Percentile(latency_ms, 0.95),
      spoor::bench::Percentile(latency_ms, 0.99), matched.load(), total);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf(
      "index: %ld references, %ld descriptors, %.1f KB on disk per reference; "
      "peak RSS %.0f MB\n",
      stats.references, stats.descriptors,
      stats.disk_bytes / 1024.0 / std::max<long>(1, stats.references),
      usage.ru_maxrss / 1024.0);
  fs::remove_all(dir);
  return 0;
}
