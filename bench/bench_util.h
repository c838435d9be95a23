// Small helpers shared by the benchmark programs.
#ifndef SPOOR_BENCH_BENCH_UTIL_H_
#define SPOOR_BENCH_BENCH_UTIL_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <random>
#include <thread>
#include <vector>

namespace spoor::bench {

// The benchmark's generators draw from one seeded engine each.
using Rng = std::mt19937_64;
inline double Uniform(Rng& rng, double a, double b) {
  return std::uniform_real_distribution<>(a, b)(rng);
}
inline int UniformInt(Rng& rng, int a, int b) {
  return std::uniform_int_distribution<>(a, b)(rng);
}

// Cores on this machine, at least 1.
inline int Cores() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Runs fn(i) for every i in [0, n) on `threads` threads, each taking the
// next index; returns the wall-clock seconds it took.
inline double ParallelFor(size_t n, int threads,
                          const std::function<void(size_t)>& fn) {
  std::atomic<size_t> next{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (size_t i; (i = next++) < n;) fn(i);
    });
  for (auto& t : pool) t.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// The p-quantile (0..1) of `v`, nearest rank; 0 for an empty vector.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1,
                    static_cast<size_t>(p * (v.size() - 1) + 0.5))];
}

}  // namespace spoor::bench

#endif  // SPOOR_BENCH_BENCH_UTIL_H_
