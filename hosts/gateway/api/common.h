// What the API shapes share (api/openai.cpp, api/anthropic.cpp, api/responses.cpp): request
// errors and field paths, null-as-absent member lookup, the strictness check
// on a request's fields, data: URLs, cache breakpoints, signatures tagged with
// their origin, the step: derived from the request, then metadata and
// headers, tool-call ids, and each shape's half of render_error and
// render_response (defined in api/openai.cpp and api/anthropic.cpp; the
// StreamWriter's halves are its private members). nlohmann::json may throw;
// each shape file catches json::exception at its entry points, and nothing
// here lets one out of the gateway library.
//
// The readers below are templates over the value they read: an nlohmann
// tree, or an element of simdjson's DOM read in place (json/node.h), with
// the same answers. A shape reads its body's DOM when simdjson took the text
// within the depth bound, and a tree otherwise (parse_bounded's verdicts).
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/api.h"
#include "api/json_read.h"
#include "json/node.h"

namespace switchboard::gateway::detail {

using nlohmann::json;
namespace jn = ::switchboard::json_node;

// The largest token count a request may name (max_tokens and the like), as
// parse_step_json bounds them.
constexpr std::int64_t kMaxTokens = 100'000'000;
// The deepest tool_depth a header or metadata may claim.
constexpr std::int64_t kMaxToolDepth = 1'000'000;

// What a parsing step returns: nullopt when it succeeded.
using MaybeError = std::optional<ApiError>;

// A 400 invalid_request_error; `param` is the offending field's path ("" = none).
inline ApiError invalid_request(std::string param, std::string message) {
  ApiError e;
  e.http_status = 400;
  e.type = "invalid_request_error";
  e.param = std::move(param);
  e.message = std::move(message);
  return e;
}

template <typename T>
ApiResult<T> failed(ApiError error) {
  ApiResult<T> r;
  r.error = std::move(error);
  return r;
}

// A field's path as the errors name it ("messages[2].content"), kept as a
// link to its parent's and its own key or index, and written out (str())
// only when an error names it: reading a request makes one for every field
// it reads, and almost every request is fine.
//
// A path refers to its parent and to its text without owning them: make one
// with at_key or at_index from a named path (a parameter, a local) that
// outlives it, never from a temporary (those overloads are deleted), and
// keep its text alive as long (a literal, or a key of the request's tree).
class JsonPath {
 public:
  JsonPath(const char* text) : text_(text) {}           // NOLINT: a root, as text
  JsonPath(std::string_view text) : text_(text) {}      // NOLINT
  JsonPath(const std::string& text) : text_(text) {}    // NOLINT

  std::string str() const {
    std::string out;
    append_to(out);
    return out;
  }
  operator std::string() const { return str(); }  // NOLINT: where an error takes its param
  bool empty() const { return parent_ == nullptr && text_.empty(); }

  // `parent`'s member `key`, or its item `index`: at_key and at_index.
  static JsonPath key_of(const JsonPath& parent, std::string_view key) { return JsonPath(&parent, key, kKey); }
  static JsonPath index_of(const JsonPath& parent, std::size_t index) { return JsonPath(&parent, {}, index); }

  friend std::string operator+(const JsonPath& path, std::string_view text) { return path.str().append(text); }
  friend std::string operator+(const JsonPath& path, const char* text) { return path.str().append(text); }

 private:
  static constexpr std::size_t kKey = static_cast<std::size_t>(-1);
  JsonPath(const JsonPath* parent, std::string_view text, std::size_t index)
      : parent_(parent), text_(text), index_(index) {}

  void append_to(std::string& out) const {
    if (parent_ != nullptr) parent_->append_to(out);
    if (index_ != kKey) {
      char digits[24];
      const char* const end = std::to_chars(digits, digits + sizeof digits, index_).ptr;
      out.append(1, '[').append(digits, static_cast<std::size_t>(end - digits)).append(1, ']');
      return;
    }
    if (parent_ != nullptr && !out.empty()) out += '.';  // a key of the root "" is the key alone
    out.append(text_);
  }

