#include "spoor/reference_index.h"

#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "index/descriptor_index.h"
#include "index/hash_index.h"
#include "store/reference_store.h"
#include "util/atomic_file.h"
#include "util/status_macros.h"

namespace spoor {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kFormatVersion = 1;
constexpr const char* kHashFactory = "BFlat256,IDMap";
constexpr const char* kManifest = "manifest.json";
constexpr const char* kDatabase = "references.db";
constexpr const char* kHashFile = "hash.faissbin";
constexpr const char* kDescriptorFile = "descriptors.faiss";

json OptionsToJson(const IndexOptions& o) {
  return {
      {"format", "spoor-index"},
      {"format_version", kFormatVersion},
      {"descriptor",
       {{"kind", "rootsift-u8"},
        {"version", kDescriptorVersion},
        {"dim", kDescriptorDim},
        {"max_features", o.features.max_features},
        {"min_side", o.features.min_side}}},
      {"descriptor_factory", o.descriptor_factory},
      {"descriptor_search_breadth", o.descriptor_search_breadth},
      {"hash", {{"kind", "dct"}, {"bits", kHashBits}}},
      {"hash_factory", kHashFactory},
      {"decode",
       {{"max_side", o.decode.max_side},
        {"max_bytes", o.decode.max_bytes},
        {"max_pixels", o.decode.max_pixels},
        {"max_dimension", o.decode.max_dimension}}},
  };
}

// Refuses a manifest whose descriptors this build cannot compare with its own.
absl::StatusOr<IndexOptions> OptionsFromJson(const json& j,
                                             const std::string& where) {
  try {
    if (j.at("format").get<std::string>() != "spoor-index" ||
        j.at("format_version").get<int>() != kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": not a spoor index of format version ", kFormatVersion));
    }
    const json& d = j.at("descriptor");
    int version = d.at("version").get<int>();
    int dim = d.at("dim").get<int>();
    if (version != kDescriptorVersion || dim != kDescriptorDim) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": index has descriptor version ", version, " dim ", dim,
          "; this build uses version ", kDescriptorVersion, " dim ",
          kDescriptorDim, ". Rebuild the index"));
    }
    if (j.at("hash").at("bits").get<int>() != kHashBits ||
        j.at("hash_factory").get<std::string>() != kHashFactory) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": hash index layout differs from this build's ",
                       kHashFactory, ". Rebuild the index"));
    }
    IndexOptions o;
    o.descriptor_factory = j.at("descriptor_factory").get<std::string>();
    o.descriptor_search_breadth = j.at("descriptor_search_breadth").get<int>();
    o.features.max_features = d.at("max_features").get<int>();
    o.features.min_side = d.at("min_side").get<int>();
    const json& dec = j.at("decode");
    o.decode.max_side = dec.at("max_side").get<int>();
    o.decode.max_bytes = dec.at("max_bytes").get<std::int64_t>();
    o.decode.max_pixels = dec.at("max_pixels").get<std::int64_t>();
    o.decode.max_dimension = dec.at("max_dimension").get<int>();
    return o;
  } catch (const json::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": malformed manifest: ", e.what()));
  }
}

absl::StatusOr<json> ReadManifestJson(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(absl::StrCat(path, ": no index manifest"));
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded()) {
    return absl::DataLossError(absl::StrCat(path, ": manifest is not JSON"));
  }
  return j;
}

}  // namespace

