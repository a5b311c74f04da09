// ConnectionPool: idle connections come back for reuse; one given back moments
// ago is taken without a peek, one idle longer (or to a server known to close
// connections without saying so) only if a peek finds it still open.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "async/connection_pool.h"

using switchboard::async::ConnectionPool;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

// A connected pair on loopback: the client's end and the server's.
struct Pair {
  tcp::socket client;
  tcp::socket server;
};

// A pool for one upstream: a listener on loopback that connect() pairs with.
struct Rig {
  net::io_context io;
  tcp::acceptor acceptor{io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)};
  const tcp::endpoint address = acceptor.local_endpoint();
  const std::string upstream = "127.0.0.1:" + std::to_string(address.port());
  ConnectionPool pool;

  Pair connect() {
    tcp::socket client(io);
    client.connect(address);
    tcp::socket server = acceptor.accept();
    return {std::move(client), std::move(server)};
  }
};

}  // namespace

TEST_CASE("a connection given back moments ago is taken without a peek, and a server's unannounced closes end that") {
  Rig rig;
  ConnectionPool& pool = rig.pool;
  const std::string& upstream = rig.upstream;

  Pair first = rig.connect();
  pool.give_back(upstream, {std::move(first.client)});
  first.server.close();  // the server's FIN is on its way (loopback: already there)
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::optional<switchboard::async::Connection> taken = pool.take(upstream);
  CHECK(taken.has_value());  // fresh: taken as it is (the caller's retry covers the close)

  pool.closed_unannounced(upstream);  // what the caller says after that retry
  Pair second = rig.connect();
  pool.give_back(upstream, {std::move(second.client)});
  second.server.close();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(pool.take(upstream).has_value());  // peeked at: closed, dropped

  Pair third = rig.connect();
  pool.give_back(upstream, {std::move(third.client)});
  CHECK(pool.take(upstream).has_value());  // peeked at: open
  CHECK_FALSE(pool.take(upstream).has_value());  // nothing left
}

TEST_CASE("a connection idle past kFreshFor is peeked at before reuse") {
  Rig rig;
  ConnectionPool& pool = rig.pool;
  const std::string& upstream = rig.upstream;

  Pair closed = rig.connect();
  Pair open = rig.connect();
  pool.give_back(upstream, {std::move(open.client)});
  pool.give_back(upstream, {std::move(closed.client)});  // taken first (the most recent)
  closed.server.close();
  std::this_thread::sleep_for(ConnectionPool::kFreshFor + std::chrono::milliseconds(50));
  std::optional<switchboard::async::Connection> taken = pool.take(upstream);
  REQUIRE(taken.has_value());  // the closed one was dropped; the open one comes back
  CHECK(taken->socket.remote_endpoint() == open.server.local_endpoint());
}
