// A real redis-server (Debian's redis-server package) for the suites that
// share state through Redis: started on 127.0.0.1 on a free port with its
// files in a temporary directory and no persistence, and always stopped
// (SIGTERM, then SIGKILL) when this goes away, whatever the test did.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "test_util.h"

namespace switchboard::testing {

class RedisServer {
 public:
  /// Starts the server; `ok()` says whether it answers PING (log() says why not).
  RedisServer() { start(); }
  /// Starts one that takes commands only after AUTH `password` (requirepass).
  explicit RedisServer(std::string password) : password_(std::move(password)) { start(); }
  ~RedisServer() { stop(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  bool ok() const { return pid_ > 0; }
  std::uint16_t port() const { return port_; }
  /// "redis://127.0.0.1:PORT", for [state] redis_url.
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  /// What the server logged (its log file in the temporary directory).
  std::string log() const {
    std::ifstream in(dir_.path() / "redis.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  /// Stops the server (SIGTERM, SIGKILL after 5 s); its port stays reserved for restart().
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (waitpid(pid_, nullptr, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }
  /// Starts it again, empty (no persistence), on the same port.
  bool restart() {
    stop();
    return launch(port_);
  }

 private:
  void start() {
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) launch(free_port());
  }

  static std::uint16_t free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    std::uint16_t port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port = ntohs(a.sin_port);
    }
    close(fd);
    return port;
  }

  // Whether something on `port` answers PING with PONG (or, with a
  // password required, refuses it for want of AUTH).
  static bool pong(std::uint16_t port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    bool ok = false;
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && write(fd, "PING\r\n", 6) == 6) {
      pollfd p{fd, POLLIN, 0};
      char buf[16] = {};
      ok = poll(&p, 1, 1000) > 0 && read(fd, buf, sizeof buf - 1) > 0 && (std::string(buf).rfind("+PONG", 0) == 0 || std::string(buf).rfind("-NOAUTH", 0) == 0);
    }
    close(fd);
    return ok;
  }

  bool launch(std::uint16_t port) {
    if (port == 0) return false;
    port_ = port;
    std::vector<std::string> args = {"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--dir", dir_.path().string(),
                                     "--logfile", (dir_.path() / "redis.log").string(), "--daemonize", "no"};
    if (!password_.empty()) {
      args.push_back("--requirepass");
      args.push_back(password_);
    }
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      execvp("redis-server", argv.data());
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {  // exited: not installed, or the port was taken
        pid_ = -1;
        return false;
      }
      if (pong(port)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    stop();
    return false;
  }

  std::string password_;
  TempDir dir_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

}  // namespace switchboard::testing
