#include "query_service/convert.h"

#include <google/protobuf/util/time_util.h>

#include <charconv>
#include <ctime>

#include "absl/strings/str_cat.h"

namespace spoor::service {
namespace {

// An ISO 8601 UTC text from the database into a Timestamp; left unset when
// empty or unreadable.
void SetTime(const std::string& text, google::protobuf::Timestamp* out) {
  google::protobuf::Timestamp t;
  if (!text.empty() && google::protobuf::util::TimeUtil::FromString(text, &t))
    *out = t;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status,
                          const std::string& request_id) {
  if (status.ok()) return grpc::Status::OK;
  switch (status.code()) {
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kDataLoss:
      return grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat("internal error (request ", request_id,
                                       "); see the service log"));
    default:
      return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                          std::string(status.message()));
  }
}

std::string ReferenceName(std::int64_t id) {
  return absl::StrCat("references/", id);
}

absl::StatusOr<std::int64_t> ParseName(const std::string& name,
                                       const std::string& collection) {
  const std::string prefix = collection + "/";
  std::int64_t id = 0;
  if (name.rfind(prefix, 0) == 0) {
    const char* begin = name.data() + prefix.size();
    const char* end = name.data() + name.size();
    auto [ptr, ec] = std::from_chars(begin, end, id);
    if (ec == std::errc() && ptr == end && begin != end && id > 0) return id;
  }
  // "references" -> "reference name 'x' is not 'references/<id>'"
  return absl::InvalidArgumentError(
      absl::StrCat(collection.substr(0, collection.size() - 1), " name '",
                   name.substr(0, 100), "' is not '", prefix, "<id>'"));
}

absl::StatusOr<std::int64_t> ParseReferenceName(const std::string& name) {
  return ParseName(name, "references");
}

std::string UtcText(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string ToTimestampText(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return UtcText(static_cast<std::time_t>(t.seconds()));
}

Labels FromProto(const v1::Labels& l) {
  return Labels{l.species_scientific(),
                l.species_common(),
                l.item_type(),
                l.cites_appendix(),
                l.source(),
                l.case_ref(),
                l.licence()};
}

void ToProto(const Labels& l, v1::Labels* out) {
  out->set_species_scientific(l.species_scientific);
  out->set_species_common(l.species_common);
  out->set_item_type(l.item_type);
  out->set_cites_appendix(l.cites_appendix);
  out->set_source(l.source);
  out->set_case_ref(l.case_ref);
  out->set_licence(l.licence);
}

void ToProto(const Reference& r, v1::Reference* out) {
  out->set_name(ReferenceName(r.id));
  out->set_source(r.source);
  out->set_sha256(r.sha256);
  out->set_size_bytes(r.bytes);
  out->set_width(r.width);
  out->set_height(r.height);
  out->set_format(r.format);
  ToProto(r.labels, out->mutable_labels());
  SetTime(r.added_at, out->mutable_create_time());
  out->set_bank(r.bank);
}

namespace {

v1::Verdict ToProto(Verdict v) {
  switch (v) {
    case Verdict::kExact:
      return v1::EXACT;
    case Verdict::kModifiedCopy:
      return v1::MODIFIED_COPY;
    case Verdict::kSameItem:
      return v1::SAME_ITEM;
    case Verdict::kNoMatch:
      return v1::NO_MATCH;
  }
  return v1::VERDICT_UNSPECIFIED;
}

void ToProto(const Box& b, v1::Box* out) {
  out->set_x(b.x);
  out->set_y(b.y);
  out->set_width(b.width);
  out->set_height(b.height);
}

}  // namespace

void ToProto(const Match& m, bool include_evidence, v1::Match* out) {
  ToProto(m.reference, out->mutable_reference());
  out->set_score(m.score);
  out->set_verdict(ToProto(m.verdict));
  if (!include_evidence) return;
  v1::Evidence* e = out->mutable_evidence();
  e->set_inliers(m.inliers);
  e->set_hash_distance(m.hash_distance);
  ToProto(m.query_box, e->mutable_query_box());
  ToProto(m.ref_box, e->mutable_reference_box());
  v1::Transform* t = e->mutable_transform();
  t->set_mirrored(m.transform.mirrored);
  t->set_rotation_degrees(m.transform.rotation_degrees);
  t->set_scale(m.transform.scale);
  t->set_perspective(m.transform.perspective);
  for (double h : m.transform.homography) t->add_homography(h);
}

void ToProto(const MatchResult& r, v1::MatchResponse* out) {
  out->mutable_image()->set_width(r.width);
  out->mutable_image()->set_height(r.height);
  out->mutable_image()->set_format(r.format);
  v1::StageTimings* t = out->mutable_timings();
  t->set_decode_ms(r.timings.decode_ms);
  t->set_hash_ms(r.timings.hash_ms);
  t->set_text_ms(r.timings.text_ms);
  t->set_features_ms(r.timings.features_ms);
  t->set_search_ms(r.timings.search_ms);
  t->set_verify_ms(r.timings.verify_ms);
  t->set_total_ms(r.timings.total_ms);
}

}  // namespace spoor::service

