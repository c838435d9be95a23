#include <SQLiteCpp/SQLiteCpp.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "absl/strings/str_cat.h"
#include "spoor/reference_index.h"
#include "spoor/sightings.h"
#include "store/database.h"
#include "util/status_macros.h"
#include "util/utf8.h"

namespace spoor {
namespace {

constexpr std::size_t kMostFieldBytes = 2000;

absl::Status FromSqlite(const std::exception& e, const char* what) {
  return SqliteError(e, "sightings database", what);
}

bool IsUtcTime(const std::string& t) {
  // YYYY-MM-DDTHH:MM:SSZ
  static constexpr char kShape[] = "dddd-dd-ddTdd:dd:ddZ";
  if (t.size() != sizeof(kShape) - 1) return false;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (kShape[i] == 'd' ? !(t[i] >= '0' && t[i] <= '9') : t[i] != kShape[i])
      return false;
  }
  return true;
}

Verdict VerdictFromName(const std::string& name) {
  for (Verdict v :
       {Verdict::kExact, Verdict::kModifiedCopy, Verdict::kSameItem})
    if (name == VerdictName(v)) return v;
  return Verdict::kNoMatch;
}

Review ReviewFromName(const std::string& name) {
  if (name == "confirmed") return Review::kConfirmed;
  if (name == "rejected") return Review::kRejected;
  return Review::kNone;
}

Box ReadBox(SQLite::Statement& q, int base) {
  return Box{q.getColumn(base).getInt(), q.getColumn(base + 1).getInt(),
             q.getColumn(base + 2).getInt(), q.getColumn(base + 3).getInt()};
}

void BindBox(SQLite::Statement& q, int base, const Box& b) {
  q.bind(base, b.x);
  q.bind(base + 1, b.y);
  q.bind(base + 2, b.width);
  q.bind(base + 3, b.height);
}

// Runs an insert whose first thirteen parameters are (a, b, score, verdict,
// inliers, box of a, box of b), as the sighting_matches and links inserts
// are; returns the rows inserted (0 when it was there already).
int InsertPair(SQLite::Statement& q, std::int64_t a, std::int64_t b,
               const Match& m, const Box& a_box, const Box& b_box) {
  q.bind(1, static_cast<int64_t>(a));
  q.bind(2, static_cast<int64_t>(b));
  q.bind(3, m.score);
  q.bind(4, VerdictName(m.verdict));
  q.bind(5, m.inliers);
  BindBox(q, 6, a_box);
  BindBox(q, 10, b_box);
  int inserted = q.exec();
  q.reset();
  return inserted;
}

constexpr const char* kSightingColumns =
    "s.id, s.image_id, r.sha256, r.width, r.height, s.platform, s.ad_id, "
    "s.seller_id, s.listing_time, s.title, s.url, s.seen_at";

Sighting ReadSighting(SQLite::Statement& q) {
  Sighting s;
  s.id = q.getColumn(0).getInt64();
  s.image_id = q.getColumn(1).getInt64();
  s.sha256 = q.getColumn(2).getString();
  s.width = q.getColumn(3).getInt();
  s.height = q.getColumn(4).getInt();
  s.ad.platform = q.getColumn(5).getString();
  s.ad.ad_id = q.getColumn(6).getString();
  s.ad.seller_id = q.getColumn(7).getString();
  s.ad.listing_time = q.getColumn(8).getString();
  s.ad.title = q.getColumn(9).getString();
  s.ad.url = q.getColumn(10).getString();
  s.seen_at = q.getColumn(11).getString();
  return s;
}

constexpr const char* kLinkColumns =
    "id, newer_id, older_id, score, verdict, inliers, newer_x, newer_y, "
    "newer_w, newer_h, older_x, older_y, older_w, older_h, review, "
    "review_note, reviewer, created_at, kind, contact";

// Reads the kLinkColumns starting at column `base`.
constexpr const char* kLinkColumnsOfL =
    "l.id, l.newer_id, l.older_id, l.score, l.verdict, l.inliers, l.newer_x, "
    "l.newer_y, l.newer_w, l.newer_h, l.older_x, l.older_y, l.older_w, "
    "l.older_h, l.review, l.review_note, l.reviewer, l.created_at, l.kind, "
    "l.contact";

Link ReadLink(SQLite::Statement& q, int base = 0) {
  auto col = [&](int i) { return q.getColumn(base + i); };
  Link l;
  l.id = col(0).getInt64();
  l.newer_id = col(1).getInt64();
  l.older_id = col(2).getInt64();
  l.score = col(3).getDouble();
  l.verdict = VerdictFromName(col(4).getString());
  l.inliers = col(5).getInt();
  l.newer_box = ReadBox(q, base + 6);
  l.older_box = ReadBox(q, base + 10);
  l.review = ReviewFromName(col(14).getString());
  l.review_note = col(15).getString();
  l.reviewer = col(16).getString();
  l.created_at = col(17).getString();
  l.kind = col(18).getString() == LinkKindName(LinkKind::kContact)
               ? LinkKind::kContact
               : LinkKind::kMatch;
  l.contact = col(19).getString();
  return l;
}

// "phone:612345678": how a link names the contact its two ads share.
std::string ContactKey(const Contact& c) {
  return absl::StrCat(ContactKindName(c.kind), ":", c.value);
}

ContactKind ContactKindFromName(const std::string& name) {
  for (ContactKind k : {ContactKind::kEmail, ContactKind::kHandle})
    if (name == ContactKindName(k)) return k;
  return ContactKind::kPhone;
}

// What a benign match explains in an ad: the neighbourhood of each of its
// inliers (app chrome is a few bands of text and bars, not a rectangle), or
// its whole query box when it matched on the hash alone.
struct BenignRegion {
  Box box;
  std::vector<std::array<float, 2>> points;
};

bool Explained(const std::vector<BenignRegion>& benign, float x, float y,
               float radius) {
  for (const BenignRegion& b : benign) {
    if (b.points.empty()) {
      const Box& q = b.box;
      if (x >= q.x && y >= q.y && x < q.x + q.width && y < q.y + q.height)
        return true;
      continue;
    }
    for (const auto& p : b.points) {
      float dx = p[0] - x, dy = p[1] - y;
      if (dx * dx + dy * dy < radius * radius) return true;
    }
  }
  return false;
}

// Whether `m` links ads once benign content is taken out. The Matcher
// verified it without the query's keypoints that benign content explains,
// so its inliers rest on the rest; a match without inliers (the hash alone,
// or the same bytes) stands unless benign matches explain most of its box.
bool RestsOnItem(const Match& m, const std::vector<BenignRegion>& benign,
                 int width, int height) {
  if (benign.empty() || !m.query_inliers.empty()) return true;
  const float radius = 0.04f * std::max(width, height);
  const Box& q = m.query_box;
  int explained = 0, total = 0;
  for (int i = 0; i < 10; ++i)
    for (int j = 0; j < 10; ++j, ++total)
      explained += Explained(benign, q.x + (i + 0.5f) * q.width / 10,
                             q.y + (j + 0.5f) * q.height / 10, radius);
  return explained < 0.8 * total;
}

bool Stronger(const Link& a, const Link& b) {
  return a.score != b.score ? a.score > b.score : a.id < b.id;
}

// The reads below run with db.mu held.
std::optional<Sighting> GetLocked(SQLite::Database& db, std::int64_t id);

void LoadMatchesLocked(SQLite::Database& db, Sighting& s) {
  SQLite::Statement q(
      db,
      "SELECT m.score, m.verdict, m.inliers, m.sighting_x, m.sighting_y, "
      "m.sighting_w, m.sighting_h, m.ref_x, m.ref_y, m.ref_w, m.ref_h, "
      "m.retroactive, r.id, r.source, r.sha256, r.bank, "
      "r.species_scientific, r.species_common, r.item_type, "
      "r.cites_appendix, r.case_ref, r.width, r.height, r.format "
      "FROM sighting_matches m JOIN refs r ON r.id = m.ref_id "
      "WHERE m.sighting_id = ? ORDER BY m.score DESC, r.id");
  q.bind(1, static_cast<int64_t>(s.id));
  while (q.executeStep()) {
    SightingMatch m;
    m.score = q.getColumn(0).getDouble();
    m.verdict = VerdictFromName(q.getColumn(1).getString());
    m.inliers = q.getColumn(2).getInt();
    m.sighting_box = ReadBox(q, 3);
    m.reference_box = ReadBox(q, 7);
    m.retroactive = q.getColumn(11).getInt() != 0;
    m.reference.id = q.getColumn(12).getInt64();
    m.reference.source = q.getColumn(13).getString();
    m.reference.sha256 = q.getColumn(14).getString();
    m.reference.bank = q.getColumn(15).getString();
    m.reference.labels.species_scientific = q.getColumn(16).getString();
    m.reference.labels.species_common = q.getColumn(17).getString();
    m.reference.labels.item_type = q.getColumn(18).getString();
    m.reference.labels.cites_appendix = q.getColumn(19).getString();
    m.reference.labels.case_ref = q.getColumn(20).getString();
    m.reference.width = q.getColumn(21).getInt();
    m.reference.height = q.getColumn(22).getInt();
    m.reference.format = q.getColumn(23).getString();
    s.matches.push_back(std::move(m));
  }
}

void LoadContactsLocked(SQLite::Database& db, Sighting& s) {
  SQLite::Statement q(db,
                      "SELECT kind, value, text, x, y, w, h FROM "
                      "sighting_contacts WHERE sighting_id = ? ORDER BY y, x");
  q.bind(1, static_cast<int64_t>(s.id));
  while (q.executeStep()) {
    Contact c;
    c.kind = ContactKindFromName(q.getColumn(0).getString());
    c.value = q.getColumn(1).getString();
    c.text = q.getColumn(2).getString();
    c.box = ReadBox(q, 3);
    s.contacts.push_back(std::move(c));
  }
}

std::optional<Sighting> GetLocked(SQLite::Database& db, std::int64_t id) {
  SQLite::Statement q(db, absl::StrCat("SELECT ", kSightingColumns,
                                       " FROM sightings s JOIN refs r ON "
                                       "r.id = s.image_id WHERE s.id = ?"));
  q.bind(1, static_cast<int64_t>(id));
  if (!q.executeStep()) return std::nullopt;
  Sighting s = ReadSighting(q);
  q.reset();
  LoadMatchesLocked(db, s);
  LoadContactsLocked(db, s);
  return s;
}

std::vector<Sighting> QuerySightingsLocked(SQLite::Database& db,
                                           const std::string& where,
                                           const std::vector<std::string>& args,
                                           std::int64_t after_id, int limit) {
  SQLite::Statement q(
      db, absl::StrCat("SELECT ", kSightingColumns,
                       " FROM sightings s JOIN refs r ON r.id = s.image_id "
                       "WHERE s.id > ?",
                       where, " ORDER BY s.id LIMIT ?"));
  int arg = 1;
  q.bind(arg++, static_cast<int64_t>(after_id));
  for (const std::string& a : args) q.bind(arg++, a);
  q.bind(arg++, limit);
  std::vector<Sighting> out;
  while (q.executeStep()) out.push_back(ReadSighting(q));
  q.reset();
  for (Sighting& s : out) {
    LoadMatchesLocked(db, s);
    LoadContactsLocked(db, s);
  }
  return out;
}

std::vector<Link> AllLinksLocked(SQLite::Database& db, double min_score) {
  SQLite::Statement q(db, absl::StrCat("SELECT ", kLinkColumns,
                                       " FROM links WHERE score >= ? AND "
                                       "review <> 'rejected' ORDER BY id"));
  q.bind(1, min_score);
  std::vector<Link> out;
  while (q.executeStep()) out.push_back(ReadLink(q));
  return out;
}

// Union-find over sighting ids.
struct Components {
  std::map<std::int64_t, std::int64_t> parent;
  std::int64_t Find(std::int64_t x) {
    auto it = parent.try_emplace(x, x).first;
    if (it->second == x) return x;
    std::int64_t root = Find(it->second);
    parent[x] = root;
    return root;
  }
  void Join(std::int64_t a, std::int64_t b) {
    a = Find(a);
    b = Find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);  // root: oldest
  }
};

