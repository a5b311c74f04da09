/// @file
/// The canonical model call: what an agent asks a model (ModelRequest) and
/// what the model answers (ModelResponse), as the union of what the OpenAI,
/// Anthropic and Gemini APIs express, not their intersection.
///
/// A message is a list of typed content blocks: text, image, document, audio,
/// tool use, tool result, thinking (with its signature), redacted thinking,
/// refusal, and an opaque block that carries a provider's own item back to
/// that provider untouched. Every field either reaches the provider that can
/// express it, is translated to what the provider can take, or makes the
/// adapter refuse the model for this request with a reason (so the dispatcher
/// falls back to one that can): nothing is dropped silently. The README's
/// translation table says which happens to each field on each provider.
///
/// Signatures and opaque items carry their `origin` (the provider that made
/// them): they are sent back only to that provider; another provider gets
/// what it can take of the block (a thinking block's text is dropped, as each
/// provider's docs require for foreign reasoning).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchboard/cancel.h"
#include "switchboard/decision.h"
#include "switchboard/pricing.h"

namespace switchboard {

/// A function call the model asked for (or, in a request's history, made).
struct ToolCall {
  std::string id;              ///< the provider's call id ("" when it gives none: Gemini)
  std::string name;            ///< the function's name
  std::string arguments_json;  ///< a JSON object, as text
};

/// Where a media block's bytes are.
struct MediaSource {
  /// How `data` is to be read.
  enum class Kind {
    kBase64,  ///< `data` is the bytes, base64-encoded
    kUrl,     ///< `data` is an http(s) URL the provider fetches
    kFileId,  ///< `data` is a file id of the provider's files API (sent only to `ContentBlock::origin`)
  };
  Kind kind = Kind::kBase64;  ///< how `data` is to be read
  std::string media_type;     ///< "image/png", "application/pdf", "audio/wav"...; "" when a URL says
  std::string data;           ///< the base64 text, the URL or the file id
};

/// A prompt-cache breakpoint: the prefix up to and including the part that
/// carries it may be cached (Anthropic `cache_control`).
struct CacheBreakpoint {
  std::string ttl;  ///< "" (the provider's default: 5 minutes), "5m" or "1h"
};

/// One block of a message or an answer. `type` says which fields mean something.
struct ContentBlock {
  /// The kind of block.
  enum class Type {
    kText,              ///< `text`
    kImage,             ///< `source` (+ `detail`)
    kDocument,          ///< `source` (+ `title`): a PDF or a text file
    kAudio,             ///< `source` (base64; media_type "audio/wav", "audio/mp3"...)
    kToolUse,           ///< `tool_call` (+ `signature`: Gemini's thoughtSignature on the call)
    kToolResult,        ///< `tool_use_id`, `tool_name`, `content`, `is_error`
    kThinking,          ///< `text` (the reasoning) + `signature`
    kRedactedThinking,  ///< `signature` holds the provider's opaque data
    kRefusal,           ///< `text`: the model declined (OpenAI `refusal`)
    kOpaque,            ///< `opaque_json`: a provider's own item (OpenAI reasoning items...)
  };
  Type type = Type::kText;  ///< which of the fields below mean something
  std::string text;         ///< kText, kThinking, kRefusal
  MediaSource source;       ///< kImage, kDocument, kAudio
  std::string detail;       ///< kImage: OpenAI's "low" | "high" | "auto"; "" unset
  std::string title;        ///< kDocument: its title ("" none)
  ToolCall tool_call;       ///< kToolUse
  std::string tool_use_id;  ///< kToolResult: the call it answers
  std::string tool_name;    ///< kToolResult: that call's function (Gemini needs it)
  std::vector<ContentBlock> content;  ///< kToolResult: the result (text, images...)
  bool is_error = false;    ///< kToolResult: the tool failed
  /// kThinking: the signature that proves the text unaltered; kRedactedThinking:
  /// the encrypted data; kText/kToolUse: Gemini's thoughtSignature on that part.
  std::string signature;
  /// The provider that made `signature`, `opaque_json` or a kFileId source
  /// ("anthropic", "gemini", "openai"); sent back only to it.
  std::string origin;
  std::string opaque_json;  ///< kOpaque: the provider's item, as JSON text
  std::optional<CacheBreakpoint> cache;  ///< a cache breakpoint after this block

