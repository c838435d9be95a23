#include "corpus/disguises.h"

#include <filesystem>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <regex>

#include "spoor/image.h"

namespace spoor::corpus {

namespace fs = std::filesystem;

cv::Mat LoadBgr(const std::string& path, int max_side) {
  DecodeOptions options;
  options.max_side = max_side;
  auto image = DecodeImageFile(path, options);
  if (!image.ok()) return cv::Mat();
  cv::Mat view(image->height, image->width, CV_8UC3, image->bgr.data());
  return view.clone();
}

cv::Mat LoadStampBgra(const std::string& relative_path) {
  cv::Mat m = cv::imread((fs::path(kStamps) / relative_path).string(),
                         cv::IMREAD_UNCHANGED);
  if (m.empty() || m.channels() != 4) return cv::Mat();
  return m;
}

cv::Mat Wallpaper(const std::string& name, cv::Size size) {
  fs::path dir = fs::path(kWallpapers) / name / "contents" / "images";
  std::string best;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string f = e.path().filename().string();
    if (f.rfind("1920x1080", 0) == 0) best = e.path().string();
    if (best.empty()) best = e.path().string();
  }
  cv::Mat m = LoadBgr(best, 2048);
  double s =
      std::max(double(size.width) / m.cols, double(size.height) / m.rows);
  cv::Mat r;
  cv::resize(m, r, cv::Size(), s, s, cv::INTER_AREA);
  return r(cv::Rect((r.cols - size.width) / 2, (r.rows - size.height) / 2,
                    size.width, size.height))
      .clone();
}

