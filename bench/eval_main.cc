// spoor-bench-eval: accuracy of Spoor and of hash baselines on an evaluation
// set written by spoor-bench-gen, all measured in the same run.
//
//   spoor-bench-eval --corpus DIR [--via core|grpc] [--out DIR] [--min-uap X]
//
// Metrics (DISC21 style): micro-average precision over every (query,
// reference, score) prediction pooled and ranked by score; recall at 90 %
// precision; rank-1 recall per disguise family; false positives among
// distractors at the default threshold. Baselines: exact SHA-256, OpenCV
// img_hash PHash and BlockMeanHash, and Spoor's perceptual hash alone.
// Writes report.md, results.json and pr.png to --out. Exits 1 when Spoor's
// µAP is below --min-uap (CI's accuracy floor).
#include <grpcpp/grpcpp.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/img_hash.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "bench_util.h"
#include "query_service/server.h"
#include "spoor/blas_kernels.h"
#include "spoor/image.h"
#include "spoor/matcher.h"
#include "spoor/perceptual_hash.h"
#include "spoor/reference_index.h"
#include "spoor/v1/spoor.grpc.pb.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Query {
  std::string file, family, reference;
  std::vector<std::uint8_t> bytes;
};

struct Prediction {
  size_t query;
  std::string reference;
  double score;
};

struct Metrics {
  double uap = 0, recall_at_p90 = 0;
  std::map<std::string, std::pair<int, int>> rank1;  // family -> (hits, total)
  int distractor_fp = -1;  // at the default threshold; -1: not applicable
  std::vector<std::pair<double, double>> curve;  // (recall, precision)
};

Metrics Evaluate(const std::vector<Query>& queries,
                 std::vector<Prediction> predictions, double threshold) {
  Metrics m;
  int positives = 0;
  for (const auto& q : queries) positives += !q.reference.empty();
  std::stable_sort(predictions.begin(), predictions.end(),
                   [](const Prediction& a, const Prediction& b) {
                     return a.score > b.score;
                   });
  int tp = 0, seen = 0;
  double ap = 0;
  std::set<size_t> found;  // a query's true reference counts once
  for (const auto& p : predictions) {
    ++seen;
    const Query& q = queries[p.query];
    bool correct = !q.reference.empty() && p.reference == q.reference &&
                   found.insert(p.query).second;
    if (correct) {
      ++tp;
      ap += static_cast<double>(tp) / seen;
    }
    double precision = static_cast<double>(tp) / seen;
    double recall = positives ? static_cast<double>(tp) / positives : 0;
    m.curve.emplace_back(recall, precision);
    if (precision >= 0.9) m.recall_at_p90 = std::max(m.recall_at_p90, recall);
  }
  m.uap = positives ? ap / positives : 0;
  // Rank 1 per family: the query's best prediction is its reference (and,
  // when a threshold applies, at or above it).
  std::map<size_t, const Prediction*> best;
  for (const auto& p : predictions)
    if (!best.count(p.query)) best[p.query] = &p;  // sorted: first is best
  for (size_t i = 0; i < queries.size(); ++i) {
    const Query& q = queries[i];
    if (q.reference.empty()) continue;
    auto& [hits, total] = m.rank1[q.family];
    ++total;
    auto it = best.find(i);
    if (it != best.end() && it->second->reference == q.reference &&
        it->second->score >= threshold)
      ++hits;
  }
  if (threshold > 0) {
    m.distractor_fp = 0;
    for (size_t i = 0; i < queries.size(); ++i) {
      auto it = best.find(i);
      if (queries[i].reference.empty() && it != best.end() &&
          it->second->score >= threshold)
        ++m.distractor_fp;
    }
  }
  return m;
}

std::vector<Query> ReadGroundTruth(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "ground_truth.csv");
  std::vector<Query> out;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream ss(line);
    Query q;
    std::getline(ss, q.file, ',');
    std::getline(ss, q.family, ',');
    std::getline(ss, q.reference, ',');
    auto bytes = spoor::ReadFileBytes(
        (fs::path(dir) / "queries" / q.file).string(), 64 << 20);
    if (bytes.ok()) q.bytes = std::move(*bytes);
    out.push_back(std::move(q));
  }
  return out;
}

