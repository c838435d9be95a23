// spoor: a small client of spoor-query-service for people and scripts.
//
//   spoor [--target HOST:PORT] [--api-key KEY] [--tls-ca PEM] COMMAND ...
//     match IMAGE... [--json] [--min-score S] [--top K] [--bank B]...
//           [--platform P --ad-id A --seller S --title T --url U
//            --listing-time 2026-11-02T10:00:00Z]   (records a sighting)
//     add IMAGE... [--bank B] [--species-common ... --item-type ...]
//     remove NAME...        get NAME        list [--filter label=value]
//     [--json] stats                 health          hash-key   (reads a key on
//     stdin)
//   Investigators (JSON, one object per line):
//     sighting NAME                 sightings [--platform --seller --ad-id
//                                             --bank --label --since --until]
//     ad-history PLATFORM AD_ID     seller-links PLATFORM SELLER [--min-score]
//     clusters [--min-sellers N]    cluster NAME
//     reference-sightings NAME      review-link NAME confirm|reject [--note]
//     delete-sightings PLATFORM (--ad-id A | --seller S)
//     report (--seller PLATFORM/SELLER | --cluster clusters/N |
//             --reference references/N) --out DIR   (HTML, CSV, JSON, PNGs)
//
// The API key may also come from $SPOOR_API_KEY, the target from
// $SPOOR_TARGET. Exit codes: 0 success; 1 a call failed (the gRPC status
// code and message are printed on one line); 2 bad usage; 3 some images
// could not be read or matched (reported, the others were processed).
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "grpc/health/v1/health.grpc.pb.h"
#include "query_service/report.h"
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

