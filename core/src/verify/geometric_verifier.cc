#include "verify/geometric_verifier.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace spoor {
namespace {

// A homography fitted to a few chance matches folds, mirrors or collapses the
// reference; a real copy maps it to a convex quadrilateral of sane size.
bool IsPlausible(const cv::Mat& h, const LocalFeatures& ref) {
  if (h.empty()) return false;
  std::vector<cv::Point2f> corners = {
      {0, 0},
      {static_cast<float>(ref.width), 0},
      {static_cast<float>(ref.width), static_cast<float>(ref.height)},
      {0, static_cast<float>(ref.height)}};
  std::vector<cv::Point2f> projected;
  cv::perspectiveTransform(corners, projected, h);
  if (!cv::isContourConvex(projected)) return false;
  // Orientation preserved (no reflection: mirrors are matched explicitly).
  double det = h.at<double>(0, 0) * h.at<double>(1, 1) -
               h.at<double>(0, 1) * h.at<double>(1, 0);
  if (det <= 0) return false;
  double scale = std::sqrt(det);
  return scale > 0.03 && scale < 30;
}

}  // namespace

Verification VerifyGeometry(const LocalFeatures& query,
                            const LocalFeatures& reference,
                            const VerifyOptions& options) {
  Verification out;
  if (query.size() < 2 || reference.size() < 2) return out;

  const std::size_t nq = query.keypoints.size();
  // Lowe's ratio on distances is the squared ratio on squared distances.
  const float ratio2 = options.ratio * options.ratio;
  const std::vector<std::int64_t> ids =
      NearestPassingRatio(query, reference, ratio2, options.kernel);

  std::vector<cv::Point2f> q_points, r_points;
  for (std::size_t i = 0; i < nq; ++i) {
    std::int64_t best = ids[i];
    if (best < 0) continue;  // failed the ratio test
    const Keypoint& qk = query.keypoints[i];
    const Keypoint& rk = reference.keypoints[best];
    q_points.emplace_back(qk.x, qk.y);
    r_points.emplace_back(rk.x, rk.y);
  }
  out.matches = static_cast<int>(q_points.size());
  if (out.matches < std::max(4, options.min_matches)) return out;

  double threshold =
      options.reprojection_fraction * std::max(query.width, query.height);
  cv::Mat mask;
  cv::Mat h = cv::findHomography(r_points, q_points, cv::USAC_MAGSAC,
                                 std::max(1.0, threshold), mask, 2000, 0.999);
  if (!IsPlausible(h, reference)) return out;

  int inliers = cv::countNonZero(mask);
  if (inliers < 4) return out;
  out.inliers = inliers;
  for (int i = 0; i < 9; ++i) out.homography[i] = h.at<double>(i / 3, i % 3);
  out.query_inliers.reserve(inliers);
  for (int i = 0; i < mask.rows; ++i)
    if (mask.at<uchar>(i))
      out.query_inliers.push_back({q_points[i].x, q_points[i].y});
  return out;
}

}  // namespace spoor
