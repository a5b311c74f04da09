#include "providers/capabilities.h"

#include <vector>

namespace switchboard {

namespace {

struct Needs {
  bool images = false;
  bool documents = false;
  bool audio = false;
};

void scan(const std::vector<ContentBlock>& blocks, Needs& needs) {
  for (const ContentBlock& b : blocks) {
    switch (b.type) {
      case ContentBlock::Type::kImage: needs.images = true; break;
      case ContentBlock::Type::kDocument: needs.documents = true; break;
      case ContentBlock::Type::kAudio: needs.audio = true; break;
      case ContentBlock::Type::kToolResult: scan(b.content, needs); break;
      default: break;
    }
  }
}

std::string lacks(const ModelSpec& model, const std::string& what, const char* flag) {
  return "cannot take " + what + " ([models." + model.name + ".capabilities] " + flag + " = false)";
}

}  // namespace

std::string missing_capability(const ModelSpec& model, const ModelRequest& request) {
  const Capabilities& can = model.capabilities;
  Needs needs;
  for (const Message& m : request.messages) scan(m.content, needs);
  if (needs.images && !can.vision) return lacks(model, "image blocks", "vision");
  if (needs.documents && !can.documents) return lacks(model, "document blocks", "documents");
  if (needs.audio && !can.audio) return lacks(model, "audio blocks", "audio");
  const bool wants_tools = !request.tools.empty() && !(request.tool_choice && request.tool_choice->mode == ToolChoice::Mode::kNone);
  if (wants_tools && !can.tools) return lacks(model, "tools", "tools");
  const ReasoningRequest& r = request.reasoning;
  const bool explicit_thinking = (r.budget_tokens && *r.budget_tokens > 0) ||
                                 (!r.budget_tokens && r.effort && *r.effort != Effort::kNone);
  if (explicit_thinking && !can.thinking) return lacks(model, "a reasoning setting", "thinking");
  if (request.output_format.type == OutputFormat::Type::kJsonSchema && !can.json_schema) {
    return lacks(model, "a JSON schema output format", "json_schema");
  }
  return "";
}

}  // namespace switchboard
