// FiberLoop: model calls, sleeps and fan-outs wait on one thread's event
// loop; their limits fire from its timers; a loop that goes away unwinds its
// fibers and closes their connections.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "async/fiber.h"
#include "async/waits.h"
#include "fakes/fake_provider.h"
#include "providers/http_transport.h"
#include "support/tls_front.h"
#include "switchboard/fiber_loop.h"

using namespace switchboard;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

CallSettings limits(milliseconds first_byte = milliseconds(5000), milliseconds stall = milliseconds(5000)) {
  CallSettings s;
  s.connect_timeout = milliseconds(2000);
  s.first_byte_timeout = first_byte;
  s.stall_timeout = stall;
  s.total_timeout = milliseconds(20'000);
  return s;
}

HttpRequest chat(const testing::FakeProvider& fake, bool stream = false) {
  return {fake.base_url() + "/v1/chat/completions",
          {{"Authorization", "Bearer sk-test"}, {"Content-Type", "application/json"}},
          std::string(R"({"model":"gpt-5-mini","messages":[{"role":"user","content":"hi"}])") +
              (stream ? R"(,"stream":true})" : "}")};
}

milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

// Runs `io` until every fiber of `loop` ended (at most `limit`); false when time ran out.
bool run_until_done(boost::asio::io_context& io, FiberLoop& loop, milliseconds limit = milliseconds(15'000)) {
  const Clock::time_point until = Clock::now() + limit;
  while (loop.fibers() > 0 && Clock::now() < until) io.run_one_for(milliseconds(50));
  return loop.fibers() == 0;
}

// What a fiber's run of calls came to: `calls` plain calls, then one streamed.
struct CallsAndAStream {
  int ok = 0;            // plain calls answered 200 by the fake
  std::string streamed;  // the stream's bytes
  int pieces = 0;        // how many pieces they reached the sink in
  bool stream_ok = false;
};

// On a fiber of `loop`: `calls` calls of `plain`, then `streamed` as a stream.
void spawn_calls_and_a_stream(FiberLoop& loop, HttpTransport& transport, const HttpRequest& plain,
                              const HttpRequest& streamed, int calls, CallsAndAStream& out) {
  loop.spawn([&transport, &plain, &streamed, calls, &out] {
    for (int i = 0; i < calls; ++i) {
      Result<HttpResponse> r = transport.post(plain, limits());
      if (r.ok() && r->status == 200 && r->body.find("Hello from gpt-5-mini") != std::string::npos) ++out.ok;
    }
    // A stream's pieces reach the sink as they arrive.
    Result<HttpResponse> r = transport.post(streamed, limits(), [&out](const HttpResponse& head, std::string_view piece) {
      CHECK(head.status == 200);
      out.streamed.append(piece);
      ++out.pieces;
      return true;
    });
    out.stream_ok = r.ok();
  });
}

}  // namespace

TEST_SUITE("fiber_loop") {

TEST_CASE("fibers make their model calls at once, on the loop's one thread") {
  testing::FakeProviderOptions options;
  options.latency = milliseconds(200);
  auto fake = testing::FakeProvider::start(options);
  boost::asio::io_context io;
  FiberLoop loop(io);
  HttpTransport transport;
  constexpr int kCalls = 8;
  std::vector<int> statuses(kCalls, 0);
  std::vector<std::thread::id> threads(kCalls);
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < kCalls; ++i) {
    loop.spawn([&, i] {
      Result<HttpResponse> r = transport.post(chat(*fake), limits());
      statuses[i] = r.ok() ? r->status : -1;
      threads[i] = std::this_thread::get_id();
    });
  }
  CHECK(loop.fibers() == kCalls);  // each waits for its answer
  REQUIRE(run_until_done(io, loop));
  const milliseconds took = since(start);
  for (int i = 0; i < kCalls; ++i) {
    CHECK(statuses[i] == 200);
    CHECK(threads[i] == std::this_thread::get_id());
  }
  // One after another would take 8 x 200 ms.
  CHECK(took < milliseconds(4 * 200));
}

TEST_CASE("a fiber's calls reuse the loop's kept-alive connection, and none is missed") {
  // Hundreds of calls in a row: a readiness the edge-triggered reactor
  // missed would hang one of them.
  testing::FakeProviderOptions options;
  options.record_requests = false;
  auto fake = testing::FakeProvider::start(options);
  boost::asio::io_context io;
  FiberLoop loop(io);
  HttpTransport transport;
  const HttpRequest plain = chat(*fake);
  const HttpRequest streamed = chat(*fake, true);
  CallsAndAStream got;
  spawn_calls_and_a_stream(loop, transport, plain, streamed, 300, got);
  REQUIRE(run_until_done(io, loop));
  CHECK(got.ok == 300);
  CHECK(got.stream_ok);
  CHECK(got.pieces >= 1);
  CHECK(got.streamed.find("data: [DONE]") != std::string::npos);
}

TEST_CASE("an https upstream: a fiber's calls and streams go over one TLS connection of the loop") {
  testing::trust_test_ca();
  testing::FakeProviderOptions options;
  options.record_requests = false;
  auto fake = testing::FakeProvider::start(options);
  testing::TlsFront front(fake->port());
  HttpRequest request = chat(*fake);
  request.url = front.url("/v1/chat/completions");
  HttpRequest streamed_request = chat(*fake, true);
  streamed_request.url = request.url;
  boost::asio::io_context io;
  FiberLoop loop(io);
  HttpTransport transport;
  CallsAndAStream got;
  spawn_calls_and_a_stream(loop, transport, request, streamed_request, 100, got);
  REQUIRE(run_until_done(io, loop));
  CHECK(got.ok == 100);
  CHECK(got.stream_ok);
  CHECK(got.pieces >= 1);
  CHECK(got.streamed.find("data: [DONE]") != std::string::npos);
  CHECK(front.handshakes() == 1);  // kept alive through all of them

  // A first byte later than its limit: the limit's failure, on time, over TLS too.
  testing::FakeProviderOptions slow;
  slow.latency = milliseconds(1500);
  auto late = testing::FakeProvider::start(slow);
  testing::TlsFront late_front(late->port());
  HttpRequest late_request = chat(*late);
  late_request.url = late_front.url("/v1/chat/completions");
  Result<HttpResponse> r = Status::internal("not run");
  const Clock::time_point start = Clock::now();
  loop.spawn([&] { r = transport.post(late_request, limits(milliseconds(200))); });
  REQUIRE(run_until_done(io, loop));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "no first byte within 200 ms (first_byte_timeout_ms)");
  CHECK(since(start) < milliseconds(1000));
}

