/// @file
/// The rule API page: every field a rules file reads from `step` and `ctx`
/// (and what ctx's metatable reaches: `ctx.models[name]`, `ctx.price`,
/// `ctx.cost`), and every field `classify` may return, each with its Lua
/// type, when it is present, a description and an example. Rendered from the
/// table the sandbox itself takes its names from, so the page cannot drift
/// from the engine. `switchboard rules-api` prints it; docs/rules-api.md is
/// its Markdown, checked by a test.
#pragma once

#include <string>

namespace switchboard {

/// The page in Markdown: one section per table (step, ctx, ctx.models[name],
/// ctx.price(name), ctx.cost(...), classify's return value), one row per field.
/// The same text on every call.
std::string rules_api_markdown();

/// The same fields as one JSON object, for machines:
/// `{"sections": [{"name", "title", "about", "fields": [{"path", "type",
/// "types", "shape", "present", "description", "example"}]}]}`. `type` is as
/// the page writes it ("integer or nil"); `types` lists the Lua types the value
/// may have, out of "nil", "boolean", "integer", "float", "string", "table",
/// "function" and "userdata".
std::string rules_api_json();

}  // namespace switchboard
