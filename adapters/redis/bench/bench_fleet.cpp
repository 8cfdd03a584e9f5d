// bench_fleet: fleet gates against per-process gates, side by side in one run,
// one JSON line per measurement.
//
//   bench_fleet [--procs N] [--waits N] [--pool N] [--rate N] [--series-bin S]
//               [--members N] [--calls N] [--only processes|storm|model] [--redis-server PATH]
//
// Starts its own redis-server on a loopback port (as the tests do) and stops
// it by its PID at the end.
//
// Part 1, "processes/..." lines (real time): --procs processes (this program
// with --member) of --waits wait_until_active each, one API key, against one
// simulator (in this process, on its own thread, recording every request),
// each process with a Gemini client of --pool connections, its breaker at
// threshold 5 with a 2 s break (the failure-rate window off), list rounds off
// (the faults hit files.get). Per scenario the processes start, join Redis
// (fleet gates), then all begin at one signal:
//   * storm: every files.get meets 429 + RetryInfo 2 s for 10 s; counted:
//     429s per 2 s cooldown period across the fleet (target: at most one
//     process's pool bound per period, the first included), local vs
//     fleet without the onset cap (fleet_options::onset_cap = 0) vs fleet;
//   * outage: every files.get meets 503 for 10 s; counted: failing requests
//     across the fleet per 2 s open period (target: about one threshold plus
//     a probe per period for the whole fleet), local vs fleet;
//   * rate: the simulator accepts --rate files.get a second (429 + RetryInfo
//     past it), the adaptive rate gate on: 429s and goodput, per-process rate
//     gates vs the fleet's (cuts shared through Redis);
//   * redis_killed: the storm with fleet gates, Redis killed (SIGKILL) at 5 s:
//     every wait still ends ACTIVE.
// Every wait must end ACTIVE (the line says how many did). --only storm runs
// the storm scenario alone (both kinds of gates), --only processes part 1,
// --only model part 2.
//
// Part 2, the "model" lines (virtual time, in one process): --members gate
// sets with their own Redis connections driven in rounds on one manual
// clock against a model service (open timeout 10 s, threshold 5, a 5 s
// pushback per 429):
//   * outage, storm, redis_killed: as above, per round;
//   * success_path: ns per CLOSED admission + success + cooldown check, local
//     gates vs gates linked to a joined fleet (the success path's cost is a
//     few nanoseconds: only an in-process loop measures it).
//
// --series-bin S adds, before each processes/storm, /outage and /rate line, a
// {"series":...} line: the files.get answers per S-second bin by status
// (scripts/plot_fleet.py draws docs/fleet-*.svg from them).
#include "../test/redis_server.hpp"

#include <resilience/circuit_breaker.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/gemini/client.hpp>
#include <resilience/onset_gate.hpp>
#include <resilience/redis/fleet.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/retry_budget.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <numeric>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace resilience;
namespace test_server = resilience::redis::test_server;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

struct member {
    std::shared_ptr<circuit_breaker> breaker;
    std::shared_ptr<cooldown> cool = std::make_shared<cooldown>();
    std::shared_ptr<onset_gate> onset = std::make_shared<onset_gate>();  // linked with the fleet
    std::unique_ptr<redis::fleet> link;
};

// Each scenario gets a scope of its own (Redis keeps the last one's state).
std::uint64_t scope = 0;
int scenarios_run = 0;

std::vector<member> make_members(asio::io_context& ctx, testing::manual_clock& clk, int n, const std::string& url) {
    scope = scope_hash("bench.example#" + std::to_string(++scenarios_run));
    std::vector<member> ms(static_cast<std::size_t>(n));
    for (auto& m : ms) {
        breaker_options b;
        b.config.failure_threshold = 5;
        b.config.open_timeout = 10s;
        b.time = &clk;
        m.breaker = std::make_shared<circuit_breaker>(b);
        if (!url.empty()) {
            redis::fleet_options o;
            o.url = url;
            o.timeout = 2000ms;
            o.reconnect.initial_delay = 5ms;
            o.reconnect.max_delay = 20ms;
            m.link = std::make_unique<redis::fleet>(ctx.get_executor(), o);
            gate_set g;
            g.scope = scope;
            g.breaker = m.breaker;
            g.cooldown = m.cool;
            g.onset = m.onset;
            m.link->attach(g);
        }
    }
    return ms;
}

