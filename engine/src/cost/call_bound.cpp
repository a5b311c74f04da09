#include "cost/call_bound.h"

#include <algorithm>

#include "switchboard/derive_step.h"
#include "switchboard/pricing.h"
#include "switchboard/tokens.h"

namespace switchboard::detail {

namespace {

__extension__ typedef __int128 Int128;

struct DearestRates {
  MicroUsdPerMtok input = 0;
  MicroUsdPerMtok output = 0;
};

void take(DearestRates& d, const Rates& r) {
  d.input = std::max({d.input, r.input, r.cached_input, r.cache_write_5m, r.cache_write_1h});
  d.output = std::max({d.output, r.output, r.reasoning});
}

DearestRates dearest(const Config& config, const ModelSpec& model) {
  DearestRates d;
  const ModelPrices* prices = config.prices ? config.prices->find(model.name) : nullptr;
  if (prices == nullptr) {
    d.input = std::max(model.price.input, model.price.cached_input);
    d.output = model.price.output;
    return d;
  }
  take(d, prices->base);
  if (prices->long_context) take(d, prices->long_context->rates);
  return d;
}

}  // namespace

std::int64_t input_token_bound(const ModelSpec& model, const ModelRequest& request) {
  const Result<std::int64_t> unscaled = count_request_tokens_unscaled(model, request);
  return input_token_bound(model, request, unscaled.ok() ? std::optional<std::int64_t>(*unscaled) : std::nullopt);
}

std::int64_t input_token_bound(const ModelSpec& model, const ModelRequest& request,
                               std::optional<std::int64_t> unscaled) {
  std::int64_t n = std::max(estimate_input_tokens(request), request.counted_input_tokens.value_or(0));
  n += kRequestOverheadTokens;
  n += kMessageOverheadTokens * static_cast<std::int64_t>(request.messages.size());
  n += kToolOverheadTokens * static_cast<std::int64_t>(request.tools.size());
  // The model's own count (its tokenizer, the provider's documented
  // overheads, a calibrated factor where no tokenizer is public) wins when
  // it is larger: text that packs more tokens per byte than the estimate
  // assumes (emoji, rare scripts, long digit runs) cannot slip past a cap.
  if (unscaled) n = std::max(n, scale_token_count(model, *unscaled));
  return n;
}

MicroUsd call_cost_bound(const Config& config, const ModelSpec& model, std::int64_t input_tokens,
                         std::int64_t output_cap) {
  const DearestRates d = dearest(config, model);
  const Int128 sum = static_cast<Int128>(std::max<std::int64_t>(input_tokens, 0)) * d.input +
                     static_cast<Int128>(std::max<std::int64_t>(output_cap, 0)) * d.output;
  return static_cast<MicroUsd>((sum + 999'999) / 1'000'000);  // rounded up: a bound
}

std::int64_t affordable_output_cap(const Config& config, const ModelSpec& model, std::int64_t input_tokens,
                                   MicroUsd amount, std::int64_t ceiling) {
  const DearestRates d = dearest(config, model);
  // call_cost_bound(cap) <= amount  <=>  input × in + cap × out <= amount × 10^6.
  const Int128 room = static_cast<Int128>(amount) * 1'000'000 -
                      static_cast<Int128>(std::max<std::int64_t>(input_tokens, 0)) * d.input;
  if (room < 0) return -1;
  if (d.output == 0) return std::max<std::int64_t>(ceiling, 0);
  const Int128 cap = room / d.output;
  return static_cast<std::int64_t>(std::min<Int128>(cap, std::max<std::int64_t>(ceiling, 0)));
}

}  // namespace switchboard::detail
