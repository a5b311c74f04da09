// Folder rules/: what a workload's rules decide. It owns rule sets (compiled,
// versioned, immutable snapshots), their reload and the file watcher, the
// decision path (decide.h: classify, resolve against the config, price), rule
// test cases, shadow rules and the replay of recorded decisions. It may use
// lua/ (the sandbox), cost/ (estimates), util/ and the public headers;
// providers/ and ledger/ never include it.
//
// Versioned, immutable rule sets.
//
// WorkloadRules is one compiled version of one workload's rules file: its
// source, version (sha256 of the text) and the sandboxes that run it. A
// RuleSet is a snapshot {config, workload -> WorkloadRules, and the shadow
// rules of the workloads that have them}; the engine swaps
// whole snapshots, so a decision that started on version N finishes on N and
// never sees a half-loaded set.
//
// Sandboxes live in slots, one leased per call. A thread goes first to "its"
// slot (by a per-thread index), so with no more threads than slots a lease is
// one uncontended atomic exchange; a state is never used by two threads at
// once. When every slot is busy the lease builds a temporary sandbox.
//
// Thread-safety: lease() and Lease's destructor may run on any thread. A
// WorkloadRules must outlive its leases (decide() holds the snapshot).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "lua/sandbox.h"
#include "switchboard/config.h"

namespace switchboard::detail {

struct Slot;

class WorkloadRules {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // Compiles `source` on a fresh sandbox under the load budget (that sandbox
  // becomes the first slot's). Fails with "chunk:line: message". With
  // `load_probe`, that first run of the file body is probed.
  static Result<std::unique_ptr<WorkloadRules>> compile(const SandboxLimits& limits,
                                                        std::string chunk_name, std::string source,
                                                        CallProbe* load_probe = nullptr);
  ~WorkloadRules();
  WorkloadRules(const WorkloadRules&) = delete;
  WorkloadRules& operator=(const WorkloadRules&) = delete;

  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    LuaSandbox* get() const { return box_; }

   private:
    friend class WorkloadRules;
    Lease(Slot* slot, LuaSandbox* box, std::unique_ptr<LuaSandbox> owned)
        : slot_(slot), box_(box), owned_(std::move(owned)) {}
    Slot* slot_;                 // null for a temporary sandbox
    LuaSandbox* box_;
    std::unique_ptr<LuaSandbox> owned_;  // the temporary sandbox, if any
  };

  // A sandbox for one call. Fails only if a needed new sandbox cannot be
  // built (the source compiled once, so only under memory pressure).
  Result<Lease> lease();

  const std::string& chunk_name() const { return chunk_name_; }
  const std::string& source() const { return source_; }
  const std::string& version() const { return version_; }
  // Sandboxes alive in the slots now, and the bytes they hold.
  size_t live_states() const;
  std::int64_t state_bytes() const;

 private:
  WorkloadRules(const SandboxLimits& limits, std::string chunk_name, std::string source);

  const SandboxLimits limits_;
  const std::string chunk_name_;
  const std::string source_;
  const std::string version_;
  const size_t n_slots_;
  std::unique_ptr<Slot[]> slots_;
};

// One slot: a busy flag and the sandbox it guards, on its own cache line.
struct alignas(64) Slot {
  std::atomic<bool> busy{false};
  std::unique_ptr<LuaSandbox> box;  // guarded by busy
  // Whether `box` is set, for reports that must not take the slot: written
  // by the holder of `busy` whenever it sets or clears `box`.
  std::atomic<bool> has_box{false};
};

struct ShadowCounters;  // shadow.h

// A workload's shadow rules in a snapshot, with the engine's counters for them.
struct ShadowRules {
  std::shared_ptr<WorkloadRules> rules;
  ShadowCounters* counters = nullptr;  // owned by the engine, which outlives every decision
};

// The snapshot decide() runs on.
struct RuleSet {
  std::shared_ptr<const Config> config;
  std::map<std::string, std::shared_ptr<WorkloadRules>, std::less<>> workloads;
  // The workloads whose shadow rules load now: empty for most engines, so
  // decide() pays one emptiness test when no workload has shadow rules.
  std::map<std::string, ShadowRules, std::less<>> shadows;
  std::uint64_t generation = 0;

  WorkloadRules* find(std::string_view workload) const {
    auto it = workloads.find(workload);
    return it == workloads.end() ? nullptr : it->second.get();
  }
};

// Closes retired WorkloadRules (and their Lua states) on a background thread,
// so a decision thread that drops the last reference does not pay for it.
// When the reaper has stopped, retirement closes inline.
class Reaper {
 public:
  static std::shared_ptr<Reaper> start();
  ~Reaper();
  void retire(WorkloadRules* rules);
  void stop();  // closes what is queued, then joins the thread

 private:
  Reaper() = default;
  void run();
  struct State;
  std::unique_ptr<State> state_;
};

// Wraps `rules` in a shared_ptr whose deleter hands it to `reaper`.
std::shared_ptr<WorkloadRules> retire_through(std::unique_ptr<WorkloadRules> rules,
                                              std::shared_ptr<Reaper> reaper);

}  // namespace switchboard::detail
