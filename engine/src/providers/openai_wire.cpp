// OpenAI Chat Completions (POST {endpoint}/chat/completions), for provider
// "openai" and "openai-compatible" (vLLM, llama.cpp, Ollama, DeepSeek,
// gateways). What happens to each field of the canonical request (request.h):
//
// Messages, in order, one Chat Completions message per canonical message
// except where noted:
//  - "system" -> a `system` message (the API maps it to `developer` for
//    reasoning models itself). Text blocks only: an image, document or audio
//    block there is refused ("cannot take ..."), a tool use or result is
//    invalid_argument.
//  - "user" -> a `user` message. One text block is sent as a string, anything
//    else as content parts: text; image -> image_url {url, detail} (a base64
//    image as a data: URL; by file id: refused, the API takes no image file
//    ids); document -> file {file_data: data: URL, filename: title, else
//    "document" + the media type's extension} or file {file_id} (a file id
//    only when its origin is this provider; by URL: refused); audio ->
//    input_audio {data, format} (wav and mp3; other formats refused on
//    "openai", sent as the media subtype to compatible servers; by URL:
//    refused). kToolResult blocks in a user message (Anthropic's shape) become
//    `tool` messages placed before the user message's other parts.
//  - "tool" (kToolResult blocks) -> one `tool` message per result
//    {tool_call_id, content}: its text blocks, one as a string, several as
//    text parts. is_error has no field: the content is prefixed "Error: "
//    (just "Error" when the result has no text). A tool message takes text
//    only, so a result's images, documents and audio go in a `user` message
//    after the run of tool messages, behind a text part "Attachments of tool
//    call <id>:" (and the tool message says they follow).
//  - "assistant" -> an `assistant` message: text blocks as content (null
//    beside tool calls or a refusal), kRefusal blocks joined into `refusal`,
//    kToolUse blocks as tool_calls [{id, type function, function {name,
//    arguments}}] (arguments sent as given, "" as "{}"). Media in an
//    assistant message is refused.
//  - Thinking, redacted thinking and opaque blocks are dropped, whatever
//    their origin: Chat Completions has no way to send reasoning back (OpenAI
//    keeps reasoning items for the Responses API; DeepSeek rejects its own
//    reasoning_content in a request). A signature on a text or tool-use
//    block (Gemini's thoughtSignature) is dropped; the block itself is sent.
//  - Cache breakpoints (blocks and tools) are dropped: OpenAI caches prompt
//    prefixes by itself and reports the cached tokens in usage.
//
// Tools -> tools [{type function, function {name, description (when not
// empty), parameters, strict (when set)}}]. An opaque tool is sent verbatim
// when its origin is this provider, else refused. tool_choice -> "none" |
// "auto" | "required" | {type function, function {name}}; with no tools,
// auto and none are not sent (they mean nothing then) and required or a
// named tool are invalid_argument. parallel_tool_calls is sent when set and
// there are tools.
//
// output_format: kJsonObject -> response_format {type json_object}; the API
// requires the word "JSON" in the messages, so when no text holds it, the
// sentence kJsonInstruction is added to the first system message (or is a
// system message of its own, first). kJsonSchema -> {type json_schema,
// json_schema {name ("response" when unnamed), description (when set),
// schema, strict}}.
//
// Sampling: temperature, top_p, stop, seed, presence_penalty,
// frequency_penalty, user as given; logprobs -> logprobs true, top_logprobs
// (which implies logprobs). top_k: compatible servers (vLLM, llama.cpp) take
// `top_k` and get it; OpenAI has no such control, so an "openai" model refuses
// a request that sets it.
//
// Reasoning -> reasoning_effort. A thinking budget wins: 0 -> "none", up to
// the model's low budget "low", up to its medium budget "medium", else
// "high". Else the caller's effort, sent as given ("none" and "xhigh"
// included). Else the rules' level ("low" | "medium" | "high"). A model
// whose capabilities say thinking = false gets no reasoning_effort: the
// rules' level is dropped as not applicable, an explicit effort or budget
// above none is refused (the dispatcher already skips such models).
//
// max_output_tokens -> max_completion_tokens ("openai") or max_tokens
// (compatible servers know the older name, often not the newer), clamped to
// the model's max_output_tokens; absent stays absent (reasoning tokens come
// out of the same cap).
//
// Answers: choices[0].message -> blocks in this order, each with origin set to
// the provider's name: reasoning_content (DeepSeek, vLLM, else `reasoning`)
// -> kThinking; content -> kText; refusal -> kRefusal; tool_calls ->
// kToolUse. finish_reason is kept as raw_stop_reason and mapped: stop ->
// kEndTurn (kStopSequence with stop_sequence when a vLLM-style `stop_reason`
// string names the stop string matched; kRefusal when the answer is a
// refusal; kToolUse when it holds tool calls, as some servers say "stop"
// then), length -> kMaxTokens, tool_calls and the legacy function_call ->
// kToolUse, content_filter -> kContentFilter, anything else kOther. The
// choice's logprobs object -> logprobs_json.
//
// Streams ask for stream_options.include_usage: the usage then arrives in one
// last chunk whose `choices` is empty, just before `data: [DONE]`, the final
// event. A stream that reaches [DONE] without usage is an upstream error (a
// server that ignores include_usage): a call is never billed at 0. Deltas
// become chunks as they arrive, each block's index fixed when it first
// appears: reasoning_content / reasoning -> kThinking; content -> kText;
// refusal -> kRefusal; tool_calls[i]
// -> kToolCallStart (id, name) when call i first appears, then
// kToolArguments for each arguments piece. The logprobs of every chunk are
// joined into one object ({content: [...], refusal: [...]}).
#include <algorithm>
#include <cctype>
#include <map>

