// FakeProvider (fake_provider.h). Boost.Beast parses the requests; each
// connection is one Asio C++20 coroutine on its own strand, so a delay is a
// timer and never holds a thread. Answers are rendered from the wire
// templates and written as raw HTTP/1.1 (one write per answer, streams chunked
// one event per chunk) so that a fault can stop anywhere in the bytes.
// Before any fault is taken, check_request refuses what the real APIs refuse.
// Boost and nlohmann exceptions stop in this file.
#include "fake_provider.h"
#include "answer_scripts.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_set>
#include <vector>

// Asio 1.18 looks for C++20 coroutines on clang only beside libc++;
// libstdc++'s <coroutine> serves as well.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#ifndef SWITCHBOARD_WIRE_FIXTURES_DIR
#error "SWITCHBOARD_WIRE_FIXTURES_DIR must name tests/fakes/wire"
#endif

namespace switchboard::testing {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using nlohmann::json;
using boost::system::error_code;

constexpr std::size_t kMaxRequestBody = 32u << 20;
constexpr std::size_t kOversizePiece = 64u << 10;
constexpr std::int64_t kReasoningTokens = 64;
constexpr std::string_view kToolArguments = R"({"query":"switchboard"})";
constexpr std::string_view kFillerMark = "@@FAKE_PROVIDER_FILLER@@";

// ---------------------------------------------------------------------------
// Templates

// The placeholders a template may use (tests/fakes/wire/README.md).
enum Var : std::size_t {
  kSeq, kModel, kText, kText0, kText1, kText2, kThinking, kThinking0, kThinking1, kThinking2,
  kToolName, kArguments, kArguments0, kArguments1, kArguments2, kInput, kContent, kParts,
  kStopReason, kIndex, kPing, kUsageNull, kUsageEvent, kPromptTokens, kCachedTokens,
  kCacheWriteTokens, kUncachedInputTokens, kAnswerTokens, kReasoningTokensVar, kOutputTokens,
  kTotalTokens, kErrorMessage, kErrorType, kErrorCode, kErrorStatus, kStatusCode, kVarCount
};
constexpr std::array<std::string_view, kVarCount> kVarNames = {
    "seq", "model", "text", "text_0", "text_1", "text_2", "thinking", "thinking_0", "thinking_1",
    "thinking_2", "tool_name", "arguments", "arguments_0", "arguments_1", "arguments_2", "input",
    "content", "parts", "stop_reason", "index", "ping", "usage_null", "usage_event", "prompt_tokens",
    "cached_tokens", "cache_write_tokens", "uncached_input_tokens", "answer_tokens", "reasoning_tokens",
    "output_tokens", "total_tokens", "error_message", "error_type", "error_code", "error_status",
    "status_code"};
using Vars = std::array<std::string, kVarCount>;

// A fixture compiled into literal pieces and placeholders.
class Template {
 public:
  Template() = default;
  // Throws std::runtime_error "file:line:column: ..." on an unknown or unclosed placeholder.
  static Template parse(std::string_view text, const std::string& file) {
    Template t;
    std::size_t pos = 0;
    std::string literal;
    while (pos < text.size()) {
      const std::size_t open = text.find("{{", pos);
      if (open == std::string_view::npos) {
        literal.append(text.substr(pos));
        break;
      }
      literal.append(text.substr(pos, open - pos));
      const std::size_t close = text.find("}}", open + 2);
      const std::string_view name =
          close == std::string_view::npos ? std::string_view{} : text.substr(open + 2, close - open - 2);
      const auto known = std::find(kVarNames.begin(), kVarNames.end(), name);
      if (known == kVarNames.end()) {
        const std::string_view before = text.substr(0, open);
        const std::size_t line = 1 + static_cast<std::size_t>(std::count(before.begin(), before.end(), '\n'));
        const std::size_t line_start = before.rfind('\n');
        const std::size_t column = open - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1;
        const std::string what = close == std::string_view::npos
                                     ? "unclosed placeholder"
                                     : "unknown placeholder {{" + std::string(name) + "}}";
        throw std::runtime_error(file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + what);
      }
      t.literal_size_ += literal.size();
      t.pieces_.push_back({std::move(literal), static_cast<std::size_t>(known - kVarNames.begin())});
      literal.clear();
      pos = close + 2;
    }
    t.literal_size_ += literal.size();
    t.pieces_.push_back({std::move(literal), kVarCount});
    return t;
  }

  std::string render(const Vars& vars) const {
    std::string out;
    out.reserve(literal_size_ + 256);
    for (const Piece& p : pieces_) {
      out += p.literal;
      if (p.var != kVarCount) out += vars[p.var];
    }
    return out;
  }

 private:
  struct Piece {
    std::string literal;  // before the placeholder
    std::size_t var;      // kVarCount: none (the last piece)
  };
  std::vector<Piece> pieces_;
  std::size_t literal_size_ = 0;
};

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path.string() + ": cannot read the fixture");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string_view trim_end(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Every fixture, loaded once at start; immutable afterwards.
struct Fixtures {
  Template openai_text, openai_tool_calls, openai_text_sse, openai_tool_calls_sse, openai_usage_sse,
      openai_error;
  Template anthropic_message, anthropic_block_text, anthropic_block_thinking, anthropic_block_tool_use,
      anthropic_start_sse, anthropic_ping_sse, anthropic_text_sse, anthropic_thinking_sse,
      anthropic_tool_use_sse, anthropic_end_sse, anthropic_error;
  Template gemini_generate, gemini_part_text, gemini_part_function_call, gemini_text_sse,
      gemini_function_call_sse, gemini_error;
  std::string proxy_error_html;
  // The signature the Anthropic thinking fixtures hold; each answer puts its
  // own (a digest of its thinking text) in its place.
  std::string anthropic_signature;

  static Fixtures load(const std::filesystem::path& dir) {
    // JSON loses its trailing newline; an event sequence ends with exactly
    // one blank line; Gemini's SSE lines end in CRLF.
    auto json_file = [&](const char* name) {
      const auto path = dir / name;
      return Template::parse(trim_end(read_file(path)), path.string());
    };
    auto sse_file = [&](const char* name, bool crlf = false) {
      const auto path = dir / name;
      std::string text(trim_end(read_file(path)));
      text += "\n\n";
      if (crlf) {
        std::string with_cr;
        for (char ch : text) {
          if (ch == '\n') with_cr += '\r';
          with_cr += ch;
        }
        text = std::move(with_cr);
      }
      return Template::parse(text, path.string());
    };
    Fixtures f;
    f.openai_text = json_file("openai_chat_text.json");
    f.openai_tool_calls = json_file("openai_chat_tool_calls.json");
    f.openai_text_sse = sse_file("openai_chat_text.sse");
    f.openai_tool_calls_sse = sse_file("openai_chat_tool_calls.sse");
    f.openai_usage_sse = sse_file("openai_chat_usage.sse");
    f.openai_error = json_file("openai_error.json");
    f.anthropic_message = json_file("anthropic_message.json");
    f.anthropic_block_text = json_file("anthropic_block_text.json");
    f.anthropic_block_thinking = json_file("anthropic_block_thinking.json");
    f.anthropic_block_tool_use = json_file("anthropic_block_tool_use.json");
    const json thinking_block = json::parse(f.anthropic_block_thinking.render(Vars{}), nullptr, false);
    if (thinking_block.is_object()) f.anthropic_signature = thinking_block.value("signature", "");
    if (f.anthropic_signature.empty()) {
      throw std::runtime_error((dir / "anthropic_block_thinking.json").string() + ": no signature to replace");
    }
    f.anthropic_start_sse = sse_file("anthropic_stream_message_start.sse");
    f.anthropic_ping_sse = sse_file("anthropic_stream_ping.sse");
    f.anthropic_text_sse = sse_file("anthropic_stream_text.sse");
    f.anthropic_thinking_sse = sse_file("anthropic_stream_thinking.sse");
    f.anthropic_tool_use_sse = sse_file("anthropic_stream_tool_use.sse");
    f.anthropic_end_sse = sse_file("anthropic_stream_message_end.sse");
    f.anthropic_error = json_file("anthropic_error.json");
    f.gemini_generate = json_file("gemini_generate.json");
    f.gemini_part_text = json_file("gemini_part_text.json");
    f.gemini_part_function_call = json_file("gemini_part_function_call.json");
    f.gemini_text_sse = sse_file("gemini_stream_text.sse", true);
    f.gemini_function_call_sse = sse_file("gemini_stream_function_call.sse", true);
    f.gemini_error = json_file("gemini_error.json");
    f.proxy_error_html = read_file(dir / "proxy_error.html");
    return f;
  }
};

// The content of a JSON string (no quotes) holding `s`.
std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (unsigned char ch : s) {
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (ch < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[ch >> 4];
          out += kHex[ch & 0xf];
        } else {
          out += static_cast<char>(ch);
        }
    }
  }
  return out;
}

// `s` in three pieces of about equal size, never cut inside a UTF-8 sequence.
std::array<std::string_view, 3> split3(std::string_view s) {
  auto boundary = [&](std::size_t at) {
    while (at < s.size() && (static_cast<unsigned char>(s[at]) & 0xC0) == 0x80) ++at;
    return at;
  };
  const std::size_t a = boundary(s.size() / 3);
  const std::size_t b = std::max(a, boundary(2 * s.size() / 3));
  return {s.substr(0, a), s.substr(a, b - a), s.substr(b)};
}

// An OpenAI text stream's events (the role, three content events, the
// finish, maybe the usage, [DONE]) with `n` content events: the three over and over.
void repeat_content_events(std::vector<std::string>& events, int n) {
  if (events.size() < 5) return;
  std::vector<std::string> out;
  out.reserve(events.size() + static_cast<std::size_t>(n));
  out.push_back(events[0]);
  for (int i = 0; i < n; ++i) out.push_back(events[1 + static_cast<std::size_t>(i % 3)]);
  out.insert(out.end(), events.begin() + 4, events.end());
  events = std::move(out);
}

// Splits a rendered event sequence after each blank line; every piece keeps its terminator.
std::vector<std::string> split_events(const std::string& sse, std::string_view separator) {
  std::vector<std::string> events;
  std::size_t pos = 0;
  while (pos < sse.size()) {
    const std::size_t end = sse.find(separator, pos);
    const std::size_t stop = end == std::string::npos ? sse.size() : end + separator.size();
    events.push_back(sse.substr(pos, stop - pos));
    pos = stop;
  }
  return events;
}

// ---------------------------------------------------------------------------
// Requests and answers

const json* member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

std::string_view string_at(const json& j, const char* key) {
  const json* m = member(j, key);
  return m != nullptr && m->is_string() ? std::string_view(m->get_ref<const std::string&>()) : std::string_view{};
}

