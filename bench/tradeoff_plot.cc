// spoor-bench-tradeoff: draws µAP against query images/s from the
// results.json files of several spoor-bench-eval runs (one knob changed per
// run), so the cost of each faster setting in accuracy can be read off. With
// --latency-out it also draws end-to-end query latency (p50/p95/p99) against
// the number of references, for runs at several index sizes.
//
//   spoor-bench-tradeoff [--out tradeoff.png] [--latency-out latency.png]
//                        RESULTS.json...
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "latency_plot.h"

namespace {

struct Point {
  std::string label;
  double qps = 0, uap = 0;
  double references = 0, p50 = 0, p95 = 0, p99 = 0;
  double decode_ms = 0;  // one decode, as the run's decode-only rate implies
};

std::string Label(const nlohmann::json& j) {
  std::string voting = j.value("descriptor_factory", "?");
  std::string global = j.value("global_factory", "?");
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s%s%s, %d feat, %d px",
                voting == "none" ? "" : ("vote " + voting).c_str(),
                voting != "none" && global != "none" ? " + " : "",
                global == "none" ? "" : ("global " + global).c_str(),
                j.value("max_features", 0), j.value("max_side", 0));
  std::string label = buf;
  if (j.value("global_candidates", 8) != 8)
    label += ", " + std::to_string(j.value("global_candidates", 8)) +
             " global candidates";
  // Query SIFT settings, when not the defaults (older results lack them).
  if (j.value("query_min_features", 400) != 400)
    label +=
        ", query floor " + std::to_string(j.value("query_min_features", 0));
  if (j.value("query_octave_side", 1024) != 1024)
    label +=
        ", query octave " + std::to_string(j.value("query_octave_side", 0));
  if (j.value("padding", 0) > 0)
    label += ", " + std::to_string(j.value("references", 0)) + " refs";
  return label;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spoor-bench-tradeoff: µAP against query rate"};
  std::string out = "tradeoff.png", latency_out;
  std::vector<std::string> files;
  app.add_option("--out", out, "PNG to write")->capture_default_str();
  app.add_option("--latency-out", latency_out,
                 "also draw query latency against references to this PNG");
  app.add_option("RESULTS", files, "results.json of spoor-bench-eval runs")
      ->required();
  CLI11_PARSE(app, argc, argv);

  std::vector<Point> points;
  for (const auto& f : files) {
    std::ifstream in(f);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.contains("spoor")) {
      std::fprintf(stderr, "spoor-bench-tradeoff: %s: not a results.json\n",
                   f.c_str());
      return 2;
    }
    Point p{Label(j), j.value("query_images_per_s", 0.0),
            j["spoor"].value("uap", 0.0)};
    p.references = j.value("references", 0.0);
    if (j.contains("latency_ms")) {
      p.p50 = j["latency_ms"].value("p50", 0.0);
      p.p95 = j["latency_ms"].value("p95", 0.0);
      p.p99 = j["latency_ms"].value("p99", 0.0);
    }
    // Every worker decodes at once, so one decode takes threads / rate.
    const double threads = j.value(
        "threads", static_cast<double>(std::thread::hardware_concurrency()));
    const double rate = j.value("decode_only_images_per_s", 0.0);
    p.decode_ms = rate > 0 ? 1000 * threads / rate : 0;
    points.push_back(p);
  }
  if (!latency_out.empty()) {
    std::vector<spoor::bench::LatencyPoint> sizes;
    double decode_ms = 0;
    for (const auto& p : points) {
      if (p.p99 <= 0 || p.references <= 0) {
        std::fprintf(stderr,
                     "spoor-bench-tradeoff: %s has no latency_ms; run "
                     "spoor-bench-eval again to record it\n",
                     p.label.c_str());
        return 2;
      }
      sizes.push_back({p.references, p.p50, p.p95, p.p99});
      decode_ms += p.decode_ms / points.size();
    }
    std::sort(sizes.begin(), sizes.end(), [](const auto& a, const auto& b) {
      return a.references < b.references;
    });
    if (!spoor::bench::DrawLatencyVsSize(
            sizes, decode_ms, "one decode under the same load",
            "query ms end to end vs references (every core busy)",
            latency_out)) {
      std::fprintf(stderr, "spoor-bench-tradeoff: cannot write %s\n",
                   latency_out.c_str());
      return 1;
    }
  }
  double max_qps = 0, min_uap = 1;
  for (const auto& p : points) {
    max_qps = std::max(max_qps, p.qps);
    min_uap = std::min(min_uap, p.uap);
  }
  max_qps *= 1.2;
  double lo = std::max(0.0, std::floor(min_uap * 20 - 1) / 20), hi = 1.0;

  std::vector<std::string> legends;
  int legend_width = 0;
  for (const Point& p : points) {
    char legend[240];
    std::snprintf(legend, sizeof(legend), "%s: uAP %.3f, %.2f q/s",
                  p.label.c_str(), p.uap, p.qps);
    legends.push_back(legend);
    int baseline = 0;
    legend_width = std::max(
        legend_width,
        cv::getTextSize(legend, cv::FONT_HERSHEY_SIMPLEX, 0.4, 1, &baseline)
            .width);
  }
  const int h = 480, x0 = 70, y0 = 40, pw = 640, ph = 370;
  // Wide enough for the longest legend, which may run past the plot.
  const int w = std::max(760, x0 + 22 + legend_width + 10);
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
  cv::rectangle(img, {x0, y0}, {x0 + pw, y0 + ph}, cv::Scalar(0, 0, 0));
  auto px = [&](double qps, double uap) {
    return cv::Point(x0 + static_cast<int>(qps / max_qps * pw),
                     y0 + ph - static_cast<int>((uap - lo) / (hi - lo) * ph));
  };
  for (int t = 0; t <= 4; ++t) {
    char label[32];
    std::snprintf(label, sizeof(label), "%.3f", lo + (hi - lo) * t / 4);
    cv::putText(img, label, {8, y0 + ph - ph * t / 4 + 4},
                cv::FONT_HERSHEY_SIMPLEX, 0.42, cv::Scalar(0, 0, 0));
    std::snprintf(label, sizeof(label), "%.1f", max_qps * t / 4);
    cv::putText(img, label, {x0 + pw * t / 4 - 10, y0 + ph + 18},
                cv::FONT_HERSHEY_SIMPLEX, 0.42, cv::Scalar(0, 0, 0));
  }
  const cv::Scalar colours[] = {{200, 80, 0},  {0, 150, 0},   {0, 0, 210},
                                {150, 0, 150}, {0, 140, 180}, {90, 90, 90}};
  int ly = y0 + 16;
  for (size_t i = 0; i < points.size(); ++i) {
    const cv::Scalar& c = colours[i % 6];
    cv::circle(img, px(points[i].qps, points[i].uap), 6, c, cv::FILLED);
    cv::circle(img, {x0 + 12, ly - 4}, 5, c, cv::FILLED);
    cv::putText(img, legends[i], {x0 + 22, ly}, cv::FONT_HERSHEY_SIMPLEX, 0.4,
                cv::Scalar(0, 0, 0));
    ly += 18;
  }
  cv::putText(img, "uAP against query images/s (2 threads, through the core)",
              {x0, 24}, cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(0, 0, 0));
  cv::putText(img, "query images/s", {x0 + pw / 2 - 50, h - 10},
              cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(0, 0, 0));
  if (!cv::imwrite(out, img)) {
    std::fprintf(stderr, "spoor-bench-tradeoff: cannot write %s\n",
                 out.c_str());
    return 1;
  }
  return 0;
}
