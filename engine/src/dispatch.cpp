// The call path: admission, retries, fallbacks, fan-out, ledger, settlement.
#include "switchboard/dispatch.h"
#include "switchboard/trace_id.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>

#include "async/waits.h"
#include "cost/call_bound.h"
#include "cost/estimate.h"
#include "eval/pairwise.h"
#include "switchboard/derive_step.h"
#include "switchboard/tokens.h"
#include "providers/capabilities.h"
#include "rules/decide.h"
#include "util/hex.h"
#include "util/thread_name.h"

namespace switchboard {

namespace {

using Clock = std::chrono::steady_clock;

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// One line: a provider's message may hold newlines.
std::string one_line(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

// The models a decision may be served by, in call order: its model first,
// then the rest of its tier's list.
std::vector<std::string> call_order(const Config& config, const std::string& tier_name,
                                    const std::string& first) {
  std::vector<std::string> order;
  if (!first.empty()) order.push_back(first);
  if (const Tier* tier = config.find_tier(tier_name)) {
    for (const std::string& m : tier->models) {
      if (m != first) order.push_back(m);
    }
  }
  return order;
}

std::int64_t output_cap(const Decision& d, const ModelSpec& model) {
  return d.max_output_tokens.value_or(model.default_output_tokens);
}

// What the aggregation call reads: the request, then every branch's answer.
std::string aggregation_prompt(const std::vector<ModelResponse>& answers) {
  std::string p = "Here are " + std::to_string(answers.size()) +
                  " independent answers to the request above. Compare them and write the single "
                  "best final answer; do not mention that there were several.";
  for (size_t i = 0; i < answers.size(); ++i) {
    p += "\n\n### Answer " + std::to_string(i + 1) + "\n" + answers[i].text();
    for (const ToolCall& t : answers[i].tool_calls()) p += "\n(calls " + t.name + " " + t.arguments_json + ")";
  }
  return p;
}

// A lent call's messages and tools (the long part of its request: a
// conversation's worth), lent to the request its model calls send instead of
// copied into it. Made before that request is made from the call (which is
// then a light copy), it takes them out of the call; lend_to() puts them in
// the request; going out of scope (REQUIRES: before the request does) it
// gives them back, so the call is whole for what reads it after (the shadow
// rules, the host). Without a call, it does nothing. A call without
// messages gets back none (not the one request_for made from its step).
class LentMessages {
 public:
  explicit LentMessages(StepCall* given) : given_(given) {
    if (given_ == nullptr) return;
    messages_ = std::move(given_->request.messages);
    tools_ = std::move(given_->request.tools);
  }
  ~LentMessages() {
    if (given_ == nullptr) return;
    ModelRequest* from = borrower_;
    if (from == nullptr) {  // never lent
      given_->request.messages = std::move(messages_);
      given_->request.tools = std::move(tools_);
      return;
    }
    if (had_messages_) given_->request.messages = std::move(from->messages);
    given_->request.tools = std::move(from->tools);
  }
  LentMessages(const LentMessages&) = delete;
  LentMessages& operator=(const LentMessages&) = delete;

  void lend_to(ModelRequest& request) {
    if (given_ == nullptr) return;
    had_messages_ = !messages_.empty();
    if (had_messages_) request.messages = std::move(messages_);
    request.tools = std::move(tools_);
    borrower_ = &request;
  }

 private:
  StepCall* const given_;
  std::vector<Message> messages_;
  std::vector<ToolSpec> tools_;
  ModelRequest* borrower_ = nullptr;
  bool had_messages_ = false;
};

}  // namespace

std::string shadow_calls_budget_scope(std::string_view workload) { return "shadow:" + std::string(workload); }

struct Dispatcher::Impl {
  const Engine& engine;
  ModelClients clients;
  DispatcherOptions options;
  bool host_sleep = false;  // options.sleep is the host's (a test's): used even when a step is bounded
  mutable std::mutex rng_mu;
  mutable std::mt19937_64 rng;

  // Judged shadow calls (dispatch.h): one sample handed to the shadow worker.
  struct ShadowJob {
    const Workload* workload = nullptr;  // in engine.config(): has shadow_calls
    StepCall call;                       // the step and its request, as the caller gave them
    Decision routed;                     // the live step's decision, as admitted
    std::string trace_id;                // the live step's
    std::string routed_model;            // the model that answered it
    std::string routed_call_id;          // its answering call
    MicroUsd routed_cost = 0;            // its calls
    ModelResponse routed_answer;         // what the client got
  };
  // The shadow worker's state; the thread runs only when a workload has shadow_calls.
  mutable std::mutex shadow_mu;
  mutable std::condition_variable shadow_cv;       // work arrived, or stopping
  mutable std::condition_variable shadow_idle_cv;  // the queue ran dry with nothing under way
  mutable std::deque<ShadowJob> shadow_queue;
  mutable bool shadow_busy = false;
  mutable bool shadow_stopping = false;
  mutable ShadowCallCounts shadow_counts;
  mutable std::mt19937_64 sampler;  // under shadow_mu
  std::thread shadow_thread;

  Impl(const Engine& e, ModelClients c, DispatcherOptions o)
      : engine(e), clients(std::move(c)), options(std::move(o)),
        rng(options.seed != 0 ? options.seed : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()),
        sampler(options.seed != 0 ? options.seed ^ 0x9e3779b97f4a7c15ull
                                  : (std::uint64_t{std::random_device{}()} << 32) ^ std::random_device{}()) {
    host_sleep = static_cast<bool>(options.sleep);
    if (!host_sleep) options.sleep = [](std::chrono::milliseconds d) { async::sleep_for(d, nullptr); };
    bool any = false;
    for (const auto& [name, w] : engine.config().workloads) {
      if (!w.shadow_calls) continue;
      BudgetLimit limit;
      limit.scope = shadow_calls_budget_scope(name);
      limit.cap = w.shadow_calls->budget;
      limit.period = w.shadow_calls->period;
      engine.budgets().set_limit(limit);
      any = true;
    }
    if (any) {
      shadow_thread = std::thread([this] {
        detail::name_this_thread("sb-shadow-calls");
        shadow_worker();
      });
    }
  }

  // Lets the shadow worker finish what is queued for at most [shadow]
  // drain_timeout_ms; what is left is dropped and counted.
  ~Impl() {
    if (!shadow_thread.joinable()) return;
    wait_for_shadow_calls(engine.config().shadow.drain_timeout);
    {
      std::lock_guard<std::mutex> lock(shadow_mu);
      shadow_counts.dropped += shadow_queue.size();
      shadow_queue.clear();
      shadow_stopping = true;
    }
    shadow_cv.notify_all();
    shadow_thread.join();
  }

