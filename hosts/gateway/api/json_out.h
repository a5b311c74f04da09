// JsonOut: JSON text written value by value, for what the gateway answers
// (each API shape's answers and stream events), without building a tree first:
// nlohmann's tree allocates a node per value and a map per object, more
// than the answer itself costs to write.
//
// Contract: the text is byte for byte what to_text (common.h) writes for the
// same tree, provided the caller writes each object's keys in nlohmann's
// order (sorted) and keys are plain ASCII with nothing to escape: strings
// escaped as nlohmann escapes them (\" \\ \b \f \n \r \t, other control
// characters as \u00xx, the rest as it is); a string that is not valid UTF-8
// is written by nlohmann itself (each bad byte becomes U+FFFD).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace switchboard::gateway::detail {

class JsonOut {
 public:
  // Appends to `out`.
  explicit JsonOut(std::string& out) : out_(out) {}
  JsonOut(const JsonOut&) = delete;
  JsonOut& operator=(const JsonOut&) = delete;

  // A member's key; its value comes next.
  JsonOut& key(std::string_view name);

  JsonOut& begin_object() { return open('{'); }
  JsonOut& end_object() { return close('}'); }
  JsonOut& begin_array() { return open('['); }
  JsonOut& end_array() { return close(']'); }
  JsonOut& string(std::string_view value);
  JsonOut& integer(std::int64_t value);
  JsonOut& null();
  JsonOut& boolean(bool value);
  // One complete JSON value, copied as it is.
  JsonOut& raw(std::string_view json);


 private:
  // Before a value or a key: the comma that separates it from the one before.
  void separate();
  // Opens or closes an object or array.
  JsonOut& open(char bracket);
  JsonOut& close(char bracket);

  static constexpr int kMaxDepth = 32;
  std::string& out_;
  std::array<bool, kMaxDepth + 1> first_{};  // per open container: nothing written in it yet
  int depth_ = 0;
  bool after_key_ = false;
};

}  // namespace switchboard::gateway::detail
