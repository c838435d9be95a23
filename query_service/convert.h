// Conversions between the core's types and spoor.v1 messages, and the one
// mapping of core statuses to gRPC statuses.
#ifndef SPOOR_QUERY_SERVICE_CONVERT_H_
#define SPOOR_QUERY_SERVICE_CONVERT_H_

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "spoor/matcher.h"
#include "spoor/reference.h"
#include "spoor/v1/spoor.pb.h"

namespace spoor::service {

// absl and gRPC share code numbers. Internal, Unknown and DataLoss become
// INTERNAL with a short message naming the request id; the details are for
// the log, not the client.
grpc::Status ToGrpcStatus(const absl::Status& status,
                          const std::string& request_id);

std::string ReferenceName(std::int64_t id);  // "references/42"
// InvalidArgument unless `name` is "references/<positive id>".
absl::StatusOr<std::int64_t> ParseReferenceName(const std::string& name);

Labels FromProto(const v1::Labels& labels);
void ToProto(const Labels& labels, v1::Labels* out);
void ToProto(const Reference& reference, v1::Reference* out);
void ToProto(const Match& match, bool include_evidence, v1::Match* out);
void ToProto(const MatchResult& result, v1::MatchResponse* out);

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_CONVERT_H_
