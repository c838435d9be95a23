#include "query_service/audit_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace spoor::service {

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(
    const std::string& path) {
  int fd =
      ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": cannot open the audit log: ", std::strerror(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(path, fd));
}

AuditLog::~AuditLog() { ::close(fd_); }

absl::Status AuditLog::Append(const AuditEntry& e) {
  nlohmann::json j = {
      {"time", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                absl::UTCTimeZone())},
      {"request_id", e.request_id},
      {"key", e.key},
      {"roles", e.roles},
      {"rpc", e.rpc},
      {"target", e.target},
      {"code", e.code}};
  // Client text (a reference name, say) may hold anything; replace what is
  // not UTF-8 rather than fail to record the action.
  std::string line =
      j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::lock_guard lock(mu_);
  // O_APPEND: each write lands whole at the end, even beside another
  // process appending to the same file.
  ssize_t n = ::write(fd_, line.data(), line.size());
  if (n != static_cast<ssize_t>(line.size()) || ::fdatasync(fd_) != 0) {
    return absl::InternalError(
        absl::StrCat(path_, ": audit write failed: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace spoor::service
