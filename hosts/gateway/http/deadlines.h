// Deadlines: one timer per I/O thread for the timeouts of all its
// connections (idle, header, body, a client that stops reading) and their
// late checks (the client watch of a request still at the handler).
//
// A per-operation timer (Beast's tcp_stream) is armed and cancelled for every
// read and write: a timer queue entry, a cancellation handler and, whenever
// it is the soonest timer of the thread, a timerfd_settime system call, three
// or four times per request. Here a connection only writes down its next
// moment of interest and calls wake_by(), which re-arms the one timer only
// when that moment is sooner than the one it already waits for; when the
// timer fires, every connection is asked what is due (Timed::due) and the
// timer waits for the soonest moment they name. A connection's phases then
// cost no system call, and the timers of upstream calls on the same thread
// (seconds away) rarely become the soonest either.
//
// Timeouts fire on time (the timer waits for the soonest moment exactly);
// the cost of a firing is one call per connection of the thread.
//
// Thread-safety: none; it belongs to one I/O thread, as its connections do.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace switchboard::gateway {

// What Deadlines keeps time for.
class Timed {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~Timed() = default;
  // Does what is due at `now` (a timeout, a late check) and returns its next
  // moment of interest; time_point::max() for none.
  virtual Clock::time_point due(Clock::time_point now) = 0;
};

class Deadlines {
 public:
  using Clock = Timed::Clock;

  explicit Deadlines(boost::asio::io_context& io) : timer_(io) {}
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  // Keeps time for `timed` until it is gone.
  void add(std::weak_ptr<Timed> timed) { timed_.push_back(std::move(timed)); }

  // Makes the timer fire at `when` or sooner.
  void wake_by(Clock::time_point when);

  // The connections kept time for (gone ones leave at the next firing).
  std::size_t size() const { return timed_.size(); }

 private:
  void fire();

  boost::asio::steady_timer timer_;
  Clock::time_point armed_for_ = Clock::time_point::max();  // max: not armed
  std::vector<std::weak_ptr<Timed>> timed_;
};

}  // namespace switchboard::gateway
