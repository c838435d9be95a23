// Sightings over a real index of the bundled references and real photos:
// recording, links between relisted ads, seller links, clusters, reviews,
// deletion (the image really gone), retention, restart and the migration of
// an index made before banks existed.
#include "spoor/sightings.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <opencv2/core.hpp>

#include "spoor/matcher.h"
#include "spoor/reference_index.h"
#include "test_util.h"

namespace spoor {
namespace {

using testing::kOpenCvData;

std::vector<std::uint8_t> Photo(const std::string& name, double x0 = 0,
                                double y0 = 0, double x1 = 1, double y1 = 1,
                                bool mirror = false, int quality = 90) {
  cv::Mat m =
      testing::Crop(testing::LoadBgr(kOpenCvData + "/" + name), x0, y0, x1, y1);
  if (mirror) cv::flip(m, m, 1);
  return testing::EncodeJpeg(m, quality);
}

AdContext Ad(const std::string& ad_id, const std::string& seller,
             const std::string& platform = "bazaar") {
  return AdContext{platform,
                   ad_id,
                   seller,
                   "2026-11-0" + ad_id.substr(ad_id.size() - 1) + "T10:00:00Z",
                   "carving " + ad_id,
                   "https://bazaar.example/" + ad_id};
}

class SightingsTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    log_.reset();
    matcher_.reset();
    index_.reset();
    if (!std::filesystem::exists(tmp_.Join("index"))) {
      index_ = testing::IndexBundledReferences(tmp_.Join("index"), nullptr,
                                               options_);
    } else {
      auto opened = ReferenceIndex::Open(tmp_.Join("index"));
      ASSERT_OK(opened);
      index_ = std::move(*opened);
    }
    ASSERT_NE(index_, nullptr);
    matcher_ = std::make_unique<Matcher>(*index_);
    auto log = SightingLog::Open(*index_);
    ASSERT_OK(log);
    log_ = std::move(*log);
  }

  MatchResult MatchBytes(const std::vector<std::uint8_t>& bytes,
                         std::vector<std::string> banks = {}) {
    MatchOptions o;
    o.keep_query = true;
    o.read_text = read_text_;
    o.max_results = 20;
    o.banks = std::move(banks);
    auto r = matcher_->Match(bytes, o);
    EXPECT_OK(r);
    return r.ok() ? *r : MatchResult{};
  }

  Recorded Record(const AdContext& ad, const std::vector<std::uint8_t>& bytes,
                  const std::string& seen_at = "2026-12-01T00:00:00Z") {
    MatchResult r = MatchBytes(bytes);
    auto recorded =
        log_->Record(ad, Sha256Hex(bytes.data(), bytes.size()),
                     static_cast<std::int64_t>(bytes.size()), r, seen_at);
    EXPECT_OK(recorded);
    return recorded.ok() ? *recorded : Recorded{};
  }

  // Sightings-bank matches of `bytes`.
  int SightingMatches(const std::vector<std::uint8_t>& bytes) {
    int n = 0;
    for (const Match& m : MatchBytes(bytes).matches)
      n += m.reference.bank == kSightingsBank;
    return n;
  }

  // Starts again from the bundled references stored as the engine before
  // schema 4 stored them (descriptors in packing 2), for the tests that
  // take the database back to an older schema.
  void StartAsAnOlderEngine() {
    log_.reset();
    matcher_.reset();
    index_.reset();
    std::filesystem::remove_all(tmp_.Join("index"));
    options_.stored_packing = 2;
    Open();
  }

  // Closes the index, runs `sql` on its database (to take it back to an
  // older schema) and opens it again.
  void ReopenAfter(const char* sql) {
    log_.reset();
    matcher_.reset();
    index_.reset();
    {
      SQLite::Database db(tmp_.Join("index/references.db"),
                          SQLite::OPEN_READWRITE);
      db.exec(sql);
    }
    Open();
  }

  bool read_text_ = true;  // as the service records sightings
  IndexOptions options_;
  testing::TempDir tmp_;
  std::unique_ptr<ReferenceIndex> index_;
  std::unique_ptr<Matcher> matcher_;
  std::unique_ptr<SightingLog> log_;
};

