// A fixed set of worker threads fed by a bounded queue. Callers either get
// their job queued at once or are told the queue is full, so overload turns
// into an immediate RESOURCE_EXHAUSTED instead of unbounded latency. A job
// that throws is contained: the worker reports it to `on_uncaught` and goes
// on with the next job, so one bad image never ends the process.
//
// Thread safety: all methods may be called concurrently.
#ifndef SPOOR_QUERY_SERVICE_WORKER_POOL_H_
#define SPOOR_QUERY_SERVICE_WORKER_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace spoor::service {

class WorkerPool {
 public:
  // `on_uncaught` is called (on the worker) with the message of anything a
  // job throws; may be empty.
  WorkerPool(int workers, int queue_size,
             std::function<void(const std::string&)> on_uncaught = {});
  ~WorkerPool();  // finishes queued jobs, then joins

  // Queues `job` unless `queue_size` jobs already wait; false then.
  bool TrySubmit(std::function<void()> job);
  // Queues `job`, waiting for room (used by streams, whose window already
  // bounds what they submit). False once the pool is shutting down.
  bool Submit(std::function<void()> job);

  int queue_depth() const;
  int workers() const { return static_cast<int>(threads_.size()); }
  // Jobs that threw instead of returning; each one is a bug to fix.
  std::int64_t uncaught() const { return uncaught_.load(); }

 private:
  void Run();

  const int queue_size_;
  const std::function<void(const std::string&)> on_uncaught_;
  std::atomic<std::int64_t> uncaught_{0};
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::condition_variable room_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_WORKER_POOL_H_
