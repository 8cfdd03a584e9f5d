#include <resilience/redis/fleet.hpp>

#include "connection.hpp"
#include "scripts.hpp"

#include <resilience/circuit_breaker.hpp>
#include <resilience/clock.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/error.hpp>
#include <resilience/onset_gate.hpp>
#include <resilience/rate_gate.hpp>
#include <resilience/retry_budget.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <charconv>
#include <cmath>
#include <deque>
#include <mutex>
#include <random>
#include <vector>

namespace resilience::redis {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using detail::reply_ptr;
using detail::reply_result;

// ---------------------------------------------------------------------------
// errors

namespace {
class redis_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "resilience.redis"; }
    std::string message(int v) const override {
        switch (static_cast<errc>(v)) {
        case errc::auth_failed: return "Redis refused the credentials";
        case errc::server_error: return "Redis answered an error";
        case errc::protocol_error: return "unreadable reply from Redis";
        case errc::timeout: return "Redis did not answer in time";
        }
        return "unknown resilience.redis error";
    }
    boost::system::error_condition default_error_condition(int v) const noexcept override {
        switch (static_cast<errc>(v)) {
        case errc::auth_failed: return make_error_condition(condition::auth);
        case errc::timeout: return make_error_condition(condition::timeout);  // so network, transient
        default: return make_error_condition(condition::transient);
        }
    }
};
}  // namespace

const boost::system::error_category& error_category() noexcept {
    static const redis_category c;
    return c;
}

// ---------------------------------------------------------------------------
// options

std::string redis_url::display() const { return host + ":" + std::to_string(port) + "/" + std::to_string(db); }

namespace {
failure bad(std::string msg) { return failure(resilience::make_error_code(resilience::errc::invalid_config), std::move(msg)); }
}  // namespace

result<redis_url> parse_url(std::string_view text) {
    // The messages below never quote the URL: it may hold a password.
    auto u = boost::urls::parse_absolute_uri(text);
    if (!u) return bad("redis url: not a URL of the form redis://[user:password@]host:port[/db]");
    if (u->scheme() != "redis")
        return bad("redis url: the scheme must be redis:// (TLS, rediss://, is not supported)");
    redis_url out;
    out.host = std::string(u->host());  // IPv6 literals keep their brackets
    if (u->host_type() == boost::urls::host_type::ipv6) out.host = u->host_address();
    if (out.host.empty()) return bad("redis url: the host is missing");
    if (u->has_port()) {
        const auto p = u->port();
        unsigned v = 0;
        auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
        if (p.empty() || ec != std::errc{} || ptr != p.data() + p.size() || v == 0 || v > 65535)
            return bad("redis url: the port must be between 1 and 65535");
        out.port = static_cast<std::uint16_t>(v);
    }
    if (u->has_userinfo()) {
        out.user = std::string(u->user());
        out.password = std::string(u->password());
        if (!u->has_password()) {
            // redis://secret@host: the lone field is the password (as redis-cli reads it).
            out.password = out.user;
            out.user.clear();
        }
    }
    std::string path = std::string(u->path());
    if (!path.empty() && path != "/") {
        const std::string_view db = std::string_view(path).substr(1);
        int v = -1;
        auto [ptr, ec] = std::from_chars(db.data(), db.data() + db.size(), v);
        if (path[0] != '/' || db.empty() || ec != std::errc{} || ptr != db.data() + db.size() || v < 0 || v > 100000)
            return bad("redis url: the path must be a database number (/0, /1, ...)");
        out.db = v;
    }
    if (u->has_query() || u->has_fragment()) return bad("redis url: no query or fragment is allowed");
    return out;
}

result<void> fleet_options::validate() const {
    using std::chrono::milliseconds;
    if (url.empty()) return bad("fleet.url: empty (redis://[user:password@]host:port[/db])");
    if (auto u = parse_url(url); !u) return u.error();
    auto range = [](const char* name, milliseconds v, milliseconds lo, milliseconds hi) -> result<void> {
        if (v < lo || v > hi)
            return bad(std::string("fleet.") + name + " = " + std::to_string(v.count()) + " ms: must be between " +
                       std::to_string(lo.count()) + " and " + std::to_string(hi.count()) + " ms");
        return {};
    };
    if (auto r = range("timeout", timeout, milliseconds(1), milliseconds(60000)); !r) return r;
    if (auto r = range("health_interval", health_interval, milliseconds(10), milliseconds(3600000)); !r) return r;
    if (auto r = range("failure_window", failure_window, milliseconds(100), milliseconds(86400000)); !r) return r;
    if (auto r = range("probe_lease", probe_lease, milliseconds(10), milliseconds(86400000)); !r) return r;
    if (auto r = range("key_ttl", key_ttl, milliseconds(1000), milliseconds(7 * 86400000LL)); !r) return r;
    if (auto r = range("budget_flush", budget_flush, milliseconds(1), milliseconds(3600000)); !r) return r;
    if (auto r = range("onset_lease", onset_lease, milliseconds(10), milliseconds(86400000)); !r) return r;
    if (auto r = range("onset_window", onset_window, milliseconds(1), milliseconds(86400000)); !r) return r;
    if (onset_cap < 0 || onset_cap > 10000)
        return bad("fleet.onset_cap = " + std::to_string(onset_cap) + ": must be between 0 (off) and 10000");
    if (auto r = range("reconnect.initial_delay", reconnect.initial_delay, milliseconds(1), milliseconds(3600000)); !r) return r;
    if (reconnect.max_delay < reconnect.initial_delay || reconnect.max_delay > milliseconds(3600000))
        return bad("fleet.reconnect.max_delay = " + std::to_string(reconnect.max_delay.count()) +
                   " ms: must be between reconnect.initial_delay and 3600000 ms");
    if (!(reconnect.multiplier >= 1 && reconnect.multiplier <= 1000))
        return bad("fleet.reconnect.multiplier: must be between 1 and 1000");
    if (failure_threshold < 0 || failure_threshold > 1000000)
        return bad("fleet.failure_threshold = " + std::to_string(failure_threshold) +
                   ": must be 0 (each breaker's own) or between 1 and 1000000");
    if (key_prefix.empty() || key_prefix.size() > 64 ||
        key_prefix.find_first_of(" {}\r\n\t") != std::string::npos)
        return bad("fleet.key_prefix: 1 to 64 characters, no spaces or braces");
    return {};
}

