// The HTTP client: URL handling, the per-origin pool, connection set-up
// (resolve, connect, TLS) and one request/response exchange, each step
// bounded by a time limit and by per-operation cancellation.
#include <resilience/http/client.hpp>
#include <resilience/events.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/file.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/grammar/charset.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/pchars.hpp>
#include <boost/url/url_view.hpp>

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace resilience::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

inline auto use_nothrow(error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

bool is_idempotent(verb v) noexcept {
    return v == verb::get || v == verb::head || v == verb::put || v == verb::delete_ || v == verb::options;
}

bool cancelled(const asio::cancellation_state& cs) noexcept {
    return cs.cancelled() != asio::cancellation_type::none;
}

// The time limit of a request's exchange on a TCP connection, with the
// steady clock (limiter::arm): one timer per connection, armed at the
// current limit and moved only when the limit comes earlier; when it fires
// before the limit (which moved later meanwhile) it sleeps on. A passed
// limit shuts the socket down (::shutdown, a system call: no Asio object is
// touched from the timer's handler), so that the step in progress ends, and
// marks the connection expired. The mutex orders the handler, which may run
// on any thread of the io_context, with the request's coroutine; nothing
// else is shared. So a request needs no strand: it runs on its caller's
// executor, even an io_context run by several threads (Beast's own stream
// timers would need one: their handler closes the socket while the
// operation's completion may run on another thread).
struct conn_watch : std::enable_shared_from_this<conn_watch> {
    explicit conn_watch(const asio::any_io_executor& ex) : timer(ex) {}
    std::mutex m;
    asio::steady_timer timer;
    time_point limit = time_point::max();  // the step's limit (max = none)
    time_point at = time_point::max();     // when the running wait ends
    std::uint64_t gen = 0;                 // of the running wait
    int fd = -1;
    bool running = false;
    bool closed = false;
    std::atomic<bool> expired{false};  // read by the request without the lock

    void arm(time_point l, int socket) {
        std::lock_guard<std::mutex> lock(m);
        limit = l;
        fd = socket;
        if (l != time_point::max() && (!running || l < at)) start(l);
    }
    // The request is over (or the step ended): no limit; a running wait is
    // cancelled, so that an idle connection keeps no work in the io_context.
    void disarm() noexcept {
        std::lock_guard<std::mutex> lock(m);
        limit = time_point::max();
        stop_wait();
    }
    void close() noexcept {
        std::lock_guard<std::mutex> lock(m);
        closed = true;
        limit = time_point::max();
        stop_wait();
    }
    bool has_expired() const noexcept { return expired.load(std::memory_order_acquire); }

private:
    struct handler {
        std::shared_ptr<conn_watch> self;
        std::uint64_t gen;
        void operator()(error_code ec) const {
            if (!ec) self->fire(gen);
        }
    };
    void start(time_point t) {
        at = t;
        running = true;
        timer.expires_at(t);
        timer.async_wait(handler{shared_from_this(), ++gen});
    }
    void stop_wait() noexcept {
        if (!running) return;
        running = false;
        ++gen;
        timer.cancel();
    }
    void fire(std::uint64_t g) {
        std::lock_guard<std::mutex> lock(m);
        if (g != gen || closed) return;
        running = false;
        if (limit == time_point::max()) return;
        if (limit <= steady::now()) {
            expired.store(true, std::memory_order_release);
            if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
            return;
        }
        start(limit);  // the limit moved later: sleep on
    }
};

// One connection: a TCP stream, optionally wrapped in TLS, or a stream from
// client_options::connect; and its read buffer.
struct connection {
    explicit connection(const asio::any_io_executor& ex) : plain(ex) {}
    ~connection() {
        if (watch) watch->close();
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    beast::tcp_stream plain;                                // used when tls and custom are null
    std::unique_ptr<ssl::stream<beast::tcp_stream>> tls;    // owns its own tcp_stream
    any_stream custom;                                      // from the connector (then plain is unused)
    beast::flat_buffer buffer;
    time_point idle_since{};  // on the client's clock
    std::shared_ptr<conn_watch> watch;  // the exchange's limit (steady clock, TCP), made on first use

    beast::tcp_stream& lowest() noexcept { return tls ? tls->next_layer() : plain; }
    void close() noexcept {
        if (watch) watch->close();  // before the socket: the watch never shuts a reused descriptor
        if (custom) {
            custom.close();
            return;
        }
        error_code ec;
        lowest().socket().close(ec);
    }
    // A pooled connection the peer has closed (or sent unsolicited bytes on)
    // is readable; a healthy idle one is not.
    bool looks_closed() noexcept {
        if (custom) return custom.looks_closed();
        auto& s = lowest().socket();
        if (!s.is_open()) return true;
        char c;
        ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0) return true;
        if (n > 0) return true;
        return !(errno == EAGAIN || errno == EWOULDBLOCK);
    }
};

using conn_ptr = std::unique_ptr<connection>;

struct waiter {
    explicit waiter(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    conn_ptr conn;  // a pooled connection handed over, or null (= connect a new one)
    bool granted = false;
};

struct origin_pool {
    std::size_t active = 0;       // slots held (connecting or sending)
    std::vector<conn_ptr> idle;   // most recently used at the back
    std::deque<waiter*> waiters;
};

// Everything we need from a URL: views into the caller's string (which the
// request coroutine owns), so that the fast path allocates nothing here.
struct target_info {
    bool tls = false;
    bool host_is_ip = false;
    std::uint16_t port = 0;
    std::string_view host;         // for resolve and TLS (IPv6 without brackets)
    std::string host_decoded;      // set only when the host is percent-encoded
    std::string_view origin_host;  // encoded host (IPv6 in brackets)
    std::string_view host_header;  // host[:port]
    std::string_view target;       // path?query
    std::string target_fixed;      // set only when the target lacks its leading '/'
    std::string_view path;         // for messages: never the query

    std::string host_string() const { return host_decoded.empty() ? std::string(host) : host_decoded; }
    std::string_view target_view() const { return target_fixed.empty() ? target : std::string_view(target_fixed); }
    /// scheme://host:port/path, for messages (no query, no user info).
    std::string safe_name() const {
        std::string s = tls ? "https://" : "http://";
        s.append(origin_host).append(":").append(std::to_string(port)).append(path);
        return s;
    }
    void origin_key(std::string& out) const {
        out.assign(tls ? "https://" : "http://").append(origin_host).push_back(':');
        char buf[8];
        auto r = std::to_chars(buf, buf + sizeof buf, port);
        out.append(buf, r.ptr);
    }
};

// The last origin (scheme://authority, as written) a request of the client
// went to, parsed, with its pool: the next request to it (the common case,
// one API host) parses only its path and query (origin-form, the same
// grammar as an absolute URI's path-abempty and query when the path starts
// with '/') and skips the pool lookup. Lives on the client's executor.
struct origin_memo {
    std::string prefix;  // empty = none
    bool tls = false;
    bool host_is_ip = false;
    std::uint16_t port = 0;
    std::size_t host_off = 0, host_len = 0;  // into prefix (unless host_decoded)
    std::size_t origin_host_off = 0, origin_host_len = 0;
    std::size_t host_header_off = 0, host_header_len = 0;
    std::string host_decoded;
    origin_pool* pool = nullptr;  // set by the first request through the memo
};

result<target_info> parse_target(std::string_view url_text);

// The path of an origin-form target ("/path?query"), if it is one. A target
// of path characters and '/' only (no query, fragment or percent sign: the
// common case) is one whose path is all of it, found without the grammar's
// parse.
std::optional<std::string_view> origin_form_path(std::string_view target) {
    static constexpr auto path_chars = boost::urls::pchars + '/';
    const char* end = target.data() + target.size();
    if (target.starts_with('/') && boost::urls::grammar::find_if_not(target.data(), end, path_chars) == end)
        return target;
    if (auto o = boost::urls::parse_origin_form(target)) return o->encoded_path();
    return std::nullopt;
}

// parse_target(url_text), through the memo: a URL starting with the memo's
// prefix and then '/' reuses its scheme and authority; any other URL is
// parsed whole and, when it parses and its target starts with '/', becomes
// the memo. `hit`: the memo's origin (and so memo.pool, when set) applies.
result<target_info> parse_target(std::string_view url_text, origin_memo& memo, bool& hit) {
    const std::size_t n = memo.prefix.size();
    hit = false;
    if (n > 0 && url_text.size() > n && url_text[n] == '/' && url_text.starts_with(memo.prefix)) {
        const std::string_view rest = url_text.substr(n);
        if (auto path = origin_form_path(rest)) {
            target_info t;
            t.tls = memo.tls;
            t.host_is_ip = memo.host_is_ip;
            t.port = memo.port;
            t.host = url_text.substr(memo.host_off, memo.host_len);
            t.host_decoded = memo.host_decoded;
            t.origin_host = url_text.substr(memo.origin_host_off, memo.origin_host_len);
            t.host_header = url_text.substr(memo.host_header_off, memo.host_header_len);
            t.target = rest;
            t.path = *path;
            hit = true;
            return t;
        }
    }
    auto r = parse_target(url_text);
    if (!r || !r->target_fixed.empty() || r->target.empty()) return r;
    const std::size_t prefix_len = static_cast<std::size_t>(r->target.data() - url_text.data());
    const auto off = [&](std::string_view v) { return static_cast<std::size_t>(v.data() - url_text.data()); };
    // Views into the URL's scheme://authority only (host_decoded aside).
    if (prefix_len > url_text.size() || off(r->host) + r->host.size() > prefix_len ||
        off(r->origin_host) + r->origin_host.size() > prefix_len ||
        off(r->host_header) + r->host_header.size() > prefix_len)
        return r;
    memo.prefix.assign(url_text.substr(0, prefix_len));
    memo.tls = r->tls;
    memo.host_is_ip = r->host_is_ip;
    memo.port = r->port;
    memo.host_off = off(r->host);
    memo.host_len = r->host.size();
    memo.origin_host_off = off(r->origin_host);
    memo.origin_host_len = r->origin_host.size();
    memo.host_header_off = off(r->host_header);
    memo.host_header_len = r->host_header.size();
    memo.host_decoded = r->host_decoded;
    memo.pool = nullptr;
    hit = true;
    return r;
}

result<target_info> parse_target(std::string_view url_text) {
    auto parsed = boost::urls::parse_absolute_uri(url_text);
    if (!parsed) return failure(make_error_code(resilience::errc::invalid_argument), "invalid URL (not an absolute http(s) URL)");
    boost::urls::url_view u = *parsed;
    target_info t;
    auto sid = u.scheme_id();
    if (sid == boost::urls::scheme::https) t.tls = true;
    else if (sid != boost::urls::scheme::http)
        return failure(make_error_code(resilience::errc::invalid_argument), "unsupported URL scheme (only http and https)");
    if (u.host_type() == boost::urls::host_type::none || u.encoded_host().empty())
        return failure(make_error_code(resilience::errc::invalid_argument), "URL has no host");
    if (u.host_type() == boost::urls::host_type::ipvfuture)
        return failure(make_error_code(resilience::errc::invalid_argument), "unsupported host in URL");
    t.host_is_ip = u.host_type() == boost::urls::host_type::ipv4 || u.host_type() == boost::urls::host_type::ipv6;
    if (t.host_is_ip) {
        t.host = u.encoded_host_address();
    } else {
        t.host = u.encoded_host();
        if (t.host.find('%') != std::string_view::npos) t.host_decoded = u.host();
    }
    if (t.host.empty() || (!t.host_is_ip && t.host_string().empty()))
        return failure(make_error_code(resilience::errc::invalid_argument), "URL has no host");
    if (u.has_port()) {
        if (u.port().empty() || u.port_number() == 0)
            return failure(make_error_code(resilience::errc::invalid_argument), "invalid port in URL");
        t.port = u.port_number();
    } else {
        t.port = t.tls ? 443 : 80;
    }
    t.origin_host = u.encoded_host();
    t.host_header = u.encoded_host_and_port();
    t.target = u.encoded_target();
    if (t.target.empty() || t.target.front() != '/') t.target_fixed = "/" + std::string(t.target);
    t.path = u.encoded_path();
    return t;
}

// Adds `d` to `t`, saturating at time_point::max().
time_point add_sat(time_point t, duration d) noexcept {
    if (d.count() <= 0) return t;
    if (t >= time_point::max() - d) return time_point::max();
    return t + d;
}

// Which limit a step runs under: names the timeout in errors and picks the code.
enum class limit_kind : unsigned char { none, deadline, connect, io, header, progress };

// The earliest of several limits, and which one it is.
struct step_limit {
    time_point at = time_point::max();
    limit_kind kind = limit_kind::none;
    void consider(time_point t, limit_kind k) noexcept {
        if (t < at) {
            at = t;
            kind = k;
        }
    }
};

// What the limiter does when a limit expires in clock mode: closes the
// connection, or cancels a wait.
using expire_fn = void (*)(void*) noexcept;

// State shared by one request and its watchdog coroutine (clock mode only).
struct watch_state {
    clock* clk = nullptr;
    time_point limit = time_point::max();
    time_point sleeping_until = time_point::max();
    limit_kind kind = limit_kind::none;
    bool expired = false;
    bool done = false;      // the request is over: touch nothing
    bool running = false;   // the current watchdog sleeps
    expire_fn on_expire = nullptr;
    void* target = nullptr;
    std::shared_ptr<asio::cancellation_signal> current;  // of the current watchdog
};

// Sleeps on the client's clock until the request's current limit; when the
// limit moved later meanwhile, sleeps again; when it has passed, marks the
// request expired and ends the step in progress. A newer watchdog (an
// earlier limit) or the request's end cancels it.
asio::awaitable<void> watch_loop(std::shared_ptr<watch_state> st, std::shared_ptr<asio::cancellation_signal> me) {
    for (;;) {
        if (st->done || st->current != me) co_return;
        const time_point l = st->limit;
        if (l == time_point::max()) break;
        st->sleeping_until = l;
        error_code ec = co_await st->clk->sleep_until(l);
        if (ec || st->done || st->current != me) co_return;
        if (st->limit <= st->clk->now()) {
            st->expired = true;
            if (st->on_expire) st->on_expire(st->target);
            break;
        }
    }
    st->running = false;
}

}  // namespace

result<void> client_options::validate() const {
    auto bad = [](std::string msg) { return failure(make_error_code(resilience::errc::invalid_config), "http: " + std::move(msg)); };
    constexpr duration day = std::chrono::hours(24);
    const std::pair<const char*, duration> durations[] = {
        {"pool_idle_timeout", pool_idle_timeout}, {"connect_timeout", connect_timeout},
        {"io_timeout", io_timeout},               {"request_timeout", request_timeout},
        {"header_timeout", header_timeout},       {"progress_window", progress_window},
    };
    for (const auto& [name, d] : durations)
        if (d < duration::zero() || d > day)
            return bad(std::string(name) + " = " +
                       std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) +
                       " ms: must be between 0 and 86400000 ms");
    if (max_connections_per_origin == 0) return bad("max_connections_per_origin must be at least 1");
    if (max_header_bytes == 0) return bad("max_header_bytes must be at least 1");
    if (max_body_bytes == 0) return bad("max_body_bytes must be at least 1");
    for (char ch : user_agent)
        if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) == 0x7f)
            return bad("user_agent contains a control character");
    return {};
}

