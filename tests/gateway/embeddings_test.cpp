// POST /v1/embeddings through the gateway as a child process: the offline
// sim's vectors when no key is set, OpenAI's and Gemini's embeddings APIs at
// the fake provider, fallbacks, budgets and the ledger; and the config and
// rules that keep embedding models apart from chat.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "fake_provider.h"
#include "gateway_rig.h"
#include "test_util.h"
#include "util/sha256.h"

namespace switchboard::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// The sim's vector for `text` (sim_client.cpp): SHA-256 blocks of the text,
// eight 32-bit words each, w / 2^31 - 1, scaled to length 1.
std::vector<float> sim_vector(const std::string& text, std::size_t dims) {
  std::vector<double> raw;
  for (int block = 0; raw.size() < dims; ++block) {
    const std::string hex = detail::sha256_hex(text + '\x1f' + std::to_string(block));
    for (std::size_t w = 0; w + 8 <= hex.size() && raw.size() < dims; w += 8) {
      raw.push_back(static_cast<double>(std::stoul(hex.substr(w, 8), nullptr, 16)) / 2147483648.0 - 1.0);
    }
  }
  double norm = 0;
  for (const double x : raw) norm += x * x;
  norm = std::sqrt(norm);
  std::vector<float> out;
  for (const double x : raw) out.push_back(static_cast<float>(static_cast<double>(static_cast<float>(x)) / norm));
  return out;
}

std::vector<float> floats(const json& values) {
  std::vector<float> out;
  for (const json& v : values) out.push_back(v.get<float>());
  return out;
}

std::vector<float> floats_from_base64(const std::string& text) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    if (c == '=') break;
    buffer = (buffer << 6) | static_cast<unsigned>(kAlphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

}  // namespace

#ifdef SWITCHBOARD_GATEWAY

namespace {

const char* kEmbedRules = R"lua(
function classify(step, ctx) return "cheap" end
)lua";

// Chat: m-cheap (sim). Embeddings: e-small (OpenAI) and e-gem (Gemini), at
// the fake provider when its URL is given (with a key), else keyless (sim).
// `embedding_lines` join both embedding models' tables.
std::string embed_config(const std::string& fake_url, const std::string& embed_tier, const std::string& extra,
                         const std::string& embedding_lines = "") {
  const std::string openai = fake_url.empty() ? "http://127.0.0.1:1/v1" : fake_url + "/v1";
  const std::string gemini = fake_url.empty() ? "http://127.0.0.1:1/v1beta" : fake_url + "/v1beta";
  const std::string key = fake_url.empty() ? "SWITCHBOARD_TEST_UNSET_KEY" : "SWITCHBOARD_TEST_UPSTREAM_KEY";
  return R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "cheap"

[calls]
max_attempts = 1

[models.m-cheap]
provider = "sim"
context_window = 100000

[models.e-small]
provider = "openai"
kind = "embedding"
dimensions = 16
endpoint = ")toml" + openai + R"toml("
api_key_env = ")toml" + key + R"toml("
context_window = 8191
)toml" + embedding_lines + R"toml(

[models.e-gem]
provider = "gemini"
kind = "embedding"
dimensions = 8
endpoint = ")toml" + gemini + R"toml("
api_key_env = ")toml" + key + R"toml("
context_window = 2048
)toml" + embedding_lines + R"toml(

[tiers.cheap]
models = ["m-cheap"]

[tiers.embed]
models = )toml" + embed_tier + R"toml(

[embeddings]
tier = "embed"

[workloads.w]
rules = "rules/w.lua"
fallback_tier = "cheap"

[workloads.broke]
rules = "rules/w.lua"
fallback_tier = "cheap"
budget_usd = 0.0

[gateway]
default_workload = "w"
ledger = "ledger.db"
)toml" + extra;
}

// $1000 per million input tokens: a token is a thousand micro-dollars, so small calls cost something.
const std::string kEmbedPrices = R"toml(
[models.e-small]
input = 1000.0
output = 0.0

