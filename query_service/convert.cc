#include "query_service/convert.h"

#include <google/protobuf/util/time_util.h>

#include <charconv>
#include <ctime>

#include "absl/strings/str_cat.h"

namespace spoor::service {

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

absl::StatusOr<std::int64_t> ParseReferenceName(const std::string& name) {
  static const std::string kPrefix = "references/";
  std::int64_t id = 0;
  if (name.rfind(kPrefix, 0) == 0) {
    const char* begin = name.data() + kPrefix.size();
    const char* end = name.data() + name.size();
    auto [ptr, ec] = std::from_chars(begin, end, id);
    if (ec == std::errc() && ptr == end && begin != end && id > 0) return id;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "reference name '", name.substr(0, 100), "' is not 'references/<id>'"));
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
  google::protobuf::Timestamp t;
  if (google::protobuf::util::TimeUtil::FromString(r.added_at, &t)) {
    *out->mutable_create_time() = t;
  }
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
  t->set_features_ms(r.timings.features_ms);
  t->set_search_ms(r.timings.search_ms);
  t->set_verify_ms(r.timings.verify_ms);
  t->set_total_ms(r.timings.total_ms);
}

}  // namespace spoor::service