const json* member(const json& j, const std::string& key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

// Gemini takes a field by its lowerCamel or its snake_case name.
const json* member_either(const json& j, const char* camel, const char* snake) {
  const json* m = member(j, camel);
  return m != nullptr ? m : member(j, snake);
}

// `*j` when it is an array, else an empty one (for range-for over optional arrays).
const json& array_or_empty(const json* j) {
  static const json kEmpty = json::array();
  return j != nullptr && j->is_array() ? *j : kEmpty;
}

bool true_at(const json& j, const char* key) {
  const json* m = member(j, key);
  return m != nullptr && m->is_boolean() && m->get<bool>();
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// ---------------------------------------------------------------------------
// Signatures. The fake signs the reasoning it hands out and checks what comes
// back, as the providers do: an Anthropic thinking signature is bound to the
// block's text; a redacted_thinking `data` and a Gemini thoughtSignature are
// sealed tokens (they carry their own check, whatever part they ride on).

// 16 bytes that change with every byte of `domain` and `payload` (two FNV-1a
// passes; a fake's seal, not cryptography).
std::string digest16(std::string_view domain, std::string_view payload) {
  std::string out;
  for (std::uint64_t h : {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull}) {
    for (std::string_view part : {domain, std::string_view("\0", 1), payload}) {
      for (unsigned char ch : part) {
        h ^= ch;
        h *= 1099511628211ull;
      }
    }
    for (int i = 7; i >= 0; --i) out += static_cast<char>((h >> (8 * i)) & 0xff);
  }
  return out;
}

constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string base64(std::string_view bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      v = (v << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    }
    for (std::size_t k = 0; k < 4; ++k) out += k <= n ? kBase64[(v >> (18 - 6 * k)) & 0x3f] : '=';
  }
  return out;
}

std::optional<std::string> unbase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t v = 0;
    int pad = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const char ch = text[i + k];
      std::size_t d = 0;
      if (ch == '=' && i + 4 == text.size() && k >= 2) {
        ++pad;
      } else if (pad > 0 || (d = kBase64.find(ch)) == std::string_view::npos) {
        return std::nullopt;
      }
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    for (int k = 0; k < 3 - pad; ++k) out += static_cast<char>((v >> (16 - 8 * k)) & 0xff);
  }
  return out;
}

// Anthropic's thinking block signature: a digest of the block's text.
std::string thinking_signature(std::string_view thinking) {
  return base64(std::string("sbfake-t") + digest16("thinking", thinking));
}

// A sealed token: `domain` (8 bytes), the payload, a digest of both; base64.
std::string seal(std::string_view domain, std::string_view payload) {
  std::string raw(domain);
  raw += payload;
  raw += digest16(domain, payload);
  return base64(raw);
}

bool sealed_by(std::string_view domain, std::string_view token) {
  const std::optional<std::string> raw = unbase64(token);
  if (!raw || raw->size() < domain.size() + 16 || raw->compare(0, domain.size(), domain) != 0) return false;
  const std::string_view payload = std::string_view(*raw).substr(domain.size(), raw->size() - domain.size() - 16);
  return raw->compare(raw->size() - 16, 16, digest16(domain, payload)) == 0;
}

constexpr std::string_view kRedactedDomain = "redacted";
constexpr std::string_view kGeminiDomain = "geminisg";
// Anthropic's documented test prompt: a thinking answer comes back as redacted_thinking.
constexpr std::string_view kRedactedTrigger =
    "ANTHROPIC_MAGIC_STRING_TRIGGER_REDACTED_THINKING_46C9A13E193C177646C7398A98432ECCCE4C1253D5E2D82641AC0E52CC2876CB";

// ---------------------------------------------------------------------------
// JSON Schemas

// A value `schema` accepts, as plain as can be: const, the first enum value,
// the first anyOf/oneOf/allOf branch, an object of its required properties,
// an array of minItems items, "switchboard", the minimum (else 0), false,
// null. $ref is followed within `root`. Gemini's upper-case types count.
json instance_of(const json& schema, const json& root, int depth = 0) {
  if (depth > 32 || !schema.is_object()) return nullptr;
  if (const std::string_view ref = string_at(schema, "$ref"); !ref.empty()) {
    if (ref.front() == '#') {
      try {
        const json::json_pointer pointer{std::string(ref.substr(1))};
        if (root.contains(pointer)) return instance_of(root.at(pointer), root, depth + 1);
      } catch (const json::exception&) {
      }
    }
    return nullptr;
  }
  if (const json* c = member(schema, "const")) return *c;
  if (const json* e = member(schema, "enum"); e != nullptr && e->is_array() && !e->empty()) return (*e)[0];
  for (const char* key : {"anyOf", "any_of", "oneOf", "allOf"}) {
    const json* branches = member(schema, key);
    if (branches != nullptr && branches->is_array() && !branches->empty()) {
      return instance_of((*branches)[0], root, depth + 1);
    }
  }
  std::string type;
  if (const json* t = member(schema, "type"); t != nullptr && t->is_string()) {
    type = lower(t->get_ref<const std::string&>());
  } else if (t != nullptr && t->is_array()) {
    for (const json& each : *t) {
      if (each.is_string() && (type.empty() || type == "null")) type = lower(each.get_ref<const std::string&>());
    }
  }
  if (type.empty()) type = member(schema, "properties") != nullptr ? "object" : member(schema, "items") ? "array" : "";
  auto number_at = [&](const char* camel, const char* snake) -> double {
    const json* m = member_either(schema, camel, snake);
    if (m != nullptr && m->is_number()) return m->get<double>();
    if (m != nullptr && m->is_string()) return std::atof(m->get_ref<const std::string&>().c_str());  // int64 as text
    return 0;
  };
  if (type == "object") {
    json out = json::object();
    const json* properties = member(schema, "properties");
    if (const json* required = member(schema, "required"); required != nullptr && required->is_array()) {
      for (const json& name : *required) {
        if (!name.is_string()) continue;
        const std::string& key = name.get_ref<const std::string&>();
        const json* property = properties != nullptr ? member(*properties, key) : nullptr;
        out[key] = property != nullptr ? instance_of(*property, root, depth + 1) : json(nullptr);
      }
    }
    return out;
  }
  if (type == "array") {
    json out = json::array();
    const json* items = member(schema, "items");
    const double n = std::min(16.0, number_at("minItems", "min_items"));
    for (int i = 0; i < static_cast<int>(n); ++i) out.push_back(items != nullptr ? instance_of(*items, root, depth + 1) : json(nullptr));
    return out;
  }
  const double minimum = std::max(0.0, number_at("minimum", "minimum"));
  if (type == "string") return "switchboard";
  if (type == "integer") return static_cast<std::int64_t>(std::ceil(minimum));
  if (type == "number") return minimum == 0 ? json(0) : json(minimum);
  if (type == "boolean") return false;
  return nullptr;
}

// Python's repr of a tuple of names, as OpenAI's schema errors print the context.
std::string python_tuple(const std::vector<std::string>& items) {
  std::string out = "(";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i == 0 ? "" : ", ") + items[i];
  return out + (items.size() == 1 ? ",)" : ")");
}

// The first way `schema` breaks OpenAI's strict-mode rules (every object sets
// additionalProperties false and lists each of its properties in required),
// worded as the API words it; "" when it keeps them.
std::string strict_violation(const json& schema, std::vector<std::string>& context) {
  if (!schema.is_object()) return "";
  const json* properties = member(schema, "properties");
  bool object = properties != nullptr;
  if (const json* t = member(schema, "type"); t != nullptr) {
    object = object || (t->is_string() && *t == "object") ||
             (t->is_array() && std::find(t->begin(), t->end(), json("object")) != t->end());
  }
  if (object) {
    const json* extra = member(schema, "additionalProperties");
    if (extra == nullptr || !extra->is_boolean() || extra->get<bool>()) {
      return "In context=" + python_tuple(context) + ", 'additionalProperties' is required to be supplied and to be false.";
    }
    if (properties != nullptr && properties->is_object()) {
      const json* required = member(schema, "required");
      for (const auto& [key, value] : properties->items()) {
        const bool listed = required != nullptr && required->is_array() &&
                            std::find(required->begin(), required->end(), json(key)) != required->end();
        if (!listed) {
          return "In context=" + python_tuple(context) +
                 ", 'required' is required to be supplied and to be an array including every key in properties. "
                 "Missing '" + key + "'.";
        }
      }
    }
  }
  auto nested = [&](const json& sub, std::initializer_list<std::string> path) {
    for (const std::string& p : path) context.push_back(p);
    std::string found = strict_violation(sub, context);
    context.resize(context.size() - path.size());
    return found;
  };
  for (const char* map : {"properties", "$defs", "definitions"}) {
    if (const json* m = member(schema, map); m != nullptr && m->is_object()) {
      for (const auto& [key, value] : m->items()) {
        if (std::string found = nested(value, {"'" + std::string(map) + "'", "'" + key + "'"}); !found.empty()) return found;
      }
    }
  }
  if (const json* items = member(schema, "items")) {
    if (std::string found = nested(*items, {"'items'"}); !found.empty()) return found;
  }
  if (const json* any = member(schema, "anyOf"); any != nullptr && any->is_array()) {
    for (std::size_t i = 0; i < any->size(); ++i) {
      if (std::string found = nested((*any)[i], {"'anyOf'", std::to_string(i)}); !found.empty()) return found;
    }
  }
  return "";
}

// The fields of Gemini's Schema (an OpenAPI 3.0 subset), by either name.
bool gemini_schema_field(std::string_view key) {
  static constexpr std::array<std::string_view, 30> kFields = {
      "type", "format", "title", "description", "nullable", "enum", "maxItems", "max_items", "minItems",
      "min_items", "properties", "required", "minProperties", "min_properties", "maxProperties",
      "max_properties", "minLength", "min_length", "maxLength", "max_length", "pattern", "example", "anyOf",
      "any_of", "propertyOrdering", "property_ordering", "default", "items", "minimum", "maximum"};
  return std::find(kFields.begin(), kFields.end(), key) != kFields.end();
}

// Gemini's "Unknown name" error for each field of `schema` (at `path`, the
// way the API names it) that its Schema does not have.
void unknown_schema_fields(const json& schema, const std::string& path, std::vector<std::string>& out) {
  if (!schema.is_object()) return;
  for (const auto& [key, value] : schema.items()) {
    if (!gemini_schema_field(key)) {
      out.push_back("Invalid JSON payload received. Unknown name \"" + key + "\" at '" + path + "': Cannot find field.");
    }
  }
  if (const json* properties = member(schema, "properties"); properties != nullptr && properties->is_object()) {
    std::size_t i = 0;
    for (const auto& [key, value] : properties->items()) {
      unknown_schema_fields(value, path + ".properties[" + std::to_string(i++) + "].value", out);
    }
  }
  if (const json* items = member(schema, "items")) unknown_schema_fields(*items, path + ".items", out);
  if (const json* any = member_either(schema, "anyOf", "any_of"); any != nullptr && any->is_array()) {
    for (std::size_t i = 0; i < any->size(); ++i) unknown_schema_fields((*any)[i], path + ".any_of[" + std::to_string(i) + "]", out);
  }
}

// ---------------------------------------------------------------------------
// What the request asks for, as far as the fake cares.

// The images, documents and audio clips a request carries.
struct Media {
  int images = 0, documents = 0, audio = 0;
};

struct FunctionTool {
  std::string name;
  const json* parameters = nullptr;  // its JSON Schema; null when it has none
};

