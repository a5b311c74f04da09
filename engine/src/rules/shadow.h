// Shadow evaluation: a workload's candidate rules run on the steps its active
// rules decided, on one background thread per engine, and are never acted on.
//
// Engine::decide hands each step over with offer(): into a bounded queue,
// never waiting for room; when [shadow] queue jobs are waiting the step is
// dropped and counted. The worker runs the candidate's classify with the ctx
// figures the active rules saw (Decision::context_spent and
// context_budget_left), in the candidate's own sandboxes, compares the two
// decisions and writes a DecisionRecord of kind shadow to the ledger.
//
// Thread-safety: offer(), full() and wait_idle() from any thread; stop() and
// the destructor from the owner. After stop() every offer is dropped.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "rules/rule_set.h"
#include "switchboard/config.h"
#include "switchboard/decision.h"
#include "switchboard/engine.h"
#include "switchboard/ledger.h"
#include "switchboard/sessions.h"
#include "switchboard/step.h"

namespace switchboard::detail {

// One workload's ShadowCounts as they change: relaxed atomics (each is a
// count on its own; status() reads a moment's picture, not a transaction).
struct ShadowCounters {
  std::atomic<std::uint64_t> evaluated{0};
  std::atomic<std::uint64_t> agreed{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> dropped{0};

  ShadowCounts load() const;
};

// One step to evaluate: what decide() saw and chose.
struct ShadowJob {
  std::shared_ptr<WorkloadRules> candidate;  // kept alive across a reload that replaces it
  const Workload* workload = nullptr;        // in the worker's config
  ShadowCounters* counters = nullptr;        // the engine's: outlives the worker
  Step step;                                 // as the active rules saw it (prompt included)
  std::optional<SessionView> session;        // ctx.session as the active rules saw it
  Decision active;
  std::string trace_id;
  std::chrono::system_clock::time_point at;  // when the active rules decided
};

class ShadowWorker {
 public:
  // Starts the thread. `config` is the engine's (every snapshot shares it):
  // its [shadow] settings bound the queue and the drain, its [ledger]
  // keep_prompts decides whether a record keeps the prompt. `ledger` may be
  // null: evaluations are then counted, not recorded.
  static std::unique_ptr<ShadowWorker> start(std::shared_ptr<const Config> config, std::shared_ptr<Ledger> ledger);
  ~ShadowWorker();  // stop()
  ShadowWorker(const ShadowWorker&) = delete;
  ShadowWorker& operator=(const ShadowWorker&) = delete;

  // Queues `job`, or counts it dropped when the queue is full or the worker
  // has stopped. Takes one short lock; never waits for room.
  void offer(ShadowJob job);
  // A look without the lock: whether offer() would drop now, so a caller can
  // count the drop without copying a step. May be a moment out of date.
  bool full() const;
  // Until the queue is empty and no evaluation runs, or `timeout`; true when idle.
  bool wait_idle(std::chrono::milliseconds timeout);
  // Evaluates what is waiting for at most [shadow] drain_timeout_ms (the
  // evaluation under way finishes: the sandbox limits bound it), counts the
  // rest dropped, joins the thread and releases the ledger. Idempotent.
  void stop();

 private:
  ShadowWorker(std::shared_ptr<const Config> config, std::shared_ptr<Ledger> ledger);
  void run();
  void evaluate(ShadowJob& job) const;

  const std::shared_ptr<const Config> config_;
  std::shared_ptr<Ledger> ledger_;  // released by stop(), after the thread joined
  const size_t capacity_;

  std::mutex mu_;
  std::condition_variable work_cv_;  // the worker waits for a job or stop()
  std::condition_variable idle_cv_;  // wait_idle() waits for an empty queue and an idle worker
  std::deque<ShadowJob> queue_;      // guarded by mu_
  bool busy_ = false;                // guarded by mu_: an evaluation runs
  bool sleeping_ = false;            // guarded by mu_: the worker waits on work_cv_
  bool stopping_ = false;            // guarded by mu_
  std::chrono::steady_clock::time_point drain_deadline_;  // guarded by mu_, set by stop()
  std::atomic<size_t> waiting_{0};   // queue_.size(), for full()
  std::thread thread_;
};

}  // namespace switchboard::detail
