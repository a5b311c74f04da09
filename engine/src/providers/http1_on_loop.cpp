// HTTP/1.1 over a fiber loop's own connections (http1_on_loop.h).
#include "providers/http1_on_loop.h"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

#include "async/fiber.h"
#include "async/resolve.h"
#include "async/socket_wait.h"
#include "providers/http1_response.h"
#include "providers/tls_client.h"
#include "util/ascii.h"

namespace switchboard {

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kHeadLimit = 64 * 1024;  // a response head larger than this is garbage
// A TLS request this size or smaller goes out as one write (and one record).
constexpr std::size_t kJoinedSendLimit = 16 * 1024;

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }



// Whether the environment names a proxy for http:// (`tls` false) or
// https:// URLs: then those calls are curl's, which applies the proxy and its
// no_proxy exceptions.
bool proxy_configured(bool tls) {
  const auto any_set = [](std::initializer_list<const char*> names) {
    for (const char* name : names) {
      const char* value = std::getenv(name);
      if (value != nullptr && *value != '\0') return true;
    }
    return false;
  };
  static const bool for_http = any_set({"http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"});
  static const bool for_https = any_set({"https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"});
  return tls ? for_https : for_http;
}

// A host name as DNS and /etc/hosts spell them (letters, digits, '-', '_',
// dots between labels), or an IPv4 address, which is spelled so too.
bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253 || host.front() == '.' || host.front() == '-') return false;
  char last = '.';
  for (const char c : host) {
    const bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || (c == '.' && last != '.');
    if (!ok) return false;
    last = c;
  }
  return true;
}

// Why a call ended without its answer, when the cause is ours.
enum class Abort { kNone, kOversize, kSink, kEncoding };

// The answer being read: the response, the body's sink and what the head
// said. One per call (it spans a 1xx answer and the final one).
struct Answer final : Http1Response::Handler {
  const CallSettings* limits = nullptr;
  const BodySink* sink = nullptr;
  HttpResponse response;
  Clock::time_point start;
  std::optional<Clock::time_point> first_byte_at;
  std::int64_t body_bytes = 0;
  ResponseHints hints;
  bool head_filled = false;
  Abort abort = Abort::kNone;
  std::string encoding;  // a Content-Encoding the answer came in (refused)

  void fill_head() {
    response.retry_after = hints.wait();
    response.rate_limits = hints.rate_limits;
    if (first_byte_at) response.first_byte = std::chrono::duration_cast<milliseconds>(*first_byte_at - start);
    head_filled = true;
  }

  void status(int code) override {
    response.status = code;
    // A new response (after a 1xx): the last one's headers no longer count.
    hints = ResponseHints();
    response.content_type.clear();
  }

  bool field(std::string_view name, std::string_view value) override {
    if (iequals(name, "content-type")) {
      response.content_type = value;
    } else if (iequals(name, "content-encoding") && !iequals(value, "identity")) {
      abort = Abort::kEncoding;
      encoding = value;
      return false;
    } else {
      read_response_hint(name, value, hints);
    }
    return true;
  }

  // A piece of the body: to the sink, or kept. False stops the read.
  bool body(std::string_view piece) override {
    body_bytes += static_cast<std::int64_t>(piece.size());
    if (limits->max_response_bytes > 0 && body_bytes > limits->max_response_bytes) {
      abort = Abort::kOversize;
      return false;
    }
    if (*sink) {
      if (!head_filled) fill_head();
      if (!(*sink)(response, piece)) {
        abort = Abort::kSink;
        return false;
      }
    } else {
      response.body.append(piece);
    }
    return true;
  }
};

// One call's waits on the loop: a socket's readiness, or the nearest limit.
class Waiter {
 public:
  // Where the call is: which limits apply.
  enum class Phase { kConnecting, kSending, kAwaitingFirstByte, kReading };

  Waiter(async::Fiber& fiber, const CallSettings& limits, const CallBounds& bounds, Clock::time_point start)
      : limits_(limits), bounds_(bounds), start_(start), timer_(fiber) {
    if (bounds.cancellation) {
      woken_ = bounds.cancellation->subscribe([self = timer_.self()] { async::Fiber::wake(self); });
    }
  }