std::vector<Cluster> ClustersLocked(SQLite::Database& db, double min_score) {
  std::vector<Link> links = AllLinksLocked(db, min_score);
  Components c;
  for (const Link& l : links) c.Join(l.newer_id, l.older_id);
  std::map<std::int64_t, Cluster> by_root;
  for (const auto& [id, unused] : c.parent) {
    Cluster& cl = by_root[c.Find(id)];
    cl.id = c.Find(id);
    cl.sighting_ids.push_back(id);
  }
  for (const Link& l : links) by_root[c.Find(l.newer_id)].links.push_back(l);
  SQLite::Statement seller(
      db, "SELECT platform, seller_id FROM sightings WHERE id = ?");
  std::vector<Cluster> out;
  for (auto& [root, cl] : by_root) {
    std::sort(cl.sighting_ids.begin(), cl.sighting_ids.end());
    std::sort(cl.links.begin(), cl.links.end(), Stronger);
    std::set<Seller> sellers;
    for (std::int64_t id : cl.sighting_ids) {
      seller.bind(1, static_cast<int64_t>(id));
      if (seller.executeStep()) {
        sellers.insert(
            {seller.getColumn(0).getString(), seller.getColumn(1).getString()});
      }
      seller.reset();
    }
    cl.sellers.assign(sellers.begin(), sellers.end());
    out.push_back(std::move(cl));
  }
  return out;
}

}  // namespace

