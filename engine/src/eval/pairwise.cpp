// Pairwise judging (pairwise.h): the judge's prompt, its strict verdict, and
// the rule that combines the two orders.
#include "eval/pairwise.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

namespace switchboard::detail {

namespace {

using nlohmann::json;

// What a message says, as text: its text, tool calls and tool results.
std::string message_text(const Message& m) {
  std::string out = m.text();
  for (const ContentBlock& b : m.content) {
    if (b.type == ContentBlock::Type::kToolUse) {
      out += "\n[tool call " + b.tool_call.name + " " + b.tool_call.arguments_json + "]";
    } else if (b.type == ContentBlock::Type::kToolResult) {
      std::string result;
      for (const ContentBlock& inner : b.content) result += inner.text;
      out += "\n[tool result] " + result;
    }
  }
  return out;
}

std::string answer_text(const ModelResponse& answer) {
  std::string out = answer.text();
  for (const ToolCall& c : answer.tool_calls()) out += "\n[tool call " + c.name + " " + c.arguments_json + "]";
  return out;
}

constexpr const char* kVerdictSchema =
    R"({"type":"object","properties":{"winner":{"type":"string","enum":["A","B","tie"]},)"
    R"("reason":{"type":"string"}},"required":["winner","reason"],"additionalProperties":false})";

std::string excerpt(std::string_view s) {
  std::string out(s.substr(0, 120));
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "'" + out + (s.size() > 120 ? "...'" : "'");
}

}  // namespace

ModelRequest pairwise_judge_request(const ModelRequest& request, const ModelResponse& a, const ModelResponse& b) {
  ModelRequest r;
  r.messages.push_back(Message::of_text(
      "system",
      "You compare two AI assistants' answers to the same request and say which one serves the request "
      "better: correctness first, then completeness, then following the request's instructions and format. "
      "Length is no merit. Reply with one JSON object and nothing else: "
      "{\"winner\": \"A\" or \"B\" or \"tie\", \"reason\": \"one sentence\"}."));
  std::string prompt = "The request, message by message:\n";
  for (const Message& m : request.messages) prompt += "\n[" + m.role + "]\n" + message_text(m) + "\n";
  prompt += "\n### Answer A\n" + answer_text(a) + "\n\n### Answer B\n" + answer_text(b);
  r.messages.push_back(Message::of_text("user", std::move(prompt)));
  r.output_format.type = OutputFormat::Type::kJsonSchema;
  r.output_format.name = "pairwise_verdict";
  r.output_format.schema_json = kVerdictSchema;
  r.max_output_tokens = 300;
  return r;
}

Result<PairwiseVerdict> parse_pairwise_verdict(std::string_view text) {
  const size_t open = text.find('{');
  const size_t close = text.rfind('}');
  const json j = open == std::string_view::npos || close == std::string_view::npos || close < open
                     ? json()
                     : json::parse(text.substr(open, close - open + 1), nullptr, false);
  if (!j.is_object() || !j.contains("winner") || !j["winner"].is_string()) {
    return Status::invalid_argument("the judge gave no verdict: " + excerpt(text));
  }
  std::string winner = j["winner"].get<std::string>();
  std::transform(winner.begin(), winner.end(), winner.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  PairwiseVerdict v;
  if (winner == "a") {
    v.winner = PairwiseWinner::kA;
  } else if (winner == "b") {
    v.winner = PairwiseWinner::kB;
  } else if (winner == "tie") {
    v.winner = PairwiseWinner::kTie;
  } else {
    return Status::invalid_argument("the judge named the winner " + excerpt(winner) + ", not A, B or tie");
  }
  if (j.contains("reason") && j["reason"].is_string()) v.reason = j["reason"].get<std::string>();
  return v;
}

JudgedVerdict::Outcome combine_pairwise(PairwiseWinner first_as_a, PairwiseWinner first_as_b) {
  using Outcome = JudgedVerdict::Outcome;
  const Outcome one = first_as_a == PairwiseWinner::kA   ? Outcome::kWin
                      : first_as_a == PairwiseWinner::kB ? Outcome::kLoss
                                                         : Outcome::kTie;
  const Outcome two = first_as_b == PairwiseWinner::kB   ? Outcome::kWin
                      : first_as_b == PairwiseWinner::kA ? Outcome::kLoss
                                                         : Outcome::kTie;
  return one == two ? one : Outcome::kTie;
}

}  // namespace switchboard::detail
