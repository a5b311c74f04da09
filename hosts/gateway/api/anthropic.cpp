// Anthropic Messages (POST /v1/messages), as @anthropic-ai/sdk sends and
// reads it; and the Anthropic half of the StreamWriter.
//
// Requests, field by field (into the canonical ModelRequest of
// switchboard/request.h; null counts as absent):
//   model, stream, metadata  the gateway's own (metadata into the step:
//       api.h); metadata.user_id -> sampling.user
//   max_tokens (required) -> max_output_tokens
//   system  a string (one text block; "" is none) or text blocks (+
//       cache_control) -> one "system" message
//   messages[].content  a string (one text block) or blocks, in order:
//       text (+ citations, which are ignored: an answer's annotations sent
//       back); image {source base64 | url | file} -> kImage (file: kFileId
//       of origin "anthropic"); document {source base64 | url | text |
//       file, title} -> kDocument (a text source -> base64 "text/plain";
//       `context`, citations enabled and custom-content sources are 400s);
//       tool_use (assistant) -> kToolUse (input an object, or the string an
//       answer wrote for arguments that were not JSON); tool_result (user)
//       {tool_use_id, content: string or text/image/document blocks,
//       is_error} -> kToolResult in the user message, its tool_name from the
//       call it answers; thinking {thinking, signature} and redacted_thinking
//       {data} (assistant) -> kThinking / kRedactedThinking of origin
//       "anthropic" (or the origin a "<origin>:" prefix names, as answers
//       write another provider's signature); server_tool_use, mcp_tool_use
//       and *_tool_result blocks (assistant) -> kOpaque of origin
//       "anthropic", verbatim. cache_control {type ephemeral, ttl 5m|1h} on
//       any block -> ContentBlock::cache.
//   tools[]  custom (type absent or "custom") {name, description,
//       input_schema, strict, cache_control} -> ToolSpec; any other type (a
//       server tool: web_search_..., code_execution_...) -> ToolSpec
//       opaque_json of origin "anthropic", verbatim
//   tool_choice {type auto|any|tool {name}|none, disable_parallel_tool_use}
//       -> tool_choice (any -> kRequired) and parallel_tool_calls (= !disable)
//   temperature [0,1], top_p [0,1], top_k, stop_sequences -> Sampling
//   thinking {type enabled, budget_tokens} -> reasoning.budget_tokens (and
//       ParsedRequest::reasoning; needs_chain_of_thought); {type disabled} ->
//       budget 0
//   service_tier: accepted, never sent (the ledger prices the standard tier).
//   Any other field (container, mcp_servers, context_management, a field
//       newer than the router) -> passthrough.fields_json: sent verbatim to
//       an Anthropic model; any other model is refused for the request by
//       the field's name, so the dispatcher falls back.
//   count_tokens (api/count_tokens.h) reads model, messages, system, tools,
//       tool_choice and thinking the same way; max_tokens is not required
//       there, and any other field is a 400.
//
// Answers: the content blocks in order: thinking with its signature (see
// api.h on origins), redacted_thinking, text, tool_use with its input
// object, a refusal's words as text, a server tool's blocks (opaque items
// of origin "anthropic") verbatim; empty text, media and other providers'
// opaque items have no place and are not written (an answer with no block
// gets one empty text block: clients read content[0]). stop_reason from
// StopReason: end_turn ("tool_use" when the turn ended with tool calls),
// max_tokens, stop_sequence (with stop_sequence), tool_use, pause_turn,
// refusal (a content filter too), and for any other reason
// model_context_window_exceeded when the provider said so, else end_turn.
// `input_tokens` excludes cache reads and writes and `output_tokens`
// includes thinking, as usage.h reads Anthropic figures.
#include <exception>

#include "api/common.h"
#include "api/count_tokens.h"
#include "api/json_out.h"

