// The audit log: an append-only record of what curator and investigator keys
// did (who, what, when, which request, with what outcome), one JSON object a
// line. Each entry is written and fdatasync'ed before the call is answered,
// so it survives a crash and a restart; the file is only ever appended to.
//
// Thread safety: Append may be called from many threads at once.
#ifndef SPOOR_QUERY_SERVICE_AUDIT_LOG_H_
#define SPOOR_QUERY_SERVICE_AUDIT_LOG_H_

#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace spoor::service {

struct AuditEntry {
  std::string request_id;
  std::string key;     ///< the key's name
  std::string roles;   ///< "curator", "curator,investigator", ...
  std::string rpc;     ///< "RemoveReference"
  std::string target;  ///< "references/42", or empty
  std::string code;    ///< "OK", "NOT_FOUND", ...
};

class AuditLog {
 public:
  // Opens (creating, mode 0600) `path` for appending. FailedPrecondition
  // naming the path when it cannot be opened.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(
      const std::string& path);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends `entry` with the current UTC time and syncs it to disk.
  absl::Status Append(const AuditEntry& entry);

  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  const std::string path_;
  const int fd_;
  std::mutex mu_;
};

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_AUDIT_LOG_H_