const char* LinkKindName(LinkKind k) {
  return k == LinkKind::kContact ? "contact" : "match";
}

const char* ReviewName(Review r) {
  switch (r) {
    case Review::kConfirmed:
      return "confirmed";
    case Review::kRejected:
      return "rejected";
    case Review::kNone:
      break;
  }
  return "";
}

absl::Status ValidateAdContext(const AdContext& ad) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"platform", &ad.platform},   {"ad_id", &ad.ad_id},
      {"seller_id", &ad.seller_id}, {"listing_time", &ad.listing_time},
      {"title", &ad.title},         {"url", &ad.url}};
  for (const auto& [name, value] : fields) {
    if (value->size() > kMostFieldBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ad.", name, " is longer than ", kMostFieldBytes, " bytes"));
    }
    if (!IsPlainText(*value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "ad.", name, " is not UTF-8 text without control characters"));
    }
  }
  if (ad.platform.empty()) {
    return absl::InvalidArgumentError("ad.platform is required with an ad");
  }
  if (ad.ad_id.empty()) {
    return absl::InvalidArgumentError("ad.ad_id is required with an ad");
  }
  if (!ad.listing_time.empty() && !IsUtcTime(ad.listing_time)) {
    return absl::InvalidArgumentError(
        "ad.listing_time must be UTC, YYYY-MM-DDTHH:MM:SSZ");
  }
  return absl::OkStatus();
}

