#include "spoor/local_features.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <opencv2/features2d.hpp>
#include <opencv2/imgproc.hpp>

#include "features/image_view.h"
#include "spoor/image.h"

namespace spoor {

LocalFeatures ExtractLocalFeatures(const Image& image,
                                   const FeatureOptions& options) {
  LocalFeatures out;
  out.width = image.width;
  out.height = image.height;
  if (image.width == 0 || image.height == 0) return out;

  cv::Mat grey;
  cv::cvtColor(AsMat(image), grey, cv::COLOR_BGR2GRAY);
  double upscale = 1.0;
  int longest = std::max(image.width, image.height);
  if (longest < options.min_side) {
    upscale = static_cast<double>(options.min_side) / longest;
    cv::resize(grey, grey, cv::Size(), upscale, upscale, cv::INTER_CUBIC);
  }

  int max_features = std::clamp(options.max_features, 1, 4096);
  // OpenCV's SIFT always doubles its input before the first octave.
  int sift_side = std::max(grey.cols, grey.rows);
  int octave_side = std::max(options.octave_side, 64);
  if (2 * sift_side > octave_side) {
    double shrink = octave_side / (2.0 * sift_side);
    cv::resize(grey, grey, cv::Size(), shrink, shrink, cv::INTER_AREA);
    upscale *= shrink;
  }
  std::vector<cv::KeyPoint> keypoints;
  cv::Mat descriptors;
  // SIFT objects hold no state between calls beyond their settings, but
  // creating one is cheap next to detection, so each call makes its own.
  const double threshold = std::clamp(options.contrast_threshold, 0.001, 1.0);
  const int floor = std::clamp(options.min_features, 0, max_features);
  std::vector<int> kept;  // rows of `descriptors`, in the order kept
  if (floor == 0 || threshold / 4 < 0.001) {
    cv::SIFT::create(max_features, 3, threshold)
        ->detectAndCompute(grey, cv::noArray(), keypoints, descriptors);
    kept.resize(keypoints.size());
    std::iota(kept.begin(), kept.end(), 0);
  } else {
    // The floor: an image with fewer than `floor` keypoints at the
    // threshold keeps the strongest `floor` found at a quarter of it; a
    // textured image keeps exactly what the threshold gives. One pass at
    // the quarter threshold gives both answers, so a smooth image is not
    // described twice (its pyramid built once, not twice):
    // OpenCV keeps a keypoint when its interpolated contrast (`response`)
    // times the layers per octave (3) reaches the threshold, and the
    // strongest max_features at the quarter threshold include every one
    // that reaches the full threshold, up to max_features of them. The
    // extra detection at the lower threshold costs a textured photo a few
    // percent (docs/BENCHMARKS.md, "Engine v2, fifth step").
    cv::SIFT::create(max_features, 3, threshold / 4)
        ->detectAndCompute(grey, cv::noArray(), keypoints, descriptors);
    for (int i = 0; i < static_cast<int>(keypoints.size()); ++i)
      if (keypoints[i].response * 3 >= threshold) kept.push_back(i);
    if (static_cast<int>(kept.size()) < floor) {
      kept.resize(keypoints.size());
      std::iota(kept.begin(), kept.end(), 0);
      auto stronger = [&](int a, int b) {
        return keypoints[a].response > keypoints[b].response;
      };
      if (static_cast<int>(kept.size()) > floor) {
        std::nth_element(kept.begin(), kept.begin() + floor, kept.end(),
                         stronger);
        kept.resize(floor);
      }
    }
    // In OpenCV's order for a set it did not have to cut: by position,
    // then larger first (KeyPointsFilter's), so the same keypoints come
    // out in the same order however they were chosen.
    std::sort(kept.begin(), kept.end(), [&](int a, int b) {
      const cv::KeyPoint &p = keypoints[a], &q = keypoints[b];
      if (p.pt.x != q.pt.x) return p.pt.x < q.pt.x;
      if (p.pt.y != q.pt.y) return p.pt.y < q.pt.y;
      if (p.size != q.size) return p.size > q.size;
      if (p.angle != q.angle) return p.angle < q.angle;
      return a < b;
    });
  }
  // SIFT can return a few more than asked when responses tie.
  size_t n = std::min<size_t>(kept.size(), max_features);

  out.keypoints.reserve(n);
  out.descriptors.resize(n * kDescriptorDim);
  for (size_t i = 0; i < n; ++i) {
    const cv::KeyPoint& kp = keypoints[kept[i]];
    // Resizing maps pixel centres: x' + 0.5 = (x + 0.5) * upscale.
    out.keypoints.push_back(
        {static_cast<float>((kp.pt.x + 0.5) / upscale - 0.5),
         static_cast<float>((kp.pt.y + 0.5) / upscale - 0.5),
         static_cast<float>(kp.size / upscale), kp.angle});
    // RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise, then square
    // root, so Euclidean distance compares like the Hellinger kernel.
    const float* d = descriptors.ptr<float>(kept[i]);
    float l1 = 0;
    for (int j = 0; j < kDescriptorDim; ++j) l1 += std::abs(d[j]);
    l1 = std::max(l1, 1e-7f);
    for (int j = 0; j < kDescriptorDim; ++j) {
      float v = std::sqrt(std::abs(d[j]) / l1) * kDescriptorScale;
      out.descriptors[i * kDescriptorDim + j] =
          static_cast<std::uint8_t>(std::min(255.0f, std::round(v)));
    }
  }
  return out;
}

namespace {

// OpenCV lays a SIFT descriptor out as 4 x 4 spatial cells (row-major, in
// the keypoint's rotated frame) of 8 orientation bins. Mirroring the image
// reverses the frame's handedness: the rows (across the dominant
// orientation) swap ends and each gradient angle, measured from the
// dominant orientation, changes sign. kMirrorSource[k] is the original bin
// that lands in bin k.
constexpr std::array<std::uint8_t, kDescriptorDim> MirrorPermutation() {
  std::array<std::uint8_t, kDescriptorDim> p{};
  for (int row = 0; row < 4; ++row)
    for (int col = 0; col < 4; ++col)
      for (int bin = 0; bin < 8; ++bin)
        p[(row * 4 + col) * 8 + bin] = static_cast<std::uint8_t>(
            ((3 - row) * 4 + col) * 8 + (8 - bin) % 8);
  return p;
}
constexpr std::array<std::uint8_t, kDescriptorDim> kMirrorSource =
    MirrorPermutation();

}  // namespace

LocalFeatures MirrorFeatures(const LocalFeatures& features) {
  LocalFeatures out;
  out.width = features.width;
  out.height = features.height;
  out.keypoints.reserve(features.keypoints.size());
  for (const Keypoint& k : features.keypoints) {
    float angle = 180.0f - k.angle;
    if (angle < 0) angle += 360.0f;
    out.keypoints.push_back(
        {static_cast<float>(features.width) - k.x, k.y, k.size, angle});
  }
  out.descriptors.resize(features.descriptors.size());
  for (std::size_t i = 0; i + kDescriptorDim <= features.descriptors.size();
       i += kDescriptorDim) {
    for (int j = 0; j < kDescriptorDim; ++j)
      out.descriptors[i + j] = features.descriptors[i + kMirrorSource[j]];
  }
  return out;
}

std::vector<float> DescriptorsAsFloat(const LocalFeatures& features) {
  std::vector<float> out(features.descriptors.size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = features.descriptors[i] / kDescriptorScale;
  }
  return out;
}

}  // namespace spoor
