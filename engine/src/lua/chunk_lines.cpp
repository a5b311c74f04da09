// Reads the line information of every function prototype in a Lua 5.4 binary
// chunk (what lua_dump writes; the format is ldump.c's, read back by
// lundump.c). The C API reaches only functions that exist as closures, so a
// local function never instantiated has no other way to name its lines.
// Also reads which upvalues a function's code can assign (SETUPVAL), so the
// sandbox restores only those after a call.
//
// The layout, in the order it is read here (varint: 7 bits per byte, most
// significant first, the last byte marked with 0x80):
//   header     "\x1bLua", version 0x54, format 0, "\x19\x93\r\n\x1a\n",
//              sizeof(Instruction), sizeof(lua_Integer), sizeof(lua_Number),
//              an integer and a float to check them; then the main
//              function's upvalue count (one byte)
//   function   source (string), linedefined, lastlinedefined (varints),
//              numparams, is_vararg, maxstacksize (bytes),
//              code (varint n, n instructions), constants (varint n, each a
//              type byte and its value), upvalues (varint n, 3 bytes each),
//              nested functions (varint n, each a function),
//              lineinfo (varint n, n signed bytes: the line's delta from the
//              previous instruction's, or -128 for "absolute, see below"),
//              abslineinfo (varint n, pairs of varints pc, line),
//              local variables (varint n, each a string and two varints),
//              upvalue names (varint n, strings)
//   string     varint size; 0 is no string, else size - 1 bytes follow
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>

#include "lua/sandbox.h"

namespace switchboard::detail {

namespace {

constexpr char kSignature[] = "\x1bLua";
constexpr unsigned char kVersion = 0x54;
constexpr unsigned char kFormat = 0;
constexpr char kCheckData[] = "\x19\x93\r\n\x1a\n";
constexpr int kAbsLineInfo = -0x80;  // a lineinfo entry whose line is in abslineinfo
constexpr int kMaxNesting = 256;     // the parser's own limit on nesting is lower (LUAI_MAXCCALLS)

// Constant type tags (lobject.h: makevariant(type, variant)).
constexpr unsigned char kNil = 0x00, kFalse = 0x01, kTrue = 0x11;
constexpr unsigned char kInteger = 0x03, kFloat = 0x13;
constexpr unsigned char kShortString = 0x04, kLongString = 0x14;

// A bounds-checked cursor. After the first fault every read returns zero and
// `failed()` stays true, so the callers check once, at the end of a section.
class Cursor {
 public:
  explicit Cursor(std::string_view bytes) : bytes_(bytes) {}

  bool failed() const { return failed_; }
  bool at_end() const { return pos_ == bytes_.size(); }
  void fail() {
    failed_ = true;
    pos_ = bytes_.size();
  }

  unsigned char byte() {
    if (pos_ >= bytes_.size()) {
      fail();
      return 0;
    }
    return static_cast<unsigned char>(bytes_[pos_++]);
  }

