// Folder health/: model health (switchboard/health.h). It may use util/ and
// the public headers.
#include "switchboard/health.h"

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
    // The ring's quantiles, computed when a sample comes: a snapshot (which
    // every decision that reads ctx.models takes) only copies them.
    std::optional<double> p50_ms;
    std::optional<double> p95_ms;
    RateLimits limits;
    Clock::time_point limits_at{};
  };

  HealthSettings settings;
  std::function<Clock::time_point()> clock;
  mutable std::mutex mu;
  std::map<std::string, Model, std::less<>> models;

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

  void open(Model& m, Clock::time_point now) const {
    m.state = ModelHealth::State::kOpen;
    m.opened_at = now;
    m.probe_out = false;
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
  if (!limits.empty()) {
    m.limits = limits;
    m.limits_at = now;
  }
  if (m.state != ModelHealth::State::kClosed) {  // a probe's success (or a call admitted before it opened)
    m.state = ModelHealth::State::kClosed;
    m.probe_out = false;
    m.window.clear();  // the failures that opened it no longer count against it
    m.window_failures = 0;
    impl_->add(m, now, false);
  }
}

void HealthBook::record_failure(std::string_view name, std::optional<std::chrono::milliseconds> retry_after) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  const HealthSettings& s = impl_->settings;
  const Clock::time_point now = impl_->clock();
  Impl::Model& m = impl_->model(name);
  m.consecutive_failures++;
  impl_->add(m, now, true);
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
  if (h.calls > 0) h.error_rate = static_cast<double>(m.window_failures) / static_cast<double>(h.calls);
  h.p50_ms = m.p50_ms;
  h.p95_ms = m.p95_ms;
  h.limits = m.limits;
  const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - m.limits_at);
  const auto count_down = [&](std::optional<std::chrono::milliseconds>& reset) {
    if (reset) reset = std::max(std::chrono::milliseconds(0), *reset - elapsed);
  };
  count_down(h.limits.requests_reset);
  count_down(h.limits.tokens_reset);
  return h;
}

}  // namespace switchboard
