// TLS for the upstream calls: what certificates are trusted, and the TLS
// client the loop's HTTP/1.1 client (http1_on_loop.h) runs over a connected
// socket.
//
// Trust is the same whichever path a call takes: the bundle that
// SSL_CERT_FILE names and the directory SSL_CERT_DIR names when either is set
// (as OpenSSL's tools and the curl tool read them; a private CA for a
// self-hosted server), else libcurl's own CA bundle and directory (Debian's:
// the system store), else OpenSSL's defaults. Peers are verified, and so is
// the name: the URL's host name against the certificate's names, an IP
// address against its IP addresses. TLS 1.2 or later; ALPN offers http/1.1
// only (the loop's client speaks nothing else).
//
// The client context is made once per process, on first use, from the
// environment as it is then.
#pragma once

#include <string>

#include "async/connection_pool.h"
#include "switchboard/status.h"

namespace switchboard {

// What peers' certificates are checked against, as the environment is now:
// SSL_CERT_FILE and SSL_CERT_DIR when either is set, else libcurl's own
// defaults (its CA bundle and directory; "" for one it has not). Both empty:
// OpenSSL's defaults. The curl path sets exactly these on every handle (an
// empty one as unset), so both paths trust the same.
struct TlsTrust {
  std::string file;
  std::string dir;
};
TlsTrust tls_trust();

// A TLS client, not yet connected, over the connected socket `fd` (which it
// never closes), to `server_name` (a host name: sent as SNI and checked
// against the certificate; or an IP address, checked against its IP
// addresses), resuming `resume` when not null (borrowed).
Result<async::Tls> tls_client(int fd, const std::string& server_name, SSL_SESSION* resume);

// Why `tls`'s last operation, which returned `result`, failed: the
// certificate check's verdict when it refused the peer, else OpenSSL's
// reason (the error queue is cleared). `certificate_refused` tells which.
std::string tls_failure(SSL* tls, int result, bool& certificate_refused);

}  // namespace switchboard
