// The spoor-indexer executable, run as a user would: exit codes, one-line
// errors, JSON lines, labels from the manifest, resume, remove and verify.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>

#include "bad_inputs.h"
#include "spoor/blas_kernels.h"
#include "test_util.h"

namespace spoor {
namespace {

struct CliRun {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

CliRun Indexer(const std::string& args) {
  testing::TempDir tmp;
  std::string cmd =
      std::string(SPOOR_INDEXER) + " " + args + " 2>" + tmp.Join("err");
  CliRun run;
  FILE* pipe = popen(cmd.c_str(), "r");
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0)
    run.out.append(buf.data(), n);
  int status = pclose(pipe);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  auto err = testing::ReadFile(tmp.Join("err"));
  run.err.assign(err.begin(), err.end());
  return run;
}

std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
  }
  return lines;
}

class IndexerCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    refs_ = testing::ReferenceImagesPath() + "/references";
    ads_ = testing::ReferenceImagesPath() + "/sample_ads";
    CliRun build = Indexer("build --index " + index() + " " + refs_);
    ASSERT_EQ(build.code, 0) << build.err;
  }
  std::string index() const { return tmp_.Join("idx"); }
  testing::TempDir tmp_;
  std::string refs_, ads_;
};

TEST_F(IndexerCliTest, BuildRecordsManifestLabelsAndResumes) {
  CliRun stats = Indexer("stats --json --index " + index());
  ASSERT_EQ(stats.code, 0);
  auto s = nlohmann::json::parse(stats.out);
  EXPECT_EQ(s["references"], 12);
  EXPECT_EQ(s["descriptor_factory"], "IVF1024,PCA64,SHm");
  // Trained once there are 10 descriptors for each of the 1024 lists;
  // searched exactly until then.
  EXPECT_EQ(s["descriptor_index_trained"].get<bool>(),
            s["descriptors"].get<std::int64_t>() >= 10240);
  EXPECT_EQ(s["global_factory"], "IVF1024,PQ64");
  // Whole image plus up to four windows per reference; trained, like the
  // voting tier, once there are 10 vectors a list.
  EXPECT_GE(s["global_vectors"], 12);
  EXPECT_LE(s["global_vectors"], 60);
  EXPECT_EQ(s["global_index_trained"].get<bool>(),
            s["global_vectors"].get<std::int64_t>() >= 10240);
  // Each part's bytes are reported; the voting tier is the largest.
  EXPECT_GT(s["descriptor_index_bytes"], s["global_index_bytes"]);
  EXPECT_GT(s["global_index_bytes"], 0);
  EXPECT_GT(s["database_bytes"], 0);
  EXPECT_GT(s["hash_index_bytes"], 0);

  CliRun list = Indexer("list --json --index " + index());
  ASSERT_EQ(list.code, 0);
  auto refs = JsonLines(list.out);
  ASSERT_EQ(refs.size(), 12u);
  bool elephant = false;
  for (const auto& r : refs) {
    if (r["source"] == "elephant.jpg") {
      elephant = true;
      EXPECT_EQ(r["labels"]["species_scientific"], "Loxodonta africana");
      EXPECT_EQ(r["labels"]["cites_appendix"], "I");
      EXPECT_EQ(r["labels"]["item_type"], "live_animal");
    }
  }
  EXPECT_TRUE(elephant);

  // Building again over the same folder adds nothing: every file is
  // recognised by its SHA-256 (this is how an interrupted build resumes).
  CliRun again = Indexer("build --index " + index() + " " + refs_);
  EXPECT_EQ(again.code, 0);
  EXPECT_NE(again.err.find("0 added, 12 already indexed"), std::string::npos)
      << again.err;
}

TEST_F(IndexerCliTest, QueryJsonFindsTheSampleAdsAndReportsBadFiles) {
  CliRun q =
      Indexer("query --json --index " + index() + " " + ads_ +
              "/ad_elephant_mirrored_crop_phone.jpg " +
              testing::FixturePath("truncated.jpg") + " " + ads_ +
              "/ad_box_rephotographed.png " + ads_ + "/ad_unrelated_lion.jpg");
  EXPECT_EQ(q.code, 3);  // one input was unreadable; the run went on
  auto lines = JsonLines(q.out);
  ASSERT_EQ(lines.size(), 4u);
  const auto& el = lines[0];
  EXPECT_TRUE(el["error"].is_null());
  ASSERT_FALSE(el["matches"].empty());
  EXPECT_EQ(el["matches"][0]["source"], "elephant.jpg");
  EXPECT_EQ(el["matches"][0]["transform"]["mirrored"], true);
  EXPECT_EQ(el["matches"][0]["verdict"], "modified_copy");
  EXPECT_GE(el["matches"][0]["score"].template get<double>(), 0.5);
  EXPECT_EQ(el["matches"][0]["query_box"].size(), 4u);
  EXPECT_EQ(el["matches"][0]["labels"]["species_common"],
            "African savanna elephant");

  EXPECT_NE(lines[1]["error"].template get<std::string>().find("truncated.jpg"),
            std::string::npos);
  EXPECT_EQ(lines[2]["matches"][0]["source"], "box.png");
  EXPECT_EQ(lines[2]["matches"][0]["verdict"], "same_item");
  EXPECT_TRUE(lines[3]["matches"].empty());
}

