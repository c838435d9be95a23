// End-to-end tests of spoor-query-service: the real server on a loopback
// port, called through the generated C++ stubs, over a real index.
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <thread>

#include "bad_inputs.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "query_service/api_keys.h"
#include "query_service/config.h"
#include "query_service/server.h"
#include "spoor/reference_index.h"
#include "spoor/v1/spoor.grpc.pb.h"
#include "test_util.h"

namespace spoor {
namespace {

namespace fs = std::filesystem;
namespace v1 = spoor::v1;
using service::Server;
using service::ServiceConfig;

constexpr const char* kPlatformKey = "platform-secret-1";
constexpr const char* kCuratorKey = "curator-secret-2";
constexpr const char* kInvestigatorKey = "investigator-secret-3";
constexpr const char* kLimitedKey = "limited-secret-4";

std::string ads(const std::string& name) {
  return testing::ReferenceImagesPath() + "/sample_ads/" + name;
}

std::string Bytes(const std::string& path) {
  auto b = testing::ReadFile(path);
  return std::string(b.begin(), b.end());
}

class ServiceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_dir_ = new testing::TempDir();
    // One index built once; each test serves a fresh copy of it.
    auto index = testing::IndexBundledReferences(
        suite_dir_->Join("index"), [](const std::string& name) {
          Labels labels;
          labels.item_type = name == "box.png" || name == "graf1.jpg"
                                 ? "other"
                                 : "live_animal";
          return labels;
        });
    ASSERT_NE(index, nullptr);
    std::ofstream keys(suite_dir_->Join("keys.toml"));
    auto entry = [&](const char* name, const char* key, const char* roles) {
      keys << "[[key]]\nname = \"" << name << "\"\nsha256 = \""
           << Sha256Hex(key, strlen(key)) << "\"\nroles = " << roles << "\n\n";
    };
    entry("acme-market", kPlatformKey, "[\"platform\"]");
    entry("ngo-curator", kCuratorKey, "[\"curator\"]");
    entry("investigator", kInvestigatorKey, "[\"investigator\"]");
    entry("limited", kLimitedKey,
          "[\"platform\"]\nrequests_per_second = 2\nburst = 2");
  }
  static void TearDownTestSuite() { delete suite_dir_; }

  void SetUp() override {
    fs::copy(suite_dir_->Join("index"), tmp_.Join("index"),
             fs::copy_options::recursive);
    config_.index_dir = tmp_.Join("index");
    config_.listen = "127.0.0.1:0";
    // The metrics endpoint takes ~2 s to stop (civetweb's poll quantum):
    // only the test that reads it turns it on.
    config_.metrics_listen = "";
    config_.api_keys_file = suite_dir_->Join("keys.toml");
    config_.save_interval_seconds = 3600;
  }
  void TearDown() override { server_.reset(); }

