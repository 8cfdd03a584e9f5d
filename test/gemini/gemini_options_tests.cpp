// One options shape: settings given in code are checked as the
// environment's are (the constructor throws, from_env returns the same
// error), per-call overrides are checked at the call, and a call's tag,
// status and event handlers, admission mode and retry fields apply to that
// call only.
#include <resilience/gemini/client.hpp>
#include <resilience/gemini/media_task.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "gemini_fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace {

struct bad_case {
    const char* what;
    std::function<void(gemini::client_options&)> set;
    const char* names;  // the message names this
};

std::vector<bad_case> bad_cases() {
    using ms = std::chrono::milliseconds;
    return {
        {"max_retries", [](auto& o) { o.retry.max_retries = 1001; }, "retry.max_retries"},
        {"negative retries", [](auto& o) { o.retry.max_retries = -1; }, "retry.max_retries"},
        {"initial_delay", [](auto& o) { o.retry.backoff.initial_delay = ms(-1); }, "retry.initial_delay"},
        {"max_delay", [](auto& o) { o.retry.backoff.max_delay = 25h; }, "retry.max_delay"},
        {"initial > max", [](auto& o) { o.retry.backoff.initial_delay = 40s; }, "retry.initial_delay"},
        {"multiplier", [](auto& o) { o.retry.backoff.multiplier = 0.5; }, "retry.multiplier"},
        {"max_pushback", [](auto& o) { o.retry.max_pushback = ms(-5); }, "retry.max_pushback"},
        {"attempt_timeout", [](auto& o) { o.retry.attempt_timeout = ms(-5); }, "retry.attempt_timeout"},
        {"threshold", [](auto& o) { o.breaker.failure_threshold = 0; }, "breaker.failure_threshold"},
        {"open_timeout", [](auto& o) { o.breaker.open_timeout = ms(0); }, "breaker.open_timeout"},
        {"probes", [](auto& o) { o.breaker.half_open_probes = 0; }, "breaker.half_open_probes"},
        {"window ratio", [](auto& o) { o.breaker_window.failure_ratio = 2; }, "breaker.failure_ratio"},
        {"budget", [](auto& o) { o.budget.max_tokens = 0; }, "budget.max_tokens"},
        {"rate gate beta", [](auto& o) { o.rate_gate.beta = 1.5; }, "rate_gate.beta"},
        {"rate gate floor", [](auto& o) { o.rate_gate.min_fill_rate = 0; }, "rate_gate.min_fill_rate"},
        {"api_key", [](auto& o) { o.api_key = "bad key"; }, "api_key"},
        {"base_url", [](auto& o) { o.base_url = "ftp://example.com"; }, "base URL"},
        {"api_version", [](auto& o) { o.api_version = "v1/../x"; }, "api_version"},
        {"request_timeout", [](auto& o) { o.request_timeout = ms(-1); }, "request_timeout"},
        {"http.request_timeout", [](auto& o) { o.http.request_timeout = 5s; }, "http.request_timeout"},
        {"chunk_size", [](auto& o) { o.chunk_size = 1000; }, "chunk_size"},
        {"list_max_pages", [](auto& o) { o.list_max_pages = 0; }, "list_max_pages"},
        {"list_max_bytes", [](auto& o) { o.list_max_bytes = 0; }, "list_max_bytes"},
        {"http pool", [](auto& o) { o.http.max_connections_per_origin = 0; }, "max_connections_per_origin"},
        {"http io_timeout", [](auto& o) { o.http.io_timeout = -1s; }, "io_timeout"},
        {"http user_agent", [](auto& o) { o.http.user_agent = "a\r\nb"; }, "user_agent"},
    };
}

}  // namespace

BOOST_AUTO_TEST_SUITE(options_from_code)

