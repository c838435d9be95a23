// A PNG of p50/p95/p99 latency against index size (log scale), with one
// same-run baseline drawn as a flat line: the plot every scale benchmark
// (spoor-bench-search, spoor-bench-tradeoff --latency-out) writes.
#ifndef SPOOR_BENCH_LATENCY_PLOT_H_
#define SPOOR_BENCH_LATENCY_PLOT_H_

#include <string>
#include <vector>

namespace spoor::bench {

struct LatencyPoint {
  double references = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;
};

// Draws `points` (sorted by references) to `path`; false when the PNG cannot
// be written.
bool DrawLatencyVsSize(const std::vector<LatencyPoint>& points,
                       double baseline_ms, const std::string& baseline_label,
                       const std::string& title, const std::string& path);

}  // namespace spoor::bench

#endif  // SPOOR_BENCH_LATENCY_PLOT_H_
