// A 256-bit DCT perceptual hash: the fast path for exact and near-exact
// copies (recompressed, rescaled, lightly colour-shifted).
//
// The image is reduced to 64x64 grey, transformed by a 2-D DCT, and the 16x16
// lowest-frequency coefficients are compared with their median: one bit each.
// Similar images differ in few bits (Hamming distance). Mirrored and rotated
// copies are caught by hashing the eight dihedral variants of the query.
//
// Thread safety: pure functions.
#ifndef SPOOR_PERCEPTUAL_HASH_H_
#define SPOOR_PERCEPTUAL_HASH_H_

#include <array>
#include <cstdint>
#include <string>

namespace spoor {

struct Image;

inline constexpr int kHashBits = 256;
using Hash256 = std::array<std::uint8_t, kHashBits / 8>;

// The eight ways to flip and rotate a picture by multiples of 90 degrees.
// kMirror... variants flip left-right first, then rotate clockwise.
enum class Orientation : std::uint8_t {
  kIdentity = 0,
  kRotate90,
  kRotate180,
  kRotate270,
  kMirror,
  kMirrorRotate90,
  kMirrorRotate180,
  kMirrorRotate270,
};
inline constexpr int kOrientationCount = 8;

bool IsMirrored(Orientation o);
int RotationDegrees(Orientation o);  ///< clockwise: 0, 90, 180 or 270

Hash256 ComputeHash(const Image& image);

// Below this spread of grey levels (0-255) in the hash's 64x64 reduction, a
// picture is one flat colour up to noise: every such picture hashes alike, so
// its hash says nothing about which picture it is.
inline constexpr double kMinHashContrast = 2.0;

// The standard deviation of the grey levels the hash is computed from; the
// matcher leaves the hash tier out for a query below kMinHashContrast, so a
// blank ad never "matches" a blank reference.
double HashContrast(const Image& image);

// Hash of the image as it would look after applying each orientation; index
// i holds Orientation(i). Element 0 equals ComputeHash(image).
std::array<Hash256, kOrientationCount> ComputeHashVariants(const Image& image);

int HammingDistance(const Hash256& a, const Hash256& b);

std::string HashToHex(const Hash256& hash);

}  // namespace spoor

#endif  // SPOOR_PERCEPTUAL_HASH_H_
