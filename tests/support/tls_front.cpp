// TLS for tests (tls_front.h): certificates made with OpenSSL's own API, and
// a front that runs a thread per connection with blocking OpenSSL calls.
#include "support/tls_front.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace switchboard::testing {

namespace {

struct Free {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  void operator()(X509* cert) const { X509_free(cert); }
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;

void need(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test TLS: ") + what + " failed");
}

void add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  need(ext != nullptr, value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

// A certificate for `key`, named `common_name`, signed by `issuer` (null:
// by itself) with `issuer_key`.
Cert make_certificate(EVP_PKEY* key, const char* common_name, X509* issuer, EVP_PKEY* issuer_key, bool is_ca,
                      const char* names) {
  static std::atomic<long> serial{1};
  Cert cert(X509_new());
  need(cert != nullptr, "X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  add_extension(cert.get(), signer, NID_subject_key_identifier, "hash");
  if (is_ca) {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    add_extension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_extension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    add_extension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    add_extension(cert.get(), signer, NID_subject_alt_name, names);
  }
  if (issuer != nullptr) add_extension(cert.get(), signer, NID_authority_key_identifier, "keyid:always");
  need(X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

Key make_key() {
  Key key(EVP_EC_gen("P-256"));
  need(key != nullptr, "EVP_EC_gen");
  return key;
}

// The test run's CA and the certificates the fronts serve.
struct Authority {
  std::filesystem::path folder;
  std::string bundle;  // the CA's PEM file
  Key ca_key = make_key();
  Cert ca = make_certificate(ca_key.get(), "switchboard test CA", nullptr, nullptr, true, nullptr);
  Key server_key = make_key();
  Cert server = make_certificate(server_key.get(), "localhost", ca.get(), ca_key.get(), false,
                                 "DNS:localhost,IP:127.0.0.1,DNS:0.slow-lookup.test");
  Key stranger_key = make_key();
  Cert stranger = make_certificate(stranger_key.get(), "localhost", nullptr, nullptr, false, "DNS:localhost");

  Authority() {
    char templ[] = "/tmp/switchboard-test-ca-XXXXXX";
    need(mkdtemp(templ) != nullptr, "mkdtemp");
    folder = templ;
    bundle = (folder / "ca.pem").string();
    FILE* out = std::fopen(bundle.c_str(), "w");
    need(out != nullptr, "writing the CA bundle");
    PEM_write_X509(out, ca.get());
    std::fclose(out);
  }
  ~Authority() {
    std::error_code ignored;
    std::filesystem::remove_all(folder, ignored);
  }
};

Authority& authority() {
  static Authority made;
  return made;
}

}  // namespace

const std::string& trust_test_ca() {
  static const std::string& bundle = [] () -> const std::string& {
    const std::string& path = authority().bundle;
    ::setenv("SSL_CERT_FILE", path.c_str(), 1);
    return path;
  }();
  return bundle;
}

struct TlsFront::Context {
  std::unique_ptr<SSL_CTX, Free> ctx;
};

TlsFront::TlsFront(unsigned short backend_port, Certificate certificate, WhenIdle when_idle)
    : context_(std::make_unique<Context>()), backend_port_(backend_port), when_idle_(when_idle) {
  trust_test_ca();
  Authority& made = authority();
  context_->ctx.reset(SSL_CTX_new(TLS_server_method()));
  need(context_->ctx != nullptr, "SSL_CTX_new");
  SSL_CTX* ctx = context_->ctx.get();
  const bool ours = certificate == Certificate::kTestCa;
  need(SSL_CTX_use_certificate(ctx, ours ? made.server.get() : made.stranger.get()) == 1, "use_certificate");
  need(SSL_CTX_use_PrivateKey(ctx, ours ? made.server_key.get() : made.stranger_key.get()) == 1, "use_PrivateKey");
  static const unsigned char kId[] = "switchboard-test";
  SSL_CTX_set_session_id_context(ctx, kId, sizeof kId - 1);

  listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
  need(listener_ >= 0, "socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  need(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0, "bind");
  need(::listen(listener_, 64) == 0, "listen");
  socklen_t length = sizeof address;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
  port_ = ntohs(address.sin_port);
  acceptor_ = std::thread([this] { accept_loop(); });
}

TlsFront::~TlsFront() {
  stopping_ = true;
  ::shutdown(listener_, SHUT_RDWR);  // wakes the accept
  acceptor_.join();
  ::close(listener_);
}

std::string TlsFront::url(const std::string& path) const {
  return "https://localhost:" + std::to_string(port_) + path;
}

void TlsFront::accept_loop() {
  for (;;) {
    const int client = ::accept(listener_, nullptr, nullptr);
    if (client < 0 || stopping_) {
      if (client >= 0) ::close(client);
      break;
    }
    connections_.emplace_back([this, client] { pass_on(client); });
  }
  for (std::thread& t : connections_) t.join();
}

// One connection: the handshake, then bytes both ways until either side
// closes or the front stops (checked every 50 ms).
void TlsFront::pass_on(int client) {
  std::unique_ptr<SSL, Free> ssl(SSL_new(context_->ctx.get()));
  SSL_set_fd(ssl.get(), client);
  if (SSL_accept(ssl.get()) != 1) {
    refused_++;
    ERR_clear_error();
    ::close(client);
    return;
  }
  handshakes_++;
  if (SSL_session_reused(ssl.get()) == 1) resumed_++;
  const int backend = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(backend_port_);
  if (::connect(backend, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(backend);
    ::close(client);
    return;
  }
  // No Nagle delay on either side: a client that sends its request in two
  // records must not wait for a delayed acknowledgement here.
  const int one = 1;
  ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  ::setsockopt(backend, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char buffer[16 * 1024];
  bool idle_said = false;  // this idle spell's KeyUpdate went out
  while (!stopping_) {
    pollfd fds[2] = {{client, POLLIN, 0}, {backend, POLLIN, 0}};
    const bool pending = SSL_pending(ssl.get()) > 0;
    if (!pending && ::poll(fds, 2, 50) <= 0) {
      if (when_idle_ == WhenIdle::kKeyUpdate && !idle_said) {
        idle_said = true;
        SSL_key_update(ssl.get(), SSL_KEY_UPDATE_NOT_REQUESTED);
        SSL_do_handshake(ssl.get());  // sends it
      }
      continue;
    }
    idle_said = false;
    if (pending || (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const int n = SSL_read(ssl.get(), buffer, sizeof buffer);
      if (n <= 0) break;  // the client closed
      if (::send(backend, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n) {
        // The server hung up mid-request: close_notify and FIN, then (at the
        // close, with the rest of the request unread) a reset, as a server does.
        SSL_shutdown(ssl.get());
        ::shutdown(client, SHUT_WR);
        break;
      }
    }
    if ((fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      const ssize_t n = ::recv(backend, buffer, sizeof buffer, 0);
      if (n <= 0) {  // the server closed: so does the front, as a balancer would (close_notify, FIN)
        SSL_shutdown(ssl.get());
        ::shutdown(client, SHUT_WR);
        break;
      }
      if (SSL_write(ssl.get(), buffer, static_cast<int>(n)) != n) break;
    }
  }
  ERR_clear_error();
  ::close(backend);
  ::close(client);
}

}  // namespace switchboard::testing
