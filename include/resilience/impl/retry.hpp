#ifndef RESILIENCE_IMPL_RETRY_HPP
#define RESILIENCE_IMPL_RETRY_HPP

// Template body of pipeline::run. Every decision (classification, backoff,
// pushback, deadline, status text, events) is made by the non-template
// detail::retry_state in src/core/retry.cpp; this file only awaits.

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>

#include <new>
#include <optional>
#include <variant>

namespace resilience {
namespace detail {

class retry_state {
public:
    retry_state(pipeline& p, const call_options& call) noexcept
        : p_(p),
          call_(call),
          policy_(call.policy ? *call.policy : p.opts_.policy),
          events_(p.opts_.on_event || call.on_event),
          gated_(p.opts_.breaker || p.opts_.cooldown) {
        // The start time is read only when something needs it now (a
        // deadline, an attempt timeout, events); otherwise at the first
        // failure, so that the success path reads no clock (diag.elapsed then
        // counts from the end of the first attempt).
        if (events_ || call.deadline != time_point::max() || policy_.attempt_timeout.count() > 0) start_clock();
    }

    /// What pass_gates decided.
    enum class gate : unsigned char { pass, wait, give_up };

    bool gated() const noexcept { return gated_; }
    /// Attempt 0 may start at once, with no deadline race: the breaker is
    /// CLOSED (permit taken), no cooldown is in force, no deadline or attempt
    /// timeout applies. No side effect when it returns false.
    bool try_fast(breaker_permit& permit, attempt_context& ctx) {
        if (call_.deadline != time_point::max() || policy_.attempt_timeout.count() > 0) return false;
        if (gated_ && !fast_gates(permit)) return false;
        ctx.attempt = 0;
        ctx.time = p_.clock_;
        if (events_) emit_simple(event_type::attempt_started, 0);
        return true;
    }
    /// Cooldown and breaker, before attempt `attempt`. `pass`: go (the
    /// breaker's permit is in `permit`); `wait`: co_await wait_gate() and ask
    /// again; `give_up`: return take_failure().
    gate pass_gates(int attempt, breaker_permit& permit);
    /// The wait pass_gates asked for; operation_aborted on cancellation.
    boost::asio::awaitable<error_code> wait_gate();

    /// Prepares attempt `attempt`: false when the deadline has already passed
    /// (the failure to return is then take_failure()).
    bool begin_attempt(int attempt, attempt_context& ctx);
    void succeeded(int attempt, breaker_permit& permit) {
        if (permit) permit_succeeded(attempt, permit);
        if (const auto& b = p_.opts_.budget) b->on_success();
        if (events_) emit_simple(event_type::attempt_succeeded, attempt);
    }

    /// Records a failed attempt (held in `f`). Returns true and sets `wake`
    /// when the loop should sleep until `wake` and try again; false when it
    /// gives up (the failure's diagnostics are then complete).
    bool failed(failure& f, int attempt, bool cancelled, time_point& wake, breaker_permit& permit);

    /// The failure to return when cancellation was seen.
    failure cancelled(failure last, int attempt);
    /// The failure prepared by pass_gates/begin_attempt/wait_gate.
    failure take_failure() noexcept {
        failure f = std::move(*f_);
        f_.reset();
        return f;
    }
    bool has_failure() const noexcept { return f_ != nullptr; }
    void stash(failure f) { f_ = std::make_unique<failure>(std::move(f)); }
    /// Attempt 0 failed on the fast path while the call was being cancelled:
    /// records it (a cancellation is never retried) and returns the failure.
    failure cancelled_fast(breaker_permit& permit) {
        failure f = take_failure();
        time_point wake;
        failed(f, 0, true, wake, permit);
        return f;
    }
    /// Cancellation during a gate wait.
    failure cancelled_in_gate(int attempt);

    /// The failure for an attempt cut by its timeout or the deadline.
    failure timed_out(const attempt_context& ctx) const;

    clock& time() const noexcept { return *p_.clock_; }

private:
    bool fast_gates(breaker_permit& permit) {
        if (const auto& cd = p_.opts_.cooldown; cd && !cd->never_deferred() && !cd->clear_at(time().now()))
            return false;
        if (const auto& b = p_.opts_.breaker) return b->try_acquire_closed(permit);
        return true;
    }
    void emit_simple(event_type t, int attempt);
    void permit_succeeded(int attempt, breaker_permit& permit);
    void emit(event& e);
    void status(const std::string& text);
    void finish(failure& f, int attempts, give_up_reason why, std::optional<error_kind> kind = std::nullopt);
    error_kind kind_of(const failure& f) const;
    void start_clock();
    void transition(const std::optional<breaker_transition>& t, int attempt);
    std::uint64_t scope_key();

