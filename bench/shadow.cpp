// bench_shadow: what shadow rules cost.
//  1. ns per Engine::decide on the shipped code_fix rules without shadow
//     rules, with them (each step handed to the shadow worker), and with the
//     queue full (each step dropped and counted: a candidate that loops until
//     its instruction budget kills it keeps the one-place queue full). Timed
//     in the deciding thread's CPU time, so that the worker running on the
//     other core (or another process) does not count as the hot path's cost.
//  2. evaluations per second the shadow worker sustains on the shipped
//     code_fix rules as the candidate, recording to nothing, and to a SQLite
//     ledger (the real setup): the queue is filled first, then drained.
// Usage: bench_shadow [--json] [--iterations N] [--profile handover]
// (--profile runs only the hand-over loop, for perf.)
#include <time.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <thread>

#include "bench_util.h"

using namespace switchboard;
using namespace switchboard::bench;

namespace {

namespace fs = std::filesystem;

// The shipped config; code_fix gets a copy of its own rules as shadow rules
// (so every evaluation agrees), with room for `queue` evaluations.
Config shadowed_config(const Config& shipped, const std::string& candidate, std::int64_t queue) {
  Config c = shipped;
  Workload& w = c.workloads.at("code_fix");
  w.shadow_rules_file = candidate;
  w.shadow_rules_path = "code_fix.next.lua";
  c.shadow.queue = queue;
  c.shadow.drain_timeout = std::chrono::minutes(10);
  return c;
}

std::unique_ptr<Engine> open_or_die(Config config, EngineOptions options = {}) {
  auto engine = Engine::open(std::move(config), std::move(options));
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    std::exit(1);
  }
  return std::move(engine).value();
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// CPU ns of this thread per decision over `n` decisions of the demo steps.
double decide_ns(const Engine& engine, const std::vector<Step>& steps, long n) {
  const double t0 = thread_cpu_seconds();
  size_t sink = 0;
  for (long i = 0; i < n; ++i) {
    auto d = engine.decide("code_fix", steps[static_cast<size_t>(i) % steps.size()]);
    sink += d->tier.size();
  }
  const double s = thread_cpu_seconds() - t0;
  if (sink == 0) std::exit(1);
  return s * 1e9 / static_cast<double>(n);
}

std::uint64_t evaluated(const Engine& engine, const std::string& workload) {
  for (const WorkloadStatus& s : engine.status()) {
    if (s.workload == workload) return s.shadow.evaluated;
  }
  return 0;
}

// The worker's own pace: its queue is filled while it is held up by a shadow
// rule of workload "default" that loops until the time limit (5 s) kills it;
// then the time to evaluate the `n` code_fix steps queued behind it.
double worker_rate(const Engine& engine, const std::vector<Step>& steps, long n) {
  const std::uint64_t held = evaluated(engine, "default");
  const std::uint64_t before = evaluated(engine, "code_fix");
  (void)engine.decide("default", steps[0]);
  for (long i = 0; i < n; ++i) (void)engine.decide("code_fix", steps[static_cast<size_t>(i) % steps.size()]);
  const Clock::time_point queued = Clock::now();
  while (evaluated(engine, "default") == held) std::this_thread::sleep_for(std::chrono::microseconds(50));
  // Counted from here: the few evaluated since the loop ended are left out.
  const Clock::time_point t0 = Clock::now();
  const std::uint64_t at_t0 = evaluated(engine, "code_fix");
  if (t0 <= queued || at_t0 - before > static_cast<std::uint64_t>(n) / 10) {
    std::cerr << "the worker started before the queue was filled: use fewer --iterations\n";
    std::exit(1);
  }
  if (!engine.wait_for_shadow(std::chrono::minutes(10))) std::exit(1);
  const double s = seconds_since(t0);
  return static_cast<double>(evaluated(engine, "code_fix") - at_t0) / s;
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = has_flag(argc, argv, "--json");
  long iterations = 100'000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--iterations") iterations = std::atol(argv[i + 1]);
  }
  const std::string src = SWITCHBOARD_SOURCE_DIR;
  auto shipped = load_config(src + "/switchboard.toml");
  if (!shipped.ok()) {
    std::cerr << shipped.status().message() << "\n";
    return 1;
  }
  const std::vector<Step> steps = demo_steps(src);
  std::random_device rd;
  const fs::path tmp = fs::temp_directory_path() / ("bench-shadow-" + std::to_string(rd()));
  fs::create_directories(tmp);
  const std::string candidate = (tmp / "code_fix.next.lua").string();
  fs::copy_file(src + "/rules/code_fix.lua", candidate);
  const std::string looping = (tmp / "looping.lua").string();
  std::ofstream(looping) << "function classify(step, ctx) while true do end end\n";

  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) != "--profile" || std::string(argv[i + 1]) != "handover") continue;
    auto engine = open_or_die(shadowed_config(*shipped, candidate, 1'000'000));
    for (int run = 0; run < 5; ++run) {
      decide_ns(*engine, steps, iterations);
      engine->wait_for_shadow(std::chrono::minutes(10));
    }
    engine.reset();
    fs::remove_all(tmp);
    return 0;
  }

  // 1. The hot path.
  auto plain = open_or_die(*shipped);
  auto shadowed = open_or_die(shadowed_config(*shipped, candidate, 1'000'000));
  auto full = open_or_die(shadowed_config(*shipped, looping, 1));
  decide_ns(*plain, steps, 10'000);  // warm the sandboxes
  decide_ns(*shadowed, steps, 10'000);
  decide_ns(*full, steps, 10'000);
  shadowed->wait_for_shadow(std::chrono::minutes(10));
  const double ns_plain = best_of(5, [&] { return decide_ns(*plain, steps, iterations) / 1e9; }) * 1e9;
  const double ns_shadowed = best_of(5, [&] {
                               const double ns = decide_ns(*shadowed, steps, iterations);
                               shadowed->wait_for_shadow(std::chrono::minutes(10));  // the queue holds them all
                               return ns / 1e9;
                             }) * 1e9;
  const double ns_full = best_of(5, [&] { return decide_ns(*full, steps, iterations) / 1e9; }) * 1e9;

  // 2. The worker: code_fix's candidate behind default's looping one.
  Config paced = shadowed_config(*shipped, candidate, iterations + 10);
  paced.workloads.at("default").shadow_rules_file = looping;
  paced.workloads.at("default").shadow_rules_path = "looping.lua";
  paced.sandbox.instructions_per_call = 1'000'000'000'000;  // the time limit stops the loop...
  paced.sandbox.time_limit_ms = 5'000;                        // ...after the queue is full
  auto paced_engine = open_or_die(paced);
  const double rate_none = best_of(3, [&] { return 1.0 / worker_rate(*paced_engine, steps, iterations); });
  paced_engine.reset();
  auto sqlite = open_sqlite_ledger(SqliteLedgerOptions{(tmp / "ledger.db").string()});
  if (!sqlite.ok()) {
    std::cerr << sqlite.status().message() << "\n";
    return 1;
  }
  EngineOptions with_ledger;
  with_ledger.shadow_ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{*sqlite});
  auto recorded = open_or_die(paced, with_ledger);
  const double rate_sqlite = best_of(3, [&] { return 1.0 / worker_rate(*recorded, steps, iterations); });
  recorded.reset();
  sqlite->reset();
  fs::remove_all(tmp);

  if (json) {
    std::printf(
        "{\"bench\":\"shadow\",\"iterations\":%ld,\"decide_ns\":%.1f,\"decide_handover_ns\":%.1f,"
        "\"decide_dropped_ns\":%.1f,\"worker_evaluations_per_s\":%.0f,\"worker_sqlite_evaluations_per_s\":%.0f}\n",
        iterations, ns_plain, ns_shadowed, ns_full, 1.0 / rate_none, 1.0 / rate_sqlite);
    return 0;
  }
  std::printf("decide on code_fix (%zu demo steps, %ld iterations, best of 5, CPU time of the deciding thread)\n",
              steps.size(), iterations);
  std::printf("  no shadow rules                      %9.1f ns\n", ns_plain);
  std::printf("  shadow rules, handed to the worker   %9.1f ns\n", ns_shadowed);
  std::printf("  shadow rules, queue full (dropped)   %9.1f ns\n", ns_full);
  std::printf("\nshadow worker (code_fix rules as the candidate, one thread, best of 3)\n");
  std::printf("  no ledger                            %9.0f evaluations/s\n", 1.0 / rate_none);
  std::printf("  SQLite ledger                        %9.0f evaluations/s\n", 1.0 / rate_sqlite);
  return 0;
}
