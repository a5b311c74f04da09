// Folder state/: what several processes share through Redis. It may use util/,
// async/ (a command on a fiber waits on its loop) and the public headers;
// hiredis appears in redis_client.cpp only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/budget.h"
#include "switchboard/status.h"

namespace switchboard::detail {

/// Where a Redis server is, from "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]",
/// and how to sign in: AUTH [USER] PASSWORD on every new connection when a
/// password is given (USER for a Redis 6 ACL user; none: the default user).
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string user{};      ///< percent-decoded; "" for the default user
  std::string password{};  ///< percent-decoded; "": no AUTH. Never in a message or log.
};
/// Parses `url`; fails with kInvalidArgument naming what is wrong (and
/// quoting the URL with its password as "***").
Result<RedisAddress> parse_redis_url(std::string_view url);
/// The address [state] gives: redis_url parsed, and the password from the
/// environment variable redis_password_env names, when it names one (then
/// unset or empty is kInvalidArgument naming the variable).
Result<RedisAddress> redis_address_of(const StateSettings& state);

/// One reply of a script: an integer, a string, nil, or an array of those.
struct RedisReply {
  enum class Type { kNil, kInteger, kString, kArray };
  Type type = Type::kNil;
  std::int64_t integer = 0;
  std::string string;
  std::vector<RedisReply> elements;
};

/// A Lua script with the SHA-1 Redis knows it by.
struct RedisScript {
  explicit RedisScript(std::string text);
  std::string text;
  std::string sha1;  ///< lower-case hex
};

/// Calls to one Redis server over a small pool of connections (one per
/// concurrent caller), each bounded by `timeout` (connecting included). Off a
/// fiber a call blocks its thread; on one (async/fiber.h) the host name's
/// lookup, the connect and the round trip wait on the fiber's loop, which
/// serves its other fibers meanwhile.
/// After a failure the client is "down": calls fail at once, without
/// touching the network, until a back-off (100 ms, doubling to 5 s) has
/// passed; then one call tries again. Thread-safe.
class RedisClient {
 public:
  RedisClient(RedisAddress address, std::chrono::milliseconds timeout);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /// Runs `script` by EVALSHA, and by EVAL when the server does not know it
  /// (NOSCRIPT: restarted, or SCRIPT FLUSH), which loads it again. Fails with
  /// kUnavailable when Redis cannot be reached or timed out (the connection
  /// is dropped), and with kInternal when the script itself raised an error.
  Result<RedisReply> eval(const RedisScript& script, const std::vector<std::string>& keys,
                          const std::vector<std::string>& args);
  /// Runs one command (tests and tools: FLUSHALL, SCRIPT FLUSH ...).
  Result<RedisReply> command(const std::vector<std::string>& argv);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchboard::detail
