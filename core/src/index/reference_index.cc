#include "spoor/reference_index.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "features/feature_codec.h"
#include "features/vlad.h"
#include "index/descriptor_index.h"
#include "index/global_index.h"
#include "index/hash_index.h"
#include "store/database.h"
#include "store/reference_store.h"
#include "util/atomic_file.h"
#include "util/dir_lock.h"
#include "util/status_macros.h"

namespace spoor {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kFormatVersion = 2;
constexpr const char* kHashFactory = "BFlat256,IDMap";
constexpr const char* kManifest = "manifest.json";
constexpr const char* kDatabase = "references.db";
constexpr const char* kHashFile = "hash.faissbin";
constexpr const char* kDescriptorFile = "descriptors.faiss";
constexpr const char* kCodebookFile = "vocabulary.faiss";
constexpr const char* kGlobalFile = "global.faiss";
constexpr const char* kNone = "none";

// The codebook is learnt again when the index has grown this many times over
// the references it was learnt from, until it was learnt from this many.
constexpr std::int64_t kCodebookRegrowth = 4;
constexpr std::int64_t kCodebookSettled = 1000;
// Most descriptors sampled to train the codebook or an IVF voting tier.
constexpr std::int64_t kTrainingSample = 200000;

std::string PathIn(const std::string& dir, const char* file) {
  return (fs::path(dir) / file).string();
}

std::int64_t FileBytes(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<std::int64_t>(size);
}

json OptionsToJson(const IndexOptions& o) {
  return {
      {"format", "spoor-index"},
      {"format_version", kFormatVersion},
      {"descriptor",
       {{"kind", "rootsift-u8"},
        {"version", kDescriptorVersion},
        {"dim", kDescriptorDim},
        {"max_features", o.features.max_features},
        {"min_side", o.features.min_side},
        {"octave_side", o.features.octave_side},
        {"contrast_threshold", o.features.contrast_threshold},
        {"min_features", o.features.min_features},
        {"query_octave_side", o.query_octave_side},
        {"query_min_features", o.query_min_features},
        {"stored_packing", o.stored_packing}}},
      {"descriptor_factory", o.descriptor_factory},
      {"global",
       {{"kind", "vlad-rootsift"},
        {"version", kGlobalVersion},
        {"dim", kGlobalDim},
        {"words", kVladWords},
        {"reference_regions", kReferenceRegions}}},
      {"global_factory", o.global_factory},
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

// A manifest field that is not an integer of its type's range.
struct BadManifestField : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// `parent[key]` as an integer of type T. nlohmann's get<int>() casts a
// float (1e300) to int, which is undefined behaviour; a manifest Spoor
// wrote holds only integers in range (found by index_open_fuzzer).
template <typename T>
T Integer(const json& parent, const char* key) {
  const json& v = parent.at(key);
  bool fits = false;
  if (v.is_number_unsigned()) {
    fits = v.get<std::uint64_t>() <=
           static_cast<std::uint64_t>(std::numeric_limits<T>::max());
  } else if (v.is_number_integer()) {
    std::int64_t i = v.get<std::int64_t>();
    fits = i >= std::numeric_limits<T>::min() &&
           i <= std::numeric_limits<T>::max();
  }
  if (!fits)
    throw BadManifestField(absl::StrCat(key, " is not an integer in range"));
  return v.is_number_unsigned() ? static_cast<T>(v.get<std::uint64_t>())
                                : static_cast<T>(v.get<std::int64_t>());
}

// Refuses a manifest whose descriptors this build cannot compare with its own.
absl::StatusOr<IndexOptions> OptionsFromJson(const json& j,
                                             const std::string& where) {
  try {
    if (j.at("format").get<std::string>() != "spoor-index" ||
        Integer<int>(j, "format_version") != kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": not a spoor index of format version ", kFormatVersion));
    }
    const json& d = j.at("descriptor");
    int version = Integer<int>(d, "version");
    int dim = Integer<int>(d, "dim");
    if (version != kDescriptorVersion || dim != kDescriptorDim) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": index has descriptor version ", version, " dim ", dim,
          "; this build uses version ", kDescriptorVersion, " dim ",
          kDescriptorDim, ". Rebuild the index"));
    }
    const json& g = j.at("global");
    if (Integer<int>(g, "version") != kGlobalVersion ||
        Integer<int>(g, "dim") != kGlobalDim ||
        Integer<int>(g, "words") != kVladWords ||
        Integer<int>(g, "reference_regions") != kReferenceRegions) {
      return absl::FailedPreconditionError(absl::StrCat(
          where, ": index has global descriptor version ",
          Integer<int>(g, "version"), "; this build uses version ",
          kGlobalVersion, " (", kGlobalDim, "-d VLAD). Rebuild the index"));
    }
    if (Integer<int>(j.at("hash"), "bits") != kHashBits ||
        j.at("hash_factory").get<std::string>() != kHashFactory) {
      return absl::FailedPreconditionError(
          absl::StrCat(where, ": hash index layout differs from this build's ",
                       kHashFactory, ". Rebuild the index"));
    }
    IndexOptions o;
    o.descriptor_factory = j.at("descriptor_factory").get<std::string>();
    o.global_factory = j.at("global_factory").get<std::string>();
    o.descriptor_search_breadth = Integer<int>(j, "descriptor_search_breadth");
    o.features.max_features = Integer<int>(d, "max_features");
    o.features.min_side = Integer<int>(d, "min_side");
    // Indexes written before these settings existed extracted features with
    // SIFT's doubled first octave and OpenCV's threshold; their queries are
    // described the same way.
    o.features.octave_side =
        d.contains("octave_side") ? Integer<int>(d, "octave_side") : 1600;
    o.features.contrast_threshold =
        d.contains("contrast_threshold")
            ? d.at("contrast_threshold").get<double>()
            : 0.04;
    o.query_octave_side = d.contains("query_octave_side")
                              ? Integer<int>(d, "query_octave_side")
                              : 1600;
    // ... and without a feature floor.
    o.features.min_features =
        d.contains("min_features") ? Integer<int>(d, "min_features") : 0;
    o.query_min_features = d.contains("query_min_features")
                               ? Integer<int>(d, "query_min_features")
                               : 0;
    // Indexes from before packing 3 wrote packing 2.
    o.stored_packing = d.contains("stored_packing")
                           ? Integer<int>(d, "stored_packing")
                           : kStoredPacking;
    if (PackedDescriptorBytes(o.stored_packing) == 0)
      throw BadManifestField("stored_packing unknown to this build");
    if (o.features.octave_side < 64 || o.query_octave_side < 64 ||
        o.features.contrast_threshold <= 0 ||
        o.features.contrast_threshold > 1 || o.features.min_features < 0 ||
        o.features.min_features > 4096 || o.query_min_features < 0 ||
        o.query_min_features > 4096) {
      throw BadManifestField(
          "octave_side, contrast_threshold, min_features or "
          "query_min_features out of range");
    }
    const json& dec = j.at("decode");
    o.decode.max_side = Integer<int>(dec, "max_side");
    o.decode.max_bytes = Integer<std::int64_t>(dec, "max_bytes");
    o.decode.max_pixels = Integer<std::int64_t>(dec, "max_pixels");
    o.decode.max_dimension = Integer<int>(dec, "max_dimension");
    return o;
  } catch (const json::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, ": malformed manifest: ", e.what()));
  } catch (const BadManifestField& e) {
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
  if (PackedDescriptorBytes(options.stored_packing) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("stored_packing must be ", kNibblePacking, " or ",
                     kBasisPacking, "; got ", options.stored_packing));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": cannot create directory: ", ec.message()));
  }
  std::unique_ptr<ReferenceIndex> index(new ReferenceIndex(dir, options));
  SPOOR_ASSIGN_OR_RETURN(index->lock_, DirLock::Acquire(dir));
  SPOOR_ASSIGN_OR_RETURN(index->database_,
                         Database::Open(PathIn(dir, kDatabase)));
  SPOOR_ASSIGN_OR_RETURN(index->store_, ReferenceStore::Open(index->database_));
  SPOOR_ASSIGN_OR_RETURN(index->benign_ids_, index->store_->BenignIds());
  std::unique_lock lock(index->mu_);
  SPOOR_RETURN_IF_ERROR(index->RebuildLocked());
  SPOOR_ASSIGN_OR_RETURN(std::vector<PendingFile> files,
                         index->SerializeLocked());
  SPOOR_ASSIGN_OR_RETURN(SavedCounts counts, index->CountsLocked());
  SPOOR_RETURN_IF_ERROR(index->WriteSnapshot(files, std::move(counts)));
  return index;
}