    pipeline& p_;
    const call_options& call_;
    const retry_policy& policy_;
    time_point start_{};
    bool started_ = false;
    bool events_ = false;
    bool gated_ = false;
    bool have_scope_key_ = false;
    duration previous_delay_{};
    std::uint64_t scope_key_ = 0;
    // The wait pass_gates asked for.
    time_point wait_until_{};
    std::uint64_t wait_version_ = 0;
    bool wait_breaker_ = false;
    time_point announced_cooldown_{};
    time_point attempt_start_{};  // of the attempt in progress (events only)
    std::uint64_t call_id_ = 0;   // event::call_id, drawn at the first event
    std::unique_ptr<failure> f_;  // only when a gate or the deadline gives up
};

/// An exception thrown by an attempt, as the failure that ends it.
failure failure_from_exception(std::exception_ptr p);

/// Awaits `a`, turning an exception into a failure. In a race against the
/// attempt's deadline an exception must end the attempt at once: Asio's `||`
/// waits for one side to *succeed*, so a throwing attempt would otherwise
/// stall until the timer fired and be reported as a timeout.
template <class T, class Awaitable>
boost::asio::awaitable<result<T>> no_throw(Awaitable a) {
    std::exception_ptr p;
    try {
        co_return co_await std::move(a);
    } catch (...) {
        p = std::current_exception();
    }
    co_return failure_from_exception(p);
}

/// One attempt raced against its deadline (a separate frame, so that the
/// loop's frame stays small on the common path without a deadline).
template <class T, class Awaitable>
boost::asio::awaitable<result<T>> race_deadline(Awaitable a, retry_state& st, attempt_context actx) {
    using namespace boost::asio::experimental::awaitable_operators;
    auto guarded = no_throw<T>(std::move(a));
    auto raced = co_await (std::move(guarded) || st.time().sleep_until(actx.deadline));
    if (raced.index() == 0) co_return std::move(std::get<0>(raced));
    if (std::get<1>(raced)) co_return failure(std::get<1>(raced));  // cancelled: per-operation cancellation
    co_return st.timed_out(actx);
}

/// A deferred Asio operation completing with void(error_code, Ts...), as an
/// attempt: an error_code becomes the failure, the values the result.
template <class T, class Op>
boost::asio::awaitable<result<T>> await_deferred(Op op) {
    auto aw = std::move(op)(boost::asio::as_tuple(boost::asio::use_awaitable));
    auto t = co_await std::move(aw);
    if (const error_code ec = std::get<0>(t)) co_return failure(ec);
    if constexpr (std::is_void_v<T>) {
        co_return result<void>();
    } else if constexpr (std::tuple_size_v<decltype(t)> == 2) {
        co_return result<T>(std::move(std::get<1>(t)));
    } else {
        co_return result<T>(std::apply([](error_code, auto&&... v) { return T(std::move(v)...); }, std::move(t)));
    }
}

template <class T, class Awaitable>
boost::asio::awaitable<result<T>> await_as_result(Awaitable a) {
    using V = typename awaitable_value<Awaitable>::type;
    if constexpr (!is_awaitable<Awaitable>::value) {
        co_return co_await await_deferred<T>(std::move(a));
    } else if constexpr (unwrap_result<V>::is_result) {
        co_return co_await std::move(a);
    } else {
        std::optional<failure> f;
        try {
            if constexpr (std::is_void_v<V>) {
                co_await std::move(a);
                co_return result<void>();
            } else {
                co_return result<T>(co_await std::move(a));
            }
        } catch (const resilience::error& e) {
            f = e.get_failure();
        } catch (const boost::system::system_error& e) {
            f = failure(e.code());
        }
        co_return std::move(*f);
    }
}

}  // namespace detail

namespace detail {

/// A retry_state built on demand. Not std::optional: its default constructor
/// zero-fills the storage (a `rep stos` on every call of the quick path).
class lazy_state {
public:
    lazy_state() noexcept {}
    lazy_state(const lazy_state&) = delete;
    lazy_state& operator=(const lazy_state&) = delete;
    ~lazy_state() {
        if (on_) st_.~retry_state();
    }
    explicit operator bool() const noexcept { return on_; }
    retry_state& emplace(pipeline& p, const call_options& call) {
        ::new (static_cast<void*>(&st_)) retry_state(p, call);
        on_ = true;
        return st_;
    }
    retry_state* operator->() noexcept { return &st_; }
    retry_state& operator*() noexcept { return st_; }

private:
    union {
        retry_state st_;
    };
    bool on_ = false;
};

template <class T, class Factory>
boost::asio::awaitable<result<T>> call_attempt(Factory& factory, const attempt_context& actx) {
    using V = typename awaitable_value<factory_awaitable_t<Factory>>::type;
    if constexpr (!is_awaitable<factory_awaitable_t<Factory>>::value)
        return await_deferred<T>(call_factory(factory, actx));
    else if constexpr (unwrap_result<V>::is_result)
        return call_factory(factory, actx);
    else
        return await_as_result<T>(call_factory(factory, actx));
}

/// The general loop: gates, deadlines, failures, backoff. Entered from the
/// start, or after attempt 0 failed on the fast path (its failure stashed in `st`).
template <class T, class Factory>
boost::asio::awaitable<result<T>> retry_loop(Factory& factory, retry_state& st, breaker_permit& permit) {
    namespace asio = boost::asio;
    for (int attempt = 0;; ++attempt) {
        std::optional<result<T>> r;
        if (attempt == 0 && st.has_failure()) {
            r.emplace(st.take_failure());
        } else {
            if (st.gated()) {
                for (;;) {
                    const auto g = st.pass_gates(attempt, permit);
                    if (g == retry_state::gate::pass) break;
                    if (g == retry_state::gate::give_up) co_return st.take_failure();
                    if (co_await st.wait_gate()) co_return st.cancelled_in_gate(attempt);
                }
            }
            attempt_context actx;
            if (!st.begin_attempt(attempt, actx)) co_return st.take_failure();
            if (actx.deadline == time_point::max())
                r.emplace(co_await call_attempt<T>(factory, actx));
            else
                r.emplace(co_await race_deadline<T>(await_as_result<T>(call_factory(factory, actx)), st, actx));
            if (*r) {
                st.succeeded(attempt, permit);
                co_return std::move(*r);
            }
        }
        auto cs = co_await asio::this_coro::cancellation_state;
        bool cancelled = cs.cancelled() != asio::cancellation_type::none;
        time_point wake;
        failure f = std::move(*r).error();
        r.reset();
        if (!st.failed(f, attempt, cancelled, wake, permit)) co_return f;
        if (error_code ec = co_await st.time().sleep_until(wake)) co_return st.cancelled(std::move(f), attempt);
        cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) co_return st.cancelled(std::move(f), attempt);
    }
}

}  // namespace detail

