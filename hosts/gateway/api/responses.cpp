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
#include <array>
#include <charconv>
#include <cstring>

#include "api/common.h"
#include "api/json_out.h"

namespace switchboard::gateway {

namespace detail {

namespace {

constexpr std::string_view kRedactedTag = "-redacted";

// The items of an array's text, without its brackets ("" for none).
std::string_view array_items(std::string_view array) {
  return array.size() >= 2 && array.front() == '[' && array.back() == ']' ? array.substr(1, array.size() - 2)
                                                                          : std::string_view();
}

// Two arrays' items as one array's text.
std::string joined_arrays(std::string_view first, std::string_view second) {
  const std::string_view a = array_items(first);
  const std::string_view b = array_items(second);
  std::string out;
  out.reserve(a.size() + b.size() + 3);
  out += '[';
  out += a;
  if (!a.empty() && !b.empty()) out += ',';
  out += b;
  out += ']';
  return out;
}

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
template <typename Node>
MaybeError read_part(const Node& part, const JsonPath& path, const std::string& role, ContentBlock& out) {
  if (!jn::is_object(part)) return invalid_request(path, path + " must be an object");
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
    const auto audio = member(part, "input_audio");
    if (!audio || !jn::is_object(*audio)) return invalid_request(apath, apath + " must be an object");
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
template <typename Node>
MaybeError read_parts(const Node& content, const JsonPath& path, const std::string& role,
                      std::vector<ContentBlock>& out) {
  if (jn::is_string(content)) {
    if (role != "assistant" || !jn::string_of(content).empty()) {
      out.push_back(ContentBlock::of_text(std::string(jn::string_of(content))));
    }
    return std::nullopt;
  }
  if (!jn::is_array(content)) return invalid_request(path, path + " must be a string or an array of content parts");
  std::size_t i = 0;
  for (const auto& part : jn::items(content)) {
    ContentBlock block;
    if (auto e = read_part(part, at_index(path, i++), role, block)) return e;
    out.push_back(std::move(block));
  }
  return std::nullopt;
}

// A reasoning item's text (its summary parts, else its reasoning_text
// content) and encrypted_content, as a thinking or redacted thinking block.
template <typename Node>
MaybeError read_reasoning(const Node& item, const JsonPath& path, ContentBlock& out) {
  out.type = ContentBlock::Type::kThinking;
  for (const char* key : {"summary", "content"}) {
    const auto parts = member(item, key);
    if (!parts) continue;
    const JsonPath ppath = at_key(path, key);
    if (!jn::is_array(*parts)) return invalid_request(ppath, ppath + " must be an array");
    std::string text;
    std::size_t i = 0;
    for (const auto& part : jn::items(*parts)) {
      std::string piece;
      const JsonPath part_path = at_index(ppath, i++);
      if (!jn::is_object(part)) return invalid_request(part_path, part_path + " must be an object");
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
template <typename Node>
MaybeError read_item(const Node& item, const JsonPath& path, std::vector<Message>& out) {
  if (!jn::is_object(item)) return invalid_request(path, path + " must be an object");
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
    const auto content = member(item, "content");
    if (!content) return invalid_request(at_key(path, "content"), at_key(path, "content") + " is required");
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
    const auto output = member(item, "output");
    if (!output) return invalid_request(at_key(path, "output"), at_key(path, "output") + " is required");
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

template <typename Node>
MaybeError read_tool(const Node& tool, const JsonPath& path, ToolSpec& out) {
  if (!jn::is_object(tool)) return invalid_request(path, path + " must be an object");
  std::string type;
  if (auto e = read_string(tool, "type", at_key(path, "type"), type)) return e;
  if (type != "function") {
    return invalid_request(at_key(path, "type"), at_key(path, "type") + " '" + type +
                                                     "' is not supported: only function tools are (built-in tools "
                                                     "exist only on OpenAI)");
  }
  if (auto e = read_string(tool, "name", at_key(path, "name"), out.name)) return e;
  if (auto e = read_optional_string(tool, "description", at_key(path, "description"), out.description)) return e;
  if (member(tool, "strict")) {
    bool strict = false;
    if (auto e = read_optional_bool(tool, "strict", at_key(path, "strict"), strict)) return e;
    out.strict = strict;
  }
  return read_optional_object_text(tool, "parameters", at_key(path, "parameters"), out.parameters_json);
}

template <typename Node>
MaybeError read_tool_choice(const Node& choice, ToolChoice& out) {
  const std::string kError = R"(tool_choice must be none, auto, required or {"type":"function","name":...})";
  if (jn::is_string(choice)) {
    if (!read_choice_mode(jn::string_of(choice), out)) return invalid_request("tool_choice", kError);
    return std::nullopt;
  }
  if (!jn::is_object(choice)) return invalid_request("tool_choice", kError);
  std::string type;
  if (auto e = read_string(choice, "type", "tool_choice.type", type)) return e;
  if (type != "function") {
    return invalid_request("tool_choice.type", "tool_choice.type '" + type + "' is not supported: only function is");
  }
  out.mode = ToolChoice::Mode::kNamed;
  return read_string(choice, "name", "tool_choice.name", out.name);
}

// Whether `v` is the string `text`.
template <typename Node>
bool is_text(const Node& v, std::string_view text) {
  return jn::is_string(v) && jn::string_of(v) == text;
}

template <typename Node>
MaybeError read_text_format(const Node& text, ParsedRequest& r) {
  if (!jn::is_object(text)) return invalid_request("text", "text must be an object");
  if (auto e = check_fields(text, "text", {"format", "verbosity"})) return e;
  if (const auto verbosity = member(text, "verbosity"); verbosity && !is_text(*verbosity, "medium")) {
    return invalid_request("text.verbosity", "text.verbosity must be medium: only OpenAI's models take another");
  }
  const auto format = member(text, "format");
  if (!format) return std::nullopt;
  if (!jn::is_object(*format)) return invalid_request("text.format", "text.format must be an object");
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
    if (!member(*format, "schema")) return invalid_request("text.format.schema", "text.format.schema is required");
    if (auto e = read_optional_object_text(*format, "schema", "text.format.schema", out.schema_json)) return e;
    if (auto e = read_optional_bool(*format, "strict", "text.format.strict", out.strict)) return e;
  } else {
    return invalid_request("text.format.type",
                           "text.format.type must be one of text, json_object, json_schema (got '" + type + "')");
  }
  return std::nullopt;  // the step's output_must_be_json is derived from the format
}

template <typename Node>
MaybeError read_reasoning_setting(const Node& reasoning, ParsedRequest& r) {
  if (!jn::is_object(reasoning)) return invalid_request("reasoning", "reasoning must be an object");
  if (auto e = check_fields(reasoning, "reasoning", {"effort", "summary", "generate_summary"})) return e;
  if (const auto effort = member(reasoning, "effort")) {
    const std::string kError = "reasoning.effort must be one of none, minimal, low, medium, high, xhigh";
    if (!jn::is_string(*effort)) return invalid_request("reasoning.effort", kError);
    const std::optional<Effort> parsed = parse_effort(jn::string_of(*effort));
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
// request sets is written from where it is read, never copied first.
using Echo = std::vector<std::pair<std::string_view, std::string>>;
template <typename Node>
Echo echo_of(const Node& j) {
  Echo echo;
  echo.reserve(15);
  const auto text_or = [&](const Node& object, const char* key, std::string_view fallback) {
    const auto v = member(object, key);
    return v ? to_text(*v) : std::string(fallback);
  };
  const auto add = [&](const char* key, std::string_view fallback) { echo.emplace_back(key, text_or(j, key, fallback)); };
  add("instructions", "null");
  add("max_output_tokens", "null");
  add("metadata", "{}");
  add("parallel_tool_calls", "true");
  add("previous_response_id", "null");
  auto reasoning = member(j, "reasoning");
  if (reasoning && !jn::is_object(*reasoning)) reasoning = {};
  echo.emplace_back("reasoning", "{\"effort\":" + (reasoning ? text_or(*reasoning, "effort", "null") : "null") +
                                     ",\"summary\":" + (reasoning ? text_or(*reasoning, "summary", "null") : "null") +
                                     "}");
  add("store", "true");
  add("temperature", "1.0");
  auto text = member(j, "text");
  if (text && !jn::is_object(*text)) text = {};
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

template <typename Node>
MaybeError read_responses(const Node& j, ParsedRequest& r, const PreviousResponses& previous) {
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
  if (const auto options = member(j, "stream_options")) {
    if (!jn::is_object(*options)) return invalid_request("stream_options", "stream_options must be an object");
    if (auto e = check_fields(*options, "stream_options", {"include_obfuscation"})) return e;
  }
  r.include_usage = true;  // a Responses stream always ends with the usage
  if (auto e = read_optional_bool(j, "store", "store", r.store)) return e;
  if (const auto truncation = member(j, "truncation"); truncation && !is_text(*truncation, "disabled")) {
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
  const auto input = member(j, "input");
  if (!input) return invalid_request("input", "input is required");
  // A string is one user message of one input_text part.
  const bool one_message = jn::is_string(*input);
  if (!one_message && !jn::is_array(*input)) {
    return invalid_request("input", "input must be a string or an array of items");
  }
  if (stored.empty() && !one_message && !jn::first(*input)) return invalid_request("input", "input must not be empty");
  std::string instructions;
  if (auto e = read_optional_string(j, "instructions", "instructions", instructions)) return e;
  if (!instructions.empty()) request.messages.push_back(Message::of_text("system", instructions));
  // Stored items are named by their place in this request's conversation.
  for (std::size_t i = 0; i < stored.size(); ++i) {
    if (auto e = read_item(stored[i], "previous_response_id item " + std::to_string(i), request.messages)) return e;
  }
  if (one_message) {
    request.messages.push_back(Message::of_text("user", std::string(jn::string_of(*input))));
  } else {
    const JsonPath input_root("input");
    std::size_t i = 0;
    for (const auto& item : jn::items(*input)) {
      if (auto e = read_item(item, at_index(input_root, i++).str(), request.messages)) return e;
    }
  }
  if (r.store) {  // the stored items and the input, as to_text writes the array of both
    const auto input_items = [&] {
      if (!one_message) return to_text(*input);
      std::string item = R"([{"content":[{"text":)" + to_text(*input);
      return item + R"(,"type":"input_text"}],"role":"user","type":"message"}])";
    };
    r.items_json = joined_arrays(stored.empty() ? "" : to_text(stored), input_items());
  }

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
  if (const auto text = member(j, "text")) {
    if (auto e = read_text_format(*text, r)) return e;
  }
  if (const auto reasoning = member(j, "reasoning")) {
    if (auto e = read_reasoning_setting(*reasoning, r)) return e;
  }
  if (const auto max = member(j, "max_output_tokens")) {
    if (auto e = read_token_count(*max, "max_output_tokens", r.max_output_tokens)) return e;
  }
  request.max_output_tokens = r.max_output_tokens;

  Sampling& s = request.sampling;
  if (auto e = read_optional_number(j, "temperature", "temperature", 0, 2, s.temperature)) return e;
  if (auto e = read_optional_number(j, "top_p", "top_p", 0, 1, s.top_p)) return e;
  if (auto e = read_optional_integer(j, "top_logprobs", "top_logprobs", 0, 20, s.top_logprobs)) return e;
  if (auto e = read_optional_string(j, "user", "user", s.user)) return e;
  if (const auto include = member(j, "include")) {
    if (!jn::is_array(*include)) return invalid_request("include", "include must be an array");
    std::size_t i = 0;
    for (const auto& what : jn::items(*include)) {
      if (is_text(what, "message.output_text.logprobs")) {
        s.logprobs = true;
      } else if (!is_text(what, "reasoning.encrypted_content")) {
        const JsonPath include_root("include");
        return invalid_request(at_index(include_root, i),
                               at_index(include_root, i) + " " + to_text(what) +
                                   " is not supported: only message.output_text.logprobs and "
                                   "reasoning.encrypted_content are");
      }
      ++i;
    }
  }
  if (s.top_logprobs && *s.top_logprobs > 0) s.logprobs = true;
  r.echo = echo_of(j);
  return std::nullopt;
}

// ---- Answers ----

// An item's id: its kind, the response, and the block's place in the answer.
std::string item_id(std::string_view prefix, const std::string& response_id, std::size_t index) {
  return std::string(prefix) + "_" + response_id + "_" + std::to_string(index);
}

// What a JsonOut writes through `write`, as a string.
template <typename Write>
std::string written(Write&& write) {
  std::string text;
  JsonOut out(text);
  write(out);
  return text;
}

// ---- The answer as text, byte for byte as to_text writes its tree: every
// object's members written in key order.

// Members given as key and value text (pairs of strings or views, in key
// order) merged into an object whose own members the caller writes through
// key(). No given key is one of the caller's.
template <typename Pairs>
class MergedMembers {
 public:
  MergedMembers(JsonOut& out, const Pairs& given) : out_(out), given_(given) {}
  // The caller's member `name` comes next: the given ones before it first.
  JsonOut& key(std::string_view name) {
    while (next_ < std::size(given_) && std::string_view(given_[next_].first) < name) write_next();
    return out_.key(name);
  }
  // The given members left.
  void finish() {
    while (next_ < std::size(given_)) write_next();
  }

 private:
  void write_next() {
    out_.key(given_[next_].first).raw(given_[next_].second);
    ++next_;
  }
  JsonOut& out_;
  const Pairs& given_;
  std::size_t next_ = 0;
};

// One stream event: "event: TYPE\ndata: {...}\n\n". `write(members)` writes
// the event's own members through members.key(); its sequence_number and
// type are merged in.
template <typename Write>
std::string event_text(std::string_view type, int sequence_number, Write&& write) {
  // The two values' texts on the stack: this runs for every chunk.
  char number[16];
  const char* number_end = std::to_chars(number, number + sizeof number, sequence_number).ptr;
  char quoted[64];  // the types are plain ASCII, the longest 38 bytes
  std::string long_quoted;
  std::string_view quoted_type;
  if (type.size() + 2 <= sizeof quoted) {
    quoted[0] = '"';
    std::memcpy(quoted + 1, type.data(), type.size());
    quoted[type.size() + 1] = '"';
    quoted_type = std::string_view(quoted, type.size() + 2);
  } else {
    long_quoted = "\"" + std::string(type) + "\"";
    quoted_type = long_quoted;
  }
  const std::array<std::pair<std::string_view, std::string_view>, 2> fields = {
      {{"sequence_number", std::string_view(number, static_cast<std::size_t>(number_end - number))},
       {"type", quoted_type}}};
  std::string text = "event: ";
  text += type;
  text += "\ndata: ";
  JsonOut out(text);
  out.begin_object();
  MergedMembers members(out, fields);
  write(members);
  members.finish();
  out.end_object();
  text += "\n\n";
  return text;
}

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

// The reasoning item of a thinking or redacted thinking block.
void write_reasoning_item(JsonOut& out, const ContentBlock& b, std::string_view id) {
  out.begin_object();
  if (b.signature.empty()) {
    out.key("encrypted_content").null();
  } else {
    const std::string origin = b.origin.empty() ? "openai" : b.origin;
    out.key("encrypted_content")
        .string((b.type == ContentBlock::Type::kRedactedThinking ? origin + std::string(kRedactedTag) : origin) + ":" +
                b.signature);
  }
  out.key("id").string(id);
  out.key("summary").begin_array();
  if (b.type == ContentBlock::Type::kThinking && !b.text.empty()) {
    out.begin_object().key("text").string(b.text).key("type").string("summary_text").end_object();
  }
  out.end_array();
  out.key("type").string("reasoning");
  out.end_object();
}

// A message item whose content is `parts` (an array's text).
void write_message_item(JsonOut& out, std::string_view id, std::string_view parts, std::string_view status) {
  out.begin_object();
  out.key("content").raw(parts);
  out.key("id").string(id);
  out.key("role").string("assistant");
  out.key("status").string(status);
  out.key("type").string("message");
  out.end_object();
}

// A text block's part (`logprobs`: the array's text), or a refusal's.
void write_output_text(JsonOut& out, std::string_view text, std::string_view logprobs = "[]") {
  out.begin_object();
  out.key("annotations").begin_array().end_array();
  out.key("logprobs").raw(logprobs);
  out.key("text").string(text);
  out.key("type").string("output_text");
  out.end_object();
}
void write_refusal(JsonOut& out, std::string_view text) {
  out.begin_object().key("refusal").string(text).key("type").string("refusal").end_object();
}

void write_function_call_item(JsonOut& out, std::string_view id, std::string_view call_id, std::string_view name,
                              std::string_view arguments, std::string_view status) {
  out.begin_object();
  out.key("arguments").string(arguments);
  out.key("call_id").string(call_id);
  out.key("id").string(id);
  out.key("name").string(name);
  out.key("status").string(status);
  out.key("type").string("function_call");
  out.end_object();
}

// The output item of the block at `index` (a text's part with `logprobs`);
// false, writing nothing, for one with no place here (media and opaque items
// of an answer).
bool write_output_item(JsonOut& out, const ContentBlock& b, const std::string& response_id, std::size_t index,
                       std::size_t tool_index, std::string_view logprobs = "[]") {
  switch (b.type) {
    case ContentBlock::Type::kThinking:
    case ContentBlock::Type::kRedactedThinking:
      write_reasoning_item(out, b, item_id("rs", response_id, index));
      return true;
    case ContentBlock::Type::kText:
      write_message_item(out, item_id("msg", response_id, index),
                         written([&](JsonOut& parts) {
                           parts.begin_array();
                           write_output_text(parts, b.text, logprobs);
                           parts.end_array();
                         }),
                         "completed");
      return true;
    case ContentBlock::Type::kRefusal:
      write_message_item(out, item_id("msg", response_id, index),
                         written([&](JsonOut& parts) {
                           parts.begin_array();
                           write_refusal(parts, b.text);
                           parts.end_array();
                         }),
                         "completed");
      return true;
    case ContentBlock::Type::kToolUse:
      write_function_call_item(out, item_id("fc", response_id, index), tool_call_id(b, response_id, tool_index),
                               b.tool_call.name, b.tool_call.arguments_json.empty() ? "{}" : b.tool_call.arguments_json,
                               "completed");
      return true;
    default:
      return false;
  }
}

// The answer's output items, as an array's text. Logprobs, when the provider
// gave them in OpenAI's shape ({"content": [{token, logprob, bytes,
// top_logprobs}]}, the same entries the Responses API writes), go on the
// first output_text.
std::string output_items(const ModelResponse& r, const std::string& response_id) {
  std::string logprobs;  // the entries' text, until a text block takes them
  if (!r.logprobs_json.empty()) {
    const json parsed = json::parse(r.logprobs_json, nullptr, /*allow_exceptions=*/false);
    if (const json* content = parsed.is_object() ? member(parsed, "content") : nullptr;
        content != nullptr && content->is_array()) {
      logprobs = to_text(*content);
    }
  }
  std::string text;
  JsonOut out(text);
  out.begin_array();
  std::size_t tools = 0;
  for (std::size_t i = 0; i < r.content.size(); ++i) {
    const ContentBlock& b = r.content[i];
    const bool takes_logprobs = b.type == ContentBlock::Type::kText && !logprobs.empty();
    write_output_item(out, b, response_id, i, b.type == ContentBlock::Type::kToolUse ? tools++ : 0,
                      takes_logprobs ? std::string_view(logprobs) : "[]");
    if (takes_logprobs) logprobs.clear();
  }
  out.end_array();
  return text;
}

// The response object's text: the echoed request, the status, `output` (the
// items' array text), the usage, and `error` for a failed one.
std::string response_text(const ParsedRequest& request, const std::string& id, std::int64_t created,
                          const std::string& model, const char* status, std::string_view output, const Usage* usage,
                          const ModelResponse* answer, const ApiError* error = nullptr) {
  std::string text;
  text.reserve(512 + output.size());
  JsonOut out(text);
  out.begin_object();
  MergedMembers o(out, request.echo);
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

// The status an answer ends with.
const char* status_of(const ModelResponse& r) {
  return r.stop_reason == StopReason::kMaxTokens || r.stop_reason == StopReason::kContentFilter ? "incomplete"
                                                                                                : "completed";
}

// ---- The stream writer ----

class ResponsesStreamWriter final : public BlockStreamWriter {
 public:
  ResponsesStreamWriter(const ParsedRequest& request, std::string id, std::int64_t created, std::string model)
      : BlockStreamWriter(request, std::move(id), created, std::move(model)), request_(request) {}

  std::string begin() override {
    const std::string created = response_text(request_, id_, created_, model_, "in_progress", "[]", nullptr, nullptr);
    std::string out = response_event("response.created", created);
    return out + response_event("response.in_progress", created);
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
      const std::string item = written([&](JsonOut& o) {
        write_reasoning_item(o, b, item_id("rs", id_, static_cast<std::size_t>(chunk.index)));
      });
      out += item_event("response.output_item.added", s.stream_index, item);
      return out + item_event("response.output_item.done", s.stream_index, item);
    }
    Sent& s = sent(chunk.index, chunk.kind, first);
    if (first) out += open(chunk, s);
    switch (chunk.kind) {
      case Kind::kText:
        s.text += chunk.text;
        return out + event("response.output_text.delta", [&](auto& m) {
                 m.key("content_index").integer(0);
                 m.key("delta").string(chunk.text);
                 m.key("item_id").string(s.item_id);
                 m.key("logprobs").begin_array().end_array();
                 m.key("output_index").integer(s.stream_index);
               });
      case Kind::kRefusal:
        s.text += chunk.text;
        return out + event("response.refusal.delta", [&](auto& m) {
                 m.key("content_index").integer(0);
                 m.key("delta").string(chunk.text);
                 m.key("item_id").string(s.item_id);
                 m.key("output_index").integer(s.stream_index);
               });
      case Kind::kThinking:
        s.text += chunk.text;
        return out + event("response.reasoning_summary_text.delta", [&](auto& m) {
                 m.key("delta").string(chunk.text);
                 m.key("item_id").string(s.item_id);
                 m.key("output_index").integer(s.stream_index);
                 m.key("summary_index").integer(0);
               });
      case Kind::kToolArguments:
        s.text += chunk.text;
        return out + event("response.function_call_arguments.delta", [&](auto& m) {
                 m.key("delta").string(chunk.text);
                 m.key("item_id").string(s.item_id);
                 m.key("output_index").integer(s.stream_index);
               });
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
      std::string item;
      JsonOut item_out(item);
      if (!write_output_item(item_out, b, id_, i, tool_index)) continue;
      const int index = next_output_index_++;
      out += item_event("response.output_item.added", index, item);
      out += item_event("response.output_item.done", index, item);
    }
    const char* status = status_of(r);
    const std::string response =
        response_text(request_, id_, created_, model_, status, output_items(r, id_), &r.usage, &r);
    return out + response_event(std::string("response.") + status, response);
  }

  // An SSE comment: no event (and no sequence number) for the SDKs to read.
  std::string keep_alive() override { return ": keep-alive\n\n"; }

  std::string fail(const ApiError& error) override {
    std::string out = event("error", [&](auto& m) {
      if (error.code.empty()) {
        m.key("code").null();
      } else {
        m.key("code").string(error.code);
      }
      m.key("message").string(error.message);
      if (error.param.empty()) {
        m.key("param").null();
      } else {
        m.key("param").string(error.param);
      }
    });
    const std::string failed = response_text(request_, id_, created_, model_, "failed", "[]", nullptr, nullptr, &error);
    return out + response_event("response.failed", failed);
  }

 private:
  // Starts the output item of the block `chunk` begins.
  std::string open(const StreamChunk& chunk, Sent& s) {
    using Kind = StreamChunk::Kind;
    const auto index = static_cast<std::size_t>(chunk.index);
    s.stream_index = next_output_index_++;
    open_ = chunk.index;
    std::string out;
    switch (chunk.kind) {
      case Kind::kThinking: {
        s.item_id = item_id("rs", id_, index);
        const std::string item = written([&](JsonOut& o) {
          o.begin_object().key("id").string(s.item_id).key("summary").begin_array().end_array();
          o.key("type").string("reasoning").end_object();
        });
        out = added(s, item);  // (its own statement: the events are numbered in order)
        return out + event("response.reasoning_summary_part.added", [&](auto& m) {
                 m.key("item_id").string(s.item_id);
                 m.key("output_index").integer(s.stream_index);
                 m.key("part").begin_object().key("text").string("").key("type").string("summary_text").end_object();
                 m.key("summary_index").integer(0);
               });
      }
      case Kind::kToolCallStart:
      case Kind::kToolArguments: {
        s.item_id = item_id("fc", id_, index);
        const ToolCall call{std::string(chunk.id), std::string(chunk.name), ""};
        s.call_id = tool_call_id(call, s.signature, s.origin, id_, static_cast<std::size_t>(s.tool_index));
        s.name = call.name;
        return added(s, written([&](JsonOut& o) {
                       write_function_call_item(o, s.item_id, s.call_id, s.name, "", "in_progress");
                     }));
      }
      default: {  // text or refusal: a message of one part
        s.item_id = item_id("msg", id_, index);
        const bool refusal = chunk.kind == Kind::kRefusal;
        out = added(s, written([&](JsonOut& o) { write_message_item(o, s.item_id, "[]", "in_progress"); }));
        return out + event("response.content_part.added", [&](auto& m) {
                 m.key("content_index").integer(0);
                 m.key("item_id").string(s.item_id);
                 m.key("output_index").integer(s.stream_index);
                 JsonOut& part = m.key("part");
                 refusal ? write_refusal(part, "") : write_output_text(part, "");
               });
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
    std::string out;
    std::string item;
    switch (s.kind) {
      case Kind::kThinking: {
        out += event("response.reasoning_summary_text.done", [&](auto& m) {
          m.key("item_id").string(s.item_id);
          m.key("output_index").integer(s.stream_index);
          m.key("summary_index").integer(0);
          m.key("text").string(s.text);
        });
        out += event("response.reasoning_summary_part.done", [&](auto& m) {
          m.key("item_id").string(s.item_id);
          m.key("output_index").integer(s.stream_index);
          m.key("part").begin_object().key("text").string(s.text).key("type").string("summary_text").end_object();
          m.key("summary_index").integer(0);
        });
        ContentBlock b;
        b.type = ContentBlock::Type::kThinking;
        b.text = s.text;
        b.signature = s.signature;
        b.origin = s.origin;
        if (final_block != nullptr && final_block->type == ContentBlock::Type::kThinking) {
          b.signature = final_block->signature;
          b.origin = final_block->origin;
        }
        item = written([&](JsonOut& o) { write_reasoning_item(o, b, s.item_id); });
        break;
      }
      case Kind::kToolCallStart:
      case Kind::kToolArguments: {
        const std::string arguments = s.text.empty() ? "{}" : s.text;
        out += event("response.function_call_arguments.done", [&](auto& m) {
          m.key("arguments").string(arguments);
          m.key("item_id").string(s.item_id);
          m.key("name").string(s.name);
          m.key("output_index").integer(s.stream_index);
        });
        item = written(
            [&](JsonOut& o) { write_function_call_item(o, s.item_id, s.call_id, s.name, arguments, "completed"); });
        break;
      }
      default: {
        const bool refusal = s.kind == Kind::kRefusal;
        out += event(refusal ? "response.refusal.done" : "response.output_text.done", [&](auto& m) {
          m.key("content_index").integer(0);
          m.key("item_id").string(s.item_id);
          if (!refusal) m.key("logprobs").begin_array().end_array();
          m.key("output_index").integer(s.stream_index);
          m.key(refusal ? "refusal" : "text").string(s.text);
        });
        const std::string part =
            written([&](JsonOut& o) { refusal ? write_refusal(o, s.text) : write_output_text(o, s.text); });
        out += event("response.content_part.done", [&](auto& m) {
          m.key("content_index").integer(0);
          m.key("item_id").string(s.item_id);
          m.key("output_index").integer(s.stream_index);
          m.key("part").raw(part);
        });
        item = written([&](JsonOut& o) { write_message_item(o, s.item_id, "[" + part + "]", "completed"); });
        break;
      }
    }
    return out + item_event("response.output_item.done", s.stream_index, item);
  }

  // One event, numbered (event_text).
  template <typename Write>
  std::string event(std::string_view type, Write&& write) {
    return event_text(type, next_sequence_++, write);
  }
  // An event carrying an item (its text) or the whole response (its text).
  std::string item_event(std::string_view type, int output_index, std::string_view item) {
    return event(type, [&](auto& m) {
      m.key("item").raw(item);
      m.key("output_index").integer(output_index);
    });
  }
  std::string response_event(std::string_view type, std::string_view response) {
    return event(type, [&](auto& m) { m.key("response").raw(response); });
  }
  // output_item.added for the item of `s`.
  std::string added(const Sent& s, std::string_view item) {
    return item_event("response.output_item.added", s.stream_index, item);
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
  return response_text(request, id, created, model, status_of(r), output_items(r, id), &r.usage, &r);
}

namespace {

template <typename Node>
ApiResult<ParsedRequest> read_responses_body(const Node& body, const Headers& headers, int max_json_depth,
                                             const PreviousResponses& previous, const Workload* workload) {
  ParsedRequest r;
  r.shape = ApiShape::kResponses;
  r.max_json_depth = max_json_depth;
  if (auto e = read_responses(body, r, previous)) return failed<ParsedRequest>(std::move(*e));
  if (auto e = finish_request(member(body, "metadata"), {}, headers, r, workload)) {
    return failed<ParsedRequest>(std::move(*e));
  }
  return {std::move(r), {}};
}

}  // namespace

ApiResult<ParsedRequest> read_openai_responses(jn::Element body, const Headers& headers, int max_json_depth,
                                               const PreviousResponses& previous, const Workload* workload) {
  return read_responses_body(body, headers, max_json_depth, previous, workload);
}

ApiResult<ParsedRequest> read_openai_responses(const json& body, const Headers& headers, int max_json_depth,
                                               const PreviousResponses& previous, const Workload* workload) {
  return read_responses_body(body, headers, max_json_depth, previous, workload);
}

std::unique_ptr<StreamWriter> make_responses_stream_writer(const ParsedRequest& request, std::string id,
                                                           std::int64_t created, std::string model) {
  return std::make_unique<ResponsesStreamWriter>(request, std::move(id), created, std::move(model));
}

}  // namespace detail

ApiResult<ParsedRequest> parse_openai_responses(std::string_view body, const Headers& headers, int max_json_depth,
                                                const PreviousResponses& previous, const Workload* workload) {
  try {
    // Read in place when simdjson takes the body within the bound; nlohmann's
    // tree and verdicts otherwise (as the other shapes).
    if (const std::optional<JsonDom> dom = detail::read_body_dom(body, max_json_depth)) {
      return detail::read_openai_responses(dom->root(), headers, max_json_depth, previous, workload);
    }
    detail::json j;
    if (auto e = detail::parse_body(body, max_json_depth,
                                    {"input", "content", "tools", "text", "reasoning", "output", "summary"}, j)) {
      return detail::failed<ParsedRequest>(std::move(*e));
    }
    return detail::read_openai_responses(j, headers, max_json_depth, previous, workload);
  } catch (const std::exception& e) {
    return detail::failed<ParsedRequest>(
        detail::invalid_request("", std::string("the request could not be read: ") + e.what()));
  }
}

std::string stored_conversation(const ParsedRequest& request, const StepResult& result, const std::string& id) {
  return detail::joined_arrays(request.items_json, detail::output_items(result.response, id));
}

}  // namespace switchboard::gateway
