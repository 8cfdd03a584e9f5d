// Throughput of resilience::http::client and of gemini::client::get
// (files.get through the full stack) beside a minimal raw Beast keep-alive
// client, in one run, against the same in-process loopback Beast server (own
// thread) answering every GET with the same bytes: a File resource as JSON
// (what the Gemini API answers to files.get). Every side runs 16 concurrent
// request loops on one client thread (an io_context run by that thread), each
// loop a coroutine spawned on that io_context's executor, as a user writes it.
//
// What each row includes (per request):
// - raw_beast_keepalive: 16 fixed beast::tcp_stream connections; write the
//   GET (Host, x-goog-api-key), read the answer into a string_body, check
//   status and body size. No timeouts, no pool, no URL parsing.
// - http_client_pool: resilience::http::client with its defaults (a strand
//   for thread safety, connect/io/header timeouts, size limits, the minimum
//   progress rule) but max 16 connections per origin: URL parsing, the pool,
//   the strand hop, the time limits on Beast's stream timers, error mapping;
//   the caller checks status and body size.
// - http_client_pool_single_thread: the same with client_options::thread_safe
//   = false, the documented setting for an io_context run by one thread (as
//   here, and as the raw client assumes): no strand, so no executor hop per
//   request and no strand around every completion.
// - gemini_files_get: resilience::gemini::client::get("files/abc-123") with
//   the client's defaults (retry pipeline with breaker, cooldown, budget,
//   event counters, the 60 s per-attempt timeout) over the same HTTP client:
//   the file name check, the URL, the API key header, the pipeline's gates
//   and bookkeeping, the HTTP exchange, the scrub of the key from the answer
//   and the JSON parse of the File; the caller checks the parsed name.
// - gemini_files_get_single_thread: the same with http.thread_safe = false.
//
// Prints one JSON object per line: each side's requests_per_s (best round)
// and client_cpu_us_per_request (CPU time of the client thread per request,
// best round), then the comparisons: ratio = side / raw requests_per_s
// (target >= 0.8) and cpu_ratio = raw / side CPU per request. Rounds
// alternate the sides. On a shared, loaded machine
// the wall-clock figures are noisy; cpu_ratio is the steadier one.
//
// Run: build/bench/bench_http [seconds per round, default 2] [rounds, default 3]
// Knobs (diagnosis only): BENCH_NO_TIMEOUT=1 (client io_timeout off),
// BENCH_NO_ATTEMPT_TIMEOUT=1 (Gemini request_timeout off),
// BENCH_ONLY=raw|http|http_1t|gemini|gemini_1t (one side only).
#include <resilience/gemini/client.hpp>
#include <resilience/http/client.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <time.h>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

constexpr int concurrency = 16;
const std::string body_json =
    R"({"name":"files/abc-123","displayName":"video.mp4","mimeType":"video/mp4","sizeBytes":"1048576",)"
    R"("state":"ACTIVE","uri":"https://example.invalid/v1beta/files/abc-123"})";

