// The spoor.v1.Spoor gRPC service over one ReferenceIndex: validates each
// request, checks its API key and role, runs Match jobs on the bounded
// worker pool with the caller's deadline, calls the core, and maps the
// result to a gRPC status once (convert.h). Nothing thrown reaches a client.
//
// Thread safety: gRPC calls the handlers from many threads at once.
#ifndef SPOOR_QUERY_SERVICE_SERVICE_IMPL_H_
#define SPOOR_QUERY_SERVICE_SERVICE_IMPL_H_

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "query_service/api_keys.h"
#include "query_service/audit_log.h"
#include "query_service/metrics.h"
#include "query_service/rate_limiter.h"
#include "query_service/worker_pool.h"
#include "spoor/matcher.h"
#include "spoor/reference_index.h"
#include "spoor/sightings.h"
#include "spoor/v1/spoor.grpc.pb.h"

namespace spoor::service {

// What the handlers share. `index` is null when none could be loaded;
// `index_error` then says why.
struct ServiceState {
  std::unique_ptr<ReferenceIndex> index;
  std::string index_error;
  std::unique_ptr<Matcher> matcher;
  std::unique_ptr<SightingLog> sightings;  // null with the index
  bool record_sightings = true;
  bool read_sighting_text = true;
  std::vector<std::string> thumbnail_platforms;  // "*": all
  std::unique_ptr<WorkerPool> pool;
  RateLimiter limiter;              // per key, from the keys' rates
  std::unique_ptr<AuditLog> audit;  // curator and investigator calls
  // The keys now in force; null: no authentication. Replaced whole on
  // reload (SIGHUP), so a call sees one file's keys throughout.
  std::shared_ptr<const ApiKeys> Keys() const {
    std::lock_guard lock(keys_mu);
    return keys;
  }
  void SetKeys(std::shared_ptr<const ApiKeys> k) {
    std::lock_guard lock(keys_mu);
    keys = std::move(k);
  }
  Metrics metrics;
  std::shared_ptr<spdlog::logger> log;
  std::atomic<bool> dirty{false};  // references changed since the last Save
  int max_streams = 16;            // StreamMatch streams open at once
  std::atomic<int> open_streams{0};
  std::chrono::steady_clock::time_point started =
      std::chrono::steady_clock::now();

 private:
  mutable std::mutex keys_mu;
  std::shared_ptr<const ApiKeys> keys;
};

class SpoorService final : public v1::Spoor::Service {
 public:
  explicit SpoorService(ServiceState& state) : state_(state) {}

  grpc::Status Match(grpc::ServerContext* ctx, const v1::MatchRequest* request,
                     v1::MatchResponse* response) override;
  grpc::Status StreamMatch(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::StreamMatchResponse, v1::StreamMatchRequest>*
          stream) override;
  grpc::Status AddReference(grpc::ServerContext* ctx,
                            const v1::AddReferenceRequest* request,
                            v1::AddReferenceResponse* response) override;
  grpc::Status RemoveReference(grpc::ServerContext* ctx,
                               const v1::RemoveReferenceRequest* request,
                               v1::RemoveReferenceResponse* response) override;
  grpc::Status GetReference(grpc::ServerContext* ctx,
                            const v1::GetReferenceRequest* request,
                            v1::Reference* response) override;
  grpc::Status ListReferences(grpc::ServerContext* ctx,
                              const v1::ListReferencesRequest* request,
                              v1::ListReferencesResponse* response) override;
  grpc::Status GetIndexStats(grpc::ServerContext* ctx,
                             const v1::GetIndexStatsRequest* request,
                             v1::IndexStats* response) override;

  grpc::Status GetSighting(grpc::ServerContext* ctx,
                           const v1::GetSightingRequest* request,
                           v1::Sighting* response) override;
  grpc::Status ListSightings(grpc::ServerContext* ctx,
                             const v1::ListSightingsRequest* request,
                             v1::ListSightingsResponse* response) override;
  grpc::Status GetAdHistory(grpc::ServerContext* ctx,
                            const v1::GetAdHistoryRequest* request,
                            v1::AdHistory* response) override;
  grpc::Status GetSellerLinks(grpc::ServerContext* ctx,
                              const v1::GetSellerLinksRequest* request,
                              v1::GetSellerLinksResponse* response) override;
  grpc::Status ListClusters(grpc::ServerContext* ctx,
                            const v1::ListClustersRequest* request,
                            v1::ListClustersResponse* response) override;
  grpc::Status GetCluster(grpc::ServerContext* ctx,
                          const v1::GetClusterRequest* request,
                          v1::Cluster* response) override;
  grpc::Status GetReferenceSightings(
      grpc::ServerContext* ctx, const v1::GetReferenceSightingsRequest* request,
      v1::GetReferenceSightingsResponse* response) override;
  grpc::Status GetSightingThumbnail(
      grpc::ServerContext* ctx, const v1::GetSightingThumbnailRequest* request,
      v1::SightingThumbnail* response) override;
  grpc::Status ReviewLink(grpc::ServerContext* ctx,
                          const v1::ReviewLinkRequest* request,
                          v1::Link* response) override;
  grpc::Status DeleteSightings(grpc::ServerContext* ctx,
                               const v1::DeleteSightingsRequest* request,
                               v1::DeleteSightingsResponse* response) override;

 private:
  struct Call;
  template <typename Body>
  grpc::Status Handle(grpc::ServerContext* ctx, const char* rpc,
                      std::initializer_list<Role> roles, Body&& body);
  absl::Status RequireIndex() const;
  absl::Status RequireSightings() const;
  // Records the call in the audit log when its key is a curator or an
  // investigator.
  void Audit(const char* rpc, const Call& call, const grpc::Status& out);

  // A match is started (validated and queued on the pool) and later awaited,
  // so a stream can have several in flight. `wait_for_room` queues even when
  // the queue is full (streams, whose window bounds what they queue).
  template <typename T>
  struct PoolJob;
  // A match, and what the sightings made of it.
  struct MatchOutcome {
    MatchResult result;  // references only, at most the request's count
    std::int64_t sighting_id = 0;  // recorded for this ad image; 0: none
    std::vector<Recorded::Earlier> earlier;  // strongest first
  };
  using MatchJob = PoolJob<MatchOutcome>;
  struct Started {
    std::shared_ptr<MatchJob> job;
    bool include_evidence = false;
    std::int64_t image_bytes = 0;
  };
  absl::StatusOr<Started> StartMatch(const v1::MatchRequest& request,
                                     const Call& call, bool wait_for_room);
  // On a worker: match, record the sighting when `record`, gather the
  // earlier sightings.
  absl::StatusOr<MatchOutcome> RunMatch(const std::string& bytes,
                                        const MatchOptions& options,
                                        const std::optional<AdContext>& ad,
                                        bool record, bool search_sightings,
                                        int wanted);
  absl::Status AwaitMatch(grpc::ServerContext* ctx, const Started& started,
                          const Call& call, v1::MatchResponse* response);

  ServiceState& state_;
  std::atomic<std::uint64_t> next_request_{1};
};

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_SERVICE_IMPL_H_
