// The network side of the simulator: accept loop, one coroutine per
// connection (HTTP/1.1 keep-alive), its timeouts, latency and transport
// faults, and the public server API.

#include "impl.hpp"
#include "saturate.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>

#include <iostream>

namespace resilience::sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace detail {

server_impl::server_impl(config c, asio::io_context* caller)
    : cfg(std::move(c)),
      clk(cfg.time ? *cfg.time : steady_clock()),
      files(cfg, clk),
      faults(cfg.seed ^ 0x9e3779b97f4a7c15ULL) {
    if (caller) {
        ctx = caller;
    } else {
        own_ctx = std::make_unique<asio::io_context>(static_cast<int>(std::max(1u, cfg.threads)));
        ctx = own_ctx.get();
    }
}

void server_impl::warn(std::string_view message) const {
    if (cfg.warn) {
        cfg.warn(message);
        return;
    }
    std::clog << "resilience::sim: warning: " << message << std::endl;
}

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

void reset_connection(tcp::socket& sock) {
    boost::system::error_code ec;
    sock.set_option(asio::socket_base::linger(true, 0), ec);
    sock.close(ec);
}

// Bookkeeping of one open connection (counters, and the set stop() closes).
struct connection_guard {
    server_impl& s;
    std::uint64_t id;
    connection_guard(server_impl& srv, tcp::socket* sock) : s(srv) {
        s.counts.open_connections.fetch_add(1, std::memory_order_relaxed);
        s.counts.total_connections.fetch_add(1, std::memory_order_relaxed);
        std::lock_guard lk(s.conns_mu);
        id = s.next_conn++;
        s.conns.emplace(id, sock);
    }
    ~connection_guard() {
        s.counts.open_connections.fetch_sub(1, std::memory_order_relaxed);
        std::lock_guard lk(s.conns_mu);
        s.conns.erase(id);
    }
    connection_guard(const connection_guard&) = delete;
    connection_guard& operator=(const connection_guard&) = delete;
};

bool is_transport(fault_kind k) {
    return k == fault_kind::reset_before_headers || k == fault_kind::reset_after_headers ||
           k == fault_kind::truncated_body || k == fault_kind::malformed_json;
}

// A connection's timeouts, on the server's clock. The connection says which
// phase it is in and until when; a watchdog coroutine on the same executor
// sleeps until that deadline and, if it has not moved on, cancels the
// socket's pending operation (the connection then answers 408 or closes).
// One watchdog per connection, started when a timed phase begins, so that a
// request costs a few clock reads and no timer.
struct conn_watch {
    enum class phase : unsigned char { idle, header, body, handling, write, drain };
    conn_watch(std::shared_ptr<server_impl> srv, asio::any_io_executor e, tcp::socket* so)
        : self(std::move(srv)), ex(std::move(e)), sock(so) {}
    std::shared_ptr<server_impl> self;
    asio::any_io_executor ex;
    tcp::socket* sock;  // valid while !ended
    time_point deadline = time_point::max();
    time_point wakes_at = time_point::max();  // when the running watchdog wakes up
    duration step = duration::max();           // the shortest of the timeouts
    phase ph = phase::idle;
    bool expired = false;   // the watchdog cancelled the pending operation
    bool ended = false;     // the connection is gone
    // The running watchdog's stop signal (null: none runs). A deadline moved
    // before its wake-up stops it and starts another.
    std::shared_ptr<asio::cancellation_signal> watchdog;

