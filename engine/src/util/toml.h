// Helpers for reading TOML with positions: every error is a ConfigError whose
// text starts with "file:line:column". Used by config.cpp and rule_tests.cpp,
// the only files that include toml++.
#pragma once

#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "switchboard/config.h"

namespace switchboard::detail {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline std::string where(const std::string& file, const toml::source_region& region) {
  const auto& b = region.begin;
  return file + ":" + std::to_string(b.line) + ":" + std::to_string(b.column);
}

inline std::string where(const std::string& file, const toml::node& node) {
  return where(file, node.source());
}

inline const toml::table& expect_table(const toml::node& node, const std::string& file,
                                       const std::string& what) {
  if (!node.is_table()) throw ConfigError(where(file, node) + ": " + what + " must be a table");
  return *node.as_table();
}

inline void reject_unknown_keys(const toml::table& t, const std::string& file, const std::string& what,
                                std::initializer_list<std::string_view> known) {
  for (const auto& [key, node] : t) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || key.str() == k;
    if (!ok) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      // The key's own position: for `[workload.w]` or `outptu = 5` the typo is
      // in the key, not in the value it names.
      const toml::source_region& at = key.source().begin.line > 0 ? key.source() : node.source();
      throw ConfigError(where(file, at) + ": " + what + ": unknown key '" + std::string(key.str()) +
                        "' (expected one of: " + list + ")");
    }
  }
}

inline std::optional<std::string> optional_string(const toml::table& t, std::string_view key,
                                                  const std::string& file, const std::string& what) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_string()) {
    throw ConfigError(where(file, *n) + ": " + what + ": '" + std::string(key) + "' must be a string");
  }
  return n->value<std::string>();
}

inline std::string required_string(const toml::table& t, std::string_view key, const std::string& file,
                                   const std::string& what) {
  std::optional<std::string> s = optional_string(t, key, file, what);
  if (!s) throw ConfigError(where(file, t) + ": " + what + " needs '" + std::string(key) + "'");
  return *s;
}

inline std::optional<bool> optional_bool(const toml::table& t, std::string_view key, const std::string& file,
                                         const std::string& what) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_boolean()) {
    throw ConfigError(where(file, *n) + ": " + what + ": '" + std::string(key) + "' must be true or false");
  }
  return n->value<bool>();
}

inline std::optional<std::int64_t> optional_integer(const toml::table& t, std::string_view key,
                                                    const std::string& file, const std::string& what) {
  const toml::node* n = t.get(key);
  if (n == nullptr) return std::nullopt;
  if (!n->is_integer()) {
    throw ConfigError(where(file, *n) + ": " + what + ": '" + std::string(key) + "' must be a whole number");
  }
  return n->value<std::int64_t>();
}

inline std::optional<std::int64_t> optional_positive_integer(const toml::table& t, std::string_view key,
                                                             const std::string& file,
                                                             const std::string& what) {
  std::optional<std::int64_t> v = optional_integer(t, key, file, what);
  if (v && *v <= 0) {
    throw ConfigError(where(file, *t.get(key)) + ": " + what + ": '" + std::string(key) + "' must be positive");
  }
  return v;
}

// An array of strings (empty when the key is absent): each string with the
// "file:line:column" it was written at, for messages about it.
inline std::vector<std::pair<std::string, std::string>> optional_string_array(const toml::table& t,
                                                                              std::string_view key,
                                                                              const std::string& file,
                                                                              const std::string& what) {
  std::vector<std::pair<std::string, std::string>> out;
  const toml::node* n = t.get(key);
  if (n == nullptr) return out;
  const std::string error = what + ": '" + std::string(key) + "' must be an array of strings";
  if (!n->is_array()) throw ConfigError(where(file, *n) + ": " + error);
  for (const toml::node& item : *n->as_array()) {
    if (!item.is_string()) throw ConfigError(where(file, item) + ": " + error);
    out.emplace_back(*item.value<std::string>(), where(file, item));
  }
  return out;
}

// Reads a [rule_cost] table (switchboard.toml, or a test file's own) into
// `budget`, replacing only the fields it sets (config.cpp).
void read_rule_cost(const toml::node& node, const std::string& file, RuleCostBudget& budget);

inline std::int64_t required_positive_integer(const toml::table& t, std::string_view key,
                                              const std::string& file, const std::string& what) {
  std::optional<std::int64_t> v = optional_positive_integer(t, key, file, what);
  if (!v) throw ConfigError(where(file, t) + ": " + what + " needs '" + std::string(key) + "'");
  return *v;
}

}  // namespace switchboard::detail
