// A host-supplied ModelClient: the host serves one model itself (an in-house
// endpoint, a cache, a test double) and the engine routes to it, retries it
// and bills it like any built-in adapter. Here: a client that answers from a
// canned table and reports its own usage.
#include <iostream>
#include <memory>
#include "switchboard/switchboard.h"

class CannedClient final : public switchboard::ModelClient {
 public:
  std::string provider() const override { return "canned"; }
  switchboard::Result<switchboard::ModelResponse> invoke(const switchboard::ModelRequest& request) override {
    if (request.messages.empty()) return switchboard::Status::invalid_argument("canned: no messages");
    switchboard::ModelResponse r;
    r.model = "canned-1";
    r.content.push_back(switchboard::ContentBlock::of_text("Canned answer to: " + request.messages.back().text()));
    r.stop_reason = switchboard::StopReason::kEndTurn;
    r.usage.input_tokens = request.counted_input_tokens.value_or(100);
    r.usage.output_tokens = 12;  // what this "provider" bills
    return r;
  }
};

int main() {
  auto engine = switchboard::Engine::open_file("switchboard.toml");
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    return 1;
  }
  auto clients = switchboard::ModelClients::from_config((*engine)->config());
  if (!clients.ok()) return 1;
  // Every model of the cheap tier is served by the host's own client.
  for (const std::string& model : (*engine)->config().find_tier("cheap")->models) {
    clients->set(model, std::make_shared<CannedClient>());
  }
  std::vector<switchboard::CostRecord> ledger;
  switchboard::DispatcherOptions options;
  options.ledger = std::make_shared<switchboard::Ledger>(std::vector<std::shared_ptr<switchboard::LedgerSink>>{
      switchboard::callback_ledger([&](const switchboard::CostRecord& r) { ledger.push_back(r); })});
  switchboard::Dispatcher dispatcher(**engine, std::move(*clients), options);

  switchboard::StepCall call;
  call.step.role = "format";
  call.step.input_tokens = 400;
  call.step.prompt = "Format the tool call as JSON.";
  auto result = dispatcher.run("default", call);
  if (!result.status.ok()) {
    std::cerr << result.status.message() << "\n";
    return 1;
  }
  std::cout << result.model << " via " << ledger.back().provider << ": " << result.response.text() << " ("
            << ledger.back().usage.output_tokens << " output tokens, " << switchboard::format_usd(result.cost)
            << ")\n";
}
