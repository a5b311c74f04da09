#include "tokenize/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "tokenize/text_count_caches.h"
#include "util/sha256.h"

namespace switchboard::detail {

namespace {

constexpr std::uint32_t kNoRank = std::numeric_limits<std::uint32_t>::max();
// Pieces longer than this merge through a heap (long_piece_tokens).
constexpr size_t kLongPiece = 128;
// Pieces longer than this are merged in chunks of this many bytes and their
// counts added: an estimate, not tiktoken's count, which merges across the
// cuts (it differs by about a token per cut, mostly upwards). Only a run of
// one character class is that long (a megabyte of one letter is one piece),
// and merging it whole costs seconds.
constexpr size_t kChunk = 4096;

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

// Byte sequence -> rank. Single bytes and pairs (every merge loop starts
// from them) are looked up in flat arrays. Longer sequences are in an
// open-addressing table whose slots hold the first eight bytes, the length
// and the rank, so a lookup touches one slot (and, for a token longer than
// eight bytes, its remaining bytes in one shared buffer): counting is bound
// by these lookups' cache misses.
class BpeEncoding::RankTable {
 public:
  static constexpr size_t kMaxLength = 255;  // the slot's length field; tiktoken's longest token is 128
  static constexpr std::uint32_t kMaxRank = (1u << 24) - 1;  // the slot's rank field

  RankTable() : byte_rank_(256, kNoRank), pair_rank_(65536, kNoRank) {}

  void reserve(size_t n) {
    size_t slots = 16;
    while (slots < n * 2) slots <<= 1;
    slots_.assign(slots, Slot{});
  }

  // Adds `bytes` (1 to kMaxLength of them) with `rank` (at most kMaxRank);
  // false when the same bytes were added before.
  bool add(std::string_view bytes, std::uint32_t rank) {
    if (find(bytes) != kNoRank) return false;
    if (bytes.size() == 1) {
      byte_rank_[static_cast<unsigned char>(bytes[0])] = rank;
      return true;
    }
    if (bytes.size() == 2) {
      pair_rank_[pair_index(bytes)] = rank;
      return true;
    }
    if ((used_ + 1) * 2 > slots_.size()) grow();
    insert(Slot{prefix(bytes), static_cast<std::uint32_t>(tail_.size()),
                (rank << 8) | static_cast<std::uint32_t>(bytes.size())},
           hash(bytes));
    if (bytes.size() > 8) tail_.append(bytes.substr(8));
    ++used_;
    return true;
  }

  std::uint32_t find(std::string_view bytes) const {
    if (bytes.size() == 1) return byte_rank_[static_cast<unsigned char>(bytes[0])];
    if (bytes.size() == 2) return pair_rank_[pair_index(bytes)];
    if (slots_.empty() || bytes.size() > kMaxLength) return kNoRank;
    const std::uint64_t p = prefix(bytes);
    const size_t mask = slots_.size() - 1;
    for (size_t i = hash(bytes) & mask;; i = (i + 1) & mask) {
      const Slot& slot = slots_[i];
      const std::uint32_t length = slot.rank_length & 0xFF;
      if (length == 0) return kNoRank;
      if (length == bytes.size() && slot.prefix == p &&
          (length <= 8 || std::string_view(tail_).substr(slot.tail, length - 8) == bytes.substr(8))) {
        return slot.rank_length >> 8;
      }
    }
  }

 private:
  struct Slot {
    std::uint64_t prefix = 0;       // the first eight bytes, zero-padded
    std::uint32_t tail = 0;         // where the bytes after the eighth start in tail_
    std::uint32_t rank_length = 0;  // rank << 8 | length; length 0 = an empty slot
  };

  static size_t pair_index(std::string_view bytes) {
    return static_cast<size_t>(static_cast<unsigned char>(bytes[0])) << 8 | static_cast<unsigned char>(bytes[1]);
  }

  static std::uint64_t prefix(std::string_view bytes) {
    std::uint64_t p = 0;
    std::memcpy(&p, bytes.data(), std::min<size_t>(bytes.size(), 8));
    return p;
  }

