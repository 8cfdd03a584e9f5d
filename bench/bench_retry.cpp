// Success-path cost of the retry combinator, each case beside its bare
// operation in the same run:
//   immediate_bare / immediate_retry: an awaitable that completes at once
//   post_bare / post_retry:           an asio::post round trip
//   <case>_retry_gates: retry plus a shared circuit breaker, cooldown and
//   retry budget (all CLOSED / idle: the success path).
// Each runs with 1 and 2 benchmark threads (->Threads(1)->Threads(2)); with 2,
// each thread has its own io_context and both share the pipeline and gates.
// immediate_wrap: the operation inside one trivial coroutine that only awaits
// it, the floor for any combinator written as a coroutine.
// *_async_*: the same through pipeline::async_run (any completion token):
// awaited with use_awaitable, or a chain of callbacks.
// Run: build/bench/bench_retry --benchmark_min_time=0.5
#include <resilience/retry.hpp>

#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;

namespace {

asio::awaitable<resilience::result<int>> immediate_op(int v) { co_return v; }

asio::awaitable<resilience::result<int>> post_op(int v) {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    co_return v;
}

// Runs `body` (a coroutine doing `n` iterations) to completion on one thread.
template <class Body>
void run_loop(benchmark::State& state, Body body) {
    asio::io_context ctx(1);
    for (auto _ : state) {
        state.PauseTiming();
        const auto n = state.range(0);
        state.ResumeTiming();
        asio::co_spawn(ctx, body(n), asio::detached);
        ctx.run();
        ctx.restart();
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void immediate_bare(benchmark::State& state) {
    run_loop(state, [](std::int64_t n) -> asio::awaitable<void> {
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i) sum += (co_await immediate_op(1)).value();
        benchmark::DoNotOptimize(sum);
    });
}

resilience::pipeline& plain_pipeline() {
    static resilience::pipeline p;
    return p;
}

void immediate_retry(benchmark::State& state) {
    resilience::pipeline& p = plain_pipeline();
    run_loop(state, [&p](std::int64_t n) -> asio::awaitable<void> {
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i) sum += (co_await p.run([] { return immediate_op(1); })).value();
        benchmark::DoNotOptimize(sum);
    });
}

resilience::pipeline& gated_pipeline() {
    static resilience::pipeline p([] {
        resilience::retry_options o;
        o.breaker = std::make_shared<resilience::circuit_breaker>(resilience::breaker_config{});
        o.cooldown = std::make_shared<resilience::cooldown>();
        o.budget = std::make_shared<resilience::retry_budget>();
        o.scope = "bench";
        return o;
    }());
    return p;
}

void immediate_retry_gates(benchmark::State& state) {
    resilience::pipeline& p = gated_pipeline();
    run_loop(state, [&p](std::int64_t n) -> asio::awaitable<void> {
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i) sum += (co_await p.run([] { return immediate_op(1); })).value();
        benchmark::DoNotOptimize(sum);
    });
}

void post_retry_gates(benchmark::State& state) {
    resilience::pipeline& p = gated_pipeline();
    run_loop(state, [&p](std::int64_t n) -> asio::awaitable<void> {
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i) sum += (co_await p.run([] { return post_op(1); })).value();
        benchmark::DoNotOptimize(sum);
    });
}

void post_bare(benchmark::State& state) {
    run_loop(state, [](std::int64_t n) -> asio::awaitable<void> {
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i) sum += (co_await post_op(1)).value();
        benchmark::DoNotOptimize(sum);
    });
}

void post_retry(benchmark::State& state) {
    resilience::pipeline& p = plain_pipeline();
    run_loop(state, [&p](std::int64_t n) -> asio::awaitable<void> {
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i) sum += (co_await p.run([] { return post_op(1); })).value();
        benchmark::DoNotOptimize(sum);
    });
}

template <class Factory>
asio::awaitable<resilience::result<int>> wrap(Factory f) {
    co_return co_await f();
}

void immediate_wrap(benchmark::State& state) {
    run_loop(state, [](std::int64_t n) -> asio::awaitable<void> {
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i) sum += (co_await wrap([] { return immediate_op(1); })).value();
        benchmark::DoNotOptimize(sum);
    });
}

// The same retry call through the universal-model operation (co_spawn of
// run() plus the adapter to void(error_code, int)), awaited with use_awaitable.
void immediate_async_retry(benchmark::State& state) {
    resilience::pipeline& p = plain_pipeline();
    run_loop(state, [&p](std::int64_t n) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i)
            sum += co_await p.async_run(ex, [] { return immediate_op(1); }, asio::use_awaitable);
        benchmark::DoNotOptimize(sum);
    });
}

void immediate_async_retry_gates(benchmark::State& state) {
    resilience::pipeline& p = gated_pipeline();
    run_loop(state, [&p](std::int64_t n) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i)
            sum += co_await p.async_run(ex, [] { return immediate_op(1); }, asio::use_awaitable);
        benchmark::DoNotOptimize(sum);
    });
}

// Callback style: each completion starts the next call.
struct callback_chain {
    resilience::pipeline& p;
    asio::io_context::executor_type ex;
    std::int64_t left;
    long sum = 0;
    void next() {
        if (left-- == 0) return;
        p.async_run(ex, [] { return immediate_op(1); }, [this](resilience::error_code, int v) {
            sum += v;
            next();
        });
    }
};

void immediate_async_callback(benchmark::State& state) {
    resilience::pipeline& p = plain_pipeline();
    asio::io_context ctx(1);
    for (auto _ : state) {
        callback_chain c{p, ctx.get_executor(), state.range(0)};
        c.next();
        ctx.run();
        ctx.restart();
        benchmark::DoNotOptimize(c.sum);
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
}

void post_async_retry(benchmark::State& state) {
    resilience::pipeline& p = plain_pipeline();
    run_loop(state, [&p](std::int64_t n) -> asio::awaitable<void> {
        auto ex = co_await asio::this_coro::executor;
        long sum = 0;
        for (std::int64_t i = 0; i < n; ++i)
            sum += co_await p.async_run(ex, [] { return post_op(1); }, asio::use_awaitable);
        benchmark::DoNotOptimize(sum);
    });
}

}  // namespace

BENCHMARK(immediate_async_retry)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(immediate_async_retry_gates)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(immediate_async_callback)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(post_async_retry)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(immediate_wrap)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(immediate_bare)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(immediate_retry)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(immediate_retry_gates)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(post_bare)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(post_retry)->Arg(10000)->Threads(1)->Threads(2);
BENCHMARK(post_retry_gates)->Arg(10000)->Threads(1)->Threads(2);

BENCHMARK_MAIN();
