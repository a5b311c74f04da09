// string.find / match / gmatch / gsub for the sandbox, with Lua 5.4 pattern
// semantics and one difference: every matching step is charged to the call's
// instruction budget. Lua's own matcher runs inside one C call, where the
// count hook never fires, so a pattern like '.-.-.-b' on a few hundred bytes
// could otherwise run for minutes.
//
// Like everything a Lua error can cross, this file holds plain data only.
#include <cstdint>
#include <cstring>

#include "lua/sandbox.h"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

namespace switchboard::detail {
namespace {

constexpr int kMaxCaptures = 32;
constexpr int kMaxMatchDepth = 200;      // recursion bound, as Lua's MAXCCALLS
constexpr int kChargeEvery = 256;        // steps between budget charges
constexpr size_t kBytesPerStep = 8;      // bytes compared or searched per step, as find_plain charges
constexpr ptrdiff_t kCapUnfinished = -1;
constexpr ptrdiff_t kCapPosition = -2;
constexpr char kEscape = '%';
constexpr const char* kSpecials = "^$*+?.([%-";

struct MatchState {
  const char* src_init;
  const char* src_end;
  const char* p_end;
  lua_State* L;
  int depth_left;
  int level;
  int steps;
  struct {
    const char* init;
    ptrdiff_t len;
  } capture[kMaxCaptures];
};

void step(MatchState* ms) {
  if (++ms->steps >= kChargeEvery) {
    charge_budget(ms->L, ms->steps);
    ms->steps = 0;
  }
}

// Charges work in proportion to `bytes` compared at once (a back reference
// such as %1 compares the whole capture), before it is done: the charge reads
// the clock, so a long comparison starts only within the time limit.
void step_bytes(MatchState* ms, size_t bytes) {
  const std::int64_t more = static_cast<std::int64_t>(bytes / kBytesPerStep);
  if (ms->steps + more >= kChargeEvery) {
    charge_budget(ms->L, ms->steps + more);
    ms->steps = 0;
  } else {
    ms->steps += static_cast<int>(more);
  }
}

void reset(MatchState* ms) {
  ms->level = 0;
  ms->depth_left = kMaxMatchDepth;
}

void init_state(MatchState* ms, lua_State* L, const char* s, size_t ls, const char* p, size_t lp) {
  ms->L = L;
  ms->src_init = s;
  ms->src_end = s + ls;
  ms->p_end = p + lp;
  ms->steps = 0;
  reset(ms);
}

void flush_charge(MatchState* ms) {
  if (ms->steps > 0) charge_budget(ms->L, ms->steps);
  ms->steps = 0;
}

int check_capture(MatchState* ms, int l) {
  l -= '1';
  if (l < 0 || l >= ms->level || ms->capture[l].len == kCapUnfinished) {
    return luaL_error(ms->L, "invalid capture index %%%d", l + 1);
  }
  return l;
}

int capture_to_close(MatchState* ms) {
  int level = ms->level;
  for (level--; level >= 0; level--) {
    if (ms->capture[level].len == kCapUnfinished) return level;
  }
  return luaL_error(ms->L, "invalid pattern capture");
}

// Returns the end of the single-character class starting at p.
const char* class_end(MatchState* ms, const char* p) {
  if (*p++ == kEscape) {
    if (p == ms->p_end) luaL_error(ms->L, "malformed pattern (ends with '%%')");
    return p + 1;
  }
  if (*(p - 1) == '[') {
    if (*p == '^') p++;
    do {  // look for a ']'
      if (p == ms->p_end) luaL_error(ms->L, "malformed pattern (missing ']')");
      if (*(p++) == kEscape && p < ms->p_end) p++;  // skip escapes such as '%]'
    } while (*p != ']');
    return p + 1;
  }
  return p;
}

bool match_class(int c, int cl) {
  bool res;
  switch (cl | 0x20) {  // lower case
    case 'a': res = std::isalpha(c); break;
    case 'c': res = std::iscntrl(c); break;
    case 'd': res = std::isdigit(c); break;
    case 'g': res = std::isgraph(c); break;
    case 'l': res = std::islower(c); break;
    case 'p': res = std::ispunct(c); break;
    case 's': res = std::isspace(c); break;
    case 'u': res = std::isupper(c); break;
    case 'w': res = std::isalnum(c); break;
    case 'x': res = std::isxdigit(c); break;
    case 'z': res = (c == 0); break;  // deprecated in 5.2, still accepted
    default: return cl == c;
  }
  return (cl >= 'A' && cl <= 'Z') ? !res : res;
}

// p points at '[', ec at the closing ']'.
bool match_bracket_class(int c, const char* p, const char* ec) {
  bool negate = false;
  if (*(p + 1) == '^') {
    negate = true;
    p++;
  }
  while (++p < ec) {
    if (*p == kEscape) {
      p++;
      if (match_class(c, static_cast<unsigned char>(*p))) return !negate;
    } else if (*(p + 1) == '-' && p + 2 < ec) {
      p += 2;
      if (static_cast<unsigned char>(*(p - 2)) <= c && c <= static_cast<unsigned char>(*p)) {
        return !negate;
      }
    } else if (static_cast<unsigned char>(*p) == c) {
      return !negate;
    }
  }
  return negate;
}

bool single_match(MatchState* ms, const char* s, const char* p, const char* ep) {
  if (s >= ms->src_end) return false;
  const int c = static_cast<unsigned char>(*s);
  switch (*p) {
    case '.': return true;
    case kEscape: return match_class(c, static_cast<unsigned char>(*(p + 1)));
    case '[': return match_bracket_class(c, p, ep - 1);
    default: return static_cast<unsigned char>(*p) == c;
  }
}

const char* match(MatchState* ms, const char* s, const char* p);

const char* match_balance(MatchState* ms, const char* s, const char* p) {
  if (p >= ms->p_end - 1) luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= ms->src_end || *s != *p) return nullptr;
  const int open = *p, close = *(p + 1);
  int depth = 1;
  while (++s < ms->src_end) {
    step(ms);
    if (*s == close) {
      if (--depth == 0) return s + 1;
    } else if (*s == open) {
      depth++;
    }
  }
  return nullptr;
}

const char* max_expand(MatchState* ms, const char* s, const char* p, const char* ep) {
  ptrdiff_t i = 0;
  while (single_match(ms, s + i, p, ep)) {
    step(ms);
    i++;
  }
  while (i >= 0) {  // try with the longest repetition first
    const char* res = match(ms, s + i, ep + 1);
    if (res) return res;
    i--;
  }
  return nullptr;
}

const char* min_expand(MatchState* ms, const char* s, const char* p, const char* ep) {
  for (;;) {
    const char* res = match(ms, s, ep + 1);
    if (res != nullptr) return res;
    if (!single_match(ms, s, p, ep)) return nullptr;
    s++;  // one more repetition
  }
}

const char* start_capture(MatchState* ms, const char* s, const char* p, ptrdiff_t what) {
  if (ms->level >= kMaxCaptures) luaL_error(ms->L, "too many captures");
  ms->capture[ms->level].init = s;
  ms->capture[ms->level].len = what;
  ms->level++;
  const char* res = match(ms, s, p);
  if (res == nullptr) ms->level--;  // undo the capture
  return res;
}

const char* end_capture(MatchState* ms, const char* s, const char* p) {
  const int l = capture_to_close(ms);
  ms->capture[l].len = s - ms->capture[l].init;
  const char* res = match(ms, s, p);
  if (res == nullptr) ms->capture[l].len = kCapUnfinished;
  return res;
}

const char* match_capture(MatchState* ms, const char* s, int l) {
  l = check_capture(ms, l);
  const size_t len = static_cast<size_t>(ms->capture[l].len);
  step_bytes(ms, len);
  if (static_cast<size_t>(ms->src_end - s) >= len &&
      std::memcmp(ms->capture[l].init, s, len) == 0) {
    return s + len;
  }
  return nullptr;
}

const char* match(MatchState* ms, const char* s, const char* p) {
  if (ms->depth_left-- == 0) luaL_error(ms->L, "pattern too complex");
  for (;;) {
    step(ms);
    if (p == ms->p_end) break;
    bool single = false;
    switch (*p) {
      case '(':
        if (*(p + 1) == ')') {
          s = start_capture(ms, s, p + 2, kCapPosition);
        } else {
          s = start_capture(ms, s, p + 1, kCapUnfinished);
        }
        goto done;
      case ')':
        s = end_capture(ms, s, p + 1);
        goto done;
      case '$':
        if (p + 1 != ms->p_end) {
          single = true;  // '$' in the middle is a plain character
          break;
        }
        s = (s == ms->src_end) ? s : nullptr;
        goto done;
      case kEscape:
        switch (*(p + 1)) {
          case 'b':
            s = match_balance(ms, s, p + 2);
            if (s != nullptr) {
              p += 4;
              continue;
            }
            goto done;
          case 'f': {
            p += 2;
            if (*p != '[') luaL_error(ms->L, "missing '[' after '%%f' in pattern");
            const char* ep = class_end(ms, p);
            const int previous = (s == ms->src_init) ? '\0' : static_cast<unsigned char>(*(s - 1));
            const int current = (s < ms->src_end) ? static_cast<unsigned char>(*s) : '\0';
            if (!match_bracket_class(previous, p, ep - 1) && match_bracket_class(current, p, ep - 1)) {
              p = ep;
              continue;
            }
            s = nullptr;
            goto done;
          }
          case '0': case '1': case '2': case '3': case '4':
          case '5': case '6': case '7': case '8': case '9':
            s = match_capture(ms, s, static_cast<unsigned char>(*(p + 1)));
            if (s != nullptr) {
              p += 2;
              continue;
            }
            goto done;
          default:
            single = true;
            break;
        }
        break;
      default:
        single = true;
        break;
    }
    if (single) {
      const char* ep = class_end(ms, p);
      if (!single_match(ms, s, p, ep)) {
        if (*ep == '*' || *ep == '?' || *ep == '-') {  // accept empty
          p = ep + 1;
          continue;
        }
        s = nullptr;
      } else {
        switch (*ep) {
          case '?': {
            const char* res = match(ms, s + 1, ep + 1);
            if (res != nullptr) {
              s = res;
            } else {
              p = ep + 1;
              continue;
            }
            break;
          }
          case '+': s = max_expand(ms, s + 1, p, ep); break;
          case '*': s = max_expand(ms, s, p, ep); break;
          case '-': s = min_expand(ms, s, p, ep); break;
          default:
            s++;
            p = ep;
            continue;
        }
      }
      goto done;
    }
  }
done:
  ms->depth_left++;
  return s;
}

// Pushes capture i (or the whole match when there are none); returns its length.
void push_one_capture(MatchState* ms, int i, const char* s, const char* e) {
  if (i >= ms->level) {
    if (i != 0) luaL_error(ms->L, "invalid capture index %%%d", i + 1);
    lua_pushlstring(ms->L, s, static_cast<size_t>(e - s));
    return;
  }
  const ptrdiff_t len = ms->capture[i].len;
  if (len == kCapUnfinished) luaL_error(ms->L, "unfinished capture");
  if (len == kCapPosition) {
    lua_pushinteger(ms->L, (ms->capture[i].init - ms->src_init) + 1);
  } else {
    lua_pushlstring(ms->L, ms->capture[i].init, static_cast<size_t>(len));
  }
}

int push_captures(MatchState* ms, const char* s, const char* e) {
  const int n = (ms->level == 0 && s) ? 1 : ms->level;
  luaL_checkstack(ms->L, n, "too many captures");
  for (int i = 0; i < n; i++) push_one_capture(ms, i, s, e);
  return n;
}

bool has_specials(const char* p, size_t lp) {
  for (size_t i = 0; i < lp; ++i) {
    if (std::strchr(kSpecials, p[i]) != nullptr && p[i] != '\0') return true;
  }
  return false;
}

// Translates a relative initial position (negative counts from the end).
size_t start_position(lua_Integer pos, size_t len) {
  if (pos > 0) return static_cast<size_t>(pos);
  if (pos == 0) return 1;
  if (pos < -static_cast<lua_Integer>(len)) return 1;
  return len + static_cast<size_t>(pos) + 1;
}

// Plain substring search, charged per byte examined.
const char* find_plain(lua_State* L, const char* s, size_t ls, const char* p, size_t lp) {
  if (lp == 0) return s;
  if (lp > ls) return nullptr;
  charge_budget(L, static_cast<std::int64_t>(ls / kBytesPerStep + 1));
  const void* hit = memmem(s, ls, p, lp);
  return static_cast<const char*>(hit);
}

int find_aux(lua_State* L, bool find) {
  size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  const size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    const char* hit = find_plain(L, s + init, ls - init, p, lp);
    if (hit != nullptr) {
      lua_pushinteger(L, (hit - s) + 1);
      lua_pushinteger(L, static_cast<lua_Integer>((hit - s) + lp));
      return 2;
    }
  } else {
    MatchState ms;
    const char* s1 = s + init;
    const bool anchor = (*p == '^');
    if (anchor) {
      p++;
      lp--;
    }
    init_state(&ms, L, s, ls, p, lp);
    do {
      reset(&ms);
      const char* e = match(&ms, s1, p);
      if (e != nullptr) {
        flush_charge(&ms);
        if (find) {
          lua_pushinteger(L, (s1 - s) + 1);
          lua_pushinteger(L, e - s);
          return push_captures(&ms, nullptr, nullptr) + 2;
        }
        return push_captures(&ms, s1, e);
      }
    } while (s1++ < ms.src_end && !anchor);
    flush_charge(&ms);
  }
  luaL_pushfail(L);
  return 1;
}

