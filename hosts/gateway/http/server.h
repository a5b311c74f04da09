// Server: the gateway's HTTP/1.1 server, event-driven on Boost.Asio/Beast.
//
// N I/O threads, each running its own io_context; connections are dealt to
// them in turn, and each is a Session that lives on its thread (no thread
// per connection, no strand: one io_context per thread never wakes another
// thread for a handler of its own), reading one request at a time with
// keep-alive. Limits (set_limits, from [gateway]): a body over max_body_bytes
// gets 413, more than max_header_count headers (or over 64 KiB of them, or a
// chunk line or trailer section over 64 KiB) 431, bytes that are not HTTP 400;
// a client that does not send its headers within header_timeout, its body
// within body_timeout, or (between kept-alive requests) its next request
// within idle_timeout is disconnected.
//
// Framing is strict (RFC 9112): an HTTP/1.1 request without Host, more than
// one Host, obs-fold (a header line continued on the next), Content-Length
// beside Transfer-Encoding, more than one Content-Length or a list of them,
// Transfer-Encoding in HTTP/1.0 or not ending in chunked get 400; a transfer
// coding other than chunked gets 501.
//
// Memory: every request holds a reservation of its estimated memory
// (estimate_request_memory) from the moment its size is known (Content-Length,
// or the chunks as they arrive) until it is answered: over max_request_memory
// it gets 413, and when every request in flight together would exceed
// max_inflight_bytes, 503 with Retry-After, before the handler sees it.
//
// A client that disconnects while its request is at the handler cancels the
// request's HttpRequest::client_gone, so the handler can stop its work (the
// gateway's upstream calls) at once. Every timeout of a thread's connections
// runs on one timer (http/deadlines.h).
//
// The server hands every complete request to a RequestHandler with a Response
// through which any thread may answer it, in pieces (a stream) or at once.
// Boost exceptions stop in server.cpp: an exception from the parser or the
// handler answers that request 500 (or 431/400 for a field Beast cannot hold)
// and closes its connection; the other connections go on.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "switchboard/switchboard.h"

namespace switchboard::gateway {

using Clock = std::chrono::steady_clock;
class Deadlines;

// One complete request, as read.
struct HttpRequest {
  boost::beast::http::request<boost::beast::http::string_body> message;
  Clock::time_point received;  // when its last byte was read
  // Cancelled ("client disconnected") when the client goes away before the
  // request is answered: it closes or resets the connection while the
  // handler works (seen by a wait on the socket, armed 20 ms into the
  // request: a quicker answer needs none), or a write of the answer fails. Not seen behind a pipelined request the client already
  // sent. The connection stays open until the handler calls finish().
  std::shared_ptr<Cancellation> client_gone;
  // The io_context of the I/O thread that read it (and calls the handler).
  boost::asio::io_context* io = nullptr;
};

// How a handler answers one request: raw HTTP bytes (status line and headers
// first; format_response helps), written in call order by the connection's
// I/O thread. Thread-safe; the handler may keep it and answer from any thread.
// REQUIRES: finish() is called exactly once per request, after any write();
// the calls for one request come from one thread at a time, in order.
class Response {
 public:
  virtual ~Response() = default;
  // Appends bytes (a stream's next event).
  virtual void write(std::string bytes) = 0;
  // Appends the last bytes. The connection then reads its next request, or
  // closes when `close` is set, the client did not ask to keep it, the
  // server is draining, or a write failed.
  virtual void finish(std::string bytes, bool close = false) = 0;
  // Ends the request after a failure: sends `error_response` (a whole
  // response) when nothing of the answer was written yet, then closes the
  // connection. Does nothing when finish() or abort() was already called.
  virtual void abort(std::string error_response) = 0;
  // Whether the request asked to keep the connection open.
  virtual bool keep_alive() const = 0;
  // 11 for HTTP/1.1, 10 for HTTP/1.0 (no chunked encoding).
  virtual unsigned version() const = 0;
};

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Called on the connection's I/O thread; must not block.
  virtual void handle(HttpRequest&& request, std::shared_ptr<Response> response) = 0;
  // The whole error response the server sends on its own (400, 413, 431,
  // 500, 501, 503) to a request for `target` ("" when the request line was
  // not read), with `extra_headers` ("name: value\r\n" lines; 503 has
  // Retry-After). The connection closes after it.
  virtual std::string reject(int http_status, std::string_view target, std::string_view message,
                             std::string_view extra_headers = {}) = 0;
};

