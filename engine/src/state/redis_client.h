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

#include "switchboard/status.h"

namespace switchboard::detail {

/// Where a Redis server is, from "redis://HOST[:PORT][/DB]".
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
};
/// Parses `url`; fails with kInvalidArgument naming what is wrong.
Result<RedisAddress> parse_redis_url(std::string_view url);

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
