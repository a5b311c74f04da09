// The offline `sim` provider: deterministic, free, no network. It stands in
// for a model when no key is set, so the demo and the tests run anywhere. It
// is not a model and never pretends to be one: every answer says "[sim]".
//
// It follows the canonical request and answer (request.h), so that offline
// runs exercise the same paths as real providers. Everything it reports but
// the split of the input between cache and fresh is derived from the request
// alone (same request, same answer, same counts), by a SHA-256 digest `d` of
// the request's messages, tools and settings:
//   input tokens      counted_input_tokens when the caller counted them, else
//                     one token per three bytes of message text (as the
//                     engine's own estimate); part of them read from or
//                     written to its prompt cache, below;
//   output tokens     expected × (75% + d mod 51%) when the request carries
//                     the step's expected_output_tokens (an answer follows its
//                     task), else cap × (25% + d mod 51%); never over the cap,
//                     which is max_output_tokens (else the model's
//                     default_output_tokens);
//   reasoning         the caller's thinking budget, else its effort, else the
//                     rules' level (low/medium/high: 1/4, 1/2 or all of the
//                     output figure again), within the model's thinking budget
//                     and within the cap (output shrinks to make room). With
//                     reasoning the answer starts with a thinking block whose
//                     signature ("sim:" + a digest of its text) is checked
//                     when the block comes back: an altered one is refused,
//                     as Anthropic refuses altered thinking;
//   answer            a tool call when the tool choice requires one (the
//                     named tool, or the first), or by default when tools are
//                     offered and no tool result came yet; its arguments are
//                     an instance of the tool's parameter schema (required
//                     properties, placeholder values by type); with a JSON
//                     schema output: an instance of the schema; with a JSON
//                     object output: an object naming the model and the
//                     digest; else one line naming the model, the digest and
//                     the start of the last user message. A stop sequence in
//                     the text ends it there (stop reason stop_sequence);
//   latency           [sim] base_latency + per_output_token × (output +
//                     reasoning tokens), slept for real (0 by default).
// Its prompt cache, the one thing it remembers between requests (so the
// counts of a request depend on the requests before it, and on nothing
// else: deterministic given their sequence and the clock): each sim client
// (one per model) remembers the prefixes of the requests it answered, a
// prefix being the tools and the messages up to a message boundary (each
// message's role, text, tool-call id and tool uses), hashed as a chain so
// a request costs one pass over its text. A prefix lives [sim] cache_ttl_s
// (5 minutes) after the last request that carried it, and only prefixes of
// at least 1024 tokens are cached, as the providers' own minimum; a request
// leaves its 64 longest prefixes, and a model keeps at most 8192 (the expired
// go first, then the soonest to expire). A
// prefix's tokens are its share of the request's message text bytes times
// the request's input tokens (one per three bytes when not counted). A
// request whose message text has fewer bytes than its counted tokens (a step
// sent by its count alone, whose text is a placeholder such as "(a 'plan'
// step)") does not carry its prompt: it neither reads nor fills the cache,
// and all its input is fresh. Then:
//   cached_input_tokens  the tokens of the longest prefix of this request
//                        that is remembered (the whole request included);
//   cache writes         for an Anthropic model (provider "anthropic"),
//                        whose cache is written explicitly and billed for:
//                        the rest of the request, when the request is at
//                        least 1024 tokens, as a 5-minute write
//                        (cache_write_5m_tokens), as if auto_cache put the
//                        breakpoint at its end; none for other models, whose
//                        caches fill automatically and free (OpenAI, Gemini);
//   input_tokens         the rest: what is neither read nor written.
// A request that repeats an earlier one's every count but these is still
// answered alike (the answer and the output counts do not depend on it).
// An embedding model's sim embeds: each input's vector is a unit vector
// derived from SHA-256 digests of the input's text alone (token ids: their
// JSON text, "[1,2,3]"), so the same text gets the same vector from every
// sim model: block k = 0, 1, ... is sha256_hex(text + "\x1f" + k), read as
// eight big-endian 32-bit words w, each the component w / 2^31 - 1; the first
// `dimensions` components (the request's, else the model's), scaled to length
// 1. A request for more than the model's dimensions is refused. Its usage:
// one token per three bytes of each text (one per token id); latency
// [sim] base_latency.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "async/waits.h"
#include "cost/estimate.h"
#include "util/sha256.h"
#include "switchboard/client.h"
#include "switchboard/tokens.h"