#include "switchboard/usage.h"
#include "providers/wire_common.h"
#include "providers/wire_format.h"

namespace switchboard {

namespace {

using wire::json;
using Type = ContentBlock::Type;

// What an "openai" json_object request gets when no message says "JSON".
constexpr const char* kJsonInstruction = "Answer with a JSON object.";

// The block's kind, as an error message names it.
const char* kind_of(Type type) {
  switch (type) {
    case Type::kText: return "a text block";
    case Type::kImage: return "an image";
    case Type::kDocument: return "a document";
    case Type::kAudio: return "audio";
    case Type::kToolUse: return "a tool use";
    case Type::kToolResult: return "a tool result";
    case Type::kThinking: return "a thinking block";
    case Type::kRedactedThinking: return "a redacted thinking block";
    case Type::kRefusal: return "a refusal";
    case Type::kOpaque: return "an opaque block";
  }
  return "a block";
}

// Reasoning the API has no way to take back (see the file comment).
bool is_reasoning(Type type) {
  return type == Type::kThinking || type == Type::kRedactedThinking || type == Type::kOpaque;
}

bool is_media(Type type) { return type == Type::kImage || type == Type::kDocument || type == Type::kAudio; }

json text_part(std::string text) { return wire::object_of("type", "text", "text", std::move(text)); }

// Parts as a message's content: "" for none, one text part as its string.
json content_of(json parts) {
  if (parts.empty()) return "";
  if (parts.size() == 1 && parts[0].value("type", "") == "text") return std::move(parts[0]["text"]);
  return parts;
}

std::string data_url(const MediaSource& source) {
  return "data:" + source.media_type + ";base64," + source.data;
}

// "wav" or "mp3" for an audio media type; compatible servers get any subtype.
std::string audio_format(std::string_view media_type, bool compatible) {
  if (media_type == "audio/wav" || media_type == "audio/x-wav" || media_type == "audio/wave") return "wav";
  if (media_type == "audio/mp3" || media_type == "audio/mpeg") return "mp3";
  if (compatible && media_type.starts_with("audio/") && media_type.size() > 6) {
    return std::string(media_type.substr(6));
  }
  return "";
}

std::string default_filename(std::string_view media_type) {
  if (media_type == "application/pdf") return "document.pdf";
  if (media_type == "text/plain") return "document.txt";
  if (media_type == "text/markdown") return "document.md";
  if (media_type == "text/csv") return "document.csv";
  if (media_type == "text/html") return "document.html";
  return "document";
}

bool mentions_json(const std::vector<ContentBlock>& blocks) {
  for (const ContentBlock& b : blocks) {
    if (b.type == Type::kToolResult && mentions_json(b.content)) return true;
    if (b.type != Type::kText) continue;
    auto it = std::search(b.text.begin(), b.text.end(), std::string_view("json").begin(),
                          std::string_view("json").end(), [](char a, char c) {
                            return std::tolower(static_cast<unsigned char>(a)) == c;
                          });
    if (it != b.text.end()) return true;
  }
  return false;
}

// The canonical stop reason for OpenAI's finish_reason.
StopReason stop_reason_of(const std::string& finish) {
  if (finish == "stop") return StopReason::kEndTurn;
  if (finish == "length") return StopReason::kMaxTokens;
  if (finish == "tool_calls" || finish == "function_call") return StopReason::kToolUse;
  if (finish == "content_filter") return StopReason::kContentFilter;
  return StopReason::kOther;
}

// Sets the response's stop reason from `finish` (kept raw) and what the
// answer holds; `matched_stop` is the stop string a server says it matched.
void settle_stop(ModelResponse& r, std::string finish, std::string matched_stop) {
  r.stop_reason = stop_reason_of(finish);
  r.raw_stop_reason = std::move(finish);
  if (r.stop_reason != StopReason::kEndTurn) return;
  auto holds = [&](Type type) {
    return std::any_of(r.content.begin(), r.content.end(), [&](const ContentBlock& b) { return b.type == type; });
  };
  if (!matched_stop.empty()) {
    r.stop_reason = StopReason::kStopSequence;
    r.stop_sequence = std::move(matched_stop);
  } else if (holds(Type::kRefusal)) {
    r.stop_reason = StopReason::kRefusal;
  } else if (holds(Type::kToolUse)) {
    r.stop_reason = StopReason::kToolUse;
  }
}

// vLLM's choice.stop_reason: the stop string matched ("" for EOS or a token id).
template <typename Node>
std::string matched_stop_of(const Node& choice) {
  return wire::string_at(choice, "stop_reason");
}

// A call's arguments: a JSON string as the API sends it (an object, as some
// servers send, as its text).
template <typename Node>
std::string arguments_of(const Node& function) {
  const auto it = json_node::member(function, "arguments");
  if (!it) return "";
  if (json_node::is_string(*it)) return std::string(json_node::string_of(*it));
  return json_node::is_object(*it) ? json_node::text_of(*it) : "";
}

// The reasoning text a compatible server put beside the answer.
template <typename Node>
std::string reasoning_of(const Node& message) {
  std::string text = wire::string_at(message, "reasoning_content");
  return text.empty() ? wire::string_at(message, "reasoning") : text;
}

ContentBlock block_of(Type type, std::string text, const std::string& origin) {
  ContentBlock b;
  b.type = type;
  b.text = std::move(text);
  b.origin = origin;
  return b;
}

void emit(const ChunkHandler& on_chunk, const StreamChunk& chunk) {
  if (on_chunk) on_chunk(chunk);
}

class OpenAIStreamDecoder final : public StreamDecoder {
 public:
  OpenAIStreamDecoder(std::string model_id, std::string origin) : origin_(std::move(origin)) {
    response_.model = std::move(model_id);
  }

