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

}  // namespace detail

template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> pipeline::run(Factory factory, call_options call) {
    using T = detail::factory_value_t<Factory>;
    using V = typename detail::awaitable_value<detail::factory_awaitable_t<Factory>>::type;
    namespace asio = boost::asio;

    detail::retry_state st(*this, call);
    for (int attempt = 0;; ++attempt) {
        attempt_context actx;
        failure early;
        if (!st.begin_attempt(attempt, actx, early)) co_return early;

        result<T> r = failure();
        if (actx.deadline == time_point::max()) {
            if constexpr (detail::unwrap_result<V>::is_result)
                r = co_await detail::call_factory(factory, actx);
            else
                r = co_await detail::await_as_result<T>(detail::call_factory(factory, actx));
        } else {
            using namespace asio::experimental::awaitable_operators;
            auto raced = co_await (detail::await_as_result<T>(detail::call_factory(factory, actx)) ||
                                   st.time().sleep_until(actx.deadline));
            if (raced.index() == 0) {
                r = std::move(std::get<0>(raced));
            } else if (std::get<1>(raced)) {
                r = failure(std::get<1>(raced));  // the timer was cancelled: per-operation cancellation
            } else {
                r = st.timed_out(actx);
            }
        }

        if (r) {
            st.succeeded(attempt);
            co_return r;
        }
        auto cs = co_await asio::this_coro::cancellation_state;
        bool cancelled = cs.cancelled() != asio::cancellation_type::none;
        time_point wake;
        failure f = std::move(r).error();
        if (!st.failed(f, attempt, cancelled, wake)) co_return f;
        if (error_code ec = co_await st.time().sleep_until(wake)) co_return st.cancelled(std::move(f), attempt);
        cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none) co_return st.cancelled(std::move(f), attempt);
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
