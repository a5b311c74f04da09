// Anthropic Messages API (POST {endpoint}/v1/messages, anthropic-version
// 2023-06-01). What happens to each field of the canonical request
// (request.h); "refused" means build_request fails with
// Status::upstream("cannot take ...") so the dispatcher tries another model.
//
// Messages
//  - "system" messages: their text blocks become the top-level `system`, a
//    string (joined with blank lines) unless a block carries a cache
//    breakpoint, then an array of text blocks each with its cache_control.
//    Any other block in a system message is refused.
//  - "tool" messages and tool results become user messages of tool_result
//    blocks; consecutive messages of one role are merged into one (parallel
//    tool results must share a message). Empty text blocks are not sent (the
//    API refuses them); a message left empty is not sent.
//  - text -> text. refusal (another provider's, in history) -> text: it is
//    what the model said.
//  - image -> image with source base64 {media_type, data} (jpeg, png, gif,
//    webp; other types refused), url {url}, or file {file_id} (files made by
//    Anthropic only; another provider's file id is refused). `detail` is
//    OpenAI's resolution hint: Anthropic sizes images itself, so it is not
//    sent.
//  - document -> document {source, title}: base64 application/pdf, a url, a
//    file id (as for images), or a text/* file as a text source
//    {type text, media_type text/plain, data: the decoded text}. Other media
//    types are refused.
//  - audio: refused (the Messages API takes no audio).
//  - tool use -> tool_use {id, name, input: the arguments object}. A call
//    without an id (Gemini's) gets "toolu_sb_<n>", numbered in order through
//    the conversation, and a result without an id answers the first such call
//    of its tool_name still unanswered. Gemini's signature on it is not sent.
//  - tool result -> tool_result {tool_use_id, content: [text | image |
//    document blocks] (omitted when empty), is_error (sent when true)}.
//  - thinking (origin "anthropic") -> thinking {thinking, signature};
//    redacted thinking (origin "anthropic") -> redacted_thinking {data}: sent
//    back verbatim and in place, as the tool loop with thinking requires.
//    Another provider's (or an unknown origin's) thinking is not sent, as
//    the providers' docs require for foreign reasoning.
//  - opaque (origin "anthropic"): its JSON, as the block; another
//    provider's: not sent.
//  - cache breakpoints -> cache_control {type ephemeral} (+ ttl "1h"; "5m" is
//    the default and not sent; any other ttl is invalid_argument) on the
//    block, system part or tool that carries it. A breakpoint on a thinking
//    block is refused (the API does not take one there), and so are more
//    than 4 in one request (the API's limit).
//  - No breakpoint anywhere and the model's auto_cache set: cache_control
//    {type ephemeral} goes on the last tool, the last system part and the
//    conversation's last block that can carry one (not thinking or redacted
//    thinking: the last block before them, in the last message that has
//    one), so the next turn reads this prefix from the cache. That is 3 at
//    most, inside the API's limit of 4.
//
// Tools and tool choice
//  - tools -> {name, description (when not empty), input_schema,
//    cache_control}; `strict` is not sent: the Messages API has no strict
//    tools (tool inputs follow the schema without it, unchecked). An opaque
//    tool of origin "anthropic" (web_search...) is sent as given (+
//    cache_control); another provider's opaque tool is refused.
//  - tool_choice auto | none | required -> any | named -> tool {name};
//    parallel_tool_calls false -> disable_parallel_tool_use true (on auto
//    when no choice was given; not sent with none). A required or named
//    choice without tools is invalid_argument; auto or none without tools
//    is not sent (it means what no tools means).
//
// Output format
//  - JSON object: an instruction to answer with one JSON object is appended
//    to the system prompt (the API has no JSON mode; it is a request, not a
//    guarantee).
//  - JSON schema: through a forced tool. A tool named "json_answer__" + the
//    schema's name (the prefix lets the answer be recognised, as the answer
//    is read without the request; callers' tools may not use it) with the
//    schema as input_schema and tool_choice forcing it; with the caller's
//    tools also present and tool choice auto (or none given), tool_choice
//    is `any`: the model calls one of the caller's tools or answers. A
//    schema whose top level is not an object, or tool choice required with
//    a schema, is refused. In the answer that tool_use becomes a text block
//    holding the arguments JSON, and stop_reason tool_use becomes end_turn
//    when it was the only call (raw_stop_reason stays "tool_use"); streamed,
//    its input_json_delta pieces arrive as kText chunks.
//
// Sampling
//  - temperature (0..1; above 1 refused), top_p, top_k, stop ->
//    stop_sequences, user -> metadata.user_id.
//  - seed, presence and frequency penalties, logprobs and top_logprobs: the
//    API has none of them; refused (a seed is a promise of reproducibility
//    and penalties change the answer, so sending the request without them
//    would change what the caller asked for).
//
// Reasoning and the output cap
//  - The budget: reasoning.budget_tokens if set (0: no thinking); else
//    effort (none: off, minimal: max(low / 2, 1024), low, medium, high from
//    the model's thinking_budget, xhigh: 2 * high); else the rules' level.
//    A budget > 0 -> thinking {type enabled, budget_tokens}. The rules' level
//    asks a model configured without thinking (capabilities.thinking =
//    false) for none; the caller's own setting never reaches such a model
//    (the dispatcher skips it).
//  - max_tokens (required): the caller's cap, else the model's
//    max_output_tokens, never above the latter. The budget is taken from
//    inside it: budget = min(budget, max_tokens - 1); when that is below the
//    API's minimum of 1024 the request is refused ("cannot take a thinking
//    budget of N with max_tokens M").
//  - The API refuses thinking together with forced tool use (tool_choice any
//    or tool, which a JSON schema answer also needs), a temperature other
//    than 1, top_k, or top_p below 0.95, and in a tool loop whose assistant
//    turn did not start with a thinking block of its own (a turn another
//    provider began: its reasoning is not sent; Claude thinks once, at the
//    start of a turn, so the turn is everything after the last user message
//    that is more than tool results). Thinking that only the rules' level
//    asked for yields to these (no thinking is sent: the caller's explicit
//    settings and history win over the rules' level); thinking the caller
//    asked for (effort or budget) is refused together with them.
//  - Files sources add the header anthropic-beta: files-api-2025-04-14.
//
// Answers
//  - Content blocks in order, origin "anthropic": thinking (+ signature),
//    redacted_thinking (data in `signature`), text, tool_use; any other
//    block (server_tool_use, web_search_tool_result, later types) as an
//    opaque block holding its JSON, sent back verbatim. Text citations are
//    not kept (the canonical text block has no place for them).
//  - stop_reason: end_turn, max_tokens, stop_sequence (+ stop_sequence),
//    tool_use, pause_turn, refusal map to their StopReason;
//    model_context_window_exceeded to kMaxTokens; anything else to kOther.
//    raw_stop_reason keeps the API's word.
//  - Streams: text_delta -> kText, thinking_delta -> kThinking,
//    signature_delta -> kSignature, a tool_use start -> kToolCallStart,
//    input_json_delta -> kToolArguments, each with index = the content
//    block's index (the answer's blocks are the API's, one for one). A
//    stream's usage is message_start's usage overlaid with message_delta's,
//    whose counts are cumulative (output_tokens always, input and cache
//    counts when present).
#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "switchboard/usage.h"
#include "providers/wire_common.h"
#include "providers/wire_format.h"