  void enter(Phase phase, Clock::time_point now) {
    phase_ = phase;
    phase_start_ = now;
  }
  // A byte of the answer arrived at `now` (the stall limit counts from it).
  void byte_at(Clock::time_point now) { last_byte_ = now; }

  // The limit that is past now, as the call's failure; ok when none is.
  Status overdue() const {
    if (Status s = bounds_.check(); !s.ok()) return s;
    const Clock::time_point now = Clock::now();
    if (limits_.total_timeout.count() > 0 && now >= start_ + limits_.total_timeout) {
      return Status::unavailable("not finished within " + ms_text(limits_.total_timeout) + " (total_timeout_ms)");
    }
    switch (phase_) {
      case Phase::kConnecting:
        if (limits_.connect_timeout.count() > 0 && now >= phase_start_ + limits_.connect_timeout) {
          return Status::unavailable("not connected within " + ms_text(limits_.connect_timeout) +
                                     " (connect_timeout_ms)");
        }
        break;
      case Phase::kSending:
      case Phase::kAwaitingFirstByte:
        if (limits_.first_byte_timeout.count() > 0 && now >= phase_start_ + limits_.first_byte_timeout) {
          return Status::unavailable("no first byte within " + ms_text(limits_.first_byte_timeout) +
                                     " (first_byte_timeout_ms)");
        }
        break;
      case Phase::kReading:
        if (limits_.stall_timeout.count() > 0 && now >= last_byte_ + limits_.stall_timeout) {
          return Status::unavailable("no data for " + ms_text(limits_.stall_timeout) +
                                     " inside the response (stall_timeout_ms)");
        }
        break;
    }
    return Status();
  }

  // Waits until `socket` is ready for `what` (or failed: the next operation
  // on it says how), or a limit falls due (its failure; the wait is then
  // cancelled). Spurious wakes are absorbed here.
  Status wait(tcp::socket& socket, tcp::socket::wait_type what) {
    Status due;
    const bool ready = async::wait_ready(timer_, socket, what, next_check(due));
    return ready ? Status() : due;
  }

  // Reads what `socket` has into `buffer` (async::read_ready): the bytes
  // waiting, or the first to arrive; the read's own failure (end of stream,
  // a reset) in `ec`. A limit falling due first is the result (the read is
  // then cancelled).
  Status read(tcp::socket& socket, net::mutable_buffer buffer, error_code& ec, std::size_t& n) {
    Status due;
    const bool read = async::read_ready(timer_, socket, buffer, ec, n, next_check(due));
    return read ? Status() : due;
  }

  // The addresses of `name` (async::resolve), or the limit that fell due
  // first. A failed lookup is "could not connect: cannot look up ...", as
  // curl's is "could not connect: Could not resolve host ...".
  Result<async::Endpoints> resolve(const std::string& name, std::uint16_t port) {
    Status due;
    std::optional<Result<async::Endpoints>> found = async::resolve(timer_, name, port, next_check(due));
    if (!found) return due;
    if (!found->ok()) return Status::unavailable("could not connect: " + found->status().message());
    return std::move(*found);
  }

 private:
  // The socket waits' next_check: when to look again, or nullopt with the
  // limit that fell due in `due`.
  struct NextCheck {
    const Waiter& waiter;
    Status& due;
    std::optional<Clock::time_point> operator()() const {
      due = waiter.overdue();
      if (!due.ok()) return std::nullopt;
      return waiter.next_due();
    }
  };
  NextCheck next_check(Status& due) const { return {*this, due}; }

  Clock::time_point next_due() const {
    Clock::time_point due = Clock::time_point::max();
    if (limits_.total_timeout.count() > 0) due = std::min(due, start_ + limits_.total_timeout);
    switch (phase_) {
      case Phase::kConnecting:
        if (limits_.connect_timeout.count() > 0) due = std::min(due, phase_start_ + limits_.connect_timeout);
        break;
      case Phase::kSending:
      case Phase::kAwaitingFirstByte:
        if (limits_.first_byte_timeout.count() > 0) due = std::min(due, phase_start_ + limits_.first_byte_timeout);
        break;
      case Phase::kReading:
        if (limits_.stall_timeout.count() > 0) due = std::min(due, last_byte_ + limits_.stall_timeout);
        break;
    }
    if (bounds_.deadline) due = std::min(due, *bounds_.deadline);
    return due;
  }