  // The prefix and length mixed (splitmix64's finaliser), then any further
  // bytes eight at a time.
  static std::uint64_t hash(std::string_view bytes) {
    const auto mix = [](std::uint64_t x) {
      x ^= x >> 30;
      x *= 0xbf58476d1ce4e5b9ull;
      x ^= x >> 27;
      x *= 0x94d049bb133111ebull;
      return x ^ (x >> 31);
    };
    std::uint64_t h = mix(prefix(bytes) ^ (static_cast<std::uint64_t>(bytes.size()) << 56));
    for (size_t at = 8; at < bytes.size(); at += 8) h = mix(h ^ prefix(bytes.substr(at)));
    return h;
  }

  void insert(const Slot& slot, std::uint64_t h) {
    const size_t mask = slots_.size() - 1;
    size_t i = h & mask;
    while ((slots_[i].rank_length & 0xFF) != 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }

  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Slot{});
    for (const Slot& slot : old) {
      const std::uint32_t length = slot.rank_length & 0xFF;
      if (length == 0) continue;
      std::string bytes(8, '\0');
      std::memcpy(bytes.data(), &slot.prefix, 8);
      bytes.resize(std::min<size_t>(length, 8));
      if (length > 8) bytes += std::string_view(tail_).substr(slot.tail, length - 8);
      insert(slot, hash(bytes));
    }
  }

