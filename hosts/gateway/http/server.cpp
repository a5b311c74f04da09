#include "http/server.h"

#include "http/busy_poll.h"
#include "http/deadlines.h"

#include "api/json_read.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <vector>
#include <exception>
#include <optional>
#include <stdexcept>

#include <pthread.h>
#include <sys/socket.h>
#include <cerrno>
#include <cstring>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>

namespace switchboard::gateway {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;
using Executor = net::io_context::executor_type;

namespace {

// Header bytes a request may send, whatever their count.
constexpr std::uint32_t kMaxHeaderBytes = 64 * 1024;
// How long a connection closing after an error keeps reading (and dropping)
// what the client still sends, so that the error reaches it instead of a reset.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kLingerBytes = 1 << 20;

// Bytes read from a socket at a time.
constexpr std::size_t kReadSize = 16 * 1024;

// A request still at the handler this long gets its client watched (a wait
// on the socket that sees a close at once): quicker answers never pay for
// the watch (its epoll_ctl and its cancellation), and a slower call is
// cancelled at most this long after its client left.
constexpr std::chrono::milliseconds kWatchAfter{20};

// What estimate_request_memory charges, measured with switchboard-gateway
// (VmHWM after one request over the VmHWM before it, sim models, 2 I/O
// threads): a 3 MB body of one long message cost 17.8 MB, 5.9 bytes per
// byte (the body, the parsed string, the translated message, the upstream
// request, the ledger's step); a 3 MB body of 75,000 small messages (225,000
// '{', '[' and ',' outside strings) cost 78.5 MB: 18 MB for its bytes and
// 269 bytes per structural character (a JSON tree node, a translated
// Message, their strings). Charged: kBytesFactor per byte and kValueBytes
// per structural character outside strings, both rounded up.
constexpr std::int64_t kBytesFactor = 6;
constexpr std::int64_t kValueBytes = 300;

std::string_view reason(int status) {
  const auto r = http::obsolete_reason(static_cast<http::status>(status));
  return r.empty() ? std::string_view("Unknown") : std::string_view(r.data(), r.size());
}

bool is_ows(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

// An answer the server gives on its own instead of handing the request on.
struct Refusal {
  int status = 400;
  std::string message;
};

// RFC 9112's framing rules that Beast leaves to its user (sections 3.2, 6.1,
// 6.3): one Host (required in HTTP/1.1), one Content-Length and never beside
// Transfer-Encoding, Transfer-Encoding only in HTTP/1.1 and ending in chunked,
// which is the only coding this server decodes.
std::optional<Refusal> framing_error(const http::request_header<>& m) {
  const auto hosts = m.count(http::field::host);
  if (hosts == 0 && m.version() >= 11) return Refusal{400, "an HTTP/1.1 request must have a Host header"};
  if (hosts > 1) return Refusal{400, "the request has more than one Host header"};
  const auto lengths = m.count(http::field::content_length);
  const auto encodings = m.count(http::field::transfer_encoding);
  if (lengths > 0 && encodings > 0) {
    return Refusal{400, "the request has both Content-Length and Transfer-Encoding"};
  }
  if (lengths > 1) return Refusal{400, "the request has more than one Content-Length header"};
  if (lengths == 1 && m[http::field::content_length].find(',') != std::string_view::npos) {
    return Refusal{400, "Content-Length must be one number"};
  }
  if (encodings == 0) return std::nullopt;
  if (m.version() < 11) return Refusal{400, "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  std::vector<std::string_view> codings;
  const auto range = m.equal_range(http::field::transfer_encoding);
  for (auto it = range.first; it != range.second; ++it) {
    std::string_view value = it->value();
    while (true) {
      const std::size_t comma = value.find(',');
      std::string_view coding = trim(value.substr(0, comma));
      coding = trim(coding.substr(0, coding.find(';')));
      if (!coding.empty()) codings.push_back(coding);
      if (comma == std::string_view::npos) break;
      value.remove_prefix(comma + 1);
    }
  }
  if (codings.empty() || !beast::iequals(codings.back(), "chunked")) {
    return Refusal{400, "Transfer-Encoding must end in chunked"};
  }
  for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
    if (beast::iequals(codings[i], "chunked")) return Refusal{400, "Transfer-Encoding applies chunked twice"};
    return Refusal{501, "the transfer coding '" + std::string(codings[i]) + "' is not supported: only chunked is"};
  }
  return std::nullopt;
}

// A share of the server's inflight bytes, returned when this goes away.
// Used by the session's thread only; the pool is shared by every thread.
class MemoryReservation {
 public:
  explicit MemoryReservation(std::atomic<std::int64_t>& pool) : pool_(pool) {}
  ~MemoryReservation() { reset(); }
  MemoryReservation(const MemoryReservation&) = delete;
  MemoryReservation& operator=(const MemoryReservation&) = delete;

  // Holds `bytes` (when more than now) if every reservation together stays
  // within `limit`; false, holding what it held, when not.
  bool grow_to(std::int64_t bytes, std::int64_t limit) {
    const std::int64_t more = bytes - held_;
    if (more <= 0) return true;
    if (pool_.fetch_add(more) + more > limit) {
      pool_.fetch_sub(more);
      return false;
    }
    held_ = bytes;
    return true;
  }
  void reset() {
    pool_.fetch_sub(held_);
    held_ = 0;
  }

 private:
  std::atomic<std::int64_t>& pool_;
  std::int64_t held_ = 0;
};

}  // namespace

std::int64_t estimate_body_memory(std::int64_t body_bytes) { return body_bytes * kBytesFactor; }

std::int64_t estimate_request_memory(std::string_view body) {
  return estimate_body_memory(static_cast<std::int64_t>(body.size())) +
         detail::count_json_values(body) * kValueBytes;
}

std::string format_head(int http_status, std::string_view content_type, std::string_view extra_headers,
                        std::int64_t content_length, bool chunked, bool close, unsigned version) {
  const bool http10 = version < 11;
  if (chunked && http10) close = true;
  std::string out;
  out.reserve(160 + extra_headers.size());
  out += http10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(http_status);
  out += ' ';
  out += reason(http_status);
  out += "\r\n";
  if (!content_type.empty()) {
    out += "Content-Type: ";
    out += content_type;
    out += "\r\n";
  }
  if (!chunked && http_status == 204) {
    // No Content (an OPTIONS answer) has no body and no Content-Length (RFC 9110, 8.6).
  } else if (!chunked) {
    out += "Content-Length: ";
    out += std::to_string(content_length);
    out += "\r\n";
  } else if (!http10) {
    out += "Transfer-Encoding: chunked\r\n";
  }
  out += extra_headers;
  if (close) {
    out += "Connection: close\r\n";
  } else if (http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  return out;
}

std::string format_response(int http_status, std::string_view content_type, std::string_view extra_headers,
                            std::string_view body, bool close, unsigned version) {
  std::string out = format_head(http_status, content_type, extra_headers, static_cast<std::int64_t>(body.size()),
                                false, close, version);
  out += body;
  return out;
}

std::string format_chunk(std::string_view data, unsigned version) {
  if (data.empty()) return {};
  if (version < 11) return std::string(data);
  char size[24];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out;
  out.reserve(static_cast<size_t>(n) + data.size() + 2);
  out.append(size, static_cast<size_t>(n));
  out += data;
  out += "\r\n";
  return out;
}

std::string format_last_chunk(std::string_view trailers, unsigned version) {
  if (version < 11) return {};
  std::string out = "0\r\n";
  out += trailers;
  out += "\r\n";
  return out;
}

// One connection. Everything but write()/finish()/abort() runs on its I/O
// thread; those dispatch onto it.
class Server::Session : public Response, public Timed, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Context& context, Server& server)
      : socket_(std::move(socket)), executor_(context.ioc.get_executor()), deadlines_(*context.deadlines),
        server_(server), reservation_(server.inflight_bytes_) {}