TEST_F(IndexerCliTest, RemoveThenVerifyAndQueryNoLongerFindsIt) {
  CliRun list = Indexer("list --json --index " + index());
  std::string id;
  for (const auto& r : JsonLines(list.out))
    if (r["source"] == "box.png") id = r["ref_id"];
  ASSERT_FALSE(id.empty());
  CliRun rm = Indexer("remove --index " + index() + " " + id);
  EXPECT_EQ(rm.code, 0) << rm.err;
  CliRun verify = Indexer("verify --index " + index());
  EXPECT_EQ(verify.code, 0) << verify.err;
  EXPECT_NE(verify.out.find("ok: 11 references"), std::string::npos);
  CliRun q = Indexer("query --json --index " + index() + " " + ads_ +
                     "/ad_box_rephotographed.png");
  EXPECT_EQ(q.code, 0);
  EXPECT_TRUE(JsonLines(q.out)[0]["matches"].empty());
}

TEST_F(IndexerCliTest, ErrorsAreOneLineWithTheDocumentedExitCodes) {
  CliRun unknown = Indexer("remove --index " + index() + " 999");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_NE(unknown.err.find("no reference with id 999"), std::string::npos);
  EXPECT_EQ(std::count(unknown.err.begin(), unknown.err.end(), '\n'), 1);

  CliRun missing =
      Indexer("build --index " + tmp_.Join("other") + " /nonexistent");
  EXPECT_EQ(missing.code, 2);
  EXPECT_NE(missing.err.find("/nonexistent"), std::string::npos);

  CliRun not_index = Indexer("query --index " + tmp_.Join("nothing") + " " +
                             ads_ + "/ad_unrelated_lion.jpg");
  EXPECT_EQ(not_index.code, 1);
  EXPECT_NE(not_index.err.find("no index manifest"), std::string::npos);

  CliRun usage = Indexer("query --index " + index());
  EXPECT_EQ(usage.code, 2);
  CliRun bad_score =
      Indexer("query --min-score 2 --index " + index() + " x.jpg");
  EXPECT_EQ(bad_score.code, 2);
  CliRun bad_label = Indexer("add --item-type tusk --index " + index() + " " +
                             ads_ + "/ad_unrelated_lion.jpg");
  EXPECT_EQ(bad_label.code, 2);
  EXPECT_NE(bad_label.err.find("item_type 'tusk'"), std::string::npos);
}

// The bad-input matrix (tests/bad_inputs.cc) through `query --json`: one
// JSON line per file, the refused ones with the decoder's reason and the
// file's name, exit code 3 (some inputs unreadable, the run went on).
TEST_F(IndexerCliTest, EveryFileOfTheBadInputMatrixGetsItsAnswer) {
  std::filesystem::create_directories(tmp_.Join("bad"));
  std::string args = "query --json --index " + index();
  auto inputs = testing::BadInputs();
  for (const auto& in : inputs) {
    std::string path = tmp_.Join("bad/" + in.name);
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(in.bytes.data()),
               static_cast<std::streamsize>(in.bytes.size()));
    args += " " + path;
  }
  CliRun q = Indexer(args);
  EXPECT_EQ(q.code, 3) << q.err;
  auto lines = JsonLines(q.out);
  ASSERT_EQ(lines.size(), inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(inputs[i].name);
    if (inputs[i].code == absl::StatusCode::kOk) {
      EXPECT_TRUE(lines[i]["error"].is_null()) << lines[i];
    } else {
      ASSERT_TRUE(lines[i]["error"].is_string()) << lines[i];
      std::string error = lines[i]["error"];
      EXPECT_NE(error.find(inputs[i].reason), std::string::npos) << error;
      EXPECT_NE(error.find(inputs[i].name), std::string::npos) << error;
    }
  }
}

// A manifest that reaches outside its folder is refused before any file is
// read, with one line naming the entry, and no index is written.
TEST_F(IndexerCliTest, ManifestPathTraversalIsRefused) {
  std::filesystem::create_directories(tmp_.Join("m"));
  std::ofstream(tmp_.Join("m/manifest.csv"))
      << "file,item_type\nok.jpg,ivory\n../../etc/passwd,ivory\n";
  CliRun build =
      Indexer("build --index " + tmp_.Join("m_idx") + " " + tmp_.Join("m"));
  EXPECT_NE(build.code, 0);
  EXPECT_NE(build.code, 3);
  EXPECT_NE(build.err.find("manifest.csv:3: file '../../etc/passwd' is "
                           "outside the manifest's folder"),
            std::string::npos)
      << build.err;
  EXPECT_EQ(std::count(build.err.begin(), build.err.end(), '\n'), 1)
      << build.err;
  EXPECT_FALSE(std::filesystem::exists(tmp_.Join("m_idx/manifest.json")));
}