  // The wait before a retry, cut short when the step's bounds stop it (a
  // cancellation wakes it; a deadline caps it). The caller checks the bounds after.
  void backoff(const CallBounds& bounds, std::chrono::milliseconds d) const {
    if (const auto left = bounds.remaining(); left && *left < d) d = *left;
    if (host_sleep || !bounds.cancellation) {
      options.sleep(d);
    } else {
      async::sleep_for(d, bounds.cancellation.get());
    }
  }

  std::string new_id() const {
    std::uint64_t v;
    {
      std::lock_guard<std::mutex> lock(rng_mu);
      v = rng();
    }
    return detail::hex64(v);
  }

  std::chrono::milliseconds jittered_backoff(int failed_attempts) const {
    const CallSettings& c = engine.config().calls;
    std::int64_t cap = c.backoff_initial.count();
    for (int i = 1; i < failed_attempts && cap < c.backoff_max.count(); ++i) cap *= 2;
    cap = std::min<std::int64_t>(cap, c.backoff_max.count());
    std::lock_guard<std::mutex> lock(rng_mu);
    return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, cap)(rng));
  }

  // Everything the attempts of one step share, and what they produced.
  struct Trace {
    const Decision* decision = nullptr;
    const Step* step = nullptr;
    std::string trace_id;
    std::mutex mu;                    // guards the fields below (fan-out branches run in parallel)
    std::vector<CostRecord> records;
    MicroUsd cost = 0;
    int attempts = 0;
    int fallbacks = 0;
    std::vector<std::string> scopes;  // the budget scopes every attempt is charged to
    std::int64_t rate_tokens = 0;     // what the step counts in a model's tokens per minute
    Reservation pending;              // the admission's, until the first attempt takes it over
    bool cap_lowered = false;         // the admission lowered the decision's output cap
    // A fan-out's branches' wall time, set once they are over: the upstream
    // time the aggregator's calls start from.
    Clock::duration fanout_upstream{0};
    // The step's decision record, not yet written while set (execute_step).
    async::DuringNextWait* record_decision = nullptr;
  };

  // The step's tokens for the rate limits: its input (counted, else
  // estimated) plus the caller's output cap (Engine::admit_rate counts the same).
  static std::int64_t rate_tokens_of(const StepCall& call) {
    return detail::input_tokens_of(call.step) + std::max<std::int64_t>(call.request.max_output_tokens.value_or(0), 0);
  }

  // Counts one call of `model` in its rate limit ([models.X]
  // requests_per_minute, tokens_per_minute): ok, or why it must not be
  // called now (rate_limited with the wait; unavailable when the shared
  // state cannot be reached and [state] fails closed).
  Status admit_model_rate(const std::string& model, std::int64_t tokens) const {
    Result<RateDecision> d = engine.rate_limits().admit({model_rate_scope(model)}, tokens);
    if (!d.ok()) return Status::unavailable("not called: " + model + ": " + d.status().message());
    if (d->allowed) return Status();
    return Status::rate_limited("not called: " + model + "'s rate limit (" + d->limited_by + ") has no room for " +
                                    std::to_string(tokens) + " tokens now; " +
                                    (d->retry_after ? "it fits in " + std::to_string(d->retry_after->count()) + " ms"
                                                    : std::string("it never fits")),
                                d->retry_after);
  }

  // One attempt's hold on the budget (reserve_attempt).
  struct AttemptBudget {
    Status refused;           // ok, or over_budget: not even a minimal answer fits
    Reservation held;         // the attempt's bound, in every scope of the step
    std::int64_t cap = 0;     // the output cap the bound is for
    bool lowered = false;     // below what was asked (or the model's default)
    // count_request_tokens_unscaled of the request on this model: the bound's
    // and the call record's (counted once).
    std::optional<std::int64_t> counted;
  };

  // Reserves the most the attempt can cost on `spec` (input_token_bound at
  // the dearest input rate, the output cap at the dearest output rate) in
  // every scope of the step, taking over the admission's reservation if no
  // attempt has yet. When the whole cap does not fit, the cap is lowered to
  // what does, down to [calls] min_answer_tokens; below that it is refused.
  AttemptBudget reserve_attempt(Trace& trace, const ModelSpec& spec, const ModelRequest& request) const {
    const Config& config = engine.config();
    AttemptBudget b;
    std::int64_t full = request.max_output_tokens.value_or(spec.default_output_tokens);
    if (spec.max_output_tokens > 0) full = std::min(full, spec.max_output_tokens);
    const std::int64_t least_cap = std::min(full, config.calls.min_answer_tokens);
    if (const Result<std::int64_t> n = count_request_tokens_unscaled(spec, request); n.ok()) b.counted = *n;
    const std::int64_t input = detail::input_token_bound(spec, request, b.counted);
    const MicroUsd at_most = detail::call_cost_bound(config, spec, input, full);
    Reservation prior;
    {
      std::lock_guard<std::mutex> lock(trace.mu);
      prior = std::move(trace.pending);
    }
    auto held = engine.budgets().reserve_within(trace.scopes, detail::call_cost_bound(config, spec, input, least_cap),
                                                at_most, &prior);
    if (!held.ok()) {
      b.refused = held.status();
      std::lock_guard<std::mutex> lock(trace.mu);
      trace.pending = std::move(prior);  // a cheaper model may still use it
      return b;
    }
    b.held = std::move(held).value();
    b.cap = full;
    if (b.held.amount() < at_most) {
      b.cap = std::max(least_cap, detail::affordable_output_cap(config, spec, input, b.held.amount(), full));
      b.lowered = true;
      b.held.reduce_to(detail::call_cost_bound(config, spec, input, b.cap));
    }
    return b;
  }

  // Under the trace's lock, so fan-out branches finishing together leave
  // StepResult::records in the order the ledger received them.
  void write(Trace& trace, CostRecord r) const {
    if (trace.record_decision != nullptr) trace.record_decision->finish();  // the step's decision first
    std::lock_guard<std::mutex> lock(trace.mu);
    if (options.ledger) options.ledger->record(r);
    trace.cost += r.cost;
    trace.records.push_back(std::move(r));
  }

  CostRecord record_for(const Trace& trace, const std::string& tier, const std::string& model,
                        const std::string& provider) const {
    const Config& config = engine.config();
    CostRecord r;
    r.time = std::chrono::system_clock::now();
    r.trace_id = trace.trace_id;
    r.call_id = new_id();
    r.workload = trace.decision->workload;
    r.role = trace.step->role;
    r.tier = tier;
    r.model = model;
    r.provider = provider;
    r.rules_version = trace.decision->rules_version;
    r.catalog_version = config.prices ? config.prices->version() : std::string();
    return r;
  }

