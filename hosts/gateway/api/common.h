// What the two API shapes share (api/openai.cpp, api/anthropic.cpp): request
// errors and field paths, null-as-absent member lookup, text content, the
// step fields from metadata and headers, the input token estimate, tool-call
// ids, and the per-shape halves of the public functions that switch on the
// shape (defined in api/openai.cpp). nlohmann::json may throw; each shape file
// catches json::exception at its entry points, and nothing here lets one out
// of the gateway library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.h"

namespace switchboard::gateway::detail {

using nlohmann::json;

// The largest token count a request may name (max_tokens and the like), as
// parse_step_json bounds them.
constexpr std::int64_t kMaxTokens = 100'000'000;
// The deepest tool_depth a header or metadata may claim.
constexpr std::int64_t kMaxToolDepth = 1'000'000;

// What a parsing step returns: nullopt when it succeeded.
using MaybeError = std::optional<ApiError>;

// A 400 invalid_request_error; `param` is the offending field's path ("" = none).
inline ApiError invalid_request(std::string param, std::string message) {
  ApiError e;
  e.http_status = 400;
  e.type = "invalid_request_error";
  e.param = std::move(param);
  e.message = std::move(message);
  return e;
}

template <typename T>
ApiResult<T> failed(ApiError error) {
  ApiResult<T> r;
  r.error = std::move(error);
  return r;
}

// Field paths as the errors name them: "messages[2].content".
inline std::string at_index(std::string_view base, std::size_t i) {
  return std::string(base) + "[" + std::to_string(i) + "]";
}
inline std::string at_key(std::string_view base, std::string_view key) {
  return base.empty() ? std::string(key) : std::string(base) + "." + std::string(key);
}

// Whether `text` is well-formed UTF-8 (no overlongs, surrogates or code
// points past U+10FFFF).
inline bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= text.size()) return false;  // cut short
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// JSON text parsed with its nesting bounded (discarded when it is not JSON;
// an error only when too deep): containers deeper than
// `max_depth` (the body itself is 1) are never built, and the error names
// the field they are under: the path to them, cut after its first object
// member not in `structural` (the API's own containers, such as "messages"
// or "tools"), where free-form JSON (a schema, a tool's input) begins. The
// parse is nlohmann's iterative one with a callback, so no depth recurses,
// and a tree within the bound is safe to re-serialise (to_text recurses).
inline MaybeError parse_bounded(std::string_view body, int max_depth,
                                std::initializer_list<std::string_view> structural, json& out) {
  struct Frame {
    bool array = false;
    std::size_t next = 0;  // an array's next element index
    std::string key;       // an object's current member
  };
  std::vector<Frame> frames;  // the containers open, root first, at most max_depth
  std::optional<std::string> too_deep;
  const auto depth_limit = static_cast<std::size_t>(max_depth);
  const auto name_field = [&](std::size_t depth) {
    std::string path;
    for (std::size_t i = 0; i < depth && i < 12; ++i) {
      const Frame& f = frames[i];
      if (f.array) {
        if (path.empty()) break;  // the body is an array: no field to name
        path += "[" + std::to_string(f.next - 1) + "]";
        continue;
      }
      path += (path.empty() ? "" : ".") + f.key;
      bool known = false;
      for (std::string_view s : structural) known = known || s == f.key;
      if (!known) break;
    }
    return path;
  };
  const json::parser_callback_t bound = [&](int d, json::parse_event_t event, json& parsed) {
    const auto depth = static_cast<std::size_t>(d);
    switch (event) {
      case json::parse_event_t::key:
        if (depth >= 1 && depth <= frames.size()) frames[depth - 1].key = parsed.get<std::string>();
        return true;
      case json::parse_event_t::value:
        if (depth >= 1 && depth <= frames.size() && frames[depth - 1].array) ++frames[depth - 1].next;
        return true;
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth > depth_limit) return false;  // inside a part already cut off
        if (depth >= 1 && depth <= frames.size() && frames[depth - 1].array) ++frames[depth - 1].next;
        if (depth == depth_limit) {
          if (!too_deep) too_deep = name_field(depth);
          return false;
        }
        frames.resize(depth);
        frames.push_back(Frame{event == json::parse_event_t::array_start, 0, {}});
        return true;
      default:
        return true;
    }
  };
  out = json::parse(body, bound, /*allow_exceptions=*/false);
  if (too_deep) {
    const std::string field = too_deep->empty() ? "the request body" : *too_deep;
    return invalid_request(*too_deep, field + " nests deeper than " + std::to_string(max_depth) +
                                          " levels (max_json_depth)");
  }
  return std::nullopt;
}

