// Decoded pixels and the one decode path every part of Spoor uses.
//
// DecodeImage is the only way bytes become pixels: the indexer, the service,
// the tests and the benchmarks all call it, so query descriptors never drift
// from the indexed ones. It runs on libvips: the header is read and checked
// against the limits before any pixel is decoded, shrink-on-load goes straight
// to the working resolution, EXIF orientation is applied, alpha is flattened
// onto white, and grey, CMYK and 16-bit images are normalised to 8-bit sRGB.
//
// Thread safety: DecodeImage may be called from many threads at once.
#ifndef SPOOR_IMAGE_H_
#define SPOOR_IMAGE_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace spoor {

// Limits and target size for decoding. Every limit is checked on the header,
// before decoding, so a decompression bomb is refused at the cost of a few
// bytes of parsing.
struct DecodeOptions {
  // Longest side of the decoded image, in pixels; larger images are shrunk
  // on load, smaller ones are left as they are. Default: 1024.
  int max_side = 1024;
  // Most encoded bytes accepted. Default: 32 MiB.
  std::int64_t max_bytes = 32LL << 20;
  // Most pixels (width * height) the header may declare. Default: 100 Mpx.
  std::int64_t max_pixels = 100'000'000;
  // Most width or height the header may declare, in pixels. Default: 20000.
  int max_dimension = 20000;
};

// An 8-bit, 3-channel BGR image (OpenCV's channel order), rows packed.
struct Image {
  int width = 0;   ///< width of `bgr` in pixels
  int height = 0;  ///< height of `bgr` in pixels
  // Size of the encoded image after EXIF orientation, before shrinking.
  int original_width = 0;
  int original_height = 0;
  std::string format;  ///< "jpeg", "png", "webp", "gif", "tiff", "heif"
  // Pixel (x, y) channel c is bgr[(y * width + x) * 3 + c].
  std::vector<std::uint8_t> bgr;

  // Factor from decoded to original coordinates (>= 1 when shrunk).
  double scale_to_original() const {
    return width > 0 ? static_cast<double>(original_width) / width : 1.0;
  }
};

// A rectangle of an image, in original-image pixels.
struct Box {
  int x = 0, y = 0, width = 0, height = 0;
  bool operator==(const Box&) const = default;
};

// Decodes `bytes`. `name` only labels error messages (a file path, say).
// Errors: InvalidArgument for empty, truncated, non-image or unsupported
// input (SVG, PDF and other formats that can reach outside are refused) and
// for images over the pixel, width or height limits; ResourceExhausted when
// the encoded bytes exceed max_bytes.
absl::StatusOr<Image> DecodeImage(std::span<const std::uint8_t> bytes,
                                  const DecodeOptions& options,
                                  const std::string& name = "image");

// Reads `path` (refusing files larger than options.max_bytes before reading)
// and decodes it. NotFound when the file cannot be opened.
absl::StatusOr<Image> DecodeImageFile(const std::string& path,
                                      const DecodeOptions& options);

// Reads a whole file into memory, refusing files larger than `max_bytes`.
absl::StatusOr<std::vector<std::uint8_t>> ReadFileBytes(const std::string& path,
                                                        std::int64_t max_bytes);

// Formats libvips can decode on this machine, e.g. {"jpeg", "png", ...}.
std::vector<std::string> SupportedFormats();

}  // namespace spoor

#endif  // SPOOR_IMAGE_H_
