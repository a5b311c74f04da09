// AnswerScripts: scripted answers per model for the fake provider, so an
// eval set runs offline against models of known correctness (a "strong" and
// a "weak" one, say). A script file is one JSON object:
//
//   {"models": {"MODEL": {"answers": [{"match": "TEXT", "text": "ANSWER"},
//                                     {"match": "TEXT", "tool_call": {"name": "T", "arguments": {...}}}],
//                         "default": {"text": "ANSWER"}}}}
//
// A request for MODEL gets the first answer whose `match` occurs in the
// text of its conversation (every string under the body's messages,
// system, contents and systemInstruction), else `default`; with neither, the
// request fails (500, "no scripted answer"), so a test never passes on an
// answer nobody wrote. A model the file does not name answers as usual.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace switchboard::testing {

// One scripted answer: text, or a tool call.
struct ScriptedAnswer {
  std::string text;            // "" when it calls a tool
  std::string tool_name;       // "" unless it calls a tool
  std::string arguments_json;  // the call's arguments, a JSON object
};

class AnswerScripts {
 public:
  // Reads `path`; throws std::runtime_error naming the file and the problem.
  static AnswerScripts load(const std::string& path);

  // Whether `model` is scripted.
  bool scripts(std::string_view model) const;
  // The answer `model` gives to `body` (see the file comment); nullopt when
  // it is scripted and nothing matches (or it is not scripted).
  std::optional<ScriptedAnswer> answer(std::string_view model, const nlohmann::json& body) const;

 private:
  struct Entry {
    std::string match;
    ScriptedAnswer answer;
  };
  struct Model {
    std::vector<Entry> answers;
    std::optional<ScriptedAnswer> fallback;
  };
  std::map<std::string, Model, std::less<>> models_;
};

}  // namespace switchboard::testing
