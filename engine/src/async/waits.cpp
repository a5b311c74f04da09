// Waits on a fiber or a thread (waits.h).
#include "async/waits.h"

#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include "async/deadlines.h"
#include "async/fiber.h"

namespace switchboard::async {

bool sleep_for(std::chrono::milliseconds d, Cancellation* cancellation) {
  Fiber* const fiber = Fiber::current();
  if (fiber == nullptr) {
    if (cancellation != nullptr) return cancellation->sleep_for(d);
    std::this_thread::sleep_for(d);
    return true;
  }
  const std::weak_ptr<Fiber> self = fiber->weak_from_this();
  const auto until = std::chrono::steady_clock::now() + d;
  WakeTimer timer(*fiber);
  timer.wake_at(until);
  Cancellation::Subscription woken;
  if (cancellation != nullptr) woken = cancellation->subscribe([self] { Fiber::wake(self); });
  for (;;) {
    if (cancellation != nullptr && cancellation->cancelled()) return false;
    if (std::chrono::steady_clock::now() >= until) return true;
    fiber->wait();
  }
}

void yield_to_ready() {
  Fiber* const fiber = Fiber::current();
  if (fiber == nullptr) return;
  // The wake goes to the back of the loop's queue. A wake meant for an
  // earlier wait may end this one sooner (less is then shared), and this
  // one's may end a later wait early: spurious, which every wait absorbs.
  Fiber::wake(fiber->weak_from_this());
  fiber->wait();
}

DuringNextWait::DuringNextWait(std::function<void()> work)
    : work_(std::move(work)), fiber_(Fiber::current()), unwinding_at_start_(std::uncaught_exceptions()) {
  if (fiber_ != nullptr) {
    fiber_->before_next_wait(&work_);
  } else {
    finish();
  }
}

DuringNextWait::~DuringNextWait() {
  if (std::uncaught_exceptions() > unwinding_at_start_) {
    if (fiber_ != nullptr) fiber_->clear_before_next_wait(&work_);
    return;
  }
  finish();
}

void DuringNextWait::finish() {
  if (fiber_ != nullptr) fiber_->clear_before_next_wait(&work_);
  if (!work_) return;
  const std::function<void()> work = std::move(work_);
  work_ = nullptr;
  work();
}

void run_all(std::size_t n, const std::function<void(std::size_t)>& body) {
  Fiber* const fiber = Fiber::current();
  if (fiber == nullptr) {
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (std::size_t i = 0; i < n; ++i) threads.emplace_back([&body, i] { body(i); });
    for (std::thread& t : threads) t.join();
    return;
  }
  std::size_t running = n;
  const std::weak_ptr<Fiber> parent = fiber->weak_from_this();
  for (std::size_t i = 0; i < n; ++i) {
    fiber->loop().spawn([&body, &running, parent, i] {
      body(i);
      if (--running == 0) Fiber::wake(parent);
    });
  }
  while (running > 0) fiber->wait();
}

}  // namespace switchboard::async
