#include "worker_pool.h"

#include <algorithm>

namespace switchboard::gateway {

WorkerPool::WorkerPool(int max_threads) : max_threads_(std::max(1, max_threads)) {}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (Worker* w : idle_) w->wake.notify_one();
  }
  // No thread starts after stopping_: the list is final.
  for (auto& w : workers_) w->thread.join();
}

void WorkerPool::submit(std::function<void()> job) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!idle_.empty()) {
    Worker* w = idle_.back();
    idle_.pop_back();
    w->job = std::move(job);
    lock.unlock();
    w->wake.notify_one();
    return;
  }
  if (static_cast<int>(workers_.size()) < max_threads_ && !stopping_) {
    auto w = std::make_unique<Worker>();
    Worker& self = *w;
    workers_.push_back(std::move(w));
    self.thread = std::thread([this, &self, job = std::move(job)]() mutable { work(self, std::move(job)); });
    return;
  }
  backlog_.push_back(std::move(job));
}

void WorkerPool::set_max_threads(int max_threads) {
  std::lock_guard<std::mutex> lock(mu_);
  max_threads_ = std::max(1, max_threads);
}

void WorkerPool::work(Worker& self, std::function<void()> job) {
  for (;;) {
    job();
    job = nullptr;  // its captures (a connection, a runtime) go before the next wait
    std::unique_lock<std::mutex> lock(mu_);
    if (!backlog_.empty()) {
      job = std::move(backlog_.front());
      backlog_.pop_front();
      continue;
    }
    if (stopping_) return;
    idle_.push_back(&self);
    self.wake.wait(lock, [&] { return self.job != nullptr || stopping_; });
    if (self.job == nullptr) return;  // stopping (submit removed it from idle_ when it gave a job)
    job = std::move(self.job);
    self.job = nullptr;
  }
}

}  // namespace switchboard::gateway
