// OpenAI Chat Completions (POST {endpoint}/chat/completions), for provider
// "openai" and "openai-compatible". The compatible servers (vLLM, llama.cpp,
// Ollama, gateways) know `max_tokens` but often not `max_completion_tokens`,
// so they get the older name; everything else is the same request.
//
// Streaming asks for stream_options.include_usage: the usage then arrives in
// one last chunk whose `choices` is empty, just before `data: [DONE]`, the
// final event. A stream that reaches [DONE] without usage is an upstream
// error (a server that ignores include_usage): a call is never billed at 0.
#include <map>

#include "switchboard/usage.h"
#include "providers/wire_common.h"
#include "providers/wire_format.h"

namespace switchboard {

namespace {

using wire::json;

// "function_call" is the name the API used before tools.
std::string normalise_finish(const std::string& reason) {
  return reason == "function_call" ? "tool_calls" : reason;
}

class OpenAIStreamDecoder final : public StreamDecoder {
 public:
  explicit OpenAIStreamDecoder(std::string model_id) { response_.model = std::move(model_id); }

  Status on_event(const SseEvent& event, const ChunkHandler& on_chunk) override {
    if (done_) return Status();  // nothing follows [DONE]
    if (event.data == "[DONE]") {
      done_ = true;
      return Status();
    }
    try {
      Result<json> parsed = wire::parse_body(event.data);
      if (!parsed.ok()) return Status::upstream("stream event: " + parsed.status().message());
      const json& chunk = *parsed;
      if (const json* error = wire::object_at(chunk, "error")) {
        // A mid-stream error: the server's own failure is worth a retry.
        const std::string type = wire::string_at(*error, "type");
        const std::string what = "stream error: " + wire::describe_error(*error);
        return type == "server_error" ? Status::unavailable(what) : Status::upstream(what);
      }
      if (std::string model = wire::string_at(chunk, "model"); !model.empty()) response_.model = std::move(model);
      if (const json* usage = wire::object_at(chunk, "usage")) usage_ = *usage;
      const json* choices = wire::array_at(chunk, "choices");
      if (choices == nullptr) return Status();
      for (const json& choice : *choices) {
        if (choice.value("index", 0) != 0) continue;  // one answer only (n = 1)
        if (const json* delta = wire::object_at(choice, "delta")) {
          if (std::string text = wire::string_at(*delta, "content"); !text.empty()) {
            response_.text += text;
            if (on_chunk) on_chunk(StreamChunk{text, false});
          }
          if (const json* calls = wire::array_at(*delta, "tool_calls")) {
            for (const json& call : *calls) {
              // The first delta of a call carries its id and name, later ones
              // pieces of its arguments, all under the call's index.
              ToolCall& acc = tool_calls_[call.value("index", 0)];
              if (std::string id = wire::string_at(call, "id"); !id.empty()) acc.id = std::move(id);
              if (const json* function = wire::object_at(call, "function")) {
                acc.name += wire::string_at(*function, "name");
                acc.arguments_json += wire::string_at(*function, "arguments");
              }
            }
          }
        }
        if (std::string reason = wire::string_at(choice, "finish_reason"); !reason.empty()) {
          response_.finish_reason = normalise_finish(reason);
        }
      }
      return Status();
    } catch (const json::exception& e) {
      return Status::upstream(std::string("stream event: ") + e.what());
    }
  }

  bool done() const override { return done_; }

  Result<ModelResponse> finish() override {
    if (!done_) return Status::unavailable("stream ended before its final event");
    if (usage_.is_null()) {
      return Status::upstream("stream carried no usage (does the server support stream_options.include_usage?)");
    }
    Result<Usage> usage = wire::usage_or_upstream(UsageFormat::kOpenAI, json{{"usage", usage_}});
    if (!usage.ok()) return usage.status();
    response_.usage = *usage;
    for (auto& [index, call] : tool_calls_) response_.tool_calls.push_back(std::move(call));
    return std::move(response_);
  }

 private:
  ModelResponse response_;
  std::map<int, ToolCall> tool_calls_;  // by the delta's index
  json usage_;                          // the last chunk's usage object
  bool done_ = false;
};

class OpenAIWire final : public WireFormat {
 public:
  OpenAIWire(const ModelSpec& model, std::string api_key)
      : model_id_(model.model_id.empty() ? model.name : model.model_id),
        url_(wire::join_url(model.endpoint, "/chat/completions")),
        api_key_(std::move(api_key)),
        compatible_(model.provider == "openai-compatible") {}