namespace switchboard {

namespace {

std::uint64_t digest_value(const std::string& hex) {
  std::uint64_t v = 0;
  for (size_t i = 0; i < 16 && i < hex.size(); ++i) {
    const char c = hex[i];
    v = v * 16 + static_cast<std::uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return v;
}

// The first `n` bytes of `text` on one line, cut at a UTF-8 boundary.
std::string excerpt(std::string_view text, size_t n) {
  std::string out;
  for (char c : text.substr(0, std::min(n, text.size()))) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) out.pop_back();
  if (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0xC0) out.pop_back();
  return out;
}

using nlohmann::json;

// The signature the sim puts on its thinking text.
std::string thinking_signature(const std::string& model, const std::string& text) {
  return "sim:" + detail::sha256_hex(model + '\x1f' + text).substr(0, 24);
}

// A value that `schema` (JSON Schema) accepts, as far as the common keywords
// go: the first enum or const, objects with their required properties,
// arrays of one item, placeholders by type. Depth-bounded.
json instance_of(const json& schema, int depth = 0) {
  if (!schema.is_object() || depth > 16) return nullptr;
  if (auto c = schema.find("const"); c != schema.end()) return *c;
  if (auto e = schema.find("enum"); e != schema.end() && e->is_array() && !e->empty()) return e->front();
  for (const char* any : {"anyOf", "oneOf", "allOf"}) {
    if (auto a = schema.find(any); a != schema.end() && a->is_array() && !a->empty()) {
      return instance_of(a->front(), depth + 1);
    }
  }
  std::string type;
  if (auto t = schema.find("type"); t != schema.end()) {
    if (t->is_string()) type = t->get<std::string>();
    if (t->is_array() && !t->empty() && t->front().is_string()) type = t->front().get<std::string>();
  }
  if (type.empty() && schema.contains("properties")) type = "object";
  if (type == "object") {
    json out = json::object();
    const json* props = schema.contains("properties") && schema["properties"].is_object() ? &schema["properties"] : nullptr;
    if (auto req = schema.find("required"); props != nullptr && req != schema.end() && req->is_array()) {
      for (const json& name : *req) {
        if (name.is_string() && props->contains(name.get<std::string>())) {
          out[name.get<std::string>()] = instance_of((*props)[name.get<std::string>()], depth + 1);
        }
      }
    }
    return out;
  }
  if (type == "array") {
    json out = json::array();
    if (auto items = schema.find("items"); items != schema.end()) out.push_back(instance_of(*items, depth + 1));
    return out;
  }
  if (type == "string") return "sim";
  if (type == "integer") return 1;
  if (type == "number") return 1.5;
  if (type == "boolean") return true;
  return nullptr;
}

std::string instance_text(const std::string& schema_json) {
  const json schema = json::parse(schema_json, nullptr, false);
  return instance_of(schema).dump(-1, ' ', false, json::error_handler_t::replace);
}

// The text of a block list, tool results' text included (what the sim reads and digests).
std::string block_text(const std::vector<ContentBlock>& blocks) {
  std::string out;
  for (const ContentBlock& b : blocks) {
    if (b.type == ContentBlock::Type::kText) out += b.text;
    if (b.type == ContentBlock::Type::kToolResult) out += block_text(b.content);
  }
  return out;
}

// The sim's prompt cache (see the file comment). Thread-safe.
class PrefixCache {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::int64_t kMinTokens = 1024;         // the least prefix cached, as the providers'
  static constexpr std::size_t kRememberedPerRequest = 64;  // a request's longest prefixes remembered
  static constexpr std::size_t kMaxPrefixes = 8192;         // the memory bound

