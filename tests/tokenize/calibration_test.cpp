// Calibrated token factors (switchboard/calibration.h): the percentile
// arithmetic, and the whole loop against the fake provider, whose Anthropic
// and Gemini prompt tokens are max(1, body bytes / 4): calibrate on one
// corpus of calls, then the scaled counts of another corpus from the same
// kind of traffic are at or above the reported count on at least 99% of its
// calls, within 15% of it in total and on at least 95% of the calls. (Per
// call the spread is the fake's: it bills bytes, so a turn with code, which
// has more tokens per byte than prose, bills less per counted token.)
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "fake_provider.h"
#include "providers/http_model_client.h"
#include "switchboard/calibration.h"
#include "switchboard/switchboard.h"

using namespace switchboard;
using namespace switchboard::testing;

namespace {

// A deterministic agent-like conversation: a system prompt, turns of prose,
// some with code; `seed` picks it. No tools: the fake provider does not bill
// Anthropic's tool-use system prompt, which the count adds (tokens_test.cpp).
ModelRequest conversation(std::uint64_t seed) {
  std::uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  const auto next = [&](std::uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  static const std::vector<std::string> kWords = {
      "the", "agent", "reads", "a", "file", "and", "writes", "its", "summary", "of", "every", "change", "to",
      "budget", "ledger", "model", "router", "request", "returns", "JSON", "with", "fields", "for", "each",
      "step", "Please", "review", "contract", "clause", "liability", "shall", "not", "exceed", "twelve",
      "months", "fees", "paid", "under", "this", "agreement", "function", "call", "result", "error", "retry"};
  const auto prose = [&](size_t words) {
    std::string s;
    for (size_t i = 0; i < words; ++i) {
      s += (i ? " " : "") + kWords[next(kWords.size())];
      if (next(12) == 0) s += next(2) ? "." : ",";
    }
    return s;
  };
  const auto code = [&] {
    std::string s = "```cpp\n";
    for (size_t i = 0, n = 3 + next(8); i < n; ++i) {
      s += "  auto " + kWords[next(kWords.size())] + "_" + std::to_string(next(100)) + " = " +
           kWords[next(kWords.size())] + "(" + std::to_string(next(100000)) + ");\n";
    }
    return s + "```";
  };
  ModelRequest r;
  r.messages.push_back(Message::of_text("system", "You are a careful assistant. " + prose(40 + next(80))));
  for (size_t turn = 0, turns = 1 + next(4); turn < turns; ++turn) {
    std::string text = prose(120 + next(600));
    if (next(3) == 0) text += "\n\n" + code();
    r.messages.push_back(Message::of_text("user", text));
    if (turn + 1 < turns) r.messages.push_back(Message::of_text("assistant", prose(60 + next(300))));
  }
  r.max_output_tokens = 64;
  return r;
}

ModelSpec spec(const std::string& provider, const std::string& endpoint) {
  ModelSpec m;
  m.name = "m-" + provider;
  m.model_id = "upstream-id";
  m.provider = provider;
  m.endpoint = endpoint;
  m.context_window = 1'000'000;
  m.tokenizer = "o200k_base";
  return m;
}

}  // namespace

TEST_SUITE("tokenize") {

TEST_CASE("the factor is the 99th percentile of billed over counted, never below the floor") {
  std::vector<TokenSample> samples;
  for (int i = 1; i <= 100; ++i) samples.push_back(TokenSample{100 + i, 100});  // ratios 1.01 .. 2.00
  samples.push_back(TokenSample{500, 0});  // no count: skipped
  const TokenCalibration c = calibrate_tokens(samples, 1.10);
  CHECK(c.calls == 100);
  CHECK(c.p50 == doctest::Approx(1.50));
  CHECK(c.p99 == doctest::Approx(1.99));
  CHECK(c.factor == doctest::Approx(1.99));

  const TokenCalibration low = calibrate_tokens({TokenSample{90, 100}, TokenSample{95, 100}}, 1.10);
  CHECK(low.p99 == doctest::Approx(0.95));
  CHECK(low.factor == doctest::Approx(1.10));  // the floor

  const TokenCalibration none = calibrate_tokens({}, 1.25);
  CHECK(none.calls == 0);
  CHECK(none.factor == 1.25);
}

TEST_CASE("calibrated Anthropic and Gemini counts cover 99% of the fake provider's bills, within 15%") {
  const auto fake = FakeProvider::start();
  for (const auto& [provider, endpoint] : std::vector<std::pair<std::string, std::string>>{
           {"anthropic", fake->base_url()}, {"gemini", fake->base_url() + "/v1beta"}}) {
    INFO(provider);
    ModelSpec m = spec(provider, endpoint);
    auto client = make_http_client(m, CallSettings{}, "k");
    REQUIRE(client.ok());
    // Each call's billed input and the engine's unscaled count.
    const auto sample = [&](std::uint64_t seed) {
      const ModelRequest r = conversation(seed);
      Result<ModelResponse> answer = (*client)->invoke(r);
      REQUIRE_MESSAGE(answer.ok(), answer.status().message());
      ModelSpec unscaled = m;
      unscaled.token_factor = 1.0;
      return TokenSample{answer->usage.total_input(), *count_request_tokens(unscaled, r)};
    };
    std::vector<TokenSample> learned;
    for (std::uint64_t seed = 1; seed <= 200; ++seed) learned.push_back(sample(seed));
    const TokenCalibration c = calibrate_tokens(learned, 1.10);
    CHECK(c.calls == 200);
    MESSAGE(provider << ": factor p50 " << c.p50 << ", p99 " << c.p99 << ", chosen " << c.factor);
    m.token_factor = c.factor;

    // Calls the factor never saw.
    int covered = 0;
    int close = 0;  // within 15% of the bill
    int calls = 0;
    std::int64_t estimated = 0;
    std::int64_t billed = 0;
    double worst_over = 0;
    for (std::uint64_t seed = 1001; seed <= 1200; ++seed) {
      const TokenSample s = sample(seed);
      const ModelRequest r = conversation(seed);
      const std::int64_t estimate = *count_request_tokens(m, r);
      ++calls;
      if (estimate >= s.reported) ++covered;
      const double off = static_cast<double>(estimate - s.reported) / static_cast<double>(s.reported);
      if (std::abs(off) <= 0.15) ++close;
      worst_over = std::max(worst_over, off);
      estimated += estimate;
      billed += s.reported;
    }
    const double total_off = static_cast<double>(estimated - billed) / static_cast<double>(billed);
    MESSAGE(provider << ": " << covered << " of " << calls << " at or above the bill, " << close
                     << " within 15%; in total " << total_off << " over; worst " << worst_over << " over");
    CHECK(covered * 100 >= calls * 99);
    CHECK(close * 100 >= calls * 95);
    CHECK(total_off >= 0.0);
    CHECK(total_off <= 0.15);
  }
}

}  // TEST_SUITE