TEST_F(SightingsTest, ARelistUnderAnotherAccountIsLinkedToTheFirstAd) {
  Recorded first =
      Record(Ad("a1", "alice"), Photo("aero1.jpg", 0, 0, 0.8, 0.9));
  EXPECT_TRUE(first.created);
  EXPECT_TRUE(first.earlier.empty());
  EXPECT_TRUE(first.sighting.matches.empty());  // no reference shows aero1
  EXPECT_EQ(first.sighting.ad.seller_id, "alice");
  auto image = index_->Get(first.sighting.image_id);
  ASSERT_OK(image);
  EXPECT_EQ(image->bank, kSightingsBank);

  // The same photo, cropped differently, mirrored and recompressed, on
  // another account.
  Recorded relist =
      Record(Ad("b2", "bob"), Photo("aero1.jpg", 0.15, 0.1, 1, 1, true, 60));
  ASSERT_EQ(relist.earlier.size(), 1u);
  const Recorded::Earlier& e = relist.earlier[0];
  EXPECT_EQ(e.sighting.id, first.sighting.id);
  EXPECT_EQ(e.sighting.ad.seller_id, "alice");
  EXPECT_EQ(e.link.newer_id, relist.sighting.id);
  EXPECT_GE(e.link.score, kDefaultMinScore);
  EXPECT_EQ(e.link.verdict, Verdict::kModifiedCopy);
  EXPECT_GT(e.link.inliers, 15);
  EXPECT_GT(e.link.newer_box.width, 0);

  auto linked = log_->SellerLinks({"bazaar", "alice"}, kDefaultMinScore);
  ASSERT_OK(linked);
  ASSERT_EQ(linked->size(), 1u);
  EXPECT_EQ((*linked)[0].seller, (Seller{"bazaar", "bob"}));
  EXPECT_EQ((*linked)[0].links[0].id, e.link.id);

  // An unrelated ad by a third seller links to nobody.
  Recorded other = Record(Ad("c3", "carol"), Photo("baboon.jpg"));
  EXPECT_TRUE(other.earlier.empty());
  auto carol = log_->SellerLinks({"bazaar", "carol"}, kDefaultMinScore);
  ASSERT_OK(carol);
  EXPECT_TRUE(carol->empty());

  auto clusters = log_->Clusters(kDefaultMinScore);
  ASSERT_OK(clusters);
  ASSERT_EQ(clusters->size(), 1u);
  EXPECT_EQ((*clusters)[0].id, first.sighting.id);
  EXPECT_EQ((*clusters)[0].sighting_ids,
            (std::vector<std::int64_t>{first.sighting.id, relist.sighting.id}));
  EXPECT_EQ((*clusters)[0].sellers,
            (std::vector<Seller>{{"bazaar", "alice"}, {"bazaar", "bob"}}));
  auto of = log_->ClusterOf(relist.sighting.id, kDefaultMinScore);
  ASSERT_OK(of);
  EXPECT_EQ(of->id, first.sighting.id);
  EXPECT_EQ(
      log_->ClusterOf(other.sighting.id, kDefaultMinScore).status().code(),
      absl::StatusCode::kNotFound);
}

TEST_F(SightingsTest, TheSameBytesInAnotherAdAreAnExactLink) {
  auto bytes = Photo("leuvenA.jpg");
  Recorded a = Record(Ad("a1", "alice"), bytes);
  Recorded b = Record(Ad("a2", "alice2", "otherplace"), bytes);
  EXPECT_EQ(a.sighting.image_id, b.sighting.image_id);  // stored once
  ASSERT_EQ(b.earlier.size(), 1u);
  EXPECT_EQ(b.earlier[0].link.verdict, Verdict::kExact);
  EXPECT_EQ(b.earlier[0].sighting.ad.platform, "bazaar");
}

TEST_F(SightingsTest, TheSameAdAgainIsOneSightingAndNeverItsOwnLink) {
  auto bytes = Photo("leuvenA.jpg");
  Recorded a = Record(Ad("a1", "alice"), bytes);
  Recorded again = Record(Ad("a1", "alice"), bytes);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.sighting.id, a.sighting.id);
  // The same ad with a second photo of the item: not a link to itself.
  Recorded second =
      Record(Ad("a1", "alice"), Photo("leuvenA.jpg", 0.1, 0.1, 1, 1));
  EXPECT_TRUE(second.created);
  EXPECT_TRUE(second.earlier.empty());
  auto stats = log_->Stats();
  ASSERT_OK(stats);
  EXPECT_EQ(stats->sightings, 2);
  EXPECT_EQ(stats->links, 0);
}

