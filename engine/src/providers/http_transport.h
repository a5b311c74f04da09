// HttpTransport: HTTPS POSTs over libcurl for the native model adapters.
//
// Off a fiber, each call runs on a multi handle of its own (curl_multi_poll),
// so that its timers fire on time and a cancellation interrupts its wait. On
// a fiber (FiberLoop, fiber_loop.h), the call runs on the loop's multi,
// driven by the loop's reactor and timers, and the fiber waits instead of
// the thread; the loop's connection cache serves every fiber on its thread.
// An http:// or https:// call on a fiber skips curl unless a proxy or
// credentials in the URL need it: the loop's own HTTP/1.1 client takes it
// (http1_on_loop.h), same contract.
//
// One transport may serve many clients and threads. It keeps a pool of curl
// easy handles (a mutex-guarded free list); a handle keeps its connections
// open between calls, so consecutive calls to one host reuse a kept-alive
// connection and TLS session. TLS uses curl's defaults (peer and host
// verification on), trusting the CA bundle SSL_CERT_FILE names and the
// directory SSL_CERT_DIR names when either is set, else curl's own store
// (tls_client.h: the loop's client trusts the same). Proxies come from the
// usual environment variables (http_proxy, https_proxy, all_proxy,
// no_proxy): curl's default behaviour, which this file does not change.
//
// Failures are values, and a message names the limit that was hit:
//   unavailable  refused or reset connections, DNS failures, every timeout
//                ("no first byte within 2000 ms (first_byte_timeout_ms)");
//   upstream     a body over max_response_bytes, TLS verification failures,
//                a malformed URL: retrying cannot cure these.
//   invalid_argument  a header name or value with a line break in it.
// An HTTP error status is not a transport failure: post() returns it as a
// response. No message ever contains a request header's value (API keys).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchboard/cancel.h"
#include "switchboard/config.h"
#include "switchboard/request.h"
#include "switchboard/status.h"

namespace switchboard {

struct HttpRequest {
  std::string url;
  // Name and value, e.g. {"x-api-key", key}. Values may be secret: they are
  // sent and never copied into any message.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // sent as is; Content-Type is one of `headers`
};

struct HttpResponse {
  int status = 0;            // the final response's status code
  std::string content_type;  // the Content-Type header as sent ("" when absent)
  // Retry-After (delta-seconds or an HTTP-date) or retry-after-ms, in
  // milliseconds from now; an HTTP-date in the past is 0.
  std::optional<std::chrono::milliseconds> retry_after;
  RateLimits rate_limits;    // the provider's rate-limit headers (rate_limits.h)
  std::string body;          // the whole body; empty when a BodySink took it
  std::chrono::milliseconds first_byte{0};  // call start to the first response byte
  std::chrono::milliseconds total{0};       // call start to the last byte
  bool stopped = false;      // the BodySink asked to stop; the body is incomplete
};

// Receives the body piece by piece as it arrives, on the calling thread.
// `head` is the response so far: status, content_type, retry_after and
// first_byte are filled. Returns false to stop the transfer (post() then
// returns the response with `stopped` set). Must not throw.
using BodySink = std::function<bool(const HttpResponse& head, std::string_view piece)>;

class HttpTransport {
 public:
  // `max_idle_handles` bounds the free list; handles beyond it are closed when
  // their call ends.
  explicit HttpTransport(std::size_t max_idle_handles = 16);
  ~HttpTransport();
  HttpTransport(const HttpTransport&) = delete;
  HttpTransport& operator=(const HttpTransport&) = delete;

  // POSTs `request`, bounded by `limits`' connect_timeout, first_byte_timeout
  // (request sent -> first response byte), stall_timeout (the longest silence
  // once bytes flow), total_timeout and max_response_bytes; its retry fields
  // are the caller's business. A zero limit is no limit. `bounds` adds the
  // step's deadline and cancellation: a cancelled call fails with kCancelled,
  // one past the deadline with kDeadlineExceeded. Every limit fires when due
  // (the wait on the sockets ends at the nearest one; a cancellation wakes it
  // at once), and a transfer cut short closes its connection, so the upstream
  // sees the call end. Without `on_body` the body is collected into
  // HttpResponse::body. Thread-safe.
  Result<HttpResponse> post(const HttpRequest& request, const CallSettings& limits,
                            const BodySink& on_body = nullptr, const CallBounds& bounds = {});

 private:
  struct Pool;
  std::unique_ptr<Pool> pool_;
};

// What a response's head says of when to call again: Retry-After, OpenAI's
// retry-after-ms, and the provider's rate-limit headers. Both transports
// (libcurl's, and the loop's own in http1_on_loop.h) read their heads into one.
struct ResponseHints {
  std::optional<std::chrono::milliseconds> retry_after;     // Retry-After
  std::optional<std::chrono::milliseconds> retry_after_ms;  // retry-after-ms (OpenAI), preferred
  RateLimits rate_limits;
  // HttpResponse::retry_after: retry-after-ms when sent, else Retry-After.
  std::optional<std::chrono::milliseconds> wait() const { return retry_after_ms ? retry_after_ms : retry_after; }
};

// Reads one header field (name and value trimmed) into `hints`; any other field changes nothing.
void read_response_hint(std::string_view name, std::string_view value, ResponseHints& hints);

// A Retry-After value in milliseconds from `now`: delta-seconds ("120") or an
// HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", read by curl_getdate). nullopt
// when it is neither; a date in the past is 0.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view value,
                                                           std::chrono::system_clock::time_point now);

}  // namespace switchboard
