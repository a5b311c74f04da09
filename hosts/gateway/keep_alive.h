// KeepAlive: writes to streams whose upstream has gone quiet, so that
// proxies' idle timeouts do not cut a long turn (a model thinking for a
// minute before its first token, a tool-only turn).
//
// A stream registers while it runs and writes its events through its
// Stream, under the Stream's lock; one thread visits the registered streams
// every `tick` and, for each that wrote nothing for its `interval`, writes
// its keep-alive bytes (StreamWriter::keep_alive: an SSE comment, Anthropic's
// ping) under the same lock, so they never fall inside an event.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::gateway {

class KeepAlive {
 public:
  using Clock = std::chrono::steady_clock;

  // One stream's writes. `write` sends bytes to the client; set by the
  // stream's owner once its head went out.
  class Stream {
   public:
    // Sends `bytes` now (under the lock) and restarts the idle clock.
    void write(std::string bytes);
    // From now on nothing is written for the stream (its owner is done).
    void close();

   private:
    friend class KeepAlive;
    Stream(std::chrono::milliseconds interval, std::function<void(std::string)> sink,
           std::function<std::string()> keep_alive)
        : interval_(interval), sink_(std::move(sink)), keep_alive_(std::move(keep_alive)) {}
    // Writes the keep-alive bytes when idle for the interval; false once closed.
    bool tick(Clock::time_point now);

    std::mutex mu_;
    const std::chrono::milliseconds interval_;
    const std::function<void(std::string)> sink_;
    const std::function<std::string()> keep_alive_;
    Clock::time_point last_ = Clock::now();
    bool closed_ = false;
  };

  explicit KeepAlive(std::chrono::milliseconds tick = std::chrono::milliseconds(100));
  ~KeepAlive();  // stops and joins the thread
  KeepAlive(const KeepAlive&) = delete;
  KeepAlive& operator=(const KeepAlive&) = delete;

  // A stream that `sink` writes to and that gets `keep_alive()` after each
  // `interval` of silence (0: never). The caller closes it when done; it is
  // dropped here at the next tick after that.
  std::shared_ptr<Stream> add(std::chrono::milliseconds interval, std::function<void(std::string)> sink,
                              std::function<std::string()> keep_alive);

 private:
  void run();

  const std::chrono::milliseconds tick_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::shared_ptr<Stream>> streams_;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace switchboard::gateway
