// Configuration loading. toml++ is called only here; its exceptions stop here.
#include "switchboard/config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string_view>

#include <toml++/toml.h>

#include "switchboard/tokens.h"
#include "state/redis_client.h"
#include "util/file_text.h"
#include "util/name_pattern.h"
#include "util/toml.h"

namespace switchboard {

namespace fs = std::filesystem;

namespace {

using detail::ConfigError;
using detail::where;

const std::set<std::string, std::less<>> kProviders = {"openai", "anthropic", "gemini",
                                                       "openai-compatible", "sim"};

// [models.X] tokenizer and calibration_floor (switchboard/tokens.h): the
// tokenizer a count uses, and for a model counted with a stand-in the least
// factor its count is scaled by.
void read_token_counting(const toml::table& t, const std::string& file, ModelSpec& m) {
  const std::string what = "model '" + m.name + "'";
  m.tokenizer = detail::optional_string(t, "tokenizer", file, what).value_or(default_tokenizer(m.model_id));
  if (!is_known_tokenizer(m.tokenizer)) {
    throw ConfigError(where(file, *t.get("tokenizer")) + ": " + what + ": unknown tokenizer '" + m.tokenizer +
                      "' (expected o200k_base or cl100k_base)");
  }
  if (const toml::node* f = t.get("calibration_floor")) {
    if (!m.counted_with_stand_in()) {
      throw ConfigError(where(file, *f) + ": " + what + ": calibration_floor is for models whose tokenizer is not "
                        "public (providers anthropic, gemini, openai-compatible); '" + m.provider +
                        "' models are counted exactly");
    }
    std::optional<double> floor = f->value<double>();
    if (!floor || !std::isfinite(*floor) || *floor < 1.0 || *floor > 10.0) {
      throw ConfigError(where(file, *f) + ": " + what + ": calibration_floor must be a number from 1.0 to 10.0");
    }
    m.calibration_floor = *floor;
  }
  m.token_factor = m.counted_with_stand_in() ? m.calibration_floor : 1.0;
}

// `requests_per_minute` and `tokens_per_minute` of a key, workload or model
// (PerMinuteLimits): positive whole numbers when written.
PerMinuteLimits read_rate_limits(const toml::table& t, const std::string& file, const std::string& what) {
  PerMinuteLimits r;
  r.requests_per_minute = detail::optional_positive_integer(t, "requests_per_minute", file, what).value_or(0);
  r.tokens_per_minute = detail::optional_positive_integer(t, "tokens_per_minute", file, what).value_or(0);
  return r;
}

ModelSpec read_model(const std::string& name, const toml::node& node, const std::string& file) {
  const toml::table& t = detail::expect_table(node, file, "model '" + name + "'");
  if (const toml::node* price = t.get("price")) {
    // Prices moved to the catalog: one place to update them, versioned with
    // every ledger record.
    const toml::source_region& key_at = t.find("price")->first.source();
    throw ConfigError(where(file, key_at.begin.line > 0 ? key_at : price->source()) + ": model '" + name +
                      "': prices are no longer written in the config; they live in the price catalog "
                      "named by [routing] price_catalog");
  }
  detail::reject_unknown_keys(t, file, "model '" + name + "'",
                              {"provider", "model_id", "endpoint", "api_key_env", "context_window",
                               "default_output_tokens", "max_output_tokens", "thinking_budget",
                               "capabilities", "auto_cache", "kind", "dimensions", "tokenizer",
                               "calibration_floor", "requests_per_minute", "tokens_per_minute"});
  ModelSpec m;
  m.name = name;
  m.source = where(file, node);
  m.rate = read_rate_limits(t, file, "model '" + name + "'");
  m.provider = detail::required_string(t, "provider", file, "model '" + name + "'");
  if (!kProviders.count(m.provider)) {
    throw ConfigError(where(file, *t.get("provider")) + ": model '" + name + "': unknown provider '" +
                      m.provider + "' (expected openai, anthropic, gemini, openai-compatible or sim)");
  }
  m.model_id = detail::optional_string(t, "model_id", file, "model '" + name + "'").value_or(name);
  m.endpoint = detail::optional_string(t, "endpoint", file, "model '" + name + "'").value_or("");
  m.api_key_env = detail::optional_string(t, "api_key_env", file, "model '" + name + "'").value_or("");
  if (m.provider != "sim" && m.endpoint.empty()) {
    throw ConfigError(m.source + ": model '" + name + "': provider '" + m.provider +
                      "' needs an 'endpoint'");
  }
  if (auto kind = detail::optional_string(t, "kind", file, "model '" + name + "'")) {
    if (*kind == "embedding") {
      m.kind = ModelKind::kEmbedding;
    } else if (*kind != "chat") {
      throw ConfigError(where(file, *t.get("kind")) + ": model '" + name + "': kind must be \"chat\" or "
                        "\"embedding\", not \"" + *kind + "\"");
    }
  }
  if (m.kind == ModelKind::kEmbedding) {
    if (m.provider == "anthropic") {
      throw ConfigError(where(file, *t.get("kind")) + ": model '" + name +
                        "': provider 'anthropic' has no embeddings API (embedding models: openai, "
                        "openai-compatible, gemini or sim)");
    }
    m.dimensions = detail::optional_positive_integer(t, "dimensions", file, "model '" + name + "'").value_or(0);
    if (m.dimensions == 0) {
      throw ConfigError(m.source + ": model '" + name + "': an embedding model needs 'dimensions' (the length "
                        "of its vectors, e.g. 1536)");
    }
    if (m.dimensions > 65'536) {
      throw ConfigError(where(file, *t.get("dimensions")) + ": model '" + name + "': dimensions is at most 65536");
    }
  } else if (const toml::node* d = t.get("dimensions")) {
    throw ConfigError(where(file, *d) + ": model '" + name + "': 'dimensions' is for embedding models "
                      "(kind = \"embedding\")");
  }
  m.context_window = detail::required_positive_integer(t, "context_window", file, "model '" + name + "'");
  m.default_output_tokens =
      detail::optional_positive_integer(t, "default_output_tokens", file, "model '" + name + "'")
          .value_or(m.default_output_tokens);
  m.max_output_tokens = detail::optional_positive_integer(t, "max_output_tokens", file, "model '" + name + "'")
                            .value_or(m.max_output_tokens);
  m.auto_cache = detail::optional_bool(t, "auto_cache", file, "model '" + name + "'").value_or(m.auto_cache);
  read_token_counting(t, file, m);
  Capabilities& caps = m.capabilities;
  if (m.provider == "gemini" || m.provider == "sim") caps.audio = true;
  if (m.provider == "openai-compatible") caps.vision = caps.documents = caps.thinking = false;
  if (const toml::node* n = t.get("capabilities")) {
    const std::string what = "model '" + name + "' capabilities";
    const toml::table& c = detail::expect_table(*n, file, what);
    detail::reject_unknown_keys(c, file, what, {"vision", "documents", "audio", "tools", "thinking", "json_schema"});
    caps.vision = detail::optional_bool(c, "vision", file, what).value_or(caps.vision);
    caps.documents = detail::optional_bool(c, "documents", file, what).value_or(caps.documents);
    caps.audio = detail::optional_bool(c, "audio", file, what).value_or(caps.audio);
    caps.tools = detail::optional_bool(c, "tools", file, what).value_or(caps.tools);
    caps.thinking = detail::optional_bool(c, "thinking", file, what).value_or(caps.thinking);
    caps.json_schema = detail::optional_bool(c, "json_schema", file, what).value_or(caps.json_schema);
  }
  if (const toml::node* n = t.get("thinking_budget")) {
    const std::string what = "model '" + name + "' thinking_budget";
    const toml::table& b = detail::expect_table(*n, file, what);
    detail::reject_unknown_keys(b, file, what, {"low", "medium", "high"});
    auto& tb = m.thinking_budget;
    tb.low = detail::optional_positive_integer(b, "low", file, what).value_or(tb.low);
    tb.medium = detail::optional_positive_integer(b, "medium", file, what).value_or(tb.medium);
    tb.high = detail::optional_positive_integer(b, "high", file, what).value_or(tb.high);
    if (!(tb.low <= tb.medium && tb.medium <= tb.high)) {
      throw ConfigError(where(file, *n) + ": " + what + ": low <= medium <= high is required");
    }
    // Anthropic refuses thinking budgets under 1,024 tokens.
    if (m.provider == "anthropic" && tb.low < 1024) {
      throw ConfigError(where(file, *n) + ": " + what + ": Anthropic needs at least 1024 thinking tokens");
    }
  }
  return m;
}

std::chrono::milliseconds read_ms(const toml::table& t, std::string_view key, const std::string& file,
                                  const std::string& what, std::chrono::milliseconds fallback) {
  return std::chrono::milliseconds(
      detail::optional_positive_integer(t, key, file, what).value_or(fallback.count()));
}

void read_calls(CallSettings& c, const toml::node& node, const std::string& file) {
  const std::string what = "[calls]";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what,
                              {"connect_timeout_ms", "first_byte_timeout_ms", "total_timeout_ms",
                               "stall_timeout_ms", "max_response_bytes", "max_attempts",
                               "backoff_initial_ms", "backoff_max_ms", "retry_after_max_ms",
                               "min_answer_tokens"});
  c.connect_timeout = read_ms(t, "connect_timeout_ms", file, what, c.connect_timeout);
  c.first_byte_timeout = read_ms(t, "first_byte_timeout_ms", file, what, c.first_byte_timeout);
  c.total_timeout = read_ms(t, "total_timeout_ms", file, what, c.total_timeout);
  c.stall_timeout = read_ms(t, "stall_timeout_ms", file, what, c.stall_timeout);
  c.max_response_bytes = detail::optional_positive_integer(t, "max_response_bytes", file, what)
                             .value_or(c.max_response_bytes);
  const std::int64_t attempts =
      detail::optional_positive_integer(t, "max_attempts", file, what).value_or(c.max_attempts);
  if (attempts > 10) throw ConfigError(where(file, *t.get("max_attempts")) + ": [calls] max_attempts is at most 10");
  c.max_attempts = static_cast<int>(attempts);
  c.backoff_initial = read_ms(t, "backoff_initial_ms", file, what, c.backoff_initial);
  c.backoff_max = read_ms(t, "backoff_max_ms", file, what, c.backoff_max);
  c.retry_after_max = read_ms(t, "retry_after_max_ms", file, what, c.retry_after_max);
  c.min_answer_tokens =
      detail::optional_positive_integer(t, "min_answer_tokens", file, what).value_or(c.min_answer_tokens);
}

// A cap in dollars at `key` of `t` (a non-negative number), as micro-dollars; none when absent.
std::optional<MicroUsd> read_budget_usd(const toml::table& t, std::string_view key, const std::string& file,
                                        const std::string& what) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  const std::optional<double> usd = n->value<double>();
  if (!usd || !std::isfinite(*usd) || *usd < 0) {
    throw ConfigError(where(file, *n) + ": " + what + ": " + std::string(key) + " must be a non-negative number");
  }
  return std::llround(*usd * 1e6);
}