BOOST_AUTO_TEST_CASE(every_bad_field_is_refused_by_validate_and_the_constructor) {
    asio::io_context ctx;
    BOOST_TEST(gemini::client_options().validate().has_value());
    for (const auto& c : bad_cases()) {
        BOOST_TEST_CONTEXT(c.what) {
            gemini::client_options o;
            c.set(o);
            auto v = o.validate();
            BOOST_REQUIRE(!v.has_value());
            BOOST_TEST((v.error().code == errc::invalid_config));
            BOOST_TEST(v.error().what().find(c.names) != std::string::npos, v.error().what());
            // The constructor throws a system_error carrying the same failure.
            bool thrown = false;
            try {
                gemini::client cl(ctx.get_executor(), o);
            } catch (const resilience::error& e) {
                thrown = true;
                BOOST_TEST((e.code() == errc::invalid_config));
                BOOST_TEST(e.get_failure().what() == v.error().what());
            }
            BOOST_TEST(thrown);
        }
    }
}

BOOST_AUTO_TEST_CASE(the_api_key_is_never_quoted) {
    gemini::client_options o;
    o.api_key = "AIzaSecret\x01Key";
    auto v = o.validate();
    BOOST_REQUIRE(!v.has_value());
    BOOST_TEST(v.error().what().find("AIzaSecret") == std::string::npos);
}

// A value set in code through from_env's overrides and the same value set on
// the options give the same error.
BOOST_AUTO_TEST_CASE(from_env_and_code_give_the_same_error) {
    auto none = [](const char*) -> std::optional<std::string> { return std::nullopt; };
    resilience::gemini::config_overrides ov;
    ov.max_retries = 1001;
    auto env = gemini::client_options::from_env(ov, none);
    BOOST_REQUIRE(!env.has_value());
    gemini::client_options o;
    o.retry.max_retries = 1001;
    auto code = o.validate();
    BOOST_REQUIRE(!code.has_value());
    BOOST_TEST(env.error().what() == code.error().what());
    BOOST_TEST((env.error().code == code.error().code));
}

