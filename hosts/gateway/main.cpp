// switchboard-gateway: an OpenAI/Anthropic-compatible HTTP server that routes
// every request through the rules (gateway.h). Prints "listening on
// HOST:PORT" as its first line of stdout once it accepts connections.
//
//   switchboard-gateway [--config FILE] [--listen HOST:PORT] [--threads N]
//   switchboard-gateway --version
//
// SIGHUP reloads the config and the rules (a broken config is logged with its
// file:line and the old one keeps serving). SIGTERM or SIGINT: stop
// accepting, let the requests in flight finish (30 s at most), flush the
// ledger, exit 0.
#include <pthread.h>
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "gateway.h"
#include "http/server.h"

namespace {

using switchboard::gateway::Gateway;
using switchboard::gateway::Server;

constexpr std::chrono::seconds kDrainLimit{30};

constexpr const char* kUsage =
    "usage: switchboard-gateway [--config FILE] [--listen HOST:PORT] [--threads N]\n"
    "  --config FILE       configuration (default switchboard.toml)\n"
    "  --listen HOST:PORT  overrides [gateway] listen; port 0 picks a free one\n"
    "  --threads N         I/O threads (default [gateway] threads, else one per core)\n"
    "  --version           print the version and exit\n";

int usage(const std::string& problem) {
  std::fprintf(stderr, "switchboard-gateway: %s\n%s", problem.c_str(), kUsage);
  return 2;
}

bool parse_int(std::string_view text, int min, int max, int& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out >= min && out <= max;
}

// "HOST:PORT", "[IPV6]:PORT".
bool parse_listen(std::string_view text, std::string& host, int& port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  host = std::string(h);
  return parse_int(text.substr(colon + 1), 0, 65535, port);
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "switchboard.toml";
  std::string listen_host;
  int listen_port = -1;
  int threads = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("%s", kUsage);
      return 0;
    }
    if (flag == "--version") {
      std::printf("switchboard-gateway %s\n", switchboard::version());
      return 0;
    }
    if (i + 1 >= argc) return usage(std::string(flag) + " takes a value");
    const std::string_view value = argv[++i];
    if (flag == "--config") {
      config_path = std::string(value);
    } else if (flag == "--listen") {
      if (!parse_listen(value, listen_host, listen_port)) return usage("--listen takes HOST:PORT, e.g. 127.0.0.1:8080");
    } else if (flag == "--threads") {
      if (!parse_int(value, 1, 1024, threads)) return usage("--threads takes 1..1024");
    } else {
      return usage("unknown option " + std::string(flag));
    }
  }

  // The signals are taken by sigwait below: block them before any thread
  // starts (the engine's watcher and the I/O threads inherit the mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGHUP);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto log = std::make_shared<spdlog::logger>("switchboard-gateway", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  log->set_formatter(std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ %l %v",
                                                                 spdlog::pattern_time_type::utc));
  log->flush_on(spdlog::level::trace);

  auto opened = Gateway::open(config_path, log);
  if (!opened.ok()) {
    log->error("cannot start: {}", opened.status().message());
    return 2;
  }
  std::unique_ptr<Gateway> gateway = std::move(opened).value();
  const switchboard::GatewaySettings settings = gateway->settings();
  if (listen_port < 0) {
    listen_host = settings.listen_host;
    listen_port = settings.listen_port;
  }
  if (threads < 0)
    threads = settings.threads > 0 ? settings.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (threads < 1) threads = 1;

  Server server(*gateway, threads, settings.busy_poll);
  server.set_limits(switchboard::gateway::server_limits(settings));
  auto port = server.listen(listen_host, listen_port);
  if (!port.ok()) {
    log->error("cannot start: {}", port.status().message());
    return 2;
  }
  server.run();
  std::printf("listening on %s:%u\n", listen_host.c_str(), static_cast<unsigned>(*port));
  std::fflush(stdout);
  log->info("started: {} on {}:{}, {} I/O threads{}, at most {} model calls at once, ledger {}", config_path,
            listen_host, *port, threads,
            settings.busy_poll.count() > 0
                ? " busy-polling " + std::to_string(settings.busy_poll.count()) + " µs"
                : std::string(),
            settings.max_upstream_calls, settings.ledger);

  for (;;) {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) != 0) continue;
    if (signal_number != SIGHUP) break;
    const switchboard::Status reloaded = gateway->reload();
    if (reloaded.ok()) {
      server.set_limits(switchboard::gateway::server_limits(gateway->settings()));
      log->info("reloaded {}", config_path);
    } else {
      log->error("reload rejected: {}; still serving the previous config", reloaded.message());
    }
  }

  log->info("draining: no new connections; {} requests in flight", server.active());
  server.stop_accepting();
  const auto deadline = std::chrono::steady_clock::now() + kDrainLimit;
  while (server.active() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int abandoned = server.active();
  server.stop();
  const switchboard::Status flushed = gateway->flush_ledger();
  if (!flushed.ok()) log->error("the ledger did not flush: {}", flushed.message());
  if (abandoned > 0) {
    // Their model calls still wait on fibers; exit without unwinding them.
    log->warn("stopped after {} s with {} requests unanswered", kDrainLimit.count(), abandoned);
    std::fflush(nullptr);
    std::_Exit(flushed.ok() ? 0 : 1);
  }
  gateway.reset();  // the I/O threads are stopped: no fiber is left waiting
  log->info("stopped; ledger flushed");
  return flushed.ok() ? 0 : 1;
}
