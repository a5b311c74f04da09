// A TCP listener on 127.0.0.1 that never reads nor answers, for the tests of
// what a client does when its server goes quiet: with `accepting` a connect
// succeeds (the kernel completes it) and the reply never comes; without, the
// accept queue is filled first, so the kernel drops further SYNs and a
// connect hangs until its caller gives up. Closed when this goes away.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

namespace switchboard::testing {

class SilentServer {
 public:
  explicit SilentServer(bool accepting = true) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(fd_, accepting ? 16 : 0) == 0);
    REQUIRE(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    if (accepting) return;
    for (int i = 0; i < 4; ++i) {  // in progress or done, each fills the queue
      const int f = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      connect(f, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers_.push_back(f);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~SilentServer() {
    for (int f : fillers_) close(f);
    close(fd_);
  }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::vector<int> fillers_;
};

}  // namespace switchboard::testing
