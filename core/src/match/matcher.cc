#include "spoor/matcher.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "index/descriptor_index.h"
#include "index/global_index.h"
#include "index/hash_index.h"
#include "spoor/image.h"
#include "spoor/local_features.h"
#include "spoor/perceptual_hash.h"
#include "spoor/reference_index.h"
#include "store/reference_store.h"
#include "verify/geometric_verifier.h"

namespace spoor {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start)
      .count();
}

// Hash tier thresholds, in bits out of 256. Measured on the test corpus:
// recompressed and rescaled copies stay under 20; unrelated photos sit
// around 128 and rarely come below 90.
constexpr int kHashCandidateDistance = 64;
constexpr int kExactDistance = 20;
constexpr int kHashCandidates = 8;
// Reference vectors looked up per query region in the global tier.
constexpr int kGlobalNeighbours = 16;

// Inlier count at which verification alone makes a match (score 0.5), and
// the inliers over it that take the score most of the way to 1. Unrelated
// photos produce at most ~10 inliers; see docs/SCORING.md.
constexpr double kInliersAtThreshold = 15;
constexpr double kInlierScale = 12;

// Share of the reference keypoints visible in the query that must be inliers
// for a verified match to count as a copy rather than the same item
// photographed again.
constexpr double kCopyDensity = 0.25;

double ScoreFromInliers(int inliers) {
  if (inliers <= 0) return 0;
  // Logistic in the inlier count: 0.5 at kInliersAtThreshold.
  return 1.0 / (1.0 + std::exp(-(inliers - kInliersAtThreshold) /
                               (kInlierScale / 3)));
}

double ScoreFromHash(int distance) {
  if (distance < 0 || distance > kHashCandidateDistance) return 0;
  // 1 at distance 0, 0.5 at the exact-copy bound, falling to 0 at 64.
  if (distance <= kExactDistance) return 1.0 - 0.5 * distance / kExactDistance;
  return 0.5 * (kHashCandidateDistance - distance) /
         (kHashCandidateDistance - kExactDistance) * 0.8;
}

cv::Matx33d ScaleMatrix(double s) {
  return cv::Matx33d(s, 0, 0, 0, s, 0, 0, 0, 1);
}

Box ToBox(const std::vector<cv::Point2d>& points, int width, int height) {
  double x0 = 1e18, y0 = 1e18, x1 = -1e18, y1 = -1e18;
  for (const auto& p : points) {
    x0 = std::min(x0, p.x);
    y0 = std::min(y0, p.y);
    x1 = std::max(x1, p.x);
    y1 = std::max(y1, p.y);
  }
  x0 = std::clamp(x0, 0.0, static_cast<double>(width));
  x1 = std::clamp(x1, 0.0, static_cast<double>(width));
  y0 = std::clamp(y0, 0.0, static_cast<double>(height));
  y1 = std::clamp(y1, 0.0, static_cast<double>(height));
  return Box{static_cast<int>(std::lround(x0)),
             static_cast<int>(std::lround(y0)),
             static_cast<int>(std::lround(x1 - x0)),
             static_cast<int>(std::lround(y1 - y0))};
}

std::vector<cv::Point2d> Project(const cv::Matx33d& h, double w, double hgt) {
  std::vector<cv::Point2d> corners = {{0, 0}, {w, 0}, {w, hgt}, {0, hgt}};
  std::vector<cv::Point2d> out;
  for (const auto& c : corners) {
    cv::Vec3d v = h * cv::Vec3d(c.x, c.y, 1);
    out.emplace_back(v[0] / v[2], v[1] / v[2]);
  }
  return out;
}

// One pass over the query's features as decoded, or mirrored.
struct Pass {
  bool mirrored = false;
  LocalFeatures features;
  // Regions (feature coordinates) whose keypoints were left out: text.
  std::vector<cv::Rect2f> masked;
};

