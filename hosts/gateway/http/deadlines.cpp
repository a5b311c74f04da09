#include "http/deadlines.h"

#include <algorithm>

namespace switchboard::gateway {

void Deadlines::wake_by(Clock::time_point when) {
  if (when >= armed_for_) return;
  armed_for_ = when;
  timer_.expires_at(when);  // a wait already pending ends with operation_aborted
  timer_.async_wait([this, when](const boost::system::error_code& ec) {
    // Re-armed sooner meanwhile: that wait fires instead. (A wait that had
    // already completed when it was re-armed runs with no error: a sweep
    // early, which does no harm.)
    if (ec || when != armed_for_) return;
    fire();
  });
}

void Deadlines::fire() {
  armed_for_ = Clock::time_point::max();
  const Clock::time_point now = Clock::now();
  Clock::time_point next = Clock::time_point::max();
  std::size_t kept = 0;
  // due() may add connections (none do today) or re-arm: index, not iterators.
  for (std::size_t i = 0; i < timed_.size(); ++i) {
    std::shared_ptr<Timed> timed = timed_[i].lock();
    if (!timed) continue;
    next = std::min(next, timed->due(now));
    if (kept != i) timed_[kept] = std::move(timed_[i]);
    ++kept;
  }
  timed_.resize(kept);
  if (next != Clock::time_point::max()) wake_by(next);
}

}  // namespace switchboard::gateway
