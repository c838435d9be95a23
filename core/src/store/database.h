// The one SQLite connection of an index directory, shared by the stores that
// keep their tables in it (references, sightings), and the schema's
// migrations. Opening brings any older database up to kSchemaVersion in one
// transaction per step; PRAGMA user_version records where a database stands.
//
// Thread safety: a store locks `mu` around every use of `sql`.
#ifndef SPOOR_STORE_DATABASE_H_
#define SPOOR_STORE_DATABASE_H_

#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "absl/status/statusor.h"

namespace SQLite {
class Database;
}

namespace spoor {

// 1: references, features, generation (before banks).
// 2: banks (refs.bank, banks), sightings, sighting_matches, links,
//    thumbnails.
// 3: sighting_contacts, links.kind and links.contact.
inline constexpr int kSchemaVersion = 4;

struct Database {
  // Opens or creates the database at `path` (WAL, synchronous FULL, foreign
  // keys on) and migrates it. FailedPrecondition for an unreadable file or a
  // schema newer than this build knows; DataLoss when a table lacks a column
  // its schema version promises (a damaged or foreign file).
  static absl::StatusOr<std::shared_ptr<Database>> Open(
      const std::string& path);
  ~Database();

  std::mutex mu;
  std::unique_ptr<SQLite::Database> sql;
  int migrated_from = 0;  ///< user_version found on open
};

// Thrown by a store that reads a row it cannot make sense of (features that
// do not unpack): damage, reported as DataLoss.
struct DamagedRow : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The status for an exception out of SQLiteCpp, mapped once for every store:
// DataLoss for a damaged database file (SQLITE_CORRUPT, SQLITE_NOTADB) or row,
// ResourceExhausted for a full disk, Unavailable while locked, Internal
// otherwise. `store` and `what` name the store and the step.
absl::Status SqliteError(const std::exception& e, const char* store,
                         const char* what);

}  // namespace spoor

#endif  // SPOOR_STORE_DATABASE_H_