  // The ledger's record of the rules' decision (before the budget moved it),
  // with the step as the rules saw it (step_for_ledger).
  DecisionRecord decision_record(const Decision& decision, const Step& step, const std::string& trace_id,
                                 AdmissionOutcome admission, bool eval) const {
    DecisionRecord r;
    r.time = std::chrono::system_clock::now();
    r.trace_id = trace_id;
    r.kind = eval ? DecisionKind::kEval : decision.requested ? DecisionKind::kRequested : DecisionKind::kRules;
    r.step = detail::step_for_ledger(step, engine.config());
    r.decision = decision;
    r.admission = admission;
    return r;
  }

  struct Answer {
    Result<ModelResponse> response = Status::internal("not called");
    std::string model;
    std::int64_t output_cap = 0;     // the cap the answer was asked with, 0 when none was sent
    bool output_cap_lowered = false;  // lowered to what the budget affords
    Clock::duration upstream{0};      // in the model calls and backoffs (StepResult::upstream)
  };

  // Calls the tier's models in order until one answers, retrying each as the
  // [calls] settings say. `first_call_id` (if set) is the first attempt's id,
  // `parent_id` every attempt's parent. Streams through `on_chunk` when set.
  Answer call_tier(Trace& trace, const std::string& tier, const std::string& first_model,
                   const ModelRequest& base_request, std::int64_t input_tokens, const std::string& parent_id,
                   std::string first_call_id, const ChunkHandler& on_chunk, bool restart_streams) const {
    const Config& config = engine.config();
    const CallSettings& calls = config.calls;
    Answer out;
    const std::vector<std::string> order = call_order(config, tier, first_model);
    std::vector<std::string> fitting;
    for (const std::string& name : order) {
      const ModelSpec* spec = config.find_model(name);
      if (spec == nullptr) continue;
      const std::int64_t cap = base_request.max_output_tokens.value_or(output_cap(*trace.decision, *spec));
      if (input_tokens + cap <= spec->context_window) fitting.push_back(name);
    }
    if (fitting.empty()) {
      CostRecord r = record_for(trace, tier, first_model, "");
      r.status = CallStatus::kError;
      r.error = "no model of tier '" + tier + "' has a context window for " + std::to_string(input_tokens) +
                " input tokens plus the output cap";
      out.response = Status::upstream(r.error).with_reason(Status::Reason::kNoContextWindow);
      out.model = first_model;
      r.parent_id = parent_id;
      if (!first_call_id.empty()) r.call_id = first_call_id;
      write(trace, std::move(r));
      return out;
    }

    // Streaming: a chunk of a new attempt after chunks of a failed one says restart.
    bool delivered = false;
    bool restart_pending = false;
    std::int64_t attempt_bytes = 0;  // text the current attempt delivered: a cancelled call's estimate
    std::string_view calling;        // the model of the attempt under way
    std::int64_t attempt_lowered_cap = 0;  // the current attempt's cap when the budget lowered it
    Clock::time_point attempt_start{};     // when the current attempt's client call began
    Clock::duration in_handler{0};         // its time in on_chunk: the caller's work, not upstream
    ChunkHandler forward;
    if (on_chunk) {
      forward = [&](const StreamChunk& c) {
        StreamChunk chunk = c;
        // The restart goes on the new attempt's first piece of an answer (kStart is none).
        const bool piece = c.kind != StreamChunk::Kind::kStart;
        if (!piece) chunk.name = calling;  // which model accepted: a host names it in its response head
        chunk.restart = restart_pending && piece;
        if (piece) restart_pending = false;
        delivered = delivered || piece;
        attempt_bytes += static_cast<std::int64_t>(c.text.size());
        if (!piece) {
          chunk.output_cap_lowered_to = attempt_lowered_cap;
          chunk.upstream = std::chrono::duration_cast<std::chrono::nanoseconds>(
              trace.fanout_upstream + out.upstream + (Clock::now() - attempt_start) - in_handler);
        }
        const Clock::time_point handed = Clock::now();
        on_chunk(chunk);
        in_handler += Clock::now() - handed;
      };
    }
    const CallBounds& bounds = base_request.bounds;

    for (size_t m = 0; m < fitting.size(); ++m) {
      const std::string& name = fitting[m];
      const ModelSpec& spec = *config.find_model(name);
      const bool last_model = m + 1 == fitting.size();
      const ModelRequest& request = base_request;
      ModelClient* client = clients.find(name);
      // This model's next record (an attempt, or a pass-by).
      const auto new_record = [&] {
        CostRecord r = record_for(trace, tier, name, client ? client->provider() : std::string());
        r.parent_id = parent_id;
        if (!first_call_id.empty()) r.call_id = std::exchange(first_call_id, std::string());
        return r;
      };
      // A model passed by without a call: the record says why, and the tier's next model is tried.
      const auto pass_by = [&](Status why) {
        CostRecord r = new_record();
        r.status = last_model ? CallStatus::kError : CallStatus::kFallback;
        r.error = why.message();
        out.response = std::move(why);
        out.model = name;
        write(trace, std::move(r));
        if (!last_model) {
          std::lock_guard<std::mutex> lock(trace.mu);
          trace.fallbacks++;
        }
      };
      // One that would drop part of the request.
      if (const std::string missing = missing_capability(spec, request); !missing.empty()) {
        pass_by(Status::upstream("not called: " + name + " " + missing));
        continue;
      }
      // One whose rate limit has no room now: counted once per step (its retries included).
      if (Status room = admit_model_rate(name, trace.rate_tokens); !room.ok()) {
        pass_by(std::move(room));
        continue;
      }
      HealthBook& health = engine.health();
      for (int attempt = 1; attempt <= calls.max_attempts; ++attempt) {
        if (Status stop = bounds.check(); !stop.ok()) {  // no attempt starts past the step's bounds
          out.response = std::move(stop);
          return out;
        }
        // One whose circuit breaker is open.
        if (!health.admit(name)) {
          const ModelHealth h = health.snapshot(name);
          pass_by(Status::unavailable("not called: " + name + "'s circuit breaker is " +
                                      std::string(to_string(h.state)) + " (" +
                                      std::to_string(h.consecutive_failures) + " failures in a row; [health])"));
          break;
        }
        CostRecord r = new_record();
        r.budget_scopes = trace.scopes;
        // Every attempt holds its own bound at this model's prices (a
        // fallback to a dearer model re-reserves before it is called).
        AttemptBudget budget = reserve_attempt(trace, spec, request);
        if (!budget.refused.ok()) {
          health.record_neutral(name);  // admitted, never called: a half-open probe slot goes back
          r.status = CallStatus::kRefusedByBudget;
          r.error = one_line(budget.refused.message());
          out.response = budget.refused;
          out.model = name;
          write(trace, std::move(r));
          break;  // the next model may be cheaper
        }
        // Under a cap the bound holds upstream only with the cap sent.
        const ModelRequest* sent = &request;
        ModelRequest capped;
        if (budget.held.limited()) {
          capped = request;
          capped.max_output_tokens = budget.cap;
          sent = &capped;
          r.reserved = budget.held.amount();
        }
        r.output_cap = sent->max_output_tokens.value_or(0);
        r.output_cap_lowered = budget.lowered || trace.cap_lowered;
        attempt_lowered_cap = r.output_cap_lowered ? r.output_cap : 0;
        const auto settle_and_write = [&](CostRecord&& record) {
          budget.held.settle(record.cost);  // the provider's figures, even above the reservation
          write(trace, std::move(record));
        };
        restart_pending = delivered;
        attempt_bytes = 0;
        calling = name;
        in_handler = Clock::duration::zero();
        const Clock::time_point start = attempt_start = Clock::now();
        Result<ModelResponse> result =
            client == nullptr ? Result<ModelResponse>(Status::not_found("no client serves model '" + name + "'"))
            : on_chunk        ? client->stream(*sent, forward)
                              : client->invoke(*sent);
        const Clock::duration took = Clock::now() - start;
        r.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
        out.upstream += took - in_handler;
        {
          std::lock_guard<std::mutex> lock(trace.mu);
          trace.attempts++;
        }
        if (result.ok()) {
          health.record_success(name, std::chrono::milliseconds(r.latency_ms), result->rate_limits);
          r.usage = result->usage;
          // What the model's prompt cache holds for the session now (sessions.h).
          if (trace.step != nullptr && !trace.step->session_id.empty()) {
            engine.sessions().record(trace.step->session_id, name, r.usage,
                                     spec.provider == "anthropic" ? CacheFill::kExplicit : CacheFill::kAutomatic);
          }
          // The engine's own count beside the bill: what calibration learns from.
          if (budget.counted) r.counted_input_tokens = *budget.counted;
          auto cost = config.prices ? config.prices->cost(name, r.usage) : Result<MicroUsd>(MicroUsd{0});
          r.cost = cost.ok() ? *cost : 0;
          if (!cost.ok()) r.error = one_line(cost.status().message());
          r.status = CallStatus::kOk;
          out.output_cap = r.output_cap;
          out.output_cap_lowered = r.output_cap_lowered;
          settle_and_write(std::move(r));
          out.response = std::move(result);
          out.model = name;
          return out;
        }
        const Status& failure = result.status();
        if (failure.code() == Status::Code::kUnavailable) {
          health.record_failure(name, failure.retry_after());
        } else {
          health.record_neutral(name);  // refused, a 400, cancelled: nothing said of the model
        }
        r.error = one_line(failure.message());
        if (failure.code() == Status::Code::kCancelled || failure.code() == Status::Code::kDeadlineExceeded) {
          // Cut short: what it cost is not reported, so it is estimated (the
          // whole input, which the provider had, and the text received).
          r.status = CallStatus::kCancelled;
          r.usage.input_tokens = input_tokens;
          r.usage.output_tokens = detail::estimate_tokens_for_bytes(attempt_bytes);
          r.usage_estimated = true;
          auto cost = config.prices ? config.prices->cost(name, r.usage) : Result<MicroUsd>(MicroUsd{0});
          r.cost = cost.ok() ? *cost : 0;
          settle_and_write(std::move(r));
          out.response = std::move(result);
          out.model = name;
          return out;
        }
        if (delivered && !restart_streams) {
          // The caller has shown this attempt's text: a retry or another model
          // would be an answer it never shows, billed all the same.
          r.status = CallStatus::kError;
          r.error = "stream broke after its first chunks reached the caller (no retry, no fallback): " + r.error;
          settle_and_write(std::move(r));
          out.response = std::move(result);
          out.model = name;
          return out;
        }
        const std::optional<std::chrono::milliseconds> retry_after = failure.retry_after();
        const bool retry = failure.code() == Status::Code::kUnavailable && attempt < calls.max_attempts &&
                           (!retry_after || *retry_after <= calls.retry_after_max);
        out.response = std::move(result);
        out.model = name;
        if (retry) {
          r.status = CallStatus::kError;
          settle_and_write(std::move(r));
          const Clock::time_point waiting = Clock::now();
          backoff(bounds, retry_after ? *retry_after : jittered_backoff(attempt));
          out.upstream += Clock::now() - waiting;
          continue;
        }
        r.status = last_model ? CallStatus::kError : CallStatus::kFallback;
        settle_and_write(std::move(r));
        if (!last_model) {
          std::lock_guard<std::mutex> lock(trace.mu);
          trace.fallbacks++;
        }
        break;
      }
    }
    return out;
  }

