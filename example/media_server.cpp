// Embedding asio-resilience in an Asio server: a small Beast HTTP server whose
// request handlers co_await ONE shared resilience::gemini::client.
//
// What it shows, in the order a server author meets it:
//   1. One client for the whole server. Its connection pool, circuit breaker,
//      cooldown (a 429's Retry-After holds every request) and retry budget are
//      shared by all requests, so a thousand users behave as one polite client.
//   2. Structured events (client_options::on_event) feeding metrics that the
//      server exposes at GET /metrics (Prometheus text format): through the
//      asio_resilience::prometheus adapter and prometheus-cpp's
//      TextSerializer when the project is built with RESILIENCE_PROMETHEUS
//      (the default when prometheus-cpp is installed), otherwise as
//      hand-written text with a few counters.
//   3. A per-request deadline: `?timeout=SECONDS` (default 30 s) becomes the
//      deadline of the library call, so retries, backoff, cooldown and polling
//      all stop when the request's own budget is spent (answer 504).
//   4. Per-operation cancellation: while a handler runs, the connection races
//      it against a read on the socket (`handler || client_gone`, Asio's
//      awaitable operators). When the downstream client hangs up, the read
//      completes, the handler is cancelled, and the library call in flight
//      ends at once (its upstream request is aborted, its backoff woken).
//   5. Failures mapped to HTTP answers: 504 for a deadline, 429/503 with
//      Retry-After when the service pushes back or the breaker is open, 502
//      when the service kept failing, 404/400/422 for the caller's mistakes.
//   6. Load shedding: while the breaker is OPEN the server answers 503 at once
//      instead of queueing requests behind it.
//   7. Cleanup that survives cancellation: an uploaded file is deleted by a
//      detached coroutine, also when its request failed or was cancelled.
//   8. Shutdown (SIGINT/SIGTERM): stop accepting, close every connection
//      (which cancels the calls in flight), let the cleanups finish.
//
// Endpoints:
//   POST /describe?file=NAME[&prompt=TEXT][&timeout=S]
//        uploads NAME from --media-dir, waits until ACTIVE, asks the model to
//        describe it, deletes it (also when the request fails or is
//        cancelled), answers JSON.
//   GET  /status/{id}[?wait=1][&timeout=S]
//        files.get, or with wait=1 wait_until_active bounded by the deadline.
//   GET  /metrics
//
// Run it:
//   media_server [--port 8080] [--address 127.0.0.1] [--media-dir DIR]
//        with GEMINI_API_KEY (and optionally GEMINI_BASE_URL, GEMINI_RETRY_*)
//        set, against the service; without a key, against the in-process
//        simulator (with a few faults). Then, for example:
//          curl -X POST 'http://127.0.0.1:8080/describe?file=clip.mp4&timeout=60'
//          curl http://127.0.0.1:8080/metrics
//   media_server --test
//        starts the simulator and the server on loopback, sends requests with
//        resilience::http::client and a raw Beast socket, checks the answers
//        and the metrics; exit status 0 on success (a ctest test).
//
// Threading: one io_context run by one thread. Every handler, the client and
// the metrics live on it, so the counters need no locks. To use several
// threads, run each connection on a strand and give the client that strand
// (see http/client.hpp), and make the counters atomic (prometheus-cpp's are).

#include <resilience/gemini/client.hpp>
#include <resilience/gemini/wire.hpp>
#include <resilience/http/client.hpp>
#include <resilience/sim/server.hpp>
#if RESILIENCE_EXAMPLE_PROMETHEUS
#include <resilience/prometheus/metrics.hpp>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#endif

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <list>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <unistd.h>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace json = boost::json;
namespace gemini = resilience::gemini;
namespace sim = resilience::sim;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace asio::experimental::awaitable_operators;

namespace {

// ---------------------------------------------------------------------------
// 1. Metrics, fed by the client's structured events and by the server.
// ---------------------------------------------------------------------------

#if RESILIENCE_EXAMPLE_PROMETHEUS
// With the adapter: the client's events go to resilience::prometheus::metrics
// (series gemini_*, see adapters/prometheus/include/resilience/prometheus/metrics.hpp),
// the server's own counters are prometheus-cpp families in the same registry,
// and /metrics is prometheus-cpp's TextSerializer over that registry.
class metrics {
public:
    metrics() : client_(registry_, client_metrics_options()) {}

    // Installed as gemini::client_options::on_event: called for every event of
    // every call the shared client makes, on the thread running that call.
    void on_event(const resilience::event& e) { client_.record(e); }
    void answered(std::string_view route, int status) {
        requests_.Add({{"route", std::string(route)}, {"code", std::to_string(status)}}).Increment();
    }
    void cancelled() { cancelled_.Increment(); }
    void shed() { shed_.Increment(); }
    int in_flight = 0;  // requests whose handler runs now

