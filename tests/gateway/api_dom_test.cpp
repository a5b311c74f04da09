// A client's body read from simdjson's DOM in place and from nlohmann's
// tree (detail::read_openai_chat, read_anthropic_messages and
// read_openai_responses; the parsers read the DOM, and the tree when
// simdjson does not take the text) gives the same request, step and errors:
// every field of a body using every field, each replaced by values of every
// JSON type or removed, and bodies with duplicate keys; for OpenAI's chat,
// Anthropic's Messages and its count_tokens, and OpenAI's Responses.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/common.h"
#include "json/read.h"
#include "switchboard/step.h"

namespace switchboard::gateway {
namespace {

using nlohmann::json;

json optional_json(const std::optional<double>& v) { return v ? json(*v) : json(); }
json optional_json(const std::optional<std::int64_t>& v) { return v ? json(*v) : json(); }
json optional_json(const std::optional<bool>& v) { return v ? json(*v) : json(); }
json cache_json(const std::optional<CacheBreakpoint>& c) { return c ? json(c->ttl) : json(); }

json block_json(const ContentBlock& b) {
  json content = json::array();
  for (const ContentBlock& c : b.content) content.push_back(block_json(c));
  return {{"type", static_cast<int>(b.type)},
          {"text", b.text},
          {"source", {static_cast<int>(b.source.kind), b.source.media_type, b.source.data}},
          {"detail", b.detail},
          {"title", b.title},
          {"call", {b.tool_call.id, b.tool_call.name, b.tool_call.arguments_json}},
          {"tool_use_id", b.tool_use_id},
          {"tool_name", b.tool_name},
          {"content", content},
          {"is_error", b.is_error},
          {"signature", b.signature},
          {"origin", b.origin},
          {"opaque", b.opaque_json},
          {"cache", cache_json(b.cache)}};
}

// Everything a parse gives, as one text: the request field by field, the
// step as the ledger writes it, or the error.
std::string describe(const ApiResult<ParsedRequest>& result) {
  if (!result.ok()) {
    const ApiError& e = result.error;
    return "error " + std::to_string(e.http_status) + " " + e.type + " [" + e.code + "] " + e.param + ": " + e.message;
  }
  const ParsedRequest& r = *result.value;
  const ModelRequest& q = r.call.request;
  json messages = json::array();
  for (const Message& m : q.messages) {
    json content = json::array();
    for (const ContentBlock& b : m.content) content.push_back(block_json(b));
    messages.push_back({{"role", m.role}, {"name", m.name}, {"content", content}});
  }
  json tools = json::array();
  for (const ToolSpec& t : q.tools) {
    tools.push_back({t.name, t.description, t.parameters_json, optional_json(t.strict), cache_json(t.cache),
                     t.opaque_json, t.origin});
  }
  const Sampling& s = q.sampling;
  const json out = {
      {"model", r.model},
      {"stream", r.stream},
      {"include_usage", r.include_usage},
      {"reasoning", r.reasoning ? json(static_cast<int>(*r.reasoning)) : json()},
      {"max_output_tokens", optional_json(r.max_output_tokens)},
      {"messages", messages},
      {"tools", tools},
      {"tool_choice", q.tool_choice ? json({static_cast<int>(q.tool_choice->mode), q.tool_choice->name}) : json()},
      {"parallel_tool_calls", optional_json(q.parallel_tool_calls)},
      {"output_format",
       {static_cast<int>(q.output_format.type), q.output_format.name, q.output_format.description,
        q.output_format.schema_json, q.output_format.strict}},
      {"sampling",
       {optional_json(s.temperature), optional_json(s.top_p), optional_json(s.top_k), s.stop, optional_json(s.seed),
        optional_json(s.presence_penalty), optional_json(s.frequency_penalty), s.logprobs,
        optional_json(s.top_logprobs), s.user}},
      {"effort", q.reasoning.effort ? json(static_cast<int>(*q.reasoning.effort)) : json()},
      {"budget_tokens", optional_json(q.reasoning.budget_tokens)},
      {"request_max_output_tokens", optional_json(q.max_output_tokens)},
      {"passthrough", {static_cast<int>(q.passthrough.api), q.passthrough.fields_json, q.passthrough.hints_json}},
      {"step", step_to_json(r.call.step)},
      {"responses", {r.store, r.previous_response_id, r.echo, r.items_json}},
  };
  return out.dump();
}

const Headers kHeaders = {{"user-agent", "OpenAI/Python 1.40.0"}, {"x-switchboard-meta-team", "core"}};

enum class Reader { kOpenAI, kAnthropic, kAnthropicCount, kResponses };

// What previous_response_id finds: one stored conversation, "resp_1".
std::optional<std::string> stored_response(const std::string& id) {
  if (id != "resp_1") return std::nullopt;
  return R"([{"content":[{"text":"Hi","type":"input_text"}],"role":"user","type":"message"},)"
         R"({"arguments":"{}","call_id":"c0","id":"fc_1","name":"f","status":"completed","type":"function_call"}])";
}

template <typename Node>
ApiResult<ParsedRequest> read(Reader reader, const Node& body) {
  if (reader == Reader::kOpenAI) return detail::read_openai_chat(body, kHeaders, kDefaultMaxJsonDepth, nullptr);
  if (reader == Reader::kResponses) {
    return detail::read_openai_responses(body, kHeaders, kDefaultMaxJsonDepth, stored_response, nullptr);
  }
  return detail::read_anthropic_messages(body, kHeaders, kDefaultMaxJsonDepth, reader == Reader::kAnthropicCount,
                                         nullptr);
}

// The body read both ways; the DOM must take it (it is JSON nested a few levels).
void check_alike(Reader reader, const std::string& body) {
  CAPTURE(body);
  const json tree = json::parse(body);
  const std::optional<JsonDom> dom = JsonDom::parse(body);
  REQUIRE(dom.has_value());
  CHECK(describe(read(reader, dom->root())) == describe(read(reader, tree)));
}
void check_alike(const std::string& body) { check_alike(Reader::kOpenAI, body); }

// A body with every field the OpenAI shape reads, each message role and content part.
const char* const kEveryField = R"({
  "model": "auto",
  "messages": [
    {"role": "system", "content": "be brief", "name": "sys"},
    {"role": "developer", "content": [{"type": "text", "text": "dev", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
    {"role": "user", "name": "u", "content": [
      {"type": "text", "text": "hi \u00e9 \ud83d\ude00 \"q\" \\ \n"},
      {"type": "image_url", "image_url": {"url": "https://example.com/y.png", "detail": "low"}},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
      {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
      {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
      {"type": "file", "file": {"file_id": "file-1"}}]},
    {"role": "assistant", "content": "", "reasoning_content": "thinking",
     "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
    {"role": "assistant", "thinking_blocks": [{"type": "thinking", "thinking": "t", "signature": "sig"},
                                              {"type": "redacted_thinking", "data": "d"}],
     "content": [{"type": "text", "text": "x"}, {"type": "refusal", "refusal": "no"}], "refusal": "nope"},
    {"role": "tool", "tool_call_id": "call_1", "name": "f", "content": [{"type": "text", "text": "result"}]},
    {"role": "tool", "tool_call_id": "call_2", "content": "plain"},
    {"role": "user", "content": "again"}],
  "tools": [{"type": "function", "cache_control": {"type": "ephemeral"},
             "function": {"name": "f", "description": "d", "strict": true,
                          "parameters": {"type": "object", "properties": {"a": {"type": "integer", "enum": [1, 2.5, -3]}}}}}],
  "tool_choice": {"type": "function", "function": {"name": "f"}},
  "parallel_tool_calls": false,
  "response_format": {"type": "json_schema",
                      "json_schema": {"name": "s", "description": "d", "schema": {"type": "object"}, "strict": true}},
  "temperature": 0.5, "top_p": 1, "stop": ["a", "b"], "seed": -7, "presence_penalty": 0.1,
  "frequency_penalty": -2, "logprobs": true, "top_logprobs": 3, "user": "u1",
  "reasoning_effort": "high", "max_completion_tokens": 100, "max_tokens": 50, "n": 1,
  "stream": true, "stream_options": {"include_usage": true},
  "metadata": {"role": "plan", "untrusted_input": "true", "tool_depth": 2, "session_id": "s1", "k": "v",
               "b": false, "i": -3, "u": 18446744073709551615, "f": 1.5},
  "modalities": ["text"], "service_tier": "auto", "store": false, "prompt_cache_key": "pk",
  "web_search_options": {"search_context_size": "low", "z": [1, {"y": null}]}, "verbosity": "low"
})";

// A Messages body with every field the Anthropic shape reads, each block kind.
const char* const kEveryAnthropicField = R"({
  "model": "claude", "max_tokens": 1024,
  "system": [{"type": "text", "text": "sys", "cache_control": {"type": "ephemeral", "ttl": "5m"}}],
  "messages": [
    {"role": "user", "content": [
      {"type": "text", "text": "hi \u00e9"},
      {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
      {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
      {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "doc"}, "title": "t",
       "citations": {"enabled": false}},
      {"type": "document", "source": {"type": "file", "file_id": "file_1"}}]},
    {"role": "assistant", "content": [
      {"type": "thinking", "thinking": "t", "signature": "sig"}, {"type": "redacted_thinking", "data": "d"},
      {"type": "text", "text": "x"}, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2.5]}},
      {"type": "server_tool_use", "id": "srv_1", "name": "web_search", "input": {"q": "x"}},
      {"type": "web_search_tool_result", "tool_use_id": "srv_1", "content": []}]},
    {"role": "user", "content": [
      {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "r"}], "is_error": true,
       "cache_control": {"type": "ephemeral"}},
      {"type": "tool_result", "tool_use_id": "toolu_2", "content": "plain"}]},
    {"role": "assistant", "content": "ok"}],
  "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object"}, "strict": true,
             "cache_control": {"type": "ephemeral"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
  "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": true},
  "temperature": 0.5, "top_p": 0.9, "top_k": 5, "stop_sequences": ["a"],
  "metadata": {"user_id": "u", "role": "plan", "k": "v", "b": true},
  "thinking": {"type": "enabled", "budget_tokens": 2048}, "stream": true, "service_tier": "auto",
  "container": "c1"
})";