absl::StatusOr<std::unique_ptr<ReferenceIndex>> ReferenceIndex::Open(
    const std::string& dir) {
  std::string manifest_path = (fs::path(dir) / kManifest).string();
  SPOOR_ASSIGN_OR_RETURN(json manifest, ReadManifestJson(manifest_path));
  SPOOR_ASSIGN_OR_RETURN(IndexOptions options,
                         OptionsFromJson(manifest, manifest_path));
  std::unique_ptr<ReferenceIndex> index(new ReferenceIndex(dir, options));
  SPOOR_ASSIGN_OR_RETURN(index->lock_, DirLock::Acquire(dir));
  std::string db_path = (fs::path(dir) / kDatabase).string();
  if (!fs::exists(db_path)) {
    return absl::DataLossError(absl::StrCat(db_path, ": database is missing"));
  }
  SPOOR_ASSIGN_OR_RETURN(index->database_, Database::Open(db_path));
  SPOOR_ASSIGN_OR_RETURN(index->store_, ReferenceStore::Open(index->database_));
  SPOOR_ASSIGN_OR_RETURN(index->benign_ids_, index->store_->BenignIds());
  SavedCounts saved;
  // Counts that are missing or not integers say nothing: the files are
  // then rebuilt from the database.
  auto count = [&](const char* key, std::int64_t otherwise) {
    try {
      return Integer<std::int64_t>(manifest, key);
    } catch (const std::exception&) {
      return otherwise;
    }
  };
  saved.references = count("references", -1);
  saved.descriptors = count("descriptors", -1);
  saved.global_vectors = count("global_vectors", -1);
  saved.codebook_references = count("codebook_references", 0);
  saved.generation = count("generation", -1);
  if (auto files = manifest.find("files");
      files != manifest.end() && files->is_object()) {
    for (const auto& [name, digest] : files->items())
      if (digest.is_string()) saved.digests[name] = digest.get<std::string>();
  }
  SPOOR_RETURN_IF_ERROR(index->LoadOrRebuild(saved));
  return index;
}

