#include "features/feature_codec.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <opencv2/core.hpp>

#include "absl/strings/str_cat.h"

namespace spoor {
namespace {

#include "features/descriptor_basis.inc"

static_assert(sizeof(kBasisAxes) ==
              sizeof(float) * kPackedComponents * kDescriptorDim);

// Keypoint sizes: 24 steps an octave from 0.5 px (byte 0) to ~800 px.
constexpr double kSizeStepsPerOctave = 24;

std::uint16_t Fraction16(float v, int extent) {
  if (extent <= 0) return 0;
  double f = std::clamp(static_cast<double>(v) / extent, 0.0, 1.0);
  return static_cast<std::uint16_t>(std::lround(f * 65535));
}

// Byte -> 4-bit step and back, as tables: packing runs once per stored
// feature bin, unpacking once per bin read back.
struct NibbleTables {
  std::array<std::uint8_t, 256> to_nibble{};
  std::array<std::uint8_t, 16> from_nibble{};
  NibbleTables() {
    for (int b = 0; b < 256; ++b) {
      double rootsift = b / static_cast<double>(kDescriptorScale);
      to_nibble[b] = static_cast<std::uint8_t>(
          std::min<long>(15, std::lround(rootsift * kNibbleScale)));
    }
    for (int n = 0; n < 16; ++n) {
      from_nibble[n] = static_cast<std::uint8_t>(
          std::lround(n / kNibbleScale * kDescriptorScale));
    }
  }
};

const NibbleTables& Tables() {
  static const NibbleTables tables;
  return tables;
}

// Packing 3's 4-bit code k of axis j stands for (k - 7.5) steps of 5/16
// sigma from the mean: +-2.5 sigma in 16 equal steps (fewer than 1.3 % of
// values fall outside and are clipped to the end steps).
constexpr float kStepsPerSigma = 16.0f / 5.0f;

// The axes as a matrix for cv::gemm (kPackedComponents x 128, RootSIFT
// units; read only), and each axis's 4-bit step.
struct Basis {
  cv::Mat axes;
  std::array<float, kPackedComponents> step{};
  Basis()
      : axes(kPackedComponents, kDescriptorDim, CV_32F,
             const_cast<float*>(&kBasisAxes[0][0])) {
    for (int j = 0; j < kPackedComponents; ++j)
      step[j] = kBasisSigma[j] / kStepsPerSigma;
  }
};

const Basis& TheBasis() {
  static const Basis basis;
  return basis;
}

std::vector<std::uint8_t> PackOnBasis(const LocalFeatures& features) {
  const Basis& b = TheBasis();
  const int n = features.size();
  std::vector<std::uint8_t> out(static_cast<std::size_t>(n) *
                                kPackedComponents / 2);
  if (n == 0) return out;
  cv::Mat x(n, kDescriptorDim, CV_32F);
  for (int i = 0; i < n; ++i) {
    float* row = x.ptr<float>(i);
    const std::uint8_t* d = &features.descriptors[i * kDescriptorDim];
    for (int c = 0; c < kDescriptorDim; ++c)
      row[c] = d[c] / kDescriptorScale - kBasisMean[c];
  }
  cv::Mat z;
  cv::gemm(x, b.axes, 1.0, cv::noArray(), 0.0, z, cv::GEMM_2_T);
  for (int i = 0; i < n; ++i) {
    const float* row = z.ptr<float>(i);
    std::uint8_t* o = &out[static_cast<std::size_t>(i) * kPackedComponents / 2];
    for (int j = 0; j < kPackedComponents; ++j) {
      long code = std::lround(std::floor(row[j] / b.step[j] + 8.0f));
      auto nibble = static_cast<std::uint8_t>(std::clamp(code, 0L, 15L));
      o[j / 2] |= j % 2 == 0 ? nibble : static_cast<std::uint8_t>(nibble << 4);
    }
  }
  return out;
}

void UnpackOnBasis(std::span<const std::uint8_t> packed, LocalFeatures& out) {
  const Basis& b = TheBasis();
  const int n = static_cast<int>(packed.size() / (kPackedComponents / 2));
  out.descriptors.assign(static_cast<std::size_t>(n) * kDescriptorDim, 0);
  if (n == 0) return;
  cv::Mat z(n, kPackedComponents, CV_32F);
  for (int i = 0; i < n; ++i) {
    float* row = z.ptr<float>(i);
    const std::uint8_t* p =
        &packed[static_cast<std::size_t>(i) * kPackedComponents / 2];
    for (int j = 0; j < kPackedComponents; ++j) {
      int code = j % 2 == 0 ? p[j / 2] & 15 : p[j / 2] >> 4;
      row[j] = (code - 7.5f) * b.step[j];
    }
  }
  cv::Mat x;
  cv::gemm(z, b.axes, 1.0, cv::noArray(), 0.0, x);
  for (int i = 0; i < n; ++i) {
    const float* row = x.ptr<float>(i);
    std::uint8_t* d =
        &out.descriptors[static_cast<std::size_t>(i) * kDescriptorDim];
    for (int c = 0; c < kDescriptorDim; ++c) {
      long v = std::lround((row[c] + kBasisMean[c]) * kDescriptorScale);
      d[c] = static_cast<std::uint8_t>(std::clamp(v, 0L, 255L));
    }
  }
}

}  // namespace

std::vector<std::uint8_t> PackKeypoints(const LocalFeatures& features) {
  std::vector<std::uint8_t> out;
  out.reserve(features.keypoints.size() * kPackedKeypointBytes);
  for (const Keypoint& k : features.keypoints) {
    std::uint16_t x = Fraction16(k.x, features.width);
    std::uint16_t y = Fraction16(k.y, features.height);
    double log_size = std::log2(std::max(k.size, 0.5f)) + 1;
    auto size = static_cast<std::uint8_t>(
        std::clamp<long>(std::lround(log_size * kSizeStepsPerOctave), 0, 255));
    auto angle =
        static_cast<std::uint8_t>(std::lround(k.angle / 360.0 * 256) & 255);
    out.insert(out.end(), {static_cast<std::uint8_t>(x & 255),
                           static_cast<std::uint8_t>(x >> 8),
                           static_cast<std::uint8_t>(y & 255),
                           static_cast<std::uint8_t>(y >> 8), size, angle});
  }
  return out;
}

int PackedDescriptorBytes(int packing) {
  switch (packing) {
    case kNibblePacking:
      return kDescriptorDim / 2;
    case kBasisPacking:
      return kPackedComponents / 2;
    default:
      return 0;
  }
}

std::vector<std::uint8_t> PackDescriptors(const LocalFeatures& features,
                                          int packing) {
  if (packing == kBasisPacking) return PackOnBasis(features);
  const auto& to = Tables().to_nibble;
  std::vector<std::uint8_t> out(features.descriptors.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] =
        static_cast<std::uint8_t>(to[features.descriptors[2 * i]] |
                                  (to[features.descriptors[2 * i + 1]] << 4));
  }
  return out;
}

