// FakeProvider: an HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI Chat
// Completions, Anthropic Messages and Gemini generateContent wire formats from
// the recorded-shape templates in tests/fakes/wire/, and misbehaves on
// demand (inject). For adapter tests, integration tests and the gateway
// benchmark (fake_provider_main.cpp is the same server as a program).
//
// Routes (point a model's `endpoint` at):
//   OpenAI     POST /v1/chat/completions                   endpoint base_url() + "/v1"
//   Anthropic  POST /v1/messages                           endpoint base_url()
//              POST /v1/messages/count_tokens: the input fields of a Messages
//              body only (model, messages, system, tools, tool_choice,
//              thinking, mcp_servers; any other is a 400 "X: Extra inputs
//              are not permitted"), answered {"input_tokens": P} (P below)
//   Gemini     POST /v1beta/models/{model}:generateContent endpoint base_url() + "/v1beta"
//              POST /v1beta/models/{model}:streamGenerateContent?alt=sse
//   Embeddings POST /v1/embeddings (OpenAI's shape: usage prompt_tokens = the
//              sum over inputs of max(1, bytes / 4), or of their token ids;
//              encoding_format base64 honoured) and POST
//              /v1beta/models/{model}:batchEmbedContents (Gemini's: no
//              usage); each input's vector is fake_embedding(its text, or
//              its token ids as JSON text, dimensions or
//              outputDimensionality, else kFakeEmbeddingDimensions)
//
// What a well-formed request gets (expected_answer computes it):
//   - text: "Hello from {model}. This answer is \"fake\" and deterministic.";
//     streamed in three pieces (split by bytes, never inside a UTF-8 sequence).
//     When the request carries images, documents or audio (OpenAI image_url,
//     file, input_audio parts; Anthropic image and document blocks, tool
//     results' included; Gemini inlineData and fileData parts, by mimeType
//     image/*, audio/*, anything else a document; functionResponse parts'
//     included), the text ends in " (saw 1 image, 2 documents, 1 audio clip)"
//     (only the kinds present, "1 image" / "2 images").
//   - a JSON text instead, when the request asks for a schema (OpenAI
//     response_format json_schema, Gemini generationConfig responseSchema or
//     responseJsonSchema): the plainest instance of it (const; the first enum
//     value; the first anyOf/oneOf/allOf branch; an object of its `required`
//     properties only; an array of minItems items; "switchboard"; the minimum,
//     else 0; false; null; local $refs followed; Gemini's upper-case types
//     too). json_object alone changes nothing: the text answer.
//   - a tool call instead of text when the request offers a function tool and
//     either forces a call (OpenAI tool_choice "required" or {function:
//     {name}}, Anthropic tool_choice any or tool, Gemini functionCallingConfig
//     mode ANY, with allowedFunctionNames naming the tool) or leaves it free
//     (auto, or no choice) while its last message is not a tool result (so an
//     agent loop ends after one round). A forbidden call (OpenAI "none",
//     Anthropic none, Gemini NONE) never happens. The tool is the named one,
//     else the first function tool; a free call's arguments are
//     {"query":"switchboard"}, a forced call's the plainest instance of the
//     tool's parameters schema, as above ({} when it has none). Streamed as
//     three argument pieces (Gemini: one functionCall chunk).
//   - reasoning when asked: OpenAI `reasoning_effort` other than "none";
//     Anthropic `thinking.type` "enabled" or "adaptive"; Gemini
//     `generationConfig.thinkingConfig` without thinkingBudget 0. Then:
//     Anthropic answers a thinking block first, its `signature` a digest of
//     its text (streamed: a signature_delta before content_block_stop); when
//     a user message holds Anthropic's documented test string
//     ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9..., a
//     redacted_thinking block {data} takes the thinking block's place.
//     Gemini puts a `thoughtSignature` on the first part after any thought
//     (the functionCall, else the text; streamed: the first chunk's part) and,
//     with thinkingConfig.includeThoughts, a {"text", "thought": true} part
//     first (streamed: a chunk of its own before the others).
// Rejected as the real APIs reject them (400, in the provider's error shape:
// invalid_request_error, Gemini INVALID_ARGUMENT; expected_rejection says
// which and why; the messages follow the real ones):
//   OpenAI     a top-level field the Chat Completions API does not document
//              ("Unrecognized request argument supplied: X");
//              response_format json_object while no message text holds "json"
//              in any case; json_schema with strict true, or a function tool
//              with strict true, whose schema has an object without
//              additionalProperties false or with a property missing from
//              its required ("Invalid schema for response_format 'NAME': In
//              context=('properties', 'x'), ...").
//   Anthropic  a top-level field the Messages API does not document ("X:
//              Extra inputs are not permitted"); max_tokens missing; thinking enabled with budget_tokens
//              missing, under 1024, or not under max_tokens; thinking
//              (enabled or adaptive) with temperature other than 1, any top_k,
//              or top_p under 0.95; thinking enabled with tool_choice any or
//              tool; a thinking block in an assistant message whose signature
//              is missing or not the fake's for its text ("messages.N.content.M:
//              Invalid `signature` in `thinking` block"), a redacted_thinking
//              block whose data the fake did not issue; with thinking on, a
//              last assistant message that holds tool_use blocks but does not
//              start with a thinking or redacted_thinking block
//              ("messages.N.content.0.type: Expected `thinking` or
//              `redacted_thinking`, but found `tool_use`. ...").
//   Gemini     generationConfig.responseSchema or a functionDeclaration's
//              `parameters` with a field Gemini's Schema does not have
//              (additionalProperties, $schema, $ref, $defs, const, oneOf...;
//              "Invalid JSON payload received. Unknown name \"X\" at
//              'generation_config.response_schema.properties[0].value': Cannot
//              find field.", one line per field; properties[i] counts in
//              sorted key order; responseJsonSchema and parametersJsonSchema
//              take any JSON Schema); a part whose thoughtSignature the fake did
//              not issue ("Corrupted thought signature."); for a model named
//              gemini-3* with reasoning on, a model turn after the last user
//              text whose first functionCall part has no thoughtSignature
//              ("Function call is missing a thought_signature in functionCall
//              parts. ...").
// Token counts, with B = request body bytes:
//   P (prompt)    = max(1, B / 4)          C (cached)   = P / 4
//   W (cache write, Anthropic only) = P / 8
//   O (visible)   = ceil(bytes of the text, or of tool name + arguments, / 4)
//   R (reasoning) = 64 when asked, else 0
//   OpenAI    prompt_tokens P, cached_tokens C, completion_tokens O+R,
//             reasoning_tokens R, total_tokens P+O+R (streamed: only with
//             stream_options.include_usage, in a last chunk with no choices).
//   Anthropic input_tokens P-C-W, cache_read_input_tokens C,
//             cache_creation_input_tokens W, output_tokens O+R (streamed:
//             message_start carries the input counts and output_tokens 1,
//             message_delta output_tokens O+R).
//   Gemini    promptTokenCount P, cachedContentTokenCount C,
//             candidatesTokenCount O, thoughtsTokenCount R, totalTokenCount
//             P+O+R (streamed: every chunk has usageMetadata, only the last,
//             with finishReason, has all of it; lines end in CRLF, as Google's do).
// Rate limits: every answer (2xx) carries its provider's headers with fixed
// figures. OpenAI x-ratelimit-limit-requests 5000, -remaining-requests 4999,
// -reset-requests 12ms, -limit-tokens 800000, -remaining-tokens 799000,
// -reset-tokens 1m30s; Anthropic anthropic-ratelimit-requests-limit 50,
// -requests-remaining 49, -requests-reset now + 60 s, -tokens-limit 80000,
// -tokens-remaining 79000, -tokens-reset now + 120 s (RFC 3339); Gemini none.
// Refusals, in the route's provider error shape: 405 not POST, 400 a body
// that is not a JSON object (or lacks `model`), 401 an Anthropic request
// without `x-api-key` or `anthropic-version`; in OpenAI's shape: 404 an
// unknown route, 400 bytes that do not parse as HTTP, 413 a body over 32 MiB.
// Refused requests (these and the rejections above) never use up a fault.
//
// Held connections (for cancellation tests): a kHang or kStallStream request
// leaves its connection open until the client closes it. held() lists every
// such request with the steady_clock time it was read (`received`) and the
// time the fake's read of the client's side returned end-of-file or an error
// (`closed`), so a test can measure how soon a client gave up on its call
// after its own caller did. A connection the server closes (stop(), the
// destructor) never gets `closed`: only the client leaving counts. A client
// that leaves while a kStallStream answer waits out options.latency is seen
// when the wait ends.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchboard/pricing.h"
#include "switchboard/usage.h"

