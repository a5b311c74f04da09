#include "tokenize/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace switchboard::detail {

namespace {

constexpr std::uint32_t kNoRank = std::numeric_limits<std::uint32_t>::max();

// tiktoken's patterns are written for Rust's regex crate, where \s is
// Unicode's White_Space. PCRE2's \s (with UCP) is \p{Z} plus \h and \v, which
// also holds U+180E; so \s and \S are spelled out as this set instead.
constexpr std::string_view kWhiteSpace =
    "\\x{9}-\\x{d}\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}"
    "\\x{205f}\\x{3000}";

// `pattern` with \s and \S replaced by kWhiteSpace (inside a class, its
// members; outside, a class of them or of everything else).
Result<std::string> pcre2_pattern(std::string_view pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += in_class ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (e == 'S') {
        if (in_class) return Status::invalid_argument("\\S inside a character class is not supported");
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (c == '[' && !in_class) {
      in_class = true;
      out += c;
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];  // a literal ']'
      continue;
    }
    if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}

// The bytes of standard base64 `text`, or nullopt when it is not base64.
std::optional<std::string> from_base64(std::string_view text) {
  static constexpr std::array<std::int8_t, 256> kValue = [] {
    std::array<std::int8_t, 256> v{};
    v.fill(-1);
    constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < kAlphabet.size(); ++i) v[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
    return v;
  }();
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    const std::int8_t v = kValue[static_cast<unsigned char>(ch)];
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

// The length of the valid UTF-8 sequence at text[i] (1-4), or 0 when the
// bytes there are not one (overlong forms, surrogates and code points above
// U+10FFFF are invalid, as PCRE2 has them).
size_t utf8_sequence(std::string_view text, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF) return 0;
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  return n;
}

bool valid_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t n = utf8_sequence(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

// `text` with each byte that starts no valid sequence replaced by U+FFFD.
std::string with_replacement_characters(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size();) {
    const size_t n = utf8_sequence(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace

// Open addressing over one buffer of every token's bytes: a lookup hashes
// the piece once and compares bytes only on a matching hash.
class BpeEncoding::RankTable {
 public:
  void reserve(size_t n) {
    entries_.reserve(n);
    size_t slots = 1;
    while (slots < n * 2) slots <<= 1;
    slots_.assign(slots, 0);
  }

  // Adds `bytes` with `rank`; false when the same bytes were added before.
  bool add(std::string_view bytes, std::uint32_t rank) {
    if (find(bytes) != kNoRank) return false;
    if ((entries_.size() + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    const std::uint64_t h = hash(bytes);
    entries_.push_back(Entry{static_cast<std::uint32_t>(bytes_.size()), static_cast<std::uint32_t>(bytes.size()),
                             rank, static_cast<std::uint32_t>(h >> 32)});
    bytes_.append(bytes);
    insert_slot(h, static_cast<std::uint32_t>(entries_.size()));
    return true;
  }

  std::uint32_t find(std::string_view bytes) const {
    if (slots_.empty()) return kNoRank;
    const std::uint64_t h = hash(bytes);
    const auto tag = static_cast<std::uint32_t>(h >> 32);
    const size_t mask = slots_.size() - 1;
    for (size_t s = h & mask;; s = (s + 1) & mask) {
      const std::uint32_t e = slots_[s];
      if (e == 0) return kNoRank;
      const Entry& entry = entries_[e - 1];
      if (entry.tag == tag && entry.length == bytes.size() &&
          std::string_view(bytes_).substr(entry.offset, entry.length) == bytes) {
        return entry.rank;
      }
    }
  }

 private:
  struct Entry {
    std::uint32_t offset;
    std::uint32_t length;
    std::uint32_t rank;
    std::uint32_t tag;  // the hash's upper half
  };

  // FNV-1a, 64 bits: pieces are short, so a simple hash is the fast one.
  static std::uint64_t hash(std::string_view bytes) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (char c : bytes) {
      h ^= static_cast<unsigned char>(c);
      h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
  }

  void insert_slot(std::uint64_t h, std::uint32_t entry_plus_one) {
    const size_t mask = slots_.size() - 1;
    size_t s = h & mask;
    while (slots_[s] != 0) s = (s + 1) & mask;
    slots_[s] = entry_plus_one;
  }

  void rehash(size_t slots) {
    slots_.assign(slots, 0);
    for (size_t i = 0; i < entries_.size(); ++i) {
      const Entry& e = entries_[i];
      insert_slot(hash(std::string_view(bytes_).substr(e.offset, e.length)), static_cast<std::uint32_t>(i + 1));
    }
  }

  std::string bytes_;
  std::vector<Entry> entries_;
  std::vector<std::uint32_t> slots_;  // entry index + 1; 0 = empty
};

// The compiled pattern; owns the PCRE2 handle.
struct BpeEncoding::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Regex() { pcre2_code_free(code); }
};

BpeEncoding::BpeEncoding() = default;
BpeEncoding::~BpeEncoding() = default;

Result<std::unique_ptr<const BpeEncoding>> BpeEncoding::from_json(std::string_view json_text,
                                                                   const std::string& source) {
  const nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("pat_str") || !doc["pat_str"].is_string() ||
      !doc.contains("bpe_ranks") || !doc["bpe_ranks"].is_string() || !doc.contains("special_tokens") ||
      !doc["special_tokens"].is_object()) {
    return Status::invalid_argument(source +
                                    ": not a tiktoken encoder file (wants pat_str, special_tokens, bpe_ranks)");
  }
  std::unique_ptr<BpeEncoding> enc(new BpeEncoding());

  Result<std::string> pattern = pcre2_pattern(doc["pat_str"].get<std::string>());
  if (!pattern.ok()) return Status::invalid_argument(source + ": pat_str: " + pattern.status().message());
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  enc->regex_ = std::make_unique<Regex>();
  enc->regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern->data()), pattern->size(),
                                    PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (enc->regex_->code == nullptr) {
    std::array<PCRE2_UCHAR, 256> message{};
    pcre2_get_error_message(error, message.data(), message.size());
    return Status::invalid_argument(source + ": pat_str at " + std::to_string(error_offset) + ": " +
                                    reinterpret_cast<const char*>(message.data()));
  }
  // Without JIT (a build of PCRE2 without it) the interpreter gives the same pieces, slower.
  enc->regex_->jit = pcre2_jit_compile(enc->regex_->code, PCRE2_JIT_COMPLETE) == 0;

  // bpe_ranks: lines of "! FIRST_RANK TOKEN TOKEN ...", each token base64,
  // ranks counting up from FIRST_RANK.
  const std::string& ranks = doc["bpe_ranks"].get_ref<const std::string&>();
  enc->ranks_ = std::make_unique<RankTable>();
  enc->ranks_->reserve(static_cast<size_t>(std::count(ranks.begin(), ranks.end(), ' ')));
  size_t line_start = 0;
  while (line_start < ranks.size()) {
    size_t line_end = ranks.find('\n', line_start);
    if (line_end == std::string::npos) line_end = ranks.size();
    const std::string_view line = std::string_view(ranks).substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (line.empty()) continue;
    size_t field = 0;
    std::uint64_t rank = 0;
    for (size_t pos = 0; pos <= line.size();) {
      size_t end = line.find(' ', pos);
      if (end == std::string_view::npos) end = line.size();
      const std::string_view word = line.substr(pos, end - pos);
      pos = end + 1;
      if (field == 1) {
        rank = 0;
        for (char ch : word) {
          if (ch < '0' || ch > '9') return Status::invalid_argument(source + ": bpe_ranks: bad first rank");
          rank = rank * 10 + static_cast<std::uint64_t>(ch - '0');
        }
      } else if (field >= 2) {
        std::optional<std::string> bytes = from_base64(word);
        if (!bytes || bytes->empty() || rank >= kNoRank) {
          return Status::invalid_argument(source + ": bpe_ranks: bad token '" + std::string(word) + "'");
        }
        if (!enc->ranks_->add(*bytes, static_cast<std::uint32_t>(rank))) {
          return Status::invalid_argument(source + ": bpe_ranks: token '" + std::string(word) + "' twice");
        }
        ++rank;
      }
      ++field;
    }
  }
  for (int b = 0; b < 256; ++b) {  // byte-level BPE: every single byte must be a token
    if (enc->ranks_->find(std::string(1, static_cast<char>(b))) == kNoRank) {
      return Status::invalid_argument(source + ": bpe_ranks: byte " + std::to_string(b) + " has no rank");
    }
  }
  for (const auto& [name, rank] : doc["special_tokens"].items()) enc->special_.push_back(name);
  return std::unique_ptr<const BpeEncoding>(std::move(enc));
}

template <typename OnPiece>
void BpeEncoding::split(std::string_view text, OnPiece&& on_piece) const {
  struct MatchData {
    pcre2_match_data* data;
    pcre2_match_context* context = nullptr;
    pcre2_jit_stack* stack = nullptr;
    ~MatchData() {
      pcre2_jit_stack_free(stack);
      pcre2_match_context_free(context);
      pcre2_match_data_free(data);
    }
  } md{pcre2_match_data_create_from_pattern(regex_->code, nullptr)};
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  PCRE2_SIZE offset = 0;
  while (offset < text.size()) {
    int rc = regex_->jit ? pcre2_jit_match(regex_->code, subject, text.size(), offset, 0, md.data, md.context)
                         : pcre2_match(regex_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, md.data,
                                       md.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && md.stack == nullptr) {
      // A long run of one class backtracks deeply: give this call a large stack.
      md.context = pcre2_match_context_create(nullptr);
      md.stack = pcre2_jit_stack_create(64 * 1024, 256 * 1024 * 1024, nullptr);
      pcre2_jit_stack_assign(md.context, nullptr, md.stack);
      continue;
    }
    if (rc < 0) return;  // no match (nothing the patterns leave) or out of memory: the rest is not counted
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(md.data);
    if (ovector[1] <= ovector[0]) return;  // the patterns have no empty match
    on_piece(text.substr(ovector[0], ovector[1] - ovector[0]));
    offset = ovector[1];
  }
}

std::int64_t BpeEncoding::piece_tokens(std::string_view piece, std::vector<std::uint32_t>* out) const {
  const std::uint32_t whole = ranks_->find(piece);
  if (whole != kNoRank) {
    if (out != nullptr) out->push_back(whole);
    return 1;
  }
  // The merge loop: start from single bytes; repeatedly merge the adjacent
  // pair whose joined bytes have the lowest rank (the leftmost on a tie),
  // until no adjacent pair is a token. starts[i] is where part i begins;
  // pair_rank[i] the rank of parts i and i + 1 joined.
  thread_local std::vector<std::uint32_t> starts;
  thread_local std::vector<std::uint32_t> pair_rank;
  const size_t n = piece.size();
  starts.resize(n + 1);
  for (size_t i = 0; i <= n; ++i) starts[i] = static_cast<std::uint32_t>(i);
  pair_rank.resize(n - 1);
  for (size_t i = 0; i + 1 < n; ++i) pair_rank[i] = ranks_->find(piece.substr(i, 2));
  size_t parts = n;
  const auto joined_rank = [&](size_t i) {  // parts i and i + 1 joined; REQUIRES i + 2 <= parts
    return ranks_->find(piece.substr(starts[i], starts[i + 2] - starts[i]));
  };
  while (parts > 1) {
    size_t best = 0;
    std::uint32_t best_rank = kNoRank;
    for (size_t i = 0; i + 1 < parts; ++i) {
      if (pair_rank[i] < best_rank) {
        best_rank = pair_rank[i];
        best = i;
      }
    }
    if (best_rank == kNoRank) break;
    starts.erase(starts.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    pair_rank.erase(pair_rank.begin() + static_cast<std::ptrdiff_t>(best));
    --parts;
    if (best + 1 < parts) pair_rank[best] = joined_rank(best);
    if (best > 0) pair_rank[best - 1] = joined_rank(best - 1);
  }
  if (out != nullptr) {
    for (size_t i = 0; i < parts; ++i) out->push_back(ranks_->find(piece.substr(starts[i], starts[i + 1] - starts[i])));
  }
  return static_cast<std::int64_t>(parts);
}

std::int64_t BpeEncoding::count(std::string_view text) const {
  if (!valid_utf8(text)) return count(with_replacement_characters(text));
  std::int64_t n = 0;
  split(text, [&](std::string_view piece) { n += piece_tokens(piece, nullptr); });
  return n;
}

std::vector<std::uint32_t> BpeEncoding::encode(std::string_view text) const {
  std::vector<std::uint32_t> out;
  if (!valid_utf8(text)) return encode(with_replacement_characters(text));
  split(text, [&](std::string_view piece) { piece_tokens(piece, &out); });
  return out;
}

std::int64_t BpeEncoding::count_with_special(std::string_view text) const {
  std::int64_t n = 0;
  while (!text.empty()) {
    size_t at = std::string_view::npos;
    size_t length = 0;
    for (const std::string& s : special_) {
      const size_t p = text.find(s);
      if (p < at) {
        at = p;
        length = s.size();
      }
    }
    if (at == std::string_view::npos) break;
    n += count(text.substr(0, at)) + 1;
    text.remove_prefix(at + length);
  }
  return n + count(text);
}

}  // namespace switchboard::detail
