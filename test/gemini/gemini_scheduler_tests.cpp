// The poll scheduler of wait_until_active (docs/design-notes.md, "Poll
// scheduler"), in virtual time against the in-process simulator: ordering,
// shared poll streams, list rounds and their fallback, cancellation,
// deadlines, FAILED, the storm-onset recheck of the gates, and the onset cap
// of a fleet's cold scope.
#include "gemini_fixture.hpp"

#include <resilience/cooldown.hpp>
#include <resilience/onset_gate.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>

#include <map>

using resilience::error_code;
using resilience::time_point;

namespace {

const std::string key = "sched-test-key-3a9";

struct outcome {
    bool done = false;
    error_code ec;
    gemini::file f;
    time_point at{};
    resilience::diagnostics diag;
};

struct fixture : test::gemini_sim_fixture {
    explicit fixture(sim::config cfg = sim::config(), std::size_t list_min_waits = 0, std::size_t pool = 16) {
        cfg.record_requests = true;
        gemini::client_options opts;
        opts.poll_list_min_waits = list_min_waits;
        opts.http.max_connections_per_origin = pool;
        start_sim(key, 7, std::move(cfg), std::move(opts));
    }

    void wait(const std::string& name, outcome& o, gemini::wait_options w = gemini::wait_options()) {
        client->async_wait_until_active(name, std::move(w), o.diag, [this, &o](error_code ec, gemini::file f) {
            o.done = true;
            o.ec = ec;
            o.f = std::move(f);
            o.at = clk.now();
        });
    }

