// Metrics: what the gateway counts, rendered as Prometheus text exposition
// (version 0.0.4) for GET /metrics.
//
//   switchboard_requests_total{endpoint,status}         counter
//   switchboard_request_duration_seconds{endpoint}      histogram
//   switchboard_overhead_ms{endpoint}                   histogram: a model call's x-switchboard-overhead-ms
//                                                       (a stream's trailer value), gateway.h
//   switchboard_decisions_total{workload,tier,model}    counter
//   switchboard_fallbacks_total                         counter
//   switchboard_ledger_unrecorded_total                 counter: answers sent whose ledger records did not commit
//   switchboard_rate_limited_total{scope}               counter: chat requests refused 429 by a rate limit
//                                                       ("key:NAME", "workload:NAME", "model:NAME")
//   switchboard_rule_errors_total{workload}             counter
//   switchboard_spend_usd_total{workload,model}         counter (micro-dollars / 1e6)
//   switchboard_upstream_in_flight                      gauge
//   switchboard_rules_info{workload,version}            1 per active rule set
//   switchboard_model_healthy{model}                    gauge: 1 while a call may go out (health.h)
//   switchboard_model_breaker_state{model,state}        gauge: 1 for the breaker's state (closed, open, half_open)
//   switchboard_model_error_rate{model}                 gauge: failures / calls in the breaker's window
//   switchboard_model_latency_ms{model,quantile}        gauge: p50 and p95 of recent answers, once known
//   switchboard_model_ratelimit_remaining{model,limit}  gauge: requests / tokens left, from the provider's headers
//   switchboard_shadow_{evaluations,agreements,errors,dropped}_total{workload}
//                                                       counters, for workloads with shadow rules
//   switchboard_shadow_rules_info{workload,version}     1 per shadow rule set that loads
//
// Thread-safety: every method may be called from any thread. Request counts
// and durations are plain atomics (fixed label sets); the per-workload and
// per-model series take a shared lock to find their atomic, an exclusive one
// only the first time a label set is seen.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/switchboard.h"

namespace switchboard::gateway {

// The routes the gateway knows; kOther is every other path.
enum class Endpoint {
  kChatCompletions,
  kResponses,    // POST /v1/responses
  kMessages,
  kModels,
  kHealthz,
  kMetrics,
  kRulesStatus,
  kCountTokens,  // POST /v1/messages/count_tokens
  kModel,        // GET /v1/models/{id}
  kEmbeddings,   // POST /v1/embeddings
  kOther
};
inline constexpr int kEndpointCount = 10;
// "/v1/chat/completions" ... "other".
std::string_view endpoint_label(Endpoint endpoint);

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One answered request: its status and the time from the request read to the answer.
  void count_request(Endpoint endpoint, int http_status, std::chrono::steady_clock::duration took);
  // One answered model call: the gateway's own time on it (x-switchboard-overhead-ms; below 0 counts as 0).
  void count_overhead(Endpoint endpoint, std::chrono::nanoseconds overhead);
  // One dispatched step: its decision, fallbacks, rule error, and every
  // ledger record's cost under its own workload and model.
  void count_step(const StepResult& result);
  // The calls of a request that made no decision (an embeddings call): their
  // cost under their workload and model, and the fallbacks among them.
  void count_calls(const std::vector<CostRecord>& records, int fallbacks);
  // One answer sent although its step's ledger records did not commit; returns the count so far.
  std::uint64_t count_unrecorded();
  // One request refused by the rate limit of `scope` (rate_limit.h).
  void count_rate_limited(std::string_view scope);

  // The exposition text. `rules` is the serving engine's status() and
  // `upstream_in_flight` the model calls running now.
  // `health`: each chat model's health, in the order to print them.
  // `state`: the budget book's shared-state counters, when [state] backend = "redis";
  // `sharing`: the health book's exchange with the fleet, likewise.
  std::string render(const std::vector<WorkloadStatus>& rules, int upstream_in_flight,
                     const std::vector<std::pair<std::string, ModelHealth>>& health = {},
                     const std::optional<BudgetBook::StateCounters>& state = std::nullopt,
                     const std::optional<HealthSharing>& sharing = std::nullopt) const;

 private:
  // Counters keyed by their rendered label set ("workload=\"w\",model=\"m\"").
  class LabeledCounters {
   public:
    void add(std::string_view labels, std::int64_t n);
    std::vector<std::pair<std::string, std::int64_t>> values() const;  // in label order

   private:
    mutable std::shared_mutex mu_;
    std::map<std::string, std::unique_ptr<std::atomic<std::int64_t>>, std::less<>> counters_;
  };

  static constexpr int kMinStatus = 100;
  static constexpr int kStatusCount = 500;  // 100..599
  // Upper bounds: request durations in seconds, overheads in milliseconds (sub-millisecond ones apart).
  static constexpr std::array<double, 16> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                      0.25,   0.5,   1,      2.5,   5,    10,    30,    60};
  static constexpr std::array<double, 11> kOverheadBucketsMs = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                                1,    2.5,   5,    10,  25};
  template <std::size_t kBounds>
  struct Histogram {
    std::array<std::atomic<std::uint64_t>, kBounds + 1> counts{};  // per bucket, the last is +Inf
    std::atomic<std::uint64_t> sum_ns{0};

    // Counts `ns` in the first bucket whose bound (in units of `unit_ns`) holds it.
    void observe(const std::array<double, kBounds>& bounds, double unit_ns, std::int64_t ns);
    // Appends NAME_bucket, NAME_sum (in units of `unit_ns`) and NAME_count for `labels`; nothing when empty.
    void render(std::string& out, std::string_view name, const std::string& labels,
                const std::array<double, kBounds>& bounds, double unit_ns) const;
  };

  std::unique_ptr<std::array<std::atomic<std::uint64_t>, kEndpointCount * kStatusCount>> requests_;
  std::array<Histogram<kBuckets.size()>, kEndpointCount> durations_;
  std::array<Histogram<kOverheadBucketsMs.size()>, kEndpointCount> overheads_;
  std::atomic<std::uint64_t> fallbacks_{0};
  std::atomic<std::uint64_t> unrecorded_{0};
  LabeledCounters decisions_;
  LabeledCounters rule_errors_;
  LabeledCounters spend_micro_usd_;
  LabeledCounters rate_limited_;
};

}  // namespace switchboard::gateway