  ~Session() override {
    std::lock_guard<std::mutex> lock(server_.sessions_mu_);
    server_.sessions_.erase(this);
  }

  void start() {
    {
      std::lock_guard<std::mutex> lock(server_.sessions_mu_);
      server_.sessions_.emplace(this, weak_from_this());
    }
    net::dispatch(executor_, [self = shared_from_this()] {
      self->deadlines_.add(self);
      self->read_header();
    });
  }

  // Closes the connection unless it owes an answer (draining).
  void close_if_idle() {
    net::dispatch(executor_, [self = shared_from_this()] {
      if (!self->in_request_) self->close();
    });
  }

  void write(std::string bytes) override {
    streamed_.store(true, std::memory_order_relaxed);
    if (on_own_thread() && nothing_queued() && !bytes.empty()) {
      // A stream's event from its request's fiber, with nothing queued ahead
      // of it: out now, in one send, not at the end of the fiber's turn (it
      // may run on through the rest of the answer to the ledger flush before
      // an asio write could start); what the socket does not take goes the
      // usual way.
      if (!send_now(bytes)) {
        close();
        return;
      }
      if (bytes.empty()) return;
    }
    net::dispatch(executor_, [self = shared_from_this(), bytes = std::move(bytes)]() mutable {
      if (self->closed_) return;
      if (!bytes.empty()) self->out_.push_back(std::move(bytes));
      self->pump();
    });
  }

