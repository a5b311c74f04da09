// OpenAI Responses (POST /v1/responses), as the official `openai` SDKs, the
// Vercel AI SDK and the Agents SDK send and read it.
//
// Requests, field by field (into the canonical ModelRequest; null counts as
// absent):
//   model, stream, metadata (into the step, as for Chat Completions), store
//       (default true: the answer is kept for previous_response_id),
//       previous_response_id (the stored conversation comes first; 404 when
//       there is none), stream_options.include_obfuscation (accepted; the
//       gateway never pads events)
//   instructions -> a system message leading the conversation
//   input  a string (one user message) or items:
//       {type message (optional), role user|system|developer|assistant,
//        content: a string or parts}: input_text -> text; input_image
//        {image_url (URL or data: URL) | file_id, detail} -> kImage;
//        input_file {file_data (data: URL) | file_id | file_url, filename}
//        -> kDocument; input_audio {input_audio {data, format}} -> kAudio;
//        assistant output_text {text} -> text, refusal {refusal} -> kRefusal
//       {type function_call, call_id, name, arguments} -> kToolUse (the call
//        id carries a Gemini signature as in the other shapes)
//       {type function_call_output, call_id, output: a string or input_text/
//        input_image/input_file parts} -> a kToolResult
//       {type reasoning, summary [{summary_text}], content [{reasoning_text}],
//        encrypted_content} -> kThinking: the text, and the signature from
//        encrypted_content ("<origin>:<signature>", as answers write it; a
//        bare one is OpenAI's, which no provider here takes back);
//        "<origin>-redacted:<data>" -> kRedactedThinking
//       Consecutive assistant items (reasoning, messages, function calls)
//       make one assistant turn; consecutive outputs one tool message.
//       item_reference and built-in tool items are 400s.
//   tools[] {type function, name, description, parameters, strict} (other
//       types are 400s); tool_choice none|auto|required|{type function, name};
//       parallel_tool_calls
//   text.format text|json_object|json_schema {name, description, schema,
//       strict}; text.verbosity medium only (the default: other values would
//       change the answer and only OpenAI takes them)
//   reasoning.effort none|minimal|low|medium|high|xhigh; reasoning.summary
//       accepted (a thinking model's reasoning comes back as a summary item)
//   max_output_tokens; temperature, top_p, top_logprobs (with logprobs),
//       user, safety_identifier; include "message.output_text.logprobs"
//       (logprobs) and "reasoning.encrypted_content" (always written)
//   truncation: disabled only (the router does not drop input)
//   Accepted, not passed on, as they do not change the answer: service_tier,
//       prompt_cache_key, safety_identifier.
//   Any other field is a 400 naming it (background, conversation, prompt,
//       max_tool_calls...).
//
// Answers: a response object whose output has, in the answer's order, a
// reasoning item per thinking block (its text as one summary_text, the
// signature as encrypted_content written "<origin>:<signature>"; redacted
// thinking "<origin>-redacted:<data>"), a message item per text or refusal
// block (output_text / refusal) and a function_call item per tool use.
// status "incomplete" with incomplete_details.reason max_output_tokens or
// content_filter when the model stopped so. Streams send the documented
// events with a sequence_number each: response.created, response.in_progress,
// then per item output_item.added, its part/summary-part added, the deltas
// (output_text, refusal, reasoning_summary_text, function_call_arguments),
// their done events, output_item.done; then response.completed (or
// response.incomplete) carrying the whole response; a failure sends an
// `error` event and response.failed.
#include <algorithm>

#include "api/common.h"
#include "api/json_out.h"

