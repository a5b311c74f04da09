/// @file
/// Sessions: what each conversation's prompt caches hold, so the rules can
/// weigh a warm cache against a cheaper model (`ctx.session`) and the
/// decision's estimate prices the part expected to hit the cache at the
/// cached-input rate.
///
/// A step belongs to the session Step::session_id names: the caller's id
/// (the gateway's x-switchboard-session header or metadata.session_id), else
/// the hash of the conversation's opening that derive_step gives, so a plain
/// agent's repeated requests land in one session. The dispatcher records
/// every answered call of a step with a session (a fallback's too: the model
/// that answered), and the book keeps, per session, the model that served
/// the last call, the calls served so far, and per model the prompt tokens
/// now in that model's cache:
///  - the prefix now cached is the call's cache reads plus its cache writes
///    (Usage), for a provider whose cache is explicit (Anthropic: only what a
///    breakpoint covers is cached, and the usage says so); for the rest
///    (OpenAI, Gemini, OpenAI-compatible servers, the sim), whose caching of
///    a prompt's prefix is automatic and reports no writes, the call's whole
///    input, unless the call reported writes (then reads plus writes);
///  - it lives `ttl` ([sessions] ttl_s, 5 minutes: Anthropic's default
///    cache, OpenAI's and Gemini's implicit caches are of that order) after
///    the call that read or wrote it; the part a call wrote to Anthropic's
///    1-hour cache (its reads plus cache_write_1h_tokens) lives `ttl_1h`
///    ([sessions] ttl_1h_s, 1 hour), refreshed by each call that reads it all;
///  - once expired, the model's cache is cold: 0 tokens.
/// A model's figure is what the next call with the same prefix is expected
/// to read from the cache; it is an expectation, never a bill (the ledger
/// keeps the provider's own figures).
///
/// Memory is bounded: at most `max_sessions` sessions are kept, the least
/// recently recorded one is forgotten first (a forgotten session reads as
/// a new one: no last model, 0 turns, every cache cold).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "switchboard/pricing.h"

namespace switchboard {

/// The session book's settings ([sessions]).
struct SessionSettings {
  /// How long a prompt cache lives after the call that read or wrote it:
  /// `ttl_s` (Anthropic's 5-minute cache; OpenAI's and Gemini's implicit ones).
  std::chrono::seconds ttl{300};
  /// How long the part written to Anthropic's 1-hour cache lives: `ttl_1h_s`.
  std::chrono::seconds ttl_1h{3600};
  /// The most sessions kept (`max_sessions`); beyond, the least recently
  /// recorded is forgotten.
  std::int64_t max_sessions = 10'000;
};

/// How a provider's prompt cache fills (see the file comment).
enum class CacheFill {
  kAutomatic,  ///< every prompt's prefix is cached (OpenAI, Gemini, the sim): the whole input
  kExplicit,   ///< only what the request marks (Anthropic): reads plus writes
};

/// One session as the rules see it now.
struct SessionView {
  std::string id;          ///< Step::session_id
  std::string last_model;  ///< the model that answered the last call ("" before any)
  std::int64_t turns = 0;  ///< calls answered in the session so far
  /// Per model, the prompt tokens expected to hit its cache now; models
  /// whose cache is cold or expired are left out. By model name.
  std::vector<std::pair<std::string, std::int64_t>> cached_tokens;

  /// cached_tokens of `model`; 0 when cold, expired or never called.
  std::int64_t cached_for(std::string_view model) const;
};

/// Every session's cache figures; thread-safe (one short lock per call).
/// One per engine (Engine::sessions()).
class SessionBook {
 public:
  /// `clock` gives the time (steady); tests pass a scripted one.
  /// REQUIRES: settings.max_sessions >= 1.
  explicit SessionBook(SessionSettings settings,
                       std::function<std::chrono::steady_clock::time_point()> clock = std::chrono::steady_clock::now);
  ~SessionBook();
  SessionBook(const SessionBook&) = delete;
  SessionBook& operator=(const SessionBook&) = delete;

  /// A call of `session` answered by `model` with `usage`: the session's last
  /// model, turn count and `model`'s cache are updated as the file comment
  /// says. An empty `session` records nothing.
  void record(std::string_view session, std::string_view model, const Usage& usage, CacheFill fill);

  /// `session` now; nullopt for one never recorded (or forgotten) and for "".
  std::optional<SessionView> snapshot(std::string_view session) const;

  /// snapshot(session)->cached_for(model) without the copy: what a decision's
  /// estimate reads when the rules did not read ctx.session.
  std::int64_t cached_for(std::string_view session, std::string_view model) const;

  /// Sessions kept now (at most max_sessions).
  std::size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace switchboard
