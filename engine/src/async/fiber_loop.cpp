// FiberLoop: the public face of async::Loop.
#include "switchboard/fiber_loop.h"

#include "async/fiber.h"

namespace switchboard {

FiberLoop::FiberLoop(boost::asio::io_context& io) : loop_(std::make_unique<async::Loop>(io)) {}

FiberLoop::~FiberLoop() = default;

void FiberLoop::spawn(std::function<void()> body) { loop_->spawn(std::move(body)); }

std::size_t FiberLoop::fibers() const { return loop_->fibers(); }

}  // namespace switchboard
