// Status: a reason rides along with a failure's code, through copies and
// Results, for the failures a host answers in their own way.
#include <doctest/doctest.h>

#include <string>

#include "switchboard/status.h"

using switchboard::Result;
using switchboard::Status;

TEST_CASE("a Status carries its reason through copies and Results, and has none unless given one") {
  CHECK(Status().reason() == Status::Reason::kNone);
  CHECK(Status::upstream("m: 500").reason() == Status::Reason::kNone);
  const Status given = Status::unavailable("budget workload:w: the shared budget state is unreachable")
                           .with_reason(Status::Reason::kBudgetStateUnreachable);
  CHECK(given.code() == Status::Code::kUnavailable);
  CHECK(given.message() == "budget workload:w: the shared budget state is unreachable");
  const Status copy = given;
  CHECK(copy.reason() == Status::Reason::kBudgetStateUnreachable);
  const Result<int> failed = copy;
  CHECK(failed.status().reason() == Status::Reason::kBudgetStateUnreachable);
  // The reason is given, never read from the message.
  CHECK(Status::upstream("no model of tier 't' has a context window for 9 input tokens").reason() ==
        Status::Reason::kNone);
  const Status upstream = Status::upstream("413 from m", 413).with_reason(Status::Reason::kNoContextWindow);
  CHECK(upstream.http_status() == 413);
  CHECK(upstream.reason() == Status::Reason::kNoContextWindow);
}
