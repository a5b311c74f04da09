// fake_provider: the test suites' FakeProvider (fake_provider.h) as a program,
// for the gateway benchmark. Prints "listening on 127.0.0.1:PORT" as its first
// line, serves until SIGTERM or SIGINT, then exits 0. With --tls 1, a TLS
// front (support/tls_front.h) passes https on to it, and a second line says
// "https on localhost:PORT, trusting CA_BUNDLE" (point SSL_CERT_FILE at it).
//
//   fake_provider [--port N] [--latency-ms N] [--threads N] [--fixtures DIR] [--stream-chunks N] [--scripts FILE]
//                 [--tls 0|1]
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <memory>
#include <string_view>

#include <pthread.h>

#include "fake_provider.h"
#include "support/tls_front.h"

namespace {

bool parse_int(std::string_view text, long long min, long long max, long long& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && out >= min && out <= max;
}

int usage(const char* problem) {
  std::fprintf(stderr,
               "fake_provider: %s\n"
               "usage: fake_provider [--port N] [--latency-ms N] [--threads N] [--fixtures DIR] [--stream-chunks N] [--scripts FILE] [--tls 0|1]\n",
               problem);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  switchboard::testing::FakeProviderOptions options;
  options.record_requests = false;  // nobody can read them, and a benchmark would pile them up
  bool tls = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("usage: fake_provider [--port N] [--latency-ms N] [--threads N] [--fixtures DIR] [--stream-chunks N] [--scripts FILE] [--tls 0|1]\n");
      return 0;
    }
    if (i + 1 >= argc) return usage("every option takes a value");
    const std::string_view value = argv[++i];
    long long n = 0;
    if (flag == "--port") {
      if (!parse_int(value, 0, 65535, n)) return usage("--port takes 0..65535");
      options.port = static_cast<std::uint16_t>(n);
    } else if (flag == "--latency-ms") {
      if (!parse_int(value, 0, 3'600'000, n)) return usage("--latency-ms takes a count of milliseconds");
      options.latency = std::chrono::milliseconds(n);
    } else if (flag == "--threads") {
      if (!parse_int(value, 1, 256, n)) return usage("--threads takes 1..256");
      options.threads = static_cast<int>(n);
    } else if (flag == "--fixtures") {
      options.fixtures_dir = std::string(value);
    } else if (flag == "--scripts") {
      options.scripts_file = std::string(value);
    } else if (flag == "--stream-chunks") {
      if (!parse_int(value, 0, 100'000, n)) return usage("--stream-chunks takes 0..100000");
      options.stream_chunks = static_cast<int>(n);
    } else if (flag == "--tls") {
      if (value != "0" && value != "1") return usage("--tls takes 0 or 1");
      tls = value == "1";
    } else {
      return usage("unknown option");
    }
  }

  // Block the stop signals before any thread starts, so every thread
  // inherits the mask and only sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    const auto fake = switchboard::testing::FakeProvider::start(options);
    std::printf("listening on 127.0.0.1:%u\n", static_cast<unsigned>(fake->port()));
    std::unique_ptr<switchboard::testing::TlsFront> front;
    if (tls) {
      front = std::make_unique<switchboard::testing::TlsFront>(fake->port());
      std::printf("https on localhost:%u, trusting %s\n", static_cast<unsigned>(front->port()),
                  switchboard::testing::trust_test_ca().c_str());
    }
    std::fflush(stdout);
    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fake_provider: %s\n", e.what());
    return 1;
  }
  return 0;
}