  const CallSettings& limits_;
  const CallBounds& bounds_;
  const Clock::time_point start_;
  Phase phase_ = Phase::kConnecting;
  Clock::time_point phase_start_;
  Clock::time_point last_byte_;
  async::WakeTimer timer_;
  Cancellation::Subscription woken_;
};

// The request's head: request line, Host, the caller's headers, the length.
std::string request_head(const Http1Target& target, const HttpRequest& request) {
  std::string head;
  head.reserve(256 + request.headers.size() * 48);
  head += "POST ";
  head += target.target;
  head += " HTTP/1.1\r\nHost: ";
  head += target.host;
  head += "\r\n";
  bool agent = false;
  bool accept = false;
  for (const auto& [name, value] : request.headers) {
    // Framing is this function's: the length is the body's, and no 100-continue round trip.
    if (iequals(name, "host") || iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
        iequals(name, "expect")) {
      continue;
    }
    agent = agent || iequals(name, "user-agent");
    accept = accept || iequals(name, "accept");
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  if (!agent) head += "User-Agent: switchboard/0.1\r\n";
  if (!accept) head += "Accept: */*\r\n";
  head += "Content-Length: ";
  head += std::to_string(request.body.size());
  head += "\r\n\r\n";
  return head;
}

// What one attempt on one connection came to.
enum class Outcome {
  kDone,        // the whole answer was read (or the sink stopped it)
  kFailed,      // failed: `failure` says why
  kStaleReuse,  // a reused connection was closed under us before any answer: try a new one
};

// Opens a non-blocking connection to `endpoint`, waiting on the loop.
Status connect_to(tcp::socket& socket, const tcp::endpoint& endpoint, Waiter& waiter) {
  error_code ec;
  socket.open(endpoint.protocol(), ec);
  if (!ec) socket.non_blocking(true, ec);
  if (ec) return Status::unavailable("could not connect: " + ec.message());
  socket.set_option(tcp::no_delay(true), ec);
  socket.set_option(net::socket_base::keep_alive(true), ec);
  const std::string where = endpoint.address().to_string() + " port " + std::to_string(endpoint.port());
  if (::connect(socket.native_handle(), endpoint.data(), static_cast<socklen_t>(endpoint.size())) == 0) {
    return Status();
  }
  if (errno != EINPROGRESS) {
    return Status::unavailable("could not connect: connect to " + where + ": " + std::strerror(errno));
  }
  if (Status s = waiter.wait(socket, tcp::socket::wait_write); !s.ok()) return s;
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) return Status::unavailable("could not connect: connect to " + where + ": " + std::strerror(error));
  return Status();
}

// Runs the TLS operation `op` on `c` until it is done or fails, waiting on
// the socket whenever TLS asks to (for bytes to read, or room to write). Its
// result: > 0 done; else failed (SSL_get_error says how), or a limit fell due
// first (`due` not ok).
template <class Op>
int tls_operation(async::Connection& c, Waiter& waiter, Status& due, Op&& op) {
  for (;;) {
    ERR_clear_error();
    const int result = op();
    if (result > 0) return result;
    const int error = SSL_get_error(c.tls.get(), result);
    if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) return result;
    due = waiter.wait(c.socket, error == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write);
    if (!due.ok()) return 0;
  }
}