// Fills `match` from a verification; returns false when nothing verified.
bool Evaluate(const Pass& pass, const Verification& v,
              const StoredReference& ref, int query_w, int query_h,
              Match& match) {
  if (v.inliers == 0) return false;
  const LocalFeatures& qf = pass.features;
  const LocalFeatures& rf = ref.features;
  cv::Matx33d h;
  for (int i = 0; i < 9; ++i) h(i / 3, i % 3) = v.homography[i];
  // Feature coordinates -> original pixels on both sides.
  double q_scale = static_cast<double>(query_w) / qf.width;
  double r_scale = static_cast<double>(ref.reference.width) / rf.width;
  cv::Matx33d h_orig = ScaleMatrix(q_scale) * h * ScaleMatrix(1.0 / r_scale);
  cv::Matx33d full = h_orig;
  if (pass.mirrored) {
    cv::Matx33d flip(-1, 0, query_w, 0, 1, 0, 0, 0, 1);
    full = flip * h_orig;
  }
  match.inliers = v.inliers;
  match.query_inliers.clear();
  for (const auto& p : v.query_inliers) {
    float x = static_cast<float>(p[0] * q_scale);
    if (pass.mirrored) x = static_cast<float>(query_w) - x;
    match.query_inliers.push_back({x, static_cast<float>(p[1] * q_scale)});
  }
  match.query_box =
      ToBox(Project(full, ref.reference.width, ref.reference.height), query_w,
            query_h);
  match.ref_box = ToBox(Project(full.inv(), query_w, query_h),
                        ref.reference.width, ref.reference.height);

  Transform& t = match.transform;
  t.mirrored = pass.mirrored;
  double a = h_orig(0, 0), b = h_orig(0, 1), c = h_orig(1, 0), d = h_orig(1, 1);
  t.scale = std::sqrt(std::abs(a * d - b * c));
  // Image y points down, so atan2(c, a) is clockwise; report counter-clockwise.
  t.rotation_degrees = -std::atan2(c, a) * 180.0 / CV_PI;
  if (t.rotation_degrees <= -180) t.rotation_degrees += 360;
  double persp = std::abs(h_orig(2, 0)) * ref.reference.width +
                 std::abs(h_orig(2, 1)) * ref.reference.height;
  t.perspective = persp > 0.05 * std::abs(h_orig(2, 2));
  for (int i = 0; i < 9; ++i) t.homography[i] = full(i / 3, i % 3) / full(2, 2);

  // A copy keeps the reference's pixels: most reference keypoints that land
  // inside the query survive as inliers. A re-photographed item shares only
  // the object, under new light and on a new background, and keeps few.
  // Reference keypoints that land where the query's were left out (text)
  // could not be inliers, so they do not count as visible.
  int visible = 0;
  for (const Keypoint& k : rf.keypoints) {
    cv::Vec3d p = h * cv::Vec3d(k.x, k.y, 1);
    double x = p[0] / p[2], y = p[1] / p[2];
    if (x < 0 || y < 0 || x >= qf.width || y >= qf.height) continue;
    cv::Point2f at(static_cast<float>(x), static_cast<float>(y));
    if (std::none_of(pass.masked.begin(), pass.masked.end(),
                     [&](const cv::Rect2f& b) { return b.contains(at); }))
      ++visible;
  }
  double density = visible > 0 ? static_cast<double>(v.inliers) / visible : 0;
  bool copy = density >= kCopyDensity;
  match.verdict = copy ? Verdict::kModifiedCopy : Verdict::kSameItem;
  match.score = ScoreFromInliers(v.inliers);
  return true;
}

// `features` without the keypoints `drop` is true of.
template <typename Drop>
LocalFeatures Without(const LocalFeatures& features, Drop drop) {
  LocalFeatures out;
  out.width = features.width;
  out.height = features.height;
  for (int i = 0; i < features.size(); ++i) {
    const Keypoint& k = features.keypoints[i];
    if (drop(k)) continue;
    out.keypoints.push_back(k);
    out.descriptors.insert(
        out.descriptors.end(),
        features.descriptors.begin() +
            static_cast<std::ptrdiff_t>(i) * kDescriptorDim,
        features.descriptors.begin() +
            static_cast<std::ptrdiff_t>(i + 1) * kDescriptorDim);
  }
  return out;
}

// `features` without the keypoints at `explained` points (feature
// coordinates, within 2.5% of the longest side): what benign content
// accounts for.
LocalFeatures WithoutExplained(
    const LocalFeatures& features,
    const std::vector<std::array<float, 2>>& explained) {
  const float radius = 0.025f * std::max(features.width, features.height);
  return Without(features, [&](const Keypoint& k) {
    return std::any_of(explained.begin(), explained.end(), [&](const auto& p) {
      float dx = p[0] - k.x, dy = p[1] - k.y;
      return dx * dx + dy * dy < radius * radius;
    });
  });
}