    // Prometheus text exposition format.
    std::string render(gemini::client& g) {
        client_.watch(g.breaker());  // the breaker's state now, not only its last transition seen
        client_.refresh();
        in_flight_.Set(in_flight);
        const resilience::http::pool_stats pool = g.http().stats();  // on the client's executor: we are
        opened_.Set(static_cast<double>(pool.opened));
        in_use_.Set(static_cast<double>(pool.in_use));
        return ::prometheus::TextSerializer().Serialize(registry_.Collect());
    }

private:
    static resilience::prometheus::metrics_options client_metrics_options() {
        resilience::prometheus::metrics_options o;
        o.prefix = "gemini";
        return o;
    }
    ::prometheus::Registry registry_;  // first: everything below registers in it
    resilience::prometheus::metrics client_;
    ::prometheus::Family<::prometheus::Counter>& requests_ =
        ::prometheus::BuildCounter().Name("media_server_requests_total").Help("Requests answered, by route and HTTP status.").Register(registry_);
    ::prometheus::Counter& cancelled_ = ::prometheus::BuildCounter()
                                            .Name("media_server_requests_cancelled_total")
                                            .Help("Requests whose client hung up; their call was cancelled.")
                                            .Register(registry_)
                                            .Add({});
    ::prometheus::Counter& shed_ = ::prometheus::BuildCounter()
                                       .Name("media_server_requests_shed_total")
                                       .Help("Requests refused at once while the breaker was OPEN.")
                                       .Register(registry_)
                                       .Add({});
    ::prometheus::Gauge& in_flight_ =
        ::prometheus::BuildGauge().Name("media_server_requests_in_flight").Help("Requests being handled now.").Register(registry_).Add({});
    // A total kept by the pool, published as it is read (hence a gauge).
    ::prometheus::Gauge& opened_ = ::prometheus::BuildGauge()
                                       .Name("gemini_connections_opened")
                                       .Help("Connections opened to the Gemini API so far.")
                                       .Register(registry_)
                                       .Add({});
    ::prometheus::Gauge& in_use_ = ::prometheus::BuildGauge()
                                       .Name("gemini_connections_in_use")
                                       .Help("Pooled connections carrying a request now.")
                                       .Register(registry_)
                                       .Add({});
};
#else
// Without the adapter: a few counters written out by hand.
class metrics {
public:
    // Installed as gemini::client_options::on_event: called for every event of
    // every call the shared client makes, on the thread running that call.
    void on_event(const resilience::event& e) {
        using resilience::event_type;
        switch (e.type) {
        case event_type::attempt_started: ++attempts_; break;
        case event_type::attempt_failed: ++failures_[std::string(resilience::to_string(e.kind))]; break;
        case event_type::retry_scheduled: ++retries_[std::string(resilience::to_string(e.kind))]; break;
        case event_type::gave_up: ++gave_up_[std::string(resilience::to_string(e.reason))]; break;
        case event_type::cooldown_wait: ++cooldown_waits_; break;
        case event_type::breaker_wait: ++breaker_waits_; break;
        case event_type::rate_wait:
            ++rate_waits_;
            rate_wait_s_ += std::chrono::duration<double>(e.delay).count();
            break;
        case event_type::breaker_transition: ++transitions_[std::string(resilience::to_string(e.to))]; break;
        default: break;
        }
    }
    void answered(std::string_view route, int status) { ++requests_[{std::string(route), status}]; }
    void cancelled() { ++cancelled_; }
    void shed() { ++shed_; }
    int in_flight = 0;  // requests whose handler runs now

