#include "rules/decision_resolve.h"

#include <cstdint>
#include <cstring>

namespace switchboard::detail {

namespace {

// Names from the rules are printed in errors: keep them printable and short.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

// Whether any of the eight bytes of `w` is a control byte (below 0x20, or
// 0x7f): each "has a byte less than n" test is exact for n <= 0x80.
bool has_control_byte(std::uint64_t w) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull, kHighs = 0x8080808080808080ull;
  const std::uint64_t del = w ^ (0x7f * kOnes);
  return ((((w - 0x20 * kOnes) & ~w) | ((del - kOnes) & ~del)) & kHighs) != 0;
}

// A reason is free text: control bytes become spaces. Eight bytes at a time
// are looked at first: most reasons have none.
void sanitize_reason(std::string& s) {
  const auto fix = [](char& c) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = ' ';
  };
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, s.data() + i, sizeof w);
    if (!has_control_byte(w)) continue;
    for (size_t j = i; j < i + 8; ++j) fix(s[j]);
  }
  for (; i < s.size(); ++i) fix(s[i]);
}

}  // namespace

Result<const ModelSpec*> resolve_decision(const Config& config, std::string_view chunk_name,
                                          const RawDecision& raw, Decision& out) {
  auto fail = [&](const std::string& what) {
    return Status::rule_error(std::string(chunk_name) + ": classify returned " + what);
  };

  const Tier* tier = nullptr;
  const ModelSpec* model = nullptr;
  if (raw.name) {
    tier = config.find_tier(*raw.name);
    if (tier == nullptr) model = config.find_model(*raw.name);
    if (tier == nullptr && model == nullptr) {
      return fail("'" + printable(*raw.name) + "', which is neither a tier nor a model");
    }
  } else {
    if (!raw.tier && !raw.model) return fail("a table with neither 'tier' nor 'model'");
    if (raw.tier && (tier = config.find_tier(*raw.tier)) == nullptr) {
      return fail("unknown tier '" + printable(*raw.tier) + "'");
    }
    if (raw.model && (model = config.find_model(*raw.model)) == nullptr) {
      return fail("unknown model '" + printable(*raw.model) + "'");
    }
  }
  if (tier == nullptr) tier = config.tier_of(model->name);
  if (model == nullptr) model = config.find_model(tier->models.front());
  if (model->kind == ModelKind::kEmbedding) {
    const std::string_view named = raw.name ? *raw.name : raw.model ? *raw.model : *raw.tier;
    return fail("'" + printable(named) + "', which serves embeddings; classify chooses chat models");
  }
  // A chat model with an embedding tier. The tier's first model is most
  // often the chosen one, already found.
  const ModelSpec* tier_first = tier->models.front() == model->name ? model : config.find_model(tier->models.front());
  if (tier_first->kind == ModelKind::kEmbedding) {
    return fail("tier '" + tier->name + "', which serves embeddings; classify chooses chat models");
  }

  out.reasoning = Reasoning::kDefault;
  if (raw.reasoning) {
    std::optional<Reasoning> r = parse_reasoning(*raw.reasoning);
    if (!r) return fail("reasoning '" + printable(*raw.reasoning) + "'; expected low, medium or high");
    out.reasoning = *r;
  }
  out.reasoning_pinned = raw.pin_reasoning.value_or(false);
  out.max_output_tokens.reset();
  if (raw.max_output_tokens) {
    if (*raw.max_output_tokens <= 0 || *raw.max_output_tokens > model->context_window) {
      return fail("max_output_tokens = " + std::to_string(*raw.max_output_tokens) +
                  "; expected 1 to the model's context window (" +
                  std::to_string(model->context_window) + ")");
    }
    out.max_output_tokens = raw.max_output_tokens;
  }
  out.fanout = 1;
  if (raw.fanout) {
    if (*raw.fanout < 1 || *raw.fanout > config.max_fanout) {
      return fail("fanout = " + std::to_string(*raw.fanout) + "; expected 1 to " +
                  std::to_string(config.max_fanout) + " ([routing] max_fanout)");
    }
    out.fanout = static_cast<int>(*raw.fanout);
  }
  out.aggregate.clear();
  if (raw.aggregate) {
    const Tier* aggregate = config.find_tier(*raw.aggregate);
    if (aggregate == nullptr) return fail("aggregate = unknown tier '" + printable(*raw.aggregate) + "'");
    if (config.find_model(aggregate->models.front())->kind == ModelKind::kEmbedding) {
      return fail("aggregate = '" + printable(*raw.aggregate) + "', a tier of embedding models");
    }
    out.aggregate = *raw.aggregate;
  } else if (out.fanout > 1) {
    out.aggregate = tier->name;  // the branches' own tier writes the final answer
  }
  out.tier = tier->name;
  out.model = model->name;
  if (raw.reason) {
    out.reason = *raw.reason;
    sanitize_reason(out.reason);
  } else {
    out.reason.clear();
  }
  out.error.reset();
  return model;
}

const ModelSpec* fall_back(const Config& config, const Workload& workload, std::string error,
                           Decision& out) {
  const Tier* t = config.find_tier(workload.fallback_tier);
  out.tier = t->name;
  out.model = t->models.front();
  out.reasoning = Reasoning::kDefault;
  out.reasoning_pinned = false;
  out.max_output_tokens.reset();
  out.fanout = 1;
  out.aggregate.clear();
  out.reason = "fallback tier: the rules failed";
  out.error = std::move(error);
  return config.find_model(out.model);
}

}  // namespace switchboard::detail
