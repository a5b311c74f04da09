// JsonOut (api/json_out.h) and the answers written with it (OpenAI's,
// Anthropic's and the Responses API's, whole and streamed): the same bytes as
// to_text writes for the same tree.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/common.h"
#include "api/json_out.h"
#include "providers/sse.h"

using namespace switchboard;
using namespace switchboard::gateway;
using detail::JsonOut;
using nlohmann::json;

namespace {

// Strings that need every kind of escape, and some that need none.
std::vector<std::string> awkward_strings() {
  std::vector<std::string> texts = {"",
                                    "plain",
                                    "quote \" backslash \\ slash /",
                                    "\b\f\n\r\t",
                                    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",  // 2-, 3- and 4-byte UTF-8
                                    "del \x7f stays",
                                    "bad \xff byte",                         // not UTF-8
                                    "cut \xe2\x82",                          // a sequence cut short
                                    "overlong \xc0\xaf",                     // an overlong form
                                    "surrogate \xed\xa0\x80"};               // an encoded surrogate
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls += static_cast<char>(c);
  texts.push_back(controls);
  texts.push_back(std::string(300, 'a') + "\"" + std::string(300, 'b'));
  return texts;
}

ContentBlock block(ContentBlock::Type type, std::string text, std::string signature = {}) {
  ContentBlock b;
  b.type = type;
  b.text = std::move(text);
  b.signature = std::move(signature);
  b.origin = "anthropic";
  return b;
}

StepResult result_of(std::vector<ContentBlock> content, StopReason stop) {
  StepResult r;
  r.model = "m";
  r.response.content = std::move(content);
  r.response.stop_reason = stop;
  r.response.usage.input_tokens = 123;
  r.response.usage.cached_input_tokens = 45;
  r.response.usage.output_tokens = 67;
  r.response.usage.reasoning_tokens = 8;
  return r;
}

ParsedRequest chat_request(bool stream) {
  const std::string body = std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}])") +
                           (stream ? R"(,"stream":true,"stream_options":{"include_usage":true}})" : "}");
  ApiResult<ParsedRequest> r = parse_openai_chat(body, {});
  REQUIRE_MESSAGE(r.ok(), r.error.message);
  return *r.value;
}

// `text` is what to_text writes for the tree it parses to.
void check_as_to_text(const std::string& text) {
  const json parsed = json::parse(text);
  CHECK(detail::to_text(parsed) == text);
}

}  // namespace

TEST_CASE("JsonOut writes strings as to_text does: every escape, UTF-8 as it is, bad UTF-8 as U+FFFD") {
  for (const std::string& s : awkward_strings()) {
    std::string out;
    JsonOut(out).string(s);
    CHECK(out == detail::to_text(json(s)));
  }
  // Every single byte value, alone and between letters.
  for (int c = 0; c < 256; ++c) {
    const std::string s = "a" + std::string(1, static_cast<char>(c)) + "b";
    std::string out;
    JsonOut(out).string(s);
    CHECK(out == detail::to_text(json(s)));
  }
}

TEST_CASE("JsonOut puts commas and colons where a tree's text has them") {
  std::string out;
  JsonOut w(out);
  w.begin_object();
  w.key("a").begin_array().integer(1).integer(-2).null().string("x").begin_object().end_object().begin_array()
      .end_array().end_array();
  w.key("b").raw(R"({"k":[1,2]})");
  w.key("c").begin_object().key("d").integer(9223372036854775807LL).key("e").null().end_object();
  w.key("f").begin_array().boolean(true).boolean(false).end_array();
  w.end_object();
  CHECK(out ==
        R"({"a":[1,-2,null,"x",{},[]],"b":{"k":[1,2]},"c":{"d":9223372036854775807,"e":null},"f":[true,false]})");
  check_as_to_text(out);
}

