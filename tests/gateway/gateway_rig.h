// What the gateway suites share (gateway_test.cpp, hostile_http_test.cpp,
// memory_test.cpp): switchboard-gateway as a child process on 127.0.0.1, HTTP
// through libcurl, and raw sockets for what curl will not send.
#pragma once

#include <arpa/inet.h>
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifdef SWITCHBOARD_GATEWAY

extern char** environ;

namespace switchboard::testing {

// ---------------------------------------------------------------------------
// The child process

// A running switchboard-gateway on 127.0.0.1 (port 0: a free one), killed
// when this goes away, whatever the test did.
class GatewayProcess {
 public:
  GatewayProcess(const std::string& config, const std::vector<std::pair<std::string, std::string>>& env = {}) {
    int out[2];
    int err[2];
    REQUIRE(pipe(out) == 0);
    REQUIRE(pipe(err) == 0);
    // The environment, built before fork: the child only execs.
    std::vector<std::string> vars;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string var = *e;
      const std::string name = var.substr(0, var.find('='));
      bool replaced = name == "OPENAI_API_KEY" || name == "ANTHROPIC_API_KEY" || name == "GEMINI_API_KEY";
      for (const auto& [n, v] : env) replaced = replaced || n == name;
      if (!replaced) vars.push_back(var);
    }
    for (const auto& [n, v] : env) vars.push_back(n + "=" + v);
    std::vector<char*> envp;
    for (std::string& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    std::string program = SWITCHBOARD_GATEWAY;
    std::vector<std::string> args = {program, "--config", config, "--listen", "127.0.0.1:0", "--threads", "2"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      close(out[0]);
      close(out[1]);
      close(err[0]);
      close(err[1]);
      execve(program.c_str(), argv.data(), envp.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    fcntl(err_fd_, F_SETFL, O_NONBLOCK);

    // The first line of stdout says where it listens.
    std::string line;
    char ch = 0;
    pollfd p{out_fd_, POLLIN, 0};
    while (poll(&p, 1, 10'000) > 0 && read(out_fd_, &ch, 1) == 1 && ch != '\n') line += ch;
    const std::string prefix = "listening on 127.0.0.1:";
    REQUIRE_MESSAGE(line.rfind(prefix, 0) == 0, "stdout: ", line, "\nstderr: ", read_log());
    url_ = "http://127.0.0.1:" + line.substr(prefix.size());
  }

  ~GatewayProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_fd_);
    close(err_fd_);
  }
  GatewayProcess(const GatewayProcess&) = delete;
  GatewayProcess& operator=(const GatewayProcess&) = delete;

  const std::string& url() const { return url_; }
  std::uint16_t port() const { return static_cast<std::uint16_t>(std::stoi(url_.substr(url_.rfind(':') + 1))); }
  pid_t pid() const { return pid_; }
  void signal(int sig) const { kill(pid_, sig); }
  // Whether the process still runs (it has not exited or been killed).
  bool alive() {
    if (pid_ <= 0) return false;
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;
    return pid_ > 0;
  }

  // Everything logged so far (stderr).
  const std::string& read_log() {
    char buf[4096];
    for (ssize_t n; (n = read(err_fd_, buf, sizeof buf)) > 0;) log_.append(buf, static_cast<size_t>(n));
    return log_;
  }

  // Waits until the log holds `text`.
  bool wait_for_log(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (read_log().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
  }

  // Waits for the exit; its code, or -1 when killed by a signal or still running after `timeout`.
  int wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
    read_log();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string url_;
  std::string log_;
};

// ---------------------------------------------------------------------------
// HTTP

struct Reply {
  CURLcode code = CURLE_OK;
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased; trailers included
  std::string body;

  std::string header(const std::string& name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return "";
  }
};

inline size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

inline size_t on_header(char* data, size_t size, size_t n, void* user) {
  std::string line(data, size * n);
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) value.pop_back();
    static_cast<Reply*>(user)->headers.emplace_back(std::move(name), std::move(value));
  }
  return size * n;
}

// One request; a POST when `body` is set.
inline Reply http(const std::string& method, const std::string& url, const std::string& body = "",
                  const std::vector<std::string>& headers = {}, long timeout_ms = 10'000) {
  Reply r;
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  curl_slist* raw = nullptr;
  for (const std::string& h : headers) raw = curl_slist_append(raw, h.c_str());
  raw = curl_slist_append(raw, "Content-Type: application/json");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> list(raw, curl_slist_free_all);
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl.get(), CURLOPT_HEADERDATA, &r);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  r.code = curl_easy_perform(curl.get());
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &r.status);
  return r;
}