struct client::impl {
    impl(asio::any_io_executor e, client_options o)
        : ex(internal(e, o.thread_safe)), same_ex(normalize(ex)), user_ex(std::move(e)), opts(std::move(o)) {
        if (!opts.time) opts.time = &resilience::steady_clock();
        native_time = opts.time == &resilience::steady_clock();
        native_timers = native_time && !opts.connect;
        if (auto v = opts.validate(); !v) throw error(v.error());
        // With extra CAs, build the TLS context now so that a bad CA is reported
        // by the constructor; otherwise on first use (it is costly: a plain
        // HTTP client never pays for it).
        if (!opts.extra_ca_pem.empty() || !opts.extra_ca_file.empty()) tls_context();
    }

    ssl::context& tls_context() {
        if (tls_ctx) return *tls_ctx;
        ssl::context ctx(ssl::context::tls_client);
        error_code ec;
        ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                        ec);
        if (!opts.insecure_skip_tls_verify) {
            ctx.set_default_verify_paths(ec);  // a missing system store is not fatal: extra CAs may follow
            if (!opts.extra_ca_pem.empty()) {
                ctx.add_certificate_authority(asio::buffer(opts.extra_ca_pem), ec);
                if (ec)
                    throw error(failure(make_error_code(resilience::errc::invalid_config),
                                        "http: extra_ca_pem is not a usable PEM certificate: " + ec.message()));
            }
            if (!opts.extra_ca_file.empty()) {
                ctx.load_verify_file(opts.extra_ca_file, ec);
                if (ec)
                    throw error(failure(make_error_code(resilience::errc::invalid_config),
                                        "http: extra_ca_file could not be loaded: " + ec.message()));
            }
            ctx.set_verify_mode(ssl::verify_peer);
        } else {
            ctx.set_verify_mode(ssl::verify_none);
        }
        tls_ctx.emplace(std::move(ctx));
        return *tls_ctx;
    }

    ~impl() { close_idle(); }

    void close_idle() noexcept {
        std::lock_guard<std::mutex> lock(mu);
        for (auto& [k, o] : origins) {
            for (auto& c : o->idle) c->close();
            o->idle.clear();
        }
    }

    // Under mu.
    origin_pool& find_origin(const std::string& key) {
        auto it = origins.find(key);
        if (it == origins.end()) it = origins.emplace(key, std::make_unique<origin_pool>()).first;
        return *it->second;
    }

    // Hands a freed slot (with a connection to reuse, or none) to the first
    // waiter; with no waiter, pools the connection or frees the slot.
    void release(origin_pool& o, conn_ptr c) noexcept {
        std::lock_guard<std::mutex> lock(mu);
        if (!o.waiters.empty()) {
            waiter* w = o.waiters.front();
            o.waiters.pop_front();
            w->granted = true;
            w->conn = std::move(c);
            w->timer.cancel();
            return;
        }
        --o.active;
        if (c) {
            c->idle_since = now();
            o.idle.push_back(std::move(c));
        }
    }

    asio::awaitable<result<response>> run(request req, request_options ro);

    time_point now() const noexcept { return native_time ? steady::now() : opts.time->now(); }

    // Executors that differ only in work tracking run handlers alike; the
    // coroutine's executor usually tracks work while ctx.get_executor() does not.
    static asio::any_io_executor normalize(const asio::any_io_executor& e) {
        return asio::prefer(e, asio::execution::outstanding_work.untracked);
    }

    // The executor the client's state lives on: a strand of `e` when
    // thread_safe (not a second one when `e` is a strand already).
    static asio::any_io_executor internal(const asio::any_io_executor& e, bool thread_safe) {
        if (!thread_safe || e.target<asio::strand<asio::any_io_executor>>() ||
            e.target<asio::strand<asio::io_context::executor_type>>())
            return e;
        // An io_context's executor (the usual case): a strand of its concrete
        // type fits in any_io_executor's small buffer, where a strand of an
        // any_io_executor is a shared heap object that every copy and every
        // handler pays an indirection and a reference count for (measured by
        // bench/bench_http). Work tracking is kept as given.
        using tracked_ex = decltype(asio::prefer(std::declval<asio::io_context::executor_type>(),
                                                 asio::execution::outstanding_work.tracked));
        if (auto* io = e.target<asio::io_context::executor_type>()) return asio::make_strand(*io);
        if (auto* io = e.target<tracked_ex>()) return asio::make_strand(*io);
        return asio::make_strand(e);
    }

    asio::any_io_executor ex;
    asio::any_io_executor same_ex;         // normalize(ex)
    asio::any_io_executor user_ex;         // as given to the constructor
    // ex and same_ex never change after construction: send() reads them from any thread.
    client_options opts;
    // The steady clock: now() reads it directly, and over TCP the limits are
    // Beast's own timers (native_timers: same clock, no extra coroutine).
    // Any other clock: a watchdog on clock::sleep_until.
    bool native_time = true;
    // Limits on Beast's stream timers (the steady clock over the TCP path);
    // otherwise (another clock, or a connector's streams) on the watchdog.
    bool native_timers = true;
    std::optional<ssl::context> tls_ctx;   // built on first https use
    // Requests run on their callers' executors (even an io_context run by
    // several threads): `mu` guards what they share (the memo, the origins
    // and their pools, waiters included); a connection checked out of a
    // pool is its request's alone. Connections are opened on `ex`
    // (tls_ctx too).
    std::mutex mu;
    std::mutex hook_mu;                    // serializes opts.on_request
    std::string key_scratch;               // origin key of the current lookup (no allocation per request)
    origin_memo memo;                      // the last origin, parsed, with its pool
    std::unordered_map<std::string, std::unique_ptr<origin_pool>> origins;
    std::atomic<std::uint64_t> opened{0}, reused{0}, stale_resends{0};
};

