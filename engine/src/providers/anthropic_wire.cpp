// Anthropic Messages API (POST {endpoint}/v1/messages, anthropic-version
// 2023-06-01).
//
//  - System messages are joined into the top-level `system`.
//  - `max_tokens` is required: the request's max_output_tokens, else the
//    model's default_output_tokens. With reasoning, `thinking.budget_tokens`
//    is the model's budget for the level and must stay below max_tokens, so
//    the budget is added to max_tokens: the answer keeps its full allowance.
//  - Tool results are user messages of tool_result blocks; consecutive
//    messages of one role are merged into one (parallel tool results must
//    share a message).
//  - json_output: the API has no JSON mode, so an instruction to answer with
//    one JSON object is appended to the system prompt. It is a request, not a
//    guarantee; callers that need JSON still validate it.
//  - Thinking blocks are not part of the answer's text. A stream's usage is
//    message_start's usage overlaid with message_delta's, whose counts are
//    cumulative (output_tokens always, input and cache counts when present).
#include <map>

#include "switchboard/usage.h"
#include "providers/wire_common.h"
#include "providers/wire_format.h"

namespace switchboard {

namespace {

using wire::json;

constexpr const char* kApiVersion = "2023-06-01";
constexpr const char* kJsonInstruction =
    "Answer with a single JSON object and nothing else: no prose, no code fences.";

std::string normalise_stop(const std::string& reason) {
  if (reason == "end_turn" || reason == "stop_sequence") return "stop";
  if (reason == "max_tokens") return "length";
  if (reason == "tool_use") return "tool_calls";
  if (reason == "refusal") return "content_filter";
  return reason;  // pause_turn and whatever comes next, as the API says it
}

// Overloaded and internal errors are the API's 529 and 500: worth a retry.
Status error_status(const json& error, const std::string& prefix) {
  const std::string type = wire::string_at(error, "type");
  const std::string what = prefix + wire::describe_error(error);
  return type == "overloaded_error" || type == "api_error" ? Status::unavailable(what) : Status::upstream(what);
}

class AnthropicStreamDecoder final : public StreamDecoder {
 public:
  explicit AnthropicStreamDecoder(std::string model_id) { response_.model = std::move(model_id); }

  Status on_event(const SseEvent& event, const ChunkHandler& on_chunk) override {
    if (done_) return Status();
    try {
      Result<json> parsed = wire::parse_body(event.data);
      if (!parsed.ok()) return Status::upstream("stream event '" + event.type + "': " + parsed.status().message());
      const json& e = *parsed;
      // The data's own type names the event (the SSE `event:` line repeats it).
      const std::string type = e.contains("type") ? wire::string_at(e, "type") : event.type;
      if (type == "message_start") {
        if (const json* message = wire::object_at(e, "message")) {
          if (std::string model = wire::string_at(*message, "model"); !model.empty()) response_.model = std::move(model);
          if (const json* usage = wire::object_at(*message, "usage")) overlay_usage(*usage);
        }
      } else if (type == "content_block_start") {
        const json* block = wire::object_at(e, "content_block");
        if (block != nullptr && wire::string_at(*block, "type") == "tool_use") {
          ToolCall& call = tool_calls_[e.value("index", 0)];
          call.id = wire::string_at(*block, "id");
          call.name = wire::string_at(*block, "name");
        } else if (block != nullptr && wire::string_at(*block, "type") == "text") {
          deliver(wire::string_at(*block, "text"), on_chunk);
        }
      } else if (type == "content_block_delta") {
        const json* delta = wire::object_at(e, "delta");
        const std::string kind = delta != nullptr ? wire::string_at(*delta, "type") : "";
        if (kind == "text_delta") {
          deliver(wire::string_at(*delta, "text"), on_chunk);
        } else if (kind == "input_json_delta") {
          tool_calls_[e.value("index", 0)].arguments_json += wire::string_at(*delta, "partial_json");
        }
        // thinking_delta and signature_delta are not part of the answer.
      } else if (type == "message_delta") {
        if (const json* delta = wire::object_at(e, "delta")) {
          if (std::string reason = wire::string_at(*delta, "stop_reason"); !reason.empty()) {
            response_.finish_reason = normalise_stop(reason);
          }
        }
        if (const json* usage = wire::object_at(e, "usage")) overlay_usage(*usage);
      } else if (type == "message_stop") {
        done_ = true;
      } else if (type == "error") {
        const json* error = wire::object_at(e, "error");
        return error_status(error != nullptr ? *error : e, "stream error: ");
      }
      // ping, content_block_stop and event types added later need nothing.
      return Status();
    } catch (const json::exception& ex) {
      return Status::upstream("stream event '" + event.type + "': " + ex.what());
    }
  }

  bool done() const override { return done_; }

  Result<ModelResponse> finish() override {
    if (!done_) return Status::unavailable("stream ended before its final event");
    if (usage_.is_null()) return Status::upstream("stream carried no usage");
    Result<Usage> usage = wire::usage_or_upstream(UsageFormat::kAnthropic, json{{"usage", usage_}});
    if (!usage.ok()) return usage.status();
    response_.usage = *usage;
    for (auto& [index, call] : tool_calls_) {
      if (call.arguments_json.empty()) call.arguments_json = "{}";  // a call without arguments streams none
      response_.tool_calls.push_back(std::move(call));
    }
    return std::move(response_);
  }

 private:
  void deliver(const std::string& text, const ChunkHandler& on_chunk) {
    if (text.empty()) return;
    response_.text += text;
    if (on_chunk) on_chunk(StreamChunk{text, false});
  }

