// Acknowledged means recorded: switchboard-gateway is SIGKILLed while four
// clients keep it busy, and every answer a client fully received before the
// kill (a 200 with its whole body, or a stream up to its final event) has its
// ledger record in the SQLite file afterwards; and the same with the ledger
// in PostgreSQL (a server the test starts), also while that server is down
// (the records are in the gateway's spool, replayed once it is back). The
// upstream is the fake_provider program, a child process like the gateway.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gateway_rig.h"
#include "support/postgres_server.h"
#include "switchboard/ledger.h"
#include "test_util.h"

#ifdef SWITCHBOARD_GATEWAY

namespace switchboard::testing {
namespace {

using namespace std::chrono_literals;

// The fake_provider program on 127.0.0.1 (a free port), killed when this goes away.
class FakeProviderProcess {
 public:
  FakeProviderProcess() {
    int out[2];
    REQUIRE(pipe(out) == 0);
    std::string program = SWITCHBOARD_FAKE_PROVIDER;
    std::vector<std::string> args = {program, "--port", "0", "--threads", "2"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execv(program.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    out_fd_ = out[0];
    std::string line;
    char ch = 0;
    pollfd p{out_fd_, POLLIN, 0};
    while (poll(&p, 1, 10'000) > 0 && read(out_fd_, &ch, 1) == 1 && ch != '\n') line += ch;
    const std::string prefix = "listening on 127.0.0.1:";
    REQUIRE_MESSAGE(line.rfind(prefix, 0) == 0, "fake_provider printed: ", line);
    url_ = "http://127.0.0.1:" + line.substr(prefix.size());
  }
  ~FakeProviderProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_fd_);
  }
  FakeProviderProcess(const FakeProviderProcess&) = delete;
  FakeProviderProcess& operator=(const FakeProviderProcess&) = delete;

  const std::string& url() const { return url_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string url_;
};

// One OpenAI-shaped model on the fake provider, the SQLite ledger beside the
// config, or the PostgreSQL ledger at `pg_url` when set (its spool beside the config).
std::string durability_config(const std::string& fake_url, const std::string& durability,
                              const std::string& pg_url = "") {
  return R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "cheap"

[calls]
max_attempts = 1

[models.m-fake]
provider = "openai"
endpoint = ")toml" + fake_url + R"toml(/v1"
api_key_env = "SWITCHBOARD_TEST_UPSTREAM_KEY"
context_window = 100000
default_output_tokens = 16

[tiers.cheap]
models = ["m-fake"]

[workloads.w]
rules = "rules/w.lua"
fallback_tier = "cheap"

[ledger]
durability = ")toml" + durability + R"toml("
)toml" + (pg_url.empty() ? "" : "url = \"" + pg_url + "\"\nspool = \"spool.jsonl\"\n") + R"toml(

[gateway]
default_workload = "w"
ledger = "ledger.db"
max_upstream_calls = 64
)toml";
}

const std::string kFakePrices = R"toml(
[models.m-fake]
input = 1.0
output = 2.0
)toml";

struct TrialResult {
  size_t acknowledged = 0;  // answers fully received before the kill
  size_t missing = 0;       // of those, without a cost record in the ledger
  size_t records = 0;       // cost records in the ledger after the kill
};

// Four clients send requests (every other one streamed when `streams`) for
// at most `run_for` and `kMaxPerClient` requests each; the gateway is
// SIGKILLed while they run; then every acknowledged trace id is looked up in
// the ledger the killed gateway left.
// With `pg`, the ledger is in PostgreSQL; with `pg_down` too, the server is
// stopped before the load (the gateway spools) and started after the kill,
// and the spool the gateway left is replayed before the ledger is read.
TrialResult sigkill_trial(const std::string& fake_url, const std::string& durability, bool streams,
                          std::mt19937& rng, PostgresServer* pg = nullptr, bool pg_down = false) {
  constexpr int kClients = 4;
  constexpr int kMaxPerClient = 5000;
  const auto run_for = 1500ms;

  TempDir dir;
  dir.write("rules/w.lua", "function classify(step, ctx) return 'cheap' end\n");
  dir.write("prices.toml", small_prices(kFakePrices));
  const std::string config =
      dir.write("switchboard.toml", durability_config(fake_url, durability, pg != nullptr ? pg->url() : ""));
  GatewayProcess gateway(config, {{"SWITCHBOARD_TEST_UPSTREAM_KEY", "upstream-key"}});
  if (pg_down) pg->stop();
  const std::string url = gateway.url() + "/v1/chat/completions";

  std::atomic<bool> killed{false};
  std::vector<std::vector<std::string>> acked(kClients);
  std::vector<std::thread> clients;
  const auto deadline = std::chrono::steady_clock::now() + run_for;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kMaxPerClient && !killed.load() && std::chrono::steady_clock::now() < deadline; ++i) {
        const bool stream = streams && i % 2 == 1;
        const std::string body = std::string(R"({"model":"auto","stream":)") + (stream ? "true" : "false") +
                                 R"(,"messages":[{"role":"user","content":"hello"}]})";
        const Reply r = post(url, body);
        // Fully received: curl saw the whole response (its length, or the
        // chunked stream's end), and a stream got its final event.
        if (r.code != CURLE_OK || r.status != 200) continue;
        if (stream && !contains(r.body, "data: [DONE]")) continue;
        const std::string trace = r.header("x-switchboard-trace-id");
        if (!trace.empty()) acked[static_cast<size_t>(c)].push_back(trace);
      }
    });
  }
  // Kill somewhere in the middle of the load.
  std::this_thread::sleep_for(std::chrono::milliseconds(300 + rng() % 900));
  gateway.signal(SIGKILL);
  killed.store(true);
  for (auto& t : clients) t.join();
  CHECK(gateway.wait_exit(10s) == -1);  // killed, not exited

  std::string ledger = (dir.path() / "ledger.db").string();
  if (pg != nullptr) {
    ledger = pg->url();
    const std::string spool = (dir.path() / "spool.jsonl").string();
    if (pg_down) {
      CHECK(std::filesystem::file_size(spool) > 0);
      pg->start();
      PostgresLedgerOptions replay;
      replay.url = ledger;
      replay.spool_path = spool;
      auto sink = open_postgres_ledger(replay);
      REQUIRE_MESSAGE(sink.ok(), sink.status().message());
      const auto until = std::chrono::steady_clock::now() + 20s;
      while (std::filesystem::file_size(spool) > 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(20ms);
      }
    }
    CHECK(std::filesystem::file_size(spool) == 0);  // everything is in PostgreSQL
  }
  TrialResult result;
  auto records = read_ledger(ledger);
  REQUIRE_MESSAGE(records.ok(), records.status().to_string());
  std::set<std::string> recorded;
  for (const CostRecord& r : *records) {
    if (r.status == CallStatus::kOk) recorded.insert(r.trace_id);
  }
  result.records = records->size();
  for (const auto& traces : acked) {
    for (const std::string& trace : traces) {
      ++result.acknowledged;
      if (recorded.count(trace) == 0) ++result.missing;
    }
  }
  return result;
}

}  // namespace

