// The rules watcher (EngineOptions::watch_rules): edits the way editors and
// Kubernetes make them go live without a call to reload(), broken edits are
// reported and do not serve, and the engine stops its watcher promptly. In the
// "concurrency" suite: the watcher reloads on its own thread.
//
// No fixed sleeps: each check polls status() or rules_version() against a
// deadline in small steps.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rules/watcher.h"
#include "util/sha256.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// Under ThreadSanitizer everything runs 5-15x slower; the deadlines stretch
// by this factor there (and only there).
#if defined(__SANITIZE_THREAD__)
constexpr int kSlowdown = 5;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
constexpr int kSlowdown = 5;
#else
constexpr int kSlowdown = 1;
#endif
#else
constexpr int kSlowdown = 1;
#endif

// A watched edit is live within a second (debounce 50 ms, poll 200 ms).
constexpr milliseconds kWithin{1000 * kSlowdown};

const char* const kRulesA = R"lua(-- version A
function classify(step, ctx)
  return "cheap"
end
)lua";

const char* const kRulesB = R"lua(-- version B
function classify(step, ctx)
  return "premium"
end
)lua";

const char* const kRulesC = R"lua(-- version C
function classify(step, ctx)
  return { tier = "premium", reasoning = "high" }
end
)lua";

std::string sha(const std::string& text) { return detail::sha256_hex(text); }

// Polls `done` every 10 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& done, milliseconds timeout = kWithin) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return done();
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

// What on_reload received. It is called on the watcher's thread after the
// swap and the status update, so a test that saw status() change still waits
// for the event.
struct EventLog {
  std::mutex mu;
  std::vector<ReloadEvent> events;

  void add(const ReloadEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
  }
  std::vector<ReloadEvent> all() {
    std::lock_guard<std::mutex> lock(mu);
    return events;
  }
  bool has(ReloadEvent::Kind kind, const std::string& version) {
    std::lock_guard<std::mutex> lock(mu);
    for (const ReloadEvent& e : events) {
      if (e.kind == kind && e.version == version) return true;
    }
    return false;
  }
};

// A watching engine on small_config() in `dir`, whose rules/w.lua the caller
// has put in place. Reload events go to the returned log.
struct Watched {
  std::shared_ptr<EventLog> log = std::make_shared<EventLog>();
  std::unique_ptr<Engine> engine;
};

Watched open_watching(const TempDir& dir, milliseconds poll_interval = milliseconds(200)) {
  Watched w;
  EngineOptions options;
  options.watch_rules = true;
  options.watch_debounce = milliseconds(50);
  options.watch_poll_interval = poll_interval;
  options.on_reload = [log = w.log](const ReloadEvent& e) { log->add(e); };
  auto opened = Engine::open_file(switchboard::testing::write_config(dir, switchboard::testing::small_config()),
                                  std::move(options));
  REQUIRE_MESSAGE(opened.ok(), opened.status().message());
  w.engine = std::move(opened).value();
  return w;
}

std::string serving(const Engine& engine) { return engine.rules_version("w"); }

std::string status_version(const Engine& engine) {
  const std::vector<WorkloadStatus> s = engine.status();
  return s.empty() ? "" : s.front().version;
}

Decision decide(const Engine& engine) {
  Step step;
  step.role = "plan";
  step.input_tokens = 1000;
  auto d = engine.decide("w", step);
  REQUIRE_MESSAGE(d.ok(), d.status().message());
  return *d;
}

// Saves the way editors do: a temporary file beside the target, renamed over it.
void save_by_rename(const TempDir& dir, const std::string& name, const std::string& text) {
  const std::string tmp = dir.write(name + ".tmp~", text);
  fs::rename(tmp, dir.path() / name);
}

// Publishes `text` as w.lua the way the kubelet updates a config map volume:
//   rules/w.lua -> ..data/w.lua, rules/..data -> <version_dir>
// A new version directory, a new symlink, then rename() of the symlink over
// ..data (one atomic step), then the old version directory goes away.
void k8s_publish(const fs::path& rules_dir, const std::string& version_dir, const std::string& text,
                 const std::string& old_version_dir = "") {
  fs::create_directories(rules_dir / version_dir);
  std::ofstream(rules_dir / version_dir / "w.lua", std::ios::binary) << text;
  fs::create_directory_symlink(version_dir, rules_dir / "..data_tmp");
  fs::rename(rules_dir / "..data_tmp", rules_dir / "..data");
  if (!old_version_dir.empty()) fs::remove_all(rules_dir / old_version_dir);
}

}  // namespace

