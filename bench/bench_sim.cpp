// files.get on the simulator vs a minimal Beast server answering a fixed body
// (the same bytes as the simulator's File), side by side in one run: same
// number of server threads, same load generator (raw Beast keep-alive
// clients, N connections, in this process on their own threads).
//
// Prints one JSON object per line: {"name", "requests_per_s", ...} for each
// server, then {"name": "ratio", "ratio": sim / minimal}. Rounds alternate
// minimal and sim; the best round of each is reported.
//
// Run: build/bench/bench_sim [--server-threads 1] [--client-threads 1]
//                            [--connections 16] [--seconds 2] [--rounds 3]

#include <resilience/sim/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// --- the minimal server -------------------------------------------------------

asio::awaitable<void> minimal_session(tcp::socket sock, const std::string* body) {
    beast::tcp_stream stream(std::move(sock));
    beast::flat_buffer buffer;
    for (;;) {
        http::request<http::string_body> req;
        auto [ec, n] = co_await http::async_read(stream, buffer, req, use_tuple);
        if (ec) break;
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.set(http::field::content_type, "application/json; charset=UTF-8");
        res.keep_alive(req.keep_alive());
        res.body() = *body;
        res.prepare_payload();
        auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
        if (wec || !res.keep_alive()) break;
    }
}

asio::awaitable<void> minimal_accept(tcp::acceptor& acc, const std::string* body) {
    for (;;) {
        auto [ec, sock] = co_await acc.async_accept(use_tuple);
        if (ec) co_return;
        sock.set_option(tcp::no_delay(true));
        asio::co_spawn(acc.get_executor(), minimal_session(std::move(sock), body), asio::detached);
    }
}

class minimal_server {
public:
    minimal_server(unsigned threads, std::string body)
        : ctx_(static_cast<int>(threads)), acc_(ctx_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          body_(std::move(body)) {
        asio::co_spawn(ctx_, minimal_accept(acc_, &body_), asio::detached);
        for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { ctx_.run(); });
    }
    ~minimal_server() {
        ctx_.stop();
        for (auto& t : threads_) t.join();
    }
    unsigned short port() const { return acc_.local_endpoint().port(); }

private:
    asio::io_context ctx_;
    tcp::acceptor acc_;
    std::string body_;
    std::vector<std::thread> threads_;
};

// --- the load generator ---------------------------------------------------------

struct load_result {
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    double seconds = 0;
};

asio::awaitable<void> client_loop(unsigned short port, std::string target, std::string key,
                                  std::chrono::steady_clock::time_point until, std::atomic<std::uint64_t>& ok,
                                  std::atomic<std::uint64_t>& errors) {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    auto [cec] = co_await stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), use_tuple);
    if (cec) {
        ++errors;
        co_return;
    }
    stream.socket().set_option(tcp::no_delay(true));
    beast::flat_buffer buffer;
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set("x-goog-api-key", key);
    std::uint64_t local = 0;
    while (std::chrono::steady_clock::now() < until) {
        auto [wec, wn] = co_await http::async_write(stream, req, use_tuple);
        if (wec) {
            ++errors;
            break;
        }
        http::response<http::string_body> res;
        auto [rec, rn] = co_await http::async_read(stream, buffer, res, use_tuple);
        if (rec || res.result() != http::status::ok) {
            ++errors;
            break;
        }
        ++local;
    }
    ok += local;
}

load_result run_load(unsigned short port, const std::string& target, const std::string& key, unsigned connections,
                     unsigned threads, double seconds) {
    asio::io_context ctx(static_cast<int>(threads));
    std::atomic<std::uint64_t> ok{0}, errors{0};
    auto start = std::chrono::steady_clock::now();
    auto until = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                             std::chrono::duration<double>(seconds));
    for (unsigned i = 0; i < connections; ++i)
        asio::co_spawn(ctx, client_loop(port, target, key, until, ok, errors), asio::detached);
    std::vector<std::thread> ts;
    for (unsigned i = 1; i < threads; ++i) ts.emplace_back([&] { ctx.run(); });
    ctx.run();
    for (auto& t : ts) t.join();
    load_result r;
    r.requests = ok;
    r.errors = errors;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return r;
}