    // Prometheus text exposition format.
    std::string render(gemini::client& g) const {
        std::string out;
        auto line = [&](std::string_view name, std::string_view labels, std::uint64_t v) {
            out.append(name);
            if (!labels.empty()) out.append("{").append(labels).append("}");
            out.append(" ").append(std::to_string(v)).append("\n");
        };
        auto family = [&](std::string_view name, std::string_view type, std::string_view help) {
            out.append("# HELP ").append(name).append(" ").append(help).append("\n");
            out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
        };
        family("media_server_requests_total", "counter", "Requests answered, by route and HTTP status.");
        for (const auto& [k, v] : requests_)
            line("media_server_requests_total", "code=\"" + std::to_string(k.second) + "\",route=\"" + k.first + "\"", v);
        family("media_server_requests_cancelled_total", "counter", "Requests whose client hung up; their call was cancelled.");
        line("media_server_requests_cancelled_total", "", cancelled_);
        family("media_server_requests_shed_total", "counter", "Requests refused at once while the breaker was OPEN.");
        line("media_server_requests_shed_total", "", shed_);
        family("media_server_requests_in_flight", "gauge", "Requests being handled now.");
        line("media_server_requests_in_flight", "", static_cast<std::uint64_t>(in_flight));
        family("gemini_attempts_total", "counter", "HTTP requests sent to the Gemini API (every attempt).");
        line("gemini_attempts_total", "", attempts_);
        family("gemini_attempt_failures_total", "counter", "Failed attempts, by error kind.");
        for (const auto& [k, v] : failures_) line("gemini_attempt_failures_total", "kind=\"" + k + "\"", v);
        family("gemini_retries_total", "counter", "Retries scheduled, by the kind of the failure.");
        for (const auto& [k, v] : retries_) line("gemini_retries_total", "kind=\"" + k + "\"", v);
        family("gemini_gave_up_total", "counter", "Calls that ended without success, by reason.");
        for (const auto& [k, v] : gave_up_) line("gemini_gave_up_total", "reason=\"" + k + "\"", v);
        family("gemini_cooldown_waits_total", "counter", "Attempts held back by a Retry-After of the service.");
        line("gemini_cooldown_waits_total", "", cooldown_waits_);
        family("gemini_breaker_waits_total", "counter", "Attempts that waited for the circuit breaker.");
        line("gemini_breaker_waits_total", "", breaker_waits_);
        family("gemini_rate_waits_total", "counter", "Attempts held back by the adaptive rate gate.");
        line("gemini_rate_waits_total", "", rate_waits_);
        family("gemini_rate_wait_seconds_total", "counter", "Announced length of the rate gate's waits (the first of each attempt).");
        out.append("gemini_rate_wait_seconds_total ").append(std::to_string(rate_wait_s_)).append("\n");
        family("gemini_breaker_transitions_total", "counter", "Circuit breaker transitions, by new state.");
        for (const auto& [k, v] : transitions_) line("gemini_breaker_transitions_total", "to=\"" + k + "\"", v);
        family("gemini_breaker_open", "gauge", "1 while the circuit breaker is not CLOSED.");
        line("gemini_breaker_open", "", g.breaker_state() == resilience::breaker_state::closed ? 0 : 1);
        const resilience::http::pool_stats pool = g.http().stats();  // on the client's executor: we are
        family("gemini_connections_opened_total", "counter", "Connections opened to the Gemini API.");
        line("gemini_connections_opened_total", "", pool.opened);
        family("gemini_connections_in_use", "gauge", "Pooled connections carrying a request now.");
        line("gemini_connections_in_use", "", pool.in_use);
        return out;
    }

private:
    std::uint64_t attempts_ = 0, cooldown_waits_ = 0, breaker_waits_ = 0, rate_waits_ = 0, cancelled_ = 0, shed_ = 0;
    double rate_wait_s_ = 0;
    std::map<std::string, std::uint64_t> failures_, retries_, gave_up_, transitions_;
    std::map<std::pair<std::string, int>, std::uint64_t> requests_;
};
#endif

// ---------------------------------------------------------------------------
// 2. Answers, and how a library failure becomes one.
// ---------------------------------------------------------------------------

struct answer {
    answer() = default;  // not an aggregate: see the g++ 12 note in README.md
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::optional<resilience::duration> retry_after;  // sent as Retry-After (seconds)
};

answer json_answer(int status, const json::value& v) {
    answer a;
    a.status = status;
    a.body = json::serialize(v) + "\n";
    return a;
}

answer error_answer(int status, std::string message) {
    return json_answer(status, json::object{{"error", json::object{{"status", status}, {"message", std::move(message)}}}});
}

// The HTTP status a failed call deserves. The library classified the failure
// already (code, kind, give-up reason, the service's pushback); the server only
// decides whose fault it is.
int status_for(const resilience::failure& f) {
    using resilience::errc;
    using resilience::give_up_reason;
    const auto& d = f.diag;
    if (f.code == errc::deadline_exceeded || f.code == errc::attempt_timeout || d.gave_up == give_up_reason::deadline)
        return 504;                                     // the request's own budget ran out
    if (f.code == errc::invalid_argument) return 400;   // e.g. not a file name
    if (f.code == resilience::gemini::errc::file_failed) return 422;        // the service could not process the file
    if (f.code == resilience::http::errc::client_error && d.http_status == 404) return 404;
    if (f.code == resilience::http::errc::too_many_requests || f.code == resilience::gemini::errc::quota_exhausted)
        return 429;                                     // pass the pushback on (Retry-After below)
    if (f.code == errc::circuit_open || f.code == errc::retry_budget_exhausted ||
        d.gave_up == give_up_reason::circuit_open || d.gave_up == give_up_reason::budget)
        return 503;                                     // the service is sick: come back later
    return 502;                                         // it kept failing, or refused our key
}

answer failure_answer(const resilience::failure& f) {
    const int status = status_for(f);
    json::object err{{"status", status},
                     {"kind", resilience::to_string(resilience::classify(f.code))},
                     {"message", f.what()},  // never contains the API key (the library scrubs it)
                     {"attempts", f.diag.attempts}};
    if (f.diag.gave_up != resilience::give_up_reason::none) err["gaveUp"] = resilience::to_string(f.diag.gave_up);
    answer a = json_answer(status, json::object{{"error", std::move(err)}});
    if (f.diag.retry_after && (status == 429 || status == 503)) a.retry_after = f.diag.retry_after;
    return a;
}

// ---------------------------------------------------------------------------
// 3. The handlers. Each takes the request's deadline and co_awaits the shared
//    client; cancellation reaches them through the coroutine's cancellation
//    state (see serve_connection), nothing to pass by hand.
// ---------------------------------------------------------------------------

// What the handlers share: the one client, the metrics, the media folder.
struct app {
    app(gemini::client& g, metrics& m, std::filesystem::path dir) : gemini(g), stats(m), media_dir(std::move(dir)) {}
    gemini::client& gemini;
    metrics& stats;
    std::filesystem::path media_dir;
    std::uint64_t next_request_id = 1;
};

// `?timeout=SECONDS` (0 < S <= 300, default 30) as a deadline on the client's
// clock: the call's retries, backoff, cooldown waits and polls all respect it.
std::optional<resilience::time_point> request_deadline(gemini::client& g, const boost::urls::params_view& params) {
    double seconds = 30;
    if (auto it = params.find("timeout"); it != params.end()) {
        const std::string v = (*it).value;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), seconds);
        if (ec != std::errc() || p != v.data() + v.size() || !(seconds > 0 && seconds <= 300)) return std::nullopt;
    }
    return g.time().now() + std::chrono::duration_cast<resilience::duration>(std::chrono::duration<double>(seconds));
}

