#include "verify/geometric_verifier.h"

#include <algorithm>
#include <cmath>
#include <opencv2/calib3d.hpp>
#include <opencv2/features2d.hpp>
#include <opencv2/imgproc.hpp>

namespace spoor {
namespace {

cv::Mat AsFloatMat(const LocalFeatures& f) {
  cv::Mat m(f.size(), kDescriptorDim, CV_32F);
  for (int i = 0; i < f.size(); ++i) {
    float* row = m.ptr<float>(i);
    for (int j = 0; j < kDescriptorDim; ++j)
      row[j] = f.descriptors[i * kDescriptorDim + j] / kDescriptorScale;
  }
  return m;
}

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

  cv::BFMatcher matcher(cv::NORM_L2);
  std::vector<std::vector<cv::DMatch>> knn;
  matcher.knnMatch(AsFloatMat(query), AsFloatMat(reference), knn, 2);

  std::vector<cv::Point2f> q_points, r_points;
  for (const auto& pair : knn) {
    if (pair.size() < 2) continue;
    if (pair[0].distance < options.ratio * pair[1].distance) {
      const Keypoint& qk = query.keypoints[pair[0].queryIdx];
      const Keypoint& rk = reference.keypoints[pair[0].trainIdx];
      q_points.emplace_back(qk.x, qk.y);
      r_points.emplace_back(rk.x, rk.y);
    }
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
  return out;
}

}  // namespace spoor
