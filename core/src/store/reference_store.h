// The SQLite database of an index directory: references, their labels,
// perceptual hashes and local features. It is the source of truth: the FAISS
// indexes are derived from it and can always be rebuilt from it.
//
// Thread safety: every method is safe to call concurrently (one internal
// mutex serialises access to the connection).
#ifndef SPOOR_STORE_REFERENCE_STORE_H_
#define SPOOR_STORE_REFERENCE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spoor/local_features.h"
#include "spoor/perceptual_hash.h"
#include "spoor/reference.h"

namespace SQLite {
class Database;
}

namespace spoor {

// Everything stored for one reference.
struct StoredReference {
  Reference reference;
  Hash256 hash{};
  LocalFeatures features;
};

class ReferenceStore {
 public:
  // Opens or creates the database at `path`.
  static absl::StatusOr<std::unique_ptr<ReferenceStore>> Open(
      const std::string& path);
  ~ReferenceStore();

  std::optional<std::int64_t> FindBySha256(const std::string& sha256);

  // Inserts in one transaction; returns the new id (reference.id ignored).
  absl::StatusOr<std::int64_t> Insert(const StoredReference& stored);

  // NotFound when no reference has this id.
  absl::Status Remove(std::int64_t id);

  absl::StatusOr<Reference> Get(std::int64_t id);
  absl::StatusOr<StoredReference> GetStored(std::int64_t id);

  // References with id > after_id, ascending, at most `limit`, optionally
  // only those whose label matches `filter` (validated by the caller).
  absl::StatusOr<std::vector<Reference>> List(std::int64_t after_id, int limit,
                                              const LabelFilter& filter = {});

  absl::StatusOr<std::int64_t> Count();

  // The change sequence: one more after every committed Insert or Remove.
  absl::StatusOr<std::int64_t> Generation();

  // Calls `fn` for every reference, ascending by id.
  absl::Status ForEach(const std::function<void(StoredReference&&)>& fn);

 private:
  explicit ReferenceStore(std::unique_ptr<SQLite::Database> db);

  std::mutex mu_;
  std::unique_ptr<SQLite::Database> db_;
};

}  // namespace spoor

#endif  // SPOOR_STORE_REFERENCE_STORE_H_
