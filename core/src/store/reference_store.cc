#include "store/reference_store.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <cstring>
#include <span>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "features/feature_codec.h"
#include "store/database.h"

namespace spoor {
namespace {

constexpr const char* kBumpGeneration =
    "UPDATE generation SET value = value + 1 WHERE id = 1";

constexpr const char* kRefColumns =
    "id, source, sha256, bytes, width, height, format, species_scientific, "
    "species_common, item_type, cites_appendix, label_source, case_ref, "
    "licence, added_at, bank";
constexpr const char* kRefColumnsOfR =
    "r.id, r.source, r.sha256, r.bytes, r.width, r.height, r.format, "
    "r.species_scientific, r.species_common, r.item_type, r.cites_appendix, "
    "r.label_source, r.case_ref, r.licence, r.added_at, r.bank";

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
  r.bank = q.getColumn(base + 15).getString();
  return r;
}

// Columns: ref_id, phash, width, height, keypoints, descriptors, packing,
// then the reference columns.
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
  absl::Status unpacked =
      UnpackFeatures(bytes(k), bytes(d), q.getColumn(6).getInt(), s.features);
  // Callers catch this at their one boundary and report the row's error.
  if (!unpacked.ok()) throw DamagedRow(std::string(unpacked.message()));
  return s;
}

absl::Status FromSqlite(const std::exception& e, const char* what) {
  return SqliteError(e, "reference database", what);
}

}  // namespace

ReferenceStore::ReferenceStore(std::shared_ptr<Database> db)
    : db_(std::move(db)) {}
ReferenceStore::~ReferenceStore() = default;

absl::StatusOr<std::unique_ptr<ReferenceStore>> ReferenceStore::Open(
    std::shared_ptr<Database> db) {
  return std::unique_ptr<ReferenceStore>(new ReferenceStore(std::move(db)));
}

std::optional<std::int64_t> ReferenceStore::FindBySha256(
    const std::string& sha256) {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql, "SELECT id FROM refs WHERE sha256 = ?");
    q.bind(1, sha256);
    if (q.executeStep()) return q.getColumn(0).getInt64();
  } catch (const std::exception&) {
    // A failing read finds nothing; the insert that follows reports the error.
  }
  return std::nullopt;
}

absl::StatusOr<std::int64_t> ReferenceStore::Insert(
    const StoredReference& stored, int packing) {
  if (PackedDescriptorBytes(packing) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown descriptor packing ", packing));
  }
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Transaction tx(*db_->sql);
    const Reference& r = stored.reference;
    SQLite::Statement bank(*db_->sql,
                           "INSERT OR IGNORE INTO banks (name) VALUES (?)");
    bank.bind(1, r.bank);
    bank.exec();
    SQLite::Statement ins(
        *db_->sql,
        "INSERT INTO refs (source, sha256, bytes, width, "
        "height, format, species_scientific, species_common, "
        "item_type, cites_appendix, label_source, case_ref, "
        "licence, bank) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
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
    ins.bind(14, r.bank);
    ins.exec();
    std::int64_t id = db_->sql->getLastInsertRowid();
    const LocalFeatures& f = stored.features;
    SQLite::Statement feat(
        *db_->sql,
        "INSERT INTO features (ref_id, phash, width, height, "
        "keypoints, descriptors, packing) VALUES (?,?,?,?,?,?,?)");
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
    std::vector<std::uint8_t> descriptors = PackDescriptors(f, packing);
    feat.bind(5, blob(keypoints.data(), keypoints.size()),
              static_cast<int>(keypoints.size()));
    feat.bind(6, blob(descriptors.data(), descriptors.size()),
              static_cast<int>(descriptors.size()));
    feat.bind(7, packing);
    feat.exec();
    db_->sql->exec(kBumpGeneration);
    tx.commit();
    return id;
  } catch (const std::exception& e) {
    return FromSqlite(e, "insert");
  }
}

absl::StatusOr<bool> ReferenceStore::Remove(std::int64_t id) {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Transaction tx(*db_->sql);
    SQLite::Statement q(*db_->sql,
                        "SELECT bank, (SELECT COUNT(*) FROM sightings WHERE "
                        "image_id = refs.id) FROM refs WHERE id = ?");
    q.bind(1, static_cast<int64_t>(id));
    if (!q.executeStep()) {
      return absl::NotFoundError(absl::StrCat("no reference with id ", id));
    }
    std::string bank = q.getColumn(0).getString();
    std::int64_t sightings = q.getColumn(1).getInt64();
    q.reset();
    if (sightings > 0) {
      // Ads showed this image: it stays, as their image, out of every
      // reference bank, until DeleteSightings or retention removes them.
      if (bank == kSightingsBank) {
        return absl::FailedPreconditionError(absl::StrCat(
            "references/", id, " is the image of ", sightings,
            " sightings, not a reference; DeleteSightings removes it"));
      }
      SQLite::Statement demote(
          *db_->sql,
          "UPDATE refs SET bank = ?, species_scientific = '', "
          "species_common = '', item_type = '', cites_appendix = '', "
          "label_source = '', case_ref = '', licence = '' WHERE id = ?");
      demote.bind(1, kSightingsBank);
      demote.bind(2, static_cast<int64_t>(id));
      demote.exec();
      SQLite::Statement unmatch(
          *db_->sql, "DELETE FROM sighting_matches WHERE ref_id = ?");
      unmatch.bind(1, static_cast<int64_t>(id));
      unmatch.exec();
      tx.commit();
      return false;
    }
    SQLite::Statement del(*db_->sql, "DELETE FROM refs WHERE id = ?");
    del.bind(1, static_cast<int64_t>(id));
    del.exec();
    db_->sql->exec(kBumpGeneration);
    tx.commit();
    return true;
  } catch (const std::exception& e) {
    return FromSqlite(e, "remove");
  }
}

