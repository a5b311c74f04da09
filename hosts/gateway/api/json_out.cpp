#include "api/json_out.h"

#include <cassert>
#include <charconv>

#include "switchboard/json_text.h"

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
  append_json_string(out_, value);
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

JsonOut& JsonOut::boolean(bool value) {
  separate();
  out_ += value ? "true" : "false";
  return *this;
}

JsonOut& JsonOut::raw(std::string_view json) {
  separate();
  out_ += json;
  return *this;
}

}  // namespace switchboard::gateway::detail
