// ConnectionPool: a loop's idle HTTP/1.1 connections, kept alive between
// calls, per upstream: the URL's authority as written, "host:port"
// (providers/http1_on_loop.h makes and uses them; a name is looked up only
// when no connection to it is kept).
//
// A connection is given back only at a message boundary (its last response
// read to the end, nothing unread, the server willing to keep it). Taking one
// idle for kFreshFor or longer checks first that the server has not closed it
// meanwhile (a peek that would block), so a call rarely writes into a dead
// connection; one idle for less is taken as it is (servers close idle
// connections after seconds: nginx 75 s, Node 5 s, uvicorn 5 s), which saves
// a system call on every call of a busy loop. Either way the server may close
// one just as it is reused: the caller then retries once on a new connection
// when no byte of the answer arrived, and tells the pool (closed_unannounced),
// which from then on peeks at every connection to that upstream.
//
// Thread-safety: none; it belongs to one Loop and its thread.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

namespace switchboard::async {

class ConnectionPool {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using Upstream = std::string;  // "host:port", as the URL spells it

  using Clock = std::chrono::steady_clock;

  // Idle connections kept per upstream; one more given back is closed.
  static constexpr std::size_t kMaxIdlePerUpstream = 64;
  // Idle for less than this, a connection is reused without the peek.
  static constexpr std::chrono::milliseconds kFreshFor{500};

  // An idle connection to `upstream` that still looks open, or none.
  std::optional<Socket> take(const Upstream& upstream) {
    const auto it = idle_.find(upstream);
    if (it == idle_.end()) return std::nullopt;
    Idle& idle = it->second;
    const Clock::time_point now = Clock::now();
    while (!idle.kept.empty()) {
      Kept kept = std::move(idle.kept.back());
      idle.kept.pop_back();
      if ((!idle.closes_unannounced && now - kept.since < kFreshFor) || still_open(kept.socket)) {
        return std::move(kept.socket);
      }
      // closed by the server (or it sent bytes nobody asked for): dropped here
    }
    return std::nullopt;
  }

  // Keeps `socket`, idle at a message boundary, for the next call to `upstream`.
  void give_back(const Upstream& upstream, Socket socket) {
    Idle& idle = idle_[upstream];
    if (idle.kept.size() < kMaxIdlePerUpstream) idle.kept.push_back({std::move(socket), Clock::now()});
  }

  // A connection to `upstream` taken from the pool was closed before its
  // answer began: that server closes connections without saying so, and
  // every connection to it is peeked at before reuse from now on.
  void closed_unannounced(const Upstream& upstream) { idle_[upstream].closes_unannounced = true; }

 private:
  // Open and silent: a non-blocking peek finds nothing to read. 0 bytes is
  // the server's close; bytes are an answer to nothing: either way unusable.
  static bool still_open(Socket& socket) {
    char byte = 0;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  struct Kept {
    Socket socket;
    Clock::time_point since;  // given back
  };
  struct Idle {
    std::vector<Kept> kept;  // the most recently given back last
    bool closes_unannounced = false;
  };
  std::map<Upstream, Idle> idle_;
};

}  // namespace switchboard::async
