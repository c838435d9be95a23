// The references' tables of an index directory's database: references, their
// banks, labels, perceptual hashes and local features. It is the source of
// truth: the FAISS indexes are derived from it and can always be rebuilt
// from it.
//
// Thread safety: every method is safe to call concurrently (the Database's
// mutex serialises access to the connection).
#ifndef SPOOR_STORE_REFERENCE_STORE_H_
#define SPOOR_STORE_REFERENCE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "features/feature_codec.h"
#include "spoor/local_features.h"
#include "spoor/perceptual_hash.h"
#include "spoor/reference.h"

namespace SQLite {
class Database;
}

namespace spoor {

struct Database;

// Everything stored for one reference.
struct StoredReference {
  Reference reference;
  Hash256 hash{};
  LocalFeatures features;
};

class ReferenceStore {
 public:
  // The references' tables in `db` (opened and migrated by Database).
  static absl::StatusOr<std::unique_ptr<ReferenceStore>> Open(
      std::shared_ptr<Database> db);
  ~ReferenceStore();

  std::optional<std::int64_t> FindBySha256(const std::string& sha256);

  // Inserts in one transaction, the descriptors in `packing`
  // (feature_codec.h); returns the new id (reference.id ignored).
  absl::StatusOr<std::int64_t> Insert(const StoredReference& stored,
                                      int packing = kStoredPacking);

  // Deletes the reference and its features: true. When sightings show the
  // image, it is kept as their image instead (bank "sightings", labels
  // cleared, its matches as a reference deleted): false, and the FAISS
  // indexes keep its vectors. NotFound when no reference has this id;
  // FailedPrecondition when it already is only a sighting image.
  absl::StatusOr<bool> Remove(std::int64_t id);

  // Moves a row of the bank "sightings" to `bank` with `source` and
  // `labels`: true. False, changing nothing, for a row in another bank.
  absl::StatusOr<bool> Promote(std::int64_t id, const std::string& bank,
                               const std::string& source, const Labels& labels);

  absl::StatusOr<Reference> Get(std::int64_t id);
  absl::StatusOr<StoredReference> GetStored(std::int64_t id);

  // References with id > after_id, ascending, at most `limit`, optionally
  // only those whose label (or bank) matches `filter` (validated by the
  // caller). Sighting images only with the filter bank=sightings.
  absl::StatusOr<std::vector<Reference>> List(std::int64_t after_id, int limit,
                                              const LabelFilter& filter = {});

  absl::StatusOr<std::int64_t> Count();  ///< every row, sighting images too
  // Bytes of the stored keypoints and descriptors of every row (a scan of
  // the features table).
  absl::StatusOr<std::pair<std::int64_t, std::int64_t>> FeatureBytes();
  // Ids of the rows in banks named benign-..., ascending.
  absl::StatusOr<std::vector<std::int64_t>> BenignIds();
  // Rows in each bank, every bank listed.
  absl::StatusOr<std::map<std::string, std::int64_t>> BankCounts();

  // The change sequence: one more after every committed Insert or Remove.
  absl::StatusOr<std::int64_t> Generation();

  // Calls `fn` for every reference, ascending by id.
  absl::Status ForEach(const std::function<void(StoredReference&&)>& fn);

 private:
  explicit ReferenceStore(std::shared_ptr<Database> db);

  std::shared_ptr<Database> db_;
};

}  // namespace spoor

#endif  // SPOOR_STORE_REFERENCE_STORE_H_
