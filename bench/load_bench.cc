// spoor-bench-load: a gRPC load generator for spoor-query-service.
//
// Starts the service in this process on a loopback port (over an index built
// from --references, or an existing --index), measures the in-process
// matcher's throughput on the same query images as the baseline, then sends
// Match calls from 1, 4 and 16 concurrent clients. Each level is bounded by
// --requests and --max-seconds; everything stays on 127.0.0.1.
#include <grpcpp/grpcpp.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "bench_util.h"
#include "query_service/server.h"
#include "spoor/blas_kernels.h"
#include "spoor/image.h"
#include "spoor/matcher.h"
#include "spoor/reference_index.h"
#include "spoor/v1/spoor.grpc.pb.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> ReadImages(const std::string& dir) {
  std::vector<fs::path> paths;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  std::vector<std::string> out;
  for (const auto& p : paths) {
    auto bytes = spoor::ReadFileBytes(p.string(), 64LL << 20);
    if (bytes.ok()) out.emplace_back(bytes->begin(), bytes->end());
  }
  return out;
}

struct Level {
  int clients;
  long done = 0, errors = 0;
  double seconds = 0;
  std::vector<double> latency_ms;
};

}  // namespace

int main(int argc, char** argv) {
  spoor::RerunWithFasterBlasKernels(argv);
  CLI::App app{
      "spoor-bench-load: throughput and latency of spoor-query-service"};
  std::string references = "reference_images/references";
  std::string queries = "reference_images/sample_ads";
  std::string index_dir;
  int requests = 64;
  double max_seconds = 30;
  std::vector<int> levels = {1, 4, 16};
  app.add_option("--references", references,
                 "folder to index (ignored with --index)")
      ->capture_default_str();
  app.add_option("--index", index_dir, "existing index directory to serve");
  app.add_option("--queries", queries, "folder of query images")
      ->capture_default_str();
  app.add_option("--requests", requests, "Match calls per concurrency level")
      ->capture_default_str();
  app.add_option("--max-seconds", max_seconds, "time limit per level")
      ->capture_default_str();
  app.add_option("--clients", levels, "concurrency levels")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::string tmp =
      (fs::temp_directory_path() / ("spoor-load-" + std::to_string(::getpid())))
          .string();
  if (index_dir.empty()) {
    index_dir = tmp + "/index";
    auto index =
        spoor::ReferenceIndex::Create(index_dir, spoor::IndexOptions{});
    if (!index.ok()) {
      std::fprintf(stderr, "%s\n", index.status().ToString().c_str());
      return 1;
    }
    for (const auto& e : fs::directory_iterator(references)) {
      auto bytes = spoor::ReadFileBytes(e.path().string(), 64LL << 20);
      if (bytes.ok())
        (void)(*index)->Add(*bytes, e.path().filename().string(), {});
    }
    (void)(*index)->Save();
  }
  std::vector<std::string> images = ReadImages(queries);
  if (images.empty()) {
    std::fprintf(stderr, "no query images in %s\n", queries.c_str());
    return 2;
  }

  // Baseline: the matcher in this process, as many threads as cores, on the
  // same images.
  double inprocess_rate = 0;
  {
    auto index = spoor::ReferenceIndex::Open(index_dir);
    if (!index.ok()) {
      std::fprintf(stderr, "%s\n", index.status().ToString().c_str());
      return 1;
    }
    spoor::Matcher matcher(**index);
    double seconds = spoor::bench::ParallelFor(
        requests, spoor::bench::Cores(), [&](size_t i) {
          const std::string& img = images[i % images.size()];
          (void)matcher.Match(
              std::span(reinterpret_cast<const std::uint8_t*>(img.data()),
                        img.size()),
              spoor::MatchOptions{});
        });
    inprocess_rate = requests / seconds;
  }

  spoor::service::ServiceConfig config;
  config.index_dir = index_dir;
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "";
  config.queue_size = 64;  // 16 clients must queue, not be refused
  auto log = std::make_shared<spdlog::logger>(
      "load", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto server = spoor::service::Server::Start(config, log);
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().ToString().c_str());
    return 1;
  }
  std::string target = "127.0.0.1:" + std::to_string((*server)->port());

  std::printf(
      "spoor-bench-load: %zu query images, %d calls per level (at most %.0f "
      "s), %u cores\n",
      images.size(), requests, max_seconds,
      std::thread::hardware_concurrency());
  std::printf("in-process matcher: %.2f images/s (baseline)\n", inprocess_rate);
  std::printf("%8s %10s %12s %8s %8s %8s %7s %s\n", "clients", "calls",
              "images/s", "p50 ms", "p95 ms", "p99 ms", "errors",
              "x in-process");
  for (int clients : levels) {
    Level level;
    level.clients = clients;
    std::mutex mu;
    std::atomic<long> next{0};
    auto start = Clock::now();
    auto stop_at = start + std::chrono::milliseconds(
                               static_cast<long>(max_seconds * 1000));
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        grpc::ChannelArguments args;
        args.SetMaxSendMessageSize(64 << 20);
        args.SetInt("grpc.channel_id", c);  // one connection per client
        auto stub = spoor::v1::Spoor::NewStub(grpc::CreateCustomChannel(
            target, grpc::InsecureChannelCredentials(), args));
        for (long i; Clock::now() < stop_at && (i = next++) < requests;) {
          spoor::v1::MatchRequest req;
          req.set_image(images[i % images.size()]);
          spoor::v1::MatchResponse resp;
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(60));
          auto t0 = Clock::now();
          grpc::Status s = stub->Match(&ctx, req, &resp);
          double ms =
              std::chrono::duration<double, std::milli>(Clock::now() - t0)
                  .count();
          std::lock_guard lock(mu);
          level.latency_ms.push_back(ms);
          ++level.done;
          if (!s.ok()) ++level.errors;
        }
      });
    }
    for (auto& t : threads) t.join();
    level.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    double rate = level.done / level.seconds;
    std::printf("%8d %10ld %12.2f %8.1f %8.1f %8.1f %7ld %12.3f\n", clients,
                level.done, rate,
                spoor::bench::Percentile(level.latency_ms, 0.5),
                spoor::bench::Percentile(level.latency_ms, 0.95),
                spoor::bench::Percentile(level.latency_ms, 0.99), level.errors,
                rate / inprocess_rate);
  }
  (*server)->Shutdown(std::chrono::seconds(5));
  server->reset();
  fs::remove_all(tmp);
  return 0;
}
