#define BOOST_TEST_MODULE gemini_client
#include <resilience/gemini/client.hpp>
#include <resilience/gemini/media_task.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "gemini_fixture.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>
#include <random>

namespace {

const std::string key = "sim-test-key-5f2b9c";

// A simulator and a client sharing one io_context and one manual clock.
struct fixture : test::gemini_sim_fixture {
    explicit fixture(sim::config cfg = sim::config(), gemini::client_options opts = gemini::client_options()) {
        cfg.record_requests = true;
        start_sim(key, 11, std::move(cfg), std::move(opts));
    }
};

std::string temp_file(const std::string& name, std::size_t size, std::uint64_t seed = 1) {
    auto p = std::filesystem::temp_directory_path() / ("gemini-tests-" + std::to_string(::getpid()) + "-" + name);
    std::mt19937_64 rng(seed);
    std::string bytes(size, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng());
    std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p.string();
}

std::string read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

BOOST_AUTO_TEST_CASE(upload_of_20_mib_resumes_after_a_failed_chunk) {
    fixture fx;
    // The second chunk request fails with a reset: the client asks where the
    // server stands and resumes.
    fx.srv->add_fault(sim::fault::requests(sim::fault_kind::reset_before_headers, sim::route::upload_chunk, 2, 2));
    const std::string path = temp_file("big.mp4", 20u << 20);
    std::optional<resilience::result<gemini::file>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await fx.client->upload(path); });
    BOOST_REQUIRE(r && *r);
    BOOST_TEST((*r)->size_bytes == std::int64_t(20u << 20));
    BOOST_TEST((*r)->mime_type == "video/mp4");
    auto stored = fx.srv->file_bytes((*r)->name);
    BOOST_REQUIRE(stored.has_value());
    BOOST_TEST((*stored == read_all(path)));
    auto s = fx.srv->snapshot();
    // 3 chunks (8 + 8 + 4 MiB); the second is stored, then the connection is
    // reset before the answer: the query says 16 MiB arrived, so the client
    // goes on with the third. chunk, chunk (reset), query, chunk.
    BOOST_TEST(s.requests(sim::route::upload_chunk) == 4u);
    BOOST_TEST(s.faults_of("reset_before_headers") == 1u);
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(wait_honours_a_10s_retry_info_and_sends_nothing_before_it) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(30s);
    fixture fx(cfg);
    std::string name = fx.srv->add_file("hello", "text/plain");
    // After two polls, one 429 with a RetryInfo of 10 s.
    auto f = sim::fault::requests(sim::fault_kind::rate_limit, sim::route::get, 3, 3);
    f.retry_delay = 10s;
    fx.srv->add_fault(f);
    gemini::wait_options w;
    w.poll_initial = 1s;
    w.poll_max = 2s;
    std::optional<resilience::result<gemini::file>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await fx.client->wait_until_active(name, std::move(w)); });
    BOOST_REQUIRE(r && *r);
    BOOST_TEST(((*r)->state == gemini::file_state::active));
    auto reqs = fx.srv->requests();
    std::optional<resilience::time_point> t429;
    for (auto& q : reqs) {
        if (q.target != sim::route::get) continue;
        if (q.status == 429) t429 = q.at;
        else if (t429) {
            BOOST_TEST((q.at - *t429 >= 10s), "a poll came " << std::chrono::duration<double>(q.at - *t429).count()
                                                             << " s after the 429");
            break;
        }
    }
    BOOST_REQUIRE(t429.has_value());
    BOOST_TEST(fx.all_status().find("Rate limited. Respecting Retry-After header: 10s") != std::string::npos);
    BOOST_TEST(fx.all_status().find(name + ": ") != std::string::npos);  // status names the file
}