SightingLog::SightingLog(ReferenceIndex& index, std::shared_ptr<Database> db)
    : index_(index), db_(std::move(db)) {}
SightingLog::~SightingLog() = default;

absl::StatusOr<std::unique_ptr<SightingLog>> SightingLog::Open(
    ReferenceIndex& index) {
  std::unique_ptr<SightingLog> log(new SightingLog(index, index.database()));
  std::lock_guard lock(log->write_mu_);
  SPOOR_RETURN_IF_ERROR(log->RemoveOrphanImages(0).status());
  return log;
}

absl::StatusOr<DeleteResult> SightingLog::RemoveOrphanImages(
    std::int64_t deleted) {
  DeleteResult result;
  result.sightings = deleted;
  std::vector<std::int64_t> orphans;
  {
    std::lock_guard lock(db_->mu);
    try {
      SQLite::Statement q(
          *db_->sql,
          "SELECT id FROM refs WHERE bank = ? AND NOT EXISTS (SELECT 1 FROM "
          "sightings s WHERE s.image_id = refs.id) ORDER BY id");
      q.bind(1, kSightingsBank);
      while (q.executeStep()) orphans.push_back(q.getColumn(0).getInt64());
    } catch (const std::exception& e) {
      return FromSqlite(e, "find orphan images");
    }
  }
  for (std::int64_t id : orphans) {
    absl::Status s = index_.Remove(id);
    if (!s.ok() && !absl::IsNotFound(s)) return s;
    ++result.images;
  }
  return result;
}

namespace {

// Keeps the contact details read in sighting `id`'s image, and links it to
// earlier sightings (of other ads) showing one of them, the latest of each
// seller, at most 100 sellers: a new contact link, or the contact noted on
// the match link the pair has already.
void RecordContactsLocked(SQLite::Database& db, std::int64_t id,
                          const AdContext& ad,
                          const std::vector<TextWord>& words) {
  SQLite::Statement keep(db,
                         "INSERT INTO sighting_contacts (sighting_id, kind, "
                         "value, text, x, y, w, h) VALUES (?,?,?,?,?,?,?,?) "
                         "ON CONFLICT DO NOTHING");
  // Of each seller's earlier sightings showing it, the latest: a number on
  // a thousand ads links the new one to every seller behind them without a
  // thousand links.
  SQLite::Statement earlier(
      db,
      "SELECT sighting_id, x, y, w, h FROM sighting_contacts WHERE kind = ?1 "
      "AND value = ?2 AND sighting_id IN (SELECT MAX(c.sighting_id) FROM "
      "sighting_contacts c JOIN sightings s ON s.id = c.sighting_id WHERE "
      "c.kind = ?1 AND c.value = ?2 AND c.sighting_id <> ?3 AND NOT "
      "(s.platform = ?4 AND s.ad_id = ?5) GROUP BY s.platform, s.seller_id "
      "ORDER BY 1 DESC LIMIT 100)");
  SQLite::Statement note(db,
                         "UPDATE links SET contact = ? WHERE newer_id = ? AND "
                         "older_id = ? AND contact = ''");
  SQLite::Statement link(
      db,
      "INSERT INTO links (newer_id, older_id, score, verdict, inliers, "
      "newer_x, newer_y, newer_w, newer_h, older_x, older_y, older_w, "
      "older_h, kind, contact) VALUES (?,?,?,?,0,?,?,?,?,?,?,?,?,?,?) ON "
      "CONFLICT DO NOTHING");
  for (const Contact& c : FindContacts(words)) {
    keep.bind(1, static_cast<int64_t>(id));
    keep.bind(2, ContactKindName(c.kind));
    keep.bind(3, c.value);
    keep.bind(4, c.text);
    BindBox(keep, 5, c.box);
    keep.exec();
    keep.reset();
    earlier.bind(1, ContactKindName(c.kind));
    earlier.bind(2, c.value);
    earlier.bind(3, static_cast<int64_t>(id));
    earlier.bind(4, ad.platform);
    earlier.bind(5, ad.ad_id);
    std::vector<std::pair<std::int64_t, Box>> olders;
    while (earlier.executeStep())
      olders.push_back({earlier.getColumn(0).getInt64(), ReadBox(earlier, 1)});
    earlier.reset();
    const std::string key = ContactKey(c);
    for (const auto& [older, older_box] : olders) {
      note.bind(1, key);
      note.bind(2, static_cast<int64_t>(id));
      note.bind(3, static_cast<int64_t>(older));
      note.exec();
      note.reset();
      link.bind(1, static_cast<int64_t>(id));
      link.bind(2, static_cast<int64_t>(older));
      link.bind(3, kContactLinkScore);
      link.bind(4, VerdictName(Verdict::kNoMatch));
      BindBox(link, 5, c.box);
      BindBox(link, 9, older_box);
      link.bind(13, LinkKindName(LinkKind::kContact));
      link.bind(14, key);
      link.exec();
      link.reset();
    }
  }
}

}  // namespace

