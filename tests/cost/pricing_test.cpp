// The price catalog: prices become exact micro-dollars, defaults fill what a
// provider does not price apart, every broken catalog names file:line:column,
// and an unpriced model is an error, never $0. The shipped prices.toml loads.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "switchboard/pricing.h"
#include "test_util.h"

using namespace switchboard;
using switchboard::testing::TempDir;

namespace {

// A minimal valid catalog. Its line numbers, for reading the cases below:
//   1 version = "v1"
//   2 [models.m]
//   3 input = 1.0
//   4 output = 5.0
//   5 [models.n]
//   6 input = 2.0
//   7 output = 8.0
//   8 long_context = { above_input_tokens = 1000, input = 4.0 }
const std::string kCatalog =
    "version = \"v1\"\n"
    "[models.m]\n"
    "input = 1.0\n"
    "output = 5.0\n"
    "[models.n]\n"
    "input = 2.0\n"
    "output = 8.0\n"
    "long_context = { above_input_tokens = 1000, input = 4.0 }\n";

std::string edit(const std::string& from, const std::string& to) {
  const size_t at = kCatalog.find(from);
  REQUIRE_MESSAGE(at != std::string::npos, "not in the base catalog: " << from);
  REQUIRE_MESSAGE(kCatalog.find(from, at + 1) == std::string::npos, "ambiguous edit: " << from);
  std::string text = kCatalog;
  text.replace(at, from.size(), to);
  return text;
}

Result<PriceCatalog> parse(const std::string& text) { return PriceCatalog::parse(text, "prices.toml"); }

using switchboard::testing::usage_of;

}  // namespace

TEST_CASE("the base catalog of the broken-catalog table is itself valid") {
  auto catalog = parse(kCatalog);
  REQUIRE_MESSAGE(catalog.ok(), catalog.status().message());
  CHECK(catalog->version() == "v1");
  CHECK(catalog->models().size() == 2);
  const ModelPrices* m = catalog->find("m");
  REQUIRE(m != nullptr);
  CHECK(m->model == "m");
  CHECK(m->source == "prices.toml:2:1");
  CHECK_FALSE(m->long_context.has_value());
  CHECK(catalog->find("nope") == nullptr);
}