// A budget period at `key` of `t`: "day" or "month"; `period` is kept when absent.
void read_budget_period(const toml::table& t, std::string_view key, const std::string& file, const std::string& what,
                        BudgetPeriod& period) {
  const std::optional<std::string> name = detail::optional_string(t, key, file, what);
  if (!name) return;
  if (*name == "day") {
    period = BudgetPeriod::kDay;
  } else if (*name == "month") {
    period = BudgetPeriod::kMonth;
  } else {
    throw ConfigError(where(file, *t.get(key)) + ": " + what + ": " + std::string(key) +
                      " must be \"day\" or \"month\"");
  }
}

// A tag name can be a header's: x-switchboard-tag-NAME (compared in lower case).
bool valid_tag_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
  });
}

// [budgets.NAME.VALUE] usd = N, period = "day" | "month".
void read_tag_budgets(std::vector<TagBudget>& out, const toml::node& node, const std::string& file) {
  for (const auto& [name_key, values] : detail::expect_table(node, file, "[budgets]")) {
    const std::string name(name_key.str());
    if (!valid_tag_name(name)) {
      throw ConfigError(where(file, values) + ": [budgets." + name +
                        "]: a tag name is lower-case letters, digits, '-' and '_' (it is sent as the header "
                        "x-switchboard-tag-NAME)");
    }
    for (const auto& [value_key, budget_node] : detail::expect_table(values, file, "[budgets." + name + "]")) {
      TagBudget b;
      b.name = name;
      b.value = std::string(value_key.str());
      b.source = where(file, budget_node);
      const std::string what = "[budgets." + name + "." + b.value + "]";
      if (b.value.empty() || b.value.find_first_of("\r\n") != std::string::npos) {
        throw ConfigError(b.source + ": " + what + ": a tag value is a non-empty header value (one line)");
      }
      const toml::table& t = detail::expect_table(budget_node, file, what);
      detail::reject_unknown_keys(t, file, what, {"usd", "period"});
      const std::optional<MicroUsd> cap = read_budget_usd(t, "usd", file, what);
      if (!cap) throw ConfigError(b.source + ": " + what + ": needs usd (the cap per period)");
      b.cap = *cap;
      read_budget_period(t, "period", file, what, b.period);
      out.push_back(std::move(b));
    }
  }
}

