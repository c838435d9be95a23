#include "spoor/label_manifest.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "util/utf8.h"

namespace spoor {
namespace {

// Sets the label named `key`; false when no such label exists.
bool SetField(ManifestEntry& entry, const std::string& key,
              const std::string& value) {
  static const std::map<std::string, std::string Labels::*> kFields = {
      {"species_scientific", &Labels::species_scientific},
      {"species_common", &Labels::species_common},
      {"item_type", &Labels::item_type},
      {"cites_appendix", &Labels::cites_appendix},
      {"source", &Labels::source},
      {"case", &Labels::case_ref},
      {"licence", &Labels::licence},
  };
  if (key == "file") {
    entry.file = value;
    return true;
  }
  auto it = kFields.find(key);
  if (it == kFields.end()) return false;
  entry.labels.*(it->second) = value;
  return true;
}

// Checks what both formats share: every field is UTF-8, the file stays
// inside the manifest's folder (no absolute path, no "..") and is listed
// once. `seen` holds the normalised files so far.
absl::Status CheckEntry(const ManifestEntry& entry, const std::string& where,
                        std::set<std::string>& seen) {
  const Labels& l = entry.labels;
  for (const std::string* field :
       {&entry.file, &l.species_scientific, &l.species_common, &l.item_type,
        &l.cites_appendix, &l.source, &l.case_ref, &l.licence}) {
    if (!IsUtf8(*field)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": a field is not valid UTF-8"));
    }
  }
  std::filesystem::path file =
      std::filesystem::path(entry.file).lexically_normal();
  if (file.is_absolute() || file.has_root_name() || file.has_root_directory()) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": file '", entry.file,
        "' is an absolute path; files are relative to the manifest's folder"));
  }
  if (!file.empty() && *file.begin() == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": file '", entry.file, "' is outside the manifest's folder"));
  }
  if (!seen.insert(file.string()).second) {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": file '", entry.file, "' is listed more than once"));
  }
  return absl::OkStatus();
}

// One CSV record (RFC 4180: quoted fields may hold commas, doubled quotes and
// newlines). No Debian-packaged C++ CSV reader exists; this is the whole need.
bool ReadCsvRecord(std::istream& in, std::vector<std::string>& fields,
                   int& line) {
  fields.clear();
  std::string field;
  bool quoted = false, any = false;
  char c;
  while (in.get(c)) {
    any = true;
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') {
          field.push_back('"');
          in.get();
        } else {
          quoted = false;
        }
      } else {
        if (c == '\n') ++line;
        field.push_back(c);
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      ++line;
      break;
    } else if (c != '\r') {
      field.push_back(c);
    }
  }
  if (!any) return false;
  fields.push_back(std::move(field));
  return true;
}

absl::StatusOr<std::vector<ManifestEntry>> ReadCsv(const std::string& path,
                                                   std::istream& in) {
  std::vector<std::string> header, fields;
  int line = 0;
  if (!ReadCsvRecord(in, header, line)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty manifest"));
  }
  for (auto& h : header)
    h = absl::AsciiStrToLower(absl::StripAsciiWhitespace(h));
  std::vector<ManifestEntry> entries;
  std::set<std::string> seen;
  ManifestEntry probe;
  for (const auto& h : header) {
    if (!SetField(probe, h, "")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":1: unknown column '", h, "'"));
    }
  }
  while (true) {
    int record_line = line + 1;
    if (!ReadCsvRecord(in, fields, line)) break;
    if (fields.size() == 1 && absl::StripAsciiWhitespace(fields[0]).empty())
      continue;
    if (fields.size() != header.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", record_line, ": ", fields.size(),
                       " fields, header has ", header.size()));
    }
    ManifestEntry entry;
    for (size_t i = 0; i < header.size(); ++i) {
      SetField(entry, header[i],
               std::string(absl::StripAsciiWhitespace(fields[i])));
    }
    if (entry.file.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", record_line, ": empty 'file' field"));
    }
    if (auto s = CheckEntry(entry, absl::StrCat(path, ":", record_line), seen);
        !s.ok())
      return s;
    if (auto s = ValidateLabels(entry.labels); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", record_line, ": ", s.message()));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::StatusOr<std::vector<ManifestEntry>> ReadJson(const std::string& path,
                                                    std::istream& in) {
  nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
  if (doc.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": invalid JSON"));
  }
  if (doc.is_object() && doc.contains("references")) doc = doc["references"];
  if (!doc.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": expected an array of objects or {\"references\": [...]}"));
  }
  std::vector<ManifestEntry> entries;
  std::set<std::string> seen;
  for (size_t i = 0; i < doc.size(); ++i) {
    const auto& item = doc[i];
    std::string where = absl::StrCat(path, ": entry ", i);
    if (!item.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": not an object"));
    }
    ManifestEntry entry;
    for (const auto& [key, value] : item.items()) {
      if (!value.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": '", key, "' must be a string"));
      }
      if (!SetField(entry, key, value.get<std::string>())) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": unknown key '", key, "'"));
      }
    }
    if (entry.file.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": no 'file'"));
    }
    if (auto s = CheckEntry(entry, where, seen); !s.ok()) return s;
    if (auto s = ValidateLabels(entry.labels); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace

absl::StatusOr<std::vector<ManifestEntry>> ReadLabelManifest(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::string lower = absl::AsciiStrToLower(path);
  if (absl::EndsWith(lower, ".csv")) return ReadCsv(path, in);
  if (absl::EndsWith(lower, ".json")) return ReadJson(path, in);
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": manifest must end in .csv or .json"));
}

}  // namespace spoor
