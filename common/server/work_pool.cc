#include "common/server/work_pool.h"

#include <algorithm>
#include <iostream>

#include "common/status/torch_status.h"

namespace rlhf::server {

WorkPool::WorkPool(int threads, int queue_capacity)
    : queue_capacity_(static_cast<size_t>(std::max(queue_capacity, 0))) {
  const int count = std::max(threads, 1);
  thread_count_ = static_cast<size_t>(count);
  threads_.reserve(count);
  for (int i = 0; i < count; ++i) threads_.emplace_back([this] { WorkerLoop(); });
}

WorkPool::~WorkPool() { Stop(); }

bool WorkPool::TrySubmit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || queue_.size() + running_ >= thread_count_ + queue_capacity_) return false;
    queue_.push_back(std::move(task));
  }
  wake_.notify_one();
  return true;
}

void WorkPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

void WorkPool::WorkerLoop() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    // Tasks report their own errors; this is the thread's last edge, so an exception that
    // escapes one is logged instead of ending the process.
    if (absl::Status escaped = CatchTorchErrors("work pool task",
                                                [&] {
                                                  task();
                                                  return absl::OkStatus();
                                                });
        !escaped.ok()) {
      std::cerr << "rlhf: " << escaped << std::endl;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    --running_;
  }
}

}  // namespace rlhf::server
