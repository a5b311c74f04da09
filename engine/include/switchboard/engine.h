// Engine: the embeddable router. Owns the configuration, the compiled rules of
// every workload and the sandboxed Lua states that run them.
//
// Thread-safety: decide() may be called from any number of threads at once;
// each call leases a lua_State that no other thread uses meanwhile.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "switchboard/config.h"
#include "switchboard/decision.h"
#include "switchboard/status.h"
#include "switchboard/step.h"

namespace switchboard {

// What the host knows about the call's surroundings; the rules see it as `ctx`.
struct CallContext {
  std::optional<MicroUsd> budget_left;  // nil in Lua when the workload has no budget
  MicroUsd spent = 0;
};

class Engine {
 public:
  // Compiles every workload's rules on a fresh sandbox; fails with the first
  // "file:line: message" if one does not load.
  static Result<std::unique_ptr<Engine>> open(Config config);
  static Result<std::unique_ptr<Engine>> open_file(const std::string& config_path);

  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Runs the workload's classify(step, ctx) and validates the answer. Never
  // fails because of the rules: a broken rule yields the fallback tier with
  // Decision::error set. Fails only for an unknown workload.
  Result<Decision> decide(std::string_view workload, const Step& step,
                          const CallContext& ctx = {}) const;

  const Config& config() const;
  // sha256 (hex) of the workload's active rules, "" for an unknown workload.
  std::string rules_version(std::string_view workload) const;

 private:
  struct Impl;
  explicit Engine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Compiles and runs a rules file in a fresh sandbox without a config. Returns
// the sha256 of its text, or "file:line: message". `display_name` is how the
// file is named in messages (defaults to `path`).
Result<std::string> check_rules_file(const std::string& path, const SandboxLimits& limits = {},
                                     std::string display_name = {});

}  // namespace switchboard