result<fleet_options> fleet_options::from_env(const env_lookup& env) {
    fleet_options o;
    const auto v = (env ? env : env_lookup(process_env))("RESILIENCE_REDIS_URL");
    if (!v || v->empty()) return o;
    o.url = *v;
    if (auto r = o.validate(); !r) {
        failure f = r.error();
        f.diag.message = "RESILIENCE_REDIS_URL: " + f.diag.message;
        return f;
    }
    return o;
}

// ---------------------------------------------------------------------------
// the fleet

namespace {

enum class link_state : unsigned char { connecting, joined, down };

struct pending_transition {
    breaker_state from, to;
    duration open_for;
    double gen;  // the fleet generation this process followed when it happened
};

// One attached gate set. The pending fields are written by observers (any
// thread) under fleet::impl::mu_; the rest lives on the strand.
struct scope_entry {
    std::uint64_t scope = 0;
    std::string hex;
    std::weak_ptr<circuit_breaker> breaker;
    std::weak_ptr<resilience::cooldown> cool;
    std::weak_ptr<retry_budget> budget;
    std::weak_ptr<resilience::rate_gate> rate;
    clock* time = nullptr;
    int threshold = 3;
    std::chrono::milliseconds open_timeout{60000};
    std::int64_t budget_max = 0;
    // pending (under mu_)
    int failures = 0;
    bool reset = false;
    std::deque<pending_transition> transitions;
    std::optional<time_point> cooldown_until;
    std::int64_t budget_delta = 0;
    std::optional<rate_cut> cut;  // the newest local cut not yet sent
    double cut_seen = 0;          // with it: the fleet cut generation heard of when it was made
    bool needs_sync = true;
    // the onset cap (under mu_): leases granted and not yet taken (with when),
    // taken by a request, and given back (with the request's success) but
    // not yet released on Redis; a request of the cold scope waits for one.
    std::weak_ptr<onset_gate> onset;
    std::vector<std::pair<std::uint64_t, std::chrono::steady_clock::time_point>> leases_ready;
    std::vector<std::uint64_t> leases_held;
    std::vector<std::pair<std::uint64_t, bool>> leases_back;
    bool lease_wanted = false;
    std::uint64_t leases_freed = 0;  // lease-freed messages heard: a refused request asks again
    std::chrono::steady_clock::time_point lease_retry{};  // refused (cap reached): not asked again before
    // strand only
    std::atomic<double> gen{-1};  // the newest fleet generation applied (written on the strand)
    double budget_seq = -1;  // the newest budget count applied
    bool gated = false;
    std::atomic<double> rate_gen{0};  // the newest fleet rate cut heard of (written on the strand)
};

std::string hex16(std::uint64_t v) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s(16, '0');
    for (int i = 15; i >= 0; --i, v >>= 4) s[static_cast<std::size_t>(i)] = digits[v & 0xf];
    return s;
}

std::int64_t millis(duration d) {
    return std::max<std::int64_t>(0, std::chrono::ceil<std::chrono::milliseconds>(d).count());
}

}  // namespace

struct fleet::impl : std::enable_shared_from_this<fleet::impl> {
    fleet_options opts;
    redis_url url;
    asio::strand<asio::any_io_executor> strand;
    asio::steady_timer wake;
    asio::steady_timer pause;
    std::string origin;
    std::string channel;
    jitter_source rng;

    mutable std::mutex mu_;
    std::vector<std::shared_ptr<scope_entry>> entries;  // under mu_
    std::atomic<bool> signalled{false};
    std::atomic<bool> stopped{false};
    std::atomic<bool> busy{false};
    std::atomic<link_state> state{link_state::connecting};
    error_code last_error;  // under mu_
    std::chrono::steady_clock::time_point last_budget_flush{};

    std::atomic<std::uint64_t> n_requests{0}, n_published{0}, n_applied{0}, n_fallbacks{0}, n_joins{0}, n_noscript{0},
        n_cuts_sent{0}, n_cuts_applied{0}, n_leases{0}, n_lease_refusals{0};
    std::uint64_t lease_seq = 0;  // strand only: lease ids are ORIGIN:N

    // strand only
    std::unique_ptr<detail::connection> cmd, sub;
    std::vector<std::string> shas;

    enum script_id {
        s_failure, s_reset, s_open, s_claim, s_close, s_sync, s_cooldown, s_budget, s_rate, s_acquire, s_release,
        s_count
    };
    std::string bodies[s_count];

    impl(asio::any_io_executor ex, fleet_options o)
        : opts(std::move(o)), strand(asio::make_strand(ex)), wake(strand), pause(strand) {
        url = parse_url(opts.url).value();
        std::uint64_t seed = opts.seed;
        if (seed == 0) seed = std::random_device{}() ^ (std::uint64_t(std::random_device{}()) << 32);
        rng.seed(seed);
        origin = hex16(rng.next_u64());
        channel = opts.key_prefix + ":gates:db" + std::to_string(url.db);
        const std::string pre(detail::breaker_prelude);
        bodies[s_failure] = pre + std::string(detail::breaker_failure);
        bodies[s_reset] = pre + std::string(detail::breaker_reset_streak);
        bodies[s_open] = pre + std::string(detail::breaker_open);
        bodies[s_claim] = pre + std::string(detail::breaker_claim);
        bodies[s_close] = pre + std::string(detail::breaker_close);
        bodies[s_sync] = pre + std::string(detail::breaker_sync);
        bodies[s_cooldown] = std::string(detail::cooldown_raise);
        bodies[s_budget] = std::string(detail::budget_add);
        bodies[s_rate] = std::string(detail::rate_cut);
        bodies[s_acquire] = std::string(detail::onset_acquire);
        bodies[s_release] = std::string(detail::onset_release);
        wake.expires_at(asio::steady_timer::time_point::max());
    }

