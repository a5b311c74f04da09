// The Responses API shape (api/responses.cpp): requests as the openai SDK and
// the Vercel AI SDK send them, parsed into the canonical request; whole
// answers and streams, read back as the SDK's accumulator reads them; the
// stored conversation a previous_response_id continues.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/common.h"
#include "providers/sse.h"

using namespace switchboard;
using namespace switchboard::gateway;
using nlohmann::json;
using Type = ContentBlock::Type;

namespace {

const Headers kNoHeaders;

ApiResult<ParsedRequest> parse(const std::string& body, const PreviousResponses& previous = {}) {
  return parse_openai_responses(body, kNoHeaders, kDefaultMaxJsonDepth, previous);
}

ParsedRequest parse_ok(const std::string& body, const PreviousResponses& previous = {}) {
  ApiResult<ParsedRequest> r = parse(body, previous);
  REQUIRE_MESSAGE(r.ok(), r.error.message);
  return *r.value;
}

ContentBlock thinking(std::string text, std::string signature, std::string origin) {
  ContentBlock b;
  b.type = Type::kThinking;
  b.text = std::move(text);
  b.signature = std::move(signature);
  b.origin = std::move(origin);
  return b;
}

StepResult answer_of(std::vector<ContentBlock> content, StopReason stop = StopReason::kEndTurn) {
  StepResult r;
  r.response.content = std::move(content);
  r.response.stop_reason = stop;
  r.response.usage.input_tokens = 100;
  r.response.usage.cached_input_tokens = 20;
  r.response.usage.output_tokens = 30;
  r.response.usage.reasoning_tokens = 10;
  r.model = "claude-rt";
  return r;
}

// The response object as a tree, the way the writer built it before it wrote
// text (the oracle): the request's echoed fields with the API's defaults, then
// the answer's; `output` is taken as written.
json tree_response(const json& body, const std::string& id, std::int64_t created, const std::string& model,
                   const std::string& status, const json& output, const Usage* usage, StopReason stop,
                   const ApiError* error = nullptr) {
  const auto or_default = [](const json& j, const char* key, json fallback) {
    const json* v = detail::member(j, key);
    return v != nullptr ? *v : fallback;
  };
  json o = json::object();
  o["instructions"] = or_default(body, "instructions", nullptr);
  o["max_output_tokens"] = or_default(body, "max_output_tokens", nullptr);
  o["metadata"] = or_default(body, "metadata", json::object());
  o["parallel_tool_calls"] = or_default(body, "parallel_tool_calls", true);
  o["previous_response_id"] = or_default(body, "previous_response_id", nullptr);
  json reasoning = json{{"effort", nullptr}, {"summary", nullptr}};
  if (const json* r = detail::member(body, "reasoning"); r != nullptr && r->is_object()) {
    if (const json* effort = detail::member(*r, "effort")) reasoning["effort"] = *effort;
    if (const json* summary = detail::member(*r, "summary")) reasoning["summary"] = *summary;
  }
  o["reasoning"] = reasoning;
  o["store"] = or_default(body, "store", true);
  o["temperature"] = or_default(body, "temperature", 1.0);
  json text = json{{"format", json{{"type", "text"}}}, {"verbosity", "medium"}};
  if (const json* t = detail::member(body, "text"); t != nullptr && t->is_object()) {
    if (const json* format = detail::member(*t, "format")) text["format"] = *format;
  }
  o["text"] = text;
  o["tool_choice"] = or_default(body, "tool_choice", "auto");
  o["tools"] = or_default(body, "tools", json::array());
  o["top_logprobs"] = or_default(body, "top_logprobs", 0);
  o["top_p"] = or_default(body, "top_p", 1.0);
  o["truncation"] = or_default(body, "truncation", "disabled");
  o["user"] = or_default(body, "user", nullptr);
  o["id"] = id;
  o["object"] = "response";
  o["created_at"] = created;
  o["status"] = status;
  o["background"] = false;
  o["error"] = error == nullptr ? json(nullptr)
                                : json{{"code", error->code.empty() ? error->type : error->code},
                                       {"message", error->message}};
  o["incomplete_details"] = stop == StopReason::kMaxTokens       ? json{{"reason", "max_output_tokens"}}
                            : stop == StopReason::kContentFilter ? json{{"reason", "content_filter"}}
                                                                 : json(nullptr);
  o["model"] = model;
  o["output"] = output;
  o["service_tier"] = "default";
  o["usage"] = nullptr;
  if (usage != nullptr) {
    const std::int64_t in = usage->total_input();
    const std::int64_t out = usage->output_tokens + usage->reasoning_tokens;
    o["usage"] = json{{"input_tokens", in},
                      {"input_tokens_details", {{"cached_tokens", usage->cached_input_tokens}}},
                      {"output_tokens", out},
                      {"output_tokens_details", {{"reasoning_tokens", usage->reasoning_tokens}}},
                      {"total_tokens", in + out}};
  }
  return o;
}

std::vector<SseEvent> events_of(const std::string& bytes) {
  std::vector<SseEvent> out;
  SseParser parser;
  parser.feed(bytes, [&](const SseEvent& e) {
    out.push_back(e);
    return true;
  });
  return out;
}

}  // namespace

