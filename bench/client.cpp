// bench_client: the cost of one model call through a native adapter.
//  Baseline: a bare libcurl POST of the same JSON body on one reused easy
//  handle to the fake provider (tests/fakes/fake_provider.h), body kept as bytes.
//  Subject: ModelClient::invoke of an "openai" model at the same server
//  (request JSON built, response parsed, usage normalised), and the whole
//  Dispatcher::run (rules, admission, call, ledger record) on top.
// Prints µs per call and the ratios to the baseline.
// Usage: bench_client [--json] [--calls N]
#include <curl/curl.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "bench_util.h"
#include "fake_provider.h"

using namespace switchboard;
using namespace switchboard::bench;

namespace {

size_t keep(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

const char* kBody =
    R"({"model":"gpt-5-mini","messages":[{"role":"user","content":"Format as JSON: Ada, 1815"}],"max_completion_tokens":16})";

double bare_curl(const std::string& url, int calls) {
  CURL* h = curl_easy_init();
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Authorization: Bearer sk-bench");
  std::string out;
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, kBody);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  const auto t0 = Clock::now();
  for (int i = 0; i < calls; ++i) {
    out.clear();
    if (curl_easy_perform(h) != CURLE_OK) std::exit(1);
  }
  const double s = seconds_since(t0);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return s / calls * 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  int calls = 5000;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--calls") calls = std::atoi(argv[i + 1]);
  }
  auto fake = switchboard::testing::FakeProvider::start();
  const std::string dir = (std::filesystem::temp_directory_path() / "switchboard-bench-client").string();
  std::filesystem::create_directories(dir + "/rules");
  std::ofstream(dir + "/prices.toml") << "version = \"bench\"\n[models.gpt-5-mini]\ninput = 0.25\noutput = 2.0\n";
  std::ofstream(dir + "/rules/w.lua") << "function classify(step, ctx) return \"cheap\" end\n";
  std::ofstream(dir + "/switchboard.toml")
      << "[routing]\nprice_catalog = \"prices.toml\"\npremium_tier = \"cheap\"\n[calls]\nmax_attempts = 1\n"
      << "[models.gpt-5-mini]\nprovider = \"openai\"\nendpoint = \"" << fake->base_url()
      << "/v1\"\napi_key_env = \"SWITCHBOARD_BENCH_KEY\"\ncontext_window = 400000\ndefault_output_tokens = 16\n"
      << "[tiers.cheap]\nmodels = [\"gpt-5-mini\"]\n[workloads.w]\nrules = \"rules/w.lua\"\nfallback_tier = \"cheap\"\n";
  setenv("SWITCHBOARD_BENCH_KEY", "sk-bench", 1);
  auto engine = Engine::open_file(dir + "/switchboard.toml");
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    return 1;
  }
  auto clients = ModelClients::from_config((*engine)->config());
  if (!clients.ok()) return 1;
  ModelClient* client = clients->find("gpt-5-mini");
  ModelRequest request;
  request.messages = {Message::of_text("user", "Format as JSON: Ada, 1815")};
  request.max_output_tokens = 16;

  auto sqlite = open_sqlite_ledger(SqliteLedgerOptions{dir + "/ledger.db"});
  if (!sqlite.ok()) return 1;
  DispatcherOptions options;
  options.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{*sqlite});
  Dispatcher dispatcher(**engine, std::move(*clients), options);
  client = dispatcher.clients().find("gpt-5-mini");
  StepCall call;
  call.step.role = "format";
  call.step.input_tokens = 12;
  call.request.messages = request.messages;

  const std::string url = fake->base_url() + "/v1/chat/completions";
  bare_curl(url, calls / 10);  // warm-up
  const double bare = best_of(3, [&] { return bare_curl(url, calls); });
  const double invoke = best_of(3, [&] {
    const auto t0 = Clock::now();
    for (int i = 0; i < calls; ++i) {
      if (!client->invoke(request).ok()) std::exit(1);
    }
    return seconds_since(t0) / calls * 1e6;
  });
  const double run = best_of(3, [&] {
    const auto t0 = Clock::now();
    for (int i = 0; i < calls; ++i) {
      if (!dispatcher.run("w", call).status.ok()) std::exit(1);
    }
    return seconds_since(t0) / calls * 1e6;
  });
  std::filesystem::remove_all(dir);
  if (has_flag(argc, argv, "--json")) {
    std::printf("{\"bench\":\"client\",\"calls\":%d,\"bare_curl_us\":%.1f,\"invoke_us\":%.1f,\"dispatch_us\":%.1f,"
                "\"invoke_ratio\":%.2f,\"dispatch_ratio\":%.2f}\n",
                calls, bare, invoke, run, invoke / bare, run / bare);
  } else {
    std::printf("one model call to the fake provider on loopback (%d calls, best of 3)\n", calls);
    std::printf("  bare libcurl POST             %8.1f us\n", bare);
    std::printf("  ModelClient::invoke (openai)  %8.1f us   ratio %.2f\n", invoke, invoke / bare);
    std::printf("  Dispatcher::run (+ rules, budget, ledger) %8.1f us   ratio %.2f\n", run, run / bare);
  }
}
