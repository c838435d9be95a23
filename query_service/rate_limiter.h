// Per-key request rate limits: a token bucket for each API key name, filled
// at the key's requests_per_second up to its burst. One bucket per key for
// the life of the process.
//
// Thread safety: TryAcquire may be called from many threads at once.
#ifndef SPOOR_QUERY_SERVICE_RATE_LIMITER_H_
#define SPOOR_QUERY_SERVICE_RATE_LIMITER_H_

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace spoor::service {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // Takes one request from `key`'s bucket; false when it is empty. A rate of
  // 0 or less means unlimited.
  bool TryAcquire(const std::string& key, double per_second, double burst,
                  Clock::time_point now = Clock::now());

 private:
  struct Bucket {
    double tokens = 0;
    Clock::time_point last;
  };
  std::mutex mu_;
  std::map<std::string, Bucket> buckets_;
};

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_RATE_LIMITER_H_
