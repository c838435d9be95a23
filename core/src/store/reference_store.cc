#include "store/reference_store.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "features/feature_codec.h"

namespace spoor {
namespace {

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS refs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  source TEXT NOT NULL,
  sha256 TEXT NOT NULL UNIQUE,
  bytes INTEGER NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  format TEXT NOT NULL,
  species_scientific TEXT NOT NULL DEFAULT '',
  species_common TEXT NOT NULL DEFAULT '',
  item_type TEXT NOT NULL DEFAULT '',
  cites_appendix TEXT NOT NULL DEFAULT '',
  label_source TEXT NOT NULL DEFAULT '',
  case_ref TEXT NOT NULL DEFAULT '',
  licence TEXT NOT NULL DEFAULT '',
  added_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE TABLE IF NOT EXISTS features (
  ref_id INTEGER PRIMARY KEY REFERENCES refs(id) ON DELETE CASCADE,
  phash BLOB NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  keypoints BLOB NOT NULL,
  descriptors BLOB NOT NULL
);
-- One row: bumped in the same transaction as every insert and remove, so the
-- FAISS files saved at generation G are known stale once the database is past
-- G, even when the count of references is unchanged.
CREATE TABLE IF NOT EXISTS generation (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  value INTEGER NOT NULL
);
INSERT OR IGNORE INTO generation (id, value) VALUES (1, 0);
)sql";

constexpr const char* kBumpGeneration =
    "UPDATE generation SET value = value + 1 WHERE id = 1";

constexpr const char* kRefColumns =
    "id, source, sha256, bytes, width, height, format, species_scientific, "
    "species_common, item_type, cites_appendix, label_source, case_ref, "
    "licence, added_at";
constexpr const char* kRefColumnsOfR =
    "r.id, r.source, r.sha256, r.bytes, r.width, r.height, r.format, "
    "r.species_scientific, r.species_common, r.item_type, r.cites_appendix, "
    "r.label_source, r.case_ref, r.licence, r.added_at";

// Reads the kRefColumns starting at column `base`.
Reference ReadReference(SQLite::Statement& q, int base = 0) {
  Reference r;
  r.id = q.getColumn(base + 0).getInt64();
  r.source = q.getColumn(base + 1).getString();
  r.sha256 = q.getColumn(base + 2).getString();
  r.bytes = q.getColumn(base + 3).getInt64();
  r.width = q.getColumn(base + 4).getInt();
  r.height = q.getColumn(base + 5).getInt();
  r.format = q.getColumn(base + 6).getString();
  r.labels.species_scientific = q.getColumn(base + 7).getString();
  r.labels.species_common = q.getColumn(base + 8).getString();
  r.labels.item_type = q.getColumn(base + 9).getString();
  r.labels.cites_appendix = q.getColumn(base + 10).getString();
  r.labels.source = q.getColumn(base + 11).getString();
  r.labels.case_ref = q.getColumn(base + 12).getString();
  r.labels.licence = q.getColumn(base + 13).getString();
  r.added_at = q.getColumn(base + 14).getString();
  return r;
}

// Columns: ref_id, phash, width, height, keypoints, descriptors, then the
// reference columns.
StoredReference ReadStored(SQLite::Statement& q) {
  StoredReference s;
  SQLite::Column phash = q.getColumn(1);
  if (static_cast<size_t>(phash.getBytes()) == s.hash.size())
    std::memcpy(s.hash.data(), phash.getBlob(), s.hash.size());
  s.features.width = q.getColumn(2).getInt();
  s.features.height = q.getColumn(3).getInt();
  SQLite::Column k = q.getColumn(4);
  SQLite::Column d = q.getColumn(5);
  auto bytes = [](const SQLite::Column& c) {
    return std::span<const std::uint8_t>(
        static_cast<const std::uint8_t*>(c.getBlob()),
        static_cast<std::size_t>(std::max(0, c.getBytes())));
  };
  absl::Status unpacked = UnpackFeatures(bytes(k), bytes(d), s.features);
  // Callers catch this at their one boundary and report the row's error.
  if (!unpacked.ok()) throw std::runtime_error(std::string(unpacked.message()));
  return s;
}

absl::Status FromSqlite(const std::exception& e, const char* what) {
  return absl::InternalError(
      absl::StrCat("reference database: ", what, ": ", e.what()));
}

}  // namespace

