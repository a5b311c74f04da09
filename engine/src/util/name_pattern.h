// Name patterns: the entries of [workloads.X] untrusted_tools, tested against
// whole tool names, outside any Lua state.
//
// An entry matches a name that equals it, or that its pattern matches whole.
// The pattern syntax is the part of Lua 5.4's that says yes or no about a
// whole string:
//   - a single-character class: a plain character; '.' (any byte); '%a' '%c'
//     '%d' '%g' '%l' '%p' '%s' '%u' '%w' '%x' (C-locale classes; upper case:
//     the complement); '%' before any other non-alphanumeric character (that
//     character: "%." is a dot, "%-" a hyphen); a set '[...]' of characters,
//     ranges 'a-z' and '%' classes, '[^...]' its complement;
//   - each class optionally followed by '*' (0 or more, longest), '-' (0 or
//     more, shortest: the same thing for a whole match), '+' (1 or more) or
//     '?' (0 or 1);
//   - '^' at the start and '$' at the end are accepted and change nothing:
//     the pattern always spans the whole name.
// Captures '(' ')', '%b', '%f' and back references '%1'..'%9' are refused:
// they mean nothing for a yes-or-no test.
//
// Matching runs the pattern as a set of positions over the name (no
// backtracking): time in proportion to the name's length times the
// pattern's, whatever either holds, so a client's long tool name cannot make
// it slow.
#pragma once

#include <bitset>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::detail {

// One entry of untrusted_tools, compiled.
class NamePattern {
 public:
  // `pattern` compiled; nullopt when it is not a usable entry, with the
  // reason in `*error` ("missing ']'"...) when `error` is not null.
  static std::optional<NamePattern> compile(std::string_view pattern, std::string* error = nullptr);

  // Whether `name` equals the entry, or its pattern matches all of `name`.
  bool matches(std::string_view name) const;

 private:
  // One single-character class and how often it may repeat.
  struct Item {
    std::bitset<256> bytes;  // the bytes the class matches
    bool repeat = false;     // '*' (and the second half of '+'): any number of times
    bool optional = false;   // '?' (and '*'): may be absent
  };
  std::string text_;
  std::vector<Item> items_;
};

// Why `pattern` is not a usable entry, or nullopt when it is.
std::optional<std::string> name_pattern_error(std::string_view pattern);

}  // namespace switchboard::detail