  // The request the step's calls send: the caller's, with the decision's
  // reasoning level and output cap (the caller's explicit settings win unless
  // the rules pinned the level), the
  // step's counts and bounds, and one user message made from the step when
  // the caller gave none. `cap_lowered`: the admission lowered the decision's
  // cap to what the budget affords, so it also lowers the caller's.
  // Written into `req`, the object the calls read: `lent` (the call's
  // messages and tools when it was lent, taken out of the call before this
  // copies it) puts them in it and, later, gives them back from it.
  void request_for(const Decision& d, const StepCall& call, bool cap_lowered, LentMessages& lent,
                   ModelRequest& req) const {
    req = call.request;
    lent.lend_to(req);
    if (req.messages.empty()) {
      req.messages.push_back(Message::of_text(
          "user", call.step.prompt ? *call.step.prompt : "(a '" + call.step.role + "' step)"));
    }
    req.reasoning.level = d.reasoning;
    if (d.reasoning_pinned) {  // the rules' level applies: the caller's own setting is not sent
      req.reasoning.effort.reset();
      req.reasoning.budget_tokens.reset();
    }
    const bool lower = cap_lowered && d.max_output_tokens && req.max_output_tokens &&
                       *d.max_output_tokens < *req.max_output_tokens;
    if (!req.max_output_tokens || lower) req.max_output_tokens = d.max_output_tokens;
    if (call.step.output_must_be_json && req.output_format.type == OutputFormat::Type::kText) {
      req.output_format.type = OutputFormat::Type::kJsonObject;
    }
    req.counted_input_tokens = call.step.input_tokens;
    req.expected_output_tokens = call.step.expected_output_tokens;
    req.bounds = call.bounds;
  }

  // A live step (its decision recorded, and sampled for a judged shadow
  // call), or one of a shadow call's own calls (neither).
  enum class Mode { kLive, kShadow };

  // `rate_counted`: the step is already counted in its key's and workload's
  // rate limits (by run(), or by the host: StepCall::rate_counted).
  // `given`: `call` itself, when its caller lent it (the StepCall&&
  // overloads): its messages and tools are lent to the model calls' request
  // (LentMessages), not copied. Null: they are copied.
  StepResult execute(const Decision& decision, const StepCall& call, std::string trace_id, bool rate_counted,
                     Mode mode = Mode::kLive, StepCall* given = nullptr) const {
    StepResult result = execute_step(decision, call, std::move(trace_id), rate_counted, mode, given);
    if (mode == Mode::kLive && !call.eval && result.status.ok()) maybe_shadow(call, result);
    return result;
  }

