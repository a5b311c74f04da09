// redact_secrets (api.h): key-like tokens out of the error text the gateway
// relays from upstreams. The engine's HTTP client scrubs the one key it sent
// (http_model_client.cpp); an upstream may also quote a key of its own, or a
// masked one ("Incorrect API key provided: sk-upst…3a9c"), which that cannot
// know: this catches every token shaped like a key.
#include <string>
#include <string_view>

#include "api/api.h"

namespace switchboard::gateway {

namespace {

// What a key is made of: base64url.
bool key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool word_char(char c) { return key_char(c); }

// The length of a mask at `at`: "…" (UTF-8 or JSON-escaped), "..." or a run
// of '*'; 0 when there is none.
std::size_t mask_at(std::string_view text, std::size_t at) {
  const std::string_view rest = text.substr(at);
  for (std::string_view mask : {std::string_view("\xE2\x80\xA6"), std::string_view("\\u2026"), std::string_view("...")}) {
    if (rest.substr(0, mask.size()) == mask) return mask.size();
  }
  std::size_t n = 0;
  while (n < rest.size() && rest[n] == '*') ++n;
  return n;
}

// The length of the key-like token at `at` (its prefix already matched, `prefix` long), or 0.
std::size_t token_at(std::string_view text, std::size_t at, std::size_t prefix) {
  std::size_t end = at + prefix;
  std::size_t body = 0;  // key characters and masks after the prefix
  for (;;) {
    const std::size_t start = end;
    while (end < text.size() && key_char(text[end])) ++end;
    body += end - start;
    const std::size_t mask = end < text.size() ? mask_at(text, end) : 0;
    // A mask belongs to the token only when key characters follow it
    // ("sk-upst…3a9c"), or it ends a token already long enough to be a key's start.
    if (mask == 0) break;
    if (end + mask < text.size() && key_char(text[end + mask])) {
      end += mask;
      body += mask;
      continue;
    }
    if (body >= 4) end += mask;
    break;
  }
  return body >= 4 ? end - at : 0;
}

}  // namespace

std::string redact_secrets(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const bool boundary = i == 0 || !word_char(text[i - 1]);
    std::size_t n = 0;
    if (boundary) {
      if (text.substr(i, 3) == "sk-") n = token_at(text, i, 3);
      else if (text.substr(i, 4) == "AIza") n = token_at(text, i, 4);
    }
    if (n > 0) {
      out += "[redacted]";
      i += n;
    } else {
      out += text[i++];
    }
  }
  return out;
}

}  // namespace switchboard::gateway