  void StartServer() {
    log_text_ = std::make_shared<std::ostringstream>();
    auto log = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_text_));
    log->set_level(spdlog::level::debug);
    log_ = log;
    auto server = Server::Start(config_, log);
    ASSERT_OK(server);
    server_ = std::move(*server);
    channel_ =
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                            grpc::InsecureChannelCredentials());
    stub_ = v1::Spoor::NewStub(channel_);
  }

  static void Authorize(grpc::ClientContext& ctx, const char* key,
                        int timeout_ms = 30000) {
    if (key) ctx.AddMetadata("authorization", std::string("Bearer ") + key);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(timeout_ms));
  }

  grpc::Status Match(const std::string& image, v1::MatchResponse* out,
                     const char* key = kPlatformKey, bool evidence = true,
                     int timeout_ms = 30000) {
    v1::MatchRequest req;
    req.set_image(image);
    req.mutable_options()->set_include_evidence(evidence);
    req.mutable_ad()->set_platform("test-market");
    req.mutable_ad()->set_ad_id("ad-1");
    grpc::ClientContext ctx;
    Authorize(ctx, key, timeout_ms);
    return stub_->Match(&ctx, req, out);
  }

  // Starts `n` slow matches (a re-photographed item: the full pipeline, both
  // passes) on their own threads and gives them 50 ms to reach the workers.
  // The caller joins the threads.
  std::vector<std::thread> KeepWorkersBusy(int n) {
    std::vector<std::thread> busy;
    for (int i = 0; i < n; ++i) {
      busy.emplace_back([this] {
        v1::MatchResponse r;
        EXPECT_TRUE(Match(Bytes(ads("ad_box_rephotographed.png")), &r).ok());
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return busy;
  }

  // GetIndexStats with `key`: the cheapest call, for key and limit checks.
  grpc::Status StatsAs(const char* key) {
    v1::GetIndexStatsRequest req;
    v1::IndexStats out;
    grpc::ClientContext ctx;
    Authorize(ctx, key);
    return stub_->GetIndexStats(&ctx, req, &out);
  }

  grpc::Status Add(const std::string& image, v1::AddReferenceResponse* out,
                   const char* key = kCuratorKey,
                   const std::string& item_type = "ivory") {
    v1::AddReferenceRequest req;
    req.set_image(image);
    req.set_source("curator-upload.jpg");
    req.mutable_labels()->set_item_type(item_type);
    req.mutable_labels()->set_species_common("Lion");
    grpc::ClientContext ctx;
    Authorize(ctx, key);
    return stub_->AddReference(&ctx, req, out);
  }

  grpc::Status Remove(const std::string& name, const char* key = kCuratorKey) {
    v1::RemoveReferenceRequest req;
    req.set_name(name);
    v1::RemoveReferenceResponse resp;
    grpc::ClientContext ctx;
    Authorize(ctx, key);
    return stub_->RemoveReference(&ctx, req, &resp);
  }

  // Match with a full ad context, as a platform sends it.
  v1::MatchResponse MatchAd(const std::string& image, const std::string& ad_id,
                            const std::string& seller,
                            const std::string& platform = "bazaar") {
    v1::MatchRequest req;
    req.set_image(image);
    req.mutable_options()->set_include_evidence(true);
    v1::AdContext* ad = req.mutable_ad();
    ad->set_platform(platform);
    ad->set_ad_id(ad_id);
    ad->set_seller_id(seller);
    ad->set_title("Carved tusk " + ad_id);
    ad->set_url("https://bazaar.example/" + ad_id);
    ad->mutable_listing_time()->set_seconds(1793000000);
    v1::MatchResponse out;
    grpc::ClientContext ctx;
    Authorize(ctx, kPlatformKey);
    grpc::Status s = stub_->Match(&ctx, req, &out);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return out;
  }

  // Calls an investigator RPC with `key`.
  template <typename Req, typename Resp, typename Method>
  grpc::Status Ask(Method method, const Req& req, Resp* out,
                   const char* key = kInvestigatorKey) {
    grpc::ClientContext ctx;
    Authorize(ctx, key);
    return (stub_.get()->*method)(&ctx, req, out);
  }

  v1::IndexStats Stats() {
    v1::IndexStats stats;
    grpc::ClientContext ctx;
    Authorize(ctx, kCuratorKey);
    EXPECT_TRUE(stub_->GetIndexStats(&ctx, {}, &stats).ok());
    return stats;
  }

  static testing::TempDir* suite_dir_;
  std::shared_ptr<std::ostringstream> log_text_;  // read after server_.reset()
  std::shared_ptr<spdlog::logger> log_;
  testing::TempDir tmp_;
  ServiceConfig config_;
  std::unique_ptr<Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Spoor::Stub> stub_;
};

testing::TempDir* ServiceTest::suite_dir_ = nullptr;

TEST_F(ServiceTest, MatchReturnsTheReferenceWithEvidence) {
  StartServer();
  v1::MatchResponse resp;
  std::string image = Bytes(ads("ad_elephant_mirrored_crop_phone.jpg"));
  ASSERT_TRUE(Match(image, &resp).ok());
  ASSERT_GE(resp.matches_size(), 1);
  const v1::Match& m = resp.matches(0);
  EXPECT_EQ(m.reference().source(), "elephant.jpg");
  EXPECT_EQ(m.reference().name().rfind("references/", 0), 0u);
  EXPECT_EQ(m.reference().labels().item_type(), "live_animal");
  EXPECT_EQ(m.verdict(), v1::MODIFIED_COPY);
  EXPECT_GE(m.score(), 0.5);
  EXPECT_GT(m.evidence().inliers(), 15);
  EXPECT_TRUE(m.evidence().transform().mirrored());
  EXPECT_EQ(m.evidence().transform().homography_size(), 9);
  EXPECT_GT(m.evidence().query_box().width(), 0);
  EXPECT_EQ(resp.image().width(), 520);
  EXPECT_EQ(resp.image().height(), 420);
  EXPECT_EQ(resp.image().format(), "jpeg");
  EXPECT_EQ(resp.image().size_bytes(), static_cast<std::int64_t>(image.size()));
  EXPECT_GT(resp.timings().total_ms(), 0);
  EXPECT_FALSE(resp.request_id().empty());
  EXPECT_TRUE(m.reference().has_create_time());

  // A caller's plain request id is echoed; anything else is replaced.
  for (const auto& [id, kept] : std::vector<std::pair<std::string, bool>>{
           {"ad-8812.retry_2", true}, {"bad id;x", false}}) {
    v1::MatchRequest req;
    req.set_image(image);
    v1::MatchResponse r;
    grpc::ClientContext ctx;
    Authorize(ctx, kPlatformKey);
    ctx.AddMetadata("x-request-id", id);
    ASSERT_TRUE(stub_->Match(&ctx, req, &r).ok());
    EXPECT_EQ(r.request_id() == id, kept) << r.request_id();
  }

  v1::MatchResponse bare;
  ASSERT_TRUE(Match(image, &bare, kPlatformKey, /*evidence=*/false).ok());
  ASSERT_GE(bare.matches_size(), 1);
  EXPECT_FALSE(bare.matches(0).has_evidence());

  v1::MatchResponse none;
  ASSERT_TRUE(Match(Bytes(ads("ad_unrelated_lion.jpg")), &none).ok());
  EXPECT_EQ(none.matches_size(), 0);
}

TEST_F(ServiceTest, BadImagesAndFieldsAreInvalidArgumentNamingTheProblem) {
  StartServer();
  struct Case {
    std::string image;
    std::string message;
  };
  std::vector<Case> cases = {
      {"", "image is empty"},
      {Bytes(testing::FixturePath("truncated.jpg")), "cannot decode jpeg"},
      {Bytes(testing::FixturePath("bomb_30000x30000.png")), "30000x30000"},
      {Bytes(testing::FixturePath("image.svg")),
       "unsupported image format 'svg'"},
      {Bytes(testing::FixturePath("not_an_image.txt")),
       "not a recognised image"},
  };
  for (const Case& c : cases) {
    v1::MatchResponse resp;
    grpc::Status s = Match(c.image, &resp);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << c.message;
    EXPECT_NE(s.error_message().find(c.message), std::string::npos)
        << s.error_message();
  }
  v1::MatchRequest req;
  req.set_image(Bytes(ads("ad_unrelated_lion.jpg")));
  req.mutable_options()->set_max_results(1000);
  v1::MatchResponse resp;
  grpc::ClientContext ctx;
  Authorize(ctx, kPlatformKey);
  grpc::Status s = stub_->Match(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("max_results"), std::string::npos);
  req.mutable_options()->set_max_results(1);
  req.mutable_options()->set_min_score(2);
  grpc::ClientContext ctx2;
  Authorize(ctx2, kPlatformKey);
  s = stub_->Match(&ctx2, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("min_score"), std::string::npos);
  // The service is still up and answering.
  EXPECT_TRUE(Match(Bytes(ads("ad_box_rephotographed.png")), &resp).ok());
}

// The bad-input matrix (tests/bad_inputs.cc) through Match and
// AddReference: a refused file is INVALID_ARGUMENT with the decoder's
// reason; an odd but usable one is matched and added. The service answers
// throughout, and the index holds exactly the accepted files.
TEST_F(ServiceTest, EveryFileOfTheBadInputMatrixGetsItsAnswer) {
  StartServer();
  std::int64_t before = Stats().references();
  std::int64_t accepted = 0;
  for (const auto& in : testing::BadInputs()) {
    SCOPED_TRACE(in.name);
    std::string bytes(in.bytes.begin(), in.bytes.end());
    v1::MatchResponse match;
    grpc::Status m = Match(bytes, &match);
    v1::AddReferenceResponse add;
    grpc::Status a = Add(bytes, &add);
    if (in.code == absl::StatusCode::kOk) {
      EXPECT_TRUE(m.ok()) << m.error_message();
      EXPECT_TRUE(a.ok()) << a.error_message();
      EXPECT_GT(match.image().width(), 0);
      accepted += a.ok() && add.created();
    } else {
      // The empty image is caught before the decoder, in the service's words.
      std::string reason = in.bytes.empty() ? "image is empty" : in.reason;
      for (const grpc::Status& s : {m, a}) {
        EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << s.error_message();
        EXPECT_NE(s.error_message().find(reason), std::string::npos)
            << s.error_message();
      }
    }
  }
  EXPECT_GE(accepted, 8);
  EXPECT_EQ(Stats().references(), before + accepted);
  v1::MatchResponse resp;
  EXPECT_TRUE(Match(Bytes(ads("ad_box_rephotographed.png")), &resp).ok());
}

// 40 MB is over the default message limit: refused by gRPC before any
// handler runs, and the service goes on.
TEST_F(ServiceTest, FortyMegabyteMessageIsResourceExhausted) {
  StartServer();
  v1::MatchResponse resp;
  grpc::Status s = Match(std::string(40 << 20, 'x'), &resp);
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_TRUE(Match(Bytes(ads("ad_box_rephotographed.png")), &resp).ok());
}

TEST_F(ServiceTest, OversizedMessageIsResourceExhausted) {
  config_.max_message_bytes = 1 << 20;
  StartServer();
  v1::MatchResponse resp;
  grpc::Status s = Match(std::string(2 << 20, 'x'), &resp);
  EXPECT_EQ(s.error_code(), grpc::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_TRUE(Match(Bytes(ads("ad_box_rephotographed.png")), &resp).ok());
}

// A key with requests_per_second = 2 and burst 2: two calls at once, the
// third is RESOURCE_EXHAUSTED naming the key, other keys are not held back,
// and the bucket refills with time.
TEST_F(ServiceTest, PerKeyRateLimitIsResourceExhausted) {
  StartServer();
  auto stats = [&](const char* key) { return StatsAs(key); };
  EXPECT_TRUE(stats(kLimitedKey).ok());
  EXPECT_TRUE(stats(kLimitedKey).ok());
  grpc::Status over = stats(kLimitedKey);
  EXPECT_EQ(over.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_NE(over.error_message().find("rate limit: key 'limited' is over its "
                                      "2 requests per second"),
            std::string::npos)
      << over.error_message();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(stats(kPlatformKey).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  EXPECT_TRUE(stats(kLimitedKey).ok());
}

// The key file is read again on SIGHUP (main.cc calls ReloadKeys): a key
// removed from it is revoked and a new one works, without a restart; a
// broken file leaves the keys in force as they were.
TEST_F(ServiceTest, ReloadingTheKeyFileRevokesAndAddsKeys) {
  std::string file = tmp_.Join("keys.toml");
  auto write = [&](const std::vector<std::pair<const char*, const char*>>&
                       name_and_key) {
    std::ofstream out(file);
    for (auto [name, key] : name_and_key) {
      out << "[[key]]\nname = \"" << name << "\"\nsha256 = \""
          << Sha256Hex(key, strlen(key)) << "\"\nroles = [\"platform\"]\n\n";
    }
  };
  write({{"old", kPlatformKey}});
  config_.api_keys_file = file;
  StartServer();
  auto stats = [&](const char* key) { return StatsAs(key).error_code(); };
  const char* kNewKey = "new-secret-5";
  EXPECT_EQ(stats(kPlatformKey), grpc::OK);
  EXPECT_EQ(stats(kNewKey), grpc::UNAUTHENTICATED);

  write({{"new", kNewKey}});
  ASSERT_OK(server_->ReloadKeys());
  EXPECT_EQ(stats(kPlatformKey), grpc::UNAUTHENTICATED);  // revoked
  EXPECT_EQ(stats(kNewKey), grpc::OK);

  std::ofstream(file) << "[[key]]\nname = \"broken\"\n";
  EXPECT_EQ(server_->ReloadKeys().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(stats(kNewKey), grpc::OK);  // the last good file still holds
  EXPECT_NE(log_text_->str().find("api keys not reloaded"), std::string::npos);
}

// Curator and investigator calls are in the audit log (who, what, when,
// request id, outcome), platform calls are not, and the log survives a
// restart: the second server appends to the first one's file.
// The service on a full disk (a small tmpfs): adds (and matches that would
// record a sighting) past the space get RESOURCE_EXHAUSTED naming the full
// disk, read-only matching goes on, failed saves are logged and the service
// stays up, and afterwards the index opens
// and verifies with every acknowledged add. Needs root to mount; skipped
// otherwise.
TEST_F(ServiceTest, OnAFullDiskAddsAreRefusedAndNothingAcknowledgedIsLost) {
  std::string full = tmp_.Join("full");
  testing::SmallTmpfs disk(full, 4);
  if (!disk.mounted()) GTEST_SKIP() << "cannot mount a tmpfs here (needs root)";
  IndexOptions small;
  small.descriptor_factory = "none";  // small FAISS files
  small.features.max_features = 300;
  ASSERT_NE(testing::IndexBundledReferences(full + "/index", nullptr, small),
            nullptr);
  // Leave ~300 KB: a few adds fit, then the disk is full.
  {
    std::error_code ec;
    auto space = fs::space(full, ec);
    ASSERT_FALSE(ec);
    std::ofstream filler(full + "/filler", std::ios::binary);
    std::string block(4096, 'x');
    for (std::uintmax_t n = 0; n + 300 * 1024 < space.available; n += 4096)
      filler.write(block.data(), block.size());
  }
  config_.index_dir = full + "/index";
  config_.save_interval_seconds = 0.2;
  StartServer();

  // A new picture of noise each call: every one is stored.
  auto noise_png = [] {
    cv::Mat noise(480, 640, CV_8UC3);
    cv::randu(noise, 0, 255);
    std::vector<std::uint8_t> png;
    cv::imencode(".png", noise, png);
    return std::string(png.begin(), png.end());
  };
  std::vector<std::string> acknowledged;
  grpc::Status refused;
  for (int i = 0; i < 100 && refused.ok(); ++i) {
    v1::AddReferenceResponse added;
    grpc::Status s = Add(noise_png(), &added);
    if (s.ok()) {
      acknowledged.push_back(added.reference().name());
    } else {
      refused = s;
    }
  }
  ASSERT_FALSE(refused.ok()) << "the disk never filled";
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("full"), std::string::npos)
      << refused.error_message();
  // A Match with an ad context writes its sighting. SQLite's log may still
  // hold a few in the space earlier writes left it (a sighting keeps at
  // most 300 features here); past that they are refused: not
  // kept, so not acknowledged (the platform retries; recording is
  // idempotent).
  int sightings_acknowledged = 0;
  grpc::Status recorded;
  for (int i = 0; i < 60 && recorded.ok(); ++i) {
    v1::MatchResponse m;
    recorded = Match(noise_png(), &m);
    sightings_acknowledged += recorded.ok();
  }
  ASSERT_FALSE(recorded.ok()) << "every sighting was kept";
  EXPECT_EQ(recorded.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << recorded.error_message();
  EXPECT_NE(recorded.error_message().find("full"), std::string::npos)
      << recorded.error_message();
  std::string elephant =
      Bytes(testing::ReferenceImagesPath() + "/references/elephant.jpg");
  v1::MatchResponse match;
  // Without one, matching only reads: it goes on.
  v1::MatchRequest read_only;
  read_only.set_image(elephant);
  grpc::ClientContext ctx;
  Authorize(ctx, kPlatformKey);
  grpc::Status matched = stub_->Match(&ctx, read_only, &match);
  ASSERT_TRUE(matched.ok()) << matched.error_message();
  ASSERT_FALSE(match.matches().empty());
  EXPECT_EQ(match.matches(0).reference().source(), "elephant.jpg");
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  server_->Shutdown(std::chrono::milliseconds(1000));
  server_.reset();
  // Read once the service is gone: its save loop writes the log until then
  // (TSan caught this test reading it earlier).
  EXPECT_NE(log_text_->str().find("saving the index failed"), std::string::npos)
      << log_text_->str();

  fs::remove(full + "/filler");
  auto index = ReferenceIndex::Open(full + "/index");
  ASSERT_OK(index);
  ASSERT_OK((*index)->Verify());
  for (const std::string& name : acknowledged) {
    std::int64_t id = std::stoll(name.substr(name.find('/') + 1));
    EXPECT_OK((*index)->Get(id).status()) << name << " was acknowledged";
  }
  EXPECT_EQ((*index)->Stats().references,
            12 + static_cast<std::int64_t>(acknowledged.size()));
  EXPECT_EQ((*index)->Stats().sighting_images, sightings_acknowledged);
}

TEST_F(ServiceTest, AuditLogRecordsCuratorAndInvestigatorCallsAcrossRestarts) {
  StartServer();
  v1::AddReferenceResponse added;
  ASSERT_TRUE(Add(Bytes(ads("ad_unrelated_lion.jpg")), &added).ok());
  std::string name = added.reference().name();
  v1::MatchResponse match;
  ASSERT_TRUE(Match(Bytes(ads("ad_unrelated_lion.jpg")), &match).ok());
  {
    v1::GetReferenceRequest req;
    req.set_name(name);
    v1::Reference out;
    grpc::ClientContext ctx;
    Authorize(ctx, kInvestigatorKey);
    ctx.AddMetadata("x-request-id", "inv-get-1");
    ASSERT_TRUE(stub_->GetReference(&ctx, req, &out).ok());
  }
  server_->Shutdown(std::chrono::milliseconds(100));
  server_.reset();

  StartServer();  // same index directory, so the same audit.jsonl
  for (const std::string& target : {name, std::string("references/999999")}) {
    v1::RemoveReferenceRequest req;
    req.set_name(target);
    v1::RemoveReferenceResponse out;
    grpc::ClientContext ctx;
    Authorize(ctx, kCuratorKey);
    (void)stub_->RemoveReference(&ctx, req, &out);
  }

  std::string path = tmp_.Join("index/audit.jsonl");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // who did what is not for everyone
  std::vector<nlohmann::json> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 4u);  // the platform's Match is not audited
  EXPECT_EQ(lines[0]["rpc"], "AddReference");
  EXPECT_EQ(lines[0]["key"], "ngo-curator");
  EXPECT_EQ(lines[0]["roles"], "curator");
  EXPECT_EQ(lines[0]["target"], name);
  EXPECT_EQ(lines[0]["code"], "OK");
  EXPECT_EQ(lines[1]["rpc"], "GetReference");
  EXPECT_EQ(lines[1]["key"], "investigator");
  EXPECT_EQ(lines[1]["request_id"], "inv-get-1");
  EXPECT_EQ(lines[2]["rpc"], "RemoveReference");
  EXPECT_EQ(lines[2]["target"], name);
  EXPECT_EQ(lines[2]["code"], "OK");
  EXPECT_EQ(lines[3]["target"], "references/999999");
  EXPECT_EQ(lines[3]["code"], "NOT_FOUND");
  for (const auto& l : lines) {
    EXPECT_EQ(l["time"].get<std::string>().size(), 24u) << l;  // ...00.000Z
    EXPECT_FALSE(l["request_id"].get<std::string>().empty());
  }
}

// Every RPC x every role x (no key, wrong key, revoked key, right key),
// against the role table in docs/API.md. A call the role allows may still
// fail on its (minimal) request, but never as UNAUTHENTICATED or
// PERMISSION_DENIED.
TEST_F(ServiceTest, EveryRpcByEveryRoleAndCredential) {
  // The suite's keys plus one to revoke, in a file of this test's own.
  std::string file = tmp_.Join("keys.toml");
  fs::copy_file(config_.api_keys_file, file);
  const char* kRevokedKey = "revoked-secret-6";
  auto append_revoked = [&] {
    std::ofstream(file, std::ios::app)
        << "[[key]]\nname = \"to-revoke\"\nsha256 = \""
        << Sha256Hex(kRevokedKey, strlen(kRevokedKey))
        << "\"\nroles = [\"platform\", \"curator\", \"investigator\"]\n";
  };
  append_revoked();
  config_.api_keys_file = file;
  StartServer();
  // The revoked key works until it is taken out of the file and reloaded.
  ASSERT_TRUE(StatsAs(kRevokedKey).ok());
  fs::copy_file(suite_dir_->Join("keys.toml"), file,
                fs::copy_options::overwrite_existing);
  ASSERT_OK(server_->ReloadKeys());

  std::string image = Bytes(ads("ad_unrelated_lion.jpg"));
  using Rpc = std::function<grpc::Status(const char*)>;
  std::vector<std::pair<std::string, Rpc>> rpcs = {
      {"Match",
       [&](const char* key) {
         v1::MatchResponse r;
         return Match(image, &r, key);
       }},
      {"StreamMatch",
       [&](const char* key) {
         grpc::ClientContext ctx;
         Authorize(ctx, key);
         auto stream = stub_->StreamMatch(&ctx);
         v1::StreamMatchRequest req;
         req.set_correlation_id("1");
         req.mutable_request()->set_image(image);
         stream->Write(req);
         stream->WritesDone();
         v1::StreamMatchResponse r;
         while (stream->Read(&r)) {
         }
         return stream->Finish();
       }},
      {"AddReference",
       [&](const char* key) {
         v1::AddReferenceResponse r;
         return Add(image, &r, key);
       }},
      {"RemoveReference",
       [&](const char* key) { return Remove("references/999999", key); }},
      {"GetReference",
       [&](const char* key) {
         v1::GetReferenceRequest req;
         req.set_name("references/1");
         v1::Reference r;
         grpc::ClientContext ctx;
         Authorize(ctx, key);
         return stub_->GetReference(&ctx, req, &r);
       }},
      {"ListReferences",
       [&](const char* key) {
         v1::ListReferencesRequest req;
         v1::ListReferencesResponse r;
         grpc::ClientContext ctx;
         Authorize(ctx, key);
         return stub_->ListReferences(&ctx, req, &r);
       }},
      {"GetIndexStats", [&](const char* key) { return StatsAs(key); }},
  };
  // The sighting RPCs, each with a request that passes validation.
  auto rpc = [&](const char* name, auto method, auto request, auto response) {
    rpcs.emplace_back(name, [this, method, request, response](const char* key) {
      auto out = response;
      return Ask(method, request, &out, key);
    });
  };
  v1::GetSightingRequest get_sighting;
  get_sighting.set_name("sightings/1");
  rpc("GetSighting", &v1::Spoor::Stub::GetSighting, get_sighting,
      v1::Sighting());
  rpc("ListSightings", &v1::Spoor::Stub::ListSightings,
      v1::ListSightingsRequest(), v1::ListSightingsResponse());
  v1::GetAdHistoryRequest history;
  history.set_platform("p");
  history.set_ad_id("1");
  rpc("GetAdHistory", &v1::Spoor::Stub::GetAdHistory, history, v1::AdHistory());
  v1::GetSellerLinksRequest seller;
  seller.set_platform("p");
  seller.set_seller_id("s");
  rpc("GetSellerLinks", &v1::Spoor::Stub::GetSellerLinks, seller,
      v1::GetSellerLinksResponse());
  rpc("ListClusters", &v1::Spoor::Stub::ListClusters, v1::ListClustersRequest(),
      v1::ListClustersResponse());
  v1::GetClusterRequest cluster;
  cluster.set_name("clusters/1");
  rpc("GetCluster", &v1::Spoor::Stub::GetCluster, cluster, v1::Cluster());
  v1::GetReferenceSightingsRequest ref_sightings;
  ref_sightings.set_name("references/1");
  rpc("GetReferenceSightings", &v1::Spoor::Stub::GetReferenceSightings,
      ref_sightings, v1::GetReferenceSightingsResponse());
  v1::GetSightingThumbnailRequest thumbnail;
  thumbnail.set_name("sightings/1");
  rpc("GetSightingThumbnail", &v1::Spoor::Stub::GetSightingThumbnail, thumbnail,
      v1::SightingThumbnail());
  v1::ReviewLinkRequest review;
  review.set_name("links/1");
  review.set_review(v1::CONFIRMED);
  rpc("ReviewLink", &v1::Spoor::Stub::ReviewLink, review, v1::Link());
  v1::DeleteSightingsRequest del;
  del.set_platform("p");
  del.set_ad_id("none");
  rpc("DeleteSightings", &v1::Spoor::Stub::DeleteSightings, del,
      v1::DeleteSightingsResponse());
  // docs/API.md's table: which roles each RPC admits.
  std::map<std::string, std::set<std::string>> allowed = {
      {"Match", {"platform", "investigator"}},
      {"StreamMatch", {"platform", "investigator"}},
      {"AddReference", {"curator"}},
      {"RemoveReference", {"curator"}},
      {"GetReference", {"curator", "investigator"}},
      {"ListReferences", {"curator", "investigator"}},
      {"GetIndexStats", {"platform", "curator", "investigator"}},
      {"GetSighting", {"investigator", "curator"}},
      {"ListSightings", {"investigator", "curator"}},
      {"GetAdHistory", {"investigator", "curator"}},
      {"GetSellerLinks", {"investigator", "curator"}},
      {"ListClusters", {"investigator", "curator"}},
      {"GetCluster", {"investigator", "curator"}},
      {"GetReferenceSightings", {"investigator", "curator"}},
      {"GetSightingThumbnail", {"investigator", "curator"}},
      {"ReviewLink", {"curator"}},
      {"DeleteSightings", {"platform", "curator"}},
  };
  std::vector<std::pair<std::string, const char*>> roles = {
      {"platform", kPlatformKey},
      {"curator", kCuratorKey},
      {"investigator", kInvestigatorKey}};
  int cells = 0;
  for (const auto& [rpc, call] : rpcs) {
    SCOPED_TRACE(rpc);
    for (const char* bad :
         {static_cast<const char*>(nullptr), "wrong-key", kRevokedKey}) {
      grpc::Status s = call(bad);
      EXPECT_EQ(s.error_code(), grpc::UNAUTHENTICATED)
          << (bad ? bad : "no key") << ": " << s.error_message();
      ++cells;
    }
    for (const auto& [role, key] : roles) {
      grpc::Status s = call(key);
      if (allowed[rpc].count(role)) {
        EXPECT_NE(s.error_code(), grpc::UNAUTHENTICATED) << role;
        EXPECT_NE(s.error_code(), grpc::PERMISSION_DENIED)
            << role << ": " << s.error_message();
      } else {
        EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED) << role;
        EXPECT_NE(s.error_message().find(rpc), std::string::npos)
            << s.error_message();
      }
      ++cells;
    }
  }
  EXPECT_EQ(cells, 17 * 6);
}

TEST_F(ServiceTest, KeysAndRolesAreEnforced) {
  StartServer();
  std::string image = Bytes(ads("ad_box_rephotographed.png"));
  v1::MatchResponse resp;
  grpc::Status s = Match(image, &resp, nullptr);
  EXPECT_EQ(s.error_code(), grpc::UNAUTHENTICATED);
  EXPECT_NE(s.error_message().find("authorization"), std::string::npos);
  EXPECT_EQ(Match(image, &resp, "not-a-key").error_code(),
            grpc::UNAUTHENTICATED);
  s = Match(image, &resp, kCuratorKey);
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED);
  EXPECT_NE(s.error_message().find("platform or investigator"),
            std::string::npos);
  EXPECT_TRUE(Match(image, &resp, kInvestigatorKey).ok());

  v1::AddReferenceResponse added;
  EXPECT_EQ(Add(image, &added, kPlatformKey).error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_EQ(Add(image, &added, kInvestigatorKey).error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_EQ(Remove("references/1", kInvestigatorKey).error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_EQ(Remove("references/1", kPlatformKey).error_code(),
            grpc::PERMISSION_DENIED);

  v1::ListReferencesRequest list;
  v1::ListReferencesResponse page;
  grpc::ClientContext ctx;
  Authorize(ctx, kPlatformKey);
  EXPECT_EQ(stub_->ListReferences(&ctx, list, &page).error_code(),
            grpc::PERMISSION_DENIED);
  grpc::ClientContext ctx2;
  Authorize(ctx2, kInvestigatorKey);
  EXPECT_TRUE(stub_->ListReferences(&ctx2, list, &page).ok());
  EXPECT_EQ(Stats().references(), 12);
}

TEST_F(ServiceTest, ReferencesCanBeListedFilteredFetchedAndAddedOnce) {
  StartServer();
  std::vector<std::string> names;
  std::string token;
  int pages = 0;
  do {
    v1::ListReferencesRequest req;
    req.set_page_size(5);
    req.set_page_token(token);
    v1::ListReferencesResponse resp;
    grpc::ClientContext ctx;
    Authorize(ctx, kCuratorKey);
    ASSERT_TRUE(stub_->ListReferences(&ctx, req, &resp).ok());
    for (const auto& r : resp.references()) names.push_back(r.name());
    token = resp.next_page_token();
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(names.size(), 12u);

  v1::ListReferencesRequest filtered;
  filtered.set_filter("item_type=other");
  v1::ListReferencesResponse others;
  grpc::ClientContext fctx;
  Authorize(fctx, kCuratorKey);
  ASSERT_TRUE(stub_->ListReferences(&fctx, filtered, &others).ok());
  ASSERT_EQ(others.references_size(), 2);
  EXPECT_EQ(others.references(0).source(), "box.png");

  for (const char* bad : {"colour=red", "no-equals-sign"}) {
    v1::ListReferencesRequest req;
    req.set_filter(bad);
    v1::ListReferencesResponse resp;
    grpc::ClientContext ctx;
    Authorize(ctx, kCuratorKey);
    EXPECT_EQ(stub_->ListReferences(&ctx, req, &resp).error_code(),
              grpc::INVALID_ARGUMENT)
        << bad;
  }
  v1::ListReferencesRequest bad_token;
  bad_token.set_page_token("garbage");
  v1::ListReferencesResponse resp;
  grpc::ClientContext tctx;
  Authorize(tctx, kCuratorKey);
  EXPECT_EQ(stub_->ListReferences(&tctx, bad_token, &resp).error_code(),
            grpc::INVALID_ARGUMENT);

  v1::GetReferenceRequest get;
  get.set_name(names[1]);
  v1::Reference ref;
  grpc::ClientContext gctx;
  Authorize(gctx, kInvestigatorKey);
  ASSERT_TRUE(stub_->GetReference(&gctx, get, &ref).ok());
  EXPECT_EQ(ref.name(), names[1]);
  EXPECT_EQ(ref.sha256().size(), 64u);
  for (const char* name : {"references/999", "references/x", "refs/1"}) {
    get.set_name(name);
    grpc::ClientContext ctx;
    Authorize(ctx, kInvestigatorKey);
    grpc::Status s = stub_->GetReference(&ctx, get, &ref);
    EXPECT_EQ(s.error_code(), std::string(name) == "references/999"
                                  ? grpc::NOT_FOUND
                                  : grpc::INVALID_ARGUMENT)
        << name;
  }

  std::string lion = Bytes(ads("ad_unrelated_lion.jpg"));
  v1::AddReferenceResponse first, second;
  ASSERT_TRUE(Add(lion, &first).ok());
  EXPECT_TRUE(first.created());
  EXPECT_EQ(first.reference().labels().item_type(), "ivory");
  ASSERT_TRUE(Add(lion, &second).ok());
  EXPECT_FALSE(second.created());
  EXPECT_EQ(second.reference().name(), first.reference().name());
  v1::AddReferenceResponse bad;
  EXPECT_EQ(Add(lion, &bad, kCuratorKey, "tusk").error_code(),
            grpc::INVALID_ARGUMENT);
  EXPECT_EQ(
      Add(Bytes(testing::FixturePath("truncated.png")), &bad).error_code(),
      grpc::INVALID_ARGUMENT);
  EXPECT_EQ(Add("", &bad).error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(Stats().references(), 13);
  EXPECT_EQ(Remove("references/999").error_code(), grpc::NOT_FOUND);
}

TEST_F(ServiceTest, AddThenMatchAndRemoveThenNoMatchWhileOthersMatch) {
  StartServer();
  std::atomic<bool> stop{false};
  std::atomic<int> background_ok{0}, background_bad{0};
  std::string collage = Bytes(ads("ad_collage_tiger_gorilla.jpg"));
  std::vector<std::thread> matchers;
  for (int t = 0; t < 2; ++t) {
    matchers.emplace_back([&] {
      auto stub = v1::Spoor::NewStub(channel_);
      while (!stop) {
        v1::MatchRequest req;
        req.set_image(collage);
        v1::MatchResponse resp;
        grpc::ClientContext ctx;
        Authorize(ctx, kPlatformKey);
        grpc::Status s = stub->Match(&ctx, req, &resp);
        bool right = s.ok() && resp.matches_size() == 2;
        (right ? background_ok : background_bad)++;
      }
    });
  }
  std::string lion = Bytes(ads("ad_unrelated_lion.jpg"));
  v1::MatchResponse before;
  ASSERT_TRUE(Match(lion, &before).ok());
  EXPECT_EQ(before.matches_size(), 0);

  v1::AddReferenceResponse added;
  ASSERT_TRUE(Add(lion, &added).ok());
  v1::MatchResponse after_add;
  ASSERT_TRUE(Match(lion, &after_add).ok());
  ASSERT_GE(after_add.matches_size(), 1);
  EXPECT_EQ(after_add.matches(0).reference().name(), added.reference().name());
  EXPECT_EQ(after_add.matches(0).verdict(), v1::EXACT);

  ASSERT_TRUE(Remove(added.reference().name()).ok());
  v1::MatchResponse after_remove;
  ASSERT_TRUE(Match(lion, &after_remove).ok());
  EXPECT_EQ(after_remove.matches_size(), 0);
  stop = true;
  for (auto& t : matchers) t.join();
  EXPECT_GT(background_ok.load(), 0);
  EXPECT_EQ(background_bad.load(), 0);

  // Persisted: a second reference added now survives a restart.
  v1::AddReferenceResponse kept;
  ASSERT_TRUE(Add(Bytes(ads("ad_unrelated_fruits.jpg")), &kept).ok());
  server_.reset();
  StartServer();
  EXPECT_EQ(Stats().references(), 13);
  v1::MatchResponse again;
  ASSERT_TRUE(Match(Bytes(ads("ad_unrelated_fruits.jpg")), &again).ok());
  ASSERT_GE(again.matches_size(), 1);
  EXPECT_EQ(again.matches(0).reference().name(), kept.reference().name());
  ASSERT_TRUE(Match(lion, &again).ok());
  EXPECT_EQ(again.matches_size(), 0);
  auto index = ReferenceIndex::Open(config_.index_dir);
  server_.reset();
  index = ReferenceIndex::Open(config_.index_dir);
  ASSERT_OK(index);
  EXPECT_FALSE((*index)->Stats().rebuilt_on_open);  // saved at shutdown
  ASSERT_OK((*index)->Verify());
}

std::string OpenCvPhoto(const std::string& name, double x0, double y0,
                        double x1, double y1, bool mirror = false) {
  cv::Mat m = testing::Crop(testing::LoadBgr(testing::kOpenCvData + "/" + name),
                            x0, y0, x1, y1);
  if (mirror) cv::flip(m, m, 1);
  auto bytes = testing::EncodeJpeg(m, 75);
  return std::string(bytes.begin(), bytes.end());
}

TEST_F(ServiceTest, ARelistIsAnsweredWithTheEarlierAdAndInvestigatorsSeeIt) {
  StartServer();
  v1::MatchResponse first =
      MatchAd(OpenCvPhoto("aero1.jpg", 0, 0, 0.8, 0.9), "a1", "alice");
  EXPECT_EQ(first.earlier_sightings_size(), 0);
  EXPECT_EQ(first.sighting().rfind("sightings/", 0), 0u);
  v1::MatchResponse relist =
      MatchAd(OpenCvPhoto("aero1.jpg", 0.15, 0.1, 1, 1, true), "b2", "bob");
  EXPECT_EQ(relist.matches_size(), 0);  // no reference shows it
  ASSERT_EQ(relist.earlier_sightings_size(), 1);
  const v1::EarlierSighting& e = relist.earlier_sightings(0);
  EXPECT_EQ(e.sighting().name(), first.sighting());
  EXPECT_EQ(e.sighting().ad().seller_id(), "alice");
  EXPECT_EQ(e.sighting().ad().ad_id(), "a1");
  EXPECT_EQ(e.sighting().ad().url(), "https://bazaar.example/a1");
  EXPECT_EQ(e.sighting().ad().listing_time().seconds(), 1793000000);
  EXPECT_TRUE(e.sighting().has_seen_time());
  EXPECT_EQ(e.link().older(), first.sighting());
  EXPECT_EQ(e.link().newer(), relist.sighting());
  EXPECT_GE(e.link().score(), 0.5);
  EXPECT_EQ(e.link().verdict(), v1::MODIFIED_COPY);
  EXPECT_GT(e.link().evidence().inliers(), 15);
  EXPECT_GT(e.link().evidence().query_box().width(), 0);

  // The same ad sent again is not its own earlier sighting.
  v1::MatchResponse again =
      MatchAd(OpenCvPhoto("aero1.jpg", 0.15, 0.1, 1, 1, true), "b2", "bob");
  EXPECT_EQ(again.sighting(), relist.sighting());
  ASSERT_EQ(again.earlier_sightings_size(), 1);
  EXPECT_EQ(again.earlier_sightings(0).sighting().ad().ad_id(), "a1");

  v1::Sighting got;
  v1::GetSightingRequest get;
  get.set_name(relist.sighting());
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetSighting, get, &got).ok());
  EXPECT_EQ(got.ad().title(), "Carved tusk b2");
  EXPECT_EQ(got.image().rfind("references/", 0), 0u);

  v1::ListSightingsRequest list;
  list.set_seller_id("alice");
  v1::ListSightingsResponse listed;
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::ListSightings, list, &listed).ok());
  ASSERT_EQ(listed.sightings_size(), 1);
  EXPECT_EQ(listed.sightings(0).name(), first.sighting());
  list.Clear();
  list.set_page_size(1);
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::ListSightings, list, &listed).ok());
  ASSERT_EQ(listed.sightings_size(), 1);
  list.set_page_token(listed.next_page_token());
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::ListSightings, list, &listed).ok());
  ASSERT_EQ(listed.sightings_size(), 1);
  EXPECT_EQ(listed.sightings(0).name(), relist.sighting());
  EXPECT_TRUE(listed.next_page_token().empty());

  v1::GetAdHistoryRequest history;
  history.set_platform("bazaar");
  history.set_ad_id("b2");
  v1::AdHistory h;
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetAdHistory, history, &h).ok());
  EXPECT_EQ(h.sightings_size(), 1);
  ASSERT_EQ(h.links_size(), 1);
  history.set_ad_id("nope");
  EXPECT_EQ(Ask(&v1::Spoor::Stub::GetAdHistory, history, &h).error_code(),
            grpc::NOT_FOUND);

  v1::GetSellerLinksRequest seller;
  seller.set_platform("bazaar");
  seller.set_seller_id("alice");
  v1::GetSellerLinksResponse linked;
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetSellerLinks, seller, &linked).ok());
  ASSERT_EQ(linked.sellers_size(), 1);
  EXPECT_EQ(linked.sellers(0).seller_id(), "bob");
  ASSERT_EQ(linked.sellers(0).links_size(), 1);
  std::string link = linked.sellers(0).links(0).name();

  v1::ListClustersResponse clusters;
  ASSERT_TRUE(
      Ask(&v1::Spoor::Stub::ListClusters, v1::ListClustersRequest(), &clusters)
          .ok());
  ASSERT_EQ(clusters.clusters_size(), 1);
  EXPECT_EQ(clusters.clusters(0).sellers_size(), 2);
  EXPECT_EQ(clusters.clusters(0).sightings_size(), 2);
  v1::ListClustersRequest three_sellers;
  three_sellers.set_min_sellers(3);
  ASSERT_TRUE(
      Ask(&v1::Spoor::Stub::ListClusters, three_sellers, &clusters).ok());
  EXPECT_EQ(clusters.clusters_size(), 0);
  // A cluster is found by any of its sightings' ids.
  v1::GetClusterRequest by_newer;
  by_newer.set_name("clusters/" + relist.sighting().substr(10));
  v1::Cluster cluster;
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetCluster, by_newer, &cluster).ok());
  EXPECT_EQ(cluster.name(), "clusters/" + first.sighting().substr(10));

  // Investigators read; curators review. A rejected link links nobody.
  v1::ReviewLinkRequest review;
  review.set_name(link);
  review.set_review(v1::REJECTED);
  review.set_note("the same stock aerial photo");
  v1::Link reviewed;
  EXPECT_EQ(Ask(&v1::Spoor::Stub::ReviewLink, review, &reviewed).error_code(),
            grpc::PERMISSION_DENIED);
  ASSERT_TRUE(
      Ask(&v1::Spoor::Stub::ReviewLink, review, &reviewed, kCuratorKey).ok());
  EXPECT_EQ(reviewed.review(), v1::REJECTED);
  EXPECT_EQ(reviewed.reviewer(), "ngo-curator");
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetSellerLinks, seller, &linked).ok());
  EXPECT_EQ(linked.sellers_size(), 0);
  review.set_review(v1::LINK_REVIEW_UNSPECIFIED);
  EXPECT_EQ(Ask(&v1::Spoor::Stub::ReviewLink, review, &reviewed, kCuratorKey)
                .error_code(),
            grpc::INVALID_ARGUMENT);

  v1::IndexStats stats = Stats();
  EXPECT_EQ(stats.sightings(), 2);
  EXPECT_EQ(stats.links(), 1);
  EXPECT_EQ(stats.sellers(), 2);
  EXPECT_EQ(stats.sighting_images(), 2);
  EXPECT_EQ(stats.references(), 12);  // ad images are not references
  ASSERT_EQ(stats.review_precision_size(), 1);
  EXPECT_EQ(stats.review_precision(0).rejected(), 1);
  EXPECT_EQ(stats.review_precision(0).precision(), 0);

  // Bad names and tokens name the problem.
  get.set_name("sightings/x");
  grpc::Status bad = Ask(&v1::Spoor::Stub::GetSighting, get, &got);
  EXPECT_EQ(bad.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(),
            "sighting name 'sightings/x' is not 'sightings/<id>'");
  get.set_name("sightings/99999");
  EXPECT_EQ(Ask(&v1::Spoor::Stub::GetSighting, get, &got).error_code(),
            grpc::NOT_FOUND);

  // Restarted, it all is still there.
  server_.reset();
  StartServer();
  get.set_name(relist.sighting());
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetSighting, get, &got).ok());
  EXPECT_EQ(got.ad().seller_id(), "bob");
  history.set_ad_id("b2");
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetAdHistory, history, &h).ok());
  ASSERT_EQ(h.links_size(), 1);
  EXPECT_EQ(h.links(0).review(), v1::REJECTED);
  EXPECT_EQ(h.links(0).review_note(), "the same stock aerial photo");
  v1::MatchResponse third =
      MatchAd(OpenCvPhoto("aero1.jpg", 0.05, 0, 0.95, 1), "c3", "carl");
  EXPECT_EQ(third.earlier_sightings_size(), 2);
}