  StepResult execute_step(const Decision& decision, const StepCall& call, std::string trace_id, bool rate_counted,
                          Mode mode, StepCall* given) const {
    const Clock::time_point start = Clock::now();
    StepResult result;
    result.trace_id = std::move(trace_id);
    if (const ModelSpec* m = engine.config().find_model(decision.model); m && m->kind == ModelKind::kEmbedding) {
      result.decision = decision;
      result.status = Status::invalid_argument("'" + decision.model + "' is an embedding model: it serves "
                                               "embeddings (Dispatcher::embed, POST /v1/embeddings), not chat");
      return result;
    }
    if (!rate_counted) {
      RateAdmission rate = engine.admit_rate(decision.workload, call.step, call.request.max_output_tokens.value_or(0),
                                             call.budget_scopes, result.trace_id);
      if (!rate.status.ok()) {
        result.decision = decision;
        result.status = rate.status;
        if (options.ledger) {
          options.ledger->record(
              decision_record(decision, call.step, result.trace_id, AdmissionOutcome::kRefused, call.eval));
        }
        if (rate.refusal) {
          rate.refusal->call_id = new_id();
          rate.refusal->tier = decision.tier;
          rate.refusal->model = decision.model;
          record_refusal(*rate.refusal, result);
        }
        result.latency = since(start);
        return result;
      }
    }
    Admission admission = engine.admit(decision, call.step, result.trace_id, call.budget_scopes);
    result.decision = admission.decision;
    // The decision's record is made now (its time is the decision's); an
    // admitted step's goes to the ledger while its first model call waits
    // for the answer (below), so that the call is not sent later for it.
    // (Made in place: a move of the record costs about as much as its making.)
    const bool recorded = options.ledger && mode == Mode::kLive;
    const DecisionRecord decision_line =
        recorded ? decision_record(decision, call.step, result.trace_id,
                                   !admission.status.ok() ? AdmissionOutcome::kRefused
                                   : admission.rerouted   ? AdmissionOutcome::kRerouted
                                                          : AdmissionOutcome::kAdmitted,
                                   call.eval)
                 : DecisionRecord{};
    if (!admission.status.ok()) {
      if (recorded) options.ledger->record(decision_line);
      result.status = admission.status;
      if (admission.refusal) {
        admission.refusal->call_id = new_id();
        if (options.ledger) options.ledger->record(*admission.refusal);
        result.records.push_back(*admission.refusal);
      }
      result.latency = since(start);
      return result;
    }
    const Decision& d = result.decision;
    Trace trace;
    trace.decision = &d;
    trace.step = &call.step;
    trace.trace_id = result.trace_id;
    trace.scopes = admission.scopes;
    trace.pending = std::move(admission.reservation);
    trace.cap_lowered = admission.output_cap_lowered;
    trace.rate_tokens = rate_tokens_of(call);
    // Written at the fiber's first wait (the request sent), before the
    // first call record (write()) and at the latest when the calls are over.
    std::optional<async::DuringNextWait> record_decision;
    if (recorded) record_decision.emplace([this, &decision_line] { options.ledger->record(decision_line); });
    trace.record_decision = record_decision ? &*record_decision : nullptr;
    // The calls' request; a given call's messages and tools are lent to it
    // (taken out before it is made from the call, given back at the end).
    ModelRequest request;
    LentMessages lent(given);
    request_for(d, call, admission.output_cap_lowered, lent, request);
    const std::int64_t counted = detail::input_tokens_of(call.step);
    const std::int64_t input_tokens =
        counted > 0 ? counted : detail::estimate_tokens(request.messages.back().text());

    Answer final;
    Clock::duration upstream{0};
    if (d.fanout <= 1) {
      final = call_tier(trace, d.tier, d.model, request, input_tokens, "", "", call.on_chunk,
                        call.restart_streams);
      upstream = final.upstream;
    } else {
      // Contemplating: the branches in parallel, then one aggregation call
      // whose first attempt's id every branch names as its parent.
      const std::string aggregate_id = new_id();
      std::vector<Answer> branches(static_cast<size_t>(d.fanout));
      const Clock::time_point fanned_out = Clock::now();
      async::run_all(branches.size(), [&](size_t i) {
        branches[i] = call_tier(trace, d.tier, d.model, request, input_tokens, aggregate_id, "", nullptr, false);
      });
      trace.fanout_upstream = upstream = Clock::now() - fanned_out;
      std::vector<ModelResponse> answers;
      for (Answer& b : branches) {
        if (b.response.ok()) answers.push_back(*b.response);
      }
      if (answers.empty()) {
        final = std::move(branches.back());
      } else {
        ModelRequest req = request;
        req.messages.push_back(Message::of_text("user", aggregation_prompt(answers)));
        std::int64_t agg_input = input_tokens;
        for (const ModelResponse& a : answers) agg_input += a.usage.output_tokens;
        req.counted_input_tokens = call.step.input_tokens ? std::optional<std::int64_t>(agg_input) : std::nullopt;
        const std::string agg_tier = d.aggregate.empty() ? d.tier : d.aggregate;
        const Tier* tier = engine.config().find_tier(agg_tier);
        final = call_tier(trace, agg_tier, tier ? tier->models.front() : d.model, req, agg_input, "",
                          aggregate_id, call.on_chunk, call.restart_streams);
        upstream += final.upstream;
      }
    }

    if (record_decision) record_decision->finish();
    trace.pending.release();  // not taken over: no attempt was made
    result.records = std::move(trace.records);
    result.cost = trace.cost;
    result.attempts = trace.attempts;
    result.fallbacks = trace.fallbacks;
    result.model = final.model;
    result.output_cap = final.output_cap;
    result.output_cap_lowered = final.output_cap_lowered;
    result.upstream = std::chrono::duration_cast<std::chrono::nanoseconds>(upstream);
    if (final.response.ok()) {
      result.response = std::move(final.response).value();
    } else {
      result.status = final.response.status();
    }
    result.latency = since(start);
    return result;
  }