TEST_SUITE("gateway_responses_api") {

TEST_CASE("a Responses request parses into the canonical request: input items, tools, format, reasoning, sampling") {
  const ParsedRequest r = parse_ok(R"({
    "model": "auto",
    "instructions": "You review contracts.",
    "input": [
      {"role": "user", "content": [
        {"type": "input_text", "text": "What does this show?"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"},
        {"type": "input_file", "filename": "c.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}]},
      {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Clause 14 first."}],
       "encrypted_content": "anthropic:EqQBsig"},
      {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
       "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}]},
      {"type": "function_call", "id": "fc_1", "call_id": "toolu_1", "name": "lookup", "arguments": "{\"n\":14}"},
      {"type": "function_call_output", "call_id": "toolu_1", "output": "not found"},
      {"role": "developer", "content": "Answer in JSON."}
    ],
    "tools": [{"type": "function", "name": "lookup", "description": "Finds a clause", "strict": true,
               "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}}}],
    "tool_choice": {"type": "function", "name": "lookup"},
    "parallel_tool_calls": false,
    "text": {"format": {"type": "json_schema", "name": "summary", "strict": true,
                        "schema": {"type": "object", "properties": {"cap": {"type": "string"}}}}},
    "reasoning": {"effort": "high", "summary": "auto"},
    "max_output_tokens": 2000,
    "temperature": 0.5, "top_p": 0.9, "top_logprobs": 2, "user": "u-1",
    "include": ["reasoning.encrypted_content"],
    "metadata": {"role": "review"},
    "store": false
  })");
  CHECK(r.shape == ApiShape::kResponses);
  CHECK_FALSE(r.store);
  const ModelRequest& q = r.call.request;
  REQUIRE(q.messages.size() == 5);
  CHECK(q.messages[0].role == "system");
  CHECK(q.messages[0].text() == "You review contracts.");
  REQUIRE(q.messages[1].content.size() == 3);
  CHECK(q.messages[1].content[1].type == Type::kImage);
  CHECK(q.messages[1].content[1].source.media_type == "image/png");
  CHECK(q.messages[1].content[1].detail == "high");
  CHECK(q.messages[1].content[2].type == Type::kDocument);
  CHECK(q.messages[1].content[2].title == "c.pdf");
  // reasoning, text and the call make one assistant turn, in order.
  const Message& assistant = q.messages[2];
  CHECK(assistant.role == "assistant");
  REQUIRE(assistant.content.size() == 3);
  CHECK(assistant.content[0].type == Type::kThinking);
  CHECK(assistant.content[0].text == "Clause 14 first.");
  CHECK(assistant.content[0].signature == "EqQBsig");
  CHECK(assistant.content[0].origin == "anthropic");
  CHECK(assistant.content[1].text == "Let me look.");
  CHECK(assistant.content[2].tool_call.id == "toolu_1");
  CHECK(assistant.content[2].tool_call.arguments_json == "{\"n\":14}");
  CHECK(q.messages[3].role == "tool");
  CHECK(q.messages[3].content.at(0).tool_use_id == "toolu_1");
  CHECK(q.messages[3].content.at(0).tool_name == "lookup");
  CHECK(q.messages[4].role == "system");
  REQUIRE(q.tools.size() == 1);
  CHECK(q.tools[0].strict == true);
  CHECK(q.tool_choice->mode == ToolChoice::Mode::kNamed);
  CHECK(q.parallel_tool_calls == false);
  CHECK(q.output_format.type == OutputFormat::Type::kJsonSchema);
  CHECK(q.output_format.strict);
  CHECK(r.call.step.output_must_be_json);
  CHECK(q.reasoning.effort == Effort::kHigh);
  CHECK(r.reasoning == Reasoning::kHigh);
  CHECK(q.max_output_tokens == 2000);
  CHECK(q.sampling.temperature == 0.5);
  CHECK(q.sampling.top_p == 0.9);
  CHECK(q.sampling.logprobs);
  CHECK(q.sampling.top_logprobs == 2);
  CHECK(q.sampling.user == "u-1");
  CHECK(r.call.step.role == "review");
  // Nothing to store (store: false), so no conversation is written.
  CHECK(r.items_json.empty());
}

TEST_CASE("a stored Responses request keeps its conversation: the stored items, then the input as given") {
  const std::string input =
      R"([{"role":"user","content":[{"type":"input_text","text":"What?"}]},)"
      R"({"type":"function_call","call_id":"c1","name":"lookup","arguments":"{}"},)"
      R"({"type":"function_call_output","call_id":"c1","output":"x\u0001y"}])";
  const ParsedRequest fresh = parse_ok(R"({"model":"auto","input":)" + input + "}");
  CHECK(fresh.store);
  CHECK(fresh.items_json == detail::to_text(json::parse(input)));

  const ParsedRequest one = parse_ok(R"({"model":"auto","input":"Hi \"there\""})");
  CHECK(one.items_json ==
        R"([{"content":[{"text":"Hi \"there\"","type":"input_text"}],"role":"user","type":"message"}])");

  const PreviousResponses previous = [&](const std::string&) -> std::optional<std::string> {
    return "\n " + fresh.items_json + " \n";  // whitespace around it: the items are written anew
  };
  const ParsedRequest next = parse_ok(R"({"model":"auto","previous_response_id":"r1","input":"And?"})", previous);
  json whole = json::parse(fresh.items_json);
  whole.push_back(json::parse(R"({"content":[{"text":"And?","type":"input_text"}],"role":"user","type":"message"})"));
  CHECK(next.items_json == detail::to_text(whole));
}

TEST_CASE("previous_response_id puts the stored conversation first, and an unknown one is a 404") {
  std::map<std::string, std::string> store = {
      {"resp_1", R"([{"role":"user","content":"Hi"},
                   {"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hello."}]}])"}};
  const PreviousResponses previous = [&](const std::string& id) -> std::optional<std::string> {
    auto it = store.find(id);
    if (it == store.end()) return std::nullopt;
    return it->second;
  };
  const ParsedRequest r =
      parse_ok(R"({"model":"auto","previous_response_id":"resp_1","instructions":"Be brief.","input":"And?"})",
               previous);
  REQUIRE(r.call.request.messages.size() == 4);
  CHECK(r.call.request.messages[0].role == "system");  // this request's instructions lead
  CHECK(r.call.request.messages[1].text() == "Hi");
  CHECK(r.call.request.messages[2].text() == "Hello.");
  CHECK(r.call.request.messages[3].text() == "And?");
  CHECK(json::parse(r.items_json).size() == 3);

  const ApiResult<ParsedRequest> missing =
      parse(R"({"model":"auto","previous_response_id":"resp_gone","input":"And?"})", previous);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error.http_status == 404);
  CHECK(missing.error.param == "previous_response_id");
  CHECK(missing.error.message.find("resp_gone") != std::string::npos);
}

