// Name patterns (util/name_pattern.h): the untrusted_tools entries, matched
// against whole tool names; what they accept, what they refuse, and that a
// long name cannot make a match slow.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "util/name_pattern.h"

using switchboard::detail::name_pattern_error;
using switchboard::detail::NamePattern;

namespace {

bool matches(const std::string& pattern, const std::string& name) {
  const std::optional<NamePattern> p = NamePattern::compile(pattern);
  REQUIRE_MESSAGE(p.has_value(), "does not compile: ", pattern);
  return p->matches(name);
}

}  // namespace

TEST_SUITE("name_pattern") {

TEST_CASE("an entry matches its own name and a pattern matches the whole name only") {
  struct Case {
    const char* pattern;
    const char* name;
    bool match;
  };
  const std::vector<Case> cases = {
      {"web_fetch", "web_fetch", true},
      {"web_fetch", "web_fetch2", false},       // whole name, not a prefix
      {"web_fetch", "my_web_fetch", false},     // nor a suffix
      {"read-email", "read-email", true},       // '-' is a quantifier, but the name itself matches
      {"read-email", "reaemail", true},         // ... and so does what the pattern says
      {"browser_.*", "browser_click", true},
      {"browser_.*", "browser_", true},
      {"browser_.*", "browse", false},
      {"browser_.*", "my_browser_click", false},
      {"^browser_.*$", "browser_click", true},  // anchors accepted, meaning nothing more
      {"mcp__.+__fetch", "mcp__web__fetch", true},
      {"mcp__.+__fetch", "mcp____fetch", false},  // '+': at least one
      {"tool%d", "tool7", true},
      {"tool%d", "toolx", false},
      {"tool%d+", "tool123", true},
      {"tool%D", "toolx", true},               // upper case: the complement
      {"[rw]ead_file", "read_file", true},
      {"[rw]ead_file", "wead_file", true},
      {"[rw]ead_file", "head_file", false},
      {"[^r]ead_file", "head_file", true},
      {"[^r]ead_file", "read_file", false},
      {"fetch_[a-c]", "fetch_b", true},
      {"fetch_[a-c]", "fetch_d", false},
      {"fetch_[%d_]+", "fetch_1_2", true},
      {"web%.fetch", "web.fetch", true},
      {"web%.fetch", "webXfetch", false},
      {"web.fetch", "webXfetch", true},        // '.' is any character
      {"colou?r", "color", true},
      {"colou?r", "colour", true},
      {"colou?r", "colouur", false},
      {"a*", "", true},
      {"a-b", "aaab", true},
      {"[]]x", "]x", true},                    // Lua's rule: the first character of a set is in it
      {"cost$%d", "cost$5", true},             // '$' inside: a plain character
  };
  for (const Case& c : cases) {
    INFO(c.pattern, " vs ", c.name);
    CHECK(matches(c.pattern, c.name) == c.match);
  }
}

TEST_CASE("entries that say nothing about a whole name are refused with the reason") {
  struct Case {
    const char* pattern;
    const char* error;
  };
  const std::vector<Case> cases = {
      {"", "an empty name matches no tool"},
      {"web_%", "malformed pattern (ends with '%')"},
      {"fetch_[a-c", "malformed pattern (missing ']')"},
      {"(web)_fetch", "captures ('(' and ')') have no meaning here; write '%(' for the character"},
      {"web_fetch()", "captures ('(' and ')') have no meaning here; write '%(' for the character"},
      {"%b()", "'%b' has no meaning here"},
      {"%f[%w]fetch", "'%f' has no meaning here"},
      {"(a)%1", "captures ('(' and ')') have no meaning here; write '%(' for the character"},
      {"a%1", "back reference '%1' has no meaning here"},
  };
  for (const Case& c : cases) {
    INFO(c.pattern);
    const std::optional<std::string> error = name_pattern_error(c.pattern);
    REQUIRE(error.has_value());
    CHECK(*error == c.error);
  }
  CHECK_FALSE(name_pattern_error("browser_.*").has_value());
  CHECK_FALSE(name_pattern_error("web_fetch").has_value());
}

TEST_CASE("a long hostile tool name is matched in time proportional to its length") {
  // A backtracking matcher takes about n^4 steps on this pattern; this one n * 8.
  const std::optional<NamePattern> p = NamePattern::compile(".*a.*a.*a.*a.*b");
  REQUIRE(p.has_value());
  const std::string name(200'000, 'a');
  const auto t0 = std::chrono::steady_clock::now();
  CHECK_FALSE(p->matches(name));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  CHECK(p->matches(name + "b"));
}

}  // TEST_SUITE
