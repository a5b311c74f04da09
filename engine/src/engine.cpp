#include "switchboard/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "cost/estimate.h"
#include "health/health_share.h"
#include "state/health_exchange.h"
#include "state/redis_client.h"
#include "rules/decide.h"
#include "util/file_text.h"
#include "rules/rule_set.h"
#include "rules/rule_test_runner.h"
#include "rules/watcher.h"
#include "util/sha256.h"
#include "rules/shadow.h"
#include "switchboard/tokens.h"
#include "util/thread_name.h"

namespace switchboard {

namespace fs = std::filesystem;
using detail::RuleSet;
using detail::ShadowRules;
using detail::WorkloadRules;

namespace {

Result<std::string> read_file(const std::string& path, const std::string& display) {
  return detail::read_text_file(path, display + ": cannot read the file");
}

// The test cases that gate a reload: <stem>.test.toml beside the rules file.
std::string test_file_for(const std::string& rules_file) {
  fs::path p(rules_file);
  return (p.parent_path() / (p.stem().string() + ".test.toml")).string();
}

// sha256 of a file's bytes, "" when it cannot be read.
std::string file_hash(const std::string& path) {
  auto text = read_file(path, path);
  return text.ok() ? detail::sha256_hex(*text) : std::string();
}

std::uint64_t next_engine_id() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

// Each thread remembers the last snapshots it used, so the hot path reads one
// shared atomic (the generation) and writes nothing shared.
struct SnapshotCacheEntry {
  std::uint64_t engine_id = 0;
  std::uint64_t generation = 0;
  std::shared_ptr<const RuleSet> rules;
  // The workload decide() found last in `rules` (null: none yet), so a
  // thread deciding for one workload compares a name instead of two lookups.
  std::string workload_name;
  const Workload* workload = nullptr;
  WorkloadRules* compiled = nullptr;
};
// Shares a HealthBook with the fleet ([state] backend = "redis"): a thread
// that every kHealthExchangeEvery sends what the book saw and applies the
// fleet's view (health_share.h, state/health_exchange.h), so nothing on a
// call's path waits on Redis. While Redis cannot be reached the book runs on
// its own figures, said once in the log and in HealthBook::sharing().
constexpr std::chrono::milliseconds kHealthExchangeEvery{200};

class HealthSharer {
 public:
  HealthSharer(HealthBook& book, std::vector<std::string> models, detail::RedisAddress address,
               const StateSettings& state)
      : book_(book),
        models_(std::move(models)),
        redis_(std::move(address), state.timeout),
        exchange_(redis_, state.key_prefix, HealthBookAccess::settings(book)) {
    HealthBookAccess::enable(book_);
    thread_ = std::thread([this] {
      detail::name_this_thread("sb-health-share");
      run();
    });
  }
  ~HealthSharer() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  HealthSharer(const HealthSharer&) = delete;
  HealthSharer& operator=(const HealthSharer&) = delete;

 private:
  void run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      exchange_once();
      lock.lock();
      cv_.wait_for(lock, kHealthExchangeEvery, [this] { return stop_; });
    }
  }

  void exchange_once() {
    std::vector<detail::HealthOutcomes> outcomes = HealthBookAccess::take(book_);
    auto fleet = exchange_.exchange(models_, outcomes);
    if (fleet.ok()) {
      HealthBookAccess::apply(book_, fleet.value());
      if (warned_) spdlog::warn("health: shared state reachable again; the breakers are the fleet's");
      warned_ = false;
      return;
    }
    HealthBookAccess::give_back(book_, std::move(outcomes));
    HealthBookAccess::failed(book_);
    if (!warned_) {  // once per outage
      spdlog::warn("health: shared state unreachable ({}); each process keeps its own breakers until it is back",
                   fleet.status().message());
      warned_ = true;
    }
  }

  HealthBook& book_;
  const std::vector<std::string> models_;
  detail::RedisClient redis_;
  detail::HealthExchange exchange_;
  bool warned_ = false;  // the thread's own: an outage was logged
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is made
};

thread_local std::array<SnapshotCacheEntry, 4> t_snapshots;
thread_local unsigned t_snapshot_victim = 0;

}  // namespace