namespace switchboard::gateway {

namespace detail {

namespace {

// thinking.budget_tokens -> a reasoning level.
Reasoning reasoning_for_budget(std::int64_t budget) {
  if (budget < 4096) return Reasoning::kLow;
  if (budget < 16384) return Reasoning::kMedium;
  return Reasoning::kHigh;
}

// An image or document block's `source` into `out`; `document` allows the
// text source.
template <typename Node>
MaybeError read_source(const Node& block, const JsonPath& path, bool document, ContentBlock& out) {
  const JsonPath spath = at_key(path, "source");
  const auto source = member(block, "source");
  if (!source) return invalid_request(spath, spath + " is required");
  if (!jn::is_object(*source)) return invalid_request(spath, spath + " must be an object");
  std::string type;
  if (auto e = read_string(*source, "type", at_key(spath, "type"), type)) return e;
  MediaSource& s = out.source;
  if (type == "base64") {
    s.kind = MediaSource::Kind::kBase64;
    if (auto e = read_string(*source, "media_type", at_key(spath, "media_type"), s.media_type)) return e;
    return read_string(*source, "data", at_key(spath, "data"), s.data);
  }
  if (type == "url") {
    s.kind = MediaSource::Kind::kUrl;
    return read_string(*source, "url", at_key(spath, "url"), s.data);
  }
  if (type == "file") {
    s.kind = MediaSource::Kind::kFileId;
    out.origin = "anthropic";
    return read_string(*source, "file_id", at_key(spath, "file_id"), s.data);
  }
  if (type == "text" && document) {
    std::string text;
    s.kind = MediaSource::Kind::kBase64;
    s.media_type = "text/plain";
    if (auto e = read_optional_string(*source, "media_type", at_key(spath, "media_type"), s.media_type)) return e;
    if (auto e = read_string(*source, "data", at_key(spath, "data"), text)) return e;
    s.data = base64_encode(text);
    return std::nullopt;
  }
  return invalid_request(at_key(spath, "type"), at_key(spath, "type") + " '" + type + "' is not supported: only " +
                                                    (document ? "base64, url, text and file" : "base64, url and file") +
                                                    " sources are");
}

// A document block: its source, title; context and citations would change the answer.
template <typename Node>
MaybeError read_document(const Node& block, const JsonPath& path, ContentBlock& out) {
  out.type = ContentBlock::Type::kDocument;
  if (member(block, "context")) {
    return invalid_request(at_key(path, "context"),
                           at_key(path, "context") + " is not supported: no other provider takes it");
  }
  if (const auto citations = member(block, "citations")) {
    const auto enabled = member(*citations, "enabled");  // none when citations is not an object
    if (enabled && jn::is_bool(*enabled) && jn::bool_of(*enabled)) {
      return invalid_request(at_key(path, "citations"),
                             at_key(path, "citations") + " is not supported: the router answers without citations");
    }
  }
  if (auto e = read_optional_string(block, "title", at_key(path, "title"), out.title)) return e;
  return read_source(block, path, /*document=*/true, out);
}

// Whether `type` is one of a server tool's blocks (kept verbatim).
bool server_tool_block(const std::string& type) {
  constexpr std::string_view kResult = "_tool_result";
  return type == "server_tool_use" || type == "mcp_tool_use" ||
         (type.size() > kResult.size() && type.compare(type.size() - kResult.size(), kResult.size(), kResult) == 0);
}

template <typename Node>
MaybeError read_blocks(const Node& blocks, const JsonPath& path, const std::string& role,
                       std::vector<ContentBlock>& out);

// A tool_result's content: a string or text/image/document blocks.
template <typename Node>
MaybeError read_result_content(const Node& content, const JsonPath& path, std::vector<ContentBlock>& out) {
  if (jn::is_string(content)) {
    out.push_back(ContentBlock::of_text(std::string(jn::string_of(content))));
    return std::nullopt;
  }
  if (!jn::is_array(content)) {
    return invalid_request(path, path + " must be a string or an array of content blocks");
  }
  return read_blocks(content, path, "tool_result", out);
}

// Content blocks into `out`. `role` is "user", "assistant", or
// "tool_result" for a result's own content (text, image, document only).
template <typename Node>
MaybeError read_blocks(const Node& blocks, const JsonPath& path, const std::string& role,
                       std::vector<ContentBlock>& out) {
  std::size_t i = 0;
  for (const auto& b : jn::items(blocks)) {
    const JsonPath bpath = at_index(path, i++);
    if (!jn::is_object(b)) return invalid_request(bpath, bpath + " must be a content block object");
    std::string type;
    const JsonPath tpath = at_key(bpath, "type");
    if (auto e = read_string(b, "type", tpath, type)) return e;
    const bool user = role == "user";
    const bool assistant = role == "assistant";
    const auto not_allowed = [&] {
      const std::string where = role == "tool_result" ? "tool results" : role + " messages";
      return invalid_request(tpath, tpath + " '" + type + "' is not allowed in " + where);
    };
    ContentBlock block;
    if (type == "text") {
      if (auto e = read_string(b, "text", at_key(bpath, "text"), block.text)) return e;
    } else if (type == "image") {
      if (assistant) return not_allowed();
      block.type = ContentBlock::Type::kImage;
      if (auto e = read_source(b, bpath, /*document=*/false, block)) return e;
    } else if (type == "document") {
      if (assistant) return not_allowed();
      if (auto e = read_document(b, bpath, block)) return e;
    } else if (type == "tool_use") {
      if (!assistant) return not_allowed();
      block.type = ContentBlock::Type::kToolUse;
      ToolCall& call = block.tool_call;
      if (auto e = read_string(b, "id", at_key(bpath, "id"), call.id)) return e;
      SplitId id = read_tool_call_id(std::move(call.id));
      call.id = std::move(id.id);
      block.signature = std::move(id.signature);
      block.origin = std::move(id.origin);
      if (auto e = read_string(b, "name", at_key(bpath, "name"), call.name)) return e;
      // A string is what render_response writes for arguments that were not
      // JSON (tool_input): taken back as the arguments' text, so the gateway
      // accepts every answer it gave.
      const auto input = member(b, "input");
      if (input && jn::is_string(*input)) {
        call.arguments_json = jn::string_of(*input);
      } else if (input && jn::is_object(*input)) {
        call.arguments_json = to_text(*input);
      } else {
        return invalid_request(at_key(bpath, "input"), at_key(bpath, "input") + " must be an object");
      }
    } else if (type == "tool_result") {
      if (!user) return not_allowed();
      block.type = ContentBlock::Type::kToolResult;
      if (auto e = read_string(b, "tool_use_id", at_key(bpath, "tool_use_id"), block.tool_use_id)) return e;
      block.tool_use_id = read_tool_call_id(std::move(block.tool_use_id)).id;
      if (const auto content = member(b, "content")) {
        if (auto e = read_result_content(*content, at_key(bpath, "content"), block.content)) return e;
      }
      if (auto e = read_optional_bool(b, "is_error", at_key(bpath, "is_error"), block.is_error)) return e;
    } else if (type == "thinking") {
      if (!assistant) return not_allowed();
      block.type = ContentBlock::Type::kThinking;
      std::string signature;
      if (auto e = read_string(b, "thinking", at_key(bpath, "thinking"), block.text)) return e;
      if (auto e = read_optional_string(b, "signature", at_key(bpath, "signature"), signature)) return e;
      read_client_signature(std::move(signature), "anthropic", block);
    } else if (type == "redacted_thinking") {
      if (!assistant) return not_allowed();
      block.type = ContentBlock::Type::kRedactedThinking;
      std::string data;
      if (auto e = read_string(b, "data", at_key(bpath, "data"), data)) return e;
      read_client_signature(std::move(data), "anthropic", block);
    } else if (server_tool_block(type)) {
      if (!assistant) return not_allowed();
      block.type = ContentBlock::Type::kOpaque;
      block.opaque_json = to_text(b);
      block.origin = "anthropic";
      out.push_back(std::move(block));
      continue;  // verbatim, cache_control included
    } else {
      return invalid_request(tpath, tpath + " '" + type +
                                        "' is not supported: only text, image, document, tool_use, tool_result, "
                                        "thinking, redacted_thinking and server tool blocks are");
    }
    if (auto e = read_cache_control(b, bpath, block.cache)) return e;
    out.push_back(std::move(block));
  }
  return std::nullopt;
}

template <typename Node>
MaybeError read_message(const Node& m, const JsonPath& path, std::vector<Message>& out) {
  if (!jn::is_object(m)) return invalid_request(path, path + " must be an object");
  Message message;
  const JsonPath role_path = at_key(path, "role");
  if (auto e = read_string(m, "role", role_path, message.role)) return e;
  if (message.role != "user" && message.role != "assistant") {
    return invalid_request(role_path, role_path + " must be user or assistant (got '" + message.role + "')");
  }
  const JsonPath content_path = at_key(path, "content");
  const auto content = member(m, "content");
  if (!content) return invalid_request(content_path, content_path + " is required");
  if (jn::is_string(*content)) {
    message.content.push_back(ContentBlock::of_text(std::string(jn::string_of(*content))));
  } else if (jn::is_array(*content)) {
    if (auto e = read_blocks(*content, content_path, message.role, message.content)) return e;
  } else {
    return invalid_request(content_path, content_path + " must be a string or an array of content blocks");
  }
  out.push_back(std::move(message));
  return std::nullopt;
}

template <typename Node>
MaybeError read_system(const Node& system, std::vector<Message>& out) {
  Message message;
  message.role = "system";
  const std::string kShape = "system must be a string or an array of text blocks";
  if (jn::is_string(system)) {
    if (jn::string_of(system).empty()) return std::nullopt;
    message.content.push_back(ContentBlock::of_text(std::string(jn::string_of(system))));
  } else if (jn::is_array(system)) {
    const JsonPath system_root("system");
    std::size_t i = 0;
    for (const auto& b : jn::items(system)) {
      const JsonPath bpath = at_index(system_root, i++);
      if (!jn::is_object(b)) return invalid_request(bpath, kShape);
      std::string type;
      if (auto e = read_string(b, "type", at_key(bpath, "type"), type)) return e;
      if (type != "text") {
        return invalid_request(at_key(bpath, "type"),
                               at_key(bpath, "type") + " '" + type + "' is not supported: only text blocks are");
      }
      ContentBlock block;
      if (auto e = read_string(b, "text", at_key(bpath, "text"), block.text)) return e;
      if (auto e = read_cache_control(b, bpath, block.cache)) return e;
      message.content.push_back(std::move(block));
    }
    if (message.content.empty()) return std::nullopt;
  } else {
    return invalid_request("system", kShape);
  }
  out.push_back(std::move(message));
  return std::nullopt;
}

template <typename Node>
MaybeError read_tool(const Node& tool, const JsonPath& path, ToolSpec& out) {
  if (!jn::is_object(tool)) return invalid_request(path, path + " must be an object");
  std::string type = "custom";
  if (auto e = read_optional_string(tool, "type", at_key(path, "type"), type)) return e;
  if (auto e = read_string(tool, "name", at_key(path, "name"), out.name)) return e;
  if (type != "custom") {
    // A server tool: Anthropic's own, sent back to Anthropic only.
    out.opaque_json = to_text(tool);
    out.origin = "anthropic";
    return std::nullopt;
  }
  if (auto e = read_optional_string(tool, "description", at_key(path, "description"), out.description)) return e;
  if (member(tool, "strict")) {
    bool strict = false;
    if (auto e = read_optional_bool(tool, "strict", at_key(path, "strict"), strict)) return e;
    out.strict = strict;
  }
  if (auto e = read_cache_control(tool, path, out.cache)) return e;
  if (!member(tool, "input_schema")) {
    return invalid_request(at_key(path, "input_schema"), at_key(path, "input_schema") + " is required");
  }
  return read_optional_object_text(tool, "input_schema", at_key(path, "input_schema"), out.parameters_json);
}

template <typename Node>
MaybeError read_tool_choice(const Node& choice, ModelRequest& request) {
  if (!jn::is_object(choice)) return invalid_request("tool_choice", "tool_choice must be an object");
  std::string type;
  if (auto e = read_string(choice, "type", "tool_choice.type", type)) return e;
  ToolChoice out;
  if (type == "auto") {
    out.mode = ToolChoice::Mode::kAuto;
  } else if (type == "any") {
    out.mode = ToolChoice::Mode::kRequired;
  } else if (type == "none") {
    out.mode = ToolChoice::Mode::kNone;
  } else if (type == "tool") {
    out.mode = ToolChoice::Mode::kNamed;
    if (auto e = read_string(choice, "name", "tool_choice.name", out.name)) return e;
  } else {
    return invalid_request("tool_choice.type",
                           "tool_choice.type must be one of auto, any, tool, none (got '" + type + "')");
  }
  if (member(choice, "disable_parallel_tool_use")) {
    bool disable = false;
    if (auto e = read_optional_bool(choice, "disable_parallel_tool_use", "tool_choice.disable_parallel_tool_use",
                                    disable)) {
      return e;
    }
    request.parallel_tool_calls = !disable;
  }
  request.tool_choice = std::move(out);
  return std::nullopt;
}

// A Messages request; `count_only`: a count_tokens request, the input fields
// alone (model, messages, system, tools, tool_choice, thinking).
template <typename Node>
MaybeError read_messages_request(const Node& j, ParsedRequest& r, bool count_only) {
  ModelRequest& request = r.call.request;
  // A call's fields not read here go verbatim to an Anthropic model (passthrough).
  if (auto e = count_only ? check_fields(j, "", {"model", "messages", "system", "tools", "tool_choice", "thinking"})
                          : collect_unmodeled(j, WireApi::kAnthropicMessages,
                                              {"model", "max_tokens", "messages", "system", "tools", "tool_choice",
                                               "temperature", "top_p", "top_k", "stop_sequences", "metadata",
                                               "thinking", "stream",
                                               // Priced at the standard tier: the ledger must match the bill.
                                               "service_tier"},
                                              {}, {}, request.passthrough)) {
    return e;
  }
  if (auto e = read_string(j, "model", "model", r.model)) return e;
  if (r.model.empty()) return invalid_request("model", "model must not be empty");

  const auto max_tokens = member(j, "max_tokens");
  if (!max_tokens && !count_only) return invalid_request("max_tokens", "max_tokens is required");
  if (max_tokens) {
    if (auto e = read_token_count(*max_tokens, "max_tokens", r.max_output_tokens)) return e;
    request.max_output_tokens = r.max_output_tokens;
  }

  if (const auto system = member(j, "system")) {
    if (auto e = read_system(*system, request.messages)) return e;
  }

  if (auto e = read_messages(j, read_message<Node>, request.messages)) return e;

  if (auto e = read_tools(j, read_tool<Node>, request.tools)) return e;
  if (const auto choice = member(j, "tool_choice")) {
    if (auto e = read_tool_choice(*choice, request)) return e;
  }

  Sampling& s = request.sampling;
  if (auto e = read_optional_number(j, "temperature", "temperature", 0, 1, s.temperature)) return e;
  if (auto e = read_optional_number(j, "top_p", "top_p", 0, 1, s.top_p)) return e;
  if (auto e = read_optional_integer(j, "top_k", "top_k", 0, INT64_MAX, s.top_k)) return e;
  if (const auto stop = member(j, "stop_sequences")) {
    if (auto e = read_stop_sequences(*stop, "stop_sequences", /*one_string_allowed=*/false, s.stop)) return e;
  }
  if (const auto metadata = member(j, "metadata"); metadata && jn::is_object(*metadata)) {
    if (auto e = read_optional_string(*metadata, "user_id", "metadata.user_id", s.user)) return e;
  }

  if (auto e = read_optional_bool(j, "stream", "stream", r.stream)) return e;

  if (const auto thinking = member(j, "thinking")) {
    if (!jn::is_object(*thinking)) return invalid_request("thinking", "thinking must be an object");
    std::string type;
    if (auto e = read_string(*thinking, "type", "thinking.type", type)) return e;
    if (type == "enabled") {
      const auto budget = member(*thinking, "budget_tokens");
      if (!budget) return invalid_request("thinking.budget_tokens", "thinking.budget_tokens is required");
      std::optional<std::int64_t> tokens;
      if (auto e = read_token_count(*budget, "thinking.budget_tokens", tokens)) return e;
      request.reasoning.budget_tokens = tokens;
      r.reasoning = reasoning_for_budget(*tokens);
    } else if (type == "disabled") {
      request.reasoning.budget_tokens = 0;
    } else {
      return invalid_request("thinking.type", "thinking.type must be enabled or disabled (got '" + type + "')");
    }
  }
  return std::nullopt;
}

template <typename Node>
ApiResult<ParsedRequest> read_anthropic_body(const Node& body, const Headers& headers, int max_json_depth,
                                             bool count_only, const Workload* workload) {
  ParsedRequest r;
  r.shape = ApiShape::kAnthropic;
  r.max_json_depth = max_json_depth;
  if (auto e = read_messages_request(body, r, count_only)) return failed<ParsedRequest>(std::move(*e));
  if (auto e = finish_request(member(body, "metadata"), {"user_id"}, headers, r, workload)) {
    return failed<ParsedRequest>(std::move(*e));
  }
  return {std::move(r), {}};
}

std::string stop_reason(const ModelResponse& r) {
  bool has_tool_use = false;
  for (const ContentBlock& b : r.content) has_tool_use = has_tool_use || b.type == ContentBlock::Type::kToolUse;
  switch (r.stop_reason) {
    case StopReason::kEndTurn: return has_tool_use ? "tool_use" : "end_turn";
    case StopReason::kMaxTokens: return "max_tokens";
    case StopReason::kStopSequence: return "stop_sequence";
    case StopReason::kToolUse: return "tool_use";
    case StopReason::kContentFilter:
    case StopReason::kRefusal: return "refusal";
    case StopReason::kPauseTurn: return "pause_turn";
    case StopReason::kOther: break;
  }
  return r.raw_stop_reason == "model_context_window_exceeded" ? r.raw_stop_reason : "end_turn";
}

void write_stop_sequence(JsonOut& out, const ModelResponse& r) {
  if (r.stop_reason == StopReason::kStopSequence && !r.stop_sequence.empty()) {
    out.string(r.stop_sequence);
  } else {
    out.null();
  }
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

void write_usage(JsonOut& out, const Usage& u) {
  out.begin_object();
  out.key("cache_creation").begin_object();
  out.key("ephemeral_1h_input_tokens").integer(u.cache_write_1h_tokens);
  out.key("ephemeral_5m_input_tokens").integer(u.cache_write_5m_tokens);
  out.end_object();
  out.key("cache_creation_input_tokens").integer(u.cache_write_5m_tokens + u.cache_write_1h_tokens);
  out.key("cache_read_input_tokens").integer(u.cached_input_tokens);
  out.key("input_tokens").integer(u.input_tokens);
  out.key("output_tokens").integer(u.output_tokens + u.reasoning_tokens);
  out.end_object();
}

// A tool use block's text: its `input` is a JSON value's text.
std::string tool_use_text(std::string_view id, std::string_view name, std::string_view input) {
  std::string text;
  JsonOut out(text);
  out.begin_object();
  out.key("id").string(id);
  out.key("input").raw(input);
  out.key("name").string(name);
  out.key("type").string("tool_use");
  out.end_object();
  return text;
}

// A block of the answer as this shape writes it (see the file comment), as
// to_text writes its tree; "" for one it has no place for. `tool_index` is a
// tool use's place among the answer's tool calls.
std::string block_text(const ContentBlock& b, const std::string& response_id, std::size_t tool_index,
                       int max_json_depth) {
  std::string text;
  JsonOut out(text);
  switch (b.type) {
    case ContentBlock::Type::kText:
    case ContentBlock::Type::kRefusal:
      if (b.text.empty()) return "";
      out.begin_object().key("text").string(b.text).key("type").string("text").end_object();
      return text;
    case ContentBlock::Type::kThinking:
      out.begin_object().key("signature").string(client_signature(b, "anthropic"));
      out.key("thinking").string(b.text).key("type").string("thinking").end_object();
      return text;
    case ContentBlock::Type::kRedactedThinking:
      out.begin_object().key("data").string(client_signature(b, "anthropic"));
      out.key("type").string("redacted_thinking").end_object();
      return text;
    case ContentBlock::Type::kToolUse:
      return tool_use_text(tool_call_id(b, response_id, tool_index), b.tool_call.name,
                           to_text(tool_input(b.tool_call.arguments_json, max_json_depth)));
    case ContentBlock::Type::kOpaque: {
      if (b.origin != "anthropic") return "";
      json item;
      if (parse_bounded(b.opaque_json, max_json_depth, {}, item) || !item.is_object()) return "";
      return to_text(item);
    }
    default:
      return "";
  }
}

// An event whose data `write` writes whole.
template <typename Write>
std::string event(const char* type, Write&& write) {
  std::string text = "event: ";
  text += type;
  text += "\ndata: ";
  JsonOut out(text);
  write(out);
  text += "\n\n";
  return text;
}

constexpr std::string_view kPing = "event: ping\ndata: {\"type\":\"ping\"}\n\n";

// A content block event: "event: TYPE\ndata: {...}\n\n", whose members
// before index and type (content_block or delta) `write` writes.
template <typename Write>
std::string block_event(const char* type, int index, Write&& write) {
  return event(type, [&](JsonOut& out) {
    out.begin_object();
    write(out);
    out.key("index").integer(index);
    out.key("type").string(type);
    out.end_object();
  });
}

// Block `index` starts (`block`: its text), grows by a delta ({FIELD: text,
// type: DELTA_TYPE}: each delta's one field sorts before "type"), stops.
std::string block_start(int index, std::string_view block) {
  return block_event("content_block_start", index, [&](JsonOut& out) { out.key("content_block").raw(block); });
}
std::string block_delta(int index, std::string_view delta_type, std::string_view field, std::string_view text) {
  return block_event("content_block_delta", index, [&](JsonOut& out) {
    out.key("delta").begin_object().key(field).string(text).key("type").string(delta_type).end_object();
  });
}
std::string block_stop(int index) {
  return block_event("content_block_stop", index, [](JsonOut&) {});
}
std::string signature_delta(int index, std::string_view signature) {
  return block_delta(index, "signature_delta", "signature", signature);
}

constexpr std::string_view kEmptyText = R"({"text":"","type":"text"})";
constexpr std::string_view kEmptyThinking = R"({"signature":"","thinking":"","type":"thinking"})";

// A block written whole in its start (redacted thinking, a server tool's
// block: `block` is its text), then its stop.
void block_in_start(int index, std::string_view block, std::string& out) {
  out += block_start(index, block);
  out += block_stop(index);
}

// A whole block as the API streams it: its start with the block emptied,
// its content in one delta, its stop. False, writing nothing, for a block
// this shape has no place for (block_text's ""). Each block's text is made
// once: a tool call's input is parsed once, for its delta.
bool whole_block(int index, const ContentBlock& b, const std::string& response_id, std::size_t tool_index,
                 int max_json_depth, std::string& out) {
  switch (b.type) {
    case ContentBlock::Type::kText:
    case ContentBlock::Type::kRefusal:
      if (b.text.empty()) return false;
      out += block_start(index, kEmptyText);
      out += block_delta(index, "text_delta", "text", b.text);
      break;
    case ContentBlock::Type::kThinking:
      out += block_start(index, kEmptyThinking);
      out += block_delta(index, "thinking_delta", "thinking", b.text);
      out += signature_delta(index, client_signature(b, "anthropic"));
      break;
    case ContentBlock::Type::kToolUse:
      out += block_start(index, tool_use_text(tool_call_id(b, response_id, tool_index), b.tool_call.name, "{}"));
      out += block_delta(index, "input_json_delta", "partial_json",
                         to_text(tool_input(b.tool_call.arguments_json, max_json_depth)));
      break;
    default: {
      const std::string block = block_text(b, response_id, tool_index, max_json_depth);
      if (block.empty()) return false;
      block_in_start(index, block, out);
      return true;
    }
  }
  out += block_stop(index);
  return true;
}

}  // namespace

ApiResult<ParsedRequest> read_anthropic_messages(jn::Element body, const Headers& headers, int max_json_depth,
                                                 bool count_only, const Workload* workload) {
  return read_anthropic_body(body, headers, max_json_depth, count_only, workload);
}

ApiResult<ParsedRequest> read_anthropic_messages(const json& body, const Headers& headers, int max_json_depth,
                                                 bool count_only, const Workload* workload) {
  return read_anthropic_body(body, headers, max_json_depth, count_only, workload);
}

std::string anthropic_error(const ApiError& error) {
  json inner = json::object();
  inner["type"] = error.type;
  inner["message"] = error.message;
  json body = json::object();
  body["type"] = "error";
  body["error"] = std::move(inner);
  return to_text(body);
}

std::string anthropic_response(const ParsedRequest& request, const StepResult& result, const std::string& model,
                               const std::string& id) {
  const ModelResponse& r = result.response;
  std::string text;
  JsonOut out(text);
  out.begin_object();
  out.key("content").begin_array();
  std::size_t tool_index = 0;
  bool any = false;
  for (const ContentBlock& b : r.content) {
    const std::string block = block_text(b, id, tool_index, request.max_json_depth);
    if (b.type == ContentBlock::Type::kToolUse) ++tool_index;
    if (block.empty()) continue;
    out.raw(block);
    any = true;
  }
  // An empty answer still has its (empty) text block: clients read content[0].
  if (!any) out.raw(kEmptyText);
  out.end_array();
  out.key("id").string(id);
  out.key("model").string(model);
  out.key("role").string("assistant");
  out.key("stop_reason").string(stop_reason(r));
  out.key("stop_sequence");
  write_stop_sequence(out, r);
  out.key("type").string("message");
  out.key("usage");
  write_usage(out, r.usage);
  out.end_object();
  return text;
}

}  // namespace detail

namespace {

ApiResult<ParsedRequest> parse_messages(std::string_view body, const Headers& headers, int max_json_depth,
                                        bool count_only, const Workload* workload) {
  using detail::json;
  try {
    if (const std::optional<JsonDom> dom = detail::read_body_dom(body, max_json_depth)) {
      return detail::read_anthropic_messages(dom->root(), headers, max_json_depth, count_only, workload);
    }
    json j;
    if (auto e = detail::parse_body(body, max_json_depth,
                                    {"messages", "content", "tools", "system", "thinking", "tool_choice", "source"},
                                    j)) {
      return detail::failed<ParsedRequest>(std::move(*e));
    }
    return detail::read_anthropic_messages(j, headers, max_json_depth, count_only, workload);
  } catch (const std::exception& e) {
    return detail::failed<ParsedRequest>(
        detail::invalid_request("", std::string("the request could not be read: ") + e.what()));
  }
}

}  // namespace

ApiResult<ParsedRequest> parse_anthropic_messages(std::string_view body, const Headers& headers,
                                                  int max_json_depth, const Workload* workload) {
  return parse_messages(body, headers, max_json_depth, /*count_only=*/false, workload);
}

ApiResult<ParsedRequest> parse_anthropic_count_tokens(std::string_view body, const Headers& headers,
                                                      int max_json_depth, const Workload* workload) {
  return parse_messages(body, headers, max_json_depth, /*count_only=*/true, workload);
}

std::string render_token_count(std::int64_t input_tokens) {
  return detail::to_text(detail::json{{"input_tokens", input_tokens}});
}

// ---- The Anthropic stream writer. ----

namespace {

// Messages stream events (api.h says what each kind becomes).
class AnthropicStreamWriter final : public detail::BlockStreamWriter {
 public:
  AnthropicStreamWriter(const ParsedRequest& request, std::string id, std::int64_t created, std::string model)
      : BlockStreamWriter(request, std::move(id), created, std::move(model)),
        input_tokens_(request.call.step.input_tokens.value_or(0)) {}

