// spoor-bench-gen: builds the evaluation set from photos in Debian packages.
//
//   spoor-bench-gen --out DIR [--seed N] [--quick]
//
// DIR/references/   reference photos: animal cut-outs (tuxpaint-stamps)
//                   composited on background windows, plain background
//                   windows, and the first photo of each real opencv-doc pair
// DIR/queries/      positives (disguised references, one family each, named
//                   in the ground truth) and distractors (must match nothing)
// DIR/ground_truth.csv   query,family,reference  (reference empty: distractor)
// DIR/padding/      with --pad N: N more references for the scale runs, cut
//                   from reference-pool windows no reference used and from
//                   opencv-doc photos outside the real pairs, so no query
//                   shows them (spoor-bench-eval --pad indexes them)
//
// Ground truth stays unambiguous: every background photo is cut into
// non-overlapping windows and each window is used once; background photos are
// split into two disjoint pools, one for references, the other for
// distractors, collage cells and re-photographed composites; each cut-out
// appears in at most one reference, and distractor cut-outs in none.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <opencv2/features2d.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <regex>
#include <set>

#include "bench_util.h"
#include "corpus/disguises.h"

namespace fs = std::filesystem;
using namespace spoor::corpus;

namespace {

using spoor::bench::Rng;
using spoor::bench::Uniform;
using spoor::bench::UniformInt;

// Whether `m` has at least `min_corners` FAST corners, counted at 160x120 so
// star-field noise and JPEG grain do not pass for structure.
bool Textured(const cv::Mat& m, int min_corners) {
  cv::Mat grey, small;
  cv::cvtColor(m, grey, cv::COLOR_BGR2GRAY);
  cv::resize(grey, small, cv::Size(160, 120), 0, 0, cv::INTER_AREA);
  std::vector<cv::KeyPoint> corners;
  cv::FAST(small, corners, 20);
  return static_cast<int>(corners.size()) >= min_corners;
}

// Cuts each photo into non-overlapping 640x480 windows. A reference pool
// hands each window out once; a recycling pool (distractors, collage cells,
// re-photographed backgrounds: they may share pixels with each other, never
// with a reference) starts again from the first when it runs out.
class WindowPool {
 public:
  WindowPool(const std::vector<std::string>& photos, Rng& rng, bool recycle)
      : recycle_(recycle) {
    for (const auto& p : photos) {
      cv::Mat m = LoadBgr(p, 1920);
      if (m.empty()) continue;
      for (int y = 0; y + 480 <= m.rows; y += 480)
        for (int x = 0; x + 640 <= m.cols; x += 640)
          windows_.push_back(m(cv::Rect(x, y, 640, 480)).clone());
    }
    std::shuffle(windows_.begin(), windows_.end(), rng);
  }
  bool empty() const {
    return windows_.empty() || (!recycle_ && next_ >= windows_.size());
  }
  // The next window with at least `min_corners` FAST corners, or an empty
  // matrix. Flat gradients (many wallpapers are) have nothing any method can
  // recognise, and no real reference photo looks like that.
  cv::Mat TakeTextured(int min_corners) {
    for (size_t i = next_; i < windows_.size(); ++i) {
      if (Textured(windows_[i], min_corners)) {
        std::swap(windows_[i], windows_[next_]);
        return Take();
      }
    }
    return cv::Mat();
  }
  // Windows never handed out (none, for a recycling pool).
  std::vector<cv::Mat> Unused() const {
    if (recycle_ || next_ >= windows_.size()) return {};
    return {windows_.begin() + next_, windows_.end()};
  }
  size_t left() const {
    return next_ < windows_.size() ? windows_.size() - next_ : 0;
  }
  cv::Mat Take() {
    if (recycle_ && next_ >= windows_.size()) next_ = 0;
    return windows_.at(next_++);
  }

 private:
  bool recycle_;
  std::vector<cv::Mat> windows_;
  size_t next_ = 0;
};

struct Query {
  std::string file, family, reference;
};

// FAST corners (at 160x120) a plain background window needs to serve as a
// reference.
constexpr int kMinCorners = 60;

const std::vector<std::string> kFamilies = {
    "jpeg_heavy",     "downscale",   "crop_centre",
    "crop_offcentre", "mirror",      "rotate_right_angle",
    "rotate_small",   "perspective", "text_overlay",
    "watermark",      "padding",     "collage",
    "screenshot",     "colour",      "blur_noise",
    "stickers",       "chain3",      "grid3x3",
    "grid4x4",        "rephoto"};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spoor-bench-gen: build the evaluation set"};
  std::string out;
  std::uint64_t seed = 1;
  bool quick = false;
  int plain_refs = 100, per_ref = 4, pad = 0;
  app.add_option("--out", out, "output folder (emptied first)")->required();
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  app.add_flag("--quick", quick, "a few hundred images for CI");
  app.add_option("--plain-references", plain_refs,
                 "references that are plain background windows")
      ->capture_default_str();
  app.add_option("--queries-per-reference", per_ref)->capture_default_str();
  app.add_option("--pad", pad, "padding references to write for scale runs")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (quick) {
    plain_refs = 10;
    per_ref = 2;
  }