namespace switchboard {

namespace {

using wire::json;
using Type = ContentBlock::Type;

constexpr const char* kApiVersion = "2023-06-01";
constexpr const char* kOrigin = "anthropic";
constexpr const char* kFilesBeta = "files-api-2025-04-14";
constexpr const char* kJsonInstruction =
    "Answer with a single JSON object and nothing else: no prose, no code fences.";
// The forced tool a JSON schema answer goes through is named this + the
// schema's name, so an answer (read without its request) can be told apart.
constexpr std::string_view kJsonToolPrefix = "json_answer__";
constexpr std::size_t kMaxToolName = 64;  // the API's limit on a tool's name
constexpr std::int64_t kMinThinkingBudget = 1024;
constexpr int kMaxCacheBreakpoints = 4;  // the API's limit per request

bool is_json_tool(std::string_view name) { return name.starts_with(kJsonToolPrefix); }

// Overloaded and internal errors are the API's 529 and 500: worth a retry.
Status error_status(const json& error, const std::string& prefix) {
  const std::string type = wire::string_at(error, "type");
  const std::string what = prefix + wire::describe_error(error);
  return type == "overloaded_error" || type == "api_error" ? Status::unavailable(what) : Status::upstream(what);
}

Status cannot_take(const std::string& what, const std::string& why) {
  return Status::upstream("cannot take " + what + " (" + why + ")");
}

// Sets the API's stop reason on `r`, and turns the JSON-schema answer tool's
// sole call into the end of the turn it stands for.
void set_stop(ModelResponse& r, std::string raw, std::string stop_sequence, bool json_answer) {
  static constexpr std::array<std::pair<std::string_view, StopReason>, 7> kReasons{{
      {"end_turn", StopReason::kEndTurn},
      {"max_tokens", StopReason::kMaxTokens},
      {"stop_sequence", StopReason::kStopSequence},
      {"tool_use", StopReason::kToolUse},
      {"pause_turn", StopReason::kPauseTurn},
      {"refusal", StopReason::kRefusal},
      {"model_context_window_exceeded", StopReason::kMaxTokens},
  }};
  r.stop_reason = StopReason::kOther;
  for (const auto& [name, reason] : kReasons) {
    if (name == raw) r.stop_reason = reason;
  }
  if (r.stop_reason == StopReason::kToolUse && json_answer && r.tool_calls().empty()) {
    r.stop_reason = StopReason::kEndTurn;
  }
  if (r.stop_reason == StopReason::kStopSequence) r.stop_sequence = std::move(stop_sequence);
  r.raw_stop_reason = std::move(raw);
}

// One content block of an answer, as the canonical block (origin anthropic).
// `json_answer` is set when it is the JSON-schema answer tool's call.
ContentBlock block_from(const json& block, bool& json_answer) {
  ContentBlock b;
  b.origin = kOrigin;
  const std::string type = wire::string_at(block, "type");
  if (type == "text") {
    b.type = Type::kText;
    b.text = wire::string_at(block, "text");
  } else if (type == "thinking") {
    b.type = Type::kThinking;
    b.text = wire::string_at(block, "thinking");
    b.signature = wire::string_at(block, "signature");
  } else if (type == "redacted_thinking") {
    b.type = Type::kRedactedThinking;
    b.signature = wire::string_at(block, "data");
  } else if (type == "tool_use" && is_json_tool(wire::string_at(block, "name"))) {
    auto input = block.find("input");
    b.type = Type::kText;
    b.text = input != block.end() ? wire::to_text(*input) : "{}";
    json_answer = true;
  } else if (type == "tool_use") {
    auto input = block.find("input");
    b.type = Type::kToolUse;
    b.tool_call = {wire::string_at(block, "id"), wire::string_at(block, "name"),
                   input != block.end() ? wire::to_text(*input) : "{}"};
  } else {
    b.type = Type::kOpaque;
    b.opaque_json = wire::to_text(block);
  }
  return b;
}

// The bytes of base64 `text` (standard or URL alphabet, padding optional,
// whitespace skipped); nullopt when it is not base64.
std::optional<std::string> decode_base64(std::string_view text) {
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=' || c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    else return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    if (++count == 4) {
      out += static_cast<char>((bits >> 16) & 0xff);
      out += static_cast<char>((bits >> 8) & 0xff);
      out += static_cast<char>(bits & 0xff);
      bits = 0;
      count = 0;
    }
  }
  if (count == 1) return std::nullopt;
  if (count == 2) out += static_cast<char>((bits >> 4) & 0xff);
  if (count == 3) {
    out += static_cast<char>((bits >> 10) & 0xff);
    out += static_cast<char>((bits >> 2) & 0xff);
  }
  return out;
}