// The regions of `features` (feature coordinates) on `words` and on every
// text line given, read or not (original pixels; each word's box grown by a
// quarter of its height, as glyph keypoints sit on its edges; whole lines,
// as glyphs Tesseract read with too little confidence are text all the
// same).
std::vector<cv::Rect2f> TextBoxes(const LocalFeatures& features,
                                  const std::vector<TextWord>& words,
                                  const std::vector<Box>& lines,
                                  int original_width, bool mirrored) {
  const float s = original_width > 0
                      ? static_cast<float>(features.width) / original_width
                      : 1.0f;
  std::vector<cv::Rect2f> boxes;
  auto add = [&](const Box& b, float m) {
    float x = (b.x - m) * s, y = (b.y - m) * s;
    float bw = (b.width + 2 * m) * s, bh = (b.height + 2 * m) * s;
    if (mirrored) x = features.width - x - bw;
    cv::Rect2f r(x, y, bw, bh);
    if (std::find(boxes.begin(), boxes.end(), r) == boxes.end())
      boxes.push_back(r);
  };
  for (const TextWord& w : words) {
    add(w.box, 0.25f * w.box.height);
    add(w.line, 0);
  }
  for (const Box& line : lines) add(line, 0);
  return boxes;
}

// `features` without the keypoints in `boxes`.
LocalFeatures WithoutBoxes(const LocalFeatures& features,
                           const std::vector<cv::Rect2f>& boxes) {
  return Without(features, [&](const Keypoint& k) {
    return std::any_of(boxes.begin(), boxes.end(), [&](const cv::Rect2f& b) {
      return b.contains(cv::Point2f(k.x, k.y));
    });
  });
}

}  // namespace

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kExact:
      return "exact";
    case Verdict::kModifiedCopy:
      return "modified_copy";
    case Verdict::kSameItem:
      return "same_item";
    case Verdict::kNoMatch:
      break;
  }
  return "no_match";
}

Matcher::Matcher(const ReferenceIndex& index) : index_(index) {}

absl::StatusOr<MatchResult> Matcher::Match(std::span<const std::uint8_t> bytes,
                                           const MatchOptions& options,
                                           const std::string& name) const {
  auto start = Clock::now();
  auto image = DecodeImage(bytes, index_.options().decode, name);
  if (!image.ok()) return image.status();
  double decode_ms = MsSince(start);
  auto result = MatchImage(*image, options);
  if (!result.ok()) return result.status();
  result->timings.decode_ms = decode_ms;
  result->timings.total_ms += decode_ms;
  return result;
}

absl::StatusOr<MatchResult> Matcher::MatchImage(
    const Image& image, const MatchOptions& options) const {
  // OpenCV, FAISS and the allocator throw; no exception crosses this header.
  try {
    return MatchImageUnguarded(image, options);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("match: out of memory");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("match: ", e.what()));
  }
}

