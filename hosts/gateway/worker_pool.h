// WorkerPool: threads for blocking work (model calls: libcurl, the sim's
// sleep) so that it never runs on an I/O thread. Threads start on demand, up
// to `max_threads`, and wait for the next job when theirs is done; a job goes
// to the thread that went idle last (its caches and its Lua state are the
// warmest). The pool does not bound the jobs themselves (the gateway admits
// at most max_upstream_calls before submitting): a job that finds every
// thread busy at the cap waits in a queue for the next free one.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace switchboard::gateway {

class WorkerPool {
 public:
  explicit WorkerPool(int max_threads);
  // Runs every job already submitted, then joins the threads.
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Runs `job` on a pool thread. The job must not throw.
  void submit(std::function<void()> job);
  // Raises or lowers the thread cap (threads above a lowered cap stay).
  void set_max_threads(int max_threads);

 private:
  struct Worker {
    std::condition_variable wake;
    std::function<void()> job;  // handed over by submit() while the worker is idle
    std::thread thread;
  };
  void work(Worker& self, std::function<void()> job);

  std::mutex mu_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> idle_;                  // a stack: the last to go idle is on top
  std::deque<std::function<void()>> backlog_;  // jobs while every thread is busy at the cap
  int max_threads_;
  bool stopping_ = false;
};

}  // namespace switchboard::gateway