BOOST_AUTO_TEST_CASE(retry_overrides_change_only_the_fields_they_set) {
    resilience::retry_policy base;
    base.max_retries = 7;
    base.backoff.initial_delay = 250ms;
    base.attempt_timeout = 9s;
    resilience::retry_overrides ov;
    BOOST_TEST(ov.empty());
    ov.max_retries = 0;
    ov.jitter = resilience::jitter_mode::none;
    BOOST_TEST(!ov.empty());
    auto p = ov.apply(base);
    BOOST_TEST(p.max_retries == 0);
    BOOST_TEST((p.backoff.jitter == resilience::jitter_mode::none));
    BOOST_TEST(p.backoff.initial_delay.count() == 250);
    BOOST_TEST(p.backoff.max_delay.count() == 30000);
    BOOST_TEST(p.attempt_timeout.count() == 9000);
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

const std::string key = "options-test-key-8e2a";

struct sim_fixture : test::gemini_sim_fixture {
    std::vector<std::string> client_events;
    std::string name;

    explicit sim_fixture(gemini::client_options opts = gemini::client_options()) {
        opts.retry.backoff.jitter = resilience::jitter_mode::none;
        opts.on_event = [this](const resilience::event& e) { client_events.emplace_back(resilience::to_string(e.type)); };
        start_sim(key, 3, sim::config(), std::move(opts));
        name = srv->add_file("clip", "video/mp4");
    }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(per_call_options)

// A bad override completes the call with invalid_config naming the field,
// before anything is sent; every call checks it.
BOOST_AUTO_TEST_CASE(a_bad_override_fails_the_call_before_sending) {
    sim_fixture fx;
    gemini::call_options c;
    c.retry.max_retries = -1;
    gemini::wait_options w;
    w.poll_multiplier = 0.5;
    gemini::wait_options w2;
    w2.retry.multiplier = 2000.0;
    fx.run([&]() -> asio::awaitable<void> {
        auto g = co_await fx.client->get(fx.name, c);
        BOOST_REQUIRE(!g);
        BOOST_TEST((g.error().code == errc::invalid_config));
        BOOST_TEST(g.error().what().find("retry.max_retries") != std::string::npos);
        auto l = co_await fx.client->list(c);
        BOOST_TEST((l.error().code == errc::invalid_config));
        auto d = co_await fx.client->remove(fx.name, c);
        BOOST_TEST((d.error().code == errc::invalid_config));
        auto a = co_await fx.client->wait_until_active(fx.name, w);
        BOOST_TEST((a.error().code == errc::invalid_config));
        BOOST_TEST(a.error().what().find("wait.poll_multiplier") != std::string::npos);
        auto a2 = co_await fx.client->wait_until_active(fx.name, w2);
        BOOST_TEST((a2.error().code == errc::invalid_config));
        BOOST_TEST(a2.error().what().find("retry.multiplier") != std::string::npos);
    });
    auto s = fx.srv->snapshot();
    BOOST_TEST(s.requests(sim::route::get) == 0u);
    BOOST_TEST(s.requests(sim::route::list) == 0u);
    BOOST_TEST(s.requests(sim::route::remove) == 0u);
}

// max_retries = 0 for one call: it fails at the first 503 while the next call
// (the client's 5 retries) rides it out.
BOOST_AUTO_TEST_CASE(an_override_applies_to_its_call_only) {
    gemini::client_options o;
    o.retry.backoff.initial_delay = 1s;
    sim_fixture fx(o);
    fx.srv->add_fault(sim::fault::next(sim::fault_kind::overloaded, sim::route::get, 2));
    gemini::call_options once;
    once.retry.max_retries = 0;
    fx.run([&]() -> asio::awaitable<void> {
        auto a = co_await fx.client->get(fx.name, once);
        BOOST_TEST((a.error().code == resilience::http::errc::server_error));
        BOOST_TEST(a.error().diag.attempts == 1);
        const auto t0 = fx.clk.now();
        auto b = co_await fx.client->get(fx.name);
        BOOST_TEST(b.has_value());
        BOOST_TEST((fx.clk.now() - t0 == 1s));  // one retry after the client's 1 s backoff
    });
}

// The tag starts every status line of the call and rides on its events; the
// call's event handler replaces the client's for that call, and the client's
// stats still count it.
BOOST_AUTO_TEST_CASE(tag_status_and_event_handlers_per_call) {
    sim_fixture fx;
    fx.srv->add_fault(sim::fault::next(sim::fault_kind::overloaded, sim::route::get, 1));
    std::vector<std::string> call_status;
    std::vector<std::string> tags;
    gemini::call_options c;
    c.tag = "thumb-42";
    c.on_status = [&](std::string_view s) { call_status.emplace_back(s); };
    c.on_event = [&](const resilience::event& e) { tags.emplace_back(e.tag); };
    fx.run([&]() -> asio::awaitable<void> {
        auto r = co_await fx.client->get(fx.name, c);
        BOOST_TEST(r.has_value());
    });
    BOOST_REQUIRE(!call_status.empty());
    for (const auto& s : call_status) BOOST_TEST(s.starts_with("[thumb-42] "), s);
    BOOST_TEST(fx.status.empty());         // replaced for this call
    BOOST_TEST(fx.client_events.empty());  // replaced for this call
    BOOST_REQUIRE(!tags.empty());
    for (const auto& t : tags) BOOST_TEST(t == "thumb-42");
    BOOST_TEST(fx.client->stats().retries == 1u);
    BOOST_TEST(fx.client->stats().attempts == 2u);

    // The wait's own lines (its pauses) carry the tag before the file name.
    gemini::wait_options w;
    w.tag = "job";
    fx.run([&]() -> asio::awaitable<void> {
        auto r = co_await fx.client->wait_until_active(fx.name, w);
        BOOST_TEST(r.has_value());
    });
}

// The media task's options are call_options: its tag reaches every call.
BOOST_AUTO_TEST_CASE(media_task_applies_its_call_options_to_each_call) {
    sim_fixture fx;
    const auto path = std::filesystem::temp_directory_path() / ("options-test-" + std::to_string(::getpid()) + ".txt");
    std::ofstream(path) << "hello";
    gemini::media_task_options t;
    t.file_path = path.string();
    t.tag = "task";
    t.deadline = fx.clk.now() + 10min;
    t.build_contents = [](const gemini::file& f) {
        std::vector<gemini::content> c(1);
        c[0].parts.push_back(gemini::part::from_file(f));
        return c;
    };
    std::optional<resilience::result<gemini::media_task_result>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await gemini::run_media_task(*fx.client, std::move(t)); });
    BOOST_REQUIRE(r && r->has_value());
    BOOST_REQUIRE(!fx.status.empty());
    for (const auto& s : fx.status) BOOST_TEST(s.starts_with("[task] "), s);
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_SUITE_END()