  void finish(std::string bytes, bool close) override {
    answered_.store(true, std::memory_order_relaxed);
    const bool quiet = on_own_thread() ? nothing_queued() : !streamed_.load(std::memory_order_relaxed);
    if (quiet && !bytes.empty()) {
      // Nothing queued ahead (on a worker: nothing streamed, so the
      // connection is quiet: nothing is read or written while a request is
      // at the handler): the bytes go out now, in one send, without an
      // asynchronous write (its operation, its completion) or a wait for
      // the I/O thread; what the socket does not take (it is non-blocking)
      // goes the usual way.
      if (!send_now(bytes)) close = true;
    }
    net::dispatch(executor_, [self = shared_from_this(), bytes = std::move(bytes), close]() mutable {
      self->finishing_ = true;
      self->close_after_ = self->close_after_ || close;
      if (!self->closed_ && !bytes.empty()) self->out_.push_back(std::move(bytes));
      self->pump();
    });
  }

  void abort(std::string error_response) override {
    if (answered_.load(std::memory_order_relaxed)) return;
    const bool streamed = streamed_.load(std::memory_order_relaxed);
    finish(streamed ? std::string() : std::move(error_response), true);
  }

  bool keep_alive() const override { return keep_alive_; }
  unsigned version() const override { return version_; }

 private:
  bool on_own_thread() const { return executor_.running_in_this_thread(); }
  // Nothing written or waiting to be: bytes may go out now, ahead of no others.
  // REQUIRES: on its own thread.
  bool nothing_queued() const { return !writing_ && out_.empty() && !closed_; }

  // One non-blocking send of `bytes`, which keeps what the socket did not
  // take. False when the connection broke (`bytes` is then cleared).
  bool send_now(std::string& bytes) {
    error_code ec;
    const std::size_t sent = socket_.write_some(net::buffer(bytes), ec);
    if (!ec) {
      bytes.erase(0, sent);
      return true;
    }
    if (ec == net::error::would_block || ec == net::error::try_again) return true;
    bytes.clear();
    return false;
  }

  // Deadlines: the connection's timeout (a phase's: idle, header, body, a
  // client that stops reading, the linger) closes it; a request at the
  // handler for kWatchAfter gets its client watched.
  Clock::time_point due(Clock::time_point now) override {
    if (closed_) return Clock::time_point::max();
    if (deadline_ <= now) {
      close();  // the client was too slow, or left: nobody to answer
      return Clock::time_point::max();
    }
    if (watch_at_ <= now) {
      watch_at_ = Clock::time_point::max();
      if (in_request_ && !watching_) watch_client();
    }
    return std::min(deadline_, watch_at_);
  }

  void expires_after(std::chrono::milliseconds timeout) {
    deadline_ = Clock::now() + timeout;
    deadlines_.wake_by(deadline_);
  }
  void expires_never() { deadline_ = Clock::time_point::max(); }