// [workloads.X] shadow_calls = { sample, target, judge, budget_usd, period }:
// every key but period required; the target a chat model or tier, the judge a
// chat model of `c` (its models and tiers are read before the workloads).
ShadowCalls read_shadow_calls(const Config& c, const toml::node& node, const std::string& file,
                              const std::string& workload) {
  const std::string what = workload + " shadow_calls";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what, {"sample", "target", "judge", "budget_usd", "period"});
  ShadowCalls s;
  s.source = where(file, node);
  const toml::node* sample = t.get("sample");
  if (sample == nullptr) throw ConfigError(s.source + ": " + what + ": needs sample (the share of steps shadowed)");
  const std::optional<double> rate = sample->value<double>();
  if (!rate || !std::isfinite(*rate) || *rate <= 0 || *rate > 1) {
    throw ConfigError(where(file, *sample) + ": " + what + ": sample must be a number in (0, 1]");
  }
  s.sample = *rate;
  s.target = detail::required_string(t, "target", file, what);
  const ModelSpec* target_model = c.find_model(s.target);
  const Tier* target_tier = c.find_tier(s.target);
  const ModelSpec* tier_first = target_tier != nullptr ? c.find_model(target_tier->models.front()) : nullptr;
  if ((target_model == nullptr && target_tier == nullptr) ||
      (target_model != nullptr && target_model->kind != ModelKind::kChat) ||
      (tier_first != nullptr && tier_first->kind != ModelKind::kChat)) {
    throw ConfigError(where(file, *t.get("target")) + ": " + what + ": target '" + s.target +
                      "' is not a chat model or tier of the config");
  }
  s.judge = detail::required_string(t, "judge", file, what);
  const ModelSpec* judge = c.find_model(s.judge);
  if (judge == nullptr || judge->kind != ModelKind::kChat) {
    throw ConfigError(where(file, *t.get("judge")) + ": " + what + ": judge '" + s.judge +
                      "' is not a chat model of the config");
  }
  const std::optional<MicroUsd> cap = read_budget_usd(t, "budget_usd", file, what);
  if (!cap) throw ConfigError(s.source + ": " + what + ": needs budget_usd (the shadow calls' cap per period)");
  s.budget = *cap;
  read_budget_period(t, "period", file, what, s.period);
  return s;
}

void read_health(HealthSettings& h, const toml::node& node, const std::string& file) {
  const std::string what = "[health]";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what, {"failure_threshold", "error_rate", "min_calls", "window_s", "cooldown_s"});
  h.failure_threshold = static_cast<int>(std::min<std::int64_t>(
      1'000'000, detail::optional_positive_integer(t, "failure_threshold", file, what).value_or(h.failure_threshold)));
  h.min_calls = static_cast<int>(std::min<std::int64_t>(
      1'000'000, detail::optional_positive_integer(t, "min_calls", file, what).value_or(h.min_calls)));
  h.window = std::chrono::seconds(detail::optional_positive_integer(t, "window_s", file, what).value_or(h.window.count()));
  h.cooldown =
      std::chrono::seconds(detail::optional_positive_integer(t, "cooldown_s", file, what).value_or(h.cooldown.count()));
  if (const toml::node* rate = t.get("error_rate")) {
    const std::optional<double> r = rate->value<double>();
    if (!r || !(*r > 0 && *r <= 1)) {
      throw ConfigError(where(file, *rate) + ": [health] error_rate must be a number above 0 and at most 1");
    }
    h.error_rate = *r;
  }
}