absl::Status ReferenceIndex::LoadOrRebuild(const SavedCounts& saved) {
  std::unique_lock lock(mu_);
  SPOOR_ASSIGN_OR_RETURN(std::int64_t count, store_->Count());
  // Every file must read and hold what the manifest, written last by Save(),
  // says it held; anything else is stale or damaged, and the database is the
  // truth: rebuild from it.
  SPOOR_ASSIGN_OR_RETURN(std::int64_t generation, store_->Generation());
  bool consistent = saved.generation == generation && saved.references == count;
  // FAISS's readers trust their input (a damaged file can leak or worse,
  // as the index_open fuzzer found), so only files whose digest matches the
  // manifest's reach them.
  absl::StatusOr<std::unique_ptr<HashIndex>> hashes =
      absl::DataLossError("hash index not read");
  if (consistent && FileIntact(saved, kHashFile))
    hashes = HashIndex::Read(PathIn(dir_, kHashFile));
  consistent = consistent && hashes.ok() && (*hashes)->size() == count;
  std::unique_ptr<DescriptorIndex> descriptors;
  if (consistent && options_.descriptor_factory != kNone) {
    consistent = FileIntact(saved, kDescriptorFile);
  }
  if (consistent && options_.descriptor_factory != kNone) {
    auto read = DescriptorIndex::Read(PathIn(dir_, kDescriptorFile),
                                      options_.descriptor_factory);
    consistent = read.ok() && (*read)->vectors().size() == saved.descriptors;
    if (consistent) descriptors = std::move(*read);
  }
  std::unique_ptr<GlobalIndex> global;
  std::unique_ptr<VladCodebook> codebook;
  if (consistent && options_.global_factory != kNone) {
    consistent =
        FileIntact(saved, kGlobalFile) &&
        (saved.codebook_references == 0 || FileIntact(saved, kCodebookFile));
  }
  if (consistent && options_.global_factory != kNone) {
    auto read =
        GlobalIndex::Read(PathIn(dir_, kGlobalFile), options_.global_factory);
    consistent = read.ok() && (*read)->vectors().size() == saved.global_vectors;
    if (consistent) global = std::move(*read);
    if (consistent && saved.codebook_references > 0) {
      auto book = VladCodebook::Read(PathIn(dir_, kCodebookFile));
      consistent = book.ok();
      if (consistent) codebook = std::move(*book);
    }
  }
  if (consistent) {
    hashes_ = std::move(*hashes);
    descriptors_ = std::move(descriptors);
    if (descriptors_)
      descriptors_->vectors().SetSearchBreadth(
          options_.descriptor_search_breadth);
    global_ = std::move(global);
    if (global_)
      global_->vectors().SetSearchBreadth(options_.descriptor_search_breadth);
    codebook_ = std::move(codebook);
    codebook_references_ = saved.codebook_references;
    return absl::OkStatus();
  }
  rebuilt_on_open_ = true;
  // A codebook that still reads is kept: learning it again would change
  // every vector for no gain.
  if (saved.codebook_references > 0 && FileIntact(saved, kCodebookFile)) {
    auto book = VladCodebook::Read(PathIn(dir_, kCodebookFile));
    if (book.ok()) {
      codebook_ = std::move(*book);
      codebook_references_ = saved.codebook_references;
    }
  }
  SPOOR_RETURN_IF_ERROR(RebuildLocked());
  // Written now, so the next open finds files that match. Best effort: on a
  // full disk the rebuilt indexes still serve from memory, the old manifest
  // (whose digests no longer match) stays, and the next open rebuilds again.
  SPOOR_ASSIGN_OR_RETURN(std::vector<PendingFile> files, SerializeLocked());
  SPOOR_ASSIGN_OR_RETURN(SavedCounts counts, CountsLocked());
  (void)WriteSnapshot(files, std::move(counts));
  return absl::OkStatus();
}