// Runs the io_context until every linked member is settled (joined and idle)
// or, with Redis gone, until each has said so (not joined); then 2 ms more
// for the messages others published to arrive (pub/sub has no barrier: the
// one real-time wait of the benchmark).
void settle(asio::io_context& ctx, std::vector<member>& ms) {
    for (;;) {
        bool done = true;
        for (auto& m : ms)
            if (m.link && !(m.link->idle() || !m.link->joined())) done = false;
        if (done) break;
        ctx.run_one();
    }
    bool linked = false;
    for (auto& m : ms) linked = linked || m.link;
    if (linked) {
        ctx.run_for(std::chrono::milliseconds(2));
        if (ctx.stopped()) ctx.restart();
    }
}

// Before a run: every member joined.
void join(asio::io_context& ctx, std::vector<member>& ms) {
    for (;;) {
        bool done = true;
        for (auto& m : ms)
            if (m.link && !(m.link->joined() && m.link->idle())) done = false;
        if (done) return;
        ctx.run_one();
    }
}

void stop(asio::io_context& ctx, std::vector<member>& ms) {
    for (auto& m : ms)
        if (m.link) m.link->stop();
    ctx.run();
    ctx.restart();
}

struct outcome {
    long sent = 0, refused = 0;
};

// What one member does in a round: true when its call reached the service.
struct scenario {
    duration step;  // virtual time between rounds
    std::function<bool(member&, time_point now)> call;
};

// outage: every call asks the breaker; admitted ones fail at the service (5xx).
const scenario outage{1s, [](member& m, time_point) {
                          auto r = m.breaker->try_acquire();
                          if (!r.permit) return false;
                          r.permit.failed(error_kind::retryable_server);
                          return true;
                      }};

// The quota storm: every call that is not held by the cooldown meets a 429
// whose pushback holds the scope 5 s.
const scenario storm{250ms, [](member& m, time_point now) {
                         if (m.cool->blocked_until(scope, now)) return false;
                         m.cool->defer(scope, now + 5s, now);  // a 429
                         return true;
                     }};

// `calls` rounds of one call per member (one after the other); Redis killed
// at round `kill_at`.
outcome rounds(asio::io_context& ctx, testing::manual_clock& clk, std::vector<member>& ms, int calls,
               const scenario& sc, test_server::redis_server* server = nullptr, int kill_at = -1) {
    outcome o;
    for (int round = 0; round < calls; ++round) {
        if (server && round == kill_at) server->kill();
        for (auto& m : ms) {
            if (sc.call(m, clk.now())) {
                ++o.sent;
                settle(ctx, ms);  // the members call one after the other
            } else {
                ++o.refused;
            }
        }
        settle(ctx, ms);
        clk.advance(sc.step);
    }
    return o;
}

// Runs f(ctx, clk, members) on fresh members (linked to `url` unless empty),
// joined first and stopped after.
template <class F>
void with_members(int n, const std::string& url, F f) {
    asio::io_context ctx;
    testing::manual_clock clk;
    auto ms = make_members(ctx, clk, n, url);
    join(ctx, ms);
    f(ctx, clk, ms);
    stop(ctx, ms);
}