absl::StatusOr<Recorded> SightingLog::Record(const AdContext& ad,
                                             const std::string& sha256,
                                             std::int64_t bytes,
                                             const MatchResult& result,
                                             const std::string& seen_at) {
  SPOOR_RETURN_IF_ERROR(ValidateAdContext(ad));
  std::lock_guard write(write_mu_);
  PreparedReference image;
  image.reference.bank = kSightingsBank;
  image.reference.source = absl::StrCat("ad:", ad.platform, "/", ad.ad_id);
  image.reference.sha256 = sha256;
  image.reference.bytes = bytes;
  image.reference.width = result.width;
  image.reference.height = result.height;
  image.reference.format = result.format;
  image.hash = result.query_hash;
  image.features = result.query_features;
  SPOOR_ASSIGN_OR_RETURN(AddResult added, index_.Insert(std::move(image)));

  // An ad whose image is benign content itself (a stock photo's very bytes)
  // links nobody.
  auto stored_image = index_.Get(added.id);
  const bool benign_image =
      stored_image.ok() && IsBenignBank(stored_image->bank);

  Recorded out;
  std::lock_guard lock(db_->mu);
  SQLite::Database& db = *db_->sql;
  try {
    SQLite::Transaction tx(db);
    SQLite::Statement find(db,
                           "SELECT id FROM sightings WHERE platform = ? AND "
                           "ad_id = ? AND image_id = ?");
    find.bind(1, ad.platform);
    find.bind(2, ad.ad_id);
    find.bind(3, static_cast<int64_t>(added.id));
    std::int64_t id = 0;
    if (find.executeStep()) {
      id = find.getColumn(0).getInt64();
    } else {
      out.created = true;
      SQLite::Statement ins(
          db,
          "INSERT INTO sightings (image_id, platform, ad_id, seller_id, "
          "listing_time, title, url, seen_at) VALUES (?,?,?,?,?,?,?,?)");
      ins.bind(1, static_cast<int64_t>(added.id));
      ins.bind(2, ad.platform);
      ins.bind(3, ad.ad_id);
      ins.bind(4, ad.seller_id);
      ins.bind(5, ad.listing_time);
      ins.bind(6, ad.title);
      ins.bind(7, ad.url);
      ins.bind(8, seen_at);
      ins.exec();
      id = db.getLastInsertRowid();
      if (!result.thumbnail.empty()) {
        SQLite::Statement thumb(db,
                                "INSERT INTO thumbnails (image_id, jpeg) "
                                "VALUES (?, ?) ON CONFLICT DO NOTHING");
        thumb.bind(1, static_cast<int64_t>(added.id));
        thumb.bind(2, result.thumbnail.data(),
                   static_cast<int>(result.thumbnail.size()));
        thumb.exec();
      }

      // The earlier sightings of each matched image, other ads only; the
      // same bytes shown by another ad are an exact match of the whole.
      std::vector<Match> matches;
      std::vector<BenignRegion> benign;
      bool found_itself = benign_image;
      for (const Match& m : result.matches) {
        if (m.verdict == Verdict::kNoMatch) continue;
        if (IsBenignBank(m.reference.bank)) {
          benign.push_back({m.query_box, m.query_inliers});
          continue;
        }
        if (benign_image) continue;
        matches.push_back(m);
        found_itself |= m.reference.id == added.id;
      }
      if (!found_itself) {
        Match same;  // only ever a sighting's image: no reference match
        same.reference.id = added.id;
        same.reference.bank = kSightingsBank;
        same.score = 1;
        same.verdict = Verdict::kExact;
        same.query_box = same.ref_box = {0, 0, result.width, result.height};
        matches.push_back(same);
      }

      SQLite::Statement earlier(
          db,
          "SELECT id FROM sightings WHERE image_id = ? AND id <> ? AND NOT "
          "(platform = ? AND ad_id = ?)");
      SQLite::Statement link(
          db,
          "INSERT INTO links (newer_id, older_id, score, verdict, inliers, "
          "newer_x, newer_y, newer_w, newer_h, older_x, older_y, older_w, "
          "older_h) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
      SQLite::Statement match(
          db,
          "INSERT INTO sighting_matches (sighting_id, ref_id, score, verdict, "
          "inliers, sighting_x, sighting_y, sighting_w, sighting_h, ref_x, "
          "ref_y, ref_w, ref_h) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) "
          "ON CONFLICT DO NOTHING");
      for (const Match& m : matches) {
        // What is left of the match outside benign content: too little, and
        // it links nothing (it still counts as a match with a reference).
        bool rests_on_item =
            RestsOnItem(m, benign, result.width, result.height);
        if (m.reference.bank != kSightingsBank)
          InsertPair(match, id, m.reference.id, m, m.query_box, m.ref_box);
        if (!rests_on_item) continue;
        earlier.bind(1, static_cast<int64_t>(m.reference.id));
        earlier.bind(2, static_cast<int64_t>(id));
        earlier.bind(3, ad.platform);
        earlier.bind(4, ad.ad_id);
        std::vector<std::int64_t> olders;
        while (earlier.executeStep())
          olders.push_back(earlier.getColumn(0).getInt64());
        earlier.reset();
        for (std::int64_t older : olders)
          InsertPair(link, id, older, m, m.query_box, m.ref_box);
      }
      if (!benign_image) RecordContactsLocked(db, id, ad, result.text);
    }
    find.reset();
    tx.commit();

    out.sighting = *GetLocked(db, id);
    SQLite::Statement links(db, absl::StrCat("SELECT ", kLinkColumns,
                                             " FROM links WHERE newer_id = ? "
                                             "ORDER BY score DESC, id"));
    links.bind(1, static_cast<int64_t>(id));
    std::vector<Link> found;
    while (links.executeStep()) found.push_back(ReadLink(links));
    for (Link& l : found) {
      std::optional<Sighting> older = GetLocked(db, l.older_id);
      if (older) out.earlier.push_back({std::move(l), std::move(*older)});
    }
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "record");
  }
}

