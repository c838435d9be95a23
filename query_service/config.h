// Every setting of spoor-query-service, read from one TOML file and
// overridden by flags (main.cc). Defaults are safe: loopback only, no TLS.
#ifndef SPOOR_QUERY_SERVICE_CONFIG_H_
#define SPOOR_QUERY_SERVICE_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace spoor::service {

struct ServiceConfig {
  // host:port to serve gRPC on; port 0 picks a free one. Without TLS the
  // host must be loopback. Default: "127.0.0.1:50051".
  std::string listen = "127.0.0.1:50051";
  // Index directory written by spoor-indexer. Required.
  std::string index_dir;
  // Create an empty index when index_dir holds none. Default: false (the
  // service then answers FAILED_PRECONDITION until restarted with an index).
  bool create_index_if_missing = false;
  // Match workers. Default: 0 = one per core.
  int workers = 0;
  // Match jobs allowed to wait for a worker; past it RESOURCE_EXHAUSTED.
  // Default: 0 = 4 per worker.
  int queue_size = 0;
  // StreamMatch streams open at once; past it RESOURCE_EXHAUSTED. Each
  // holds a thread and up to two images per worker. Default: 0 = 8 per
  // worker.
  int max_streams = 0;
  // Largest request accepted, bytes. Default: 24 MiB (a 20 MB photo fits).
  std::int64_t max_message_bytes = 24LL << 20;
  // Seconds in-flight calls get to finish on SIGTERM/SIGINT. Default: 10.
  double shutdown_grace_seconds = 10;
  // Seconds between saves of the FAISS files while references change.
  // Default: 30. (The database is written at every change regardless.)
  double save_interval_seconds = 30;
  // TLS: PEM files. Both set = TLS on.
  std::string tls_cert_file;
  std::string tls_key_file;
  // PEM of CAs whose client certificates are accepted; with
  // tls_require_client_cert, clients must present one. Default: none.
  std::string tls_client_ca_file;
  bool tls_require_client_cert = false;
  // API key file (TOML, see docs/API.md). Empty = no authentication
  // (allowed on loopback only).
  std::string api_keys_file;
  // host:port of the Prometheus /metrics endpoint; port 0 picks one; empty
  // disables it. Default: "127.0.0.1:9464".
  std::string metrics_listen = "127.0.0.1:9464";
  // Append-only JSON-lines record of every call made with a curator or
  // investigator key (see audit_log.h). Default: empty = INDEX_DIR/audit.jsonl.
  std::string audit_log_file;
  // Record a sighting for every Match that carries an ad (platform and
  // ad_id), so relisted items are linked. Default: true.
  bool record_sightings = true;
  // Read the text in each sighting's image (Tesseract, 20-70 ms an image):
  // links between ads then discount matches on words, and shared phone
  // numbers, e-mail addresses and handles link ads by a contact link.
  // Default: true.
  bool read_sighting_text = true;
  // Days each platform's sightings are kept, by platform ("*": every
  // platform not named), fractions allowed; applied at every save tick.
  // Default: none = kept until DeleteSightings.
  std::map<std::string, double> sighting_retention_days;
  // Platforms whose policy lets Spoor keep a small JPEG (longest side 320
  // px) of each ad image, for case reports ("*": every platform). Default:
  // none, and no pixels are kept.
  std::vector<std::string> sighting_thumbnail_platforms;
  // trace, debug, info, warn, error. Default: info.
  std::string log_level = "info";

  bool tls_enabled() const {
    return !tls_cert_file.empty() && !tls_key_file.empty();
  }
};

// Reads a TOML file. InvalidArgument naming the key for an unknown key or a
// value of the wrong type; NotFound when the file cannot be read.
absl::StatusOr<ServiceConfig> LoadConfig(const std::string& path);

// Checks a complete configuration (index set, TLS files both or neither,
// non-loopback only with TLS, positive sizes).
absl::Status ValidateConfig(const ServiceConfig& config);

// True for 127.0.0.0/8, localhost and [::1] addresses ("host:port").
bool IsLoopback(const std::string& listen);

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_CONFIG_H_
