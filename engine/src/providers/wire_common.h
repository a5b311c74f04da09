// Helpers the three wire formats share (openai_wire.cpp, anthropic_wire.cpp,
// gemini_wire.cpp): JSON text in and out, URL joining, and the error-body
// shape every provider uses ({"error": {"message": ...}}). nlohmann::json
// throws; these helpers do not, except where noted, and each wire file
// catches json::exception at its entry points.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cost/usage_json.h"
#include "util/ascii.h"
#include "json/dump.h"
#include "json/node.h"
#include "json/read.h"

#include "switchboard/client.h"
#include "switchboard/status.h"

namespace switchboard::wire {

using nlohmann::json;

// `endpoint` + `path`, with one slash between them however the endpoint ends.
inline std::string join_url(std::string_view endpoint, std::string_view path) {
  while (endpoint.ends_with('/')) endpoint.remove_suffix(1);
  return std::string(endpoint) + std::string(path);
}

// A response's usage, read from its parsed body (a tree or a DOM); figures
// that cannot be read are the provider's fault (upstream).
template <typename Node>
Result<Usage> usage_or_upstream(UsageFormat format, const Node& body) {
  Result<Usage> usage = usage_from_json(format, body);
  if (!usage.ok()) return Status::upstream(usage.status().message());
  return usage;
}

namespace detail {
inline void put_members(json::object_t&) {}
template <typename Value, typename... Rest>
void put_members(json::object_t& members, const char* key, Value&& value, Rest&&... rest) {
  members.emplace(key, std::forward<Value>(value));
  put_members(members, std::forward<Rest>(rest)...);
}
}  // namespace detail

// The object {key: value, ...} of alternating keys and values, built in
// place. nlohmann's initializer-list form ({{"k", v}, ...}) first builds each
// member as a two-element array and then copies it out of the list: about
// three allocations more a member, on every request body the call path builds.
template <typename... KeysAndValues>
json object_of(KeysAndValues&&... keys_and_values) {
  static_assert(sizeof...(KeysAndValues) % 2 == 0, "object_of takes a value for every key");
  json out(json::value_t::object);
  detail::put_members(out.get_ref<json::object_t&>(), std::forward<KeysAndValues>(keys_and_values)...);
  return out;
}

// JSON text. Invalid UTF-8 in a string (a caller's message, a tool result) is
// replaced with U+FFFD rather than failing the call.
inline std::string to_text(const json& value) { return dump_json(value); }

// A response body that must be a JSON object; upstream when it is not.
inline Result<json> parse_body(std::string_view body) {
  json value = read_json(body);
  if (value.is_discarded()) return Status::upstream("body is not valid JSON");
  if (!value.is_object()) return Status::upstream("body is not a JSON object");
  return value;
}

// A response body read into a ModelResponse: `read(body, response)` fills
// what only the provider's shape says (model, text, tool calls, finish
// reason) and returns a status; the usage is then read in `format`. A JSON
// exception anywhere is the provider's fault (upstream), never a throw.
// read_response reads the body's tree; read_response_in_place, for a `read`
// that takes any node (json_node.h), reads its DOM in place, and its tree
// only when simdjson refuses the text.
template <typename Node, typename Read>
Result<ModelResponse> read_parsed_response(const Node& body, UsageFormat format, Read& read) {
  ModelResponse r;
  if (Status s = read(body, r); !s.ok()) return s;
  Result<Usage> usage = usage_or_upstream(format, body);
  if (!usage.ok()) return usage.status();
  r.usage = *usage;
  return r;
}

template <typename Read>
Result<ModelResponse> read_response(std::string_view body, UsageFormat format, Read&& read) {
  try {
    Result<json> parsed = parse_body(body);
    if (!parsed.ok()) return parsed.status();
    return read_parsed_response(*parsed, format, read);
  } catch (const json::exception& e) {
    return Status::upstream(std::string("body: ") + e.what());
  }
}

template <typename Read>
Result<ModelResponse> read_response_in_place(std::string_view body, UsageFormat format, Read&& read) {
  try {
    if (std::optional<JsonDom> dom = JsonDom::parse(body)) {
      if (!json_node::is_object(dom->root())) return Status::upstream("body is not a JSON object");
      return read_parsed_response(dom->root(), format, read);
    }
  } catch (const json::exception& e) {
    return Status::upstream(std::string("body: ") + e.what());
  }
  return read_response(body, format, read);
}

// Refuses a provider whose API has no participant names (Message::name) when
// a message sets one: "cannot take the name 'NAME' on message N (...)".
inline Status refuse_message_names(const std::vector<Message>& messages, std::string_view api) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].name.empty()) continue;
    return Status::upstream("cannot take the name '" + messages[i].name.substr(0, 64) + "' on message " +
                            std::to_string(i + 1) + " (" + std::string(api) + " has no participant names)");
  }
  return Status();
}

