// POST /v1/messages/count_tokens: Anthropic's token count, for any model.
//
// The model counted for: the request's `model` when it names a model, or a
// tier (its first model); for "auto", the one the rules would choose for the
// workload, decided as a dry run (Engine::explain: no shadow evaluation,
// nothing recorded). Its client counts (ModelClient::count_tokens): an
// Anthropic model with its key set asks Anthropic's own count_tokens endpoint
// (exact); any other model (the sim provider included) answers the engine's
// count for that model (count_request_tokens, switchboard/tokens.h), as does
// an Anthropic model whose count fails (the failure is logged). The answer is {"input_tokens": N} with the headers
// x-switchboard-token-count (exact | estimated), x-switchboard-model and
// x-switchboard-tier. Counting calls no model: it is not billed, not held
// against a budget and not written to the ledger. It takes one of the
// max_upstream_calls slots while it runs, and the request's deadline and
// cancellation apply as to a call (504, 499).
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <spdlog/spdlog.h>

#include "api/count_tokens.h"
#include "gateway.h"
#include "internal.h"

namespace switchboard::gateway {

using namespace internal;

void Gateway::serve_count_tokens(HttpRequest&& request, std::shared_ptr<Response> response) {
  constexpr Endpoint endpoint = Endpoint::kCountTokens;
  constexpr ApiShape shape = ApiShape::kAnthropic;
  const auto& m = request.message;
  const Clock::time_point received = request.received;
  auto caller = std::make_shared<Caller>();
  if (!identify(request, *response, endpoint, shape, *caller)) return;
  const Config& config = caller->engine->config();

  Headers headers;
  headers.reserve(16);
  for (const auto& field : m) headers.emplace_back(field.name_string(), field.value());
  ApiResult<ParsedRequest> parsed = parse_anthropic_count_tokens(m.body(), headers, config.gateway.max_json_depth);
  if (!parsed.ok()) return reply_error(*response, endpoint, received, shape, parsed.error);
  auto asked = std::make_shared<ParsedRequest>(std::move(*parsed.value));

  // The model named (a tier counts as its first model); "auto": the rules', below.
  std::string model;
  std::string tier;
  if (asked->model != "auto") {
    if (const Tier* t = config.find_tier(asked->model)) {
      tier = t->name;
      model = t->models.front();
    } else if (config.find_model(asked->model) != nullptr) {
      model = asked->model;
      tier = config.tier_of(model)->name;
    } else {
      return reply_error(*response, endpoint, received, shape,
                         api_error(shape, 404, "model_not_found",
                                   "the model '" + asked->model +
                                       "' does not exist here: ask for \"auto\", a tier or a model that "
                                       "GET /v1/models lists"));
    }
  }

  ModelRequest& call = asked->call.request;
  call.bounds.deadline = received + caller->timeout;
  call.bounds.deadline_source = caller->timeout_source + " = " + std::to_string(caller->timeout.count());
  call.bounds.cancellation = request.client_gone;
  run_upstream(*request.io, response, endpoint, received, shape, config.gateway.max_upstream_calls,
               [this, response, received, caller, asked, model, tier]() mutable {
                 std::chrono::nanoseconds upstream{0};  // in the client's count (gateway.h, "Overhead")
                 if (model.empty()) {
                   Result<Explanation> decided = caller->engine->explain(caller->workload, asked->call.step);
                   if (!decided.ok()) {
                     return reply_error(*response, endpoint, received, shape,
                                        api_error(shape, 500, "internal_error", decided.status().message()), {},
                                        upstream);
                   }
                   model = decided->decision.model;
                   tier = decided->decision.tier;
                 }
                 // The model's client counts (exactly, or the engine's count for it);
                 // when it fails or there is none, the engine's count for the model.
                 std::optional<TokenCount> count;
                 if (ModelClient* client = caller->dispatcher->clients().find(model)) {
                   const Clock::time_point asking = Clock::now();
                   Result<TokenCount> counted = client->count_tokens(asked->call.request);
                   // An estimate (not exact) asked no provider: the gateway's own time.
                   if (!counted.ok() || counted->exact) upstream = Clock::now() - asking;
                   if (counted.ok()) {
                     count = *counted;
                   } else if (counted.status().code() == Status::Code::kCancelled ||
                              counted.status().code() == Status::Code::kDeadlineExceeded) {
                     return reply_error(*response, endpoint, received, shape, step_error(shape, counted.status()),
                                        {}, upstream);
                   } else {
                     log_->warn("count_tokens: {}; answered the engine's count", counted.status().message());
                   }
                 }
                 if (!count) {
                   count = TokenCount{asked->call.step.input_tokens.value_or(0), false};
                   if (const ModelSpec* spec = caller->engine->config().find_model(model)) {
                     if (Result<std::int64_t> n = count_request_tokens(*spec, asked->call.request); n.ok()) {
                       count->input_tokens = *n;
                     }
                   }
                 }
                 std::string out;
                 add_header(out, "x-switchboard-token-count", count->exact ? "exact" : "estimated");
                 add_header(out, "x-switchboard-model", model);
                 add_header(out, "x-switchboard-tier", tier);
                 reply(*response, endpoint, received, 200, kJson, out, render_token_count(count->input_tokens),
                       upstream);
               });
}

}  // namespace switchboard::gateway
