// Gateway: what switchboard-gateway does with a request.
//
//   POST /v1/chat/completions  OpenAI Chat Completions (streamed or not)
//   POST /v1/messages          Anthropic Messages (streamed or not)
//   POST /v1/messages/count_tokens  Anthropic's token count (count_tokens.cpp)
//   POST /v1/embeddings        OpenAI embeddings, by the embedding models (embeddings.cpp)
//   GET  /v1/models            "auto", every tier and every model
//   GET  /v1/models/{id}       one of them
//   GET  /v1/rules/status      Engine::status() as JSON
//   GET  /healthz, GET /metrics (Prometheus text, metrics.h)
//   HEAD on every GET route; OPTIONS on every route (cors.h: CORS is off
//   unless [gateway] cors_origins names origins)
//
// Workload: with [gateway.keys], the key the client sends (Authorization:
// Bearer K, or x-api-key: K) names it, and the key's own budget (scope
// "key:NAME") must hold the step too; an unknown or missing key gets 401.
// Without keys: the x-switchboard-workload header, else [gateway]
// default_workload. The model asked for: "auto" lets the rules decide; a tier
// or a model name is honoured (the rules still run, for the record) and the
// decision moves to it. The client's reasoning and max-tokens settings
// override the decision's. A request's model call runs on a fiber of the I/O
// thread that read it (FiberLoop, switchboard/fiber_loop.h): decided, sent
// upstream, streamed back, recorded and answered without leaving that
// thread, the thread serving its other connections while the call waits. At
// most [gateway] max_upstream_calls run at once; beyond that a request gets
// 503 at once.
//
// Overhead: every answer of a request that went on to its model call (chat
// completions, responses, messages, count_tokens, embeddings; streamed or
// not; the call's errors too, but not a refusal before it, such as a 400 or a
// 503) carries x-switchboard-overhead-ms: the gateway's own time on the
// request, in milliseconds with three decimals. It is the time from the
// request's last byte read (HttpRequest::received) to the answer's last bytes
// handed to the connection (Response::finish), minus the time spent waiting
// on models (StepResult::upstream: inside the model clients' calls and the
// backoffs between retries). So it includes the wait for a worker, parsing,
// the rules, the budget, the ledger's group commit and rendering the answer;
// it is read just before the answer's bytes are put together, which is not in
// it. A stream sends it twice: as a header, the overhead up to the response
// head (upstream: until the model's stream began); and as a trailer (HTTP/1.1
// only), the whole request's, where writing each chunk counts as overhead and
// the model's time between chunks as upstream. /metrics counts the whole
// request's figure (a stream's trailer) in switchboard_overhead_ms{endpoint}.
//
// Everything that can change with the config (engine, model clients,
// dispatcher, keys) is one immutable Runtime, swapped whole by reload(); a
// request finishes on the runtime it started with. The SQLite ledger is
// opened once and shared by every runtime.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "api/api.h"
#include "keep_alive.h"
#include "metrics.h"
#include "response_store.h"
#include "http/server.h"
#include "switchboard/fiber_loop.h"
#include "switchboard/switchboard.h"

namespace spdlog {
class logger;
}

namespace switchboard::gateway {

namespace internal {
struct Caller;
}

// The connection limits of a [gateway] table.
ServerLimits server_limits(const GatewaySettings& settings);

class Gateway : public RequestHandler {
 public:
  // Loads the config, opens its SQLite ledger ([gateway] ledger; budgets
  // continue from what it holds for this period) and the first runtime.
  static Result<std::unique_ptr<Gateway>> open(const std::string& config_path, std::shared_ptr<spdlog::logger> log);
  // Unwinds the model calls still waiting on their fibers. REQUIRES: the
  // server's I/O threads have stopped.
  ~Gateway() override;
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Re-reads the config file and opens a new runtime from it; swaps it in
  // when it opened, else keeps serving the old one and returns the
  // "file:line: message" error. Settings that need a restart (listen,
  // threads, ledger) are kept, with a warning.
  Status reload();
  // The serving config's [gateway] table.
  GatewaySettings settings() const;
  // Makes every ledger record written so far durable, after waiting (at most
  // [shadow] drain_timeout_ms) for the shadow evaluations still queued.
  Status flush_ledger();
  // Model calls running now.
  int upstream_in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  void handle(HttpRequest&& request, std::shared_ptr<Response> response) override;
  std::string reject(int http_status, std::string_view target, std::string_view message,
                     std::string_view extra_headers = {}) override;