TEST_CASE("limits fire from the loop's timers when due") {
  auto fake = testing::FakeProvider::start();
  boost::asio::io_context io;
  FiberLoop loop(io);
  HttpTransport transport;

  SUBCASE("first byte") {
    fake->inject(testing::Fault::kHang);
    Status status;
    milliseconds took{0};
    loop.spawn([&] {
      const Clock::time_point start = Clock::now();
      Result<HttpResponse> r = transport.post(chat(*fake), limits(milliseconds(150)));
      took = since(start);
      status = r.status();
    });
    REQUIRE(run_until_done(io, loop));
    CHECK(status.message() == "no first byte within 150 ms (first_byte_timeout_ms)");
    CHECK(took >= milliseconds(150));
    CHECK(took < milliseconds(150 + 100));  // the goal is 10 ms; room for a loaded machine
    CHECK(fake->wait_held_closed(1, milliseconds(2000)));  // the connection was closed
  }
  SUBCASE("stall") {
    fake->inject(testing::Fault::kStallStream);
    Status status;
    milliseconds took{0};
    loop.spawn([&] {
      const Clock::time_point start = Clock::now();
      Result<HttpResponse> r = transport.post(chat(*fake, true), limits(milliseconds(5000), milliseconds(120)),
                                              [](const HttpResponse&, std::string_view) { return true; });
      took = since(start);
      status = r.status();
    });
    REQUIRE(run_until_done(io, loop));
    CHECK(status.message() == "no data for 120 ms inside the response (stall_timeout_ms)");
    CHECK(took >= milliseconds(120));
    CHECK(took < milliseconds(120 + 100));
  }
  SUBCASE("the step's deadline and its cancellation") {
    fake->inject(testing::Fault::kHang, 2);
    auto cancellation = std::make_shared<Cancellation>();
    Status by_deadline;
    Status by_cancel;
    milliseconds cancel_took{0};
    loop.spawn([&] {
      CallBounds bounds;
      bounds.deadline = Clock::now() + milliseconds(100);
      bounds.deadline_source = "test";
      by_deadline = transport.post(chat(*fake), limits(), nullptr, bounds).status();
    });
    loop.spawn([&] {
      CallBounds bounds;
      bounds.cancellation = cancellation;
      const Clock::time_point start = Clock::now();
      by_cancel = transport.post(chat(*fake), limits(), nullptr, bounds).status();
      cancel_took = since(start);
    });
    std::thread canceller([&] {
      std::this_thread::sleep_for(milliseconds(80));
      cancellation->cancel("client disconnected");
    });
    REQUIRE(run_until_done(io, loop));
    canceller.join();
    CHECK(by_deadline.code() == Status::Code::kDeadlineExceeded);
    CHECK(by_cancel.code() == Status::Code::kCancelled);
    CHECK(cancel_took < milliseconds(80 + 100));
    CHECK(fake->wait_held_closed(2, milliseconds(2000)));
  }
}