namespace switchboard::gateway {

namespace detail {

namespace {

constexpr std::string_view kRedactedTag = "-redacted";

// ---- Requests ----

// A data: URL or an http(s) URL into `source`.
MaybeError read_url(const std::string& url, const JsonPath& path, MediaSource& source) {
  if (url.rfind("data:", 0) == 0) {
    if (!parse_data_url(url, source)) return invalid_request(path, path + " must be a base64 data: URL");
    return std::nullopt;
  }
  source.kind = MediaSource::Kind::kUrl;
  source.data = url;
  return std::nullopt;
}

// One content part of an input message or a function_call_output.
MaybeError read_part(const json& part, const JsonPath& path, const std::string& role, ContentBlock& out) {
  if (!part.is_object()) return invalid_request(path, path + " must be an object");
  std::string type;
  const JsonPath tpath = at_key(path, "type");
  if (auto e = read_string(part, "type", tpath, type)) return e;
  const bool assistant = role == "assistant";
  const bool media = type == "input_image" || type == "input_file" || type == "input_audio";
  if ((assistant && (media || type == "input_text")) ||
      (!assistant && (type == "output_text" || type == "refusal")) || (role == "system" && media)) {
    return invalid_request(tpath, tpath + " '" + type + "' is not allowed in " + role + " content");
  }
  if (type == "input_text" || type == "output_text") {
    return read_string(part, "text", at_key(path, "text"), out.text);
  }
  if (type == "refusal") {
    out.type = ContentBlock::Type::kRefusal;
    return read_string(part, "refusal", at_key(path, "refusal"), out.text);
  }
  if (type == "input_image") {
    out.type = ContentBlock::Type::kImage;
    std::string url;
    std::string file_id;
    if (auto e = read_optional_string(part, "image_url", at_key(path, "image_url"), url)) return e;
    if (auto e = read_optional_string(part, "file_id", at_key(path, "file_id"), file_id)) return e;
    if (auto e = read_optional_string(part, "detail", at_key(path, "detail"), out.detail)) return e;
    if (!out.detail.empty() && out.detail != "auto" && out.detail != "low" && out.detail != "high") {
      return invalid_request(at_key(path, "detail"),
                             at_key(path, "detail") + " must be auto, low or high (got '" + out.detail + "')");
    }
    if (!url.empty()) return read_url(url, at_key(path, "image_url"), out.source);
    if (file_id.empty()) return invalid_request(path, path + " needs image_url or file_id");
    out.source = {MediaSource::Kind::kFileId, "", std::move(file_id)};
    out.origin = "openai";
    return std::nullopt;
  }
  if (type == "input_file") {
    out.type = ContentBlock::Type::kDocument;
    std::string data;
    std::string url;
    std::string file_id;
    if (auto e = read_optional_string(part, "file_data", at_key(path, "file_data"), data)) return e;
    if (auto e = read_optional_string(part, "file_url", at_key(path, "file_url"), url)) return e;
    if (auto e = read_optional_string(part, "file_id", at_key(path, "file_id"), file_id)) return e;
    if (auto e = read_optional_string(part, "filename", at_key(path, "filename"), out.title)) return e;
    if (!data.empty()) {
      if (data.rfind("data:", 0) == 0) return read_url(data, at_key(path, "file_data"), out.source);
      out.source = {MediaSource::Kind::kBase64, "application/pdf", std::move(data)};  // bare base64: a PDF
      return std::nullopt;
    }
    if (!url.empty()) return read_url(url, at_key(path, "file_url"), out.source);
    if (file_id.empty()) return invalid_request(path, path + " needs file_data, file_url or file_id");
    out.source = {MediaSource::Kind::kFileId, "", std::move(file_id)};
    out.origin = "openai";
    return std::nullopt;
  }
  if (type == "input_audio") {
    const JsonPath apath = at_key(path, "input_audio");
    const json* audio = member(part, "input_audio");
    if (audio == nullptr || !audio->is_object()) return invalid_request(apath, apath + " must be an object");
    std::string format;
    out.type = ContentBlock::Type::kAudio;
    out.source.kind = MediaSource::Kind::kBase64;
    if (auto e = read_string(*audio, "data", at_key(apath, "data"), out.source.data)) return e;
    if (auto e = read_string(*audio, "format", at_key(apath, "format"), format)) return e;
    out.source.media_type = "audio/" + format;
    return std::nullopt;
  }
  return invalid_request(tpath, tpath + " '" + type +
                                    "' is not supported: only input_text, input_image, input_file, input_audio, "
                                    "output_text and refusal parts are");
}

// A message's or an output's content: a string or parts, appended to `out`.
MaybeError read_parts(const json& content, const JsonPath& path, const std::string& role,
                      std::vector<ContentBlock>& out) {
  if (content.is_string()) {
    if (role != "assistant" || !content.get_ref<const std::string&>().empty()) {
      out.push_back(ContentBlock::of_text(content.get<std::string>()));
    }
    return std::nullopt;
  }
  if (!content.is_array()) return invalid_request(path, path + " must be a string or an array of content parts");
  for (std::size_t i = 0; i < content.size(); ++i) {
    ContentBlock block;
    if (auto e = read_part(content[i], at_index(path, i), role, block)) return e;
    out.push_back(std::move(block));
  }
  return std::nullopt;
}

// A reasoning item's text (its summary parts, else its reasoning_text
// content) and encrypted_content, as a thinking or redacted thinking block.
MaybeError read_reasoning(const json& item, const JsonPath& path, ContentBlock& out) {
  out.type = ContentBlock::Type::kThinking;
  for (const char* key : {"summary", "content"}) {
    const json* parts = member(item, key);
    if (parts == nullptr) continue;
    const JsonPath ppath = at_key(path, key);
    if (!parts->is_array()) return invalid_request(ppath, ppath + " must be an array");
    std::string text;
    for (std::size_t i = 0; i < parts->size(); ++i) {
      const json& part = (*parts)[i];
      std::string piece;
      const JsonPath part_path = at_index(ppath, i);
      if (!part.is_object()) return invalid_request(part_path, part_path + " must be an object");
      if (auto e = read_string(part, "text", at_key(part_path, "text"), piece)) return e;
      text += (text.empty() ? "" : "\n\n") + piece;
    }
    if (out.text.empty()) out.text = std::move(text);
  }
  std::string encrypted;
  if (auto e = read_optional_string(item, "encrypted_content", at_key(path, "encrypted_content"), encrypted)) {
    return e;
  }
  read_client_signature(std::move(encrypted), "openai", out);
  if (out.origin.size() > kRedactedTag.size() && out.origin.ends_with(kRedactedTag)) {
    out.type = ContentBlock::Type::kRedactedThinking;
    out.origin.resize(out.origin.size() - kRedactedTag.size());
    out.text.clear();
  }
  return std::nullopt;
}

// Appends `block` to the last message when it has `role`, else to a new one.
void append(std::vector<Message>& messages, const std::string& role, ContentBlock block) {
  if (messages.empty() || messages.back().role != role) messages.push_back(Message::of(role, {}));
  messages.back().content.push_back(std::move(block));
}

// One input item into the conversation.
MaybeError read_item(const json& item, const JsonPath& path, std::vector<Message>& out) {
  if (!item.is_object()) return invalid_request(path, path + " must be an object");
  std::string type = "message";
  if (auto e = read_optional_string(item, "type", at_key(path, "type"), type)) return e;
  if (type == "message") {
    std::string role;
    const JsonPath rpath = at_key(path, "role");
    if (auto e = read_string(item, "role", rpath, role)) return e;
    if (role == "developer") role = "system";
    if (role != "user" && role != "system" && role != "assistant") {
      return invalid_request(rpath, rpath + " must be one of user, system, developer, assistant (got '" + role + "')");
    }
    const json* content = member(item, "content");
    if (content == nullptr) return invalid_request(at_key(path, "content"), at_key(path, "content") + " is required");
    std::vector<ContentBlock> blocks;
    if (auto e = read_parts(*content, at_key(path, "content"), role, blocks)) return e;
    // A user or system message is a turn of its own; an assistant's joins the turn.
    if (role != "assistant" || out.empty() || out.back().role != "assistant") out.push_back(Message::of(role, {}));
    for (ContentBlock& b : blocks) out.back().content.push_back(std::move(b));
    return std::nullopt;
  }
  if (type == "function_call") {
    ToolCall call;
    if (auto e = read_string(item, "call_id", at_key(path, "call_id"), call.id)) return e;
    if (auto e = read_string(item, "name", at_key(path, "name"), call.name)) return e;
    if (auto e = read_string(item, "arguments", at_key(path, "arguments"), call.arguments_json)) return e;
    SplitId id = read_tool_call_id(std::move(call.id));
    call.id = std::move(id.id);
    ContentBlock block = ContentBlock::of_tool_call(std::move(call));
    block.signature = std::move(id.signature);
    block.origin = std::move(id.origin);
    append(out, "assistant", std::move(block));
    return std::nullopt;
  }
  if (type == "function_call_output") {
    ContentBlock result;
    result.type = ContentBlock::Type::kToolResult;
    if (auto e = read_string(item, "call_id", at_key(path, "call_id"), result.tool_use_id)) return e;
    result.tool_use_id = read_tool_call_id(std::move(result.tool_use_id)).id;
    const json* output = member(item, "output");
    if (output == nullptr) return invalid_request(at_key(path, "output"), at_key(path, "output") + " is required");
    if (auto e = read_parts(*output, at_key(path, "output"), "tool", result.content)) return e;
    append(out, "tool", std::move(result));
    return std::nullopt;
  }
  if (type == "reasoning") {
    ContentBlock block;
    if (auto e = read_reasoning(item, path, block)) return e;
    append(out, "assistant", std::move(block));
    return std::nullopt;
  }
  if (type == "item_reference") {
    return invalid_request(at_key(path, "type"), at_key(path, "type") +
                                                     " 'item_reference' is not supported: send the item itself, or "
                                                     "previous_response_id");
  }
  return invalid_request(at_key(path, "type"),
                         at_key(path, "type") + " '" + type +
                             "' is not supported: only message, function_call, function_call_output and reasoning "
                             "items are");
}

MaybeError read_tool(const json& tool, const JsonPath& path, ToolSpec& out) {
  if (!tool.is_object()) return invalid_request(path, path + " must be an object");
  std::string type;
  if (auto e = read_string(tool, "type", at_key(path, "type"), type)) return e;
  if (type != "function") {
    return invalid_request(at_key(path, "type"), at_key(path, "type") + " '" + type +
                                                     "' is not supported: only function tools are (built-in tools "
                                                     "exist only on OpenAI)");
  }
  if (auto e = read_string(tool, "name", at_key(path, "name"), out.name)) return e;
  if (auto e = read_optional_string(tool, "description", at_key(path, "description"), out.description)) return e;
  if (member(tool, "strict") != nullptr) {
    bool strict = false;
    if (auto e = read_optional_bool(tool, "strict", at_key(path, "strict"), strict)) return e;
    out.strict = strict;
  }
  return read_optional_object_text(tool, "parameters", at_key(path, "parameters"), out.parameters_json);
}

MaybeError read_tool_choice(const json& choice, ToolChoice& out) {
  const std::string kError = R"(tool_choice must be none, auto, required or {"type":"function","name":...})";
  if (choice.is_string()) {
    if (!read_choice_mode(choice.get_ref<const std::string&>(), out)) return invalid_request("tool_choice", kError);
    return std::nullopt;
  }
  if (!choice.is_object()) return invalid_request("tool_choice", kError);
  std::string type;
  if (auto e = read_string(choice, "type", "tool_choice.type", type)) return e;
  if (type != "function") {
    return invalid_request("tool_choice.type", "tool_choice.type '" + type + "' is not supported: only function is");
  }
  out.mode = ToolChoice::Mode::kNamed;
  return read_string(choice, "name", "tool_choice.name", out.name);
}

MaybeError read_text_format(const json& text, ParsedRequest& r) {
  if (!text.is_object()) return invalid_request("text", "text must be an object");
  if (auto e = check_fields(text, "text", {"format", "verbosity"})) return e;
  if (const json* verbosity = member(text, "verbosity"); verbosity != nullptr && *verbosity != "medium") {
    return invalid_request("text.verbosity", "text.verbosity must be medium: only OpenAI's models take another");
  }
  const json* format = member(text, "format");
  if (format == nullptr) return std::nullopt;
  if (!format->is_object()) return invalid_request("text.format", "text.format must be an object");
  std::string type;
  if (auto e = read_string(*format, "type", "text.format.type", type)) return e;
  OutputFormat& out = r.call.request.output_format;
  if (type == "text") return std::nullopt;
  if (type == "json_object") {
    out.type = OutputFormat::Type::kJsonObject;
  } else if (type == "json_schema") {
    out.type = OutputFormat::Type::kJsonSchema;
    if (auto e = read_string(*format, "name", "text.format.name", out.name)) return e;
    if (auto e = read_optional_string(*format, "description", "text.format.description", out.description)) return e;
    if (member(*format, "schema") == nullptr) return invalid_request("text.format.schema", "text.format.schema is required");
    if (auto e = read_optional_object_text(*format, "schema", "text.format.schema", out.schema_json)) return e;
    if (auto e = read_optional_bool(*format, "strict", "text.format.strict", out.strict)) return e;
  } else {
    return invalid_request("text.format.type",
                           "text.format.type must be one of text, json_object, json_schema (got '" + type + "')");
  }
  return std::nullopt;  // the step's output_must_be_json is derived from the format
}

MaybeError read_reasoning_setting(const json& reasoning, ParsedRequest& r) {
  if (!reasoning.is_object()) return invalid_request("reasoning", "reasoning must be an object");
  if (auto e = check_fields(reasoning, "reasoning", {"effort", "summary", "generate_summary"})) return e;
  if (const json* effort = member(reasoning, "effort")) {
    const std::string kError = "reasoning.effort must be one of none, minimal, low, medium, high, xhigh";
    if (!effort->is_string()) return invalid_request("reasoning.effort", kError);
    const std::optional<Effort> parsed = parse_effort(effort->get_ref<const std::string&>());
    if (!parsed) return invalid_request("reasoning.effort", kError);
    set_effort(*parsed, r);
  }
  for (const char* key : {"summary", "generate_summary"}) {
    std::string summary;
    const JsonPath reasoning_root("reasoning");
    const JsonPath summary_path = at_key(reasoning_root, key);
    if (auto e = read_optional_string(reasoning, key, summary_path, summary)) return e;
    if (!summary.empty() && summary != "auto" && summary != "concise" && summary != "detailed") {
      return invalid_request(summary_path,
                             summary_path + " must be auto, concise or detailed (got '" + summary + "')");
    }
  }
  return std::nullopt;
}

// The fields a response object repeats, with the API's defaults: each key
// with its value's text (as to_text writes it), in key order. A value the
// request sets is written from its tree in place, never copied.
using Echo = std::vector<std::pair<std::string, std::string>>;
Echo echo_of(const json& j) {
  Echo echo;
  echo.reserve(15);
  const auto text_or = [&](const json& object, const char* key, std::string_view fallback) {
    const json* v = member(object, key);
    return v != nullptr ? to_text(*v) : std::string(fallback);
  };
  const auto add = [&](const char* key, std::string_view fallback) { echo.emplace_back(key, text_or(j, key, fallback)); };
  add("instructions", "null");
  add("max_output_tokens", "null");
  add("metadata", "{}");
  add("parallel_tool_calls", "true");
  add("previous_response_id", "null");
  const json* reasoning = member(j, "reasoning");
  if (reasoning != nullptr && !reasoning->is_object()) reasoning = nullptr;
  echo.emplace_back("reasoning", "{\"effort\":" + (reasoning ? text_or(*reasoning, "effort", "null") : "null") +
                                     ",\"summary\":" + (reasoning ? text_or(*reasoning, "summary", "null") : "null") +
                                     "}");
  add("store", "true");
  add("temperature", "1.0");
  const json* text = member(j, "text");
  if (text != nullptr && !text->is_object()) text = nullptr;
  echo.emplace_back("text", "{\"format\":" + (text ? text_or(*text, "format", R"({"type":"text"})") : R"({"type":"text"})") +
                                ",\"verbosity\":\"medium\"}");
  add("tool_choice", "\"auto\"");
  add("tools", "[]");
  add("top_logprobs", "0");
  add("top_p", "1.0");
  add("truncation", "\"disabled\"");
  add("user", "null");
  return echo;
}

MaybeError read_responses(const json& j, ParsedRequest& r, const PreviousResponses& previous) {
  if (auto e = check_fields(j, "",
                            {"model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls", "text",
                             "reasoning", "max_output_tokens", "temperature", "top_p", "top_logprobs", "user",
                             "stream", "stream_options", "metadata", "store", "previous_response_id", "include",
                             "truncation",
                             // The allow-list: these do not change the answer.
                             "service_tier", "prompt_cache_key", "safety_identifier"},
                            {{"background", "the router answers in the request"},
                             {"conversation", "use previous_response_id"},
                             {"prompt", "prompt templates live on OpenAI's servers"},
                             {"max_tool_calls", "no provider but OpenAI bounds built-in tool calls"}})) {
    return e;
  }
  ModelRequest& request = r.call.request;
  if (auto e = read_string(j, "model", "model", r.model)) return e;
  if (r.model.empty()) return invalid_request("model", "model must not be empty");
  if (auto e = read_optional_bool(j, "stream", "stream", r.stream)) return e;
  if (const json* options = member(j, "stream_options")) {
    if (!options->is_object()) return invalid_request("stream_options", "stream_options must be an object");
    if (auto e = check_fields(*options, "stream_options", {"include_obfuscation"})) return e;
  }
  r.include_usage = true;  // a Responses stream always ends with the usage
  if (auto e = read_optional_bool(j, "store", "store", r.store)) return e;
  if (const json* truncation = member(j, "truncation"); truncation != nullptr && *truncation != "disabled") {
    return invalid_request("truncation", "truncation must be disabled: the router never drops input");
  }

  // The conversation: the stored one first, then this input (read where it
  // is: a string input is one user message item).
  json stored = json::array();
  if (auto e = read_optional_string(j, "previous_response_id", "previous_response_id", r.previous_response_id)) {
    return e;
  }
  if (!r.previous_response_id.empty()) {
    std::optional<std::string> text = previous ? previous(r.previous_response_id) : std::nullopt;
    if (!text) {
      ApiError e = invalid_request("previous_response_id",
                                   "previous response '" + r.previous_response_id +
                                       "' not found: it was never stored here, was sent with store: false, or has "
                                       "expired ([gateway] stored_responses, stored_response_max_age_s)");
      e.http_status = 404;
      e.code = "previous_response_not_found";
      return e;
    }
    stored = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!stored.is_array()) return invalid_request("previous_response_id", "the stored conversation is unreadable");
  }
  const json* input = member(j, "input");
  if (input == nullptr) return invalid_request("input", "input is required");
  json one_message;  // a string input's item
  if (input->is_string()) {
    one_message = json{{"type", "message"}, {"role", "user"},
                       {"content", json::array({json{{"type", "input_text"}, {"text", *input}}})}};
  } else if (!input->is_array()) {
    return invalid_request("input", "input must be a string or an array of items");
  }
  if (stored.empty() && input->is_array() && input->empty()) return invalid_request("input", "input must not be empty");
  std::string instructions;
  if (auto e = read_optional_string(j, "instructions", "instructions", instructions)) return e;
  if (!instructions.empty()) request.messages.push_back(Message::of_text("system", instructions));
  // Stored items are named by their place in this request's conversation.
  for (std::size_t i = 0; i < stored.size(); ++i) {
    if (auto e = read_item(stored[i], "previous_response_id item " + std::to_string(i), request.messages)) return e;
  }
  if (input->is_string()) {
    if (auto e = read_item(one_message, "input", request.messages)) return e;
  } else {
    const JsonPath input_root("input");
    for (std::size_t i = 0; i < input->size(); ++i) {
      if (auto e = read_item((*input)[i], at_index(input_root, i).str(), request.messages)) return e;
    }
  }
  if (r.store) {
    // The stored items' text and the input's, joined into one array (as
    // to_text writes the array of both).
    const auto inside = [](const std::string& array_text) { return array_text.substr(1, array_text.size() - 2); };
    std::string before = stored.empty() ? std::string() : inside(to_text(stored));
    std::string now = input->is_string() ? to_text(one_message) : inside(to_text(*input));
    r.items_json = "[" + before + (before.empty() || now.empty() ? "" : ",") + now + "]";
  }