asio::awaitable<void> serve_session(tcp::socket s) {
    beast::flat_buffer buf;
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "application/json; charset=UTF-8");
    res.body() = body_json;
    res.prepare_payload();
    res.keep_alive(true);
    boost::system::error_code ec;
    for (;;) {
        bhttp::request<bhttp::string_body> req;
        co_await bhttp::async_read(s, buf, req, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        co_await bhttp::async_write(s, res, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor& a) {
    for (;;) {
        boost::system::error_code ec;
        tcp::socket s = co_await a.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;
        s.set_option(tcp::no_delay(true));
        asio::co_spawn(a.get_executor(), serve_session(std::move(s)), asio::detached);
    }
}

struct round_state {
    steady::time_point end;
    long done = 0;
    long errors = 0;
};

asio::awaitable<void> raw_loop(tcp::endpoint ep, round_state& st) {
    auto ex = co_await asio::this_coro::executor;
    beast::tcp_stream stream(ex);
    co_await stream.async_connect(ep, asio::use_awaitable);
    stream.socket().set_option(tcp::no_delay(true));
    beast::flat_buffer buf;
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/v1beta/files/abc-123", 11};
    req.set(bhttp::field::host, "127.0.0.1");
    req.set("x-goog-api-key", "bench-key");
    while (steady::now() < st.end) {
        co_await bhttp::async_write(stream, req, asio::use_awaitable);
        bhttp::response<bhttp::string_body> res;
        co_await bhttp::async_read(stream, buf, res, asio::use_awaitable);
        if (res.result_int() == 200 && res.body().size() == body_json.size()) ++st.done;
        else ++st.errors;
    }
}

asio::awaitable<void> client_loop(resilience::http::client& c, const std::string& url, round_state& st) {
    while (steady::now() < st.end) {
        resilience::http::request req;
        req.url = url;
        req.headers.set("x-goog-api-key", "bench-key");
        auto r = co_await c.send(std::move(req));
        if (r && r->status == 200 && r->body.size() == body_json.size()) ++st.done;
        else ++st.errors;
    }
}

asio::awaitable<void> gemini_loop(resilience::gemini::client& c, round_state& st) {
    while (steady::now() < st.end) {
        auto r = co_await c.get("files/abc-123");
        if (r && r->name == "files/abc-123") ++st.done;
        else ++st.errors;
    }
}

// `spawn` starts the loops; `finish` runs after them, before the io_context
// (which owns the sockets) is destroyed.
double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct round_result {
    double requests_per_s = 0;
    double cpu_us_per_request = 0;  // client thread only
};

template <class Spawn, class Finish>
round_result run_round(double seconds, Spawn spawn, Finish finish, long& errors) {
    asio::io_context ctx(1);
    round_state st;
    spawn(ctx, st);  // builds the client (if any) and queues the loops; they start in run()
    const auto start = steady::now();
    st.end = start + std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(seconds));
    const double cpu0 = thread_cpu_seconds();
    ctx.run();
    const double took = std::chrono::duration<double>(steady::now() - start).count();
    const double cpu = thread_cpu_seconds() - cpu0;
    finish();
    errors += st.errors;
    round_result r;
    r.requests_per_s = static_cast<double>(st.done) / took;
    r.cpu_us_per_request = st.done > 0 ? cpu * 1e6 / static_cast<double>(st.done) : 0;
    return r;
}

bool side_on(const char* name) {
    const char* only = std::getenv("BENCH_ONLY");
    return !only || std::string(only) == name;
}

void print_side(const char* name, const round_result& r, long errors) {
    std::printf("{\"name\":\"%s\",\"concurrency\":%d,\"requests_per_s\":%.0f,"
                "\"client_cpu_us_per_request\":%.2f,\"errors\":%ld}\n",
                name, concurrency, r.requests_per_s, r.cpu_us_per_request, errors);
}

void print_ratio(const char* name, const round_result& side, const round_result& raw, int rounds, double seconds) {
    std::printf("{\"name\":\"%s\",\"concurrency\":%d,\"requests_per_s\":%.0f,\"ratio\":%.3f,"
                "\"cpu_ratio\":%.3f,\"rounds\":%d,\"seconds_per_round\":%.2f}\n",
                name, concurrency, side.requests_per_s,
                raw.requests_per_s > 0 ? side.requests_per_s / raw.requests_per_s : 0.0,
                side.cpu_us_per_request > 0 ? raw.cpu_us_per_request / side.cpu_us_per_request : 0.0, rounds,
                seconds);
}

}  // namespace

