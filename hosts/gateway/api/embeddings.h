// OpenAI's POST /v1/embeddings, as the openai SDK sends and reads it
// (embeddings.create; the Node SDK asks for base64 unless told otherwise).
// Pure translation, no I/O, as api.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "api/api.h"
#include "switchboard/switchboard.h"

namespace switchboard::gateway {

// An embeddings request, parsed.
//   model            "auto", a tier or a model name (as asked; the gateway checks it)
//   input            a string, an array of strings, an array of token ids, or
//                    an array of token-id arrays -> request.texts / request.tokens;
//                    at most 2048 inputs, none empty, token ids whole numbers >= 0
//   encoding_format  "float" (default) or "base64" (little-endian float32)
//   dimensions       a whole number >= 1 -> request.dimensions
//   user             -> request.user
// Null counts as absent; any other field is a 400 naming it.
struct ParsedEmbeddings {
  std::string model;
  EmbeddingRequest request;
  bool base64 = false;
};

// The largest number of inputs one request may carry (OpenAI's limit).
constexpr std::size_t kMaxEmbeddingInputs = 2048;

ApiResult<ParsedEmbeddings> parse_openai_embeddings(std::string_view body,
                                                    int max_json_depth = kDefaultMaxJsonDepth);

// The answer: {"object":"list","data":[{"object":"embedding","index":i,
// "embedding":[...] or "<base64>"}],"model":model,"usage":{"prompt_tokens":N,
// "total_tokens":N}}; floats written in their shortest exact form.
std::string render_embeddings(const EmbeddingResponse& response, const std::string& model, bool base64);

}  // namespace switchboard::gateway
