// An index directory: the reference photos Spoor matches against.
//
//   DIR/manifest.json     descriptor version, dimensions, factory strings,
//                         working resolution, counts (checked on Open)
//   DIR/references.db     SQLite: references and their banks, labels,
//                         hashes, local features (the source of truth);
//                         sightings and links (sightings.h)
//   DIR/hash.faissbin     FAISS binary index of perceptual hashes
//   DIR/descriptors.faiss voting tier: every reference's local descriptors
//   DIR/vocabulary.faiss  global tier: the VLAD codebook learnt from DIR's
//                         own references
//   DIR/global.faiss      global tier: a few VLAD vectors per reference
//
// FAISS files are derived from the database and written atomically by
// Save(), which records the database's generation (bumped in the same
// transaction as every insert and remove) in the manifest. If the files are
// missing, or disagree with the manifest's counts, or the database has moved
// past the saved generation on Open (a crash between a write and a save),
// they are rebuilt from the database.
//
// Thread safety: all methods may be called concurrently. Searches share a
// reader lock; Insert and Remove take the writer lock briefly. Save copies
// the indexes into memory under the reader lock and writes the files with no
// lock held, so matching goes on while the disk works; it takes the writer
// lock only when an index must be trained (at doubling counts). Prepare
// (decoding and feature extraction) takes no lock at all.
#ifndef SPOOR_REFERENCE_INDEX_H_
#define SPOOR_REFERENCE_INDEX_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spoor/image.h"
#include "spoor/local_features.h"
#include "spoor/perceptual_hash.h"
#include "spoor/reference.h"

namespace spoor {

class DescriptorIndex;
struct Database;
class DirLock;
class GlobalIndex;
class HashIndex;
class ReferenceStore;
class VladCodebook;
struct GlobalHit;
struct HashHit;
struct StoredReference;
struct Vote;
struct VoteOptions;

// How an index directory describes images. Fixed when the directory is
// created and recorded in its manifest; queries use the same settings.
struct IndexOptions {
  // FAISS factory string of the voting tier (every local descriptor), or
  // "none" to leave it out. Default: "IVF1024,PCA64,SHm": Hamming
  // embedding. Each descriptor is kept as a 64-bit signature (its PCA
  // projection against the medians of its list) in the nearest of 1024
  // lists, 16 bytes with its id; a query descriptor visits the nearest
  // descriptor_search_breadth lists and counts neighbours differing in at
  // most a quarter of the bits (VoteOptions). At 103 references it gave
  // the µAP of the exact descriptors ("IVF1024,Flat", about 150 KB per
  // reference) in a third of the search time (docs/BENCHMARKS.md, "Engine
  // v2, seventh step"). Its cost still grows with the index (each list
  // holds a 1024th of every descriptor): large indexes want more lists
  // ("IVF4096,PCA64,SHm" with a breadth of 8) or the global tier alone
  // ("none"). A tier that must be trained (IVF, PQ) is searched exactly
  // until it is: at the first Save() with 10 descriptors a list (10,240
  // here, some 35 references), again when the global tier's codebook is
  // learnt again, from the stored descriptors.
  std::string descriptor_factory = "IVF1024,PCA64,SHm";
  // FAISS factory string of the global tier (VLAD vectors, 5 per reference),
  // or "none". Default: "IVF1024,PQ64": 64-byte codes in 1024 lists, about
  // 0.9 KB per reference, searched exactly (as "Flat", 20 KB per reference)
  // until it has 10 vectors a list, some 2,048 references. At 10,103
  // references it kept the µAP of "Flat" (0.975 with the default voting
  // tier) and took the query rate from 5.2 to 14.2 images/s
  // (docs/BENCHMARKS.md, "Engine v2, seventh step"). The VLAD codebook is
  // learnt at the first Save() with at least kMinVladTraining descriptors,
  // and learnt again (every reference re-described) at the Save() that finds
  // the index grown fourfold, up to 1000 references; until the first, the
  // tier finds nothing. An IVF or PQ factory is searched exactly until it is
  // trained, as above.
  std::string global_factory = "IVF1024,PQ64";
  // How much of an approximate index a search visits, in both tiers: IVF
  // nprobe or HNSW efSearch; ignored by Flat. Default: 16.
  int descriptor_search_breadth = 16;
  // Working resolution and decode limits. Default: longest side 800 px.
  DecodeOptions decode = {.max_side = 800};
  // How references' features are extracted (and queries', but for the
  // octave below).
  FeatureOptions features;
  // FeatureOptions.octave_side for queries. A query may show an item far
  // smaller than its reference does (a cell of a collage or a grid), so it
  // needs finer scales than the reference, whose item fills the picture.
  // Default: 1024.
  int query_octave_side = 1024;
  // FeatureOptions.min_features for queries, and so for the ads kept as
  // sightings: a cut-out photographed again on another plain table verifies
  // with about three times the inliers (docs/BENCHMARKS.md). References
  // keep their own setting (none by default): the global tier's vectors of
  // smooth references, lifted by weak keypoints, found small grid cells
  // less often. Default: 400.
  int query_min_features = 400;
  // How new rows' descriptors are stored (core/src/features/feature_codec.h):
  // 2, 70 bytes a feature (4 bits a RootSIFT bin), or 3, 54 bytes a feature
  // (4-bit codes on a fixed PCA basis: 23 % less, but on CI's quick set the
  // global tier alone measured 0.922 against 0.953, docs/BENCHMARKS.md).
  // Rows of either are read whatever this says. Default: 2.
  int stored_packing = 2;
};

// A reference decoded and described, ready to insert.
struct PreparedReference {
  Reference reference;
  Hash256 hash{};
  LocalFeatures features;
};

struct AddResult {
  std::int64_t id = 0;
  bool added = false;  ///< false when the same bytes were already indexed
};

struct IndexStats {
  std::int64_t references = 0;                ///< in every bank but "sightings"
  std::int64_t sighting_images = 0;           ///< ad images kept for sightings
  std::map<std::string, std::int64_t> banks;  ///< images in each bank
  std::int64_t descriptors = 0;               ///< vectors in the voting tier
  bool descriptor_index_trained = true;       ///< false: exact until Save()
  std::int64_t hashes = 0;                    ///< vectors in the hash index
  std::int64_t global_vectors = 0;            ///< vectors in the global tier
  bool global_index_trained = true;  ///< false: codebook awaiting Save()
  std::string descriptor_factory;
  std::string global_factory;
  int descriptor_version = 0;
  bool rebuilt_on_open = false;  ///< FAISS files were rebuilt from the db
  std::int64_t disk_bytes = 0;   ///< all files in the directory
  // Bytes on disk (as last saved) of each part; see disk_bytes for the sum.
  std::int64_t database_bytes = 0;
  std::int64_t hash_index_bytes = 0;
  std::int64_t descriptor_index_bytes = 0;
  std::int64_t global_index_bytes = 0;  ///< vectors and codebook
};

class ReferenceIndex {
 public:
  // Creates DIR (and parents) with `options`, or opens it if it already holds
  // an index with the same options; FailedPrecondition if its options differ.
  static absl::StatusOr<std::unique_ptr<ReferenceIndex>> Create(
      const std::string& dir, const IndexOptions& options);
  // Opens an existing index. NotFound when DIR has no manifest;
  // FailedPrecondition when it was written with another descriptor version,
  // dimension or layout, or when another open index (this process or another,
  // e.g. spoor-indexer beside a running service) holds DIR's lock.
  static absl::StatusOr<std::unique_ptr<ReferenceIndex>> Open(
      const std::string& dir);
  ~ReferenceIndex();