  Status on_event(const SseEvent& event, const ChunkHandler& on_chunk) override {
    if (done_) return Status();  // nothing follows [DONE]
    if (event.data == "[DONE]") {
      done_ = true;
      return Status();
    }
    try {
      // The event read in place; its tree only when simdjson refuses it.
      if (std::optional<JsonDom> dom = JsonDom::parse(event.data)) {
        if (!json_node::is_object(dom->root())) return Status::upstream("stream event: body is not a JSON object");
        return read_chunk(dom->root(), on_chunk);
      }
      Result<json> parsed = wire::parse_body(event.data);
      if (!parsed.ok()) return Status::upstream("stream event: " + parsed.status().message());
      return read_chunk(*parsed, on_chunk);
    } catch (const json::exception& e) {
      return Status::upstream(std::string("stream event: ") + e.what());
    }
  }

  bool done() const override { return done_; }

  Result<ModelResponse> finish() override {
    if (!done_) return Status::unavailable("stream ended before its final event");
    if (usage_.is_null()) {
      return Status::upstream("stream carried no usage (does the server support stream_options.include_usage?)");
    }
    Result<Usage> usage = wire::usage_or_upstream(UsageFormat::kOpenAI, wire::object_of("usage", usage_));
    if (!usage.ok()) return usage.status();
    response_.usage = *usage;
    if (!logprobs_.is_null()) response_.logprobs_json = wire::to_text(logprobs_);
    settle_stop(response_, std::move(finish_reason_), std::move(matched_stop_));
    return std::move(response_);
  }

 private:
  // One chunk of the stream (a tree or a DOM: json_node.h).
  template <typename Node>
  Status read_chunk(const Node& chunk, const ChunkHandler& on_chunk) {
    if (const auto error = wire::object_at(chunk, "error")) {
      // A mid-stream error: the server's own failure is worth a retry.
      const std::string type = wire::string_at(*error, "type");
      const std::string what = "stream error: " + wire::describe_error(json_node::tree_of(*error));
      return type == "server_error" ? Status::unavailable(what) : Status::upstream(what);
    }
    if (std::string model = wire::string_at(chunk, "model"); !model.empty()) response_.model = std::move(model);
    if (const auto usage = wire::object_at(chunk, "usage")) usage_ = json_node::tree_of(*usage);
    const auto choices = wire::array_at(chunk, "choices");
    if (!choices) return Status();
    for (const auto& choice : json_node::items(*choices)) {
      if (!json_node::is_object(choice)) return Status::upstream("stream event: a choice is not an object");
      std::int64_t index = 0;
      if (const auto i = json_node::member(choice, "index")) {
        if (!json_node::is_integer(*i)) return Status::upstream("stream event: a choice's 'index' is not a whole number");
        index = json_node::int_of(*i);
      }
      if (index != 0) continue;  // one answer only (n = 1)
      if (const auto delta = wire::object_at(choice, "delta")) on_delta(*delta, on_chunk);
      if (const auto logprobs = wire::object_at(choice, "logprobs")) join_logprobs(json_node::tree_of(*logprobs));
      if (std::string reason = wire::string_at(choice, "finish_reason"); !reason.empty()) {
        finish_reason_ = std::move(reason);
        matched_stop_ = matched_stop_of(choice);
      }
    }
    return Status();
  }

  // The block at `index`, made (and its index fixed) on first use.
  ContentBlock& block(int& index, Type type) {
    if (index < 0) {
      index = static_cast<int>(response_.content.size());
      response_.content.push_back(block_of(type, "", origin_));
    }
    return response_.content[static_cast<std::size_t>(index)];
  }

  template <typename Node>
  void on_delta(const Node& delta, const ChunkHandler& on_chunk) {
    if (std::string piece = reasoning_of(delta); !piece.empty()) {
      block(thinking_, Type::kThinking).text += piece;
      emit(on_chunk, StreamChunk::of(StreamChunk::Kind::kThinking, thinking_, piece));
    }
    if (std::string piece = wire::string_at(delta, "content"); !piece.empty()) {
      block(text_, Type::kText).text += piece;
      emit(on_chunk, StreamChunk::of(StreamChunk::Kind::kText, text_, piece));
    }
    if (std::string piece = wire::string_at(delta, "refusal"); !piece.empty()) {
      block(refusal_, Type::kRefusal).text += piece;
      emit(on_chunk, StreamChunk::of(StreamChunk::Kind::kRefusal, refusal_, piece));
    }
    if (const auto calls = wire::array_at(delta, "tool_calls")) {
      for (const auto& call : json_node::items(*calls)) on_tool_call(call, on_chunk);
    }
  }