// A request body: an object, nested at most `max_depth` deep (parse_bounded).
inline MaybeError parse_body(std::string_view body, int max_depth, std::initializer_list<std::string_view> structural,
                             json& out) {
  if (auto e = parse_bounded(body, max_depth, structural, out)) return e;
  if (out.is_discarded()) return invalid_request("", "the request body is not valid JSON");
  if (!out.is_object()) return invalid_request("", "the request body must be a JSON object");
  return std::nullopt;
}

// JSON text. Invalid UTF-8 (a client's message, a model's answer) becomes
// U+FFFD rather than an exception.
inline std::string to_text(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// The member `key` of `object`; nullptr when absent or null, since the SDKs
// send null for "not given".
inline const json* member(const json& object, std::string_view key) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? nullptr : &*it;
}

// A required string member; its absence and a wrong type are errors naming `path`.
inline MaybeError read_string(const json& object, std::string_view key, const std::string& path, std::string& out) {
  const json* v = member(object, key);
  if (v == nullptr) return invalid_request(path, path + " is required");
  if (!v->is_string()) return invalid_request(path, path + " must be a string");
  out = v->get<std::string>();
  return std::nullopt;
}

// An optional string member, left unchanged when absent.
inline MaybeError read_optional_string(const json& object, std::string_view key, const std::string& path,
                                       std::string& out) {
  const json* v = member(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) return invalid_request(path, path + " must be a string");
  out = v->get<std::string>();
  return std::nullopt;
}

// An optional boolean member, left unchanged when absent.
inline MaybeError read_optional_bool(const json& object, std::string_view key, const std::string& path, bool& out) {
  const json* v = member(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) return invalid_request(path, path + " must be true or false");
  out = v->get<bool>();
  return std::nullopt;
}

// A token count in [1, kMaxTokens].
inline MaybeError read_token_count(const json& value, const std::string& path, std::optional<std::int64_t>& out) {
  if (!value.is_number_integer() || (value.is_number_unsigned() && value.get<std::uint64_t>() > kMaxTokens) ||
      value.get<std::int64_t>() < 1 || value.get<std::int64_t>() > kMaxTokens) {
    return invalid_request(path, path + " must be an integer between 1 and " + std::to_string(kMaxTokens));
  }
  out = value.get<std::int64_t>();
  return std::nullopt;
}

// A JSON object member kept as text (tool parameters); unchanged when absent.
inline MaybeError read_optional_object_text(const json& object, std::string_view key, const std::string& path,
                                            std::string& out) {
  const json* v = member(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) return invalid_request(path, path + " must be a JSON object");
  out = to_text(*v);
  return std::nullopt;
}

// The text of a content value: a string, or an array of {"type":"text",
// "text":...} items (`noun` is "parts" for OpenAI, "blocks" for Anthropic),
// joined with "\n". Other item types are errors naming the type: the router
// passes text only. Items' other members (cache_control, citations) are ignored.
inline MaybeError read_text_content(const json& content, const std::string& path, std::string_view noun,
                                    std::string& out) {
  if (content.is_string()) {
    out = content.get<std::string>();
    return std::nullopt;
  }
  const std::string shape_error = path + " must be a string or an array of text " + std::string(noun);
  if (!content.is_array()) return invalid_request(path, shape_error);
  out.clear();
  for (std::size_t i = 0; i < content.size(); ++i) {
    const std::string item_path = at_index(path, i);
    const json& item = content[i];
    if (!item.is_object()) return invalid_request(item_path, shape_error);
    std::string type;
    if (auto e = read_string(item, "type", at_key(item_path, "type"), type)) return e;
    if (type != "text") {
      return invalid_request(at_key(item_path, "type"), at_key(item_path, "type") + " '" + type +
                                                            "' is not supported: only text " + std::string(noun) +
                                                            " are");
    }
    std::string text;
    if (auto e = read_string(item, "text", at_key(item_path, "text"), text)) return e;
    if (i > 0) out += '\n';
    out += text;
  }
  return std::nullopt;
}

// Case-insensitive ASCII comparison, for header names.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Sets meta `name` to `value`, replacing an earlier value: names are unique.
inline void set_meta(Step& step, std::string name, MetaValue value) {
  for (auto& [n, v] : step.meta) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  step.meta.emplace_back(std::move(name), std::move(value));
}

