// RedisClient on a fiber (state/redis_client.h): the round trip waits on the
// fiber's loop, so the loop's other fibers run meanwhile; replies of every
// size arrive whole; a server that never answers costs the timeout and the
// connection, never the thread.
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "async/waits.h"
#include "state/redis_client.h"
#include "support/redis_server.h"
#include "switchboard/fiber_loop.h"

using namespace switchboard;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Runs `io` until every fiber of `loop` ended (at most 15 s); false when time ran out.
bool run_until_done(boost::asio::io_context& io, FiberLoop& loop) {
  const Clock::time_point until = Clock::now() + 15s;
  while (loop.fibers() > 0 && Clock::now() < until) io.run_one_for(50ms);
  return loop.fibers() == 0;
}

// A listening socket nobody reads: connecting succeeds, no reply ever comes.
class SilentServer {
 public:
  SilentServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, 16) == 0);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentServer() { close(fd_); }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace

TEST_SUITE("shared_state") {

TEST_CASE("on a fiber a Redis round trip waits on the loop: a server that never answers blocks no other fiber") {
  SilentServer silent;
  detail::RedisClient client(detail::RedisAddress{"127.0.0.1", silent.port(), 0}, 300ms);
  boost::asio::io_context io;
  FiberLoop loop(io);
  bool waiting = true;
  int ticks = 0;  // the other fiber's 10 ms sleeps while the command waits
  std::optional<Status> failure;
  Clock::duration took{};
  loop.spawn([&] {
    const Clock::time_point start = Clock::now();
    auto r = client.command({"PING"});
    took = Clock::now() - start;
    waiting = false;
    if (!r.ok()) failure = r.status();
  });
  loop.spawn([&] {
    while (waiting) {
      async::sleep_for(10ms, nullptr);
      if (waiting) ++ticks;
    }
  });
  REQUIRE(run_until_done(io, loop));
  REQUIRE(failure.has_value());
  CHECK(failure->code() == Status::Code::kUnavailable);
  CHECK(failure->message().find("timed out after 300 ms") != std::string::npos);
  CHECK(took >= 250ms);
  CHECK(took < 2s);
  // Blocking the thread for the round trip would have left the other fiber
  // at zero ticks; on the loop it slept about 30 times meanwhile.
  CHECK(ticks >= 10);
}

TEST_CASE("on a fiber connecting to a Redis that does not accept waits on the loop and times out") {
  // A listener whose accept queue is full: the kernel drops further SYNs, so
  // a connect hangs until its caller gives up.
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  REQUIRE(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(listen(listener, 0) == 0);
  REQUIRE(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  std::vector<int> fillers;
  for (int i = 0; i < 4; ++i) {
    const int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(f, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // in progress or done: either fills the queue
    fillers.push_back(f);
  }
  std::this_thread::sleep_for(50ms);
  detail::RedisClient client(detail::RedisAddress{"127.0.0.1", ntohs(addr.sin_port), 0}, 300ms);
  boost::asio::io_context io;
  FiberLoop loop(io);
  bool waiting = true;
  int ticks = 0;
  std::optional<Status> failure;
  loop.spawn([&] {
    auto r = client.command({"PING"});
    waiting = false;
    if (!r.ok()) failure = r.status();
  });
  loop.spawn([&] {
    while (waiting) {
      async::sleep_for(10ms, nullptr);
      if (waiting) ++ticks;
    }
  });
  REQUIRE(run_until_done(io, loop));
  for (int f : fillers) close(f);
  close(listener);
  REQUIRE(failure.has_value());
  CHECK(failure->code() == Status::Code::kUnavailable);
  CHECK(failure->message().find("cannot connect to redis 127.0.0.1:") != std::string::npos);
  CHECK(failure->message().find("connect timed out after 300 ms") != std::string::npos);
  CHECK(ticks >= 10);
}

TEST_CASE("on a fiber Redis replies small and large arrive whole and a connection serves the next command") {
  testing::RedisServer redis;
  REQUIRE_MESSAGE(redis.ok(), redis.log());
  detail::RedisClient client(detail::RedisAddress{"127.0.0.1", redis.port(), 0}, 2000ms);
  // Larger than one 16 KiB read, with every byte value: the reply comes in pieces.
  std::string big;
  for (int i = 0; i < 200'000; ++i) big += static_cast<char>(i * 7 % 256);
  const std::string key = "fiber-test-" + std::to_string(getpid());
  boost::asio::io_context io;
  FiberLoop loop(io);
  std::string pong;
  std::string got;
  std::int64_t length = -1;
  std::string error;
  loop.spawn([&] {
    auto p = client.command({"PING"});
    if (!p.ok()) {
      error = p.status().message();
      return;
    }
    pong = p->string;
    auto set = client.command({"SET", key, big});
    if (!set.ok()) {
      error = set.status().message();
      return;
    }
    auto get = client.command({"GET", key});
    if (!get.ok()) {
      error = get.status().message();
      return;
    }
    got = get->string;
    auto strlen = client.command({"STRLEN", key});
    if (strlen.ok()) length = strlen->integer;
    // A script error is the script's, and the connection goes on serving.
    auto bad = client.command({"EVAL", "return redis.call('NOSUCHCOMMAND')", "0"});
    if (bad.ok()) error = "a failing script succeeded";
    auto again = client.command({"DEL", key});
    if (!again.ok()) error = again.status().message();
  });
  REQUIRE(run_until_done(io, loop));
  CHECK(error.empty());
  CHECK(pong == "PONG");
  CHECK(got.size() == big.size());
  CHECK(got == big);
  CHECK(length == static_cast<std::int64_t>(big.size()));
}

}  // TEST_SUITE("shared_state")