struct Engine::Impl {
  const std::uint64_t id = next_engine_id();
  EngineOptions options;
  std::shared_ptr<detail::Reaper> reaper = detail::Reaper::start();
  std::unique_ptr<BudgetBook> budgets = std::make_unique<BudgetBook>();
  std::unique_ptr<RateLimiter> rate_limits;  // made by open(), with the config's [state]
  std::unique_ptr<HealthBook> health;  // made by open(), from the config's [health]
  std::unique_ptr<HealthSharer> health_sharer;  // [state] backend = "redis": shares `health` with the fleet
  std::unique_ptr<SessionBook> sessions;  // made by open(), from the config's [sessions]

  mutable std::mutex mu;                 // guards current and status
  std::shared_ptr<const RuleSet> current;
  std::atomic<std::uint64_t> generation{0};
  std::map<std::string, WorkloadStatus, std::less<>> status;

  std::mutex reload_mu;                  // serialises reloads
  // Per workload, the last text (and test file) that was rejected, so the
  // same broken file is not compiled and reported again on every event.
  std::map<std::string, std::string, std::less<>> rejected;  // guarded by reload_mu
  // The same for shadow files: the sha256 that did not load, or "unreadable".
  std::map<std::string, std::string, std::less<>> rejected_shadow;  // guarded by reload_mu

  // Shadow evaluation: counters of every workload with shadow rules (the set
  // is fixed at open; snapshots point into it), and the worker, started when
  // there is at least one such workload.
  std::map<std::string, std::unique_ptr<detail::ShadowCounters>, std::less<>> shadow_counters;
  std::unique_ptr<detail::ShadowWorker> shadow;

  // Last: destroyed first, so no reload runs while the rest goes away.
  std::unique_ptr<detail::RulesWatcher> watcher;

  const RuleSet& snapshot() const;
  // RulesContext::config_epoch of this engine's config: one Config for the
  // engine's life (open() makes it; no snapshot replaces it), and the engine's
  // sandboxes run on no other with this number (each engine's id is its own).
  std::uint64_t config_epoch() const { return id; }
  // snapshot()'s entry in this thread's cache: valid until the thread's next
  // snapshot of another engine or generation.
  SnapshotCacheEntry& snapshot_entry() const;
  void publish(std::shared_ptr<const RuleSet> next);
  std::vector<ReloadEvent> reload();
  // One workload's shadow file, for reload(): adds an event when it changed.
  // Returns whether `next` changed.
  bool reload_shadow(const Config& config, const Workload& workload, const RuleSet& cur, RuleSet& next,
                     std::vector<ReloadEvent>& events);
  void offer_shadow(const ShadowRules& shadow_rules, const Workload& workload, const Step& step,
                    const CallContext& ctx, const Decision& active,
                    const std::optional<SessionView>& session) const;
};

const RuleSet& Engine::Impl::snapshot() const { return *snapshot_entry().rules; }

SnapshotCacheEntry& Engine::Impl::snapshot_entry() const {
  const std::uint64_t gen = generation.load(std::memory_order_acquire);
  SnapshotCacheEntry* mine = nullptr;
  for (SnapshotCacheEntry& e : t_snapshots) {
    if (e.engine_id == id) {
      if (e.generation == gen) return e;
      mine = &e;
    }
  }
  if (mine == nullptr) mine = &t_snapshots[t_snapshot_victim++ % t_snapshots.size()];
  std::shared_ptr<const RuleSet> cur;
  {
    std::lock_guard<std::mutex> lock(mu);
    cur = current;
  }
  mine->engine_id = id;
  mine->generation = cur->generation;
  mine->rules = std::move(cur);  // may drop an old snapshot: the reaper closes its states
  mine->workload = nullptr;
  mine->compiled = nullptr;
  return *mine;
}

void Engine::Impl::publish(std::shared_ptr<const RuleSet> next) {
  const std::uint64_t gen = next->generation;
  {
    std::lock_guard<std::mutex> lock(mu);
    current = std::move(next);
  }
  generation.store(gen, std::memory_order_release);
}

