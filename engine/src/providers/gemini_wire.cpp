// Gemini generateContent (POST {endpoint}/models/{model_id}:generateContent;
// streamed: :streamGenerateContent?alt=sse, which sends each chunk as one
// SSE `data:` event). The key goes in `x-goog-api-key`, never in the URL.
//
// What happens to each field of a ModelRequest (request.h). "Refused" means
// build_request returns Status::upstream("cannot take ...") so the
// dispatcher falls back to another model; "invalid" means invalid_argument.
//
// Messages
//  - "system" messages: their text blocks become `systemInstruction.parts`,
//    one text part each. Any other block there is refused (Gemini's
//    systemInstruction holds text).
//  - "user" and "tool" messages are `user` turns, "assistant" ones `model`
//    turns; consecutive turns of one role are merged (the results of
//    parallel calls must share one turn).
//  - text -> {text}; empty text without a signature is left out (Gemini
//    rejects empty parts). On a model turn, a kText block with a Gemini
//    signature gets it back as the part's `thoughtSignature`.
//  - image / document / audio: base64 -> inlineData {mimeType, data}
//    (invalid without a media_type); a URL -> fileData {fileUri, mimeType
//    when given}; a file id -> fileData {fileUri} when Gemini made it ("files/x"
//    becomes the endpoint's files URI), refused when another provider did.
//    A document's title goes as a text part just before it (Gemini parts have
//    no title). An image's `detail` becomes generationConfig.mediaResolution
//    (low -> MEDIA_RESOLUTION_LOW, high -> MEDIA_RESOLUTION_HIGH; Gemini sets
//    it per request, so the highest asked for applies to every image; "auto"
//    sends nothing).
//  - tool use (model turn) -> functionCall {name, args, id when set}, with its
//    Gemini signature as the part's `thoughtSignature`. A call in the current
//    turn (after the last user message that is not only tool results) that
//    Gemini did not make (origin not "gemini": another provider, or a client
//    that kept no origin) gets Gemini's documented placeholder signature
//    "skip_thought_signature_validator", without which Gemini 3 rejects the
//    request; gemini-1.x / 2.x models get none. Gemini's own unsigned calls
//    (the second and later of parallel calls) go back as they came.
//  - tool result (user or tool message) -> functionResponse {name, id when
//    set, response}. `name` is tool_name, else the name of the call with that
//    id earlier in the conversation, else refused. `response` is the result
//    text's JSON object when it is one, else {"result": text}; with is_error
//    it is {"error": that object or text}. Text blocks are joined with "\n".
//    A functionResponse holds no media, so the result's images, documents and
//    audio follow as inlineData/fileData parts right after the turn's run of
//    functionResponse parts.
//  - thinking: Gemini does not read thought text back (previous thoughts
//    reach the model only through signatures), so a thinking block is left
//    out, except one signed by Gemini, which goes back as received:
//    {text, thought: true, thoughtSignature} (Gemini's docs: return every
//    signed part as it came). Redacted thinking (Anthropic's) is left out.
//  - refusal (model turn) -> a text part: the words the model said.
//  - opaque: Gemini's own item is sent back as the part it was; another
//    provider's is left out.
//  - cache breakpoints (blocks and tools): Gemini caches prompt prefixes
//    implicitly, so they are dropped; cached tokens come back in usage.
// Tools
//  - functionDeclarations {name, description when set, parameters}: the JSON
//    Schema translated to Gemini's OpenAPI subset (SchemaTranslator below). A
//    tool with no parameters (an object with no properties) sends none:
//    Gemini rejects an OBJECT without properties; one that takes free-form
//    arguments (additionalProperties and no properties) is refused, and so
//    is a schema that is not an object. An opaque tool made for
//    Gemini ({"googleSearch": {}}...) is sent as its own Tool; another
//    provider's is refused.
//  - strict: Gemini validates calls against the schema in mode VALIDATED, so
//    a strict tool with tool_choice auto or unset sends mode VALIDATED.
//  - tool_choice -> toolConfig.functionCallingConfig.mode: auto -> AUTO
//    (VALIDATED with a strict tool), none -> NONE, required -> ANY, named ->
//    ANY + allowedFunctionNames [name]. required or named with no function,
//    or a name that is not a declared function, is invalid.
//  - parallel_tool_calls: true or unset sends nothing (Gemini may answer with
//    several calls); false is refused when the model may call a function
//    (Gemini has no way to limit an answer to one call).
// generationConfig
//  - temperature, topP, topK, stopSequences (more than 5 refused), seed
//    (refused outside 32 bits), presencePenalty, frequencyPenalty;
//    logprobs -> responseLogprobs, top_logprobs -> logprobs (and
//    responseLogprobs). sampling.user: Gemini has no end-user field; not sent.
//  - max_output_tokens -> maxOutputTokens only when given, clamped to the
//    model's max_output_tokens.
//  - output_format: JSON object -> responseMimeType "application/json"; JSON
//    schema -> that + responseSchema (translated; its name becomes the
//    schema's title and its description the schema's description when the
//    schema has none; Gemini always follows the schema, so strict needs
//    nothing). A schema that is a free-form object sends no responseSchema
//    (JSON mode is exactly "any object").
//  - reasoning -> thinkingConfig.thinkingBudget: budget_tokens if set (0 =
//    off), else the effort (none -> 0, minimal -> low/2 but at least 128,
//    low/medium/high -> the model's table, xhigh -> 2*high), else the rules'
//    level (kDefault sends nothing). The budget counts inside the output cap:
//    at most cap-1 (or the model's max_output_tokens - 1). A budget above 0
//    also sends includeThoughts: true so thought summaries come back.
//  - counted_input_tokens, expected_output_tokens and bounds are not sent.
//
// The answer (candidates[0]; the others are ignored)
//  - parts in order, one block each: {text, thought: true} -> thinking;
//    text -> text (an empty one only when it carries a signature);
//    functionCall -> tool use (id "" unless the part has one, args as text);
//    inlineData without a signature -> image / audio / document by mimeType;
//    any other part -> an opaque block holding the part. A part's
//    thoughtSignature becomes that block's signature. Every block has origin
//    "gemini".
//  - finishReason (kept verbatim in raw_stop_reason): STOP -> end_turn
//    (tool_use when the answer has a call; Gemini does not say whether a
//    stop sequence ended it), MAX_TOKENS -> max_tokens, SAFETY, RECITATION,
//    BLOCKLIST, PROHIBITED_CONTENT, SPII and IMAGE_* -> content_filter,
//    anything else (MALFORMED_FUNCTION_CALL, OTHER...) -> other. A prompt
//    blocked outright (promptFeedback.blockReason, no candidates) is
//    content_filter with the block reason as raw.
//  - logprobsResult -> logprobs_json; modelVersion -> model.
// Streams: each chunk's parts arrive as StreamChunks in order. Text and
// thought parts extend the last block when it is of the same kind (one part
// is streamed in pieces), unless both carry a signature; a signature (often
// on a last, empty text part) becomes a kSignature chunk for that block,
// whatever its type. A functionCall arrives whole: its kSignature, then
// kToolCallStart, then its arguments as one kToolArguments chunk. Opaque
// parts are delivered whole (kOpaque); media parts are kept in the answer
// without a chunk. The chunk with a
// finishReason is the last; its usageMetadata holds the whole call's counts.
// logprobsResult arrays of successive chunks are concatenated.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "switchboard/usage.h"
#include "providers/wire_common.h"
#include "providers/wire_format.h"

