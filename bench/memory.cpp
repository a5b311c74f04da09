// bench_memory: what the Lua states cost. Opens the engine on 3 workloads,
// decides on 2 threads across all of them (so each thread leases its own
// state per workload), and reports resident bytes per leased state and for
// the whole engine, next to the bytes the Lua allocator itself accounts for.
// Usage: bench_memory [--json]
#include <atomic>
#include <thread>
#include <unistd.h>

#include "bench_util.h"

using namespace switchboard;
using namespace switchboard::bench;

namespace {

// Resident set size of this process, from /proc/self/statm.
std::int64_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  std::int64_t pages_total = 0, pages_resident = 0;
  in >> pages_total >> pages_resident;
  return pages_resident * sysconf(_SC_PAGESIZE);
}

}  // namespace

int main(int argc, char** argv) {
  const bool json = has_flag(argc, argv, "--json");
  const std::string src = SWITCHBOARD_SOURCE_DIR;
  auto config = load_config(src + "/switchboard.toml");
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return 1;
  }
  const std::vector<std::string> workloads = {"default", "code_fix", "contract_review"};
  for (auto it = config->workloads.begin(); it != config->workloads.end();) {
    it = std::find(workloads.begin(), workloads.end(), it->first) == workloads.end() ? config->workloads.erase(it) : std::next(it);
  }
  std::vector<Step> steps = demo_steps(src);

  const std::int64_t rss_before = rss_bytes();
  auto engine = Engine::open(std::move(config).value());
  if (!engine.ok()) {
    std::fprintf(stderr, "%s\n", engine.status().message().c_str());
    return 1;
  }
  const std::int64_t rss_open = rss_bytes();
  const EngineMemory at_open = (*engine)->memory();

  std::atomic<int> ready{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int round = 0; round < 2000; ++round) {
        for (const std::string& w : workloads) (*engine)->decide(w, steps[static_cast<size_t>(round) % steps.size()]);
      }
      ready++;
      while (!done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
  }
  while (ready.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const std::int64_t rss_loaded = rss_bytes();
  const EngineMemory loaded = (*engine)->memory();
  done.store(true);
  for (auto& th : threads) th.join();

  const auto leased = static_cast<std::int64_t>(loaded.states - at_open.states);
  const std::int64_t per_state_rss = leased > 0 ? (rss_loaded - rss_open) / leased : 0;
  const std::int64_t per_state_lua = loaded.states > 0 ? loaded.state_bytes / static_cast<std::int64_t>(loaded.states) : 0;
  if (json) {
    std::printf("{\"workloads\":3,\"threads\":2,\"states\":%zu,\"states_at_open\":%zu,"
                "\"rss_engine_bytes\":%lld,\"rss_per_leased_state_bytes\":%lld,"
                "\"lua_bytes_all_states\":%lld,\"lua_bytes_per_state\":%lld,\"rss_open_bytes\":%lld}\n",
                loaded.states, at_open.states, static_cast<long long>(rss_loaded - rss_before),
                static_cast<long long>(per_state_rss), static_cast<long long>(loaded.state_bytes),
                static_cast<long long>(per_state_lua), static_cast<long long>(rss_open - rss_before));
  } else {
    std::printf("memory: 3 workloads (default, code_fix, contract_review), 2 deciding threads\n");
    std::printf("  %-44s %10zu (%zu at open)\n", "Lua states", loaded.states, at_open.states);
    std::printf("  %-44s %10.1f KiB\n", "resident, whole engine after open", (rss_open - rss_before) / 1024.0);
    std::printf("  %-44s %10.1f KiB\n", "resident, whole engine with 2 threads", (rss_loaded - rss_before) / 1024.0);
    std::printf("  %-44s %10.1f KiB\n", "resident per state leased by a thread", per_state_rss / 1024.0);
    std::printf("  %-44s %10.1f KiB\n", "Lua allocator bytes per state", per_state_lua / 1024.0);
  }
  return 0;
}
