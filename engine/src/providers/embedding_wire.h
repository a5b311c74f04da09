// EmbeddingWire: what one provider's embeddings API looks like, without the
// HTTP (as WireFormat is for model calls; the client, http_model_client.cpp,
// does the HTTP side and turns statuses into errors).
//   OpenAI, OpenAI-compatible  POST {endpoint}/embeddings {model, input (an
//       array of strings or of token-id arrays), encoding_format "float",
//       dimensions, user}; the answer's data[].embedding by data[].index (a
//       base64 float32 string is read too), usage.prompt_tokens (a server
//       that reports none: the engine's estimate).
//   Gemini  POST {endpoint}/models/{id}:batchEmbedContents {requests: [{model,
//       content: {parts: [{text}]}, outputDimensionality}]}; the answer's
//       embeddings[].values in order. Gemini reports no token count: the
//       usage is the engine's estimate (usage_estimated). Token-id inputs and
//       `user` have no place in it: the model is refused ("cannot take ...").
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "providers/http_transport.h"
#include "switchboard/config.h"
#include "switchboard/embedding.h"
#include "switchboard/status.h"

namespace switchboard {

// One provider's embeddings request and answer, bound to one model and key.
// Immutable once built; thread-safe.
class EmbeddingWire {
 public:
  virtual ~EmbeddingWire() = default;
  // The HTTP request; upstream "cannot take ..." when the API cannot express
  // part of `request` (the dispatcher then tries the tier's next model).
  virtual Result<HttpRequest> build_request(const EmbeddingRequest& request) const = 0;
  // A 2xx JSON body as the answer to `request` (upstream when it cannot be
  // read, or holds another number of vectors than inputs).
  virtual Result<EmbeddingResponse> parse_response(std::string_view body, const EmbeddingRequest& request) const = 0;
};

// The wire for an embedding model's provider; null for a provider without an
// embeddings API (anthropic).
std::unique_ptr<EmbeddingWire> make_embedding_wire(const ModelSpec& model, std::string api_key);

}  // namespace switchboard