TEST_CASE("an OpenAI answer is written as to_text writes its tree, whatever its blocks and strings") {
  const std::vector<StopReason> stops = {StopReason::kEndTurn, StopReason::kMaxTokens, StopReason::kToolUse,
                                         StopReason::kRefusal};
  ParsedRequest request = chat_request(false);
  for (const std::string& s : awkward_strings()) {
    std::vector<std::vector<ContentBlock>> contents = {
        {ContentBlock::of_text(s)},
        {},
        {block(ContentBlock::Type::kRefusal, s)},
        {block(ContentBlock::Type::kThinking, s, "sig"), ContentBlock::of_text("t"),
         ContentBlock::of_tool_call({"call_1", s, R"({"q":1})"})},
        {ContentBlock::of_tool_call({"", "f", ""})},
        {block(ContentBlock::Type::kRedactedThinking, "", "data"), block(ContentBlock::Type::kRefusal, "no"),
         ContentBlock::of_text(s)},
    };
    for (std::vector<ContentBlock>& content : contents) {
      for (const StopReason stop : stops) {
        StepResult result = result_of(content, stop);
        result.response.logprobs_json = R"({"content":[{"token":"a","logprob":-0.5}]})";
        request.call.request.sampling.logprobs = stop == StopReason::kEndTurn;
        const std::string body = render_response(request, result, "chatcmpl-" + s, 1700000000);
        check_as_to_text(body);
        const json j = json::parse(body);
        CHECK(j["object"] == "chat.completion");
        CHECK(j["usage"]["prompt_tokens"] == 168);  // input + cached (+ cache writes)
        CHECK(j["usage"]["completion_tokens"] == 75);
        CHECK(j["usage"]["prompt_tokens_details"]["cached_tokens"] == 45);
        CHECK(j["usage"]["completion_tokens_details"]["reasoning_tokens"] == 8);
        CHECK(j["choices"][0]["logprobs"].is_null() == !request.call.request.sampling.logprobs);
      }
    }
  }
}

TEST_CASE("an OpenAI stream's chunks are written as to_text writes their trees") {
  const ParsedRequest request = chat_request(true);
  for (const std::string& s : awkward_strings()) {
    auto writer = make_stream_writer(request, "chatcmpl-" + s, 5, "model " + s);
    std::string bytes = writer->begin();
    using K = StreamChunk::Kind;
    for (const K kind : {K::kText, K::kThinking, K::kRefusal}) {
      StreamChunk c;
      c.kind = kind;
      c.index = static_cast<int>(kind);
      c.text = s.empty() ? "x" : s;
      bytes += writer->chunk(c);
    }
    StepResult result = result_of({ContentBlock::of_text("unsent " + s), ContentBlock::of_tool_call({"c", "f", "{}"})},
                                  StopReason::kToolUse);
    bytes += writer->end(result);
    std::vector<std::string> events;
    SseParser parser;
    parser.feed(bytes, [&](const SseEvent& e) {
      events.push_back(e.data);
      return true;
    });
    REQUIRE(events.size() >= 6);
    CHECK(events.back() == "[DONE]");
    events.pop_back();
    for (const std::string& e : events) check_as_to_text(e);
    const json usage = json::parse(events.back());
    CHECK(usage["choices"].empty());
    CHECK(usage["usage"]["total_tokens"] == 168 + 75);
  }
}

namespace {

// Each event's data in `bytes`, checked as to_text's; the events' types.
std::vector<std::string> check_events(const std::string& bytes) {
  std::vector<std::string> types;
  SseParser parser;
  parser.feed(bytes, [&](const SseEvent& e) {
    check_as_to_text(e.data);
    types.push_back(e.type);
    return true;
  });
  return types;
}

// Answers of every block kind with `s` in every string they carry.
std::vector<std::vector<ContentBlock>> contents_with(const std::string& s) {
  ContentBlock opaque;
  opaque.type = ContentBlock::Type::kOpaque;
  opaque.origin = "anthropic";
  opaque.opaque_json = R"({"type":"server_tool_use","id":"srv_1","name":"web_search","input":{"q":"x","a":[1.5,null]}})";
  return {
      {ContentBlock::of_text(s)},
      {},
      {block(ContentBlock::Type::kThinking, s, "sig" + s), block(ContentBlock::Type::kRedactedThinking, "", s),
       ContentBlock::of_text(s), block(ContentBlock::Type::kRefusal, s),
       ContentBlock::of_tool_call({"call_" + s, "f" + s, R"({"z":{"q":"x\u0001"},"a":1e300})"}),
       ContentBlock::of_tool_call({"c2", "g", "not json " + s}), opaque},
  };
}

ParsedRequest parsed(ApiResult<ParsedRequest> r) {
  REQUIRE_MESSAGE(r.ok(), r.error.message);
  return *r.value;
}

// A stream of every chunk kind carrying `s`, then its end with `result`.
std::string stream_with(StreamWriter& writer, const std::string& s, const StepResult& result) {
  using K = StreamChunk::Kind;
  const std::string text = s.empty() ? "x" : s;
  std::string bytes = writer.begin();
  bytes += writer.chunk(StreamChunk::of(K::kThinking, 0, text));
  bytes += writer.chunk(StreamChunk::of(K::kSignature, 0, text, "anthropic"));
  bytes += writer.chunk(StreamChunk::of(K::kRedactedThinking, 1, text, "anthropic"));
  bytes += writer.chunk(StreamChunk::of(K::kText, 2, text));
  bytes += writer.chunk(StreamChunk::of(K::kRefusal, 3, text));
  bytes += writer.chunk(StreamChunk::tool_call_start(4, "call_" + s, "f" + s));
  bytes += writer.chunk(StreamChunk::of(K::kToolArguments, 4, text));
  bytes += writer.keep_alive();
  return bytes + writer.end(result);
}

}  // namespace