std::vector<ReloadEvent> Engine::Impl::reload() {
  std::lock_guard<std::mutex> serial(reload_mu);
  std::shared_ptr<const RuleSet> cur;
  {
    std::lock_guard<std::mutex> lock(mu);
    cur = current;
  }
  const Config& config = *cur->config;
  auto next = std::make_shared<RuleSet>(*cur);
  std::vector<ReloadEvent> events;
  for (const auto& [name, workload] : config.workloads) {
    const WorkloadRules& active = *cur->workloads.at(name);
    ReloadEvent event;
    event.workload = name;
    event.rules_path = workload.rules_path;
    event.previous_version = active.version();
    event.at = std::chrono::system_clock::now();
    auto source = read_file(workload.rules_file, workload.rules_path);
    if (source.ok()) {
      event.version = detail::sha256_hex(*source);
      if (event.version == active.version()) {  // unchanged (a touch, a save of the same text)
        rejected.erase(name);
        continue;
      }
      const std::string tests = test_file_for(workload.rules_file);
      const std::string attempt = event.version + "+" + file_hash(tests);
      if (auto it = rejected.find(name); it != rejected.end() && it->second == attempt) continue;
      auto candidate = WorkloadRules::compile(config.sandbox, workload.rules_path, std::move(source).value());
      if (!candidate.ok()) {
        event.error = candidate.status().message();
      } else {
        std::error_code ec;
        if (fs::exists(tests, ec)) {
          RuleTestReport report;
          detail::run_rule_test_file(config, tests, report, candidate->get(), &workload);
          if (report.failed > 0) {
            const RuleTestFailure& f = report.failures.front();
            event.error = f.message + (f.case_name.empty() ? "" : " (case '" + f.case_name + "')") +
                          (report.failed > 1 ? " and " + std::to_string(report.failed - 1) + " more failing" : "");
          }
        }
        if (event.error.empty()) {
          next->workloads[name] = detail::retire_through(std::move(candidate).value(), reaper);
        }
      }
      if (event.error.empty()) {
        rejected.erase(name);
      } else {
        rejected[name] = attempt;
      }
    } else {
      // Unreadable (missing, a directory, a dangling link): reported once
      // until it changes, like a broken text.
      const std::string attempt = "unreadable";
      if (auto it = rejected.find(name); it != rejected.end() && it->second == attempt) continue;
      rejected[name] = attempt;
      event.error = source.status().message();
    }
    event.kind = event.error.empty() ? ReloadEvent::Kind::kActivated : ReloadEvent::Kind::kRejected;
    events.push_back(std::move(event));
  }
  bool changed = std::any_of(events.begin(), events.end(), [](const ReloadEvent& e) {
    return e.kind == ReloadEvent::Kind::kActivated;
  });
  for (const auto& [name, workload] : config.workloads) {
    if (!workload.shadow_rules_path.empty() && reload_shadow(config, workload, *cur, *next, events)) changed = true;
  }
  if (changed) {
    next->generation = cur->generation + 1;
    publish(std::move(next));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    for (const ReloadEvent& e : events) {
      WorkloadStatus& s = status[e.workload];
      if (e.shadow) {
        if (e.kind == ReloadEvent::Kind::kActivated) {
          s.shadow_version = e.version;
          s.shadow_activated_at = e.at;
          s.shadow_error.reset();
        } else {
          s.shadow_version.clear();
          s.shadow_error = e.error;
          s.shadow_error_at = e.at;
        }
      } else if (e.kind == ReloadEvent::Kind::kActivated) {
        s.version = e.version;
        s.activated_at = e.at;
        s.activations++;
      } else {
        s.last_error = e.error;
        s.last_error_at = e.at;
        s.rejections++;
      }
    }
  }
  if (options.on_reload) {
    for (const ReloadEvent& e : events) options.on_reload(e);
  }
  return events;
}

