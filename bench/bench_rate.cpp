// The adaptive rate gate against a simulator that accepts N files.get a second
// (its quota: 429 with RetryInfo past it), gate off vs on side by side in one
// run, in virtual time (the client and the simulator on ONE io_context and one
// testing::manual_clock; 50 ms per request).
//
//  - burst: C calls of files.get started at once, each retried until it
//    succeeds (max_retries 100): 429s, accepted requests, virtual time to
//    finish, goodput (accepted per virtual second), calls that failed.
//  - closed loop: W workers calling files.get back to back for S virtual
//    seconds: 429s, accepted, goodput, 429s per accepted request, and the
//    same in the second half (after the gate has settled).
//
// Prints one JSON object per line (one per mode, then a comparison with the
// on/off ratios), then a one-line summary.
//
// Run: build/bench/bench_rate [--rate N] [--calls C,C,...] [--workers W] [--span S]
#include "bench_common.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

using bench::secs;

namespace {

const std::string key = "bench-rate-key-41c9";

struct figures {
    std::uint64_t ok = 0, throttled = 0;            // files.get answered 200 / 429
    std::uint64_t ok_late = 0, throttled_late = 0;  // the same in the second half (closed loop)
    std::uint64_t calls = 0, failed = 0, rate_waits = 0;
    double virtual_s = 0, real_s = 0;
    bool finished = false;
};

// `calls` > 0: a burst of that many calls; else `workers` in a closed loop for `span`.
figures run(bool gate, std::uint64_t rate, int calls, int workers, duration span) {
    sim::config cfg;
    cfg.record_requests = true;
    bench::sim_stack st(key, cfg);
    auto& clk = st.clk;
    auto& ctx = st.ctx;
    auto& srv = st.srv;
    const std::string name = srv.add_file("clip", "video/mp4");
    auto slow = sim::fault::sometimes(sim::fault_kind::latency, sim::route::get, 1.0);
    slow.latency = 50ms;
    srv.add_fault(slow);
    srv.add_quota(sim::quota(sim::route::get, rate, 1s));

    gemini::client_options o = st.client_options(5);
    o.retry.max_retries = 100;
    o.http.max_connections_per_origin = 1024;
    o.rate_gate.enabled = gate;
    gemini::client c(ctx.get_executor(), o);

    figures f;
    const auto real0 = real_clock::now();
    const time_point t0 = clk.now(), end = t0 + span, half = t0 + span / 2;
    int done = 0;
    const int n = calls > 0 ? calls : workers;
    for (int i = 0; i < n; ++i)
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            do {
                auto r = co_await c.get(name);
                ++f.calls;
                if (!r) ++f.failed;
            } while (calls == 0 && clk.now() < end);
            ++done;
        }, asio::detached);
    f.finished = run_virtual(ctx, clk, [&] { return done == n; }, bench::fast_run());
    f.virtual_s = secs(clk.now() - t0);
    f.real_s = std::chrono::duration<double>(real_clock::now() - real0).count();
    for (const auto& r : srv.requests()) {
        if (r.target != sim::route::get) continue;
        const bool late = r.at >= half;
        if (r.status == 200) {
            ++f.ok;
            if (late) ++f.ok_late;
        } else if (r.status == 429) {
            ++f.throttled;
            if (late) ++f.throttled_late;
        }
    }
    f.rate_waits = c.stats().rate_waits;
    srv.stop();
    return f;
}

double ratio(double a, double b) { return b ? a / b : 0; }

void print(const char* scenario, const char* mode, std::uint64_t rate, int size, const figures& f, bool loop) {
    std::printf("{\"name\":\"%s/%s\",\"server_rate\":%llu,\"%s\":%d,\"finished\":%s,\"calls\":%llu,"
                "\"failed_calls\":%llu,\"accepted\":%llu,\"429s\":%llu,\"429s_per_accepted\":%.3f,"
                "\"goodput_per_s\":%.2f,\"virtual_s\":%.1f,",
                scenario, mode, (unsigned long long)rate, loop ? "workers" : "burst_calls", size,
                f.finished ? "true" : "false", (unsigned long long)f.calls, (unsigned long long)f.failed,
                (unsigned long long)f.ok, (unsigned long long)f.throttled, ratio(double(f.throttled), double(f.ok)),
                ratio(double(f.ok), f.virtual_s), f.virtual_s);
    if (loop)
        std::printf("\"second_half_accepted\":%llu,\"second_half_429s\":%llu,", (unsigned long long)f.ok_late,
                    (unsigned long long)f.throttled_late);
    std::printf("\"rate_waits\":%llu,\"real_s\":%.2f}\n", (unsigned long long)f.rate_waits, f.real_s);
    std::fflush(stdout);
}