[models.e-gem]
input = 500.0
output = 0.0
)toml";

struct EmbedRig {
  explicit EmbedRig(const std::string& fake_url = "", const std::string& embed_tier = R"(["e-small", "e-gem"])",
                    const std::string& extra = "", const std::string& embedding_lines = "") {
    dir.write("rules/w.lua", kEmbedRules);
    dir.write("prices.toml", small_prices(kEmbedPrices));
    config = dir.write("switchboard.toml", embed_config(fake_url, embed_tier, extra, embedding_lines));
    gateway = std::make_unique<GatewayProcess>(
        config, std::vector<std::pair<std::string, std::string>>{{"SWITCHBOARD_TEST_UPSTREAM_KEY", "upstream-key"}});
  }
  std::string url(const std::string& path) const { return gateway->url() + path; }
  // Every ledger record, after a clean stop.
  std::vector<CostRecord> records() {
    gateway->signal(SIGTERM);
    REQUIRE(gateway->wait_exit(10s) == 0);
    auto r = read_sqlite_ledger((dir.path() / "ledger.db").string());
    REQUIRE_MESSAGE(r.ok(), r.status().to_string());
    return *r;
  }

  TempDir dir;
  std::string config;
  std::unique_ptr<GatewayProcess> gateway;
};

}  // namespace