namespace switchboard::testing {

// What a faulted request gets instead of its answer.
enum class Fault {
  kSlowFirstByte,     // waits FaultSpec::delay, then answers normally
  kHang,              // reads the request, never answers; closes when the client does
  kRateLimited,       // 429, Retry-After: FaultSpec::retry_after_s, provider error body
  kServerError,       // 500, provider error body
  kOverloaded,        // Anthropic 529 overloaded_error; OpenAI and Gemini 503
  kCutStream,         // status, headers and the first half of the body (a stream: of
                      // its events, never the final one), then the connection closes
  kPauseStream,       // a stream's status, headers and first event, then silence for
                      // FaultSpec::delay (a model thinking without a word), then the rest
  kStallStream,       // the bytes kCutStream sends, then nothing more: the connection
                      // stays open (whatever the client sends is read and dropped)
                      // until the client closes it or the server stops
  kMalformedJson,     // 200 application/json, the unstreamed answer cut in half
  kOversizedBody,     // 200, the answer (text, never a tool call) padded inside its
                      // text to FaultSpec::bytes with a Content-Length (a stream: in
                      // its first event), written in 64 KiB pieces; stops when the
                      // client goes away
  kWrongContentType,  // 200 text/html, a proxy's error page
  kInvalidKey,        // 401, provider error body quoting keys the way providers do:
                      // masked ("sk-upst…3a9c", "AIzaSyAb...wxyz") and whole (kQuotedKey)
};

// The whole key-like token a kInvalidKey error body quotes.
inline constexpr const char* kQuotedKey = "sk-proj-Zq81x0FakeKeyForTests";

struct FaultSpec {
  Fault kind = Fault::kServerError;
  int times = 1;                          // how many matching requests get it
  std::string model;                      // only requests for this model; "" any
  std::chrono::milliseconds delay{1000};  // kSlowFirstByte: wait before the status line; kPauseStream: the pause
  int retry_after_s = 1;                  // kRateLimited: the Retry-After header
  std::size_t bytes = 64u << 20;          // kOversizedBody: the body's size
};

struct FakeProviderOptions {
  std::chrono::milliseconds latency{0};  // added before every answer, on a timer
  int threads = 2;                       // I/O threads serving every connection
  std::uint16_t port = 0;                // 0: any free port
  bool record_requests = true;           // keep requests for received(); off to benchmark
  std::string fixtures_dir;              // "": tests/fakes/wire in the source tree
  // A streamed OpenAI text answer sends this many content events instead of
  // three: its three pieces over and over (the text grows, the usage stays
  // the three pieces'). 0: three. For the gateway benchmark's per-chunk cost.
  int stream_chunks = 0;
  // A JSON file of scripted answers per model (answer_scripts.h): the models
  // it names answer from it instead of the generic text or tool call (usage
  // counted as for any answer). "": none.
  std::string scripts_file;
};

// One request as the server read it.
struct ReceivedRequest {
  std::string method;
  std::string target;  // path and query
  std::vector<std::pair<std::string, std::string>> headers;  // as sent, in order
  std::string body;

