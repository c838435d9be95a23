// Photos from Debian packages and the disguises traffickers apply to them:
// shared by the tests and the benchmark's corpus generator, so both disguise
// references the same way. Pixels of photos come through spoor::DecodeImage;
// cut-outs are read with their alpha channel by OpenCV (they are composited,
// never described themselves).
#ifndef SPOOR_BENCH_CORPUS_DISGUISES_H_
#define SPOOR_BENCH_CORPUS_DISGUISES_H_

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace spoor::corpus {

inline const std::string kOpenCvData =
    "/usr/share/doc/opencv-doc/examples/data";
inline const std::string kStamps = "/usr/share/tuxpaint/stamps/animals";
inline const std::string kWallpapers = "/usr/share/wallpapers";

// Pixels of a photo through spoor's decode path, at up to `max_side`; an
// empty matrix when it cannot be decoded.
cv::Mat LoadBgr(const std::string& path, int max_side = 4096);
// A tuxpaint stamp (path under kStamps) as BGRA; empty when unreadable.
cv::Mat LoadStampBgra(const std::string& relative_path);
// A landscape wallpaper by its folder name, resized and centre-cropped to
// `size`.
cv::Mat Wallpaper(const std::string& name, cv::Size size);

// One photo per background: the largest file of each wallpaper folder, and
// mate-backgrounds files with size suffixes folded together; sorted.
std::vector<std::string> BackgroundPhotos();
// The tuxpaint animal stamps that are photo cut-outs (no cartoons, no toys),
// as paths under kStamps; sorted.
std::vector<std::string> Stamps();

std::vector<std::uint8_t> EncodeJpeg(const cv::Mat& bgr, int quality = 90);
std::vector<std::uint8_t> EncodePng(const cv::Mat& image);

// Pastes `stamp` (BGRA) onto a copy of `background`, scaled so its longest
// side is `fraction` of the background's shorter side, centred at (cx, cy)
// given as fractions of the background size, rotated by `angle` degrees,
// its colours multiplied by `brightness`.
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

}  // namespace spoor::corpus

#endif  // SPOOR_BENCH_CORPUS_DISGUISES_H_