  // Looks up `prefixes` (hash, tokens: shortest first) and returns the tokens
  // of the longest remembered; then remembers the longest kRememberedPerRequest
  // of kMinTokens or more for `ttl` from now. Past kMaxPrefixes, the expired
  // go first, then the soonest to expire, a quarter at a time.
  std::int64_t read_and_remember(const std::vector<std::pair<std::uint64_t, std::int64_t>>& prefixes,
                                 std::chrono::seconds ttl, Clock::time_point now) {
    std::lock_guard<std::mutex> lock(mu_);
    std::int64_t hit = 0;
    for (auto it = prefixes.rbegin(); it != prefixes.rend(); ++it) {
      const auto found = entries_.find(it->first);
      if (found != entries_.end() && now < found->second) {
        hit = it->second;
        break;
      }
    }
    std::size_t remembered = 0;
    for (auto it = prefixes.rbegin(); it != prefixes.rend() && remembered < kRememberedPerRequest; ++it) {
      if (it->second < kMinTokens) break;  // shorter ones are shorter still
      entries_[it->first] = now + ttl;
      ++remembered;
    }
    if (entries_.size() > kMaxPrefixes) {
      std::erase_if(entries_, [now](const auto& e) { return e.second <= now; });
      if (entries_.size() > kMaxPrefixes) {
        std::vector<std::pair<Clock::time_point, std::uint64_t>> by_expiry;
        by_expiry.reserve(entries_.size());
        for (const auto& [hash, expires] : entries_) by_expiry.emplace_back(expires, hash);
        const std::size_t drop = entries_.size() - kMaxPrefixes * 3 / 4;
        std::nth_element(by_expiry.begin(), by_expiry.begin() + static_cast<std::ptrdiff_t>(drop), by_expiry.end());
        for (std::size_t i = 0; i < drop; ++i) entries_.erase(by_expiry[i].second);
      }
    }
    return hit;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::uint64_t, Clock::time_point> entries_;  // prefix hash -> when it expires
};

class SimClient final : public ModelClient {
 public:
  SimClient(const ModelSpec& model, const SimSettings& settings) : model_(model), settings_(settings) {
    if (!settings_.clock) settings_.clock = std::chrono::steady_clock::now;
  }

  std::string provider() const override { return "sim"; }

  // The engine's count for the model it stands in for (tokens.h).
  Result<TokenCount> count_tokens(const ModelRequest& request) override {
    Result<std::int64_t> n = count_request_tokens(model_, request);
    if (!n.ok()) return n.status();
    return TokenCount{*n, false};
  }

  Result<ModelResponse> invoke(const ModelRequest& request) override {
    Result<ModelResponse> r = answer(request);
    if (!r.ok()) return r;
    if (Status s = wait_within(request.bounds, r->latency); !s.ok()) return stopped(s);
    return r;
  }

  Result<ModelResponse> stream(const ModelRequest& request, const ChunkHandler& on_chunk) override {
    Result<ModelResponse> answered = answer(request);
    if (!answered.ok()) return answered;
    const ModelResponse& r = *answered;
    // The text word by word, the latency spread evenly over the pieces; the
    // other blocks as deliver_as_chunks gives them. The chunks view `r`.
    std::vector<StreamChunk> chunks;
    deliver_as_chunks(r, [&](const StreamChunk& whole) {
      if (whole.kind != StreamChunk::Kind::kText) {
        chunks.push_back(whole);
        return;
      }
      std::string_view rest = whole.text;
      while (!rest.empty()) {
        size_t cut = rest.find(' ', 1);
        cut = cut == std::string_view::npos ? rest.size() : cut;
        chunks.push_back(StreamChunk::of(StreamChunk::Kind::kText, whole.index, rest.substr(0, cut)));
        rest.remove_prefix(cut);
      }
    });
    const auto pieces = std::count_if(chunks.begin(), chunks.end(),
                                      [](const StreamChunk& c) { return c.kind != StreamChunk::Kind::kStart; });
    const auto gap = pieces == 0 ? r.latency : r.latency / static_cast<int>(pieces);
    for (const StreamChunk& c : chunks) {
      if (c.kind == StreamChunk::Kind::kStart) {  // accepted at once; the answer takes the latency
        if (on_chunk) on_chunk(c);
        continue;
      }
      if (Status s = wait_within(request.bounds, gap); !s.ok()) return stopped(s);
      if (on_chunk) on_chunk(c);
    }
    if (pieces == 0) {
      if (Status s = wait_within(request.bounds, r.latency); !s.ok()) return stopped(s);
    }
    return answered;
  }