    void stop_watchdog() {
        if (auto w = std::move(watchdog)) w->emit(asio::cancellation_type::terminal);
    }
};

// What a refused request's close waits for: the client's end, 5 s or 1 MiB
// read and dropped, whichever comes first (so that the close does not reset
// the connection before the client has read the answer).
constexpr duration linger_time = std::chrono::seconds(5);
constexpr std::size_t linger_bytes = 1u << 20;

asio::awaitable<void> watch_connection(std::shared_ptr<conn_watch> w, std::shared_ptr<asio::cancellation_signal> me) {
    clock& clk = w->self->clk;
    auto current = [&] { return w->watchdog == me && !w->ended; };
    while (current() && w->deadline != time_point::max()) {
        // Awake at least every `step`: a deadline set later (at least `step`
        // ahead) is then never missed, and needs no new watchdog.
        const time_point at = std::min(w->deadline, sat_add(clk.now(), w->step));
        w->wakes_at = at;
        auto ec = co_await clk.sleep_until(at);
        if (ec || !current()) co_return;  // stopped: the connection ended, or another watchdog took over
        if (clk.now() < w->deadline) continue;  // it moved on meanwhile
        w->expired = true;
        boost::system::error_code ignored;
        w->sock->cancel(ignored);
        break;
    }
    if (w->watchdog == me) w->watchdog.reset();
}

void arm(const std::shared_ptr<conn_watch>& w, conn_watch::phase p, duration timeout) {
    w->ph = p;
    w->expired = false;
    if (timeout <= duration::zero()) {
        w->deadline = time_point::max();
        return;
    }
    w->deadline = sat_add(w->self->clk.now(), timeout);
    if (w->watchdog && w->deadline < w->wakes_at) w->stop_watchdog();  // it would wake too late
    if (!w->watchdog) {
        auto sig = std::make_shared<asio::cancellation_signal>();
        w->watchdog = sig;
        w->wakes_at = std::min(w->deadline, sat_add(w->self->clk.now(), w->step));
        asio::co_spawn(w->ex, watch_connection(w, sig), asio::bind_cancellation_slot(sig->slot(), asio::detached));
    }
}

// Answers a request the server cannot take (malformed, too large, too slow),
// then closes after a bounded linger.
asio::awaitable<void> refuse(server_impl& s, beast::tcp_stream& stream, beast::flat_buffer& buffer,
                             const std::shared_ptr<conn_watch>& w, int status, const std::string& msg) {
    s.counts.total.fetch_add(1, std::memory_order_relaxed);
    s.counts.requests[static_cast<std::size_t>(route::other)].fetch_add(1, std::memory_order_relaxed);
    auto res = error_response(status, msg, 11, false);
    s.record(s.clk.now(), route::other, status);
    arm(w, conn_watch::phase::write, s.cfg.body_timeout);
    auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
    (void)wn;
    if (wec) co_return;
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    arm(w, conn_watch::phase::drain, linger_time);
    for (std::size_t drained = 0; drained < linger_bytes;) {
        buffer.clear();
        auto [rec, rn] = co_await stream.async_read_some(buffer.prepare(64 * 1024), use_tuple);
        if (rec) break;
        drained += rn;
    }
}

asio::awaitable<void> serve_connection(std::shared_ptr<server_impl> self, tcp::socket sock) {
    server_impl& s = *self;
    beast::tcp_stream stream(std::move(sock));
    connection_guard guard(s, &stream.socket());
    asio::any_io_executor ex = co_await asio::this_coro::executor;
    auto w = std::make_shared<conn_watch>(self, std::move(ex), &stream.socket());
    for (duration t : {s.cfg.idle_timeout, s.cfg.header_timeout, s.cfg.body_timeout})
        if (t > duration::zero()) w->step = std::min(w->step, t);
    struct end_watch {  // also when the coroutine is destroyed with its io_context
        conn_watch& w;
        ~end_watch() { w.ended = true; }
    } end_guard{*w};
    using phase = conn_watch::phase;
    beast::flat_buffer buffer;
    for (;;) {
        if (buffer.size() == 0) {  // idle until the first byte of the next request
            arm(w, phase::idle, s.cfg.idle_timeout);
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(beast::read_size(buffer, 64 * 1024)),
                                                           use_tuple);
            if (ec) {
                if (w->expired) s.counts.timeouts.fetch_add(1, std::memory_order_relaxed);
                break;
            }
            buffer.commit(n);
        }
        arm(w, phase::header, s.cfg.header_timeout);
        http::request_parser<http::string_body> parser;
        parser.body_limit(s.cfg.body_limit);
        parser.header_limit(64 * 1024);
        auto [ec, n] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
        (void)n;
        if (!ec && !parser.is_done()) {
            // curl sends "Expect: 100-continue" before large bodies and waits for it.
            auto expect = parser.get()[http::field::expect];
            if (beast::iequals(expect, "100-continue")) {
                arm(w, phase::write, s.cfg.body_timeout);
                http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
                auto [cec, cn] = co_await http::async_write(stream, cont, use_tuple);
                (void)cn;
                ec = cec;
            }
            // The body timeout is the longest pause between two reads.
            arm(w, phase::body, s.cfg.body_timeout);
            while (!ec && !parser.is_done()) {
                auto [bec, bn] = co_await http::async_read_some(stream, buffer, parser, use_tuple);
                (void)bn;
                ec = bec;
                if (!ec && s.cfg.body_timeout > duration::zero())
                    w->deadline = sat_add(s.clk.now(), s.cfg.body_timeout);
            }
        }
        if (ec) {
            if (w->expired) {
                s.counts.timeouts.fetch_add(1, std::memory_order_relaxed);
                if (w->ph == phase::header || w->ph == phase::body) {
                    const bool header = w->ph == phase::header;
                    const duration limit = header ? s.cfg.header_timeout : s.cfg.body_timeout;
                    const std::string msg = std::string(header ? "The request header was not received within "
                                                               : "The request body stalled for ") +
                                            format_proto_duration(limit) + ".";
                    co_await refuse(s, stream, buffer, w, 408, msg);
                }
                break;
            }
            if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
                ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor ||
                ec == http::error::partial_message) {
                break;
            }
            // Malformed or oversized request: answer in the Google envelope, then close.
            int status = 400;
            std::string msg;
            if (ec == http::error::header_limit) {
                status = 431;
                msg = "Request header fields too large: the limit is 65536 bytes.";
            } else if (ec == http::error::body_limit || ec == http::error::buffer_overflow) {
                status = 413;
                msg = "Request payload size exceeds the limit: " + std::to_string(s.cfg.body_limit) + " bytes.";
            } else {
                msg = "Malformed HTTP request: " + ec.message() + ".";
            }
            co_await refuse(s, stream, buffer, w, status, msg);
            break;
        }
        auto& req = parser.get();
        time_point now = s.clk.now();
        const time_point received = now;
        target_info t = classify(req);
        if (t.r != route::admin) s.counts.total.fetch_add(1, std::memory_order_relaxed);
        s.counts.requests[static_cast<std::size_t>(t.r)].fetch_add(1, std::memory_order_relaxed);

