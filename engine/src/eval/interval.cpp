// The Wilson score interval (eval.h): unlike the normal approximation it
// stays inside [0, 1] and is not degenerate at 0 or n successes, which an
// eval set of a few dozen cases hits often.
#include <algorithm>
#include <cmath>

#include "switchboard/eval.h"

namespace switchboard {

Interval wilson_interval(std::int64_t passed, std::int64_t total, double z) {
  Interval out;
  if (total <= 0) return out;
  const double n = static_cast<double>(total);
  const double p = static_cast<double>(std::clamp<std::int64_t>(passed, 0, total)) / n;
  const double z2 = z * z;
  const double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z / (1 + z2 / n) * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  out.low = std::max(0.0, centre - half);
  out.high = std::min(1.0, centre + half);
  return out;
}

}  // namespace switchboard