namespace {

// Holds one pool slot of an origin; releases it on every path.
struct slot_guard {
    client::impl* pool;
    origin_pool* o;
    conn_ptr conn;
    bool keep = false;  // return the connection to the pool
    slot_guard(client::impl* p, origin_pool* org) : pool(p), o(org) {}
    slot_guard(const slot_guard&) = delete;
    slot_guard& operator=(const slot_guard&) = delete;
    ~slot_guard() {
        if (!keep && conn) {
            conn->close();
            conn.reset();
        }
        pool->release(*o, keep ? std::move(conn) : conn_ptr());
    }
};

// The time limits of one request, on the client's clock. With the steady
// clock over TCP, a step's limit is set on Beast's stream timer (or on the
// wait's own timer), as a plain Beast client does. With any other clock, or
// over a connector's streams (which have no such timer), one watchdog
// coroutine per request sleeps on the clock until the current limit and ends
// the step in progress when it passes (it closes the connection or cancels
// the wait), so that virtual time covers a request down to the socket.
class limiter {
public:
    explicit limiter(client::impl& self) : self_(self) {}
    limiter(const limiter&) = delete;
    limiter& operator=(const limiter&) = delete;
    ~limiter() {
        if (conn_armed_) conn_->disarm();
        if (!st_) return;
        st_->done = true;
        st_->on_expire = nullptr;
        st_->target = nullptr;
        if (st_->running && st_->current) st_->current->emit(asio::cancellation_type::terminal);
    }

