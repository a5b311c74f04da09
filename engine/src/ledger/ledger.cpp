// Folder ledger/: where call and decision records go. It owns the sink base
// (this file), the SQLite ledger (sqlite.cpp: schema, migrations, group
// writes, reading back) and its acknowledgement journal (journal.cpp), the
// JSONL sink (jsonl.cpp), record <-> JSON
// (record_json.h) and step <-> JSON (step_json.cpp). It may use util/ and the
// public headers; it never includes rules/ or providers/.
//
// The ledger's plumbing: call-status names, the locking sink base, the sink
// of sinks with its error handler, and the callback sink.
#include "switchboard/ledger.h"

#include <cstdio>
#include <exception>
#include <type_traits>
#include <utility>

namespace switchboard {

namespace {

// An enum value and its name in the ledger; one table per enum.
template <typename Enum>
struct EnumName {
  Enum value;
  std::string_view name;
};
constexpr EnumName<CallStatus> kStatusNames[] = {
    {CallStatus::kOk, "ok"},
    {CallStatus::kError, "error"},
    {CallStatus::kFallback, "fallback"},
    {CallStatus::kRefusedByBudget, "refused_by_budget"},
    {CallStatus::kCancelled, "cancelled"},
    {CallStatus::kRefusedByRateLimit, "refused_by_rate_limit"},
};
constexpr EnumName<DecisionKind> kKindNames[] = {
    {DecisionKind::kRules, "rules"},
    {DecisionKind::kRequested, "requested"},
    {DecisionKind::kShadow, "shadow"},
    {DecisionKind::kEval, "eval"},
    {DecisionKind::kJudged, "judged"},
};
constexpr EnumName<JudgedVerdict::Outcome> kJudgedNames[] = {
    {JudgedVerdict::Outcome::kWin, "win"},
    {JudgedVerdict::Outcome::kTie, "tie"},
    {JudgedVerdict::Outcome::kLoss, "loss"},
    {JudgedVerdict::Outcome::kError, "error"},
    {JudgedVerdict::Outcome::kSkipped, "skipped"},
};
constexpr EnumName<AdmissionOutcome> kAdmissionNames[] = {
    {AdmissionOutcome::kAdmitted, "admitted"},
    {AdmissionOutcome::kRerouted, "rerouted"},
    {AdmissionOutcome::kRefused, "refused"},
    {AdmissionOutcome::kNotAdmitted, "not_admitted"},
};
constexpr EnumName<LedgerDurability> kDurabilityNames[] = {
    {LedgerDurability::kProcess, "process"},
    {LedgerDurability::kPower, "power"},
};

template <typename Table, typename Value>
std::string_view name_of(const Table& table, Value v) {
  for (const auto& entry : table) {
    if (entry.value == v) return entry.name;
  }
  return "unknown";
}

template <typename Table>
auto value_named(const Table& table, std::string_view name) -> std::optional<decltype(table[0].value)> {
  for (const auto& entry : table) {
    if (entry.name == name) return entry.value;
  }
  return std::nullopt;
}

// Without a handler, failures go to stderr, as spdlog's default error handler
// does: a lost ledger record must never pass silently.
void report_to_stderr(const std::string& sink, const std::string& message) {
  std::fprintf(stderr, "switchboard: ledger sink %s: %s\n", sink.c_str(), message.c_str());
}

// Hands records to a host function. The base's lock means the host's
// function never runs on two threads at once.
class CallbackSink final : public LockedSink {
 public:
  CallbackSink(std::function<void(const CostRecord&)> on_cost, std::function<void(const DecisionRecord&)> on_decision)
      : on_cost_(std::move(on_cost)), on_decision_(std::move(on_decision)) {}
  std::string name() const override { return "callback"; }

 protected:
  Status write_locked(const CostRecord& record) override { return call(on_cost_, record); }
  Status write_locked(const DecisionRecord& record) override { return call(on_decision_, record); }
  Status flush_locked() override { return Status(); }

 private:
  template <typename Record>
  static Status call(const std::function<void(const Record&)>& fn, const Record& record) {
    if (!fn) return Status();
    try {
      fn(record);
    } catch (const std::exception& e) {
      return Status::internal(std::string("the callback threw: ") + e.what());
    } catch (...) {
      return Status::internal("the callback threw a non-standard exception");
    }
    return Status();
  }

  std::function<void(const CostRecord&)> on_cost_;
  std::function<void(const DecisionRecord&)> on_decision_;
};

}  // namespace

std::string_view to_string(CallStatus s) { return name_of(kStatusNames, s); }

std::optional<CallStatus> parse_call_status(std::string_view name) { return value_named(kStatusNames, name); }

std::string_view to_string(DecisionKind k) { return name_of(kKindNames, k); }
std::optional<DecisionKind> parse_decision_kind(std::string_view name) { return value_named(kKindNames, name); }
std::string_view to_string(JudgedVerdict::Outcome o) { return name_of(kJudgedNames, o); }
std::optional<JudgedVerdict::Outcome> parse_judged_outcome(std::string_view name) {
  return value_named(kJudgedNames, name);
}
std::string_view to_string(AdmissionOutcome a) { return name_of(kAdmissionNames, a); }
std::optional<AdmissionOutcome> parse_admission_outcome(std::string_view name) {
  return value_named(kAdmissionNames, name);
}

std::string_view to_string(LedgerDurability d) { return name_of(kDurabilityNames, d); }
std::optional<LedgerDurability> parse_ledger_durability(std::string_view name) {
  return value_named(kDurabilityNames, name);
}

bool same_choice(const Decision& a, const Decision& b) {
  return a.tier == b.tier && a.model == b.model && a.reasoning == b.reasoning && a.fanout == b.fanout &&
         (a.fanout <= 1 || a.aggregate == b.aggregate) && a.max_output_tokens == b.max_output_tokens;
}

Status LedgerSink::write(const DecisionRecord&) { return Status(); }

Status LockedSink::write(const CostRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  return write_locked(record);
}

Status LockedSink::write(const DecisionRecord& record) {
  std::lock_guard<std::mutex> lock(mu_);
  return write_locked(record);
}

Status LockedSink::write_locked(const DecisionRecord&) { return Status(); }

Status LockedSink::flush() {
  std::lock_guard<std::mutex> lock(mu_);
  return flush_locked();
}

std::shared_ptr<LedgerSink> callback_ledger(std::function<void(const CostRecord&)> fn,
                                            std::function<void(const DecisionRecord&)> on_decision) {
  return std::make_shared<CallbackSink>(std::move(fn), std::move(on_decision));
}

Ledger::Ledger(std::vector<std::shared_ptr<LedgerSink>> sinks, SinkErrorHandler on_error)
    : sinks_(std::move(sinks)), on_error_(std::move(on_error)) {
  if (!on_error_) on_error_ = report_to_stderr;
}

template <typename Record>
void Ledger::write_to_each(const Record& record) {
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

void Ledger::record(const CostRecord& record) { write_to_each(record); }
void Ledger::record(const DecisionRecord& record) { write_to_each(record); }

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
