#ifndef RESILIENCE_RATE_GATE_HPP
#define RESILIENCE_RATE_GATE_HPP

// The adaptive rate gate: a client-side token bucket whose rate follows CUBIC,
// cut when the server throttles and grown back while it accepts (the AWS
// SDKs' "adaptive" retry mode is the model; its constants are the defaults).
//
// A fleet (or a process) that meets 429s slows down to the rate the server
// accepts instead of bouncing off it: the cooldown holds everybody for the
// period the server names, the rate gate then releases them at a measured
// pace rather than all at once.
//
// Off by default (rate_gate_config::enabled). When on, a scope is not limited
// until its first throttling answer: before that, acquire() returns `now`
// without a lock (one atomic load), and on_response() only measures the send
// rate.
//
// `rate_gate_state` is the pure machine of one scope (takes `now`, no clock,
// no timers: unit-tested alone); `rate_gate` keeps one per scope behind a
// mutex, for sharing across threads. Neither sleeps: acquire() returns the
// time at which the caller may send, and the caller waits for it on its clock
// (the retry pipeline does, under the call's deadline and cancellation).
//
// Reservations: acquire() takes a token at once when the bucket has one, or
// reserves a future one (a debt the bucket repays at fill_rate), so that
// concurrent callers leave 1/fill_rate apart in the order they asked. The
// debt is bounded by one bucket (max_capacity tokens, about one second at the
// current rate): past it a caller gets no reservation but a time to ask again
// (when the debt is repaid, so each such waiter asks about once a second),
// so that a rate that grows back is used at once instead of being held by
// reservations made at a lower rate. A caller that gives up waiting
// (deadline, cancellation) does not return its token: the gate errs on the
// side of sending less.
//
// Seam for a fleet: a cut (the rate's multiplicative decrease on a
// throttling answer) is the one change worth sharing between processes of a
// scope. rate_gate reports each local cut to a cut handler (set before the
// gate is shared), and apply_cut() applies a cut heard from elsewhere (no
// answer counted, the handler not called, so a cut is not echoed back); each
// process then cuts its own rate from its own measured send rate, so the
// fleet's total shrinks by beta without any process knowing the others'.

#include <resilience/diagnostics.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace resilience {

struct rate_gate_config {
    rate_gate_config() = default;
    bool enabled = false;          ///< off by default: the gate never delays anyone
    double beta = 0.7;             ///< the rate is multiplied by beta on a throttling answer
    double scale_constant = 0.4;   ///< CUBIC's C: how fast the rate grows back (requests/s^4)
    double smooth = 0.8;           ///< weight of the newest half-second in the measured send rate
    double min_fill_rate = 0.5;    ///< requests per second; the rate never falls below this
    double min_capacity = 1.0;     ///< the bucket's smallest burst
    /// Throttling answers within this time after a cut are one congestion
    /// event (the requests already sent at the old rate coming back), as TCP
    /// cuts once per round trip: without it a burst of 429s would multiply
    /// the rate by beta once per answer and drop it to the floor.
    duration cut_interval = std::chrono::seconds(1);
};

/// Checks a configuration: every number finite, 0 < beta < 1,
/// scale_constant > 0, 0 < smooth <= 1, min_fill_rate > 0, min_capacity >= 1,
/// cut_interval >= 0. The failure (errc::invalid_config) names the field.
result<void> validate(const rate_gate_config& cfg);

/// What a scope's gate looks like now (for status text, events and tests).
struct rate_gate_snapshot {
    bool limiting = false;        ///< a throttling answer was seen: the bucket applies
    double fill_rate = 0;         ///< tokens per second
    double capacity = 0;          ///< tokens available (negative: debt being waited for)
    double max_capacity = 0;
    double measured_rate = 0;     ///< smoothed send rate, responses per second
    double last_max_rate = 0;     ///< the rate at the last throttling answer
};

/// The answer of acquire().
struct rate_grant {
    /// True: a token is taken; send at `at` (`now` when the bucket had one).
    /// False: the bucket's debt is full; nothing is taken; call acquire()
    /// again at `at` (when the debt has been repaid: about a second).
    bool reserved = true;
    time_point at{};
    /// The bucket's rate when the gate is limiting (tokens per second), else 0.
    double rate = 0;
};

