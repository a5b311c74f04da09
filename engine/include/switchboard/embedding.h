/// @file
/// Embeddings: inputs in, one vector per input out, through the same models,
/// budgets and ledger as model calls.
///
/// An embedding model is a model with `kind = "embedding"` and its
/// `dimensions` ([models.NAME]), priced per million input tokens in the price
/// catalog (`output = 0`: it produces no tokens), in a tier of embedding
/// models only; `[embeddings] tier` names the tier "auto" uses (default: the
/// first such tier by name). The rules never choose one, and a chat call
/// never reaches one. Dispatcher::embed calls it: admitted against the
/// budgets, retried and fallen back along its tier as chat calls are, one
/// CostRecord per attempt.
///
/// Adapters: OpenAI and OpenAI-compatible `POST /embeddings`, Gemini
/// `batchEmbedContents`, and the offline sim (unit vectors derived from a
/// SHA-256 of each input), which serves a model whose key is unset, as it
/// does chat models. Anthropic has no embeddings API: its models cannot be
/// embedding models.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "switchboard/cancel.h"
#include "switchboard/pricing.h"

namespace switchboard {

/// One embeddings call: its inputs, in order, as text or as token ids.
struct EmbeddingRequest {
  /// The inputs as text. Exactly one of `texts` and `tokens` is non-empty.
  std::vector<std::string> texts;
  /// The inputs as token ids of the model's own tokenizer (OpenAI's shape);
  /// only OpenAI, OpenAI-compatible and sim models take them: another
  /// adapter refuses the model (upstream "cannot take ...") and the next
  /// model of the tier is tried.
  std::vector<std::vector<std::int64_t>> tokens;
  /// The vectors' length; unset: the model's own (ModelSpec::dimensions). A
  /// model refuses a request for more than its own.
  std::optional<std::int64_t> dimensions;
  std::string user;   ///< the end user's id (OpenAI `user`); "" none
  CallBounds bounds;  ///< the call's deadline and cancellation, as for a model call

  /// The number of inputs.
  std::size_t size() const { return texts.empty() ? tokens.size() : texts.size(); }
};

/// An embeddings answer.
struct EmbeddingResponse {
  std::string model;                        ///< the model that answered, as the provider names it
  std::vector<std::vector<float>> vectors;  ///< one per input, in the request's order
  Usage usage;                              ///< input_tokens: what the call is billed for
  /// The provider reported no token count (Gemini's batchEmbedContents):
  /// usage is the engine's estimate (one token per three bytes of each
  /// input), and the ledger record says so.
  bool usage_estimated = false;
  std::chrono::milliseconds latency{0};  ///< call started (connect included) to last byte
  int http_status = 0;                   ///< 0 when no HTTP was involved (sim)
};

}  // namespace switchboard