  Rng rng(seed);
  fs::remove_all(out);
  fs::create_directories(fs::path(out) / "references");
  fs::create_directories(fs::path(out) / "queries");
  auto write = [&](const std::string& sub, const std::string& name,
                   const std::vector<std::uint8_t>& bytes) {
    std::ofstream(fs::path(out) / sub / name, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  };

  std::vector<std::string> photos = BackgroundPhotos();
  std::shuffle(photos.begin(), photos.end(), rng);
  size_t split = photos.size() / 2;
  WindowPool ref_windows({photos.begin(), photos.begin() + split}, rng, false);
  WindowPool other_windows({photos.begin() + split, photos.end()}, rng, true);
  std::vector<std::string> stamps = Stamps();
  std::shuffle(stamps.begin(), stamps.end(), rng);
  size_t stamp_split = stamps.size() * 6 / 10;
  std::vector<std::string> ref_stamps(stamps.begin(),
                                      stamps.begin() + stamp_split);
  std::vector<std::string> distractor_stamps(stamps.begin() + stamp_split,
                                             stamps.end());
  if (quick) ref_stamps.resize(std::min<size_t>(ref_stamps.size(), 20));

  struct Ref {
    std::string name;
    cv::Mat image;
    std::string stamp;  // empty for plain windows
  };
  std::vector<Ref> refs;
  for (const auto& stamp : ref_stamps) {
    if (ref_windows.empty()) break;
    cv::Mat cut = LoadStampBgra(stamp);
    if (cut.empty()) continue;
    cv::Mat image = Composite(cut, ref_windows.Take(), Uniform(rng, 0.5, 0.85),
                              Uniform(rng, 0.35, 0.65), Uniform(rng, 0.4, 0.6),
                              Uniform(rng, -10, 10));
    refs.push_back({"", image, stamp});
  }
  for (int i = 0; i < plain_refs; ++i) {
    cv::Mat window = ref_windows.TakeTextured(kMinCorners);
    if (window.empty()) break;
    refs.push_back({"", window, ""});
  }
  for (size_t i = 0; i < refs.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "ref_%04zu.jpg", i);
    refs[i].name = name;
    write("references", name, EncodeJpeg(refs[i].image, 92));
  }

  std::vector<Query> queries;
  auto add_query = [&](const cv::Mat& m, const std::string& family,
                       const std::string& reference, int quality = 85) {
    char name[48];
    std::snprintf(name, sizeof(name), "q_%05zu.jpg", queries.size());
    write("queries", name, EncodeJpeg(m, quality));
    queries.push_back({name, family, reference});
  };

