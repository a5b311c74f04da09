// An HTTP/1.1 response read as it arrives (http1_response.h).
#include "providers/http1_response.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <utility>

#include "util/ascii.h"

namespace switchboard {

namespace {

constexpr std::size_t kMaxLine = 4096;  // a chunk-size or trailer line longer than this is garbage


std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// RFC 9110's tchar, as a table: looked up for every byte of every header name.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<std::size_t>(c)] = true;
  for (const char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
  return t;
}();

bool is_token_char(char c) { return kTokenChars[static_cast<unsigned char>(c)]; }

// A decimal count; nullopt when not only digits or too large.
std::optional<std::uint64_t> decimal(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::uint64_t n = 0;
  for (const char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

// Calls `each` with every comma-separated token of `list`, trimmed.
template <typename Each>
void for_each_token(std::string_view list, Each&& each) {
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    const std::string_view token = trim(list.substr(0, comma));
    if (!token.empty()) each(token);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace

bool Http1Response::fail(std::string why) {
  state_ = State::kFailed;
  error_ = std::move(why);
  return false;
}

bool Http1Response::deliver(const char* p, std::size_t n) {
  if (n == 0 || handler_.body(std::string_view(p, n))) return true;
  stopped_ = true;
  state_ = State::kDone;
  return false;
}

bool Http1Response::read_head() {
  std::string_view head(head_);
  head.remove_suffix(2);  // the blank line's CRLF; each line below ends with its own
  // The status line: HTTP/1.x SP 3DIGIT [SP reason].
  std::size_t eol = head.find("\r\n");
  const std::string_view line = head.substr(0, eol);
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
      !std::isdigit(static_cast<unsigned char>(line[9])) || !std::isdigit(static_cast<unsigned char>(line[10])) ||
      !std::isdigit(static_cast<unsigned char>(line[11])) || (line.size() > 12 && line[12] != ' ')) {
    return fail("bad status line");
  }
  const bool http11 = line[7] == '1';
  const int code = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (code < 100) return fail("bad status code");
  handler_.status(code);
  bool chunked = false;
  bool other_coding = false;
  bool close = !http11;
  std::optional<std::uint64_t> length;
  head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
  while (!head.empty()) {
    eol = head.find("\r\n");
    const std::string_view field = head.substr(0, eol);
    head.remove_prefix(eol == std::string_view::npos ? head.size() : eol + 2);
    if (field.front() == ' ' || field.front() == '\t') return fail("obsolete line folding in the head");
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("bad header field");
    const std::string_view name = field.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), is_token_char)) return fail("bad header field name");
    const std::string_view value = trim(field.substr(colon + 1));
    if (iequals(name, "content-length")) {
      const std::optional<std::uint64_t> n = decimal(value);
      if (!n || (length && *length != *n)) return fail("bad Content-Length");
      length = n;
    } else if (iequals(name, "transfer-encoding")) {
      for_each_token(value, [&](std::string_view coding) {
        // Only the last coding frames the body: chunked last, or read to the close.
        chunked = iequals(coding, "chunked");
        other_coding = !chunked;
      });
    } else if (iequals(name, "connection")) {
      for_each_token(value, [&](std::string_view option) {
        if (iequals(option, "close")) close = true;
        if (iequals(option, "keep-alive") && !http11) close = false;
      });
    }
    if (!handler_.field(name, value)) return fail("the answer was refused");
  }
  if (code / 100 == 1) {
    if (code == 101) return fail("a protocol switch nobody asked for");
    head_.clear();  // an interim answer: the response follows
    return true;
  }
  head_done_ = true;
  keep_alive_ = !close;
  if (code == 204 || code == 304) {
    framing_ = Framing::kNone;
    state_ = State::kDone;
  } else if (chunked) {
    framing_ = Framing::kChunked;
    state_ = State::kChunkSize;
  } else if (other_coding || !length) {
    framing_ = Framing::kUntilClose;
    state_ = State::kBody;
  } else {
    framing_ = Framing::kLength;
    left_ = *length;
    state_ = left_ == 0 ? State::kDone : State::kBody;
  }
  head_.clear();
  return true;
}

std::size_t Http1Response::feed(std::string_view bytes) {
  const char* const begin = bytes.data();
  const char* p = begin;
  const char* const end = begin + bytes.size();
  auto used = [&] { return static_cast<std::size_t>(p - begin); };
  while (p < end) {
    switch (state_) {
      case State::kHead: {
        // Up to the blank line: searched from a little before what was new.
        const std::size_t from = head_.size() < 3 ? 0 : head_.size() - 3;
        // At most one byte past the limit: enough to know it was passed.
        const std::size_t room = head_limit_ + 1 - std::min(head_limit_, head_.size());
        const std::size_t take = std::min<std::size_t>(static_cast<std::size_t>(end - p), room);
        head_.append(p, take);
        const std::size_t blank = head_.find("\r\n\r\n", from);
        if (blank == std::string::npos) {
          p += take;
          if (head_.size() > head_limit_) {
            fail("the head is over " + std::to_string(head_limit_) + " bytes");
            return used();
          }
          break;
        }
        const std::size_t extra = head_.size() - (blank + 4);  // bytes past the head, not its
        head_.resize(blank + 4);
        p += take - extra;
        if (!read_head()) return used();
        break;
      }
      case State::kBody: {
        std::size_t n = static_cast<std::size_t>(end - p);
        if (framing_ == Framing::kLength) n = static_cast<std::size_t>(std::min<std::uint64_t>(n, left_));
        const bool more = deliver(p, n);
        p += n;
        if (!more) return used();
        if (framing_ == Framing::kLength) {
          left_ -= n;
          if (left_ == 0) state_ = State::kDone;
        }
        break;
      }
      case State::kChunkSize:
      case State::kTrailers:
      case State::kChunkEnd: {
        // A line: a chunk's size, the CRLF after its data, or a trailer.
        const char* lf = std::find(p, end, '\n');
        head_.append(p, lf);
        if (head_.size() > kMaxLine) {
          fail("a chunk line is over " + std::to_string(kMaxLine) + " bytes");
          return used();
        }
        if (lf == end) {
          p = end;
          break;
        }
        p = lf + 1;
        if (head_.empty() || head_.back() != '\r') {
          fail("a chunk line without CRLF");
          return used();
        }
        head_.pop_back();
        const std::string line = std::move(head_);
        head_.clear();
        if (state_ == State::kChunkEnd) {
          if (!line.empty()) {
            fail("chunk data longer than its size");
            return used();
          }
          state_ = State::kChunkSize;
        } else if (state_ == State::kTrailers) {
          if (line.empty()) state_ = State::kDone;  // trailers are read and dropped
        } else {
          const std::string_view size = trim(std::string_view(line).substr(0, line.find(';')));
          if (size.empty() || size.size() > 15 ||
              !std::all_of(size.begin(), size.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); })) {
            fail("bad chunk size");
            return used();
          }
          left_ = std::stoull(std::string(size), nullptr, 16);
          state_ = left_ == 0 ? State::kTrailers : State::kChunkData;
        }
        break;
      }
      case State::kChunkData: {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(static_cast<std::size_t>(end - p), left_));
        const bool more = deliver(p, n);
        p += n;
        if (!more) return used();
        left_ -= n;
        if (left_ == 0) state_ = State::kChunkEnd;
        break;
      }
      case State::kDone:
      case State::kFailed:
        return used();
    }
  }
  return used();
}

void Http1Response::end_of_input() {
  if (state_ == State::kDone || state_ == State::kFailed) return;
  if (state_ == State::kBody && framing_ == Framing::kUntilClose) {
    state_ = State::kDone;
    return;
  }
  fail(head_done_ ? "the connection closed mid-answer" : "the connection closed before the answer's head");
}

}  // namespace switchboard
