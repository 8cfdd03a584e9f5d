// The shared gates under random faults and in an outage: what chooses the
// Gemini client's default breaker and retry budget (docs/design-notes.md,
// "Breaker and budget defaults, by measurement"). Everything runs in virtual
// time on ONE io_context and one testing::manual_clock.
//
//  1. breaker/random_503: 1,000 concurrent wait_until_active against the
//     simulator with a share of files.get answered 503 at random (5%, 10%,
//     30%): breaker openings and poll-seconds spent parked in the breaker
//     (the number of parked polls integrated over time), per rule, side by
//     side: the seed's rule (3 consecutive failures, fixed 60 s break) and
//     the failure-rate windows.
//  2. breaker/outage: the same 1,000 waits, then every files.get fails
//     (503) from t = 60 s for an hour: time from the outage's start to the
//     breaker's opening, the 503s served before it opened, probes made during
//     the hour. breaker/outage_lone: one wait alone, the failures before the
//     breaker opens.
//  3. budget/random: 1,000 workers run operations (one simulated request of
//     100-300 ms each, failing at random with a retryable 5xx at 5%, 10%, 16%,
//     20%, 30%, 50%, 70%, and 100% for a full outage) through one pipeline with the
//     client's retry policy: operations failed, failed by the budget, and
//     attempts per operation (load multiplication), for plain per-operation
//     retries and for several budgets.
//
// Prints one JSON object per line.
// Run: build/bench/bench_breaker [--waits N] [--workers N] [--ops N] [--rules a,b]
//      [--skip-breaker 1] [--skip-budget 1]
#include "bench_common.hpp"

#include <resilience/retry.hpp>
#include <resilience/retry_budget.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

using bench::fast_run;
using bench::rethrow_void;
using bench::secs;

namespace {

const std::string key = "bench-breaker-key-3f9a";

struct rule {
    const char* name;
    resilience::breaker_rules rules;
};

std::vector<rule> rules_compared() {
    std::vector<rule> v;
    v.push_back({"seed_consecutive_3", resilience::breaker_rules{}});
    auto w = [](double ratio, int min, std::chrono::milliseconds sampling) {
        resilience::breaker_rules r;
        r.failure_ratio = ratio;
        r.minimum_throughput = min;
        r.sampling_duration = sampling;
        r.break_multiplier = 2;
        r.max_break = 5min;
        return r;
    };
    v.push_back({"window_0.5_min100_10s", w(0.5, 100, 10s)});
    v.push_back({"window_0.5_min100_30s", w(0.5, 100, 30s)});
    v.push_back({"window_0.2_min100_30s", w(0.2, 100, 30s)});
    auto fixed = w(0.5, 100, 10s);
    fixed.break_multiplier = 1;
    fixed.max_break = 0ms;
    v.push_back({"window_0.5_min100_10s_fixed_break", fixed});
    for (int n : {12, 20}) {
        auto st = fixed;
        st.failure_streak = n;
        v.push_back({n == 12 ? "window_0.5_min100_10s_streak12" : "window_0.5_min100_10s_streak20", st});
    }
    v.push_back({"gemini_client_default", gemini::default_breaker_window()});
    return v;
}

struct wait_figures {
    bool finished = false;
    std::size_t active = 0, errors = 0;
    std::size_t opens = 0, opens_from_closed = 0, probe_failures = 0;
    double parked_poll_s = 0;  // sum over polls of the time spent parked in the breaker
    double virtual_s = 0, real_s = 0;
    std::uint64_t get_requests = 0, get_503 = 0;
    std::optional<double> first_open_s;  // since t0
    std::vector<sim::request_record> log;
    time_point t0{};
};

struct wait_scenario {
    std::size_t waits = 1000;
    double p503 = 0;
    std::optional<sim::outage> out;
    duration deadline = 3h;
    resilience::breaker_rules rules{};
    bool record = false;
};

wait_figures run_waits(const wait_scenario& sc) {
    wait_figures f;
    sim::config cfg;
    cfg.processing = sim::processing_time::uniform(60s, 600s);
    cfg.record_requests = sc.record;
    cfg.seed = 3;
    bench::sim_stack st(key, cfg);
    auto& clk = st.clk;
    auto& ctx = st.ctx;
    auto& srv = st.srv;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < sc.waits; ++i) names.push_back(srv.add_file("x"));
    if (sc.p503 > 0) srv.add_fault(sim::fault::sometimes(sim::fault_kind::overloaded, sim::route::get, sc.p503));
    if (sc.out) srv.add_outage(*sc.out);