// The success path of a warm scope: the cooldown check, the breaker's
// CLOSED admission and success, and (linked gates) the onset gate's warm
// check and success, as the Gemini client makes them per request.
double success_ns(std::vector<member>& ms, long iterations) {
    auto& m = ms.front();
    testing::manual_clock& clk = static_cast<testing::manual_clock&>(m.breaker->time());
    onset_gate* onset = m.onset->linked() ? m.onset.get() : nullptr;
    if (onset) onset->succeeded(clk.now());  // warm: a success was seen
    const auto t0 = std::chrono::steady_clock::now();
    long admitted = 0;
    for (long i = 0; i < iterations; ++i) {
        if (!m.cool->never_deferred() && m.cool->blocked_until(scope, clk.now())) continue;
        time_point now{};  // the client reads it anyway (its gates' recheck); counted here for the fleet only
        if (onset) {
            now = clk.now();
            if (!onset->warm(now)) continue;
        }
        breaker_permit p;
        if (m.breaker->try_acquire_closed(p)) {
            ++admitted;
            p.succeeded();
            if (onset) onset->succeeded(now);
        }
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (admitted != iterations) std::fprintf(stderr, "bench_fleet: success path refused calls\n");
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(iterations);
}

// ---------------------------------------------------------------------------
// Part 1: real processes.

namespace sim = resilience::sim;
namespace gemini = resilience::gemini;

// One key for the whole fleet. It reaches only the simulator: Redis sees the
// hashed scope.
const std::string api_key = "bench-fleet-key-5d20";
constexpr duration storm_delay = 2s, storm_length = 10s;
constexpr duration outage_length = 10s, open_timeout = 2s;
constexpr int threshold = 5;

double secs(duration d) { return std::chrono::duration<double>(d).count(); }

// --member BASE_URL REDIS_URL|- RATE_GATE(0|1) POOL SEED ONSET_CAP NAME,NAME,...
// (ONSET_CAP: fleet_options::onset_cap, -1 = its default)
// Prints "ready" once its client is made (and joined), starts every wait at
// the "go" line on its standard input, then prints one JSON line and exits.
int member_main(int argc, char** argv) {
    if (argc != 9) return 2;
    const std::string base = argv[2], redis_url = argv[3];
    const int onset_cap = std::atoi(argv[7]);
    std::vector<std::string> names;
    std::stringstream list(argv[8]);
    for (std::string n; std::getline(list, n, ',');) names.push_back(n);
    asio::io_context ctx;
    std::shared_ptr<redis::fleet> link;
    if (redis_url != "-") {
        redis::fleet_options fo;
        fo.url = redis_url;
        fo.timeout = 1000ms;  // a loaded machine: 8 processes, a simulator and Redis on few cores
        fo.reconnect.initial_delay = 20ms;
        fo.reconnect.max_delay = 200ms;
        if (onset_cap >= 0) fo.onset_cap = onset_cap;
        link = std::make_shared<redis::fleet>(ctx.get_executor(), fo);
    }
    gemini::client_options o;
    o.api_key = api_key;
    o.base_url = base;
    o.seed = std::strtoull(argv[6], nullptr, 10);
    o.http.max_connections_per_origin = static_cast<std::size_t>(std::atoi(argv[5]));
    o.poll_list_min_waits = 0;  // the faults hit files.get
    o.retry.max_retries = 20;
    o.breaker.failure_threshold = threshold;
    o.breaker.open_timeout = std::chrono::duration_cast<std::chrono::milliseconds>(open_timeout);
    o.breaker_window = breaker_rules{};  // the window off: the consecutive threshold alone
    o.rate_gate.enabled = std::string(argv[4]) == "1";
    o.fleet = link;
    gemini::client cl(ctx.get_executor(), o);
    if (link)
        while (!(link->joined() && link->idle())) ctx.run_one();
    std::printf("ready\n");
    std::fflush(stdout);
    char line[16];
    if (!std::fgets(line, sizeof line, stdin)) return 3;
    std::size_t done = 0, active = 0;
    std::map<std::string, std::size_t> errors;
    const time_point deadline = steady_clock().now() + 15min;
    for (const auto& n : names) {
        gemini::wait_options w;
        w.deadline = deadline;
        cl.async_wait_until_active(n, std::move(w), [&](error_code ec, gemini::file f) {
            ++done;
            if (!ec && f.state == gemini::file_state::active) ++active;
            else ++errors[ec ? ec.message() : "not active"];
        });
    }
    while (done < names.size()) ctx.run_one();
    const auto cs = cl.stats();
    const auto fs = link ? link->stats() : redis::fleet_stats{};
    std::printf("{\"active\":%zu,\"errors\":%zu,\"attempts\":%llu,\"rate_waits\":%llu,\"fallbacks\":%llu,"
                "\"cuts_sent\":%llu,\"cuts_applied\":%llu}\n",
                active, names.size() - active, (unsigned long long)cs.attempts, (unsigned long long)cs.rate_waits,
                (unsigned long long)fs.fallbacks, (unsigned long long)fs.cuts_sent,
                (unsigned long long)fs.cuts_applied);
    for (auto& [k, v] : errors) std::fprintf(stderr, "bench_fleet member: %zu waits: %s\n", v, k.c_str());
    std::fflush(stdout);
    if (link) link->stop();
    return 0;
}

struct proc_settings {
    int procs = 8;
    int waits = 50;
    int pool = 4;
    unsigned rate = 20;  // files.get the simulator accepts a second (rate scenario)
    double series_bin = 0;
};

struct proc_scenario {
    const char* name;
    bool fleet = false;
    bool rate_gate = false;
    std::function<void(sim::server&)> fault;  // installed at the start signal
    duration clear_after{};                   // the fault is removed then (0: kept)
    bool kill_redis = false;                  // Redis killed at clear_after / 2
    int onset_cap = -1;                       // fleet_options::onset_cap (-1: its default)
};

struct proc_figures {
    std::vector<sim::request_record> log;  // files.get
    time_point t0{};
    long active = 0, errors = 0, attempts = 0, rate_waits = 0, fallbacks = 0, cuts_sent = 0, cuts_applied = 0;
    double real_s = 0;
};

long field(const std::string& json, const char* name) {
    const std::string key = std::string("\"") + name + "\":";
    const auto at = json.find(key);
    return at == std::string::npos ? -1 : std::atol(json.c_str() + at + key.size());
}

proc_figures run_processes(const proc_settings& ps, const proc_scenario& sc, test_server::redis_server& server) {
    sim::config cfg;
    cfg.api_key = api_key;
    cfg.record_requests = true;
    cfg.threads = 1;
    sim::server srv(cfg);
    srv.start();
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<test_server::child_process> kids;
    for (int p = 0; p < ps.procs; ++p) {
        std::string names;
        for (int i = 0; i < ps.waits; ++i) names += (i ? "," : "") + srv.add_file("clip", "video/mp4");
        kids.push_back(test_server::spawn({self, "--member", srv.base_url(), sc.fleet ? server.url() : "-",
                                           sc.rate_gate ? "1" : "0", std::to_string(ps.pool),
                                           std::to_string(1000 + p), std::to_string(sc.onset_cap), names},
                                          true));
    }
    char line[512];
    for (auto& k : kids)
        if (!std::fgets(line, sizeof line, k.out) || std::string(line) != "ready\n") {
            for (auto& c : kids) test_server::reap(c, SIGKILL);
            throw std::runtime_error(std::string("a member of ") + sc.name + " did not start");
        }
    proc_figures f;
    const auto real0 = std::chrono::steady_clock::now();
    f.t0 = steady_clock().now();
    if (sc.fault) sc.fault(srv);
    for (auto& k : kids) {
        std::fputs("go\n", k.in);
        std::fflush(k.in);
    }
    if (sc.clear_after > duration::zero()) {
        if (sc.kill_redis) {
            std::this_thread::sleep_until(real0 + sc.clear_after / 2);
            server.kill();
        }
        std::this_thread::sleep_until(real0 + sc.clear_after);
        srv.clear_faults();
    }
    for (auto& k : kids) {
        if (std::fgets(line, sizeof line, k.out)) {
            const std::string j = line;
            f.active += field(j, "active");
            f.errors += field(j, "errors");
            f.attempts += field(j, "attempts");
            f.rate_waits += field(j, "rate_waits");
            f.fallbacks += field(j, "fallbacks");
            f.cuts_sent += field(j, "cuts_sent");
            f.cuts_applied += field(j, "cuts_applied");
        } else {
            f.errors += ps.waits;  // it died: its waits count as lost
        }
        test_server::reap(k);
    }
    f.real_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - real0).count();
    for (auto& r : srv.requests())
        if (r.target == sim::route::get && r.at >= f.t0) f.log.push_back(r);
    srv.stop();
    if (sc.kill_redis) server.start();  // for what follows, on the same port
    return f;
}

