// Memory for a huge JSON answer, before and after the Gemini client's
// max_response_bytes limit; and the sizes of the answers it normally reads.
//
// A scripted server (a child process, so that its own copies of the bodies
// do not count) answers files.get, files.list and generateContent with a
// JSON body of --mb MiB (50 by default; Content-Length declared, or chunked
// with no length). Each case runs one call on a fresh client and prints a
// JSON line: the peak of the heap in use above its level before the call
// (counted by this program's operator new/delete), the peak resident set
// above the resident set before the call (VmHWM, reset through
// /proc/self/clear_refs), the call's real time and its outcome. "raised" sets
// max_response_bytes and http.max_body_bytes above the body (what happened
// before the limit existed); "default" keeps the default limit.
//
// Then the sizes of the simulator's answers: one File, and a files.list page
// of 100 files with 512-character display names (the service's largest).
//
// Run: build/bench/bench_big_answer [--mb 50]
#include <resilience/gemini/client.hpp>
#include <resilience/http/client.hpp>
#include <resilience/sim/server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/chunk_encode.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <new>
#include <string>

#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

// ---- heap accounting: live bytes and their peak, through operator new/delete.
namespace {
std::atomic<std::size_t> live_bytes{0}, peak_bytes{0};
void note_alloc(void* p) {
    if (!p) return;
    const std::size_t now = live_bytes.fetch_add(malloc_usable_size(p), std::memory_order_relaxed) + malloc_usable_size(p);
    std::size_t peak = peak_bytes.load(std::memory_order_relaxed);
    while (now > peak && !peak_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
}
void note_free(void* p) {
    if (p) live_bytes.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
}
void* counted_alloc(std::size_t n) {
    void* p = std::malloc(n ? n : 1);
    if (!p) throw std::bad_alloc();
    note_alloc(p);
    return p;
}
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    void* p = std::malloc(n ? n : 1);
    note_alloc(p);
    return p;
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return operator new(n, std::nothrow); }
void operator delete(void* p) noexcept {
    note_free(p);
    std::free(p);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { operator delete(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { operator delete(p); }

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace gemini = resilience::gemini;
using tcp = asio::ip::tcp;

namespace {

const std::string key = "big-answer-key-6e21";

std::size_t status_kb(const char* field) {
    std::ifstream in("/proc/self/status");
    std::string line;
    const std::size_t n = std::char_traits<char>::length(field);
    while (std::getline(in, line))
        if (line.compare(0, n, field) == 0) return std::strtoull(line.c_str() + n, nullptr, 10);
    return 0;
}

// Resets VmHWM to the current resident set (Linux >= 4.0); false if refused.
bool reset_hwm() {
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    out.flush();
    return bool(out);
}

// ---- the scripted server (child process).
std::string file_body(std::size_t size) {
    const std::string head = R"({"name":"files/big","mimeType":"video/mp4","state":"ACTIVE","displayName":")";
    return head + std::string(size - head.size() - 2, 'd') + "\"}";
}
std::string list_body(std::size_t size) {
    // Files of about 500 bytes each, as the service writes them.
    const std::string one =
        R"({"name":"files/abcdefghijkl","displayName":"clip.mp4","mimeType":"video/mp4","sizeBytes":"1048576",)"
        R"("createTime":"2026-01-01T00:00:00.000000Z","updateTime":"2026-01-01T00:00:01.000000Z",)"
        R"("expirationTime":"2026-01-03T00:00:00.000000000Z","sha256Hash":"ZGVhZGJlZWZkZWFkYmVlZmRlYWRiZWVm",)"
        R"("uri":"https://generativelanguage.googleapis.com/v1beta/files/abcdefghijkl","state":"ACTIVE","source":"UPLOADED"})";
    std::string s = R"({"files":[)";
    s.reserve(size + one.size() + 16);
    while (s.size() + one.size() + 3 < size) {
        if (s.back() == '}') s += ',';
        s += one;
    }
    return s + "]}";
}
std::string generate_body(std::size_t size) {
    const std::string head = R"({"candidates":[{"content":{"role":"model","parts":[{"text":")";
    const std::string tail = R"("}]},"finishReason":"STOP"}],"modelVersion":"gemini-2.0-flash"})";
    return head + std::string(size - head.size() - tail.size(), 't') + tail;
}

