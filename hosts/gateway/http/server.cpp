#include "http/server.h"

#include <atomic>
#include <deque>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
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

std::string_view reason(int status) {
  const auto r = http::obsolete_reason(static_cast<http::status>(status));
  return r.empty() ? std::string_view("Unknown") : std::string_view(r.data(), r.size());
}

}  // namespace

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
  if (!chunked) {
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

// One connection. Everything but write()/finish() runs on its I/O thread; those
// two dispatch onto it.
class Server::Session : public Response, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Executor executor, Server& server)
      : stream_(std::move(socket)), executor_(std::move(executor)), server_(server) {}

  ~Session() override {
    std::lock_guard<std::mutex> lock(server_.sessions_mu_);
    server_.sessions_.erase(this);
  }

  void start() {
    {
      std::lock_guard<std::mutex> lock(server_.sessions_mu_);
      server_.sessions_.emplace(this, weak_from_this());
    }
    net::dispatch(executor_, [self = shared_from_this()] { self->read_header(); });
  }

  // Closes the connection unless it owes an answer (draining).
  void close_if_idle() {
    net::dispatch(executor_, [self = shared_from_this()] {
      if (!self->in_request_) self->close();
    });
  }

  void write(std::string bytes) override {
    streamed_.store(true, std::memory_order_relaxed);
    net::dispatch(executor_, [self = shared_from_this(), bytes = std::move(bytes)]() mutable {
      if (self->closed_) return;
      if (!bytes.empty()) self->out_.push_back(std::move(bytes));
      self->pump();
    });
  }

  void finish(std::string bytes, bool close) override {
    if (!streamed_.load(std::memory_order_relaxed) && !bytes.empty() &&
        !on_own_thread()) {
      // A whole answer from a worker: the connection is quiet (nothing is
      // read or written while a request is at the handler), so the bytes go
      // out from this thread now, without waiting for an I/O thread; what
      // the socket does not take (it is non-blocking) goes the usual way.
      error_code ec;
      const std::size_t sent = stream_.socket().write_some(net::buffer(bytes), ec);
      if (!ec) {
        bytes.erase(0, sent);
      } else if (ec != net::error::would_block && ec != net::error::try_again) {
        close = true;
        bytes.clear();
      }
    }
    net::dispatch(executor_, [self = shared_from_this(), bytes = std::move(bytes), close]() mutable {
      self->finishing_ = true;
      self->close_after_ = self->close_after_ || close;
      if (!self->closed_ && !bytes.empty()) self->out_.push_back(std::move(bytes));
      self->pump();
    });
  }

  bool keep_alive() const override { return keep_alive_; }
  unsigned version() const override { return version_; }

 private:
  bool on_own_thread() const { return executor_.running_in_this_thread(); }

  // Between kept-alive requests: wait up to idle_timeout for the next one's
  // first bytes, then give its headers header_timeout.
  void next_request() {
    if (buffer_.size() > 0) {
      read_header();
      return;
    }
    stream_.expires_after(limits_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](error_code ec, std::size_t n) {
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
    stream_.expires_after(limits_.header_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(error_code ec) {
    if (ec) {
      read_failed(ec);
      return;
    }
    const auto& message = parser_->get();
    const auto count = std::distance(message.begin(), message.end());
    if (count > limits_.max_header_count) {
      reject(431, "the request has " + std::to_string(count) + " headers; at most " +
                      std::to_string(limits_.max_header_count) + " are accepted (max_header_count)");
      return;
    }
    if (parser_->is_done()) {
      on_request();
      return;
    }
    if (beast::iequals(message[http::field::expect], "100-continue")) {
      in_request_ = true;
      out_.push_back("HTTP/1.1 100 Continue\r\n\r\n");
      writing_ = true;
      stream_.expires_after(limits_.body_timeout);
      net::async_write(stream_, net::buffer(out_.front()), [self = shared_from_this()](error_code ec, std::size_t) {
        self->writing_ = false;
        self->out_.pop_front();
        if (ec) {
          self->close();
          return;
        }
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(limits_.body_timeout);
    http::async_read(stream_, buffer_, *parser_, [self = shared_from_this()](error_code ec, std::size_t) {
      if (ec) {
        self->read_failed(ec);
        return;
      }
      self->on_request();
    });
  }

  void read_failed(error_code ec) {
    if (ec == http::error::body_limit) {
      reject(413, "the request body is over " + std::to_string(limits_.max_body_bytes) + " bytes (max_body_bytes)");
    } else if (ec == http::error::header_limit) {
      reject(431, "the request's headers are over " + std::to_string(kMaxHeaderBytes) + " bytes");
    } else if (ec.category() == http::make_error_code(http::error::bad_method).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      reject(400, "the request is not valid HTTP/1.1 (" + ec.message() + ")");
    } else {
      close();  // the client left, or was too slow: nobody to answer
    }
  }

  // An answer the server gives on its own; the connection closes after it.
  void reject(int status, const std::string& message) {
    std::string target;
    if (parser_ && parser_->got_some()) target = std::string(parser_->get().target());
    on_request_start();
    finish(server_.handler_.reject(status, target, message), true);
  }

  void on_request_start() {
    in_request_ = true;
    streamed_.store(false, std::memory_order_relaxed);
    server_.active_.fetch_add(1);
    stream_.expires_never();
  }

  void on_request() {
    on_request_start();
    HttpRequest request{parser_->release(), Clock::now()};
    parser_.reset();
    keep_alive_ = request.message.keep_alive();
    version_ = request.message.version() < 11 ? 10 : 11;
    server_.handler_.handle(std::move(request), shared_from_this());
  }

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
    stream_.expires_after(limits_.idle_timeout);  // a client that stops reading
    net::async_write(stream_, net::buffer(out_.front()), [self = shared_from_this()](error_code ec, std::size_t) {
      self->writing_ = false;
      self->out_.pop_front();
      if (ec) self->close();
      self->pump();
    });
  }

  void request_done() {
    finishing_ = false;
    in_request_ = false;
    server_.active_.fetch_sub(1);
    stream_.expires_never();
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
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    linger_left_ = kLingerBytes;
    stream_.expires_after(kLingerTime);
    linger();
  }

  void linger() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(16 * 1024), [self = shared_from_this()](error_code ec, std::size_t n) {
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
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Executor executor_;  // the stream's: its I/O thread's io_context
  Server& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  ServerLimits limits_;
  std::deque<std::string> out_;
  std::size_t linger_left_ = 0;
  bool writing_ = false;
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
};

Server::Server(RequestHandler& handler, int threads) : handler_(handler) {
  for (int i = 0; i < std::max(1, threads); ++i) contexts_.push_back(std::make_unique<Context>());
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
  for (auto& c : contexts_) threads_.emplace_back([&ioc = c->ioc] { ioc.run(); });
}

void Server::accept() {
  Executor executor = contexts_[next_context_++ % contexts_.size()]->ioc.get_executor();
  acceptor_->async_accept(executor, [this, executor](error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor_->is_open()) return;
    if (!ec) {
      error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      socket.non_blocking(true, ignored);  // for Session::finish's direct write; async ops do not mind
      std::make_shared<Session>(std::move(socket), executor, *this)->start();
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