// Connects `c` to the target: its name looked up (an IP address is its own),
// then each of its addresses tried in turn until one connects or a limit
// falls due; the lookup counts against the connect timeout, as curl's does,
// and the last failure is the result. Over https, the TLS handshake follows
// (resuming `session` when not null), within the same timeout, as curl's.
Status connect(async::Connection& c, const Http1Target& target, SSL_SESSION* session, Waiter& waiter) {
  Result<async::Endpoints> endpoints = waiter.resolve(target.name, target.port);
  if (!endpoints.ok()) return endpoints.status();
  Status failure;
  for (const tcp::endpoint& endpoint : *endpoints) {
    if (c.socket.is_open()) {
      error_code ignored;
      c.socket.close(ignored);
    }
    failure = connect_to(c.socket, endpoint, waiter);
    if (failure.ok() || !waiter.overdue().ok()) break;
  }
  if (!failure.ok() || !target.tls) return failure;

  Result<async::Tls> tls = tls_client(c.socket.native_handle(), target.server_name, session);
  if (!tls.ok()) return tls.status();
  c.tls = std::move(*tls);
  Status due;
  const int shook = tls_operation(c, waiter, due, [&] { return SSL_connect(c.tls.get()); });
  if (!due.ok()) return due;
  if (shook > 0) return Status();
  bool refused = false;
  const std::string why = tls_failure(c.tls.get(), shook, refused);
  // As curl's: a refused certificate is no passing fault; a broken handshake may be.
  if (refused) return Status::upstream("HTTP transport: TLS with '" + target.server_name + "': " + why);
  return Status::unavailable("connection broke: TLS handshake with '" + target.server_name + "': " + why);
}

// Sends `head` and `body` on `c`, in gathered writes (TLS: one record when
// they are small, else two writes). A limit falling due is the result; the
// send's own failure is `broken` (why), after `sent` bytes.
Status send_request(async::Connection& c, const std::string& head, const std::string& body, Waiter& waiter,
                    std::size_t& sent, std::string& broken) {
  sent = 0;
  if (c.tls != nullptr) {
    std::string joined;
    std::array<const std::string*, 2> parts = {&head, &body};
    if (head.size() + body.size() <= kJoinedSendLimit) {
      joined.reserve(head.size() + body.size());
      joined.append(head).append(body);
      parts = {&joined, nullptr};
    }
    for (const std::string* part : parts) {
      for (std::size_t at = 0; part != nullptr && at < part->size();) {
        std::size_t written = 0;
        Status due;
        const int wrote = tls_operation(c, waiter, due, [&] {
          return SSL_write_ex(c.tls.get(), part->data() + at, part->size() - at, &written);
        });
        if (!due.ok()) return due;
        if (wrote <= 0) {
          bool refused = false;
          broken = tls_failure(c.tls.get(), wrote, refused);
          return Status();
        }
        at += written;
        sent += written;
      }
    }
    return Status();
  }
  const std::size_t total = head.size() + body.size();
  while (sent < total) {
    std::array<net::const_buffer, 2> pieces;
    if (sent < head.size()) {
      pieces = {net::buffer(head) + sent, net::buffer(body)};
    } else {
      pieces = {net::buffer(body) + (sent - head.size()), net::const_buffer()};
    }
    error_code ec;
    const std::size_t n = c.socket.write_some(pieces, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
      if (Status s = waiter.wait(c.socket, tcp::socket::wait_write); !s.ok()) return s;
      continue;
    }
    if (ec) {
      broken = ec.message();
      return Status();
    }
    sent += n;
  }
  return Status();
}

// What one read brought: bytes (n > 0), the end of the stream, or a failure.
struct Received {
  std::size_t n = 0;
  bool end = false;
  std::string broken;  // why the read failed
};

