// Folder health/: model health (switchboard/health.h). It may use util/ and
// the public headers.
#include "switchboard/health.h"

#include "health/health_share.h"

#include <algorithm>
#include <array>
#include <deque>
#include <map>
#include <mutex>
#include <optional>

namespace switchboard {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kLatencySamples = 64;

// The latency at fraction `q` of the first `n` of `samples` (nearest rank);
// reorders them.
double quantile(std::array<double, kLatencySamples>& samples, std::size_t n, double q) {
  const std::size_t k = std::min(n - 1, static_cast<std::size_t>(q * static_cast<double>(n)));
  std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(k),
                   samples.begin() + static_cast<std::ptrdiff_t>(n));
  return samples[k];
}

}  // namespace

std::string_view to_string(ModelHealth::State s) {
  switch (s) {
    case ModelHealth::State::kClosed: return "closed";
    case ModelHealth::State::kOpen: return "open";
    case ModelHealth::State::kHalfOpen: return "half_open";
  }
  return "closed";
}

struct HealthBook::Impl {
  struct Outcome {
    Clock::time_point at;
    bool failed;
  };
  struct Model {
    ModelHealth::State state = ModelHealth::State::kClosed;
    Clock::time_point opened_at{};
    bool probe_out = false;  // half-open: the probe has not reported
    int consecutive_failures = 0;
    std::deque<Outcome> window;  // the window's outcomes, oldest first
    std::size_t window_failures = 0;  // of them, failed
    std::array<double, kLatencySamples> latency{};
    std::size_t latency_count = 0;  // samples written (the ring holds the last kLatencySamples)
    // The ring's quantiles, computed by the first snapshot after a sample
    // came (quantiles_stale): a call records a sample, and only decisions
    // that read ctx.models take snapshots, so neither pays for the other.
    std::optional<double> p50_ms;
    std::optional<double> p95_ms;
    bool quantiles_stale = false;
    RateLimits limits;
    Clock::time_point limits_at{};
    // Sharing (health_share.h): what this process saw since the last take
    // (its latencies: the ring's samples from latency_taken on) ...
    detail::HealthOutcomes out;
    std::size_t latency_taken = 0;
    // ... and the fleet's figures from the last exchange (fleet_at: when; never: none).
    bool fleet_seen = false;
    Clock::time_point fleet_at{};
    detail::FleetHealth fleet;
  };

  HealthSettings settings;
  std::function<Clock::time_point()> clock;
  mutable std::mutex mu;
  std::map<std::string, Model, std::less<>> models;
  HealthSharing sharing;  // sharing.enabled: keep `out` for the exchange

  bool fleet_fresh(const Model& m, Clock::time_point now) const {
    return sharing.enabled && m.fleet_seen && now - m.fleet_at <= detail::kFleetFresh;
  }

  void keep_outcome(Model& m, bool failed) const {
    if (!sharing.enabled) return;
    if (failed) {
      ++m.out.failures;
      ++m.out.trailing_failures;
    } else {
      ++m.out.successes;
      m.out.trailing_failures = 0;
    }
  }

  Model& model(std::string_view name) {
    auto it = models.find(name);
    if (it == models.end()) it = models.emplace(std::string(name), Model{}).first;
    return it->second;
  }

  void trim(Model& m, Clock::time_point now) const {
    while (!m.window.empty() && now - m.window.front().at > settings.window) {
      if (m.window.front().failed) --m.window_failures;
      m.window.pop_front();
    }
  }

  void add(Model& m, Clock::time_point now, bool failed) const {
    m.window.push_back({now, failed});
    if (failed) ++m.window_failures;
    trim(m, now);
  }

  void add_latency(Model& m, double ms) const {
    m.latency[m.latency_count++ % kLatencySamples] = ms;
    m.quantiles_stale = true;
  }

  void settle_quantiles(Model& m) const {
    if (!m.quantiles_stale) return;
    m.quantiles_stale = false;
    const std::size_t n = std::min(m.latency_count, kLatencySamples);
    std::array<double, kLatencySamples> samples = m.latency;
    m.p50_ms = quantile(samples, n, 0.50);
    m.p95_ms = quantile(samples, n, 0.95);
  }

  // Open past its cool-down: half-open, no probe out yet.
  void cool(Model& m, Clock::time_point now) const {
    if (m.state == ModelHealth::State::kOpen && now - m.opened_at >= settings.cooldown) {
      m.state = ModelHealth::State::kHalfOpen;
      m.probe_out = false;
    }
  }

