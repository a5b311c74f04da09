// Many threads on one engine: deciders while another thread reloads, status
// readers, engine teardown while threads still cache a snapshot, and more
// threads than sandbox slots. Every case is in the "concurrency" suite, which
// CI runs in a ThreadSanitizer build (`ctest -L concurrency`), so the counts
// stay small enough for TSan's 5-15x slowdown.
//
// Threads record what they saw in their own structs; assertions run on the
// test's thread after the joins.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "util/sha256.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

std::string sha(const std::string& text) { return detail::sha256_hex(text); }

// Rules for `workload` at `version` ("A" answers cheap, "B" premium). The
// reason carries the version the Lua state saw in ctx, so a decision run on
// one version's state but labelled with another's shows up.
std::string versioned_rules(const std::string& workload, const std::string& version) {
  const std::string tier = version == "A" ? "cheap" : "premium";
  return "-- workload " + workload + ", version " + version + "\n" +
         "function classify(step, ctx)\n"
         "  local n = 0\n"
         "  for i = 1, step.input_tokens % 50 do n = n + i end\n"
         "  return { tier = \"" + tier + "\", reason = \"" + version + " \" .. ctx.rules_version }\n"
         "end\n";
}

// Three ways a new w.lua can be wrong; none may ever serve.
std::vector<std::string> broken_rules() {
  return {
      // a syntax error
      "-- broken: syntax\nfunction classify(step, ctx)\n  return \"cheap\"\n",
      // an error in the file body
      "-- broken: body\nlocal t = nil\nlocal x = t.field\nfunction classify(step, ctx) return \"cheap\" end\n",
      // loads, but fails the test case (an unknown tier is an error)
      "-- broken: test case\nfunction classify(step, ctx) return { tier = \"gold\" } end\n",
  };
}

// The case every valid version passes and the third broken one fails.
const char* const kTestCases = R"toml(workload = "w"

[[case]]
name = "answers without an error"
step = { role = "plan", input_tokens = 100 }
expect = { error = false }
)toml";

const char* const kTwoWorkloads = "\n[workloads.v]\nrules = \"rules/v.lua\"\nfallback_tier = \"cheap\"\n";

// An engine with workloads w and v, both at version A.
std::unique_ptr<Engine> open_two_workloads(const TempDir& dir) {
  dir.write("rules/w.lua", versioned_rules("w", "A"));
  dir.write("rules/v.lua", versioned_rules("v", "A"));
  dir.write("rules/w.test.toml", kTestCases);
  auto engine = Engine::open_file(switchboard::testing::write_config(dir, switchboard::testing::small_config(kTwoWorkloads)));
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  return std::move(engine).value();
}

Step step_of(std::int64_t input_tokens) {
  Step step;
  step.role = "plan";
  step.input_tokens = input_tokens;
  return step;
}

// What one decider saw.
struct DeciderLog {
  std::int64_t decisions = 0;
  std::int64_t failed = 0;       // decide() not ok, or Decision::error set
  std::int64_t bad_version = 0;  // neither A's nor B's sha256
  std::int64_t mismatched = 0;   // the tier or the state's ctx does not match the version
  std::int64_t saw_a = 0, saw_b = 0;
  std::string first_problem;

  void problem(std::int64_t& counter, const std::string& what) {
    ++counter;
    if (first_problem.empty()) first_problem = what;
  }
};

// Checks one decision of `workload` against its two valid versions.
void check_decision(DeciderLog& log, const Result<Decision>& d, const std::string& version_a,
                    const std::string& version_b) {
  ++log.decisions;
  if (!d.ok()) return log.problem(log.failed, d.status().message());
  if (d->error) return log.problem(log.failed, *d->error);
  std::string letter;
  if (d->rules_version == version_a) {
    letter = "A";
    ++log.saw_a;
  } else if (d->rules_version == version_b) {
    letter = "B";
    ++log.saw_b;
  } else {
    return log.problem(log.bad_version, d->workload + " served version " + d->rules_version);
  }
  const std::string tier = letter == "A" ? "cheap" : "premium";
  if (d->tier != tier || d->reason != letter + " " + d->rules_version) {
    log.problem(log.mismatched, d->workload + " version " + letter + " answered tier " + d->tier +
                                    " with reason '" + d->reason + "'");
  }
}

}  // namespace

