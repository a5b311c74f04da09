#include "rules/shadow.h"

#include "cost/estimate.h"
#include "rules/decide.h"
#include "util/thread_name.h"

namespace switchboard::detail {

using Clock = std::chrono::steady_clock;

ShadowCounts ShadowCounters::load() const {
  ShadowCounts c;
  c.evaluated = evaluated.load(std::memory_order_relaxed);
  c.agreed = agreed.load(std::memory_order_relaxed);
  c.errors = errors.load(std::memory_order_relaxed);
  c.dropped = dropped.load(std::memory_order_relaxed);
  return c;
}

ShadowWorker::ShadowWorker(std::shared_ptr<const Config> config, std::shared_ptr<Ledger> ledger)
    : config_(std::move(config)),
      ledger_(std::move(ledger)),
      capacity_(static_cast<size_t>(config_->shadow.queue)) {}

std::unique_ptr<ShadowWorker> ShadowWorker::start(std::shared_ptr<const Config> config,
                                                  std::shared_ptr<Ledger> ledger) {
  std::unique_ptr<ShadowWorker> w(new ShadowWorker(std::move(config), std::move(ledger)));
  w->thread_ = std::thread([raw = w.get()] {
    detail::name_this_thread("sb-shadow-rules");
    raw->run();
  });
  return w;
}

ShadowWorker::~ShadowWorker() { stop(); }

void ShadowWorker::offer(ShadowJob job) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || queue_.size() >= capacity_) {
      job.counters->dropped.fetch_add(1, std::memory_order_relaxed);
      return;  // `job` goes after the lock: dropping it may retire old rules
    }
    queue_.push_back(std::move(job));
    waiting_.store(queue_.size(), std::memory_order_relaxed);
    wake = sleeping_;
    sleeping_ = false;  // one wake-up is enough
  }
  if (wake) work_cv_.notify_one();
}

bool ShadowWorker::full() const { return waiting_.load(std::memory_order_relaxed) >= capacity_; }

bool ShadowWorker::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_cv_.wait_for(lock, timeout, [&] { return queue_.empty() && !busy_; });
}

void ShadowWorker::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      stopping_ = true;
      drain_deadline_ = Clock::now() + config_->shadow.drain_timeout;
    }
  }
  work_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  ledger_.reset();
}

void ShadowWorker::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) return;
      sleeping_ = true;
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      sleeping_ = false;
      continue;
    }
    if (stopping_ && Clock::now() >= drain_deadline_) {
      // Out of time: what still waits is counted, never evaluated.
      std::deque<ShadowJob> left;
      left.swap(queue_);
      waiting_.store(0, std::memory_order_relaxed);
      idle_cv_.notify_all();
      lock.unlock();
      for (ShadowJob& job : left) job.counters->dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    {
      ShadowJob job = std::move(queue_.front());
      queue_.pop_front();
      waiting_.store(queue_.size(), std::memory_order_relaxed);
      busy_ = true;
      lock.unlock();
      evaluate(job);
    }  // the job (and perhaps the last reference to retired rules) goes outside the lock
    lock.lock();
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

void ShadowWorker::evaluate(ShadowJob& job) const {
  // The ctx figures the active rules saw (budget, session), not the books' now.
  CallContext ctx;
  ctx.spent = job.active.context_spent;
  ctx.budget_left = job.active.context_budget_left;
  ctx.rate_requests_left = job.active.context_rate_requests_left;
  ctx.rate_tokens_left = job.active.context_rate_tokens_left;
  DecisionRecord r;
  r.decision = decide_with(*config_, *job.workload, *job.candidate, job.step, ctx, nullptr, nullptr, nullptr,
                           job.session ? &*job.session : nullptr);
  r.agrees = !r.decision.error && same_choice(r.decision, job.active);
  ShadowCounters& counts = *job.counters;
  counts.evaluated.fetch_add(1, std::memory_order_relaxed);
  if (r.agrees) counts.agreed.fetch_add(1, std::memory_order_relaxed);
  if (r.decision.error) counts.errors.fetch_add(1, std::memory_order_relaxed);
  if (!ledger_) return;
  // The step as the Dispatcher records the active decision's (step_for_ledger).
  r.time = job.at;
  r.trace_id = std::move(job.trace_id);
  r.kind = DecisionKind::kShadow;
  r.admission = AdmissionOutcome::kNotAdmitted;
  r.step = step_for_ledger(std::move(job.step), *config_);
  r.active = std::move(job.active);
  ledger_->record(r);
}

}  // namespace switchboard::detail
