#include "api/json_out.h"

#include <cassert>
#include <charconv>

#include <nlohmann/json.hpp>
#include <simdjson.h>

namespace switchboard::gateway::detail {

void JsonOut::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (depth_ > 0) {
    if (!first_[depth_]) out_ += ',';
    first_[depth_] = false;
  }
}

JsonOut& JsonOut::key(std::string_view name) {
  separate();
  out_ += '"';
  out_ += name;
  out_ += "\":";
  after_key_ = true;
  return *this;
}

JsonOut& JsonOut::open(char bracket) {
  separate();
  out_ += bracket;
  assert(depth_ < kMaxDepth);
  first_[++depth_] = true;
  return *this;
}

JsonOut& JsonOut::close(char bracket) {
  out_ += bracket;
  --depth_;
  return *this;
}

JsonOut& JsonOut::string(std::string_view value) {
  separate();
  append_string(out_, value);
  return *this;
}

JsonOut& JsonOut::integer(std::int64_t value) {
  separate();
  char digits[24];
  const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
  out_.append(digits, end);
  return *this;
}

JsonOut& JsonOut::null() {
  separate();
  out_ += "null";
  return *this;
}

JsonOut& JsonOut::raw(std::string_view json) {
  separate();
  out_ += json;
  return *this;
}

void JsonOut::append_string(std::string& out, std::string_view value) {
  if (!simdjson::validate_utf8(value.data(), value.size())) {
    out += nlohmann::json(std::string(value)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + value.size() + 2);
  out += '"';
  std::size_t run = 0;  // start of the bytes not yet copied
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(value.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
        break;
    }
  }
  out.append(value.data() + run, value.size() - run);
  out += '"';
}

}  // namespace switchboard::gateway::detail
