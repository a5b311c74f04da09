// Engine::reload: a changed rules file goes live only when it compiles, its
// body runs within the load budget, it defines classify and it passes the
// workload's test cases; otherwise the old version keeps serving and the
// error is recorded with its file:line. Single-threaded; the threaded side is
// in concurrency_test.cpp and watcher_test.cpp.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#if defined(__GLIBC__)  // known once a standard header is in
#include <malloc.h>
#endif

#include "util/sha256.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;
namespace fs = std::filesystem;

namespace {

// Version A answers "cheap", version B "premium": a decision names its version
// by its tier as well as by Decision::rules_version.
const char* const kRulesA = R"lua(-- version A
function classify(step, ctx)
  return { tier = "cheap", reason = "A" }
end
)lua";

const char* const kRulesB = R"lua(-- version B
function classify(step, ctx)
  return { tier = "premium", reason = "B" }
end
)lua";

std::string sha(const std::string& text) { return detail::sha256_hex(text); }

// An engine on small_config() whose on_reload records every event, with the
// workload's rules at rules/w.lua (and rules/v.lua when the config adds v).
struct Rig {
  TempDir dir;
  std::vector<ReloadEvent> seen;  // what on_reload received, in order
  std::unique_ptr<Engine> engine;

  explicit Rig(const std::string& rules, const std::string& extra_config = "") {
    EngineOptions options;
    options.on_reload = [this](const ReloadEvent& e) { seen.push_back(e); };
    auto opened = switchboard::testing::engine_with_rules(dir, rules, extra_config, std::move(options));
    REQUIRE_MESSAGE(opened.ok(), opened.status().message());
    engine = std::move(opened).value();
  }

  fs::path file(const std::string& name = "rules/w.lua") const { return dir.path() / name; }
  void edit(const std::string& text, const std::string& name = "rules/w.lua") const { dir.write(name, text); }

  Decision decide(const std::string& workload = "w") const {
    Step step;
    step.role = "plan";
    step.input_tokens = 1000;
    auto d = engine->decide(workload, step);
    REQUIRE_MESSAGE(d.ok(), d.status().message());
    return *d;
  }

  WorkloadStatus status(const std::string& workload = "w") const {
    for (const WorkloadStatus& s : engine->status()) {
      if (s.workload == workload) return s;
    }
    FAIL("no status for workload " << workload);
    return {};
  }
};

// The old version serves on: status, rules_version and a decision all name it.
void check_serves(const Rig& rig, const std::string& text, const std::string& tier,
                  const std::string& workload = "w") {
  CHECK(rig.status(workload).version == sha(text));
  CHECK(rig.engine->rules_version(workload) == sha(text));
  const Decision d = rig.decide(workload);
  CHECK(d.rules_version == sha(text));
  CHECK(d.tier == tier);
  CHECK_FALSE(d.error.has_value());
}

bool same_event(const ReloadEvent& a, const ReloadEvent& b) {
  return a.kind == b.kind && a.workload == b.workload && a.rules_path == b.rules_path &&
         a.version == b.version && a.previous_version == b.previous_version && a.error == b.error &&
         a.at == b.at;
}

// Bytes malloc has handed out and not taken back (glibc); 0 where unknown
// (a sanitizer's allocator).
std::int64_t heap_in_use() {
#if defined(__GLIBC__)
  const struct mallinfo2 m = mallinfo2();
  return static_cast<std::int64_t>(m.uordblks + m.hblkhd);
#else
  return 0;
#endif
}

}  // namespace

TEST_CASE("reload activates a changed valid file and moves version and status with it") {
  Rig rig(kRulesA);
  check_serves(rig, kRulesA, "cheap");
  const WorkloadStatus before = rig.status();
  CHECK(before.rules_path == "rules/w.lua");
  CHECK(before.activations == 0);
  CHECK(before.rejections == 0);
  CHECK_FALSE(before.last_error.has_value());

  rig.edit(kRulesB);
  const std::vector<ReloadEvent> events = rig.engine->reload();
  REQUIRE(events.size() == 1);
  const ReloadEvent& e = events[0];
  CHECK(e.kind == ReloadEvent::Kind::kActivated);
  CHECK(e.workload == "w");
  CHECK(e.rules_path == "rules/w.lua");
  CHECK(e.version == sha(kRulesB));
  CHECK(e.previous_version == sha(kRulesA));
  CHECK(e.error.empty());

  check_serves(rig, kRulesB, "premium");
  CHECK(rig.decide().reason == "B");
  const WorkloadStatus after = rig.status();
  CHECK(after.activated_at > before.activated_at);
  CHECK(after.activated_at == e.at);
  CHECK(after.activations == 1);
  CHECK(after.rejections == 0);
  CHECK_FALSE(after.last_error.has_value());

  REQUIRE(rig.seen.size() == 1);
  CHECK(same_event(rig.seen[0], e));

  // And back again: every activation counts.
  rig.edit(kRulesA);
  REQUIRE(rig.engine->reload().size() == 1);
  check_serves(rig, kRulesA, "cheap");
  CHECK(rig.status().activations == 2);
  CHECK(rig.seen.size() == 2);
}