  const IndexOptions& options() const { return options_; }
  const std::string& dir() const { return dir_; }

  // Decodes and describes an image; no lock, no side effect.
  absl::StatusOr<PreparedReference> Prepare(std::span<const std::uint8_t> bytes,
                                            const std::string& source,
                                            const Labels& labels) const;
  // Inserts a prepared reference (in prepared.reference.bank), or returns
  // the id already holding the same SHA-256, promoting it to that bank when
  // it was only a sighting's image. Persisted in the database at once; FAISS
  // files at Save().
  absl::StatusOr<AddResult> Insert(PreparedReference prepared);
  // Prepare + Insert into `bank`; skips decoding when the bytes are already
  // indexed (and promotes them when they were only a sighting's image).
  // InvalidArgument for a bad bank name or the bank "sightings".
  absl::StatusOr<AddResult> Add(std::span<const std::uint8_t> bytes,
                                const std::string& source, const Labels& labels,
                                const std::string& bank = kDefaultBank);
  // A sighting's image becomes a reference in `bank` with `source` and
  // `labels`: true. False when `id` is a reference already (unchanged).
  absl::StatusOr<bool> Promote(std::int64_t id, const std::string& bank,
                               const std::string& source, const Labels& labels);
  std::optional<std::int64_t> FindBySha256(const std::string& sha256) const;

  // NotFound for an unknown id. An image that sightings show stays as their
  // image (bank "sightings", labels cleared, still searchable) until the
  // sightings go; FailedPrecondition when it is only that already.
  absl::Status Remove(std::int64_t id);
  absl::StatusOr<Reference> Get(std::int64_t id) const;
  // References with id > after_id, ascending by id, at most `limit`, only
  // those matching `filter`. InvalidArgument for a filter on a non-label.
  absl::StatusOr<std::vector<Reference>> List(
      std::int64_t after_id, int limit, const LabelFilter& filter = {}) const;
  IndexStats Stats() const;
  // Bytes of the local features stored in the database (part of
  // Stats().database_bytes, without SQLite's pages and log around them):
  // keypoints and descriptors, over every image, sightings' too. Scans the
  // features table, so not part of Stats().
  struct FeatureBytes {
    std::int64_t keypoints = 0;
    std::int64_t descriptors = 0;
  };
  absl::StatusOr<FeatureBytes> StoredFeatureBytes() const;

