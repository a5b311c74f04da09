#include "providers/sse.h"

namespace switchboard {

bool SseParser::feed(std::string_view piece, const SseHandler& on_event) {
  if (stopped_) return false;
  if (at_start_ && !piece.empty()) {
    // The BOM may itself arrive split across pieces: hold back a prefix of it.
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    partial_.append(piece);
    if (partial_.size() < kBom.size() && kBom.starts_with(partial_)) return true;
    at_start_ = false;
    std::string held = std::move(partial_);
    partial_.clear();
    std::string_view rest = held;
    if (rest.starts_with(kBom)) rest.remove_prefix(kBom.size());
    return feed(rest, on_event);
  }
  std::size_t begin = 0;
  if (after_cr_ && !piece.empty()) {
    after_cr_ = false;
    if (piece[0] == '\n') begin = 1;
  }
  for (std::size_t i = begin; i < piece.size(); ++i) {
    const char c = piece[i];
    if (c != '\n' && c != '\r') continue;
    std::string_view text = piece.substr(begin, i - begin);
    if (!partial_.empty()) {
      partial_.append(text);
      text = partial_;
    }
    const bool keep_going = line(text, on_event);
    partial_.clear();
    if (!keep_going) {
      stopped_ = true;
      return false;
    }
    if (c == '\r') {
      if (i + 1 < piece.size()) {
        if (piece[i + 1] == '\n') ++i;
      } else {
        after_cr_ = true;
      }
    }
    begin = i + 1;
  }
  partial_.append(piece.substr(begin));
  return true;
}

bool SseParser::line(std::string_view text, const SseHandler& on_event) {
  if (text.empty()) {  // dispatch
    bool keep_going = true;
    if (has_data_) {
      SseEvent event{type_.empty() ? std::string("message") : std::move(type_), std::move(data_)};
      keep_going = on_event(event);
    }
    type_.clear();
    data_.clear();
    has_data_ = false;
    return keep_going;
  }
  if (text[0] == ':') return true;  // comment
  const std::size_t colon = text.find(':');
  const std::string_view field = text.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = text.substr(colon + 1);
    if (value.starts_with(' ')) value.remove_prefix(1);
  }
  if (field == "event") {
    type_.assign(value);
  } else if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  }
  // "id", "retry" and unknown fields are ignored.
  return true;
}

}  // namespace switchboard
