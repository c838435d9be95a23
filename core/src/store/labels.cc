#include <openssl/evp.h>

#include <array>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spoor/reference.h"
#include "util/hex.h"

namespace spoor {
namespace {
constexpr std::array<const char*, 8> kItemTypes = {
    "live_animal", "ivory", "horn",     "skin",
    "scales",      "shell", "feathers", "other"};
constexpr std::array<const char*, 3> kAppendices = {"I", "II", "III"};

template <size_t N>
bool OneOf(const std::string& value,
           const std::array<const char*, N>& allowed) {
  for (const char* a : allowed)
    if (value == a) return true;
  return false;
}
}  // namespace

absl::Status ValidateLabels(const Labels& labels) {
  if (!labels.item_type.empty() && !OneOf(labels.item_type, kItemTypes)) {
    return absl::InvalidArgumentError(
        absl::StrCat("item_type '", labels.item_type,
                     "' is not one of: ", absl::StrJoin(kItemTypes, ", ")));
  }
  if (!labels.cites_appendix.empty() &&
      !OneOf(labels.cites_appendix, kAppendices)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cites_appendix '", labels.cites_appendix,
                     "' is not one of: I, II, III"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelFilter(const LabelFilter& filter) {
  static constexpr std::array<const char*, 8> kFields = {"species_scientific",
                                                         "species_common",
                                                         "item_type",
                                                         "cites_appendix",
                                                         "source",
                                                         "case_ref",
                                                         "licence",
                                                         "bank"};
  if (filter.field.empty() || OneOf(filter.field, kFields)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cannot filter on '", filter.field,
                   "'; labels are: ", absl::StrJoin(kFields, ", ")));
}

bool IsBenignBank(const std::string& bank) {
  return bank.rfind(kBenignBankPrefix, 0) == 0;
}

absl::Status ValidateBankName(const std::string& name, bool allow_sightings) {
  bool ok = !name.empty() && name.size() <= 63 && name.front() != '-';
  for (char c : name)
    ok &= (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  if (!ok) {
    return absl::InvalidArgumentError(
        "a bank name is 1-63 of a-z, 0-9 and '-', not starting with '-'");
  }
  if (!allow_sightings && name == kSightingsBank) {
    return absl::InvalidArgumentError(
        "the bank 'sightings' holds ad images; references go in another bank");
  }
  return absl::OkStatus();
}

std::string Sha256Hex(const void* data, std::size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(data, size, digest, &length, EVP_sha256(), nullptr);
  return HexEncode(digest, length);
}

}  // namespace spoor