  /// A text block.
  static ContentBlock of_text(std::string text);
  /// A tool use block.
  static ContentBlock of_tool_call(ToolCall call);
  /// A tool result block with one text block as its content.
  static ContentBlock of_tool_result(std::string tool_use_id, std::string tool_name, std::string text,
                                     bool is_error = false);
};

/// One message of the conversation sent to a model.
///
/// Roles: "system" (instructions; providers that take one system prompt get
/// them joined), "user", "assistant", and "tool" (a message of kToolResult
/// blocks, OpenAI's shape; kToolResult blocks may as well sit in a "user"
/// message, Anthropic's shape: adapters accept both).
struct Message {
  std::string role;                   ///< "system" | "user" | "assistant" | "tool"
  std::vector<ContentBlock> content;  ///< in order
  /// A participant's name (OpenAI `messages[].name`): sent to OpenAI and
  /// OpenAI-compatible servers; Anthropic and Gemini have no such field, so
  /// their adapters refuse the model for a request that sets one.
  std::string name;

  /// A message of these blocks.
  static Message of(std::string role, std::vector<ContentBlock> content);
  /// A message of one text block.
  static Message of_text(std::string role, std::string text);
  /// The text of its kText blocks, joined (no separator).
  std::string text() const;
};

/// A tool the model may use.
struct ToolSpec {
  std::string name;         ///< the name the model calls it by
  std::string description;  ///< what it does, for the model (sent only when not empty)
  std::string parameters_json = "{\"type\":\"object\",\"properties\":{}}";  ///< JSON Schema, as text
  std::optional<bool> strict;            ///< OpenAI structured arguments; unset: not sent
  std::optional<CacheBreakpoint> cache;  ///< a cache breakpoint after this tool (Anthropic)
  /// Set: a provider's own tool (Anthropic web_search, OpenAI web_search...),
  /// its definition as JSON text, sent only to `origin`; name and parameters unused.
  std::string opaque_json;
  std::string origin;  ///< the provider an opaque tool belongs to

  /// A function tool.
  static ToolSpec of_function(std::string name, std::string description, std::string parameters_json);
};

/// Which tools the model may or must call.
struct ToolChoice {
  /// What the model may do.
  enum class Mode {
    kAuto,      ///< call tools or answer
    kNone,      ///< answer without calling a tool
    kRequired,  ///< call at least one tool (Anthropic "any")
    kNamed,     ///< call the tool `name`
  };
  Mode mode = Mode::kAuto;  ///< what the model may do
  std::string name;         ///< kNamed: the tool
};

/// The answer's format.
struct OutputFormat {
  /// Text, a JSON object, or JSON that follows a schema.
  enum class Type { kText, kJsonObject, kJsonSchema };
  Type type = Type::kText;  ///< text, a JSON object, or JSON that follows `schema_json`
  std::string name;         ///< kJsonSchema: the schema's name
  std::string description;  ///< kJsonSchema: what it is for ("" none)
  std::string schema_json;  ///< kJsonSchema: the JSON Schema, as text
  bool strict = false;      ///< kJsonSchema: the provider must follow it exactly
};

/// Sampling settings; unset ones are not sent.
struct Sampling {
  std::optional<double> temperature;        ///< 0..2 (OpenAI, Gemini), 0..1 (Anthropic)
  std::optional<double> top_p;              ///< nucleus sampling
  std::optional<std::int64_t> top_k;        ///< Anthropic, Gemini
  std::vector<std::string> stop;            ///< stop sequences
  std::optional<std::int64_t> seed;         ///< OpenAI, Gemini
  std::optional<double> presence_penalty;   ///< OpenAI, Gemini
  std::optional<double> frequency_penalty;  ///< OpenAI, Gemini
  bool logprobs = false;                    ///< return the answer's log probabilities
  std::optional<std::int64_t> top_logprobs;  ///< alternatives per token, with logprobs
  std::string user;                         ///< the end user's id (OpenAI user, Anthropic metadata.user_id)
};

/// A client's explicit reasoning effort (OpenAI's words).
enum class Effort { kNone, kMinimal, kLow, kMedium, kHigh, kXHigh };
/// The API's name of `e`: "none", "minimal", "low", "medium", "high", "xhigh".
std::string_view to_string(Effort e);
/// The inverse of to_string(Effort); nullopt for any other name.
std::optional<Effort> parse_effort(std::string_view name);

/// How much the model should reason. The rules' level (Decision::reasoning)
/// applies unless the caller set `effort` or `budget_tokens`, which win unless
/// the rules pinned theirs (Decision::reasoning_pinned). Each adapter maps the
/// result to its provider's control (OpenAI reasoning_effort, Anthropic
/// thinking.budget_tokens, Gemini thinkingConfig) with the model's
/// thinking_budget table.
struct ReasoningRequest {
  Reasoning level = Reasoning::kDefault;   ///< the rules' level (set by the dispatcher)
  std::optional<Effort> effort;            ///< the caller's explicit effort
  std::optional<std::int64_t> budget_tokens;  ///< the caller's explicit thinking budget (0: off)
};

/// A provider API a caller may speak, for same-protocol passthrough.
enum class WireApi {
  kNone,               ///< none: the request came through the request model alone
  kOpenAIChat,         ///< OpenAI Chat Completions (the openai and openai-compatible providers)
  kAnthropicMessages,  ///< Anthropic Messages (the anthropic provider)
};
/// The API's name: "none", "OpenAI Chat Completions", "Anthropic Messages".
std::string_view to_string(WireApi api);

/// What a caller sent in its own API that the request model does not cover
/// (a provider feature newer than the router): forwarded verbatim when the
/// chosen model speaks `api`, and refused otherwise, so nothing is dropped.
///
/// Contract for adapters: one that speaks `api` adds each member of
/// `fields_json` and `hints_json` to its request body as is (a member it
/// writes itself is a conflict: the model is refused) and sends `headers` (a
/// header it sends too, such as anthropic-beta, gets the caller's values
/// appended, comma-separated). One that speaks another API refuses the model
/// when `fields_json` has members ("cannot take the field 'verbosity' ..."),
/// so the dispatcher falls back; `hints_json` (fields that do not change the
/// answer, such as prompt_cache_key) and `headers` (they switch on features
/// whose fields are themselves modelled or forwarded) never refuse a model
/// and reach no other API. The sim provider, the offline stand-in for every
/// API, takes all of it.
struct Passthrough {
  WireApi api = WireApi::kNone;  ///< the API the caller spoke
  /// The top-level request fields the router does not model, as a JSON
  /// object text ("" none), e.g. {"verbosity":"low"}.
  std::string fields_json;
  /// Top-level fields that do not change the answer (a cache key, an abuse
  /// monitoring id), as a JSON object text ("" none): sent to a model of
  /// `api`, left out for any other.
  std::string hints_json;
  /// Headers to forward (name lowercased, value as sent), e.g.
  /// {"anthropic-beta", "context-management-2025-06-27"}.
  std::vector<std::pair<std::string, std::string>> headers;