TEST_CASE("an Anthropic answer and its stream are written as to_text writes their trees") {
  const std::string body = R"({"model":"m","max_tokens":9,"messages":[{"role":"user","content":"hi"}]})";
  const ParsedRequest request = parsed(parse_anthropic_messages(body, {}));
  for (const std::string& s : awkward_strings()) {
    for (const std::vector<ContentBlock>& content : contents_with(s)) {
      for (const StopReason stop : {StopReason::kEndTurn, StopReason::kStopSequence, StopReason::kMaxTokens}) {
        StepResult result = result_of(content, stop);
        result.response.stop_sequence = s;
        result.response.usage.cache_write_5m_tokens = 3;
        result.response.usage.cache_write_1h_tokens = 4;
        const std::string answer = render_response(request, result, "msg_" + s, 1);
        check_as_to_text(answer);
        const json j = json::parse(answer);
        CHECK(j["type"] == "message");
        CHECK_FALSE(j["content"].empty());  // an empty answer still has its text block
        CHECK(j["usage"]["cache_creation_input_tokens"] == 7);
        CHECK(j["usage"]["output_tokens"] == 75);
        CHECK(j["stop_sequence"].is_string() == (stop == StopReason::kStopSequence && !s.empty()));
        auto writer = make_stream_writer(request, "msg_" + s, 1, "m " + s);
        const std::vector<std::string> types = check_events(stream_with(*writer, s, result));
        REQUIRE(types.size() >= 4);
        CHECK(types.front() == "message_start");
        CHECK(types.back() == "message_stop");
      }
    }
  }
}

TEST_CASE("a Responses answer and its stream are written as to_text writes their trees") {
  const std::string body =
      R"({"model":"m","input":"hi","instructions":"I \u0001","metadata":{"b":"1","a":"\u00e9"},)"
      R"("tools":[{"type":"function","name":"f","parameters":{"type":"object","x":[1e300,-0.0]}}],)"
      R"("reasoning":{"effort":"low"},"temperature":0.25})";
  const ParsedRequest request = parsed(parse_openai_responses(body, {}, kDefaultMaxJsonDepth, {}));
  for (const std::string& s : awkward_strings()) {
    for (const std::vector<ContentBlock>& content : contents_with(s)) {
      for (const StopReason stop : {StopReason::kEndTurn, StopReason::kMaxTokens, StopReason::kContentFilter}) {
        StepResult result = result_of(content, stop);
        result.response.logprobs_json = R"({"content":[{"token":"a","logprob":-0.5,"bytes":[97]}]})";
        const std::string answer = render_response(request, result, "resp_" + s, 1);
        check_as_to_text(answer);
        const json j = json::parse(answer);
        CHECK(j["object"] == "response");
        CHECK(j["temperature"] == 0.25);
        CHECK(j["usage"]["total_tokens"] == 168 + 75);
        check_as_to_text(stored_conversation(request, result, "resp_" + s));
        auto writer = make_stream_writer(request, "resp_" + s, 1, "m " + s);
        const std::vector<std::string> types = check_events(stream_with(*writer, s, result));
        REQUIRE(types.size() >= 4);
        CHECK(types.front() == "response.created");
        CHECK(types.back() == (stop == StopReason::kEndTurn ? "response.completed" : "response.incomplete"));
        ApiError error;
        error.type = "api_error";
        error.code = s;
        error.param = s;
        error.message = s;
        auto failing = make_stream_writer(request, "resp_f", 1, "m");
        std::string failed = failing->begin();
        failed += failing->fail(error);
        CHECK(check_events(failed).back() == "response.failed");
      }
    }
  }
}
