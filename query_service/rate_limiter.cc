#include "query_service/rate_limiter.h"

#include <algorithm>

namespace spoor::service {

bool RateLimiter::TryAcquire(const std::string& key, double per_second,
                             double burst, Clock::time_point now) {
  if (per_second <= 0) return true;
  burst = std::max(1.0, burst);
  std::lock_guard lock(mu_);
  auto [it, fresh] = buckets_.try_emplace(key, Bucket{burst, now});
  Bucket& b = it->second;
  if (!fresh && now > b.last) {
    double seconds = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst, b.tokens + seconds * per_second);
    b.last = now;
  }
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

}  // namespace spoor::service