bool ReferenceIndex::FileIntact(const SavedCounts& saved,
                                const char* name) const {
  auto digest = saved.digests.find(name);
  if (digest == saved.digests.end()) return false;
  auto actual = Sha256HexOfFile(PathIn(dir_, name));
  return actual.ok() && *actual == digest->second;
}

bool ReferenceIndex::CodebookStaleLocked(std::int64_t references) const {
  if (options_.global_factory == kNone) return false;
  if (!codebook_) return true;
  return codebook_references_ < kCodebookSettled &&
         references >= kCodebookRegrowth * codebook_references_;
}

absl::Status ReferenceIndex::RebuildLocked(bool relearn_codebook) {
  auto hashes = std::make_unique<HashIndex>();
  std::unique_ptr<DescriptorIndex> descriptors;
  if (options_.descriptor_factory != kNone) {
    SPOOR_ASSIGN_OR_RETURN(
        descriptors, DescriptorIndex::Create(options_.descriptor_factory));
    descriptors->vectors().SetSearchBreadth(options_.descriptor_search_breadth);
  }
  std::unique_ptr<GlobalIndex> global;
  if (options_.global_factory != kNone) {
    SPOOR_ASSIGN_OR_RETURN(global,
                           GlobalIndex::Create(options_.global_factory));
    global->vectors().SetSearchBreadth(options_.descriptor_search_breadth);
  } else {
    codebook_.reset();
  }
  SPOOR_ASSIGN_OR_RETURN(std::int64_t count, store_->Count());

  // Pass 1, only when something needs training: a sample of the stored
  // descriptors, spread over every reference.
  bool learn = global && (relearn_codebook || !codebook_);
  bool train_descriptors =
      descriptors && descriptors->vectors().needs_training();
  if ((learn || train_descriptors) && count > 0) {
    // Strided by the most descriptors the references can hold, so one pass
    // over the database gives at most kTrainingSample of them.
    const std::int64_t most = count * options_.features.max_features;
    const std::int64_t stride = std::max<std::int64_t>(
        1, (most + kTrainingSample - 1) / kTrainingSample);
    std::vector<float> sample;
    std::int64_t seen = 0;
    SPOOR_RETURN_IF_ERROR(store_->ForEach([&](StoredReference&& s) {
      std::vector<float> f = DescriptorsAsFloat(s.features);
      for (int i = 0; i < s.features.size(); ++i, ++seen) {
        if (seen % stride != 0) continue;
        sample.insert(sample.end(), f.begin() + i * kDescriptorDim,
                      f.begin() + (i + 1) * kDescriptorDim);
      }
    }));
    const std::int64_t n = sample.size() / kDescriptorDim;
    // Too few descriptors to train yet: the hash tier still works, and the
    // next Save() tries again.
    if (train_descriptors) (void)descriptors->Train(sample);
    if (learn && n >= kMinVladTraining) {
      SPOOR_ASSIGN_OR_RETURN(codebook_, VladCodebook::Train(n, sample.data()));
      codebook_references_ = count;
    }
  }

  // Pass 2, for a global index that needs training (IVF, PQ): every
  // reference's vectors.
  if (global && codebook_ && global->vectors().needs_training()) {
    std::vector<float> vectors;
    SPOOR_RETURN_IF_ERROR(store_->ForEach([&](StoredReference&& s) {
      RegionVectors r = codebook_->Describe(s.features, kReferenceRegions);
      vectors.insert(vectors.end(), r.vectors.begin(), r.vectors.end());
    }));
    if (!vectors.empty())
      (void)global->Train(vectors.size() / kGlobalDim, vectors.data());
  }

  absl::Status add_status;
  // An index still untrained takes its vectors into its exact stand-in.
  bool add_descriptors = descriptors != nullptr;
  bool add_global = global && codebook_;
  SPOOR_RETURN_IF_ERROR(store_->ForEach([&](StoredReference&& s) {
    hashes->Add(s.reference.id, s.hash);
    if (!add_status.ok()) return;
    if (add_descriptors)
      add_status = descriptors->Add(s.reference.id, s.features);
    if (add_global && add_status.ok()) {
      add_status = global->Add(
          s.reference.id, codebook_->Describe(s.features, kReferenceRegions));
    }
  }));
  SPOOR_RETURN_IF_ERROR(add_status);
  hashes_ = std::move(hashes);
  descriptors_ = std::move(descriptors);
  global_ = std::move(global);
  return absl::OkStatus();
}

