// The token counter's caches of recent texts and their counts, one per
// thread (BpeEncoding::count, bpe.cpp): the split's pieces, short and medium
// texts kept whole in their entries, long texts in a ring of bytes, and
// texts past a megabyte by their SHA-256. Here rather than in bpe.cpp so that
// their rules (what is found, what is pushed out) are tested on their own.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenize/bpe.h"

namespace switchboard::detail {

// The slot of hash `h` in a table of 2^bits entries: the high bits of `h`
// times 2^64 / phi (Fibonacci hashing), which depend on every bit of `h`.
// (The low bits of a multiply depend only on the low bits before it: taken
// from there, texts that differ in the high bytes of a word, "src/m19.py"
// and "src/m29.py", fell into a handful of slots and pushed each other out
// on every request.) One multiply: the piece cache looks up every piece.
template <std::size_t kEntries>
std::size_t slot_in(std::uint64_t h) {
  static_assert((kEntries & (kEntries - 1)) == 0 && kEntries > 1, "a power of two");
  constexpr int kBits = std::countr_zero(kEntries);
  return static_cast<std::size_t>((h * 0x9E3779B97F4A7C15ull) >> (64 - kBits));
}

// The two slots text of hash `h` may take (the caches are two-way: a new
// text replaces the one of its two slots used longer ago, so two texts that
// share a slot do not push each other out on every request, as an agent's
// 300 messages would in 2048 direct-mapped slots about 20 times a request).
template <std::size_t kEntries>
std::pair<std::size_t, std::size_t> slots_in(std::uint64_t h) {
  const std::size_t a = slot_in<kEntries>(h);
  const std::size_t b = slot_in<kEntries>(h * 0xC2B2AE3D27D4EB4Full + 0x165667B19E3779F9ull);
  return {a, b != a ? b : a ^ 1};
}

// A thread's recent texts of up to kBytes bytes and their token counts,
// two-way (slots_in), each entry holding its text's bytes: the split's pieces
// (words and indentation repeat, and a hit here, in cache, replaces the rank
// table's lookups: misses to memory, one per merge step), and whole texts
// shorter than kRememberedTextBytes (roles and names; an agent's short
// messages and tool calls, re-sent with its history on every step), which
// then skip the split. An entry is an exact text of one encoding, compared
// byte for byte, so a hit is always right whatever the slot's hash.
template <std::size_t kEntries, std::size_t kBytes>
struct TextCountCache {
  struct Entry {
    std::uint64_t encoding = 0;  // BpeEncoding::id_; 0: empty
    std::uint32_t length = 0;
    std::uint32_t tokens = 0;
    std::uint32_t used = 0;  // `tick` when last found or made
    std::array<char, kBytes> bytes{};
  };
  static constexpr size_t kMaxBytes = kBytes;
  std::array<Entry, kEntries> entries{};
  std::uint32_t tick = 0;

  // The tokens of `text` (at most kMaxBytes) in `encoding`: remembered, or
  // count() and remembered.
  template <typename Count>
  std::uint32_t find(std::uint64_t encoding, std::string_view text, Count&& count) {
    const auto [a, b] = slots_in<kEntries>(hash_of(text));
    for (Entry* e : {&entries[a], &entries[b]}) {
      if (e->encoding == encoding && e->length == text.size() &&
          std::memcmp(e->bytes.data(), text.data(), text.size()) == 0) {
        e->used = ++tick;
        return e->tokens;
      }
    }
    Entry& e = entries[a].used <= entries[b].used ? entries[a] : entries[b];
    e.encoding = encoding;
    e.length = static_cast<std::uint32_t>(text.size());
    e.tokens = static_cast<std::uint32_t>(count());
    e.used = ++tick;
    std::memcpy(e.bytes.data(), text.data(), text.size());
    return e.tokens;
  }

