// Folder tokenize/: OpenAI's byte-pair encodings (o200k_base, cl100k_base)
// counted in C++ exactly as tiktoken counts them (bpe.cpp), where their rank
// files are found and loaded once per process (encodings.cpp), and a whole
// request's count with each provider's overheads (request_tokens.cpp). It may
// use util/ and the public headers; nothing else includes it but through
// switchboard/tokens.h.
//
// One byte-pair encoding: a split pattern (PCRE2, JIT-compiled), the ranks of
// its byte sequences and its special tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "switchboard/status.h"

namespace switchboard::detail {

// An encoding as tiktoken's own files describe it (the npm package's
// encoders/NAME.json: "pat_str", "special_tokens", "bpe_ranks"). Immutable
// once loaded; every method is thread-safe (each call has its own match
// data; count() keeps each thread's recent pieces and texts with their
// counts in caches of that thread's own).
class BpeEncoding {
 public:
  // Parses the JSON text of an encoder file; `source` names it in errors.
  static Result<std::unique_ptr<const BpeEncoding>> from_json(std::string_view json_text,
                                                               const std::string& source);
  ~BpeEncoding();
  BpeEncoding(const BpeEncoding&) = delete;
  BpeEncoding& operator=(const BpeEncoding&) = delete;

  // The number of tokens of `text` as ordinary text: a special token's string
  // ("<|endoftext|>") is split and merged like any other text (tiktoken's
  // encode_ordinary). This is how the chat APIs treat what a caller sends.
  // Invalid UTF-8 is counted as if each bad sequence were U+FFFD. A piece
  // of the split longer than 4 KiB (a run of one character class) is counted
  // in 4 KiB chunks: within about a token per chunk of tiktoken's count.
  // Each thread remembers its recent texts with their counts, by their
  // bytes (compared whole, so a count found is always the text's own): an
  // agent re-sends its whole history on every step, and a message counted
  // once costs only a fast hash and a memcmp after that (bench_decide, 8,000
  // tokens: README). Texts of kRememberedTextBytes up to a MiB share 8 MiB a
  // thread; a longer one is remembered by its SHA-256 instead of its bytes.
  std::int64_t count(std::string_view text) const;
  static constexpr std::size_t kRememberedTextBytes = 256;

  // The number of tokens with every special token's string counted as that
  // one token (tiktoken's encode(text, allowed_special = "all")).
  std::int64_t count_with_special(std::string_view text) const;

  // The tokens of `text` as ordinary text (tiktoken's encode_ordinary): for
  // tests and tools; count() does the same work without the vector.
  std::vector<std::uint32_t> encode(std::string_view text) const;

 private:
  struct Regex;      // the compiled split pattern (PCRE2 types stay in bpe.cpp)
  class RankTable;   // byte sequence -> rank, an open-addressing table

  BpeEncoding();
  // Calls on_piece(piece) for every piece the split pattern cuts from valid UTF-8 `text`.
  template <typename OnPiece>
  void split(std::string_view text, OnPiece&& on_piece) const;
  // Tokens of one piece; appends their ranks to `out` when it is not null.
  std::int64_t piece_tokens(std::string_view piece, std::vector<std::uint32_t>* out) const;
  // count() without the cache of long texts.
  std::int64_t count_pieces(std::string_view text) const;
  // The same merges for a long piece in O(n log n) (a heap of the pairs)
  // instead of a scan per merge: a megabyte of one letter is one piece.
  std::int64_t long_piece_tokens(std::string_view piece, std::vector<std::uint32_t>* out) const;

  std::unique_ptr<Regex> regex_;
  std::unique_ptr<RankTable> ranks_;
  std::vector<std::string> special_;  // the special tokens' strings
  std::uint64_t id_ = 0;              // unique in the process: keys count()'s per-thread piece cache
};

}  // namespace switchboard::detail