// `name` from opencv-doc with a phone number stamped on it twice.
std::string WithPhone(const std::string& name, const std::string& number) {
  cv::Mat m = testing::LoadBgr(testing::kOpenCvData + "/" + name, 800);
  auto bytes = testing::EncodeJpeg(testing::AddText(m, number), 88);
  return std::string(bytes.begin(), bytes.end());
}

TEST_F(ServiceTest, TheSamePhoneNumberInTwoSellersPhotosLinksThem) {
  StartServer();
  v1::MatchResponse first =
      MatchAd(WithPhone("leuvenA.jpg", "+33 6 12 34 56 78"), "p1", "paul");
  EXPECT_GT(first.timings().text_ms(), 0);
  v1::MatchResponse second =
      MatchAd(WithPhone("aero3.jpg", "06 12 34 56 78"), "q2", "quinn");
  ASSERT_EQ(second.earlier_sightings_size(), 1);
  const v1::Link& link = second.earlier_sightings(0).link();
  EXPECT_EQ(link.kind(), v1::Link::CONTACT);
  EXPECT_EQ(link.contact(), "phone:612345678");
  EXPECT_EQ(link.older(), first.sighting());
  EXPECT_LT(link.score(), 0.6);  // weaker than a picture match

  v1::GetSightingRequest get;
  get.set_name(second.sighting());
  v1::Sighting got;
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetSighting, get, &got).ok());
  ASSERT_EQ(got.contacts_size(), 1);
  EXPECT_EQ(got.contacts(0).kind(), v1::Contact::PHONE);
  EXPECT_EQ(got.contacts(0).value(), "612345678");
  EXPECT_GT(got.contacts(0).box().width(), 0);

  v1::GetSellerLinksRequest seller;
  seller.set_platform("bazaar");
  seller.set_seller_id("paul");
  v1::GetSellerLinksResponse linked;
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetSellerLinks, seller, &linked).ok());
  ASSERT_EQ(linked.sellers_size(), 1);
  EXPECT_EQ(linked.sellers(0).seller_id(), "quinn");

  // With text reading off there are no contact links, and nothing keeps
  // the stamped digits themselves from linking different photos as a
  // picture match.
  server_.reset();
  config_.read_sighting_text = false;
  StartServer();
  v1::MatchResponse third =
      MatchAd(WithPhone("box_in_scene.png", "06 12 34 56 78"), "r3", "rose");
  EXPECT_EQ(third.timings().text_ms(), 0);
  for (const v1::EarlierSighting& e : third.earlier_sightings())
    EXPECT_EQ(e.link().kind(), v1::Link::MATCH);
  get.set_name(third.sighting());
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetSighting, get, &got).ok());
  EXPECT_EQ(got.contacts_size(), 0);
}

