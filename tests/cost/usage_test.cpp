// Usage from real-shaped provider responses (tests/cost/fixtures/, one whole
// body per case) and the exact micro-dollar cost of each under a catalog
// written here, not the shipped one, whose prices change.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "switchboard/pricing.h"
#include "switchboard/usage.h"
#include "test_util.h"

using namespace switchboard;

namespace {

// USD per Mtok. "chat" stands for an OpenAI model, "thinker" for one whose
// reasoning is priced apart, "claude" and "gemini" carry long-context tiers.
const char* const kGoldenCatalog = R"toml(
version = "golden-1"

[models.chat]
input = 2.00
cached_input = 0.50
output = 8.00

[models.thinker]
input = 1.00
output = 4.00
reasoning = 12.00

[models.claude]
input = 3.00
cached_input = 0.30
cache_write_5m = 3.75
cache_write_1h = 6.00
output = 15.00
long_context = { above_input_tokens = 200_000, input = 6.00, cached_input = 0.60, cache_write_5m = 7.50, cache_write_1h = 12.00, output = 22.50 }

[models.gemini]
input = 1.25
cached_input = 0.125
output = 10.00
long_context = { above_input_tokens = 200_000, input = 2.50, cached_input = 0.25, output = 15.00 }
)toml";

const PriceCatalog& golden_catalog() {
  static const PriceCatalog catalog = [] {
    auto parsed = PriceCatalog::parse(kGoldenCatalog, "golden.toml");
    REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
    return std::move(parsed).value();
  }();
  return catalog;
}

std::string fixture(const std::string& name) {
  const std::string path = std::string(SWITCHBOARD_TESTS_DIR) + "/cost/fixtures/" + name;
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "missing fixture " << path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

using switchboard::testing::usage_of;

std::string describe(const Usage& u) {
  std::ostringstream s;
  s << "{input " << u.input_tokens << ", cached " << u.cached_input_tokens << ", write_5m "
    << u.cache_write_5m_tokens << ", write_1h " << u.cache_write_1h_tokens << ", output " << u.output_tokens
    << ", reasoning " << u.reasoning_tokens << "}";
  return s.str();
}

struct Golden {
  const char* fixture;
  UsageFormat format;
  const char* model;   // in kGoldenCatalog
  Usage usage;         // input, cached, write 5m, write 1h, output, reasoning
  MicroUsd cost;       // the arithmetic beside each case, in micro-dollars
  const char* why;
};

}  // namespace

