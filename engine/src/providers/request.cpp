// The canonical request and answer's helpers (request.h).
#include "switchboard/request.h"

#include <array>
#include <utility>

namespace switchboard {

StreamChunk StreamChunk::of(Kind kind, int index, std::string_view text, std::string_view origin) {
  StreamChunk c;
  c.kind = kind;
  c.index = index;
  c.text = text;
  c.origin = origin;
  return c;
}

StreamChunk StreamChunk::tool_call_start(int index, std::string_view id, std::string_view name) {
  StreamChunk c = of(Kind::kToolCallStart, index, {});
  c.id = id;
  c.name = name;
  return c;
}

ContentBlock ContentBlock::of_text(std::string text) {
  ContentBlock b;
  b.type = Type::kText;
  b.text = std::move(text);
  return b;
}

ContentBlock ContentBlock::of_tool_call(ToolCall call) {
  ContentBlock b;
  b.type = Type::kToolUse;
  b.tool_call = std::move(call);
  return b;
}

ContentBlock ContentBlock::of_tool_result(std::string tool_use_id, std::string tool_name, std::string text,
                                          bool is_error) {
  ContentBlock b;
  b.type = Type::kToolResult;
  b.tool_use_id = std::move(tool_use_id);
  b.tool_name = std::move(tool_name);
  b.content.push_back(of_text(std::move(text)));
  b.is_error = is_error;
  return b;
}

ToolSpec ToolSpec::of_function(std::string name, std::string description, std::string parameters_json) {
  ToolSpec t;
  t.name = std::move(name);
  t.description = std::move(description);
  t.parameters_json = std::move(parameters_json);
  return t;
}

Message Message::of(std::string role, std::vector<ContentBlock> content) {
  Message m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

Message Message::of_text(std::string role, std::string text) {
  Message m;
  m.role = std::move(role);
  m.content.push_back(ContentBlock::of_text(std::move(text)));
  return m;
}

namespace {

std::string joined_text(const std::vector<ContentBlock>& blocks) {
  std::string out;
  for (const ContentBlock& b : blocks) {
    if (b.type == ContentBlock::Type::kText) out += b.text;
  }
  return out;
}

constexpr std::array<std::pair<Effort, std::string_view>, 6> kEfforts{{
    {Effort::kNone, "none"},
    {Effort::kMinimal, "minimal"},
    {Effort::kLow, "low"},
    {Effort::kMedium, "medium"},
    {Effort::kHigh, "high"},
    {Effort::kXHigh, "xhigh"},
}};

}  // namespace

std::string Message::text() const { return joined_text(content); }

std::string ModelResponse::text() const { return joined_text(content); }

std::vector<ToolCall> ModelResponse::tool_calls() const {
  std::vector<ToolCall> calls;
  for (const ContentBlock& b : content) {
    if (b.type == ContentBlock::Type::kToolUse) calls.push_back(b.tool_call);
  }
  return calls;
}

std::string_view to_string(Effort e) {
  for (const auto& [effort, name] : kEfforts) {
    if (effort == e) return name;
  }
  return "medium";
}

std::optional<Effort> parse_effort(std::string_view name) {
  for (const auto& [effort, n] : kEfforts) {
    if (n == name) return effort;
  }
  return std::nullopt;
}

std::string_view to_string(WireApi api) {
  switch (api) {
    case WireApi::kNone: return "none";
    case WireApi::kOpenAIChat: return "OpenAI Chat Completions";
    case WireApi::kAnthropicMessages: return "Anthropic Messages";
  }
  return "none";
}

std::string_view to_string(StopReason r) {
  switch (r) {
    case StopReason::kEndTurn: return "end_turn";
    case StopReason::kMaxTokens: return "max_tokens";
    case StopReason::kStopSequence: return "stop_sequence";
    case StopReason::kToolUse: return "tool_use";
    case StopReason::kContentFilter: return "content_filter";
    case StopReason::kRefusal: return "refusal";
    case StopReason::kPauseTurn: return "pause_turn";
    case StopReason::kOther: return "other";
  }
  return "other";
}

std::string_view openai_finish_reason(StopReason r) {
  switch (r) {
    case StopReason::kMaxTokens: return "length";
    case StopReason::kToolUse: return "tool_calls";
    case StopReason::kContentFilter:
    case StopReason::kRefusal: return "content_filter";
    case StopReason::kEndTurn:
    case StopReason::kStopSequence:
    case StopReason::kPauseTurn:
    case StopReason::kOther: return "stop";
  }
  return "stop";
}

}  // namespace switchboard