  const JsonPath* parent_ = nullptr;
  std::string_view text_;
  std::size_t index_ = kKey;
};

inline JsonPath at_key(const JsonPath& base, std::string_view key) { return JsonPath::key_of(base, key); }
inline JsonPath at_index(const JsonPath& base, std::size_t i) { return JsonPath::index_of(base, i); }
// A path made from a temporary would outlive it.
JsonPath at_key(JsonPath&& base, std::string_view key) = delete;
JsonPath at_index(JsonPath&& base, std::size_t i) = delete;

// Whether `text` is well-formed UTF-8 (no overlongs, surrogates or code
// points past U+10FFFF).
inline bool valid_utf8(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= text.size()) return false;  // cut short
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

// JSON text parsed with its nesting bounded (discarded when it is not JSON;
// an error only when too deep): containers deeper than
// `max_depth` (the body itself is 1) are never built, and the error names
// the field they are under: the path to them, cut after its first object
// member not in `structural` (the API's own containers, such as "messages"
// or "tools"), where free-form JSON (a schema, a tool's input) begins. One
// pass, not recursing: nlohmann's iterative SAX parser feeds a depth check
// and, behind it, nlohmann's own DOM builder, so the check stops the parse
// at the first container too deep before it is built (the tree is then safe
// to re-serialise: to_text recurses). Not nlohmann's callback parser: it
// rescans the enclosing container at each object's end, quadratic in a
// long messages array.
inline MaybeError parse_bounded(std::string_view body, int max_depth,
                                std::initializer_list<std::string_view> structural, json& out) {
  // Tracks the open containers and stops at the first one past the bound.
  class DepthCheck {
   public:
    DepthCheck(std::size_t limit, std::initializer_list<std::string_view> structural)
        : limit_(limit), structural_(structural) {}
    bool null() { return element(); }
    bool boolean(bool) { return element(); }
    bool number_integer(json::number_integer_t) { return element(); }
    bool number_unsigned(json::number_unsigned_t) { return element(); }
    bool number_float(json::number_float_t, const json::string_t&) { return element(); }
    bool string(json::string_t&) { return element(); }
    bool binary(json::binary_t&) { return element(); }
    bool start_object(std::size_t) { return open(false); }
    bool start_array(std::size_t) { return open(true); }
    bool key(json::string_t& key) {
      frames_.back().key = key;
      return true;
    }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
    // Set when a container went past the bound: the field it is under ("" = the body).
    const std::optional<std::string>& too_deep() const { return too_deep_; }

   private:
    struct Frame {
      bool array = false;
      std::size_t next = 0;  // an array's next element index
      std::string key;       // an object's current member
    };
    bool element() {
      if (!frames_.empty() && frames_.back().array) ++frames_.back().next;
      return true;
    }
    bool open(bool array) {
      element();
      if (frames_.size() == limit_) {
        too_deep_ = field();
        return false;
      }
      frames_.push_back(Frame{array, 0, {}});
      return true;
    }
    bool close() {
      frames_.pop_back();
      return true;
    }
    // The path to the innermost open container, cut as the comment above says.
    std::string field() const {
      std::string path;
      for (std::size_t i = 0; i < frames_.size() && i < 12; ++i) {
        const Frame& f = frames_[i];
        if (f.array) {
          if (path.empty()) break;  // the body is an array: no field to name
          path += "[" + std::to_string(f.next - 1) + "]";
          continue;
        }
        path += (path.empty() ? "" : ".") + f.key;
        bool known = false;
        for (std::string_view s : structural_) known = known || s == f.key;
        if (!known) break;
      }
      return path;
    }

    std::size_t limit_;
    std::initializer_list<std::string_view> structural_;
    std::vector<Frame> frames_;  // the containers open, root first, at most limit_
    std::optional<std::string> too_deep_;
  };
  // The depth check first, then nlohmann's DOM builder, event by event.
  class BoundedDom {
   public:
    BoundedDom(json& out, std::size_t limit, std::initializer_list<std::string_view> structural)
        : check_(limit, structural), dom_(out, /*allow_exceptions=*/false) {}
    bool null() { return check_.null() && dom_.null(); }
    bool boolean(bool v) { return check_.boolean(v) && dom_.boolean(v); }
    bool number_integer(json::number_integer_t v) { return check_.number_integer(v) && dom_.number_integer(v); }
    bool number_unsigned(json::number_unsigned_t v) { return check_.number_unsigned(v) && dom_.number_unsigned(v); }
    bool number_float(json::number_float_t v, const json::string_t& s) {
      return check_.number_float(v, s) && dom_.number_float(v, s);
    }
    bool string(json::string_t& v) { return check_.string(v) && dom_.string(v); }
    bool binary(json::binary_t& v) { return check_.binary(v) && dom_.binary(v); }
    bool start_object(std::size_t n) { return check_.start_object(n) && dom_.start_object(n); }
    bool start_array(std::size_t n) { return check_.start_array(n) && dom_.start_array(n); }
    bool key(json::string_t& k) { return check_.key(k) && dom_.key(k); }
    bool end_object() { return check_.end_object() && dom_.end_object(); }
    bool end_array() { return check_.end_array() && dom_.end_array(); }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) { return false; }
    const std::optional<std::string>& too_deep() const { return check_.too_deep(); }

   private:
    DepthCheck check_;
    nlohmann::detail::json_sax_dom_parser<json> dom_;
  };
  // The common case, read by simdjson; anything it does not take (invalid
  // JSON, nesting past the bound or kFastReadDepth) gets the exact verdict below.
  if (max_depth > 0 && read_json_within(body, static_cast<std::size_t>(max_depth), out)) return std::nullopt;
  out = json();
  BoundedDom parser(out, static_cast<std::size_t>(max_depth), structural);
  if (!json::sax_parse(body, &parser, json::input_format_t::json, /*strict=*/true)) {
    out = json(json::value_t::discarded);  // what was built before the stop is dropped
    if (const std::optional<std::string>& field = parser.too_deep()) {
      const std::string name = field->empty() ? "the request body" : *field;
      return invalid_request(*field, name + " nests deeper than " + std::to_string(max_depth) +
                                         " levels (max_json_depth)");
    }
  }
  return std::nullopt;
}

// A request body as simdjson's DOM, when simdjson takes it as an object
// nested at most `max_depth` deep: the common case, read in place by the
// readers below. nullopt for anything else, which parse_body then reads or
// refuses with nlohmann's verdicts. The DOM holds the thread's parser while
// it lives (json/read.h): drop it before the request's first wait.
inline std::optional<JsonDom> read_body_dom(std::string_view body, int max_depth) {
  if (max_depth <= 0) return std::nullopt;
  std::optional<JsonDom> dom = JsonDom::parse(body);
  if (!dom || !jn::is_object(dom->root()) || !nests_within(dom->root(), static_cast<std::size_t>(max_depth))) {
    return std::nullopt;
  }
  return dom;
}

// A request body: an object, nested at most `max_depth` deep (parse_bounded).
inline MaybeError parse_body(std::string_view body, int max_depth, std::initializer_list<std::string_view> structural,
                             json& out) {
  if (auto e = parse_bounded(body, max_depth, structural, out)) return e;
  if (out.is_discarded()) return invalid_request("", "the request body is not valid JSON");
  if (!out.is_object()) return invalid_request("", "the request body must be a JSON object");
  return std::nullopt;
}

