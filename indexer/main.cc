// spoor-indexer: builds and queries Spoor index directories.
//
// Exit codes: 0 success; 1 the index could not be opened, written or
// verified; 2 bad usage; 3 done, but some input images were skipped
// (unreadable, undecodable, over a limit) and reported.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "indexer/progress.h"
#include "spoor/blas_kernels.h"
#include "spoor/image.h"
#include "spoor/label_manifest.h"
#include "spoor/matcher.h"
#include "spoor/reference_index.h"

namespace spoor::indexer {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitIndexError = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSkipped = 3;

std::atomic<bool> g_interrupted{false};
void OnSignal(int) { g_interrupted = true; }

// A one-line reason on stderr, the exit code returned.
int Fail(int code, const std::string& message) {
  spdlog::error("{}", message);
  return code;
}

bool IsImagePath(const fs::path& p) {
  static const std::set<std::string> kExtensions = {
      ".jpg", ".jpeg", ".png",  ".webp", ".gif",
      ".tif", ".tiff", ".heic", ".heif", ".avif"};
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return kExtensions.count(ext) > 0;
}

struct SourceFile {
  fs::path path;       // to read
  std::string source;  // to record: relative to SOURCE
  Labels labels;
};

// SOURCE is a folder (every image under it, labels from a manifest.csv or
// manifest.json inside it if present) or a manifest (only the files it lists).
absl::StatusOr<std::vector<SourceFile>> CollectSources(const fs::path& source) {
  std::error_code ec;
  fs::path root = fs::is_directory(source, ec) ? source : source.parent_path();
  std::optional<fs::path> manifest;
  if (fs::is_regular_file(source, ec)) {
    manifest = source;
  } else if (fs::is_directory(source, ec)) {
    for (const char* name : {"manifest.csv", "manifest.json"}) {
      if (fs::exists(source / name)) manifest = source / name;
    }
  } else {
    return absl::NotFoundError(source.string() + ": no such file or folder");
  }
  std::map<std::string, Labels> labels;
  std::vector<SourceFile> files;
  if (manifest) {
    auto entries = ReadLabelManifest(manifest->string());
    if (!entries.ok()) return entries.status();
    for (auto& e : *entries) {
      fs::path file = fs::path(e.file).lexically_normal();
      labels[file.string()] = e.labels;
      if (fs::is_regular_file(source, ec)) {
        files.push_back({root / file, file.string(), e.labels});
      }
    }
  }
  if (fs::is_directory(source, ec)) {
    for (auto it = fs::recursive_directory_iterator(source, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (!it->is_regular_file(ec) || !IsImagePath(it->path())) continue;
      std::string rel = it->path().lexically_relative(source).string();
      auto l = labels.find(rel);
      files.push_back(
          {it->path(), rel, l == labels.end() ? Labels{} : l->second});
    }
    std::sort(files.begin(), files.end(),
              [](const SourceFile& a, const SourceFile& b) {
                return a.source < b.source;
              });
  }
  return files;
}

json LabelsJson(const Labels& l) {
  json j = json::object();
  auto put = [&](const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
  };
  put("species_scientific", l.species_scientific);
  put("species_common", l.species_common);
  put("item_type", l.item_type);
  put("cites_appendix", l.cites_appendix);
  put("source", l.source);
  put("case", l.case_ref);
  put("licence", l.licence);
  return j;
}

json ReferenceJson(const Reference& r) {
  return {{"ref_id", std::to_string(r.id)},
          {"source", r.source},
          {"sha256", r.sha256},
          {"bytes", r.bytes},
          {"width", r.width},
          {"height", r.height},
          {"format", r.format},
          {"added_at", r.added_at},
          {"labels", LabelsJson(r.labels)}};
}

json BoxJson(const Box& b) { return {b.x, b.y, b.width, b.height}; }

json MatchJson(const Match& m) {
  const Transform& t = m.transform;
  return {{"ref_id", std::to_string(m.reference.id)},
          {"source", m.reference.source},
          {"score", std::round(m.score * 1000) / 1000},
          {"verdict", VerdictName(m.verdict)},
          {"inliers", m.inliers},
          {"hash_distance", m.hash_distance},
          {"query_box", BoxJson(m.query_box)},
          {"ref_box", BoxJson(m.ref_box)},
          {"transform",
           {{"mirrored", t.mirrored},
            {"rotation_degrees", std::round(t.rotation_degrees * 10) / 10},
            {"scale", std::round(t.scale * 1000) / 1000},
            {"perspective", t.perspective},
            {"homography", t.homography}}},
          {"labels", LabelsJson(m.reference.labels)}};
}

int RunBuild(const std::string& dir, const std::string& source,
             const IndexOptions& options, int jobs) {
  auto files = CollectSources(source);
  if (!files.ok())
    return Fail(kExitUsage, std::string(files.status().message()));
  auto index = ReferenceIndex::Create(dir, options);
  if (!index.ok())
    return Fail(kExitIndexError, std::string(index.status().message()));
  ReferenceIndex& idx = **index;
  spdlog::info("indexing {} images from {} into {} ({} threads)", files->size(),
               source, dir, jobs);

  // Workers decode and describe; this thread inserts in file order, so ids
  // are deterministic. Files already indexed (an interrupted build being
  // resumed) are recognised by SHA-256 and skipped before any decoding.
  const size_t n = files->size();
  std::vector<std::optional<absl::StatusOr<PreparedReference>>> slots(n);
  std::vector<bool> already(n, false);
  std::mutex mu;
  std::condition_variable ready;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next++) < n && !g_interrupted;) {
      const SourceFile& f = (*files)[i];
      absl::StatusOr<PreparedReference> prepared = absl::UnknownError("");
      auto bytes = ReadFileBytes(f.path.string(), options.decode.max_bytes);
      if (!bytes.ok()) {
        prepared = bytes.status();
      } else if (idx.FindBySha256(Sha256Hex(bytes->data(), bytes->size()))) {
        std::lock_guard lock(mu);
        already[i] = true;
        prepared = absl::AlreadyExistsError("");
      } else {
        prepared = idx.Prepare(*bytes, f.source, f.labels);
      }
      std::lock_guard lock(mu);
      slots[i] = std::move(prepared);
      ready.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < jobs; ++t) threads.emplace_back(worker);