TEST_SUITE("gateway embeddings") {

TEST_CASE("with no key the sim embeds: deterministic unit vectors of the asked dimensions, billed and recorded") {
  EmbedRig rig;
  const Reply r = post(rig.url("/v1/embeddings"), R"({"model":"auto","input":["hello","world"]})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("x-switchboard-model") == "e-small");
  CHECK(r.header("x-switchboard-tier") == "embed");
  const std::string trace = r.header("x-switchboard-trace-id");
  REQUIRE(trace.size() == 32);
  const json body = json::parse(r.body);
  CHECK(body["object"] == "list");
  CHECK(body["model"] == "e-small");
  REQUIRE(body["data"].size() == 2);
  CHECK(body["data"][1]["index"] == 1);
  CHECK(body["data"][0]["object"] == "embedding");
  CHECK(floats(body["data"][0]["embedding"]) == sim_vector("hello", 16));
  CHECK(floats(body["data"][1]["embedding"]) == sim_vector("world", 16));
  double norm = 0;
  for (const float x : floats(body["data"][0]["embedding"])) norm += static_cast<double>(x) * x;
  CHECK(std::abs(norm - 1.0) < 1e-5);
  // "hello" and "world": 2 tokens each at one per three bytes; $1000/M: $0.004.
  CHECK(body["usage"] == json{{"prompt_tokens", 4}, {"total_tokens", 4}});
  CHECK(r.header("x-switchboard-cost-usd") == "0.004000");
  CHECK(overhead_ms(r.header("x-switchboard-overhead-ms")) >= 0);

  // Fewer dimensions: the normalised prefix; base64: the same floats, little-endian.
  const Reply small = post(rig.url("/v1/embeddings"),
                           R"({"model":"e-small","input":"hello","dimensions":4,"encoding_format":"base64"})");
  REQUIRE_MESSAGE(small.status == 200, small.body);
  const json small_body = json::parse(small.body);
  CHECK(floats_from_base64(small_body["data"][0]["embedding"]) == sim_vector("hello", 4));
  // More than the model makes: refused by it, and by the tier's other (8 dimensions) too.
  const Reply big = post(rig.url("/v1/embeddings"), R"({"model":"auto","input":"hello","dimensions":64})");
  CHECK(big.status == 502);
  CHECK(contains(big.body, "cannot take dimensions 64"));

  const std::vector<CostRecord> records = rig.records();
  const auto row = std::find_if(records.begin(), records.end(), [&](const CostRecord& c) { return c.trace_id == trace; });
  REQUIRE(row != records.end());
  CHECK(row->workload == "w");
  CHECK(row->role == "embedding");
  CHECK(row->tier == "embed");
  CHECK(row->model == "e-small");
  CHECK(row->provider == "sim");
  CHECK(row->status == CallStatus::kOk);
  CHECK(row->usage.input_tokens == 4);
  CHECK(row->usage.output_tokens == 0);
  CHECK(row->cost == 4000);
  CHECK(row->catalog_version == "test-1");
  CHECK_FALSE(row->usage_estimated);
}

TEST_CASE("embeddings a rate limit refuses answer 429 and count in switchboard_rate_limited_total by scope") {
  // The key admits three requests a minute; each embedding model one.
  EmbedRig rig("", R"(["e-small", "e-gem"])", R"toml(
[gateway.keys.team]
key_env = "SWITCHBOARD_TEST_UPSTREAM_KEY"
workload = "w"
requests_per_minute = 3
)toml",
               "requests_per_minute = 1\n");
  const std::vector<std::string> auth = {"Authorization: Bearer upstream-key"};
  const std::string body = R"({"model":"auto","input":"hello"})";
  const Reply first = post(rig.url("/v1/embeddings"), body, auth);
  REQUIRE_MESSAGE(first.status == 200, first.body);
  CHECK(first.header("x-switchboard-model") == "e-small");
  // e-small has no room: passed by, as an unhealthy model is.
  const Reply second = post(rig.url("/v1/embeddings"), body, auth);
  REQUIRE_MESSAGE(second.status == 200, second.body);
  CHECK(second.header("x-switchboard-model") == "e-gem");
  // Neither has room: refused, naming the last one passed by.
  const Reply models_full = post(rig.url("/v1/embeddings"), body, auth);
  CHECK(models_full.status == 429);
  CHECK(contains(models_full.body, "model:e-gem"));
  // The key's three requests are used: refused before any model.
  const Reply key_full = post(rig.url("/v1/embeddings"), body, auth);
  CHECK(key_full.status == 429);
  CHECK(contains(key_full.body, "key:team"));
  const std::string metrics = http("GET", rig.url("/metrics"), "", auth).body;
  CHECK(metric_value(metrics, R"(switchboard_rate_limited_total{scope="model:e-gem"})") == 1);
  CHECK(metric_value(metrics, R"(switchboard_rate_limited_total{scope="key:team"})") == 1);
}

TEST_CASE("an OpenAI embedding model with its key calls the upstream's /v1/embeddings") {
  const auto fake = FakeProvider::start();
  EmbedRig rig(fake->base_url());
  const Reply r = post(rig.url("/v1/embeddings"),
                       R"({"model":"e-small","input":"hello there","dimensions":4,"user":"u-1"})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  const std::vector<ReceivedRequest> sent = fake->received();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target == "/v1/embeddings");
  CHECK(sent[0].header("authorization") == "Bearer upstream-key");
  CHECK(json::parse(sent[0].body) == json{{"model", "e-small"},
                                          {"input", {"hello there"}},
                                          {"encoding_format", "float"},
                                          {"dimensions", 4},
                                          {"user", "u-1"}});
  const json body = json::parse(r.body);
  CHECK(floats(body["data"][0]["embedding"]) == fake_embedding("hello there", 4));
  CHECK(body["usage"]["prompt_tokens"] == 2);  // the provider's count: 11 bytes / 4

  // Token ids go as they are; base64 is the gateway's own encoding of the floats.
  const Reply tokens = post(rig.url("/v1/embeddings"),
                            R"({"model":"e-small","input":[[1,2,3],[4]],"encoding_format":"base64"})");
  REQUIRE_MESSAGE(tokens.status == 200, tokens.body);
  CHECK(json::parse(fake->received().back().body)["input"] == json::array({{1, 2, 3}, {4}}));
  const json tokens_body = json::parse(tokens.body);
  CHECK(floats_from_base64(tokens_body["data"][0]["embedding"]) ==
        fake_embedding("[1,2,3]", kFakeEmbeddingDimensions));
  CHECK(floats_from_base64(tokens_body["data"][1]["embedding"]) == fake_embedding("[4]", kFakeEmbeddingDimensions));
  CHECK(tokens_body["usage"]["prompt_tokens"] == 4);

  const std::vector<CostRecord> records = rig.records();
  REQUIRE(records.size() == 2);
  CHECK(records[0].provider == "openai");
  CHECK(records[0].usage.input_tokens == 2);
  CHECK(records[0].cost == 2000);
  CHECK_FALSE(records[0].usage_estimated);
}

TEST_CASE("Gemini embeds through batchEmbedContents with an estimated count and token ids fall back past it") {
  const auto fake = FakeProvider::start();
  EmbedRig rig(fake->base_url(), R"(["e-gem", "e-small"])");
  const Reply r = post(rig.url("/v1/embeddings"), R"({"model":"auto","input":["abc","defgh"]})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("x-switchboard-model") == "e-gem");
  std::vector<ReceivedRequest> sent = fake->received();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target == "/v1beta/models/e-gem:batchEmbedContents");
  CHECK(sent[0].header("x-goog-api-key") == "upstream-key");
  const json upstream = json::parse(sent[0].body);
  REQUIRE(upstream["requests"].size() == 2);
  CHECK(upstream["requests"][1] == json{{"model", "models/e-gem"}, {"content", {{"parts", {{{"text", "defgh"}}}}}}});
  const json body = json::parse(r.body);
  CHECK(floats(body["data"][0]["embedding"]) == fake_embedding("abc", kFakeEmbeddingDimensions));
  CHECK(floats(body["data"][1]["embedding"]) == fake_embedding("defgh", kFakeEmbeddingDimensions));
  CHECK(body["usage"]["prompt_tokens"] == 3);  // Gemini counts nothing: the engine's estimate, 1 + 2

  // Gemini embeds text only: token ids go to the tier's next model.
  const Reply tokens = post(rig.url("/v1/embeddings"), R"({"model":"auto","input":[5,6]})");
  REQUIRE_MESSAGE(tokens.status == 200, tokens.body);
  CHECK(tokens.header("x-switchboard-model") == "e-small");
  CHECK(fake->received().back().target == "/v1/embeddings");

  const std::vector<CostRecord> records = rig.records();
  REQUIRE(records.size() == 3);
  CHECK(records[0].model == "e-gem");
  CHECK(records[0].usage_estimated);
  CHECK(records[0].cost == 1500);  // 3 tokens at $500/M
  CHECK(records[1].model == "e-gem");
  CHECK(records[1].status == CallStatus::kFallback);
  CHECK(contains(records[1].error, "cannot take token-id inputs"));
  CHECK(records[1].cost == 0);
  CHECK(records[2].model == "e-small");
  CHECK(records[2].status == CallStatus::kOk);
  CHECK(records[2].trace_id == records[1].trace_id);
}

TEST_CASE("a failing embedding model falls back to the next and a budget refuses with a record") {
  const auto fake = FakeProvider::start();
  EmbedRig rig(fake->base_url(), R"(["e-gem", "e-small"])");
  fake->inject(Fault::kServerError, 1, "e-gem");
  const Reply r = post(rig.url("/v1/embeddings"), R"({"model":"auto","input":"hello"})");
  REQUIRE_MESSAGE(r.status == 200, r.body);
  CHECK(r.header("x-switchboard-model") == "e-small");
  const Reply metrics = http("GET", rig.url("/metrics"));
  CHECK(contains(metrics.body, "switchboard_fallbacks_total 1"));
  CHECK(contains(metrics.body, R"(switchboard_requests_total{endpoint="/v1/embeddings",status="200"} 1)"));

  fake->inject(Fault::kServerError, 2);
  const Reply failed = post(rig.url("/v1/embeddings"), R"({"model":"auto","input":"hello"})");
  CHECK(failed.status == 502);
  CHECK(contains(failed.body, "every model failed"));

  const Reply broke = post(rig.url("/v1/embeddings"), R"({"model":"auto","input":"hello"})",
                           {"x-switchboard-workload: broke"});
  CHECK(broke.status == 429);
  CHECK(contains(broke.body, "budget_exceeded"));
  CHECK(fake->request_count() == 4);  // the refused call reached no model

  const std::vector<CostRecord> records = rig.records();
  REQUIRE(records.size() == 5);
  CHECK(records[0].status == CallStatus::kFallback);
  CHECK(contains(records[0].error, "HTTP 500"));
  CHECK(records[1].status == CallStatus::kOk);
  CHECK(records[2].status == CallStatus::kFallback);
  CHECK(records[3].status == CallStatus::kError);
  CHECK(records[4].status == CallStatus::kRefusedByBudget);
  CHECK(records[4].workload == "broke");
  CHECK(records[4].role == "embedding");
  CHECK(records[4].model == "e-gem");
}

TEST_CASE("embeddings and chat stay apart and malformed embeddings requests are 400s naming the field") {
  EmbedRig rig;
  const std::string url = rig.url("/v1/embeddings");
  const struct {
    const char* body;
    long status;
    const char* says;
  } cases[] = {
      {R"({"model":"m-cheap","input":"x"})", 400, "'m-cheap' is a chat model"},
      {R"({"model":"cheap","input":"x"})", 400, "'cheap' is a chat tier"},
      {R"({"model":"nope","input":"x"})", 404, "'nope' does not exist here"},
      {R"({"model":"auto"})", 400, "input is required"},
      {R"({"model":"auto","input":[]})", 400, "not empty"},
      {R"({"model":"auto","input":["a",""]})", 400, "input[1] must not be empty"},
      {R"({"model":"auto","input":["a",1]})", 400, "input[1] must be a string"},
      {R"({"model":"auto","input":[[1],[-2]]})", 400, "input[1][0] must be a token id"},
      {R"({"model":"auto","input":"x","encoding_format":"hex"})", 400, "encoding_format must be"},
      {R"({"model":"auto","input":"x","dimensions":0})", 400, "dimensions must be an integer"},
      {R"({"model":"auto","input":"x","extra":true})", 400, "extra is not supported"},
  };
  for (const auto& c : cases) {
    INFO(c.body);
    const Reply r = post(url, c.body);
    CHECK(r.status == c.status);
    CHECK(contains(r.body, c.says));
    CHECK(contains(r.body, R"("error":{)"));
  }
  CHECK(http("GET", url).status == 405);
  // A chat request never reaches an embedding model.
  const Reply chat = post(rig.url("/v1/chat/completions"),
                          R"({"model":"e-small","messages":[{"role":"user","content":"hi"}]})");
  CHECK(chat.status == 400);
  CHECK(contains(chat.body, "'e-small' is an embedding model"));
  CHECK(contains(http("GET", rig.url("/v1/models")).body, R"("id":"e-small")"));
}

}  // TEST_SUITE

#endif  // SWITCHBOARD_GATEWAY

TEST_SUITE("dispatch") {

TEST_CASE("Dispatcher::embed past its deadline ends at once and records the attempt cancelled with its input") {
  const auto fake = FakeProvider::start();
  REQUIRE(setenv("SWITCHBOARD_EMBED_TEST_KEY", "k", 1) == 0);
  TempDir dir;
  dir.write("rules/w.lua", "function classify() return 'cheap' end");
  dir.write("prices.toml", small_prices("[models.e]\ninput = 1000.0\noutput = 0\n"));
  const std::string config = dir.write(
      "switchboard.toml",
      small_config("[models.e]\nprovider = \"openai\"\nkind = \"embedding\"\ndimensions = 8\n"
                   "endpoint = \"" + fake->base_url() + "/v1\"\napi_key_env = \"SWITCHBOARD_EMBED_TEST_KEY\"\n"
                   "context_window = 8191\n[tiers.embed]\nmodels = [\"e\"]\n"));
  auto engine = Engine::open_file(config);
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  auto clients = ModelClients::from_config((*engine)->config());
  REQUIRE(clients.ok());
  std::vector<CostRecord> recorded;
  DispatcherOptions options;
  options.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{
      callback_ledger([&](const CostRecord& r) { recorded.push_back(r); })});
  const Dispatcher dispatcher(**engine, std::move(clients).value(), options);

  fake->inject(Fault::kHang, 1);
  EmbeddingCall call;
  call.request.texts = {"hello"};
  call.request.bounds.deadline = std::chrono::steady_clock::now() + 200ms;
  call.trace_id = "feedfacefeedface";
  const auto start = std::chrono::steady_clock::now();
  const EmbeddingResult result = dispatcher.embed("w", call);
  CHECK(std::chrono::steady_clock::now() - start < 2s);
  CHECK(result.status.code() == Status::Code::kDeadlineExceeded);
  CHECK(result.model == "e");
  CHECK(result.tier == "embed");
  REQUIRE(result.records.size() == 1);
  const CostRecord& r = result.records[0];
  CHECK(r.status == CallStatus::kCancelled);
  CHECK(r.trace_id == "feedfacefeedface");
  CHECK(r.usage_estimated);
  CHECK(r.usage.input_tokens == 2);
  CHECK(r.cost == 2000);
  CHECK(result.cost == 2000);
  REQUIRE(recorded.size() == 1);  // the callback sink writes on the calling thread
  CHECK(recorded[0].call_id == r.call_id);

  // The same call in time: the provider's vectors, one record.
  EmbeddingCall again;
  again.model = "e";
  again.request.texts = {"hello"};
  again.request.dimensions = 4;
  const EmbeddingResult answered = dispatcher.embed("w", again);
  REQUIRE_MESSAGE(answered.status.ok(), answered.status.to_string());
  CHECK(answered.response.vectors == std::vector<std::vector<float>>{fake_embedding("hello", 4)});
  CHECK(answered.attempts == 1);
  CHECK(recorded.size() == 2);
}

}  // TEST_SUITE

