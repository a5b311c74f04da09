// The client-facing API shapes the gateway speaks: OpenAI Chat Completions
// (POST /v1/chat/completions), OpenAI Responses (POST /v1/responses) and
// Anthropic Messages (POST /v1/messages).
// Pure translation, no I/O: a request body + headers -> what the Dispatcher
// needs; a StepResult or streamed pieces -> the bytes the client expects.
// One file per shape: api/openai.cpp, api/responses.cpp, api/anthropic.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchboard/switchboard.h"

namespace switchboard::gateway {

enum class ApiShape { kOpenAI, kResponses, kAnthropic };

// [gateway] max_json_depth's default: the deepest nesting of a request body.
constexpr int kDefaultMaxJsonDepth = 64;

// The request's headers as (name, value) pairs, in any case: a list rather
// than a lookup, because x-switchboard-meta-NAME headers are found by prefix.
// Names compare case-insensitively; of a repeated header the last one counts.
using Headers = std::vector<std::pair<std::string_view, std::string_view>>;

// A client's request, parsed.
//
// Lossless or refused: every field a parser reads goes into call.request
// (the canonical ModelRequest, switchboard/request.h) or the step; a field
// it does not read is a 400 naming it, except the few each shape lists as
// not changing the answer (the file comments of api/openai.cpp and
// api/anthropic.cpp say what happens to every field). Fields the SDKs send
// as null count as absent.
struct ParsedRequest {
  ApiShape shape = ApiShape::kOpenAI;
  std::string model;               // as asked: "auto", a tier name, or a model name
  bool stream = false;
  bool include_usage = false;      // OpenAI stream_options.include_usage
  // The call. call.request holds everything the client sent: messages as
  // content blocks (system included), tools, tool choice, parallel tool
  // calls, output format, sampling, the client's reasoning setting
  // (request.reasoning.effort / budget_tokens; `level` is the dispatcher's)
  // and output cap. call.step is what the rules see, in this order (a later
  // source overrides each field it sets):
  //  1. derived from call.request (derive_step, switchboard/derive_step.h,
  //     with the workload's untrusted_tools): input_tokens (the engine's
  //     estimate), turns, tool_depth, last_tool, untrusted_input, has_tools,
  //     tool_names, has_images, has_documents, output_must_be_json (OpenAI
  //     response_format json_object/json_schema), needs_chain_of_thought
  //     (OpenAI reasoning_effort other than "none"/"minimal", Anthropic
  //     thinking.type "enabled"), agent; role "chat"; meta.client from the
  //     User-Agent header (detail::client_family);
  //  2. the request's `metadata` object: keys "role", "untrusted_input",
  //     "tool_depth" set those fields; every other key (string/number/bool)
  //     goes to step.meta (Anthropic's user_id is skipped: it is
  //     sampling.user);
  //  3. headers x-switchboard-role, x-switchboard-untrusted-input
  //     ("true"/"1"/"false"/"0"), x-switchboard-tool-depth,
  //     x-switchboard-agent, x-switchboard-meta-NAME (NAME lowercased, the
  //     value a string).
  StepCall call;
  // The client's reasoning setting as a level, for the gateway's decision
  // (it overrides Decision::reasoning): OpenAI reasoning_effort low/medium/
  // high (xhigh -> high); Anthropic thinking.budget_tokens < 4096 low,
  // < 16384 medium, else high. "none"/"minimal" and thinking "disabled"
  // leave it unset (Reasoning has no "off"; call.request.reasoning says so).
  std::optional<Reasoning> reasoning;
  // max_completion_tokens / max_tokens, as call.request.max_output_tokens.
  std::optional<std::int64_t> max_output_tokens;
  // The bound the request was parsed with; a model's tool arguments nested
  // deeper are answered as text, never re-serialised as JSON.
  int max_json_depth = kDefaultMaxJsonDepth;