class AnthropicStreamDecoder final : public StreamDecoder {
 public:
  explicit AnthropicStreamDecoder(std::string model_id) { response_.model = std::move(model_id); }

  Status on_event(const SseEvent& event, const ChunkHandler& on_chunk) override {
    if (done_) return Status();
    try {
      Result<json> parsed = wire::parse_body(event.data);
      if (!parsed.ok()) return Status::upstream("stream event '" + event.type + "': " + parsed.status().message());
      const json& e = *parsed;
      // The data's own type names the event (the SSE `event:` line repeats it).
      const std::string type = e.contains("type") ? wire::string_at(e, "type") : event.type;
      if (type == "message_start") {
        if (const json* message = wire::object_at(e, "message")) {
          if (std::string model = wire::string_at(*message, "model"); !model.empty()) {
            response_.model = std::move(model);
          }
          if (const json* usage = wire::object_at(*message, "usage")) overlay_usage(*usage);
        }
      } else if (type == "content_block_start") {
        if (const json* block = wire::object_at(e, "content_block")) start_block(e.value("index", 0), *block, on_chunk);
      } else if (type == "content_block_delta") {
        if (const json* delta = wire::object_at(e, "delta")) add_delta(e.value("index", 0), *delta, on_chunk);
      } else if (type == "content_block_stop") {
        stop_block(e.value("index", 0), on_chunk);
      } else if (type == "message_delta") {
        if (const json* delta = wire::object_at(e, "delta")) {
          if (std::string reason = wire::string_at(*delta, "stop_reason"); !reason.empty()) {
            stop_reason_ = std::move(reason);
            stop_sequence_ = wire::string_at(*delta, "stop_sequence");
          }
        }
        if (const json* usage = wire::object_at(e, "usage")) overlay_usage(*usage);
      } else if (type == "message_stop") {
        done_ = true;
      } else if (type == "error") {
        const json* error = wire::object_at(e, "error");
        return error_status(error != nullptr ? *error : e, "stream error: ");
      }
      // ping and event types added later need nothing.
      return Status();
    } catch (const json::exception& ex) {
      return Status::upstream("stream event '" + event.type + "': " + ex.what());
    }
  }

  bool done() const override { return done_; }

  Result<ModelResponse> finish() override {
    if (!done_) return Status::unavailable("stream ended before its final event");
    if (usage_.is_null()) return Status::upstream("stream carried no usage");
    Result<Usage> usage = wire::usage_or_upstream(UsageFormat::kAnthropic, json{{"usage", usage_}});
    if (!usage.ok()) return usage.status();
    response_.usage = *usage;
    bool json_answer = false;
    for (auto& [index, open] : blocks_) {
      stop_block(index, nullptr);  // a block whose stop event never came is whole all the same
      json_answer = json_answer || open.json_answer;
      response_.content.push_back(std::move(open.block));
    }
    set_stop(response_, std::move(stop_reason_), std::move(stop_sequence_), json_answer);
    return std::move(response_);
  }

 private:
  // A block being streamed.
  struct OpenBlock {
    ContentBlock block;
    bool json_answer = false;  // the JSON-schema answer tool: its input is the answer's text
    json opaque;               // kOpaque: the block as it started
    std::string partial_json;  // kOpaque: its input, as it streams
    bool stopped = false;
  };

  void start_block(int index, const json& start, const ChunkHandler& on_chunk) {
    OpenBlock& open = blocks_[index];
    open.block = block_from(start, open.json_answer);
    ContentBlock& b = open.block;
    if (b.type == Type::kToolUse) {
      b.tool_call.arguments_json.clear();  // the input arrives as deltas
      if (on_chunk) on_chunk(StreamChunk::tool_call_start(index, b.tool_call.id, b.tool_call.name));
    } else if (open.json_answer) {
      b.text.clear();  // the input arrives as deltas
    } else if (b.type == Type::kOpaque) {
      open.opaque = start;  // delivered whole when it stops
    } else if (b.type == Type::kText) {
      deliver(StreamChunk::Kind::kText, index, b.text, on_chunk);
    } else if (b.type == Type::kThinking) {
      deliver(StreamChunk::Kind::kThinking, index, b.text, on_chunk);
      deliver(StreamChunk::Kind::kSignature, index, b.signature, on_chunk);
    } else if (b.type == Type::kRedactedThinking) {
      deliver(StreamChunk::Kind::kRedactedThinking, index, b.signature, on_chunk);  // whole at its start
    }
  }

  void add_delta(int index, const json& delta, const ChunkHandler& on_chunk) {
    const std::string kind = wire::string_at(delta, "type");
    auto it = blocks_.find(index);
    if (it == blocks_.end()) {
      // A text or thinking delta whose block never started (the API always
      // starts one; a proxy may not) starts it; a tool's input cannot, as its
      // id and name came with the start.
      if (kind != "text_delta" && kind != "thinking_delta" && kind != "signature_delta") return;
      it = blocks_.emplace(index, OpenBlock{}).first;
      it->second.block.type = kind == "text_delta" ? Type::kText : Type::kThinking;
      it->second.block.origin = kOrigin;
    }
    OpenBlock& open = it->second;
    ContentBlock& b = open.block;
    if (kind == "text_delta" && b.type == Type::kText) {
      const std::string piece = wire::string_at(delta, "text");
      b.text += piece;
      deliver(StreamChunk::Kind::kText, index, piece, on_chunk);
    } else if (kind == "thinking_delta" && b.type == Type::kThinking) {
      const std::string piece = wire::string_at(delta, "thinking");
      b.text += piece;
      deliver(StreamChunk::Kind::kThinking, index, piece, on_chunk);
    } else if (kind == "signature_delta" && b.type == Type::kThinking) {
      const std::string piece = wire::string_at(delta, "signature");
      b.signature += piece;
      deliver(StreamChunk::Kind::kSignature, index, piece, on_chunk);
    } else if (kind == "input_json_delta") {
      const std::string piece = wire::string_at(delta, "partial_json");
      if (open.json_answer) {
        b.text += piece;
        deliver(StreamChunk::Kind::kText, index, piece, on_chunk);
      } else if (b.type == Type::kToolUse) {
        b.tool_call.arguments_json += piece;
        deliver(StreamChunk::Kind::kToolArguments, index, piece, on_chunk);
      } else if (b.type == Type::kOpaque) {
        open.partial_json += piece;
      }
    }
    // citations_delta and delta types added later are not kept.
  }

