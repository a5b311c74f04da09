#include "cost/estimate.h"

#include <algorithm>

#include "switchboard/derive_step.h"

namespace switchboard {

std::int64_t estimate_tokens(std::string_view text) {
  return detail::estimate_tokens_for_bytes(static_cast<std::int64_t>(text.size()));
}

namespace {

// estimate_tokens of each piece of text a block sends.
std::int64_t estimate_block_tokens(const ContentBlock& b) {
  switch (b.type) {
    case ContentBlock::Type::kText:
    case ContentBlock::Type::kThinking:
    case ContentBlock::Type::kRefusal:
      return estimate_tokens(b.text);
    case ContentBlock::Type::kToolUse:
      return estimate_tokens(b.tool_call.name) + estimate_tokens(b.tool_call.arguments_json);
    case ContentBlock::Type::kToolResult: {
      std::int64_t n = 0;
      for (const ContentBlock& inner : b.content) n += estimate_block_tokens(inner);
      return n;
    }
    case ContentBlock::Type::kOpaque:
      return estimate_tokens(b.opaque_json);
    default:
      return 0;  // media: the provider's to say
  }
}

}  // namespace

std::int64_t estimate_input_tokens(const ModelRequest& request) {
  std::int64_t n = 0;
  for (const Message& m : request.messages) {
    for (const ContentBlock& b : m.content) n += estimate_block_tokens(b);
  }
  for (const ToolSpec& t : request.tools) {
    n += estimate_tokens(t.name) + estimate_tokens(t.description) +
         (t.opaque_json.empty() ? estimate_tokens(t.parameters_json) : estimate_tokens(t.opaque_json));
  }
  return n;
}

}  // namespace switchboard

namespace switchboard::detail {

std::int64_t estimate_tokens_for_bytes(std::int64_t bytes) { return bytes <= 0 ? 0 : (bytes + 2) / 3; }

std::int64_t estimate_embedding_tokens(const EmbeddingRequest& request) {
  std::int64_t n = 0;
  for (const std::string& text : request.texts) n += estimate_tokens(text);
  for (const std::vector<std::int64_t>& ids : request.tokens) n += static_cast<std::int64_t>(ids.size());
  return n;
}

std::int64_t input_tokens_of(const Step& step) {
  if (step.input_tokens) return *step.input_tokens;
  if (step.prompt) return estimate_tokens(*step.prompt);
  return 0;
}

Step step_for_ledger(Step step, const Config& config) {
  step.input_tokens = input_tokens_of(step);
  if (!config.ledger.keep_prompts) step.prompt.reset();
  return step;
}

void estimate_cost(const ModelSpec& model, const Step& step, std::int64_t input_tokens,
                   Decision& decision, std::int64_t cached_tokens) {
  std::int64_t output = model.default_output_tokens;
  if (step.expected_output_tokens) {
    output = *step.expected_output_tokens;
  } else if (decision.max_output_tokens) {
    output = *decision.max_output_tokens;
  }
  decision.estimated_input_tokens = input_tokens;
  decision.estimated_output_tokens = output;
  const std::int64_t cached = std::clamp<std::int64_t>(cached_tokens, 0, input_tokens);
  // Sum before rounding, as estimate_call_cost does.
  const std::int64_t micro_times_million = (input_tokens - cached) * model.price.input +
                                           cached * model.price.cached_input + output * model.price.output;
  decision.estimated_cost = (micro_times_million + 500'000) / 1'000'000;
}

MicroUsd worst_case_cost(const Config& config, const Decision& decision) {
  const ModelSpec& model = *config.find_model(decision.model);
  const std::int64_t output = decision.max_output_tokens.value_or(model.default_output_tokens);
  MicroUsd cost = estimate_call_cost(model, decision.estimated_input_tokens, output) * decision.fanout;
  if (decision.fanout > 1) {
    const ModelSpec& aggregator = *config.find_model(config.find_tier(decision.aggregate)->models.front());
    cost += estimate_call_cost(aggregator, decision.estimated_input_tokens + output * decision.fanout,
                               decision.max_output_tokens.value_or(aggregator.default_output_tokens));
  }
  return cost;
}

}  // namespace switchboard::detail

namespace switchboard {

MicroUsd estimate_call_cost(const ModelSpec& model, std::int64_t input_tokens,
                            std::int64_t output_tokens) {
  // Sum before rounding so two small parts are not each rounded away.
  const std::int64_t micro_times_million =
      input_tokens * model.price.input + output_tokens * model.price.output;
  return (micro_times_million + 500'000) / 1'000'000;
}

}  // namespace switchboard
