// EditedResponse: a Response (server.h) that edits what a handler writes on
// its way to the connection, so every answer of a request, whichever code
// path writes it (a whole answer, an error, a stream), gets the same edits:
//  - `extra_headers` ("name: value\r\n" lines) go into the head, after the
//    status line (CORS headers on every answer);
//  - `head_only` (a HEAD request): the head goes out unchanged (its status
//    and headers, Content-Length included) and every byte after it is dropped.
// REQUIRES: the first bytes written (write, finish or abort) start with the
// whole head (format_head, format_response), as the gateway writes them.
// Thread-safety: as Response; the calls for one request come from one thread
// at a time, in order.
#pragma once

#include <memory>
#include <string>

#include "http/server.h"

namespace switchboard::gateway {

class EditedResponse final : public Response {
 public:
  EditedResponse(std::shared_ptr<Response> inner, std::string extra_headers, bool head_only);

  void write(std::string bytes) override;
  void finish(std::string bytes, bool close = false) override;
  void abort(std::string error_response) override;
  bool keep_alive() const override { return inner_->keep_alive(); }
  unsigned version() const override { return inner_->version(); }

 private:
  // `bytes` edited: the head's header lines added (the first call), the
  // body dropped (HEAD).
  std::string edit(std::string bytes);

  const std::shared_ptr<Response> inner_;
  const std::string extra_headers_;
  const bool head_only_;
  bool started_ = false;    // the head was edited
  bool head_done_ = false;  // HEAD: the whole head went out; drop the rest
};

}  // namespace switchboard::gateway
