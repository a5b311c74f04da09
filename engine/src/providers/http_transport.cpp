// HttpTransport over libcurl. Every curl call in the engine is in this file;
// every CURL* and curl_slist is owned by a unique_ptr.
#include "providers/http_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "async/curl_loop.h"
#include "async/fiber.h"
#include "providers/http1_on_loop.h"
#include "providers/rate_limits.h"
#include "providers/tls_client.h"
#include "util/ascii.h"

namespace switchboard {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;

struct CurlMultiDeleter {
  void operator()(CURLM* handle) const { curl_multi_cleanup(handle); }
};
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;

struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

// curl_global_init is process-wide and not thread-safe, so it runs once, the
// first time any transport is built. It is never undone: clients may live
// until exit, and curl_global_cleanup would race with them.
CURLcode global_init() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return result;
}


std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Leading decimal digits of `s` as a number, capped; nullopt when none.
std::optional<std::int64_t> leading_number(std::string_view s) {
  constexpr std::int64_t kCap = 1'000'000'000'000;
  std::int64_t n = 0;
  std::size_t i = 0;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
    n = std::min(kCap, n * 10 + (s[i] - '0'));
  }
  if (i == 0) return std::nullopt;
  return n;
}

std::string ms_text(milliseconds d) { return std::to_string(d.count()) + " ms"; }

// Why a transfer was cut short by us rather than by curl.
enum class Abort { kNone, kFirstByte, kStall, kOversize, kSink, kBounds };

// State shared by one call's callbacks.
struct Transfer {
  CURL* handle = nullptr;
  const CallSettings* limits = nullptr;
  const BodySink* sink = nullptr;
  HttpResponse response;
  Clock::time_point start;
  std::optional<Clock::time_point> sent_at;
  std::optional<Clock::time_point> first_byte_at;
  Clock::time_point last_byte_at;
  std::int64_t body_bytes = 0;
  ResponseHints hints;
  bool head_filled = false;
  Abort abort = Abort::kNone;
  Status bounds_status;  // Abort::kBounds: cancelled or past the step's deadline

  void byte_arrived() {
    const Clock::time_point now = Clock::now();
    if (!first_byte_at) first_byte_at = now;
    last_byte_at = now;
  }

  // Status, content type, Retry-After and first-byte time, from what the
  // headers said. Called once the body starts, and at the end.
  void fill_head() {
    long code = 0;
    curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &code);
    response.status = static_cast<int>(code);
    const char* type = nullptr;
    curl_easy_getinfo(handle, CURLINFO_CONTENT_TYPE, &type);
    response.content_type = type != nullptr ? type : "";
    response.retry_after = hints.wait();
    response.rate_limits = hints.rate_limits;
    if (first_byte_at) response.first_byte = std::chrono::duration_cast<milliseconds>(*first_byte_at - start);
    head_filled = true;
  }
};

std::size_t header_callback(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * count);
  t->byte_arrived();
  if (line.starts_with("HTTP/")) {  // a new response (after a 1xx): forget the last one's headers
    t->hints = ResponseHints();
    return line.size();
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return line.size();
  read_response_hint(trim(line.substr(0, colon)), trim(line.substr(colon + 1)), t->hints);
  return line.size();
}

std::size_t write_callback(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  t->byte_arrived();
  t->body_bytes += static_cast<std::int64_t>(n);
  if (t->limits->max_response_bytes > 0 && t->body_bytes > t->limits->max_response_bytes) {
    t->abort = Abort::kOversize;
    return 0;  // anything but n makes curl stop with CURLE_WRITE_ERROR
  }
  if (*t->sink) {
    if (!t->head_filled) t->fill_head();
    if (!(*t->sink)(t->response, std::string_view(data, n))) {
      t->abort = Abort::kSink;
      return 0;
    }
  } else {
    t->response.body.append(data, n);
  }
  return n;
}

