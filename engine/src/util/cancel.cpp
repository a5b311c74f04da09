#include "switchboard/cancel.h"

#include <algorithm>
#include <utility>

namespace switchboard {

void Cancellation::cancel(std::string reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) return;
  cancelled_ = true;
  reason_ = std::move(reason);
  for (auto& [id, wake] : wakes_) wake();
  cv_.notify_all();
}

bool Cancellation::cancelled() const noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  return cancelled_;
}

std::string Cancellation::reason() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reason_;
}

bool Cancellation::sleep_for(std::chrono::milliseconds d) const {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return cancelled_; });
}

Cancellation::Subscription Cancellation::subscribe(std::function<void()> wake) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cancelled_) {
    wake();
    return {};
  }
  const std::uint64_t id = next_id_++;
  wakes_.emplace(id, std::move(wake));
  return Subscription(this, id);
}

Cancellation::Subscription::Subscription(Subscription&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), id_(other.id_) {}

Cancellation::Subscription& Cancellation::Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    reset();
    owner_ = std::exchange(other.owner_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

Cancellation::Subscription::~Subscription() { reset(); }

void Cancellation::Subscription::reset() {
  if (owner_ == nullptr) return;
  std::lock_guard<std::mutex> lock(owner_->mu_);
  owner_->wakes_.erase(id_);
  owner_ = nullptr;
}

Status CallBounds::check() const {
  if (cancellation && cancellation->cancelled()) return Status::cancelled(cancellation->reason());
  if (deadline && Clock::now() >= *deadline) {
    return Status::deadline_exceeded("the step's deadline passed (" + deadline_source + ")");
  }
  return Status();
}

std::optional<std::chrono::milliseconds> CallBounds::remaining() const {
  if (!deadline) return std::nullopt;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

}  // namespace switchboard