// Reads what `c` has into `buffer`: the bytes waiting, or the first to
// arrive. `drained` says whether the socket is most likely empty: at first
// (the answer takes the upstream's time), and after a read that did not fill
// the buffer; then a plain socket's read waits as it reads (Waiter::read),
// else a read is tried first. TLS waits first only for the answer's first
// bytes (unless it holds some already), then always tries a read first: a
// read returns one record, whatever is left in the socket. A limit falling
// due is the result.
Status receive(async::Connection& c, net::mutable_buffer buffer, bool& drained, Waiter& waiter, Received& got) {
  got = Received();
  if (c.tls != nullptr) {
    if (drained) {
      drained = false;
      if (SSL_has_pending(c.tls.get()) == 0) {
        if (Status s = waiter.wait(c.socket, tcp::socket::wait_read); !s.ok()) return s;
      }
    }
    Status due;
    const int read = tls_operation(
        c, waiter, due, [&] { return SSL_read_ex(c.tls.get(), buffer.data(), buffer.size(), &got.n); });
    if (!due.ok()) return due;
    if (read > 0) return Status();
    got.n = 0;
    if (SSL_get_error(c.tls.get(), read) == SSL_ERROR_ZERO_RETURN) {
      got.end = true;  // close_notify, or a close without one (SSL_OP_IGNORE_UNEXPECTED_EOF)
    } else {
      bool refused = false;
      got.broken = tls_failure(c.tls.get(), read, refused);
    }
    return Status();
  }
  for (;;) {
    error_code ec;
    if (drained) {
      if (Status s = waiter.read(c.socket, buffer, ec, got.n); !s.ok()) return s;
    } else {
      got.n = c.socket.read_some(buffer, ec);
      if (ec == net::error::would_block || ec == net::error::try_again) {
        drained = true;
        continue;
      }
    }
    drained = got.n < buffer.size();
    if (ec == net::error::eof) {
      got.end = true;
    } else if (ec) {
      got.broken = ec.message();
    }
    return Status();
  }
}

// Sends the request and reads its answer on `c` into `answer`.
Outcome exchange(async::Connection& c, bool reused, const std::string& head, const std::string& body, Waiter& waiter,
                 Answer& answer, bool& keep, Status& failure) {
  keep = false;
  waiter.enter(Waiter::Phase::kSending, Clock::now());
  std::size_t sent = 0;
  std::string broken;
  if (Status s = send_request(c, head, body, waiter, sent, broken); !s.ok()) {
    failure = std::move(s);
    return Outcome::kFailed;
  }
  if (!broken.empty()) {
    if (reused && sent == 0) return Outcome::kStaleReuse;
    failure = Status::unavailable("connection broke: sending the request: " + broken);
    return Outcome::kFailed;
  }
  waiter.enter(Waiter::Phase::kAwaitingFirstByte, Clock::now());

  // The answer: read as it arrives, parsed as it is read.
  Http1Response parser(answer, kHeadLimit);
  std::array<char, kReadChunk> chunk;  // each read's bytes (on the fiber's stack)
  bool any_byte = false;
  bool drained = true;
  for (;;) {
    Received got;
    if (Status s = receive(c, net::buffer(chunk), drained, waiter, got); !s.ok()) {
      failure = std::move(s);
      return Outcome::kFailed;
    }
    if (got.end) {
      parser.end_of_input();
      if (parser.done()) return Outcome::kDone;  // a body that ends with the connection
      if (reused && !any_byte) return Outcome::kStaleReuse;
      failure = Status::unavailable(any_byte ? "connection broke: the server closed the connection mid-answer"
                                             : "connection broke: the server closed the connection without an answer");
      return Outcome::kFailed;
    }
    if (!got.broken.empty()) {
      if (reused && !any_byte) return Outcome::kStaleReuse;
      failure = Status::unavailable("connection broke: " + got.broken);
      return Outcome::kFailed;
    }
    const Clock::time_point now = Clock::now();
    if (!any_byte) {
      any_byte = true;
      answer.first_byte_at = now;
      waiter.enter(Waiter::Phase::kReading, now);
    }
    waiter.byte_at(now);
    const std::size_t used = parser.feed(std::string_view(chunk.data(), got.n));
    if (parser.failed()) {
      switch (answer.abort) {
        case Abort::kOversize:
          failure = Status::upstream("response body over " + std::to_string(answer.limits->max_response_bytes) +
                                     " bytes (max_response_bytes)");
          break;
        case Abort::kEncoding:
          failure = Status::upstream("HTTP transport: the answer came with Content-Encoding '" + answer.encoding +
                                     "', which was not asked for");
          break;
        case Abort::kSink:
        case Abort::kNone:
          failure = Status::unavailable("connection broke: the answer is not HTTP/1.1: " + parser.error());
          break;
      }
      return Outcome::kFailed;
    }
    if (parser.stopped()) {
      if (answer.abort == Abort::kOversize) {
        failure = Status::upstream("response body over " + std::to_string(answer.limits->max_response_bytes) +
                                   " bytes (max_response_bytes)");
        return Outcome::kFailed;
      }
      return Outcome::kDone;  // the sink had enough: the connection closes
    }
    if (parser.done()) {
      // Bytes past the answer (read, or held by TLS): the connection is not reusable.
      keep = parser.keep_alive() && used == got.n && (c.tls == nullptr || SSL_pending(c.tls.get()) == 0);
      return Outcome::kDone;
    }
  }
}

}  // namespace