// Load shedding: while the breaker is OPEN (and its open timeout has not
// passed) every call would only wait for it; answer 503 at once instead. Once
// the timeout has passed, requests go through so that one can be the probe.
std::optional<answer> shed_if_open(app& a) {
    if (a.gemini.breaker_state() != resilience::breaker_state::open) return std::nullopt;
    const auto until = a.gemini.breaker().snapshot().open_until();
    const auto now = a.gemini.time().now();
    if (until <= now) return std::nullopt;
    a.stats.shed();
    answer r = error_answer(503, "the Gemini API is failing; the circuit breaker is open");
    r.retry_after = until - now;
    return r;
}

// Deletes an uploaded file when it goes out of scope, in a detached
// coroutine (best effort, 30 s). The io_context keeps running until it is
// done, so a graceful shutdown also waits for the cleanups.
class delete_later {
public:
    delete_later(gemini::client& g, std::string name) : g_(g), name_(std::move(name)) {}
    delete_later(const delete_later&) = delete;
    delete_later& operator=(const delete_later&) = delete;
    ~delete_later() { asio::co_spawn(g_.http().get_executor(), remove(g_, std::move(name_)), asio::detached); }

private:
    static asio::awaitable<void> remove(gemini::client& g, std::string name) {
        auto r = co_await g.remove(std::move(name), g.time().now() + 30s);
        if (!r) std::clog << "cleanup: " << r.error().what() << '\n';
    }
    gemini::client& g_;
    std::string name_;
};

// POST /describe?file=NAME&prompt=TEXT&timeout=S
asio::awaitable<answer> describe(app& a, boost::urls::params_view params, resilience::time_point deadline) {
    auto it = params.find("file");
    if (it == params.end()) co_return error_answer(400, "missing ?file=NAME");
    const std::string name = (*it).value;
    // Only plain names inside the media folder: no paths, no hidden files.
    if (name.empty() || name.size() > 200 || name.front() == '.' || name.find_first_of("/\\") != std::string::npos)
        co_return error_answer(400, "file must be a plain file name in the media folder");
    const std::filesystem::path path = a.media_dir / name;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) co_return error_answer(404, "no such media file: " + name);
    if (auto shed = shed_if_open(a)) co_return std::move(*shed);

    std::string prompt = "Describe this media file in one sentence.";
    if (auto p = params.find("prompt"); p != params.end() && !(*p).value.empty()) prompt = (*p).value;

    // The status text of this request's calls, tagged with a request id.
    const resilience::status_handler say = [id = a.next_request_id++](std::string_view s) {
        std::clog << "[request " << id << "] " << s << '\n';
    };
    const auto started = std::chrono::steady_clock::now();

    // Upload (resumable; a failed chunk resumes where the server stands).
    // Option structs are named objects moved into the call (g++ 12, README.md).
    gemini::upload_options up;
    up.deadline = deadline;
    up.on_status = say;
    auto uploaded = co_await a.gemini.upload(path.string(), std::move(up));
    if (!uploaded) co_return failure_answer(uploaded.error());

    // From here the file exists upstream: delete it whatever happens next,
    // also when this request is cancelled or times out. A cancelled coroutine
    // cannot make another call (its cancellation state stays cancelled), so
    // the cleanup runs as a coroutine of its own, with its own deadline.
    delete_later cleanup(a.gemini, uploaded->name);

    // Wait until ACTIVE, polling sooner than the 1 s default: someone waits.
    gemini::wait_options w;
    w.deadline = deadline;
    w.poll_initial = 200ms;
    w.poll_max = 2s;
    w.on_status = say;
    auto active = co_await a.gemini.wait_until_active(uploaded->name, std::move(w));
    if (!active) co_return failure_answer(active.error());

    // Ask the model about it.
    gemini::content c;
    c.parts = {gemini::part::from_file(*active), gemini::part::from_text(prompt)};
    std::vector<gemini::content> contents{std::move(c)};
    gemini::call_options gen;
    gen.deadline = deadline;
    gen.on_status = say;
    auto generated = co_await a.gemini.generate_content("gemini-2.0-flash", std::move(contents), std::move(gen));
    if (!generated) co_return failure_answer(generated.error());

    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    co_return json_answer(200, json::object{{"file", gemini::to_json(*active)},
                                            {"text", generated->text},
                                            {"finishReason", generated->finish_reason},
                                            {"totalTokens", generated->usage.total_tokens},
                                            {"elapsedMs", ms.count()}});
}