  // Ends the block at `index`: an opaque item is whole now and delivered.
  void stop_block(int index, const ChunkHandler& on_chunk) {
    auto it = blocks_.find(index);
    if (it == blocks_.end() || it->second.stopped) return;
    OpenBlock& open = it->second;
    open.stopped = true;
    ContentBlock& b = open.block;
    // A call without arguments streams none.
    if (b.type == Type::kToolUse && b.tool_call.arguments_json.empty()) b.tool_call.arguments_json = "{}";
    if (open.json_answer && b.text.empty()) b.text = "{}";
    if (b.type == Type::kOpaque) {
      if (!open.partial_json.empty()) {
        json input = json::parse(open.partial_json, nullptr, /*allow_exceptions=*/false);
        if (!input.is_discarded()) open.opaque["input"] = std::move(input);
      }
      b.opaque_json = wire::to_text(open.opaque);
      deliver(StreamChunk::Kind::kOpaque, index, b.opaque_json, on_chunk);
    }
  }

  // Signatures, redacted thinking and opaque items are Anthropic's own.
  static void deliver(StreamChunk::Kind kind, int index, const std::string& piece, const ChunkHandler& on_chunk) {
    if (piece.empty() || !on_chunk) return;
    const bool owned = kind == StreamChunk::Kind::kSignature || kind == StreamChunk::Kind::kRedactedThinking ||
                       kind == StreamChunk::Kind::kOpaque;
    on_chunk(StreamChunk::of(kind, index, piece, owned ? kOrigin : ""));
  }

  // Later counts replace earlier ones, key by key; a null count says nothing.
  void overlay_usage(const json& usage) {
    if (usage_.is_null()) usage_ = json::object();
    for (const auto& [key, value] : usage.items()) {
      if (!value.is_null()) usage_[key] = value;
    }
  }

  ModelResponse response_;
  std::map<int, OpenBlock> blocks_;  // by content block index, which is the answer's order
  std::string stop_reason_;
  std::string stop_sequence_;
  json usage_;
  bool done_ = false;
};

// The reasoning the request asks of the model: a thinking budget (0: none),
// and whether the caller asked for it explicitly (else the rules' level did).
struct Thinking {
  std::int64_t budget = 0;
  bool explicit_ask = false;
};

// Whether the caller set a cache breakpoint anywhere: on a tool, a block,
// or a block inside a tool result (even one that is not sent).
bool sets_cache(const ModelRequest& request) {
  auto in = [](const std::vector<ContentBlock>& blocks, const auto& self) -> bool {
    return std::any_of(blocks.begin(), blocks.end(),
                       [&](const ContentBlock& b) { return b.cache.has_value() || self(b.content, self); });
  };
  return std::any_of(request.tools.begin(), request.tools.end(), [](const ToolSpec& t) { return t.cache.has_value(); }) ||
         std::any_of(request.messages.begin(), request.messages.end(),
                     [&](const Message& m) { return in(m.content, in); });
}

Thinking thinking_for(const ReasoningRequest& r, const ThinkingBudgets& budgets) {
  if (r.budget_tokens) return {std::max<std::int64_t>(*r.budget_tokens, 0), true};
  if (r.effort) {
    switch (*r.effort) {
      case Effort::kNone: return {0, true};
      case Effort::kMinimal: return {std::max(budgets.low / 2, kMinThinkingBudget), true};
      case Effort::kLow: return {budgets.low, true};
      case Effort::kMedium: return {budgets.medium, true};
      case Effort::kHigh: return {budgets.high, true};
      case Effort::kXHigh: return {2 * budgets.high, true};
    }
  }
  return {budgets.for_level(r.level), false};
}

// Builds one request body: messages, system, tools, and what they need.
class BodyBuilder {
 public:
  explicit BodyBuilder(const ModelRequest& request) : request_(request) {}

  // The system parts and messages, in the API's shape.
  Status add_messages() {
    for (std::size_t i = 0; i < request_.messages.size(); ++i) {
      const Message& m = request_.messages[i];
      const std::string where = "message " + std::to_string(i + 1);
      if (m.role == "system") {
        for (const ContentBlock& b : m.content) {
          if (b.type != Type::kText) return cannot_take("a non-text block in " + where, "a system prompt is text");
          if (b.text.empty()) continue;
          json part = {{"type", "text"}, {"text", b.text}};
          if (Status s = add_cache(b.cache, where, part); !s.ok()) return s;
          system_.push_back(std::move(part));
        }
        continue;
      }
      if (m.role != "user" && m.role != "assistant" && m.role != "tool") {
        return Status::invalid_argument(where + ": unknown role '" + m.role + "'");
      }
      const bool assistant = m.role == "assistant";
      json blocks = json::array();
      for (const ContentBlock& b : m.content) {
        if (Status s = add_block(b, assistant, where, blocks); !s.ok()) return s;
      }
      append(assistant ? "assistant" : "user", std::move(blocks));
    }
    return Status();
  }

