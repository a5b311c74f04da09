// derive_step (switchboard/derive_step.h): the step a conversation is, in
// OpenAI's shape ("tool" messages) and Anthropic's (tool results inside
// "user" messages): turns, tool round-trips, the tool answered, untrusted
// input, media, tools, output format, reasoning and the agent's fingerprint.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "switchboard/switchboard.h"
#include "util/sha256.h"

using namespace switchboard;

namespace {

Message user(std::string text) { return Message::of_text("user", std::move(text)); }

// An assistant message calling `names` (ids "<prefix>_<i>").
Message calls(const std::string& prefix, const std::vector<std::string>& names) {
  std::vector<ContentBlock> blocks;
  for (std::size_t i = 0; i < names.size(); ++i) {
    blocks.push_back(ContentBlock::of_tool_call(ToolCall{prefix + "_" + std::to_string(i), names[i], "{}"}));
  }
  return Message::of("assistant", std::move(blocks));
}

// OpenAI's shape: one "tool" message per result, naming only the call id.
std::vector<Message> openai_results(const std::string& prefix, std::size_t n) {
  std::vector<Message> out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(Message::of("tool", {ContentBlock::of_tool_result(prefix + "_" + std::to_string(i), "", "ok")}));
  }
  return out;
}

// Anthropic's shape: one "user" message of every result (+ text after them).
Message anthropic_results(const std::string& prefix, std::size_t n, const std::string& text_after = "") {
  std::vector<ContentBlock> blocks;
  for (std::size_t i = 0; i < n; ++i) {
    blocks.push_back(ContentBlock::of_tool_result(prefix + "_" + std::to_string(i), "", "ok"));
  }
  if (!text_after.empty()) blocks.push_back(ContentBlock::of_text(text_after));
  return Message::of("user", std::move(blocks));
}

// One OpenAI-shaped round-trip: an assistant calling `names`, then each result.
void openai_round(std::vector<Message>& m, const std::string& prefix, const std::vector<std::string>& names) {
  m.push_back(calls(prefix, names));
  for (Message& r : openai_results(prefix, names.size())) m.push_back(std::move(r));
}

ContentBlock image_block() {
  ContentBlock b = ContentBlock::of_text("");
  b.type = ContentBlock::Type::kImage;
  b.source.media_type = "image/png";
  b.source.data = "iVBORw0KGgo=";
  return b;
}

ContentBlock document_block() {
  ContentBlock b = image_block();
  b.type = ContentBlock::Type::kDocument;
  b.source.media_type = "application/pdf";
  return b;
}

Workload untrusting(std::vector<std::string> tools) {
  Workload w;
  w.name = "w";
  w.untrusted_tools = std::move(tools);
  return w;
}

bool is_hex(const std::string& s) { return s.find_first_not_of("0123456789abcdef") == std::string::npos; }

}  // namespace