  Progress progress("build", static_cast<long>(n));
  long added = 0, existing = 0, skipped = 0;
  long next_save = 200;
  absl::Status fatal;
  for (size_t i = 0; i < n; ++i) {
    std::unique_lock lock(mu);
    ready.wait(lock, [&] { return slots[i].has_value() || g_interrupted; });
    if (!slots[i].has_value()) break;
    auto prepared = std::move(*slots[i]);
    slots[i].reset();
    bool was_indexed = already[i];
    lock.unlock();
    if (was_indexed) {
      ++existing;
    } else if (!prepared.ok()) {
      ++skipped;
      spdlog::warn("skipped: {}", std::string(prepared.status().message()));
    } else {
      auto result = idx.Insert(std::move(*prepared));
      if (!result.ok()) {
        fatal = result.status();
        g_interrupted = true;
        break;
      }
      result->added ? ++added : ++existing;
      // Every insert is already committed to the database (a crash rebuilds
      // the FAISS files from it), so saves only train tiers early; at
      // doubling counts they cost O(n log n) I/O, not O(n^2).
      if (added >= next_save) {
        if (auto s = idx.Save(); !s.ok()) fatal = s;
        next_save *= 2;
      }
    }
    progress.Update(static_cast<long>(i + 1));
  }
  g_interrupted = g_interrupted || !fatal.ok();
  ready.notify_all();
  for (auto& t : threads) t.join();
  if (auto s = idx.Save(); !s.ok() && fatal.ok()) fatal = s;
  if (!fatal.ok()) return Fail(kExitIndexError, std::string(fatal.message()));
  IndexStats stats = idx.Stats();
  spdlog::info(
      "{} added, {} already indexed, {} skipped; index holds {} "
      "references, {} descriptors",
      added, existing, skipped, stats.references, stats.descriptors);
  if (added + existing + skipped < static_cast<long>(n)) {
    return Fail(kExitIndexError,
                "interrupted: run the same command again to resume");
  }
  return skipped > 0 ? kExitSkipped : kExitOk;
}

