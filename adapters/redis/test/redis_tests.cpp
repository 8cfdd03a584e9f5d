// The fleet gates against a real redis-server each test starts on a free
// loopback port (test/redis_server.hpp). Several fleets with their own
// connections in one process stand for several processes; one test runs real
// peer processes (fleet_peer). Gates run on a manual clock; only Redis I/O is
// waited for (run_until), never real time.
#define BOOST_TEST_MODULE redis_tests
#include <boost/test/unit_test.hpp>

#include "redis_server.hpp"

#include "../src/connection.hpp"

#include <resilience/circuit_breaker.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/error.hpp>
#include <resilience/onset_gate.hpp>
#include <resilience/rate_gate.hpp>
#include <resilience/redis/fleet.hpp>
#include <resilience/retry_budget.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::breaker_state)
BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::redis::fleet_event_type)
BOOST_TEST_DONT_PRINT_LOG_VALUE(resilience::onset_answer)

using namespace resilience;
using namespace resilience::redis;
using namespace std::chrono_literals;
namespace asio = boost::asio;

namespace {

// Without redis-server the whole program is skipped (ctest SKIP_RETURN_CODE 77).
struct need_redis {
    need_redis() {
        if (!test_server::redis_server_available(REDIS_SERVER)) {
            std::cout << "redis_tests: SKIPPED: " REDIS_SERVER " is not installed (apt-get install redis-server)"
                      << std::endl;
            std::exit(77);
        }
    }
};

template <class Pred>
void run_until(asio::io_context& ctx, Pred done) {
    while (!done()) ctx.run_one();
}

// One "process": its gates (on the shared manual clock) and its fleet link.
struct member {
    std::shared_ptr<circuit_breaker> breaker;
    std::shared_ptr<cooldown> cool = std::make_shared<cooldown>();
    std::shared_ptr<retry_budget> budget = std::make_shared<retry_budget>(budget_config{100, 1});
    std::shared_ptr<rate_gate> rate = std::make_shared<rate_gate>(enabled_rate_gate());
    std::shared_ptr<onset_gate> onset = std::make_shared<onset_gate>();
    std::vector<fleet_event> events;
    std::vector<std::string> status;
    std::unique_ptr<fleet> link;

    member(asio::io_context& ctx, resilience::testing::manual_clock& clk, const std::string& url, int threshold = 3) {
        breaker_options b;
        b.config.failure_threshold = threshold;
        b.config.open_timeout = 60s;
        b.time = &clk;
        breaker = std::make_shared<circuit_breaker>(b);
        fleet_options o;
        o.url = url;
        o.timeout = 2000ms;  // generous: a loaded 2-core box; the slow-Redis test sets its own
        o.reconnect.initial_delay = 10ms;
        o.reconnect.max_delay = 50ms;
        o.budget_flush = 1ms;
        o.on_event = [this](const fleet_event& e) {
            fleet_event copy = e;
            copy.message = {};
            events.push_back(copy);
        };
        o.on_status = [this](std::string_view s) { status.emplace_back(s); };
        link = std::make_unique<fleet>(ctx.get_executor(), o);
        gate_set g;
        g.scope = scope_hash("generativelanguage.example#0123456789abcdef");
        g.breaker = breaker;
        g.cooldown = cool;
        g.budget = budget;
        g.rate = rate;
        g.onset = onset;
        link->attach(g);
    }
    std::uint64_t scope() const { return scope_hash("generativelanguage.example#0123456789abcdef"); }
    static rate_gate_config enabled_rate_gate() {
        rate_gate_config c;
        c.enabled = true;
        return c;
    }
    /// One answer to the rate gate (a 429 when `throttled`).
    void answer(time_point now, bool throttled) { rate->on_response(scope(), now, throttled); }
    rate_gate_snapshot rate_now() const { return rate->snapshot(scope()).value_or(rate_gate_snapshot{}); }
    void fail() { breaker->try_acquire().permit.failed(error_kind::retryable_server); }
    /// `waiting` requests of the cold scope ask the onset gate again (as the
    /// client's recheck does); those let go with a lease are counted in `held`.
    void ask(int& waiting, int& held) {
        for (int i = waiting; i > 0; --i) {
            const onset_answer a = onset->take();
            BOOST_REQUIRE(a != onset_answer::go);  // joined: never without a lease
            if (a == onset_answer::held) {
                --waiting;
                ++held;
            }
        }
    }
    bool settled() const { return link->joined() && link->idle(); }
};

// A test's own redis-server, io_context and clock, and its members; the
// members' links are stopped (and their coroutines ended) at the end.
struct fleet_fixture {
    test_server::redis_server server{REDIS_SERVER};
    asio::io_context ctx;
    resilience::testing::manual_clock clk;
    std::vector<std::unique_ptr<member>> all;

