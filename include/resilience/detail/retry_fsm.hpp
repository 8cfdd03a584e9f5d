// Included by <resilience/retry.hpp> (at its end); include that one. The
// include below, outside the guard, makes this header usable alone too.
#include <resilience/retry.hpp>

#ifndef RESILIENCE_DETAIL_RETRY_FSM_HPP
#define RESILIENCE_DETAIL_RETRY_FSM_HPP

// The retry loop as a sans-io state machine (Boost.Redis's run_fsm is the
// model). It decides; it never waits and owns no timer or executor:
//
//   retry_fsm fsm(pipeline_options, clock, jitter, call);
//   retry_action a = fsm.start();
//   for (;;) switch (a.type) {
//     case attempt:      run the factory with fsm.context();
//                        a = ok ? fsm.attempt_succeeded() : fsm.attempt_failed(f, cancelled);
//     case sleep:        sleep until a.until;  a = fsm.wait_finished(ec, cancelled);
//     case breaker_wait: wait for the breaker to leave version a.version, or until
//                        a.until (max() = no limit);  a = fsm.wait_finished(ec, cancelled);
//     case done:         the call is over: succeeded(), or take_failure().
//   }
//
// Inputs: the attempt's outcome (its failure carries the code and the
// server's pushback), the end of a wait (its code), whether per-operation
// cancellation was seen; `now` comes from the clock (read only when a
// decision needs it, so that the success path reads none) and the jitter
// samples from the generator. Everything that is not waiting happens in
// here: classification, backoff, pushback, deadline, the gates' admission
// and outcome (breaker, cooldown, budget, rate gate: shared objects, no
// I/O; a rate gate's send slot is a `sleep` until it), status
// text and events (delivered to the handlers at once, as Boost.Redis's
// run_fsm logs from inside resume()). pipeline::run (impl/retry.hpp) is the
// one I/O shell; the unit tests drive the machine with a manual clock and no
// io_context.

#include <resilience/circuit_breaker.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace resilience::detail {

/// What the shell does next.
enum class retry_action_type : unsigned char {
    attempt,       ///< call the factory with context(); report with attempt_succeeded / attempt_failed
    sleep,         ///< sleep until `until` (backoff, cooldown); report with wait_finished
    breaker_wait,  ///< wait for the breaker to leave `version`, at most until `until`; report with wait_finished
    done,          ///< the call is over
};

struct retry_action {
    retry_action_type type = retry_action_type::done;
    time_point until = time_point::max();  ///< sleep, breaker_wait (max() = no limit)
    std::uint64_t version = 0;             ///< breaker_wait
};

class retry_fsm {
public:
    /// `opts` (the pipeline's), `time`, `rng`, `call` and `permit` (the
    /// breaker's permit for the attempt in progress, held by the shell so
    /// that the quick path can fill it before the machine exists) must
    /// outlive the machine.
    retry_fsm(const retry_options& opts, clock& time, jitter_source& rng, const call_options& call,
              breaker_permit& permit) noexcept;
    retry_fsm(const retry_fsm&) = delete;
    retry_fsm& operator=(const retry_fsm&) = delete;

    /// Before attempt 0: gates, deadline, then the first action.
    retry_action start();
    /// Attempt 0 ran ahead of the machine (pipeline::run's quick path, with
    /// the permit it took) and failed: continue from there. `started`: when
    /// the call started, if the quick path read the clock (an attempt
    /// timeout); else the call's time counts from now.
    retry_action first_failed(failure f, bool cancelled, std::optional<time_point> started = std::nullopt);

    /// The attempt asked for succeeded (returns done).
    retry_action attempt_succeeded();
    /// The attempt asked for failed with `f`; `cancelled`: per-operation
    /// cancellation was seen (never retried).
    retry_action attempt_failed(failure f, bool cancelled);
    /// The wait asked for ended: `ec` set (operation_aborted) or `cancelled`
    /// when per-operation cancellation ended it.
    retry_action wait_finished(error_code ec, bool cancelled);

    /// The attempt to make (valid after an `attempt` action).
    const attempt_context& context() const noexcept { return ctx_; }
    /// The failure for an attempt cut by its deadline (the attempt's
    /// timeout, or the call's deadline).
    failure timed_out(const attempt_context& ctx) const;
    /// The failure of a self-timed attempt (detail::self_timed) made with
    /// `ctx`: its own attempt_timeout at or after ctx.deadline is
    /// timed_out(ctx), as if the pipeline had raced the attempt.
    failure self_timed_failure(failure f, const attempt_context& ctx) const {
        if (f.code == errc::attempt_timeout && time().now() >= ctx.deadline) return timed_out(ctx);
        return f;
    }
    /// After `done`: whether the call succeeded, else its failure (once).
    bool succeeded() const noexcept { return phase_ == phase::succeeded; }
    failure take_failure() noexcept {
        failure f = std::move(*f_);
        f_.reset();
        return f;
    }
    /// The attempt number in progress (0-based).
    int attempt() const noexcept { return ctx_.attempt; }

    clock& time() const noexcept { return *ctx_.time; }
    circuit_breaker* breaker() const noexcept { return opts_.breaker.get(); }

private:
    enum class phase : unsigned char { idle, attempting, gate_wait, backoff, succeeded, failed };
    /// What pass_gates decided.
    enum class gate : unsigned char { pass, wait, give_up };

    retry_action next_attempt();
    retry_action give_up(failure f);
    retry_action fail();
    gate pass_gates(retry_action& wait);
    bool begin_attempt();
    bool failed(failure& f, bool cancelled, time_point& wake);
    failure cancelled_in_backoff(failure last);
    failure cancelled_in_gate();

    void emit_simple(event_type t, int attempt);
    void emit(event& e);
    void status(const std::string& text);
    void finish(failure& f, int attempts, give_up_reason why, std::optional<error_kind> kind = std::nullopt);
    error_kind kind_of(const failure& f) const;
    void start_clock();
    void transition(const std::optional<breaker_transition>& t, int attempt);
    std::uint64_t scope_key();

    const retry_options& opts_;
    jitter_source& rng_;
    const call_options& call_;
    const retry_policy& policy_;
    breaker_permit& permit_;
    attempt_context ctx_;  // ctx_.attempt: the attempt in progress; ctx_.time: the clock
    time_point start_{};
    duration previous_delay_{};
    std::uint64_t scope_key_ = 0;
    time_point announced_cooldown_{};
    time_point attempt_start_{};  // of the attempt in progress (events only)
    std::uint64_t call_id_ = 0;   // event::call_id, drawn at the first event
    std::unique_ptr<failure> f_;  // the last failure (kept on the heap: off the success path)
    phase phase_ = phase::idle;
    bool started_ = false;
    bool events_ = false;
    bool rated_ = false;           // the rate gate is on
    bool gated_ = false;
    bool have_scope_key_ = false;
    bool rate_slot_ = false;       // a send slot reserved for the attempt to come
    bool rate_announced_ = false;  // its rate wait was reported
};

}  // namespace resilience::detail

#endif
