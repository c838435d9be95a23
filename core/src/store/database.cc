#include "store/database.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace spoor {
namespace {

// Migration i takes a database from user_version i to i + 1. Plain SQL that
// PostgreSQL also reads, except AUTOINCREMENT (SERIAL there) and the
// strftime defaults (now()).
constexpr const char* kMigrations[kSchemaVersion] = {
    // 0 -> 1: the schema before banks. IF NOT EXISTS: databases written
    // before user_version was kept already have these tables.
    R"sql(
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
-- One row: bumped in the same transaction as every insert and remove of a
-- reference, so FAISS files saved at generation G are known stale once the
-- database is past G, even when the count of references is unchanged.
CREATE TABLE IF NOT EXISTS generation (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  value INTEGER NOT NULL
);
INSERT OR IGNORE INTO generation (id, value) VALUES (1, 0);
)sql",
    // 1 -> 2: banks and sightings. Every existing reference goes to the
    // bank "default".
    R"sql(
ALTER TABLE refs ADD COLUMN bank TEXT NOT NULL DEFAULT 'default';
CREATE INDEX refs_bank ON refs (bank, id);
CREATE TABLE banks (
  name TEXT PRIMARY KEY,
  owner TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
INSERT INTO banks (name) SELECT DISTINCT bank FROM refs;
INSERT OR IGNORE INTO banks (name) VALUES ('default'), ('sightings');
-- One ad showing one image. The image is a refs row (bank 'sightings'
-- unless the same bytes are a reference), so the FAISS tiers that find
-- references find earlier sightings too.
CREATE TABLE sightings (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  image_id INTEGER NOT NULL REFERENCES refs(id),
  platform TEXT NOT NULL,
  ad_id TEXT NOT NULL,
  seller_id TEXT NOT NULL DEFAULT '',
  listing_time TEXT NOT NULL DEFAULT '',
  title TEXT NOT NULL DEFAULT '',
  url TEXT NOT NULL DEFAULT '',
  seen_at TEXT NOT NULL,
  UNIQUE (platform, ad_id, image_id)
);
CREATE INDEX sightings_seller ON sightings (platform, seller_id);
CREATE INDEX sightings_image ON sightings (image_id);
CREATE INDEX sightings_seen ON sightings (platform, seen_at);
-- A sighting's verified match with a reference (any bank but 'sightings').
CREATE TABLE sighting_matches (
  sighting_id INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
  ref_id INTEGER NOT NULL REFERENCES refs(id) ON DELETE CASCADE,
  score REAL NOT NULL,
  verdict TEXT NOT NULL,
  inliers INTEGER NOT NULL,
  sighting_x INTEGER NOT NULL, sighting_y INTEGER NOT NULL,
  sighting_w INTEGER NOT NULL, sighting_h INTEGER NOT NULL,
  ref_x INTEGER NOT NULL, ref_y INTEGER NOT NULL,
  ref_w INTEGER NOT NULL, ref_h INTEGER NOT NULL,
  retroactive INTEGER NOT NULL DEFAULT 0,
  matched_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  PRIMARY KEY (sighting_id, ref_id)
);
CREATE INDEX sighting_matches_ref ON sighting_matches (ref_id);
-- A verified match between two sightings: the newer one's image matched
-- the older one's. Reviews by investigators live on the link.
CREATE TABLE links (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  newer_id INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
  older_id INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
  score REAL NOT NULL,
  verdict TEXT NOT NULL,
  inliers INTEGER NOT NULL,
  newer_x INTEGER NOT NULL, newer_y INTEGER NOT NULL,
  newer_w INTEGER NOT NULL, newer_h INTEGER NOT NULL,
  older_x INTEGER NOT NULL, older_y INTEGER NOT NULL,
  older_w INTEGER NOT NULL, older_h INTEGER NOT NULL,
  review TEXT NOT NULL DEFAULT '',
  review_note TEXT NOT NULL DEFAULT '',
  reviewer TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
  UNIQUE (newer_id, older_id)
);
CREATE INDEX links_older ON links (older_id);
-- A small JPEG of a sighting's image, for case reports: kept only for the
-- platforms whose policy allows it, deleted with the image.
CREATE TABLE thumbnails (
  image_id INTEGER PRIMARY KEY REFERENCES refs(id) ON DELETE CASCADE,
  jpeg BLOB NOT NULL
);
)sql",
    // 2 -> 3: contact details read in ad images, and links by shared
    // contact text. A link is kind 'match' (the images verified) or
    // 'contact' (only the contact text is shared); `contact` names what a
    // link's two ads both show ("phone:612345678"), either kind.
    R"sql(
ALTER TABLE links ADD COLUMN kind TEXT NOT NULL DEFAULT 'match';
ALTER TABLE links ADD COLUMN contact TEXT NOT NULL DEFAULT '';
CREATE TABLE sighting_contacts (
  sighting_id INTEGER NOT NULL REFERENCES sightings(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  value TEXT NOT NULL,
  text TEXT NOT NULL,
  x INTEGER NOT NULL, y INTEGER NOT NULL,
  w INTEGER NOT NULL, h INTEGER NOT NULL,
  PRIMARY KEY (sighting_id, kind, value)
);
CREATE INDEX sighting_contacts_value ON sighting_contacts (kind, value);
)sql",
    // 3 -> 4: how each row's descriptors are packed (feature_codec.h).
    // Rows written before are packing 2; new rows are written with the
    // current packing, and both are read.
    R"sql(
ALTER TABLE features ADD COLUMN packing INTEGER NOT NULL DEFAULT 2;
)sql",
};

