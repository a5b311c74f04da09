// HTTP/1.1 calls on a fiber's loop, over the loop's own TCP connections
// (and TLS over them, for https), without libcurl.
//
// An OpenAI-compatible server on the same machine or network (vLLM,
// llama.cpp, Ollama, a sidecar, a Kubernetes service, the benchmarks' fake
// provider) is reached at a plain http:// URL; the hosted providers (OpenAI,
// Anthropic, Gemini) at https:// ones. For both, a call on a fiber
// (HttpTransport::post from a FiberLoop) is one send of the request and the
// answer read from the socket as it arrives, parsed by Beast's HTTP/1.1
// parser (lengths, chunked bodies, 1xx answers skipped), with the connection
// kept alive in the loop's ConnectionPool. A new connection's host name is
// looked up on the loop (async/resolve.h; "localhost" is 127.0.0.1 without
// one), within the connect timeout, and its addresses tried in turn; an
// https one then makes its TLS handshake (tls_client.h: the same trust as
// curl's, the name checked), within the same timeout, resuming the session
// the upstream last gave on this loop. Nothing is cached beyond the kept
// connections and one session per upstream.
// libcurl's per-transfer setup, its handle bookkeeping and the reactor
// registration of each transfer's socket cost about half of a gateway
// request's CPU beside a local upstream; this path costs a send and a read.
//
// Everything else keeps libcurl: a URL with credentials, a host that is
// neither a name nor an address, and any call when a proxy for its scheme is
// set in the environment (http_proxy or https_proxy, all_proxy, and their
// capitals), so that curl's proxy rules keep applying. Off a fiber every
// call is curl's too. The loop's client speaks HTTP/1.1 only (ALPN offers
// nothing else), where curl would take HTTP/2 from a server offering it; a
// kept-alive HTTP/1.1 connection per concurrent call does the same work.
//
// The contract is HttpTransport::post's (http_transport.h): the same limits
// (connect, first byte, stall, total, the step's deadline and cancellation),
// each firing when due from one timer of the loop; the same failures and
// messages, kinds included (a refused certificate is `upstream`, a broken
// handshake `unavailable`); a call cut short closes its connection. A
// kept-alive connection the server closed just as it was reused (no byte of
// the answer came back) is retried once on a new one, as curl does. A
// response body with a Content-Encoding is refused (none is asked for: no
// Accept-Encoding).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "providers/http_transport.h"

namespace switchboard {

namespace async {
class Fiber;
}

// Where a call on the loop goes.
struct Http1Target {
  std::string host;         // the Host header: the URL's authority as written
  std::string target;       // the request-target: path and query ("/" when none)
  std::string name;         // what to connect to: an IP address, or a host name to look up
  std::string server_name;  // the URL's host: TLS's SNI and the name its certificate must carry
  std::string upstream;     // the connection pool's key: scheme and authority ("https://host:port")
  std::uint16_t port = 80;
  bool tls = false;  // https
};

// The target of `url` when it can go over the loop's own client (see the
// file comment); nullopt when libcurl must take it.
std::optional<Http1Target> http1_target(std::string_view url);

// HttpTransport::post on `fiber`'s loop, to `target`. REQUIRES: `fiber` is
// the current fiber; the request's headers have no line breaks.
Result<HttpResponse> post_on_loop(async::Fiber& fiber, const Http1Target& target, const HttpRequest& request,
                                  const CallSettings& limits, const BodySink& on_body, const CallBounds& bounds);

}  // namespace switchboard