TEST_SUITE("gateway") {

TEST_CASE("every answer acknowledged before a SIGKILL under load has its ledger record") {
  FakeProviderProcess fake;
  std::mt19937 rng(std::random_device{}());
  struct Variant {
    const char* name;
    const char* durability;
    bool streams;
  };
  // Three trials of plain answers, then a streamed one and a "power" one.
  const Variant variants[] = {
      {"plain", "process", false}, {"plain", "process", false}, {"plain", "process", false},
      {"half streamed", "process", true}, {"plain, durability power", "power", false},
  };
  for (const Variant& v : variants) {
    INFO(std::string(v.name));
    const TrialResult r = sigkill_trial(fake.url(), v.durability, v.streams, rng);
    MESSAGE("SIGKILL trial (" << std::string(v.name) << "): " << r.acknowledged << " answers acknowledged, " << r.missing
                              << " without a ledger record; " << r.records << " records in the ledger");
    CHECK(r.acknowledged > 0);
    CHECK(r.missing == 0);
  }
}

TEST_CASE("every answer acknowledged before a SIGKILL under load is in the PostgreSQL ledger spooled or not") {
  FakeProviderProcess fake;
  PostgresServer pg;
  std::mt19937 rng(std::random_device{}());
  struct Variant {
    const char* name;
    bool streams;
    bool pg_down;
  };
  const Variant variants[] = {
      {"plain", false, false}, {"half streamed", true, false}, {"PostgreSQL down: spooled", false, true}};
  size_t before = 0;
  for (const Variant& v : variants) {
    INFO(std::string(v.name));
    const TrialResult r = sigkill_trial(fake.url(), "process", v.streams, rng, &pg, v.pg_down);
    MESSAGE("SIGKILL trial, PostgreSQL ledger (" << std::string(v.name) << "): " << r.acknowledged
                                                 << " answers acknowledged, " << r.missing
                                                 << " without a ledger record; " << r.records - before
                                                 << " records in the ledger");
    CHECK(r.acknowledged > 0);
    CHECK(r.missing == 0);
    before = r.records;
  }
}

TEST_CASE("three gateways sharing one PostgreSQL ledger behind a round-robin client record every answer once") {
  FakeProviderProcess fake;
  PostgresServer pg;
  constexpr int kReplicas = 3, kClients = 6, kPerClient = 60;
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<GatewayProcess>> gateways;
  for (int g = 0; g < kReplicas; ++g) {
    dirs.push_back(std::make_unique<TempDir>());
    const TempDir& dir = *dirs.back();
    dir.write("rules/w.lua", "function classify(step, ctx) return 'cheap' end\n");
    dir.write("prices.toml", small_prices(kFakePrices));
    const std::string config = dir.write("switchboard.toml", durability_config(fake.url(), "process", pg.url()));
    gateways.push_back(std::make_unique<GatewayProcess>(
        config, std::vector<std::pair<std::string, std::string>>{{"SWITCHBOARD_TEST_UPSTREAM_KEY", "upstream-key"}}));
  }
  std::vector<std::vector<std::string>> acked(kClients);
  std::vector<std::thread> clients;
  std::atomic<int> next{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; i < kPerClient; ++i) {
        const int g = next.fetch_add(1) % kReplicas;  // round robin over the replicas
        const Reply r = post(gateways[static_cast<size_t>(g)]->url() + "/v1/chat/completions",
                             R"({"model":"auto","messages":[{"role":"user","content":"hello"}]})");
        if (r.code == CURLE_OK && r.status == 200) acked[static_cast<size_t>(c)].push_back(r.header("x-switchboard-trace-id"));
      }
    });
  }
  for (auto& t : clients) t.join();
  // Read while they still run: an acknowledged answer is committed already.
  auto records = read_ledger(pg.url());
  REQUIRE_MESSAGE(records.ok(), records.status().message());
  std::map<std::string, int> per_trace;
  for (const CostRecord& r : *records) per_trace[r.trace_id]++;
  size_t answered = 0;
  for (const auto& traces : acked) {
    for (const std::string& trace : traces) {
      ++answered;
      CHECK(per_trace[trace] == 1);
    }
  }
  CHECK(answered == static_cast<size_t>(kClients * kPerClient));
  CHECK(records->size() == answered);
  for (auto& g : gateways) {
    g->signal(SIGTERM);
    CHECK(g->wait_exit(30s) == 0);
  }
}

}  // TEST_SUITE("gateway")

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_GATEWAY