    std::string key(const scope_entry& e, std::string_view what) const {
        return opts.key_prefix + ":{" + e.hex + "}:" + std::string(what);
    }

    // ---- out: the observers' side (any thread)

    template <class F>
    void note(const std::shared_ptr<scope_entry>& e, F f) {
        {
            std::lock_guard lk(mu_);
            f(*e);
        }
        signal();
    }

    void signal() {
        if (signalled.exchange(true)) return;
        asio::post(strand, [self = shared_from_this()] { self->wake.cancel(); });
    }

    // ---- status

    std::string status_text() const {
        switch (state.load()) {
        case link_state::connecting: return "Fleet gates: connecting to Redis at " + url.display();
        case link_state::joined: return "Fleet gates: joined Redis at " + url.display() + "; following the fleet's state";
        case link_state::down: {
            error_code ec;
            {
                std::lock_guard lk(mu_);
                ec = last_error;
            }
            return "Fleet gates: Redis at " + url.display() + " unreachable (" + ec.message() +
                   "); deciding locally until it is back";
        }
        }
        return {};
    }

    void announce(fleet_event_type t, error_code ec) {
        const std::string text = status_text();
        if (opts.on_status) opts.on_status(text);
        if (opts.on_event) {
            fleet_event e;
            e.type = t;
            e.message = text;
            e.code = ec;
            opts.on_event(e);
        }
    }

    std::vector<std::shared_ptr<scope_entry>> snapshot() const {
        std::lock_guard lk(mu_);
        return entries;
    }

    void set_gates(bool on) {
        for (auto& e : snapshot()) {
            if (auto b = e->breaker.lock()) b->gate_probes(on);
            e->gated = on;
        }
    }

    void fall_back(error_code ec) {
        {
            std::lock_guard lk(mu_);
            last_error = ec;
            for (auto& e : entries) {
                e->needs_sync = true;
                // Unused leases are given back at the rejoin (or expire);
                // requests go without one meanwhile.
                for (auto& [id, at] : e->leases_ready) e->leases_back.emplace_back(id, false);
                e->leases_ready.clear();
                e->lease_wanted = false;
            }
        }
        set_gates(false);  // held HALF_OPEN probes go now, locally
        const link_state before = state.exchange(link_state::down);
        if (before != link_state::down) {
            n_fallbacks.fetch_add(1, std::memory_order_relaxed);
            announce(fleet_event_type::fell_back, ec);
        }
    }

    // ---- in: applying the fleet's state (strand)

    void apply_breaker(scope_entry& e, char st, double gen, std::int64_t ms) {
        if (st == 'n') return;
        if (gen < e.gen.load()) return;  // older than what this process already follows
        e.gen.store(gen);
        if (st != 'g') {
            // A local transition noted since this was decided is newer news:
            // it is on its way to Redis (with this generation), whose answer
            // settles the state.
            std::lock_guard lk(mu_);
            if (!e.transitions.empty()) return;
        }
        auto b = e.breaker.lock();
        if (!b) return;
        n_applied.fetch_add(1, std::memory_order_relaxed);
        switch (st) {
        case 'g': b->grant_probes(); break;
        case 'o':
        case 'h': b->apply_remote(breaker_state::open, std::chrono::milliseconds(ms)); break;  // h: another probes
        case 'c': b->apply_remote(breaker_state::closed); break;
        default: break;
        }
    }

    // The fleet's count (seq orders the answers and messages), plus what
    // this process spent since its last flush.
    void apply_budget(scope_entry& e, std::int64_t count, double seq) {
        if (seq <= e.budget_seq) return;
        e.budget_seq = seq;
        auto b = e.budget.lock();
        if (!b) return;
        std::int64_t local = 0;
        {
            std::lock_guard lk(mu_);
            local = e.budget_delta;
        }
        b->apply_remote(count + local);
        n_applied.fetch_add(1, std::memory_order_relaxed);
    }

    void on_message(std::string_view payload) {
        // "ORIGIN SCOPE KIND ARGS..."
        std::vector<std::string_view> f;
        while (!payload.empty() && f.size() < 8) {
            const auto sp = payload.find(' ');
            f.push_back(payload.substr(0, sp));
            if (sp == std::string_view::npos) break;
            payload.remove_prefix(sp + 1);
        }
        if (f.size() < 4 || f[0] == origin) return;
        n_published.fetch_add(1, std::memory_order_relaxed);
        auto num = [](std::string_view s) {
            double v = 0;
            std::from_chars(s.data(), s.data() + s.size(), v);
            return v;
        };
        for (auto& e : snapshot()) {
            if (e->hex != f[1]) continue;
            if (f[2] == "b" && f.size() >= 6 && !f[3].empty()) {
                apply_breaker(*e, f[3][0], num(f[4]), static_cast<std::int64_t>(num(f[5])));
            } else if (f[2] == "c") {
                if (auto c = e->cool.lock()) {
                    const time_point now = e->time->now();
                    c->apply_remote(e->scope, now + std::chrono::milliseconds(static_cast<std::int64_t>(num(f[3]))), now);
                    n_applied.fetch_add(1, std::memory_order_relaxed);
                }
            } else if (f[2] == "t" && f.size() >= 5) {
                apply_budget(*e, static_cast<std::int64_t>(num(f[3])), num(f[4]));
            } else if (f[2] == "s") {
                // Another process gave a lease back: a refused request asks
                // again; its request succeeded: the scope is warm here too.
                if (f[3] == "w")
                    if (auto g = e->onset.lock()) g->succeeded(e->time->now());
                bool wanted = false;
                {
                    std::lock_guard lk(mu_);
                    ++e->leases_freed;
                    e->lease_retry = {};
                    wanted = e->lease_wanted;
                }
                if (wanted) signal();
            } else if (f[2] == "r" && f.size() >= 4) {
                // Another process's cut: this one cuts its own rate (from its
                // own send rate) and restarts CUBIC's growth from now.
                const double gen = num(f[3]);
                if (gen <= e->rate_gen.load()) continue;
                e->rate_gen.store(gen);
                if (auto g = e->rate.lock(); g && g->apply_cut(e->scope, e->time->now())) {
                    n_applied.fetch_add(1, std::memory_order_relaxed);
                    n_cuts_applied.fetch_add(1, std::memory_order_relaxed);
                }
            }
        }
    }