bool Engine::Impl::reload_shadow(const Config& config, const Workload& workload, const RuleSet& cur,
                                 RuleSet& next, std::vector<ReloadEvent>& events) {
  const std::string& name = workload.name;
  auto loaded = cur.shadows.find(name);
  ReloadEvent event;
  event.shadow = true;
  event.workload = name;
  event.rules_path = workload.shadow_rules_path;
  event.previous_version = loaded == cur.shadows.end() ? std::string() : loaded->second.rules->version();
  event.at = std::chrono::system_clock::now();
  auto source = read_file(workload.shadow_rules_file, workload.shadow_rules_path);
  std::string attempt = "unreadable";
  if (source.ok()) {
    event.version = detail::sha256_hex(*source);
    if (event.version == event.previous_version) {  // unchanged
      rejected_shadow.erase(name);
      return false;
    }
    attempt = event.version;
  }
  if (auto it = rejected_shadow.find(name); it != rejected_shadow.end() && it->second == attempt) return false;
  bool changed = false;
  if (source.ok()) {
    auto candidate = WorkloadRules::compile(config.sandbox, workload.shadow_rules_path, std::move(source).value());
    if (candidate.ok()) {
      next.shadows[name] = ShadowRules{detail::retire_through(std::move(candidate).value(), reaper),
                                       shadow_counters.at(name).get()};
      rejected_shadow.erase(name);
      changed = true;
    } else {
      event.error = candidate.status().message();
    }
  } else {
    event.error = source.status().message();
  }
  if (!event.error.empty()) {
    // A candidate that does not load is not evaluated: a stale version would
    // be taken for the file being tried.
    rejected_shadow[name] = attempt;
    changed = next.shadows.erase(name) > 0;
  }
  event.kind = event.error.empty() ? ReloadEvent::Kind::kActivated : ReloadEvent::Kind::kRejected;
  events.push_back(std::move(event));
  return changed;
}

