// HttpModelClient: a WireFormat over the HttpTransport, and the one place an
// HTTP outcome becomes a Status:
//   2xx + JSON                 the provider's response (streamed: 2xx +
//                              text/event-stream through SseParser and the
//                              wire's StreamDecoder)
//   408, 429, 5xx              unavailable, with the provider's Retry-After
//   other statuses             upstream, with the provider's own message
//   2xx with a body that cannot be read, or another Content-Type
//                              upstream, quoting at most 200 bytes of the body
// Every message starts "<provider> <model>: " and "HTTP <status>: " when
// there was one, and has the API key scrubbed out, whatever echoed it.
#include "providers/http_model_client.h"

#include <algorithm>
#include <cctype>

#include "providers/embedding_wire.h"
#include "providers/http_transport.h"
#include "providers/sse.h"
#include "providers/wire_common.h"
#include "providers/wire_format.h"
#include "switchboard/tokens.h"
#include "util/ascii.h"

namespace switchboard {

namespace {

constexpr std::size_t kQuotedBodyBytes = 200;

bool is_2xx(int status) { return status >= 200 && status < 300; }

// "application/json" from "Application/JSON; charset=utf-8".
std::string media_type(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  std::string out;
  for (char c : content_type) {
    if (!std::isspace(static_cast<unsigned char>(c))) out.push_back(ascii_lower(c));
  }
  return out;
}

bool is_json(std::string_view content_type) {
  const std::string type = media_type(content_type);
  return type == "application/json" || type.ends_with("+json");
}

bool is_event_stream(std::string_view content_type) { return media_type(content_type) == "text/event-stream"; }

// The start of `body` as one quoted line: at most kQuotedBodyBytes, cut on a
// UTF-8 boundary, control characters and runs of whitespace as one space.
std::string quote_body(std::string_view body) {
  if (body.empty()) return "an empty body";
  std::size_t n = std::min(body.size(), kQuotedBodyBytes);
  while (n > 0 && n < body.size() && (static_cast<unsigned char>(body[n]) & 0xC0) == 0x80) --n;
  std::string out = "body starts \"";
  bool space = false;
  for (char c : body.substr(0, n)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == ' ') {
      if (!space) out.push_back(' ');
      space = true;
    } else {
      out.push_back(c);
      space = false;
    }
  }
  if (space) out.pop_back();
  out += n < body.size() ? "...\"" : "\"";
  return out;
}

// `status` with `message` instead of its own; code and retry_after kept.
Status with_message(const Status& status, std::string message) {
  switch (status.code()) {
    case Status::Code::kOk: return status;
    case Status::Code::kInvalidArgument: return Status::invalid_argument(std::move(message));
    case Status::Code::kNotFound: return Status::not_found(std::move(message));
    case Status::Code::kIoError: return Status::io_error(std::move(message));
    case Status::Code::kRuleError: return Status::rule_error(std::move(message));
    case Status::Code::kOverBudget: return Status::over_budget(std::move(message));
    case Status::Code::kUnavailable: return Status::unavailable(std::move(message), status.retry_after());
    case Status::Code::kUpstream: return Status::upstream(std::move(message), status.http_status());
    case Status::Code::kInternal: return Status::internal(std::move(message));
    case Status::Code::kCancelled: return Status::cancelled(std::move(message));
    case Status::Code::kDeadlineExceeded: return Status::deadline_exceeded(std::move(message));
    case Status::Code::kRateLimited: return Status::rate_limited(std::move(message), status.retry_after());
  }
  return Status::internal(std::move(message));
}

class HttpModelClient final : public ModelClient {
 public:
  HttpModelClient(const ModelSpec& model, const CallSettings& calls, std::string api_key,
                  std::unique_ptr<WireFormat> wire, std::unique_ptr<EmbeddingWire> embedding_wire,
                  std::shared_ptr<HttpTransport> transport)
      : model_(model),
        provider_(model.provider),
        prefix_(model.provider + " " + model.name + ": "),
        calls_(calls),
        api_key_(std::move(api_key)),
        wire_(std::move(wire)),
        embedding_wire_(std::move(embedding_wire)),
        transport_(std::move(transport)) {}

  std::string provider() const override { return provider_; }

