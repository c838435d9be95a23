#include <fstream>

#include "features/feature_codec.h"
#include "spoor/label_manifest.h"
#include "spoor/reference.h"
#include "store/database.h"
#include "store/reference_store.h"
#include "test_util.h"

namespace spoor {
namespace {

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

TEST(LabelManifest, ReadsCsvWithQuotedFields) {
  testing::TempDir dir;
  WriteText(dir.Join("m.csv"),
            "file,species_scientific,species_common,item_type,cites_appendix,"
            "source,case,licence\n"
            "a.jpg,Loxodonta africana,\"Elephant, African\",ivory,I,seizure,"
            "\"C-1 \"\"north\"\"\",CC-BY\n"
            "\n"
            "sub/b.png,,,,,,,\n");
  auto entries = ReadLabelManifest(dir.Join("m.csv"));
  ASSERT_OK(entries);
  ASSERT_EQ(entries->size(), 2u);
  const Labels& a = (*entries)[0].labels;
  EXPECT_EQ((*entries)[0].file, "a.jpg");
  EXPECT_EQ(a.species_common, "Elephant, African");
  EXPECT_EQ(a.item_type, "ivory");
  EXPECT_EQ(a.cites_appendix, "I");
  EXPECT_EQ(a.case_ref, "C-1 \"north\"");
  EXPECT_EQ((*entries)[1].file, "sub/b.png");
  EXPECT_EQ((*entries)[1].labels, Labels{});
}

TEST(LabelManifest, ReadsJson) {
  testing::TempDir dir;
  WriteText(dir.Join("m.json"),
            R"({"references": [{"file": "x.jpg", "item_type": "horn",
                "species_common": "Black rhino", "cites_appendix": "I"}]})");
  auto entries = ReadLabelManifest(dir.Join("m.json"));
  ASSERT_OK(entries);
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].labels.item_type, "horn");
  EXPECT_EQ((*entries)[0].labels.species_common, "Black rhino");
}

