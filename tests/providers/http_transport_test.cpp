// HttpTransport's limits and failure messages against loopback sockets that
// never answer (no HTTP server: that is fake_provider's job), Retry-After
// parsing, and the native client's errors, which never carry the key.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <thread>
#include <string>

#include "providers/http_model_client.h"
#include "providers/http_transport.h"

using namespace switchboard;
using std::chrono::milliseconds;

namespace {

const std::string kKey = "sk-ant-SECRET-5b2e8d1c9a7f";

// A loopback TCP socket, listening (the kernel completes handshakes, nobody
// ever reads or answers) or, after close(), a port nothing listens on.
class LoopbackSocket {
 public:
  LoopbackSocket() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    REQUIRE(::listen(fd_, 8) == 0);
  }
  ~LoopbackSocket() { close(); }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Accepts the connection the kernel completed, reads what the client sent
  // and returns whether the client closed it (end of stream within `wait`).
  bool client_closed(milliseconds wait) {
    const int conn = ::accept(fd_, nullptr, nullptr);
    REQUIRE(conn >= 0);
    timeval tv{static_cast<time_t>(wait.count() / 1000), static_cast<suseconds_t>(wait.count() % 1000 * 1000)};
    ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(conn, buf, sizeof buf, 0)) > 0) {
    }
    ::close(conn);
    return n == 0;
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

CallSettings quick_limits() {
  CallSettings limits;
  limits.connect_timeout = milliseconds(2000);
  limits.first_byte_timeout = milliseconds(300);
  limits.stall_timeout = milliseconds(300);
  limits.total_timeout = milliseconds(10'000);
  return limits;
}

HttpRequest request_to(const std::string& url) {
  return {url + "/v1/messages", {{"x-api-key", kKey}, {"Content-Type", "application/json"}}, "{}"};
}

}  // namespace

TEST_SUITE("http_transport") {

TEST_CASE("retry-after is read as delta-seconds or an http date") {
  // Wed, 21 Oct 2015 07:28:00 GMT
  const auto date = std::chrono::system_clock::time_point(std::chrono::seconds(1445412480));
  struct Case {
    const char* value;
    std::optional<milliseconds> expected;
  };
  const Case cases[] = {
      {"120", milliseconds(120'000)},
      {" 0 ", milliseconds(0)},
      {"Wed, 21 Oct 2015 07:29:30 GMT", milliseconds(90'000)},
      {"Wed, 21 Oct 2015 07:27:00 GMT", milliseconds(0)},  // already past
      {"soon", std::nullopt},
      {"-5", std::nullopt},
      {"", std::nullopt},
  };
  for (const Case& c : cases) {
    INFO('"' << c.value << '"');
    CHECK(parse_retry_after(c.value, date) == c.expected);
  }
}

TEST_CASE("a refused connection is unavailable") {
  LoopbackSocket socket;
  const std::string url = socket.url();
  socket.close();
  HttpTransport transport;
  Result<HttpResponse> r = transport.post(request_to(url), quick_limits());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kUnavailable);
  CHECK(r.status().message().starts_with("could not connect: "));
  CHECK(r.status().message().find(kKey) == std::string::npos);
}

TEST_CASE("a server that never answers hits the first byte timeout") {
  LoopbackSocket silent;
  HttpTransport transport;
  const auto start = std::chrono::steady_clock::now();
  Result<HttpResponse> r = transport.post(request_to(silent.url()), quick_limits());
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kUnavailable);
  CHECK(r.status().message() == "no first byte within 300 ms (first_byte_timeout_ms)");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("the total timeout names its limit") {
  LoopbackSocket silent;
  CallSettings limits = quick_limits();
  limits.first_byte_timeout = milliseconds(0);  // no limit: the total one fires
  limits.total_timeout = milliseconds(200);
  HttpTransport transport;
  Result<HttpResponse> r = transport.post(request_to(silent.url()), limits);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kUnavailable);
  CHECK(r.status().message() == "not finished within 200 ms (total_timeout_ms)");
}

TEST_CASE("the first byte timeout fires when due, not at a once-a-second check") {
  LoopbackSocket silent;
  CallSettings limits = quick_limits();
  limits.first_byte_timeout = milliseconds(120);
  HttpTransport transport;
  const auto start = std::chrono::steady_clock::now();
  Result<HttpResponse> r = transport.post(request_to(silent.url()), limits);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "no first byte within 120 ms (first_byte_timeout_ms)");
  CHECK(took >= milliseconds(120));
  CHECK(took < milliseconds(120 + 150));
}

TEST_CASE("a cancellation aborts a call at once and closes its connection") {
  LoopbackSocket silent;
  CallSettings limits = quick_limits();
  limits.first_byte_timeout = milliseconds(0);  // it would wait for the total timeout
  HttpTransport transport;
  CallBounds bounds;
  bounds.cancellation = std::make_shared<Cancellation>();
  std::chrono::steady_clock::time_point cancelled_at;
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(100));
    cancelled_at = std::chrono::steady_clock::now();
    bounds.cancellation->cancel("client disconnected");
  });
  Result<HttpResponse> r = transport.post(request_to(silent.url()), limits, nullptr, bounds);
  const auto returned = std::chrono::steady_clock::now();
  canceller.join();
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kCancelled);
  CHECK(r.status().message() == "client disconnected");
  CHECK(returned - cancelled_at < milliseconds(100));
  // Closed before post() returned: the server reads the request, then the end.
  CHECK(silent.client_closed(milliseconds(1000)));
}