absl::StatusOr<std::vector<Sighting>> SightingLog::LinkReference(
    std::int64_t reference_id, const MatchResult& result) {
  std::lock_guard write(write_mu_);
  std::lock_guard lock(db_->mu);
  SQLite::Database& db = *db_->sql;
  try {
    SQLite::Transaction tx(db);
    SQLite::Statement shown(db, "SELECT id FROM sightings WHERE image_id = ?");
    SQLite::Statement match(
        db,
        "INSERT INTO sighting_matches (sighting_id, ref_id, score, verdict, "
        "inliers, sighting_x, sighting_y, sighting_w, sighting_h, ref_x, "
        "ref_y, ref_w, ref_h, retroactive) VALUES "
        "(?,?,?,?,?,?,?,?,?,?,?,?,?,1) "
        "ON CONFLICT DO NOTHING");
    std::vector<std::int64_t> ids;
    for (const Match& m : result.matches) {
      // The reference's own image (a sighting's, promoted) included: the
      // ads that showed those very bytes matched it exactly.
      if (m.verdict == Verdict::kNoMatch) continue;
      shown.bind(1, static_cast<int64_t>(m.reference.id));
      std::vector<std::int64_t> sightings;
      while (shown.executeStep())
        sightings.push_back(shown.getColumn(0).getInt64());
      shown.reset();
      for (std::int64_t s : sightings) {
        // The match was the reference (query) onto the sighting's image:
        // swap the boxes into the sighting's point of view.
        if (InsertPair(match, s, reference_id, m, m.ref_box, m.query_box) > 0)
          ids.push_back(s);
      }
    }
    tx.commit();
    std::vector<Sighting> out;
    for (std::int64_t id : ids)
      if (auto s = GetLocked(db, id)) out.push_back(std::move(*s));
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "link reference");
  }
}

absl::StatusOr<Sighting> SightingLog::Get(std::int64_t id) const {
  std::lock_guard lock(db_->mu);
  try {
    if (auto s = GetLocked(*db_->sql, id)) return std::move(*s);
    return absl::NotFoundError(absl::StrCat("no sighting with id ", id));
  } catch (const std::exception& e) {
    return FromSqlite(e, "get");
  }
}

absl::StatusOr<std::vector<std::uint8_t>> SightingLog::Thumbnail(
    std::int64_t sighting_id) const {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql,
                        "SELECT t.jpeg FROM sightings s JOIN thumbnails t ON "
                        "t.image_id = s.image_id WHERE s.id = ?");
    q.bind(1, static_cast<int64_t>(sighting_id));
    if (!q.executeStep()) {
      return absl::NotFoundError(absl::StrCat(
          "no thumbnail kept of sighting ", sighting_id,
          " (its platform's policy keeps no pixels, or it does not exist)"));
    }
    const auto* data =
        static_cast<const std::uint8_t*>(q.getColumn(0).getBlob());
    return std::vector<std::uint8_t>(data, data + q.getColumn(0).getBytes());
  } catch (const std::exception& e) {
    return FromSqlite(e, "thumbnail");
  }
}

absl::StatusOr<std::vector<Sighting>> SightingLog::List(const SightingFilter& f,
                                                        std::int64_t after_id,
                                                        int limit) const {
  SPOOR_RETURN_IF_ERROR(ValidateLabelFilter(f.label));
  if (f.label.field == "bank") {
    return absl::InvalidArgumentError("filter sightings by bank with 'bank'");
  }
  std::string where;
  std::vector<std::string> args;
  auto equal = [&](const char* column, const std::string& value) {
    if (value.empty()) return;
    absl::StrAppend(&where, " AND ", column, " = ?");
    args.push_back(value);
  };
  equal("s.platform", f.platform);
  equal("s.seller_id", f.seller_id);
  equal("s.ad_id", f.ad_id);
  constexpr const char* kWhen =
      "(CASE WHEN s.listing_time = '' THEN s.seen_at ELSE s.listing_time END)";
  if (!f.since.empty()) {
    absl::StrAppend(&where, " AND ", kWhen, " >= ?");
    args.push_back(f.since);
  }
  if (!f.until.empty()) {
    absl::StrAppend(&where, " AND ", kWhen, " < ?");
    args.push_back(f.until);
  }
  if (!f.bank.empty() || !f.label.field.empty()) {
    absl::StrAppend(&where,
                    " AND EXISTS (SELECT 1 FROM sighting_matches m JOIN refs "
                    "x ON x.id = m.ref_id WHERE m.sighting_id = s.id");
    if (!f.bank.empty()) {
      absl::StrAppend(&where, " AND x.bank = ?");
      args.push_back(f.bank);
    }
    if (!f.label.field.empty()) {
      // A fixed column name from the validated label; the value is bound.
      absl::StrAppend(
          &where, " AND x.",
          f.label.field == "source" ? "label_source" : f.label.field, " = ?");
      args.push_back(f.label.value);
    }
    absl::StrAppend(&where, ")");
  }
  std::lock_guard lock(db_->mu);
  try {
    return QuerySightingsLocked(*db_->sql, where, args, after_id, limit);
  } catch (const std::exception& e) {
    return FromSqlite(e, "list");
  }
}