absl::Status UnpackFeatures(std::span<const std::uint8_t> keypoints,
                            std::span<const std::uint8_t> descriptors,
                            int packing, LocalFeatures& out) {
  const int bytes = PackedDescriptorBytes(packing);
  if (bytes == 0) {
    return absl::DataLossError(
        absl::StrCat("stored features have packing ", packing,
                     ", which this build does not know (it reads ",
                     kNibblePacking, " and ", kBasisPacking, ")"));
  }
  if (keypoints.size() % kPackedKeypointBytes != 0 ||
      descriptors.size() != keypoints.size() / kPackedKeypointBytes * bytes) {
    return absl::DataLossError(
        absl::StrCat("stored features are malformed: ", keypoints.size(),
                     " keypoint bytes and ", descriptors.size(),
                     " descriptor bytes (want ", kPackedKeypointBytes, " and ",
                     bytes, " a feature, packing ", packing, ")"));
  }
  std::size_t n = keypoints.size() / kPackedKeypointBytes;
  out.keypoints.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* p = &keypoints[i * kPackedKeypointBytes];
    Keypoint& k = out.keypoints[i];
    k.x = static_cast<float>((p[0] | (p[1] << 8)) / 65535.0 * out.width);
    k.y = static_cast<float>((p[2] | (p[3] << 8)) / 65535.0 * out.height);
    k.size = static_cast<float>(std::exp2(p[4] / kSizeStepsPerOctave - 1));
    k.angle = static_cast<float>(p[5] * 360.0 / 256);
  }
  if (packing == kBasisPacking) {
    UnpackOnBasis(descriptors, out);
    return absl::OkStatus();
  }
  const auto& from = Tables().from_nibble;
  out.descriptors.resize(descriptors.size() * 2);
  for (std::size_t i = 0; i < descriptors.size(); ++i) {
    out.descriptors[2 * i] = from[descriptors[i] & 15];
    out.descriptors[2 * i + 1] = from[descriptors[i] >> 4];
  }
  return absl::OkStatus();
}

void QuantiseForStorage(LocalFeatures& features, int packing) {
  std::vector<std::uint8_t> k = PackKeypoints(features);
  std::vector<std::uint8_t> d = PackDescriptors(features, packing);
  // Sizes agree by construction, so this cannot fail.
  (void)UnpackFeatures(k, d, packing, features);
}

}  // namespace spoor
