#include "providers/embedding_wire.h"

#include <cstring>

#include "cost/estimate.h"
#include "providers/wire_common.h"

namespace switchboard {

namespace {

using nlohmann::json;

Status cannot_take(const std::string& what, const std::string& why) {
  return Status::upstream("cannot take " + what + " (" + why + ")");
}

// A request for longer vectors than the model makes.
Status check_dimensions(const EmbeddingRequest& request, const ModelSpec& model) {
  if (request.dimensions && *request.dimensions > model.dimensions) {
    return cannot_take("dimensions " + std::to_string(*request.dimensions),
                       "its vectors have " + std::to_string(model.dimensions));
  }
  return Status();
}

// Standard base64 (with padding) of little-endian float32 values.
std::optional<std::vector<float>> floats_from_base64(std::string_view text) {
  std::string bytes;
  unsigned buffer = 0;
  int bits = 0;
  for (const char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '+') v = 62;
    if (c == '/') v = 63;
    if (c == '=') break;
    if (v < 0) return std::nullopt;
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  if (bytes.size() % 4 != 0) return std::nullopt;
  std::vector<float> out(bytes.size() / 4);
  for (std::size_t i = 0; i < out.size(); ++i) {
    std::uint32_t u = 0;
    for (int b = 3; b >= 0; --b) u = (u << 8) | static_cast<unsigned char>(bytes[i * 4 + static_cast<std::size_t>(b)]);
    std::memcpy(&out[i], &u, sizeof u);
  }
  return out;
}

// A JSON array of numbers as floats; nullopt when it holds anything else.
std::optional<std::vector<float>> floats_from_json(const json& values) {
  if (!values.is_array()) return std::nullopt;
  std::vector<float> out;
  out.reserve(values.size());
  for (const json& v : values) {
    if (!v.is_number()) return std::nullopt;
    out.push_back(static_cast<float>(v.get<double>()));
  }
  return out;
}

class OpenAIEmbeddingWire final : public EmbeddingWire {
 public:
  OpenAIEmbeddingWire(const ModelSpec& model, std::string api_key)
      : model_(model), url_(wire::join_url(model.endpoint, "/embeddings")), api_key_(std::move(api_key)) {}

  Result<HttpRequest> build_request(const EmbeddingRequest& request) const override {
    if (Status s = check_dimensions(request, model_); !s.ok()) return s;
    json body = {{"model", model_.model_id.empty() ? model_.name : model_.model_id}, {"encoding_format", "float"}};
    if (!request.texts.empty()) {
      body["input"] = request.texts;
    } else {
      body["input"] = request.tokens;
    }
    if (request.dimensions) body["dimensions"] = *request.dimensions;
    if (!request.user.empty()) body["user"] = request.user;
    HttpRequest http;
    http.url = url_;
    http.headers.emplace_back("Content-Type", "application/json");
    http.headers.emplace_back("Accept", "application/json");
    if (!api_key_.empty()) http.headers.emplace_back("Authorization", "Bearer " + api_key_);
    http.body = wire::to_text(body);
    return http;
  }

  Result<EmbeddingResponse> parse_response(std::string_view body, const EmbeddingRequest& request) const override {
    try {
      Result<json> parsed = wire::parse_body(body);
      if (!parsed.ok()) return parsed.status();
      const json* data = wire::array_at(*parsed, "data");
      if (data == nullptr) return Status::upstream("body has no 'data' array");
      EmbeddingResponse r;
      r.model = wire::string_at(*parsed, "model");
      r.vectors.resize(request.size());
      std::vector<bool> seen(request.size(), false);
      for (const json& item : *data) {
        const auto index = item.is_object() ? item.find("index") : item.end();
        if (!item.is_object() || index == item.end() || !index->is_number_unsigned() ||
            index->get<std::size_t>() >= request.size() || seen[index->get<std::size_t>()]) {
          return Status::upstream("body has an embedding without a valid 'index'");
        }
        const std::size_t i = index->get<std::size_t>();
        const auto embedding = item.find("embedding");
        std::optional<std::vector<float>> values;
        if (embedding != item.end() && embedding->is_string()) {
          values = floats_from_base64(embedding->get<std::string>());
        } else if (embedding != item.end()) {
          values = floats_from_json(*embedding);
        }
        if (!values) return Status::upstream("data[" + std::to_string(i) + "].embedding is not a vector");
        r.vectors[i] = std::move(*values);
        seen[i] = true;
      }
      for (std::size_t i = 0; i < seen.size(); ++i) {
        if (!seen[i]) return Status::upstream("body has no embedding for input " + std::to_string(i));
      }
      const json* usage = wire::object_at(*parsed, "usage");
      const json* prompt = usage != nullptr && usage->contains("prompt_tokens") ? &usage->at("prompt_tokens") : nullptr;
      if (prompt != nullptr && prompt->is_number_unsigned()) {
        r.usage.input_tokens = prompt->get<std::int64_t>();
      } else {
        r.usage.input_tokens = detail::estimate_embedding_tokens(request);  // a server that reports none
        r.usage_estimated = true;
      }
      return r;
    } catch (const json::exception& e) {
      return Status::upstream(std::string("body: ") + e.what());
    }
  }

