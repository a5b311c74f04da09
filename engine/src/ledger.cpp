// The ledger's plumbing: call-status names, the locking sink base, the sink
// of sinks with its error handler, and the callback sink.
#include "switchboard/ledger.h"

#include <cstdio>
#include <exception>
#include <utility>

namespace switchboard {

namespace {

struct StatusName {
  CallStatus status;
  std::string_view name;
};
constexpr StatusName kStatusNames[] = {
    {CallStatus::kOk, "ok"},
    {CallStatus::kError, "error"},
    {CallStatus::kFallback, "fallback"},
    {CallStatus::kRefusedByBudget, "refused_by_budget"},
};

// Without a handler, failures go to stderr, as spdlog's default error handler
// does: a lost ledger record must never pass silently.
void report_to_stderr(const std::string& sink, const std::string& message) {
  std::fprintf(stderr, "switchboard: ledger sink %s: %s\n", sink.c_str(), message.c_str());
}

// Hands records to a host function. The base's lock means the host's
// function never runs on two threads at once.
class CallbackSink final : public LockedSink {
 public:
  explicit CallbackSink(std::function<void(const CostRecord&)> fn) : fn_(std::move(fn)) {}
  std::string name() const override { return "callback"; }

 protected:
  Status write_locked(const CostRecord& record) override {
    if (!fn_) return Status();
    try {
      fn_(record);
    } catch (const std::exception& e) {
      return Status::internal(std::string("the callback threw: ") + e.what());
    } catch (...) {
      return Status::internal("the callback threw a non-standard exception");
    }
    return Status();
  }
  Status flush_locked() override { return Status(); }

 private:
  std::function<void(const CostRecord&)> fn_;
};

}  // namespace

std::string_view to_string(CallStatus s) {
  for (const StatusName& n : kStatusNames) {
    if (n.status == s) return n.name;
  }
  return "unknown";
}

std::optional<CallStatus> parse_call_status(std::string_view name) {
  for (const StatusName& n : kStatusNames) {
    if (n.name == name) return n.status;
  }
  return std::nullopt;
}

Status LockedSink::write(const CostRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  return write_locked(record);
}

Status LockedSink::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  return flush_locked();
}

std::shared_ptr<LedgerSink> callback_ledger(std::function<void(const CostRecord&)> fn) {
  return std::make_shared<CallbackSink>(std::move(fn));
}

Ledger::Ledger(std::vector<std::shared_ptr<LedgerSink>> sinks, SinkErrorHandler on_error)
    : sinks_(std::move(sinks)), on_error_(std::move(on_error)) {
  if (!on_error_) on_error_ = report_to_stderr;
}

void Ledger::record(const CostRecord& record) {
  for (const auto& sink : sinks_) {
    if (!sink) continue;
    std::string failure;
    try {
      const Status s = sink->write(record);
      if (!s.ok()) failure = s.message();
    } catch (const std::exception& e) {
      failure = std::string("write threw: ") + e.what();
    } catch (...) {
      failure = "write threw a non-standard exception";
    }
    if (failure.empty()) continue;
    // The handler must not throw; if it does anyway, the caller still must not see it.
    try {
      on_error_(sink->name(), failure);
    } catch (...) {
    }
  }
}

Status Ledger::flush() {
  std::string failures;
  for (const auto& sink : sinks_) {
    if (!sink) continue;
    std::string failure;
    try {
      const Status s = sink->flush();
      if (!s.ok()) failure = s.message();
    } catch (const std::exception& e) {
      failure = std::string("flush threw: ") + e.what();
    } catch (...) {
      failure = "flush threw a non-standard exception";
    }
    if (failure.empty()) continue;
    if (!failures.empty()) failures += "; ";
    failures += "ledger sink " + sink->name() + ": " + failure;
  }
  return failures.empty() ? Status() : Status::io_error(std::move(failures));
}

}  // namespace switchboard
