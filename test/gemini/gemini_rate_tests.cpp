// The adaptive rate gate through the whole stack in virtual time: a
// gemini::client and a simulator that accepts N files.get a second (its quota:
// 429 with RetryInfo past it), on one io_context and one manual clock. With the
// gate the client meets far fewer 429s for the same goodput; the option comes
// from code or from RESILIENCE_ADAPTIVE_RATE; a held call says so.
#include "gemini_fixture.hpp"

#include <algorithm>

using resilience::duration;
using resilience::time_point;

namespace {

const std::string key = "rate-test-key-5b2f";

struct figures {
    std::uint64_t ok = 0;            // files.get answered 200
    std::uint64_t throttled = 0;     // files.get answered 429
    std::uint64_t failed_calls = 0;  // calls that ended without the file
    std::uint64_t rate_waits = 0;    // client_stats::rate_waits
    std::vector<std::string> status;
};

// `workers` calls of files.get in a closed loop for `span` virtual seconds
// against a simulator accepting `limit` a second (50 ms per request).
figures storm(bool gate, int workers, std::uint64_t limit, duration span) {
    figures out;
    gemini::client_options o;
    o.retry.max_retries = 20;
    o.rate_gate.enabled = gate;
    test::gemini_sim_fixture fx;
    fx.start_sim(key, 11, sim::config(), std::move(o));
    auto& clk = fx.clk;
    auto& srv = *fx.srv;
    auto& c = *fx.client;
    const std::string name = srv.add_file("clip", "video/mp4");
    auto slow = sim::fault::sometimes(sim::fault_kind::latency, sim::route::get, 1.0);
    slow.latency = 50ms;
    srv.add_fault(slow);
    srv.add_quota(sim::quota(sim::route::get, limit, 1s));

    const time_point end = clk.now() + span;
    int finished = 0;
    for (int w = 0; w < workers; ++w)
        asio::co_spawn(fx.ctx, [&]() -> asio::awaitable<void> {
            while (clk.now() < end) {
                auto r = co_await c.get(name);
                if (!r) ++out.failed_calls;
            }
            ++finished;
        }, test::rethrow{});
    resilience::testing::run_options ro;
    ro.idle_quantum = std::chrono::microseconds(0);  // one thread: ready loopback I/O shows up in poll()
    BOOST_REQUIRE(run_virtual(fx.ctx, clk, [&] { return finished == workers; }, ro));
    const auto st = srv.snapshot();
    out.ok = st.count(sim::route::get, 200);
    out.throttled = st.count(sim::route::get, 429);
    out.rate_waits = c.stats().rate_waits;
    out.status = std::move(fx.status);
    srv.stop();
    return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(rate_gate_whole_stack)

// 40 workers against 10 files.get a second for 60 virtual seconds.
BOOST_AUTO_TEST_CASE(with_the_gate_far_fewer_429s_for_the_same_goodput) {
    const auto off = storm(false, 40, 10, 60s);
    const auto on = storm(true, 40, 10, 60s);
    BOOST_TEST_MESSAGE("gate off: 200s " << off.ok << ", 429s " << off.throttled << ", failed calls "
                                         << off.failed_calls);
    BOOST_TEST_MESSAGE("gate on:  200s " << on.ok << ", 429s " << on.throttled << ", failed calls " << on.failed_calls
                                         << ", rate waits " << on.rate_waits);
    // The quota is met either way: about 10 a second.
    BOOST_TEST(off.ok >= 500u);
    BOOST_TEST(on.ok * 10 >= off.ok * 9);  // the same goodput (within 10%)
    BOOST_TEST(on.throttled * 3 <= off.throttled);  // far fewer 429s
    BOOST_TEST(on.failed_calls <= off.failed_calls);
    BOOST_TEST(off.rate_waits == 0u);
    BOOST_TEST(on.rate_waits > 0u);
    // A held call says why it is idle.
    const bool said = std::any_of(on.status.begin(), on.status.end(), [](const std::string& s) {
        return s.starts_with("Waiting ") && s.find(" for the rate gate (") != std::string::npos;
    });
    BOOST_TEST(said);
    for (const auto& s : off.status) BOOST_TEST(s.find("rate gate") == std::string::npos);
}

// RESILIENCE_ADAPTIVE_RATE turns the client's gate on; it is off by default.
BOOST_AUTO_TEST_CASE(the_environment_turns_the_gate_on) {
    auto env_of = [](std::optional<std::string> v) {
        return [v](const char* n) -> std::optional<std::string> {
            if (std::string_view(n) == "RESILIENCE_ADAPTIVE_RATE") return v;
            return std::nullopt;
        };
    };
    auto def = gemini::client_options::from_env({}, env_of(std::nullopt));
    BOOST_TEST_REQUIRE(def.has_value());
    BOOST_TEST(!def->rate_gate.enabled);
    auto on = gemini::client_options::from_env({}, env_of("1"));
    BOOST_TEST_REQUIRE(on.has_value());
    BOOST_TEST(on->rate_gate.enabled);
    auto bad = gemini::client_options::from_env({}, env_of("maybe"));
    BOOST_TEST_REQUIRE(!bad.has_value());
    BOOST_TEST((bad.error().code == resilience::errc::invalid_config));
    BOOST_TEST(bad.error().what().find("RESILIENCE_ADAPTIVE_RATE") != std::string::npos);
    // The client's pipeline holds a gate only when it is on.
    asio::io_context ctx;
    on->base_url = "http://127.0.0.1:9";
    gemini::client with(ctx.get_executor(), *on);
    BOOST_TEST(with.pipeline().options().rate_gate != nullptr);
    def->base_url = "http://127.0.0.1:9";
    gemini::client without(ctx.get_executor(), *def);
    BOOST_TEST(without.pipeline().options().rate_gate == nullptr);
}

// A fleet (client_options::fleet) is handed the client's rate gate with its
// other gates when the gate is on (its cuts are then shared), none when off.
BOOST_AUTO_TEST_CASE(a_fleet_gets_the_rate_gate_with_the_other_gates) {
    struct recording_link final : resilience::gate_link {
        std::vector<resilience::gate_set> sets;
        void attach(const resilience::gate_set& g) override { sets.push_back(g); }
    };
    asio::io_context ctx;
    for (bool on : {true, false}) {
        auto link = std::make_shared<recording_link>();
        gemini::client_options o;
        o.api_key = key;
        o.base_url = "http://127.0.0.1:9";
        o.rate_gate.enabled = on;
        o.fleet = link;
        gemini::client c(ctx.get_executor(), o);
        BOOST_TEST_REQUIRE(link->sets.size() == 1u);
        const auto& g = link->sets[0];
        BOOST_TEST(g.scope == resilience::scope_hash(c.pipeline().options().scope));
        BOOST_TEST((g.breaker && g.cooldown && g.budget));
        BOOST_TEST((g.rate == c.pipeline().options().rate_gate));
        BOOST_TEST((g.rate != nullptr) == on);
    }
}

BOOST_AUTO_TEST_SUITE_END()