  Result<EmbeddingResponse> embed(const EmbeddingRequest& request) override {
    if (!embedding_wire_) return ModelClient::embed(request);
    if (request.size() == 0) return fail(Status::invalid_argument("an embeddings request needs at least one input"));
    Result<HttpRequest> http = embedding_wire_->build_request(request);
    if (!http.ok()) return fail(http.status());
    Result<HttpResponse> response = transport_->post(*http, calls_, nullptr, request.bounds);
    if (!response.ok()) return fail(response.status());
    if (!is_2xx(response->status)) return http_error(*response, response->body);
    const std::string status = "HTTP " + std::to_string(response->status) + ": ";
    if (!is_json(response->content_type)) {
      return fail(Status::upstream(status + "Content-Type '" + response->content_type +
                                   "' where JSON was expected; " + quote_body(response->body)));
    }
    Result<EmbeddingResponse> parsed = embedding_wire_->parse_response(response->body, request);
    if (!parsed.ok()) {
      return fail(Status::upstream(status + parsed.status().message() + "; " + quote_body(response->body)));
    }
    parsed->latency = response->total;
    parsed->http_status = response->status;
    return parsed;
  }

  Result<TokenCount> count_tokens(const ModelRequest& request) override {
    std::optional<Result<HttpRequest>> http = wire_->build_count_request(request);
    if (!http) {  // no endpoint for it: the engine's count for this model
      Result<std::int64_t> n = count_request_tokens(model_, request);
      if (!n.ok()) return n.status();
      return TokenCount{*n, false};
    }
    if (!http->ok()) return fail(http->status());
    Result<HttpResponse> response = transport_->post(**http, calls_, nullptr, request.bounds);
    if (!response.ok()) return fail(response.status());
    if (!is_2xx(response->status)) return http_error(*response, response->body);
    const std::string status = "HTTP " + std::to_string(response->status) + ": ";
    if (!is_json(response->content_type)) {
      return fail(Status::upstream(status + "Content-Type '" + response->content_type +
                                   "' where JSON was expected; " + quote_body(response->body)));
    }
    Result<std::int64_t> counted = wire_->parse_count_response(response->body);
    if (!counted.ok()) {
      return fail(Status::upstream(status + counted.status().message() + "; " + quote_body(response->body)));
    }
    return TokenCount{*counted, true};
  }

  Result<ModelResponse> invoke(const ModelRequest& request) override {
    if (request.messages.empty()) return fail(Status::invalid_argument("a request needs at least one message"));
    Result<HttpRequest> http = wire_->build_request(request, /*stream=*/false);
    if (!http.ok()) return fail(http.status());
    Result<HttpResponse> response = transport_->post(*http, calls_, nullptr, request.bounds);
    if (!response.ok()) return fail(response.status());
    return whole_response(*response, response->body);
  }

  Result<ModelResponse> stream(const ModelRequest& request, const ChunkHandler& on_chunk) override {
    if (request.messages.empty()) return fail(Status::invalid_argument("a request needs at least one message"));
    Result<HttpRequest> http = wire_->build_request(request, /*stream=*/true);
    if (!http.ok()) return fail(http.status());

    SseParser parser;
    std::unique_ptr<StreamDecoder> decoder = wire_->stream_decoder();
    Status stream_error;
    std::optional<bool> streaming;  // decided by the first piece's status and Content-Type
    std::string other_body;         // the body, when it is not an event stream
    const BodySink sink = [&](const HttpResponse& head, std::string_view piece) {
      if (!streaming) {
        streaming = is_2xx(head.status) && is_event_stream(head.content_type);
        if (*streaming && on_chunk) on_chunk(StreamChunk::of(StreamChunk::Kind::kStart, 0, {}));  // accepted
      }
      if (!*streaming) {
        other_body.append(piece);
        return true;
      }
      return parser.feed(piece, [&](const SseEvent& event) {
        stream_error = decoder->on_event(event, on_chunk);
        return stream_error.ok();
      });
    };
    Result<HttpResponse> response = transport_->post(*http, calls_, sink, request.bounds);
    if (!stream_error.ok()) return fail(stream_error);
    // A transport failure after the final event (a server that keeps the
    // connection open past it) costs nothing: the answer is whole.
    if (!response.ok() && !decoder->done()) {
      if (!streaming.value_or(false)) return fail(response.status());
      const Status& broke = response.status();
      return fail(with_message(broke, "stream ended before its final event: " + broke.message()));
    }

    if (response.ok() && !streaming.value_or(false)) {
      if (!is_2xx(response->status)) return http_error(*response, other_body);
      // A server that answers a stream request with one JSON body (some
      // OpenAI-compatible ones do) still answered: pass the answer on whole.
      Result<ModelResponse> whole = whole_response(*response, other_body);
      if (whole.ok()) deliver_as_chunks(*whole, on_chunk);
      return whole;
    }
    Result<ModelResponse> result = decoder->finish();
    if (!result.ok()) return fail(result.status());
    if (response.ok()) fill_timing(*result, *response);
    return result;
  }