TEST_CASE("reload of an unchanged file (the same bytes written again or just touched) produces no event") {
  Rig rig(kRulesA);
  const WorkloadStatus before = rig.status();

  CHECK(rig.engine->reload().empty());  // nothing happened at all

  rig.edit(kRulesA);  // saved again with the same text
  CHECK(rig.engine->reload().empty());

  fs::last_write_time(rig.file(), fs::file_time_type::clock::now() + std::chrono::seconds(5));  // touch
  CHECK(rig.engine->reload().empty());

  CHECK(rig.seen.empty());
  const WorkloadStatus after = rig.status();
  CHECK(after.version == sha(kRulesA));
  CHECK(after.activated_at == before.activated_at);
  CHECK(after.activations == 0);
  CHECK(after.rejections == 0);
  check_serves(rig, kRulesA, "cheap");
}

TEST_CASE("reload keeps the old version and records file:line when the new file fails to load") {
  struct Case {
    const char* what;
    std::string text;   // the broken file
    std::string error;  // the exact message, location first
  };
  const std::vector<Case> cases = {
      {"a syntax error",
       R"lua(function classify(step, ctx)
  return "cheap"
end
end
)lua",
       "rules/w.lua:4: <eof> expected near 'end'"},
      {"a runtime error in the file body",
       R"lua(local limits = nil
local max = limits.max
function classify(step, ctx) return "cheap" end
)lua",
       "rules/w.lua:2: attempt to index a nil value (local 'limits')"},
      {"a file body over the load instruction budget",
       R"lua(local n = 0
while true do n = n + 1 end
function classify(step, ctx) return "cheap" end
)lua",
       "rules/w.lua:2: instruction budget of 10000000 exceeded"},
      {"a file that defines no classify",
       R"lua(local function classify(step, ctx) return "cheap" end
)lua",
       "rules/w.lua: the rules file defines no global function 'classify(step, ctx)'"},
      {"an error() raised by the file body",
       R"lua(function classify(step, ctx) return "cheap" end
error("refusing to load", 1)
)lua",
       "rules/w.lua:2: refusing to load"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    Rig rig(kRulesA);
    rig.edit(c.text);
    const std::vector<ReloadEvent> events = rig.engine->reload();
    REQUIRE(events.size() == 1);
    const ReloadEvent& e = events[0];
    CHECK(e.kind == ReloadEvent::Kind::kRejected);
    CHECK(e.workload == "w");
    CHECK(e.version == sha(c.text));
    CHECK(e.previous_version == sha(kRulesA));
    CHECK(e.error == c.error);

    check_serves(rig, kRulesA, "cheap");
    const WorkloadStatus s = rig.status();
    CHECK(s.last_error == e.error);
    CHECK(s.last_error_at == e.at);
    CHECK(s.rejections == 1);
    CHECK(s.activations == 0);
    REQUIRE(rig.seen.size() == 1);
    CHECK(same_event(rig.seen[0], e));

    // The same broken text again (a touch, the next watcher event) is not
    // tried or reported a second time.
    CHECK(rig.engine->reload().empty());
    CHECK(rig.status().rejections == 1);
    CHECK(rig.seen.size() == 1);

    // A later valid edit is accepted; the last error stays on record.
    rig.edit(kRulesB);
    const std::vector<ReloadEvent> fixed = rig.engine->reload();
    REQUIRE(fixed.size() == 1);
    CHECK(fixed[0].kind == ReloadEvent::Kind::kActivated);
    CHECK(fixed[0].previous_version == sha(kRulesA));
    check_serves(rig, kRulesB, "premium");
    CHECK(rig.status().activations == 1);
    CHECK(rig.status().last_error == e.error);
    CHECK(rig.seen.size() == 2);
  }
}