// A body with every field the Responses shape reads, each item type and content part.
const char* const kEveryResponsesField = R"({
  "model": "auto",
  "instructions": "You review contracts.",
  "input": [
    {"role": "user", "content": [
      {"type": "input_text", "text": "What does this show?"},
      {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
      {"type": "input_image", "file_id": "file-1"},
      {"type": "input_file", "filename": "c.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
      {"type": "input_file", "file_url": "https://example.com/c.pdf"},
      {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]},
    {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Clause 14 first."}],
     "content": [{"type": "reasoning_text", "text": "Thinking."}], "encrypted_content": "anthropic:EqQBsig"},
    {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
     "content": [{"type": "output_text", "text": "Let me look.", "annotations": []},
                 {"type": "refusal", "refusal": "Not that."}]},
    {"type": "function_call", "id": "fc_1", "call_id": "toolu_1", "name": "lookup", "arguments": "{\"n\":14}"},
    {"type": "function_call_output", "call_id": "toolu_1", "output": "not found"},
    {"type": "function_call_output", "call_id": "toolu_1", "output": [{"type": "input_text", "text": "again"}]},
    {"role": "developer", "content": "Answer in JSON."},
    {"role": "system", "content": [{"type": "input_text", "text": "Be brief."}]}
  ],
  "tools": [{"type": "function", "name": "lookup", "description": "Finds a clause", "strict": true,
             "parameters": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}}],
  "tool_choice": {"type": "function", "name": "lookup"},
  "parallel_tool_calls": false,
  "text": {"format": {"type": "json_schema", "name": "summary", "description": "d", "strict": true,
                      "schema": {"type": "object", "properties": {"cap": {"type": "string"}}}},
           "verbosity": "medium"},
  "reasoning": {"effort": "high", "summary": "auto", "generate_summary": "concise"},
  "max_output_tokens": 2000,
  "temperature": 0.5, "top_p": 0.9, "top_logprobs": 2, "user": "u-1",
  "stream": true, "stream_options": {"include_obfuscation": false},
  "include": ["reasoning.encrypted_content", "message.output_text.logprobs"],
  "metadata": {"role": "review", "session_id": "s-1"},
  "store": true, "truncation": "disabled",
  "service_tier": "auto", "prompt_cache_key": "k", "safety_identifier": "s"
})";

