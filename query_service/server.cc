#include "query_service/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "query_service/convert.h"
#include "query_service/metrics.h"
#include "query_service/service_impl.h"

namespace spoor::service {
namespace {

absl::StatusOr<std::string> ReadText(const std::string& path,
                                     const char* what) {
  std::ifstream in(path);
  if (!in)
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "' cannot be read"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const ServiceConfig& c) {
  if (!c.tls_enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      c.tls_require_client_cert
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  auto cert = ReadText(c.tls_cert_file, "tls_cert_file");
  if (!cert.ok()) return cert.status();
  auto key = ReadText(c.tls_key_file, "tls_key_file");
  if (!key.ok()) return key.status();
  options.pem_key_cert_pairs.push_back({*key, *cert});
  if (!c.tls_client_ca_file.empty()) {
    auto ca = ReadText(c.tls_client_ca_file, "tls_client_ca_file");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    if (!c.tls_require_client_cert) {
      options.client_certificate_request =
          GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    }
  }
  return grpc::SslServerCredentials(options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    const ServiceConfig& config, std::shared_ptr<spdlog::logger> log) {
  if (auto s = ValidateConfig(config); !s.ok()) return s;
  std::unique_ptr<Server> server(new Server());
  server->config_ = config;
  auto state = std::make_unique<ServiceState>();
  state->log = log;

  auto index = ReferenceIndex::Open(config.index_dir);
  if (!index.ok() && absl::IsNotFound(index.status()) &&
      config.create_index_if_missing) {
    index = ReferenceIndex::Create(config.index_dir, IndexOptions{});
  }
  if (index.ok()) {
    state->index = std::move(*index);
    state->matcher = std::make_unique<Matcher>(*state->index);
    auto sightings = SightingLog::Open(*state->index);
    if (!sightings.ok()) return sightings.status();
    state->sightings = std::move(*sightings);
    state->record_sightings = config.record_sightings;
    state->read_sighting_text = config.read_sighting_text;
    state->thumbnail_platforms = config.sighting_thumbnail_platforms;
    IndexStats s = state->index->Stats();
    log->info(
        "index {}: {} references, {} descriptors ({}){}", config.index_dir,
        s.references, s.descriptors, s.descriptor_factory,
        s.rebuilt_on_open ? ", FAISS files rebuilt from the database" : "");
  } else {
    state->index_error = std::string(index.status().message());
    log->error("no index loaded: {}", state->index_error);
  }

  std::string audit_path =
      !config.audit_log_file.empty()
          ? config.audit_log_file
          : (std::filesystem::path(config.index_dir) / "audit.jsonl").string();
  auto audit = AuditLog::Open(audit_path);
  if (audit.ok()) {
    state->audit = std::move(*audit);
  } else if (!config.audit_log_file.empty()) {
    return audit.status();  // asked for, and cannot be kept: do not start
  } else {
    // No index directory to keep it in (the service then answers
    // FAILED_PRECONDITION anyway).
    log->warn("no audit log: {}", std::string(audit.status().message()));
  }

  if (!config.api_keys_file.empty()) {
    auto keys = ApiKeys::Load(config.api_keys_file);
    if (!keys.ok()) return keys.status();
    log->info("{} api keys loaded from {}", keys->size(), config.api_keys_file);
    state->SetKeys(std::make_shared<const ApiKeys>(std::move(*keys)));
  } else {
    log->warn("no api_keys_file: every caller is allowed (loopback only)");
  }

  int workers =
      config.workers > 0
          ? config.workers
          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int queue = config.queue_size > 0 ? config.queue_size : 4 * workers;
  state->max_streams =
      config.max_streams > 0 ? config.max_streams : 8 * workers;
  state->pool = std::make_unique<WorkerPool>(
      workers, queue, [log](const std::string& what) {
        log->critical("a worker job threw (a bug; the service goes on): {}",
                      what);
      });

  auto creds = Credentials(config);
  if (!creds.ok()) return creds.status();

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  server->service_ = std::make_unique<SpoorService>(*state);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config.listen, *creds, &server->port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  builder.RegisterService(server->service_.get());
  server->grpc_ = builder.BuildAndStart();
  if (server->grpc_ == nullptr || server->port_ == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen on ", config.listen));
  }
  bool serving = state->index != nullptr;
  server->grpc_->GetHealthCheckService()->SetServingStatus(serving);
  server->grpc_->GetHealthCheckService()->SetServingStatus("spoor.v1.Spoor",
                                                           serving);

  ServiceState* raw = state.get();
  server->state_ = std::move(state);
  if (!config.metrics_listen.empty()) {
    auto metrics = MetricsHttpServer::Start(config.metrics_listen, [raw] {
      std::vector<std::tuple<std::string, std::string, double>> gauges = {
          {"spoor_queue_depth", "Match jobs waiting for a worker.",
           static_cast<double>(raw->pool->queue_depth())},
          {"spoor_workers", "Match worker threads.",
           static_cast<double>(raw->pool->workers())},
          {"spoor_open_streams", "StreamMatch streams open now.",
           static_cast<double>(raw->open_streams.load())}};
      if (raw->index) {
        IndexStats s = raw->index->Stats();
        gauges.emplace_back("spoor_index_references",
                            "References in the index.",
                            static_cast<double>(s.references));
        gauges.emplace_back("spoor_index_descriptors",
                            "Local descriptors in the index.",
                            static_cast<double>(s.descriptors));
      }
      return raw->metrics.Render(gauges);
    });
    if (!metrics.ok()) return metrics.status();
    server->metrics_ = std::move(*metrics);
  }
  log->info("listening on {} (port {}){}; metrics on {}", config.listen,
            server->port_, config.tls_enabled() ? " with TLS" : "",
            server->metrics_ ? absl::StrCat(server->metrics_->port())
                             : std::string("(off)"));
  server->saver_ = std::thread([s = server.get()] {
    s->SaveLoop(std::chrono::milliseconds(
        static_cast<long>(s->config_.save_interval_seconds * 1000)));
  });
  return server;
}

int Server::metrics_port() const { return metrics_ ? metrics_->port() : 0; }
bool Server::index_loaded() const { return state_->index != nullptr; }

void Server::SaveLoop(std::chrono::milliseconds interval) {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, interval, [&] { return stopping_; });
    if (stopping_) break;
    if (state_->sightings && !config_.sighting_retention_days.empty()) {
      lock.unlock();
      ApplyRetention();
      lock.lock();
    }
    if (state_->index && state_->dirty.exchange(false)) {
      lock.unlock();
      if (auto s = state_->index->Save(); !s.ok()) {
        state_->dirty = true;
        state_->log->error("saving the index failed: {}",
                           std::string(s.message()));
      }
      lock.lock();
    }
  }
}

void Server::ApplyRetention() {
  std::time_t now = std::time(nullptr);
  auto cutoff = [&](double days) {
    return UtcText(now - static_cast<std::time_t>(days * 86400));
  };
  const auto& retention = config_.sighting_retention_days;
  auto all = retention.find("*");
  auto platforms = state_->sightings->Platforms();
  if (!platforms.ok()) {
    state_->log->error("retention: {}",
                       std::string(platforms.status().message()));
    return;
  }
  for (const std::string& platform : *platforms) {
    auto it = retention.find(platform);
    if (it == retention.end()) it = all;
    if (it == retention.end()) continue;
    auto deleted =
        state_->sightings->Delete({platform, "", "", cutoff(it->second)});
    if (!deleted.ok()) {
      state_->log->error("retention for platform {}: {}", platform,
                         std::string(deleted.status().message()));
    } else if (deleted->sightings > 0) {
      state_->log->info(
          "retention: {} sightings of platform {} past {} days deleted ({} "
          "images)",
          deleted->sightings, platform, it->second, deleted->images);
      if (deleted->images > 0) state_->dirty = true;
    }
  }
}

absl::Status Server::ReloadKeys() {
  if (config_.api_keys_file.empty()) {
    return absl::FailedPreconditionError(
        "no api_keys_file configured: nothing to reload");
  }
  auto keys = ApiKeys::Load(config_.api_keys_file);
  if (!keys.ok()) {
    state_->log->error("api keys not reloaded, the old ones stay: {}",
                       std::string(keys.status().message()));
    return keys.status();
  }
  state_->log->info("{} api keys reloaded from {}", keys->size(),
                    config_.api_keys_file);
  state_->SetKeys(std::make_shared<const ApiKeys>(std::move(*keys)));
  return absl::OkStatus();
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  if (grpc_ == nullptr) return;  // never started
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  stop_cv_.notify_all();
  state_->log->info("shutting down: {} ms for in-flight calls", grace.count());
  grpc_->GetHealthCheckService()->SetServingStatus(false);
  grpc_->Shutdown(std::chrono::system_clock::now() + grace);
  if (saver_.joinable()) saver_.join();
  metrics_.reset();
  if (state_->index) {
    if (auto s = state_->index->Save(); !s.ok()) {
      state_->log->error("final save failed: {}", std::string(s.message()));
    }
  }
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  stop_cv_.notify_all();
  state_->log->info("stopped");
}

void Server::Wait() {
  std::unique_lock lock(mu_);
  stop_cv_.wait(lock, [&] { return stopped_; });
}

Server::~Server() {
  if (grpc_ == nullptr) return;
  Shutdown(std::chrono::milliseconds(0));
  grpc_->Wait();
}

}  // namespace spoor::service
