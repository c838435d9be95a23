// Case reports: everything Spoor knows about one seller, cluster or
// reference, written as a self-contained HTML page (images inline) that
// someone who never saw Spoor can read, with the same facts as CSV and JSON
// and each linking match drawn as a PNG. Built by the `spoor report` verb
// from what the investigator RPCs return; knows nothing of the network.
#ifndef SPOOR_QUERY_SERVICE_REPORT_H_
#define SPOOR_QUERY_SERVICE_REPORT_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "spoor/v1/spoor.pb.h"

namespace spoor::service {

struct CaseFile {
  std::string title;    // "Seller demo-market/savanna_curios"
  std::string subject;  // one sentence: what the report is about
  std::vector<v1::Sighting> sightings;
  std::vector<v1::Link> links;  // between sightings of the report
  // Sighting name -> JPEG thumbnail, where the platform's policy kept one.
  std::map<std::string, std::string> thumbnails;
};

// Writes DIR/report.html, DIR/report.json, DIR/sightings.csv and
// DIR/links/link-<id>.png (created; files there are replaced). Sightings
// are listed by listing time. FailedPrecondition naming the path when a
// file cannot be written.
absl::Status WriteCaseReport(const CaseFile& file, const std::string& dir);

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_REPORT_H_
