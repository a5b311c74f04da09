// CurlLoop: curl_multi_socket_action on asio's reactor and one steady_timer.
#include "async/curl_loop.h"

#include <unistd.h>

#include <chrono>
#include <new>
#include <utility>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <spdlog/spdlog.h>

namespace switchboard::async {

namespace {
using boost::asio::posix::descriptor_base;
using boost::system::error_code;
}  // namespace

// A socket curl asked the loop to watch. Its waits hold it weakly: once
// `gone` (curl forgot it, or the loop ends) a wait that completes does nothing.
struct CurlLoop::Socket {
  Socket(boost::asio::io_context& io, curl_socket_t socket) : descriptor(io), fd(socket) {}
  boost::asio::posix::stream_descriptor descriptor;  // does not own fd: released, never closed
  curl_socket_t fd;
  int what = 0;  // CURL_POLL_IN, _OUT or _INOUT: what curl waits for
  bool reading = false;  // a read wait is queued
  bool writing = false;  // a write wait is queued
  bool gone = false;
};

CurlLoop::CurlLoop(boost::asio::io_context& io)
    : io_(io), multi_(curl_multi_init()), share_(curl_share_init()), timer_(io) {
  if (multi_ == nullptr || share_ == nullptr) {
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
    if (share_ != nullptr) curl_share_cleanup(share_);
    throw std::bad_alloc();
  }
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &CurlLoop::on_socket);
  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &CurlLoop::on_timer);
  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this);
}

CurlLoop::~CurlLoop() {
  for (auto& [easy, done] : running_) curl_multi_remove_handle(multi_, easy);
  running_.clear();
  curl_multi_cleanup(multi_);  // closes the cached connections (on_close forgets them)
  curl_share_cleanup(share_);  // no handle uses it any more: each was reset or cleaned up
  for (auto& [fd, socket] : sockets_) {
    socket->gone = true;
    error_code ignored;
    socket->descriptor.cancel(ignored);
    socket->descriptor.release();
  }
}

void CurlLoop::prepare(CURL* easy, CurlLoop& loop) {
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION, &CurlLoop::on_close);
  curl_easy_setopt(easy, CURLOPT_CLOSESOCKETDATA, &loop);
  curl_easy_setopt(easy, CURLOPT_SHARE, loop.share_);
}

void CurlLoop::unprepare(CURL* easy) { curl_easy_setopt(easy, CURLOPT_SHARE, nullptr); }

bool CurlLoop::start(CURL* easy, std::function<void(CURLcode)> done) {
  running_.emplace(easy, std::move(done));
  starting_ = true;
  const CURLMcode added = curl_multi_add_handle(multi_, easy);
  starting_ = false;
  if (added != CURLM_OK) {
    running_.erase(easy);
    return false;
  }
  // Connect and send now, rather than one turn of the loop later (curl
  // asked for a zero timeout for it).
  due_.reset();
  act(CURL_SOCKET_TIMEOUT, 0);
  return true;
}

void CurlLoop::stop(CURL* easy) {
  if (running_.erase(easy) == 0) return;
  curl_multi_remove_handle(multi_, easy);
}

int CurlLoop::on_socket(CURL*, curl_socket_t fd, int what, void* self, void*) {
  auto* loop = static_cast<CurlLoop*>(self);
  if (what == CURL_POLL_REMOVE) {
    loop->forget(fd);
    return 0;
  }
  std::shared_ptr<Socket>& socket = loop->sockets_[fd];
  if (!socket) {
    socket = std::make_shared<Socket>(loop->io_, fd);
    error_code ec;
    socket->descriptor.assign(fd, ec);
    if (ec) {
      spdlog::error("curl loop: cannot watch socket {}: {}", fd, ec.message());
      loop->sockets_.erase(fd);
      return -1;  // curl fails the transfers on it
    }
  }
  socket->what = what;
  loop->watch(socket);
  return 0;
}

int CurlLoop::on_timer(CURLM*, long timeout_ms, void* self) {
  auto* loop = static_cast<CurlLoop*>(self);
  if (timeout_ms < 0) {
    loop->due_.reset();  // a wait still queued finds nothing due
    return 0;
  }
  const auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  loop->due_ = due;
  // start() acts as soon as curl_multi_add_handle returns: its zero timeout
  // needs no timer.
  if (timeout_ms == 0 && loop->starting_) return 0;
  loop->arm(due);
  return 0;
}

void CurlLoop::arm(std::chrono::steady_clock::time_point due) {
  // A queued wait that ends no later is kept: it finds the new due time when
  // it ends. Moving a wait earlier or later each time curl changes its mind
  // (several times a transfer) would reprogram the reactor's timer each time.
  if (armed_ && armed_until_ <= due) return;
  armed_ = true;
  armed_until_ = due;
  timer_.expires_at(due);
  timer_.async_wait([this](const error_code& ec) {
    if (ec) return;  // aborted: replaced by an earlier wait, or the loop is gone; `this` untouched
    armed_ = false;
    if (!due_) return;
    if (std::chrono::steady_clock::now() < *due_) {
      arm(*due_);  // curl moved its timeout later meanwhile
      return;
    }
    due_.reset();
    act(CURL_SOCKET_TIMEOUT, 0);
  });
}

int CurlLoop::on_close(void* self, curl_socket_t fd) {
  static_cast<CurlLoop*>(self)->forget(fd);
  return close(fd);
}

void CurlLoop::forget(curl_socket_t fd) {
  auto it = sockets_.find(fd);
  if (it == sockets_.end()) return;
  Socket& socket = *it->second;
  socket.gone = true;
  error_code ignored;
  socket.descriptor.cancel(ignored);
  socket.descriptor.release();  // out of the reactor before curl closes the number
  sockets_.erase(it);
}

void CurlLoop::watch(const std::shared_ptr<Socket>& socket) {
  const auto ready = [this](std::weak_ptr<Socket> weak, bool read) {
    return [this, weak = std::move(weak), read](const error_code& ec) {
      const std::shared_ptr<Socket> s = weak.lock();
      if (!s) return;
      (read ? s->reading : s->writing) = false;
      if (ec || s->gone) return;  // `this` is touched only while the socket is watched
      watch(s);                   // the next wait first: the reactor is edge-triggered
      act(s->fd, read ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
    };
  };
  if ((socket->what & CURL_POLL_IN) != 0 && !socket->reading) {
    socket->reading = true;
    socket->descriptor.async_wait(descriptor_base::wait_read, ready(socket, true));
  }
  if ((socket->what & CURL_POLL_OUT) != 0 && !socket->writing) {
    socket->writing = true;
    socket->descriptor.async_wait(descriptor_base::wait_write, ready(socket, false));
  }
}

void CurlLoop::act(curl_socket_t fd, int events) {
  int running = 0;
  curl_multi_socket_action(multi_, fd, events, &running);
  std::vector<std::pair<std::function<void(CURLcode)>, CURLcode>> ended;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* const easy = msg->easy_handle;
    const CURLcode code = msg->data.result;  // msg dies with the removal below
    auto it = running_.find(easy);
    if (it != running_.end()) {
      ended.emplace_back(std::move(it->second), code);
      running_.erase(it);
    }
    curl_multi_remove_handle(multi_, easy);
  }
  for (auto& [done, code] : ended) done(code);
}

}  // namespace switchboard::async
