// The matching pipeline: query bytes in, verified matches with evidence out.
//
//   decode (image.h) -> perceptual hash variants + RootSIFT (and the mirror's)
//   -> candidates from the hash index, descriptor voting and the global
//      (VLAD) tier
//   -> geometric verification of each candidate -> score, verdict, evidence
//   (with read_text, Tesseract's words: earlier ads are verified without
//   the query's keypoints on text)
//
// Thread safety: a Matcher is immutable; Match may be called from many
// threads at once. The ReferenceIndex must outlive the Matcher.
#ifndef SPOOR_MATCHER_H_
#define SPOOR_MATCHER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spoor/image.h"
#include "spoor/local_features.h"
#include "spoor/perceptual_hash.h"
#include "spoor/reference.h"
#include "spoor/text.h"

namespace spoor {

class ReferenceIndex;

// Default match threshold: scores at or above it are reported as matches.
// Chosen from the score distribution of unrelated photos (docs/SCORING.md).
inline constexpr double kDefaultMinScore = 0.5;

enum class Verdict {
  kNoMatch,       ///< below the threshold (listed only when min_score allows)
  kExact,         ///< the same picture, at most rescaled or recompressed
  kModifiedCopy,  ///< the reference picture edited: cropped, mirrored, ...
  kSameItem,      ///< the same object photographed again
};
const char* VerdictName(Verdict v);  ///< "no_match", "exact", ...

// Per-request settings.
struct MatchOptions {
  // Matches returned, best first. Default: 5.
  int max_results = 5;
  // Lowest score returned. Default: kDefaultMinScore. 0 lists every verified
  // candidate with its score (for precision-recall curves).
  double min_score = kDefaultMinScore;
  // Candidates taken from descriptor voting and verified. Default: 8.
  int max_candidates = 8;
  // Candidates taken from the global (VLAD) tier and verified, besides those
  // from voting. Default: 8.
  int max_global_candidates = 8;
  // Candidates taken from the global tier's search of the query's 5x5
  // windows of a third of its side, besides those above (which come from
  // the whole query and its larger windows): one of these windows frames
  // one cell of a seller's 3x3 or 4x4 grid of listings. 0: those windows
  // are not searched. Default: 4.
  int max_cell_candidates = 4;
  // When the index has a voting tier too: at most this many of the
  // candidates above come from the global tier's larger windows, and this
  // many from its 5x5 windows. Beside voting, the global tier's own
  // candidates (those voting did not propose) were most of what was
  // verified on the evaluation set, and verified 1 match in 12,257 at
  // 1,103 references and none in 13,330 at 10,103 (docs/BENCHMARKS.md,
  // "Engine v2, eighth step"); the few kept are a safety net for what
  // voting misses. Defaults: 2 and 1.
  int max_global_candidates_beside_votes = 2;
  int max_cell_candidates_beside_votes = 1;
  // Fewest descriptor votes a candidate needs to be verified. Votes track
  // inliers closely (a verified match has 15 or more; unrelated photos give
  // references under ~15 votes), so this skips hopeless verifications.
  // Perceptual-hash candidates are verified regardless. Default: 8.
  int min_votes = 8;
  // Also match the mirrored query when the direct pass finds nothing at or
  // above min_score. Default: true.
  bool try_mirror = true;
  // Banks searched; empty: every bank, the sightings bank too.
  std::vector<std::string> banks;
  // Fill MatchResult.query_hash and query_features, so the caller can keep
  // the query (a sighting) without describing it again. Default: false.
  bool keep_query = false;
  // Read the words the query shows (ReadText) into MatchResult.text, and
  // verify earlier ads' images (the sightings bank) without the query's
  // keypoints on them or on any text line found, read or not: the same
  // words in the same font are not the same item. With keep_query,
  // query_features leave out the keypoints on the words read (and their
  // lines), so a kept ad is not matched on its words by a later ad either.
  // Costs 20-70 ms an image. Default: false.
  bool read_text = false;
  // Longest side of a JPEG thumbnail of the query to return in
  // MatchResult.thumbnail (for case reports); 0: none. Default: 0.
  int thumbnail_side = 0;
  // Polled between stages; when it returns true the match stops with
  // DeadlineExceeded (a caller's deadline passed, or it went away).
  // Default: never stops.
  std::function<bool()> should_stop;
};

// The transform that takes the reference onto the query.
struct Transform {
  bool mirrored = false;  ///< the query is the reference flipped left-right
  double rotation_degrees = 0;  ///< counter-clockwise, (-180, 180]
  double scale = 1;          ///< query size / reference size (original pixels)
  bool perspective = false;  ///< significantly non-affine (a photo of a screen)
  // Row-major 3x3 homography from reference to query original pixels
  // (applied after the mirror when `mirrored`).
  std::array<double, 9> homography{1, 0, 0, 0, 1, 0, 0, 0, 1};
};

struct Match {
  Reference reference;
  double score = 0;  ///< in [0, 1]; see docs/SCORING.md
  Verdict verdict = Verdict::kNoMatch;
  int inliers = 0;         ///< geometrically consistent keypoint pairs
  int hash_distance = -1;  ///< perceptual-hash bits differing; -1 if not near
  Box query_box;           ///< where the reference appears in the query
  Box ref_box;             ///< which part of the reference appears
  Transform transform;
  // Where the inliers lie in the query, original pixels (empty for a match
  // on the hash alone): what a caller discounting benign regions counts.
  std::vector<std::array<float, 2>> query_inliers;
};

// Milliseconds spent in each stage.
struct StageTimings {
  double decode_ms = 0;
  double hash_ms = 0;
  double text_ms = 0;
  double features_ms = 0;
  double search_ms = 0;
  double verify_ms = 0;
  double total_ms = 0;
};

struct MatchResult {
  std::vector<Match> matches;  ///< best first
  int width = 0;               ///< query size, original pixels
  int height = 0;
  std::string format;
  StageTimings timings;
  // References verified geometrically, over both passes (the mirror pass
  // usually verifies the same ones again).
  int verified = 0;
  // With MatchOptions.keep_query: the query's perceptual hash and local
  // features as a reference would store them (without the keypoints on the
  // words read, with read_text).
  Hash256 query_hash{};
  LocalFeatures query_features;
  std::vector<std::uint8_t> thumbnail;  ///< JPEG, with thumbnail_side
  std::vector<TextWord> text;           ///< with MatchOptions.read_text
  // With MatchOptions.read_text: every text line found, read or not.
  std::vector<Box> text_lines;
};

class Matcher {
 public:
  explicit Matcher(const ReferenceIndex& index);

  // Decodes with the index's decode settings, then matches. InvalidArgument
  // or ResourceExhausted from decoding (see DecodeImage); DeadlineExceeded
  // when options.should_stop says so.
  absl::StatusOr<MatchResult> Match(std::span<const std::uint8_t> bytes,
                                    const MatchOptions& options,
                                    const std::string& name = "query") const;
  // Matches pixels already decoded by DecodeImage with index.options().decode.
  // An error thrown by OpenCV or FAISS comes back as Internal, an allocation
  // failure as ResourceExhausted.
  absl::StatusOr<MatchResult> MatchImage(const Image& image,
                                         const MatchOptions& options) const;

 private:
  absl::StatusOr<MatchResult> MatchImageUnguarded(
      const Image& image, const MatchOptions& options) const;
  const ReferenceIndex& index_;
};

}  // namespace spoor

#endif  // SPOOR_MATCHER_H_