// What replaces a field: a value of every JSON type, and the words and
// shapes the readers look for.
std::vector<json> replacements() {
  return {json(nullptr), json(true), json(false), json(0), json(1), json(-1), json(3), json(1.5), json(-0.5),
          json(1e300), json(std::uint64_t{18446744073709551615ULL}), json(std::int64_t{INT64_MIN}),
          json(100000001), json(""), json("x"), json("text"), json("function"), json("auto"),
          json("data:image/png;base64,AAAA"), json::array(), json::array({"text"}), json::array({1, "a"}),
          json::object(), json({{"type", "text"}}), json({{"type", "ephemeral"}, {"ttl", "2h"}})};
}

// Every path into `value`, as JSON pointers.
void paths_of(const json& value, const json::json_pointer& at, std::vector<json::json_pointer>& out) {
  out.push_back(at);
  if (value.is_object()) {
    for (const auto& [key, member] : value.items()) paths_of(member, at / key, out);
  } else if (value.is_array()) {
    for (std::size_t i = 0; i < value.size(); ++i) paths_of(value[i], at / i, out);
  }
}

TEST_CASE("the OpenAI body read from the DOM and from the tree gives the same request and step") {
  check_alike(kEveryField);
  check_alike(R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
}

// Each field of `body` replaced by each of replacements(), then removed.
std::size_t check_every_field(Reader reader, const char* text) {
  const json base = json::parse(text);
  std::vector<json::json_pointer> paths;
  paths_of(base, json::json_pointer(), paths);
  REQUIRE(paths.size() > 100);
  std::size_t variants = 0;
  for (const json::json_pointer& path : paths) {
    if (path.empty()) continue;
    for (const json& replacement : replacements()) {
      json body = base;
      body[path] = replacement;
      check_alike(reader, body.dump());
      ++variants;
    }
    // Removed.
    json body = base;
    const json::json_pointer parent = path.parent_pointer();
    if (body[parent].is_object()) {
      body[parent].erase(path.back());
    } else {
      body[parent].erase(static_cast<std::size_t>(std::stoul(path.back())));
    }
    check_alike(reader, body.dump());
    ++variants;
  }
  return variants;
}

TEST_CASE("every field of an OpenAI body replaced by a value of each type reads alike from the DOM and the tree") {
  CHECK(check_every_field(Reader::kOpenAI, kEveryField) > 2500);
}

TEST_CASE("every field of an Anthropic body replaced by a value of each type reads alike from the DOM and the tree") {
  check_alike(Reader::kAnthropic, kEveryAnthropicField);
  CHECK(check_every_field(Reader::kAnthropic, kEveryAnthropicField) > 2000);
  CHECK(check_every_field(Reader::kAnthropicCount, kEveryAnthropicField) > 2000);
}

TEST_CASE("every field of a Responses body replaced by a value of each type reads alike from the DOM and the tree") {
  check_alike(Reader::kResponses, kEveryResponsesField);
  CHECK(check_every_field(Reader::kResponses, kEveryResponsesField) > 2500);
  // A string input, a stored conversation first, one not found, and not stored.
  check_alike(Reader::kResponses, R"({"model":"m","input":"Hi \u00e9","instructions":"I"})");
  check_alike(Reader::kResponses, R"({"model":"m","previous_response_id":"resp_1","input":[
                                      {"type":"function_call_output","call_id":"c0","output":"x"}]})");
  check_alike(Reader::kResponses, R"({"model":"m","previous_response_id":"resp_1","input":[]})");
  check_alike(Reader::kResponses, R"({"model":"m","previous_response_id":"resp_9","input":"x"})");
  check_alike(Reader::kResponses, R"({"model":"m","input":[],"store":false})");
}