absl::StatusOr<std::vector<Sighting>> SightingLog::ForReference(
    std::int64_t reference_id) const {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql,
                        "SELECT id FROM sightings WHERE image_id = ? UNION "
                        "SELECT sighting_id FROM sighting_matches WHERE ref_id "
                        "= ? ORDER BY 1");
    q.bind(1, static_cast<int64_t>(reference_id));
    q.bind(2, static_cast<int64_t>(reference_id));
    std::vector<std::int64_t> ids;
    while (q.executeStep()) ids.push_back(q.getColumn(0).getInt64());
    q.reset();
    std::vector<Sighting> out;
    for (std::int64_t id : ids)
      if (auto s = GetLocked(*db_->sql, id)) out.push_back(std::move(*s));
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "sightings of a reference");
  }
}

absl::StatusOr<std::vector<Link>> SightingLog::LinksOf(
    std::int64_t sighting_id) const {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(
        *db_->sql,
        absl::StrCat("SELECT ", kLinkColumns,
                     " FROM links WHERE newer_id = ? OR older_id = ? "
                     "ORDER BY score DESC, id"));
    q.bind(1, static_cast<int64_t>(sighting_id));
    q.bind(2, static_cast<int64_t>(sighting_id));
    std::vector<Link> out;
    while (q.executeStep()) out.push_back(ReadLink(q));
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "links");
  }
}

absl::StatusOr<Link> SightingLog::GetLink(std::int64_t id) const {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql, absl::StrCat("SELECT ", kLinkColumns,
                                                " FROM links WHERE id = ?"));
    q.bind(1, static_cast<int64_t>(id));
    if (!q.executeStep())
      return absl::NotFoundError(absl::StrCat("no link with id ", id));
    return ReadLink(q);
  } catch (const std::exception& e) {
    return FromSqlite(e, "get link");
  }
}

absl::StatusOr<std::vector<SellerLink>> SightingLog::SellerLinks(
    const Seller& seller, double min_score) const {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(
        *db_->sql,
        absl::StrCat(
            "SELECT o.platform, o.seller_id, ", kLinkColumnsOfL,
            " "
            "FROM links l "
            "JOIN sightings a ON a.id IN (l.newer_id, l.older_id) "
            "JOIN sightings o ON o.id IN (l.newer_id, l.older_id) AND o.id <> "
            "a.id "
            "WHERE a.platform = ? AND a.seller_id = ? AND l.score >= ? AND "
            "l.review <> 'rejected' AND NOT (o.platform = a.platform AND "
            "o.seller_id = a.seller_id)"));
    q.bind(1, seller.platform);
    q.bind(2, seller.seller_id);
    q.bind(3, min_score);
    std::map<Seller, SellerLink> by_seller;
    while (q.executeStep()) {
      Seller other{q.getColumn(0).getString(), q.getColumn(1).getString()};
      SellerLink& sl = by_seller[other];
      sl.seller = other;
      Link l = ReadLink(q, 2);
      sl.score = std::max(sl.score, l.score);
      sl.links.push_back(std::move(l));
    }
    std::vector<SellerLink> out;
    for (auto& [s, sl] : by_seller) {
      std::sort(sl.links.begin(), sl.links.end(), Stronger);
      out.push_back(std::move(sl));
    }
    std::sort(
        out.begin(), out.end(), [](const SellerLink& a, const SellerLink& b) {
          return a.score != b.score ? a.score > b.score : a.seller < b.seller;
        });
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "seller links");
  }
}

absl::StatusOr<std::vector<Cluster>> SightingLog::Clusters(
    double min_score) const {
  std::lock_guard lock(db_->mu);
  try {
    return ClustersLocked(*db_->sql, min_score);
  } catch (const std::exception& e) {
    return FromSqlite(e, "clusters");
  }
}

absl::StatusOr<Cluster> SightingLog::ClusterOf(std::int64_t id,
                                               double min_score) const {
  SPOOR_ASSIGN_OR_RETURN(std::vector<Cluster> all, Clusters(min_score));
  for (Cluster& c : all) {
    if (std::binary_search(c.sighting_ids.begin(), c.sighting_ids.end(), id))
      return std::move(c);
  }
  return absl::NotFoundError(
      absl::StrCat("sighting ", id, " is in no cluster"));
}

