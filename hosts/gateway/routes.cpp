// What the routes beside the two chat APIs share: a slot among the upstream
// calls, on a fiber of the I/O thread (Gateway::run_upstream), and GET
// /v1/models/{id}'s lookup.
#include <exception>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "gateway.h"
#include "internal.h"

namespace switchboard::gateway {

namespace internal {

std::optional<std::string> listed_model(std::string_view list_json, std::string_view id) {
  const nlohmann::json list = nlohmann::json::parse(list_json, nullptr, /*allow_exceptions=*/false);
  if (!list.is_object() || !list.contains("data") || !list["data"].is_array()) return std::nullopt;
  for (const nlohmann::json& entry : list["data"]) {
    if (entry.is_object() && entry.value("id", std::string()) == id) return entry.dump();
  }
  return std::nullopt;
}

std::optional<std::string> percent_decode(std::string_view text) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = hex(text[i + 1]);
    const int lo = hex(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace internal

FiberLoop& Gateway::fibers(boost::asio::io_context& io) {
  std::lock_guard<std::mutex> lock(fibers_mu_);
  std::unique_ptr<FiberLoop>& loop = fibers_[&io];
  if (!loop) loop = std::make_unique<FiberLoop>(io);
  return *loop;
}

bool Gateway::run_upstream(boost::asio::io_context& io, const std::shared_ptr<Response>& response, Endpoint endpoint,
                           Clock::time_point received, ApiShape shape, int bound, std::function<void()> work) {
  // At most max_upstream_calls model calls at once, whichever route makes
  // them; beyond, no queue.
  if (in_flight_.fetch_add(1, std::memory_order_acq_rel) >= bound) {
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    reply_error(*response, endpoint, received, shape,
                internal::api_error(shape, 503, "overloaded",
                                    "the gateway is at its limit of " + std::to_string(bound) +
                                        " concurrent model calls (max_upstream_calls); retry shortly"));
    return false;
  }
  fibers(io).spawn([this, response, endpoint, work = std::move(work)] {
    try {
      work();
    } catch (const std::exception& e) {
      // Out of memory, say: a 500 when nothing went out yet, and the
      // connection closes rather than wait.
      log_->error("request failed: {}", e.what());
      response->abort(reject(500, endpoint_label(endpoint), "internal error: the request failed"));
    }
    in_flight_.fetch_sub(1, std::memory_order_acq_rel);
  });
  return true;
}

}  // namespace switchboard::gateway