absl::StatusOr<bool> ReferenceStore::Promote(std::int64_t id,
                                             const std::string& bank,
                                             const std::string& source,
                                             const Labels& l) {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Transaction tx(*db_->sql);
    SQLite::Statement b(*db_->sql,
                        "INSERT OR IGNORE INTO banks (name) VALUES (?)");
    b.bind(1, bank);
    b.exec();
    SQLite::Statement q(
        *db_->sql,
        "UPDATE refs SET bank = ?, source = ?, species_scientific = ?, "
        "species_common = ?, item_type = ?, cites_appendix = ?, "
        "label_source = ?, case_ref = ?, licence = ? WHERE id = ? AND bank = "
        "?");
    int arg = 1;
    for (const std::string* v :
         {&bank, &source, &l.species_scientific, &l.species_common,
          &l.item_type, &l.cites_appendix, &l.source, &l.case_ref, &l.licence})
      q.bind(arg++, *v);
    q.bind(arg++, static_cast<int64_t>(id));
    q.bind(arg++, kSightingsBank);
    bool promoted = q.exec() > 0;
    tx.commit();
    return promoted;
  } catch (const std::exception& e) {
    return FromSqlite(e, "promote");
  }
}

absl::StatusOr<Reference> ReferenceStore::Get(std::int64_t id) {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql, absl::StrCat("SELECT ", kRefColumns,
                                                " FROM refs WHERE id = ?"));
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
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql,
                        "SELECT ref_id, phash, width, height, keypoints, "
                        "descriptors, packing FROM features WHERE ref_id = ?");
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
  // Without a bank filter, sighting images are left out: they are ads, not
  // references.
  std::string where = " AND bank <> ?";
  std::string value = kSightingsBank;
  if (!filter.field.empty()) {
    if (!ValidateLabelFilter(filter).ok()) {
      return absl::InvalidArgumentError("bad label filter");
    }
    where = " AND " +
            (filter.field == "source" ? std::string("label_source")
                                      : filter.field) +
            " = ?";
    value = filter.value;
  }
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql, absl::StrCat("SELECT ", kRefColumns,
                                                " FROM refs WHERE id > ?",
                                                where, " ORDER BY id LIMIT ?"));
    int arg = 1;
    q.bind(arg++, static_cast<int64_t>(after_id));
    q.bind(arg++, value);
    q.bind(arg++, limit);
    std::vector<Reference> out;
    while (q.executeStep()) out.push_back(ReadReference(q));
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "list");
  }
}

absl::StatusOr<std::int64_t> ReferenceStore::Count() {
  std::lock_guard lock(db_->mu);
  try {
    return db_->sql->execAndGet("SELECT COUNT(*) FROM refs").getInt64();
  } catch (const std::exception& e) {
    return FromSqlite(e, "count");
  }
}

absl::StatusOr<std::pair<std::int64_t, std::int64_t>>
ReferenceStore::FeatureBytes() {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql,
                        "SELECT TOTAL(LENGTH(keypoints)), "
                        "TOTAL(LENGTH(descriptors)) FROM features");
    q.executeStep();
    return std::pair<std::int64_t, std::int64_t>(
        static_cast<std::int64_t>(q.getColumn(0).getDouble()),
        static_cast<std::int64_t>(q.getColumn(1).getDouble()));
  } catch (const std::exception& e) {
    return FromSqlite(e, "feature bytes");
  }
}

absl::StatusOr<std::vector<std::int64_t>> ReferenceStore::BenignIds() {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql,
                        "SELECT id FROM refs WHERE bank LIKE 'benign-%' "
                        "ORDER BY id");
    std::vector<std::int64_t> out;
    while (q.executeStep()) out.push_back(q.getColumn(0).getInt64());
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "benign ids");
  }
}

absl::StatusOr<std::map<std::string, std::int64_t>>
ReferenceStore::BankCounts() {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql,
                        "SELECT b.name, (SELECT COUNT(*) FROM refs r WHERE "
                        "r.bank = b.name) FROM banks b ORDER BY b.name");
    std::map<std::string, std::int64_t> out;
    while (q.executeStep())
      out[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "bank counts");
  }
}

absl::StatusOr<std::int64_t> ReferenceStore::Generation() {
  std::lock_guard lock(db_->mu);
  try {
    return db_->sql->execAndGet("SELECT value FROM generation WHERE id = 1")
        .getInt64();
  } catch (const std::exception& e) {
    return FromSqlite(e, "generation");
  }
}

absl::Status ReferenceStore::ForEach(
    const std::function<void(StoredReference&&)>& fn) {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(
        *db_->sql,
        absl::StrCat("SELECT f.ref_id, f.phash, f.width, f.height, "
                     "f.keypoints, f.descriptors, f.packing, ",
                     kRefColumnsOfR,
                     " FROM refs r LEFT JOIN features f ON f.ref_id = "
                     "r.id ORDER BY r.id"));
    while (q.executeStep()) {
      if (q.getColumn(0).isNull()) {
        return absl::DataLossError(absl::StrCat("reference ",
                                                q.getColumn(7).getInt64(),
                                                " has no stored features"));
      }
      StoredReference s = ReadStored(q);
      s.reference = ReadReference(q, 7);
      fn(std::move(s));
    }
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return FromSqlite(e, "scan");
  }
}

}  // namespace spoor
