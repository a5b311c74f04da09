// Small shared pieces of the benchmark programs.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "switchboard/switchboard.h"

namespace switchboard::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The demo trace's steps, the workload every benchmark routes.
inline std::vector<Step> demo_steps(const std::string& source_dir) {
  std::vector<Step> steps;
  std::ifstream in(source_dir + "/examples/agent-trace.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto step = parse_step_json(line);
    if (step.ok()) steps.push_back(std::move(step).value());
  }
  return steps;
}

// Best (lowest) of `runs` measurements of `fn`, in seconds.
template <typename Fn>
double best_of(int runs, Fn&& fn) {
  double best = 1e300;
  for (int i = 0; i < runs; ++i) best = std::min(best, fn());
  return best;
}

inline bool has_flag(int argc, char** argv, const std::string& flag) {
  for (int i = 1; i < argc; ++i) {
    if (argv[i] == flag) return true;
  }
  return false;
}

}  // namespace switchboard::bench