absl::StatusOr<ReferenceIndex::SavedCounts> ReferenceIndex::CountsLocked()
    const {
  SavedCounts c;
  c.references = hashes_->size();
  c.descriptors = descriptors_ ? descriptors_->vectors().size() : 0;
  c.global_vectors = global_ ? global_->vectors().size() : 0;
  c.codebook_references = codebook_ ? codebook_references_ : 0;
  // Called under the lock (shared or exclusive) that keeps writers out, so
  // the FAISS indexes hold exactly the database's changes up to this
  // generation.
  SPOOR_ASSIGN_OR_RETURN(c.generation, store_->Generation());
  return c;
}

std::string ReferenceIndex::ManifestText(const SavedCounts& c) const {
  json j = OptionsToJson(options_);
  j["references"] = c.references;
  j["descriptors"] = c.descriptors;
  j["global_vectors"] = c.global_vectors;
  j["codebook_references"] = c.codebook_references;
  j["generation"] = c.generation;
  j["files"] = json::object();
  for (const auto& [name, digest] : c.digests) j["files"][name] = digest;
  return j.dump(2) + "\n";
}

absl::StatusOr<std::vector<ReferenceIndex::PendingFile>>
ReferenceIndex::SerializeLocked() const {
  std::vector<PendingFile> files;
  auto take = [&](const char* name,
                  absl::StatusOr<std::vector<std::uint8_t>> bytes) {
    if (!bytes.ok()) return bytes.status();
    files.push_back({name, std::move(*bytes)});
    return absl::OkStatus();
  };
  SPOOR_RETURN_IF_ERROR(take(kHashFile, hashes_->Serialize()));
  if (descriptors_) {
    SPOOR_RETURN_IF_ERROR(
        take(kDescriptorFile, descriptors_->vectors().Serialize()));
  }
  if (global_) {
    if (codebook_)
      SPOOR_RETURN_IF_ERROR(take(kCodebookFile, codebook_->Serialize()));
    SPOOR_RETURN_IF_ERROR(take(kGlobalFile, global_->vectors().Serialize()));
  }
  return files;
}