  if (auto e = read_tools(j, read_tool, request.tools)) return e;
  if (const json* choice = member(j, "tool_choice")) {
    ToolChoice tool_choice;
    if (auto e = read_tool_choice(*choice, tool_choice)) return e;
    request.tool_choice = std::move(tool_choice);
  }
  if (member(j, "parallel_tool_calls") != nullptr) {
    bool parallel = true;
    if (auto e = read_optional_bool(j, "parallel_tool_calls", "parallel_tool_calls", parallel)) return e;
    request.parallel_tool_calls = parallel;
  }
  if (const json* text = member(j, "text")) {
    if (auto e = read_text_format(*text, r)) return e;
  }
  if (const json* reasoning = member(j, "reasoning")) {
    if (auto e = read_reasoning_setting(*reasoning, r)) return e;
  }
  if (const json* max = member(j, "max_output_tokens")) {
    if (auto e = read_token_count(*max, "max_output_tokens", r.max_output_tokens)) return e;
  }
  request.max_output_tokens = r.max_output_tokens;

  Sampling& s = request.sampling;
  if (auto e = read_optional_number(j, "temperature", "temperature", 0, 2, s.temperature)) return e;
  if (auto e = read_optional_number(j, "top_p", "top_p", 0, 1, s.top_p)) return e;
  if (auto e = read_optional_integer(j, "top_logprobs", "top_logprobs", 0, 20, s.top_logprobs)) return e;
  if (auto e = read_optional_string(j, "user", "user", s.user)) return e;
  if (const json* include = member(j, "include")) {
    if (!include->is_array()) return invalid_request("include", "include must be an array");
    for (std::size_t i = 0; i < include->size(); ++i) {
      const json& what = (*include)[i];
      if (what == "message.output_text.logprobs") {
        s.logprobs = true;
      } else if (what != "reasoning.encrypted_content") {
        const JsonPath include_root("include");
        return invalid_request(at_index(include_root, i),
                               at_index(include_root, i) + " " + to_text(what) +
                                   " is not supported: only message.output_text.logprobs and "
                                   "reasoning.encrypted_content are");
      }
    }
  }
  if (s.top_logprobs && *s.top_logprobs > 0) s.logprobs = true;
  r.echo = echo_of(j);
  return std::nullopt;
}

// ---- Answers ----

void write_usage(JsonOut& out, const Usage& u) {
  const std::int64_t input = u.total_input();
  const std::int64_t output = u.output_tokens + u.reasoning_tokens;
  out.begin_object();
  out.key("input_tokens").integer(input);
  out.key("input_tokens_details").begin_object().key("cached_tokens").integer(u.cached_input_tokens).end_object();
  out.key("output_tokens").integer(output);
  out.key("output_tokens_details").begin_object().key("reasoning_tokens").integer(u.reasoning_tokens).end_object();
  out.key("total_tokens").integer(input + output);
  out.end_object();
}

// An item's id: its kind, the response, and the block's place in the answer.
std::string item_id(std::string_view prefix, const std::string& response_id, std::size_t index) {
  return std::string(prefix) + "_" + response_id + "_" + std::to_string(index);
}

// The reasoning item of a thinking or redacted thinking block.
json reasoning_item(const ContentBlock& b, const std::string& id) {
  json item = json::object();
  item["type"] = "reasoning";
  item["id"] = id;
  item["summary"] = json::array();
  if (b.type == ContentBlock::Type::kThinking && !b.text.empty()) {
    item["summary"].push_back(json{{"type", "summary_text"}, {"text", b.text}});
  }
  if (b.signature.empty()) {
    item["encrypted_content"] = nullptr;
  } else {
    const std::string origin = b.origin.empty() ? "openai" : b.origin;
    item["encrypted_content"] =
        (b.type == ContentBlock::Type::kRedactedThinking ? origin + std::string(kRedactedTag) : origin) + ":" +
        b.signature;
  }
  return item;
}

json message_item(const std::string& id, json content, const char* status) {
  return json{{"type", "message"}, {"id", id}, {"status", status}, {"role", "assistant"}, {"content", std::move(content)}};
}

json output_text(std::string text) {
  return json{{"type", "output_text"}, {"text", std::move(text)}, {"annotations", json::array()},
              {"logprobs", json::array()}};
}

json function_call_item(const std::string& id, std::string call_id, std::string name, std::string arguments,
                        const char* status) {
  return json{{"type", "function_call"}, {"id", id},       {"call_id", std::move(call_id)},
              {"name", std::move(name)}, {"arguments", std::move(arguments)}, {"status", status}};
}

// The output item of the block at `index`; null for one with no place here
// (media and opaque items of an answer).
json output_item(const ContentBlock& b, const std::string& response_id, std::size_t index, std::size_t tool_index) {
  switch (b.type) {
    case ContentBlock::Type::kThinking:
    case ContentBlock::Type::kRedactedThinking:
      return reasoning_item(b, item_id("rs", response_id, index));
    case ContentBlock::Type::kText:
      return message_item(item_id("msg", response_id, index), json::array({output_text(b.text)}), "completed");
    case ContentBlock::Type::kRefusal:
      return message_item(item_id("msg", response_id, index),
                          json::array({json{{"type", "refusal"}, {"refusal", b.text}}}), "completed");
    case ContentBlock::Type::kToolUse:
      return function_call_item(item_id("fc", response_id, index), tool_call_id(b, response_id, tool_index),
                                b.tool_call.name, b.tool_call.arguments_json.empty() ? "{}" : b.tool_call.arguments_json,
                                "completed");
    default:
      return nullptr;
  }
}

// The answer's output items. Logprobs, when the provider gave them in
// OpenAI's shape ({"content": [{token, logprob, bytes, top_logprobs}]},
// the same entries the Responses API writes), go on the first output_text.
json output_items(const ModelResponse& r, const std::string& response_id) {
  json out = json::array();
  std::size_t tools = 0;
  json logprobs = r.logprobs_json.empty() ? json() : json::parse(r.logprobs_json, nullptr, /*allow_exceptions=*/false);
  for (std::size_t i = 0; i < r.content.size(); ++i) {
    const ContentBlock& b = r.content[i];
    json item = output_item(b, response_id, i, b.type == ContentBlock::Type::kToolUse ? tools++ : 0);
    if (item.is_null()) continue;
    if (b.type == ContentBlock::Type::kText && logprobs.is_object() && logprobs.contains("content") &&
        logprobs["content"].is_array()) {
      item["content"][0]["logprobs"] = std::move(logprobs["content"]);
      logprobs = json();
    }
    out.push_back(std::move(item));
  }
  return out;
}

// An object's members written in key order: the caller's, each through
// key(), with the request's echoed ones (ParsedRequest::echo, in key order)
// merged in where they sort. No echoed key is one of the caller's.
class EchoMerge {
 public:
  EchoMerge(JsonOut& out, const Echo& echo) : out_(out), echo_(echo) {}
  // The caller's member `name` comes next: the echoed ones before it first.
  JsonOut& key(std::string_view name) {
    while (next_ < echo_.size() && echo_[next_].first < name) write_next();
    return out_.key(name);
  }
  // The echoed members left.
  void finish() {
    while (next_ < echo_.size()) write_next();
  }

