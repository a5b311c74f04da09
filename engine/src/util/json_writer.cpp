// JsonWriter: plain appends; strings and doubles through json_dump.h, so the
// escaping and number forms are nlohmann::json's own.
#include "util/json_writer.h"

#include <charconv>

#include <nlohmann/json.hpp>

#include "util/json_dump.h"

namespace switchboard {

JsonWriter::JsonWriter(std::string& out) : out_(out) { out_ += '{'; }

void JsonWriter::append_string(std::string& out, std::string_view value) { append_json_string(out, value); }

void JsonWriter::key(std::string_view key) {
  if (!first_) out_ += ',';
  first_ = false;
  out_ += '"';
  out_ += key;
  out_ += "\":";
}

JsonWriter& JsonWriter::string(std::string_view k, std::string_view value) {
  key(k);
  append_string(out_, value);
  return *this;
}

JsonWriter& JsonWriter::integer(std::string_view k, std::int64_t value) {
  key(k);
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, end);
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