  /// True when there is nothing to forward.
  bool empty() const { return fields_json.empty() && hints_json.empty() && headers.empty(); }
};

/// One call to a model: the conversation and how to answer it.
struct ModelRequest {
  std::vector<Message> messages;     ///< "system" messages go where each provider wants them
  std::vector<ToolSpec> tools;       ///< the tools the model may use
  std::optional<ToolChoice> tool_choice;  ///< unset: the provider's default (auto)
  /// false: at most one tool call per answer (Anthropic disable_parallel_tool_use); unset: the default.
  std::optional<bool> parallel_tool_calls;
  OutputFormat output_format;        ///< text unless the caller asked for JSON
  Sampling sampling;                 ///< unset settings are not sent
  ReasoningRequest reasoning;        ///< the rules' level and the caller's explicit setting
  /// The answer's output-token cap as the caller (or the rules) gave it.
  /// Unset: none is sent, except to Anthropic, which requires one and gets
  /// the model's max_output_tokens. A thinking budget is taken from inside
  /// the cap, clamped so their sum never exceeds the model's maximum.
  std::optional<std::int64_t> max_output_tokens;
  /// The caller's count of the input tokens, when it has one. The sim provider
  /// bills it as the input; the real providers report their own count.
  std::optional<std::int64_t> counted_input_tokens;
  /// The step's own guess of the answer's length (Step::expected_output_tokens).
  /// Sent to no provider: the sim sizes its answer by it, as a real model's
  /// answer follows the task rather than the cap.
  std::optional<std::int64_t> expected_output_tokens;
  /// The caller's own fields and headers, for a model of the caller's API.
  Passthrough passthrough;
  /// The step's deadline and cancellation (StepCall::bounds). An adapter
  /// passes them to its transport: a cancelled call fails with kCancelled, one
  /// past the deadline with kDeadlineExceeded, promptly and without waiting
  /// for the answer.
  CallBounds bounds;
};

/// Why the model stopped, in one vocabulary for every provider.
enum class StopReason {
  kEndTurn,        ///< finished its answer (OpenAI "stop", Gemini STOP)
  kMaxTokens,      ///< hit the output cap ("length", MAX_TOKENS)
  kStopSequence,   ///< produced a stop sequence (ModelResponse::stop_sequence says which, when known)
  kToolUse,        ///< asked for tool calls
  kContentFilter,  ///< the provider's filter cut it (SAFETY, RECITATION...)
  kRefusal,        ///< the model refused (Anthropic "refusal", an OpenAI refusal)
  kPauseTurn,      ///< Anthropic paused a long turn: send the answer back to continue
  kOther,          ///< anything else: ModelResponse::raw_stop_reason says what
};
/// The name of `r`: "end_turn", "max_tokens", "stop_sequence", "tool_use",
/// "content_filter", "refusal", "pause_turn", "other".
std::string_view to_string(StopReason r);
/// OpenAI's finish_reason for `r`: "stop", "length", "tool_calls", "content_filter".
std::string_view openai_finish_reason(StopReason r);

/// What a provider's rate-limit headers said with an answer (OpenAI
/// x-ratelimit-*, Anthropic anthropic-ratelimit-*); each unset when not sent.
struct RateLimits {
  std::optional<std::int64_t> requests_left;  ///< requests left in the provider's current window
  std::optional<std::int64_t> tokens_left;    ///< tokens left (Anthropic: its tokens limit, input and output)
  std::optional<std::chrono::milliseconds> requests_reset;  ///< until the requests limit resets, from the answer
  std::optional<std::chrono::milliseconds> tokens_reset;    ///< until the tokens limit resets, from the answer

