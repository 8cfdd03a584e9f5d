// Many concurrent waits: the DESIGN.md performance targets about
// wait_until_active, side by side in one run, in virtual time (a simulator and
// the client on ONE io_context and one testing::manual_clock), except the
// steady-clock memory figures, which use real timers that never fire.
//
//  1. memory: heap bytes in use per wait asleep between polls (target
//     <= 512 B, connections excluded), beside a bare coroutine asleep on a
//     steady_timer (the DESIGN reference, about 1.27 KB) and one asleep on
//     the manual clock. Heap = glibc mallinfo2() uordblks + hblkhd. The
//     connections are excluded by warming up first: one files.get per file
//     through the same client opens the whole pool (client and simulator
//     side) and creates the simulator's per-file counters before the baseline
//     is read; the pool's `opened` counter is checked not to move afterwards.
//     "memory/scheduled_wait" is the async_ form with a plain callback: a
//     record in the client's poll scheduler, no coroutine (the target line);
//     "memory/co_await_wait*" are the co_await form in a co_spawned
//     coroutine, i.e. that record plus the caller's own coroutine frames,
//     which "memory/parked_coroutine" measures alone (the same coroutine
//     parked on nothing): the difference is the wait's own cost.
//  2. 100,000 concurrent wait_until_active complete with a bounded pool, once
//     per poll strategy ("many_waits/get_per_file": one files.get per file
//     and round, the request pattern of the coroutine per wait before the
//     poll scheduler; "many_waits/list_rounds": the scheduler's files.list
//     rounds), with the delay from ACTIVE (the simulator's ready_at) to the
//     wait's return, median and p99; "many_waits/comparison" has the ratio.
//     "list_crossover" lines: W waits among 2,000 files, both strategies.
//     "million_waits" (--million N, off by default): N waits asleep at once
//     on one client, one thread, the pool bound kept: peak RSS and heap.
//  3. an outage: requests the simulator saw during it, client (shared breaker)
//     vs per-operation retries (a plain pipeline per wait, no breaker, no
//     cooldown, no budget); waits lost; time to the first successful poll
//     after the outage.
//  4. a quota storm (429 + RetryInfo on files.get): 429s per cooldown period,
//     client vs per-operation retries (target: at most the pool's connection
//     bound in every period, the first included: "within_target").
//     Outage and storm faults hit files.get, so these two run with list
//     rounds off (client_options::poll_list_min_waits = 0).
//
// JSON line names (stable; plot scripts read them): memory/bare_coroutine_steady_timer,
// memory/bare_coroutine_steady_clock_sleep_until, memory/bare_coroutine_manual_clock,
// memory/scheduled_wait, memory/parked_coroutine, memory/co_await_wait,
// memory/co_await_wait_manual_clock, memory/one_wait_traced, many_waits/get_per_file,
// many_waits/list_rounds, many_waits/comparison, list_crossover, large_files/plain_schedule,
// large_files/poll_by_size, large_files/comparison, million_waits, outage/client_shared_breaker,
// outage/per_operation_retries, outage/comparison, quota_storm/client_shared_cooldown,
// quota_storm/per_operation_retries, quota_storm/comparison.
//
// Prints one JSON object per line, then a one-line summary.
//
// "large_files" (--large-waits N, 50; 0 = off): N files of 16 MiB-2 GiB,
// processing growing with size, with client_options::poll_by_size off and on.
//
// Run: build/bench/bench_wait [--mem-waits N] [--waits N] [--polls N] [--million N] [--crossover 0|1]
//                             [--large-waits N]
//                             [--series-bin S]
//
// --series-bin S (S > 0 seconds) adds, before each outage and quota storm
// figure, a {"series":NAME,...} line: the files.get requests the simulator
// saw per S-second bin of virtual time, by status (docs/BENCHMARKS.md plots
// them with scripts/plot_benchmarks.py).
#include "bench_common.hpp"

#include <resilience/gemini/client.hpp>
#include <resilience/gemini/wire.hpp>
#include <resilience/http/client.hpp>
#include <resilience/retry.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>
#include <new>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <malloc.h>
#include <stdlib.h>
#include <sys/resource.h>

// Allocation trace (for "where do the bytes go"): the program replaces
// operator new/delete and interposes aligned_alloc (which Asio uses for
// coroutine frames); while tracing is on, each event's kind and size is kept.
namespace trace {
struct event {
    char kind;  // 'n' operator new, 'd' sized delete, 'f' aligned_alloc (Asio coroutine frame)
    std::size_t size;
};
std::atomic<bool> on{false};
event events[8192];
std::atomic<int> count{0};
inline void record(char k, std::size_t n) noexcept {
    if (!on.load(std::memory_order_relaxed)) return;
    int i = count.fetch_add(1, std::memory_order_relaxed);
    if (i < 8192) events[i] = {k, n};
}
}  // namespace trace

void* operator new(std::size_t n) {
    trace::record('n', n);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t n) noexcept {
    trace::record('d', n);
    std::free(p);
}
extern "C" void* aligned_alloc(std::size_t align, std::size_t n) {
    trace::record('f', n);
    void* p = nullptr;
    if (posix_memalign(&p, align < sizeof(void*) ? sizeof(void*) : align, n) != 0) return nullptr;
    return p;
}

namespace http = resilience::http;
using bench::fast_run;
using bench::rethrow_void;
using bench::secs;