BOOST_AUTO_TEST_CASE(wait_rides_out_503_waves_and_connection_resets) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(20s);
    gemini::client_options opts;
    opts.retry.max_retries = 8;
    opts.breaker.failure_threshold = 100;  // this test is about retries, not the breaker
    fixture fx(cfg, opts);
    std::string name = fx.srv->add_file("video", "video/mp4");
    fx.srv->add_fault(sim::fault::requests(sim::fault_kind::overloaded, sim::route::get, 2, 4));
    // A reset before any answer byte on a pooled connection looks stale: the
    // HTTP client re-sends a GET once by itself, so two in a row reach the retry loop.
    fx.srv->add_fault(sim::fault::requests(sim::fault_kind::reset_before_headers, sim::route::get, 6, 7));
    fx.srv->add_fault(sim::fault::requests(sim::fault_kind::reset_after_headers, sim::route::get, 9, 9));
    std::optional<resilience::result<gemini::file>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await fx.client->wait_until_active(name); });
    BOOST_REQUIRE(r && *r);
    BOOST_TEST(((*r)->state == gemini::file_state::active));
    BOOST_TEST(fx.client->stats().retries >= 4u);  // 3 x 503, then the resets (fault rules count only what earlier rules let through)
    BOOST_TEST(fx.all_status().find("(RETRYABLE_SERVER)") != std::string::npos);
    BOOST_TEST(fx.all_status().find("(RETRYABLE_NETWORK)") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_failed_file_ends_the_wait_with_the_servers_error) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(3s);
    cfg.fail_share = 1.0;
    fixture fx(cfg);
    std::string name = fx.srv->add_file("broken", "video/mp4");
    std::optional<resilience::result<gemini::file>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await fx.client->wait_until_active(name); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST((r->error().code == resilience::gemini::errc::file_failed));
    BOOST_TEST(r->error().what().find("FAILED") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_missing_file_ends_at_once) {
    fixture fx;
    std::optional<resilience::result<gemini::file>> r;
    const auto t0 = fx.clk.now();
    fx.run([&]() -> asio::awaitable<void> { r = co_await fx.client->wait_until_active("files/doesnotexist"); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST((r->error().code == resilience::http::errc::forbidden));
    BOOST_TEST(r->error().diag.status == "PERMISSION_DENIED");
    BOOST_TEST(fx.srv->snapshot().requests(sim::route::get) == 1u);
    BOOST_TEST((fx.clk.now() == t0));  // no waiting at all
}

BOOST_AUTO_TEST_CASE(the_deadline_ends_the_wait_with_the_last_state) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(1h);
    fixture fx(cfg);
    std::string name = fx.srv->add_file("slow", "video/mp4");
    gemini::wait_options w;
    w.deadline = fx.clk.now() + 30s;
    std::optional<resilience::result<gemini::file>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await fx.client->wait_until_active(name, std::move(w)); });
    BOOST_REQUIRE(r && !*r);
    BOOST_TEST((r->error().code == errc::deadline_exceeded));
    BOOST_TEST(r->error().what().find("PROCESSING") != std::string::npos);
    BOOST_TEST((fx.clk.now() <= w.deadline));
}

BOOST_AUTO_TEST_CASE(cancellation_ends_the_wait_promptly) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(1h);
    fixture fx(cfg);
    std::string name = fx.srv->add_file("slow", "video/mp4");
    asio::cancellation_signal sig;
    std::optional<resilience::result<gemini::file>> r;
    asio::co_spawn(fx.ctx, [&]() -> asio::awaitable<void> { r = co_await fx.client->wait_until_active(name); },
                   asio::bind_cancellation_slot(sig.slot(), test::rethrow{}));
    // Let it poll a few times, then cancel while it sleeps.
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return fx.srv->snapshot().requests(sim::route::get) >= 3; }));
    const auto polls = fx.srv->snapshot().requests(sim::route::get);
    const auto t_cancel = fx.clk.now();
    sig.emit(asio::cancellation_type::terminal);
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return r.has_value(); }));
    BOOST_TEST((r->error().code == asio::error::operation_aborted));
    BOOST_TEST((fx.clk.now() == t_cancel));
    BOOST_TEST(fx.srv->snapshot().requests(sim::route::get) == polls);
}

BOOST_AUTO_TEST_CASE(a_thousand_concurrent_waits_share_a_bounded_pool) {
    sim::config cfg;
    cfg.processing = sim::processing_time::uniform(1s, 20s);
    gemini::client_options opts;
    opts.http.max_connections_per_origin = 8;
    fixture fx(cfg, opts);
    std::vector<std::string> names;
    for (int i = 0; i < 1000; ++i) names.push_back(fx.srv->add_file("f" + std::to_string(i), "video/mp4"));
    int ok = 0, done = 0;
    for (auto& n : names)
        asio::co_spawn(fx.ctx, [&, n]() -> asio::awaitable<void> {
            auto r = co_await fx.client->wait_until_active(n);
            if (r && r->state == gemini::file_state::active) ++ok;
            ++done;
        }, test::rethrow{});
    BOOST_REQUIRE(run_virtual(fx.ctx, fx.clk, [&] { return done == 1000; }));
    BOOST_TEST(ok == 1000);
    auto s = fx.srv->snapshot();
    BOOST_TEST(s.total_connections <= 8u);
    BOOST_TEST(fx.client->http().stats().opened <= 8u);
}