// [state] backend, redis_url, redis_password_env, timeout_ms, on_unavailable,
// replicas, reservation_ttl_s, key_prefix (budget.h, StateSettings).
void read_state(StateSettings& s, const toml::node& node, const std::string& file) {
  const std::string what = "[state]";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what,
                              {"backend", "redis_url", "redis_password_env", "timeout_ms", "on_unavailable",
                               "replicas", "reservation_ttl_s", "key_prefix"});
  if (auto backend = detail::optional_string(t, "backend", file, what)) {
    if (*backend == "memory") {
      s.backend = StateSettings::Backend::kMemory;
    } else if (*backend == "redis") {
      s.backend = StateSettings::Backend::kRedis;
    } else {
      throw ConfigError(where(file, *t.get("backend")) + ": [state] backend must be \"memory\" or \"redis\", not \"" +
                        *backend + "\"");
    }
  }
  bool url_has_password = false;
  if (auto url = detail::optional_string(t, "redis_url", file, what)) {
    auto address = detail::parse_redis_url(*url);
    if (!address.ok()) throw ConfigError(where(file, *t.get("redis_url")) + ": [state] " + address.status().message());
    url_has_password = !address->password.empty();
    s.redis_url = *url;
  }
  if (auto env = detail::optional_string(t, "redis_password_env", file, what)) {
    const toml::node& at = *t.get("redis_password_env");
    if (env->empty()) throw ConfigError(where(file, at) + ": [state] redis_password_env is empty");
    if (s.redis_url.empty()) {
      throw ConfigError(where(file, at) + ": [state] redis_password_env is used only with redis_url");
    }
    if (url_has_password) {
      throw ConfigError(where(file, at) +
                        ": [state] redis_password_env and a password in redis_url: give the password one way");
    }
    s.redis_password_env = *env;
  }
  if (s.backend == StateSettings::Backend::kRedis && s.redis_url.empty()) {
    throw ConfigError(where(file, node) + ": [state] backend = \"redis\" needs redis_url");
  }
  if (s.backend == StateSettings::Backend::kMemory && !s.redis_url.empty()) {
    throw ConfigError(where(file, *t.get("redis_url")) + ": [state] redis_url is used only with backend = \"redis\"");
  }
  const auto bounded = [&](const char* key, std::int64_t fallback, std::int64_t most) {
    const std::int64_t v = detail::optional_positive_integer(t, key, file, what).value_or(fallback);
    if (v > most) {
      throw ConfigError(where(file, *t.get(key)) + ": [state] " + key + " is at most " + std::to_string(most));
    }
    return v;
  };
  s.timeout = std::chrono::milliseconds(bounded("timeout_ms", s.timeout.count(), 60'000));
  s.replicas = static_cast<int>(bounded("replicas", s.replicas, 10'000));
  s.reservation_ttl = std::chrono::seconds(bounded("reservation_ttl_s", s.reservation_ttl.count(), 7 * 24 * 3600));
  if (auto mode = detail::optional_string(t, "on_unavailable", file, what)) {
    if (*mode == "fail_closed") {
      s.on_unavailable = StateSettings::OnUnavailable::kFailClosed;
    } else if (*mode == "local") {
      s.on_unavailable = StateSettings::OnUnavailable::kLocal;
    } else {
      throw ConfigError(where(file, *t.get("on_unavailable")) +
                        ": [state] on_unavailable must be \"fail_closed\" or \"local\", not \"" + *mode + "\"");
    }
  }
  if (auto prefix = detail::optional_string(t, "key_prefix", file, what)) s.key_prefix = *prefix;
}

// [sessions] ttl_s, ttl_1h_s, max_sessions (sessions.h).
void read_sessions(SessionSettings& s, const toml::node& node, const std::string& file) {
  const std::string what = "[sessions]";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what, {"ttl_s", "ttl_1h_s", "max_sessions"});
  constexpr std::int64_t kMaxTtl = 7 * 24 * 3600;       // a week: longer than any provider keeps a cache
  constexpr std::int64_t kMaxSessions = 10'000'000;   // the book's memory bound must be a bound
  const auto bounded = [&](const char* key, std::int64_t fallback, std::int64_t most) {
    const std::int64_t v = detail::optional_positive_integer(t, key, file, what).value_or(fallback);
    if (v > most) {
      throw ConfigError(where(file, *t.get(key)) + ": [sessions] " + key + " is at most " + std::to_string(most));
    }
    return v;
  };
  s.ttl = std::chrono::seconds(bounded("ttl_s", s.ttl.count(), kMaxTtl));
  s.ttl_1h = std::chrono::seconds(bounded("ttl_1h_s", s.ttl_1h.count(), kMaxTtl));
  s.max_sessions = bounded("max_sessions", s.max_sessions, kMaxSessions);
}

void read_shadow(ShadowSettings& s, const toml::node& node, const std::string& file) {
  const std::string what = "[shadow]";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what, {"queue", "drain_timeout_ms"});
  s.queue = detail::optional_positive_integer(t, "queue", file, what).value_or(s.queue);
  if (s.queue > 1'000'000) throw ConfigError(where(file, *t.get("queue")) + ": [shadow] queue is at most 1000000");
  s.drain_timeout = std::chrono::milliseconds(
      detail::optional_integer(t, "drain_timeout_ms", file, what).value_or(s.drain_timeout.count()));
  if (s.drain_timeout.count() < 0) {
    throw ConfigError(where(file, *t.get("drain_timeout_ms")) + ": [shadow] drain_timeout_ms must not be negative");
  }
}

void read_sim(SimSettings& s, const toml::node& node, const std::string& file) {
  const std::string what = "[sim]";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what, {"base_latency_ms", "per_output_token_us", "cache_ttl_s"});
  s.cache_ttl = std::chrono::seconds(detail::optional_positive_integer(t, "cache_ttl_s", file, what).value_or(s.cache_ttl.count()));
  s.base_latency = std::chrono::milliseconds(
      detail::optional_integer(t, "base_latency_ms", file, what).value_or(s.base_latency.count()));
  s.per_output_token = std::chrono::microseconds(
      detail::optional_integer(t, "per_output_token_us", file, what).value_or(s.per_output_token.count()));
  if (s.base_latency.count() < 0 || s.per_output_token.count() < 0) {
    throw ConfigError(where(file, t) + ": [sim] latencies must not be negative");
  }
}

}  // namespace

void detail::read_rule_cost(const toml::node& node, const std::string& file, RuleCostBudget& budget) {
  const std::string what = "[rule_cost]";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what, {"max_instructions", "max_bytes", "max_ns"});
  auto read = [&](std::string_view key, std::optional<CostLimit>& into) {
    if (auto v = detail::optional_positive_integer(t, key, file, what)) into = CostLimit{*v, where(file, *t.get(key))};
  };
  read("max_instructions", budget.max_instructions);
  read("max_bytes", budget.max_bytes);
  read("max_ns", budget.max_ns);
}