 private:
  // A multiply-xor hash of the text's words (zero-padded) and length: it
  // spreads texts over the slots; a collision only costs a count.
  static std::uint64_t hash_of(std::string_view text) {
    std::uint64_t h = text.size() * 0x9E3779B97F4A7C15ull;
    std::size_t i = 0;
    const auto mix = [&h](std::uint64_t w) {
      h = (h ^ w) * 0xC2B2AE3D27D4EB4Full;
      h ^= h >> 29;
    };
    for (; i + 8 <= text.size(); i += 8) {
      std::uint64_t w;
      std::memcpy(&w, text.data() + i, sizeof w);
      mix(w);
    }
    if (i < text.size()) {
      std::uint64_t w = 0;
      std::memcpy(&w, text.data() + i, text.size() - i);
      mix(w);
    }
    return h;
  }
};

using PieceCache = TextCountCache<4096, 16>;      // 128 KiB a thread
using ShortTextCache = TextCountCache<512, 16>;   // 16 KiB a thread: roles and names are few
using MediumTextCache = TextCountCache<512, BpeEncoding::kRememberedTextBytes - 1>;  // 136 KiB a thread

// Recent long texts (kRememberedTextBytes up to kMaxBytes) and their counts,
// each entry's bytes kept and compared whole (a hit is always the text's own
// count): two slots (slots_in) from a hash of every byte, four multiply-xor
// lanes at once (about a cycle per 16 bytes; a collision only costs a count). The
// bytes are written one after another into a ring of kArenaBytes a thread,
// allocated once: an entry holds while the ring has not come round over it,
// so the oldest texts go first, the budget is exact, and remembering a text
// costs a copy, not an allocation. An agent re-sends its whole history on
// every step: each message costs a hash and a memcmp after its first count,
// not SHA-256's cycles per byte.
struct LongTextCache {
  static constexpr std::size_t kEntries = 2048;
  static constexpr std::size_t kMaxBytes = std::size_t{1} << 20;    // larger: HugeTextCache
  static constexpr std::size_t kArenaBytes = std::size_t{8} << 20;  // 8 MiB a thread
  struct Entry {
    std::uint64_t encoding = 0;  // BpeEncoding::id_; 0: empty
    std::uint64_t at = 0;        // where its bytes went, counting every byte the ring took
    std::size_t length = 0;
    std::int64_t tokens = 0;
    std::uint64_t used = 0;  // `head` when last found or made
  };
  std::vector<Entry> entries = std::vector<Entry>(kEntries);
  std::unique_ptr<char[]> arena;  // the ring, made at the first text (its pages as they are written)
  std::uint64_t head = 0;         // bytes the ring has taken (skips included)

  template <typename Count>
  std::int64_t find(std::uint64_t encoding, std::string_view text, Count&& count) {
    const auto [a, b] = slots_in<kEntries>(hash_of(text));
    for (Entry* found : {&entries[a], &entries[b]}) {
      if (found->encoding == encoding && found->length == text.size() && holds_bytes(*found) &&
          std::memcmp(arena.get() + found->at % kArenaBytes, text.data(), text.size()) == 0) {
        found->used = head;
        return found->tokens;
      }
    }
    // The new text takes a slot whose entry is empty or lost its bytes to the
    // ring first (a text found often but written long ago is gone all the
    // same), else the one used longer ago.
    Entry& e = !holds_bytes(entries[a])   ? entries[a]
               : !holds_bytes(entries[b]) ? entries[b]
               : entries[a].used <= entries[b].used ? entries[a]
                                                    : entries[b];
    const std::int64_t tokens = count();
    if (!arena) arena.reset(new char[kArenaBytes]);
    std::uint64_t at = head;
    if (at % kArenaBytes + text.size() > kArenaBytes) at += kArenaBytes - at % kArenaBytes;  // round to the start
    std::memcpy(arena.get() + at % kArenaBytes, text.data(), text.size());
    head = at + text.size();
    e = Entry{encoding, at, text.size(), tokens, head};
    return tokens;
  }

 private:
  // An entry made and not yet written over: the ring has taken at most
  // kArenaBytes since the entry's first byte, so no later text reached its
  // bytes (a later byte lands on an earlier one only kArenaBytes on).
  bool holds_bytes(const Entry& e) const { return e.encoding != 0 && head - e.at <= kArenaBytes; }

  static std::uint64_t hash_of(std::string_view text) {
    constexpr std::uint64_t kMul = 0xC2B2AE3D27D4EB4Full;
    std::uint64_t lane[4] = {text.size(), 0x9E3779B97F4A7C15ull, 0x165667B19E3779F9ull, 0x27D4EB2F165667C5ull};
    const auto mix = [](std::uint64_t h, std::uint64_t w) {
      h = (h ^ w) * kMul;
      return h ^ (h >> 29);
    };
    std::size_t i = 0;
    for (; i + 32 <= text.size(); i += 32) {
      for (std::size_t k = 0; k < 4; ++k) {
        std::uint64_t w;
        std::memcpy(&w, text.data() + i + 8 * k, sizeof w);
        lane[k] = mix(lane[k], w);
      }
    }
    std::uint64_t tail[4] = {};
    std::memcpy(tail, text.data() + i, text.size() - i);
    std::uint64_t h = 0;
    for (std::size_t k = 0; k < 4; ++k) h = mix(h ^ lane[k], tail[k]);
    return h;
  }
};

// Counts of texts longer than LongTextCache's kMaxBytes, by SHA-256 (a
// collision cannot be made, so a count found here is the text's own), so
// that a megabyte message is not kept: direct-mapped, the newest text in a
// slot replaces the one before.
struct HugeTextCache {
  struct Entry {
    std::uint64_t encoding = 0;  // BpeEncoding::id_; 0: empty
    std::array<unsigned char, 32> digest{};
    std::int64_t tokens = 0;
  };
  static constexpr size_t kEntries = 64;
  std::array<Entry, kEntries> entries{};
};


}  // namespace switchboard::detail
