// A fiber's wait for a socket's readiness, or for its bytes, bounded by the
// caller's limits: the primitives under the plain-HTTP upstream calls
// (providers/http1_on_loop.cpp) and the Redis round trips
// (state/redis_client.cpp) that run on a loop.
//
//   async::WakeTimer timer(fiber);
//   bool ready = async::wait_ready(timer, socket, Socket::wait_read, [&]() -> std::optional<TimePoint> {
//     if (Clock::now() >= deadline) return std::nullopt;  // give up
//     return deadline;                                    // ask again then
//   });
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>

#include <boost/system/error_code.hpp>

#include "async/deadlines.h"
#include "async/fiber.h"

namespace switchboard::async {

// Waits on the timer's fiber until `socket` (an Asio socket or descriptor on
// the fiber's loop) is ready for `what`, or failed (the next operation on it
// says how): true. `next_check()` is asked before every sleep, spurious wakes
// included: it returns when to be asked again (TimePoint::max(): only on a
// wake), or nullopt to give up, and then the socket's wait is cancelled and
// the result is false.
template <class Socket, class NextCheck>
bool wait_ready(WakeTimer& timer, Socket& socket, typename Socket::wait_type what, NextCheck&& next_check) {
  auto ready = std::make_shared<bool>(false);  // outlives a cancelled wait's handler
  socket.async_wait(what, [ready, self = timer.self()](const boost::system::error_code&) {
    *ready = true;
    Fiber::resume(self);
  });
  for (;;) {
    if (*ready) return true;
    const std::optional<WakeTimer::TimePoint> next = next_check();
    if (!next) {
      boost::system::error_code ignored;
      socket.cancel(ignored);
      return false;
    }
    timer.wake_at(*next);
    timer.fiber().wait();
  }
}

// Reads what `socket` has into `buffer` on the timer's fiber: the bytes
// waiting, or, when none are, the first to arrive. True with the read's
// outcome in `ec` (end of stream, a reset) and `n`; `next_check` as for
// wait_ready, and on giving up the read is cancelled and the result is false.
//
// Against read_some, then wait_ready when nothing is waiting: one system call
// fewer per wait (Asio re-arms the descriptor with epoll_ctl for every wait,
// but not for a read), and one turn of the loop more when bytes are waiting
// (a read that finishes at once still completes through the loop). So it is
// the read to use when the socket is most likely empty: the first after a
// request went out, or after a read that drained it.
//
// Whatever way this returns, the read is over: finished, or cancelled (Asio
// then never reads into `buffer`), so `buffer` only needs to outlive the call.
template <class Socket, class MutableBuffer, class NextCheck>
bool read_ready(WakeTimer& timer, Socket& socket, const MutableBuffer& buffer, boost::system::error_code& ec,
                std::size_t& n, NextCheck&& next_check) {
  struct Read {
    bool done = false;
    boost::system::error_code ec;
    std::size_t n = 0;
  };
  auto read = std::make_shared<Read>();  // outlives a cancelled read's handler
  socket.async_read_some(buffer, [read, self = timer.self()](const boost::system::error_code& e, std::size_t bytes) {
    read->done = true;
    read->ec = e;
    read->n = bytes;
    Fiber::resume(self);
  });
  // Giving up, or the fiber unwinding while it waits: no read into `buffer` after this.
  struct CancelUnlessDone {
    Socket& socket;
    const Read& read;
    ~CancelUnlessDone() {
      if (read.done) return;
      boost::system::error_code ignored;
      socket.cancel(ignored);
    }
  } cancel_unless_done{socket, *read};
  for (;;) {
    if (read->done) {
      ec = read->ec;
      n = read->n;
      return true;
    }
    const std::optional<WakeTimer::TimePoint> next = next_check();
    if (!next) return false;
    timer.wake_at(*next);
    timer.fiber().wait();
  }
}

}  // namespace switchboard::async
