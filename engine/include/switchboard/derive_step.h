/// @file
/// Steps derived from the conversation: what a ModelRequest itself says about
/// the step it is (derive_step), for hosts whose callers label nothing, and
/// the engine's count of a request's input tokens (estimate_input_tokens).
#pragma once

#include <cstdint>

#include "switchboard/config.h"
#include "switchboard/request.h"
#include "switchboard/step.h"

namespace switchboard {

/// The input tokens of `request` as the engine estimates them: estimate_tokens()
/// of each piece of text the model is sent, each rounded up, so over rather
/// than under: text, reasoning and refusal blocks, a tool call's name and
/// arguments, a tool result's content, a provider's opaque item, and each
/// tool's name, description and parameters schema (or a provider tool's
/// definition). Media count nothing: their cost is the provider's to say.
std::int64_t estimate_input_tokens(const ModelRequest& request);

/// The step `request` is, as far as its conversation says. `workload` (may be
/// null) supplies Workload::untrusted_tools.
///
/// A *user-authored* message is a "user" message with at least one block and
/// no tool result: an Anthropic-shaped "user" message of tool results answers
/// tool calls, even when text follows the results (agents append reminders
/// there). A *tool round-trip* is a run of consecutive messages that carry
/// tool results (an OpenAI-shaped run of "tool" messages answering one
/// assistant message, or one Anthropic-shaped "user" message of results).
/// A tool result's tool is its `tool_name`, else the name on the assistant's
/// tool use block whose id it answers.
///
/// The fields:
///  - role: "chat" (the conversation does not say); prompt unset; meta empty;
///  - input_tokens: request.counted_input_tokens when set, else
///    estimate_input_tokens(request); expected_output_tokens: request's;
///  - turns: user-authored messages in the conversation;
///  - tool_depth: tool round-trips after the last user-authored message (all
///    of them when there is none);
///  - last_tool: the tool of the last result in the messages that end the
///    conversation after its last assistant or user-authored message (the
///    result this step answers); "" when they carry none;
///  - untrusted_input: a tool result after the last user-authored message is
///    from a tool that an entry of untrusted_tools matches (its name, or its
///    pattern matching the whole tool name: config.h), or any tool result in
///    the request carries an image or a document;
///  - has_tools: request.tools is not empty; tool_names: the names of its
///    function tools, in order (a provider's own tools have none);
///  - has_images, has_documents: an image / a document block anywhere in the
///    messages, tool results included;
///  - output_must_be_json: request.output_format is a JSON object or schema;
///  - needs_chain_of_thought: request.reasoning has an explicit effort other
///    than none or minimal, or a thinking budget above 0;
///  - agent: the first 12 hex digits of the SHA-256 of the "system" messages'
///    text (each message's text blocks joined, messages joined by "\n"): the
///    same system prompt gives the same value, so rules can tell apart the
///    agents that call them; "" without a system prompt;
///  - session_id: "h-" + the first 16 hex digits of the SHA-256 of the
///    system prompt (as for `agent`) and the text of the first user-authored
///    message (its text blocks joined), separated by "\x1e". An agent re-sends
///    its conversation every turn, and the opening of that conversation does
///    not change from turn to turn: its turns land in one session without
///    the agent doing anything. Two conversations that open alike (the same
///    system prompt and first question) share a session, which only merges
///    their cache figures; a caller that knows better names its session (the
///    gateway's x-switchboard-session header or metadata.session_id). ""
///    when the conversation has no user-authored message.
///
/// Precedence is the caller's: derive first, then set what the caller knows
/// better (the gateway applies the request's metadata, then its
/// x-switchboard-* headers, over the derived step). Thread-safe; reads only
/// its arguments.
Step derive_step(const ModelRequest& request, const Workload* workload = nullptr);

}  // namespace switchboard
