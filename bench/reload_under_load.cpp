// bench_reload: reload under load. Two threads decide continuously (at least
// 1,000,000 decisions) while the rules file is rewritten 100 times through
// the directory watcher: two valid versions alternating and, every tenth
// time, a broken one. Reports failed decisions (goal 0), decisions served by
// the broken version (must be 0), decisions per version, and the worst
// decision latency around a swap against the worst away from swaps.
// Usage: bench_reload [--json] [--decisions N] [--rewrites N]
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "bench_util.h"

using namespace switchboard;
using namespace switchboard::bench;
namespace fs = std::filesystem;

namespace {

constexpr auto kSwapWindow = std::chrono::milliseconds(10);  // "around a swap": within 10 ms after it
constexpr std::int64_t kSlowNs = 20'000;                      // decisions slower than this are kept

struct SlowDecision {
  Clock::time_point at;
  std::int64_t ns;
};

struct DeciderResult {
  std::uint64_t decisions = 0;
  std::uint64_t failed = 0;
  std::map<std::string, std::uint64_t> per_version;
  std::vector<SlowDecision> slow;
  std::int64_t worst_ns = 0;
};

void write_atomically(const fs::path& file, const std::string& text) {
  const fs::path tmp = file.parent_path() / ("." + file.filename().string() + ".tmp");
  std::ofstream(tmp, std::ios::binary) << text;
  fs::rename(tmp, file);  // as editors save
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = has_flag(argc, argv, "--json");
  std::uint64_t min_decisions = 1'000'000;
  int rewrites = 100;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--decisions") min_decisions = std::strtoull(argv[i + 1], nullptr, 10);
    if (std::string(argv[i]) == "--rewrites") rewrites = std::atoi(argv[i + 1]);
  }
  const std::string src = SWITCHBOARD_SOURCE_DIR;

