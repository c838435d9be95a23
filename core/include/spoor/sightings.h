// Sightings: every ad image Spoor is shown with its ad's context, kept as
// evidence, and the links between ads that show the same item.
//
// A sighting is one ad (platform, ad id) showing one image. The image is
// stored like a reference, in the bank "sightings" (hash, compressed local
// features; never pixels), so the same FAISS tiers that find references find
// earlier sightings. Recording a sighting keeps the matches the Matcher
// found: with references (sighting matches) and with earlier sightings'
// images (links, newer -> older). Sellers are linked when their sightings
// are; clusters are the connected components of the links an investigator
// has not rejected.
//
// All of it lives in the index directory's database (same file, same
// transactions as the references), so a reference removed, a sighting
// deleted or a crash leaves nothing half-done.
//
// Thread safety: all methods may be called concurrently.
#ifndef SPOOR_SIGHTINGS_H_
#define SPOOR_SIGHTINGS_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spoor/matcher.h"
#include "spoor/reference.h"
#include "spoor/text.h"

namespace spoor {

class ReferenceIndex;
struct Database;

// Where an image was seen. platform and ad_id identify the ad.
struct AdContext {
  std::string platform;
  std::string ad_id;
  std::string seller_id;
  std::string listing_time;  ///< UTC, "YYYY-MM-DDTHH:MM:SSZ", or empty
  std::string title;
  std::string url;
};

// InvalidArgument naming the field: platform and ad_id are required, every
// field is valid UTF-8 without control characters and at most 2000 bytes,
// listing_time is empty or "YYYY-MM-DDTHH:MM:SSZ".
absl::Status ValidateAdContext(const AdContext& ad);

// A sighting's verified match with a reference.
struct SightingMatch {
  Reference reference;
  double score = 0;
  Verdict verdict = Verdict::kNoMatch;
  int inliers = 0;
  Box sighting_box;          ///< where the reference appears in the ad image
  Box reference_box;         ///< which part of the reference appears
  bool retroactive = false;  ///< found when the reference was added later
};

struct Sighting {
  std::int64_t id = 0;
  std::int64_t image_id = 0;  ///< the refs row holding its image
  std::string sha256;
  int width = 0, height = 0;
  AdContext ad;
  std::string seen_at;                 ///< UTC, when Spoor was shown it
  std::vector<SightingMatch> matches;  ///< best first
  std::vector<Contact> contacts;       ///< read in its image
};

enum class Review { kNone, kConfirmed, kRejected };
const char* ReviewName(Review r);  ///< "", "confirmed", "rejected"

enum class LinkKind {
  kMatch,    ///< the two images verified as showing the same thing
  kContact,  ///< only the contact text is shared: a weaker link
};
const char* LinkKindName(LinkKind k);  ///< "match", "contact"

// The score of a contact link: above the default link threshold (0.5), so
// clusters and seller links include it, below nearly every verified match.
inline constexpr double kContactLinkScore = 0.55;

// Two sightings whose images verified as showing the same thing, or that
// show the same contact details.
struct Link {
  std::int64_t id = 0;
  std::int64_t newer_id = 0;  ///< the sighting recorded later
  std::int64_t older_id = 0;
  LinkKind kind = LinkKind::kMatch;
  double score = 0;
  Verdict verdict = Verdict::kNoMatch;  ///< kNoMatch for a contact link
  int inliers = 0;                      ///< 0 for a contact link
  // What both ads' images show, "phone:612345678" (see Contact), when they
  // share a contact; either kind.
  std::string contact;
  Box newer_box;  ///< the matched region (or contact text) in each image
  Box older_box;
  Review review = Review::kNone;  ///< rejected links link nobody
  std::string review_note;
  std::string reviewer;
  std::string created_at;
};

struct Seller {
  std::string platform;
  std::string seller_id;
  bool operator==(const Seller&) const = default;
  auto operator<=>(const Seller&) const = default;
};

// What Record did: the sighting, and its links to earlier sightings, each
// with the earlier sighting (another ad: never the same platform and ad id).
struct Recorded {
  Sighting sighting;
  bool created = false;  ///< false: this ad had shown this image already
  struct Earlier {
    Link link;
    Sighting sighting;
  };
  std::vector<Earlier> earlier;
};

// Which sightings to list; every field optional, all must hold.
struct SightingFilter {
  std::string platform;
  std::string seller_id;
  std::string ad_id;
  std::string bank;   ///< matched a reference in this bank
  LabelFilter label;  ///< matched a reference with this label
  std::string since;  ///< listing time (seen_at without one) >= since
  std::string until;  ///< ... < until
};

// Which sightings to delete: platform, and ad_id or seller_id or
// seen_before (retention), exactly one.
struct SightingSelector {
  std::string platform;
  std::string ad_id;
  std::string seller_id;
  std::string seen_before;
};

struct DeleteResult {
  std::int64_t sightings = 0;  ///< sightings deleted
  std::int64_t images = 0;     ///< images no sighting shows any more, deleted
};

// Sellers linked to one seller, with the links that link them.
struct SellerLink {
  Seller seller;
  double score = 0;         ///< the strongest link's
  std::vector<Link> links;  ///< strongest first
};

// A connected component of sightings over unrejected links of at least the
// minimum score. Its id is its oldest sighting's.
struct Cluster {
  std::int64_t id = 0;
  std::vector<std::int64_t> sighting_ids;  ///< ascending
  std::vector<Seller> sellers;             ///< sorted
  std::vector<Link> links;                 ///< strongest first
};

struct SightingStats {
  std::int64_t sightings = 0;
  std::int64_t links = 0;
  std::int64_t sellers = 0;
  // Reviewed links: confirmed / (confirmed + rejected), per bank of the
  // references the linked sightings matched; only banks with reviews.
  struct BankPrecision {
    std::string bank;
    std::int64_t confirmed = 0;
    std::int64_t rejected = 0;
  };
  std::vector<BankPrecision> review_precision;
};

class SightingLog {
 public:
  // Over an open index; deletes sighting images left without a sighting by
  // a crash mid-delete. The index must outlive the log.
  static absl::StatusOr<std::unique_ptr<SightingLog>> Open(
      ReferenceIndex& index);
  ~SightingLog();