TEST_CASE("malformed Responses requests are 400s naming the field") {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"model":"auto"})", "input"},
      {R"({"model":"auto","input":42})", "input"},
      {R"({"model":"auto","input":[{"type":"item_reference","id":"x"}]})", "input[0].type"},
      {R"({"model":"auto","input":[{"type":"computer_call"}]})", "input[0].type"},
      {R"({"model":"auto","input":[{"role":"critic","content":"x"}]})", "input[0].role"},
      {R"({"model":"auto","input":[{"role":"user","content":[{"type":"output_text","text":"x"}]}]})",
       "input[0].content[0].type"},
      {R"({"model":"auto","input":"x","tools":[{"type":"file_search"}]})", "tools[0].type"},
      {R"({"model":"auto","input":"x","text":{"format":{"type":"yaml"}}})", "text.format.type"},
      {R"({"model":"auto","input":"x","text":{"verbosity":"low"}})", "text.verbosity"},
      {R"({"model":"auto","input":"x","reasoning":{"effort":"max"}})", "reasoning.effort"},
      {R"({"model":"auto","input":"x","truncation":"auto"})", "truncation"},
      {R"({"model":"auto","input":"x","include":["file_search_call.results"]})", "include[0]"},
      {R"({"model":"auto","input":"x","conversation":"conv_1"})", "conversation"},
      {R"({"model":"auto","input":"x","frobnicate":1})", "frobnicate"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    const ApiResult<ParsedRequest> r = parse(c.body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error.http_status == 400);
    CHECK(r.error.param == c.param);
  }
}

