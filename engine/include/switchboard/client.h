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
///                 body over the size cap): retrying the same model will not
///                 help, the next model in the tier may;
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

#include "switchboard/cancel.h"
#include "switchboard/config.h"
#include "switchboard/decision.h"
#include "switchboard/pricing.h"
#include "switchboard/status.h"

namespace switchboard {

/// A function call the model asked for (or, in a request's history, made).
struct ToolCall {
  std::string id;              ///< the provider's call id ("" when it gives none: Gemini)
  std::string name;            ///< the function's name
  std::string arguments_json;  ///< a JSON object, as text
};

/// One message of the conversation sent to a model.
struct Message {
  std::string role;                 ///< "system" | "user" | "assistant" | "tool"
  std::string content;              ///< the message's text
  std::vector<ToolCall> tool_calls;  ///< role "assistant": calls it made
  std::string tool_call_id;          ///< role "tool": the call this answers
  std::string tool_name;             ///< role "tool": the function's name (Gemini needs it)
};

/// A function the model may call.
struct ToolSpec {
  std::string name;         ///< the name the model calls it by
  std::string description;  ///< what it does, for the model (sent only when not empty)
  std::string parameters_json = "{\"type\":\"object\",\"properties\":{}}";  ///< JSON Schema, as text
};

/// One call to a model: the conversation and how to answer it.
struct ModelRequest {
  std::vector<Message> messages;     ///< "system" messages go where each provider wants them
  std::vector<ToolSpec> tools;       ///< the functions the model may call
  Reasoning reasoning = Reasoning::kDefault;  ///< mapped to the provider's control
  /// The answer's output-token cap, sent as the provider's limit. Unset: no limit is sent, except
  /// to Anthropic, which requires one and gets the model's default_output_tokens.
  std::optional<std::int64_t> max_output_tokens;
  bool json_output = false;          ///< ask for a JSON object as the answer
  /// The caller's count of the input tokens, when it has one. The sim provider
  /// bills it as the input; the real providers report their own count.
  std::optional<std::int64_t> counted_input_tokens;
  /// The step's own guess of the answer's length (Step::expected_output_tokens).
  /// Sent to no provider: the sim sizes its answer by it, as a real model's
  /// answer follows the task rather than the cap.
  std::optional<std::int64_t> expected_output_tokens;
  /// The step's deadline and cancellation (StepCall::bounds). An adapter
  /// passes them to its transport: a cancelled call fails with kCancelled, one
  /// past the deadline with kDeadlineExceeded, promptly and without waiting
  /// for the answer.
  CallBounds bounds;
};

/// A model's answer to one call.
struct ModelResponse {
  std::string model;                 ///< the model that answered, as the provider names it
  std::string text;                  ///< the answer's text
  std::vector<ToolCall> tool_calls;  ///< the function calls the model asked for
  /// "stop" | "length" | "tool_calls" | "content_filter", or the provider's
  /// own word when it has no equivalent.
  std::string finish_reason;
  Usage usage;                       ///< the provider's own figures, normalised
  std::chrono::milliseconds latency{0};     ///< call started (connect included) to last byte
  std::chrono::milliseconds first_byte{0};  ///< call started (connect included) to first byte
  int http_status = 0;               ///< 0 when no HTTP was involved (sim)
};

/// One piece of a streamed answer, delivered as it arrives.
struct StreamChunk {
  std::string_view text;             ///< the next piece of the answer's text
  /// Set on the first chunk of a new attempt (another model, or a retry) after
  /// chunks of a failed attempt were already delivered: discard those.
  bool restart = false;
};
/// Called on the calling thread; must not throw.
using ChunkHandler = std::function<void(const StreamChunk&)>;

/// One model behind one interface, whatever the provider (see the file comment).
class ModelClient {
 public:
  virtual ~ModelClient() = default;
  /// "openai", "anthropic", "gemini", "openai-compatible", "sim", or the host's own name.
  virtual std::string provider() const = 0;
  /// One call, no retries (the caller retries). Thread-safe.
  virtual Result<ModelResponse> invoke(const ModelRequest& request) = 0;
  /// Streams the answer through `on_chunk`, then returns the whole response
  /// with the provider's exact usage. A stream that ends before the
  /// provider's final event is an `unavailable` error, never a success. The
  /// default invokes and delivers the whole text as one chunk. Thread-safe.
  virtual Result<ModelResponse> stream(const ModelRequest& request, const ChunkHandler& on_chunk);
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