// JSON text. Invalid UTF-8 (a client's message, a model's answer) becomes
// U+FFFD rather than an exception.
inline std::string to_text(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }
// The same of a DOM element (valid UTF-8: simdjson checked it).
inline std::string to_text(jn::Element value) { return jn::text_of(value); }

// The member `key` of `object`; none when absent or null, since the SDKs
// send null for "not given": a `const json*` of a tree, an optional element
// of a DOM (test it with `if (v)`, read it with `*v`).
template <typename Node>
auto member(const Node& object, std::string_view key) {
  auto v = jn::member(object, key);
  if (v && jn::is_null(*v)) v = {};
  return v;
}

// A required string member; its absence and a wrong type are errors naming `path`.
template <typename Node>
MaybeError read_string(const Node& object, std::string_view key, const JsonPath& path, std::string& out) {
  const auto v = member(object, key);
  if (!v) return invalid_request(path, path + " is required");
  if (!jn::is_string(*v)) return invalid_request(path, path + " must be a string");
  out.assign(jn::string_of(*v));
  return std::nullopt;
}

// An optional string member, left unchanged when absent.
template <typename Node>
MaybeError read_optional_string(const Node& object, std::string_view key, const JsonPath& path, std::string& out) {
  const auto v = member(object, key);
  if (!v) return std::nullopt;
  if (!jn::is_string(*v)) return invalid_request(path, path + " must be a string");
  out.assign(jn::string_of(*v));
  return std::nullopt;
}

// An optional boolean member, left unchanged when absent.
template <typename Node>
MaybeError read_optional_bool(const Node& object, std::string_view key, const JsonPath& path, bool& out) {
  const auto v = member(object, key);
  if (!v) return std::nullopt;
  if (!jn::is_bool(*v)) return invalid_request(path, path + " must be true or false");
  out = jn::bool_of(*v);
  return std::nullopt;
}

// A token count in [1, kMaxTokens].
template <typename Node>
MaybeError read_token_count(const Node& value, const JsonPath& path, std::optional<std::int64_t>& out) {
  if (!jn::is_integer(value) || (jn::is_unsigned(value) && jn::uint_of(value) > kMaxTokens) ||
      jn::int_of(value) < 1 || jn::int_of(value) > kMaxTokens) {
    return invalid_request(path, path + " must be an integer between 1 and " + std::to_string(kMaxTokens));
  }
  out = jn::int_of(value);
  return std::nullopt;
}

// A JSON object member kept as text (tool parameters); unchanged when absent.
template <typename Node>
MaybeError read_optional_object_text(const Node& object, std::string_view key, const JsonPath& path,
                                     std::string& out) {
  const auto v = member(object, key);
  if (!v) return std::nullopt;
  if (!jn::is_object(*v)) return invalid_request(path, path + " must be a JSON object");
  out = to_text(*v);
  return std::nullopt;
}

// An optional number member in [lo, hi], left unchanged when absent.
template <typename Node>
MaybeError read_optional_number(const Node& object, std::string_view key, const JsonPath& path, double lo,
                                double hi, std::optional<double>& out) {
  const auto v = member(object, key);
  if (!v) return std::nullopt;
  if (!jn::is_number(*v) || jn::double_of(*v) < lo || jn::double_of(*v) > hi) {
    // Whole bounds print as integers ("between 0 and 2"), as the APIs word them.
    const auto bound = [](double d) {
      return d == static_cast<double>(static_cast<std::int64_t>(d)) ? std::to_string(static_cast<std::int64_t>(d))
                                                                    : json(d).dump();
    };
    return invalid_request(path, path + " must be a number between " + bound(lo) + " and " + bound(hi));
  }
  out = jn::double_of(*v);
  return std::nullopt;
}

// An optional integer member in [lo, hi], left unchanged when absent.
template <typename Node>
MaybeError read_optional_integer(const Node& object, std::string_view key, const JsonPath& path, std::int64_t lo,
                                 std::int64_t hi, std::optional<std::int64_t>& out) {
  const auto v = member(object, key);
  if (!v) return std::nullopt;
  if (!jn::is_integer(*v) || (jn::is_unsigned(*v) && jn::uint_of(*v) > static_cast<std::uint64_t>(hi)) ||
      jn::int_of(*v) < lo || jn::int_of(*v) > hi) {
    return invalid_request(path, path + " must be an integer between " + std::to_string(lo) + " and " +
                                     std::to_string(hi));
  }
  out = jn::int_of(*v);
  return std::nullopt;
}

// Stop sequences: an array of strings, or (when `one_string_allowed`, as
// OpenAI's `stop` is) one string.
template <typename Node>
MaybeError read_stop_sequences(const Node& value, const JsonPath& path, bool one_string_allowed,
                               std::vector<std::string>& out) {
  if (one_string_allowed && jn::is_string(value)) {
    out.emplace_back(jn::string_of(value));
    return std::nullopt;
  }
  const auto error = [&] {
    return path + (one_string_allowed ? " must be a string or an array of strings" : " must be an array of strings");
  };
  if (!jn::is_array(value)) return invalid_request(path, error());
  for (const auto& s : jn::items(value)) {
    if (!jn::is_string(s)) return invalid_request(path, error());
    out.emplace_back(jn::string_of(s));
  }
  return std::nullopt;
}

// A field a shape refuses by name, and why (check_fields).
struct Refused {
  std::string_view name;
  std::string_view why;
};

