// The smallest host (the README's embedding example): open the engine on
// switchboard.toml in the current directory, run one step through the rules
// and the chosen model (sim when no key is set), print the decision and cost.
#include <iostream>
#include "switchboard/switchboard.h"

int main() {
  auto engine = switchboard::Engine::open_file("switchboard.toml");
  if (!engine.ok()) {                       // "switchboard.toml:12:5: ..." or "rules/x.lua:3: ..."
    std::cerr << engine.status().message() << "\n";
    return 1;
  }
  auto clients = switchboard::ModelClients::from_config((*engine)->config());
  if (!clients.ok()) return 1;
  switchboard::Dispatcher dispatcher(**engine, std::move(*clients));  // add a ledger in DispatcherOptions

  switchboard::StepCall call;
  call.step.role = "summarize";
  call.step.input_tokens = 8000;
  call.step.prompt = "Summarize the design review in five bullet points.";
  auto result = dispatcher.run("default", call);    // decide, budget, call, retry, fall back; thread-safe
  std::cout << result.decision.tier << " " << result.model << " "
            << switchboard::format_usd(result.decision.estimated_cost) << " estimated, "
            << switchboard::format_usd(result.cost) << " billed\n";
  if (!result.status.ok()) std::cerr << result.status.message() << "\n";  // every model failed
  if (result.decision.error) std::cerr << *result.decision.error << "\n";  // rules failed: fallback tier
  std::cout << result.response.text() << "\n";
  return result.status.ok() ? 0 : 1;
}