TEST_SUITE("derive_step") {

TEST_CASE("a first user message is one turn at depth 0 answering no tool") {
  ModelRequest r;
  r.messages = {Message::of_text("system", "You fix bugs."), user("Fix the failing test.")};
  const Step s = derive_step(r);
  CHECK(s.role == "chat");
  CHECK(s.turns == 1);
  CHECK(s.tool_depth == 0);
  CHECK(s.last_tool.empty());
  CHECK_FALSE(s.untrusted_input);
  CHECK_FALSE(s.has_tools);
  CHECK(s.tool_names.empty());
  CHECK_FALSE(s.has_images);
  CHECK_FALSE(s.has_documents);
  CHECK_FALSE(s.output_must_be_json);
  CHECK_FALSE(s.needs_chain_of_thought);
  CHECK(s.meta.empty());
  CHECK_FALSE(s.prompt.has_value());
  REQUIRE(s.input_tokens.has_value());
  CHECK(*s.input_tokens == estimate_input_tokens(r));
  CHECK(*s.input_tokens == estimate_tokens("You fix bugs.") + estimate_tokens("Fix the failing test."));
}

TEST_CASE("OpenAI-shaped tool messages count one round-trip per assistant call, parallel calls included") {
  ModelRequest r;
  r.messages = {user("Find the bug.")};
  openai_round(r.messages, "a", {"grep", "read_file"});  // two parallel calls: one round-trip
  openai_round(r.messages, "b", {"read_file"});
  openai_round(r.messages, "c", {"run_tests"});
  Step s = derive_step(r);
  CHECK(s.turns == 1);
  CHECK(s.tool_depth == 3);
  CHECK(s.last_tool == "run_tests");  // resolved by the call id: the tool messages name none

  r.messages.push_back(Message::of_text("assistant", "The test passes now."));
  r.messages.push_back(user("Thanks. Now update the changelog."));
  s = derive_step(r);
  CHECK(s.turns == 2);
  CHECK(s.tool_depth == 0);  // a user-authored message starts again
  CHECK(s.last_tool.empty());

  openai_round(r.messages, "d", {"edit_file", "read_file"});
  s = derive_step(r);
  CHECK(s.tool_depth == 1);
  CHECK(s.last_tool == "read_file");  // the last result of the run
}

TEST_CASE("Anthropic-shaped tool results inside user messages are round-trips, not turns") {
  ModelRequest r;
  r.messages = {Message::of_text("system", "You research."), user("What changed in v3?")};
  for (int i = 0; i < 8; ++i) {
    const std::string id = "toolu" + std::to_string(i);
    r.messages.push_back(calls(id, {i % 2 == 0 ? "search" : "read_page"}));
    // An agent may append text after the results (a reminder): still a round-trip.
    r.messages.push_back(anthropic_results(id, 1, i == 7 ? "<reminder>stay on task</reminder>" : ""));
  }
  const Step s = derive_step(r);
  CHECK(s.turns == 1);
  CHECK(s.tool_depth == 8);
  CHECK(s.last_tool == "read_page");

  // An assistant message after the results: the step answers no tool (a prefill).
  ModelRequest prefill = r;
  prefill.messages.push_back(Message::of_text("assistant", "So far"));
  CHECK(derive_step(prefill).last_tool.empty());
  CHECK(derive_step(prefill).tool_depth == 8);
}

TEST_CASE("a tool result's own tool_name wins over the call id, and an unknown id names no tool") {
  ModelRequest r;
  r.messages = {user("go"), calls("x", {"search"}),
                Message::of("user", {ContentBlock::of_tool_result("x_0", "web_fetch", "page")})};
  CHECK(derive_step(r).last_tool == "web_fetch");
  r.messages.back() = Message::of("tool", {ContentBlock::of_tool_result("nobody", "", "page")});
  const Step s = derive_step(r);
  CHECK(s.tool_depth == 1);
  CHECK(s.last_tool.empty());
}

TEST_CASE("a conversation with no user-authored message counts every round-trip") {
  ModelRequest r;
  r.messages = {Message::of_text("system", "batch job")};
  openai_round(r.messages, "a", {"list"});
  openai_round(r.messages, "b", {"fetch"});
  const Step s = derive_step(r);
  CHECK(s.turns == 0);
  CHECK(s.tool_depth == 2);
  CHECK(s.last_tool == "fetch");
}

TEST_CASE("untrusted_input: a result since the last user message from a listed tool, by name or pattern") {
  const Workload w = untrusting({"web_fetch", "read_email", "browser_.*"});
  struct Case {
    const char* what;
    std::vector<std::string> tools;  // one round-trip each, after the user message
    bool untrusted;
  };
  const std::vector<Case> cases = {
      {"a listed name", {"web_fetch"}, true},
      {"a listed name earlier in the loop", {"web_fetch", "read_file", "read_file"}, true},
      {"a pattern's match", {"browser_click"}, true},
      {"no listed tool", {"read_file", "grep"}, false},
      {"a name that only starts like a listed one", {"web_fetcher"}, false},
      {"no tool at all", {}, false},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    ModelRequest r;
    r.messages = {user("Summarise the page.")};
    for (std::size_t i = 0; i < c.tools.size(); ++i) {
      const std::string id = "t" + std::to_string(i);
      r.messages.push_back(calls(id, {c.tools[i]}));
      r.messages.push_back(anthropic_results(id, 1));
    }
    CHECK(derive_step(r, &w).untrusted_input == c.untrusted);
    CHECK_FALSE(derive_step(r).untrusted_input);  // no workload: no listed tools
  }

  // A listed tool's result before the last user-authored message is not this turn's input.
  ModelRequest r;
  r.messages = {user("Read the page.")};
  openai_round(r.messages, "a", {"web_fetch"});
  CHECK(derive_step(r, &w).untrusted_input);
  r.messages.push_back(Message::of_text("assistant", "Here it is."));
  r.messages.push_back(user("Now write the summary."));
  CHECK_FALSE(derive_step(r, &w).untrusted_input);
}

TEST_CASE("images and documents: seen anywhere, untrusted when a tool result carries them") {
  ModelRequest from_user;
  from_user.messages = {Message::of("user", {ContentBlock::of_text("What is this?"), image_block()})};
  Step s = derive_step(from_user);
  CHECK(s.has_images);
  CHECK_FALSE(s.has_documents);
  CHECK_FALSE(s.untrusted_input);  // the user's own picture
  CHECK(*s.input_tokens == estimate_tokens("What is this?"));  // media count nothing

  ModelRequest from_tool;
  from_tool.messages = {user("Read the contract."), calls("c", {"open_file"})};
  ContentBlock result = ContentBlock::of_tool_result("c_0", "", "attached");
  result.content.push_back(document_block());
  from_tool.messages.push_back(Message::of("user", {result}));
  s = derive_step(from_tool);
  CHECK(s.has_documents);
  CHECK_FALSE(s.has_images);
  CHECK(s.untrusted_input);

  // Media in a tool result stays untrusted after a later user message (the request carries it).
  from_tool.messages.push_back(Message::of_text("assistant", "Read."));
  from_tool.messages.push_back(user("Summarise it."));
  s = derive_step(from_tool);
  CHECK(s.untrusted_input);
  CHECK(s.tool_depth == 0);
}

TEST_CASE("tools, output format and reasoning settings become has_tools, tool_names, json and chain of thought") {
  ModelRequest r;
  r.messages = {user("hi")};
  r.tools = {ToolSpec::of_function("read_file", "", "{}"), ToolSpec::of_function("web_fetch", "", "{}")};
  ToolSpec provider = ToolSpec::of_function("", "", "{}");
  provider.opaque_json = R"({"type":"web_search_20250305","name":"web_search"})";
  provider.origin = "anthropic";
  r.tools.push_back(provider);
  Step s = derive_step(r);
  CHECK(s.has_tools);
  CHECK(s.tool_names == std::vector<std::string>{"read_file", "web_fetch"});  // a provider's tool has no name here

  ModelRequest only_provider;
  only_provider.tools = {provider};
  CHECK(derive_step(only_provider).has_tools);
  CHECK(derive_step(only_provider).tool_names.empty());

  struct Case {
    OutputFormat::Type format;
    std::optional<Effort> effort;
    std::optional<std::int64_t> budget;
    bool json;
    bool cot;
  };
  const std::vector<Case> cases = {
      {OutputFormat::Type::kText, std::nullopt, std::nullopt, false, false},
      {OutputFormat::Type::kJsonObject, Effort::kNone, std::nullopt, true, false},
      {OutputFormat::Type::kJsonSchema, Effort::kMinimal, std::nullopt, true, false},
      {OutputFormat::Type::kText, Effort::kLow, std::nullopt, false, true},
      {OutputFormat::Type::kText, Effort::kXHigh, std::nullopt, false, true},
      {OutputFormat::Type::kText, std::nullopt, std::int64_t{0}, false, false},  // thinking disabled
      {OutputFormat::Type::kText, std::nullopt, std::int64_t{2048}, false, true},
  };
  for (const Case& c : cases) {
    ModelRequest q;
    q.output_format.type = c.format;
    q.reasoning.effort = c.effort;
    q.reasoning.budget_tokens = c.budget;
    const Step d = derive_step(q);
    INFO("effort ", c.effort ? std::string(to_string(*c.effort)) : "unset", " budget ", c.budget.value_or(-1));
    CHECK(d.output_must_be_json == c.json);
    CHECK(d.needs_chain_of_thought == c.cot);
  }
}

TEST_CASE("agent is a stable 12-digit fingerprint of the system prompt and the caller's count wins") {
  ModelRequest a;
  a.messages = {Message::of_text("system", "You are the billing agent."), user("first")};
  ModelRequest a_later = a;
  a_later.messages.push_back(Message::of_text("assistant", "ok"));
  a_later.messages.push_back(user("second"));
  ModelRequest b;
  b.messages = {Message::of_text("system", "You are the support agent."), user("first")};
  ModelRequest none;
  none.messages = {user("first")};

  const std::string id = derive_step(a).agent;
  CHECK(id.size() == 12);
  CHECK(is_hex(id));
  CHECK(derive_step(a_later).agent == id);  // the same agent on a later turn
  CHECK(derive_step(b).agent != id);
  CHECK(derive_step(none).agent.empty());

  // Two system messages are one prompt, in order.
  ModelRequest split;
  split.messages = {Message::of_text("system", "You are the billing"), Message::of_text("system", " agent."),
                    user("x")};
  CHECK(derive_step(split).agent.size() == 12);
  CHECK(derive_step(split).agent != id);  // joined with a newline: not the same text

  a.counted_input_tokens = 12345;
  a.expected_output_tokens = 300;
  const Step counted = derive_step(a);
  CHECK(counted.input_tokens == std::optional<std::int64_t>(12345));
  CHECK(counted.expected_output_tokens == std::optional<std::int64_t>(300));
}

TEST_CASE("session_id hashes the conversation's opening: the same on every later turn, another for another opening") {
  ModelRequest a;
  a.messages = {Message::of_text("system", "You fix bugs."), user("The build fails.")};
  ModelRequest a_later = a;
  a_later.messages.push_back(Message::of_text("assistant", "Which error?"));
  a_later.messages.push_back(user("A linker error."));
  a_later.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("c1", "ld", "undefined")}));
  ModelRequest other_question = a;
  other_question.messages[1] = user("The tests fail.");
  ModelRequest other_agent = a;
  other_agent.messages[0] = Message::of_text("system", "You review code.");
  ModelRequest no_system;
  no_system.messages = {user("The build fails.")};
  ModelRequest only_results;
  only_results.messages = {Message::of("tool", {ContentBlock::of_tool_result("c1", "ld", "x")})};

  const std::string id = derive_step(a).session_id;
  REQUIRE(id.size() == 18);
  CHECK(id.rfind("h-", 0) == 0);
  CHECK(is_hex(id.substr(2)));
  CHECK(derive_step(a_later).session_id == id);  // a later turn of the same conversation
  CHECK(derive_step(other_question).session_id != id);
  CHECK(derive_step(other_agent).session_id != id);
  CHECK(derive_step(no_system).session_id.size() == 18);
  CHECK(derive_step(no_system).session_id != id);
  CHECK(derive_step(only_results).session_id.empty());  // no user-authored message: no session

  // The ids are kept in ledgers and read back: their derivation is fixed.
  using detail::sha256_hex;
  CHECK(derive_step(a).agent == sha256_hex("You fix bugs.").substr(0, 12));
  CHECK(id == "h-" + sha256_hex("You fix bugs.\x1eThe build fails.").substr(0, 16));
  CHECK(derive_step(no_system).agent.empty());
  CHECK(derive_step(no_system).session_id == "h-" + sha256_hex("\x1eThe build fails.").substr(0, 16));
  ModelRequest two_systems;
  two_systems.messages = {Message::of_text("system", "A"), user("q"), Message::of_text("system", "B")};
  CHECK(derive_step(two_systems).agent == sha256_hex("A\nB").substr(0, 12));
  CHECK(derive_step(two_systems).session_id == "h-" + sha256_hex("A\nB\x1eq").substr(0, 16));
  ModelRequest empty_systems;
  empty_systems.messages = {Message::of_text("system", ""), Message::of_text("system", ""), user("q")};
  CHECK(derive_step(empty_systems).agent == sha256_hex("\n").substr(0, 12));
  empty_systems.messages.erase(empty_systems.messages.begin());
  CHECK(derive_step(empty_systems).agent.empty());
  CHECK(derive_step(empty_systems).session_id == "h-" + sha256_hex("\x1eq").substr(0, 16));

  // A message's text is its text blocks joined (Message::text()), whatever
  // else it holds; a message with no text adds nothing.
  ContentBlock thinking = ContentBlock::of_text("not said");
  thinking.type = ContentBlock::Type::kThinking;
  ModelRequest blocks;
  blocks.messages = {Message::of("system", {ContentBlock::of_text("You fix"), image_block(), ContentBlock::of_text(""),
                                            thinking, ContentBlock::of_text(" bugs.")}),
                     Message::of("user", {image_block(), ContentBlock::of_text("The build"),
                                          ContentBlock::of_text(" fails.")})};
  CHECK(derive_step(blocks).agent == derive_step(a).agent);
  CHECK(derive_step(blocks).session_id == id);
  ModelRequest image_only;
  image_only.messages = {Message::of("system", {image_block()}), user("q")};
  CHECK(derive_step(image_only).agent.empty());
  CHECK(derive_step(image_only).session_id == "h-" + sha256_hex("\x1eq").substr(0, 16));
}

TEST_CASE("estimate_input_tokens counts every piece of text the model is sent") {
  ModelRequest r;
  ContentBlock thinking = ContentBlock::of_text("hmm, think");  // 10 bytes: 4
  thinking.type = ContentBlock::Type::kThinking;
  r.messages = {Message::of_text("system", "abc"),                               // 1
                Message::of("assistant", {thinking, ContentBlock::of_tool_call(  // name 4 + args 2 -> 2 + 1
                                                        ToolCall{"id", "find", "{}"})}),
                Message::of("tool", {ContentBlock::of_tool_result("id", "find", "123456")}),  // 2
                Message::of("user", {image_block()})};                                         // 0
  r.tools = {ToolSpec::of_function("tool", "desc!", "{}")};  // 2 + 2 + 1
  CHECK(estimate_input_tokens(r) == 1 + 4 + 2 + 1 + 2 + 0 + 2 + 2 + 1);
}

}  // TEST_SUITE