    const time_point t0 = clk.now();
    f.t0 = t0;
    gemini::client_options opts = st.client_options(5);
    opts.http.max_connections_per_origin = 16;
    opts.breaker_window = sc.rules;
    opts.on_event = [&](const resilience::event& e) {
        if (e.type != resilience::event_type::breaker_transition || e.to != resilience::breaker_state::open) return;
        ++f.opens;
        if (e.from == resilience::breaker_state::closed) ++f.opens_from_closed;
        if (e.from == resilience::breaker_state::half_open) ++f.probe_failures;
        if (!f.first_open_s) f.first_open_s = secs(clk.now() - t0);
    };
    gemini::client cl(ctx.get_executor(), std::move(opts));

    std::size_t done = 0;
    bool stop = false;
    // Parked polls integrated over virtual time, sampled every 100 ms.
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        const duration step = 100ms;
        while (!stop) {
            f.parked_poll_s += double(cl.breaker().waiters()) * secs(step);
            (void)co_await clk.sleep_until(clk.now() + step);
        }
    }, rethrow_void);
    for (auto& name : names) {
        std::string nm = name;
        gemini::wait_options w;
        w.deadline = t0 + sc.deadline;
        asio::co_spawn(ctx, cl.wait_until_active(std::move(nm), std::move(w))(asio::use_awaitable),
                       [&](std::exception_ptr e, resilience::result<gemini::file> r) {
                           rethrow_void(e);
                           ++done;
                           if (r && r->state == gemini::file_state::active) ++f.active;
                           else ++f.errors;
                       });
    }
    const auto rt0 = real_clock::now();
    f.finished = run_virtual(ctx, clk, [&] { return done == sc.waits; }, fast_run());
    stop = true;
    run_virtual(ctx, clk, [&] { return clk.sleepers() == 0; }, fast_run());
    f.real_s = std::chrono::duration<double>(real_clock::now() - rt0).count();
    f.virtual_s = secs(clk.now() - t0);
    auto s = srv.snapshot();
    f.get_requests = s.requests(sim::route::get);
    if (sc.record) {
        f.log = srv.requests();
        for (auto& r : f.log)
            if (r.target == sim::route::get && r.status == 503) ++f.get_503;
    }
    return f;
}

// ------------------------------------------------------------------ budget

struct budget_figures {
    std::size_t ops = 0, failed = 0, failed_budget = 0, failed_max_retries = 0;
    std::uint64_t attempts = 0;
    double min_tokens = 0;
};

struct budget_scenario {
    std::size_t workers = 1000, ops_each = 10;
    double p = 0;
    std::optional<resilience::budget_config> budget;  // empty: plain per-operation retries
};