void Engine::Impl::offer_shadow(const ShadowRules& shadow_rules, const Workload& workload, const Step& step,
                                const CallContext& ctx, const Decision& active,
                                const std::optional<SessionView>& session) const {
  if (shadow->full()) {  // counted without copying the step
    shadow_rules.counters->dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  detail::ShadowJob job;
  job.candidate = shadow_rules.rules;
  job.workload = &workload;
  job.counters = shadow_rules.counters;
  job.step = step;
  job.session = session;
  job.active = active;
  job.trace_id = ctx.trace_id;
  job.at = std::chrono::system_clock::now();
  shadow->offer(std::move(job));
}

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Engine::~Engine() {
  impl_->watcher.reset();                   // no reload may start from here on
  impl_->health_sharer.reset();             // its last exchange (bounded by [state] timeout_ms) ends
  if (impl_->shadow) impl_->shadow->stop();  // records what waits (bounded), then lets the ledger go
  impl_->reaper->stop();                    // later retirements (thread caches) close inline
}

Result<std::unique_ptr<Engine>> Engine::open(Config config, EngineOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  // [state]: with backend = "redis" the caps are shared with every process using the same Redis.
  if (config.state.backend != StateSettings::Backend::kMemory) {
    impl->budgets = std::make_unique<BudgetBook>(BudgetBook::Clock{}, config.state);
  }
  impl->health = std::make_unique<HealthBook>(config.health, impl->options.health_clock
                                                                  ? impl->options.health_clock
                                                                  : std::chrono::steady_clock::now);
  if (config.state.backend == StateSettings::Backend::kRedis) {
    auto address = detail::redis_address_of(config.state);
    if (!address.ok()) return address.status();
    std::vector<std::string> models;
    for (const auto& [name, model] : config.models) models.push_back(name);
    impl->health_sharer =
        std::make_unique<HealthSharer>(*impl->health, std::move(models), std::move(address).value(), config.state);
  }
  impl->sessions = std::make_unique<SessionBook>(config.sessions, impl->options.sessions_clock
                                                                      ? impl->options.sessions_clock
                                                                      : std::chrono::steady_clock::now);
  // The tokenizers the models count with load now (once per process: 65 ms
  // for o200k_base), so that no call's budget bound pays for it.
  std::set<std::string, std::less<>> tokenizers;
  for (const auto& [name, model] : config.models) tokenizers.insert(model.tokenizer);
  for (const std::string& t : tokenizers) (void)count_text_tokens(t, "warm");  // a missing file fails later, where it matters
  auto rules = std::make_shared<RuleSet>();
  const auto now = std::chrono::system_clock::now();
  std::vector<std::string> files;
  for (const auto& [name, workload] : config.workloads) {
    auto source = read_file(workload.rules_file, workload.rules_path);
    if (!source.ok()) return source.status();
    auto compiled = WorkloadRules::compile(config.sandbox, workload.rules_path, std::move(source).value());
    if (!compiled.ok()) return compiled.status();
    WorkloadStatus& s = impl->status[name];
    s.workload = name;
    s.rules_path = workload.rules_path;
    s.version = (*compiled)->version();
    s.activated_at = now;
    rules->workloads.emplace(name, detail::retire_through(std::move(compiled).value(), impl->reaper));
    files.push_back(workload.rules_file);
    if (workload.shadow_rules_path.empty()) continue;
    // A shadow file that does not load is reported, never fatal: the active
    // rules serve either way, and a reload picks the file up once it loads.
    detail::ShadowCounters* counters =
        impl->shadow_counters.emplace(name, std::make_unique<detail::ShadowCounters>()).first->second.get();
    s.shadow_rules_path = workload.shadow_rules_path;
    files.push_back(workload.shadow_rules_file);
    auto shadow_source = read_file(workload.shadow_rules_file, workload.shadow_rules_path);
    Status shadow_failed;
    std::string attempt = "unreadable";
    if (shadow_source.ok()) {
      attempt = detail::sha256_hex(*shadow_source);
      auto shadow =
          WorkloadRules::compile(config.sandbox, workload.shadow_rules_path, std::move(shadow_source).value());
      if (shadow.ok()) {
        s.shadow_version = (*shadow)->version();
        s.shadow_activated_at = now;
        rules->shadows.emplace(name, ShadowRules{detail::retire_through(std::move(shadow).value(), impl->reaper),
                                                 counters});
      } else {
        shadow_failed = shadow.status();
      }
    } else {
      shadow_failed = shadow_source.status();
    }
    if (!shadow_failed.ok()) {
      s.shadow_error = shadow_failed.message();
      s.shadow_error_at = now;
      impl->rejected_shadow[name] = attempt;
    }
  }
  for (const auto& [name, workload] : config.workloads) {
    if (workload.budget) {
      impl->budgets->set_limit({workload_budget_scope(name), *workload.budget, workload.budget_period});
    }
  }
  for (const TagBudget& tag : config.budgets) {
    impl->budgets->set_limit({tag_budget_scope(tag.name, tag.value), tag.cap, tag.period});
  }
  // Rate limits, where every host's steps pass: a key's limit applies to any
  // host that names the key's scope (the gateway's keys, StepCall::budget_scopes).
  impl->rate_limits = std::make_unique<RateLimiter>(config.state);
  for (const auto& [name, workload] : config.workloads) {
    if (workload.rate.limited()) {
      impl->rate_limits->set_limit(
          {workload_budget_scope(name), workload.rate.requests_per_minute, workload.rate.tokens_per_minute});
    }
  }
  for (const GatewayKey& key : config.gateway.keys) {
    if (key.rate.limited()) {
      impl->rate_limits->set_limit(
          {key_budget_scope(key.name), key.rate.requests_per_minute, key.rate.tokens_per_minute});
    }
  }
  for (const auto& [name, model] : config.models) {
    if (model.rate.limited()) {
      impl->rate_limits->set_limit({model_rate_scope(name), model.rate.requests_per_minute, model.rate.tokens_per_minute});
    }
  }
  rules->config = std::make_shared<const Config>(std::move(config));
  rules->generation = 1;
  if (!impl->shadow_counters.empty()) {
    impl->shadow = detail::ShadowWorker::start(rules->config, impl->options.shadow_ledger);
  }
  impl->publish(std::move(rules));
  if (impl->options.watch_rules) {
    detail::RulesWatcher::Options w;
    w.files = files;
    w.debounce = impl->options.watch_debounce;
    w.poll_interval = impl->options.watch_poll_interval;
    Impl* raw = impl.get();
    auto watcher = detail::RulesWatcher::start(std::move(w), [raw] { raw->reload(); });
    if (!watcher.ok()) return watcher.status();
    impl->watcher = std::move(watcher).value();
  }
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Result<std::unique_ptr<Engine>> Engine::open_file(const std::string& config_path, EngineOptions options) {
  auto config = load_config(config_path);
  if (!config.ok()) return config.status();
  return open(std::move(config).value(), std::move(options));
}

const Config& Engine::config() const {
  // The config never changes after open(), so the first snapshot's stays valid.
  return *impl_->snapshot().config;
}

std::string Engine::rules_version(std::string_view workload) const {
  const WorkloadRules* rules = impl_->snapshot().find(workload);
  return rules == nullptr ? std::string() : rules->version();
}

namespace {

// The workload named `name` in `rules` and its compiled rules, or not_found.
Status find_workload(const RuleSet& rules, std::string_view name, const Workload*& workload,
                     WorkloadRules*& compiled) {
  workload = rules.config->find_workload(name);
  compiled = rules.find(name);
  if (workload == nullptr || compiled == nullptr) {
    return Status::not_found("unknown workload '" + std::string(name) + "'");
  }
  return Status();
}

}  // namespace

Result<Decision> Engine::decide(std::string_view workload_name, const Step& step,
                                const CallContext& ctx) const {
  SnapshotCacheEntry& entry = impl_->snapshot_entry();
  const RuleSet& rules = *entry.rules;
  if (entry.workload == nullptr || entry.workload_name != workload_name) {
    entry.workload = nullptr;
    if (Status s = find_workload(rules, workload_name, entry.workload, entry.compiled); !s.ok()) {
      entry.workload = nullptr;
      return s;
    }
    entry.workload_name.assign(workload_name);
  }
  const Workload* workload = entry.workload;
  WorkloadRules* compiled = entry.compiled;
  // One test on the hot path of engines without shadow rules.
  const auto shadow = rules.shadows.empty() ? rules.shadows.end() : rules.shadows.find(workload_name);
  if (shadow == rules.shadows.end()) {
    // The session's view is taken only if the rules read ctx.session.
    return detail::decide_with(*rules.config, *workload, *compiled, step, ctx, impl_->budgets.get(), nullptr,
                               impl_->health.get(), nullptr, impl_->sessions.get(), impl_->config_epoch());
  }
  // The shadow rules see the session the active rules saw: one view for both.
  const std::optional<SessionView> session = detail::session_view(impl_->sessions.get(), step);
  Result<Decision> decision =
      detail::decide_with(*rules.config, *workload, *compiled, step, ctx, impl_->budgets.get(), nullptr,
                          impl_->health.get(), session ? &*session : nullptr, nullptr, impl_->config_epoch());
  impl_->offer_shadow(shadow->second, *workload, step, ctx, *decision, session);
  return decision;
}

bool Engine::wait_for_shadow(std::chrono::milliseconds timeout) const {
  return impl_->shadow == nullptr || impl_->shadow->wait_idle(timeout);
}

Result<Explanation> Engine::explain(std::string_view workload_name, const Step& step,
                                    const CallContext& ctx) const {
  const RuleSet& rules = impl_->snapshot();
  const Workload* workload = nullptr;
  WorkloadRules* compiled = nullptr;
  if (Status s = find_workload(rules, workload_name, workload, compiled); !s.ok()) return s;
  detail::CallProbe probe;
  probe.lines = true;
  Explanation out;
  out.decision = detail::decide_with(*rules.config, *workload, *compiled, step, ctx, impl_->budgets.get(), &probe,
                                     impl_->health.get(), nullptr, impl_->sessions.get());
  out.truncated = probe.trace_truncated;
  const std::vector<std::string_view> source = detail::text_lines(compiled->source());
  for (int line : probe.trace) {
    std::string_view text = static_cast<size_t>(line) <= source.size() ? source[line - 1] : std::string_view();
    text = text.substr(0, text.find_last_not_of(" \t") + 1);  // npos + 1 == 0: all blank
    out.lines.push_back({line, std::string(text)});
  }
  return out;
}

std::vector<ReloadEvent> Engine::reload() { return impl_->reload(); }

BudgetBook& Engine::budgets() const { return *impl_->budgets; }
HealthBook& Engine::health() const { return *impl_->health; }
SessionBook& Engine::sessions() const { return *impl_->sessions; }

namespace {

// The worst case of `decision` with its output cap set to `cap`.
MicroUsd worst_case_at(const Config& config, Decision decision, std::int64_t cap) {
  decision.max_output_tokens = cap;
  return detail::worst_case_cost(config, decision);
}

}  // namespace

Admission Engine::admit(const Decision& decision, const Step& step, std::string trace_id,
                        const std::vector<std::string>& extra_scopes) const {
  const RuleSet& rules = impl_->snapshot();
  const Config& config = *rules.config;
  BudgetBook& book = *impl_->budgets;
  Admission a;
  a.decision = decision;
  a.scopes.push_back(workload_budget_scope(decision.workload));
  for (const std::string& scope : extra_scopes) {  // each scope once: a record's spend counts once in it
    if (std::find(a.scopes.begin(), a.scopes.end(), scope) == a.scopes.end()) a.scopes.push_back(scope);
  }
  const Workload* workload = config.find_workload(decision.workload);
  // The over-budget tier and lowered caps serve chat: an embeddings call over the cap is refused.
  const bool embedding = config.find_model(decision.model)->kind == ModelKind::kEmbedding;

  // The cap asked for, and the least worth calling for (a minimal answer).
  const auto full_cap = [&](const Decision& d) {
    return d.max_output_tokens.value_or(config.find_model(d.model)->default_output_tokens);
  };
  const auto least_cap = [&](const Decision& d) { return std::min(full_cap(d), config.calls.min_answer_tokens); };

  a.worst_case = detail::worst_case_cost(config, a.decision);
  auto held = book.reserve_within(a.scopes, a.worst_case, a.worst_case);
  // Only a refusal over the cap may be cured by a cheaper tier or a lower cap (not unreachable shared state).
  if (!held.ok() && held.status().code() == Status::Code::kOverBudget && !embedding) {
    if (workload != nullptr && !workload->over_budget_tier.empty() && workload->over_budget_tier != decision.tier) {
      // Step down to the workload's over-budget tier, and try again there.
      const Tier& tier = *config.find_tier(workload->over_budget_tier);
      a.decision.tier = tier.name;
      a.decision.model = tier.models.front();
      a.decision.fanout = 1;
      a.decision.aggregate.clear();
      a.decision.reason += (a.decision.reason.empty() ? "" : "; ") + std::string("over budget: moved to tier '") +
                           tier.name + "'";
      detail::estimate_cost(*config.find_model(a.decision.model), step, a.decision.estimated_input_tokens,
                            a.decision);
      a.rerouted = true;
      a.worst_case = detail::worst_case_cost(config, a.decision);
    }
    // A lowered cap: whatever fits between a minimal answer and the full one.
    const MicroUsd least = worst_case_at(config, a.decision, least_cap(a.decision));
    held = book.reserve_within(a.scopes, least, a.worst_case);
    if (!held.ok()) a.worst_case = least;
  }
  if (held.ok()) {
    a.reservation = std::move(held).value();
    if (a.reservation.amount() < a.worst_case) {
      // The largest cap whose worst case fits what was reserved (the worst
      // case grows with the cap, so a binary search finds it).
      std::int64_t lo = least_cap(a.decision);
      std::int64_t hi = full_cap(a.decision);
      while (lo < hi) {
        const std::int64_t mid = lo + (hi - lo + 1) / 2;
        if (worst_case_at(config, a.decision, mid) <= a.reservation.amount()) {
          lo = mid;
        } else {
          hi = mid - 1;
        }
      }
      a.decision.max_output_tokens = lo;
      a.decision.reason += (a.decision.reason.empty() ? "" : "; ") +
                           std::string("over budget: output cap lowered to ") + std::to_string(lo);
      detail::estimate_cost(*config.find_model(a.decision.model), step, a.decision.estimated_input_tokens,
                            a.decision);
      a.output_cap_lowered = true;
      a.worst_case = worst_case_at(config, a.decision, lo);
      a.reservation.reduce_to(a.worst_case);
    }
    return a;
  }
  a.status = held.status();
  CostRecord r;
  r.time = std::chrono::system_clock::now();
  r.trace_id = std::move(trace_id);
  r.workload = a.decision.workload;
  r.role = step.role;
  r.tier = a.decision.tier;
  r.model = a.decision.model;
  r.provider = config.effective_provider(*config.find_model(a.decision.model));
  r.rules_version = a.decision.rules_version;
  r.catalog_version = config.prices ? config.prices->version() : std::string();
  r.status = CallStatus::kRefusedByBudget;
  r.error = a.status.message();
  r.budget_scopes = a.scopes;
  a.refusal = std::move(r);
  return a;
}

RateLimiter& Engine::rate_limits() const { return *impl_->rate_limits; }

RateAdmission Engine::admit_rate(std::string_view workload, const Step& step, std::int64_t output_cap,
                                 const std::vector<std::string>& extra_scopes, std::string trace_id) const {
  RateAdmission a;
  const std::int64_t tokens = detail::input_tokens_of(step) + std::max<std::int64_t>(output_cap, 0);
  std::vector<std::string> scopes{workload_budget_scope(workload)};
  for (const std::string& scope : extra_scopes) {
    if (std::find(scopes.begin(), scopes.end(), scope) == scopes.end()) scopes.push_back(scope);
  }
  Result<RateDecision> decided = impl_->rate_limits->admit(scopes, tokens);
  if (decided.ok() && decided->allowed) {
    a.requests_left = decided->requests_left;
    a.tokens_left = decided->tokens_left;
    return a;
  }
  if (decided.ok()) {
    a.limited_by = decided->limited_by;
    a.status = Status::rate_limited(
        "rate limit of " + a.limited_by + ": no room for " + std::to_string(tokens) + " tokens now; " +
            (decided->retry_after ? "it fits in " + std::to_string(decided->retry_after->count()) + " ms"
                                  : std::string("it never fits (more tokens than the limit per minute)")),
        decided->retry_after);
  } else {
    a.status = decided.status();
  }
  const RuleSet& rules = impl_->snapshot();
  CostRecord r;
  r.time = std::chrono::system_clock::now();
  r.trace_id = std::move(trace_id);
  r.workload = std::string(workload);
  r.role = step.role;
  r.rules_version = rules_version(workload);
  r.catalog_version = rules.config->prices ? rules.config->prices->version() : std::string();
  r.status = CallStatus::kRefusedByRateLimit;
  r.error = a.status.message();
  r.budget_scopes = std::move(scopes);
  a.refusal = std::move(r);
  return a;
}

std::vector<WorkloadStatus> Engine::status() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  std::vector<WorkloadStatus> out;
  for (const auto& [name, s] : impl_->status) {
    out.push_back(s);
    if (auto it = impl_->shadow_counters.find(name); it != impl_->shadow_counters.end()) {
      out.back().shadow = it->second->load();
    }
  }
  return out;
}

EngineMemory Engine::memory() const {
  std::shared_ptr<const RuleSet> cur;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    cur = impl_->current;
  }
  EngineMemory m;
  for (const auto& [name, rules] : cur->workloads) {
    m.states += rules->live_states();
    m.state_bytes += rules->state_bytes();
  }
  for (const auto& [name, shadow] : cur->shadows) {
    m.states += shadow.rules->live_states();
    m.state_bytes += shadow.rules->state_bytes();
  }
  return m;
}

Result<std::string> check_rules_file(const std::string& path, const SandboxLimits& limits,
                                     std::string display_name) {
  if (display_name.empty()) display_name = path;
  auto source = read_file(path, display_name);
  if (!source.ok()) return source.status();
  auto rules = WorkloadRules::compile(limits, display_name, std::move(source).value());
  if (!rules.ok()) return rules.status();
  return (*rules)->version();
}

}  // namespace switchboard
