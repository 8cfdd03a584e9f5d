#ifndef RESILIENCE_IMPL_CIRCUIT_BREAKER_HPP
#define RESILIENCE_IMPL_CIRCUIT_BREAKER_HPP

// circuit_breaker::async_wait_for_change(ex, version, token)
//
// What it does: completes when the breaker's version
// (breaker_machine::version()) differs from `version` (at once if it already does): a transition, a freed probe slot,
// isolate() or reset(). Take `version` from a refused try_acquire()
// (acquire_result::version) and ask again when it completes; race it
// against your own clock for the open timeout (pipeline::run does both).
//
// Completion signature: `void(error_code)`: empty on a change,
// operation_aborted on cancellation.
//
// Object lifetimes: the breaker must outlive the operation.
//
// Executor: the wait is registered from `ex`; the handler runs on its
// associated executor, by default `ex`.
//
// Per-operation cancellation: terminal, through the handler's associated
// cancellation slot; the waiter is removed from the breaker at once.
//
// Errors: operation_aborted only.
//
// Thread safety: any number of waits from any threads, concurrently with
// every other member.

#include <resilience/detail/async_op.hpp>

namespace resilience {
namespace detail {
inline boost::asio::awaitable<result<void>> code_as_result(boost::asio::awaitable<error_code> a) {
    const error_code ec = co_await std::move(a);
    if (ec) co_return failure(ec);
    co_return result<void>();
}
}  // namespace detail

template <class Executor, class CompletionToken>
auto circuit_breaker::async_wait_for_change(const Executor& ex, std::uint64_t version, CompletionToken&& token) {
    return detail::async_run_result<void>(
        ex, ex, nullptr, [this, version] { return detail::code_as_result(wait_for_change(version)); },
        std::forward<CompletionToken>(token));
}

}  // namespace resilience

#endif