  // Single disguises; `chain3` composes three of the simple ones.
  std::map<std::string, std::function<cv::Mat(const cv::Mat&)>> simple = {
      {"downscale",
       [&](const cv::Mat& m) {
         return Downscale(m, Uniform(rng, 0.15, 0.35));
       }},
      {"crop_centre",
       [&](const cv::Mat& m) {
         double side = std::sqrt(Uniform(rng, 0.3, 0.6)), o = (1 - side) / 2;
         return Crop(m, o, o, o + side, o + side);
       }},
      {"crop_offcentre",
       [&](const cv::Mat& m) {
         double side = std::sqrt(Uniform(rng, 0.3, 0.6));
         double x = Uniform(rng, 0, 1 - side), y = Uniform(rng, 0, 1 - side);
         return Crop(m, x, y, x + side, y + side);
       }},
      {"mirror",
       [&](const cv::Mat& m) {
         cv::Mat f;
         cv::flip(m, f, 1);
         return f;
       }},
      {"rotate_right_angle",
       [&](const cv::Mat& m) {
         cv::Mat r;
         cv::rotate(m, r, UniformInt(rng, 0, 2));
         return r;
       }},
      {"rotate_small",
       [&](const cv::Mat& m) {
         return Rotate(m, Uniform(rng, 5, 20) * (rng() % 2 ? 1 : -1));
       }},
      {"perspective",
       [&](const cv::Mat& m) {
         return PerspectiveWarp(m, Uniform(rng, 0.08, 0.2));
       }},
      {"text_overlay",
       [&](const cv::Mat& m) {
         char phone[32];
         std::snprintf(phone, sizeof(phone), "+%d %03d %03d %03d",
                       UniformInt(rng, 20, 99), UniformInt(rng, 100, 999),
                       UniformInt(rng, 100, 999), UniformInt(rng, 100, 999));
         return AddText(m, phone);
       }},
      {"watermark",
       [&](const cv::Mat& m) { return TiledWatermark(m, "WhatsApp me"); }},
      {"padding",
       [&](const cv::Mat& m) {
         return Pad(m, UniformInt(rng, 40, 150),
                    cv::Scalar(UniformInt(rng, 0, 255), UniformInt(rng, 0, 255),
                               UniformInt(rng, 0, 255)));
       }},
      {"screenshot", [&](const cv::Mat& m) { return Screenshot(m); }},
      {"colour",
       [&](const cv::Mat& m) {
         return rng() % 2 ? ColourShift(m) : Greyscale(m);
       }},
      {"blur_noise", [&](const cv::Mat& m) { return BlurNoise(m, rng()); }},
      {"stickers",
       [&](const cv::Mat& m) {
         return Stickers(m, Uniform(rng, 0.15, 0.3), rng());
       }},
  };
  std::vector<std::string> chainable = {
      "crop_centre",  "crop_offcentre", "mirror", "rotate_small",
      "text_overlay", "padding",        "colour", "blur_noise",
      "stickers",     "downscale"};
  auto disguise = [&](const std::string& family, const Ref& ref) -> cv::Mat {
    if (family == "jpeg_heavy") return ref.image;  // quality set at encoding
    if (family == "collage") {
      int cells = rng() % 2 ? 4 : 6, at = UniformInt(rng, 0, cells - 1);
      std::vector<cv::Mat> parts;
      for (int c = 0; c < cells; ++c)
        parts.push_back(c == at || other_windows.empty()
                            ? ref.image
                            : other_windows.Take());
      return Collage(parts, cells == 4 ? 2 : 3, cv::Size(400, 300));
    }
    if (family == "grid3x3" || family == "grid4x4") {
      // A seller's grid of listings: the item in one cell, the others other
      // items (distractor cut-outs on other backgrounds) and plain photos.
      // 1200x900 in all, so a cell is a ninth or a sixteenth of the picture.
      int side = family == "grid3x3" ? 3 : 4;
      int cells = side * side, at = UniformInt(rng, 0, cells - 1);
      std::vector<cv::Mat> parts;
      for (int c = 0; c < cells; ++c) {
        if (c == at || other_windows.empty()) {
          parts.push_back(ref.image);
        } else if (c % 2 == 0 && !distractor_stamps.empty()) {
          const std::string& stamp = distractor_stamps[UniformInt(
              rng, 0, static_cast<int>(distractor_stamps.size()) - 1)];
          parts.push_back(Composite(LoadStampBgra(stamp), other_windows.Take(),
                                    Uniform(rng, 0.5, 0.8), 0.5, 0.5));
        } else {
          parts.push_back(other_windows.Take());
        }
      }
      return Collage(parts, side, cv::Size(1200 / side, 900 / side));
    }
    if (family == "chain3") {
      std::vector<std::string> pick = chainable;
      std::shuffle(pick.begin(), pick.end(), rng);
      cv::Mat m = ref.image;
      for (int i = 0; i < 3; ++i) m = simple[pick[i]](m);
      return m;
    }
    if (family == "rephoto") {
      cv::Mat cut = LoadStampBgra(ref.stamp);
      return Composite(cut, other_windows.Take(), Uniform(rng, 0.4, 0.8),
                       Uniform(rng, 0.35, 0.65), Uniform(rng, 0.4, 0.6),
                       Uniform(rng, -15, 15), Uniform(rng, 0.75, 1.2));
    }
    return simple.at(family)(ref.image);
  };

  // Positives: each reference gets `per_ref` families, round robin, so every
  // family is represented about equally. Plain windows have no cut-out to
  // re-photograph.
  size_t turn = 0;
  for (const Ref& ref : refs) {
    for (int k = 0; k < per_ref; ++k) {
      std::string family = kFamilies[turn++ % kFamilies.size()];
      if (family == "rephoto" && (ref.stamp.empty() || other_windows.empty()))
        family = "chain3";
      cv::Mat m = disguise(family, ref);
      int quality = family == "jpeg_heavy" ? UniformInt(rng, 8, 20) : 85;
      add_query(m, family, ref.name, quality);
    }
  }

  // The real re-photographed pairs of opencv-doc.
  const std::pair<const char*, const char*> kPairs[] = {
      {"box.png", "box_in_scene.png"},
      {"graf1.png", "graf3.png"},
      {"leuvenA.jpg", "leuvenB.jpg"},
      {"aero1.jpg", "aero3.jpg"}};
  for (const auto& [ref, query] : kPairs) {
    cv::Mat r = LoadBgr(kOpenCvData + "/" + ref),
            q = LoadBgr(kOpenCvData + "/" + query);
    if (r.empty() || q.empty()) continue;
    std::string name =
        std::string("real_") + fs::path(ref).stem().string() + ".png";
    write("references", name, EncodePng(r));
    add_query(q, "real_rephoto", name, 92);
  }

