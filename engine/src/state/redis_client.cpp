// RedisClient: hiredis behind a pool and a back-off.
//
// Off a fiber, a command is hiredis's blocking call, bounded by the timeout
// (redisSetTimeout). On a fiber (the gateway's I/O threads), the command is
// formatted by hiredis, sent and read with non-blocking socket calls, and
// between them the fiber waits on its loop for the socket (or the timeout),
// so the thread serves its other connections during the round trip; hiredis's
// reader parses the reply either way. Connecting on a fiber waits on the
// loop too, a host name's lookup included (async/resolve.h).
// A connection that saw any error is freed, never pooled again (its reply
// stream may be out of step).
#include "state/redis_client.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>
#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include <boost/asio/posix/stream_descriptor.hpp>

#include "async/fiber.h"
#include "async/resolve.h"
#include "util/hex.h"
#include "async/socket_wait.h"

namespace switchboard::detail {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{5000};

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;

struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyFree>;

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<decltype(tv.tv_sec)>(ms.count() / 1000);
  tv.tv_usec = static_cast<decltype(tv.tv_usec)>((ms.count() % 1000) * 1000);
  return tv;
}

RedisReply convert(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kString;
      out.string.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(convert(*r.element[i]));
      break;
    default:
      break;
  }
  return out;
}

// Waits on the current fiber's loop until a connection's socket is ready
// or `deadline` passes; the socket stays the connection's (released, not
// closed, at the end).
class SocketWait {
 public:
  SocketWait(async::Fiber& fiber, int fd, SteadyClock::time_point deadline)
      : socket_(fiber.loop().io()), timer_(fiber), deadline_(deadline) {
    boost::system::error_code ec;
    socket_.assign(fd, ec);
    assigned_ = !ec;
  }
  ~SocketWait() {
    if (!assigned_) return;
    boost::system::error_code ignored;
    socket_.cancel(ignored);
    socket_.release();
  }
  SocketWait(const SocketWait&) = delete;
  SocketWait& operator=(const SocketWait&) = delete;

  // True once the socket is ready for `what` (or failed: the next call on it
  // says how); false when the deadline passed first, or the socket cannot
  // be watched.
  bool wait(boost::asio::posix::stream_descriptor::wait_type what) {
    if (!assigned_) return false;
    return async::wait_ready(timer_, socket_, what, [this]() -> std::optional<SteadyClock::time_point> {
      if (SteadyClock::now() >= deadline_) return std::nullopt;
      return deadline_;
    });
  }

 private:
  boost::asio::posix::stream_descriptor socket_;  // borrows hiredis's fd, released unclosed
  async::WakeTimer timer_;
  const SteadyClock::time_point deadline_;
  bool assigned_ = false;
};

struct CommandFree {
  void operator()(char* command) const { redisFreeCommand(command); }
};

// One command's round trip on `c` from a fiber: sends it and reads its reply
// without blocking the thread. Null with `why` set on a transport error, a
// closed connection or the timeout (the caller drops the connection).
ReplyPtr exchange_on_fiber(async::Fiber& fiber, redisContext& c, const std::vector<const char*>& argv,
                           const std::vector<std::size_t>& lens, std::chrono::milliseconds timeout,
                           std::string& why) {
  char* formatted = nullptr;
  const int length = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()),
                                            const_cast<const char**>(argv.data()), lens.data());
  if (length < 0) {
    why = "out of memory";
    return nullptr;
  }
  const std::unique_ptr<char, CommandFree> command(formatted);
  SocketWait socket(fiber, c.fd, SteadyClock::now() + timeout);
  using Wait = boost::asio::posix::stream_descriptor;
  const auto timed_out = [&] { return "timed out after " + std::to_string(timeout.count()) + " ms"; };
  for (std::size_t sent = 0; sent < static_cast<std::size_t>(length);) {
    const ssize_t n = ::send(c.fd, formatted + sent, static_cast<std::size_t>(length) - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!socket.wait(Wait::wait_write)) {
        why = timed_out();
        return nullptr;
      }
    } else {
      why = std::strerror(errno);
      return nullptr;
    }
  }
  char buffer[16 * 1024];
  for (;;) {
    void* reply = nullptr;
    if (redisReaderGetReply(c.reader, &reply) != REDIS_OK) {
      why = c.reader->errstr;
      return nullptr;
    }
    if (reply != nullptr) return ReplyPtr(static_cast<redisReply*>(reply));
    const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n > 0) {
      if (redisReaderFeed(c.reader, buffer, static_cast<std::size_t>(n)) != REDIS_OK) {
        why = c.reader->errstr;
        return nullptr;
      }
    } else if (n == 0) {
      why = "Server closed the connection";
      return nullptr;
    } else if (errno == EINTR) {
      continue;
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!socket.wait(Wait::wait_read)) {
        why = timed_out();
        return nullptr;
      }
    } else {
      why = std::strerror(errno);
      return nullptr;
    }
  }
}

