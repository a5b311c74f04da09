// Name patterns (name_pattern.h): a compiled list of single-character
// classes, run over a name as a set of positions. The class semantics are
// Lua 5.4's (lstrlib.c's match_class and matchbracketclass, as
// lua/patterns.cpp has them for the sandbox).
#include "util/name_pattern.h"

#include <cctype>

namespace switchboard::detail {

namespace {

constexpr char kEscape = '%';

// Whether byte `c` is in the class '%<cl>' (Lua's match_class).
bool in_class(int c, int cl) {
  bool res = false;
  switch (std::tolower(cl)) {
    case 'a': res = std::isalpha(c) != 0; break;
    case 'c': res = std::iscntrl(c) != 0; break;
    case 'd': res = std::isdigit(c) != 0; break;
    case 'g': res = std::isgraph(c) != 0; break;
    case 'l': res = std::islower(c) != 0; break;
    case 'p': res = std::ispunct(c) != 0; break;
    case 's': res = std::isspace(c) != 0; break;
    case 'u': res = std::isupper(c) != 0; break;
    case 'w': res = std::isalnum(c) != 0; break;
    case 'x': res = std::isxdigit(c) != 0; break;
    default: return cl == c;  // '%.' is a dot, '%q' a 'q', as in Lua
  }
  return std::isupper(cl) ? !res : res;
}

// Whether byte `c` is in the set from '[' at `open` to its ']' at `close`
// (Lua's matchbracketclass).
bool in_set(int c, std::string_view p, std::size_t open, std::size_t close) {
  bool negate = false;
  std::size_t i = open;
  if (p[i + 1] == '^') {
    negate = true;
    ++i;
  }
  while (++i < close) {
    const auto at = [&](std::size_t k) { return static_cast<unsigned char>(p[k]); };
    if (p[i] == kEscape) {
      ++i;
      if (in_class(c, at(i))) return !negate;
    } else if (p[i + 1] == '-' && i + 2 < close) {
      i += 2;
      if (at(i - 2) <= c && c <= at(i)) return !negate;
    } else if (at(i) == c) {
      return !negate;
    }
  }
  return negate;
}

}  // namespace

std::optional<NamePattern> NamePattern::compile(std::string_view p, std::string* error) {
  const auto fail = [&](std::string why) -> std::optional<NamePattern> {
    if (error != nullptr) *error = std::move(why);
    return std::nullopt;
  };
  if (p.empty()) return fail("an empty name matches no tool");
  NamePattern out;
  out.text_ = std::string(p);
  std::size_t i = p[0] == '^' ? 1 : 0;  // an anchor: the match spans the whole name anyway
  while (i < p.size()) {
    if (p[i] == '$' && i + 1 == p.size()) break;  // the closing anchor, likewise
    Item item;
    const char c = p[i];
    if (c == '(' || c == ')') return fail("captures ('(' and ')') have no meaning here; write '%" +
                                          std::string(1, c) + "' for the character");
    if (c == kEscape) {
      if (i + 1 == p.size()) return fail("malformed pattern (ends with '%')");
      const char d = p[i + 1];
      if (d == 'b' || d == 'f') return fail(std::string("'%") + d + "' has no meaning here");
      if (d >= '0' && d <= '9') return fail(std::string("back reference '%") + d + "' has no meaning here");
      for (int b = 0; b < 256; ++b) item.bytes[static_cast<std::size_t>(b)] = in_class(b, static_cast<unsigned char>(d));
      i += 2;
    } else if (c == '[') {
      // The set's end as Lua finds it: the first character (after a '^') is
      // always in the set, so "[]]" holds ']'; '%' escapes the next one.
      std::size_t k = i + 1;
      if (k < p.size() && p[k] == '^') ++k;
      do {
        if (k >= p.size()) return fail("malformed pattern (missing ']')");
        if (p[k++] == kEscape && k < p.size()) ++k;
      } while (k >= p.size() || p[k] != ']');
      for (int b = 0; b < 256; ++b) item.bytes[static_cast<std::size_t>(b)] = in_set(b, p, i, k);
      i = k + 1;
    } else if (c == '.') {
      item.bytes.set();
      i += 1;
    } else {
      item.bytes[static_cast<unsigned char>(c)] = true;
      i += 1;
    }
    const char q = i < p.size() ? p[i] : '\0';
    if (q == '*' || q == '-') {
      item.repeat = item.optional = true;  // shortest or longest: the same for a whole match
      ++i;
    } else if (q == '?') {
      item.optional = true;
      ++i;
    } else if (q == '+') {
      out.items_.push_back(item);  // once, then any number of times
      item.repeat = item.optional = true;
      ++i;
    }
    out.items_.push_back(std::move(item));
  }
  return out;
}

bool NamePattern::matches(std::string_view name) const {
  if (name == text_) return true;
  // at[k]: the name read so far can end with the pattern read up to item k.
  const std::size_t n = items_.size();
  std::vector<char> at(n + 1, 0), next(n + 1, 0);
  const auto close = [&](std::vector<char>& s) {  // skip the items that may be absent
    for (std::size_t k = 0; k < n; ++k) {
      if (s[k] && items_[k].optional) s[k + 1] = 1;
    }
  };
  at[0] = 1;
  close(at);
  for (const char ch : name) {
    const auto b = static_cast<unsigned char>(ch);
    std::fill(next.begin(), next.end(), 0);
    bool any = false;
    for (std::size_t k = 0; k < n; ++k) {
      if (!at[k] || !items_[k].bytes[b]) continue;
      next[items_[k].repeat ? k : k + 1] = 1;
      any = true;
    }
    if (!any) return false;
    close(next);
    at.swap(next);
  }
  return at[n] != 0;
}

std::optional<std::string> name_pattern_error(std::string_view pattern) {
  std::string error;
  if (NamePattern::compile(pattern, &error)) return std::nullopt;
  return error;
}

}  // namespace switchboard::detail