    bool run_until(std::function<bool()> done) { return run_virtual(ctx, clk, std::move(done)); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(waits_complete_in_the_order_their_files_become_active) {
    sim::config cfg;
    cfg.processing = sim::processing_time::uniform(2s, 40s);
    fixture fx(cfg);
    std::vector<std::string> names;
    for (int i = 0; i < 20; ++i) names.push_back(fx.srv->add_file("x"));
    std::vector<outcome> out(names.size());
    gemini::wait_options w;
    w.poll_initial = 1s;
    w.poll_max = 1s;  // a fixed 1 s schedule (+/- 10 %): return within ~1.1 s of ACTIVE
    for (std::size_t i = 0; i < names.size(); ++i) fx.wait(names[i], out[i], w);
    BOOST_REQUIRE(fx.run_until([&] { return std::all_of(out.begin(), out.end(), [](auto& o) { return o.done; }); }));
    for (std::size_t i = 0; i < names.size(); ++i) {
        BOOST_TEST(!out[i].ec);
        BOOST_TEST((out[i].f.state == gemini::file_state::active));
        auto info = fx.srv->file(names[i]);
        BOOST_REQUIRE(info);
        BOOST_TEST((out[i].at >= info->ready_at));
        BOOST_TEST((out[i].at - info->ready_at <= 1200ms));
    }
    BOOST_TEST(fx.client->stats().waits == 0u);
    BOOST_TEST(fx.client->stats().poll_streams == 0u);
}

BOOST_AUTO_TEST_CASE(waits_on_one_file_share_one_poll_stream) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(30s);
    fixture fx(cfg);
    const std::string name = fx.srv->add_file("x");
    std::vector<outcome> out(50);
    for (auto& o : out) fx.wait(name, o);
    fx.ctx.poll();
    BOOST_TEST(fx.client->stats().waits == 50u);
    BOOST_TEST(fx.client->stats().poll_streams == 1u);
    BOOST_REQUIRE(fx.run_until([&] { return std::all_of(out.begin(), out.end(), [](auto& o) { return o.done; }); }));
    for (auto& o : out) BOOST_TEST((o.f.state == gemini::file_state::active));
    // One wait alone polls 1, 2.5, 4.75, 8.1, 13.2, 20.8 s and every 10 s
    // after that: about 8 requests for 30 s, the same for 50 waits.
    const auto polls = fx.srv->snapshot().polls_of(name);
    BOOST_TEST(polls >= 5u);
    BOOST_TEST(polls <= 10u);
    BOOST_TEST(fx.client->stats().polls == polls);
}

BOOST_AUTO_TEST_CASE(failed_ends_every_wait_on_the_file) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(5s);
    cfg.fail_share = 1.0;
    fixture fx(cfg);
    const std::string name = fx.srv->add_file("x");
    std::vector<outcome> out(5);
    for (auto& o : out) fx.wait(name, o);
    BOOST_REQUIRE(fx.run_until([&] { return std::all_of(out.begin(), out.end(), [](auto& o) { return o.done; }); }));
    for (auto& o : out) {
        BOOST_TEST((o.ec == gemini::errc::file_failed));
        BOOST_TEST(o.diag.message.find(name + " FAILED") != std::string::npos);
    }
    BOOST_TEST(fx.client->stats().waits == 0u);
}

BOOST_AUTO_TEST_CASE(a_cancelled_wait_leaves_the_scheduler_at_once) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(1h);
    fixture fx(cfg);
    const std::string a = fx.srv->add_file("x"), b = fx.srv->add_file("y");
    outcome oa, ob;
    asio::cancellation_signal sig;
    fx.client->async_wait_until_active(a, gemini::wait_options(), oa.diag,
                                       asio::bind_cancellation_slot(sig.slot(), [&](error_code ec, gemini::file) {
                                           oa.done = true;
                                           oa.ec = ec;
                                       }));
    fx.wait(b, ob);
    // Both polled once, both asleep.
    BOOST_REQUIRE(fx.run_until([&] { return fx.client->stats().polls == 2 && fx.client->http().stats().in_use == 0; }));
    BOOST_TEST(fx.client->stats().waits == 2u);
    const time_point before = fx.clk.now();
    sig.emit(asio::cancellation_type::terminal);
    BOOST_TEST(fx.client->stats().waits == 1u);       // out of the scheduler at once
    BOOST_TEST(fx.client->stats().poll_streams == 1u);  // its stream too
    fx.ctx.poll();
    BOOST_TEST(oa.done);
    BOOST_TEST((oa.ec == asio::error::operation_aborted));
    BOOST_TEST(oa.diag.message.find("wait cancelled") != std::string::npos);
    BOOST_TEST((fx.clk.now() == before));  // no virtual time passed
    BOOST_TEST(!ob.done);
    // The other wait goes on, and nothing polls the cancelled file again.
    const auto polls_a = fx.srv->snapshot().polls_of(a);
    fx.clk.advance(30s);
    fx.ctx.poll();
    BOOST_REQUIRE(fx.run_until([&] { return fx.client->stats().polls >= 5; }));
    BOOST_TEST(fx.srv->snapshot().polls_of(a) == polls_a);
    BOOST_TEST(!ob.done);
}

BOOST_AUTO_TEST_CASE(a_deadline_ends_a_scheduled_wait_on_time_with_the_last_state) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(1h);
    fixture fx(cfg);
    const std::string name = fx.srv->add_file("x");
    outcome o;
    const time_point t0 = fx.clk.now();
    gemini::wait_options w;
    w.deadline = t0 + 25s;
    fx.wait(name, o, w);
    BOOST_REQUIRE(fx.run_until([&] { return o.done; }));
    BOOST_TEST((o.ec == errc::deadline_exceeded));
    BOOST_TEST(o.diag.message.find("last state: PROCESSING") != std::string::npos);
    BOOST_TEST((fx.clk.now() <= t0 + 25s));
    BOOST_TEST(fx.client->stats().waits == 0u);
}

BOOST_AUTO_TEST_CASE(a_deadline_ends_one_wait_of_a_shared_stream_and_not_the_others) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(40s);
    fixture fx(cfg);
    const std::string name = fx.srv->add_file("x");
    outcome early, late;
    gemini::wait_options w;
    w.deadline = fx.clk.now() + 12s;
    fx.wait(name, early, w);
    fx.wait(name, late);
    BOOST_REQUIRE(fx.run_until([&] { return early.done && late.done; }));
    BOOST_TEST((early.ec == errc::deadline_exceeded));
    BOOST_TEST(!late.ec);
    BOOST_TEST((late.f.state == gemini::file_state::active));
}