// Requests of `status` (0: any) in [from, to) seconds after t0, per `bin` seconds.
std::vector<long> bins(const proc_figures& f, int status, double from, double to, double bin) {
    std::vector<long> out(static_cast<std::size_t>(std::max(1.0, std::ceil((to - from) / bin))), 0);
    for (auto& r : f.log) {
        const double t = secs(r.at - f.t0);
        if ((status == 0 || r.status == status) && t >= from && t < to)
            ++out[std::min(out.size() - 1, static_cast<std::size_t>((t - from) / bin))];
    }
    return out;
}

std::string json_list(const std::vector<long>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
    return s + "]";
}

// {"series":"NAME/GATES",...}: files.get answers per second in bins of
// --series-bin seconds (the fault's window in window_s), for plot_fleet.py.
void print_series(const proc_settings& ps, const char* name, const char* gates, const proc_figures& f, duration window) {
    if (ps.series_bin <= 0) return;
    double end = 0;
    for (auto& r : f.log) end = std::max(end, secs(r.at - f.t0));
    const double bin = ps.series_bin, to = end + bin;
    auto per_s = [&](int status) {
        const auto n = bins(f, status, 0, to, bin);
        std::string out = "[";
        for (std::size_t i = 0; i < n.size(); ++i) out += (i ? "," : "") + std::to_string(double(n[i]) / bin);
        return out + "]";
    };
    std::string t = "[";
    for (double x = 0; x < to; x += bin) t += (t.size() > 1 ? "," : "") + std::to_string(x);
    t += "]";
    std::printf("{\"series\":\"%s/%s\",\"processes\":%d,\"waits\":%d,\"bin_s\":%g,\"window_s\":[0,%g],"
                "\"t_s\":%s,\"get_per_s\":%s,\"200_per_s\":%s,\"429_per_s\":%s,\"503_per_s\":%s}\n",
                name, gates, ps.procs, ps.procs * ps.waits, bin, secs(window), t.c_str(), per_s(0).c_str(),
                per_s(200).c_str(), per_s(429).c_str(), per_s(503).c_str());
}