    time_point now() const noexcept { return self_.now(); }
    limit_kind kind() const noexcept { return kind_; }
    /// The step in progress was ended by its limit: by the watchdog (clock
    /// mode) or by the connection's watch (an exchange with the steady clock).
    bool expired() const noexcept { return (st_ && st_->expired) || (conn_ && conn_->has_expired()); }

    /// A step of an exchange on an open connection (write, read). With the
    /// steady clock over TCP: the connection's watch (conn_watch).
    void arm(connection& c, const step_limit& l) {
        kind_ = l.kind;
        if (self_.native_timers) {
            if (!c.watch) c.watch = std::make_shared<conn_watch>(c.plain.get_executor());
            if (conn_ != c.watch) conn_ = c.watch;
            conn_->arm(l.at, c.lowest().socket().native_handle());
            conn_armed_ = true;
            return;
        }
        watch(l, [](void* p) noexcept { static_cast<connection*>(p)->close(); }, &c);
    }
    /// A step of opening a connection (connect, TLS handshake), which runs
    /// on the client's executor (client::impl::open): with the steady clock,
    /// Beast's own stream timer.
    void arm_open(connection& c, const step_limit& l) {
        kind_ = l.kind;
        if (self_.native_timers) {
            c.lowest().expires_at(l.at);
            return;
        }
        watch(l, [](void* p) noexcept { static_cast<connection*>(p)->close(); }, &c);
    }
    /// A wait on `t` (a pool slot, a resolve) that something else cancels when it is over.
    void arm(asio::steady_timer& t, const step_limit& l) {
        kind_ = l.kind;
        if (self_.native_timers) {
            t.expires_at(l.at);
            return;
        }
        t.expires_at(asio::steady_timer::time_point::max());
        watch(l, [](void* p) noexcept { static_cast<asio::steady_timer*>(p)->cancel(); }, &t);
    }
    /// The armed connection or wait is gone: an expiry now touches nothing.
    void disarm() noexcept {
        if (conn_armed_) {
            conn_->disarm();  // conn_ is kept: expired() still reads it
            conn_armed_ = false;
        }
        if (!st_) return;
        st_->on_expire = nullptr;
        st_->target = nullptr;
    }

private:
    void watch(const step_limit& l, expire_fn fn, void* target) {
        if (!st_) {
            st_ = std::make_shared<watch_state>();
            st_->clk = self_.opts.time;
        }
        st_->limit = l.at;
        st_->kind = l.kind;
        st_->on_expire = fn;
        st_->target = target;
        if (l.at == time_point::max()) return;                          // a sleeping watchdog parks when it wakes
        if (st_->running && l.at >= st_->sleeping_until) return;       // it wakes first and sleeps on
        if (st_->running) st_->current->emit(asio::cancellation_type::terminal);
        auto sig = std::make_shared<asio::cancellation_signal>();
        st_->current = sig;
        st_->running = true;
        st_->sleeping_until = l.at;
        auto on_done = [sig](std::exception_ptr) {};
        asio::co_spawn(self_.ex, watch_loop(st_, sig), asio::bind_cancellation_slot(sig->slot(), std::move(on_done)));
    }

