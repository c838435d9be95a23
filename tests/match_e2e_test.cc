// End-to-end: index real photos, then query disguised copies of every family
// a trafficker uses, the real re-photographed pairs from opencv-doc, and more
// than fifty unrelated photos that must not match. Every test runs twice: with
// the default tiers (voting and global) and with the global tier alone, the
// setting for indexes too large for voting.
#include <filesystem>
#include <opencv2/core/persistence.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "spoor/matcher.h"
#include "spoor/reference_index.h"
#include "test_util.h"

namespace spoor {
namespace {

namespace fs = std::filesystem;
using testing::kOpenCvData;

// Which candidate tiers the index has.
enum class Tiers { kDefault, kGlobalOnly };

std::string TiersName(const ::testing::TestParamInfo<Tiers>& info) {
  return info.param == Tiers::kDefault ? "VotingAndGlobal" : "GlobalOnly";
}

class MatchE2ETest : public ::testing::TestWithParam<Tiers> {
 protected:
  static void SetUpTestSuite() { tmp_ = new testing::TempDir(); }
  static void TearDownTestSuite() {
    for (int i = 0; i < 2; ++i) {
      delete matcher_[i];
      delete index_[i];
      matcher_[i] = nullptr;
      index_[i] = nullptr;
    }
    delete tmp_;
  }
  // Each tier's index is built on first use, so a process that runs one
  // tier's tests (ctest runs each tier as one process) builds one index.
  void SetUp() override {
    int i = static_cast<int>(GetParam());
    if (index_[i] != nullptr) return;
    IndexOptions options;
    if (GetParam() == Tiers::kGlobalOnly) options.descriptor_factory = "none";
    index_[i] = testing::IndexBundledReferences(
                    tmp_->Join("index" + std::to_string(i)), nullptr, options)
                    .release();
    ASSERT_NE(index_[i], nullptr);
    matcher_[i] = new Matcher(*index_[i]);
  }

  const Matcher& matcher() const {
    return *matcher_[static_cast<int>(GetParam())];
  }

  static cv::Mat Reference(const std::string& name) {
    return testing::LoadBgr(testing::ReferenceImagesPath() + "/references/" +
                            name);
  }

  MatchResult Query(const std::vector<std::uint8_t>& bytes,
                    MatchOptions options = {}) const {
    auto result = matcher().Match(bytes, options);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : MatchResult{};
  }

  // The expected reference must come first, at or above the threshold.
  Match ExpectFirst(const std::vector<std::uint8_t>& bytes,
                    const std::string& expected) const {
    MatchResult r = Query(bytes);
    if (r.matches.empty()) {
      ADD_FAILURE() << "no match; expected " << expected;
      return Match{};
    }
    const Match& m = r.matches.front();
    EXPECT_EQ(m.reference.source, expected);
    EXPECT_GE(m.score, kDefaultMinScore);
    EXPECT_NE(m.verdict, Verdict::kNoMatch);
    return m;
  }