// A full disk (a small tmpfs) mid-build and mid-add: one clear line, a
// non-zero exit, and the index there before still opens and verifies with
// every acknowledged reference. Needs root to mount; skipped otherwise.
TEST_F(IndexerCliTest, DiskFullIsAClearErrorAndTheIndexSurvives) {
  std::string full = tmp_.Join("full");
  testing::SmallTmpfs disk(full, 4);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";

  // 12 references fit in the database (about 0.4 MB) but not their FAISS
  // files (the voting tier's float descriptors, about 4 MB).
  std::string idx = full + "/idx";
  CliRun build = Indexer("build --index " + idx + " " + refs_);
  EXPECT_EQ(build.code, 1);
  // Progress lines, then the one error line.
  auto errors = [](const std::string& err) {
    int n = 0;
    for (size_t at = 0;
         (at = err.find("spoor-indexer: error:", at)) != std::string::npos;
         ++at)
      ++n;
    return n;
  };
  EXPECT_EQ(errors(build.err), 1) << build.err;
  EXPECT_NE(build.err.find("No space left on device"), std::string::npos)
      << build.err;
  // What the database acknowledged is an index: the FAISS files are rebuilt
  // from it on open.
  CliRun verify = Indexer("verify --index " + idx);
  EXPECT_EQ(verify.code, 0) << verify.err;
  EXPECT_NE(verify.out.find("ok: 12 references"), std::string::npos)
      << verify.out;

  // A good index (voting tier off: small files) and then adds until the
  // disk is full: the add fails with the reason, the index still verifies
  // and holds everything acknowledged before.
  ASSERT_EQ(std::system(("rm -rf " + idx).c_str()), 0);
  CliRun small = Indexer("build --factory none --index " + idx + " " + refs_);
  ASSERT_EQ(small.code, 0) << small.err;
  int failed_at = -1, acknowledged = 0;
  for (int i = 0; i < 200 && failed_at < 0; ++i) {
    cv::Mat noise(600, 800, CV_8UC3);
    cv::randu(noise, 0, 255);
    std::string path = tmp_.Join("noise" + std::to_string(i) + ".png");
    cv::imwrite(path, noise);
    CliRun add = Indexer("add --index " + idx + " " + path);
    // "added N" on stdout is the acknowledgement: the row is committed.
    acknowledged += add.out.rfind("added ", 0) == 0;
    if (add.code != 0) {
      failed_at = i;
      EXPECT_NE(add.err.find("No space left on device"), std::string::npos)
          << add.err;
      EXPECT_NE(add.err.find("the references added above are stored"),
                std::string::npos)
          << add.err;
      EXPECT_EQ(errors(add.err), 1) << add.err;
    }
  }
  ASSERT_GE(failed_at, 0) << "the disk never filled";
  verify = Indexer("verify --index " + idx);
  EXPECT_EQ(verify.code, 0) << verify.err;
  EXPECT_NE(verify.out.find("ok: " + std::to_string(12 + acknowledged) +
                            " references"),
            std::string::npos)
      << verify.out << " after " << acknowledged << " acknowledged adds";
}

TEST_F(IndexerCliTest, DecodeLimitsAreSetPerIndexAndApplyToQueries) {
  std::string small = tmp_.Join("small");
  CliRun build =
      Indexer("build --max-pixels 250000 --index " + small + " " + refs_);
  // 800x600 references are over 250000 pixels: skipped and reported.
  EXPECT_EQ(build.code, 3);
  EXPECT_NE(build.err.find("over the limit of 250000"), std::string::npos)
      << build.err;
  CliRun q = Indexer("query --json --index " + small + " " + ads_ +
                     "/ad_unrelated_lion.jpg");
  EXPECT_NE(
      JsonLines(q.out)[0]["error"].template get<std::string>().find("250000"),
      std::string::npos);
}

