// Helpers shared by the suites: temporary directories and configs, running
// the CLI. Lua in tests stays inline as R"lua(...)lua".
#pragma once

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>

#include "switchboard/switchboard.h"

namespace switchboard::testing {

// A fresh directory under the system temp dir, removed when this goes away.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("switchboard-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Writes `text` to `name` (relative to the directory) and returns its full path.
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

// The price catalog small_config() names (prices.toml beside it): m-cheap
// $1/$0.10/$5 and m-premium $15/$1.50/$75 (input/cached/output per Mtok).
inline std::string small_prices(const std::string& extra = "") {
  return R"toml(version = "test-1"
[models.m-cheap]
input = 1.0
cached_input = 0.1
output = 5.0

[models.m-premium]
input = 15.0
cached_input = 1.5
output = 75.0
)toml" + extra;
}

// A small valid config: tiers cheap (m-cheap) and premium (m-premium), one
// workload "w" whose rules file is rules/w.lua in the same directory, prices
// from prices.toml in the same directory (write small_prices() there, or use
// write_small_config).
inline std::string small_config(const std::string& extra = "") {
  return R"toml(
[routing]
price_catalog = "prices.toml"
premium_tier = "premium"
default_fallback_tier = "cheap"

[models.m-cheap]
provider = "sim"
context_window = 100000
default_output_tokens = 500

[models.m-premium]
provider = "sim"
context_window = 200000
default_output_tokens = 1000

[tiers.cheap]
models = ["m-cheap"]

[tiers.premium]
models = ["m-premium", "m-cheap"]

[workloads.w]
rules = "rules/w.lua"
fallback_tier = "cheap"
)toml" + extra;
}

// Writes `config` as switchboard.toml and small_prices() as prices.toml in
// `dir`; returns the config's path.
inline std::string write_config(const TempDir& dir, const std::string& config) {
  dir.write("prices.toml", small_prices());
  return dir.write("switchboard.toml", config);
}

// write_config() of small_config(extra).
inline std::string write_small_config(const TempDir& dir, const std::string& extra = "") {
  return write_config(dir, small_config(extra));
}

// Opens an engine on small_config() with `rules` as rules/w.lua.
// A clock that moves only when told (EngineOptions::health_clock, sessions_clock, ...).
struct ScriptedClock {
  std::chrono::steady_clock::time_point now{};
  std::function<std::chrono::steady_clock::time_point()> fn() {
    return [this] { return now; };
  }
};

inline Result<std::unique_ptr<Engine>> engine_with_rules(const TempDir& dir, const std::string& rules,
                                                         const std::string& extra_config = "",
                                                         EngineOptions options = {}) {
  dir.write("rules/w.lua", rules);
  return Engine::open_file(write_small_config(dir, extra_config), std::move(options));
}

// A Usage from its six buckets, in declaration order.
inline Usage usage_of(std::int64_t input, std::int64_t cached, std::int64_t write_5m, std::int64_t write_1h,
                      std::int64_t output, std::int64_t reasoning) {
  Usage u;
  u.input_tokens = input;
  u.cached_input_tokens = cached;
  u.cache_write_5m_tokens = write_5m;
  u.cache_write_1h_tokens = write_1h;
  u.output_tokens = output;
  u.reasoning_tokens = reasoning;
  return u;
}

// Runs a shell command; returns its exit code and fills `output` with stdout+stderr.
inline int run_command(const std::string& command, std::string& output) {
  output.clear();
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output.append(buf, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Rules for coverage and tracing tests. Lines that hold code (luac -l -l
// lists the same): 1, 5, 12, 14, 20 run in the file body; 4 is
// never_called's (never run); 8, 9, 11 size_of's; 15-17, 19 and 20 classify's.
inline constexpr const char* kCoverageRules = R"lua(local LIMIT = 10

local function never_called(x)
  return x * 2
end

local function size_of(n)
  if n > LIMIT then
    return "big"
  end
  return "small"
end

function classify(step, ctx)
  local size = size_of(step.input_tokens)
  if step.role == "plan" then
    return { tier = "premium", reason = size }
  end
  return { tier = "cheap", reason = size }
end
)lua";

}  // namespace switchboard::testing