// InvalidArgument-style exit: a time flag that is not RFC 3339.
bool ParseTime(const std::string& text, google::protobuf::Timestamp* out) {
  return text.empty() ||
         google::protobuf::util::TimeUtil::FromString(text, out);
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
  std::vector<std::string> banks;
  match->add_option("--bank", banks, "search only these banks (repeatable)");
  std::string platform, ad_id, seller, title, url, listing_time;
  match->add_option("--platform", platform,
                    "ad's platform (records a sighting)");
  match->add_option("--ad-id", ad_id, "ad's id on the platform");
  match->add_option("--seller", seller, "seller's id on the platform");
  match->add_option("--title", title, "ad's title");
  match->add_option("--url", url, "ad's URL");
  match->add_option("--listing-time", listing_time,
                    "when the ad was listed, RFC 3339 (2026-11-02T10:00:00Z)");

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
  std::string bank;
  add->add_option("--bank", bank, "bank to add to (default: default)");
  auto* remove = app.add_subcommand("remove", "remove references");
  remove->add_option("NAME", names, "references/<id>")->required();
  auto* get = app.add_subcommand("get", "show one reference");
  get->add_option("NAME", names, "references/<id>")->required();
  std::string filter;
  auto* list = app.add_subcommand("list", "list references");
  list->add_option("--filter", filter, "label=value");
  list->add_flag("--json", as_json, "one JSON object per line");
  auto* stats = app.add_subcommand("stats", "index statistics");

  // Investigators.
  std::string label, since, until, note, decision;
  double link_score = 0.5;
  int min_sellers = 0;
  auto* sighting = app.add_subcommand("sighting", "show one sighting");
  sighting->add_option("NAME", names, "sightings/<id>")->required();
  auto* sightings = app.add_subcommand("sightings", "list sightings");
  sightings->add_option("--platform", platform);
  sightings->add_option("--seller", seller);
  sightings->add_option("--ad-id", ad_id);
  sightings->add_option("--bank", bank, "matched a reference in this bank");
  sightings->add_option("--label", label, "matched a reference label=value");
  sightings->add_option("--since", since, "listed at or after, RFC 3339");
  sightings->add_option("--until", until, "listed before, RFC 3339");
  auto* ad_history =
      app.add_subcommand("ad-history", "an ad's images and their links");
  ad_history->add_option("PLATFORM", platform)->required();
  ad_history->add_option("AD_ID", ad_id)->required();
  auto* seller_links =
      app.add_subcommand("seller-links", "sellers linked to a seller");
  seller_links->add_option("PLATFORM", platform)->required();
  seller_links->add_option("SELLER", seller)->required();
  seller_links->add_option("--min-score", link_score)->capture_default_str();
  auto* clusters = app.add_subcommand("clusters", "list clusters");
  clusters->add_option("--min-sellers", min_sellers);
  clusters->add_option("--min-score", link_score)->capture_default_str();
  auto* cluster = app.add_subcommand("cluster", "show one cluster");
  cluster->add_option("NAME", names, "clusters/<id>")->required();
  auto* reference_sightings = app.add_subcommand(
      "reference-sightings", "where and when a reference appeared");
  reference_sightings->add_option("NAME", names, "references/<id>")->required();
  auto* review_link =
      app.add_subcommand("review-link", "confirm or reject a link (curator)");
  review_link->add_option("NAME", names, "links/<id>")->required();
  review_link->add_option("DECISION", decision, "confirm or reject")
      ->required()
      ->check(CLI::IsMember({"confirm", "reject"}));
  review_link->add_option("--note", note);
  auto* delete_sightings = app.add_subcommand(
      "delete-sightings", "delete an ad's or a seller's sightings");
  delete_sightings->add_option("PLATFORM", platform)->required();
  auto* del_ad = delete_sightings->add_option("--ad-id", ad_id);
  delete_sightings->add_option("--seller", seller)->excludes(del_ad);
  std::string report_seller, report_cluster, report_reference, report_out;
  auto* report = app.add_subcommand(
      "report", "write a case report (HTML, CSV, JSON, link pictures)");
  auto* by_seller =
      report->add_option("--seller", report_seller,
                         "PLATFORM/SELLER and the sellers linked to it");
  auto* by_cluster =
      report->add_option("--cluster", report_cluster, "clusters/<id>");
  auto* by_reference =
      report->add_option("--reference", report_reference, "references/<id>");
  by_seller->excludes(by_cluster)->excludes(by_reference);
  by_cluster->excludes(by_reference);
  report->add_option("--out", report_out, "folder to write")->required();
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
        for (const auto& b : banks) req.mutable_options()->add_banks(b);
        v1::AdContext* ad = req.mutable_ad();
        ad->set_platform(platform);
        ad->set_ad_id(ad_id);
        ad->set_seller_id(seller);
        ad->set_title(title);
        ad->set_url(url);
        if (!ParseTime(listing_time, ad->mutable_listing_time())) {
          std::cerr << "spoor: --listing-time '" << listing_time
                    << "' is not RFC 3339 (2026-11-02T10:00:00Z)\n";
          return 2;
        }
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
      if (resp.matches_size() == 0 && resp.earlier_sightings_size() == 0)
        std::cout << image << ": no match\n";
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
      for (const auto& e : resp.earlier_sightings()) {
        const v1::AdContext& ad = e.sighting().ad();
        std::cout << image << ": seen before in " << ad.platform() << " ad "
                  << ad.ad_id() << " by seller " << ad.seller_id() << " ("
                  << e.sighting().name() << ", "
                  << (e.link().kind() == v1::Link::CONTACT
                          ? "same contact " + e.link().contact()
                          : v1::Verdict_Name(e.link().verdict()))
                  << ", score " << std::round(e.link().score() * 100) / 100
                  << ")\n";
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
      req.set_bank(bank);
      v1::AddReferenceResponse resp;
      grpc::ClientContext ctx;
      context(ctx);
      grpc::Status s = stub->AddReference(&ctx, req, &resp);
      if (!s.ok()) return Fail(s, image);
      std::cout << (resp.created() ? "added " : "already indexed as ")
                << resp.reference().name() << "\t" << image << "\n";
      for (const auto& m : resp.matched_sightings())
        std::cout << "  seen before in " << m.ad().platform() << " ad "
                  << m.ad().ad_id() << " by seller " << m.ad().seller_id()
                  << " (" << m.name() << ")\n";
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
  // One unary call whose answer is printed as JSON.
  auto unary = [&](const char* what, auto method, const auto& req,
                   auto resp) -> int {
    grpc::ClientContext ctx;
    context(ctx);
    grpc::Status s = (stub.get()->*method)(&ctx, req, &resp);
    if (!s.ok()) return Fail(s, what);
    std::cout << ToJson(resp) << "\n";
    return 0;
  };
  if (*sighting) {
    v1::GetSightingRequest req;
    req.set_name(names.front());
    return unary("sighting", &v1::Spoor::Stub::GetSighting, req,
                 v1::Sighting());
  }
  if (*sightings) {
    v1::ListSightingsRequest req;
    req.set_platform(platform);
    req.set_seller_id(seller);
    req.set_ad_id(ad_id);
    req.set_bank(bank);
    req.set_label(label);
    if (!ParseTime(since, req.mutable_since()) ||
        !ParseTime(until, req.mutable_until())) {
      std::cerr << "spoor: --since and --until are RFC 3339 times\n";
      return 2;
    }
    req.set_page_size(500);
    do {
      v1::ListSightingsResponse resp;
      grpc::ClientContext ctx;
      context(ctx);
      grpc::Status s = stub->ListSightings(&ctx, req, &resp);
      if (!s.ok()) return Fail(s, "sightings");
      for (const auto& one : resp.sightings()) std::cout << ToJson(one) << "\n";
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
    return 0;
  }
  if (*ad_history) {
    v1::GetAdHistoryRequest req;
    req.set_platform(platform);
    req.set_ad_id(ad_id);
    return unary("ad-history", &v1::Spoor::Stub::GetAdHistory, req,
                 v1::AdHistory());
  }
  if (*seller_links) {
    v1::GetSellerLinksRequest req;
    req.set_platform(platform);
    req.set_seller_id(seller);
    req.set_min_score(link_score);
    v1::GetSellerLinksResponse resp;
    grpc::ClientContext ctx;
    context(ctx);
    grpc::Status s = stub->GetSellerLinks(&ctx, req, &resp);
    if (!s.ok()) return Fail(s, "seller-links");
    if (resp.sellers_size() == 0)
      std::cout << platform << "/" << seller << ": linked to no seller\n";
    for (const auto& l : resp.sellers()) {
      std::cout << platform << "/" << seller << " ~ " << l.platform() << "/"
                << l.seller_id() << ": " << l.links_size()
                << " links, strongest " << std::round(l.score() * 100) / 100
                << " (" << l.links(0).newer() << " ~ " << l.links(0).older()
                << ", " << v1::Verdict_Name(l.links(0).verdict()) << ")\n";
    }
    return 0;
  }
  if (*clusters) {
    v1::ListClustersRequest req;
    req.set_min_score(link_score);
    req.set_min_sellers(min_sellers);
    req.set_page_size(500);
    do {
      v1::ListClustersResponse resp;
      grpc::ClientContext ctx;
      context(ctx);
      grpc::Status s = stub->ListClusters(&ctx, req, &resp);
      if (!s.ok()) return Fail(s, "clusters");
      for (const auto& c : resp.clusters()) std::cout << ToJson(c) << "\n";
      req.set_page_token(resp.next_page_token());
    } while (!req.page_token().empty());
    return 0;
  }
  if (*cluster) {
    v1::GetClusterRequest req;
    req.set_name(names.front());
    return unary("cluster", &v1::Spoor::Stub::GetCluster, req, v1::Cluster());
  }
  if (*reference_sightings) {
    v1::GetReferenceSightingsRequest req;
    req.set_name(names.front());
    return unary("reference-sightings", &v1::Spoor::Stub::GetReferenceSightings,
                 req, v1::GetReferenceSightingsResponse());
  }
  if (*review_link) {
    v1::ReviewLinkRequest req;
    req.set_name(names.front());
    req.set_review(decision == "confirm" ? v1::CONFIRMED : v1::REJECTED);
    req.set_note(note);
    return unary("review-link", &v1::Spoor::Stub::ReviewLink, req, v1::Link());
  }
  if (*delete_sightings) {
    v1::DeleteSightingsRequest req;
    req.set_platform(platform);
    req.set_ad_id(ad_id);
    req.set_seller_id(seller);
    return unary("delete-sightings", &v1::Spoor::Stub::DeleteSightings, req,
                 v1::DeleteSightingsResponse());
  }
  if (*report) {
    if (report_seller.empty() && report_cluster.empty() &&
        report_reference.empty()) {
      std::cerr << "spoor: report needs --seller, --cluster or --reference\n";
      return 2;
    }
    spoor::service::CaseFile file;
    std::set<std::string> have;
    auto add_sighting = [&](const v1::Sighting& s) {
      if (have.insert(s.name()).second) file.sightings.push_back(s);
    };
    auto get_sighting = [&](const std::string& name) -> grpc::Status {
      if (have.count(name)) return grpc::Status::OK;
      v1::GetSightingRequest req;
      req.set_name(name);
      v1::Sighting s;
      grpc::ClientContext ctx;
      context(ctx);
      grpc::Status st = stub->GetSighting(&ctx, req, &s);
      if (st.ok()) add_sighting(s);
      return st;
    };
    auto seller_sightings = [&](const std::string& p,
                                const std::string& id) -> grpc::Status {
      v1::ListSightingsRequest req;
      req.set_platform(p);
      req.set_seller_id(id);
      req.set_page_size(1000);
      do {
        v1::ListSightingsResponse resp;
        grpc::ClientContext ctx;
        context(ctx);
        grpc::Status st = stub->ListSightings(&ctx, req, &resp);
        if (!st.ok()) return st;
        for (const auto& one : resp.sightings()) add_sighting(one);
        req.set_page_token(resp.next_page_token());
      } while (!req.page_token().empty());
      return grpc::Status::OK;
    };
    std::vector<v1::Link> links;
    if (!report_seller.empty()) {
      size_t slash = report_seller.find('/');
      if (slash == std::string::npos) {
        std::cerr << "spoor: --seller is PLATFORM/SELLER\n";
        return 2;
      }
      std::string p = report_seller.substr(0, slash);
      std::string id = report_seller.substr(slash + 1);
      file.title = "Seller " + report_seller;
      file.subject = "Every ad Spoor saw from seller " + id + " on " + p +
                     ", and from the sellers whose ads show the same items.";
      if (auto st = seller_sightings(p, id); !st.ok())
        return Fail(st, "report");
      v1::GetSellerLinksRequest req;
      req.set_platform(p);
      req.set_seller_id(id);
      v1::GetSellerLinksResponse resp;
      grpc::ClientContext ctx;
      context(ctx);
      if (auto st = stub->GetSellerLinks(&ctx, req, &resp); !st.ok())
        return Fail(st, "report");
      for (const auto& l : resp.sellers()) {
        if (auto st = seller_sightings(l.platform(), l.seller_id()); !st.ok())
          return Fail(st, "report");
        links.insert(links.end(), l.links().begin(), l.links().end());
      }
    } else if (!report_cluster.empty()) {
      v1::GetClusterRequest req;
      req.set_name(report_cluster);
      v1::Cluster c;
      grpc::ClientContext ctx;
      context(ctx);
      if (auto st = stub->GetCluster(&ctx, req, &c); !st.ok())
        return Fail(st, "report");
      file.title = "Cluster " + c.name();
      file.subject =
          "A group of ads whose photos are tied together by "
          "matches, from " +
          std::to_string(c.sellers_size()) + " seller accounts.";
      for (const auto& name : c.sightings())
        if (auto st = get_sighting(name); !st.ok()) return Fail(st, "report");
      links.assign(c.links().begin(), c.links().end());
    } else {
      v1::GetReferenceSightingsRequest req;
      req.set_name(report_reference);
      v1::GetReferenceSightingsResponse resp;
      grpc::ClientContext ctx;
      context(ctx);
      if (auto st = stub->GetReferenceSightings(&ctx, req, &resp); !st.ok())
        return Fail(st, "report");
      file.title = "Reference " + report_reference;
      file.subject = "Where and when the item of " + report_reference +
                     " appeared in ads, and by whom.";
      for (const auto& one : resp.sightings()) add_sighting(one);
      // The links among those ads.
      for (const auto& one : resp.sightings()) {
        v1::GetAdHistoryRequest h;
        h.set_platform(one.ad().platform());
        h.set_ad_id(one.ad().ad_id());
        v1::AdHistory history;
        grpc::ClientContext hctx;
        context(hctx);
        if (auto st = stub->GetAdHistory(&hctx, h, &history); !st.ok())
          return Fail(st, "report");
        for (const auto& l : history.links())
          if (have.count(l.newer()) && have.count(l.older()))
            links.push_back(l);
      }
    }
    std::set<std::string> seen_links;
    for (const auto& l : links)
      if (seen_links.insert(l.name()).second) file.links.push_back(l);
    for (const auto& s : file.sightings) {
      v1::GetSightingThumbnailRequest req;
      req.set_name(s.name());
      v1::SightingThumbnail t;
      grpc::ClientContext ctx;
      context(ctx);
      grpc::Status st = stub->GetSightingThumbnail(&ctx, req, &t);
      if (st.ok()) {
        file.thumbnails[s.name()] = t.jpeg();
      } else if (st.error_code() != grpc::NOT_FOUND) {
        return Fail(st, "report");
      }
    }
    if (auto st = spoor::service::WriteCaseReport(file, report_out); !st.ok()) {
      std::cerr << "spoor: " << st.message() << "\n";
      return 1;
    }
    std::cout << "wrote " << report_out << "/report.html ("
              << file.sightings.size() << " sightings, " << file.links.size()
              << " links, " << file.thumbnails.size() << " images)\n";
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