[[noreturn]] void serve(int ready_fd, std::size_t size) {
    asio::io_context ctx;
    tcp::acceptor acc(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const unsigned short port = acc.local_endpoint().port();
    const std::string bodies[3] = {file_body(size), list_body(size), generate_body(size)};
    if (::write(ready_fd, &port, sizeof port) != sizeof port) std::_Exit(1);
    ::close(ready_fd);
    for (;;) {
        tcp::socket s(ctx);
        acc.accept(s);
        beast::flat_buffer buf;
        boost::system::error_code ec;
        for (;;) {
            bhttp::request<bhttp::string_body> req;
            bhttp::read(s, buf, req, ec);
            if (ec) break;
            const std::string target(req.target());
            const bool chunked = target.find("chunked") != std::string::npos;
            const std::string& body = target.find(":generateContent") != std::string::npos ? bodies[2]
                                      : target.find("/files/") != std::string::npos     ? bodies[0]
                                                                                        : bodies[1];
            if (chunked) {  // in 64 KiB chunks, as a streaming server sends
                bhttp::response<bhttp::empty_body> res(bhttp::status::ok, 11);
                res.set(bhttp::field::content_type, "application/json");
                res.chunked(true);
                bhttp::response_serializer<bhttp::empty_body> sr(res);
                bhttp::write_header(s, sr, ec);
                for (std::size_t at = 0; !ec && at < body.size(); at += 65536)
                    asio::write(s, bhttp::make_chunk(asio::buffer(body.data() + at, std::min<std::size_t>(65536, body.size() - at))), ec);
                if (!ec) asio::write(s, bhttp::make_chunk_last(), ec);
                if (ec) break;
                continue;
            }
            bhttp::response<bhttp::string_body> res(bhttp::status::ok, 11);
            res.set(bhttp::field::content_type, "application/json");
            res.body() = body;
            res.prepare_payload();
            bhttp::write(s, res, ec);
            if (ec) break;
        }
    }
}

// ---- the client side.
struct outcome {
    bool ok = false;
    std::string what;
};

template <class F>
outcome run_call(gemini::client& c, asio::io_context& ctx, F call) {
    outcome o;
    asio::co_spawn(ctx, call(c, o), [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    ctx.restart();
    ctx.run();
    return o;
}

asio::awaitable<void> do_get(gemini::client& c, outcome& o, std::string name) {
    auto r = co_await c.get(std::move(name));
    o.ok = bool(r);
    o.what = r ? "ok" : r.error().what();
}
asio::awaitable<void> do_list(gemini::client& c, outcome& o) {
    auto r = co_await c.list();
    o.ok = bool(r);
    o.what = r ? "ok, " + std::to_string(r->size()) + " files" : r.error().what();
}
asio::awaitable<void> do_generate(gemini::client& c, outcome& o) {
    gemini::content ct;
    ct.parts = {gemini::part::from_text("hello")};
    std::vector<gemini::content> contents{ct};
    auto r = co_await c.generate_content("gemini-2.0-flash", std::move(contents));
    o.ok = bool(r);
    o.what = r ? "ok, " + std::to_string(r->text.size()) + " characters" : r.error().what();
}

std::string json_escape(const std::string& s) {
    std::string out;
    for (char ch : s.substr(0, 300)) {
        if (ch == '"' || ch == '\\') out += '\\';
        if (static_cast<unsigned char>(ch) < 0x20) continue;
        out += ch;
    }
    return out;
}

void one_case(unsigned short port, std::size_t size, const char* call, bool chunked, bool raised) {
    asio::io_context ctx;
    gemini::client_options o;
    o.api_key = key;
    o.base_url = "http://127.0.0.1:" + std::to_string(port);
    o.retry.max_retries = 0;
    o.list_max_bytes = 4 * size;
    if (raised) {
        o.max_response_bytes = 2 * size;
        o.http.max_body_bytes = 2 * size;
    }
    gemini::client c(ctx.get_executor(), o);
    const std::size_t heap0 = live_bytes.load();
    peak_bytes.store(heap0);
    malloc_trim(0);
    const bool hwm_ok = reset_hwm();
    const std::size_t rss0 = status_kb("VmRSS:");
    const auto t0 = std::chrono::steady_clock::now();
    outcome r;
    const std::string call_s = call;
    if (call_s == "get")
        r = run_call(c, ctx, [&](gemini::client& cl, outcome& out) { return do_get(cl, out, chunked ? "files/big-chunked" : "files/big"); });
    else if (call_s == "list")
        r = run_call(c, ctx, [&](gemini::client& cl, outcome& out) { return do_list(cl, out); });
    else
        r = run_call(c, ctx, [&](gemini::client& cl, outcome& out) { return do_generate(cl, out); });
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::size_t heap_peak = peak_bytes.load() - heap0;
    const std::size_t hwm = status_kb("VmHWM:");
    std::printf("{\"call\":\"%s\",\"framing\":\"%s\",\"limit\":\"%s\",\"limit_bytes\":%llu,\"body_bytes\":%zu,"
                "\"heap_peak_bytes\":%zu,\"heap_peak_x_body\":%.2f,\"rss_peak_kb\":%s,\"real_s\":%.3f,\"ok\":%s,"
                "\"outcome\":\"%s\"}\n",
                call, chunked ? "chunked" : "content-length", raised ? "raised" : "default",
                static_cast<unsigned long long>(std::min(c.options().max_response_bytes, c.options().http.max_body_bytes)),
                size, heap_peak, double(heap_peak) / double(size),
                hwm_ok ? std::to_string(hwm > rss0 ? hwm - rss0 : 0).c_str() : "null", secs, r.ok ? "true" : "false",
                json_escape(r.what).c_str());
    std::fflush(stdout);
}

// The sizes of the simulator's own answers.
void typical_sizes() {
    asio::io_context ctx;
    resilience::sim::config cfg;
    cfg.api_key = key;
    resilience::sim::server srv(ctx, cfg);
    srv.start();
    std::string one;
    for (int i = 0; i < 100; ++i) one = srv.add_file("bytes", "video/mp4", std::string(512, 'n'));
    resilience::http::client h(ctx);
    std::size_t file_size = 0, page_size = 0;
    asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
        resilience::http::request g;
        g.url = srv.base_url() + "/v1beta/" + one;
        g.headers.set("x-goog-api-key", key);
        auto f = co_await h.send(std::move(g));
        if (f) file_size = f->body.size();
        resilience::http::request l;
        l.url = srv.base_url() + "/v1beta/files?pageSize=100";
        l.headers.set("x-goog-api-key", key);
        auto p = co_await h.send(std::move(l));
        if (p) page_size = p->body.size();
        srv.stop();
    }, [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
    });
    ctx.run();
    std::printf("{\"typical\":\"simulator answers, 512-character display names\",\"file_bytes\":%zu,"
                "\"list_page_of_100_bytes\":%zu}\n",
                file_size, page_size);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t mb = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::string(argv[i]) == "--mb") mb = std::strtoull(argv[i + 1], nullptr, 10);
        else {
            std::fprintf(stderr, "usage: bench_big_answer [--mb N]\n");
            return 2;
        }
    }
    if (argc % 2 == 0 || mb == 0 || mb > 4096) {
        std::fprintf(stderr, "usage: bench_big_answer [--mb N] (N in 1..4096)\n");
        return 2;
    }
    const std::size_t size = mb << 20;
    int fds[2];
    if (::pipe(fds) != 0) return 1;
    const pid_t child = ::fork();
    if (child < 0) return 1;
    if (child == 0) {
        ::close(fds[0]);
        serve(fds[1], size);
    }
    ::close(fds[1]);
    unsigned short port = 0;
    if (::read(fds[0], &port, sizeof port) != sizeof port) return 1;
    ::close(fds[0]);

    for (const char* call : {"get", "list", "generate"})
        for (bool raised : {true, false}) one_case(port, size, call, false, raised);
    for (bool raised : {true, false}) one_case(port, size, "get", true, raised);
    typical_sizes();

    ::kill(child, SIGTERM);
    ::waitpid(child, nullptr, 0);
    return 0;
}