// The Status for a failed transfer. Never quotes a header: curl's messages
// name the host, port and what failed, not the request.
Status failure(CURLcode code, const Transfer& t, const char* errbuf) {
  const CallSettings& limits = *t.limits;
  switch (t.abort) {
    case Abort::kFirstByte:
      return Status::unavailable("no first byte within " + ms_text(limits.first_byte_timeout) +
                                 " (first_byte_timeout_ms)");
    case Abort::kStall:
      return Status::unavailable("no data for " + ms_text(limits.stall_timeout) +
                                 " inside the response (stall_timeout_ms)");
    case Abort::kOversize:
      return Status::upstream("response body over " + std::to_string(limits.max_response_bytes) +
                              " bytes (max_response_bytes)");
    case Abort::kBounds: return t.bounds_status;
    case Abort::kSink:
    case Abort::kNone: break;
  }
  const std::string detail = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(code);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT: {
      curl_off_t pretransfer_us = 0;
      curl_easy_getinfo(t.handle, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
      const bool connecting = pretransfer_us == 0 && limits.connect_timeout.count() > 0 &&
                              (limits.total_timeout.count() == 0 || limits.connect_timeout <= limits.total_timeout);
      if (connecting) {
        return Status::unavailable("not connected within " + ms_text(limits.connect_timeout) +
                                   " (connect_timeout_ms)");
      }
      return Status::unavailable("not finished within " + ms_text(limits.total_timeout) + " (total_timeout_ms)");
    }
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return Status::unavailable("could not connect: " + detail);
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return Status::unavailable("connection broke: " + detail);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_BAD_CONTENT_ENCODING:
      return Status::upstream("HTTP transport: " + detail);
    default:
      return Status::unavailable("HTTP transport: " + detail);
  }
}

}  // namespace

// Idle handle pairs. A pair goes back reset (curl_easy_reset keeps the
// multi's open connections, DNS cache and TLS sessions, which is the point of
// pooling).
struct HttpTransport::Pool {
  // A transfer's handles: an easy handle and the multi handle that runs it.
  // The multi owns the connection cache, so the pair keeps its connections
  // open between calls.
  struct Handles {
    CurlMulti multi;
    CurlEasy easy;
  };

  explicit Pool(std::size_t max) : max_idle(max) {}

