// count_request_tokens (switchboard/tokens.h): a request's input tokens on a
// model, with the framing each provider adds around the text. The figures
// and where each provider documents them are in tokens.h.
#include <cmath>

#include "switchboard/tokens.h"
#include "tokenize/encodings.h"

namespace switchboard {

namespace {

// OpenAI's chat framing (the cookbook's count): per message, per name, the
// reply's priming; per function tool and once for the tool block.
constexpr std::int64_t kPerMessage = 3;
constexpr std::int64_t kPerName = 1;
constexpr std::int64_t kReplyPriming = 3;
constexpr std::int64_t kPerFunction = 7;
constexpr std::int64_t kToolsEnd = 12;
constexpr std::int64_t kPerToolCall = 3;
// Anthropic's tool-use system prompt (the largest of its figures per model).
constexpr std::int64_t kAnthropicToolPrompt = 346;
// Media at their largest, since a request carries no image size (tokens.h).
constexpr std::int64_t kOpenAIImageLow = 85;
constexpr std::int64_t kOpenAIImageHigh = 85 + 170 * 8;
constexpr std::int64_t kAnthropicImage = 1600;
constexpr std::int64_t kGeminiImage = 1120;
constexpr std::int64_t kDocument = 3000;
constexpr std::int64_t kAudio = 2000;

class Counter {
 public:
  Counter(const ModelSpec& model, const detail::BpeEncoding& enc) : model_(model), enc_(enc) {}

  std::int64_t text(std::string_view s) const { return s.empty() ? 0 : enc_.count(s); }

  std::int64_t image(const ContentBlock& b) const {
    if (model_.provider == "anthropic") return kAnthropicImage;
    if (model_.provider == "gemini") return kGeminiImage;
    return b.detail == "low" ? kOpenAIImageLow : kOpenAIImageHigh;
  }

  std::int64_t block(const ContentBlock& b) const {
    switch (b.type) {
      case ContentBlock::Type::kText:
      case ContentBlock::Type::kThinking:
      case ContentBlock::Type::kRefusal:
        return text(b.text);
      case ContentBlock::Type::kImage:
        return image(b);
      case ContentBlock::Type::kDocument:
        return kDocument + text(b.title);
      case ContentBlock::Type::kAudio:
        return kAudio;
      case ContentBlock::Type::kToolUse:
        return kPerToolCall + text(b.tool_call.name) + text(b.tool_call.arguments_json);
      case ContentBlock::Type::kToolResult: {
        std::int64_t n = 0;
        for (const ContentBlock& inner : b.content) n += block(inner);
        return n;
      }
      case ContentBlock::Type::kOpaque:
        return text(b.opaque_json);
      case ContentBlock::Type::kRedactedThinking:
        return 0;  // the provider's opaque data: what it stands for is not known here
    }
    return 0;
  }

  std::int64_t request(const ModelRequest& r) const {
    std::int64_t n = kReplyPriming;
    for (const Message& m : r.messages) {
      n += kPerMessage + text(m.role);
      if (!m.name.empty()) n += kPerName + text(m.name);
      for (const ContentBlock& b : m.content) n += block(b);
    }
    std::int64_t functions = 0;
    for (const ToolSpec& t : r.tools) {
      if (!t.opaque_json.empty()) {
        n += text(t.opaque_json);
        continue;
      }
      n += kPerFunction + text(t.name) + text(t.description) + text(t.parameters_json);
      ++functions;
    }
    if (functions > 0) n += kToolsEnd;
    if (!r.tools.empty() && model_.provider == "anthropic") n += kAnthropicToolPrompt;
    if (r.output_format.type == OutputFormat::Type::kJsonSchema) {
      n += text(r.output_format.name) + text(r.output_format.description) + text(r.output_format.schema_json);
    }
    return n;
  }

 private:
  const ModelSpec& model_;
  const detail::BpeEncoding& enc_;
};

}  // namespace

Result<std::int64_t> count_request_tokens_unscaled(const ModelSpec& model, const ModelRequest& request) {
  const std::string tokenizer = model.tokenizer.empty() ? default_tokenizer(model.model_id) : model.tokenizer;
  Result<const detail::BpeEncoding*> enc = detail::find_encoding(tokenizer);
  if (!enc.ok()) return enc.status();
  return Counter(model, **enc).request(request);
}

std::int64_t scale_token_count(const ModelSpec& model, std::int64_t unscaled) {
  // Exact below 2^53, so a factor of 1 leaves the count as it is.
  return static_cast<std::int64_t>(std::ceil(static_cast<double>(unscaled) * model.token_factor));
}

Result<std::int64_t> count_request_tokens(const ModelSpec& model, const ModelRequest& request) {
  Result<std::int64_t> n = count_request_tokens_unscaled(model, request);
  if (!n.ok()) return n;
  return scale_token_count(model, *n);
}

}  // namespace switchboard