 private:
  void write_next() {
    out_.key(echo_[next_].first).raw(echo_[next_].second);
    ++next_;
  }
  JsonOut& out_;
  const Echo& echo_;
  std::size_t next_ = 0;
};

// The response object's text (as to_text writes its tree): the echoed
// request, the status, `output` (the items' array text), the usage, and
// `error` for a failed one.
std::string response_text(const ParsedRequest& request, const std::string& id, std::int64_t created,
                          const std::string& model, const char* status, std::string_view output, const Usage* usage,
                          const ModelResponse* answer, const ApiError* error = nullptr) {
  std::string text;
  text.reserve(512 + output.size());
  JsonOut out(text);
  out.begin_object();
  EchoMerge o(out, request.echo);
  o.key("background").boolean(false);
  o.key("created_at").integer(created);
  if (error != nullptr) {
    o.key("error").begin_object();
    out.key("code").string(error->code.empty() ? error->type : error->code);
    out.key("message").string(error->message);
    out.end_object();
  } else {
    o.key("error").null();
  }
  o.key("id").string(id);
  const StopReason stop = answer != nullptr ? answer->stop_reason : StopReason::kEndTurn;
  if (stop == StopReason::kMaxTokens || stop == StopReason::kContentFilter) {
    o.key("incomplete_details").begin_object();
    out.key("reason").string(stop == StopReason::kMaxTokens ? "max_output_tokens" : "content_filter");
    out.end_object();
  } else {
    o.key("incomplete_details").null();
  }
  o.key("model").string(model);
  o.key("object").string("response");
  o.key("output").raw(output);
  o.key("service_tier").string("default");
  o.key("status").string(status);
  if (usage != nullptr) {
    o.key("usage");
    write_usage(out, *usage);
  } else {
    o.key("usage").null();
  }
  o.finish();
  out.end_object();
  return text;
}

// A stream's event carrying the whole response: {response, sequence_number,
// type}, as to_text writes it.
std::string response_event(std::string_view type, std::string_view response, int sequence_number) {
  std::string data;
  data.reserve(response.size() + 64);
  JsonOut out(data);
  out.begin_object();
  out.key("response").raw(response);
  out.key("sequence_number").integer(sequence_number);
  out.key("type").string(type);
  out.end_object();
  return "event: " + std::string(type) + "\ndata: " + data + "\n\n";
}

// The status an answer ends with.
const char* status_of(const ModelResponse& r) {
  return r.stop_reason == StopReason::kMaxTokens || r.stop_reason == StopReason::kContentFilter ? "incomplete"
                                                                                                : "completed";
}

std::string event(const json& data) {
  return "event: " + data["type"].get<std::string>() + "\ndata: " + to_text(data) + "\n\n";
}

// ---- The stream writer ----

class ResponsesStreamWriter final : public BlockStreamWriter {
 public:
  ResponsesStreamWriter(const ParsedRequest& request, std::string id, std::int64_t created, std::string model)
      : BlockStreamWriter(request, std::move(id), created, std::move(model)), request_(request) {}