// The strictness rule of api.h: each non-null member of `object` must be one
// of `handled` (read by the parser, or on the shape's allow-list of fields
// that do not change the answer); any other is a 400 naming it, with the
// reason `refused` gives for it, or a general one for a field the router
// does not know.
template <typename Node>
MaybeError check_fields(const Node& object, const JsonPath& path, std::initializer_list<std::string_view> handled,
                        std::initializer_list<Refused> refused = {}) {
  MaybeError error;
  jn::for_each_member(object, [&](std::string_view key, const auto& value) {
    if (jn::is_null(value)) return true;
    bool known = false;
    for (std::string_view h : handled) known = known || h == key;
    if (known) return true;
    const JsonPath field = at_key(path, key);
    for (const Refused& r : refused) {
      if (r.name == key) {
        error = invalid_request(field, field + " is not supported: " + std::string(r.why));
        return false;
      }
    }
    error = invalid_request(field, field + " is not supported: the router cannot pass it on, and dropping it "
                                           "could change the answer");
    return false;
  });
  return error;
}

// Same-protocol passthrough of a request's top level (Passthrough in
// switchboard/request.h): like check_fields, `handled` members are the
// parser's and `refused` ones a 400 with their reason; `hints` (fields that
// do not change the answer) go to `out.hints_json`, and every other non-null
// member to `out.fields_json`, verbatim, tagged with the client's `api`, for
// a model of that API (any other model is refused by the field's name).
template <typename Node>
MaybeError collect_unmodeled(const Node& object, WireApi api, std::initializer_list<std::string_view> handled,
                             std::initializer_list<std::string_view> hints, std::initializer_list<Refused> refused,
                             Passthrough& out) {
  json fields = json::object();
  json hinted = json::object();
  const auto listed = [](std::initializer_list<std::string_view> names, std::string_view key) {
    for (std::string_view n : names) {
      if (n == key) return true;
    }
    return false;
  };
  MaybeError error;
  jn::for_each_member(object, [&](std::string_view key, const auto& value) {
    if (jn::is_null(value) || listed(handled, key)) return true;
    for (const Refused& r : refused) {
      if (r.name == key) {
        error = invalid_request(std::string(key), std::string(key) + " is not supported: " + std::string(r.why));
        return false;
      }
    }
    (listed(hints, key) ? hinted : fields)[std::string(key)] = jn::tree_of(value);
    return true;
  });
  if (error) return error;
  out.api = api;
  const auto text = [](const json& j) { return j.empty() ? std::string() : j.dump(-1, ' ', false, json::error_handler_t::replace); };
  out.fields_json = text(fields);
  out.hints_json = text(hinted);
  return std::nullopt;
}

// A "data:<media type>;base64,<data>" URL as a base64 source; false when
// `url` is not one (parameters other than base64 are skipped: "charset=...").
inline bool parse_data_url(std::string_view url, MediaSource& out) {
  constexpr std::string_view kScheme = "data:";
  if (url.substr(0, kScheme.size()) != kScheme) return false;
  const std::size_t comma = url.find(',');
  if (comma == std::string_view::npos) return false;
  std::string_view head = url.substr(kScheme.size(), comma - kScheme.size());
  const std::size_t semi = head.find(';');
  const std::string_view params = semi == std::string_view::npos ? std::string_view() : head.substr(semi);
  if (params.size() < 7 || params.substr(params.size() - 7) != ";base64") return false;
  out.kind = MediaSource::Kind::kBase64;
  out.media_type = std::string(head.substr(0, semi));
  out.data = std::string(url.substr(comma + 1));
  return true;
}

