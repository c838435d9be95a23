// Per-key token buckets, on an injected clock: no sleeping, no timing.
#include "query_service/rate_limiter.h"

#include <gtest/gtest.h>

namespace spoor::service {
namespace {

using std::chrono::milliseconds;

TEST(RateLimiterTest, AllowsTheBurstThenTheRate) {
  RateLimiter limiter;
  auto t0 = RateLimiter::Clock::now();
  // 2 per second, burst 3: three at once, then none until time passes.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.TryAcquire("a", 2, 3, t0));
  EXPECT_FALSE(limiter.TryAcquire("a", 2, 3, t0));
  EXPECT_FALSE(limiter.TryAcquire("a", 2, 3, t0 + milliseconds(400)));
  EXPECT_TRUE(limiter.TryAcquire("a", 2, 3, t0 + milliseconds(600)));
  EXPECT_FALSE(limiter.TryAcquire("a", 2, 3, t0 + milliseconds(700)));
  // A long pause refills up to the burst, not past it.
  auto later = t0 + std::chrono::seconds(60);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.TryAcquire("a", 2, 3, later));
  EXPECT_FALSE(limiter.TryAcquire("a", 2, 3, later));
}

TEST(RateLimiterTest, KeysHaveTheirOwnBucketsAndZeroIsUnlimited) {
  RateLimiter limiter;
  auto t0 = RateLimiter::Clock::now();
  EXPECT_TRUE(limiter.TryAcquire("a", 1, 1, t0));
  EXPECT_FALSE(limiter.TryAcquire("a", 1, 1, t0));
  EXPECT_TRUE(limiter.TryAcquire("b", 1, 1, t0));  // b is not a's
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.TryAcquire("c", 0, 0, t0));
}

}  // namespace
}  // namespace spoor::service