namespace switchboard {

namespace {

using wire::json;
using Type = ContentBlock::Type;

constexpr const char* kOrigin = "gemini";
// Gemini's documented placeholder for a function call it did not make.
constexpr const char* kSkipSignature = "skip_thought_signature_validator";
// The smallest thinking budget effort "minimal" maps to (Gemini 2.5 Pro's floor).
constexpr std::int64_t kMinThinkingBudget = 128;
constexpr std::size_t kMaxStopSequences = 5;

const char* type_name(Type t) {
  switch (t) {
    case Type::kText: return "text";
    case Type::kImage: return "image";
    case Type::kDocument: return "document";
    case Type::kAudio: return "audio";
    case Type::kToolUse: return "tool use";
    case Type::kToolResult: return "tool result";
    case Type::kThinking: return "thinking";
    case Type::kRedactedThinking: return "redacted thinking";
    case Type::kRefusal: return "refusal";
    case Type::kOpaque: return "opaque";
  }
  return "unknown";
}

// "a text block", "an image block"...
std::string a_block(Type t) {
  const std::string name = type_name(t);
  return (name == "image" || name == "opaque" ? "an " : "a ") + name + " block";
}

bool is_media(Type t) { return t == Type::kImage || t == Type::kDocument || t == Type::kAudio; }

bool gemini_signed(const ContentBlock& b) { return b.origin == kOrigin && !b.signature.empty(); }

// ---- JSON Schema -> Gemini's Schema (an OpenAPI 3.0 subset) ----------------
//
// Kept: type, format, title, description, nullable, enum (strings), default,
// example, properties, required, propertyOrdering, items, anyOf, minItems,
// maxItems, minLength, maxLength, pattern, minProperties, maxProperties,
// minimum, maximum.
// Translated: type names in lower case; a type list -> its one non-null
// type + nullable (several types -> anyOf, each branch with its type's
// keywords); "null" in an enum or an anyOf -> nullable (an anyOf left with
// one schema is merged in); const -> a one-value enum; oneOf -> anyOf;
// examples -> example (the first); a local $ref (#/$defs/X,
// #/definitions/X, any #/ pointer) -> the schema it names, inlined, its
// siblings winning; allOf of one schema -> merged in.
// Removed (Gemini rejects them as unknown fields; the shape stays):
// additionalProperties, patternProperties, unevaluatedProperties,
// propertyNames, dependentRequired, dependentSchemas, $schema, $id, $anchor,
// $comment, $defs, definitions, uniqueItems, contains, minContains,
// maxContains, exclusiveMinimum, exclusiveMaximum, multipleOf, readOnly,
// writeOnly, deprecated, contentEncoding, contentMediaType, if/then/else,
// not, and any other keyword not kept above.
// Refused: a recursive or non-local $ref, allOf of several schemas, a
// non-string enum or const, tuples (prefixItems, items as a list), boolean
// schemas, a nested object with no properties (Gemini's OBJECT needs them),
// and schemas too deep or large to inline.
class SchemaTranslator {
 public:
  SchemaTranslator(const json& root, std::string what) : root_(root), what_(std::move(what)) {}

  Result<json> translate() { return clean(root_, "", 0); }

 private:
  static constexpr int kMaxDepth = 48;
  static constexpr int kMaxNodes = 4000;