TEST_CASE("reload keeps the old version when the rules file is missing or cannot be read") {
  SUBCASE("missing") {
    Rig rig(kRulesA);
    fs::remove(rig.file());
    const std::vector<ReloadEvent> events = rig.engine->reload();
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == ReloadEvent::Kind::kRejected);
    CHECK(events[0].error == "rules/w.lua: cannot read the file");
    CHECK(events[0].version.empty());  // no text was read
    CHECK(events[0].previous_version == sha(kRulesA));
    check_serves(rig, kRulesA, "cheap");
    CHECK(rig.status().last_error == "rules/w.lua: cannot read the file");
    REQUIRE(rig.seen.size() == 1);
    CHECK(same_event(rig.seen[0], events[0]));

    rig.edit(kRulesB);
    REQUIRE(rig.engine->reload().size() == 1);
    check_serves(rig, kRulesB, "premium");
  }
  SUBCASE("a dangling symlink") {
    Rig rig(kRulesA);
    fs::remove(rig.file());
    fs::create_symlink(rig.dir.path() / "rules/nowhere.lua", rig.file());
    const std::vector<ReloadEvent> events = rig.engine->reload();
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == ReloadEvent::Kind::kRejected);
    CHECK(events[0].error == "rules/w.lua: cannot read the file");
    check_serves(rig, kRulesA, "cheap");
  }
  SUBCASE("a directory in the file's place") {
    // Permission bits do not stop root (CI containers), a directory does.
    Rig rig(kRulesA);
    fs::remove(rig.file());
    fs::create_directory(rig.file());
    const std::vector<ReloadEvent> events = rig.engine->reload();
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == ReloadEvent::Kind::kRejected);
    CHECK(events[0].error == "rules/w.lua: cannot read the file");
    check_serves(rig, kRulesA, "cheap");
  }
}

TEST_CASE("reload keeps the old version when the new rules fail a case in <stem>.test.toml") {
  const char* const kPlanIsPremium = R"lua(-- plan is premium
function classify(step, ctx)
  if step.role == "plan" then return "premium" end
  return "cheap"
end
)lua";
  Rig rig(kPlanIsPremium);
  const std::string tests = rig.dir.write("rules/w.test.toml", R"toml(workload = "w"

[[case]]
name = "format is cheap"
step = { role = "format", input_tokens = 500 }
expect = { tier = "cheap" }

[[case]]
name = "plan is premium"
step = { role = "plan", input_tokens = 5000 }
expect = { tier = "premium", error = false }
)toml");

  // Loads fine, but answers cheap for plan: the second case (line 8) fails.
  const char* const kAllCheap = R"lua(-- everything is cheap
function classify(step, ctx)
  return "cheap"
end
)lua";
  rig.edit(kAllCheap);
  const std::vector<ReloadEvent> events = rig.engine->reload();
  REQUIRE(events.size() == 1);
  const ReloadEvent& e = events[0];
  CHECK(e.kind == ReloadEvent::Kind::kRejected);
  CHECK(e.version == sha(kAllCheap));
  CHECK(e.error == tests + ":8:1: tier: expected \"premium\", got \"cheap\" (case 'plan is premium')");
  CHECK(rig.status().last_error == e.error);
  CHECK(rig.status().rejections == 1);
  REQUIRE(rig.seen.size() == 1);
  CHECK(same_event(rig.seen[0], e));
  // Still the old version: plan is premium.
  const Decision d = rig.decide();
  CHECK(d.rules_version == sha(kPlanIsPremium));
  CHECK(d.tier == "premium");

  // Two failing cases: the first is named and the rest counted.
  const char* const kAllGold = R"lua(-- an unknown tier
function classify(step, ctx)
  return { tier = "gold" }
end
)lua";
  rig.edit(kAllGold);
  const std::vector<ReloadEvent> again = rig.engine->reload();
  REQUIRE(again.size() == 1);
  CHECK(again[0].kind == ReloadEvent::Kind::kRejected);
  CHECK(again[0].error.starts_with(tests + ":3:1: "));
  CHECK(again[0].error.find("(case 'format is cheap') and 1 more failing") != std::string::npos);
  CHECK(rig.decide().rules_version == sha(kPlanIsPremium));

  // A test file that does not parse rejects too, naming its own position.
  rig.dir.write("rules/w.test.toml", "workload = \"w\"\n[[case]\n");
  rig.edit(kRulesB);
  const std::vector<ReloadEvent> unparsable = rig.engine->reload();
  REQUIRE(unparsable.size() == 1);
  CHECK(unparsable[0].kind == ReloadEvent::Kind::kRejected);
  CHECK_MESSAGE(unparsable[0].error.starts_with(tests + ":2:"), unparsable[0].error);
  CHECK(rig.decide().rules_version == sha(kPlanIsPremium));

  // Rules that pass the cases go live.
  rig.dir.write("rules/w.test.toml", R"toml(workload = "w"

[[case]]
name = "plan is premium"
step = { role = "plan", input_tokens = 5000 }
expect = { tier = "premium", error = false }
)toml");
  const std::vector<ReloadEvent> passing = rig.engine->reload();
  REQUIRE(passing.size() == 1);
  CHECK(passing[0].kind == ReloadEvent::Kind::kActivated);
  check_serves(rig, kRulesB, "premium");
  CHECK(rig.status().rejections == 3);
  CHECK(rig.status().activations == 1);
  CHECK(rig.seen.size() == 4);
}

