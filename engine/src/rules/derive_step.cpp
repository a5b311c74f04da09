// derive_step (switchboard/derive_step.h): a Step read off a ModelRequest's
// conversation. One pass over the messages for the counts and media, one
// backwards for what the step answers; tool names are resolved by call id
// only when a result does not carry its own.
#include "switchboard/derive_step.h"

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "util/name_pattern.h"
#include "util/sha256.h"

namespace switchboard {

namespace {

using Type = ContentBlock::Type;

constexpr std::size_t kAgentHexDigits = 12;
constexpr std::size_t kSessionHexDigits = 16;

bool carries_results(const Message& m) {
  for (const ContentBlock& b : m.content) {
    if (b.type == Type::kToolResult) return true;
  }
  return false;
}

bool user_authored(const Message& m) { return m.role == "user" && !m.content.empty() && !carries_results(m); }

// The tools of the results in `request`, by the id of the call they answer:
// filled on the first result that does not name its tool.
class ToolNames {
 public:
  explicit ToolNames(const ModelRequest& request) : request_(request) {}

  std::string_view of(const ContentBlock& result) {
    if (!result.tool_name.empty()) return result.tool_name;
    if (!indexed_) {
      indexed_ = true;
      for (const Message& m : request_.messages) {
        for (const ContentBlock& b : m.content) {
          if (b.type == Type::kToolUse && !b.tool_call.id.empty()) by_id_.emplace(b.tool_call.id, b.tool_call.name);
        }
      }
    }
    auto it = by_id_.find(result.tool_use_id);
    return it == by_id_.end() ? std::string_view() : it->second;
  }

 private:
  const ModelRequest& request_;
  bool indexed_ = false;
  std::unordered_map<std::string_view, std::string_view> by_id_;
};

// Marks the media in `blocks`; `in_result`: they are a tool result's content.
void scan_media(const std::vector<ContentBlock>& blocks, bool in_result, Step& step, bool& media_in_result) {
  for (const ContentBlock& b : blocks) {
    if (b.type == Type::kImage || b.type == Type::kDocument) {
      (b.type == Type::kImage ? step.has_images : step.has_documents) = true;
      media_in_result = media_in_result || in_result;
    } else if (b.type == Type::kToolResult) {
      scan_media(b.content, true, step, media_in_result);
    }
  }
}

// The agent and session ids (derive_step.h): the agent hashes the "system"
// messages' text joined by "\n"; the session hashes that text, a '\x1e'
// and the first user-authored message's text. One running hash serves both,
// so a long system prompt is read once; a message's text (Message::text(),
// its text blocks joined) is hashed block by block, not joined first.
void identify(const std::vector<Message>& messages, Step& step) {
  detail::Sha256 hash;
  const auto update_text = [&hash](const Message& m) {
    bool any_text = false;
    for (const ContentBlock& b : m.content) {
      if (b.type != Type::kText) continue;
      hash.update(b.text);
      any_text = any_text || !b.text.empty();
    }
    return any_text;
  };
  bool any = false;  // any system text at all
  bool first = true;
  for (const Message& m : messages) {
    if (m.role != "system") continue;
    if (!first) hash.update("\n");
    const bool any_text = update_text(m);
    any = any || !first || any_text;
    first = false;
  }
  if (any) {
    step.agent.assign(kAgentHexDigits, '0');
    hash.write_hex(step.agent.data(), kAgentHexDigits);
  }
  for (const Message& m : messages) {
    if (!user_authored(m)) continue;
    hash.update("\x1e");
    update_text(m);
    step.session_id.assign(2 + kSessionHexDigits, '-');
    step.session_id[0] = 'h';
    hash.write_hex(step.session_id.data() + 2, kSessionHexDigits);
    return;
  }
}

}  // namespace

Step derive_step(const ModelRequest& request, const Workload* workload) {
  const std::vector<Message>& messages = request.messages;
  Step step;
  step.role = "chat";
  step.input_tokens = request.counted_input_tokens ? *request.counted_input_tokens : estimate_input_tokens(request);
  step.expected_output_tokens = request.expected_output_tokens;

  // The conversation since the last user-authored message starts at `since`.
  std::size_t since = 0;
  bool media_in_result = false;
  for (std::size_t i = 0; i < messages.size(); ++i) {
    if (user_authored(messages[i])) {
      ++step.turns;
      since = i + 1;
    }
    scan_media(messages[i].content, false, step, media_in_result);
  }

  ToolNames names(request);
  std::unordered_set<std::string_view> used;  // the tools answered since
  for (std::size_t i = since; i < messages.size(); ++i) {
    if (!carries_results(messages[i])) continue;
    if (i == since || !carries_results(messages[i - 1])) ++step.tool_depth;
    for (const ContentBlock& b : messages[i].content) {
      if (b.type != Type::kToolResult) continue;
      used.insert(names.of(b));
    }
  }

  // What this step answers: the last result after the last assistant message.
  for (std::size_t i = messages.size(); i-- > since;) {
    const Message& m = messages[i];
    if (m.role == "assistant") break;
    const ContentBlock* last = nullptr;
    for (const ContentBlock& b : m.content) {
      if (b.type == Type::kToolResult) last = &b;
    }
    if (last != nullptr) {
      step.last_tool = std::string(names.of(*last));
      break;
    }
  }

  step.untrusted_input = media_in_result;
  if (!step.untrusted_input && workload != nullptr && !used.empty()) {
    for (const std::string& entry : workload->untrusted_tools) {
      const std::optional<detail::NamePattern> pattern = detail::NamePattern::compile(entry);
      for (std::string_view name : used) {
        // An entry load_config would refuse (a hand-built Workload's) matches its own name only.
        if (!name.empty() && (pattern ? pattern->matches(name) : name == entry)) {
          step.untrusted_input = true;
          break;
        }
      }
      if (step.untrusted_input) break;
    }
  }

  step.has_tools = !request.tools.empty();
  for (const ToolSpec& t : request.tools) {
    if (t.opaque_json.empty() && !t.name.empty()) step.tool_names.push_back(t.name);
  }
  step.output_must_be_json = request.output_format.type != OutputFormat::Type::kText;
  const ReasoningRequest& r = request.reasoning;
  step.needs_chain_of_thought = (r.effort && *r.effort != Effort::kNone && *r.effort != Effort::kMinimal) ||
                                (r.budget_tokens && *r.budget_tokens > 0);
  identify(messages, step);
  return step;
}

}  // namespace switchboard