  Status refuse(const std::string& path, const std::string& why) const {
    return Status::upstream("cannot take " + what_ + " (" + (path.empty() ? "" : path + ": ") + why + ")");
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  // `node` with its $ref replaced by the schema it names (siblings win).
  Result<json> expand_ref(const json& node, const std::string& path, std::string* ref_out) {
    const auto ref = node.find("$ref");
    if (!ref->is_string() || !ref->get<std::string>().starts_with("#")) {
      return refuse(path, "a $ref outside the schema");
    }
    *ref_out = ref->get<std::string>();
    if (std::find(refs_.begin(), refs_.end(), *ref_out) != refs_.end()) {
      return refuse(path, "a recursive $ref " + *ref_out + "; Gemini schemas cannot refer to themselves");
    }
    const json* target = nullptr;
    try {
      const json::json_pointer pointer(ref_out->substr(1));
      if (root_.contains(pointer)) target = &root_.at(pointer);
    } catch (const json::exception&) {
      target = nullptr;
    }
    if (target == nullptr || !target->is_object()) return refuse(path, "a $ref " + *ref_out + " that names no schema");
    json merged = *target;
    for (const auto& [key, value] : node.items()) {
      if (key != "$ref") merged[key] = value;
    }
    return merged;
  }

  Result<json> clean(const json& node, const std::string& path, int depth) {
    if (depth > kMaxDepth || ++nodes_ > kMaxNodes) return refuse(path, "a schema too deep or too large to inline");
    if (!node.is_object()) return refuse(path, "a schema that is not an object");

    if (node.contains("$ref")) {
      std::string ref;
      Result<json> merged = expand_ref(node, path, &ref);
      if (!merged.ok()) return merged.status();
      refs_.push_back(ref);
      Result<json> out = clean(*merged, path, depth + 1);
      refs_.pop_back();
      return out;
    }
    if (const auto all_of = node.find("allOf"); all_of != node.end()) {
      if (!all_of->is_array() || all_of->size() != 1 || !(*all_of)[0].is_object()) {
        return refuse(path, "allOf of several schemas");
      }
      json merged = (*all_of)[0];
      for (const auto& [key, value] : node.items()) {
        if (key != "allOf") merged[key] = value;
      }
      return clean(merged, path, depth + 1);
    }

    json out = json::object();
    bool nullable = false;
    if (const auto n = node.find("nullable"); n != node.end() && n->is_boolean()) nullable = n->get<bool>();

    std::vector<std::string> types;
    if (const auto t = node.find("type"); t != node.end()) {
      const json list = t->is_array() ? *t : json::array({*t});
      for (const json& one : list) {
        if (!one.is_string()) return refuse(path, "a type that is not a name");
        std::string name = one.get<std::string>();  // Gemini takes either case; JSON Schema's is lower
        std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
        if (name == "null" && list.size() > 1) {
          nullable = true;
        } else {
          types.push_back(std::move(name));
        }
      }
    }

    auto enum_values = [&](const json& values, const char* what) -> Status {
      json kept = json::array();
      for (const json& v : values) {
        if (v.is_null()) {
          nullable = true;
        } else if (v.is_string()) {
          kept.push_back(v);
        } else {
          return refuse(path, std::string(what) + " of non-string values (Gemini enums are strings)");
        }
      }
      if (!kept.empty()) out["enum"] = std::move(kept);
      return Status();
    };
    if (const auto e = node.find("enum"); e != node.end()) {
      if (!e->is_array()) return refuse(path, "an enum that is not a list");
      if (Status s = enum_values(*e, "an enum"); !s.ok()) return s;
    }
    if (const auto c = node.find("const"); c != node.end()) {
      if (Status s = enum_values(json::array({*c}), "a const"); !s.ok()) return s;
    }

    const auto any_of = node.find("anyOf");
    const auto one_of = node.find("oneOf");
    if (any_of != node.end() && one_of != node.end()) return refuse(path, "both anyOf and oneOf");
    if (const auto branches = any_of != node.end() ? any_of : one_of; branches != node.end()) {
      if (!branches->is_array()) return refuse(path, "anyOf that is not a list");
      json kept = json::array();
      for (std::size_t i = 0; i < branches->size(); ++i) {
        const json& branch = (*branches)[i];
        if (branch.is_object() && branch.size() == 1 && branch.value("type", json()) == "null") {
          nullable = true;
          continue;
        }
        Result<json> cleaned = clean(branch, join(path, "anyOf[" + std::to_string(i) + "]"), depth + 1);
        if (!cleaned.ok()) return cleaned.status();
        kept.push_back(std::move(*cleaned));
      }
      if (kept.size() == 1) {
        for (auto& [key, value] : kept[0].items()) out[key] = std::move(value);  // merged below: the node's own win
      } else if (!kept.empty()) {
        out["anyOf"] = std::move(kept);
      }
    }

    if (const auto p = node.find("properties"); p != node.end()) {
      if (!p->is_object()) return refuse(path, "properties that are not an object");
      json properties = json::object();
      for (const auto& [name, schema] : p->items()) {
        Result<json> cleaned = clean(schema, join(path, "properties." + name), depth + 1);
        if (!cleaned.ok()) return cleaned.status();
        properties[name] = std::move(*cleaned);
      }
      out["properties"] = std::move(properties);
    }
    if (node.contains("prefixItems")) return refuse(path, "a tuple (prefixItems)");
    if (const auto items = node.find("items"); items != node.end()) {
      if (!items->is_object()) return refuse(path, "items that are not one schema");
      Result<json> cleaned = clean(*items, join(path, "items"), depth + 1);
      if (!cleaned.ok()) return cleaned.status();
      out["items"] = std::move(*cleaned);
    }
    for (const char* key : {"format", "title", "description", "pattern", "default", "example", "required",
                            "propertyOrdering", "minItems", "maxItems", "minLength", "maxLength", "minProperties",
                            "maxProperties", "minimum", "maximum"}) {
      if (const auto v = node.find(key); v != node.end()) out[key] = *v;
    }
    if (const auto examples = node.find("examples");
        examples != node.end() && !out.contains("example") && examples->is_array() && !examples->empty()) {
      out["example"] = (*examples)[0];
    }

    if (types.size() == 1) {
      out["type"] = types[0];
    } else if (types.size() > 1) {
      if (out.contains("anyOf")) return refuse(path, "both a list of types and anyOf");
      out = split_types(std::move(out), types);
    }
    if (nullable) out["nullable"] = true;

    if (!path.empty() && out.value("type", "") == "object" && !has_properties(out)) {
      return refuse(path, "an object with no properties (Gemini's OBJECT schemas need them)");
    }
    return out;
  }

  // `node` of several types as anyOf, one branch per type holding the
  // keywords that apply to it; the common ones stay on `node`.
  static json split_types(json node, const std::vector<std::string>& types) {
    static const std::map<std::string, std::vector<std::string>> kByType = {
        {"object", {"properties", "required", "propertyOrdering", "minProperties", "maxProperties"}},
        {"array", {"items", "minItems", "maxItems"}},
        {"string", {"enum", "format", "pattern", "minLength", "maxLength"}},
        {"number", {"format", "minimum", "maximum"}},
        {"integer", {"format", "minimum", "maximum"}},
    };
    json branches = json::array();
    std::set<std::string> moved;
    for (const std::string& type : types) {
      json branch = {{"type", type}};
      if (auto it = kByType.find(type); it != kByType.end()) {
        for (const std::string& key : it->second) {
          if (node.contains(key)) {
            branch[key] = node[key];
            moved.insert(key);
          }
        }
      }
      branches.push_back(std::move(branch));
    }
    for (const std::string& key : moved) node.erase(key);
    node["anyOf"] = std::move(branches);
    return node;
  }

  static bool has_properties(const json& schema) {
    const auto p = schema.find("properties");
    return p != schema.end() && p->is_object() && !p->empty();
  }

  const json& root_;
  const std::string what_;
  std::vector<std::string> refs_{"#"};  // the schemas being inlined: the root, then each $ref
  int nodes_ = 0;
};

bool free_form_object(const json& cleaned) {
  if (cleaned.value("type", "") != "object") return false;
  const auto p = cleaned.find("properties");
  return p == cleaned.end() || !p->is_object() || p->empty();
}

// ---- request ----------------------------------------------------------------

// Gemini's contents: turns of one role merged, and the media of tool results
// held back until the turn's run of functionResponse parts ends.
class ContentsBuilder {
 public:
  void add(const char* role, json part) {
    open(role);
    if (!part.contains("functionResponse")) flush();
    turns_.back().parts.push_back(std::move(part));
  }
  void defer(const char* role, json part) {
    open(role);
    turns_.back().deferred.push_back(std::move(part));
  }
  json finish() {
    flush();
    json contents = json::array();
    for (Turn& t : turns_) contents.push_back({{"role", t.role}, {"parts", std::move(t.parts)}});
    return contents;
  }

