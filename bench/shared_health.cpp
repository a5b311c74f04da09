// bench_shared_health: what sharing model health through Redis ([state]
// backend = "redis") costs a call's hot path: HealthBook::admit + record_*
// on an engine whose book an exchange thread shares every 200 ms, against an
// engine whose book shares nothing, in the same run.
//
// One operation is what the dispatcher does per model call: admit, then
// record_success (with a latency) or, one call in 16, record_failure (never
// enough in a row to open the breaker: 15 successes follow). Four models in
// turn. The loops take turns, best of 7 runs of --ops operations each; then
// both books on 2 threads. Prints ns per operation and the ratio shared / local.
//
// Start a Redis first (nothing is persisted; the keys use their own prefix):
//   redis-server --port 6390 --save '' --appendonly no &
//   bench_shared_health --redis-url redis://127.0.0.1:6390 [--ops N]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "bench_util.h"
#include "switchboard/engine.h"
#include "switchboard/health.h"

namespace {

using switchboard::bench::Clock;
using namespace switchboard;
namespace fs = std::filesystem;

const char* kModels[] = {"m-a", "m-b", "m-c", "m-d"};

// A config with four sim models; `state` is appended ([state] or nothing).
std::string write_config(const fs::path& dir, const std::string& state) {
  fs::create_directories(dir / "rules");
  std::ofstream(dir / "rules" / "w.lua") << "function classify(step, ctx) return \"t\" end\n";
  std::ofstream prices(dir / "prices.toml");
  prices << "version = \"bench\"\n";
  std::ofstream config(dir / "switchboard.toml");
  config << "[routing]\nprice_catalog = \"prices.toml\"\npremium_tier = \"t\"\n";
  for (const char* m : kModels) {
    prices << "[models." << m << "]\ninput = 1.0\noutput = 5.0\n";
    config << "[models." << m << "]\nprovider = \"sim\"\ncontext_window = 100000\n";
  }
  config << "[tiers.t]\nmodels = [\"m-a\", \"m-b\", \"m-c\", \"m-d\"]\n"
         << "[workloads.w]\nrules = \"rules/w.lua\"\nfallback_tier = \"t\"\n"
         << state;
  return (dir / "switchboard.toml").string();
}

// Seconds for `ops` operations on `book` from one thread; counts refusals in `refused`.
double run(HealthBook& book, int ops, int& refused) {
  const auto t0 = Clock::now();
  for (int i = 0; i < ops; ++i) {
    const char* model = kModels[i % 4];
    if (!book.admit(model)) {
      ++refused;
      continue;
    }
    if (i % 64 == 63) {
      book.record_failure(model);  // the 16th call of this model: one failure, then successes again
    } else {
      book.record_success(model, std::chrono::milliseconds(100 + i % 50), {});
    }
  }
  return switchboard::bench::seconds_since(t0);
}

// Operations per second with `threads` threads, each running `ops`.
double throughput(HealthBook& book, int ops, int threads, int& refused) {
  std::vector<std::thread> pool;
  std::vector<int> refusals(static_cast<std::size_t>(threads), 0);
  const auto t0 = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] { run(book, ops, refusals[static_cast<std::size_t>(t)]); });
  }
  for (std::thread& t : pool) t.join();
  for (int r : refusals) refused += r;
  return static_cast<double>(ops) * threads / switchboard::bench::seconds_since(t0);
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  int ops = 1'000'000;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--redis-url" && i + 1 < argc) {
      url = argv[++i];
    } else if (a == "--ops" && i + 1 < argc) {
      ops = std::max(1000, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: bench_shared_health --redis-url redis://HOST:PORT [--ops N]\n");
      return 2;
    }
  }
  if (url.empty()) {
    std::fprintf(stderr, "bench_shared_health: --redis-url is required (start a redis-server first)\n");
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() / ("bench_shared_health." + std::to_string(::getpid()));
  auto local = Engine::open_file(write_config(dir / "local", ""));
  auto shared = Engine::open_file(write_config(
      dir / "shared", "[state]\nbackend = \"redis\"\nredis_url = \"" + url + "\"\nkey_prefix = \"bench-health:\"\n"));
  if (!local.ok() || !shared.ok()) {
    std::fprintf(stderr, "bench_shared_health: %s\n",
                 (!local.ok() ? local.status() : shared.status()).to_string().c_str());
    fs::remove_all(dir);
    return 1;
  }
  HealthBook& a = (*local)->health();
  HealthBook& b = (*shared)->health();
  // Until the shared book has exchanged once (it must be sharing, not degraded).
  for (int i = 0; i < 100 && b.sharing().exchanges == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (b.sharing().exchanges == 0) {
    std::fprintf(stderr, "bench_shared_health: no exchange with %s succeeded\n", url.c_str());
    fs::remove_all(dir);
    return 1;
  }
  int refused = 0;
  double best_local = 1e300;
  double best_shared = 1e300;
  for (int r = 0; r < 7; ++r) {  // taking turns, so both see the same machine
    best_local = std::min(best_local, run(a, ops, refused));
    best_shared = std::min(best_shared, run(b, ops, refused));
  }
  const double ns_local = best_local * 1e9 / ops;
  const double ns_shared = best_shared * 1e9 / ops;
  const double tp_local = throughput(a, ops, 2, refused);
  const double tp_shared = throughput(b, ops, 2, refused);
  const HealthSharing s = b.sharing();
  std::printf("HealthBook admit + record, 4 models, %d ops, best of 7 (one thread); then 2 threads\n", ops);
  std::printf("  %-28s %8s %14s\n", "book", "ns/op", "ops/s (2 thr)");
  std::printf("  %-28s %8.1f %14.0f\n", "local ([state] memory)", ns_local, tp_local);
  std::printf("  %-28s %8.1f %14.0f\n", "shared (Redis, 200 ms)", ns_shared, tp_shared);
  std::printf("  ratio shared/local: %.2fx per op, throughput %.2fx; %llu exchanges, %llu failed; %d refused\n",
              ns_shared / ns_local, tp_shared / tp_local, static_cast<unsigned long long>(s.exchanges),
              static_cast<unsigned long long>(s.unavailable), refused);
  shared->reset();
  local->reset();
  fs::remove_all(dir);
  return 0;
}