// The default index (SetUp) stores descriptors in packing 2; one built with
// --stored-packing 3 holds the same references in a smaller database and
// finds the same sample ads.
TEST_F(IndexerCliTest, StoredPackingIsChosenAtBuildAndKept) {
  std::string basis = tmp_.Join("basis");
  CliRun build =
      Indexer("build --stored-packing 3 --index " + basis + " " + refs_);
  ASSERT_EQ(build.code, 0) << build.err;
  auto manifest =
      nlohmann::json::parse(std::ifstream(basis + "/manifest.json"));
  EXPECT_EQ(manifest["descriptor"]["stored_packing"], 3);
  auto stats = [](const std::string& dir) {
    return nlohmann::json::parse(Indexer("stats --json --index " + dir).out);
  };
  nlohmann::json compact = stats(basis), wide = stats(index());
  EXPECT_EQ(compact["references"], wide["references"]);
  // The same features, their descriptors in 48 bytes instead of 64.
  EXPECT_EQ(compact["keypoint_bytes"], wide["keypoint_bytes"]);
  EXPECT_GT(compact["keypoint_bytes"].get<std::int64_t>(), 0);
  EXPECT_EQ(compact["descriptor_bytes"].get<std::int64_t>() * 64,
            wide["descriptor_bytes"].get<std::int64_t>() * 48);
  // In the database file too, with SQLite's pages and log around them.
  EXPECT_LT(compact["database_bytes"].get<double>(),
            0.9 * wide["database_bytes"].get<double>())
      << compact["database_bytes"] << " " << wide["database_bytes"];
  for (const std::string& dir : {index(), basis}) {
    CliRun q = Indexer("query --json --index " + dir + " " + ads_ +
                       "/ad_box_rephotographed.png");
    EXPECT_EQ(q.code, 0) << q.err;
    auto lines = JsonLines(q.out);
    ASSERT_EQ(lines.size(), 1u);
    ASSERT_FALSE(lines[0]["matches"].empty()) << dir;
    EXPECT_EQ(lines[0]["matches"][0]["source"], "box.png") << dir;
  }
  CliRun bad = Indexer("build --stored-packing 5 --index " + tmp_.Join("bad") +
                       " " + refs_);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("stored-packing"), std::string::npos) << bad.err;
}

TEST_F(IndexerCliTest, AddIsIdempotentByContent) {
  std::string lion = ads_ + "/ad_unrelated_lion.jpg";
  CliRun first =
      Indexer("add --item-type live_animal --index " + index() + " " + lion);
  EXPECT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.out.rfind("added 13", 0), 0u) << first.out;
  CliRun second = Indexer("add --index " + index() + " " + lion);
  EXPECT_EQ(second.code, 0);
  EXPECT_EQ(second.out.rfind("already indexed as 13", 0), 0u) << second.out;
  CliRun q = Indexer("query --json --index " + index() + " " + lion);
  EXPECT_EQ(JsonLines(q.out)[0]["matches"][0]["verdict"], "exact");
}

// OpenBLAS 0.3.21 runs its SSE3 kernels on processors newer than it knows;
// the executables ask for the widest this processor supports instead.
TEST(FasterBlasKernels, AsksForTheWidestKernelsWhenOpenBlasFellBack) {
  EXPECT_EQ(FasterBlasKernels("Prescott", true, true), "SkylakeX");
  EXPECT_EQ(FasterBlasKernels("Prescott", true, false), "Haswell");
  EXPECT_EQ(FasterBlasKernels("Sandybridge", true, false), "Haswell");
  EXPECT_EQ(FasterBlasKernels("Prescott", false, false), "");
  // Kernels that already use AVX2 are kept, whatever the case.
  EXPECT_EQ(FasterBlasKernels("Haswell", true, true), "");
  EXPECT_EQ(FasterBlasKernels("Zen", true, true), "");
  EXPECT_EQ(FasterBlasKernels("SKYLAKEX", true, true), "");
  EXPECT_EQ(FasterBlasKernels("SapphireRapids", true, true), "");
  // Another BLAS: nothing to ask.
  EXPECT_EQ(FasterBlasKernels("", true, true), "");
}

TEST_F(IndexerCliTest, RunsTheWidestBlasKernelsThisProcessorHas) {
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr)
    GTEST_SKIP() << "OPENBLAS_CORETYPE is set, and the caller's choice wins";
  CliRun stats = Indexer("stats --json --index " + index());
  ASSERT_EQ(stats.code, 0) << stats.err;
  const std::string kernels = nlohmann::json::parse(stats.out)["blas_kernels"];
  if (kernels.empty()) GTEST_SKIP() << "libblas.so.3 is not OpenBLAS";
  EXPECT_EQ(FasterBlasKernelsForThisProcessor(kernels), "")
      << "spoor-indexer runs OpenBLAS's " << kernels;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) {
    EXPECT_NE(kernels, "Prescott");
  }

  // A choice the caller made is kept, even a slow one.
  CliRun prescott = [&] {
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    CliRun r = Indexer("stats --json --index " + index());
    unsetenv("OPENBLAS_CORETYPE");
    return r;
  }();
  ASSERT_EQ(prescott.code, 0) << prescott.err;
  EXPECT_EQ(nlohmann::json::parse(prescott.out)["blas_kernels"], "Prescott");
}

}  // namespace
}  // namespace spoor