  // The first header called `name` (any case), or "".
  std::string header(std::string_view name) const;
};

// A kHang or kStallStream request and its connection (see "Held connections").
struct HeldConnection {
  Fault fault = Fault::kHang;
  std::string model;
  std::chrono::steady_clock::time_point received;  // the request was read
  // The client closed the connection; unset while it is open, and forever
  // when the server closed it.
  std::optional<std::chrono::steady_clock::time_point> closed;
};

// The server. Thread-safe; every method may be called while it serves.
class FakeProvider {
 public:
  // Loads the fixtures, binds 127.0.0.1 and starts serving. Throws
  // std::runtime_error naming the file or the socket error when it cannot.
  static std::unique_ptr<FakeProvider> start(FakeProviderOptions options = {});
  // Calls stop().
  ~FakeProvider();
  FakeProvider(const FakeProvider&) = delete;
  FakeProvider& operator=(const FakeProvider&) = delete;

  std::uint16_t port() const;
  std::string base_url() const;  // "http://127.0.0.1:PORT"

  // The next `fault.times` well-formed requests (for `fault.model` when set)
  // get the fault. Faults queue: a request takes the oldest that matches it.
  void inject(FaultSpec fault);
  void inject(Fault fault, int times = 1, std::string model = "");

  // Every request that parsed as HTTP since start or clear(), refused ones
  // included (none when options.record_requests is off; request_count()
  // counts them all the same).
  std::vector<ReceivedRequest> received() const;
  std::size_t request_count() const;