        decision d = s.faults.decide(t.r, now);
        if (d.latency > duration::zero()) {
            for (unsigned i = 0; i < d.latency_hits; ++i) s.counts.count_fault(static_cast<std::size_t>(fault_kind::latency));
            arm(w, phase::handling, duration::zero());  // no timeout while the fault holds the answer
            const auto until = sat_add(now, d.latency);
            (void)co_await s.clk.sleep_until(until);
            now = s.clk.now();
        }
        std::optional<fault_kind> transport;
        response res;
        if (d.from == decision::source::outage) {
            s.counts.count_fault(outage_slot);
            res = fault_response(s, d, req.version(), req.keep_alive(), now);
        } else if (d.from == decision::source::quota) {
            s.counts.count_fault(quota_slot);
            res = fault_response(s, d, req.version(), req.keep_alive(), now);
        } else if (d.from == decision::source::rule) {
            s.counts.count_fault(static_cast<std::size_t>(d.answer.kind));
            if (is_transport(d.answer.kind)) {
                transport = d.answer.kind;
                res = t.r == route::admin ? handle_admin(s, req, t) : handle_api(s, req, t, now);
            } else {
                res = fault_response(s, d, req.version(), req.keep_alive(), now);
            }
        } else {
            res = t.r == route::admin ? handle_admin(s, req, t) : handle_api(s, req, t, now);
        }
        int status = static_cast<int>(res.result_int());
        arm(w, phase::write, s.cfg.body_timeout);

        if (transport == fault_kind::reset_before_headers) {
            s.record(received, t.r, 0);
            reset_connection(stream.socket());
            break;
        }
        if (transport == fault_kind::reset_after_headers || transport == fault_kind::truncated_body) {
            s.record(received, t.r, transport == fault_kind::truncated_body ? status : 0);
            res.keep_alive(false);
            http::response_serializer<http::string_body> sr(res);
            auto [hec, hn] = co_await http::async_write_header(stream, sr, use_tuple);
            (void)hn;
            if (!hec && transport == fault_kind::truncated_body) {
                const auto& body = res.body();
                auto [bec, bn] = co_await asio::async_write(stream.socket(),
                                                            asio::buffer(body.data(), body.size() / 2), use_tuple);
                (void)bec;
                (void)bn;
            }
            if (transport == fault_kind::reset_after_headers) {
                reset_connection(stream.socket());
            } else {
                boost::system::error_code ignored;
                stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
                stream.socket().close(ignored);
            }
            break;
        }
        if (transport == fault_kind::malformed_json) {
            std::string body = res.body().empty() ? std::string("{\n  \"name\": ") : res.body();
            body.resize(body.size() / 2 + 1);
            body += "\n<!-- not json -->";
            res.body() = std::move(body);
            res.set(http::field::content_type, "application/json; charset=UTF-8");
            res.prepare_payload();
        }
        bool keep = res.keep_alive();
        s.record(received, t.r, status);  // before the write: a client that has the answer sees it counted
        auto [wec, wn] = co_await http::async_write(stream, res, use_tuple);
        (void)wn;
        if (wec) {
            if (w->expired) s.counts.timeouts.fetch_add(1, std::memory_order_relaxed);
            break;
        }
        if (!keep) {
            boost::system::error_code ignored;
            stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
            break;
        }
    }
    w->ended = true;
    w->stop_watchdog();  // ends its sleep
}

