/// @file
/// Calibrated token factors for models whose tokenizer is not public
/// (ModelSpec::counted_with_stand_in(): Claude, Gemini, OpenAI-compatible):
/// their count_request_tokens() is the stand-in tokenizer's count times
/// ModelSpec::token_factor, and the factor is learned from what the provider
/// reported for past calls.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "switchboard/config.h"
#include "switchboard/ledger.h"
#include "switchboard/status.h"

namespace switchboard {

/// One call: the input tokens the provider reported, and the engine's own
/// count of the same request with a factor of 1 (count_request_tokens of a
/// copy of the ModelSpec whose token_factor is 1.0).
struct TokenSample {
  std::int64_t reported = 0;  ///< usage.input_tokens as billed (cached and cache writes included)
  std::int64_t counted = 0;   ///< the engine's unscaled count; a sample with 0 is skipped
};

/// A model's factor from its samples.
struct TokenCalibration {
  std::int64_t calls = 0;  ///< samples used (counted > 0)
  double p50 = 0;          ///< median of reported ÷ counted; 0 without samples
  double p99 = 0;          ///< 99th percentile (nearest rank) of reported ÷ counted; 0 without samples
  double factor = 0;       ///< max(p99, floor): what token_factor becomes
};

/// The calibration of `samples` with least factor `floor`: the ratio
/// reported ÷ counted of each sample, its median and 99th percentile, and
/// the factor max(p99, floor), so at least 99% of these calls would have
/// been estimated at or above their bill. Without samples, factor = floor.
/// Thread-safe; reads only its arguments.
TokenCalibration calibrate_tokens(const std::vector<TokenSample>& samples, double floor);

/// How many of a model's most recent answered calls calibrate_ledger uses.
inline constexpr size_t kCalibrationCalls = 1000;

/// The calibration of every model of `config` counted with a stand-in
/// (ModelSpec::counted_with_stand_in) from `records` (a ledger, oldest
/// first): the samples of its last kCalibrationCalls answered calls (status
/// ok, usage the provider's own, counted_input_tokens > 0), billed =
/// usage.total_input(), each with the model's calibration_floor. A model
/// with no such call is left out. Thread-safe; reads only its arguments.
std::map<std::string, TokenCalibration> calibrate_ledger(const Config& config,
                                                         const std::vector<CostRecord>& records);

/// Sets each stand-in model's token_factor in `config` to the larger of its
/// calibration_floor and the factor stored for it in `factors` (models not
/// in `factors` keep their floor; models counted exactly keep 1). What a host
/// does at start-up, before building the engine and its clients, with
/// read_token_factors of its ledger.
void apply_token_factors(Config& config, const std::map<std::string, TokenCalibration>& factors);

/// Stores `factors` (model name -> calibration) in the ledger at `path` (a
/// SQLite database, or a PostgreSQL URL: is_postgres_url), replacing each
/// model's earlier row; the table is in the SQLite ledger's schema from
/// version 4 (an older ledger is migrated). Fails with not_found when there
/// is no SQLite ledger there, io_error when it cannot be written.
Status store_token_factors(const std::string& path, const std::map<std::string, TokenCalibration>& factors);

/// The factors stored in the ledger at `path`, either kind (none for a
/// ledger written before they were kept). Fails as read_ledger does.
Result<std::map<std::string, TokenCalibration>> read_token_factors(const std::string& path);

}  // namespace switchboard
