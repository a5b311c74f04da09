// A host name's addresses, looked up from a fiber without blocking its loop.
//
//   auto addresses = async::resolve(fiber, "redis.internal", 6379, deadline);
//   if (!addresses.ok()) return addresses.status();  // names the host
//   for (const auto& endpoint : *addresses) ...      // getaddrinfo's order
//
// getaddrinfo runs on Asio's resolver thread while the fiber waits on its
// loop, so the loop serves its other fibers meanwhile: a lookup can take
// seconds (a slow or unreachable DNS server, the resolver's retries), and on
// the loop's thread it would stall every connection the loop serves. An IP
// literal is answered at once, without a lookup. Nothing is cached: callers
// look up when they open a connection, and keep connections alive.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "async/deadlines.h"
#include "async/fiber.h"
#include "switchboard/status.h"

namespace switchboard::async {

using Endpoints = std::vector<boost::asio::ip::tcp::endpoint>;

// One lookup of `host` for `port`, started on construction on the timer's
// fiber's loop; the timer's fiber is resumed when it is done. Destroyed
// before that, it is cancelled (the getaddrinfo already running finishes on
// the resolver's thread and is dropped). REQUIRES: on the fiber's thread.
class HostLookup {
 public:
  HostLookup(WakeTimer& timer, const std::string& host, std::uint16_t port);
  ~HostLookup();
  HostLookup(const HostLookup&) = delete;
  HostLookup& operator=(const HostLookup&) = delete;

  bool done() const noexcept;
  // Every address, in getaddrinfo's order (never none), or kUnavailable
  // naming the host. REQUIRES: done().
  Result<Endpoints> result() const;

 private:
  struct State;
  std::string host_;
  std::shared_ptr<State> state_;  // shared with the lookup's handler
};

// The addresses of `host` for `port` on the timer's fiber: nullopt when
// `next_check` gave up first. `next_check()` is asked before every sleep, as
// for wait_ready (socket_wait.h): when to ask again, or nullopt to give up.
template <class NextCheck>
std::optional<Result<Endpoints>> resolve(WakeTimer& timer, const std::string& host, std::uint16_t port,
                                         NextCheck&& next_check) {
  HostLookup lookup(timer, host, port);
  for (;;) {
    if (lookup.done()) return lookup.result();
    const std::optional<WakeTimer::TimePoint> next = next_check();
    if (!next) return std::nullopt;
    timer.wake_at(*next);
    timer.fiber().wait();
  }
}

// The same, given up at `deadline`: then kUnavailable, "looking up 'HOST'
// timed out". REQUIRES: called on `fiber`.
Result<Endpoints> resolve(Fiber& fiber, const std::string& host, std::uint16_t port,
                          std::chrono::steady_clock::time_point deadline);

}  // namespace switchboard::async
