// On a fiber, a step's decision record goes to the ledger while its model
// call waits for the answer (the request is not held back for it), and
// always before the call's own record; off a fiber, and for a call that never
// waits, it comes first as before.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "async/waits.h"
#include "switchboard/dispatch.h"
#include "switchboard/fiber_loop.h"
#include "switchboard/ledger.h"
#include "test_util.h"

using namespace switchboard;
using namespace switchboard::testing;
using namespace std::chrono_literals;

namespace {

// One ordered account of what happened: the client's "sent" and "answered",
// the ledger's "decision" and "call".
struct Events {
  std::mutex mu;
  std::vector<std::string> seen;
  void add(std::string what) {
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back(std::move(what));
  }
};

// A client that sends, then waits `wait` (on the fiber's loop when on one;
// not at all when zero) for its answer.
class WaitingClient final : public ModelClient {
 public:
  WaitingClient(Events& events, std::chrono::milliseconds wait) : events_(events), wait_(wait) {}
  std::string provider() const override { return "waiting"; }
  Result<ModelResponse> invoke(const ModelRequest& request) override { return stream(request, nullptr); }
  Result<ModelResponse> stream(const ModelRequest&, const ChunkHandler&) override {
    events_.add("sent");
    if (wait_.count() > 0) async::sleep_for(wait_, nullptr);
    events_.add("answered");
    ModelResponse r;
    r.content.push_back(ContentBlock::of_text("done"));
    r.usage.input_tokens = 10;
    r.usage.output_tokens = 5;
    return r;
  }

 private:
  Events& events_;
  std::chrono::milliseconds wait_;
};

struct Rig {
  TempDir dir;
  Events events;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Dispatcher> dispatcher;

  explicit Rig(std::chrono::milliseconds wait) {
    auto e = engine_with_rules(dir, R"lua(function classify(step, ctx) return "cheap" end)lua");
    REQUIRE_MESSAGE(e.ok(), e.status().to_string());
    engine = std::move(e).value();
    auto clients = ModelClients::from_config(engine->config());
    REQUIRE(clients.ok());
    clients->set("m-cheap", std::make_shared<WaitingClient>(events, wait));
    DispatcherOptions o;
    o.ledger = std::make_shared<Ledger>(std::vector<std::shared_ptr<LedgerSink>>{
        callback_ledger([this](const CostRecord&) { events.add("call"); },
                        [this](const DecisionRecord&) { events.add("decision"); })});
    dispatcher = std::make_unique<Dispatcher>(*engine, std::move(clients).value(), std::move(o));
  }

  StepResult run() {
    StepCall call;
    call.step.role = "plan";
    call.step.input_tokens = 100;
    return dispatcher->run("w", call);
  }
};

// The rig's step, run on a fiber of a loop of its own until it ends.
StepResult run_on_fiber(Rig& rig) {
  boost::asio::io_context io;
  FiberLoop loop(io);
  StepResult result;
  loop.spawn([&] { result = rig.run(); });
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (loop.fibers() > 0 && std::chrono::steady_clock::now() < until) io.run_one_for(20ms);
  REQUIRE(loop.fibers() == 0);
  return result;
}

}  // namespace

TEST_CASE("on a fiber, the decision record is written while the call waits, before the call's record") {
  Rig rig(5ms);
  const StepResult result = run_on_fiber(rig);
  CHECK_MESSAGE(result.status.ok(), result.status.to_string());
  CHECK(rig.events.seen == std::vector<std::string>{"sent", "decision", "answered", "call"});
}

TEST_CASE("on a fiber, a call that never waits still has its decision recorded before the call's record") {
  Rig rig(0ms);
  const StepResult result = run_on_fiber(rig);
  CHECK_MESSAGE(result.status.ok(), result.status.to_string());
  CHECK(rig.events.seen == std::vector<std::string>{"sent", "answered", "decision", "call"});
}

TEST_CASE("off a fiber, the decision record is written before the call is sent") {
  Rig rig(5ms);
  const StepResult result = rig.run();
  CHECK_MESSAGE(result.status.ok(), result.status.to_string());
  CHECK(rig.events.seen == std::vector<std::string>{"decision", "sent", "answered", "call"});
}
