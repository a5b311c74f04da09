// Whether a call blocks its loop's thread: the call runs on one fiber of a
// fresh loop while another fiber counts its 10 ms sleeps until the call
// returns. A call that blocked the thread throughout leaves the count at 0;
// one that waits on the loop gives about its duration / 10 ms.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <functional>

#include <boost/asio/io_context.hpp>

#include "async/waits.h"
#include "switchboard/fiber_loop.h"

namespace switchboard::testing {

// Runs `call` beside the ticker, to the end of both (at most 15 s, else a
// failed REQUIRE); the ticks counted.
inline int run_beside_a_ticker(const std::function<void()>& call) {
  using namespace std::chrono_literals;
  boost::asio::io_context io;
  int ticks = 0;
  {
    FiberLoop loop(io);
    bool waiting = true;
    loop.spawn([&] {
      call();
      waiting = false;
    });
    loop.spawn([&] {
      while (waiting) {
        async::sleep_for(10ms, nullptr);
        if (waiting) ++ticks;
      }
    });
    const auto until = std::chrono::steady_clock::now() + 15s;
    while (loop.fibers() > 0 && std::chrono::steady_clock::now() < until) io.run_one_for(50ms);
    REQUIRE(loop.fibers() == 0);
  }
  return ticks;
}

}  // namespace switchboard::testing