TEST_F(SightingsTest, MatchesWithReferencesAreKeptWithBankAndLabels) {
  cv::Mat tiger = testing::LoadBgr(testing::ReferenceImagesPath() +
                                   "/references/sumatran_tiger.jpg");
  auto ad_image =
      testing::EncodeJpeg(testing::Crop(tiger, 0.1, 0.1, 0.9, 0.9), 70);
  Recorded r = Record(Ad("t1", "tom"), ad_image);
  ASSERT_FALSE(r.sighting.matches.empty());
  const SightingMatch& m = r.sighting.matches[0];
  EXPECT_EQ(m.reference.source, "sumatran_tiger.jpg");
  EXPECT_EQ(m.reference.bank, kDefaultBank);
  EXPECT_GE(m.score, kDefaultMinScore);

  auto of_ref = log_->ForReference(m.reference.id);
  ASSERT_OK(of_ref);
  ASSERT_EQ(of_ref->size(), 1u);
  EXPECT_EQ((*of_ref)[0].ad.ad_id, "t1");

  SightingFilter in_bank;
  in_bank.bank = kDefaultBank;
  auto listed = log_->List(in_bank, 0, 10);
  ASSERT_OK(listed);
  EXPECT_EQ(listed->size(), 1u);
  in_bank.bank = "known-ivory";
  EXPECT_TRUE(log_->List(in_bank, 0, 10)->empty());

  // A sighting's image is no reference: ListReferences leaves it out.
  auto refs = index_->List(0, 1000);
  ASSERT_OK(refs);
  for (const Reference& ref : *refs) EXPECT_NE(ref.bank, kSightingsBank);
  auto images = index_->List(0, 1000, {"bank", kSightingsBank});
  ASSERT_OK(images);
  EXPECT_EQ(images->size(), 1u);
}