  // The JSON-object instruction, after the caller's system prompt.
  void add_system_instruction(const char* text) { system_.push_back({{"type", "text"}, {"text", text}}); }

  // The caller's tools.
  Status add_tools() {
    for (const ToolSpec& t : request_.tools) {
      json tool;
      if (!t.opaque_json.empty()) {
        if (t.origin != kOrigin) {
          return cannot_take("the " + (t.origin.empty() ? std::string("unknown provider's") : t.origin) + " tool '" +
                                 t.name + "'",
                             "it is another provider's own tool");
        }
        Result<json> given = wire::parse_request_object(t.opaque_json, "tool '" + t.name + "'");
        if (!given.ok()) return given.status();
        tool = std::move(*given);
      } else {
        if (is_json_tool(t.name)) {
          return Status::invalid_argument("tool '" + t.name + "': names starting with '" +
                                          std::string(kJsonToolPrefix) + "' are reserved for JSON schema answers");
        }
        Result<json> schema = wire::parse_request_object(t.parameters_json, "tool '" + t.name + "' parameters");
        if (!schema.ok()) return schema.status();
        tool = {{"name", t.name}};
        if (!t.description.empty()) tool["description"] = t.description;
        tool["input_schema"] = std::move(*schema);
      }
      if (Status s = add_cache(t.cache, "tool '" + t.name + "'", tool); !s.ok()) return s;
      tools_.push_back(std::move(tool));
    }
    return Status();
  }

  // The forced tool a JSON schema answer goes through; its name.
  Result<std::string> add_json_schema_tool(const OutputFormat& format) {
    std::string name = std::string(kJsonToolPrefix) + (format.name.empty() ? "answer" : format.name);
    if (name.size() > kMaxToolName) name.resize(kMaxToolName);
    Result<json> schema = wire::parse_request_object(format.schema_json, "output format '" + format.name + "' schema");
    if (!schema.ok()) return schema.status();
    if (schema->contains("type") && (*schema)["type"] != "object") {
      return cannot_take("a JSON schema whose top level is not an object",
                         "the answer goes through a tool's input, which is an object");
    }
    if (!schema->contains("type")) (*schema)["type"] = "object";
    std::string description = "Give your answer by calling this tool: its input is the answer, as JSON that follows "
                              "the schema.";
    if (!format.description.empty()) description += " The answer: " + format.description;
    tools_.push_back({{"name", name}, {"description", std::move(description)}, {"input_schema", std::move(*schema)}});
    return name;
  }

  // False when the conversation ends in a tool loop whose assistant turn
  // did not start with Anthropic thinking (another provider's turn, or one
  // made without thinking): the API then refuses thinking, which must start
  // the turn. The turn is what follows the last user message that is more
  // than tool results; Claude thinks once at its start.
  bool thinking_fits_turn() const {
    std::size_t start = messages_.size();
    while (start > 0) {
      const json& m = messages_[start - 1];
      const bool results_only =
          m["role"] == "user" && std::all_of(m["content"].begin(), m["content"].end(),
                                             [](const json& b) { return b["type"] == "tool_result"; });
      if (m["role"] == "user" && !results_only) break;
      --start;
    }
    bool uses_tools = false;
    std::optional<bool> starts_with_thinking;
    for (std::size_t i = start; i < messages_.size(); ++i) {
      const json& m = messages_[i];
      if (m["role"] != "assistant") continue;
      const json& content = m["content"];
      if (!starts_with_thinking) {
        const json& first = content.front()["type"];
        starts_with_thinking = first == "thinking" || first == "redacted_thinking";
      }
      for (const json& b : content) uses_tools = uses_tools || b["type"] == "tool_use";
    }
    return !uses_tools || starts_with_thinking.value_or(true);
  }

  // The cache breakpoints the body carries, in its tools, system parts,
  // blocks and the blocks inside tool results.
  int cache_breakpoints() const {
    int count = 0;
    auto in = [&count](const json& parts) {
      for (const json& p : parts) count += p.contains("cache_control") ? 1 : 0;
    };
    in(tools_);
    in(system_);
    for (const json& m : messages_) {
      in(m["content"]);
      for (const json& b : m["content"]) {
        if (b["type"] == "tool_result" && b.contains("content")) in(b["content"]);
      }
    }
    return count;
  }

  // Breakpoints where the caller set none (the model's auto_cache): on the
  // last tool, the last system part, and the conversation's last block that
  // can carry one (thinking blocks cannot), so the next turn, whose prefix
  // this whole request is, reads it from the cache.
  void place_cache_breakpoints() {
    const json control = {{"type", "ephemeral"}};
    if (!tools_.empty()) tools_.back()["cache_control"] = control;
    if (!system_.empty()) system_.back()["cache_control"] = control;
    for (auto m = messages_.rbegin(); m != messages_.rend(); ++m) {
      json& content = (*m)["content"];
      for (auto b = content.rbegin(); b != content.rend(); ++b) {
        if ((*b)["type"] != "thinking" && (*b)["type"] != "redacted_thinking") {
          (*b)["cache_control"] = control;
          return;
        }
      }
    }
  }

  bool uses_files() const { return uses_files_; }
  json take_messages() { return std::move(messages_); }
  json take_tools() { return std::move(tools_); }
  bool has_tools() const { return !tools_.empty(); }

  // The system prompt: an array of text blocks when one carries a cache
  // breakpoint, else their text joined; null when there is none.
  json take_system() {
    if (system_.empty()) return nullptr;
    if (std::any_of(system_.begin(), system_.end(), [](const json& p) { return p.contains("cache_control"); })) {
      return std::move(system_);
    }
    std::string joined;
    for (const json& p : system_) {
      if (!joined.empty()) joined += "\n\n";
      joined += p["text"].get<std::string>();
    }
    return joined;
  }

