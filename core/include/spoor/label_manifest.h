// Reads a manifest that assigns labels to reference image files: CSV with a
// header row, or JSON (an array of objects, or {"references": [...]}).
// Columns / keys: file (required), species_scientific, species_common,
// item_type, cites_appendix, source, case, licence.
#ifndef SPOOR_LABEL_MANIFEST_H_
#define SPOOR_LABEL_MANIFEST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "spoor/reference.h"

namespace spoor {

struct ManifestEntry {
  std::string file;  ///< as written in the manifest, relative to its folder
  Labels labels;
};

// Parses `path` (format by extension: .csv or .json). InvalidArgument naming
// the line or entry for a malformed row, an unknown column, a missing file
// field or a label outside its vocabulary.
absl::StatusOr<std::vector<ManifestEntry>> ReadLabelManifest(
    const std::string& path);

}  // namespace spoor

#endif  // SPOOR_LABEL_MANIFEST_H_