  std::unique_ptr<Handles> acquire() {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!idle.empty()) {
        std::unique_ptr<Handles> handles = std::move(idle.back());
        idle.pop_back();
        return handles;
      }
    }
    auto handles = std::make_unique<Handles>(Handles{CurlMulti(curl_multi_init()), CurlEasy(curl_easy_init())});
    if (!handles->multi || !handles->easy) return nullptr;
    return handles;
  }

  // Reset first: the handle must keep no pointer into the finished call's frame.
  void release(std::unique_ptr<Handles> handles) {
    curl_easy_reset(handles->easy.get());
    std::lock_guard<std::mutex> lock(mu);
    if (idle.size() < max_idle) idle.push_back(std::move(handles));
    // else the pair is closed here, connections and all
  }

  // One pooled pair for the length of a call; empty when curl could not make one.
  class Lease {
   public:
    explicit Lease(Pool& pool) : pool_(pool), handles_(pool.acquire()) {}
    ~Lease() {
      if (handles_) pool_.release(std::move(handles_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Handles* get() const { return handles_.get(); }

   private:
    Pool& pool_;
    std::unique_ptr<Handles> handles_;
  };

  std::mutex mu;
  std::vector<std::unique_ptr<Handles>> idle;  // guarded by mu
  const std::size_t max_idle;
};

namespace {

// Our limits on `t` at `now`: when to check them next (the step's deadline
// included; at most a second away), or nullopt with t.abort set when one is
// past (first byte, stall). Curl keeps its own (connect, total).
//
// The check needs no wake-up when the request goes out or the first byte
// arrives: before the request is out, the first byte cannot be due sooner
// than one first_byte_timeout from now, and before the first byte a stall
// cannot be due sooner than one stall_timeout from now; a check at that
// time finds the real due time (later, or now) and waits for exactly it.
std::optional<Clock::time_point> next_check(Transfer& t, const CallBounds& bounds, Clock::time_point now) {
  constexpr milliseconds kMaxWait{1000};
  const CallSettings& limits = *t.limits;
  Clock::time_point next = now + kMaxWait;
  if (!t.first_byte_at) {
    if (!t.sent_at) {
      curl_off_t pretransfer_us = 0;  // 0 until the connection is up and the request starts out
      curl_easy_getinfo(t.handle, CURLINFO_PRETRANSFER_TIME_T, &pretransfer_us);
      if (pretransfer_us > 0) t.sent_at = t.start + std::chrono::microseconds(pretransfer_us);
    }
    if (limits.first_byte_timeout.count() > 0) {
      const Clock::time_point due = t.sent_at ? *t.sent_at + limits.first_byte_timeout : now + limits.first_byte_timeout;
      if (now >= due) {
        t.abort = Abort::kFirstByte;
        return std::nullopt;
      }
      next = std::min(next, due);
    }
    if (limits.stall_timeout.count() > 0) next = std::min(next, now + limits.stall_timeout);
  } else if (limits.stall_timeout.count() > 0) {
    const Clock::time_point due = t.last_byte_at + limits.stall_timeout;
    if (now >= due) {
      t.abort = Abort::kStall;
      return std::nullopt;
    }
    next = std::min(next, due);
  }
  if (bounds.deadline) next = std::min(next, *bounds.deadline);
  return next;
}

// Runs the transfer `t` to its end on `multi`: curl's own limits (connect,
// total) and ours (first byte, stall, the step's deadline and cancellation)
// each fire when due, because the wait on the sockets ends at the nearest of
// them, and a cancellation wakes the wait at once (curl_multi_wakeup). A
// transfer cut short is removed from the multi mid-flight, which closes its
// connection: the upstream sees the call end. Returns curl's code for the
// transfer (CURLE_OK when it ended normally; when we cut it short,
// CURLE_ABORTED_BY_CALLBACK with t.abort saying why).
CURLcode run_transfer(CURLM* multi, Transfer& t, const CallBounds& bounds) {
  CURL* h = t.handle;
  if (curl_multi_add_handle(multi, h) != CURLM_OK) return CURLE_FAILED_INIT;
  Cancellation::Subscription wake;
  if (bounds.cancellation) wake = bounds.cancellation->subscribe([multi] { curl_multi_wakeup(multi); });
  CURLcode code = CURLE_OK;
  for (;;) {
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      code = CURLE_FAILED_INIT;
      break;
    }
    if (running == 0) {
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == h) code = msg->data.result;
      }
      break;
    }
    if (Status s = bounds.check(); !s.ok()) {
      t.abort = Abort::kBounds;
      t.bounds_status = std::move(s);
      code = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    const Clock::time_point now = Clock::now();
    const std::optional<Clock::time_point> next = next_check(t, bounds, now);
    if (!next) {
      code = CURLE_ABORTED_BY_CALLBACK;
      break;
    }
    const auto wait = std::chrono::ceil<milliseconds>(*next - now);
    if (curl_multi_poll(multi, nullptr, 0, static_cast<int>(std::max<std::int64_t>(0, wait.count())), nullptr) !=
        CURLM_OK) {
      code = CURLE_FAILED_INIT;
      break;
    }
  }
  curl_multi_remove_handle(multi, h);
  return code;
}

// run_transfer on a fiber: the transfer runs on the fiber loop's multi (its
// sockets on the loop's reactor), and the fiber waits until it ends or one
// of our limits falls due (a steady_timer at the nearest) or the step is
// cancelled (the subscription wakes it). Every wake re-checks everything,
// so a spurious one costs a check.
CURLcode run_transfer_on_loop(async::Fiber& fiber, Transfer& t, const CallBounds& bounds) {
  async::CurlLoop& curl = fiber.loop().curl();
  const std::weak_ptr<async::Fiber> self = fiber.weak_from_this();
  bool ended = false;
  CURLcode code = CURLE_OK;
  async::CurlLoop::prepare(t.handle, curl);
  if (!curl.start(t.handle, [&ended, &code, self](CURLcode result) {
        ended = true;
        code = result;
        async::Fiber::wake(self);
      })) {
    return CURLE_FAILED_INIT;
  }
  // However this returns (an unwind included), the handle leaves the multi
  // and the loop's share (a reset keeps shares; the pool outlives the loop).
  struct Release {
    async::CurlLoop& curl;
    CURL* handle;
    const bool& ended;
    ~Release() {
      if (!ended) curl.stop(handle);
      async::CurlLoop::unprepare(handle);
    }
  } release{curl, t.handle, ended};
  Cancellation::Subscription woken;
  if (bounds.cancellation) woken = bounds.cancellation->subscribe([self] { async::Fiber::wake(self); });
  boost::asio::steady_timer timer(fiber.loop().io());
  std::optional<Clock::time_point> armed;
  for (;;) {
    if (ended) return code;
    if (Status s = bounds.check(); !s.ok()) {
      t.abort = Abort::kBounds;
      t.bounds_status = std::move(s);
      return CURLE_ABORTED_BY_CALLBACK;
    }
    const std::optional<Clock::time_point> next = next_check(t, bounds, Clock::now());
    if (!next) return CURLE_ABORTED_BY_CALLBACK;
    if (armed != next) {
      armed = next;
      timer.expires_at(*next);
      timer.async_wait([self](const boost::system::error_code& ec) {
        if (!ec) async::Fiber::wake(self);
      });
    }
    fiber.wait();
  }
}

// The loop's target for `url` (http1_target), parsed once per thread: a
// workload calls a few upstream URLs over and over. Null when curl takes the
// URL. Shared, so a call holding one outlives the cache's clearing.
std::shared_ptr<const Http1Target> loop_target(const std::string& url) {
  struct Entry {
    std::string url;
    std::shared_ptr<const Http1Target> target;
  };
  constexpr std::size_t kUrls = 32;  // more: start over (a linear search stays short)
  thread_local std::vector<Entry> cache;
  for (const Entry& e : cache) {
    if (e.url == url) return e.target;
  }
  if (cache.size() >= kUrls) cache.clear();
  std::optional<Http1Target> target = http1_target(url);
  cache.push_back({url, target ? std::make_shared<const Http1Target>(std::move(*target)) : nullptr});
  return cache.back().target;
}

}  // namespace

