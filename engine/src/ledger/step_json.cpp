// Steps from JSON (one STEPS.jsonl line). nlohmann::json is called only here
// in the engine; its exceptions stop here.
#include <cstdint>
#include <type_traits>
#include <variant>

#include <nlohmann/json.hpp>

#include "switchboard/step.h"
#include "util/json_writer.h"

namespace switchboard {

namespace {

constexpr std::int64_t kMaxTokens = 100'000'000;

Status field_error(const std::string& field, const std::string& what) {
  return Status::invalid_argument("step field '" + field + "' " + what);
}

}  // namespace

Result<Step> parse_step_json(std::string_view text) {
  // ordered: meta keeps the order it was written in (step_to_json writes it back so).
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::invalid_argument("not valid JSON");
  if (!j.is_object()) return Status::invalid_argument("a step must be a JSON object");
  Step step;
  for (const auto& [key, value] : j.items()) {
    auto tokens = [&](std::optional<std::int64_t>& into) -> Status {
      if (!value.is_number_integer()) return field_error(key, "must be a whole number");
      const std::int64_t n = value.get<std::int64_t>();
      if (n < 0 || n > kMaxTokens) return field_error(key, "must be between 0 and 100000000");
      into = n;
      return Status();
    };
    auto flag = [&](bool& into) -> Status {
      if (!value.is_boolean()) return field_error(key, "must be true or false");
      into = value.get<bool>();
      return Status();
    };
    Status s;
    if (key == "role") {
      if (!value.is_string()) return field_error(key, "must be a string");
      step.role = value.get<std::string>();
    } else if (key == "prompt") {
      if (!value.is_string()) return field_error(key, "must be a string");
      step.prompt = value.get<std::string>();
    } else if (key == "input_tokens") {
      s = tokens(step.input_tokens);
    } else if (key == "expected_output_tokens") {
      s = tokens(step.expected_output_tokens);
    } else if (key == "needs_chain_of_thought") {
      s = flag(step.needs_chain_of_thought);
    } else if (key == "output_must_be_json") {
      s = flag(step.output_must_be_json);
    } else if (key == "untrusted_input") {
      s = flag(step.untrusted_input);
    } else if (key == "tool_depth" || key == "turns") {
      std::optional<std::int64_t> count;
      s = tokens(count);
      if (s.ok()) (key == "turns" ? step.turns : step.tool_depth) = *count;
    } else if (key == "has_tools") {
      s = flag(step.has_tools);
    } else if (key == "has_images") {
      s = flag(step.has_images);
    } else if (key == "has_documents") {
      s = flag(step.has_documents);
    } else if (key == "last_tool" || key == "agent" || key == "session_id") {
      if (!value.is_string()) return field_error(key, "must be a string");
      (key == "agent" ? step.agent : key == "session_id" ? step.session_id : step.last_tool) = value.get<std::string>();
    } else if (key == "tool_names") {
      if (!value.is_array()) return field_error(key, "must be an array of strings");
      for (const auto& name : value) {
        if (!name.is_string()) return field_error(key, "must be an array of strings");
        step.tool_names.push_back(name.get<std::string>());
      }
    } else if (key == "meta") {
      if (!value.is_object()) return field_error(key, "must be an object");
      for (const auto& [mk, mv] : value.items()) {
        if (mv.is_string()) {
          step.meta.emplace_back(mk, mv.get<std::string>());
        } else if (mv.is_boolean()) {
          step.meta.emplace_back(mk, mv.get<bool>());
        } else if (mv.is_number_unsigned() &&
                   mv.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
          // Beyond int64: a float, not a wrapped negative integer.
          step.meta.emplace_back(mk, mv.get<double>());
        } else if (mv.is_number_integer()) {
          step.meta.emplace_back(mk, mv.get<std::int64_t>());
        } else if (mv.is_number()) {
          step.meta.emplace_back(mk, mv.get<double>());
        } else {
          return field_error("meta." + mk, "must be a string, number or boolean");
        }
      }
    } else {
      return Status::invalid_argument("unknown step field '" + key +
                                      "' (extra fields go under \"meta\")");
    }
    if (!s.ok()) return s;
  }
  if (step.role.empty()) return Status::invalid_argument("step has no 'role'");
  return step;
}

std::string step_to_json(const Step& step) {
  // A fixed field order, and meta in the caller's order. Invalid UTF-8 in a
  // prompt or meta string is replaced, never a throw.
  std::string out;
  JsonWriter w(out);
  w.string("role", step.role);
  if (step.input_tokens) w.integer("input_tokens", *step.input_tokens);
  if (step.prompt) w.string("prompt", *step.prompt);
  if (step.expected_output_tokens) w.integer("expected_output_tokens", *step.expected_output_tokens);
  if (step.needs_chain_of_thought) w.boolean("needs_chain_of_thought", true);
  if (step.output_must_be_json) w.boolean("output_must_be_json", true);
  if (step.untrusted_input) w.boolean("untrusted_input", true);
  if (step.tool_depth != 0) w.integer("tool_depth", step.tool_depth);
  if (step.turns != 0) w.integer("turns", step.turns);
  if (step.has_tools) w.boolean("has_tools", true);
  if (!step.tool_names.empty()) w.strings("tool_names", step.tool_names);
  if (!step.last_tool.empty()) w.string("last_tool", step.last_tool);
  if (step.has_images) w.boolean("has_images", true);
  if (step.has_documents) w.boolean("has_documents", true);
  if (!step.agent.empty()) w.string("agent", step.agent);
  if (!step.session_id.empty()) w.string("session_id", step.session_id);
  if (!step.meta.empty()) {
    // Meta names are the caller's: escaped as values are, so written as raw keys here.
    std::string meta;
    meta += '{';
    for (size_t i = 0; i < step.meta.size(); ++i) {
      if (i > 0) meta += ',';
      JsonWriter::append_string(meta, step.meta[i].first);
      meta += ':';
      std::visit(
          [&](const auto& v) {
            using V = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<V, std::string>) {
              JsonWriter::append_string(meta, v);
            } else {
              meta += nlohmann::ordered_json(v).dump();
            }
          },
          step.meta[i].second);
    }
    meta += '}';
    w.raw("meta", meta);
  }
  w.end();
  return out;
}

}  // namespace switchboard