  // This process opens the breaker (and tells the fleet at the next exchange).
  void open(Model& m, Clock::time_point now) const {
    m.state = ModelHealth::State::kOpen;
    m.opened_at = now;
    m.probe_out = false;
    if (sharing.enabled) m.out.tripped = true;
  }

  void close(Model& m) const {
    m.state = ModelHealth::State::kClosed;
    m.probe_out = false;
    m.window.clear();  // the failures that opened it no longer count against it
    m.window_failures = 0;
  }
};

HealthBook::HealthBook(HealthSettings settings, std::function<Clock::time_point()> clock)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = settings;
  impl_->clock = std::move(clock);
}

HealthBook::~HealthBook() = default;

bool HealthBook::admit(std::string_view name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->models.find(name);
  if (it == impl_->models.end()) return true;
  Impl::Model& m = it->second;
  impl_->cool(m, impl_->clock());
  switch (m.state) {
    case ModelHealth::State::kClosed: return true;
    case ModelHealth::State::kOpen: return false;
    case ModelHealth::State::kHalfOpen:
      if (m.probe_out) return false;
      m.probe_out = true;
      return true;
  }
  return true;
}

void HealthBook::record_success(std::string_view name, std::chrono::milliseconds latency, const RateLimits& limits) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const Clock::time_point now = impl_->clock();
  Impl::Model& m = impl_->model(name);
  m.consecutive_failures = 0;
  impl_->add(m, now, false);
  impl_->add_latency(m, static_cast<double>(latency.count()));
  impl_->keep_outcome(m, false);
  if (!limits.empty()) {
    m.limits = limits;
    m.limits_at = now;
  }
  if (m.state != ModelHealth::State::kClosed) {  // a probe's success (or a call admitted before it opened)
    impl_->close(m);
    impl_->add(m, now, false);
    if (impl_->sharing.enabled) m.out.closed = true;
  }
}

void HealthBook::record_failure(std::string_view name, std::optional<std::chrono::milliseconds> retry_after) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const HealthSettings& s = impl_->settings;
  const Clock::time_point now = impl_->clock();
  Impl::Model& m = impl_->model(name);
  m.consecutive_failures++;
  impl_->add(m, now, true);
  impl_->keep_outcome(m, true);
  if (retry_after) {
    m.limits.requests_left = 0;
    m.limits.requests_reset = *retry_after;
    m.limits_at = now;
  }
  if (m.state == ModelHealth::State::kHalfOpen) {  // the probe failed
    impl_->open(m, now);
    return;
  }
  if (m.state == ModelHealth::State::kOpen) return;
  const bool rate_trips = static_cast<std::int64_t>(m.window.size()) >= s.min_calls &&
                          static_cast<double>(m.window_failures) >= s.error_rate * static_cast<double>(m.window.size());
  if (m.consecutive_failures >= s.failure_threshold || rate_trips) impl_->open(m, now);
}

void HealthBook::record_neutral(std::string_view name) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->models.find(name);
  if (it != impl_->models.end() && it->second.state == ModelHealth::State::kHalfOpen) it->second.probe_out = false;
}

ModelHealth HealthBook::snapshot(std::string_view name) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  ModelHealth h;
  auto it = impl_->models.find(name);
  if (it == impl_->models.end()) return h;
  Impl::Model& m = it->second;
  const Clock::time_point now = impl_->clock();
  impl_->cool(m, now);
  impl_->trim(m, now);
  h.state = m.state;
  h.healthy = m.state == ModelHealth::State::kClosed || (m.state == ModelHealth::State::kHalfOpen && !m.probe_out);
  h.consecutive_failures = m.consecutive_failures;
  h.calls = static_cast<std::int64_t>(m.window.size());
  std::int64_t failures = static_cast<std::int64_t>(m.window_failures);
  impl_->settle_quantiles(m);
  h.p50_ms = m.p50_ms;
  h.p95_ms = m.p95_ms;
  if (impl_->fleet_fresh(m, now)) {  // the fleet's figures, plus what this process has not sent yet
    const detail::FleetHealth& f = m.fleet;
    h.calls = f.calls + m.out.successes + m.out.failures;
    failures = f.failures + m.out.failures;
    const std::int64_t consecutive =
        m.out.successes > 0 ? m.out.trailing_failures : f.consecutive_failures + m.out.trailing_failures;
    h.consecutive_failures = static_cast<int>(std::max<std::int64_t>(h.consecutive_failures, consecutive));
    if (f.p50_ms) h.p50_ms = f.p50_ms;
    if (f.p95_ms) h.p95_ms = f.p95_ms;
  }
  if (h.calls > 0) h.error_rate = static_cast<double>(failures) / static_cast<double>(h.calls);
  h.limits = m.limits;
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - m.limits_at);
  const auto count_down = [&](std::optional<std::chrono::milliseconds>& reset) {
    if (reset) reset = std::max(std::chrono::milliseconds(0), *reset - elapsed);
  };
  count_down(h.limits.requests_reset);
  count_down(h.limits.tokens_reset);
  return h;
}