 private:
  struct Runtime;
  struct Job;
  Gateway(std::string config_path, std::shared_ptr<spdlog::logger> log, std::shared_ptr<Ledger> ledger,
          std::string ledger_path);
  static Result<std::shared_ptr<const Runtime>> open_runtime(Config config, const std::shared_ptr<Ledger>& ledger,
                                                             const std::shared_ptr<spdlog::logger>& log);
  std::shared_ptr<const Runtime> runtime() const;

  void serve_api(HttpRequest&& request, std::shared_ptr<Response> response, Endpoint endpoint, ApiShape shape);
  void run(Job& job);
  // Answers at once. `upstream`: set for the answer to a model call, the
  // time spent waiting on its models; the answer then carries
  // x-switchboard-overhead-ms and switchboard_overhead_ms counts it.
  void reply(Response& response, Endpoint endpoint, Clock::time_point received, int http_status,
             std::string_view content_type, std::string_view headers, std::string_view body,
             std::optional<std::chrono::nanoseconds> upstream = std::nullopt);
  void reply_error(Response& response, Endpoint endpoint, Clock::time_point received, ApiShape shape,
                   const ApiError& error, std::string_view headers = {},
                   std::optional<std::chrono::nanoseconds> upstream = std::nullopt);

  // The routes beside the two chat APIs. identify (gateway.cpp): who asks,
  // as serve_api resolves it (the key's workload, else the
  // x-switchboard-workload header's, else the default) and the deadline;
  // false once it answered an error (401, 404, 400).
  bool identify(const HttpRequest& request, Response& response, Endpoint endpoint, ApiShape shape,
                internal::Caller& out);
  // Runs `work` on a fiber of the I/O thread running `io`, in one of the
  // max_upstream_calls slots (routes.cpp); false once it answered 503 (no
  // slot). An exception from `work` answers 500 when nothing went out yet.
  bool run_upstream(boost::asio::io_context& io, const std::shared_ptr<Response>& response, Endpoint endpoint,
                    Clock::time_point received, ApiShape shape, int bound, std::function<void()> work);
  // The fibers of the I/O thread running `io` (made on its first request).
  FiberLoop& fibers(boost::asio::io_context& io);
  void serve_count_tokens(HttpRequest&& request, std::shared_ptr<Response> response);  // count_tokens.cpp
  void serve_embeddings(HttpRequest&& request, std::shared_ptr<Response> response);    // embeddings.cpp

  const std::string config_path_;
  const std::shared_ptr<spdlog::logger> log_;
  const std::shared_ptr<Ledger> ledger_;
  const std::string ledger_path_;
  std::unique_ptr<ResponseStore> responses_;  // POST /v1/responses' answers, for previous_response_id
  Metrics metrics_;
  std::atomic<int> in_flight_{0};
  mutable std::mutex runtime_mu_;
  std::shared_ptr<const Runtime> runtime_;
  std::mutex reload_mu_;  // one reload at a time
  KeepAlive keep_alive_;  // the streams' keep-alives; outlives the jobs writing them
  // Last: destroyed first (the calls still waiting unwind), while everything they use still lives.
  std::mutex fibers_mu_;
  std::unordered_map<boost::asio::io_context*, std::unique_ptr<FiberLoop>> fibers_;  // guarded by fibers_mu_
};

}  // namespace switchboard::gateway
