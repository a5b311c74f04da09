// A PostgreSQL server of a test's own, from the Debian packages (postgresql):
// initdb on a temporary directory, then postgres listening on 127.0.0.1 at a
// free port with its unix socket in that directory, stopped when this goes
// away, whatever the test did. Nothing is needed on the machine beforehand
// but the package (scripts/deps.sh all). PostgreSQL refuses to run as root:
// as root (CI), initdb and postgres run as the user "nobody", which owns the
// directory.
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace switchboard::testing {

class PostgresServer {
 public:
  // The directory holding initdb and postgres: the newest under Debian's
  // /usr/lib/postgresql/VERSION/bin; "" when the package is not installed.
  static std::string bin_dir() {
    namespace fs = std::filesystem;
    std::string best;
    int best_version = -1;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      const std::string version = entry.path().filename().string();
      const int v = std::atoi(version.c_str());
      if (v > best_version && fs::exists(entry.path() / "bin" / "initdb", ec) &&
          fs::exists(entry.path() / "bin" / "postgres", ec)) {
        best_version = v;
        best = (entry.path() / "bin").string();
      }
    }
    return best;
  }

  // Starts a fresh server; REQUIREs that it came up.
  PostgresServer() : bin_(bin_dir()) {
    REQUIRE_MESSAGE(!bin_.empty(), "PostgreSQL is not installed (bash scripts/deps.sh all)");
    if (geteuid() == 0) {
      const passwd* pw = getpwnam("nobody");
      REQUIRE(pw != nullptr);
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      REQUIRE(chown(dir_.path().c_str(), uid_, gid_) == 0);
    }
    data_ = (dir_.path() / "data").string();
    const int rc = run_and_wait({bin_ + "/initdb", "-D", data_, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                                 "--locale=C", "--no-sync", "--no-instructions"},
                                (dir_.path() / "initdb.log").string());
    REQUIRE_MESSAGE(rc == 0, "initdb failed: ", read_file(dir_.path() / "initdb.log"));
    // A port found free may be taken before postgres binds it: try another.
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt) {
      port_ = free_port();
      launch();
    }
    REQUIRE_MESSAGE(pid_ > 0, "postgres did not start: ", read_file(dir_.path() / "postgres.log"));
  }

  ~PostgresServer() { stop(); }
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // postgresql://postgres@127.0.0.1:PORT/postgres
  std::string url() const { return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/postgres"; }
  int port() const { return port_; }
  bool running() const { return pid_ > 0; }

  // A fast shutdown (clients disconnected), waited for; SIGKILL after 15 s.
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGINT);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    int status = 0;
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }

  // Starts it again after stop(), on the same port and data; REQUIREs it came up.
  void start() {
    if (pid_ > 0) return;
    launch();
    REQUIRE_MESSAGE(pid_ > 0, "postgres did not restart: ", read_file(dir_.path() / "postgres.log"));
  }

  // Runs `sql` on the server; CHECKs it succeeded and returns the first
  // column of the first row ("" when none).
  std::string query(const std::string& sql) const {
    PGconn* conn = PQconnectdb(url().c_str());
    std::string value;
    if (PQstatus(conn) == CONNECTION_OK) {
      PGresult* r = PQexec(conn, sql.c_str());
      const ExecStatusType st = PQresultStatus(r);
      CHECK_MESSAGE((st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK), PQerrorMessage(conn));
      if (st == PGRES_TUPLES_OK && PQntuples(r) > 0) value = PQgetvalue(r, 0, 0);
      PQclear(r);
    } else {
      FAIL_CHECK("cannot connect: ", PQerrorMessage(conn));
    }
    PQfinish(conn);
    return value;
  }

 private:
  static std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  static int free_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
  }

  // Forks `args` (as nobody when root), its output to `log`; returns its pid.
  pid_t spawn(std::vector<std::string> args, const std::string& log) const {
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid != 0) return pid;
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    if (uid_ != static_cast<uid_t>(-1)) {
      if (setgroups(0, nullptr) != 0 || setgid(gid_) != 0 || setuid(uid_) != 0) _exit(126);
    }
    if (chdir(dir_.path().c_str()) != 0) _exit(126);
    execv(argv[0], argv.data());
    _exit(127);
  }

  int run_and_wait(std::vector<std::string> args, const std::string& log) const {
    const pid_t pid = spawn(std::move(args), log);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  // Starts postgres and waits (up to 20 s) until it accepts connections;
  // leaves pid_ at -1 when it exited instead (its port taken, say).
  void launch() {
    const pid_t pid = spawn({bin_ + "/postgres", "-D", data_, "-k", dir_.path().string(), "-h", "127.0.0.1", "-p",
                             std::to_string(port_), "-F", "-c", "max_connections=60", "-c",
                             "shared_buffers=16MB"},
                            (dir_.path() / "postgres.log").string());
    if (pid < 0) return;
    const std::string conninfo = url() + "?connect_timeout=2";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < deadline) {
      if (PQping(conninfo.c_str()) == PQPING_OK) {
        pid_ = pid;
        return;
      }
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) return;  // it exited
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }

  const std::string bin_;
  TempDir dir_;
  std::string data_;
  uid_t uid_ = static_cast<uid_t>(-1);
  gid_t gid_ = static_cast<gid_t>(-1);
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace switchboard::testing
