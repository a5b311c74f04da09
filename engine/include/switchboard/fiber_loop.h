/// @file
/// FiberLoop: steps on a host's Boost.Asio event loop, without a thread each.
///
/// A host that serves many steps at once from an event loop (the gateway: one
/// io_context per I/O thread) runs each step on a fiber of the loop's thread
/// instead of a blocking worker thread. On a fiber, everything of a step that
/// waits waits on the loop instead of blocking the thread: the model calls
/// (libcurl's multi interface on the loop's sockets and timers, or for plain
/// HTTP to a local address the loop's own HTTP/1.1 client, with the loop's
/// connections kept alive between calls), the backoff between
/// retries, the sim provider's latency, a shared budget's or rate limit's
/// Redis round trips (connecting included), and a contemplating
/// fan-out (its branches run as sibling fibers). The code a step runs is the same as off a
/// fiber (Dispatcher::run and execute, ModelClient::invoke and stream):
/// a fiber waits where a thread would block. Every limit of a call (connect,
/// first byte, stall, total, the step's deadline and cancellation) fires from
/// the loop's timers, when due.
///
/// A fiber must not block its thread for long (the other fibers and the
/// loop's connections wait meanwhile): what the engine does on one is CPU
/// work (rules, translation) and the ledger's group commit. A SQLite ledger's
/// flush() on a fiber beside others first lets the loop run what is ready,
/// so the steps that finish in the same turn share one journal append.
///
/// Thread-safety: a FiberLoop belongs to the one thread that runs its
/// io_context; every method is called on that thread.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace switchboard {

namespace async {
class Loop;
}

/// Fibers, and the model calls they make, on one io_context (see the file comment).
class FiberLoop {
 public:
  /// REQUIRES: `io` outlives the loop and is run by one thread, the loop's.
  explicit FiberLoop(boost::asio::io_context& io);
  /// Unwinds the fibers still waiting (their destructors run; their calls
  /// are abandoned and their connections closed). REQUIRES: called on the
  /// loop's thread, or once no thread runs `io`.
  ~FiberLoop();
  FiberLoop(const FiberLoop&) = delete;
  FiberLoop& operator=(const FiberLoop&) = delete;

  /// Runs `body` on a new fiber, at once, until it first waits; it goes on
  /// from the loop's handlers as what it waits for arrives, and the fiber
  /// ends when `body` returns. An exception escaping `body` is logged by
  /// spdlog's default logger and ends the fiber. REQUIRES: on the loop's thread.
  void spawn(std::function<void()> body);
  /// Fibers started and not yet ended.
  std::size_t fibers() const;

 private:
  std::unique_ptr<async::Loop> loop_;
};

}  // namespace switchboard
