// The fiber loop's own HTTP/1.1 client (providers/http1_on_loop.h): which
// URLs it takes, and how it reads what servers really send (a 1xx first,
// chunked bodies, a body ended by the close, a kept-alive connection closed
// under it), against scripted servers on 127.0.0.1. The fake provider's
// suites (fiber_loop_test.cpp, the gateway's) exercise the rest.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "async/fiber.h"
#include "providers/http1_on_loop.h"
#include "providers/http1_response.h"
#include "providers/http_transport.h"
#include "providers/tls_client.h"
#include "support/slow_lookup.h"
#include "support/tls_front.h"
#include "support/ticker.h"
#include "switchboard/fiber_loop.h"

using namespace switchboard;
using std::chrono::milliseconds;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// What an Http1Response reported.
struct Seen final : Http1Response::Handler {
  std::vector<int> statuses;
  std::vector<std::pair<std::string, std::string>> fields;
  std::string text;  // the body
  void status(int code) override { statuses.push_back(code); }
  bool field(std::string_view name, std::string_view value) override {
    fields.emplace_back(name, value);
    return true;
  }
  bool body(std::string_view piece) override {
    text.append(piece);
    return true;
  }
};

// Feeds `bytes` in pieces of `step` bytes, keeping what was not used as a
// reader would; returns the bytes left over after the response.
std::string feed_in_steps(Http1Response& r, const std::string& bytes, std::size_t step) {
  std::string pending;
  std::size_t at = 0;
  while (at < bytes.size() && !r.done() && !r.failed()) {
    pending += bytes.substr(at, step);
    at += step;
    pending.erase(0, r.feed(pending));
  }
  return at < bytes.size() ? pending + bytes.substr(at) : pending;
}

// A server on 127.0.0.1 that hands each accepted connection, with its
// number (0, 1, ...), to `script`, one thread per connection.
class ScriptedServer {
 public:
  using Script = std::function<void(tcp::socket&, int connection)>;

  explicit ScriptedServer(Script script)
      : script_(std::move(script)), acceptor_(io_, tcp::endpoint(net::ip::make_address_v4("127.0.0.1"), 0)) {
    thread_ = std::thread([this] {
      for (int n = 0;; ++n) {
        tcp::socket socket(io_);
        boost::system::error_code ec;
        acceptor_.accept(socket, ec);
        if (ec || stopping_) return;
        accepted_++;
        workers_.emplace_back([this, n, s = std::make_shared<tcp::socket>(std::move(socket))] {
          try {
            script_(*s, n);
          } catch (const std::exception&) {
            // the client went away: the script ends
          }
        });
      }
    });
  }

  ~ScriptedServer() {
    stopping_ = true;
    {  // wake the accept
      net::io_context io;
      tcp::socket poke(io);
      boost::system::error_code ec;
      poke.connect(acceptor_.local_endpoint(), ec);
    }
    thread_.join();
    for (std::thread& w : workers_) w.join();
  }

  std::string url(const std::string& path = "/v1/chat/completions") const {
    return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + path;
  }
  int accepted() const { return accepted_; }
  unsigned short port() const { return acceptor_.local_endpoint().port(); }

 private:
  Script script_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
  std::vector<std::thread> workers_;
};

// Reads one request (head and Content-Length body); false when the client closed.
bool read_request(tcp::socket& s, net::streambuf& buffer, std::string* head_out = nullptr) {
  boost::system::error_code ec;
  const std::size_t head_end = net::read_until(s, buffer, "\r\n\r\n", ec);
  if (ec) return false;
  std::string head(net::buffers_begin(buffer.data()), net::buffers_begin(buffer.data()) + static_cast<long>(head_end));
  buffer.consume(head_end);
  std::size_t length = 0;
  const std::size_t at = head.find("Content-Length: ");
  if (at != std::string::npos) length = std::stoul(head.substr(at + 16));
  if (buffer.size() < length) net::read(s, buffer, net::transfer_exactly(length - buffer.size()), ec);
  if (ec) return false;
  buffer.consume(length);
  if (head_out != nullptr) *head_out = head;
  return true;
}

void send(tcp::socket& s, const std::string& bytes) { net::write(s, net::buffer(bytes)); }

const char* kJson = "{\"ok\":true}";

