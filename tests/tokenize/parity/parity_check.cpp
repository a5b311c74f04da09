// tokenizer_parity: compares the engine's counts with tiktoken's (run.sh).
//
//   tokenizer_parity REFERENCE.jsonl
//
// Each line is {"text", "o200k_base", "cl100k_base", "o200k_base_special",
// "cl100k_base_special"} (corpus.mjs). Exits 0 when every count is equal,
// else 1 after naming the first text that differs (as JSON) and both counts.
#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "switchboard/tokens.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: tokenizer_parity REFERENCE.jsonl\n";
    return 2;
  }
  std::ifstream in(argv[1]);
  if (!in) {
    std::cerr << "tokenizer_parity: cannot read " << argv[1] << "\n";
    return 2;
  }
  std::string line;
  long texts = 0;
  long tokens = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const nlohmann::json row = nlohmann::json::parse(line);
    const std::string text = row.at("text").get<std::string>();
    for (const std::string_view tokenizer : {switchboard::kTokenizerO200k, switchboard::kTokenizerCl100k}) {
      for (const bool special : {false, true}) {
        const std::string key = std::string(tokenizer) + (special ? "_special" : "");
        const auto counted = special ? switchboard::count_text_tokens_with_special(tokenizer, text)
                                     : switchboard::count_text_tokens(tokenizer, text);
        if (!counted.ok()) {
          std::cerr << "tokenizer_parity: " << counted.status().message() << "\n";
          return 1;
        }
        const long expected = row.at(key).get<long>();
        if (*counted != expected) {
          std::cerr << "tokenizer_parity: text " << texts + 1 << " differs under " << key << ": tiktoken "
                    << expected << ", switchboard " << *counted << "\ntext: " << nlohmann::json(text).dump()
                    << "\n";
          return 1;
        }
        if (!special && tokenizer == switchboard::kTokenizerO200k) tokens += expected;
      }
    }
    ++texts;
  }
  if (texts < 2000) {
    std::cerr << "tokenizer_parity: only " << texts << " texts (the corpus has at least 2,000)\n";
    return 1;
  }
  std::cout << "tokenizer_parity: " << texts << " texts (" << tokens
            << " o200k_base tokens): every count equals tiktoken's, both encodings, ordinary and special\n";
  return 0;
}
