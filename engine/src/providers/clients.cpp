// The client selector and the one place a model's provider picks its adapter.
#include <cstdlib>

#include "cost/estimate.h"
#include "providers/http_model_client.h"
#include "providers/http_transport.h"
#include "switchboard/client.h"
#include "switchboard/derive_step.h"

namespace switchboard {

void deliver_as_chunks(const ModelResponse& response, const ChunkHandler& on_chunk) {
  if (!on_chunk) return;
  using Kind = StreamChunk::Kind;
  on_chunk(StreamChunk::of(Kind::kStart, 0, {}));
  for (std::size_t i = 0; i < response.content.size(); ++i) {
    const ContentBlock& b = response.content[i];
    const int index = static_cast<int>(i);
    const auto send = [&](Kind kind, std::string_view text, std::string_view origin = {}) {
      if (!text.empty()) on_chunk(StreamChunk::of(kind, index, text, origin));
    };
    switch (b.type) {
      case ContentBlock::Type::kThinking:
        send(Kind::kThinking, b.text);
        send(Kind::kSignature, b.signature, b.origin);
        break;
      case ContentBlock::Type::kText:
        send(Kind::kText, b.text);
        send(Kind::kSignature, b.signature, b.origin);  // Gemini's, on a text part
        break;
      case ContentBlock::Type::kRefusal: send(Kind::kRefusal, b.text); break;
      case ContentBlock::Type::kRedactedThinking: send(Kind::kRedactedThinking, b.signature, b.origin); break;
      case ContentBlock::Type::kOpaque: send(Kind::kOpaque, b.opaque_json, b.origin); break;
      case ContentBlock::Type::kToolUse:
        send(Kind::kSignature, b.signature, b.origin);  // Gemini's, before the call's start
        on_chunk(StreamChunk::tool_call_start(index, b.tool_call.id, b.tool_call.name));
        send(Kind::kToolArguments, b.tool_call.arguments_json);
        break;
      default:
        break;  // media in an answer (Gemini's inline images) have no chunk: they come with the response
    }
  }
}

Result<ModelResponse> ModelClient::stream(const ModelRequest& request, const ChunkHandler& on_chunk) {
  Result<ModelResponse> r = invoke(request);
  if (r.ok()) deliver_as_chunks(*r, on_chunk);
  return r;
}

Result<TokenCount> ModelClient::count_tokens(const ModelRequest& request) {
  return TokenCount{estimate_input_tokens(request), false};
}

Result<EmbeddingResponse> ModelClient::embed(const EmbeddingRequest& /*request*/) {
  return Status::upstream(provider() + ": cannot take an embeddings request (not an embedding model)");
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