absl::Status ReferenceIndex::WriteSnapshot(
    const std::vector<PendingFile>& files, SavedCounts counts) const {
  for (const PendingFile& file : files) {
    counts.digests[file.name] = Sha256Hex(file.bytes.data(), file.bytes.size());
    SPOOR_RETURN_IF_ERROR(
        WriteBytesAtomically(PathIn(dir_, file.name), file.bytes));
  }
  std::string text = ManifestText(counts);
  return WriteBytesAtomically(
      PathIn(dir_, kManifest),
      std::vector<std::uint8_t>(text.begin(), text.end()));
}

absl::Status ReferenceIndex::Save() {
  // One Save at a time: two interleaving their files would leave a manifest
  // that describes neither.
  std::lock_guard save_lock(save_mu_);
  {
    std::unique_lock lock(mu_);
    bool relearn = CodebookStaleLocked(hashes_->size());
    if (relearn || (descriptors_ && descriptors_->vectors().ReadyToTrain()) ||
        (global_ && global_->vectors().ReadyToTrain())) {
      // Training needs the writer lock throughout; it happens at the
      // doubling counts only.
      SPOOR_RETURN_IF_ERROR(RebuildLocked(relearn));
    }
  }
  // A snapshot in memory under the reader lock (Match goes on; adds and
  // removes wait only for the copy), then the digests and the disk work with
  // no lock held.
  std::vector<PendingFile> files;
  SavedCounts counts;
  {
    std::shared_lock lock(mu_);
    SPOOR_ASSIGN_OR_RETURN(files, SerializeLocked());
    SPOOR_ASSIGN_OR_RETURN(counts, CountsLocked());
  }
  return WriteSnapshot(files, std::move(counts));
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
  // OpenCV and the allocator throw; no exception crosses this header.
  try {
    p.hash = ComputeHash(image);
    p.features = ExtractLocalFeatures(image, options_.features);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(source, ": out of memory describing the image"));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat(source, ": describing the image failed: ", e.what()));
  }
  return p;
}

absl::StatusOr<AddResult> ReferenceIndex::Insert(PreparedReference prepared) {
  // The writer lock covers the duplicate check and the database insert, so
  // two concurrent adds of the same bytes give one reference, and a reader
  // never sees a FAISS id whose row is missing, or the reverse.
  SPOOR_RETURN_IF_ERROR(ValidateBankName(prepared.reference.bank,
                                         /*allow_sightings=*/true));
  std::unique_lock lock(mu_);
  if (auto existing = store_->FindBySha256(prepared.reference.sha256)) {
    const Reference& r = prepared.reference;
    if (r.bank == kSightingsBank) return AddResult{*existing, false};
    SPOOR_ASSIGN_OR_RETURN(
        bool promoted, store_->Promote(*existing, r.bank, r.source, r.labels));
    return AddResult{*existing, promoted};
  }
  StoredReference stored{std::move(prepared.reference), prepared.hash,
                         std::move(prepared.features)};
  // The database packs the features as extracted; the indexes get exactly
  // what it gives back (QuantiseForStorage packs and unpacks the same way),
  // so a rebuild from it gives the same indexes.
  SPOOR_ASSIGN_OR_RETURN(std::int64_t id,
                         store_->Insert(stored, options_.stored_packing));
  QuantiseForStorage(stored.features, options_.stored_packing);
  if (IsBenignBank(stored.reference.bank)) benign_ids_.push_back(id);
  hashes_->Add(id, stored.hash);
  // A global tier without its codebook yet gets the reference when the
  // codebook is learnt and the tier rebuilt from the database at a Save().
  // An untrained IVF or PQ tier searches it exactly until then.
  absl::Status added;
  if (descriptors_) added = descriptors_->Add(id, stored.features);
  if (added.ok() && global_ && codebook_) {
    added = global_->Add(
        id, codebook_->Describe(stored.features, kReferenceRegions));
  }
  if (!added.ok()) {
    // Keep database and indexes in step: undo the row and its vectors.
    hashes_->Remove(id);
    if (descriptors_) (void)descriptors_->Remove(id);
    if (global_) (void)global_->Remove(id);
    (void)store_->Remove(id);
    return added;
  }
  return AddResult{id, true};
}