  // Checks that the database, both FAISS indexes and the manifest agree.
  // Returns DataLoss naming the first disagreement.
  absl::Status Verify() const;

  // Writes the FAISS indexes and the manifest atomically.
  absl::Status Save();

  // --- used by Matcher ---
  std::vector<HashHit> SearchHashes(
      const std::array<Hash256, kOrientationCount>& variants, int max_distance,
      int max_results) const;
  std::vector<Vote> SearchDescriptors(const std::vector<float>& descriptors,
                                      const VoteOptions& options) const;
  // The references whose VLAD regions come nearest the query's: the best
  // `max_results` over the whole query and its larger windows, then up to
  // `max_cell_results` more over its 5x5 windows of a third of its side
  // (features/vlad.h), each list best first. Empty while the global tier is
  // off or untrained.
  std::vector<GlobalHit> SearchGlobal(const LocalFeatures& features,
                                      int neighbours, int max_results,
                                      int max_cell_results) const;
  absl::StatusOr<StoredReference> Load(std::int64_t id) const;
  // True when the index has a voting tier (descriptor_factory not "none").
  bool HasVotingTier() const;
  // The references of the benign-* banks (at most kMostBenignCandidates,
  // oldest first): the Matcher verifies them for every query, so shared
  // chrome is taken out even when many earlier ads outvote it.
  std::vector<std::int64_t> BenignIds() const;
  static constexpr int kMostBenignCandidates = 64;
  // The database the references live in, shared with SightingLog.
  const std::shared_ptr<Database>& database() const { return database_; }

 private:
  ReferenceIndex(std::string dir, IndexOptions options);
  // What a manifest records beyond the options: counts (-1 when absent),
  // the database's generation, and the SHA-256 of each FAISS file written
  // with it (a file without its digest, or with another, is not read).
  struct SavedCounts {
    std::int64_t references = -1;
    std::int64_t descriptors = -1;
    std::int64_t global_vectors = -1;
    std::int64_t codebook_references = 0;
    std::int64_t generation = -1;  ///< the database's, at the last Save()
    std::map<std::string, std::string> digests;  ///< file name -> hex
  };
  // A FAISS index serialised under the lock, to be written after it.
  struct PendingFile {
    const char* name;
    std::vector<std::uint8_t> bytes;
  };
  absl::Status LoadOrRebuild(const SavedCounts& saved);
  // Rebuilds every FAISS index from the database, training what needs it;
  // learns the VLAD codebook again when `relearn_codebook` or there is none.
  absl::Status RebuildLocked(bool relearn_codebook = false);
  bool CodebookStaleLocked(std::int64_t references) const;
  // The counts and generation of the indexes in memory; under a lock that
  // keeps writers out.
  absl::StatusOr<SavedCounts> CountsLocked() const;
  absl::StatusOr<std::vector<PendingFile>> SerializeLocked() const;
  std::string ManifestText(const SavedCounts& counts) const;
  // Writes `files` atomically, then the manifest naming their digests, last:
  // a crash before it leaves the old manifest, whose digests no longer
  // match, and Open rebuilds from the database.
  absl::Status WriteSnapshot(const std::vector<PendingFile>& files,
                             SavedCounts counts) const;
  // True when DIR/name holds exactly what the manifest's digest says.
  bool FileIntact(const SavedCounts& saved, const char* name) const;

  const std::string dir_;
  const IndexOptions options_;
  std::unique_ptr<DirLock> lock_;  // held while open: one writer per dir
  std::shared_ptr<Database> database_;
  std::unique_ptr<ReferenceStore> store_;
  std::mutex save_mu_;            // one Save() at a time
  mutable std::shared_mutex mu_;  // guards the FAISS indexes and codebook
  std::unique_ptr<HashIndex> hashes_;
  std::unique_ptr<DescriptorIndex> descriptors_;  // null when "none"
  std::unique_ptr<GlobalIndex> global_;           // null when "none"
  std::unique_ptr<VladCodebook> codebook_;        // null until learnt
  std::int64_t codebook_references_ = 0;  // references it was learnt from
  bool rebuilt_on_open_ = false;
  std::vector<std::int64_t> benign_ids_;  // guarded by mu_
};

}  // namespace spoor

#endif  // SPOOR_REFERENCE_INDEX_H_
