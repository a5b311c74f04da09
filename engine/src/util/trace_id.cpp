#include "switchboard/trace_id.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <random>

namespace switchboard {

std::string new_trace_id() {
  thread_local std::mt19937_64 rng([] {
    std::random_device device;
    return (std::uint64_t{device()} << 32) ^ device();
  }());
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  const std::uint64_t high = rng();
  const std::uint64_t low = rng();
  char buf[33];
  // 12 digits of time (48 bits: until the year 10889), then 4 + 16 of chance.
  std::snprintf(buf, sizeof buf, "%012llx%04llx%016llx", static_cast<unsigned long long>(ms) & 0xffffffffffffULL,
                static_cast<unsigned long long>(high & 0xffff), static_cast<unsigned long long>(low));
  return buf;
}

}  // namespace switchboard