namespace {

const std::string key = "bench-wait-key-7d1e";

std::size_t heap_in_use() {
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

double real_secs(real_clock::time_point since) { return std::chrono::duration<double>(real_clock::now() - since).count(); }

// ---------------------------------------------------------------- memory

struct mem_figure {
    double per_wait = 0;
    std::size_t n = 0;
};

asio::awaitable<void> bare_timer(int& started) {
    asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
    ++started;
    co_await t.async_wait(asio::use_awaitable);
}

asio::awaitable<void> bare_manual(manual_clock& clk, int& started) {
    ++started;
    (void)co_await clk.sleep_until(clk.now() + std::chrono::hours(1));
}

mem_figure measure_bare_steady(std::size_t n) {
    asio::io_context ctx;
    int started = 0;
    // A first coroutine and timer outside the measure (the timer queue and
    // the thread's frame cache exist afterwards).
    asio::co_spawn(ctx, bare_timer(started), rethrow_void);
    ctx.poll();
    const std::size_t before = heap_in_use();
    for (std::size_t i = 0; i < n; ++i) asio::co_spawn(ctx, bare_timer(started), rethrow_void);
    ctx.poll();
    const std::size_t after = heap_in_use();
    if (static_cast<std::size_t>(started) != n + 1) std::fprintf(stderr, "bare steady: not all started\n");
    return {double(after - before) / double(n), n};
}

asio::awaitable<void> bare_clock_sleep(int& started) {
    ++started;
    (void)co_await resilience::steady_clock().sleep_until(std::chrono::steady_clock::now() + std::chrono::hours(1));
}

// A bare coroutine asleep in the library's steady clock::sleep_until (a
// coroutine of its own holding the timer): what a poll pause costs at least.
mem_figure measure_bare_clock_sleep(std::size_t n) {
    asio::io_context ctx;
    int started = 0;
    asio::co_spawn(ctx, bare_clock_sleep(started), rethrow_void);
    ctx.poll();
    const std::size_t before = heap_in_use();
    for (std::size_t i = 0; i < n; ++i) asio::co_spawn(ctx, bare_clock_sleep(started), rethrow_void);
    ctx.poll();
    const std::size_t after = heap_in_use();
    return {double(after - before) / double(n), n};
}

mem_figure measure_bare_manual(std::size_t n) {
    manual_clock clk;
    asio::io_context ctx;
    int started = 0;
    asio::co_spawn(ctx, bare_manual(clk, started), rethrow_void);
    ctx.poll();
    const std::size_t before = heap_in_use();
    for (std::size_t i = 0; i < n; ++i) asio::co_spawn(ctx, bare_manual(clk, started), rethrow_void);
    ctx.poll();
    const std::size_t after = heap_in_use();
    if (clk.sleepers() != n + 1) std::fprintf(stderr, "bare manual: %zu sleepers\n", clk.sleepers());
    return {double(after - before) / double(n), n};
}

// A simulator holding `files` files that stay PROCESSING for a day, and a
// client of it, on one io_context; on `clk` when given (virtual time), else on
// the steady clock. `list_min_waits` is client_options::poll_list_min_waits
// (unset: the client's default).
struct sim_with_waiting_client {
    sim::server srv;
    std::vector<std::string> names;
    std::optional<gemini::client> client;

    static sim::config config(manual_clock* clk) {
        sim::config cfg;
        cfg.api_key = key;
        if (clk) cfg.time = clk;
        cfg.processing = sim::processing_time::fixed(24h);
        return cfg;
    }
    sim_with_waiting_client(asio::io_context& ctx, manual_clock* clk, std::size_t files, std::uint64_t seed,
                            std::optional<std::size_t> list_min_waits)
        : srv(ctx, config(clk)) {
        srv.start();
        names.reserve(files);
        for (std::size_t i = 0; i < files; ++i) names.push_back(srv.add_file("x"));
        gemini::client_options opts;
        opts.api_key = key;
        opts.base_url = srv.base_url();
        if (clk) opts.time = clk;
        opts.seed = seed;
        if (list_min_waits) opts.poll_list_min_waits = *list_min_waits;
        client.emplace(ctx.get_executor(), std::move(opts));
    }
};

struct poll_mem {
    double per_wait = 0;
    double connections_bytes = 0;  // heap the warm-up added (pool + simulator sessions + per-file counters)
    std::size_t connections = 0;
    std::size_t opened_during = 0;  // connections opened while measuring (should be 0)
    std::size_t asleep = 0;
    bool ok = false;
    // One extra wait, traced (manual clock only).
    double one_wait_bytes = 0;         // heap delta of one wait from the call to asleep
    std::string frames;                // aligned_alloc sizes (Asio frames) in order
    std::string news;                  // operator new sizes in order
    long new_net = 0;                  // operator new bytes minus sized-delete bytes
};

// A slot reserved beforehand for one parked handler (see await_wait).
struct parked_slot {
    alignas(std::max_align_t) unsigned char buf[64];
    void (*destroy)(void*) = nullptr;
    ~parked_slot() {
        if (destroy) destroy(buf);
    }
};

// What a user writes: a coroutine of its own awaiting the co_await form. With
// `park` set, the same coroutine (the same frame) instead awaits an operation
// that moves its handler into that slot and allocates nothing: the caller's
// own cost (co_spawn's frames and this frame), the baseline that the
// co_await form's figure is read against.
asio::awaitable<void> await_wait(gemini::client& cl, std::string name, const gemini::wait_options* w,
                                 std::size_t& started, std::size_t& ended, parked_slot* park) {
    ++started;
    if (park) {
        co_await asio::async_initiate<const asio::deferred_t&, void()>(
            [park](auto h) {
                using H = decltype(h);
                static_assert(sizeof(H) <= sizeof(park->buf));
                new (park->buf) H(std::move(h));
                park->destroy = [](void* p) { static_cast<H*>(p)->~H(); };
            },
            asio::deferred);
    } else {
        auto r = co_await cl.wait_until_active(std::move(name), *w);
        if (!r && r.error().code != asio::error::operation_aborted)
            std::fprintf(stderr, "wait ended: %s\n", r.error().what().c_str());
    }
    ++ended;
}

// N waits asleep in their poll pause on the manual clock.
poll_mem measure_poll_manual(std::size_t n) {
    poll_mem out;
    manual_clock clk;
    asio::io_context ctx;
    // One files.get per wait (list rounds off): every wait is answered once.
    sim_with_waiting_client setup(ctx, &clk, n + 1, 1, 0);
    auto& names = setup.names;
    gemini::client& cl = *setup.client;

    std::size_t warm = 0;
    const std::size_t h0 = heap_in_use();
    for (auto& name : names)
        asio::co_spawn(ctx, cl.get(name), [&](std::exception_ptr e, resilience::result<gemini::file>) {
            rethrow_void(e);
            ++warm;
        });
    if (!run_virtual(ctx, clk, [&] { return warm == n + 1; }, fast_run(120s))) return out;

    // One wait, traced: the caller's frames, every allocation until it sleeps.
    std::size_t started = 0, ended = 0;
    const gemini::wait_options defaults;
    {
        std::size_t h = 0;
        trace::count = 0;
        trace::on = true;
        h = heap_in_use();
        asio::co_spawn(ctx, await_wait(cl, names.back(), &defaults, started, ended, nullptr), rethrow_void);
        run_virtual(ctx, clk, [&] { return cl.stats().polls == 1 && cl.http().stats().in_use == 0; }, fast_run(120s));
        trace::on = false;
        out.one_wait_bytes = double(heap_in_use()) - double(h);
        const int m = std::min(trace::count.load(), 8192);
        for (int i = 0; i < m; ++i) {
            const auto& e = trace::events[i];
            if (e.kind == 'f') out.frames += (out.frames.empty() ? "" : " ") + std::to_string(e.size);
            if (e.kind == 'n') out.news += (out.news.empty() ? "" : " ") + std::to_string(e.size);
            if (e.kind == 'n') out.new_net += long(e.size);
            if (e.kind == 'd') out.new_net -= long(e.size);
        }
        names.pop_back();
    }
    const std::size_t opened = cl.http().stats().opened;
    const std::size_t before = heap_in_use();
    out.connections_bytes = double(before) - double(h0);
    out.connections = opened;

    for (auto& name : names)
        asio::co_spawn(ctx, await_wait(cl, name, &defaults, started, ended, nullptr), rethrow_void);
    auto all_asleep = [&] {
        auto ps = cl.http().stats();
        return cl.stats().polls >= n + 1 && ps.in_use == 0 && ps.waiting == 0;
    };
    out.ok = run_virtual(ctx, clk, all_asleep, fast_run(120s));
    ctx.poll();
    const std::size_t after = heap_in_use();
    out.asleep = cl.stats().waits;
    out.opened_during = cl.http().stats().opened - opened;
    out.per_wait = (double(after) - double(before)) / double(n);
    if (ended) out.ok = false;
    out.asleep -= 1;  // the traced one
    return out;
}

// N waits asleep between polls on real timers (steady clock), poll_initial an
// hour so nobody wakes up, started either with the co_await form (a coroutine
// per wait: the production configuration before the poll scheduler) or with
// the async_ form and a plain callback (what the poll scheduler keeps per wait:
// a record, no coroutine). The pool is opened first so that it is excluded.
enum class wait_form { co_await_form, async_callback, parked_coroutine };

poll_mem measure_asleep(std::size_t n, wait_form form) {
    poll_mem out;
    asio::io_context ctx;
    // One files.get per wait (list rounds off): every wait is answered once.
    sim_with_waiting_client setup(ctx, nullptr, n, 1, 0);
    auto& names = setup.names;
    gemini::client& cl = *setup.client;

    std::size_t warm = 0;
    const std::size_t h0 = heap_in_use();
    for (auto& name : names)
        asio::co_spawn(ctx, cl.get(name), [&](std::exception_ptr e, resilience::result<gemini::file>) {
            rethrow_void(e);
            ++warm;
        });
    const auto limit = real_clock::now() + (form == wait_form::async_callback ? 120s : 60s);
    while (warm < n && real_clock::now() < limit) ctx.run_one_for(10ms);
    if (warm < n) return out;
    const std::size_t opened = cl.http().stats().opened;
    out.connections = opened;

    std::size_t started = 0, ended = 0;
    // Reserved before the baseline is read (the parked form's handlers).
    std::vector<parked_slot> slots(form == wait_form::parked_coroutine ? n : 0);
    gemini::wait_options w;  // one for all, kept by the caller
    w.poll_initial = std::chrono::hours(1);
    w.poll_max = std::chrono::hours(1);
    const std::size_t before = heap_in_use();
    out.connections_bytes = double(before) - double(h0);
    for (std::size_t i = 0; i < n; ++i) {
        if (form == wait_form::async_callback)
            cl.async_wait_until_active(names[i], w, [&](resilience::error_code, gemini::file) { ++ended; });
        else
            asio::co_spawn(ctx,
                           await_wait(cl, names[i], &w, started, ended,
                                      form == wait_form::parked_coroutine ? &slots[i] : nullptr),
                           rethrow_void);
    }
    // Every poll answered and its slot given back, then nothing ready: all asleep.
    auto settled = [&] {
        auto ps = cl.http().stats();
        if (form == wait_form::parked_coroutine) return started == n && ps.in_use == 0 && ps.waiting == 0;
        return cl.stats().polls == n && ps.in_use == 0 && ps.waiting == 0;
    };
    while (!settled() && real_clock::now() < limit) ctx.run_one_for(10ms);
    while (ctx.poll() > 0) {
    }
    const std::size_t after = heap_in_use();
    const std::size_t in_scheduler = form == wait_form::parked_coroutine ? n : cl.stats().waits;
    out.ok = settled() && ended == 0 && in_scheduler == n;
    out.asleep = out.ok ? n : in_scheduler;
    out.opened_during = cl.http().stats().opened - opened;
    out.per_wait = (double(after) - double(before)) / double(n);
    return out;
}

// ------------------------------------------------------- per-operation baseline

// A wait that retries per operation only: a plain pipeline of its own (no
// breaker, no cooldown, no retry budget), the same poll schedule as
// wait_until_active, and a failed round (retries exhausted) followed by another
// round after the pause, until the deadline.
asio::awaitable<resilience::result<gemini::file>> naive_wait(http::client& h, manual_clock& clk, std::string url,
                                                              time_point deadline, std::uint64_t seed) {
    resilience::retry_options ro;
    ro.time = &clk;
    ro.seed = seed;
    ro.budget = nullptr;
    resilience::pipeline p(std::move(ro));
    duration pause = 1s;
    for (;;) {
        resilience::call_options call;
        call.deadline = deadline;
        auto op = [&](const resilience::attempt_context& a) -> asio::awaitable<resilience::result<gemini::file>> {
            http::request req;
            req.method = http::verb::get;
            req.url = url;
            req.headers.set("x-goog-api-key", key);
            http::request_options ro(a.deadline);
            auto r = co_await h.send(std::move(req), std::move(ro));
            if (!r) co_return r.error();
            if (!r->ok())  // the Google envelope (RetryInfo, quotas) is the Gemini layer's
                co_return gemini::decode_error(r->status, r->body, r->headers[boost::beast::http::field::retry_after]);
            co_return gemini::parse_file(r->body);
        };
        auto r = co_await p.run(op, std::move(call));
        if (r && r->state == gemini::file_state::active) co_return r;
        if (r && r->state == gemini::file_state::failed) co_return r;
        const double jitter = 1.0 + 0.1 * (2.0 * p.next_uniform() - 1.0);
        const auto this_pause = std::chrono::duration_cast<duration>(pause * jitter);
        if (deadline - clk.now() <= this_pause) {
            if (!r) co_return r.error();
            co_return resilience::failure(make_error_code(resilience::errc::deadline_exceeded), "deadline");
        }
        if (co_await clk.sleep_until(clk.now() + this_pause)) co_return resilience::failure(make_error_code(asio::error::operation_aborted));
        pause = std::min<duration>(std::chrono::duration_cast<duration>(pause * 1.5), 10s);
    }
}

// ---------------------------------------------------------------- scenarios

struct run_figures {
    std::size_t waits = 0, active = 0, failed = 0;
    double virtual_s = 0, real_s = 0, cpu_s = 0;
    std::uint64_t get_requests = 0, total_connections = 0;
    std::size_t pool_opened = 0;
    bool finished = false;
    std::vector<sim::request_record> log;
    time_point t0{};
    std::map<std::string, std::size_t> errors;
    std::uint64_t list_requests = 0;
    std::vector<double> active_to_return_s;  // per wait that returned ACTIVE
};

double quantile(std::vector<double> v, double q) {
    if (v.empty()) return -1;
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, std::size_t(q * double(v.size())))];
}