  std::string begin() override {
    Usage estimate;
    estimate.input_tokens = input_tokens_;
    return detail::event("message_start",
                         [&](detail::JsonOut& out) {
                           out.begin_object().key("message").begin_object();
                           out.key("content").begin_array().end_array();
                           out.key("id").string(id_);
                           out.key("model").string(model_);
                           out.key("role").string("assistant");
                           out.key("stop_reason").null();
                           out.key("stop_sequence").null();
                           out.key("type").string("message");
                           out.key("usage");
                           detail::write_usage(out, estimate);
                           out.end_object();
                           out.key("type").string("message_start").end_object();
                         }) +
           std::string(detail::kPing);
  }

  // Closes the open block: a thinking block's signature first.
  std::string close() {
    if (open_ < 0) return "";
    Sent& s = sent_[open_];
    std::string out;
    if (s.kind == StreamChunk::Kind::kThinking && !signature_.empty()) {
      out += detail::signature_delta(s.stream_index, signature_);
      s.signature = std::move(signature_);
    }
    signature_.clear();
    open_ = -1;
    return out + detail::block_stop(s.stream_index);
  }

  std::string chunk(const StreamChunk& chunk) override {
    using Kind = StreamChunk::Kind;
    if (chunk.kind != Kind::kToolCallStart && chunk.text.empty()) return "";
    if (chunk.kind == Kind::kSignature) {
      auto it = sent_.find(chunk.index);
      if (it == sent_.end()) {
        hold_signature(chunk);  // a tool call's, before its start: its id carries it
        return "";
      }
      if (it->second.kind != Kind::kThinking) {
        return "";  // Gemini's on a text part: not required back, and this shape has no place for it
      }
      if (chunk.index == open_) {
        signature_ += chunk.text;
        return "";
      }
      it->second.signature += chunk.text;  // a block already closed: the SDK keeps the last
      return detail::signature_delta(it->second.stream_index, it->second.signature);
    }
    std::string out;
    bool first = false;
    if (sent_.count(chunk.index) == 0) out += close();
    if (chunk.kind == Kind::kRedactedThinking || chunk.kind == Kind::kOpaque) {
      // Whole blocks, written in place so the order the API requires holds.
      ContentBlock b;
      b.type = chunk.kind == Kind::kOpaque ? ContentBlock::Type::kOpaque : ContentBlock::Type::kRedactedThinking;
      (chunk.kind == Kind::kOpaque ? b.opaque_json : b.signature) = std::string(chunk.text);
      b.origin = std::string(chunk.origin);
      const std::string block = detail::block_text(b, id_, 0, max_json_depth_);
      if (block.empty()) return out;  // another provider's item: no place here
      Sent& s = sent(chunk.index, chunk.kind, first);
      if (!first) return out;
      s.stream_index = next_stream_index_++;
      detail::block_in_start(s.stream_index, block, out);
      return out;
    }
    Sent& s = sent(chunk.index, chunk.kind, first);
    if (first) {
      s.stream_index = next_stream_index_++;
      open_ = chunk.index;
      switch (chunk.kind) {
        case Kind::kThinking:
          out += detail::block_start(s.stream_index, detail::kEmptyThinking);
          break;
        case Kind::kToolCallStart:
        case Kind::kToolArguments: {
          const ToolCall call{std::string(chunk.id), std::string(chunk.name), ""};
          const std::string id =
              detail::tool_call_id(call, s.signature, s.origin, id_, static_cast<std::size_t>(s.tool_index));
          out += detail::block_start(s.stream_index, detail::tool_use_text(id, call.name, "{}"));
          break;
        }
        default:  // text and refusal: Anthropic writes a refusal as text
          out += detail::block_start(s.stream_index, detail::kEmptyText);
          break;
      }
    }
    switch (chunk.kind) {
      case Kind::kText:
      case Kind::kRefusal:
        return out + detail::block_delta(s.stream_index, "text_delta", "text", chunk.text);
      case Kind::kThinking:
        return out + detail::block_delta(s.stream_index, "thinking_delta", "thinking", chunk.text);
      case Kind::kToolArguments:
        return out + detail::block_delta(s.stream_index, "input_json_delta", "partial_json", chunk.text);
      default:
        return out;
    }
  }