cv::Mat Pixels(const std::vector<std::uint8_t>& bytes) {
  auto image = spoor::DecodeImage(bytes, spoor::DecodeOptions{.max_side = 800});
  if (!image.ok()) return cv::Mat();
  return cv::Mat(image->height, image->width, CV_8UC3, image->bgr.data())
      .clone();
}

// Scores every reference by 1 - distance/bits; keeps each query's top 5.
template <typename Distance>
std::vector<Prediction> RankByDistance(size_t n_queries,
                                       const std::vector<std::string>& refs,
                                       Distance distance, double bits) {
  std::vector<Prediction> out;
  for (size_t q = 0; q < n_queries; ++q) {
    std::vector<Prediction> mine;
    for (size_t r = 0; r < refs.size(); ++r)
      mine.push_back({q, refs[r], 1.0 - distance(q, r) / bits});
    std::partial_sort(mine.begin(),
                      mine.begin() + std::min<size_t>(5, mine.size()),
                      mine.end(), [](const Prediction& a, const Prediction& b) {
                        return a.score > b.score;
                      });
    mine.resize(std::min<size_t>(5, mine.size()));
    out.insert(out.end(), mine.begin(), mine.end());
  }
  return out;
}

void DrawCurves(const std::map<std::string, Metrics>& results,
                const std::string& path) {
  const int w = 900, h = 640, x0 = 70, y0 = 40, pw = 560, ph = 540;
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::rectangle(img, cv::Rect(x0, y0, pw, ph), cv::Scalar(0, 0, 0), 1);
  for (int i = 0; i <= 10; ++i) {
    int x = x0 + pw * i / 10, y = y0 + ph - ph * i / 10;
    cv::line(img, {x, y0 + ph}, {x, y0 + ph + 5}, cv::Scalar(0, 0, 0));
    cv::line(img, {x0 - 5, y}, {x0, y}, cv::Scalar(0, 0, 0));
    char label[8];
    std::snprintf(label, sizeof(label), "%.1f", i / 10.0);
    cv::putText(img, label, {x - 12, y0 + ph + 22}, cv::FONT_HERSHEY_SIMPLEX,
                0.45, cv::Scalar(0, 0, 0));
    cv::putText(img, label, {x0 - 40, y + 5}, cv::FONT_HERSHEY_SIMPLEX, 0.45,
                cv::Scalar(0, 0, 0));
  }
  cv::putText(img, "recall", {x0 + pw / 2 - 25, h - 8},
              cv::FONT_HERSHEY_SIMPLEX, 0.6, cv::Scalar(0, 0, 0));
  cv::putText(img, "precision", {5, 25}, cv::FONT_HERSHEY_SIMPLEX, 0.6,
              cv::Scalar(0, 0, 0));
  const cv::Scalar colours[] = {
      {200, 60, 0}, {0, 140, 0}, {0, 0, 220}, {160, 0, 160}, {0, 160, 200}};
  int i = 0, ly = y0 + 20;
  for (const auto& [name, m] : results) {
    cv::Scalar c = colours[i++ % 5];
    std::vector<cv::Point> pts;
    for (const auto& [r, p] : m.curve)
      pts.emplace_back(x0 + static_cast<int>(r * pw),
                       y0 + ph - static_cast<int>(p * ph));
    if (pts.size() > 1) cv::polylines(img, pts, false, c, 2, cv::LINE_AA);
    char legend[96];
    std::snprintf(legend, sizeof(legend), "%s uAP %.3f", name.c_str(), m.uap);
    cv::line(img, {x0 + pw + 15, ly - 5}, {x0 + pw + 40, ly - 5}, c, 3);
    cv::putText(img, legend, {x0 + pw + 45, ly}, cv::FONT_HERSHEY_SIMPLEX, 0.45,
                cv::Scalar(0, 0, 0));
    ly += 24;
  }
  cv::imwrite(path, img);
}

}  // namespace