    client::impl& self_;
    std::shared_ptr<watch_state> st_;
    std::shared_ptr<conn_watch> conn_;  // the last armed connection's watch
    bool conn_armed_ = false;
    limit_kind kind_ = limit_kind::none;
};

// The code of an expired limit: the request's deadline (request_options::deadline or
// request_timeout) has one code wherever it expires; the step limits another.
error_code timeout_code(limit_kind k) noexcept {
    if (k == limit_kind::deadline) return make_error_code(resilience::errc::attempt_timeout);
    return asio::error::timed_out;
}

const char* timeout_reason(limit_kind k) noexcept {
    switch (k) {
    case limit_kind::deadline: return "the request's deadline passed";
    case limit_kind::connect: return "connect_timeout passed";
    case limit_kind::io: return "no progress within io_timeout";
    case limit_kind::header: return "response header not complete within header_timeout";
    case limit_kind::progress: return "fewer than min_progress_bytes within progress_window";
    case limit_kind::none: break;
    }
    return "timed out";
}

failure fail(error_code ec, const std::string& what, const target_info& t) {
    return failure(ec, "HTTP " + what + " " + t.safe_name() + ": " + ec.message());
}

failure fail_timeout(error_code ec, limit_kind k, const std::string& what, const target_info& t) {
    return failure(ec, "HTTP " + what + " " + t.safe_name() + ": " + ec.message() + " (" + timeout_reason(k) + ")");
}

// A timer-driven wait for a resolve, so that both the time limit and
// per-operation cancellation end it at once (a resolve in progress runs in
// a background thread and cannot itself be interrupted).
asio::awaitable<error_code> resolve(const asio::any_io_executor& ex, const target_info& t, limiter& lim,
                                    const step_limit& limit, tcp::resolver::results_type& out) {
    struct state {
        explicit state(const asio::any_io_executor& e) : r(e), timer(e) {}
        tcp::resolver r;
        asio::steady_timer timer;
        error_code ec;
        tcp::resolver::results_type res;
        bool done = false;
    };
    auto st = std::make_shared<state>(ex);
    lim.arm(st->timer, limit);
    auto on_resolved = [st](error_code ec, tcp::resolver::results_type res) {
        st->ec = ec;
        st->res = std::move(res);
        st->done = true;
        st->timer.cancel();
    };
    st->r.async_resolve(t.host_string(), std::to_string(t.port), std::move(on_resolved));
    error_code wec;
    co_await st->timer.async_wait(use_nothrow(wec));
    lim.disarm();
    if (st->done) {
        out = std::move(st->res);
        co_return st->ec;
    }
    st->r.cancel();
    if (lim.expired() || wec != asio::error::operation_aborted) co_return timeout_code(limit.kind);
    co_return asio::error::operation_aborted;
}

bool is_parse_error(const error_code& ec) noexcept {
    return ec.category() == make_error_code(bhttp::error::need_more).category() && ec != bhttp::error::need_more &&
           ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
}

// Maps a Beast/Asio error of an I/O step to what the caller sees: cancellation
// first, then an expired limit (by its kind), then our size limits, then a
// response that is not HTTP/1.x.
error_code map_io_error(error_code ec, const asio::cancellation_state& cs, const limiter& lim) {
    if (cancelled(cs)) return asio::error::operation_aborted;
    if (ec == beast::error::timeout || lim.expired()) return timeout_code(lim.kind());
    if (ec == bhttp::error::body_limit || ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow)
        return make_error_code(errc::response_too_large);
    if (is_parse_error(ec)) return make_error_code(errc::malformed_response);
    return ec;
}

// The limit of a step: the request's deadline, and now + d (when d > 0) of kind k.
step_limit step(time_point deadline, time_point now, duration d, limit_kind k) noexcept {
    step_limit l;
    l.consider(deadline, limit_kind::deadline);
    if (d.count() > 0) l.consider(add_sat(now, d), k);
    return l;
}

// Opens a connection through client_options::connect. Like resolve(): a
// timer-driven wait that the connector's completion, the connect limit or
// per-operation cancellation ends; a connector still at work is then told to
// stop (terminal cancellation on its handler's slot) and its late result is
// dropped.
asio::awaitable<result<conn_ptr>> open_custom(client::impl& self, const target_info& t, const step_limit& limit,
                                              limiter& lim, const asio::cancellation_state& cs) {
    struct state {
        explicit state(const asio::any_io_executor& e) : timer(e) {}
        asio::steady_timer timer;
        asio::cancellation_signal stop;
        error_code ec;
        any_stream stream;
        bool done = false;
    };
    auto st = std::make_shared<state>(self.ex);
    origin where;
    where.tls = t.tls;
    where.host = t.host_string();
    where.port = t.port;
    // The connector may complete from any thread, even from within its call:
    // the result is posted to the client's executor.
    auto on_connected = [st, ex = self.ex](error_code ec, any_stream s) {
        asio::post(ex, [st, ec, s = std::move(s)]() mutable {
            if (st->done) return;
            st->ec = ec;
            st->stream = std::move(s);
            st->done = true;
            st->timer.cancel();
        });
    };
    lim.arm(st->timer, limit);
    self.opts.connect(where, connect_handler(asio::bind_cancellation_slot(st->stop.slot(), std::move(on_connected))));
    error_code wec;
    if (!st->done) co_await st->timer.async_wait(use_nothrow(wec));
    lim.disarm();
    if (!st->done) {
        st->done = true;  // a late completion is dropped (its stream closes as it is destroyed)
        st->stop.emit(asio::cancellation_type::terminal);
        if (cancelled(cs) || (wec == asio::error::operation_aborted && !lim.expired()))
            co_return fail(asio::error::operation_aborted, "connect", t);
        co_return fail_timeout(timeout_code(limit.kind), limit.kind, "connect", t);
    }
    error_code ec = st->ec;
    if (!ec && cancelled(cs)) ec = asio::error::operation_aborted;
    if (!ec && !st->stream) ec = make_error_code(resilience::errc::invalid_argument);  // the connector's bug, not the network's
    if (ec) {
        st->stream.close();
        co_return fail(ec, "connect", t);
    }
    auto c = std::make_unique<connection>(self.ex);
    c->custom = std::move(st->stream);
    self.opened.fetch_add(1, std::memory_order_relaxed);
    co_return c;
}

// Opens a connection (resolve, connect, TLS handshake), or asks the connector.
asio::awaitable<result<conn_ptr>> open_connection(client::impl& self, const target_info& t, time_point deadline,
                                                  limiter& lim, const asio::cancellation_state& cs) {
    const step_limit limit = step(deadline, lim.now(), self.opts.connect_timeout, limit_kind::connect);
    if (self.opts.connect) {
        auto r = co_await open_custom(self, t, limit, lim, cs);
        co_return r;
    }
    tcp::resolver::results_type endpoints;
    if (t.host_is_ip) {
        error_code ec;
        auto addr = asio::ip::make_address(t.host, ec);
        if (ec) co_return fail(make_error_code(resilience::errc::invalid_argument), "bad address for", t);
        endpoints = tcp::resolver::results_type::create(tcp::endpoint(addr, t.port), t.host_string(),
                                                        std::to_string(t.port));
    } else {
        error_code ec = co_await resolve(self.ex, t, lim, limit, endpoints);
        if (!ec && cancelled(cs)) ec = asio::error::operation_aborted;
        if (ec == asio::error::timed_out || ec == resilience::errc::attempt_timeout)
            co_return fail_timeout(ec, limit.kind, "resolve", t);
        if (ec) co_return fail(ec, "resolve", t);
    }
    // On the executor as given (not the strand): the exchanges run on their
    // callers' executors (see conn_watch).
    auto c = std::make_unique<connection>(self.user_ex);
    if (t.tls) c->tls = std::make_unique<ssl::stream<beast::tcp_stream>>(self.user_ex, self.tls_context());
    auto& low = c->lowest();
    lim.arm_open(*c, limit);
    error_code ec;
    co_await low.async_connect(endpoints, use_nothrow(ec));
    if (!ec && (cancelled(cs) || lim.expired())) ec = asio::error::operation_aborted;
    if (ec) {
        lim.disarm();
        ec = map_io_error(ec, cs, lim);
        if (ec == asio::error::timed_out || ec == resilience::errc::attempt_timeout)
            co_return fail_timeout(ec, limit.kind, "connect", t);
        co_return fail(ec, "connect", t);
    }
    low.socket().set_option(tcp::no_delay(true), ec);
    if (!t.tls) low.socket().non_blocking(true, ec);  // see the synchronous write fast path
    if (t.tls) {
        auto* h = c->tls->native_handle();
        const std::string host = t.host_string();
        if (!t.host_is_ip && !SSL_set_tlsext_host_name(h, host.c_str())) {
            lim.disarm();
            co_return fail(error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()), "TLS SNI", t);
        }
        if (!self.opts.insecure_skip_tls_verify) c->tls->set_verify_callback(ssl::host_name_verification(host));
        co_await c->tls->async_handshake(ssl::stream_base::client, use_nothrow(ec));
        if (!ec && (cancelled(cs) || lim.expired())) ec = asio::error::operation_aborted;
        if (ec) {
            lim.disarm();
            ec = map_io_error(ec, cs, lim);
            if (ec == asio::error::timed_out || ec == resilience::errc::attempt_timeout)
                co_return fail_timeout(ec, limit.kind, "TLS handshake with", t);
            co_return fail(ec, "TLS handshake with", t);
        }
    }
    // The exchanges on it are bounded by its watch (limiter::arm), not by
    // Beast's stream timer.
    if (self.native_timers) low.expires_never();
    self.opened.fetch_add(1, std::memory_order_relaxed);
    co_return c;
}