TEST_F(SightingsTest, ListFiltersBySellerPlatformAndTime) {
  Record(Ad("a1", "alice"), Photo("leuvenA.jpg"));
  Record(Ad("a2", "alice"), Photo("baboon.jpg"));
  Record(Ad("b3", "bob"), Photo("fruits.jpg"));
  SightingFilter f;
  f.seller_id = "alice";
  EXPECT_EQ(log_->List(f, 0, 10)->size(), 2u);
  f.since = "2026-11-02T00:00:00Z";  // listing times are days 1, 2 and 3
  EXPECT_EQ(log_->List(f, 0, 10)->size(), 1u);
  f = {};
  f.platform = "elsewhere";
  EXPECT_TRUE(log_->List(f, 0, 10)->empty());
  // Paging by id.
  auto page = log_->List({}, 0, 2);
  ASSERT_EQ(page->size(), 2u);
  auto rest = log_->List({}, page->back().id, 2);
  ASSERT_EQ(rest->size(), 1u);
  EXPECT_EQ((*rest)[0].ad.ad_id, "b3");
  f = {};
  f.label = {"colour", "red"};
  EXPECT_EQ(log_->List(f, 0, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SightingsTest, DeleteBySellerRemovesTheImageFromEveryStoreAndIndex) {
  auto bytes = Photo("aero3.jpg");
  Recorded a = Record(Ad("a1", "alice"), bytes);
  Record(Ad("b1", "bob"), Photo("aero3.jpg", 0.1, 0.1, 1, 1, false, 60));
  ASSERT_EQ(SightingMatches(bytes), 2);
  std::int64_t before = index_->Stats().sighting_images;
  // Her ad's URL is in the database file (once the log is checkpointed)...
  auto file_holds = [&](const std::string& text) {
    SQLite::Database db(tmp_.Join("index/references.db"),
                        SQLite::OPEN_READWRITE);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    auto raw = testing::ReadFile(tmp_.Join("index/references.db"));
    return std::search(raw.begin(), raw.end(), text.begin(), text.end()) !=
           raw.end();
  };
  ASSERT_TRUE(file_holds("https://bazaar.example/a1"));

  auto deleted = log_->Delete({"bazaar", "", "alice", ""});
  ASSERT_OK(deleted);
  EXPECT_EQ(deleted->sightings, 1);
  EXPECT_EQ(deleted->images, 1);
  EXPECT_EQ(log_->Get(a.sighting.id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(index_->Get(a.sighting.image_id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(index_->Stats().sighting_images, before - 1);
  // Bob's copy still matches; Alice's image does not any more.
  EXPECT_EQ(SightingMatches(bytes), 1);
  EXPECT_OK(index_->Verify());
  auto links = log_->Stats();
  EXPECT_EQ(links->links, 0);  // the link went with her sighting

  // Nothing of hers is left in the database file either.
  SQLite::Database db(tmp_.Join("index/references.db"));
  EXPECT_EQ(db.execAndGet("SELECT COUNT(*) FROM sightings WHERE seller_id = "
                          "'alice'")
                .getInt(),
            0);
  SQLite::Statement q(db, "SELECT COUNT(*) FROM refs WHERE sha256 = ?");
  q.bind(1, Sha256Hex(bytes.data(), bytes.size()));
  ASSERT_TRUE(q.executeStep());
  EXPECT_EQ(q.getColumn(0).getInt(), 0);
  // ... and not even in its free pages after the delete (secure_delete).
  EXPECT_FALSE(file_holds("https://bazaar.example/a1"));
  EXPECT_TRUE(file_holds("https://bazaar.example/b1"));

  EXPECT_EQ(log_->Delete({"bazaar", "", "", ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(log_->Delete({"", "a1", "", ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SightingsTest, DeletingAnAdKeepsAReferenceItShowed) {
  auto bytes =
      testing::ReadFile(testing::ReferenceImagesPath() + "/references/owl.jpg");
  Recorded r = Record(Ad("o1", "oscar"), bytes);
  auto ref = index_->Get(r.sighting.image_id);
  ASSERT_OK(ref);
  EXPECT_EQ(ref->bank, kDefaultBank);  // the ad showed a reference's bytes
  auto deleted = log_->Delete({"bazaar", "o1", "", ""});
  ASSERT_OK(deleted);
  EXPECT_EQ(deleted->sightings, 1);
  EXPECT_EQ(deleted->images, 0);
  EXPECT_OK(index_->Get(r.sighting.image_id));
}

TEST_F(SightingsTest, RetentionDeletesSightingsSeenBeforeTheCutOff) {
  Record(Ad("a1", "alice"), Photo("leuvenA.jpg"), "2026-01-01T00:00:00Z");
  Record(Ad("a2", "alice"), Photo("baboon.jpg"), "2026-06-01T00:00:00Z");
  Record(Ad("a3", "alice", "keepsall"), Photo("fruits.jpg"),
         "2026-01-01T00:00:00Z");
  auto deleted = log_->Delete({"bazaar", "", "", "2026-03-01T00:00:00Z"});
  ASSERT_OK(deleted);
  EXPECT_EQ(deleted->sightings, 1);
  auto left = log_->List({}, 0, 10);
  ASSERT_EQ(left->size(), 2u);
  EXPECT_EQ((*left)[0].ad.ad_id, "a2");
  EXPECT_EQ((*left)[1].ad.platform, "keepsall");
}

TEST_F(SightingsTest, ARejectedLinkStopsLinkingAndCountsInPrecision) {
  Record(Ad("a1", "alice"), Photo("aero1.jpg", 0, 0, 0.8, 0.9));
  Recorded b = Record(Ad("b1", "bob"), Photo("aero1.jpg", 0.1, 0.1, 1, 1));
  ASSERT_EQ(b.earlier.size(), 1u);
  std::int64_t link = b.earlier[0].link.id;
  auto reviewed =
      log_->ReviewLink(link, Review::kRejected, "same stock photo", "inv-1");
  ASSERT_OK(reviewed);
  EXPECT_EQ(reviewed->review, Review::kRejected);
  EXPECT_EQ(reviewed->reviewer, "inv-1");
  EXPECT_TRUE(log_->SellerLinks({"bazaar", "alice"}, 0.5)->empty());
  EXPECT_TRUE(log_->Clusters(0.5)->empty());
  auto stats = log_->Stats();
  ASSERT_OK(stats);
  ASSERT_EQ(stats->review_precision.size(), 1u);
  EXPECT_EQ(stats->review_precision[0].bank, kSightingsBank);
  EXPECT_EQ(stats->review_precision[0].rejected, 1);
  EXPECT_EQ(
      log_->ReviewLink(link + 100, Review::kConfirmed, "", "x").status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_EQ(log_->ReviewLink(link, Review::kNone, "", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SightingsTest, RemovingAReferenceAnAdShowedKeepsItAsTheAdsImage) {
  auto bytes =
      testing::ReadFile(testing::ReferenceImagesPath() + "/references/owl.jpg");
  Recorded r = Record(Ad("o1", "oscar"), bytes);
  ASSERT_OK(index_->Remove(r.sighting.image_id));
  auto image = index_->Get(r.sighting.image_id);
  ASSERT_OK(image);
  EXPECT_EQ(image->bank, kSightingsBank);
  EXPECT_TRUE(image->labels == Labels{});
  EXPECT_EQ(SightingMatches(bytes), 1);  // still found, as a sighting
  EXPECT_EQ(index_->Remove(r.sighting.image_id).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_OK(index_->Verify());
}

TEST_F(SightingsTest, AReferenceAddedLaterIsLinkedBackToEarlierSightings) {
  Recorded r = Record(Ad("h1", "hana"), Photo("home.jpg", 0.1, 0.1, 0.9, 0.9));
  auto bytes = Photo("home.jpg");
  auto added = index_->Add(bytes, "home.jpg", {}, "case-2026-014");
  ASSERT_OK(added);
  MatchResult m = MatchBytes(bytes, {kSightingsBank});
  auto linked = log_->LinkReference(added->id, m);
  ASSERT_OK(linked);
  ASSERT_EQ(linked->size(), 1u);
  EXPECT_EQ((*linked)[0].id, r.sighting.id);
  ASSERT_EQ((*linked)[0].matches.size(), 1u);
  EXPECT_TRUE((*linked)[0].matches[0].retroactive);
  EXPECT_EQ((*linked)[0].matches[0].reference.bank, "case-2026-014");
  EXPECT_EQ(log_->ForReference(added->id)->size(), 1u);
}

TEST_F(SightingsTest, SightingsAndLinksSurviveARestart) {
  Record(Ad("a1", "alice"), Photo("aero1.jpg", 0, 0, 0.8, 0.9));
  Recorded b = Record(Ad("b1", "bob"), Photo("aero1.jpg", 0.1, 0.1, 1, 1));
  ASSERT_OK(index_->Save());
  Open();
  auto got = log_->Get(b.sighting.id);
  ASSERT_OK(got);
  EXPECT_EQ(got->ad.title, "carving b1");
  EXPECT_EQ(got->ad.url, "https://bazaar.example/b1");
  EXPECT_EQ(log_->SellerLinks({"bazaar", "bob"}, 0.5)->size(), 1u);
  // And the old image still matches a third relist.
  Recorded c = Record(Ad("c1", "carl"), Photo("aero1.jpg", 0.05, 0, 0.95, 1));
  EXPECT_EQ(c.earlier.size(), 2u);
}

TEST_F(SightingsTest, AnImageLeftByACrashMidDeleteIsRemovedOnOpen) {
  Recorded r = Record(Ad("a1", "alice"), Photo("leuvenA.jpg"));
  log_.reset();
  {
    // The sighting rows are gone but the image was not yet removed.
    SQLite::Database db(tmp_.Join("index/references.db"),
                        SQLite::OPEN_READWRITE);
    db.exec("DELETE FROM sightings");
  }
  auto log = SightingLog::Open(*index_);
  ASSERT_OK(log);
  EXPECT_EQ(index_->Get(r.sighting.image_id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_OK(index_->Verify());
}

TEST_F(SightingsTest, AnIndexMadeBeforeBanksOpensAsTheDefaultBank) {
  StartAsAnOlderEngine();
  auto tiger = testing::ReadFile(testing::ReferenceImagesPath() +
                                 "/references/tiger.jpg");
  ASSERT_OK(index_->Save());
  std::int64_t references = index_->Stats().references;
  // Schema 1: no banks, no sightings.
  ReopenAfter(
      "DROP TABLE sighting_contacts; DROP TABLE thumbnails; DROP TABLE "
      "links; DROP TABLE sighting_matches; "
      "DROP TABLE sightings; "
      "DROP TABLE banks; DROP INDEX refs_bank; "
      "ALTER TABLE refs DROP COLUMN bank; "
      "ALTER TABLE features DROP COLUMN packing; PRAGMA user_version = 0;");
  IndexStats stats = index_->Stats();
  EXPECT_EQ(stats.references, references);
  EXPECT_EQ(stats.banks[kDefaultBank], references);
  EXPECT_FALSE(stats.rebuilt_on_open);  // the FAISS files still hold
  MatchResult m = MatchBytes(tiger);
  ASSERT_FALSE(m.matches.empty());
  EXPECT_EQ(m.matches[0].reference.bank, kDefaultBank);
  // Sightings work on the migrated index.
  Recorded r = Record(Ad("t1", "tom"), tiger);
  EXPECT_EQ(r.sighting.matches.size(), 1u);
  SQLite::Database db(tmp_.Join("index/references.db"));
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), 4);
}

TEST_F(SightingsTest, AnIndexMadeBeforeContactLinksKeepsItsLinks) {
  StartAsAnOlderEngine();
  Recorded first = Record(Ad("a1", "alice"), Photo("aero1.jpg"));
  Recorded relist = Record(Ad("b2", "bob"), Photo("aero1.jpg", 0.1, 0.1));
  ASSERT_EQ(relist.earlier.size(), 1u);
  // Schema 2: links without kind or contact.
  ReopenAfter(
      "DROP TABLE sighting_contacts; ALTER TABLE links DROP COLUMN kind; "
      "ALTER TABLE links DROP COLUMN contact; "
      "ALTER TABLE features DROP COLUMN packing; PRAGMA user_version = 2;");
  auto links = log_->LinksOf(relist.sighting.id);
  ASSERT_OK(links);
  ASSERT_EQ(links->size(), 1u);
  EXPECT_EQ((*links)[0].id, relist.earlier[0].link.id);
  EXPECT_EQ((*links)[0].kind, LinkKind::kMatch);
  EXPECT_EQ((*links)[0].older_id, first.sighting.id);
  EXPECT_EQ((*links)[0].contact, "");
  SQLite::Database db(tmp_.Join("index/references.db"));
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), 4);
}

// `name` from opencv-doc with `words` drawn across it twice, large, as ads
// stamp text on their photos (testing::AddText).
std::vector<std::uint8_t> WithWords(const std::string& name,
                                    const std::string& words) {
  cv::Mat m = testing::LoadBgr(kOpenCvData + "/" + name, 800);
  return testing::EncodeJpeg(testing::AddText(m, words), 88);
}

// The same with the photo cropped first: another seller's copy of the item.
std::vector<std::uint8_t> CropWithWords(const std::string& name,
                                        const std::string& words) {
  cv::Mat m = testing::LoadBgr(kOpenCvData + "/" + name, 800);
  return testing::EncodeJpeg(
      testing::AddText(testing::Crop(m, 0.1, 0, 1, 0.95), words));
}

TEST_F(SightingsTest, TheSameWordsOnDifferentItemsDoNotLinkThem) {
  const std::string words = "Genuine ivory WhatsApp only";
  // Without reading the text, the words alone link two strangers' items.
  read_text_ = false;
  Record(Ad("w1", "wendy"), WithWords("leuvenA.jpg", words));
  Recorded strangers = Record(Ad("w2", "will"), WithWords("aero3.jpg", words));
  ASSERT_EQ(strangers.earlier.size(), 1u);
  ASSERT_OK(log_->Delete({"bazaar", "", "wendy", ""}));
  ASSERT_OK(log_->Delete({"bazaar", "", "will", ""}));

  read_text_ = true;
  EXPECT_FALSE(MatchBytes(WithWords("leuvenA.jpg", words)).text.empty());
  Recorded wendy = Record(Ad("w3", "wendy"), WithWords("leuvenA.jpg", words));
  Recorded will = Record(Ad("w4", "will"), WithWords("aero3.jpg", words));
  EXPECT_TRUE(will.earlier.empty());
  // The item under the words still links: another seller's crop of it.
  Recorded xena = Record(Ad("w5", "xena"), CropWithWords("leuvenA.jpg", words));
  ASSERT_EQ(xena.earlier.size(), 1u);
  EXPECT_EQ(xena.earlier[0].sighting.id, wendy.sighting.id);
  EXPECT_EQ(xena.earlier[0].link.kind, LinkKind::kMatch);
}

TEST_F(SightingsTest, WordsTheReaderMissesInANewAdDoNotMatchAnEarlierAdsWords) {
  // The market run's honest pair: one seller's number read, another's (in
  // the same font, on yellow grass) missed. Reading nothing in the newer ad
  // stands for the miss: the earlier ad keeps no keypoints on its words, so
  // there is nothing of them left to match.
  const std::string words = "Genuine ivory WhatsApp only";
  read_text_ = true;
  Recorded wendy = Record(Ad("m1", "wendy"), WithWords("leuvenA.jpg", words));
  ASSERT_TRUE(wendy.created);
  read_text_ = false;
  Recorded will = Record(Ad("m2", "will"), WithWords("aero3.jpg", words));
  EXPECT_TRUE(will.earlier.empty());
  // The item itself is still kept: another seller's crop of it links.
  read_text_ = true;
  Recorded xena = Record(Ad("m3", "xena"), CropWithWords("leuvenA.jpg", words));
  ASSERT_EQ(xena.earlier.size(), 1u);
  EXPECT_EQ(xena.earlier[0].sighting.id, wendy.sighting.id);
  EXPECT_GE(xena.earlier[0].link.score, kDefaultMinScore);
}

TEST_F(SightingsTest, ASharedPhoneNumberLinksDifferentPhotosByAContactLink) {
  // Two sellers, two different photos, one phone number written two ways.
  Recorded first =
      Record(Ad("p1", "paul"), WithWords("leuvenA.jpg", "+33 6 12 34 56 78"));
  ASSERT_EQ(first.sighting.contacts.size(), 1u);
  EXPECT_EQ(first.sighting.contacts[0].kind, ContactKind::kPhone);
  EXPECT_EQ(first.sighting.contacts[0].value, "612345678");
  Recorded second =
      Record(Ad("p2", "quinn"), WithWords("aero3.jpg", "06 12 34 56 78"));
  ASSERT_EQ(second.earlier.size(), 1u);
  const Link& l = second.earlier[0].link;
  EXPECT_EQ(second.earlier[0].sighting.id, first.sighting.id);
  EXPECT_EQ(l.kind, LinkKind::kContact);
  EXPECT_EQ(l.contact, "phone:612345678");
  EXPECT_DOUBLE_EQ(l.score, kContactLinkScore);
  EXPECT_EQ(l.inliers, 0);
  // The boxes are where each image shows the number: AddText writes it at
  // the bottom and again, after "call", at the top.
  for (const Box& b : {l.newer_box, l.older_box}) {
    EXPECT_GT(b.width, 3 * b.height);
    EXPECT_GT(b.height, 0);
  }

  // The sellers are linked by it, and another number links nobody.
  auto sellers = log_->SellerLinks({"bazaar", "paul"}, kDefaultMinScore);
  ASSERT_OK(sellers);
  ASSERT_EQ(sellers->size(), 1u);
  EXPECT_EQ((*sellers)[0].seller.seller_id, "quinn");
  Recorded other =
      Record(Ad("p3", "rose"), WithWords("box_in_scene.png", "06 12 34 56 79"));
  ASSERT_EQ(other.sighting.contacts.size(), 1u);
  EXPECT_EQ(other.sighting.contacts[0].value, "612345679");
  EXPECT_TRUE(other.earlier.empty());
  // Quinn's next ad with the number links to both sellers' ads.
  Recorded fourth =
      Record(Ad("p4", "quinn"), WithWords("home.jpg", "+33 6 12 34 56 78"));
  ASSERT_EQ(fourth.earlier.size(), 2u);
  for (const auto& e : fourth.earlier)
    EXPECT_EQ(e.link.kind, LinkKind::kContact);
  // Deleting a sighting deletes its contacts: nothing links to them. A new
  // ad links to the latest of each seller's ads with the number only.
  ASSERT_OK(log_->Delete({"bazaar", "", "paul", ""}));
  Recorded again =
      Record(Ad("p5", "sam"), WithWords("leuvenB.jpg", "+33 612345678"));
  ASSERT_EQ(again.earlier.size(), 1u);
  EXPECT_EQ(again.earlier[0].sighting.id, fourth.sighting.id);
  EXPECT_EQ(again.earlier[0].link.kind, LinkKind::kContact);
}

TEST_F(SightingsTest, BanksNarrowTheSearch) {
  auto tiger = testing::ReadFile(testing::ReferenceImagesPath() +
                                 "/references/tiger.jpg");
  EXPECT_FALSE(MatchBytes(tiger, {kDefaultBank}).matches.empty());
  EXPECT_TRUE(MatchBytes(tiger, {"known-ivory"}).matches.empty());
  EXPECT_EQ(index_->Add(tiger, "t", {}, kSightingsBank).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index_->Add(tiger, "t", {}, "Bad Name").status().code(),
            absl::StatusCode::kInvalidArgument);
}

std::vector<std::uint8_t> InScreenshot(const std::string& name,
                                       double crop = 0) {
  cv::Mat m = testing::LoadBgr(kOpenCvData + "/" + name, 800);
  return testing::EncodeJpeg(
      testing::Screenshot(testing::Crop(m, crop, crop, 1 - crop, 1 - crop)),
      85);
}

TEST_F(SightingsTest, BenignBanksKeepSharedAppChromeAndStockPhotosFromLinking) {
  // Without a benign bank, and without reading the text, the same app's
  // chrome links two strangers.
  read_text_ = false;
  Record(Ad("s1", "ann"), InScreenshot("leuvenA.jpg"));
  Recorded strangers = Record(Ad("s2", "ben"), InScreenshot("baboon.jpg"));
  ASSERT_EQ(strangers.earlier.size(), 1u);
  ASSERT_OK(log_->Delete({"bazaar", "", "ann", ""}));
  ASSERT_OK(log_->Delete({"bazaar", "", "ben", ""}));
  // Reading it keeps them apart on its own: the chrome's status bar and
  // labels are words, left out of what each ad keeps and of the query.
  read_text_ = true;
  Record(Ad("s6", "ann"), InScreenshot("leuvenA.jpg"));
  EXPECT_TRUE(
      Record(Ad("s7", "ben"), InScreenshot("baboon.jpg")).earlier.empty());
  ASSERT_OK(log_->Delete({"bazaar", "", "ann", ""}));
  ASSERT_OK(log_->Delete({"bazaar", "", "ben", ""}));

  // The benign bank, measured alone (text unread).
  read_text_ = false;

  // A curator files the app's empty screenshot, and a stock photo.
  cv::Mat blank(600, 800, CV_8UC3, cv::Scalar(128, 128, 128));
  ASSERT_OK(index_->Add(testing::EncodeJpeg(testing::Screenshot(blank)),
                        "marketplace app", {}, "benign-app-chrome"));
  ASSERT_OK(index_->Add(Photo("home.jpg"), "stock house", {}, "benign-stock"));

  Recorded ann = Record(Ad("s3", "ann"), InScreenshot("leuvenA.jpg"));
  Recorded ben = Record(Ad("s4", "ben"), InScreenshot("baboon.jpg"));
  EXPECT_TRUE(ben.earlier.empty());
  // Benign content is no finding either.
  EXPECT_TRUE(ben.sighting.matches.empty());
  // The item itself still links: another seller's screenshot of it.
  Recorded carl = Record(Ad("s5", "carl"), InScreenshot("leuvenA.jpg", 0.1));
  ASSERT_EQ(carl.earlier.size(), 1u);
  EXPECT_EQ(carl.earlier[0].sighting.id, ann.sighting.id);
  EXPECT_GE(carl.earlier[0].link.inliers, 15);

  // Two sellers with the same stock photo are not linked by it.
  Record(Ad("h1", "hugo"), Photo("home.jpg", 0, 0, 1, 1, false, 80));
  Recorded ida = Record(Ad("h2", "ida"), Photo("home.jpg", 0.05, 0, 1, 1));
  EXPECT_TRUE(ida.earlier.empty());
}

TEST(AdContext, IsValidatedNamingTheField) {
  AdContext ok{"bazaar", "1", "s", "2026-11-01T10:00:00Z", "t", "u"};
  EXPECT_OK(ValidateAdContext(ok));
  auto message = [](AdContext ad) {
    return std::string(ValidateAdContext(ad).message());
  };
  AdContext a = ok;
  a.platform = "";
  EXPECT_EQ(message(a), "ad.platform is required with an ad");
  a = ok;
  a.ad_id = "";
  EXPECT_EQ(message(a), "ad.ad_id is required with an ad");
  a = ok;
  a.listing_time = "yesterday";
  EXPECT_EQ(message(a), "ad.listing_time must be UTC, YYYY-MM-DDTHH:MM:SSZ");
  a = ok;
  a.title = "line\ninjected";
  EXPECT_EQ(message(a),
            "ad.title is not UTF-8 text without control characters");
  a = ok;
  a.seller_id = "\xff\xfe";
  EXPECT_EQ(message(a),
            "ad.seller_id is not UTF-8 text without control characters");
  a = ok;
  a.url = std::string(2001, 'u');
  EXPECT_EQ(message(a), "ad.url is longer than 2000 bytes");
  EXPECT_OK(ValidateBankName("case-2026-014"));
  EXPECT_FALSE(ValidateBankName("-x").ok());
  EXPECT_FALSE(ValidateBankName(std::string(64, 'a')).ok());
  EXPECT_OK(ValidateBankName(kSightingsBank, true));
}

}  // namespace
}  // namespace spoor
