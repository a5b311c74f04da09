/// @file
/// The price catalog and exact call costs.
///
/// A catalog is a TOML file (prices.toml) with a `version` that every ledger
/// record priced with it stores, and one table per model:
///
/// ```toml
///   version = "2026-11-01"
///   [models.claude-sonnet-4-5]
///   # Anthropic pricing page (anthropic.com/pricing), checked 2026-11-01
///   input = 3.00             # USD per million tokens
///   cached_input = 0.30      # cache reads
///   cache_write_5m = 3.75    # Anthropic: 5-minute cache writes
///   cache_write_1h = 6.00    #            1-hour cache writes
///   output = 15.00
///   reasoning = 15.00        # optional: defaults to output
///   [models.claude-sonnet-4-5.long_context]   # or an inline table on one line
///   above_input_tokens = 200_000
///   input = 6.00
///   cached_input = 0.60
///   cache_write_5m = 7.50
///   cache_write_1h = 12.00
///   output = 22.50
/// ```
///
/// `input` and `output` are required. Omitted cache rates default to the input
/// rate (no discount), an omitted reasoning rate to the output rate. Omitted
/// long-context rates keep the base rates, with two refinements so a tier that
/// raises a rate does not leave its companions at the cheaper base: reasoning
/// follows the long-context output when that is given, and a cache rate the base
/// left at "no discount" stays at no discount (the long-context input).
/// Prices are USD per million tokens, at most $10,000, read into integer
/// micro-dollars (llround); unknown keys are errors, every error names
/// "file:line:column". A model the catalog does not price is an error wherever
/// a price is needed, never $0.

#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "switchboard/money.h"
#include "switchboard/status.h"

namespace switchboard {

/// Token counts of one call, normalised so the buckets do not overlap (see
/// usage.h for how each provider's figures map here).
struct Usage {
  std::int64_t input_tokens = 0;           ///< uncached input, billed at the input rate
  std::int64_t cached_input_tokens = 0;    ///< input read from a cache
  std::int64_t cache_write_5m_tokens = 0;  ///< input written to a 5-minute cache
  std::int64_t cache_write_1h_tokens = 0;  ///< input written to a 1-hour cache
  std::int64_t output_tokens = 0;          ///< visible output, reasoning excluded
  std::int64_t reasoning_tokens = 0;       ///< hidden reasoning ("thinking") output

  /// Every input token, whatever its rate: what long-context thresholds compare.
  std::int64_t total_input() const {
    return input_tokens + cached_input_tokens + cache_write_5m_tokens + cache_write_1h_tokens;
  }
  /// Equal when every count is equal.
  bool operator==(const Usage&) const = default;
};

/// Rates in micro-dollars per million tokens.
struct Rates {
  MicroUsdPerMtok input = 0;           ///< uncached input
  MicroUsdPerMtok cached_input = 0;    ///< input read from a cache
  MicroUsdPerMtok cache_write_5m = 0;  ///< input written to a 5-minute cache
  MicroUsdPerMtok cache_write_1h = 0;  ///< input written to a 1-hour cache
  MicroUsdPerMtok output = 0;          ///< visible output
  MicroUsdPerMtok reasoning = 0;       ///< hidden reasoning output
};

/// One model's entry in the catalog ([models.NAME]).
struct ModelPrices {
  std::string model;  ///< NAME in [models.NAME]
  Rates base;         ///< the rates up to the long-context threshold, or always without one
  /// Once a request's total input exceeds `above_input_tokens`, the whole
  /// request is billed at `rates` (as Anthropic and Google price long context).
  struct LongContext {
    std::int64_t above_input_tokens = 0;  ///< the threshold on a request's total input
    Rates rates;                          ///< the rates above it
  };
  std::optional<LongContext> long_context;  ///< unset: the model has no long-context rates
  std::string source;  ///< "file:line:column" of the entry, for messages

  /// The rates that apply to a request with `total_input` tokens.
  const Rates& rates_for(std::int64_t total_input) const;
  /// Exact cost: each bucket × its rate, summed (in 128 bits) before one
  /// rounding half up. REQUIRES: counts are non-negative (parse_usage ensures it).
  MicroUsd cost(const Usage& usage) const;
};

/// A loaded price catalog (see the file comment).
class PriceCatalog {
 public:
  /// Reads and parses the catalog file at `path`.
  static Result<PriceCatalog> load(const std::string& path);
  /// Parses catalog text; `source_name` names it in messages.
  static Result<PriceCatalog> parse(std::string_view text, std::string source_name);

  /// The catalog's `version`, stored with every ledger record priced with it.
  const std::string& version() const { return version_; }
  /// The prices of `model`, or nullptr when the catalog does not price it.
  const ModelPrices* find(std::string_view model) const;
  /// Every priced model, by name.
  const std::map<std::string, ModelPrices, std::less<>>& models() const { return models_; }
  /// Cost of `usage` on `model`; an error naming the catalog when unpriced.
  Result<MicroUsd> cost(std::string_view model, const Usage& usage) const;

 private:
  std::string version_;
  std::string source_name_;
  std::map<std::string, ModelPrices, std::less<>> models_;
};

}  // namespace switchboard