 private:
  Result<ModelResponse> whole_response(const HttpResponse& response, std::string_view body) const {
    if (!is_2xx(response.status)) return http_error(response, body);
    const std::string http = "HTTP " + std::to_string(response.status) + ": ";
    if (!is_json(response.content_type)) {
      const std::string type = response.content_type.empty() ? "no Content-Type" : "Content-Type '" + response.content_type + "'";
      return fail(Status::upstream(http + type + " where JSON was expected; " + quote_body(body)));
    }
    Result<ModelResponse> parsed = wire_->parse_response(body);
    if (!parsed.ok()) return fail(Status::upstream(http + parsed.status().message() + "; " + quote_body(body)));
    fill_timing(*parsed, response);
    return parsed;
  }

  static void fill_timing(ModelResponse& r, const HttpResponse& response) {
    r.latency = response.total;
    r.first_byte = response.first_byte;
    r.http_status = response.status;
    r.rate_limits = response.rate_limits;
  }

  // A non-2xx answer: unavailable when a retry may cure it, else upstream.
  Status http_error(const HttpResponse& response, std::string_view body) const {
    std::string detail = wire::error_message_in(body);
    if (detail.empty()) detail = quote_body(body);
    std::string message = "HTTP " + std::to_string(response.status) + ": " + detail;
    const int s = response.status;
    if (s == 408 || s == 429 || (s >= 500 && s <= 599)) {
      return fail(Status::unavailable(std::move(message), response.retry_after));
    }
    return fail(Status::upstream(std::move(message), s));
  }

  // Every failure leaves through here: prefixed, and with the key scrubbed
  // (a server may echo a header back; a short key is not worth the mangling).
  Status fail(const Status& status) const {
    std::string message = prefix_ + status.message();
    if (api_key_.size() >= 8) {
      for (std::size_t at = message.find(api_key_); at != std::string::npos; at = message.find(api_key_, at)) {
        message.replace(at, api_key_.size(), "[redacted]");
      }
    }
    return with_message(status, std::move(message));
  }

  const ModelSpec model_;  // for the engine's own count (count_tokens)
  const std::string provider_;
  const std::string prefix_;  // "anthropic claude-x: "
  const CallSettings calls_;
  const std::string api_key_;
  const std::unique_ptr<WireFormat> wire_;
  const std::unique_ptr<EmbeddingWire> embedding_wire_;  // embedding models only
  const std::shared_ptr<HttpTransport> transport_;
};

}  // namespace

Result<std::shared_ptr<ModelClient>> make_http_client(const ModelSpec& model, const CallSettings& calls,
                                                      std::string api_key) {
  return make_http_client(model, calls, std::move(api_key), std::make_shared<HttpTransport>());
}

Result<std::shared_ptr<ModelClient>> make_http_client(const ModelSpec& model, const CallSettings& calls,
                                                      std::string api_key, std::shared_ptr<HttpTransport> transport) {
  std::unique_ptr<WireFormat> wire;
  if (model.provider == "openai" || model.provider == "openai-compatible") {
    wire = make_openai_wire(model, api_key);
  } else if (model.provider == "anthropic") {
    wire = make_anthropic_wire(model, api_key);
  } else if (model.provider == "gemini") {
    wire = make_gemini_wire(model, api_key);
  } else {
    return Status::invalid_argument(model.source + ": model '" + model.name + "': provider '" + model.provider +
                                    "' has no HTTP adapter");
  }
  if (model.endpoint.empty()) {
    return Status::invalid_argument(model.source + ": model '" + model.name + "' needs an 'endpoint'");
  }
  std::unique_ptr<EmbeddingWire> embedding_wire;
  if (model.kind == ModelKind::kEmbedding) embedding_wire = make_embedding_wire(model, api_key);
  return std::shared_ptr<ModelClient>(std::make_shared<HttpModelClient>(
      model, calls, std::move(api_key), std::move(wire), std::move(embedding_wire), std::move(transport)));
}

}  // namespace switchboard