inline Reply post(const std::string& url, const std::string& body, const std::vector<std::string>& headers = {},
                  long timeout_ms = 10'000) {
  return http("POST", url, body, headers, timeout_ms);
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// An x-switchboard-overhead-ms value (milliseconds with exactly three
// decimals, "0.042") as a number; -1 when it is not one.
inline double overhead_ms(const std::string& value) {
  const std::size_t dot = value.find('.');
  if (dot == std::string::npos || dot == 0 || value.size() != dot + 4) return -1;
  for (std::size_t i = 0; i < value.size(); ++i) {
    if (i != dot && !std::isdigit(static_cast<unsigned char>(value[i]))) return -1;
  }
  return std::stod(value);
}

// Every value of the header (or trailer) `name` in `r`, in the order received.
inline std::vector<std::string> header_values(const Reply& r, const std::string& name) {
  std::vector<std::string> values;
  for (const auto& [n, v] : r.headers) {
    if (n == name) values.push_back(v);
  }
  return values;
}

// The value of the Prometheus sample `series` (name and labels, exactly as
// rendered) in a GET /metrics body; 0 when absent.
inline double metric_value(const std::string& metrics, const std::string& series) {
  const std::string prefix = "\n" + series + " ";
  const std::size_t at = ("\n" + metrics).find(prefix);
  if (at == std::string::npos) return 0;
  const std::size_t start = at + prefix.size() - 1;  // in `metrics`, which lacks the leading newline
  return std::stod(metrics.substr(start, metrics.find('\n', start) - start));
}

// ---------------------------------------------------------------------------
// Raw sockets

// A TCP connection to 127.0.0.1:port, closed when this goes away; -1 when it failed.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  // Closes the connection now (a client that goes away).
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Sends every byte; false when the peer closed.
  bool send_all(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Reads until the peer closes, `enough` says the bytes so far suffice, or
  // `timeout` passes; everything read.
  template <typename Enough>
  std::string read(std::chrono::milliseconds timeout, Enough enough) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string got;
    char buf[16384];
    while (!enough(got)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
  }
  // Whether the peer closed the connection (EOF or reset), without waiting.
  bool peer_closed() {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return false;
    char c = 0;
    const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n <= 0;
  }
  std::string read_until_closed(std::chrono::milliseconds timeout) {
    return read(timeout, [](const std::string&) { return false; });
  }

 private:
  int fd_ = -1;
};

// One HTTP/1.1 response, parsed from raw bytes.
struct RawResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;
  std::size_t size = 0;  // the bytes it took, head and body

  std::string header(const std::string& name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return "";
  }
};

// The first whole response in `bytes` (Content-Length framed, as the
// gateway's error answers are); status 0 when there is none.
inline RawResponse parse_raw_response(std::string_view bytes) {
  RawResponse r;
  const std::size_t head_end = bytes.find("\r\n\r\n");
  if (head_end == std::string_view::npos || bytes.substr(0, 9).substr(0, 5) != "HTTP/") return r;
  const std::string_view head = bytes.substr(0, head_end);
  std::size_t line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  std::size_t length = 0;
  while (line_end != std::string_view::npos) {
    const std::size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string_view line = head.substr(start, line_end == std::string_view::npos ? line_end : line_end - start);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value(line.substr(colon + 1));
    value.erase(0, value.find_first_not_of(' '));
    if (name == "content-length") length = std::stoul(value);
    r.headers.emplace_back(std::move(name), std::move(value));
  }
  if (bytes.size() < head_end + 4 + length) return r;
  r.status = std::stoi(std::string(status_line.substr(9, 3)));
  r.body = std::string(bytes.substr(head_end + 4, length));
  r.size = head_end + 4 + length;
  return r;
}

// Sends `request` on a new connection and reads the first response (or
// until the gateway closes, or 10 s).
inline RawResponse raw_exchange(std::uint16_t port, std::string_view request) {
  RawConnection c(port);
  REQUIRE(c.ok());
  c.send_all(request);
  const std::string got =
      c.read(std::chrono::milliseconds(10'000), [](const std::string& s) { return parse_raw_response(s).status != 0; });
  return parse_raw_response(got);
}

// The process's peak resident set (VmHWM of /proc/PID/status), in bytes; 0 when unknown.
inline std::int64_t peak_rss_bytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:   1234 kB"
  }
  return 0;
}

}  // namespace switchboard::testing

#endif  // SWITCHBOARD_GATEWAY