    // ---- requests (strand)

    struct link_error {
        error_code ec;
    };

    asio::awaitable<reply_ptr> request(std::vector<std::string> args) {
        n_requests.fetch_add(1, std::memory_order_relaxed);
        auto [ec, r] = co_await cmd->exec(std::move(args), opts.timeout);
        if (ec) throw link_error{ec};
        co_return std::move(r);
    }

    asio::awaitable<reply_ptr> script(script_id id, std::vector<std::string> keys, std::vector<std::string> args) {
        std::vector<std::string> argv;
        argv.reserve(3 + keys.size() + args.size());
        argv.push_back("EVALSHA");
        argv.push_back(shas[id]);
        argv.push_back(std::to_string(keys.size()));
        for (auto& k : keys) argv.push_back(std::move(k));
        for (auto& a : args) argv.push_back(std::move(a));
        std::vector<std::string> first = argv;
        reply_ptr r = co_await request(std::move(first));
        if (r->type == REDIS_REPLY_ERROR && detail::text(r.get()).starts_with("NOSCRIPT")) {
            // The server lost its script cache (a restart, SCRIPT FLUSH): send the body.
            n_noscript.fetch_add(1, std::memory_order_relaxed);
            argv[0] = "EVAL";
            argv[1] = bodies[id];
            r = co_await request(std::move(argv));
        }
        if (r->type == REDIS_REPLY_ERROR) throw link_error{make_error_code(errc::server_error)};
        co_return std::move(r);
    }

    std::vector<std::string> breaker_keys(const scope_entry& e) const {
        return {key(e, "breaker"), key(e, "open"), key(e, "probe")};
    }
    std::vector<std::string> head(const scope_entry& e) const { return {channel, origin, e.hex}; }