TEST_SUITE("concurrency") {

TEST_CASE("the watcher activates a rules file renamed over the old one within a second") {
  TempDir dir;
  dir.write("rules/w.lua", kRulesA);
  Watched w = open_watching(dir);
  CHECK(serving(*w.engine) == sha(kRulesA));

  save_by_rename(dir, "rules/w.lua", kRulesB);
  CHECK(wait_until([&] { return status_version(*w.engine) == sha(kRulesB); }));
  CHECK(serving(*w.engine) == sha(kRulesB));
  const Decision d = decide(*w.engine);
  CHECK(d.rules_version == sha(kRulesB));
  CHECK(d.tier == "premium");
  CHECK(w.engine->status().front().activations == 1);
  CHECK(wait_until([&] { return w.log->has(ReloadEvent::Kind::kActivated, sha(kRulesB)); }));

  // And a second save: the watch survived the first rename.
  save_by_rename(dir, "rules/w.lua", kRulesC);
  CHECK(wait_until([&] { return status_version(*w.engine) == sha(kRulesC); }));
  CHECK(decide(*w.engine).reasoning == Reasoning::kHigh);
}

TEST_CASE("the watcher activates a rules file written in place") {
  TempDir dir;
  dir.write("rules/w.lua", kRulesA);
  Watched w = open_watching(dir);

  dir.write("rules/w.lua", kRulesB);  // truncate and write the same inode
  CHECK(wait_until([&] { return status_version(*w.engine) == sha(kRulesB); }));
  CHECK(decide(*w.engine).tier == "premium");
  CHECK(wait_until([&] { return w.log->has(ReloadEvent::Kind::kActivated, sha(kRulesB)); }));
}

TEST_CASE("the watcher follows a Kubernetes-style ..data symlink swap") {
  TempDir dir;
  const fs::path rules_dir = dir.path() / "rules";
  k8s_publish(rules_dir, "..2024_01_01_v1", kRulesA);
  fs::create_symlink("..data/w.lua", rules_dir / "w.lua");
  Watched w = open_watching(dir);
  CHECK(serving(*w.engine) == sha(kRulesA));

  k8s_publish(rules_dir, "..2024_01_01_v2", kRulesB, "..2024_01_01_v1");
  CHECK(wait_until([&] { return status_version(*w.engine) == sha(kRulesB); }));
  CHECK(decide(*w.engine).tier == "premium");

  // Again: the watcher must now follow the new version directory.
  k8s_publish(rules_dir, "..2024_01_01_v3", kRulesC, "..2024_01_01_v2");
  CHECK(wait_until([&] { return status_version(*w.engine) == sha(kRulesC); }));
  const Decision d = decide(*w.engine);
  CHECK(d.rules_version == sha(kRulesC));
  CHECK(d.reasoning == Reasoning::kHigh);
  CHECK(wait_until([&] { return w.log->has(ReloadEvent::Kind::kActivated, sha(kRulesB)); }));
  CHECK(wait_until([&] { return w.log->has(ReloadEvent::Kind::kActivated, sha(kRulesC)); }));
}

TEST_CASE("a broken edit seen by the watcher is reported and the old version keeps serving") {
  TempDir dir;
  dir.write("rules/w.lua", kRulesA);
  Watched w = open_watching(dir);

  const std::string broken = "-- broken\nfunction classify(step, ctx)\n  return = \"cheap\"\nend\n";
  save_by_rename(dir, "rules/w.lua", broken);
  CHECK(wait_until([&] { return w.log->has(ReloadEvent::Kind::kRejected, sha(broken)); }));
  // Reported once, however many file events the save made.
  const std::vector<ReloadEvent> events = w.log->all();
  REQUIRE(events.size() == 1);
  const ReloadEvent& e = events[0];
  CHECK(e.kind == ReloadEvent::Kind::kRejected);
  CHECK(e.workload == "w");
  CHECK(e.previous_version == sha(kRulesA));
  CHECK(e.error == "rules/w.lua:3: unexpected symbol near '='");
  const WorkloadStatus s = w.engine->status().front();
  CHECK(s.version == sha(kRulesA));
  CHECK(s.rejections == 1);
  CHECK(s.last_error == "rules/w.lua:3: unexpected symbol near '='");
  const Decision d = decide(*w.engine);
  CHECK(d.rules_version == sha(kRulesA));
  CHECK(d.tier == "cheap");
  CHECK_FALSE(d.error.has_value());

  // The fix goes live; the broken text was never reported again meanwhile.
  save_by_rename(dir, "rules/w.lua", kRulesB);
  CHECK(wait_until([&] { return status_version(*w.engine) == sha(kRulesB); }));
  CHECK(decide(*w.engine).tier == "premium");
  CHECK(wait_until([&] { return w.log->has(ReloadEvent::Kind::kActivated, sha(kRulesB)); }));
  const std::vector<ReloadEvent> all = w.log->all();
  REQUIRE(all.size() == 2);
  CHECK(all[1].kind == ReloadEvent::Kind::kActivated);
  CHECK(all[1].version == sha(kRulesB));
  CHECK(all[1].previous_version == sha(kRulesA));
  CHECK(w.engine->status().front().rejections == 1);
}

TEST_CASE("the watcher activates a rules file deleted and then created again") {
  TempDir dir;
  dir.write("rules/w.lua", kRulesA);
  Watched w = open_watching(dir);

  fs::remove(dir.path() / "rules/w.lua");
  dir.write("rules/w.lua", kRulesB);  // a new inode, written after its creation
  CHECK(wait_until([&] { return status_version(*w.engine) == sha(kRulesB); }));
  CHECK(decide(*w.engine).tier == "premium");

  // The new file is watched: an edit in place goes live too.
  dir.write("rules/w.lua", kRulesC);
  CHECK(wait_until([&] { return status_version(*w.engine) == sha(kRulesC); }));
}

TEST_CASE("writes to another file in the rules directory do not wake the watcher") {
  // A SQLite ledger beside the rules: its -wal file exists before the watch
  // and is written at every commit.
  TempDir dir;
  const std::string rules = dir.write("rules/w.lua", kRulesA);
  const std::string wal = dir.write("rules/ledger.db-wal", "");
  std::atomic<int> changes{0};
  detail::RulesWatcher::Options options;
  options.files = {rules};
  options.debounce = milliseconds(20);
  options.poll_interval = milliseconds(60'000);  // only inotify can report anything
  auto watcher = detail::RulesWatcher::start(std::move(options), [&] { ++changes; });
  REQUIRE_MESSAGE(watcher.ok(), watcher.status().message());

  {
    std::ofstream out(wal, std::ios::binary | std::ios::app);
    for (int i = 0; i < 200; ++i) {
      out << "page " << i << '\n';
      out.flush();  // one write(2) each
    }
  }
  // Then one event the watcher must see (the rules file touched: one
  // IN_ATTRIB); inotify delivers in order, so once it is seen every earlier
  // event was read too.
  fs::last_write_time(rules, fs::last_write_time(rules) + std::chrono::seconds(1));
  REQUIRE(wait_until([&] { return changes.load() == 1; }));
  CHECK((*watcher)->events() == 1);
}

TEST_CASE("destroying an engine whose watcher is running returns promptly") {
  // A long poll interval: only the wake-up on destruction can end the wait.
  const milliseconds kPrompt{500 * kSlowdown};
  SUBCASE("idle") {
    TempDir dir;
    dir.write("rules/w.lua", kRulesA);
    Watched w = open_watching(dir, milliseconds(10'000));
    decide(*w.engine);
    const auto t0 = Clock::now();
    w.engine.reset();
    CHECK(Clock::now() - t0 < kPrompt);
  }
  SUBCASE("with an edit waiting out its debounce") {
    TempDir dir;
    dir.write("rules/w.lua", kRulesA);
    Watched w = open_watching(dir, milliseconds(10'000));
    save_by_rename(dir, "rules/w.lua", kRulesB);
    const auto t0 = Clock::now();
    w.engine.reset();
    CHECK(Clock::now() - t0 < kPrompt);
  }
}

}  // TEST_SUITE("concurrency")
