#include "switchboard/trace_id.h"

#include <chrono>
#include <cstdint>
#include <random>

#include "util/hex.h"

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
  // 12 digits of time (48 bits: until the year 10889), then 4 + 16 of chance.
  std::string id(32, '0');
  detail::put_hex(id.data(), static_cast<std::uint64_t>(ms) & 0xffffffffffffULL, 12);
  detail::put_hex(id.data() + 12, high & 0xffff, 4);
  detail::put_hex(id.data() + 16, low, 16);
  return id;
}

}  // namespace switchboard
