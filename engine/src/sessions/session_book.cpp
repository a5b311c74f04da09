// Folder sessions/: the session book (switchboard/sessions.h). It may use
// util/ and the public headers.
#include "switchboard/sessions.h"

#include <algorithm>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>

namespace switchboard {

namespace {

using Clock = std::chrono::steady_clock;

// A cached prefix and when it expires.
struct Cached {
  std::int64_t tokens = 0;
  Clock::time_point expires{};
};

}  // namespace

std::int64_t SessionView::cached_for(std::string_view model) const {
  const auto it = std::lower_bound(cached_tokens.begin(), cached_tokens.end(), model,
                                   [](const auto& entry, std::string_view name) { return entry.first < name; });
  return it != cached_tokens.end() && it->first == model ? it->second : 0;
}

struct SessionBook::Impl {
  struct ModelCache {
    Cached short_lived;  // the prefix of the last call, for ttl
    Cached long_lived;   // the part in a 1-hour cache, for ttl_1h
  };
  struct Session {
    std::string last_model;
    std::int64_t turns = 0;
    std::map<std::string, ModelCache, std::less<>> models;
    std::list<std::string>::iterator lru;  // its place in `order`
  };

  SessionSettings settings;
  std::function<Clock::time_point()> clock;
  mutable std::mutex mu;
  std::list<std::string> order;  // most recently recorded first
  std::unordered_map<std::string, Session> sessions;

  static std::int64_t live(const Cached& c, Clock::time_point now) { return now < c.expires ? c.tokens : 0; }
};

SessionBook::SessionBook(SessionSettings settings, std::function<Clock::time_point()> clock)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = settings;
  impl_->settings.max_sessions = std::max<std::int64_t>(1, settings.max_sessions);
  impl_->clock = std::move(clock);
}

SessionBook::~SessionBook() = default;

void SessionBook::record(std::string_view session, std::string_view model, const Usage& usage, CacheFill fill) {
  if (session.empty()) return;
  const std::int64_t written = usage.cache_write_5m_tokens + usage.cache_write_1h_tokens;
  const std::int64_t prefix = fill == CacheFill::kExplicit || written > 0
                                  ? usage.cached_input_tokens + written
                                  : usage.total_input();
  std::string key(session);  // built before the lock: the lock holds no allocation it can avoid
  std::lock_guard<std::mutex> lock(impl_->mu);
  const Clock::time_point now = impl_->clock();
  auto it = impl_->sessions.find(key);
  if (it == impl_->sessions.end()) {
    impl_->order.push_front(key);
    it = impl_->sessions.emplace(std::move(key), Impl::Session{}).first;
    it->second.lru = impl_->order.begin();
    while (static_cast<std::int64_t>(impl_->sessions.size()) > impl_->settings.max_sessions) {
      impl_->sessions.erase(impl_->order.back());
      impl_->order.pop_back();
    }
  } else {
    impl_->order.splice(impl_->order.begin(), impl_->order, it->second.lru);
  }
  Impl::Session& s = it->second;
  s.last_model.assign(model);
  s.turns++;
  auto m = s.models.find(model);
  if (m == s.models.end()) m = s.models.emplace(std::string(model), Impl::ModelCache{}).first;
  Impl::ModelCache& c = m->second;
  c.short_lived = {prefix, now + impl_->settings.ttl};
  if (usage.cache_write_1h_tokens > 0) {
    c.long_lived = {usage.cached_input_tokens + usage.cache_write_1h_tokens, now + impl_->settings.ttl_1h};
  } else if (Impl::live(c.long_lived, now) > 0 && usage.cached_input_tokens >= c.long_lived.tokens) {
    c.long_lived.expires = now + impl_->settings.ttl_1h;  // read whole: a read refreshes its lifetime
  }
}

std::optional<SessionView> SessionBook::snapshot(std::string_view session) const {
  if (session.empty()) return std::nullopt;
  SessionView v;
  v.id.assign(session);
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    const auto it = impl_->sessions.find(v.id);
    if (it == impl_->sessions.end()) return std::nullopt;
    const Clock::time_point now = impl_->clock();
    const Impl::Session& s = it->second;
    v.last_model = s.last_model;
    v.turns = s.turns;
    v.cached_tokens.reserve(s.models.size());
    for (const auto& [name, c] : s.models) {
      const std::int64_t tokens = std::max(Impl::live(c.short_lived, now), Impl::live(c.long_lived, now));
      if (tokens > 0) v.cached_tokens.emplace_back(name, tokens);
    }
  }
  return v;
}

std::int64_t SessionBook::cached_for(std::string_view session, std::string_view model) const {
  if (session.empty()) return 0;
  const std::string key(session);
  std::lock_guard<std::mutex> lock(impl_->mu);
  const auto it = impl_->sessions.find(key);
  if (it == impl_->sessions.end()) return 0;
  const auto m = it->second.models.find(model);
  if (m == it->second.models.end()) return 0;
  const Clock::time_point now = impl_->clock();
  return std::max(Impl::live(m->second.short_lived, now), Impl::live(m->second.long_lived, now));
}

std::size_t SessionBook::size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->sessions.size();
}

}  // namespace switchboard
