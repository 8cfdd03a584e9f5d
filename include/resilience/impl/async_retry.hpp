#ifndef RESILIENCE_IMPL_ASYNC_RETRY_HPP
#define RESILIENCE_IMPL_ASYNC_RETRY_HPP

// pipeline::async_run: the retry combinator as an Asio asynchronous operation.
//
//   // a callback, a future, a deferred operation, a coroutine: any token
//   p.async_run(ex, [&] { return sock.async_connect(ep, asio::deferred); },
//               [](resilience::error_code ec) { ... });
//   auto [ec, n] = co_await p.async_run(ex, factory, asio::as_tuple(asio::use_awaitable));
//
// What it does: the same as `co_await run(factory[, call])` (retries,
// backoff, pushback, breaker, cooldown, budget, deadline, status text,
// events). The factory is called once per attempt and returns either an
// `asio::awaitable<result<T>>` / `asio::awaitable<T>` (the latter may throw
// resilience::error or boost::system::system_error), or a deferred Asio
// operation completing with `void(error_code, Ts...)` (for example
// `sock.async_connect(ep, asio::deferred)`), whose error_code is the attempt's
// failure and whose values make T (void, the one value, or std::tuple<Ts...>).
//
// Completion signature: `void(error_code, T)`, or `void(error_code)` when T
// is void. On error T is default-constructed.
//
// Diagnostics: the overload taking `diagnostics& diag` writes the failure's
// diagnostics there (attempts, elapsed, gave_up, the server's message...) and
// clears it on success; the handler can read it. Without it, only the code
// is reported; `co_await run(...)` returns both in a result<T>.
//
// Object lifetimes: the pipeline, `diag`, and whatever the factory refers to
// must stay alive until the handler runs. The factory and call options are
// moved into the operation.
//
// Executor: the retry loop and the factory's operations run on `ex` (for a
// multi-threaded io_context, give a strand; the pipeline and its gates
// themselves are thread-safe). The handler runs on its associated executor,
// by default `ex`; its associated allocator is kept.
//
// Per-operation cancellation: the handler's associated cancellation slot
// (e.g. bind_cancellation_slot) reaches the current attempt and any wait
// (backoff, breaker, cooldown); terminal cancellation is supported (partial
// and total are not). A cancelled call is never retried and completes with
// operation_aborted; a breaker probe it held gives its slot back.
//
// Errors: the last attempt's code, or errc::deadline_exceeded,
// errc::circuit_open (admission fail_fast), errc::retry_budget_exhausted,
// operation_aborted; see DESIGN.md and docs/design-notes.md (Errors).
//
// Thread safety: a pipeline may run any number of operations concurrently,
// from any threads.
//
// Cost: co_spawn of run() plus one post (measured in bench_retry:
// *_async_*). The `co_await run(...)` spelling stays the cheapest.

#include <resilience/detail/async_op.hpp>

namespace resilience {

template <class Executor, class Factory, class CompletionToken>
auto pipeline::async_run(const Executor& ex, Factory factory, CompletionToken&& token) {
    using T = detail::factory_value_t<Factory>;
    return detail::async_run_result<T>(
        ex, ex, nullptr, [this, f = std::move(factory)]() mutable { return run(std::move(f)); },
        std::forward<CompletionToken>(token));
}

template <class Executor, class Factory, class CompletionToken>
auto pipeline::async_run(const Executor& ex, Factory factory, call_options call, diagnostics& diag,
                         CompletionToken&& token) {
    using T = detail::factory_value_t<Factory>;
    return detail::async_run_result<T>(
        ex, ex, &diag,
        [this, f = std::move(factory), c = std::move(call)]() mutable { return run(std::move(f), std::move(c)); },
        std::forward<CompletionToken>(token));
}

}  // namespace resilience

#endif