absl::StatusOr<MatchResult> Matcher::MatchImageUnguarded(
    const Image& image, const MatchOptions& options) const {
  auto stopped = [&] { return options.should_stop && options.should_stop(); };
  const absl::Status kStopped =
      absl::DeadlineExceededError("match stopped: deadline passed");
  MatchResult result;
  result.width = image.original_width;
  result.height = image.original_height;
  result.format = image.format;
  StageTimings& t = result.timings;
  auto start = Clock::now();

  auto in_banks = [&](const Reference& r) {
    return options.banks.empty() ||
           std::find(options.banks.begin(), options.banks.end(), r.bank) !=
               options.banks.end();
  };

  if (options.thumbnail_side > 0) {
    cv::Mat bgr(image.height, image.width, CV_8UC3,
                const_cast<std::uint8_t*>(image.bgr.data()));
    double s = std::min(1.0, static_cast<double>(options.thumbnail_side) /
                                 std::max(image.width, image.height));
    cv::Mat small;
    cv::resize(bgr, small, cv::Size(), s, s, cv::INTER_AREA);
    cv::imencode(".jpg", small, result.thumbnail,
                 {cv::IMWRITE_JPEG_QUALITY, 80});
  }

  auto stage = Clock::now();
  std::array<Hash256, kOrientationCount> variants = ComputeHashVariants(image);
  if (options.keep_query) result.query_hash = variants[0];
  // A flat picture's hash is every flat picture's hash: no evidence.
  std::vector<HashHit> hash_hits;
  if (HashContrast(image) >= kMinHashContrast) {
    hash_hits =
        index_.SearchHashes(variants, kHashCandidateDistance, kHashCandidates);
  }
  t.hash_ms = MsSince(stage);

  if (options.read_text) {
    stage = Clock::now();
    auto words = ReadText(image, {}, &result.text_lines);
    if (!words.ok()) return words.status();
    result.text = std::move(*words);
    t.text_ms = MsSince(stage);
  }

  FeatureOptions feature_options = index_.options().features;
  feature_options.octave_side = index_.options().query_octave_side;
  feature_options.min_features = index_.options().query_min_features;
  const std::vector<std::int64_t> benign = index_.BenignIds();
  VoteOptions vote;
  vote.max_results = std::max(1, options.max_candidates);
  vote.min_votes = options.min_votes;
  int global_candidates = options.max_global_candidates;
  int cell_candidates = options.max_cell_candidates;
  if (index_.HasVotingTier()) {
    global_candidates =
        std::min(global_candidates, options.max_global_candidates_beside_votes);
    cell_candidates =
        std::min(cell_candidates, options.max_cell_candidates_beside_votes);
  }

  std::map<std::int64_t, spoor::Match> best;  // by reference id
  // References read from the database, kept for the mirror pass, which
  // usually verifies the same candidates again.
  std::map<std::int64_t, StoredReference> loaded;
  // Returns false when stopped.
  auto run_pass = [&](Pass& pass) {
    if (stopped()) return false;
    auto s = Clock::now();
    std::vector<Vote> votes =
        index_.SearchDescriptors(DescriptorsAsFloat(pass.features), vote);
    std::vector<GlobalHit> global = index_.SearchGlobal(
        pass.features, kGlobalNeighbours, global_candidates, cell_candidates);
    std::vector<std::int64_t> candidates;
    auto add = [&](std::int64_t id) {
      if (std::find(candidates.begin(), candidates.end(), id) ==
          candidates.end())
        candidates.push_back(id);
    };
    // Benign content is verified whatever the tiers rank it: many earlier
    // ads sharing an app's chrome would outvote the chrome itself.
    if (options.banks.empty() ||
        std::any_of(options.banks.begin(), options.banks.end(), IsBenignBank))
      for (std::int64_t id : benign) add(id);
    for (const Vote& v : votes) add(v.ref_id);
    for (const GlobalHit& g : global) add(g.ref_id);
    for (const HashHit& h : hash_hits)
      if (IsMirrored(h.orientation) == pass.mirrored) add(h.ref_id);
    t.search_ms += MsSince(s);

    s = Clock::now();
    std::vector<const StoredReference*> stored;
    for (std::int64_t id : candidates) {
      auto cached = loaded.find(id);
      if (cached == loaded.end()) {
        auto read = index_.Load(id);
        if (!read.ok()) continue;  // removed since the search: skip it
        if (!in_banks(read->reference)) continue;
        cached = loaded.emplace(id, std::move(*read)).first;
      }
      stored.push_back(&cached->second);
    }
    // Benign content first: what it explains in the query (an app's
    // chrome, a stock photo) is taken out before the rest is verified, so a
    // screenshot's item is matched on the item, not on the chrome.
    std::stable_partition(stored.begin(), stored.end(),
                          [](const StoredReference* r) {
                            return IsBenignBank(r->reference.bank);
                          });
    Pass rest{pass.mirrored, {}, {}};
    std::vector<std::array<float, 2>> explained;
    bool masked = false;
    // For earlier ads' images: `rest` without the keypoints on text.
    Pass untexted{pass.mirrored, {}, {}};
    bool untexted_ready = false;
    for (const StoredReference* ref : stored) {
      if (stopped()) return false;
      bool benign = IsBenignBank(ref->reference.bank);
      if (!benign && !masked) {
        // Nothing explained (the common case): verify on the pass as it is.
        if (!explained.empty())
          rest.features = WithoutExplained(pass.features, explained);
        masked = true;
      }
      const Pass* chosen = benign || explained.empty() ? &pass : &rest;
      if (!benign && !result.text_lines.empty() &&
          ref->reference.bank == kSightingsBank) {
        if (!untexted_ready) {
          untexted.masked =
              TextBoxes(chosen->features, result.text, result.text_lines,
                        image.original_width, pass.mirrored);
          untexted.features = WithoutBoxes(chosen->features, untexted.masked);
          untexted_ready = true;
        }
        chosen = &untexted;
      }
      const Pass& p = *chosen;
      Verification v = VerifyGeometry(p.features, ref->features, {});
      ++result.verified;
      spoor::Match m;
      m.reference = ref->reference;
      if (!Evaluate(p, v, *ref, image.original_width, image.original_height,
                    m)) {
        m.score = 0;
      }
      if (benign && m.score >= kDefaultMinScore) {
        // Every keypoint of the benign image, carried onto the query by the
        // fitted homography: where the query shows that content, whether or
        // not its descriptors passed the ratio test (repeated glyphs of an
        // app's status bar often do not).
        cv::Matx33d h;
        for (int i = 0; i < 9; ++i) h(i / 3, i % 3) = v.homography[i];
        for (const Keypoint& k : ref->features.keypoints) {
          cv::Vec3d q = h * cv::Vec3d(k.x, k.y, 1);
          if (q[2] > 0)
            explained.push_back({static_cast<float>(q[0] / q[2]),
                                 static_cast<float>(q[1] / q[2])});
        }
      }
      std::int64_t id = ref->reference.id;
      auto it = best.find(id);
      if (it == best.end() || m.score > it->second.score) best[id] = m;
    }
    t.verify_ms += MsSince(s);
    return true;
  };

  stage = Clock::now();
  Pass direct{false, ExtractLocalFeatures(image, feature_options), {}};
  t.features_ms += MsSince(stage);
  if (!run_pass(direct)) return kStopped;
  // Copied before the mirror pass may need them. What is kept of an ad is
  // matched by later ads, so the words read in it are left out on this side
  // too: a later ad whose own words the reader misses (yellow on yellow
  // grass) must not match this one on the same words in the same font.
  // Only lines words were read in: a line read nothing in may be the item's
  // own texture, and what is kept is kept for good (the market run lost two
  // re-photographed items when those lines were left out here as well).
  if (options.keep_query) {
    result.query_features =
        result.text.empty()
            ? direct.features
            : WithoutBoxes(direct.features,
                           TextBoxes(direct.features, result.text, {},
                                     image.original_width, false));
  }

  // A match with an earlier ad's image or with benign content does not
  // stand in for a reference: the ad may be the mirror of one while the same
  // bytes were seen before, or sit inside a known app's screenshot.
  auto has_match = [&] {
    for (const auto& [id, m] : best)
      if (m.reference.bank != kSightingsBank &&
          !IsBenignBank(m.reference.bank) &&
          m.score >= std::max(options.min_score, kDefaultMinScore))
        return true;
    return false;
  };
  if (options.try_mirror && !has_match()) {
    // The mirror's features are a permutation of the direct ones: no second
    // extraction (MirrorFeatures).
    stage = Clock::now();
    Pass mirror{true, MirrorFeatures(direct.features), {}};
    t.features_ms += MsSince(stage);
    if (!run_pass(mirror)) return kStopped;
  }

  // The hash tier: a near-identical picture is a match even when its
  // keypoints do not survive (tiny thumbnails, heavy blur).
  for (const HashHit& h : hash_hits) {
    auto it = best.find(h.ref_id);
    if (it == best.end()) {
      auto ref = index_.Get(h.ref_id);
      if (!ref.ok() || !in_banks(*ref)) continue;
      spoor::Match m;
      m.reference = *ref;
      it = best.emplace(h.ref_id, m).first;
    }
    spoor::Match& m = it->second;
    m.hash_distance = h.distance;
    if (m.inliers == 0) {
      // Nothing verified: the evidence is the hash's, a whole-frame copy in
      // the hit's orientation. That orientation turns the query back into
      // the reference, so the reference turned into the query by as much
      // the other way (clockwise-to-reference is counter-clockwise here).
      m.transform.mirrored = IsMirrored(h.orientation);
      int ccw = RotationDegrees(h.orientation);
      m.transform.rotation_degrees = ccw > 180 ? ccw - 360 : ccw;
      bool turned = RotationDegrees(h.orientation) % 180 != 0;
      m.transform.scale = static_cast<double>(image.original_width) /
                          (turned ? m.reference.height : m.reference.width);
      m.query_box = Box{0, 0, image.original_width, image.original_height};
      m.ref_box = Box{0, 0, m.reference.width, m.reference.height};
      m.verdict = Verdict::kModifiedCopy;
    }
    m.score = std::max(m.score, ScoreFromHash(h.distance));
    if (h.distance <= kExactDistance) {
      m.verdict = h.orientation == Orientation::kIdentity
                      ? Verdict::kExact
                      : Verdict::kModifiedCopy;
    }
  }

  for (auto& [id, m] : best) {
    // A candidate without evidence is no candidate, whatever min_score says.
    if (m.score <= 0 || m.score < options.min_score) continue;
    if (m.score < kDefaultMinScore) m.verdict = Verdict::kNoMatch;
    m.score = std::clamp(m.score, 0.0, 1.0);
    result.matches.push_back(std::move(m));
  }
  std::sort(result.matches.begin(), result.matches.end(),
            [](const spoor::Match& a, const spoor::Match& b) {
              return a.score != b.score ? a.score > b.score
                                        : a.reference.id < b.reference.id;
            });
  if (static_cast<int>(result.matches.size()) > options.max_results)
    result.matches.resize(std::max(0, options.max_results));
  t.total_ms = MsSince(start);
  return result;
}

}  // namespace spoor
