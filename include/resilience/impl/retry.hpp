#ifndef RESILIENCE_IMPL_RETRY_HPP
#define RESILIENCE_IMPL_RETRY_HPP

// Template body of pipeline::run. Every decision (classification, backoff,
// pushback, deadline, status text, events) is made by the non-template
// detail::retry_state in src/core/retry.cpp; this file only awaits.

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>

#include <optional>
#include <variant>

namespace resilience {
namespace detail {

class retry_state {
public:
    retry_state(pipeline& p, call_options& call) noexcept;

    /// Prepares attempt `attempt`: nullopt when the deadline has already passed
    /// (the failure to return is then in `out`).
    bool begin_attempt(int attempt, attempt_context& ctx, failure& out);
    void succeeded(int attempt);

    /// Records a failed attempt. Returns true and sets `wake` when the loop
    /// should sleep until `wake` and try again; false when it gives up (the
    /// failure's diagnostics are then complete).
    bool failed(failure& f, int attempt, bool cancelled, time_point& wake);

    /// The failure to return when cancellation was seen.
    failure cancelled(failure last, int attempt);

    /// The failure for an attempt cut by its timeout or the deadline.
    failure timed_out(const attempt_context& ctx) const;

    clock& time() const noexcept { return *p_.clock_; }

    /// Sleeps the backoff after failed attempt `attempt` until `wake`. True to
    /// try again; false when cancelled (`f` is then the final failure). Out of
    /// line, so that run's coroutine frame stays small.
    boost::asio::awaitable<bool> backoff(failure& f, int attempt, time_point wake);

private:
    void emit(event& e);
    void status(const std::string& text);
    void finish(failure& f, int attempts, give_up_reason why);

    pipeline& p_;
    call_options& call_;
    const retry_policy& policy_;
    time_point start_;
    duration previous_delay_{};
};

template <class T, class Awaitable>
boost::asio::awaitable<result<T>> await_as_result(Awaitable a) {
    using V = typename awaitable_value<Awaitable>::type;
    if constexpr (unwrap_result<V>::is_result) {
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

/// One attempt without a deadline: the factory's own awaitable when it
/// already yields result<T>, otherwise wrapped so that exceptions become failures.
template <class T, class Factory>
boost::asio::awaitable<result<T>> start_attempt(Factory& factory, const attempt_context& actx) {
    using V = typename awaitable_value<factory_awaitable_t<Factory>>::type;
    if constexpr (unwrap_result<V>::is_result)
        return call_factory(factory, actx);
    else
        return await_as_result<T>(call_factory(factory, actx));
}

/// One attempt raced against its deadline. A separate coroutine so that the
/// parallel group's state stays out of pipeline::run's frame: that frame must
/// stay under Asio's recycling limit (about 1 KB), or every call allocates.
template <class T, class Factory>
boost::asio::awaitable<result<T>> run_attempt_until(Factory& factory, const attempt_context& actx, retry_state& st) {
    using namespace boost::asio::experimental::awaitable_operators;
    auto raced = co_await (await_as_result<T>(call_factory(factory, actx)) || st.time().sleep_until(actx.deadline));
    if (raced.index() == 0) co_return std::move(std::get<0>(raced));
    if (std::get<1>(raced)) co_return failure(std::get<1>(raced));  // the timer was cancelled: per-operation cancellation
    co_return st.timed_out(actx);
}

}  // namespace detail

template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> pipeline::run(Factory factory, call_options call) {
    using T = detail::factory_value_t<Factory>;
    namespace asio = boost::asio;

    detail::retry_state st(*this, call);
    failure f;  // one failure object for the whole loop keeps the frame small
    for (int attempt = 0;; ++attempt) {
        attempt_context actx;
        if (!st.begin_attempt(attempt, actx, f)) co_return std::move(f);

        // One co_await that initialises r directly: every co_await site and
        // every local adds to this frame, which must stay small (see run_attempt_until).
        // (Named, not a conditional inside the co_await: g++ 12 frees such a temporary twice.)
        asio::awaitable<result<T>> a = actx.deadline == time_point::max()
                                           ? detail::start_attempt<T>(factory, actx)
                                           : detail::run_attempt_until<T>(factory, actx, st);
        result<T> r = co_await std::move(a);

        if (r) {
            st.succeeded(attempt);
            co_return r;
        }
        // Read the cancellation state first: co_await of an awaitable throws
        // once the coroutine is cancelled (Asio's throw_if_cancelled default).
        auto cs = co_await asio::this_coro::cancellation_state;
        time_point wake;
        f = std::move(r).error();
        if (!st.failed(f, attempt, cs.cancelled() != asio::cancellation_type::none, wake)) co_return std::move(f);
        if (!co_await st.backoff(f, attempt, wake)) co_return std::move(f);
    }
}

template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> retry(Factory factory, retry_options opts,
                                                                        call_options call) {
    pipeline p(std::move(opts));
    co_return co_await p.run(std::move(factory), std::move(call));
}

}  // namespace resilience

#endif
