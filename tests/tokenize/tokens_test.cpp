// Token counts (switchboard/tokens.h): the byte-pair merge on a small
// encoding of our own, the shipped encodings on texts whose tiktoken counts
// are known (the whole corpus: tokenizer_parity), encoder-file errors, the
// default tokenizer per model, and a request's count with each provider's
// overheads.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "switchboard/tokens.h"
#include "tokenize/bpe.h"

using namespace switchboard;
using switchboard::detail::BpeEncoding;

namespace {

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) | (static_cast<unsigned char>(bytes[i + 1]) << 8);
    out += std::string{kAlphabet[(v >> 18) & 63], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

// An encoder file in tiktoken's shape: every byte (ranks 0..255), then
// `merges` in rank order from 256; words split at spaces.
std::string encoder_json(const std::vector<std::string>& merges) {
  std::string ranks = "! 0";
  for (int b = 0; b < 256; ++b) ranks += " " + base64(std::string(1, static_cast<char>(b)));
  for (const std::string& m : merges) ranks += " " + base64(m);
  return R"({"pat_str":" ?\\S+|\\s+","special_tokens":{"<|end|>":1000},"bpe_ranks":")" + ranks + "\"}";
}

std::unique_ptr<const BpeEncoding> encoding(const std::vector<std::string>& merges) {
  auto enc = BpeEncoding::from_json(encoder_json(merges), "test.json");
  REQUIRE_MESSAGE(enc.ok(), enc.status().message());
  return std::move(*enc);
}

std::int64_t count(std::string_view tokenizer, std::string_view text) {
  Result<std::int64_t> n = count_text_tokens(tokenizer, text);
  REQUIRE_MESSAGE(n.ok(), n.status().message());
  return *n;
}

ModelSpec model(std::string provider, std::string model_id, double factor = 1.0) {
  ModelSpec m;
  m.name = model_id;
  m.provider = std::move(provider);
  m.model_id = std::move(model_id);
  m.tokenizer = default_tokenizer(m.model_id);
  m.token_factor = factor;
  return m;
}

std::int64_t request_tokens(const ModelSpec& m, const ModelRequest& r) {
  Result<std::int64_t> n = count_request_tokens(m, r);
  REQUIRE_MESSAGE(n.ok(), n.status().message());
  return *n;
}

}  // namespace