TEST_CASE("each fixture normalises to the exact usage and costs the exact micro-dollars") {
  const std::vector<Golden> cases = {
      // --- OpenAI
      {"openai_chat_plain.json", UsageFormat::kOpenAI, "chat", usage_of(1'200, 0, 0, 0, 350, 0),
       2'400 + 2'800,  // 1200 × $2 + 350 × $8
       "plain chat completion"},
      {"openai_chat_cached.json", UsageFormat::kOpenAI, "chat", usage_of(452, 2'048, 0, 0, 120, 0),
       904 + 1'024 + 960,  // (2500 − 2048) × $2 + 2048 × $0.50 + 120 × $8
       "cached prompt tokens are taken out of prompt_tokens, not billed twice"},
      {"openai_chat_reasoning.json", UsageFormat::kOpenAI, "chat", usage_of(800, 0, 0, 0, 544, 1'856),
       1'600 + 4'352 + 14'848,  // 800 × $2 + 544 × $8 + 1856 × $8 (reasoning at the output rate)
       "o-series reasoning tokens are billed, at the output rate by default"},
      {"openai_chat_reasoning.json", UsageFormat::kOpenAI, "thinker", usage_of(800, 0, 0, 0, 544, 1'856),
       800 + 2'176 + 22'272,  // 800 × $1 + 544 × $4 + 1856 × $12
       "reasoning priced apart uses its own rate"},
      {"openai_responses_reasoning.json", UsageFormat::kOpenAI, "chat", usage_of(1'976, 1'024, 0, 0, 476, 1'024),
       3'952 + 512 + 3'808 + 8'192,  // 1976 × $2 + 1024 × $0.50 + 476 × $8 + 1024 × $8
       "gpt-5 Responses API body: cached and reasoning details under input/output_tokens_details"},
      // --- Anthropic
      {"anthropic_plain.json", UsageFormat::kAnthropic, "claude", usage_of(1'500, 0, 0, 0, 420, 0),
       4'500 + 6'300,  // 1500 × $3 + 420 × $15
       "plain message"},
      {"anthropic_cache_read.json", UsageFormat::kAnthropic, "claude", usage_of(320, 9'800, 0, 0, 250, 0),
       960 + 2'940 + 3'750,  // 320 × $3 + 9800 × $0.30 + 250 × $15
       "cache reads are beside input_tokens and billed at the read rate"},
      {"anthropic_cache_write_5m.json", UsageFormat::kAnthropic, "claude", usage_of(210, 0, 4'096, 0, 180, 0),
       630 + 15'360 + 2'700,  // 210 × $3 + 4096 × $3.75 + 180 × $15
       "5-minute cache write at 1.25× input"},
      {"anthropic_cache_write_1h.json", UsageFormat::kAnthropic, "claude",
       usage_of(50, 2'000, 1'000, 5'000, 300, 0),
       150 + 600 + 3'750 + 30'000 + 4'500,  // 50 × $3 + 2000 × $0.30 + 1000 × $3.75 + 5000 × $6 + 300 × $15
       "cache_creation splits the write into 5-minute and 1-hour parts"},
      {"anthropic_long_context.json", UsageFormat::kAnthropic, "claude", usage_of(180'000, 30'000, 0, 0, 2'000, 0),
       1'080'000 + 18'000 + 45'000,  // 180k × $6 + 30k × $0.60 + 2000 × $22.50: the whole request
       "210k input tokens (uncached + cache reads) is over 200k: every bucket at the long-context rate"},
      // --- Gemini
      {"gemini_plain.json", UsageFormat::kGemini, "gemini", usage_of(900, 0, 0, 0, 300, 0),
       1'125 + 3'000,  // 900 × $1.25 + 300 × $10
       "plain generateContent"},
      {"gemini_cached.json", UsageFormat::kGemini, "gemini", usage_of(2'000, 10'000, 0, 0, 500, 0),
       2'500 + 1'250 + 5'000,  // (12000 − 10000) × $1.25 + 10000 × $0.125 + 500 × $10
       "cachedContentTokenCount is inside promptTokenCount, not billed twice"},
      {"gemini_thinking.json", UsageFormat::kGemini, "gemini", usage_of(1'500, 0, 0, 0, 600, 2'200),
       1'875 + 6'000 + 22'000,  // 1500 × $1.25 + 600 × $10 + 2200 × $10
       "thoughtsTokenCount is billed beside candidatesTokenCount"},
      {"gemini_long_context.json", UsageFormat::kGemini, "gemini", usage_of(150'000, 100'000, 0, 0, 3'000, 1'000),
       375'000 + 25'000 + 45'000 + 15'000,  // 150k × $2.50 + 100k × $0.25 + 3000 × $15 + 1000 × $15
       "a 250k-token prompt on 2.5 Pro: the whole request at the >200k rates"},
  };
  for (const Golden& c : cases) {
    INFO(c.fixture << " on " << c.model << ": " << c.why);
    auto usage = parse_usage(c.format, fixture(c.fixture));
    REQUIRE_MESSAGE(usage.ok(), usage.status().message());
    INFO("parsed " << describe(*usage));
    CHECK(*usage == c.usage);
    auto cost = golden_catalog().cost(c.model, *usage);
    REQUIRE_MESSAGE(cost.ok(), cost.status().message());
    CHECK(*cost == c.cost);
  }
}

TEST_CASE("normalised buckets add back up to the provider's own totals") {
  // Nothing is lost or counted twice: the buckets sum to the reported total.
  struct Total {
    const char* fixture;
    UsageFormat format;
    std::int64_t total_tokens;
  };
  for (const Total& t : {Total{"openai_chat_cached.json", UsageFormat::kOpenAI, 2'620},
                         Total{"openai_chat_reasoning.json", UsageFormat::kOpenAI, 3'200},
                         Total{"openai_responses_reasoning.json", UsageFormat::kOpenAI, 4'500},
                         Total{"gemini_cached.json", UsageFormat::kGemini, 12'500},
                         Total{"gemini_thinking.json", UsageFormat::kGemini, 4'300},
                         Total{"gemini_long_context.json", UsageFormat::kGemini, 254'000}}) {
    INFO(t.fixture);
    auto u = parse_usage(t.format, fixture(t.fixture));
    REQUIRE_MESSAGE(u.ok(), u.status().message());
    CHECK(u->total_input() + u->output_tokens + u->reasoning_tokens == t.total_tokens);
  }
}

TEST_CASE("the long-context tier starts above the threshold, not at it") {
  const ModelPrices& claude = *golden_catalog().find("claude");
  // 200,000 input tokens in all: base rates
  Usage at = usage_of(150'000, 40'000, 10'000, 0, 1'000, 0);
  CHECK(at.total_input() == 200'000);
  CHECK(&claude.rates_for(at.total_input()) == &claude.base);
  CHECK(claude.cost(at) == 450'000 + 12'000 + 37'500 + 15'000);
  // one more cache-write token tips the whole request over
  Usage over = at;
  over.cache_write_5m_tokens += 1;
  CHECK(&claude.rates_for(over.total_input()) == &claude.long_context->rates);
  CHECK(claude.cost(over) == 900'000 + 24'000 + 75'008 + 22'500);  // 10001 × $7.50 = 75,007.5 → rounded once
}

TEST_CASE("Anthropic streaming events carry usage in message_start and message_delta") {
  auto start = parse_usage(UsageFormat::kAnthropic, R"json({"type":"message_start","message":{
      "id":"msg_01A","type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[],
      "stop_reason":null,"stop_sequence":null,
      "usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":1200,
               "output_tokens":1}}})json");
  REQUIRE_MESSAGE(start.ok(), start.status().message());
  CHECK(*start == usage_of(25, 1'200, 0, 0, 1, 0));

  auto delta = parse_usage(UsageFormat::kAnthropic, R"json({"type":"message_delta",
      "delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}})json");
  REQUIRE_MESSAGE(delta.ok(), delta.status().message());
  CHECK(*delta == usage_of(0, 0, 0, 0, 15, 0));
}

TEST_CASE("an Anthropic cache write without the 5m/1h split is a 5-minute write") {
  auto u = parse_usage(UsageFormat::kAnthropic, R"json({"id":"msg_01B","type":"message","role":"assistant",
      "content":[{"type":"text","text":"ok"}],"model":"claude-sonnet-4-5","stop_reason":"end_turn",
      "usage":{"input_tokens":10,"cache_creation_input_tokens":2048,"cache_read_input_tokens":0,
               "output_tokens":3}})json");
  REQUIRE_MESSAGE(u.ok(), u.status().message());
  CHECK(*u == usage_of(10, 0, 2'048, 0, 3, 0));
}

TEST_CASE("a streamed OpenAI chunk and a Responses completion event carry usage too") {
  auto chunk = parse_usage(UsageFormat::kOpenAI, R"json({"id":"chatcmpl-X","object":"chat.completion.chunk",
      "created":1763790000,"model":"gpt-5-mini-2025-08-07","choices":[],
      "usage":{"prompt_tokens":40,"completion_tokens":9,"total_tokens":49}})json");
  REQUIRE_MESSAGE(chunk.ok(), chunk.status().message());
  CHECK(*chunk == usage_of(40, 0, 0, 0, 9, 0));

  auto completed = parse_usage(UsageFormat::kOpenAI, R"json({"type":"response.completed","sequence_number":12,
      "response":{"id":"resp_1","object":"response","status":"completed","output":[],
      "usage":{"input_tokens":70,"input_tokens_details":{"cached_tokens":64},"output_tokens":20,
               "output_tokens_details":{"reasoning_tokens":0},"total_tokens":90}}})json");
  REQUIRE_MESSAGE(completed.ok(), completed.status().message());
  CHECK(*completed == usage_of(6, 64, 0, 0, 20, 0));
}

TEST_CASE("parse_usage refuses what it cannot bill exactly, naming the field") {
  struct Bad {
    UsageFormat format;
    const char* body;
    const char* error;
  };
  const std::vector<Bad> cases = {
      {UsageFormat::kOpenAI, R"({"id":"x","choices":[]})",
       "OpenAI response: no 'usage' object (a streamed chat completion carries it only with "
       "stream_options.include_usage)"},
      {UsageFormat::kOpenAI, R"({"usage":null})",
       "OpenAI response: no 'usage' object (a streamed chat completion carries it only with "
       "stream_options.include_usage)"},
      {UsageFormat::kOpenAI, R"({"usage":{"completion_tokens":5}})", "OpenAI response: 'usage.prompt_tokens' is missing"},
      {UsageFormat::kOpenAI, R"({"usage":{"prompt_tokens":5}})", "OpenAI response: 'usage.completion_tokens' is missing"},
      {UsageFormat::kOpenAI, R"({"usage":{"prompt_tokens":-5,"completion_tokens":1}})",
       "OpenAI response: 'usage.prompt_tokens' must not be negative (got -5)"},
      {UsageFormat::kOpenAI, R"({"usage":{"prompt_tokens":"12","completion_tokens":1}})",
       "OpenAI response: 'usage.prompt_tokens' must be a whole number of tokens"},
      {UsageFormat::kOpenAI, R"({"usage":{"prompt_tokens":12.5,"completion_tokens":1}})",
       "OpenAI response: 'usage.prompt_tokens' must be a whole number of tokens"},
      {UsageFormat::kOpenAI,
       R"({"usage":{"prompt_tokens":100,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":128}}})",
       "OpenAI response: 'usage.prompt_tokens_details.cached_tokens' (128) exceeds 'usage.prompt_tokens' (100)"},
      {UsageFormat::kOpenAI,
       R"({"usage":{"prompt_tokens":1,"completion_tokens":10,"completion_tokens_details":{"reasoning_tokens":11}}})",
       "OpenAI response: 'usage.completion_tokens_details.reasoning_tokens' (11) exceeds "
       "'usage.completion_tokens' (10)"},
      {UsageFormat::kOpenAI,
       R"({"response":{"usage":{"input_tokens":10,"output_tokens":2,"input_tokens_details":{"cached_tokens":11}}}})",
       "OpenAI response: 'response.usage.input_tokens_details.cached_tokens' (11) exceeds "
       "'response.usage.input_tokens' (10)"},
      {UsageFormat::kOpenAI, R"({"usage":{"prompt_tokens":1,"completion_tokens":1,"prompt_tokens_details":7}})",
       "OpenAI response: 'usage.prompt_tokens_details' must be an object"},
      {UsageFormat::kOpenAI, R"([1,2])", "OpenAI response: not a JSON object"},
      {UsageFormat::kAnthropic, R"({"type":"message","usage":{"input_tokens":3}})",
       "Anthropic response: 'usage.output_tokens' is missing"},
      {UsageFormat::kAnthropic, R"({"type":"ping"})", "Anthropic response: no 'usage' object"},
      {UsageFormat::kAnthropic,
       R"({"usage":{"input_tokens":1,"output_tokens":1,"cache_creation_input_tokens":100,
                    "cache_creation":{"ephemeral_5m_input_tokens":40,"ephemeral_1h_input_tokens":50}}})",
       "Anthropic response: 'usage.cache_creation_input_tokens' (100) is not the sum of the 5-minute and "
       "1-hour writes in 'usage.cache_creation' (90)"},
      {UsageFormat::kAnthropic,
       R"({"message":{"usage":{"input_tokens":1,"output_tokens":1,"cache_read_input_tokens":-1}}})",
       "Anthropic response: 'message.usage.cache_read_input_tokens' must not be negative (got -1)"},
      {UsageFormat::kGemini, R"({"candidates":[]})", "Gemini response: no 'usageMetadata' object"},
      {UsageFormat::kGemini, R"({"usageMetadata":{"candidatesTokenCount":3}})",
       "Gemini response: 'usageMetadata.promptTokenCount' is missing"},
      {UsageFormat::kGemini, R"({"usageMetadata":{"promptTokenCount":10,"cachedContentTokenCount":11}})",
       "Gemini response: 'usageMetadata.cachedContentTokenCount' (11) exceeds 'usageMetadata.promptTokenCount' (10)"},
      {UsageFormat::kGemini, R"({"usageMetadata":{"promptTokenCount":10,"thoughtsTokenCount":true}})",
       "Gemini response: 'usageMetadata.thoughtsTokenCount' must be a whole number of tokens"},
      {UsageFormat::kGemini, R"({"usageMetadata":{"promptTokenCount":18446744073709551615}})",
       "Gemini response: 'usageMetadata.promptTokenCount' is out of range"},
  };
  for (const Bad& c : cases) {
    INFO(c.body);
    auto u = parse_usage(c.format, c.body);
    REQUIRE_FALSE(u.ok());
    CHECK(u.status().code() == Status::Code::kInvalidArgument);
    CHECK(u.status().message() == c.error);
  }

  auto broken = parse_usage(UsageFormat::kGemini, R"({"usageMetadata": {)");
  REQUIRE_FALSE(broken.ok());
  CHECK(broken.status().message().starts_with("Gemini response: not valid JSON: "));
}
