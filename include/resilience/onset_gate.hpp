#ifndef RESILIENCE_ONSET_GATE_HPP
#define RESILIENCE_ONSET_GATE_HPP

// The onset gate of one scope (docs/fleet.md, "The onset cap"): while the
// scope is cold (no success seen lately, or a 429 or 5xx answer newer than
// the last success), each request asks a permit source before it is sent;
// once a success is seen the scope is warm and requests go without asking.
//
// It exists for fleets: at a quota storm's or an outage's first instant,
// every process has its pool's worth in flight before any answer comes back;
// a fleet-wide cap on the requests of a cold scope (a semaphore on Redis,
// resilience::redis::fleet) bounds that onset for the whole fleet. The core
// knows no I/O: a link (gate_link::attach) sets the permit source; without
// one, every request goes.
//
// The success path of a warm scope reads two atomics and writes nothing but
// every window / 8 (the time of its newest success).

#include <resilience/diagnostics.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <limits>
#include <memory>

namespace resilience {

/// What a permit source answers a request of a cold scope.
enum class onset_answer : unsigned char {
    wait,  ///< no permit yet (one is being sought): ask again after onset_settings::recheck
    go,    ///< go without a permit (e.g. the fleet is unreachable: the process decides alone)
    held,  ///< go holding a permit: give_back() once when the request is over
};

/// Where a cold scope's permits come from (an adapter: resilience::redis::fleet).
/// Thread-safe; never blocks, never throws.
class onset_permits {
public:
    virtual ~onset_permits() = default;
    /// Asked right before a request of the cold scope is sent.
    virtual onset_answer take() noexcept = 0;
    /// Gives back a permit take() answered `held` for; `success`: the
    /// request was answered with a success (the scope is warm again).
    virtual void give_back(bool success) noexcept = 0;
};

struct onset_settings {
    /// The scope stays warm this long after its newest success (unless a
    /// 429 or 5xx answer comes after it).
    duration window = std::chrono::seconds(60);
    /// A request answered `wait` is held (its connection kept) this long
    /// before it asks again.
    duration recheck = std::chrono::milliseconds(5);
};

class onset_gate {
public:
    onset_gate() = default;
    onset_gate(const onset_gate&) = delete;
    onset_gate& operator=(const onset_gate&) = delete;

    /// Sets the permit source; called once by a link before the gate is used.
    void link(std::shared_ptr<onset_permits> p, onset_settings s) {
        settings_ = s;
        refresh_ = std::max<rep>(1, s.window.count() / 8);
        permits_ = std::move(p);
    }
    /// True when a link set a permit source.
    bool linked() const noexcept { return permits_ != nullptr; }
    const onset_settings& settings() const noexcept { return settings_; }

    /// Warm: the newest outcome is a success admitted within the window (a
    /// success and a failure of the same instant: the success, e.g. news of
    /// another process's that arrived after a local 429).
    bool warm(time_point now) const noexcept {
        const rep s = success_.load(std::memory_order_relaxed);
        return s >= failure_.load(std::memory_order_relaxed) && now.time_since_epoch().count() - s < settings_.window.count();
    }
    /// A request admitted at `at` (or a process of the fleet, now) succeeded.
    void succeeded(time_point at) noexcept {
        const rep a = at.time_since_epoch().count();
        const rep s = success_.load(std::memory_order_relaxed);
        // Warm (so s was set) and fresh: the common success path writes nothing.
        if (s >= failure_.load(std::memory_order_relaxed) && a - s < refresh_) return;
        raise(success_, a);
    }
    /// A request admitted at `at` was answered 429 or 5xx: the scope is cold.
    void failed(time_point at) noexcept { raise(failure_, at.time_since_epoch().count()); }

    /// Before a request of a cold scope goes (the link's answer; `go` when unlinked).
    onset_answer take() noexcept { return permits_ ? permits_->take() : onset_answer::go; }
    /// After a request that take() answered `held` for.
    void give_back(bool success) noexcept {
        if (permits_) permits_->give_back(success);
    }

private:
    using rep = time_point::rep;
    static constexpr rep never = std::numeric_limits<rep>::min();
    static void raise(std::atomic<rep>& v, rep to) noexcept {
        rep cur = v.load(std::memory_order_relaxed);
        while (to > cur && !v.compare_exchange_weak(cur, to, std::memory_order_relaxed)) {
        }
    }
    std::atomic<rep> success_{never};
    std::atomic<rep> failure_{never + 1};  // above success_: cold until a success
    onset_settings settings_{};
    rep refresh_ = 1;
    std::shared_ptr<onset_permits> permits_;
};

}  // namespace resilience

#endif
