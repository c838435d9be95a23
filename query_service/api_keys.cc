#include "query_service/api_keys.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "query_service/toml_file.h"
#include "spoor/reference.h"

namespace spoor::service {

absl::StatusOr<Role> ParseRole(const std::string& name) {
  if (name == "platform") return Role::kPlatform;
  if (name == "curator") return Role::kCurator;
  if (name == "investigator") return Role::kInvestigator;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown role '", name, "' (platform, curator, investigator)"));
}

const char* RoleName(Role role) {
  switch (role) {
    case Role::kPlatform:
      return "platform";
    case Role::kCurator:
      return "curator";
    case Role::kInvestigator:
      return "investigator";
  }
  return "?";
}

bool Principal::Has(Role r) const {
  return std::find(roles.begin(), roles.end(), r) != roles.end();
}

absl::StatusOr<ApiKeys> ApiKeys::Load(const std::string& path) {
  auto parsed = ParseTomlFile(path, "key file");
  if (!parsed.ok()) return parsed.status();
  toml::table& table = *parsed;
  ApiKeys keys;
  const toml::array* entries = table["key"].as_array();
  if (entries == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no [[key]] entries"));
  }
  for (size_t i = 0; i < entries->size(); ++i) {
    std::string where = absl::StrCat(path, ": key ", i + 1);
    const toml::table* t = (*entries)[i].as_table();
    if (t == nullptr)
      return absl::InvalidArgumentError(where + ": not a table");
    Entry e;
    e.principal.name = (*t)["name"].value_or(std::string());
    e.sha256 = (*t)["sha256"].value_or(std::string());
    if (e.principal.name.empty()) {
      return absl::InvalidArgumentError(where + ": no name");
    }
    if (e.sha256.size() != 64 ||
        e.sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
      return absl::InvalidArgumentError(
          where + ": sha256 must be 64 lower-case hex digits");
    }
    const toml::array* roles = (*t)["roles"].as_array();
    if (roles == nullptr || roles->empty()) {
      return absl::InvalidArgumentError(where + ": no roles");
    }
    for (const auto& r : *roles) {
      auto role = ParseRole(r.value_or(std::string()));
      if (!role.ok())
        return absl::InvalidArgumentError(
            absl::StrCat(where, ": ", role.status().message()));
      e.principal.roles.push_back(*role);
    }
    for (auto [field, out] :
         {std::pair{"requests_per_second", &e.principal.requests_per_second},
          std::pair{"burst", &e.principal.burst}}) {
      const toml::node* n = t->get(field);
      if (n == nullptr) continue;
      std::optional<double> v = n->value<double>();
      if (!v || !(*v >= 0) || *v > 1e9) {
        return absl::InvalidArgumentError(absl::StrCat(
            where, ": ", field, " must be a number between 0 and 1e9"));
      }
      *out = *v;
    }
    if (e.principal.burst == 0)
      e.principal.burst = e.principal.requests_per_second;
    keys.keys_.push_back(std::move(e));
  }
  return keys;
}

absl::StatusOr<Principal> ApiKeys::Authenticate(
    const std::string& authorization) const {
  static const std::string kBearer = "Bearer ";
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing 'authorization: Bearer <api key>' metadata");
  }
  if (authorization.rfind(kBearer, 0) != 0 ||
      authorization.size() == kBearer.size()) {
    return absl::UnauthenticatedError(
        "authorization metadata must be 'Bearer <api key>'");
  }
  std::string digest = Sha256Hex(authorization.data() + kBearer.size(),
                                 authorization.size() - kBearer.size());
  const Entry* found = nullptr;
  for (const Entry& e : keys_) {
    // Constant-time comparison: the time taken says nothing about the key.
    if (CRYPTO_memcmp(e.sha256.data(), digest.data(), digest.size()) == 0)
      found = &e;
  }
  if (found == nullptr) return absl::UnauthenticatedError("unknown api key");
  return found->principal;
}

}  // namespace spoor::service
