// Provider usage figures into Usage, from a tree or a DOM (json/node.h);
// nlohmann's exceptions stop here.
#include "switchboard/usage.h"

#include "cost/usage_json.h"
#include "json/node.h"

#include <array>
#include <cassert>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace switchboard {

namespace {

using json_node::int_of;
using json_node::is_integer;
using json_node::is_null;
using json_node::is_object;
using json_node::is_unsigned;
using json_node::member;
using json_node::uint_of;
using nlohmann::json;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Where a figure sits in the body ("response.usage.prompt_tokens_details."),
// kept as pieces and joined only for an error message: reading a body that
// is fine allocates no names.
class Path {
 public:
  Path() = default;
  // This path with `piece` after it (pieces carry their own dots).
  Path operator+(std::string_view piece) const {
    Path p = *this;
    assert(p.n_ < p.pieces_.size());  // the readers below nest at most six pieces deep
    p.pieces_[p.n_++] = piece;
    return p;
  }
  // "'PATH" + key + "'".
  std::string quote(std::string_view key) const {
    std::string out = "'";
    for (std::size_t i = 0; i < n_; ++i) out += pieces_[i];
    out += key;
    out += '\'';
    return out;
  }

 private:
  std::array<std::string_view, 6> pieces_{};
  std::size_t n_ = 0;
};

// The object at `key`, or none when absent or null; anything else is an error.
template <typename Node>
auto object_at(const Node& parent, const char* key, const Path& path) {
  auto it = member(parent, key);
  if (!it || is_null(*it)) return decltype(it){};
  if (!is_object(*it)) throw UsageError(path.quote(key) + " must be an object");
  return it;
}

// A token count at `key`: absent or null is nullopt; a fraction, a string, a
// negative or an out-of-range number is an error.
template <typename Node>
std::optional<std::int64_t> count_at(const Node& parent, const char* key, const Path& path) {
  auto it = member(parent, key);
  if (!it || is_null(*it)) return std::nullopt;
  if (!is_integer(*it)) throw UsageError(path.quote(key) + " must be a whole number of tokens");
  if (is_unsigned(*it)) {
    const std::uint64_t v = uint_of(*it);
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw UsageError(path.quote(key) + " is out of range");
    }
    return static_cast<std::int64_t>(v);
  }
  const std::int64_t v = int_of(*it);
  if (v < 0) throw UsageError(path.quote(key) + " must not be negative (got " + std::to_string(v) + ")");
  return v;
}

template <typename Node>
std::int64_t required_count(const Node& parent, const char* key, const Path& path) {
  std::optional<std::int64_t> v = count_at(parent, key, path);
  if (!v) throw UsageError(path.quote(key) + " is missing");
  return *v;
}

// `part` (at part_path + part_key) is contained in `whole`: a provider
// reporting more cached than prompt tokens is wrong, and billing it would go
// negative.
void check_within(std::int64_t part, const Path& part_path, const char* part_key, std::int64_t whole,
                  const Path& whole_path, const char* whole_key) {
  if (part > whole) {
    throw UsageError(part_path.quote(part_key) + " (" + std::to_string(part) + ") exceeds " +
                     whole_path.quote(whole_key) + " (" + std::to_string(whole) + ")");
  }
}

// A body's `usage`, or that of the object under `wrapper` (a streamed event
// carrying the whole message or response), and its path.
template <typename Node>
auto find_usage(const Node& body, const char* key, const char* wrapper) {
  using Found = std::pair<decltype(member(body, key)), Path>;
  if (auto u = object_at(body, key, Path())) return Found{u, Path() + key + "."};
  if (auto w = object_at(body, wrapper, Path())) {
    const Path in_wrapper = Path() + wrapper + ".";
    if (auto u = object_at(*w, key, in_wrapper)) return Found{u, in_wrapper + key + "."};
  }
  return Found{};
}

template <typename Node>
Usage openai(const Node& body) {
  auto [u, p] = find_usage(body, "usage", "response");
  if (!u) {
    throw UsageError(
        "no 'usage' object (a streamed chat completion carries it only with stream_options.include_usage)");
  }
  Usage usage;
  // Chat completions name the buckets prompt/completion, the Responses API
  // input/output; both nest cached and reasoning counts the same way.
  const bool chat = member(*u, "prompt_tokens") || !member(*u, "input_tokens");
  const char* in_key = chat ? "prompt_tokens" : "input_tokens";
  const char* out_key = chat ? "completion_tokens" : "output_tokens";
  const char* in_details_key = chat ? "prompt_tokens_details" : "input_tokens_details";
  const char* out_details_key = chat ? "completion_tokens_details" : "output_tokens_details";
  const Path in_details = p + in_details_key + ".";
  const Path out_details = p + out_details_key + ".";

  const std::int64_t prompt = required_count(*u, in_key, p);
  const std::int64_t completion = required_count(*u, out_key, p);
  std::int64_t cached = 0;
  if (auto d = object_at(*u, in_details_key, p)) {
    cached = count_at(*d, "cached_tokens", in_details).value_or(0);
  }
  std::int64_t reasoning = 0;
  if (auto d = object_at(*u, out_details_key, p)) {
    reasoning = count_at(*d, "reasoning_tokens", out_details).value_or(0);
  }
  check_within(cached, in_details, "cached_tokens", prompt, p, in_key);
  check_within(reasoning, out_details, "reasoning_tokens", completion, p, out_key);
  usage.input_tokens = prompt - cached;
  usage.cached_input_tokens = cached;
  usage.output_tokens = completion - reasoning;
  usage.reasoning_tokens = reasoning;
  return usage;
}