TEST_CASE("catalog prices convert exactly to micro-dollars per million tokens") {
  struct Case {
    const char* written;
    MicroUsdPerMtok micro;
  };
  for (const Case& c : {Case{"0.1", 100'000}, Case{"0.3", 300'000}, Case{"1.005", 1'005'000},
                        Case{"2.675", 2'675'000}, Case{"0.000001", 1}, Case{"0", 0}, Case{"0.125", 125'000},
                        Case{"0.075", 75'000}, Case{"75", 75'000'000}, Case{"1_000", 1'000'000'000},
                        Case{"10000", 10'000'000'000}, Case{"22.50", 22'500'000}}) {
    INFO(std::string(c.written));
    auto catalog = parse(edit("output = 5.0", std::string("output = ") + c.written));
    REQUIRE_MESSAGE(catalog.ok(), catalog.status().message());
    CHECK(catalog->find("m")->base.output == c.micro);
  }
}

TEST_CASE("omitted rates default: cache rates to input, reasoning to output") {
  auto catalog = parse(kCatalog);
  REQUIRE(catalog.ok());
  const Rates& r = catalog->find("m")->base;
  CHECK(r.input == 1'000'000);
  CHECK(r.cached_input == 1'000'000);
  CHECK(r.cache_write_5m == 1'000'000);
  CHECK(r.cache_write_1h == 1'000'000);
  CHECK(r.output == 5'000'000);
  CHECK(r.reasoning == 5'000'000);

  auto explicit_rates = parse(edit("output = 5.0\n",
                                   "output = 5.0\ncached_input = 0.1\ncache_write_5m = 1.25\n"
                                   "cache_write_1h = 2\nreasoning = 7.5\n"));
  REQUIRE_MESSAGE(explicit_rates.ok(), explicit_rates.status().message());
  const Rates& e = explicit_rates->find("m")->base;
  CHECK(e.cached_input == 100'000);
  CHECK(e.cache_write_5m == 1'250'000);
  CHECK(e.cache_write_1h == 2'000'000);
  CHECK(e.reasoning == 7'500'000);
}

TEST_CASE("omitted long-context rates keep the base, but reasoning follows a raised output") {
  // n: input raised to $4 above 1000 tokens; nothing else written.
  auto catalog = parse(kCatalog);
  REQUIRE(catalog.ok());
  const ModelPrices& n = *catalog->find("n");
  REQUIRE(n.long_context.has_value());
  CHECK(n.long_context->above_input_tokens == 1'000);
  const Rates& lc = n.long_context->rates;
  CHECK(lc.input == 4'000'000);
  CHECK(lc.output == 8'000'000);
  CHECK(lc.reasoning == 8'000'000);
  // the base had no cache discount, so long context has none either: its own input
  CHECK(lc.cached_input == 4'000'000);
  CHECK(lc.cache_write_5m == 4'000'000);

  auto tiered = PriceCatalog::parse(R"toml(version = "v"
[models.s]
input = 3.0
cached_input = 0.3
output = 15.0
reasoning = 15.0
[models.s.long_context]
above_input_tokens = 200_000
input = 6.0
output = 22.5
)toml", "p.toml");
  REQUIRE_MESSAGE(tiered.ok(), tiered.status().message());
  const Rates& s = tiered->find("s")->long_context->rates;
  CHECK(s.input == 6'000'000);
  CHECK(s.output == 22'500'000);
  CHECK(s.reasoning == 22'500'000);    // not the base's $15: reasoning is billed as output
  CHECK(s.cached_input == 300'000);    // the base wrote a discount and the tier did not change it
}

TEST_CASE("cost sums every bucket times its rate and rounds half up once") {
  auto catalog = PriceCatalog::parse(R"toml(version = "v"
[models.r]
input = 0.4
cached_input = 0.4
cache_write_5m = 0.5
cache_write_1h = 0.1
output = 0.3
reasoning = 0.2
)toml", "p.toml");
  REQUIRE_MESSAGE(catalog.ok(), catalog.status().message());
  const ModelPrices& r = *catalog->find("r");
  struct Case {
    Usage usage;
    MicroUsd cost;
  };
  const std::vector<Case> cases = {
      {usage_of(0, 0, 0, 0, 0, 0), 0},
      {usage_of(1, 0, 0, 0, 0, 0), 0},           // 0.4 rounds down
      {usage_of(1, 1, 0, 0, 0, 0), 1},           // 0.4 + 0.4 = 0.8: each alone would round to 0
      {usage_of(0, 0, 1, 0, 0, 0), 1},           // exactly half rounds up
      {usage_of(0, 0, 0, 0, 1, 1), 1},           // 0.3 + 0.2 = 0.5
      {usage_of(0, 0, 0, 4, 0, 0), 0},           // 0.4
      {usage_of(1, 1, 1, 1, 1, 1), 2},           // 0.4 + 0.4 + 0.5 + 0.1 + 0.3 + 0.2 = 1.9
      {usage_of(1'000'000, 0, 0, 0, 0, 0), 400'000},
  };
  for (const Case& c : cases) {
    CHECK(r.cost(c.usage) == c.cost);
  }
  // 2^40 tokens at $10,000 per Mtok: beyond 64-bit products, still exact.
  auto dear = PriceCatalog::parse("version = \"v\"\n[models.d]\ninput = 10000\noutput = 10000\n", "p.toml");
  REQUIRE(dear.ok());
  const std::int64_t huge = std::int64_t{1} << 40;
  CHECK(dear->find("d")->cost(usage_of(huge, 0, 0, 0, huge, 0)) == 2 * huge * 10'000);
}

TEST_CASE("an unpriced model is an error, never $0") {
  auto catalog = parse(kCatalog);
  REQUIRE(catalog.ok());
  auto cost = catalog->cost("gpt-unknown", usage_of(1'000, 0, 0, 0, 10, 0));
  REQUIRE_FALSE(cost.ok());
  CHECK(cost.status().code() == Status::Code::kNotFound);
  CHECK(cost.status().message() ==
        "prices.toml: model 'gpt-unknown' has no price in the catalog (version v1); a call without a price "
        "is not billed as $0");
  auto priced = catalog->cost("m", usage_of(1'000, 0, 0, 0, 10, 0));
  REQUIRE(priced.ok());
  CHECK(*priced == 1'000 + 50);
}

TEST_CASE("each broken catalog names file:line:column and what is wrong") {
  struct Broken {
    const char* what;
    std::string text;
    std::string error;
  };
  const std::vector<Broken> cases = {
      {"no version", edit("version = \"v1\"\n", ""),
       "prices.toml:1:1: the price catalog needs a 'version' (stored with every priced call)"},
      {"a version that is not a string", edit("\"v1\"", "1"),
       "prices.toml:1:11: the price catalog: 'version' must be a string"},
      {"an empty version", edit("\"v1\"", "\"\""),
       "prices.toml:1:11: the price catalog: 'version' must not be empty"},
      {"an unknown top-level key", edit("version = \"v1\"\n", "version = \"v1\"\ncurrency = \"EUR\"\n"),
       "prices.toml:2:1: the price catalog: unknown key 'currency' (expected one of: version, models)"},
      {"a negative price", edit("input = 1.0", "input = -1.0"),
       "prices.toml:3:9: model 'm': 'input' must not be negative"},
      {"a price given as text", edit("input = 1.0", "input = \"1.0\""),
       "prices.toml:3:9: model 'm': 'input' must be a number of USD per million tokens"},
      {"a price given as a boolean", edit("output = 5.0", "output = true"),
       "prices.toml:4:10: model 'm': 'output' must be a number of USD per million tokens"},
      {"an implausible price (a missing decimal point)", edit("output = 5.0", "output = 15000"),
       "prices.toml:4:10: model 'm': 'output' of $15000 per million tokens is not plausible (at most $10000)"},
      {"a price that is not a number at all", edit("output = 5.0", "output = nan"),
       "prices.toml:4:10: model 'm': 'output' must be a finite number of USD per million tokens"},
      {"no input price", edit("[models.m]\ninput = 1.0\n", "[models.m]\n"),
       "prices.toml:2:1: model 'm' has no 'input' price (USD per million tokens)"},
      {"no output price", edit("input = 1.0\noutput = 5.0\n", "input = 1.0\n"),
       "prices.toml:2:1: model 'm' has no 'output' price (USD per million tokens)"},
      {"an unknown key in a model (typo)", edit("output = 5.0", "outptu = 5.0"),
       "prices.toml:4:1: model 'm': unknown key 'outptu' (expected one of: input, cached_input, "
       "cache_write_5m, cache_write_1h, output, reasoning, long_context)"},
      {"a model that is not a table", edit("[models.m]\ninput = 1.0\noutput = 5.0\n", "[models]\nm = 3\n"),
       "prices.toml:3:5: model 'm' must be a table"},
      {"long context without a threshold", edit("above_input_tokens = 1000, ", ""),
       "prices.toml:8:16: model 'n' long_context needs 'above_input_tokens'"},
      {"long context with a zero threshold", edit("above_input_tokens = 1000", "above_input_tokens = 0"),
       "prices.toml:8:39: model 'n' long_context: 'above_input_tokens' must be positive"},
      {"an unknown key in long context", edit("input = 4.0 }", "inptu = 4.0 }"),
       "prices.toml:8:45: model 'n' long_context: unknown key 'inptu' (expected one of: above_input_tokens, "
       "input, cached_input, cache_write_5m, cache_write_1h, output, reasoning)"},
      {"a negative long-context price", edit("input = 4.0 }", "input = -4.0 }"),
       "prices.toml:8:53: model 'n' long_context: 'input' must not be negative"},
      {"long context that is not a table", edit("long_context = { above_input_tokens = 1000, input = 4.0 }",
                                                "long_context = 200000"),
       "prices.toml:8:16: model 'n' long_context must be a table"},
  };
  for (const Broken& c : cases) {
    INFO(std::string(c.what));
    auto catalog = parse(c.text);
    REQUIRE_FALSE(catalog.ok());
    CHECK(catalog.status().code() == Status::Code::kInvalidArgument);
    CHECK(catalog.status().message() == c.error);
  }
}

TEST_CASE("malformed catalog TOML names the line and column where parsing stopped") {
  auto catalog = parse(edit("output = 5.0", "output = "));
  REQUIRE_FALSE(catalog.ok());
  CHECK(catalog.status().message().starts_with("prices.toml:4:10: "));
}

TEST_CASE("PriceCatalog::load names the file it read") {
  TempDir dir;
  const std::string path = dir.write("prices.toml", edit("input = 1.0", "input = -1.0"));
  auto catalog = PriceCatalog::load(path);
  REQUIRE_FALSE(catalog.ok());
  CHECK(catalog.status().message() == path + ":3:9: model 'm': 'input' must not be negative");

  const std::string missing = (dir.path() / "nowhere.toml").string();
  auto absent = PriceCatalog::load(missing);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.status().code() == Status::Code::kIoError);
  CHECK(absent.status().message() == missing + ": cannot open the price catalog");
}

TEST_CASE("the shipped prices.toml loads and prices what the shipped config routes to") {
  auto catalog = PriceCatalog::load(SWITCHBOARD_SOURCE_DIR "/prices.toml");
  REQUIRE_MESSAGE(catalog.ok(), catalog.status().message());
  CHECK_FALSE(catalog->version().empty());
  for (const char* model : {"claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "gpt-5", "gpt-5-mini",
                            "gemini-2.5-pro", "gemini-2.5-flash", "llama-3.3-70b"}) {
    INFO(model);
    const ModelPrices* p = catalog->find(model);
    REQUIRE(p != nullptr);
    CHECK(p->base.input > 0);
    CHECK(p->base.output >= p->base.input);
    CHECK(p->base.cached_input <= p->base.input);
  }
  // Anthropic cache writes cost more than input; long-context tiers where published.
  const ModelPrices& sonnet = *catalog->find("claude-sonnet-4-5");
  CHECK(sonnet.base.cache_write_5m > sonnet.base.input);
  CHECK(sonnet.base.cache_write_1h > sonnet.base.cache_write_5m);
  REQUIRE(sonnet.long_context.has_value());
  CHECK(sonnet.long_context->above_input_tokens == 200'000);
  CHECK(sonnet.long_context->rates.output > sonnet.base.output);
  const ModelPrices& pro = *catalog->find("gemini-2.5-pro");
  REQUIRE(pro.long_context.has_value());
  CHECK(pro.long_context->above_input_tokens == 200'000);
  CHECK(pro.long_context->rates.input > pro.base.input);
}