int str_find(lua_State* L) { return find_aux(L, true); }
int str_match(lua_State* L) { return find_aux(L, false); }

// gmatch state lives in a userdata: plain data, no finaliser.
struct GMatchState {
  const char* src;
  const char* p;
  const char* lastmatch;
  MatchState ms;
};

int gmatch_iter(lua_State* L) {
  GMatchState* gm = static_cast<GMatchState*>(lua_touserdata(L, lua_upvalueindex(3)));
  gm->ms.L = L;
  for (const char* src = gm->src; src <= gm->ms.src_end; src++) {
    reset(&gm->ms);
    const char* e = match(&gm->ms, src, gm->p);
    if (e != nullptr && e != gm->lastmatch) {
      gm->src = gm->lastmatch = e;
      flush_charge(&gm->ms);
      return push_captures(&gm->ms, src, e);
    }
  }
  flush_charge(&gm->ms);
  return 0;
}

int str_gmatch(lua_State* L) {
  size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  size_t init = start_position(luaL_optinteger(L, 3, 1), ls) - 1;
  lua_settop(L, 2);  // keep the strings alive as upvalues
  GMatchState* gm = static_cast<GMatchState*>(lua_newuserdatauv(L, sizeof(GMatchState), 0));
  if (init > ls) init = ls + 1;  // start past the end: no matches
  init_state(&gm->ms, L, s, ls, p, lp);
  gm->src = s + init;
  gm->p = p;
  gm->lastmatch = nullptr;
  lua_pushcclosure(L, gmatch_iter, 3);
  return 1;
}