ReferenceStore::ReferenceStore(std::unique_ptr<SQLite::Database> db)
    : db_(std::move(db)) {}
ReferenceStore::~ReferenceStore() = default;

absl::StatusOr<std::unique_ptr<ReferenceStore>> ReferenceStore::Open(
    const std::string& path) {
  try {
    auto db = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db->exec("PRAGMA journal_mode=WAL");
    // FULL: an insert or remove the service acknowledged survives a power
    // loss too, not only a killed process (NORMAL may lose the last commits).
    db->exec("PRAGMA synchronous=FULL");
    db->exec("PRAGMA foreign_keys=ON");
    db->exec("PRAGMA busy_timeout=5000");
    db->exec(kSchema);
    return std::unique_ptr<ReferenceStore>(new ReferenceStore(std::move(db)));
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot open reference database: ", e.what()));
  }
}

std::optional<std::int64_t> ReferenceStore::FindBySha256(
    const std::string& sha256) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_, "SELECT id FROM refs WHERE sha256 = ?");
    q.bind(1, sha256);
    if (q.executeStep()) return q.getColumn(0).getInt64();
  } catch (const std::exception&) {
    // A failing read finds nothing; the insert that follows reports the error.
  }
  return std::nullopt;
}

absl::StatusOr<std::int64_t> ReferenceStore::Insert(
    const StoredReference& stored) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Transaction tx(*db_);
    const Reference& r = stored.reference;
    SQLite::Statement ins(*db_,
                          "INSERT INTO refs (source, sha256, bytes, width, "
                          "height, format, species_scientific, species_common, "
                          "item_type, cites_appendix, label_source, case_ref, "
                          "licence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
    ins.bind(1, r.source);
    ins.bind(2, r.sha256);
    ins.bind(3, static_cast<int64_t>(r.bytes));
    ins.bind(4, r.width);
    ins.bind(5, r.height);
    ins.bind(6, r.format);
    ins.bind(7, r.labels.species_scientific);
    ins.bind(8, r.labels.species_common);
    ins.bind(9, r.labels.item_type);
    ins.bind(10, r.labels.cites_appendix);
    ins.bind(11, r.labels.source);
    ins.bind(12, r.labels.case_ref);
    ins.bind(13, r.labels.licence);
    ins.exec();
    std::int64_t id = db_->getLastInsertRowid();
    const LocalFeatures& f = stored.features;
    SQLite::Statement feat(
        *db_,
        "INSERT INTO features (ref_id, phash, width, height, "
        "keypoints, descriptors) VALUES (?,?,?,?,?,?)");
    feat.bind(1, static_cast<int64_t>(id));
    feat.bind(2, stored.hash.data(), static_cast<int>(stored.hash.size()));
    feat.bind(3, f.width);
    feat.bind(4, f.height);
    // An image with no keypoints (a flat colour) stores empty blobs; SQLite
    // reads a null pointer as NULL, so empty vectors bind a valid one.
    static const std::uint8_t kEmpty = 0;
    auto blob = [](const void* data, size_t size) {
      return size == 0 ? static_cast<const void*>(&kEmpty) : data;
    };
    std::vector<std::uint8_t> keypoints = PackKeypoints(f);
    std::vector<std::uint8_t> descriptors = PackDescriptors(f);
    feat.bind(5, blob(keypoints.data(), keypoints.size()),
              static_cast<int>(keypoints.size()));
    feat.bind(6, blob(descriptors.data(), descriptors.size()),
              static_cast<int>(descriptors.size()));
    feat.exec();
    db_->exec(kBumpGeneration);
    tx.commit();
    return id;
  } catch (const std::exception& e) {
    return FromSqlite(e, "insert");
  }
}

