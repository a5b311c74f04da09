// Busy polling for the I/O threads: after its last work a thread keeps
// polling its sockets for a while before it sleeps, so that an answer or a
// request arriving meanwhile costs no sleep and wake-up (on a virtual
// machine, waking an idle core is tens of microseconds).
//
// Spinning is free only while nobody else wants the core: on a loaded
// machine the spinning thread takes the CPU that the clients, the provider
// or the gateway's other threads need (one bench run: 16 connections went
// from 34% to 27% of the direct path with 50 us of spin). SpinGovernor
// watches for that: a thread that spent more than kMaxWaitShare of the time
// since its last check waiting for a core (runnable, not running: the
// scheduler's run delay) stops spinning for a while, twice as long each time
// the next check finds the same, and spins again once a check finds the
// core free. Measured with wrk on 2 shared cores: an I/O thread waits about
// 5% of the time at 1 connection and 38-44% at 16.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

namespace boost::asio {
class io_context;
}

namespace switchboard::gateway {

class SpinGovernor {
 public:
  using Clock = std::chrono::steady_clock;
  // The calling thread's time spent waiting for a core so far, in
  // nanoseconds; negative when it cannot be read (the governor then never
  // pauses).
  using WaitClock = std::function<std::int64_t()>;

  // How often, at most, a spinning thread reads its wait.
  static constexpr std::chrono::microseconds kCheckEvery{2000};
  // The share of the time since the last check above which it pauses.
  static constexpr double kMaxWaitShare = 0.2;
  // The first pause after a contended check; it doubles up to kLongestPause.
  static constexpr std::chrono::milliseconds kFirstPause{10};
  static constexpr std::chrono::milliseconds kLongestPause{1000};

  // `wait_clock` defaults to the calling thread's run delay
  // (/proc/thread-self/schedstat): construct it on the thread it governs.
  explicit SpinGovernor(WaitClock wait_clock = {}) : wait_clock_(std::move(wait_clock)) {
    if (wait_clock_) return;
    schedstat_fd_ = ::open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    wait_clock_ = [this] { return run_delay(); };
  }
  ~SpinGovernor() {
    if (schedstat_fd_ >= 0) ::close(schedstat_fd_);
  }
  SpinGovernor(const SpinGovernor&) = delete;
  SpinGovernor& operator=(const SpinGovernor&) = delete;

  // Whether the thread may spin at `now`. Reads the wait (a new baseline)
  // when no watch runs: at the first spin, and when a pause has just ended.
  bool may_spin(Clock::time_point now) {
    if (now < paused_until_) return false;
    if (!watching_) {
      last_wait_ = wait_clock_();
      last_check_ = now;
      watching_ = true;
    }
    return true;
  }

  // Called when a spin ends (work came, or the thread goes to sleep): at most
  // every kCheckEvery, reads the wait. More than kMaxWaitShare of the time
  // since the last read starts a pause (twice the last, if the last check
  // paused too); less ends the doubling.
  void spun(Clock::time_point now) {
    if (!watching_ || now - last_check_ < kCheckEvery) return;
    const std::int64_t wait = wait_clock_();
    const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_check_).count();
    const bool contended = wait >= 0 && last_wait_ >= 0 &&
                           static_cast<double>(wait - last_wait_) > kMaxWaitShare * static_cast<double>(elapsed);
    last_wait_ = wait;
    last_check_ = now;
    if (!contended) {
      pause_ = std::chrono::milliseconds(0);
      return;
    }
    pause_ = std::clamp(pause_ * 2, std::chrono::milliseconds(kFirstPause), std::chrono::milliseconds(kLongestPause));
    paused_until_ = now + pause_;
    watching_ = false;
  }

  // The pause the last contended check started (zero once a check was clean).
  std::chrono::milliseconds pause() const { return pause_; }

  // The default wait clock: the second of the constructing thread's
  // schedstat numbers (nanoseconds spent runnable on a run queue, not
  // running); -1 when there is none (a kernel without scheduler statistics,
  // or a governor given its own clock).
  std::int64_t run_delay() const {
    if (schedstat_fd_ < 0) return -1;
    char text[96];
    const ssize_t n = ::pread(schedstat_fd_, text, sizeof text - 1, 0);
    if (n <= 0) return -1;
    text[n] = '\0';
    unsigned long long running = 0;
    unsigned long long waiting = 0;
    if (std::sscanf(text, "%llu %llu", &running, &waiting) != 2) return -1;
    return static_cast<std::int64_t>(waiting);
  }


 private:
  int schedstat_fd_ = -1;  // /proc/thread-self/schedstat, for the default wait clock
  WaitClock wait_clock_;
  bool watching_ = false;       // last_wait_ is a fresh baseline
  std::int64_t last_wait_ = 0;  // the wait at the last check
  Clock::time_point last_check_{};
  Clock::time_point paused_until_{};
  std::chrono::milliseconds pause_{0};
};

// Runs `ioc`'s handlers until it stops. With `busy_poll` > 0, after each
// handler it keeps polling (epoll with no wait) for up to `busy_poll` before
// it blocks, while a SpinGovernor allows. An idle thread still blocks, so idle
// costs nothing; a busy one spends at most `busy_poll` per lull spinning.
void run_io(boost::asio::io_context& ioc, std::chrono::microseconds busy_poll);

}  // namespace switchboard::gateway