ReferenceIndex::ReferenceIndex(std::string dir, IndexOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {}
ReferenceIndex::~ReferenceIndex() = default;

absl::StatusOr<std::unique_ptr<ReferenceIndex>> ReferenceIndex::Create(
    const std::string& dir, const IndexOptions& options) {
  std::string manifest = (fs::path(dir) / kManifest).string();
  if (fs::exists(manifest)) {
    SPOOR_ASSIGN_OR_RETURN(auto index, Open(dir));
    if (OptionsToJson(index->options()) != OptionsToJson(options)) {
      return absl::FailedPreconditionError(absl::StrCat(
          dir, ": holds an index built with other options (",
          index->options().descriptor_factory, ", ",
          index->options().decode.max_side, " px, ",
          index->options().features.max_features,
          " features); use another directory or the same options"));
    }
    return index;
  }
  if (options.features.max_features < 1 ||
      options.features.max_features > kMaxKeypointsPerRef) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_features must be in 1..", kMaxKeypointsPerRef));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": cannot create directory: ", ec.message()));
  }
  std::unique_ptr<ReferenceIndex> index(new ReferenceIndex(dir, options));
  SPOOR_ASSIGN_OR_RETURN(
      index->store_,
      ReferenceStore::Open((fs::path(dir) / kDatabase).string()));
  index->hashes_ = std::make_unique<HashIndex>();
  SPOOR_ASSIGN_OR_RETURN(index->descriptors_,
                         DescriptorIndex::Create(options.descriptor_factory));
  index->descriptors_->SetSearchBreadth(options.descriptor_search_breadth);
  std::unique_lock lock(index->mu_);
  SPOOR_RETURN_IF_ERROR(index->WriteManifestLocked());
  return index;
}

absl::StatusOr<std::unique_ptr<ReferenceIndex>> ReferenceIndex::Open(
    const std::string& dir) {
  std::string manifest_path = (fs::path(dir) / kManifest).string();
  SPOOR_ASSIGN_OR_RETURN(json manifest, ReadManifestJson(manifest_path));
  SPOOR_ASSIGN_OR_RETURN(IndexOptions options,
                         OptionsFromJson(manifest, manifest_path));
  std::unique_ptr<ReferenceIndex> index(new ReferenceIndex(dir, options));
  std::string db_path = (fs::path(dir) / kDatabase).string();
  if (!fs::exists(db_path)) {
    return absl::DataLossError(absl::StrCat(db_path, ": database is missing"));
  }
  SPOOR_ASSIGN_OR_RETURN(index->store_, ReferenceStore::Open(db_path));
  SPOOR_RETURN_IF_ERROR(index->LoadOrRebuild());
  return index;
}

absl::Status ReferenceIndex::LoadOrRebuild() {
  std::unique_lock lock(mu_);
  SPOOR_ASSIGN_OR_RETURN(std::int64_t count, store_->Count());
  std::string hash_path = (fs::path(dir_) / kHashFile).string();
  std::string desc_path = (fs::path(dir_) / kDescriptorFile).string();
  if (fs::exists(hash_path) && fs::exists(desc_path)) {
    auto hashes = HashIndex::Read(hash_path);
    auto descriptors =
        DescriptorIndex::Read(desc_path, options_.descriptor_factory);
    if (hashes.ok() && descriptors.ok() && (*hashes)->size() == count) {
      hashes_ = std::move(*hashes);
      descriptors_ = std::move(*descriptors);
      descriptors_->SetSearchBreadth(options_.descriptor_search_breadth);
      return absl::OkStatus();
    }
    // A FAISS file that disagrees with the database is stale or damaged:
    // the database is the truth, so fall through and rebuild.
  }
  rebuilt_on_open_ = true;
  SPOOR_RETURN_IF_ERROR(RebuildLocked());
  return WriteManifestLocked();
}

absl::Status ReferenceIndex::RebuildLocked() {
  auto hashes = std::make_unique<HashIndex>();
  SPOOR_ASSIGN_OR_RETURN(auto descriptors,
                         DescriptorIndex::Create(options_.descriptor_factory));
  descriptors->SetSearchBreadth(options_.descriptor_search_breadth);
  if (descriptors->needs_training()) {
    std::vector<float> sample;
    SPOOR_RETURN_IF_ERROR(store_->ForEach([&](StoredReference&& s) {
      std::vector<float> f = DescriptorsAsFloat(s.features);
      sample.insert(sample.end(), f.begin(), f.end());
    }));
    // Too few descriptors to train yet: keep the hash tier working and try
    // again at the next Save().
    if (!sample.empty()) (void)descriptors->Train(sample);
  }
  absl::Status add_status;
  bool trained = !descriptors->needs_training();
  SPOOR_RETURN_IF_ERROR(store_->ForEach([&](StoredReference&& s) {
    hashes->Add(s.reference.id, s.hash);
    if (trained && add_status.ok())
      add_status = descriptors->Add(s.reference.id, s.features);
  }));
  SPOOR_RETURN_IF_ERROR(add_status);
  hashes_ = std::move(hashes);
  descriptors_ = std::move(descriptors);
  return absl::OkStatus();
}

