#include "gateway.h"
#include "switchboard/calibration.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "cors.h"
#include "http/edited_response.h"
#include "internal.h"

namespace switchboard::gateway {

namespace internal {  // internal.h declares what the route files beside this one use

using nlohmann::json;

// Where a concrete request for a tier or a model sends the decision.
struct Target {
  enum class Kind { kAuto, kTier, kModel };
  Kind kind = Kind::kAuto;
  std::string name;
};

// An error in the shape's vocabulary: OpenAI's `type`/`code`, Anthropic's `type`.
ApiError api_error(ApiShape shape, int status, std::string code, std::string message) {
  ApiError e;
  e.http_status = status;
  e.message = std::move(message);
  if (shape != ApiShape::kAnthropic) {
    e.code = std::move(code);
    e.type = status == 429 ? "insufficient_quota" : status >= 500 ? "server_error" : "invalid_request_error";
    return e;
  }
  switch (status) {
    case 401: e.type = "authentication_error"; break;
    case 403: e.type = "permission_error"; break;
    case 404: e.type = "not_found_error"; break;
    case 413: e.type = "request_too_large"; break;
    case 429: e.type = "rate_limit_error"; break;
    case 503: e.type = "overloaded_error"; break;
    case 504: e.type = "timeout_error"; break;
    default: e.type = status >= 500 ? "api_error" : "invalid_request_error"; break;
  }
  return e;
}

// A provider's answer that blames the request, not the provider or the
// gateway's own key (401, 403) or model name (404): 400, 413, 422.
bool is_request_refusal(int http_status) { return http_status == 400 || http_status == 413 || http_status == 422; }

// What a finished step's failure means to the client. The message may quote
// an upstream's error body: key-like tokens in it are redacted.
ApiError step_error(ApiShape shape, const Status& status) {
  // The client's request is too large for every model that could serve it:
  // its own error, not an upstream failure.
  if (status.reason() == Status::Reason::kNoContextWindow) {
    ApiError e = api_error(shape, 400, "context_length_exceeded",
                           "the request is too large for the context window of every model that could serve it: " +
                               redact_secrets(status.message()));
    e.param = shape == ApiShape::kOpenAI ? "messages" : shape == ApiShape::kResponses ? "input" : "";
    return e;
  }
  // fail_closed limits while Redis cannot be reached: the gateway is briefly
  // unable to enforce its caps, not failed by a model.
  if (status.reason() == Status::Reason::kRateStateUnreachable) {
    return api_error(shape, 503, "rate_limit_state_unavailable",
                     "rate limits cannot be checked now (shared state unreachable); retry shortly: " +
                         redact_secrets(status.message()));
  }
  if (status.reason() == Status::Reason::kBudgetStateUnreachable) {
    return api_error(shape, 503, "budget_state_unavailable",
                     "budgets cannot be checked now (shared state unreachable); retry shortly: " +
                         redact_secrets(status.message()));
  }
  if (status.code() == Status::Code::kUpstream && is_request_refusal(status.http_status())) {
    // The last model called judged the request itself invalid (its 400, 413
    // or 422): the client hears that status, as it would calling the model
    // directly, not a 502 its SDK would retry.
    return api_error(shape, status.http_status(), "upstream_rejected_request",
                     "the model refused the request: " + redact_secrets(status.message()));
  }
  switch (status.code()) {
    case Status::Code::kDeadlineExceeded:
      return api_error(shape, 504, "request_timeout",
                       "the request did not finish within its deadline; its model calls were cancelled: " +
                           redact_secrets(status.message()));
    case Status::Code::kCancelled:  // the client went away: nobody reads this (counted as nginx's 499)
      return api_error(shape, 499, "client_closed_request", redact_secrets(status.message()));
    case Status::Code::kOverBudget:
      return api_error(shape, 429, "budget_exceeded", "over budget: " + redact_secrets(status.message()));
    case Status::Code::kRateLimited: {  // Anthropic: rate_limit_error; OpenAI: its own type and code
      ApiError e = api_error(shape, 429, "rate_limit_exceeded", "rate limit reached: " + redact_secrets(status.message()));
      if (shape != ApiShape::kAnthropic) e.type = "rate_limit_exceeded";
      return e;
    }
    case Status::Code::kInvalidArgument:
      return api_error(shape, 400, "invalid_request", redact_secrets(status.message()));
    case Status::Code::kNotFound:
    case Status::Code::kUnavailable:
    case Status::Code::kUpstream:
      return api_error(shape, 502, "upstream_failed",
                       "every model failed; the last error: " + redact_secrets(status.message()));
    default:
      return api_error(shape, 500, "internal_error", redact_secrets(status.message()));
  }
}

// `whole`.`fraction` with the fraction zero-padded to `places` digits
// (fraction < 10^places).
std::string decimal(std::uint64_t whole, std::uint64_t fraction, int places) {
  char buf[48];
  char* end = std::to_chars(buf, buf + 24, whole).ptr;
  *end++ = '.';
  char* const digits = end;
  end = std::to_chars(digits, digits + 20, fraction).ptr;
  const auto written = static_cast<int>(end - digits);
  if (written < places) {  // right-align the digits behind zeros
    std::memmove(digits + (places - written), digits, static_cast<std::size_t>(written));
    std::memset(digits, '0', static_cast<std::size_t>(places - written));
    end = digits + places;
  }
  return std::string(buf, end);
}

// Micro-dollars as decimal dollars with six places, exactly.
std::string usd(MicroUsd micro) {
  if (micro < 0) micro = 0;
  return decimal(static_cast<std::uint64_t>(micro / 1'000'000), static_cast<std::uint64_t>(micro % 1'000'000), 6);
}

// A header line; a value can come from the config, so line breaks go
// (looked for with memchr: find_first_of tries each byte against each of its
// characters in turn).
void add_header(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  const std::size_t at = out.size();
  out += value;
  if (std::memchr(value.data(), '\r', value.size()) != nullptr ||
      std::memchr(value.data(), '\n', value.size()) != nullptr) {
    for (std::size_t i = at; i < out.size(); ++i) {
      if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
    }
  }
  out += "\r\n";
}

std::string switchboard_headers(std::string_view model, std::string_view tier, std::string_view trace_id,
                                std::optional<MicroUsd> cost) {
  std::string h;
  h.reserve(160);
  if (!model.empty()) add_header(h, "x-switchboard-model", model);
  if (!tier.empty()) add_header(h, "x-switchboard-tier", tier);
  if (cost) add_header(h, "x-switchboard-cost-usd", usd(*cost));
  add_header(h, "x-switchboard-trace-id", trace_id);
  add_header(h, "x-request-id", trace_id);
  return h;
}

// Retry-After (whole seconds, rounded up) for a rate-limited failure that
// knows when it would fit; "" otherwise.
std::string retry_after_header(const Status& status) {
  if (status.code() != Status::Code::kRateLimited || !status.retry_after()) return "";
  const long long ms = std::max<long long>(status.retry_after()->count(), 1);
  std::string h;
  add_header(h, "Retry-After", std::to_string((ms + 999) / 1000));
  return h;
}

// x-ratelimit-remaining-{requests,tokens}: the headroom of the request's
// tightest key or workload limit after it (Engine::admit_rate); "" without one.
std::string remaining_headers(const RateAdmission& rate) {
  std::string h;
  if (rate.requests_left) add_header(h, "x-ratelimit-remaining-requests", std::to_string(*rate.requests_left));
  if (rate.tokens_left) add_header(h, "x-ratelimit-remaining-tokens", std::to_string(*rate.tokens_left));
  return h;
}

std::string overhead_ms(std::chrono::nanoseconds overhead) {
  const std::uint64_t us = overhead.count() > 0 ? static_cast<std::uint64_t>(overhead.count() / 1000) : 0;
  return decimal(us / 1000, us % 1000, 3);
}

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string iso8601(std::chrono::system_clock::time_point t) {
  const std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Compares in time that depends on the lengths only, never on where the
// bytes differ.
bool same_secret(std::string_view given, std::string_view secret) {
  unsigned diff = given.size() != secret.size() ? 1u : 0u;
  const size_t n = std::max(given.size(), secret.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    const unsigned char b = i < secret.size() ? static_cast<unsigned char>(secret[i]) : 0;
    diff |= static_cast<unsigned>(a ^ b);
  }
  return diff == 0;
}

bool ascii_iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// The key a client sent: `Authorization: Bearer K` (OpenAI SDKs) or
// `x-api-key: K` (Anthropic SDKs); "" when neither.
std::string_view presented_key(const boost::beast::http::request<boost::beast::http::string_body>& m) {
  if (auto it = m.find(boost::beast::http::field::authorization);
      it != m.end() && ascii_iequals_prefix(it->value(), "bearer ")) {
    return it->value().substr(7);
  }
  if (auto it = m.find("x-api-key"); it != m.end()) return it->value();
  return {};
}

// The budget scopes of the request's x-switchboard-tag-NAME: VALUE headers
// that the config gives a budget ([budgets.NAME.VALUE]); a tag without one
// is charged to nothing (so a client cannot grow the budget book at will).
std::vector<std::string> tag_budget_scopes(const Config& config,
                                           const boost::beast::http::request<boost::beast::http::string_body>& m) {
  constexpr std::string_view kPrefix = "x-switchboard-tag-";
  std::vector<std::string> scopes;
  if (config.budgets.empty()) return scopes;
  for (const auto& field : m) {
    const std::string_view name = field.name_string();
    if (name.size() <= kPrefix.size() || !ascii_iequals_prefix(name, kPrefix)) continue;
    std::string tag(name.substr(kPrefix.size()));
    for (char& c : tag) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    if (const TagBudget* b = config.find_tag_budget(tag, field.value()); b != nullptr) {
      scopes.push_back(tag_budget_scope(b->name, b->value));
    }
  }
  return scopes;
}

ApiError key_error(ApiShape shape, std::string_view given) {
  return api_error(shape, 401, "invalid_api_key",
                   given.empty() ? "missing API key: send Authorization: Bearer KEY or x-api-key: KEY"
                                 : "invalid API key");
}

Endpoint route(std::string_view path) {
  if (path == "/v1/chat/completions") return Endpoint::kChatCompletions;
  if (path == "/v1/responses") return Endpoint::kResponses;
  if (path == "/v1/messages") return Endpoint::kMessages;
  if (path == "/v1/messages/count_tokens") return Endpoint::kCountTokens;
  if (path == "/v1/embeddings") return Endpoint::kEmbeddings;
  if (path == "/v1/models") return Endpoint::kModels;
  if (path.starts_with("/v1/models/") && path.size() > 11) return Endpoint::kModel;
  if (path == "/healthz") return Endpoint::kHealthz;
  if (path == "/metrics") return Endpoint::kMetrics;
  if (path == "/v1/rules/status") return Endpoint::kRulesStatus;
  return Endpoint::kOther;
}

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

// The API shape an endpoint speaks (its errors' shape too); OpenAI's for the rest.
ApiShape shape_of(Endpoint endpoint) {
  return endpoint == Endpoint::kMessages || endpoint == Endpoint::kCountTokens ? ApiShape::kAnthropic
         : endpoint == Endpoint::kResponses ? ApiShape::kResponses
                                            : ApiShape::kOpenAI;
}

std::string models_openai(const Config& config, std::int64_t created) {
  json data = json::array();
  const auto add = [&](const std::string& id) {
    data.push_back({{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "switchboard"}});
  };
  add("auto");
  for (const auto& [name, tier] : config.tiers) add(name);
  for (const auto& [name, model] : config.models) add(name);
  return json{{"object", "list"}, {"data", std::move(data)}}.dump();
}

std::string models_anthropic(const Config& config, std::chrono::system_clock::time_point created) {
  json data = json::array();
  const std::string at = iso8601(created);
  const auto add = [&](const std::string& id, const std::string& display) {
    data.push_back({{"type", "model"}, {"id", id}, {"display_name", display}, {"created_at", at}});
  };
  add("auto", "auto (routed by the rules)");
  for (const auto& [name, tier] : config.tiers) add(name, "tier " + name);
  for (const auto& [name, model] : config.models) add(name, name);
  const std::string first = data.front()["id"].get<std::string>();
  const std::string last = data.back()["id"].get<std::string>();
  return json{{"data", std::move(data)}, {"has_more", false}, {"first_id", first}, {"last_id", last}}.dump();
}

std::string rules_status_json(const std::vector<WorkloadStatus>& status) {
  json workloads = json::array();
  for (const WorkloadStatus& w : status) {
    json item = {{"workload", w.workload},
                 {"rules_path", w.rules_path},
                 {"version", w.version},
                 {"activated_at", iso8601(w.activated_at)},
                 {"activations", w.activations},
                 {"rejections", w.rejections},
                 {"last_error", nullptr},
                 {"last_error_at", nullptr}};
    if (w.last_error) {
      item["last_error"] = *w.last_error;
      item["last_error_at"] = iso8601(w.last_error_at);
    }
    if (!w.shadow_rules_path.empty()) {
      item["shadow"] = {{"rules_path", w.shadow_rules_path},
                        {"version", w.shadow_version.empty() ? json(nullptr) : json(w.shadow_version)},
                        {"error", w.shadow_error ? json(*w.shadow_error) : json(nullptr)},
                        {"evaluated", w.shadow.evaluated},
                        {"agreed", w.shadow.agreed},
                        {"errors", w.shadow.errors},
                        {"dropped", w.shadow.dropped}};
    }
    workloads.push_back(std::move(item));
  }
  return json{{"workloads", std::move(workloads)}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace internal

using namespace internal;

ServerLimits server_limits(const GatewaySettings& s) {
  ServerLimits l;
  l.max_body_bytes = s.max_body_bytes;
  l.max_header_count = s.max_header_count;
  l.header_timeout = s.header_timeout;
  l.body_timeout = s.body_timeout;
  l.idle_timeout = s.idle_timeout;
  l.max_request_memory = s.max_request_memory;
  l.max_inflight_bytes = s.max_inflight_bytes;
  return l;
}

// Everything a config determines, immutable once open.
struct Gateway::Runtime {
  struct Key {
    std::string name;
    std::string secret;
    std::string workload;
    std::vector<std::string> budget_scopes;  // {"key:NAME"} when the key has a budget
  };
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Dispatcher> dispatcher;  // after the engine: destroyed first
  bool keys_required = false;              // [gateway.keys] has entries (set or not)
  std::vector<Key> keys;                   // the enabled ones
  std::string models_openai;
  std::string models_anthropic;

  const Config& config() const { return engine->config(); }

  // The enabled key equal to `given`, or null. Compares with every key, each
  // in constant time, so the time taken does not say which one matched.
  const Key* find_key(std::string_view given) const {
    const Key* found = nullptr;
    for (const Key& k : keys) {
      if (same_secret(given, k.secret) && found == nullptr) found = &k;
    }
    return given.empty() ? nullptr : found;
  }
};

// One API request on its way through its fiber.
struct Gateway::Job {
  std::shared_ptr<const Runtime> runtime;
  std::shared_ptr<Response> response;
  ParsedRequest request;
  Endpoint endpoint = Endpoint::kChatCompletions;
  std::string workload;
  std::vector<std::string> budget_scopes;
  Target target;
  Clock::time_point received;
  std::shared_ptr<Cancellation> client_gone;  // the server's: cancelled when the client disconnects
  std::chrono::milliseconds timeout{0};       // the request's deadline, from `received`
  std::string timeout_source;                 // which setting gave it, for messages
  bool holds_slot = true;  // counted in in_flight_ until the model call is over
  bool answered = false;   // finish() was called
};

Gateway::Gateway(std::string config_path, std::shared_ptr<spdlog::logger> log, std::shared_ptr<Ledger> ledger,
                 std::string ledger_path)
    : config_path_(std::move(config_path)),
      log_(std::move(log)),
      ledger_(std::move(ledger)),
      ledger_path_(std::move(ledger_path)) {}

Gateway::~Gateway() = default;

Result<std::unique_ptr<Gateway>> Gateway::open(const std::string& config_path, std::shared_ptr<spdlog::logger> log) {
  auto config = load_config(config_path);
  if (!config.ok()) return config.status();
  const std::string ledger_path = config->gateway.ledger;
  // The ledger: the SQLite file [gateway] ledger names, or PostgreSQL when
  // [ledger] url is set (the stored responses stay in the SQLite file).
  auto sink = open_configured_ledger(config->ledger, ledger_path);
  if (!sink.ok()) return sink.status();
  // A failing ledger is reported, never per record: the first ten, then every thousandth.
  auto failures = std::make_shared<std::atomic<std::uint64_t>>(0);
  auto ledger = std::make_shared<Ledger>(
      std::vector<std::shared_ptr<LedgerSink>>{std::move(sink).value()},
      [log, failures](const std::string& sink_name, const std::string& message) {
        const std::uint64_t n = ++*failures;
        if (n <= 10 || n % 1000 == 0) log->error("ledger {}: {} ({} failures so far)", sink_name, message, n);
      });
  auto runtime = open_runtime(std::move(config).value(), ledger, log);
  if (!runtime.ok()) return runtime.status();
  std::unique_ptr<Gateway> g(new Gateway(config_path, log, ledger, ledger_path));
  g->runtime_ = std::move(runtime).value();
  const GatewaySettings& settings = g->runtime_->config().gateway;
  auto store = ResponseStore::open(ledger_path, settings.stored_responses, settings.stored_response_max_age);
  if (!store.ok()) return store.status();
  g->responses_ = std::move(store).value();
  return g;
}

Result<std::shared_ptr<const Gateway::Runtime>> Gateway::open_runtime(Config config,
                                                                      const std::shared_ptr<Ledger>& ledger,
                                                                      const std::shared_ptr<spdlog::logger>& log) {
  EngineOptions options;
  options.watch_rules = true;
  options.on_reload = [log](const ReloadEvent& e) {
    if (e.shadow) {
      if (e.kind == ReloadEvent::Kind::kActivated) {
        log->info("shadow rules activated: workload {} {} version {}", e.workload, e.rules_path,
                  e.version.substr(0, 12));
      } else {
        log->warn("shadow rules rejected: workload {} {}: {}; no shadow evaluation until it loads", e.workload,
                  e.rules_path, e.error);
      }
    } else if (e.kind == ReloadEvent::Kind::kActivated) {
      log->info("rules activated: workload {} {} version {}", e.workload, e.rules_path, e.version.substr(0, 12));
    } else {
      log->warn("rules rejected: workload {} {}: {}; still serving {}", e.workload, e.rules_path, e.error,
                e.previous_version.substr(0, 12));
    }
  };
  options.shadow_ledger = ledger;
  const std::string ledger_path = ledger_location(config.ledger, config.gateway.ledger);
  const bool postgres = is_postgres_url(ledger_path);
  // The token factors `switchboard calibrate` stored raise the counts of the
  // models counted with a stand-in tokenizer (calibration.h).
  std::error_code factors_error;
  if (postgres || std::filesystem::exists(ledger_path, factors_error)) {
    auto factors = read_token_factors(ledger_path);
    if (!factors.ok()) return factors.status();
    apply_token_factors(config, *factors);
  }
  auto engine = Engine::open(std::move(config), std::move(options));
  if (!engine.ok()) return engine.status();
  auto rt = std::make_shared<Runtime>();
  rt->engine = std::move(engine).value();
  for (const WorkloadStatus& s : rt->engine->status()) {
    if (s.shadow_error) {
      log->warn("shadow rules of workload {} do not load: {}; no shadow evaluation until they do", s.workload,
                *s.shadow_error);
    }
  }
  const Config& c = rt->engine->config();
  auto clients = ModelClients::from_config(c);
  if (!clients.ok()) return clients.status();

  // Budgets continue: every scope's spend in its current period (workloads,
  // keys, tags) from the ledger, which names the scopes each call was
  // charged to. A reload reads it again into the new engine's fresh book.
  std::error_code exists_error;
  if (postgres || std::filesystem::exists(ledger_path, exists_error)) {
    if (ledger) (void)ledger->flush();
    auto loaded = load_budget_spend(*rt->engine, ledger_path);
    if (!loaded.ok()) return loaded.status();
  }
  const auto now = std::chrono::system_clock::now();
  rt->keys_required = !c.gateway.keys.empty();
  for (const GatewayKey& k : c.gateway.keys) {
    const char* secret = std::getenv(k.key_env.c_str());
    if (secret == nullptr || *secret == '\0') {
      log->warn("gateway key '{}' is disabled: {} is not set", k.name, k.key_env);
      continue;
    }
    // Every key's calls are charged to its scope, capped or not, so its
    // spend is in the ledger when a cap is added later.
    Runtime::Key key{k.name, secret, k.workload, {key_budget_scope(k.name)}};
    if (k.budget) rt->engine->budgets().set_limit(BudgetLimit{key_budget_scope(k.name), *k.budget, k.budget_period});
    rt->keys.push_back(std::move(key));
  }

  std::map<std::string, std::string> keyless;  // key variable -> the models it leaves to the sim provider
  for (const auto& [name, model] : c.models) {
    if (c.effective_provider(model) == "sim" && model.provider != "sim" && !model.api_key_env.empty()) {
      std::string& models = keyless[model.api_key_env];
      models += (models.empty() ? "" : ", ") + name;
    }
  }
  for (const auto& [variable, models] : keyless) {
    log->info("{} is not set: {} served by the offline sim provider", variable, models);
  }

  DispatcherOptions dispatch;
  dispatch.ledger = ledger;
  rt->dispatcher = std::make_unique<Dispatcher>(*rt->engine, std::move(clients).value(), std::move(dispatch));
  rt->models_openai = models_openai(c, unix_seconds());
  rt->models_anthropic = models_anthropic(c, now);
  return std::shared_ptr<const Runtime>(std::move(rt));
}

std::shared_ptr<const Gateway::Runtime> Gateway::runtime() const {
  std::lock_guard<std::mutex> lock(runtime_mu_);
  return runtime_;
}

bool Gateway::identify(const HttpRequest& request, Response& response, Endpoint endpoint, ApiShape shape,
                       Caller& out) {
  const auto& m = request.message;
  const std::shared_ptr<const Runtime> rt = runtime();
  const Config& config = rt->config();
  if (rt->keys_required) {
    const std::string_view given = presented_key(m);
    const Runtime::Key* found = rt->find_key(given);
    if (found == nullptr) {
      reply_error(response, endpoint, request.received, shape, key_error(shape, given));
      return false;
    }
    out.workload = found->workload;
    out.budget_scopes = found->budget_scopes;
  } else if (auto it = m.find("x-switchboard-workload"); it != m.end()) {
    out.workload = std::string(it->value());
    if (config.find_workload(out.workload) == nullptr) {
      std::string known;
      for (const auto& [name, w] : config.workloads) known += (known.empty() ? "" : ", ") + name;
      reply_error(response, endpoint, request.received, shape,
                  api_error(shape, 404, "workload_not_found",
                            "unknown workload '" + out.workload +
                                "' (x-switchboard-workload); this gateway serves: " + known));
      return false;
    }
  } else {
    out.workload = config.gateway.default_workload;
  }
  for (std::string& scope : tag_budget_scopes(config, m)) out.budget_scopes.push_back(std::move(scope));
  out.timeout = config.gateway.request_timeout;
  out.timeout_source = "request_timeout_ms";
  if (auto it = m.find("x-switchboard-timeout-ms"); it != m.end()) {
    const std::string_view v = it->value();
    std::int64_t ms = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
    if (ec != std::errc() || end != v.data() + v.size() || ms <= 0) {
      reply_error(response, endpoint, request.received, shape,
                  api_error(shape, 400, "invalid_request",
                            "header x-switchboard-timeout-ms must be a whole number of milliseconds above 0"));
      return false;
    }
    if (ms < out.timeout.count()) {
      out.timeout = std::chrono::milliseconds(ms);
      out.timeout_source = "x-switchboard-timeout-ms";
    }
  }
  // Aliases of the runtime: each keeps it alive while the request uses it.
  out.engine = std::shared_ptr<const Engine>(rt, rt->engine.get());
  out.dispatcher = std::shared_ptr<const Dispatcher>(rt, rt->dispatcher.get());
  return true;
}

Status Gateway::reload() {
  std::lock_guard<std::mutex> reloading(reload_mu_);
  auto config = load_config(config_path_);
  if (!config.ok()) return config.status();
  const std::shared_ptr<const Runtime> old = runtime();
  const GatewaySettings& was = old->config().gateway;
  GatewaySettings& now = config->gateway;
  if (now.listen_host != was.listen_host || now.listen_port != was.listen_port) {
    log_->warn("[gateway] listen changed: takes effect on restart");
  }
  if (now.threads != was.threads) log_->warn("[gateway] threads changed: takes effect on restart");
  if (now.busy_poll != was.busy_poll) log_->warn("[gateway] busy_poll_us changed: takes effect on restart");
  if (now.stored_responses != was.stored_responses || now.stored_response_max_age != was.stored_response_max_age) {
    log_->warn("[gateway] stored_responses / stored_response_max_age_s changed: takes effect on restart");
  }
  if (now.ledger != ledger_path_) {
    log_->warn("[gateway] ledger changed: takes effect on restart; still writing {}", ledger_path_);
    now.ledger = ledger_path_;
  }
  const LedgerSettings& was_ledger = old->config().ledger;
  LedgerSettings& now_ledger = config->ledger;
  if (now_ledger.url != was_ledger.url || now_ledger.spool != was_ledger.spool ||
      now_ledger.spool_limit_bytes != was_ledger.spool_limit_bytes) {
    log_->warn("[ledger] url / spool / spool_limit_mb changed: takes effect on restart");
    now_ledger.url = was_ledger.url;
    now_ledger.spool = was_ledger.spool;
    now_ledger.spool_limit_bytes = was_ledger.spool_limit_bytes;
  }
  auto next = open_runtime(std::move(config).value(), ledger_, log_);
  if (!next.ok()) return next.status();
  std::lock_guard<std::mutex> lock(runtime_mu_);
  runtime_ = std::move(next).value();
  return Status();
}

GatewaySettings Gateway::settings() const { return runtime()->config().gateway; }

Status Gateway::flush_ledger() {
  // The shadow records of the last requests first, within [shadow] drain_timeout_ms.
  const std::shared_ptr<const Runtime> rt = runtime();
  rt->engine->wait_for_shadow(rt->config().shadow.drain_timeout);
  return ledger_->flush();
}

void Gateway::reply(Response& response, Endpoint endpoint, Clock::time_point received, int http_status,
                    std::string_view content_type, std::string_view headers, std::string_view body,
                    std::optional<std::chrono::nanoseconds> upstream) {
  std::string with_overhead;
  if (upstream) {
    const std::chrono::nanoseconds overhead = Clock::now() - received - *upstream;
    with_overhead.reserve(headers.size() + 40);
    with_overhead = headers;
    add_header(with_overhead, "x-switchboard-overhead-ms", overhead_ms(overhead));
    headers = with_overhead;
    metrics_.count_overhead(endpoint, overhead);
  }
  // Counted before it leaves: a client that reads /metrics after its answer sees it.
  metrics_.count_request(endpoint, http_status, Clock::now() - received);
  response.finish(
      format_response(http_status, content_type, headers, body, !response.keep_alive(), response.version()));
}

void Gateway::reply_error(Response& response, Endpoint endpoint, Clock::time_point received, ApiShape shape,
                          const ApiError& error, std::string_view headers,
                          std::optional<std::chrono::nanoseconds> upstream) {
  reply(response, endpoint, received, error.http_status, kJson, headers, render_error(shape, error), upstream);
}

std::string Gateway::reject(int http_status, std::string_view target, std::string_view message,
                            std::string_view extra_headers) {
  const Endpoint endpoint = route(path_of(target));
  const ApiShape shape = shape_of(endpoint);
  const char* code = "bad_request";
  switch (http_status) {
    case 413: code = "request_too_large"; break;
    case 431: code = "request_header_fields_too_large"; break;
    case 500: code = "internal_error"; break;
    case 501: code = "not_implemented"; break;
    case 503: code = "overloaded"; break;
    default: break;
  }
  metrics_.count_request(endpoint, http_status, Clock::duration::zero());
  return format_response(http_status, kJson, extra_headers,
                         render_error(shape, api_error(shape, http_status, code, std::string(message))), true, 11);
}

void Gateway::handle(HttpRequest&& request, std::shared_ptr<Response> response) {
  namespace http = boost::beast::http;
  const auto& m = request.message;
  const Endpoint endpoint = route(path_of(m.target()));
  const Clock::time_point received = request.received;
  const auto header = [&](std::string_view name) {
    auto it = m.find(name);
    return it == m.end() ? std::string_view() : std::string_view(it->value());
  };

  // Every answer (errors and streams included) gets the CORS grants its
  // origin has; a HEAD answer is a GET's without the body.
  const std::shared_ptr<const Runtime> serving = runtime();  // holds what `origins` refers to
  const std::vector<std::string>& origins = serving->config().gateway.cors_origins;
  std::string cors = cors_headers(origins, header("origin"));
  const bool head = m.method() == http::verb::head;
  if (!cors.empty() || head) response = std::make_shared<EditedResponse>(std::move(response), std::move(cors), head);
  const http::verb method = head ? http::verb::get : m.method();

  const bool post_route = endpoint == Endpoint::kChatCompletions || endpoint == Endpoint::kMessages ||
                          endpoint == Endpoint::kCountTokens || endpoint == Endpoint::kEmbeddings;
  const std::string_view allowed = post_route ? "POST, OPTIONS" : "GET, HEAD, OPTIONS";
  const auto wrong_method = [&](ApiShape shape) {
    std::string allow;
    add_header(allow, "Allow", allowed);
    reply_error(*response, endpoint, received, shape,
                api_error(shape, 405, "method_not_allowed",
                          std::string(m.method_string()) + " " + std::string(endpoint_label(endpoint)) +
                              " is not supported; use " + std::string(post_route ? "POST" : "GET or HEAD")),
                allow);
  };
  if (method == http::verb::options && endpoint != Endpoint::kOther) {
    const OptionsAnswer a = answer_options(origins, allowed, header("origin"),
                                           header("access-control-request-method"),
                                           header("access-control-request-headers"));
    if (a.status == 204) return reply(*response, endpoint, received, 204, {}, a.headers, {});
    return reply_error(*response, endpoint, received, ApiShape::kOpenAI,
                       api_error(ApiShape::kOpenAI, a.status, "cors_not_allowed", a.error), a.headers);
  }

  switch (endpoint) {
    case Endpoint::kChatCompletions:
    case Endpoint::kResponses:
    case Endpoint::kMessages: {
      const ApiShape shape = shape_of(endpoint);
      if (method != http::verb::post) return wrong_method(shape);
      return serve_api(std::move(request), std::move(response), endpoint, shape);
    }
    case Endpoint::kCountTokens:
      if (method != http::verb::post) return wrong_method(ApiShape::kAnthropic);
      return serve_count_tokens(std::move(request), std::move(response));
    case Endpoint::kEmbeddings:
      if (method != http::verb::post) return wrong_method(ApiShape::kOpenAI);
      return serve_embeddings(std::move(request), std::move(response));
    case Endpoint::kHealthz:
      if (method != http::verb::get) return wrong_method(ApiShape::kOpenAI);
      return reply(*response, endpoint, received, 200, kJson, {}, R"({"status":"ok"})");
    case Endpoint::kMetrics: {
      if (method != http::verb::get) return wrong_method(ApiShape::kOpenAI);
      const std::shared_ptr<const Runtime> rt = runtime();
      std::vector<std::pair<std::string, ModelHealth>> health;
      for (const auto& [name, model] : rt->engine->config().models) {
        if (model.kind == ModelKind::kChat) health.emplace_back(name, rt->engine->health().snapshot(name));
      }
      std::optional<BudgetBook::StateCounters> state;
      std::optional<HealthSharing> sharing;
      if (rt->engine->config().state.backend == StateSettings::Backend::kRedis) {
        state = rt->engine->budgets().state_counters();
        sharing = rt->engine->health().sharing();
      }
      const std::string text = metrics_.render(rt->engine->status(), upstream_in_flight(), health, state, sharing);
      return reply(*response, endpoint, received, 200, "text/plain; version=0.0.4; charset=utf-8", {}, text);
    }
    case Endpoint::kModels:
    case Endpoint::kModel:
    case Endpoint::kRulesStatus: {
      const bool anthropic = endpoint != Endpoint::kRulesStatus && m.find("anthropic-version") != m.end();
      const ApiShape shape = anthropic ? ApiShape::kAnthropic : ApiShape::kOpenAI;
      if (method != http::verb::get) return wrong_method(shape);
      const std::shared_ptr<const Runtime> rt = runtime();
      if (rt->keys_required) {
        const std::string_view given = presented_key(m);
        if (rt->find_key(given) == nullptr)
          return reply_error(*response, endpoint, received, shape, key_error(shape, given));
      }
      if (endpoint == Endpoint::kModels) {
        return reply(*response, endpoint, received, 200, kJson, {},
                     anthropic ? rt->models_anthropic : rt->models_openai);
      }
      if (endpoint == Endpoint::kModel) {
        const std::string_view path = path_of(m.target());
        const std::optional<std::string> id = percent_decode(path.substr(path.find("/models/") + 8));
        const std::optional<std::string> entry =
            id ? listed_model(anthropic ? rt->models_anthropic : rt->models_openai, *id) : std::nullopt;
        if (!entry) {
          ApiError e = api_error(shape, 404, "model_not_found",
                                 "the model '" + (id ? *id : std::string(path.substr(11))) +
                                     "' does not exist here: GET /v1/models lists \"auto\", every tier and every "
                                     "model");
          e.param = shape == ApiShape::kOpenAI ? "model" : "";
          return reply_error(*response, endpoint, received, shape, e);
        }
        return reply(*response, endpoint, received, 200, kJson, {}, *entry);
      }
      return reply(*response, endpoint, received, 200, kJson, {}, rules_status_json(rt->engine->status()));
    }
    case Endpoint::kOther:
      break;
  }
  reply_error(*response, endpoint, received, ApiShape::kOpenAI,
              api_error(ApiShape::kOpenAI, 404, "not_found",
                        "no route " + std::string(m.method_string()) + " " + std::string(path_of(m.target())) +
                            "; the gateway serves POST /v1/chat/completions, POST /v1/responses, POST /v1/messages, "
                            "POST /v1/messages/count_tokens, POST /v1/embeddings, GET /v1/models, "
                            "GET /v1/models/{id}, "
                            "GET /v1/rules/status, GET /healthz and GET /metrics (HEAD on each GET route, "
                            "OPTIONS on each route)"));
}

void Gateway::serve_api(HttpRequest&& request, std::shared_ptr<Response> response, Endpoint endpoint, ApiShape shape) {
  const auto& m = request.message;
  const Clock::time_point received = request.received;
  std::shared_ptr<const Runtime> rt = runtime();
  const Config& config = rt->config();

  auto job = std::make_shared<Job>();

  // Who is asking: the key's workload, or the header's, or the default.
  if (rt->keys_required) {
    const std::string_view given = presented_key(m);
    const Runtime::Key* found = rt->find_key(given);
    if (found == nullptr) return reply_error(*response, endpoint, received, shape, key_error(shape, given));
    job->workload = found->workload;
    job->budget_scopes = found->budget_scopes;
  } else if (auto it = m.find("x-switchboard-workload"); it != m.end()) {
    job->workload = std::string(it->value());
    if (config.find_workload(job->workload) == nullptr) {
      std::string known;
      for (const auto& [name, w] : config.workloads) known += (known.empty() ? "" : ", ") + name;
      return reply_error(*response, endpoint, received, shape,
                         api_error(shape, 404, "workload_not_found",
                                   "unknown workload '" + job->workload +
                                       "' (x-switchboard-workload); this gateway serves: " + known));
    }
  } else {
    job->workload = config.gateway.default_workload;
  }
  for (std::string& scope : tag_budget_scopes(config, m)) job->budget_scopes.push_back(std::move(scope));

  // The deadline: the config's, or less when the client asks for less.
  job->timeout = config.gateway.request_timeout;
  job->timeout_source = "request_timeout_ms";
  if (auto it = m.find("x-switchboard-timeout-ms"); it != m.end()) {
    const std::string_view v = it->value();
    std::int64_t ms = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), ms);
    if (ec != std::errc() || end != v.data() + v.size() || ms <= 0) {
      return reply_error(*response, endpoint, received, shape,
                         api_error(shape, 400, "invalid_request",
                                   "header x-switchboard-timeout-ms must be a whole number of milliseconds above 0"));
    }
    if (ms < job->timeout.count()) {
      job->timeout = std::chrono::milliseconds(ms);
      job->timeout_source = "x-switchboard-timeout-ms";
    }
  }
  job->client_gone = request.client_gone;

  Headers headers;
  headers.reserve(16);
  for (const auto& field : m) headers.emplace_back(field.name_string(), field.value());
  const int depth = config.gateway.max_json_depth;
  const Workload* workload = config.find_workload(job->workload);  // its untrusted_tools feed the step
  // Initialized from the parse's own result (a ParsedRequest moved costs a
  // few hundred instructions: its step and request are many strings).
  ApiResult<ParsedRequest> parsed = [&] {
    switch (shape) {
      case ApiShape::kAnthropic: return parse_anthropic_messages(m.body(), headers, depth, workload);
      case ApiShape::kResponses:
        return parse_openai_responses(
            m.body(), headers, depth,
            [this](const std::string& id) {
              Result<std::optional<std::string>> found = responses_->get(id);
              if (found.ok()) return *found;
              log_->error("previous_response_id {}: {}", id, found.status().message());
              return std::optional<std::string>();
            },
            workload);
      case ApiShape::kOpenAI: break;
    }
    return parse_openai_chat(m.body(), headers, depth, workload);
  }();
  if (!parsed.ok()) return reply_error(*response, endpoint, received, shape, parsed.error);
  job->request = std::move(*parsed.value);
  // Same-protocol passthrough: the listed headers travel with the client's
  // unmodelled fields (the Responses API has no upstream of its own kind).
  Passthrough& passthrough = job->request.call.request.passthrough;
  if (passthrough.api != WireApi::kNone) {
    for (const std::string& name : config.gateway.passthrough_headers) {
      for (const auto& field : m) {
        if (boost::beast::iequals(field.name_string(), name)) passthrough.headers.emplace_back(name, field.value());
      }
    }
  }

  // The model asked for.
  const std::string& model = job->request.model;
  if (model == "auto" || model.empty()) {
    job->target.kind = Target::Kind::kAuto;
  } else if (config.find_tier(model) != nullptr) {
    job->target = {Target::Kind::kTier, model};
  } else if (config.find_model(model) != nullptr) {
    job->target = {Target::Kind::kModel, model};
  } else {
    ApiError e = api_error(shape, 404, "model_not_found",
                           "the model '" + model + "' does not exist here: ask for \"auto\", a tier or a model that "
                           "GET /v1/models lists");
    e.param = "model";
    return reply_error(*response, endpoint, received, shape, e);
  }

  // At most max_upstream_calls model calls at once; beyond, no queue.
  const int bound = config.gateway.max_upstream_calls;
  if (in_flight_.fetch_add(1, std::memory_order_acq_rel) >= bound) {
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    return reply_error(*response, endpoint, received, shape,
                       api_error(shape, 503, "overloaded",
                                 "the gateway is at its limit of " + std::to_string(bound) +
                                     " concurrent model calls (max_upstream_calls); retry shortly"));
  }
  job->runtime = std::move(rt);
  job->response = std::move(response);
  job->endpoint = endpoint;
  job->received = received;
  fibers(*request.io).spawn([this, job = std::move(job)] {
    try {
      run(*job);
    } catch (const std::exception& e) {
      // Out of memory, say: a 500 (when nothing went out yet) and the
      // connection closes, rather than leave it waiting.
      log_->error("request failed: {}", e.what());
      if (!job->answered) {
        in_flight_.fetch_sub(job->holds_slot ? 1 : 0, std::memory_order_acq_rel);
        job->response->abort(reject(500, endpoint_label(job->endpoint), "internal error: the request failed"));
      }
    }
  });
}

void Gateway::run(Job& job) {
  const Runtime& rt = *job.runtime;
  const Config& config = rt.config();
  Response& response = *job.response;
  const ParsedRequest& request = job.request;
  const ApiShape shape = request.shape;
  const unsigned version = response.version();
  const std::string trace_id = new_trace_id();
  const std::string id =
      (shape == ApiShape::kOpenAI ? "chatcmpl-" : shape == ApiShape::kResponses ? "resp_" : "msg_") + trace_id;
  const std::int64_t created = unix_seconds();
  StepCall& call = job.request.call;
  call.trace_id = trace_id;
  call.budget_scopes = job.budget_scopes;
  call.bounds.deadline = job.received + job.timeout;
  call.bounds.deadline_source = job.timeout_source + " = " + std::to_string(job.timeout.count());
  call.bounds.cancellation = job.client_gone;

  const auto release_slot = [&] {
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    job.holds_slot = false;
  };

  // The key's and workload's rate limits, counted before the rules run so
  // they see the headroom (ctx.rate_requests_left); the dispatcher does not
  // count the step again (call.rate_counted), but counts each model it calls.
  RateAdmission rate = rt.engine->admit_rate(job.workload, call.step, call.request.max_output_tokens.value_or(0),
                                             job.budget_scopes, trace_id);
  if (!rate.status.ok()) {
    release_slot();
    if (rate.refusal) {  // acknowledged means recorded: a refusal too
      rate.refusal->call_id = new_trace_id();
      ledger_->record(*rate.refusal);
      if (const Status recorded = ledger_->flush(); !recorded.ok()) {
        const std::uint64_t n = metrics_.count_unrecorded();
        if (n <= 10 || n % 1000 == 0) {
          log_->error("trace {}: refused without a ledger record: {} ({} so far)", trace_id, recorded.message(), n);
        }
      }
    }
    if (rate.status.code() == Status::Code::kRateLimited) metrics_.count_rate_limited(rate.limited_by);
    std::string headers = switchboard_headers("", "", trace_id, std::nullopt) + retry_after_header(rate.status);
    const ApiError e = step_error(shape, rate.status);
    job.answered = true;
    return reply_error(response, job.endpoint, job.received, shape, e, headers, std::chrono::nanoseconds(0));
  }
  call.rate_counted = true;
  const std::string remaining = remaining_headers(rate);

  // Dispatcher::run is decide + execute; holding the decision in between
  // lets the client's model, reasoning and max-tokens choices apply to it.
  CallContext ctx;
  ctx.trace_id = trace_id;  // the shadow record of the step joins its calls by it
  ctx.rate_requests_left = rate.requests_left;
  ctx.rate_tokens_left = rate.tokens_left;
  Result<Decision> decided = rt.engine->decide(job.workload, call.step, ctx);
  if (!decided.ok()) {
    release_slot();
    const int status = decided.status().code() == Status::Code::kNotFound ? 404 : 500;
    const ApiError e = api_error(shape, status, status == 404 ? "workload_not_found" : "internal_error",
                                 decided.status().message());
    job.answered = true;
    return reply_error(response, job.endpoint, job.received, shape, e, {}, std::chrono::nanoseconds(0));
  }
  Decision decision = std::move(decided).value();
  if (job.target.kind != Target::Kind::kAuto) {
    // Honoured; the rules' own choice stays in the reason.
    const Tier* tier = job.target.kind == Target::Kind::kTier ? config.find_tier(job.target.name)
                                                              : config.tier_of(job.target.name);
    decision.reason = "requested by client (the rules chose " + decision.tier + "/" + decision.model +
                      (decision.reason.empty() ? "" : ": " + decision.reason) + ")";
    decision.model = job.target.kind == Target::Kind::kTier ? tier->models.front() : job.target.name;
    decision.tier = tier != nullptr ? tier->name : decision.tier;
    decision.fanout = 1;
    decision.aggregate.clear();
    decision.requested = true;
  }
  if (request.reasoning && !decision.reasoning_pinned) decision.reasoning = *request.reasoning;
  if (request.max_output_tokens) decision.max_output_tokens = *request.max_output_tokens;

  // Streaming: the head goes as soon as an upstream accepted the call (its
  // kStart chunk; a failure before it is an ordinary error response), naming
  // the model that accepted it. From then on the stream's writes go through `live`,
  // which keeps the connection open with keep-alives while the upstream is
  // quiet ([gateway] stream_keepalive_ms).
  std::unique_ptr<StreamWriter> writer;
  std::shared_ptr<KeepAlive::Stream> live;
  struct CloseOnExit {  // however run() ends, no keep-alive outlives the writer
    std::shared_ptr<KeepAlive::Stream>& stream;
    ~CloseOnExit() {
      if (stream) stream->close();
    }
  } close_live{live};
  bool broken = false;  // a restart after text already went out: the stream has failed
  // `upstream`: the step's time waiting on models so far (gateway.h, "Overhead").
  const auto stream_head = [&](const std::string& model, const std::string& tier, std::int64_t lowered_cap,
                               std::chrono::nanoseconds upstream) {
    std::string headers = switchboard_headers(model, tier, trace_id, std::nullopt);
    if (lowered_cap > 0) {
      add_header(headers, "x-switchboard-output-cap", std::to_string(lowered_cap) + "; reason=budget");
    }
    headers += remaining;
    headers += "Cache-Control: no-cache\r\n";
    if (version >= 11) {
      headers += "Trailer: x-switchboard-cost-usd, x-switchboard-output-cap, x-switchboard-overhead-ms\r\n";
    }
    add_header(headers, "x-switchboard-overhead-ms", overhead_ms(Clock::now() - job.received - upstream));
    writer = make_stream_writer(request, id, created, model);
    StreamWriter* w = writer.get();
    live = keep_alive_.add(
        config.gateway.stream_keepalive, [&response](std::string bytes) { response.write(std::move(bytes)); },
        [w, version] { return format_chunk(w->keep_alive(), version); });
    return format_head(200, "text/event-stream", headers, 0, true, !response.keep_alive(), version) +
           format_chunk(writer->begin(), version);
  };
  if (request.stream) {
    call.on_chunk = [&](const StreamChunk& chunk) {
      if (broken) return;
      if (chunk.restart && writer) {
        broken = true;
        return;
      }
      std::string out;
      if (!writer) {
        out = stream_head(chunk.kind == StreamChunk::Kind::kStart && !chunk.name.empty() ? std::string(chunk.name)
                                                                                         : decision.model,
                          decision.tier, chunk.output_cap_lowered_to, chunk.upstream);
      }
      out += format_chunk(writer->chunk(chunk), version);
      if (!out.empty()) live->write(std::move(out));
    };
  }

  StepResult result = rt.dispatcher->execute(decision, std::move(call));  // its messages lent, not copied
  release_slot();
  metrics_.count_step(result);
  // Every model it could go to was out of room (the last pass-by names it).
  if (result.status.code() == Status::Code::kRateLimited) metrics_.count_rate_limited(model_rate_scope(result.model));
  // Acknowledged means recorded: the answer's last byte (the whole response,
  // or a stream's final event) leaves only after the step's ledger records
  // are committed. The dispatcher wrote them before execute() returned, and
  // flush() returns once every record written before it is in the SQLite WAL
  // (a group commit on this I/O thread, shared with concurrent requests),
  // so a crash after the client has its answer loses no record of it. If the
  // commit fails, the client still gets its answer (the model was called and
  // billed; withholding it would not undo that): the failure is logged and
  // counted in switchboard_ledger_unrecorded_total.
  if (const Status recorded = ledger_->flush(); !recorded.ok()) {
    const std::uint64_t n = metrics_.count_unrecorded();
    if (n <= 10 || n % 1000 == 0) {
      log_->error("trace {}: answered without a ledger record: {} ({} so far)", trace_id, recorded.message(), n);
    }
  }

  // A Responses answer is kept for a later previous_response_id before the
  // client can ask for it (a stream's last event comes after this).
  if (shape == ApiShape::kResponses && request.store && result.status.ok()) {
    if (const Status kept = responses_->put(id, stored_conversation(request, result, id)); !kept.ok()) {
      log_->error("trace {}: the response is not stored for previous_response_id: {}", trace_id, kept.message());
    }
  }

  const std::string& served = result.model.empty() ? result.decision.model : result.model;
  // The cap the budget lowered, said to the client: its answer may end early for it.
  std::string output_cap;
  if (result.output_cap_lowered) output_cap = std::to_string(result.output_cap) + "; reason=budget";
  if (!request.stream || (!writer && !result.status.ok())) {
    std::string headers = switchboard_headers(served, result.decision.tier, trace_id, result.cost);
    if (!output_cap.empty()) add_header(headers, "x-switchboard-output-cap", output_cap);
    headers += remaining;
    headers += retry_after_header(result.status);
    if (!result.status.ok()) {
      const ApiError e = step_error(shape, result.status);
      job.answered = true;
      return reply_error(response, job.endpoint, job.received, shape, e, headers, result.upstream);
    }
    const std::string body = render_response(request, result, id, created);
    job.answered = true;
    return reply(response, job.endpoint, job.received, 200, kJson, headers, body, result.upstream);
  }
  std::string out;
  // Nothing streamed (a tool call, say): the head says what the step did.
  if (!writer) {
    out = stream_head(served, result.decision.tier, result.output_cap_lowered ? result.output_cap : 0,
                      result.upstream);
  }
  int status = 200;
  if (broken) {
    status = 502;
    out += format_chunk(writer->fail(api_error(shape, 502, "stream_restarted",
                                               "the answer broke off after part of it was sent and was retried; "
                                               "a stream cannot take back what it sent: send the request again")),
                        version);
  } else if (!result.status.ok()) {
    const ApiError e = step_error(shape, result.status);
    status = e.http_status;
    out += format_chunk(writer->fail(e), version);
  } else {
    out += format_chunk(writer->end(result), version);
  }
  std::string trailers;
  add_header(trailers, "x-switchboard-cost-usd", usd(result.cost));
  if (!output_cap.empty()) add_header(trailers, "x-switchboard-output-cap", output_cap);
  const std::chrono::nanoseconds overhead = Clock::now() - job.received - result.upstream;
  add_header(trailers, "x-switchboard-overhead-ms", overhead_ms(overhead));
  metrics_.count_overhead(job.endpoint, overhead);
  out += format_last_chunk(trailers, version);
  job.answered = true;
  if (live) live->close();  // no keep-alive after the last bytes
  metrics_.count_request(job.endpoint, status, Clock::now() - job.received);
  response.finish(std::move(out), version < 11);
}

}  // namespace switchboard::gateway
