// Fibers on an io_context (the machinery of FiberLoop, fiber_loop.h).
//
// A Fiber is a call stack of its own (Boost.Context, a guarded stack from the
// loop's cache) that runs on its Loop's thread. It runs until it waits; a
// wake() posts its resumption to the loop, so a fiber is only ever resumed
// from a handler of the loop (or when spawned), never from inside another
// library's callback. Waits may end spuriously (a wake meant for an earlier
// wait, say): every wait loops on its own condition, as with a condition
// variable.
//
// Under ThreadSanitizer the switches are announced (__tsan_switch_to_fiber),
// so that it follows each fiber as a thread of its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/context/fiber.hpp>

#include "async/connection_pool.h"
#include "async/deadlines.h"

namespace switchboard::async {

class CurlLoop;
class Loop;

class Fiber : public std::enable_shared_from_this<Fiber> {
 public:
  // The fiber running on this thread; null off a fiber.
  static Fiber* current() noexcept;

  ~Fiber();
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  Loop& loop() const noexcept { return *loop_; }
  // Suspends this fiber until a wake(); may return spuriously. REQUIRES:
  // this == current(). With work set by before_next_wait, runs that work
  // first; if the work waited itself, returns then (spuriously: that wait
  // may have taken the caller's wake).
  void wait();
  // Sets `*work` to run on this fiber at its next wait(), before it would
  // suspend: work that can be done while the fiber's I/O is under way
  // instead of before it. wait() empties `*work` before running it; the
  // owner of `*work` runs it itself (and calls clear_before_next_wait) when
  // it cannot wait any longer. A work set earlier and not yet run is run
  // first. `*work` must outlive its run or clear_before_next_wait.
  // REQUIRES: this == current().
  void before_next_wait(std::function<void()>* work);
  // Forgets `work` if it is the one set and not yet run.
  void clear_before_next_wait(const std::function<void()>* work) noexcept;
  // Resumes `fiber` (if it still exists and waits) from the loop's queue.
  // Thread-safe; cheap; never runs the fiber on the calling stack.
  static void wake(const std::weak_ptr<Fiber>& fiber);
  // Resumes `fiber` (if it still exists and waits) now, on this stack: for
  // a completion handler of the fiber's own loop, which saves wake()'s post
  // and the loop's turn (a poll of its reactor) before the fiber runs.
  // Anywhere else (on a fiber, on another thread) it is wake().
  static void resume(const std::weak_ptr<Fiber>& fiber);

 private:
  friend class Loop;
  Fiber(Loop& loop, std::function<void()> body);
  // Runs the fiber until it waits or ends. REQUIRES: on the loop's thread.
  void switch_in();
  // Runs before_next_wait's work, if one is set, and forgets it.
  void run_before_wait();

  Loop* loop_;
  std::function<void()> body_;
  boost::context::fiber context_;  // the fiber's own, while it is not running
  boost::context::fiber caller_;   // who switched in, while it runs
  std::uint64_t id_ = 0;           // the loop's key for it (spawn order)
  std::function<void()>* before_wait_ = nullptr;  // before_next_wait's, not yet run
  std::uint64_t suspensions_ = 0;                 // the waits that switched out so far
  bool waiting_ = false;
  bool done_ = false;
  void* tsan_fiber_ = nullptr;  // ThreadSanitizer's handles (null without it)
  void* tsan_caller_ = nullptr;
};

// Guarded stacks, kept for reuse: a fiber's stack is an mmap with a
// PROT_NONE page below it (an overflow faults instead of corrupting), and
// mmap, mprotect and munmap per request would cost more than the rest of a
// fiber's start.
class StackCache {
 public:
  StackCache(std::size_t stack_bytes, std::size_t max_kept);
  ~StackCache();
  StackCache(const StackCache&) = delete;
  StackCache& operator=(const StackCache&) = delete;
  boost::context::stack_context allocate();
  void deallocate(boost::context::stack_context& stack) noexcept;

 private:
  // The word just below the part kept resident (fiber.cpp), or null for a
  // stack no larger than that part.
  std::uint64_t* deep_canary(const boost::context::stack_context& stack) const noexcept;

  const std::size_t stack_bytes_;  // usable, a multiple of the page size
  const std::size_t max_kept_;
  std::vector<void*> kept_;  // the mappings' bases (guard page first)
  std::uint64_t returned_ = 0;  // stacks given back and kept, for kTrimEvery
};

class Loop {
 public:
  explicit Loop(boost::asio::io_context& io);
  // Unwinds the fibers still waiting, newest first (a fan-out's branches
  // before the fiber waiting for them).
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  boost::asio::io_context& io() const noexcept { return io_; }
  CurlLoop& curl() noexcept { return *curl_; }
  // The loop's idle plain-HTTP connections (providers/http1_on_loop.h).
  ConnectionPool& connections() noexcept { return connections_; }
  // The loop's timed wakes (deadlines.h).
  Deadlines& deadlines() noexcept { return deadlines_; }
  // Starts `body` on a new fiber now (see FiberLoop::spawn); may be called on a fiber.
  void spawn(std::function<void()> body);
  std::size_t fibers() const noexcept { return fibers_.size(); }

 private:
  friend class Fiber;
  boost::asio::io_context& io_;
  StackCache stacks_;
  std::unique_ptr<CurlLoop> curl_;
  ConnectionPool connections_;
  Deadlines deadlines_;  // before fibers_: their WakeTimers go first
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, std::shared_ptr<Fiber>> fibers_;  // last: unwound first
};

}  // namespace switchboard::async
