// Eval cases from JSON (eval.h, one case a line). nlohmann::json's
// exceptions stop in this file: every error is a Status naming file:line.
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "switchboard/derive_step.h"
#include "switchboard/eval.h"

namespace switchboard {

namespace {

using nlohmann::json;

constexpr std::string_view kGraderNames[] = {"exact", "contains", "regex", "json_schema", "tool_call", "must_not",
                                             "judge"};

// Fails naming the first member of `j` not in `allowed`.
Status only_fields(const json& j, std::initializer_list<std::string_view> allowed, const std::string& what) {
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) return Status::invalid_argument(what + ": unknown field '" + key + "'");
  }
  return Status();
}

Result<std::string> string_field(const json& j, const char* name, const std::string& what, bool required) {
  auto it = j.find(name);
  if (it == j.end()) {
    if (required) return Status::invalid_argument(what + ": '" + name + "' is required");
    return std::string();
  }
  if (!it->is_string()) return Status::invalid_argument(what + ": '" + name + "' must be a string");
  return it->get<std::string>();
}

Result<std::vector<std::string>> string_list(const json& j, const char* name, const std::string& what) {
  std::vector<std::string> out;
  auto it = j.find(name);
  if (it == j.end()) return out;
  if (!it->is_array()) return Status::invalid_argument(what + ": '" + name + "' must be a list of strings");
  for (const json& v : *it) {
    if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
      return Status::invalid_argument(what + ": '" + name + "' must hold non-empty strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

// A message's content: a string, or a list of {"type": "text", "text"} parts.
Result<std::vector<ContentBlock>> text_content(const json& content, const std::string& what) {
  std::vector<ContentBlock> blocks;
  if (content.is_string()) {
    blocks.push_back(ContentBlock::of_text(content.get<std::string>()));
    return blocks;
  }
  if (!content.is_array()) return Status::invalid_argument(what + ": 'content' must be a string or a list of parts");
  for (const json& part : content) {
    if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string()) {
      return Status::invalid_argument(what + ": a content part must be {\"type\": \"text\", \"text\": \"...\"}");
    }
    if (Status s = only_fields(part, {"type", "text"}, what + ": a content part"); !s.ok()) return s;
    blocks.push_back(ContentBlock::of_text(part["text"].get<std::string>()));
  }
  return blocks;
}

Result<Message> parse_message(const json& m, const std::string& what) {
  if (!m.is_object()) return Status::invalid_argument(what + ": must be an object");
  auto role = string_field(m, "role", what, true);
  if (!role.ok()) return role.status();
  Message out;
  out.role = *role;
  if (out.role == "system" || out.role == "user") {
    if (Status s = only_fields(m, {"role", "content"}, what); !s.ok()) return s;
    if (!m.contains("content")) return Status::invalid_argument(what + ": 'content' is required");
    auto blocks = text_content(m["content"], what);
    if (!blocks.ok()) return blocks.status();
    out.content = std::move(blocks).value();
  } else if (out.role == "assistant") {
    if (Status s = only_fields(m, {"role", "content", "tool_calls"}, what); !s.ok()) return s;
    if (m.contains("content")) {
      auto blocks = text_content(m["content"], what);
      if (!blocks.ok()) return blocks.status();
      out.content = std::move(blocks).value();
    }
    if (m.contains("tool_calls")) {
      if (!m["tool_calls"].is_array()) return Status::invalid_argument(what + ": 'tool_calls' must be a list");
      for (const json& c : m["tool_calls"]) {
        const std::string cw = what + ": a tool call";
        if (!c.is_object()) return Status::invalid_argument(cw + " must be an object");
        if (Status s = only_fields(c, {"id", "name", "arguments"}, cw); !s.ok()) return s;
        auto id = string_field(c, "id", cw, true);
        auto name = string_field(c, "name", cw, true);
        if (!id.ok()) return id.status();
        if (!name.ok()) return name.status();
        const json arguments = c.value("arguments", json::object());
        if (!arguments.is_object()) return Status::invalid_argument(cw + ": 'arguments' must be an object");
        out.content.push_back(ContentBlock::of_tool_call(ToolCall{*id, *name, arguments.dump()}));
      }
    }
    if (out.content.empty()) return Status::invalid_argument(what + ": an assistant message needs content or tool_calls");
  } else if (out.role == "tool") {
    if (Status s = only_fields(m, {"role", "content", "tool_call_id", "name"}, what); !s.ok()) return s;
    auto id = string_field(m, "tool_call_id", what, true);
    auto name = string_field(m, "name", what, false);
    if (!id.ok()) return id.status();
    if (!name.ok()) return name.status();
    if (!m.contains("content") || !m["content"].is_string()) {
      return Status::invalid_argument(what + ": a tool message's 'content' must be a string");
    }
    out.content.push_back(ContentBlock::of_tool_result(*id, *name, m["content"].get<std::string>()));
  } else {
    return Status::invalid_argument(what + ": role must be system, user, assistant or tool, not '" + out.role + "'");
  }
  return out;
}

Status parse_request(const json& r, ModelRequest& out, const std::string& where) {
  const std::string what = where + ": request";
  if (!r.is_object()) return Status::invalid_argument(what + " must be an object");
  if (Status s = only_fields(r, {"messages", "tools", "tool_choice", "output_format", "max_output_tokens"}, what);
      !s.ok()) {
    return s;
  }
  if (!r.contains("messages") || !r["messages"].is_array() || r["messages"].empty()) {
    return Status::invalid_argument(what + ": 'messages' must be a non-empty list");
  }
  for (size_t i = 0; i < r["messages"].size(); ++i) {
    auto m = parse_message(r["messages"][i], what + ".messages[" + std::to_string(i) + "]");
    if (!m.ok()) return m.status();
    out.messages.push_back(std::move(m).value());
  }
  if (r.contains("tools")) {
    if (!r["tools"].is_array()) return Status::invalid_argument(what + ": 'tools' must be a list");
    for (size_t i = 0; i < r["tools"].size(); ++i) {
      const json& t = r["tools"][i];
      const std::string tw = what + ".tools[" + std::to_string(i) + "]";
      if (!t.is_object()) return Status::invalid_argument(tw + " must be an object");
      if (Status s = only_fields(t, {"name", "description", "parameters"}, tw); !s.ok()) return s;
      auto name = string_field(t, "name", tw, true);
      auto description = string_field(t, "description", tw, false);
      if (!name.ok()) return name.status();
      if (!description.ok()) return description.status();
      const json parameters = t.value("parameters", json{{"type", "object"}, {"properties", json::object()}});
      if (!parameters.is_object()) return Status::invalid_argument(tw + ": 'parameters' must be a JSON Schema object");
      out.tools.push_back(ToolSpec::of_function(*name, *description, parameters.dump()));
    }
  }
  if (r.contains("tool_choice")) {
    const json& c = r["tool_choice"];
    ToolChoice choice;
    if (c == "auto") {
      choice.mode = ToolChoice::Mode::kAuto;
    } else if (c == "none") {
      choice.mode = ToolChoice::Mode::kNone;
    } else if (c == "required") {
      choice.mode = ToolChoice::Mode::kRequired;
    } else if (c.is_object() && c.size() == 1 && c.contains("name") && c["name"].is_string()) {
      choice.mode = ToolChoice::Mode::kNamed;
      choice.name = c["name"].get<std::string>();
    } else {
      return Status::invalid_argument(what + ": 'tool_choice' must be \"auto\", \"none\", \"required\" or {\"name\": TOOL}");
    }
    out.tool_choice = choice;
  }
  if (r.contains("output_format")) {
    const json& f = r["output_format"];
    const std::string fw = what + ".output_format";
    if (!f.is_object()) return Status::invalid_argument(fw + " must be an object");
    if (Status s = only_fields(f, {"type", "name", "schema", "strict"}, fw); !s.ok()) return s;
    const std::string type = f.value("type", "");
    if (type == "text") {
      out.output_format.type = OutputFormat::Type::kText;
    } else if (type == "json_object") {
      out.output_format.type = OutputFormat::Type::kJsonObject;
    } else if (type == "json_schema") {
      if (!f.contains("schema") || !f["schema"].is_object()) {
        return Status::invalid_argument(fw + ": json_schema needs a 'schema' object");
      }
      out.output_format.type = OutputFormat::Type::kJsonSchema;
      out.output_format.name = f.value("name", "answer");
      out.output_format.schema_json = f["schema"].dump();
      out.output_format.strict = f.value("strict", false);
    } else {
      return Status::invalid_argument(fw + ": 'type' must be text, json_object or json_schema");
    }
  }
  if (r.contains("max_output_tokens")) {
    const json& n = r["max_output_tokens"];
    if (!n.is_number_integer() || n.get<std::int64_t>() < 1 || n.get<std::int64_t>() > 1'000'000) {
      return Status::invalid_argument(what + ": 'max_output_tokens' must be a whole number from 1 to 1000000");
    }
    out.max_output_tokens = n.get<std::int64_t>();
  }
  return Status();
}

Result<Grader> parse_grader(const json& g, const std::string& what) {
  if (!g.is_object()) return Status::invalid_argument(what + " must be an object");
  auto type = string_field(g, "type", what, true);
  if (!type.ok()) return type.status();
  Grader out;
  bool known = false;
  for (size_t i = 0; i < std::size(kGraderNames); ++i) {
    if (*type == kGraderNames[i]) {
      out.kind = static_cast<Grader::Kind>(i);
      known = true;
    }
  }
  if (!known) {
    return Status::invalid_argument(what + ": unknown grader type '" + *type +
                                    "' (exact, contains, regex, json_schema, tool_call, must_not, judge)");
  }
  auto need_text = [&](const char* name) -> Status {
    auto t = string_field(g, name, what, true);
    if (!t.ok()) return t.status();
    if (t->empty()) return Status::invalid_argument(what + ": '" + name + "' must not be empty");
    out.text = *t;
    return Status();
  };
  Status s;
  switch (out.kind) {
    case Grader::Kind::kExact:
    case Grader::Kind::kContains:
      if (s = only_fields(g, {"type", "text", "ignore_case"}, what); !s.ok()) return s;
      if (s = need_text("text"); !s.ok()) return s;
      if (g.contains("ignore_case")) {
        if (!g["ignore_case"].is_boolean()) return Status::invalid_argument(what + ": 'ignore_case' must be true or false");
        out.ignore_case = g["ignore_case"].get<bool>();
      }
      break;
    case Grader::Kind::kRegex:
      if (s = only_fields(g, {"type", "pattern"}, what); !s.ok()) return s;
      if (s = need_text("pattern"); !s.ok()) return s;
      break;
    case Grader::Kind::kJsonSchema:
      if (s = only_fields(g, {"type", "schema"}, what); !s.ok()) return s;
      if (!g.contains("schema") || !g["schema"].is_object()) {
        return Status::invalid_argument(what + ": 'schema' must be a JSON Schema object");
      }
      out.text = g["schema"].dump();
      break;
    case Grader::Kind::kToolCall: {
      if (s = only_fields(g, {"type", "name", "arguments"}, what); !s.ok()) return s;
      auto name = string_field(g, "name", what, true);
      if (!name.ok()) return name.status();
      out.tool = *name;
      if (g.contains("arguments")) {
        if (!g["arguments"].is_object()) return Status::invalid_argument(what + ": 'arguments' must be a JSON Schema object");
        out.arguments_schema = g["arguments"].dump();
      }
      break;
    }
    case Grader::Kind::kMustNot: {
      if (s = only_fields(g, {"type", "contains", "tools"}, what); !s.ok()) return s;
      auto text = string_list(g, "contains", what);
      auto tools = string_list(g, "tools", what);
      if (!text.ok()) return text.status();
      if (!tools.ok()) return tools.status();
      out.forbidden_text = std::move(text).value();
      out.forbidden_tools = std::move(tools).value();
      if (out.forbidden_text.empty() && out.forbidden_tools.empty()) {
        return Status::invalid_argument(what + ": must_not needs 'contains' or 'tools'");
      }
      break;
    }
    case Grader::Kind::kJudge: {
      if (s = only_fields(g, {"type", "model", "rubric", "reference"}, what); !s.ok()) return s;
      auto model = string_field(g, "model", what, true);
      auto rubric = string_field(g, "rubric", what, true);
      auto reference = string_field(g, "reference", what, false);
      if (!model.ok()) return model.status();
      if (!rubric.ok()) return rubric.status();
      if (!reference.ok()) return reference.status();
      out.judge_model = *model;
      out.rubric = *rubric;
      out.reference = *reference;
      break;
    }
  }
  return out;
}

// The case's `step` fields over the derived step: those written win.
Status overlay_step(const json& given, Step& step, const std::string& what) {
  if (!given.is_object()) return Status::invalid_argument(what + ": 'step' must be an object");
  auto parsed = parse_step_json(given.dump());
  if (!parsed.ok()) return Status::invalid_argument(what + ": " + parsed.status().message());
  const Step& s = *parsed;
  for (const auto& [key, value] : given.items()) {
    if (key == "role") step.role = s.role;
    else if (key == "input_tokens") step.input_tokens = s.input_tokens;
    else if (key == "prompt") step.prompt = s.prompt;
    else if (key == "expected_output_tokens") step.expected_output_tokens = s.expected_output_tokens;
    else if (key == "needs_chain_of_thought") step.needs_chain_of_thought = s.needs_chain_of_thought;
    else if (key == "output_must_be_json") step.output_must_be_json = s.output_must_be_json;
    else if (key == "untrusted_input") step.untrusted_input = s.untrusted_input;
    else if (key == "tool_depth") step.tool_depth = s.tool_depth;
    else if (key == "turns") step.turns = s.turns;
    else if (key == "has_tools") step.has_tools = s.has_tools;
    else if (key == "tool_names") step.tool_names = s.tool_names;
    else if (key == "last_tool") step.last_tool = s.last_tool;
    else if (key == "has_images") step.has_images = s.has_images;
    else if (key == "has_documents") step.has_documents = s.has_documents;
    else if (key == "agent") step.agent = s.agent;
    else if (key == "session_id") step.session_id = s.session_id;
    else if (key == "meta") step.meta = s.meta;
    else return Status::invalid_argument(what + ": step field '" + key + "' cannot be set by an eval case");
  }
  return Status();
}

}  // namespace

std::string_view to_string(Grader::Kind k) { return kGraderNames[static_cast<size_t>(k)]; }

Result<EvalCase> parse_eval_case(std::string_view line, std::string_view where) {
  const std::string w(where);
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument(w + ": not valid JSON");
  if (!j.is_object()) return Status::invalid_argument(w + ": a case must be a JSON object");
  if (Status s = only_fields(j, {"id", "step", "request", "graders", "note"}, w); !s.ok()) return s;
  EvalCase c;
  c.source = w;
  auto id = string_field(j, "id", w, true);
  if (!id.ok()) return id.status();
  if (id->empty()) return Status::invalid_argument(w + ": 'id' must not be empty");
  c.id = *id;
  if (!j.contains("request")) return Status::invalid_argument(w + ": 'request' is required");
  if (Status s = parse_request(j["request"], c.request, w); !s.ok()) return s;
  c.step = derive_step(c.request);
  if (j.contains("step")) {
    if (Status s = overlay_step(j["step"], c.step, w); !s.ok()) return s;
  }
  if (!j.contains("graders") || !j["graders"].is_array() || j["graders"].empty()) {
    return Status::invalid_argument(w + ": 'graders' must be a non-empty list");
  }
  for (size_t i = 0; i < j["graders"].size(); ++i) {
    auto g = parse_grader(j["graders"][i], w + ": graders[" + std::to_string(i) + "]");
    if (!g.ok()) return g.status();
    c.graders.push_back(std::move(g).value());
  }
  if (j.contains("note") && !j["note"].is_string()) return Status::invalid_argument(w + ": 'note' must be a string");
  return c;
}

Result<std::vector<EvalCase>> load_eval_set(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error(path + ": cannot open the eval set");
  std::vector<EvalCase> cases;
  std::set<std::string> ids;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    auto c = parse_eval_case(line, where);
    if (!c.ok()) return c.status();
    if (!ids.insert(c->id).second) return Status::invalid_argument(where + ": id '" + c->id + "' is used twice");
    cases.push_back(std::move(c).value());
  }
  if (cases.empty()) return Status::invalid_argument(path + ": the eval set has no case");
  return cases;
}

}  // namespace switchboard