  std::string begin() override {
    const std::string created = response_text(request_, id_, created_, model_, "in_progress", "[]", nullptr, nullptr);
    std::string out = response_event("response.created", created, next_sequence_++);
    return out + response_event("response.in_progress", created, next_sequence_++);
  }

  std::string chunk(const StreamChunk& chunk) override {
    using Kind = StreamChunk::Kind;
    if (chunk.kind != Kind::kToolCallStart && chunk.text.empty()) return "";
    if (chunk.kind == Kind::kSignature) {
      auto it = sent_.find(chunk.index);
      if (it == sent_.end()) {
        hold_signature(chunk);  // a tool call's, before its start
      } else if (it->second.kind == Kind::kThinking) {
        it->second.signature += chunk.text;  // written with the item when it is done
        it->second.origin = std::string(chunk.origin);
      }
      return "";
    }
    std::string out;
    if (sent_.count(chunk.index) == 0) out += close(nullptr);
    bool first = false;
    if (chunk.kind == Kind::kRedactedThinking || chunk.kind == Kind::kOpaque) {
      if (chunk.kind == Kind::kOpaque) return out;  // a provider's own item: no place in this shape
      Sent& s = sent(chunk.index, chunk.kind, first);
      if (!first) return out;
      ContentBlock b;
      b.type = ContentBlock::Type::kRedactedThinking;
      b.signature = std::string(chunk.text);
      b.origin = std::string(chunk.origin);
      s.stream_index = next_output_index_++;
      json item = reasoning_item(b, item_id("rs", id_, static_cast<std::size_t>(chunk.index)));
      out += emit(json{{"type", "response.output_item.added"}, {"output_index", s.stream_index}, {"item", item}});
      return out + emit(json{{"type", "response.output_item.done"}, {"output_index", s.stream_index}, {"item", item}});
    }
    Sent& s = sent(chunk.index, chunk.kind, first);
    if (first) out += open(chunk, s);
    const json base = json{{"item_id", s.item_id}, {"output_index", s.stream_index}};
    json e = base;
    switch (chunk.kind) {
      case Kind::kText:
        s.text += chunk.text;
        e["type"] = "response.output_text.delta";
        e["content_index"] = 0;
        e["delta"] = chunk.text;
        e["logprobs"] = json::array();
        return out + emit(std::move(e));
      case Kind::kRefusal:
        s.text += chunk.text;
        e["type"] = "response.refusal.delta";
        e["content_index"] = 0;
        e["delta"] = chunk.text;
        return out + emit(std::move(e));
      case Kind::kThinking:
        s.text += chunk.text;
        e["type"] = "response.reasoning_summary_text.delta";
        e["summary_index"] = 0;
        e["delta"] = chunk.text;
        return out + emit(std::move(e));
      case Kind::kToolArguments:
        s.text += chunk.text;
        e["type"] = "response.function_call_arguments.delta";
        e["delta"] = chunk.text;
        return out + emit(std::move(e));
      default:
        return out;
    }
  }

