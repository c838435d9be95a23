// Runs spoor-query-service: loads the index, starts the gRPC server (health
// checking and reflection included), the metrics endpoint and the periodic
// save, and shuts all of it down gracefully. main.cc, the end-to-end tests
// and the load benchmark all start the service through this class.
//
// Thread safety: Shutdown may be called from any thread, once or more.
#ifndef SPOOR_QUERY_SERVICE_SERVER_H_
#define SPOOR_QUERY_SERVICE_SERVER_H_

#include <spdlog/logger.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/status/statusor.h"
#include "query_service/config.h"

namespace grpc {
class Server;
}

namespace spoor::service {

struct ServiceState;
class SpoorService;
class MetricsHttpServer;

class Server {
 public:
  // InvalidArgument for a bad configuration (names the setting),
  // FailedPrecondition when the port cannot be bound. A missing or
  // unreadable index does not stop the start: the service then answers
  // FAILED_PRECONDITION and reports NOT_SERVING to health checks.
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      const ServiceConfig& config, std::shared_ptr<spdlog::logger> log);
  ~Server();

  int port() const { return port_; }
  int metrics_port() const;
  bool index_loaded() const;

  // Reads the API key file again and puts its keys in force for the next
  // call (keys removed from the file are revoked). On error the old keys
  // stay in force and the error is returned and logged. main.cc calls this
  // on SIGHUP.
  absl::Status ReloadKeys();

  // Stops accepting calls, gives in-flight calls `grace` to finish, then
  // saves the index.
  void Shutdown(std::chrono::milliseconds grace);
  // Blocks until Shutdown has finished.
  void Wait();

 private:
  Server() = default;
  // Deletes the sightings past their platform's retention.
  void ApplyRetention();
  void SaveLoop(std::chrono::milliseconds interval);

  ServiceConfig config_;
  std::unique_ptr<ServiceState> state_;
  std::unique_ptr<SpoorService> service_;
  std::unique_ptr<grpc::Server> grpc_;
  std::unique_ptr<MetricsHttpServer> metrics_;
  int port_ = 0;

  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  bool stopped_ = false;
  std::thread saver_;
};

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_SERVER_H_
