#include "http/edited_response.h"

#include <utility>

namespace switchboard::gateway {

EditedResponse::EditedResponse(std::shared_ptr<Response> inner, std::string extra_headers, bool head_only)
    : inner_(std::move(inner)), extra_headers_(std::move(extra_headers)), head_only_(head_only) {}

std::string EditedResponse::edit(std::string bytes) {
  if (head_done_) return {};
  if (!started_) {
    started_ = true;
    const std::size_t status_line = bytes.find("\r\n");
    if (status_line != std::string::npos) bytes.insert(status_line + 2, extra_headers_);
  }
  if (head_only_) {
    const std::size_t end = bytes.find("\r\n\r\n");
    if (end != std::string::npos) {
      bytes.resize(end + 4);
      head_done_ = true;
    }
  }
  return bytes;
}

void EditedResponse::write(std::string bytes) { inner_->write(edit(std::move(bytes))); }

void EditedResponse::finish(std::string bytes, bool close) { inner_->finish(edit(std::move(bytes)), close); }

void EditedResponse::abort(std::string error_response) {
  // The connection sends it only when nothing went out yet: then it is the head.
  inner_->abort(started_ ? std::move(error_response) : edit(std::move(error_response)));
}

}  // namespace switchboard::gateway
