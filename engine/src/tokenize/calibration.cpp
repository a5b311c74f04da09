// calibrate_tokens (switchboard/calibration.h): a model's token factor from
// the ratios of billed to counted input tokens.
#include "switchboard/calibration.h"

#include <algorithm>
#include <cmath>

namespace switchboard {

TokenCalibration calibrate_tokens(const std::vector<TokenSample>& samples, double floor) {
  std::vector<double> ratios;
  ratios.reserve(samples.size());
  for (const TokenSample& s : samples) {
    if (s.counted > 0) ratios.push_back(static_cast<double>(s.reported) / static_cast<double>(s.counted));
  }
  TokenCalibration c;
  c.calls = static_cast<std::int64_t>(ratios.size());
  c.factor = floor;
  if (ratios.empty()) return c;
  std::sort(ratios.begin(), ratios.end());
  // Nearest rank: the smallest ratio with at least p% of the ratios at or below it.
  const auto rank = [&](double p) {
    const auto k = static_cast<size_t>(std::ceil(p * static_cast<double>(ratios.size())));
    return ratios[std::clamp<size_t>(k, 1, ratios.size()) - 1];
  };
  c.p50 = rank(0.50);
  c.p99 = rank(0.99);
  c.factor = std::max(c.p99, floor);
  return c;
}

std::map<std::string, TokenCalibration> calibrate_ledger(const Config& config,
                                                         const std::vector<CostRecord>& records) {
  std::map<std::string, std::vector<TokenSample>> samples;
  for (auto r = records.rbegin(); r != records.rend(); ++r) {  // newest first
    if (r->status != CallStatus::kOk || r->usage_estimated || r->counted_input_tokens <= 0) continue;
    const ModelSpec* model = config.find_model(r->model);
    if (model == nullptr || !model->counted_with_stand_in()) continue;
    std::vector<TokenSample>& s = samples[r->model];
    if (s.size() < kCalibrationCalls) s.push_back(TokenSample{r->usage.total_input(), r->counted_input_tokens});
  }
  std::map<std::string, TokenCalibration> out;
  for (const auto& [name, s] : samples) out[name] = calibrate_tokens(s, config.find_model(name)->calibration_floor);
  return out;
}

void apply_token_factors(Config& config, const std::map<std::string, TokenCalibration>& factors) {
  for (auto& [name, model] : config.models) {
    if (!model.counted_with_stand_in()) continue;
    model.token_factor = model.calibration_floor;
    if (auto f = factors.find(name); f != factors.end()) {
      model.token_factor = std::max(model.calibration_floor, f->second.factor);
    }
  }
}

}  // namespace switchboard