  // `n` bytes, or an empty view after a fault.
  std::string_view take(size_t n) {
    if (n > bytes_.size() - pos_) {
      fail();
      return {};
    }
    std::string_view out = bytes_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  void skip(size_t n) { take(n); }

  // `count` items of `size` bytes each, without overflow.
  void skip_items(size_t count, size_t size) {
    if (size != 0 && count > (bytes_.size() - pos_) / size) {
      fail();
      return;
    }
    skip(count * size);
  }

  size_t varint() {
    size_t x = 0;
    for (;;) {
      const unsigned char b = byte();
      if (failed_) return 0;
      if (x > (SIZE_MAX >> 7)) {
        fail();
        return 0;
      }
      x = (x << 7) | (b & 0x7f);
      if ((b & 0x80) != 0) return x;
    }
  }

  int integer() {
    const size_t x = varint();
    if (x > static_cast<size_t>(INT_MAX)) {
      fail();
      return 0;
    }
    return static_cast<int>(x);
  }

  void string() {
    const size_t size = varint();
    if (size > 0) skip(size - 1);
  }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
  bool failed_ = false;
};

struct Sizes {
  size_t instruction = 0;
  size_t integer = 0;
  size_t number = 0;
};

bool read_header(Cursor& in, Sizes& sizes) {
  if (in.take(4) != std::string_view(kSignature, 4)) return false;
  if (in.byte() != kVersion || in.byte() != kFormat) return false;
  if (in.take(6) != std::string_view(kCheckData, 6)) return false;
  sizes.instruction = in.byte();
  sizes.integer = in.byte();
  sizes.number = in.byte();
  for (size_t s : {sizes.instruction, sizes.integer, sizes.number}) {
    if (s == 0 || s > 16) return false;
  }
  in.skip(sizes.integer);  // LUAC_INT
  in.skip(sizes.number);   // LUAC_NUM
  in.byte();               // the main function's upvalue count
  return !in.failed();
}

// The line of each instruction, as ldebug.c's luaG_getfuncline finds it: the
// previous instruction's line plus the delta, or for an absolute entry the
// line of the last abslineinfo record at or before it.
bool lines_of(std::string_view lineinfo, const std::vector<std::pair<int, int>>& abs,
              PrototypeLines& proto) {
  int line = proto.line_defined;
  size_t next_abs = 0;  // abs[next_abs - 1] is the last record at or before pc
  for (size_t pc = 0; pc < lineinfo.size(); ++pc) {
    const int delta = static_cast<signed char>(lineinfo[pc]);
    if (delta == kAbsLineInfo) {
      while (next_abs < abs.size() && static_cast<size_t>(abs[next_abs].first) <= pc) ++next_abs;
      if (next_abs == 0) return false;
      line = abs[next_abs - 1].second;
    } else {
      line += delta;
    }
    // lua_getinfo 'L' skips a vararg function's first instruction
    // (VARARGPREP): it runs before the function's first line.
    if (proto.is_vararg && pc == 0) continue;
    proto.lines.push_back(line);
  }
  std::sort(proto.lines.begin(), proto.lines.end());
  proto.lines.erase(std::unique(proto.lines.begin(), proto.lines.end()), proto.lines.end());
  return true;
}

// Steps over a function's constant table; false on a tag Lua 5.4 does not write.
bool skip_constants(Cursor& in, const Sizes& sizes) {
  const size_t constants = in.varint();
  for (size_t i = 0; i < constants && !in.failed(); ++i) {
    switch (in.byte()) {
      case kNil: case kFalse: case kTrue: break;
      case kInteger: in.skip(sizes.integer); break;
      case kFloat: in.skip(sizes.number); break;
      case kShortString: case kLongString: in.string(); break;
      default: return false;
    }
  }
  return true;
}

bool read_function(Cursor& in, const Sizes& sizes, int depth, std::vector<PrototypeLines>& out) {
  if (depth > kMaxNesting) return false;
  const size_t index = out.size();
  out.emplace_back();
  in.string();  // source
  out[index].line_defined = in.integer();
  out[index].last_line_defined = in.integer();
  in.byte();  // numparams
  out[index].is_vararg = in.byte() != 0;
  in.byte();  // maxstacksize
  const size_t code = in.varint();
  in.skip_items(code, sizes.instruction);

  if (!skip_constants(in, sizes)) return false;
  const size_t upvalues = in.varint();
  in.skip_items(upvalues, 3);  // instack, idx, kind
  const size_t nested = in.varint();
  for (size_t i = 0; i < nested && !in.failed(); ++i) {
    if (!read_function(in, sizes, depth + 1, out)) return false;
  }

  const std::string_view lineinfo = in.take(in.varint());
  const size_t n_abs = in.varint();
  std::vector<std::pair<int, int>> abs;
  for (size_t i = 0; i < n_abs && !in.failed(); ++i) {
    const int pc = in.integer();
    const int line = in.integer();
    abs.emplace_back(pc, line);
  }
  const size_t locals = in.varint();
  for (size_t i = 0; i < locals && !in.failed(); ++i) {
    in.string();
    in.varint();
    in.varint();
  }
  const size_t upvalue_names = in.varint();
  for (size_t i = 0; i < upvalue_names && !in.failed(); ++i) in.string();
  if (in.failed()) return false;
  // Stripped (no line per instruction): there is nothing to read the lines from.
  if (lineinfo.size() != code) return false;
  return lines_of(lineinfo, abs, out[index]);
}

// lopcodes.h of Lua 5.4: an instruction's opcode is its low 7 bits, and
// SETUPVAL A B (UpValue[B] := R[A]), the only instruction that assigns an
// upvalue, has B in bits 16 to 23.
constexpr std::uint32_t kOpSetUpval = 10;
constexpr std::uint32_t kOpcodeMask = 0x7f;
constexpr int kArgBShift = 16;
constexpr int kMaxUpvalues = 255;      // lparser.h's MAXUPVAL
constexpr int kMaxScannedNesting = 64;  // deeper: the scan gives up (every upvalue assignable)

// Reads one function of the chunk; sets (*own)[i] for each of its upvalues
// its code assigns, itself or through a function nested in it that shares
// the upvalue, and (*enclosing)[j] for each upvalue j of the enclosing
// function so assigned. Plain data only (a frame a Lua error may cross
// calls it), and a bounded depth.
bool scan_function(Cursor& in, const Sizes& sizes, int depth, UpvalueSet* own, UpvalueSet* enclosing) {
  if (depth > kMaxScannedNesting || sizes.instruction != sizeof(std::uint32_t)) return false;
  UpvalueSet assigned{};
  in.string();   // source
  in.varint();   // linedefined
  in.varint();   // lastlinedefined
  in.skip(3);    // numparams, is_vararg, maxstacksize
  const size_t code = in.varint();
  for (size_t pc = 0; pc < code && !in.failed(); ++pc) {
    const std::string_view bytes = in.take(sizeof(std::uint32_t));
    if (in.failed()) return false;
    std::uint32_t instruction = 0;
    std::memcpy(&instruction, bytes.data(), sizeof instruction);
    if ((instruction & kOpcodeMask) == kOpSetUpval) assigned.set((instruction >> kArgBShift) & 0xff);
  }
  if (!skip_constants(in, sizes)) return false;
  const size_t upvalues = in.varint();
  if (upvalues > static_cast<size_t>(kMaxUpvalues)) return false;
  // Where each upvalue comes from: a register of the enclosing function
  // (instack), or the enclosing function's upvalue `index`.
  UpvalueSet from_register{};
  unsigned char index[kMaxUpvalues] = {};
  for (size_t i = 0; i < upvalues && !in.failed(); ++i) {
    if (in.byte() != 0) from_register.set(i);
    index[i] = in.byte();
    in.byte();  // kind
  }
  const size_t nested = in.varint();
  for (size_t i = 0; i < nested && !in.failed(); ++i) {
    if (!scan_function(in, sizes, depth + 1, nullptr, &assigned)) return false;
  }
  in.skip_items(in.varint(), 1);  // lineinfo
  const size_t n_abs = in.varint();
  for (size_t i = 0; i < n_abs && !in.failed(); ++i) {
    in.varint();
    in.varint();
  }
  const size_t locals = in.varint();
  for (size_t i = 0; i < locals && !in.failed(); ++i) {
    in.string();
    in.varint();
    in.varint();
  }
  const size_t upvalue_names = in.varint();
  for (size_t i = 0; i < upvalue_names && !in.failed(); ++i) in.string();
  if (in.failed()) return false;
  if (enclosing != nullptr) {
    for (size_t i = 0; i < upvalues; ++i) {
      if (assigned.test(i) && !from_register.test(i)) enclosing->set(index[i]);
    }
  }
  if (own != nullptr) *own = assigned;
  return true;
}

}  // namespace

bool assignable_upvalues(std::string_view chunk, UpvalueSet* out) {
  Cursor in(chunk);
  Sizes sizes;
  if (!read_header(in, sizes)) return false;
  return scan_function(in, sizes, 0, out, nullptr) && in.at_end();
}

Result<std::vector<PrototypeLines>> read_chunk_lines(std::string_view chunk) {
  Cursor in(chunk);
  Sizes sizes;
  if (!read_header(in, sizes)) {
    return Status::invalid_argument("not a Lua 5.4 binary chunk (or one from another build of Lua)");
  }
  std::vector<PrototypeLines> protos;
  if (!read_function(in, sizes, 0, protos) || !in.at_end()) {
    return Status::invalid_argument("malformed Lua 5.4 binary chunk, or one without line information");
  }
  return protos;
}

}  // namespace switchboard::detail
