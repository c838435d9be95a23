#include "query_service/report.h"

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace spoor::service {
namespace {

namespace fs = std::filesystem;
using google::protobuf::util::TimeUtil;

std::string Html(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// RFC 4180: quoted when it holds a comma, quote or line break.
std::string Csv(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string When(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "";
  return TimeUtil::ToString(t);
}

// The listing time, or the time Spoor saw the ad without one.
std::int64_t Seconds(const v1::Sighting& s) {
  return s.ad().has_listing_time() && s.ad().listing_time().seconds() != 0
             ? s.ad().listing_time().seconds()
             : s.seen_time().seconds();
}

const char* VerdictWords(v1::Verdict v) {
  switch (v) {
    case v1::EXACT:
      return "the same picture (at most resized or recompressed)";
    case v1::MODIFIED_COPY:
      return "the same picture, edited (cropped, mirrored, text added, ...)";
    case v1::SAME_ITEM:
      return "the same object photographed again";
    default:
      return "below the match threshold";
  }
}

std::string Labels(const v1::Sighting& s) {
  std::set<std::string> parts;
  for (const auto& m : s.matches()) {
    const v1::Labels& l = m.reference().labels();
    std::string p = l.species_scientific().empty() ? l.species_common()
                                                   : l.species_scientific();
    if (!l.item_type().empty())
      absl::StrAppend(&p, p.empty() ? "" : ", ", l.item_type());
    if (!l.cites_appendix().empty())
      absl::StrAppend(&p, p.empty() ? "" : ", ", "CITES Appendix ",
                      l.cites_appendix());
    if (!p.empty()) parts.insert(p);
  }
  std::string out;
  for (const std::string& p : parts)
    absl::StrAppend(&out, out.empty() ? "" : "; ", p);
  return out;
}

cv::Mat Decode(const std::string& jpeg) {
  if (jpeg.empty()) return {};
  std::vector<std::uint8_t> bytes(jpeg.begin(), jpeg.end());
  return cv::imdecode(bytes, cv::IMREAD_COLOR);
}

// The two images side by side, each scaled to 240 px high, with the region
// each match rests on boxed and the boxes' corners joined.
cv::Mat DrawLink(const v1::Link& link, const v1::Sighting& newer,
                 const v1::Sighting& older, const cv::Mat& a,
                 const cv::Mat& b) {
  const int kHeight = 240;
  auto scaled = [&](const cv::Mat& m, const v1::Sighting& s, double& f) {
    cv::Mat img = m.empty() ? cv::Mat(kHeight, kHeight * 4 / 3, CV_8UC3,
                                      cv::Scalar(235, 235, 235))
                            : m;
    cv::Mat out;
    double k = double(kHeight) / img.rows;
    cv::resize(img, out, cv::Size(), k, k, cv::INTER_AREA);
    if (m.empty())
      cv::putText(out, "no image kept", cv::Point(10, kHeight / 2),
                  cv::FONT_HERSHEY_SIMPLEX, 0.6, cv::Scalar(90, 90, 90), 1);
    f = s.width() > 0 ? double(out.cols) / s.width() : k;
    return out;
  };
  double fa = 1, fb = 1;
  cv::Mat left = scaled(a, newer, fa), right = scaled(b, older, fb);
  const int gap = 16, top = 28;
  cv::Mat canvas(kHeight + top, left.cols + gap + right.cols, CV_8UC3,
                 cv::Scalar(255, 255, 255));
  left.copyTo(canvas(cv::Rect(0, top, left.cols, left.rows)));
  right.copyTo(canvas(cv::Rect(left.cols + gap, top, right.cols, right.rows)));
  auto rect = [&](const v1::Box& box, double f, int dx) {
    return cv::Rect(dx + static_cast<int>(box.x() * f),
                    top + static_cast<int>(box.y() * f),
                    std::max(1, static_cast<int>(box.width() * f)),
                    std::max(1, static_cast<int>(box.height() * f)));
  };
  cv::Rect ra = rect(link.evidence().query_box(), fa, 0);
  cv::Rect rb = rect(link.evidence().reference_box(), fb, left.cols + gap);
  const cv::Scalar kColour(0, 140, 255);
  cv::rectangle(canvas, ra, kColour, 2);
  cv::rectangle(canvas, rb, kColour, 2);
  cv::line(canvas, ra.tl(), rb.tl(), kColour, 1, cv::LINE_AA);
  cv::line(canvas, cv::Point(ra.x, ra.br().y), cv::Point(rb.x, rb.br().y),
           kColour, 1, cv::LINE_AA);
  cv::line(canvas, cv::Point(ra.br().x, ra.y), cv::Point(rb.br().x, rb.y),
           kColour, 1, cv::LINE_AA);
  cv::line(canvas, ra.br(), rb.br(), kColour, 1, cv::LINE_AA);
  std::ostringstream caption;
  caption << newer.ad().ad_id() << " (" << newer.ad().seller_id() << ")  ~  "
          << older.ad().ad_id() << " (" << older.ad().seller_id()
          << ")   score " << std::round(link.score() * 100) / 100 << ", ";
  if (link.kind() == v1::Link::CONTACT)
    caption << "same contact " << link.contact();
  else
    caption << link.evidence().inliers() << " matching points";
  cv::putText(canvas, caption.str(), cv::Point(4, 19), cv::FONT_HERSHEY_SIMPLEX,
              0.5, cv::Scalar(30, 30, 30), 1, cv::LINE_AA);
  return canvas;
}

// What a link says, in words: an image match, or the same contact details.
std::string LinkWords(const v1::Link& l, const v1::AdContext& a,
                      const v1::AdContext& b) {
  std::ostringstream out;
  out << "Ad <b>" << Html(a.ad_id()) << "</b> by <b>" << Html(a.seller_id())
      << "</b> ";
  if (l.kind() == v1::Link::CONTACT) {
    out << "shows the same contact details (" << Html(l.contact())
        << ") as ad <b>" << Html(b.ad_id()) << "</b> by <b>"
        << Html(b.seller_id()) << "</b>: score "
        << std::round(l.score() * 100) / 100
        << ", a weaker link than a picture match (the text was read by "
           "OCR and may be misread). The boxes are where each picture shows "
           "it.";
    return out.str();
  }
  out << "shows " << VerdictWords(l.verdict()) << " as ad <b>"
      << Html(b.ad_id()) << "</b> by <b>" << Html(b.seller_id())
      << "</b>: score " << std::round(l.score() * 100) / 100 << ", "
      << l.evidence().inliers()
      << " points of the two pictures that a single geometric transform maps "
         "onto each other. The boxes are the parts each picture shares.";
  if (!l.contact().empty())
    out << " Both also show the same contact details (" << Html(l.contact())
        << ").";
  return out.str();
}

std::string DataUri(const std::string& mime, const std::string& bytes) {
  return absl::StrCat("data:", mime, ";base64,", absl::Base64Escape(bytes));
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

// Dots on a time axis, one row per seller.
std::string Timeline(const std::vector<v1::Sighting>& sightings) {
  if (sightings.empty()) return "";
  std::vector<std::string> sellers;
  for (const auto& s : sightings) {
    std::string k = s.ad().platform() + "/" + s.ad().seller_id();
    if (std::find(sellers.begin(), sellers.end(), k) == sellers.end())
      sellers.push_back(k);
  }
  std::int64_t t0 = Seconds(sightings.front()), t1 = Seconds(sightings.back());
  if (t1 <= t0) t1 = t0 + 1;
  const int kLeft = 230, kWidth = 620, kRow = 26;
  int height = kRow * static_cast<int>(sellers.size()) + 40;
  std::ostringstream svg;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='"
      << kLeft + kWidth + 20 << "' height='" << height
      << "' role='img' aria-label='timeline'>";
  for (size_t r = 0; r < sellers.size(); ++r) {
    int y = 20 + kRow * static_cast<int>(r);
    svg << "<text x='4' y='" << y + 4 << "' font-size='12'>" << Html(sellers[r])
        << "</text><line x1='" << kLeft << "' y1='" << y << "' x2='"
        << kLeft + kWidth << "' y2='" << y << "' stroke='#ddd'/>";
  }
  for (const auto& s : sightings) {
    std::string k = s.ad().platform() + "/" + s.ad().seller_id();
    size_t r = std::find(sellers.begin(), sellers.end(), k) - sellers.begin();
    double x = kLeft + kWidth * double(Seconds(s) - t0) / double(t1 - t0);
    svg << "<circle cx='" << x << "' cy='" << 20 + kRow * r
        << "' r='6' fill='#e8590c'><title>" << Html(s.ad().ad_id()) << " "
        << Html(When(s.ad().listing_time())) << "</title></circle>";
  }
  google::protobuf::Timestamp a, b;
  a.set_seconds(t0);
  b.set_seconds(t1);
  svg << "<text x='" << kLeft << "' y='" << height - 6 << "' font-size='11'>"
      << TimeUtil::ToString(a).substr(0, 10) << "</text><text x='"
      << kLeft + kWidth - 70 << "' y='" << height - 6 << "' font-size='11'>"
      << TimeUtil::ToString(b).substr(0, 10) << "</text></svg>";
  return svg.str();
}

}  // namespace

absl::Status WriteCaseReport(const CaseFile& file, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "links", ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat(dir, ": cannot create the report folder: ", ec.message()));
  }
  std::vector<v1::Sighting> sightings = file.sightings;
  std::stable_sort(sightings.begin(), sightings.end(),
                   [](const v1::Sighting& a, const v1::Sighting& b) {
                     return Seconds(a) < Seconds(b);
                   });
  std::map<std::string, const v1::Sighting*> by_name;
  for (const auto& s : sightings) by_name[s.name()] = &s;
  auto thumbnail = [&](const std::string& name) {
    auto it = file.thumbnails.find(name);
    return it == file.thumbnails.end() ? std::string() : it->second;
  };
  auto write = [&](const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
    out.close();
    if (!out)
      return absl::FailedPreconditionError(
          absl::StrCat(path.string(), ": cannot write"));
    return absl::OkStatus();
  };

  std::ostringstream csv;
  csv << "sighting,platform,ad_id,seller_id,listing_time,seen_time,title,url,"
         "sha256,matched_references,labels\n";
  for (const auto& s : sightings) {
    std::string refs;
    for (const auto& m : s.matches())
      absl::StrAppend(&refs, refs.empty() ? "" : " ", m.reference().name());
    csv << Csv(s.name()) << "," << Csv(s.ad().platform()) << ","
        << Csv(s.ad().ad_id()) << "," << Csv(s.ad().seller_id()) << ","
        << When(s.ad().listing_time()) << "," << When(s.seen_time()) << ","
        << Csv(s.ad().title()) << "," << Csv(s.ad().url()) << "," << s.sha256()
        << "," << Csv(refs) << "," << Csv(Labels(s)) << "\n";
  }
  if (auto st = write(fs::path(dir) / "sightings.csv", csv.str()); !st.ok())
    return st;

  nlohmann::json j = {{"title", file.title},
                      {"subject", file.subject},
                      {"sightings", nlohmann::json::array()},
                      {"links", nlohmann::json::array()}};
  for (const auto& s : sightings)
    j["sightings"].push_back(nlohmann::json::parse(ToJson(s)));

  std::ostringstream links_html;
  for (const auto& l : file.links) {
    auto newer = by_name.find(l.newer()), older = by_name.find(l.older());
    if (newer == by_name.end() || older == by_name.end()) continue;
    j["links"].push_back(nlohmann::json::parse(ToJson(l)));
    cv::Mat png =
        DrawLink(l, *newer->second, *older->second,
                 Decode(thumbnail(l.newer())), Decode(thumbnail(l.older())));
    std::vector<std::uint8_t> encoded;
    cv::imencode(".png", png, encoded);
    std::string bytes(encoded.begin(), encoded.end());
    std::string id = l.name().substr(l.name().find('/') + 1);
    if (auto st =
            write(fs::path(dir) / "links" / ("link-" + id + ".png"), bytes);
        !st.ok())
      return st;
    const v1::AdContext& a = newer->second->ad();
    const v1::AdContext& b = older->second->ad();
    links_html << "<figure><img alt='link " << Html(id) << "' src='"
               << DataUri("image/png", bytes) << "'><figcaption>"
               << LinkWords(l, a, b)
               << (l.review() == v1::CONFIRMED  ? " Confirmed by a reviewer."
                   : l.review() == v1::REJECTED ? " Rejected by a reviewer."
                                                : "")
               << (l.review_note().empty() ? ""
                                           : " Note: " + Html(l.review_note()))
               << "</figcaption></figure>\n";
  }
  if (auto st = write(fs::path(dir) / "report.json", j.dump(2) + "\n");
      !st.ok())
    return st;

  std::ostringstream rows;
  for (const auto& s : sightings) {
    std::string jpeg = thumbnail(s.name());
    rows << "<tr><td>"
         << (jpeg.empty() ? std::string("<span class='none'>no image kept "
                                        "(platform policy)</span>")
                          : "<img class='thumb' alt='" + Html(s.name()) +
                                "' src='" + DataUri("image/jpeg", jpeg) + "'>")
         << "</td><td>" << Html(s.name()) << "</td><td>"
         << Html(s.ad().platform()) << "</td><td>" << Html(s.ad().ad_id())
         << "</td><td>" << Html(s.ad().seller_id()) << "</td><td>"
         << Html(When(s.ad().listing_time())) << "</td><td>"
         << Html(s.ad().title()) << "</td><td>" << Html(Labels(s))
         << "</td></tr>\n";
  }
  std::set<std::string> sellers;
  for (const auto& s : sightings)
    sellers.insert(s.ad().platform() + "/" + s.ad().seller_id());

  std::ostringstream html;
  html << "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>"
       << Html(file.title)
       << "</title><style>body{font-family:sans-serif;max-width:1100px;margin:"
          "2em auto;color:#222}table{border-collapse:collapse}td,th{border:1px "
          "solid #ccc;padding:4px 8px;vertical-align:top;font-size:14px}"
          ".thumb{max-width:160px;max-height:120px}.none{color:#888}"
          "figure{margin:1.5em 0}figure img{max-width:100%}</style></head>"
          "<body><h1>"
       << Html(file.title) << "</h1><p>" << Html(file.subject) << "</p>"
       << "<p>This report was written by Spoor, which compares the photos of "
          "online ads with each other and with photos of known illegal "
          "wildlife items. It lists <b>"
       << sightings.size() << "</b> ads (\"sightings\") from <b>"
       << sellers.size() << "</b> seller accounts, and the <b>"
       << j["links"].size()
       << "</b> matches (\"links\") that tie their photos together. A link "
          "means the two photos show the same thing: the same picture, an "
          "edited copy of it, or the same object photographed again. Its "
          "score runs from 0 to 1; at 0.5 and above Spoor counts it as a "
          "match (at 0.5 about 15 points of the two pictures agree under one "
          "geometric transform; unrelated photos rarely reach 10). Links are "
          "evidence for a reviewer to weigh, not proof of who is behind an "
          "account.</p><h2>Timeline</h2>"
       << Timeline(sightings)
       << "<h2>Sightings</h2><table><tr><th>photo</th><th>sighting</th>"
          "<th>platform</th><th>ad</th><th>seller</th><th>listed</th>"
          "<th>title</th><th>matched references</th></tr>\n"
       << rows.str() << "</table><h2>Links</h2>"
       << (file.links.empty() ? "<p>No links.</p>" : links_html.str())
       << "<p>The same facts are in <code>sightings.csv</code> and "
          "<code>report.json</code>; each link's picture is in "
          "<code>links/</code>.</p></body></html>\n";
  return write(fs::path(dir) / "report.html", html.str());
}

}  // namespace spoor::service