TEST_SUITE("config") {

TEST_CASE("embedding models need their dimensions a provider with embeddings and tiers of their own") {
  TempDir dir;
  dir.write("rules/w.lua", "function classify() return 'cheap' end");
  dir.write("prices.toml", small_prices("[models.e]\ninput = 0.02\noutput = 0\n"));
  // Line numbers: small_config() ends on its own line count; the embedding model starts after it.
  const std::string base = small_config();
  const int line = static_cast<int>(std::count(base.begin(), base.end(), '\n')) + 1;
  const auto parse = [&](const std::string& extra) {
    return parse_config(base + extra, "bad.toml", dir.path().string());
  };
  const std::string model = "[models.e]\nprovider = \"sim\"\nkind = \"embedding\"\ndimensions = 8\ncontext_window = 8191\n";
  const auto ok = parse(model + "[tiers.embed]\nmodels = [\"e\"]\n");
  REQUIRE_MESSAGE(ok.ok(), ok.status().message());
  CHECK(ok->models.at("e").kind == ModelKind::kEmbedding);
  CHECK(ok->models.at("e").dimensions == 8);
  CHECK(ok->models.at("m-cheap").kind == ModelKind::kChat);
  CHECK(ok->embeddings.tier == "embed");  // the one tier of embedding models
  CHECK(ok->default_fallback_tier == "cheap");
  CHECK(parse_config(base, "ok.toml", dir.path().string())->embeddings.tier.empty());

  const auto at = [&](int offset, int column) {
    return "bad.toml:" + std::to_string(line + offset) + ":" + std::to_string(column) + ": ";
  };
  const struct {
    std::string extra;
    std::string error;
  } cases[] = {
      {"[models.e]\nprovider = \"sim\"\nkind = \"vector\"\ncontext_window = 8191\n[tiers.embed]\nmodels = [\"e\"]\n",
       at(2, 8) + "model 'e': kind must be \"chat\" or \"embedding\", not \"vector\""},
      {"[models.e]\nprovider = \"sim\"\nkind = \"embedding\"\ncontext_window = 8191\n[tiers.embed]\nmodels = [\"e\"]\n",
       at(0, 1) + "model 'e': an embedding model needs 'dimensions' (the length of its vectors, e.g. 1536)"},
      {"[models.e]\nprovider = \"anthropic\"\nendpoint = \"https://x\"\nkind = \"embedding\"\ndimensions = 8\n"
       "context_window = 8191\n[tiers.embed]\nmodels = [\"e\"]\n",
       at(3, 8) + "model 'e': provider 'anthropic' has no embeddings API"},
      {"[models.e]\nprovider = \"sim\"\ndimensions = 8\ncontext_window = 8191\n[tiers.embed]\nmodels = [\"e\"]\n",
       at(2, 14) + "model 'e': 'dimensions' is for embedding models (kind = \"embedding\")"},
      {model + "[tiers.embed]\nmodels = [\"e\", \"m-cheap\"]\n",
       at(5, 1) + "tier 'embed' mixes embedding and chat models ('e' embeds, 'm-cheap' chats)"},
      {model + "[tiers.embed]\nmodels = [\"e\"]\n[embeddings]\ntier = \"cheap\"\n",
       at(8, 8) + "[embeddings] tier: tier 'cheap' holds chat models"},
      {model + "[tiers.embed]\nmodels = [\"e\"]\n[embeddings]\ntier = \"nope\"\n",
       at(8, 8) + "[embeddings] tier: unknown tier 'nope'"},
  };
  for (const auto& c : cases) {
    INFO(c.extra);
    const auto bad = parse(c.extra);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message().rfind(c.error, 0) == 0);
  }
  // A workload's tier serves chat.
  const std::string fallback = small_config() + model + "[tiers.embed]\nmodels = [\"e\"]\n";
  std::string text = fallback;
  text.replace(text.find("fallback_tier = \"cheap\""), 23, "fallback_tier = \"embed\"");
  const auto embed_fallback = parse_config(text, "bad.toml", dir.path().string());
  REQUIRE_FALSE(embed_fallback.ok());
  CHECK(embed_fallback.status().message().find(
            "fallback_tier: tier 'embed' holds embedding models; it cannot serve chat") != std::string::npos);
}