struct Facts {
  UsageFormat format = UsageFormat::kOpenAI;
  std::string model;
  bool stream = false;
  bool include_usage = false;     // OpenAI stream_options.include_usage
  bool reasoning = false;
  bool thinking_enabled = false;  // Anthropic thinking.type "enabled" (budgeted, not adaptive)
  bool include_thoughts = false;  // Gemini thinkingConfig.includeThoughts
  bool redact = false;            // Anthropic: the redacted-thinking trigger is in the prompt
  std::string tool_name;          // "" answers with text
  bool forced = false;            // tool_choice forced the call: its arguments follow tool_schema
  json tool_schema;               // the called tool's parameters (forced calls)
  std::optional<json> output_schema;  // answer with an instance of it
  Media media;
};

// The call `tools` and the tool choice make: `mode` is "auto", "none",
// "required" or "named" (`named` then names the tool). An unforced call
// happens only while the last message is not a tool's result.
void choose_tool(Facts& f, const std::vector<FunctionTool>& tools, std::string_view mode, std::string_view named,
                 bool answered) {
  if (tools.empty() || mode == "none") return;
  const FunctionTool* chosen = &tools.front();
  if (mode == "named") {
    chosen = nullptr;
    for (const FunctionTool& t : tools) {
      if (t.name == named) chosen = &t;
    }
    f.tool_name = std::string(named);
  } else if (mode == "auto" && answered) {
    return;
  } else {
    f.tool_name = chosen->name;
  }
  f.forced = mode != "auto";
  if (chosen != nullptr && chosen->parameters != nullptr) f.tool_schema = *chosen->parameters;
}

void count_media_type(std::string_view media_type, Media& m) {
  if (starts_with(media_type, "image/")) {
    ++m.images;
  } else if (starts_with(media_type, "audio/")) {
    ++m.audio;
  } else {
    ++m.documents;
  }
}

void count_gemini_parts(const json& parts, Media& m) {
  if (!parts.is_array()) return;
  for (const json& part : parts) {
    for (const auto& [camel, snake] : {std::pair{"inlineData", "inline_data"}, std::pair{"fileData", "file_data"}}) {
      if (const json* data = member_either(part, camel, snake)) {
        const json* type = member_either(*data, "mimeType", "mime_type");
        count_media_type(type != nullptr && type->is_string() ? type->get_ref<const std::string&>() : "", m);
      }
    }
    if (const json* response = member_either(part, "functionResponse", "function_response")) {
      if (const json* nested = member(*response, "parts")) count_gemini_parts(*nested, m);
    }
  }
}

void count_anthropic_blocks(const json& content, Media& m) {
  if (!content.is_array()) return;
  for (const json& block : content) {
    const std::string_view type = string_at(block, "type");
    if (type == "image") ++m.images;
    if (type == "document") ++m.documents;
    if (type == "tool_result") {
      if (const json* nested = member(block, "content")) count_anthropic_blocks(*nested, m);
    }
  }
}

// Does any text of the OpenAI messages hold `word` (lower case), in any case?
bool messages_mention(const json& messages, std::string_view word) {
  if (!messages.is_array()) return false;
  for (const json& message : messages) {
    const json* content = member(message, "content");
    if (content == nullptr) continue;
    if (content->is_string() && lower(content->get_ref<const std::string&>()).find(word) != std::string::npos) {
      return true;
    }
    if (!content->is_array()) continue;
    for (const json& part : *content) {
      if (lower(string_at(part, "text")).find(word) != std::string::npos) return true;
    }
  }
  return false;
}

Facts analyse(UsageFormat format, const json& body, std::string_view model) {
  Facts f;
  f.format = format;
  f.model = std::string(model);
  const json* tools = member(body, "tools");
  switch (format) {
    case UsageFormat::kOpenAI: {
      f.stream = true_at(body, "stream");
      if (const json* opts = member(body, "stream_options")) f.include_usage = true_at(*opts, "include_usage");
      const std::string_view effort = string_at(body, "reasoning_effort");
      f.reasoning = !effort.empty() && effort != "none";
      std::string_view mode = "auto", named;
      if (const json* choice = member(body, "tool_choice"); choice != nullptr && choice->is_string()) {
        mode = choice->get_ref<const std::string&>();
      } else if (choice != nullptr && choice->is_object()) {
        if (const json* fn = member(*choice, "function")) named = string_at(*fn, "name");
        if (!named.empty()) mode = "named";
      }
      const json* messages = member(body, "messages");
      const bool answered = messages != nullptr && messages->is_array() && !messages->empty() &&
                            string_at(messages->back(), "role") == "tool";
      std::vector<FunctionTool> functions;
      for (const json& t : array_or_empty(tools)) {
        if (const json* fn = member(t, "function"); fn != nullptr && !string_at(*fn, "name").empty()) {
          functions.push_back({std::string(string_at(*fn, "name")), member(*fn, "parameters")});
        }
      }
      choose_tool(f, functions, mode, named, answered);
      if (const json* format_spec = member(body, "response_format"); format_spec != nullptr &&
                                                                      string_at(*format_spec, "type") == "json_schema") {
        const json* spec = member(*format_spec, "json_schema");
        const json* schema = spec != nullptr ? member(*spec, "schema") : nullptr;
        if (schema != nullptr && schema->is_object()) f.output_schema = *schema;
      }
      for (const json& message : array_or_empty(messages)) {
        const json* content = member(message, "content");
        for (const json& part : array_or_empty(content)) {
          const std::string_view type = string_at(part, "type");
          if (type == "image_url") ++f.media.images;
          if (type == "file") ++f.media.documents;
          if (type == "input_audio") ++f.media.audio;
        }
      }
      break;
    }
    case UsageFormat::kAnthropic: {
      f.stream = true_at(body, "stream");
      if (const json* thinking = member(body, "thinking")) {
        const std::string_view type = string_at(*thinking, "type");
        f.thinking_enabled = type == "enabled";
        f.reasoning = f.thinking_enabled || type == "adaptive";
      }
      std::string_view mode = "auto", named;
      if (const json* choice = member(body, "tool_choice")) {
        const std::string_view type = string_at(*choice, "type");
        if (type == "none") mode = "none";
        if (type == "any") mode = "required";
        if (type == "tool") {
          mode = "named";
          named = string_at(*choice, "name");
        }
      }
      const json* messages = member(body, "messages");
      bool answered = false;
      if (messages != nullptr && messages->is_array() && !messages->empty()) {
        const json* content = member(messages->back(), "content");
        if (content != nullptr && content->is_array()) {
          for (const json& block : *content) answered = answered || string_at(block, "type") == "tool_result";
        }
      }
      std::vector<FunctionTool> custom;
      for (const json& t : array_or_empty(tools)) {
        // Custom tools carry an input_schema; server tools (web search...) do not.
        if (!string_at(t, "name").empty() && member(t, "input_schema") != nullptr) {
          custom.push_back({std::string(string_at(t, "name")), member(t, "input_schema")});
        }
      }
      choose_tool(f, custom, mode, named, answered);
      for (const json& message : array_or_empty(messages)) {
        const json* content = member(message, "content");
        if (content == nullptr) continue;
        count_anthropic_blocks(*content, f.media);
        if (string_at(message, "role") != "user") continue;
        bool trigger = content->is_string() && content->get_ref<const std::string&>().find(kRedactedTrigger) != std::string::npos;
        for (const json& block : array_or_empty(content)) {
          trigger = trigger || string_at(block, "text").find(kRedactedTrigger) != std::string_view::npos;
        }
        f.redact = f.redact || trigger;
      }
      break;
    }
    case UsageFormat::kGemini: {
      if (const json* config = member_either(body, "generationConfig", "generation_config")) {
        if (const json* thinking = member_either(*config, "thinkingConfig", "thinking_config");
            thinking != nullptr && thinking->is_object()) {
          const json* budget = member_either(*thinking, "thinkingBudget", "thinking_budget");
          f.reasoning = !(budget != nullptr && budget->is_number() && budget->get<double>() == 0);
          const json* include = member_either(*thinking, "includeThoughts", "include_thoughts");
          f.include_thoughts = f.reasoning && include != nullptr && include->is_boolean() && include->get<bool>();
        }
        for (const auto& [camel, snake] : {std::pair{"responseSchema", "response_schema"},
                                           std::pair{"responseJsonSchema", "response_json_schema"}}) {
          if (const json* schema = member_either(*config, camel, snake); schema != nullptr && schema->is_object()) {
            f.output_schema = *schema;
            break;
          }
        }
      }
      std::string_view mode = "auto", named;
      if (const json* tc = member_either(body, "toolConfig", "tool_config")) {
        if (const json* fcc = member_either(*tc, "functionCallingConfig", "function_calling_config")) {
          const std::string_view m = string_at(*fcc, "mode");
          if (m == "NONE") mode = "none";
          if (m == "ANY") {
            mode = "required";
            const json* allowed = member_either(*fcc, "allowedFunctionNames", "allowed_function_names");
            if (allowed != nullptr && allowed->is_array() && !allowed->empty() && allowed->front().is_string()) {
              mode = "named";
              named = allowed->front().get_ref<const std::string&>();
            }
          }
        }
      }
      const json* contents = member(body, "contents");
      bool answered = false;
      if (contents != nullptr && contents->is_array() && !contents->empty()) {
        const json* parts = member(contents->back(), "parts");
        for (const json& p : array_or_empty(parts)) {
          answered = answered || member_either(p, "functionResponse", "function_response") != nullptr;
        }
      }
      std::vector<FunctionTool> functions;
      for (const json& t : array_or_empty(tools)) {
        const json* decls = member_either(t, "functionDeclarations", "function_declarations");
        for (const json& d : array_or_empty(decls)) {
          if (string_at(d, "name").empty()) continue;
          const json* parameters = member(d, "parameters");
          if (parameters == nullptr) parameters = member_either(d, "parametersJsonSchema", "parameters_json_schema");
          functions.push_back({std::string(string_at(d, "name")), parameters});
        }
      }
      choose_tool(f, functions, mode, named, answered);
      for (const json& content : array_or_empty(contents)) {
        if (const json* parts = member(content, "parts")) count_gemini_parts(*parts, f.media);
      }
      break;
    }
  }
  return f;
}

// A request the real API would refuse, in its words.
struct Rejection {
  int status = 400;
  std::string message;
};

// The top-level fields of each API's request as documented; another is
// refused the way the real API refuses it.
bool documented_field(UsageFormat format, const std::string& key) {
  static const std::set<std::string> kOpenAI = {
      "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
      "max_completion_tokens", "max_tokens", "messages", "metadata", "modalities", "model", "n",
      "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_retention",
      "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store",
      "stream", "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
      "verbosity", "web_search_options"};
  static const std::set<std::string> kAnthropic = {
      "model", "messages", "max_tokens", "container", "context_management", "mcp_servers", "metadata",
      "output_config", "output_format", "service_tier", "stop_sequences", "stream", "system", "temperature",
      "thinking", "tool_choice", "tools", "top_k", "top_p"};
  return (format == UsageFormat::kOpenAI ? kOpenAI : kAnthropic).count(key) > 0;
}