absl::StatusOr<AddResult> ReferenceIndex::Add(
    std::span<const std::uint8_t> bytes, const std::string& source,
    const Labels& labels, const std::string& bank) {
  SPOOR_RETURN_IF_ERROR(ValidateBankName(bank));
  SPOOR_RETURN_IF_ERROR(ValidateLabels(labels));
  if (auto existing = FindBySha256(Sha256Hex(bytes.data(), bytes.size()))) {
    SPOOR_ASSIGN_OR_RETURN(bool promoted,
                           Promote(*existing, bank, source, labels));
    return AddResult{*existing, promoted};
  }
  SPOOR_ASSIGN_OR_RETURN(PreparedReference prepared,
                         Prepare(bytes, source, labels));
  prepared.reference.bank = bank;
  return Insert(std::move(prepared));
}

absl::StatusOr<bool> ReferenceIndex::Promote(std::int64_t id,
                                             const std::string& bank,
                                             const std::string& source,
                                             const Labels& labels) {
  SPOOR_RETURN_IF_ERROR(ValidateBankName(bank));
  SPOOR_RETURN_IF_ERROR(ValidateLabels(labels));
  // The vectors are indexed already: only the row changes.
  std::unique_lock lock(mu_);
  SPOOR_ASSIGN_OR_RETURN(bool promoted,
                         store_->Promote(id, bank, source, labels));
  if (promoted && IsBenignBank(bank)) benign_ids_.push_back(id);
  return promoted;
}

std::optional<std::int64_t> ReferenceIndex::FindBySha256(
    const std::string& sha256) const {
  return store_->FindBySha256(sha256);
}

absl::Status ReferenceIndex::Remove(std::int64_t id) {
  std::unique_lock lock(mu_);
  SPOOR_ASSIGN_OR_RETURN(bool deleted, store_->Remove(id));
  std::erase(benign_ids_, id);
  // Kept as the image of its sightings: its vectors stay searchable.
  if (!deleted) return absl::OkStatus();
  hashes_->Remove(id);
  absl::Status removed;
  if (descriptors_) removed = descriptors_->Remove(id);
  if (removed.ok() && global_) removed = global_->Remove(id);
  // Graph indexes (HNSW) cannot remove: rebuild them from the database.
  if (absl::IsUnimplemented(removed)) return RebuildLocked();
  return removed;
}

std::vector<std::int64_t> ReferenceIndex::BenignIds() const {
  std::shared_lock lock(mu_);
  std::vector<std::int64_t> out(
      benign_ids_.begin(),
      benign_ids_.begin() +
          std::min<std::size_t>(benign_ids_.size(), kMostBenignCandidates));
  return out;
}

absl::StatusOr<Reference> ReferenceIndex::Get(std::int64_t id) const {
  return store_->Get(id);
}

absl::StatusOr<std::vector<Reference>> ReferenceIndex::List(
    std::int64_t after_id, int limit, const LabelFilter& filter) const {
  SPOOR_RETURN_IF_ERROR(ValidateLabelFilter(filter));
  return store_->List(after_id, limit, filter);
}

absl::StatusOr<ReferenceIndex::FeatureBytes>
ReferenceIndex::StoredFeatureBytes() const {
  SPOOR_ASSIGN_OR_RETURN(auto bytes, store_->FeatureBytes());
  return FeatureBytes{bytes.first, bytes.second};
}

