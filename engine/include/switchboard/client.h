/// @file
/// ModelClient: one model behind one interface, whatever the provider.
///
/// The engine builds one client per configured model (make_model_client): the
/// native adapters (OpenAI Chat Completions, Anthropic Messages, Gemini
/// generateContent, any OpenAI-compatible server) over one libcurl transport,
/// or the offline `sim` provider when the model's key variable is unset. A host
/// may supply its own client for any model (ModelClients::set); the call path
/// only ever asks for a client by model name, never for a provider string.
///
/// Failures are values. A failed call's Status says what to do next:
/// ```text
///   unavailable   429, 5xx, timeouts, refused connections, a stream that broke
///                 before its final event: retrying the same model may help
///                 (retry_after() holds the provider's Retry-After, if any);
///   upstream      the provider answered with something unusable or refused
///                 the request (4xx, malformed JSON, wrong content type, a
///                 body over the size cap), or the adapter refused the model
///                 for this request because it cannot express part of it
///                 (an image for a text-only model: "cannot take ..."):
///                 retrying the same model will not help, the next model in
///                 the tier may;
///   invalid_argument  the request itself is wrong (no messages).
/// ```
/// No message, log line or error ever contains an API key.

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/config.h"
#include "switchboard/embedding.h"
#include "switchboard/request.h"
#include "switchboard/status.h"

namespace switchboard {

/// Called on the calling thread; must not throw.
using ChunkHandler = std::function<void(const StreamChunk&)>;

/// Delivers a whole answer through `on_chunk` as a stream of it would have
/// come: kStart, then block by block, each with its index: thinking (then its
/// signature), text (then a signature on it), refusal, redacted thinking and
/// opaque items whole, tool calls (a signature on the call, the start, then
/// the arguments in one piece). Media blocks of an answer have no chunk.
/// For clients that cannot stream (the default ModelClient::stream) and
/// servers that answer a stream request whole.
void deliver_as_chunks(const ModelResponse& response, const ChunkHandler& on_chunk);

/// A count of the input tokens a request would be billed for (ModelClient::count_tokens).
struct TokenCount {
  std::int64_t input_tokens = 0;  ///< every input token: uncached, cached and cache writes together
  bool exact = false;             ///< counted by the provider's own API; false: the engine's estimate
};

/// One model behind one interface, whatever the provider (see the file comment).
class ModelClient {
 public:
  virtual ~ModelClient() = default;
  /// "openai", "anthropic", "gemini", "openai-compatible", "sim", or the host's own name.
  virtual std::string provider() const = 0;
  /// One call, no retries (the caller retries). Thread-safe.
  virtual Result<ModelResponse> invoke(const ModelRequest& request) = 0;
  /// Streams the answer through `on_chunk` (text, thinking, signatures, tool
  /// calls and their argument pieces, as they arrive), then returns the whole
  /// response with the provider's exact usage. A stream that ends before the
  /// provider's final event is an `unavailable` error, never a success. The
  /// default invokes and delivers the whole answer, block by block, as
  /// chunks. Thread-safe.
  virtual Result<ModelResponse> stream(const ModelRequest& request, const ChunkHandler& on_chunk);
  /// The input tokens `request` would use on this model, without calling it:
  /// no answer, no charge, nothing for the ledger. Anthropic's adapter asks
  /// its count endpoint (POST /v1/messages/count_tokens, the same headers and
  /// transport limits as a call; the request's bounds apply) and the count
  /// is exact; a failure there is an error like a call's. The engine's other
  /// clients (every provider without such an endpoint, and the sim) answer
  /// count_request_tokens() for their model (tokens.h), exact = false. The
  /// default, for a host's own client that knows no ModelSpec, answers
  /// estimate_input_tokens() (derive_step.h), exact = false. Thread-safe.
  virtual Result<TokenCount> count_tokens(const ModelRequest& request);
  /// One embeddings call to this model, no retries (Dispatcher::embed
  /// retries): a vector per input, in order, and the usage. The adapters of
  /// embedding models implement it (embedding.h); the default, a chat
  /// model's, fails with upstream ("cannot take an embeddings request").
  /// Thread-safe.
  virtual Result<EmbeddingResponse> embed(const EmbeddingRequest& request);
};

/// Builds the client for `model` under `config`: the sim provider when
/// config.effective_provider(model) says so (its key variable is unset), else
/// the model's native adapter with the key read from its variable now.
Result<std::shared_ptr<ModelClient>> make_model_client(const ModelSpec& model, const Config& config);

/// The offline provider, deterministic and free, for demos and tests. It is
/// not a model: its answer is a short text naming the model and the request,
/// and its counts are derived from the request (see sim_client.cpp).
std::shared_ptr<ModelClient> make_sim_client(const ModelSpec& model, const SimSettings& settings);

/// The client selector: model name -> client, one per configured model.
class ModelClients {
 public:
  /// A client for every model in the config (make_model_client).
  static Result<ModelClients> from_config(const Config& config);
  ModelClients() = default;

  /// Replaces (or adds) the client serving `model`: how a host plugs in its own.
  void set(std::string model, std::shared_ptr<ModelClient> client);
  /// nullptr when no client serves `model`.
  ModelClient* find(std::string_view model) const;

 private:
  std::map<std::string, std::shared_ptr<ModelClient>, std::less<>> clients_;
};

}  // namespace switchboard
