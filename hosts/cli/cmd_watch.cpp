// switchboard watch: serve the rules with the directory watcher on and print
// each activation or rejection as it happens. SIGHUP reloads by hand;
// SIGINT or SIGTERM stops.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>

#include "commands.h"
#include "switchboard/switchboard.h"

namespace switchboard::cli {

namespace {

struct WatchOptions {
  std::string config_path = "switchboard.toml";
  bool manual = false;
  int debounce_ms = 150;
  int poll_ms = 2000;
};

std::string clock_text(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string short_version(const std::string& v) { return v.substr(0, 12); }

void print_event(const ReloadEvent& e) {
  if (e.shadow) {
    if (e.kind == ReloadEvent::Kind::kActivated) {
      std::printf("%s shadow    %s %s %s (was %s)\n", clock_text(e.at).c_str(), e.workload.c_str(),
                  e.rules_path.c_str(), short_version(e.version).c_str(),
                  e.previous_version.empty() ? "none" : short_version(e.previous_version).c_str());
    } else {
      std::printf("%s rejected  %s %s (shadow)\n    %s\n    no shadow evaluation until it loads\n",
                  clock_text(e.at).c_str(), e.workload.c_str(), e.rules_path.c_str(), e.error.c_str());
    }
  } else if (e.kind == ReloadEvent::Kind::kActivated) {
    std::printf("%s activated %s %s %s (was %s)\n", clock_text(e.at).c_str(), e.workload.c_str(),
                e.rules_path.c_str(), short_version(e.version).c_str(), short_version(e.previous_version).c_str());
  } else {
    std::printf("%s rejected  %s %s\n    %s\n    still serving %s\n", clock_text(e.at).c_str(),
                e.workload.c_str(), e.rules_path.c_str(), e.error.c_str(),
                short_version(e.previous_version).c_str());
  }
  std::fflush(stdout);
}

int run_watch(const WatchOptions& o) {
  // Signals are taken synchronously by this thread: block them before the
  // engine starts its threads, which inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  EngineOptions options;
  options.watch_rules = !o.manual;
  options.watch_debounce = std::chrono::milliseconds(o.debounce_ms);
  options.watch_poll_interval = std::chrono::milliseconds(o.poll_ms);
  options.on_reload = print_event;
  auto engine = Engine::open_file(o.config_path, std::move(options));
  if (!engine.ok()) {
    std::cerr << engine.status().message() << "\n";
    return 2;
  }
  size_t files = 0;
  for (const WorkloadStatus& s : (*engine)->status()) {
    files += s.shadow_rules_path.empty() ? 1 : 2;
    std::printf("%s serving   %s %s %s\n", clock_text(s.activated_at).c_str(), s.workload.c_str(),
                s.rules_path.c_str(), short_version(s.version).c_str());
    if (s.shadow_error) {
      std::printf("%s rejected  %s %s (shadow)\n    %s\n    no shadow evaluation until it loads\n",
                  clock_text(s.shadow_error_at).c_str(), s.workload.c_str(), s.shadow_rules_path.c_str(),
                  s.shadow_error->c_str());
    } else if (!s.shadow_rules_path.empty()) {
      std::printf("%s shadow    %s %s %s\n", clock_text(s.shadow_activated_at).c_str(), s.workload.c_str(),
                  s.shadow_rules_path.c_str(), short_version(s.shadow_version).c_str());
    }
  }
  std::printf("watching %zu rules files%s; SIGHUP reloads, Ctrl-C stops\n", files,
              o.manual ? " (manual: SIGHUP only)" : "");
  std::fflush(stdout);
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) return 1;
    if (sig == SIGHUP) {
      if ((*engine)->reload().empty()) {
        std::printf("%s reload: no rules file changed\n", clock_text(std::chrono::system_clock::now()).c_str());
        std::fflush(stdout);
      }
      continue;
    }
    return 0;
  }
}

}  // namespace

Command add_watch(CLI::App& app) {
  auto* cmd = app.add_subcommand("watch", "Serve the rules and print each activation or rejection as files change");
  auto o = std::make_shared<WatchOptions>();
  cmd->add_option("--config", o->config_path, "Configuration file")->capture_default_str();
  cmd->add_flag("--manual", o->manual, "Do not watch files; reload only on SIGHUP");
  cmd->add_option("--debounce-ms", o->debounce_ms, "Quiet time after a change before reloading")
      ->capture_default_str()->check(CLI::Range(0, 60000));
  cmd->add_option("--poll-ms", o->poll_ms, "Content-hash poll period behind inotify")
      ->capture_default_str()->check(CLI::Range(10, 3600000));
  return [o]() { return run_watch(*o); };
}

}  // namespace switchboard::cli