  // The first delta of a call carries its id and name, later ones pieces of
  // its arguments, all under the call's index. Servers that leave the index
  // out get one by id: a new id is a new call, none continues the last.
  template <typename Node>
  void on_tool_call(const Node& call, const ChunkHandler& on_chunk) {
    std::string id = wire::string_at(call, "id");
    int key = last_call_;
    if (const auto it = json_node::member(call, "index"); it && json_node::is_integer(*it)) {
      key = static_cast<int>(json_node::int_of(*it));
    } else if (!id.empty() && std::none_of(calls_.begin(), calls_.end(), [&](const auto& entry) {
                 return response_.content[static_cast<std::size_t>(entry.second)].tool_call.id == id;
               })) {
      key = calls_.empty() ? 0 : calls_.rbegin()->first + 1;
    }
    if (key < 0) key = 0;
    last_call_ = key;
    const auto function = wire::object_at(call, "function");
    std::string name = function ? wire::string_at(*function, "name") : "";
    auto [it, fresh] = calls_.try_emplace(key, -1);
    ContentBlock& b = block(it->second, Type::kToolUse);
    if (fresh) {
      b.tool_call.id = std::move(id);
      b.tool_call.name = std::move(name);
      emit(on_chunk, StreamChunk::tool_call_start(it->second, b.tool_call.id, b.tool_call.name));
    } else {
      // Some servers repeat the id and name on every delta: keep the first.
      if (b.tool_call.id.empty()) b.tool_call.id = std::move(id);
      if (b.tool_call.name.empty()) b.tool_call.name = std::move(name);
    }
    if (!function) return;
    if (std::string piece = arguments_of(*function); !piece.empty()) {
      b.tool_call.arguments_json += piece;
      emit(on_chunk, StreamChunk::of(StreamChunk::Kind::kToolArguments, it->second, piece));
    }
  }

  // Each chunk's logprobs hold that chunk's tokens: their arrays are joined.
  void join_logprobs(const json& logprobs) {
    if (logprobs_.is_null()) logprobs_ = json::object();
    for (const auto& [key, value] : logprobs.items()) {
      if (!value.is_array()) {
        if (!logprobs_.contains(key)) logprobs_[key] = value;  // {"content": null} stays null
        continue;
      }
      json& all = logprobs_[key];
      if (!all.is_array()) all = json::array();
      all.insert(all.end(), value.begin(), value.end());
    }
  }

  const std::string origin_;
  ModelResponse response_;
  int thinking_ = -1;  // block indices, -1 until the block appears
  int text_ = -1;
  int refusal_ = -1;
  std::map<int, int> calls_;  // the delta's call index -> block index
  int last_call_ = -1;
  std::string finish_reason_;
  std::string matched_stop_;
  json usage_;     // the last chunk's usage object
  json logprobs_;  // every chunk's logprobs, joined
  bool done_ = false;
};

class OpenAIWire final : public WireFormat {
 public:
  OpenAIWire(const ModelSpec& model, std::string api_key)
      : model_id_(model.model_id.empty() ? model.name : model.model_id),
        url_(wire::join_url(model.endpoint, "/chat/completions")),
        api_key_(std::move(api_key)),
        provider_(model.provider == "openai-compatible" ? "openai-compatible" : "openai"),
        compatible_(model.provider == "openai-compatible"),
        max_output_tokens_(model.max_output_tokens),
        budgets_(model.thinking_budget),
        thinking_(model.capabilities.thinking) {}

  Result<HttpRequest> build_request(const ModelRequest& request, bool stream) const override {
    try {
      // The messages, most of the body, are written as text straight into
      // it; the other members as a tree, written around them in key order.
      json body = wire::object_of("model", model_id_, "messages", nullptr);  // a placeholder: ours, not passthrough's
      if (Status s = add_tools(request, body); !s.ok()) return s;
      if (Status s = add_output_format(request.output_format, body); !s.ok()) return s;
      if (Status s = add_sampling(request.sampling, body); !s.ok()) return s;
      if (Status s = add_reasoning(request.reasoning, body); !s.ok()) return s;
      if (request.max_output_tokens) {
        std::int64_t cap = *request.max_output_tokens;
        if (max_output_tokens_ > 0) cap = std::min(cap, max_output_tokens_);
        body[compatible_ ? "max_tokens" : "max_completion_tokens"] = cap;
      }
      if (stream) {
        body["stream"] = true;
        body["stream_options"] = wire::object_of("include_usage", true);
      }

      HttpRequest http;
      http.url = url_;
      http.headers.emplace_back("Content-Type", "application/json");
      http.headers.emplace_back("Accept", stream ? "text/event-stream" : "application/json");
      if (Status s = wire::add_passthrough(request.passthrough, WireApi::kOpenAIChat, "OpenAI Chat Completions",
                                           body, http.headers);
          !s.ok()) {
        return s;
      }
      if (!api_key_.empty()) http.headers.emplace_back("Authorization", "Bearer " + api_key_);
      if (Status s = write_body(request, body, http.body); !s.ok()) return s;
      return http;
    } catch (const json::exception& e) {
      return Status::internal(std::string("building the request: ") + e.what());
    }
  }

