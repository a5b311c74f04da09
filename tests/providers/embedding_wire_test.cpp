// The embeddings wire formats from request and answer bodies alone:
// OpenAI's /embeddings and Gemini's batchEmbedContents.
#include <doctest/doctest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "providers/embedding_wire.h"

using namespace switchboard;
using nlohmann::json;

namespace {

ModelSpec embedding_model(const std::string& provider, const std::string& endpoint) {
  ModelSpec m;
  m.name = "e";
  m.model_id = "e-upstream";
  m.provider = provider;
  m.kind = ModelKind::kEmbedding;
  m.dimensions = 8;
  m.endpoint = endpoint;
  m.context_window = 8191;
  return m;
}

EmbeddingRequest texts(std::vector<std::string> inputs) {
  EmbeddingRequest r;
  r.texts = std::move(inputs);
  return r;
}

}  // namespace

TEST_SUITE("providers") {

TEST_CASE("OpenAI embeddings: the request names every input and the answer is read by index") {
  const auto wire = make_embedding_wire(embedding_model("openai", "https://api.example/v1/"), "sk-e");
  REQUIRE(wire != nullptr);
  EmbeddingRequest request = texts({"a", "bcd"});
  request.dimensions = 4;
  const Result<HttpRequest> http = wire->build_request(request);
  REQUIRE(http.ok());
  CHECK(http->url == "https://api.example/v1/embeddings");
  CHECK(json::parse(http->body) ==
        json{{"model", "e-upstream"}, {"input", {"a", "bcd"}}, {"encoding_format", "float"}, {"dimensions", 4}});
  bool bearer = false;
  for (const auto& [name, value] : http->headers) bearer = bearer || (name == "Authorization" && value == "Bearer sk-e");
  CHECK(bearer);

  // Out of order, one of them base64 (1.0f and -0.5f, little-endian), as some servers send.
  const Result<EmbeddingResponse> r = wire->parse_response(
      R"({"data":[{"index":1,"embedding":"AACAPwAAAL8="},{"index":0,"embedding":[0.25,0.5]}],)"
      R"("model":"e-upstream-2","usage":{"prompt_tokens":7,"total_tokens":7}})",
      request);
  REQUIRE_MESSAGE(r.ok(), r.status().to_string());
  CHECK(r->model == "e-upstream-2");
  CHECK(r->vectors == std::vector<std::vector<float>>{{0.25f, 0.5f}, {1.0f, -0.5f}});
  CHECK(r->usage.input_tokens == 7);
  CHECK_FALSE(r->usage_estimated);

  // A server that counts nothing: the engine's estimate, flagged.
  const Result<EmbeddingResponse> uncounted =
      wire->parse_response(R"({"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[2]}]})", request);
  REQUIRE(uncounted.ok());
  CHECK(uncounted->usage.input_tokens == 2);  // "a" 1, "bcd" 1
  CHECK(uncounted->usage_estimated);

  for (const char* body : {R"({"data":[{"index":0,"embedding":[1]}]})",
                           R"({"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]})",
                           R"({"data":[{"index":0,"embedding":"%%"},{"index":1,"embedding":[2]}]})",
                           R"({"object":"list"})", "not json"}) {
    INFO(body);
    const Result<EmbeddingResponse> bad = wire->parse_response(body, request);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == Status::Code::kUpstream);
  }

  EmbeddingRequest big = texts({"a"});
  big.dimensions = 9;
  CHECK(wire->build_request(big).status().message() == "cannot take dimensions 9 (its vectors have 8)");
  EmbeddingRequest ids;
  ids.tokens = {{1, 2}, {3}};
  CHECK(json::parse(wire->build_request(ids)->body)["input"] == json::array({{1, 2}, {3}}));
}

TEST_CASE("Gemini embeddings: batchEmbedContents for text, no count, and token ids refused") {
  const auto wire = make_embedding_wire(embedding_model("gemini", "https://g.example/v1beta"), "AIza-e");
  REQUIRE(wire != nullptr);
  EmbeddingRequest request = texts({"hello", "world!"});
  request.dimensions = 2;
  const Result<HttpRequest> http = wire->build_request(request);
  REQUIRE(http.ok());
  CHECK(http->url == "https://g.example/v1beta/models/e-upstream:batchEmbedContents");
  CHECK(json::parse(http->body)["requests"][1] == json{{"model", "models/e-upstream"},
                                                       {"content", {{"parts", {{{"text", "world!"}}}}}},
                                                       {"outputDimensionality", 2}});
  const Result<EmbeddingResponse> r =
      wire->parse_response(R"({"embeddings":[{"values":[0.5,0.25]},{"values":[-1,0]}]})", request);
  REQUIRE(r.ok());
  CHECK(r->vectors == std::vector<std::vector<float>>{{0.5f, 0.25f}, {-1.0f, 0.0f}});
  CHECK(r->usage.input_tokens == 4);  // "hello" 2, "world!" 2: estimated
  CHECK(r->usage_estimated);
  CHECK_FALSE(wire->parse_response(R"({"embeddings":[{"values":[1]}]})", request).ok());

  EmbeddingRequest ids;
  ids.tokens = {{1}};
  CHECK(wire->build_request(ids).status().message().rfind("cannot take token-id inputs", 0) == 0);
  EmbeddingRequest user = texts({"a"});
  user.user = "u";
  CHECK(wire->build_request(user).status().code() == Status::Code::kUpstream);

  CHECK(make_embedding_wire(embedding_model("anthropic", "https://a.example"), "k") == nullptr);
}

}  // TEST_SUITE
