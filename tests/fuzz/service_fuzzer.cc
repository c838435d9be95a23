// Fuzz target: serialized requests, as a hostile client would send them,
// through a real Spoor server (gRPC on a loopback port, a real index and
// database) and its handler code. The first byte picks the RPC; the rest is
// the request's bytes (for StreamMatch, a sequence of framed messages).
//
// Checks, beyond "no crash": a request that parses gets an answer whose
// status says what was wrong (never UNKNOWN, INTERNAL or DATA_LOSS, which
// would mean an escaped exception or a damaged store); bytes that do not
// parse are refused by gRPC. What a request adds is removed again (the
// reference, the sighting), so the index stays small over a long run.
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "query_service/server.h"
#include "spoor/v1/spoor.grpc.pb.h"

namespace {

namespace v1 = spoor::v1;
using spoor::fuzz::Fail;

struct Rpc {
  const char* method;  // "/spoor.v1.Spoor/Match"
  bool stream;
  // True when `bytes` parse as the RPC's request message.
  std::function<bool(const std::string& bytes)> parses;
};

template <typename T>
bool Parses(const std::string& bytes) {
  T message;
  return message.ParseFromString(bytes);
}

#define SPOOR_RPC(name, request) \
  Rpc { "/spoor.v1.Spoor/" #name, false, Parses<v1::request> }

const Rpc kRpcs[] = {
    SPOOR_RPC(Match, MatchRequest),
    {"/spoor.v1.Spoor/StreamMatch", true, Parses<v1::StreamMatchRequest>},
    SPOOR_RPC(AddReference, AddReferenceRequest),
    SPOOR_RPC(RemoveReference, RemoveReferenceRequest),
    SPOOR_RPC(GetReference, GetReferenceRequest),
    SPOOR_RPC(ListReferences, ListReferencesRequest),
    SPOOR_RPC(GetIndexStats, GetIndexStatsRequest),
    SPOOR_RPC(GetSighting, GetSightingRequest),
    SPOOR_RPC(ListSightings, ListSightingsRequest),
    SPOOR_RPC(GetAdHistory, GetAdHistoryRequest),
    SPOOR_RPC(GetSellerLinks, GetSellerLinksRequest),
    SPOOR_RPC(ListClusters, ListClustersRequest),
    SPOOR_RPC(GetCluster, GetClusterRequest),
    SPOOR_RPC(GetReferenceSightings, GetReferenceSightingsRequest),
    SPOOR_RPC(GetSightingThumbnail, GetSightingThumbnailRequest),
    SPOOR_RPC(ReviewLink, ReviewLinkRequest),
    SPOOR_RPC(DeleteSightings, DeleteSightingsRequest),
};
constexpr int kRpcCount = sizeof(kRpcs) / sizeof(kRpcs[0]);

struct Harness {
  std::unique_ptr<spoor::service::Server> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Spoor::Stub> stub;
};

Harness& TheServer() {
  static Harness* h = [] {
    // Hostile strings fill the log with protobuf's UTF-8 complaints when the
    // harness parses requests to classify them; the parse result is enough.
    google::protobuf::SetLogHandler(nullptr);
    auto* harness = new Harness;
    std::string dir = spoor::fuzz::MakeTempDir("service");
    spoor::fuzz::BuildTemplateIndex(dir + "/index");
    spoor::service::ServiceConfig config;
    config.index_dir = dir + "/index";
    config.listen = "127.0.0.1:0";
    config.metrics_listen = "";
    config.workers = 2;
    config.save_interval_seconds = 2;  // saves race the requests
    config.sighting_thumbnail_platforms = {"fuzz-market"};
    config.max_message_bytes = 4 << 20;
    auto log = std::make_shared<spdlog::logger>(
        "fuzz", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto server = spoor::service::Server::Start(config, log);
    if (!server.ok()) Fail("server: " + server.status().ToString());
    harness->server = std::move(*server);
    harness->channel = grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(harness->server->port()),
        grpc::InsecureChannelCredentials());
    harness->stub = v1::Spoor::NewStub(harness->channel);
    return harness;
  }();
  return *h;
}

grpc::ByteBuffer Buffer(const std::string& bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

std::string Bytes(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const auto& s : slices)
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

void Deadline(grpc::ClientContext& ctx) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
}

void CheckStatus(const grpc::Status& status, bool parsed, const char* method) {
  if (!parsed) return;  // gRPC itself refuses what does not parse
  switch (status.error_code()) {
    case grpc::StatusCode::UNKNOWN:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::DATA_LOSS:
    case grpc::StatusCode::UNIMPLEMENTED:
    case grpc::StatusCode::UNAVAILABLE:
      Fail(std::string(method) + " answered " +
           std::to_string(status.error_code()) + ": " + status.error_message());
    default:
      break;
  }
  if (!status.ok() && status.error_message().empty())
    Fail(std::string(method) + ": an error without a message");
}

// Removes what a successful request stored, so a long run stays small.
void CleanUp(const Rpc& rpc, const std::string& request,
             const std::string& response) {
  Harness& h = TheServer();
  std::string platform, ad_id;
  if (rpc.method == std::string("/spoor.v1.Spoor/AddReference")) {
    v1::AddReferenceResponse added;
    if (!added.ParseFromString(response) || !added.created()) return;
    v1::RemoveReferenceRequest remove;
    remove.set_name(added.reference().name());
    v1::RemoveReferenceResponse removed;
    grpc::ClientContext ctx;
    Deadline(ctx);
    (void)h.stub->RemoveReference(&ctx, remove, &removed);
    return;
  }
  if (rpc.method == std::string("/spoor.v1.Spoor/Match")) {
    v1::MatchRequest match;
    v1::MatchResponse answer;
    if (!match.ParseFromString(request) || !answer.ParseFromString(response) ||
        answer.sighting().empty())
      return;
    v1::DeleteSightingsRequest del;
    del.set_platform(match.ad().platform());
    del.set_ad_id(match.ad().ad_id());
    v1::DeleteSightingsResponse deleted;
    grpc::ClientContext ctx;
    Deadline(ctx);
    grpc::Status status = h.stub->DeleteSightings(&ctx, del, &deleted);
    if (!status.ok())
      Fail("cannot delete the sighting just recorded: " +
           status.error_message());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size < 1) return 0;
  Harness& h = TheServer();
  const Rpc& rpc = kRpcs[data[0] % kRpcCount];
  if (!rpc.stream) {
    std::string request(reinterpret_cast<const char*>(data + 1), size - 1);
    bool parsed = rpc.parses(request);
    grpc::ClientContext ctx;
    Deadline(ctx);
    grpc::ByteBuffer response;
    grpc::Status status =
        grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
            h.channel.get(),
            grpc::internal::RpcMethod(rpc.method,
                                      grpc::internal::RpcMethod::NORMAL_RPC),
            &ctx, Buffer(request), &response);
    CheckStatus(status, parsed, rpc.method);
    if (status.ok()) CleanUp(rpc, request, Bytes(response));
    return 0;
  }
  std::vector<std::string> messages =
      spoor::fuzz::SplitFrames(data + 1, size - 1);
  bool parsed = true;
  for (const std::string& m : messages) parsed = parsed && rpc.parses(m);
  grpc::ClientContext ctx;
  Deadline(ctx);
  auto stream = std::unique_ptr<
      grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>>(
      grpc::internal::
          ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
              h.channel.get(),
              grpc::internal::RpcMethod(
                  rpc.method, grpc::internal::RpcMethod::BIDI_STREAMING),
              &ctx));
  for (const std::string& m : messages)
    if (!stream->Write(Buffer(m))) break;
  stream->WritesDone();
  grpc::ByteBuffer reply;
  while (stream->Read(&reply)) {
    v1::StreamMatchResponse item;
    if (!item.ParseFromString(Bytes(reply))) Fail("stream answered garbage");
    if (item.has_error()) {
      auto code = static_cast<grpc::StatusCode>(item.error().code());
      CheckStatus(grpc::Status(code, item.error().message()), parsed,
                  "StreamMatch item");
    }
  }
  CheckStatus(stream->Finish(), parsed, rpc.method);
  for (const std::string& m : messages) {
    v1::StreamMatchRequest item;
    if (!item.ParseFromString(m) || item.request().ad().ad_id().empty())
      continue;
    v1::DeleteSightingsRequest del;
    del.set_platform(item.request().ad().platform());
    del.set_ad_id(item.request().ad().ad_id());
    v1::DeleteSightingsResponse deleted;
    grpc::ClientContext dctx;
    Deadline(dctx);
    (void)h.stub->DeleteSightings(&dctx, del, &deleted);
  }
  return 0;
}
