#ifndef RESILIENCE_CIRCUIT_BREAKER_HPP
#define RESILIENCE_CIRCUIT_BREAKER_HPP

// The circuit breaker (DESIGN.md, Circuit breaker).
//
// Two layers, as Boost.Redis splits its reconnect logic:
//
// * `breaker_machine`: the pure state machine. No clock, no lock, no I/O: every
//   call takes `now`. CLOSED -> OPEN after `failure_threshold` consecutive
//   counted failures (breaker_config), or, with the failure-rate window of
//   `breaker_rules` on (Polly v8, resilience4j), when the share of counted
//   failures among the calls of the last `sampling_duration` reaches
//   `failure_ratio` and either the window holds `minimum_throughput` calls or
//   the last `failure_threshold` calls all failed (so a lone caller still
//   opens it within a few failures, and thousands of polls do not open it
//   on three unlucky ones), or the last `failure_streak` calls all failed
//   whatever the share (a busy breaker in an outage). OPEN -> HALF_OPEN at the first admission request
//   once the break has passed; HALF_OPEN admits at most `half_open_probes`
//   probes at a time; a probe's success closes it (and clears the window), a
//   counted probe failure reopens it for a break `break_multiplier` times
//   longer, up to `max_break` (cockatiel, Polly's generator; the break is back
//   to `open_timeout` once closed); a probe that ends without a
//   verdict (cancelled, cut by the caller's deadline, destroyed) gives its
//   slot back. Manual isolate() (forced OPEN until reset) and reset() (CLOSED).
//   Each admission carries the breaker's generation (bumped at every
//   transition); the outcome of an admission from an older generation is
//   ignored, so a slow call admitted while CLOSED cannot reopen a breaker that
//   has since recovered, or close one that has since opened.
//
//   What counts: failures whose kind is in `counted_kinds` (by default
//   RETRYABLE_NETWORK and RETRYABLE_SERVER: connection failures, timeouts,
//   5xx). Other failures (a 403 or 404 about one file, a 429) are the service
//   answering: they neither count nor reset the CLOSED failure streak, and a
//   probe that ends with one closes the breaker (the service is up).
//
// * `circuit_breaker`: the object shared (via std::shared_ptr) by every
//   operation against one service, from any thread. The machine lives behind
//   a mutex (the "equivalent of a strand": transitions are rare and short); an
//   atomic state word mirrors it so that the CLOSED path takes no lock and no
//   executor hop: admission is one atomic load, a success one more, plus a
//   relaxed increment of a success counter when the failure-rate window is
//   on (the counter is folded into the window under the lock at the next
//   failure or transition, spread over the time since the last fold) (Envoy
//   does the same with plain atomics and accepts a brief overshoot: calls
//   admitted just before the breaker opens still run).
//   Waiting for admission: `wait_for_change(version)` completes when the
//   breaker's version changes (a probe slot freed, a transition), or at
//   per-operation cancellation. The retry combinator races it against the
//   caller's clock (open timeout, deadline), so waits follow virtual time.
//
// Settings: breaker_options is the name to reach for, the settings a
// circuit_breaker is built from (as retry_options builds a pipeline). It
// holds two validated parts that the pure machine takes, kept apart because
// they are set from different places: `config` (breaker_config, config.hpp:
// the consecutive rule of DESIGN.md, threshold, open timeout, probes, which
// the GEMINI_CIRCUIT_BREAKER_* environment sets) and `rules` (breaker_rules:
// the failure-rate window, failure streak and growing break added to that
// rule, off by default, set in code only); plus what only the shared object
// needs (counted kinds, clock, history, on_transition). gemini::client_options
// carries the two parts as `breaker` and `breaker_window`.
//
// Thread safety: every member of circuit_breaker may be called concurrently.
// breaker_machine is a plain value type.
//
// Lifetimes: a coroutine waiting in wait_for_change is owned by the breaker
// until it is woken; destroy the breaker only when no operation waits on it
// (and before the io_context those operations run on). isolate() holds
// waiting callers until reset(), their deadline or their cancellation.

