// A fixed set of worker threads fed by a bounded queue. Callers either get
// their job queued at once or are told the queue is full, so overload turns
// into an immediate RESOURCE_EXHAUSTED instead of unbounded latency.
//
// Thread safety: all methods may be called concurrently.
#ifndef SPOOR_QUERY_SERVICE_WORKER_POOL_H_
#define SPOOR_QUERY_SERVICE_WORKER_POOL_H_

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace spoor::service {

class WorkerPool {
 public:
  WorkerPool(int workers, int queue_size);
  ~WorkerPool();  // finishes queued jobs, then joins

  // Queues `job` unless `queue_size` jobs already wait; false then.
  bool TrySubmit(std::function<void()> job);
  // Queues `job`, waiting for room (used by streams, whose window already
  // bounds what they submit). False once the pool is shutting down.
  bool Submit(std::function<void()> job);

  int queue_depth() const;
  int workers() const { return static_cast<int>(threads_.size()); }

 private:
  void Run();

  const int queue_size_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::condition_variable room_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace spoor::service

#endif  // SPOOR_QUERY_SERVICE_WORKER_POOL_H_