    /// One member linked to `url`, not waited for.
    member& add(const std::string& url, int threshold = 3) {
        all.push_back(std::make_unique<member>(ctx, clk, url, threshold));
        return *all.back();
    }
    /// Members on the test's redis-server (one per pointer given), each joined and idle.
    void members(std::initializer_list<member**> out, int threshold = 3) {
        for (member** m : out) *m = &add(server.url(), threshold);
        run_until(ctx, [&] {
            for (member** m : out)
                if (!(*m)->settled()) return false;
            return true;
        });
    }
    ~fleet_fixture() {
        for (auto& m : all) m->link->stop();
        ctx.run();  // the links' coroutines end
    }
};

}  // namespace

BOOST_GLOBAL_FIXTURE(need_redis);

BOOST_AUTO_TEST_SUITE(redis_options)

BOOST_AUTO_TEST_CASE(urls_parse_and_bad_ones_fail_clearly_without_the_password) {
    auto u = parse_url("redis://app:s3cr%40t@cache.internal:6380/2");
    BOOST_REQUIRE(u);
    BOOST_TEST(u->host == "cache.internal");
    BOOST_TEST(u->port == 6380);
    BOOST_TEST(u->user == "app");
    BOOST_TEST(u->password == "s3cr@t");
    BOOST_TEST(u->db == 2);
    BOOST_TEST(u->display() == "cache.internal:6380/2");
    auto v = parse_url("redis://:pw@127.0.0.1");
    BOOST_REQUIRE(v);
    BOOST_TEST(v->user.empty());
    BOOST_TEST(v->password == "pw");
    BOOST_TEST(v->port == 6379);
    BOOST_TEST(v->db == 0);
    for (const char* bad : {"http://h:1", "redis://:hunter2@:6379", "redis://h:0", "redis://h:99999", "redis://h:1/x",
                            "redis://h:1/1?x=hunter2", "not a url hunter2", "redis://u:hunter2@h:1/-1"}) {
        auto r = parse_url(bad);
        BOOST_TEST_CONTEXT(bad) {
            BOOST_TEST(!r);
            if (!r) {
                BOOST_TEST((r.error().code == resilience::errc::invalid_config));
                BOOST_TEST(r.error().diag.message.find("hunter2") == std::string::npos);
                BOOST_TEST(r.error().diag.message.starts_with("redis url: "));
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(options_validate_and_come_from_the_environment) {
    fleet_options o;
    BOOST_TEST(!o.validate());  // no URL
    o.url = "redis://127.0.0.1:6379";
    BOOST_TEST(static_cast<bool>(o.validate()));
    o.timeout = 0ms;
    BOOST_TEST(o.validate().error().diag.message.starts_with("fleet.timeout"));
    o.timeout = 250ms;
    o.onset_cap = -1;
    BOOST_TEST(o.validate().error().diag.message.starts_with("fleet.onset_cap"));
    o.onset_cap = 0;  // off
    BOOST_TEST(static_cast<bool>(o.validate()));
    o.onset_lease = 0ms;
    BOOST_TEST(o.validate().error().diag.message.starts_with("fleet.onset_lease"));
    auto env = [](const char* value) {
        return [value](const char* name) -> std::optional<std::string> {
            if (std::string(name) == "RESILIENCE_REDIS_URL" && value) return std::string(value);
            return std::nullopt;
        };
    };
    auto unset = fleet_options::from_env(env(nullptr));
    BOOST_REQUIRE(unset);
    BOOST_TEST(unset->url.empty());
    auto set = fleet_options::from_env(env("redis://10.0.0.1:7000/3"));
    BOOST_REQUIRE(set);
    BOOST_TEST(set->url == "redis://10.0.0.1:7000/3");
    auto badenv = fleet_options::from_env(env("redis://:topsecret@h:70000"));
    BOOST_REQUIRE(!badenv);
    BOOST_TEST(badenv.error().diag.message.starts_with("RESILIENCE_REDIS_URL: redis url: the port"));
    BOOST_TEST(badenv.error().diag.message.find("topsecret") == std::string::npos);
    BOOST_CHECK_THROW(fleet(asio::io_context().get_executor(), fleet_options{}), resilience::error);
}

BOOST_AUTO_TEST_CASE(error_codes_have_messages) {
    for (int v = 1; v <= 4; ++v)
        BOOST_TEST(make_error_code(static_cast<redis::errc>(v)).message().find("unknown") == std::string::npos);
    BOOST_TEST((make_error_code(redis::errc::auth_failed) == condition::auth));
    BOOST_TEST(std::string(redis::error_category().name()) == "resilience.redis");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(redis_fleet)

BOOST_FIXTURE_TEST_CASE(a_cooldown_reaches_every_member, fleet_fixture) {
    member *a, *b, *c;
    members({&a, &b, &c});
    BOOST_TEST(a->events.size() == 1u);
    BOOST_TEST(a->events[0].type == fleet_event_type::joined);
    const time_point now = clk.now();
    a->cool->defer(a->scope(), now + 30s, now);
    run_until(ctx, [&] { return b->cool->blocked_until(b->scope(), now) && c->cool->blocked_until(c->scope(), now); });
    const auto until = *b->cool->blocked_until(b->scope(), now);
    BOOST_TEST((until > now + 29s && until <= now + 30s));
    // A shorter one elsewhere does not lower it.
    b->cool->defer(b->scope(), now + 5s, now);
    run_until(ctx, [&] { return b->settled(); });
    BOOST_TEST((*a->cool->blocked_until(a->scope(), now) == now + 30s));
}

BOOST_FIXTURE_TEST_CASE(failures_count_fleet_wide_and_open_every_breaker, fleet_fixture) {
    member *a, *b, *c;
    members({&a, &b, &c});
    // One failure each: no breaker reaches its own threshold (3), the fleet does.
    a->fail();
    run_until(ctx, [&] { return a->settled(); });
    b->fail();
    run_until(ctx, [&] { return b->settled(); });
    BOOST_TEST(a->breaker->state() == breaker_state::closed);
    c->fail();
    run_until(ctx, [&] {
        return a->breaker->state() == breaker_state::open && b->breaker->state() == breaker_state::open &&
               c->breaker->state() == breaker_state::open;
    });
    auto r = b->breaker->try_acquire();
    BOOST_TEST(!r.permit);
    BOOST_TEST((r.retry_at > clk.now() + 59s && r.retry_at <= clk.now() + 60s));
    // The success path asked nothing of Redis.
}

BOOST_FIXTURE_TEST_CASE(a_success_ends_the_fleet_streak, fleet_fixture) {
    member *a, *b;
    members({&a, &b});
    a->fail();
    a->fail();
    run_until(ctx, [&] { return a->settled(); });
    b->breaker->try_acquire().permit.succeeded();  // b had no streak: the success path, nothing sent
    a->breaker->try_acquire().permit.succeeded();  // ends a's streak: the fleet's count resets
    run_until(ctx, [&] { return a->settled(); });
    b->fail();
    b->fail();
    run_until(ctx, [&] { return b->settled(); });
    BOOST_TEST(a->breaker->state() == breaker_state::closed);
    BOOST_TEST(b->breaker->state() == breaker_state::closed);
}

BOOST_FIXTURE_TEST_CASE(one_member_probes_and_its_verdict_reaches_all, fleet_fixture) {
    member *a, *b;
    members({&a, &b}, 1);
    a->fail();
    run_until(ctx, [&] { return a->settled() && b->breaker->state() == breaker_state::open; });
    clk.advance(61s);
    // Both open periods end; a asks first: HALF_OPEN, its probe held until the fleet grants it.
    auto ra = a->breaker->try_acquire();
    BOOST_TEST(!ra.permit);
    BOOST_TEST(ra.state == breaker_state::half_open);
    run_until(ctx, [&] { return a->settled(); });
    auto probe = a->breaker->try_acquire();
    BOOST_REQUIRE(static_cast<bool>(probe.permit));
    BOOST_TEST(probe.permit.probe());
    // b: its own HALF_OPEN claim loses (a probes): OPEN again for the lease.
    auto rb = b->breaker->try_acquire();
    BOOST_TEST(!rb.permit);
    run_until(ctx, [&] { return b->settled() && b->breaker->state() == breaker_state::open; });
    BOOST_TEST(!b->breaker->try_acquire().permit);
    probe.permit.succeeded();
    run_until(ctx, [&] { return b->breaker->state() == breaker_state::closed; });
    BOOST_TEST(static_cast<bool>(b->breaker->try_acquire().permit));
}

BOOST_FIXTURE_TEST_CASE(a_failed_probe_reopens_the_fleet, fleet_fixture) {
    member *a, *b;
    members({&a, &b}, 1);
    a->fail();
    run_until(ctx, [&] { return a->settled() && b->breaker->state() == breaker_state::open; });
    clk.advance(61s);
    (void)a->breaker->try_acquire();
    run_until(ctx, [&] { return a->settled(); });
    // b follows: OPEN while a probes (for the lease, 10 s).
    run_until(ctx, [&] {
        auto r = b->breaker->try_acquire();
        return !r.permit && r.state == breaker_state::open && r.retry_at <= clk.now() + 10s;
    });
    auto probe = a->breaker->try_acquire();
    BOOST_REQUIRE(static_cast<bool>(probe.permit));
    probe.permit.failed(error_kind::retryable_network);
    BOOST_TEST(a->breaker->state() == breaker_state::open);
    // a's new break (60 s) reaches b->
    run_until(ctx, [&] {
        return b->breaker->try_acquire().retry_at > clk.now() + 30s; });
    BOOST_TEST(b->breaker->state() == breaker_state::open);
}

BOOST_FIXTURE_TEST_CASE(the_retry_budget_is_one_bucket_for_the_fleet, fleet_fixture) {
    member *a, *b;
    members({&a, &b});
    for (int i = 0; i < 30; ++i) a->budget->on_failure();
    for (int i = 0; i < 30; ++i) b->budget->on_failure();
    // 100 - 60 = 40 tokens fleet-wide: at most 50, so neither may retry.
    run_until(ctx, [&] { return a->budget->count() == 40000 && b->budget->count() == 40000; });
    BOOST_TEST(!a->budget->retry_allowed());
    BOOST_TEST(!b->budget->retry_allowed());
}

BOOST_FIXTURE_TEST_CASE(redis_killed_and_restarted_falls_back_then_rejoins_and_resyncs, fleet_fixture) {
    member *a, *b;
    members({&a, &b});
    server.kill();
    run_until(ctx, [&] { return a->events.size() == 2 && b->events.size() == 2; });
    BOOST_TEST(a->events[1].type == fleet_event_type::fell_back);
    BOOST_TEST(a->link->status().find("deciding locally") != std::string::npos);
    BOOST_TEST(a->status.back().find("deciding locally") != std::string::npos);
    // Locally meanwhile: a opens on its own, nothing waits for Redis.
    for (int i = 0; i < 3; ++i) a->fail();
    BOOST_TEST(a->breaker->state() == breaker_state::open);
    BOOST_TEST(b->breaker->state() == breaker_state::closed);
    // Said once, however many reconnection attempts fail.
    for (int i = 0; i < 20; ++i) ctx.run_one();
    BOOST_TEST(a->events.size() == 2u);
    server.start();  // same port, empty
    run_until(ctx, [&] { return a->settled() && b->settled() && b->breaker->state() == breaker_state::open; });
    BOOST_TEST(a->events.back().type == fleet_event_type::joined);
    BOOST_TEST(a->link->stats().fallbacks == 1u);
    BOOST_TEST(a->link->stats().joins == 2u);
}

BOOST_FIXTURE_TEST_CASE(refused_connections_leave_the_gates_local, fleet_fixture) {
    const unsigned short port = test_server::free_port();  // nobody listens there
    member& a = add("redis://127.0.0.1:" + std::to_string(port), 1);
    run_until(ctx, [&] { return !a.events.empty(); });
    BOOST_TEST(a.events[0].type == fleet_event_type::fell_back);
    BOOST_TEST((a.events[0].code == asio::error::connection_refused));
    BOOST_TEST(!a.link->joined());
    a.fail();
    BOOST_TEST(a.breaker->state() == breaker_state::open);
    clk.advance(61s);
    BOOST_TEST(static_cast<bool>(a.breaker->try_acquire().permit));  // the probe is local: not held
}

BOOST_FIXTURE_TEST_CASE(a_wrong_password_is_refused_and_never_printed, fleet_fixture) {
    test_server::redis_server locked(REDIS_SERVER, {"--requirepass", "right-horse"});
    member& wrong = add(locked.url(":battery-staple"));
    member& none = add(locked.url());
    member& right = add(locked.url(":right-horse"));
    run_until(ctx, [&] { return !wrong.events.empty() && !none.events.empty() && right.settled(); });
    BOOST_TEST(wrong.events[0].type == fleet_event_type::fell_back);
    BOOST_TEST((wrong.events[0].code == redis::errc::auth_failed));
    BOOST_TEST((none.events[0].code == redis::errc::auth_failed));
    for (const auto& s : wrong.status) BOOST_TEST(s.find("battery") == std::string::npos);
    BOOST_TEST(wrong.link->status().find("battery") == std::string::npos);
    BOOST_TEST(right.events[0].type == fleet_event_type::joined);
}

BOOST_FIXTURE_TEST_CASE(a_silent_redis_is_left_after_the_timeout_and_rejoined, fleet_fixture) {
    member *a;
    members({&a}, 1);
    server.pause();  // it accepts nothing and answers nothing
    a->fail();        // reported: the request times out
    run_until(ctx, [&] { return a->events.size() == 2; });
    BOOST_TEST(a->events[1].type == fleet_event_type::fell_back);
    BOOST_TEST((a->events[1].code == redis::errc::timeout));
    // A probe is never held for the fleet while it is away.
    clk.advance(61s);
    BOOST_TEST(static_cast<bool>(a->breaker->try_acquire().permit));
    server.resume();
    run_until(ctx, [&] { return a->settled(); });
    BOOST_TEST(a->events.back().type == fleet_event_type::joined);
}

BOOST_FIXTURE_TEST_CASE(scripts_survive_a_flushed_script_cache_and_keys_are_namespaced, fleet_fixture) {
    member *a, *b;
    members({&a, &b});
    // Another client flushes the script cache.
    std::vector<std::string> keys;
    auto raw = [&](std::vector<std::string> cmd) {
        auto f = asio::co_spawn(
            ctx,
            [&, cmd]() -> asio::awaitable<std::vector<std::string>> {
                redis::detail::connection c(co_await asio::this_coro::executor);
                auto ec = co_await c.connect("127.0.0.1", server.port(), 5s);
                if (ec) throw boost::system::system_error(ec);
                auto [e2, r] = co_await c.exec(cmd, 5s);
                if (e2) throw boost::system::system_error(e2);
                std::vector<std::string> out;
                if (r->type == REDIS_REPLY_ARRAY)
                    for (std::size_t i = 0; i < r->elements; ++i) out.emplace_back(redis::detail::text(r->element[i]));
                else if (r->type == REDIS_REPLY_INTEGER)
                    out.push_back(std::to_string(r->integer));
                else
                    out.emplace_back(redis::detail::text(r.get()));
                co_return out;
            },
            asio::use_future);
        while (f.wait_for(0s) != std::future_status::ready) ctx.run_one();
        return f.get();
    };
    raw({"SCRIPT", "FLUSH"});
    const time_point now = clk.now();
    a->cool->defer(a->scope(), now + 20s, now);
    run_until(ctx, [&] { return b->cool->blocked_until(b->scope(), now).has_value(); });
    BOOST_TEST(a->link->stats().noscript >= 1u);
    keys = raw({"KEYS", "*"});
    BOOST_REQUIRE(!keys.empty());
    for (const auto& k : keys) {
        BOOST_TEST_CONTEXT(k) {
            BOOST_TEST(k.starts_with("asio-resilience:{"));
            BOOST_TEST(k.find("0123456789abcdef") == std::string::npos);  // the scope is hashed
            const auto ttl = raw({"PTTL", k});
            BOOST_TEST(std::stoll(ttl.at(0)) > 0);  // every key expires on its own
        }
    }
}

BOOST_AUTO_TEST_CASE(separate_processes_share_the_breaker) {
    test_server::redis_server server(REDIS_SERVER);
    // Three watchers wait (on Redis I/O only) until the fleet opens their
    // breaker; one opener fails twice in a row (fleet threshold 2).
    const std::string url = server.url();
    std::vector<FILE*> watchers;
    for (int i = 0; i < 3; ++i) {
        FILE* p = ::popen((std::string(FLEET_PEER) + " watch " + url).c_str(), "r");
        BOOST_REQUIRE(p);
        char line[256];
        BOOST_REQUIRE(std::fgets(line, sizeof line, p));
        BOOST_TEST(std::string(line) == "joined\n");
        watchers.push_back(p);
    }
    FILE* opener = ::popen((std::string(FLEET_PEER) + " open " + url).c_str(), "r");
    BOOST_REQUIRE(opener);
    char line[256];
    BOOST_REQUIRE(std::fgets(line, sizeof line, opener));
    BOOST_TEST(std::string(line) == "opened\n");
    BOOST_TEST(::pclose(opener) == 0);
    for (FILE* p : watchers) {
        BOOST_REQUIRE(std::fgets(line, sizeof line, p));
        BOOST_TEST(std::string(line) == "open\n");
        BOOST_TEST(::pclose(p) == 0);
    }
}

BOOST_FIXTURE_TEST_CASE(a_rate_cut_in_one_member_reaches_the_others_once_per_congestion_event, fleet_fixture) {
    member *a, *b, *c;
    members({&a, &b, &c});
    // Each sends 10 requests a second for 3 virtual seconds: none is limited.
    auto send = [&](int answers) {
        for (int i = 0; i < answers; ++i) {
            for (member* m : {a, b, c}) m->answer(clk.now(), false);
            clk.advance(100ms);
        }
    };
    send(30);
    BOOST_TEST(!b->rate->limiting());
    // a and c meet the same burst of 429s before either has heard of the other's cut.
    a->answer(clk.now(), true);
    c->answer(clk.now(), true);
    const rate_gate_snapshot a_cut = a->rate_now();
    BOOST_TEST(a_cut.limiting);
    BOOST_TEST(a_cut.fill_rate < a_cut.last_max_rate);
    run_until(ctx, [&] { return b->rate->limiting() && a->settled() && c->settled(); });
    // One congestion event for the fleet: one cut published, b cut once, from its own rate.
    BOOST_TEST(a->link->stats().cuts_sent + c->link->stats().cuts_sent == 1u);
    run_until(ctx, [&] { return b->link->stats().cuts_applied == 1; });
    const rate_gate_snapshot b_cut = b->rate_now();
    BOOST_TEST(b_cut.fill_rate == 0.7 * b_cut.last_max_rate, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(b_cut.last_max_rate > 5.0);  // b's own send rate (10 a second), not a's
    // a already cut for this event (within its cut_interval): not cut again, nothing echoed.
    BOOST_TEST(a->link->stats().cuts_applied + c->link->stats().cuts_applied == 0u);
    BOOST_TEST(a->rate_now().fill_rate == a_cut.fill_rate);
    // A later congestion event met by b alone reaches a and c.
    send(50);
    b->answer(clk.now(), true);
    run_until(ctx, [&] {
        return a->link->stats().cuts_applied == 1 && c->link->stats().cuts_applied == 1 && b->settled();
    });
    BOOST_TEST(b->link->stats().cuts_sent == 1u);
    BOOST_TEST(a->rate_now().fill_rate < a->rate_now().measured_rate);
}

// The onset cap (docs/fleet.md): a cold scope's requests go with a lease; at
// most fleet_options::onset_cap (4) at once across the fleet.
BOOST_FIXTURE_TEST_CASE(a_cold_scope_admits_at_most_the_cap_across_the_fleet, fleet_fixture) {
    member *a, *b;
    members({&a, &b});
    BOOST_TEST(!a->onset->warm(clk.now()));  // nothing succeeded yet
    // Three requests in each member: four leases, then one refused.
    int wait_a = 3, wait_b = 3, held_a = 0, held_b = 0;
    run_until(ctx, [&] {
        a->ask(wait_a, held_a);
        b->ask(wait_b, held_b);
        BOOST_REQUIRE(held_a + held_b <= 4);
        return held_a + held_b == 4 && a->link->stats().lease_refusals + b->link->stats().lease_refusals >= 1;
    });
    BOOST_TEST(held_a + held_b == 4);
    BOOST_TEST(a->link->stats().leases + b->link->stats().leases == 4u);
    // One is answered (a 429): its lease goes to a waiting request.
    member* giver = held_a > 0 ? a : b;
    giver->onset->failed(clk.now());
    giver->onset->give_back(false);
    (giver == a ? held_a : held_b) -= 1;
    run_until(ctx, [&] {
        a->ask(wait_a, held_a);
        b->ask(wait_b, held_b);
        BOOST_REQUIRE(held_a + held_b <= 4);
        return held_a + held_b == 4;
    });
    BOOST_TEST(wait_a + wait_b == 1);
    // One succeeds: the scope is warm in every member (its requests ask nothing).
    member* winner = held_a > 0 ? a : b;
    winner->onset->succeeded(clk.now());
    winner->onset->give_back(true);
    run_until(ctx, [&] { return a->onset->warm(clk.now()) && b->onset->warm(clk.now()) && winner->settled(); });
    // A later 429 cools it again locally.
    clk.advance(1ms);
    a->onset->failed(clk.now());
    BOOST_TEST(!a->onset->warm(clk.now()));
}

BOOST_FIXTURE_TEST_CASE(a_cold_scope_decides_alone_while_redis_is_away, fleet_fixture) {
    member *a;
    members({&a});
    int waiting = 1, held = 0;
    BOOST_TEST(a->onset->take() == onset_answer::wait);  // joined: it asks the fleet
    server.kill();
    run_until(ctx, [&] { return a->events.size() == 2; });
    BOOST_TEST(a->events[1].type == fleet_event_type::fell_back);
    // Away: requests go without a lease (nothing waits for Redis).
    BOOST_TEST(a->onset->take() == onset_answer::go);
    BOOST_TEST(a->onset->take() == onset_answer::go);
    server.start();
    run_until(ctx, [&] { return a->settled(); });
    run_until(ctx, [&] {
        a->ask(waiting, held);
        return held == 1;
    });
    BOOST_TEST(a->link->stats().leases == 1u);
}

BOOST_AUTO_TEST_CASE(onset_leases_are_shared_with_another_process) {
    test_server::redis_server server(REDIS_SERVER);
    // A peer process holds 3 of the 4 leases of the cold scope.
    auto peer = test_server::spawn({FLEET_PEER, "hold", server.url()}, true);
    struct reaper {
        test_server::child_process& c;
        ~reaper() {
            if (c.pid > 0) test_server::reap(c, SIGKILL);
        }
    } guard{peer};
    char line[64];
    BOOST_REQUIRE(std::fgets(line, sizeof line, peer.out));
    BOOST_TEST(std::string(line) == "held\n");
    asio::io_context ctx;
    auto onset = std::make_shared<onset_gate>();
    fleet_options o;
    o.url = server.url();
    o.timeout = 5000ms;
    fleet link(ctx.get_executor(), o);
    gate_set g;
    g.scope = scope_hash("peer-scope");
    g.onset = onset;
    link.attach(g);
    run_until(ctx, [&] { return link.joined() && link.idle(); });
    // Three requests here: one lease, then refused while the peer holds its three.
    int held = 0;
    run_until(ctx, [&] {
        while (held < 3 && onset->take() == onset_answer::held) ++held;
        return held == 1 && link.stats().lease_refusals >= 1;
    });
    BOOST_TEST(held == 1);
    // The peer gives its leases back: the others go.
    std::fclose(peer.in);
    peer.in = nullptr;
    run_until(ctx, [&] {
        while (held < 3 && onset->take() == onset_answer::held) ++held;
        return held == 3;
    });
    BOOST_REQUIRE(std::fgets(line, sizeof line, peer.out));
    BOOST_TEST(std::string(line) == "released\n");
    BOOST_TEST(test_server::reap(peer) == 0);
    link.stop();
    ctx.run();
}

BOOST_AUTO_TEST_SUITE_END()