// "true"/"1" and "false"/"0": how a header (or an OpenAI metadata string) says a flag.
inline std::optional<bool> parse_flag(std::string_view text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return std::nullopt;
}

// Decimal digits in [0, kMaxToolDepth].
inline std::optional<std::int64_t> parse_depth(std::string_view text) {
  if (text.empty() || text.size() > 7) return std::nullopt;
  std::int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n <= kMaxToolDepth ? std::optional<std::int64_t>(n) : std::nullopt;
}

// The request's `metadata` object into the step: "role", "untrusted_input"
// (a boolean, or "true"/"false"/"1"/"0": OpenAI metadata values are strings)
// and "tool_depth" (an integer or its digits) set those fields; every other
// key, except those in `skip`, goes to step.meta with its JSON type.
inline MaybeError apply_metadata(const json& metadata, std::initializer_list<std::string_view> skip, Step& step) {
  if (!metadata.is_object()) return invalid_request("metadata", "metadata must be an object");
  for (const auto& [key, value] : metadata.items()) {
    const std::string path = at_key("metadata", key);
    bool skipped = false;
    for (std::string_view s : skip) skipped = skipped || key == s;
    if (skipped || value.is_null()) continue;
    if (key == "role") {
      if (!value.is_string() || value.get_ref<const std::string&>().empty()) {
        return invalid_request(path, path + " must be a non-empty string");
      }
      step.role = value.get<std::string>();
    } else if (key == "untrusted_input") {
      std::optional<bool> flag;
      if (value.is_boolean()) flag = value.get<bool>();
      if (value.is_string()) flag = parse_flag(value.get_ref<const std::string&>());
      if (!flag) return invalid_request(path, path + " must be true or false (or \"true\", \"false\", \"1\", \"0\")");
      step.untrusted_input = *flag;
    } else if (key == "tool_depth") {
      std::optional<std::int64_t> depth;
      if (value.is_number_unsigned() && value.get<std::uint64_t>() <= kMaxToolDepth) depth = value.get<std::int64_t>();
      if (value.is_string()) depth = parse_depth(value.get_ref<const std::string&>());
      if (!depth) {
        return invalid_request(path, path + " must be a whole number between 0 and " + std::to_string(kMaxToolDepth));
      }
      step.tool_depth = *depth;
    } else if (value.is_string()) {
      set_meta(step, key, value.get<std::string>());
    } else if (value.is_boolean()) {
      set_meta(step, key, value.get<bool>());
    } else if (value.is_number_unsigned() && value.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
      set_meta(step, key, value.get<double>());  // beyond int64: a float, not a wrapped negative
    } else if (value.is_number_integer()) {
      set_meta(step, key, value.get<std::int64_t>());
    } else if (value.is_number()) {
      set_meta(step, key, value.get<double>());
    } else {
      return invalid_request(path, path + " must be a string, number or boolean");
    }
  }
  return std::nullopt;
}

// The x-switchboard-* headers into the step, after the metadata: they win.
// x-switchboard-meta-NAME sets meta NAME (lowercased, as HTTP names are
// case-insensitive) to the header's value as a string.
inline MaybeError apply_headers(const Headers& headers, Step& step) {
  constexpr std::string_view kMetaPrefix = "x-switchboard-meta-";
  for (const auto& [name, value] : headers) {
    if (iequals(name, "x-switchboard-role")) {
      if (value.empty()) return invalid_request("", "header x-switchboard-role must not be empty");
      if (!valid_utf8(value)) return invalid_request("", "header x-switchboard-role is not valid UTF-8");
      step.role = std::string(value);
    } else if (iequals(name, "x-switchboard-untrusted-input")) {
      const std::optional<bool> flag = parse_flag(value);
      if (!flag) return invalid_request("", "header x-switchboard-untrusted-input must be true, false, 1 or 0");
      step.untrusted_input = *flag;
    } else if (iequals(name, "x-switchboard-tool-depth")) {
      const std::optional<std::int64_t> depth = parse_depth(value);
      if (!depth) {
        return invalid_request("", "header x-switchboard-tool-depth must be a whole number between 0 and " +
                                       std::to_string(kMaxToolDepth));
      }
      step.tool_depth = *depth;
    } else if (name.size() > kMetaPrefix.size() && iequals(name.substr(0, kMetaPrefix.size()), kMetaPrefix)) {
      std::string key(name.substr(kMetaPrefix.size()));
      for (char& c : key) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
      if (!valid_utf8(value)) return invalid_request("", "header " + std::string(name) + " is not valid UTF-8");
      set_meta(step, std::move(key), std::string(value));
    }
  }
  return std::nullopt;
}

