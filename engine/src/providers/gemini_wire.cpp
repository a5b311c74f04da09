// Gemini generateContent (POST {endpoint}/models/{model_id}:generateContent;
// streamed: :streamGenerateContent?alt=sse, which sends each chunk as one
// SSE `data:` event).
//
//  - Roles are user and model; system messages are joined into
//    `systemInstruction`. A tool result is a user turn with a
//    functionResponse part, which needs the function's name
//    (Message::tool_name); its `response` is the result when that is a JSON
//    object, else {"result": text}. Consecutive turns of one role are merged
//    (parallel calls' results must share a turn).
//  - reasoning -> generationConfig.thinkingConfig.thinkingBudget, the
//    model's budget for the level; json_output -> responseMimeType.
//  - Thought parts are not part of the answer's text. Function calls come
//    whole, never in pieces; an answer with one finishes as "tool_calls".
//  - A stream's final event is the chunk with a finishReason; its
//    usageMetadata holds the whole call's counts. A prompt blocked outright
//    (promptFeedback.blockReason, no candidates) finishes as content_filter.
#include "switchboard/usage.h"
#include "providers/wire_common.h"
#include "providers/wire_format.h"

namespace switchboard {

namespace {

using wire::json;

std::string normalise_finish(const std::string& reason) {
  if (reason == "STOP") return "stop";
  if (reason == "MAX_TOKENS") return "length";
  if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST" || reason == "PROHIBITED_CONTENT" ||
      reason == "SPII" || reason == "IMAGE_SAFETY") {
    return "content_filter";
  }
  return reason;  // MALFORMED_FUNCTION_CALL, OTHER, ...: the API's own word
}

// What one response (or streamed chunk) says, beside its usage.
struct Candidate {
  std::string text;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;  // the API's word; "" when absent
  bool blocked = false;       // the prompt was refused before any candidate
};

Candidate read_candidate(const json& body) {
  Candidate c;
  const json* candidates = wire::array_at(body, "candidates");
  if (candidates == nullptr || candidates->empty()) {
    if (const json* feedback = wire::object_at(body, "promptFeedback")) {
      c.blocked = !wire::string_at(*feedback, "blockReason").empty();
    }
    return c;
  }
  const json& first = (*candidates)[0];
  if (const json* content = wire::object_at(first, "content")) {
    if (const json* parts = wire::array_at(*content, "parts")) {
      for (const json& part : *parts) {
        if (part.value("thought", false)) continue;
        c.text += wire::string_at(part, "text");
        if (const json* call = wire::object_at(part, "functionCall")) {
          auto args = call->find("args");
          c.tool_calls.push_back({wire::string_at(*call, "id"), wire::string_at(*call, "name"),
                                  args != call->end() ? wire::to_text(*args) : "{}"});
        }
      }
    }
  }
  c.finish_reason = wire::string_at(first, "finishReason");
  return c;
}

// The normalised finish reason of an answer that has `tool_calls`.
std::string finish_of(const std::string& reason, bool has_tool_calls, bool blocked) {
  if (blocked) return "content_filter";
  if (has_tool_calls && reason == "STOP") return "tool_calls";
  return normalise_finish(reason);
}

Status error_status(const json& error, const std::string& prefix) {
  const int code = error.value("code", 0);
  const std::string what = prefix + wire::describe_error(error);
  return code == 429 || code >= 500 ? Status::unavailable(what) : Status::upstream(what);
}

class GeminiStreamDecoder final : public StreamDecoder {
 public:
  explicit GeminiStreamDecoder(std::string model_id) { response_.model = std::move(model_id); }

  Status on_event(const SseEvent& event, const ChunkHandler& on_chunk) override {
    if (done_) return Status();
    try {
      json value = json::parse(event.data, nullptr, /*allow_exceptions=*/false);
      if (value.is_array() && value.size() == 1) value = value[0];  // errors come wrapped
      if (!value.is_object()) return Status::upstream("stream event: not a JSON object");
      if (const json* error = wire::object_at(value, "error")) return error_status(*error, "stream error: ");
      if (std::string model = wire::string_at(value, "modelVersion"); !model.empty()) response_.model = std::move(model);
      if (const json* usage = wire::object_at(value, "usageMetadata")) usage_ = *usage;
      Candidate c = read_candidate(value);
      if (!c.text.empty()) {
        response_.text += c.text;
        if (on_chunk) on_chunk(StreamChunk{c.text, false});
      }
      for (ToolCall& call : c.tool_calls) response_.tool_calls.push_back(std::move(call));
      if (!c.finish_reason.empty() || c.blocked) {
        response_.finish_reason = finish_of(c.finish_reason, !response_.tool_calls.empty(), c.blocked);
        done_ = true;
      }
      return Status();
    } catch (const json::exception& e) {
      return Status::upstream(std::string("stream event: ") + e.what());
    }
  }

  bool done() const override { return done_; }

  Result<ModelResponse> finish() override {
    if (!done_) return Status::unavailable("stream ended before its final event");
    if (usage_.is_null()) return Status::upstream("stream carried no usageMetadata");
    Result<Usage> usage = wire::usage_or_upstream(UsageFormat::kGemini, json{{"usageMetadata", usage_}});
    if (!usage.ok()) return usage.status();
    response_.usage = *usage;
    return std::move(response_);
  }