 private:
  // Waits `d`, as a model takes its time, unless the step's bounds stop the
  // call first: then returns their status as soon as they do.
  static Status wait_within(const CallBounds& bounds, std::chrono::milliseconds d) {
    if (Status s = bounds.check(); !s.ok()) return s;
    if (const auto left = bounds.remaining(); left && *left < d) d = *left;
    if (d.count() > 0) async::sleep_for(d, bounds.cancellation.get());  // on a fiber: the loop's timer
    return bounds.check();
  }

  Result<EmbeddingResponse> embed(const EmbeddingRequest& request) override {
    if (model_.kind != ModelKind::kEmbedding) return ModelClient::embed(request);
    const std::int64_t dims = request.dimensions.value_or(model_.dimensions);
    if (dims > model_.dimensions) {
      return Status::upstream("sim " + model_.name + ": cannot take dimensions " + std::to_string(dims) +
                              " (its vectors have " + std::to_string(model_.dimensions) + ")");
    }
    EmbeddingResponse r;
    r.model = model_.model_id.empty() ? model_.name : model_.model_id;
    r.usage.input_tokens = detail::estimate_embedding_tokens(request);
    const auto vector_of = [dims](const std::string& text) {
      std::vector<float> v;
      v.reserve(static_cast<std::size_t>(dims));
      double norm = 0;
      for (std::int64_t block = 0; static_cast<std::int64_t>(v.size()) < dims; ++block) {
        const std::string hex = detail::sha256_hex(text + '\x1f' + std::to_string(block));
        for (std::size_t w = 0; w + 8 <= hex.size() && static_cast<std::int64_t>(v.size()) < dims; w += 8) {
          const double x = static_cast<double>(std::stoul(hex.substr(w, 8), nullptr, 16)) / 2147483648.0 - 1.0;
          v.push_back(static_cast<float>(x));
          norm += x * x;
        }
      }
      norm = std::sqrt(norm);
      for (float& x : v) x = norm > 0 ? static_cast<float>(x / norm) : 0.0f;
      return v;
    };
    for (const std::string& text : request.texts) r.vectors.push_back(vector_of(text));
    for (const std::vector<std::int64_t>& ids : request.tokens) r.vectors.push_back(vector_of(json(ids).dump()));
    r.latency = settings_.base_latency;
    if (Status s = wait_within(request.bounds, r.latency); !s.ok()) return stopped(s);
    return r;
  }

  Status stopped(const Status& s) const {
    const std::string message = "sim " + model_.name + ": " + s.message();
    return s.code() == Status::Code::kCancelled ? Status::cancelled(message) : Status::deadline_exceeded(message);
  }

  // The reasoning budget the request asks for: the caller's budget, else its
  // effort, else the rules' level, as the model's thinking_budget maps them.
  std::int64_t thinking_budget(const ReasoningRequest& r) const {
    const ThinkingBudgets& tb = model_.thinking_budget;
    if (r.budget_tokens) return std::max<std::int64_t>(0, *r.budget_tokens);
    if (r.effort) {
      switch (*r.effort) {
        case Effort::kNone: return 0;
        case Effort::kMinimal: return tb.low / 2;
        case Effort::kLow: return tb.low;
        case Effort::kMedium: return tb.medium;
        case Effort::kHigh: return tb.high;
        case Effort::kXHigh: return tb.high * 2;
      }
    }
    return tb.for_level(r.level);
  }

