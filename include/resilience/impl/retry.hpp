#ifndef RESILIENCE_IMPL_RETRY_HPP
#define RESILIENCE_IMPL_RETRY_HPP

// Template body of pipeline::run: the I/O shell of detail::retry_fsm
// (detail/retry_fsm.hpp, src/core/retry.cpp), which makes every decision
// (gates, classification, backoff, pushback, deadline, status text, events);
// this file only awaits what the machine asks for.

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>

#include <new>
#include <optional>
#include <variant>

namespace resilience {
namespace detail {

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
boost::asio::awaitable<result<T>> race_deadline(Awaitable a, const retry_fsm& st, attempt_context actx) {
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

/// A retry_fsm built on demand. Not std::optional: its default constructor
/// zero-fills the storage (a `rep stos` on every call of the quick path).
class lazy_fsm {
public:
    lazy_fsm() noexcept {}
    lazy_fsm(const lazy_fsm&) = delete;
    lazy_fsm& operator=(const lazy_fsm&) = delete;
    ~lazy_fsm() {
        if (on_) st_.~retry_fsm();
    }
    explicit operator bool() const noexcept { return on_; }
    retry_fsm& emplace(const retry_options& opts, clock& time, jitter_source& rng, const call_options& call,
                       breaker_permit& permit) {
        ::new (static_cast<void*>(&st_)) retry_fsm(opts, time, rng, call, permit);
        on_ = true;
        return st_;
    }
    retry_fsm* operator->() noexcept { return &st_; }
    retry_fsm& operator*() noexcept { return st_; }

private:
    union {
        retry_fsm st_;
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

/// A breaker admission wait: until the breaker leaves `version`, or `until`
/// on `time` (max() = no limit). Empty on a change or at `until`;
/// operation_aborted on cancellation.
boost::asio::awaitable<error_code> wait_breaker(clock& time, circuit_breaker& b, time_point until,
                                                std::uint64_t version);

/// The I/O shell: does what the machine asks until it is done. Every check
/// of the cancellation state comes before the next co_await (once the
/// coroutine is cancelled, awaiting another awaitable throws: Asio's
/// throw_if_cancelled), and the machine never asks for a wait after it.
template <class T, class Factory>
boost::asio::awaitable<result<T>> drive(Factory& factory, retry_fsm& fsm, retry_action act) {
    namespace asio = boost::asio;
    for (;;) {
        switch (act.type) {
        case retry_action_type::done:
            co_return fsm.take_failure();
        case retry_action_type::attempt: {
            const attempt_context& actx = fsm.context();
            std::optional<result<T>> r;
            if (actx.deadline == time_point::max()) {
                r.emplace(co_await call_attempt<T>(factory, actx));
            } else if constexpr (is_self_timed<Factory>::value) {
                // The attempt ends itself at its deadline (detail::self_timed).
                // An exception becomes the attempt's failure, as in the race
                // (caught here: no_throw's frame would move the result twice more).
                std::exception_ptr thrown;
                try {
                    r.emplace(co_await call_attempt<T>(factory, actx));
                } catch (...) {
                    thrown = std::current_exception();
                }
                if (thrown) r.emplace(failure_from_exception(thrown));
                if (!*r) r.emplace(fsm.self_timed_failure(std::move(*r).error(), actx));
            } else {
                r.emplace(co_await race_deadline<T>(await_as_result<T>(call_factory(factory, actx)), fsm, actx));
            }
            if (*r) {
                fsm.attempt_succeeded();
                co_return std::move(*r);
            }
            auto cs = co_await asio::this_coro::cancellation_state;
            act = fsm.attempt_failed(std::move(*r).error(), cs.cancelled() != asio::cancellation_type::none);
            break;
        }
        case retry_action_type::sleep: {
            const error_code ec = co_await fsm.time().sleep_until(act.until);
            auto cs = co_await asio::this_coro::cancellation_state;
            act = fsm.wait_finished(ec, cs.cancelled() != asio::cancellation_type::none);
            break;
        }
        case retry_action_type::breaker_wait: {
            const error_code ec = co_await wait_breaker(fsm.time(), *fsm.breaker(), act.until, act.version);
            auto cs = co_await asio::this_coro::cancellation_state;
            act = fsm.wait_finished(ec, cs.cancelled() != asio::cancellation_type::none);
            break;
        }
        }
    }
}

}  // namespace detail

// The one body of run(factory) and run(factory, call) (and so of async_run).
// The common case (no deadline, no event handler wanting attempt 0's events,
// no attempt timeout unless the factory is self-timed, breaker CLOSED, no
// cooldown in force) makes attempt 0 here without building the state machine
// (the quick path); a success costs the gates one atomic load each (and a
// self-timed attempt with a timeout one clock read for its deadline).
// Anything else, and a failure of that attempt, goes to the machine and its
// shell (detail::drive).
template <class T, class Factory, class Call>
boost::asio::awaitable<result<T>> pipeline::run_body(Factory factory, Call call) {
    constexpr bool timed = detail::is_self_timed<Factory>::value;
    breaker_permit permit;
    detail::lazy_fsm st;  // built only when needed (not on the quick success path)
    detail::retry_action act;
    if (quick_call(call, timed) && (!gates_ || quick_gates(permit))) {
        if constexpr (!timed) {
            result<T> r = co_await detail::call_attempt<T>(factory, quick_context_);
            if (r) {
                (void)detail::record_success(opts_, permit);
                co_return r;
            }
            // Read before the next co_await (see detail::drive).
            auto cs = co_await boost::asio::this_coro::cancellation_state;
            const bool cancelled = cs.cancelled() != boost::asio::cancellation_type::none;
            act = st.emplace(opts_, *clock_, rng_, detail::options_of(call), permit)
                      .first_failed(std::move(r).error(), cancelled);
        } else {
            // A self-timed attempt 0 (a separate branch: the frame of other
            // factories stays within Asio's recycling limit). With an attempt
            // timeout it gets its deadline as retry_fsm::begin_attempt sets it,
            // and, as in detail::drive, an exception then ends it as its
            // failure and its own timeout is the pipeline's.
            attempt_context actx = quick_context_;
            std::optional<time_point> started;
            if (const duration t = attempt_timeout(call); t.count() > 0) {
                const time_point now = clock_->now();
                started = now;
                if (time_point::max() - now > t) actx.deadline = now + t;
            }
            std::exception_ptr thrown;
            try {
                result<T> r = co_await detail::call_attempt<T>(factory, actx);
                if (r) {
                    (void)detail::record_success(opts_, permit);
                    co_return r;
                }
                auto cs = co_await boost::asio::this_coro::cancellation_state;
                const bool cancelled = cs.cancelled() != boost::asio::cancellation_type::none;
                detail::retry_fsm& fsm = st.emplace(opts_, *clock_, rng_, detail::options_of(call), permit);
                failure f = std::move(r).error();
                if (actx.deadline != time_point::max()) f = fsm.self_timed_failure(std::move(f), actx);
                act = fsm.first_failed(std::move(f), cancelled, started);
            } catch (...) {
                // Thrown by the machine, or by an attempt without a deadline: propagates.
                if (st || actx.deadline == time_point::max()) throw;
                thrown = std::current_exception();
            }
            if (thrown) {
                auto cs = co_await boost::asio::this_coro::cancellation_state;
                const bool cancelled = cs.cancelled() != boost::asio::cancellation_type::none;
                act = st.emplace(opts_, *clock_, rng_, detail::options_of(call), permit)
                          .first_failed(detail::failure_from_exception(thrown), cancelled, started);
            }
        }
    } else {
        act = st.emplace(opts_, *clock_, rng_, detail::options_of(call), permit).start();
    }
    if (act.type == detail::retry_action_type::done) co_return st->take_failure();
    co_return co_await detail::drive<T>(factory, *st, act);
}

template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> pipeline::run(Factory factory, call_options call) {
    return run_body<detail::factory_value_t<Factory>>(std::move(factory), std::move(call));
}

template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> pipeline::run(Factory factory) {
    return run_body<detail::factory_value_t<Factory>>(std::move(factory), detail::no_call_options{});
}

template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> retry(Factory factory, retry_options opts,
                                                                        call_options call) {
    pipeline p(std::move(opts));
    co_return co_await p.run(std::move(factory), std::move(call));
}

}  // namespace resilience

#endif