  // Closes the open block, corrects the signatures the chunks did not carry
  // as the answer has them, writes the blocks no chunk carried whole (or an
  // empty text block when nothing was written), then message_delta with the
  // provider's usage (the SDK overlays its counts on message_start's
  // estimate) and message_stop.
  std::string end(const StepResult& result) override {
    const ModelResponse& r = result.response;
    const auto final_signature = [&](int index) -> std::string {
      if (index < 0 || static_cast<std::size_t>(index) >= r.content.size()) return "";
      const ContentBlock& b = r.content[static_cast<std::size_t>(index)];
      return b.type == ContentBlock::Type::kThinking ? detail::client_signature(b, "anthropic") : "";
    };
    std::string out;
    if (open_ >= 0 && sent_[open_].kind == StreamChunk::Kind::kThinking) {
      const std::string signature = final_signature(open_);
      if (!signature.empty()) signature_ = signature;
    }
    out += close();
    for (auto& [index, s] : sent_) {
      if (s.kind != StreamChunk::Kind::kThinking) continue;
      const std::string signature = final_signature(index);
      if (!signature.empty() && signature != s.signature) {
        out += detail::signature_delta(s.stream_index, signature);
        s.signature = signature;
      }
    }
    for (std::size_t i = 0; i < r.content.size(); ++i) {
      if (sent_.count(static_cast<int>(i)) != 0) continue;
      const ContentBlock& b = r.content[i];
      const std::size_t tool_index =
          b.type == ContentBlock::Type::kToolUse ? static_cast<std::size_t>(next_tool_index_++) : 0;
      if (detail::whole_block(next_stream_index_, b, id_, tool_index, max_json_depth_, out)) ++next_stream_index_;
    }
    if (next_stream_index_ == 0) {
      out += detail::block_start(0, detail::kEmptyText) + detail::block_stop(0);
      next_stream_index_ = 1;
    }
    out += detail::event("message_delta", [&](detail::JsonOut& o) {
      o.begin_object().key("delta").begin_object();
      o.key("stop_reason").string(detail::stop_reason(r));
      o.key("stop_sequence");
      detail::write_stop_sequence(o, r);
      o.end_object();
      o.key("type").string("message_delta");
      o.key("usage");
      detail::write_usage(o, r.usage);
      o.end_object();
    });
    return out + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  }

  std::string fail(const ApiError& error) override {
    return "event: error\ndata: " + detail::anthropic_error(error) + "\n\n";
  }

  // Anthropic's own keep-alive event; the SDKs skip it.
  std::string keep_alive() override { return std::string(detail::kPing); }

 private:
  std::int64_t input_tokens_ = 0;  // message_start: the request's estimate
  int next_stream_index_ = 0;      // content blocks started
  int open_ = -1;                  // the canonical index of the open block (-1: none)
  std::string signature_;          // the open thinking block's signature so far
};

}  // namespace

namespace detail {

std::unique_ptr<StreamWriter> make_anthropic_stream_writer(const ParsedRequest& request, std::string id,
                                                           std::int64_t created, std::string model) {
  return std::make_unique<AnthropicStreamWriter>(request, std::move(id), created, std::move(model));
}

}  // namespace detail

}  // namespace switchboard::gateway
