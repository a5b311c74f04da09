// Timed wakes of fibers: a WakeTimer per wait site, and the one Asio timer
// per Loop (Deadlines) under all of them.
//
// Every upstream call arms a deadline (its first byte, its stall, its total
// time) that almost never falls due: the answer comes first. With an Asio
// timer per call, each call paid a timer-queue insertion and, at its end, a
// cancellation whose aborted completion costs the loop a turn (and a poll
// of its reactor). Here a call's deadline is an entry in the loop's ordered
// map, removed when the call ends, and the loop's one timer stays set to the
// earliest deadline it has seen: when it fires with nothing due (the calls
// it was set for ended), it is set again to the earliest left, if any. So a
// steady flow of calls sets the Asio timer about once per timeout, not once
// per call.
//
// All on the loop's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace switchboard::async {

class Fiber;
class WakeTimer;

class Deadlines {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit Deadlines(boost::asio::io_context& io) : timer_(io) {}
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  // Deadlines waiting.
  std::size_t size() const noexcept { return due_.size(); }
  // When the Asio timer is set to fire; nullopt when it is not set.
  std::optional<TimePoint> armed() const noexcept { return armed_; }
  // How many times the Asio timer has been set.
  std::size_t times_armed() const noexcept { return times_armed_; }

 private:
  friend class WakeTimer;
  using Entry = std::multimap<TimePoint, WakeTimer*>::iterator;

  // Adds `timer`'s deadline; sets the Asio timer earlier if it is due first.
  Entry add(TimePoint due, WakeTimer* timer);
  void remove(Entry entry) noexcept { due_.erase(entry); }
  // Sets the Asio timer to fire at `due`.
  void arm(TimePoint due);
  // Takes out the deadlines due now, sets the timer for the next one, then
  // resumes their fibers.
  void fire();

  boost::asio::steady_timer timer_;
  std::multimap<TimePoint, WakeTimer*> due_;
  std::optional<TimePoint> armed_;
  std::size_t times_armed_ = 0;
  // Expires with this object: a completion already queued when it goes
  // (the loop destroyed from one of its handlers) then touches nothing.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Wakes its fiber at the last time it was set to. One per wait site (a call,
// a command): moved only when the time changes, so a wait that loops on
// spurious wakes does not move it. REQUIRES: used on the fiber's loop's
// thread, and gone before its loop.
class WakeTimer {
 public:
  using TimePoint = Deadlines::TimePoint;

  explicit WakeTimer(Fiber& fiber);
  ~WakeTimer() {
    if (entry_) deadlines_.remove(*entry_);
  }
  WakeTimer(const WakeTimer&) = delete;
  WakeTimer& operator=(const WakeTimer&) = delete;

  Fiber& fiber() const noexcept { return fiber_; }
  const std::weak_ptr<Fiber>& self() const noexcept { return self_; }

  // The fiber is woken at `due` (TimePoint::max(): not at all; the time set
  // before, if any, stays).
  void wake_at(TimePoint due) {
    if (due == TimePoint::max() || (entry_ && (*entry_)->first == due)) return;
    if (entry_) deadlines_.remove(*entry_);
    entry_ = deadlines_.add(due, this);
  }

 private:
  friend class Deadlines;
  Fiber& fiber_;
  const std::weak_ptr<Fiber> self_;
  Deadlines& deadlines_;
  std::optional<Deadlines::Entry> entry_;  // while its time has not come
};

}  // namespace switchboard::async