  // Every kHang and kStallStream request since start or clear(), in the
  // order they were read.
  std::vector<HeldConnection> held() const;
  // Block until at least `n` held connections were received (or, for
  // wait_held_closed, closed by their client); false when `timeout` passes
  // first. Both wake as soon as it happens (no polling).
  bool wait_held(std::size_t n, std::chrono::milliseconds timeout) const;
  bool wait_held_closed(std::size_t n, std::chrono::milliseconds timeout) const;

  // Forgets the received requests, the held connections (open ones stay open
  // but are no longer tracked) and the faults not yet used.
  void clear();

  // Stops serving: open connections close, held ones included; joins the
  // threads. Idempotent; afterwards only received(), request_count(), held()
  // and the waits answer. REQUIRES: not called from a handler of this server.
  void stop();

 private:
  class Impl;
  explicit FakeProvider(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The fake's embeddings: kFakeEmbeddingDimensions long unless asked, each
// component a multiple of 1/128 in [-1, 1) (exact in a float and in JSON),
// derived from a hash of `input`.
inline constexpr std::size_t kFakeEmbeddingDimensions = 8;
std::vector<float> fake_embedding(std::string_view input, std::size_t dimensions);

// What the fake answers a well-formed request: `model` is the body's `model`
// (OpenAI, Anthropic) or the path's (Gemini). nullopt when the body is not a
// JSON object. `usage` is normalised as parse_usage reads the wire counts.
struct FakeAnswer {
  std::string text;            // "" when it calls a tool; JSON text for a schema
  std::string thinking;        // Anthropic's thinking block, Gemini's thought part; "" unless asked
  std::string signature;       // Anthropic: the thinking block's; Gemini: the thoughtSignature; "" none
  std::string redacted_thinking;  // Anthropic: the redacted_thinking block's data; "" none
  std::string tool_name;       // "" unless it calls a tool
  std::string arguments_json;  // the tool call's arguments
  std::string finish_reason;   // normalised: "stop" | "tool_calls"
  Usage usage;
};
std::optional<FakeAnswer> expected_answer(UsageFormat format, std::string_view model,
                                          std::string_view request_body);

// Why the fake refuses a request body (the route's checks: headers, method,
// size, aside): status and the provider error's message.
struct FakeRejection {
  int status = 400;
  std::string message;
};
// nullopt when the fake answers the body; `model` as for expected_answer.
std::optional<FakeRejection> expected_rejection(UsageFormat format, std::string_view model,
                                                std::string_view request_body);

}  // namespace switchboard::testing