  // Closes the open item (with the answer's own signatures), writes the
  // items no chunk carried, then response.completed (or .incomplete) with
  // the whole answer.
  std::string end(const StepResult& result) override {
    const ModelResponse& r = result.response;
    std::string out = close(&r);
    std::size_t tools = 0;
    for (std::size_t i = 0; i < r.content.size(); ++i) {
      const ContentBlock& b = r.content[i];
      const std::size_t tool_index = b.type == ContentBlock::Type::kToolUse ? tools++ : 0;
      if (sent_.count(static_cast<int>(i)) != 0) continue;
      json item = output_item(b, id_, i, tool_index);
      if (item.is_null()) continue;
      const int index = next_output_index_++;
      out += emit(json{{"type", "response.output_item.added"}, {"output_index", index}, {"item", item}});
      out += emit(json{{"type", "response.output_item.done"}, {"output_index", index}, {"item", item}});
    }
    const char* status = status_of(r);
    const std::string response =
        response_text(request_, id_, created_, model_, status, to_text(output_items(r, id_)), &r.usage, &r);
    return out + response_event(std::string("response.") + status, response, next_sequence_++);
  }

  // An SSE comment: no event (and no sequence number) for the SDKs to read.
  std::string keep_alive() override { return ": keep-alive\n\n"; }