// The accept errors that mean "no resources now" (descriptors, memory): the
// connection stays in the backlog, so accepting again at once would fail at
// once, in a busy loop.
bool out_of_resources(const boost::system::error_code& ec) {
    return ec == asio::error::no_descriptors || ec == boost::system::errc::too_many_files_open_in_system ||
           ec == asio::error::no_buffer_space || ec == asio::error::no_memory;
}

asio::awaitable<void> accept_loop(std::shared_ptr<server_impl> self) {
    server_impl& s = *self;
    // Each connection and its watchdog share an executor: a strand unless the
    // server runs on one thread of its own.
    const bool strands = !s.own_ctx || s.cfg.threads > 1;
    duration pause{};
    bool warned = false;
    for (;;) {
        auto* acc = s.acceptor.get();
        if (!acc || !acc->is_open()) co_return;
        auto [ec, sock] = co_await acc->async_accept(use_tuple);
        if (ec) {
            if (ec == asio::error::operation_aborted || !s.running.load()) co_return;
            s.counts.accept_failures.fetch_add(1, std::memory_order_relaxed);
            if (!out_of_resources(ec)) continue;  // e.g. a connection reset before it was accepted
            // Out of descriptors: pause accepting (10 ms, doubling up to 1 s) and
            // say so once per episode; the connections already open go on.
            pause = pause == duration::zero() ? duration(std::chrono::milliseconds(10))
                                              : std::min<duration>(pause * 2, std::chrono::seconds(1));
            if (!warned) {
                warned = true;
                s.warn("cannot accept connections: " + ec.message() +
                       "; pausing accepts and retrying (every 1 s at most) until a connection is accepted");
            }
            const time_point until = sat_add(s.clk.now(), pause);
            (void)co_await s.clk.sleep_until(until);
            continue;
        }
        pause = duration::zero();
        warned = false;
        boost::system::error_code ignored;
        sock.set_option(tcp::no_delay(true), ignored);
        auto conn = serve_connection(self, std::move(sock));
        if (strands)
            asio::co_spawn(asio::make_strand(*s.ctx), std::move(conn), asio::detached);
        else
            asio::co_spawn(acc->get_executor(), std::move(conn), asio::detached);
    }
}

std::string_view strip_files_prefix(std::string_view name) {
    return name.starts_with("files/") ? name.substr(6) : name;
}

}  // namespace
}  // namespace detail

// --- stats accessors ---------------------------------------------------------

std::uint64_t stats::requests(route r) const {
    if (r == route::all) return total_requests;
    auto it = routes.find(r);
    return it == routes.end() ? 0 : it->second.requests;
}

std::uint64_t stats::count(route r, int status) const {
    std::uint64_t n = 0;
    for (const auto& [rr, rs] : routes) {
        if (r != route::all && rr != r) continue;
        auto it = rs.statuses.find(status);
        if (it != rs.statuses.end()) n += it->second;
    }
    return n;
}

std::uint64_t stats::polls_of(std::string_view name) const {
    std::string key = "files/";
    key += detail::strip_files_prefix(name);
    auto it = polls.find(key);
    return it == polls.end() ? 0 : it->second;
}

std::uint64_t stats::faults_of(std::string_view kind) const {
    auto it = faults.find(std::string(kind));
    return it == faults.end() ? 0 : it->second;
}

// --- server ------------------------------------------------------------------

struct server::impl {
    std::shared_ptr<detail::server_impl> d;
};

server::server(config cfg) : impl_(std::make_shared<impl>()) {
    impl_->d = std::make_shared<detail::server_impl>(std::move(cfg), nullptr);
}

server::server(asio::io_context& ctx, config cfg) : impl_(std::make_shared<impl>()) {
    impl_->d = std::make_shared<detail::server_impl>(std::move(cfg), &ctx);
}

server::~server() { stop(); }