  // Records that `ad` showed the image (SHA-256 `sha256`, `bytes` long) the
  // Matcher described in `result` (run with keep_query); keeps
  // result.thumbnail too when there is one (the platform's policy allows
  // pixels). Keeps the image in
  // the sightings bank, the matches with references, and a link to every
  // earlier sighting (of another ad) whose image `result` matched or that
  // shows the same bytes; and the contact details among result.text
  // (FindContacts) with a contact link to the latest earlier sighting of
  // each seller whose image showed one of them. Idempotent: the same ad and
  // image again returns the first sighting and its links, created false.
  absl::StatusOr<Recorded> Record(const AdContext& ad,
                                  const std::string& sha256, std::int64_t bytes,
                                  const MatchResult& result,
                                  const std::string& seen_at);

  // Retroactive matching: keeps `reference`'s matches with sighting images
  // (`result`: the reference's image matched with banks = {"sightings"}) as
  // sighting matches of every sighting showing them. Returns those
  // sightings, best match first.
  absl::StatusOr<std::vector<Sighting>> LinkReference(
      std::int64_t reference_id, const MatchResult& result);

  absl::StatusOr<Sighting> Get(std::int64_t id) const;  ///< NotFound
  // The JPEG thumbnail kept of a sighting's image; NotFound when its
  // platform's policy kept none.
  absl::StatusOr<std::vector<std::uint8_t>> Thumbnail(
      std::int64_t sighting_id) const;
  // Sightings with id > after_id, ascending, at most `limit`.
  absl::StatusOr<std::vector<Sighting>> List(const SightingFilter& filter,
                                             std::int64_t after_id,
                                             int limit) const;
  // Sightings whose image is the reference or that matched it, ascending.
  absl::StatusOr<std::vector<Sighting>> ForReference(
      std::int64_t reference_id) const;
  // Links touching one sighting, strongest first.
  absl::StatusOr<std::vector<Link>> LinksOf(std::int64_t sighting_id) const;
  absl::StatusOr<Link> GetLink(std::int64_t id) const;  ///< NotFound

  // Other sellers linked to `seller` by unrejected links of at least
  // `min_score`, strongest first.
  absl::StatusOr<std::vector<SellerLink>> SellerLinks(const Seller& seller,
                                                      double min_score) const;
  // Every cluster of two or more sightings, ascending by id.
  absl::StatusOr<std::vector<Cluster>> Clusters(double min_score) const;
  // The cluster holding sighting `id`; NotFound when it is in none.
  absl::StatusOr<Cluster> ClusterOf(std::int64_t id, double min_score) const;

  absl::StatusOr<Link> ReviewLink(std::int64_t link_id, Review review,
                                  const std::string& note,
                                  const std::string& reviewer);

  // Deletes the selected sightings with their matches and links, and every
  // image no sighting shows any more from the database and the FAISS tiers
  // (a reference's image stays: it is a reference). InvalidArgument for a
  // selector without platform or with other than one of the rest.
  absl::StatusOr<DeleteResult> Delete(const SightingSelector& selector);

  absl::StatusOr<SightingStats> Stats() const;
  // Every platform with sightings, sorted.
  absl::StatusOr<std::vector<std::string>> Platforms() const;

 private:
  SightingLog(ReferenceIndex& index, std::shared_ptr<Database> db);
  absl::StatusOr<DeleteResult> RemoveOrphanImages(std::int64_t deleted);

  ReferenceIndex& index_;
  std::shared_ptr<Database> db_;
  // Record, LinkReference and Delete one at a time: a delete never sees an
  // image inserted for a sighting not yet written.
  std::mutex write_mu_;
};

}  // namespace spoor

#endif  // SPOOR_SIGHTINGS_H_