BOOST_AUTO_TEST_CASE(list_rounds_answer_many_waits_and_fall_back_to_get) {
    sim::config cfg;
    cfg.processing = sim::processing_time::uniform(5s, 30s);
    fixture fx(cfg, /*list_min_waits=*/10);
    std::vector<std::string> names;
    for (int i = 0; i < 300; ++i) names.push_back(fx.srv->add_file("x"));
    std::vector<outcome> out(names.size() + 1);
    for (std::size_t i = 0; i < names.size(); ++i) fx.wait(names[i], out[i]);
    // A name the list never shows: only files.get answers it (404: NOT_FOUND ends the wait).
    fx.wait("files/neverlisted", out.back());
    BOOST_REQUIRE(fx.run_until([&] { return std::all_of(out.begin(), out.end(), [](auto& o) { return o.done; }); }));
    for (std::size_t i = 0; i < names.size(); ++i) BOOST_TEST((out[i].f.state == gemini::file_state::active));
    BOOST_TEST(out.back().ec);
    BOOST_TEST(fx.srv->snapshot().polls_of("files/neverlisted") >= 1u);
    const auto s = fx.srv->snapshot();
    const auto requests = s.requests(sim::route::get) + s.requests(sim::route::list);
    BOOST_TEST(fx.client->stats().poll_list_pages > 0u);
    BOOST_TEST(s.requests(sim::route::list) == fx.client->stats().poll_list_pages);
    // One files.get per file and round would take about 6 per wait here.
    BOOST_TEST(requests < names.size());
}

BOOST_AUTO_TEST_CASE(storm_onset_requests_waiting_for_the_pool_recheck_the_cooldown) {
    // Every files.get is answered 429 with RetryInfo 10 s for 60 s; 200
    // waits on a pool of 4: the requests queued for a connection when the
    // first 429 arrives must not go out in that cooldown period.
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(90s);
    fixture fx(cfg, 0, /*pool=*/4);
    sim::fault fl(sim::fault_kind::rate_limit, sim::route::get);
    fl.retry_delay = 10s;
    fx.srv->add_fault(fl);
    const time_point t0 = fx.clk.now();
    std::vector<std::string> names;
    for (int i = 0; i < 200; ++i) names.push_back(fx.srv->add_file("x"));
    std::vector<outcome> out(names.size());
    gemini::wait_options w;
    w.deadline = t0 + 10min;
    for (std::size_t i = 0; i < names.size(); ++i) fx.wait(names[i], out[i], w);
    BOOST_REQUIRE(fx.run_until([&] { return fx.clk.now() >= t0 + 60s; }));
    fx.srv->clear_faults();
    BOOST_REQUIRE(fx.run_until([&] { return std::all_of(out.begin(), out.end(), [](auto& o) { return o.done; }); }));
    std::map<long, std::size_t> per_period;
    for (auto& r : fx.srv->requests())
        if (r.target == sim::route::get && r.status == 429) ++per_period[long((r.at - t0) / 10s)];
    BOOST_REQUIRE(!per_period.empty());
    for (auto& [period, n] : per_period) BOOST_TEST(n <= 4u, "period " << period << ": " << n << " 429s");
    for (auto& o : out) BOOST_TEST((o.f.state == gemini::file_state::active));
}

