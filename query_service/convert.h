// Conversions between the core's types and spoor.v1 messages, and the one
// mapping of core statuses to gRPC statuses.
#ifndef SPOOR_QUERY_SERVICE_CONVERT_H_
#define SPOOR_QUERY_SERVICE_CONVERT_H_

#include <grpcpp/support/status.h>

#include <cstdint>
#include <ctime>
#include <string>

#include "absl/status/statusor.h"
#include "spoor/matcher.h"
#include "spoor/reference.h"
#include "spoor/sightings.h"
#include "spoor/v1/spoor.pb.h"

namespace spoor::service {

// absl and gRPC share code numbers. Internal, Unknown and DataLoss become
// INTERNAL with a short message naming the request id; the details are for
// the log, not the client.
grpc::Status ToGrpcStatus(const absl::Status& status,
                          const std::string& request_id);

std::string ReferenceName(std::int64_t id);  // "references/42"
std::string SightingName(std::int64_t id);   // "sightings/42"
std::string LinkName(std::int64_t id);       // "links/42"
std::string ClusterName(std::int64_t id);    // "clusters/42"
// InvalidArgument unless `name` is "<collection>/<positive id>".
absl::StatusOr<std::int64_t> ParseName(const std::string& name,
                                       const std::string& collection);
absl::StatusOr<std::int64_t> ParseReferenceName(const std::string& name);
// "YYYY-MM-DDTHH:MM:SSZ", as the database keeps times.
std::string UtcText(std::time_t t);
// UtcText, or empty for an unset Timestamp.
std::string ToTimestampText(const google::protobuf::Timestamp& t);

Labels FromProto(const v1::Labels& labels);
void ToProto(const Labels& labels, v1::Labels* out);
void ToProto(const Reference& reference, v1::Reference* out);
void ToProto(const Match& match, bool include_evidence, v1::Match* out);
void ToProto(const MatchResult& result, v1::MatchResponse* out);

// InvalidArgument naming the field (ValidateAdContext).
absl::StatusOr<AdContext> FromProto(const v1::AdContext& ad);
void ToProto(const AdContext& ad, v1::AdContext* out);
void ToProto(const Sighting& sighting, v1::Sighting* out);
void ToProto(const Link& link, v1::Link* out);
void ToProto(const Cluster& cluster, v1::Cluster* out);

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_CONVERT_H_