int RunAdd(const std::string& dir, const std::vector<std::string>& images,
           const Labels& labels) {
  if (auto s = ValidateLabels(labels); !s.ok())
    return Fail(kExitUsage, std::string(s.message()));
  auto index = ReferenceIndex::Open(dir);
  if (!index.ok())
    return Fail(kExitIndexError, std::string(index.status().message()));
  int code = kExitOk;
  for (const auto& image : images) {
    auto bytes = ReadFileBytes(image, (*index)->options().decode.max_bytes);
    auto result = bytes.ok() ? (*index)->Add(*bytes, image, labels)
                             : absl::StatusOr<AddResult>(bytes.status());
    if (!result.ok()) {
      spdlog::warn("skipped: {}", std::string(result.status().message()));
      code = kExitSkipped;
      continue;
    }
    std::cout << (result->added ? "added " : "already indexed as ")
              << result->id << "\t" << image << "\n";
  }
  // The references printed above are in the database already; only the
  // derived FAISS files failed, and Open rebuilds them.
  if (auto s = (*index)->Save(); !s.ok())
    return Fail(kExitIndexError,
                absl::StrCat("saving the index files failed (the references "
                             "added above are stored; the files are rebuilt "
                             "on the next open): ",
                             s.message()));
  return code;
}

int RunRemove(const std::string& dir, const std::vector<std::int64_t>& ids) {
  auto index = ReferenceIndex::Open(dir);
  if (!index.ok())
    return Fail(kExitIndexError, std::string(index.status().message()));
  for (std::int64_t id : ids) {
    if (auto s = (*index)->Remove(id); !s.ok()) {
      (void)(*index)->Save();
      return Fail(absl::IsNotFound(s) ? kExitUsage : kExitIndexError,
                  std::string(s.message()));
    }
    std::cout << "removed " << id << "\n";
  }
  if (auto s = (*index)->Save(); !s.ok())
    return Fail(kExitIndexError, std::string(s.message()));
  return kExitOk;
}

int RunList(const std::string& dir, bool as_json) {
  auto index = ReferenceIndex::Open(dir);
  if (!index.ok())
    return Fail(kExitIndexError, std::string(index.status().message()));
  std::int64_t after = 0;
  while (true) {
    auto page = (*index)->List(after, 500);
    if (!page.ok())
      return Fail(kExitIndexError, std::string(page.status().message()));
    if (page->empty()) break;
    for (const Reference& r : *page) {
      if (as_json) {
        std::cout << ReferenceJson(r).dump() << "\n";
      } else {
        std::cout << r.id << "\t" << r.source << "\t" << r.width << "x"
                  << r.height << "\t" << r.labels.species_common << "\t"
                  << r.labels.item_type << "\n";
      }
      after = r.id;
    }
  }
  return kExitOk;
}

int RunStats(const std::string& dir, bool as_json) {
  auto index = ReferenceIndex::Open(dir);
  if (!index.ok())
    return Fail(kExitIndexError, std::string(index.status().message()));
  IndexStats s = (*index)->Stats();
  auto features = (*index)->StoredFeatureBytes();
  if (!features.ok())
    return Fail(kExitIndexError, std::string(features.status().message()));
  json j = {{"references", s.references},
            {"descriptors", s.descriptors},
            {"hashes", s.hashes},
            {"descriptor_index_trained", s.descriptor_index_trained},
            {"descriptor_factory", s.descriptor_factory},
            {"descriptor_version", s.descriptor_version},
            {"global_vectors", s.global_vectors},
            {"global_index_trained", s.global_index_trained},
            {"global_factory", s.global_factory},
            {"disk_bytes", s.disk_bytes},
            {"database_bytes", s.database_bytes},
            {"keypoint_bytes", features->keypoints},
            {"descriptor_bytes", features->descriptors},
            {"hash_index_bytes", s.hash_index_bytes},
            {"descriptor_index_bytes", s.descriptor_index_bytes},
            {"global_index_bytes", s.global_index_bytes},
            {"rebuilt_on_open", s.rebuilt_on_open},
            // What this process multiplies matrices with (not stored).
            {"blas_kernels", BlasKernels()}};
  if (as_json) {
    std::cout << j.dump() << "\n";
  } else {
    for (auto& [k, v] : j.items()) std::cout << k << ": " << v << "\n";
  }
  return kExitOk;
}

