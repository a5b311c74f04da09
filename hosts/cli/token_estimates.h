// How far the engine's input-token estimates were from the bills, per model:
// `switchboard report` prints it after its tables, `switchboard calibrate`
// after storing new factors.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "switchboard/config.h"
#include "switchboard/ledger.h"

namespace switchboard::cli {

// One model's answered calls that carry the engine's count
// (CostRecord::counted_input_tokens > 0, usage the provider's own).
struct TokenEstimateRow {
  std::string model;
  std::int64_t calls = 0;
  std::int64_t billed = 0;     // usage.total_input(), summed
  std::int64_t estimated = 0;  // ceil(counted × the model's token_factor in the config), summed
  double factor = 1.0;         // that token_factor
  std::int64_t under = 0;      // calls estimated below their bill
  double median_off = 0;       // median of (estimate - bill) / bill
  double worst_under = 0;      // the most negative (estimate - bill) / bill, 0 when none is under
};

// The rows of `records`, by model name; models of `config` only.
std::vector<TokenEstimateRow> token_estimates(const Config& config, const std::vector<CostRecord>& records);

// The rows as a table under a title line; prints nothing for no rows.
void print_token_estimates(const std::vector<TokenEstimateRow>& rows);

// The rows as a JSON array of objects with the same fields.
nlohmann::json token_estimates_json(const std::vector<TokenEstimateRow>& rows);

}  // namespace switchboard::cli
