// What a failed call leaves behind, and how large an answer may be: an
// upload (or a media task) reported as failed deletes the file it created, or
// names it in its error; an answer larger than max_response_bytes ends the
// call at once. Against the simulator and a scripted server, in virtual time.
#include <resilience/gemini/client.hpp>
#include <resilience/gemini/media_task.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include "gemini_fixture.hpp"
#include "test_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

namespace {

const std::string lkey = "leftover-key-19d0b7";

// The simulator and a client on one io_context and one manual clock.
struct sim_fixture : test::gemini_sim_fixture {
    explicit sim_fixture(sim::config cfg) { start_sim(lkey, 3, std::move(cfg), gemini::client_options()); }
    ~sim_fixture() { srv->stop(); }
};

std::string temp_file(const std::string& name, std::size_t size) {
    auto p = std::filesystem::temp_directory_path() / ("gemini-leftover-" + std::to_string(::getpid()) + "-" + name);
    std::ofstream(p, std::ios::binary) << std::string(size, 'v');
    return p.string();
}

// The "files/..." name an error message gives.
std::string named_file(const std::string& message) {
    auto at = message.find("files/");
    if (at == std::string::npos) return {};
    auto end = message.find_first_of(" ,)", at);
    return message.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

gemini::media_task_options task_for(const std::string& path) {
    gemini::media_task_options t;
    t.file_path = path;
    t.build_contents = [](const gemini::file& f) {
        gemini::content c;
        c.parts = {gemini::part::from_file(f), gemini::part::from_text("Describe it")};
        return std::vector<gemini::content>{c};
    };
    return t;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gemini_leftover)

BOOST_AUTO_TEST_CASE(an_upload_stored_as_failed_is_reported_and_deleted) {
    sim::config cfg;
    cfg.fail_share = 1.0;  // instant processing: the finalised file is FAILED at once
    sim_fixture fx(cfg);
    const std::string path = temp_file("failed.mp4", 1000);
    std::optional<resilience::result<gemini::file>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await fx.client->upload(path); });
    BOOST_REQUIRE(r && !*r);
    const std::string msg = r->error().what();
    BOOST_TEST((r->error().code == gemini::errc::file_failed), msg);
    BOOST_TEST(msg.find("FAILED") != std::string::npos, msg);
    BOOST_TEST(msg.find("was deleted") != std::string::npos, msg);
    BOOST_TEST(!named_file(msg).empty(), msg);
    auto s = fx.srv->snapshot();
    BOOST_TEST(s.files == 0u);
    BOOST_TEST(s.requests(sim::route::remove) == 1u);
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(a_failed_upload_whose_deletion_fails_names_the_file_left) {
    sim::config cfg;
    cfg.fail_share = 1.0;
    sim_fixture fx(cfg);
    fx.srv->add_fault(sim::fault(sim::fault_kind::quota_per_day, sim::route::remove));  // not retried
    const std::string path = temp_file("kept.mp4", 1000);
    std::optional<resilience::result<gemini::file>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await fx.client->upload(path); });
    BOOST_REQUIRE(r && !*r);
    const std::string msg = r->error().what();
    BOOST_TEST((r->error().code == gemini::errc::file_failed), msg);
    BOOST_TEST(msg.find("is left on the server: deleting it failed") != std::string::npos, msg);
    const std::string name = named_file(msg);
    BOOST_TEST(fx.srv->file_bytes(name).has_value(), name);  // the file named is the one left
    BOOST_TEST(fx.srv->snapshot().files == 1u);
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(the_deletion_of_a_failed_upload_is_bounded_by_its_deadline) {
    sim::config cfg;
    cfg.fail_share = 1.0;
    sim_fixture fx(cfg);
    fx.srv->add_fault(sim::fault(sim::fault_kind::overloaded, sim::route::remove));  // retried until the deadline
    const std::string path = temp_file("deadline.mp4", 1000);
    gemini::upload_options uo;
    uo.deadline = fx.clk.now() + 20s;
    std::optional<resilience::result<gemini::file>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await fx.client->upload(path, std::move(uo)); });
    BOOST_REQUIRE(r && !*r);
    const std::string msg = r->error().what();
    BOOST_TEST((r->error().code == gemini::errc::file_failed), msg);
    BOOST_TEST(msg.find("is left on the server") != std::string::npos, msg);
    BOOST_TEST((fx.clk.now() <= uo.deadline));
    BOOST_TEST(fx.srv->snapshot().files == 1u);
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(a_media_task_whose_file_ends_failed_deletes_it) {
    sim::config cfg;
    cfg.processing = sim::processing_time::fixed(5s);  // PROCESSING after the upload, then FAILED
    cfg.fail_share = 1.0;
    sim_fixture fx(cfg);
    const std::string path = temp_file("task-failed.mp4", 1000);
    std::optional<resilience::result<gemini::media_task_result>> r;
    fx.run([&]() -> asio::awaitable<void> { r = co_await gemini::run_media_task(*fx.client, task_for(path)); });
    BOOST_REQUIRE(r && !*r);
    const std::string msg = r->error().what();
    BOOST_TEST((r->error().code == gemini::errc::file_failed), msg);
    BOOST_TEST(msg.find(", deleted)") != std::string::npos, msg);
    BOOST_TEST(fx.srv->snapshot().files == 0u);
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(a_media_task_that_fails_after_the_upload_keeps_or_deletes_the_file) {
    for (bool delete_after : {false, true}) {
        BOOST_TEST_CONTEXT("delete_after " << delete_after) {
            sim_fixture fx(sim::config{});
            fx.srv->add_fault(sim::fault(sim::fault_kind::quota_per_day, sim::route::generate));
            const std::string path = temp_file("task.mp4", 1000);
            auto t = task_for(path);
            t.delete_after = delete_after;
            std::optional<resilience::result<gemini::media_task_result>> r;
            fx.run([&]() -> asio::awaitable<void> { r = co_await gemini::run_media_task(*fx.client, std::move(t)); });
            BOOST_REQUIRE(r && !*r);
            const std::string msg = r->error().what();
            const std::string name = named_file(msg);
            BOOST_TEST(msg.find("uploaded as " + name) != std::string::npos, msg);
            if (delete_after) {
                BOOST_TEST(msg.find(", deleted)") != std::string::npos, msg);
                BOOST_TEST(fx.srv->snapshot().files == 0u);
            } else {
                BOOST_TEST(msg.find(", kept)") != std::string::npos, msg);
                BOOST_TEST(fx.srv->file_bytes(name).has_value(), name);
            }
            std::filesystem::remove(path);
        }
    }
}

BOOST_AUTO_TEST_CASE(an_answer_over_max_response_bytes_ends_the_call_at_once) {
    const std::string head = R"({"name":"files/big","state":"ACTIVE","displayName":")";
    std::size_t body_size = 0;  // the File JSON's size, padded by its display name
    int requests = 0;
    manual_clock clk;
    asio::io_context ctx;
    test_http::server srv(ctx.get_executor(), test_http::serve([&](const test_http::http_request&) {
        ++requests;
        return test_http::make_response(200, head + std::string(body_size - head.size() - 2, 'd') + "\"}");
    }));
    auto make = [&](std::uint64_t limit) {
        gemini::client_options o;
        o.api_key = lkey;
        o.base_url = srv.url("");
        o.time = &clk;
        if (limit) o.max_response_bytes = limit;
        return std::make_unique<gemini::client>(ctx.get_executor(), std::move(o));
    };
    auto get = [&](gemini::client& c) {
        std::optional<resilience::result<gemini::file>> r;
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> { r = co_await c.get("files/big"); }, test::rethrow{});
        BOOST_REQUIRE(run_virtual(ctx, clk, [&] { return r.has_value(); }));
        return std::move(*r);
    };
    // The default (16 MiB): a 17 MiB File is refused from its Content-Length, once.
    auto dflt = make(0);
    BOOST_TEST(dflt->options().max_response_bytes == 16ull << 20);
    body_size = 17u << 20;
    auto big = get(*dflt);
    BOOST_REQUIRE(!big);
    BOOST_TEST((big.error().code == resilience::http::errc::response_too_large), big.error().what());
    BOOST_TEST(big.error().what().find("max_response_bytes") != std::string::npos, big.error().what());
    BOOST_TEST(big.error().what().find(std::to_string(16u << 20)) != std::string::npos, big.error().what());
    BOOST_TEST(requests == 1);  // not retried
    BOOST_TEST(big.error().diag.attempts == 1);

    // A configured limit: at the limit it is read, one byte past it is not.
    auto small = make(4096);
    body_size = 4096;
    auto at = get(*small);
    BOOST_TEST(bool(at), (at ? std::string() : at.error().what()));
    body_size = 4097;
    auto past = get(*small);
    BOOST_REQUIRE(!past);
    BOOST_TEST((past.error().code == resilience::http::errc::response_too_large), past.error().what());

    // Zero is refused, not taken as "no limit".
    gemini::client_options zero;
    zero.api_key = lkey;
    zero.base_url = srv.url("");
    zero.max_response_bytes = 0;
    BOOST_CHECK_EXCEPTION(gemini::client(ctx.get_executor(), zero), resilience::error, [](const resilience::error& e) {
        return e.code() == errc::invalid_config && std::string(e.what()).find("max_response_bytes") != std::string::npos;
    });
    srv.stop();
}

BOOST_AUTO_TEST_SUITE_END()
