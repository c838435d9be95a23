// API keys and roles. Keys are stored as SHA-256 hex digests in a TOML file:
//
//   [[key]]
//   name = "acme-marketplace"
//   sha256 = "<hex SHA-256 of the key>"   # spoor hash-key prints it
//   roles = ["platform"]
//   requests_per_second = 50   # optional; 0 or absent: unlimited
//   burst = 100                # optional; default: requests_per_second
//
// Thread safety: immutable after Load; Authenticate may run concurrently.
#ifndef SPOOR_QUERY_SERVICE_API_KEYS_H_
#define SPOOR_QUERY_SERVICE_API_KEYS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace spoor::service {

enum class Role { kPlatform, kCurator, kInvestigator };

// "platform" -> kPlatform, ...; InvalidArgument for anything else.
absl::StatusOr<Role> ParseRole(const std::string& name);
const char* RoleName(Role role);

struct Principal {
  std::string name;
  std::vector<Role> roles;
  double requests_per_second = 0;  ///< 0: unlimited
  double burst = 0;                ///< requests allowed at once
  bool Has(Role r) const;
};

class ApiKeys {
 public:
  // InvalidArgument naming the entry for a malformed file.
  static absl::StatusOr<ApiKeys> Load(const std::string& path);

  // `authorization` is the metadata value ("Bearer <key>"). Unauthenticated
  // when missing, malformed or unknown.
  absl::StatusOr<Principal> Authenticate(
      const std::string& authorization) const;

  size_t size() const { return keys_.size(); }

 private:
  struct Entry {
    std::string sha256;
    Principal principal;
  };
  std::vector<Entry> keys_;
};

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_API_KEYS_H_
