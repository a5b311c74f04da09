#include "answer_scripts.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace switchboard::testing {

namespace {

using nlohmann::json;

ScriptedAnswer parse_answer(const json& a, const std::string& where) {
  ScriptedAnswer out;
  if (!a.is_object()) throw std::runtime_error(where + ": an answer must be an object");
  if (a.contains("text") == a.contains("tool_call")) {
    throw std::runtime_error(where + ": an answer has either 'text' or 'tool_call'");
  }
  if (a.contains("text")) {
    if (!a["text"].is_string()) throw std::runtime_error(where + ": 'text' must be a string");
    out.text = a["text"].get<std::string>();
    return out;
  }
  const json& call = a["tool_call"];
  if (!call.is_object() || !call.contains("name") || !call["name"].is_string()) {
    throw std::runtime_error(where + ": 'tool_call' needs a 'name'");
  }
  out.tool_name = call["name"].get<std::string>();
  const json arguments = call.value("arguments", json::object());
  if (!arguments.is_object()) throw std::runtime_error(where + ": 'tool_call.arguments' must be an object");
  out.arguments_json = arguments.dump();
  return out;
}

void collect_strings(const json& j, std::string& out) {
  if (j.is_string()) {
    out += j.get_ref<const std::string&>();
    out += '\n';
  } else if (j.is_structured()) {
    for (const json& v : j) collect_strings(v, out);
  }
}

}  // namespace

AnswerScripts AnswerScripts::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open the answer scripts");
  std::stringstream text;
  text << in.rdbuf();
  const json j = json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("models") || !j["models"].is_object()) {
    throw std::runtime_error(path + ": answer scripts are a JSON object with a 'models' object");
  }
  AnswerScripts scripts;
  for (const auto& [name, m] : j["models"].items()) {
    const std::string where = path + ": models." + name;
    if (!m.is_object()) throw std::runtime_error(where + " must be an object");
    Model model;
    if (m.contains("answers")) {
      if (!m["answers"].is_array()) throw std::runtime_error(where + ".answers must be a list");
      for (size_t i = 0; i < m["answers"].size(); ++i) {
        const json& e = m["answers"][i];
        const std::string ew = where + ".answers[" + std::to_string(i) + "]";
        if (!e.is_object() || !e.contains("match") || !e["match"].is_string() || e["match"].get<std::string>().empty()) {
          throw std::runtime_error(ew + ": needs a non-empty 'match'");
        }
        json answer = e;
        answer.erase("match");
        model.answers.push_back(Entry{e["match"].get<std::string>(), parse_answer(answer, ew)});
      }
    }
    if (m.contains("default")) model.fallback = parse_answer(m["default"], where + ".default");
    scripts.models_[name] = std::move(model);
  }
  return scripts;
}

bool AnswerScripts::scripts(std::string_view model) const { return models_.find(model) != models_.end(); }

std::optional<ScriptedAnswer> AnswerScripts::answer(std::string_view model, const json& body) const {
  const auto it = models_.find(model);
  if (it == models_.end()) return std::nullopt;
  std::string conversation;
  for (const char* key : {"system", "systemInstruction", "messages", "contents"}) {
    if (body.contains(key)) collect_strings(body[key], conversation);
  }
  for (const Entry& e : it->second.answers) {
    if (conversation.find(e.match) != std::string::npos) return e.answer;
  }
  return it->second.fallback;
}

}  // namespace switchboard::testing