// `text` base64-encoded (standard alphabet, padded).
inline std::string base64_encode(std::string_view text) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((text.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < text.size(); i += 3) {
    const auto n = (static_cast<std::uint32_t>(static_cast<unsigned char>(text[i])) << 16) |
                   (static_cast<std::uint32_t>(static_cast<unsigned char>(text[i + 1])) << 8) |
                   static_cast<unsigned char>(text[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> shift) & 0x3F];
  }
  if (i < text.size()) {
    auto n = static_cast<std::uint32_t>(static_cast<unsigned char>(text[i])) << 16;
    if (i + 1 < text.size()) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(text[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 0x3F];
    out += kAlphabet[(n >> 12) & 0x3F];
    out += i + 1 < text.size() ? kAlphabet[(n >> 6) & 0x3F] : '=';
    out += '=';
  }
  return out;
}

// A `cache_control` member ({"type":"ephemeral"} with an optional "ttl" of
// "5m" or "1h", as Anthropic writes it) into `out`; unchanged when absent.
template <typename Node>
MaybeError read_cache_control(const Node& object, const JsonPath& path, std::optional<CacheBreakpoint>& out) {
  const auto cache = member(object, "cache_control");
  if (!cache) return std::nullopt;
  const JsonPath cpath = at_key(path, "cache_control");
  if (!jn::is_object(*cache)) return invalid_request(cpath, cpath + " must be an object");
  if (auto e = check_fields(*cache, cpath, {"type", "ttl"})) return e;
  std::string type;
  if (auto e = read_string(*cache, "type", at_key(cpath, "type"), type)) return e;
  if (type != "ephemeral") {
    return invalid_request(at_key(cpath, "type"), at_key(cpath, "type") + " must be ephemeral (got '" + type + "')");
  }
  CacheBreakpoint breakpoint;
  if (auto e = read_optional_string(*cache, "ttl", at_key(cpath, "ttl"), breakpoint.ttl)) return e;
  if (!breakpoint.ttl.empty() && breakpoint.ttl != "5m" && breakpoint.ttl != "1h") {
    return invalid_request(at_key(cpath, "ttl"), at_key(cpath, "ttl") + " must be 5m or 1h (got '" +
                                                     breakpoint.ttl + "')");
  }
  out = std::move(breakpoint);
  return std::nullopt;
}

// A thinking block's signature (or a redacted block's data) as the client
// shapes carry it. The provider whose answers a shape's signatures come
// from (`native`: "anthropic" for both shapes, Claude's thinking being the
// only signed reasoning either carries) writes its own text; any other
// origin is written "<origin>:<signature>", which no provider's base64
// contains, so the block comes back from the client with its origin and
// is never sent to a provider that did not make it.
inline std::string client_signature(const ContentBlock& block, std::string_view native) {
  if (block.signature.empty() || block.origin.empty() || block.origin == native) return block.signature;
  return block.origin + ":" + block.signature;
}

// The inverse of client_signature: sets the block's signature and origin.
// An empty signature has no origin.
inline void read_client_signature(std::string text, std::string_view native, ContentBlock& block) {
  block.origin.clear();
  if (text.empty()) {
    block.signature.clear();
    return;
  }
  const std::size_t colon = text.find(':');
  bool tagged = colon != std::string::npos && colon > 0;
  for (std::size_t i = 0; tagged && i < colon; ++i) {
    const char c = text[i];
    tagged = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  }
  if (tagged) {
    block.origin = text.substr(0, colon);
    block.signature = text.substr(colon + 1);
  } else {
    block.origin = std::string(native);
    block.signature = std::move(text);
  }
}

// Case-insensitive ASCII comparison, for header names.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Sets meta `name` to `value`, replacing an earlier value: names are unique.
inline void set_meta(Step& step, std::string name, MetaValue value) {
  for (auto& [n, v] : step.meta) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  step.meta.emplace_back(std::move(name), std::move(value));
}

// "true"/"1" and "false"/"0": how a header (or an OpenAI metadata string) says a flag.
inline std::optional<bool> parse_flag(std::string_view text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return std::nullopt;
}

// Decimal digits in [0, kMaxToolDepth].
inline std::optional<std::int64_t> parse_depth(std::string_view text) {
  if (text.empty() || text.size() > 7) return std::nullopt;
  std::int64_t n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n <= kMaxToolDepth ? std::optional<std::int64_t>(n) : std::nullopt;
}

// The request's `metadata` object into the step: "role", "untrusted_input"
// (a boolean, or "true"/"false"/"1"/"0": OpenAI metadata values are strings)
// and "tool_depth" (an integer or its digits) set those fields; every other
// key, except those in `skip`, goes to step.meta with its JSON type.
// The longest session id a client may name (header or metadata): the
// engine's session book keeps it per session.
constexpr std::size_t kMaxSessionIdBytes = 256;

inline bool valid_session_id(std::string_view id) {
  return !id.empty() && id.size() <= kMaxSessionIdBytes && valid_utf8(id);
}

template <typename Node>
MaybeError apply_metadata(const Node& metadata, std::initializer_list<std::string_view> skip, Step& step) {
  if (!jn::is_object(metadata)) return invalid_request("metadata", "metadata must be an object");
  const JsonPath metadata_root("metadata");
  MaybeError error;
  jn::for_each_member(metadata, [&](std::string_view key, const auto& value) {
    const JsonPath path = at_key(metadata_root, key);
    bool skipped = false;
    for (std::string_view s : skip) skipped = skipped || key == s;
    if (skipped || jn::is_null(value)) return true;
    if (key == "role") {
      if (!jn::is_string(value) || jn::string_of(value).empty()) {
        error = invalid_request(path, path + " must be a non-empty string");
        return false;
      }
      step.role = jn::string_of(value);
    } else if (key == "untrusted_input") {
      std::optional<bool> flag;
      if (jn::is_bool(value)) flag = jn::bool_of(value);
      if (jn::is_string(value)) flag = parse_flag(jn::string_of(value));
      if (!flag) {
        error = invalid_request(path, path + " must be true or false (or \"true\", \"false\", \"1\", \"0\")");
        return false;
      }
      step.untrusted_input = *flag;
    } else if (key == "session_id") {
      if (!jn::is_string(value) || !valid_session_id(jn::string_of(value))) {
        error = invalid_request(path, path + " must be a non-empty UTF-8 string of at most " +
                                          std::to_string(kMaxSessionIdBytes) + " bytes");
        return false;
      }
      step.session_id = jn::string_of(value);
    } else if (key == "tool_depth") {
      std::optional<std::int64_t> depth;
      if (jn::is_unsigned(value) && jn::uint_of(value) <= kMaxToolDepth) depth = jn::int_of(value);
      if (jn::is_string(value)) depth = parse_depth(jn::string_of(value));
      if (!depth) {
        error = invalid_request(path, path + " must be a whole number between 0 and " + std::to_string(kMaxToolDepth));
        return false;
      }
      step.tool_depth = *depth;
    } else if (jn::is_string(value)) {
      set_meta(step, std::string(key), std::string(jn::string_of(value)));
    } else if (jn::is_bool(value)) {
      set_meta(step, std::string(key), jn::bool_of(value));
    } else if (jn::is_unsigned(value) && jn::uint_of(value) > static_cast<std::uint64_t>(INT64_MAX)) {
      set_meta(step, std::string(key), jn::double_of(value));  // beyond int64: a float, not a wrapped negative
    } else if (jn::is_integer(value)) {
      set_meta(step, std::string(key), jn::int_of(value));
    } else if (jn::is_number(value)) {
      set_meta(step, std::string(key), jn::double_of(value));
    } else {
      error = invalid_request(path, path + " must be a string, number or boolean");
      return false;
    }
    return true;
  });
  return error;
}

// The x-switchboard-* headers into the step, after the metadata: they win.
// x-switchboard-agent sets step.agent (an agent naming itself rather than
// going by its system prompt's fingerprint); x-switchboard-session sets
// step.session_id (the conversation the request belongs to, in place of the
// hash of its opening: derive_step.h); x-switchboard-meta-NAME sets
// meta NAME (lowercased, as HTTP names are case-insensitive) to the
// header's value as a string.
inline MaybeError apply_headers(const Headers& headers, Step& step) {
  constexpr std::string_view kMetaPrefix = "x-switchboard-meta-";
  for (const auto& [name, value] : headers) {
    if (iequals(name, "x-switchboard-role")) {
      if (value.empty()) return invalid_request("", "header x-switchboard-role must not be empty");
      if (!valid_utf8(value)) return invalid_request("", "header x-switchboard-role is not valid UTF-8");
      step.role = std::string(value);
    } else if (iequals(name, "x-switchboard-untrusted-input")) {
      const std::optional<bool> flag = parse_flag(value);
      if (!flag) return invalid_request("", "header x-switchboard-untrusted-input must be true, false, 1 or 0");
      step.untrusted_input = *flag;
    } else if (iequals(name, "x-switchboard-tool-depth")) {
      const std::optional<std::int64_t> depth = parse_depth(value);
      if (!depth) {
        return invalid_request("", "header x-switchboard-tool-depth must be a whole number between 0 and " +
                                       std::to_string(kMaxToolDepth));
      }
      step.tool_depth = *depth;
    } else if (iequals(name, "x-switchboard-agent")) {
      if (value.empty()) return invalid_request("", "header x-switchboard-agent must not be empty");
      if (!valid_utf8(value)) return invalid_request("", "header x-switchboard-agent is not valid UTF-8");
      step.agent = std::string(value);
    } else if (iequals(name, "x-switchboard-session")) {
      if (!valid_session_id(value)) {
        return invalid_request("", "header x-switchboard-session must be a non-empty UTF-8 string of at most " +
                                       std::to_string(kMaxSessionIdBytes) + " bytes");
      }
      step.session_id = std::string(value);
    } else if (name.size() > kMetaPrefix.size() && iequals(name.substr(0, kMetaPrefix.size()), kMetaPrefix)) {
      std::string key(name.substr(kMetaPrefix.size()));
      for (char& c : key) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
      if (!valid_utf8(value)) return invalid_request("", "header " + std::string(name) + " is not valid UTF-8");
      set_meta(step, std::move(key), std::string(value));
    }
  }
  return std::nullopt;
}

// Fills in each tool result's tool_name from the call it answers, where the
// request did not give it (Anthropic never does; Gemini needs it).
inline void fill_tool_names(std::vector<Message>& messages) {
  for (std::size_t i = 0; i < messages.size(); ++i) {
    for (ContentBlock& result : messages[i].content) {
      if (result.type != ContentBlock::Type::kToolResult || !result.tool_name.empty()) continue;
      for (std::size_t j = i + 1; j-- > 0 && result.tool_name.empty();) {
        for (const ContentBlock& use : messages[j].content) {
          if (use.type == ContentBlock::Type::kToolUse && use.tool_call.id == result.tool_use_id) {
            result.tool_name = use.tool_call.name;
          }
        }
      }
    }
  }
}

// The family of the client that sent `user_agent`, for step.meta.client:
// "openai-node", "openai-python" (and "openai-<language>" for the other
// OpenAI SDKs), "anthropic-sdk", "ai-sdk" (Vercel), "langchain", else the
// product token before the first '/' ("curl", "claude-cli"...), lowercased;
// "" when the header is absent or empty. Wrappers first: LangChain and the
// AI SDK may run on an OpenAI or Anthropic SDK whose token also shows.
inline std::string client_family(std::string_view user_agent) {
  std::string ua;
  for (char c : user_agent.substr(0, 256)) ua += c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  const auto has = [&](std::string_view part) { return ua.find(part) != std::string::npos; };
  if (has("langchain")) return "langchain";
  if (has("ai-sdk/") || ua.rfind("ai/", 0) == 0) return "ai-sdk";
  if (ua.rfind("anthropic/", 0) == 0) return "anthropic-sdk";
  if (ua.rfind("openai/", 0) == 0) {
    std::string language;
    for (char c : ua.substr(7)) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) break;
      language += c;
    }
    if (language == "js") language = "node";
    return language.empty() ? "openai" : "openai-" + language;
  }
  // The product token (RFC 9110: token characters), before '/' or a space.
  std::string product;
  for (char c : ua) {
    const bool token = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!token || product.size() == 64) break;
    product += c;
  }
  return product;
}