int main(int argc, char** argv) {
  spoor::RerunWithFasterBlasKernels(argv);
  CLI::App app{"spoor-bench-eval: accuracy against the evaluation set"};
  std::string corpus, out = "bench-results", via = "core";
  double min_uap = 0;
  spoor::IndexOptions options;
  app.add_option("--corpus", corpus, "folder written by spoor-bench-gen")
      ->required();
  app.add_option("--out", out, "report folder")->capture_default_str();
  app.add_option("--via", via,
                 "core (the library) or grpc (the service on loopback)")
      ->check(CLI::IsMember({"core", "grpc"}))
      ->capture_default_str();
  app.add_option("--min-uap", min_uap, "fail (exit 1) below this µAP")
      ->capture_default_str();
  int pad = 0;
  app.add_option("--pad", pad,
                 "also index this many of the corpus's padding references")
      ->capture_default_str();
  spoor::MatchOptions match_options;
  match_options.min_score = 0;
  match_options.max_results = 10;
  app.add_option("--factory", options.descriptor_factory,
                 "voting tier's FAISS factory, or none")
      ->capture_default_str();
  app.add_option("--global-factory", options.global_factory,
                 "global tier's FAISS factory, or none")
      ->capture_default_str();
  app.add_option("--search-breadth", options.descriptor_search_breadth,
                 "IVF nprobe / HNSW efSearch")
      ->capture_default_str();
  app.add_option("--candidates", match_options.max_candidates,
                 "voting candidates verified per query (core only)")
      ->capture_default_str();
  app.add_option("--global-candidates", match_options.max_global_candidates,
                 "global-tier candidates verified per query (core only)")
      ->capture_default_str();
  app.add_option("--cell-candidates", match_options.max_cell_candidates,
                 "global-tier candidates from the query's 5x5 windows, "
                 "besides --global-candidates (core only; 0: not searched)")
      ->capture_default_str();
  app.add_option("--global-candidates-beside-votes",
                 match_options.max_global_candidates_beside_votes,
                 "at most this many of --global-candidates when the index "
                 "votes too (core only)")
      ->capture_default_str();
  app.add_option("--cell-candidates-beside-votes",
                 match_options.max_cell_candidates_beside_votes,
                 "at most this many of --cell-candidates when the index "
                 "votes too (core only)")
      ->capture_default_str();
  app.add_option("--max-features", options.features.max_features)
      ->capture_default_str();
  app.add_option("--max-side", options.decode.max_side)->capture_default_str();
  app.add_option("--octave-side", options.features.octave_side,
                 "longest side of SIFT's first octave")
      ->capture_default_str();
  app.add_option("--query-octave-side", options.query_octave_side,
                 "longest side of SIFT's first octave for queries")
      ->capture_default_str();
  app.add_option("--contrast", options.features.contrast_threshold,
                 "SIFT's contrast threshold")
      ->capture_default_str();
  app.add_option("--min-features", options.features.min_features,
                 "references' feature floor (0: none)")
      ->capture_default_str();
  app.add_option("--query-min-features", options.query_min_features,
                 "queries' feature floor (0: none)")
      ->capture_default_str();
  app.add_option("--stored-packing", options.stored_packing,
                 "stored descriptors: 2 (70 bytes a feature) or 3 (54)")
      ->check(CLI::IsMember({2, 3}))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<Query> queries = ReadGroundTruth(corpus);
  std::vector<std::string> ref_names;
  std::vector<std::vector<std::uint8_t>> ref_bytes;
  std::error_code listed;
  for (const auto& e :
       fs::directory_iterator(fs::path(corpus) / "references", listed))
    ref_names.push_back(e.path().filename().string());
  std::sort(ref_names.begin(), ref_names.end());
  for (const auto& n : ref_names) {
    auto bytes = spoor::ReadFileBytes(
        (fs::path(corpus) / "references" / n).string(), 64 << 20);
    if (!bytes.ok()) {
      std::fprintf(stderr, "spoor-bench-eval: %s\n",
                   std::string(bytes.status().message()).c_str());
      return 2;
    }
    ref_bytes.push_back(std::move(*bytes));
  }
  if (queries.empty() || ref_names.empty()) {
    std::fprintf(stderr,
                 "spoor-bench-eval: %s has no ground truth or references\n",
                 corpus.c_str());
    return 2;
  }

  // Spoor: index the references, then every query with min_score 0.
  std::string index_dir =
      (fs::temp_directory_path() / ("spoor-eval-" + std::to_string(::getpid())))
          .string();
  fs::remove_all(index_dir);
  auto t0 = Clock::now();
  spoor::IndexStats indexed;
  absl::StatusOr<spoor::ReferenceIndex::FeatureBytes> features =
      absl::UnknownError("not indexed");
  {
    auto index = spoor::ReferenceIndex::Create(index_dir, options);
    if (!index.ok()) {
      std::fprintf(stderr, "%s\n", index.status().ToString().c_str());
      return 1;
    }
    std::vector<std::optional<spoor::PreparedReference>> prepared(
        ref_names.size());
    spoor::bench::ParallelFor(
        ref_names.size(), spoor::bench::Cores(), [&](size_t i) {
          auto p = (*index)->Prepare(ref_bytes[i], ref_names[i], {});
          if (p.ok()) prepared[i] = std::move(*p);
        });
    for (auto& p : prepared)
      if (p) (void)(*index)->Insert(std::move(*p));
    // Padding, in batches so its features never all sit in memory at once.
    std::vector<std::string> padding;
    if (pad > 0 && fs::exists(fs::path(corpus) / "padding")) {
      for (const auto& e : fs::directory_iterator(fs::path(corpus) / "padding"))
        padding.push_back(e.path().string());
      std::sort(padding.begin(), padding.end());
    }
    if (static_cast<int>(padding.size()) < pad) {
      std::fprintf(stderr,
                   "spoor-bench-eval: --pad %d but the corpus has %zu padding "
                   "references (spoor-bench-gen --pad)\n",
                   pad, padding.size());
      return 2;
    }
    padding.resize(pad);
    for (size_t start = 0; start < padding.size(); start += 256) {
      size_t n = std::min<size_t>(256, padding.size() - start);
      std::vector<std::optional<spoor::PreparedReference>> batch(n);
      spoor::bench::ParallelFor(n, spoor::bench::Cores(), [&](size_t i) {
        const std::string& path = padding[start + i];
        auto bytes = spoor::ReadFileBytes(path, 64 << 20);
        if (!bytes.ok()) return;
        auto p = (*index)->Prepare(*bytes, fs::path(path).filename(), {});
        if (p.ok()) batch[i] = std::move(*p);
      });
      for (auto& p : batch)
        if (p) (void)(*index)->Insert(std::move(*p));
    }
    (void)(*index)->Save();
    indexed = (*index)->Stats();
    features = (*index)->StoredFeatureBytes();
  }
  double index_s = std::chrono::duration<double>(Clock::now() - t0).count();

  // The physical-limit baseline: decoding the same queries, same threads.
  const double decode_s = spoor::bench::ParallelFor(
      queries.size(), spoor::bench::Cores(), [&](size_t i) {
        (void)spoor::DecodeImage(queries[i].bytes, options.decode);
      });

  std::vector<Prediction> spoor_predictions;
  std::mutex mu;
  auto t1 = Clock::now();
  std::unique_ptr<spoor::service::Server> server;
  std::unique_ptr<spoor::ReferenceIndex> index;
  std::unique_ptr<spoor::Matcher> matcher;
  std::string target;
  if (via == "grpc") {
    spoor::service::ServiceConfig config;
    config.index_dir = index_dir;
    config.listen = "127.0.0.1:0";
    config.metrics_listen = "";
    config.queue_size = 64;
    auto started = spoor::service::Server::Start(
        config, std::make_shared<spdlog::logger>(
                    "eval", std::make_shared<spdlog::sinks::null_sink_mt>()));
    if (!started.ok()) {
      std::fprintf(stderr, "%s\n", started.status().ToString().c_str());
      return 1;
    }
    server = std::move(*started);
    target = "127.0.0.1:" + std::to_string(server->port());
  } else {
    index = std::move(*spoor::ReferenceIndex::Open(index_dir));
    matcher = std::make_unique<spoor::Matcher>(*index);
  }
  std::atomic<size_t> next{0};
  std::atomic<int> errors{0};
  // Each query's wall time, with every core's worker busy: latency under load.
  std::vector<double> latency_ms(queries.size(), 0);
  // Where the time goes: each stage's milliseconds summed over the answered
  // queries (the server's own timings on the gRPC path).
  std::map<std::string, double> stage_ms;
  double verified = 0;  // references verified, summed (core only)
  auto add_stages = [&](double decode, double hash, double features,
                        double search, double verify) {
    stage_ms["decode"] += decode;
    stage_ms["hash"] += hash;
    stage_ms["features"] += features;
    stage_ms["search"] += search;
    stage_ms["verify"] += verify;
  };
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < std::max(1u, std::thread::hardware_concurrency());
       ++t) {
    workers.emplace_back([&] {
      std::unique_ptr<spoor::v1::Spoor::Stub> stub;
      if (via == "grpc") {
        grpc::ChannelArguments args;
        args.SetMaxSendMessageSize(64 << 20);
        stub = spoor::v1::Spoor::NewStub(grpc::CreateCustomChannel(
            target, grpc::InsecureChannelCredentials(), args));
      }
      for (size_t i; (i = next++) < queries.size();) {
        std::vector<Prediction> mine;
        spoor::StageTimings t;
        const auto started = Clock::now();
        if (stub) {
          spoor::v1::MatchRequest req;
          req.set_image(queries[i].bytes.data(), queries[i].bytes.size());
          req.mutable_options()->set_min_score(0);
          req.mutable_options()->set_max_results(10);
          spoor::v1::MatchResponse resp;
          grpc::ClientContext ctx;
          if (!stub->Match(&ctx, req, &resp).ok()) {
            ++errors;
            continue;
          }
          for (const auto& m : resp.matches())
            mine.push_back({i, m.reference().source(), m.score()});
          const auto& rt = resp.timings();
          t = {rt.decode_ms(), rt.hash_ms(),   rt.features_ms(),
               rt.search_ms(), rt.verify_ms(), rt.total_ms()};
        } else {
          auto r = matcher->Match(queries[i].bytes, match_options);
          if (!r.ok()) {
            ++errors;
            continue;
          }
          for (const auto& m : r->matches)
            mine.push_back({i, m.reference.source, m.score});
          t = r->timings;
          std::lock_guard lock(mu);
          verified += r->verified;
        }
        latency_ms[i] =
            std::chrono::duration<double, std::milli>(Clock::now() - started)
                .count();
        std::lock_guard lock(mu);
        spoor_predictions.insert(spoor_predictions.end(), mine.begin(),
                                 mine.end());
        add_stages(t.decode_ms, t.hash_ms, t.features_ms, t.search_ms,
                   t.verify_ms);
      }
    });
  }
  for (auto& t : workers) t.join();
  double query_s = std::chrono::duration<double>(Clock::now() - t1).count();
  server.reset();
  matcher.reset();
  index.reset();
  fs::remove_all(index_dir);

  // Baselines, on the same images, through the same decode path.
  std::map<std::string, std::string> ref_by_sha;
  for (size_t r = 0; r < ref_names.size(); ++r)
    ref_by_sha[spoor::Sha256Hex(ref_bytes[r].data(), ref_bytes[r].size())] =
        ref_names[r];
  std::vector<Prediction> sha_predictions;
  for (size_t q = 0; q < queries.size(); ++q) {
    auto it = ref_by_sha.find(
        spoor::Sha256Hex(queries[q].bytes.data(), queries[q].bytes.size()));
    if (it != ref_by_sha.end()) sha_predictions.push_back({q, it->second, 1.0});
  }
  auto phash = cv::img_hash::PHash::create();
  auto block =
      cv::img_hash::BlockMeanHash::create(cv::img_hash::BLOCK_MEAN_HASH_MODE_0);
  std::vector<cv::Mat> ref_ph, ref_bm, q_ph, q_bm;
  std::vector<std::array<spoor::Hash256, spoor::kOrientationCount>> q_spoor;
  std::vector<spoor::Hash256> ref_spoor;
  auto hashes = [&](const std::vector<std::uint8_t>& bytes, cv::Mat& ph,
                    cv::Mat& bm) {
    cv::Mat px = Pixels(bytes);
    if (px.empty()) px = cv::Mat(8, 8, CV_8UC3, cv::Scalar(0, 0, 0));
    phash->compute(px, ph);
    block->compute(px, bm);
  };
  for (const auto& b : ref_bytes) {
    cv::Mat ph, bm;
    hashes(b, ph, bm);
    ref_ph.push_back(ph);
    ref_bm.push_back(bm);
    auto img = spoor::DecodeImage(b, spoor::DecodeOptions{.max_side = 800});
    ref_spoor.push_back(img.ok() ? spoor::ComputeHash(*img) : spoor::Hash256{});
  }
  for (const auto& q : queries) {
    cv::Mat ph, bm;
    hashes(q.bytes, ph, bm);
    q_ph.push_back(ph);
    q_bm.push_back(bm);
    auto img =
        spoor::DecodeImage(q.bytes, spoor::DecodeOptions{.max_side = 800});
    q_spoor.push_back(
        img.ok() ? spoor::ComputeHashVariants(*img)
                 : std::array<spoor::Hash256, spoor::kOrientationCount>{});
  }
  auto ph_pred = RankByDistance(
      queries.size(), ref_names,
      [&](size_t q, size_t r) { return phash->compare(q_ph[q], ref_ph[r]); },
      64);
  auto bm_pred = RankByDistance(
      queries.size(), ref_names,
      [&](size_t q, size_t r) { return block->compare(q_bm[q], ref_bm[r]); },
      256);
  auto spoor_hash_pred = RankByDistance(
      queries.size(), ref_names,
      [&](size_t q, size_t r) {
        int best = spoor::kHashBits;
        for (const auto& v : q_spoor[q])
          best = std::min(best, spoor::HammingDistance(v, ref_spoor[r]));
        return static_cast<double>(best);
      },
      spoor::kHashBits);

  std::map<std::string, Metrics> results;
  results["spoor"] =
      Evaluate(queries, spoor_predictions, spoor::kDefaultMinScore);
  results["sha256"] = Evaluate(queries, sha_predictions, 0);
  results["opencv_phash"] = Evaluate(queries, ph_pred, 0);
  results["opencv_blockmean"] = Evaluate(queries, bm_pred, 0);
  results["spoor_hash_only"] = Evaluate(queries, spoor_hash_pred, 0);

  fs::create_directories(out);
  DrawCurves(results, (fs::path(out) / "pr.png").string());
  int positives = 0;
  for (const auto& q : queries) positives += !q.reference.empty();
  std::ostringstream md;
  char line[512];
  std::snprintf(
      line, sizeof(line),
      "%zu references, %d positive and %zu distractor queries; Spoor via %s: "
      "indexing %.1f images/s, querying %.2f images/s (%u threads; %.4f x "
      "decode-only, %.1f images/s in the same run), %d errors\n\n",
      static_cast<size_t>(indexed.references), positives,
      queries.size() - positives, via.c_str(), indexed.references / index_s,
      queries.size() / query_s,
      std::max(1u, std::thread::hardware_concurrency()), decode_s / query_s,
      queries.size() / decode_s, errors.load());
  md << line;
  std::vector<double> answered;
  for (double ms : latency_ms)
    if (ms > 0) answered.push_back(ms);
  const double p50 = spoor::bench::Percentile(answered, 0.50),
               p95 = spoor::bench::Percentile(answered, 0.95),
               p99 = spoor::bench::Percentile(answered, 0.99);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double peak_rss_mb = usage.ru_maxrss / 1024.0;
  std::snprintf(line, sizeof(line),
                "Query latency with every worker busy: p50 %.1f ms, p95 %.1f "
                "ms, p99 %.1f ms. Peak RSS %.0f MB. OpenBLAS kernels: %s.\n\n",
                p50, p95, p99, peak_rss_mb,
                spoor::BlasKernels().empty() ? "none (another BLAS)"
                                             : spoor::BlasKernels().c_str());
  md << line;
  const double answered_n = std::max<double>(1, answered.size());
  std::snprintf(line, sizeof(line),
                "Mean milliseconds per query by stage (one worker's time): "
                "decode %.1f, hash %.1f, features %.1f, search %.1f, verify "
                "%.1f; references verified a query %.1f%s.\n\n",
                stage_ms["decode"] / answered_n, stage_ms["hash"] / answered_n,
                stage_ms["features"] / answered_n,
                stage_ms["search"] / answered_n,
                stage_ms["verify"] / answered_n, verified / answered_n,
                via == "grpc" ? " (not reported over gRPC)" : "");
  md << line;
  md << "| method | µAP | recall @ 90% precision | distractor FPs at 0.5 |\n| "
        "--- | --- | --- | --- |\n";
  for (const auto& [name, m] : results) {
    std::snprintf(
        line, sizeof(line), "| %s | %.3f | %.3f | %s |\n", name.c_str(), m.uap,
        m.recall_at_p90,
        m.distractor_fp < 0 ? "-" : std::to_string(m.distractor_fp).c_str());
    md << line;
  }
  md << "\nRank-1 recall per family (Spoor: the first match at or above 0.5 is "
        "the "
        "reference; baselines: the nearest reference is the right one)\n\n| "
        "family |";
  for (const auto& [name, m] : results) md << " " << name << " |";
  md << "\n| --- |";
  for (size_t i = 0; i < results.size(); ++i) md << " --- |";
  md << "\n";
  for (const auto& [family, counts] : results["spoor"].rank1) {
    md << "| " << family << " (" << counts.second << ") |";
    for (auto& [name, m] : results) {
      auto [hits, total] = m.rank1[family];
      std::snprintf(line, sizeof(line), " %.2f |",
                    total ? double(hits) / total : 0.0);
      md << line;
    }
    md << "\n";
  }
  std::ofstream(fs::path(out) / "report.md") << md.str();
  // Spoor's misses and false matches, to look at.
  {
    std::map<size_t, Prediction> top;
    for (const auto& p : spoor_predictions)
      if (!top.count(p.query) || p.score > top.at(p.query).score)
        top[p.query] = p;
    std::ofstream f(fs::path(out) / "failures.csv");
    f << "query,family,expected,top_reference,top_score\n";
    for (size_t i = 0; i < queries.size(); ++i) {
      auto it = top.find(i);
      bool hit = it != top.end() && it->second.score >= spoor::kDefaultMinScore;
      bool right = hit && it->second.reference == queries[i].reference;
      if (queries[i].reference.empty() ? !hit : right) continue;
      f << queries[i].file << "," << queries[i].family << ","
        << queries[i].reference << ","
        << (it == top.end() ? "" : it->second.reference) << ","
        << (it == top.end() ? 0.0 : it->second.score) << "\n";
    }
  }
  nlohmann::json j;
  for (const auto& [name, m] : results) {
    j[name]["uap"] = m.uap;
    j[name]["recall_at_p90"] = m.recall_at_p90;
    j[name]["distractor_fp"] = m.distractor_fp;
    for (const auto& [family, c] : m.rank1)
      j[name]["rank1"][family] = {c.first, c.second};
  }
  j["query_images_per_s"] = queries.size() / query_s;
  j["blas_kernels"] = spoor::BlasKernels();
  j["decode_only_images_per_s"] = queries.size() / decode_s;
  j["latency_ms"] = {{"p50", p50}, {"p95", p95}, {"p99", p99}};
  for (const auto& [stage, ms] : stage_ms)
    j["stage_ms_mean"][stage] = ms / answered_n;
  j["peak_rss_mb"] = peak_rss_mb;
  j["threads"] = std::max(1u, std::thread::hardware_concurrency());
  j["index_images_per_s"] = indexed.references / index_s;
  j["references"] = indexed.references;
  {
    const double refs = std::max<double>(1, indexed.references);
    j["bytes_per_reference"] = {
        {"keypoints", features.ok() ? features->keypoints / refs : -1},
        {"descriptors", features.ok() ? features->descriptors / refs : -1},
        {"database", indexed.database_bytes / refs},
        {"hash_index", indexed.hash_index_bytes / refs},
        {"descriptor_index", indexed.descriptor_index_bytes / refs},
        {"global_index", indexed.global_index_bytes / refs},
        {"all", indexed.disk_bytes / refs}};
  }
  j["padding"] = pad;
  j["descriptor_factory"] = options.descriptor_factory;
  j["global_factory"] = options.global_factory;
  j["candidates"] = match_options.max_candidates;
  j["global_candidates"] = match_options.max_global_candidates;
  j["cell_candidates"] = match_options.max_cell_candidates;
  j["global_candidates_beside_votes"] =
      match_options.max_global_candidates_beside_votes;
  j["cell_candidates_beside_votes"] =
      match_options.max_cell_candidates_beside_votes;
  if (via != "grpc") j["verified_mean"] = verified / answered_n;
  j["stored_packing"] = options.stored_packing;
  j["max_features"] = options.features.max_features;
  j["max_side"] = options.decode.max_side;
  j["octave_side"] = options.features.octave_side;
  j["query_octave_side"] = options.query_octave_side;
  j["query_min_features"] = options.query_min_features;
  std::ofstream(fs::path(out) / "results.json") << j.dump(2);
  std::fputs(md.str().c_str(), stdout);
  if (results["spoor"].uap < min_uap) {
    std::fprintf(stderr, "spoor-bench-eval: µAP %.3f is below the floor %.3f\n",
                 results["spoor"].uap, min_uap);
    return 1;
  }
  return 0;
}
