// SseParser: an incremental Server-Sent Events parser (the WHATWG
// "event stream" format), for streamed model answers.
//
// Feed it the body in pieces of any size; it emits each complete event as
// (type, data): `event:` sets the type ("message" when absent), `data:` lines
// are joined with "\n", `id:` and `retry:` are ignored, lines starting with
// ':' are comments. Lines end with "\n", "\r\n" or "\r", and a piece may end
// anywhere, even between the "\r" and "\n" of one line end. An event is
// complete at the blank line after it; one with no `data:` line is dropped.
// At the end of the body an unfinished event is dropped, as the standard
// says: a stream cut mid-event must not look like a finished one.
// Not thread-safe: one parser per stream.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace switchboard {

struct SseEvent {
  std::string type;  // the `event:` field, or "message"
  std::string data;  // the `data:` lines joined with "\n"
  bool operator==(const SseEvent&) const = default;
};

// Receives each complete event; returns false to stop parsing.
using SseHandler = std::function<bool(const SseEvent& event)>;

class SseParser {
 public:
  // Parses `piece`, calling `on_event` for every event it completes. Returns
  // false once a handler returned false; the parser then ignores all input.
  bool feed(std::string_view piece, const SseHandler& on_event);

 private:
  // One complete line (without its line end).
  bool line(std::string_view text, const SseHandler& on_event);

  std::string partial_;      // a line not yet ended
  std::string type_;
  std::string data_;
  bool has_data_ = false;
  bool after_cr_ = false;    // the last piece ended in "\r": skip a leading "\n"
  bool at_start_ = true;     // a UTF-8 byte order mark may open the stream
  bool stopped_ = false;
};

}  // namespace switchboard