std::string json_answer() {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(std::strlen(kJson)) +
         "\r\n\r\n" + kJson;
}

CallSettings limits() {
  CallSettings s;
  s.connect_timeout = milliseconds(2000);
  s.first_byte_timeout = milliseconds(3000);
  s.stall_timeout = milliseconds(3000);
  s.total_timeout = milliseconds(10'000);
  return s;
}

// Runs `calls` on one fiber of a loop, to its end.
void on_fiber(const std::function<void()>& calls) {
  net::io_context io;
  FiberLoop loop(io);
  loop.spawn(calls);
  const auto until = std::chrono::steady_clock::now() + milliseconds(15'000);
  while (loop.fibers() > 0 && std::chrono::steady_clock::now() < until) io.run_one_for(milliseconds(50));
  REQUIRE(loop.fibers() == 0);
}

// A call to `url` over the loop's own client (not curl's), on the current fiber.
Result<HttpResponse> post_over_the_loop(const std::string& url, const CallSettings& settings) {
  const std::optional<Http1Target> target = http1_target(url);
  if (!target) return Status::internal("not a target of the loop's client: " + url);
  return post_on_loop(*switchboard::async::Fiber::current(), *target, {url, {}, "{}"}, settings, BodySink(),
                      CallBounds());
}

}  // namespace

TEST_SUITE("http1_on_loop") {

TEST_CASE("a response is read the same whatever pieces it arrives in") {
  const std::string chunked =
      "HTTP/1.1 100 Continue\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: gzip, chunked\r\n"
      "X-Ratelimit-Remaining-Requests:  7 \r\n\r\n"
      "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\nNEXT";
  for (const std::size_t step : {std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{64}, chunked.size()}) {
    CAPTURE(step);
    Seen seen;
    Http1Response r(seen, 4096);
    const std::string rest = feed_in_steps(r, chunked, step);
    REQUIRE_MESSAGE(r.done(), r.error());
    CHECK(seen.statuses == std::vector<int>{100, 200});
    CHECK(seen.text == "hello, world");
    CHECK(r.keep_alive());
    CHECK(chunked.ends_with(rest));
    CHECK(rest.starts_with("N"));  // the next bytes are not this response's
    REQUIRE(seen.fields.size() == 3);
    CHECK(seen.fields[2] == std::pair<std::string, std::string>{"X-Ratelimit-Remaining-Requests", "7"});
  }
  const std::string sized = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde";
  for (const std::size_t step : {std::size_t{1}, std::size_t{3}, sized.size()}) {
    Seen seen;
    Http1Response r(seen, 4096);
    CHECK(feed_in_steps(r, sized, step).empty());
    CHECK(r.done());
    CHECK(seen.text == "abcde");
    CHECK_FALSE(r.keep_alive());  // the server said close
  }
  {  // no length: to the close, never kept
    Seen seen;
    Http1Response r(seen, 4096);
    r.feed("HTTP/1.1 200 OK\r\n\r\npart");
    CHECK_FALSE(r.done());
    r.end_of_input();
    CHECK(r.done());
    CHECK(seen.text == "part");
    CHECK_FALSE(r.keep_alive());
  }
  {  // 204: no body even with bytes after it
    Seen seen;
    Http1Response r(seen, 4096);
    CHECK(r.feed("HTTP/1.1 204 No Content\r\n\r\n") == 27);
    CHECK(r.done());
  }
}

TEST_CASE("a malformed response fails with what was wrong") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"SSH-2.0-OpenSSH_9.2\r\n\r\n", "bad status line"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "bad Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"},
      {"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "bad header field name"},
      {"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "obsolete line folding in the head"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "chunk data longer than its size"},
      {"HTTP/1.1 101 Switching Protocols\r\n\r\n", "a protocol switch nobody asked for"},
  };
  for (const auto& [bytes, why] : cases) {
    CAPTURE(bytes);
    Seen seen;
    Http1Response r(seen, 4096);
    r.feed(bytes);
    CHECK(r.failed());
    CHECK(r.error() == why);
  }
  Seen seen;
  Http1Response r(seen, 64);
  r.feed("HTTP/1.1 200 OK\r\nX-Long: " + std::string(100, 'a') + "\r\n\r\n");
  CHECK(r.error() == "the head is over 64 bytes");
  Http1Response cut(seen, 4096);
  cut.feed("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  cut.end_of_input();
  CHECK(cut.error() == "the connection closed mid-answer");
}

TEST_CASE("the loop's client takes http and https to an address or a name, and curl takes the rest") {
  const auto local = http1_target("http://127.0.0.1:8080/v1/chat/completions?x=1");
  REQUIRE(local);
  CHECK(local->name == "127.0.0.1");
  CHECK(local->port == 8080);
  CHECK(local->host == "127.0.0.1:8080");
  CHECK(local->target == "/v1/chat/completions?x=1");
  const auto localhost = http1_target("http://localhost/v1");
  REQUIRE(localhost);
  CHECK(localhost->name == "127.0.0.1");  // without a lookup
  CHECK(localhost->port == 80);
  const auto v6 = http1_target("http://[::1]:9000");
  REQUIRE(v6);
  CHECK(v6->name == "::1");
  CHECK(v6->target == "/");
  CHECK(v6->host == "[::1]:9000");
  const auto named = http1_target("http://vllm.models.svc:8000/v1");
  REQUIRE(named);
  CHECK(named->name == "vllm.models.svc");  // looked up when a connection opens
  CHECK(named->port == 8000);
  CHECK(named->host == "vllm.models.svc:8000");
  CHECK_FALSE(http1_target("http://user:pw@127.0.0.1/v1"));  // credentials: curl's
  CHECK_FALSE(http1_target("http://127.0.0.1:99999/v1"));
  CHECK_FALSE(http1_target("http://127.0.0.1:x/v1"));
  CHECK_FALSE(http1_target("http://[vllm]:8000/v1"));         // not an IPv6 address
  CHECK_FALSE(http1_target("http://bad..name/v1"));          // curl's to refuse
  CHECK_FALSE(http1_target("http://bad%20name/v1"));
  CHECK(local->upstream == "http://127.0.0.1:8080");
  CHECK_FALSE(local->tls);

  const auto tls = http1_target("https://api.openai.com/v1/chat/completions");
  REQUIRE(tls);
  CHECK(tls->tls);
  CHECK(tls->port == 443);
  CHECK(tls->name == "api.openai.com");
  CHECK(tls->server_name == "api.openai.com");  // SNI, and the name the certificate must carry
  CHECK(tls->host == "api.openai.com");
  CHECK(tls->upstream == "https://api.openai.com");  // not http://api.openai.com's connections
  const auto tls_local = http1_target("HTTPS://localhost:8443/v1");
  REQUIRE(tls_local);
  CHECK(tls_local->name == "127.0.0.1");
  CHECK(tls_local->server_name == "localhost");
  CHECK(tls_local->port == 8443);
  const auto tls_v6 = http1_target("https://[::1]:8443/v1");
  REQUIRE(tls_v6);
  CHECK(tls_v6->server_name == "::1");  // checked against the certificate's IP addresses
  CHECK_FALSE(http1_target("https://user:pw@api.openai.com/v1"));  // credentials: curl's
  CHECK_FALSE(http1_target("ftp://127.0.0.1/v1"));
}

TEST_CASE("an https upstream is called over TLS on the loop: kept alive, sessions resumed, peers verified") {
  testing::trust_test_ca();
  std::string seen_head;
  ScriptedServer keeps([&](tcp::socket& s, int) {
    net::streambuf buffer;
    while (read_request(s, buffer, &seen_head)) send(s, json_answer());
  });
  SUBCASE("one connection and one handshake for a fiber's calls, the request whole") {
    testing::TlsFront front(keeps.port());
    std::vector<int> statuses;
    std::string body;
    on_fiber([&] {
      for (int i = 0; i < 5; ++i) {
        Result<HttpResponse> r = post_over_the_loop(front.url("/v1/chat/completions"), limits());
        statuses.push_back(r.ok() ? r->status : -1);
        if (!r.ok()) MESSAGE(r.status().message());
        if (r.ok()) body = r->body;
      }
    });
    CHECK(statuses == std::vector<int>{200, 200, 200, 200, 200});
    CHECK(body == kJson);
    CHECK(front.handshakes() == 1);
    CHECK(keeps.accepted() == 1);
    CHECK(seen_head.starts_with("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost:"));
    CHECK(seen_head.find("Content-Length: 2\r\n") != std::string::npos);
  }
  SUBCASE("a server that closes after each answer: each new connection resumes the last session") {
    ScriptedServer closes([](tcp::socket& s, int) {
      net::streambuf buffer;
      if (!read_request(s, buffer)) return;
      send(s, std::string("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: ") +
                  std::to_string(std::strlen(kJson)) + "\r\n\r\n" + kJson);
    });
    testing::TlsFront front(closes.port());
    std::vector<int> statuses;
    on_fiber([&] {
      for (int i = 0; i < 4; ++i) {
        Result<HttpResponse> r = post_over_the_loop(front.url("/v1"), limits());
        statuses.push_back(r.ok() ? r->status : -1);
        if (!r.ok()) MESSAGE(r.status().message());
      }
    });
    CHECK(statuses == std::vector<int>{200, 200, 200, 200});
    CHECK(front.handshakes() == 4);
    CHECK(front.resumed() == 3);  // all but the first: abbreviated
  }
  SUBCASE("a kept connection idle long enough to be peeked at: TLS records without data leave it usable") {
    testing::TlsFront front(keeps.port(), testing::TlsFront::Certificate::kTestCa,
                            testing::TlsFront::WhenIdle::kKeyUpdate);
    std::vector<int> statuses;
    on_fiber([&] {
      for (int i = 0; i < 2; ++i) {
        if (i > 0) std::this_thread::sleep_for(async::ConnectionPool::kFreshFor + milliseconds(200));
        Result<HttpResponse> r = post_over_the_loop(front.url("/v1"), limits());
        statuses.push_back(r.ok() ? r->status : -1);
        if (!r.ok()) MESSAGE(r.status().message());
      }
    });
    CHECK(statuses == std::vector<int>{200, 200});
    CHECK(front.handshakes() == 1);  // the KeyUpdate waiting on it was read, not taken for an answer
  }
  SUBCASE("a name is sent as SNI and checked against the certificate") {
    testing::TlsFront front(keeps.port());
    const std::string port = std::to_string(front.port());
    Result<HttpResponse> named = Status::internal("not run");
    Result<HttpResponse> other = Status::internal("not run");
    Result<HttpResponse> address = Status::internal("not run");
    on_fiber([&] {
      named = post_over_the_loop("https://" + testing::slow_lookup_name(0) + ":" + port + "/v1", limits());
      other = post_over_the_loop("https://" + testing::slow_lookup_name(1) + ":" + port + "/v1", limits());
      address = post_over_the_loop("https://127.0.0.1:" + port + "/v1", limits());
    });
    REQUIRE_MESSAGE(named.ok(), named.status().message());
    CHECK(named->status == 200);
    REQUIRE_FALSE(other.ok());  // the certificate does not name 1.slow-lookup.test
    CHECK(other.status().code() == Status::Code::kUpstream);
    CHECK(other.status().message() ==
          "HTTP transport: TLS with '1.slow-lookup.test': certificate problem: hostname mismatch");
    REQUIRE_MESSAGE(address.ok(), address.status().message());  // its IP address is in the certificate
  }
  SUBCASE("a certificate the trust does not cover is refused, as curl refuses it") {
    testing::TlsFront stranger(keeps.port(), testing::TlsFront::Certificate::kSelfSigned);
    Result<HttpResponse> r = Status::internal("not run");
    on_fiber([&] { r = post_over_the_loop(stranger.url("/v1"), limits()); });
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUpstream);
    CHECK(r.status().message() == "HTTP transport: TLS with 'localhost': certificate problem: self-signed certificate");
    CHECK(keeps.accepted() == 0);  // nothing was sent
    HttpTransport transport;  // curl (off a fiber) refuses it too: the same trust
    Result<HttpResponse> by_curl = transport.post({stranger.url("/v1"), {}, "{}"}, limits());
    REQUIRE_FALSE(by_curl.ok());
    CHECK(by_curl.status().code() == Status::Code::kUpstream);
  }
  SUBCASE("unset, the trust is curl's own defaults, never nothing") {
    const std::string saved = std::getenv("SSL_CERT_FILE");
    const char* dir = std::getenv("SSL_CERT_DIR");  // some machines set it
    const std::optional<std::string> saved_dir = dir != nullptr ? std::optional<std::string>(dir) : std::nullopt;
    ::unsetenv("SSL_CERT_FILE");
    ::unsetenv("SSL_CERT_DIR");
    const TlsTrust defaults = tls_trust();
    ::setenv("SSL_CERT_FILE", saved.c_str(), 1);
    if (saved_dir) ::setenv("SSL_CERT_DIR", saved_dir->c_str(), 1);
    const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
    CHECK(defaults.file == (curl->cainfo != nullptr ? curl->cainfo : ""));
    CHECK(defaults.dir == (curl->capath != nullptr ? curl->capath : ""));
    const bool some = !defaults.file.empty() || !defaults.dir.empty();
    CHECK(some);  // Debian's libcurl has both
    CHECK(tls_trust().file == saved);
  }
  SUBCASE("curl, off a fiber, trusts what the loop trusts (SSL_CERT_FILE)") {
    testing::TlsFront front(keeps.port());
    HttpTransport transport;
    Result<HttpResponse> r = transport.post({front.url("/v1"), {}, "{}"}, limits());
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    CHECK(r->status == 200);
    CHECK(r->body == kJson);
  }
  SUBCASE("a server that hangs up mid-request: a failure, never SIGPIPE, whatever the host does with that signal") {
    ScriptedServer hangs_up([](tcp::socket& s, int) {
      net::streambuf buffer;
      boost::system::error_code ec;
      net::read_until(s, buffer, "\r\n\r\n", ec);  // the head, then gone with the body unread
    });
    testing::TlsFront front(hangs_up.port());
    const auto old = std::signal(SIGPIPE, SIG_DFL);  // as an embedding host may leave it: fatal
    Result<HttpResponse> r = Status::internal("not run");
    on_fiber([&] {
      r = post_on_loop(*switchboard::async::Fiber::current(), *http1_target(front.url("/v1")),
                       {front.url("/v1"), {}, std::string(32 << 20, 'x')}, limits(), BodySink(), CallBounds());
    });
    std::signal(SIGPIPE, old);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUnavailable);
    CHECK(r.status().message().starts_with("connection broke: "));
  }
  SUBCASE("a server that does not speak TLS: the handshake fails, and a silent one times out") {
    ScriptedServer speaks_http([](tcp::socket& s, int) {
      char hello[64];
      boost::system::error_code ec;
      s.read_some(net::buffer(hello), ec);
      send(s, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");  // as a plain server answers a ClientHello
    });
    Result<HttpResponse> plain = Status::internal("not run");
    on_fiber([&] { plain = post_over_the_loop("https://127.0.0.1:" + std::to_string(speaks_http.port()) + "/v1", limits()); });
    REQUIRE_FALSE(plain.ok());
    CHECK(plain.status().code() == Status::Code::kUnavailable);
    CHECK(plain.status().message().starts_with("connection broke: TLS handshake with '127.0.0.1': "));

    ScriptedServer silent([](tcp::socket& s, int) {
      char byte;
      boost::system::error_code ec;
      s.read_some(net::buffer(&byte, 1), ec);  // the ClientHello's first byte, then nothing
      std::this_thread::sleep_for(milliseconds(600));
    });
    CallSettings settings = limits();
    settings.connect_timeout = milliseconds(200);
    Result<HttpResponse> r = Status::internal("not run");
    const auto start = std::chrono::steady_clock::now();
    on_fiber([&] { r = post_over_the_loop("https://127.0.0.1:" + std::to_string(silent.port()) + "/v1", settings); });
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "not connected within 200 ms (connect_timeout_ms)");  // the handshake counts, as curl's
    CHECK(std::chrono::steady_clock::now() - start < milliseconds(550));
  }
}