// The memory a request with this body is expected to cost once parsed and
// translated (the body, its JSON tree, the translated call and the upstream
// request), from its size and its JSON structure; an over-estimate for
// typical requests. estimate_body_memory is the part known from the size
// alone (before the body arrives): a lower bound of the whole estimate.
std::int64_t estimate_body_memory(std::int64_t body_bytes);
std::int64_t estimate_request_memory(std::string_view body);

// The status line and headers of a response. `extra_headers` are complete
// "name: value\r\n" lines. With a body: Content-Length (none on a 204); `chunked`: the body
// follows as chunks (an HTTP/1.0 request gets none: the connection closes).
std::string format_head(int http_status, std::string_view content_type, std::string_view extra_headers,
                        std::int64_t content_length, bool chunked, bool close, unsigned version);
// format_head with the body appended.
std::string format_response(int http_status, std::string_view content_type, std::string_view extra_headers,
                            std::string_view body, bool close, unsigned version);
// One chunk of a chunked body ("" for empty `data`: an empty chunk would end the body).
std::string format_chunk(std::string_view data, unsigned version);
// The end of a chunked body, with trailers ("name: value\r\n" lines).
std::string format_last_chunk(std::string_view trailers, unsigned version);

// The limits a connection applies, read per request (so a reload changes them).
struct ServerLimits {
  std::int64_t max_body_bytes = 4 * 1024 * 1024;
  int max_header_count = 100;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::int64_t max_request_memory = 128 * 1024 * 1024;  // one request's estimate; beyond: 413
  std::int64_t max_inflight_bytes = 512 * 1024 * 1024;  // every request's together; beyond: 503
};

class Server {
 public:
  // `threads` I/O threads (at least 1). With `busy_poll` > 0 a thread keeps
  // polling its sockets that long after its last work before it sleeps,
  // unless it has lately been kept waiting for its core (run_io and
  // SpinGovernor in busy_poll.h): less latency, more CPU. REQUIRES: `handler`
  // outlives the server.
  Server(RequestHandler& handler, int threads, std::chrono::microseconds busy_poll = {});
  // Stops (if running) and closes every connection.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void set_limits(const ServerLimits& limits);
  ServerLimits limits() const;

  // Binds and listens on `host` (an address or a name) and `port` (0: a free
  // one); returns the bound port.
  Result<std::uint16_t> listen(const std::string& host, int port);
  // Starts the I/O threads accepting and serving.
  void run();

  // Draining: no new connections; each connection closes after the answer it
  // owes, and idle ones close now.
  void stop_accepting();
  // Requests read and not yet answered.
  int active() const { return active_.load(); }
  // The memory reserved by the requests in flight (estimate_request_memory).
  std::int64_t inflight_bytes() const { return inflight_bytes_.load(); }
  // Stops the I/O threads and joins them.
  void stop();

 private:
  class Session;
  friend class Session;
  void accept();

  RequestHandler& handler_;
  const std::chrono::microseconds busy_poll_;
  mutable std::mutex limits_mu_;
  ServerLimits limits_;
  std::atomic<bool> draining_{false};
  std::atomic<int> active_{0};
  std::atomic<std::int64_t> inflight_bytes_{0};
  std::mutex sessions_mu_;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions_;
  std::vector<std::thread> threads_;
  // One per I/O thread.
  struct Context {
    boost::asio::io_context ioc{1};
    std::unique_ptr<Deadlines> deadlines;  // its connections' timeouts
    // Keeps its thread running while no operation is pending (every request
    // at a worker, the acceptor closed); reset by stop().
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
  };
  std::size_t next_context_ = 0;  // the context the next connection goes to (used by the acceptor only)
  // Last: destroyed first, with the handlers (and sessions) they still hold.
  std::vector<std::unique_ptr<Context>> contexts_;
  std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor_;  // on contexts_[0]
};

}  // namespace switchboard::gateway
