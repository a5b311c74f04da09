#include "keep_alive.h"

#include <algorithm>

namespace switchboard::gateway {

void KeepAlive::Stream::write(std::string bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  sink_(std::move(bytes));
  last_ = Clock::now();
}

void KeepAlive::Stream::close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
}

bool KeepAlive::Stream::tick(Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return false;
  if (interval_.count() > 0 && now - last_ >= interval_) {
    sink_(keep_alive_());
    last_ = now;
  }
  return true;
}

KeepAlive::KeepAlive(std::chrono::milliseconds tick) : tick_(tick), thread_([this] { run(); }) {}

KeepAlive::~KeepAlive() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<KeepAlive::Stream> KeepAlive::add(std::chrono::milliseconds interval,
                                                  std::function<void(std::string)> sink,
                                                  std::function<std::string()> keep_alive) {
  std::shared_ptr<Stream> s(new Stream(interval, std::move(sink), std::move(keep_alive)));
  std::lock_guard<std::mutex> lock(mu_);
  streams_.push_back(s);
  return s;
}

void KeepAlive::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, tick_, [this] { return stopping_; });
    if (stopping_) break;
    // Visited outside the registry's lock: a stream's write may be slow.
    std::vector<std::shared_ptr<Stream>> visit = streams_;
    lock.unlock();
    const Clock::time_point now = Clock::now();
    std::vector<Stream*> done;
    for (const std::shared_ptr<Stream>& s : visit) {
      if (!s->tick(now)) done.push_back(s.get());
    }
    lock.lock();
    streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                  [&](const std::shared_ptr<Stream>& s) {
                                    return std::find(done.begin(), done.end(), s.get()) != done.end();
                                  }),
                   streams_.end());
  }
}

}  // namespace switchboard::gateway
