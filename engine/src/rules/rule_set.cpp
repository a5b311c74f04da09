#include "rules/rule_set.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "util/sha256.h"
#include "util/thread_name.h"

namespace switchboard::detail {

namespace {

// Slots per compiled rules file: enough for every core to have its own, and
// some threads more (a gateway's workers and a few host threads).
size_t slot_count() {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  return std::min<size_t>(64, std::max<size_t>(8, 4 * static_cast<size_t>(cores)));
}

// A small per-thread number that spreads threads over slots.
size_t thread_index() {
  static std::atomic<size_t> next{0};
  thread_local const size_t index = next.fetch_add(1, std::memory_order_relaxed);
  return index;
}

}  // namespace

WorkloadRules::WorkloadRules(const SandboxLimits& limits, std::string chunk_name, std::string source)
    : limits_(limits),
      chunk_name_(std::move(chunk_name)),
      source_(std::move(source)),
      version_(sha256_hex(source_)),
      n_slots_(slot_count()),
      slots_(new Slot[n_slots_]) {}

WorkloadRules::~WorkloadRules() = default;

Result<std::unique_ptr<WorkloadRules>> WorkloadRules::compile(const SandboxLimits& limits,
                                                              std::string chunk_name,
                                                              std::string source,
                                                              CallProbe* load_probe) {
  std::unique_ptr<WorkloadRules> rules(new WorkloadRules(limits, std::move(chunk_name), std::move(source)));
  auto first = LuaSandbox::create(limits, rules->chunk_name_, rules->source_, load_probe);
  if (!first.ok()) return first.status();
  rules->slots_[0].box = std::move(first).value();
  rules->slots_[0].has_box.store(true, std::memory_order_relaxed);
  return rules;
}

Result<WorkloadRules::Lease> WorkloadRules::lease() {
  const size_t start = thread_index();
  for (size_t k = 0; k < n_slots_; ++k) {
    Slot& slot = slots_[(start + k) % n_slots_];
    if (slot.busy.load(std::memory_order_relaxed) || slot.busy.exchange(true, std::memory_order_acquire)) {
      continue;
    }
    if (!slot.box) {
      auto box = LuaSandbox::create(limits_, chunk_name_, source_);
      if (!box.ok()) {
        slot.busy.store(false, std::memory_order_release);
        return box.status();
      }
      slot.box = std::move(box).value();
      slot.has_box.store(true, std::memory_order_relaxed);
    }
    return Lease(&slot, slot.box.get(), nullptr);
  }
  // Every slot is busy: more threads than slots. A temporary sandbox is slow
  // to build but correct.
  auto box = LuaSandbox::create(limits_, chunk_name_, source_);
  if (!box.ok()) return box.status();
  LuaSandbox* raw = box->get();
  return Lease(nullptr, raw, std::move(box).value());
}

WorkloadRules::Lease::Lease(Lease&& other) noexcept
    : slot_(other.slot_), box_(other.box_), owned_(std::move(other.owned_)) {
  other.slot_ = nullptr;
  other.box_ = nullptr;
}

WorkloadRules::Lease::~Lease() {
  if (slot_ == nullptr) return;  // a temporary (owned_ closes it) or moved-from
  if (slot_->box && slot_->box->poisoned()) {  // rebuilt by the next lease
    slot_->box.reset();
    slot_->has_box.store(false, std::memory_order_relaxed);
  }
  slot_->busy.store(false, std::memory_order_release);
}

size_t WorkloadRules::live_states() const {
  size_t n = 0;
  for (size_t i = 0; i < n_slots_; ++i) {
    // Without taking the slot: `box` itself belongs to whoever holds it (a
    // concurrent lease may be setting it), so read the flag that mirrors it.
    // A snapshot for reports only.
    if (slots_[i].has_box.load(std::memory_order_relaxed)) ++n;
  }
  return n;
}

std::int64_t WorkloadRules::state_bytes() const {
  std::int64_t bytes = 0;
  for (size_t i = 0; i < n_slots_; ++i) {
    Slot& slot = slots_[i];
    if (slot.busy.exchange(true, std::memory_order_acquire)) continue;  // in use: skip
    if (slot.box) bytes += slot.box->memory_used();
    slot.busy.store(false, std::memory_order_release);
  }
  return bytes;
}

// ---------------------------------------------------------------- reaper

struct Reaper::State {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<WorkloadRules*> queue;  // guarded by mu
  bool stopping = false;             // guarded by mu
  std::thread thread;
};

std::shared_ptr<Reaper> Reaper::start() {
  std::shared_ptr<Reaper> reaper(new Reaper());
  reaper->state_ = std::make_unique<State>();
  reaper->state_->thread = std::thread([raw = reaper.get()] {
    detail::name_this_thread("sb-lua-reaper");
    raw->run();
  });
  return reaper;
}

Reaper::~Reaper() { stop(); }

void Reaper::retire(WorkloadRules* rules) {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->stopping) {
      state_->queue.push_back(rules);
      state_->cv.notify_one();
      return;
    }
  }
  delete rules;
}

void Reaper::stop() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopping = true;
    state_->cv.notify_one();
  }
  if (state_->thread.joinable()) state_->thread.join();
}

void Reaper::run() {
  std::unique_lock<std::mutex> lock(state_->mu);
  for (;;) {
    state_->cv.wait(lock, [&] { return state_->stopping || !state_->queue.empty(); });
    while (!state_->queue.empty()) {
      WorkloadRules* rules = state_->queue.front();
      state_->queue.pop_front();
      lock.unlock();
      delete rules;  // closes its Lua states: full GC, hook armed
      lock.lock();
    }
    if (state_->stopping) return;
  }
}

std::shared_ptr<WorkloadRules> retire_through(std::unique_ptr<WorkloadRules> rules,
                                              std::shared_ptr<Reaper> reaper) {
  return std::shared_ptr<WorkloadRules>(rules.release(), [reaper](WorkloadRules* r) { reaper->retire(r); });
}

}  // namespace switchboard::detail