    // Reads a breaker script's {state, gen, ms} and applies it.
    void take_breaker_reply(scope_entry& e, const reply_ptr& r, bool apply_closed) {
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) throw link_error{make_error_code(errc::protocol_error)};
        const std::string_view st = detail::text(r->element[0]);
        const double gen = static_cast<double>(r->element[1]->integer);
        const std::int64_t ms = r->element[2]->integer;
        if (st.empty()) throw link_error{make_error_code(errc::protocol_error)};
        if (st[0] == 'c' && !apply_closed) return;
        apply_breaker(e, st[0], gen, ms);
    }

    std::string ttl() const { return std::to_string(opts.key_ttl.count()); }
    static std::string fmt_rate(double r) {
        char buf[32];
        const int n = std::snprintf(buf, sizeof buf, "%.3f", std::isfinite(r) ? r : 0.0);
        return std::string(buf, static_cast<std::size_t>(n > 0 ? n : 0));
    }
    static std::string fmt_gen(double g) {
        char buf[32];
        const int n = std::snprintf(buf, sizeof buf, "%.0f", g);
        return std::string(buf, static_cast<std::size_t>(n > 0 ? n : 0));
    }

    asio::awaitable<void> sync_entry(scope_entry& e) {
        e.gen = -1;  // the fleet may have restarted: follow whatever it says now
        e.budget_seq = -1;
        e.rate_gen = 0;
        if (auto b = e.breaker.lock()) {
            const breaker_machine m = b->snapshot();
            const time_point now = e.time->now();
            std::string local = "c";
            std::int64_t ms = 0;
            if (m.state() == breaker_state::open && !m.isolated()) {
                local = "o";
                ms = millis(m.open_until() - now);
            } else if (m.state() == breaker_state::half_open) {
                local = "h";
            }
            auto args = head(e);
            args.push_back(local);
            args.push_back(std::to_string(ms));
            args.push_back(ttl());
            auto keys = breaker_keys(e);
            reply_ptr r = co_await script(s_sync, std::move(keys), std::move(args));
            take_breaker_reply(e, r, true);
        }
        if (auto c = e.cool.lock()) {
            const time_point now = e.time->now();
            std::int64_t ms = 0;
            if (auto until = c->blocked_until(e.scope, now)) ms = millis(*until - now);
            auto args = head(e);
            args.push_back(std::to_string(ms));
            std::vector<std::string> keys{key(e, "cooldown")};
            reply_ptr r = co_await script(s_cooldown, std::move(keys), std::move(args));
            if (r->type == REDIS_REPLY_INTEGER && r->integer > ms)
                c->apply_remote(e.scope, now + std::chrono::milliseconds(r->integer), now);
        }
        if (e.budget.lock()) co_await flush_budget(e);
        if (e.rate.lock()) co_await send_cut(e, "", "0", "0");  // the cut generation to follow from now
        if (auto b = e.breaker.lock()) b->gate_probes(true);
        e.gated = true;
    }

    // A local rate cut (seen = the fleet cut generation it followed), or with
    // seen empty, the fleet's newest cut generation read (a rejoin).
    asio::awaitable<void> send_cut(scope_entry& e, std::string seen, std::string from, std::string to) {
        auto args = head(e);
        args.push_back(std::move(seen));
        args.push_back(std::move(from));
        args.push_back(std::move(to));
        args.push_back(ttl());
        std::vector<std::string> keys{key(e, "rate")};
        reply_ptr r = co_await script(s_rate, std::move(keys), std::move(args));
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) throw link_error{make_error_code(errc::protocol_error)};
        if (r->element[0]->integer == 1) n_cuts_sent.fetch_add(1, std::memory_order_relaxed);
        const double gen = static_cast<double>(r->element[1]->integer);
        if (gen > e.rate_gen.load()) e.rate_gen.store(gen);
    }

    asio::awaitable<void> flush_budget(scope_entry& e) {
        auto b = e.budget.lock();
        if (!b) co_return;
        std::int64_t delta = 0;
        {
            std::lock_guard lk(mu_);
            delta = e.budget_delta;
            e.budget_delta = 0;
        }
        auto args = head(e);
        args.push_back(std::to_string(delta));
        args.push_back(std::to_string(e.budget_max));
        args.push_back(ttl());
        reply_ptr r;
        try {
            std::vector<std::string> keys{key(e, "budget")};
            r = co_await script(s_budget, std::move(keys), std::move(args));
        } catch (const link_error&) {
            std::lock_guard lk(mu_);
            e.budget_delta += delta;  // nothing lost: sent at the next join
            throw;
        }
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) apply_budget(e, r->element[0]->integer, double(r->element[1]->integer));
    }

    std::string lease_id(std::uint64_t n) const { return origin + ":" + std::to_string(n); }

    // The onset cap: gives back the leases requests are done with (and those
    // granted but not taken within `timeout`: nobody waits for them any
    // more), then asks for one when a request of the cold scope waits and
    // none is ready. Refused because the fleet's cooldown holds the scope:
    // the cooldown is applied (the requests wait for it, then ask again);
    // because the cap is reached: asked again when a lease is freed (a
    // message) or at the oldest lease's expiry, at the latest after `timeout`.
    asio::awaitable<bool> drain_onset(scope_entry& e, std::chrono::steady_clock::time_point& next_wake) {
        using steady = std::chrono::steady_clock;
        if (opts.onset_cap <= 0) co_return false;
        const auto real_now = steady::now();
        std::vector<std::pair<std::uint64_t, bool>> back;
        bool want = false;
        std::uint64_t freed = 0;
        {
            std::lock_guard lk(mu_);
            back.swap(e.leases_back);
            std::erase_if(e.leases_ready, [&](const auto& l) {
                if (real_now - l.second < opts.timeout) return false;
                back.emplace_back(l.first, false);
                return true;
            });
            for (const auto& l : e.leases_ready) next_wake = std::min(next_wake, l.second + opts.timeout);
            want = e.lease_wanted && e.leases_ready.empty();
            if (want && real_now < e.lease_retry) {
                next_wake = std::min(next_wake, e.lease_retry);
                want = false;
            }
            freed = e.leases_freed;
        }
        bool did = false;
        for (std::size_t i = 0; i < back.size(); ++i) {
            auto args = head(e);
            args.push_back(lease_id(back[i].first));
            args.push_back(back[i].second ? "w" : "f");
            std::vector<std::string> keys{key(e, "onset")};
            try {
                co_await script(s_release, std::move(keys), std::move(args));
            } catch (const link_error&) {
                std::lock_guard lk(mu_);  // released at the rejoin (or they expire)
                e.leases_back.insert(e.leases_back.end(), back.begin() + static_cast<std::ptrdiff_t>(i), back.end());
                throw;
            }
            did = true;
        }
        if (!back.empty()) {
            // This process freed leases (its own message does not come back).
            std::lock_guard lk(mu_);
            ++e.leases_freed;
            e.lease_retry = {};
            if (e.lease_wanted && e.leases_ready.empty()) want = true;
        }
        if (!want) co_return did;
        const std::uint64_t id = ++lease_seq;
        auto args = head(e);
        args.push_back(lease_id(id));
        args.push_back(std::to_string(opts.onset_cap));
        args.push_back(std::to_string(opts.onset_lease.count()));
        std::vector<std::string> keys{key(e, "onset"), key(e, "cooldown")};
        reply_ptr r = co_await script(s_acquire, std::move(keys), std::move(args));
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) throw link_error{make_error_code(errc::protocol_error)};
        const std::int64_t cool_ms = r->element[1]->integer, wait_ms = r->element[2]->integer;
        if (r->element[0]->integer == 1) {
            n_leases.fetch_add(1, std::memory_order_relaxed);
            const auto at = steady::now();
            std::lock_guard lk(mu_);
            e.leases_ready.emplace_back(id, at);
            e.lease_wanted = false;
            next_wake = std::min(next_wake, at + opts.timeout);
            co_return true;
        }
        n_lease_refusals.fetch_add(1, std::memory_order_relaxed);
        if (cool_ms > 0) {
            if (auto c = e.cool.lock()) {
                const time_point now = e.time->now();
                c->apply_remote(e.scope, now + std::chrono::milliseconds(cool_ms), now);
            }
            std::lock_guard lk(mu_);
            e.lease_wanted = false;  // the requests ask again when the cooldown lets them
            co_return true;
        }
        std::lock_guard lk(mu_);
        if (e.leases_freed == freed) {  // no lease freed meanwhile
            const auto retry = std::chrono::milliseconds(std::clamp<std::int64_t>(wait_ms, 1, opts.timeout.count()));
            e.lease_retry = steady::now() + retry;
            next_wake = std::min(next_wake, e.lease_retry);
        }
        co_return true;
    }

    // Sends what the observers noted; true if anything was sent.
    asio::awaitable<bool> drain(std::chrono::steady_clock::time_point& next_flush) {
        bool did = false;
        const auto real_now = std::chrono::steady_clock::now();
        const bool budget_due = real_now - last_budget_flush >= opts.budget_flush;
        for (auto& ep : snapshot()) {
            scope_entry& e = *ep;
            bool sync = false, reset = false;
            int failures = 0;
            std::deque<pending_transition> transitions;
            std::optional<time_point> cool_until;
            std::optional<rate_cut> cut;
            double cut_seen = 0;
            bool budget_dirty = false;
            {
                std::lock_guard lk(mu_);
                sync = std::exchange(e.needs_sync, false);
                if (sync) {
                    // The sync pushes the local state: what was noted is in it.
                    e.failures = 0;
                    e.reset = false;
                    e.transitions.clear();
                    e.cooldown_until.reset();
                    e.cut.reset();  // a cut is an event: one missed while away is not replayed
                } else {
                    reset = std::exchange(e.reset, false);
                    failures = std::exchange(e.failures, 0);
                    transitions.swap(e.transitions);
                    cool_until = std::exchange(e.cooldown_until, std::nullopt);
                    cut = std::exchange(e.cut, std::nullopt);
                    cut_seen = e.cut_seen;
                }
                budget_dirty = e.budget_delta != 0;
            }
            if (sync) {
                co_await sync_entry(e);
                co_await drain_onset(e, next_flush);
                did = true;
                continue;
            }
            if (reset) {
                auto keys = breaker_keys(e);
                auto args = head(e);
                co_await script(s_reset, std::move(keys), std::move(args));
                did = true;
            }
            if (failures > 0) {
                auto args = head(e);
                args.push_back(std::to_string(failures));
                args.push_back(std::to_string(e.threshold));
                args.push_back(std::to_string(opts.failure_window.count()));
                args.push_back(std::to_string(e.open_timeout.count()));
                args.push_back(ttl());
                auto keys = breaker_keys(e);
                reply_ptr r = co_await script(s_failure, std::move(keys), std::move(args));
                take_breaker_reply(e, r, false);
                did = true;
            }
            for (const auto& t : transitions) {
                did = true;
                if (t.to == breaker_state::open) {
                    auto args = head(e);
                    args.push_back(std::to_string(std::max<std::int64_t>(1, millis(t.open_for))));
                    args.push_back(ttl());
                    args.push_back(t.from == breaker_state::half_open ? "h" : "c");
                    auto keys = breaker_keys(e);
                    reply_ptr r = co_await script(s_open, std::move(keys), std::move(args));
                    take_breaker_reply(e, r, false);
                } else if (t.to == breaker_state::half_open) {
                    auto args = head(e);
                    args.push_back(std::to_string(opts.probe_lease.count()));
                    args.push_back(ttl());
                    args.push_back(fmt_gen(t.gen));
                    auto keys = breaker_keys(e);
                    reply_ptr r = co_await script(s_claim, std::move(keys), std::move(args));
                    take_breaker_reply(e, r, true);
                } else {
                    auto args = head(e);
                    args.push_back(ttl());
                    auto keys = breaker_keys(e);
                    co_await script(s_close, std::move(keys), std::move(args));
                }
            }
            if (cool_until) {
                if (auto c = e.cool.lock()) {
                    const time_point now = e.time->now();
                    const std::int64_t ms = millis(*cool_until - now);
                    if (ms > 0) {
                        auto args = head(e);
                        args.push_back(std::to_string(ms));
                        std::vector<std::string> keys{key(e, "cooldown")};
                        reply_ptr r = co_await script(s_cooldown, std::move(keys), std::move(args));
                        if (r->type == REDIS_REPLY_INTEGER && r->integer > ms)
                            c->apply_remote(e.scope, now + std::chrono::milliseconds(r->integer), now);
                        did = true;
                    }
                }
            }
            if (cut) {
                co_await send_cut(e, fmt_gen(cut_seen), fmt_rate(cut->from_rate), fmt_rate(cut->to_rate));
                did = true;
            }
            if (budget_dirty) {
                if (budget_due) {
                    co_await flush_budget(e);
                    did = true;
                } else {
                    next_flush = std::min(next_flush, last_budget_flush + opts.budget_flush);
                }
            }
            // Last: a cooldown noted with a lease given back is on Redis
            // before the lease is free for another process.
            if (co_await drain_onset(e, next_flush)) did = true;
        }
        if (budget_due) last_budget_flush = real_now;
        co_return did;
    }

    asio::awaitable<error_code> command_loop() {
        try {
            for (;;) {
                if (stopped) co_return make_error_code(asio::error::operation_aborted);
                signalled.store(false);
                auto next_flush = std::chrono::steady_clock::time_point::max();
                busy = true;
                const bool did = co_await drain(next_flush);
                busy = false;
                if (did) continue;
                const auto health = std::chrono::steady_clock::now() + opts.health_interval;
                wake.expires_at(std::min(health, next_flush));
                auto [ec] = co_await wake.async_wait(asio::as_tuple(asio::use_awaitable));
                if (!ec && std::chrono::steady_clock::now() >= health) {
                    // Idle: a PING notices a Redis that stopped answering.
                    busy = true;
                    std::vector<std::string> ping{"PING"};
                    reply_ptr r = co_await request(std::move(ping));
                    busy = false;
                    (void)r;
                }
            }
        } catch (const link_error& e) {
            busy = false;
            co_return e.ec;
        }
    }

    asio::awaitable<error_code> subscriber_loop() {
        for (;;) {
            auto [ec, r] = co_await sub->read();
            if (ec) co_return ec;
            // ["message", channel, payload]
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && detail::text(r->element[0]) == "message")
                on_message(detail::text(r->element[2]));
        }
    }

    // AUTH (and SELECT) on a fresh connection.
    asio::awaitable<error_code> hello(detail::connection& c, bool select) {
        if (!url.password.empty()) {
            std::vector<std::string> a{"AUTH"};
            if (!url.user.empty()) a.push_back(url.user);
            a.push_back(url.password);
            n_requests.fetch_add(1, std::memory_order_relaxed);
            auto [ec, r] = co_await c.exec(std::move(a), opts.timeout);
            if (ec) co_return ec;
            if (r->type == REDIS_REPLY_ERROR) co_return make_error_code(errc::auth_failed);
        }
        if (select && url.db != 0) {
            n_requests.fetch_add(1, std::memory_order_relaxed);
            std::vector<std::string> sel{"SELECT", std::to_string(url.db)};
            auto [ec, r] = co_await c.exec(std::move(sel), opts.timeout);
            if (ec) co_return ec;
            if (r->type == REDIS_REPLY_ERROR) co_return make_error_code(errc::server_error);
        }
        // A server that wants a password we did not give says so at the first command.
        n_requests.fetch_add(1, std::memory_order_relaxed);
        std::vector<std::string> ping{"PING"};
        auto [ec, r] = co_await c.exec(std::move(ping), opts.timeout);
        if (ec) co_return ec;
        if (r->type == REDIS_REPLY_ERROR)
            co_return detail::text(r.get()).starts_with("NOAUTH") ? make_error_code(errc::auth_failed)
                                                                  : make_error_code(errc::server_error);
        co_return error_code{};
    }

    asio::awaitable<error_code> session() {
        cmd = std::make_unique<detail::connection>(strand);
        sub = std::make_unique<detail::connection>(strand);
        std::string host = url.host;
        if (auto ec = co_await cmd->connect(host, url.port, opts.timeout)) co_return ec;
        if (auto ec = co_await hello(*cmd, true)) co_return ec;
        shas.assign(s_count, {});
        for (int i = 0; i < s_count; ++i) {
            n_requests.fetch_add(1, std::memory_order_relaxed);
            std::vector<std::string> load{"SCRIPT", "LOAD", bodies[i]};
            auto [ec, r] = co_await cmd->exec(std::move(load), opts.timeout);
            if (ec) co_return ec;
            if (r->type != REDIS_REPLY_STRING) co_return make_error_code(errc::server_error);
            shas[static_cast<std::size_t>(i)] = std::string(detail::text(r.get()));
        }
        if (auto ec = co_await sub->connect(host, url.port, opts.timeout)) co_return ec;
        if (auto ec = co_await hello(*sub, false)) co_return ec;
        {
            n_requests.fetch_add(1, std::memory_order_relaxed);
            std::vector<std::string> subscribe{"SUBSCRIBE", channel};
            auto [ec, r] = co_await sub->exec(std::move(subscribe), opts.timeout);
            if (ec) co_return ec;
            if (r->type != REDIS_REPLY_ARRAY) co_return make_error_code(errc::server_error);
        }
        // Resync every scope before saying we joined (the command loop's
        // first drain would do it too; doing it here makes "joined" true).
        {
            std::lock_guard lk(mu_);
            for (auto& e : entries) e->needs_sync = true;
        }
        try {
            auto ignored = std::chrono::steady_clock::time_point::max();
            busy = true;
            co_await drain(ignored);
            busy = false;
        } catch (const link_error& e) {
            busy = false;
            co_return e.ec;
        }
        state = link_state::joined;
        n_joins.fetch_add(1, std::memory_order_relaxed);
        announce(fleet_event_type::joined, {});
        auto a = command_loop();
        auto b = subscriber_loop();
        auto r = co_await (std::move(a) || std::move(b));
        co_return r.index() == 0 ? std::get<0>(r) : std::get<1>(r);
    }

    void close_all() {
        if (cmd) cmd->close();
        if (sub) sub->close();
    }

    asio::awaitable<void> run() {
        int attempt = 0;
        duration previous{};
        while (!stopped) {
            error_code ec = co_await session();
            close_all();
            if (stopped) break;
            if (state.load() == link_state::joined) attempt = 0;  // it had joined: start the delays again
            fall_back(ec ? ec : make_error_code(asio::error::connection_reset));
            ++attempt;
            const duration d = backoff_delay(opts.reconnect, std::min(attempt, 64), rng.next(), previous);
            previous = d;
            pause.expires_after(d);
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
        }
        cmd.reset();
        sub.reset();
    }

    void attach(const gate_set& g);
};

