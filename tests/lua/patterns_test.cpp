// The sandbox's step-counted string.find/match/gmatch/gsub must behave exactly
// like Lua 5.4's own. Both run side by side on a plain lua_State and every
// result is compared: a fixed table of tricky cases, then seeded random ones.
#include <doctest/doctest.h>

#include <string>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
}

#include "lua/sandbox.h"

namespace {

constexpr const char* kDriver = R"lua(
local lib = ...
local function ser(...)
  local t = {}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    t[#t + 1] = type(v) .. ":" .. tostring(v)
  end
  return table.concat(t, ",")
end
local function run(l, op, s, p, a3, a4)
  if op == "gmatch" then
    local ok, res = pcall(function()
      local out = {}
      for a, b, c in l.gmatch(s, p, a3) do
        out[#out + 1] = ser(a, b, c)
        if #out > 64 then break end
      end
      return table.concat(out, "|")
    end)
    return ok and ("ok " .. res) or "error"
  end
  local r = table.pack(pcall(l[op], s, p, a3, a4))
  if not r[1] then return "error" end
  return "ok " .. ser(table.unpack(r, 2, r.n))
end
-- compare(op, s, p, a3, a4) -> nil when both agree, else a description
function compare(op, s, p, a3, a4)
  local want = run(string, op, s, p, a3, a4)
  local got = run(lib, op, s, p, a3, a4)
  if want ~= got then
    return string.format("%s(%q, %q, %s, %s): lua %s, sandbox %s", op, s, p, tostring(a3),
                         tostring(a4), want, got)
  end
end

local fixed = {
  {"find", "hello world", "o w"}, {"find", "hello world", "o", 6}, {"find", "hello", "l+"},
  {"find", "hello", ""}, {"find", "hello", "", 10}, {"find", "hello", "", 6}, {"find", "a.b", ".", 1, true},
  {"find", "hello", "^h"}, {"find", "hello", "^e"}, {"find", "hello", "o$"}, {"find", "a$b", "$b"},
  {"find", "  x", "%s*()"}, {"find", "abc", "-1"}, {"find", "abc", "b", -1}, {"find", "abc", "b", -2},
  {"match", "key = value", "(%w+)%s*=%s*(%w+)"}, {"match", "2024-01-02", "(%d+)-(%d+)-(%d+)"},
  {"match", "f(a(b)c)d", "%b()"}, {"match", "THE (quick) fox", "%f[%a]%a+"}, {"match", "abab", "(ab)%1"},
  {"match", "aaa", "a-b"}, {"match", "aaab", "a-b"}, {"match", "x", "()"}, {"match", "abc", "((a)(b))"},
  {"match", "[x]", "[]]"}, {"match", "a-b", "[a-]+"}, {"match", "a]b", "[%]]"}, {"match", "abc", "[^%a]"},
  {"match", "hello", "(h)(e)(l)(l)(o)"}, {"match", "abc", "%"}, {"match", "abc", "[a"}, {"match", "abc", "(()"},
  {"match", "abc", "%1"}, {"match", "abc", "a)"}, {"match", "abc", "%b"}, {"match", "abc", "%fa"},
  {"match", "\0a\0", "%z"}, {"match", "x\0y", "x%zy"}, {"match", "café", "[\128-\255]+"},
  {"gsub", "hello world", "o", "0"}, {"gsub", "hello world", "(o)", "[%1]"}, {"gsub", "abc", "", "-"},
  {"gsub", "hello", "l", "L", 1}, {"gsub", "abc", "%w", "%0%0"}, {"gsub", "abc", "%w", "%%"},
  {"gsub", "abc", "%w", "%2"}, {"gsub", "abc", "%w", "%x"}, {"gsub", "abc", "^a", "X"}, {"gsub", "aaa", "a*", "-"},
  {"gsub", "hello world", "%w+", "<%0>"}, {"gsub", "x = 1, y = 2", "(%w+) = (%w+)", "%2 = %1"},
  {"gmatch", "one two  three", "%a+"}, {"gmatch", "k=v, a=b", "(%w+)=(%w+)"}, {"gmatch", "abc", ""},
  {"gmatch", "abc", "()"}, {"gmatch", "aaa", "a*"}, {"gmatch", "hello", "l", 4}, {"gmatch", "^a^a", "^a"},
}
local failures = {}
for _, c in ipairs(fixed) do
  local d = compare(c[1], c[2], c[3], c[4], c[5])
  if d then failures[#failures + 1] = d end
end
-- gsub with table and function replacements
local map = { hello = "HI", world = false }
for _, s in ipairs({"hello world", "", "hello hello"}) do
  local a = table.pack(string.gsub(s, "%w+", map))
  local b = table.pack(lib.gsub(s, "%w+", map))
  if a[1] ~= b[1] or a[2] ~= b[2] then failures[#failures + 1] = "gsub table " .. s end
  local f = function(w, x) if w == "world" then return nil end return w:upper() .. tostring(x) end
  a = table.pack(string.gsub(s, "(%w+)()", f))
  b = table.pack(lib.gsub(s, "(%w+)()", f))
  if a[1] ~= b[1] or a[2] ~= b[2] then failures[#failures + 1] = "gsub function " .. s end
end
-- seeded random patterns and subjects
local tokens = { ".", "a", "b", "%a", "%d", "%s", "%w", "%A", "[ab]", "[^a]", "[a-c]", "[%d%s]", "%%",
                 "(", ")", "()", "%1", "%b()", "%f[%w]", "*", "+", "-", "?", "^", "$", "x", "(a)", "1" }
local alphabet = { "a", "a", "b", "(", ")", "1", " ", "c", "x", "2" }
math.randomseed(20261122)
local ops = { "find", "match", "gmatch", "gsub" }
for i = 1, 6000 do
  local p = {}
  for _ = 1, math.random(1, 6) do p[#p + 1] = tokens[math.random(#tokens)] end
  local s = {}
  for _ = 1, math.random(0, 12) do s[#s + 1] = alphabet[math.random(#alphabet)] end
  local op = ops[math.random(#ops)]
  local a3 = nil
  if op == "gsub" then a3 = ({ "<%0>", "%1", "-", "" })[math.random(4)]
  elseif math.random(3) == 1 then a3 = math.random(-4, 8) end
  local d = compare(op, table.concat(s), table.concat(p), a3)
  if d then failures[#failures + 1] = d end
  if #failures > 20 then break end
end
return table.concat(failures, "\n")
)lua";

}  // namespace

TEST_CASE("the sandbox's pattern functions agree with Lua 5.4's string library") {
  lua_State* L = luaL_newstate();
  REQUIRE(L != nullptr);
  *static_cast<void**>(lua_getextraspace(L)) = nullptr;  // no sandbox: charging is a no-op
  luaL_openlibs(L);
  REQUIRE(luaL_loadstring(L, kDriver) == LUA_OK);
  lua_newtable(L);
  switchboard::detail::install_counted_patterns(L);
  const int status = lua_pcall(L, 1, 1, 0);
  const std::string result = lua_tostring(L, -1) ? lua_tostring(L, -1) : "";
  CHECK_MESSAGE(status == LUA_OK, result);
  CHECK_MESSAGE(result.empty(), result);
  lua_close(L);
}