TEST_CASE("rules that choose an embedding model or tier fail to the workload's fallback") {
  TempDir dir;
  dir.write("prices.toml", small_prices("[models.e]\ninput = 0.02\noutput = 0\n"));
  dir.write("rules/w.lua", R"lua(
function classify(step, ctx)
  if step.role == "model" then return { model = "e" } end
  if step.role == "both" then return { tier = "embed", model = "m-cheap" } end
  if step.role == "aggregate" then return { tier = "cheap", fanout = 2, aggregate = "embed" } end
  return "embed"
end
)lua");
  const std::string config = dir.write(
      "switchboard.toml",
      small_config("[models.e]\nprovider = \"sim\"\nkind = \"embedding\"\ndimensions = 8\ncontext_window = 8191\n"
                   "[tiers.embed]\nmodels = [\"e\"]\n"));
  auto engine = Engine::open_file(config);
  REQUIRE_MESSAGE(engine.ok(), engine.status().message());
  for (const char* role : {"tier", "model", "both", "aggregate"}) {
    INFO(role);
    Step step;
    step.role = role;
    const Result<Decision> d = (*engine)->decide("w", step);
    REQUIRE(d.ok());
    CHECK(d->tier == "cheap");
    REQUIRE(d->error.has_value());
    CHECK(d->error->find("embedding") != std::string::npos);
  }
}

}  // TEST_SUITE

}  // namespace switchboard::testing