int RunVerify(const std::string& dir) {
  auto index = ReferenceIndex::Open(dir);
  if (!index.ok())
    return Fail(kExitIndexError, std::string(index.status().message()));
  if (auto s = (*index)->Verify(); !s.ok())
    return Fail(kExitIndexError, "verify failed: " + std::string(s.message()));
  IndexStats s = (*index)->Stats();
  std::cout << "ok: " << s.references << " references, " << s.descriptors
            << " descriptors, " << s.global_vectors
            << " global vectors; database and FAISS indexes agree\n";
  return kExitOk;
}

int RunQuery(const std::string& dir, const std::vector<std::string>& images,
             const MatchOptions& options, bool as_json) {
  auto index = ReferenceIndex::Open(dir);
  if (!index.ok())
    return Fail(kExitIndexError, std::string(index.status().message()));
  Matcher matcher(**index);
  int code = kExitOk;
  for (const auto& image : images) {
    auto bytes = ReadFileBytes(image, (*index)->options().decode.max_bytes);
    auto result = bytes.ok() ? matcher.Match(*bytes, options, image)
                             : absl::StatusOr<MatchResult>(bytes.status());
    if (!result.ok()) code = kExitSkipped;
    if (as_json) {
      json j = {
          {"query", image}, {"matches", json::array()}, {"error", nullptr}};
      if (result.ok()) {
        for (const Match& m : result->matches)
          j["matches"].push_back(MatchJson(m));
        const StageTimings& t = result->timings;
        j["timings_ms"] = {{"decode", t.decode_ms},     {"hash", t.hash_ms},
                           {"features", t.features_ms}, {"search", t.search_ms},
                           {"verify", t.verify_ms},     {"total", t.total_ms}};
      } else {
        j["error"] = std::string(result.status().message());
      }
      std::cout << j.dump() << "\n" << std::flush;
      continue;
    }
    if (!result.ok()) {
      std::cout << image << ": error: " << result.status().message() << "\n";
      continue;
    }
    if (result->matches.empty()) std::cout << image << ": no match\n";
    for (const Match& m : result->matches) {
      std::cout << image << ": " << VerdictName(m.verdict) << " "
                << m.reference.source << " (ref " << m.reference.id
                << ", score " << std::round(m.score * 100) / 100 << ", "
                << m.inliers << " inliers"
                << (m.transform.mirrored ? ", mirrored" : "") << ")";
      if (!m.reference.labels.species_common.empty())
        std::cout << " [" << m.reference.labels.species_common << "]";
      std::cout << "\n";
    }
  }
  return code;
}

}  // namespace
}  // namespace spoor::indexer

