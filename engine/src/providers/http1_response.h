// Http1Response: an HTTP/1.1 response read from bytes as they arrive (RFC
// 9112), for the fiber loop's own client (http1_on_loop.h).
//
// The head is collected until its blank line (at most `head_limit` bytes),
// then read: the status line, each field once (to the handler), and the
// framing: a 1xx answer (not 101) is skipped and the next response read; 204
// and 304 have no body; `Transfer-Encoding` ending in chunked is read chunk
// by chunk (extensions ignored, trailers read and dropped); any other
// transfer coding, or neither header, reads to the connection's close; else
// `Content-Length` (several must agree). The body reaches the handler piece
// by piece, decoded of its chunking, as it is fed.
//
// Not Beast's parser, on purpose: Beast's field table is a static object
// whose layout depends on BOOST_BEAST_USE_STD_STRING_VIEW, and a host built
// with the other setting (the gateway sets it) shares that object with the
// engine at link time, which then misreads every field name. A parser of the
// engine's own has no such tie to its host's configuration.
//
// Thread-safety: none; one per response.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard {

class Http1Response {
 public:
  // What the reader finds, as it finds it.
  class Handler {
   public:
    virtual ~Handler() = default;
    // A response's status line was read (again after a 1xx).
    virtual void status(int code) = 0;
    // One field of that response's head; false refuses the answer (feed() fails).
    virtual bool field(std::string_view name, std::string_view value) = 0;
    // A piece of the body; false stops reading (stopped() is then true).
    virtual bool body(std::string_view piece) = 0;
  };

  Http1Response(Handler& handler, std::size_t head_limit) : handler_(handler), head_limit_(head_limit) {}

  // Reads `bytes`; returns how many were used: all of them, unless the
  // response ended (done()), failed or was stopped before their end.
  std::size_t feed(std::string_view bytes);
  // The server closed the connection: a body read to the close ends here;
  // anything else unfinished fails.
  void end_of_input();

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kFailed; }
  bool stopped() const { return stopped_; }
  // What was wrong, when failed().
  const std::string& error() const { return error_; }
  // The head of the final response has been read.
  bool head_done() const { return head_done_; }
  // Whether the connection may carry another request after this response
  // (HTTP/1.1 without "Connection: close", or 1.0 with keep-alive; a body
  // read to the close never).
  bool keep_alive() const { return keep_alive_ && framing_ != Framing::kUntilClose; }

 private:
  enum class State { kHead, kBody, kChunkSize, kChunkData, kChunkEnd, kTrailers, kDone, kFailed };
  enum class Framing { kNone, kLength, kChunked, kUntilClose };

  // Reads the head in head_ (its blank line included); false when it failed.
  bool read_head();
  bool fail(std::string why);
  // Sends `n` body bytes at `p` to the handler; false when it stopped.
  bool deliver(const char* p, std::size_t n);

  Handler& handler_;
  const std::size_t head_limit_;
  State state_ = State::kHead;
  Framing framing_ = Framing::kNone;
  std::string head_;  // the head so far; then a chunk-size or trailer line so far
  std::uint64_t left_ = 0;  // body or chunk bytes still to come
  bool head_done_ = false;
  bool keep_alive_ = false;
  bool stopped_ = false;
  std::string error_;
};

}  // namespace switchboard
