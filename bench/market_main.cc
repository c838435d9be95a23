// spoor-bench-market: a simulated classifieds site fed to the real service,
// scored on whether Spoor recovers the planted trafficker groups.
//
//   spoor-bench-market --seed 1 --out DIR [--no-benign] [--no-text]
//                      [--honest 88]
//
// The world (deterministic by seed, from Debian photos):
//   - 8 trafficker groups, 3 of them behind 2 or 3 accounts (12 accounts),
//     relisting 15 items (tuxpaint cut-outs on landscape photos) 5 times
//     each over 8 weeks, disguised as the benchmark's families do (crop,
//     mirror, heavy JPEG, contact text, re-photographed on another table,
//     app screenshot, collage with another of the group's items, padding,
//     rotation, a chain of three), some with the group's phone number;
//   - honest sellers (88 by default), each selling an item of their own
//     (other cut-outs, photographed on several backgrounds), many in the same
//     app's screenshots, with the same overlaid words ("Only 1 left!"), some
//     with their own phone number, and a few with the same five stock
//     photos.
// Curators first fill the benign banks (benign-stock: the stock photos;
// benign-app-chrome: a blank screenshot; benign-overlays: the common words
// on a blank) unless --no-benign. Every ad then goes, in listing order,
// through Match with its ad context on spoor-query-service on a loopback
// port; GetSellerLinks for every account and ListClusters give the links,
// scored against the planted groups:
//   seller links: precision and recall over pairs of accounts (a true pair:
//     two accounts of one group), and the pairs linking an honest seller to
//     a trafficker (must be 0) or to another honest seller;
//   clusters: an item is recovered when all its listings fall in one
//     cluster that holds no other group's ads; a group when all its items
//     are.
// Writes DIR/ads/ (the images), DIR/ads.csv (the ground truth) and
// DIR/report.json, and prints the figures.
#include <grpcpp/grpcpp.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <set>

#include "bench_util.h"
#include "corpus/disguises.h"
#include "query_service/server.h"
#include "spoor/blas_kernels.h"
#include "spoor/reference.h"
#include "spoor/v1/spoor.grpc.pb.h"

namespace fs = std::filesystem;
namespace v1 = spoor::v1;
using namespace spoor::corpus;
using nlohmann::json;

namespace {

using spoor::bench::Rng;
using spoor::bench::Uniform;
using spoor::bench::UniformInt;

constexpr int kGroups = 8;
constexpr int kItems = 15;
constexpr int kListingsPerItem = 5;
constexpr int kDays = 56;
const cv::Size kPhoto(800, 600);
const std::vector<std::string> kStockPhotos = {
    "building.jpg", "home.jpg", "baboon.jpg", "fruits.jpg", "starry_night.jpg"};
const std::vector<std::string> kOverlays = {"Only 1 left!", "WhatsApp me",
                                            "Free delivery"};

struct Ad {
  std::string id;       // "ad-0042"
  std::string account;  // "t3-1" (trafficker group 3, account 1) or "h17"
  int group = -1;       // trafficker group; -1: honest
  int item = -1;        // trafficked item; -1: honest
  std::string family;   // how the photo was made
  int minute = 0;       // listing time, minutes from the start
  cv::Mat image;
};

// Where sellers photograph their items: quarters of landscape photos, each
// handed to one seller (or one trafficker group) only, so unrelated sellers
// never share a table, as in life; a seller's own photos vary the framing.
class Tables {
 public:
  Tables(std::vector<std::string> paths, Rng& rng) : paths_(std::move(paths)) {
    for (size_t p = 0; p < paths_.size(); ++p)
      for (int q = 0; q < 4; ++q) free_.push_back({p, q});
    std::shuffle(free_.begin(), free_.end(), rng);
  }
  struct Table {
    size_t photo = 0;
    int quarter = 0;
  };
  Table Take() {
    if (free_.empty()) throw std::runtime_error("not enough background photos");
    Table t = free_.back();
    free_.pop_back();
    return t;
  }
  // The item's place on `t`: 80-100% of the quarter, resized to kPhoto.
  cv::Mat Window(const Table& t, Rng& rng) {
    auto& m = cache_[t.photo];
    if (m.empty()) m = LoadBgr(paths_[t.photo], 1600);
    int qw = m.cols / 2, qh = m.rows / 2;
    double f = Uniform(rng, 0.8, 1.0);
    int w = static_cast<int>(qw * f), h = w * 3 / 4;
    if (h > qh) h = qh, w = h * 4 / 3;
    int x0 = (t.quarter % 2) * qw, y0 = (t.quarter / 2) * qh;
    cv::Rect r(x0 + UniformInt(rng, 0, qw - w), y0 + UniformInt(rng, 0, qh - h),
               w, h);
    cv::Mat out;
    cv::resize(m(r), out, kPhoto, 0, 0, cv::INTER_AREA);
    return out;
  }

