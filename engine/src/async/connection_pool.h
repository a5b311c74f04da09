// ConnectionPool: a loop's idle HTTP/1.1 connections, kept alive between
// calls, per upstream endpoint (providers/http1_on_loop.h makes and uses them).
//
// A connection is given back only at a message boundary (its last response
// read to the end, nothing unread, the server willing to keep it); taking one
// checks first that the server has not closed it meanwhile (a peek that
// would block), so a call rarely writes into a dead connection. The server may
// still close one just as it is reused: the caller then retries once on a new
// connection when no byte of the answer arrived.
//
// Thread-safety: none; it belongs to one Loop and its thread.
#pragma once

#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

namespace switchboard::async {

class ConnectionPool {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using Endpoint = boost::asio::ip::tcp::endpoint;

  // Idle connections kept per endpoint; one more given back is closed.
  static constexpr std::size_t kMaxIdlePerEndpoint = 64;

  // An idle connection to `endpoint` that still looks open, or none.
  std::optional<Socket> take(const Endpoint& endpoint) {
    const auto it = idle_.find(endpoint);
    if (it == idle_.end()) return std::nullopt;
    std::vector<Socket>& kept = it->second;
    while (!kept.empty()) {
      Socket socket = std::move(kept.back());
      kept.pop_back();
      if (still_open(socket)) return socket;
      // closed by the server (or it sent bytes nobody asked for): dropped here
    }
    return std::nullopt;
  }

  // Keeps `socket`, idle at a message boundary, for the next call to `endpoint`.
  void give_back(const Endpoint& endpoint, Socket socket) {
    std::vector<Socket>& kept = idle_[endpoint];
    if (kept.size() < kMaxIdlePerEndpoint) kept.push_back(std::move(socket));
  }

 private:
  // Open and silent: a non-blocking peek finds nothing to read. 0 bytes is
  // the server's close; bytes are an answer to nothing: either way unusable.
  static bool still_open(Socket& socket) {
    char byte = 0;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  std::map<Endpoint, std::vector<Socket>> idle_;
};

}  // namespace switchboard::async
