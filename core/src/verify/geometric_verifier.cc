#include "verify/geometric_verifier.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace spoor {
namespace {

// For each query descriptor, the reference descriptor nearest to it when
// that one passes Lowe's test against the second nearest at `ratio2` (the
// squared ratio, on squared L2 distances), else -1. The dot products come
// from one matrix product (cv::gemm, vectorised, on the calling thread
// only), then ||q||^2 + ||r||^2 - 2 q.r; about three times faster than
// OpenCV's brute-force matcher on 1000 x 1000, and unlike FAISS's k-NN it
// starts no OpenMP threads to compete with the other workers.
std::vector<std::int64_t> NearestPassingRatio(const LocalFeatures& query,
                                              const LocalFeatures& reference,
                                              float ratio2) {
  const std::size_t nq = query.keypoints.size();
  const std::size_t nr = reference.keypoints.size();
  std::vector<float> q = DescriptorsAsFloat(query);
  std::vector<float> r = DescriptorsAsFloat(reference);
  auto norm2 = [](const float* v) {
    float n = 0;
    for (int k = 0; k < kDescriptorDim; ++k) n += v[k] * v[k];
    return n;
  };
  std::vector<float> r_norm(nr);
  for (std::size_t j = 0; j < nr; ++j)
    r_norm[j] = norm2(&r[j * kDescriptorDim]);
  cv::Mat qm(static_cast<int>(nq), kDescriptorDim, CV_32F, q.data());
  cv::Mat rm(static_cast<int>(nr), kDescriptorDim, CV_32F, r.data());
  cv::Mat dot;
  cv::gemm(qm, rm, 1.0, cv::noArray(), 0.0, dot, cv::GEMM_2_T);

  std::vector<std::int64_t> ids(nq, -1);
  for (std::size_t i = 0; i < nq; ++i) {
    const float* row = dot.ptr<float>(static_cast<int>(i));
    // + ||q||^2 is the same for every j: added at the end.
    auto partial = [&](std::size_t j) { return r_norm[j] - 2 * row[j]; };
    // The two smallest values first, in kLanes independent running pairs
    // without branches, which the compiler keeps in vector registers (the
    // branchy scan that also tracked ids cost half as much as the matrix
    // product); then the pairs merged.
    constexpr std::size_t kLanes = 16;
    constexpr float kInf = std::numeric_limits<float>::max();
    std::array<float, kLanes> lo, hi;
    lo.fill(kInf);
    hi.fill(kInf);
    std::size_t j = 0;
    for (; j + kLanes <= nr; j += kLanes) {
      for (std::size_t l = 0; l < kLanes; ++l) {
        float d = partial(j + l);
        hi[l] = std::min(hi[l], std::max(lo[l], d));
        lo[l] = std::min(lo[l], d);
      }
    }
    float d0 = kInf, d1 = kInf;
    auto take = [&](float d) {
      d1 = std::min(d1, std::max(d0, d));
      d0 = std::min(d0, d);
    };
    for (std::size_t l = 0; l < kLanes; ++l) {
      take(lo[l]);
      take(hi[l]);
    }
    for (; j < nr; ++j) take(partial(j));
    const float qn = norm2(&q[i * kDescriptorDim]);
    const float nearest = std::max(0.0f, d0 + qn);
    const float second = std::max(0.0f, d1 + qn);
    // Which reference descriptor is nearest: the first at the smallest
    // value, as the scan that tracked ids found. Only the caller's ratio
    // test needs it, and most rows fail that test, so it is looked up only
    // for rows that pass it.
    if (nearest < ratio2 * second) {
      for (std::size_t k = 0; k < nr; ++k) {
        if (partial(k) == d0) {
          ids[i] = static_cast<std::int64_t>(k);
          break;
        }
      }
    }
  }
  return ids;
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

  const std::size_t nq = query.keypoints.size();
  // Lowe's ratio on distances is the squared ratio on squared distances.
  const float ratio2 = options.ratio * options.ratio;
  const std::vector<std::int64_t> ids =
      NearestPassingRatio(query, reference, ratio2);

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