TEST_CASE("members are read in key order both ways: the first of several errors is the same") {
  // Two refused fields, two unknown ones, two bad metadata values, two bad
  // cache_control members: each written against key order.
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"logit_bias":{},"functions":[]})");
  check_alike(Reader::kAnthropicCount, R"({"model":"a","messages":[{"role":"user","content":"x"}],"zz":1,"aa":2})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"metadata":{"session_id":5,"role":""}})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":[{"type":"text","text":"t",
                  "cache_control":{"type":"ephemeral","zz":1,"aa":2}}]}]})");
}

TEST_CASE("objects past the readers' stack of 32 members read alike") {
  // Metadata of 100 keys written in reverse, some twice, one bad; an
  // unmodelled top level of 40 fields, one refused.
  std::string metadata;
  for (int k = 99; k >= 0; --k) {
    metadata += "\"k" + std::to_string(k % 70) + "\":" + std::to_string(k) + ",";
  }
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"metadata":{)" + metadata + R"("z":1}})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"metadata":{)" + metadata +
              R"("role":""}})");
  std::string fields;
  for (int k = 39; k >= 0; --k) fields += "\"x" + std::to_string(k) + "\":[" + std::to_string(k) + "],";
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],)" + fields + R"("n":1})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],)" + fields + R"("logit_bias":{}})");
}

