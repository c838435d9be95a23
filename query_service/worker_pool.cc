#include "query_service/worker_pool.h"

namespace spoor::service {

WorkerPool::WorkerPool(int workers, int queue_size,
                       std::function<void(const std::string&)> on_uncaught)
    : queue_size_(queue_size), on_uncaught_(std::move(on_uncaught)) {
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Run(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  ready_.notify_all();
  room_.notify_all();
  for (auto& t : threads_) t.join();
}

bool WorkerPool::TrySubmit(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || static_cast<int>(queue_.size()) >= queue_size_)
      return false;
    queue_.push_back(std::move(job));
  }
  ready_.notify_one();
  return true;
}

bool WorkerPool::Submit(std::function<void()> job) {
  {
    std::unique_lock lock(mu_);
    room_.wait(lock, [&] {
      return stopping_ || static_cast<int>(queue_.size()) < queue_size_;
    });
    if (stopping_) return false;
    queue_.push_back(std::move(job));
  }
  ready_.notify_one();
  return true;
}

int WorkerPool::queue_depth() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(queue_.size());
}

void WorkerPool::Run() {
  while (true) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    room_.notify_one();
    std::string uncaught;
    try {
      job();
      continue;
    } catch (const std::exception& e) {
      uncaught = e.what();
    } catch (...) {
      uncaught = "unknown exception";
    }
    ++uncaught_;
    if (on_uncaught_) on_uncaught_(uncaught);
  }
}

}  // namespace spoor::service
