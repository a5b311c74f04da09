/// @file
/// Step: what the caller knows about one agent step before choosing a model.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "switchboard/status.h"

namespace switchboard {

/// A value under step.meta: the caller's own fields, passed to the rules as-is.
using MetaValue = std::variant<std::string, std::int64_t, double, bool>;

/// What the caller knows about one agent step before choosing a model; the rules see it as `step`.
struct Step {
  std::string role;                                ///< "plan", "format", "summarize", ...
  std::optional<std::int64_t> input_tokens;        ///< counted by the caller, if known
  std::optional<std::string> prompt;               ///< text, when tokens are not counted
  std::optional<std::int64_t> expected_output_tokens;  ///< the caller's expectation of the answer's length
  bool needs_chain_of_thought = false;           ///< the caller's flag, passed to the rules as-is
  bool output_must_be_json = false;              ///< the caller's flag, passed to the rules as-is
  bool untrusted_input = false;                  ///< the caller's flag, passed to the rules as-is
  std::int64_t tool_depth = 0;                   ///< how deep in tool calls the step is
  // What the conversation says (derive_step.h derives them from a request;
  // a caller may set them as well).
  std::int64_t turns = 0;                        ///< user-authored messages in the conversation
  bool has_tools = false;                        ///< the model is offered tools
  std::vector<std::string> tool_names;           ///< the tools offered, by name, in order
  std::string last_tool;                         ///< the tool whose result the step answers ("" none)
  bool has_images = false;                       ///< the conversation carries an image
  bool has_documents = false;                    ///< the conversation carries a document
  std::string agent;                             ///< which agent asks: a system prompt's fingerprint ("" none)
  /// The conversation the step belongs to (sessions.h): the caller's id, or
  /// derive_step's hash of the conversation's opening; "" for a step of no
  /// session (the rules then see ctx.session = nil).
  std::string session_id;
  std::vector<std::pair<std::string, MetaValue>> meta;  ///< names are unique
};

/// Tokens in `text`, estimated conservatively (over rather than under): one
/// token per three bytes, rounded up. What the engine counts when a step
/// carries a prompt but no input_tokens.
std::int64_t estimate_tokens(std::string_view text);

/// Parses one step from a JSON object (the STEPS.jsonl line format). Unknown
/// fields and wrong types are errors naming the field.
Result<Step> parse_step_json(std::string_view json);

/// The inverse: one line of JSON in the same format (fields left at their
/// defaults are omitted; meta keeps its order). parse_step_json reads it back
/// to an equal Step.
std::string step_to_json(const Step& step);

}  // namespace switchboard
