#include "state_pool.h"

#include "sha256.h"

namespace switchboard::detail {

StatePool::StatePool(const SandboxLimits& limits, std::string chunk_name, std::string source)
    : limits_(limits),
      chunk_name_(std::move(chunk_name)),
      source_(std::move(source)),
      version_(sha256_hex(source_)) {}

Result<std::unique_ptr<StatePool>> StatePool::create(const SandboxLimits& limits,
                                                     std::string chunk_name, std::string source) {
  std::unique_ptr<StatePool> pool(new StatePool(limits, std::move(chunk_name), std::move(source)));
  auto first = LuaSandbox::create(limits, pool->chunk_name_, pool->source_);
  if (!first.ok()) return first.status();
  pool->idle_.push_back(std::move(first).value());
  return pool;
}

Result<StatePool::Lease> StatePool::lease() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<LuaSandbox> box = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(box));
    }
  }
  auto box = LuaSandbox::create(limits_, chunk_name_, source_);  // outside the lock
  if (!box.ok()) return box.status();
  return Lease(this, std::move(box).value());
}

void StatePool::give_back(std::unique_ptr<LuaSandbox> box) {
  if (box->poisoned()) return;  // destroyed here, on the caller's thread
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(box));
}

StatePool::Lease::~Lease() {
  if (box_) pool_->give_back(std::move(box_));
}

}  // namespace switchboard::detail
