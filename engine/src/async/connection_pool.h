// ConnectionPool: a loop's idle HTTP/1.1 connections, plain or TLS, kept
// alive between calls, per upstream: the URL's scheme and authority as
// written, "http://host:port" (providers/http1_on_loop.h makes and uses them;
// a name is looked up only when no connection to it is kept), and the TLS
// session each https upstream last gave, so that a new connection to it
// resumes that session (an abbreviated handshake) instead of a full one.
//
// A connection is given back only at a message boundary (its last response
// read to the end, nothing unread, the server willing to keep it). Taking one
// idle for kFreshFor or longer checks first that the server has not closed it
// meanwhile (a peek that would block), so a call rarely writes into a dead
// connection; one idle for less is taken as it is (servers close idle
// connections after seconds: nginx 75 s, Node 5 s, uvicorn 5 s), which saves
// a system call on every call of a busy loop. A TLS connection's waiting
// bytes are read by TLS first: a session ticket or key update that came
// after the last answer leaves it usable; data or a close_notify does not.
// Either way the server may close one just as it is reused: the caller then
// retries once on a new connection when no byte of the answer arrived, and
// tells the pool (closed_unannounced), which from then on peeks at every
// connection to that upstream.
//
// Thread-safety: none; it belongs to one Loop and its thread.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace switchboard::async {

struct TlsFree {
  // A connection past its handshake says close_notify (one try that never
  // blocks: the socket is non-blocking) before it goes. Besides courtesy,
  // OpenSSL then keeps its session resumable; freed without it, the session
  // is marked not resumable, as after a fatal error (when this sends nothing).
  void operator()(SSL* ssl) const noexcept {
    if (SSL_is_init_finished(ssl) == 1) SSL_shutdown(ssl);
    ERR_clear_error();
    SSL_free(ssl);
  }
  void operator()(SSL_SESSION* session) const noexcept { SSL_SESSION_free(session); }
};
using Tls = std::unique_ptr<SSL, TlsFree>;
using TlsSession = std::unique_ptr<SSL_SESSION, TlsFree>;

// An open connection to an upstream: its socket and, for https, the TLS
// state over it (null for plain HTTP). The TLS state never closes the socket.
struct Connection {
  boost::asio::ip::tcp::socket socket;
  Tls tls{};
};

class ConnectionPool {
 public:
  using Upstream = std::string;  // "http://host:port", as the URL spells it

  using Clock = std::chrono::steady_clock;

  // Idle connections kept per upstream; one more given back is closed.
  static constexpr std::size_t kMaxIdlePerUpstream = 64;
  // Idle for less than this, a connection is reused without the peek.
  static constexpr std::chrono::milliseconds kFreshFor{500};

  // An idle connection to `upstream` that still looks open, or none.
  std::optional<Connection> take(const Upstream& upstream) {
    const auto it = idle_.find(upstream);
    if (it == idle_.end()) return std::nullopt;
    Idle& idle = it->second;
    const Clock::time_point now = Clock::now();
    while (!idle.kept.empty()) {
      Kept kept = std::move(idle.kept.back());
      idle.kept.pop_back();
      if ((!idle.closes_unannounced && now - kept.since < kFreshFor) || still_open(kept.connection)) {
        return std::move(kept.connection);
      }
      // closed by the server (or it sent bytes nobody asked for): dropped here
    }
    return std::nullopt;
  }

  // Keeps `connection`, idle at a message boundary, for the next call to `upstream`.
  void give_back(const Upstream& upstream, Connection connection) {
    Idle& idle = idle_[upstream];
    if (idle.kept.size() < kMaxIdlePerUpstream) idle.kept.push_back({std::move(connection), Clock::now()});
  }

  // The TLS session `upstream` last gave (borrowed: valid until the next
  // remember_session for it), or null.
  SSL_SESSION* session(const Upstream& upstream) const {
    const auto it = idle_.find(upstream);
    return it == idle_.end() ? nullptr : it->second.session.get();
  }

  // Keeps `tls`'s session for new connections to `upstream` to resume, when
  // it can be resumed (TLS 1.3's arrives with the first answer, not before).
  void remember_session(const Upstream& upstream, SSL* tls) {
    TlsSession session(SSL_get1_session(tls));
    if (session != nullptr && SSL_SESSION_is_resumable(session.get()) == 1) {
      idle_[upstream].session = std::move(session);
    }
  }

  // A connection to `upstream` taken from the pool was closed before its
  // answer began: that server closes connections without saying so, and
  // every connection to it is peeked at before reuse from now on.
  void closed_unannounced(const Upstream& upstream) { idle_[upstream].closes_unannounced = true; }

 private:
  // Open and silent: a non-blocking peek finds nothing to read. 0 bytes is
  // the server's close; bytes are an answer to nothing: either way unusable,
  // unless TLS reads them as records that carry no data (a session ticket).
  static bool still_open(Connection& connection) {
    char byte = 0;
    const ssize_t n = ::recv(connection.socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0 || connection.tls == nullptr) return false;
    ERR_clear_error();
    const int peeked = SSL_peek(connection.tls.get(), &byte, 1);
    const bool quiet = peeked <= 0 && SSL_get_error(connection.tls.get(), peeked) == SSL_ERROR_WANT_READ;
    ERR_clear_error();
    return quiet;
  }

  struct Kept {
    Connection connection;
    Clock::time_point since;  // given back
  };
  struct Idle {
    std::vector<Kept> kept;  // the most recently given back last
    bool closes_unannounced = false;
    TlsSession session{};  // https: the last resumable session
  };
  std::map<Upstream, Idle> idle_;
};

}  // namespace switchboard::async