int main(int argc, char** argv) {
    double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
    int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    if (!(seconds > 0) || rounds < 1) {
        std::fprintf(stderr, "usage: bench_http [seconds per round > 0] [rounds >= 1]\n");
        return 2;
    }

    asio::io_context server_ctx(1);
    tcp::acceptor acceptor(server_ctx, {asio::ip::make_address("127.0.0.1"), 0});
    const auto ep = acceptor.local_endpoint();
    asio::co_spawn(server_ctx, accept_loop(acceptor), asio::detached);
    std::thread server_thread([&] { server_ctx.run(); });

    const std::string origin = "http://127.0.0.1:" + std::to_string(ep.port());
    const std::string url = origin + "/v1beta/files/abc-123";
    round_result best_raw, best_client, best_client_1t, best_gemini, best_gemini_1t;
    auto keep_best = [](round_result& best, round_result r) {
        if (r.requests_per_s > best.requests_per_s) best.requests_per_s = r.requests_per_s;
        if (best.cpu_us_per_request == 0 || r.cpu_us_per_request < best.cpu_us_per_request)
            best.cpu_us_per_request = r.cpu_us_per_request;
    };
    long raw_errors = 0, client_errors = 0, gemini_errors = 0;
    resilience::http::pool_stats stats;
    auto http_round = [&](bool thread_safe) {
        std::optional<resilience::http::client> c;
        return run_round(seconds, [&](asio::io_context& ctx, round_state& st) {
            resilience::http::client_options o;
            o.max_connections_per_origin = concurrency;
            o.thread_safe = thread_safe;
            if (std::getenv("BENCH_NO_TIMEOUT")) o.io_timeout = {};
            c.emplace(ctx.get_executor(), o);
            for (int k = 0; k < concurrency; ++k)
                asio::co_spawn(ctx, client_loop(*c, url, st), [&st](std::exception_ptr p) { if (p) ++st.errors; });
        }, [&] {
            stats = c->stats();
            c.reset();
        }, client_errors);
    };
    auto gemini_round = [&](bool thread_safe) {
        std::optional<resilience::gemini::client> g;
        return run_round(seconds, [&](asio::io_context& ctx, round_state& st) {
            resilience::gemini::client_options o;
            o.api_key = "bench-key";
            o.base_url = origin;
            o.seed = 1;
            o.http.max_connections_per_origin = concurrency;
            o.http.thread_safe = thread_safe;
            if (std::getenv("BENCH_NO_TIMEOUT")) o.http.io_timeout = {};
            if (std::getenv("BENCH_NO_ATTEMPT_TIMEOUT")) o.request_timeout = {};
            g.emplace(ctx.get_executor(), o);
            for (int k = 0; k < concurrency; ++k)
                asio::co_spawn(ctx, gemini_loop(*g, st), [&st](std::exception_ptr p) { if (p) ++st.errors; });
        }, [&] { g.reset(); }, gemini_errors);
    };
    for (int i = 0; i < rounds; ++i) {
        if (side_on("raw")) keep_best(best_raw, run_round(seconds, [&](asio::io_context& ctx, round_state& st) {
            for (int k = 0; k < concurrency; ++k)
                asio::co_spawn(ctx, raw_loop(ep, st), [&st](std::exception_ptr p) { if (p) ++st.errors; });
        }, [] {}, raw_errors));
        if (side_on("http")) keep_best(best_client, http_round(true));
        if (side_on("http_1t")) keep_best(best_client_1t, http_round(false));
        if (side_on("gemini")) keep_best(best_gemini, gemini_round(true));
        if (side_on("gemini_1t")) keep_best(best_gemini_1t, gemini_round(false));
    }

    print_side("raw_beast_keepalive", best_raw, raw_errors);
    std::printf("{\"name\":\"http_client_pool\",\"concurrency\":%d,\"requests_per_s\":%.0f,"
                "\"client_cpu_us_per_request\":%.2f,\"errors\":%ld,\"connections_opened\":%llu}\n",
                concurrency, best_client.requests_per_s, best_client.cpu_us_per_request, client_errors,
                static_cast<unsigned long long>(stats.opened));
    print_side("http_client_pool_single_thread", best_client_1t, client_errors);
    print_side("gemini_files_get", best_gemini, gemini_errors);
    print_side("gemini_files_get_single_thread", best_gemini_1t, gemini_errors);
    print_ratio("http_client_vs_raw", best_client, best_raw, rounds, seconds);
    print_ratio("http_client_single_thread_vs_raw", best_client_1t, best_raw, rounds, seconds);
    print_ratio("gemini_files_get_vs_raw", best_gemini, best_raw, rounds, seconds);
    print_ratio("gemini_files_get_single_thread_vs_raw", best_gemini_1t, best_raw, rounds, seconds);

    acceptor.close();
    server_ctx.stop();
    server_thread.join();
    return raw_errors + client_errors + gemini_errors == 0 ? 0 : 1;
}
