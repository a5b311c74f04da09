// read_json_within (json_read.h): simdjson's tape copied into nlohmann::json.
#include "api/json_read.h"

#include <cstdint>
#include <memory>
#include <string>

#include <simdjson.h>

namespace switchboard::gateway::detail {
namespace {

using nlohmann::json;
namespace dom = simdjson::dom;

// A thread's parser keeps its buffers between bodies up to this size; a
// larger body gets a parser of its own, freed after it, so one large request
// does not pin its buffers (several times its size) to an I/O thread.
constexpr std::size_t kKeptCapacity = 64 * 1024;

// Copies `e`, `depth` containers deep, into `out`; false when a container
// nests past `limit`.
bool copy(dom::element e, std::size_t depth, std::size_t limit, json& out) {
  switch (e.type()) {
    case dom::element_type::OBJECT: {
      if (depth > limit) return false;
      out = json(json::value_t::object);
      json::object_t& members = out.get_ref<json::object_t&>();
      for (dom::key_value_pair member : dom::object(e)) {
        json value;
        if (!copy(member.value, depth + 1, limit, value)) return false;
        members.insert_or_assign(std::string(member.key), std::move(value));  // the last duplicate wins
      }
      return true;
    }
    case dom::element_type::ARRAY: {
      if (depth > limit) return false;
      out = json(json::value_t::array);
      json::array_t& items = out.get_ref<json::array_t&>();
      for (dom::element item : dom::array(e)) {
        items.emplace_back();
        if (!copy(item, depth + 1, limit, items.back())) return false;
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

}  // namespace

bool read_json_within(std::string_view text, std::size_t max_depth, json& out) {
  thread_local dom::parser kept;
  std::unique_ptr<dom::parser> own;
  dom::parser* parser = &kept;
  if (text.size() > kKeptCapacity) {
    own = std::make_unique<dom::parser>();
    parser = own.get();
  }
  dom::element root;
  // Copies the text into the parser's padded buffer.
  if (parser->parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(root) != simdjson::SUCCESS) return false;
  return copy(root, 1, max_depth < kFastReadDepth ? max_depth : kFastReadDepth, out);
}

}  // namespace switchboard::gateway::detail