TEST_F(ServiceTest, DeleteSightingsRemovesTheAdImageFromTheIndex) {
  StartServer();
  std::string photo = OpenCvPhoto("leuvenA.jpg", 0, 0, 1, 1);
  v1::MatchResponse a = MatchAd(photo, "a1", "alice");
  MatchAd(OpenCvPhoto("baboon.jpg", 0, 0, 1, 1), "b1", "bob");
  ASSERT_EQ(MatchAd(photo, "x1", "xavier").earlier_sightings_size(), 1);
  EXPECT_EQ(Stats().sighting_images(), 2);

  v1::DeleteSightingsRequest del;
  del.set_platform("bazaar");
  del.set_seller_id("alice");
  v1::DeleteSightingsResponse deleted;
  // Investigators read only; the platform (or a curator) deletes.
  EXPECT_EQ(Ask(&v1::Spoor::Stub::DeleteSightings, del, &deleted).error_code(),
            grpc::PERMISSION_DENIED);
  ASSERT_TRUE(
      Ask(&v1::Spoor::Stub::DeleteSightings, del, &deleted, kPlatformKey).ok());
  EXPECT_EQ(deleted.deleted_sightings(), 1);
  EXPECT_EQ(deleted.deleted_images(), 0);  // xavier's ad still shows it
  del.set_seller_id("xavier");
  ASSERT_TRUE(
      Ask(&v1::Spoor::Stub::DeleteSightings, del, &deleted, kPlatformKey).ok());
  EXPECT_EQ(deleted.deleted_images(), 1);
  EXPECT_EQ(Stats().sighting_images(), 1);
  v1::GetSightingRequest get;
  get.set_name(a.sighting());
  v1::Sighting got;
  EXPECT_EQ(Ask(&v1::Spoor::Stub::GetSighting, get, &got).error_code(),
            grpc::NOT_FOUND);
  // The image no longer matches anything.
  v1::MatchRequest plain;
  plain.set_image(photo);
  v1::MatchResponse after;
  grpc::ClientContext ctx;
  Authorize(ctx, kPlatformKey);
  ASSERT_TRUE(stub_->Match(&ctx, plain, &after).ok());
  EXPECT_EQ(after.earlier_sightings_size(), 0);
  EXPECT_EQ(after.matches_size(), 0);

  del.clear_seller_id();
  grpc::Status bad =
      Ask(&v1::Spoor::Stub::DeleteSightings, del, &deleted, kPlatformKey);
  EXPECT_EQ(bad.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(),
            "deleting sightings needs exactly one of ad_id and seller_id");
  server_.reset();
  auto index = ReferenceIndex::Open(config_.index_dir);
  ASSERT_OK(index);
  ASSERT_OK((*index)->Verify());
}

