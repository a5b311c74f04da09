// ModelClient::count_tokens: Anthropic's adapter asks the provider's count
// endpoint (through the FakeProvider), every other client answers the
// engine's count for its model (count_request_tokens).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "fake_provider.h"
#include "providers/http_model_client.h"
#include "switchboard/switchboard.h"

using namespace switchboard;
using namespace switchboard::testing;
using nlohmann::json;

namespace {

ModelSpec spec_of(const std::string& provider, const std::string& endpoint) {
  ModelSpec m;
  m.name = "m-" + provider;
  m.model_id = "upstream-id";
  m.provider = provider;
  m.endpoint = endpoint;
  m.context_window = 100'000;
  return m;
}

ModelRequest question() {
  ModelRequest r;
  r.messages.push_back(Message::of_text("system", "Be brief."));
  r.messages.push_back(Message::of_text("user", "hello there"));  // 11 bytes: 4 tokens; the system 3
  r.max_output_tokens = 500;
  r.sampling.temperature = 0.5;
  return r;
}

}  // namespace

TEST_SUITE("providers") {

TEST_CASE("Anthropic counts tokens at its count_tokens endpoint with the call's input fields only") {
  const auto fake = FakeProvider::start();
  auto client = make_http_client(spec_of("anthropic", fake->base_url()), CallSettings{}, "sk-count-KEY-12345");
  REQUIRE(client.ok());
  const Result<TokenCount> count = (*client)->count_tokens(question());
  REQUIRE_MESSAGE(count.ok(), count.status().to_string());
  CHECK(count->exact);
  const auto sent = fake->received();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].target == "/v1/messages/count_tokens");
  CHECK(sent[0].header("x-api-key") == "sk-count-KEY-12345");
  const json body = json::parse(sent[0].body);
  CHECK(body["model"] == "upstream-id");
  CHECK(body["system"] == "Be brief.");
  CHECK_FALSE(body.contains("max_tokens"));
  CHECK_FALSE(body.contains("temperature"));
  CHECK(count->input_tokens == static_cast<std::int64_t>(std::max<std::size_t>(1, sent[0].body.size() / 4)));

  // A failure is an error like a call's, the key scrubbed.
  fake->inject(Fault::kInvalidKey, 1);
  const Result<TokenCount> refused = (*client)->count_tokens(question());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Status::Code::kUpstream);
  CHECK(refused.status().message().rfind("anthropic m-anthropic: HTTP 401", 0) == 0);
  CHECK(refused.status().message().find("sk-count-KEY-12345") == std::string::npos);
  fake->inject(Fault::kOverloaded, 1);
  CHECK((*client)->count_tokens(question()).status().code() == Status::Code::kUnavailable);
}

TEST_CASE("other clients answer the engine's count for their model without a call") {
  const auto fake = FakeProvider::start();
  for (const char* provider : {"openai", "openai-compatible", "gemini"}) {
    INFO(provider);
    auto client = make_http_client(spec_of(provider, fake->base_url()), CallSettings{}, "k");
    REQUIRE(client.ok());
    const Result<TokenCount> count = (*client)->count_tokens(question());
    REQUIRE(count.ok());
    CHECK_FALSE(count->exact);
    // o200k_base: 3 + (3 + "system" 1 + "Be brief." 3) + (3 + "user" 1 + "hello there" 2).
    CHECK(count->input_tokens == 16);
  }
  const Result<TokenCount> sim = make_sim_client(spec_of("sim", ""), SimSettings{})->count_tokens(question());
  REQUIRE(sim.ok());
  CHECK_FALSE(sim->exact);
  CHECK(sim->input_tokens == 16);
  CHECK(fake->request_count() == 0);
}

}  // TEST_SUITE
