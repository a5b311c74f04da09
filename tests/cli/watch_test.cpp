// `switchboard watch`: the foreground watcher and its SIGHUP reload, driven as
// a real child process.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "test_util.h"

#ifdef SWITCHBOARD_CLI

namespace {

using switchboard::testing::TempDir;
using Clock = std::chrono::steady_clock;

// A running `switchboard watch`, its stdout+stderr read through a pipe.
class WatchProcess {
 public:
  WatchProcess(const std::string& dir, std::vector<std::string> args) {
    int fds[2];
    REQUIRE(pipe(fds) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      if (chdir(dir.c_str()) != 0) _exit(127);
      std::vector<char*> argv;
      static std::string cli = SWITCHBOARD_CLI;
      argv.push_back(cli.data());
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(cli.c_str(), argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_fd_ = fds[0];
    fcntl(out_fd_, F_SETFL, O_NONBLOCK);
  }
  ~WatchProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(out_fd_);
  }

  // Reads output until it contains `text` or `timeout` passes.
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (output_.find(text) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[4096];
      const ssize_t n = read(out_fd_, buf, sizeof buf);
      if (n > 0) output_.append(buf, static_cast<size_t>(n));
      if (n == 0) return output_.find(text) != std::string::npos;  // the process closed its output
    }
    return true;
  }

  void signal(int sig) { kill(pid_, sig); }

  // Waits for the exit; returns the exit code (-1 if killed by a signal).
  int wait_exit() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  const std::string& output() const { return output_; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  std::string output_;
};

const char* kCheap = R"lua(function classify(step, ctx) return "cheap" end
)lua";
const char* kPremium = R"lua(function classify(step, ctx) return "premium" end
)lua";

}  // namespace

TEST_CASE("cli: watch --manual reloads on SIGHUP and prints the activation") {
  TempDir dir;
  dir.write("rules/w.lua", kCheap);
  switchboard::testing::write_small_config(dir);
  WatchProcess watch(dir.path().string(), {"watch", "--manual"});
  REQUIRE_MESSAGE(watch.wait_for("SIGHUP reloads", std::chrono::seconds(10)), watch.output());
  CHECK(watch.output().find("serving   w rules/w.lua") != std::string::npos);

  dir.write("rules/w.lua", kPremium);
  watch.signal(SIGHUP);
  REQUIRE_MESSAGE(watch.wait_for("activated w rules/w.lua", std::chrono::seconds(10)), watch.output());

  // A broken edit is rejected with its location; the old version keeps serving.
  dir.write("rules/w.lua", "function classify(step, ctx)\n  return {\nend\n");
  watch.signal(SIGHUP);
  REQUIRE_MESSAGE(watch.wait_for("rules/w.lua:3:", std::chrono::seconds(10)), watch.output());
  CHECK(watch.output().find("rejected  w rules/w.lua") != std::string::npos);
  CHECK(watch.output().find("still serving") != std::string::npos);

  // The same broken text is not reported twice; a reload with nothing new says so.
  watch.signal(SIGHUP);
  REQUIRE_MESSAGE(watch.wait_for("no rules file changed", std::chrono::seconds(10)), watch.output());

  watch.signal(SIGTERM);
  CHECK(watch.wait_exit() == 0);
}

TEST_CASE("cli: watch shows an edit saved by rename go live within a second") {
  TempDir dir;
  dir.write("rules/w.lua", kCheap);
  switchboard::testing::write_small_config(dir);
  WatchProcess watch(dir.path().string(), {"watch", "--debounce-ms", "50", "--poll-ms", "5000"});
  REQUIRE_MESSAGE(watch.wait_for("SIGHUP reloads", std::chrono::seconds(10)), watch.output());

  const auto saved = Clock::now();
  dir.write("rules/.w.lua.swp", kPremium);
  std::filesystem::rename(dir.path() / "rules/.w.lua.swp", dir.path() / "rules/w.lua");
  REQUIRE_MESSAGE(watch.wait_for("activated w rules/w.lua", std::chrono::seconds(5)), watch.output());
  // A bound, not a benchmark: inotify plus the 50 ms debounce, far under a second.
  CHECK(Clock::now() - saved < std::chrono::seconds(1));

  watch.signal(SIGINT);
  CHECK(watch.wait_exit() == 0);
}

#endif  // SWITCHBOARD_CLI
