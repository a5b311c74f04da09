// The graders of eval cases (eval.h). JSON Schema validation is valijson's
// (Debian libvalijson-dev) over nlohmann::json; both libraries' exceptions
// stop in this file.
#include <algorithm>
#include <cctype>
#include <regex>

#include <nlohmann/json.hpp>
#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validation_results.hpp>
#include <valijson/validator.hpp>

#include "switchboard/eval.h"

namespace switchboard {

namespace {

using nlohmann::json;
using Outcome = GraderVerdict::Outcome;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// At most 80 bytes of `s` on one line, for reasons.
std::string excerpt(const std::string& s) {
  std::string out = s.substr(0, 80);
  std::replace(out.begin(), out.end(), '\n', ' ');
  return "\"" + out + (s.size() > 80 ? "...\"" : "\"");
}

GraderVerdict verdict(const Grader& g, Outcome o, std::string reason) {
  GraderVerdict v;
  v.kind = g.kind;
  v.outcome = o;
  v.reason = std::move(reason);
  return v;
}

// "" when `doc` validates against `schema_text`, else the first error ("at /path: what").
// An invalid schema is reported as such.
std::string schema_errors(const std::string& schema_text, const json& doc) {
  const json schema_doc = json::parse(schema_text, nullptr, false);
  if (schema_doc.is_discarded()) return "the schema is not JSON";
  valijson::Schema schema;
  try {
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter schema_adapter(schema_doc);
    parser.populateSchema(schema_adapter, schema);
  } catch (const std::exception& e) {
    return std::string("the schema is not valid: ") + e.what();
  }
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(doc);
  if (validator.validate(schema, target, &results)) return "";
  // valijson reports each enclosing schema's failure too; the deepest one says what is wrong.
  const valijson::ValidationResults::Error* deepest = nullptr;
  for (const auto& e : results) {
    if (deepest == nullptr || e.context.size() > deepest->context.size()) deepest = &e;
  }
  if (deepest == nullptr) return "at /: does not validate";
  std::string path;
  for (const std::string& part : deepest->context) {
    if (part == "<root>") continue;
    // valijson writes a property as ["name"] and an item as [N]: a JSON Pointer reads /name and /N.
    std::string p = part;
    if (p.size() >= 2 && p.front() == '[' && p.back() == ']') p = p.substr(1, p.size() - 2);
    if (p.size() >= 2 && p.front() == '"' && p.back() == '"') p = p.substr(1, p.size() - 2);
    path += "/" + p;
  }
  return "at " + (path.empty() ? std::string("/") : path) + ": " + deepest->description;
}

// The last user or tool message's text, for the judge.
std::string last_message_text(const ModelRequest& r) {
  for (auto it = r.messages.rbegin(); it != r.messages.rend(); ++it) {
    std::string text = it->text();
    for (const ContentBlock& b : it->content) {
      if (b.type != ContentBlock::Type::kToolResult) continue;
      for (const ContentBlock& inner : b.content) text += inner.text;
    }
    if (!text.empty()) return text;
  }
  return "";
}

std::string answer_as_text(const ModelResponse& answer) {
  std::string out = answer.text();
  for (const ToolCall& c : answer.tool_calls()) out += "\n[tool call " + c.name + " " + c.arguments_json + "]";
  return out;
}

GraderVerdict judge_verdict(const Grader& g, const EvalCase& c, const ModelResponse& answer, const JudgeCall& judge) {
  if (!judge) return verdict(g, Outcome::kError, "no judge to call");
  ModelRequest r;
  r.messages.push_back(Message::of_text(
      "system",
      "You grade an AI assistant's answer against a rubric. Reply with one JSON object and nothing else: "
      "{\"verdict\": \"pass\" or \"fail\", \"reason\": \"one sentence\"}."));
  std::string prompt = "Rubric:\n" + g.rubric + "\n\nThe last message the assistant answered:\n" +
                       last_message_text(c.request) + "\n\nThe assistant's answer:\n" + answer_as_text(answer);
  if (!g.reference.empty()) prompt += "\n\nA reference answer that passes:\n" + g.reference;
  r.messages.push_back(Message::of_text("user", std::move(prompt)));
  r.output_format.type = OutputFormat::Type::kJsonObject;
  r.max_output_tokens = 300;
  Result<std::string> said = judge(g.judge_model, r);
  if (!said.ok()) return verdict(g, Outcome::kError, "the judge " + g.judge_model + " failed: " + said.status().message());
  const std::string text = trim(*said);
  // Tolerate a fenced or prefixed object: the first '{' to the last '}'.
  const size_t open = text.find('{');
  const size_t close = text.rfind('}');
  const json j = open == std::string::npos || close == std::string::npos || close < open
                     ? json()
                     : json::parse(text.substr(open, close - open + 1), nullptr, false);
  if (!j.is_object() || !j.contains("verdict") || !j["verdict"].is_string()) {
    return verdict(g, Outcome::kError, "the judge " + g.judge_model + " gave no verdict: " + excerpt(text));
  }
  const std::string v = lower(j["verdict"].get<std::string>());
  const std::string reason = j.contains("reason") && j["reason"].is_string() ? j["reason"].get<std::string>() : "";
  if (v == "pass") return verdict(g, Outcome::kPass, "judge " + g.judge_model + ": " + reason);
  if (v == "fail") return verdict(g, Outcome::kFail, "judge " + g.judge_model + ": " + reason);
  return verdict(g, Outcome::kError, "the judge " + g.judge_model + " gave the verdict " + excerpt(v));
}

GraderVerdict grade_unchecked(const Grader& g, const EvalCase& c, const ModelResponse& answer,
                              const JudgeCall& judge) {
  const std::string text = answer.text();
  const std::vector<ToolCall> calls = answer.tool_calls();
  switch (g.kind) {
    case Grader::Kind::kExact: {
      const bool same = g.ignore_case ? lower(trim(text)) == lower(trim(g.text)) : trim(text) == trim(g.text);
      return same ? verdict(g, Outcome::kPass, "the answer is " + excerpt(g.text))
                  : verdict(g, Outcome::kFail, "the answer " + excerpt(text) + " is not " + excerpt(g.text));
    }
    case Grader::Kind::kContains: {
      const bool found = g.ignore_case ? lower(text).find(lower(g.text)) != std::string::npos
                                       : text.find(g.text) != std::string::npos;
      return found ? verdict(g, Outcome::kPass, "the answer holds " + excerpt(g.text))
                   : verdict(g, Outcome::kFail, "the answer " + excerpt(text) + " lacks " + excerpt(g.text));
    }
    case Grader::Kind::kRegex: {
      std::regex pattern;
      try {
        pattern = std::regex(g.text, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        return verdict(g, Outcome::kError, "the pattern " + excerpt(g.text) + " is not valid: " + e.what());
      }
      return std::regex_search(text, pattern)
                 ? verdict(g, Outcome::kPass, "the answer matches /" + g.text + "/")
                 : verdict(g, Outcome::kFail, "the answer " + excerpt(text) + " does not match /" + g.text + "/");
    }
    case Grader::Kind::kJsonSchema: {
      const json doc = json::parse(trim(text), nullptr, false);
      if (doc.is_discarded()) return verdict(g, Outcome::kFail, "the answer is not JSON: " + excerpt(text));
      const std::string errors = schema_errors(g.text, doc);
      return errors.empty() ? verdict(g, Outcome::kPass, "the answer validates against the schema")
                            : verdict(g, Outcome::kFail, "the answer does not validate: " + errors);
    }
    case Grader::Kind::kToolCall: {
      std::string called;
      for (const ToolCall& call : calls) {
        called += (called.empty() ? "" : ", ") + call.name;
        if (call.name != g.tool) continue;
        if (g.arguments_schema.empty()) return verdict(g, Outcome::kPass, "the answer calls " + g.tool);
        const json arguments = json::parse(call.arguments_json, nullptr, false);
        if (arguments.is_discarded()) {
          return verdict(g, Outcome::kFail, g.tool + "'s arguments are not JSON: " + excerpt(call.arguments_json));
        }
        const std::string errors = schema_errors(g.arguments_schema, arguments);
        if (errors.empty()) return verdict(g, Outcome::kPass, "the answer calls " + g.tool + " with valid arguments");
        return verdict(g, Outcome::kFail, g.tool + "'s arguments do not validate: " + errors);
      }
      return verdict(g, Outcome::kFail, "the answer does not call " + g.tool +
                                            (called.empty() ? " (it calls no tool)" : " (it calls " + called + ")"));
    }
    case Grader::Kind::kMustNot: {
      for (const ToolCall& call : calls) {
        if (std::find(g.forbidden_tools.begin(), g.forbidden_tools.end(), call.name) != g.forbidden_tools.end()) {
          return verdict(g, Outcome::kFail, "the answer calls the forbidden tool " + call.name);
        }
      }
      const std::string haystack = lower(answer_as_text(answer));
      for (const std::string& s : g.forbidden_text) {
        if (haystack.find(lower(s)) != std::string::npos) {
          return verdict(g, Outcome::kFail, "the answer holds the forbidden " + excerpt(s));
        }
      }
      return verdict(g, Outcome::kPass, "no forbidden text or tool call");
    }
    case Grader::Kind::kJudge:
      return judge_verdict(g, c, answer, judge);
  }
  return verdict(g, Outcome::kError, "unknown grader");
}

}  // namespace

std::string_view to_string(GraderVerdict::Outcome o) {
  switch (o) {
    case Outcome::kPass: return "pass";
    case Outcome::kFail: return "fail";
    case Outcome::kError: return "error";
  }
  return "error";
}

GraderVerdict grade(const Grader& grader, const EvalCase& c, const ModelResponse& answer, const JudgeCall& judge) {
  try {
    return grade_unchecked(grader, c, answer, judge);
  } catch (const std::exception& e) {
    return verdict(grader, Outcome::kError, std::string("the grader failed: ") + e.what());
  }
}

}  // namespace switchboard
