// Plain-HTTP calls on a fiber's loop: HTTP/1.1 over the loop's own TCP
// connections, without libcurl, for the upstreams that need nothing of it.
//
// An OpenAI-compatible server on the same machine or network (vLLM,
// llama.cpp, Ollama, a sidecar, a Kubernetes service, the benchmarks' fake
// provider) is reached at a plain http:// URL. For those, a
// call on a fiber (HttpTransport::post from a FiberLoop) is one gathered
// send of the request and the answer read from the socket as it arrives,
// parsed by Beast's HTTP/1.1 parser (lengths, chunked bodies, 1xx answers
// skipped), with the connection kept alive in the loop's ConnectionPool.
// A new connection's host name is looked up on the loop (async/resolve.h;
// "localhost" is 127.0.0.1 without one), within the connect timeout, and
// its addresses tried in turn; nothing is cached beyond the kept connections.
// libcurl's per-transfer setup, its handle bookkeeping and the reactor
// registration of each transfer's socket cost about half of a gateway
// request's CPU beside a local upstream; this path costs a send and a read.
//
// Everything else keeps libcurl: https:// (TLS, HTTP/2), a URL with
// credentials, and any call when a proxy is set in the
// environment (http_proxy, all_proxy and their capitals), so that curl's
// proxy rules keep applying. Off a fiber every call is curl's too.
//
// The contract is HttpTransport::post's (http_transport.h): the same limits
// (connect, first byte, stall, total, the step's deadline and cancellation),
// each firing when due from one timer of the loop; the same failures and
// messages; a call cut short closes its connection. A kept-alive connection
// the server closed just as it was reused (no byte of the answer came back)
// is retried once on a new one, as curl does. A response body with a
// Content-Encoding is refused (none is asked for: no Accept-Encoding).
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

// Where a plain-HTTP call goes.
struct PlainHttpTarget {
  std::string host;    // the Host header: the URL's authority as written (the connection pool's key)
  std::string target;  // the request-target: path and query ("/" when none)
  std::string name;    // what to connect to: an IP address, or a host name to look up
  std::uint16_t port = 80;
};

// The target of `url` when it can go over the loop's own client (see the
// file comment); nullopt when libcurl must take it.
std::optional<PlainHttpTarget> plain_http_target(std::string_view url);

// HttpTransport::post on `fiber`'s loop, to `target`. REQUIRES: `fiber` is
// the current fiber; the request's headers have no line breaks.
Result<HttpResponse> post_on_loop(async::Fiber& fiber, const PlainHttpTarget& target, const HttpRequest& request,
                                  const CallSettings& limits, const BodySink& on_body, const CallBounds& bounds);

}  // namespace switchboard