TEST_CASE("with two workloads a broken edit of one does not block the other's valid edit in the same reload") {
  const std::string kRulesV = R"lua(-- workload v, version A
function classify(step, ctx) return "cheap" end
)lua";
  const std::string kRulesV2 = R"lua(-- workload v, version B
function classify(step, ctx) return "premium" end
)lua";
  TempDir dir;
  dir.write("rules/w.lua", kRulesA);
  dir.write("rules/v.lua", kRulesV);
  std::vector<ReloadEvent> seen;
  EngineOptions options;
  options.on_reload = [&seen](const ReloadEvent& e) { seen.push_back(e); };
  auto opened = Engine::open_file(
      switchboard::testing::write_config(dir, switchboard::testing::small_config(
                                        "\n[workloads.v]\nrules = \"rules/v.lua\"\nfallback_tier = \"cheap\"\n")),
      std::move(options));
  REQUIRE_MESSAGE(opened.ok(), opened.status().message());
  Engine& engine = **opened;

  const std::string broken = "function classify(step, ctx)\n  return 'cheap'\n";  // no end
  dir.write("rules/w.lua", broken);
  dir.write("rules/v.lua", kRulesV2);
  const std::vector<ReloadEvent> events = engine.reload();
  REQUIRE(events.size() == 2);  // in workload name order
  CHECK(events[0].workload == "v");
  CHECK(events[0].kind == ReloadEvent::Kind::kActivated);
  CHECK(events[0].version == sha(kRulesV2));
  CHECK(events[1].workload == "w");
  CHECK(events[1].kind == ReloadEvent::Kind::kRejected);
  CHECK(events[1].error == "rules/w.lua:3: 'end' expected (to close 'function' at line 1) near <eof>");
  REQUIRE(seen.size() == 2);
  CHECK(same_event(seen[0], events[0]));
  CHECK(same_event(seen[1], events[1]));

  Step step;
  step.role = "plan";
  auto v = engine.decide("v", step);
  REQUIRE(v.ok());
  CHECK(v->rules_version == sha(kRulesV2));
  CHECK(v->tier == "premium");
  auto w = engine.decide("w", step);
  REQUIRE(w.ok());
  CHECK(w->rules_version == sha(kRulesA));
  CHECK(w->tier == "cheap");
  CHECK_FALSE(w->error.has_value());

  const std::vector<WorkloadStatus> status = engine.status();
  REQUIRE(status.size() == 2);
  CHECK(status[0].workload == "v");
  CHECK(status[0].version == sha(kRulesV2));
  CHECK(status[0].activations == 1);
  CHECK_FALSE(status[0].last_error.has_value());
  CHECK(status[1].workload == "w");
  CHECK(status[1].version == sha(kRulesA));
  CHECK(status[1].rejections == 1);
  CHECK(status[1].last_error == events[1].error);
}

TEST_CASE("old rule versions are closed after the swap: states do not pile up across 50 reloads") {
  Rig rig(kRulesA);
  rig.decide();
  const EngineMemory base = rig.engine->memory();
  REQUIRE(base.states >= 1);
  REQUIRE(base.state_bytes > 0);
  const std::int64_t heap_before = heap_in_use();

  constexpr int kReloads = 50;
  for (int i = 0; i < kReloads; ++i) {
    // A new text each time (the comment), alternating the answer.
    const std::string text = "-- edit " + std::to_string(i) + "\n" + (i % 2 == 0 ? kRulesB : kRulesA);
    rig.edit(text);
    const std::vector<ReloadEvent> events = rig.engine->reload();
    REQUIRE(events.size() == 1);
    REQUIRE_MESSAGE(events[0].kind == ReloadEvent::Kind::kActivated, events[0].error);
    const Decision d = rig.decide();  // drops this thread's hold on the version before
    REQUIRE(d.rules_version == sha(text));
    REQUIRE(d.tier == (i % 2 == 0 ? "premium" : "cheap"));
  }
  CHECK(rig.status().activations == kReloads);

  // The active version holds what the first one held.
  const EngineMemory after = rig.engine->memory();
  CHECK(after.states == base.states);

  // The retired versions' states are closed (on the reaper thread, so give it
  // a moment): had they stayed, the heap would hold 50 versions' worth more.
  if (heap_before == 0) {
    MESSAGE("malloc statistics are not available here: the heap check is skipped");
    return;
  }
  const std::int64_t per_version = base.state_bytes;
  const std::int64_t allowed = kReloads / 3 * per_version;  // a leak keeps all 50
  std::int64_t grown = heap_in_use() - heap_before;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (grown > allowed && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    grown = heap_in_use() - heap_before;
  }
  CHECK_MESSAGE(grown <= allowed, "heap grew by " << grown << " bytes over " << kReloads
                                                  << " reloads; one version's states hold " << per_version);
}