  Result<ModelResponse> parse_response(std::string_view body) const override {
    return wire::read_response_in_place(body, UsageFormat::kOpenAI, [&](const auto& j, ModelResponse& r) -> Status {
      const auto choices = wire::array_at(j, "choices");
      const auto choice = choices ? json_node::first(*choices) : decltype(json_node::first(*choices)){};
      if (!choice) return Status::upstream("body has no 'choices'");
      const auto message = wire::object_at(*choice, "message");
      if (!message) return Status::upstream("'choices[0]' has no 'message' object");

      r.model = wire::string_at(j, "model");
      if (r.model.empty()) r.model = model_id_;
      if (std::string text = reasoning_of(*message); !text.empty()) {
        r.content.push_back(block_of(Type::kThinking, std::move(text), provider_));
      }
      if (std::string text = wire::string_at(*message, "content"); !text.empty()) {
        r.content.push_back(block_of(Type::kText, std::move(text), provider_));
      }
      if (std::string text = wire::string_at(*message, "refusal"); !text.empty()) {
        r.content.push_back(block_of(Type::kRefusal, std::move(text), provider_));
      }
      if (const auto calls = wire::array_at(*message, "tool_calls")) {
        for (const auto& call : json_node::items(*calls)) {
          const auto function = wire::object_at(call, "function");
          if (!function) return Status::upstream("a tool call has no 'function' object");
          ContentBlock b = ContentBlock::of_tool_call(
              {wire::string_at(call, "id"), wire::string_at(*function, "name"), arguments_of(*function)});
          b.origin = provider_;
          r.content.push_back(std::move(b));
        }
      }
      if (const auto logprobs = wire::object_at(*choice, "logprobs")) r.logprobs_json = json_node::text_of(*logprobs);
      settle_stop(r, wire::string_at(*choice, "finish_reason"), matched_stop_of(*choice));
      return Status();
    });
  }

  std::unique_ptr<StreamDecoder> stream_decoder() const override {
    return std::make_unique<OpenAIStreamDecoder>(model_id_, provider_);
  }

 private:
  // The image, document or audio block as a content part.
  Result<json> media_part(const ContentBlock& b, const std::string& where) const {
    const MediaSource& source = b.source;
    if (b.type == Type::kImage) {
      json image;
      if (source.kind == MediaSource::Kind::kFileId) {
        return Status::upstream("cannot take an image by file id (Chat Completions takes image URLs and data)");
      }
      if (source.kind == MediaSource::Kind::kBase64 && source.media_type.empty()) {
        return Status::invalid_argument(where + ": a base64 image has no media type");
      }
      image["url"] = source.kind == MediaSource::Kind::kUrl ? source.data : data_url(source);
      if (!b.detail.empty()) image["detail"] = b.detail;
      return wire::object_of("type", "image_url", "image_url", std::move(image));
    }
    if (b.type == Type::kDocument) {
      json file;
      switch (source.kind) {
        case MediaSource::Kind::kUrl:
          return Status::upstream("cannot take a document by URL (Chat Completions takes files as data or file ids)");
        case MediaSource::Kind::kFileId:
          if (b.origin != provider_) {
            return Status::upstream("cannot take a file id made by '" + b.origin + "' (only " + provider_ +
                                    "'s own files)");
          }
          file["file_id"] = source.data;
          break;
        case MediaSource::Kind::kBase64:
          if (source.media_type.empty()) {
            return Status::invalid_argument(where + ": a base64 document has no media type");
          }
          file["filename"] = b.title.empty() ? default_filename(source.media_type) : b.title;
          file["file_data"] = data_url(source);
          break;
      }
      return wire::object_of("type", "file", "file", std::move(file));
    }
    // Audio.
    if (source.kind != MediaSource::Kind::kBase64) {
      return Status::upstream("cannot take audio by URL or file id (Chat Completions takes audio as data)");
    }
    const std::string format = audio_format(source.media_type, compatible_);
    if (format.empty()) {
      return Status::upstream("cannot take audio of type '" + source.media_type +
                              "' (Chat Completions takes wav and mp3)");
    }
    return wire::object_of("type", "input_audio", "input_audio", wire::object_of("data", source.data, "format", format));
  }

  // The body's text: `body`'s members in key order (as dump_json writes a
  // tree), its "messages" placeholder's place taking the messages' text,
  // written in place (write_messages). The room is reserved up front: the
  // messages' texts and a little for each, so a long conversation's body
  // is not copied as it grows.
  Status write_body(const ModelRequest& request, const json& body, std::string& out) const {
    std::size_t room = 512;
    for (const Message& m : request.messages) room += 64 + message_text_bytes(m);
    out.reserve(room);
    out += '{';
    bool first = true;
    for (const auto& [key, value] : body.get_ref<const json::object_t&>()) {
      if (!first) out += ',';
      first = false;
      append_json_string(out, key);
      out += ':';
      if (key == "messages") {
        if (Status s = write_messages(request, out); !s.ok()) return s;
      } else {
        append_json(out, value);
      }
    }
    out += '}';
    return Status();
  }

  // The bytes of a message's texts (its blocks', a tool result's blocks',
  // a tool call's arguments'), before escaping.
  static std::size_t message_text_bytes(const Message& m) {
    std::size_t n = 0;
    for (const ContentBlock& b : m.content) {
      n += b.text.size() + b.tool_call.arguments_json.size();
      for (const ContentBlock& inner : b.content) n += inner.text.size();
    }
    return n;
  }

  // The messages array's text, one message after another, each written as
  // dump_json writes its tree (members in key order). A json_object format
  // whose messages never say "JSON" gets kJsonInstruction (the API's own
  // rule): added to a first system message, else as one of its own, first.
  class MessageList {
   public:
    MessageList(std::string& out, bool json_word) : out_(out), json_word_(json_word) { out_ += '['; }