  // Distractors, about as many as positives: other cut-outs on the other
  // pool's windows, and the other pool's windows disguised.
  size_t positives = queries.size();
  std::vector<std::string> families(kFamilies.begin(), kFamilies.end() - 1);
  for (size_t i = 0; i < positives && !other_windows.empty(); ++i) {
    cv::Mat m;
    if (i % 2 == 0 && !distractor_stamps.empty()) {
      cv::Mat cut =
          LoadStampBgra(distractor_stamps[i / 2 % distractor_stamps.size()]);
      m = Composite(cut, other_windows.Take(), Uniform(rng, 0.4, 0.85), 0.5,
                    0.5, Uniform(rng, -15, 15), Uniform(rng, 0.8, 1.2));
    } else {
      Ref fake{"", other_windows.Take(), ""};
      std::string family = families[i % families.size()];
      if (family == "collage" || family == "grid3x3" || family == "grid4x4")
        family = "padding";  // a collage would use more windows
      m = disguise(family, fake);
    }
    add_query(m, "distractor", "");
  }

  // Padding: sub-windows of unused reference-pool windows and of opencv-doc
  // photos outside the pairs, at another scale, sometimes mirrored or turned,
  // with their brightness changed. They may resemble each other; they never
  // resemble a query. Drawn from their own generator so the rest of the set
  // is the same with or without them.
  std::vector<cv::Mat> unused = ref_windows.Unused();
  if (pad > 0) {
    std::set<std::string> paired;
    for (const auto& [ref, query] : kPairs) {
      paired.insert(ref);
      paired.insert(query);
    }
    std::vector<std::string> extra;
    for (const auto& e : fs::directory_iterator(kOpenCvData)) {
      std::string ext = e.path().extension().string();
      if ((ext == ".jpg" || ext == ".png") &&
          !paired.count(e.path().filename().string()))
        extra.push_back(e.path().string());
    }
    std::sort(extra.begin(), extra.end());
    for (const auto& path : extra) {
      cv::Mat m = LoadBgr(path, 1280);
      if (m.cols >= 320 && m.rows >= 240) unused.push_back(m);
    }
  }
  if (pad > 0 && unused.empty()) {
    std::fprintf(stderr, "spoor-bench-gen: no unused windows to pad with\n");
    return 1;
  }
  if (pad > 0) fs::create_directories(fs::path(out) / "padding");
  Rng pad_rng(seed * 7919 + 1);
  for (int i = 0; i < pad;) {
    const cv::Mat& w = unused[pad_rng() % unused.size()];
    double side = Uniform(pad_rng, 0.5, 1.0);
    double x0 = Uniform(pad_rng, 0, 1 - side),
           y0 = Uniform(pad_rng, 0, 1 - side);
    cv::Mat m = Crop(w, x0, y0, x0 + side, y0 + side);
    if (pad_rng() % 2) cv::flip(m, m, 1);
    if (pad_rng() % 4 == 0) cv::rotate(m, m, cv::ROTATE_90_CLOCKWISE);
    m.convertTo(m, -1, Uniform(pad_rng, 0.8, 1.2), Uniform(pad_rng, -20, 20));
    cv::resize(m, m, m.cols >= m.rows ? cv::Size(480, 360) : cv::Size(360, 480),
               0, 0, cv::INTER_AREA);
    // A blank or flat cut (white margins of a diagram) is no reference
    // photo, and would equal any blank query.
    if (!Textured(m, kMinCorners)) continue;
    char name[32];
    std::snprintf(name, sizeof(name), "pad_%06d.jpg", i);
    write("padding", name, EncodeJpeg(m, UniformInt(pad_rng, 75, 92)));
    ++i;
  }

  std::ofstream gt(fs::path(out) / "ground_truth.csv");
  gt << "query,family,reference\n";
  for (const auto& q : queries)
    gt << q.file << "," << q.family << "," << q.reference << "\n";
  size_t references =
      std::distance(fs::directory_iterator(fs::path(out) / "references"),
                    fs::directory_iterator());
  std::printf(
      "spoor-bench-gen: %zu references, %zu positive and %zu distractor "
      "queries in %s "
      "(seed %llu; %zu reference and %zu other background windows never "
      "used); %d padding references\n",
      references, positives, queries.size() - positives, out.c_str(),
      static_cast<unsigned long long>(seed), ref_windows.left(),
      other_windows.left(), pad);
  return 0;
}
