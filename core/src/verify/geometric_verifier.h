// Geometric verification: are the local features of a query and a reference
// related by one plane-to-plane transform? Descriptor matching with Lowe's
// ratio test on exact nearest neighbours (descriptor_matching.h), then a
// homography fitted by MAGSAC++ (cv::USAC_MAGSAC).
//
// Thread safety: pure function.
#ifndef SPOOR_VERIFY_GEOMETRIC_VERIFIER_H_
#define SPOOR_VERIFY_GEOMETRIC_VERIFIER_H_

#include <array>
#include <vector>

#include "spoor/local_features.h"
#include "verify/descriptor_matching.h"

namespace spoor {

struct VerifyOptions {
  // Lowe's ratio: best match kept when closer than ratio * second best.
  // Default: 0.8.
  float ratio = 0.8f;
  // MAGSAC++ threshold as a fraction of the query's longest side.
  // Default: 0.01 (8 px at 800 px).
  double reprojection_fraction = 0.01;
  // Fewest ratio-test matches worth fitting. Default: 8.
  int min_matches = 8;
  // How nearest neighbours are found (descriptor_matching.h); the kernels
  // keep the same pairs but for float rounding on the ratio's edge.
  // Default: the fastest this processor has.
  MatchKernel kernel = MatchKernel::kBest;
};

struct Verification {
  int matches = 0;  ///< pairs that passed the ratio test
  int inliers = 0;  ///< pairs consistent with `homography` (0 when rejected)
  // Row-major 3x3 map from reference feature coordinates to query feature
  // coordinates. Valid when inliers > 0.
  std::array<double, 9> homography{};
  // Feature-coordinate positions of the inliers in the query.
  std::vector<std::array<float, 2>> query_inliers;
};

Verification VerifyGeometry(const LocalFeatures& query,
                            const LocalFeatures& reference,
                            const VerifyOptions& options);

}  // namespace spoor

#endif  // SPOOR_VERIFY_GEOMETRIC_VERIFIER_H_
