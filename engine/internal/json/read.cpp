// read_json (json_read.h): simdjson's tape copied into nlohmann::json, and
// nlohmann's reader for whatever simdjson refuses.
#include "json/read.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

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

// The thread's parser, and whether a JsonDom holds it.
struct ThreadParser {
  dom::parser parser;
  bool busy = false;
};

ThreadParser& thread_parser() {
  thread_local ThreadParser parser;
  return parser;
}

}  // namespace

std::optional<JsonDom> JsonDom::parse(std::string_view text) {
  JsonDom dom;
  dom::parser* parser = nullptr;
  ThreadParser& shared = thread_parser();
  if (text.size() <= kKeptCapacity && !shared.busy) {
    parser = &shared.parser;
  } else {
    dom.own_ = std::make_unique<dom::parser>();
    parser = dom.own_.get();
  }
  // Copies the text into the parser's padded buffer.
  if (parser->parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(dom.root_) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  if (parser == &shared.parser) shared.busy = dom.holds_thread_parser_ = true;
  return dom;
}

JsonDom::JsonDom(JsonDom&& other) noexcept
    : holds_thread_parser_(std::exchange(other.holds_thread_parser_, false)),
      own_(std::move(other.own_)),
      root_(other.root_) {}

JsonDom::~JsonDom() {
  if (holds_thread_parser_) thread_parser().busy = false;
}

json to_json(dom::element value) {
  json out;
  if (copy(value, 1, out)) return out;
  // Nested deeper than the copy recurses: nlohmann's reader, on the text
  // simdjson writes for it (the same values; simdjson read them).
  return json::parse(simdjson::to_string(value));
}

namespace {

// nests_within for a value `depth` containers below the top.
bool nests_within_at(dom::element value, std::size_t depth, std::size_t limit) {
  switch (value.type()) {
    case dom::element_type::OBJECT:
      if (depth >= limit) return false;
      for (dom::key_value_pair member : dom::object(value)) {
        if (!nests_within_at(member.value, depth + 1, limit)) return false;
      }
      return true;
    case dom::element_type::ARRAY:
      if (depth >= limit) return false;
      for (dom::element item : dom::array(value)) {
        if (!nests_within_at(item, depth + 1, limit)) return false;
      }
      return true;
    default:
      return true;
  }
}

}  // namespace

bool nests_within(dom::element value, std::size_t max_depth) {
  return nests_within_at(value, 0, max_depth < kFastDepth ? max_depth : kFastDepth);
}

json read_json(std::string_view text) {
  if (std::optional<JsonDom> dom = JsonDom::parse(text)) {
    json out;
    if (copy(dom->root(), 1, out)) return out;
  }
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace switchboard