std::optional<Rejection> check_openai(const json& body) {
  for (const auto& [key, value] : body.items()) {
    if (!documented_field(UsageFormat::kOpenAI, key)) {
      return Rejection{400, "Unrecognized request argument supplied: " + key};
    }
  }
  if (const json* format_spec = member(body, "response_format")) {
    const std::string_view type = string_at(*format_spec, "type");
    if (type == "json_object" && !messages_mention(array_or_empty(member(body, "messages")), "json")) {
      return Rejection{400, "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                            "'json_object'."};
    }
    const json* spec = member(*format_spec, "json_schema");
    if (type == "json_schema" && spec != nullptr && true_at(*spec, "strict")) {
      std::vector<std::string> context;
      const json* schema = member(*spec, "schema");
      const std::string found = strict_violation(schema != nullptr ? *schema : json::object(), context);
      if (!found.empty()) {
        return Rejection{400, "Invalid schema for response_format '" + std::string(string_at(*spec, "name")) +
                                  "': " + found};
      }
    }
  }
  const json* tools = member(body, "tools");
  for (const json& t : array_or_empty(tools)) {
    const json* fn = member(t, "function");
    if (fn == nullptr || !true_at(*fn, "strict")) continue;
    std::vector<std::string> context;
    const json* parameters = member(*fn, "parameters");
    const std::string found = strict_violation(parameters != nullptr ? *parameters : json::object(), context);
    if (!found.empty()) {
      return Rejection{400, "Invalid schema for function '" + std::string(string_at(*fn, "name")) + "': " + found};
    }
  }
  return std::nullopt;
}

std::optional<Rejection> check_anthropic(const Facts& f, const json& body) {
  static const std::string kConsult =
      " Please consult our documentation at "
      "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#important-considerations-when-using-"
      "extended-thinking";
  for (const auto& [key, value] : body.items()) {
    if (!documented_field(UsageFormat::kAnthropic, key)) return Rejection{400, key + ": Extra inputs are not permitted"};
  }
  const json* max_tokens = member(body, "max_tokens");
  if (max_tokens == nullptr || !max_tokens->is_number_integer()) return Rejection{400, "max_tokens: Field required"};
  if (f.thinking_enabled) {
    const json* budget = member(body.at("thinking"), "budget_tokens");
    if (budget == nullptr || !budget->is_number_integer()) {
      return Rejection{400, "thinking.enabled.budget_tokens: Field required"};
    }
    if (budget->get<std::int64_t>() < 1024) {
      return Rejection{400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"};
    }
    if (budget->get<std::int64_t>() >= max_tokens->get<std::int64_t>()) {
      return Rejection{400,
                       "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation "
                       "at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-"
                       "window-size"};
    }
  }
  if (f.reasoning) {
    if (const json* t = member(body, "temperature"); t != nullptr && !(t->is_number() && t->get<double>() == 1.0)) {
      return Rejection{400, "`temperature` may only be set to 1 when thinking is enabled." + kConsult};
    }
    if (member(body, "top_k") != nullptr) {
      return Rejection{400, "`top_k` must be unset when thinking is enabled." + kConsult};
    }
    if (const json* p = member(body, "top_p"); p != nullptr && !(p->is_number() && p->get<double>() >= 0.95)) {
      return Rejection{400, "`top_p` must be unset or between 0.95 and 1 when thinking is enabled." + kConsult};
    }
  }
  if (f.thinking_enabled) {
    const std::string_view choice = member(body, "tool_choice") ? string_at(body.at("tool_choice"), "type") : "";
    if (choice == "any" || choice == "tool") {
      return Rejection{400, "Thinking may not be enabled when tool_choice forces tool use."};
    }
  }
  const json* messages = member(body, "messages");
  if (messages == nullptr || !messages->is_array()) return std::nullopt;
  std::optional<std::size_t> last_assistant;
  for (std::size_t n = 0; n < messages->size(); ++n) {
    const json& message = (*messages)[n];
    if (string_at(message, "role") != "assistant") continue;
    last_assistant = n;
    const json* content = member(message, "content");
    if (content == nullptr || !content->is_array()) continue;
    for (std::size_t m = 0; m < content->size(); ++m) {
      const json& block = (*content)[m];
      const std::string at = "messages." + std::to_string(n) + ".content." + std::to_string(m);
      const std::string_view type = string_at(block, "type");
      if (type == "thinking") {
        if (!member(block, "signature") || !block.at("signature").is_string()) {
          return Rejection{400, at + ".thinking.signature: Field required"};
        }
        if (string_at(block, "signature") != thinking_signature(string_at(block, "thinking"))) {
          return Rejection{400, at + ": Invalid `signature` in `thinking` block"};
        }
      }
      if (type == "redacted_thinking") {
        if (!member(block, "data") || !block.at("data").is_string()) {
          return Rejection{400, at + ".redacted_thinking.data: Field required"};
        }
        if (!sealed_by(kRedactedDomain, string_at(block, "data"))) {
          return Rejection{400, at + ": Invalid `data` in `redacted_thinking` block"};
        }
      }
    }
  }
  if (f.reasoning && last_assistant) {
    const json* content = member((*messages)[*last_assistant], "content");
    bool uses_tools = false;
    for (const json& block : array_or_empty(content)) {
      uses_tools = uses_tools || string_at(block, "type") == "tool_use";
    }
    const std::string_view first = uses_tools ? string_at(content->front(), "type") : "";
    if (uses_tools && first != "thinking" && first != "redacted_thinking") {
      return Rejection{
          400, "messages." + std::to_string(*last_assistant) +
                   ".content.0.type: Expected `thinking` or `redacted_thinking`, but found `" + std::string(first) +
                   "`. When `thinking` is enabled, a final `assistant` message must start with a thinking block "
                   "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you include "
                   "thinking blocks from previous turns. To avoid this requirement, disable `thinking`. Please "
                   "consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"};
    }
  }
  return std::nullopt;
}

std::optional<Rejection> check_gemini(const Facts& f, const json& body) {
  std::vector<std::string> unknown;
  if (const json* config = member_either(body, "generationConfig", "generation_config")) {
    if (const json* schema = member_either(*config, "responseSchema", "response_schema")) {
      unknown_schema_fields(*schema, "generation_config.response_schema", unknown);
    }
  }
  const json* tools = member(body, "tools");
  for (std::size_t t = 0; tools != nullptr && tools->is_array() && t < tools->size(); ++t) {
    const json* decls = member_either((*tools)[t], "functionDeclarations", "function_declarations");
    for (std::size_t d = 0; decls != nullptr && decls->is_array() && d < decls->size(); ++d) {
      if (const json* parameters = member((*decls)[d], "parameters")) {
        unknown_schema_fields(*parameters,
                              "tools[" + std::to_string(t) + "].function_declarations[" + std::to_string(d) + "].parameters",
                              unknown);
      }
    }
  }
  if (!unknown.empty()) {
    std::string message;
    for (const std::string& line : unknown) message += (message.empty() ? "" : "\n") + line;
    return Rejection{400, message};
  }
  const json* contents = member(body, "contents");
  if (contents == nullptr || !contents->is_array()) return std::nullopt;
  // The current turn starts after the last user content that is not only function responses.
  std::size_t turn = 0;
  for (std::size_t i = 0; i < contents->size(); ++i) {
    const json* parts = member((*contents)[i], "parts");
    if (string_at((*contents)[i], "role") == "model" || parts == nullptr || !parts->is_array()) continue;
    for (const json& p : *parts) {
      if (member_either(p, "functionResponse", "function_response") == nullptr) turn = i + 1;
    }
  }
  for (std::size_t i = 0; i < contents->size(); ++i) {
    const json* parts = member((*contents)[i], "parts");
    if (parts == nullptr || !parts->is_array()) continue;
    bool first_call = true;
    for (const json& p : *parts) {
      const json* signature = member_either(p, "thoughtSignature", "thought_signature");
      if (signature != nullptr && !(signature->is_string() &&
                                    sealed_by(kGeminiDomain, signature->get_ref<const std::string&>()))) {
        return Rejection{400, "Corrupted thought signature."};
      }
      const json* call = member_either(p, "functionCall", "function_call");
      if (call == nullptr) continue;
      if (first_call && signature == nullptr && i >= turn && f.reasoning && starts_with(f.model, "gemini-3") &&
          string_at((*contents)[i], "role") == "model") {
        return Rejection{
            400, "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
                 "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
                 "data, function call `default_api:" + std::string(string_at(*call, "name")) + "` , position " +
                     std::to_string(i + 1) +
                     ". Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."};
      }
      first_call = false;
    }
  }
  return std::nullopt;
}

std::optional<Rejection> check_request(const Facts& f, const json& body) {
  switch (f.format) {
    case UsageFormat::kOpenAI: return check_openai(body);
    case UsageFormat::kAnthropic: return check_anthropic(f, body);
    case UsageFormat::kGemini: return check_gemini(f, body);
  }
  return std::nullopt;
}

// The wire counts (fake_provider.h): P, C, W, O, R.
struct Counts {
  std::int64_t prompt = 0, cached = 0, cache_write = 0, answer = 0, reasoning = 0;
};

struct Answer {
  FakeAnswer answer;
  Counts counts;
  bool unsplit = false;  // stream the whole text as its first piece (kOversizedBody)
};

// " (saw 1 image, 2 documents)", or "" for none.
std::string media_note(const Media& m) {
  std::string items;
  auto add = [&](int n, const char* one, const char* many) {
    if (n == 0) return;
    items += (items.empty() ? "" : ", ") + std::to_string(n) + " " + (n == 1 ? one : many);
  };
  add(m.images, "image", "images");
  add(m.documents, "document", "documents");
  add(m.audio, "audio clip", "audio clips");
  return items.empty() ? "" : " (saw " + items + ")";
}

Answer answer_for(const Facts& f, std::size_t body_bytes) {
  Answer a;
  FakeAnswer& out = a.answer;
  if (f.tool_name.empty()) {
    out.text = f.output_schema ? instance_of(*f.output_schema, *f.output_schema).dump()
                               : "Hello from " + f.model + ". This answer is \"fake\" and deterministic." +
                                     media_note(f.media);
    out.finish_reason = "stop";
  } else {
    out.tool_name = f.tool_name;
    if (f.forced) {
      json arguments = instance_of(f.tool_schema, f.tool_schema);
      out.arguments_json = (arguments.is_object() ? arguments : json::object()).dump();
    } else {
      out.arguments_json = std::string(kToolArguments);
    }
    out.finish_reason = "tool_calls";
  }
  const std::string thought = "The caller wants a deterministic answer from " + f.model + "; give it plainly.";
  if (f.reasoning && f.format == UsageFormat::kAnthropic) {
    if (f.redact) {
      out.redacted_thinking = seal(kRedactedDomain, thought);
    } else {
      out.thinking = thought;
      out.signature = thinking_signature(thought);
    }
  }
  if (f.reasoning && f.format == UsageFormat::kGemini) {
    if (f.include_thoughts) out.thinking = thought;
    out.signature = seal(kGeminiDomain, f.model);
  }
  Counts& c = a.counts;
  c.prompt = std::max<std::int64_t>(1, static_cast<std::int64_t>(body_bytes / 4));
  c.cached = c.prompt / 4;
  c.cache_write = f.format == UsageFormat::kAnthropic ? c.prompt / 8 : 0;
  const std::size_t visible =
      out.tool_name.empty() ? out.text.size() : out.tool_name.size() + out.arguments_json.size();
  c.answer = static_cast<std::int64_t>((visible + 3) / 4);
  c.reasoning = f.reasoning ? kReasoningTokens : 0;
  Usage& u = out.usage;
  u.input_tokens = c.prompt - c.cached - c.cache_write;
  u.cached_input_tokens = c.cached;
  u.cache_write_5m_tokens = c.cache_write;
  if (f.format == UsageFormat::kAnthropic) {
    u.output_tokens = c.answer + c.reasoning;  // Anthropic does not report thinking apart
  } else {
    u.output_tokens = c.answer;
    u.reasoning_tokens = c.reasoning;
  }
  return a;
}

// `a` with its text or tool call replaced by `scripted` (AnswerScripts), the
// visible tokens (O) counted again.
void use_scripted(Answer& a, const Facts& f, const ScriptedAnswer& scripted) {
  FakeAnswer& out = a.answer;
  out.text = scripted.text;
  out.tool_name = scripted.tool_name;
  out.arguments_json = scripted.arguments_json;
  out.finish_reason = out.tool_name.empty() ? "stop" : "tool_calls";
  const std::size_t visible =
      out.tool_name.empty() ? out.text.size() : out.tool_name.size() + out.arguments_json.size();
  a.counts.answer = static_cast<std::int64_t>((visible + 3) / 4);
  out.usage.output_tokens = f.format == UsageFormat::kAnthropic ? a.counts.answer + a.counts.reasoning : a.counts.answer;
}

// An answer before it goes on the wire.
struct Reply {
  int status = 200;
  std::string content_type;
  std::string body;                 // sent with Content-Length when !chunked
  std::vector<std::string> events;  // chunked: one HTTP chunk each
  bool chunked = false;
  int retry_after_s = -1;
  std::vector<std::string> headers;  // more header lines, "Name: value"
};

// The rate-limit headers an answer carries (fake_provider.h, "Rate limits").
std::vector<std::string> rate_limit_headers(UsageFormat format) {
  switch (format) {
    case UsageFormat::kOpenAI:
      return {"x-ratelimit-limit-requests: 5000", "x-ratelimit-remaining-requests: 4999",
              "x-ratelimit-reset-requests: 12ms", "x-ratelimit-limit-tokens: 800000",
              "x-ratelimit-remaining-tokens: 799000", "x-ratelimit-reset-tokens: 1m30s"};
    case UsageFormat::kAnthropic: {
      const auto in = [](int seconds) {
        const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now()) + seconds;
        std::tm tm{};
        gmtime_r(&t, &tm);
        char buf[32];
        std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
        return std::string(buf);
      };
      return {"anthropic-ratelimit-requests-limit: 50", "anthropic-ratelimit-requests-remaining: 49",
              "anthropic-ratelimit-requests-reset: " + in(60), "anthropic-ratelimit-tokens-limit: 80000",
              "anthropic-ratelimit-tokens-remaining: 79000", "anthropic-ratelimit-tokens-reset: " + in(120)};
    }
    case UsageFormat::kGemini: return {};  // Gemini sends none
  }
  return {};
}

std::string json_type(UsageFormat f) {
  return f == UsageFormat::kGemini ? "application/json; charset=UTF-8" : "application/json";
}

Vars answer_vars(std::uint64_t seq, const Facts& f, const Answer& a) {
  Vars v;
  v[kSeq] = std::to_string(seq);
  v[kModel] = json_escape(f.model);
  const FakeAnswer& fa = a.answer;
  v[kText] = json_escape(fa.text);
  auto text = split3(fa.text);
  if (a.unsplit) text = {fa.text, {}, {}};
  for (std::size_t i = 0; i < 3; ++i) v[kText0 + i] = json_escape(text[i]);
  v[kThinking] = json_escape(fa.thinking);
  const auto thinking = split3(fa.thinking);
  for (std::size_t i = 0; i < 3; ++i) v[kThinking0 + i] = json_escape(thinking[i]);
  v[kToolName] = json_escape(fa.tool_name);
  v[kArguments] = json_escape(fa.arguments_json);
  const auto args = split3(fa.arguments_json);
  for (std::size_t i = 0; i < 3; ++i) v[kArguments0 + i] = json_escape(args[i]);
  v[kInput] = fa.arguments_json.empty() ? "{}" : fa.arguments_json;
  v[kStopReason] = fa.tool_name.empty() ? "end_turn" : "tool_use";
  const Counts& c = a.counts;
  v[kPromptTokens] = std::to_string(c.prompt);
  v[kCachedTokens] = std::to_string(c.cached);
  v[kCacheWriteTokens] = std::to_string(c.cache_write);
  v[kUncachedInputTokens] = std::to_string(c.prompt - c.cached - c.cache_write);
  v[kAnswerTokens] = std::to_string(c.answer);
  v[kReasoningTokensVar] = std::to_string(c.reasoning);
  v[kOutputTokens] = std::to_string(c.answer + c.reasoning);
  v[kTotalTokens] = std::to_string(c.prompt + c.answer + c.reasoning);
  return v;
}

// `text` with every `from` replaced by `to`.
std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// A Gemini part (as rendered from its fixture) with its thoughtSignature.
std::string signed_part(const std::string& part, const std::string& signature) {
  json j = json::parse(part);
  j["thoughtSignature"] = signature;
  return j.dump();
}

// Gemini stream events with the reasoning added: the thoughtSignature on the
// first event's first part and, with thoughts, an event of the thought part
// first (its usage the prompt's alone).
void add_gemini_reasoning(std::vector<std::string>& events, const FakeAnswer& a) {
  if (events.empty() || (a.signature.empty() && a.thinking.empty())) return;
  auto parse = [](const std::string& event) {
    std::string_view data = trim_end(event);
    if (data.substr(0, 6) == "data: ") data.remove_prefix(6);
    return json::parse(data);
  };
  auto render = [](const json& chunk) { return "data: " + chunk.dump() + "\r\n\r\n"; };
  json first = parse(events.front());
  if (!a.signature.empty()) first["candidates"][0]["content"]["parts"][0]["thoughtSignature"] = a.signature;
  events.front() = render(first);
  if (a.thinking.empty()) return;
  json thought = parse(events.front());
  json& candidate = thought["candidates"][0];
  candidate["content"]["parts"] = json::array({{{"text", a.thinking}, {"thought", true}}});
  candidate.erase("finishReason");
  json& usage = thought["usageMetadata"];
  usage.erase("candidatesTokenCount");
  usage.erase("thoughtsTokenCount");
  usage["totalTokenCount"] = usage["promptTokenCount"];
  events.insert(events.begin(), render(thought));
}

// The normal answer: a JSON body, or an event stream (`gemini_sse` false:
// Gemini's streamed JSON array).
Reply render_answer(const Fixtures& fx, std::uint64_t seq, const Facts& f, const Answer& a, bool gemini_sse) {
  Vars v = answer_vars(seq, f, a);
  const FakeAnswer& fa = a.answer;
  const bool tool = !fa.tool_name.empty();
  Reply r;
  r.headers = rate_limit_headers(f.format);
  std::string sse;
  switch (f.format) {
    case UsageFormat::kOpenAI:
      if (!f.stream) {
        r.body = (tool ? fx.openai_tool_calls : fx.openai_text).render(v);
        break;
      }
      if (f.include_usage) {
        v[kUsageNull] = ",\"usage\":null";
        v[kUsageEvent] = fx.openai_usage_sse.render(v);
      }
      sse = (tool ? fx.openai_tool_calls_sse : fx.openai_text_sse).render(v);
      break;
    case UsageFormat::kAnthropic: {
      // Each block: its fixture, or (redacted thinking, which has none) nullptr.
      std::vector<const Template*> blocks;
      if (!fa.redacted_thinking.empty()) blocks.push_back(nullptr);
      if (!fa.thinking.empty()) blocks.push_back(f.stream ? &fx.anthropic_thinking_sse : &fx.anthropic_block_thinking);
      if (tool) {
        blocks.push_back(f.stream ? &fx.anthropic_tool_use_sse : &fx.anthropic_block_tool_use);
      } else {
        blocks.push_back(f.stream ? &fx.anthropic_text_sse : &fx.anthropic_block_text);
      }
      auto render_block = [&](const Template* block, std::size_t index) {
        if (block == nullptr) {
          const json start = {{"type", "redacted_thinking"}, {"data", fa.redacted_thinking}};
          if (!f.stream) return start.dump(2);
          const json event = {{"type", "content_block_start"}, {"index", index}, {"content_block", start}};
          const json stop = {{"type", "content_block_stop"}, {"index", index}};
          return "event: content_block_start\ndata: " + event.dump() + "\n\n" + v[kPing] +
                 "event: content_block_stop\ndata: " + stop.dump() + "\n\n";
        }
        std::string out = block->render(v);
        if (block == &fx.anthropic_thinking_sse || block == &fx.anthropic_block_thinking) {
          out = replace_all(std::move(out), fx.anthropic_signature, fa.signature);
        }
        return out;
      };
      if (!f.stream) {
        for (const Template* b : blocks) {
          if (!v[kContent].empty()) v[kContent] += ",\n    ";
          v[kContent] += render_block(b, 0);
        }
        r.body = fx.anthropic_message.render(v);
        break;
      }
      sse = fx.anthropic_start_sse.render(v);
      const std::string ping = fx.anthropic_ping_sse.render(v);
      for (std::size_t i = 0; i < blocks.size(); ++i) {
        v[kIndex] = std::to_string(i);
        v[kPing] = i == 0 ? ping : "";
        sse += render_block(blocks[i], i);
      }
      sse += fx.anthropic_end_sse.render(v);
      break;
    }
    case UsageFormat::kGemini:
      if (!f.stream) {
        std::string part = (tool ? fx.gemini_part_function_call : fx.gemini_part_text).render(v);
        if (!fa.signature.empty()) part = signed_part(part, fa.signature);
        if (!fa.thinking.empty()) {
          part = json{{"text", fa.thinking}, {"thought", true}}.dump() + ",\n          " + part;
        }
        v[kParts] = std::move(part);
        r.body = fx.gemini_generate.render(v);
        break;
      }
      sse = (tool ? fx.gemini_function_call_sse : fx.gemini_text_sse).render(v);
      break;
  }
  if (!f.stream) {
    r.content_type = json_type(f.format);
    return r;
  }
  r.chunked = true;
  const bool gemini = f.format == UsageFormat::kGemini;
  r.events = split_events(sse, gemini ? "\r\n\r\n" : "\n\n");
  if (gemini) add_gemini_reasoning(r.events, fa);
  if (gemini && !gemini_sse) {
    // Without alt=sse Gemini streams one JSON array of the same responses.
    for (std::size_t i = 0; i < r.events.size(); ++i) {
      std::string_view e = trim_end(r.events[i]);
      if (e.substr(0, 6) == "data: ") e.remove_prefix(6);
      r.events[i] = (i == 0 ? "[" : ",\r\n") + std::string(e) + (i + 1 == r.events.size() ? "]" : "");
    }
    r.content_type = json_type(f.format);
    return r;
  }
  r.content_type = gemini ? "text/event-stream" : "text/event-stream; charset=utf-8";
  return r;
}

Reply error_reply(const Fixtures& fx, UsageFormat format, int status, const std::string& message,
                  std::uint64_t seq) {
  Vars v;
  v[kSeq] = std::to_string(seq);
  v[kErrorMessage] = json_escape(message);
  v[kStatusCode] = std::to_string(status);
  Reply r;
  r.status = status;
  r.content_type = json_type(format);
  switch (format) {
    case UsageFormat::kOpenAI: {
      v[kErrorType] = status == 429 ? "requests" : status >= 500 ? "server_error" : "invalid_request_error";
      v[kErrorCode] = status == 429 ? "\"rate_limit_exceeded\"" : status == 401 ? "\"invalid_api_key\"" : "null";
      r.body = fx.openai_error.render(v);
      break;
    }
    case UsageFormat::kAnthropic: {
      const char* type = "invalid_request_error";
      if (status == 401) type = "authentication_error";
      if (status == 404) type = "not_found_error";
      if (status == 413) type = "request_too_large";
      if (status == 429) type = "rate_limit_error";
      if (status == 500) type = "api_error";
      if (status == 529) type = "overloaded_error";
      v[kErrorType] = type;
      r.body = fx.anthropic_error.render(v);
      break;
    }
    case UsageFormat::kGemini: {
      const char* word = "INVALID_ARGUMENT";
      if (status == 401) word = "UNAUTHENTICATED";
      if (status == 404) word = "NOT_FOUND";
      if (status == 429) word = "RESOURCE_EXHAUSTED";
      if (status == 500) word = "INTERNAL";
      if (status == 503) word = "UNAVAILABLE";
      v[kErrorStatus] = word;
      r.body = fx.gemini_error.render(v);
      break;
    }
  }
  return r;
}

const char* reason_phrase(int status) {
  if (status == 529) return "Overloaded";  // Anthropic's own code
  const auto text = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  return text.data();
}

// The status line and headers; `content_length` absent means chunked.
std::string head(const Reply& r, std::optional<std::size_t> content_length, bool close) {
  std::string h = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
  h += "Server: switchboard-fake-provider\r\n";
  h += "Content-Type: " + r.content_type + "\r\n";
  if (content_length) {
    h += "Content-Length: " + std::to_string(*content_length) + "\r\n";
  } else {
    h += "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n";
  }
  if (r.retry_after_s >= 0) h += "Retry-After: " + std::to_string(r.retry_after_s) + "\r\n";
  for (const std::string& line : r.headers) h += line + "\r\n";
  if (close) h += "Connection: close\r\n";
  h += "\r\n";
  return h;
}

void append_chunk(std::string& out, std::string_view data) {
  char size[32];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  out.append(size, static_cast<std::size_t>(n));
  out += data;
  out += "\r\n";
}

// Which provider a path belongs to; for Gemini also the model and streaming.
struct Route {
  // What the route does: answer a model call, count a call's tokens
  // (Anthropic's count_tokens), or embed (OpenAI's embeddings, Gemini's batchEmbedContents).
  enum class Kind { kGenerate, kCountTokens, kEmbed };
  UsageFormat format = UsageFormat::kOpenAI;
  Kind kind = Kind::kGenerate;
  bool found = false;
  std::string model;      // Gemini: from the path
  bool stream = false;    // Gemini: streamGenerateContent
  bool gemini_sse = false;
};

Route route(std::string_view path, std::string_view query) {
  Route r;
  if (path == "/v1/chat/completions") {
    r.found = true;
  } else if (path == "/v1/embeddings") {
    r.kind = Route::Kind::kEmbed;
    r.found = true;
  } else if (path == "/v1/messages") {
    r.format = UsageFormat::kAnthropic;
    r.found = true;
  } else if (path == "/v1/messages/count_tokens") {
    r.format = UsageFormat::kAnthropic;
    r.kind = Route::Kind::kCountTokens;
    r.found = true;
  } else if (constexpr std::string_view prefix = "/v1beta/models/"; path.substr(0, prefix.size()) == prefix) {
    const std::string_view rest = path.substr(prefix.size());
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return r;
    const std::string_view method = rest.substr(colon + 1);
    if (method != "generateContent" && method != "streamGenerateContent" && method != "batchEmbedContents") return r;
    r.format = UsageFormat::kGemini;
    r.found = true;
    if (method == "batchEmbedContents") r.kind = Route::Kind::kEmbed;
    r.model = std::string(rest.substr(0, colon));
    r.stream = method == "streamGenerateContent";
    for (std::size_t pos = 0; pos <= query.size();) {
      const std::size_t amp = std::min(query.find('&', pos), query.size());
      if (query.substr(pos, amp - pos) == "alt=sse") r.gemini_sse = true;
      pos = amp + 1;
    }
  }
  return r;
}

// What one request gets: a reply, maybe delayed, maybe cut short.
struct Plan {
  // kStall: kCut's bytes, then the connection held open like kHang's.
  // kPause: the first event, a wait of `pause`, then the rest.
  enum class Action { kAnswer, kHang, kCut, kStall, kOversize, kPause };
  Action action = Action::kAnswer;
  Reply reply;
  std::chrono::milliseconds delay{0};
  std::size_t oversize_bytes = 0;    // kOversize: the whole body
  std::chrono::milliseconds pause{0};  // kPause: the silence after the first event
  std::string oversize_prefix, oversize_suffix;
  bool close = false;                // close the connection after it
  std::uint64_t held_id = 0;         // kHang, kStall: its entry in held_; 0 none
};

}  // namespace

