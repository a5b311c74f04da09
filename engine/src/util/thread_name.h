// Names the calling thread as `top -H`, `ps -L`, perf and gdb show it: every
// thread the engine starts has a name beginning "sb-" (at most 15 bytes, the
// kernel's limit; longer ones are cut).
#pragma once

#include <pthread.h>

#include <string>

namespace switchboard::detail {

inline void name_this_thread(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace switchboard::detail
