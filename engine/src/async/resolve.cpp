// HostLookup and async::resolve (resolve.h): Asio's resolver on the fiber's loop.
#include "async/resolve.h"

#include <boost/asio/ip/address.hpp>

namespace switchboard::async {

using boost::asio::ip::tcp;

struct HostLookup::State {
  explicit State(boost::asio::io_context& io) : resolver(io) {}
  tcp::resolver resolver;
  bool done = false;
  boost::system::error_code ec;
  Endpoints endpoints;
};

HostLookup::HostLookup(WakeTimer& timer, const std::string& host, std::uint16_t port)
    : host_(host), state_(std::make_shared<State>(timer.fiber().loop().io())) {
  boost::system::error_code not_literal;
  const boost::asio::ip::address literal = boost::asio::ip::make_address(host, not_literal);
  if (!not_literal) {
    state_->done = true;
    state_->endpoints.emplace_back(literal, port);
    return;
  }
  state_->resolver.async_resolve(
      host, std::to_string(port),
      [state = std::weak_ptr<State>(state_), self = timer.self()](const boost::system::error_code& ec,
                                                                  const tcp::resolver::results_type& results) {
        const std::shared_ptr<State> s = state.lock();
        if (!s) return;  // given up on
        s->done = true;
        s->ec = ec;
        for (const auto& entry : results) s->endpoints.push_back(entry.endpoint());
        Fiber::resume(self);
      });
}

HostLookup::~HostLookup() {
  if (!state_->done) state_->resolver.cancel();
}

bool HostLookup::done() const noexcept { return state_->done; }

Result<Endpoints> HostLookup::result() const {
  if (state_->ec) return Status::unavailable("cannot look up '" + host_ + "': " + state_->ec.message());
  if (state_->endpoints.empty()) return Status::unavailable("cannot look up '" + host_ + "': no address");
  return state_->endpoints;
}

Result<Endpoints> resolve(Fiber& fiber, const std::string& host, std::uint16_t port,
                          std::chrono::steady_clock::time_point deadline) {
  WakeTimer timer(fiber);
  std::optional<Result<Endpoints>> found =
      resolve(timer, host, port, [deadline]() -> std::optional<WakeTimer::TimePoint> {
        if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        return deadline;
      });
  if (!found) return Status::unavailable("looking up '" + host + "' timed out");
  return std::move(*found);
}

}  // namespace switchboard::async
