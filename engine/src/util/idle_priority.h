// Lowers the calling thread to the scheduler's idle class, for background
// work that must not delay a request's thread.
#pragma once

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#endif

namespace switchboard::detail {

// Linux: SCHED_IDLE for the calling thread: it runs when no other thread
// wants its core, and a thread that wakes on that core preempts it at once
// (under the default policy a waking thread may wait out the running one's
// slice). Anyone may lower a thread's priority this way; nothing to do
// elsewhere. Returns whether the thread now runs at idle priority.
// A thread at idle priority can be starved for as long as every core is
// busy: its caller must not let others wait on it (see the SQLite ledger's
// idle ingester).
inline bool run_this_thread_at_idle_priority() {
#if defined(__linux__)
  sched_param param{};
  param.sched_priority = 0;
  return pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0;
#else
  return false;
#endif
}

}  // namespace switchboard::detail
