// The smallest host (the README's embedding example): open the engine on
// switchboard.toml in the current directory and route one step.
#include <iostream>
#include "switchboard/switchboard.h"

int main() {
  auto engine = switchboard::Engine::open_file("switchboard.toml");
  if (!engine.ok()) {                       // "switchboard.toml:12:5: ..." or "rules/x.lua:3: ..."
    std::cerr << engine.status().message() << "\n";
    return 1;
  }
  switchboard::Step step;
  step.role = "summarize";
  step.input_tokens = 8000;
  step.expected_output_tokens = 2000;
  auto decision = (*engine)->decide("default", step);   // thread-safe; never throws
  if (!decision.ok()) return 1;                          // only for an unknown workload
  std::cout << decision->tier << " " << decision->model << " "
            << switchboard::format_usd(decision->estimated_cost) << "\n";
  if (decision->error) std::cerr << *decision->error << "\n";  // rules failed: fallback tier
}