 private:
  struct Turn {
    std::string role;
    json parts = json::array();
    json deferred = json::array();
  };
  void open(const char* role) {
    if (!turns_.empty() && turns_.back().role == role) return;
    flush();
    turns_.push_back(Turn{role});
  }
  void flush() {
    if (turns_.empty()) return;
    for (json& p : turns_.back().deferred) turns_.back().parts.push_back(std::move(p));
    turns_.back().deferred = json::array();
  }
  std::vector<Turn> turns_;
};

// Whether `model_id` names a model that needs a signature on every function
// call of the current turn (Gemini 3 and later; unknown names too).
bool needs_call_signatures(const std::string& model_id) {
  return model_id.find("gemini-1") == std::string::npos && model_id.find("gemini-2") == std::string::npos;
}

std::string block_reason(const json& body) {
  if (const json* feedback = wire::object_at(body, "promptFeedback")) return wire::string_at(*feedback, "blockReason");
  return "";
}

StopReason stop_reason_of(const std::string& raw, bool has_tool_use) {
  if (raw == "STOP" || raw.empty()) return has_tool_use ? StopReason::kToolUse : StopReason::kEndTurn;
  if (raw == "MAX_TOKENS") return StopReason::kMaxTokens;
  if (raw == "SAFETY" || raw == "RECITATION" || raw == "BLOCKLIST" || raw == "PROHIBITED_CONTENT" || raw == "SPII" ||
      raw.starts_with("IMAGE_")) {
    return StopReason::kContentFilter;
  }
  return StopReason::kOther;  // MALFORMED_FUNCTION_CALL, OTHER, LANGUAGE, UNEXPECTED_TOOL_CALL...
}

// ---- answers ----------------------------------------------------------------

// An answer's blocks, built part by part (whole or streamed), with the
// chunks a stream delivers.
class AnswerBuilder {
 public:
  // Adds `part`. `stream`: a text part may continue the last block (a part
  // streamed in pieces); chunks go to `on_chunk` when it is set.
  void add(const json& part, bool stream, const ChunkHandler& on_chunk) {
    if (!part.is_object()) return;
    const std::string signature = wire::string_at(part, "thoughtSignature");
    if (const auto text = part.find("text"); text != part.end() && text->is_string()) {
      const Type type = part.value("thought", false) ? Type::kThinking : Type::kText;
      const std::string piece = text->get<std::string>();
      ContentBlock* last = blocks_.empty() ? nullptr : &blocks_.back();
      const bool extend = stream && last != nullptr && last->type == type &&
                          !(!signature.empty() && !last->signature.empty());
      if (!extend) {
        if (piece.empty() && signature.empty()) return;
        blocks_.push_back(block(type));
      }
      ContentBlock& b = blocks_.back();
      b.text += piece;
      if (!signature.empty()) b.signature = signature;
      const int index = static_cast<int>(blocks_.size()) - 1;
      if (on_chunk && !piece.empty()) {
        on_chunk(StreamChunk::of(type == Type::kThinking ? StreamChunk::Kind::kThinking : StreamChunk::Kind::kText,
                                 index, piece));
      }
      emit_signature(signature, index, on_chunk);
      return;
    }
    if (const json* call = wire::object_at(part, "functionCall")) {
      ContentBlock b = block(Type::kToolUse);
      const auto args = call->find("args");
      b.tool_call = {wire::string_at(*call, "id"), wire::string_at(*call, "name"),
                     args != call->end() && !args->is_null() ? wire::to_text(*args) : "{}"};
      b.signature = signature;
      blocks_.push_back(std::move(b));
      const int index = static_cast<int>(blocks_.size()) - 1;
      const ToolCall& c = blocks_.back().tool_call;
      emit_signature(signature, index, on_chunk);  // before the start, so the call can carry it
      if (on_chunk) {
        on_chunk(StreamChunk::tool_call_start(index, c.id, c.name));
        on_chunk(StreamChunk::of(StreamChunk::Kind::kToolArguments, index, c.arguments_json));
      }
      return;
    }
    const json* inline_data = wire::object_at(part, "inlineData");
    if (inline_data != nullptr && signature.empty()) {
      const std::string mime = wire::string_at(*inline_data, "mimeType");
      ContentBlock b = block(mime.starts_with("image/")   ? Type::kImage
                             : mime.starts_with("audio/") ? Type::kAudio
                                                          : Type::kDocument);
      b.source = {MediaSource::Kind::kBase64, mime, wire::string_at(*inline_data, "data")};
      blocks_.push_back(std::move(b));
      return;
    }
    ContentBlock b = block(Type::kOpaque);  // executableCode, codeExecutionResult, fileData, signed media...
    b.opaque_json = wire::to_text(part);
    blocks_.push_back(std::move(b));
    if (on_chunk) {
      on_chunk(StreamChunk::of(StreamChunk::Kind::kOpaque, static_cast<int>(blocks_.size()) - 1,
                               blocks_.back().opaque_json, kOrigin));
    }
  }