// GET /status/{id}[?wait=1]
asio::awaitable<answer> file_status(app& a, std::string id, boost::urls::params_view params,
                                    resilience::time_point deadline) {
    if (auto shed = shed_if_open(a)) co_return std::move(*shed);
    const bool wait = params.contains("wait") && (*params.find("wait")).value != "0";
    if (wait) {
        gemini::wait_options w;
        w.deadline = deadline;  // ends with errc::deadline_exceeded naming the last state seen
        w.poll_initial = 100ms;
        w.poll_max = 1s;
        auto f = co_await a.gemini.wait_until_active(std::move(id), std::move(w));
        if (!f && f.error().code == resilience::http::errc::forbidden)
            co_return error_answer(404, "no such file (or not accessible with this server's key)");
        if (!f) co_return failure_answer(f.error());
        co_return json_answer(200, gemini::to_json(*f));
    }
    auto f = co_await a.gemini.get(std::move(id), deadline);
    if (!f && f.error().code == resilience::http::errc::forbidden)
        // Gemini answers 403 PERMISSION_DENIED ("... or it may not exist") for a
        // file it does not know. To our caller that is a 404.
        co_return error_answer(404, "no such file (or not accessible with this server's key)");
    if (!f) co_return failure_answer(f.error());
    co_return json_answer(200, gemini::to_json(*f));
}

using request = bhttp::request<bhttp::string_body>;

// Routes one request. `route` receives the route's name for the metrics.
asio::awaitable<answer> dispatch(app& a, const request& req, std::string& route) {
    auto url = boost::urls::parse_origin_form(req.target());
    if (!url) co_return error_answer(400, "bad request target");
    const auto path = url->path();
    const auto params = url->params();
    if (path == "/metrics" && req.method() == bhttp::verb::get) {
        route = "metrics";
        answer m;
        m.content_type = "text/plain; version=0.0.4";
        m.body = a.stats.render(a.gemini);
        co_return m;
    }
    const bool is_describe = path == "/describe";
    const bool is_status = path.starts_with("/status/") && path.size() > 8;
    if (!is_describe && !is_status) co_return error_answer(404, "no such route");
    route = is_describe ? "describe" : "status";
    if (req.method() != (is_describe ? bhttp::verb::post : bhttp::verb::get))
        co_return error_answer(405, "method not allowed");
    auto deadline = request_deadline(a.gemini, params);
    if (!deadline) co_return error_answer(400, "timeout must be a number of seconds in (0, 300]");
    if (is_describe) co_return co_await describe(a, params, *deadline);
    co_return co_await file_status(a, std::string(path.substr(8)), params, *deadline);
}

// ---------------------------------------------------------------------------
// 4. Connections: one coroutine each.
// ---------------------------------------------------------------------------

// Completes when the peer closes (or resets) the connection. Bytes it sends
// meanwhile (a pipelined request) are kept in `buffer` for the next read.
// Cancelled (by the || below) when the handler finishes first.
asio::awaitable<void> client_gone(tcp::socket& socket, beast::flat_buffer& buffer) {
    for (;;) {
        boost::system::error_code ec;
        if (buffer.size() >= 64 * 1024) {
            // Enough pipelined bytes buffered: stop reading, wait for the handler.
            asio::steady_timer forever(socket.get_executor(), asio::steady_timer::time_point::max());
            co_await forever.async_wait(asio::redirect_error(asio::use_awaitable, ec));
            co_return;
        }
        const std::size_t n = co_await socket.async_read_some(buffer.prepare(4096), asio::redirect_error(asio::use_awaitable, ec));
        buffer.commit(n);
        if (ec) co_return;  // EOF or reset: the client is gone (or we were cancelled)
    }
}