  // Judged shadow calls: counts the answered step, draws it, and hands a
  // drawn one to the worker without waiting (a full queue drops it).
  void maybe_shadow(const StepCall& call, const StepResult& result) const {
    const Workload* w = engine.config().find_workload(result.decision.workload);
    if (w == nullptr || !w->shadow_calls) return;
    const ShadowCalls& sc = *w->shadow_calls;
    const bool on_target = result.model == sc.target || result.decision.tier == sc.target;
    {
      std::lock_guard<std::mutex> lock(shadow_mu);
      if (on_target) {
        ++shadow_counts.on_target;
        return;
      }
      ++shadow_counts.eligible;
      if (std::uniform_real_distribution<double>(0.0, 1.0)(sampler) >= sc.sample) return;
      ++shadow_counts.sampled;
      if (shadow_queue.size() >= options.shadow_call_queue || shadow_stopping) {
        ++shadow_counts.dropped;
        return;
      }
    }
    // The copy is made outside the lock; the queue may have filled meanwhile.
    ShadowJob job;
    job.workload = w;
    job.call.step = call.step;
    job.call.step.session_id.clear();  // a shadow call feeds no session's cache figures
    job.call.request = call.request;
    job.call.request.bounds = CallBounds{};
    if (job.call.request.messages.empty()) {  // what request_for sent in its place: the judge reads it
      job.call.request.messages.push_back(Message::of_text(
          "user", call.step.prompt ? *call.step.prompt : "(a '" + call.step.role + "' step)"));
    }
    job.routed = result.decision;
    job.trace_id = result.trace_id;
    job.routed_model = result.model;
    for (const CostRecord& r : result.records) {
      if (r.status == CallStatus::kOk) job.routed_call_id = r.call_id;
    }
    job.routed_cost = result.cost;
    job.routed_answer = result.response;
    {
      std::lock_guard<std::mutex> lock(shadow_mu);
      if (shadow_queue.size() >= options.shadow_call_queue || shadow_stopping) {
        ++shadow_counts.dropped;
        return;
      }
      shadow_queue.push_back(std::move(job));
    }
    shadow_cv.notify_one();
  }

  bool wait_for_shadow_calls(std::chrono::milliseconds timeout) const {
    std::unique_lock<std::mutex> lock(shadow_mu);
    return shadow_idle_cv.wait_for(lock, timeout, [&] { return shadow_queue.empty() && !shadow_busy; });
  }

  void shadow_worker() {
    std::unique_lock<std::mutex> lock(shadow_mu);
    for (;;) {
      shadow_cv.wait(lock, [&] { return shadow_stopping || !shadow_queue.empty(); });
      if (shadow_queue.empty()) return;  // stopping
      ShadowJob job = std::move(shadow_queue.front());
      shadow_queue.pop_front();
      shadow_busy = true;
      lock.unlock();
      const JudgedVerdict v = judge_shadow(job);
      lock.lock();
      shadow_busy = false;
      switch (v.outcome) {
        case JudgedVerdict::Outcome::kWin: ++shadow_counts.wins; break;
        case JudgedVerdict::Outcome::kTie: ++shadow_counts.ties; break;
        case JudgedVerdict::Outcome::kLoss: ++shadow_counts.losses; break;
        case JudgedVerdict::Outcome::kError: ++shadow_counts.errors; break;
        case JudgedVerdict::Outcome::kSkipped: ++shadow_counts.skipped; break;
      }
      shadow_counts.spent += v.target_cost + v.judge_cost;
      if (shadow_queue.empty()) shadow_idle_cv.notify_all();
    }
  }

  // A decision that sends a shadow call to `model` of `tier` as is.
  Decision shadow_decision(const std::string& workload, const std::string& tier, const std::string& model,
                           const Step& step, const ModelRequest& request, const std::string& reason) const {
    const ModelSpec& spec = *engine.config().find_model(model);
    Decision d;
    d.workload = workload;
    d.tier = tier;
    d.model = model;
    d.requested = true;
    d.reason = reason;
    d.max_output_tokens = request.max_output_tokens;
    d.estimated_input_tokens = step.input_tokens.value_or(estimate_input_tokens(request));
    d.estimated_output_tokens = step.expected_output_tokens.value_or(spec.default_output_tokens);
    d.estimated_cost = estimate_call_cost(spec, d.estimated_input_tokens, d.estimated_output_tokens);
    return d;
  }

  // One sample: the target's answer, the judge in both orders, and the
  // judged record. Runs on the shadow worker.
  JudgedVerdict judge_shadow(const ShadowJob& job) const {
    const Config& config = engine.config();
    const ShadowCalls& sc = *job.workload->shadow_calls;
    const std::string workload = shadow_calls_budget_scope(job.workload->name);  // "shadow:X"
    JudgedVerdict v;
    v.judge_model = sc.judge;
    v.routed_model = job.routed_model;
    v.routed_call_id = job.routed_call_id;
    v.routed_cost = job.routed_cost;
    v.shadow_trace_id = new_trace_id();
    const Tier* target_tier = config.find_tier(sc.target);
    v.target_tier = target_tier != nullptr ? target_tier->name : config.tier_of(sc.target)->name;
    const std::string first_model = target_tier != nullptr ? target_tier->models.front() : sc.target;
    const auto finish = [&](JudgedVerdict::Outcome outcome, std::string reason) {
      v.outcome = outcome;
      v.reason = one_line(std::move(reason));
      if (options.ledger) {
        DecisionRecord r;
        r.time = std::chrono::system_clock::now();
        r.trace_id = job.trace_id;
        r.kind = DecisionKind::kJudged;
        r.step = detail::step_for_ledger(job.call.step, config);
        r.decision = job.routed;
        r.admission = AdmissionOutcome::kNotAdmitted;
        r.judged = v;
        options.ledger->record(r);
      }
      return v;
    };

    StepCall target_call = job.call;
    target_call.budget_scopes = {workload};
    Decision target = job.routed;
    {
      Decision fixed = shadow_decision(workload, v.target_tier, first_model, job.call.step, job.call.request,
                                       "shadow call of a " + job.workload->name + " step");
      fixed.reasoning = job.routed.reasoning;
      fixed.reasoning_pinned = job.routed.reasoning_pinned;
      fixed.max_output_tokens = job.routed.max_output_tokens;
      target = std::move(fixed);
    }
    const StepResult answer = execute(target, target_call, v.shadow_trace_id, /*rate_counted=*/true, Mode::kShadow);
    v.target_cost = answer.cost;
    v.target_model = answer.model;
    if (answer.status.code() == Status::Code::kOverBudget) {
      return finish(JudgedVerdict::Outcome::kSkipped, "the shadow budget refused the target: " + answer.status.message());
    }
    if (!answer.status.ok()) {
      return finish(JudgedVerdict::Outcome::kError, "the target failed: " + answer.status.message());
    }
    // Both orders: the routed answer as A, then as B.
    detail::PairwiseWinner winners[2] = {detail::PairwiseWinner::kTie, detail::PairwiseWinner::kTie};
    std::string reasons[2];
    const char* order_names[2] = {"routed as A", "routed as B"};
    for (int order = 0; order < 2; ++order) {
      const ModelRequest judge_request =
          order == 0 ? detail::pairwise_judge_request(job.call.request, job.routed_answer, answer.response)
                     : detail::pairwise_judge_request(job.call.request, answer.response, job.routed_answer);
      StepCall judge_call;
      judge_call.step.role = "judge";
      judge_call.step.input_tokens = estimate_input_tokens(judge_request);
      judge_call.step.expected_output_tokens = judge_request.max_output_tokens;
      judge_call.request = judge_request;
      judge_call.budget_scopes = {workload};
      const Tier* judge_tier = config.tier_of(sc.judge);
      const Decision d = shadow_decision(workload, judge_tier != nullptr ? judge_tier->name : "", sc.judge,
                                         judge_call.step, judge_request, "shadow call judge");
      const StepResult said = execute(d, judge_call, v.shadow_trace_id, /*rate_counted=*/true, Mode::kShadow);
      v.judge_cost += said.cost;
      if (said.status.code() == Status::Code::kOverBudget) {
        return finish(JudgedVerdict::Outcome::kSkipped,
                      "the shadow budget refused the judge: " + said.status.message());
      }
      if (!said.status.ok()) {
        return finish(JudgedVerdict::Outcome::kError, "the judge " + sc.judge + " failed (" + order_names[order] +
                                                          "): " + said.status.message());
      }
      auto parsed = detail::parse_pairwise_verdict(said.response.text());
      if (!parsed.ok()) {
        return finish(JudgedVerdict::Outcome::kError,
                      std::string(order_names[order]) + ": " + parsed.status().message());
      }
      winners[order] = parsed->winner;
      const char* named = parsed->winner == detail::PairwiseWinner::kA   ? "A"
                          : parsed->winner == detail::PairwiseWinner::kB ? "B"
                                                                         : "tie";
      reasons[order] = std::string(order_names[order]) + ": " + named + (parsed->reason.empty() ? "" : ", ") +
                       parsed->reason;
    }
    return finish(detail::combine_pairwise(winners[0], winners[1]), reasons[0] + "; " + reasons[1]);
  }

