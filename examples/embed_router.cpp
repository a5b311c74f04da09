// The smallest host: open the engine on a config and route one step.
#include <iostream>

#include "switchboard/switchboard.h"

int main(int argc, char** argv) {
  auto engine = switchboard::Engine::open_file(argc > 1 ? argv[1] : "switchboard.toml");
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    return 1;
  }
  switchboard::Step step;
  step.role = "summarize";
  step.input_tokens = 8000;
  step.expected_output_tokens = 2000;
  auto decision = (*engine)->decide("default", step);
  if (!decision.ok()) {
    std::cerr << decision.status().message() << "\n";
    return 1;
  }
  std::cout << decision->tier << " " << decision->model << " "
            << switchboard::format_usd(decision->estimated_cost) << " (" << decision->reason << ")\n";
  return decision->error ? 1 : 0;
}
