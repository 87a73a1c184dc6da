#include "core/util/parallel.h"

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <exception>
#include <utility>

namespace attn {

namespace {
// Set while this thread runs a pool task: a nested run() then runs serially.
thread_local bool tInsideTask = false;
}  // namespace

void lowerThreadPriority() {
#if defined(__linux__)
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 5);  // per thread on Linux
#endif
}

ThreadPool::ThreadPool(int threads, bool background) {
  const int extra = std::max(0, threads - 1);
  workers_.reserve(extra);
  try {
    for (int i = 0; i < extra; ++i)
      workers_.emplace_back([this, background] {
        if (background) lowerThreadPriority();
        workerLoop();
      });
  } catch (...) {  // could not start a thread: stop the ones that did, then report
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    throw;
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Claims tasks until none are left; counts what this thread finished. A task
// that throws stops the claiming (the remaining tasks count as finished) and
// its exception is kept for run() to rethrow on the calling thread.
void ThreadPool::drain(const std::function<void(int64_t)>* job, int64_t tasks) {
  if (job == nullptr) return;
  int64_t mine = 0;
  tInsideTask = true;
  for (;;) {
    const int64_t t = next_.fetch_add(1, std::memory_order_relaxed);
    if (t >= tasks) break;
    try {
      (*job)(t);
      ++mine;
    } catch (...) {
      const int64_t unclaimed = std::max<int64_t>(0, tasks - next_.exchange(tasks));
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = std::current_exception();
      finished_ += 1 + unclaimed;
    }
  }
  tInsideTask = false;
  if (mine > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    finished_ += mine;
  }
}

void ThreadPool::workerLoop() {
  uint64_t seen = 0;
  for (;;) {
    const std::function<void(int64_t)>* job = nullptr;
    int64_t tasks = 0;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || epoch_ != seen; });
      if (stop_) return;
      seen = epoch_;
      job = job_;
      tasks = tasks_;
      ++busy_;
    }
    drain(job, tasks);
    {
      std::lock_guard<std::mutex> lock(mu_);
      --busy_;
    }
    done_.notify_all();
  }
}

void ThreadPool::run(int64_t tasks, const std::function<void(int64_t)>& fn) {
  if (tasks <= 0) return;
  if (workers_.empty() || tasks == 1 || tInsideTask) {  // nested calls run serially
    for (int64_t t = 0; t < tasks; ++t) fn(t);
    return;
  }
  std::lock_guard<std::mutex> serial(runMu_);  // one job at a time, whoever calls
  {
    // A worker that woke late for the previous job may still be leaving
    // drain(); wait for it before the task counter is reset.
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [&] { return busy_ == 0; });
    job_ = &fn;
    tasks_ = tasks;
    next_.store(0, std::memory_order_relaxed);
    finished_ = 0;
    ++epoch_;
  }
  wake_.notify_all();
  drain(&fn, tasks);
  std::unique_lock<std::mutex> lock(mu_);
  // Wait for every task and for every worker to leave drain(), so job_ is not
  // read after this call returns.
  done_.wait(lock, [&] { return finished_ == tasks_ && busy_ == 0; });
  job_ = nullptr;
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void ThreadPool::chunks(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t parts = std::min<int64_t>(threads(), n);
  if (parts <= 1) {
    if (n > 0) fn(0, n);
    return;
  }
  run(parts, [&](int64_t p) { fn(n * p / parts, n * (p + 1) / parts); });
}

}  // namespace attn