enum class mode { client, per_operation };

struct scenario {
    std::size_t waits = 1000;
    sim::processing_time processing = sim::processing_time::uniform(1s, 60s);
    duration deadline = duration::max();
    std::optional<sim::outage> out;
    std::optional<sim::fault> storm;  // installed at start, removed after storm_length
    duration storm_length{};
    bool record = false;
    mode m = mode::client;
    std::size_t pool = 16;
    std::size_t list_min_waits = 64;  // client_options::poll_list_min_waits (0 = one files.get per file)
    std::size_t extra_files = 0;      // files in the project nobody waits for
    std::uint64_t size_min = 0, size_max = 0;  // > 0: files of a size in [min, max] (stored without bytes)
    duration per_mib{};               // sim::config::processing_per_mib
    bool by_size = true;              // client_options::poll_by_size
};

run_figures run_scenario(const scenario& sc) {
    run_figures f;
    f.waits = sc.waits;
    manual_clock clk;
    asio::io_context ctx;
    sim::config cfg;
    cfg.api_key = key;
    cfg.time = &clk;
    cfg.processing = sc.processing;
    cfg.record_requests = sc.record;
    cfg.seed = 3;
    cfg.processing_per_mib = sc.per_mib;
    sim::server srv(ctx, cfg);
    srv.start();
    std::vector<std::string> names;
    names.reserve(sc.waits);
    if (sc.size_max == 0)
        for (std::size_t i = 0; i < sc.waits; ++i) names.push_back(srv.add_file("x"));
    for (std::size_t i = 0; i < sc.extra_files; ++i) (void)srv.add_file("y");

    gemini::client_options opts;
    opts.api_key = key;
    opts.base_url = srv.base_url();
    opts.time = &clk;
    opts.seed = 5;
    opts.http.max_connections_per_origin = sc.pool;
    opts.poll_list_min_waits = sc.list_min_waits;
    opts.poll_by_size = sc.by_size;
    gemini::client cl(ctx.get_executor(), std::move(opts));
    http::client_options ho;
    ho.time = &clk;
    ho.max_connections_per_origin = sc.pool;
    http::client raw(ctx.get_executor(), ho);

    // Large files: the client has seen one of size_max become ACTIVE before
    // (poll_by_size learns from it); its requests are not counted.
    std::uint64_t warm_gets = 0;
    if (sc.size_max > 0) {
        bool warm = false;
        cl.async_wait_until_active(srv.add_file_of_size(sc.size_max), gemini::wait_options(),
                                   [&](resilience::error_code, gemini::file) { warm = true; });
        if (!run_virtual(ctx, clk, [&] { return warm; }, fast_run(120s))) std::fprintf(stderr, "large files: no warm-up\n");
        warm_gets = srv.snapshot().requests(sim::route::get);
        std::mt19937_64 size_rng(9);
        for (std::size_t i = 0; i < sc.waits; ++i)
            names.push_back(
                srv.add_file_of_size(std::uniform_int_distribution<std::uint64_t>(sc.size_min, sc.size_max)(size_rng)));
    }
    const time_point t0 = clk.now();
    f.t0 = t0;
    if (sc.out) srv.add_outage(*sc.out);
    if (sc.storm) {
        srv.add_fault(*sc.storm);
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            (void)co_await clk.sleep_until(t0 + sc.storm_length);
            srv.clear_faults();
        }, rethrow_void);
    }
    std::size_t done = 0;
    auto on_done = [&](std::exception_ptr e, resilience::result<gemini::file> r) {
        rethrow_void(e);
        ++done;
        if (r && r->state == gemini::file_state::active) ++f.active;
        else if (!r) ++f.errors[r.error().code.message()];
        else ++f.failed;
    };
    const time_point deadline = sc.deadline == duration::max() ? time_point::max() : t0 + sc.deadline;
    const auto rt0 = real_clock::now();
    const std::clock_t c0 = std::clock();
    std::uint64_t seed = 100;
    for (auto& name : names) {
        if (sc.m == mode::client) {
            gemini::wait_options w;
            w.deadline = deadline;
            cl.async_wait_until_active(name, std::move(w), [&, name](resilience::error_code ec, gemini::file fl) {
                if (!ec && fl.state == gemini::file_state::active)
                    if (auto info = srv.file(name)) f.active_to_return_s.push_back(secs(clk.now() - info->ready_at));
                if (ec) on_done(nullptr, resilience::failure(ec));
                else on_done(nullptr, std::move(fl));
            });
        } else {
            std::string url = srv.base_url() + "/v1beta/" + name;
            asio::co_spawn(ctx, naive_wait(raw, clk, std::move(url), deadline, ++seed), on_done);
        }
    }
    f.finished = run_virtual(ctx, clk, [&] { return done == sc.waits; }, fast_run(std::chrono::seconds(3600)));
    f.real_s = real_secs(rt0);
    f.cpu_s = double(std::clock() - c0) / CLOCKS_PER_SEC;
    f.virtual_s = secs(clk.now() - t0);
    auto s = srv.snapshot();
    f.get_requests = s.requests(sim::route::get) - warm_gets;
    f.list_requests = s.requests(sim::route::list);
    f.total_connections = s.total_connections;
    f.pool_opened = sc.m == mode::client ? cl.http().stats().opened : raw.stats().opened;
    if (sc.record) f.log = srv.requests();
    return f;
}