// What both parsers do once the body is read: tool results get their tool
// names (fill_tool_names), then the step is derived from the request
// (derive_step, with `workload`'s untrusted_tools when it is given), with
// role "chat" and step.meta.client from the User-Agent (client_family);
// then the request's metadata (when given) and the x-switchboard-* headers
// override each field they set, headers last.
// The request's `tools` array, each read by `read_tool(tool, path, spec)`
// (each shape has its own tool shape), appended to `out`.
template <typename Node, typename ReadTool>
MaybeError read_tools(const Node& j, ReadTool&& read_tool, std::vector<ToolSpec>& out) {
  const auto tools = member(j, "tools");
  if (!tools) return std::nullopt;
  if (!jn::is_array(*tools)) return invalid_request("tools", "tools must be an array");
  const JsonPath tools_root("tools");
  std::size_t i = 0;
  for (const auto& item : jn::items(*tools)) {
    ToolSpec tool;
    if (auto e = read_tool(item, at_index(tools_root, i++), tool)) return e;
    out.push_back(std::move(tool));
  }
  return std::nullopt;
}

// The request's `messages`, a non-empty array, each read by
// `read_message(message, path, out)` (each shape has its own message shape)
// and appended to `out`.
template <typename Node, typename ReadMessage>
MaybeError read_messages(const Node& j, ReadMessage&& read_message, std::vector<Message>& out) {
  const auto messages = member(j, "messages");
  if (!messages) return invalid_request("messages", "messages is required");
  if (!jn::is_array(*messages) || !jn::first(*messages)) {
    return invalid_request("messages", "messages must be a non-empty array");
  }
  const JsonPath messages_root("messages");
  std::size_t i = 0;
  for (const auto& message : jn::items(*messages)) {
    if (auto e = read_message(message, at_index(messages_root, i++), out)) return e;
  }
  return std::nullopt;
}

