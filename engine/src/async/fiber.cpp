// Fibers on an io_context: Boost.Context fibers on guarded, cached stacks.
#include "async/fiber.h"

#include <sys/mman.h>
#include <unistd.h>

#include <exception>
#include <new>
#include <utility>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "async/curl_loop.h"

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define SWITCHBOARD_TSAN_FIBERS 1
#endif

namespace switchboard::async {

namespace {

namespace ctx = boost::context;

thread_local Fiber* t_current = nullptr;

// A fiber's stack: as large as a thread's default (8 MiB), so every bound
// that keeps a thread's stack safe keeps a fiber's (the rules' Lua C stack
// by LUAI_MAXCCALLS, JSON trees by max_json_depth, up to 10,000 levels).
// It is reserved, not committed: pages never touched cost no memory, and a
// stack that went deeper than kStackKeptBytes goes back to the cache with its
// pages below that released, so one deep request does not keep megabytes
// resident. "Went deeper" is a canary word at the top of the deep part,
// written when the stack is handed out: any deeper use writes over it, but
// for a frame whose unwritten array spans it; for that case every
// kTrimEvery-th stack given back is released below kStackKeptBytes anyway.
// A shallow fiber (every ordinary request) costs no madvise.
constexpr std::size_t kStackBytes = 8 * 1024 * 1024;
constexpr std::size_t kStackKeptBytes = 256 * 1024;
constexpr std::uint64_t kStackCanary = 0x5357'4954'4348'424fULL;
constexpr std::uint64_t kTrimEvery = 256;
// Stacks kept for the next fibers: enough for the calls of a busy I/O thread.
constexpr std::size_t kStacksKept = 64;

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

// The allocator Boost.Context calls: the loop's cache.
struct CachedStack {
  StackCache* cache;
  ctx::stack_context allocate() { return cache->allocate(); }
  void deallocate(ctx::stack_context& stack) noexcept { cache->deallocate(stack); }
};

// ThreadSanitizer's view of a switch; nothing without it.
void* tsan_current() {
#if SWITCHBOARD_TSAN_FIBERS
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}
void tsan_switch(void* to) {
#if SWITCHBOARD_TSAN_FIBERS
  __tsan_switch_to_fiber(to, 0);
#else
  (void)to;
#endif
}

}  // namespace

// ---------------------------------------------------------------- StackCache

StackCache::StackCache(std::size_t stack_bytes, std::size_t max_kept)
    : stack_bytes_((stack_bytes + page_size() - 1) / page_size() * page_size()), max_kept_(max_kept) {}

StackCache::~StackCache() {
  for (void* base : kept_) munmap(base, stack_bytes_ + page_size());
}

ctx::stack_context StackCache::allocate() {
  void* base = nullptr;
  if (!kept_.empty()) {
    base = kept_.back();
    kept_.pop_back();
  } else {
    const std::size_t total = stack_bytes_ + page_size();
    base = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    if (mprotect(base, page_size(), PROT_NONE) != 0) {  // the guard page: stacks grow down into it
      munmap(base, total);
      throw std::bad_alloc();
    }
  }
  ctx::stack_context stack;
  stack.size = stack_bytes_;
  stack.sp = static_cast<char*>(base) + page_size() + stack_bytes_;
  if (std::uint64_t* canary = deep_canary(stack)) *canary = kStackCanary;
  return stack;
}

std::uint64_t* StackCache::deep_canary(const ctx::stack_context& stack) const noexcept {
  if (stack.size <= kStackKeptBytes) return nullptr;
  return reinterpret_cast<std::uint64_t*>(static_cast<char*>(stack.sp) - kStackKeptBytes) - 1;
}

void StackCache::deallocate(ctx::stack_context& stack) noexcept {
  void* base = static_cast<char*>(stack.sp) - stack.size - page_size();
  if (kept_.size() < max_kept_) {
    const std::uint64_t* canary = deep_canary(stack);
    if (canary != nullptr && (*canary != kStackCanary || ++returned_ % kTrimEvery == 0)) {
      // Used below kStackKeptBytes (or its turn): the deep part's pages go back to the system.
      madvise(static_cast<char*>(base) + page_size(), stack.size - kStackKeptBytes, MADV_DONTNEED);
    }
    kept_.push_back(base);
  } else {
    munmap(base, stack.size + page_size());
  }
}

// ---------------------------------------------------------------- Fiber

Fiber* Fiber::current() noexcept { return t_current; }

Fiber::Fiber(Loop& loop, std::function<void()> body) : loop_(&loop), body_(std::move(body)) {
#if SWITCHBOARD_TSAN_FIBERS
  tsan_fiber_ = __tsan_create_fiber(0);
#endif
  context_ = ctx::fiber(std::allocator_arg, CachedStack{&loop.stacks_}, [this](ctx::fiber&& caller) {
    caller_ = std::move(caller);
    try {
      body_();
    } catch (const std::exception& e) {
      spdlog::error("a fiber ended with an exception: {}", e.what());
    }
    body_ = nullptr;  // what it captured goes now, on its own stack
    done_ = true;
    tsan_switch(tsan_caller_);
    return std::move(caller_);
  });
}

Fiber::~Fiber() {
  if (context_) {
    // Still waiting (its loop is going away): resuming it with an unwind
    // runs the destructors on its stack, which then comes back here.
    Fiber* const outer = t_current;
    t_current = this;
    tsan_caller_ = tsan_current();
    tsan_switch(tsan_fiber_);
    context_ = ctx::fiber();
    tsan_switch(tsan_caller_);
    t_current = outer;
  }
#if SWITCHBOARD_TSAN_FIBERS
  __tsan_destroy_fiber(tsan_fiber_);
#endif
}

void Fiber::switch_in() {
  Fiber* const outer = t_current;  // a fiber spawning another one
  t_current = this;
  waiting_ = false;
  tsan_caller_ = tsan_current();
  tsan_switch(tsan_fiber_);
  context_ = std::move(context_).resume();
  t_current = outer;  // the fiber announced the switch back to tsan_caller_
  if (done_) loop_->fibers_.erase(id_);  // REQUIRES: the caller holds a reference
}

void Fiber::wait() {
  if (before_wait_ != nullptr) {
    const std::uint64_t suspended = suspensions_;
    run_before_wait();
    // The work waited itself: a wake meant for the caller may have ended
    // that wait instead, so the caller checks its condition again first.
    if (suspensions_ != suspended) return;
  }
  ++suspensions_;
  waiting_ = true;
  tsan_switch(tsan_caller_);
  caller_ = std::move(caller_).resume();
  // Switched in again: switch_in() set waiting_ and the sanitizer's view.
}

void Fiber::before_next_wait(std::function<void()>* work) {
  if (before_wait_ != work) run_before_wait();
  before_wait_ = work;
}

void Fiber::run_before_wait() {
  std::function<void()>* const slot = std::exchange(before_wait_, nullptr);
  if (slot == nullptr) return;
  std::function<void()> work = std::move(*slot);
  *slot = nullptr;  // its owner sees it ran
  if (work) work();
}

void Fiber::clear_before_next_wait(const std::function<void()>* work) noexcept {
  if (before_wait_ == work) before_wait_ = nullptr;
}

void Fiber::resume(const std::weak_ptr<Fiber>& fiber) {
  const std::shared_ptr<Fiber> f = fiber.lock();  // held: switch_in may end it
  if (!f) return;
  if (t_current != nullptr || !f->loop_->io().get_executor().running_in_this_thread()) {
    wake(fiber);
  } else if (f->waiting_) {
    f->switch_in();
  }
}

void Fiber::wake(const std::weak_ptr<Fiber>& fiber) {
  const std::shared_ptr<Fiber> f = fiber.lock();
  if (!f) return;
  boost::asio::post(f->loop_->io(), [weak = fiber] {
    const std::shared_ptr<Fiber> f = weak.lock();
    if (f && f->waiting_ && t_current == nullptr) f->switch_in();
  });
}

// ---------------------------------------------------------------- Loop

Loop::Loop(boost::asio::io_context& io)
    : io_(io), stacks_(kStackBytes, kStacksKept), curl_(std::make_unique<CurlLoop>(io)), deadlines_(io) {}

Loop::~Loop() {
  while (!fibers_.empty()) {
    auto last = std::prev(fibers_.end());
    const std::shared_ptr<Fiber> fiber = std::move(last->second);
    fibers_.erase(last);
    // `fiber` unwinds here, unless a handler still holds it (then when that goes).
  }
}

void Loop::spawn(std::function<void()> body) {
  std::shared_ptr<Fiber> fiber(new Fiber(*this, std::move(body)));
  fiber->id_ = next_id_++;
  fibers_.emplace(fiber->id_, fiber);
  fiber->switch_in();
}

}  // namespace switchboard::async