/// A cut of a scope's rate (reported to rate_gate's cut handler).
struct rate_cut {
    time_point at{};        ///< when the throttling answer came
    double from_rate = 0;   ///< the send rate cut from (CUBIC's W_max), requests per second
    double to_rate = 0;     ///< the new fill rate
};

/// The pure machine of one scope.
class rate_gate_state {
public:
    explicit rate_gate_state(rate_gate_config cfg = rate_gate_config());

    /// Takes (or reserves) one token at `now`: {true, now} when the gate is
    /// off or not limiting, or the bucket has a token.
    rate_grant acquire(time_point now);

    /// Records an answer at `now`: `throttled` for a throttling answer (429,
    /// a quota error), false for any other answer. Updates the measured send
    /// rate, then cuts the rate (CUBIC's multiplicative decrease) or grows it
    /// along the cubic curve; the rate never exceeds twice the measured one.
    /// A throttle before the first half-second is complete takes the rate
    /// of that partial half-second (the AWS SDKs take 0 there, which drops a
    /// client throttled at start-up to the floor rate).
    /// Returns true when the answer cut the rate.
    bool on_response(time_point now, bool throttled);

    /// A cut heard from elsewhere (another process of the fleet met a
    /// throttling answer at `now`): the multiplicative decrease of
    /// on_response(now, true) from this state's own send rate, without
    /// counting an answer; within cut_interval of the last cut it is the same
    /// congestion event and changes nothing. Ignored while this state has
    /// sent nothing (no rate to cut). Returns true when it cut.
    bool apply_cut(time_point now);

    rate_gate_snapshot snapshot() const noexcept;
    bool limiting() const noexcept { return limiting_; }

private:
    void refill(double t);
    bool cut(double t);
    void set_rate(double t, double rate);
    void measure(double t);
    double sending_rate() const noexcept;

    rate_gate_config cfg_;
    bool limiting_ = false;
    double fill_rate_;
    double max_capacity_;
    double capacity_ = 0;
    double last_refill_ = -1;       ///< seconds; < 0: never refilled
    double measured_rate_ = 0;
    double last_bucket_ = -1;       ///< start of the half-second being counted; < 0: none yet
    double count_ = 0;              ///< answers in the current half-second
    bool measured_ = false;         ///< a half-second has been completed
    double last_max_rate_ = 0;
    double last_cut_ = -1e300;      ///< seconds: the last cut (CUBIC's epoch)
    double window_ = 0;             ///< CUBIC's K: seconds from a cut back to last_max_rate
};

/// One rate_gate_state per scope, shared by every operation from any thread.
class rate_gate {
public:
    explicit rate_gate(rate_gate_config cfg = rate_gate_config());
    rate_gate(const rate_gate&) = delete;
    rate_gate& operator=(const rate_gate&) = delete;

    bool enabled() const noexcept { return cfg_.enabled; }
    const rate_gate_config& config() const noexcept { return cfg_; }
    /// Some scope is limiting (one atomic load): until then acquire() grants
    /// every call at once, and a caller may skip it (and its clock read).
    bool limiting() const noexcept { return limiting_.load(std::memory_order_acquire); }

    /// Called after each local cut (at most one per cut_interval per scope),
    /// outside the gate's lock, on the thread that recorded the answer (a
    /// fleet publishes it). May be set or replaced at any time.
    using cut_handler = std::function<void(std::uint64_t scope, const rate_cut&)>;
    void on_cut(cut_handler h);

    /// rate_gate_state::acquire for `scope` ({true, now} when not limited).
    /// Lock-free while no scope has been throttled.
    rate_grant acquire(std::uint64_t scope, time_point now);

    /// Records an answer of `scope` (see rate_gate_state::on_response). No-op
    /// when the gate is off.
    void on_response(std::uint64_t scope, time_point now, bool throttled);

    /// rate_gate_state::apply_cut for `scope` (a cut another process made);
    /// the cut handler is not called. No-op when the gate is off.
    bool apply_cut(std::uint64_t scope, time_point now);

    /// The scope's state, if the gate has seen it.
    std::optional<rate_gate_snapshot> snapshot(std::uint64_t scope) const;

private:
    rate_gate_config cfg_;
    cut_handler on_cut_;
    mutable std::mutex mu_;
    std::unordered_map<std::uint64_t, rate_gate_state> scopes_;
    std::atomic<bool> limiting_{false};  ///< some scope is limiting
};

}  // namespace resilience

#endif
