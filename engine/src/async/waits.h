// The engine's waits that are not model calls, on a fiber when there is one
// (fiber.h) and on the thread otherwise: the backoff between retries, the
// sim provider's latency, a contemplating fan-out's branches.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include "switchboard/cancel.h"

namespace switchboard::async {

class Fiber;

// Waits `d`; false at once when `cancellation` (may be null) is or becomes
// cancelled. On a fiber, the loop's timer wakes it; off one, the thread sleeps.
bool sleep_for(std::chrono::milliseconds d, Cancellation* cancellation);

// On a fiber: lets its loop run the handlers ready now first (the other
// fibers woken in the same turn among them), then returns. Off a fiber:
// returns at once. For work that several fibers can share when they
// reach it in the same turn: the ledger's group commit (ledger/sqlite.cpp).
void yield_to_ready();

// Work that need not delay the calling fiber's I/O: it runs at the fiber's
// next wait (a model call's request sent, its answer not in yet), or at
// finish(), whichever comes first, and once. Off a fiber it runs at once.
// Destroyed before it ran, it runs then, unless an exception is unwinding
// the stack (the fiber ending early): then it is dropped. `work` must not
// throw.
class DuringNextWait {
 public:
  explicit DuringNextWait(std::function<void()> work);
  ~DuringNextWait();
  DuringNextWait(const DuringNextWait&) = delete;
  DuringNextWait& operator=(const DuringNextWait&) = delete;

  // Runs the work now unless it ran. On the constructing fiber's thread
  // (on a sibling fiber too).
  void finish();

 private:
  std::function<void()> work_;   // empty once it ran
  Fiber* fiber_;                 // null off a fiber
  int unwinding_at_start_;       // std::uncaught_exceptions() when made
};

// Runs body(0) .. body(n - 1) at once and returns when all returned: as
// sibling fibers on a fiber's loop, else one thread each. `body` must not throw.
void run_all(std::size_t n, const std::function<void(std::size_t)>& body);

}  // namespace switchboard::async
