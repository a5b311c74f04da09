// One reading vocabulary for a JSON value held two ways: a node of an
// nlohmann::json tree, or an element of simdjson's DOM (JsonDom, read in
// place). A reader written against these functions (a template, or a generic
// lambda) reads either and gets the same answer: readers of the call path
// read the DOM, and the tree when simdjson refused the text (read.h).
//
// Same answers, by contract:
//  - member(v, key) is the last member of that name, as nlohmann keeps the
//    last of duplicate keys; for_each_member visits an object's members in
//    key order, the last of duplicate keys only, as a tree's map holds them;
//  - a number without a fraction or exponent is an integer; it is unsigned
//    when not negative (nlohmann's reading), whatever simdjson's tape says;
//  - tree_of(v) is the tree read_json makes of v's text, text_of(v) its
//    dump_json.
// `maybe` results are pointer-like: `const json*`, or an optional element;
// test them with `if (m)` and read with `*m`.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "json/dump.h"
#include "json/read.h"

namespace switchboard::json_node {

using nlohmann::json;
using Element = simdjson::dom::element;
using ElementType = simdjson::dom::element_type;

// --- nlohmann::json

inline const json* member(const json& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  auto it = v.find(key);
  return it != v.end() ? &*it : nullptr;
}
// Calls f(key, value) for each member of an object, in key order (a tree's
// std::map), until f returns false; false when f did. REQUIRES: is_object(v).
template <typename F>
bool for_each_member(const json& v, F&& f) {
  for (const auto& [key, value] : v.items()) {
    if (!f(std::string_view(key), value)) return false;
  }
  return true;
}
inline bool is_null(const json& v) { return v.is_null(); }
inline bool is_bool(const json& v) { return v.is_boolean(); }
inline bool is_number(const json& v) { return v.is_number(); }
inline bool is_object(const json& v) { return v.is_object(); }
inline bool is_array(const json& v) { return v.is_array(); }
inline bool is_string(const json& v) { return v.is_string(); }
inline bool is_integer(const json& v) { return v.is_number_integer(); }
inline bool is_unsigned(const json& v) { return v.is_number_unsigned(); }
// REQUIRES: is_string(v).
inline std::string_view string_of(const json& v) { return v.get_ref<const json::string_t&>(); }
// REQUIRES: is_integer(v); unsigned ones as their bits.
inline std::int64_t int_of(const json& v) { return v.get<std::int64_t>(); }
// REQUIRES: is_unsigned(v).
inline std::uint64_t uint_of(const json& v) { return v.get<std::uint64_t>(); }
// REQUIRES: is_bool(v).
inline bool bool_of(const json& v) { return v.get<bool>(); }
// REQUIRES: is_number(v).
inline double double_of(const json& v) { return v.get<double>(); }
// An array's items, for a range-for. REQUIRES: is_array(v).
inline const json& items(const json& v) { return v; }
// The first item of an array; none when empty or not an array.
inline const json* first(const json& v) { return v.is_array() && !v.empty() ? &v.front() : nullptr; }
inline std::string text_of(const json& v) { return dump_json(v); }
inline json tree_of(const json& v) { return v; }

// --- simdjson's DOM

inline std::optional<Element> member(Element v, std::string_view key) {
  simdjson::dom::object object;
  if (v.get(object) != simdjson::SUCCESS) return std::nullopt;
  std::optional<Element> found;
  for (simdjson::dom::key_value_pair m : object) {
    if (m.key == key) found = m.value;  // the last duplicate wins
  }
  return found;
}
// As for a tree: the members in key order, the last of duplicate keys only.
template <typename F>
bool for_each_member(Element v, F&& f) {
  simdjson::dom::object object;
  if (v.get(object) != simdjson::SUCCESS) return true;
  // Small objects (a request's top level, its metadata) on the stack.
  struct Member {
    std::string_view key;
    Element value;
  };
  // Counted as they are read: simdjson's object::size() saturates.
  constexpr std::size_t kOnStack = 32;
  Member stack[kOnStack];
  std::vector<Member> heap;
  std::size_t n = 0;
  for (simdjson::dom::key_value_pair m : object) {
    if (n < kOnStack) {
      stack[n++] = Member{m.key, m.value};
      continue;
    }
    if (heap.empty()) heap.assign(stack, stack + kOnStack);
    heap.push_back(Member{m.key, m.value});
    ++n;
  }
  Member* const members = heap.empty() ? stack : heap.data();
  // Stable: among equal keys the text's order stays, and the last is kept.
  std::stable_sort(members, members + n, [](const Member& a, const Member& b) { return a.key < b.key; });
  for (std::size_t i = 0; i < n; ++i) {
    if (i + 1 < n && members[i + 1].key == members[i].key) continue;
    if (!f(members[i].key, members[i].value)) return false;
  }
  return true;
}
inline bool is_null(Element v) { return v.type() == ElementType::NULL_VALUE; }
inline bool is_bool(Element v) { return v.type() == ElementType::BOOL; }
inline bool is_number(Element v) {
  return v.type() == ElementType::INT64 || v.type() == ElementType::UINT64 || v.type() == ElementType::DOUBLE;
}
inline bool is_object(Element v) { return v.type() == ElementType::OBJECT; }
inline bool is_array(Element v) { return v.type() == ElementType::ARRAY; }
inline bool is_string(Element v) { return v.type() == ElementType::STRING; }
inline bool is_integer(Element v) { return v.type() == ElementType::INT64 || v.type() == ElementType::UINT64; }
inline bool is_unsigned(Element v) {
  if (v.type() == ElementType::UINT64) return true;
  std::int64_t n = 0;
  return v.type() == ElementType::INT64 && v.get(n) == simdjson::SUCCESS && n >= 0;
}
inline std::string_view string_of(Element v) {
  std::string_view s;
  return v.get(s) == simdjson::SUCCESS ? s : std::string_view();
}
inline std::int64_t int_of(Element v) {
  if (v.type() == ElementType::UINT64) {
    std::uint64_t u = 0;
    return v.get(u) == simdjson::SUCCESS ? static_cast<std::int64_t>(u) : 0;
  }
  std::int64_t n = 0;
  return v.get(n) == simdjson::SUCCESS ? n : 0;
}
inline std::uint64_t uint_of(Element v) {
  if (v.type() == ElementType::INT64) return static_cast<std::uint64_t>(int_of(v));
  std::uint64_t u = 0;
  return v.get(u) == simdjson::SUCCESS ? u : 0;
}
inline bool bool_of(Element v) {
  bool b = false;
  return v.get(b) == simdjson::SUCCESS && b;
}
// An integer as nlohmann converts one: static_cast<double>.
inline double double_of(Element v) {
  if (v.type() == ElementType::INT64) return static_cast<double>(int_of(v));
  if (v.type() == ElementType::UINT64) return static_cast<double>(uint_of(v));
  double d = 0;
  return v.get(d) == simdjson::SUCCESS ? d : 0;
}
// REQUIRES: is_array(v) (simdjson's empty array handle is not iterable).
inline simdjson::dom::array items(Element v) {
  simdjson::dom::array a;
  return v.get(a) == simdjson::SUCCESS ? a : simdjson::dom::array();
}
inline std::optional<Element> first(Element v) {
  simdjson::dom::array a;
  if (v.get(a) != simdjson::SUCCESS || a.begin() == a.end()) return std::nullopt;
  return *a.begin();
}
// A string, an integer, a boolean or null written straight away; an object,
// an array or a double through its tree (dump_json's numbers are nlohmann's).
inline std::string text_of(Element v) {
  switch (v.type()) {
    case ElementType::STRING: {
      std::string out;
      append_json_string(out, string_of(v));
      return out;
    }
    case ElementType::INT64: return std::to_string(int_of(v));
    case ElementType::UINT64: return std::to_string(uint_of(v));
    case ElementType::BOOL: return bool_of(v) ? "true" : "false";
    case ElementType::NULL_VALUE: return "null";
    default: return dump_json(to_json(v));
  }
}
inline json tree_of(Element v) { return to_json(v); }

// --- on both

// The string at `key` of an object, or "" when absent or not a string.
template <typename Node>
std::string string_at(const Node& object, const char* key) {
  const auto v = member(object, key);
  return v && is_string(*v) ? std::string(string_of(*v)) : std::string();
}

// The object at `key`, or none.
template <typename Node>
auto object_at(const Node& object, const char* key) {
  auto v = member(object, key);
  if (v && !is_object(*v)) v = {};
  return v;
}

// The array at `key`, or none.
template <typename Node>
auto array_at(const Node& object, const char* key) {
  auto v = member(object, key);
  if (v && !is_array(*v)) v = {};
  return v;
}

}  // namespace switchboard::json_node