  // Later counts replace earlier ones, key by key; a null count says nothing.
  void overlay_usage(const json& usage) {
    if (usage_.is_null()) usage_ = json::object();
    for (const auto& [key, value] : usage.items()) {
      if (!value.is_null()) usage_[key] = value;
    }
  }

  ModelResponse response_;
  std::map<int, ToolCall> tool_calls_;  // by content block index
  json usage_;
  bool done_ = false;
};

class AnthropicWire final : public WireFormat {
 public:
  AnthropicWire(const ModelSpec& model, std::string api_key)
      : model_id_(model.model_id.empty() ? model.name : model.model_id),
        url_(wire::join_url(model.endpoint, "/v1/messages")),
        api_key_(std::move(api_key)),
        default_output_tokens_(model.default_output_tokens),
        budgets_(model.thinking_budget) {}

  Result<HttpRequest> build_request(const ModelRequest& request, bool stream) const override {
    try {
      std::string system;
      json messages = json::array();
      // Appends `blocks` as a `role` message, or to the last one if it has that role.
      auto append = [&messages](const char* role, json blocks) {
        if (blocks.empty()) return;  // the API refuses empty content
        if (!messages.empty() && messages.back()["role"] == role) {
          for (json& b : blocks) messages.back()["content"].push_back(std::move(b));
        } else {
          messages.push_back({{"role", role}, {"content", std::move(blocks)}});
        }
      };
      auto text_block = [](const std::string& text) { return json{{"type", "text"}, {"text", text}}; };

      for (std::size_t i = 0; i < request.messages.size(); ++i) {
        const Message& m = request.messages[i];
        const std::string where = "message " + std::to_string(i + 1);
        json blocks = json::array();
        if (m.role == "system") {
          if (!system.empty()) system += "\n\n";
          system += m.content;
          continue;
        }
        if (m.role == "user") {
          if (!m.content.empty()) blocks.push_back(text_block(m.content));
          append("user", std::move(blocks));
        } else if (m.role == "assistant") {
          if (!m.content.empty()) blocks.push_back(text_block(m.content));
          for (const ToolCall& c : m.tool_calls) {
            Result<json> input = wire::parse_request_object(c.arguments_json, where + ": tool call '" + c.name + "' arguments");
            if (!input.ok()) return input.status();
            blocks.push_back({{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", std::move(*input)}});
          }
          append("assistant", std::move(blocks));
        } else if (m.role == "tool") {
          blocks.push_back({{"type", "tool_result"}, {"tool_use_id", m.tool_call_id}, {"content", m.content}});
          append("user", std::move(blocks));
        } else {
          return Status::invalid_argument(where + ": unknown role '" + m.role + "'");
        }
      }
      if (request.json_output) {
        if (!system.empty()) system += "\n\n";
        system += kJsonInstruction;
      }

      std::int64_t max_tokens = request.max_output_tokens.value_or(default_output_tokens_);
      json body = {{"model", model_id_}, {"max_tokens", max_tokens}, {"messages", std::move(messages)}};
      if (!system.empty()) body["system"] = system;
      if (!request.tools.empty()) {
        json tools = json::array();
        for (const ToolSpec& t : request.tools) {
          Result<json> schema = wire::parse_request_object(t.parameters_json, "tool '" + t.name + "' parameters");
          if (!schema.ok()) return schema.status();
          json tool = {{"name", t.name}, {"input_schema", std::move(*schema)}};
          if (!t.description.empty()) tool["description"] = t.description;
          tools.push_back(std::move(tool));
        }
        body["tools"] = std::move(tools);
      }
      if (const std::int64_t budget = budgets_.for_level(request.reasoning); budget > 0) {
        body["thinking"] = {{"type", "enabled"}, {"budget_tokens", budget}};
        body["max_tokens"] = max_tokens + budget;
      }
      if (stream) body["stream"] = true;

      HttpRequest http;
      http.url = url_;
      http.headers.emplace_back("Content-Type", "application/json");
      http.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
      http.headers.emplace_back("anthropic-version", kApiVersion);
      if (!api_key_.empty()) http.headers.emplace_back("x-api-key", api_key_);
      http.body = wire::to_text(body);
      return http;
    } catch (const json::exception& e) {
      return Status::internal(std::string("building the request: ") + e.what());
    }
  }

  Result<ModelResponse> parse_response(std::string_view body) const override {
    return wire::read_response(body, UsageFormat::kAnthropic, [&](const json& j, ModelResponse& r) -> Status {
      const json* content = wire::array_at(j, "content");
      if (content == nullptr) return Status::upstream("body has no 'content' array");

      r.model = wire::string_at(j, "model");
      if (r.model.empty()) r.model = model_id_;
      for (const json& block : *content) {
        const std::string type = wire::string_at(block, "type");
        if (type == "text") {
          r.text += wire::string_at(block, "text");
        } else if (type == "tool_use") {
          auto input = block.find("input");
          r.tool_calls.push_back({wire::string_at(block, "id"), wire::string_at(block, "name"),
                                  input != block.end() ? wire::to_text(*input) : "{}"});
        }
        // thinking and redacted_thinking blocks are not the answer.
      }
      r.finish_reason = normalise_stop(wire::string_at(j, "stop_reason"));
      return Status();
    });
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override {
    return std::make_unique<AnthropicStreamDecoder>(model_id_);
  }

 private:
  const std::string model_id_;
  const std::string url_;
  const std::string api_key_;
  const std::int64_t default_output_tokens_;
  const ThinkingBudgets budgets_;
};

}  // namespace

std::unique_ptr<WireFormat> make_anthropic_wire(const ModelSpec& model, std::string api_key) {
  return std::make_unique<AnthropicWire>(model, std::move(api_key));
}

}  // namespace switchboard