absl::StatusOr<Link> SightingLog::ReviewLink(std::int64_t link_id,
                                             Review review,
                                             const std::string& note,
                                             const std::string& reviewer) {
  if (review == Review::kNone) {
    return absl::InvalidArgumentError("a review confirms or rejects a link");
  }
  if (note.size() > kMostFieldBytes || !IsPlainText(note)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "note must be UTF-8 text of at most ", kMostFieldBytes, " bytes"));
  }
  {
    std::lock_guard write(write_mu_);
    std::lock_guard lock(db_->mu);
    try {
      SQLite::Statement q(*db_->sql,
                          "UPDATE links SET review = ?, review_note = ?, "
                          "reviewer = ? WHERE id = ?");
      q.bind(1, ReviewName(review));
      q.bind(2, note);
      q.bind(3, reviewer);
      q.bind(4, static_cast<int64_t>(link_id));
      if (q.exec() == 0)
        return absl::NotFoundError(absl::StrCat("no link with id ", link_id));
    } catch (const std::exception& e) {
      return FromSqlite(e, "review");
    }
  }
  return GetLink(link_id);
}

absl::StatusOr<DeleteResult> SightingLog::Delete(const SightingSelector& sel) {
  if (sel.platform.empty()) {
    return absl::InvalidArgumentError("deleting sightings needs a platform");
  }
  int given =
      !sel.ad_id.empty() + !sel.seller_id.empty() + !sel.seen_before.empty();
  if (given != 1) {
    return absl::InvalidArgumentError(
        "deleting sightings needs exactly one of ad_id and seller_id");
  }
  std::lock_guard write(write_mu_);
  std::int64_t deleted = 0;
  {
    std::lock_guard lock(db_->mu);
    try {
      const char* column = !sel.ad_id.empty()       ? "ad_id = ?"
                           : !sel.seller_id.empty() ? "seller_id = ?"
                                                    : "seen_at < ?";
      const std::string& value = !sel.ad_id.empty()       ? sel.ad_id
                                 : !sel.seller_id.empty() ? sel.seller_id
                                                          : sel.seen_before;
      // Matches and links go with the sightings (ON DELETE CASCADE).
      SQLite::Statement q(*db_->sql, absl::StrCat("DELETE FROM sightings WHERE "
                                                  "platform = ? AND ",
                                                  column));
      q.bind(1, sel.platform);
      q.bind(2, value);
      deleted = q.exec();
    } catch (const std::exception& e) {
      return FromSqlite(e, "delete");
    }
  }
  // Then the images no sighting shows: a crash before this is finished at
  // the next Open. (Nothing deleted, nothing to look for: retention runs
  // this at every save tick.)
  if (deleted == 0) return DeleteResult{};
  return RemoveOrphanImages(deleted);
}

absl::StatusOr<SightingStats> SightingLog::Stats() const {
  std::lock_guard lock(db_->mu);
  SQLite::Database& db = *db_->sql;
  try {
    SightingStats s;
    s.sightings = db.execAndGet("SELECT COUNT(*) FROM sightings").getInt64();
    s.links = db.execAndGet("SELECT COUNT(*) FROM links").getInt64();
    s.sellers = db.execAndGet(
                      "SELECT COUNT(*) FROM (SELECT DISTINCT platform, "
                      "seller_id FROM sightings WHERE seller_id <> '') t")
                    .getInt64();
    // A reviewed link counts for each bank a reference of its two sightings
    // is in, or for "sightings" when neither matched a reference.
    SQLite::Statement q(
        db,
        "SELECT COALESCE(b.bank, 'sightings'), l.review, COUNT(DISTINCT l.id) "
        "FROM links l LEFT JOIN (SELECT m.sighting_id, r.bank FROM "
        "sighting_matches m JOIN refs r ON r.id = m.ref_id) b ON "
        "b.sighting_id IN (l.newer_id, l.older_id) WHERE l.review <> '' "
        "GROUP BY 1, 2 ORDER BY 1");
    std::map<std::string, SightingStats::BankPrecision> banks;
    while (q.executeStep()) {
      std::string bank = q.getColumn(0).getString();
      auto& p = banks[bank];
      p.bank = bank;
      (q.getColumn(1).getString() == "confirmed" ? p.confirmed : p.rejected) +=
          q.getColumn(2).getInt64();
    }
    for (auto& [name, p] : banks) s.review_precision.push_back(p);
    return s;
  } catch (const std::exception& e) {
    return FromSqlite(e, "stats");
  }
}

absl::StatusOr<std::vector<std::string>> SightingLog::Platforms() const {
  std::lock_guard lock(db_->mu);
  try {
    SQLite::Statement q(*db_->sql,
                        "SELECT DISTINCT platform FROM sightings ORDER BY 1");
    std::vector<std::string> out;
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  } catch (const std::exception& e) {
    return FromSqlite(e, "platforms");
  }
}

}  // namespace spoor