// The observer set on one scope's gates: notes what changed and wakes the strand.
namespace {
struct link_observer final : gate_observer {
    std::weak_ptr<fleet::impl> owner;
    std::shared_ptr<scope_entry> entry;
    template <class F>
    void note(F f) noexcept {
        if (auto p = owner.lock()) {
            try {
                p->note(entry, f);
            } catch (...) {  // a failed allocation loses one report; the next sync repairs it
            }
        }
    }
    void on_breaker_transition(const breaker_transition& t, duration open_for) noexcept override {
        if (t.reason == transition_reason::isolated) return;  // a manual isolation stays local
        note([&](scope_entry& e) {
            if (e.transitions.size() >= 8) e.transitions.pop_front();
            e.transitions.push_back({t.from, t.to, open_for, e.gen.load()});
            if (t.to != breaker_state::closed) {
                e.failures = 0;
                e.reset = false;
            }
        });
    }
    void on_breaker_failure(int) noexcept override {
        note([](scope_entry& e) { ++e.failures; });
    }
    void on_breaker_streak_reset() noexcept override {
        note([](scope_entry& e) {
            e.failures = 0;
            e.reset = true;
        });
    }
    void on_cooldown(std::uint64_t scope, duration remaining) noexcept override {
        note([&](scope_entry& e) {
            if (scope != e.scope) return;
            const time_point until = e.time->now() + remaining;
            if (!e.cooldown_until || *e.cooldown_until < until) e.cooldown_until = until;
        });
    }
    void on_budget(std::int64_t delta) noexcept override {
        note([&](scope_entry& e) { e.budget_delta += delta; });
    }
    // The rate gate's cut handler (rate_gate::on_cut), for this entry's scope.
    void on_cut(std::uint64_t scope, const rate_cut& c) noexcept {
        if (scope != entry->scope) return;
        note([&](scope_entry& e) {
            e.cut = c;
            e.cut_seen = e.rate_gen.load();
        });
    }
};
// The permit source of one scope's onset gate: leases the strand got from
// Redis (drain_onset). Unjoined (connecting, or Redis away), every request
// goes: the process decides alone.
struct link_permits final : onset_permits {
    std::weak_ptr<fleet::impl> owner;
    std::shared_ptr<scope_entry> entry;
    onset_answer take() noexcept override {
        auto p = owner.lock();
        if (!p || p->state.load() != link_state::joined) return onset_answer::go;
        bool ask = false;
        try {
            std::lock_guard lk(p->mu_);
            scope_entry& e = *entry;
            if (!e.leases_ready.empty()) {
                e.leases_held.push_back(e.leases_ready.back().first);
                e.leases_ready.pop_back();
                return onset_answer::held;
            }
            ask = !std::exchange(e.lease_wanted, true);
        } catch (...) {  // a failed allocation: this request goes unleased
            return onset_answer::go;
        }
        if (ask) p->signal();
        return onset_answer::wait;
    }
    void give_back(bool success) noexcept override {
        auto p = owner.lock();
        if (!p) return;
        try {
            std::lock_guard lk(p->mu_);
            scope_entry& e = *entry;
            if (e.leases_held.empty()) return;
            e.leases_back.emplace_back(e.leases_held.back(), success);
            e.leases_held.pop_back();
        } catch (...) {  // the lease expires on its own
            return;
        }
        p->signal();
    }
};
}  // namespace