  // A private copy of the config and the default rules (no test file: the
  // gate is compile-only here, so both versions are valid by construction).
  const fs::path dir = fs::temp_directory_path() / ("switchboard-bench-reload-" + std::to_string(getpid()));
  fs::create_directories(dir / "rules");
  const std::string version_a = read_text(src + "/rules/default.lua");
  const std::string version_b = version_a + "\n-- version B: same rules, another text\n";
  const std::string broken = "function classify(step, ctx)\n  return {\nend\n";
  write_atomically(dir / "rules/default.lua", version_a);
  {
    std::string config = read_text(src + "/switchboard.toml");
    std::ofstream(dir / "switchboard.toml", std::ios::binary) << config;
    fs::copy_file(src + "/prices.toml", dir / "prices.toml");  // [routing] price_catalog
    for (const char* w : {"code_fix", "contract_review", "web_research"}) {
      fs::copy_file(src + "/rules/" + w + ".lua", dir / "rules" / (std::string(w) + ".lua"));
    }
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<ReloadEvent> events;
  std::vector<Clock::time_point> swaps;
  EngineOptions options;
  options.watch_rules = true;
  options.watch_debounce = std::chrono::milliseconds(5);
  options.watch_poll_interval = std::chrono::milliseconds(500);
  options.on_reload = [&](const ReloadEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    if (e.kind == ReloadEvent::Kind::kActivated) swaps.push_back(Clock::now());
    cv.notify_all();
  };
  auto engine = Engine::open_file((dir / "switchboard.toml").string(), std::move(options));
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().message().c_str());
    return 1;
  }
  std::vector<Step> steps = demo_steps(src);
  std::atomic<bool> writer_done{false};
  std::atomic<std::uint64_t> total{0};
  std::vector<DeciderResult> results(2);
  std::vector<std::thread> deciders;
  const auto start = Clock::now();
  for (int t = 0; t < 2; ++t) {
    deciders.emplace_back([&, t] {
      DeciderResult& r = results[static_cast<size_t>(t)];
      size_t i = static_cast<size_t>(t) * 131;
      while (!writer_done.load(std::memory_order_relaxed) || total.load(std::memory_order_relaxed) < min_decisions) {
        const auto t0 = Clock::now();
        auto d = (*engine)->decide("default", steps[i++ % steps.size()]);
        const auto t1 = Clock::now();
        const std::int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
        r.decisions++;
        if (!d.ok() || d->error) {
          r.failed++;
        } else {
          r.per_version[d->rules_version]++;
        }
        r.worst_ns = std::max(r.worst_ns, ns);
        if (ns > kSlowNs) r.slow.push_back({t0, ns});
        if ((r.decisions & 1023) == 0) total.fetch_add(1024, std::memory_order_relaxed);
      }
    });
  }

  // The writer: 100 rewrites, each waited for (its activation or rejection).
  std::string active = version_a;
  int activations = 0, rejections = 0, timeouts = 0;
  for (int n = 1; n <= rewrites; ++n) {
    const std::string& text = (n % 10 == 0) ? broken : ((n % 2 == 1) ? version_b : version_a);
    size_t seen;
    {
      std::lock_guard<std::mutex> lock(mu);
      seen = events.size();
    }
    write_atomically(dir / "rules/default.lua", text);
    if (text == active) continue;  // the same text as what serves: nothing to wait for
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return events.size() > seen; })) {
      ++timeouts;
      continue;
    }
    if (events.back().kind == ReloadEvent::Kind::kActivated) {
      ++activations;
      active = text;
    } else {
      ++rejections;
    }
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let decisions run on the new version
  }
  writer_done.store(true);
  for (auto& th : deciders) th.join();
  const double seconds = seconds_since(start);

  DeciderResult all;
  for (const DeciderResult& r : results) {
    all.decisions += r.decisions;
    all.failed += r.failed;
    for (const auto& [v, c] : r.per_version) all.per_version[v] += c;
    all.slow.insert(all.slow.end(), r.slow.begin(), r.slow.end());
    all.worst_ns = std::max(all.worst_ns, r.worst_ns);
  }
  std::int64_t worst_near_swap = 0, worst_away = 0;
  for (const SlowDecision& s : all.slow) {
    bool near = false;
    for (const auto& w : swaps) near = near || (s.at + std::chrono::nanoseconds(s.ns) >= w && s.at <= w + kSwapWindow);
    (near ? worst_near_swap : worst_away) = std::max(near ? worst_near_swap : worst_away, s.ns);
  }
  std::uint64_t served_by_broken = 0;  // any version that is neither A's nor B's text
  std::map<std::string, std::uint64_t> named;
  {
    // A version is the sha256 of the text: check_rules_file gives it for A and B.
    const fs::path a = dir / "a.lua", b = dir / "b.lua";
    std::ofstream(a, std::ios::binary) << version_a;
    std::ofstream(b, std::ios::binary) << version_b;
    const std::string va = *check_rules_file(a.string()), vb = *check_rules_file(b.string());
    for (const auto& [v, c] : all.per_version) {
      if (v == va) named["A"] += c;
      else if (v == vb) named["B"] += c;
      else served_by_broken += c;
    }
  }
  fs::remove_all(dir);
  engine->reset();

  if (json) {
    std::printf("{\"decisions\":%llu,\"failed_decisions\":%llu,\"served_by_broken_version\":%llu,"
                "\"decisions_version_a\":%llu,\"decisions_version_b\":%llu,\"rewrites\":%d,"
                "\"activations\":%d,\"rejections\":%d,\"timeouts\":%d,\"seconds\":%.2f,"
                "\"worst_latency_near_swap_us\":%.1f,\"worst_latency_away_from_swap_us\":%.1f}\n",
                static_cast<unsigned long long>(all.decisions), static_cast<unsigned long long>(all.failed),
                static_cast<unsigned long long>(served_by_broken), static_cast<unsigned long long>(named["A"]),
                static_cast<unsigned long long>(named["B"]), rewrites, activations, rejections, timeouts, seconds,
                worst_near_swap / 1e3, worst_away / 1e3);
  } else {
    std::printf("reload under load: 2 deciding threads, %d rewrites through the watcher\n", rewrites);
    std::printf("  %-40s %12llu in %.2f s\n", "decisions", static_cast<unsigned long long>(all.decisions), seconds);
    std::printf("  %-40s %12llu   (goal 0)\n", "failed decisions", static_cast<unsigned long long>(all.failed));
    std::printf("  %-40s %12llu   (must be 0)\n", "served by the broken version",
                static_cast<unsigned long long>(served_by_broken));
    std::printf("  %-40s %12llu\n", "decisions on version A", static_cast<unsigned long long>(named["A"]));
    std::printf("  %-40s %12llu\n", "decisions on version B", static_cast<unsigned long long>(named["B"]));
    std::printf("  %-40s %5d activated, %d rejected, %d not seen\n", "reloads", activations, rejections, timeouts);
    std::printf("  %-40s %12.1f us\n", "worst decision within 10 ms of a swap", worst_near_swap / 1e3);
    std::printf("  %-40s %12.1f us\n", "worst decision away from swaps", worst_away / 1e3);
  }
  return (all.failed == 0 && served_by_broken == 0) ? 0 : 1;
}