  /// True when no header was read.
  bool empty() const { return !requests_left && !tokens_left && !requests_reset && !tokens_reset; }
};

/// A model's answer to one call.
struct ModelResponse {
  std::string model;                  ///< the model that answered, as the provider names it
  std::vector<ContentBlock> content;  ///< in order: text, thinking, tool uses, refusal, opaque items
  StopReason stop_reason = StopReason::kEndTurn;  ///< why it stopped
  std::string raw_stop_reason;        ///< the provider's own word ("end_turn", "STOP", "length"...)
  std::string stop_sequence;          ///< kStopSequence: which one, when the provider says
  std::string logprobs_json;          ///< the provider's logprobs, as JSON text, when asked ("" none)
  Usage usage;                        ///< the provider's own figures, normalised
  std::chrono::milliseconds latency{0};     ///< call started (connect included) to last byte
  std::chrono::milliseconds first_byte{0};  ///< call started (connect included) to first byte
  int http_status = 0;                ///< 0 when no HTTP was involved (sim)
  RateLimits rate_limits;             ///< the provider's rate-limit headers with this answer

  /// The text of its kText blocks, joined.
  std::string text() const;
  /// Its kToolUse blocks' calls, in order.
  std::vector<ToolCall> tool_calls() const;
};

/// One piece of a streamed answer, delivered as it arrives. Every block of
/// the answer but media (Gemini's inline images) reaches the caller through
/// chunks, in the answer's order.
struct StreamChunk {
  /// What the piece is.
  enum class Kind {
    /// The provider accepted the call and its answer follows (no text): the
    /// first chunk of every attempt, sent as soon as the provider's stream
    /// began (a client that cannot stream: when its answer came), so a host
    /// can send its response head before the first token.
    kStart,
    kText,      ///< `text`: the next piece of the answer's text
    kThinking,  ///< `text`: the next piece of the reasoning
    /// `text`: the signature (whole or a piece) of the block at `index`, made
    /// by `origin`: a thinking block's (after its text), Gemini's
    /// thoughtSignature on a text part (after the part) or on a tool call
    /// (before the call's start, so the call can carry it).
    kSignature,
    kRefusal,           ///< `text`: the next piece of a refusal (ContentBlock::Type::kRefusal)
    kRedactedThinking,  ///< `text`: a redacted thinking block's data, whole, made by `origin`
    kOpaque,            ///< `text`: a provider's own item (ContentBlock::Type::kOpaque) as JSON, whole, made by `origin`
    kToolCallStart,     ///< a tool call begins: `id`, `name`
    kToolArguments,     ///< `text`: the next piece of the call's arguments JSON
  };
  Kind kind = Kind::kText;  ///< what the piece is
  std::string_view text;    ///< the piece
  int index = 0;            ///< the block's index in the answer (ModelResponse::content)
  std::string_view id;      ///< kToolCallStart: the call's id ("" when the provider gives none)
  /// kToolCallStart: the function's name. kStart: the model whose attempt
  /// began, as the config names it (set by the Dispatcher; "" from a client).
  std::string_view name;
  /// kSignature, kRedactedThinking, kOpaque: the provider that made it
  /// (ContentBlock::origin), so the caller can send it back to that provider only.
  std::string_view origin;
  /// Set on the first chunk of a new attempt (another model, or a retry) after
  /// chunks of a failed attempt were already delivered: discard those.
  bool restart = false;
  /// kStart, from the Dispatcher: the output cap the attempt was sent when a
  /// budget lowered it to what is affordable (StepResult::output_cap_lowered),
  /// else 0; so a host can say so in its response head.
  std::int64_t output_cap_lowered_to = 0;
  /// kStart, from the Dispatcher: the step's StepResult::upstream so far (its
  /// earlier attempts and backoffs, and this attempt up to its start), so a
  /// host can state its own overhead in the response head it sends now.
  std::chrono::nanoseconds upstream{0};

  /// A chunk of `kind` for the block at `index`.
  static StreamChunk of(Kind kind, int index, std::string_view text, std::string_view origin = {});
  /// The start of the tool call at `index`.
  static StreamChunk tool_call_start(int index, std::string_view id, std::string_view name);
};

}  // namespace switchboard