TEST_CASE("a whole Responses answer has reasoning, message and function_call items and the usage") {
  const ParsedRequest request =
      parse_ok(R"({"model":"auto","input":"x","instructions":"Be brief.","tools":[{"type":"function","name":"f"}]})");
  ContentBlock call = ContentBlock::of_tool_call({"toolu_9", "f", R"({"a":1})"});
  const StepResult result = answer_of({thinking("Hmm.", "sig9", "anthropic"), ContentBlock::of_text("Calling."), call},
                                      StopReason::kToolUse);
  const json r = json::parse(render_response(request, result, "resp_x", 1700000000));
  CHECK(r.at("id") == "resp_x");
  CHECK(r.at("object") == "response");
  CHECK(r.at("created_at") == 1700000000);
  CHECK(r.at("status") == "completed");
  CHECK(r.at("model") == "claude-rt");
  CHECK(r.at("instructions") == "Be brief.");
  CHECK(r.at("tools").size() == 1);
  const json& out = r.at("output");
  REQUIRE(out.size() == 3);
  CHECK(out[0] == json::parse(R"({"type":"reasoning","id":"rs_resp_x_0",
      "summary":[{"type":"summary_text","text":"Hmm."}],"encrypted_content":"anthropic:sig9"})"));
  CHECK(out[1].at("type") == "message");
  CHECK(out[1].at("content").at(0).at("text") == "Calling.");
  CHECK(out[2] == json::parse(R"({"type":"function_call","id":"fc_resp_x_2","call_id":"toolu_9","name":"f",
      "arguments":"{\"a\":1}","status":"completed"})"));
  CHECK(r.at("usage") == json::parse(R"({"input_tokens":120,"input_tokens_details":{"cached_tokens":20},
      "output_tokens":40,"output_tokens_details":{"reasoning_tokens":10},"total_tokens":160})"));

  // A cut answer is incomplete, saying why.
  const json cut = json::parse(render_response(request, answer_of({ContentBlock::of_text("Half")}, StopReason::kMaxTokens),
                                               "resp_y", 1));
  CHECK(cut.at("status") == "incomplete");
  CHECK(cut.at("incomplete_details").at("reason") == "max_output_tokens");

  // What is stored continues the conversation: the answer's items read back as input.
  const std::string stored = stored_conversation(request, result, "resp_x");
  const ParsedRequest next = parse_ok(R"({"model":"auto","previous_response_id":"resp_x","input":"go on"})",
                                      [&](const std::string&) { return std::optional<std::string>(stored); });
  const std::vector<Message>& m = next.call.request.messages;
  REQUIRE(m.size() == 3);
  REQUIRE(m[1].content.size() == 3);
  CHECK(m[1].content[0].type == Type::kThinking);
  CHECK(m[1].content[0].signature == "sig9");
  CHECK(m[1].content[0].origin == "anthropic");
  CHECK(m[1].content[2].tool_call.id == "toolu_9");
}