TEST_SUITE("tokenize") {

TEST_CASE("the merge joins the lowest-ranked adjacent pair first, the leftmost of equal pairs") {
  const auto enc = encoding({"ab", "bc", "abc", "aa"});  // ranks 256, 257, 258, 259
  CHECK(enc->encode("abc") == std::vector<std::uint32_t>{258});          // a whole token: one lookup
  CHECK(enc->encode("abcd") == std::vector<std::uint32_t>{258, 'd'});    // ab (256) first, then abc
  CHECK(enc->encode("aaa") == std::vector<std::uint32_t>{259, 'a'});     // "aa" twice: the left one
  CHECK(enc->encode("xbc") == std::vector<std::uint32_t>{'x', 257});
  CHECK(enc->encode("ab ab") == std::vector<std::uint32_t>{256, ' ', 256});  // " ab" is one piece
  CHECK(enc->count("ab ab") == 3);
  CHECK(enc->count("") == 0);
  // A special token's string is text, unless specials are allowed.
  CHECK(enc->count("x<|end|>y") == 9);
  CHECK(enc->count_with_special("x<|end|>y") == 3);
}

TEST_CASE("a piece counted under one encoding is never answered from the cache for another") {
  const auto merged = encoding({"ab"});
  const auto bytes_only = encoding({});
  for (int i = 0; i < 3; ++i) {
    CHECK(merged->count("ab") == 1);
    CHECK(bytes_only->count("ab") == 2);
  }
}

TEST_CASE("a short text is remembered whole: its own count again, never another text's or encoding's") {
  const auto merged = encoding({"ab"});
  const auto bytes_only = encoding({});
  // Texts of 1 to 16 bytes that share their first bytes, differ only in
  // length (a zero byte pads the cache's words) or in one byte, in turns.
  const std::vector<std::string> texts = {"a",  "ab", "ab ", std::string("ab\0", 3), "ba", "abab", "ab ab",
                                          "xyab", "abababababababab", "ababababababab x", "\xff", "\xEF\xBF\xBD"};
  for (int round = 0; round < 3; ++round) {
    for (const std::string& text : texts) {
      CAPTURE(text);
      const std::int64_t fresh = static_cast<std::int64_t>(merged->encode(text).size());  // encode() keeps no cache
      CHECK(merged->count(text) == fresh);
      CHECK(bytes_only->count(text) == static_cast<std::int64_t>(bytes_only->encode(text).size()));
    }
  }
  CHECK(merged->count("ab") == 1);
  CHECK(bytes_only->count("ab") == 2);
  // Invalid UTF-8 in a short text still counts as U+FFFD.
  CHECK(merged->count("\xff") == merged->count("\xEF\xBF\xBD"));
}

TEST_CASE("a text of 17 to 255 bytes is remembered by its bytes: its own count again, never another's") {
  const auto merged = encoding({"ab"});
  const auto bytes_only = encoding({});
  // Texts at both ends of the range; others that differ from them only in
  // their length (a zero byte pads the hash's last word), their last byte or
  // a byte in the middle; and a thousand more than the cache has slots, so
  // that slots are shared and texts replace each other.
  std::vector<std::string> texts;
  const std::string longest(BpeEncoding::kRememberedTextBytes - 1, 'a');
  for (const std::string& base : {std::string(17, 'a'), std::string("ab ab ab ab ab ab"), longest}) {
    texts.push_back(base);
    if (base.size() < longest.size()) texts.push_back(base + std::string(1, '\0'));
    std::string last = base;
    last.back() = 'b';
    texts.push_back(last);
    std::string middle = base;
    middle[middle.size() / 2] = ' ';
    texts.push_back(middle);
  }
  texts.push_back(std::string(20, 'x') + "\xff");  // invalid UTF-8: counted as U+FFFD
  std::mt19937 random(7);
  for (int i = 0; i < 1500; ++i) {
    std::string text(17 + random() % (BpeEncoding::kRememberedTextBytes - 17), ' ');
    for (char& c : text) c = "ab xy"[random() % 5];
    texts.push_back(std::move(text));
  }
  for (int round = 0; round < 2; ++round) {
    for (const std::string& text : texts) {
      CAPTURE(text);
      REQUIRE(merged->count(text) == static_cast<std::int64_t>(merged->encode(text).size()));  // encode() keeps no cache
      REQUIRE(bytes_only->count(text) == static_cast<std::int64_t>(bytes_only->encode(text).size()));
    }
  }
  CHECK(merged->count(std::string(20, 'x') + "\xff") == merged->count(std::string(20, 'x') + "\xEF\xBF\xBD"));
}

TEST_CASE("a long text is remembered by its bytes: its own count again, never another text's or encoding's") {
  const auto merged = encoding({"ab"});
  const auto bytes_only = encoding({});
  // Each length from 256 to 300 bytes (the hash reads 32 bytes at a time,
  // then the tail), with variants that differ only in their last byte, a
  // middle byte or a trailing zero byte; then 3,000 random texts of 300
  // bytes and 1,000 of up to 3,000, more than the cache has slots, so that
  // texts of one length share slots and replace each other.
  std::vector<std::string> texts;
  std::string base;
  while (base.size() < 300) base += "ab ab xy ";
  for (std::size_t size = BpeEncoding::kRememberedTextBytes; size <= 300; ++size) {
    const std::string text = base.substr(0, size);
    texts.push_back(text);
    std::string last = text;
    last.back() = last.back() == 'a' ? 'q' : 'a';
    texts.push_back(last);
    std::string middle = text;
    middle[size / 2] = middle[size / 2] == 'b' ? 'y' : 'b';
    texts.push_back(middle);
    texts.push_back(text + std::string(1, '\0'));
  }
  std::mt19937 random(11);
  for (int i = 0; i < 4000; ++i) {
    std::string text(i < 3000 ? 300 : BpeEncoding::kRememberedTextBytes + random() % 2744, ' ');
    for (char& c : text) c = "ab xy"[random() % 5];
    texts.push_back(std::move(text));
  }
  // Two rounds under one encoding (a hit needs the same encoding), then one
  // under the other, whose texts take the same slots.
  for (int round = 0; round < 2; ++round) {
    for (const std::string& text : texts) {
      CAPTURE(text.size());
      REQUIRE(merged->count(text) == static_cast<std::int64_t>(merged->encode(text).size()));  // encode() keeps no cache
    }
  }
  for (const std::string& text : texts) {
    REQUIRE(bytes_only->count(text) == static_cast<std::int64_t>(text.size()));  // one token per byte
  }
  // Invalid UTF-8 in a remembered text still counts as U+FFFD.
  CHECK(merged->count(base + "\xff") == merged->count(base + "\xEF\xBF\xBD"));
}

TEST_CASE("long texts past a thread's 8 MiB let older ones go, and a text past a MiB is remembered by its digest") {
  const auto merged = encoding({"ab"});
  // Twelve texts of a MiB each (the most remembered by bytes), each a
  // different mix: more than the thread's budget, so that older texts are let
  // go while newer ones come in; every count stays the text's own.
  std::vector<std::string> texts;
  for (int i = 0; i < 12; ++i) {
    std::string text;
    const std::string unit = "ab " + std::string(static_cast<std::size_t>(i % 4), 'x') + " ";
    while (text.size() < (std::size_t{1} << 20)) text += unit;
    text.resize(std::size_t{1} << 20);
    text[static_cast<std::size_t>(i) * 1000] = 'q';
    texts.push_back(std::move(text));
  }
  std::vector<std::int64_t> fresh;
  for (const std::string& text : texts) fresh.push_back(static_cast<std::int64_t>(merged->encode(text).size()));
  for (int round = 0; round < 2; ++round) {
    for (std::size_t i = 0; i < texts.size(); ++i) {
      CAPTURE(i);
      CHECK(merged->count(texts[i]) == fresh[i]);
    }
  }
  // One byte more than a MiB: by SHA-256, its own count, and another text of
  // that length is not answered from its slot.
  std::string huge = texts[0] + "a";
  std::string other = texts[1] + "b";
  const auto huge_fresh = static_cast<std::int64_t>(merged->encode(huge).size());
  const auto other_fresh = static_cast<std::int64_t>(merged->encode(other).size());
  for (int i = 0; i < 2; ++i) {
    CHECK(merged->count(huge) == huge_fresh);
    CHECK(merged->count(other) == other_fresh);
  }
  CHECK(huge_fresh != other_fresh);
}

TEST_CASE("invalid UTF-8 counts as U+FFFD in its place") {
  const auto enc = encoding({});
  CHECK(enc->count("a\xff" "b") == enc->count("a\xEF\xBF\xBD" "b"));
  CHECK(enc->count("\xED\xA0\x80") == enc->count("\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));  // a surrogate
}

TEST_CASE("an encoder file that is not tiktoken's is refused, naming the file") {
  CHECK(BpeEncoding::from_json("{}", "x.json").status().message() ==
        "x.json: not a tiktoken encoder file (wants pat_str, special_tokens, bpe_ranks)");
  CHECK(BpeEncoding::from_json(R"({"pat_str":"\\S+","special_tokens":{},"bpe_ranks":"! 0 YQ== Yg=="})", "x.json")
            .status()
            .message() == "x.json: bpe_ranks: byte 0 has no rank");
  CHECK(BpeEncoding::from_json(R"({"pat_str":"\\S+","special_tokens":{},"bpe_ranks":"! 0 *?"})", "x.json")
            .status()
            .message() == "x.json: bpe_ranks: bad token '*?'");
  std::string twice = encoder_json({"ab", "ab"});
  CHECK(BpeEncoding::from_json(twice, "x.json").status().message() == "x.json: bpe_ranks: token 'YWI=' twice");
  CHECK(BpeEncoding::from_json(R"({"pat_str":"(","special_tokens":{},"bpe_ranks":""})", "x.json")
            .status()
            .message()
            .starts_with("x.json: pat_str at 1: "));
}

TEST_CASE("o200k_base and cl100k_base count as tiktoken 1.0.22 does") {
  // Counts from tiktoken (tests/tokenize/parity has 2,424 texts).
  CHECK(count(kTokenizerO200k, "hello world") == 2);
  CHECK(count(kTokenizerO200k, "<|endoftext|>") == 7);  // text, as the chat APIs take it
  CHECK(*count_text_tokens_with_special(kTokenizerO200k, "<|endoftext|>") == 1);
  CHECK(*count_text_tokens_with_special(kTokenizerCl100k, "<|fim_prefix|>") == 1);
  CHECK(count(kTokenizerCl100k, "<|endoftext|>") == 7);
  CHECK(count(kTokenizerO200k, "\u180e") == 3);  // not white space for tiktoken, though PCRE2's \s takes it
  const char* kJson = "[\n\t{\n\t\t\"BAZ_QUX_61\": [\n\t\t\tnull\n\t\t],\n\t\t\"kMaxValue\": {}\n\t}\n]";
  CHECK(count(kTokenizerO200k, kJson) == 30);
  CHECK(count(kTokenizerCl100k, kJson) == 30);
  CHECK(count_text_tokens("p50k_base", "x").status().message() == "unknown tokenizer 'p50k_base'");
}

TEST_CASE("a long run of one letter is merged through the heap, and past 4 KiB in chunks, in milliseconds") {
  CHECK(count(kTokenizerO200k, std::string(1000, 'x')) == 125);  // tiktoken's count
  // One piece of 3 MB: tiktoken says 375,000 too (every 8 x's are a token), and
  // merging it whole takes seconds; 4 KiB chunks of it merge the same way.
  CHECK(count(kTokenizerO200k, std::string(3'000'000, 'x')) == 375'000);
}

TEST_CASE("counting is thread-safe: threads counting at once agree") {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "Thread " + std::to_string(i) + " counts naïve 東京 text 👍🏽\n";
  const std::int64_t expected = count(kTokenizerCl100k, text);
  std::vector<std::int64_t> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t) {
    threads.emplace_back([&, t] { got[t] = *count_text_tokens(kTokenizerCl100k, text); });
  }
  for (auto& th : threads) th.join();
  for (std::int64_t n : got) CHECK(n == expected);
}

TEST_CASE("a model's default tokenizer follows tiktoken's table for OpenAI and is o200k_base for the rest") {
  const std::vector<std::pair<const char*, std::string_view>> cases = {
      {"gpt-4o", kTokenizerO200k},          {"gpt-4o-mini", kTokenizerO200k},
      {"gpt-4.1-nano", kTokenizerO200k},    {"gpt-5", kTokenizerO200k},
      {"o3-mini", kTokenizerO200k},         {"gpt-4", kTokenizerCl100k},
      {"gpt-4-turbo", kTokenizerCl100k},    {"gpt-3.5-turbo", kTokenizerCl100k},
      {"text-embedding-3-small", kTokenizerCl100k},
      {"claude-sonnet-4-5", kTokenizerO200k}, {"gemini-2.5-flash", kTokenizerO200k},
  };
  for (const auto& [id, tokenizer] : cases) CHECK_MESSAGE(default_tokenizer(id) == tokenizer, id);
  CHECK(is_known_tokenizer("o200k_base"));
  CHECK_FALSE(is_known_tokenizer("gpt2"));
}

TEST_CASE("an OpenAI request counts 3 per message with its role, 1 per name, 3 for the reply") {
  const ModelSpec m = model("openai", "gpt-4o");
  ModelRequest r;
  r.messages.push_back(Message::of_text("system", "Be brief."));
  r.messages.push_back(Message::of_text("user", "hello world"));
  const std::int64_t text = count(kTokenizerO200k, "system") + count(kTokenizerO200k, "Be brief.") +
                            count(kTokenizerO200k, "user") + count(kTokenizerO200k, "hello world");
  CHECK(request_tokens(m, r) == 3 + 2 * 3 + text);
  r.messages[1].name = "ann";
  CHECK(request_tokens(m, r) == 3 + 2 * 3 + text + 1 + count(kTokenizerO200k, "ann"));
}

TEST_CASE("tools, tool calls, results and images add their documented overheads") {
  const ModelSpec openai = model("openai", "gpt-4o");
  ModelRequest r;
  r.messages.push_back(Message::of_text("user", "x"));
  const std::int64_t base = request_tokens(openai, r);

  ModelRequest tools = r;
  tools.tools.push_back(ToolSpec::of_function("get_weather", "Weather now", R"({"type":"object"})"));
  CHECK(request_tokens(openai, tools) == base + 12 + 7 + count(kTokenizerO200k, "get_weather") +
                                             count(kTokenizerO200k, "Weather now") +
                                             count(kTokenizerO200k, R"({"type":"object"})"));

  ModelRequest calls = r;
  calls.messages.push_back(Message::of("assistant", {ContentBlock::of_tool_call(ToolCall{"c1", "f", R"({"a":1})"})}));
  calls.messages.push_back(Message::of("tool", {ContentBlock::of_tool_result("c1", "f", "42")}));
  CHECK(request_tokens(openai, calls) == base + 2 * 3 + count(kTokenizerO200k, "assistant") +
                                             count(kTokenizerO200k, "tool") + 3 + count(kTokenizerO200k, "f") +
                                             count(kTokenizerO200k, R"({"a":1})") + count(kTokenizerO200k, "42"));

  ContentBlock image;
  image.type = ContentBlock::Type::kImage;
  ModelRequest images = r;
  images.messages[0].content.push_back(image);
  CHECK(request_tokens(openai, images) == base + 1445);  // size unknown: 8 tiles, the most after resizing
  images.messages[0].content.back().detail = "low";
  CHECK(request_tokens(openai, images) == base + 85);
  CHECK(request_tokens(model("gemini", "gemini-2.5-flash"), images) == base + 1120);
  CHECK(request_tokens(model("anthropic", "claude-haiku-4-5"), images) == base + 1600);
  CHECK(request_tokens(model("anthropic", "claude-haiku-4-5"), tools) == request_tokens(openai, tools) + 346);
}

TEST_CASE("a model counted with a stand-in scales the whole count by its factor, rounded up") {
  ModelRequest r;
  r.messages.push_back(Message::of_text("user", "Summarize the design review in five bullet points."));
  const std::int64_t plain = request_tokens(model("anthropic", "claude-haiku-4-5"), r);
  CHECK(request_tokens(model("anthropic", "claude-haiku-4-5", 1.10), r) ==
        static_cast<std::int64_t>(std::ceil(static_cast<double>(plain) * 1.10)));
  CHECK(request_tokens(model("gemini", "gemini-2.5-flash", 2.0), r) == 2 * plain);
}

}  // TEST_SUITE