  // The Responses API's own (ApiShape::kResponses):
  std::string previous_response_id;  // "" = none
  bool store = true;                 // keep the answer for a later previous_response_id
  // The request's fields a response object repeats (instructions, tools,
  // tool_choice, text, reasoning, temperature...), with the API's defaults:
  // each key (a static string) with its value's JSON text, in key order.
  std::vector<std::pair<std::string_view, std::string>> echo;
  // The conversation as Responses input items: the stored history of
  // previous_response_id, then this request's input; a JSON array text.
  // Written only when the answer is to be kept (store); "" otherwise.
  std::string items_json;
};

// Errors the parsers report: the HTTP status, an error type and code in the
// shape's vocabulary, and a one-line message naming the offending field.
struct ApiError {
  int http_status = 400;
  std::string type;     // OpenAI: "invalid_request_error"...; Anthropic: "invalid_request_error"...
  std::string code;     // OpenAI `code` ("" = null); unused by Anthropic
  std::string param;    // OpenAI `param` ("" = null)
  std::string message;
};

template <typename T>
struct ApiResult {
  std::optional<T> value;
  ApiError error;
  bool ok() const { return value.has_value(); }
};

// A body nested deeper than `max_json_depth` (arrays and objects; the body
// itself is 1) is a 400 naming the field it is under ("tools[0].function.
// parameters nests deeper than 64"); the parse never builds the deeper part.
// A header the step keeps (x-switchboard-role, x-switchboard-meta-NAME) that
// is not UTF-8 is a 400 naming the header.
// `workload` (may be null: none) is the workload the request is for: its
// untrusted_tools feed the derived step.
ApiResult<ParsedRequest> parse_openai_chat(std::string_view body, const Headers& headers,
                                           int max_json_depth = kDefaultMaxJsonDepth,
                                           const Workload* workload = nullptr);
ApiResult<ParsedRequest> parse_anthropic_messages(std::string_view body, const Headers& headers,
                                                  int max_json_depth = kDefaultMaxJsonDepth,
                                                  const Workload* workload = nullptr);

// The Responses API. `previous` answers a previous_response_id with the
// conversation stored for it (stored_conversation), or nullopt when there is
// none (never stored, stored with store: false, expired or evicted): a 404
// naming the id. The stored items come first, then `instructions` (not
// carried over from the previous response, as the API documents) lead as
// the system prompt, then this request's input.
using PreviousResponses = std::function<std::optional<std::string>(const std::string& id)>;
ApiResult<ParsedRequest> parse_openai_responses(std::string_view body, const Headers& headers,
                                                int max_json_depth, const PreviousResponses& previous,
                                                const Workload* workload = nullptr);

// What a Responses request stores for a later previous_response_id: its
// conversation (ParsedRequest::items_json) followed by the answer's output
// items, as a JSON array text.
std::string stored_conversation(const ParsedRequest& request, const StepResult& result, const std::string& id);

// `text` with every key-like token replaced by "[redacted]": OpenAI and
// Anthropic keys (sk-..., sk-ant-..., sk-proj-...) and Google API keys
// (AIza...), whole or masked the way providers quote them in error bodies
// ("sk-upst…3a9c", "sk-upst...3a9c", "sk-upst****3a9c"). For upstream error
// messages the gateway relays to its clients.
std::string redact_secrets(std::string_view text);

// The error body in the shape's format:
//  OpenAI    {"error":{"message":...,"type":...,"param":...|null,"code":...|null}}
//  Anthropic {"type":"error","error":{"type":...,"message":...}}
std::string render_error(ApiShape shape, const ApiError& error);

// A whole (non-streamed) answer, from StepResult::response's content
// blocks in order. `id` is the response id ("chatcmpl-..." / "msg_..."),
// `created` seconds since the epoch. The `model` field is the model that
// served it (StepResult::model; request.model when empty). A tool call the
// provider gave no id gets "call_<id>_<index>", unique per answer. Thinking
// signatures from a provider other than Anthropic are written
// "<origin>:<signature>" so they come back with their origin (see the shape
// files). What each block becomes is in the shape files' comments.
std::string render_response(const ParsedRequest& request, const StepResult& result, const std::string& id,
                            std::int64_t created);

// A streamed answer, as SSE bytes: begin() once, chunk() per StreamChunk as
// the dispatcher delivers it, end() once with the finished StepResult.
//
// chunk() writes each kind as the shape streams it, keyed by the chunk's
// index (the block's place in ModelResponse::content):
//   OpenAI     kText -> delta.content; kThinking -> delta.reasoning_content;
//              kRefusal -> delta.refusal; kToolCallStart -> delta.tool_calls
//              [{index, id, type, function{name, arguments: ""}}] (index: the
//              call's place among the answer's tool calls); kToolArguments ->
//              delta.tool_calls[{index, function{arguments}}]; a thinking
//              block's kSignature and kRedactedThinking write nothing (end()
//              sends the signed blocks whole in thinking_blocks); kOpaque has
//              no place in this shape.
//   Anthropic  a new index closes the open content block and starts one
//              (content_block_start; the stream's own indices count from 0
//              in order); kText and kRefusal -> text_delta; kThinking ->
//              thinking_delta; kSignature pieces are held and sent as one
//              signature_delta when the thinking block closes (the SDK keeps
//              the last); kRedactedThinking and Anthropic's own kOpaque items
//              (server tool blocks) -> whole blocks, in place;
//              kToolCallStart -> a tool_use block; kToolArguments ->
//              input_json_delta. A piece for a block already closed is
//              written with that block's index.
// kStart writes nothing: the host sends the head and begin() when it comes.
// Both shapes: a kSignature that comes before its block's first chunk is a
// tool call's (Gemini's thoughtSignature) and goes into the call's id
// (detail::tool_call_id), as it does in a whole answer; a signature on a
// text part (Gemini's, which Gemini does not require back) has no place in
// either shape. Empty pieces write nothing.
// StreamChunk::restart is the caller's to handle (the writer cannot take
// back what it wrote).
//
// end() writes what the chunks did not: every block of the result whose
// index no chunk carried, whole (a refusal, a redacted thinking block, the
// whole answer of a call that did not stream), then OpenAI: one delta with
// thinking_blocks (every thinking and redacted block, signed) when the
// answer has any, the finish_reason chunk (with logprobs when asked), a
// usage chunk when include_usage, and "data: [DONE]"; Anthropic: the last
// content_block_stop (an empty text block when the answer had none), a
// late signature_delta for a streamed thinking block whose signature the
// chunks did not carry as the answer has it (a provider other than
// Anthropic's: tagged with its origin; the SDK keeps the last), then
// message_delta with stop_reason, stop_sequence and usage, message_stop.
// fail() ends a stream whose call failed after it began (an error event in
// the shape's format; OpenAI: no [DONE] after it). Anthropic's
// message_start carries the request's input estimate; message_delta the
// real counts. Not thread-safe: one writer per stream.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual std::string begin() = 0;
  virtual std::string chunk(const StreamChunk& chunk) = 0;
  virtual std::string end(const StepResult& result) = 0;
  virtual std::string fail(const ApiError& error) = 0;
  // What keeps an idle stream open through proxies' idle timeouts while the
  // upstream is silent (a long thinking phase): an SSE comment, Anthropic's
  // `ping` event. Written between events only; changes nothing the client
  // accumulates.
  virtual std::string keep_alive() = 0;
};

// The writer for `request`'s shape. `id` is the response id, `created`
// seconds since the epoch, `model` the model named in the stream.
std::unique_ptr<StreamWriter> make_stream_writer(const ParsedRequest& request, std::string id, std::int64_t created,
                                                 std::string model);

}  // namespace switchboard::gateway