asio::awaitable<void> serve_connection(app& a, beast::tcp_stream& stream) {
    beast::flat_buffer buffer;
    for (;;) {
        bhttp::request_parser<bhttp::string_body> parser;
        parser.body_limit(64 * 1024);
        stream.expires_after(30s);  // idle keep-alive connections and slow senders
        boost::system::error_code ec;
        co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return;  // closed, timed out, or not HTTP
        request req = parser.release();
        stream.expires_never();  // from here the request's own deadline rules

        // The handler races the socket: if the client hangs up first, the
        // handler is cancelled (terminal per-operation cancellation), and the
        // library call it awaits ends at once with operation_aborted.
        std::string route = "other";
        struct in_flight_guard {
            explicit in_flight_guard(int& n) : n_(n) { ++n_; }
            ~in_flight_guard() { --n_; }
            int& n_;
        };
        std::optional<in_flight_guard> busy(std::in_place, a.stats.in_flight);
        auto handler = dispatch(a, req, route);
        auto gone = client_gone(stream.socket(), buffer);
        std::variant<answer, std::monostate> outcome = co_await (std::move(handler) || std::move(gone));
        busy.reset();
        if (outcome.index() == 1) {
            a.stats.cancelled();
            co_return;
        }
        answer& ans = std::get<0>(outcome);
        a.stats.answered(route, ans.status);

        bhttp::response<bhttp::string_body> res(static_cast<bhttp::status>(ans.status), req.version());
        res.set(bhttp::field::server, "media_server (asio-resilience example)");
        res.set(bhttp::field::content_type, ans.content_type);
        if (ans.retry_after) {
            auto s = std::chrono::ceil<std::chrono::seconds>(*ans.retry_after).count();
            res.set(bhttp::field::retry_after, std::to_string(std::max<long long>(1, s)));
        }
        res.keep_alive(req.keep_alive());
        res.body() = std::move(ans.body);
        res.prepare_payload();
        stream.expires_after(30s);
        co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
        if (ec || !res.keep_alive()) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

// The listener, and the registry of open connections for shutdown.
class server {
public:
    server(asio::io_context& ctx, app& a, tcp::endpoint at) : app_(a), acceptor_(ctx, at) {}

    unsigned short port() const { return acceptor_.local_endpoint().port(); }

    void start() {
        asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
    }

    // Stops accepting and closes every connection. A handler in flight sees
    // its client gone and is cancelled, which cancels its library call.
    void stop() {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
        for (beast::tcp_stream* s : open_) s->socket().close(ignored);
    }

private:
    asio::awaitable<void> accept_loop() {
        for (;;) {
            boost::system::error_code ec;
            tcp::socket socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
            if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
            if (ec) continue;  // e.g. too many open files: keep accepting
            asio::co_spawn(acceptor_.get_executor(), connection(std::move(socket)),
                           [](std::exception_ptr p) {
                               try {
                                   if (p) std::rethrow_exception(p);
                               } catch (const std::exception& e) {
                                   std::clog << "connection ended by an exception: " << e.what() << '\n';
                               }
                           });
        }
    }

    asio::awaitable<void> connection(tcp::socket socket) {
        beast::tcp_stream stream(std::move(socket));
        open_.push_front(&stream);
        auto self = open_.begin();
        struct unregister {
            std::list<beast::tcp_stream*>& l;
            std::list<beast::tcp_stream*>::iterator it;
            ~unregister() { l.erase(it); }
        } guard{open_, self};
        co_await serve_connection(app_, stream);
    }

    app& app_;
    tcp::acceptor acceptor_;
    std::list<beast::tcp_stream*> open_;
};

// ---------------------------------------------------------------------------
// 5. --test: the simulator, the server, a few requests, the metrics.
// ---------------------------------------------------------------------------

struct checker {
    int failures = 0;
    void operator()(bool ok, const std::string& what) {
        std::cout << (ok ? "ok    " : "FAIL  ") << what << '\n';
        if (!ok) ++failures;
    }
};

// One request to the server with the library's own HTTP client.
asio::awaitable<resilience::result<resilience::http::response>> call(resilience::http::client& c, std::string base,
                                                                     bhttp::verb method, std::string target) {
    resilience::http::request req;
    req.method = method;
    req.url = base + target;
    co_return co_await c.send(std::move(req));
}

json::value body_json(const resilience::result<resilience::http::response>& r) {
    if (!r) return nullptr;
    boost::system::error_code ec;
    json::value v = json::parse(r->body, ec);
    return ec ? json::value(nullptr) : v;
}

std::string str(const json::value& v, std::initializer_list<std::string_view> path) {
    const json::value* cur = &v;
    for (auto k : path) {
        if (!cur->is_object() || !cur->as_object().contains(k)) return {};
        cur = &cur->as_object().at(k);
    }
    return cur->is_string() ? std::string(cur->as_string()) : std::string();
}

// The value of a metric line `name{labels} N` (labels given exactly), or -1.
long long metric(const std::string& text, const std::string& series) {
    auto pos = text.find("\n" + series + " ");
    if (pos == std::string::npos) return -1;
    return std::atoll(text.c_str() + pos + series.size() + 2);
}

asio::awaitable<void> test_driver(server& srv_http, sim::server& sim, checker& check) {
    auto ex = co_await asio::this_coro::executor;
    resilience::http::client c(ex);
    const std::string base = "http://127.0.0.1:" + std::to_string(srv_http.port());
    using bhttp::verb;

    // a) The whole media task through the server, while the simulator answers
    //    the upload start with a 429 (RetryInfo 200 ms) and the first poll with a 503.
    auto r = co_await call(c, base, verb::post, "/describe?file=clip.mp4&prompt=What%20is%20it%3F&timeout=10");
    json::value v = body_json(r);
    check(r && r->status == 200, "POST /describe answers 200 despite a 429 and a 503 (" +
                                     (r ? std::to_string(r->status) + " " + r->body : r.error().what()) + ")");
    check(!str(v, {"text"}).empty() && str(v, {"file", "state"}) == "ACTIVE", "the answer has the model's text and an ACTIVE file");

    // b) Caller mistakes are the caller's.
    r = co_await call(c, base, verb::post, "/describe?file=..%2Fsecret");
    check(r && r->status == 400, "a path outside the media folder is 400");
    r = co_await call(c, base, verb::post, "/describe?file=missing.mp4");
    check(r && r->status == 404, "a missing media file is 404");
    r = co_await call(c, base, verb::get, "/status/doesnotexist");
    check(r && r->status == 404, "an unknown Gemini file is 404 (" + (r ? std::to_string(r->status) : std::string("-")) + ")");
    r = co_await call(c, base, verb::get, "/status/abc?timeout=-1");
    check(r && r->status == 400, "a bad timeout is 400");

    // c) The request's deadline bounds the wait: the file is PROCESSING for
    //    300 ms, the request allows 50 ms.
    std::string id = sim.add_file("some bytes", "video/mp4", "slow.mp4").substr(6);  // strip "files/"
    const auto t0 = std::chrono::steady_clock::now();
    r = co_await call(c, base, verb::get, "/status/" + id + "?wait=1&timeout=0.05");
    const auto waited = std::chrono::steady_clock::now() - t0;
    check(r && r->status == 504, "wait=1 with timeout=0.05 on a PROCESSING file is 504 (" +
                                     (r ? std::to_string(r->status) + " " + r->body : r.error().what()) + ")");
    check(waited < 250ms, "... and answers within the request's budget");
    r = co_await call(c, base, verb::get, "/status/" + id + "?wait=1&timeout=5");
    check(r && r->status == 200 && str(body_json(r), {"state"}) == "ACTIVE", "wait=1 with timeout=5 ends ACTIVE");

    // d) A describe whose budget ends while the file is PROCESSING: 504, and
    //    the uploaded file is still deleted (by the detached cleanup).
    r = co_await call(c, base, verb::post, "/describe?file=clip.mp4&timeout=0.3");
    check(r && r->status == 504, "describe with timeout=0.3 is 504 (" + (r ? std::to_string(r->status) : std::string("-")) + ")");
    for (int i = 0; i < 50 && sim.file_names().size() > 1; ++i) {
        asio::steady_timer t(ex, 10ms);
        co_await t.async_wait(asio::use_awaitable);
    }
    check(sim.file_names().size() == 1, "uploaded files are deleted, also after a failed request (only slow.mp4 is left)");

    // e) The client hangs up: the next files.get is held 3 s by the simulator;
    //    the client closes after 100 ms; the server must cancel the call.
    sim::fault slow(sim::fault_kind::latency, sim::route::get);
    slow.count = 1;
    slow.latency = 3s;
    sim.add_fault(slow);
    {
        beast::tcp_stream raw(ex);
        co_await raw.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), srv_http.port()), asio::use_awaitable);
        bhttp::request<bhttp::empty_body> get(verb::get, "/status/" + id, 11);
        get.set(bhttp::field::host, "127.0.0.1");
        co_await bhttp::async_write(raw, get, asio::use_awaitable);
        asio::steady_timer t(ex, 100ms);
        co_await t.async_wait(asio::use_awaitable);
    }  // closes the connection
    const auto t1 = std::chrono::steady_clock::now();
    std::string m;
    for (int i = 0; i < 50; ++i) {  // up to 1 s
        r = co_await call(c, base, verb::get, "/metrics");
        m = r ? r->body : std::string();
        if (metric(m, "media_server_requests_cancelled_total") == 1) break;
        asio::steady_timer t(ex, 20ms);
        co_await t.async_wait(asio::use_awaitable);
    }
    check(metric(m, "media_server_requests_cancelled_total") == 1 && std::chrono::steady_clock::now() - t1 < 1s,
          "a client that hangs up cancels its request at once");
    check(metric(m, "media_server_requests_in_flight") == 1, "no request left in flight (but /metrics itself)");

    // f) The metrics saw the retries the structured events reported.
    check(metric(m, "gemini_retries_total{kind=\"RETRYABLE_RATE_LIMIT\"}") == 1, "metrics: one retry after the 429");
    check(metric(m, "gemini_retries_total{kind=\"RETRYABLE_SERVER\"}") == 1, "metrics: one retry after the 503");
    check(metric(m, "media_server_requests_total{code=\"200\",route=\"describe\"}") == 1, "metrics: describe 200 counted");
    check(metric(m, "media_server_requests_total{code=\"504\",route=\"status\"}") == 1, "metrics: status 504 counted");
    check(metric(m, "gemini_gave_up_total{reason=\"cancelled\"}") >= 1, "metrics: the cancelled call gave up as cancelled");
    check(metric(m, "gemini_rate_waits_total") == 0 && m.find("\ngemini_rate_wait_seconds_total ") != std::string::npos,
          "metrics: the rate gate's waits are served beside the cooldown's and the breaker's (none: the gate is off)");
