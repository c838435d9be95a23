// Request counters by RPC and status code, latency histograms by RPC, and a
// Prometheus text exposition of them plus gauges supplied at render time;
// MetricsHttpServer serves that text at GET /metrics (civetweb).
//
// Thread safety: Metrics methods may be called concurrently.
#ifndef SPOOR_QUERY_SERVICE_METRICS_H_
#define SPOOR_QUERY_SERVICE_METRICS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

struct mg_context;
struct mg_connection;

namespace spoor::service {

class Metrics {
 public:
  // Upper bounds of the latency buckets, seconds.
  static constexpr std::array<double, 11> kBuckets = {
      0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

  void Record(const std::string& rpc, const std::string& code, double seconds);

  // "Match OK" -> count.
  std::map<std::string, std::int64_t> RequestCounts() const;

  // Prometheus text format; `gauges` are (name, help, value).
  std::string Render(
      const std::vector<std::tuple<std::string, std::string, double>>& gauges)
      const;

 private:
  struct Histogram {
    std::array<std::int64_t, kBuckets.size()> buckets{};
    std::int64_t count = 0;
    double sum = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::int64_t> requests_;
  std::map<std::string, Histogram> latency_;
};

class MetricsHttpServer {
 public:
  // Serves render() at http://listen/metrics. "host:0" picks a free port.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, std::function<std::string()> render);
  ~MetricsHttpServer();
  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;
  static int Handle(::mg_connection* conn, void* self);

  mg_context* ctx_ = nullptr;
  std::function<std::string()> render_;
  int port_ = 0;
};

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_METRICS_H_