  // Between kept-alive requests: wait up to idle_timeout for the next one's
  // first bytes, then give its headers header_timeout.
  void next_request() {
    if (buffer_.size() > 0) {
      read_header();
      return;
    }
    expires_after(limits_.idle_timeout);
    socket_.async_read_some(buffer_.prepare(kReadSize), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec) {
        self->close();
        return;
      }
      self->buffer_.commit(n);
      self->read_header();
    });
  }

  void read_header() {
    if (server_.draining_.load()) {
      close();
      return;
    }
    limits_ = server_.limits();
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(static_cast<std::uint64_t>(limits_.max_body_bytes));
    header_scanned_ = 0;
    body_seen_ = 0;
    raw_target_.clear();
    expires_after(limits_.header_timeout);  // for the whole header: a dribbling client gains nothing
    parse();
  }

  void read_some() {
    socket_.async_read_some(buffer_.prepare(kReadSize), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec) {
        self->close();  // the client left, or was too slow: nobody to answer
        return;
      }
      self->buffer_.commit(n);
      self->parse();
    });
  }

  // Feeds what the buffer holds to the parser (the read loop is ours, not
  // http::async_read's, so that the header's raw bytes can be checked and an
  // exception from Beast stops here), then reads more, or hands on the request.
  void parse() {
    for (;;) {
      const bool in_header = !parser_->is_header_done();
      if (in_header) {
        if (auto refusal = raw_header_error()) {
          reject(refusal->status, refusal->message);
          return;
        }
      }
      error_code ec;
      std::size_t used = 0;
      try {
        used = parser_->put(buffer_.data(), ec);
      } catch (const std::length_error&) {
        // basic_fields holds a field of at most 64 KiB; only a trailer can be
        // that big, and the trailer limit below keeps it smaller.
        reject(431, "a header or trailer field of the request is too large");
        return;
      } catch (const std::exception& e) {
        reject(500, std::string("the request could not be read: ") + e.what());
        return;
      }
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        if (!in_header && buffer_.size() > kMaxHeaderBytes) {
          // The parser waits for the end of a chunk line or of the trailer.
          reject(431, "a chunk header or the trailer section of the request is over " +
                          std::to_string(kMaxHeaderBytes) + " bytes");
          return;
        }
        read_some();
        return;
      }
      if (ec) {
        read_failed(ec);
        return;
      }
      if (in_header && parser_->is_header_done()) {
        if (!on_header()) return;
        continue;
      }
      if (!in_header && !reserve_for_body()) return;
      if (parser_->is_done()) {
        on_request();
        return;
      }
      if (used == 0) {
        read_some();
        return;
      }
    }
  }

  // The checks the parser does not make on the raw header (obs-fold: Beast
  // joins continued lines), once its end is in the buffer.
  std::optional<Refusal> raw_header_error() {
    const std::string_view raw(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    const std::size_t from = header_scanned_ > 3 ? header_scanned_ - 3 : 0;
    const std::size_t end = raw.find("\r\n\r\n", from);
    if (end == std::string_view::npos) {
      header_scanned_ = raw.size();
      return std::nullopt;
    }
    for (std::size_t at = raw.find('\n'); at < end; at = raw.find('\n', at + 1)) {
      if (is_ows(raw[at + 1])) {
        // Refused before the parser read the request line: the target (for
        // the answer's API shape) is its second word.
        const std::string_view line = raw.substr(0, raw.find('\r'));
        const std::size_t first = line.find(' ');
        if (first != std::string_view::npos) {
          const std::string_view rest = line.substr(first + 1);
          raw_target_ = std::string(rest.substr(0, rest.find(' ')));
        }
        return Refusal{400, "the request folds a header line (obs-fold): RFC 9112 does not allow it"};
      }
    }
    return std::nullopt;
  }

  // The header is read: false when the request was refused (or waits for the
  // 100 Continue to go out).
  bool on_header() {
    const auto& message = parser_->get();
    const auto count = std::distance(message.begin(), message.end());
    if (count > limits_.max_header_count) {
      reject(431, "the request has " + std::to_string(count) + " headers; at most " +
                      std::to_string(limits_.max_header_count) + " are accepted (max_header_count)");
      return false;
    }
    if (auto refusal = framing_error(message.base())) {
      reject(refusal->status, refusal->message);
      return false;
    }
    if (const auto length = parser_->content_length(); length && !reserve(estimate_body_memory(
                                                                     static_cast<std::int64_t>(*length)))) {
      return false;
    }
    parser_->eager(true);
    expires_after(limits_.body_timeout);
    if (!parser_->is_done() && beast::iequals(message[http::field::expect], "100-continue")) {
      in_request_ = true;
      out_.push_back("HTTP/1.1 100 Continue\r\n\r\n");
      writing_ = true;
      net::async_write(socket_, net::buffer(out_.front()), [self = shared_from_this()](error_code ec, std::size_t) {
        self->writing_ = false;
        self->out_.pop_front();
        if (ec) {
          self->close();
          return;
        }
        self->in_request_ = false;
        self->parse();
      });
      return false;
    }
    return true;
  }

  // A chunked body, as it arrives: its bytes so far must fit.
  bool reserve_for_body() {
    const std::size_t size = parser_->get().body().size();
    if (size == body_seen_) return true;
    body_seen_ = size;
    return reserve(estimate_body_memory(static_cast<std::int64_t>(size)));
  }

  // Holds `bytes` for this request: false when refused (413 or 503, sent).
  bool reserve(std::int64_t bytes) {
    if (bytes > limits_.max_request_memory) {
      reject(413, "the request would take about " + std::to_string(bytes >> 20) + " MiB to process; at most " +
                      std::to_string(limits_.max_request_memory >> 20) + " MiB are allowed (max_request_memory)");
      return false;
    }
    if (!reservation_.grow_to(bytes, limits_.max_inflight_bytes)) {
      reject(503,
             "the gateway is at its memory limit for requests in flight (max_inflight_bytes); retry shortly",
             "Retry-After: 1\r\n");
      return false;
    }
    return true;
  }

  void read_failed(error_code ec) {
    if (ec == http::error::body_limit) {
      reject(413, "the request body is over " + std::to_string(limits_.max_body_bytes) + " bytes (max_body_bytes)");
    } else if (ec == http::error::header_limit) {
      reject(431, "the request's headers are over " + std::to_string(kMaxHeaderBytes) + " bytes");
    } else if (ec == http::error::bad_content_length || ec == http::error::bad_transfer_encoding) {
      reject(400, "the request's framing is invalid (" + ec.message() +
                      "): one Content-Length, or Transfer-Encoding chunked, never both");
    } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      reject(400, "the request is not valid HTTP/1.1 (" + ec.message() + ")");
    } else {
      close();  // the client left, or was too slow: nobody to answer
    }
  }

  // An answer the server gives on its own; the connection closes after it.
  void reject(int status, const std::string& message, std::string_view extra_headers = {}) {
    std::string target;
    if (parser_ && parser_->got_some()) target = std::string(parser_->get().target());
    if (target.empty()) target = std::move(raw_target_);
    // Refused before its body was read: the client may still be sending it.
    body_unread_ = parser_ && parser_->is_header_done() && !parser_->is_done();
    on_request_start();
    finish(server_.handler_.reject(status, target, message, extra_headers), true);
  }

  void on_request_start() {
    in_request_ = true;
    streamed_.store(false, std::memory_order_relaxed);
    answered_.store(false, std::memory_order_relaxed);
    server_.active_.fetch_add(1);
    expires_never();
  }

  void on_request() {
    // The whole estimate, now that the body's structure is known.
    if (!reserve(estimate_request_memory(parser_->get().body()))) return;
    on_request_start();
    gone_ = std::make_shared<Cancellation>();
    const Clock::time_point received = Clock::now();
    HttpRequest request{parser_->release(), received, gone_, &executor_.context()};
    parser_.reset();
    watch_at_ = received + kWatchAfter;
    deadlines_.wake_by(watch_at_);
    keep_alive_ = request.message.keep_alive();
    version_ = request.message.version() < 11 ? 10 : 11;
    const std::string target(request.message.target());
    try {
      server_.handler_.handle(std::move(request), shared_from_this());
    } catch (const std::exception& e) {
      // A dependency's exception (out of memory, say): this request fails, the server goes on.
      abort(server_.handler_.reject(500, target, std::string("internal error: ") + e.what()));
    }
  }

  // Writes everything queued, in one gather write: the events queued while
  // a write is in flight (a client reading slower than the stream) leave
  // together when it completes.
  void pump() {
    if (writing_) return;
    if (closed_) {
      out_.clear();
      if (finishing_) request_done();
      return;
    }
    if (out_.empty()) {
      if (finishing_) request_done();
      return;
    }
    writing_ = true;
    expires_after(limits_.idle_timeout);  // a client that stops reading
    std::vector<net::const_buffer> buffers;
    buffers.reserve(out_.size());
    for (const std::string& bytes : out_) buffers.emplace_back(net::buffer(bytes));
    const std::size_t count = buffers.size();
    net::async_write(socket_, buffers, [self = shared_from_this(), count](error_code ec, std::size_t) {
      self->writing_ = false;
      self->out_.erase(self->out_.begin(), self->out_.begin() + static_cast<std::ptrdiff_t>(count));
      if (ec) self->close();
      self->pump();
    });
  }

  // While the request is at the handler, nothing is read: a wait for the
  // socket to turn readable (armed by due(), kWatchAfter into the request)
  // tells a client that went away (end of stream, a reset) from one that
  // pipelined its next request (bytes to read, left for next_request; its
  // disconnect is not seen).
  void watch_client() {
    if (closed_ || buffer_.size() > 0) return;  // a pipelined request is already here
    watching_ = true;
    socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
      self->watching_ = false;
      if (ec || !self->in_request_ || self->closed_) return;
      char byte;
      const ssize_t n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        self->client_left();
      } else if (n < 0) {
        self->watch_client();
      }
    });
  }

  // The client is gone while its request is being answered: the handler
  // hears it through client_gone; the socket stays open until the handler is
  // done with it (it may be writing to it from a worker), then closes.
  void client_left() {
    close_after_ = true;
    if (gone_) gone_->cancel("client disconnected");
  }

  void request_done() {
    watch_at_ = Clock::time_point::max();
    if (watching_) {
      error_code ignored;
      socket_.cancel(ignored);  // the pending wait ends with operation_aborted
    }
    gone_.reset();
    finishing_ = false;
    in_request_ = false;
    reservation_.reset();
    server_.active_.fetch_sub(1);
    expires_never();
    if (closed_) return;
    if (close_after_ || !keep_alive_ || server_.draining_.load()) {
      linger_close();
      return;
    }
    next_request();
  }

  // Sends FIN, then reads and drops what the client still sends for a while,
  // so that the answer is read before the connection goes.
  void linger_close() {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    // Enough for the body of a request refused from its header (413, 503).
    linger_left_ = std::max<std::size_t>(kLingerBytes, static_cast<std::size_t>(limits_.max_body_bytes) + kLingerBytes);
    // A client refused before its body was read (413, 503) reads the answer
    // only once it has sent the body: given body_timeout to send it.
    expires_after(body_unread_ ? std::max<std::chrono::milliseconds>(kLingerTime, limits_.body_timeout)
                                       : kLingerTime);
    body_unread_ = false;
    linger();
  }

  void linger() {
    buffer_.clear();
    socket_.async_read_some(buffer_.prepare(16 * 1024), [self = shared_from_this()](error_code ec, std::size_t n) {
      if (ec || n >= self->linger_left_) {
        self->close();
        return;
      }
      self->linger_left_ -= n;
      self->linger();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    if (in_request_ && gone_) gone_->cancel("client disconnected");
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  tcp::socket socket_;
  Executor executor_;       // the socket's: its I/O thread's io_context
  Deadlines& deadlines_;    // its I/O thread's
  Clock::time_point deadline_ = Clock::time_point::max();  // the phase's timeout: closed then
  Clock::time_point watch_at_ = Clock::time_point::max();  // when the request at the handler gets watch_client
  Server& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  ServerLimits limits_;
  MemoryReservation reservation_;  // the request's estimated memory, until it is answered
  std::size_t header_scanned_ = 0;  // bytes of the buffer searched for the header's end
  std::size_t body_seen_ = 0;       // body bytes reserved for so far
  std::string raw_target_;          // the target of a request refused before its header was parsed
  bool body_unread_ = false;        // the request refused was refused before its body was read
  std::deque<std::string> out_;
  std::size_t linger_left_ = 0;
  bool writing_ = false;
  bool watching_ = false;           // watch_client's wait is pending
  std::shared_ptr<Cancellation> gone_;  // the request at the handler's client_gone
  bool finishing_ = false;
  bool close_after_ = false;
  bool in_request_ = false;
  bool closed_ = false;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  // Set by write(): the answer is a stream, so finish() must queue behind it.
  // Set and read by the thread answering (the handler's contract), reset on
  // its thread before the request goes to the handler.
  std::atomic<bool> streamed_{false};
  // Set by finish(): abort() then does nothing. Reset with streamed_.
  std::atomic<bool> answered_{false};
};

Server::Server(RequestHandler& handler, int threads, std::chrono::microseconds busy_poll)
    : handler_(handler), busy_poll_(busy_poll) {
  for (int i = 0; i < std::max(1, threads); ++i) {
    contexts_.push_back(std::make_unique<Context>());
    contexts_.back()->deadlines = std::make_unique<Deadlines>(contexts_.back()->ioc);
  }
  acceptor_ = std::make_unique<tcp::acceptor>(contexts_.front()->ioc);
}

Server::~Server() { stop(); }

void Server::set_limits(const ServerLimits& limits) {
  std::lock_guard<std::mutex> lock(limits_mu_);
  limits_ = limits;
}

ServerLimits Server::limits() const {
  std::lock_guard<std::mutex> lock(limits_mu_);
  return limits_;
}

Result<std::uint16_t> Server::listen(const std::string& host, int port) {
  if (port < 0 || port > 65535) return Status::invalid_argument("port " + std::to_string(port) + " is out of range");
  error_code ec;
  tcp::resolver resolver(contexts_.front()->ioc);
  const auto results =
      resolver.resolve(host, std::to_string(port), tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) return Status::invalid_argument("cannot resolve '" + host + "': " + ec.message());
  const tcp::endpoint endpoint = results.begin()->endpoint();
  const std::string where = host + ":" + std::to_string(port);
  if (acceptor_->open(endpoint.protocol(), ec); ec) return Status::io_error(where + ": " + ec.message());
  if (acceptor_->set_option(net::socket_base::reuse_address(true), ec); ec)
    return Status::io_error(where + ": " + ec.message());
  if (acceptor_->bind(endpoint, ec); ec) return Status::io_error("cannot listen on " + where + ": " + ec.message());
  if (acceptor_->listen(net::socket_base::max_listen_connections, ec); ec) {
    return Status::io_error("cannot listen on " + where + ": " + ec.message());
  }
  const tcp::endpoint bound = acceptor_->local_endpoint(ec);
  if (ec) return Status::io_error(where + ": " + ec.message());
  return bound.port();
}

void Server::run() {
  for (auto& c : contexts_) c->work.emplace(c->ioc.get_executor());
  accept();
  for (auto& c : contexts_) {
    threads_.emplace_back([&ioc = c->ioc, busy_poll = busy_poll_, name = "sb-io-" + std::to_string(threads_.size())] {
      pthread_setname_np(pthread_self(), name.c_str());  // as top -H and perf show it
      // The last boundary: a handler that throws past its session loses that
      // connection (its handlers unwind), never the process. run() resumes.
      for (;;) {
        try {
          run_io(ioc, busy_poll);
          return;
        } catch (const std::exception&) {
        }
      }
    });
  }
}

void Server::accept() {
  Context& context = *contexts_[next_context_++ % contexts_.size()];
  acceptor_->async_accept(context.ioc.get_executor(), [this, &context](error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_->is_open()) return;
    if (!ec) {
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      socket.non_blocking(true, ignored);  // for Session::finish's direct write; async ops do not mind
      std::make_shared<Session>(std::move(socket), context, *this)->start();
      accept();
      return;
    }
    // Out of descriptors, say: try again shortly rather than spin.
    auto timer = std::make_shared<net::steady_timer>(contexts_.front()->ioc, std::chrono::milliseconds(50));
    timer->async_wait([this, timer](error_code) { accept(); });
  });
}

void Server::stop_accepting() {
  draining_.store(true);
  net::post(contexts_.front()->ioc, [this] {
    error_code ignored;
    acceptor_->close(ignored);
  });
  std::vector<std::shared_ptr<Session>> sessions;
  {
    std::lock_guard<std::mutex> lock(sessions_mu_);
    for (auto& [raw, weak] : sessions_) {
      if (auto s = weak.lock()) sessions.push_back(std::move(s));
    }
  }
  for (auto& s : sessions) s->close_if_idle();
}

void Server::stop() {
  for (auto& c : contexts_) {
    c->work.reset();
    c->ioc.stop();
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace switchboard::gateway