 private:
  std::vector<std::string> paths_;
  std::vector<Table> free_;
  std::map<size_t, cv::Mat> cache_;
};

// The cut-out photographed on `table`: place, angle and light vary.
cv::Mat Photograph(const cv::Mat& stamp, Tables& tables,
                   const Tables::Table& table, Rng& rng) {
  return Composite(stamp, tables.Window(table, rng), Uniform(rng, 0.5, 0.75),
                   Uniform(rng, 0.38, 0.62), Uniform(rng, 0.4, 0.6),
                   Uniform(rng, -12, 12), Uniform(rng, 0.85, 1.1));
}

std::vector<Ad> MakeWorld(std::uint64_t seed, int honest_sellers) {
  Rng rng(seed);
  std::vector<std::string> stamps = Stamps();
  std::shuffle(stamps.begin(), stamps.end(), rng);
  if (static_cast<int>(stamps.size()) < kItems + honest_sellers)
    throw std::runtime_error("not enough tuxpaint stamps for every seller");
  Tables tables(BackgroundPhotos(), rng);
  std::vector<Ad> ads;

  // Traffickers: accounts per group, an item's five listings.
  const int accounts[kGroups] = {2, 3, 2, 1, 1, 1, 1, 1};
  // Each group's two tables: where it first photographs its items, and
  // where it photographs them again.
  std::vector<Tables::Table> first_table(kGroups), second_table(kGroups);
  for (int g = 0; g < kGroups; ++g) {
    first_table[g] = tables.Take();
    second_table[g] = tables.Take();
  }
  std::vector<cv::Mat> item_stamp(kItems), item_photo(kItems);
  for (int i = 0; i < kItems; ++i) {
    item_stamp[i] = LoadStampBgra(stamps[i]);
    item_photo[i] =
        Photograph(item_stamp[i], tables, first_table[i % kGroups], rng);
  }
  const std::vector<std::string> families = {
      "crop",       "mirror",  "jpeg_heavy", "contact_text", "rephoto",
      "screenshot", "collage", "padding",    "rotate",       "chain3"};
  int turn = 0;
  for (int i = 0; i < kItems; ++i) {
    int g = i % kGroups;
    std::string phone =
        "+254 7" + std::to_string(10 + g) + " 555 0" + std::to_string(100 + g);
    int minute = UniformInt(rng, 0, 20 * 24 * 60);
    for (int k = 0; k < kListingsPerItem; ++k) {
      Ad ad;
      ad.group = g;
      ad.item = i;
      ad.account =
          "t" + std::to_string(g) + "-" +
          std::to_string(k == 0 ? 0 : UniformInt(rng, 0, accounts[g] - 1));
      ad.minute = minute;
      minute += UniformInt(rng, 5 * 24 * 60, 9 * 24 * 60);
      const cv::Mat& p = item_photo[i];
      ad.family = k == 0 ? "original" : families[turn++ % families.size()];
      const std::string& f = ad.family;
      if (f == "original") {
        ad.image = p;
      } else if (f == "crop") {
        ad.image = Crop(p, Uniform(rng, 0.05, 0.2), Uniform(rng, 0.05, 0.2),
                        Uniform(rng, 0.8, 0.95), Uniform(rng, 0.8, 0.95));
      } else if (f == "mirror") {
        cv::flip(p, ad.image, 1);
      } else if (f == "jpeg_heavy") {
        auto bytes = EncodeJpeg(p, 15);
        ad.image = cv::imdecode(bytes, cv::IMREAD_COLOR);
      } else if (f == "contact_text") {
        ad.image = AddText(p, phone);
      } else if (f == "rephoto") {
        ad.image = Photograph(item_stamp[i], tables, second_table[g], rng);
      } else if (f == "screenshot") {
        ad.image = Screenshot(p);
      } else if (f == "collage") {
        // With another item of the group, or a landscape when it has one.
        int other = i + kGroups < kItems ? i + kGroups : -1;
        cv::Mat second = other >= 0 ? item_photo[other]
                                    : tables.Window(second_table[g], rng);
        ad.image = Collage({p, second}, 2, cv::Size(480, 360));
      } else if (f == "padding") {
        ad.image = Pad(p, 60, cv::Scalar(40, 160, 220));
      } else if (f == "rotate") {
        ad.image = Rotate(p, Uniform(rng, 8, 20));
      } else {  // chain3: crop, mirror, contact text
        cv::Mat m = Crop(p, 0.1, 0.05, 0.9, 0.95);
        cv::flip(m, m, 1);
        ad.image = AddText(m, phone);
      }
      ads.push_back(std::move(ad));
    }
  }

  // Honest sellers: an item of their own, photographed again for each ad,
  // in the same app's screenshots, under the same words, or a stock photo.
  for (int h = 0; h < honest_sellers; ++h) {
    cv::Mat stamp = LoadStampBgra(stamps[kItems + h]);
    Tables::Table home = tables.Take();
    int n = UniformInt(rng, 4, 6);
    for (int k = 0; k < n; ++k) {
      Ad ad;
      ad.account = "h" + std::to_string(h);
      ad.minute = UniformInt(rng, 0, kDays * 24 * 60 - 1);
      double u = Uniform(rng, 0, 1);
      cv::Mat own = Photograph(stamp, tables, home, rng);
      if (u < 0.1) {
        ad.family = "stock_photo";
        cv::Mat stock = LoadBgr(
            kOpenCvData + "/" +
                kStockPhotos[UniformInt(rng, 0, kStockPhotos.size() - 1)],
            800);
        ad.image = stock;
      } else if (u < 0.35) {
        ad.family = "screenshot";
        ad.image = Screenshot(own);
      } else if (u < 0.55) {
        ad.family = "overlay_words";
        ad.image =
            AddText(own, kOverlays[UniformInt(rng, 0, kOverlays.size() - 1)]);
      } else if (u < 0.65) {
        // The seller's own number, written like the traffickers' (same
        // country, same layout): it must link this seller to nobody.
        ad.family = "own_phone";
        char phone[32];
        std::snprintf(phone, sizeof phone, "+254 733 4%02d %03d", h % 100,
                      (h * 37 + 11) % 1000);
        ad.image = AddText(own, phone);
      } else {
        ad.family = "own_item";
        ad.image = own;
      }
      ads.push_back(std::move(ad));
    }
  }
  std::stable_sort(ads.begin(), ads.end(), [](const Ad& a, const Ad& b) {
    return a.minute < b.minute;
  });
  for (size_t i = 0; i < ads.size(); ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "ad-%04zu", i);
    ads[i].id = id;
  }
  return ads;
}

