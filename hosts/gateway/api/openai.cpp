// OpenAI Chat Completions (POST /v1/chat/completions), as the official
// `openai` SDKs send and read it; and, at the end of the file, the functions
// of api.h that switch on the shape.
//
// Requests, field by field (into the canonical ModelRequest of
// switchboard/request.h; null counts as absent):
//   model, stream, stream_options.include_usage, metadata  the gateway's own
//       (metadata into the step: api.h)
//   messages[].role  system and developer -> "system"; user; assistant;
//       tool -> a "tool" message of one kToolResult block ("function" is a 400)
//   messages[].content  a string (one text block; an assistant's "" is no
//       block) or parts: text (+ cache_control, the convention of the
//       OpenAI-shaped proxies for Claude, -> ContentBlock::cache);
//       image_url {url, detail} -> kImage (a data: URL -> base64 with its
//       media type, else kUrl; detail auto|low|high); input_audio {data,
//       format} -> kAudio base64 "audio/<format>"; file {file_data (a data:
//       URL), filename} -> kDocument base64 titled by filename, or {file_id}
//       -> kDocument kFileId of origin "openai"; refusal (assistant) ->
//       kRefusal. System messages take text parts only, assistants text and
//       refusal; user and tool messages take every part (media in a tool
//       result go further than OpenAI's own API: a screenshot for Claude).
//   messages[].tool_calls (function) -> kToolUse blocks; refusal -> kRefusal;
//       reasoning_content + thinking_blocks [{type thinking, thinking,
//       signature} | {type redacted_thinking, data}] (LiteLLM's convention
//       for Claude's thinking) -> kThinking / kRedactedThinking of origin
//       "anthropic" (or the origin a "<origin>:" prefix names, as answers
//       write it), first in the message; reasoning_content alone -> one
//       unsigned kThinking; with thinking_blocks it is their text again.
//       Order: thinking, content parts, refusal, tool uses.
//   messages[].tool_call_id, name (tool) -> the result's tool_use_id and
//       tool_name (else the name of the call it answers)
//   messages[].name (user, system, assistant) -> Message::name (only
//       OpenAI-shaped providers take it; the others refuse the model);
//       annotations (an answer sent back) are ignored. function_call and
//       audio are 400s; other members are ignored.
//   tools[] {type function, function {name, description, parameters,
//       strict}, cache_control} -> ToolSpec (other types are 400s)
//   tool_choice none|auto|required|{type function, function {name}} ->
//       ToolChoice; parallel_tool_calls -> parallel_tool_calls
//   response_format text|json_object|json_schema {name, description, schema,
//       strict} -> OutputFormat (json_object and json_schema set the step's
//       output_must_be_json)
//   temperature [0,2], top_p [0,1], stop (string or array), seed,
//       presence_penalty, frequency_penalty [-2,2], logprobs, top_logprobs
//       [0,20], user -> Sampling
//   reasoning_effort none|minimal|low|medium|high|xhigh -> reasoning.effort
//       (and ParsedRequest::reasoning; needs_chain_of_thought unless none/minimal)
//   max_completion_tokens, else max_tokens -> max_output_tokens
//   n: 1 only (any other is a 400: the router returns one choice)
//   modalities: ["text"] only
//   Hints, which do not change the answer: store, prediction (a latency
//       hint), prompt_cache_key, prompt_cache_retention, safety_identifier
//       -> passthrough.hints_json: sent verbatim to an OpenAI-API model, left
//       out for the others.
//   service_tier: accepted, never sent (the ledger prices the standard tier,
//       and flex or priority would bill otherwise).
//   functions, function_call, logit_bias and audio are 400s (reasons given).
//   Any other field (verbosity, web_search_options, a field newer than the
//       router) -> passthrough.fields_json: sent verbatim to an OpenAI-API
//       model (openai, openai-compatible); any other model is refused for
//       the request by the field's name, so the dispatcher falls back.
//
// Answers: message.content is the text blocks joined (null when there are
// none beside tool calls or a refusal; "" for an empty answer), refusal the
// refusal blocks, tool_calls the tool uses, reasoning_content the thinking
// text and thinking_blocks every thinking and redacted block with its
// signature (see api.h on origins). Media and opaque blocks in an answer
// have no place in this shape and are not written; neither are Gemini's
// signatures on text and tool-call parts. finish_reason is
// openai_finish_reason(stop_reason), "tool_calls" when an answer that ended
// its turn has tool calls (as OpenAI's own answers say); a stop sequence is
// "stop" (the shape cannot say which). logprobs is the provider's logprobs
// JSON when the request asked for them. `prompt_tokens` counts every input
// token (cached and cache writes included) and `completion_tokens` the
// reasoning too, which inverts usage.h's normalisation of OpenAI figures.
#include <exception>

#include "api/common.h"
#include "api/json_out.h"

