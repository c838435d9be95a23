// spoor: a small client of spoor-query-service for people and scripts.
//
//   spoor [--target HOST:PORT] [--api-key KEY] [--tls-ca PEM] COMMAND ...
//     match IMAGE... [--json] [--min-score S] [--top K]
//     add IMAGE... [--species-common ... --item-type ... --cites-appendix ...]
//     remove NAME...        get NAME        list [--filter label=value]
//     [--json] stats                 health          hash-key   (reads a key on
//     stdin)
//
// The API key may also come from $SPOOR_API_KEY, the target from
// $SPOOR_TARGET. Exit codes: 0 success; 1 a call failed (the gRPC status
// code and message are printed on one line); 2 bad usage; 3 some images
// could not be read or matched (reported, the others were processed).
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "grpc/health/v1/health.grpc.pb.h"
#include "spoor/image.h"
#include "spoor/reference.h"
#include "spoor/v1/spoor.grpc.pb.h"

namespace {

using nlohmann::json;
namespace v1 = spoor::v1;

const char* kCodeNames[] = {"OK",
                            "CANCELLED",
                            "UNKNOWN",
                            "INVALID_ARGUMENT",
                            "DEADLINE_EXCEEDED",
                            "NOT_FOUND",
                            "ALREADY_EXISTS",
                            "PERMISSION_DENIED",
                            "RESOURCE_EXHAUSTED",
                            "FAILED_PRECONDITION",
                            "ABORTED",
                            "OUT_OF_RANGE",
                            "UNIMPLEMENTED",
                            "INTERNAL",
                            "UNAVAILABLE",
                            "DATA_LOSS",
                            "UNAUTHENTICATED"};

int Fail(const grpc::Status& s, const std::string& what) {
  int code = s.error_code();
  std::cerr << "spoor: " << what << ": "
            << (code >= 0 && code <= 16 ? kCodeNames[code] : "?") << ": "
            << s.error_message() << "\n";
  return 1;
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

std::string ReadKeyFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"spoor: client of spoor-query-service"};
  app.require_subcommand(1);
  const char* env_target = std::getenv("SPOOR_TARGET");
  const char* env_key = std::getenv("SPOOR_API_KEY");
  std::string target = env_target ? env_target : "127.0.0.1:50051";
  std::string api_key = env_key ? env_key : "";
  std::string tls_ca, tls_cert, tls_key;
  double timeout = 30;
  app.add_option("--target", target, "service host:port")
      ->capture_default_str();
  app.add_option("--api-key", api_key, "API key (or $SPOOR_API_KEY)");
  app.add_option(
      "--tls-ca", tls_ca,
      "PEM of the CA that signed the service's certificate (enables TLS)");
  app.add_option("--tls-cert", tls_cert, "PEM client certificate");
  app.add_option("--tls-key", tls_key, "PEM client key");
  app.add_option("--timeout", timeout, "seconds per call")
      ->capture_default_str();

  std::vector<std::string> images, names;
  bool as_json = false;
  double min_score = -1;
  int top = 5;
  auto* match = app.add_subcommand("match", "match ad images");
  match->add_option("IMAGE", images)->required();
  match->add_flag("--json", as_json, "one JSON object per line per image");
  match->add_option("--min-score", min_score,
                    "lowest score listed (default: the service's threshold)");
  match->add_option("--top", top, "matches per image")->capture_default_str();

  v1::Labels labels;
  std::string species_sci, species_common, item_type, cites, lsource, case_ref,
      licence;
  auto* add = app.add_subcommand("add", "add reference images");
  add->add_option("IMAGE", images)->required();
  add->add_option("--species-scientific", species_sci);
  add->add_option("--species-common", species_common);
  add->add_option("--item-type", item_type);
  add->add_option("--cites-appendix", cites);
  add->add_option("--source", lsource);
  add->add_option("--case", case_ref);
  add->add_option("--licence", licence);
  auto* remove = app.add_subcommand("remove", "remove references");
  remove->add_option("NAME", names, "references/<id>")->required();
  auto* get = app.add_subcommand("get", "show one reference");
  get->add_option("NAME", names, "references/<id>")->required();
  std::string filter;
  auto* list = app.add_subcommand("list", "list references");
  list->add_option("--filter", filter, "label=value");
  list->add_flag("--json", as_json, "one JSON object per line");
  auto* stats = app.add_subcommand("stats", "index statistics");
  auto* health = app.add_subcommand("health", "health check");
  auto* hash_key = app.add_subcommand(
      "hash-key",
      "print the SHA-256 of a key read from stdin, for the key file");
  CLI11_PARSE(app, argc, argv);

