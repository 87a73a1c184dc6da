// A small persistent thread pool and cancellation token for the engine.
// Core parallelises inside one job with a thread count the caller sets
// (DESIGN: "Threads"), so the pool is explicit, never global.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace attn {

// Polled by long loops; set from any thread to stop a job early.
class CancelToken {
 public:
  void cancel() { flag_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return flag_.load(std::memory_order_relaxed); }
  void reset() { flag_.store(false, std::memory_order_relaxed); }

 private:
  std::atomic<bool> flag_{false};
};

inline bool isCancelled(const CancelToken* t) { return t != nullptr && t->cancelled(); }

// Lowers the calling thread's scheduling priority (Linux: nice +5 for this thread
// only; elsewhere nothing): compute threads behind a GUI, so that the GUI thread
// gets a core as soon as it wakes instead of waiting for its share of one.
void lowerThreadPriority();

// Runs fn(task) for task in [0, tasks) on `threads` threads (the caller is one
// of them). Tasks are handed out dynamically; run() returns when all are done
// and rethrows the first exception a task threw. Calls from several threads
// take turns; a call from inside a task runs its tasks serially.
class ThreadPool {
 public:
  // background: the pool's own threads run at a lower priority (lowerThreadPriority).
  explicit ThreadPool(int threads, bool background = false);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }
  void run(int64_t tasks, const std::function<void(int64_t)>& fn);
  // Splits [0, n) into one contiguous chunk per thread: fn(begin, end).
  void chunks(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void workerLoop();
  void drain(const std::function<void(int64_t)>* job, int64_t tasks);

  std::vector<std::thread> workers_;
  std::mutex runMu_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t tasks_ = 0;
  std::atomic<int64_t> next_{0};
  int64_t finished_ = 0;
  uint64_t epoch_ = 0;
  int busy_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace attn
