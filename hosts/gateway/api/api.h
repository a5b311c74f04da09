// The client-facing API shapes the gateway speaks: OpenAI Chat Completions
// (POST /v1/chat/completions) and Anthropic Messages (POST /v1/messages).
// Pure translation, no I/O: a request body + headers -> what the Dispatcher
// needs; a StepResult or streamed pieces -> the bytes the client expects.
// One file per shape: api/openai.cpp, api/anthropic.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchboard/switchboard.h"

namespace switchboard::gateway {

enum class ApiShape { kOpenAI, kAnthropic };

// [gateway] max_json_depth's default: the deepest nesting of a request body.
constexpr int kDefaultMaxJsonDepth = 64;

// The request's headers as (name, value) pairs, in any case: a list rather
// than a lookup, because x-switchboard-meta-NAME headers are found by prefix.
// Names compare case-insensitively; of a repeated header the last one counts.
using Headers = std::vector<std::pair<std::string_view, std::string_view>>;

// A client's request, parsed.
struct ParsedRequest {
  ApiShape shape = ApiShape::kOpenAI;
  std::string model;               // as asked: "auto", a tier name, or a model name
  bool stream = false;
  bool include_usage = false;      // OpenAI stream_options.include_usage
  // The call: messages (system included), tools, and the step the rules see:
  //  - role, untrusted_input, tool_depth and step.meta from the request's
  //    `metadata` object (keys "role", "untrusted_input", "tool_depth"; every
  //    other key, string/number/bool, to step.meta; Anthropic's user_id is
  //    skipped), then from headers x-switchboard-role,
  //    x-switchboard-untrusted-input ("true"/"1"/"false"/"0"),
  //    x-switchboard-tool-depth, x-switchboard-meta-NAME (NAME lowercased,
  //    the value a string); headers win; role defaults to "chat";
  //  - input_tokens counted from the messages' and tools' text (estimate_tokens);
  //  - needs_chain_of_thought from the request's reasoning settings (OpenAI
  //    reasoning_effort other than "none"/"minimal", Anthropic thinking.type "enabled");
  //  - output_must_be_json from OpenAI response_format json_object/json_schema.
  StepCall call;
  // What the client asked for, if anything ("none"/"minimal" and thinking
  // "disabled" leave it unset: Reasoning has no "off").
  std::optional<Reasoning> reasoning;
  std::optional<std::int64_t> max_output_tokens;  // max_completion_tokens / max_tokens
  // The bound the request was parsed with; a model's tool arguments nested
  // deeper are answered as text, never re-serialised as JSON.
  int max_json_depth = kDefaultMaxJsonDepth;
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
ApiResult<ParsedRequest> parse_openai_chat(std::string_view body, const Headers& headers,
                                           int max_json_depth = kDefaultMaxJsonDepth);
ApiResult<ParsedRequest> parse_anthropic_messages(std::string_view body, const Headers& headers,
                                                  int max_json_depth = kDefaultMaxJsonDepth);

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

// A whole (non-streamed) answer. `id` is the response id ("chatcmpl-..." /
// "msg_..."), `created` seconds since the epoch. The `model` field is the
// model that served it (StepResult::model; request.model when empty). A tool
// call the provider gave no id gets "call_<id>_<index>", unique per answer.
std::string render_response(const ParsedRequest& request, const StepResult& result, const std::string& id,
                            std::int64_t created);

// A streamed answer, as SSE bytes: begin() once, piece() per chunk of text,
// end() once with the finished StepResult (usage, finish reason, tool calls;
// OpenAI: a usage chunk when include_usage, then "data: [DONE]"; Anthropic:
// content_block_stop, message_delta with usage, message_stop). fail() ends a
// stream whose call failed after it began (an error event in the shape's
// format; OpenAI: no [DONE] after it). Empty pieces write nothing; when no
// piece was written, end() writes the result's whole text first. Anthropic's
// message_start carries the request's input estimate; message_delta the real
// counts. Not thread-safe: one writer per stream.
class StreamWriter {
 public:
  StreamWriter(const ParsedRequest& request, std::string id, std::int64_t created, std::string model);
  std::string begin();
  std::string piece(std::string_view text);
  std::string end(const StepResult& result);
  std::string fail(const ApiError& error);

 private:
  ApiShape shape_;
  bool include_usage_;
  std::string id_;
  std::int64_t created_;
  std::string model_;
  std::int64_t input_tokens_ = 0;  // Anthropic message_start: the request's estimate
  int max_json_depth_ = kDefaultMaxJsonDepth;  // the request's: bounds the tool arguments re-serialised
  bool text_started_ = false;  // a piece of text was written (Anthropic: its content block is open)
};

}  // namespace switchboard::gateway