 private:
  ModelResponse response_;
  json usage_;  // the latest chunk's usageMetadata
  bool done_ = false;
};

class GeminiWire final : public WireFormat {
 public:
  GeminiWire(const ModelSpec& model, std::string api_key)
      : model_id_(model.model_id.empty() ? model.name : model.model_id),
        base_url_(wire::join_url(model.endpoint, "/models/" + model_id_)),
        api_key_(std::move(api_key)),
        budgets_(model.thinking_budget) {}

  Result<HttpRequest> build_request(const ModelRequest& request, bool stream) const override {
    try {
      std::string system;
      json contents = json::array();
      auto append = [&contents](const char* role, json parts) {
        if (parts.empty()) return;
        if (!contents.empty() && contents.back()["role"] == role) {
          for (json& p : parts) contents.back()["parts"].push_back(std::move(p));
        } else {
          contents.push_back({{"role", role}, {"parts", std::move(parts)}});
        }
      };

      for (std::size_t i = 0; i < request.messages.size(); ++i) {
        const Message& m = request.messages[i];
        const std::string where = "message " + std::to_string(i + 1);
        json parts = json::array();
        if (m.role == "system") {
          if (!system.empty()) system += "\n\n";
          system += m.content;
        } else if (m.role == "user") {
          if (!m.content.empty()) parts.push_back({{"text", m.content}});
          append("user", std::move(parts));
        } else if (m.role == "assistant") {
          if (!m.content.empty()) parts.push_back({{"text", m.content}});
          for (const ToolCall& c : m.tool_calls) {
            Result<json> args = wire::parse_request_object(c.arguments_json, where + ": tool call '" + c.name + "' arguments");
            if (!args.ok()) return args.status();
            json call = {{"name", c.name}, {"args", std::move(*args)}};
            if (!c.id.empty()) call["id"] = c.id;
            parts.push_back({{"functionCall", std::move(call)}});
          }
          append("model", std::move(parts));
        } else if (m.role == "tool") {
          if (m.tool_name.empty()) {
            return Status::invalid_argument(where + ": a tool result sent to Gemini needs its tool_name");
          }
          json result = json::parse(m.content, nullptr, /*allow_exceptions=*/false);
          if (result.is_discarded() || !result.is_object()) result = {{"result", m.content}};
          json response = {{"name", m.tool_name}, {"response", std::move(result)}};
          if (!m.tool_call_id.empty()) response["id"] = m.tool_call_id;
          parts.push_back({{"functionResponse", std::move(response)}});
          append("user", std::move(parts));
        } else {
          return Status::invalid_argument(where + ": unknown role '" + m.role + "'");
        }
      }

      json body = {{"contents", std::move(contents)}};
      if (!system.empty()) body["systemInstruction"] = {{"parts", json::array({{{"text", system}}})}};
      if (!request.tools.empty()) {
        json declarations = json::array();
        for (const ToolSpec& t : request.tools) {
          Result<json> parameters = wire::parse_request_object(t.parameters_json, "tool '" + t.name + "' parameters");
          if (!parameters.ok()) return parameters.status();
          json declaration = {{"name", t.name}, {"parameters", std::move(*parameters)}};
          if (!t.description.empty()) declaration["description"] = t.description;
          declarations.push_back(std::move(declaration));
        }
        body["tools"] = json::array({{{"functionDeclarations", std::move(declarations)}}});
      }
      json config = json::object();
      if (request.max_output_tokens) config["maxOutputTokens"] = *request.max_output_tokens;
      if (request.json_output) config["responseMimeType"] = "application/json";
      if (const std::int64_t budget = budgets_.for_level(request.reasoning); budget > 0) {
        config["thinkingConfig"] = {{"thinkingBudget", budget}};
      }
      if (!config.empty()) body["generationConfig"] = std::move(config);

      HttpRequest http;
      http.url = base_url_ + (stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
      http.headers.emplace_back("Content-Type", "application/json");
      http.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
      if (!api_key_.empty()) http.headers.emplace_back("x-goog-api-key", api_key_);
      http.body = wire::to_text(body);
      return http;
    } catch (const json::exception& e) {
      return Status::internal(std::string("building the request: ") + e.what());
    }
  }

  Result<ModelResponse> parse_response(std::string_view body) const override {
    return wire::read_response(body, UsageFormat::kGemini, [&](const json& j, ModelResponse& r) -> Status {
      Candidate c = read_candidate(j);
      if (!c.blocked && wire::array_at(j, "candidates") == nullptr) return Status::upstream("body has no 'candidates'");

      r.model = wire::string_at(j, "modelVersion");
      if (r.model.empty()) r.model = model_id_;
      r.text = std::move(c.text);
      r.tool_calls = std::move(c.tool_calls);
      r.finish_reason = finish_of(c.finish_reason, !r.tool_calls.empty(), c.blocked);
      return Status();
    });
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override {
    return std::make_unique<GeminiStreamDecoder>(model_id_);
  }

 private:
  const std::string model_id_;
  const std::string base_url_;
  const std::string api_key_;
  const ThinkingBudgets budgets_;
};

}  // namespace

std::unique_ptr<WireFormat> make_gemini_wire(const ModelSpec& model, std::string api_key) {
  return std::make_unique<GeminiWire>(model, std::move(api_key));
}

}  // namespace switchboard