// OpenAI's tool_choice words (both OpenAI shapes): none, auto, required; false for any other.
inline bool read_choice_mode(std::string_view mode, ToolChoice& out) {
  if (mode == "none") {
    out.mode = ToolChoice::Mode::kNone;
  } else if (mode == "auto") {
    out.mode = ToolChoice::Mode::kAuto;
  } else if (mode == "required") {
    out.mode = ToolChoice::Mode::kRequired;
  } else {
    return false;
  }
  return true;
}

// A client's explicit effort: on the request, and as a level for the
// gateway's decision. "none" and "minimal" ask for no reasoning: Reasoning
// has no such level, so the decision keeps its own (the step's
// needs_chain_of_thought is derived from the request: derive_step).
inline void set_effort(Effort effort, ParsedRequest& r) {
  r.call.request.reasoning.effort = effort;
  if (effort == Effort::kNone || effort == Effort::kMinimal) return;
  r.reasoning = effort == Effort::kLow ? Reasoning::kLow : effort == Effort::kMedium ? Reasoning::kMedium
                                                                                    : Reasoning::kHigh;
}

// What both parsers do once the body is read: the step's role defaults to
// "chat", then metadata (when given) and headers, tool names, input tokens.
// `metadata` is a member() result: a `const json*` or an optional element.
template <typename MaybeNode>
MaybeError finish_request(const MaybeNode& metadata, std::initializer_list<std::string_view> skip_metadata,
                          const Headers& headers, ParsedRequest& request, const Workload* workload = nullptr) {
  fill_tool_names(request.call.request.messages);
  Step& step = request.call.step;
  step = derive_step(request.call.request, workload);
  step.role = "chat";
  for (const auto& [name, value] : headers) {
    if (!iequals(name, "user-agent")) continue;
    if (std::string family = client_family(value); !family.empty()) set_meta(step, "client", std::move(family));
  }
  if (metadata) {
    if (auto e = apply_metadata(*metadata, skip_metadata, step)) return e;
  }
  if (auto e = apply_headers(headers, step)) return e;
  return std::nullopt;
}

// `text` in base64url (RFC 4648 section 5: "-" and "_", no padding).
inline std::string base64url_encode(std::string_view text) {
  std::string out = base64_encode(text);
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

// The inverse of base64url_encode; nullopt when `text` is not base64url.
inline std::optional<std::string> base64url_decode(std::string_view text) {
  const auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
  };
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t bits = 0;
  int held = 0;
  for (char c : text) {
    const int v = value(c);
    if (v < 0) return std::nullopt;
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    held += 6;
    if (held >= 8) {
      held -= 8;
      out.push_back(static_cast<char>((bits >> held) & 0xFF));
    }
  }
  return out;
}

// Marks the signature a tool call's id carries (tool_call_id).
constexpr std::string_view kIdSignatureMark = "__sig_";

// A tool call's id as the client sees it: the provider's, or, when it gave
// none (Gemini), "call_<response id>_<index>" (`index`: the call's place
// among the answer's tool calls): unique across the turns of a
// conversation, since the client sends it back with the result.
//
// A signature on the call (Gemini's thoughtSignature, which Gemini requires
// back on the call of the next turn) has no field in either client shape, so
// the id carries it: "<id>__sig_<origin>_<base64url of the signature>". The
// client sends the id back verbatim on the call and on its result, and
// read_tool_call_id splits it again; the id stays within Anthropic's
// [a-zA-Z0-9_-] pattern.
inline std::string tool_call_id(const ToolCall& call, std::string_view signature, std::string_view origin,
                                std::string_view response_id, std::size_t index) {
  std::string id = !call.id.empty() ? call.id : "call_" + std::string(response_id) + "_" + std::to_string(index);
  if (!signature.empty() && !origin.empty()) {
    id += std::string(kIdSignatureMark) + std::string(origin) + "_" + base64url_encode(signature);
  }
  return id;
}
// The id of a tool use block (its call, signature and origin).
inline std::string tool_call_id(const ContentBlock& b, std::string_view response_id, std::size_t index) {
  return tool_call_id(b.tool_call, b.signature, b.origin, response_id, index);
}

// The inverse of tool_call_id: the id the provider gave (or the one made
// up), with the signature and its origin when the id carries one. An id
// whose mark is not followed by "<origin>_<base64url>" is taken whole.
struct SplitId {
  std::string id;
  std::string signature;
  std::string origin;
};
inline SplitId read_tool_call_id(std::string id) {
  SplitId out;
  const std::size_t mark = id.find(kIdSignatureMark);
  if (mark != std::string::npos) {
    const std::string_view rest = std::string_view(id).substr(mark + kIdSignatureMark.size());
    const std::size_t underscore = rest.find('_');
    if (underscore != std::string_view::npos && underscore > 0) {
      std::optional<std::string> signature = base64url_decode(rest.substr(underscore + 1));
      if (signature && !signature->empty()) {
        out.origin = std::string(rest.substr(0, underscore));
        out.signature = std::move(*signature);
        id.resize(mark);
      }
    }
  }
  out.id = std::move(id);
  return out;
}

