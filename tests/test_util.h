// Shared helpers for Spoor's tests: status assertions, the Debian-packaged
// photo folders, and image edits used to disguise references the way
// traffickers do. Edits work on pixels that came through spoor::DecodeImage.
#ifndef SPOOR_TESTS_TEST_UTIL_H_
#define SPOOR_TESTS_TEST_UTIL_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ASSERT_OK(expr)                                          \
  do {                                                           \
    const auto& spoor_s_ = (expr);                               \
    ASSERT_TRUE(::spoor::testing::StatusOf(spoor_s_).ok())       \
        << ::spoor::testing::StatusOf(spoor_s_).ToString();      \
  } while (0)
#define EXPECT_OK(expr)                                          \
  EXPECT_TRUE(::spoor::testing::StatusOf(expr).ok())             \
      << ::spoor::testing::StatusOf(expr).ToString()

namespace spoor::testing {

inline absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

inline const std::string kOpenCvData = "/usr/share/doc/opencv-doc/examples/data";
inline const std::string kStamps = "/usr/share/tuxpaint/stamps/animals";
inline const std::string kWallpapers = "/usr/share/wallpapers";

// Folder of the repository's small fixture files (tests/data).
std::string FixturePath(const std::string& name);
// The repository's reference_images/ folder.
std::string ReferenceImagesPath();

// A fresh, empty temporary folder, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Join(const std::string& name) const {
    return (std::filesystem::path(path_) / name).string();
  }

 private:
  std::string path_;
};

std::vector<std::uint8_t> ReadFile(const std::string& path);

// Pixels of a photo through spoor's decode path, at up to `max_side`.
cv::Mat LoadBgr(const std::string& path, int max_side = 4096);
// A tuxpaint stamp as BGRA through spoor's decode path is not possible (it
// flattens alpha), so stamps are read with their alpha by OpenCV: they are
// inputs to composite, never pixels that get described.
cv::Mat LoadStampBgra(const std::string& relative_path);
// A landscape wallpaper by its folder name, resized to cover `size`.
cv::Mat Wallpaper(const std::string& name, cv::Size size);

std::vector<std::uint8_t> EncodeJpeg(const cv::Mat& bgr, int quality = 90);
std::vector<std::uint8_t> EncodePng(const cv::Mat& image);

// Pastes `stamp` (BGRA) onto a copy of `background`, scaled so its longest
// side is `fraction` of the background's shorter side, centred at (cx, cy)
// given as fractions of the background size, rotated by `angle` degrees.
cv::Mat Composite(const cv::Mat& stamp, const cv::Mat& background,
                  double fraction, double cx, double cy, double angle = 0,
                  double brightness = 1.0);

// Disguises, as traffickers apply them.
cv::Mat Crop(const cv::Mat& m, double x0, double y0, double x1, double y1);
cv::Mat Rotate(const cv::Mat& m, double degrees);  // canvas grows, black fill
cv::Mat PerspectiveWarp(const cv::Mat& m, double strength);
cv::Mat AddText(const cv::Mat& m, const std::string& text);
cv::Mat TiledWatermark(const cv::Mat& m, const std::string& text);
cv::Mat Pad(const cv::Mat& m, int pixels, cv::Scalar colour);
cv::Mat Collage(const std::vector<cv::Mat>& cells, int columns, cv::Size cell);
cv::Mat Screenshot(const cv::Mat& m);
cv::Mat ColourShift(const cv::Mat& m);
cv::Mat Greyscale(const cv::Mat& m);
cv::Mat BlurNoise(const cv::Mat& m, std::uint64_t seed);
cv::Mat Stickers(const cv::Mat& m, double coverage, std::uint64_t seed);
cv::Mat Downscale(const cv::Mat& m, double factor);

}  // namespace spoor::testing

#endif  // SPOOR_TESTS_TEST_UTIL_H_
