// The sim provider's prompt cache (sim_client.cpp): repeated prefixes are
// reported as cache reads, the rest of an Anthropic model's prompt as a
// 5-minute write, within the cache's lifetime and over its minimum size,
// deterministically given the sequence of requests.
#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "switchboard/client.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::ScriptedClock;
using namespace std::chrono_literals;

namespace {

ModelSpec spec_of(const std::string& name, const std::string& provider) {
  ModelSpec spec;
  spec.name = spec.model_id = name;
  spec.provider = provider;
  spec.default_output_tokens = 100;
  return spec;
}

// `tokens` tokens of text (three bytes each).
std::string text(char c, std::int64_t tokens) { return std::string(static_cast<std::size_t>(tokens * 3), c); }

}  // namespace

TEST_SUITE("sim cache") {

TEST_CASE("the sim reports the longest prefix it answered before as cache reads, for its lifetime") {
  ScriptedClock clock;
  SimSettings settings;
  settings.clock = clock.fn();
  auto sim = make_sim_client(spec_of("m", "openai"), settings);
  ModelRequest req;
  req.messages = {Message::of_text("system", text('s', 1000)), Message::of_text("user", text('u', 1000))};
  auto first = sim->invoke(req);
  REQUIRE(first.ok());
  CHECK(first->usage.input_tokens == 2000);  // cold
  CHECK(first->usage.cached_input_tokens == 0);
  CHECK(first->usage.cache_write_5m_tokens == 0);  // an automatic cache: no writes billed

  // The next turn re-sends the conversation: the whole first request is a hit.
  req.messages.push_back(Message::of_text("assistant", text('a', 500)));
  req.messages.push_back(Message::of_text("user", text('v', 500)));
  auto second = sim->invoke(req);
  REQUIRE(second.ok());
  CHECK(second->usage.cached_input_tokens == 2000);
  CHECK(second->usage.input_tokens == 1000);

  // Counted tokens: each prefix is its share of the message text.
  ModelRequest counted = req;
  counted.counted_input_tokens = 6000;
  clock.now += 10s;
  auto third = sim->invoke(counted);
  CHECK(third->usage.cached_input_tokens == 6000);  // the whole of it was sent before
  CHECK(third->usage.input_tokens == 0);

  // Another opening shares no prefix; a prefix under 1024 tokens is never cached.
  ModelRequest other;
  other.messages = {Message::of_text("user", text('x', 1000))};
  CHECK(sim->invoke(other)->usage.cached_input_tokens == 0);
  CHECK(sim->invoke(other)->usage.cached_input_tokens == 0);

  // Five minutes after the last request that carried it, a prefix is gone.
  clock.now += 299s;
  CHECK(sim->invoke(req)->usage.cached_input_tokens == 3000);  // t = 309 s: last carried at t = 10 s
  clock.now += 300s;
  auto expired = sim->invoke(req);
  CHECK(expired->usage.cached_input_tokens == 0);
  CHECK(expired->usage.input_tokens == 3000);

  // A step sent by its count alone (text under a byte per token) does not carry its prompt: no cache.
  ModelRequest placeholder;
  placeholder.messages = {Message::of_text("user", "(a 'plan' step)")};
  placeholder.counted_input_tokens = 5000;
  CHECK(sim->invoke(placeholder)->usage.input_tokens == 5000);
  CHECK(sim->invoke(placeholder)->usage.cached_input_tokens == 0);
  auto claude = make_sim_client(spec_of("claude", "anthropic"), settings);
  CHECK(claude->invoke(placeholder)->usage.cache_write_5m_tokens == 0);

  // Another sim model has its own cache.
  auto other_model = make_sim_client(spec_of("n", "openai"), settings);
  CHECK(other_model->invoke(req)->usage.cached_input_tokens == 0);
}

TEST_CASE("an Anthropic model's sim writes the rest of a cacheable prompt to the 5-minute cache") {
  ScriptedClock clock;
  SimSettings settings;
  settings.clock = clock.fn();
  auto sim = make_sim_client(spec_of("claude", "anthropic"), settings);
  ModelRequest req;
  req.messages = {Message::of_text("user", text('u', 1500))};
  auto first = sim->invoke(req);
  CHECK(first->usage.cache_write_5m_tokens == 1500);
  CHECK(first->usage.cached_input_tokens == 0);
  CHECK(first->usage.input_tokens == 0);
  req.messages.push_back(Message::of_text("assistant", text('a', 100)));
  req.messages.push_back(Message::of_text("user", text('v', 400)));
  auto second = sim->invoke(req);
  CHECK(second->usage.cached_input_tokens == 1500);
  CHECK(second->usage.cache_write_5m_tokens == 500);
  CHECK(second->usage.input_tokens == 0);
  CHECK(second->usage.total_input() == 2000);

  // Under the 1024-token minimum nothing is written or read.
  ModelRequest small;
  small.messages = {Message::of_text("user", text('s', 300))};
  auto a = sim->invoke(small);
  auto b = sim->invoke(small);
  CHECK(a->usage == b->usage);
  CHECK(b->usage.input_tokens == 300);
  CHECK(b->usage.cached_input_tokens + b->usage.cache_write_5m_tokens == 0);
}

TEST_CASE("the same sequence of requests gets the same counts") {
  const auto run = [] {
    ScriptedClock clock;
    SimSettings settings;
    settings.clock = clock.fn();
    auto sim = make_sim_client(spec_of("claude", "anthropic"), settings);
    std::vector<Usage> out;
    ModelRequest req;
    for (int turn = 0; turn < 5; ++turn) {
      req.messages.push_back(Message::of_text("user", text(static_cast<char>('a' + turn), 700)));
      auto r = sim->invoke(req);
      REQUIRE(r.ok());
      out.push_back(r->usage);
      req.messages.push_back(Message::of("assistant", r->content));
      clock.now += 30s;
    }
    return out;
  };
  const std::vector<Usage> a = run();
  CHECK(a == run());
  CHECK(a[0].cached_input_tokens == 0);  // 700 tokens: under the minimum
  CHECK(a[2].cached_input_tokens > 0);
}

}  // TEST_SUITE