  std::vector<ContentBlock>& blocks() { return blocks_; }

  bool has_tool_use() const {
    return std::any_of(blocks_.begin(), blocks_.end(), [](const ContentBlock& b) { return b.type == Type::kToolUse; });
  }

 private:
  static ContentBlock block(Type type) {
    ContentBlock b;
    b.type = type;
    b.origin = kOrigin;
    return b;
  }
  static void emit_signature(const std::string& signature, int index, const ChunkHandler& on_chunk) {
    if (on_chunk && !signature.empty()) on_chunk(StreamChunk::of(StreamChunk::Kind::kSignature, index, signature, kOrigin));
  }
  std::vector<ContentBlock> blocks_;
};

// The first candidate, or nullptr.
const json* first_candidate(const json& body) {
  const json* candidates = wire::array_at(body, "candidates");
  if (candidates == nullptr || candidates->empty() || !(*candidates)[0].is_object()) return nullptr;
  return &(*candidates)[0];
}

const json* parts_of(const json& candidate) {
  const json* content = wire::object_at(candidate, "content");
  return content != nullptr ? wire::array_at(*content, "parts") : nullptr;
}

// `more` (a chunk's logprobsResult) folded into `into`: lists concatenated,
// numbers added, anything else replaced.
void merge_logprobs(json& into, const json& more) {
  if (into.is_null()) {
    into = more;
    return;
  }
  for (const auto& [key, value] : more.items()) {
    json& slot = into[key];
    if (slot.is_array() && value.is_array()) {
      for (const json& v : value) slot.push_back(v);
    } else if (slot.is_number() && value.is_number()) {
      slot = slot.get<double>() + value.get<double>();
    } else {
      slot = value;
    }
  }
}

Status error_status(const json& error, const std::string& prefix) {
  const int code = error.value("code", 0);
  const std::string what = prefix + wire::describe_error(error);
  return code == 429 || code >= 500 ? Status::unavailable(what) : Status::upstream(what);
}

class GeminiStreamDecoder final : public StreamDecoder {
 public:
  explicit GeminiStreamDecoder(std::string model_id) { response_.model = std::move(model_id); }

  Status on_event(const SseEvent& event, const ChunkHandler& on_chunk) override {
    if (done_) return Status();
    try {
      json value = read_json(event.data);
      if (value.is_array() && value.size() == 1) value = value[0];  // errors come wrapped
      if (!value.is_object()) return Status::upstream("stream event: not a JSON object");
      if (const json* error = wire::object_at(value, "error")) return error_status(*error, "stream error: ");
      if (std::string model = wire::string_at(value, "modelVersion"); !model.empty()) response_.model = std::move(model);
      if (const json* usage = wire::object_at(value, "usageMetadata")) usage_ = *usage;
      const json* candidate = first_candidate(value);
      if (candidate == nullptr) {
        if (std::string blocked = block_reason(value); !blocked.empty()) {
          response_.stop_reason = StopReason::kContentFilter;
          response_.raw_stop_reason = std::move(blocked);
          done_ = true;
        }
        return Status();
      }
      if (const json* parts = parts_of(*candidate)) {
        for (const json& part : *parts) answer_.add(part, /*stream=*/true, on_chunk);
      }
      if (const json* logprobs = wire::object_at(*candidate, "logprobsResult")) merge_logprobs(logprobs_, *logprobs);
      if (std::string reason = wire::string_at(*candidate, "finishReason"); !reason.empty()) {
        response_.stop_reason = stop_reason_of(reason, answer_.has_tool_use());
        response_.raw_stop_reason = std::move(reason);
        done_ = true;
      }
      return Status();
    } catch (const json::exception& e) {
      return Status::upstream(std::string("stream event: ") + e.what());
    }
  }

  bool done() const override { return done_; }

  Result<ModelResponse> finish() override {
    if (!done_) return Status::unavailable("stream ended before its final event");
    if (usage_.is_null()) return Status::upstream("stream carried no usageMetadata");
    Result<Usage> usage = wire::usage_or_upstream(UsageFormat::kGemini, json{{"usageMetadata", usage_}});
    if (!usage.ok()) return usage.status();
    response_.usage = *usage;
    response_.content = std::move(answer_.blocks());
    if (!logprobs_.is_null()) response_.logprobs_json = wire::to_text(logprobs_);
    return std::move(response_);
  }

 private:
  ModelResponse response_;
  AnswerBuilder answer_;
  json usage_;     // the latest chunk's usageMetadata
  json logprobs_;  // logprobsResult of every chunk so far
  bool done_ = false;
};

class GeminiWire final : public WireFormat {
 public:
  GeminiWire(const ModelSpec& model, std::string api_key)
      : model_id_(model.model_id.empty() ? model.name : model.model_id),
        endpoint_(model.endpoint),
        base_url_(wire::join_url(model.endpoint, "/models/" + model_id_)),
        api_key_(std::move(api_key)),
        budgets_(model.thinking_budget),
        max_output_tokens_(model.max_output_tokens) {}