void add_string_repl(MatchState* ms, luaL_Buffer* b, const char* s, const char* e) {
  size_t l = 0;
  lua_State* L = ms->L;
  const char* news = lua_tolstring(L, 3, &l);
  const char* end = news + l;
  const char* p;
  while ((p = static_cast<const char*>(std::memchr(news, kEscape, static_cast<size_t>(end - news)))) != nullptr) {
    luaL_addlstring(b, news, static_cast<size_t>(p - news));
    p++;
    if (p < end && *p == kEscape) {
      luaL_addchar(b, *p);
    } else if (p < end && *p == '0') {
      luaL_addlstring(b, s, static_cast<size_t>(e - s));
    } else if (p < end && *p >= '1' && *p <= '9') {
      push_one_capture(ms, *p - '1', s, e);
      luaL_tolstring(L, -1, nullptr);  // the capture may be a position
      lua_remove(L, -2);
      luaL_addvalue(b);
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", kEscape);
    }
    news = p + 1;
  }
  luaL_addlstring(b, news, static_cast<size_t>(end - news));
}

// Returns false when the original text is kept (the value was false or nil).
bool add_value(MatchState* ms, luaL_Buffer* b, const char* s, const char* e, int tr) {
  lua_State* L = ms->L;
  switch (tr) {
    case LUA_TFUNCTION: {
      lua_pushvalue(L, 3);
      const int n = push_captures(ms, s, e);
      lua_call(L, n, 1);
      break;
    }
    case LUA_TTABLE:
      push_one_capture(ms, 0, s, e);
      lua_gettable(L, 3);
      break;
    default:
      add_string_repl(ms, b, s, e);
      return true;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, static_cast<size_t>(e - s));
    return false;
  }
  if (!lua_isstring(L, -1)) {
    return luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  }
  luaL_addvalue(b);
  return true;
}

