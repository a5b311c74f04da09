// TLS for the upstream calls (tls_client.h).
#include "providers/tls_client.h"

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <boost/asio/ip/address.hpp>

namespace switchboard {

namespace {

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

// OpenSSL's oldest reason on this thread's error queue, which is then cleared.
std::string openssl_reason() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return std::string();
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// The socket's BIO: OpenSSL's own (BIO_s_socket) writes with write(2), which
// raises SIGPIPE on a connection the peer closed, and a host embedding the
// engine may not ignore that signal; this one sends with MSG_NOSIGNAL, as
// Asio and curl do. The socket is non-blocking: EAGAIN is a retry.
int bio_write(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
  const ssize_t n = ::send(fd, data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
  if (n >= 0) return static_cast<int>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_write(bio);
  return -1;
}

int bio_read(BIO* bio, char* data, int size) {
  BIO_clear_retry_flags(bio);
  const int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
  const ssize_t n = ::recv(fd, data, static_cast<std::size_t>(size), 0);
  if (n > 0) return static_cast<int>(n);
  if (n == 0) {
    BIO_set_flags(bio, BIO_FLAGS_IN_EOF);  // BIO_eof: the peer closed (SSL_OP_IGNORE_UNEXPECTED_EOF reads it)
    return 0;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) BIO_set_retry_read(bio);
  return -1;
}

long bio_ctrl(BIO* bio, int command, long, void*) {
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is buffered here
    case BIO_CTRL_EOF:
      return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0 ? 1 : 0;
    default:
      return 0;
  }
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* socket_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "switchboard socket");
    if (m != nullptr) {
      BIO_meth_set_write(m, bio_write);
      BIO_meth_set_read(m, bio_read);
      BIO_meth_set_ctrl(m, bio_ctrl);
      BIO_meth_set_create(m, bio_create);
    }
    return m;
  }();
  return method;
}

// The process's client context, made on first use; null (with why) when it
// could not be.
struct ClientContext {
  SSL_CTX* ctx = nullptr;
  std::string failure;

  ClientContext() {
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) {
      failure = "cannot make a TLS context: " + openssl_reason();
      return;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    // A server that closes without close_notify ends the stream; HTTP's own
    // framing (a length, the last chunk) tells a whole answer from a cut one.
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Sessions are kept by the loops' pools (SSL_get1_session), not here.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);

    const auto [file, dir] = tls_trust();
    if (file.empty() && dir.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        failure = "cannot load the system's CA certificates: " + openssl_reason();
      }
    } else {
      if (SSL_CTX_load_verify_locations(ctx, file.empty() ? nullptr : file.c_str(),
                                        dir.empty() ? nullptr : dir.c_str()) != 1) {
        failure = "cannot load the CA certificates of '" + (file.empty() ? dir : file) + "': " + openssl_reason();
      }
    }
  }
};

const ClientContext& client_context() {
  static const ClientContext context;  // never freed: connections in any loop may hold it until the end
  return context;
}

}  // namespace

TlsTrust tls_trust() {
  TlsTrust trust{environment("SSL_CERT_FILE"), environment("SSL_CERT_DIR")};
  if (!trust.file.empty() || !trust.dir.empty()) return trust;
  const curl_version_info_data* curl = curl_version_info(CURLVERSION_NOW);
  if (curl != nullptr && curl->age >= CURLVERSION_SEVENTH) {
    if (curl->cainfo != nullptr) trust.file = curl->cainfo;
    if (curl->capath != nullptr) trust.dir = curl->capath;
  }
  return trust;
}

Result<async::Tls> tls_client(int fd, const std::string& server_name, SSL_SESSION* resume) {
  const ClientContext& context = client_context();
  // As curl's CURLE_SSL_CACERT_BADFILE: no retry cures it.
  if (!context.failure.empty()) return Status::upstream("HTTP transport: " + context.failure);
  async::Tls tls(SSL_new(context.ctx));
  BIO* bio = socket_method() != nullptr ? BIO_new(socket_method()) : nullptr;
  if (tls == nullptr || bio == nullptr) {
    BIO_free(bio);
    return Status::internal("cannot make a TLS connection: " + openssl_reason());
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
  SSL_set_bio(tls.get(), bio, bio);  // one reference, for both directions
  boost::system::error_code not_an_address;
  boost::asio::ip::make_address(server_name, not_an_address);
  if (not_an_address) {
    // A name: sent as SNI, and the certificate must carry it.
    if (SSL_set_tlsext_host_name(tls.get(), server_name.c_str()) != 1 || SSL_set1_host(tls.get(), server_name.c_str()) != 1) {
      return Status::internal("cannot set the TLS server name '" + server_name + "': " + openssl_reason());
    }
    SSL_set_hostflags(tls.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(tls.get()), server_name.c_str()) != 1) {
    return Status::internal("cannot check the TLS server address '" + server_name + "': " + openssl_reason());
  }
  if (resume != nullptr) SSL_set_session(tls.get(), resume);
  SSL_set_connect_state(tls.get());
  return tls;
}

std::string tls_failure(SSL* tls, int result, bool& certificate_refused) {
  certificate_refused = false;
  const int error = SSL_get_error(tls, result);
  if (const long verdict = SSL_get_verify_result(tls); verdict != X509_V_OK) {
    certificate_refused = true;
    ERR_clear_error();
    return std::string("certificate problem: ") + X509_verify_cert_error_string(verdict);
  }
  if (error == SSL_ERROR_SYSCALL) {
    const int saved = errno;
    std::string reason = openssl_reason();
    if (!reason.empty()) return reason;
    return saved == 0 ? "the server closed the connection" : std::strerror(saved);
  }
  if (error == SSL_ERROR_ZERO_RETURN) return "the server closed the connection";
  std::string reason = openssl_reason();
  return reason.empty() ? "TLS error " + std::to_string(error) : reason;
}

}  // namespace switchboard