std::vector<float> fake_embedding(std::string_view input, std::size_t dimensions) {
  std::vector<float> v;
  v.reserve(dimensions);
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a of the input, then of each index
  for (const char c : input) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  for (std::size_t k = 0; k < dimensions; ++k) {
    h = (h ^ (k + 1)) * 1099511628211ull;
    v.push_back(static_cast<float>(static_cast<int>(h >> 56) - 128) / 128.0f);  // k/128 in [-1, 1): exact
  }
  return v;
}

std::string ReceivedRequest::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (beast::iequals(k, name)) return v;
  }
  return "";
}

std::optional<FakeAnswer> expected_answer(UsageFormat format, std::string_view model, std::string_view request_body) {
  const json body = json::parse(request_body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) return std::nullopt;
  return answer_for(analyse(format, body, model), request_body.size()).answer;
}

std::optional<FakeRejection> expected_rejection(UsageFormat format, std::string_view model,
                                                std::string_view request_body) {
  const json body = json::parse(request_body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return FakeRejection{400, "The request body is not valid JSON: expected an object"};
  }
  const std::string name = format == UsageFormat::kGemini ? std::string(model) : std::string(string_at(body, "model"));
  if (name.empty()) return FakeRejection{400, "model: Field required"};
  const std::optional<Rejection> r = check_request(analyse(format, body, name), body);
  if (!r) return std::nullopt;
  return FakeRejection{r->status, r->message};
}