TEST_CASE("a response object's text is its tree's, whatever the request echoes and the answer says") {
  // Each echoed field set, unset, null or odd, alone and all together.
  const std::vector<std::string> fields = {
      R"("instructions":"Be \"brief\".\u0001")",
      R"("instructions":null)",
      R"("max_output_tokens":2000)",
      R"("metadata":{"role":"review","z":"1","a":"\u00e9"})",
      R"("parallel_tool_calls":false)",
      R"("reasoning":{"effort":"high","summary":"auto"})",
      R"("reasoning":{"effort":"low"})",
      R"("reasoning":{"summary":null})",
      R"("reasoning":null)",
      R"("store":false)",
      R"("temperature":0.25)",
      R"("temperature":1e-7)",
      R"("temperature":2)",
      R"("text":{"format":{"type":"json_schema","name":"s","schema":{"type":"object","b":[1.5,-0.0,1e300]}}})",
      R"("text":{"format":{"type":"json_object"},"verbosity":"medium"})",
      R"("text":{})",
      R"("tool_choice":{"type":"function","name":"f"})",
      R"("tool_choice":"required")",
      R"("tools":[{"type":"function","name":"f","parameters":{"type":"object","properties":{"x":{"type":"integer","minimum":-3}}}}])",
      R"("top_logprobs":3)",
      R"("top_p":0.9)",
      R"("truncation":"disabled")",
      R"("user":"u-1")",
      R"("service_tier":"flex","safety_identifier":"s","prompt_cache_key":"k")",
  };
  std::vector<std::string> bodies = {R"({"model":"auto","input":"x"})"};
  std::string all = R"({"model":"auto","input":"x")";
  for (const std::string& f : fields) {
    bodies.push_back(R"({"model":"auto","input":"x",)" + f + "}");
    if (f.find("null") == std::string::npos && f.rfind("\"reasoning\":{\"effort\":\"low", 0) != 0 &&
        f.rfind("\"text\":{}", 0) != 0 && f.rfind("\"tool_choice\":\"required", 0) != 0 &&
        f.rfind("\"temperature\":1e", 0) != 0 && f.rfind("\"temperature\":2", 0) != 0 &&
        f.rfind("\"text\":{\"format\":{\"type\":\"json_object", 0) != 0) {
      all += "," + f;
    }
  }
  bodies.push_back(all + "}");
  Usage usage;
  usage.input_tokens = 100;
  usage.cached_input_tokens = 20;
  usage.output_tokens = 30;
  usage.reasoning_tokens = 10;
  int checked = 0;
  for (const std::string& body : bodies) {
    CAPTURE(body);
    const ParsedRequest request = parse_ok(body);
    const json tree = json::parse(body);
    for (StopReason stop : {StopReason::kEndTurn, StopReason::kMaxTokens, StopReason::kContentFilter,
                            StopReason::kToolUse}) {
      const StepResult result = answer_of({thinking("Hmm.", "sig", "anthropic"), ContentBlock::of_text("Hi \"you\"")},
                                          stop);
      const std::string text = render_response(request, result, "resp_o", 1700000000);
      const json output = json::parse(text).at("output");
      const bool cut = stop == StopReason::kMaxTokens || stop == StopReason::kContentFilter;
      CHECK(text == detail::to_text(tree_response(tree, "resp_o", 1700000000, "claude-rt",
                                                  cut ? "incomplete" : "completed", output, &result.response.usage,
                                                  stop)));
      ++checked;
    }
    // A stream's response objects: created and in progress (no output, no
    // usage), completed, and failed with its error.
    auto writer = make_stream_writer(request, "resp_s", 5, "m");
    const std::vector<SseEvent> start = events_of(writer->begin());
    REQUIRE(start.size() == 2);
    const json empty = tree_response(tree, "resp_s", 5, "m", "in_progress", json::array(), nullptr,
                                     StopReason::kEndTurn);
    CHECK(start[0].data == detail::to_text(json{{"type", "response.created"}, {"sequence_number", 0},
                                                {"response", empty}}));
    CHECK(start[1].data == detail::to_text(json{{"type", "response.in_progress"}, {"sequence_number", 1},
                                                {"response", empty}}));
    const StepResult result = answer_of({ContentBlock::of_text("Hi")}, StopReason::kMaxTokens);
    const std::vector<SseEvent> end = events_of(writer->end(result));
    REQUIRE_FALSE(end.empty());
    const json whole = json::parse(render_response(request, result, "resp_s", 5));
    CHECK(end.back().data ==
          detail::to_text(json{{"type", "response.incomplete"}, {"sequence_number", static_cast<int>(end.size()) + 1},
                               {"response", tree_response(tree, "resp_s", 5, "m", "incomplete", whole.at("output"),
                                                          &result.response.usage, StopReason::kMaxTokens)}}));
    auto failing = make_stream_writer(request, "resp_f", 5, "m");
    ApiError error;
    error.type = "api_error";
    error.message = "every model \"failed\"";
    std::string failing_bytes = failing->begin();  // (begin first: the events are numbered as written)
    failing_bytes += failing->fail(error);
    const std::vector<SseEvent> failed = events_of(failing_bytes);
    REQUIRE(failed.size() == 4);
    CHECK(failed[3].data ==
          detail::to_text(json{{"type", "response.failed"}, {"sequence_number", 3},
                               {"response", tree_response(tree, "resp_f", 5, "m", "failed", json::array(), nullptr,
                                                          StopReason::kEndTurn, &error)}}));
  }
  CHECK(checked == static_cast<int>(bodies.size()) * 4);
}

