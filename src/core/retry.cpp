#include <resilience/retry.hpp>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>

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
      rng_(opts_.seed ? opts_.seed : random_seed()),
      quick_(!opts_.on_event && opts_.policy.attempt_timeout.count() <= 0),
      gates_(opts_.breaker || opts_.cooldown) {}

double pipeline::next_uniform() noexcept {
    // splitmix64 over an atomic counter: lock-free, and deterministic for a
    // given seed when draws are not concurrent.
    std::uint64_t z = rng_.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return to_unit_interval(z ^ (z >> 31));
}

namespace detail {

const call_options& default_call_options() noexcept {
    static const call_options c;
    return c;
}

void retry_state::start_clock() {
    if (started_) return;
    started_ = true;
    start_ = time().now();
}

void retry_state::emit(event& e) {
    const event_handler& h = call_.on_event ? call_.on_event : p_.opts_.on_event;
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
    h(e);
}

void retry_state::status(const std::string& text) {
    const status_handler& h = call_.on_status ? call_.on_status : p_.opts_.on_status;
    if (h) h(text);
}

std::uint64_t retry_state::scope_key() {
    if (!have_scope_key_) {
        scope_key_ = scope_hash(call_.scope.empty() ? std::string_view(p_.opts_.scope) : std::string_view(call_.scope));
        have_scope_key_ = true;
    }
    return scope_key_;
}

void retry_state::transition(const std::optional<breaker_transition>& t, int attempt) {
    if (!t || !(p_.opts_.on_event || call_.on_event)) return;
    event e;
    e.type = event_type::breaker_transition;
    e.attempt = attempt;
    e.from = t->from;
    e.to = t->to;
    e.message = to_string(t->reason);
    emit(e);
}

retry_state::gate retry_state::pass_gates(int attempt, breaker_permit& permit) {
    const bool events = p_.opts_.on_event || call_.on_event;
    const time_point deadline = call_.deadline;
    // Cooldown first: a call held back by the quota must not take a probe slot.
    if (const auto& cd = p_.opts_.cooldown; cd && !cd->never_deferred()) {
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
                if (events) {
                    event e;
                    e.type = event_type::cooldown_wait;
                    e.attempt = attempt;
                    e.delay = *until - now;
                    e.pushback = true;
                    emit(e);
                }
            }
            // The held calls wake spread over a tenth of the cooldown (at most
            // 2 s) instead of all at its end: the first one released learns
            // whether the quota is back, and if the server answers with a new
            // pushback, that holds the others again before they ask.
            const duration spread = std::min<duration>((*until - now) / 10, std::chrono::seconds(2));
            const time_point wake = *until + std::chrono::duration_cast<duration>(spread * p_.next_uniform());
            wait_until_ = wake < deadline ? wake : *until;
            wait_breaker_ = false;
            return gate::wait;
        }
    }
    if (const auto& b = p_.opts_.breaker) {
        auto r = b->try_acquire();
        transition(r.transition, attempt);
        if (r.permit) {
            permit = std::move(r.permit);
            return gate::pass;
        }
        start_clock();
        const admission_mode mode = call_.admission ? *call_.admission : p_.opts_.admission;
        const time_point now = time().now();
        auto give_up = [&](error_code ec, std::string msg, give_up_reason why) {
            f_ = std::make_unique<failure>(ec, std::move(msg));
            finish(*f_, attempt, why);
            if (attempt > 0) status(status::failed(attempt, f_->diag.message));
            return gate::give_up;
        };
        const std::string state(to_string(r.state));
        if (mode == admission_mode::fail_fast)
            return give_up(make_error_code(errc::circuit_open), "circuit breaker is " + state + "; call not made",
                           give_up_reason::circuit_open);
        // The deadline owns this ending: one code wherever it expires.
        if (now >= deadline || (r.retry_at != time_point::max() && r.retry_at >= deadline))
            return give_up(make_error_code(errc::deadline_exceeded),
                           "circuit breaker is " + state + " and will not admit the call before the deadline",
                           give_up_reason::deadline);
        wait_until_ = std::min(r.retry_at, deadline);
        wait_version_ = r.version;
        wait_breaker_ = true;
        if (r.retry_at != time_point::max()) status(status::waiting(r.retry_at - now, r.state));
        if (events) {
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

boost::asio::awaitable<error_code> retry_state::wait_gate() {
    if (!wait_breaker_) co_return co_await time().sleep_until(wait_until_);
    using namespace boost::asio::experimental::awaitable_operators;
    circuit_breaker& b = *p_.opts_.breaker;
    if (wait_until_ == time_point::max()) co_return co_await b.wait_for_change(wait_version_);
    auto r = co_await (time().sleep_until(wait_until_) || b.wait_for_change(wait_version_));
    error_code ec = r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
    if (!ec) {
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none) ec = boost::asio::error::operation_aborted;
    }
    co_return ec;
}

failure retry_state::cancelled_in_gate(int attempt) {
    failure f(make_error_code(boost::asio::error::operation_aborted), "operation cancelled");
    start_clock();
    finish(f, attempt, give_up_reason::cancelled);
    return f;
}

void retry_state::emit_simple(event_type t, int attempt) {
    event e;
    e.type = t;
    e.attempt = attempt;
    emit(e);
}

void retry_state::permit_succeeded(int attempt, breaker_permit& permit) { transition(permit.succeeded(), attempt); }

bool retry_state::begin_attempt(int attempt, attempt_context& ctx) {
    ctx.attempt = attempt;
    ctx.time = p_.clock_;
    ctx.deadline = call_.deadline;
    if (policy_.attempt_timeout.count() > 0 || call_.deadline != time_point::max()) {
        const time_point now = time().now();
        if (now >= call_.deadline) {
            f_ = std::make_unique<failure>(make_error_code(errc::deadline_exceeded), "deadline exceeded before attempt " +
                                                                       std::to_string(attempt + 1));
            finish(*f_, attempt, give_up_reason::deadline);
            return false;
        }
        if (policy_.attempt_timeout.count() > 0 && call_.deadline - now > policy_.attempt_timeout)
            ctx.deadline = now + policy_.attempt_timeout;
    }
    if (p_.opts_.on_event || call_.on_event) {
        event e;
        e.type = event_type::attempt_started;
        e.attempt = attempt;
        emit(e);
    }
    return true;
}

failure retry_state::timed_out(const attempt_context& ctx) const {
    if (ctx.deadline == call_.deadline)
        return failure(make_error_code(errc::deadline_exceeded), "deadline exceeded during attempt " +
                                                                     std::to_string(ctx.attempt + 1));
    return failure(make_error_code(errc::attempt_timeout),
                   "attempt timed out after " + format_seconds(policy_.attempt_timeout));
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

error_kind retry_state::kind_of(const failure& f) const {
    const classifier& c = call_.classify ? call_.classify : p_.opts_.classify;
    return c ? c(f) : default_classify(f);
}

void retry_state::finish(failure& f, int attempts, give_up_reason why, std::optional<error_kind> kind) {
    start_clock();
    f.diag.attempts = attempts;
    f.diag.elapsed = time().now() - start_;
    f.diag.gave_up = why;
    if (p_.opts_.on_event || call_.on_event) {
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

failure retry_state::cancelled(failure last, int attempt) {
    failure f(make_error_code(boost::asio::error::operation_aborted));
    f.diag = std::move(last.diag);
    f.diag.message = "operation cancelled";
    finish(f, attempt + 1, give_up_reason::cancelled);
    return f;
}

bool retry_state::failed(failure& f, int attempt, bool cancelled, time_point& wake, breaker_permit& permit) {
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
    if (permit) {
        if (kind == error_kind::non_retryable_aborted || f.code == errc::deadline_exceeded)
            permit.abandon();
        else
            transition(permit.failed(kind), attempt);
    }
    const auto& budget = p_.opts_.budget;
    // A failure that carries the server's own pushback is paced by the server
    // (and the scope's cooldown): it neither drains the budget nor is refused
    // by it; the budget guards against retries the server did not ask for.
    if (budget && is_retryable(kind) && !f.diag.retry_after) budget->on_failure();
    const std::string message = f.what();
    const bool events = p_.opts_.on_event || call_.on_event;
    if (events) {
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
    if (throttled && p_.opts_.cooldown) {
        const time_point now = time().now();
        const duration d = std::max(duration::zero(), std::min<duration>(*f.diag.retry_after, policy_.pushback_cap()));
        p_.opts_.cooldown->defer(scope_key(), now + d, now);
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
    duration delay = backoff_delay(policy_.backoff, k, p_.next_uniform(), previous_delay_);
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
    if (pushback && throttled && p_.opts_.cooldown) {
        p_.opts_.cooldown->defer(scope_key(), wake, now);
        announced_cooldown_ = wake;  // announced just below
        // Like the calls the cooldown holds, this one wakes spread over a tenth
        // of the delay after it ends (at most 2 s): when many calls met the
        // same 429, the first to go learns whether the quota is back, and a new
        // pushback holds the rest before they ask.
        const duration spread = std::min<duration>(delay / 10, std::chrono::seconds(2));
        const time_point spread_wake = wake + std::chrono::duration_cast<duration>(spread * p_.next_uniform());
        if (call_.deadline == time_point::max() || spread_wake < call_.deadline) wake = spread_wake;
    }

    status(status::retry(k, policy_.max_retries, kind, message));
    if (pushback) status(status::rate_limited(delay));
    status(status::waiting(delay, p_.opts_.breaker ? p_.opts_.breaker->state() : breaker_state::closed));
    if (events) {
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