#include <resilience/clock.hpp>
#include <resilience/config.hpp>
#include <resilience/diagnostics.hpp>
#include <resilience/events.hpp>
#include <resilience/gate_sync.hpp>

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace resilience {

/// Why the breaker changed state.
enum class transition_reason : unsigned char {
    failure_threshold,  ///< CLOSED -> OPEN: `failure_threshold` consecutive counted failures
    failure_ratio,      ///< CLOSED -> OPEN: the window's failure share reached `failure_ratio`
    open_timeout,       ///< OPEN -> HALF_OPEN: the open timeout passed
    probe_succeeded,    ///< HALF_OPEN -> CLOSED
    probe_failed,       ///< HALF_OPEN -> OPEN
    isolated,           ///< any -> OPEN by isolate()
    reset,              ///< any -> CLOSED by reset()
    remote,             ///< any -> any by apply_remote(): decided by another process of the fleet
};
std::string_view to_string(transition_reason r) noexcept;

/// One state change, with when and why.
struct breaker_transition {
    breaker_state from = breaker_state::closed;
    breaker_state to = breaker_state::closed;
    time_point at{};
    transition_reason reason = transition_reason::reset;
};

/// Bit for `kind` in a set of error kinds.
constexpr unsigned kind_bit(error_kind k) noexcept { return 1u << static_cast<unsigned>(k); }
/// The kinds that count against the breaker by default: network failures
/// (including timeouts) and 5xx.
constexpr unsigned default_counted_kinds =
    kind_bit(error_kind::retryable_network) | kind_bit(error_kind::retryable_server);

/// What the breaker adds to the consecutive rule of breaker_config (open after
/// `failure_threshold` consecutive counted failures; a fixed `open_timeout`
/// break). The defaults leave it off: that rule alone, with a constant break.
/// One of the two validated parts of breaker_options (see "Settings" above).
struct breaker_rules {
    double failure_ratio = 0;                            ///< window failure share that opens it; 0 = window off; else in (0, 1]
    int minimum_throughput = 100;                        ///< window calls needed before the share alone opens it; 1..1000000
    std::chrono::milliseconds sampling_duration{30000};  ///< window length, kept in 10 buckets; 100 ms..24 h
    double break_multiplier = 1;                         ///< break growth per failed probe; 1 = constant; 1..100
    std::chrono::milliseconds max_break{0};              ///< cap of the grown break (never below open_timeout); 0..24 h
    /// With the window on: this many consecutive counted failures open it
    /// whatever the window holds (Envoy's consecutive_5xx beside its
    /// failure_percentage), so that a busy breaker opens fast in an outage
    /// despite the successes still in its window; 0 = off; else 1..1000000,
    /// and only with failure_ratio > 0.
    int failure_streak = 0;
};
/// Checks the ranges above; the failure's message names the field.
result<void> validate(const breaker_rules& r);

/// The pure breaker state machine (see the header comment).
class breaker_machine {
public:
    /// What try_admit decided.
    struct admission {
        bool admitted = false;
        bool probe = false;                ///< admitted as a HALF_OPEN probe
        std::uint64_t generation = 0;      ///< to pass back with the outcome
        /// When refused: the earliest time admission may be possible without
        /// another caller's help (end of the open timeout); time_point::max()
        /// when it depends on others (HALF_OPEN slots taken, isolated).
        time_point retry_at = time_point::max();
        breaker_state state = breaker_state::closed;  ///< the state seen
    };

    explicit breaker_machine(breaker_config cfg = {}, unsigned counted_kinds = default_counted_kinds,
                             breaker_rules rules = {}) noexcept;

    breaker_state state() const noexcept { return state_; }
    std::uint64_t generation() const noexcept { return generation_; }
    /// Changes whenever admission may have changed (a transition, a freed probe slot, isolate).
    std::uint64_t version() const noexcept { return version_; }
    const breaker_config& config() const noexcept { return cfg_; }
    int consecutive_failures() const noexcept { return failures_; }
    int probes_in_flight() const noexcept { return probes_; }
    bool isolated() const noexcept { return isolated_; }
    /// While OPEN: when probes may start.
    time_point open_until() const noexcept { return open_until_; }
    bool counts(error_kind k) const noexcept { return (counted_ & kind_bit(k)) != 0; }
    const breaker_rules& rules() const noexcept { return rules_; }
    bool window_on() const noexcept { return rules_.failure_ratio > 0; }
    /// Counted calls (successes, failures) in the window as seen at `now`.
    std::pair<std::uint64_t, std::uint64_t> window(time_point now) const noexcept;
    /// The break the next opening from HALF_OPEN (a failed probe) would last; the
    /// current one while OPEN.
    duration break_duration() const noexcept { return break_; }

    /// Adds `n` CLOSED successes that happened between `since` and `now`
    /// (spread evenly; the share older than the window is dropped). For the
    /// I/O shell's lock-free success counter; no effect unless CLOSED with the window on.
    void add_successes(std::uint64_t n, time_point since, time_point now) noexcept;

    /// Asks to run one call. May move OPEN -> HALF_OPEN (reported in `t`).
    admission try_admit(time_point now, std::optional<breaker_transition>& t);

    /// The admitted call succeeded.
    void on_success(const admission& a, time_point now, std::optional<breaker_transition>& t);
    /// The admitted call failed with a failure of kind `k`.
    void on_failure(const admission& a, error_kind k, time_point now, std::optional<breaker_transition>& t);
    /// The admitted call ended without a verdict (cancelled, deadline, destroyed):
    /// a probe gives its slot back. Returns true if a slot was freed.
    bool on_abandon(const admission& a) noexcept;

    /// Forces OPEN until reset().
    void isolate(time_point now, std::optional<breaker_transition>& t);
    /// Forces CLOSED and clears the failure streak.
    void reset(time_point now, std::optional<breaker_transition>& t);

    /// Takes a state decided elsewhere (the fleet): `to`, OPEN for `open_for`
    /// from `now` when `to` is OPEN (an OPEN machine only moves its end).
    /// Ignored while isolated. Reason transition_reason::remote.
    void force(breaker_state to, time_point now, duration open_for, std::optional<breaker_transition>& t);
    /// While on, HALF_OPEN admits probes only after grant_probes() (each
    /// HALF_OPEN period needs its own grant). Turning it off frees them.
    void set_probe_gate(bool on) noexcept;
    bool probe_gate() const noexcept { return probe_gate_; }
    /// Lets the current HALF_OPEN period admit its probes.
    void grant_probes() noexcept;

private:
    void go(breaker_state to, time_point now, transition_reason why, std::optional<breaker_transition>& t);
    static constexpr int buckets = 10;
    struct bucket {
        std::int64_t index = -1;  // bucket number since the epoch; -1 = empty
        std::uint64_t successes = 0, failures = 0;
    };
    std::int64_t bucket_of(time_point t) const noexcept;
    bucket& bucket_at(std::int64_t index) noexcept;
    void clear_window() noexcept;

    breaker_config cfg_;
    unsigned counted_;
    breaker_rules rules_;
    duration bucket_len_{};
    duration break_{};
    bucket window_[buckets]{};
    breaker_state state_ = breaker_state::closed;
    std::uint64_t generation_ = 0;
    std::uint64_t version_ = 0;
    int failures_ = 0;
    int probes_ = 0;
    bool isolated_ = false;
    bool probe_gate_ = false;  // HALF_OPEN probes wait for grant_probes()
    bool granted_ = false;
    time_point open_until_{};
};

/// The settings of a circuit breaker: what circuit_breaker is built from
/// (see "Settings" in the header comment). `config` and `rules` are the pure
/// machine's; the rest is the shared object's.
struct breaker_options {
    breaker_options() = default;
    breaker_config config{};                        ///< threshold, open timeout, probes (validated)
    breaker_rules rules{};                          ///< failure-rate window, growing break (validated; off by default)
    unsigned counted_kinds = default_counted_kinds; ///< kinds that count as health failures
    clock* time = nullptr;                          ///< nullptr = steady_clock(); use the pipelines' clock
    std::size_t history = 64;                       ///< transitions kept for history()
    /// Called after each transition, outside the breaker's lock, on the
    /// thread that caused it. Must not throw.
    std::function<void(const breaker_transition&)> on_transition;
};

class circuit_breaker;

/// The right to run one call, from circuit_breaker::try_acquire. Move-only.
/// Report the outcome with succeeded()/failed(); a permit destroyed without a
/// verdict (the call was cancelled, cut by a deadline, or its coroutine
/// destroyed) gives a probe slot back. The breaker must outlive it.
class breaker_permit {
public:
    breaker_permit() = default;
    breaker_permit(breaker_permit&& o) noexcept : b_(o.b_), a_(o.a_) { o.b_ = nullptr; }
    breaker_permit& operator=(breaker_permit&& o) noexcept {
        if (this != &o) {
            abandon();
            b_ = o.b_;
            a_ = o.a_;
            o.b_ = nullptr;
        }
        return *this;
    }
    ~breaker_permit() {
        if (b_) abandon();
    }

    explicit operator bool() const noexcept { return b_ != nullptr; }
    bool probe() const noexcept { return a_.probe; }

    /// Report success / failure (kind `k`) / no verdict. Each ends the permit.
    /// They return the transition the outcome caused, if any.
    inline std::optional<breaker_transition> succeeded();
    std::optional<breaker_transition> failed(error_kind k);
    void abandon() noexcept;

private:
    friend class circuit_breaker;
    breaker_permit(circuit_breaker* b, const breaker_machine::admission& a) noexcept : b_(b), a_(a) {}
    circuit_breaker* b_ = nullptr;
    breaker_machine::admission a_{};
};

class circuit_breaker {
public:
    /// Validates `opts.config` and `opts.rules` like validate(breaker_config)
    /// and validate(breaker_rules); throws resilience::error on a bad value.
    explicit circuit_breaker(breaker_options opts = {});
    /// Validates `config` like validate(breaker_config) and throws resilience::error on a bad value.
    explicit circuit_breaker(breaker_config config, clock* time = nullptr);
    circuit_breaker(const circuit_breaker&) = delete;
    circuit_breaker& operator=(const circuit_breaker&) = delete;
    ~circuit_breaker();

    /// Result of try_acquire.
    struct acquire_result {
        breaker_permit permit;                     ///< valid when admitted
        breaker_state state = breaker_state::closed;  ///< the state seen
        time_point retry_at = time_point::max();   ///< when refused: see breaker_machine::admission
        std::uint64_t version = 0;                 ///< when refused: pass to wait_for_change
        std::optional<breaker_transition> transition;  ///< OPEN -> HALF_OPEN caused by this call
    };

    /// Asks to run one call now. Lock-free while CLOSED.
    acquire_result try_acquire();
    /// A permit if the breaker is CLOSED (lock-free, no side effect otherwise).
    breaker_permit try_acquire_closed() noexcept {
        breaker_permit p;
        try_acquire_closed(p);
        return p;
    }
    /// Same, into an empty `p`; false (and `p` untouched) unless CLOSED.
    bool try_acquire_closed(breaker_permit& p) noexcept {
        const std::uint64_t w = word_.load(std::memory_order_acquire);
        if ((w & state_mask) != static_cast<std::uint64_t>(breaker_state::closed)) return false;
        p.b_ = this;
        p.a_ = breaker_machine::admission{};
        p.a_.admitted = true;
        p.a_.generation = w >> gen_shift;
        return true;
    }

    /// Completes when the breaker's version (breaker_machine::version(), not
    /// its generation) differs from `version` (at once if it already does),
    /// or with operation_aborted on per-operation
    /// cancellation. Completes on the awaiting coroutine's executor.
    boost::asio::awaitable<error_code> wait_for_change(std::uint64_t version);
    /// The admission wait as an Asio asynchronous operation taking any
    /// completion token: `void(error_code)`. See impl/circuit_breaker.hpp.
    template <class Executor, class CompletionToken>
    auto async_wait_for_change(const Executor& ex, std::uint64_t version, CompletionToken&& token);

    /// The current state (an OPEN breaker whose timeout passed reads OPEN
    /// until someone asks for admission).
    breaker_state state() const noexcept;
    /// A copy of the machine (for inspection and tests).
    breaker_machine snapshot() const;
    /// The last `breaker_options::history` transitions, oldest first.
    std::vector<breaker_transition> history() const;
    /// Number of coroutines waiting in wait_for_change.
    std::size_t waiters() const;

    void isolate();
    void reset();

    // ---- The fleet seam (resilience/gate_sync.hpp).
    /// Reports this breaker's local changes to `o` from now on. Thread-safe.
    void set_observer(std::shared_ptr<gate_observer> o);
    /// Takes a state decided by another process (see breaker_machine::force);
    /// not reported to the observer; on_transition and the waiters see it.
    void apply_remote(breaker_state to, duration open_for = duration::zero());
    /// While on, HALF_OPEN admits probes only after grant_probes().
    void gate_probes(bool on);
    void grant_probes();

    clock& time() const noexcept { return *clock_; }
    const breaker_options& options() const noexcept { return opts_; }

    struct waiter;

private:
    friend class breaker_permit;
    // word_: bits 0-1 state, bit 2 "CLOSED with a failure streak", bit 3
    // "CLOSED, window on: count successes", the rest the generation.
    static constexpr std::uint64_t state_mask = 3;
    static constexpr std::uint64_t streak_bit = 4;
    static constexpr std::uint64_t window_bit = 8;
    static constexpr int gen_shift = 4;
    std::optional<breaker_transition> succeeded_slow(const breaker_machine::admission& a);
    using tx = std::optional<breaker_transition>;
    void finish(const breaker_machine::admission& a, int outcome, error_kind k, tx& t) noexcept;
    /// Runs `step(now, t)` on the machine under the lock (successes folded
    /// first), publishes the result, then reports the transition and wakes
    /// the waiters outside the lock. Every change of the machine goes here.
    template <class Step>
    tx change(Step step, bool local = true);
    void after_change_locked(const tx& t, std::vector<std::shared_ptr<waiter>>& wake, bool version_changed);
    void publish_locked() noexcept;
    void notify(const tx& t, std::vector<std::shared_ptr<waiter>>& wake) noexcept;
    void remove_waiter(const std::shared_ptr<waiter>& w);
    void fold_successes_locked(time_point now) noexcept;

    std::atomic<std::uint64_t> word_{0};
    std::atomic<std::uint64_t> window_successes_{0};  // CLOSED successes not yet folded into the window
    time_point folded_at_{};
    breaker_options opts_;
    clock* clock_;
    mutable std::mutex mu_;
    breaker_machine m_;
    std::vector<breaker_transition> history_;
    std::vector<std::shared_ptr<waiter>> waiters_;
    std::shared_ptr<gate_observer> observer_;
};

inline std::optional<breaker_transition> breaker_permit::succeeded() {
    circuit_breaker* b = b_;
    if (!b) return std::nullopt;
    b_ = nullptr;
    // Fast path: CLOSED in the same generation with no failure streak, not a
    // probe: nothing to record (window off) or one relaxed increment (window
    // on), no lock.
    if (!a_.probe) {
        const std::uint64_t w = b->word_.load(std::memory_order_acquire);
        const std::uint64_t g = a_.generation << circuit_breaker::gen_shift;
        if (w == g) return std::nullopt;
        if (w == (g | circuit_breaker::window_bit)) {
            b->window_successes_.fetch_add(1, std::memory_order_relaxed);
            return std::nullopt;
        }
    }
    return b->succeeded_slow(a_);
}

}  // namespace resilience

#include <resilience/impl/circuit_breaker.hpp>

#endif