std::string errors_json(const run_figures& f) {
    std::string s = "{";
    for (auto& [k, v] : f.errors) {
        if (s.size() > 1) s += ",";
        s += "\"" + k + "\":" + std::to_string(v);
    }
    return s + "}";
}

// ---- {"series":...} lines (--series-bin): requests per second over time ----
// files.get requests per bin of virtual time since the scenario's start:
// every request, and those answered 200, 429, 503 (0: reset).
// `window` is the outage's or the storm's [start, end) in seconds.
void print_series(const char* name, const run_figures& f, double bin_s, double window_start, double window_end) {
    std::map<long, std::map<int, std::size_t>> bins;  // bin -> status -> requests
    long last = 0;
    for (const auto& r : f.log) {
        if (r.target != sim::route::get) continue;
        const long b = long(secs(r.at - f.t0) / bin_s);
        ++bins[b][r.status];
        last = std::max(last, b);
    }
    std::string t = "[", all = "[", ok = "[", r429 = "[", r503 = "[";
    for (long b = 0; b <= last; ++b) {
        const auto it = bins.find(b);
        std::size_t n = 0, n200 = 0, n429 = 0, n503 = 0;
        if (it != bins.end())
            for (const auto& [status, k] : it->second) {
                n += k;
                if (status == 200) n200 += k;
                if (status == 429) n429 += k;
                if (status == 503) n503 += k;
            }
        const char* sep = b ? "," : "";
        char buf[32];
        std::snprintf(buf, sizeof buf, "%s%.0f", sep, double(b) * bin_s);
        t += buf;
        auto rate = [&](std::string& out, std::size_t k) {
            std::snprintf(buf, sizeof buf, "%s%.2f", sep, double(k) / bin_s);
            out += buf;
        };
        rate(all, n);
        rate(ok, n200);
        rate(r429, n429);
        rate(r503, n503);
    }
    std::printf("{\"series\":\"%s\",\"waits\":%zu,\"bin_s\":%.0f,\"window_s\":[%.0f,%.0f],\"t_s\":%s],"
                "\"get_per_s\":%s],\"ok_per_s\":%s],\"429_per_s\":%s],\"503_per_s\":%s]}\n",
                name, f.waits, bin_s, window_start, window_end, t.c_str(), all.c_str(), ok.c_str(), r429.c_str(), r503.c_str());
    std::fflush(stdout);
}
// ---- end of the {"series":...} lines ----

