#include "token_estimates.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace switchboard::cli {

std::vector<TokenEstimateRow> token_estimates(const Config& config, const std::vector<CostRecord>& records) {
  std::map<std::string, std::vector<std::pair<std::int64_t, std::int64_t>>> by_model;  // (estimate, bill)
  for (const CostRecord& r : records) {
    if (r.status != CallStatus::kOk || r.usage_estimated || r.counted_input_tokens <= 0) continue;
    const ModelSpec* model = config.find_model(r.model);
    if (model == nullptr || r.usage.total_input() <= 0) continue;
    const auto estimate =
        static_cast<std::int64_t>(std::ceil(static_cast<double>(r.counted_input_tokens) * model->token_factor));
    by_model[r.model].emplace_back(estimate, r.usage.total_input());
  }
  std::vector<TokenEstimateRow> rows;
  for (const auto& [name, calls] : by_model) {
    TokenEstimateRow row;
    row.model = name;
    row.factor = config.find_model(name)->token_factor;
    std::vector<double> off;
    for (const auto& [estimate, bill] : calls) {
      row.calls++;
      row.estimated += estimate;
      row.billed += bill;
      const double o = static_cast<double>(estimate - bill) / static_cast<double>(bill);
      off.push_back(o);
      if (estimate < bill) {
        row.under++;
        row.worst_under = std::min(row.worst_under, o);
      }
    }
    std::sort(off.begin(), off.end());
    row.median_off = off[(off.size() - 1) / 2];
    rows.push_back(std::move(row));
  }
  return rows;
}

void print_token_estimates(const std::vector<TokenEstimateRow>& rows) {
  if (rows.empty()) return;
  std::printf("\ninput tokens: the engine's estimate against the bill, per model\n");
  std::printf("%-24s %7s %12s %12s %7s %8s %8s %11s\n", "model", "calls", "billed", "estimated", "factor",
              "off p50", "under", "worst under");
  for (const TokenEstimateRow& r : rows) {
    std::printf("%-24s %7lld %12lld %12lld %7.3f %+7.1f%% %7.1f%% %+10.1f%%\n", r.model.c_str(),
                static_cast<long long>(r.calls), static_cast<long long>(r.billed),
                static_cast<long long>(r.estimated), r.factor, 100.0 * r.median_off,
                100.0 * static_cast<double>(r.under) / static_cast<double>(r.calls), 100.0 * r.worst_under);
  }
}

nlohmann::json token_estimates_json(const std::vector<TokenEstimateRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const TokenEstimateRow& r : rows) {
    out.push_back({{"model", r.model},
                   {"calls", r.calls},
                   {"billed_input_tokens", r.billed},
                   {"estimated_input_tokens", r.estimated},
                   {"factor", r.factor},
                   {"median_off", r.median_off},
                   {"under", r.under},
                   {"worst_under", r.worst_under}});
  }
  return out;
}

}  // namespace switchboard::cli
