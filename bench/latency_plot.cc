#include "latency_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace spoor::bench {

bool DrawLatencyVsSize(const std::vector<LatencyPoint>& points,
                       double baseline_ms, const std::string& baseline_label,
                       const std::string& title, const std::string& path) {
  if (points.empty()) return false;
  // The legend sits right of the plot, where no line can cross it.
  const int w = 780, h = 440, x0 = 70, y0 = 30, pw = 600, ph = 340;
  cv::Mat img(h, w, CV_8UC3, cv::Scalar(255, 255, 255));
  double max_ms = baseline_ms;
  for (const auto& p : points) max_ms = std::max(max_ms, p.p99_ms);
  max_ms *= 1.15;
  double lo = std::log10(points.front().references),
         hi = std::log10(points.back().references);
  if (hi - lo < 1e-9) hi = lo + 1;
  auto px = [&](double refs, double ms) {
    return cv::Point(
        x0 + static_cast<int>((std::log10(refs) - lo) / (hi - lo) * pw),
        y0 + ph - static_cast<int>(ms / max_ms * ph));
  };
  cv::rectangle(img, {x0, y0}, {x0 + pw, y0 + ph}, cv::Scalar(0, 0, 0));
  struct Series {
    const char* name;
    double LatencyPoint::*ms;
    cv::Scalar colour;
  };
  const Series series[] = {
      {"p50", &LatencyPoint::p50_ms, cv::Scalar(200, 120, 0)},
      {"p95", &LatencyPoint::p95_ms, cv::Scalar(0, 160, 0)},
      {"p99", &LatencyPoint::p99_ms, cv::Scalar(0, 0, 220)}};
  for (int s = 0; s < 3; ++s) {
    for (size_t i = 0; i < points.size(); ++i) {
      const auto& p = points[i];
      cv::circle(img, px(p.references, p.*series[s].ms), 4, series[s].colour,
                 cv::FILLED);
      if (i > 0) {
        const auto& q = points[i - 1];
        cv::line(img, px(q.references, q.*series[s].ms),
                 px(p.references, p.*series[s].ms), series[s].colour, 2);
      }
    }
    cv::putText(img, series[s].name, {x0 + pw + 15, y0 + 20 + 18 * s},
                cv::FONT_HERSHEY_SIMPLEX, 0.5, series[s].colour, 1);
  }
  const cv::Scalar grey(128, 128, 128);
  cv::line(img, px(points.front().references, baseline_ms),
           px(points.back().references, baseline_ms), grey, 1);
  cv::putText(img, baseline_label,
              px(points.front().references, baseline_ms) + cv::Point(5, -5),
              cv::FONT_HERSHEY_SIMPLEX, 0.45, grey);
  for (const auto& p : points) {
    char label[32];
    std::snprintf(label, sizeof(label), "%.0f", p.references);
    cv::putText(img, label, {px(p.references, 0).x - 20, y0 + ph + 18},
                cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 0));
  }
  for (int t = 0; t <= 4; ++t) {
    char label[32];
    std::snprintf(label, sizeof(label), "%.1f", max_ms * t / 4);
    cv::putText(img, label, {5, y0 + ph - ph * t / 4 + 4},
                cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0, 0, 0));
  }
  cv::putText(img, title, {x0, 20}, cv::FONT_HERSHEY_SIMPLEX, 0.5,
              cv::Scalar(0, 0, 0));
  cv::putText(img, "references (log scale)", {x0 + pw / 2 - 80, h - 12},
              cv::FONT_HERSHEY_SIMPLEX, 0.5, cv::Scalar(0, 0, 0));
  return cv::imwrite(path, img);
}

}  // namespace spoor::bench