// ---------------------------------------------------------------------------
// The server

class FakeProvider::Impl {
 public:
  explicit Impl(FakeProviderOptions options)
      : options_(std::move(options)),
        ioc_(std::max(1, options_.threads)),
        acceptor_(net::make_strand(ioc_)),
        filler_(kOversizePiece, 'x') {
    fixtures_ = Fixtures::load(options_.fixtures_dir.empty() ? std::filesystem::path(SWITCHBOARD_WIRE_FIXTURES_DIR)
                                                             : std::filesystem::path(options_.fixtures_dir));
    if (!options_.scripts_file.empty()) scripts_ = AnswerScripts::load(options_.scripts_file);
    try {
      const tcp::endpoint endpoint(net::ip::make_address_v4("127.0.0.1"), options_.port);
      acceptor_.open(endpoint.protocol());
      acceptor_.set_option(net::socket_base::reuse_address(true));
      acceptor_.bind(endpoint);
      acceptor_.listen(net::socket_base::max_listen_connections);
      port_ = acceptor_.local_endpoint().port();
    } catch (const boost::system::system_error& e) {
      throw std::runtime_error("fake provider: cannot listen on 127.0.0.1:" + std::to_string(options_.port) +
                               ": " + e.code().message());
    }
    net::co_spawn(acceptor_.get_executor(), accept_loop(), net::detached);
    for (int i = 0; i < std::max(1, options_.threads); ++i) threads_.emplace_back([this] { ioc_.run(); });
  }

  ~Impl() { stop(); }

  void stop() {
    std::call_once(stopped_, [this] { stop_now(); });
  }

  std::uint16_t port() const { return port_; }

  void inject(FaultSpec fault) {
    if (fault.times <= 0) return;
    std::lock_guard lock(mu_);
    faults_.push_back(std::move(fault));
  }