  if (*hash_key) {
    std::string key;
    std::getline(std::cin, key);
    if (key.empty()) {
      std::cerr << "spoor: no key on stdin\n";
      return 2;
    }
    std::cout << spoor::Sha256Hex(key.data(), key.size()) << "\n";
    return 0;
  }

  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!tls_ca.empty()) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = ReadKeyFile(tls_ca);
    if (!tls_cert.empty()) o.pem_cert_chain = ReadKeyFile(tls_cert);
    if (!tls_key.empty()) o.pem_private_key = ReadKeyFile(tls_key);
    creds = grpc::SslCredentials(o);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(target, creds, args);
  auto stub = v1::Spoor::NewStub(channel);
  auto context = [&](grpc::ClientContext& ctx) {
    ctx.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::milliseconds(static_cast<long>(timeout * 1000)));
    if (!api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + api_key);
  };

  if (*match) {
    int code = 0;
    for (const auto& image : images) {
      auto bytes = spoor::ReadFileBytes(image, 64LL << 20);
      v1::MatchRequest req;
      v1::MatchResponse resp;
      grpc::Status s;
      if (!bytes.ok()) {
        s = grpc::Status(grpc::INVALID_ARGUMENT,
                         std::string(bytes.status().message()));
      } else {
        req.set_image(bytes->data(), bytes->size());
        req.mutable_options()->set_max_results(top);
        req.mutable_options()->set_include_evidence(true);
        if (min_score >= 0) req.mutable_options()->set_min_score(min_score);
        grpc::ClientContext ctx;
        context(ctx);
        s = stub->Match(&ctx, req, &resp);
      }
      if (!s.ok()) {
        code = 3;
        if (s.error_code() == grpc::UNAVAILABLE ||
            s.error_code() == grpc::UNAUTHENTICATED ||
            s.error_code() == grpc::PERMISSION_DENIED)
          return Fail(s, image);
      }
      if (as_json) {
        json j = {{"query", image}, {"error", nullptr}};
        if (s.ok()) {
          j["response"] = json::parse(ToJson(resp));
        } else {
          j["error"] = s.error_message();
        }
        std::cout << j.dump() << "\n" << std::flush;
        continue;
      }
      if (!s.ok()) {
        std::cout << image << ": error: " << s.error_message() << "\n";
        continue;
      }
      if (resp.matches_size() == 0) std::cout << image << ": no match\n";
      for (const auto& m : resp.matches()) {
        std::cout << image << ": " << v1::Verdict_Name(m.verdict()) << " "
                  << m.reference().source() << " (" << m.reference().name()
                  << ", score " << std::round(m.score() * 100) / 100 << ", "
                  << m.evidence().inliers() << " inliers"
                  << (m.evidence().transform().mirrored() ? ", mirrored" : "")
                  << ")";
        if (!m.reference().labels().species_common().empty())
          std::cout << " [" << m.reference().labels().species_common() << "]";
        std::cout << "\n";
      }
    }
    return code;
  }
  if (*add) {
    labels.set_species_scientific(species_sci);
    labels.set_species_common(species_common);
    labels.set_item_type(item_type);
    labels.set_cites_appendix(cites);
    labels.set_source(lsource);
    labels.set_case_ref(case_ref);
    labels.set_licence(licence);
    for (const auto& image : images) {
      auto bytes = spoor::ReadFileBytes(image, 64LL << 20);
      if (!bytes.ok()) {
        std::cerr << "spoor: " << bytes.status().message() << "\n";
        return 3;
      }
      v1::AddReferenceRequest req;
      req.set_image(bytes->data(), bytes->size());
      req.set_source(image);
      *req.mutable_labels() = labels;
      v1::AddReferenceResponse resp;
      grpc::ClientContext ctx;
      context(ctx);
      grpc::Status s = stub->AddReference(&ctx, req, &resp);
      if (!s.ok()) return Fail(s, image);
      std::cout << (resp.created() ? "added " : "already indexed as ")
                << resp.reference().name() << "\t" << image << "\n";
    }
    return 0;
  }
  if (*remove) {
    for (const auto& name : names) {
      v1::RemoveReferenceRequest req;
      req.set_name(name);
      v1::RemoveReferenceResponse resp;
      grpc::ClientContext ctx;
      context(ctx);
      grpc::Status s = stub->RemoveReference(&ctx, req, &resp);
      if (!s.ok()) return Fail(s, name);
      std::cout << "removed " << name << "\n";
    }
    return 0;
  }
  if (*get) {
    v1::GetReferenceRequest req;
    req.set_name(names.front());
    v1::Reference resp;
    grpc::ClientContext ctx;
    context(ctx);
    grpc::Status s = stub->GetReference(&ctx, req, &resp);
    if (!s.ok()) return Fail(s, names.front());
    std::cout << ToJson(resp) << "\n";
    return 0;
  }
  if (*list) {
    std::string token;
    do {
      v1::ListReferencesRequest req;
      req.set_page_size(500);
      req.set_page_token(token);
      req.set_filter(filter);
      v1::ListReferencesResponse resp;
      grpc::ClientContext ctx;
      context(ctx);
      grpc::Status s = stub->ListReferences(&ctx, req, &resp);
      if (!s.ok()) return Fail(s, "list");
      for (const auto& r : resp.references()) {
        if (as_json) {
          std::cout << ToJson(r) << "\n";
        } else {
          std::cout << r.name() << "\t" << r.source() << "\t"
                    << r.labels().species_common() << "\t"
                    << r.labels().item_type() << "\n";
        }
      }
      token = resp.next_page_token();
    } while (!token.empty());
    return 0;
  }
  if (*stats) {
    v1::GetIndexStatsRequest req;
    v1::IndexStats resp;
    grpc::ClientContext ctx;
    context(ctx);
    grpc::Status s = stub->GetIndexStats(&ctx, req, &resp);
    if (!s.ok()) return Fail(s, "stats");
    std::cout << ToJson(resp) << "\n";
    return 0;
  }
  if (*health) {
    auto health_stub = grpc::health::v1::Health::NewStub(channel);
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    context(ctx);
    grpc::Status s = health_stub->Check(&ctx, req, &resp);
    if (!s.ok()) return Fail(s, "health");
    std::cout << grpc::health::v1::HealthCheckResponse_ServingStatus_Name(
                     resp.status())
              << "\n";
    return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0
                                                                           : 1;
  }
  return 2;
}
