// spoor-fuzz-seeds OUT: writes the seed corpus of every fuzz target into
// OUT/<target>/: the bad-input matrix and real photos (decode), the bundled
// manifest and hostile variants (manifest), every file of a real index
// (index_open), and real requests of every RPC (service).
#include <filesystem>
#include <iostream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>

#include "bad_inputs.h"
#include "fuzz_util.h"
#include "spoor/v1/spoor.pb.h"

namespace fs = std::filesystem;
namespace v1 = spoor::v1;
using spoor::fuzz::ReadAll;
using spoor::fuzz::WriteAll;

namespace {

void Write(const fs::path& dir, const std::string& name,
           const std::string& bytes) {
  fs::create_directories(dir);
  WriteAll((dir / name).string(), bytes.data(), bytes.size());
}

std::string AsString(const std::vector<std::uint8_t>& v) {
  return std::string(v.begin(), v.end());
}

// A reference photo re-encoded small, so a seed request stays cheap.
std::string SmallJpeg(const char* photo, int side) {
  cv::Mat image = cv::imread(spoor::fuzz::ReferencePhoto(photo));
  double f = static_cast<double>(side) / std::max(image.cols, image.rows);
  cv::resize(image, image, {}, f, f, cv::INTER_AREA);
  std::vector<std::uint8_t> out;
  cv::imencode(".jpg", image, out, {cv::IMWRITE_JPEG_QUALITY, 85});
  return AsString(out);
}

std::string Selected(int selector, const std::string& body) {
  return std::string(1, static_cast<char>(selector)) + body;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: spoor-fuzz-seeds OUT\n";
    return 2;
  }
  const fs::path out = argv[1];

  // decode: the bad-input matrix and real photos of every format.
  for (const auto& bad : spoor::testing::BadInputs())
    Write(out / "decode", bad.name, AsString(bad.bytes));
  for (const char* photo : {"box.png", "elephant.jpg"})
    Write(out / "decode", photo,
          AsString(ReadAll(spoor::fuzz::ReferencePhoto(photo))));
  Write(out / "decode", "small.jpg", SmallJpeg("tiger.jpg", 200));

  // manifest: selector 0 = CSV, 1 = JSON.
  const fs::path manifests = out / "manifest";
  Write(manifests, "bundled.csv",
        Selected(
            0, AsString(ReadAll(spoor::fuzz::ReferencePhoto("manifest.csv")))));
  Write(manifests, "quoted.csv",
        Selected(0,
                 "file,species_common,cites_appendix,case\n"
                 "\"a,b.jpg\",\"African \"\"bush\"\" elephant\",I,2026-014\n"
                 "../x.jpg,tiger,II,\n"));
  Write(
      manifests, "array.json",
      Selected(
          1, R"([{"file": "a.jpg", "species_scientific": "Loxodonta africana",)"
             R"( "item_type": "carving", "cites_appendix": "I"}])"));
  Write(manifests, "object.json",
        Selected(1, R"({"references": [{"file": "b/c.png", "case": "x"},)"
                    R"( {"file": "/etc/passwd"}]})"));

  // index_open: every file of a real index, each behind its selector.
  const std::string index = spoor::fuzz::MakeTempDir("seeds");
  spoor::fuzz::BuildTemplateIndex(index);
  for (int i = 0; i < spoor::fuzz::kIndexFileCount; ++i) {
    fs::path file = fs::path(index) / spoor::fuzz::kIndexFiles[i];
    if (!fs::exists(file)) continue;
    Write(out / "index_open", spoor::fuzz::kIndexFiles[i],
          Selected(i, AsString(ReadAll(file.string()))));
  }
  fs::remove_all(index);

  // service: real requests, selector = the RPC's place in service_fuzzer's
  // table.
  const fs::path service = out / "service";
  const std::string photo = SmallJpeg("box.png", 240);
  v1::MatchRequest match;
  match.set_image(photo);
  match.mutable_options()->set_include_evidence(true);
  match.mutable_options()->set_max_results(3);
  v1::AdContext* ad = match.mutable_ad();
  ad->set_platform("fuzz-market");
  ad->set_ad_id("ad-1");
  ad->set_seller_id("seller-1");
  ad->set_title("old carving");
  ad->set_url("https://example.org/ad/1");
  ad->mutable_listing_time()->set_seconds(1790000000);
  Write(service, "match", Selected(0, match.SerializeAsString()));
  v1::StreamMatchRequest item;
  item.set_correlation_id("1");
  *item.mutable_request() = match;
  std::string stream = spoor::fuzz::Frame(item.SerializeAsString());
  item.set_correlation_id("2");
  item.mutable_request()->set_image(SmallJpeg("elephant.jpg", 200));
  item.mutable_request()->mutable_ad()->set_ad_id("ad-2");
  stream += spoor::fuzz::Frame(item.SerializeAsString());
  Write(service, "stream", Selected(1, stream));
  v1::AddReferenceRequest add;
  add.set_image(SmallJpeg("owl.jpg", 240));
  add.set_source("owl.jpg");
  add.set_bank("known-ivory");
  add.mutable_labels()->set_species_common("owl");
  Write(service, "add", Selected(2, add.SerializeAsString()));
  v1::RemoveReferenceRequest remove;
  remove.set_name("references/1");
  Write(service, "remove", Selected(3, remove.SerializeAsString()));
  v1::GetReferenceRequest get;
  get.set_name("references/2");
  Write(service, "get", Selected(4, get.SerializeAsString()));
  v1::ListReferencesRequest list;
  list.set_page_size(2);
  Write(service, "list", Selected(5, list.SerializeAsString()));
  Write(service, "stats", Selected(6, ""));
  v1::GetSightingRequest sighting;
  sighting.set_name("sightings/1");
  Write(service, "sighting", Selected(7, sighting.SerializeAsString()));
  v1::ListSightingsRequest sightings;
  sightings.set_platform("fuzz-market");
  sightings.set_label("species_common=owl");
  sightings.mutable_since()->set_seconds(1700000000);
  Write(service, "sightings", Selected(8, sightings.SerializeAsString()));
  v1::GetAdHistoryRequest history;
  history.set_platform("fuzz-market");
  history.set_ad_id("ad-1");
  Write(service, "history", Selected(9, history.SerializeAsString()));
  v1::GetSellerLinksRequest seller;
  seller.set_platform("fuzz-market");
  seller.set_seller_id("seller-1");
  Write(service, "seller", Selected(10, seller.SerializeAsString()));
  v1::ListClustersRequest clusters;
  clusters.set_page_size(5);
  Write(service, "clusters", Selected(11, clusters.SerializeAsString()));
  v1::GetClusterRequest cluster;
  cluster.set_name("clusters/1");
  Write(service, "cluster", Selected(12, cluster.SerializeAsString()));
  v1::GetReferenceSightingsRequest where;
  where.set_name("references/1");
  Write(service, "where", Selected(13, where.SerializeAsString()));
  v1::GetSightingThumbnailRequest thumb;
  thumb.set_name("sightings/1");
  Write(service, "thumb", Selected(14, thumb.SerializeAsString()));
  v1::ReviewLinkRequest review;
  review.set_name("links/1");
  review.set_review(v1::REJECTED);
  review.set_note("shared furniture");
  Write(service, "review", Selected(15, review.SerializeAsString()));
  v1::DeleteSightingsRequest del;
  del.set_platform("fuzz-market");
  del.set_seller_id("seller-1");
  Write(service, "delete", Selected(16, del.SerializeAsString()));
  std::cout << "seeds written to " << out << "\n";
  return 0;
}