  // Writes a refusal record (no model called) and keeps it in `result`.
  void record_refusal(const CostRecord& r, StepResult& result) const {
    if (options.ledger) options.ledger->record(r);
    result.records.push_back(r);
  }

  // Dispatcher::embed: the tier and first model asked for, admission, then
  // the tier's embedding models in order, as call_tier calls chat models.
  EmbeddingResult embed(std::string_view workload_name, const EmbeddingCall& call) const {
    const Config& config = engine.config();
    EmbeddingResult result;
    result.trace_id = call.trace_id.empty() ? new_trace_id() : call.trace_id;
    const Workload* workload = config.find_workload(workload_name);
    if (workload == nullptr) {
      result.status = Status::not_found("unknown workload '" + std::string(workload_name) + "'");
      return result;
    }
    if (call.request.size() == 0 || (!call.request.texts.empty() && !call.request.tokens.empty())) {
      result.status = Status::invalid_argument("an embeddings call takes its inputs as texts or as token ids: "
                                               "one of them, not empty");
      return result;
    }
    const Tier* tier = nullptr;
    std::string first;
    if (call.model.empty() || call.model == "auto") {
      tier = config.find_tier(config.embeddings.tier);
      if (tier == nullptr) {
        result.status = Status::invalid_argument("the config has no embedding models (kind = \"embedding\")");
        return result;
      }
    } else if ((tier = config.find_tier(call.model)) == nullptr) {
      if (config.find_model(call.model) == nullptr) {
        result.status = Status::not_found("no model or tier is called '" + call.model + "'");
        return result;
      }
      first = call.model;
      tier = config.tier_of(first);
    }
    if (first.empty()) first = tier->models.front();
    result.tier = tier->name;
    result.model = first;
    const ModelSpec& spec = *config.find_model(first);
    if (spec.kind != ModelKind::kEmbedding) {
      result.status = Status::invalid_argument("'" + call.model + "' serves chat, not embeddings");
      return result;
    }

    // What admission and the records see: the inputs' estimate, no output.
    Step step;
    step.role = call.role;
    step.input_tokens = detail::estimate_embedding_tokens(call.request);
    Decision d;
    d.workload = workload->name;
    d.tier = tier->name;
    d.model = first;
    d.max_output_tokens = 0;
    d.requested = true;
    d.reason = "embeddings";
    d.estimated_input_tokens = *step.input_tokens;
    d.estimated_cost = estimate_call_cost(spec, *step.input_tokens, 0);
    if (RateAdmission rate = engine.admit_rate(workload->name, step, 0, call.budget_scopes, result.trace_id);
        !rate.status.ok()) {
      result.status = rate.status;
      result.limited_by = rate.limited_by;
      if (rate.refusal) {
        rate.refusal->call_id = new_id();
        rate.refusal->tier = tier->name;
        rate.refusal->model = first;
        if (options.ledger) options.ledger->record(*rate.refusal);
        result.records.push_back(*rate.refusal);
      }
      return result;
    }
    Admission admission = engine.admit(d, step, result.trace_id, call.budget_scopes);
    if (!admission.status.ok()) {
      result.status = admission.status;
      if (admission.refusal) {
        admission.refusal->call_id = new_id();
        if (options.ledger) options.ledger->record(*admission.refusal);
        result.records.push_back(*admission.refusal);
      }
      return result;
    }

    Trace trace;
    trace.decision = &d;
    trace.step = &step;
    trace.trace_id = result.trace_id;
    const CallSettings& calls = config.calls;
    const CallBounds& bounds = call.request.bounds;
    Result<EmbeddingResponse> answer = Status::internal("not called");
    Clock::duration upstream{0};  // EmbeddingResult::upstream
    const std::vector<std::string> order = call_order(config, tier->name, first);
    for (std::size_t m = 0; m < order.size(); ++m) {
      const std::string& name = order[m];
      const bool last_model = m + 1 == order.size();
      ModelClient* client = clients.find(name);
      bool next_model = false;
      // A model whose rate limit has no room now is passed by, as in call_tier.
      if (Status room = admit_model_rate(name, *step.input_tokens); !room.ok()) {
        CostRecord r = record_for(trace, tier->name, name, client ? client->provider() : std::string());
        r.budget_scopes = admission.scopes;
        r.status = last_model ? CallStatus::kError : CallStatus::kFallback;
        r.error = one_line(room.message());
        write(trace, std::move(r));
        answer = std::move(room);
        result.model = name;
        if (!last_model) trace.fallbacks++;
        continue;
      }
      for (int attempt = 1; attempt <= calls.max_attempts && !next_model; ++attempt) {
        if (Status stop = bounds.check(); !stop.ok()) {  // no attempt starts past the call's bounds
          answer = std::move(stop);
          break;
        }
        CostRecord r = record_for(trace, tier->name, name, client ? client->provider() : std::string());
        r.budget_scopes = admission.scopes;
        if (admission.reservation.limited()) r.reserved = admission.reservation.amount();
        const Clock::time_point start = Clock::now();
        answer = client != nullptr
                     ? client->embed(call.request)
                     : Result<EmbeddingResponse>(Status::not_found("no client serves model '" + name + "'"));
        const Clock::duration took = Clock::now() - start;
        r.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
        upstream += took;
        trace.attempts++;
        result.model = name;
        const bool cut = !answer.ok() && (answer.status().code() == Status::Code::kCancelled ||
                                          answer.status().code() == Status::Code::kDeadlineExceeded);
        if (answer.ok() || cut) {
          // Cut short: the provider had the whole input, so it is what is billed, estimated.
          r.usage = answer.ok() ? answer->usage : Usage{};
          if (cut) r.usage.input_tokens = *step.input_tokens;
          r.usage_estimated = cut || answer->usage_estimated;
          auto cost = config.prices ? config.prices->cost(name, r.usage) : Result<MicroUsd>(MicroUsd{0});
          r.cost = cost.ok() ? *cost : 0;
          if (!cost.ok()) r.error = one_line(cost.status().message());
          if (cut) r.error = one_line(answer.status().message());
          r.status = cut ? CallStatus::kCancelled : CallStatus::kOk;
          write(trace, std::move(r));
          break;
        }
        const Status& failure = answer.status();
        r.error = one_line(failure.message());
        const std::optional<std::chrono::milliseconds> retry_after = failure.retry_after();
        const bool retry = failure.code() == Status::Code::kUnavailable && attempt < calls.max_attempts &&
                           (!retry_after || *retry_after <= calls.retry_after_max);
        if (retry) {
          r.status = CallStatus::kError;
          write(trace, std::move(r));
          const Clock::time_point waiting = Clock::now();
          backoff(bounds, retry_after ? *retry_after : jittered_backoff(attempt));
          upstream += Clock::now() - waiting;
          continue;
        }
        r.status = last_model ? CallStatus::kError : CallStatus::kFallback;
        write(trace, std::move(r));
        if (!last_model) trace.fallbacks++;
        next_model = true;
      }
      if (!next_model) break;  // answered, cut short, or past the bounds
    }

    admission.reservation.settle(trace.cost);
    result.records = std::move(trace.records);
    result.cost = trace.cost;
    result.upstream = std::chrono::duration_cast<std::chrono::nanoseconds>(upstream);
    result.attempts = trace.attempts;
    result.fallbacks = trace.fallbacks;
    if (answer.ok()) {
      result.response = std::move(answer).value();
    } else {
      result.status = answer.status();
      // Only a pass-by refuses with rate_limited here: every model was out of room.
      if (result.status.code() == Status::Code::kRateLimited) result.limited_by = model_rate_scope(result.model);
    }
    return result;
  }
};