  static testing::TempDir* tmp_;
  static ReferenceIndex* index_[2];
  static Matcher* matcher_[2];
};

testing::TempDir* MatchE2ETest::tmp_ = nullptr;
ReferenceIndex* MatchE2ETest::index_[2] = {};
Matcher* MatchE2ETest::matcher_[2] = {};

INSTANTIATE_TEST_SUITE_P(Tiers, MatchE2ETest,
                         ::testing::Values(Tiers::kDefault, Tiers::kGlobalOnly),
                         TiersName);

double IoU(const Box& a, const Box& b) {
  int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  int x1 = std::min(a.x + a.width, b.x + b.width);
  int y1 = std::min(a.y + a.height, b.y + b.height);
  double inter = std::max(0, x1 - x0) * double(std::max(0, y1 - y0));
  double uni = double(a.width) * a.height + double(b.width) * b.height - inter;
  return uni > 0 ? inter / uni : 0;
}

TEST_P(MatchE2ETest, ExactCopyIsExact) {
  Match m = ExpectFirst(
      testing::ReadFile(testing::ReferenceImagesPath() + "/references/owl.jpg"),
      "owl.jpg");
  EXPECT_EQ(m.verdict, Verdict::kExact);
  EXPECT_LE(m.hash_distance, 4);
}

TEST_P(MatchE2ETest, HeavyJpegRecompression) {
  Match m = ExpectFirst(testing::EncodeJpeg(Reference("elephant.jpg"), 12),
                        "elephant.jpg");
  EXPECT_EQ(m.verdict, Verdict::kExact);
}

TEST_P(MatchE2ETest, DownscaledToAQuarter) {
  Match m = ExpectFirst(
      testing::EncodeJpeg(testing::Downscale(Reference("black_rhino.jpg"), 0.2),
                          75),
      "black_rhino.jpg");
  EXPECT_NEAR(m.transform.scale, 0.2, 0.03);
}

TEST_P(MatchE2ETest, TinyThumbnailStillMatchesWithWholeFrameEvidence) {
  // 6 % of the side: 48x36 pixels, too small for many keypoints.
  cv::Mat tiny = testing::Downscale(Reference("elephant.jpg"), 0.06);
  Match m = ExpectFirst(testing::EncodeJpeg(tiny, 90), "elephant.jpg");
  EXPECT_GT(m.query_box.width, 0);
  RecordProperty("inliers", m.inliers);
  RecordProperty("hash_distance", m.hash_distance);
  RecordProperty("score", std::to_string(m.score));
  if (m.inliers == 0) {  // found by the hash alone: the evidence is the frame
    EXPECT_EQ(m.query_box, (Box{0, 0, tiny.cols, tiny.rows}));
    EXPECT_LE(m.hash_distance, 20);
  }
}

TEST_P(MatchE2ETest, CentreCropToAThird) {
  cv::Mat ref = Reference("tiger.jpg");
  // 0.58 x 0.58 of the sides = a third of the area.
  Match m = ExpectFirst(
      testing::EncodeJpeg(testing::Crop(ref, 0.21, 0.21, 0.79, 0.79), 85),
      "tiger.jpg");
  Box expected{
      static_cast<int>(0.21 * ref.cols), static_cast<int>(0.21 * ref.rows),
      static_cast<int>(0.58 * ref.cols), static_cast<int>(0.58 * ref.rows)};
  EXPECT_GT(IoU(m.ref_box, expected), 0.8);
  EXPECT_EQ(m.verdict, Verdict::kModifiedCopy);
}

TEST_P(MatchE2ETest, OffCentreCrop) {
  ExpectFirst(
      testing::EncodeJpeg(
          testing::Crop(Reference("gorilla.jpg"), 0.35, 0.3, 0.95, 0.85), 85),
      "gorilla.jpg");
}

TEST_P(MatchE2ETest, MirroredIsReportedAsMirrored) {
  cv::Mat flipped;
  cv::flip(Reference("chimpanzee.jpg"), flipped, 1);
  Match m = ExpectFirst(testing::EncodeJpeg(flipped, 85), "chimpanzee.jpg");
  EXPECT_TRUE(m.transform.mirrored);
  EXPECT_EQ(m.verdict, Verdict::kModifiedCopy);
}

TEST_P(MatchE2ETest, MirroredAndCropped) {
  cv::Mat flipped;
  cv::flip(testing::Crop(Reference("sumatran_tiger.jpg"), 0.1, 0.1, 0.7, 0.8),
           flipped, 1);
  Match m = ExpectFirst(testing::EncodeJpeg(flipped, 80), "sumatran_tiger.jpg");
  EXPECT_TRUE(m.transform.mirrored);
}

TEST_P(MatchE2ETest, RotatedByRightAngles) {
  cv::Mat r90, r180;
  cv::rotate(Reference("quetzal.jpg"), r90, cv::ROTATE_90_CLOCKWISE);
  Match m = ExpectFirst(testing::EncodeJpeg(r90, 85), "quetzal.jpg");
  EXPECT_NEAR(m.transform.rotation_degrees, -90, 3);  // clockwise
  cv::rotate(Reference("owl.jpg"), r180, cv::ROTATE_180);
  m = ExpectFirst(testing::EncodeJpeg(r180, 85), "owl.jpg");
  EXPECT_NEAR(std::abs(m.transform.rotation_degrees), 180, 3);
}

TEST_P(MatchE2ETest, SmallRotation) {
  Match m = ExpectFirst(
      testing::EncodeJpeg(testing::Rotate(Reference("seahorse.jpg"), 12), 85),
      "seahorse.jpg");
  EXPECT_NEAR(m.transform.rotation_degrees, 12, 2);
}

TEST_P(MatchE2ETest, PerspectiveWarpLikeAPhotoOfAScreen) {
  Match m = ExpectFirst(
      testing::EncodeJpeg(
          testing::PerspectiveWarp(Reference("sumatran_tiger.jpg"), 0.15), 80),
      "sumatran_tiger.jpg");
  EXPECT_TRUE(m.transform.perspective);
}

TEST_P(MatchE2ETest, PhoneNumberOverlay) {
  ExpectFirst(
      testing::EncodeJpeg(testing::AddText(Reference("emperor_tamarin.jpg"),
                                           "+254 712 555 019"),
                          80),
      "emperor_tamarin.jpg");
}

TEST_P(MatchE2ETest, TiledWatermark) {
  ExpectFirst(
      testing::EncodeJpeg(testing::TiledWatermark(Reference("elephant.jpg"),
                                                  "WhatsApp 0712555019"),
                          80),
      "elephant.jpg");
}

TEST_P(MatchE2ETest, ColouredPadding) {
  Match m = ExpectFirst(
      testing::EncodeJpeg(testing::Pad(Reference("black_rhino.jpg"), 120,
                                       cv::Scalar(40, 200, 240)),
                          85),
      "black_rhino.jpg");
  // The reference sits inside the padding: 240 px in from the left.
  EXPECT_NEAR(m.query_box.x, 240, 12);
  EXPECT_NEAR(m.query_box.y, 120, 12);
}

TEST_P(MatchE2ETest, OneCellOfACollage) {
  cv::Mat collage = testing::Collage(
      {testing::LoadBgr(kOpenCvData + "/fruits.jpg"),
       testing::LoadBgr(kOpenCvData + "/building.jpg"),
       testing::LoadBgr(kOpenCvData + "/baboon.jpg"), Reference("tiger.jpg"),
       testing::LoadBgr(kOpenCvData + "/home.jpg"),
       testing::LoadBgr(kOpenCvData + "/orange.jpg")},
      3, cv::Size(400, 300));
  Match m = ExpectFirst(testing::EncodeJpeg(collage, 85), "tiger.jpg");
  // Cell 3 is the first of the second row: (0, 300, 400, 300).
  EXPECT_GT(IoU(m.query_box, Box{0, 300, 400, 300}), 0.85);
}

TEST_P(MatchE2ETest, InsideAPhoneScreenshot) {
  ExpectFirst(
      testing::EncodeJpeg(testing::Screenshot(Reference("gorilla.jpg")), 80),
      "gorilla.jpg");
}

TEST_P(MatchE2ETest, StrongColourChange) {
  ExpectFirst(testing::EncodeJpeg(
                  testing::ColourShift(Reference("chimpanzee.jpg")), 85),
              "chimpanzee.jpg");
}

TEST_P(MatchE2ETest, Greyscale) {
  ExpectFirst(
      testing::EncodeJpeg(testing::Greyscale(Reference("quetzal.jpg")), 85),
      "quetzal.jpg");
}

TEST_P(MatchE2ETest, BlurWithNoise) {
  ExpectFirst(
      testing::EncodeJpeg(testing::BlurNoise(Reference("owl.jpg"), 7), 80),
      "owl.jpg");
}

TEST_P(MatchE2ETest, StickersCoveringThirtyPercent) {
  ExpectFirst(testing::EncodeJpeg(
                  testing::Stickers(Reference("seahorse.jpg"), 0.3, 11), 85),
              "seahorse.jpg");
}

TEST_P(MatchE2ETest, ChainOfThreeEdits) {
  cv::Mat m =
      testing::Crop(Reference("emperor_tamarin.jpg"), 0.05, 0.1, 0.8, 0.95);
  cv::flip(m, m, 1);
  m = testing::AddText(testing::ColourShift(m), "DM for price");
  Match match = ExpectFirst(testing::EncodeJpeg(m, 40), "emperor_tamarin.jpg");
  EXPECT_TRUE(match.transform.mirrored);
}

TEST_P(MatchE2ETest, SameCutOutOnAnotherBackgroundIsTheSameItem) {
  // The elephant of elephant.jpg again, smaller, tilted and darker, on a
  // background no reference uses.
  cv::Mat scene = testing::Composite(
      testing::LoadStampBgra("mammals/elephant.png"),
      testing::Wallpaper("Grey", cv::Size(900, 700)), 0.6, 0.4, 0.55, 8, 0.85);
  Match m = ExpectFirst(testing::EncodeJpeg(scene, 85), "elephant.jpg");
  EXPECT_EQ(m.verdict, Verdict::kSameItem);
  RecordProperty("inliers", m.inliers);
  RecordProperty("score", std::to_string(m.score));
}

TEST_P(MatchE2ETest, BoxFoundInBoxInScene) {
  Match m = ExpectFirst(testing::ReadFile(kOpenCvData + "/box_in_scene.png"),
                        "box.png");
  // The box, as measured by eye on box_in_scene.png (512x384).
  Box truth{95, 160, 180, 140};
  EXPECT_GT(IoU(m.query_box, truth), 0.6)
      << m.query_box.x << "," << m.query_box.y << " " << m.query_box.width
      << "x" << m.query_box.height;
  EXPECT_GE(m.inliers, 20);
  EXPECT_EQ(m.verdict, Verdict::kSameItem);
}

TEST_P(MatchE2ETest, Graf1FoundInGraf3WithTheTrueHomography) {
  Match m =
      ExpectFirst(testing::ReadFile(kOpenCvData + "/graf3.png"), "graf1.jpg");
  cv::FileStorage fsx(kOpenCvData + "/H1to3p.xml", cv::FileStorage::READ);
  cv::Mat truth;
  fsx["H13"] >> truth;
  ASSERT_EQ(truth.rows, 3);
  // Project a few reference points with both homographies: they must agree
  // within a few pixels.
  for (cv::Point2d p :
       {cv::Point2d(200, 200), cv::Point2d(600, 200), cv::Point2d(400, 450)}) {
    cv::Mat v = truth * (cv::Mat_<double>(3, 1) << p.x, p.y, 1);
    cv::Point2d t(v.at<double>(0) / v.at<double>(2),
                  v.at<double>(1) / v.at<double>(2));
    const auto& h = m.transform.homography;
    double w = h[6] * p.x + h[7] * p.y + h[8];
    cv::Point2d e((h[0] * p.x + h[1] * p.y + h[2]) / w,
                  (h[3] * p.x + h[4] * p.y + h[5]) / w);
    EXPECT_LT(cv::norm(e - t), 6.0) << p;
  }
}

// Photos that show none of the references: opencv-doc's photos, and
// cut-outs of other animals on backgrounds no reference uses.
std::vector<std::pair<std::string, std::vector<std::uint8_t>>>
UnrelatedPhotos() {
  std::vector<std::pair<std::string, std::vector<std::uint8_t>>> out;
  for (const auto& e : fs::directory_iterator(kOpenCvData)) {
    std::string name = e.path().filename().string();
    std::string ext = e.path().extension().string();
    if (ext != ".jpg" && ext != ".png") continue;
    if (name.rfind("box", 0) == 0 || name.rfind("graf", 0) == 0) continue;
    out.emplace_back(name, testing::ReadFile(e.path().string()));
  }
  const char* stamps[] = {
      "mammals/cats/lion.png",         "mammals/equines/zebra.png",
      "mammals/giraffe.png",           "mammals/hippopotamus.png",
      "marsupials/koala.png",          "marsupials/kangaroo.png",
      "mammals/bears/bear.png",        "mammals/camel/camel.png",
      "mammals/dogs/fox.png",          "mammals/deer/deer.png",
      "birds/helmeted_guineafowl.png", "mammals/cats/lion-2.png"};
  const char* walls[] = {"PastelHills", "Grey", "FlyingKonqui"};
  int i = 0;
  for (const char* stamp : stamps) {
    cv::Mat scene =
        testing::Composite(testing::LoadStampBgra(stamp),
                           testing::Wallpaper(walls[i % 3], cv::Size(800, 600)),
                           0.7, 0.3 + 0.04 * (i % 10), 0.5, (i % 5) * 3.0);
    out.emplace_back(stamp, testing::EncodeJpeg(scene, 85));
    ++i;
  }
  return out;
}

TEST_P(MatchE2ETest, FiftyUnrelatedPhotosMatchNothing) {
  auto photos = UnrelatedPhotos();
  ASSERT_GE(photos.size(), 50u);
  int false_matches = 0;
  double worst = 0;
  MatchOptions all;  // every scored candidate, to see how close they come
  all.min_score = 0;
  for (const auto& [name, bytes] : photos) {
    auto result = matcher().Match(bytes, all, name);
    ASSERT_OK(result);
    for (const auto& m : result->matches) {
      worst = std::max(worst, m.score);
      if (m.score >= kDefaultMinScore) {
        ++false_matches;
        ADD_FAILURE() << name << " matched " << m.reference.source << " score "
                      << m.score << " inliers " << m.inliers;
      }
    }
  }
  EXPECT_EQ(false_matches, 0);
  EXPECT_LT(worst, kDefaultMinScore);
  RecordProperty("highest_unrelated_score", std::to_string(worst));
  RecordProperty("unrelated_photos", static_cast<int>(photos.size()));
}

// Beside a voting tier, the global tier proposes at most 2 + 1 candidates
// of its own by default (MatchOptions::max_*_beside_votes): unrelated photos
// are verified against fewer references than with its full 8 + 4, and with
// the global tier alone the full budgets apply either way.
TEST_P(MatchE2ETest, GlobalTierProposesFewCandidatesBesideVotes) {
  auto photos = UnrelatedPhotos();
  ASSERT_GE(photos.size(), 5u);
  MatchOptions full;
  full.max_global_candidates_beside_votes = full.max_global_candidates;
  full.max_cell_candidates_beside_votes = full.max_cell_candidates;
  int verified_default = 0, verified_full = 0;
  for (int i = 0; i < 5; ++i) {
    const auto& [name, bytes] = photos[i];
    auto by_default = matcher().Match(bytes, {}, name);
    auto with_full = matcher().Match(bytes, full, name);
    ASSERT_OK(by_default);
    ASSERT_OK(with_full);
    EXPECT_LE(by_default->verified, with_full->verified) << name;
    if (GetParam() == Tiers::kGlobalOnly) {
      EXPECT_EQ(by_default->verified, with_full->verified) << name;
    }
    verified_default += by_default->verified;
    verified_full += with_full->verified;
  }
  EXPECT_GT(verified_default, 0);
  if (GetParam() == Tiers::kDefault) {
    EXPECT_LT(verified_default, verified_full);
  }
  RecordProperty("verified_default", verified_default);
  RecordProperty("verified_full", verified_full);
}

TEST_P(MatchE2ETest, MinScoreZeroListsCandidatesBelowTheThreshold) {
  MatchOptions all;
  all.min_score = 0;
  all.max_results = 20;
  MatchResult r =
      Query(testing::ReadFile(kOpenCvData + "/box_in_scene.png"), all);
  ASSERT_FALSE(r.matches.empty());
  EXPECT_EQ(r.matches[0].reference.source, "box.png");
  for (size_t i = 1; i < r.matches.size(); ++i) {
    EXPECT_LE(r.matches[i].score, r.matches[i - 1].score);
  }
  EXPECT_EQ(r.width, 512);
  EXPECT_EQ(r.height, 384);
  EXPECT_EQ(r.format, "png");
  EXPECT_GT(r.timings.total_ms, 0);
  EXPECT_GT(r.timings.features_ms, 0);
}

TEST_P(MatchE2ETest, ConcurrentQueriesGiveTheSameAnswers) {
  std::vector<std::vector<std::uint8_t>> queries = {
      testing::ReadFile(kOpenCvData + "/box_in_scene.png"),
      testing::ReadFile(kOpenCvData + "/graf3.png"),
      testing::EncodeJpeg(testing::Downscale(Reference("tiger.jpg"), 0.5), 70),
      testing::ReadFile(kOpenCvData + "/fruits.jpg")};
  std::vector<MatchResult> serial;
  for (const auto& q : queries) serial.push_back(Query(q));
  std::vector<MatchResult> parallel(queries.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < queries.size(); ++i)
    threads.emplace_back([&, i] { parallel[i] = Query(queries[i]); });
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < queries.size(); ++i) {
    ASSERT_EQ(parallel[i].matches.size(), serial[i].matches.size()) << i;
    for (size_t j = 0; j < serial[i].matches.size(); ++j) {
      EXPECT_EQ(parallel[i].matches[j].reference.id,
                serial[i].matches[j].reference.id);
      EXPECT_EQ(parallel[i].matches[j].inliers, serial[i].matches[j].inliers);
    }
  }
}

TEST(BlankPictures, MatchNoBlankReference) {
  // Every flat picture hashes alike, so before the hash tier looked at
  // contrast a blank ad "exactly" matched any blank reference, whatever its
  // colour. Blank pictures carry no evidence and must match nothing.
  testing::TempDir tmp;
  auto index = ReferenceIndex::Create(tmp.Join("index"), IndexOptions{});
  ASSERT_OK(index);
  auto photo = testing::ReadFile(kOpenCvData + "/baboon.jpg");
  ASSERT_OK((*index)->Add(photo, "baboon.jpg", Labels{}));
  cv::Mat flat(300, 400, CV_8UC3, cv::Scalar(40, 120, 200));
  ASSERT_OK((*index)->Add(testing::EncodeJpeg(flat, 90), "flat.jpg", Labels{}));
  ASSERT_OK((*index)->Save());
  Matcher matcher(**index);
  MatchOptions all;
  all.min_score = 0;
  for (const cv::Scalar& colour :
       {cv::Scalar(40, 120, 200), cv::Scalar(255, 255, 255),
        cv::Scalar(0, 0, 0)}) {
    cv::Mat blank(480, 640, CV_8UC3, colour);
    for (const auto& bytes :
         {testing::EncodeJpeg(blank, 60), testing::EncodePng(blank)}) {
      auto result = matcher.Match(bytes, all);
      ASSERT_OK(result);
      for (const Match& m : result->matches)
        ADD_FAILURE() << "a blank picture matched " << m.reference.source
                      << " with score " << m.score;
    }
  }
  // The hash tier still answers for pictures with content.
  auto copy = matcher.Match(photo, MatchOptions{});
  ASSERT_OK(copy);
  ASSERT_FALSE(copy->matches.empty());
  EXPECT_EQ(copy->matches[0].reference.source, "baboon.jpg");
  EXPECT_EQ(copy->matches[0].verdict, Verdict::kExact);
  EXPECT_EQ(copy->matches[0].hash_distance, 0);
}

}  // namespace
}  // namespace spoor