TEST_CASE("sleeps and fan-outs wait on the loop, not the thread") {
  boost::asio::io_context io;
  FiberLoop loop(io);
  std::atomic<int> woke{0};
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < 3; ++i) {
    loop.spawn([&] {
      CHECK(async::sleep_for(milliseconds(100), nullptr));
      ++woke;
    });
  }
  std::vector<int> branches(4, 0);
  loop.spawn([&] {
    async::run_all(branches.size(), [&](std::size_t i) {
      async::sleep_for(milliseconds(100), nullptr);
      branches[i] = static_cast<int>(i) + 1;
    });
  });
  auto cancellation = std::make_shared<Cancellation>();
  bool completed = true;
  loop.spawn([&] { completed = async::sleep_for(milliseconds(5000), cancellation.get()); });
  boost::asio::post(io, [&] { cancellation->cancel("stop"); });
  REQUIRE(run_until_done(io, loop));
  CHECK(woke == 3);
  CHECK(branches == std::vector<int>{1, 2, 3, 4});
  CHECK_FALSE(completed);
  CHECK(since(start) < milliseconds(3 * 100 + 100));  // together, not one after another
}

TEST_CASE("a handler of the loop resumes a fiber at once, and on another thread or fiber a resume is a wake") {
  boost::asio::io_context io;
  const auto busy = boost::asio::make_work_guard(io);  // run_one waits for the thread's post
  FiberLoop loop(io);
  std::weak_ptr<async::Fiber> waiting;
  int resumed = 0;
  loop.spawn([&] {
    waiting = async::Fiber::current()->weak_from_this();
    for (int i = 0; i < 3; ++i) {
      async::Fiber::current()->wait();
      ++resumed;
    }
  });
  // From a completion handler of its loop: the fiber runs before the handler goes on.
  int seen_in_handler = -1;
  boost::asio::post(io, [&] {
    async::Fiber::resume(waiting);
    seen_in_handler = resumed;
  });
  REQUIRE(io.run_one() == 1);
  CHECK(seen_in_handler == 1);
  // From another thread: posted, so the fiber runs on the loop's thread.
  std::thread([&] { async::Fiber::resume(waiting); }).join();
  CHECK(resumed == 1);
  REQUIRE(io.run_one() == 1);
  CHECK(resumed == 2);
  // From another fiber: posted, never a switch from one fiber's stack into another's.
  int seen_on_fiber = -1;
  loop.spawn([&] {
    async::Fiber::resume(waiting);
    seen_on_fiber = resumed;
  });
  CHECK(seen_on_fiber == 2);
  REQUIRE(run_until_done(io, loop));
  CHECK(resumed == 3);
}

TEST_CASE("a loop that goes away unwinds its waiting fibers and closes their calls") {
  auto fake = testing::FakeProvider::start();
  fake->inject(testing::Fault::kHang);
  HttpTransport transport;
  bool unwound = false;
  {
    boost::asio::io_context io;
    auto loop = std::make_unique<FiberLoop>(io);
    loop->spawn([&] {
      struct Guard {
        bool& flag;
        ~Guard() { flag = true; }
      } guard{unwound};
      (void)transport.post(chat(*fake), limits());
    });
    const Clock::time_point until = Clock::now() + milliseconds(5000);
    while (!fake->wait_held(1, milliseconds(5)) && Clock::now() < until) io.run_one_for(milliseconds(5));
    REQUIRE(fake->wait_held(1, milliseconds(0)));
    CHECK(loop->fibers() == 1);
    loop.reset();
  }
  CHECK(unwound);
  CHECK(fake->wait_held_closed(1, milliseconds(2000)));
}

TEST_CASE("a fiber has a thread's stack: the deepest JSON the gateway accepts parses and prints on one") {
  // [gateway] max_json_depth allows 10,000 levels; nlohmann recurses per level.
  const std::string deep = std::string(10'000, '[') + std::string(10'000, ']');
  boost::asio::io_context io;
  FiberLoop loop(io);
  std::size_t printed = 0;
  for (int round = 0; round < 2; ++round) {  // the second on a stack from the cache
    loop.spawn([&] { printed = nlohmann::json::parse(deep).dump().size(); });
    REQUIRE(run_until_done(io, loop));
    CHECK(printed == deep.size());
  }
}

TEST_CASE("a fiber's exception is logged and ends only that fiber") {
  boost::asio::io_context io;
  FiberLoop loop(io);
  bool other_ran = false;
  loop.spawn([] { throw std::runtime_error("boom"); });
  loop.spawn([&] {
    async::sleep_for(milliseconds(1), nullptr);
    other_ran = true;
  });
  REQUIRE(run_until_done(io, loop));
  CHECK(other_ran);
}

}  // TEST_SUITE("fiber_loop")
