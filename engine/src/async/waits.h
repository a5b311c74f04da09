// The engine's waits that are not model calls, on a fiber when there is one
// (fiber.h) and on the thread otherwise: the backoff between retries, the
// sim provider's latency, a contemplating fan-out's branches.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include "switchboard/cancel.h"

namespace switchboard::async {

// Waits `d`; false at once when `cancellation` (may be null) is or becomes
// cancelled. On a fiber, the loop's timer wakes it; off one, the thread sleeps.
bool sleep_for(std::chrono::milliseconds d, Cancellation* cancellation);

// On a fiber: lets its loop run the handlers ready now first (the other
// fibers woken in the same turn among them), then returns. Off a fiber:
// returns at once. For work that several fibers can share when they
// reach it in the same turn: the ledger's group commit (ledger/sqlite.cpp).
void yield_to_ready();

// Runs body(0) .. body(n - 1) at once and returns when all returned: as
// sibling fibers on a fiber's loop, else one thread each. `body` must not throw.
void run_all(std::size_t n, const std::function<void(std::size_t)>& body);

}  // namespace switchboard::async