TEST_SUITE("concurrency") {

TEST_CASE("decisions during reloads always come from one whole valid version") {
  TempDir dir;
  std::unique_ptr<Engine> engine = open_two_workloads(dir);

  const std::string w_a = sha(versioned_rules("w", "A")), w_b = sha(versioned_rules("w", "B"));
  const std::string v_a = sha(versioned_rules("v", "A")), v_b = sha(versioned_rules("v", "B"));
  const std::vector<std::string> broken = broken_rules();

  constexpr int kDeciders = 4;
  constexpr std::int64_t kMinDecisions = 2000;  // per decider
  constexpr int kReloads = 30;
  constexpr std::int64_t kDecisionsPerReload = 150;  // the writer waits for them, so versions overlap deciders
  const auto deadline = Clock::now() + std::chrono::seconds(60);  // a hang fails, it does not block CI

  std::atomic<std::int64_t> progress{0};  // decisions made, all deciders
  std::atomic<bool> writer_done{false};
  std::atomic<bool> timed_out{false};
  std::latch start(kDeciders + 2);

  std::vector<DeciderLog> logs(kDeciders);
  std::vector<std::thread> threads;
  for (int t = 0; t < kDeciders; ++t) {
    threads.emplace_back([&, t] {
      DeciderLog& log = logs[t];
      start.arrive_and_wait();
      for (std::int64_t i = 0; log.decisions < kMinDecisions || !writer_done.load(); ++i) {
        if (Clock::now() > deadline) {
          timed_out = true;
          break;
        }
        if (i % 2 == 0) {
          check_decision(log, engine->decide("w", step_of(1000 + i)), w_a, w_b);
        } else {
          check_decision(log, engine->decide("v", step_of(1000 + i)), v_a, v_b);
        }
        progress.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  // The writer: every reload flips v between A and B; w flips too, except
  // that every third edit of w is broken (and v's edit in the same reload
  // still goes live).
  std::vector<std::string> writer_problems;
  int w_activations = 0, w_rejections = 0, v_activations = 0;
  threads.emplace_back([&] {
    start.arrive_and_wait();
    std::string w_next = "B", v_next = "B";
    for (int r = 0; r < kReloads && !timed_out.load(); ++r) {
      const bool breaking = r % 3 == 2;
      const std::string w_text = breaking ? broken[(r / 3) % broken.size()] : versioned_rules("w", w_next);
      dir.write("rules/w.lua", w_text);
      dir.write("rules/v.lua", versioned_rules("v", v_next));
      const std::string v_version = sha(versioned_rules("v", v_next));
      const std::string w_before = engine->rules_version("w");
      for (const ReloadEvent& e : engine->reload()) {
        const bool want_activated = e.workload == "v" || !breaking;
        if ((e.kind == ReloadEvent::Kind::kActivated) != want_activated) {
          writer_problems.push_back("reload " + std::to_string(r) + " of " + e.workload + ": " +
                                    (e.error.empty() ? "activated" : e.error));
        }
        if (e.workload == "w") (e.kind == ReloadEvent::Kind::kActivated ? w_activations : w_rejections)++;
        if (e.workload == "v" && e.kind == ReloadEvent::Kind::kActivated) v_activations++;
      }
      if (engine->rules_version("v") != v_version) writer_problems.push_back("v did not go live");
      if (breaking && engine->rules_version("w") != w_before) writer_problems.push_back("broken w went live");
      if (!breaking) w_next = w_next == "A" ? "B" : "A";
      v_next = v_next == "A" ? "B" : "A";
      // Let the deciders run on this version before the next swap.
      const std::int64_t target = progress.load() + kDecisionsPerReload;
      while (progress.load() < target && Clock::now() < deadline) std::this_thread::yield();
    }
    writer_done = true;
  });

  // The observer: status pages and memory reports during the reloads.
  std::int64_t observations = 0;
  std::vector<std::string> observer_problems;
  threads.emplace_back([&] {
    start.arrive_and_wait();
    while (!writer_done.load() && Clock::now() < deadline) {
      for (const WorkloadStatus& s : engine->status()) {
        const bool valid = s.workload == "w" ? (s.version == w_a || s.version == w_b)
                                             : (s.version == v_a || s.version == v_b);
        if (!valid) observer_problems.push_back("status of " + s.workload + " shows " + s.version);
      }
      const std::string w = engine->rules_version("w");
      if (w != w_a && w != w_b) observer_problems.push_back("rules_version(w) is " + w);
      if (!engine->rules_version("nope").empty()) observer_problems.push_back("an unknown workload has a version");
      const EngineMemory m = engine->memory();
      if (m.states == 0 || m.state_bytes <= 0) observer_problems.push_back("memory() reports no states");
      ++observations;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });

  for (std::thread& t : threads) t.join();

  CHECK_FALSE(timed_out.load());
  std::int64_t saw_a = 0, saw_b = 0;
  for (const DeciderLog& log : logs) {
    INFO(log.first_problem);
    CHECK(log.decisions >= kMinDecisions);
    CHECK(log.failed == 0);
    CHECK(log.bad_version == 0);
    CHECK(log.mismatched == 0);
    saw_a += log.saw_a;
    saw_b += log.saw_b;
  }
  CHECK(saw_a > 0);
  CHECK(saw_b > 0);
  CHECK_MESSAGE(writer_problems.empty(), (writer_problems.empty() ? "" : writer_problems.front()));
  CHECK_MESSAGE(observer_problems.empty(), (observer_problems.empty() ? "" : observer_problems.front()));
  CHECK(observations > 0);
  CHECK(w_activations == 20);
  CHECK(w_rejections == 10);
  CHECK(v_activations == kReloads);

  const std::vector<WorkloadStatus> status = engine->status();
  REQUIRE(status.size() == 2);
  CHECK(status[0].activations == kReloads);     // v
  CHECK(status[1].activations == 20);           // w
  CHECK(status[1].rejections == 10);
  // An even number of flips each: both are back at A.
  CHECK(status[0].version == v_a);
  CHECK(status[1].version == w_a);
}

TEST_CASE("an engine destroyed after its deciding thread joined closes cleanly") {
  TempDir dir;
  std::unique_ptr<Engine> engine = open_two_workloads(dir);
  const std::string w_b = sha(versioned_rules("w", "B"));
  std::string seen;
  std::thread decider([&] {
    auto d = engine->decide("w", step_of(10));
    if (d.ok()) seen = d->rules_version;
  });
  decider.join();
  // A reload after the thread is gone: the version it used is retired with
  // no thread holding it.
  dir.write("rules/w.lua", versioned_rules("w", "B"));
  REQUIRE(engine->reload().size() == 1);
  CHECK(engine->rules_version("w") == w_b);
  engine.reset();
  CHECK(seen == sha(versioned_rules("w", "A")));
}

TEST_CASE("an engine destroyed while a live thread still caches its snapshot closes cleanly") {
  TempDir dir;
  std::unique_ptr<Engine> engine = open_two_workloads(dir);
  const Engine* raw = engine.get();
  std::promise<void> decided, destroyed;
  std::shared_future<void> destroyed_f = destroyed.get_future().share();
  std::string first_version, later_tier;
  std::thread holder([&] {
    auto d = raw->decide("w", step_of(10));  // this thread now caches the engine's snapshot
    if (d.ok()) first_version = d->rules_version;
    decided.set_value();
    destroyed_f.wait();
    // The engine is gone; this thread still holds its (retired) snapshot. A
    // new engine here evicts nothing it should not, and at exit the old
    // snapshot closes on this thread.
    TempDir other;
    auto fresh = switchboard::testing::engine_with_rules(other, versioned_rules("w", "B"));
    if (fresh.ok()) {
      auto d2 = (*fresh)->decide("w", step_of(10));
      if (d2.ok()) later_tier = d2->tier;
    }
  });
  decided.get_future().wait();
  // Make the holder's snapshot stale too, then destroy the engine under it.
  dir.write("rules/w.lua", versioned_rules("w", "B"));
  REQUIRE(engine->reload().size() == 1);
  engine.reset();
  destroyed.set_value();
  holder.join();
  CHECK(first_version == sha(versioned_rules("w", "A")));
  CHECK(later_tier == "premium");
}

TEST_CASE("more threads than sandbox slots still decide correctly") {
  // Slots per rules version are min(64, max(8, 4 x cores)): this is always more.
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t n_threads = std::max<size_t>(40, std::min<size_t>(64, 4 * cores) + 8);
  constexpr int kDecisionsPerThread = 20;

  TempDir dir;
  auto opened = switchboard::testing::engine_with_rules(dir, versioned_rules("w", "A"));
  REQUIRE_MESSAGE(opened.ok(), opened.status().message());
  const Engine& engine = **opened;
  const std::string w_a = sha(versioned_rules("w", "A"));

  std::latch start(static_cast<std::ptrdiff_t>(n_threads));
  std::vector<DeciderLog> logs(n_threads);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n_threads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();  // all at once, so every slot is busy
      for (int i = 0; i < kDecisionsPerThread; ++i) {
        check_decision(logs[t], engine.decide("w", step_of(100 + i)), w_a, w_a);
      }
    });
  }
  for (std::thread& t : threads) t.join();

  for (const DeciderLog& log : logs) {
    INFO(log.first_problem);
    CHECK(log.decisions == kDecisionsPerThread);
    CHECK(log.failed == 0);
    CHECK(log.bad_version == 0);
    CHECK(log.mismatched == 0);
  }
  // Temporary sandboxes closed with their calls; the slots hold at most 64.
  const EngineMemory m = engine.memory();
  CHECK(m.states >= 1);
  CHECK(m.states <= 64);
}

}  // TEST_SUITE("concurrency")
