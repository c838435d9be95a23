#include <SQLiteCpp/SQLiteCpp.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFSpectralHash.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "features/feature_codec.h"
#include "features/vlad.h"
#include "index/descriptor_index.h"
#include "index/global_index.h"
#include "index/hamming_search.h"
#include "index/hash_index.h"
#include "index/pq_search.h"
#include "index/vector_index.h"
#include "spoor/reference_index.h"
#include "store/reference_store.h"
#include "test_util.h"

namespace spoor {
namespace {

namespace fs = std::filesystem;

std::vector<std::uint8_t> Photo(const std::string& name) {
  return testing::ReadFile(testing::kOpenCvData + "/" + name);
}

class ReferenceIndexTest : public ::testing::Test {
 protected:
  std::string dir() const { return tmp_.Join("index"); }
  std::unique_ptr<ReferenceIndex> CreateWith(
      const std::vector<std::string>& photos, IndexOptions options = {}) {
    auto index = ReferenceIndex::Create(dir(), options);
    EXPECT_TRUE(index.ok()) << index.status();
    for (const auto& p : photos) {
      auto added = (*index)->Add(Photo(p), p, Labels{});
      EXPECT_TRUE(added.ok()) << added.status();
    }
    EXPECT_OK((*index)->Save());
    return std::move(*index);
  }
  testing::TempDir tmp_;
};

TEST_F(ReferenceIndexTest, AddingTheSameBytesTwiceReturnsTheExistingId) {
  auto index = CreateWith({"baboon.jpg"});
  auto again = index->Add(Photo("baboon.jpg"), "copy.jpg", Labels{});
  ASSERT_OK(again);
  EXPECT_FALSE(again->added);
  EXPECT_EQ(again->id, 1);
  EXPECT_EQ(index->Stats().references, 1);
}

TEST_F(ReferenceIndexTest, ConcurrentAddsOfTheSameBytesGiveOneReference) {
  auto index = CreateWith({});
  auto bytes = Photo("fruits.jpg");
  std::vector<absl::StatusOr<AddResult>> results(4, absl::UnknownError(""));
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back(
        [&, i] { results[i] = index->Add(bytes, "fruits.jpg", Labels{}); });
  for (auto& t : threads) t.join();
  int added = 0;
  for (const auto& r : results) {
    ASSERT_OK(r);
    EXPECT_EQ(r->id, results[0]->id);
    added += r->added;
  }
  EXPECT_EQ(added, 1);
  EXPECT_EQ(index->Stats().references, 1);
  ASSERT_OK(index->Verify());
}

TEST_F(ReferenceIndexTest, PersistsAcrossReopenAndVerifies) {
  std::int64_t descriptors;
  {
    auto index = CreateWith({"baboon.jpg", "fruits.jpg", "building.jpg"});
    descriptors = index->Stats().descriptors;
    EXPECT_GT(descriptors, 300);
  }
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  IndexStats s = (*index)->Stats();
  EXPECT_EQ(s.references, 3);
  EXPECT_EQ(s.hashes, 3);
  EXPECT_EQ(s.descriptors, descriptors);
  EXPECT_FALSE(s.rebuilt_on_open);
  EXPECT_GT(s.disk_bytes, descriptors * 128);
  ASSERT_OK((*index)->Verify());
  auto ref = (*index)->Get(2);
  ASSERT_OK(ref);
  EXPECT_EQ(ref->source, "fruits.jpg");
  EXPECT_EQ(ref->width, 512);
  EXPECT_EQ(ref->height, 480);
  EXPECT_EQ(ref->sha256.size(), 64u);
  // Nothing half-written is left behind.
  for (const auto& e : fs::directory_iterator(dir()))
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
}

TEST_F(ReferenceIndexTest, RemoveDropsTheReferenceEverywhere) {
  auto index = CreateWith({"baboon.jpg", "fruits.jpg"});
  std::int64_t before = index->Stats().descriptors;
  ASSERT_OK(index->Remove(1));
  EXPECT_EQ(index->Remove(1).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(index->Get(1).status().code(), absl::StatusCode::kNotFound);
  IndexStats s = index->Stats();
  EXPECT_EQ(s.references, 1);
  EXPECT_EQ(s.hashes, 1);
  EXPECT_LT(s.descriptors, before);
  ASSERT_OK(index->Verify());
}

TEST_F(ReferenceIndexTest, MissingFaissFileIsRebuiltFromTheDatabase) {
  std::int64_t descriptors;
  {
    auto index = CreateWith({"baboon.jpg", "fruits.jpg"});
    descriptors = index->Stats().descriptors;
  }
  fs::remove(dir() + "/descriptors.faiss");
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  EXPECT_EQ((*index)->Stats().descriptors, descriptors);
  ASSERT_OK((*index)->Verify());
}

TEST_F(ReferenceIndexTest, CorruptFaissFileIsRebuiltNotTrusted) {
  { CreateWith({"baboon.jpg"}); }
  std::ofstream(dir() + "/hash.faissbin", std::ios::trunc) << "garbage";
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  EXPECT_EQ((*index)->Stats().hashes, 1);
  ASSERT_OK((*index)->Verify());
}

// Found by index_open_fuzzer: a hash file with a plausible header and
// damaged codes made faiss::read_index_binary throw and leak what it had
// built (LeakSanitizer). FAISS files are now read only when their SHA-256 is
// the one the manifest recorded at Save, so FAISS never sees such bytes.
TEST_F(ReferenceIndexTest, FuzzLeak076ac48bDamagedHashFileNeverReachesFaiss) {
  { CreateWith({"baboon.jpg", "fruits.jpg"}); }
  std::vector<std::uint8_t> finding =
      testing::ReadFile(testing::FixturePath("fuzz/index_open-leak-076ac48b"));
  ASSERT_EQ(finding[0] % 6, 1);  // the fuzzer's selector: hash.faissbin
  std::ofstream(dir() + "/hash.faissbin", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(finding.data() + 1),
             static_cast<std::streamsize>(finding.size() - 1));
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  EXPECT_EQ((*index)->Stats().hashes, 2);
  ASSERT_OK((*index)->Verify());
}

// The manifest names each FAISS file's digest: a file swapped for another
// valid one of the same size and count (another index's, an old copy) is
// not trusted either.
TEST_F(ReferenceIndexTest, FaissFileFromAnotherIndexIsRebuiltNotTrusted) {
  { CreateWith({"baboon.jpg"}); }
  fs::rename(dir(), tmp_.Join("first"));
  { CreateWith({"fruits.jpg"}); }
  fs::copy_file(tmp_.Join("first") + "/hash.faissbin", dir() + "/hash.faissbin",
                fs::copy_options::overwrite_existing);
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  ASSERT_OK((*index)->Verify());
  auto match = (*index)->FindBySha256(
      Sha256Hex(Photo("fruits.jpg").data(), Photo("fruits.jpg").size()));
  EXPECT_TRUE(match.has_value());
}

// An index saved before manifests named digests is rebuilt once on open,
// which writes the files and their digests, and trusted from then on.
TEST_F(ReferenceIndexTest, ManifestWithoutDigestsIsRebuiltOnceThenTrusted) {
  { CreateWith({"baboon.jpg"}); }
  std::string path = dir() + "/manifest.json";
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(path));
  ASSERT_TRUE(manifest.contains("files"));
  EXPECT_EQ(manifest["files"].size(), 4u);  // hash, voting, codebook, global
  manifest.erase("files");
  std::ofstream(path, std::ios::trunc) << manifest.dump(2);
  {
    auto index = ReferenceIndex::Open(dir());
    ASSERT_OK(index);
    EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  }
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_FALSE((*index)->Stats().rebuilt_on_open);
  ASSERT_OK((*index)->Verify());
}

// Found by index_open_fuzzer: a float too large for the integer a manifest
// field holds ("max_bytes": 1e300) was cast to it, which is undefined
// behaviour. It is refused, naming the field; a count that is no integer
// only makes Open rebuild.
TEST_F(ReferenceIndexTest, FuzzCrash2ef32ee0ManifestNumberOutOfRangeIsRefused) {
  { CreateWith({"baboon.jpg"}); }
  std::string path = dir() + "/manifest.json";
  const nlohmann::json saved = nlohmann::json::parse(std::ifstream(path));
  for (nlohmann::json bad : {nlohmann::json(1e300), nlohmann::json(2.5),
                             nlohmann::json(-1e19), nlohmann::json("8")}) {
    nlohmann::json j = saved;
    j["decode"]["max_bytes"] = bad;
    std::ofstream(path, std::ios::trunc) << j.dump();
    auto index = ReferenceIndex::Open(dir());
    EXPECT_EQ(index.status().code(), absl::StatusCode::kFailedPrecondition)
        << bad;
    EXPECT_NE(index.status().message().find("max_bytes"), std::string::npos)
        << index.status();
  }
  nlohmann::json j = saved;
  j["references"] = 1e300;
  std::ofstream(path, std::ios::trunc) << j.dump();
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  EXPECT_EQ((*index)->Stats().references, 1);
}

// Found by index_open_fuzzer: a database whose pages were damaged past its
// header was reported as INTERNAL. SQLite's corruption codes are now
// DataLoss, from Open or from the first read that meets the damage.
TEST_F(ReferenceIndexTest, DamagedDatabasePagesAreDataLoss) {
  { CreateWith({"baboon.jpg", "fruits.jpg", "graf1.png"}); }
  std::string db = dir() + "/references.db";
  ASSERT_GT(fs::file_size(db), 5 * 4096u);
  {
    std::fstream f(db, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(4096);
    std::string garbage(4 * 4096, '\x55');
    f.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto index = ReferenceIndex::Open(dir());
  absl::Status status = index.ok() ? (*index)->Verify() : index.status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_NE(status.message().find("malformed"), std::string::npos) << status;
}

// Found by index_open_fuzzer: a database whose user_version claims the
// current schema but whose refs table lacks a column (cites_appendix) was
// opened, and every read then failed as INTERNAL. Open now checks the tables
// against the migrations' schema and refuses the file as DataLoss.
TEST_F(ReferenceIndexTest, FuzzCrash4c71a212DatabaseMissingAColumnIsRefused) {
  { CreateWith({"baboon.jpg"}); }
  std::vector<std::uint8_t> finding =
      testing::ReadFile(testing::FixturePath("fuzz/index_open-crash-4c71a212"));
  ASSERT_EQ(finding[0] % 6, 5);  // the fuzzer's selector: references.db
  fs::remove(dir() + "/references.db-wal");
  fs::remove(dir() + "/references.db-shm");
  std::ofstream(dir() + "/references.db", std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(finding.data() + 1),
             static_cast<std::streamsize>(finding.size() - 1));
  auto index = ReferenceIndex::Open(dir());
  ASSERT_FALSE(index.ok());
  EXPECT_EQ(index.status().code(), absl::StatusCode::kDataLoss)
      << index.status();
  EXPECT_NE(index.status().message().find("lacks column refs."),
            std::string::npos)
      << index.status();
}

TEST_F(ReferenceIndexTest, InsertWithoutSaveIsRecoveredOnOpen) {
  {
    auto index = CreateWith({"baboon.jpg"});
    // Inserted into the database, never saved: as after a crash.
    ASSERT_OK(index->Add(Photo("fruits.jpg"), "fruits.jpg", Labels{}));
  }
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  EXPECT_EQ((*index)->Stats().hashes, 2);
  ASSERT_OK((*index)->Verify());
}

// Regression: an add and a remove since the last save leave the count as
// saved, and Open used to serve the stale FAISS files: the added reference
// never matched and Verify reported it missing from the hash index.
TEST_F(ReferenceIndexTest, AddAndRemoveWithoutSaveAreNotLostOnOpen) {
  std::int64_t added_id = 0;
  {
    auto index = CreateWith({"baboon.jpg", "home.jpg"});
    auto added = index->Add(Photo("fruits.jpg"), "fruits.jpg", Labels{});
    ASSERT_OK(added);
    added_id = added->id;
    ASSERT_OK(index->Remove(1));
    // No Save(): as after kill -9 with a long save interval.
  }
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  ASSERT_OK((*index)->Verify());
  Hash256 hash = (*index)->Load(added_id)->hash;
  std::array<Hash256, kOrientationCount> variants;
  variants.fill(hash);
  auto hits = (*index)->SearchHashes(variants, 0, 10);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].ref_id, added_id);
  EXPECT_FALSE((*index)->Load(1).ok());

  // Closed again without a Save (a second crash). The first open's rebuild
  // used to write only the manifest, with the new generation, over the old
  // FAISS files, whose counts the add and remove left unchanged: the next
  // open trusted them and lost the add. Now it writes the files too.
  index->reset();
  index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  ASSERT_OK((*index)->Verify());
  hits = (*index)->SearchHashes(variants, 0, 10);
  ASSERT_EQ(hits.size(), 1u);
  EXPECT_EQ(hits[0].ref_id, added_id);

  // Saved now: the next Open trusts the files again.
  ASSERT_OK((*index)->Save());
  index->reset();
  auto again = ReferenceIndex::Open(dir());
  ASSERT_OK(again);
  EXPECT_FALSE((*again)->Stats().rebuilt_on_open);
  ASSERT_OK((*again)->Verify());
}

// Regression: spoor-indexer and a running service could both write one
// directory, each with its own FAISS files, and lose each other's changes.
TEST_F(ReferenceIndexTest, ASecondWriterOnTheSameDirectoryIsRefused) {
  auto first = CreateWith({"baboon.jpg"});
  auto second = ReferenceIndex::Open(dir());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another writer"),
            std::string::npos)
      << second.status();
  EXPECT_EQ(ReferenceIndex::Create(dir(), IndexOptions{}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  first.reset();
  auto reopened = ReferenceIndex::Open(dir());
  ASSERT_OK(reopened);
  EXPECT_EQ((*reopened)->Stats().references, 1);
}

// The SIFT settings are kept in the manifest, so queries are described as
// the index was built. An index written before they existed was built with
// SIFT's doubled first octave and OpenCV's threshold, without a feature
// floor, and opens with those.
TEST_F(ReferenceIndexTest, SiftSettingsAreKeptAndOlderManifestsGetTheOldOnes) {
  IndexOptions options;
  options.features.octave_side = 700;
  options.features.contrast_threshold = 0.03;
  options.query_octave_side = 1300;
  options.features.min_features = 250;
  options.query_min_features = 350;
  options.stored_packing = 3;
  IndexOptions unknown = options;
  unknown.stored_packing = 7;
  auto refused = ReferenceIndex::Create(tmp_.Join("other"), unknown);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("stored_packing"),
            std::string::npos)
      << refused.status();
  { CreateWith({"baboon.jpg"}, options); }
  {
    auto index = ReferenceIndex::Open(dir());
    ASSERT_OK(index);
    EXPECT_EQ((*index)->options().features.octave_side, 700);
    EXPECT_DOUBLE_EQ((*index)->options().features.contrast_threshold, 0.03);
    EXPECT_EQ((*index)->options().query_octave_side, 1300);
    EXPECT_EQ((*index)->options().features.min_features, 250);
    EXPECT_EQ((*index)->options().query_min_features, 350);
    EXPECT_EQ((*index)->options().stored_packing, 3);
  }
  std::string path = dir() + "/manifest.json";
  nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
  for (const char* key :
       {"octave_side", "contrast_threshold", "query_octave_side",
        "min_features", "query_min_features", "stored_packing"}) {
    ASSERT_TRUE(j["descriptor"].contains(key)) << key;
    j["descriptor"].erase(key);
  }
  std::ofstream(path, std::ios::trunc) << j.dump();
  {
    auto index = ReferenceIndex::Open(dir());
    ASSERT_OK(index);
    EXPECT_EQ((*index)->options().features.octave_side, 1600);
    EXPECT_DOUBLE_EQ((*index)->options().features.contrast_threshold, 0.04);
    EXPECT_EQ((*index)->options().query_octave_side, 1600);
    EXPECT_EQ((*index)->options().features.min_features, 0);
    EXPECT_EQ((*index)->options().query_min_features, 0);
    EXPECT_EQ((*index)->options().stored_packing, 2);
    EXPECT_EQ((*index)->Stats().references, 1);
  }
  for (auto [key, bad] : {std::pair<const char*, int>{"octave_side", 10},
                          {"min_features", -1},
                          {"min_features", 5000},
                          {"query_min_features", -2},
                          {"stored_packing", 4}}) {
    nlohmann::json broken = j;
    broken["descriptor"][key] = bad;
    std::ofstream(path, std::ios::trunc) << broken.dump();
    auto index = ReferenceIndex::Open(dir());
    EXPECT_EQ(index.status().code(), absl::StatusCode::kFailedPrecondition)
        << key << " " << bad;
    EXPECT_NE(index.status().message().find(key), std::string::npos)
        << index.status();
  }
}

TEST_F(ReferenceIndexTest, DescriptorVersionMismatchIsRefused) {
  { CreateWith({"baboon.jpg"}); }
  std::string path = dir() + "/manifest.json";
  nlohmann::json j = nlohmann::json::parse(std::ifstream(path));
  // Version 1 is the first engine's (uncompressed 16-byte keypoints and
  // 128-byte descriptors in the database); a later version is a newer
  // build's. Both are refused with the way out in the message.
  for (int version : {1, kDescriptorVersion + 1}) {
    j["descriptor"]["version"] = version;
    std::ofstream(path) << j.dump();
    auto index = ReferenceIndex::Open(dir());
    EXPECT_EQ(index.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(index.status().message().find(
                  absl::StrCat("descriptor version ", version)),
              std::string::npos)
        << index.status();
    EXPECT_NE(index.status().message().find("Rebuild"), std::string::npos);
  }

  j["descriptor"]["version"] = kDescriptorVersion;
  j["descriptor"]["dim"] = 64;
  std::ofstream(path) << j.dump();
  EXPECT_EQ(ReferenceIndex::Open(dir()).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ReferenceIndexTest, CreateOverAnIndexWithOtherOptionsIsRefused) {
  { CreateWith({"baboon.jpg"}); }
  IndexOptions other;
  other.decode.max_side = 640;
  auto index = ReferenceIndex::Create(dir(), other);
  EXPECT_EQ(index.status().code(), absl::StatusCode::kFailedPrecondition);
  // Same options: opens the existing index (resuming a build).
  auto same = ReferenceIndex::Create(dir(), IndexOptions{});
  ASSERT_OK(same);
  EXPECT_EQ((*same)->Stats().references, 1);
}

TEST_F(ReferenceIndexTest, OpenWithoutManifestIsNotFound) {
  EXPECT_EQ(ReferenceIndex::Open(tmp_.Join("nothing")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ReferenceIndexTest, BadFactoryStringIsInvalidArgument) {
  IndexOptions options;
  options.descriptor_factory = "NoSuchIndex42";
  auto index = ReferenceIndex::Create(dir(), options);
  EXPECT_EQ(index.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(index.status().message().find("NoSuchIndex42"), std::string::npos);
}

TEST_F(ReferenceIndexTest, HnswIndexRemovesByRebuilding) {
  IndexOptions options;
  options.descriptor_factory = "HNSW32";
  auto index = CreateWith({"baboon.jpg", "fruits.jpg"}, options);
  std::int64_t before = index->Stats().descriptors;
  ASSERT_OK(index->Remove(1));
  EXPECT_EQ(index->Stats().references, 1);
  EXPECT_LT(index->Stats().descriptors, before);
  EXPECT_GT(index->Stats().descriptors, 0);
  ASSERT_OK(index->Verify());
}

// The references a photo's own descriptors vote for, most votes first.
std::vector<Vote> VotesFor(const ReferenceIndex& index,
                           const std::string& photo) {
  auto prepared = index.Prepare(Photo(photo), photo, {});
  EXPECT_TRUE(prepared.ok()) << prepared.status();
  return index.SearchDescriptors(DescriptorsAsFloat(prepared->features), {});
}

TEST_F(ReferenceIndexTest, IvfIndexIsTrainedAtSaveFromStoredDescriptors) {
  IndexOptions options;
  options.descriptor_factory = "IVF16,Flat";
  auto index = ReferenceIndex::Create(dir(), options);
  ASSERT_OK(index);
  ASSERT_OK((*index)->Add(Photo("baboon.jpg"), "baboon.jpg", Labels{}));
  ASSERT_OK((*index)->Add(Photo("fruits.jpg"), "fruits.jpg", Labels{}));
  // Untrained, the tier holds the descriptors in its exact stand-in and
  // votes at once.
  IndexStats before = (*index)->Stats();
  EXPECT_FALSE(before.descriptor_index_trained);
  EXPECT_GT(before.descriptors, 500);
  std::vector<Vote> exact = VotesFor(**index, "fruits.jpg");
  ASSERT_FALSE(exact.empty());
  EXPECT_EQ(exact[0].ref_id, 2);
  ASSERT_OK((*index)->Verify());
  ASSERT_OK((*index)->Save());
  IndexStats s = (*index)->Stats();
  EXPECT_TRUE(s.descriptor_index_trained);
  EXPECT_EQ(s.descriptors, before.descriptors);
  std::vector<Vote> trained = VotesFor(**index, "fruits.jpg");
  ASSERT_FALSE(trained.empty());
  EXPECT_EQ(trained[0].ref_id, 2);
  ASSERT_OK((*index)->Verify());
  // Trained now: later adds go straight in, and it survives a reopen.
  ASSERT_OK((*index)->Add(Photo("building.jpg"), "building.jpg", Labels{}));
  EXPECT_GT((*index)->Stats().descriptors, s.descriptors);
  ASSERT_OK((*index)->Save());
  index->reset();
  auto reopened = ReferenceIndex::Open(dir());
  ASSERT_OK(reopened);
  EXPECT_FALSE((*reopened)->Stats().rebuilt_on_open);
  EXPECT_TRUE((*reopened)->Stats().descriptor_index_trained);
  EXPECT_EQ((*reopened)->options().descriptor_factory, "IVF16,Flat");
  ASSERT_OK((*reopened)->Verify());
}

TEST_F(ReferenceIndexTest, IvfIndexWithTooFewDescriptorsIsSavedExact) {
  // 1024 lists need 10 descriptors each; two photos give far fewer.
  IndexOptions options;
  options.descriptor_factory = "IVF1024,Flat";
  std::int64_t descriptors;
  {
    auto index = CreateWith({"baboon.jpg", "fruits.jpg"}, options);
    IndexStats s = index->Stats();
    EXPECT_FALSE(s.descriptor_index_trained);
    EXPECT_GT(s.descriptors, 500);
    EXPECT_LT(s.descriptors, 10240);
    descriptors = s.descriptors;
  }
  auto reopened = ReferenceIndex::Open(dir());
  ASSERT_OK(reopened);
  IndexStats s = (*reopened)->Stats();
  EXPECT_FALSE(s.rebuilt_on_open);  // the stand-in read back as saved
  EXPECT_FALSE(s.descriptor_index_trained);
  EXPECT_EQ(s.descriptors, descriptors);
  std::vector<Vote> votes = VotesFor(**reopened, "baboon.jpg");
  ASSERT_FALSE(votes.empty());
  EXPECT_EQ(votes[0].ref_id, 1);
  ASSERT_OK((*reopened)->Verify());
  // Removing works on the stand-in too.
  ASSERT_OK((*reopened)->Remove(1));
  EXPECT_LT((*reopened)->Stats().descriptors, descriptors);
  ASSERT_OK((*reopened)->Verify());
}

TEST_F(ReferenceIndexTest,
       HammingEmbeddedTierFindsTheSameBoxPhotographedAgain) {
  // 64-bit signatures of the descriptors instead of the descriptors: the
  // box photographed again in a cluttered scene still leads the vote, with
  // most of the votes the exact descriptors give it.
  const std::vector<std::string> photos = {
      "baboon.jpg", "box.png", "fruits.jpg", "building.jpg", "graf1.png"};
  float exact_votes = 0;
  {
    IndexOptions exact;
    exact.descriptor_factory = "Flat";
    auto index = ReferenceIndex::Create(tmp_.Join("exact"), exact);
    ASSERT_OK(index);
    for (const auto& p : photos)
      ASSERT_OK((*index)->Add(Photo(p), p, Labels{}));
    std::vector<Vote> votes = VotesFor(**index, "box_in_scene.png");
    ASSERT_FALSE(votes.empty());
    ASSERT_EQ(votes[0].ref_id, 2);
    exact_votes = votes[0].votes;
  }
  IndexOptions options;
  options.descriptor_factory = "IVF16,PCA64,SHm";
  auto index = CreateWith(photos, options);
  IndexStats s = index->Stats();
  ASSERT_TRUE(s.descriptor_index_trained);
  std::vector<Vote> votes = VotesFor(*index, "box_in_scene.png");
  ASSERT_FALSE(votes.empty());
  EXPECT_EQ(votes[0].ref_id, 2);
  EXPECT_GT(votes[0].votes, exact_votes / 2);
  if (votes.size() > 1) {
    EXPECT_GT(votes[0].votes, 1.5 * votes[1].votes);
  }
  // Saved and reopened as trained signatures, without a rebuild; removals
  // leave the rest findable.
  ASSERT_OK(index->Save());
  index.reset();
  auto reopened = ReferenceIndex::Open(dir());
  ASSERT_OK(reopened);
  EXPECT_FALSE((*reopened)->Stats().rebuilt_on_open);
  EXPECT_TRUE((*reopened)->Stats().descriptor_index_trained);
  EXPECT_EQ((*reopened)->Stats().descriptors, s.descriptors);
  ASSERT_OK((*reopened)->Remove(1));
  ASSERT_OK((*reopened)->Remove(3));
  ASSERT_OK((*reopened)->Verify());
  votes = VotesFor(**reopened, "box_in_scene.png");
  ASSERT_FALSE(votes.empty());
  EXPECT_EQ(votes[0].ref_id, 2);
  for (const Vote& v : votes) EXPECT_TRUE(v.ref_id == 2 || v.ref_id > 3);
}

TEST_F(ReferenceIndexTest, TrainedIvfIndexRemovesOneReferenceAfterAnother) {
  IndexOptions options;
  options.descriptor_factory = "IVF16,Flat";
  auto index =
      CreateWith({"baboon.jpg", "fruits.jpg", "building.jpg"}, options);
  ASSERT_TRUE(index->Stats().descriptor_index_trained);
  ASSERT_OK(index->Remove(1));
  ASSERT_OK(index->Remove(3));
  ASSERT_OK(index->Verify());
  std::vector<Vote> votes = VotesFor(*index, "fruits.jpg");
  ASSERT_FALSE(votes.empty());
  EXPECT_EQ(votes[0].ref_id, 2);
  for (const Vote& v : votes) EXPECT_EQ(v.ref_id, 2);
}

// n vectors of dim normal coordinates, the same for the same seed.
std::vector<float> RandomVectors(int n, int dim, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> x(static_cast<std::size_t>(n) * dim);
  for (float& v : x) v = normal(rng);
  return x;
}

TEST(VectorIndexTest, TrainingMovesTheExactStandInsVectorsIn) {
  constexpr int kDim = 8;
  const std::vector<float> x = RandomVectors(2000, kDim, 3);
  auto index = VectorIndex::Create(kDim, "IVF16,Flat", "test index");
  ASSERT_OK(index);
  VectorIndex& v = **index;
  v.SetSearchBreadth(16);  // every list: the IVF search is exact too
  std::vector<std::int64_t> ids(1000);
  for (int i = 0; i < 1000; ++i) ids[i] = 5000 + i;
  ASSERT_OK(v.Add(1000, x.data(), ids.data()));
  EXPECT_TRUE(v.needs_training());
  EXPECT_EQ(v.size(), 1000);
  auto nearest = [&](int i) {
    VectorIndex::Neighbours nn = v.Search(1, x.data() + i * kDim, 1);
    return nn.k == 1 ? nn.ids[0] : -1;
  };
  EXPECT_EQ(nearest(17), 5017);
  // Written and read back untrained: still the stand-in.
  testing::TempDir tmp;
  ASSERT_OK(v.Write(tmp.Join("v.faiss")));
  auto read = VectorIndex::Read(tmp.Join("v.faiss"), kDim, "IVF16,Flat", "t");
  ASSERT_OK(read);
  EXPECT_TRUE((*read)->needs_training());
  EXPECT_EQ((*read)->size(), 1000);
  // 16 lists need 160 vectors.
  auto refused = v.Train(100, x.data());
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("160"), std::string::npos);
  EXPECT_TRUE(v.needs_training());
  ASSERT_OK(v.Train(2000, x.data()));
  EXPECT_FALSE(v.needs_training());
  EXPECT_EQ(v.size(), 1000);
  for (int i : {0, 17, 999}) EXPECT_EQ(nearest(i), 5000 + i);
  // Removed twice: IVF lists keep their own ids, so the second removal
  // finds what the first left (in an IndexIDMap, it aborted the process).
  ASSERT_OK(v.RemoveRange(5000, 5500));
  EXPECT_EQ(v.size(), 500);
  ASSERT_OK(v.RemoveRange(5600, 5700));
  EXPECT_EQ(v.size(), 400);
  EXPECT_EQ(nearest(999), 5999);
  EXPECT_EQ(nearest(550), 5550);
  EXPECT_NE(nearest(650), 5650);
}

// An exact index ("Flat", or the stand-in of an index awaiting training)
// searches with the stored vectors' norms kept from Add, RemoveRange and
// Read: after each, its answers are the brute-force ones. Stale norms
// after a removal (the survivors move up) would give wrong neighbours.
TEST(VectorIndexTest, SearchLeavesOutNeighboursBeyondTheRadius) {
  // Exact, trained IVF (FAISS's own search) and Hamming-embedded: each
  // answers within a radius what it answers without one, cut at the radius.
  constexpr int kDim = 128;
  const std::vector<float> x = RandomVectors(2000, kDim, 21);
  std::vector<std::int64_t> ids(2000);
  for (int i = 0; i < 2000; ++i) ids[i] = 7 + i;
  const std::vector<float> queries = RandomVectors(20, kDim, 22);
  constexpr int k = 8;
  for (const char* factory : {"Flat", "IVF8,Flat", "IVF8,PCA64,SHm"}) {
    SCOPED_TRACE(factory);
    auto made = VectorIndex::Create(kDim, factory, "test index");
    ASSERT_OK(made);
    VectorIndex& v = **made;
    ASSERT_OK(v.Train(2000, x.data()));
    ASSERT_OK(v.Add(2000, x.data(), ids.data()));
    v.SetSearchBreadth(8);
    const VectorIndex::Neighbours all = v.Search(20, queries.data(), k);
    // The radius: the median fourth neighbour's distance, so that some
    // queries keep most neighbours and others few or none.
    std::vector<float> fourth;
    for (int q = 0; q < 20; ++q) fourth.push_back(all.distances[q * k + 3]);
    std::nth_element(fourth.begin(), fourth.begin() + 10, fourth.end());
    const float radius = fourth[10];
    const VectorIndex::Neighbours near =
        v.Search(20, queries.data(), k, radius);
    ASSERT_EQ(near.k, k);
    int kept = 0, cut = 0;
    for (int i = 0; i < 20 * k; ++i) {
      if (all.distances[i] <= radius) {
        EXPECT_EQ(near.distances[i], all.distances[i]) << i;
        EXPECT_GE(near.ids[i], 0) << i;
        ++kept;
      } else {
        EXPECT_EQ(near.ids[i], -1) << i;
        ++cut;
      }
    }
    EXPECT_GT(kept, 0);
    EXPECT_GT(cut, 0);
  }
}

TEST(VectorIndexTest, ExactSearchKeepsItsNormsThroughAddsRemovalsAndReads) {
  constexpr int kDim = 32;
  constexpr int kN = 600;
  // Norms that differ a lot, so that a stale one moves the ranking.
  std::vector<float> x = RandomVectors(kN, kDim, 11);
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kDim; ++j) x[i * kDim + j] *= 0.2f + (i % 7);
  const std::vector<float> queries = RandomVectors(24, kDim, 12);
  testing::TempDir tmp;
  for (const char* factory : {"Flat", "IVF64,Flat"}) {
    SCOPED_TRACE(factory);
    auto index = VectorIndex::Create(kDim, factory, "test index");
    ASSERT_OK(index);
    std::unique_ptr<VectorIndex> v = std::move(*index);
    std::map<std::int64_t, int> live;  // id -> row of x
    auto add = [&](int from, int to) {
      std::vector<std::int64_t> ids;
      for (int i = from; i < to; ++i) {
        ids.push_back(1000 + i);
        live[1000 + i] = i;
      }
      ASSERT_OK(v->Add(to - from, x.data() + from * kDim, ids.data()));
    };
    auto remove = [&](std::int64_t first, std::int64_t last) {
      ASSERT_OK(v->RemoveRange(first, last));
      live.erase(live.lower_bound(first), live.lower_bound(last));
    };
    // Every query's 5 nearest, against brute force over what is live; 24
    // queries at once (FAISS's matrix-product path, which reads the norms)
    // and 3 (its per-query path).
    auto check = [&](const char* when) {
      SCOPED_TRACE(when);
      // "IVF64,Flat" untrained: its exact stand-in answers.
      ASSERT_EQ(v->needs_training(), std::string(factory) != "Flat");
      ASSERT_EQ(v->size(), static_cast<std::int64_t>(live.size()));
      for (int n : {24, 3}) {
        VectorIndex::Neighbours nn = v->Search(n, queries.data(), 5);
        ASSERT_EQ(nn.k, 5);
        for (int q = 0; q < n; ++q) {
          std::vector<std::pair<double, std::int64_t>> all;
          for (const auto& [id, row] : live) {
            double d = 0;
            for (int j = 0; j < kDim; ++j) {
              double t = queries[q * kDim + j] - x[row * kDim + j];
              d += t * t;
            }
            all.emplace_back(d, id);
          }
          std::sort(all.begin(), all.end());
          for (int r = 0; r < 5; ++r) {
            EXPECT_EQ(nn.ids[q * 5 + r], all[r].second) << "query " << q;
            EXPECT_NEAR(nn.distances[q * 5 + r], all[r].first,
                        1e-3 * all[r].first + 1e-3);
          }
        }
      }
    };
    add(0, 200);
    check("after the first add");
    add(200, kN);
    check("after the second add");
    remove(1050, 1150);
    check("after a removal");
    remove(1000, 1010);
    remove(1500, 1600);
    check("after two more removals");
    add(0, 10);
    check("after adding removed vectors back");
    std::string path = tmp.Join(std::string(factory) + ".faiss");
    ASSERT_OK(v->Write(path));
    auto read = VectorIndex::Read(path, kDim, factory, "test index");
    ASSERT_OK(read);
    v = std::move(*read);
    check("read back");
  }
}

// SearchEach ranks each group of regions as Search would alone, from one
// search over the index (ReferenceIndex::SearchGlobal's windows and cells).
TEST(GlobalIndexTest, SearchEachRanksEachGroupAsSearchAlone) {
  auto created = GlobalIndex::Create("Flat");
  ASSERT_OK(created);
  GlobalIndex& index = **created;
  // 300 references of 5 unit region vectors each.
  auto unit = [](std::vector<float> x) {
    for (std::size_t i = 0; i < x.size(); i += kGlobalDim) {
      float n = 0;
      for (int j = 0; j < kGlobalDim; ++j) n += x[i + j] * x[i + j];
      for (int j = 0; j < kGlobalDim; ++j) x[i + j] /= std::sqrt(n);
    }
    return x;
  };
  for (int ref = 1; ref <= 300; ++ref) {
    RegionVectors r;
    r.regions = {0, 1, 2, 3, 4};
    r.vectors = unit(RandomVectors(5, kGlobalDim, 100 + ref));
    ASSERT_OK(index.Add(ref, r));
  }
  // A query of 14 + 25 regions, the first near reference 7's, the 20th
  // near reference 250's.
  RegionVectors query;
  query.vectors = RandomVectors(39, kGlobalDim, 5);
  for (int i = 0; i < 39; ++i) query.regions.push_back(i);
  std::vector<float> near7 = unit(RandomVectors(5, kGlobalDim, 107));
  std::vector<float> near250 = unit(RandomVectors(5, kGlobalDim, 350));
  for (int j = 0; j < kGlobalDim; ++j) {
    query.vectors[j] += 8 * near7[j];
    query.vectors[20 * kGlobalDim + j] += 8 * near250[2 * kGlobalDim + j];
  }
  query.vectors = unit(query.vectors);
  auto part = [&](int from, int n) {
    RegionVectors p;
    p.regions.assign(query.regions.begin() + from,
                     query.regions.begin() + from + n);
    p.vectors.assign(query.vectors.begin() + from * kGlobalDim,
                     query.vectors.begin() + (from + n) * kGlobalDim);
    return p;
  };
  std::vector<std::vector<GlobalHit>> each =
      index.SearchEach(query, {14, 25}, 16, 12);
  ASSERT_EQ(each.size(), 2u);
  ASSERT_FALSE(each[0].empty());
  ASSERT_FALSE(each[1].empty());
  EXPECT_EQ(each[0][0].ref_id, 7);
  EXPECT_EQ(each[1][0].ref_id, 250);
  const std::vector<GlobalHit> alone[2] = {index.Search(part(0, 14), 16, 12),
                                           index.Search(part(14, 25), 16, 12)};
  for (int g = 0; g < 2; ++g) {
    ASSERT_EQ(each[g].size(), alone[g].size()) << "group " << g;
    for (std::size_t i = 0; i < each[g].size(); ++i) {
      EXPECT_EQ(each[g][i].ref_id, alone[g][i].ref_id) << g << " " << i;
      EXPECT_NEAR(each[g][i].similarity, alone[g][i].similarity, 1e-5);
    }
  }
}

TEST(VectorIndexTest, HammingEmbeddedIndexAnswersInSignatureBits) {
  constexpr int kDim = 32;
  const std::vector<float> x = RandomVectors(1000, kDim, 7);
  auto index = VectorIndex::Create(kDim, "IVF8,PCA32,SHm", "test index");
  ASSERT_OK(index);
  VectorIndex& v = **index;
  std::vector<std::int64_t> ids(1000);
  for (int i = 0; i < 1000; ++i) ids[i] = 7000 + i;
  ASSERT_OK(v.Add(1000, x.data(), ids.data()));
  // The exact stand-in answers in squared L2 until training.
  EXPECT_EQ(v.signature_bits(), 0);
  ASSERT_OK(v.Train(1000, x.data()));
  EXPECT_EQ(v.signature_bits(), 32);
  EXPECT_EQ(v.size(), 1000);
  // 12 bytes a vector (signature and id), plus the lists' centroids, the
  // PCA and one threshold per list and bit: not one per training vector
  // and bit (128 KB here), which FAISS sizes and would save.
  auto bytes = v.Serialize();
  ASSERT_OK(bytes);
  EXPECT_LT(bytes->size(), 40'000u);
  // A stored vector's own signature is among its nearest, at distance 0;
  // every distance is a whole number of bits.
  auto finds_itself = [&](const VectorIndex& index, int i) {
    VectorIndex::Neighbours nn = index.Search(1, x.data() + i * kDim, 8);
    bool found = false;
    for (int j = 0; j < nn.k; ++j) {
      const float d = nn.distances[j];
      EXPECT_GE(d, 0);
      EXPECT_LE(d, 32);
      EXPECT_EQ(d, std::floor(d));
      if (nn.ids[j] == 7000 + i) found = d == 0;
    }
    return found;
  };
  for (int i : {0, 123, 999}) EXPECT_TRUE(finds_itself(v, i)) << i;
  // A vector unlike any stored one is far from all of them.
  const std::vector<float> other = RandomVectors(1, kDim, 8);
  VectorIndex::Neighbours far = v.Search(1, other.data(), 1);
  ASSERT_EQ(far.k, 1);
  EXPECT_GT(far.distances[0], 0);
  // Written and read back trained, then removed from twice.
  testing::TempDir tmp;
  ASSERT_OK(v.Write(tmp.Join("sh.faiss")));
  auto read =
      VectorIndex::Read(tmp.Join("sh.faiss"), kDim, "IVF8,PCA32,SHm", "t");
  ASSERT_OK(read);
  EXPECT_EQ((*read)->signature_bits(), 32);
  EXPECT_TRUE(finds_itself(**read, 123));
  ASSERT_OK((*read)->RemoveRange(7100, 7200));
  ASSERT_OK((*read)->RemoveRange(7000, 7050));
  EXPECT_EQ((*read)->size(), 850);
  EXPECT_FALSE(finds_itself(**read, 123));
  EXPECT_TRUE(finds_itself(**read, 999));
}

TEST(VectorIndexTest, HandWrittenHammingSearchAnswersAsFaissEncodes) {
  // Spoor's list-major scan against a brute-force one: each query encoded
  // by FAISS for each of its nprobe nearest lists (as FAISS encodes what it
  // adds) and compared with every signature there. The same k smallest
  // distances within the radius for every query, from each scan kernel this
  // processor has, for each way FAISS sets the thresholds.
  // (FAISS's own search projects a query alone, rounding differently from
  // the batch it added: one bit of 64 differed for a query stored itself.)
  constexpr int kDim = 128;
  const std::vector<float> x = RandomVectors(3000, kDim, 11);
  std::vector<float> queries(x.begin(), x.begin() + 100 * kDim);  // stored
  const std::vector<float> fresh = RandomVectors(100, kDim, 12);
  queries.insert(queries.end(), fresh.begin(), fresh.end());
  const std::int64_t nq = queries.size() / kDim;
  using idx_t = faiss::Index::idx_t;
  for (const char* factory :
       {"IVF16,PCA64,SHm", "IVF16,PCA64,SH", "IVF16,PCA64,SH2.5c"}) {
    SCOPED_TRACE(factory);
    std::unique_ptr<faiss::Index> made(faiss::index_factory(kDim, factory));
    auto* sh = dynamic_cast<faiss::IndexIVFSpectralHash*>(made.get());
    ASSERT_NE(sh, nullptr);
    EXPECT_FALSE(CanSearchHamming(*sh));  // untrained
    sh->train(3000, x.data());
    std::vector<idx_t> ids(3000);
    for (int i = 0; i < 3000; ++i) ids[i] = 100 + i;
    sh->add_with_ids(3000, x.data(), ids.data());
    sh->nprobe = 4;
    ASSERT_TRUE(CanSearchHamming(*sh));
    constexpr int k = 5;
    std::vector<float> coarse_d(nq * 4);
    std::vector<idx_t> coarse(nq * 4);
    sh->quantizer->search(nq, queries.data(), 4, coarse_d.data(),
                          coarse.data());
    std::vector<std::uint8_t> codes(nq * 4 * 8);
    std::vector<float> repeated;
    for (std::int64_t q = 0; q < nq; ++q)
      for (int p = 0; p < 4; ++p)
        repeated.insert(repeated.end(), queries.begin() + q * kDim,
                        queries.begin() + (q + 1) * kDim);
    sh->encode_vectors(nq * 4, repeated.data(), coarse.data(), codes.data());
    // Every query's (bits, id) pairs in its lists, nearest first.
    std::vector<std::vector<std::pair<int, std::int64_t>>> all(nq);
    for (std::int64_t q = 0; q < nq; ++q) {
      for (int p = 0; p < 4; ++p) {
        const idx_t l = coarse[q * 4 + p];
        std::uint64_t qc;
        std::memcpy(&qc, codes.data() + (q * 4 + p) * 8, 8);
        const std::uint8_t* list = sh->invlists->get_codes(l);
        const idx_t* list_ids = sh->invlists->get_ids(l);
        for (std::size_t j = 0; j < sh->invlists->list_size(l); ++j) {
          std::uint64_t c;
          std::memcpy(&c, list + j * 8, 8);
          all[q].push_back({std::popcount(c ^ qc), list_ids[j]});
        }
      }
      std::sort(all[q].begin(), all[q].end());
    }
    // Each kernel this processor has, without a radius and with radii that
    // leave some queries fewer than k neighbours (or none).
    int cut_short = 0;
    for (HammingKernel kernel :
         {HammingKernel::kPortable, HammingKernel::kPopcnt,
          HammingKernel::kAvx512}) {
      if (!HasHammingKernel(kernel)) continue;
      for (int max_bits : {64, 24, 16}) {
        SCOPED_TRACE(::testing::Message()
                     << "kernel " << static_cast<int>(kernel) << ", max_bits "
                     << max_bits);
        std::vector<float> got_d(nq * k);
        std::vector<std::int64_t> got_i(nq * k);
        SearchHamming(*sh, nq, queries.data(), k, max_bits, got_d.data(),
                      got_i.data(), kernel);
        int zero = 0;
        for (std::int64_t q = 0; q < nq; ++q) {
          const auto& near = all[q];
          const int within = static_cast<int>(std::count_if(
              near.begin(), near.end(),
              [&](const auto& a) { return a.first <= max_bits; }));
          cut_short += within < k;
          for (int j = 0; j < k; ++j) {
            if (j >= within) {
              ASSERT_EQ(got_i[q * k + j], -1) << q << " " << j;
              continue;
            }
            ASSERT_EQ(got_d[q * k + j], near[j].first) << q << " " << j;
            // The id has that distance (ties may come in another order).
            auto it = std::find_if(
                near.begin(), near.end(),
                [&](const auto& a) { return a.second == got_i[q * k + j]; });
            ASSERT_NE(it, near.end()) << q;
            EXPECT_EQ(it->first, near[j].first) << q;
          }
          zero += q < 100 && got_d[q * k] == 0 &&
                  std::find(got_i.begin() + q * k, got_i.begin() + (q + 1) * k,
                            100 + q) != got_i.begin() + (q + 1) * k;
        }
        EXPECT_EQ(zero, 100);  // each stored query finds its own signature
      }
    }
    EXPECT_GT(cut_short, 0);  // the radius left some queries short
  }
  // Other signature lengths are left to FAISS.
  std::unique_ptr<faiss::Index> short_codes(
      faiss::index_factory(kDim, "IVF4,PCA32,SHm"));
  short_codes->train(3000, x.data());
  EXPECT_FALSE(CanSearchHamming(
      *dynamic_cast<faiss::IndexIVFSpectralHash*>(short_codes.get())));
}

TEST(VectorIndexTest, HandWrittenPqSearchAnswersAsFaiss) {
  // Spoor's list-major scan of a product-quantised IVF index against
  // FAISS's own search: the same distances (to rounding) and the same ids
  // but for ties, with 16-float sub-vectors (inner products by BLAS) and
  // 8-float ones (by FAISS's loop), after a write and a read, and after
  // a removal.
  constexpr int kDim = 128;
  const std::vector<float> x = RandomVectors(6000, kDim, 31);
  const std::vector<float> queries = RandomVectors(40, kDim, 32);
  const std::int64_t nq = 40;
  constexpr int k = 10;
  testing::TempDir tmp;
  using idx_t = faiss::Index::idx_t;
  for (const char* factory : {"IVF16,PQ8", "IVF16,PQ16"}) {
    SCOPED_TRACE(factory);
    std::unique_ptr<faiss::Index> made(faiss::index_factory(kDim, factory));
    auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(made.get());
    ASSERT_NE(pq, nullptr);
    pq->do_polysemous_training = false;
    EXPECT_FALSE(CanSearchPq(*pq));  // untrained
    pq->train(6000, x.data());
    std::vector<idx_t> ids(6000);
    for (int i = 0; i < 6000; ++i) ids[i] = 50 + i;
    pq->add_with_ids(6000, x.data(), ids.data());
    pq->nprobe = 4;
    const std::string path = tmp.Join("pq.faiss");
    faiss::write_index(pq, path.c_str());
    std::unique_ptr<faiss::Index> read(faiss::read_index(path.c_str()));
    auto* read_pq = dynamic_cast<faiss::IndexIVFPQ*>(read.get());
    ASSERT_NE(read_pq, nullptr);
    read_pq->nprobe = 4;
    faiss::IDSelectorRange removed(100, 1100);
    read_pq->remove_ids(removed);
    for (faiss::IndexIVFPQ* index : {pq, read_pq}) {
      ASSERT_TRUE(CanSearchPq(*index));
      std::vector<float> want_d(nq * k), got_d(nq * k);
      std::vector<idx_t> want_i(nq * k);
      std::vector<std::int64_t> got_i(nq * k);
      index->search(nq, queries.data(), k, want_d.data(), want_i.data());
      SearchPq(*index, nq, queries.data(), k, got_d.data(), got_i.data());
      int same = 0;
      for (std::int64_t i = 0; i < nq * k; ++i) {
        EXPECT_NEAR(got_d[i], want_d[i], 1e-4f * std::max(1.0f, want_d[i]))
            << i;
        if (got_i[i] == want_i[i]) {
          ++same;
          continue;
        }
        // A tie with the neighbour next to it in FAISS's answer.
        const std::int64_t j = i % k;
        const bool tie =
            (j > 0 && std::abs(want_d[i] - want_d[i - 1]) < 1e-4f) ||
            (j + 1 < k && std::abs(want_d[i] - want_d[i + 1]) < 1e-4f);
        EXPECT_TRUE(tie) << i << ": " << got_i[i] << " for " << want_i[i];
      }
      EXPECT_GT(same, nq * k * 9 / 10);
      if (index == read_pq) {
        for (std::int64_t id : got_i) EXPECT_TRUE(id < 100 || id >= 1100);
      }
    }
  }
}

TEST(VectorIndexTest, AnIvfIndexInAnIdMapIsRefusedForARebuild) {
  // The layout Spoor wrote for IVF factories before: its removals break.
  constexpr int kDim = 8;
  const std::vector<float> x = RandomVectors(400, kDim, 5);
  auto* ivf = faiss::index_factory(kDim, "IVF4,Flat");
  ivf->train(400, x.data());
  faiss::IndexIDMap map(ivf);
  map.own_fields = true;
  testing::TempDir tmp;
  faiss::write_index(&map, tmp.Join("old.faiss").c_str());
  auto read = VectorIndex::Read(tmp.Join("old.faiss"), kDim, "IVF4,Flat", "t");
  EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(read.status().message().find("layout"), std::string::npos);
}

TEST_F(ReferenceIndexTest, BadImageLeavesTheIndexUntouched) {
  auto index = CreateWith({"baboon.jpg"});
  auto bad =
      index->Add(testing::ReadFile(testing::FixturePath("truncated.jpg")),
                 "truncated.jpg", Labels{});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  Labels labels;
  labels.item_type = "tusk";
  auto mislabelled = index->Add(Photo("fruits.jpg"), "fruits.jpg", labels);
  EXPECT_EQ(mislabelled.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Stats().references, 1);
  ASSERT_OK(index->Verify());
}

// The global tier alone, as for indexes too large for voting.
IndexOptions GlobalOnly(const std::string& factory = "Flat") {
  IndexOptions options;
  options.descriptor_factory = "none";
  options.global_factory = factory;
  return options;
}

// The global tier's references for the centre 60 % of `photo`, best first.
std::vector<GlobalHit> HitsForCrop(const ReferenceIndex& index,
                                   const std::string& photo) {
  cv::Mat crop = testing::Crop(
      testing::LoadBgr(testing::kOpenCvData + "/" + photo), 0.2, 0.2, 0.8, 0.8);
  auto prepared = index.Prepare(testing::EncodeJpeg(crop, 85), "crop", {});
  EXPECT_TRUE(prepared.ok()) << prepared.status();
  return index.SearchGlobal(prepared->features, 16, 4, 0);
}

GlobalHit BestForCrop(const ReferenceIndex& index, const std::string& photo) {
  auto hits = HitsForCrop(index, photo);
  return hits.empty() ? GlobalHit{-1, 0} : hits.front();
}

const std::vector<std::string> kFour = {"baboon.jpg", "fruits.jpg",
                                        "building.jpg", "messi5.jpg"};

TEST_F(ReferenceIndexTest, GlobalTierLearnsItsCodebookAtSaveAndFindsCrops) {
  auto index = ReferenceIndex::Create(dir(), GlobalOnly());
  ASSERT_OK(index);
  for (const auto& p : kFour) ASSERT_OK((*index)->Add(Photo(p), p, Labels{}));
  // No codebook before the first Save(): the tier finds nothing yet.
  EXPECT_FALSE((*index)->Stats().global_index_trained);
  EXPECT_EQ((*index)->Stats().global_vectors, 0);
  EXPECT_EQ(BestForCrop(**index, "fruits.jpg").ref_id, -1);
  ASSERT_OK((*index)->Save());
  IndexStats s = (*index)->Stats();
  EXPECT_TRUE(s.global_index_trained);
  EXPECT_EQ(s.descriptors, 0);  // no voting tier
  EXPECT_GE(s.global_vectors, 4);
  EXPECT_LE(s.global_vectors, 4 * kReferenceRegions);
  EXPECT_GT(s.global_index_bytes, s.global_vectors * kGlobalDim * 4);
  EXPECT_EQ(s.descriptor_index_bytes, 0);
  for (size_t i = 0; i < kFour.size(); ++i) {
    auto hits = HitsForCrop(**index, kFour[i]);
    ASSERT_GE(hits.size(), 2u) << kFour[i];
    EXPECT_EQ(hits[0].ref_id, static_cast<std::int64_t>(i) + 1) << kFour[i];
    // The crop's own photo stands clear of the other three.
    EXPECT_GT(hits[0].similarity, hits[1].similarity + 0.1) << kFour[i];
    RecordProperty(kFour[i] + "_similarity",
                   std::to_string(hits[0].similarity));
    RecordProperty(kFour[i] + "_runner_up", std::to_string(hits[1].similarity));
  }
  ASSERT_OK((*index)->Verify());
}

TEST_F(ReferenceIndexTest, GlobalTierKeepsItsCodebookWhenRebuilt) {
  GlobalHit before;
  {
    auto index = CreateWith(kFour, GlobalOnly());
    before = BestForCrop(*index, "building.jpg");
    ASSERT_EQ(before.ref_id, 3);
  }
  {
    auto index = ReferenceIndex::Open(dir());
    ASSERT_OK(index);
    EXPECT_FALSE((*index)->Stats().rebuilt_on_open);
    GlobalHit reopened = BestForCrop(**index, "building.jpg");
    EXPECT_EQ(reopened.ref_id, 3);
    EXPECT_FLOAT_EQ(reopened.similarity, before.similarity);
  }
  // The vectors are derived: lost, they are described again with the same
  // codebook and give the same similarity.
  fs::remove(dir() + "/global.faiss");
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  GlobalHit rebuilt = BestForCrop(**index, "building.jpg");
  EXPECT_EQ(rebuilt.ref_id, 3);
  EXPECT_FLOAT_EQ(rebuilt.similarity, before.similarity);
  ASSERT_OK((*index)->Verify());
}

// A seller's grid of listings with one reference in a cell, a ninth or a
// sixteenth of the picture, in each of the 25 places: the query's 5x5
// windows of a third of its side frame the cell, where the 3x3 windows of
// half its side hold four cells of a 3x3 grid.
TEST_F(ReferenceIndexTest, GlobalTierFramesOneCellOfAGrid) {
  auto index = CreateWith(kFour, GlobalOnly());
  const std::vector<std::string> others = {
      "aero1.jpg", "box_in_scene.png", "graf1.png",  "leuvenA.jpg",
      "home.jpg",  "chicky_512.png",   "orange.jpg", "butterfly.jpg",
      "apple.jpg", "left01.jpg",       "blox.jpg",   "pic1.png",
      "board.jpg", "HappyFish.jpg",    "right01.jpg"};
  std::vector<cv::Mat> fillers;
  for (const auto& p : others) {
    fillers.push_back(testing::LoadBgr(testing::kOpenCvData + "/" + p));
    ASSERT_FALSE(fillers.back().empty()) << p;
  }
  const cv::Mat building =
      testing::LoadBgr(testing::kOpenCvData + "/building.jpg");  // id 3
  auto has_building = [](const std::vector<GlobalHit>& hits) {
    return std::any_of(hits.begin(), hits.end(),
                       [](const GlobalHit& h) { return h.ref_id == 3; });
  };
  int found_coarse = 0, found_with_cells = 0, places = 0;
  for (int side : {3, 4}) {
    for (int place = 0; place < side * side; ++place) {
      std::vector<cv::Mat> cells(fillers.begin(),
                                 fillers.begin() + side * side - 1);
      cells.insert(cells.begin() + place, building);
      cv::Mat grid =
          testing::Collage(cells, side, cv::Size(1200 / side, 900 / side));
      auto prepared =
          index->Prepare(testing::EncodeJpeg(grid, 85), "grid", Labels{});
      ASSERT_OK(prepared);
      // One candidate from the larger windows, then one more from the cells.
      auto coarse = index->SearchGlobal(prepared->features, 16, 1, 0);
      auto with_cells = index->SearchGlobal(prepared->features, 16, 1, 1);
      ASSERT_EQ(coarse.size(), 1u);
      ASSERT_GE(with_cells.size(), 1u);
      EXPECT_EQ(with_cells[0].ref_id, coarse[0].ref_id);  // kept first
      ASSERT_LE(with_cells.size(), 2u);
      found_coarse += has_building(coarse);
      found_with_cells += has_building(with_cells);
      ++places;
    }
  }
  // Measured: the larger windows rank the cell's photo first in 19 of 25
  // places; with one candidate from the cells it is among the two in 23
  // (13 and 20 with the references stored in packing 3: with four
  // references the codebook is learnt from few descriptors, and packing 3's
  // rounding moves their vectors).
  EXPECT_GE(found_with_cells, 22);
  EXPECT_GE(found_with_cells, found_coarse + 3);
  RecordProperty("found_coarse", found_coarse);
  RecordProperty("found_with_cells", found_with_cells);
  std::printf(
      "found with the larger windows %d, with a cell candidate %d, of "
      "%d places\n",
      found_coarse, found_with_cells, places);
}

// Rows written before schema 4 (every row's descriptors at 4 bits a bin,
// no packing column) are read as they were packed after the migration,
// beside new rows in packing 3 (an index built with --stored-packing 3),
// and both are found and verified alike.
TEST_F(ReferenceIndexTest, RowsOfBothPackingsAreReadAfterTheSchemaMigration) {
  std::map<std::int64_t, LocalFeatures> extracted;
  {
    IndexOptions basis;
    basis.stored_packing = kBasisPacking;
    auto index = CreateWith(kFour, basis);
    for (size_t i = 0; i < kFour.size(); ++i) {
      auto prepared = index->Prepare(Photo(kFour[i]), kFour[i], Labels{});
      ASSERT_OK(prepared);
      extracted[static_cast<std::int64_t>(i) + 1] = prepared->features;
    }
  }
  {
    // As the previous engine stored them.
    SQLite::Database db(dir() + "/references.db", SQLite::OPEN_READWRITE);
    for (const auto& [id, features] : extracted) {
      std::vector<std::uint8_t> nibbles =
          PackDescriptors(features, kNibblePacking);
      SQLite::Statement update(
          db, "UPDATE features SET descriptors = ? WHERE ref_id = ?");
      update.bind(1, nibbles.data(), static_cast<int>(nibbles.size()));
      update.bind(2, static_cast<std::int64_t>(id));
      ASSERT_EQ(update.exec(), 1);
    }
    db.exec(
        "ALTER TABLE features DROP COLUMN packing; PRAGMA user_version = 3;");
  }
  // Its FAISS files were built from those rows: here they are rebuilt.
  for (const char* f : {"descriptors.faiss", "global.faiss"})
    fs::remove(dir() + "/" + f);

  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  for (const auto& [id, features] : extracted) {
    auto stored = (*index)->Load(id);
    ASSERT_OK(stored);
    LocalFeatures want = features;
    QuantiseForStorage(want, kNibblePacking);
    EXPECT_EQ(stored->features.descriptors, want.descriptors) << id;
  }
  auto added = (*index)->Add(Photo("home.jpg"), "home.jpg", Labels{});
  ASSERT_OK(added);
  ASSERT_OK((*index)->Save());
  auto home = (*index)->Prepare(Photo("home.jpg"), "home.jpg", Labels{});
  ASSERT_OK(home);
  QuantiseForStorage(home->features, kBasisPacking);
  auto stored = (*index)->Load(added->id);
  ASSERT_OK(stored);
  EXPECT_EQ(stored->features.descriptors, home->features.descriptors);

  EXPECT_EQ(BestForCrop(**index, "building.jpg").ref_id, 3);
  EXPECT_EQ(BestForCrop(**index, "home.jpg").ref_id, added->id);
  ASSERT_OK((*index)->Verify());
  index->reset();

  SQLite::Database db(dir() + "/references.db");
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), 4);
  SQLite::Statement packings(
      db,
      "SELECT packing, COUNT(*), SUM(LENGTH(descriptors)) "
      "FROM features GROUP BY packing ORDER BY packing");
  ASSERT_TRUE(packings.executeStep());
  EXPECT_EQ(packings.getColumn(0).getInt(), kNibblePacking);
  EXPECT_EQ(packings.getColumn(1).getInt(), 4);
  ASSERT_TRUE(packings.executeStep());
  EXPECT_EQ(packings.getColumn(0).getInt(), kBasisPacking);
  EXPECT_EQ(packings.getColumn(1).getInt(), 1);
  EXPECT_EQ(packings.getColumn(2).getInt64(),
            std::int64_t{PackedDescriptorBytes(kBasisPacking)} *
                home->features.size());
}

TEST_F(ReferenceIndexTest, LostCodebookIsLearntAgainFromTheDatabase) {
  { CreateWith(kFour, GlobalOnly()); }
  std::ofstream(dir() + "/vocabulary.faiss", std::ios::trunc) << "garbage";
  auto index = ReferenceIndex::Open(dir());
  ASSERT_OK(index);
  EXPECT_TRUE((*index)->Stats().rebuilt_on_open);
  EXPECT_TRUE((*index)->Stats().global_index_trained);
  EXPECT_EQ(BestForCrop(**index, "messi5.jpg").ref_id, 4);
  ASSERT_OK((*index)->Verify());
}

TEST_F(ReferenceIndexTest, CodebookIsLearntAgainWhenTheIndexGrowsFourfold) {
  auto manifest = [&] {
    std::ifstream in(dir() + "/manifest.json");
    return nlohmann::json::parse(in);
  };
  auto index = CreateWith({"baboon.jpg"}, GlobalOnly());
  EXPECT_EQ(manifest()["codebook_references"], 1);
  for (const auto& p : {"fruits.jpg", "building.jpg"})
    ASSERT_OK(index->Add(Photo(p), p, Labels{}));
  ASSERT_OK(index->Save());
  EXPECT_EQ(manifest()["codebook_references"], 1);  // three: not yet
  ASSERT_OK(index->Add(Photo("messi5.jpg"), "messi5.jpg", Labels{}));
  ASSERT_OK(index->Save());
  EXPECT_EQ(manifest()["codebook_references"], 4);
  EXPECT_EQ(BestForCrop(*index, "baboon.jpg").ref_id, 1);
  ASSERT_OK(index->Verify());
}

TEST_F(ReferenceIndexTest, RemoveDropsGlobalVectors) {
  auto index = CreateWith(kFour, GlobalOnly());
  std::int64_t before = index->Stats().global_vectors;
  ASSERT_OK(index->Remove(2));
  EXPECT_LT(index->Stats().global_vectors, before);
  EXPECT_NE(BestForCrop(*index, "fruits.jpg").ref_id, 2);
  ASSERT_OK(index->Verify());
}

TEST_F(ReferenceIndexTest, CompactGlobalFactoryIsTrainedAtSave) {
  // 4-bit product quantisation: 16 centroids per part, few enough to train
  // on a handful of references.
  auto index = CreateWith(kFour, GlobalOnly("PQ16x4"));
  IndexStats s = index->Stats();
  EXPECT_TRUE(s.global_index_trained);
  EXPECT_GE(s.global_vectors, 4);
  EXPECT_EQ(BestForCrop(*index, "baboon.jpg").ref_id, 1);
  ASSERT_OK(index->Verify());
  index.reset();
  auto reopened = ReferenceIndex::Open(dir());
  ASSERT_OK(reopened);
  EXPECT_FALSE((*reopened)->Stats().rebuilt_on_open);
  EXPECT_EQ((*reopened)->Stats().global_vectors, s.global_vectors);
  EXPECT_EQ(BestForCrop(**reopened, "baboon.jpg").ref_id, 1);
}

TEST_F(ReferenceIndexTest, NoTiersButTheHashIsAllowed) {
  IndexOptions options = GlobalOnly("none");
  auto index = CreateWith({"baboon.jpg"}, options);
  EXPECT_EQ(index->Stats().global_vectors, 0);
  EXPECT_EQ(BestForCrop(*index, "baboon.jpg").ref_id, -1);
  ASSERT_OK(index->Verify());
  index.reset();
  auto reopened = ReferenceIndex::Open(dir());
  ASSERT_OK(reopened);
  EXPECT_FALSE((*reopened)->Stats().rebuilt_on_open);
}

TEST_F(ReferenceIndexTest, PictureWithoutKeypointsIsStillIndexed) {
  // A flat colour has no keypoints: only the hash tier can know it, but it
  // must store, reopen and verify like any other.
  cv::Mat flat(300, 400, CV_8UC3, cv::Scalar(40, 120, 200));
  auto index = CreateWith({"baboon.jpg"});
  auto added = index->Add(testing::EncodeJpeg(flat, 90), "flat.jpg", Labels{});
  ASSERT_OK(added);
  EXPECT_TRUE(added->added);
  auto stored = index->Load(added->id);
  ASSERT_OK(stored);
  EXPECT_EQ(stored->features.size(), 0);
  ASSERT_OK(index->Save());
  index.reset();
  auto reopened = ReferenceIndex::Open(dir());
  ASSERT_OK(reopened);
  EXPECT_EQ((*reopened)->Stats().references, 2);
  EXPECT_FALSE((*reopened)->Stats().rebuilt_on_open);
  ASSERT_OK((*reopened)->Verify());
}

}  // namespace
}  // namespace spoor
