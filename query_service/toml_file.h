// Reads a TOML file (toml++) into a table, with errors as statuses that name
// the file and line: the one place the service parses TOML.
#ifndef SPOOR_QUERY_SERVICE_TOML_FILE_H_
#define SPOOR_QUERY_SERVICE_TOML_FILE_H_

#include <toml++/toml.h>

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace spoor::service {

// NotFound when `path` does not exist ("no such <what>"); InvalidArgument
// with "path:line: reason" when it does not parse.
inline absl::StatusOr<toml::table> ParseTomlFile(const std::string& path,
                                                 const char* what) {
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such ", what));
  }
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":", e.source().begin.line, ": ", std::string(e.description())));
  }
}

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_TOML_FILE_H_