namespace {

// Two clients standing for two processes of a fleet, linked in memory as
// resilience::redis::fleet links them through Redis: a cooldown raised in one
// holds the other, and (cap > 0) the cold scope's requests in flight across
// both are capped by one permit source (the onset cap, docs/fleet.md).
struct memory_fleet final : resilience::gate_link {
    struct permits final : resilience::onset_permits {
        int cap = 0, in_flight = 0, most = 0;
        resilience::onset_answer take() noexcept override {
            if (in_flight >= cap) return resilience::onset_answer::wait;
            most = std::max(most, ++in_flight);
            return resilience::onset_answer::held;
        }
        void give_back(bool) noexcept override { --in_flight; }
    };
    struct cooldowns final : resilience::gate_observer {
        manual_clock* clk = nullptr;
        // Weak: each cooldown holds this observer, so a strong pointer back
        // would be a cycle (LeakSanitizer finds it).
        std::vector<std::weak_ptr<resilience::cooldown>> all;
        void on_cooldown(std::uint64_t scope, resilience::duration remaining) noexcept override {
            const time_point now = clk->now();
            for (auto& w : all)
                if (auto c = w.lock()) c->apply_remote(scope, now + remaining, now);
        }
    };
    std::shared_ptr<permits> cap = std::make_shared<permits>();
    std::shared_ptr<cooldowns> cools = std::make_shared<cooldowns>();
    std::vector<std::shared_ptr<resilience::onset_gate>> gates;
    void attach(const resilience::gate_set& g) override {
        cools->all.push_back(g.cooldown);
        g.cooldown->set_observer(cools);
        if (cap->cap > 0) g.onset->link(cap, resilience::onset_settings{});
        gates.push_back(g.onset);
    }
};

// 429s per 10 s cooldown period across two clients of pool 4 (100 waits
// each) in a storm from the first instant; every wait must end ACTIVE.
std::map<long, std::size_t> fleet_storm(int cap, memory_fleet& link) {
    test::gemini_sim_fixture fx;
    link.cap->cap = cap;
    link.cools->clk = &fx.clk;
    auto link_ptr = std::shared_ptr<memory_fleet>(&link, [](memory_fleet*) {});
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(90s);
    cfg.record_requests = true;
    gemini::client_options opts;
    opts.poll_list_min_waits = 0;
    opts.http.max_connections_per_origin = 4;
    opts.fleet = link_ptr;
    fx.start_sim(key, 7, cfg, opts);
    opts.api_key = key;
    opts.base_url = fx.srv->base_url();
    opts.time = &fx.clk;
    opts.seed = 8;
    gemini::client other(fx.ctx.get_executor(), opts);
    sim::fault fl(sim::fault_kind::rate_limit, sim::route::get);
    fl.retry_delay = 10s;
    fx.srv->add_fault(fl);
    const time_point t0 = fx.clk.now();
    std::vector<outcome> out(200);
    gemini::wait_options w;
    w.deadline = t0 + 10min;
    for (std::size_t i = 0; i < out.size(); ++i) {
        auto& o = out[i];
        auto done = [&o](error_code ec, gemini::file f) {
            o.done = true;
            o.ec = ec;
            o.f = std::move(f);
        };
        (i % 2 ? *fx.client : other).async_wait_until_active(fx.srv->add_file("x"), w, done);
    }
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return fx.clk.now() >= t0 + 60s; }));
    fx.srv->clear_faults();
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] {
        return std::all_of(out.begin(), out.end(), [](auto& o) { return o.done; });
    }));
    for (auto& o : out) BOOST_TEST((o.f.state == gemini::file_state::active));
    std::map<long, std::size_t> per_period;
    for (auto& r : fx.srv->requests())
        if (r.target == sim::route::get && r.status == 429) ++per_period[long((r.at - t0) / 10s)];
    if (cap > 0)
        for (auto& g : link.gates) BOOST_TEST(g->warm(fx.clk.now()));  // the storm is over: requests ask nothing
    return per_period;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_onset_cap_bounds_a_cold_fleet_first_period_too) {
    // Without the cap, both clients' pools (8 requests) meet the storm's
    // first instant; with a cap of 2, at most 2 in flight across the fleet
    // while the scope is cold, so at most 2 429s in any period, the first included.
    memory_fleet uncapped;
    const auto without = fleet_storm(0, uncapped);
    BOOST_REQUIRE(without.count(0));
    BOOST_TEST(without.at(0) > 2u);
    memory_fleet capped;
    const auto with = fleet_storm(2, capped);
    BOOST_REQUIRE(with.count(0));
    for (auto& [period, n] : with) BOOST_TEST(n <= 2u, "period " << period << ": " << n << " 429s");
    BOOST_TEST(capped.cap->most == 2);
    BOOST_TEST(capped.cap->in_flight == 0);  // every permit given back
}