  std::string fail(const ApiError& error) override {
    std::string out = emit(json{{"type", "error"},
                                {"code", error.code.empty() ? json(nullptr) : json(error.code)},
                                {"message", error.message},
                                {"param", error.param.empty() ? json(nullptr) : json(error.param)}});
    const std::string failed = response_text(request_, id_, created_, model_, "failed", "[]", nullptr, nullptr, &error);
    return out + response_event("response.failed", failed, next_sequence_++);
  }

 private:
  // Starts the output item of the block `chunk` begins.
  std::string open(const StreamChunk& chunk, Sent& s) {
    using Kind = StreamChunk::Kind;
    const auto index = static_cast<std::size_t>(chunk.index);
    s.stream_index = next_output_index_++;
    open_ = chunk.index;
    std::string out;
    json item;
    json part;
    switch (chunk.kind) {
      case Kind::kThinking:
        s.item_id = item_id("rs", id_, index);
        item = json{{"type", "reasoning"}, {"id", s.item_id}, {"summary", json::array()}};
        out = added(s, item);  // (its own statement: the events are numbered in order)
        return out + emit(json{{"type", "response.reasoning_summary_part.added"},
                               {"item_id", s.item_id},
                               {"output_index", s.stream_index},
                               {"summary_index", 0},
                               {"part", json{{"type", "summary_text"}, {"text", ""}}}});
      case Kind::kToolCallStart:
      case Kind::kToolArguments: {
        s.item_id = item_id("fc", id_, index);
        const ToolCall call{std::string(chunk.id), std::string(chunk.name), ""};
        s.call_id = tool_call_id(call, s.signature, s.origin, id_, static_cast<std::size_t>(s.tool_index));
        s.name = call.name;
        return added(s, function_call_item(s.item_id, s.call_id, s.name, "", "in_progress"));
      }
      default: {  // text or refusal: a message of one part
        s.item_id = item_id("msg", id_, index);
        item = message_item(s.item_id, json::array(), "in_progress");
        part = chunk.kind == Kind::kRefusal ? json{{"type", "refusal"}, {"refusal", ""}} : output_text("");
        out = added(s, item);
        return out + emit(json{{"type", "response.content_part.added"},
                               {"item_id", s.item_id},
                               {"output_index", s.stream_index},
                               {"content_index", 0},
                               {"part", part}});
      }
    }
  }