absl::Status ReferenceStore::Remove(std::int64_t id) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Transaction tx(*db_);
    SQLite::Statement del(*db_, "DELETE FROM refs WHERE id = ?");
    del.bind(1, static_cast<int64_t>(id));
    if (del.exec() == 0) {
      return absl::NotFoundError(absl::StrCat("no reference with id ", id));
    }
    db_->exec(kBumpGeneration);
    tx.commit();
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return FromSqlite(e, "remove");
  }
}

absl::StatusOr<Reference> ReferenceStore::Get(std::int64_t id) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(
        *db_, absl::StrCat("SELECT ", kRefColumns, " FROM refs WHERE id = ?"));
    q.bind(1, static_cast<int64_t>(id));
    if (!q.executeStep()) {
      return absl::NotFoundError(absl::StrCat("no reference with id ", id));
    }
    return ReadReference(q);
  } catch (const std::exception& e) {
    return FromSqlite(e, "get");
  }
}

absl::StatusOr<StoredReference> ReferenceStore::GetStored(std::int64_t id) {
  auto reference = Get(id);
  if (!reference.ok()) return reference.status();
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(*db_,
                        "SELECT ref_id, phash, width, height, keypoints, "
                        "descriptors FROM features WHERE ref_id = ?");
    q.bind(1, static_cast<int64_t>(id));
    if (!q.executeStep()) {
      return absl::DataLossError(
          absl::StrCat("reference ", id, " has no stored features"));
    }
    StoredReference s = ReadStored(q);
    s.reference = std::move(*reference);
    return s;
  } catch (const std::exception& e) {
    return FromSqlite(e, "get features");
  }
}

absl::StatusOr<std::vector<Reference>> ReferenceStore::List(
    std::int64_t after_id, int limit, const LabelFilter& filter) {
  // The label name maps to a fixed column; the value is bound, never spliced.
  std::string where;
  if (!filter.field.empty()) {
    if (!ValidateLabelFilter(filter).ok()) {
      return absl::InvalidArgumentError("bad label filter");
    }
    where = " AND " +
            (filter.field == "source" ? std::string("label_source")
                                      : filter.field) +
            " = ?";
  }
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(
        *db_, absl::StrCat("SELECT ", kRefColumns, " FROM refs WHERE id > ?",
                           where, " ORDER BY id LIMIT ?"));
    int arg = 1;
    q.bind(arg++, static_cast<int64_t>(after_id));
    if (!where.empty()) q.bind(arg++, filter.value);
    q.bind(arg++, limit);
    std::vector<Reference> out;
    while (q.executeStep()) out.push_back(ReadReference(q));
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "list");
  }
}

absl::StatusOr<std::int64_t> ReferenceStore::Count() {
  std::lock_guard lock(mu_);
  try {
    return db_->execAndGet("SELECT COUNT(*) FROM refs").getInt64();
  } catch (const std::exception& e) {
    return FromSqlite(e, "count");
  }
}

absl::StatusOr<std::int64_t> ReferenceStore::Generation() {
  std::lock_guard lock(mu_);
  try {
    return db_->execAndGet("SELECT value FROM generation WHERE id = 1")
        .getInt64();
  } catch (const std::exception& e) {
    return FromSqlite(e, "generation");
  }
}

absl::Status ReferenceStore::ForEach(
    const std::function<void(StoredReference&&)>& fn) {
  std::lock_guard lock(mu_);
  try {
    SQLite::Statement q(
        *db_, absl::StrCat("SELECT f.ref_id, f.phash, f.width, f.height, "
                           "f.keypoints, f.descriptors, ",
                           kRefColumnsOfR,
                           " FROM refs r LEFT JOIN features f ON f.ref_id = "
                           "r.id ORDER BY r.id"));
    while (q.executeStep()) {
      if (q.getColumn(0).isNull()) {
        return absl::DataLossError(absl::StrCat("reference ",
                                                q.getColumn(6).getInt64(),
                                                " has no stored features"));
      }
      StoredReference s = ReadStored(q);
      s.reference = ReadReference(q, 6);
      fn(std::move(s));
    }
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return FromSqlite(e, "scan");
  }
}

}  // namespace spoor
