// A host with its own Boost.Asio event loop (a server, say): many steps at
// once on one thread, each on a fiber of a FiberLoop, instead of a thread
// each. Each step is the same Dispatcher::run as embed_minimal's; on a fiber
// its model call, backoffs and fan-out wait on the loop (the sim provider's
// latency included), so eight steps take about as long as one.
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <iostream>
#include <vector>

#include "switchboard/switchboard.h"

int main() {
  auto engine = switchboard::Engine::open_file("switchboard.toml");
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    return 1;
  }
  auto clients = switchboard::ModelClients::from_config((*engine)->config());
  if (!clients.ok()) return 1;
  switchboard::Dispatcher dispatcher(**engine, std::move(*clients));

  boost::asio::io_context io;           // the host's loop; one thread runs it
  switchboard::FiberLoop fibers(io);    // belongs to that thread
  const std::vector<const char*> roles = {"summarize", "format", "extract", "plan",
                                          "summarize", "format", "extract", "plan"};
  int answered = 0;
  const auto start = std::chrono::steady_clock::now();
  for (const char* role : roles) {
    fibers.spawn([&, role] {             // runs now, until its model call waits
      switchboard::StepCall call;
      call.step.role = role;
      call.step.input_tokens = 2000;
      call.step.prompt = "Work on the design review.";
      const switchboard::StepResult result = dispatcher.run("default", call);
      if (result.status.ok()) ++answered;
      std::cout << role << " -> " << result.model << "\n";
    });
  }
  io.run();                             // returns when every fiber has ended
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  std::cout << answered << " of " << roles.size() << " steps answered on one thread in " << ms << " ms\n";
  return answered == static_cast<int>(roles.size()) ? 0 : 1;
}
