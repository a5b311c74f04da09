// A program built against the installed Switchboard package (not the source
// tree): opens a config, routes one step through its rules, calls the chosen
// model (the offline sim provider when no key is set) and prints
//   switchboard VERSION: TIER MODEL $ESTIMATE estimated, $COST billed
#include <iostream>

#include "switchboard/switchboard.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: consumer SWITCHBOARD.TOML\n";
    return 2;
  }
  auto engine = switchboard::Engine::open_file(argv[1]);
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    return 1;
  }
  auto clients = switchboard::ModelClients::from_config((*engine)->config());
  if (!clients.ok()) {
    std::cerr << clients.status().message() << "\n";
    return 1;
  }
  switchboard::Dispatcher dispatcher(**engine, std::move(*clients));

  switchboard::StepCall call;
  call.step.role = "format";
  call.step.input_tokens = 1200;
  call.step.prompt = "Format the tool call as JSON.";
  const switchboard::StepResult result = dispatcher.run("default", call);
  std::cout << "switchboard " << switchboard::version() << ": " << result.decision.tier << " " << result.model
            << " " << switchboard::format_usd(result.decision.estimated_cost) << " estimated, "
            << switchboard::format_usd(result.cost) << " billed\n";
  if (!result.status.ok()) {
    std::cerr << result.status.message() << "\n";
    return 1;
  }
  return 0;
}
