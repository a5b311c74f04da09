// The price catalog (prices.toml) and exact call costs. toml++ exceptions stop
// here, as in config.cpp; every error names "file:line:column".
#include "switchboard/pricing.h"

#include "util/file_text.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include <toml++/toml.h>

#include "util/toml.h"

namespace switchboard {

namespace {

using detail::ConfigError;
using detail::where;

// Above this a price is a typo (a missing decimal point), not a list price.
constexpr double kMaxUsdPerMtok = 10'000;

std::optional<MicroUsdPerMtok> read_rate(const toml::table& t, std::string_view key,
                                         const std::string& file, const std::string& what) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return std::nullopt;
  // value<double>() also accepts integers (`output = 15`); a string or a
  // boolean is refused.
  std::optional<double> usd = node->is_number() ? node->value<double>() : std::nullopt;
  if (!usd) {
    throw ConfigError(where(file, *node) + ": " + what + ": '" + std::string(key) +
                      "' must be a number of USD per million tokens");
  }
  if (!std::isfinite(*usd)) {
    throw ConfigError(where(file, *node) + ": " + what + ": '" + std::string(key) +
                      "' must be a finite number of USD per million tokens");
  }
  if (*usd < 0) {
    throw ConfigError(where(file, *node) + ": " + what + ": '" + std::string(key) +
                      "' must not be negative");
  }
  if (*usd > kMaxUsdPerMtok) {
    std::ostringstream amount;
    amount << *usd;
    throw ConfigError(where(file, *node) + ": " + what + ": '" + std::string(key) + "' of $" +
                      amount.str() + " per million tokens is not plausible (at most $10000)");
  }
  return std::llround(*usd * 1e6);
}

// The rates written in one table, each absent when not given.
struct WrittenRates {
  std::optional<MicroUsdPerMtok> input, cached_input, cache_write_5m, cache_write_1h, output,
      reasoning;

  static WrittenRates read(const toml::table& t, const std::string& file, const std::string& what) {
    WrittenRates r;
    r.input = read_rate(t, "input", file, what);
    r.cached_input = read_rate(t, "cached_input", file, what);
    r.cache_write_5m = read_rate(t, "cache_write_5m", file, what);
    r.cache_write_1h = read_rate(t, "cache_write_1h", file, what);
    r.output = read_rate(t, "output", file, what);
    r.reasoning = read_rate(t, "reasoning", file, what);
    return r;
  }
};

ModelPrices read_model(const std::string& name, const toml::node& node, const std::string& file) {
  const std::string what = "model '" + name + "'";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what,
                              {"input", "cached_input", "cache_write_5m", "cache_write_1h", "output",
                               "reasoning", "long_context"});
  ModelPrices m;
  m.model = name;
  m.source = where(file, node);

  const WrittenRates base = WrittenRates::read(t, file, what);
  for (std::string_view key : {std::string_view("input"), std::string_view("output")}) {
    if (t.get(key) == nullptr) {
      throw ConfigError(m.source + ": " + what + " has no '" + std::string(key) +
                        "' price (USD per million tokens)");
    }
  }
  m.base.input = *base.input;
  m.base.output = *base.output;
  m.base.reasoning = base.reasoning.value_or(m.base.output);
  m.base.cached_input = base.cached_input.value_or(m.base.input);
  m.base.cache_write_5m = base.cache_write_5m.value_or(m.base.input);
  m.base.cache_write_1h = base.cache_write_1h.value_or(m.base.input);