    // Whether the instruction is due and the next message is the first: a
    // system message there takes it in its content (and says so to next()
    // or add(), so the instruction gets no message of its own).
    bool takes_instruction() const { return json_word_ && count_ == 0; }

    // Starts the next message's text: a comma, or first the instruction's
    // own message when it is due and this is not the system message taking it.
    std::string& next(bool system_first = false) {
      if (json_word_ && count_ == 0 && !system_first) instruction();
      if (count_++ > 0) out_ += ',';
      return out_;
    }

    void add(const json& message, bool system_first = false) { append_json(next(system_first), message); }

    void finish() {
      if (json_word_ && count_ == 0) instruction();
      out_ += ']';
    }

   private:
    // The instruction as a message of its own, the first.
    void instruction() {
      out_ += R"({"content":)";
      append_json_string(out_, kJsonInstruction);
      out_ += R"(,"role":"system"})";
      ++count_;
    }

    std::string& out_;
    const bool json_word_;
    std::size_t count_ = 0;
  };

  // {"content":<text>,"name":<name>,"role":<role>}, name only when set.
  static void write_text_message(std::string& out, std::string_view role, std::string_view text,
                                 const std::string& name) {
    out += R"({"content":)";
    append_json_string(out, text);
    write_name_and_role(out, role, name);
  }
  // The same with texts as content (write_text_content: several as text parts).
  static void write_text_message(std::string& out, std::string_view role, const std::vector<std::string_view>& texts,
                                 const std::string& name) {
    out += R"({"content":)";
    write_text_content(out, texts);
    write_name_and_role(out, role, name);
  }
  // A text message's members after its content, and its end.
  static void write_name_and_role(std::string& out, std::string_view role, const std::string& name) {
    if (!name.empty()) {
      out += R"(,"name":)";
      append_json_string(out, name);
    }
    out += R"(,"role":)";
    append_json_string(out, role);
    out += '}';
  }

  // Texts as a message's content, as content_of writes text parts: "" for
  // none, one as its string, several as text parts.
  static void write_text_content(std::string& out, const std::vector<std::string_view>& texts) {
    if (texts.size() == 1) {
      append_json_string(out, texts[0]);
      return;
    }
    if (texts.empty()) {
      out += R"("")";
      return;
    }
    out += '[';
    for (std::size_t i = 0; i < texts.size(); ++i) {
      if (i > 0) out += ',';
      out += R"({"text":)";
      append_json_string(out, texts[i]);
      out += R"(,"type":"text"})";
    }
    out += ']';
  }

  Status write_messages(const ModelRequest& request, std::string& text) const {
    const std::vector<Message>& in = request.messages;
    bool json_word = request.output_format.type == OutputFormat::Type::kJsonObject;
    for (const Message& m : in) json_word = json_word && !mentions_json(m.content);
    MessageList out(text, json_word);
    json attachments = json::array();  // tool results' media, for the next user message
    auto flush = [&] {
      if (attachments.empty()) return;
      out.add(wire::object_of("role", "user", "content", std::move(attachments)));
      attachments = json::array();
    };
    for (std::size_t i = 0; i < in.size(); ++i) {
      const Message& m = in[i];
      const auto where = [i] { return "message " + std::to_string(i + 1); };
      // The plain path: one text block is the message's string content.
      const bool one_text = m.content.size() == 1 && m.content[0].type == Type::kText;
      // A participant's name goes on the message of its own role.
      const auto named = [&m](json message) {
        if (!m.name.empty()) message["name"] = m.name;
        return message;
      };
      if (m.role == "system") {
        flush();
        const bool instructed = out.takes_instruction();
        if (one_text && !instructed) {
          write_text_message(out.next(), "system", m.content[0].text, m.name);
          continue;
        }
        json parts = json::array();
        for (const ContentBlock& b : m.content) {
          if (b.type == Type::kText) {
            parts.push_back(text_part(b.text));
          } else if (is_media(b.type)) {
            return Status::upstream(std::string("cannot take ") + kind_of(b.type) +
                                    " in a system message (Chat Completions takes text there)");
          } else if (!is_reasoning(b.type)) {
            return Status::invalid_argument(where() + ": a system message cannot hold " + kind_of(b.type));
          }
        }
        json message = named(wire::object_of("role", "system", "content", content_of(std::move(parts))));
        if (instructed) {
          json& content = message["content"];
          if (content.is_string()) {
            content = content.get<std::string>() + "\n\n" + kJsonInstruction;
          } else {
            content.push_back(text_part(kJsonInstruction));
          }
        }
        out.add(message, instructed);
      } else if (m.role == "user" && one_text && attachments.empty()) {
        write_text_message(out.next(), "user", m.content[0].text, m.name);
      } else if (m.role == "user" || m.role == "tool") {
        // The message's own parts, in order: a text's view, or a media part.
        std::vector<std::variant<std::string_view, json>> parts;
        bool media = false;
        bool results = false;
        for (const ContentBlock& b : m.content) {
          if (b.type == Type::kToolResult) {
            if (Status s = write_tool_message(b, out, attachments, where); !s.ok()) return s;
            results = true;
          } else if (m.role == "tool" && !is_reasoning(b.type)) {
            return Status::invalid_argument(where() + ": a tool message holds tool results only, not " +
                                            kind_of(b.type));
          } else if (b.type == Type::kText) {
            parts.emplace_back(std::string_view(b.text));
          } else if (is_media(b.type)) {
            Result<json> part = media_part(b, where());
            if (!part.ok()) return part.status();
            parts.emplace_back(std::move(*part));
            media = true;
          } else if (!is_reasoning(b.type)) {
            return Status::invalid_argument(where() + ": a user message cannot hold " + kind_of(b.type));
          }
        }
        if (!parts.empty() || (m.role == "user" && !results)) {
          if (!media && attachments.empty()) {  // texts only (a turn after tool results, say): as text
            std::vector<std::string_view> texts;
            texts.reserve(parts.size());
            for (const auto& part : parts) texts.push_back(std::get<std::string_view>(part));
            write_text_message(out.next(), "user", texts, m.name);
            continue;
          }
          // The attachments waiting lead this user message's own parts.
          json content = std::move(attachments);
          attachments = json::array();
          for (auto& part : parts) {
            if (auto* text = std::get_if<std::string_view>(&part)) {
              content.push_back(text_part(std::string(*text)));
            } else {
              content.push_back(std::move(std::get<json>(part)));
            }
          }
          out.add(named(wire::object_of("role", "user", "content", content_of(std::move(content)))));
        }
      } else if (m.role == "assistant") {
        flush();
        if (Status s = write_assistant(m, out, where); !s.ok()) return s;
      } else {
        return Status::invalid_argument(where() + ": unknown role '" + m.role + "'");
      }
    }
    flush();
    out.finish();
    return Status();
  }

