// spoor-query-service: serves an index directory over gRPC.
//
//   spoor-query-service [--config FILE] [--index DIR] [--listen HOST:PORT] ...
//
// Settings come from the TOML config file, then flags. Exit codes: 0 after a
// clean shutdown (SIGTERM/SIGINT); 2 bad usage or configuration; 1 the
// service could not start.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <fstream>
#include <iostream>
#include <thread>

#include "query_service/config.h"
#include "query_service/server.h"
#include "spoor/blas_kernels.h"

int main(int argc, char** argv) {
  spoor::RerunWithFasterBlasKernels(argv);
  using spoor::service::ServiceConfig;
  CLI::App app{
      "spoor-query-service: match ad images against Spoor references over "
      "gRPC"};
  std::string config_file, port_file;
  ServiceConfig flags;
  app.add_option("--config", config_file, "TOML file with every setting");
  auto* index = app.add_option("--index", flags.index_dir, "index directory");
  auto* listen = app.add_option("--listen", flags.listen,
                                "gRPC host:port (port 0: any free)");
  auto* create =
      app.add_flag("--create-index-if-missing", flags.create_index_if_missing,
                   "create an empty index when DIR has none");
  auto* workers = app.add_option("--workers", flags.workers,
                                 "match workers (0: one per core)");
  auto* queue = app.add_option(
      "--queue-size", flags.queue_size,
      "queued match jobs before RESOURCE_EXHAUSTED (0: 4 per worker)");
  auto* streams = app.add_option(
      "--max-streams", flags.max_streams,
      "open StreamMatch streams before RESOURCE_EXHAUSTED (0: 8 per worker)");
  auto* max_msg = app.add_option("--max-message-bytes", flags.max_message_bytes,
                                 "largest request");
  auto* grace =
      app.add_option("--shutdown-grace-seconds", flags.shutdown_grace_seconds,
                     "time in-flight calls get on shutdown");
  auto* save =
      app.add_option("--save-interval-seconds", flags.save_interval_seconds,
                     "seconds between index saves");
  auto* cert = app.add_option("--tls-cert", flags.tls_cert_file,
                              "PEM certificate chain");
  auto* key =
      app.add_option("--tls-key", flags.tls_key_file, "PEM private key");
  auto* ca = app.add_option("--tls-client-ca", flags.tls_client_ca_file,
                            "PEM CAs for client certificates");
  auto* require =
      app.add_flag("--tls-require-client-cert", flags.tls_require_client_cert,
                   "clients must present a certificate");
  auto* keys =
      app.add_option("--api-keys", flags.api_keys_file, "API key file (TOML)");
  auto* metrics = app.add_option("--metrics-listen", flags.metrics_listen,
                                 "Prometheus host:port, empty to disable");
  auto* level = app.add_option("--log-level", flags.log_level,
                               "trace, debug, info, warn, error");
  app.add_option("--port-file", port_file,
                 "write the bound gRPC port here once serving");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "spoor-query-service: " << e.what() << " (see --help)\n";
    return 2;
  }

  ServiceConfig config;
  if (!config_file.empty()) {
    auto loaded = spoor::service::LoadConfig(config_file);
    if (!loaded.ok()) {
      std::cerr << "spoor-query-service: " << loaded.status().message() << "\n";
      return 2;
    }
    config = *loaded;
  }
  // Flags given on the command line win over the file.
  if (*index) config.index_dir = flags.index_dir;
  if (*listen) config.listen = flags.listen;
  if (*create) config.create_index_if_missing = flags.create_index_if_missing;
  if (*workers) config.workers = flags.workers;
  if (*queue) config.queue_size = flags.queue_size;
  if (*streams) config.max_streams = flags.max_streams;
  if (*max_msg) config.max_message_bytes = flags.max_message_bytes;
  if (*grace) config.shutdown_grace_seconds = flags.shutdown_grace_seconds;
  if (*save) config.save_interval_seconds = flags.save_interval_seconds;
  if (*cert) config.tls_cert_file = flags.tls_cert_file;
  if (*key) config.tls_key_file = flags.tls_key_file;
  if (*ca) config.tls_client_ca_file = flags.tls_client_ca_file;
  if (*require) config.tls_require_client_cert = flags.tls_require_client_cert;
  if (*keys) config.api_keys_file = flags.api_keys_file;
  if (*metrics) config.metrics_listen = flags.metrics_listen;
  if (*level) config.log_level = flags.log_level;

  auto log = spdlog::stderr_color_mt("spoor-query-service");
  log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  log->set_level(spdlog::level::from_str(config.log_level));
  if (std::string blas = spoor::BlasKernels(); !blas.empty())
    log->info("OpenBLAS kernels: {}", blas);
  if (auto s = spoor::service::ValidateConfig(config); !s.ok()) {
    std::cerr << "spoor-query-service: " << s.message() << "\n";
    return 2;
  }

  // Signals are waited for on one thread instead of handled asynchronously,
  // so shutdown runs as ordinary code.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);  // reload the API key file
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = spoor::service::Server::Start(config, log);
  if (!server.ok()) {
    std::cerr << "spoor-query-service: " << server.status().message() << "\n";
    return absl::IsInvalidArgument(server.status()) ? 2 : 1;
  }
  if (!port_file.empty()) {
    std::ofstream(port_file + ".tmp") << (*server)->port() << "\n";
    std::rename((port_file + ".tmp").c_str(), port_file.c_str());
  }
  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    log->info("received SIGHUP: reloading the api keys");
    (void)(*server)->ReloadKeys();  // logged; old keys stay on error
  }
  log->info("received {}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(std::chrono::milliseconds(
      static_cast<long>(config.shutdown_grace_seconds * 1000)));
  return 0;
}