// Each table's columns, as the database lists them.
std::map<std::string, std::set<std::string>> Columns(SQLite::Database& sql) {
  std::map<std::string, std::set<std::string>> out;
  SQLite::Statement tables(
      sql,
      "SELECT name FROM sqlite_master WHERE type = 'table' "
      "AND name NOT LIKE 'sqlite_%'");
  while (tables.executeStep()) {
    std::string table = tables.getColumn(0).getString();
    SQLite::Statement columns(sql, "SELECT name FROM pragma_table_info(?)");
    columns.bind(1, table);
    auto& names = out[table];
    while (columns.executeStep())
      names.insert(columns.getColumn(0).getString());
  }
  return out;
}

// Empty when every table and column the migrations make is in `sql`;
// otherwise what is missing. The expected schema is the migrations' own, run
// once on an in-memory database, so it is never written down twice.
std::string MissingSchema(SQLite::Database& sql) {
  static const auto* expected = [] {
    SQLite::Database memory(":memory:",
                            SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    for (const char* migration : kMigrations) memory.exec(migration);
    return new std::map<std::string, std::set<std::string>>(Columns(memory));
  }();
  auto actual = Columns(sql);
  for (const auto& [table, columns] : *expected) {
    auto found = actual.find(table);
    if (found == actual.end()) return absl::StrCat("table ", table);
    for (const std::string& column : columns)
      if (!found->second.count(column))
        return absl::StrCat("column ", table, ".", column);
  }
  return "";
}

}  // namespace

Database::~Database() = default;

absl::StatusOr<std::shared_ptr<Database>> Database::Open(
    const std::string& path) {
  auto db = std::make_shared<Database>();
  try {
    db->sql = std::make_unique<SQLite::Database>(
        path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    SQLite::Database& sql = *db->sql;
    sql.exec("PRAGMA journal_mode=WAL");
    // FULL: a write the service acknowledged survives a power loss too, not
    // only a killed process (NORMAL may lose the last commits).
    sql.exec("PRAGMA synchronous=FULL");
    sql.exec("PRAGMA foreign_keys=ON");
    // Deleted sightings (takedown and privacy requests) are overwritten in
    // the file, not left in free pages.
    sql.exec("PRAGMA secure_delete=ON");
    sql.exec("PRAGMA busy_timeout=5000");
    int version = sql.execAndGet("PRAGMA user_version").getInt();
    db->migrated_from = version;
    if (version > kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": database schema version ", version,
          " is newer than this build's (", kSchemaVersion, "); upgrade Spoor"));
    }
    for (int v = version; v < kSchemaVersion; ++v) {
      SQLite::Transaction tx(sql);
      sql.exec(kMigrations[v]);
      sql.exec(absl::StrCat("PRAGMA user_version = ", v + 1));
      tx.commit();
    }
    // Found by index_open_fuzzer: a file whose user_version claims this
    // schema but whose tables lack columns opened, and failed on first use.
    if (std::string missing = MissingSchema(sql); !missing.empty()) {
      return absl::DataLossError(absl::StrCat(
          path, ": database schema version ", kSchemaVersion, " lacks ",
          missing, "; the file is damaged or not Spoor's"));
    }
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": cannot open the database: ", e.what()));
  }
  return db;
}

absl::Status SqliteError(const std::exception& e, const char* store,
                         const char* what) {
  std::string message = absl::StrCat(store, ": ", what, ": ", e.what());
  if (dynamic_cast<const DamagedRow*>(&e)) return absl::DataLossError(message);
  const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e);
  switch (sqlite ? (sqlite->getErrorCode() & 0xff) : -1) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

}  // namespace spoor
