// read_json_within (json_read.h): simdjson's tape copied into nlohmann::json.
#include "api/json_read.h"

#include <bit>
#include <cstdint>
#include <memory>
#include <string>

#include <simdjson.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

std::int64_t count_json_values(std::string_view text) {
  std::int64_t values = 0;
  bool in_string = false;
  const char* p = text.data();
  const char* const end = p + text.size();
#if defined(__SSE2__)
  // A block at a time: outside a string, its structural bytes before its
  // first quote; inside, a jump to its first quote or backslash.

  // The set bits of a block's 16-bit mask, without a library call where
  // the target has no POPCNT instruction (std::popcount calls libgcc there).
  const auto count16 = [](unsigned m) {
    m = m - ((m >> 1) & 0x5555u);
    m = (m & 0x3333u) + ((m >> 2) & 0x3333u);
    m = (m + (m >> 4)) & 0x0F0Fu;
    return static_cast<std::int64_t>((m + (m >> 8)) & 0x1Fu);
  };
  const auto bits = [](__m128i v, char c) {
    return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c))));
  };
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const unsigned quotes = bits(v, '"');
    if (!in_string) {
      const unsigned structural = bits(v, '{') | bits(v, '[') | bits(v, ',');
      if (quotes == 0) {
        values += count16(structural);
        p += 16;
        continue;
      }
      const int q = std::countr_zero(quotes);
      values += count16(structural & ((1u << q) - 1));
      p += q + 1;
      in_string = true;
      continue;
    }
    const unsigned backslashes = bits(v, '\\');
    const unsigned stops = quotes | backslashes;
    if (stops == 0) {
      p += 16;
      continue;
    }
    const int k = std::countr_zero(stops);
    if ((backslashes >> k) & 1u) {
      p = end - p > k + 2 ? p + k + 2 : end;  // past the escaped byte
    } else {
      p += k + 1;
      in_string = false;
    }
  }
#endif
  for (std::size_t i = static_cast<std::size_t>(p - text.data()); i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '{' || c == '[' || c == ',') {
      ++values;
    } else if (c == '"') {
      in_string = true;
    }
  }
  return values;
}

}  // namespace switchboard::gateway::detail