TEST_F(ServiceTest, RetentionDeletesAPlatformsOldSightings) {
  config_.sighting_retention_days = {{"shortlived", 1.0 / 86400}};
  config_.save_interval_seconds = 0.5;
  StartServer();
  // Both were recorded (a slow build, TSan's, may take past the second
  // before a count could see both, so each answer is checked instead).
  EXPECT_FALSE(MatchAd(OpenCvPhoto("leuvenA.jpg", 0, 0, 1, 1), "a1", "alice",
                       "shortlived")
                   .sighting()
                   .empty());
  EXPECT_FALSE(
      MatchAd(OpenCvPhoto("baboon.jpg", 0, 0, 1, 1), "b1", "bob", "keeps")
          .sighting()
          .empty());
  // Past one second and a save tick or two.
  for (int i = 0; i < 40 && Stats().sightings() > 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  v1::ListSightingsResponse left;
  ASSERT_TRUE(
      Ask(&v1::Spoor::Stub::ListSightings, v1::ListSightingsRequest(), &left)
          .ok());
  ASSERT_EQ(left.sightings_size(), 1);
  EXPECT_EQ(left.sightings(0).ad().platform(), "keeps");
  EXPECT_EQ(Stats().sighting_images(), 1);
}

TEST_F(ServiceTest, AReferenceAddedLaterIsLinkedBackToEarlierAds) {
  StartServer();
  v1::MatchResponse ad =
      MatchAd(OpenCvPhoto("home.jpg", 0.1, 0.1, 0.9, 0.9), "h1", "hana");
  v1::AddReferenceRequest add;
  add.set_image(OpenCvPhoto("home.jpg", 0, 0, 1, 1));
  add.set_source("case-photo.jpg");
  add.set_bank("case-2026-014");
  add.mutable_labels()->set_item_type("ivory");
  v1::AddReferenceResponse added;
  ASSERT_TRUE(
      Ask(&v1::Spoor::Stub::AddReference, add, &added, kCuratorKey).ok());
  EXPECT_EQ(added.reference().bank(), "case-2026-014");
  ASSERT_EQ(added.matched_sightings_size(), 1);
  EXPECT_EQ(added.matched_sightings(0).name(), ad.sighting());
  ASSERT_EQ(added.matched_sightings(0).matches_size(), 1);
  EXPECT_EQ(added.matched_sightings(0).matches(0).reference().name(),
            added.reference().name());

  v1::GetReferenceSightingsRequest where;
  where.set_name(added.reference().name());
  v1::GetReferenceSightingsResponse seen;
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::GetReferenceSightings, where, &seen).ok());
  ASSERT_EQ(seen.sightings_size(), 1);
  EXPECT_EQ(seen.sightings(0).ad().seller_id(), "hana");

  // Sightings of one bank, and matches of one bank only.
  v1::ListSightingsRequest in_bank;
  in_bank.set_bank("case-2026-014");
  v1::ListSightingsResponse listed;
  ASSERT_TRUE(Ask(&v1::Spoor::Stub::ListSightings, in_bank, &listed).ok());
  EXPECT_EQ(listed.sightings_size(), 1);
  v1::MatchRequest only;
  only.set_image(OpenCvPhoto("home.jpg", 0.05, 0.05, 0.95, 0.95));
  only.mutable_options()->add_banks("case-2026-014");
  v1::MatchResponse found;
  grpc::ClientContext ctx;
  Authorize(ctx, kPlatformKey);
  ASSERT_TRUE(stub_->Match(&ctx, only, &found).ok());
  ASSERT_EQ(found.matches_size(), 1);
  EXPECT_EQ(found.matches(0).reference().bank(), "case-2026-014");
  EXPECT_EQ(found.earlier_sightings_size(), 0);  // sightings not searched
  only.mutable_options()->set_banks(0, "Not A Bank");
  grpc::ClientContext bad_ctx;
  Authorize(bad_ctx, kPlatformKey);
  grpc::Status bad = stub_->Match(&bad_ctx, only, &found);
  EXPECT_EQ(bad.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message().rfind("options.banks: ", 0), 0u);
  add.set_bank("sightings");
  EXPECT_EQ(Ask(&v1::Spoor::Stub::AddReference, add, &added, kCuratorKey)
                .error_code(),
            grpc::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, StreamMatchAnswersInOrderWithCorrelationIds) {
  StartServer();
  grpc::ClientContext ctx;
  Authorize(ctx, kPlatformKey);
  auto stream = stub_->StreamMatch(&ctx);
  std::vector<std::pair<std::string, std::string>> items = {
      {"a", ads("ad_box_rephotographed.png")},
      {"b", testing::FixturePath("truncated.jpg")},
      {"c", ads("ad_collage_tiger_gorilla.jpg")},
      {"d", ads("ad_unrelated_lion.jpg")},
      {"e", ads("ad_wall_other_angle.png")}};
  std::thread writer([&] {
    for (const auto& [id, path] : items) {
      v1::StreamMatchRequest req;
      req.set_correlation_id(id);
      req.mutable_request()->set_image(Bytes(path));
      stream->Write(req);
    }
    stream->WritesDone();
  });
  std::vector<v1::StreamMatchResponse> answers;
  v1::StreamMatchResponse resp;
  while (stream->Read(&resp)) answers.push_back(resp);
  writer.join();
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(answers.size(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(answers[i].correlation_id(), items[i].first);
  }
  ASSERT_TRUE(answers[0].has_response());
  ASSERT_GE(answers[0].response().matches_size(), 1);
  EXPECT_EQ(answers[0].response().matches(0).reference().source(), "box.png");
  ASSERT_TRUE(answers[1].has_error());
  EXPECT_EQ(answers[1].error().code(), grpc::INVALID_ARGUMENT);
  EXPECT_NE(answers[1].error().message().find("cannot decode"),
            std::string::npos);
  EXPECT_EQ(answers[2].response().matches_size(), 2);
  EXPECT_EQ(answers[3].response().matches_size(), 0);
  ASSERT_GE(answers[4].response().matches_size(), 1);
  EXPECT_EQ(answers[4].response().matches(0).reference().source(), "graf1.jpg");
}

TEST_F(ServiceTest, ParallelClientsGetTheSameAnswersAsSerialCalls) {
  StartServer();
  std::vector<std::string> images = {
      Bytes(ads("ad_box_rephotographed.png")),
      Bytes(ads("ad_collage_tiger_gorilla.jpg")),
      Bytes(ads("ad_screenshot_rotated_rhino.png")),
      Bytes(ads("ad_unrelated_fruits.jpg"))};
  auto answer = [&](v1::Spoor::Stub& stub, const std::string& image) {
    v1::MatchRequest req;
    req.set_image(image);
    v1::MatchResponse resp;
    grpc::ClientContext ctx;
    Authorize(ctx, kPlatformKey);
    grpc::Status s = stub.Match(&ctx, req, &resp);
    std::string out = s.ok() ? "" : "error";
    for (const auto& m : resp.matches())
      out += m.reference().name() + ":" + std::to_string(m.score()) + " ";
    return out;
  };
  std::vector<std::string> serial;
  for (const auto& image : images) serial.push_back(answer(*stub_, image));
  constexpr int kClients = 8;
  std::vector<std::vector<std::string>> parallel(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto stub = v1::Spoor::NewStub(
          grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                              grpc::InsecureChannelCredentials()));
      for (size_t i = 0; i < images.size(); ++i)
        parallel[c].push_back(answer(*stub, images[(i + c) % images.size()]));
    });
  }
  for (auto& t : clients) t.join();
  for (int c = 0; c < kClients; ++c)
    for (size_t i = 0; i < images.size(); ++i)
      EXPECT_EQ(parallel[c][i], serial[(i + c) % images.size()])
          << c << " " << i;
}

