// JsonWriter: plain appends; strings and doubles through json_dump.h, so the
// escaping and number forms are nlohmann::json's own.
#include "util/json_writer.h"

#include <charconv>
#include <cstring>
#include <iterator>

#include <nlohmann/json.hpp>

#include "json/dump.h"

namespace switchboard {

JsonWriter::JsonWriter(std::string& out) : out_(out) { out_ += '{'; }

void JsonWriter::append_string(std::string& out, std::string_view value) { append_json_string(out, value); }

namespace {

// A field's text: `,"key":` (no comma first), then room for a number or a
// short string: a field is one append.
struct KeyText {
  static constexpr std::size_t kMaxKey = 64;
  static constexpr std::size_t kMaxValue = 64;
  char text[kMaxKey + 4 + kMaxValue + 2];
  std::size_t size = 0;

  // False when `key` is longer than kMaxKey.
  bool set(std::string_view key, bool first) {
    if (key.size() > kMaxKey) return false;
    if (!first) text[size++] = ',';
    text[size++] = '"';
    std::memcpy(text + size, key.data(), key.size());
    size += key.size();
    text[size++] = '"';
    text[size++] = ':';
    return true;
  }
};

}  // namespace

void JsonWriter::key(std::string_view key) {
  KeyText text;
  if (text.set(key, first_)) {
    out_.append(text.text, text.size);
  } else {
    if (!first_) out_ += ',';
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  first_ = false;
}

JsonWriter& JsonWriter::string(std::string_view k, std::string_view value) {
  KeyText text;
  if (value.size() <= KeyText::kMaxValue && json_plain(value) && text.set(k, first_)) {
    // Most fields (ids, names, versions): nothing to escape.
    text.text[text.size++] = '"';
    std::memcpy(text.text + text.size, value.data(), value.size());
    text.size += value.size();
    text.text[text.size++] = '"';
    out_.append(text.text, text.size);
    first_ = false;
    return *this;
  }
  key(k);
  append_string(out_, value);
  return *this;
}

JsonWriter& JsonWriter::integer(std::string_view k, std::int64_t value) {
  KeyText text;
  if (!text.set(k, first_)) {
    key(k);
    text.size = 0;
  }
  first_ = false;
  char* const end = std::to_chars(text.text + text.size, std::end(text.text), value).ptr;
  out_.append(text.text, end);
  return *this;
}

JsonWriter& JsonWriter::number(std::string_view k, double value) {
  key(k);
  out_ += dump_json(nlohmann::json(value));
  return *this;
}

JsonWriter& JsonWriter::boolean(std::string_view k, bool value) {
  key(k);
  out_ += value ? "true" : "false";
  return *this;
}

JsonWriter& JsonWriter::null(std::string_view k) {
  key(k);
  out_ += "null";
  return *this;
}

JsonWriter& JsonWriter::strings(std::string_view k, const std::vector<std::string>& values) {
  key(k);
  out_ += '[';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out_ += ',';
    append_string(out_, values[i]);
  }
  out_ += ']';
  return *this;
}

JsonWriter& JsonWriter::raw(std::string_view k, std::string_view json) {
  key(k);
  out_ += json;
  return *this;
}

JsonWriter& JsonWriter::begin_object(std::string_view k) {
  key(k);
  out_ += '{';
  first_ = true;
  return *this;
}

JsonWriter& JsonWriter::end() {
  out_ += '}';
  first_ = false;  // the closed object was a field of its parent
  return *this;
}

}  // namespace switchboard