void fleet::impl::attach(const gate_set& g) {
    auto e = std::make_shared<scope_entry>();
    e->scope = g.scope;
    e->hex = hex16(g.scope);
    e->breaker = g.breaker;
    e->cool = g.cooldown;
    e->budget = g.budget;
    e->time = g.breaker ? &g.breaker->time() : &steady_clock();
    if (g.breaker) {
        e->threshold = opts.failure_threshold > 0 ? opts.failure_threshold : g.breaker->options().config.failure_threshold;
        e->open_timeout = g.breaker->options().config.open_timeout;
    }
    if (g.budget) e->budget_max = std::llround(g.budget->config().max_tokens * 1000.0);
    e->rate = g.rate;
    auto obs = std::make_shared<link_observer>();
    obs->owner = weak_from_this();
    obs->entry = e;
    {
        std::lock_guard lk(mu_);
        entries.push_back(e);
    }
    if (g.breaker) g.breaker->set_observer(obs);
    if (g.cooldown) g.cooldown->set_observer(obs);
    if (g.budget) g.budget->set_observer(obs);
    if (g.rate)
        g.rate->on_cut([obs](std::uint64_t scope, const rate_cut& c) { obs->on_cut(scope, c); });
    if (g.onset && opts.onset_cap > 0) {
        e->onset = g.onset;
        auto permits = std::make_shared<link_permits>();
        permits->owner = weak_from_this();
        permits->entry = e;
        onset_settings os;
        os.window = opts.onset_window;
        g.onset->link(std::move(permits), os);
    }
    signal();  // synced (and its probes gated) by the strand when joined
}