namespace spoor::service {

std::string SightingName(std::int64_t id) {
  return absl::StrCat("sightings/", id);
}
std::string LinkName(std::int64_t id) { return absl::StrCat("links/", id); }
std::string ClusterName(std::int64_t id) {
  return absl::StrCat("clusters/", id);
}

absl::StatusOr<AdContext> FromProto(const v1::AdContext& ad) {
  AdContext out{ad.platform(),  ad.ad_id(),
                ad.seller_id(), ToTimestampText(ad.listing_time()),
                ad.title(),     ad.url()};
  if (auto s = ValidateAdContext(out); !s.ok()) return s;
  return out;
}

void ToProto(const AdContext& ad, v1::AdContext* out) {
  out->set_platform(ad.platform);
  out->set_ad_id(ad.ad_id);
  out->set_seller_id(ad.seller_id);
  SetTime(ad.listing_time, out->mutable_listing_time());
  out->set_title(ad.title);
  out->set_url(ad.url);
}

void ToProto(const Sighting& s, v1::Sighting* out) {
  out->set_name(SightingName(s.id));
  ToProto(s.ad, out->mutable_ad());
  out->set_sha256(s.sha256);
  out->set_width(s.width);
  out->set_height(s.height);
  out->set_image(ReferenceName(s.image_id));
  SetTime(s.seen_at, out->mutable_seen_time());
  for (const SightingMatch& m : s.matches) {
    v1::Match* pm = out->add_matches();
    ToProto(m.reference, pm->mutable_reference());
    pm->set_score(m.score);
    pm->set_verdict(ToProto(m.verdict));
    v1::Evidence* e = pm->mutable_evidence();
    e->set_inliers(m.inliers);
    e->set_hash_distance(-1);
    ToProto(m.sighting_box, e->mutable_query_box());
    ToProto(m.reference_box, e->mutable_reference_box());
  }
  for (const Contact& c : s.contacts) {
    v1::Contact* pc = out->add_contacts();
    pc->set_kind(c.kind == ContactKind::kEmail    ? v1::Contact::EMAIL
                 : c.kind == ContactKind::kHandle ? v1::Contact::HANDLE
                                                  : v1::Contact::PHONE);
    pc->set_value(c.value);
    pc->set_text(c.text);
    ToProto(c.box, pc->mutable_box());
  }
}

void ToProto(const Link& l, v1::Link* out) {
  out->set_name(LinkName(l.id));
  out->set_newer(SightingName(l.newer_id));
  out->set_older(SightingName(l.older_id));
  out->set_score(l.score);
  out->set_verdict(ToProto(l.verdict));
  v1::Evidence* e = out->mutable_evidence();
  e->set_inliers(l.inliers);
  e->set_hash_distance(-1);
  ToProto(l.newer_box, e->mutable_query_box());
  ToProto(l.older_box, e->mutable_reference_box());
  out->set_review(l.review == Review::kConfirmed ? v1::CONFIRMED
                  : l.review == Review::kRejected
                      ? v1::REJECTED
                      : v1::LINK_REVIEW_UNSPECIFIED);
  out->set_review_note(l.review_note);
  out->set_reviewer(l.reviewer);
  SetTime(l.created_at, out->mutable_create_time());
  out->set_kind(l.kind == LinkKind::kContact ? v1::Link::CONTACT
                                             : v1::Link::MATCH);
  out->set_contact(l.contact);
}

void ToProto(const Cluster& c, v1::Cluster* out) {
  out->set_name(ClusterName(c.id));
  for (std::int64_t id : c.sighting_ids) out->add_sightings(SightingName(id));
  for (const Seller& s : c.sellers) {
    v1::Seller* ps = out->add_sellers();
    ps->set_platform(s.platform);
    ps->set_seller_id(s.seller_id);
  }
  for (const Link& l : c.links) ToProto(l, out->add_links());
}

}  // namespace spoor::service
