// TLS for tests: a certificate authority made for the test run, and a TLS
// front on 127.0.0.1 that passes each connection's bytes on to a plain
// server (a ScriptedServer, a FakeProvider), as a load balancer terminating
// TLS would.
//
//   TlsFront front(fake.port());      // trusts the test CA (trust_test_ca)
//   model.endpoint = front.url("/v1");  // https://localhost:PORT/v1
//   ... front.handshakes(), front.resumed()
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::testing {

// The test run's CA bundle (a PEM file in a temporary folder, made on first
// call), and SSL_CERT_FILE set to it, so that the engine trusts it
// (providers/tls_client.h). Call before the engine's first TLS call.
const std::string& trust_test_ca();

class TlsFront {
 public:
  enum class Certificate {
    kTestCa,      // signed by the test CA, for localhost, 127.0.0.1 and 0.slow-lookup.test
    kSelfSigned,  // a stranger's: self-signed, for localhost
  };

  // What the front sends on a connection that has been idle for 50 ms.
  enum class WhenIdle {
    kNothing,
    kKeyUpdate,  // a TLS 1.3 KeyUpdate (once per idle spell): bytes that carry no data
  };

  // Listens on 127.0.0.1 (a free port) and passes every connection on to
  // 127.0.0.1:`backend_port`.
  explicit TlsFront(unsigned short backend_port, Certificate certificate = Certificate::kTestCa,
                    WhenIdle when_idle = WhenIdle::kNothing);
  ~TlsFront();
  TlsFront(const TlsFront&) = delete;
  TlsFront& operator=(const TlsFront&) = delete;

  unsigned short port() const { return port_; }
  // "https://localhost:PORT" + path.
  std::string url(const std::string& path = "") const;

  int handshakes() const { return handshakes_.load(); }  // completed
  int resumed() const { return resumed_.load(); }        // of those, abbreviated (a session resumed)
  int refused() const { return refused_.load(); }        // handshakes that failed

 private:
  void accept_loop();
  void pass_on(int client);

  struct Context;
  std::unique_ptr<Context> context_;
  unsigned short backend_port_;
  WhenIdle when_idle_;
  unsigned short port_ = 0;
  int listener_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<int> handshakes_{0};
  std::atomic<int> resumed_{0};
  std::atomic<int> refused_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // the acceptor's own
};

}  // namespace switchboard::testing
