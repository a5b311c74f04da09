#include "metrics.h"

#include <cstdio>
#include <initializer_list>
#include <mutex>
#include <string_view>
#include <utility>

namespace switchboard::gateway {

namespace {

// Appends `name="value"`, the value quoted as the exposition format quotes it.
void append_label(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += "=\"";
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  out += '"';
}

std::string label(std::string_view name, std::string_view value) {
  std::string out;
  append_label(out, name, value);
  return out;
}

// The labels of a counter bumped per request, written into this thread's
// buffer (no allocation once it has grown): `name=value` pairs, comma-separated.
std::string_view request_labels(std::initializer_list<std::pair<std::string_view, std::string_view>> pairs) {
  thread_local std::string out;
  out.clear();
  for (const auto& [name, value] : pairs) {
    if (!out.empty()) out += ',';
    append_label(out, name, value);
  }
  return out;
}

// Micro-dollars as decimal dollars, exactly.
std::string usd(std::int64_t micro) {
  char buf[48];
  const char* sign = micro < 0 ? "-" : "";
  const std::uint64_t m = micro < 0 ? static_cast<std::uint64_t>(-(micro + 1)) + 1 : static_cast<std::uint64_t>(micro);
  std::snprintf(buf, sizeof buf, "%s%llu.%06llu", sign, static_cast<unsigned long long>(m / 1'000'000),
                static_cast<unsigned long long>(m % 1'000'000));
  return buf;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::string_view value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

}  // namespace

std::string_view endpoint_label(Endpoint endpoint) {
  switch (endpoint) {
    case Endpoint::kChatCompletions: return "/v1/chat/completions";
    case Endpoint::kResponses: return "/v1/responses";
    case Endpoint::kMessages: return "/v1/messages";
    case Endpoint::kModels: return "/v1/models";
    case Endpoint::kHealthz: return "/healthz";
    case Endpoint::kMetrics: return "/metrics";
    case Endpoint::kRulesStatus: return "/v1/rules/status";
    case Endpoint::kCountTokens: return "/v1/messages/count_tokens";
    case Endpoint::kModel: return "/v1/models/{id}";
    case Endpoint::kEmbeddings: return "/v1/embeddings";
    case Endpoint::kOther: break;
  }
  return "other";
}

void Metrics::LabeledCounters::add(std::string_view labels, std::int64_t n) {
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    if (auto it = counters_.find(labels); it != counters_.end()) {
      it->second->fetch_add(n, std::memory_order_relaxed);
      return;
    }
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto& counter = counters_.try_emplace(std::string(labels)).first->second;
  if (!counter) counter = std::make_unique<std::atomic<std::int64_t>>(0);
  counter->fetch_add(n, std::memory_order_relaxed);
}

std::vector<std::pair<std::string, std::int64_t>> Metrics::LabeledCounters::values() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  std::vector<std::pair<std::string, std::int64_t>> out;
  out.reserve(counters_.size());
  for (const auto& [labels, counter] : counters_) out.emplace_back(labels, counter->load(std::memory_order_relaxed));
  return out;
}

Metrics::Metrics()
    : requests_(std::make_unique<std::array<std::atomic<std::uint64_t>, kEndpointCount * kStatusCount>>()) {}

void Metrics::count_request(Endpoint endpoint, int http_status, std::chrono::steady_clock::duration took) {
  const int e = static_cast<int>(endpoint);
  if (http_status < kMinStatus || http_status >= kMinStatus + kStatusCount) http_status = 500;
  (*requests_)[static_cast<size_t>(e * kStatusCount + http_status - kMinStatus)].fetch_add(1,
                                                                                           std::memory_order_relaxed);
  durations_[static_cast<size_t>(e)].observe(kBuckets, 1e9,
                                             std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
}

void Metrics::count_overhead(Endpoint endpoint, std::chrono::nanoseconds overhead) {
  overheads_[static_cast<size_t>(endpoint)].observe(kOverheadBucketsMs, 1e6, overhead.count());
}

template <std::size_t kBounds>
void Metrics::Histogram<kBounds>::observe(const std::array<double, kBounds>& bounds, double unit_ns,
                                          std::int64_t ns) {
  if (ns < 0) ns = 0;
  const double value = static_cast<double>(ns) / unit_ns;
  size_t bucket = 0;
  while (bucket < bounds.size() && value > bounds[bucket]) ++bucket;
  counts[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

template <std::size_t kBounds>
void Metrics::Histogram<kBounds>::render(std::string& out, std::string_view name, const std::string& labels,
                                         const std::array<double, kBounds>& bounds, double unit_ns) const {
  std::uint64_t total = 0;
  for (const auto& c : counts) total += c.load(std::memory_order_relaxed);
  if (total == 0) return;
  const std::string series(name);
  std::uint64_t cumulative = 0;
  char le[32];
  for (size_t b = 0; b <= bounds.size(); ++b) {
    cumulative += counts[b].load(std::memory_order_relaxed);
    if (b < bounds.size()) {
      std::snprintf(le, sizeof le, "%g", bounds[b]);
    } else {
      std::snprintf(le, sizeof le, "+Inf");
    }
    sample(out, series + "_bucket", labels + "," + label("le", le), std::to_string(cumulative));
  }
  char sum[48];
  std::snprintf(sum, sizeof sum, "%.9f", static_cast<double>(sum_ns.load(std::memory_order_relaxed)) / unit_ns);
  sample(out, series + "_sum", labels, sum);
  sample(out, series + "_count", labels, std::to_string(cumulative));
}

std::uint64_t Metrics::count_unrecorded() { return unrecorded_.fetch_add(1, std::memory_order_relaxed) + 1; }

void Metrics::count_rate_limited(std::string_view scope) { rate_limited_.add(request_labels({{"scope", scope}}), 1); }

void Metrics::count_step(const StepResult& result) {
  const Decision& d = result.decision;
  if (!d.workload.empty() && !d.model.empty()) {
    decisions_.add(request_labels({{"workload", d.workload}, {"tier", d.tier}, {"model", d.model}}), 1);
  }
  if (d.error) rule_errors_.add(request_labels({{"workload", d.workload}}), 1);
  count_calls(result.records, result.fallbacks);
}

void Metrics::count_calls(const std::vector<CostRecord>& records, int fallbacks) {
  if (fallbacks > 0) fallbacks_.fetch_add(static_cast<std::uint64_t>(fallbacks), std::memory_order_relaxed);
  for (const CostRecord& r : records) {
    if (r.cost != 0) spend_micro_usd_.add(request_labels({{"workload", r.workload}, {"model", r.model}}), r.cost);
  }
}

namespace {

std::string figure(double v) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// The models' circuit breakers and the figures the rules see in ctx.models.
void render_health(std::string& out, const std::vector<std::pair<std::string, ModelHealth>>& health) {
  if (health.empty()) return;
  using State = ModelHealth::State;
  const auto of = [](const std::string& model, std::string_view name, std::string_view value) {
    return label("model", model) + "," + label(name, value);
  };
  header(out, "switchboard_model_healthy", "gauge",
         "1 while a call to the model may go out (its breaker closed, or half-open with no probe out).");
  for (const auto& [model, h] : health) {
    sample(out, "switchboard_model_healthy", label("model", model), h.healthy ? "1" : "0");
  }
  header(out, "switchboard_model_breaker_state", "gauge", "1 for the state the model's circuit breaker is in.");
  for (const auto& [model, h] : health) {
    for (const State s : {State::kClosed, State::kOpen, State::kHalfOpen}) {
      sample(out, "switchboard_model_breaker_state", of(model, "state", to_string(s)), h.state == s ? "1" : "0");
    }
  }
  header(out, "switchboard_model_error_rate", "gauge",
         "Failed calls / calls in the breaker's window ([health] window_s).");
  for (const auto& [model, h] : health) {
    sample(out, "switchboard_model_error_rate", label("model", model), figure(h.error_rate));
  }
  header(out, "switchboard_model_latency_ms", "gauge",
         "Median and 95th percentile latency of the model's recent answers.");
  for (const auto& [model, h] : health) {
    if (h.p50_ms) sample(out, "switchboard_model_latency_ms", of(model, "quantile", "0.5"), figure(*h.p50_ms));
    if (h.p95_ms) sample(out, "switchboard_model_latency_ms", of(model, "quantile", "0.95"), figure(*h.p95_ms));
  }
  header(out, "switchboard_model_ratelimit_remaining", "gauge",
         "Requests and tokens left in the provider's window, from its last rate-limit headers.");
  for (const auto& [model, h] : health) {
    if (h.limits.requests_left) {
      sample(out, "switchboard_model_ratelimit_remaining", of(model, "limit", "requests"),
             std::to_string(*h.limits.requests_left));
    }
    if (h.limits.tokens_left) {
      sample(out, "switchboard_model_ratelimit_remaining", of(model, "limit", "tokens"),
             std::to_string(*h.limits.tokens_left));
    }
  }
}

}  // namespace

std::string Metrics::render(const std::vector<WorkloadStatus>& rules, int upstream_in_flight,
                            const std::vector<std::pair<std::string, ModelHealth>>& health,
                            const std::optional<BudgetBook::StateCounters>& state,
                            const std::optional<HealthSharing>& sharing) const {
  std::string out;
  out.reserve(4096);

  header(out, "switchboard_build_info", "gauge", "Always 1; the version label is the gateway's (CMake project()).");
  sample(out, "switchboard_build_info", label("version", switchboard::version()), "1");

  header(out, "switchboard_requests_total", "counter", "HTTP requests answered, by endpoint and status.");
  for (int e = 0; e < kEndpointCount; ++e) {
    for (int s = 0; s < kStatusCount; ++s) {
      const std::uint64_t n = (*requests_)[static_cast<size_t>(e * kStatusCount + s)].load(std::memory_order_relaxed);
      if (n == 0) continue;
      sample(out, "switchboard_requests_total",
             label("endpoint", endpoint_label(static_cast<Endpoint>(e))) + "," +
                 label("status", std::to_string(s + kMinStatus)),
             std::to_string(n));
    }
  }

  header(out, "switchboard_request_duration_seconds", "histogram",
         "Time from a request read to its whole answer (a stream's last event), by endpoint.");
  for (int e = 0; e < kEndpointCount; ++e) {
    durations_[static_cast<size_t>(e)].render(out, "switchboard_request_duration_seconds",
                                              label("endpoint", endpoint_label(static_cast<Endpoint>(e))), kBuckets,
                                              1e9);
  }

  header(out, "switchboard_overhead_ms", "histogram",
         "Milliseconds the gateway spent on a model call beyond waiting on its models "
         "(x-switchboard-overhead-ms; a stream's trailer value), by endpoint.");
  for (int e = 0; e < kEndpointCount; ++e) {
    overheads_[static_cast<size_t>(e)].render(out, "switchboard_overhead_ms",
                                              label("endpoint", endpoint_label(static_cast<Endpoint>(e))),
                                              kOverheadBucketsMs, 1e6);
  }

  header(out, "switchboard_decisions_total", "counter",
         "Steps dispatched, by workload and the tier and model decided.");
  for (const auto& [labels, n] : decisions_.values())
    sample(out, "switchboard_decisions_total", labels, std::to_string(n));

  header(out, "switchboard_fallbacks_total", "counter", "Times a step moved on to the next model of its tier.");
  sample(out, "switchboard_fallbacks_total", "", std::to_string(fallbacks_.load(std::memory_order_relaxed)));

  header(out, "switchboard_ledger_unrecorded_total", "counter",
         "Answers sent although their step's ledger records could not be committed.");
  sample(out, "switchboard_ledger_unrecorded_total", "", std::to_string(unrecorded_.load(std::memory_order_relaxed)));

  header(out, "switchboard_rate_limited_total", "counter",
         "Requests refused with 429 because a rate limit (requests or tokens per minute) had no room, by scope.");
  for (const auto& [labels, n] : rate_limited_.values())
    sample(out, "switchboard_rate_limited_total", labels, std::to_string(n));

  header(out, "switchboard_rule_errors_total", "counter",
         "Decisions whose rules failed and fell back to the workload's fallback tier.");
  for (const auto& [labels, n] : rule_errors_.values())
    sample(out, "switchboard_rule_errors_total", labels, std::to_string(n));

  header(out, "switchboard_spend_usd_total", "counter", "Dollars billed by model calls, by workload and model.");
  for (const auto& [labels, n] : spend_micro_usd_.values()) sample(out, "switchboard_spend_usd_total", labels, usd(n));

  header(out, "switchboard_upstream_in_flight", "gauge", "Model calls running now.");
  sample(out, "switchboard_upstream_in_flight", "", std::to_string(upstream_in_flight));

  header(out, "switchboard_rules_info", "gauge", "The rules version each workload serves (sha256).");
  for (const WorkloadStatus& w : rules) {
    sample(out, "switchboard_rules_info", label("workload", w.workload) + "," + label("version", w.version), "1");
  }

  render_health(out, health);

  if (state) {  // [state] backend = "redis"
    header(out, "switchboard_shared_state_degraded", "gauge",
           "1 while the shared budget state (Redis) cannot be reached ([state] on_unavailable applies).");
    sample(out, "switchboard_shared_state_degraded", "", state->degraded ? "1" : "0");
    header(out, "switchboard_shared_state_unavailable_total", "counter",
           "Round trips to the shared budget state that failed or were skipped while it was down.");
    sample(out, "switchboard_shared_state_unavailable_total", "", std::to_string(state->unavailable));
    header(out, "switchboard_budget_local_admissions_total", "counter",
           "Reservations made against this replica's share of each cap while Redis was down (on_unavailable = local).");
    sample(out, "switchboard_budget_local_admissions_total", "", std::to_string(state->local_admissions));
    header(out, "switchboard_budget_refused_unavailable_total", "counter",
           "Calls refused with 503 because Redis was down (on_unavailable = fail_closed).");
    sample(out, "switchboard_budget_refused_unavailable_total", "", std::to_string(state->refused_unavailable));
  }
  if (sharing && sharing->enabled) {  // the models' health shared through the same Redis
    header(out, "switchboard_shared_health_degraded", "gauge",
           "1 while the models' shared health (Redis) cannot be reached: each replica keeps its own breakers.");
    sample(out, "switchboard_shared_health_degraded", "", sharing->degraded ? "1" : "0");
    header(out, "switchboard_shared_health_unavailable_total", "counter",
           "Exchanges of model health with the fleet that failed (Redis unreachable or timed out).");
    sample(out, "switchboard_shared_health_unavailable_total", "", std::to_string(sharing->unavailable));
  }

  // Shadow rules: only when a workload has them. The counts are the serving
  // engine's, so they restart from zero when a config reload replaces it.
  std::vector<const WorkloadStatus*> shadowed;
  for (const WorkloadStatus& w : rules) {
    if (!w.shadow_rules_path.empty()) shadowed.push_back(&w);
  }
  if (shadowed.empty()) return out;
  const auto counter = [&](const char* name, const char* help, std::uint64_t ShadowCounts::*field) {
    header(out, name, "counter", help);
    for (const WorkloadStatus* w : shadowed) sample(out, name, label("workload", w->workload), std::to_string(w->shadow.*field));
  };
  counter("switchboard_shadow_evaluations_total", "Steps the workload's shadow rules classified.",
          &ShadowCounts::evaluated);
  counter("switchboard_shadow_agreements_total", "Shadow evaluations that chose what the active rules chose.",
          &ShadowCounts::agreed);
  counter("switchboard_shadow_errors_total", "Shadow evaluations whose rules failed.", &ShadowCounts::errors);
  counter("switchboard_shadow_dropped_total", "Shadow evaluations dropped because the queue was full.",
          &ShadowCounts::dropped);
  header(out, "switchboard_shadow_rules_info", "gauge",
         "The shadow rules version each workload evaluates (sha256); absent while they do not load.");
  for (const WorkloadStatus* w : shadowed) {
    if (w->shadow_version.empty()) continue;
    sample(out, "switchboard_shadow_rules_info",
           label("workload", w->workload) + "," + label("version", w->shadow_version), "1");
  }
  return out;
}

}  // namespace switchboard::gateway