budget_figures run_budget(const budget_scenario& sc) {
    budget_figures f;
    manual_clock clk;
    asio::io_context ctx;
    resilience::retry_options ro;
    ro.time = &clk;
    ro.seed = 11;
    std::shared_ptr<resilience::retry_budget> budget;
    if (sc.budget) budget = std::make_shared<resilience::retry_budget>(*sc.budget);
    ro.budget = budget;
    resilience::pipeline p(std::move(ro));
    f.min_tokens = budget ? budget->tokens() : 0;
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> u(0, 1);
    std::size_t done_workers = 0;
    auto worker = [&]() -> asio::awaitable<void> {
        for (std::size_t i = 0; i < sc.ops_each; ++i) {
            auto op = [&](const resilience::attempt_context&) -> asio::awaitable<resilience::result<int>> {
                ++f.attempts;
                const duration latency = std::chrono::milliseconds(100 + static_cast<int>(200 * u(rng)));
                (void)co_await clk.sleep_until(clk.now() + latency);
                if (u(rng) < sc.p)
                    co_return resilience::failure(make_error_code(resilience::http::errc::server_error), "503");
                co_return 1;
            };
            auto r = co_await p.run(op);
            ++f.ops;
            if (!r) {
                ++f.failed;
                if (r.error().code == resilience::errc::retry_budget_exhausted) ++f.failed_budget;
                else ++f.failed_max_retries;
            }
            if (budget) f.min_tokens = std::min(f.min_tokens, budget->tokens());
        }
        ++done_workers;
    };
    for (std::size_t w = 0; w < sc.workers; ++w) asio::co_spawn(ctx, worker(), rethrow_void);
    run_virtual(ctx, clk, [&] { return done_workers == sc.workers; }, fast_run());
    return f;
}

std::size_t arg(int argc, char** argv, const char* name, std::size_t def) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], name) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
    return def;
}

// --rules a,b: only the rules whose name contains one of the comma-separated parts.
bool rule_selected(int argc, char** argv, const char* name) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::strcmp(argv[i], "--rules") != 0) continue;
        std::string list = argv[i + 1];
        for (std::size_t b = 0; b <= list.size();) {
            std::size_t e = list.find(',', b);
            if (e == std::string::npos) e = list.size();
            if (e > b && std::string(name).find(list.substr(b, e - b)) != std::string::npos) return true;
            b = e + 1;
        }
        return false;
    }
    return true;
}

const char* opt(const std::optional<double>& v, char* buf) {
    if (!v) return "null";
    std::snprintf(buf, 32, "%.2f", *v);
    return buf;
}

}  // namespace