// Not an aggregate, and no owning members: g++ 12 coroutine bug (PREAMBLE).
struct exchange_result {
    exchange_result() = default;
    error_code ec;
    bool response_started = false;  // a byte of the response arrived
    bool keep_alive = false;
    limit_kind timeout = limit_kind::none;  // the limit that expired, if ec is a timeout
    const char* what = "";          // the failing step, for messages
    error_code cause;               // the parser's own code behind malformed_response (e.g. "bad status")
};

// The minimum progress rule (client_options::progress_window and
// min_progress_bytes) for one direction of a transfer: each window must carry
// at least the minimum, or the transfer fails at the window's end.
struct progress_rule {
    progress_rule(const client_options& o, time_point now) noexcept
        : window(o.progress_window), min_bytes(o.min_progress_bytes), window_end(add_sat(now, o.progress_window)) {}
    duration window;
    std::uint64_t min_bytes;
    time_point window_end;
    std::uint64_t in_window = 0;

    bool on() const noexcept { return window.count() > 0 && min_bytes > 0; }
    // Counts `n` bytes that arrived by `now`; false if a window ended short.
    bool add(std::uint64_t n, time_point now) noexcept {
        in_window += n;
        if (!on() || now < window_end) return true;
        if (in_window < min_bytes) return false;
        in_window = 0;
        window_end = add_sat(now, window);
        return true;
    }
    // Adds the window's end to a step's limit while the window is short.
    void limit(step_limit& l) const noexcept {
        if (on() && in_window < min_bytes) l.consider(window_end, limit_kind::progress);
    }
};

template <class Stream, class Message>
asio::awaitable<exchange_result> write_and_read(client::impl& self, connection& c, Stream& s, Message& msg,
                                                const request& req, response& out, time_point deadline,
                                                limiter& lim, const asio::cancellation_state& cs) {
    exchange_result r;
    const auto io = self.opts.io_timeout;
    error_code ec;
    // Ends the exchange with the error of an I/O step.
    auto failed = [&](const char* what) {
        r.ec = map_io_error(ec, cs, lim);
        if (r.ec == asio::error::timed_out || r.ec == resilience::errc::attempt_timeout) r.timeout = lim.kind();
        if (r.ec == errc::malformed_response) r.cause = ec;
        r.what = what;
    };

    // Write.
    if constexpr (std::is_same_v<typename Message::body_type, bhttp::buffer_body>) {
        // Stream a file range in chunks; the file is re-read if the request is re-sent.
        const file_range& fr = *req.file;
        beast::file f;
        f.open(fr.path.c_str(), beast::file_mode::read, ec);
        if (!ec) f.seek(fr.offset, ec);
        if (ec) {
            r.ec = make_error_code(resilience::errc::invalid_argument);
            r.what = "reading the body file for";
            co_return r;
        }
        bhttp::request_serializer<bhttp::buffer_body> sr(msg);
        std::vector<char> chunk(std::size_t(256) * 1024);
        std::uint64_t remaining = fr.length;
        for (;;) {
            // Each round hands the serializer the next chunk (the serializer
            // does not clear a consumed buffer_body chunk itself).
            if (remaining > 0) {
                std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(remaining, chunk.size()));
                std::size_t n = f.read(chunk.data(), want, ec);
                if (ec || n == 0) {
                    r.ec = make_error_code(resilience::errc::invalid_argument);
                    r.what = "reading the body file (shorter than the range?) for";
                    co_return r;
                }
                remaining -= n;
                msg.body().data = chunk.data();
                msg.body().size = n;
                msg.body().more = remaining > 0;
            } else {
                msg.body().data = nullptr;
                msg.body().size = 0;
                msg.body().more = false;
            }
            lim.arm(c, step(deadline, lim.now(), io, limit_kind::io));
            co_await bhttp::async_write(s, sr, use_nothrow(ec));
            if (ec == bhttp::error::need_buffer) ec = {};
            if (!ec && (cancelled(cs) || lim.expired())) ec = asio::error::operation_aborted;
            if (ec) {
                failed("write to");
                co_return r;
            }
            if (sr.is_done()) break;
        }
    } else {
        bhttp::request_serializer<typename Message::body_type> sr(msg);
        if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
            // Fast path for plain TCP: the socket is in non-blocking mode, so a
            // synchronous write either sends the (usually small) request at once
            // or stops with would_block; the asynchronous loop below (with its
            // timer) then finishes the job.
            while (!sr.is_done()) {
                bhttp::write_some(s, sr, ec);
                if (ec) break;
            }
            if (ec == asio::error::would_block || ec == asio::error::try_again) ec = {};
            if (ec) {
                failed("write to");
                co_return r;
            }
        }
        if (!sr.is_done()) {
            progress_rule pr(self.opts, lim.now());
            while (!sr.is_done()) {
                step_limit l = step(deadline, lim.now(), io, limit_kind::io);
                pr.limit(l);
                lim.arm(c, l);
                std::size_t n = co_await bhttp::async_write_some(s, sr, use_nothrow(ec));
                if (!ec && (cancelled(cs) || lim.expired())) ec = asio::error::operation_aborted;
                if (ec) {
                    failed("write to");
                    co_return r;
                }
                if (!pr.add(n, lim.now())) {
                    ec = asio::error::timed_out;
                    r.ec = ec;
                    r.timeout = limit_kind::progress;
                    r.what = "write to";
                    co_return r;
                }
            }
        }
    }

    // Read: interim 1xx responses (100 Continue, 103 Early Hints, ...) are
    // skipped; the header, 1xx included, must be complete within
    // header_timeout of the request's end; the body then obeys the minimum
    // progress rule.
    const time_point header_deadline = add_sat(lim.now(), self.opts.header_timeout);
    std::optional<bhttp::response_parser<bhttp::string_body>> p;
    if (c.buffer.size() > 0) r.response_started = true;
    for (;;) {
        p.emplace();
        p->header_limit(self.opts.max_header_bytes);
        p->body_limit(self.opts.max_body_bytes);
        if (req.method == verb::head) p->skip(true);
        std::optional<progress_rule> pr;
        while (!p->is_done()) {
            // Ties go to the deadline (one code), then to the header and progress rules.
            const time_point now = lim.now();
            step_limit l;
            l.consider(deadline, limit_kind::deadline);
            if (!p->is_header_done()) {
                l.consider(header_deadline, limit_kind::header);
            } else {
                if (!pr) pr.emplace(self.opts, now);
                pr->limit(l);
            }
            if (io.count() > 0) l.consider(add_sat(now, io), limit_kind::io);
            lim.arm(c, l);
            const std::size_t before = c.buffer.size();
            std::size_t n = co_await bhttp::async_read_some(s, c.buffer, *p, use_nothrow(ec));
            if (n > 0 || c.buffer.size() > 0) r.response_started = true;
            if (!ec && (cancelled(cs) || lim.expired())) ec = asio::error::operation_aborted;
            if (ec) {
                failed("read from");
                co_return r;
            }
            if (pr && !pr->add(n + c.buffer.size() - before, lim.now())) {
                r.ec = asio::error::timed_out;
                r.timeout = limit_kind::progress;
                r.what = "read from";
                co_return r;
            }
        }
        const unsigned status = p->get().result_int();
        if (status < 100 || status >= 200 || status == 101) break;
    }
    lim.disarm();
    auto& m = p->get();
    out.status = static_cast<int>(m.result_int());
    r.keep_alive = m.keep_alive() && c.buffer.size() == 0 && out.status != 101;
    out.body = std::move(m.body());
    out.headers = std::move(static_cast<fields&>(m.base()));
    co_return r;
}

