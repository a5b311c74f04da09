// Folder util/: the few things every folder shares: Status and Result
// (status.cpp), sha256, reading text files and splitting lines
// (file_text.h), and TOML with source positions (toml.h). It includes only
// public headers.
//
#include <cstdio>
#include <cstdlib>

#include "switchboard/decision.h"
#include "switchboard/money.h"
#include "switchboard/status.h"

namespace switchboard {

std::string Status::to_string() const {
  switch (code_) {
    case Code::kOk: return "ok";
    case Code::kInvalidArgument: return "invalid argument: " + message_;
    case Code::kNotFound: return "not found: " + message_;
    case Code::kIoError: return "io error: " + message_;
    case Code::kRuleError: return "rule error: " + message_;
    case Code::kOverBudget: return "over budget: " + message_;
    case Code::kUnavailable: return "unavailable: " + message_;
    case Code::kUpstream: return "upstream error: " + message_;
    case Code::kInternal: return "internal error: " + message_;
    case Code::kCancelled: return "cancelled: " + message_;
    case Code::kDeadlineExceeded: return "deadline exceeded: " + message_;
    case Code::kRateLimited: return "rate limited: " + message_;
  }
  return message_;
}

std::string format_usd(MicroUsd amount, int decimals) {
  if (decimals < 0) decimals = 0;
  if (decimals > 6) decimals = 6;
  const bool negative = amount < 0;
  // Round half away from zero to the requested number of decimals.
  std::int64_t unit = 1;
  for (int i = decimals; i < 6; ++i) unit *= 10;
  std::int64_t magnitude = negative ? -amount : amount;
  magnitude = (magnitude + unit / 2) / unit * unit;
  char buf[64];
  if (decimals == 0) {
    std::snprintf(buf, sizeof buf, "%s$%lld", negative ? "-" : "",
                  static_cast<long long>(magnitude / kMicroPerUsd));
  } else {
    std::snprintf(buf, sizeof buf, "%s$%lld.%0*lld", negative ? "-" : "",
                  static_cast<long long>(magnitude / kMicroPerUsd), decimals,
                  static_cast<long long>((magnitude % kMicroPerUsd) / unit));
  }
  return buf;
}

std::string_view to_string(Reasoning r) {
  switch (r) {
    case Reasoning::kLow: return "low";
    case Reasoning::kMedium: return "medium";
    case Reasoning::kHigh: return "high";
    case Reasoning::kDefault: break;
  }
  return "";
}

std::optional<Reasoning> parse_reasoning(std::string_view name) {
  if (name == "low") return Reasoning::kLow;
  if (name == "medium") return Reasoning::kMedium;
  if (name == "high") return Reasoning::kHigh;
  return std::nullopt;
}

}  // namespace switchboard