TEST_CASE("a named upstream is looked up on the loop when a connection opens, and its addresses tried in turn") {
  ScriptedServer server([](tcp::socket& s, int) {
    net::streambuf buffer;
    while (read_request(s, buffer)) send(s, json_answer());
  });
  const std::string port = std::to_string(server.port());
  SUBCASE("a slow lookup: the loop serves its other fibers meanwhile, and a kept connection needs none") {
    const std::string url = "http://" + testing::slow_lookup_name(300) + ":" + port + "/v1/chat/completions";
    const int before = testing::slow_lookups.load();
    std::vector<int> statuses;
    const int ticks = switchboard::testing::run_beside_a_ticker([&] {
      for (int i = 0; i < 3; ++i) {
        Result<HttpResponse> r = post_over_the_loop(url, limits());
        statuses.push_back(r.ok() ? r->status : -1);
        if (!r.ok()) MESSAGE(r.status().message());
      }
    });
    CHECK(statuses == std::vector<int>{200, 200, 200});
    CHECK(testing::slow_lookups.load() == before + 1);  // one connection, one lookup
    CHECK(server.accepted() == 1);
    CHECK(ticks >= 10);  // about 30
  }
  SUBCASE("an address that refuses: the next one is tried") {
    Result<HttpResponse> r = Status::internal("not run");
    on_fiber([&] { r = post_over_the_loop("http://two.slow-lookup.test:" + port + "/v1", limits()); });
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    CHECK(r->status == 200);
  }
  SUBCASE("a lookup slower than the connect timeout: the timeout's failure") {
    CallSettings settings = limits();
    settings.connect_timeout = milliseconds(200);
    Result<HttpResponse> r = Status::internal("not run");
    const auto start = std::chrono::steady_clock::now();
    const int ticks = switchboard::testing::run_beside_a_ticker([&] {
      r = post_over_the_loop("http://" + testing::slow_lookup_name(1000) + ":" + port + "/v1", settings);
    });
    const auto took = std::chrono::steady_clock::now() - start;
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUnavailable);
    CHECK(r.status().message() == "not connected within 200 ms (connect_timeout_ms)");
    CHECK(took >= milliseconds(190));
    CHECK(ticks >= 5);
  }
  SUBCASE("a name not found: could not connect, naming it") {
    Result<HttpResponse> r = Status::internal("not run");
    on_fiber([&] { r = post_over_the_loop("http://fail.slow-lookup.test:" + port + "/v1", limits()); });
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUnavailable);
    CHECK(r.status().message().starts_with("could not connect: cannot look up 'fail.slow-lookup.test': "));
  }
  CHECK(server.accepted() <= 1);
}