TEST_CASE("logprobs asked for come back on the answer's output_text") {
  const ParsedRequest request = parse_ok(R"({"model":"auto","input":"x","top_logprobs":1})");
  CHECK(request.call.request.sampling.logprobs);
  StepResult result = answer_of({ContentBlock::of_text("Hi")});
  result.response.logprobs_json =
      R"({"content":[{"token":"Hi","logprob":-0.25,"bytes":[72,105],"top_logprobs":[{"token":"Hi","logprob":-0.25,"bytes":[72,105]}]}]})";
  const json r = json::parse(render_response(request, result, "resp_l", 1));
  CHECK(r.at("output").at(0).at("content").at(0).at("logprobs") ==
        json::parse(result.response.logprobs_json).at("content"));
}

TEST_CASE("a Responses stream numbers its events and ends with the whole response") {
  const ParsedRequest request = parse_ok(R"({"model":"auto","input":"x","stream":true})");
  auto writer = make_stream_writer(request, "resp_s", 5, "claude-rt");
  using K = StreamChunk::Kind;
  std::string bytes = writer->begin();
  StreamChunk signature = StreamChunk::of(K::kSignature, 0, "sigS", "anthropic");
  for (const StreamChunk& c :
       {StreamChunk::of(K::kThinking, 0, "Let me "), StreamChunk::of(K::kThinking, 0, "think."), signature,
        StreamChunk::of(K::kText, 1, "It "), StreamChunk::of(K::kText, 1, "rains."),
        StreamChunk::tool_call_start(2, "toolu_1", "get_weather"), StreamChunk::of(K::kToolArguments, 2, "{\"c\":"),
        StreamChunk::of(K::kToolArguments, 2, "1}")}) {
    bytes += writer->chunk(c);
  }
  const StepResult result = answer_of({thinking("Let me think.", "sigS", "anthropic"), ContentBlock::of_text("It rains."),
                                       ContentBlock::of_tool_call({"toolu_1", "get_weather", "{\"c\":1}"})},
                                      StopReason::kToolUse);
  bytes += writer->end(result);

  std::vector<std::string> types;
  json done_items = json::array();
  int sequence = 0;
  for (const SseEvent& e : events_of(bytes)) {
    const json d = json::parse(e.data);
    CHECK(e.type == d.at("type"));
    CHECK(d.at("sequence_number") == sequence++);
    types.push_back(d.at("type"));
    if (d.at("type") == "response.output_item.done") done_items.push_back(d.at("item"));
    if (d.at("type") == "response.completed") {
      CHECK(d.at("response").at("output") == done_items);  // the final output is what the items said
      CHECK(d.at("response").at("usage").at("output_tokens") == 40);
    }
  }
  CHECK(types == std::vector<std::string>{
                     "response.created", "response.in_progress",
                     "response.output_item.added", "response.reasoning_summary_part.added",
                     "response.reasoning_summary_text.delta", "response.reasoning_summary_text.delta",
                     "response.reasoning_summary_text.done", "response.reasoning_summary_part.done",
                     "response.output_item.done",
                     "response.output_item.added", "response.content_part.added",
                     "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
                     "response.content_part.done", "response.output_item.done",
                     "response.output_item.added", "response.function_call_arguments.delta",
                     "response.function_call_arguments.delta", "response.function_call_arguments.done",
                     "response.output_item.done", "response.completed"});
  CHECK(done_items.at(0).at("encrypted_content") == "anthropic:sigS");

  // A failure: an error event, then response.failed.
  auto failing = make_stream_writer(request, "resp_f", 5, "m");
  ApiError error;
  error.http_status = 502;
  error.code = "upstream_error";
  error.message = "every model failed";
  const std::vector<SseEvent> failed = events_of(failing->begin() + failing->fail(error));
  REQUIRE(failed.size() == 4);
  CHECK(failed[2].type == "error");
  CHECK(json::parse(failed[2].data).at("message") == "every model failed");
  CHECK(json::parse(failed[3].data).at("response").at("status") == "failed");
}

}  // TEST_SUITE