// A JSON object given as text in a request (tool parameters, call arguments);
// "" counts as {}. invalid_argument naming `what` otherwise.
inline Result<json> parse_request_object(std::string_view text, const std::string& what) {
  if (text.empty()) return json::object();
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) return Status::invalid_argument(what + " is not a JSON object");
  return value;
}

// Same-protocol passthrough (the contract is Passthrough's, in request.h):
// for a wire that speaks `api`, the caller's fields and hints join `body` and
// its headers join `headers`; for any other, fields refuse the model
// (upstream "cannot take the field 'X' ...") and hints and headers stay
// behind. `speaks` names this wire's API in the refusal ("Gemini's
// generateContent").
inline Status add_passthrough(const Passthrough& passthrough, WireApi api, std::string_view speaks, json& body,
                              std::vector<std::pair<std::string, std::string>>& headers) {
  if (passthrough.empty()) return Status();
  if (passthrough.api == WireApi::kNone) {
    return Status::invalid_argument("passthrough fields and headers need the API they were written for");
  }
  const auto object_of = [](const std::string& text, json& out) {
    if (text.empty()) return true;
    out = json::parse(text, nullptr, /*allow_exceptions=*/false);
    return !out.is_discarded() && out.is_object();
  };
  json fields = json::object();
  json hints = json::object();
  if (!object_of(passthrough.fields_json, fields) || !object_of(passthrough.hints_json, hints)) {
    return Status::invalid_argument("the passthrough fields are not a JSON object");
  }
  if (passthrough.api != api) {
    if (fields.empty()) return Status();
    return Status::upstream("cannot take the field '" + fields.begin().key().substr(0, 64) + "' (a " +
                            std::string(to_string(passthrough.api)) +
                            " field the router does not model: it goes verbatim to a model of that API only, "
                            "and this one speaks " + std::string(speaks) + ")");
  }
  for (json* part : {&fields, &hints}) {
    for (auto& [key, value] : part->items()) {
      if (body.contains(key)) {
        return Status::upstream("cannot take the field '" + key.substr(0, 64) +
                                "' verbatim (the router writes it itself for this request)");
      }
      body[key] = std::move(value);
    }
  }
  for (const auto& [name, value] : passthrough.headers) {
    bool joined = false;
    for (auto& [own_name, own_value] : headers) {
      if (!iequals(own_name, name)) continue;
      own_value += "," + value;
      joined = true;
      break;
    }
    if (!joined) headers.emplace_back(name, value);
  }
  return Status();
}

// string_at, object_at, array_at: on a tree or a DOM alike.
using json_node::array_at;
using json_node::object_at;
using json_node::string_at;

// "message (kind)" from an error object: OpenAI {message, type}, Anthropic
// {type, message}, Gemini {message, status}; "" when it has no message or kind.
inline std::string describe_error(const json& error) {
  if (error.is_string()) return error.get<std::string>();
  std::string kind = string_at(error, "type");
  if (kind.empty()) kind = string_at(error, "status");
  if (kind.empty()) kind = string_at(error, "code");
  const std::string message = string_at(error, "message");
  if (message.empty()) return kind;
  return kind.empty() ? message : message + " (" + kind + ")";
}

// The provider's message in an error body: {"error": {...}} (also inside a
// one-element array, as Gemini sends), {"error": "text"}, or a bare
// {"message": ...} from some OpenAI-compatible servers. "" when none.
inline std::string error_message_in(std::string_view body) {
  json value = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (value.is_array() && !value.empty()) value = value[0];
  if (!value.is_object()) return "";
  auto it = value.find("error");
  if (it != value.end() && (it->is_object() || it->is_string())) return describe_error(*it);
  return string_at(value, "message").empty() ? "" : describe_error(value);
}

}  // namespace switchboard::wire
