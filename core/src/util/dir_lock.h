// An exclusive, advisory lock on a directory (flock on DIR/LOCK), so two
// writers (spoor-indexer and a running service, say) never share one index
// directory. The kernel drops the lock when the holder exits, kill -9 too.
//
// Thread safety: a DirLock is not shared; it is held for an index's lifetime.
#ifndef SPOOR_UTIL_DIR_LOCK_H_
#define SPOOR_UTIL_DIR_LOCK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace spoor {

class DirLock {
 public:
  // FailedPrecondition naming the holder's pid when another open index (in
  // this process or another) holds DIR.
  static absl::StatusOr<std::unique_ptr<DirLock>> Acquire(
      const std::string& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace spoor

#endif  // SPOOR_UTIL_DIR_LOCK_H_