// What the shapes' stream writers share: each block of the answer they
// started (keyed by its canonical index, registered on its first chunk), the
// tool calls counted in order, and a tool call's signature held from before
// its start so the call's id can carry it.
class BlockStreamWriter : public StreamWriter {
 protected:
  // What the writer sent of one block of the answer.
  struct Sent {
    StreamChunk::Kind kind = StreamChunk::Kind::kText;  // its first chunk's kind
    int stream_index = 0;   // its place in the shape's own stream (Anthropic content block, Responses item)
    int tool_index = -1;    // a tool call's place among the answer's tool calls
    // A thinking block's signature as sent (Anthropic); a tool call's: the
    // signature its id carries, held from before its start.
    std::string signature;
    std::string origin;     // a tool call: who made `signature`
    std::string text;       // Responses: the block's text so far (its done events repeat it)
    std::string item_id;    // Responses: the output item's id
    std::string call_id;    // Responses: a tool call's id as the client sees it
    std::string name;       // Responses: a tool call's function
  };

  BlockStreamWriter(const ParsedRequest& request, std::string id, std::int64_t created, std::string model)
      : id_(std::move(id)),
        created_(created),
        model_(std::move(model)),
        max_json_depth_(request.max_json_depth) {}

  // The block with canonical index `index`, registered on its first chunk
  // (taking the signature held for it); `first` says whether it was new.
  Sent& sent(int index, StreamChunk::Kind kind, bool& first) {
    auto [it, inserted] = sent_.try_emplace(index);
    first = inserted;
    if (!inserted) return it->second;
    it->second.kind = kind;
    if (auto held = held_signatures_.find(index); held != held_signatures_.end()) {
      it->second.signature = std::move(held->second.first);
      it->second.origin = std::move(held->second.second);
      held_signatures_.erase(held);
    }
    if (kind == StreamChunk::Kind::kToolCallStart || kind == StreamChunk::Kind::kToolArguments) {
      it->second.tool_index = next_tool_index_++;
    }
    return it->second;
  }
  // Keeps a signature that came before its block's first chunk (a tool call's).
  void hold_signature(const StreamChunk& chunk) {
    if (chunk.text.empty() || sent_.count(chunk.index) != 0) return;
    auto& [signature, origin] = held_signatures_[chunk.index];
    signature += chunk.text;
    origin = std::string(chunk.origin);
  }

  std::string id_;
  std::int64_t created_;
  std::string model_;
  int max_json_depth_;         // the request's: bounds the tool arguments re-serialised
  std::map<int, Sent> sent_;   // by canonical index
  std::map<int, std::pair<std::string, std::string>> held_signatures_;  // by canonical index: signature, origin
  int next_tool_index_ = 0;    // tool calls started
};

// Each shape's stream writer and whole answer (api/openai.cpp,
// api/responses.cpp, api/anthropic.cpp).
std::unique_ptr<StreamWriter> make_responses_stream_writer(const ParsedRequest& request, std::string id,
                                                           std::int64_t created, std::string model);
std::string responses_response(const ParsedRequest& request, const StepResult& result, const std::string& model,
                               const std::string& id, std::int64_t created);
std::unique_ptr<StreamWriter> make_openai_stream_writer(const ParsedRequest& request, std::string id,
                                                        std::int64_t created, std::string model);
std::unique_ptr<StreamWriter> make_anthropic_stream_writer(const ParsedRequest& request, std::string id,
                                                           std::int64_t created, std::string model);

// parse_openai_chat once the body is parsed: its DOM (read_body_dom) or,
// when simdjson did not take it, its tree (parse_body), read alike (the
// tests hold the two to the same answers).
ApiResult<ParsedRequest> read_openai_chat(jn::Element body, const Headers& headers, int max_json_depth,
                                          const Workload* workload);
ApiResult<ParsedRequest> read_openai_chat(const json& body, const Headers& headers, int max_json_depth,
                                          const Workload* workload);

// parse_anthropic_messages (`count_only`: parse_anthropic_count_tokens) the same way.
ApiResult<ParsedRequest> read_anthropic_messages(jn::Element body, const Headers& headers, int max_json_depth,
                                                 bool count_only, const Workload* workload);
ApiResult<ParsedRequest> read_anthropic_messages(const json& body, const Headers& headers, int max_json_depth,
                                                 bool count_only, const Workload* workload);

// parse_openai_responses the same way.
ApiResult<ParsedRequest> read_openai_responses(jn::Element body, const Headers& headers, int max_json_depth,
                                               const PreviousResponses& previous, const Workload* workload);
ApiResult<ParsedRequest> read_openai_responses(const json& body, const Headers& headers, int max_json_depth,
                                               const PreviousResponses& previous, const Workload* workload);

// Each shape's half of render_error and render_response (api/openai.cpp,
// api/anthropic.cpp). `model` is the model named in the answer.
std::string openai_error(const ApiError& error);
std::string openai_response(const ParsedRequest& request, const StepResult& result, const std::string& model,
                            const std::string& id, std::int64_t created);
std::string anthropic_error(const ApiError& error);
std::string anthropic_response(const ParsedRequest& request, const StepResult& result, const std::string& model,
                               const std::string& id);

}  // namespace switchboard::gateway::detail
