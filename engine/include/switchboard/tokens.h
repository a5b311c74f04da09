/// @file
/// Token counts as the providers bill them: OpenAI's byte-pair encodings
/// (o200k_base, cl100k_base) counted exactly as tiktoken counts them, and a
/// whole request's input tokens for a model with each provider's per-message,
/// per-tool and per-image overheads.
///
/// The encodings' rank files are data files (the npm package `tiktoken`,
/// pinned in data/tokenizers/README.md), found at the first count in this
/// order: the directory in the environment variable SWITCHBOARD_TOKENIZERS_DIR;
/// the installed one (`<prefix>/share/switchboard/tokenizers`); the source
/// tree's `data/tokenizers` (a build that is not installed). Each is loaded
/// once per process (about 40 ms for o200k_base) and kept, read-only, for the
/// life of the process: every function here is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "switchboard/config.h"
#include "switchboard/request.h"
#include "switchboard/status.h"

namespace switchboard {

/// The tokenizers a model may name in `[models.X] tokenizer`.
inline constexpr std::string_view kTokenizerO200k = "o200k_base";    ///< GPT-4o, GPT-4.1, GPT-5, o-series
inline constexpr std::string_view kTokenizerCl100k = "cl100k_base";  ///< GPT-4, GPT-3.5

/// True for a tokenizer the engine has (kTokenizerO200k, kTokenizerCl100k).
bool is_known_tokenizer(std::string_view name);

/// The tokenizer a model uses when its config names none: cl100k_base for a
/// model_id that starts with "gpt-4" but not "gpt-4o" or "gpt-4.1", or with
/// "gpt-3.5"; o200k_base for every other model: OpenAI's current models
/// (gpt-4o, gpt-4.1, gpt-5, o1/o3/o4) use it, and for Claude and Gemini, whose
/// tokenizers are not public, it is the stand-in that their calibration
/// factor scales (ModelSpec::token_factor).
std::string default_tokenizer(std::string_view model_id);

/// The tokens of `text` under `tokenizer` as ordinary text, as the chat APIs
/// count what a caller sends: a special token's string ("<|endoftext|>") in
/// a message is text, split like any other (tiktoken's encode_ordinary; the
/// APIs never let message text become a control token). Exact, but for a
/// piece of the split longer than 4 KiB (a run of one character class), which
/// is counted in 4 KiB chunks: within about a token per chunk. Fails with not_found
/// when the rank file cannot be found or read, invalid_argument for an
/// unknown tokenizer.
Result<std::int64_t> count_text_tokens(std::string_view tokenizer, std::string_view text);

/// The same with every special token's string counted as that one token
/// (tiktoken's encode with allowed_special = "all"), for text a caller
/// renders with the control tokens itself.
Result<std::int64_t> count_text_tokens_with_special(std::string_view tokenizer, std::string_view text);

/// The input tokens `request` uses on `model`, an upper bound where a part is
/// not known exactly:
///  - every text piece (text, reasoning, refusal, tool-call name and
///    arguments, tool-result content, opaque items, tool names, descriptions
///    and parameter schemas as JSON text) counted with model.tokenizer;
///  - OpenAI (and OpenAI-compatible, sim): 3 per message plus its role's
///    tokens, 1 more plus the name's tokens for a named message, 3 for the
///    reply's priming (OpenAI cookbook, "How to count tokens with tiktoken");
///    tools: 7 per function plus 12 once (the cookbook's function-calling
///    count; the schema counted as JSON text, which is longer than the
///    TypeScript-like form OpenAI renders it in); each tool call 3;
///  - Anthropic: the same framing per message, and 346 for the tool-use
///    system prompt when tools are given (Anthropic's pricing page, "Tool use
///    pricing");
///  - Gemini: the same framing per message;
///  - images, whose size a request does not carry, at their largest:
///    OpenAI 85 for detail "low", else 1,445 (85 + 170 per 512-px tile, at
///    most 8 tiles after OpenAI's resizing to 2048 then 768 px: "Images and
///    vision", calculating costs); Anthropic 1,600 ((width × height) / 750
///    at the 1.15-megapixel resize limit: "Vision", image costs); Gemini
///    1,120 (media resolution high); a document 3,000 and an audio clip
///    2,000, flat (their length is not known before the call);
///  - for Anthropic, Gemini and OpenAI-compatible models, whose tokenizers
///    are not public, the whole count (o200k_base as the stand-in) times
///    model.token_factor, rounded up: the larger of calibration_floor and the
///    factor `switchboard calibrate` learned from the ledger (calibration.h).
/// This is the "upper-bound input tokens for model M" of budgets and caps.
/// Fails as count_text_tokens does.
Result<std::int64_t> count_request_tokens(const ModelSpec& model, const ModelRequest& request);

/// count_request_tokens before model.token_factor: the tokenizer's own count
/// with the overheads, what the ledger records per call
/// (CostRecord::counted_input_tokens) and calibration divides the bill by.
Result<std::int64_t> count_request_tokens_unscaled(const ModelSpec& model, const ModelRequest& request);

/// count_request_tokens from a count_request_tokens_unscaled already made:
/// `unscaled` times model.token_factor, rounded up (a factor of 1 leaves it
/// as it is). For a caller that needs both, so the request is counted once.
std::int64_t scale_token_count(const ModelSpec& model, std::int64_t unscaled);

}  // namespace switchboard
