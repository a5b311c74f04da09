#include "http/busy_poll.h"

#include <boost/asio/io_context.hpp>

namespace switchboard::gateway {

void run_io(boost::asio::io_context& ioc, std::chrono::microseconds busy_poll) {
  if (busy_poll.count() <= 0) {
    ioc.run();
    return;
  }
  using Clock = SpinGovernor::Clock;
  SpinGovernor governor;
  auto last_work = Clock::now();
  bool spinning = false;  // the last poll found nothing to do
  while (!ioc.stopped()) {
    if (ioc.poll() > 0) {
      last_work = Clock::now();
      if (spinning) governor.spun(last_work);
      spinning = false;
      continue;
    }
    const auto now = Clock::now();
    if (now - last_work < busy_poll && governor.may_spin(now)) {
      spinning = true;
      continue;
    }
    if (spinning) governor.spun(now);
    spinning = false;
    if (ioc.run_one() == 0) return;  // stopped, or nothing left to wait for
    last_work = Clock::now();
  }
}

}  // namespace switchboard::gateway
