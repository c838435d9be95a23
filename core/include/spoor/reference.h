// What Spoor knows about one reference photo: where it came from, its
// content hash, and the labels a curator gave it.
#ifndef SPOOR_REFERENCE_H_
#define SPOOR_REFERENCE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace spoor {

// Curator-supplied labels. Every field is optional (empty when unknown).
struct Labels {
  std::string species_scientific;  ///< e.g. "Loxodonta africana"
  std::string species_common;      ///< e.g. "African elephant"
  // One of: live_animal, ivory, horn, skin, scales, shell, feathers, other.
  std::string item_type;
  std::string cites_appendix;  ///< "I", "II" or "III"
  std::string source;          ///< where the photo came from
  std::string case_ref;        ///< case or seizure reference
  std::string licence;         ///< licence of the photo

  bool operator==(const Labels&) const = default;
};

// InvalidArgument naming the field when item_type or cites_appendix holds a
// value outside its vocabulary.
absl::Status ValidateLabels(const Labels& labels);

// References live in named banks ("known-ivory", "case-2026-014"); a match
// says which bank it came from and a request may search only some banks.
// Indexes made before banks hold one bank, "default". The bank "sightings"
// holds the images of ads Spoor has seen (sightings.h), not references.
inline constexpr const char* kDefaultBank = "default";
inline constexpr const char* kSightingsBank = "sightings";

// Banks named "benign-..." (benign-stock, benign-app-chrome) hold content
// known to be harmless that unrelated ads share: app screenshots' chrome,
// platform watermarks, stock photos. Their matches are never reported as
// matches, and the parts of an ad they explain do not link it to other ads
// (SightingLog::Record).
inline constexpr const char* kBenignBankPrefix = "benign-";
bool IsBenignBank(const std::string& bank);

// InvalidArgument unless `name` is 1-63 of [a-z0-9-], starting with a letter
// or digit. `allow_sightings`: whether "sightings" itself is acceptable (a
// search may name it; a reference may not be added to it).
absl::Status ValidateBankName(const std::string& name,
                              bool allow_sightings = false);

struct Reference {
  std::int64_t id = 0;  ///< stable id, never reused after removal
  std::string bank = kDefaultBank;
  std::string source;  ///< path relative to the indexed SOURCE, or a name
  std::string sha256;  ///< hex SHA-256 of the encoded bytes
  std::int64_t bytes = 0;
  int width = 0;  ///< original size, after EXIF orientation
  int height = 0;
  std::string format;
  Labels labels;
  std::string added_at;  ///< UTC, ISO 8601
};

// Selects references whose label `field` equals `value`. Fields:
// species_scientific, species_common, item_type, cites_appendix, source,
// case_ref, licence, and bank. An empty field selects every reference (not
// the sighting images: bank=sightings lists those).
struct LabelFilter {
  std::string field;
  std::string value;
};

// InvalidArgument naming the field when it is not a label.
absl::Status ValidateLabelFilter(const LabelFilter& filter);

// Hex SHA-256 of `size` bytes at `data`.
std::string Sha256Hex(const void* data, std::size_t size);

}  // namespace spoor

#endif  // SPOOR_REFERENCE_H_