EmbeddingResult Dispatcher::embed(std::string_view workload_name, const EmbeddingCall& call) const {
  return impl_->embed(workload_name, call);
}

Dispatcher::Dispatcher(const Engine& engine, ModelClients clients, DispatcherOptions options)
    : impl_(std::make_unique<Impl>(engine, std::move(clients), std::move(options))) {}

Dispatcher::~Dispatcher() = default;

const ModelClients& Dispatcher::clients() const { return impl_->clients; }

bool Dispatcher::wait_for_shadow_calls(std::chrono::milliseconds timeout) const {
  if (!impl_->shadow_thread.joinable()) return true;
  return impl_->wait_for_shadow_calls(timeout);
}

ShadowCallCounts Dispatcher::shadow_calls() const {
  std::lock_guard<std::mutex> lock(impl_->shadow_mu);
  return impl_->shadow_counts;
}

StepResult Dispatcher::execute(const Decision& decision, const StepCall& call) const {
  return impl_->execute(decision, call, call.trace_id.empty() ? new_trace_id() : call.trace_id, call.rate_counted);
}

StepResult Dispatcher::execute(const Decision& decision, StepCall&& call) const {
  return impl_->execute(decision, call, call.trace_id.empty() ? new_trace_id() : call.trace_id, call.rate_counted,
                        Impl::Mode::kLive, &call);
}

StepResult Dispatcher::run(std::string_view workload, StepCall&& call, const CallContext& ctx) const {
  return run_call(workload, call, ctx, &call);
}

StepResult Dispatcher::run(std::string_view workload, const StepCall& call, const CallContext& ctx) const {
  return run_call(workload, call, ctx, nullptr);
}

StepResult Dispatcher::run_call(std::string_view workload, const StepCall& call, const CallContext& ctx,
                                StepCall* given) const {
  // The trace id exists before the decision, so that the engine's shadow
  // record of the step names the same trace as its calls.
  CallContext traced = ctx;
  if (!call.trace_id.empty()) {
    traced.trace_id = call.trace_id;
  } else if (traced.trace_id.empty()) {
    traced.trace_id = new_trace_id();
  }
  // Counted before the rules run, so that they see the headroom.
  if (!call.rate_counted) {
    RateAdmission rate = impl_->engine.admit_rate(workload, call.step, call.request.max_output_tokens.value_or(0),
                                                  call.budget_scopes, traced.trace_id);
    if (!rate.status.ok()) {
      StepResult r;
      r.status = rate.status;
      r.trace_id = std::move(traced.trace_id);
      if (rate.refusal) {
        rate.refusal->call_id = impl_->new_id();
        impl_->record_refusal(*rate.refusal, r);
      }
      return r;
    }
    traced.rate_requests_left = rate.requests_left;
    traced.rate_tokens_left = rate.tokens_left;
  }
  Result<Decision> decision = impl_->engine.decide(workload, call.step, traced);
  if (!decision.ok()) {
    StepResult r;
    r.status = decision.status();
    r.trace_id = std::move(traced.trace_id);
    return r;
  }
  return impl_->execute(*decision, call, std::move(traced.trace_id), true, Impl::Mode::kLive, given);
}

Result<std::int64_t> load_budget_spend(const Engine& engine, const std::string& ledger_location) {
  // The month holds the day: every budget period in use starts at or after the
  // first of this month (UTC).
  const auto now = std::chrono::system_clock::now();
  const std::chrono::year_month_day today{std::chrono::floor<std::chrono::days>(now)};
  const std::chrono::sys_days month_start{today.year() / today.month() / 1};
  LedgerQuery q;
  q.since = std::chrono::system_clock::time_point(month_start);
  auto records = read_ledger(ledger_location, q);
  if (!records.ok()) return records.status();
  std::int64_t counted = 0;
  for (const CostRecord& r : *records) {
    if (r.cost <= 0) continue;
    if (r.budget_scopes.empty()) {
      engine.budgets().add_spent(workload_budget_scope(r.workload), r.time, r.cost);
    } else {
      for (const std::string& scope : r.budget_scopes) engine.budgets().add_spent(scope, r.time, r.cost);
    }
    ++counted;
  }
  return counted;
}

}  // namespace switchboard