TEST(LabelManifest, ErrorsNameTheLineAndTheProblem) {
  testing::TempDir dir;
  WriteText(dir.Join("bad_type.csv"),
            "file,item_type\na.jpg,ivory\nb.jpg,tusk\n");
  auto s = ReadLabelManifest(dir.Join("bad_type.csv")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(":3: item_type 'tusk'"), std::string::npos) << s;

  WriteText(dir.Join("bad_col.csv"), "file,colour\na.jpg,red\n");
  s = ReadLabelManifest(dir.Join("bad_col.csv")).status();
  EXPECT_NE(s.message().find("unknown column 'colour'"), std::string::npos)
      << s;

  WriteText(dir.Join("short.csv"), "file,item_type\na.jpg\n");
  s = ReadLabelManifest(dir.Join("short.csv")).status();
  EXPECT_NE(s.message().find(":2: 1 fields"), std::string::npos) << s;

  WriteText(dir.Join("bad.json"),
            R"([{"file": "a.jpg", "cites_appendix": "IV"}])");
  s = ReadLabelManifest(dir.Join("bad.json")).status();
  EXPECT_NE(s.message().find("entry 0: cites_appendix 'IV'"), std::string::npos)
      << s;

  WriteText(dir.Join("broken.json"), "[{");
  EXPECT_EQ(ReadLabelManifest(dir.Join("broken.json")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadLabelManifest(dir.Join("m.txt")).status().code(),
            absl::StatusCode::kNotFound);
}

// The manifest half of the bad-input matrix: each refused with the line or
// entry and the problem named, before any file is opened.
TEST(LabelManifest, HostileEntriesAreRefusedNamingTheProblem) {
  testing::TempDir dir;
  struct Case {
    std::string name, text, reason;
  };
  std::vector<Case> cases = {
      {"missing_file.csv", "file,item_type\n,ivory\n", ":2: empty 'file'"},
      {"missing_file.json", R"([{"item_type": "ivory"}])",
       "entry 0: no 'file'"},
      {"traversal.csv", "file\na.jpg\n../../etc/passwd\n",
       ":3: file '../../etc/passwd' is outside the manifest's folder"},
      {"sneaky.csv", "file\nsub/../../x.jpg\n", "is outside the manifest"},
      {"absolute.csv", "file\n/etc/passwd\n",
       ":2: file '/etc/passwd' is an absolute path"},
      {"absolute.json", R"([{"file": "/etc/shadow"}])",
       "entry 0: file '/etc/shadow' is an absolute path"},
      {"duplicate.csv", "file\na.jpg\n./a.jpg\n",
       ":3: file './a.jpg' is listed more than once"},
      {"duplicate.json", R"([{"file": "a.jpg"}, {"file": "a.jpg"}])",
       "entry 1: file 'a.jpg' is listed more than once"},
      {"latin1.csv",
       "file,species_common\na.jpg,Fran\xe7"
       "ais\n",
       ":2: a field is not valid UTF-8"},
      {"overlong.csv", "file\n\xc0\xaf.jpg\n", "not valid UTF-8"},
      {"surrogate.csv", "file,source\na.jpg,\xed\xa0\x80\n", "not valid UTF-8"},
      {"latin1.json", "[{\"file\": \"a.jpg\", \"source\": \"\xe9\"}]",
       "invalid JSON"},
  };
  for (const Case& c : cases) {
    WriteText(dir.Join(c.name), c.text);
    auto s = ReadLabelManifest(dir.Join(c.name)).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name << s;
    EXPECT_NE(s.message().find(c.reason), std::string::npos) << c.name << s;
    EXPECT_NE(s.message().find(c.name), std::string::npos) << s;
  }
  // Good UTF-8 and a file in a subfolder are fine.
  WriteText(dir.Join("good.csv"),
            "file,species_common\nsub/a.jpg,\xc3\x89l\xc3\xa9phant "
            "\xf0\x9f\x90\x98\n");
  auto good = ReadLabelManifest(dir.Join("good.csv"));
  ASSERT_OK(good);
  EXPECT_EQ((*good)[0].labels.species_common,
            "\xc3\x89l\xc3\xa9phant \xf0\x9f\x90\x98");
}

TEST(Sha256, MatchesTheKnownDigest) {
  EXPECT_EQ(Sha256Hex("abc", 3),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

StoredReference MakeStored(const std::string& sha, int keypoints) {
  StoredReference s;
  s.reference.source = "photos/" + sha + ".jpg";
  s.reference.sha256 = sha;
  s.reference.bytes = 1234;
  s.reference.width = 640;
  s.reference.height = 480;
  s.reference.format = "jpeg";
  s.reference.labels.species_common = "Pangolin";
  s.reference.labels.item_type = "scales";
  s.hash[0] = 0xab;
  s.hash[31] = 0xcd;
  s.features.width = 320;
  s.features.height = 240;
  for (int i = 0; i < keypoints; ++i) {
    s.features.keypoints.push_back({float(i), float(2 * i), 3.5f, 90.0f});
  }
  s.features.descriptors.assign(keypoints * kDescriptorDim, 7);
  return s;
}

absl::StatusOr<std::unique_ptr<ReferenceStore>> OpenStore(
    const std::string& path) {
  auto db = Database::Open(path);
  if (!db.ok()) return db.status();
  return ReferenceStore::Open(*db);
}

TEST(ReferenceStore, RoundTripsEverythingThroughARealSqliteFile) {
  testing::TempDir dir;
  std::int64_t id;
  {
    auto store = OpenStore(dir.Join("refs.db"));
    ASSERT_OK(store);
    auto inserted = (*store)->Insert(MakeStored("aa", 5));
    ASSERT_OK(inserted);
    id = *inserted;
  }
  auto store = OpenStore(dir.Join("refs.db"));  // reopened
  ASSERT_OK(store);
  auto got = (*store)->GetStored(id);
  ASSERT_OK(got);
  EXPECT_EQ(got->reference.source, "photos/aa.jpg");
  EXPECT_EQ(got->reference.labels.item_type, "scales");
  EXPECT_EQ(got->hash[0], 0xab);
  EXPECT_EQ(got->hash[31], 0xcd);
  ASSERT_EQ(got->features.size(), 5);
  // Features come back in their stored (quantised) form: exactly what
  // QuantiseForStorage gives, within the codec's precision of the original.
  StoredReference want = MakeStored("aa", 5);
  QuantiseForStorage(want.features);
  EXPECT_NEAR(got->features.keypoints[4].y, 8.0f, 240 / 65535.0);
  EXPECT_EQ(got->features.keypoints[4].y, want.features.keypoints[4].y);
  EXPECT_NEAR(got->features.keypoints[4].size, 3.5f, 3.5f * 0.015);
  EXPECT_EQ(got->features.descriptors, want.features.descriptors);
  EXPECT_FALSE(got->reference.added_at.empty());
  EXPECT_EQ((*store)->FindBySha256("aa"), id);
  EXPECT_EQ((*store)->FindBySha256("zz"), std::nullopt);
}

TEST(ReferenceStore, DuplicateShaIsRefusedAndRemoveCascades) {
  testing::TempDir dir;
  auto store = OpenStore(dir.Join("refs.db"));
  ASSERT_OK(store);
  auto a = (*store)->Insert(MakeStored("aa", 2));
  ASSERT_OK(a);
  EXPECT_FALSE((*store)->Insert(MakeStored("aa", 2)).ok());
  auto b = (*store)->Insert(MakeStored("bb", 3));
  ASSERT_OK(b);
  EXPECT_EQ(*(*store)->Count(), 2);
  ASSERT_OK((*store)->Remove(*a));
  EXPECT_EQ((*store)->Remove(*a).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->Get(*a).status().code(), absl::StatusCode::kNotFound);
  int seen = 0;
  ASSERT_OK((*store)->ForEach([&](StoredReference&& s) {
    ++seen;
    EXPECT_EQ(s.reference.id, *b);
    EXPECT_EQ(s.features.size(), 3);
  }));
  EXPECT_EQ(seen, 1);
  // Ids are never reused after a removal.
  auto c = (*store)->Insert(MakeStored("cc", 1));
  ASSERT_OK(c);
  EXPECT_GT(*c, *b);
}

TEST(ReferenceStore, ListPagesById) {
  testing::TempDir dir;
  auto store = OpenStore(dir.Join("refs.db"));
  ASSERT_OK(store);
  for (const char* sha : {"a", "b", "c", "d", "e"})
    ASSERT_OK((*store)->Insert(MakeStored(sha, 1)));
  auto first = (*store)->List(0, 2);
  ASSERT_OK(first);
  ASSERT_EQ(first->size(), 2u);
  auto rest = (*store)->List(first->back().id, 10);
  ASSERT_OK(rest);
  ASSERT_EQ(rest->size(), 3u);
  EXPECT_EQ(rest->front().sha256, "c");
}

TEST(ReferenceStore, ListFiltersByOneLabel) {
  testing::TempDir dir;
  auto store = OpenStore(dir.Join("refs.db"));
  ASSERT_OK(store);
  StoredReference ivory = MakeStored("a", 1);
  ivory.reference.labels.item_type = "ivory";
  ivory.reference.labels.source = "seizure 7";
  ASSERT_OK((*store)->Insert(ivory));
  ASSERT_OK((*store)->Insert(MakeStored("b", 1)));  // scales
  auto only = (*store)->List(0, 10, LabelFilter{"item_type", "ivory"});
  ASSERT_OK(only);
  ASSERT_EQ(only->size(), 1u);
  EXPECT_EQ(only->front().sha256, "a");
  auto by_source = (*store)->List(0, 10, LabelFilter{"source", "seizure 7"});
  ASSERT_OK(by_source);
  EXPECT_EQ(by_source->size(), 1u);
  EXPECT_EQ(
      (*store)->List(0, 10, LabelFilter{"sha256; DROP", "x"}).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidateLabelFilter({"colour", "red"}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*(*store)->Count(), 2);
}

TEST(ReferenceStore, UnopenablePathIsAnError) {
  auto db = Database::Open("/nonexistent/dir/refs.db");
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace spoor
