// The offline `sim` provider: deterministic, free, no network. It stands in
// for a model when no key is set, so the demo and the tests run anywhere. It
// is not a model and never pretends to be one: every answer says "[sim]".
//
// Everything it reports is derived from the request alone (same request, same
// answer, same counts), by a SHA-256 digest `d` of the request's messages,
// tools and settings:
//   input tokens      counted_input_tokens when the caller counted them, else
//                     one token per three bytes of message text (as the
//                     engine's own estimate); none are reported cached;
//   output tokens     expected × (75% + d mod 51%) when the request carries
//                     the step's expected_output_tokens (an answer follows its
//                     task), else cap × (25% + d mod 51%); never over the cap,
//                     which is max_output_tokens (else the model's
//                     default_output_tokens);
//   reasoning tokens  for reasoning low/medium/high, 1/4, 1/2 or all of the
//                     output figure again, within the model's thinking budget
//                     and within the cap (output shrinks to make room);
//   answer            with tools and no tool result yet: a call of the first
//                     tool with `{}`; with json_output: a JSON object naming
//                     the model and the digest; else one line naming the
//                     model, the digest and the start of the last user message;
//   latency           [sim] base_latency + per_output_token × (output +
//                     reasoning tokens), slept for real (0 by default).
#include <algorithm>
#include <thread>

#include "cost/estimate.h"
#include "util/sha256.h"
#include "switchboard/client.h"

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

class SimClient final : public ModelClient {
 public:
  SimClient(const ModelSpec& model, const SimSettings& settings) : model_(model), settings_(settings) {}

  std::string provider() const override { return "sim"; }

  Result<ModelResponse> invoke(const ModelRequest& request) override {
    if (request.messages.empty()) {
      return Status::invalid_argument("sim " + model_.name + ": the request has no messages");
    }
    ModelResponse r = answer(request);
    if (Status s = wait_within(request.bounds, r.latency); !s.ok()) return stopped(s);
    return r;
  }

  Result<ModelResponse> stream(const ModelRequest& request, const ChunkHandler& on_chunk) override {
    if (request.messages.empty()) {
      return Status::invalid_argument("sim " + model_.name + ": the request has no messages");
    }
    ModelResponse r = answer(request);
    // Word by word, the latency spread evenly over the pieces.
    std::vector<std::string_view> pieces;
    std::string_view rest = r.text;
    while (!rest.empty()) {
      size_t cut = rest.find(' ', 1);
      cut = cut == std::string_view::npos ? rest.size() : cut;
      pieces.push_back(rest.substr(0, cut));
      rest.remove_prefix(cut);
    }
    const auto gap = pieces.empty() ? r.latency : r.latency / static_cast<int>(pieces.size());
    for (std::string_view p : pieces) {
      if (Status s = wait_within(request.bounds, gap); !s.ok()) return stopped(s);
      if (on_chunk) on_chunk(StreamChunk{p, false});
    }
    if (pieces.empty()) {
      if (Status s = wait_within(request.bounds, r.latency); !s.ok()) return stopped(s);
    }
    return r;
  }

 private:
  // Waits `d`, as a model takes its time, unless the step's bounds stop the
  // call first: then returns their status as soon as they do.
  static Status wait_within(const CallBounds& bounds, std::chrono::milliseconds d) {
    if (Status s = bounds.check(); !s.ok()) return s;
    if (const auto left = bounds.remaining(); left && *left < d) d = *left;
    if (bounds.cancellation) {
      bounds.cancellation->sleep_for(d);
    } else if (d.count() > 0) {
      std::this_thread::sleep_for(d);
    }
    return bounds.check();
  }

  Status stopped(const Status& s) const {
    const std::string message = "sim " + model_.name + ": " + s.message();
    return s.code() == Status::Code::kCancelled ? Status::cancelled(message) : Status::deadline_exceeded(message);
  }

  ModelResponse answer(const ModelRequest& request) const {
    std::string material = model_.name;
    std::int64_t text_bytes = 0;
    const Message* last_user = nullptr;
    bool has_tool_result = false;
    for (const Message& m : request.messages) {
      material += '\x1e' + m.role + '\x1f' + m.content + '\x1f' + m.tool_call_id;
      for (const ToolCall& t : m.tool_calls) material += '\x1f' + t.name + t.arguments_json;
      text_bytes += static_cast<std::int64_t>(m.content.size());
      if (m.role == "user") last_user = &m;
      if (m.role == "tool") has_tool_result = true;
    }
    for (const ToolSpec& t : request.tools) material += '\x1d' + t.name + t.parameters_json;
    material += '\x1c' + std::string(to_string(request.reasoning)) + (request.json_output ? "j" : "") +
                std::to_string(request.max_output_tokens.value_or(0)) + '/' +
                std::to_string(request.expected_output_tokens.value_or(0));
    const std::string digest = detail::sha256_hex(material);
    const std::uint64_t d = digest_value(digest);

    ModelResponse r;
    r.model = model_.model_id;
    r.usage.input_tokens = request.counted_input_tokens.value_or((text_bytes + 2) / 3);
    const std::int64_t cap = std::max<std::int64_t>(1, request.max_output_tokens.value_or(model_.default_output_tokens));
    const std::int64_t spread = static_cast<std::int64_t>(d % 51);
    std::int64_t output = request.expected_output_tokens
                              ? std::min(cap, *request.expected_output_tokens * (75 + spread) / 100)
                              : cap * (25 + spread) / 100;
    output = std::max<std::int64_t>(1, output);
    std::int64_t reasoning = 0;
    switch (request.reasoning) {
      case Reasoning::kLow: reasoning = output / 4; break;
      case Reasoning::kMedium: reasoning = output / 2; break;
      case Reasoning::kHigh: reasoning = output; break;
      case Reasoning::kDefault: break;
    }
    reasoning = std::min(reasoning, model_.thinking_budget.for_level(request.reasoning));
    if (output + reasoning > cap) output = std::max<std::int64_t>(1, cap - reasoning);
    reasoning = std::min(reasoning, cap - output);
    r.usage.output_tokens = output;
    r.usage.reasoning_tokens = std::max<std::int64_t>(0, reasoning);

    const std::string tag = digest.substr(0, 12);
    if (!request.tools.empty() && !has_tool_result) {
      r.tool_calls.push_back(ToolCall{"sim-call-" + tag, request.tools.front().name, "{}"});
      r.finish_reason = "tool_calls";
    } else if (request.json_output) {
      r.text = "{\"sim\":true,\"model\":\"" + model_.name + "\",\"digest\":\"" + tag + "\"}";
      r.finish_reason = "stop";
    } else {
      r.text = "[sim " + model_.name + " " + tag + "] answer to: " +
               (last_user ? excerpt(last_user->content, 80) : std::string("(no user message)"));
      r.finish_reason = output >= cap ? "length" : "stop";
    }
    r.latency = std::chrono::duration_cast<std::chrono::milliseconds>(
        settings_.base_latency + settings_.per_output_token * (r.usage.output_tokens + r.usage.reasoning_tokens));
    return r;
  }

  ModelSpec model_;
  SimSettings settings_;
};

}  // namespace

std::shared_ptr<ModelClient> make_sim_client(const ModelSpec& model, const SimSettings& settings) {
  return std::make_shared<SimClient>(model, settings);
}

}  // namespace switchboard
