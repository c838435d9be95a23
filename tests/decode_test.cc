#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vips/vips8>

#include "bad_inputs.h"
#include "spoor/image.h"
#include "test_util.h"

namespace spoor {
namespace {

using testing::FixturePath;
using testing::ReadFile;
using testing::VipsSave;

absl::Status DecodeFixture(const std::string& name) {
  return DecodeImageFile(FixturePath(name), DecodeOptions{}).status();
}

void ExpectError(const absl::Status& s, absl::StatusCode code,
                 const std::string& reason, const std::string& name) {
  EXPECT_EQ(s.code(), code) << s;
  EXPECT_NE(s.message().find(reason), std::string::npos) << s;
  EXPECT_NE(s.message().find(name), std::string::npos) << s;
}

TEST(DecodeBadInput, EmptyFileIsInvalidArgument) {
  ExpectError(DecodeFixture("empty.jpg"), absl::StatusCode::kInvalidArgument,
              "empty input", "empty.jpg");
}

TEST(DecodeBadInput, TruncatedJpegIsRefusedNotPadded) {
  ExpectError(DecodeFixture("truncated.jpg"),
              absl::StatusCode::kInvalidArgument, "cannot decode jpeg",
              "truncated.jpg");
}

TEST(DecodeBadInput, TruncatedPngIsRefused) {
  ExpectError(DecodeFixture("truncated.png"),
              absl::StatusCode::kInvalidArgument, "cannot decode png",
              "truncated.png");
}

TEST(DecodeBadInput, TextIsNotAnImage) {
  ExpectError(DecodeFixture("not_an_image.txt"),
              absl::StatusCode::kInvalidArgument, "not a recognised image",
              "not_an_image.txt");
}

TEST(DecodeBadInput, SvgIsRefusedBecauseItCanReachOutside) {
  ExpectError(DecodeFixture("image.svg"), absl::StatusCode::kInvalidArgument,
              "unsupported image format 'svg'", "image.svg");
}

TEST(DecodeBadInput, PdfIsRefused) {
  ExpectError(DecodeFixture("document.pdf"), absl::StatusCode::kInvalidArgument,
              "unsupported image format 'pdf'", "document.pdf");
}

TEST(DecodeBadInput, DecompressionBombIsRefusedFromItsHeader) {
  // 74 bytes declaring 30000x30000: refused on the side limit...
  ExpectError(DecodeFixture("bomb_30000x30000.png"),
              absl::StatusCode::kInvalidArgument, "30000x30000",
              "bomb_30000x30000.png");
  // ...and on the pixel limit when the side limit would allow it.
  DecodeOptions options;
  options.max_dimension = 40000;
  auto s = DecodeImageFile(FixturePath("bomb_30000x30000.png"), options);
  ExpectError(s.status(), absl::StatusCode::kInvalidArgument,
              "over the limit of 100000000", "bomb");
}

TEST(DecodeBadInput, MissingFileIsNotFound) {
  auto s = DecodeImageFile("/nonexistent/photo.jpg", DecodeOptions{});
  ExpectError(s.status(), absl::StatusCode::kNotFound, "cannot open",
              "/nonexistent/photo.jpg");
}

// The whole bad-input matrix (tests/bad_inputs.cc) through the one decoding
// path: each file is refused with its code and reason, named in the message,
// or decodes to a usable picture.
TEST(DecodeBadInput, EveryFileOfTheMatrixGetsItsAnswer) {
  auto inputs = testing::BadInputs();
  ASSERT_GE(inputs.size(), 20u);
  for (const auto& in : inputs) {
    SCOPED_TRACE(in.name);
    auto image = DecodeImage(in.bytes, DecodeOptions{}, in.name);
    if (in.code == absl::StatusCode::kOk) {
      ASSERT_OK(image);
      EXPECT_GT(image->width, 0);
      EXPECT_EQ(image->bgr.size(),
                static_cast<size_t>(image->width) * image->height * 3);
    } else {
      ExpectError(image.status(), in.code, in.reason, in.name);
      // A reason, not a dangling "cannot decode png: ".
      absl::string_view m = image.status().message();
      ASSERT_FALSE(m.empty());
      EXPECT_NE(m.back(), ' ') << m;
      EXPECT_NE(m.back(), ':') << m;
    }
  }
}

TEST(DecodeLimits, EncodedBytesLimit) {
  DecodeOptions options;
  options.max_bytes = 1000;
  auto s = DecodeImageFile(testing::kOpenCvData + "/baboon.jpg", options);
  ExpectError(s.status(), absl::StatusCode::kResourceExhausted,
              "exceeds the limit of 1000 bytes", "baboon.jpg");
  auto bytes = ReadFile(testing::kOpenCvData + "/baboon.jpg");
  auto t = DecodeImage(bytes, options, "upload");
  ExpectError(t.status(), absl::StatusCode::kResourceExhausted,
              "exceeds the limit", "upload");
}

TEST(DecodeLimits, PixelAndSideLimits) {
  auto bytes = ReadFile(testing::kOpenCvData + "/baboon.jpg");  // 512x512
  DecodeOptions options;
  options.max_pixels = 512 * 511;
  EXPECT_EQ(DecodeImage(bytes, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options = DecodeOptions{};
  options.max_dimension = 511;
  EXPECT_EQ(DecodeImage(bytes, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.max_dimension = 512;
  EXPECT_OK(DecodeImage(bytes, options));
}

TEST(Decode, ShrinksOnLoadAndKeepsOriginalSize) {
  cv::Mat big(1000, 2000, CV_8UC3, cv::Scalar(10, 120, 230));
  auto bytes = testing::EncodeJpeg(big, 95);
  DecodeOptions options;
  options.max_side = 500;
  auto image = DecodeImage(bytes, options);
  ASSERT_OK(image);
  EXPECT_EQ(image->width, 500);
  EXPECT_EQ(image->height, 250);
  EXPECT_EQ(image->original_width, 2000);
  EXPECT_EQ(image->original_height, 1000);
  EXPECT_EQ(image->format, "jpeg");
  EXPECT_DOUBLE_EQ(image->scale_to_original(), 4.0);
  // BGR order preserved: blue 10, green 120, red 230 (JPEG error allowed).
  EXPECT_NEAR(image->bgr[0], 10, 6);
  EXPECT_NEAR(image->bgr[1], 120, 6);
  EXPECT_NEAR(image->bgr[2], 230, 6);
}

TEST(Decode, SmallImagesAreNotUpscaled) {
  cv::Mat small(40, 60, CV_8UC3, cv::Scalar(0, 0, 0));
  auto image = DecodeImage(testing::EncodePng(small), DecodeOptions{});
  ASSERT_OK(image);
  EXPECT_EQ(image->width, 60);
  EXPECT_EQ(image->height, 40);
}

TEST(Decode, AlphaIsFlattenedOntoWhite) {
  cv::Mat rgba(20, 20, CV_8UC4, cv::Scalar(0, 0, 0, 0));  // fully transparent
  rgba(cv::Rect(0, 0, 10, 20))
      .setTo(cv::Scalar(255, 0, 0, 255));  // opaque blue
  auto image = DecodeImage(testing::EncodePng(rgba), DecodeOptions{});
  ASSERT_OK(image);
  const auto& p = image->bgr;
  size_t right = (5 * 20 + 15) * 3, left = (5 * 20 + 2) * 3;
  EXPECT_EQ(p[right], 255);
  EXPECT_EQ(p[right + 1], 255);
  EXPECT_EQ(p[right + 2], 255);
  EXPECT_EQ(p[left], 255);
  EXPECT_EQ(p[left + 1], 0);
  EXPECT_EQ(p[left + 2], 0);
}

TEST(Decode, GreyBecomesThreeEqualChannels) {
  cv::Mat grey(16, 16, CV_8UC1, cv::Scalar(77));
  auto image = DecodeImage(testing::EncodePng(grey), DecodeOptions{});
  ASSERT_OK(image);
  ASSERT_EQ(image->bgr.size(), 16u * 16 * 3);
  EXPECT_EQ(image->bgr[0], 77);
  EXPECT_EQ(image->bgr[1], 77);
  EXPECT_EQ(image->bgr[2], 77);
}

TEST(Decode, SixteenBitIsNormalisedToEightBit) {
  cv::Mat deep(16, 16, CV_16UC3, cv::Scalar(0, 32896, 65535));
  auto image = DecodeImage(testing::EncodePng(deep), DecodeOptions{});
  ASSERT_OK(image);
  EXPECT_EQ(image->bgr[0], 0);
  EXPECT_NEAR(image->bgr[1], 128, 1);
  EXPECT_EQ(image->bgr[2], 255);
}

vips::VImage RedLeftHalf(int width, int height) {
  // Left half red, right half blue; sRGB uchar, built from libvips operations
  // so no caller-owned memory is involved.
  vips::VImage x = vips::VImage::xyz(width, height)[0];
  vips::VImage base = vips::VImage::black(width, height);
  vips::VImage red = base.new_from_image(std::vector<double>{220, 10, 10});
  vips::VImage blue = base.new_from_image(std::vector<double>{10, 10, 220});
  return (x < width / 2)
      .ifthenelse(red, blue)
      .cast(VIPS_FORMAT_UCHAR)
      .copy(vips::VImage::option()->set("interpretation",
                                        VIPS_INTERPRETATION_sRGB))
      .copy_memory();
}

TEST(Decode, ExifOrientationIsApplied) {
  (void)SupportedFormats();  // initialises libvips
  vips::VImage img = RedLeftHalf(80, 40).copy();
  img.set(VIPS_META_ORIENTATION, 6);  // display rotated 90 degrees clockwise
  auto image = DecodeImage(VipsSave(img, ".jpg"), DecodeOptions{});
  ASSERT_OK(image);
  EXPECT_EQ(image->width, 40);
  EXPECT_EQ(image->height, 80);
  EXPECT_EQ(image->original_width, 40);
  EXPECT_EQ(image->original_height, 80);
  // Rotating clockwise puts the red (left) half on top.
  const auto& p = image->bgr;
  size_t top = (5 * 40 + 20) * 3, bottom = (75 * 40 + 20) * 3;
  EXPECT_GT(p[top + 2], 150);     // red
  EXPECT_GT(p[bottom + 0], 150);  // blue
}

TEST(Decode, CmykIsConvertedToRgb) {
  (void)SupportedFormats();
  vips::VImage cmyk = RedLeftHalf(64, 32).colourspace(VIPS_INTERPRETATION_CMYK);
  ASSERT_EQ(cmyk.bands(), 4);
  auto image = DecodeImage(VipsSave(cmyk, ".jpg"), DecodeOptions{});
  ASSERT_OK(image);
  const auto& p = image->bgr;
  size_t left = (16 * 64 + 8) * 3;
  EXPECT_GT(p[left + 2], 150);  // still red
  EXPECT_LT(p[left + 0], 100);
}

TEST(Decode, EveryAdvertisedFormatDecodes) {
  (void)SupportedFormats();
  vips::VImage img = RedLeftHalf(64, 32);
  for (const std::string& format : SupportedFormats()) {
    if (format == "heif") continue;  // Debian's libheif may lack an encoder
    std::string suffix = format == "jpeg" ? ".jpg" : "." + format;
    auto image = DecodeImage(VipsSave(img, suffix), DecodeOptions{}, format);
    ASSERT_OK(image);
    EXPECT_EQ(image->format, format);
    EXPECT_EQ(image->width, 64);
    EXPECT_GT(image->bgr[(16 * 64 + 8) * 3 + 2], 150) << format;
  }
}

TEST(Decode, GifGivesItsFirstFrame) {
  (void)SupportedFormats();
  vips::VImage first = RedLeftHalf(32, 32);
  vips::VImage second = first.flip(VIPS_DIRECTION_HORIZONTAL);
  vips::VImage strip = first.join(second, VIPS_DIRECTION_VERTICAL);
  strip.set("page-height", 32);
  auto image = DecodeImage(VipsSave(strip, ".gif"), DecodeOptions{});
  ASSERT_OK(image);
  EXPECT_EQ(image->height, 32);
  EXPECT_GT(image->bgr[(16 * 32 + 4) * 3 + 2], 150);  // left is red: frame 1
}

TEST(Decode, SupportsTheCommonWebFormats) {
  auto formats = SupportedFormats();
  for (const char* f : {"jpeg", "png", "webp", "gif", "tiff"}) {
    EXPECT_NE(std::find(formats.begin(), formats.end(), f), formats.end()) << f;
  }
}

}  // namespace
}  // namespace spoor