 private:
  static Status add_cache(const std::optional<CacheBreakpoint>& cache, const std::string& where, json& target) {
    if (!cache) return Status();
    json control = {{"type", "ephemeral"}};
    if (cache->ttl == "1h") {
      control["ttl"] = "1h";
    } else if (!cache->ttl.empty() && cache->ttl != "5m") {
      return Status::invalid_argument(where + ": cache ttl '" + cache->ttl + "' is not \"5m\" or \"1h\"");
    }
    target["cache_control"] = std::move(control);
    return Status();
  }

  // Appends `blocks` as a `role` message, or to the last one if it has that role.
  void append(const char* role, json blocks) {
    if (blocks.empty()) return;  // the API refuses empty content
    if (!messages_.empty() && messages_.back()["role"] == role) {
      for (json& b : blocks) messages_.back()["content"].push_back(std::move(b));
    } else {
      messages_.push_back({{"role", role}, {"content", std::move(blocks)}});
    }
  }

  // A media block's source; `document` allows PDFs and text files, else images.
  Result<json> source_of(const ContentBlock& b, bool document, const std::string& what) {
    const MediaSource& s = b.source;
    switch (s.kind) {
      case MediaSource::Kind::kUrl:
        return json{{"type", "url"}, {"url", s.data}};
      case MediaSource::Kind::kFileId:
        if (b.origin != kOrigin) {
          return cannot_take("a file id of " + (b.origin.empty() ? std::string("an unknown provider") : b.origin) +
                                 " in " + what,
                             "Anthropic can read only its own files");
        }
        uses_files_ = true;
        return json{{"type", "file"}, {"file_id", s.data}};
      case MediaSource::Kind::kBase64:
        break;
    }
    if (s.media_type.empty()) return Status::invalid_argument(what + ": base64 data without a media type");
    if (document && s.media_type.starts_with("text/")) {
      std::optional<std::string> text = decode_base64(s.data);
      if (!text) return Status::invalid_argument(what + ": the text document's data is not base64");
      return json{{"type", "text"}, {"media_type", "text/plain"}, {"data", std::move(*text)}};
    }
    static constexpr std::array<std::string_view, 4> kImageTypes{"image/jpeg", "image/png", "image/gif",
                                                                  "image/webp"};
    const bool known = document ? s.media_type == "application/pdf"
                                : std::find(kImageTypes.begin(), kImageTypes.end(), s.media_type) != kImageTypes.end();
    if (!known) {
      return cannot_take(std::string(document ? "a document" : "an image") + " of type " + s.media_type + " in " + what,
                         document ? "Anthropic reads PDFs and text files" : "Anthropic reads JPEG, PNG, GIF and WebP");
    }
    return json{{"type", "base64"}, {"media_type", s.media_type}, {"data", s.data}};
  }

  // Appends block `b` of a message (of the assistant's when `assistant`) to `out`.
  Status add_block(const ContentBlock& b, bool assistant, const std::string& where, json& out) {
    json block;
    switch (b.type) {
      case Type::kText:
      case Type::kRefusal:
        if (b.text.empty()) return Status();
        block = {{"type", "text"}, {"text", b.text}};
        break;
      case Type::kImage:
      case Type::kDocument: {
        const bool document = b.type == Type::kDocument;
        if (assistant) return cannot_take("an image or document in assistant " + where, "the model's turns are text");
        Result<json> source = source_of(b, document, where);
        if (!source.ok()) return source.status();
        block = {{"type", document ? "document" : "image"}, {"source", std::move(*source)}};
        if (document && !b.title.empty()) block["title"] = b.title;
        break;
      }
      case Type::kAudio:
        return cannot_take("audio in " + where, "the Messages API takes no audio");
      case Type::kToolUse: {
        if (!assistant) return Status::invalid_argument(where + ": a tool use outside an assistant message");
        const ToolCall& c = b.tool_call;
        Result<json> input =
            wire::parse_request_object(c.arguments_json, where + ": tool call '" + c.name + "' arguments");
        if (!input.ok()) return input.status();
        std::string id = c.id;
        if (id.empty()) {
          id = "toolu_sb_" + std::to_string(++synthesized_ids_);
          unanswered_.emplace_back(c.name, id);
        }
        block = {{"type", "tool_use"}, {"id", std::move(id)}, {"name", c.name}, {"input", std::move(*input)}};
        break;
      }
      case Type::kToolResult: {
        if (assistant) return Status::invalid_argument(where + ": a tool result in an assistant message");
        json content = json::array();
        for (const ContentBlock& part : b.content) {
          if (part.type != Type::kText && part.type != Type::kRefusal && part.type != Type::kImage &&
              part.type != Type::kDocument) {
            if (part.type == Type::kAudio) {
              return cannot_take("audio in a tool result in " + where, "the Messages API takes no audio");
            }
            return Status::invalid_argument(where + ": a tool result holds only text, images and documents");
          }
          if (Status s = add_block(part, false, where, content); !s.ok()) return s;
        }
        block = {{"type", "tool_result"}, {"tool_use_id", answered_id(b)}};
        if (!content.empty()) block["content"] = std::move(content);
        if (b.is_error) block["is_error"] = true;
        break;
      }
      case Type::kThinking:
      case Type::kRedactedThinking:
        if (b.origin != kOrigin) return Status();  // foreign reasoning is not sent
        if (!assistant) return Status::invalid_argument(where + ": thinking outside an assistant message");
        if (b.cache) return cannot_take("a cache breakpoint on a thinking block", "the API takes none there");
        if (b.type == Type::kThinking) {
          block = {{"type", "thinking"}, {"thinking", b.text}, {"signature", b.signature}};
        } else {
          block = {{"type", "redacted_thinking"}, {"data", b.signature}};
        }
        break;
      case Type::kOpaque: {
        if (b.origin != kOrigin) return Status();  // another provider's own item is not sent
        Result<json> given = wire::parse_request_object(b.opaque_json, where + ": opaque block");
        if (!given.ok()) return given.status();
        block = std::move(*given);
        break;
      }
    }
    if (Status s = add_cache(b.cache, where, block); !s.ok()) return s;
    out.push_back(std::move(block));
    return Status();
  }

