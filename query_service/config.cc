#include "query_service/config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"
#include "query_service/toml_file.h"

namespace spoor::service {
namespace {

template <typename T>
absl::Status Read(const toml::node& node, const std::string& key, T& out) {
  if (auto v = node.value<T>()) {
    out = *v;
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("config key '", key, "' has the wrong type"));
}

// An array of strings.
absl::Status ReadStrings(const toml::node& node, const std::string& key,
                         std::vector<std::string>& out) {
  const toml::array* array = node.as_array();
  if (array == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("config key '", key, "' must be an array of strings"));
  }
  for (const toml::node& v : *array) {
    std::optional<std::string> text = v.value<std::string>();
    if (!text) {
      return absl::InvalidArgumentError(
          absl::StrCat("config key '", key, "' must be an array of strings"));
    }
    out.push_back(*text);
  }
  return absl::OkStatus();
}

// A table of platform = days.
absl::Status ReadRetention(const toml::node& node,
                           std::map<std::string, double>& out) {
  const toml::table* table = node.as_table();
  if (table == nullptr) {
    return absl::InvalidArgumentError(
        "config key 'sighting_retention_days' must be a table of platform = "
        "days");
  }
  for (const auto& [platform, days] : *table) {
    std::optional<double> d = days.value<double>();
    if (!d || !(*d > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sighting_retention_days.", std::string(platform.str()),
                       " must be a number of days above 0"));
    }
    out[std::string(platform.str())] = *d;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServiceConfig> LoadConfig(const std::string& path) {
  auto parsed = ParseTomlFile(path, "config file");
  if (!parsed.ok()) return parsed.status();
  const toml::table& table = *parsed;
  ServiceConfig c;
  for (const auto& [k, node] : table) {
    std::string key(k.str());
    absl::Status s;
    if (key == "listen")
      s = Read(node, key, c.listen);
    else if (key == "index_dir")
      s = Read(node, key, c.index_dir);
    else if (key == "create_index_if_missing")
      s = Read(node, key, c.create_index_if_missing);
    else if (key == "workers")
      s = Read(node, key, c.workers);
    else if (key == "queue_size")
      s = Read(node, key, c.queue_size);
    else if (key == "max_streams")
      s = Read(node, key, c.max_streams);
    else if (key == "max_message_bytes")
      s = Read(node, key, c.max_message_bytes);
    else if (key == "shutdown_grace_seconds")
      s = Read(node, key, c.shutdown_grace_seconds);
    else if (key == "save_interval_seconds")
      s = Read(node, key, c.save_interval_seconds);
    else if (key == "tls_cert_file")
      s = Read(node, key, c.tls_cert_file);
    else if (key == "tls_key_file")
      s = Read(node, key, c.tls_key_file);
    else if (key == "tls_client_ca_file")
      s = Read(node, key, c.tls_client_ca_file);
    else if (key == "tls_require_client_cert")
      s = Read(node, key, c.tls_require_client_cert);
    else if (key == "api_keys_file")
      s = Read(node, key, c.api_keys_file);
    else if (key == "metrics_listen")
      s = Read(node, key, c.metrics_listen);
    else if (key == "audit_log_file")
      s = Read(node, key, c.audit_log_file);
    else if (key == "log_level")
      s = Read(node, key, c.log_level);
    else if (key == "record_sightings")
      s = Read(node, key, c.record_sightings);
    else if (key == "read_sighting_text")
      s = Read(node, key, c.read_sighting_text);
    else if (key == "sighting_thumbnail_platforms")
      s = ReadStrings(node, key, c.sighting_thumbnail_platforms);
    else if (key == "sighting_retention_days")
      s = ReadRetention(node, c.sighting_retention_days);
    else
      s = absl::InvalidArgumentError(
          absl::StrCat("unknown config key '", key, "'"));
    if (!s.ok())
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  return c;
}

bool IsLoopback(const std::string& listen) {
  std::string::size_type colon = listen.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty()) return false;  // ":50051" listens on every address
  // Resolve the name as the server will (numeric addresses parse as they
  // are): loopback only if every address it names is. A prefix test let
  // "127.evil.example" through.
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 ||
      found == nullptr) {
    return false;
  }
  bool loopback = true;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(a->ai_addr);
      loopback &= (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    } else if (a->ai_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(a->ai_addr);
      loopback &= IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) != 0;
    } else {
      loopback = false;
    }
  }
  ::freeaddrinfo(found);
  return loopback;
}

absl::Status ValidateConfig(const ServiceConfig& c) {
  if (c.index_dir.empty()) {
    return absl::InvalidArgumentError("index_dir is not set");
  }
  if (c.listen.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen '", c.listen, "' is not host:port"));
  }
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file and tls_key_file must be set together");
  }
  if (!c.tls_enabled() && !IsLoopback(c.listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to listen on ", c.listen,
        " without TLS; set tls_cert_file and tls_key_file, or use a loopback "
        "address"));
  }
  if (!IsLoopback(c.listen) && c.api_keys_file.empty() &&
      !c.tls_require_client_cert) {
    return absl::InvalidArgumentError(absl::StrCat(
        "refusing to listen on ", c.listen,
        " with no authentication; set api_keys_file or "
        "tls_require_client_cert (with tls_client_ca_file), or use a loopback "
        "address"));
  }
  if (!c.metrics_listen.empty() && !IsLoopback(c.metrics_listen)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics_listen '", c.metrics_listen,
        "' is not a loopback address; the metrics endpoint is plain HTTP "
        "without authentication, so scrape it through a local agent"));
  }
  if (c.tls_require_client_cert && c.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_require_client_cert needs tls_client_ca_file");
  }
  if (c.workers < 0 || c.queue_size < 0 || c.max_streams < 0 ||
      c.max_message_bytes <= 0 || c.shutdown_grace_seconds < 0 ||
      c.save_interval_seconds <= 0) {
    return absl::InvalidArgumentError(
        "workers, queue_size, max_streams, max_message_bytes, "
        "shutdown_grace_seconds and "
        "save_interval_seconds must not be negative");
  }
  return absl::OkStatus();
}

}  // namespace spoor::service
