// The client selector and the one place a model's provider picks its adapter.
#include <cstdlib>

#include "providers/http_model_client.h"
#include "providers/http_transport.h"
#include "switchboard/client.h"

namespace switchboard {

void deliver_as_chunks(const ModelResponse& response, const ChunkHandler& on_chunk) {
  if (!on_chunk) return;
  for (std::size_t i = 0; i < response.content.size(); ++i) {
    const ContentBlock& b = response.content[i];
    StreamChunk c;
    c.index = static_cast<int>(i);
    switch (b.type) {
      case ContentBlock::Type::kThinking:
        if (!b.text.empty()) {
          c.kind = StreamChunk::Kind::kThinking;
          c.text = b.text;
          on_chunk(c);
        }
        if (!b.signature.empty()) {
          c.kind = StreamChunk::Kind::kSignature;
          c.text = b.signature;
          on_chunk(c);
        }
        break;
      case ContentBlock::Type::kText:
      case ContentBlock::Type::kRefusal:
        if (!b.text.empty()) {
          c.kind = StreamChunk::Kind::kText;
          c.text = b.text;
          on_chunk(c);
        }
        break;
      case ContentBlock::Type::kToolUse:
        c.kind = StreamChunk::Kind::kToolCallStart;
        c.id = b.tool_call.id;
        c.name = b.tool_call.name;
        on_chunk(c);
        c.kind = StreamChunk::Kind::kToolArguments;
        c.text = b.tool_call.arguments_json;
        on_chunk(c);
        break;
      default:
        break;  // redacted thinking and opaque items have nothing to show as they come
    }
  }
}

Result<ModelResponse> ModelClient::stream(const ModelRequest& request, const ChunkHandler& on_chunk) {
  Result<ModelResponse> r = invoke(request);
  if (r.ok()) deliver_as_chunks(*r, on_chunk);
  return r;
}

namespace {

// One transport for every HTTP client built together, so they share one pool
// of kept-alive connections.
Result<std::shared_ptr<ModelClient>> client_for(const ModelSpec& model, const Config& config,
                                                const std::shared_ptr<HttpTransport>& transport) {
  const std::string provider = config.effective_provider(model);
  if (provider == "sim") return make_sim_client(model, config.sim);
  std::string key;
  if (!model.api_key_env.empty()) {
    const char* value = std::getenv(model.api_key_env.c_str());
    if (value != nullptr) key = value;
  }
  return make_http_client(model, config.calls, std::move(key), transport);
}

}  // namespace

Result<std::shared_ptr<ModelClient>> make_model_client(const ModelSpec& model, const Config& config) {
  return client_for(model, config, std::make_shared<HttpTransport>());
}

Result<ModelClients> ModelClients::from_config(const Config& config) {
  ModelClients clients;
  auto transport = std::make_shared<HttpTransport>();
  for (const auto& [name, model] : config.models) {
    auto client = client_for(model, config, transport);
    if (!client.ok()) return client.status();
    clients.set(name, std::move(client).value());
  }
  return clients;
}

void ModelClients::set(std::string model, std::shared_ptr<ModelClient> client) {
  clients_[std::move(model)] = std::move(client);
}

ModelClient* ModelClients::find(std::string_view model) const {
  auto it = clients_.find(model);
  return it == clients_.end() ? nullptr : it->second.get();
}

}  // namespace switchboard
