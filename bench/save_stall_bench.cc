// spoor-bench-save: how long Save() stalls readers. Builds an index of
// synthetic references (random keypoints and descriptors, inserted directly:
// no images to decode), trains it with one Save(), then keeps one reader
// thread searching the hash tier (microseconds per call, so any wait for the
// index lock shows) while the main thread adds a reference and saves, a few
// times over.
//
//   spoor-bench-save [--refs 1000] [--features 500] [--saves 5]
//                    [--descriptor-factory Flat] [--dir DIR]
//
// Prints the save's wall time, the reader's p50 outside saves, and the
// longest single reader call that overlapped a save (the stall). The
// baseline for the stall is the save's own duration: a save that holds the
// writer lock stalls readers for about all of it.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "index/hash_index.h"
#include "spoor/blas_kernels.h"
#include "spoor/reference.h"
#include "spoor/reference_index.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

spoor::PreparedReference Synthetic(int n, int features, std::mt19937& rng) {
  std::uniform_real_distribution<float> pos(0, 800);
  std::uniform_int_distribution<int> byte(0, 120);
  spoor::PreparedReference p;
  p.reference.source = "synthetic-" + std::to_string(n);
  p.reference.sha256 =
      spoor::Sha256Hex(p.reference.source.data(), p.reference.source.size());
  p.reference.width = p.reference.height = 800;
  p.reference.format = "png";
  p.reference.labels.item_type = "other";
  for (auto& b : p.hash) b = static_cast<std::uint8_t>(byte(rng));
  p.features.width = p.features.height = 800;
  for (int i = 0; i < features; ++i)
    p.features.keypoints.push_back({pos(rng), pos(rng), 8, 0});
  p.features.descriptors.resize(std::size_t(features) * spoor::kDescriptorDim);
  for (auto& b : p.features.descriptors)
    b = static_cast<std::uint8_t>(byte(rng));
  return p;
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace

int main(int argc, char** argv) {
  spoor::RerunWithFasterBlasKernels(argv);
  CLI::App app{"Reader stall while the index saves"};
  int refs = 1000, features = 500, saves = 5;
  std::string factory = "Flat", dir;
  app.add_option("--refs", refs, "synthetic references");
  app.add_option("--features", features, "descriptors per reference");
  app.add_option("--saves", saves, "saves measured");
  app.add_option("--descriptor-factory", factory, "voting tier");
  app.add_option("--dir", dir, "index directory (default: a temp dir)");
  CLI11_PARSE(app, argc, argv);
  bool own_dir = dir.empty();
  if (own_dir)
    dir = (fs::temp_directory_path() /
           ("spoor-bench-save-" + std::to_string(::getpid())))
              .string();
  fs::remove_all(dir);

  spoor::IndexOptions options;
  options.descriptor_factory = factory;
  auto index = spoor::ReferenceIndex::Create(dir, options);
  if (!index.ok()) {
    std::fprintf(stderr, "%s\n", std::string(index.status().message()).c_str());
    return 1;
  }
  std::mt19937 rng(7);
  for (int i = 0; i < refs; ++i) {
    auto added = (*index)->Insert(Synthetic(i, features, rng));
    if (!added.ok()) {
      std::fprintf(stderr, "%s\n",
                   std::string(added.status().message()).c_str());
      return 1;
    }
  }
  if (auto s = (*index)->Save(); !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }

  // The reader: (start, end) of every call.
  std::atomic<bool> stop{false};
  std::vector<std::pair<Clock::time_point, Clock::time_point>> calls;
  std::array<spoor::Hash256, spoor::kOrientationCount> query{};
  std::thread reader([&] {
    while (!stop) {
      auto t0 = Clock::now();
      auto hits = (*index)->SearchHashes(query, 40, 5);
      auto t1 = Clock::now();
      (void)hits;
      calls.emplace_back(t0, t1);
    }
  });
  std::vector<std::pair<Clock::time_point, Clock::time_point>> save_spans;
  for (int s = 0; s < saves; ++s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    (void)(*index)->Insert(Synthetic(refs + s, features, rng));
    auto t0 = Clock::now();
    if (auto st = (*index)->Save(); !st.ok()) {
      std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
      return 1;
    }
    save_spans.emplace_back(t0, Clock::now());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  reader.join();

  std::vector<double> outside;
  double stall = 0, save_ms = 0;
  for (const auto& [a, b] : save_spans) save_ms = std::max(save_ms, Ms(b - a));
  for (const auto& [t0, t1] : calls) {
    bool overlaps = false;
    for (const auto& [a, b] : save_spans)
      if (t0 < b && t1 > a) overlaps = true;
    if (overlaps)
      stall = std::max(stall, Ms(t1 - t0));
    else
      outside.push_back(Ms(t1 - t0));
  }
  std::sort(outside.begin(), outside.end());
  double p50 = outside.empty() ? 0 : outside[outside.size() / 2];
  std::int64_t bytes = (*index)->Stats().disk_bytes;
  std::printf(
      "refs %d x %d descriptors (%s), %.1f MB on disk, %zu reader calls\n"
      "longest save        %8.1f ms\n"
      "reader p50 outside  %8.4f ms\n"
      "longest reader call during a save (the stall) %8.1f ms = %.2f x the "
      "save\n",
      refs, features, factory.c_str(), bytes / 1e6, calls.size(), save_ms, p50,
      stall, save_ms > 0 ? stall / save_ms : 0.0);
  index->reset();
  if (own_dir) fs::remove_all(dir);
  return 0;
}