namespace switchboard::gateway {

namespace detail {

namespace {

// What a message of each role may hold in its content parts.
struct PartRules {
  bool media = false;    // image_url, input_audio, file
  bool refusal = false;  // refusal
};

PartRules part_rules(const std::string& role) {
  if (role == "user" || role == "tool") return {true, false};
  if (role == "assistant") return {false, true};
  return {};  // system
}

// An image_url part's {url, detail}.
template <typename Node>
MaybeError read_image(const Node& part, const JsonPath& path, ContentBlock& out) {
  const JsonPath ipath = at_key(path, "image_url");
  const auto image = member(part, "image_url");
  if (!image) return invalid_request(ipath, ipath + " is required");
  if (!jn::is_object(*image)) return invalid_request(ipath, ipath + " must be an object");
  std::string url;
  if (auto e = read_string(*image, "url", at_key(ipath, "url"), url)) return e;
  out.type = ContentBlock::Type::kImage;
  if (url.rfind("data:", 0) == 0) {
    if (!parse_data_url(url, out.source)) {
      return invalid_request(at_key(ipath, "url"),
                             at_key(ipath, "url") + " must be an http(s) URL or a base64 data: URL");
    }
  } else {
    out.source.kind = MediaSource::Kind::kUrl;
    out.source.data = std::move(url);
  }
  if (auto e = read_optional_string(*image, "detail", at_key(ipath, "detail"), out.detail)) return e;
  if (!out.detail.empty() && out.detail != "auto" && out.detail != "low" && out.detail != "high") {
    return invalid_request(at_key(ipath, "detail"),
                           at_key(ipath, "detail") + " must be auto, low or high (got '" + out.detail + "')");
  }
  return std::nullopt;
}

// An input_audio part's {data, format}.
template <typename Node>
MaybeError read_audio(const Node& part, const JsonPath& path, ContentBlock& out) {
  const JsonPath apath = at_key(path, "input_audio");
  const auto audio = member(part, "input_audio");
  if (!audio) return invalid_request(apath, apath + " is required");
  if (!jn::is_object(*audio)) return invalid_request(apath, apath + " must be an object");
  std::string format;
  out.type = ContentBlock::Type::kAudio;
  out.source.kind = MediaSource::Kind::kBase64;
  if (auto e = read_string(*audio, "data", at_key(apath, "data"), out.source.data)) return e;
  if (auto e = read_string(*audio, "format", at_key(apath, "format"), format)) return e;
  if (format.empty()) return invalid_request(at_key(apath, "format"), at_key(apath, "format") + " must not be empty");
  out.source.media_type = "audio/" + format;
  return std::nullopt;
}

// A file part's {file_data, filename} or {file_id}.
template <typename Node>
MaybeError read_file(const Node& part, const JsonPath& path, ContentBlock& out) {
  const JsonPath fpath = at_key(path, "file");
  const auto file = member(part, "file");
  if (!file) return invalid_request(fpath, fpath + " is required");
  if (!jn::is_object(*file)) return invalid_request(fpath, fpath + " must be an object");
  out.type = ContentBlock::Type::kDocument;
  std::string data;
  std::string file_id;
  if (auto e = read_optional_string(*file, "file_data", at_key(fpath, "file_data"), data)) return e;
  if (auto e = read_optional_string(*file, "file_id", at_key(fpath, "file_id"), file_id)) return e;
  if (auto e = read_optional_string(*file, "filename", at_key(fpath, "filename"), out.title)) return e;
  if (!data.empty()) {
    if (!parse_data_url(data, out.source)) {
      return invalid_request(at_key(fpath, "file_data"),
                             at_key(fpath, "file_data") + " must be a base64 data: URL");
    }
  } else if (!file_id.empty()) {
    out.source.kind = MediaSource::Kind::kFileId;
    out.source.data = std::move(file_id);
    out.origin = "openai";
  } else {
    return invalid_request(fpath, fpath + " needs file_data or file_id");
  }
  return std::nullopt;
}

// A message's content: a string or an array of parts, appended to `out`.
template <typename Node>
MaybeError read_content(const Node& content, const JsonPath& path, const std::string& role,
                        std::vector<ContentBlock>& out) {
  if (jn::is_string(content)) {
    // An assistant's "" beside its tool calls is no block: Anthropic refuses empty text.
    if (role != "assistant" || !jn::string_of(content).empty()) {
      out.push_back(ContentBlock::of_text(std::string(jn::string_of(content))));
    }
    return std::nullopt;
  }
  const std::string shape_error = path + " must be a string or an array of content parts";
  if (!jn::is_array(content)) return invalid_request(path, shape_error);
  const PartRules rules = part_rules(role);
  std::size_t i = 0;
  for (const auto& part : jn::items(content)) {
    const JsonPath ppath = at_index(path, i++);
    if (!jn::is_object(part)) return invalid_request(ppath, shape_error);
    std::string type;
    const JsonPath tpath = at_key(ppath, "type");
    if (auto e = read_string(part, "type", tpath, type)) return e;
    ContentBlock block;
    const bool media = type == "image_url" || type == "input_audio" || type == "file";
    if ((media && !rules.media) || (type == "refusal" && !rules.refusal)) {
      return invalid_request(tpath, tpath + " '" + type + "' is not allowed in " + role + " messages");
    }
    if (type == "text") {
      if (auto e = read_string(part, "text", at_key(ppath, "text"), block.text)) return e;
    } else if (type == "image_url") {
      if (auto e = read_image(part, ppath, block)) return e;
    } else if (type == "input_audio") {
      if (auto e = read_audio(part, ppath, block)) return e;
    } else if (type == "file") {
      if (auto e = read_file(part, ppath, block)) return e;
    } else if (type == "refusal") {
      block.type = ContentBlock::Type::kRefusal;
      if (auto e = read_string(part, "refusal", at_key(ppath, "refusal"), block.text)) return e;
    } else {
      return invalid_request(tpath, tpath + " '" + type +
                                        "' is not supported: only text, image_url, input_audio, file and refusal "
                                        "parts are");
    }
    if (auto e = read_cache_control(part, ppath, block.cache)) return e;
    out.push_back(std::move(block));
  }
  return std::nullopt;
}

// One tool call of an assistant message in the history.
template <typename Node>
MaybeError read_tool_call(const Node& call, const JsonPath& path, ToolCall& out) {
  if (!jn::is_object(call)) return invalid_request(path, path + " must be an object");
  std::string type = "function";
  if (auto e = read_optional_string(call, "type", at_key(path, "type"), type)) return e;
  if (type != "function") {
    return invalid_request(at_key(path, "type"),
                           at_key(path, "type") + " '" + type + "' is not supported: only function tool calls are");
  }
  if (auto e = read_string(call, "id", at_key(path, "id"), out.id)) return e;
  const JsonPath fpath = at_key(path, "function");
  const auto function = member(call, "function");
  if (!function) return invalid_request(fpath, fpath + " is required");
  if (!jn::is_object(*function)) return invalid_request(fpath, fpath + " must be an object");
  if (auto e = read_string(*function, "name", at_key(fpath, "name"), out.name)) return e;
  return read_string(*function, "arguments", at_key(fpath, "arguments"), out.arguments_json);
}

// An assistant's thinking_blocks (or, without them, its reasoning_content) into `out`.
template <typename Node>
MaybeError read_thinking(const Node& m, const JsonPath& path, std::vector<ContentBlock>& out) {
  if (const auto blocks = member(m, "thinking_blocks")) {
    const JsonPath bpath = at_key(path, "thinking_blocks");
    if (!jn::is_array(*blocks)) return invalid_request(bpath, bpath + " must be an array");
    std::size_t i = 0;
    for (const auto& b : jn::items(*blocks)) {
      const JsonPath ipath = at_index(bpath, i++);
      if (!jn::is_object(b)) return invalid_request(ipath, ipath + " must be an object");
      std::string type;
      if (auto e = read_string(b, "type", at_key(ipath, "type"), type)) return e;
      ContentBlock block;
      std::string signature;
      if (type == "thinking") {
        block.type = ContentBlock::Type::kThinking;
        if (auto e = read_string(b, "thinking", at_key(ipath, "thinking"), block.text)) return e;
        if (auto e = read_optional_string(b, "signature", at_key(ipath, "signature"), signature)) return e;
      } else if (type == "redacted_thinking") {
        block.type = ContentBlock::Type::kRedactedThinking;
        if (auto e = read_string(b, "data", at_key(ipath, "data"), signature)) return e;
      } else {
        return invalid_request(at_key(ipath, "type"), at_key(ipath, "type") +
                                                          " must be thinking or redacted_thinking (got '" + type +
                                                          "')");
      }
      read_client_signature(std::move(signature), "anthropic", block);
      out.push_back(std::move(block));
    }
    // reasoning_content is their text again: checked for its type only.
    std::string ignored;
    return read_optional_string(m, "reasoning_content", at_key(path, "reasoning_content"), ignored);
  }
  ContentBlock thinking;
  thinking.type = ContentBlock::Type::kThinking;
  if (auto e = read_optional_string(m, "reasoning_content", at_key(path, "reasoning_content"), thinking.text)) {
    return e;
  }
  if (!thinking.text.empty()) out.push_back(std::move(thinking));
  return std::nullopt;
}

template <typename Node>
MaybeError read_message(const Node& m, const JsonPath& path, std::vector<Message>& out) {
  if (!jn::is_object(m)) return invalid_request(path, path + " must be an object");
  if (member(m, "function_call")) {
    return invalid_request(at_key(path, "function_call"),
                           at_key(path, "function_call") + " is not supported: use tool_calls");
  }
  if (member(m, "audio")) {
    return invalid_request(at_key(path, "audio"),
                           at_key(path, "audio") + " is not supported: the router answers with text only");
  }
  Message message;
  const JsonPath role_path = at_key(path, "role");
  if (auto e = read_string(m, "role", role_path, message.role)) return e;
  const JsonPath content_path = at_key(path, "content");
  const auto content = member(m, "content");
  if (message.role != "tool") {  // a tool message's name is its function's: read below
    if (auto e = read_optional_string(m, "name", at_key(path, "name"), message.name)) return e;
  }
  if (message.role == "system" || message.role == "developer" || message.role == "user") {
    if (message.role == "developer") message.role = "system";  // the newer name for the same thing
    if (!content) return invalid_request(content_path, content_path + " is required");
    if (auto e = read_content(*content, content_path, message.role, message.content)) return e;
  } else if (message.role == "tool") {
    ContentBlock result;
    result.type = ContentBlock::Type::kToolResult;
    if (!content) return invalid_request(content_path, content_path + " is required");
    if (auto e = read_content(*content, content_path, message.role, result.content)) return e;
    if (auto e = read_string(m, "tool_call_id", at_key(path, "tool_call_id"), result.tool_use_id)) return e;
    result.tool_use_id = read_tool_call_id(std::move(result.tool_use_id)).id;
    if (auto e = read_optional_string(m, "name", at_key(path, "name"), result.tool_name)) return e;
    message.content.push_back(std::move(result));
  } else if (message.role == "assistant") {
    if (auto e = read_thinking(m, path, message.content)) return e;
    if (content) {
      if (auto e = read_content(*content, content_path, message.role, message.content)) return e;
    }
    ContentBlock refusal;
    refusal.type = ContentBlock::Type::kRefusal;
    if (auto e = read_optional_string(m, "refusal", at_key(path, "refusal"), refusal.text)) return e;
    const bool refused = static_cast<bool>(member(m, "refusal"));
    if (refused) message.content.push_back(std::move(refusal));
    const auto calls = member(m, "tool_calls");
    if (calls) {
      const JsonPath calls_path = at_key(path, "tool_calls");
      if (!jn::is_array(*calls)) return invalid_request(calls_path, calls_path + " must be an array");
      std::size_t i = 0;
      for (const auto& item : jn::items(*calls)) {
        ToolCall call;
        if (auto e = read_tool_call(item, at_index(calls_path, i++), call)) return e;
        SplitId id = read_tool_call_id(std::move(call.id));
        call.id = std::move(id.id);
        ContentBlock block = ContentBlock::of_tool_call(std::move(call));
        block.signature = std::move(id.signature);
        block.origin = std::move(id.origin);
        message.content.push_back(std::move(block));
      }
    }
    if (!content && !calls && !refused) {
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

template <typename Node>
MaybeError read_tool(const Node& tool, const JsonPath& path, ToolSpec& out) {
  if (!jn::is_object(tool)) return invalid_request(path, path + " must be an object");
  std::string type;
  if (auto e = read_string(tool, "type", at_key(path, "type"), type)) return e;
  if (type != "function") {
    return invalid_request(at_key(path, "type"),
                           at_key(path, "type") + " '" + type + "' is not supported: only function tools are");
  }
  const JsonPath fpath = at_key(path, "function");
  const auto function = member(tool, "function");
  if (!function) return invalid_request(fpath, fpath + " is required");
  if (!jn::is_object(*function)) return invalid_request(fpath, fpath + " must be an object");
  if (auto e = read_string(*function, "name", at_key(fpath, "name"), out.name)) return e;
  if (auto e = read_optional_string(*function, "description", at_key(fpath, "description"), out.description)) {
    return e;
  }
  if (member(*function, "strict")) {
    bool strict = false;
    if (auto e = read_optional_bool(*function, "strict", at_key(fpath, "strict"), strict)) return e;
    out.strict = strict;
  }
  if (auto e = read_cache_control(tool, path, out.cache)) return e;
  return read_optional_object_text(*function, "parameters", at_key(fpath, "parameters"), out.parameters_json);
}

template <typename Node>
MaybeError read_tool_choice(const Node& choice, ToolChoice& out) {
  const std::string kError =
      R"(tool_choice must be none, auto, required or {"type":"function","function":{"name":...}})";
  if (jn::is_string(choice)) {
    if (!read_choice_mode(jn::string_of(choice), out)) return invalid_request("tool_choice", kError);
    return std::nullopt;
  }
  if (!jn::is_object(choice)) return invalid_request("tool_choice", kError);
  std::string type;
  if (auto e = read_string(choice, "type", "tool_choice.type", type)) return e;
  if (type != "function") {
    return invalid_request("tool_choice.type",
                           "tool_choice.type '" + type + "' is not supported: only function is");
  }
  const auto function = member(choice, "function");
  if (!function || !jn::is_object(*function)) {
    return invalid_request("tool_choice.function", "tool_choice.function must be an object");
  }
  out.mode = ToolChoice::Mode::kNamed;
  return read_string(*function, "name", "tool_choice.function.name", out.name);
}

template <typename Node>
MaybeError read_response_format(const Node& format, ParsedRequest& r) {
  if (!jn::is_object(format)) return invalid_request("response_format", "response_format must be an object");
  std::string type;
  if (auto e = read_string(format, "type", "response_format.type", type)) return e;
  OutputFormat& out = r.call.request.output_format;
  if (type == "text") {
    out.type = OutputFormat::Type::kText;
    return std::nullopt;
  }
  if (type == "json_object") {
    out.type = OutputFormat::Type::kJsonObject;
  } else if (type == "json_schema") {
    const auto schema = member(format, "json_schema");
    if (!schema || !jn::is_object(*schema)) {
      return invalid_request("response_format.json_schema", "response_format.json_schema must be an object");
    }
    const JsonPath spath("response_format.json_schema");
    out.type = OutputFormat::Type::kJsonSchema;
    if (auto e = read_string(*schema, "name", at_key(spath, "name"), out.name)) return e;
    if (auto e = read_optional_string(*schema, "description", at_key(spath, "description"), out.description)) {
      return e;
    }
    if (!member(*schema, "schema")) {
      return invalid_request(at_key(spath, "schema"), at_key(spath, "schema") + " is required");
    }
    if (auto e = read_optional_object_text(*schema, "schema", at_key(spath, "schema"), out.schema_json)) return e;
    if (auto e = read_optional_bool(*schema, "strict", at_key(spath, "strict"), out.strict)) return e;
  } else {
    return invalid_request("response_format.type",
                           "response_format.type must be one of text, json_object, json_schema (got '" + type + "')");
  }
  return std::nullopt;
}

template <typename Node>
MaybeError read_sampling(const Node& j, Sampling& s) {
  if (auto e = read_optional_number(j, "temperature", "temperature", 0, 2, s.temperature)) return e;
  if (auto e = read_optional_number(j, "top_p", "top_p", 0, 1, s.top_p)) return e;
  if (const auto stop = member(j, "stop")) {
    if (auto e = read_stop_sequences(*stop, "stop", /*one_string_allowed=*/true, s.stop)) return e;
  }
  if (auto e = read_optional_integer(j, "seed", "seed", INT64_MIN, INT64_MAX, s.seed)) return e;
  if (auto e = read_optional_number(j, "presence_penalty", "presence_penalty", -2, 2, s.presence_penalty)) return e;
  if (auto e = read_optional_number(j, "frequency_penalty", "frequency_penalty", -2, 2, s.frequency_penalty)) {
    return e;
  }
  if (auto e = read_optional_bool(j, "logprobs", "logprobs", s.logprobs)) return e;
  if (auto e = read_optional_integer(j, "top_logprobs", "top_logprobs", 0, 20, s.top_logprobs)) return e;
  if (s.top_logprobs && !s.logprobs) return invalid_request("top_logprobs", "top_logprobs needs logprobs: true");
  return read_optional_string(j, "user", "user", s.user);
}

template <typename Node>
MaybeError read_chat(const Node& j, ParsedRequest& r) {
  ModelRequest& request = r.call.request;
  // Fields not read here go verbatim to an OpenAI-API model (passthrough).
  if (auto e = collect_unmodeled(j, WireApi::kOpenAIChat,
                                 {"model", "messages", "tools", "tool_choice", "parallel_tool_calls",
                                  "response_format", "temperature", "top_p", "stop", "seed", "presence_penalty",
                                  "frequency_penalty", "logprobs", "top_logprobs", "user", "reasoning_effort",
                                  "max_completion_tokens", "max_tokens", "n", "stream", "stream_options",
                                  "metadata", "modalities",
                                  // Priced at the standard tier: the ledger must match the bill.
                                  "service_tier"},
                                 // These do not change the answer.
                                 {"store", "prediction", "prompt_cache_key", "prompt_cache_retention",
                                  "safety_identifier"},
                                 {{"functions", "use tools"},
                                  {"function_call", "use tool_choice"},
                                  {"logit_bias", "token ids differ between the models the router may choose"},
                                  {"audio", "the router answers with text only"}},
                                 request.passthrough)) {
    return e;
  }
  if (auto e = read_string(j, "model", "model", r.model)) return e;
  if (r.model.empty()) return invalid_request("model", "model must not be empty");

  if (auto e = read_messages(j, read_message<Node>, request.messages)) return e;

  if (auto e = read_tools(j, read_tool<Node>, request.tools)) return e;
  if (const auto choice = member(j, "tool_choice")) {
    ToolChoice tool_choice;
    if (auto e = read_tool_choice(*choice, tool_choice)) return e;
    request.tool_choice = std::move(tool_choice);
  }
  if (member(j, "parallel_tool_calls")) {
    bool parallel = true;
    if (auto e = read_optional_bool(j, "parallel_tool_calls", "parallel_tool_calls", parallel)) return e;
    request.parallel_tool_calls = parallel;
  }

  if (auto e = read_optional_bool(j, "stream", "stream", r.stream)) return e;
  if (const auto options = member(j, "stream_options")) {
    if (!jn::is_object(*options)) return invalid_request("stream_options", "stream_options must be an object");
    if (auto e = read_optional_bool(*options, "include_usage", "stream_options.include_usage", r.include_usage)) {
      return e;
    }
  }

  // max_tokens is the older name; max_completion_tokens wins when both are given.
  if (const auto max = member(j, "max_completion_tokens")) {
    if (auto e = read_token_count(*max, "max_completion_tokens", r.max_output_tokens)) return e;
  } else if (const auto legacy = member(j, "max_tokens")) {
    if (auto e = read_token_count(*legacy, "max_tokens", r.max_output_tokens)) return e;
  }
  request.max_output_tokens = r.max_output_tokens;

  if (const auto n = member(j, "n")) {
    if (!jn::is_integer(*n) || jn::int_of(*n) != 1) {
      return invalid_request("n", "n must be 1: the router returns one choice");
    }
  }
  if (const auto modalities = member(j, "modalities")) {
    const auto only = jn::first(*modalities);
    const bool text_only = only && jn::is_string(*only) && jn::string_of(*only) == "text" &&
                           jn::items(*modalities).size() == 1;
    if (!text_only) {
      return invalid_request("modalities", R"(modalities must be ["text"]: the router answers with text only)");
    }
  }

  if (const auto effort = member(j, "reasoning_effort")) {
    const std::string kError = "reasoning_effort must be one of none, minimal, low, medium, high, xhigh";
    if (!jn::is_string(*effort)) return invalid_request("reasoning_effort", kError);
    const std::optional<Effort> parsed = parse_effort(jn::string_of(*effort));
    if (!parsed) return invalid_request("reasoning_effort", kError);
    set_effort(*parsed, r);
  }

  if (const auto format = member(j, "response_format")) {
    if (auto e = read_response_format(*format, r)) return e;
  }
  return read_sampling(j, request.sampling);
}

template <typename Node>
ApiResult<ParsedRequest> read_openai_chat_body(const Node& body, const Headers& headers, int max_json_depth,
                                               const Workload* workload) {
  ParsedRequest r;
  r.shape = ApiShape::kOpenAI;
  r.max_json_depth = max_json_depth;
  if (auto e = read_chat(body, r)) return failed<ParsedRequest>(std::move(*e));
  if (auto e = finish_request(member(body, "metadata"), {}, headers, r, workload)) {
    return failed<ParsedRequest>(std::move(*e));
  }
  return {std::move(r), {}};
}

// The answer's finish_reason: tool calls that ended the turn say so.
std::string finish_reason(const ModelResponse& r) {
  bool has_tool_calls = false;
  for (const ContentBlock& b : r.content) has_tool_calls = has_tool_calls || b.type == ContentBlock::Type::kToolUse;
  if (has_tool_calls && r.stop_reason == StopReason::kEndTurn) return "tool_calls";
  return std::string(openai_finish_reason(r.stop_reason));
}

// The usage object, its keys in the order to_text writes a tree's.
void write_usage(JsonOut& out, const Usage& u) {
  const std::int64_t prompt = u.total_input();
  const std::int64_t completion = u.output_tokens + u.reasoning_tokens;
  out.begin_object();
  out.key("completion_tokens").integer(completion);
  out.key("completion_tokens_details").begin_object().key("reasoning_tokens").integer(u.reasoning_tokens).end_object();
  out.key("prompt_tokens").integer(prompt);
  out.key("prompt_tokens_details").begin_object().key("cached_tokens").integer(u.cached_input_tokens).end_object();
  out.key("total_tokens").integer(prompt + completion);
  out.end_object();
}

// A tool call as the API writes it; `index` (its place among the answer's
// tool calls) makes the id of a call the provider gave none, and is written
// in a stream's delta only.
json tool_call_json(const ContentBlock& b, const std::string& response_id, std::size_t index, bool with_index) {
  const ToolCall& call = b.tool_call;
  json out = json::object();
  if (with_index) out["index"] = index;
  out["id"] = tool_call_id(b, response_id, index);
  out["type"] = "function";
  out["function"] = json{{"name", call.name}, {"arguments", call.arguments_json.empty() ? "{}" : call.arguments_json}};
  return out;
}

// The answer's thinking and redacted thinking blocks in LiteLLM's
// thinking_blocks shape; an empty array when it has none.
json thinking_blocks_json(const std::vector<ContentBlock>& content) {
  json blocks = json::array();
  for (const ContentBlock& b : content) {
    if (b.type == ContentBlock::Type::kThinking) {
      blocks.push_back(
          json{{"type", "thinking"}, {"thinking", b.text}, {"signature", client_signature(b, "anthropic")}});
    } else if (b.type == ContentBlock::Type::kRedactedThinking) {
      blocks.push_back(json{{"type", "redacted_thinking"}, {"data", client_signature(b, "anthropic")}});
    }
  }
  return blocks;
}

// The provider's logprobs when the request asked for them (`asked`), else
// null; parsed within the request's nesting bound.
json logprobs_json(bool asked, int max_json_depth, const ModelResponse& r) {
  if (!asked || r.logprobs_json.empty()) return nullptr;
  json parsed;
  if (parse_bounded(r.logprobs_json, max_json_depth, {}, parsed) || parsed.is_discarded()) return nullptr;
  return parsed;
}

}  // namespace

ApiResult<ParsedRequest> read_openai_chat(jn::Element body, const Headers& headers, int max_json_depth,
                                          const Workload* workload) {
  return read_openai_chat_body(body, headers, max_json_depth, workload);
}

ApiResult<ParsedRequest> read_openai_chat(const json& body, const Headers& headers, int max_json_depth,
                                          const Workload* workload) {
  return read_openai_chat_body(body, headers, max_json_depth, workload);
}

std::string openai_error(const ApiError& error) {
  json body = json::object();
  body["message"] = error.message;
  body["type"] = error.type;
  body["param"] = error.param.empty() ? json(nullptr) : json(error.param);
  body["code"] = error.code.empty() ? json(nullptr) : json(error.code);
  return to_text(json{{"error", std::move(body)}});
}

std::string openai_response(const ParsedRequest& request, const StepResult& result, const std::string& model,
                            const std::string& id, std::int64_t created) {
  const ModelResponse& r = result.response;
  std::string text;
  std::string refusal;
  std::string reasoning;
  bool has_text = false;
  bool has_refusal = false;
  bool has_thinking = false;
  json tool_calls = json::array();
  for (const ContentBlock& b : r.content) {
    switch (b.type) {
      case ContentBlock::Type::kText:
        text += b.text;
        has_text = true;
        break;
      case ContentBlock::Type::kRefusal:
        refusal += b.text;
        has_refusal = true;
        break;
      case ContentBlock::Type::kThinking:
        reasoning += b.text;
        has_thinking = true;
        break;
      case ContentBlock::Type::kRedactedThinking:
        has_thinking = true;
        break;
      case ContentBlock::Type::kToolUse:
        tool_calls.push_back(tool_call_json(b, id, tool_calls.size(), /*with_index=*/false));
        break;
      default:
        break;  // media and opaque items: no place in this shape (see the file comment)
    }
  }
  // Written as to_text writes the tree of this shape: each object's keys sorted.
  std::string body;
  body.reserve(256 + text.size() + reasoning.size() + refusal.size());
  JsonOut out(body);
  out.begin_object();
  out.key("choices").begin_array().begin_object();
  out.key("finish_reason").string(finish_reason(r));
  out.key("index").integer(0);
  out.key("logprobs").raw(to_text(logprobs_json(request.call.request.sampling.logprobs, request.max_json_depth, r)));
  out.key("message").begin_object();
  if (has_text || (tool_calls.empty() && !has_refusal)) {
    out.key("content").string(text);
  } else {
    out.key("content").null();
  }
  if (has_thinking) out.key("reasoning_content").string(reasoning);
  if (has_refusal) {
    out.key("refusal").string(refusal);
  } else {
    out.key("refusal").null();
  }
  out.key("role").string("assistant");
  if (has_thinking) out.key("thinking_blocks").raw(to_text(thinking_blocks_json(r.content)));
  if (!tool_calls.empty()) out.key("tool_calls").raw(to_text(tool_calls));
  out.end_object();  // message
  out.end_object().end_array();
  out.key("created").integer(created);
  out.key("id").string(id);
  out.key("model").string(model);
  out.key("object").string("chat.completion");
  out.key("usage");
  write_usage(out, r.usage);
  out.end_object();
  return body;
}

}  // namespace detail

ApiResult<ParsedRequest> parse_openai_chat(std::string_view body, const Headers& headers, int max_json_depth,
                                           const Workload* workload) {
  using detail::json;
  try {
    if (const std::optional<JsonDom> dom = detail::read_body_dom(body, max_json_depth)) {
      return detail::read_openai_chat(dom->root(), headers, max_json_depth, workload);
    }
    json j;
    if (auto e = detail::parse_body(body, max_json_depth,
                                    {"messages", "content", "tool_calls", "tools", "function", "response_format",
                                     "stream_options", "thinking_blocks", "tool_choice"},
                                    j)) {
      return detail::failed<ParsedRequest>(std::move(*e));
    }
    return detail::read_openai_chat(j, headers, max_json_depth, workload);
  } catch (const std::exception& e) {
    return detail::failed<ParsedRequest>(detail::invalid_request("", std::string("the request could not be read: ") + e.what()));
  }
}

// ---- The OpenAI half of the StreamWriter. ----

namespace {

using detail::json;

// A chunk of the one choice, as an SSE event; `usage: null` on every chunk
// but the last when the client asked for usage, as the API does. `delta`,
// `finish` and `logprobs` are JSON texts. Written as to_text writes the tree
// of this shape (each object's keys sorted).
std::string choice_chunk(const std::string& id, std::int64_t created, const std::string& model, bool include_usage,
                         std::string_view delta, std::string_view finish = "null",
                         std::string_view logprobs = "null") {
  std::string event = "data: ";
  event.reserve(160 + delta.size() + id.size() + model.size());
  detail::JsonOut out(event);
  out.begin_object();
  out.key("choices").begin_array().begin_object();
  out.key("delta").raw(delta);
  out.key("finish_reason").raw(finish);
  out.key("index").integer(0);
  out.key("logprobs").raw(logprobs);
  out.end_object().end_array();
  out.key("created").integer(created);
  out.key("id").string(id);
  out.key("model").string(model);
  out.key("object").string("chat.completion.chunk");
  if (include_usage) out.key("usage").null();
  out.end_object();
  event += "\n\n";
  return event;
}

// A delta with one string member, `{"key":"value"}`.
std::string delta_of(std::string_view key, std::string_view value) {
  std::string delta;
  delta.reserve(value.size() + key.size() + 8);
  detail::JsonOut(delta).begin_object().key(key).string(value).end_object();
  return delta;
}

// Chat Completions chunks (api.h says what each kind becomes).
class OpenAIStreamWriter final : public detail::BlockStreamWriter {
 public:
  OpenAIStreamWriter(const ParsedRequest& request, std::string id, std::int64_t created, std::string model)
      : BlockStreamWriter(request, std::move(id), created, std::move(model)),
        include_usage_(request.include_usage),
        logprobs_(request.call.request.sampling.logprobs) {}

  std::string begin() override {
    return choice_chunk(id_, created_, model_, include_usage_, R"({"content":"","refusal":null,"role":"assistant"})");
  }

  std::string chunk(const StreamChunk& chunk) override {
    const auto write = [&](std::string_view delta) {
      return choice_chunk(id_, created_, model_, include_usage_, delta);
    };
    bool first = false;
    switch (chunk.kind) {
      case StreamChunk::Kind::kText:
        if (chunk.text.empty()) return "";
        sent(chunk.index, chunk.kind, first);
        return write(delta_of("content", chunk.text));
      case StreamChunk::Kind::kThinking:
        if (chunk.text.empty()) return "";
        sent(chunk.index, chunk.kind, first);
        return write(delta_of("reasoning_content", chunk.text));
      case StreamChunk::Kind::kRefusal:
        if (chunk.text.empty()) return "";
        sent(chunk.index, chunk.kind, first);
        return write(delta_of("refusal", chunk.text));
      case StreamChunk::Kind::kSignature:
        // A thinking block's goes whole into end()'s thinking_blocks; a tool
        // call's (before its start) into the call's id.
        hold_signature(chunk);
        return "";
      case StreamChunk::Kind::kStart:
        return "";  // the head and begin() are the host's to send
      case StreamChunk::Kind::kRedactedThinking:
      case StreamChunk::Kind::kOpaque:
        return "";  // redacted thinking goes whole into end()'s thinking_blocks; opaque items have no place
      case StreamChunk::Kind::kToolCallStart: {
        const Sent& s = sent(chunk.index, chunk.kind, first);
        if (!first) return "";
        ToolCall call{std::string(chunk.id), std::string(chunk.name), ""};
        json delta = json::object();
        delta["index"] = s.tool_index;
        delta["id"] = detail::tool_call_id(call, s.signature, s.origin, id_, static_cast<std::size_t>(s.tool_index));
        delta["type"] = "function";
        delta["function"] = json{{"name", call.name}, {"arguments", ""}};
        return write(detail::to_text(json{{"tool_calls", json::array({std::move(delta)})}}));
      }
      case StreamChunk::Kind::kToolArguments: {
        if (chunk.text.empty()) return "";
        const Sent& s = sent(chunk.index, chunk.kind, first);
        json delta = json::object();
        delta["index"] = s.tool_index;
        delta["function"] = json{{"arguments", chunk.text}};
        return write(detail::to_text(json{{"tool_calls", json::array({std::move(delta)})}}));
      }
    }
    return "";
  }

  // The blocks no chunk carried, each in a delta of its own; the thinking
  // blocks whole with their signatures; the finish reason in a chunk of its
  // own (with the logprobs when asked), the usage chunk when asked for, and [DONE].
  std::string end(const StepResult& result) override {
    const ModelResponse& r = result.response;
    const auto write = [&](std::string_view delta) {
      return choice_chunk(id_, created_, model_, include_usage_, delta);
    };
    std::string out;
    bool has_thinking = false;
    for (std::size_t i = 0; i < r.content.size(); ++i) {
      const ContentBlock& b = r.content[i];
      has_thinking = has_thinking || b.type == ContentBlock::Type::kThinking ||
                     b.type == ContentBlock::Type::kRedactedThinking;
      if (sent_.count(static_cast<int>(i)) != 0) continue;
      switch (b.type) {
        case ContentBlock::Type::kText:
          if (!b.text.empty()) out += write(delta_of("content", b.text));
          break;
        case ContentBlock::Type::kThinking:
          if (!b.text.empty()) out += write(delta_of("reasoning_content", b.text));
          break;
        case ContentBlock::Type::kRefusal:
          out += write(delta_of("refusal", b.text));
          break;
        case ContentBlock::Type::kToolUse: {
          const auto index = static_cast<std::size_t>(next_tool_index_++);
          out += write(detail::to_text(json{{"tool_calls", json::array({detail::tool_call_json(b, id_, index, true)})}}));
          break;
        }
        default:
          break;  // redacted thinking goes in thinking_blocks; media and opaque items have no place
      }
    }
    if (has_thinking) out += write(detail::to_text(json{{"thinking_blocks", detail::thinking_blocks_json(r.content)}}));
    std::string finish;
    append_json_string(finish, detail::finish_reason(r));
    out += choice_chunk(id_, created_, model_, include_usage_, "{}", finish,
                        detail::to_text(detail::logprobs_json(logprobs_, max_json_depth_, r)));
    if (include_usage_) {
      out += "data: ";
      detail::JsonOut usage(out);
      usage.begin_object();
      usage.key("choices").begin_array().end_array();
      usage.key("created").integer(created_);
      usage.key("id").string(id_);
      usage.key("model").string(model_);
      usage.key("object").string("chat.completion.chunk");
      usage.key("usage");
      detail::write_usage(usage, r.usage);
      usage.end_object();
      out += "\n\n";
    }
    return out + "data: [DONE]\n\n";
  }

  // The SDKs throw on a data line carrying `error`; no [DONE] follows.
  std::string fail(const ApiError& error) override { return "data: " + detail::openai_error(error) + "\n\n"; }

  std::string keep_alive() override { return ": keep-alive\n\n"; }

 private:
  bool include_usage_;
  bool logprobs_;  // the client asked for logprobs
};

}  // namespace

namespace detail {

std::unique_ptr<StreamWriter> make_openai_stream_writer(const ParsedRequest& request, std::string id,
                                                        std::int64_t created, std::string model) {
  return std::make_unique<OpenAIStreamWriter>(request, std::move(id), created, std::move(model));
}

}  // namespace detail

// ---- The functions of api.h that switch on the shape. ----

std::string render_error(ApiShape shape, const ApiError& error) {
  return shape == ApiShape::kAnthropic ? detail::anthropic_error(error) : detail::openai_error(error);
}

std::string render_response(const ParsedRequest& request, const StepResult& result, const std::string& id,
                            std::int64_t created) {
  const std::string& model = result.model.empty() ? request.model : result.model;
  switch (request.shape) {
    case ApiShape::kOpenAI: return detail::openai_response(request, result, model, id, created);
    case ApiShape::kResponses: return detail::responses_response(request, result, model, id, created);
    case ApiShape::kAnthropic: break;
  }
  return detail::anthropic_response(request, result, model, id);
}

std::unique_ptr<StreamWriter> make_stream_writer(const ParsedRequest& request, std::string id, std::int64_t created,
                                                 std::string model) {
  switch (request.shape) {
    case ApiShape::kOpenAI: return detail::make_openai_stream_writer(request, std::move(id), created, std::move(model));
    case ApiShape::kResponses:
      return detail::make_responses_stream_writer(request, std::move(id), created, std::move(model));
    case ApiShape::kAnthropic: break;
  }
  return detail::make_anthropic_stream_writer(request, std::move(id), created, std::move(model));
}

}  // namespace switchboard::gateway
