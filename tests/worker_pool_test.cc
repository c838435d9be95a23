#include "query_service/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace spoor::service {
namespace {

// Regression: a job that threw (an OpenCV error, std::bad_alloc) escaped the
// worker thread and std::terminate ended the whole service.
TEST(WorkerPoolTest, AJobThatThrowsDoesNotEndTheWorkerOrTheProcess) {
  std::mutex mu;
  std::vector<std::string> reported;
  std::atomic<int> ran{0};
  {
    WorkerPool pool(1, 8, [&](const std::string& what) {
      std::lock_guard lock(mu);
      reported.push_back(what);
    });
    ASSERT_TRUE(pool.Submit([] { throw std::runtime_error("bad pixels"); }));
    ASSERT_TRUE(pool.Submit([] { throw 42; }));
    ASSERT_TRUE(pool.Submit([&] { ++ran; }));
    ASSERT_TRUE(pool.Submit([] { throw std::bad_alloc(); }));
    ASSERT_TRUE(pool.Submit([&] { ++ran; }));
  }  // the destructor drains the queue on the one worker
  EXPECT_EQ(ran.load(), 2);
  ASSERT_EQ(reported.size(), 3u);
  EXPECT_EQ(reported[0], "bad pixels");
  EXPECT_EQ(reported[1], "unknown exception");
  EXPECT_NE(reported[2].find("bad_alloc"), std::string::npos) << reported[2];
}

TEST(WorkerPoolTest, CountsUncaughtJobs) {
  WorkerPool pool(2, 8);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(pool.Submit([&, i] {
      {
        // Notified under the lock: the test cannot return (destroying `cv`)
        // until the last job is done with it (TSan found the race).
        std::lock_guard lock(mu);
        ++done;
        cv.notify_all();
      }
      if (i % 2 == 0) throw std::logic_error("bug");
    }));
  }
  std::unique_lock lock(mu);
  ASSERT_TRUE(
      cv.wait_for(lock, std::chrono::seconds(10), [&] { return done == 4; }));
  lock.unlock();
  // The counter is bumped after the job unwinds: wait for it briefly.
  for (int i = 0; i < 1000 && pool.uncaught() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(pool.uncaught(), 2);
}

TEST(WorkerPoolTest, TrySubmitRefusesWhenTheQueueIsFull) {
  std::mutex gate;
  std::unique_lock hold(gate);
  std::atomic<bool> started{false};
  WorkerPool pool(1, 1);
  ASSERT_TRUE(pool.TrySubmit([&] {
    started = true;
    std::lock_guard wait(gate);
  }));
  while (!started) std::this_thread::yield();
  EXPECT_TRUE(pool.TrySubmit([] {}));   // waits in the queue
  EXPECT_FALSE(pool.TrySubmit([] {}));  // queue full
  hold.unlock();
}

}  // namespace
}  // namespace spoor::service
