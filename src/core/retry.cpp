#include <resilience/retry.hpp>
#include <resilience/detail/retry_fsm.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>

#include <random>

namespace resilience {

error_kind default_classify(const failure& f) noexcept { return classify(f.code); }

namespace {
std::uint64_t random_seed() {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}
}  // namespace

pipeline::pipeline(retry_options opts)
    : opts_(std::move(opts)),
      clock_(opts_.time ? opts_.time : &steady_clock()),
      quick_context_{0, time_point::max(), clock_},
      rng_(opts_.seed ? opts_.seed : random_seed()),
      quick_timed_((!opts_.on_event || (opts_.event_types & (event_bit(event_type::attempt_started) |
                                                             event_bit(event_type::attempt_succeeded))) == 0) &&
                   !(opts_.rate_gate && opts_.rate_gate->enabled())),
      gates_(opts_.breaker || opts_.cooldown) {
    quick_ = quick_timed_ && opts_.policy.attempt_timeout.count() <= 0;
}

namespace detail {

const call_options& default_call_options() noexcept {
    static const call_options c;
    return c;
}

failure failure_from_exception(std::exception_ptr p) {
    try {
        std::rethrow_exception(p);
    } catch (const resilience::error& e) {
        return e.get_failure();
    } catch (const boost::system::system_error& e) {
        return failure(e.code(), e.what());
    } catch (const std::exception& e) {
        return failure(make_error_code(errc::operation_threw), std::string("the operation threw: ") + e.what());
    } catch (...) {
        return failure(make_error_code(errc::operation_threw), "the operation threw an exception of unknown type");
    }
}

boost::asio::awaitable<error_code> wait_breaker(clock& time, circuit_breaker& b, time_point until,
                                                std::uint64_t version) {
    if (until == time_point::max()) co_return co_await b.wait_for_change(version);
    using namespace boost::asio::experimental::awaitable_operators;
    auto r = co_await (time.sleep_until(until) || b.wait_for_change(version));
    co_return r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
}

// ---------------------------------------------------------------------------
// retry_fsm: inputs

retry_fsm::retry_fsm(const retry_options& opts, clock& time, jitter_source& rng, const call_options& call,
                     breaker_permit& permit) noexcept
    : opts_(opts),
      rng_(rng),
      call_(call),
      policy_(call.policy ? *call.policy : opts.policy),
      permit_(permit),
      events_(opts.on_event || call.on_event),
      rated_(opts.rate_gate && opts.rate_gate->enabled()),
      gated_(opts.breaker || opts.cooldown || rated_) {
    ctx_.time = &time;
    // The start time is read only when something needs it now (a deadline,
    // an attempt timeout, events); otherwise at the first failure, so that
    // the success path reads no clock (diag.elapsed then counts from the end
    // of the first attempt).
    if (events_ || call.deadline != time_point::max() || policy_.attempt_timeout.count() > 0) start_clock();
}

retry_action retry_fsm::start() {
    ctx_.attempt = 0;
    return next_attempt();
}

retry_action retry_fsm::first_failed(failure f, bool cancelled, std::optional<time_point> started) {
    ctx_.attempt = 0;
    if (started) {
        start_ = *started;
        started_ = true;
    } else {
        start_clock();
    }
    attempt_start_ = start_;
    phase_ = phase::attempting;
    return attempt_failed(std::move(f), cancelled);
}

retry_action retry_fsm::attempt_succeeded() {
    transition(record_success(opts_, permit_), ctx_.attempt);
    if (rated_) opts_.rate_gate->on_response(scope_key(), time().now(), false);
    if (events_) emit_simple(event_type::attempt_succeeded, ctx_.attempt);
    phase_ = phase::succeeded;
    return {};
}

retry_action retry_fsm::attempt_failed(failure f, bool cancelled) {
    f_ = std::make_unique<failure>(std::move(f));
    time_point wake;
    if (!failed(*f_, cancelled, wake)) return fail();
    phase_ = phase::backoff;
    return {retry_action_type::sleep, wake, 0};
}

retry_action retry_fsm::wait_finished(error_code ec, bool cancelled) {
    const bool stop = ec || cancelled;
    if (phase_ == phase::gate_wait) {
        if (stop) return give_up(cancelled_in_gate());
        return next_attempt();
    }
    // The backoff after a failed attempt.
    if (stop) {
        failure last = take_failure();
        return give_up(cancelled_in_backoff(std::move(last)));
    }
    ++ctx_.attempt;
    return next_attempt();
}

retry_action retry_fsm::next_attempt() {
    if (gated_) {
        retry_action wait;
        switch (pass_gates(wait)) {
        case gate::pass: break;
        case gate::wait: phase_ = phase::gate_wait; return wait;
        case gate::give_up: return fail();
        }
    }
    if (!begin_attempt()) return fail();
    phase_ = phase::attempting;
    return {retry_action_type::attempt, time_point::max(), 0};
}

retry_action retry_fsm::give_up(failure f) {
    f_ = std::make_unique<failure>(std::move(f));
    return fail();
}

retry_action retry_fsm::fail() {
    phase_ = phase::failed;
    return {};
}

// ---------------------------------------------------------------------------
// retry_fsm: decisions

void retry_fsm::start_clock() {
    if (started_) return;
    started_ = true;
    start_ = time().now();
}

void retry_fsm::emit(event& e) {
    const event_handler& h = call_.on_event ? call_.on_event : opts_.on_event;
    if (!h) return;
    // Process-wide, from 1: pairs an attempt's start with its end (tracing).
    static std::atomic<std::uint64_t> next_call_id{1};
    if (call_id_ == 0) call_id_ = next_call_id.fetch_add(1, std::memory_order_relaxed);
    e.max_retries = policy_.max_retries;
    e.subject = call_.subject;
    e.tag = call_.tag;
    e.at = time().now();
    e.elapsed = e.at - start_;
    e.call_id = call_id_;
    if (e.type == event_type::attempt_started)
        attempt_start_ = e.at;
    else if (e.type == event_type::attempt_succeeded || e.type == event_type::attempt_failed)
        e.attempt_elapsed = e.at - attempt_start_;
    // Not the events the pipeline's handler does not want (retry_options::event_types).
    if (!call_.on_event && !(opts_.event_types & event_bit(e.type))) return;
    h(e);
}

void retry_fsm::emit_simple(event_type t, int attempt) {
    event e;
    e.type = t;
    e.attempt = attempt;
    emit(e);
}

void retry_fsm::status(const std::string& text) {
    const status_handler& h = call_.on_status ? call_.on_status : opts_.on_status;
    if (h) h(text);
}

std::uint64_t retry_fsm::scope_key() {
    if (!have_scope_key_) {
        scope_key_ = scope_hash(call_.scope.empty() ? std::string_view(opts_.scope) : std::string_view(call_.scope));
        have_scope_key_ = true;
    }
    return scope_key_;
}

void retry_fsm::transition(const std::optional<breaker_transition>& t, int attempt) {
    if (!t || !events_) return;
    event e;
    e.type = event_type::breaker_transition;
    e.attempt = attempt;
    e.from = t->from;
    e.to = t->to;
    e.message = to_string(t->reason);
    emit(e);
}

retry_fsm::gate retry_fsm::pass_gates(retry_action& wait) {
    const int attempt = ctx_.attempt;
    const time_point deadline = call_.deadline;
    // Cooldown first: a call held back by the quota must not take a probe slot.
    if (const auto& cd = opts_.cooldown; cd && !cd->never_deferred()) {
        const time_point now = time().now();
        if (auto until = cd->blocked_until(scope_key(), now)) {
            start_clock();
            if (*until >= deadline) {
                f_ = std::make_unique<failure>(make_error_code(errc::deadline_exceeded),
                                               "the scope's cooldown (" + format_seconds(*until - now) +
                                                   " left) ends after the deadline");
                finish(*f_, attempt, give_up_reason::deadline);
                return gate::give_up;
            }
            if (*until != announced_cooldown_) {
                announced_cooldown_ = *until;
                status(status::rate_limited(*until - now));
                if (events_) {
                    event e;
                    e.type = event_type::cooldown_wait;
                    e.attempt = attempt;
                    e.delay = *until - now;
                    e.pushback = true;
                    emit(e);
                }
            }
            // The held calls wake spread after the cooldown's end (see
            // cooldown_release), not all at once.
            const time_point wake = cooldown_release(*until, *until - now, rng_.next());
            wait = {retry_action_type::sleep, wake < deadline ? wake : *until, 0};
            return gate::wait;
        }
    }
    // The rate gate after the cooldown (the server's own "not before" comes
    // first) and before the breaker (a held call must not hold a probe slot).
    // A slot reserved before a wait stays this attempt's (rate_slot_).
    if (rated_ && !rate_slot_ && opts_.rate_gate->limiting()) {
        const time_point now = time().now();
        const rate_grant g = opts_.rate_gate->acquire(scope_key(), now);
        if (g.at > now) {
            start_clock();
            if (g.at >= deadline) {
                f_ = std::make_unique<failure>(make_error_code(errc::deadline_exceeded),
                                               "the rate gate's next send slot (in " + format_seconds(g.at - now) +
                                                   ") comes after the deadline");
                finish(*f_, attempt, give_up_reason::deadline);
                return gate::give_up;
            }
            rate_slot_ = g.reserved;
            if (!rate_announced_) {
                rate_announced_ = true;
                status(status::rate_wait(g.at - now, g.rate));
                if (events_) {
                    event e;
                    e.type = event_type::rate_wait;
                    e.attempt = attempt;
                    e.delay = g.at - now;
                    e.rate = g.rate;
                    emit(e);
                }
            }
            wait = {retry_action_type::sleep, g.at, 0};
            return gate::wait;
        }
    }
    if (const auto& b = opts_.breaker) {
        auto r = b->try_acquire();
        transition(r.transition, attempt);
        if (r.permit) {
            permit_ = std::move(r.permit);
            return gate::pass;
        }
        start_clock();
        const admission_mode mode = call_.admission ? *call_.admission : opts_.admission;
        const time_point now = time().now();
        auto refuse = [&](std::string msg, give_up_reason why) {
            // The deadline owns its ending: one code wherever it expires.
            const errc code = why == give_up_reason::deadline ? errc::deadline_exceeded : errc::circuit_open;
            f_ = std::make_unique<failure>(make_error_code(code), std::move(msg));
            finish(*f_, attempt, why);
            if (attempt > 0) status(status::failed(attempt, f_->diag.message));
            return gate::give_up;
        };
        const std::string state(to_string(r.state));
        if (mode == admission_mode::fail_fast)
            return refuse("circuit breaker is " + state + "; call not made", give_up_reason::circuit_open);
        if (now >= deadline || (r.retry_at != time_point::max() && r.retry_at >= deadline))
            return refuse("circuit breaker is " + state + " and will not admit the call before the deadline",
                          give_up_reason::deadline);
        wait = {retry_action_type::breaker_wait, std::min(r.retry_at, deadline), r.version};
        if (r.retry_at != time_point::max()) status(status::waiting(r.retry_at - now, r.state));
        if (events_) {
            event e;
            e.type = event_type::breaker_wait;
            e.attempt = attempt;
            e.from = e.to = r.state;
            if (r.retry_at != time_point::max()) e.delay = r.retry_at - now;
            emit(e);
        }
        return gate::wait;
    }
    return gate::pass;
}

failure retry_fsm::cancelled_in_gate() {
    failure f(make_error_code(boost::asio::error::operation_aborted), "operation cancelled");
    start_clock();
    finish(f, ctx_.attempt, give_up_reason::cancelled);
    return f;
}

bool retry_fsm::begin_attempt() {
    const int attempt = ctx_.attempt;
    rate_slot_ = rate_announced_ = false;  // the next attempt takes its own slot
    ctx_.deadline = call_.deadline;
    if (policy_.attempt_timeout.count() > 0 || call_.deadline != time_point::max()) {
        const time_point now = time().now();
        if (now >= call_.deadline) {
            f_ = std::make_unique<failure>(make_error_code(errc::deadline_exceeded),
                                           "deadline exceeded before attempt " + std::to_string(attempt + 1));
            finish(*f_, attempt, give_up_reason::deadline);
            return false;
        }
        if (policy_.attempt_timeout.count() > 0 && call_.deadline - now > policy_.attempt_timeout)
            ctx_.deadline = now + policy_.attempt_timeout;
    }
    if (events_) emit_simple(event_type::attempt_started, attempt);
    return true;
}

failure retry_fsm::timed_out(const attempt_context& ctx) const {
    if (ctx.deadline == call_.deadline)
        return failure(make_error_code(errc::deadline_exceeded),
                       "deadline exceeded during attempt " + std::to_string(ctx.attempt + 1));
    return failure(make_error_code(errc::attempt_timeout),
                   "attempt timed out after " + format_seconds(policy_.attempt_timeout));
}

error_kind retry_fsm::kind_of(const failure& f) const {
    const classifier& c = call_.classify ? call_.classify : opts_.classify;
    return c ? c(f) : default_classify(f);
}

void retry_fsm::finish(failure& f, int attempts, give_up_reason why, std::optional<error_kind> kind) {
    start_clock();
    f.diag.attempts = attempts;
    f.diag.elapsed = time().now() - start_;
    f.diag.gave_up = why;
    if (events_) {
        event e;
        e.type = event_type::gave_up;
        e.attempt = attempts > 0 ? attempts - 1 : 0;
        e.code = f.code;
        e.kind = kind ? *kind : why == give_up_reason::cancelled ? error_kind::non_retryable_aborted : kind_of(f);
        e.reason = why;
        std::string msg = f.what();
        e.message = msg;
        emit(e);
    }
}

failure retry_fsm::cancelled_in_backoff(failure last) {
    failure f(make_error_code(boost::asio::error::operation_aborted));
    f.diag = std::move(last.diag);
    f.diag.message = "operation cancelled";
    finish(f, ctx_.attempt + 1, give_up_reason::cancelled);
    return f;
}

bool retry_fsm::failed(failure& f, bool cancelled, time_point& wake) {
    const int attempt = ctx_.attempt;
    start_clock();
    // The overall deadline cut the attempt: the transport's own deadline code
    // (the HTTP client's request deadline, set from attempt_context::deadline)
    // becomes the call's, so that an expired deadline has one code wherever
    // it expires (pool wait, connect, I/O) and the breaker never hears it.
    if (!cancelled && f.code == errc::attempt_timeout && call_.deadline != time_point::max() &&
        time().now() >= call_.deadline) {
        f.diag.message = "deadline exceeded during attempt " + std::to_string(attempt + 1) + " (" + f.what() + ")";
        f.code = make_error_code(errc::deadline_exceeded);
    }
    error_kind kind = kind_of(f);
    if (cancelled) kind = error_kind::non_retryable_aborted;
    // The breaker hears the verdict; a call cut by cancellation or by the
    // caller's own deadline has none (a probe gives its slot back).
    if (permit_) {
        if (kind == error_kind::non_retryable_aborted || f.code == errc::deadline_exceeded)
            permit_.abandon();
        else
            transition(permit_.failed(kind), attempt);
    }
    const auto& budget = opts_.budget;
    // A failure that carries the server's own pushback is paced by the server
    // (and the scope's cooldown): it neither drains the budget nor is refused
    // by it; the budget guards against retries the server did not ask for.
    if (budget && is_retryable(kind) && !f.diag.retry_after) budget->on_failure();
    const std::string message = f.what();
    if (events_) {
        event e;
        e.type = event_type::attempt_failed;
        e.attempt = attempt;
        e.kind = kind;
        e.code = f.code;
        e.message = message;
        emit(e);
    }
    if (kind == error_kind::non_retryable_aborted) {
        if (cancelled && f.code != boost::asio::error::operation_aborted) {
            f.code = make_error_code(boost::asio::error::operation_aborted);
            f.diag.message = "operation cancelled";
        }
        finish(f, attempt + 1, give_up_reason::cancelled);
        return false;
    }
    // A server pushback holds the whole scope whether or not this call
    // retries: a call that gives up (budget, max_retries, deadline) must not
    // take the server's "not before" with it. Only a throttling answer (rate
    // limited, or a retryable 503) sets it: a delay on any other answer (a
    // 400 with Retry-After) never holds the scope.
    const bool throttled =
        f.diag.retry_after && (kind == error_kind::retryable_rate_limit ||
                               (is_retryable(kind) && f.diag.http_status == 503));
    // The rate gate hears every answer (not an attempt cut by the caller's
    // cancellation or deadline: no answer came); a throttling one cuts the rate.
    if (rated_ && kind != error_kind::non_retryable_aborted && f.code != errc::deadline_exceeded)
        opts_.rate_gate->on_response(scope_key(), time().now(),
                                     throttled || kind == error_kind::retryable_rate_limit);
    if (throttled && opts_.cooldown) {
        const time_point now = time().now();
        const duration d = std::max(duration::zero(), std::min<duration>(*f.diag.retry_after, policy_.pushback_cap()));
        opts_.cooldown->defer(scope_key(), now + d, now);
    }
    auto give_up = [&](give_up_reason why) {
        finish(f, attempt + 1, why, kind);
        status(status::failed(attempt + 1, message));
        return false;
    };
    // The deadline cut the attempt short: nothing to retry within it.
    if (f.code == errc::deadline_exceeded) return give_up(give_up_reason::deadline);
    if (!is_retryable(kind)) return give_up(give_up_reason::non_retryable);
    if (attempt >= policy_.max_retries) return give_up(give_up_reason::max_retries);
    if (budget && !f.diag.retry_after && !budget->retry_allowed()) {
        f.diag.message = "retry budget exhausted (retries are throttled while the service fails); last error: " +
                         message;
        f.code = make_error_code(errc::retry_budget_exhausted);
        finish(f, attempt + 1, give_up_reason::budget, kind);
        status(status::failed(attempt + 1, f.diag.message));
        return false;
    }

    const int k = attempt + 1;
    duration delay = backoff_delay(policy_.backoff, k, rng_.next(), previous_delay_);
    const bool pushback = f.diag.retry_after.has_value();
    if (pushback) delay = std::min<duration>(*f.diag.retry_after, policy_.pushback_cap());
    if (delay < duration::zero()) delay = duration::zero();
    previous_delay_ = delay;

    const time_point now = time().now();
    if (call_.deadline != time_point::max() && (call_.deadline - now) <= delay) {
        // The backoff would end past the deadline: not slept, and the call
        // ends with the deadline's code; the last error stays in the message.
        f.code = make_error_code(errc::deadline_exceeded);
        f.diag.message = "deadline exceeded: retry " + std::to_string(k) + " would start in " +
                         format_seconds(delay) + ", after the deadline (last error: " + message + ")";
        return give_up(give_up_reason::deadline);
    }
    wake = now + delay;
    if (pushback && throttled && opts_.cooldown) {
        opts_.cooldown->defer(scope_key(), wake, now);
        announced_cooldown_ = wake;  // announced just below
        // Like the calls the cooldown holds, this one wakes spread after the
        // delay ends (cooldown_release): when many calls met the same 429,
        // the first to go learns whether the quota is back, and a new
        // pushback holds the rest before they ask.
        const time_point spread_wake = cooldown_release(wake, delay, rng_.next());
        if (call_.deadline == time_point::max() || spread_wake < call_.deadline) wake = spread_wake;
    }

    status(status::retry(k, policy_.max_retries, kind, message));
    if (pushback) status(status::rate_limited(delay));
    status(status::waiting(delay, opts_.breaker ? opts_.breaker->state() : breaker_state::closed));
    if (events_) {
        event e;
        e.type = event_type::retry_scheduled;
        e.attempt = k;
        e.kind = kind;
        e.code = f.code;
        e.delay = delay;
        e.pushback = pushback;
        e.message = message;
        emit(e);
    }
    return true;
}

}  // namespace detail
}  // namespace resilience
