// Fuzz target: opening an index directory one of whose files (the manifest,
// a FAISS file or the SQLite database, chosen by the first byte) was
// replaced by hostile bytes: a torn write, bit rot, a file from elsewhere.
//
// Checks, beyond "no crash": Open answers with a status that names the
// problem, or serves an index that Verify accepts (or, for a database damaged
// where Open did not read, rejects as DataLoss); whenever the database is
// intact, a damaged derived file never loses a reference (Open rebuilds
// from the database) and every reference still matches its own photo.
#include <filesystem>
#include <span>
#include <string>

#include "fuzz_util.h"
#include "spoor/matcher.h"
#include "spoor/reference_index.h"

namespace fs = std::filesystem;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  using spoor::fuzz::Fail;
  static const std::string template_dir = [] {
    std::string dir = spoor::fuzz::MakeTempDir("index-template");
    spoor::fuzz::BuildTemplateIndex(dir);
    return dir;
  }();
  static const std::string work = spoor::fuzz::MakeTempDir("index-open");
  static const std::vector<std::uint8_t> box =
      spoor::fuzz::ReadAll(spoor::fuzz::ReferencePhoto("box.png"));
  if (size < 1) return 0;
  const int which = data[0] % spoor::fuzz::kIndexFileCount;
  const std::string replaced = spoor::fuzz::kIndexFiles[which];

  fs::remove_all(work);
  fs::copy(template_dir, work, fs::copy_options::recursive);
  spoor::fuzz::WriteAll(work + "/" + replaced, data + 1, size - 1);

  auto index = spoor::ReferenceIndex::Open(work);
  const bool database_intact = replaced != "references.db";
  if (!index.ok()) {
    if (index.status().message().empty()) Fail("refusal without a message");
    // Only the manifest (the build's options) or the database itself may
    // stop an open; a damaged FAISS file is rebuilt from the database.
    if (replaced != "manifest.json" && database_intact)
      Fail("damaged " + replaced +
           " stopped the open: " + index.status().ToString());
    return 0;
  }
  if (auto verified = (*index)->Verify(); !verified.ok()) {
    // A damaged page deep in the database shows only when it is read (Open
    // does not read every page); it must then be reported as DataLoss.
    if (database_intact || verified.code() != absl::StatusCode::kDataLoss)
      Fail("Open served an index Verify rejects (" + replaced +
           "): " + verified.ToString());
    return 0;
  }
  spoor::IndexStats stats = (*index)->Stats();
  if (database_intact &&
      stats.references != std::size(spoor::fuzz::kTemplatePhotos)) {
    Fail("damaged " + replaced +
         " lost references: " + std::to_string(stats.references));
  }
  spoor::Matcher matcher(**index);
  auto result = matcher.Match(box, spoor::MatchOptions{}, "box.png");
  if (database_intact && replaced != "manifest.json") {
    if (!result.ok())
      Fail("box.png no longer matches: " + result.status().ToString());
    if (result->matches.empty() ||
        result->matches[0].reference.source != "box.png")
      Fail("box.png no longer matches itself after a damaged " + replaced);
  }
  return 0;
}