template <typename Node>
Usage anthropic(const Node& body) {
  // A message body and message_delta carry `usage`; message_start carries it
  // under `message`.
  auto [u, p] = find_usage(body, "usage", "message");
  if (!u) throw UsageError("no 'usage' object");
  Usage usage;
  // message_delta may carry output_tokens alone.
  usage.output_tokens = required_count(*u, "output_tokens", p);
  usage.input_tokens = count_at(*u, "input_tokens", p).value_or(0);
  usage.cached_input_tokens = count_at(*u, "cache_read_input_tokens", p).value_or(0);
  const std::optional<std::int64_t> created = count_at(*u, "cache_creation_input_tokens", p);
  if (auto split = object_at(*u, "cache_creation", p)) {
    const Path sp = p + "cache_creation.";
    usage.cache_write_5m_tokens = count_at(*split, "ephemeral_5m_input_tokens", sp).value_or(0);
    usage.cache_write_1h_tokens = count_at(*split, "ephemeral_1h_input_tokens", sp).value_or(0);
    const std::int64_t sum = usage.cache_write_5m_tokens + usage.cache_write_1h_tokens;
    if (created && *created != sum) {
      throw UsageError(p.quote("cache_creation_input_tokens") + " (" + std::to_string(*created) +
                       ") is not the sum of the 5-minute and 1-hour writes in " + p.quote("cache_creation") + " (" +
                       std::to_string(sum) + ")");
    }
  } else {
    // Without the split every write is a 5-minute one (the API's default TTL).
    usage.cache_write_5m_tokens = created.value_or(0);
  }
  return usage;
}

template <typename Node>
Usage gemini(const Node& body) {
  auto u = object_at(body, "usageMetadata", Path());
  if (!u) throw UsageError("no 'usageMetadata' object");
  const Path p = Path() + "usageMetadata.";
  const std::int64_t prompt = required_count(*u, "promptTokenCount", p);
  const std::int64_t cached = count_at(*u, "cachedContentTokenCount", p).value_or(0);
  check_within(cached, p, "cachedContentTokenCount", prompt, p, "promptTokenCount");
  Usage usage;
  // Tool-use prompt tokens (results of built-in tools fed back to the model)
  // are billed as input beside the prompt.
  usage.input_tokens = prompt - cached + count_at(*u, "toolUsePromptTokenCount", p).value_or(0);
  usage.cached_input_tokens = cached;
  // Absent when the model stopped before writing a candidate.
  usage.output_tokens = count_at(*u, "candidatesTokenCount", p).value_or(0);
  usage.reasoning_tokens = count_at(*u, "thoughtsTokenCount", p).value_or(0);
  return usage;
}

const char* name_of(UsageFormat format) {
  switch (format) {
    case UsageFormat::kOpenAI: return "OpenAI";
    case UsageFormat::kAnthropic: return "Anthropic";
    case UsageFormat::kGemini: return "Gemini";
  }
  return "provider";
}

template <typename Node>
Result<Usage> read_usage(UsageFormat format, const Node& body) {
  const auto what = [format] { return std::string(name_of(format)) + " response: "; };  // built for an error only
  try {
    if (!is_object(body)) return Status::invalid_argument(what() + "not a JSON object");
    switch (format) {
      case UsageFormat::kOpenAI: return openai(body);
      case UsageFormat::kAnthropic: return anthropic(body);
      case UsageFormat::kGemini: return gemini(body);
    }
    return Status::internal(what() + "unknown usage format");
  } catch (const json::exception& e) {
    return Status::invalid_argument(what() + e.what());
  } catch (const UsageError& e) {
    return Status::invalid_argument(what() + e.what());
  }
}

}  // namespace

Result<Usage> usage_from_json(UsageFormat format, const json& body) { return read_usage(format, body); }

Result<Usage> usage_from_json(UsageFormat format, simdjson::dom::element body) { return read_usage(format, body); }

Result<Usage> parse_usage(UsageFormat format, std::string_view response_json) {
  json body;
  try {
    body = json::parse(response_json);
  } catch (const json::exception& e) {
    return Status::invalid_argument(std::string(name_of(format)) + " response: not valid JSON: " + e.what());
  }
  return usage_from_json(format, body);
}

}  // namespace switchboard
