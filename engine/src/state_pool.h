// StatePool: the compiled rules of one workload and the idle sandboxes that
// run them. A sandbox is leased by one thread at a time and returned after
// the call; a poisoned one (budget or memory kill) is dropped and replaced by
// a fresh one on the next lease.
//
// Thread-safety: lease() and the Lease destructor may be called from any thread.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lua_sandbox.h"

namespace switchboard::detail {

class StatePool {
 public:
  // Compiles `source` once to validate it; fails with "chunk:line: message".
  static Result<std::unique_ptr<StatePool>> create(const SandboxLimits& limits,
                                                   std::string chunk_name, std::string source);

  class Lease {
   public:
    Lease(StatePool* pool, std::unique_ptr<LuaSandbox> box) : pool_(pool), box_(std::move(box)) {}
    Lease(Lease&&) = default;
    ~Lease();
    LuaSandbox* get() const { return box_.get(); }
    explicit operator bool() const { return box_ != nullptr; }

   private:
    StatePool* pool_;
    std::unique_ptr<LuaSandbox> box_;
  };

  // An idle sandbox, or a new one. Fails only if the source stops compiling
  // (it compiled once, so only under memory pressure).
  Result<Lease> lease();

  const std::string& chunk_name() const { return chunk_name_; }
  const std::string& version() const { return version_; }  // sha256 of the source

 private:
  StatePool(const SandboxLimits& limits, std::string chunk_name, std::string source);
  void give_back(std::unique_ptr<LuaSandbox> box);

  static constexpr size_t kMaxIdle = 64;
  const SandboxLimits limits_;
  const std::string chunk_name_;
  const std::string source_;
  const std::string version_;
  std::mutex mu_;
  std::vector<std::unique_ptr<LuaSandbox>> idle_;  // guarded by mu_
};

}  // namespace switchboard::detail
