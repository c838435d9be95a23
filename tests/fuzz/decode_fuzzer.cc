// Fuzz target: untrusted bytes through the one decode path, then the
// perceptual hash and the local features, as every ad image goes.
//
// Checks, beyond "no crash": a refusal is InvalidArgument or
// ResourceExhausted with a message; a decoded image has the size it claims,
// within the limits; every keypoint lies inside the image it came from.
#include <cstdint>
#include <span>

#include "fuzz_util.h"
#include "spoor/image.h"
#include "spoor/local_features.h"
#include "spoor/perceptual_hash.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using spoor::fuzz::Fail;
  spoor::DecodeOptions options;
  options.max_side = 256;
  auto image = spoor::DecodeImage(std::span(data, size), options, "fuzz");
  if (!image.ok()) {
    auto code = image.status().code();
    if (code != absl::StatusCode::kInvalidArgument &&
        code != absl::StatusCode::kResourceExhausted) {
      Fail("unexpected refusal: " + image.status().ToString());
    }
    if (image.status().message().empty()) Fail("refusal without a message");
    return 0;
  }
  if (image->width < 1 || image->height < 1 ||
      std::max(image->width, image->height) > options.max_side ||
      image->bgr.size() !=
          static_cast<std::size_t>(image->width) * image->height * 3) {
    Fail("decoded image has an impossible size");
  }
  (void)spoor::ComputeHashVariants(*image);
  (void)spoor::HashContrast(*image);
  spoor::FeatureOptions features;
  features.max_features = 200;
  features.min_side = 128;
  spoor::LocalFeatures f = spoor::ExtractLocalFeatures(*image, features);
  if (f.descriptors.size() !=
      static_cast<std::size_t>(f.size()) * spoor::kDescriptorDim) {
    Fail("descriptor count differs from keypoint count");
  }
  for (const spoor::Keypoint& k : f.keypoints) {
    if (!(k.x >= 0 && k.x <= f.width && k.y >= 0 && k.y <= f.height))
      Fail("keypoint outside its image");
  }
  spoor::LocalFeatures mirrored = spoor::MirrorFeatures(f);
  if (mirrored.size() != f.size()) Fail("mirror changed the keypoint count");
  return 0;
}
