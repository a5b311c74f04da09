#include "api/embeddings.h"

#include <charconv>
#include <cstring>
#include <exception>

#include "api/common.h"

namespace switchboard::gateway {

namespace {

using detail::json;
using detail::MaybeError;
using detail::invalid_request;

// One input array: strings, or token ids, or arrays of token ids.
MaybeError read_input(const json& input, EmbeddingRequest& out) {
  if (input.is_string()) {
    if (input.get_ref<const std::string&>().empty()) return invalid_request("input", "input must not be empty");
    out.texts.push_back(input.get<std::string>());
    return std::nullopt;
  }
  if (!input.is_array() || input.empty()) {
    return invalid_request("input", "input must be a string, an array of strings, or token ids (an array of "
                                    "integers, or of arrays of integers), and not empty");
  }
  if (input.size() > kMaxEmbeddingInputs) {
    return invalid_request("input", "input has " + std::to_string(input.size()) + " items; at most " +
                                        std::to_string(kMaxEmbeddingInputs) + " are allowed");
  }
  const auto token_ids = [](const json& ids, const detail::JsonPath& path, std::vector<std::int64_t>& into) -> MaybeError {
    if (!ids.is_array() || ids.empty()) return invalid_request(path, path + " must be a non-empty array of token ids");
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (!ids[i].is_number_unsigned()) {
        return invalid_request(path, detail::at_index(path, i) + " must be a token id (a whole number >= 0)");
      }
      into.push_back(ids[i].get<std::int64_t>());
    }
    return std::nullopt;
  };
  if (input.front().is_number()) {  // one input of token ids
    out.tokens.emplace_back();
    return token_ids(input, "input", out.tokens.back());
  }
  const bool strings = input.front().is_string();
  for (std::size_t i = 0; i < input.size(); ++i) {
    const detail::JsonPath input_root("input");
    const detail::JsonPath path = detail::at_index(input_root, i);
    const json& item = input[i];
    if (strings) {
      if (!item.is_string()) return invalid_request(path, path + " must be a string, as input[0] is");
      if (item.get_ref<const std::string&>().empty()) return invalid_request(path, path + " must not be empty");
      out.texts.push_back(item.get<std::string>());
    } else {
      out.tokens.emplace_back();
      if (auto e = token_ids(item, path, out.tokens.back())) return e;
    }
  }
  return std::nullopt;
}

// The shortest text that reads back as `v`.
void append_float(std::string& out, float v) {
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, ec == std::errc() ? static_cast<std::size_t>(end - buf) : 0);
}

std::string base64_floats(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint32_t u = 0;
    std::memcpy(&u, &values[i], sizeof u);
    for (std::size_t b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((u >> (8 * b)) & 0xFF);
  }
  return detail::base64_encode(bytes);
}

}  // namespace

ApiResult<ParsedEmbeddings> parse_openai_embeddings(std::string_view body, int max_json_depth) {
  try {
    json j;
    if (auto e = detail::parse_body(body, max_json_depth, {"input"}, j)) {
      return detail::failed<ParsedEmbeddings>(std::move(*e));
    }
    if (auto e = detail::check_fields(j, "", {"model", "input", "encoding_format", "dimensions", "user"})) {
      return detail::failed<ParsedEmbeddings>(std::move(*e));
    }
    ParsedEmbeddings r;
    if (auto e = detail::read_string(j, "model", "model", r.model)) return detail::failed<ParsedEmbeddings>(*e);
    if (r.model.empty()) return detail::failed<ParsedEmbeddings>(invalid_request("model", "model must not be empty"));
    const json* input = detail::member(j, "input");
    if (input == nullptr) return detail::failed<ParsedEmbeddings>(invalid_request("input", "input is required"));
    if (auto e = read_input(*input, r.request)) return detail::failed<ParsedEmbeddings>(std::move(*e));
    std::string format = "float";
    if (auto e = detail::read_optional_string(j, "encoding_format", "encoding_format", format)) {
      return detail::failed<ParsedEmbeddings>(std::move(*e));
    }
    if (format != "float" && format != "base64") {
      return detail::failed<ParsedEmbeddings>(
          invalid_request("encoding_format", "encoding_format must be \"float\" or \"base64\" (got '" + format + "')"));
    }
    r.base64 = format == "base64";
    if (auto e = detail::read_optional_integer(j, "dimensions", "dimensions", 1, 1'000'000, r.request.dimensions)) {
      return detail::failed<ParsedEmbeddings>(std::move(*e));
    }
    if (auto e = detail::read_optional_string(j, "user", "user", r.request.user)) {
      return detail::failed<ParsedEmbeddings>(std::move(*e));
    }
    return {std::move(r), {}};
  } catch (const std::exception& e) {
    return detail::failed<ParsedEmbeddings>(
        invalid_request("", std::string("the request could not be read: ") + e.what()));
  }
}

std::string render_embeddings(const EmbeddingResponse& response, const std::string& model, bool base64) {
  std::string out = R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < response.vectors.size(); ++i) {
    if (i > 0) out += ',';
    out += R"({"object":"embedding","index":)" + std::to_string(i) + R"(,"embedding":)";
    if (base64) {
      out += '"' + base64_floats(response.vectors[i]) + '"';
    } else {
      out += '[';
      for (std::size_t k = 0; k < response.vectors[i].size(); ++k) {
        if (k > 0) out += ',';
        append_float(out, response.vectors[i][k]);
      }
      out += ']';
    }
    out += '}';
  }
  const std::string tokens = std::to_string(response.usage.total_input());
  out += R"(],"model":)" + detail::to_text(json(model)) + R"(,"usage":{"prompt_tokens":)" + tokens +
         R"(,"total_tokens":)" + tokens + "}}";
  return out;
}

}  // namespace switchboard::gateway
