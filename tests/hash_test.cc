#include <opencv2/imgproc.hpp>

#include "features/image_view.h"
#include "spoor/image.h"
#include "spoor/perceptual_hash.h"
#include "test_util.h"

namespace spoor {
namespace {

Image Decode(const std::vector<std::uint8_t>& bytes) {
  auto image = DecodeImage(bytes, DecodeOptions{});
  EXPECT_TRUE(image.ok()) << image.status();
  return image.ok() ? *image : Image{};
}

class HashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    baboon_ = testing::LoadBgr(testing::kOpenCvData + "/baboon.jpg");
    reference_ = ComputeHash(Decode(testing::EncodePng(baboon_)));
  }
  cv::Mat baboon_;
  Hash256 reference_;
};

TEST_F(HashTest, RecompressedAndRescaledCopiesStayClose) {
  Image jpeg = Decode(testing::EncodeJpeg(baboon_, 25));
  EXPECT_LE(HammingDistance(ComputeHash(jpeg), reference_), 20);
  Image small =
      Decode(testing::EncodeJpeg(testing::Downscale(baboon_, 0.2), 70));
  EXPECT_LE(HammingDistance(ComputeHash(small), reference_), 20);
}

TEST_F(HashTest, UnrelatedPhotosAreFar) {
  for (const char* other : {"fruits.jpg", "starry_night.jpg", "building.jpg",
                            "messi5.jpg", "home.jpg"}) {
    cv::Mat m = testing::LoadBgr(testing::kOpenCvData + "/" + other);
    int d =
        HammingDistance(ComputeHash(Decode(testing::EncodePng(m))), reference_);
    EXPECT_GE(d, 80) << other;
  }
}

TEST_F(HashTest, VariantsUndoRotationsAndMirrors) {
  struct Case {
    int rotate;  // cv::RotateFlags or -1
    bool mirror;
    Orientation undo;
  };
  // The variant that brings the query back to the reference must be close.
  const Case cases[] = {
      {cv::ROTATE_90_CLOCKWISE, false, Orientation::kRotate270},
      {cv::ROTATE_180, false, Orientation::kRotate180},
      {cv::ROTATE_90_COUNTERCLOCKWISE, false, Orientation::kRotate90},
      {-1, true, Orientation::kMirror},
  };
  for (const Case& c : cases) {
    cv::Mat q = baboon_.clone();
    if (c.mirror) cv::flip(baboon_, q, 1);
    if (c.rotate >= 0) cv::rotate(baboon_, q, c.rotate);
    auto variants = ComputeHashVariants(Decode(testing::EncodeJpeg(q, 85)));
    int undo = static_cast<int>(c.undo);
    EXPECT_LE(HammingDistance(variants[undo], reference_), 20) << undo;
    EXPECT_GE(HammingDistance(variants[0], reference_), 60) << undo;
  }
}

TEST_F(HashTest, ContrastTellsFlatPicturesFromPhotosAndText) {
  // A flat colour, even recompressed or noisy, is below the floor; a photo
  // and a phone number written on white are well above it.
  cv::Mat flat(480, 640, CV_8UC3, cv::Scalar(200, 200, 200));
  EXPECT_LT(HashContrast(Decode(testing::EncodeJpeg(flat, 10))),
            kMinHashContrast);
  cv::Mat noisy(flat.size(), CV_8UC3);
  cv::randn(noisy, cv::Scalar::all(0), cv::Scalar::all(8));
  noisy += flat;
  EXPECT_LT(HashContrast(Decode(testing::EncodePng(noisy))), kMinHashContrast);
  EXPECT_GT(HashContrast(Decode(testing::EncodePng(baboon_))),
            4 * kMinHashContrast);
  cv::Mat text = flat.clone();
  cv::putText(text, "+44 7700 900123", {20, 240}, cv::FONT_HERSHEY_SIMPLEX, 1.5,
              cv::Scalar(0, 0, 0), 3);
  EXPECT_GT(HashContrast(Decode(testing::EncodePng(text))),
            4 * kMinHashContrast);
}

TEST(Orientation, NamesItsParts) {
  EXPECT_FALSE(IsMirrored(Orientation::kRotate270));
  EXPECT_TRUE(IsMirrored(Orientation::kMirrorRotate90));
  EXPECT_EQ(RotationDegrees(Orientation::kMirrorRotate180), 180);
  EXPECT_EQ(RotationDegrees(Orientation::kRotate90), 90);
}

TEST(Hash, HexAndDistance) {
  Hash256 a{}, b{};
  b[0] = 0xff;
  b[31] = 0x01;
  EXPECT_EQ(HammingDistance(a, b), 9);
  EXPECT_EQ(HashToHex(b).substr(0, 4), "ff00");
  EXPECT_EQ(HashToHex(b).size(), 64u);
}

}  // namespace
}  // namespace spoor