const char* arg(int argc, char** argv, const char* name) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
    return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
    const auto start = real_clock::now();
    std::uint64_t rate = 10;
    std::vector<int> bursts{50, 500};
    int workers = 50;
    int span_s = 120;
    if (const char* v = arg(argc, argv, "--rate")) rate = std::strtoull(v, nullptr, 10);
    if (const char* v = arg(argc, argv, "--workers")) workers = std::atoi(v);
    if (const char* v = arg(argc, argv, "--span")) span_s = std::atoi(v);
    if (const char* v = arg(argc, argv, "--calls")) {
        bursts.clear();
        for (const char* p = v; *p;) {
            char* e = nullptr;
            bursts.push_back(int(std::strtol(p, &e, 10)));
            p = *e == ',' ? e + 1 : e;
            if (e == p && *p) break;
        }
    }
    if (rate == 0 || workers <= 0 || span_s <= 0 || bursts.empty()) {
        std::fprintf(stderr, "usage: bench_rate [--rate N>0] [--calls C,C,...] [--workers W>0] [--span S>0]\n");
        return 2;
    }
    std::string summary;
    for (int calls : bursts) {
        const figures off = run(false, rate, calls, 0, {});
        print("burst", "gate_off", rate, calls, off, false);
        const figures on = run(true, rate, calls, 0, {});
        print("burst", "gate_on", rate, calls, on, false);
        std::printf("{\"name\":\"burst/comparison\",\"burst_calls\":%d,\"429s_on_over_off\":%.3f,"
                    "\"goodput_on_over_off\":%.3f,\"time_on_over_off\":%.3f}\n",
                    calls, ratio(double(on.throttled), double(off.throttled)),
                    ratio(ratio(double(on.ok), on.virtual_s), ratio(double(off.ok), off.virtual_s)),
                    ratio(on.virtual_s, off.virtual_s));
        std::fflush(stdout);
        char buf[200];
        std::snprintf(buf, sizeof buf, "%sburst %d: 429s %llu vs %llu, %.1f vs %.1f s", summary.empty() ? "" : "; ",
                      calls, (unsigned long long)on.throttled, (unsigned long long)off.throttled, on.virtual_s,
                      off.virtual_s);
        summary += buf;
    }
    {
        const duration span = std::chrono::seconds(span_s);
        const figures off = run(false, rate, 0, workers, span);
        print("closed_loop", "gate_off", rate, workers, off, true);
        const figures on = run(true, rate, 0, workers, span);
        print("closed_loop", "gate_on", rate, workers, on, true);
        std::printf("{\"name\":\"closed_loop/comparison\",\"workers\":%d,\"429s_on_over_off\":%.3f,"
                    "\"second_half_429s_on_over_off\":%.3f,\"goodput_on_over_off\":%.3f}\n",
                    workers, ratio(double(on.throttled), double(off.throttled)),
                    ratio(double(on.throttled_late), double(off.throttled_late)),
                    ratio(ratio(double(on.ok), on.virtual_s), ratio(double(off.ok), off.virtual_s)));
        char buf[200];
        std::snprintf(buf, sizeof buf, "; closed loop %d workers: 429s %llu vs %llu", workers,
                      (unsigned long long)on.throttled, (unsigned long long)off.throttled);
        summary += buf;
    }
    std::printf("summary (gate on vs off): %s; total %.1f s real, %.1f s CPU\n", summary.c_str(),
                std::chrono::duration<double>(real_clock::now() - start).count(),
                double(std::clock()) / CLOCKS_PER_SEC);
    return 0;
}