BOOST_AUTO_TEST_CASE(media_task_uploads_waits_and_generates) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(5s);
    fixture fx(cfg);
    const std::string path = temp_file("clip.mp4", 100000);
    gemini::media_task_options t;
    t.file_path = path;
    std::vector<std::string> seen;
    t.on_status = [&](std::string_view s) { seen.emplace_back(s); };
    t.build_contents = [](const gemini::file& f) {
        gemini::content c;
        c.parts = {gemini::part::from_file(f), gemini::part::from_text("Describe this clip")};
        return std::vector<gemini::content>{c};
    };
    std::optional<resilience::result<gemini::media_task_result>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await gemini::run_media_task(*fx.client, std::move(t)); });
    BOOST_REQUIRE(r && *r);
    BOOST_TEST(!(*r)->generated.text.empty());
    BOOST_TEST((*r)->generated.finish_reason == "STOP");
    BOOST_TEST((*r)->generated.usage.total_tokens > 0);
    BOOST_REQUIRE(seen.size() >= 3u);
    BOOST_TEST((std::find(seen.begin(), seen.end(), "Processing media file...") != seen.end()));
    BOOST_TEST((std::find(seen.begin(), seen.end(), "Generating content...") != seen.end()));
    BOOST_TEST(seen.back() == "Done.");
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(list_get_delete_and_quota_errors) {
    fixture fx;
    for (int i = 0; i < 25; ++i) fx.srv->add_file("x" + std::to_string(i));
    std::optional<resilience::result<std::vector<gemini::file>>> all;
    fx.run([&]() -> asio::awaitable<void> { all = co_await fx.client->list(); });
    BOOST_REQUIRE(all && *all);
    BOOST_TEST((*all)->size() == 25u);
    std::string victim = (**all)[0].name;
    std::optional<resilience::result<void>> del;
    fx.run([&]() -> asio::awaitable<void> { del = co_await fx.client->remove(victim); });
    BOOST_REQUIRE(del && *del);
    BOOST_TEST(!fx.srv->file(victim).has_value());

    // A per-day quota is not retried and says which quota it was.
    fx.srv->add_fault(sim::fault::next(sim::fault_kind::quota_per_day, sim::route::get, 1));
    std::optional<resilience::result<gemini::file>> g;
    std::string other = (**all)[1].name;
    fx.run([&]() -> asio::awaitable<void> { g = co_await fx.client->get(other); });
    BOOST_REQUIRE(g && !*g);
    BOOST_TEST((g->error().code == resilience::gemini::errc::quota_exhausted));
    BOOST_TEST(g->error().what().find("per-day quota") != std::string::npos);
    BOOST_TEST(g->error().diag.attempts == 1);
}

BOOST_AUTO_TEST_CASE(the_api_key_never_appears_in_status_events_or_errors) {
    gemini::client_options opts;
    std::string events;
    opts.on_event = [&](const resilience::event& e) {
        events += std::string(e.message) + " " + std::string(e.subject) + "\n";
    };
    fixture fx(sim::config(), opts);
    std::string name = fx.srv->add_file("k");
    fx.srv->add_fault(sim::fault::next(sim::fault_kind::internal, sim::route::get, 2));
    fx.srv->add_fault(sim::fault::next(sim::fault_kind::plain_text_error, sim::route::list, 1));
    std::string errors;
    fx.run([&]() -> asio::awaitable<void> {
        auto a = co_await fx.client->wait_until_active(name);
        if (!a) errors += a.error().what();
        auto b = co_await fx.client->list();
        if (!b) errors += b.error().what();
        auto c = co_await fx.client->get("files/nope");
        if (!c) errors += c.error().what();
    });
    // A wrong key: the server's answer must not echo anything secret either.
    gemini::client_options bad;
    bad.api_key = "wrong-" + key;
    bad.base_url = fx.srv->base_url();
    bad.time = &fx.clk;
    bad.on_status = [&](std::string_view s) { fx.status.emplace_back(s); };
    gemini::client wrong(fx.ctx.get_executor(), bad);
    std::optional<resilience::result<gemini::file>> w;
    fx.run([&]() -> asio::awaitable<void> { w = co_await wrong.get(name); });
    BOOST_REQUIRE(w && !*w);
    BOOST_TEST(w->error().diag.reason == "API_KEY_INVALID");
    errors += w->error().what() + w->error().diag.message;
    const std::string everything = fx.all_status() + events + errors;
    BOOST_TEST(!everything.empty());
    BOOST_TEST(everything.find(key) == std::string::npos);
}