  // A kToolResult block as a tool message {content, role: tool,
  // tool_call_id}: its texts as content (the first marked when the result is
  // an error); its media parts go to `attachments`, for the next user
  // message, behind a text naming the call, and the content says they follow.
  template <typename Where>
  Status write_tool_message(const ContentBlock& result, MessageList& out, json& attachments,
                            const Where& where) const {
    std::vector<std::string_view> texts;
    json media = json::array();
    for (const ContentBlock& b : result.content) {
      if (b.type == Type::kText) {
        texts.push_back(b.text);
      } else if (is_media(b.type)) {
        Result<json> part = media_part(b, where());
        if (!part.ok()) return part.status();
        media.push_back(std::move(*part));
      } else if (!is_reasoning(b.type)) {
        return Status::invalid_argument(where() + ": a tool result cannot hold " + kind_of(b.type));
      }
    }
    if (!media.empty()) {
      if (texts.empty()) texts.emplace_back("(attachments follow in the next user message)");
      attachments.push_back(text_part("Attachments of tool call " + result.tool_use_id + ":"));
      for (json& part : media) attachments.push_back(std::move(part));
    }
    std::string error;  // the first text, marked as an error
    if (result.is_error) {
      const std::string_view first = texts.empty() ? std::string_view() : texts[0];
      error = first.empty() ? "Error" : "Error: " + std::string(first);
      if (texts.empty()) texts.emplace_back();
      texts[0] = error;
    }
    std::string& text = out.next();
    text += R"({"content":)";
    write_text_content(text, texts);
    text += R"(,"role":"tool","tool_call_id":)";
    append_json_string(text, result.tool_use_id);
    text += '}';
    return Status();
  }

  // An assistant message {content, name, refusal, role, tool_calls}: its
  // text blocks as content (null beside tool calls or a refusal), refusals
  // joined, tool calls {function {arguments, name}, id, type: function}.
  template <typename Where>
  static Status write_assistant(const Message& m, MessageList& out, const Where& where) {
    std::vector<std::string_view> texts;
    std::vector<const ToolCall*> calls;
    std::string refusal;
    for (const ContentBlock& b : m.content) {
      switch (b.type) {
        case Type::kText: texts.push_back(b.text); break;
        case Type::kRefusal: refusal += b.text; break;
        case Type::kToolUse: calls.push_back(&b.tool_call); break;
        case Type::kImage:
        case Type::kDocument:
        case Type::kAudio:
          return Status::upstream(std::string("cannot take ") + kind_of(b.type) +
                                  " in an assistant message (Chat Completions takes text, refusals and tool calls "
                                  "there)");
        case Type::kToolResult:
          return Status::invalid_argument(where() + ": an assistant message cannot hold a tool result");
        case Type::kThinking:
        case Type::kRedactedThinking:
        case Type::kOpaque: break;  // no way to send reasoning back (file comment)
      }
    }
    std::string& text = out.next();
    text += R"({"content":)";
    // Content may be null only beside tool calls or a refusal.
    if (texts.empty() && (!calls.empty() || !refusal.empty())) {
      text += "null";
    } else {
      write_text_content(text, texts);
    }
    if (!m.name.empty()) {
      text += R"(,"name":)";
      append_json_string(text, m.name);
    }
    if (!refusal.empty()) {
      text += R"(,"refusal":)";
      append_json_string(text, refusal);
    }
    text += R"(,"role":"assistant")";
    if (!calls.empty()) {
      text += R"(,"tool_calls":[)";
      for (std::size_t i = 0; i < calls.size(); ++i) {
        const ToolCall& c = *calls[i];
        if (i > 0) text += ',';
        text += R"({"function":{"arguments":)";
        append_json_string(text, c.arguments_json.empty() ? std::string_view("{}") : c.arguments_json);
        text += R"(,"name":)";
        append_json_string(text, c.name);
        text += R"(},"id":)";
        append_json_string(text, c.id);
        text += R"(,"type":"function"})";
      }
      text += ']';
    }
    text += '}';
    return Status();
  }