IndexStats ReferenceIndex::Stats() const {
  IndexStats s;
  {
    std::shared_lock lock(mu_);
    s.hashes = hashes_->size();
    s.descriptors = descriptors_ ? descriptors_->vectors().size() : 0;
    s.descriptor_index_trained =
        !descriptors_ || !descriptors_->vectors().needs_training();
    s.global_vectors = global_ ? global_->vectors().size() : 0;
    s.global_index_trained =
        !global_ || (codebook_ && !global_->vectors().needs_training());
  }
  auto count = store_->Count();
  s.references = count.ok() ? *count : -1;
  if (auto banks = store_->BankCounts(); banks.ok()) {
    s.banks = *banks;
    s.sighting_images = s.banks[kSightingsBank];
    if (s.references > 0) s.references -= s.sighting_images;
  }
  s.descriptor_factory = options_.descriptor_factory;
  s.global_factory = options_.global_factory;
  s.descriptor_version = kDescriptorVersion;
  s.rebuilt_on_open = rebuilt_on_open_;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.is_regular_file(ec)) s.disk_bytes += entry.file_size(ec);
  }
  // SQLite's write-ahead log belongs to the database.
  s.database_bytes = FileBytes(PathIn(dir_, kDatabase)) +
                     FileBytes(PathIn(dir_, kDatabase) + "-wal");
  s.hash_index_bytes = FileBytes(PathIn(dir_, kHashFile));
  s.descriptor_index_bytes = FileBytes(PathIn(dir_, kDescriptorFile));
  s.global_index_bytes = FileBytes(PathIn(dir_, kGlobalFile)) +
                         FileBytes(PathIn(dir_, kCodebookFile));
  return s;
}

absl::Status ReferenceIndex::Verify() const {
  std::shared_lock lock(mu_);
  std::set<std::int64_t> ids;
  std::int64_t keypoints = 0;
  std::int64_t regions = 0;
  absl::Status problem;
  SPOOR_RETURN_IF_ERROR(store_->ForEach([&](StoredReference&& s) {
    ids.insert(s.reference.id);
    keypoints += s.features.size();
    if (codebook_)
      regions += codebook_->Describe(s.features, kReferenceRegions).size();
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
  if (descriptors_ && descriptors_->vectors().size() != keypoints) {
    return absl::DataLossError(
        absl::StrCat("descriptor index holds ", descriptors_->vectors().size(),
                     " vectors, database ", keypoints, " keypoints"));
  }
  if (global_ && codebook_ && global_->vectors().size() != regions) {
    return absl::DataLossError(absl::StrCat(
        "global index holds ", global_->vectors().size(),
        " vectors, the database's references describe ", regions, " regions"));
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
  if (!descriptors_) return {};
  return descriptors_->Search(descriptors, options);
}

std::vector<GlobalHit> ReferenceIndex::SearchGlobal(
    const LocalFeatures& features, int neighbours, int max_results,
    int max_cell_results) const {
  std::shared_lock lock(mu_);
  if (!global_ || !codebook_) return {};
  RegionVectors all = codebook_->Describe(
      features, max_cell_results > 0 ? kQueryRegions : kCoarseQueryRegions);
  // The larger windows and the 5x5 cells, ranked apart, in one search.
  RegionVectors both;
  int coarse = 0;
  for (bool want_coarse : {true, false}) {
    for (int i = 0; i < all.size(); ++i) {
      if ((all.regions[i] < kCoarseQueryRegions) != want_coarse) continue;
      both.regions.push_back(all.regions[i]);
      both.vectors.insert(
          both.vectors.end(), all.vectors.begin() + std::size_t(i) * kGlobalDim,
          all.vectors.begin() + std::size_t(i + 1) * kGlobalDim);
      coarse += want_coarse;
    }
  }
  const int cells = both.size() - coarse;
  if (max_cell_results <= 0 || cells == 0)
    return global_->Search(both, neighbours, max_results);
  std::vector<std::vector<GlobalHit>> ranked = global_->SearchEach(
      both, {coarse, cells}, neighbours, max_results + max_cell_results);
  std::vector<GlobalHit>& hits = ranked[0];
  if (static_cast<int>(hits.size()) > max_results)
    hits.resize(std::max(0, max_results));
  const std::size_t found = hits.size();
  for (const GlobalHit& h : ranked[1]) {
    if (static_cast<int>(hits.size() - found) >= max_cell_results) break;
    bool known =
        std::any_of(hits.begin(), hits.begin() + found,
                    [&](const GlobalHit& k) { return k.ref_id == h.ref_id; });
    if (!known) hits.push_back(h);
  }
  return hits;
}

absl::StatusOr<StoredReference> ReferenceIndex::Load(std::int64_t id) const {
  return store_->GetStored(id);
}

bool ReferenceIndex::HasVotingTier() const {
  std::shared_lock lock(mu_);
  return descriptors_ != nullptr;
}

}  // namespace spoor