  std::vector<ReceivedRequest> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }
  std::size_t request_count() const { return request_count_.load(); }
  void clear() {
    std::lock_guard lock(mu_);
    received_.clear();
    faults_.clear();
    held_.clear();
    request_count_ = 0;
  }

  std::vector<HeldConnection> held() const {
    std::lock_guard lock(mu_);
    std::vector<HeldConnection> out;
    out.reserve(held_.size());
    for (const Held& h : held_) out.push_back(h.connection);
    return out;
  }

  bool wait_held(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return held_cv_.wait_for(lock, timeout, [&] { return held_.size() >= n; });
  }

  bool wait_held_closed(std::size_t n, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mu_);
    return held_cv_.wait_for(lock, timeout, [&] {
      const auto closed = std::count_if(held_.begin(), held_.end(),
                                        [](const Held& h) { return h.connection.closed.has_value(); });
      return static_cast<std::size_t>(closed) >= n;
    });
  }

 private:
  struct Connection {
    explicit Connection(tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}
    tcp::socket socket;
    net::steady_timer timer;  // latency and slow first byte; cancelled on stop
  };

  // A held connection as held() reports it, and the id its connection marks it by.
  struct Held {
    std::uint64_t id = 0;
    HeldConnection connection;
  };

  void stop_now() {
    {
      std::lock_guard lock(connections_mu_);
      stopping_ = true;
      for (const auto& c : connections_) {
        net::post(c->socket.get_executor(), [c] {
          error_code ignored;
          c->socket.shutdown(tcp::socket::shutdown_both, ignored);
          c->socket.close(ignored);
          c->timer.cancel();
        });
      }
    }
    net::post(acceptor_.get_executor(), [this] {
      error_code ignored;
      acceptor_.close(ignored);
    });
    // Every coroutine now ends, and run() returns when none is left.
    for (std::thread& t : threads_) t.join();
  }

  net::awaitable<void> accept_loop() {
    for (;;) {
      tcp::socket socket(net::make_strand(ioc_));
      error_code ec;
      co_await acceptor_.async_accept(socket, net::redirect_error(net::use_awaitable, ec));
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) co_return;
      if (ec) {  // out of descriptors, say: breathe, then carry on
        net::steady_timer pause(co_await net::this_coro::executor, std::chrono::milliseconds(10));
        co_await pause.async_wait(net::redirect_error(net::use_awaitable, ec));
        continue;
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto c = std::make_shared<Connection>(std::move(socket));
      {
        std::lock_guard lock(connections_mu_);
        if (stopping_) co_return;
        connections_.insert(c);
      }
      net::co_spawn(c->socket.get_executor(), serve(c), net::detached);
    }
  }

  static bool parse_error(const error_code& ec) {
    return ec.category() == http::make_error_code(http::error::bad_method).category() &&
           ec != http::error::end_of_stream && ec != http::error::partial_message;
  }

  net::awaitable<void> serve(std::shared_ptr<Connection> c) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(64u << 10);
      parser.body_limit(kMaxRequestBody);
      error_code ec;
      co_await http::async_read_header(c->socket, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      if (!ec && beast::iequals(parser.get()[http::field::expect], "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await net::async_write(c->socket, net::buffer(kContinue.data(), kContinue.size()),
                                  net::redirect_error(net::use_awaitable, ec));
      }
      if (!ec) co_await http::async_read(c->socket, buffer, parser, net::redirect_error(net::use_awaitable, ec));
      if (ec) {
        if (ec == http::error::body_limit) {
          co_await send_refusal(c, 413, "request body over " + std::to_string(kMaxRequestBody) + " bytes");
        } else if (parse_error(ec)) {
          co_await send_refusal(c, 400, "malformed HTTP request: " + ec.message());
        }
        break;
      }
      const http::request<http::string_body> request = parser.release();
      Plan plan = handle(request);
      if (!request.keep_alive()) plan.close = true;
      if (!co_await deliver(c, std::move(plan)) || stopping_) break;
    }
    error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_both, ignored);
    c->socket.close(ignored);
    std::lock_guard lock(connections_mu_);
    connections_.erase(c);
  }

  net::awaitable<void> send_refusal(std::shared_ptr<Connection> c, int status, std::string message) {
    const Reply r = error_reply(fixtures_, UsageFormat::kOpenAI, status, message, ++seq_);
    const std::string out = head(r, r.body.size(), true) + r.body;
    error_code ec;
    co_await net::async_write(c->socket, net::buffer(out), net::redirect_error(net::use_awaitable, ec));
  }

  // Writes the plan's answer; false when the connection must close.
  net::awaitable<bool> deliver(std::shared_ptr<Connection> c, Plan plan) {
    error_code ec;
    if (plan.action == Plan::Action::kHang) {
      co_await hold(c, plan.held_id);
      co_return false;
    }
    if (plan.delay.count() > 0) {
      c->timer.expires_after(plan.delay);
      co_await c->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      if (stopping_) co_return false;
    }
    const Reply& r = plan.reply;
    std::string out;
    if (plan.action == Plan::Action::kOversize) {
      out = head(r, plan.oversize_bytes, plan.close) + plan.oversize_prefix;
      co_await net::async_write(c->socket, net::buffer(out), net::redirect_error(net::use_awaitable, ec));
      std::size_t left = plan.oversize_bytes - plan.oversize_prefix.size() - plan.oversize_suffix.size();
      while (!ec && left > 0 && !stopping_) {
        const std::size_t n = std::min(left, filler_.size());
        co_await net::async_write(c->socket, net::buffer(filler_.data(), n),
                                  net::redirect_error(net::use_awaitable, ec));
        left -= n;
      }
      if (!ec && !stopping_) {
        co_await net::async_write(c->socket, net::buffer(plan.oversize_suffix),
                                  net::redirect_error(net::use_awaitable, ec));
      }
      co_return !ec && !plan.close;
    }
    if (plan.action == Plan::Action::kPause && r.chunked && !r.events.empty()) {
      out = head(r, std::nullopt, plan.close);
      append_chunk(out, r.events[0]);
      co_await net::async_write(c->socket, net::buffer(out), net::redirect_error(net::use_awaitable, ec));
      if (ec) co_return false;
      c->timer.expires_after(plan.pause);
      co_await c->timer.async_wait(net::redirect_error(net::use_awaitable, ec));
      if (stopping_) co_return false;
      out.clear();
      for (std::size_t i = 1; i < r.events.size(); ++i) append_chunk(out, r.events[i]);
      out += "0\r\n\r\n";
      co_await net::async_write(c->socket, net::buffer(out), net::redirect_error(net::use_awaitable, ec));
      co_return !ec && !plan.close;
    }
    const bool stall = plan.action == Plan::Action::kStall;
    const bool cut = plan.action == Plan::Action::kCut || stall;
    if (!r.chunked) {
      out = head(r, r.body.size(), plan.close || cut);
      out.append(r.body, 0, cut ? r.body.size() / 2 : r.body.size());
    } else {
      out = head(r, std::nullopt, plan.close || cut);
      // A cut stream stops after half its events, never reaching the final one.
      const std::size_t n = cut ? r.events.size() / 2 : r.events.size();
      for (std::size_t i = 0; i < n; ++i) append_chunk(out, r.events[i]);
      if (!cut) out += "0\r\n\r\n";
    }
    co_await net::async_write(c->socket, net::buffer(out), net::redirect_error(net::use_awaitable, ec));
    if (stall) co_await hold(c, plan.held_id);  // a failed write ends it at once
    co_return !ec && !cut && !plan.close;
  }

  // Reads (and drops) whatever comes until the client leaves or the server
  // stops; the client leaving is recorded in held_ entry `id`.
  net::awaitable<void> hold(std::shared_ptr<Connection> c, std::uint64_t id) {
    std::array<char, 1024> sink;
    error_code ec;
    while (!ec) {
      co_await c->socket.async_read_some(net::buffer(sink), net::redirect_error(net::use_awaitable, ec));
    }
    const auto now = std::chrono::steady_clock::now();
    // stop() shuts the socket down and closes it: the read then ends in an
    // abort, or in end-of-file when the reactor saw the shutdown first. Both
    // happen after stopping_ is set, so neither counts as the client leaving.
    if (stopping_ || ec == net::error::operation_aborted || ec == net::error::bad_descriptor) co_return;
    {
      std::lock_guard lock(mu_);
      const auto it = std::find_if(held_.begin(), held_.end(), [&](const Held& h) { return h.id == id; });
      if (it == held_.end()) co_return;  // forgotten by clear()
      it->connection.closed = now;
    }
    held_cv_.notify_all();
  }

  // Decides what `request` gets. Never throws: a bug in here answers 500.
  Plan handle(const http::request<http::string_body>& request) {
    const auto received_at = std::chrono::steady_clock::now();
    const std::uint64_t seq = ++seq_;
    ++request_count_;
    if (options_.record_requests) {
      ReceivedRequest rec;
      rec.method = std::string(request.method_string());
      rec.target = std::string(request.target());
      for (const auto& field : request) rec.headers.emplace_back(field.name_string(), field.value());
      rec.body = request.body();
      std::lock_guard lock(mu_);
      received_.push_back(std::move(rec));
    }
    Plan plan;
    plan.delay = options_.latency;
    const std::string_view target = request.target();
    const std::size_t question = target.find('?');
    const std::string_view path = target.substr(0, question);
    const std::string_view query = question == std::string_view::npos ? "" : target.substr(question + 1);
    const Route r = route(path, query);
    auto refuse = [&](UsageFormat format, int status, const std::string& message) {
      plan.reply = error_reply(fixtures_, format, status, message, seq);
      return plan;
    };
    if (!r.found) {
      return refuse(UsageFormat::kOpenAI, 404,
                    "Invalid URL (" + std::string(request.method_string()) + " " + std::string(path) + ")");
    }
    if (request.method() != http::verb::post) {
      return refuse(r.format, 405, "Method " + std::string(request.method_string()) + " not allowed; use POST");
    }
    if (r.format == UsageFormat::kAnthropic) {
      if (request["x-api-key"].empty()) return refuse(r.format, 401, "x-api-key header is required");
      if (request["anthropic-version"].empty()) return refuse(r.format, 401, "anthropic-version header is required");
    }
    try {
      const json body = json::parse(request.body(), nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        return refuse(r.format, 400, "The request body is not valid JSON: expected an object");
      }
      if (r.kind == Route::Kind::kEmbed) return embed(std::move(plan), r, body, seq);
      std::string model = r.model;
      if (r.format != UsageFormat::kGemini) {
        model = std::string(string_at(body, "model"));
        if (model.empty()) return refuse(r.format, 400, "model: Field required");
      }
      Facts facts = analyse(r.format, body, model);
      if (r.kind == Route::Kind::kCountTokens) return count_tokens(std::move(plan), facts, body, request, seq);
      if (const std::optional<Rejection> rejection = check_request(facts, body)) {
        return refuse(r.format, rejection->status, rejection->message);
      }
      if (r.format == UsageFormat::kGemini) facts.stream = r.stream;
      const std::optional<FaultSpec> fault = take_fault(model);
      if (fault && fault->kind == Fault::kOversizedBody) facts.tool_name.clear();  // padded inside the text
      Answer answer = answer_for(facts, request.body().size());
      if (scripts_.scripts(model)) {
        const std::optional<ScriptedAnswer> scripted = scripts_.answer(model, body);
        if (!scripted) return refuse(r.format, 500, "no scripted answer for this request to " + model);
        use_scripted(answer, facts, *scripted);
      }
      if (!fault) {
        plan.reply = render_answer(fixtures_, seq, facts, answer, r.gemini_sse);
        if (options_.stream_chunks > 0 && facts.format == UsageFormat::kOpenAI && facts.stream &&
            answer.answer.tool_name.empty()) {
          repeat_content_events(plan.reply.events, options_.stream_chunks);
        }
        return plan;
      }
      plan = apply(*fault, std::move(plan), facts, answer, seq, r.gemini_sse);
      if (plan.action == Plan::Action::kHang || plan.action == Plan::Action::kStall) {
        plan.held_id = track_held(fault->kind, model, received_at);
      }
      return plan;
    } catch (const std::exception& e) {
      return refuse(r.format, 500, std::string("fake provider bug: ") + e.what());
    }
  }

  // Anthropic's count_tokens: the input fields of a Messages body only
  // (anything else: "X: Extra inputs are not permitted"), messages required;
  // {"input_tokens": P} for the body's bytes B. A fault for the model applies
  // as to a call (the error ones are what a test wants).
  Plan count_tokens(Plan plan, const Facts& facts, const json& body, const http::request<http::string_body>& request,
                    std::uint64_t seq) {
    for (const auto& [key, value] : body.items()) {
      if (key != "model" && key != "messages" && key != "system" && key != "tools" && key != "tool_choice" &&
          key != "thinking" && key != "mcp_servers") {
        plan.reply = error_reply(fixtures_, facts.format, 400, key + ": Extra inputs are not permitted", seq);
        return plan;
      }
    }
    if (!body.contains("messages") || !body["messages"].is_array()) {
      plan.reply = error_reply(fixtures_, facts.format, 400, "messages: Field required", seq);
      return plan;
    }
    if (const std::optional<FaultSpec> fault = take_fault(facts.model)) {
      return apply(*fault, std::move(plan), facts, answer_for(facts, request.body().size()), seq, false);
    }
    const std::size_t bytes = request.body().size();
    plan.reply.status = 200;
    plan.reply.content_type = json_type(facts.format);
    plan.reply.body = json{{"input_tokens", std::max<std::size_t>(1, bytes / 4)}}.dump();
    return plan;
  }

  // Embeddings: OpenAI {model, input, encoding_format, dimensions, user}
  // (any other field: "Unrecognized request argument supplied: X"; an empty
  // input: "'$.input' is invalid."), Gemini {requests: [{model, content:
  // {parts: [{text}]}, outputDimensionality}]}. Each input's vector is
  // fake_embedding of its text (token ids: their JSON text); OpenAI reports
  // usage, Gemini none. Error faults and kHang apply as to a call.
  Plan embed(Plan plan, const Route& r, const json& body, std::uint64_t seq) {
    const bool gemini = r.format == UsageFormat::kGemini;
    const auto refuse = [&](const std::string& message) {
      plan.reply = error_reply(fixtures_, r.format, 400, message, seq);
      return plan;
    };
    std::vector<std::string> inputs;
    std::size_t dimensions = kFakeEmbeddingDimensions;
    std::string model = r.model;
    bool base64_asked = false;
    std::int64_t tokens = 0;
    if (!gemini) {
      for (const auto& [key, value] : body.items()) {
        if (key != "model" && key != "input" && key != "encoding_format" && key != "dimensions" && key != "user") {
          return refuse("Unrecognized request argument supplied: " + key);
        }
      }
      model = std::string(string_at(body, "model"));
      if (model.empty()) return refuse("you must provide a model parameter");
      const json* input = member(body, "input");
      const auto invalid = [&] { return refuse("'$.input' is invalid. Please check the API reference."); };
      if (input == nullptr) return invalid();
      const json items = input->is_array() && !input->empty() && !input->front().is_number() ? *input
                                                                                           : json::array({*input});
      for (const json& item : items) {
        if (item.is_string() && !item.get_ref<const std::string&>().empty()) {
          inputs.push_back(item.get<std::string>());
          tokens += static_cast<std::int64_t>(std::max<std::size_t>(1, inputs.back().size() / 4));
        } else if (item.is_array() && !item.empty()) {
          for (const json& id : item) {
            if (!id.is_number_unsigned()) return invalid();
          }
          inputs.push_back(item.dump());
          tokens += static_cast<std::int64_t>(item.size());
        } else {
          return invalid();
        }
      }
      const std::string_view format = string_at(body, "encoding_format");
      if (!format.empty() && format != "float" && format != "base64") {
        return refuse("Invalid value for 'encoding_format': must be 'float' or 'base64'.");
      }
      base64_asked = format == "base64";
      if (const json* d = member(body, "dimensions")) {
        if (!d->is_number_unsigned() || d->get<std::size_t>() == 0) return refuse("Invalid 'dimensions'.");
        dimensions = d->get<std::size_t>();
      }
    } else {
      const json* requests = member(body, "requests");
      if (requests == nullptr || !requests->is_array() || requests->empty()) {
        return refuse("* BatchEmbedContentsRequest.requests: contents is not specified");
      }
      for (const json& request : *requests) {
        if (string_at(request, "model") != "models/" + model) {
          return refuse("* BatchEmbedContentsRequest.model: batch request model must match the path's");
        }
        const json* content = member(request, "content");
        const json* parts = content != nullptr ? member(*content, "parts") : nullptr;
        std::string text;
        if (parts != nullptr && parts->is_array()) {
          for (const json& part : *parts) text += string_at(part, "text");
        }
        if (text.empty()) return refuse("* BatchEmbedContentsRequest.requests[].content: contents is not specified");
        inputs.push_back(std::move(text));
        if (const json* d = member(request, "outputDimensionality")) dimensions = d->get<std::size_t>();
      }
    }
    if (const std::optional<FaultSpec> fault = take_fault(model)) {
      Facts facts;
      facts.format = r.format;
      facts.model = model;
      return apply(*fault, std::move(plan), facts, Answer{}, seq, false);
    }
    json out;
    if (gemini) {
      out = {{"embeddings", json::array()}};
      for (const std::string& input : inputs) out["embeddings"].push_back({{"values", fake_embedding(input, dimensions)}});
    } else {
      json data = json::array();
      for (std::size_t i = 0; i < inputs.size(); ++i) {
        const std::vector<float> v = fake_embedding(inputs[i], dimensions);
        json embedding = v;
        if (base64_asked) {
          std::string bytes(v.size() * 4, '\0');
          std::memcpy(bytes.data(), v.data(), bytes.size());  // little-endian, as x86 and ARM are
          embedding = base64(bytes);
        }
        data.push_back({{"object", "embedding"}, {"index", i}, {"embedding", std::move(embedding)}});
      }
      out = {{"object", "list"},
             {"data", std::move(data)},
             {"model", model},
             {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}};
    }
    plan.reply.status = 200;
    plan.reply.content_type = json_type(r.format);
    plan.reply.body = out.dump();
    return plan;
  }

  Plan apply(const FaultSpec& fault, Plan plan, const Facts& facts, const Answer& answer, std::uint64_t seq,
             bool gemini_sse) {
    const bool anthropic = facts.format == UsageFormat::kAnthropic;
    switch (fault.kind) {
      case Fault::kSlowFirstByte:
        plan.delay += fault.delay;
        plan.reply = render_answer(fixtures_, seq, facts, answer, gemini_sse);
        break;
      case Fault::kHang:
        plan.action = Plan::Action::kHang;
        break;
      case Fault::kRateLimited: {
        static constexpr const char* kMessages[] = {
            "Rate limit reached for requests. Please try again later.",
            "This request would exceed your organization's rate limit. Please try again later.",
            "Resource has been exhausted (e.g. check quota)."};
        plan.reply = error_reply(fixtures_, facts.format, 429, kMessages[static_cast<int>(facts.format)], seq);
        plan.reply.retry_after_s = fault.retry_after_s;
        break;
      }
      case Fault::kServerError: {
        static constexpr const char* kMessages[] = {
            "The server had an error while processing your request. Sorry about that!", "Internal server error",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"};
        plan.reply = error_reply(fixtures_, facts.format, 500, kMessages[static_cast<int>(facts.format)], seq);
        break;
      }
      case Fault::kInvalidKey: {
        const std::string message = std::string("Incorrect API key provided: sk-upst\xE2\x80\xA6" "3a9c (also tried ") +
                                    kQuotedKey + " and AIzaSyAb...wxyz). You can find your API key in your account.";
        plan.reply = error_reply(fixtures_, facts.format, 401, message.c_str(), seq);
        break;
      }
      case Fault::kOverloaded: {
        static constexpr const char* kMessages[] = {"The engine is currently overloaded, please try again later",
                                                    "Overloaded", "The model is overloaded. Please try again later."};
        plan.reply =
            error_reply(fixtures_, facts.format, anthropic ? 529 : 503, kMessages[static_cast<int>(facts.format)], seq);
        break;
      }
      case Fault::kCutStream:
        plan.action = Plan::Action::kCut;
        plan.reply = render_answer(fixtures_, seq, facts, answer, gemini_sse);
        break;
      case Fault::kPauseStream:
        plan.action = Plan::Action::kPause;
        plan.pause = fault.delay;
        plan.reply = render_answer(fixtures_, seq, facts, answer, gemini_sse);
        break;
      case Fault::kStallStream:
        plan.action = Plan::Action::kStall;
        plan.reply = render_answer(fixtures_, seq, facts, answer, gemini_sse);
        break;
      case Fault::kMalformedJson: {
        Facts whole = facts;
        whole.stream = false;
        plan.reply = render_answer(fixtures_, seq, whole, answer, gemini_sse);
        plan.reply.body.resize(plan.reply.body.size() / 2);
        break;
      }
      case Fault::kOversizedBody: {
        // The answer with a marker for its text, then the marker's place filled to size.
        Answer marked = answer;
        marked.answer.text = std::string(kFillerMark);
        marked.unsplit = true;
        const Reply r = render_answer(fixtures_, seq, facts, marked, gemini_sse);
        std::string whole = r.body;
        if (r.chunked) {
          whole.clear();
          for (const std::string& e : r.events) whole += e;
        }
        const std::size_t at = whole.find(kFillerMark);
        plan.action = Plan::Action::kOversize;
        plan.reply = r;
        plan.reply.chunked = false;  // one huge body (or event) with a Content-Length
        plan.oversize_prefix = whole.substr(0, at);
        plan.oversize_suffix = whole.substr(at + kFillerMark.size());
        plan.oversize_bytes =
            std::max(fault.bytes, plan.oversize_prefix.size() + plan.oversize_suffix.size());
        break;
      }
      case Fault::kWrongContentType:
        plan.reply.content_type = "text/html";
        plan.reply.body = fixtures_.proxy_error_html;
        break;
    }
    return plan;
  }

  // A new held_ entry for a request read at `received`; its id.
  std::uint64_t track_held(Fault kind, const std::string& model, std::chrono::steady_clock::time_point received) {
    Held h;
    h.connection.fault = kind;
    h.connection.model = model;
    h.connection.received = received;
    {
      std::lock_guard lock(mu_);
      h.id = ++held_ids_;
      held_.push_back(h);
    }
    held_cv_.notify_all();
    return h.id;
  }

  std::optional<FaultSpec> take_fault(const std::string& model) {
    std::lock_guard lock(mu_);
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if (!it->model.empty() && it->model != model) continue;
      FaultSpec taken = *it;
      if (--it->times == 0) faults_.erase(it);
      return taken;
    }
    return std::nullopt;
  }

  FakeProviderOptions options_;
  AnswerScripts scripts_;  // options_.scripts_file's, read once at start
  Fixtures fixtures_;  // immutable once serving
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  const std::string filler_;  // kOversizedBody padding, written by reference

  std::atomic<std::uint64_t> seq_{0};
  std::atomic<std::size_t> request_count_{0};

  mutable std::mutex mu_;  // guards received_, faults_ and held_
  std::vector<ReceivedRequest> received_;
  std::deque<FaultSpec> faults_;
  std::vector<Held> held_;
  std::uint64_t held_ids_ = 0;  // the last Held::id given; never reused, so clear() cannot confuse them
  mutable std::condition_variable held_cv_;  // held_ grew, or an entry got `closed`

  std::mutex connections_mu_;  // guards connections_; stopping_ is set under it
  std::unordered_set<std::shared_ptr<Connection>> connections_;
  std::atomic<bool> stopping_{false};
  std::once_flag stopped_;
};

