// The loaded encodings (encodings.cpp): each found and loaded once per
// process at its first use, then shared read-only by every thread.
#pragma once

#include <string_view>

#include "switchboard/status.h"
#include "tokenize/bpe.h"

namespace switchboard::detail {

// The encoding named `name` (switchboard::kTokenizerO200k or
// kTokenizerCl100k), loaded on the first call; the pointer lives as long as
// the process. Fails with invalid_argument for another name and not_found
// when its rank file is missing or unreadable (the same error every call).
// Thread-safe.
Result<const BpeEncoding*> find_encoding(std::string_view name);

}  // namespace switchboard::detail