  if (const toml::node* lc_node = t.get("long_context")) {
    const std::string lc_what = what + " long_context";
    const toml::table& lc = detail::expect_table(*lc_node, file, lc_what);
    detail::reject_unknown_keys(lc, file, lc_what,
                                {"above_input_tokens", "input", "cached_input", "cache_write_5m",
                                 "cache_write_1h", "output", "reasoning"});
    ModelPrices::LongContext tier;
    tier.above_input_tokens = detail::required_positive_integer(lc, "above_input_tokens", file, lc_what);
    const WrittenRates written = WrittenRates::read(lc, file, lc_what);
    Rates& r = tier.rates;
    r.input = written.input.value_or(m.base.input);
    r.output = written.output.value_or(m.base.output);
    // Reasoning is billed as output: when the tier raises output, reasoning
    // follows unless the tier prices it apart.
    r.reasoning = written.reasoning ? *written.reasoning
                                    : (written.output ? r.output : m.base.reasoning);
    // A cache rate the base wrote carries over; one the base left at "no
    // discount" stays at no discount, i.e. the tier's own input rate.
    auto cache_rate = [&](const std::optional<MicroUsdPerMtok>& tier_rate,
                          const std::optional<MicroUsdPerMtok>& base_rate, MicroUsdPerMtok base_value) {
      if (tier_rate) return *tier_rate;
      return base_rate ? base_value : r.input;
    };
    r.cached_input = cache_rate(written.cached_input, base.cached_input, m.base.cached_input);
    r.cache_write_5m = cache_rate(written.cache_write_5m, base.cache_write_5m, m.base.cache_write_5m);
    r.cache_write_1h = cache_rate(written.cache_write_1h, base.cache_write_1h, m.base.cache_write_1h);
    m.long_context = tier;
  }
  return m;
}

// 128-bit sums of tokens × rates (GCC and Clang; __extension__ keeps -Wpedantic quiet).
__extension__ typedef __int128 Int128;

}  // namespace

const Rates& ModelPrices::rates_for(std::int64_t total_input) const {
  if (long_context && total_input > long_context->above_input_tokens) return long_context->rates;
  return base;
}

MicroUsd ModelPrices::cost(const Usage& usage) const {
  const Rates& r = rates_for(usage.total_input());
  // Micro-dollars × tokens: 128 bits, so a 2^40-token count at a $10,000 rate
  // cannot overflow before the one rounding (the quotient fits in 64 bits).
  const Int128 sum = static_cast<Int128>(usage.input_tokens) * r.input +
                       static_cast<Int128>(usage.cached_input_tokens) * r.cached_input +
                       static_cast<Int128>(usage.cache_write_5m_tokens) * r.cache_write_5m +
                       static_cast<Int128>(usage.cache_write_1h_tokens) * r.cache_write_1h +
                       static_cast<Int128>(usage.output_tokens) * r.output +
                       static_cast<Int128>(usage.reasoning_tokens) * r.reasoning;
  return static_cast<MicroUsd>((sum + 500'000) / 1'000'000);
}

const ModelPrices* PriceCatalog::find(std::string_view model) const {
  auto it = models_.find(model);
  return it == models_.end() ? nullptr : &it->second;
}

Result<MicroUsd> PriceCatalog::cost(std::string_view model, const Usage& usage) const {
  const ModelPrices* prices = find(model);
  if (prices == nullptr) {
    return Status::not_found(source_name_ + ": model '" + std::string(model) +
                             "' has no price in the catalog (version " + version_ +
                             "); a call without a price is not billed as $0");
  }
  return prices->cost(usage);
}

Result<PriceCatalog> PriceCatalog::parse(std::string_view text, std::string source_name) {
  const std::string& file = source_name;
  try {
    toml::table root = toml::parse(text, source_name);
    detail::reject_unknown_keys(root, file, "the price catalog", {"version", "models"});
    PriceCatalog catalog;
    catalog.source_name_ = source_name;
    const toml::node* version = root.get("version");
    if (version == nullptr) {
      throw ConfigError(file + ":1:1: the price catalog needs a 'version' (stored with every priced call)");
    }
    catalog.version_ = detail::required_string(root, "version", file, "the price catalog");
    if (catalog.version_.empty()) {
      throw ConfigError(where(file, *version) + ": the price catalog: 'version' must not be empty");
    }
    if (const toml::node* models = root.get("models")) {
      for (const auto& [key, node] : detail::expect_table(*models, file, "[models]")) {
        std::string name(key.str());
        catalog.models_.emplace(name, read_model(name, node, file));
      }
    }
    return catalog;
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::invalid_argument(file + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                                    ": " + std::string(e.description()));
  } catch (const ConfigError& e) {
    return Status::invalid_argument(e.what());
  }
}

Result<PriceCatalog> PriceCatalog::load(const std::string& path) {
  auto text = detail::read_text_file(path, path + ": cannot open the price catalog");
  if (!text.ok()) return text.status();
  return parse(*text, path);
}

}  // namespace switchboard
