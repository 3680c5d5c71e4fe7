#pragma once
// WorkPool: a fixed set of threads with a bounded queue. gRPC callback reactions must not
// block (gRPC callback API docs), so handlers hand their heavy work here; when the queue
// is full TrySubmit refuses and the handler answers RESOURCE_EXHAUSTED instead of
// queueing forever. Thread-safe.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace rlhf::server {

class WorkPool {
 public:
  WorkPool(int threads, int queue_capacity);
  ~WorkPool();  // runs what is queued, then joins
  WorkPool(const WorkPool&) = delete;
  WorkPool& operator=(const WorkPool&) = delete;

  // Queues `task` unless it would have to wait behind queue_capacity others (idle
  // workers take tasks at once, so capacity 0 means "only when a worker is free"), or
  // the pool is stopping.
  bool TrySubmit(std::function<void()> task);

  // Stops accepting, runs the queued tasks, joins the threads. Idempotent.
  void Stop();

 private:
  void WorkerLoop();

  const size_t queue_capacity_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  size_t thread_count_ = 0;
  size_t running_ = 0;  // tasks a worker has taken and not finished
  std::vector<std::thread> threads_;
};

}  // namespace rlhf::server
