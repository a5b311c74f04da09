#include "providers/rate_limits.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <string>

#include "util/ascii.h"

namespace switchboard {

namespace {


std::optional<std::int64_t> count_of(std::string_view v) {
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < 0) return std::nullopt;
  return n;
}

// "2025-10-01T12:00:30Z" or with fractional seconds or an offset, as a time.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view v) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0;
  double second = 0;
  char tail[16] = {0};
  const std::string text(v.substr(0, 64));
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%lf%15s", &year, &month, &day, &hour, &minute, &second,
                  tail) < 6) {
    return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = 0;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  int offset_minutes = 0;  // "+02:00" -> 120 (the local time is ahead of UTC)
  const std::string_view zone(tail);
  if (!zone.empty() && zone != "Z" && zone != "z") {
    int h = 0, m = 0;
    if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') ||
        std::sscanf(std::string(zone.substr(1)).c_str(), "%2d:%2d", &h, &m) != 2) {
      return std::nullopt;
    }
    offset_minutes = (zone[0] == '+' ? 1 : -1) * (h * 60 + m);
  }
  const auto ms = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(second * 1000)));
  return std::chrono::system_clock::from_time_t(t) + ms - std::chrono::minutes(offset_minutes);
}

std::chrono::milliseconds until(std::chrono::system_clock::time_point when, std::chrono::system_clock::time_point now) {
  return std::max(std::chrono::milliseconds(0), std::chrono::duration_cast<std::chrono::milliseconds>(when - now));
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_go_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double total_ms = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    double number = 0;
    const auto [end, ec] = std::from_chars(text.data() + i, text.data() + j, number);
    if (ec != std::errc() || end != text.data() + j) return std::nullopt;
    std::size_t k = j;
    while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k]))) ++k;
    const std::string_view unit = text.substr(j, k - j);
    if (unit == "h") {
      total_ms += number * 3'600'000;
    } else if (unit == "m") {
      total_ms += number * 60'000;
    } else if (unit == "s") {
      total_ms += number * 1000;
    } else if (unit == "ms") {
      total_ms += number;
    } else {
      return std::nullopt;
    }
    i = k;
  }
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(total_ms)));
}

bool read_rate_limit_header(std::string_view name, std::string_view value, std::chrono::system_clock::time_point now,
                            RateLimits& limits) {
  const auto set_count = [&](std::optional<std::int64_t>& field) {
    const std::optional<std::int64_t> n = count_of(value);
    if (n) field = n;
    return n.has_value();
  };
  const auto set_duration = [&](std::optional<std::chrono::milliseconds>& field) {
    const auto d = parse_go_duration(value);
    if (d) field = d;
    return d.has_value();
  };
  const auto set_time = [&](std::optional<std::chrono::milliseconds>& field) {
    const auto t = parse_rfc3339(value);
    if (t) field = until(*t, now);
    return t.has_value();
  };
  // One lower-cased copy of the name, then exact compares (length first)
  // of what follows the provider's prefix, instead of a case-insensitive
  // compare of the whole name against each known one.
  char lowered[64];
  if (name.size() > sizeof lowered) return false;
  for (std::size_t i = 0; i < name.size(); ++i) lowered[i] = ascii_lower(name[i]);
  const std::string_view lower(lowered, name.size());
  if (lower.starts_with("x-ratelimit-")) {
    const std::string_view field = lower.substr(std::string_view("x-ratelimit-").size());
    if (field == "remaining-requests") return set_count(limits.requests_left);
    if (field == "remaining-tokens") return set_count(limits.tokens_left);
    if (field == "reset-requests") return set_duration(limits.requests_reset);
    if (field == "reset-tokens") return set_duration(limits.tokens_reset);
    return false;
  }
  if (lower.starts_with("anthropic-ratelimit-")) {
    const std::string_view field = lower.substr(std::string_view("anthropic-ratelimit-").size());
    if (field == "requests-remaining") return set_count(limits.requests_left);
    if (field == "tokens-remaining") return set_count(limits.tokens_left);
    if (field == "input-tokens-remaining") {
      if (limits.tokens_left) return false;  // the combined figure, read first or later, wins
      return set_count(limits.tokens_left);
    }
    if (field == "requests-reset") return set_time(limits.requests_reset);
    if (field == "tokens-reset") return set_time(limits.tokens_reset);
  }
  return false;
}

}  // namespace switchboard