unsigned arg_uint(int argc, char** argv, std::string_view name, unsigned def) {
    for (int i = 1; i + 1 < argc; ++i) {
        if (name == argv[i]) {
            unsigned v = def;
            std::string_view s = argv[i + 1];
            std::from_chars(s.data(), s.data() + s.size(), v);
            return v;
        }
    }
    return def;
}

void print(const char* name, const load_result& r, unsigned server_threads, unsigned connections) {
    std::printf("{\"name\": \"%s\", \"requests_per_s\": %.0f, \"requests\": %llu, \"errors\": %llu, "
                "\"seconds\": %.2f, \"server_threads\": %u, \"connections\": %u}\n",
                name, static_cast<double>(r.requests) / r.seconds, static_cast<unsigned long long>(r.requests),
                static_cast<unsigned long long>(r.errors), r.seconds, server_threads, connections);
}

}  // namespace

int main(int argc, char** argv) {
    namespace sim = resilience::sim;
    unsigned server_threads = arg_uint(argc, argv, "--server-threads", 1);
    unsigned client_threads = arg_uint(argc, argv, "--client-threads", 1);
    unsigned connections = arg_uint(argc, argv, "--connections", 16);
    unsigned seconds = arg_uint(argc, argv, "--seconds", 2);
    unsigned rounds = arg_uint(argc, argv, "--rounds", 3);
    if (server_threads == 0 || client_threads == 0 || connections == 0 || seconds == 0 || rounds == 0) {
        std::fprintf(stderr, "bench_sim: every option must be positive\n");
        return 2;
    }

    sim::config cfg;
    cfg.api_key = "bench-key";
    cfg.threads = server_threads;
    sim::server srv(cfg);
    srv.start();
    std::string name = srv.add_file(std::string(1 << 16, 'x'), "video/mp4", "bench");
    std::string target = "/v1beta/" + name;

    // The minimal server answers the very bytes the simulator answers.
    std::string body;
    {
        asio::io_context ctx;
        beast::tcp_stream s(ctx);
        s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv.port()));
        http::request<http::empty_body> req{http::verb::get, target, 11};
        req.set(http::field::host, "127.0.0.1");
        req.set("x-goog-api-key", cfg.api_key);
        http::write(s, req);
        beast::flat_buffer b;
        http::response<http::string_body> res;
        http::read(s, b, res);
        body = res.body();
    }
    minimal_server minimal(server_threads, body);

    load_result best_min, best_sim;
    for (unsigned r = 0; r < rounds; ++r) {
        auto m = run_load(minimal.port(), target, cfg.api_key, connections, client_threads, seconds);
        auto s = run_load(srv.port(), target, cfg.api_key, connections, client_threads, seconds);
        if (m.requests / m.seconds > best_min.requests / std::max(best_min.seconds, 1e-9) || r == 0) best_min = m;
        if (s.requests / s.seconds > best_sim.requests / std::max(best_sim.seconds, 1e-9) || r == 0) best_sim = s;
    }
    print("minimal_beast_fixed_body", best_min, server_threads, connections);
    print("sim_files_get", best_sim, server_threads, connections);
    double rm = static_cast<double>(best_min.requests) / best_min.seconds;
    double rs = static_cast<double>(best_sim.requests) / best_sim.seconds;
    std::printf("{\"name\": \"ratio\", \"requests_per_s\": %.0f, \"ratio\": %.3f}\n", rs, rm > 0 ? rs / rm : 0.0);
    auto st = srv.snapshot();
    std::fprintf(stderr, "simulator counted %llu polls of %s\n",
                 static_cast<unsigned long long>(st.polls_of(name)), name.c_str());
    return 0;
}