// `text` with its %XX escapes decoded; nullopt when one is malformed.
std::optional<std::string> percent_decoded(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    unsigned value = 0;
    if (i + 2 >= text.size()) return std::nullopt;
    const auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
    if (ec != std::errc() || end != text.data() + i + 3) return std::nullopt;
    out += static_cast<char>(value);
    i += 2;
  }
  return out;
}

}  // namespace

Result<RedisAddress> parse_redis_url(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  // The URL as messages quote it: never with its password (whatever its scheme).
  const std::size_t scheme = url.find("://");
  const std::size_t authority = scheme == std::string_view::npos ? 0 : scheme + 3;
  std::string_view rest = url.substr(authority);
  const std::string_view before_path = rest.substr(0, rest.find('/'));
  const std::size_t at = before_path.rfind('@');
  const std::string_view userinfo = before_path.substr(0, at == std::string_view::npos ? 0 : at);
  std::string shown(url);
  if (at != std::string_view::npos) {
    shown = std::string(url.substr(0, authority)) + std::string(userinfo.substr(0, userinfo.find(':'))) + ":***" +
            std::string(rest.substr(at));
  }
  if (url.substr(0, kScheme.size()) != kScheme) {
    return Status::invalid_argument("redis_url '" + shown + "' does not start with redis://");
  }
  RedisAddress a;
  if (at != std::string_view::npos) {
    const std::size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return Status::invalid_argument("redis_url '" + shown +
                                      "' names a user without a password (redis://USER:PASSWORD@HOST)");
    }
    std::optional<std::string> user = percent_decoded(userinfo.substr(0, colon));
    std::optional<std::string> password = percent_decoded(userinfo.substr(colon + 1));
    if (!user || !password) {
      return Status::invalid_argument("redis_url '" + shown + "': a malformed %-escape in the user or password");
    }
    if (password->empty()) return Status::invalid_argument("redis_url '" + shown + "' has an empty password");
    a.user = std::move(*user);
    a.password = std::move(*password);
    rest = rest.substr(at + 1);
  }
  std::string_view db;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
  }
  std::string_view port;
  if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    port = rest.substr(colon + 1);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return Status::invalid_argument("redis_url '" + shown + "' names no host");
  a.host = std::string(rest);
  const auto number = [&](std::string_view text, int& out, int lo, int hi, const char* what) -> Status {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    if (ec != std::errc() || end != text.data() + text.size() || out < lo || out > hi) {
      return Status::invalid_argument("redis_url '" + shown + "': " + what + " '" + std::string(text) +
                                      "' is not a number in " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return Status();
  };
  if (!port.empty()) {
    if (Status s = number(port, a.port, 1, 65535, "port"); !s.ok()) return s;
  }
  if (!db.empty()) {
    if (Status s = number(db, a.db, 0, 1 << 20, "database"); !s.ok()) return s;
  }
  return a;
}

Result<RedisAddress> redis_address_of(const StateSettings& state) {
  auto address = parse_redis_url(state.redis_url);
  if (!address.ok() || state.redis_password_env.empty()) return address;
  const char* password = std::getenv(state.redis_password_env.c_str());
  if (password == nullptr || *password == '\0') {
    return Status::invalid_argument("[state] redis_password_env: the environment variable " +
                                    state.redis_password_env + " is not set");
  }
  address->password = password;
  return address;
}

RedisScript::RedisScript(std::string t) : text(std::move(t)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  sha1 = detail::hex_of_bytes(digest, SHA_DIGEST_LENGTH);
}

struct RedisClient::Impl {
  RedisAddress address;
  std::chrono::milliseconds timeout;

  std::mutex mu;
  std::vector<Context> idle;               // guarded by mu
  SteadyClock::time_point retry_at{};      // guarded by mu: while down, no call before this
  std::chrono::milliseconds backoff{0};    // guarded by mu: 0 while up
  bool probing = false;                    // guarded by mu: one call is trying a down server

  // A connection to use, or why there is none. The caller gives it back with put() or drops it.
  Result<Context> take() {
    {
      std::lock_guard lock(mu);
      if (backoff.count() > 0) {
        if (probing || SteadyClock::now() < retry_at) {
          return Status::unavailable("redis " + address.host + ":" + std::to_string(address.port) +
                                     " is down (retrying with back-off)");
        }
        probing = true;
      }
      if (!idle.empty()) {
        Context c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    const timeval tv = to_timeval(timeout);
    std::string why;
    Context c;
    if (async::Fiber* fiber = async::Fiber::current()) {
      c = connect_on_fiber(*fiber, why);
    } else {
      c.reset(redisConnectWithTimeout(address.host.c_str(), address.port, tv));
      if (!c || c->err) {
        why = c ? c->errstr : "out of memory";
        c.reset();
      }
    }
    if (!c) {
      failed();
      return Status::unavailable("cannot connect to redis " + address.host + ":" + std::to_string(address.port) +
                                 ": " + why);
    }
    redisSetTimeout(c.get(), tv);
    if (!address.password.empty()) {
      std::vector<std::string> auth = {"AUTH"};
      if (!address.user.empty()) auth.push_back(address.user);
      auth.push_back(address.password);
      const std::string server = "redis " + address.host + ":" + std::to_string(address.port);
      if (Status s = ready(c, auth, "redis AUTH: ", server + " refused AUTH: "); !s.ok()) return s;
    }
    if (address.db != 0) {
      const std::string select = "redis SELECT " + std::to_string(address.db) + ": ";
      if (Status s = ready(c, {"SELECT", std::to_string(address.db)}, select, select); !s.ok()) return s;
    }
    return c;
  }

  // One command that readies a new connection (AUTH, SELECT). Its failure
  // fails the connection (dropped, and the back-off): a transport error as
  // `failed_as` + what broke, an error reply as `refused_as` + Redis's words.
  Status ready(Context& c, const std::vector<std::string>& argv, const std::string& failed_as,
               const std::string& refused_as) {
    auto r = run(c, argv);  // on failure: dropped, failed()
    if (!r.ok()) return Status::unavailable(failed_as + r.status().message());
    if (r.value()->type != REDIS_REPLY_ERROR) return Status();
    failed();
    return Status::unavailable(refused_as + std::string(r.value()->str, r.value()->len));
  }

  // Opens a connection from a fiber: the host name's lookup and the connect
  // wait on the loop, together at most the timeout; each address the name
  // has is tried in turn. Then the socket is made blocking again and
  // hiredis's context marked so, as redisConnectWithTimeout leaves it, for
  // the calls made off a fiber later. Null with `why` set when it fails.
  Context connect_on_fiber(async::Fiber& fiber, std::string& why) {
    const SteadyClock::time_point deadline = SteadyClock::now() + timeout;
    auto addresses = async::resolve(fiber, address.host, static_cast<std::uint16_t>(address.port), deadline);
    if (!addresses.ok()) {
      why = addresses.status().message();
      return nullptr;
    }
    for (const auto& endpoint : *addresses) {
      if (Context c = connect_to(fiber, endpoint.address().to_string(), deadline, why)) return c;
      if (SteadyClock::now() >= deadline) break;
    }
    return nullptr;
  }

  // Connects to one address (an IP literal: hiredis looks nothing up).
  Context connect_to(async::Fiber& fiber, const std::string& ip, SteadyClock::time_point deadline,
                     std::string& why) {
    Context c(redisConnectNonBlock(ip.c_str(), address.port));
    if (!c || c->err) {
      why = c ? c->errstr : "out of memory";
      return nullptr;
    }
    {
      SocketWait socket(fiber, c->fd, deadline);
      if (!socket.wait(boost::asio::posix::stream_descriptor::wait_write)) {
        why = "connect timed out after " + std::to_string(timeout.count()) + " ms";
        return nullptr;
      }
    }
    int error = 0;
    socklen_t length = sizeof error;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
    if (error != 0) {
      why = std::strerror(error);
      return nullptr;
    }
    const int flags = fcntl(c->fd, F_GETFL);
    if (flags < 0 || fcntl(c->fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
      why = std::strerror(errno);
      return nullptr;
    }
    c->flags |= REDIS_BLOCK;
    return c;
  }

  void put(Context c) {
    std::lock_guard lock(mu);
    backoff = std::chrono::milliseconds{0};
    probing = false;
    if (idle.size() < 64) idle.push_back(std::move(c));
  }

  void failed() {
    std::lock_guard lock(mu);
    backoff = backoff.count() == 0 ? kFirstBackoff : std::min(backoff * 2, kMaxBackoff);
    retry_at = SteadyClock::now() + backoff;
    probing = false;
    idle.clear();  // they were made before the failure: likely broken too
  }

  // A server that wants a password this client has not given (NOAUTH; or,
  // to a long command, "Protocol error: unauthenticated multibulk length",
  // and the connection closed): the server is as good as unreachable
  // (kUnavailable, and the back-off), not the command's or script's own
  // failure. Ok for any other reply.
  Status signed_out(const redisReply& reply) {
    const std::string_view error(reply.str, reply.len);
    if (reply.type != REDIS_REPLY_ERROR ||
        (!error.starts_with("NOAUTH") && error.find("Protocol error: unauthenticated") == std::string_view::npos)) {
      return Status();
    }
    failed();
    return Status::unavailable("redis " + address.host + ":" + std::to_string(address.port) +
                               " requires a password (set one in redis_url or redis_password_env): " +
                               std::string(reply.str, reply.len));
  }

  // One command on `c`; a transport error (drops the connection) becomes kUnavailable.
  Result<ReplyPtr> run(Context& c, const std::vector<std::string>& argv) {
    std::vector<const char*> ptrs;
    std::vector<std::size_t> lens;
    for (const std::string& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    ReplyPtr r;
    std::string why;
    if (async::Fiber* fiber = async::Fiber::current()) {
      r = exchange_on_fiber(*fiber, *c, ptrs, lens, timeout, why);
    } else {
      r.reset(static_cast<redisReply*>(
          redisCommandArgv(c.get(), static_cast<int>(argv.size()), ptrs.data(), lens.data())));
      if (!r) why = c->errstr;
    }
    if (!r) {
      c.reset();
      failed();
      return Status::unavailable("redis " + address.host + ":" + std::to_string(address.port) + ": " + why);
    }
    return r;
  }
};

RedisClient::RedisClient(RedisAddress address, std::chrono::milliseconds timeout) : impl_(std::make_unique<Impl>()) {
  impl_->address = std::move(address);
  impl_->timeout = timeout;
}

RedisClient::~RedisClient() = default;

Result<RedisReply> RedisClient::command(const std::vector<std::string>& argv) {
  auto c = impl_->take();
  if (!c.ok()) return c.status();
  Context conn = std::move(c).value();
  auto r = impl_->run(conn, argv);
  if (!r.ok()) return r.status();
  const redisReply& reply = *r.value();
  if (Status s = impl_->signed_out(reply); !s.ok()) return s;
  if (reply.type == REDIS_REPLY_ERROR) {
    impl_->put(std::move(conn));
    return Status::internal("redis: " + std::string(reply.str, reply.len));
  }
  RedisReply out = convert(reply);
  impl_->put(std::move(conn));
  return out;
}

Result<RedisReply> RedisClient::eval(const RedisScript& script, const std::vector<std::string>& keys,
                                     const std::vector<std::string>& args) {
  auto c = impl_->take();
  if (!c.ok()) return c.status();
  Context conn = std::move(c).value();
  std::vector<std::string> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.emplace_back("EVALSHA");
  argv.push_back(script.sha1);
  argv.push_back(std::to_string(keys.size()));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = impl_->run(conn, argv);
  if (!r.ok()) return r.status();
  if (r.value()->type == REDIS_REPLY_ERROR && std::string_view(r.value()->str, r.value()->len).starts_with("NOSCRIPT")) {
    argv[0] = "EVAL";
    argv[1] = script.text;
    r = impl_->run(conn, argv);
    if (!r.ok()) return r.status();
  }
  const redisReply& reply = *r.value();
  if (Status s = impl_->signed_out(reply); !s.ok()) return s;
  if (reply.type == REDIS_REPLY_ERROR) {
    const std::string why(reply.str, reply.len);
    impl_->put(std::move(conn));
    return Status::internal("redis script: " + why);
  }
  RedisReply out = convert(reply);
  impl_->put(std::move(conn));
  return out;
}

}  // namespace switchboard::detail