TEST_CASE("a call already cancelled does not connect") {
  LoopbackSocket silent;
  HttpTransport transport;
  CallBounds bounds;
  bounds.cancellation = std::make_shared<Cancellation>();
  bounds.cancellation->cancel("client disconnected");
  Result<HttpResponse> r = transport.post(request_to(silent.url()), quick_limits(), nullptr, bounds);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kCancelled);
}

TEST_CASE("the step's deadline ends a call when due and names its source") {
  LoopbackSocket silent;
  CallSettings limits = quick_limits();
  limits.first_byte_timeout = milliseconds(0);
  HttpTransport transport;
  CallBounds bounds;
  const auto start = std::chrono::steady_clock::now();
  bounds.deadline = start + milliseconds(150);
  bounds.deadline_source = "x-switchboard-timeout-ms = 150";
  Result<HttpResponse> r = transport.post(request_to(silent.url()), limits, nullptr, bounds);
  const auto took = std::chrono::steady_clock::now() - start;
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == Status::Code::kDeadlineExceeded);
  CHECK(r.status().message() == "the step's deadline passed (x-switchboard-timeout-ms = 150)");
  CHECK(took >= milliseconds(150));
  CHECK(took < milliseconds(150 + 150));
  CHECK(silent.client_closed(milliseconds(1000)));
}

TEST_CASE("native client errors name provider and model and never the key") {
  LoopbackSocket socket;
  ModelSpec model;
  model.name = "m-claude";
  model.model_id = "claude-sonnet-4-5";
  model.provider = "anthropic";
  model.endpoint = socket.url();
  socket.close();
  auto client = make_http_client(model, quick_limits(), kKey);
  REQUIRE(client.ok());
  CHECK((*client)->provider() == "anthropic");

  ModelRequest request;
  request.messages.push_back(Message::of_text("user", "hi " + kKey));
  for (bool stream : {false, true}) {
    INFO("stream " << stream);
    Result<ModelResponse> r = stream ? (*client)->stream(request, nullptr) : (*client)->invoke(request);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUnavailable);
    CHECK(r.status().message().starts_with("anthropic m-claude: could not connect: "));
    CHECK(r.status().message().find(kKey) == std::string::npos);
  }

  Result<ModelResponse> empty = (*client)->invoke(ModelRequest{});
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.status().code() == Status::Code::kInvalidArgument);
  CHECK(empty.status().message() == "anthropic m-claude: a request needs at least one message");
}

TEST_CASE("a provider without an http adapter is refused") {
  ModelSpec model;
  model.name = "m";
  model.provider = "carrier-pigeon";
  model.endpoint = "http://127.0.0.1:1";
  model.source = "switchboard.toml:12:1";
  auto client = make_http_client(model, CallSettings{}, "");
  REQUIRE_FALSE(client.ok());
  CHECK(client.status().message() == "switchboard.toml:12:1: model 'm': provider 'carrier-pigeon' has no HTTP adapter");
}

}  // TEST_SUITE("http_transport")