int main(int argc, char** argv) {
    const std::size_t waits = arg(argc, argv, "--waits", 1000);
    const std::size_t workers = arg(argc, argv, "--workers", 1000);
    const std::size_t ops = arg(argc, argv, "--ops", 10);
    const bool skip_breaker = arg(argc, argv, "--skip-breaker", 0) != 0;
    const bool skip_budget = arg(argc, argv, "--skip-budget", 0) != 0;
    char b1[32], b2[32];

    if (!skip_breaker) {
        // 1. random 503s
        for (double p : {0.05, 0.10, 0.30}) {
            for (const auto& r : rules_compared()) {
                if (!rule_selected(argc, argv, r.name)) continue;
                wait_scenario sc;
                sc.waits = waits;
                sc.p503 = p;
                sc.rules = r.rules;
                auto f = run_waits(sc);
                std::printf("{\"name\":\"breaker/random_503\",\"rule\":\"%s\",\"p503\":%.2f,\"waits\":%zu,"
                            "\"finished\":%s,\"active\":%zu,\"errors\":%zu,\"openings\":%zu,"
                            "\"openings_from_closed\":%zu,\"parked_poll_s\":%.0f,\"parked_poll_s_per_wait\":%.2f,"
                            "\"get_requests\":%llu,\"virtual_s\":%.0f,\"real_s\":%.1f}\n",
                            r.name, p, waits, f.finished ? "true" : "false", f.active, f.errors, f.opens,
                            f.opens_from_closed, f.parked_poll_s, f.parked_poll_s / double(waits),
                            (unsigned long long)f.get_requests, f.virtual_s, f.real_s);
                std::fflush(stdout);
            }
        }
        // 2. outage: 1 hour from t = 60 s
        const duration out_start = 60s, out_len = 1h;
        for (const auto& r : rules_compared()) {
            if (!rule_selected(argc, argv, r.name)) continue;
            wait_scenario sc;
            sc.waits = waits;
            sc.rules = r.rules;
            sc.out = sim::outage(out_start, out_len, sim::route::get);
            sc.record = true;
            auto f = run_waits(sc);
            std::size_t before_open = 0, during = 0;
            std::optional<double> to_open, resume;
            for (auto& q : f.log)
                if (q.target == sim::route::get && q.status == 200 && q.at >= f.t0 + out_start + out_len) {
                    resume = secs(q.at - (f.t0 + out_start + out_len));
                    break;
                }
            if (f.first_open_s) to_open = *f.first_open_s - secs(out_start);
            for (auto& q : f.log) {
                if (q.target != sim::route::get || q.status != 503) continue;
                ++during;
                if (f.first_open_s && secs(q.at - f.t0) <= *f.first_open_s) ++before_open;
            }
            std::printf("{\"name\":\"breaker/outage\",\"rule\":\"%s\",\"waits\":%zu,\"outage_s\":%.0f,"
                        "\"time_to_open_s\":%s,\"503_before_open\":%zu,\"503_total\":%zu,\"openings\":%zu,"
                        "\"probe_failures\":%zu,\"first_ok_poll_after_outage_s\":%s,\"active\":%zu,\"errors\":%zu,\"parked_poll_s\":%.0f,\"virtual_s\":%.0f,"
                        "\"real_s\":%.1f}\n",
                        r.name, waits, secs(out_len), opt(to_open, b1), before_open, during, f.opens, f.probe_failures,
                        opt(resume, b2),
                        f.active, f.errors, f.parked_poll_s, f.virtual_s, f.real_s);
            std::fflush(stdout);
        }
        // A lone wait in an outage from its first poll on.
        for (const auto& r : rules_compared()) {
            if (!rule_selected(argc, argv, r.name)) continue;
            wait_scenario sc;
            sc.waits = 1;
            sc.rules = r.rules;
            sc.out = sim::outage(0s, 10min, sim::route::get);
            sc.deadline = 20min;
            sc.record = true;
            auto f = run_waits(sc);
            std::size_t before_open = 0;
            for (auto& q : f.log)
                if (q.target == sim::route::get && q.status == 503 && f.first_open_s &&
                    secs(q.at - f.t0) <= *f.first_open_s)
                    ++before_open;
            std::printf("{\"name\":\"breaker/outage_lone_wait\",\"rule\":\"%s\",\"time_to_open_s\":%s,"
                        "\"503_before_open\":%zu,\"openings\":%zu}\n",
                        r.name, opt(f.first_open_s, b1), before_open, f.opens);
            std::fflush(stdout);
        }
    }

    if (!skip_budget) {
        // 3. budget
        std::vector<std::pair<const char*, std::optional<resilience::budget_config>>> budgets = {
            {"plain_per_operation", std::nullopt},
            {"budget_100_0.1", resilience::budget_config{100, 0.1}},
            {"budget_100_0.5", resilience::budget_config{100, 0.5}},
            {"budget_100_1", resilience::budget_config{100, 1.0}},
            {"budget_default", resilience::budget_config{}},
            {"gemini_client_default", resilience::gemini::client_options{}.budget},
        };
        for (double p : {0.05, 0.10, 0.16, 0.20, 0.30, 0.50, 0.70, 1.0}) {
            for (auto& [nm, b] : budgets) {
                budget_scenario sc;
                sc.workers = workers;
                sc.ops_each = p == 1.0 ? 1 : ops;
                sc.p = p;
                sc.budget = b;
                auto f = run_budget(sc);
                std::printf("{\"name\":\"budget/random_fault\",\"budget\":\"%s\",\"p\":%.2f,\"ops\":%zu,"
                            "\"failed\":%zu,\"failed_by_budget\":%zu,\"failed_max_retries\":%zu,"
                            "\"failed_by_budget_pct\":%.2f,\"attempts_per_op\":%.3f,\"min_tokens\":%.1f}\n",
                            nm, p, f.ops, f.failed, f.failed_budget, f.failed_max_retries,
                            100.0 * double(f.failed_budget) / double(f.ops), double(f.attempts) / double(f.ops),
                            f.min_tokens);
                std::fflush(stdout);
            }
        }
    }
    return 0;
}