  Result<HttpRequest> build_request(const ModelRequest& request, bool stream) const override {
    try {
      json messages = json::array();
      for (std::size_t i = 0; i < request.messages.size(); ++i) {
        const Message& m = request.messages[i];
        const std::string where = "message " + std::to_string(i + 1);
        if (m.role == "system" || m.role == "user") {
          messages.push_back({{"role", m.role}, {"content", m.content}});
        } else if (m.role == "assistant") {
          json message = {{"role", "assistant"}};
          // Content may be null only beside tool calls.
          message["content"] = m.content.empty() && !m.tool_calls.empty() ? json(nullptr) : json(m.content);
          if (!m.tool_calls.empty()) {
            json calls = json::array();
            for (const ToolCall& c : m.tool_calls) {
              calls.push_back({{"id", c.id},
                               {"type", "function"},
                               {"function", {{"name", c.name},
                                             {"arguments", c.arguments_json.empty() ? "{}" : c.arguments_json}}}});
            }
            message["tool_calls"] = std::move(calls);
          }
          messages.push_back(std::move(message));
        } else if (m.role == "tool") {
          messages.push_back({{"role", "tool"}, {"tool_call_id", m.tool_call_id}, {"content", m.content}});
        } else {
          return Status::invalid_argument(where + ": unknown role '" + m.role + "'");
        }
      }
      json body = {{"model", model_id_}, {"messages", std::move(messages)}};
      if (!request.tools.empty()) {
        json tools = json::array();
        for (const ToolSpec& t : request.tools) {
          Result<json> parameters = wire::parse_request_object(t.parameters_json, "tool '" + t.name + "' parameters");
          if (!parameters.ok()) return parameters.status();
          json function = {{"name", t.name}, {"parameters", std::move(*parameters)}};
          if (!t.description.empty()) function["description"] = t.description;
          tools.push_back({{"type", "function"}, {"function", std::move(function)}});
        }
        body["tools"] = std::move(tools);
      }
      if (request.reasoning != Reasoning::kDefault) body["reasoning_effort"] = std::string(to_string(request.reasoning));
      if (request.max_output_tokens) {
        body[compatible_ ? "max_tokens" : "max_completion_tokens"] = *request.max_output_tokens;
      }
      // JSON mode; the API also requires the word "JSON" somewhere in the messages.
      if (request.json_output) body["response_format"] = {{"type", "json_object"}};
      if (stream) {
        body["stream"] = true;
        body["stream_options"] = {{"include_usage", true}};
      }

      HttpRequest http;
      http.url = url_;
      http.headers.emplace_back("Content-Type", "application/json");
      http.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
      if (!api_key_.empty()) http.headers.emplace_back("Authorization", "Bearer " + api_key_);
      http.body = wire::to_text(body);
      return http;
    } catch (const json::exception& e) {
      return Status::internal(std::string("building the request: ") + e.what());
    }
  }

  Result<ModelResponse> parse_response(std::string_view body) const override {
    return wire::read_response(body, UsageFormat::kOpenAI, [&](const json& j, ModelResponse& r) -> Status {
      const json* choices = wire::array_at(j, "choices");
      if (choices == nullptr || choices->empty()) return Status::upstream("body has no 'choices'");
      const json* message = wire::object_at((*choices)[0], "message");
      if (message == nullptr) return Status::upstream("'choices[0]' has no 'message' object");

      r.model = wire::string_at(j, "model");
      if (r.model.empty()) r.model = model_id_;
      r.text = wire::string_at(*message, "content");
      if (const json* calls = wire::array_at(*message, "tool_calls")) {
        for (const json& call : *calls) {
          const json* function = wire::object_at(call, "function");
          if (function == nullptr) return Status::upstream("a tool call has no 'function' object");
          r.tool_calls.push_back(
              {wire::string_at(call, "id"), wire::string_at(*function, "name"), wire::string_at(*function, "arguments")});
        }
      }
      r.finish_reason = normalise_finish(wire::string_at((*choices)[0], "finish_reason"));
      return Status();
    });
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override {
    return std::make_unique<OpenAIStreamDecoder>(model_id_);
  }

 private:
  const std::string model_id_;
  const std::string url_;
  const std::string api_key_;
  const bool compatible_;
};

}  // namespace

std::unique_ptr<WireFormat> make_openai_wire(const ModelSpec& model, std::string api_key) {
  return std::make_unique<OpenAIWire>(model, std::move(api_key));
}

}  // namespace switchboard
