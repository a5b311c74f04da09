// parse_step_json: the STEPS.jsonl line format, every field and every error.
#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "test_util.h"

using namespace switchboard;

TEST_CASE("parse_step_json reads every field") {
  auto step = parse_step_json(R"json({
    "role": "patch", "prompt": "fix the bug", "input_tokens": 1200, "expected_output_tokens": 300,
    "needs_chain_of_thought": true, "output_must_be_json": true, "untrusted_input": true,
    "tool_depth": 4, "meta": {"task": "t-001"}
  })json");
  REQUIRE_MESSAGE(step.ok(), step.status().message());
  CHECK(step->role == "patch");
  CHECK(step->prompt == std::optional<std::string>("fix the bug"));
  CHECK(step->input_tokens == std::optional<std::int64_t>(1200));
  CHECK(step->expected_output_tokens == std::optional<std::int64_t>(300));
  CHECK(step->needs_chain_of_thought);
  CHECK(step->output_must_be_json);
  CHECK(step->untrusted_input);
  CHECK(step->tool_depth == 4);
  REQUIRE(step->meta.size() == 1);
  CHECK(step->meta[0].first == "task");
  CHECK(step->meta[0].second == MetaValue(std::string("t-001")));
}

TEST_CASE("parse_step_json leaves absent fields at their defaults") {
  auto step = parse_step_json(R"json({"role": "format"})json");
  REQUIRE_MESSAGE(step.ok(), step.status().message());
  CHECK(step->role == "format");
  CHECK_FALSE(step->prompt.has_value());
  CHECK_FALSE(step->input_tokens.has_value());
  CHECK_FALSE(step->expected_output_tokens.has_value());
  CHECK_FALSE(step->needs_chain_of_thought);
  CHECK_FALSE(step->output_must_be_json);
  CHECK_FALSE(step->untrusted_input);
  CHECK(step->tool_depth == 0);
  CHECK(step->meta.empty());

  auto flags_off = parse_step_json(
      R"json({"role": "x", "needs_chain_of_thought": false, "output_must_be_json": false, "untrusted_input": false, "input_tokens": 0})json");
  REQUIRE_MESSAGE(flags_off.ok(), flags_off.status().message());
  CHECK_FALSE(flags_off->needs_chain_of_thought);
  CHECK(flags_off->input_tokens == std::optional<std::int64_t>(0));
}

