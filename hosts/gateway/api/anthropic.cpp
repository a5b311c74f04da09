// Anthropic Messages (POST /v1/messages), as @anthropic-ai/sdk sends and
// reads it.
//
// Requests: text and tools only. tool_use blocks become the assistant
// message's tool calls; each tool_result block becomes a "tool" message in
// its place among the user's text. Thinking blocks an assistant message
// carries back are dropped: their signatures are the provider's, and the
// router may send the history elsewhere. Image, document and server-tool
// blocks are errors naming them. Accepted and ignored: temperature, top_p,
// top_k, stop_sequences, tool_choice, service_tier, cache_control,
// tool_result is_error (the result's text says what failed), and
// metadata.user_id (an end user's id is not a routing input). Unknown
// top-level fields are ignored: the SDK adds fields over time.
//
// Answers: `input_tokens` excludes cache reads and writes and
// `output_tokens` includes thinking, as usage.h reads Anthropic figures.
#include <exception>

#include "api/common.h"

namespace switchboard::gateway {

namespace detail {

namespace {

// thinking.budget_tokens -> a reasoning level.
Reasoning reasoning_for_budget(std::int64_t budget) {
  if (budget < 4096) return Reasoning::kLow;
  if (budget < 16384) return Reasoning::kMedium;
  return Reasoning::kHigh;
}

// One message's content blocks, appended to `out` as one or more Messages.
MaybeError read_blocks(const json& blocks, const std::string& path, const std::string& role,
                       std::vector<Message>& out) {
  const std::size_t first = out.size();
  Message current;
  current.role = role;
  bool has_text = false;
  // Text gathered so far goes out before a tool result, keeping the order.
  auto flush = [&] {
    if (has_text || !current.tool_calls.empty()) out.push_back(std::move(current));
    current = Message();
    current.role = role;
    has_text = false;
  };
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const std::string bpath = at_index(path, i);
    const json& block = blocks[i];
    if (!block.is_object()) return invalid_request(bpath, bpath + " must be a content block object");
    std::string type;
    if (auto e = read_string(block, "type", at_key(bpath, "type"), type)) return e;
    if (type == "text") {
      std::string text;
      if (auto e = read_string(block, "text", at_key(bpath, "text"), text)) return e;
      if (has_text) current.content += '\n';
      current.content += text;
      has_text = true;
    } else if (type == "tool_use" && role == "assistant") {
      ToolCall call;
      if (auto e = read_string(block, "id", at_key(bpath, "id"), call.id)) return e;
      if (auto e = read_string(block, "name", at_key(bpath, "name"), call.name)) return e;
      // A string is what render_response writes for arguments that were not
      // JSON (tool_input): taken back as the arguments' text, so the gateway
      // accepts every answer it gave.
      const json* input = member(block, "input");
      if (input != nullptr && input->is_string()) {
        call.arguments_json = input->get<std::string>();
      } else if (input != nullptr && input->is_object()) {
        call.arguments_json = to_text(*input);
      } else {
        return invalid_request(at_key(bpath, "input"), at_key(bpath, "input") + " must be an object");
      }
      current.tool_calls.push_back(std::move(call));
    } else if (type == "tool_result" && role == "user") {
      flush();
      Message result;
      result.role = "tool";
      if (auto e = read_string(block, "tool_use_id", at_key(bpath, "tool_use_id"), result.tool_call_id)) return e;
      if (const json* content = member(block, "content")) {
        if (auto e = read_text_content(*content, at_key(bpath, "content"), "blocks", result.content)) return e;
      }
      out.push_back(std::move(result));
    } else if ((type == "thinking" || type == "redacted_thinking") && role == "assistant") {
      continue;
    } else if (type == "tool_use" || type == "tool_result" || type == "thinking" || type == "redacted_thinking") {
      return invalid_request(at_key(bpath, "type"),
                             at_key(bpath, "type") + " '" + type + "' is not allowed in " + role + " messages");
    } else {
      return invalid_request(at_key(bpath, "type"),
                             at_key(bpath, "type") + " '" + type +
                                 "' is not supported: only text, tool_use, tool_result and thinking blocks are");
    }
  }
  // A message of nothing but thinking (or no blocks) still takes its turn.
  if (has_text || !current.tool_calls.empty() || out.size() == first) {
    out.push_back(std::move(current));
  }
  return std::nullopt;
}

MaybeError read_message(const json& m, const std::string& path, std::vector<Message>& out) {
  if (!m.is_object()) return invalid_request(path, path + " must be an object");
  std::string role;
  const std::string role_path = at_key(path, "role");
  if (auto e = read_string(m, "role", role_path, role)) return e;
  if (role != "user" && role != "assistant") {
    return invalid_request(role_path, role_path + " must be user or assistant (got '" + role + "')");
  }
  const std::string content_path = at_key(path, "content");
  const json* content = member(m, "content");
  if (content == nullptr) return invalid_request(content_path, content_path + " is required");
  if (content->is_string()) {
    Message message;
    message.role = role;
    message.content = content->get<std::string>();
    out.push_back(std::move(message));
    return std::nullopt;
  }
  if (!content->is_array()) {
    return invalid_request(content_path, content_path + " must be a string or an array of content blocks");
  }
  return read_blocks(*content, content_path, role, out);
}

MaybeError read_tool(const json& tool, const std::string& path, ToolSpec& out) {
  if (!tool.is_object()) return invalid_request(path, path + " must be an object");
  std::string type = "custom";
  if (auto e = read_optional_string(tool, "type", at_key(path, "type"), type)) return e;
  if (type != "custom") {
    return invalid_request(at_key(path, "type"), at_key(path, "type") + " '" + type +
                                                     "' is not supported: only custom tools are");
  }
  if (auto e = read_string(tool, "name", at_key(path, "name"), out.name)) return e;
  if (auto e = read_optional_string(tool, "description", at_key(path, "description"), out.description)) return e;
  if (member(tool, "input_schema") == nullptr) {
    return invalid_request(at_key(path, "input_schema"), at_key(path, "input_schema") + " is required");
  }
  return read_optional_object_text(tool, "input_schema", at_key(path, "input_schema"), out.parameters_json);
}

MaybeError read_messages_request(const json& j, ParsedRequest& r) {
  if (auto e = read_string(j, "model", "model", r.model)) return e;
  if (r.model.empty()) return invalid_request("model", "model must not be empty");

  const json* max_tokens = member(j, "max_tokens");
  if (max_tokens == nullptr) return invalid_request("max_tokens", "max_tokens is required");
  if (auto e = read_token_count(*max_tokens, "max_tokens", r.max_output_tokens)) return e;

  if (const json* system = member(j, "system")) {
    Message message;
    message.role = "system";
    if (auto e = read_text_content(*system, "system", "blocks", message.content)) return e;
    if (!message.content.empty()) r.call.messages.push_back(std::move(message));
  }

  const json* messages = member(j, "messages");
  if (messages == nullptr) return invalid_request("messages", "messages is required");
  if (!messages->is_array() || messages->empty()) {
    return invalid_request("messages", "messages must be a non-empty array");
  }
  for (std::size_t i = 0; i < messages->size(); ++i) {
    if (auto e = read_message((*messages)[i], at_index("messages", i), r.call.messages)) return e;
  }

  if (const json* tools = member(j, "tools")) {
    if (!tools->is_array()) return invalid_request("tools", "tools must be an array");
    for (std::size_t i = 0; i < tools->size(); ++i) {
      ToolSpec tool;
      if (auto e = read_tool((*tools)[i], at_index("tools", i), tool)) return e;
      r.call.tools.push_back(std::move(tool));
    }
  }

  if (auto e = read_optional_bool(j, "stream", "stream", r.stream)) return e;

  if (const json* thinking = member(j, "thinking")) {
    if (!thinking->is_object()) return invalid_request("thinking", "thinking must be an object");
    std::string type;
    if (auto e = read_string(*thinking, "type", "thinking.type", type)) return e;
    if (type == "enabled") {
      const json* budget = member(*thinking, "budget_tokens");
      if (budget == nullptr) return invalid_request("thinking.budget_tokens", "thinking.budget_tokens is required");
      std::optional<std::int64_t> tokens;
      if (auto e = read_token_count(*budget, "thinking.budget_tokens", tokens)) return e;
      r.reasoning = reasoning_for_budget(*tokens);
      r.call.step.needs_chain_of_thought = true;
    } else if (type != "disabled") {
      return invalid_request("thinking.type", "thinking.type must be enabled or disabled (got '" + type + "')");
    }
  }
  return std::nullopt;
}

const char* stop_reason(const ModelResponse& r) {
  const std::string& f = r.finish_reason;
  if (!r.tool_calls.empty() && (f.empty() || f == "stop" || f == "tool_calls")) return "tool_use";
  if (f == "length") return "max_tokens";
  if (f == "content_filter") return "refusal";
  if (f == "pause_turn") return "pause_turn";
  return "end_turn";  // "stop", "" and any other provider's own word
}

// A tool call's arguments as the block's `input`: the parsed object, or,
// when the model wrote something that is not a JSON object, or one nested
// deeper than `max_depth` (re-serialising it would recurse that deep), that
// text as a string (the client sees what the model said rather than a
// made-up {}).
json tool_input(const std::string& arguments, int max_depth) {
  if (arguments.empty()) return json::object();
  json input;
  if (parse_bounded(arguments, max_depth, {}, input) || input.is_discarded()) return json(arguments);
  return input;
}

json usage_json(const Usage& u) {
  json usage = json::object();
  usage["input_tokens"] = u.input_tokens;
  usage["cache_creation_input_tokens"] = u.cache_write_5m_tokens + u.cache_write_1h_tokens;
  usage["cache_read_input_tokens"] = u.cached_input_tokens;
  usage["output_tokens"] = u.output_tokens + u.reasoning_tokens;
  usage["cache_creation"] = json{{"ephemeral_5m_input_tokens", u.cache_write_5m_tokens},
                                 {"ephemeral_1h_input_tokens", u.cache_write_1h_tokens}};
  return usage;
}

json tool_use_block(const ToolCall& call, const std::string& response_id, std::size_t index, json input) {
  json block = json::object();
  block["type"] = "tool_use";
  block["id"] = tool_call_id(call, response_id, index);
  block["name"] = call.name;
  block["input"] = std::move(input);
  return block;
}

std::string event(const char* type, const json& data) {
  return std::string("event: ") + type + "\ndata: " + to_text(data) + "\n\n";
}

json block_event(const char* type, std::size_t index) {
  json e = json::object();
  e["type"] = type;
  e["index"] = index;
  return e;
}

json error_json(const ApiError& error) {
  json inner = json::object();
  inner["type"] = error.type;
  inner["message"] = error.message;
  json body = json::object();
  body["type"] = "error";
  body["error"] = std::move(inner);
  return body;
}

}  // namespace

std::string anthropic_error(const ApiError& error) { return to_text(error_json(error)); }

std::string anthropic_response(const StepResult& result, const std::string& model, const std::string& id,
                               int max_json_depth) {
  const ModelResponse& r = result.response;
  json content = json::array();
  // An empty answer still has its (empty) text block: clients read content[0].
  if (!r.text.empty() || r.tool_calls.empty()) content.push_back(json{{"type", "text"}, {"text", r.text}});
  for (std::size_t i = 0; i < r.tool_calls.size(); ++i) {
    content.push_back(
        tool_use_block(r.tool_calls[i], id, i, tool_input(r.tool_calls[i].arguments_json, max_json_depth)));
  }
  json body = json::object();
  body["id"] = id;
  body["type"] = "message";
  body["role"] = "assistant";
  body["model"] = model;
  body["content"] = std::move(content);
  body["stop_reason"] = stop_reason(r);
  body["stop_sequence"] = nullptr;
  body["usage"] = usage_json(r.usage);
  return to_text(body);
}

std::string anthropic_stream_begin(const std::string& id, const std::string& model, std::int64_t input_tokens) {
  Usage estimate;
  estimate.input_tokens = input_tokens;
  json message = json::object();
  message["id"] = id;
  message["type"] = "message";
  message["role"] = "assistant";
  message["model"] = model;
  message["content"] = json::array();
  message["stop_reason"] = nullptr;
  message["stop_sequence"] = nullptr;
  message["usage"] = usage_json(estimate);
  return event("message_start", json{{"type", "message_start"}, {"message", std::move(message)}}) +
         event("ping", json{{"type", "ping"}});
}

std::string anthropic_stream_piece(std::string_view text, bool opens_block) {
  std::string out;
  if (opens_block) {
    json start = block_event("content_block_start", 0);
    start["content_block"] = json{{"type", "text"}, {"text", ""}};
    out += event("content_block_start", start);
  }
  json delta = block_event("content_block_delta", 0);
  delta["delta"] = json{{"type", "text_delta"}, {"text", text}};
  return out + event("content_block_delta", delta);
}

// Closes the text block (or writes an empty one when the answer has neither
// text nor tool calls), writes each tool call as a block whose input arrives
// as one input_json_delta, then message_delta with the provider's usage (the
// SDK overlays its counts on message_start's estimate) and message_stop.
std::string anthropic_stream_end(const std::string& id, const StepResult& result, bool text_block_open,
                                 int max_json_depth) {
  const ModelResponse& r = result.response;
  std::string out;
  std::size_t index = 0;
  if (!text_block_open && r.tool_calls.empty()) {
    json start = block_event("content_block_start", 0);
    start["content_block"] = json{{"type", "text"}, {"text", ""}};
    out += event("content_block_start", start);
    text_block_open = true;
  }
  if (text_block_open) out += event("content_block_stop", block_event("content_block_stop", index++));
  for (std::size_t i = 0; i < r.tool_calls.size(); ++i, ++index) {
    json start = block_event("content_block_start", index);
    start["content_block"] = tool_use_block(r.tool_calls[i], id, i, json::object());
    out += event("content_block_start", start);
    json delta = block_event("content_block_delta", index);
    delta["delta"] = json{{"type", "input_json_delta"},
                          {"partial_json", to_text(tool_input(r.tool_calls[i].arguments_json, max_json_depth))}};
    out += event("content_block_delta", delta);
    out += event("content_block_stop", block_event("content_block_stop", index));
  }
  json message_delta = json::object();
  message_delta["type"] = "message_delta";
  message_delta["delta"] = json{{"stop_reason", stop_reason(r)}, {"stop_sequence", nullptr}};
  message_delta["usage"] = usage_json(r.usage);
  out += event("message_delta", message_delta);
  return out + event("message_stop", json{{"type", "message_stop"}});
}

std::string anthropic_stream_fail(const ApiError& error) { return event("error", error_json(error)); }

}  // namespace detail

ApiResult<ParsedRequest> parse_anthropic_messages(std::string_view body, const Headers& headers,
                                                  int max_json_depth) {
  using detail::json;
  try {
    json j;
    if (auto e = detail::parse_body(body, max_json_depth, {"messages", "content", "tools", "system", "thinking"},
                                    j)) {
      return detail::failed<ParsedRequest>(std::move(*e));
    }
    ParsedRequest r;
    r.shape = ApiShape::kAnthropic;
    r.max_json_depth = max_json_depth;
    if (auto e = detail::read_messages_request(j, r)) return detail::failed<ParsedRequest>(std::move(*e));
    if (auto e = detail::finish_request(detail::member(j, "metadata"), {"user_id"}, headers, r)) {
      return detail::failed<ParsedRequest>(std::move(*e));
    }
    return {std::move(r), {}};
  } catch (const std::exception& e) {
    return detail::failed<ParsedRequest>(
        detail::invalid_request("", std::string("the request could not be read: ") + e.what()));
  }
}

}  // namespace switchboard::gateway
