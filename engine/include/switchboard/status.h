/// @file
/// Status and Result<T>: errors as values at the public API.
///
/// A Status is cheap to copy when ok (no allocation). A failed Status carries a
/// code and a one-line message that already names the place it comes from, in
/// the form "file:line:column: what is wrong" or "file:line: what is wrong".
#pragma once

#include <cassert>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace switchboard {

/// An ok status, or a failure: a Code and a one-line message (see the file comment).
class Status {
 public:
  /// What kind of failure a Status is; kOk for none.
  enum class Code { kOk, kInvalidArgument, kNotFound, kIoError, kRuleError, kOverBudget, kUnavailable,
                    kUpstream, kInternal, kCancelled, kDeadlineExceeded, kRateLimited };

  /// Why, beyond the code, for the failures a host answers in their own way
  /// (the gateway's HTTP error types), so that no host reads the message
  /// for it. kNone for every other failure, and when ok.
  enum class Reason {
    kNone,
    kNoContextWindow,         ///< kUpstream: no model of the tier has a context window for the request
    kBudgetStateUnreachable,  ///< kUnavailable: fail_closed budgets, and the shared state cannot be reached
    kRateStateUnreachable,    ///< kUnavailable: fail_closed rate limits, and the shared state cannot be reached
  };

  Status() = default;  ///< ok

  /// An ok status, the same as Status().
  static Status ok_status() { return Status(); }
  /// A rate limit (rate_limit.h) had no room for the request: it must not go
  /// out now; `retry_after` is when the same request would fit (none: never,
  /// it is larger than the limit per minute).
  static Status rate_limited(std::string msg, std::optional<std::chrono::milliseconds> retry_after = std::nullopt) {
    Status s(Code::kRateLimited, std::move(msg));
    s.retry_after_ = retry_after;
    return s;
  }
  /// A failure of code kInvalidArgument with message `msg`.
  static Status invalid_argument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  /// A failure of code kNotFound with message `msg`.
  static Status not_found(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  /// A failure of code kIoError with message `msg`.
  static Status io_error(std::string msg) { return {Code::kIoError, std::move(msg)}; }
  /// A failure of code kRuleError with message `msg`.
  static Status rule_error(std::string msg) { return {Code::kRuleError, std::move(msg)}; }
  /// A budget reservation was refused: the call must not go out.
  static Status over_budget(std::string msg) { return {Code::kOverBudget, std::move(msg)}; }
  /// A model call failed in a way that retrying the same model may cure (429,
  /// 5xx, timeout, broken stream); `retry_after` is the provider's own wait.
  static Status unavailable(std::string msg,
                            std::optional<std::chrono::milliseconds> retry_after = std::nullopt) {
    Status s(Code::kUnavailable, std::move(msg));
    s.retry_after_ = retry_after;
    return s;
  }
  /// A provider answered with something unusable, or refused the request:
  /// retrying the same model will not help. `http_status` is the provider's
  /// own HTTP status when it refused the request with one (a 4xx), else 0.
  static Status upstream(std::string msg, int http_status = 0) {
    Status s(Code::kUpstream, std::move(msg));
    s.http_status_ = http_status;
    return s;
  }
  /// A failure of code kInternal with message `msg`.
  static Status internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  /// The caller cancelled the work (a client went away): nobody waits for its result.
  static Status cancelled(std::string msg) { return {Code::kCancelled, std::move(msg)}; }
  /// The work's deadline passed before it finished (see CallBounds).
  static Status deadline_exceeded(std::string msg) { return {Code::kDeadlineExceeded, std::move(msg)}; }

  /// True when the status is ok (code kOk).
  bool ok() const { return code_ == Code::kOk; }
  /// The status's code.
  Code code() const { return code_; }
  /// The one-line message; empty when ok.
  const std::string& message() const { return message_; }
  /// The provider's Retry-After, for an unavailable status that carried one;
  /// a rate_limited status's wait until the request fits.
  std::optional<std::chrono::milliseconds> retry_after() const { return retry_after_; }
  /// The provider's HTTP status, for an upstream status it answered with one; 0 otherwise.
  int http_status() const { return http_status_; }
  /// The reason (see Reason); kNone unless with_reason() gave one.
  Reason reason() const { return reason_; }
  /// This status with `reason`. REQUIRES: not ok.
  Status with_reason(Reason reason) && {
    assert(!ok());
    reason_ = reason;
    return std::move(*this);
  }
  /// "ok", or the code's name followed by the message.
  std::string to_string() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
  std::optional<std::chrono::milliseconds> retry_after_;
  int http_status_ = 0;
  Reason reason_ = Reason::kNone;
};

/// Either a value or a failed Status. REQUIRES: a Result built from a Status is
/// never built from an ok one.
template <typename T>
class Result {
 public:
  /// A result holding `value`.
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  /// A failed result holding `status`, which must not be ok (asserted).
  Result(Status status) : status_(std::move(status)) { assert(!status_.ok()); }  // NOLINT

  /// True when the result holds a value.
  bool ok() const { return value_.has_value(); }
  /// The failure; an ok Status when the result holds a value.
  const Status& status() const { return status_; }
  /// The value. REQUIRES: ok() (asserted).
  T& value() & { assert(ok()); return *value_; }
  /// The value. REQUIRES: ok() (asserted).
  const T& value() const& { assert(ok()); return *value_; }
  /// The value, to move from. REQUIRES: ok() (asserted).
  T&& value() && { assert(ok()); return std::move(*value_); }
  /// The value's members, as value(). REQUIRES: ok().
  T* operator->() { return &value(); }
  /// The value's members, as value(). REQUIRES: ok().
  const T* operator->() const { return &value(); }
  /// The value, as value(). REQUIRES: ok().
  T& operator*() & { return value(); }
  /// The value, as value(). REQUIRES: ok().
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace switchboard