  std::vector<std::uint32_t> byte_rank_;  // by the byte
  std::vector<std::uint32_t> pair_rank_;  // by first byte << 8 | second
  std::vector<Slot> slots_;               // sequences of 3 or more bytes
  std::string tail_;                      // their bytes after the eighth
  size_t used_ = 0;
};

// The compiled pattern; owns the PCRE2 handle.
struct BpeEncoding::Regex {
  pcre2_code* code = nullptr;
  bool jit = false;
  ~Regex() { pcre2_code_free(code); }
};

// Ids from 1, never reused in a process: a piece cached for an encoding that
// is gone (a test's) never answers for a later one at the same address.
BpeEncoding::BpeEncoding() {
  static std::atomic<std::uint64_t> next_id{1};
  id_ = next_id.fetch_add(1, std::memory_order_relaxed);
}
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
        if (!bytes || bytes->empty() || bytes->size() > RankTable::kMaxLength || rank > RankTable::kMaxRank) {
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
  // One pair of offsets is all a split reads: one block per thread serves
  // every pattern (made once, not per text).
  struct ThreadMatchData {
    pcre2_match_data* data = pcre2_match_data_create(1, nullptr);
    ~ThreadMatchData() { pcre2_match_data_free(data); }
  };
  thread_local const ThreadMatchData shared;
  pcre2_match_data* const data = shared.data;
  if (data == nullptr) return;  // out of memory: nothing is counted, as a failed match
  struct DeepStack {  // made for this call only when a match needs it
    pcre2_match_context* context = nullptr;
    pcre2_jit_stack* stack = nullptr;
    ~DeepStack() {
      pcre2_jit_stack_free(stack);
      pcre2_match_context_free(context);
    }
  } md;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  PCRE2_SIZE offset = 0;
  while (offset < text.size()) {
    int rc = regex_->jit ? pcre2_jit_match(regex_->code, subject, text.size(), offset, 0, data, md.context)
                         : pcre2_match(regex_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, data,
                                       md.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && md.stack == nullptr) {
      // A long run of one class backtracks deeply: give this call a large stack.
      md.context = pcre2_match_context_create(nullptr);
      md.stack = pcre2_jit_stack_create(64 * 1024, 256 * 1024 * 1024, nullptr);
      pcre2_jit_stack_assign(md.context, nullptr, md.stack);
      continue;
    }
    if (rc < 0) return;  // no match (nothing the patterns leave) or out of memory: the rest is not counted
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
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
  if (piece.size() > kChunk) {
    // Counted chunk by chunk (at character boundaries): see kChunk. A run
    // of one character repeats its chunks: a chunk equal to the one before
    // has its count.
    std::int64_t n = 0;
    std::string_view last;
    std::int64_t last_tokens = 0;
    while (!piece.empty()) {
      size_t cut = std::min(piece.size(), kChunk);
      while (cut < piece.size() && cut > 1 && (static_cast<unsigned char>(piece[cut]) & 0xC0) == 0x80) --cut;
      const std::string_view chunk = piece.substr(0, cut);
      if (out != nullptr || chunk != last) {
        last = chunk;
        last_tokens = piece_tokens(chunk, out);
      }
      n += last_tokens;
      piece.remove_prefix(cut);
    }
    return n;
  }
  if (piece.size() > kLongPiece) return long_piece_tokens(piece, out);
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

std::int64_t BpeEncoding::long_piece_tokens(std::string_view piece, std::vector<std::uint32_t>* out) const {
  // Parts as a linked list over byte positions: part i starts at byte i
  // while alive, next[i] is the start of the part after it (n at the end).
  // The heap holds (rank of part i joined with its next, i); the smallest
  // rank, then the smallest start, is the pair the scan in piece_tokens
  // would merge, so the merges and their result are the same.
  const auto n = static_cast<std::uint32_t>(piece.size());
  std::vector<std::uint32_t> next(n);
  std::vector<std::uint32_t> prev(n);
  std::vector<std::uint32_t> pair_rank(n, kNoRank);
  for (std::uint32_t i = 0; i < n; ++i) {
    next[i] = i + 1;
    prev[i] = i == 0 ? n : i - 1;  // n: none
  }
  const auto joined_rank = [&](std::uint32_t i) {
    if (next[i] >= n) return kNoRank;  // the last part
    return ranks_->find(piece.substr(i, next[next[i]] - i));
  };
  using Entry = std::pair<std::uint32_t, std::uint32_t>;  // (rank, start)
  std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap;
  for (std::uint32_t i = 0; i + 1 < n; ++i) {
    pair_rank[i] = joined_rank(i);
    if (pair_rank[i] != kNoRank) heap.emplace(pair_rank[i], i);
  }
  std::int64_t parts = n;
  while (!heap.empty()) {
    const auto [rank, i] = heap.top();
    heap.pop();
    if (pair_rank[i] != rank) continue;  // stale: part i changed (or was merged away: kNoRank)
    const std::uint32_t j = next[i];     // merge part j into part i
    next[i] = next[j];
    if (next[j] < n) prev[next[j]] = i;
    pair_rank[j] = kNoRank;
    --parts;
    pair_rank[i] = joined_rank(i);
    if (pair_rank[i] != kNoRank) heap.emplace(pair_rank[i], i);
    if (prev[i] < n) {
      pair_rank[prev[i]] = joined_rank(prev[i]);
      if (pair_rank[prev[i]] != kNoRank) heap.emplace(pair_rank[prev[i]], prev[i]);
    }
  }
  if (out != nullptr) {
    for (std::uint32_t i = 0; i < n; i = next[i]) out->push_back(ranks_->find(piece.substr(i, next[i] - i)));
  }
  return parts;
}

std::int64_t BpeEncoding::count(std::string_view text) const {
  if (text.size() <= ShortTextCache::kMaxBytes) {
    // Roles, names, short arguments: the same few texts, every message of
    // every request; remembered whole, they skip the split pattern.
    thread_local ShortTextCache short_texts;
    return short_texts.find(id_, text, [&] { return count_pieces(text); });
  }
  if (text.size() < kRememberedTextBytes) {
    // Short messages and tool calls, re-sent with the history: kept apart
    // from the roles, so they do not push them out.
    thread_local MediumTextCache medium_texts;
    return medium_texts.find(id_, text, [&] { return count_pieces(text); });
  }
  if (text.size() <= LongTextCache::kMaxBytes) {
    thread_local LongTextCache long_texts;
    return long_texts.find(id_, text, [&] { return count_pieces(text); });
  }
  thread_local HugeTextCache cache;
  const std::array<unsigned char, 32> digest = sha256_digest(text);
  std::uint64_t slot = 0;
  std::memcpy(&slot, digest.data(), sizeof slot);
  HugeTextCache::Entry& e = cache.entries[slot & (HugeTextCache::kEntries - 1)];
  if (e.encoding != id_ || e.digest != digest) e = HugeTextCache::Entry{id_, digest, count_pieces(text)};
  return e.tokens;
}

std::int64_t BpeEncoding::count_pieces(std::string_view text) const {
  if (!valid_utf8(text)) return count_pieces(with_replacement_characters(text));
  thread_local PieceCache cache;
  std::int64_t n = 0;
  split(text, [&](std::string_view piece) {
    if (piece.size() > PieceCache::kMaxBytes) {
      n += piece_tokens(piece, nullptr);
      return;
    }
    n += cache.find(id_, piece, [&] { return piece_tokens(piece, nullptr); });
  });
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
