/// @file
/// Money is integer micro-dollars everywhere in Switchboard; token counts are
/// integers. Floating point appears only at the edges (reading a price written
/// by a person in a config file, printing a total).
#pragma once

#include <cstdint>
#include <string>

namespace switchboard {

using MicroUsd = std::int64_t;  ///< 1 USD = 1,000,000 MicroUsd
inline constexpr MicroUsd kMicroPerUsd = 1'000'000;  ///< MicroUsd in one USD

/// A price in micro-dollars per million tokens ($15 / Mtok = 15,000,000).
using MicroUsdPerMtok = std::int64_t;

/// Cost of `tokens` at `price`, in micro-dollars, rounded half up.
inline MicroUsd cost_of(std::int64_t tokens, MicroUsdPerMtok price) {
  // tokens × price stays inside int64 for tokens < 2^30 (a billion) and
  // prices up to $10,000 per Mtok (2^34 micro-dollars); PriceCatalog::cost
  // sums in 128 bits for anything larger.
  return (tokens * price + 500'000) / 1'000'000;
}

/// "$1.234567" with all six decimals, or fewer with `decimals`.
std::string format_usd(MicroUsd amount, int decimals = 6);

/// Dollars as a double, for JSON output only.
inline double to_usd(MicroUsd amount) { return static_cast<double>(amount) / kMicroPerUsd; }

}  // namespace switchboard