// Copies the caller's headers and adds what HTTP/1.1 needs.
template <class Message>
void prepare_headers(Message& msg, const client_options& opts, const request& req, const target_info& t) {
    msg.method(req.method);
    msg.target(t.target_view());
    msg.version(11);
    if (msg.find(bhttp::field::host) == msg.end()) msg.set(bhttp::field::host, t.host_header);
    if (msg.find(bhttp::field::user_agent) == msg.end() && !opts.user_agent.empty())
        msg.set(bhttp::field::user_agent, opts.user_agent);
}

}  // namespace

// open_connection on the client's executor (client::impl::run), with that
// coroutine's own cancellation state (co_spawn connects the caller's).
asio::awaitable<result<conn_ptr>> open_on_executor(client::impl& self, const target_info& t, time_point deadline,
                                                   limiter& lim) {
    auto cs = co_await asio::this_coro::cancellation_state;
    co_return co_await open_connection(self, t, deadline, lim, cs);
}

asio::awaitable<result<response>> client::impl::run(request req, request_options ro) {
    auto cs = co_await asio::this_coro::cancellation_state;
    // e.g. a traceparent header per attempt (calls of the client's hook are
    // serialized: requests may run on several threads at once)
    if (ro.on_request) {
        if (*ro.on_request) (*ro.on_request)(req);
    } else if (opts.on_request) {
        std::lock_guard<std::mutex> lock(hook_mu);
        opts.on_request(req);
    }
    bool memo_hit = false;
    origin_pool* op = nullptr;
    std::unique_lock<std::mutex> lock(mu);
    auto parsed = parse_target(req.url, memo, memo_hit);
    if (!parsed) co_return parsed.error();
    const target_info& t = *parsed;
    // The origin's pool (the memo's, or looked up and memoized).
    op = memo_hit ? memo.pool : nullptr;
    if (!op) {
        t.origin_key(key_scratch);
        op = &find_origin(key_scratch);
        if (memo_hit) memo.pool = op;
    }
    lock.unlock();

    // The whole request's limit on the client's clock: the caller's deadline
    // and request_timeout, one code (resilience::errc::attempt_timeout) wherever it expires.
    const time_point start = now();
    if (ro.deadline != time_point::max() && ro.deadline <= start)
        co_return fail(make_error_code(resilience::errc::attempt_timeout), "deadline passed before", t);
    time_point deadline = ro.deadline;
    const duration timeout = ro.request_timeout ? *ro.request_timeout : opts.request_timeout;
    if (timeout.count() > 0) deadline = std::min(deadline, add_sat(start, timeout));
    limiter lim(*this);

    // The message, built once (a stale connection may make us send it twice).
    std::optional<bhttp::request<bhttp::string_body>> mem_msg;
    std::optional<bhttp::request<bhttp::buffer_body>> file_msg;
    if (req.file) {
        beast::file probe;
        error_code ec;
        probe.open(req.file->path.c_str(), beast::file_mode::read, ec);
        std::uint64_t size = ec ? 0 : probe.size(ec);
        if (ec) co_return fail(make_error_code(resilience::errc::invalid_argument), "cannot open the body file for", t);
        if (req.file->offset > size || req.file->length > size - req.file->offset)
            co_return fail(make_error_code(resilience::errc::invalid_argument), "the body file range lies outside the file for", t);
        file_msg.emplace(std::piecewise_construct, std::make_tuple(), std::forward_as_tuple(std::move(req.headers)));
        prepare_headers(*file_msg, opts, req, t);
        file_msg->content_length(req.file->length);
    } else {
        mem_msg.emplace(std::piecewise_construct, std::forward_as_tuple(std::move(req.body)),
                        std::forward_as_tuple(std::move(req.headers)));
        prepare_headers(*mem_msg, opts, req, t);
        if (!mem_msg->body().empty() || req.method == verb::post || req.method == verb::put || req.method == verb::patch)
            mem_msg->content_length(mem_msg->body().size());
    }

    // A slot of the origin's pool.
    origin_pool& o = *op;
    conn_ptr c;
    bool from_pool = false;
    lock.lock();
    // Drop idle connections that have been idle too long (oldest first).
    if (!o.idle.empty()) {
        auto now = this->now();
        auto too_old = [&](const conn_ptr& p) { return now - p->idle_since > opts.pool_idle_timeout; };
        auto it = std::find_if_not(o.idle.begin(), o.idle.end(), too_old);
        for (auto i = o.idle.begin(); i != it; ++i) (*i)->close();
        o.idle.erase(o.idle.begin(), it);
    }
    if (!o.idle.empty()) {
        c = std::move(o.idle.back());
        o.idle.pop_back();
        ++o.active;
        from_pool = true;
    } else if (o.active < opts.max_connections_per_origin) {
        ++o.active;
    } else {
        waiter w(ex);
        step_limit l;
        l.consider(deadline, limit_kind::deadline);
        lim.arm(w.timer, l);
        o.waiters.push_back(&w);
        lock.unlock();
        error_code ec;
        // The wait starts under the lock, which release() holds while it
        // grants the slot and cancels the wait: a grant never slips in
        // between (a slot granted before the wait starts ends it at once).
        auto start_wait = [this, &w](auto handler) {
            std::lock_guard<std::mutex> g(mu);
            if (w.granted) w.timer.expires_at(asio::steady_timer::time_point::min());
            w.timer.async_wait(std::move(handler));
        };
        auto token = use_nothrow(ec);
        co_await asio::async_initiate<decltype(token), void(error_code)>(start_wait, token);
        lim.disarm();
        lock.lock();
        if (!w.granted) {
            o.waiters.erase(std::find(o.waiters.begin(), o.waiters.end(), &w));
            lock.unlock();
            if (cancelled(cs) || (ec == asio::error::operation_aborted && !lim.expired()))
                co_return fail(asio::error::operation_aborted, "cancelled while waiting for a connection to", t);
            co_return fail(make_error_code(resilience::errc::attempt_timeout), "timed out waiting for a connection to", t);
        }
        c = std::move(w.conn);
        from_pool = c != nullptr;
    }
    lock.unlock();
    slot_guard slot(this, &o);
    slot.conn = std::move(c);
    if (cancelled(cs)) co_return fail(asio::error::operation_aborted, "cancelled", t);
    // The caller's last word before the request goes (request_options::gate).
    while (ro.gate) {
        auto g = ro.gate();
        if (!g) co_return std::move(g).error();
        if (*g <= now()) break;
        const time_point until = std::min(*g, deadline);
        error_code ec = co_await opts.time->sleep_until(until);
        if (ec || cancelled(cs)) co_return fail(asio::error::operation_aborted, "cancelled while held by its gate", t);
        if (until == deadline && deadline != time_point::max())
            co_return fail(make_error_code(resilience::errc::attempt_timeout), "timed out held by its gate", t);
    }

    const bool idem = is_idempotent(req.method);
    for (int round = 0;; ++round) {
        if (slot.conn && from_pool && !idem && slot.conn->looks_closed()) {
            slot.conn->close();
            slot.conn.reset();
            from_pool = false;
        }
        if (!slot.conn) {
            // Connections are opened on the client's executor (its strand
            // when thread_safe): resolve, connect and the TLS handshake run
            // with Beast's stream timers, whose handlers need one.
            result<conn_ptr> oc = failure();
            const asio::any_io_executor cur = co_await asio::this_coro::executor;
            if (cur == ex || normalize(cur) == same_ex) {
                oc = co_await open_connection(*this, t, deadline, lim, cs);
            } else {
                oc = co_await asio::co_spawn(ex, open_on_executor(*this, t, deadline, lim), asio::use_awaitable);
            }
            if (!oc) co_return std::move(oc).error();
            slot.conn = std::move(*oc);
            from_pool = false;
        } else if (from_pool) {
            reused.fetch_add(1, std::memory_order_relaxed);
        }
        response out;
        exchange_result ex_r;
        // One coroutine frame per request for the exchange (no dispatching layer).
        connection& conn = *slot.conn;
        if (conn.custom) {
            if (file_msg) ex_r = co_await write_and_read(*this, conn, conn.custom, *file_msg, req, out, deadline, lim, cs);
            else ex_r = co_await write_and_read(*this, conn, conn.custom, *mem_msg, req, out, deadline, lim, cs);
        } else if (file_msg) {
            if (conn.tls) ex_r = co_await write_and_read(*this, conn, *conn.tls, *file_msg, req, out, deadline, lim, cs);
            else ex_r = co_await write_and_read(*this, conn, conn.plain, *file_msg, req, out, deadline, lim, cs);
        } else {
            if (conn.tls) ex_r = co_await write_and_read(*this, conn, *conn.tls, *mem_msg, req, out, deadline, lim, cs);
            else ex_r = co_await write_and_read(*this, conn, conn.plain, *mem_msg, req, out, deadline, lim, cs);
        }
        if (!ex_r.ec) {
            slot.keep = ex_r.keep_alive;
            co_return out;
        }
        // A pooled connection the server had closed: re-send once on a fresh one.
        const bool stale = from_pool && round == 0 && idem && !ex_r.response_started && !cancelled(cs) &&
                           ex_r.ec != asio::error::operation_aborted && ex_r.ec != resilience::errc::attempt_timeout &&
                           ex_r.ec != asio::error::timed_out && ex_r.ec != resilience::errc::invalid_argument &&
                           ex_r.ec != errc::response_too_large && ex_r.ec != errc::malformed_response;
        lim.disarm();
        slot.conn->close();
        slot.conn.reset();
        if (!stale) {
            if (ex_r.timeout != limit_kind::none) co_return fail_timeout(ex_r.ec, ex_r.timeout, ex_r.what, t);
            if (ex_r.cause) {
                failure f = fail(ex_r.ec, ex_r.what, t);
                co_return failure(f.code, f.what() + " (" + ex_r.cause.message() + ")");
            }
            co_return fail(ex_r.ec, ex_r.what, t);
        }
        stale_resends.fetch_add(1, std::memory_order_relaxed);
        from_pool = false;
    }
}