  // The id a tool result answers: its own, or the synthesized id of the first
  // unanswered id-less call of its tool (of any tool when it names none).
  std::string answered_id(const ContentBlock& result) {
    if (!result.tool_use_id.empty()) return result.tool_use_id;
    auto it = std::find_if(unanswered_.begin(), unanswered_.end(), [&](const auto& call) {
      return result.tool_name.empty() || call.first == result.tool_name;
    });
    if (it == unanswered_.end()) return "";
    std::string id = std::move(it->second);
    unanswered_.erase(it);
    return id;
  }

  const ModelRequest& request_;
  json system_ = json::array();
  json messages_ = json::array();
  json tools_ = json::array();
  bool uses_files_ = false;
  int synthesized_ids_ = 0;
  std::vector<std::pair<std::string, std::string>> unanswered_;  // (tool name, synthesized id)
};

class AnthropicWire final : public WireFormat {
 public:
  AnthropicWire(const ModelSpec& model, std::string api_key)
      : model_id_(model.model_id.empty() ? model.name : model.model_id),
        url_(wire::join_url(model.endpoint, "/v1/messages")),
        api_key_(std::move(api_key)),
        max_output_tokens_(model.max_output_tokens),
        budgets_(model.thinking_budget),
        thinks_(model.capabilities.thinking),
        auto_cache_(model.auto_cache) {}

  Result<HttpRequest> build_request(const ModelRequest& request, bool stream) const override {
    try {
      if (Status s = wire::refuse_message_names(request.messages, "the Messages API"); !s.ok()) return s;
      const Sampling& sampling = request.sampling;
      if (sampling.seed) return cannot_take("a seed", "the Messages API has no seed");
      if (sampling.presence_penalty) return cannot_take("a presence penalty", "the Messages API has no penalties");
      if (sampling.frequency_penalty) return cannot_take("a frequency penalty", "the Messages API has no penalties");
      if (sampling.logprobs || sampling.top_logprobs) {
        return cannot_take("logprobs", "the Messages API returns no log probabilities");
      }
      if (sampling.temperature && *sampling.temperature > 1.0) {
        return cannot_take("temperature " + wire::to_text(*sampling.temperature), "Anthropic's range is 0 to 1");
      }

      BodyBuilder builder(request);
      if (Status s = builder.add_messages(); !s.ok()) return s;
      if (Status s = builder.add_tools(); !s.ok()) return s;
      const bool caller_tools = builder.has_tools();

      // Tool choice: the caller's, or the one a JSON schema answer needs.
      json tool_choice;
      const std::optional<ToolChoice>& choice = request.tool_choice;
      if (request.output_format.type == OutputFormat::Type::kJsonSchema) {
        if (choice && choice->mode == ToolChoice::Mode::kRequired) {
          return cannot_take("tool choice required with a JSON schema answer",
                             "both would go through forced tool use, and the answer tool would satisfy it");
        }
        Result<std::string> name = builder.add_json_schema_tool(request.output_format);
        if (!name.ok()) return name.status();
        if (choice && choice->mode == ToolChoice::Mode::kNamed) {
          tool_choice = {{"type", "tool"}, {"name", choice->name}};
        } else if (caller_tools && !(choice && choice->mode == ToolChoice::Mode::kNone)) {
          tool_choice = {{"type", "any"}};
        } else {
          tool_choice = {{"type", "tool"}, {"name", *name}};
        }
      } else if (choice) {
        const bool forces = choice->mode == ToolChoice::Mode::kRequired || choice->mode == ToolChoice::Mode::kNamed;
        if (!caller_tools && forces) {
          return Status::invalid_argument("tool choice asks for a tool call, but the request has no tools");
        }
        if (caller_tools) {
          switch (choice->mode) {
            case ToolChoice::Mode::kAuto: tool_choice = {{"type", "auto"}}; break;
            case ToolChoice::Mode::kNone: tool_choice = {{"type", "none"}}; break;
            case ToolChoice::Mode::kRequired: tool_choice = {{"type", "any"}}; break;
            case ToolChoice::Mode::kNamed: tool_choice = {{"type", "tool"}, {"name", choice->name}}; break;
          }
        }
      }
      if (request.parallel_tool_calls == false && builder.has_tools()) {
        if (tool_choice.is_null()) tool_choice = {{"type", "auto"}};
        if (tool_choice["type"] != "none") tool_choice["disable_parallel_tool_use"] = true;
      }

      // Thinking, and what the API will not take with it.
      Thinking thinking = thinking_for(request.reasoning, budgets_);
      if (!thinking.explicit_ask && !thinks_) thinking.budget = 0;
      if (thinking.budget > 0) {
        std::string conflict;
        const std::string type = tool_choice.is_null() ? "" : tool_choice["type"].get<std::string>();
        if (type == "any" || type == "tool") {
          conflict = request.output_format.type == OutputFormat::Type::kJsonSchema ? "a JSON schema answer"
                                                                                    : "a forced tool call";
        } else if (sampling.temperature && *sampling.temperature != 1.0) {
          conflict = "temperature " + wire::to_text(*sampling.temperature);
        } else if (sampling.top_k) {
          conflict = "top_k";
        } else if (sampling.top_p && *sampling.top_p < 0.95) {
          conflict = "top_p " + wire::to_text(*sampling.top_p);
        } else if (!builder.thinking_fits_turn()) {
          conflict = "a tool loop whose turn began without Anthropic thinking";
        }
        if (!conflict.empty()) {
          // The rules' level yields to what the caller explicitly asked for.
          if (thinking.explicit_ask) {
            return cannot_take("thinking with " + conflict,
                               "Anthropic refuses thinking with forced tool use, a temperature other than 1, "
                               "top_k, top_p below 0.95, or in a tool loop whose turn did not start with its "
                               "thinking");
          }
          thinking.budget = 0;
        }
      }
      const std::int64_t max_tokens =
          std::min(request.max_output_tokens.value_or(max_output_tokens_), max_output_tokens_);
      if (thinking.budget > 0 && std::min(thinking.budget, max_tokens - 1) < kMinThinkingBudget) {
        return cannot_take("a thinking budget of " + std::to_string(thinking.budget) + " with max_tokens " +
                               std::to_string(max_tokens),
                           "Anthropic needs 1024 <= budget_tokens < max_tokens");
      }

      if (request.output_format.type == OutputFormat::Type::kJsonObject) {
        builder.add_system_instruction(kJsonInstruction);
      }
      // The caller's breakpoints, or the model's own when it has none.
      const int breakpoints = builder.cache_breakpoints();
      if (breakpoints > kMaxCacheBreakpoints) {
        return cannot_take("more than " + std::to_string(kMaxCacheBreakpoints) + " cache breakpoints",
                           "Anthropic's limit");
      }
      if (breakpoints == 0 && auto_cache_ && !sets_cache(request)) builder.place_cache_breakpoints();

      json body = {{"model", model_id_}, {"max_tokens", max_tokens}};
      if (json system = builder.take_system(); !system.is_null()) body["system"] = std::move(system);
      body["messages"] = builder.take_messages();
      if (builder.has_tools()) body["tools"] = builder.take_tools();
      if (!tool_choice.is_null()) body["tool_choice"] = std::move(tool_choice);
      if (thinking.budget > 0) {
        body["thinking"] = {{"type", "enabled"}, {"budget_tokens", std::min(thinking.budget, max_tokens - 1)}};
      }
      if (sampling.temperature) body["temperature"] = *sampling.temperature;
      if (sampling.top_p) body["top_p"] = *sampling.top_p;
      if (sampling.top_k) body["top_k"] = *sampling.top_k;
      if (!sampling.stop.empty()) body["stop_sequences"] = sampling.stop;
      if (!sampling.user.empty()) body["metadata"] = {{"user_id", sampling.user}};
      if (stream) body["stream"] = true;

      HttpRequest http;
      http.url = url_;
      http.headers.emplace_back("Content-Type", "application/json");
      http.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
      http.headers.emplace_back("anthropic-version", kApiVersion);
      if (builder.uses_files()) http.headers.emplace_back("anthropic-beta", kFilesBeta);
      if (Status s = wire::add_passthrough(request.passthrough, WireApi::kAnthropicMessages, "Anthropic Messages",
                                           body, http.headers);
          !s.ok()) {
        return s;
      }
      if (!api_key_.empty()) http.headers.emplace_back("x-api-key", api_key_);
      http.body = wire::to_text(body);
      return http;
    } catch (const json::exception& e) {
      return Status::internal(std::string("building the request: ") + e.what());
    }
  }