const char* gates_of(const proc_scenario& sc) {
    return !sc.fleet ? "local" : sc.onset_cap == 0 ? "fleet_without_onset_cap" : "fleet";
}

std::string common(const proc_settings& ps, const proc_scenario& sc, const proc_figures& f) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "\"bench\":\"processes/%s\",\"gates\":\"%s\",\"processes\":%d,\"waits_per_process\":%d,"
                  "\"pool_per_process\":%d,\"active\":%ld,\"lost\":%ld,\"get_requests\":%zu,\"real_s\":%.1f",
                  sc.name, gates_of(sc), ps.procs, ps.waits, ps.pool, f.active, f.errors, f.log.size(), f.real_s);
    return buf;
}

void processes(const proc_settings& ps, test_server::redis_server& server, bool storm_only) {
    auto storm_fault = [](sim::server& srv) {
        sim::fault fl(sim::fault_kind::rate_limit, sim::route::get);
        fl.retry_delay = storm_delay;
        srv.add_fault(fl);
    };
    // Per-process gates, fleet gates without the onset cap, fleet gates.
    for (int arm = 0; arm < 3; ++arm) {
        proc_scenario sc{"storm", arm > 0, false, storm_fault, storm_length};
        if (arm == 1) sc.onset_cap = 0;
        const auto f = run_processes(ps, sc, server);
        const auto per = bins(f, 429, 0, secs(storm_length), secs(storm_delay));
        const long total = std::accumulate(per.begin(), per.end(), 0L);
        const long later = per.size() > 1 ? *std::max_element(per.begin() + 1, per.end()) : 0;
        print_series(ps, "storm", gates_of(sc), f, storm_length);
        std::printf("{%s,\"storm_s\":%.0f,\"retry_delay_s\":%.0f,\"429s\":%ld,\"429s_per_period\":%.2f,"
                    "\"429s_by_period\":%s,\"max_429s_in_a_later_period\":%ld,\"pool_bound\":%d,"
                    "\"within_target_after_onset\":%s,\"within_target\":%s}\n",
                    common(ps, sc, f).c_str(), secs(storm_length), secs(storm_delay), total,
                    double(total) / double(per.size()), json_list(per).c_str(), later, ps.pool,
                    later <= ps.pool ? "true" : "false",
                    *std::max_element(per.begin(), per.end()) <= ps.pool ? "true" : "false");
        std::fflush(stdout);
    }
    if (storm_only) return;
    for (bool fleet : {false, true}) {
        proc_scenario sc{"outage", fleet, false, [](sim::server& srv) {
                             srv.add_outage(sim::outage(0s, outage_length, sim::route::get));
                         }};
        const auto f = run_processes(ps, sc, server);
        const auto per = bins(f, 503, 0, secs(outage_length), secs(open_timeout));
        const long total = std::accumulate(per.begin(), per.end(), 0L);
        print_series(ps, "outage", gates_of(sc), f, outage_length);
        std::printf("{%s,\"outage_s\":%.0f,\"open_timeout_s\":%.0f,\"threshold\":%d,\"failing_requests\":%ld,"
                    "\"failing_by_period\":%s,\"failing_per_period\":%.2f,\"fleet_target\":%.0f}\n",
                    common(ps, sc, f).c_str(), secs(outage_length), secs(open_timeout), threshold, total,
                    json_list(per).c_str(), double(total) / double(per.size()),
                    double(threshold) + double(per.size()));
        std::fflush(stdout);
    }
    for (bool fleet : {false, true}) {
        const unsigned rate = ps.rate;
        proc_scenario sc{"rate", fleet, true, [rate](sim::server& srv) {
                             srv.add_quota(sim::quota(sim::route::get, rate, 1s));
                         }};
        const auto f = run_processes(ps, sc, server);
        long ok = 0, throttled = 0;
        double last_ok = 0;
        for (auto& r : f.log) {
            if (r.status == 200) {
                ++ok;
                last_ok = std::max(last_ok, secs(r.at - f.t0));
            } else if (r.status == 429) {
                ++throttled;
            }
        }
        print_series(ps, "rate", gates_of(sc), f, duration::zero());
        std::printf("{%s,\"accepted_per_s\":%u,\"429s\":%ld,\"accepted\":%ld,\"429s_per_accepted\":%.3f,"
                    "\"goodput_per_s\":%.2f,\"finish_s\":%.1f,\"rate_waits\":%ld,\"cuts_published\":%ld,"
                    "\"cuts_applied\":%ld}\n",
                    common(ps, sc, f).c_str(), rate, throttled, ok, ok ? double(throttled) / double(ok) : 0.0,
                    last_ok > 0 ? double(ok) / last_ok : 0.0, last_ok, f.rate_waits, f.cuts_sent, f.cuts_applied);
        std::fflush(stdout);
    }
    {
        proc_scenario sc{"redis_killed", true, false, storm_fault, storm_length, true};
        const auto f = run_processes(ps, sc, server);
        std::printf("{%s,\"killed_at_s\":%.0f,\"expected\":%d,\"all_active\":%s,\"fallbacks\":%ld,\"429s\":%zu}\n",
                    common(ps, sc, f).c_str(), secs(storm_length) / 2, ps.procs * ps.waits,
                    f.active == long(ps.procs) * ps.waits ? "true" : "false", f.fallbacks,
                    std::size_t(std::count_if(f.log.begin(), f.log.end(), [](auto& r) { return r.status == 429; })));
        std::fflush(stdout);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 1 && !std::strcmp(argv[1], "--member")) return member_main(argc, argv);
    int members = 8, calls = 500;
    proc_settings ps;
    std::string binary = "/usr/bin/redis-server", only;
    bool bad = false;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            bad = true;
            break;
        }
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--members") members = std::atoi(v.c_str());
        else if (k == "--calls") calls = std::atoi(v.c_str());
        else if (k == "--procs") ps.procs = std::atoi(v.c_str());
        else if (k == "--waits") ps.waits = std::atoi(v.c_str());
        else if (k == "--pool") ps.pool = std::atoi(v.c_str());
        else if (k == "--rate") ps.rate = static_cast<unsigned>(std::atoi(v.c_str()));
        else if (k == "--series-bin") ps.series_bin = std::atof(v.c_str());
        else if (k == "--only") only = v;
        else if (k == "--redis-server") binary = v;
        else bad = true;
    }
    if (bad || members < 1 || calls < 10 || ps.procs < 1 || ps.waits < 1 || ps.pool < 1 || ps.rate < 1 ||
        !(ps.series_bin >= 0) || !(only.empty() || only == "processes" || only == "storm" || only == "model")) {
        std::fprintf(stderr, "usage: bench_fleet [--procs N>=1] [--waits N>=1] [--pool N>=1] [--rate N>=1] "
                             "[--series-bin S>=0] [--members N>=1] [--calls N>=10] [--only processes|storm|model] "
                             "[--redis-server PATH]\n");
        return 2;
    }
    if (!test_server::redis_server_available(binary.c_str())) {
        std::fprintf(stderr, "bench_fleet: %s is not installed\n", binary.c_str());
        return 77;
    }
    test_server::redis_server server(binary);
    if (only != "model") processes(ps, server, only == "storm");
    if (only == "processes" || only == "storm") return 0;
    const double periods_outage = calls / 10.0;  // open timeout 10 s, one round a second
    const double periods_storm = calls * 0.25 / 5.0;

    for (const char* mode : {"local", "fleet"}) {
        const std::string url = std::string(mode) == "fleet" ? server.url() : "";
        with_members(members, url, [&](asio::io_context& ctx, testing::manual_clock& clk, std::vector<member>& ms) {
            const outcome o = rounds(ctx, clk, ms, calls, outage);
            std::printf("{\"bench\":\"outage\",\"gates\":\"%s\",\"members\":%d,\"calls_per_member\":%d,"
                        "\"failing_requests\":%ld,\"refused\":%ld,\"open_periods\":%.0f,\"failing_per_period\":%.2f}\n",
                        mode, members, calls, o.sent, o.refused, periods_outage, o.sent / periods_outage);
        });
        with_members(members, url, [&](asio::io_context& ctx, testing::manual_clock& clk, std::vector<member>& ms) {
            const outcome o = rounds(ctx, clk, ms, calls, storm);
            std::printf("{\"bench\":\"storm\",\"gates\":\"%s\",\"members\":%d,\"calls_per_member\":%d,"
                        "\"rate_limited\":%ld,\"held\":%ld,\"cooldown_periods\":%.0f,\"429_per_period\":%.2f}\n",
                        mode, members, calls, o.sent, o.refused, periods_storm, o.sent / periods_storm);
        });
        with_members(members, url, [&](asio::io_context&, testing::manual_clock&, std::vector<member>& ms) {
            // Warm up, then measure.
            (void)success_ns(ms, 1'000'000);
            const double ns = success_ns(ms, 20'000'000);
            std::printf("{\"bench\":\"success_path\",\"gates\":\"%s\",\"ns_per_call\":%.2f}\n", mode, ns);
        });
        std::fflush(stdout);
    }
    with_members(members, server.url(), [&](asio::io_context& ctx, testing::manual_clock& clk, std::vector<member>& ms) {
        const outcome o = rounds(ctx, clk, ms, calls, outage, &server, calls / 2);
        long fallbacks = 0;
        for (auto& m : ms) fallbacks += static_cast<long>(m.link->stats().fallbacks);
        std::printf("{\"bench\":\"redis_killed\",\"gates\":\"fleet\",\"members\":%d,\"calls_per_member\":%d,"
                    "\"ended\":%ld,\"expected\":%ld,\"failing_requests\":%ld,\"fallbacks\":%ld}\n",
                    members, calls, o.sent + o.refused, long(members) * calls, o.sent, fallbacks);
    });
    return 0;
}
