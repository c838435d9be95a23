#include "spoor/perceptual_hash.h"

#include <algorithm>
#include <bit>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "features/image_view.h"
#include "spoor/image.h"

namespace spoor {
namespace {

constexpr int kReduced = 64;
constexpr int kBlock = 16;

Hash256 HashOfReduced(const cv::Mat& reduced) {
  cv::Mat coefficients;
  cv::dct(reduced, coefficients);
  std::array<float, kBlock * kBlock> low{};
  for (int y = 0; y < kBlock; ++y)
    for (int x = 0; x < kBlock; ++x)
      low[y * kBlock + x] = coefficients.at<float>(y, x);
  // The DC term carries overall brightness, not structure; leaving it out of
  // the median keeps one very large value from biasing the threshold.
  std::array<float, kBlock * kBlock - 1> sorted;
  std::copy(low.begin() + 1, low.end(), sorted.begin());
  std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2,
                   sorted.end());
  float median = sorted[sorted.size() / 2];
  Hash256 hash{};
  for (int i = 0; i < kBlock * kBlock; ++i) {
    if (low[i] > median)
      hash[i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
  }
  return hash;
}

cv::Mat Reduce(const Image& image) {
  cv::Mat grey;
  cv::cvtColor(AsMat(image), grey, cv::COLOR_BGR2GRAY);
  cv::Mat small;
  cv::resize(grey, small, cv::Size(kReduced, kReduced), 0, 0, cv::INTER_AREA);
  cv::Mat reduced;
  small.convertTo(reduced, CV_32F);
  return reduced;
}

cv::Mat Orient(const cv::Mat& m, Orientation o) {
  cv::Mat base = m;
  if (IsMirrored(o)) cv::flip(m, base, 1);
  cv::Mat out;
  switch (RotationDegrees(o)) {
    case 90:
      cv::rotate(base, out, cv::ROTATE_90_CLOCKWISE);
      return out;
    case 180:
      cv::rotate(base, out, cv::ROTATE_180);
      return out;
    case 270:
      cv::rotate(base, out, cv::ROTATE_90_COUNTERCLOCKWISE);
      return out;
    default:
      return base.clone();
  }
}

}  // namespace

bool IsMirrored(Orientation o) {
  return static_cast<int>(o) >= static_cast<int>(Orientation::kMirror);
}

int RotationDegrees(Orientation o) { return (static_cast<int>(o) % 4) * 90; }

Hash256 ComputeHash(const Image& image) { return HashOfReduced(Reduce(image)); }

double HashContrast(const Image& image) {
  cv::Scalar mean, deviation;
  cv::meanStdDev(Reduce(image), mean, deviation);
  return deviation[0];
}

std::array<Hash256, kOrientationCount> ComputeHashVariants(const Image& image) {
  cv::Mat reduced = Reduce(image);
  std::array<Hash256, kOrientationCount> variants;
  for (int i = 0; i < kOrientationCount; ++i) {
    variants[i] = HashOfReduced(Orient(reduced, static_cast<Orientation>(i)));
  }
  return variants;
}

int HammingDistance(const Hash256& a, const Hash256& b) {
  int distance = 0;
  for (size_t i = 0; i < a.size(); ++i)
    distance += std::popcount<unsigned>(a[i] ^ b[i]);
  return distance;
}

std::string HashToHex(const Hash256& hash) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(hash.size() * 2);
  for (std::uint8_t byte : hash) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 15]);
  }
  return hex;
}

}  // namespace spoor