  Status add_tools(const ModelRequest& request, json& body) const {
    if (!request.tools.empty()) {
      json tools = json::array();
      for (const ToolSpec& t : request.tools) {
        if (!t.opaque_json.empty()) {
          if (t.origin != provider_) {
            return Status::upstream("cannot take " + (t.origin.empty() ? std::string("another provider") : t.origin) +
                                    "'s own tool '" + t.name + "'");
          }
          Result<json> tool = wire::parse_request_object(t.opaque_json, "tool '" + t.name + "'");
          if (!tool.ok()) return tool.status();
          tools.push_back(std::move(*tool));
          continue;
        }
        Result<json> parameters = wire::parse_request_object(t.parameters_json, "tool '" + t.name + "' parameters");
        if (!parameters.ok()) return parameters.status();
        json function = wire::object_of("name", t.name, "parameters", std::move(*parameters));
        if (!t.description.empty()) function["description"] = t.description;
        if (t.strict) function["strict"] = *t.strict;
        tools.push_back(wire::object_of("type", "function", "function", std::move(function)));
      }
      body["tools"] = std::move(tools);
      if (request.parallel_tool_calls) body["parallel_tool_calls"] = *request.parallel_tool_calls;
    }
    if (!request.tool_choice) return Status();
    const ToolChoice& choice = *request.tool_choice;
    if (request.tools.empty()) {
      if (choice.mode == ToolChoice::Mode::kRequired || choice.mode == ToolChoice::Mode::kNamed) {
        return Status::invalid_argument("tool_choice asks for a tool call but the request has no tools");
      }
      return Status();  // auto or none without tools: nothing to choose from
    }
    switch (choice.mode) {
      case ToolChoice::Mode::kAuto: body["tool_choice"] = "auto"; break;
      case ToolChoice::Mode::kNone: body["tool_choice"] = "none"; break;
      case ToolChoice::Mode::kRequired: body["tool_choice"] = "required"; break;
      case ToolChoice::Mode::kNamed:
        body["tool_choice"] = wire::object_of("type", "function", "function", wire::object_of("name", choice.name));
        break;
    }
    return Status();
  }

  static Status add_output_format(const OutputFormat& format, json& body) {
    switch (format.type) {
      case OutputFormat::Type::kText: break;
      case OutputFormat::Type::kJsonObject: body["response_format"] = wire::object_of("type", "json_object"); break;
      case OutputFormat::Type::kJsonSchema: {
        Result<json> schema = wire::parse_request_object(format.schema_json, "the output format's schema");
        if (!schema.ok()) return schema.status();
        json spec = wire::object_of("name", format.name.empty() ? "response" : format.name, "schema",
                                    std::move(*schema), "strict", format.strict);
        if (!format.description.empty()) spec["description"] = format.description;
        body["response_format"] = wire::object_of("type", "json_schema", "json_schema", std::move(spec));
        break;
      }
    }
    return Status();
  }

  Status add_sampling(const Sampling& s, json& body) const {
    if (s.temperature) body["temperature"] = *s.temperature;
    if (s.top_p) body["top_p"] = *s.top_p;
    if (s.top_k) {
      if (!compatible_) return Status::upstream("cannot take top_k (OpenAI Chat Completions has no top_k)");
      body["top_k"] = *s.top_k;
    }
    if (!s.stop.empty()) body["stop"] = s.stop;
    if (s.seed) body["seed"] = *s.seed;
    if (s.presence_penalty) body["presence_penalty"] = *s.presence_penalty;
    if (s.frequency_penalty) body["frequency_penalty"] = *s.frequency_penalty;
    if (s.logprobs || s.top_logprobs) body["logprobs"] = true;
    if (s.top_logprobs) body["top_logprobs"] = *s.top_logprobs;
    if (!s.user.empty()) body["user"] = s.user;
    return Status();
  }

  Status add_reasoning(const ReasoningRequest& r, json& body) const {
    std::string effort;
    bool asked = false;  // the caller asked for reasoning explicitly
    if (r.budget_tokens) {
      const std::int64_t budget = *r.budget_tokens;
      effort = budget <= 0                ? "none"
               : budget <= budgets_.low    ? "low"
               : budget <= budgets_.medium ? "medium"
                                           : "high";
      asked = budget > 0;
    } else if (r.effort) {
      effort = std::string(to_string(*r.effort));
      asked = *r.effort != Effort::kNone;
    } else if (r.level != Reasoning::kDefault) {
      effort = std::string(to_string(r.level));
    }
    if (effort.empty()) return Status();
    if (!thinking_) {
      if (asked) {
        return Status::upstream("cannot take a reasoning setting (the model's capabilities say thinking = false)");
      }
      return Status();  // the rules' level, or "off", on a model that does not reason
    }
    body["reasoning_effort"] = std::move(effort);
    return Status();
  }

  const std::string model_id_;
  const std::string url_;
  const std::string api_key_;
  const std::string provider_;  // the origin of the blocks it makes
  const bool compatible_;
  const std::int64_t max_output_tokens_;
  const ThinkingBudgets budgets_;
  const bool thinking_;
};

}  // namespace

std::unique_ptr<WireFormat> make_openai_wire(const ModelSpec& model, std::string api_key) {
  return std::make_unique<OpenAIWire>(model, std::move(api_key));
}

}  // namespace switchboard