void server::start() {
    auto& s = *impl_->d;
    if (s.running.exchange(true)) return;
    try {
        auto addr = asio::ip::make_address(s.cfg.address);
        if (!addr.is_loopback())
            s.warn("asked to listen on " + s.cfg.address +
                   ", which is not a loopback address: whoever reaches it can use the simulator, which is meant "
                   "for tests on this machine");
        tcp::endpoint ep(addr, s.cfg.port);
        auto acc = std::make_unique<tcp::acceptor>(*s.ctx);
        acc->open(ep.protocol());
        acc->set_option(asio::socket_base::reuse_address(true));
        acc->bind(ep);
        acc->listen(asio::socket_base::max_listen_connections);
        s.port = acc->local_endpoint().port();
        s.acceptor = std::move(acc);
    } catch (...) {
        s.running = false;
        throw;
    }
    if (!s.cfg.faults.empty()) s.faults.install(s.cfg.faults, s.clk.now());
    else if (s.cfg.faults.seed) s.faults.install(s.cfg.faults, s.clk.now());
    asio::co_spawn(*s.ctx, detail::accept_loop(impl_->d), asio::detached);
    if (s.own_ctx) {
        unsigned n = std::max(1u, s.cfg.threads);
        for (unsigned i = 0; i < n; ++i) s.threads.emplace_back([ctx = s.own_ctx.get()] { ctx->run(); });
    }
}

void server::stop() {
    if (!impl_ || !impl_->d) return;
    auto self = impl_->d;
    auto& s = *self;
    bool was_running = s.running.exchange(false);
    if (s.own_ctx) {
        s.own_ctx->stop();
        for (auto& t : s.threads)
            if (t.joinable()) t.join();
        s.threads.clear();
        if (was_running) {
            // Destroys the pending coroutines (which hold `self`), closing their sockets.
            s.acceptor.reset();
            s.own_ctx = std::make_unique<asio::io_context>(static_cast<int>(std::max(1u, s.cfg.threads)));
            s.ctx = s.own_ctx.get();
        }
        return;
    }
    if (!was_running) return;
    // On the caller's context: close the acceptor and every connection there.
    asio::dispatch(*s.ctx, [self] {
        boost::system::error_code ec;
        if (self->acceptor) self->acceptor->close(ec);
        std::lock_guard lk(self->conns_mu);
        for (auto& [id, sock] : self->conns) {
            sock->shutdown(tcp::socket::shutdown_both, ec);
            sock->close(ec);
        }
    });
}

unsigned short server::port() const noexcept { return impl_->d->port.load(); }

std::string server::base_url() const {
    auto& s = *impl_->d;
    std::string host = s.cfg.address;
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return "http://" + host + ":" + std::to_string(port());
}

const config& server::settings() const noexcept { return impl_->d->cfg; }

stats server::snapshot() const { return impl_->d->snapshot(); }

void server::reset_stats() {
    impl_->d->counts.reset();
    impl_->d->files.reset_polls();
    std::lock_guard lk(impl_->d->log_mu);
    impl_->d->log.clear();
}

std::vector<request_record> server::requests() const {
    std::lock_guard lk(impl_->d->log_mu);
    return impl_->d->log;
}

void server::add_fault(const fault& f) {
    fault_plan p;
    p.faults.push_back(f);
    add_faults(p);
}

void server::add_outage(const outage& o) {
    fault_plan p;
    p.outages.push_back(o);
    add_faults(p);
}

void server::add_quota(const quota& q) {
    fault_plan p;
    p.quotas.push_back(q);
    add_faults(p);
}

void server::add_faults(const fault_plan& p) { impl_->d->faults.install(p, impl_->d->clk.now()); }

void server::clear_faults() { impl_->d->faults.clear(); }

std::optional<file_info> server::file(std::string_view name) const {
    return impl_->d->files.info(name, impl_->d->clk.now());
}

std::optional<std::string> server::file_bytes(std::string_view name) const {
    return impl_->d->files.bytes(name, impl_->d->clk.now());
}

std::vector<std::string> server::file_names() const { return impl_->d->files.names(impl_->d->clk.now()); }

std::string server::add_file(std::string bytes, std::string mime_type, std::string display_name) {
    return impl_->d->files.add_file(std::move(bytes), std::move(mime_type), std::move(display_name),
                                    impl_->d->clk.now());
}

std::string server::add_file_of_size(std::uint64_t size_bytes, std::string mime_type, std::string display_name) {
    return impl_->d->files.add_file({}, std::move(mime_type), std::move(display_name), impl_->d->clk.now(),
                                    size_bytes);
}

}  // namespace resilience::sim