HttpTransport::HttpTransport(std::size_t max_idle_handles) : pool_(std::make_unique<Pool>(max_idle_handles)) {
  global_init();
}

HttpTransport::~HttpTransport() = default;

Result<HttpResponse> HttpTransport::post(const HttpRequest& request, const CallSettings& limits,
                                         const BodySink& on_body, const CallBounds& bounds) {
  if (const CURLcode init = global_init(); init != CURLE_OK) {
    return Status::internal(std::string("curl_global_init failed: ") + curl_easy_strerror(init));
  }
  if (Status s = bounds.check(); !s.ok()) return s;
  for (const auto& [name, value] : request.headers) {
    // A line break would smuggle in another header (a key pasted with its newline).
    if (name.find_first_of("\r\n") != std::string::npos || value.find_first_of("\r\n") != std::string::npos) {
      return Status::invalid_argument("request header '" + name + "' contains a line break");
    }
  }
  async::Fiber* const fiber = async::Fiber::current();
  if (fiber != nullptr) {
    if (const std::shared_ptr<const Http1Target> target = loop_target(request.url)) {
      return post_on_loop(*fiber, *target, request, limits, on_body, bounds);
    }
  }
  Pool::Lease lease(*pool_);
  if (lease.get() == nullptr) return Status::internal("curl_easy_init or curl_multi_init failed");
  CURL* h = lease.get()->easy.get();

  CurlSlist headers;
  auto add_header = [&headers](const std::string& line) {
    curl_slist* grown = curl_slist_append(headers.get(), line.c_str());
    if (grown == nullptr) return false;
    (void)headers.release();  // now owned through `grown`
    headers.reset(grown);
    return true;
  };
  for (const auto& [name, value] : request.headers) {
    if (!add_header(name + ": " + value)) return Status::internal("out of memory building request headers");
  }
  // No "Expect: 100-continue" round trip before a large body.
  if (!add_header("Expect:")) return Status::internal("out of memory building request headers");

  Transfer t;
  t.handle = h;
  t.limits = &limits;
  t.sink = &on_body;
  char errbuf[CURL_ERROR_SIZE] = {};

  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for timeouts: we run on many threads
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_USERAGENT, "switchboard/0.1");
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");  // whatever curl can decode
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);  // a proxy's CONNECT reply is not the response
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(limits.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(limits.total_timeout.count()));
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &header_callback);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &write_callback);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  // What the loop's TLS client trusts too (tls_client.h). Set on every call,
  // since handles are reused: unset variables give back curl's own defaults
  // (a NULL here would drop them, and every certificate with them).
  const TlsTrust trust = tls_trust();
  curl_easy_setopt(h, CURLOPT_CAINFO, trust.file.empty() ? nullptr : trust.file.c_str());
  curl_easy_setopt(h, CURLOPT_CAPATH, trust.dir.empty() ? nullptr : trust.dir.c_str());

  t.start = Clock::now();
  t.last_byte_at = t.start;
  const CURLcode code =
      fiber != nullptr ? run_transfer_on_loop(*fiber, t, bounds) : run_transfer(lease.get()->multi.get(), t, bounds);
  const Clock::time_point end = Clock::now();

  if (code != CURLE_OK && t.abort != Abort::kSink) return failure(code, t, errbuf);
  t.fill_head();
  t.response.total = std::chrono::duration_cast<milliseconds>(end - t.start);
  t.response.stopped = t.abort == Abort::kSink;
  return std::move(t.response);
}

void read_response_hint(std::string_view name, std::string_view value, ResponseHints& hints) {
  if (iequals(name, "retry-after")) {
    hints.retry_after = parse_retry_after(value, std::chrono::system_clock::now());
  } else if (iequals(name, "retry-after-ms")) {
    if (auto n = leading_number(value)) hints.retry_after_ms = milliseconds(*n);
  } else if (istarts_with(name, "x-ratelimit-") || istarts_with(name, "anthropic-ratelimit-")) {
    read_rate_limit_header(name, value, std::chrono::system_clock::now(), hints.rate_limits);
  }
}

std::optional<milliseconds> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) {
  value = trim(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return milliseconds(*leading_number(value) * 1000);
  }
  const std::string date(value);
  const std::time_t now_t = std::chrono::system_clock::to_time_t(now);
  const std::time_t at = curl_getdate(date.c_str(), &now_t);
  if (at == -1) return std::nullopt;
  return milliseconds(std::max<std::int64_t>(0, static_cast<std::int64_t>(at - now_t)) * 1000);
}

}  // namespace switchboard
