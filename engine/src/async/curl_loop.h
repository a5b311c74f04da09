// CurlLoop: libcurl's multi interface driven by an io_context's sockets and
// timers (curl_multi_socket_action), for the transfers of a Loop's fibers.
//
// One multi per loop: its connection cache keeps connections to each
// upstream host alive between the calls of every fiber on the thread (over
// HTTP/2, when a TLS upstream offers it, concurrent calls share one
// connection: curl's default), and a share object keeps TLS sessions. Readiness comes from asio's reactor, which
// is edge-triggered: so a socket's next wait is queued before curl acts on
// it, and a byte that arrives while curl works wakes the loop again rather
// than being missed. curl's own timers (connect and total timeouts, its
// retries of a read) run on one steady_timer, moved only earlier: a wait
// that ends before curl's new due time finds it and waits again.
//
// Thread-safety: none; everything runs on the loop's thread, outside curl's
// callbacks (a transfer's `done` is called after curl returned).
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace switchboard::async {

class CurlLoop {
 public:
  explicit CurlLoop(boost::asio::io_context& io);
  // Ends the transfers still running (without calling their `done`) and
  // closes the cached connections.
  ~CurlLoop();
  CurlLoop(const CurlLoop&) = delete;
  CurlLoop& operator=(const CurlLoop&) = delete;

  // Starts the transfer set up on `easy` (in no multi). `done` is called on
  // the loop's thread once it ended, with curl's code, after `easy` left the
  // multi; it must not throw. false: curl refused the handle.
  bool start(CURL* easy, std::function<void(CURLcode)> done);
  // Ends the transfer on `easy` now (a transfer cut short closes its
  // connection); its `done` is not called. Nothing when it is not running.
  void stop(CURL* easy);
  // Set on every easy handle before start(): curl's socket closes tell the
  // loop first, so the reactor never holds a closed descriptor; and the
  // handle shares the loop's TLS session and DNS caches, so a new connection
  // to a host resumes its TLS session instead of a full handshake.
  static void prepare(CURL* easy, CurlLoop& loop);
  // Undoes prepare() once the handle left the multi (curl_easy_reset keeps a share).
  static void unprepare(CURL* easy);

 private:
  struct Socket;
  static int on_socket(CURL* easy, curl_socket_t fd, int what, void* self, void* socket);
  static int on_timer(CURLM* multi, long timeout_ms, void* self);
  static int on_close(void* self, curl_socket_t fd);
  // Makes sure a wait of timer_ ends no later than `due`.
  void arm(std::chrono::steady_clock::time_point due);
  void watch(const std::shared_ptr<Socket>& socket);
  void forget(curl_socket_t fd);
  // curl_multi_socket_action, then the `done` of every transfer it ended.
  void act(curl_socket_t fd, int events);

  boost::asio::io_context& io_;
  CURLM* multi_;
  CURLSH* share_;  // TLS sessions and DNS answers (one thread: no locks)
  boost::asio::steady_timer timer_;
  std::optional<std::chrono::steady_clock::time_point> due_;  // when curl wants its timeout action
  bool armed_ = false;  // a wait of timer_ is queued, ending at armed_until_
  std::chrono::steady_clock::time_point armed_until_;
  bool starting_ = false;  // in start()'s curl_multi_add_handle
  std::unordered_map<CURL*, std::function<void(CURLcode)>> running_;
  std::unordered_map<curl_socket_t, std::shared_ptr<Socket>> sockets_;
};

}  // namespace switchboard::async
