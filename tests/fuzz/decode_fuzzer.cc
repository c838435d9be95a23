// Fuzz target: untrusted bytes through the one decode path, then the
// perceptual hash, the local features and the text reader, as every ad
// image goes.
//
// Checks, beyond "no crash": a refusal is InvalidArgument or
// ResourceExhausted with a message; a decoded image has the size it claims,
// within the limits; every keypoint lies inside the image it came from;
// every word read lies inside the image and inside its line, and every phone
// number found is 9 digits.
#include <cstdint>
#include <span>

#include "fuzz_util.h"
#include "spoor/image.h"
#include "spoor/local_features.h"
#include "spoor/perceptual_hash.h"
#include "spoor/text.h"

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

  spoor::TextOptions text;
  text.max_lines = 3;
  auto words = spoor::ReadText(*image, text);
  if (!words.ok()) Fail("text: " + words.status().ToString());
  auto inside = [](const spoor::Box& b, int x, int y, int w, int h) {
    return b.width > 0 && b.height > 0 && b.x >= x && b.y >= y &&
           b.x + b.width <= x + w && b.y + b.height <= y + h;
  };
  for (const spoor::TextWord& w : *words) {
    if (!inside(w.box, 0, 0, image->original_width, image->original_height) ||
        !inside(w.box, w.line.x, w.line.y, w.line.width, w.line.height))
      Fail("word '" + w.text + "' outside its image or its line");
  }
  for (const spoor::Contact& c : spoor::FindContacts(*words)) {
    if (c.kind == spoor::ContactKind::kPhone && c.value.size() != 9)
      Fail("phone number '" + c.value + "' is not 9 digits");
  }
  return 0;
}