TEST_CASE("meta values keep their JSON type: string, integer, float, boolean") {
  auto step = parse_step_json(
      R"json({"role": "x", "meta": {"s": "go", "i": 7, "neg": -3, "f": 0.5, "whole_float": 2.0, "b": false, "big": 9007199254740993}})json");
  REQUIRE_MESSAGE(step.ok(), step.status().message());
  std::map<std::string, MetaValue> meta(step->meta.begin(), step->meta.end());
  REQUIRE(meta.size() == 7);
  CHECK(meta.at("s") == MetaValue(std::string("go")));
  CHECK(meta.at("i") == MetaValue(std::int64_t{7}));
  CHECK(meta.at("neg") == MetaValue(std::int64_t{-3}));
  CHECK(meta.at("f") == MetaValue(0.5));
  CHECK(meta.at("whole_float") == MetaValue(2.0));
  CHECK(meta.at("b") == MetaValue(false));
  CHECK(meta.at("big") == MetaValue(std::int64_t{9'007'199'254'740'993}));
}

TEST_CASE("a meta integer beyond the int64 range is passed as a float, not wrapped") {
  auto step = parse_step_json(R"json({"role": "x", "meta": {"huge": 18446744073709551615, "max": 9223372036854775807}})json");
  REQUIRE_MESSAGE(step.ok(), step.status().message());
  std::map<std::string, MetaValue> meta(step->meta.begin(), step->meta.end());
  CHECK(meta.at("huge") == MetaValue(18446744073709551615.0));
  CHECK(meta.at("max") == MetaValue(std::int64_t{9'223'372'036'854'775'807}));
}

TEST_CASE("parse_step_json rejects what is not a well-formed step, naming the field") {
  struct Case {
    const char* json;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"", "not valid JSON"},
      {"{\"role\": \"x\"", "not valid JSON"},
      {"{\"role\": \"x\"} trailing", "not valid JSON"},
      {"[]", "a step must be a JSON object"},
      {"\"plan\"", "a step must be a JSON object"},
      {"42", "a step must be a JSON object"},
      {"null", "a step must be a JSON object"},
      {R"({"role": "x", "tokens": 5})", "unknown step field 'tokens' (extra fields go under \"meta\")"},
      {R"({"role": "x", "task": "t-1"})", "unknown step field 'task' (extra fields go under \"meta\")"},
      {R"({})", "step has no 'role'"},
      {R"({"input_tokens": 5})", "step has no 'role'"},
      {R"({"role": ""})", "step has no 'role'"},
      {R"({"role": 5})", "step field 'role' must be a string"},
      {R"({"role": null})", "step field 'role' must be a string"},
      {R"({"role": "x", "prompt": ["a"]})", "step field 'prompt' must be a string"},
      {R"({"role": "x", "input_tokens": "5"})", "step field 'input_tokens' must be a whole number"},
      {R"({"role": "x", "input_tokens": 5.5})", "step field 'input_tokens' must be a whole number"},
      {R"({"role": "x", "input_tokens": 5.0})", "step field 'input_tokens' must be a whole number"},
      {R"({"role": "x", "input_tokens": -1})", "step field 'input_tokens' must be between 0 and 100000000"},
      {R"({"role": "x", "input_tokens": 100000001})",
       "step field 'input_tokens' must be between 0 and 100000000"},
      {R"({"role": "x", "input_tokens": 18446744073709551615})",
       "step field 'input_tokens' must be between 0 and 100000000"},
      {R"({"role": "x", "expected_output_tokens": -5})",
       "step field 'expected_output_tokens' must be between 0 and 100000000"},
      {R"({"role": "x", "expected_output_tokens": true})",
       "step field 'expected_output_tokens' must be a whole number"},
      {R"({"role": "x", "tool_depth": -1})", "step field 'tool_depth' must be between 0 and 100000000"},
      {R"({"role": "x", "tool_depth": 1.5})", "step field 'tool_depth' must be a whole number"},
      {R"({"role": "x", "needs_chain_of_thought": 1})", "step field 'needs_chain_of_thought' must be true or false"},
      {R"({"role": "x", "output_must_be_json": "yes"})", "step field 'output_must_be_json' must be true or false"},
      {R"({"role": "x", "untrusted_input": null})", "step field 'untrusted_input' must be true or false"},
      {R"({"role": "x", "turns": -1})", "step field 'turns' must be between 0 and 100000000"},
      {R"({"role": "x", "turns": "3"})", "step field 'turns' must be a whole number"},
      {R"({"role": "x", "has_tools": 1})", "step field 'has_tools' must be true or false"},
      {R"({"role": "x", "has_images": "true"})", "step field 'has_images' must be true or false"},
      {R"({"role": "x", "has_documents": null})", "step field 'has_documents' must be true or false"},
      {R"({"role": "x", "tool_names": "web_fetch"})", "step field 'tool_names' must be an array of strings"},
      {R"({"role": "x", "tool_names": ["a", 1]})", "step field 'tool_names' must be an array of strings"},
      {R"({"role": "x", "last_tool": 5})", "step field 'last_tool' must be a string"},
      {R"({"role": "x", "agent": ["a"]})", "step field 'agent' must be a string"},
      {R"({"role": "x", "meta": ["a"]})", "step field 'meta' must be an object"},
      {R"({"role": "x", "meta": "a"})", "step field 'meta' must be an object"},
      {R"({"role": "x", "meta": {"k": null}})", "step field 'meta.k' must be a string, number or boolean"},
      {R"({"role": "x", "meta": {"k": [1]}})", "step field 'meta.k' must be a string, number or boolean"},
      {R"({"role": "x", "meta": {"k": {"n": 1}}})", "step field 'meta.k' must be a string, number or boolean"},
  };
  for (const Case& c : cases) {
    INFO(std::string(c.json));
    auto step = parse_step_json(c.json);
    REQUIRE_FALSE(step.ok());
    CHECK(step.status().code() == Status::Code::kInvalidArgument);
    CHECK(step.status().message() == c.error);
  }
}

TEST_CASE("step_to_json writes what parse_step_json reads back, meta in its order") {
  const std::string line =
      R"({"role":"plan","input_tokens":3327,"prompt":"fix \"it\"\n","expected_output_tokens":518,)"
      R"("needs_chain_of_thought":true,"output_must_be_json":true,"untrusted_input":true,"tool_depth":2,)"
      R"("meta":{"task":"t-001","step":1,"score":0.5,"web":false}})";
  auto step = parse_step_json(line);
  REQUIRE_MESSAGE(step.ok(), step.status().message());
  CHECK(step_to_json(*step) == line);
  // Defaults are left out.
  Step bare;
  bare.role = "format";
  CHECK(step_to_json(bare) == R"({"role":"format"})");
}

TEST_CASE("session_id round-trips through step JSON and must be a string") {
  const std::string line = R"({"role":"plan","input_tokens":10,"session_id":"t-001","meta":{"task":"t-001"}})";
  auto step = parse_step_json(line);
  REQUIRE_MESSAGE(step.ok(), step.status().message());
  CHECK(step->session_id == "t-001");
  CHECK(step_to_json(*step) == line);
  auto bad = parse_step_json(R"({"role":"plan","session_id":7})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "step field 'session_id' must be a string");
}

TEST_CASE("the fields derived from a conversation round-trip through step JSON") {
  const std::string line =
      R"({"role":"chat","input_tokens":900,"untrusted_input":true,"tool_depth":8,"turns":3,"has_tools":true,)"
      R"("tool_names":["web_fetch","read_file"],"last_tool":"web_fetch","has_images":true,"has_documents":true,)"
      R"("agent":"0123456789ab","meta":{"client":"openai-node"}})";
  auto step = parse_step_json(line);
  REQUIRE_MESSAGE(step.ok(), step.status().message());
  CHECK(step->turns == 3);
  CHECK(step->has_tools);
  CHECK(step->tool_names == std::vector<std::string>{"web_fetch", "read_file"});
  CHECK(step->last_tool == "web_fetch");
  CHECK(step->has_images);
  CHECK(step->has_documents);
  CHECK(step->agent == "0123456789ab");
  CHECK(step_to_json(*step) == line);

  // A step derived from a request writes back to the same step.
  ModelRequest r;
  r.messages = {Message::of_text("system", "agent A"), Message::of_text("user", "go"),
                Message::of("assistant", {ContentBlock::of_tool_call(ToolCall{"c1", "web_fetch", "{}"})}),
                Message::of("tool", {ContentBlock::of_tool_result("c1", "", "<html>")})};
  r.tools = {ToolSpec::of_function("web_fetch", "", "{}")};
  Workload w;
  w.untrusted_tools = {"web_.*"};
  const Step derived = derive_step(r, &w);
  auto back = parse_step_json(step_to_json(derived));
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(step_to_json(*back) == step_to_json(derived));
  CHECK(back->turns == 1);
  CHECK(back->tool_depth == 1);
  CHECK(back->untrusted_input);
  CHECK(back->last_tool == "web_fetch");
  CHECK(back->tool_names == std::vector<std::string>{"web_fetch"});
  CHECK(back->agent == derived.agent);
  CHECK(back->input_tokens == derived.input_tokens);

  // Empty lists and strings are left out, like every default.
  Step bare;
  bare.role = "format";
  bare.tool_names.clear();
  CHECK(step_to_json(bare) == R"({"role":"format"})");
}