FakeProvider::FakeProvider(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FakeProvider::~FakeProvider() = default;

std::unique_ptr<FakeProvider> FakeProvider::start(FakeProviderOptions options) {
  return std::unique_ptr<FakeProvider>(new FakeProvider(std::make_unique<Impl>(std::move(options))));
}

std::uint16_t FakeProvider::port() const { return impl_->port(); }
std::string FakeProvider::base_url() const { return "http://127.0.0.1:" + std::to_string(impl_->port()); }
void FakeProvider::inject(FaultSpec fault) { impl_->inject(std::move(fault)); }
void FakeProvider::inject(Fault fault, int times, std::string model) {
  FaultSpec spec;
  spec.kind = fault;
  spec.times = times;
  spec.model = std::move(model);
  impl_->inject(std::move(spec));
}
std::vector<ReceivedRequest> FakeProvider::received() const { return impl_->received(); }
std::size_t FakeProvider::request_count() const { return impl_->request_count(); }
void FakeProvider::clear() { impl_->clear(); }
std::vector<HeldConnection> FakeProvider::held() const { return impl_->held(); }
bool FakeProvider::wait_held(std::size_t n, std::chrono::milliseconds timeout) const {
  return impl_->wait_held(n, timeout);
}
bool FakeProvider::wait_held_closed(std::size_t n, std::chrono::milliseconds timeout) const {
  return impl_->wait_held_closed(n, timeout);
}
void FakeProvider::stop() { impl_->stop(); }

}  // namespace switchboard::testing
