// bench_fleet: fleet gates against per-process gates, side by side in one run,
// one JSON line per measurement.
//
//   bench_fleet [--members N] [--calls N] [--redis-server PATH]
//
// Starts its own redis-server (as the tests do). The members are N gate sets
// with their own Redis connections in this process (standing for N
// processes), driven in rounds on one manual clock against a model service:
//   * outage: every call fails (5xx); counted: requests that reached the
//     failing service, per open period, fleet vs local;
//   * storm: every call meets a 429 with a 5 s pushback; counted: 429s per
//     cooldown period, fleet vs local;
//   * redis_killed: the outage with Redis killed halfway: every call still
//     ends (admitted or refused, none waits on Redis);
//   * success_path: ns per CLOSED admission + success + cooldown check, local
//     gates vs gates linked to a joined fleet.
#include "../test/redis_server.hpp"

#include <resilience/circuit_breaker.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/redis/fleet.hpp>
#include <resilience/retry_budget.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace resilience;
namespace test_server = resilience::redis::test_server;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

struct member {
    std::shared_ptr<circuit_breaker> breaker;
    std::shared_ptr<cooldown> cool = std::make_shared<cooldown>();
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

double success_ns(std::vector<member>& ms, long iterations) {
    auto& m = ms.front();
    testing::manual_clock& clk = static_cast<testing::manual_clock&>(m.breaker->time());
    const auto t0 = std::chrono::steady_clock::now();
    long admitted = 0;
    for (long i = 0; i < iterations; ++i) {
        if (!m.cool->never_deferred() && m.cool->blocked_until(scope, clk.now())) continue;
        breaker_permit p;
        if (m.breaker->try_acquire_closed(p)) {
            ++admitted;
            p.succeeded();
        }
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (admitted != iterations) std::fprintf(stderr, "bench_fleet: success path refused calls\n");
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(iterations);
}

}  // namespace

int main(int argc, char** argv) {
    int members = 8, calls = 500;
    std::string binary = "/usr/bin/redis-server";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--members")) members = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--calls")) calls = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--redis-server")) binary = argv[i + 1];
    }
    if (members < 1 || calls < 10) {
        std::fprintf(stderr, "usage: bench_fleet [--members N>=1] [--calls N>=10] [--redis-server PATH]\n");
        return 2;
    }
    if (!test_server::redis_server_available(binary.c_str())) {
        std::fprintf(stderr, "bench_fleet: %s is not installed\n", binary.c_str());
        return 77;
    }
    test_server::redis_server server(binary);
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
