// Folder providers/: model calls. It owns the libcurl transport
// (http_transport.cpp), Server-Sent Events (sse.cpp), one wire format per
// provider API (openai_wire.cpp, anthropic_wire.cpp, gemini_wire.cpp, sharing
// wire_common.h), the HTTP client over them (http_model_client.cpp), the
// offline sim client (sim_client.cpp) and the client registry (clients.cpp).
// It may use cost/ (usage, estimates), util/ and the public headers; it never
// includes rules/ or ledger/.
//
// WireFormat: what one provider's HTTP API looks like, without the HTTP.
//
// A wire format turns a ModelRequest into the provider's request (URL,
// headers, JSON body), and the provider's answers (a whole body, an error
// body, or a stream of Server-Sent Events) into a ModelResponse. It does no
// I/O, so every provider is tested from recorded-shape bodies alone; the HTTP
// side (status codes, content types, timeouts, retry hints) is the client's
// (http_model_client.cpp).
//
// Error messages here say what is wrong with a body ("no 'choices' array");
// the client prefixes provider, model and HTTP status. None quotes a header.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "providers/http_transport.h"
#include "providers/sse.h"
#include "switchboard/client.h"
#include "switchboard/config.h"
#include "switchboard/status.h"

namespace switchboard {

// Decodes one streamed answer: fed the stream's SSE events in order, it
// delivers the text as it arrives and, once the provider's final event came,
// the whole response with the provider's exact usage. One per stream; not
// thread-safe.
class StreamDecoder {
 public:
  virtual ~StreamDecoder() = default;
  // Takes the next event; text pieces go to `on_chunk` (never with restart).
  // A failed Status ends the stream: the provider's own error event
  // (unavailable when it says it is overloaded, else upstream) or an event
  // that cannot be read (upstream).
  virtual Status on_event(const SseEvent& event, const ChunkHandler& on_chunk) = 0;
  // True once the provider's final event arrived.
  virtual bool done() const = 0;
  // The whole response: text, tool calls, finish reason, model and usage.
  // Status::unavailable("stream ended before its final event") when done()
  // is false; upstream when the final events carried no readable usage.
  virtual Result<ModelResponse> finish() = 0;
};

// One provider's request and response shapes, bound to one model and key.
// Immutable once built; thread-safe.
class WireFormat {
 public:
  virtual ~WireFormat() = default;
  // The HTTP request for `request`, streamed or not. invalid_argument when a
  // tool's parameters or a call's arguments are not a JSON object.
  // REQUIRES: request.messages is not empty.
  virtual Result<HttpRequest> build_request(const ModelRequest& request, bool stream) const = 0;
  // A whole 2xx JSON body as a response (upstream when it cannot be read).
  virtual Result<ModelResponse> parse_response(std::string_view body) const = 0;
  // (An error body's message is read the same way for every provider:
  // wire::error_message_in in wire_common.h.)
  virtual std::unique_ptr<StreamDecoder> stream_decoder() const = 0;

  // Token counting, for APIs with an endpoint for it (Anthropic's
  // count_tokens): the HTTP request that counts `request`'s input tokens,
  // and the count read from its 2xx JSON answer (upstream when it cannot be
  // read). The defaults say the API has none: build_count_request returns
  // nullopt, and ModelClient::count_tokens's estimate applies.
  virtual std::optional<Result<HttpRequest>> build_count_request(const ModelRequest& /*request*/) const {
    return std::nullopt;
  }
  virtual Result<std::int64_t> parse_count_response(std::string_view /*body*/) const {
    return Status::upstream("this API has no token counting endpoint");
  }
};

// Chat Completions, for provider "openai" and "openai-compatible" (which gets
// `max_tokens` instead of `max_completion_tokens`).
std::unique_ptr<WireFormat> make_openai_wire(const ModelSpec& model, std::string api_key);
// The Messages API, provider "anthropic".
std::unique_ptr<WireFormat> make_anthropic_wire(const ModelSpec& model, std::string api_key);
// generateContent, provider "gemini".
std::unique_ptr<WireFormat> make_gemini_wire(const ModelSpec& model, std::string api_key);

}  // namespace switchboard