#if RESILIENCE_EXAMPLE_PROMETHEUS
    check(m.find("# TYPE gemini_request_duration_seconds histogram") != std::string::npos &&
              metric(m, "gemini_attempt_duration_seconds_count{outcome=\"success\"}") >= 1,
          "metrics: the Prometheus adapter's latency histograms are served");
#endif
    std::cout << "--- GET /metrics ---\n" << m << "---\n";
    srv_http.stop();
}

int run_test() {
    // The simulator on its own thread, real clock: files PROCESSING for 300 ms
    // (a bit more than 100 ms so that the deadline check above has room), a
    // 429 with RetryInfo 200 ms on the first upload start, a 503 on the first files.get.
    sim::config cfg;
    cfg.api_key = "test-key";
    cfg.processing = sim::processing_time::fixed(300ms);
    sim::fault rl = sim::fault::next(sim::fault_kind::rate_limit, sim::route::upload_start, 1);
    rl.retry_delay = 200ms;
    cfg.faults.faults.push_back(rl);
    cfg.faults.faults.push_back(sim::fault::next(sim::fault_kind::overloaded, sim::route::get, 1));
    sim::server gemini_sim(cfg);
    gemini_sim.start();

    // A media folder with one file.
    const auto dir = std::filesystem::temp_directory_path() / ("media_server_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "clip.mp4", std::ios::binary) << std::string(4096, 'x');

    asio::io_context ctx;
    metrics stats;
    gemini::client_options opts;
    opts.api_key = cfg.api_key;
    opts.base_url = gemini_sim.base_url();
    opts.retry.backoff.initial_delay = 50ms;
    opts.retry.backoff.max_delay = 500ms;
    opts.seed = 7;
    opts.on_event = [&stats](const resilience::event& e) { stats.on_event(e); };
    opts.on_status = [](std::string_view s) { std::clog << "[gemini] " << s << '\n'; };
    gemini::client g(ctx.get_executor(), std::move(opts));

    app a{g, stats, dir};
    server srv(ctx, a, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    srv.start();
    checker check;
    asio::co_spawn(ctx, test_driver(srv, gemini_sim, check), [&](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::exception& e) {
            check(false, std::string("test driver threw: ") + e.what());
            srv.stop();
        }
    });
    const auto start = std::chrono::steady_clock::now();
    ctx.run();
    gemini_sim.stop();
    std::filesystem::remove_all(dir);
    std::cout << (check.failures ? "FAILED" : "passed") << " in "
              << resilience::format_seconds(std::chrono::steady_clock::now() - start) << '\n';
    return check.failures ? 1 : 0;
}

// ---------------------------------------------------------------------------
// 6. The real program.
// ---------------------------------------------------------------------------

int run_server(const std::string& address, unsigned short port, const std::string& media_dir) {
    // GEMINI_* variables (key, base URL, retry and breaker settings), validated.
    auto opts = gemini::client_options::from_env();
    if (!opts) {
        std::cerr << "configuration error: " << opts.error().what() << '\n';
        return 2;
    }
    std::unique_ptr<sim::server> simulator;
    if (opts->api_key.empty()) {
        sim::config cfg;
        cfg.api_key = "local-simulator-key";
        cfg.processing = sim::processing_time::uniform(1s, 3s);
        cfg.faults.faults.push_back(sim::fault::sometimes(sim::fault_kind::overloaded, sim::route::all, 0.05));
        sim::fault rl = sim::fault::sometimes(sim::fault_kind::rate_limit, sim::route::get, 0.02);
        rl.retry_delay = 1s;
        cfg.faults.faults.push_back(rl);
        simulator = std::make_unique<sim::server>(cfg);
        simulator->start();
        opts->api_key = cfg.api_key;
        opts->base_url = simulator->base_url();
        std::cout << "GEMINI_API_KEY is not set: using the in-process simulator at " << opts->base_url
                  << " (5% 503s, 2% 429s)\n";
    }

    asio::io_context ctx;
    metrics stats;
    opts->on_event = [&stats](const resilience::event& e) { stats.on_event(e); };
    gemini::client g(ctx.get_executor(), std::move(*opts));
    app a{g, stats, media_dir};
    std::optional<server> srv;
    try {
        srv.emplace(ctx, a, tcp::endpoint(asio::ip::make_address(address), port));
    } catch (const std::exception& e) {
        std::cerr << "cannot listen on " << address << ":" << port << ": " << e.what() << '\n';
        return 1;
    }
    srv->start();
    std::cout << "media_server listening on http://" << address << ":" << srv->port() << "/ (media folder "
              << std::filesystem::absolute(media_dir).string() << ")\n"
              << "  curl -X POST 'http://" << address << ":" << srv->port() << "/describe?file=NAME&timeout=60'\n"
              << "  curl http://" << address << ":" << srv->port() << "/metrics\n";

    asio::signal_set signals(ctx, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int) {
        if (ec) return;
        std::cout << "shutting down\n";
        srv->stop();
    });
    ctx.run();
    if (simulator) simulator->stop();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string address = "127.0.0.1", media_dir = ".";
    unsigned short port = 8080;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--test") return run_test();
        if (arg == "--port" && has_value) {
            const std::string_view v = argv[++i];
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), port);
            if (ec != std::errc() || p != v.data() + v.size()) {
                std::cerr << "--port: not a port number: " << v << '\n';
                return 2;
            }
        } else if (arg == "--address" && has_value) {
            address = argv[++i];
        } else if (arg == "--media-dir" && has_value) {
            media_dir = argv[++i];
        } else {
            std::cerr << "usage: media_server [--port N] [--address A] [--media-dir DIR] | --test\n";
            return 2;
        }
    }
    try {
        return run_server(address, port, media_dir);
    } catch (const std::exception& e) {
        std::cerr << "media_server: " << e.what() << '\n';
        return 1;
    }
}
