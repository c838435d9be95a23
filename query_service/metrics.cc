#include "query_service/metrics.h"

#include <civetweb.h>

#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace spoor::service {

void Metrics::Record(const std::string& rpc, const std::string& code,
                     double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{rpc, code}];
  Histogram& h = latency_[rpc];
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

std::map<std::string, std::int64_t> Metrics::RequestCounts() const {
  std::lock_guard lock(mu_);
  std::map<std::string, std::int64_t> out;
  for (const auto& [key, n] : requests_) out[key.first + " " + key.second] = n;
  return out;
}

std::string Metrics::Render(
    const std::vector<std::tuple<std::string, std::string, double>>& gauges)
    const {
  std::ostringstream out;
  std::lock_guard lock(mu_);
  out << "# HELP spoor_requests_total gRPC requests by method and status "
         "code.\n"
      << "# TYPE spoor_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    out << "spoor_requests_total{rpc=\"" << key.first << "\",code=\""
        << key.second << "\"} " << n << "\n";
  }
  out << "# HELP spoor_request_duration_seconds gRPC request latency.\n"
      << "# TYPE spoor_request_duration_seconds histogram\n";
  for (const auto& [rpc, h] : latency_) {
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      out << "spoor_request_duration_seconds_bucket{rpc=\"" << rpc << "\",le=\""
          << kBuckets[i] << "\"} " << h.buckets[i] << "\n";
    }
    out << "spoor_request_duration_seconds_bucket{rpc=\"" << rpc
        << "\",le=\"+Inf\"} " << h.count << "\n"
        << "spoor_request_duration_seconds_sum{rpc=\"" << rpc << "\"} " << h.sum
        << "\n"
        << "spoor_request_duration_seconds_count{rpc=\"" << rpc << "\"} "
        << h.count << "\n";
  }
  for (const auto& [name, help, value] : gauges) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name << " gauge\n"
        << name << " " << value << "\n";
  }
  return out.str();
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::function<std::string()> render) {
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  server->render_ = std::move(render);
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads",
                           "2", nullptr};
  mg_callbacks callbacks{};
  server->ctx_ = mg_start(&callbacks, server.get(), options);
  if (server->ctx_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot serve metrics on ", listen));
  }
  mg_set_request_handler(server->ctx_, "/metrics", &MetricsHttpServer::Handle,
                         server.get());
  mg_server_port ports[4];
  int n = mg_get_server_ports(server->ctx_, 4, ports);
  if (n > 0) server->port_ = ports[0].port;
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int MetricsHttpServer::Handle(::mg_connection* conn, void* self) {
  std::string body = static_cast<MetricsHttpServer*>(self)->render_();
  std::string head = absl::StrCat(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
      "Content-Length: ",
      body.size(), "\r\nConnection: close\r\n\r\n");
  mg_write(conn, head.data(), head.size());
  mg_write(conn, body.data(), body.size());
  return 200;
}

}  // namespace spoor::service