TEST_CASE("duplicate keys read alike: the last of each name wins") {
  // Top level, a message, a content part, metadata, a tool's function, an
  // unmodelled field: each named twice, the later one differing.
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"model":"b"})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x","role":"assistant"}]})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":[{"type":"text","text":"1","text":"2"}]}]})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"metadata":{"k":"1","k":2,"role":"r"}})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"metadata":{"k":"1","k":null}})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"verbosity":"low","verbosity":"high"})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"functions":[],"functions":null})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],
                  "tools":[{"type":"function","function":{"name":"f","name":"g","parameters":{"a":1,"a":2}}}]})");
  check_alike(R"({"model":"a","messages":[{"role":"user","content":"x"}],"zz":1,"aa":2,"mm":{"b":1,"a":2}})");
  check_alike(Reader::kAnthropic, R"({"model":"a","max_tokens":5,"max_tokens":7,"messages":[{"role":"user",
      "content":[{"type":"tool_result","tool_use_id":"t","content":"1","content":[{"type":"text","text":"2"}]}]}],
      "metadata":{"user_id":"1","user_id":"2"},"container":"a","container":"b"})");
  check_alike(Reader::kAnthropicCount, R"({"model":"a","messages":[{"role":"user","content":"x"}],"x":1,"x":null})");
}

TEST_CASE("parse_openai_chat reads a body simdjson refuses through the tree, with the same answers") {
  // An integer past 64 bits: simdjson refuses it, nlohmann reads a double.
  const std::string big = R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"n":1)" +
                          std::string(30, '0') + "}}";
  REQUIRE_FALSE(JsonDom::parse(big).has_value());
  const ApiResult<ParsedRequest> r = parse_openai_chat(big, kHeaders);
  REQUIRE(r.ok());
  CHECK(describe(r) == describe(detail::read_openai_chat(json::parse(big), kHeaders, kDefaultMaxJsonDepth, nullptr)));
  // Nested past the bound: the tree's reader names the field.
  const ApiResult<ParsedRequest> deep = parse_openai_chat(
      R"({"model":"m","messages":[{"role":"user","content":"x"}],"metadata":{"a":[[[1]]]}})", kHeaders, 4);
  REQUIRE_FALSE(deep.ok());
  CHECK(deep.error.message.find("nests deeper than 4 levels") != std::string::npos);
  // Not an object.
  const ApiResult<ParsedRequest> array = parse_openai_chat("[1]", kHeaders);
  REQUIRE_FALSE(array.ok());
  CHECK(array.error.message == "the request body must be a JSON object");
}

}  // namespace
}  // namespace switchboard::gateway
