#include <resilience/retry.hpp>

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
      rng_(opts_.seed ? opts_.seed : random_seed()) {}

double pipeline::next_uniform() noexcept {
    // splitmix64 over an atomic counter: lock-free, and deterministic for a
    // given seed when draws are not concurrent.
    std::uint64_t z = rng_.fetch_add(0x9e3779b97f4a7c15ULL, std::memory_order_relaxed) + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return to_unit_interval(z ^ (z >> 31));
}

namespace detail {

retry_state::retry_state(pipeline& p, call_options& call) noexcept
    : p_(p), call_(call), policy_(call.policy ? *call.policy : p.opts_.policy), start_(p.clock_->now()) {}

void retry_state::emit(event& e) {
    const event_handler& h = call_.on_event ? call_.on_event : p_.opts_.on_event;
    if (!h) return;
    e.max_retries = policy_.max_retries;
    e.subject = call_.subject;
    e.elapsed = time().now() - start_;
    h(e);
}

void retry_state::status(const std::string& text) {
    const status_handler& h = call_.on_status ? call_.on_status : p_.opts_.on_status;
    if (h) h(text);
}

bool retry_state::begin_attempt(int attempt, attempt_context& ctx, failure& out) {
    ctx.attempt = attempt;
    ctx.time = p_.clock_;
    ctx.deadline = call_.deadline;
    if (policy_.attempt_timeout.count() > 0 || call_.deadline != time_point::max()) {
        const time_point now = time().now();
        if (now >= call_.deadline) {
            out = failure(make_error_code(errc::deadline_exceeded), "deadline exceeded before attempt " +
                                                                        std::to_string(attempt + 1));
            finish(out, attempt, give_up_reason::deadline);
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

void retry_state::succeeded(int attempt) {
    if (p_.opts_.on_event || call_.on_event) {
        event e;
        e.type = event_type::attempt_succeeded;
        e.attempt = attempt;
        emit(e);
    }
}

failure retry_state::timed_out(const attempt_context& ctx) const {
    if (ctx.deadline == call_.deadline)
        return failure(make_error_code(errc::deadline_exceeded), "deadline exceeded during attempt " +
                                                                     std::to_string(ctx.attempt + 1));
    return failure(make_error_code(errc::attempt_timeout),
                   "attempt timed out after " + format_seconds(policy_.attempt_timeout));
}

void retry_state::finish(failure& f, int attempts, give_up_reason why) {
    f.diag.attempts = attempts;
    f.diag.elapsed = time().now() - start_;
    f.diag.gave_up = why;
    if (p_.opts_.on_event || call_.on_event) {
        event e;
        e.type = event_type::gave_up;
        e.attempt = attempts > 0 ? attempts - 1 : 0;
        e.code = f.code;
        e.kind = classify(f.code);
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

bool retry_state::failed(failure& f, int attempt, bool cancelled, time_point& wake) {
    const classifier& c = call_.classify ? call_.classify : p_.opts_.classify;
    error_kind kind = c ? c(f) : default_classify(f);
    if (cancelled) kind = error_kind::non_retryable_aborted;
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
    auto give_up = [&](give_up_reason why) {
        finish(f, attempt + 1, why);
        status(status::failed(attempt + 1, message));
        return false;
    };
    // The deadline cut the attempt short: nothing to retry within it.
    if (f.code == errc::deadline_exceeded) return give_up(give_up_reason::deadline);
    if (!is_retryable(kind)) return give_up(give_up_reason::non_retryable);
    if (attempt >= policy_.max_retries) return give_up(give_up_reason::max_retries);

    const int k = attempt + 1;
    duration delay = backoff_delay(policy_.backoff, k, p_.next_uniform(), previous_delay_);
    const bool pushback = f.diag.retry_after.has_value();
    if (pushback) delay = std::min<duration>(*f.diag.retry_after, policy_.pushback_cap());
    if (delay < duration::zero()) delay = duration::zero();
    previous_delay_ = delay;

    const time_point now = time().now();
    if (call_.deadline != time_point::max() && (call_.deadline - now) <= delay)
        return give_up(give_up_reason::deadline);
    wake = now + delay;

    status(status::retry(k, policy_.max_retries, kind, message));
    if (pushback) status(status::rate_limited(delay));
    status(status::waiting(delay, breaker_state::closed));
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

boost::asio::awaitable<bool> retry_state::backoff(failure& f, int attempt, time_point wake) {
    namespace asio = boost::asio;
    error_code ec = co_await time().sleep_until(wake);
    auto cs = co_await asio::this_coro::cancellation_state;
    if (ec || cs.cancelled() != asio::cancellation_type::none) {
        f = cancelled(std::move(f), attempt);
        co_return false;
    }
    co_return true;
}

}  // namespace detail
}  // namespace resilience