namespace {

// Reads the catalog named by [routing] price_catalog and prices every model
// from it: a model the catalog does not price is an error, never $0.
void load_prices(Config& c, const toml::table& routing, bool has_routing, const std::string& file,
                 const std::string& base_dir) {
  const toml::node* at = routing.get("price_catalog");
  if (at == nullptr) {
    throw ConfigError((has_routing ? where(file, routing) : file + ":1:1") +
                      ": [routing] needs 'price_catalog', the prices file (e.g. \"prices.toml\", "
                      "relative to this file)");
  }
  const std::string written = detail::required_string(routing, "price_catalog", file, "[routing]");
  c.price_catalog_path = (fs::path(base_dir) / written).lexically_normal().string();
  std::error_code ec;
  if (!fs::is_regular_file(c.price_catalog_path, ec)) {
    throw ConfigError(where(file, *at) + ": [routing] price_catalog: file '" + written + "' does not exist");
  }
  Result<PriceCatalog> catalog = PriceCatalog::load(c.price_catalog_path);
  // The catalog's own errors already name their place in the catalog file.
  if (!catalog.ok()) throw ConfigError(catalog.status().message());
  c.prices = std::make_shared<const PriceCatalog>(std::move(catalog).value());
  for (auto& [name, model] : c.models) {
    const ModelPrices* p = c.prices->find(name);
    if (p == nullptr) {
      throw ConfigError(model.source + ": model '" + name + "' has no price in the catalog " +
                        c.price_catalog_path + "; a model without a price cannot be routed to");
    }
    model.price.input = p->base.input;
    model.price.cached_input = p->base.cached_input;
    model.price.output = p->base.output;
  }
}

// [gateway] cors_origins: "*" alone, or origins as a browser sends them
// (scheme://host[:port]: http or https, no path, no trailing slash), each once.
std::vector<std::string> read_cors_origins(const toml::node& node, const std::string& file) {
  const std::string what = "[gateway] cors_origins";
  if (!node.is_array()) {
    throw ConfigError(where(file, node) + ": " + what +
                      " must be a list of origins, e.g. [\"https://app.example.com\"]");
  }
  std::vector<std::string> out;
  for (const toml::node& item : *node.as_array()) {
    const std::optional<std::string> origin = item.value<std::string>();
    const std::string at = where(file, item) + ": " + what + ": ";
    if (!item.is_string() || !origin) throw ConfigError(at + "origins are strings");
    const auto lower = [](std::string s) {
      for (char& ch : s) ch = (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
      return s;
    };
    for (const std::string& seen : out) {
      if (lower(seen) == lower(*origin)) throw ConfigError(at + "'" + *origin + "' is listed twice");
    }
    if (*origin == "*" || (!out.empty() && out.front() == "*")) {
      if (!out.empty()) throw ConfigError(at + "\"*\" allows every origin: list it alone");
      out.push_back(*origin);
      continue;
    }
    const std::string o = lower(*origin);
    const std::size_t scheme_end = o.find("://");
    const std::string scheme = scheme_end == std::string::npos ? "" : o.substr(0, scheme_end);
    const std::string host_port = scheme_end == std::string::npos ? "" : o.substr(scheme_end + 3);
    const std::size_t colon = host_port.rfind(':');
    const bool bracketed = !host_port.empty() && host_port.front() == '[';  // an IPv6 literal
    const bool has_port = colon != std::string::npos && (!bracketed || host_port[colon - 1] == ']');
    const std::string host = has_port ? host_port.substr(0, colon) : host_port;
    const std::string port = has_port ? host_port.substr(colon + 1) : "";
    bool ok = (scheme == "http" || scheme == "https") && !host.empty();
    for (const char ch : host) {
      const bool allowed = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
                           (bracketed && (ch == '[' || ch == ']' || ch == ':'));
      ok = ok && allowed;
    }
    if (has_port) {
      ok = ok && !port.empty() && port.size() <= 5 &&
           port.find_first_not_of("0123456789") == std::string::npos && std::stoi(port) >= 1 &&
           std::stoi(port) <= 65535;
    }
    if (!ok) {
      throw ConfigError(at + "'" + *origin + "' is not an origin: write scheme://host[:port] (http or https, " +
                        "no path, no trailing slash), e.g. \"https://app.example.com\", or \"*\" alone");
    }
    out.push_back(*origin);
  }
  return out;
}

// [gateway] passthrough_headers: header names (RFC 9110 tokens), each once,
// lowercased; none the gateway sets itself.
std::vector<std::string> read_passthrough_headers(const toml::node& node, const std::string& file) {
  const std::string what = "[gateway] passthrough_headers";
  if (!node.is_array()) {
    throw ConfigError(where(file, node) + ": " + what + " must be a list of header names, e.g. [\"anthropic-beta\"]");
  }
  constexpr std::string_view kOwn[] = {"authorization", "x-api-key", "x-goog-api-key", "content-type",
                                       "content-length", "content-encoding", "accept", "accept-encoding",
                                       "host", "connection", "transfer-encoding", "anthropic-version",
                                       "cookie", "te", "upgrade", "keep-alive", "proxy-authorization"};
  std::vector<std::string> out;
  for (const toml::node& item : *node.as_array()) {
    const std::optional<std::string> name = item.value<std::string>();
    const std::string at = where(file, item) + ": " + what + ": ";
    if (!item.is_string() || !name || name->empty()) throw ConfigError(at + "header names are non-empty strings");
    std::string lower;
    for (const char ch : *name) {
      const bool token = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                         std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
      if (!token) throw ConfigError(at + "'" + *name + "' is not a header name");
      lower += (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
    }
    for (std::string_view own : kOwn) {
      if (lower == own) throw ConfigError(at + "'" + *name + "' is the gateway's own to set");
    }
    if (lower.starts_with("x-switchboard-")) throw ConfigError(at + "'" + *name + "' is the gateway's own to read");
    for (const std::string& seen : out) {
      if (seen == lower) throw ConfigError(at + "'" + *name + "' is listed twice");
    }
    out.push_back(std::move(lower));
  }
  return out;
}

void read_gateway(Config& c, const toml::node& node, const std::string& file, const std::string& base_dir) {
  const std::string what = "[gateway]";
  const toml::table& t = detail::expect_table(node, file, what);
  detail::reject_unknown_keys(t, file, what,
                              {"listen", "keys", "default_workload", "ledger", "max_body_bytes",
                               "max_header_count", "header_timeout_ms", "body_timeout_ms", "idle_timeout_ms",
                               "max_upstream_calls", "threads", "busy_poll_us", "max_json_depth", "max_request_memory",
                               "max_inflight_bytes", "request_timeout_ms", "stored_responses",
                               "stored_response_max_age_s", "stream_keepalive_ms", "cors_origins",
                               "passthrough_headers"});
  GatewaySettings& g = c.gateway;
  if (auto listen = detail::optional_string(t, "listen", file, what)) {
    const size_t colon = listen->rfind(':');
    int port = -1;
    if (colon != std::string::npos && colon > 0) {
      try {
        size_t used = 0;
        port = std::stoi(listen->substr(colon + 1), &used);
        if (used != listen->size() - colon - 1) port = -1;
      } catch (const std::exception&) {
        port = -1;
      }
    }
    if (port < 0 || port > 65535) {
      throw ConfigError(where(file, *t.get("listen")) + ": [gateway] listen must be \"HOST:PORT\", e.g. \"127.0.0.1:8080\"");
    }
    g.listen_host = listen->substr(0, colon);
    g.listen_port = port;
  }
  if (auto w = detail::optional_string(t, "default_workload", file, what)) {
    if (!c.workloads.count(*w)) {
      throw ConfigError(where(file, *t.get("default_workload")) + ": [gateway] default_workload: unknown workload '" +
                        *w + "'");
    }
    g.default_workload = *w;
  } else if (!c.workloads.empty() && !c.workloads.count(g.default_workload)) {
    g.default_workload = c.workloads.begin()->first;  // no "default" workload: the first one
  }
  g.ledger = (fs::path(base_dir) / detail::optional_string(t, "ledger", file, what).value_or(g.ledger))
                 .lexically_normal()
                 .string();
  g.max_body_bytes = detail::optional_positive_integer(t, "max_body_bytes", file, what).value_or(g.max_body_bytes);
  g.max_header_count = static_cast<int>(
      detail::optional_positive_integer(t, "max_header_count", file, what).value_or(g.max_header_count));
  g.header_timeout = read_ms(t, "header_timeout_ms", file, what, g.header_timeout);
  g.body_timeout = read_ms(t, "body_timeout_ms", file, what, g.body_timeout);
  g.idle_timeout = read_ms(t, "idle_timeout_ms", file, what, g.idle_timeout);
  g.request_timeout = read_ms(t, "request_timeout_ms", file, what, g.request_timeout);
  if (const auto n = detail::optional_integer(t, "stored_responses", file, what)) {
    if (*n < 0) throw ConfigError(where(file, *t.get("stored_responses")) + ": [gateway] stored_responses must be 0 or more");
    g.stored_responses = *n;
  }
  if (const auto ms = detail::optional_integer(t, "stream_keepalive_ms", file, what)) {
    if (*ms < 0) throw ConfigError(where(file, *t.get("stream_keepalive_ms")) + ": [gateway] stream_keepalive_ms must be 0 or more");
    g.stream_keepalive = std::chrono::milliseconds(*ms);
  }
  if (const auto age = detail::optional_positive_integer(t, "stored_response_max_age_s", file, what)) {
    g.stored_response_max_age = std::chrono::seconds(*age);
  }
  g.max_upstream_calls = static_cast<int>(
      detail::optional_positive_integer(t, "max_upstream_calls", file, what).value_or(g.max_upstream_calls));
  g.threads = static_cast<int>(detail::optional_integer(t, "threads", file, what).value_or(g.threads));
  if (const auto us = detail::optional_integer(t, "busy_poll_us", file, what)) {
    if (*us < 0 || *us > 10'000) {
      throw ConfigError(where(file, *t.get("busy_poll_us")) + ": [gateway] busy_poll_us must be 0..10000");
    }
    g.busy_poll = std::chrono::microseconds(*us);
  }
  if (const auto depth = detail::optional_positive_integer(t, "max_json_depth", file, what)) {
    if (*depth > 10'000) {
      throw ConfigError(where(file, *t.get("max_json_depth")) +
                        ": [gateway] max_json_depth must be at most 10000 (a deeper tree overflows the stack)");
    }
    g.max_json_depth = static_cast<int>(*depth);
  }
  g.max_request_memory =
      detail::optional_positive_integer(t, "max_request_memory", file, what).value_or(g.max_request_memory);
  g.max_inflight_bytes =
      detail::optional_positive_integer(t, "max_inflight_bytes", file, what).value_or(g.max_inflight_bytes);
  if (g.max_inflight_bytes < g.max_request_memory) {
    const toml::node* n = t.get("max_inflight_bytes");
    if (n == nullptr) n = t.get("max_request_memory");
    throw ConfigError(where(file, n != nullptr ? *n : node) +
                      ": [gateway] max_inflight_bytes must be at least max_request_memory");
  }
  if (const toml::node* origins = t.get("cors_origins")) g.cors_origins = read_cors_origins(*origins, file);
  if (const toml::node* names = t.get("passthrough_headers")) {
    g.passthrough_headers = read_passthrough_headers(*names, file);
  }
  if (const toml::node* keys = t.get("keys")) {
    for (const auto& [name, key_node] : detail::expect_table(*keys, file, "[gateway.keys]")) {
      GatewayKey k;
      k.name = std::string(name.str());
      k.source = where(file, key_node);
      const std::string kw = "gateway key '" + k.name + "'";
      const toml::table& kt = detail::expect_table(key_node, file, kw);
      detail::reject_unknown_keys(kt, file, kw, {"key_env", "workload", "budget_usd", "budget_period",
                                                 "requests_per_minute", "tokens_per_minute"});
      k.key_env = detail::required_string(kt, "key_env", file, kw);
      k.workload = detail::required_string(kt, "workload", file, kw);
      if (!c.workloads.count(k.workload)) {
        throw ConfigError(where(file, *kt.get("workload")) + ": " + kw + ": unknown workload '" + k.workload + "'");
      }
      k.budget = read_budget_usd(kt, "budget_usd", file, kw);
      read_budget_period(kt, "budget_period", file, kw, k.budget_period);
      k.rate = read_rate_limits(kt, file, kw);
      g.keys.push_back(std::move(k));
    }
  }
}

Config build(const toml::table& root, const std::string& file, const std::string& base_dir) {
  Config c;
  c.path = file;
  c.base_dir = base_dir;
  detail::reject_unknown_keys(root, file, "the config", {"routing", "sandbox", "rule_cost", "calls", "sim", "ledger", "shadow", "gateway", "models", "tiers", "workloads", "embeddings", "health", "sessions", "budgets", "state"});
  if (const toml::node* n = root.get("calls")) read_calls(c.calls, *n, file);
  if (const toml::node* n = root.get("health")) read_health(c.health, *n, file);
  if (const toml::node* n = root.get("state")) read_state(c.state, *n, file);
  if (const toml::node* n = root.get("sessions")) read_sessions(c.sessions, *n, file);
  if (const toml::node* n = root.get("budgets")) read_tag_budgets(c.budgets, *n, file);
  if (const toml::node* n = root.get("ledger")) {
    const toml::table& t = detail::expect_table(*n, file, "[ledger]");
    detail::reject_unknown_keys(t, file, "[ledger]",
                                {"keep_prompts", "durability", "url", "spool", "spool_limit_mb"});
    c.ledger.keep_prompts = detail::optional_bool(t, "keep_prompts", file, "[ledger]").value_or(false);
    if (auto durability = detail::optional_string(t, "durability", file, "[ledger]")) {
      const auto parsed = parse_ledger_durability(*durability);
      if (!parsed) {
        throw ConfigError(where(file, *t.get("durability")) + ": [ledger] durability must be \"process\" or "
                          "\"power\", not \"" + *durability + "\"");
      }
      c.ledger.durability = *parsed;
    }
    if (auto url = detail::optional_string(t, "url", file, "[ledger]")) {
      if (!is_postgres_url(*url)) {
        throw ConfigError(where(file, *t.get("url")) +
                          ": [ledger] url must be a PostgreSQL URL (postgresql://...); a SQLite ledger is "
                          "[gateway] ledger or --ledger");
      }
      c.ledger.url = *url;
    }
    for (const char* key : {"spool", "spool_limit_mb"}) {
      if (c.ledger.url.empty() && t.get(key) != nullptr) {
        throw ConfigError(where(file, *t.get(key)) + ": [ledger] " + key +
                          " applies to a PostgreSQL ledger only: set [ledger] url too");
      }
    }
    if (auto spool = detail::optional_string(t, "spool", file, "[ledger]")) {
      if (spool->empty()) throw ConfigError(where(file, *t.get("spool")) + ": [ledger] spool must not be empty");
      c.ledger.spool = *spool;
    }
    if (auto mb = detail::optional_positive_integer(t, "spool_limit_mb", file, "[ledger]")) {
      if (*mb > (std::int64_t{1} << 20)) {
        throw ConfigError(where(file, *t.get("spool_limit_mb")) + ": [ledger] spool_limit_mb must be at most 1048576");
      }
      c.ledger.spool_limit_bytes = static_cast<std::uint64_t>(*mb) << 20;
    }
  }
  c.ledger.spool = (fs::path(base_dir) / c.ledger.spool).lexically_normal().string();
  if (const toml::node* n = root.get("rule_cost")) detail::read_rule_cost(*n, file, c.rule_cost);
  if (const toml::node* n = root.get("sim")) read_sim(c.sim, *n, file);
  if (const toml::node* n = root.get("shadow")) read_shadow(c.shadow, *n, file);

  if (const toml::node* n = root.get("sandbox")) {
    const toml::table& s = detail::expect_table(*n, file, "[sandbox]");
    detail::reject_unknown_keys(s, file, "[sandbox]", {"instructions_per_call", "instructions_at_load",
                                                       "memory_bytes", "max_source_bytes", "time_limit_ms"});
    auto& l = c.sandbox;
    l.instructions_per_call = detail::optional_positive_integer(s, "instructions_per_call", file, "[sandbox]").value_or(l.instructions_per_call);
    l.instructions_at_load = detail::optional_positive_integer(s, "instructions_at_load", file, "[sandbox]").value_or(l.instructions_at_load);
    l.memory_bytes = detail::optional_positive_integer(s, "memory_bytes", file, "[sandbox]").value_or(l.memory_bytes);
    l.max_source_bytes = detail::optional_positive_integer(s, "max_source_bytes", file, "[sandbox]").value_or(l.max_source_bytes);
    l.time_limit_ms = detail::optional_positive_integer(s, "time_limit_ms", file, "[sandbox]").value_or(l.time_limit_ms);
    if (l.memory_bytes < 256 * 1024) {
      throw ConfigError(where(file, *s.get("memory_bytes")) +
                        ": [sandbox] memory_bytes must be at least 262144 (the Lua libraries need it)");
    }
  }

  const toml::node* models_node = root.get("models");
  if (models_node == nullptr) throw ConfigError(file + ":1:1: the config defines no [models]");
  for (const auto& [key, node] : detail::expect_table(*models_node, file, "[models]")) {
    std::string name(key.str());
    c.models.emplace(name, read_model(name, node, file));
  }

  const toml::node* tiers_node = root.get("tiers");
  if (tiers_node == nullptr) throw ConfigError(file + ":1:1: the config defines no [tiers]");
  for (const auto& [key, node] : detail::expect_table(*tiers_node, file, "[tiers]")) {
    Tier tier;
    tier.name = std::string(key.str());
    tier.source = where(file, node);
    const std::string what = "tier '" + tier.name + "'";
    const toml::table& t = detail::expect_table(node, file, what);
    detail::reject_unknown_keys(t, file, what, {"models"});
    const toml::node* list = t.get("models");
    if (list == nullptr || !list->is_array() || list->as_array()->empty()) {
      throw ConfigError(tier.source + ": " + what + " needs a non-empty 'models' list");
    }
    for (const toml::node& m : *list->as_array()) {
      std::optional<std::string> model = m.value<std::string>();
      if (!model) throw ConfigError(where(file, m) + ": " + what + ": model names are strings");
      if (!c.models.count(*model)) {
        throw ConfigError(where(file, m) + ": " + what + " lists unknown model '" + *model + "'");
      }
      for (const std::string& seen : tier.models) {
        if (seen == *model) {
          throw ConfigError(where(file, m) + ": " + what + " lists model '" + *model + "' twice");
        }
      }
      tier.models.push_back(*model);
    }
    if (c.models.count(tier.name)) {
      throw ConfigError(tier.source + ": tier '" + tier.name +
                        "' has the name of a model; a rule's answer would be ambiguous");
    }
    const ModelSpec& first = c.models.at(tier.models.front());
    for (const std::string& m : tier.models) {
      if (c.models.at(m).kind != first.kind) {
        const bool first_embeds = first.kind == ModelKind::kEmbedding;
        throw ConfigError(tier.source + ": " + what + " mixes embedding and chat models ('" +
                          (first_embeds ? first.name : m) + "' embeds, '" + (first_embeds ? m : first.name) +
                          "' chats); a tier's models stand in for each other");
      }
    }
    c.tiers.emplace(tier.name, std::move(tier));
  }
  for (const auto& [name, model] : c.models) {
    if (c.tier_of(name) == nullptr) {
      throw ConfigError(model.source + ": model '" + name + "' is in no tier; add it to a tier's models");
    }
  }

  const auto embeds = [&](const Tier& tier) {
    return c.models.at(tier.models.front()).kind == ModelKind::kEmbedding;
  };
  // The tiers a workload or the routing names serve chat: never an embedding tier.
  auto check_tier = [&](const std::string& tier, const toml::node* at, const std::string& what) {
    if (!c.tiers.count(tier)) {
      throw ConfigError((at ? where(file, *at) : file + ":1:1") + ": " + what + ": unknown tier '" + tier + "'");
    }
    if (embeds(c.tiers.at(tier))) {
      throw ConfigError((at ? where(file, *at) : file + ":1:1") + ": " + what + ": tier '" + tier +
                        "' holds embedding models; it cannot serve chat");
    }
  };
  std::string first_chat_tier;
  for (const auto& [name, tier] : c.tiers) {
    if (!embeds(tier) && first_chat_tier.empty()) first_chat_tier = name;
    if (embeds(tier) && c.embeddings.tier.empty()) c.embeddings.tier = name;
  }
  if (first_chat_tier.empty()) throw ConfigError(file + ":1:1: the config has no tier of chat models");
  if (const toml::node* n = root.get("embeddings")) {
    const toml::table& e = detail::expect_table(*n, file, "[embeddings]");
    detail::reject_unknown_keys(e, file, "[embeddings]", {"tier"});
    if (auto tier = detail::optional_string(e, "tier", file, "[embeddings]")) {
      const std::string at = where(file, *e.get("tier"));
      if (!c.tiers.count(*tier)) throw ConfigError(at + ": [embeddings] tier: unknown tier '" + *tier + "'");
      if (!embeds(c.tiers.at(*tier))) {
        throw ConfigError(at + ": [embeddings] tier: tier '" + *tier + "' holds chat models; name a tier of "
                          "embedding models (kind = \"embedding\")");
      }
      c.embeddings.tier = *tier;
    }
  }
  const toml::node* routing_node = root.get("routing");
  const toml::table empty;
  const toml::table& routing = routing_node ? detail::expect_table(*routing_node, file, "[routing]") : empty;
  detail::reject_unknown_keys(routing, file, "[routing]",
                              {"price_catalog", "premium_tier", "default_fallback_tier", "max_fanout"});
  c.premium_tier = detail::optional_string(routing, "premium_tier", file, "[routing]").value_or("premium");
  check_tier(c.premium_tier, routing.get("premium_tier"), "[routing] premium_tier");
  c.default_fallback_tier = detail::optional_string(routing, "default_fallback_tier", file, "[routing]")
                                .value_or(first_chat_tier);
  check_tier(c.default_fallback_tier, routing.get("default_fallback_tier"), "[routing] default_fallback_tier");
  const std::int64_t max_fanout = detail::optional_positive_integer(routing, "max_fanout", file, "[routing]").value_or(8);
  if (max_fanout > 64) {
    throw ConfigError(where(file, *routing.get("max_fanout")) + ": [routing] max_fanout is at most 64");
  }
  c.max_fanout = static_cast<int>(max_fanout);
  load_prices(c, routing, routing_node != nullptr, file, base_dir);

  const toml::node* workloads_node = root.get("workloads");
  if (workloads_node == nullptr) throw ConfigError(file + ":1:1: the config defines no [workloads]");
  for (const auto& [key, node] : detail::expect_table(*workloads_node, file, "[workloads]")) {
    Workload w;
    w.name = std::string(key.str());
    w.source = where(file, node);
    const std::string what = "workload '" + w.name + "'";
    const toml::table& t = detail::expect_table(node, file, what);
    detail::reject_unknown_keys(t, file, what, {"rules", "shadow_rules", "fallback_tier", "budget_usd", "budget_period",
                                                 "over_budget_tier", "untrusted_tools", "shadow_calls",
                                                 "requests_per_minute", "tokens_per_minute"});
    w.rules_path = detail::required_string(t, "rules", file, what);
    w.rules_file = (fs::path(base_dir) / w.rules_path).lexically_normal().string();
    std::error_code ec;
    if (!fs::is_regular_file(w.rules_file, ec)) {
      throw ConfigError(where(file, *t.get("rules")) + ": " + what + ": rules file '" + w.rules_path +
                        "' does not exist");
    }
    if (std::optional<std::string> shadow = detail::optional_string(t, "shadow_rules", file, what)) {
      const std::string at = where(file, *t.get("shadow_rules"));
      w.shadow_rules_path = *shadow;
      w.shadow_rules_file = (fs::path(base_dir) / w.shadow_rules_path).lexically_normal().string();
      if (!fs::is_regular_file(w.shadow_rules_file, ec)) {
        throw ConfigError(at + ": " + what + ": shadow rules file '" + w.shadow_rules_path + "' does not exist");
      }
      if (fs::equivalent(w.shadow_rules_file, w.rules_file, ec)) {
        throw ConfigError(at + ": " + what + ": shadow_rules names the workload's own rules file; a candidate "
                          "is another file (a copy to edit, say)");
      }
    }
    w.fallback_tier = detail::required_string(t, "fallback_tier", file, what);
    check_tier(w.fallback_tier, t.get("fallback_tier"), what + " fallback_tier");
    w.budget = read_budget_usd(t, "budget_usd", file, what);
    read_budget_period(t, "budget_period", file, what, w.budget_period);
    w.rate = read_rate_limits(t, file, what);
    if (std::optional<std::string> tier = detail::optional_string(t, "over_budget_tier", file, what)) {
      check_tier(*tier, t.get("over_budget_tier"), what + " over_budget_tier");
      w.over_budget_tier = *tier;
    }
    for (auto& [entry, at] : detail::optional_string_array(t, "untrusted_tools", file, what)) {
      if (std::optional<std::string> error = detail::name_pattern_error(entry)) {
        throw ConfigError(at + ": " + what + ": untrusted_tools entry '" + entry + "': " + *error);
      }
      w.untrusted_tools.push_back(std::move(entry));
    }
    if (const toml::node* shadow_calls = t.get("shadow_calls")) {
      w.shadow_calls = read_shadow_calls(c, *shadow_calls, file, what);
    }
    c.workloads.emplace(w.name, std::move(w));
  }
  if (const toml::node* n = root.get("gateway")) {
    read_gateway(c, *n, file, base_dir);
  } else {
    c.gateway.ledger = (fs::path(base_dir) / c.gateway.ledger).lexically_normal().string();
    if (!c.workloads.empty() && !c.workloads.count(c.gateway.default_workload)) {
      c.gateway.default_workload = c.workloads.begin()->first;
    }
  }
  return c;
}

}  // namespace

std::int64_t ThinkingBudgets::for_level(Reasoning r) const {
  switch (r) {
    case Reasoning::kLow: return low;
    case Reasoning::kMedium: return medium;
    case Reasoning::kHigh: return high;
    case Reasoning::kDefault: break;
  }
  return 0;
}

const ModelSpec* Config::find_model(std::string_view name) const {
  auto it = models.find(name);
  return it == models.end() ? nullptr : &it->second;
}

const Tier* Config::find_tier(std::string_view name) const {
  auto it = tiers.find(name);
  return it == tiers.end() ? nullptr : &it->second;
}

const Workload* Config::find_workload(std::string_view name) const {
  auto it = workloads.find(name);
  return it == workloads.end() ? nullptr : &it->second;
}

const TagBudget* Config::find_tag_budget(std::string_view name, std::string_view value) const {
  for (const TagBudget& b : budgets) {
    if (b.name == name && b.value == value) return &b;
  }
  return nullptr;
}

const Tier* Config::tier_of(std::string_view model) const {
  for (const auto& [name, tier] : tiers) {
    for (const std::string& m : tier.models) {
      if (m == model) return &tier;
    }
  }
  return nullptr;
}

std::string Config::effective_provider(const ModelSpec& model) const {
  if (model.provider == "sim") return "sim";
  // A keyless OpenAI-compatible server (a local vLLM, say) is called as it is.
  if (model.api_key_env.empty()) return model.provider == "openai-compatible" ? model.provider : "sim";
  const char* key = std::getenv(model.api_key_env.c_str());
  return (key == nullptr || *key == '\0') ? "sim" : model.provider;
}

Result<Config> parse_config(std::string_view text, std::string source_name, std::string base_dir) {
  try {
    toml::table root = toml::parse(text, source_name);
    return build(root, source_name, base_dir);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    return Status::invalid_argument(source_name + ":" + std::to_string(b.line) + ":" +
                                    std::to_string(b.column) + ": " + std::string(e.description()));
  } catch (const ConfigError& e) {
    return Status::invalid_argument(e.what());
  }
}

Result<Config> load_config(const std::string& path) {
  auto text = detail::read_text_file(path, path + ": cannot open the config file");
  if (!text.ok()) return text.status();
  std::string base = fs::path(path).parent_path().string();
  return parse_config(*text, path, base.empty() ? "." : base);
}

// The ledger sink a config names ([ledger] url, or a SQLite path).
Result<std::shared_ptr<LedgerSink>> open_configured_ledger(const LedgerSettings& settings,
                                                           const std::string& sqlite_path) {
  if (settings.url.empty()) {
    SqliteLedgerOptions options;
    options.path = sqlite_path;
    options.durability = settings.durability;
    return open_sqlite_ledger(options);
  }
  PostgresLedgerOptions options;
  options.url = settings.url;
  options.spool_path = settings.spool;
  options.spool_limit_bytes = settings.spool_limit_bytes;
  options.durability = settings.durability;
  return open_postgres_ledger(options);
}

std::string ledger_location(const LedgerSettings& settings, const std::string& sqlite_path) {
  return settings.url.empty() ? sqlite_path : settings.url;
}

}  // namespace switchboard