 private:
  const ModelSpec model_;
  const std::string url_;
  const std::string api_key_;
};

class GeminiEmbeddingWire final : public EmbeddingWire {
 public:
  GeminiEmbeddingWire(const ModelSpec& model, std::string api_key)
      : model_(model),
        model_id_(model.model_id.empty() ? model.name : model.model_id),
        url_(wire::join_url(model.endpoint, "/models/" + model_id_ + ":batchEmbedContents")),
        api_key_(std::move(api_key)) {}

  Result<HttpRequest> build_request(const EmbeddingRequest& request) const override {
    if (!request.tokens.empty()) return cannot_take("token-id inputs", "Gemini embeds text only");
    if (!request.user.empty()) return cannot_take("a user id", "batchEmbedContents has no user field");
    if (Status s = check_dimensions(request, model_); !s.ok()) return s;
    json requests = json::array();
    for (const std::string& text : request.texts) {
      json item = {{"model", "models/" + model_id_}, {"content", {{"parts", json::array({{{"text", text}}})}}}};
      if (request.dimensions) item["outputDimensionality"] = *request.dimensions;
      requests.push_back(std::move(item));
    }
    HttpRequest http;
    http.url = url_;
    http.headers.emplace_back("Content-Type", "application/json");
    http.headers.emplace_back("Accept", "application/json");
    if (!api_key_.empty()) http.headers.emplace_back("x-goog-api-key", api_key_);
    http.body = wire::to_text(json{{"requests", std::move(requests)}});
    return http;
  }

  Result<EmbeddingResponse> parse_response(std::string_view body, const EmbeddingRequest& request) const override {
    try {
      Result<json> parsed = wire::parse_body(body);
      if (!parsed.ok()) return parsed.status();
      const json* embeddings = wire::array_at(*parsed, "embeddings");
      if (embeddings == nullptr) return Status::upstream("body has no 'embeddings' array");
      if (embeddings->size() != request.size()) {
        return Status::upstream("body has " + std::to_string(embeddings->size()) + " embeddings for " +
                                std::to_string(request.size()) + " inputs");
      }
      EmbeddingResponse r;
      r.model = model_id_;
      for (std::size_t i = 0; i < embeddings->size(); ++i) {
        const json* values = wire::array_at((*embeddings)[i], "values");
        std::optional<std::vector<float>> vector = values ? floats_from_json(*values) : std::nullopt;
        if (!vector) return Status::upstream("embeddings[" + std::to_string(i) + "].values is not a vector");
        r.vectors.push_back(std::move(*vector));
      }
      r.usage.input_tokens = detail::estimate_embedding_tokens(request);
      r.usage_estimated = true;
      return r;
    } catch (const json::exception& e) {
      return Status::upstream(std::string("body: ") + e.what());
    }
  }

 private:
  const ModelSpec model_;
  const std::string model_id_;
  const std::string url_;
  const std::string api_key_;
};

}  // namespace

std::unique_ptr<EmbeddingWire> make_embedding_wire(const ModelSpec& model, std::string api_key) {
  if (model.provider == "openai" || model.provider == "openai-compatible") {
    return std::make_unique<OpenAIEmbeddingWire>(model, std::move(api_key));
  }
  if (model.provider == "gemini") return std::make_unique<GeminiEmbeddingWire>(model, std::move(api_key));
  return nullptr;
}

}  // namespace switchboard