  Result<ModelResponse> parse_response(std::string_view body) const override {
    return wire::read_response(body, UsageFormat::kAnthropic, [&](const json& j, ModelResponse& r) -> Status {
      const json* content = wire::array_at(j, "content");
      if (content == nullptr) return Status::upstream("body has no 'content' array");

      r.model = wire::string_at(j, "model");
      if (r.model.empty()) r.model = model_id_;
      bool json_answer = false;
      for (const json& block : *content) r.content.push_back(block_from(block, json_answer));
      set_stop(r, wire::string_at(j, "stop_reason"), wire::string_at(j, "stop_sequence"), json_answer);
      return Status();
    });
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override {
    return std::make_unique<AnthropicStreamDecoder>(model_id_);
  }

  // POST /v1/messages/count_tokens takes the Messages body's input fields
  // only: the body a call would send (so the count is the call's, translated
  // alike), less the answer's settings, which the endpoint refuses.
  std::optional<Result<HttpRequest>> build_count_request(const ModelRequest& request) const override {
    Result<HttpRequest> http = build_request(request, /*stream=*/false);
    if (!http.ok()) return http;
    try {
      json body = json::parse(http->body);
      for (const char* answer_only : {"max_tokens", "temperature", "top_p", "top_k", "stop_sequences", "metadata",
                                      "stream"}) {
        body.erase(answer_only);
      }
      http->url += "/count_tokens";
      http->body = wire::to_text(body);
      return http;
    } catch (const json::exception& e) {
      return Result<HttpRequest>(Status::internal(std::string("building the count request: ") + e.what()));
    }
  }

  Result<std::int64_t> parse_count_response(std::string_view body) const override {
    try {
      Result<json> parsed = wire::parse_body(body);
      if (!parsed.ok()) return parsed.status();
      const json& j = *parsed;
      const auto n = j.find("input_tokens");
      if (n == j.end() || !n->is_number_integer() || n->get<std::int64_t>() < 0) {
        return Status::upstream("body has no 'input_tokens' count");
      }
      return n->get<std::int64_t>();
    } catch (const json::exception& e) {
      return Status::upstream(std::string("body: ") + e.what());
    }
  }

 private:
  const std::string model_id_;
  const std::string url_;
  const std::string api_key_;
  const std::int64_t max_output_tokens_;
  const ThinkingBudgets budgets_;
  const bool thinks_;  // the model takes thinking; else the rules' level asks for none
  const bool auto_cache_;  // place cache breakpoints when the caller set none
};

}  // namespace

std::unique_ptr<WireFormat> make_anthropic_wire(const ModelSpec& model, std::string api_key) {
  return std::make_unique<AnthropicWire>(model, std::move(api_key));
}

}  // namespace switchboard
