#include "features/feature_codec.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace spoor {
namespace {

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

std::vector<std::uint8_t> PackDescriptors(const LocalFeatures& features) {
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
                            LocalFeatures& out) {
  if (keypoints.size() % kPackedKeypointBytes != 0 ||
      descriptors.size() !=
          keypoints.size() / kPackedKeypointBytes * kPackedDescriptorBytes) {
    return absl::DataLossError(absl::StrCat(
        "stored features are malformed: ", keypoints.size(),
        " keypoint bytes and ", descriptors.size(), " descriptor bytes (want ",
        kPackedKeypointBytes, " and ", kPackedDescriptorBytes, " a feature)"));
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
  const auto& from = Tables().from_nibble;
  out.descriptors.resize(descriptors.size() * 2);
  for (std::size_t i = 0; i < descriptors.size(); ++i) {
    out.descriptors[2 * i] = from[descriptors[i] & 15];
    out.descriptors[2 * i + 1] = from[descriptors[i] >> 4];
  }
  return absl::OkStatus();
}

void QuantiseForStorage(LocalFeatures& features) {
  std::vector<std::uint8_t> k = PackKeypoints(features);
  std::vector<std::uint8_t> d = PackDescriptors(features);
  // Sizes agree by construction, so this cannot fail.
  (void)UnpackFeatures(k, d, features);
}

}  // namespace spoor