// The common case (no deadline, no attempt timeout, no event handler,
// breaker CLOSED, no cooldown in force) makes attempt 0 here without building
// a retry_state (the quick path), in a small frame that Asio's per-thread
// frame cache can recycle. With an event handler, a deadline or an attempt
// timeout, attempt 0 still runs here when the gates let it (try_fast).
// Anything else goes to retry_loop.
template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> pipeline::run(Factory factory, call_options call) {
    using T = detail::factory_value_t<Factory>;
    breaker_permit permit;
    attempt_context actx;
    detail::lazy_state st;  // built only when needed (not on the quick success path)
    bool first = true;
    if (quick_ && call.deadline == time_point::max() && !call.on_event &&
        (!call.policy || call.policy->attempt_timeout.count() <= 0) && (!gates_ || quick_gates(permit))) {
        actx.time = clock_;
    } else {
        st.emplace(*this, call);
        first = st->try_fast(permit, actx);
    }
    if (first) {
        result<T> r = co_await detail::call_attempt<T>(factory, actx);
        if (r) {
            if (st)
                st->succeeded(0, permit);
            else
                quick_succeeded(permit);
            co_return r;
        }
        if (!st) st.emplace(*this, call);
        st->stash(std::move(r).error());  // attempt 0's failure, for retry_loop
        // Checked before the next co_await: once the coroutine is cancelled,
        // awaiting another awaitable throws (Asio's throw_if_cancelled).
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none) co_return st->cancelled_fast(permit);
    }
    co_return co_await detail::retry_loop<T>(factory, *st, permit);
}

// Same without call options: no copy of a call_options in the frame.
template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> pipeline::run(Factory factory) {
    using T = detail::factory_value_t<Factory>;
    breaker_permit permit;
    attempt_context actx;
    detail::lazy_state st;  // built only when needed (not on the quick success path)
    bool first = true;
    if (quick_ && (!gates_ || quick_gates(permit))) {
        actx.time = clock_;
    } else {
        st.emplace(*this, detail::default_call_options());
        first = st->try_fast(permit, actx);
    }
    if (first) {
        result<T> r = co_await detail::call_attempt<T>(factory, actx);
        if (r) {
            if (st)
                st->succeeded(0, permit);
            else
                quick_succeeded(permit);
            co_return r;
        }
        if (!st) st.emplace(*this, detail::default_call_options());
        st->stash(std::move(r).error());  // attempt 0's failure, for retry_loop
        // Checked before the next co_await: once the coroutine is cancelled,
        // awaiting another awaitable throws (Asio's throw_if_cancelled).
        auto cs = co_await boost::asio::this_coro::cancellation_state;
        if (cs.cancelled() != boost::asio::cancellation_type::none) co_return st->cancelled_fast(permit);
    }
    co_return co_await detail::retry_loop<T>(factory, *st, permit);
}

template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> retry(Factory factory, retry_options opts,
                                                                        call_options call) {
    pipeline p(std::move(opts));
    co_return co_await p.run(std::move(factory), std::move(call));
}

}  // namespace resilience

#endif