  // Ends the open item: its done events, with the whole text; `answer`, at
  // the end, has the block as the provider finished it (its signature).
  std::string close(const ModelResponse* answer) {
    using Kind = StreamChunk::Kind;
    if (open_ < 0) return "";
    Sent& s = sent_[open_];
    const auto index = static_cast<std::size_t>(open_);
    const ContentBlock* final_block =
        answer != nullptr && index < answer->content.size() ? &answer->content[index] : nullptr;
    open_ = -1;
    const json base = json{{"item_id", s.item_id}, {"output_index", s.stream_index}};
    std::string out;
    json item;
    switch (s.kind) {
      case Kind::kThinking: {
        json done = base;
        done["type"] = "response.reasoning_summary_text.done";
        done["summary_index"] = 0;
        done["text"] = s.text;
        out += emit(done);
        json part_done = base;
        part_done["type"] = "response.reasoning_summary_part.done";
        part_done["summary_index"] = 0;
        part_done["part"] = json{{"type", "summary_text"}, {"text", s.text}};
        out += emit(part_done);
        ContentBlock b;
        b.type = ContentBlock::Type::kThinking;
        b.text = s.text;
        b.signature = s.signature;
        b.origin = s.origin;
        if (final_block != nullptr && final_block->type == ContentBlock::Type::kThinking) {
          b.signature = final_block->signature;
          b.origin = final_block->origin;
        }
        item = reasoning_item(b, s.item_id);
        break;
      }
      case Kind::kToolCallStart:
      case Kind::kToolArguments: {
        const std::string arguments = s.text.empty() ? "{}" : s.text;
        json done = base;
        done["type"] = "response.function_call_arguments.done";
        done["name"] = s.name;
        done["arguments"] = arguments;
        out += emit(done);
        item = function_call_item(s.item_id, s.call_id, s.name, arguments, "completed");
        break;
      }
      default: {
        const bool refusal = s.kind == Kind::kRefusal;
        json done = base;
        done["type"] = refusal ? "response.refusal.done" : "response.output_text.done";
        done["content_index"] = 0;
        done[refusal ? "refusal" : "text"] = s.text;
        if (!refusal) done["logprobs"] = json::array();
        out += emit(done);
        const json part = refusal ? json{{"type", "refusal"}, {"refusal", s.text}} : output_text(s.text);
        json part_done = base;
        part_done["type"] = "response.content_part.done";
        part_done["content_index"] = 0;
        part_done["part"] = part;
        out += emit(part_done);
        item = message_item(s.item_id, json::array({part}), "completed");
        break;
      }
    }
    return out + emit(json{{"type", "response.output_item.done"}, {"output_index", s.stream_index}, {"item", item}});
  }

  // output_item.added for the item of `s`.
  std::string added(const Sent& s, const json& item) {
    return emit(json{{"type", "response.output_item.added"}, {"output_index", s.stream_index}, {"item", item}});
  }

  // One event, numbered.
  std::string emit(json data) {
    data["sequence_number"] = next_sequence_++;
    return event(data);
  }

  const ParsedRequest& request_;
  int next_output_index_ = 0;
  int next_sequence_ = 0;
  int open_ = -1;  // the canonical index of the open item (-1: none)
};

}  // namespace

std::string responses_response(const ParsedRequest& request, const StepResult& result, const std::string& model,
                               const std::string& id, std::int64_t created) {
  const ModelResponse& r = result.response;
  return response_text(request, id, created, model, status_of(r), to_text(output_items(r, id)), &r.usage, &r);
}

std::unique_ptr<StreamWriter> make_responses_stream_writer(const ParsedRequest& request, std::string id,
                                                           std::int64_t created, std::string model) {
  return std::make_unique<ResponsesStreamWriter>(request, std::move(id), created, std::move(model));
}

}  // namespace detail

ApiResult<ParsedRequest> parse_openai_responses(std::string_view body, const Headers& headers, int max_json_depth,
                                                const PreviousResponses& previous, const Workload* workload) {
  try {
    detail::json j;
    if (auto e = detail::parse_body(body, max_json_depth,
                                    {"input", "content", "tools", "text", "reasoning", "output", "summary"}, j)) {
      return detail::failed<ParsedRequest>(std::move(*e));
    }
    ParsedRequest r;
    r.shape = ApiShape::kResponses;
    r.max_json_depth = max_json_depth;
    if (auto e = detail::read_responses(j, r, previous)) return detail::failed<ParsedRequest>(std::move(*e));
    if (auto e = detail::finish_request(detail::member(j, "metadata"), {}, headers, r, workload)) {
      return detail::failed<ParsedRequest>(std::move(*e));
    }
    return {std::move(r), {}};
  } catch (const std::exception& e) {
    return detail::failed<ParsedRequest>(
        detail::invalid_request("", std::string("the request could not be read: ") + e.what()));
  }
}

std::string stored_conversation(const ParsedRequest& request, const StepResult& result, const std::string& id) {
  detail::json items = detail::json::parse(request.items_json, nullptr, /*allow_exceptions=*/false);
  if (!items.is_array()) items = detail::json::array();
  for (detail::json& item : detail::output_items(result.response, id)) items.push_back(std::move(item));
  return detail::to_text(items);
}

}  // namespace switchboard::gateway
