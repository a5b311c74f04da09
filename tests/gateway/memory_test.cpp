// The gateway's memory budget ([gateway] max_request_memory and
// max_inflight_bytes), against switchboard-gateway as a child process: 32
// concurrent 3 MB requests stay under the budget plus the process's
// baseline; beyond max_inflight_bytes a request gets 503 with Retry-After,
// beyond max_request_memory 413, each in its API's shape.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fake_provider.h"
#include "gateway_rig.h"
#include "test_util.h"

#ifdef SWITCHBOARD_GATEWAY

namespace switchboard::testing {
namespace {

using namespace std::chrono_literals;

const char* kRules = R"lua(
function classify(step, ctx) return "cheap" end
)lua";

// Sim models, plus "slow" (the fake provider) when `fake_url` is given.
std::string memory_config(const std::string& fake_url, const std::string& gateway_extra) {
  std::string c = R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "premium"
default_fallback_tier = "cheap"

[calls]
max_attempts = 1

[models.m-cheap]
provider = "sim"
context_window = 10000000
default_output_tokens = 200

[models.m-premium]
provider = "sim"
context_window = 10000000
default_output_tokens = 200

[tiers.cheap]
models = ["m-cheap"]

[tiers.premium]
models = ["m-premium"]
)toml";
  if (!fake_url.empty()) {
    c += R"toml(
[models.m-slow]
provider = "openai"
endpoint = ")toml" + fake_url + R"toml(/v1"
api_key_env = "SWITCHBOARD_TEST_UPSTREAM_KEY"
context_window = 10000000

[tiers.slow]
models = ["m-slow"]
)toml";
  }
  return c + R"toml(
[workloads.w]
rules = "rules/w.lua"
fallback_tier = "cheap"

[gateway]
default_workload = "w"
ledger = "ledger.db"
)toml" + gateway_extra;
}

struct MemoryRig {
  explicit MemoryRig(const std::string& gateway_extra = "", const std::string& fake_url = "") {
    dir.write("rules/w.lua", kRules);
    dir.write("prices.toml", small_prices("\n[models.m-slow]\ninput = 1.0\noutput = 1.0\n"));
    const std::string config = dir.write("switchboard.toml", memory_config(fake_url, gateway_extra));
    gateway = std::make_unique<GatewayProcess>(
        config, std::vector<std::pair<std::string, std::string>>{{"SWITCHBOARD_TEST_UPSTREAM_KEY", "upstream-key"}});
  }
  std::string url(const std::string& path) const { return gateway->url() + path; }

  TempDir dir;
  std::unique_ptr<GatewayProcess> gateway;
};

// A body of about `bytes` made of many small messages: the costliest shape
// per byte (every message is a JSON tree node and a translated struct).
std::string many_messages(const std::string& model, std::size_t bytes) {
  std::string body = R"({"model":")" + model + R"(","messages":[)";
  while (body.size() < bytes) body += R"({"role":"user","content":"hello there"},)";
  return body + R"({"role":"user","content":"the end"}]})";
}

// A body of about `bytes` in one message.
std::string one_long_message(const std::string& model, std::size_t bytes) {
  return R"({"model":")" + model + R"(","messages":[{"role":"user","content":")" + std::string(bytes, 'x') +
         R"("}]})";
}

}  // namespace

TEST_SUITE("gateway memory") {

TEST_CASE("32 concurrent 3 MB requests stay under max_inflight_bytes plus the baseline and the rest get 503") {
  MemoryRig rig;  // the default limits: max_request_memory 128 MiB, max_inflight_bytes 512 MiB
  constexpr std::int64_t kInflight = std::int64_t{512} << 20;
  REQUIRE(post(rig.url("/v1/chat/completions"), many_messages("auto", 1000)).status == 200);
  const std::int64_t baseline = peak_rss_bytes(rig.gateway->pid());
  REQUIRE(baseline > 0);

  const std::string body = many_messages("auto", 3'000'000);
  std::vector<Reply> replies(32);
  std::vector<std::thread> clients;
  // A minute each: the admitted ones parse 3 MB on a shared machine.
  for (Reply& r : replies) clients.emplace_back([&] { r = post(rig.url("/v1/chat/completions"), body, {}, 60'000); });
  for (std::thread& t : clients) t.join();

  int ok = 0;
  int refused = 0;
  for (const Reply& r : replies) {
    CAPTURE(r.body.substr(0, 300));
    CAPTURE(std::string(curl_easy_strerror(r.code)));
    CHECK((r.status == 200 || r.status == 503));
    if (r.status == 200) ++ok;
    if (r.status == 503) {
      ++refused;
      CHECK(r.header("retry-after") == "1");
      CHECK(contains(r.body, "max_inflight_bytes"));
      CHECK(contains(r.body, R"("type":"server_error")"));
    }
  }
  const std::int64_t peak = peak_rss_bytes(rig.gateway->pid());
  MESSAGE("32 x 3 MB: ", ok, " answered, ", refused, " refused (503); peak RSS ", peak >> 20, " MiB, baseline ",
          baseline >> 20, " MiB");
  CHECK(ok >= 1);
  CHECK(peak < baseline + kInflight);
  CHECK(post(rig.url("/v1/chat/completions"), many_messages("auto", 1000)).status == 200);
  CHECK(rig.gateway->alive());
}

TEST_CASE("a request beyond max_inflight_bytes gets 503 with Retry-After and one beyond max_request_memory 413") {
  FakeProviderOptions slow;
  slow.latency = 1500ms;
  const auto fake = FakeProvider::start(slow);
  // 3 MB of text is estimated at about 18 MB: one fits, two do not.
  MemoryRig rig("max_request_memory = 20_971_520\nmax_inflight_bytes = 31_457_280\n", fake->base_url());
  const std::string body = one_long_message("slow", 3'000'000);

  Reply first;
  std::thread holder([&] { first = post(rig.url("/v1/chat/completions"), body); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fake->request_count() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  REQUIRE(fake->request_count() == 1);  // the first holds its reservation until answered

  const Reply second = post(rig.url("/v1/chat/completions"), body);
  CHECK(second.status == 503);
  CHECK(second.header("retry-after") == "1");
  CHECK(contains(second.body, R"({"error":{)"));
  CHECK(contains(second.body, "max_inflight_bytes"));
  const Reply anthropic = post(rig.url("/v1/messages"),
                               R"({"model":"slow","max_tokens":10,"messages":[{"role":"user","content":")" +
                                   std::string(3'000'000, 'y') + R"("}]})");
  CHECK(anthropic.status == 503);
  CHECK(contains(anthropic.body, R"("type":"overloaded_error")"));
  holder.join();
  CHECK_MESSAGE(first.status == 200, first.body.substr(0, 300));

  // Alone, a request is admitted again; one bigger than max_request_memory never is.
  CHECK(post(rig.url("/v1/chat/completions"), one_long_message("auto", 3'000'000)).status == 200);
  const Reply big = post(rig.url("/v1/chat/completions"), one_long_message("auto", 3'900'000));
  CHECK(big.status == 413);
  CHECK(contains(big.body, "max_request_memory"));
  CHECK(contains(big.body, R"("type":"invalid_request_error")"));
  CHECK(rig.gateway->alive());
}

}  // TEST_SUITE

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_GATEWAY