TEST_F(ServiceTest, ExpiredDeadlineIsDeadlineExceededFromTheServer) {
  config_.workers = 1;
  StartServer();
  // Two slow calls without a deadline keep the only worker busy; a call with
  // a 150 ms deadline then waits behind them and must be answered
  // DEADLINE_EXCEEDED by the server, not left to run.
  std::vector<std::thread> busy = KeepWorkersBusy(2);
  v1::MatchResponse resp;
  grpc::Status s = Match(Bytes(ads("ad_box_rephotographed.png")), &resp,
                         kPlatformKey, true, 150);
  EXPECT_EQ(s.error_code(), grpc::DEADLINE_EXCEEDED);
  for (auto& t : busy) t.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto requests = Stats().requests();
  ASSERT_TRUE(requests.count("Match DEADLINE_EXCEEDED"))
      << "the server never saw it";
  EXPECT_EQ(requests.at("Match DEADLINE_EXCEEDED"), 1);
  EXPECT_TRUE(Match(Bytes(ads("ad_unrelated_lion.jpg")), &resp).ok());
}

TEST_F(ServiceTest, FullQueueIsResourceExhaustedAtOnce) {
  config_.workers = 1;
  config_.queue_size = 1;
  StartServer();
  std::string image = Bytes(ads("ad_box_rephotographed.png"));
  std::atomic<int> ok{0}, exhausted{0}, other{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&] {
      v1::MatchResponse resp;
      grpc::Status s = Match(image, &resp);
      if (s.ok())
        ++ok;
      else if (s.error_code() == grpc::RESOURCE_EXHAUSTED)
        ++exhausted;
      else
        ++other;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_GE(ok.load(), 1);
  EXPECT_GE(exhausted.load(), 1);
  EXPECT_EQ(other.load(), 0);
}

// Regression: each StreamMatch held its own threads and nothing capped how
// many were open.
TEST_F(ServiceTest, StreamsPastTheCapAreResourceExhausted) {
  config_.max_streams = 2;
  StartServer();
  std::string image = Bytes(ads("ad_unrelated_lion.jpg"));
  struct Open {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReaderWriter<v1::StreamMatchRequest,
                                             v1::StreamMatchResponse>>
        stream;
  };
  // One answered item proves the server holds the stream open.
  auto open = [&](Open& o) {
    Authorize(o.ctx, kPlatformKey);
    o.stream = stub_->StreamMatch(&o.ctx);
    v1::StreamMatchRequest req;
    req.set_correlation_id("first");
    req.mutable_request()->set_image(image);
    v1::StreamMatchResponse resp;
    if (!o.stream->Write(req) || !o.stream->Read(&resp)) {
      o.stream->WritesDone();
      return o.stream->Finish();
    }
    EXPECT_EQ(resp.correlation_id(), "first");
    EXPECT_FALSE(resp.has_error()) << resp.error().message();
    return grpc::Status::OK;
  };
  Open a, b, c;
  ASSERT_TRUE(open(a).ok());
  ASSERT_TRUE(open(b).ok());
  grpc::Status third = open(c);
  EXPECT_EQ(third.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_NE(third.error_message().find("too many open streams (2)"),
            std::string::npos)
      << third.error_message();
  // Closing one makes room again.
  a.stream->WritesDone();
  ASSERT_TRUE(a.stream->Finish().ok());
  Open d;
  EXPECT_TRUE(open(d).ok());
  b.stream->WritesDone();
  EXPECT_TRUE(b.stream->Finish().ok());
  d.stream->WritesDone();
  EXPECT_TRUE(d.stream->Finish().ok());
}

// Regression: AddReference decoded and described the image on the handler
// thread, outside the pool, so adds were unbounded and ignored deadlines.
TEST_F(ServiceTest, AddReferenceWaitsForTheWorkerPool) {
  config_.workers = 1;
  StartServer();
  std::int64_t before = Stats().references();
  // Two slow matches keep the only worker busy; an add with a 150 ms
  // deadline then waits behind them on the pool, and is answered
  // DEADLINE_EXCEEDED without being added.
  std::vector<std::thread> busy = KeepWorkersBusy(2);
  v1::AddReferenceRequest req;
  req.set_image(Bytes(ads("ad_unrelated_lion.jpg")));
  req.mutable_labels()->set_item_type("ivory");
  v1::AddReferenceResponse resp;
  grpc::ClientContext ctx;
  Authorize(ctx, kCuratorKey, 150);
  grpc::Status s = stub_->AddReference(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::DEADLINE_EXCEEDED) << s.error_message();
  for (auto& t : busy) t.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(Stats().references(), before);
  // With the worker free, the same add succeeds.
  ASSERT_TRUE(Add(req.image(), &resp).ok());
  EXPECT_TRUE(resp.created());
  EXPECT_EQ(Stats().references(), before + 1);
}

// Regression: ad fields, sources and values inside error messages reached the
// log raw, so a caller could forge log lines with a newline.
TEST_F(ServiceTest, ClientTextIsEscapedInTheLog) {
  StartServer();
  // Ad fields with control characters are refused, naming the field.
  v1::MatchRequest req;
  req.set_image(Bytes(ads("ad_unrelated_lion.jpg")));
  req.mutable_ad()->set_platform("market");
  req.mutable_ad()->set_ad_id("ad-7\n[forged] Match OK");
  v1::MatchResponse resp;
  grpc::ClientContext ctx;
  Authorize(ctx, kPlatformKey);
  grpc::Status refused = stub_->Match(&ctx, req, &resp);
  EXPECT_EQ(refused.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_EQ(refused.error_message(),
            "ad.ad_id is not UTF-8 text without control characters");
  // Other client text reaches the log quoted and escaped.
  v1::AddReferenceRequest add;
  add.set_image(Bytes(ads("ad_unrelated_lion.jpg")));
  add.set_source("lion.jpg\n[forged] AddReference OK");
  v1::AddReferenceResponse added;
  grpc::ClientContext add_ctx;
  Authorize(add_ctx, kCuratorKey);
  ASSERT_TRUE(stub_->AddReference(&add_ctx, add, &added).ok());
  EXPECT_EQ(Remove("references/9\n[forged] RemoveReference OK").error_code(),
            grpc::INVALID_ARGUMENT);
  server_.reset();
  log_->flush();
  std::string text = log_text_->str();
  EXPECT_EQ(text.find("\n[forged]"), std::string::npos) << text;
  EXPECT_NE(text.find("lion.jpg\\n[forged] AddReference OK"), std::string::npos)
      << text;
  EXPECT_NE(text.find("\\n[forged] RemoveReference OK"), std::string::npos)
      << text;
}

TEST_F(ServiceTest, NoIndexIsFailedPreconditionAndNotServing) {
  config_.index_dir = tmp_.Join("empty");
  StartServer();
  EXPECT_FALSE(server_->index_loaded());
  v1::MatchResponse resp;
  grpc::Status s = Match(Bytes(ads("ad_unrelated_lion.jpg")), &resp);
  EXPECT_EQ(s.error_code(), grpc::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("no index loaded"), std::string::npos);
  // Regression: the message used to carry the server's index path.
  EXPECT_EQ(s.error_message().find(config_.index_dir), std::string::npos)
      << s.error_message();
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse hr;
  grpc::ClientContext ctx;
  ASSERT_TRUE(health->Check(&ctx, req, &hr).ok());
  EXPECT_EQ(hr.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

TEST_F(ServiceTest, HealthReflectionAndMetrics) {
  config_.metrics_listen = "127.0.0.1:0";
  StartServer();
  auto health = grpc::health::v1::Health::NewStub(channel_);
  for (const char* service : {"", "spoor.v1.Spoor"}) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse hr;
    grpc::ClientContext ctx;
    ASSERT_TRUE(health->Check(&ctx, req, &hr).ok()) << service;
    EXPECT_EQ(hr.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }

  // Reflection, spoken in raw bytes: libgrpc++_reflection already holds the
  // reflection messages, so a second generated copy would clash with it.
  // ServerReflectionRequest{list_services: "*"} is field 7, "*".
  grpc::internal::RpcMethod method(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      grpc::internal::RpcMethod::BIDI_STREAMING);
  grpc::ClientContext rctx;
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>>
      stream(grpc::internal::ClientReaderWriterFactory<
             grpc::ByteBuffer, grpc::ByteBuffer>::Create(channel_.get(), method,
                                                         &rctx));
  const char request_bytes[] = {0x3a, 0x01, '*'};
  grpc::Slice slice(request_bytes, sizeof(request_bytes));
  grpc::ByteBuffer request(&slice, 1);
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  grpc::ByteBuffer reply;
  ASSERT_TRUE(stream->Read(&reply));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string raw;
  for (const auto& sl : slices)
    raw.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_NE(raw.find("spoor.v1.Spoor"), std::string::npos);
  EXPECT_NE(raw.find("grpc.health.v1.Health"), std::string::npos);
  while (stream->Read(&reply)) {
  }
  EXPECT_TRUE(stream->Finish().ok());

  v1::MatchResponse resp;
  ASSERT_TRUE(Match(Bytes(ads("ad_unrelated_lion.jpg")), &resp).ok());
  EXPECT_EQ(Match("", &resp).error_code(), grpc::INVALID_ARGUMENT);

  // GET /metrics over a plain socket.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(server_->metrics_port()));
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  std::string get = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ASSERT_EQ(write(fd, get.data(), get.size()),
            static_cast<ssize_t>(get.size()));
  std::string body;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) body.append(buf, n);
  close(fd);
  EXPECT_NE(body.find("200 OK"), std::string::npos);
  EXPECT_NE(body.find("spoor_requests_total{rpc=\"Match\",code=\"OK\"} 1"),
            std::string::npos)
      << body;
  EXPECT_NE(
      body.find(
          "spoor_requests_total{rpc=\"Match\",code=\"INVALID_ARGUMENT\"} 1"),
      std::string::npos);
  EXPECT_NE(body.find("spoor_request_duration_seconds_count{rpc=\"Match\"} 2"),
            std::string::npos);
  EXPECT_NE(body.find("spoor_index_references 12"), std::string::npos);
  EXPECT_NE(body.find("spoor_queue_depth 0"), std::string::npos);
}

TEST_F(ServiceTest, GracefulShutdownFinishesInFlightCalls) {
  config_.workers = 1;
  StartServer();
  // Two calls on one worker: once one of them waits in the queue, both are
  // in flight on the server, and shutdown must let both finish.
  std::string image = Bytes(ads("ad_box_rephotographed.png"));
  grpc::Status in_flight[2];
  v1::MatchResponse resp[2];
  std::vector<std::thread> calls;
  for (int i = 0; i < 2; ++i)
    calls.emplace_back([&, i] { in_flight[i] = Match(image, &resp[i]); });
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (Stats().queue_depth() < 1 &&
         std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server_->Shutdown(std::chrono::seconds(10));
  for (auto& t : calls) t.join();
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(in_flight[i].ok()) << in_flight[i].error_message();
    ASSERT_GE(resp[i].matches_size(), 1);
    EXPECT_EQ(resp[i].matches(0).reference().source(), "box.png");
  }
}

// Self-signed certificate for "localhost", made with the openssl program.
void MakeCertificate(const std::string& dir, const std::string& name) {
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost -keyout " +
      dir + "/" + name + ".key -out " + dir + "/" + name + ".pem 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
}

TEST_F(ServiceTest, TlsWithAndWithoutClientCertificates) {
  MakeCertificate(tmp_.path(), "server");
  MakeCertificate(tmp_.path(), "client");
  config_.tls_cert_file = tmp_.Join("server.pem");
  config_.tls_key_file = tmp_.Join("server.key");
  config_.tls_client_ca_file = tmp_.Join("client.pem");
  config_.tls_require_client_cert = true;
  StartServer();
  std::string target = "localhost:" + std::to_string(server_->port());
  auto call = [&](std::shared_ptr<grpc::ChannelCredentials> creds) {
    auto stub = v1::Spoor::NewStub(grpc::CreateChannel(target, creds));
    v1::MatchRequest req;
    req.set_image(Bytes(ads("ad_unrelated_lion.jpg")));
    v1::MatchResponse resp;
    grpc::ClientContext ctx;
    Authorize(ctx, kPlatformKey, 10000);
    return stub->Match(&ctx, req, &resp);
  };
  grpc::SslCredentialsOptions with_cert;
  with_cert.pem_root_certs = Bytes(tmp_.Join("server.pem"));
  with_cert.pem_cert_chain = Bytes(tmp_.Join("client.pem"));
  with_cert.pem_private_key = Bytes(tmp_.Join("client.key"));
  EXPECT_TRUE(call(grpc::SslCredentials(with_cert)).ok());
  grpc::SslCredentialsOptions without_cert;
  without_cert.pem_root_certs = Bytes(tmp_.Join("server.pem"));
  EXPECT_EQ(call(grpc::SslCredentials(without_cert)).error_code(),
            grpc::UNAVAILABLE);
  EXPECT_EQ(call(grpc::InsecureChannelCredentials()).error_code(),
            grpc::UNAVAILABLE);
}

TEST(ServiceConfigTest, RefusesUnsafeOrBrokenSettings) {
  ServiceConfig c;
  c.index_dir = "/tmp/x";
  c.listen = "0.0.0.0:50051";
  auto s = service::ValidateConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("without TLS"), std::string::npos);
  c.listen = "127.0.0.1:50051";
  EXPECT_OK(service::ValidateConfig(c));
  c.tls_cert_file = "a.pem";
  EXPECT_NE(service::ValidateConfig(c).message().find("together"),
            std::string::npos);
  EXPECT_TRUE(service::IsLoopback("[::1]:1"));
  EXPECT_TRUE(service::IsLoopback("localhost:1"));
  EXPECT_FALSE(service::IsLoopback("10.0.0.1:1"));
}

// Regression: the loopback test was a string prefix, TLS alone (no keys, no
// client certificates) let anyone off loopback remove references, and the
// unauthenticated plain-HTTP metrics endpoint took any address.
TEST(ServiceConfigTest, OffLoopbackNeedsAuthenticationAndMetricsStayLocal) {
  EXPECT_FALSE(service::IsLoopback("127.evil.example:1"));
  EXPECT_FALSE(service::IsLoopback("0.0.0.0:1"));
  EXPECT_FALSE(service::IsLoopback("[::]:1"));
  EXPECT_FALSE(service::IsLoopback(":1"));
  EXPECT_TRUE(service::IsLoopback("127.3.4.5:1"));

  ServiceConfig c;
  c.index_dir = "/tmp/x";
  c.listen = "0.0.0.0:50051";
  c.tls_cert_file = "cert.pem";
  c.tls_key_file = "key.pem";
  auto s = service::ValidateConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("no authentication"), std::string::npos) << s;
  c.api_keys_file = "keys.toml";
  EXPECT_OK(service::ValidateConfig(c));
  c.api_keys_file.clear();
  c.tls_require_client_cert = true;
  c.tls_client_ca_file = "ca.pem";
  EXPECT_OK(service::ValidateConfig(c));

  c.metrics_listen = "0.0.0.0:9464";
  s = service::ValidateConfig(c);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("metrics_listen"), std::string::npos) << s;
  c.metrics_listen = "127.evil.example:9464";
  EXPECT_FALSE(service::ValidateConfig(c).ok());
  c.metrics_listen = "";
  EXPECT_OK(service::ValidateConfig(c));
  c.metrics_listen = "localhost:0";
  EXPECT_OK(service::ValidateConfig(c));
}

TEST(ServiceConfigTest, ReadsTomlFiles) {
  testing::TempDir dir;
  std::ofstream(dir.Join("ok.toml"))
      << "index_dir = \"/idx\"\nworkers = 3\nlisten = \"127.0.0.1:7\"\n";
  auto loaded = service::LoadConfig(dir.Join("ok.toml"));
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->workers, 3);
  EXPECT_EQ(loaded->index_dir, "/idx");
  std::ofstream(dir.Join("bad.toml")) << "index_dir = \"/idx\"\nthreads = 3\n";
  EXPECT_NE(service::LoadConfig(dir.Join("bad.toml"))
                .status()
                .message()
                .find("unknown config key 'threads'"),
            std::string::npos);
  std::ofstream(dir.Join("type.toml")) << "workers = \"two\"\n";
  EXPECT_EQ(service::LoadConfig(dir.Join("type.toml")).status().code(),
            absl::StatusCode::kInvalidArgument);
  // The example files shipped with the service load as they are.
  std::string examples = std::string(SPOOR_SOURCE_DIR) + "/query_service/";
  auto example = service::LoadConfig(examples + "spoor.example.toml");
  ASSERT_OK(example);
  EXPECT_EQ(example->listen, "127.0.0.1:50051");
  EXPECT_EQ(example->max_message_bytes, 24 << 20);
  EXPECT_TRUE(example->record_sightings);
  EXPECT_TRUE(example->sighting_thumbnail_platforms.empty());
  EXPECT_TRUE(example->sighting_retention_days.empty());
  // Sighting settings are read and checked.
  std::ofstream(dir.Join("sightings.toml"))
      << "sighting_thumbnail_platforms = [\"bazaar\"]\n"
         "[sighting_retention_days]\nbazaar = 30\n\"*\" = 0.5\n";
  auto sightings = service::LoadConfig(dir.Join("sightings.toml"));
  ASSERT_OK(sightings);
  EXPECT_EQ(sightings->sighting_thumbnail_platforms,
            std::vector<std::string>{"bazaar"});
  EXPECT_EQ(sightings->sighting_retention_days.at("*"), 0.5);
  std::ofstream(dir.Join("retention.toml"))
      << "[sighting_retention_days]\nbazaar = -3\n";
  EXPECT_EQ(service::LoadConfig(dir.Join("retention.toml")).status().message(),
            dir.Join("retention.toml") +
                ": sighting_retention_days.bazaar must be a number of days "
                "above 0");
  auto example_keys =
      service::ApiKeys::Load(examples + "api_keys.example.toml");
  ASSERT_OK(example_keys);
  auto secret = example_keys->Authenticate("Bearer secret");
  ASSERT_OK(secret);
  EXPECT_TRUE(secret->Has(service::Role::kPlatform));
  EXPECT_EQ(secret->requests_per_second, 50);
  EXPECT_EQ(secret->burst, 100);

  // A rate that is not a number in range is refused, naming the entry.
  std::string hex(64, 'a');
  for (const char* rate : {"-1", "\"fast\"", "1e12"}) {
    std::ofstream(dir.Join("rate.toml"))
        << "[[key]]\nname = \"x\"\nsha256 = \"" << hex
        << "\"\nroles = [\"platform\"]\nrequests_per_second = " << rate << "\n";
    auto bad = service::ApiKeys::Load(dir.Join("rate.toml"));
    EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << rate;
    EXPECT_NE(bad.status().message().find(
                  "key 1: requests_per_second must be a number"),
              std::string::npos)
        << bad.status();
  }

  std::ofstream(dir.Join("keys.toml"))
      << "[[key]]\nname = \"x\"\nsha256 = \"abc\"\nroles = [\"platform\"]\n";
  service::ServiceConfig with_keys;
  with_keys.index_dir = dir.Join("none");
  with_keys.api_keys_file = dir.Join("keys.toml");
  with_keys.listen = "127.0.0.1:0";
  with_keys.metrics_listen = "";
  auto server = Server::Start(
      with_keys, std::make_shared<spdlog::logger>(
                     "t", std::make_shared<spdlog::sinks::null_sink_mt>()));
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(server.status().message().find("sha256"), std::string::npos);
}

}  // namespace
}  // namespace spoor
