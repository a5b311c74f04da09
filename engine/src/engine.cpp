#include "switchboard/engine.h"

#include <fstream>
#include <sstream>

#include "cost.h"
#include "decision_resolve.h"
#include "state_pool.h"

namespace switchboard {

using detail::StatePool;

namespace {

Result<std::string> read_file(const std::string& path, const std::string& display) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error(display + ": cannot read the file");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

struct Engine::Impl {
  Config config;
  std::map<std::string, std::unique_ptr<StatePool>, std::less<>> pools;  // by workload
};

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::open(Config config) {
  auto impl = std::make_unique<Impl>();
  for (const auto& [name, workload] : config.workloads) {
    auto source = read_file(workload.rules_file, workload.rules_path);
    if (!source.ok()) return source.status();
    auto pool = StatePool::create(config.sandbox, workload.rules_path, std::move(source).value());
    if (!pool.ok()) return pool.status();
    impl->pools.emplace(name, std::move(pool).value());
  }
  impl->config = std::move(config);
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

Result<std::unique_ptr<Engine>> Engine::open_file(const std::string& config_path) {
  auto config = load_config(config_path);
  if (!config.ok()) return config.status();
  return open(std::move(config).value());
}

const Config& Engine::config() const { return impl_->config; }

std::string Engine::rules_version(std::string_view workload) const {
  auto it = impl_->pools.find(workload);
  return it == impl_->pools.end() ? std::string() : it->second->version();
}

Result<Decision> Engine::decide(std::string_view workload_name, const Step& step,
                                const CallContext& ctx) const {
  const Config& config = impl_->config;
  const Workload* workload = config.find_workload(workload_name);
  auto pool_it = impl_->pools.find(workload_name);
  if (workload == nullptr || pool_it == impl_->pools.end()) {
    return Status::not_found("unknown workload '" + std::string(workload_name) + "'");
  }
  StatePool& pool = *pool_it->second;

  Decision decision;
  decision.workload = workload->name;
  decision.rules_version = pool.version();
  const std::int64_t input_tokens = detail::input_tokens_of(step);

  detail::RulesContext rules_ctx;
  rules_ctx.workload = workload->name;
  rules_ctx.rules_version = pool.version();
  if (ctx.budget_left) {
    rules_ctx.budget_left_usd = to_usd(*ctx.budget_left);
  } else if (workload->budget) {
    rules_ctx.budget_left_usd = to_usd(*workload->budget - ctx.spent);
  }
  rules_ctx.spent_usd = to_usd(ctx.spent);

  Status status;
  {
    auto lease = pool.lease();
    if (!lease.ok()) {
      status = lease.status();
    } else {
      auto raw = lease->get()->classify(step, input_tokens, rules_ctx);
      status = raw.ok() ? detail::resolve_decision(config, pool.chunk_name(), *raw, decision)
                        : raw.status();
    }
  }
  if (!status.ok()) detail::fall_back(config, *workload, status.message(), decision);

  const ModelSpec& model = *config.find_model(decision.model);
  detail::estimate_cost(model, step, input_tokens, decision);
  if (decision.fanout > 1) {
    // N branches, then one aggregation call that reads the N answers.
    const MicroUsd branch = decision.estimated_cost;
    decision.estimated_cost = branch * decision.fanout;
    const ModelSpec& aggregator = *config.find_model(config.find_tier(decision.aggregate)->models.front());
    Decision aggregate_call;
    Step aggregate_step;
    aggregate_step.expected_output_tokens = decision.estimated_output_tokens;
    detail::estimate_cost(aggregator, aggregate_step,
                          input_tokens + decision.estimated_output_tokens * decision.fanout,
                          aggregate_call);
    decision.estimated_cost += aggregate_call.estimated_cost;
  }
  return decision;
}

Result<std::string> check_rules_file(const std::string& path, const SandboxLimits& limits,
                                     std::string display_name) {
  if (display_name.empty()) display_name = path;
  auto source = read_file(path, display_name);
  if (!source.ok()) return source.status();
  auto pool = StatePool::create(limits, display_name, std::move(source).value());
  if (!pool.ok()) return pool.status();
  return (*pool)->version();
}

}  // namespace switchboard