// ---------------------------------------------------------------------------

fleet::fleet(asio::any_io_executor ex, fleet_options opts) {
    if (auto r = opts.validate(); !r) throw resilience::error(r.error());
    impl_ = std::make_shared<impl>(std::move(ex), std::move(opts));
    auto self = impl_;
    asio::co_spawn(impl_->strand, [self]() -> asio::awaitable<void> { co_await self->run(); }, asio::detached);
}

fleet::~fleet() { stop(); }

void fleet::attach(const gate_set& gates) { impl_->attach(gates); }

bool fleet::joined() const noexcept { return impl_->state.load() == link_state::joined; }

std::string fleet::status() const { return impl_->status_text(); }

fleet_stats fleet::stats() const {
    fleet_stats s;
    s.requests = impl_->n_requests.load();
    s.published = impl_->n_published.load();
    s.applied = impl_->n_applied.load();
    s.fallbacks = impl_->n_fallbacks.load();
    s.joins = impl_->n_joins.load();
    s.noscript = impl_->n_noscript.load();
    s.cuts_sent = impl_->n_cuts_sent.load();
    s.cuts_applied = impl_->n_cuts_applied.load();
    s.leases = impl_->n_leases.load();
    s.lease_refusals = impl_->n_lease_refusals.load();
    return s;
}

bool fleet::idle() const noexcept {

    if (impl_->busy.load() || impl_->signalled.load()) return false;
    std::lock_guard lk(impl_->mu_);
    for (auto& e : impl_->entries)
        if (e->failures || e->reset || !e->transitions.empty() || e->cooldown_until || e->cut || e->needs_sync ||
            !e->leases_back.empty())
            return false;
    return true;
}

void fleet::stop() {
    if (impl_->stopped.exchange(true)) return;
    asio::post(impl_->strand, [self = impl_] {
        self->close_all();
        self->wake.cancel();
        self->pause.cancel();
        self->set_gates(false);
    });
}

}  // namespace resilience::redis
