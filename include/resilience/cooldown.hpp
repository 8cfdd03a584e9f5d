#ifndef RESILIENCE_COOLDOWN_HPP
#define RESILIENCE_COOLDOWN_HPP

// The shared cooldown gate (DESIGN.md, Cooldown).
//
// A map from quota scope to a "not before" time. When one operation learns a
// pushback delay (a 429 with RetryInfo or Retry-After), it calls defer(); every
// operation of the same scope then waits until that time before its next
// attempt, instead of each discovering the limit with its own 429.
//
// Scopes are strings chosen by the caller (host + API key by default: see
// make_scope). The raw string is never stored: the map holds a 64-bit hash of
// it, so an API key inside a scope never sits in memory here, nor in any
// message. Two scopes whose hashes collide would share a cooldown; with 64
// bits that is negligible.
//
// `cooldown_state` is the pure map (takes `now`); `cooldown` wraps it behind a
// mutex for sharing across threads, with an atomic "nothing deferred in the
// future" check so that the common case takes no lock and reads no clock
// when nothing was ever deferred.

#include <resilience/diagnostics.hpp>
#include <resilience/gate_sync.hpp>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace resilience {

/// FNV-1a 64-bit hash of a scope string.
std::uint64_t scope_hash(std::string_view scope) noexcept;

/// The default scope for a host and an API key: "host#" followed by a hash of
/// the key in hex. Safe to log: the key cannot be read back from it.
std::string make_scope(std::string_view host, std::string_view api_key);

/// When a call held by a cooldown that ends at `until` (and lasted `held`
/// when the call met it) wakes, given a sample u in [0, 1): spread over a
/// tenth of `held` (at most 2 s) after `until`, so that the held calls do not
/// all go at once: the first one released learns whether the quota is back,
/// and a new pushback holds the others again before they ask.
time_point cooldown_release(time_point until, duration held, double u) noexcept;

/// The pure per-scope "not before" map.
class cooldown_state {
public:
    /// Raises the scope's not-before time to `until` (never lowers it).
    void defer(std::uint64_t scope, time_point until);
    /// The scope's not-before time if it is later than `now`.
    std::optional<time_point> blocked_until(std::uint64_t scope, time_point now) const;
    /// Forgets scopes whose time has passed.
    void sweep(time_point now);
    std::size_t size() const noexcept { return m_.size(); }

private:
    std::unordered_map<std::uint64_t, time_point> m_;
};

/// Shared by every operation of one or more scopes, from any thread.
class cooldown {
public:
    cooldown() = default;
    cooldown(const cooldown&) = delete;
    cooldown& operator=(const cooldown&) = delete;

    /// Nobody of `scope` may start an attempt before `until`. `now`, when
    /// given, lets the map forget expired scopes once it holds many.
    void defer(std::uint64_t scope, time_point until, time_point now = time_point::min());
    void defer(std::string_view scope, time_point until, time_point now = time_point::min()) {
        defer(scope_hash(scope), until, now);
    }

    /// When an attempt of `scope` may start, if later than `now`.
    std::optional<time_point> blocked_until(std::uint64_t scope, time_point now) const;
    std::optional<time_point> blocked_until(std::string_view scope, time_point now) const {
        return blocked_until(scope_hash(scope), now);
    }
    /// Lock-free check: true when the latest deferral of any scope ends no later than `now`.
    bool clear_at(time_point now) const noexcept {
        return latest_.load(std::memory_order_acquire) <= now.time_since_epoch().count();
    }
    /// True when nothing was ever deferred (no clock read needed).
    bool never_deferred() const noexcept {
        return latest_.load(std::memory_order_acquire) == never;
    }

    std::size_t scopes() const;

    // ---- The fleet seam (resilience/gate_sync.hpp).
    /// Reports each local raise of a scope's cooldown (defer() given `now`)
    /// to `o` from now on. Thread-safe.
    void set_observer(std::shared_ptr<gate_observer> o);
    /// defer() for a deferral made by another process: not reported back.
    void apply_remote(std::uint64_t scope, time_point until, time_point now);

private:
    void raise_locked(std::uint64_t scope, time_point until, time_point now);
    std::shared_ptr<gate_observer> observer_;
    static constexpr time_point::rep never = std::numeric_limits<time_point::rep>::min();
    mutable std::mutex mu_;
    cooldown_state s_;
    std::atomic<time_point::rep> latest_{never};  ///< max of every deferral
};

}  // namespace resilience

#endif