absl::Status ReferenceIndex::WriteManifestLocked() {
  json j = OptionsToJson(options_);
  j["references"] = hashes_->size();
  j["descriptors"] = descriptors_->size();
  std::string text = j.dump(2) + "\n";
  return WriteFileAtomically(
      (fs::path(dir_) / kManifest).string(),
      [&](std::FILE* f) { std::fwrite(text.data(), 1, text.size(), f); });
}

absl::Status ReferenceIndex::Save() {
  std::unique_lock lock(mu_);
  if (descriptors_->needs_training()) {
    SPOOR_RETURN_IF_ERROR(RebuildLocked());
  }
  SPOOR_RETURN_IF_ERROR(hashes_->Write((fs::path(dir_) / kHashFile).string()));
  SPOOR_RETURN_IF_ERROR(
      descriptors_->Write((fs::path(dir_) / kDescriptorFile).string()));
  return WriteManifestLocked();
}

absl::StatusOr<PreparedReference> ReferenceIndex::Prepare(
    std::span<const std::uint8_t> bytes, const std::string& source,
    const Labels& labels) const {
  SPOOR_RETURN_IF_ERROR(ValidateLabels(labels));
  SPOOR_ASSIGN_OR_RETURN(Image image,
                         DecodeImage(bytes, options_.decode, source));
  PreparedReference p;
  p.reference.source = source;
  p.reference.sha256 = Sha256Hex(bytes.data(), bytes.size());
  p.reference.bytes = static_cast<std::int64_t>(bytes.size());
  p.reference.width = image.original_width;
  p.reference.height = image.original_height;
  p.reference.format = image.format;
  p.reference.labels = labels;
  p.hash = ComputeHash(image);
  p.features = ExtractLocalFeatures(image, options_.features);
  return p;
}

absl::StatusOr<AddResult> ReferenceIndex::Insert(PreparedReference prepared) {
  // The writer lock covers the duplicate check and the database insert, so
  // two concurrent adds of the same bytes give one reference, and a reader
  // never sees a FAISS id whose row is missing, or the reverse.
  std::unique_lock lock(mu_);
  if (auto existing = store_->FindBySha256(prepared.reference.sha256)) {
    return AddResult{*existing, false};
  }
  StoredReference stored{std::move(prepared.reference), prepared.hash,
                         std::move(prepared.features)};
  SPOOR_ASSIGN_OR_RETURN(std::int64_t id, store_->Insert(stored));
  hashes_->Add(id, stored.hash);
  // An untrained index (IVF before its first Save) gets the descriptors when
  // it is trained and rebuilt from the database.
  absl::Status added = descriptors_->needs_training()
                           ? absl::OkStatus()
                           : descriptors_->Add(id, stored.features);
  if (!added.ok()) {
    // Keep database and indexes in step: undo the row.
    hashes_->Remove(id);
    (void)store_->Remove(id);
    return added;
  }
  return AddResult{id, true};
}

absl::StatusOr<AddResult> ReferenceIndex::Add(
    std::span<const std::uint8_t> bytes, const std::string& source,
    const Labels& labels) {
  if (auto existing = FindBySha256(Sha256Hex(bytes.data(), bytes.size()))) {
    return AddResult{*existing, false};
  }
  SPOOR_ASSIGN_OR_RETURN(PreparedReference prepared,
                         Prepare(bytes, source, labels));
  return Insert(std::move(prepared));
}

std::optional<std::int64_t> ReferenceIndex::FindBySha256(
    const std::string& sha256) const {
  return store_->FindBySha256(sha256);
}

absl::Status ReferenceIndex::Remove(std::int64_t id) {
  std::unique_lock lock(mu_);
  SPOOR_RETURN_IF_ERROR(store_->Remove(id));
  hashes_->Remove(id);
  if (descriptors_->needs_training()) return absl::OkStatus();
  absl::Status removed = descriptors_->Remove(id);
  if (absl::IsUnimplemented(removed)) return RebuildLocked();
  return removed;
}