int main(int argc, char** argv) {
  spoor::RerunWithFasterBlasKernels(argv);
  using namespace spoor;
  using namespace spoor::indexer;
  auto logger = spdlog::stderr_color_mt("spoor-indexer");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("spoor-indexer: %^%l%$: %v");

  CLI::App app{"spoor-indexer: build and query Spoor reference indexes"};
  app.require_subcommand(1);
  std::string dir;
  auto add_index = [&](CLI::App* c) {
    c->add_option("--index", dir, "index directory")->required();
  };

  IndexOptions build_options;
  std::string source;
  int jobs =
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  auto* build = app.add_subcommand(
      "build", "index every image of SOURCE (a folder or a manifest)");
  add_index(build);
  build
      ->add_option("SOURCE", source,
                   "folder of images, or a .csv/.json manifest")
      ->required();
  build
      ->add_option("--factory", build_options.descriptor_factory,
                   "FAISS factory string of the voting tier, or none")
      ->capture_default_str();
  build
      ->add_option("--global-factory", build_options.global_factory,
                   "FAISS factory string of the global (VLAD) tier, or none")
      ->capture_default_str();
  build
      ->add_option("--search-breadth", build_options.descriptor_search_breadth,
                   "IVF nprobe / HNSW efSearch of both tiers")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  build
      ->add_option("--max-side", build_options.decode.max_side,
                   "working resolution, longest side in pixels")
      ->capture_default_str()
      ->check(CLI::Range(64, 4096));
  build
      ->add_option("--max-bytes", build_options.decode.max_bytes,
                   "largest encoded image accepted, bytes (index and queries)")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 32));
  build
      ->add_option("--max-pixels", build_options.decode.max_pixels,
                   "most pixels an image header may declare")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 34));
  build
      ->add_option("--max-dimension", build_options.decode.max_dimension,
                   "most pixels a side an image header may declare")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  build
      ->add_option("--max-features", build_options.features.max_features,
                   "local features per image")
      ->capture_default_str()
      ->check(CLI::Range(16, 4096));
  build
      ->add_option("--octave-side", build_options.features.octave_side,
                   "longest side of SIFT's first octave for references, "
                   "pixels (twice --max-side keeps SIFT's finest scales)")
      ->capture_default_str()
      ->check(CLI::Range(64, 8192));
  build
      ->add_option("--query-octave-side", build_options.query_octave_side,
                   "longest side of SIFT's first octave for queries, pixels")
      ->capture_default_str()
      ->check(CLI::Range(64, 8192));
  build
      ->add_option("--contrast-threshold",
                   build_options.features.contrast_threshold,
                   "SIFT's contrast threshold")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1.0));
  build
      ->add_option("--min-features", build_options.features.min_features,
                   "feature floor for references: an image with fewer "
                   "keypoints is lifted to it with keypoints under the "
                   "contrast threshold (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  build
      ->add_option("--query-min-features", build_options.query_min_features,
                   "feature floor for queries and the ads kept as sightings")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  build
      ->add_option("--stored-packing", build_options.stored_packing,
                   "how stored descriptors are packed: 2 (70 bytes a "
                   "feature, 4 bits a RootSIFT bin) or 3 (54 bytes, 4-bit "
                   "codes on a PCA basis)")
      ->capture_default_str()
      ->check(CLI::IsMember({2, 3}));
  build->add_option("--jobs", jobs, "decoding threads")
      ->check(CLI::Range(1, 256));

  std::vector<std::string> images;
  Labels labels;
  auto* add = app.add_subcommand("add", "add images to an existing index");
  add_index(add);
  add->add_option("IMAGE", images, "image files")->required();
  add->add_option("--species-scientific", labels.species_scientific);
  add->add_option("--species-common", labels.species_common);
  add->add_option("--item-type", labels.item_type);
  add->add_option("--cites-appendix", labels.cites_appendix);
  add->add_option("--source", labels.source);
  add->add_option("--case", labels.case_ref);
  add->add_option("--licence", labels.licence);

  std::vector<std::int64_t> ids;
  auto* remove = app.add_subcommand("remove", "remove references by id");
  add_index(remove);
  remove->add_option("ID", ids, "reference ids")->required();

  bool as_json = false;
  auto* list = app.add_subcommand("list", "list references");
  add_index(list);
  list->add_flag("--json", as_json, "one JSON object per line");
  auto* stats = app.add_subcommand("stats", "index statistics");
  add_index(stats);
  stats->add_flag("--json", as_json, "JSON output");
  auto* verify =
      app.add_subcommand("verify", "check that database and indexes agree");
  add_index(verify);

  MatchOptions match_options;
  auto* query = app.add_subcommand("query", "match images against the index");
  add_index(query);
  query->add_option("IMAGE", images, "query images")->required();
  query->add_flag("--json", as_json, "one JSON object per line per image");
  query
      ->add_option("--min-score", match_options.min_score,
                   "lowest score listed; 0 lists every verified candidate")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  query->add_option("--top", match_options.max_results, "matches per image")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "spoor-indexer: " << e.what() << " (see --help)\n";
    return kExitUsage;
  }

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  if (*build) return RunBuild(dir, source, build_options, jobs);
  if (*add) return RunAdd(dir, images, labels);
  if (*remove) return RunRemove(dir, ids);
  if (*list) return RunList(dir, as_json);
  if (*stats) return RunStats(dir, as_json);
  if (*verify) return RunVerify(dir);
  if (*query) return RunQuery(dir, images, match_options, as_json);
  return kExitUsage;
}