int str_gsub(lua_State* L) {
  size_t srcl = 0, lp = 0;
  const char* src = luaL_checklstring(L, 1, &srcl);
  const char* p = luaL_checklstring(L, 2, &lp);
  const char* lastmatch = nullptr;
  const int tr = lua_type(L, 3);
  const lua_Integer max_s = luaL_optinteger(L, 4, static_cast<lua_Integer>(srcl) + 1);
  const bool anchor = (*p == '^');
  lua_Integer n = 0;
  bool changed = false;
  luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE,
                   3, "string/function/table");
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (anchor) {
    p++;
    lp--;
  }
  MatchState ms;
  init_state(&ms, L, src, srcl, p, lp);
  while (n < max_s) {
    reset(&ms);
    const char* e = match(&ms, src, p);
    if (e != nullptr && e != lastmatch) {
      n++;
      flush_charge(&ms);
      changed = add_value(&ms, &b, src, e, tr) | changed;
      src = lastmatch = e;
    } else if (src < ms.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor) break;
  }
  flush_charge(&ms);
  if (!changed) {
    lua_pushvalue(L, 1);  // nothing replaced: return the original string
  } else {
    luaL_addlstring(&b, src, static_cast<size_t>(ms.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace

void install_counted_patterns(lua_State* L) {
  const luaL_Reg functions[] = {
      {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub},
      {nullptr, nullptr}};
  luaL_setfuncs(L, functions, 0);
}

}  // namespace switchboard::detail
