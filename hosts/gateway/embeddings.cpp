// POST /v1/embeddings: OpenAI's embeddings shape, served by the embedding
// models of the config (switchboard/embedding.h).
//
// The model: "auto" embeds with the [embeddings] tier; a tier of embedding
// models, or an embedding model (its tier's other models behind it), as
// asked. A chat model or tier is a 400, an unknown one a 404. The call goes
// through Dispatcher::embed: admitted against the workload's budget and the
// key's, retried and fallen back along the tier, every attempt a ledger
// record (tokens, dollars, the catalog's version, status; role "embedding"),
// committed before the answer goes out, as for chat. The answer names the
// model that served it and carries the x-switchboard-* headers (model, tier,
// cost, trace id); errors come in OpenAI's shape (429 over budget, 502 every
// model failed, 504 past the deadline).
#include <memory>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "api/embeddings.h"
#include "gateway.h"
#include "internal.h"

namespace switchboard::gateway {

using namespace internal;

void Gateway::serve_embeddings(HttpRequest&& request, std::shared_ptr<Response> response) {
  constexpr Endpoint endpoint = Endpoint::kEmbeddings;
  constexpr ApiShape shape = ApiShape::kOpenAI;
  const Clock::time_point received = request.received;
  auto caller = std::make_shared<Caller>();
  if (!identify(request, *response, endpoint, shape, *caller)) return;
  const Config& config = caller->engine->config();

  ApiResult<ParsedEmbeddings> parsed = parse_openai_embeddings(request.message.body(), config.gateway.max_json_depth);
  if (!parsed.ok()) return reply_error(*response, endpoint, received, shape, parsed.error);
  auto asked = std::make_shared<ParsedEmbeddings>(std::move(*parsed.value));

  // Only embedding models embed.
  if (asked->model != "auto") {
    const Tier* tier = config.find_tier(asked->model);
    const ModelSpec* model = config.find_model(tier != nullptr ? tier->models.front() : asked->model);
    if (model == nullptr) {
      ApiError e = api_error(shape, 404, "model_not_found",
                             "the model '" + asked->model + "' does not exist here: ask for \"auto\" (the [embeddings] "
                             "tier), or an embedding model or tier that GET /v1/models lists");
      e.param = "model";
      return reply_error(*response, endpoint, received, shape, e);
    }
    if (model->kind != ModelKind::kEmbedding) {
      ApiError e = api_error(shape, 400, "model_not_embedding",
                             "'" + asked->model + "' is a chat " + (tier != nullptr ? "tier" : "model") +
                                 ": POST /v1/chat/completions serves it; embeddings need an embedding model "
                                 "(kind = \"embedding\") or \"auto\"");
      e.param = "model";
      return reply_error(*response, endpoint, received, shape, e);
    }
  } else if (config.embeddings.tier.empty()) {
    ApiError e = api_error(shape, 404, "model_not_found",
                           "this gateway has no embedding models: configure models with kind = \"embedding\"");
    e.param = "model";
    return reply_error(*response, endpoint, received, shape, e);
  }

  EmbeddingRequest& call = asked->request;
  call.bounds.deadline = received + caller->timeout;
  call.bounds.deadline_source = caller->timeout_source + " = " + std::to_string(caller->timeout.count());
  call.bounds.cancellation = request.client_gone;
  run_upstream(*request.io, response, endpoint, received, shape, config.gateway.max_upstream_calls,
               [this, response, received, caller, asked] {
                 EmbeddingCall call;
                 call.model = asked->model;
                 call.request = std::move(asked->request);
                 call.trace_id = new_trace_id();
                 call.budget_scopes = caller->budget_scopes;
                 const EmbeddingResult result = caller->dispatcher->embed(caller->workload, call);
                 metrics_.count_calls(result.records, result.fallbacks);
                 if (result.status.code() == Status::Code::kRateLimited) metrics_.count_rate_limited(result.limited_by);
                 // Acknowledged means recorded, as for chat (run() in gateway.cpp).
                 if (const Status recorded = ledger_->flush(); !recorded.ok()) {
                   const std::uint64_t n = metrics_.count_unrecorded();
                   if (n <= 10 || n % 1000 == 0) {
                     log_->error("trace {}: answered without a ledger record: {} ({} so far)", result.trace_id,
                                 recorded.message(), n);
                   }
                 }
                 const std::string headers =
                     switchboard_headers(result.model, result.tier, result.trace_id, result.cost) +
                     retry_after_header(result.status);
                 if (!result.status.ok()) {
                   return reply_error(*response, endpoint, received, shape, step_error(shape, result.status),
                                      headers, result.upstream);
                 }
                 reply(*response, endpoint, received, 200, kJson, headers,
                       render_embeddings(result.response, result.model, asked->base64), result.upstream);
               });
}

}  // namespace switchboard::gateway
