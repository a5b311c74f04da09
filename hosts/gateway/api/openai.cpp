// OpenAI Chat Completions (POST /v1/chat/completions), as the official
// `openai` SDKs send and read it; and, at the end of the file, the functions
// of api.h that switch on the shape.
//
// Requests: text only. Content is a string or an array of text parts; image,
// audio and file parts are errors naming them. Fields the router cannot pass
// on are accepted and ignored: temperature, top_p, presence_penalty,
// frequency_penalty, logit_bias, logprobs, top_logprobs, seed, stop, user,
// tool_choice, parallel_tool_calls, service_tier, store, prediction,
// modalities, audio, verbosity, prompt_cache_key, safety_identifier, and the
// json_schema itself (response_format json_schema asks for JSON, no more).
// Unknown top-level fields are ignored too: the SDKs add fields over time.
//
// Answers: one choice; `prompt_tokens` counts every input token (cached and
// cache writes included) and `completion_tokens` the reasoning too, which
// inverts usage.h's normalisation of OpenAI figures.
#include <exception>

#include "api/common.h"

namespace switchboard::gateway {

namespace detail {

namespace {

// One tool call of an assistant message in the history.
MaybeError read_tool_call(const json& call, const std::string& path, ToolCall& out) {
  if (!call.is_object()) return invalid_request(path, path + " must be an object");
  std::string type = "function";
  if (auto e = read_optional_string(call, "type", at_key(path, "type"), type)) return e;
  if (type != "function") {
    return invalid_request(at_key(path, "type"),
                           at_key(path, "type") + " '" + type + "' is not supported: only function tool calls are");
  }
  if (auto e = read_string(call, "id", at_key(path, "id"), out.id)) return e;
  const std::string fpath = at_key(path, "function");
  const json* function = member(call, "function");
  if (function == nullptr) return invalid_request(fpath, fpath + " is required");
  if (!function->is_object()) return invalid_request(fpath, fpath + " must be an object");
  if (auto e = read_string(*function, "name", at_key(fpath, "name"), out.name)) return e;
  return read_string(*function, "arguments", at_key(fpath, "arguments"), out.arguments_json);
}

MaybeError read_message(const json& m, const std::string& path, std::vector<Message>& out) {
  if (!m.is_object()) return invalid_request(path, path + " must be an object");
  Message message;
  const std::string role_path = at_key(path, "role");
  if (auto e = read_string(m, "role", role_path, message.role)) return e;
  const std::string content_path = at_key(path, "content");
  const json* content = member(m, "content");
  if (message.role == "system" || message.role == "developer" || message.role == "user" ||
      message.role == "tool") {
    if (message.role == "developer") message.role = "system";  // the newer name for the same thing
    if (content == nullptr) return invalid_request(content_path, content_path + " is required");
    if (auto e = read_text_content(*content, content_path, "parts", message.content)) return e;
    if (message.role == "tool") {
      if (auto e = read_string(m, "tool_call_id", at_key(path, "tool_call_id"), message.tool_call_id)) return e;
      if (auto e = read_optional_string(m, "name", at_key(path, "name"), message.tool_name)) return e;
    }
  } else if (message.role == "assistant") {
    if (content != nullptr) {
      if (auto e = read_text_content(*content, content_path, "parts", message.content)) return e;
    }
    if (const json* calls = member(m, "tool_calls")) {
      const std::string calls_path = at_key(path, "tool_calls");
      if (!calls->is_array()) return invalid_request(calls_path, calls_path + " must be an array");
      for (std::size_t i = 0; i < calls->size(); ++i) {
        ToolCall call;
        if (auto e = read_tool_call((*calls)[i], at_index(calls_path, i), call)) return e;
        message.tool_calls.push_back(std::move(call));
      }
    }
    if (content == nullptr && message.tool_calls.empty()) {
      return invalid_request(content_path, content_path + " is required unless tool_calls are given");
    }
  } else if (message.role == "function") {
    return invalid_request(role_path, role_path + " 'function' is not supported: use tool messages");
  } else {
    return invalid_request(role_path,
                           role_path + " must be one of system, developer, user, assistant, tool (got '" +
                               message.role + "')");
  }
  out.push_back(std::move(message));
  return std::nullopt;
}

MaybeError read_tool(const json& tool, const std::string& path, ToolSpec& out) {
  if (!tool.is_object()) return invalid_request(path, path + " must be an object");
  std::string type;
  if (auto e = read_string(tool, "type", at_key(path, "type"), type)) return e;
  if (type != "function") {
    return invalid_request(at_key(path, "type"),
                           at_key(path, "type") + " '" + type + "' is not supported: only function tools are");
  }
  const std::string fpath = at_key(path, "function");
  const json* function = member(tool, "function");
  if (function == nullptr) return invalid_request(fpath, fpath + " is required");
  if (!function->is_object()) return invalid_request(fpath, fpath + " must be an object");
  if (auto e = read_string(*function, "name", at_key(fpath, "name"), out.name)) return e;
  if (auto e = read_optional_string(*function, "description", at_key(fpath, "description"), out.description)) {
    return e;
  }
  // `strict` is ignored: the router cannot promise every provider enforces it.
  return read_optional_object_text(*function, "parameters", at_key(fpath, "parameters"), out.parameters_json);
}

MaybeError read_chat(const json& j, ParsedRequest& r) {
  if (auto e = read_string(j, "model", "model", r.model)) return e;
  if (r.model.empty()) return invalid_request("model", "model must not be empty");

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
  // Dropping the deprecated `functions` would silently change the call.
  if (member(j, "functions") != nullptr) {
    return invalid_request("functions", "functions is not supported: use tools");
  }

  if (auto e = read_optional_bool(j, "stream", "stream", r.stream)) return e;
  if (const json* options = member(j, "stream_options")) {
    if (!options->is_object()) return invalid_request("stream_options", "stream_options must be an object");
    if (auto e = read_optional_bool(*options, "include_usage", "stream_options.include_usage", r.include_usage)) {
      return e;
    }
  }

  // max_tokens is the older name; max_completion_tokens wins when both are given.
  if (const json* max = member(j, "max_completion_tokens")) {
    if (auto e = read_token_count(*max, "max_completion_tokens", r.max_output_tokens)) return e;
  } else if (const json* legacy = member(j, "max_tokens")) {
    if (auto e = read_token_count(*legacy, "max_tokens", r.max_output_tokens)) return e;
  }

  if (const json* n = member(j, "n")) {
    if (!n->is_number_integer() || n->get<std::int64_t>() != 1) {
      return invalid_request("n", "n must be 1: the router returns one choice");
    }
  }

  if (const json* effort = member(j, "reasoning_effort")) {
    const std::string kError = "reasoning_effort must be one of none, minimal, low, medium, high, xhigh";
    if (!effort->is_string()) return invalid_request("reasoning_effort", kError);
    const std::string& level = effort->get_ref<const std::string&>();
    // "none" and "minimal" ask for no reasoning: Reasoning has no such level,
    // so the request names none and the step does not need chain of thought.
    if (level != "none" && level != "minimal") {
      std::optional<Reasoning> parsed = level == "xhigh" ? std::optional<Reasoning>(Reasoning::kHigh)
                                                         : parse_reasoning(level);
      if (!parsed || *parsed == Reasoning::kDefault) return invalid_request("reasoning_effort", kError);
      r.reasoning = *parsed;
      r.call.step.needs_chain_of_thought = true;
    }
  }

  if (const json* format = member(j, "response_format")) {
    if (!format->is_object()) return invalid_request("response_format", "response_format must be an object");
    std::string type;
    if (auto e = read_string(*format, "type", "response_format.type", type)) return e;
    if (type == "json_object" || type == "json_schema") {
      r.call.step.output_must_be_json = true;
    } else if (type != "text") {
      return invalid_request("response_format.type",
                             "response_format.type must be one of text, json_object, json_schema (got '" + type + "')");
    }
  }
  return std::nullopt;
}

const char* finish_reason(const ModelResponse& r) {
  const std::string& f = r.finish_reason;
  if (!r.tool_calls.empty() && (f.empty() || f == "stop" || f == "tool_calls")) return "tool_calls";
  if (f == "length") return "length";
  if (f == "content_filter") return "content_filter";
  // "stop", "" and a provider's own words (pause_turn, ...): the SDKs know
  // only stop, length, tool_calls and content_filter.
  return "stop";
}

json usage_json(const Usage& u) {
  const std::int64_t prompt = u.total_input();
  const std::int64_t completion = u.output_tokens + u.reasoning_tokens;
  json usage = json::object();
  usage["prompt_tokens"] = prompt;
  usage["completion_tokens"] = completion;
  usage["total_tokens"] = prompt + completion;
  usage["prompt_tokens_details"] = json{{"cached_tokens", u.cached_input_tokens}};
  usage["completion_tokens_details"] = json{{"reasoning_tokens", u.reasoning_tokens}};
  return usage;
}

// The tool calls as the API writes them; in a stream's delta each carries its `index`.
json tool_calls_json(const std::vector<ToolCall>& calls, const std::string& response_id, bool with_index) {
  json out = json::array();
  for (std::size_t i = 0; i < calls.size(); ++i) {
    json call = json::object();
    if (with_index) call["index"] = i;
    call["id"] = tool_call_id(calls[i], response_id, i);
    call["type"] = "function";
    call["function"] = json{{"name", calls[i].name},
                            {"arguments", calls[i].arguments_json.empty() ? "{}" : calls[i].arguments_json}};
    out.push_back(std::move(call));
  }
  return out;
}

json chunk_head(const OpenAIStream& s) {
  json chunk = json::object();
  chunk["id"] = s.id;
  chunk["object"] = "chat.completion.chunk";
  chunk["created"] = s.created;
  chunk["model"] = s.model;
  return chunk;
}

std::string sse(const json& data) { return "data: " + to_text(data) + "\n\n"; }

// A chunk of the one choice; `usage: null` on every chunk but the last when
// the client asked for usage, as the API does.
std::string choice_chunk(const OpenAIStream& s, json delta, json finish) {
  json choice = json::object();
  choice["index"] = 0;
  choice["delta"] = std::move(delta);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = std::move(finish);
  json chunk = chunk_head(s);
  chunk["choices"] = json::array();
  chunk["choices"].push_back(std::move(choice));
  if (s.include_usage) chunk["usage"] = nullptr;
  return sse(chunk);
}

}  // namespace

std::string openai_error(const ApiError& error) {
  json body = json::object();
  body["message"] = error.message;
  body["type"] = error.type;
  body["param"] = error.param.empty() ? json(nullptr) : json(error.param);
  body["code"] = error.code.empty() ? json(nullptr) : json(error.code);
  return to_text(json{{"error", std::move(body)}});
}

std::string openai_response(const StepResult& result, const std::string& model, const std::string& id,
                            std::int64_t created) {
  const ModelResponse& r = result.response;
  json message = json::object();
  message["role"] = "assistant";
  // Content is null only beside tool calls, as the API writes it.
  message["content"] = r.text.empty() && !r.tool_calls.empty() ? json(nullptr) : json(r.text);
  message["refusal"] = nullptr;
  if (!r.tool_calls.empty()) message["tool_calls"] = tool_calls_json(r.tool_calls, id, /*with_index=*/false);
  json choice = json::object();
  choice["index"] = 0;
  choice["message"] = std::move(message);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = finish_reason(r);
  json body = json::object();
  body["id"] = id;
  body["object"] = "chat.completion";
  body["created"] = created;
  body["model"] = model;
  body["choices"] = json::array();
  body["choices"].push_back(std::move(choice));
  body["usage"] = usage_json(r.usage);
  return to_text(body);
}

std::string openai_stream_begin(const OpenAIStream& stream) {
  return choice_chunk(stream, json{{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}}, nullptr);
}

std::string openai_stream_piece(const OpenAIStream& stream, std::string_view text) {
  return choice_chunk(stream, json{{"content", text}}, nullptr);
}

// The tool calls whole in one chunk (the API may split their arguments; the
// SDKs accumulate either way), then the finish reason in a chunk of its own,
// the usage chunk when asked for, and [DONE].
std::string openai_stream_end(const OpenAIStream& stream, const StepResult& result) {
  const ModelResponse& r = result.response;
  std::string out;
  if (!r.tool_calls.empty()) {
    out += choice_chunk(stream, json{{"tool_calls", tool_calls_json(r.tool_calls, stream.id, /*with_index=*/true)}},
                        nullptr);
  }
  out += choice_chunk(stream, json::object(), finish_reason(r));
  if (stream.include_usage) {
    json chunk = chunk_head(stream);
    chunk["choices"] = json::array();
    chunk["usage"] = usage_json(r.usage);
    out += sse(chunk);
  }
  return out + "data: [DONE]\n\n";
}

// The SDKs throw on a data line carrying `error`; no [DONE] follows.
std::string openai_stream_fail(const ApiError& error) { return "data: " + openai_error(error) + "\n\n"; }

}  // namespace detail

ApiResult<ParsedRequest> parse_openai_chat(std::string_view body, const Headers& headers, int max_json_depth) {
  using detail::json;
  try {
    json j;
    if (auto e = detail::parse_body(body, max_json_depth,
                                       {"messages", "content", "tool_calls", "tools", "function", "response_format",
                                        "stream_options"},
                                       j)) {
      return detail::failed<ParsedRequest>(std::move(*e));
    }
    ParsedRequest r;
    r.shape = ApiShape::kOpenAI;
    r.max_json_depth = max_json_depth;
    if (auto e = detail::read_chat(j, r)) return detail::failed<ParsedRequest>(std::move(*e));
    if (auto e = detail::finish_request(detail::member(j, "metadata"), {}, headers, r)) {
      return detail::failed<ParsedRequest>(std::move(*e));
    }
    return {std::move(r), {}};
  } catch (const std::exception& e) {
    return detail::failed<ParsedRequest>(detail::invalid_request("", std::string("the request could not be read: ") + e.what()));
  }
}

// ---- The functions of api.h that switch on the shape. ----

std::string render_error(ApiShape shape, const ApiError& error) {
  return shape == ApiShape::kOpenAI ? detail::openai_error(error) : detail::anthropic_error(error);
}

std::string render_response(const ParsedRequest& request, const StepResult& result, const std::string& id,
                            std::int64_t created) {
  const std::string& model = result.model.empty() ? request.model : result.model;
  return request.shape == ApiShape::kOpenAI ? detail::openai_response(result, model, id, created)
                                            : detail::anthropic_response(result, model, id, request.max_json_depth);
}

StreamWriter::StreamWriter(const ParsedRequest& request, std::string id, std::int64_t created, std::string model)
    : shape_(request.shape),
      include_usage_(request.include_usage),
      id_(std::move(id)),
      created_(created),
      model_(std::move(model)),
      input_tokens_(request.call.step.input_tokens.value_or(0)),
      max_json_depth_(request.max_json_depth) {}

std::string StreamWriter::begin() {
  if (shape_ == ApiShape::kOpenAI) return detail::openai_stream_begin({id_, created_, model_, include_usage_});
  return detail::anthropic_stream_begin(id_, model_, input_tokens_);
}

std::string StreamWriter::piece(std::string_view text) {
  if (text.empty()) return "";
  const bool first = !text_started_;
  text_started_ = true;
  if (shape_ == ApiShape::kOpenAI) return detail::openai_stream_piece({id_, created_, model_, include_usage_}, text);
  return detail::anthropic_stream_piece(text, first);
}

std::string StreamWriter::end(const StepResult& result) {
  // An answer that arrived without pieces (a client that does not stream)
  // is written whole before the end, so the stream always carries the text.
  std::string out;
  if (!text_started_) out = piece(result.response.text);
  if (shape_ == ApiShape::kOpenAI) return out + detail::openai_stream_end({id_, created_, model_, include_usage_}, result);
  return out + detail::anthropic_stream_end(id_, result, text_started_, max_json_depth_);
}

std::string StreamWriter::fail(const ApiError& error) {
  return shape_ == ApiShape::kOpenAI ? detail::openai_stream_fail(error) : detail::anthropic_stream_fail(error);
}

}  // namespace switchboard::gateway