std::string ListingTime(int minute) {
  // Weeks from 2026-10-05T00:00:00Z.
  std::time_t t = 1791072000 + static_cast<std::time_t>(minute) * 60;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Bytes(const cv::Mat& m, int quality = 88) {
  auto b = EncodeJpeg(m, quality);
  return std::string(b.begin(), b.end());
}

int GroupOf(const std::string& account) {
  return account[0] == 't' ? std::stoi(account.substr(1)) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  spoor::RerunWithFasterBlasKernels(argv);
  CLI::App app{
      "spoor-bench-market: a simulated marketplace through the service"};
  std::uint64_t seed = 1;
  std::string out;
  bool no_benign = false;
  bool no_text = false;
  int honest = 88;
  app.add_option("--seed", seed)->capture_default_str();
  app.add_option("--out", out, "output folder (emptied)")->required();
  app.add_flag("--no-benign", no_benign, "leave the benign banks empty");
  app.add_flag("--no-text", no_text,
               "do not read text (no contact links, no text discount)");
  app.add_option("--honest", honest, "honest sellers")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<Ad> ads;
  try {
    ads = MakeWorld(seed, honest);
  } catch (const std::exception& e) {
    std::cerr << "spoor-bench-market: " << e.what() << "\n";
    return 1;
  }
  fs::remove_all(out);
  fs::create_directories(fs::path(out) / "ads");
  {
    std::ofstream csv(fs::path(out) / "ads.csv");
    csv << "ad,account,group,item,family,listing_time\n";
    for (const Ad& ad : ads) {
      cv::imwrite(
          (fs::path(out) / "ads" / (ad.id + ".jpg")).string(), ad.image,
          {cv::IMWRITE_JPEG_QUALITY, ad.family == "jpeg_heavy" ? 15 : 88});
      csv << ad.id << "," << ad.account << "," << ad.group << "," << ad.item
          << "," << ad.family << "," << ListingTime(ad.minute) << "\n";
    }
  }

  spoor::service::ServiceConfig config;
  config.index_dir = (fs::path(out) / "index").string();
  config.create_index_if_missing = true;
  config.listen = "127.0.0.1:0";
  config.metrics_listen = "";
  config.save_interval_seconds = 3600;
  config.read_sighting_text = !no_text;
  auto log = std::make_shared<spdlog::logger>(
      "market", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto server = spoor::service::Server::Start(config, log);
  if (!server.ok()) {
    std::cerr << "spoor-bench-market: " << server.status().message() << "\n";
    return 1;
  }
  auto stub = v1::Spoor::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->port()),
                          grpc::InsecureChannelCredentials()));
  auto call = [&](auto method, const auto& req, auto* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(120));
    grpc::Status s = (stub.get()->*method)(&ctx, req, resp);
    if (!s.ok()) {
      std::cerr << "spoor-bench-market: " << s.error_message() << "\n";
      std::exit(1);
    }
  };

  if (!no_benign) {
    auto add = [&](const std::string& bank, const cv::Mat& m,
                   const std::string& source) {
      v1::AddReferenceRequest req;
      req.set_image(Bytes(m));
      req.set_bank(bank);
      req.set_source(source);
      v1::AddReferenceResponse resp;
      call(&v1::Spoor::Stub::AddReference, req, &resp);
    };
    for (const std::string& name : kStockPhotos)
      add("benign-stock", LoadBgr(kOpenCvData + "/" + name, 800), name);
    cv::Mat blank(kPhoto, CV_8UC3, cv::Scalar(128, 128, 128));
    add("benign-app-chrome", Screenshot(blank), "marketplace app screenshot");
    for (const std::string& words : kOverlays)
      add("benign-overlays", AddText(blank, words), words);
  }

  auto start = std::chrono::steady_clock::now();
  std::int64_t db_before = 0;
  {
    v1::IndexStats stats;
    call(&v1::Spoor::Stub::GetIndexStats, v1::GetIndexStatsRequest(), &stats);
    db_before = stats.database_bytes();
  }
  std::map<std::string, std::string> sighting_ad;  // "sightings/N" -> ad id
  std::map<std::string, const Ad*> by_id;
  for (const Ad& ad : ads) by_id[ad.id] = &ad;
  std::mutex mu;
  double text_ms = 0, total_ms = 0;
  // Two ads in flight, taken in listing order: the ads of one item are days
  // apart, so each is recorded before its relist is matched.
  spoor::bench::ParallelFor(ads.size(), 2, [&](size_t i) {
    const Ad& ad = ads[i];
    v1::MatchRequest req;
    req.set_image(Bytes(ad.image, ad.family == "jpeg_heavy" ? 15 : 88));
    v1::AdContext* c = req.mutable_ad();
    c->set_platform("simmarket");
    c->set_ad_id(ad.id);
    c->set_seller_id(ad.account);
    c->set_title(ad.family);
    google::protobuf::Timestamp* t = c->mutable_listing_time();
    t->set_seconds(1791072000 + static_cast<std::int64_t>(ad.minute) * 60);
    v1::MatchResponse resp;
    call(&v1::Spoor::Stub::Match, req, &resp);
    std::lock_guard lock(mu);
    sighting_ad[resp.sighting()] = ad.id;
    text_ms += resp.timings().text_ms();
    total_ms += resp.timings().total_ms();
  });
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  // Seller links, over pairs of accounts.
  std::set<std::string> accounts;
  for (const Ad& ad : ads) accounts.insert(ad.account);
  std::set<std::pair<std::string, std::string>> linked;
  // Link names by kind, and the seller pairs only contact links join.
  std::set<std::string> match_links, contact_links, sharing_contact;
  std::set<std::pair<std::string, std::string>> by_picture;
  for (const std::string& a : accounts) {
    v1::GetSellerLinksRequest req;
    req.set_platform("simmarket");
    req.set_seller_id(a);
    v1::GetSellerLinksResponse resp;
    call(&v1::Spoor::Stub::GetSellerLinks, req, &resp);
    for (const auto& s : resp.sellers()) {
      linked.insert(std::minmax(a, s.seller_id()));
      for (const auto& l : s.links()) {
        bool contact = l.kind() == v1::Link::CONTACT;
        (contact ? contact_links : match_links).insert(l.name());
        if (!l.contact().empty()) sharing_contact.insert(l.name());
        if (!contact) by_picture.insert(std::minmax(a, s.seller_id()));
      }
    }
  }
  std::set<std::pair<std::string, std::string>> truth;
  for (const std::string& a : accounts)
    for (const std::string& b : accounts)
      if (a < b && GroupOf(a) >= 0 && GroupOf(a) == GroupOf(b))
        truth.insert({a, b});
  int true_links = 0, honest_trafficker = 0, honest_honest = 0, cross_group = 0;
  int true_by_contact_only = 0;
  json wrong = json::array();
  for (const auto& [a, b] : linked) {
    int ga = GroupOf(a), gb = GroupOf(b);
    if (truth.count({a, b})) {
      ++true_links;
      true_by_contact_only += by_picture.count({a, b}) == 0;
      continue;
    }
    if (ga < 0 && gb < 0)
      ++honest_honest;
    else if (ga < 0 || gb < 0)
      ++honest_trafficker;
    else
      ++cross_group;
    wrong.push_back(a + " ~ " + b);
  }

  // Clusters.
  std::map<std::string, int> cluster_of_ad;  // ad id -> cluster index
  int clusters = 0;
  std::string token;
  do {
    v1::ListClustersRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    v1::ListClustersResponse resp;
    call(&v1::Spoor::Stub::ListClusters, req, &resp);
    for (const auto& c : resp.clusters()) {
      for (const auto& s : c.sightings())
        cluster_of_ad[sighting_ad[s]] = clusters;
      ++clusters;
    }
    token = resp.next_page_token();
  } while (!token.empty());
  // A cluster is pure when all its ads are of one group (or one honest
  // account).
  std::map<int, std::set<std::string>> owners;
  for (const auto& [ad, c] : cluster_of_ad) {
    const Ad& a = *by_id[ad];
    owners[c].insert(a.group >= 0 ? "t" + std::to_string(a.group) : a.account);
  }
  int pure = 0;
  for (const auto& [c, o] : owners) pure += o.size() == 1;
  std::vector<bool> item_ok(kItems, true);
  for (int i = 0; i < kItems; ++i) {
    int c = -2;
    for (const Ad& ad : ads) {
      if (ad.item != i) continue;
      auto it = cluster_of_ad.find(ad.id);
      int here = it == cluster_of_ad.end() ? -1 : it->second;
      if (here < 0 || (c != -2 && here != c)) item_ok[i] = false;
      c = here;
    }
    if (c >= 0 && owners[c].size() != 1) item_ok[i] = false;
  }
  int items_recovered = std::count(item_ok.begin(), item_ok.end(), true);
  int groups_recovered = 0;
  for (int g = 0; g < kGroups; ++g) {
    bool all = true;
    for (int i = g; i < kItems; i += kGroups) all &= item_ok[i];
    groups_recovered += all;
  }

  v1::IndexStats stats;
  call(&v1::Spoor::Stub::GetIndexStats, v1::GetIndexStatsRequest(), &stats);
  double per_sighting = double(stats.database_bytes() - db_before) /
                        std::max<size_t>(1, ads.size());
  int predicted = static_cast<int>(linked.size());
  json report = {
      {"seed", seed},
      {"benign_banks", !no_benign},
      {"read_text", !no_text},
      {"ads", ads.size()},
      {"accounts", accounts.size()},
      {"trafficker_accounts", 12},
      {"seconds", seconds},
      {"ads_per_second", ads.size() / seconds},
      {"mean_total_ms", total_ms / std::max<size_t>(1, ads.size())},
      {"mean_text_ms", text_ms / std::max<size_t>(1, ads.size())},
      {"seller_links",
       {{"predicted_pairs", predicted},
        {"true_pairs", truth.size()},
        {"correct", true_links},
        {"precision", predicted ? double(true_links) / predicted : 1.0},
        {"recall", truth.empty() ? 1.0 : double(true_links) / truth.size()},
        {"honest_to_trafficker", honest_trafficker},
        {"honest_to_honest", honest_honest},
        {"across_groups", cross_group},
        {"true_pairs_by_contact_only", true_by_contact_only},
        {"match_links", match_links.size()},
        {"contact_links", contact_links.size()},
        {"links_sharing_a_contact", sharing_contact.size()},
        {"wrong", wrong}}},
      {"clusters",
       {{"clusters", clusters},
        {"pure", pure},
        {"precision", clusters ? double(pure) / clusters : 1.0},
        {"items_recovered", items_recovered},
        {"items", kItems},
        {"groups_recovered", groups_recovered},
        {"groups", kGroups}}},
      {"database_bytes_per_sighting", per_sighting},
      {"sightings", stats.sightings()},
      {"links", stats.links()}};
  std::ofstream(fs::path(out) / "report.json") << report.dump(2) << "\n";
  std::cout << report.dump(2) << "\n";
  return 0;
}
