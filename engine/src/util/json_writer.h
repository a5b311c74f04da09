// JsonWriter: appends one JSON object to a string, field by field, without
// building a document first. For the hot path's fixed-shape lines (ledger
// records), where nlohmann::json's tree (a node allocated per field, the
// keys in a map) costs more than the record itself.
//
// Contract: the text is exactly what nlohmann::json's dump(-1, ' ', false,
// error_handler_t::replace) writes for the same values (strings escaped the
// same way, invalid UTF-8 replaced by U+FFFD, doubles in the same shortest
// form), with the fields in the order they are written. Keys are written as
// given: they must be plain ASCII names with nothing to escape.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard {

class JsonWriter {
 public:
  // Appends to `out`, starting with '{'.
  explicit JsonWriter(std::string& out);
  JsonWriter(const JsonWriter&) = delete;
  JsonWriter& operator=(const JsonWriter&) = delete;

  JsonWriter& string(std::string_view key, std::string_view value);
  JsonWriter& integer(std::string_view key, std::int64_t value);
  JsonWriter& number(std::string_view key, double value);
  JsonWriter& boolean(std::string_view key, bool value);
  JsonWriter& null(std::string_view key);
  JsonWriter& strings(std::string_view key, const std::vector<std::string>& values);
  // `json` must be one complete JSON value (an object written by another
  // JsonWriter, say); it is copied as it is.
  JsonWriter& raw(std::string_view key, std::string_view json);
  // Opens a nested object under `key`; close it with end() before the next field.
  JsonWriter& begin_object(std::string_view key);
  // Closes the innermost open object (the outermost last).
  JsonWriter& end();

  // Appends `value` to `out` as a JSON string (with its quotes).
  static void append_string(std::string& out, std::string_view value);

 private:
  void key(std::string_view key);

  std::string& out_;
  bool first_ = true;  // no field yet in the innermost open object
};

}  // namespace switchboard