std::vector<std::string> BackgroundPhotos() {
  std::vector<std::string> out;
  for (const auto& dir : fs::directory_iterator(kWallpapers)) {
    fs::path images = dir.path() / "contents" / "images";
    if (!fs::exists(images)) continue;
    std::string best;
    std::uintmax_t best_size = 0;
    for (const auto& f : fs::directory_iterator(images)) {
      if (f.file_size() > best_size) {
        best_size = f.file_size();
        best = f.path().string();
      }
    }
    if (!best.empty()) out.push_back(best);
  }
  std::map<std::string, std::pair<std::uintmax_t, std::string>> mate;
  std::regex size_suffix("_[0-9]+x[0-9]+$");
  if (fs::exists("/usr/share/backgrounds/mate")) {
    for (const auto& f :
         fs::recursive_directory_iterator("/usr/share/backgrounds/mate")) {
      if (!f.is_regular_file()) continue;
      std::string ext = f.path().extension().string();
      if (ext != ".jpg" && ext != ".png") continue;
      std::string stem =
          std::regex_replace(f.path().stem().string(), size_suffix, "");
      auto& slot = mate[stem];
      if (f.file_size() > slot.first) slot = {f.file_size(), f.path().string()};
    }
  }
  for (const auto& [stem, entry] : mate) out.push_back(entry.second);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Stamps() {
  std::vector<std::string> out;
  for (const auto& f : fs::recursive_directory_iterator(kStamps)) {
    std::string rel = fs::relative(f.path(), kStamps).string();
    if (f.path().extension() != ".png" ||
        rel.find("cartoon") != std::string::npos ||
        rel.find("toys") != std::string::npos)
      continue;
    out.push_back(rel);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::uint8_t> EncodeJpeg(const cv::Mat& bgr, int quality) {
  std::vector<std::uint8_t> out;
  cv::imencode(".jpg", bgr, out, {cv::IMWRITE_JPEG_QUALITY, quality});
  return out;
}

std::vector<std::uint8_t> EncodePng(const cv::Mat& image) {
  std::vector<std::uint8_t> out;
  cv::imencode(".png", image, out);
  return out;
}

cv::Mat Composite(const cv::Mat& stamp, const cv::Mat& background,
                  double fraction, double cx, double cy, double angle,
                  double brightness) {
  cv::Mat out = background.clone();
  double target = fraction * std::min(background.cols, background.rows);
  double s = target / std::max(stamp.cols, stamp.rows);
  cv::Mat scaled;
  cv::resize(stamp, scaled, cv::Size(), s, s, cv::INTER_AREA);
  if (angle != 0) scaled = Rotate(scaled, angle);  // transparent corners
  int x0 = static_cast<int>(cx * background.cols - scaled.cols / 2.0);
  int y0 = static_cast<int>(cy * background.rows - scaled.rows / 2.0);
  for (int y = 0; y < scaled.rows; ++y) {
    int by = y0 + y;
    if (by < 0 || by >= out.rows) continue;
    for (int x = 0; x < scaled.cols; ++x) {
      int bx = x0 + x;
      if (bx < 0 || bx >= out.cols) continue;
      cv::Vec4b p = scaled.at<cv::Vec4b>(y, x);
      double a = p[3] / 255.0;
      cv::Vec3b& q = out.at<cv::Vec3b>(by, bx);
      for (int c = 0; c < 3; ++c) {
        double v = a * std::min(255.0, p[c] * brightness) + (1 - a) * q[c];
        q[c] = cv::saturate_cast<uchar>(v);
      }
    }
  }
  return out;
}

cv::Mat Crop(const cv::Mat& m, double x0, double y0, double x1, double y1) {
  cv::Rect r(static_cast<int>(x0 * m.cols), static_cast<int>(y0 * m.rows),
             static_cast<int>((x1 - x0) * m.cols),
             static_cast<int>((y1 - y0) * m.rows));
  return m(r).clone();
}

cv::Mat Rotate(const cv::Mat& m, double degrees) {
  cv::Point2f c(m.cols / 2.0f, m.rows / 2.0f);
  cv::Mat rot = cv::getRotationMatrix2D(c, degrees, 1.0);
  cv::Rect2f bbox = cv::RotatedRect(c, m.size(), degrees).boundingRect2f();
  rot.at<double>(0, 2) += bbox.width / 2.0 - c.x;
  rot.at<double>(1, 2) += bbox.height / 2.0 - c.y;
  cv::Mat out;
  // Zero fill: black for BGR, transparent for BGRA.
  cv::warpAffine(m, out, rot, bbox.size(), cv::INTER_LINEAR,
                 cv::BORDER_CONSTANT, cv::Scalar::all(0));
  return out;
}

cv::Mat PerspectiveWarp(const cv::Mat& m, double strength) {
  float w = static_cast<float>(m.cols), h = static_cast<float>(m.rows);
  float d = static_cast<float>(strength);
  std::vector<cv::Point2f> src = {{0, 0}, {w, 0}, {w, h}, {0, h}};
  std::vector<cv::Point2f> dst = {{d * w, d * h},
                                  {w * (1 - d * 0.3f), 0},
                                  {w, h},
                                  {d * 0.5f * w, h * (1 - d)}};
  cv::Mat out;
  cv::warpPerspective(m, out, cv::getPerspectiveTransform(src, dst), m.size(),
                      cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                      cv::Scalar(30, 30, 30));
  return out;
}

cv::Mat AddText(const cv::Mat& m, const std::string& text) {
  cv::Mat out = m.clone();
  double scale = m.cols / 700.0;
  cv::putText(out, text, cv::Point(m.cols / 20, m.rows * 9 / 10),
              cv::FONT_HERSHEY_DUPLEX, scale, cv::Scalar(0, 255, 255),
              std::max(2, static_cast<int>(scale * 3)));
  cv::putText(out, "call " + text, cv::Point(m.cols / 20, m.rows / 8),
              cv::FONT_HERSHEY_SIMPLEX, scale * 0.8, cv::Scalar(255, 255, 255),
              2);
  return out;
}

cv::Mat TiledWatermark(const cv::Mat& m, const std::string& text) {
  cv::Mat layer = m.clone();
  for (int y = 40; y < m.rows; y += 90)
    for (int x = -40 + (y / 90 % 2) * 60; x < m.cols; x += 260)
      cv::putText(layer, text, cv::Point(x, y), cv::FONT_HERSHEY_SIMPLEX, 0.9,
                  cv::Scalar(255, 255, 255), 2);
  cv::Mat out;
  cv::addWeighted(m, 0.6, layer, 0.4, 0, out);
  return out;
}

cv::Mat Pad(const cv::Mat& m, int pixels, cv::Scalar colour) {
  cv::Mat out;
  cv::copyMakeBorder(m, out, pixels, pixels, pixels * 2, pixels * 2,
                     cv::BORDER_CONSTANT, colour);
  return out;
}

cv::Mat Collage(const std::vector<cv::Mat>& cells, int columns, cv::Size cell) {
  int rows = (static_cast<int>(cells.size()) + columns - 1) / columns;
  cv::Mat out(rows * cell.height, columns * cell.width, CV_8UC3,
              cv::Scalar(250, 250, 250));
  for (size_t i = 0; i < cells.size(); ++i) {
    cv::Mat r;
    cv::resize(cells[i], r, cell, 0, 0, cv::INTER_AREA);
    r.copyTo(
        out(cv::Rect((i % columns) * cell.width, (i / columns) * cell.height,
                     cell.width, cell.height)));
  }
  return out;
}

cv::Mat Screenshot(const cv::Mat& m) {
  // A phone screen: status bar, app bar, the photo scaled into the width,
  // and a caption block below.
  int width = 720;
  cv::Mat photo;
  double s = double(width - 40) / m.cols;
  cv::resize(m, photo, cv::Size(), s, s, cv::INTER_AREA);
  cv::Mat out(photo.rows + 520, width, CV_8UC3, cv::Scalar(255, 255, 255));
  out(cv::Rect(0, 0, width, 60)).setTo(cv::Scalar(20, 20, 20));
  out(cv::Rect(0, 60, width, 110)).setTo(cv::Scalar(140, 90, 30));
  cv::putText(out, "12:41  4G  87%", cv::Point(20, 42),
              cv::FONT_HERSHEY_SIMPLEX, 1.0, cv::Scalar(255, 255, 255), 2);
  cv::putText(out, "Marketplace", cv::Point(20, 130), cv::FONT_HERSHEY_DUPLEX,
              1.4, cv::Scalar(255, 255, 255), 2);
  photo.copyTo(out(cv::Rect(20, 200, photo.cols, photo.rows)));
  int y = 200 + photo.rows + 60;
  cv::putText(out, "Antique carving, genuine, 4500", cv::Point(20, y),
              cv::FONT_HERSHEY_SIMPLEX, 1.0, cv::Scalar(0, 0, 0), 2);
  cv::putText(out, "Message seller", cv::Point(20, y + 70),
              cv::FONT_HERSHEY_SIMPLEX, 1.0, cv::Scalar(200, 100, 0), 2);
  return out;
}

cv::Mat ColourShift(const cv::Mat& m) {
  cv::Mat hsv;
  cv::cvtColor(m, hsv, cv::COLOR_BGR2HSV);
  for (int y = 0; y < hsv.rows; ++y)
    for (int x = 0; x < hsv.cols; ++x) {
      cv::Vec3b& p = hsv.at<cv::Vec3b>(y, x);
      p[0] = static_cast<uchar>((p[0] + 40) % 180);
      p[1] = cv::saturate_cast<uchar>(p[1] * 1.3);
    }
  cv::Mat out;
  cv::cvtColor(hsv, out, cv::COLOR_HSV2BGR);
  out.convertTo(out, -1, 1.15, 15);
  return out;
}

cv::Mat Greyscale(const cv::Mat& m) {
  cv::Mat g, out;
  cv::cvtColor(m, g, cv::COLOR_BGR2GRAY);
  cv::cvtColor(g, out, cv::COLOR_GRAY2BGR);
  return out;
}

cv::Mat BlurNoise(const cv::Mat& m, std::uint64_t seed) {
  cv::Mat out;
  cv::GaussianBlur(m, out, cv::Size(0, 0), 1.6);
  cv::Mat noise(m.size(), CV_16SC3);
  cv::RNG rng(seed);
  rng.fill(noise, cv::RNG::NORMAL, 0, 10);
  cv::Mat sum;
  out.convertTo(sum, CV_16SC3);
  sum += noise;
  sum.convertTo(out, CV_8UC3);
  return out;
}

cv::Mat Stickers(const cv::Mat& m, double coverage, std::uint64_t seed) {
  cv::Mat out = m.clone();
  std::mt19937_64 rng(seed);
  double area = 0, total = double(m.cols) * m.rows;
  while (area < coverage * total) {
    int r = static_cast<int>(std::min(m.cols, m.rows) *
                             std::uniform_real_distribution<>(0.06, 0.12)(rng));
    cv::Point c(std::uniform_int_distribution<>(r, m.cols - r)(rng),
                std::uniform_int_distribution<>(r, m.rows - r)(rng));
    cv::Scalar colour(rng() % 256, rng() % 256, rng() % 256);
    if (rng() % 2) {
      cv::circle(out, c, r, colour, cv::FILLED);
      area += CV_PI * r * r;
    } else {
      cv::rectangle(out, cv::Rect(c.x - r, c.y - r, 2 * r, 2 * r), colour,
                    cv::FILLED);
      area += 4.0 * r * r;
    }
  }
  return out;
}

cv::Mat Downscale(const cv::Mat& m, double factor) {
  cv::Mat out;
  cv::resize(m, out, cv::Size(), factor, factor, cv::INTER_AREA);
  return out;
}

}  // namespace spoor::corpus
