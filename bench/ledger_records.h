// The records the ledger benchmarks write (bench_ledger, bench_pg_ledger):
// one step as the gateway records it, a decision and a call of a gateway's
// size (workload, scopes, versions), and the CPU clocks they read.
#pragma once

#include <time.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "switchboard/ledger.h"

namespace switchboard::bench {

// CPU seconds of `clock` (CLOCK_THREAD_CPUTIME_ID or CLOCK_PROCESS_CPUTIME_ID).
inline double cpu_seconds(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The trace id of step `n`: new_trace_id's form (switchboard/trace_id.h),
// the milliseconds since 1970 when step `n` first asked, then 20 digits of
// `n` itself; the same for the step's decision and call (one thread).
// The ledger's trace index costs by its ids' order: with random 64-bit ids
// bench_ledger measured 43.8 us of process CPU per step, with these 20.2.
inline std::string trace_of(int n) {
  thread_local int last_n = -1;
  thread_local std::string last;
  if (n == last_n) return last;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  char buf[33];
  std::snprintf(buf, sizeof buf, "%012llx%020llx", static_cast<unsigned long long>(ms),
                static_cast<unsigned long long>(n));
  last_n = n;
  last = buf;
  return last;
}

// The cost record of step `n`.
inline CostRecord call_record(int n) {
  CostRecord r;
  r.time = std::chrono::system_clock::now();
  r.trace_id = trace_of(n);
  r.call_id = "call-" + std::to_string(n);
  r.workload = "chat";
  r.role = "chat";
  r.tier = "cheap";
  r.model = "gpt-4.1-mini";
  r.provider = "openai";
  r.rules_version = std::string(64, 'a');
  r.catalog_version = "2026-11-01";
  r.latency_ms = 120;
  r.usage.input_tokens = 812;
  r.usage.output_tokens = 96;
  r.cost = 1234;
  r.counted_input_tokens = 800;
  r.budget_scopes = {"workload:chat", "key:team-a"};
  return r;
}

// The decision record of step `n`.
inline DecisionRecord decision_record(int n) {
  DecisionRecord r;
  r.time = std::chrono::system_clock::now();
  r.trace_id = trace_of(n);
  r.step.role = "chat";
  r.step.input_tokens = 812;
  r.decision.workload = "chat";
  r.decision.rules_version = std::string(64, 'a');
  r.decision.tier = "cheap";
  r.decision.model = "gpt-4.1-mini";
  r.decision.reason = "short chat turn";
  r.decision.estimated_input_tokens = 812;
  r.decision.estimated_output_tokens = 256;
  r.decision.estimated_cost = 1500;
  return r;
}

}  // namespace switchboard::bench
