// Where the encodings' rank files are found, and the one loaded copy of each
// (switchboard/tokens.h). The copies are the engine's only process-wide
// state: immutable data, loaded at the first count under std::call_once, so
// the no-mutable-globals rule holds in spirit (nothing changes after load).
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "switchboard/tokens.h"
#include "tokenize/bpe.h"
#include "tokenize/encodings.h"
#include "util/file_text.h"

namespace switchboard {

namespace {

struct Slot {
  std::once_flag once;
  std::unique_ptr<const detail::BpeEncoding> encoding;
  Status status;
};

// The directories searched for NAME.json, in order (tokens.h).
std::vector<std::string> search_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("SWITCHBOARD_TOKENIZERS_DIR"); env != nullptr && *env != '\0') {
    dirs.emplace_back(env);
  }
#ifdef SWITCHBOARD_INSTALLED_TOKENIZERS_DIR
  dirs.emplace_back(SWITCHBOARD_INSTALLED_TOKENIZERS_DIR);
#endif
#ifdef SWITCHBOARD_SOURCE_TOKENIZERS_DIR
  dirs.emplace_back(SWITCHBOARD_SOURCE_TOKENIZERS_DIR);
#endif
  return dirs;
}

void load(Slot& slot, std::string_view name) {
  std::string tried;
  for (const std::string& dir : search_dirs()) {
    const std::string path = (std::filesystem::path(dir) / (std::string(name) + ".json")).string();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    Result<std::string> text = detail::read_text_file(path, "cannot read tokenizer file " + path);
    if (!text.ok()) {
      slot.status = Status::not_found(text.status().message());
      return;
    }
    Result<std::unique_ptr<const detail::BpeEncoding>> enc = detail::BpeEncoding::from_json(*text, path);
    if (!enc.ok()) {
      slot.status = Status::not_found(enc.status().message());
      return;
    }
    slot.encoding = std::move(*enc);
    return;
  }
  slot.status = Status::not_found("tokenizer " + std::string(name) + ": no " + std::string(name) +
                                  ".json in " + (tried.empty() ? "any directory" : tried) +
                                  " (set SWITCHBOARD_TOKENIZERS_DIR to the folder data/tokenizers)");
}

}  // namespace

namespace detail {

Result<const BpeEncoding*> find_encoding(std::string_view name) {
  static Slot o200k;
  static Slot cl100k;
  Slot* slot = name == kTokenizerO200k ? &o200k : name == kTokenizerCl100k ? &cl100k : nullptr;
  if (slot == nullptr) return Status::invalid_argument("unknown tokenizer '" + std::string(name) + "'");
  std::call_once(slot->once, [&] { load(*slot, name); });
  if (!slot->encoding) return slot->status;
  return slot->encoding.get();
}

}  // namespace detail

bool is_known_tokenizer(std::string_view name) { return name == kTokenizerO200k || name == kTokenizerCl100k; }

std::string default_tokenizer(std::string_view model_id) {
  const bool gpt4_family = model_id.starts_with("gpt-4") && !model_id.starts_with("gpt-4o") &&
                           !model_id.starts_with("gpt-4.1") && !model_id.starts_with("gpt-4.5");
  if (gpt4_family || model_id.starts_with("gpt-3.5") || model_id.starts_with("gpt-35") ||
      model_id.starts_with("text-embedding-")) {
    return std::string(kTokenizerCl100k);
  }
  return std::string(kTokenizerO200k);
}

Result<std::int64_t> count_text_tokens(std::string_view tokenizer, std::string_view text) {
  Result<const detail::BpeEncoding*> enc = detail::find_encoding(tokenizer);
  if (!enc.ok()) return enc.status();
  return (*enc)->count(text);
}

Result<std::int64_t> count_text_tokens_with_special(std::string_view tokenizer, std::string_view text) {
  Result<const detail::BpeEncoding*> enc = detail::find_encoding(tokenizer);
  if (!enc.ok()) return enc.status();
  return (*enc)->count_with_special(text);
}

}  // namespace switchboard