HealthSharing HealthBook::sharing() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sharing;
}

using detail::FleetHealth;
using detail::HealthOutcomes;

void HealthBookAccess::enable(HealthBook& book) {
  std::lock_guard<std::mutex> lock(book.impl_->mu);
  book.impl_->sharing.enabled = true;
}

std::vector<HealthOutcomes> HealthBookAccess::take(HealthBook& book) {
  std::vector<HealthOutcomes> taken;
  std::lock_guard<std::mutex> lock(book.impl_->mu);
  for (auto& [name, m] : book.impl_->models) {
    HealthOutcomes& o = m.out;
    if (o.successes == 0 && o.failures == 0 && !o.tripped && !o.closed) continue;
    taken.push_back(std::move(o));
    o = HealthOutcomes{};
    HealthOutcomes& t = taken.back();
    t.model = name;
    const std::size_t fresh = std::min(m.latency_count - m.latency_taken, kLatencySamples);
    t.latencies_ms.clear();
    for (std::size_t i = m.latency_count - fresh; i < m.latency_count; ++i) {
      t.latencies_ms.push_back(m.latency[i % kLatencySamples]);
    }
    m.latency_taken = m.latency_count;
  }
  return taken;
}

void HealthBookAccess::give_back(HealthBook& book, std::vector<HealthOutcomes> outcomes) {
  std::lock_guard<std::mutex> lock(book.impl_->mu);
  for (const HealthOutcomes& back : outcomes) {
    HealthBook::Impl::Model& m = book.impl_->model(back.model);
    HealthOutcomes& o = m.out;  // newer than `back`
    o.trailing_failures = o.successes > 0 ? o.trailing_failures : back.trailing_failures + o.trailing_failures;
    o.successes += back.successes;
    o.failures += back.failures;
    o.tripped = o.tripped || back.tripped;
    o.closed = o.closed || back.closed;
    m.latency_taken -= std::min(m.latency_taken, back.latencies_ms.size());  // sent again (those still in the ring)
  }
}

void HealthBookAccess::apply(HealthBook& book, const std::vector<FleetHealth>& fleet) {
  HealthBook::Impl& impl = *book.impl_;
  using State = ModelHealth::State;
  std::lock_guard<std::mutex> lock(impl.mu);
  const Clock::time_point now = impl.clock();
  for (const FleetHealth& f : fleet) {
    HealthBook::Impl::Model& m = impl.model(f.model);
    impl.cool(m, now);
    const bool probing = m.state == State::kHalfOpen && m.probe_out;  // its report decides, here and then in the fleet
    if (f.open_left > std::chrono::milliseconds(0)) {
      const Clock::time_point opened_at = now + f.open_left - impl.settings.cooldown;
      if (!probing && (m.state != State::kOpen || opened_at > m.opened_at)) {
        m.state = State::kOpen;  // not open(): the fleet opened it, this process has nothing to tell
        m.opened_at = opened_at;
        m.probe_out = false;
      }
    } else if (m.fleet_seen && f.closings > m.fleet.closings && !probing && m.state != State::kClosed) {
      impl.close(m);  // a probe's success elsewhere
      m.consecutive_failures = 0;
    }
    m.fleet = f;
    m.fleet_seen = true;
    m.fleet_at = now;
  }
  impl.sharing.degraded = false;
  ++impl.sharing.exchanges;
}

void HealthBookAccess::failed(HealthBook& book) {
  std::lock_guard<std::mutex> lock(book.impl_->mu);
  ++book.impl_->sharing.unavailable;
  book.impl_->sharing.degraded = true;
}

const HealthSettings& HealthBookAccess::settings(const HealthBook& book) { return book.impl_->settings; }

}  // namespace switchboard