  Result<HttpRequest> build_request(const ModelRequest& request, bool stream) const override {
    try {
      if (Status s = wire::refuse_message_names(request.messages, "Gemini"); !s.ok()) return s;
      json body = json::object();
      std::string media_resolution;
      if (Status s = add_contents(request, body, media_resolution); !s.ok()) return s;
      if (Status s = add_tools(request, body); !s.ok()) return s;
      json config = json::object();
      if (Status s = add_generation_config(request, config); !s.ok()) return s;
      if (!media_resolution.empty()) config["mediaResolution"] = media_resolution;
      if (!config.empty()) body["generationConfig"] = std::move(config);

      HttpRequest http;
      http.url = base_url_ + (stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
      http.headers.emplace_back("Content-Type", "application/json");
      http.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
      if (Status s = wire::add_passthrough(request.passthrough, WireApi::kNone, "Gemini's generateContent", body,
                                           http.headers);
          !s.ok()) {
        return s;
      }
      if (!api_key_.empty()) http.headers.emplace_back("x-goog-api-key", api_key_);
      http.body = wire::to_text(body);
      return http;
    } catch (const json::exception& e) {
      return Status::internal(std::string("building the request: ") + e.what());
    }
  }

  Result<ModelResponse> parse_response(std::string_view body) const override {
    return wire::read_response(body, UsageFormat::kGemini, [&](const json& j, ModelResponse& r) -> Status {
      r.model = wire::string_at(j, "modelVersion");
      if (r.model.empty()) r.model = model_id_;
      const json* candidate = first_candidate(j);
      if (candidate == nullptr) {
        r.raw_stop_reason = block_reason(j);
        if (r.raw_stop_reason.empty()) return Status::upstream("body has no 'candidates'");
        r.stop_reason = StopReason::kContentFilter;
        return Status();
      }
      AnswerBuilder answer;
      if (const json* parts = parts_of(*candidate)) {
        for (const json& part : *parts) answer.add(part, /*stream=*/false, nullptr);
      }
      r.raw_stop_reason = wire::string_at(*candidate, "finishReason");
      r.stop_reason = stop_reason_of(r.raw_stop_reason, answer.has_tool_use());
      r.content = std::move(answer.blocks());
      if (const json* logprobs = wire::object_at(*candidate, "logprobsResult")) r.logprobs_json = wire::to_text(*logprobs);
      return Status();
    });
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override {
    return std::make_unique<GeminiStreamDecoder>(model_id_);
  }

 private:
  // A media block as an inlineData or fileData part.
  Result<json> media_part(const ContentBlock& b, const std::string& where) const {
    const MediaSource& s = b.source;
    switch (s.kind) {
      case MediaSource::Kind::kBase64:
        if (s.media_type.empty()) {
          return Status::invalid_argument(where + ": a base64 " + type_name(b.type) + " needs its media_type");
        }
        return json{{"inlineData", {{"mimeType", s.media_type}, {"data", s.data}}}};
      case MediaSource::Kind::kUrl: {
        json file = {{"fileUri", s.data}};
        if (!s.media_type.empty()) file["mimeType"] = s.media_type;
        return json{{"fileData", std::move(file)}};
      }
      case MediaSource::Kind::kFileId: {
        if (b.origin != kOrigin) {
          return Status::upstream("cannot take a file id from " + (b.origin.empty() ? "another provider" : b.origin) +
                                  " in " + where + " (a file id is good only with the provider that made it)");
        }
        json file = {{"fileUri", s.data.starts_with("files/") ? wire::join_url(endpoint_, "/" + s.data) : s.data}};
        if (!s.media_type.empty()) file["mimeType"] = s.media_type;
        return json{{"fileData", std::move(file)}};
      }
    }
    return Status::invalid_argument(where + ": unknown media source");
  }

  // Notes an image's detail in `resolution`, generationConfig.mediaResolution.
  static Status note_detail(const ContentBlock& b, const std::string& where, std::string& resolution) {
    if (b.type != Type::kImage || b.detail.empty() || b.detail == "auto") return Status();
    if (b.detail != "low" && b.detail != "high") {
      return Status::invalid_argument(where + ": unknown image detail '" + b.detail + "'");
    }
    if (b.detail == "high" || resolution.empty()) {
      resolution = b.detail == "high" ? "MEDIA_RESOLUTION_HIGH" : "MEDIA_RESOLUTION_LOW";
    }
    return Status();
  }

  // The parts of one media block: its title (documents), then the media.
  Status add_media(const ContentBlock& b, const std::string& where, json& parts, std::string& resolution) const {
    if (Status s = note_detail(b, where, resolution); !s.ok()) return s;
    Result<json> part = media_part(b, where);
    if (!part.ok()) return part.status();
    if (b.type == Type::kDocument && !b.title.empty()) parts.push_back({{"text", b.title}});
    parts.push_back(std::move(*part));
    return Status();
  }

  // A tool result as a functionResponse part, with its media in `media`.
  Status tool_result(const ContentBlock& b, const std::string& where,
                     const std::map<std::string, std::string>& call_names, json& part, json& media,
                     std::string& resolution) const {
    std::string name = b.tool_name;
    if (name.empty()) {
      if (auto it = call_names.find(b.tool_use_id); it != call_names.end()) name = it->second;
    }
    if (name.empty()) {
      return Status::upstream("cannot take the tool result in " + where +
                              " without its tool_name (Gemini's functionResponse names its function)");
    }
    std::string text;
    bool first = true;
    for (const ContentBlock& c : b.content) {
      if (c.type == Type::kText) {
        if (!first) text += "\n";
        text += c.text;
        first = false;
      } else if (is_media(c.type)) {
        if (Status s = add_media(c, where + " tool result", media, resolution); !s.ok()) return s;
      } else {
        return Status::invalid_argument(where + ": a tool result cannot hold " + a_block(c.type));
      }
    }
    json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (value.is_discarded() || !value.is_object()) value = text;
    json response;
    if (b.is_error) {
      response = {{"error", std::move(value)}};
    } else if (value.is_object()) {
      response = std::move(value);
    } else {
      response = {{"result", std::move(value)}};
    }
    json fr = {{"name", name}, {"response", std::move(response)}};
    if (!b.tool_use_id.empty()) fr["id"] = b.tool_use_id;
    part = {{"functionResponse", std::move(fr)}};
    return Status();
  }

  Status add_contents(const ModelRequest& request, json& body, std::string& resolution) const {
    // The current turn starts after the last user message that is not only tool results.
    std::size_t turn_start = 0;
    for (std::size_t i = 0; i < request.messages.size(); ++i) {
      const Message& m = request.messages[i];
      if (m.role != "user") continue;
      if (std::any_of(m.content.begin(), m.content.end(),
                      [](const ContentBlock& b) { return b.type != Type::kToolResult; })) {
        turn_start = i + 1;
      }
    }
    const bool sign_calls = needs_call_signatures(model_id_);

    json system = json::array();
    ContentsBuilder contents;
    std::map<std::string, std::string> call_names;  // call id -> function name, from the history
    for (std::size_t i = 0; i < request.messages.size(); ++i) {
      const Message& m = request.messages[i];
      const std::string where = "message " + std::to_string(i + 1);
      const bool model_turn = m.role == "assistant";
      const char* role = model_turn ? "model" : "user";
      if (m.role == "system") {
        for (const ContentBlock& b : m.content) {
          if (b.type != Type::kText) {
            return Status::upstream("cannot take " + a_block(b.type) + " in " + where +
                                    ", a system message (Gemini's systemInstruction holds text)");
          }
          if (!b.text.empty()) system.push_back({{"text", b.text}});
        }
        continue;
      }
      if (m.role != "user" && m.role != "tool" && !model_turn) {
        return Status::invalid_argument(where + ": unknown role '" + m.role + "'");
      }
      for (const ContentBlock& b : m.content) {
        auto misplaced = [&] {
          return Status::invalid_argument(where + ": " + a_block(b.type) + " cannot be in a " + m.role + " message");
        };
        switch (b.type) {
          case Type::kText:
          case Type::kRefusal: {
            if (b.type == Type::kRefusal && !model_turn) return misplaced();
            const bool keep_signature = model_turn && gemini_signed(b);
            if (b.text.empty() && !keep_signature) break;
            json part = {{"text", b.text}};
            if (keep_signature) part["thoughtSignature"] = b.signature;
            contents.add(role, std::move(part));
            break;
          }
          case Type::kImage:
          case Type::kDocument:
          case Type::kAudio: {
            json parts = json::array();
            if (Status s = add_media(b, where, parts, resolution); !s.ok()) return s;
            for (json& p : parts) contents.add(role, std::move(p));
            break;
          }
          case Type::kToolUse: {
            if (!model_turn) return misplaced();
            const ToolCall& c = b.tool_call;
            Result<json> args =
                wire::parse_request_object(c.arguments_json, where + ": tool call '" + c.name + "' arguments");
            if (!args.ok()) return args.status();
            json call = {{"name", c.name}, {"args", std::move(*args)}};
            if (!c.id.empty()) call["id"] = c.id;
            json part = {{"functionCall", std::move(call)}};
            if (gemini_signed(b)) {
              part["thoughtSignature"] = b.signature;
            } else if (sign_calls && i >= turn_start && b.origin != kOrigin) {
              part["thoughtSignature"] = kSkipSignature;
            }
            if (!c.id.empty()) call_names[c.id] = c.name;
            contents.add(role, std::move(part));
            break;
          }
          case Type::kToolResult: {
            if (model_turn) return misplaced();
            json part, media = json::array();
            if (Status s = tool_result(b, where, call_names, part, media, resolution); !s.ok()) return s;
            contents.add(role, std::move(part));
            for (json& p : media) contents.defer(role, std::move(p));
            break;
          }
          case Type::kThinking:
          case Type::kRedactedThinking:
            if (!model_turn) return misplaced();
            if (b.type == Type::kThinking && gemini_signed(b)) {
              contents.add(role, {{"text", b.text}, {"thought", true}, {"thoughtSignature", b.signature}});
            }
            break;  // unsigned or another provider's reasoning: not sent
          case Type::kOpaque: {
            if (b.origin != kOrigin) break;  // another provider's item
            Result<json> part = wire::parse_request_object(b.opaque_json, where + ": an opaque Gemini part");
            if (!part.ok()) return part.status();
            contents.add(role, std::move(*part));
            break;
          }
        }
      }
    }
    body["contents"] = contents.finish();
    if (!system.empty()) body["systemInstruction"] = {{"parts", std::move(system)}};
    return Status();
  }

  Status add_tools(const ModelRequest& request, json& body) const {
    json declarations = json::array();
    json tools = json::array();
    std::set<std::string> names;
    bool strict = false;
    for (const ToolSpec& t : request.tools) {
      if (!t.opaque_json.empty()) {
        if (t.origin != kOrigin) {
          return Status::upstream("cannot take " + (t.origin.empty() ? std::string("another provider") : t.origin) +
                                  "'s own tool (it exists only there)");
        }
        Result<json> tool = wire::parse_request_object(t.opaque_json, "Gemini tool '" + t.name + "'");
        if (!tool.ok()) return tool.status();
        tools.push_back(std::move(*tool));
        continue;
      }
      const std::string what = "tool '" + t.name + "' parameters";
      Result<json> parameters = wire::parse_request_object(t.parameters_json, what);
      if (!parameters.ok()) return parameters.status();
      json declaration = {{"name", t.name}};
      if (!t.description.empty()) declaration["description"] = t.description;
      if (!parameters->empty()) {
        Result<json> schema = SchemaTranslator(*parameters, what).translate();
        if (!schema.ok()) return schema.status();
        if (!schema->contains("type") && schema->contains("properties")) (*schema)["type"] = "object";
        if (schema->value("type", "") != "object") {
          return Status::upstream("cannot take " + what + " (Gemini takes an object schema)");
        }
        if (free_form_object(*schema)) {
          const auto extra = parameters->find("additionalProperties");
          if (extra != parameters->end() && !(extra->is_boolean() && !extra->get<bool>())) {
            return Status::upstream("cannot take " + what + " (free-form arguments; Gemini's OBJECT needs properties)");
          }
          // No properties: a function without arguments, declared without parameters.
        } else {
          declaration["parameters"] = std::move(*schema);
        }
      }
      strict = strict || t.strict.value_or(false);
      names.insert(t.name);
      declarations.push_back(std::move(declaration));
    }
    if (!declarations.empty()) tools.insert(tools.begin(), json{{"functionDeclarations", std::move(declarations)}});
    if (!tools.empty()) body["tools"] = std::move(tools);

    const ToolChoice::Mode mode = request.tool_choice ? request.tool_choice->mode : ToolChoice::Mode::kAuto;
    if (names.empty()) {
      if (mode == ToolChoice::Mode::kRequired || mode == ToolChoice::Mode::kNamed) {
        return Status::invalid_argument("tool_choice asks for a function call, but the request declares no function");
      }
      return Status();
    }
    json config;
    switch (mode) {
      case ToolChoice::Mode::kAuto:
        if (strict) {
          config = {{"mode", "VALIDATED"}};
        } else if (request.tool_choice) {
          config = {{"mode", "AUTO"}};
        }
        break;
      case ToolChoice::Mode::kNone: config = {{"mode", "NONE"}}; break;
      case ToolChoice::Mode::kRequired: config = {{"mode", "ANY"}}; break;
      case ToolChoice::Mode::kNamed:
        if (!names.contains(request.tool_choice->name)) {
          return Status::invalid_argument("tool_choice names '" + request.tool_choice->name +
                                          "', which is not a declared function");
        }
        config = {{"mode", "ANY"}, {"allowedFunctionNames", json::array({request.tool_choice->name})}};
        break;
    }
    if (request.parallel_tool_calls == false && mode != ToolChoice::Mode::kNone) {
      return Status::upstream(
          "cannot take parallel_tool_calls = false (Gemini has no way to limit an answer to one function call)");
    }
    if (!config.is_null()) body["toolConfig"] = {{"functionCallingConfig", std::move(config)}};
    return Status();
  }

  // The thinking budget to send, if any, before the output cap applies.
  Result<std::optional<std::int64_t>> thinking_budget(const ReasoningRequest& r) const {
    if (r.budget_tokens) {
      if (*r.budget_tokens < 0) return Status::invalid_argument("reasoning budget_tokens must not be negative");
      return std::optional<std::int64_t>(*r.budget_tokens);
    }
    if (r.effort) {
      switch (*r.effort) {
        case Effort::kNone: return std::optional<std::int64_t>(0);
        case Effort::kMinimal: return std::optional<std::int64_t>(std::max(budgets_.low / 2, kMinThinkingBudget));
        case Effort::kLow: return std::optional<std::int64_t>(budgets_.low);
        case Effort::kMedium: return std::optional<std::int64_t>(budgets_.medium);
        case Effort::kHigh: return std::optional<std::int64_t>(budgets_.high);
        case Effort::kXHigh: return std::optional<std::int64_t>(2 * budgets_.high);
      }
    }
    if (r.level == Reasoning::kDefault) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(budgets_.for_level(r.level));
  }

  Status add_generation_config(const ModelRequest& request, json& config) const {
    const Sampling& s = request.sampling;
    if (s.temperature) config["temperature"] = *s.temperature;
    if (s.top_p) config["topP"] = *s.top_p;
    if (s.top_k) config["topK"] = *s.top_k;
    if (!s.stop.empty()) {
      if (s.stop.size() > kMaxStopSequences) {
        return Status::upstream("cannot take " + std::to_string(s.stop.size()) +
                                " stop sequences (Gemini takes at most 5)");
      }
      config["stopSequences"] = s.stop;
    }
    if (s.seed) {
      if (*s.seed < std::numeric_limits<std::int32_t>::min() || *s.seed > std::numeric_limits<std::int32_t>::max()) {
        return Status::upstream("cannot take seed " + std::to_string(*s.seed) + " (Gemini's seed is a 32-bit integer)");
      }
      config["seed"] = *s.seed;
    }
    if (s.presence_penalty) config["presencePenalty"] = *s.presence_penalty;
    if (s.frequency_penalty) config["frequencyPenalty"] = *s.frequency_penalty;
    if (s.logprobs || s.top_logprobs) config["responseLogprobs"] = true;
    if (s.top_logprobs) config["logprobs"] = *s.top_logprobs;

    std::optional<std::int64_t> cap = request.max_output_tokens;
    if (cap && max_output_tokens_ > 0) cap = std::min(*cap, max_output_tokens_);
    if (cap) config["maxOutputTokens"] = *cap;

    const OutputFormat& f = request.output_format;
    if (f.type != OutputFormat::Type::kText) config["responseMimeType"] = "application/json";
    if (f.type == OutputFormat::Type::kJsonSchema) {
      const std::string what = "the output schema" + (f.name.empty() ? "" : " '" + f.name + "'");
      Result<json> parsed = wire::parse_request_object(f.schema_json, what);
      if (!parsed.ok()) return parsed.status();
      Result<json> schema = SchemaTranslator(*parsed, what).translate();
      if (!schema.ok()) return schema.status();
      if (!free_form_object(*schema) && !schema->empty()) {
        if (!f.name.empty() && !schema->contains("title")) (*schema)["title"] = f.name;
        if (!f.description.empty() && !schema->contains("description")) (*schema)["description"] = f.description;
        config["responseSchema"] = std::move(*schema);
      }
    }

    Result<std::optional<std::int64_t>> budget = thinking_budget(request.reasoning);
    if (!budget.ok()) return budget.status();
    if (*budget) {
      std::int64_t b = **budget;
      const std::int64_t limit = cap ? *cap : max_output_tokens_;
      if (b > 0 && limit > 0) b = std::max<std::int64_t>(0, std::min(b, limit - 1));
      json thinking = {{"thinkingBudget", b}};
      if (b > 0) thinking["includeThoughts"] = true;
      config["thinkingConfig"] = std::move(thinking);
    }
    return Status();
  }

  const std::string model_id_;
  const std::string endpoint_;
  const std::string base_url_;
  const std::string api_key_;
  const ThinkingBudgets budgets_;
  const std::int64_t max_output_tokens_;
};

}  // namespace

std::unique_ptr<WireFormat> make_gemini_wire(const ModelSpec& model, std::string api_key) {
  return std::make_unique<GeminiWire>(model, std::move(api_key));
}

}  // namespace switchboard