client::client(executor_type ex, client_options opts) : impl_(std::make_shared<impl>(std::move(ex), std::move(opts))) {}
client::client(asio::io_context& ctx, client_options opts) : client(ctx.get_executor(), std::move(opts)) {}
client::~client() {
    if (impl_) impl_->close_idle();
}

asio::awaitable<result<response>> client::send(request req, request_options ro) {
    auto self = impl_;
    const bool old_throw = co_await asio::this_coro::throw_if_cancelled();
    co_await asio::this_coro::throw_if_cancelled(false);
    result<response> r = failure();
    try {
        // With the steady clock over TCP (native timers) a request runs on
        // the caller's executor, whatever it is (see conn_watch); otherwise
        // on the client's, where the watchdog of its limits runs.
        if (self->native_timers) {
            r = co_await self->run(std::move(req), std::move(ro));
        } else if (auto ex = co_await asio::this_coro::executor;
                   ex == self->ex || impl::normalize(ex) == self->same_ex) {
            r = co_await self->run(std::move(req), std::move(ro));
        } else {
            r = co_await asio::co_spawn(self->ex, self->run(std::move(req), std::move(ro)), asio::use_awaitable);
        }
    } catch (const boost::system::system_error& e) {
        r = failure(e.code(), std::string("HTTP request failed: ") + e.code().message());
    } catch (const std::bad_alloc&) {
        r = failure(make_error_code(boost::system::errc::not_enough_memory), "HTTP request failed: out of memory");
    }
    co_await asio::this_coro::throw_if_cancelled(old_throw);
    co_return r;
}

pool_stats client::stats() const noexcept {
    pool_stats s;
    s.opened = impl_->opened.load(std::memory_order_relaxed);
    s.reused = impl_->reused.load(std::memory_order_relaxed);
    s.stale_resends = impl_->stale_resends.load(std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(impl_->mu);
    for (auto& [k, o] : impl_->origins) {
        s.in_use += o->active;
        s.idle += o->idle.size();
        s.waiting += o->waiters.size();
    }
    return s;
}

void client::close_idle() noexcept { impl_->close_idle(); }
client::executor_type client::get_executor() const noexcept { return impl_->user_ex; }
client::executor_type client::internal_executor() const noexcept { return impl_->ex; }
const client_options& client::options() const noexcept { return impl_->opts; }

}  // namespace resilience::http