TEST_CASE("a request goes out whole with its headers, and a 100 Continue before the answer is skipped") {
  std::string seen_head;
  ScriptedServer server([&](tcp::socket& s, int) {
    net::streambuf buffer;
    if (!read_request(s, buffer, &seen_head)) return;
    send(s, "HTTP/1.1 100 Continue\r\n\r\n" + json_answer());
  });
  HttpTransport transport;
  Result<HttpResponse> r = Status::internal("not run");
  on_fiber([&] {
    r = transport.post({server.url(), {{"Authorization", "Bearer sk-x"}, {"Content-Type", "application/json"}},
                        R"({"model":"m"})"},
                       limits());
  });
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(r->status == 200);
  CHECK(r->content_type == "application/json");
  CHECK(r->body == kJson);
  CHECK(seen_head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"));
  CHECK(seen_head.find("Authorization: Bearer sk-x\r\n") != std::string::npos);
  CHECK(seen_head.find("Content-Length: 13\r\n") != std::string::npos);
  CHECK(seen_head.find("Host: 127.0.0.1:") != std::string::npos);
}

TEST_CASE("a chunked stream reaches the sink piece by piece, and headers of limits are read") {
  ScriptedServer server([](tcp::socket& s, int) {
    net::streambuf buffer;
    if (!read_request(s, buffer)) return;
    send(s,
         "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
         "retry-after-ms: 1500\r\nx-ratelimit-remaining-requests: 41\r\n\r\n");
    for (int i = 0; i < 3; ++i) {
      const std::string event = "data: {\"n\":" + std::to_string(i) + "}\n\n";
      char size[16];
      std::snprintf(size, sizeof size, "%zx\r\n", event.size());
      send(s, size + event + "\r\n");
      std::this_thread::sleep_for(milliseconds(20));
    }
    send(s, "0\r\n\r\n");
  });
  HttpTransport transport;
  std::vector<std::string> pieces;
  Result<HttpResponse> r = Status::internal("not run");
  on_fiber([&] {
    r = transport.post({server.url(), {{"Content-Type", "application/json"}}, "{}"}, limits(),
                       [&](const HttpResponse& head, std::string_view piece) {
                         CHECK(head.status == 200);
                         pieces.emplace_back(piece);
                         return true;
                       });
  });
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(r->body.empty());
  std::string all;
  for (const std::string& p : pieces) all += p;
  CHECK(all == "data: {\"n\":0}\n\ndata: {\"n\":1}\n\ndata: {\"n\":2}\n\n");
  CHECK(pieces.size() >= 3);  // as they came, not at the end
  REQUIRE(r->retry_after);
  CHECK(*r->retry_after == milliseconds(1500));
  REQUIRE(r->rate_limits.requests_left);
  CHECK(*r->rate_limits.requests_left == 41);
}

TEST_CASE("a body without a length ends with the connection") {
  ScriptedServer server([](tcp::socket& s, int) {
    net::streambuf buffer;
    if (!read_request(s, buffer)) return;
    send(s, std::string("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n") + kJson);
    s.shutdown(tcp::socket::shutdown_both);
  });
  HttpTransport transport;
  Result<HttpResponse> r = Status::internal("not run");
  on_fiber([&] { r = transport.post({server.url(), {}, "{}"}, limits()); });
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(r->body == kJson);
}

TEST_CASE("a kept-alive connection is reused, and one closed under a call is replaced once") {
  std::atomic<int> requests{0};
  ScriptedServer server([&](tcp::socket& s, int connection) {
    net::streambuf buffer;
    for (int n = 0; read_request(s, buffer); ++n) {
      requests++;
      // The first connection answers twice, then reads a third request and
      // closes without a word, as a server whose idle timeout just passed.
      if (connection == 0 && n == 2) return;
      send(s, json_answer());
    }
  });
  HttpTransport transport;
  std::vector<int> statuses;
  on_fiber([&] {
    for (int i = 0; i < 4; ++i) {
      Result<HttpResponse> r = transport.post({server.url(), {}, "{}"}, limits());
      statuses.push_back(r.ok() ? r->status : -1);
      if (!r.ok()) MESSAGE(r.status().message());
    }
  });
  CHECK(statuses == std::vector<int>{200, 200, 200, 200});
  CHECK(server.accepted() == 2);  // kept alive, replaced once
  CHECK(requests == 5);           // the lost one sent again
}

TEST_CASE("failures name what failed: a refused connection, an encoded body, garbage, a cut answer") {
  HttpTransport transport;
  SUBCASE("refused") {
    std::string url;
    {
      ScriptedServer gone([](tcp::socket&, int) {});
      url = gone.url();
    }  // closed: nothing listens on its port now
    Result<HttpResponse> r = Status::internal("not run");
    on_fiber([&] { r = transport.post({url, {}, "{}"}, limits()); });
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUnavailable);
    CHECK(r.status().message().starts_with("could not connect: "));
  }
  SUBCASE("an encoding nobody asked for") {
    ScriptedServer server([](tcp::socket& s, int) {
      net::streambuf buffer;
      if (!read_request(s, buffer)) return;
      send(s, "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd");
    });
    Result<HttpResponse> r = Status::internal("not run");
    on_fiber([&] { r = transport.post({server.url(), {}, "{}"}, limits()); });
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUpstream);
    CHECK(r.status().message().find("Content-Encoding 'gzip'") != std::string::npos);
  }
  SUBCASE("not HTTP") {
    ScriptedServer server([](tcp::socket& s, int) {
      net::streambuf buffer;
      if (!read_request(s, buffer)) return;
      send(s, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    });
    Result<HttpResponse> r = Status::internal("not run");
    on_fiber([&] { r = transport.post({server.url(), {}, "{}"}, limits()); });
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Status::Code::kUnavailable);
    CHECK(r.status().message().starts_with("connection broke: the answer is not HTTP/1.1"));
  }
  SUBCASE("cut mid-answer") {
    ScriptedServer server([](tcp::socket& s, int) {
      net::streambuf buffer;
      if (!read_request(s, buffer)) return;
      send(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
      s.shutdown(tcp::socket::shutdown_both);
    });
    Result<HttpResponse> r = Status::internal("not run");
    on_fiber([&] { r = transport.post({server.url(), {}, "{}"}, limits()); });
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message() == "connection broke: the server closed the connection mid-answer");
  }
}

}  // TEST_SUITE