std::size_t arg(int argc, char** argv, const char* name, std::size_t def) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
    return def;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t mem_n = arg(argc, argv, "--mem-waits", 10000);
    const std::size_t big_n = arg(argc, argv, "--waits", 100000);
    const std::size_t poll_n = arg(argc, argv, "--polls", 2000);
    const std::size_t million_n = arg(argc, argv, "--million", 0);
    const std::size_t large_n = arg(argc, argv, "--large-waits", 50);
    const bool crossover = arg(argc, argv, "--crossover", 1) != 0;
    const std::size_t series_bin = arg(argc, argv, "--series-bin", 0);  // {"series":...} lines; 0 = none
    const auto start = real_clock::now();
    std::string summary;

    // 1. memory
    auto bare = measure_bare_steady(mem_n);
    auto bare_c = measure_bare_clock_sleep(mem_n);
    auto bare_m = measure_bare_manual(mem_n);
    auto pm = measure_poll_manual(mem_n);
    auto ps = measure_asleep(mem_n, wait_form::co_await_form);
    auto sw = measure_asleep(mem_n, wait_form::async_callback);
    auto pk = measure_asleep(mem_n, wait_form::parked_coroutine);
    std::printf("{\"name\":\"memory/bare_coroutine_steady_timer\",\"waits\":%zu,\"bytes_per_wait\":%.0f}\n",
                bare.n, bare.per_wait);
    std::printf("{\"name\":\"memory/bare_coroutine_steady_clock_sleep_until\",\"waits\":%zu,\"bytes_per_wait\":%.0f,"
                "\"ratio_vs_bare_steady_timer\":%.2f}\n",
                bare_c.n, bare_c.per_wait, bare_c.per_wait / bare.per_wait);
    std::printf("{\"name\":\"memory/bare_coroutine_manual_clock\",\"waits\":%zu,\"bytes_per_wait\":%.0f}\n", bare_m.n,
                bare_m.per_wait);
    std::printf("{\"name\":\"memory/parked_coroutine\",\"waits\":%zu,\"ok\":%s,\"bytes_per_wait\":%.0f,"
                "\"note\":\"the caller's own cost: co_spawn and the co_await form's coroutine, parked on nothing\"}\n",
                mem_n, pk.ok ? "true" : "false", pk.per_wait);
    std::printf("{\"name\":\"memory/scheduled_wait\",\"waits\":%zu,\"asleep\":%zu,\"ok\":%s,"
                "\"bytes_per_wait\":%.0f,\"bare_coroutine_steady_timer_bytes\":%.0f,\"ratio_vs_bare_steady\":%.2f,"
                "\"target_bytes\":512,\"within_target\":%s,\"connections\":%zu,\"opened_while_measuring\":%zu}\n",
                mem_n, sw.asleep, sw.ok ? "true" : "false", sw.per_wait, bare.per_wait, sw.per_wait / bare.per_wait,
                sw.per_wait <= 512 ? "true" : "false", sw.connections, sw.opened_during);
    // The co_await form: a co_spawned coroutine awaiting wait_until_active;
    // "wait_bytes" is what the wait adds to the caller's own coroutine (the
    // same coroutine parked on nothing), the figure held to the 512 B target.
    const double co_wait = ps.per_wait - pk.per_wait;
    std::printf("{\"name\":\"memory/co_await_wait\",\"waits\":%zu,\"asleep\":%zu,\"ok\":%s,"
                "\"bytes_per_wait\":%.0f,\"parked_coroutine_bytes\":%.0f,\"wait_bytes\":%.0f,"
                "\"ratio_vs_bare_steady\":%.2f,\"target_bytes\":512,\"within_target\":%s,"
                "\"connections\":%zu,\"warmup_bytes\":%.0f,\"opened_while_measuring\":%zu}\n",
                mem_n, ps.asleep, ps.ok ? "true" : "false", ps.per_wait, pk.per_wait, co_wait, ps.per_wait / bare.per_wait,
                co_wait <= 512 ? "true" : "false", ps.connections, ps.connections_bytes, ps.opened_during);
    std::printf("{\"name\":\"memory/co_await_wait_manual_clock\",\"waits\":%zu,\"asleep\":%zu,\"ok\":%s,"
                "\"bytes_per_wait\":%.0f,\"ratio_vs_bare_manual\":%.2f,\"connections\":%zu,"
                "\"warmup_bytes\":%.0f,\"opened_while_measuring\":%zu}\n",
                mem_n, pm.asleep, pm.ok ? "true" : "false", pm.per_wait, pm.per_wait / bare_m.per_wait, pm.connections,
                pm.connections_bytes, pm.opened_during);
    // One wait traced from the co_spawn to its sleep: "bytes" is low because
    // Asio's per-thread frame cache hands back recycled frames (the bulk
    // figures above are the real cost).
    std::printf("{\"name\":\"memory/one_wait_traced\",\"bytes\":%.0f,"
                "\"asio_frames_allocated\":\"%s\","
                "\"operator_new_sizes\":\"%s\",\"operator_new_net_bytes\":%ld}\n",
                pm.one_wait_bytes, pm.frames.c_str(), pm.news.c_str(), pm.new_net);
    std::fflush(stdout);
    summary += "memory " + std::to_string(long(sw.per_wait)) + " B per sleeping wait (target 512; bare timer coroutine " +
               std::to_string(long(bare.per_wait)) + " B; co_await form " + std::to_string(long(co_wait)) +
               " B over its caller's coroutine, " + std::to_string(long(ps.per_wait)) + " B with it)";

    // 2. 100,000 concurrent waits, per poll strategy
    {
        double rpw[2] = {0, 0};
        double vs[2] = {0, 0};
        double med[2] = {0, 0}, p99[2] = {0, 0};
        for (int strat = 0; strat < 2; ++strat) {
            scenario sc;
            sc.waits = big_n;
            sc.processing = sim::processing_time::uniform(1s, 60s);
            sc.pool = 16;
            sc.list_min_waits = strat == 0 ? 0 : 64;
            auto f = run_scenario(sc);
            const double requests = double(f.get_requests + f.list_requests);
            rpw[strat] = requests / double(f.waits);
            vs[strat] = f.virtual_s;
            med[strat] = quantile(f.active_to_return_s, 0.5);
            p99[strat] = quantile(f.active_to_return_s, 0.99);
            std::printf("{\"name\":\"many_waits/%s\",\"waits\":%zu,\"finished\":%s,\"active\":%zu,\"errors\":%s,"
                        "\"virtual_s\":%.1f,\"real_s\":%.2f,\"cpu_s\":%.2f,\"pool_bound\":%zu,\"sim_total_connections\":%llu,"
                        "\"get_requests\":%llu,\"list_requests\":%llu,\"requests_per_wait\":%.3f,"
                        "\"active_to_return_median_s\":%.2f,\"active_to_return_p99_s\":%.2f}\n",
                        strat == 0 ? "get_per_file" : "list_rounds", f.waits, f.finished ? "true" : "false", f.active,
                        errors_json(f).c_str(), f.virtual_s, f.real_s, f.cpu_s, sc.pool,
                        (unsigned long long)f.total_connections, (unsigned long long)f.get_requests,
                        (unsigned long long)f.list_requests, rpw[strat], med[strat], p99[strat]);
            std::fflush(stdout);
            if (strat == 1)
                summary += "; " + std::to_string(f.active) + "/" + std::to_string(f.waits) + " ACTIVE on " +
                           std::to_string(f.total_connections) + " connections";
        }
        std::printf("{\"name\":\"many_waits/comparison\",\"waits\":%zu,\"get_per_file_requests_per_wait\":%.3f,"
                    "\"list_rounds_requests_per_wait\":%.3f,\"fewer_requests_ratio\":%.1f,\"target_ratio\":4,"
                    "\"get_per_file_virtual_s\":%.1f,\"list_rounds_virtual_s\":%.1f,"
                    "\"get_per_file_active_to_return_median_s\":%.2f,\"list_rounds_active_to_return_median_s\":%.2f,"
                    "\"get_per_file_active_to_return_p99_s\":%.2f,\"list_rounds_active_to_return_p99_s\":%.2f}\n",
                    big_n, rpw[0], rpw[1], rpw[1] > 0 ? rpw[0] / rpw[1] : 0.0, vs[0], vs[1], med[0], med[1], p99[0], p99[1]);
        std::fflush(stdout);
        summary += "; requests per wait " + std::to_string(rpw[0]) + " -> " + std::to_string(rpw[1]);
    }

    // 2b. where files.list rounds start to pay: W waits among 2,000 files.
    if (crossover) {
        const std::size_t project = 2000;
        for (std::size_t w : {10, 25, 50, 100, 200, 500, 1000, 2000}) {
            double rpw[2] = {0, 0}, med[2] = {0, 0};
            for (int strat = 0; strat < 2; ++strat) {
                scenario sc;
                sc.waits = w;
                sc.extra_files = project - w;
                sc.processing = sim::processing_time::uniform(1s, 60s);
                sc.list_min_waits = strat == 0 ? 0 : 1;
                auto f = run_scenario(sc);
                rpw[strat] = double(f.get_requests + f.list_requests) / double(w);
                med[strat] = quantile(f.active_to_return_s, 0.5);
            }
            std::printf("{\"name\":\"list_crossover\",\"project_files\":%zu,\"waits\":%zu,"
                        "\"get_per_file_requests_per_wait\":%.3f,\"list_rounds_requests_per_wait\":%.3f,"
                        "\"get_per_file_active_to_return_median_s\":%.2f,\"list_rounds_active_to_return_median_s\":%.2f}\n",
                        project, w, rpw[0], rpw[1], med[0], med[1]);
            std::fflush(stdout);
        }
    }

    // 2b'. large videos: polls by size (client_options::poll_by_size) or not.
    if (large_n > 0) {
        double rpw[2] = {0, 0}, med[2] = {0, 0}, p99[2] = {0, 0}, vs[2] = {0, 0};
        for (int on = 0; on < 2; ++on) {
            scenario sc;
            sc.waits = large_n;
            sc.size_min = std::uint64_t(16) << 20;
            sc.size_max = std::uint64_t(2) << 30;
            sc.processing = sim::processing_time::uniform(5s, 30s);
            sc.per_mib = 250ms;
            sc.by_size = on == 1;
            auto f = run_scenario(sc);
            rpw[on] = double(f.get_requests + f.list_requests) / double(f.waits);
            med[on] = quantile(f.active_to_return_s, 0.5);
            p99[on] = quantile(f.active_to_return_s, 0.99);
            vs[on] = f.virtual_s;
            std::printf("{\"name\":\"large_files/%s\",\"waits\":%zu,\"finished\":%s,\"active\":%zu,\"errors\":%s,"
                        "\"size_mib\":[16,2048],\"processing\":\"5-30 s + 0.25 s per MiB\",\"virtual_s\":%.1f,"
                        "\"get_requests\":%llu,\"list_requests\":%llu,\"requests_per_wait\":%.2f,"
                        "\"active_to_return_median_s\":%.2f,\"active_to_return_p99_s\":%.2f}\n",
                        on ? "poll_by_size" : "plain_schedule", f.waits, f.finished ? "true" : "false", f.active,
                        errors_json(f).c_str(), f.virtual_s, (unsigned long long)f.get_requests,
                        (unsigned long long)f.list_requests, rpw[on], med[on], p99[on]);
            std::fflush(stdout);
        }
        std::printf("{\"name\":\"large_files/comparison\",\"waits\":%zu,\"plain_requests_per_wait\":%.2f,"
                    "\"by_size_requests_per_wait\":%.2f,\"fewer_requests_ratio\":%.2f,"
                    "\"plain_active_to_return_median_s\":%.2f,\"by_size_active_to_return_median_s\":%.2f,"
                    "\"plain_active_to_return_p99_s\":%.2f,\"by_size_active_to_return_p99_s\":%.2f,"
                    "\"plain_virtual_s\":%.1f,\"by_size_virtual_s\":%.1f}\n",
                    large_n, rpw[0], rpw[1], rpw[1] > 0 ? rpw[0] / rpw[1] : 0.0, med[0], med[1], p99[0], p99[1], vs[0],
                    vs[1]);
        std::fflush(stdout);
        summary += "; large files " + std::to_string(rpw[0]) + " -> " + std::to_string(rpw[1]) + " requests per wait";
    }

    // 2c. a million waits asleep at once (--million N).
    if (million_n > 0) {
        manual_clock clk;
        asio::io_context ctx;
        sim_with_waiting_client setup(ctx, &clk, million_n, 5, std::nullopt);
        auto& srv = setup.srv;
        auto& names = setup.names;
        gemini::client& cl = *setup.client;
        const std::size_t h0 = heap_in_use();
        const auto rt0 = real_clock::now();
        std::size_t ended = 0;
        for (auto& name : names)
            cl.async_wait_until_active(name, gemini::wait_options(), [&](resilience::error_code, gemini::file) { ++ended; });
        // Every wait answered once (a files.get or a list round), then all asleep.
        auto asleep = [&] {
            auto st = cl.stats();
            auto ps = cl.http().stats();
            return st.waits == million_n && ps.in_use == 0 && ps.waiting == 0 &&
                   clk.next_wakeup() && *clk.next_wakeup() > clk.now() + 500ms;
        };
        const bool ok = run_virtual(ctx, clk, asleep, fast_run(std::chrono::seconds(1800)));
        const std::size_t h1 = heap_in_use();
        struct rusage ru {};
        getrusage(RUSAGE_SELF, &ru);
        auto st = cl.stats();
        auto snap = srv.snapshot();
        std::printf("{\"name\":\"million_waits\",\"waits\":%zu,\"ok\":%s,\"asleep\":%llu,\"ended\":%zu,"
                    "\"peak_rss_mb\":%.1f,\"heap_in_use_mb\":%.1f,\"heap_added_by_waits_mb\":%.1f,"
                    "\"pool_bound\":%zu,\"pool_opened\":%zu,\"get_requests\":%llu,\"list_requests\":%llu,"
                    "\"threads\":1,\"real_s\":%.1f,\"note\":\"RSS and heap include the in-process simulator's 1M files\"}\n",
                    million_n, ok ? "true" : "false", (unsigned long long)st.waits, ended, double(ru.ru_maxrss) / 1024.0,
                    double(h1) / 1048576.0, (double(h1) - double(h0)) / 1048576.0,
                    cl.http().options().max_connections_per_origin, cl.http().stats().opened,
                    (unsigned long long)snap.requests(sim::route::get), (unsigned long long)snap.requests(sim::route::list),
                    real_secs(rt0));
        std::fflush(stdout);
    }

    // 3. outage
    {
        const duration out_start = 30s, out_len = 5min + 20s, open_timeout = 60s, poll_max = 10s;
        std::size_t client_during = 0, naive_during = 0;
        double client_resume = -1, naive_resume = -1;
        std::size_t client_active = 0, naive_active = 0;
        for (mode m : {mode::client, mode::per_operation}) {
            scenario sc;
            sc.waits = poll_n;
            sc.processing = sim::processing_time::uniform(60s, 600s);
            sc.deadline = 30min;
            sc.out = sim::outage(out_start, out_len, sim::route::get);
            sc.list_min_waits = 0;  // the fault is on files.get: measure the gates on that path
            sc.record = true;
            sc.m = m;
            auto f = run_scenario(sc);
            const time_point ob = f.t0 + out_start, oe = ob + out_len;
            std::size_t during = 0, during_503 = 0;
            std::optional<time_point> first_ok;
            for (auto& r : f.log) {
                if (r.target != sim::route::get) continue;
                if (r.at >= ob && r.at < oe) {
                    ++during;
                    if (r.status == 503) ++during_503;
                }
                if (r.at >= oe && r.status == 200 && !first_ok) first_ok = r.at;
            }
            const double resume = first_ok ? secs(*first_ok - oe) : -1;
            const char* nm = m == mode::client ? "outage/client_shared_breaker" : "outage/per_operation_retries";
            if (series_bin) print_series(nm, f, double(series_bin), secs(out_start), secs(out_start + out_len));
            std::printf("{\"name\":\"%s\",\"waits\":%zu,\"finished\":%s,\"active\":%zu,\"errors\":%s,"
                        "\"outage_s\":%.0f,\"requests_during_outage\":%zu,\"503_during_outage\":%zu,"
                        "\"open_periods\":%.1f,\"first_ok_poll_after_outage_s\":%.1f,\"resume_bound_s\":%.0f,"
                        "\"get_requests\":%llu,\"virtual_s\":%.1f,\"real_s\":%.2f,\"cpu_s\":%.2f}\n",
                        nm, f.waits, f.finished ? "true" : "false", f.active, errors_json(f).c_str(), secs(out_len),
                        during, during_503, secs(out_len) / secs(open_timeout), resume, secs(open_timeout + poll_max),
                        (unsigned long long)f.get_requests, f.virtual_s, f.real_s, f.cpu_s);
            std::fflush(stdout);
            if (m == mode::client) {
                client_during = during;
                client_resume = resume;
                client_active = f.active;
            } else {
                naive_during = during;
                naive_resume = resume;
                naive_active = f.active;
            }
        }
        std::printf("{\"name\":\"outage/comparison\",\"client_requests\":%zu,\"per_operation_requests\":%zu,"
                    "\"ratio\":%.4f,\"client_active\":%zu,\"per_operation_active\":%zu,\"waits\":%zu,"
                    "\"client_resume_s\":%.1f,\"per_operation_resume_s\":%.1f}\n",
                    client_during, naive_during, naive_during ? double(client_during) / double(naive_during) : 0.0,
                    client_active, naive_active, poll_n, client_resume, naive_resume);
        std::fflush(stdout);
        summary += "; outage " + std::to_string(client_during) + " vs " + std::to_string(naive_during) +
                   " requests, " + std::to_string(client_active) + "/" + std::to_string(poll_n) +
                   " ACTIVE, resumed after " + std::to_string(long(client_resume)) + " s";
    }

    // 4. quota storm: every files.get gets 429 + RetryInfo 10 s for 2 minutes.
    {
        const duration delay = 10s, storm_len = 2min;
        std::size_t c429[2] = {0, 0};
        for (mode m : {mode::client, mode::per_operation}) {
            scenario sc;
            sc.waits = poll_n;
            sc.processing = sim::processing_time::uniform(60s, 600s);
            sc.deadline = 30min;
            sim::fault fl(sim::fault_kind::rate_limit, sim::route::get);
            fl.retry_delay = delay;
            sc.storm = fl;
            sc.list_min_waits = 0;  // the fault is on files.get: measure the gates on that path
            sc.storm_length = storm_len;
            sc.record = true;
            sc.m = m;
            auto f = run_scenario(sc);
            std::size_t n429 = 0;
            std::map<long, std::size_t> per_period;
            for (auto& r : f.log)
                if (r.target == sim::route::get && r.status == 429) {
                    ++n429;
                    ++per_period[long(secs(r.at - f.t0) / secs(delay))];
                }
            std::size_t max_period = 0;
            std::string by_period = "[";
            for (auto& [k, v] : per_period) {
                max_period = std::max(max_period, v);
                if (k < long(secs(storm_len) / secs(delay)) + 1)
                    by_period += (by_period.size() > 1 ? "," : "") + std::to_string(v);
            }
            by_period += "]";
            const double periods = secs(storm_len) / secs(delay);
            const char* nm = m == mode::client ? "quota_storm/client_shared_cooldown" : "quota_storm/per_operation_retries";
            if (series_bin) print_series(nm, f, double(series_bin), 0, secs(storm_len));
            std::printf("{\"name\":\"%s\",\"waits\":%zu,\"finished\":%s,\"active\":%zu,\"errors\":%s,"
                        "\"storm_s\":%.0f,\"retry_delay_s\":%.0f,\"429s\":%zu,\"cooldown_periods\":%.0f,"
                        "\"429s_per_period\":%.1f,\"max_429s_in_a_period\":%zu,\"periods_with_429\":%zu,\"429s_by_period\":%s,"
                        "\"first_period_429s\":%zu,\"pool_bound\":%zu,\"within_target\":%s,"
                        "\"get_requests\":%llu,\"virtual_s\":%.1f,\"real_s\":%.2f,\"cpu_s\":%.2f}\n",
                        nm, f.waits, f.finished ? "true" : "false", f.active, errors_json(f).c_str(), secs(storm_len),
                        secs(delay), n429, periods, double(n429) / periods, max_period, per_period.size(), by_period.c_str(),
                        per_period.empty() ? std::size_t(0) : per_period.begin()->second, sc.pool,
                        max_period <= sc.pool ? "true" : "false",
                        (unsigned long long)f.get_requests, f.virtual_s, f.real_s, f.cpu_s);
            std::fflush(stdout);
            c429[m == mode::client ? 0 : 1] = n429;
        }
        std::printf("{\"name\":\"quota_storm/comparison\",\"client_429s\":%zu,\"per_operation_429s\":%zu,"
                    "\"ratio\":%.4f}\n",
                    c429[0], c429[1], c429[1] ? double(c429[0]) / double(c429[1]) : 0.0);
        summary += "; quota storm " + std::to_string(c429[0]) + " vs " + std::to_string(c429[1]) + " 429s";
    }
    std::printf("summary: %s; total %.1f s real, %.1f s CPU\n", summary.c_str(), real_secs(start),
                double(std::clock()) / CLOCKS_PER_SEC);
    return 0;
}