// Fills in the tool messages' tool_name from the assistant call they answer,
// where the request did not give it (Anthropic never does; Gemini needs it).
inline void fill_tool_names(std::vector<Message>& messages) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    Message& m = messages[i];
    if (m.role != "tool" || !m.tool_name.empty()) continue;
    for (std::size_t j = i; j-- > 0 && m.tool_name.empty();) {
      for (const ToolCall& c : messages[j].tool_calls) {
        if (c.id == m.tool_call_id) m.tool_name = c.name;
      }
    }
  }
}

// The step's input tokens: estimate_tokens of each piece of text the model
// is sent (message contents, tool calls' names and arguments, tools' names,
// descriptions and schemas), each rounded up, so over rather than under.
inline std::int64_t estimate_input_tokens(const std::vector<Message>& messages, const std::vector<ToolSpec>& tools) {
  std::int64_t n = 0;
  for (const Message& m : messages) {
    n += estimate_tokens(m.content);
    for (const ToolCall& c : m.tool_calls) n += estimate_tokens(c.name) + estimate_tokens(c.arguments_json);
  }
  for (const ToolSpec& t : tools) {
    n += estimate_tokens(t.name) + estimate_tokens(t.description) + estimate_tokens(t.parameters_json);
  }
  return n;
}

// What both parsers do once the body is read: the step's role defaults to
// "chat", then metadata (when given) and headers, tool names, input tokens.
inline MaybeError finish_request(const json* metadata, std::initializer_list<std::string_view> skip_metadata,
                                 const Headers& headers, ParsedRequest& request) {
  Step& step = request.call.step;
  step.role = "chat";
  if (metadata != nullptr) {
    if (auto e = apply_metadata(*metadata, skip_metadata, step)) return e;
  }
  if (auto e = apply_headers(headers, step)) return e;
  fill_tool_names(request.call.messages);
  step.input_tokens = estimate_input_tokens(request.call.messages, request.call.tools);
  return std::nullopt;
}

// A tool call's id as the client sees it: the provider's, or, when it gave
// none (Gemini), "call_<response id>_<index>": unique across the turns of a
// conversation, since the client sends it back with the result.
inline std::string tool_call_id(const ToolCall& call, std::string_view response_id, std::size_t index) {
  if (!call.id.empty()) return call.id;
  return "call_" + std::string(response_id) + "_" + std::to_string(index);
}

// Each shape's half of the functions in api.h that switch on the shape
// (render_error, render_response, StreamWriter; defined in api/openai.cpp).
// `model` is the model named in the answer. The streams' functions return SSE
// bytes; the writer's state comes in as arguments.
std::string openai_error(const ApiError& error);
std::string openai_response(const StepResult& result, const std::string& model, const std::string& id,
                            std::int64_t created);
struct OpenAIStream {
  const std::string& id;
  std::int64_t created;
  const std::string& model;
  bool include_usage;
};
std::string openai_stream_begin(const OpenAIStream& stream);
std::string openai_stream_piece(const OpenAIStream& stream, std::string_view text);
std::string openai_stream_end(const OpenAIStream& stream, const StepResult& result);
std::string openai_stream_fail(const ApiError& error);

std::string anthropic_error(const ApiError& error);
// `max_json_depth`: tool arguments nested deeper are answered as their text.
std::string anthropic_response(const StepResult& result, const std::string& model, const std::string& id,
                               int max_json_depth);
// `input_tokens` is the request's estimate: message_start comes before the
// provider's count, which message_delta then carries.
std::string anthropic_stream_begin(const std::string& id, const std::string& model, std::int64_t input_tokens);
// `opens_block`: the first piece, which starts the text content block.
std::string anthropic_stream_piece(std::string_view text, bool opens_block);
// `text_block_open`: a piece was written, so the text block is open.
std::string anthropic_stream_end(const std::string& id, const StepResult& result, bool text_block_open,
                                 int max_json_depth);
std::string anthropic_stream_fail(const ApiError& error);

}  // namespace switchboard::gateway::detail