  Result<ModelResponse> answer(const ModelRequest& request) const {
    if (request.messages.empty()) {
      return Status::invalid_argument("sim " + model_.name + ": the request has no messages");
    }
    std::string material = model_.name;
    std::int64_t text_bytes = 0;
    std::string last_user;
    bool has_tool_result = false;
    // The prompt cache's prefixes: a chained hash and the text bytes up to each message boundary.
    std::string tools_material;
    for (const ToolSpec& t : request.tools) tools_material += '\x1d' + t.name + t.parameters_json;
    std::string chain = detail::sha256_hex(tools_material);
    std::vector<std::pair<std::uint64_t, std::int64_t>> prefix_bytes;
    for (const Message& m : request.messages) {
      const std::string text = block_text(m.content);
      std::string call_id;
      for (const ContentBlock& b : m.content) {
        if (b.type == ContentBlock::Type::kToolResult) {
          has_tool_result = true;
          if (call_id.empty()) call_id = b.tool_use_id;
        }
        // Thinking it signed comes back unaltered, or the request is refused.
        if (b.type == ContentBlock::Type::kThinking && b.origin == "sim" &&
            b.signature != thinking_signature(model_.name, b.text)) {
          return Status::upstream("sim " + model_.name +
                                  ": a thinking block's signature does not match its text (thinking must be sent "
                                  "back unaltered)");
        }
      }
      std::string message = '\x1e' + m.role + '\x1f' + text + '\x1f' + call_id;
      for (const ContentBlock& b : m.content) {
        if (b.type == ContentBlock::Type::kToolUse) message += '\x1f' + b.tool_call.name + b.tool_call.arguments_json;
      }
      material += message;
      chain = detail::sha256_hex(chain + message);
      text_bytes += static_cast<std::int64_t>(text.size());
      prefix_bytes.emplace_back(digest_value(chain), text_bytes);
      if (m.role == "user" && !text.empty()) last_user = text;
    }
    material += tools_material;
    const OutputFormat& format = request.output_format;
    const std::int64_t budget = thinking_budget(request.reasoning);
    material += '\x1c' + std::string(to_string(request.reasoning.level)) +
                (format.type != OutputFormat::Type::kText ? "j" : "") +
                std::to_string(request.max_output_tokens.value_or(0)) + '/' +
                std::to_string(request.expected_output_tokens.value_or(0));
    if (request.reasoning.effort || request.reasoning.budget_tokens) material += "/b" + std::to_string(budget);
    if (request.tool_choice) material += "/c" + std::to_string(static_cast<int>(request.tool_choice->mode)) + request.tool_choice->name;
    if (format.type == OutputFormat::Type::kJsonSchema) material += "/s" + format.schema_json;
    const std::string digest = detail::sha256_hex(material);
    const std::uint64_t d = digest_value(digest);

    ModelResponse r;
    r.model = model_.model_id;
    const std::int64_t input = request.counted_input_tokens.value_or((text_bytes + 2) / 3);
    for (auto& [hash, bytes] : prefix_bytes) {  // bytes -> tokens: the prefix's share of the input
      bytes = text_bytes > 0 ? input * bytes / text_bytes : 0;
    }
    // Text under a byte per counted token does not stand for the prompt (a
    // step sent by its count alone): it neither reads nor fills the cache.
    const bool stands_for_prompt = text_bytes >= input;
    const std::int64_t cached =
        stands_for_prompt ? cache_.read_and_remember(prefix_bytes, settings_.cache_ttl, settings_.clock()) : 0;
    const std::int64_t written =
        model_.provider == "anthropic" && stands_for_prompt && input >= PrefixCache::kMinTokens ? input - cached : 0;
    r.usage.cached_input_tokens = cached;
    r.usage.cache_write_5m_tokens = written;
    r.usage.input_tokens = input - cached - written;
    const std::int64_t cap = std::max<std::int64_t>(1, request.max_output_tokens.value_or(model_.default_output_tokens));
    const std::int64_t spread = static_cast<std::int64_t>(d % 51);
    std::int64_t output = request.expected_output_tokens
                              ? std::min(cap, *request.expected_output_tokens * (75 + spread) / 100)
                              : cap * (25 + spread) / 100;
    output = std::max<std::int64_t>(1, output);
    std::int64_t reasoning = 0;
    if (budget > 0) {
      switch (request.reasoning.level) {
        case Reasoning::kLow: reasoning = output / 4; break;
        case Reasoning::kMedium: reasoning = output / 2; break;
        case Reasoning::kHigh:
        case Reasoning::kDefault: reasoning = output; break;
      }
      reasoning = std::min(reasoning, budget);
    }
    if (output + reasoning > cap) output = std::max<std::int64_t>(1, cap - reasoning);
    reasoning = std::max<std::int64_t>(0, std::min(reasoning, cap - output));
    r.usage.output_tokens = output;
    r.usage.reasoning_tokens = reasoning;

    const std::string tag = digest.substr(0, 12);
    if (reasoning > 0) {
      ContentBlock thinking;
      thinking.type = ContentBlock::Type::kThinking;
      thinking.text = "[sim " + model_.name + " " + tag + "] thought for " + std::to_string(reasoning) + " tokens";
      thinking.signature = thinking_signature(model_.name, thinking.text);
      thinking.origin = "sim";
      r.content.push_back(std::move(thinking));
    }
    const ToolChoice choice = request.tool_choice.value_or(ToolChoice{});
    const ToolSpec* tool = nullptr;
    if (!request.tools.empty() && choice.mode != ToolChoice::Mode::kNone) {
      if (choice.mode == ToolChoice::Mode::kNamed) {
        for (const ToolSpec& t : request.tools) {
          if (t.name == choice.name) tool = &t;
        }
      } else if (choice.mode == ToolChoice::Mode::kRequired || !has_tool_result) {
        tool = &request.tools.front();
      }
    }
    if (tool != nullptr) {
      r.content.push_back(ContentBlock::of_tool_call(
          ToolCall{"sim-call-" + tag, tool->name, instance_text(tool->parameters_json)}));
      r.stop_reason = StopReason::kToolUse;
      r.raw_stop_reason = "tool_calls";
    } else {
      std::string text;
      if (format.type == OutputFormat::Type::kJsonSchema) {
        text = instance_text(format.schema_json);
      } else if (format.type == OutputFormat::Type::kJsonObject) {
        text = "{\"sim\":true,\"model\":\"" + model_.name + "\",\"digest\":\"" + tag + "\"}";
      } else {
        text = "[sim " + model_.name + " " + tag + "] answer to: " +
               (last_user.empty() ? std::string("(no user message)") : excerpt(last_user, 80));
      }
      r.stop_reason = output >= cap ? StopReason::kMaxTokens : StopReason::kEndTurn;
      r.raw_stop_reason = output >= cap ? "length" : "stop";
      for (const std::string& stop : request.sampling.stop) {
        const std::size_t at = stop.empty() ? std::string::npos : text.find(stop);
        if (at != std::string::npos) {
          text.resize(at);
          r.stop_reason = StopReason::kStopSequence;
          r.raw_stop_reason = "stop";
          r.stop_sequence = stop;
        }
      }
      r.content.push_back(ContentBlock::of_text(std::move(text)));
    }
    r.latency = std::chrono::duration_cast<std::chrono::milliseconds>(
        settings_.base_latency + settings_.per_output_token * (r.usage.output_tokens + r.usage.reasoning_tokens));
    return r;
  }

  ModelSpec model_;
  SimSettings settings_;
  mutable PrefixCache cache_;  // answer() is const: the cache is the sim's memory, not its answer
};

}  // namespace

std::shared_ptr<ModelClient> make_sim_client(const ModelSpec& model, const SimSettings& settings) {
  return std::make_shared<SimClient>(model, settings);
}

}  // namespace switchboard