absl::StatusOr<Reference> ReferenceIndex::Get(std::int64_t id) const {
  return store_->Get(id);
}

absl::StatusOr<std::vector<Reference>> ReferenceIndex::List(
    std::int64_t after_id, int limit, const LabelFilter& filter) const {
  SPOOR_RETURN_IF_ERROR(ValidateLabelFilter(filter));
  return store_->List(after_id, limit, filter);
}

IndexStats ReferenceIndex::Stats() const {
  IndexStats s;
  {
    std::shared_lock lock(mu_);
    s.hashes = hashes_->size();
    s.descriptors = descriptors_->size();
    s.descriptor_index_trained = !descriptors_->needs_training();
  }
  auto count = store_->Count();
  s.references = count.ok() ? *count : -1;
  s.descriptor_factory = options_.descriptor_factory;
  s.descriptor_version = kDescriptorVersion;
  s.rebuilt_on_open = rebuilt_on_open_;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.is_regular_file(ec)) s.disk_bytes += entry.file_size(ec);
  }
  return s;
}

absl::Status ReferenceIndex::Verify() const {
  std::shared_lock lock(mu_);
  std::set<std::int64_t> ids;
  std::int64_t keypoints = 0;
  absl::Status problem;
  SPOOR_RETURN_IF_ERROR(store_->ForEach([&](StoredReference&& s) {
    ids.insert(s.reference.id);
    keypoints += s.features.size();
    if (!problem.ok()) return;
    if (s.features.descriptors.size() !=
        static_cast<size_t>(s.features.size()) * kDescriptorDim) {
      problem = absl::DataLossError(
          absl::StrCat("reference ", s.reference.id,
                       ": keypoint and descriptor counts differ"));
    }
    // The hash index must return this reference for its own stored hash.
    std::array<Hash256, kOrientationCount> variants;
    variants.fill(s.hash);
    auto hits = hashes_->Search(variants, 0, static_cast<int>(hashes_->size()));
    bool found = false;
    for (const auto& h : hits) found |= (h.ref_id == s.reference.id);
    if (!found) {
      problem = absl::DataLossError(absl::StrCat(
          "reference ", s.reference.id, " is missing from the hash index"));
    }
  }));
  SPOOR_RETURN_IF_ERROR(problem);
  if (hashes_->size() != static_cast<std::int64_t>(ids.size())) {
    return absl::DataLossError(
        absl::StrCat("hash index holds ", hashes_->size(),
                     " entries, database ", ids.size(), " references"));
  }
  if (!descriptors_->needs_training() && descriptors_->size() != keypoints) {
    return absl::DataLossError(
        absl::StrCat("descriptor index holds ", descriptors_->size(),
                     " vectors, database ", keypoints, " keypoints"));
  }
  std::string manifest_path = (fs::path(dir_) / kManifest).string();
  SPOOR_ASSIGN_OR_RETURN(json manifest, ReadManifestJson(manifest_path));
  SPOOR_ASSIGN_OR_RETURN(IndexOptions on_disk,
                         OptionsFromJson(manifest, manifest_path));
  if (OptionsToJson(on_disk) != OptionsToJson(options_)) {
    return absl::DataLossError(
        absl::StrCat(manifest_path, ": options differ from the loaded index"));
  }
  return absl::OkStatus();
}

std::vector<HashHit> ReferenceIndex::SearchHashes(
    const std::array<Hash256, kOrientationCount>& variants, int max_distance,
    int max_results) const {
  std::shared_lock lock(mu_);
  return hashes_->Search(variants, max_distance, max_results);
}

std::vector<Vote> ReferenceIndex::SearchDescriptors(
    const std::vector<float>& descriptors, const VoteOptions& options) const {
  std::shared_lock lock(mu_);
  return descriptors_->Search(descriptors, options);
}

absl::StatusOr<StoredReference> ReferenceIndex::Load(std::int64_t id) const {
  return store_->GetStored(id);
}

}  // namespace spoor