std::optional<Http1Target> http1_target(std::string_view url) {
  constexpr std::string_view kHttp = "http://";
  constexpr std::string_view kHttps = "https://";
  const bool tls = istarts_with(url, kHttps);
  if ((!tls && !istarts_with(url, kHttp)) || proxy_configured(tls)) return std::nullopt;
  std::string_view rest = url.substr(tls ? kHttps.size() : kHttp.size());
  if (const std::size_t hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
  std::string_view path = rest.substr(authority.size());
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host = authority;
  std::string_view port_text;
  if (authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port_text = after.substr(1);
    }
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port_text = authority.substr(colon + 1);
  }
  unsigned port = tls ? 443 : 80;
  if (!port_text.empty()) {
    if (port_text.size() > 5) return std::nullopt;
    port = 0;
    for (const char c : port_text) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
      port = port * 10 + static_cast<unsigned>(c - '0');
    }
    if (port == 0 || port > 65535) return std::nullopt;
  }
  Http1Target target;
  if (iequals(host, "localhost")) {
    target.name = "127.0.0.1";
  } else if (authority.front() == '[') {
    error_code ec;
    net::ip::make_address_v6(std::string(host), ec);
    if (ec) return std::nullopt;
    target.name = host;
  } else if (is_host_name(host)) {
    target.name = host;  // an IPv4 address or a name to look up
  } else {
    return std::nullopt;  // curl's to refuse
  }
  target.tls = tls;
  target.server_name = host;
  target.port = static_cast<std::uint16_t>(port);
  target.host = std::string(authority);
  target.upstream = std::string(tls ? kHttps : kHttp) + target.host;
  target.target = path.empty() ? "/" : (path.front() == '?' ? "/" + std::string(path) : std::string(path));
  return target;
}

Result<HttpResponse> post_on_loop(async::Fiber& fiber, const Http1Target& target, const HttpRequest& request,
                                  const CallSettings& limits, const BodySink& on_body, const CallBounds& bounds) {
  Answer answer;
  answer.limits = &limits;
  answer.sink = &on_body;
  answer.start = Clock::now();
  Waiter waiter(fiber, limits, bounds, answer.start);
  async::ConnectionPool& pool = fiber.loop().connections();
  const std::string head = request_head(target, request);

  for (int attempt = 0;; ++attempt) {
    async::Connection c{tcp::socket(fiber.loop().io())};
    bool reused = false;
    if (attempt == 0) {
      if (std::optional<async::Connection> kept = pool.take(target.upstream)) {
        c = std::move(*kept);
        reused = true;
      }
    }
    if (!reused) {
      waiter.enter(Waiter::Phase::kConnecting, Clock::now());
      if (Status s = connect(c, target, pool.session(target.upstream), waiter); !s.ok()) return s;
    }
    bool keep = false;
    Status failure;
    const Outcome outcome = exchange(c, reused, head, request.body, waiter, answer, keep, failure);
    if (outcome == Outcome::kStaleReuse) {  // a fresh connection, once (attempt 1 takes none from the pool)
      pool.closed_unannounced(target.upstream);
      continue;
    }
    if (outcome == Outcome::kFailed) return failure;  // the connection closes here: the upstream sees the call end
    answer.response.total = std::chrono::duration_cast<milliseconds>(Clock::now() - answer.start);
    answer.response.stopped = answer.abort == Abort::kSink;
    if (!answer.head_filled) answer.fill_head();
    if (c.tls != nullptr && !reused) pool.remember_session(target.upstream, c.tls.get());
    if (keep && !answer.response.stopped) pool.give_back(target.upstream, std::move(c));
    return std::move(answer.response);
  }
}

}  // namespace switchboard
