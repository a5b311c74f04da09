// The token counter's long-text cache: a text is found only while the ring
// still holds its bytes, and a new text pushes out an entry whose bytes are
// gone before a live one.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tokenize/text_count_caches.h"

using switchboard::detail::LongTextCache;

namespace {

constexpr std::uint64_t kEncoding = 7;

// A text of `n` bytes (past the short caches' sizes) that differs from
// every other `tag`'s.
std::string text_of(const std::string& tag, std::size_t n = 1000) {
  std::string s = tag + ":";
  while (s.size() < n) s += "the quick brown fox jumps over the lazy dog " + tag + " ";
  s.resize(n);
  return s;
}

// The slot `text`'s entry is in, after it was counted into `cache`.
std::size_t slot_of(const LongTextCache& cache, const std::string& text, std::int64_t tokens) {
  for (std::size_t i = 0; i < cache.entries.size(); ++i) {
    if (cache.entries[i].length == text.size() && cache.entries[i].tokens == tokens) return i;
  }
  FAIL("the text has no entry");
  return 0;
}

}  // namespace

TEST_CASE("a long text is counted once, then found while the ring holds its bytes") {
  auto cache = std::make_unique<LongTextCache>();
  int counted = 0;
  const std::string text = text_of("a");
  CHECK(cache->find(kEncoding, text, [&] { return ++counted, 111; }) == 111);
  CHECK(cache->find(kEncoding, text, [&] { return ++counted, 999; }) == 111);
  CHECK(counted == 1);
  CHECK(cache->find(kEncoding + 1, text, [&] { return ++counted, 222; }) == 222);  // another encoding's count
  CHECK(counted == 2);
}

TEST_CASE("an entry whose bytes the ring came round over is not found, even where the same bytes were written") {
  // The entry was made for the text first written at its place (count 111).
  // The ring then took kArenaBytes more, and the text written last at that
  // place starts with the same bytes: comparing them would find the entry,
  // with the first text's count.
  auto cache = std::make_unique<LongTextCache>();
  const std::string text = text_of("b");
  REQUIRE(cache->find(kEncoding, text, [] { return 111; }) == 111);
  const LongTextCache::Entry& entry = cache->entries[slot_of(*cache, text, 111)];
  REQUIRE(entry.at == 0);
  cache->head += LongTextCache::kArenaBytes;  // the ring came round: everything was written over once
  int counted = 0;
  CHECK(cache->find(kEncoding, text, [&] { return ++counted, 222; }) == 222);
  CHECK(counted == 1);
}

TEST_CASE("a new long text pushes out the slot whose bytes are gone, not the live one used longer ago") {
  const std::string text = text_of("c");
  // Which two slots the text may take: the first free one, then the other
  // once the first holds a live entry used more recently.
  std::size_t first = 0;
  std::size_t second = 0;
  {
    auto probe = std::make_unique<LongTextCache>();
    probe->find(kEncoding, text, [] { return 1; });
    first = slot_of(*probe, text, 1);
    probe->entries[first].length = static_cast<std::size_t>(text.size() - 1);  // another text's, live, used last
    probe->entries[first].used = probe->head + 1;
    probe->find(kEncoding, text, [] { return 2; });
    second = slot_of(*probe, text, 2);
    REQUIRE(second != first);
  }
  auto cache = std::make_unique<LongTextCache>();
  // Two other texts in those slots: the first's bytes written long ago and
  // gone (though found since), the second's live, used longer ago.
  const std::string gone = text_of("gone");
  const std::string live = text_of("live");
  cache->find(kEncoding, gone, [] { return 10; });
  LongTextCache::Entry gone_entry = cache->entries[slot_of(*cache, gone, 10)];
  cache->entries[slot_of(*cache, gone, 10)] = LongTextCache::Entry{};
  cache->head += LongTextCache::kArenaBytes;  // the ring came round over `gone`
  cache->find(kEncoding, live, [] { return 20; });
  LongTextCache::Entry live_entry = cache->entries[slot_of(*cache, live, 20)];
  cache->entries[slot_of(*cache, live, 20)] = LongTextCache::Entry{};
  live_entry.used = cache->head - 1;
  gone_entry.used = cache->head;  // found last, though its bytes are gone
  cache->entries[first] = gone_entry;
  cache->entries[second] = live_entry;

  CHECK(cache->find(kEncoding, text, [] { return 30; }) == 30);
  CHECK(cache->entries[first].tokens == 30);   // the gone entry made room
  CHECK(cache->entries[second].tokens == 20);  // the live one stays
  CHECK(cache->entries[second].length == live.size());
}
