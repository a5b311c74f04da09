// read_json (json_read.h): simdjson's tape copied into nlohmann::json, and
// nlohmann's reader for whatever simdjson refuses.
#include "util/json_read.h"

#include <cstdint>
#include <memory>
#include <string>

#include <simdjson.h>

namespace switchboard {
namespace {

using nlohmann::json;
namespace dom = simdjson::dom;

// A thread's parser keeps its buffers between documents up to this size;
// a larger document gets a parser of its own, freed after it, so one large
// body does not pin its buffers (about ten times its size) to the thread.
constexpr std::size_t kKeptCapacity = 64 * 1024;

// Copies `e`, `depth` containers deep (the root is 1), into `out`; false
// when a container nests deeper than kFastDepth.
bool copy(dom::element e, std::size_t depth, json& out) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      if (depth > kFastDepth) return false;
      out = json(json::value_t::object);
      json::object_t& members = out.get_ref<json::object_t&>();
      for (dom::key_value_pair member : dom::object(e)) {
        json value;
        if (!copy(member.value, depth + 1, value)) return false;
        members.insert_or_assign(std::string(member.key), std::move(value));  // the last duplicate wins
      }
      return true;
    }
    case dom::element_type::ARRAY: {
      if (depth > kFastDepth) return false;
      out = json(json::value_t::array);
      json::array_t& items = out.get_ref<json::array_t&>();
      for (dom::element item : dom::array(e)) {
        items.emplace_back();
        if (!copy(item, depth + 1, items.back())) return false;
      }
      return true;
    }
    case dom::element_type::STRING:
      out = std::string(std::string_view(e));
      return true;
    case dom::element_type::INT64: {
      const std::int64_t n = std::int64_t(e);
      if (n >= 0) {
        out = static_cast<std::uint64_t>(n);  // nlohmann reads a number without a sign as unsigned
      } else {
        out = n;
      }
      return true;
    }
    case dom::element_type::UINT64:
      out = std::uint64_t(e);
      return true;
    case dom::element_type::DOUBLE:
      out = double(e);
      return true;
    case dom::element_type::BOOL:
      out = bool(e);
      return true;
    case dom::element_type::NULL_VALUE:
      out = nullptr;
      return true;
  }
  return false;  // not reached: every element type is handled above
}

dom::parser& thread_parser() {
  thread_local dom::parser parser;
  return parser;
}

// True when simdjson read `text` and `out` is its tree.
bool read_fast(std::string_view text, json& out) {
  std::unique_ptr<dom::parser> own;
  dom::parser* parser = &thread_parser();
  if (text.size() > kKeptCapacity) {
    own = std::make_unique<dom::parser>();
    parser = own.get();
  }
  // Copies the text into the parser's padded buffer.
  dom::element root;
  if (parser->parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(root) != simdjson::SUCCESS) return false;
  return copy(root, 1, out);
}

}  // namespace

json read_json(std::string_view text) {
  json out;
  if (read_fast(text, out)) return out;
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace switchboard
