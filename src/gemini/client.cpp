#include <resilience/gemini/client.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/gemini/wire.hpp>
#include <resilience/onset_gate.hpp>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/date_time/posix_time/posix_time_types.hpp>
#include <boost/date_time/posix_time/time_parsers.hpp>
#include <boost/intrusive/list.hpp>
#include <boost/intrusive/set.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

namespace resilience::gemini {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view default_base_url = "https://generativelanguage.googleapis.com";

// An attempt that is one HTTP request (get, list page, delete,
// generateContent) passes its deadline to the HTTP client, which ends it
// there with errc::attempt_timeout: the pipeline races no timer of its own.
using resilience::detail::self_timed;

// The answer itself, as send() makes it by default.
struct take_response {
    result<http::response> operator()(http::response& r) const { return std::move(r); }
};

// A factory counting every attempt it makes (client_stats::attempts), made
// by `f`.
template <class F>
struct counted_attempt {
    std::atomic<std::uint64_t>* attempts;
    F f;
    auto operator()(const attempt_context& a) {
        attempts->fetch_add(1, std::memory_order_relaxed);
        return f(a);
    }
};

// The scheme, host and port of an absolute http(s) URL, normalised
// ("https://host:443"); empty if it is not one.
std::string origin_of(std::string_view url) {
    auto u = boost::urls::parse_absolute_uri(url);
    if (!u || u->host().empty() || u->has_userinfo()) return {};
    // Boost.URL 1.81 reads "host:8a/x" as port 8 and path "a/x".
    if (!u->encoded_path().empty() && !u->encoded_path().starts_with('/')) return {};
    std::string scheme(u->scheme());
    for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme != "http" && scheme != "https") return {};
    std::string host(u->encoded_host());
    for (auto& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // The port as written (Boost.URL 1.81's port() drops trailing non-digits).
    std::string_view authority = u->encoded_authority();
    std::string_view rest = authority.substr(std::min(authority.size(), u->encoded_host().size()));
    std::string port(rest.starts_with(':') ? rest.substr(1) : std::string_view());
    if (port.empty()) port = scheme == "https" ? "443" : "80";
    while (port.size() > 1 && port.front() == '0') port.erase(0, 1);
    return scheme + "://" + host + ":" + port;
}

std::string header(const http::response& r, std::string_view name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string() : std::string(it->value());
}

// A poll whose retries ended on a transient failure (retries or budget
// exhausted, breaker open): worth another round while the deadline allows.
bool transient_round(const failure& f, time_point deadline, int max_failed_rounds, int max_retries,
                     int& failed_rounds) {
    // Retries disabled: the first failed poll ends the wait with its error.
    if (max_retries == 0) return false;
    const bool transient = f.code == resilience::errc::retry_budget_exhausted || f.code == resilience::errc::circuit_open ||
                           f.diag.gave_up == give_up_reason::budget || f.diag.gave_up == give_up_reason::circuit_open ||
                           (is_retryable(classify(f.code)) && f.diag.gave_up == give_up_reason::max_retries);
    if (!transient) return false;
    ++failed_rounds;
    return deadline != time_point::max() || failed_rounds <= max_failed_rounds;
}

// The status handler of a call: the call's own or the client's, its lines
// prefixed "[tag] " when the call has a tag.
status_handler tagged(const status_handler& h, const std::string& tag) {
    if (!h || tag.empty()) return h;
    return [h, prefix = "[" + tag + "] "](std::string_view text) { h(prefix + std::string(text)); };
}

// What one call runs with: the pipeline's call options, and the client's
// retry policy with the call's overrides (pointed to by call.policy, so this
// is built in place and never moved).
struct call_setup {
    call_setup() = default;
    call_setup(const call_setup&) = delete;
    call_setup& operator=(const call_setup&) = delete;
    resilience::call_options call;
    retry_policy policy;
    status_handler say;  // the call's own status handler, tagged; empty = the client's
};

constexpr std::chrono::hours day{24};

failure bad_option(std::string msg) { return failure(make_error_code(resilience::errc::invalid_config), std::move(msg)); }

// The wait's own settings, checked like the client's (errc::invalid_config
// naming the field).
result<void> validate_wait(const wait_options& o) {
    auto ms = [](duration d) { return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
    if (o.poll_initial < duration::zero() || o.poll_initial > day)
        return bad_option("wait.poll_initial = " + ms(o.poll_initial) + " ms: must be between 0 and 86400000 ms");
    if (o.poll_max < duration::zero() || o.poll_max > day)
        return bad_option("wait.poll_max = " + ms(o.poll_max) + " ms: must be between 0 and 86400000 ms");
    if (o.poll_initial > o.poll_max)
        return bad_option("wait.poll_initial (" + ms(o.poll_initial) + " ms) is greater than wait.poll_max (" +
                          ms(o.poll_max) + " ms)");
    if (!std::isfinite(o.poll_multiplier) || o.poll_multiplier < 1.0 || o.poll_multiplier > 1000.0)
        return bad_option("wait.poll_multiplier = " + std::to_string(o.poll_multiplier) + ": must be between 1 and 1000");
    if (!std::isfinite(o.poll_jitter) || o.poll_jitter < 0.0 || o.poll_jitter > 1.0)
        return bad_option("wait.poll_jitter = " + std::to_string(o.poll_jitter) + ": must be between 0 and 1");
    if (o.max_failed_rounds < 0)
        return bad_option("wait.max_failed_rounds = " + std::to_string(o.max_failed_rounds) + ": must not be negative");
    return {};
}

failure bad_file_name(const std::string& name) {
    return failure(make_error_code(resilience::errc::invalid_argument), "not a file name: \"" + name.substr(0, 80) + "\"");
}

// "files/ID" for a name, an ID or a file URI; resilience::errc::invalid_argument otherwise.
result<std::string> checked_file_name(const std::string& name) {
    std::string n = normalize_file_name(name);
    if (n.empty()) return bad_file_name(name);
    return n;
}

// Best effort, bounded by the call's deadline: deletes a file that a call
// about to report a failure created. The note for the failure's message says
// what became of it, so that a file left on the server is always named.
asio::awaitable<std::string> discard_created(client& c, const std::string& name, time_point deadline) {
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none)
        co_return " (" + name + " is left on the server: the call was cancelled)";
    auto r = co_await c.remove(name, deadline);
    if (r) co_return " (" + name + " was deleted)";
    co_return " (" + name + " is left on the server: deleting it failed: " + r.error().what() + ")";
}

// ---- The poll scheduler's records (docs/design-notes.md, "Poll scheduler").

namespace bi = boost::intrusive;
using set_hook = bi::set_member_hook<bi::link_mode<bi::safe_link>, bi::optimize_size<true>>;
using list_hook = bi::list_member_hook<bi::link_mode<bi::safe_link>>;

struct poll_stream;

// One wait asleep between polls: its handler, its own limits, and nothing
// else (the options of a wait that sets no handler, tag, retry override or
// admission mode are the client's and are not stored).
struct wait_rec {
    list_hook in_stream;                      // its stream's waits
    set_hook by_deadline;                     // the deadline set, when it has one
    time_point deadline = time_point::max();
    poll_stream* stream = nullptr;
    std::unique_ptr<wait_options> own;        // null: the client's settings
    wait_handler handler;
    std::uint32_t attempts_base = 0;          // the stream's attempts when it joined
    int max_retries = 0;
    int max_failed_rounds = 3;
    int failed_rounds = 0;
    bool done = false;                        // completed: cancellation must leave it alone
};

// The waits on one file: one poll schedule, one request in flight at most.
struct poll_stream {
    set_hook by_time;                         // the due set, while not in flight
    time_point next{};
    duration pause{};                         // the next pause (grows)
    duration poll_max{};
    double multiplier = 1.5;
    double jitter = 0.1;
    const std::string* name = nullptr;        // the key of the stream map
    bi::list<wait_rec, bi::member_hook<wait_rec, list_hook, &wait_rec::in_stream>, bi::constant_time_size<false>>
        waits;
    std::string last_state;                   // empty: no answer yet
    std::int64_t size_bytes = 0;              // the file's sizeBytes, createTime (poll_by_size)
    std::optional<std::chrono::system_clock::time_point> created;
    std::uint32_t attempts = 0;
    bool in_flight = false;

    std::string state_text() const { return last_state.empty() ? "unknown (no answer yet)" : last_state; }
};

struct by_next {
    bool operator()(const poll_stream& a, const poll_stream& b) const noexcept { return a.next < b.next; }
};
struct by_deadline {
    bool operator()(const wait_rec& a, const wait_rec& b) const noexcept { return a.deadline < b.deadline; }
};
using due_set = bi::multiset<poll_stream, bi::member_hook<poll_stream, set_hook, &poll_stream::by_time>,
                             bi::compare<by_next>, bi::constant_time_size<false>>;
using deadline_set = bi::multiset<wait_rec, bi::member_hook<wait_rec, set_hook, &wait_rec::by_deadline>,
                                  bi::compare<by_deadline>, bi::constant_time_size<false>>;

// A wait taken out of the scheduler, to be completed (outside the lock).
struct finished_wait {
    wait_rec* rec;
    result<file> r;
};

// A list round looks this far ahead: a stream due within it counts as due.
constexpr duration list_horizon = std::chrono::seconds(1);

// Polls by size (client_options::poll_by_size): files this large or larger
// are timed and paused; a pause is at most size_pause_max; the earliest time
// a file could be ACTIVE is size_safety of what the lowest rate seen says.
constexpr std::int64_t size_poll_min_bytes = std::int64_t(16) << 20;
constexpr duration size_pause_max = std::chrono::minutes(10);
constexpr double size_safety = 0.8;

using wall_time = std::chrono::system_clock::time_point;

// An RFC 3339 UTC time as the Files API writes it ("2025-01-02T03:04:05.123456Z").
std::optional<wall_time> parse_utc(std::string_view s) {
    if (s.size() < 20 || s.size() > 40 || s.back() != 'Z') return std::nullopt;
    std::string t(s.substr(0, s.size() - 1));
    if (auto dot = t.find('.'); dot != std::string::npos && t.size() - dot > 7) t.resize(dot + 7);  // microseconds
    try {
        const auto pt = boost::posix_time::from_iso_extended_string(t);
        if (pt.is_special()) return std::nullopt;
        const auto us = (pt - boost::posix_time::ptime(boost::gregorian::date(1970, 1, 1))).total_microseconds();
        return wall_time(std::chrono::duration_cast<wall_time::duration>(std::chrono::microseconds(us)));
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

struct chunk_outcome {
    std::optional<file> done;    // the finalized file
    bool session_lost = false;   // the server no longer knows the session: start again
};

// One request's passage through the onset gate (recheck_gates): when the
// gates let it go and whether it holds a permit, given back once it is over
// (or when it ends unanswered). gate is null without a linked fleet.
struct onset_ticket {
    explicit onset_ticket(resilience::onset_gate* g) noexcept : gate(g) {}
    onset_ticket(const onset_ticket&) = delete;
    onset_ticket& operator=(const onset_ticket&) = delete;
    ~onset_ticket() {
        if (held) gate->give_back(false);
    }
    // The answer: a 2xx warms the scope, a 429 or 5xx cools it (a transport
    // failure says nothing about the quota).
    void over(const result<http::response>& r) noexcept {
        if (!gate || admitted == time_point::min()) return;
        const bool ok = r && r->ok();
        if (ok) gate->succeeded(admitted);
        else if (r && (r->status == 429 || r->status >= 500)) gate->failed(admitted);
        if (held) {
            held = false;
            gate->give_back(ok);
        }
    }
    resilience::onset_gate* gate;
    time_point admitted = time_point::min();
    bool held = false;
};

}  // namespace

result<client_options> client_options::from_env(const config_overrides& overrides, const env_lookup& env) {
    auto cfg = load_config(overrides, env);
    if (!cfg) return cfg.error();
    client_options o;
    o.retry = cfg->retry;
    o.breaker = cfg->breaker;
    o.rate_gate.enabled = cfg->adaptive_rate;
    o.api_key = cfg->api_key;
    if (!cfg->base_url.empty()) o.base_url = cfg->base_url;
    if (auto v = o.validate(); !v) return v.error();
    return o;
}

result<void> client_options::validate() const {
    if (auto r = resilience::validate(retry); !r) return r.error();
    if (auto r = resilience::validate(breaker); !r) return r.error();
    if (auto r = resilience::validate(breaker_window); !r) return r.error();
    if (auto r = resilience::validate(budget); !r) return r.error();
    if (auto r = resilience::validate(rate_gate); !r) return r.error();
    // The same rule as GEMINI_API_KEY's; the value is never quoted.
    for (char ch : api_key)
        if (static_cast<unsigned char>(ch) < 0x21 || static_cast<unsigned char>(ch) > 0x7e)
            return bad_option("api_key contains a character that cannot travel in an HTTP header");
    {
        std::string base = base_url;
        while (!base.empty() && base.back() == '/') base.pop_back();
        if (auto problem = base_url_problem(base); !problem.empty()) return bad_option("base URL: " + problem);
    }
    if (api_version.empty() || api_version.size() > 64 ||
        !std::all_of(api_version.begin(), api_version.end(), [](char ch) {
            return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-';
        }))
        return bad_option("api_version must be 1 to 64 letters, digits, '.', '_' or '-'");
    if (request_timeout.count() < 0 || request_timeout > day)
        return bad_option("request_timeout = " + std::to_string(request_timeout.count()) +
                          " ms: must be between 0 and 86400000 ms");
    if (http.request_timeout.count() != 0)
        return bad_option("http.request_timeout must be 0 in a Gemini client: the per-attempt timeout is "
                          "request_timeout (or retry.attempt_timeout)");
    if (chunk_size == 0 || chunk_size % upload_granularity != 0)
        return bad_option("chunk_size must be a positive multiple of 8388608 bytes");
    if (max_response_bytes == 0) return bad_option("max_response_bytes must be positive");
    if (list_max_pages < 1)
        return bad_option("list_max_pages = " + std::to_string(list_max_pages) + ": must be at least 1");
    if (list_max_bytes < 1) return bad_option("list_max_bytes must be at least 1");
    if (auto r = http.validate(); !r) return r.error();
    return {};
}

struct client::impl {
    client_options opts;
    http::client http;
    std::string api_root;  // scheme://host[:port][/prefix]/v1beta
    std::string origin;    // origin_of(api_root): where the key may be sent
    std::string upload_url;
    std::shared_ptr<circuit_breaker> breaker;
    std::shared_ptr<resilience::cooldown> cool = std::make_shared<resilience::cooldown>();
    std::shared_ptr<retry_budget> budget;
    std::shared_ptr<resilience::rate_gate> rate;  // null when off
    // The onset gate of the scope (docs/fleet.md, "The onset cap"): null
    // unless a fleet linked it to its permits.
    std::shared_ptr<resilience::onset_gate> onset;
    resilience::pipeline pipe;
    std::uint64_t scope_key = scope_hash(pipe.options().scope);  // the cooldown scope of every call

    std::atomic<std::uint64_t> calls{0}, attempts{0}, retries{0}, gave_up{0}, cooldown_waits{0}, breaker_waits{0},
        breaker_transitions{0}, rate_waits{0}, polls{0};
    std::atomic<std::uint64_t> retries_by_kind[error_kind_count] = {};

    static http::client_options http_options(const client_options& o) {
        http::client_options h = o.http;
        if (!h.time) h.time = o.time;
        if (o.max_response_bytes > 0) h.max_body_bytes = std::min(h.max_body_bytes, o.max_response_bytes);
        return h;
    }

    // The client's policy: its per-attempt timeout is retry.attempt_timeout
    // when set, else request_timeout (documented in client_options).
    static retry_policy base_policy(const client_options& o) {
        retry_policy p = o.retry;
        if (p.attempt_timeout.count() == 0) p.attempt_timeout = o.request_timeout;
        return p;
    }

    // Checked before anything is built from them.
    static client_options checked(client_options o) {
        if (auto v = o.validate(); !v) throw resilience::error(v.error());
        return o;
    }

    retry_options retry_opts() {
        retry_options r;
        r.policy = base_policy(opts);
        r.on_status = opts.on_status;
        r.time = opts.time;
        r.seed = opts.seed;
        r.on_event = [this](const event& e) { count(e); };
        // Attempts are counted where they are made (counted_attempt): without
        // a client handler, the pipeline's quick path needs no events of a
        // first attempt that succeeds.
        if (!opts.on_event)
            r.event_types = all_events & ~(event_bit(event_type::attempt_started) |
                                           event_bit(event_type::attempt_succeeded));
        r.breaker = breaker;
        r.cooldown = cool;
        r.budget = budget;
        r.rate_gate = rate;
        r.scope = make_scope(host_of(opts.base_url), opts.api_key);
        r.admission = admission_mode::wait;  // calls wait for the breaker, bounded by their deadline
        return r;
    }

    static std::shared_ptr<circuit_breaker> make_breaker(const client_options& o) {
        breaker_options b;
        b.config = o.breaker;
        b.rules = o.breaker_window;
        b.time = o.time;
        return std::make_shared<circuit_breaker>(std::move(b));
    }

    static std::string host_of(const std::string& base) {
        // Named: the parsed view points into it (a temporary would be freed under it).
        const std::string url = base.empty() ? std::string(default_base_url) : base;
        auto u = boost::urls::parse_absolute_uri(url);
        return u ? std::string(u->encoded_authority()) : url;
    }

    impl(asio::any_io_executor ex, client_options o)
        : opts(checked(std::move(o))),
          http(ex, http_options(opts)),
          breaker(make_breaker(opts)),
          budget(std::make_shared<retry_budget>(opts.budget)),
          rate(opts.rate_gate.enabled ? std::make_shared<resilience::rate_gate>(opts.rate_gate) : nullptr),
          pipe(retry_opts()) {
        std::string base = opts.base_url;
        while (!base.empty() && base.back() == '/') base.pop_back();
        auto u = boost::urls::parse_absolute_uri(base);
        const std::string root = std::string(u->scheme()) + "://" + std::string(u->encoded_authority());
        std::string prefix(u->encoded_path());
        while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
        api_root = root + prefix + "/" + opts.api_version;
        upload_url = root + prefix + "/upload/" + opts.api_version + "/files";
        this->origin = origin_of(api_root);
        if (opts.fleet) {
            gate_set g;
            g.scope = scope_hash(pipe.options().scope);
            g.breaker = breaker;
            g.cooldown = cool;
            g.budget = budget;
            g.rate = rate;  // null when the rate gate is off
            g.onset = std::make_shared<resilience::onset_gate>();
            opts.fleet->attach(g);
            if (g.onset->linked()) onset = g.onset;
        }
    }

    // The call's overrides, checked (errc::invalid_config naming the field).
    result<void> check(const call_options& o) const {
        if (o.retry.empty()) return {};
        if (auto v = resilience::validate(o.retry.apply(pipe.options().policy)); !v) {
            failure f = v.error();
            f.diag.message = "call options: " + f.diag.message;
            return f;
        }
        return {};
    }

    // Fills `s` (in place: s.call.policy may point to s.policy) for one call
    // about `subject`; errc::invalid_config when an override is bad.
    result<void> setup(call_setup& s, const call_options& o, std::string subject) {
        s.call.deadline = o.deadline;
        s.call.subject = std::move(subject);
        s.call.admission = o.admission;
        s.call.tag = o.tag;
        if (auto v = check(o); !v) return v;
        if (!o.retry.empty()) {
            s.policy = o.retry.apply(pipe.options().policy);
            s.call.policy = &s.policy;
        } else {
            s.policy = pipe.options().policy;
        }
        // Nothing copied on the common path (the pipeline has the client's).
        if (o.on_status || !o.tag.empty()) {
            s.say = tagged(o.on_status ? o.on_status : opts.on_status, o.tag);
            s.call.on_status = s.say;
        }
        // The call's event handler replaces the client's; the stats still count.
        if (o.on_event) s.call.on_event = [this, &h = o.on_event](const event& e) {
            tally(e);
            h(e);
        };
        return {};
    }

    // Every pipeline factory of the client is one of these two, so that
    // every attempt counts: counted(f), or timed(f) for an attempt that is one
    // HTTP request bounded by the attempt's deadline (self_timed).
    template <class F>
    counted_attempt<F> counted(F f) {
        return {&attempts, std::move(f)};
    }
    template <class F>
    self_timed<counted_attempt<F>> timed(F f) {
        return {counted(std::move(f))};
    }

    void count(const event& e) {
        tally(e);
        if (opts.on_event) opts.on_event(e);
    }

    void tally(const event& e) {
        switch (e.type) {
        case event_type::retry_scheduled:
            retries.fetch_add(1, std::memory_order_relaxed);
            retries_by_kind[static_cast<int>(e.kind)].fetch_add(1, std::memory_order_relaxed);
            break;
        case event_type::gave_up: gave_up.fetch_add(1, std::memory_order_relaxed); break;
        case event_type::cooldown_wait: cooldown_waits.fetch_add(1, std::memory_order_relaxed); break;
        case event_type::breaker_wait: breaker_waits.fetch_add(1, std::memory_order_relaxed); break;
        case event_type::breaker_transition: breaker_transitions.fetch_add(1, std::memory_order_relaxed); break;
        case event_type::rate_wait: rate_waits.fetch_add(1, std::memory_order_relaxed); break;
        default: break;
        }
    }

    // The URL of a file resource ("files/ID"), in one allocation.
    std::string file_url(std::string_view name) const {
        std::string u;
        u.reserve(api_root.size() + 1 + name.size());
        u.append(api_root).append(1, '/').append(name);
        return u;
    }

    http::request make_request(http::verb method, std::string url) const {
        http::request req;
        req.method = method;
        req.url = std::move(url);
        if (!opts.api_key.empty()) req.headers.set("x-goog-api-key", opts.api_key);
        return req;
    }

    // Server-provided text enters the client here: the key is scrubbed from
    // every text taken from an answer before anything parses, prints or stores it.
    void scrub(std::string& text) const { redact_secret(text, opts.api_key); }
    failure clean(failure f) const {
        scrub(f.diag.message);
        scrub(f.diag.status);
        scrub(f.diag.reason);
        scrub(f.diag.quota_id);
        return f;
    }
    // The key may also hide behind JSON escapes: the parsed fields are scrubbed too.
    void clean(file& f) const {
        for (std::string* t : {&f.name, &f.display_name, &f.mime_type, &f.create_time, &f.update_time,
                               &f.expiration_time, &f.sha256_hash, &f.uri, &f.state_text, &f.source})
            scrub(*t);
        if (f.error) scrub(f.error->message);
    }
    // The same for a File read from `body` (an answer already scrubbed): with
    // no escape in it and no key left, no field (each a piece of the body)
    // can hold the key, and nothing is searched again.
    void clean(file& f, std::string_view body) const {
        if (opts.api_key.empty() ||
            (body.find('\\') == std::string_view::npos && body.find(opts.api_key) == std::string_view::npos))
            return;
        clean(f);
    }
    result<file> clean(result<file> r) const {
        if (!r) return clean(std::move(r).error());
        clean(*r);
        return r;
    }
    // A failure as it arrives from the HTTP client (an answer's body is
    // scrubbed in send(), in place).
    failure received(failure f) const {
        if (f.code == http::errc::response_too_large)
            f.diag.message = f.what() + " (a Gemini answer is read up to " +
                             std::to_string(http.options().max_body_bytes) +
                             " bytes of body, client_options::max_response_bytes, and " +
                             std::to_string(http.options().max_header_bytes) + " bytes of header)";
        return clean(std::move(f));
    }

    failure from_response(const http::response& r) const {
        return clean(decode_error(r.status, r.body, header(r, "retry-after")));
    }

    // The HTTP client's answer, scrubbed; an exception thrown while sending
    // (Beast refuses a header too long) is the attempt's failure, at once.
    // The attempt's deadline (the earlier of the call's deadline and the
    // per-attempt timeout) bounds the whole request, pool wait included.
    // `only_ok`: a non-2xx answer is a failure (exchange). `read` makes the
    // result of the answer (the answer itself by default), in this frame.
    template <class Read = take_response>
    asio::awaitable<std::invoke_result_t<Read&, http::response&>> send(http::request req, const attempt_context& a,
                                                                       bool only_ok = false, Read read = {}) {
        std::exception_ptr thrown;
        onset_ticket ticket(onset.get());
        try {
            http::request_options ro(a.deadline);
            ro.gate = [this, &ticket] { return recheck_gates(ticket); };
            result<http::response> r = co_await http.send(std::move(req), std::move(ro));
            ticket.over(r);
            if (!r) co_return received(std::move(r).error());
            scrub(r->body);
            if (only_ok && !r->ok()) co_return from_response(*r);
            co_return read(*r);
        } catch (...) {
            thrown = std::current_exception();
        }
        co_return clean(resilience::detail::failure_from_exception(thrown));
    }

    // Storm onset (docs/design-notes.md, "Poll scheduler"): a request that
    // waited for a pooled connection looks at the gates again right before
    // it is written. A cooldown set meanwhile (a 429 answered another
    // request) holds it, connection kept, until the cooldown's release; a
    // breaker that opened meanwhile ends it unsent (circuit_open, transient:
    // the retry loop then waits at the breaker as any call does). Last, the
    // onset cap (docs/fleet.md): while the scope is cold, a request goes only
    // with the fleet's permit, held until then, connection kept, asking again
    // every onset_settings::recheck. The clock is read once, and only if a
    // cooldown was ever set or a fleet is linked.
    result<time_point> recheck_gates(onset_ticket& t) {
        const bool cooled = !cool->never_deferred();
        const time_point now = cooled || t.gate ? pipe.time().now() : time_point::min();
        if (cooled && !cool->clear_at(now))
            if (auto until = cool->blocked_until(scope_key, now)) {
                cooldown_waits.fetch_add(1, std::memory_order_relaxed);
                return cooldown_release(*until, *until - now, pipe.next_uniform());
            }
        if (breaker->state() == resilience::breaker_state::open)
            return failure(make_error_code(resilience::errc::circuit_open),
                           "the circuit breaker opened while the request waited for a connection; not sent");
        if (!t.gate) return time_point::min();
        if (!t.held && !t.gate->warm(now)) {
            const resilience::onset_answer answer = t.gate->take();
            if (answer == resilience::onset_answer::wait) return now + t.gate->settings().recheck;
            t.held = answer == resilience::onset_answer::held;
        }
        t.admitted = now;
        return time_point::min();
    }

    // One HTTP exchange: a failure for transport errors and non-2xx answers
    // (send's own frame: no coroutine of its own).
    asio::awaitable<result<http::response>> exchange(http::request req, const attempt_context& a) {
        return send(std::move(req), a, true);
    }

    // files.get's one request; the File is read in send's frame (no
    // coroutine of its own).
    asio::awaitable<result<file>> get_once(std::string url, const attempt_context& a) {
        return send(make_request(http::verb::get, std::move(url)), a, true,
                    [this](const http::response& r) { return read_file(r.body); });
    }
    // Cleaned in place: a File is a dozen strings, each move costs.
    result<file> read_file(const std::string& body) const {
        result<file> f = parse_file(body);
        if (!f) f = clean(std::move(f).error());
        else clean(*f, body);
        return f;
    }

    // ------------------------------------------------------------------
    // The poll scheduler (docs/design-notes.md, "Poll scheduler"). Its state
    // is guarded by `smu` (waits start and are cancelled from any thread);
    // polls, list rounds and the one timer run on the client's strand.
    // Handlers are never called under the lock: finished waits are collected
    // and completed afterwards, each on its handler's executor.

    std::mutex smu;
    std::unordered_map<std::string, poll_stream> streams;
    due_set due;                 // streams waiting for their next poll
    deadline_set deadlines;      // waits with a deadline
    std::size_t nwaits = 0;
    std::size_t in_flight = 0;   // polls and list rounds running
    bool sweeping = false;       // a list round runs: no files.get meanwhile
    std::size_t last_pages = 0;  // pages the last complete list round read
    // poll_by_size: the lowest processing time per MiB seen, by file size
    // (large files seen becoming ACTIVE; the 64 largest sizes kept), and the
    // wall time of the client's clock.
    std::map<std::int64_t, double> rates;
    const wall_time wall_origin = std::chrono::system_clock::now();
    const time_point clock_origin = pipe.time().now();
    std::uint32_t sweep_gen = 0;
    bool timer_running = false;
    bool rearm_posted = false;
    time_point armed_at = time_point::min();  // min: the timer is computing its next wake-up
    // The timer coroutine's cancellation signal (emitted on the strand), and
    // whether the client still exists: shared with the coroutine, which may
    // wake after the client is gone.
    struct timer_state {
        asio::cancellation_signal signal;
        bool alive = true;
    };
    std::shared_ptr<timer_state> timer = std::make_shared<timer_state>();
    std::atomic<std::uint64_t> list_pages{0};

    std::size_t poll_slots() const { return std::max<std::size_t>(1, http.options().max_connections_per_origin); }

    ~impl() {
        // Waits still scheduled when the client goes: their records (and
        // handlers, never called) are freed.
        std::lock_guard lk(smu);
        timer->alive = false;
        if (timer_running) timer->signal.emit(asio::cancellation_type::terminal);
        deadlines.clear();
        due.clear();
        for (auto& [name, s] : streams) s.waits.clear_and_dispose([](wait_rec* w) { delete w; });
        streams.clear();
    }

    // Completes finished waits, each on its handler's executor; the record is
    // freed (and the cancellation slot cleared) there, before the handler runs.
    void deliver(std::vector<finished_wait>& out) {
        // Posted to the client's executor, then dispatched to the handler's
        // (its associated executor: any_completion_executor offers no post).
        for (auto& fw : out) {
            auto io_ex = http.get_executor();
            asio::post(io_ex, [io_ex, rec = std::unique_ptr<wait_rec>(fw.rec), r = std::move(fw.r)]() mutable {
                auto ex = asio::get_associated_executor(rec->handler, io_ex);
                asio::dispatch(ex, [rec = std::move(rec), r = std::move(r)]() mutable {
                asio::get_associated_cancellation_slot(rec->handler).clear();
                wait_handler h = std::move(rec->handler);
                rec.reset();
                std::move(h)(std::move(r));
                });
            });
        }
        out.clear();
    }

    // Takes `w` out of the scheduler (locked) and queues its completion. Its
    // stream stays, even empty: the caller drops it (drop_if_idle_locked).
    void finish_locked(wait_rec& w, result<file> r, std::vector<finished_wait>& out) {
        w.done = true;
        poll_stream& s = *w.stream;
        s.waits.erase(s.waits.iterator_to(w));
        if (w.by_deadline.is_linked()) deadlines.erase(deadlines.iterator_to(w));
        --nwaits;
        out.push_back({&w, std::move(r)});
    }

    void drop_if_idle_locked(poll_stream& s) {
        if (s.waits.empty() && !s.in_flight) drop_locked(s);
    }

    void drop_locked(poll_stream& s) {
        if (s.by_time.is_linked()) due.erase(due.iterator_to(s));
        streams.erase(*s.name);
    }

    failure deadline_failure(const poll_stream& s, const wait_rec& w, const failure* last) const {
        failure f(make_error_code(resilience::errc::deadline_exceeded),
                  *s.name + ": deadline reached while waiting for ACTIVE; last state: " + s.state_text() +
                      (last ? " (last error: " + last->what() + ")" : std::string()));
        f.diag.attempts = static_cast<int>(s.attempts - w.attempts_base);
        f.diag.gave_up = give_up_reason::deadline;
        return f;
    }

    // A poll's answer (or failure) for every wait of `s`; then the stream's
    // next poll. Locked. Status lines are collected into `lines` (said by
    // the caller outside the lock).
    void answer_locked(poll_stream& s, result<file> r, time_point now, std::vector<finished_wait>& out,
                       std::vector<std::pair<wait_rec*, std::string>>& lines) {
        if (r && (r->state == file_state::active || r->state == file_state::failed)) {
            s.last_state = r->state_text.empty() ? std::string(to_string(r->state)) : r->state_text;
            if (r->state == file_state::active) {
                learn_rate_locked(*r);
                while (!s.waits.empty()) {
                    wait_rec& w = s.waits.front();
                    // The last wait takes the File itself.
                    if (&w == &s.waits.back()) finish_locked(w, std::move(r), out);
                    else finish_locked(w, result<file>(*r), out);
                }
                return;
            }
            while (!s.waits.empty()) {
                wait_rec& w = s.waits.front();
                failure fl(make_error_code(errc::file_failed));
                fl.diag.message = *s.name + " FAILED: " + (r->error ? r->error->message : std::string("no error given"));
                if (r->error) fl.diag.status = std::to_string(r->error->code);
                fl.diag.attempts = static_cast<int>(s.attempts - w.attempts_base);
                finish_locked(w, std::move(fl), out);
            }
            return;
        }
        if (r) {
            s.last_state = r->state_text.empty() ? std::string(to_string(r->state)) : r->state_text;
            for (auto& w : s.waits) w.failed_rounds = 0;
            s.size_bytes = r->size_bytes;
            if (!s.created) s.created = parse_utc(r->create_time);
        } else {
            const failure& f = r.error();
            constexpr std::string_view failed_prefix = "unknown (last poll failed: ";
            std::string before = s.state_text();
            for (auto it = s.waits.begin(); it != s.waits.end();) {
                wait_rec& w = *it++;
                if (transient_round(f, w.deadline, w.max_failed_rounds, w.max_retries, w.failed_rounds)) continue;
                if (f.diag.gave_up == give_up_reason::deadline || f.code == resilience::errc::deadline_exceeded) {
                    failure d = f;
                    d.code = make_error_code(resilience::errc::deadline_exceeded);
                    d.diag.message = *s.name + ": deadline reached while waiting for ACTIVE; last state: " + before +
                                     " (last error: " + f.what() + ")";
                    d.diag.attempts = static_cast<int>(s.attempts - w.attempts_base);
                    finish_locked(w, std::move(d), out);
                } else {
                    finish_locked(w, failure(f), out);
                }
            }
            if (s.waits.empty()) return;
            // A round refused by a gate (no attempt made) keeps the cause the
            // last attempt met: that is what the wait's final error names.
            if (f.diag.attempts > 0 || !s.last_state.starts_with(failed_prefix))
                s.last_state = std::string(failed_prefix) + f.what() + ")";
        }
        // PROCESSING (or a state we do not know, or a failed round): the next poll.
        const double jitter = 1.0 + s.jitter * (2.0 * pipe.next_uniform() - 1.0);
        // A large file's long pause (poll_by_size); after it, polls every poll_max.
        const duration by_size = r ? size_pause_locked(s, now) : duration::zero();
        const auto this_pause =
            std::max(std::chrono::duration_cast<duration>(s.pause * std::max(0.0, jitter)), by_size);
        for (auto it = s.waits.begin(); it != s.waits.end();) {
            wait_rec& w = *it++;
            if (w.deadline != time_point::max() && w.deadline - now <= this_pause) {
                finish_locked(w, deadline_failure(s, w, nullptr), out);
                continue;
            }
            lines.emplace_back(&w, s.state_text() + ", next check in " + format_seconds(this_pause));
        }
        if (s.waits.empty()) return;
        s.next = now + this_pause;
        s.pause = by_size > duration::zero()
                      ? s.poll_max
                      : std::min<duration>(std::chrono::duration_cast<duration>(s.pause * s.multiplier), s.poll_max);
        if (!s.by_time.is_linked()) due.insert(s);
    }

    // poll_by_size: a large file that became ACTIVE tells how fast the
    // server processes (the lowest processing time per MiB is kept).
    void learn_rate_locked(const file& f) {
        if (!opts.poll_by_size || f.size_bytes < size_poll_min_bytes) return;
        const auto c = parse_utc(f.create_time), u = parse_utc(f.update_time);
        if (!c || !u || *u <= *c) return;
        const double s_per_mib = std::chrono::duration<double>(*u - *c).count() /
                                 (static_cast<double>(f.size_bytes) / (1024.0 * 1024.0));
        auto [it, fresh] = rates.try_emplace(f.size_bytes, s_per_mib);
        if (!fresh) it->second = std::min(it->second, s_per_mib);
        if (rates.size() > 64) rates.erase(rates.begin());
    }

    // poll_by_size: the pause before a large PROCESSING file's next poll, to
    // shortly (a poll_max) before the earliest time it could be ACTIVE: its
    // createTime plus size_safety of its size at the lowest rate seen for
    // files at least as large (a fixed part of the processing time makes a
    // smaller file's rate too high for a larger one); at most size_pause_max,
    // and a poll_max before any of its waits' deadline. Zero when no file at
    // least as large was seen or the file is small.
    duration size_pause_locked(const poll_stream& s, time_point now) const {
        if (!opts.poll_by_size || s.size_bytes < size_poll_min_bytes || !s.created) return duration::zero();
        double min_s_per_mib = 0;
        for (auto it = rates.lower_bound(s.size_bytes); it != rates.end(); ++it)
            if (min_s_per_mib <= 0 || it->second < min_s_per_mib) min_s_per_mib = it->second;
        if (min_s_per_mib <= 0) return duration::zero();
        const double mib = static_cast<double>(s.size_bytes) / (1024.0 * 1024.0);
        const double earliest_s = std::min(size_safety * min_s_per_mib * mib, 1e9);  // seconds after createTime
        const wall_time earliest =
            *s.created + std::chrono::duration_cast<wall_time::duration>(std::chrono::duration<double>(earliest_s));
        const wall_time wall_now = wall_origin + std::chrono::duration_cast<wall_time::duration>(now - clock_origin);
        duration lead = std::min<duration>(std::chrono::duration_cast<duration>(earliest - wall_now) - s.poll_max,
                                           size_pause_max);
        for (const auto& w : s.waits)
            if (w.deadline != time_point::max()) lead = std::min<duration>(lead, w.deadline - now - s.poll_max);
        return std::max(lead, duration::zero());
    }

    void say_lines(std::vector<std::pair<wait_rec*, std::string>>& lines, std::unique_lock<std::mutex>& lk) {
        // Said under the lock would let a handler that starts a wait deadlock;
        // the records stay valid because only the strand (this thread) or a
        // cancellation frees them, and a cancelled record is freed on its
        // handler's executor after a post: copy what is needed first.
        if (lines.empty()) return;
        struct line {
            status_handler h;
            std::string text;
        };
        std::vector<line> todo;
        const poll_stream* last_stream = nullptr;
        bool client_said = false;
        for (auto& [w, text] : lines) {
            if (w->stream != last_stream) {
                last_stream = w->stream;
                client_said = false;
            }
            if (w->own && (w->own->on_status || !w->own->tag.empty())) {
                const status_handler& h = w->own->on_status ? w->own->on_status : opts.on_status;
                if (h)
                    todo.push_back({h, (w->own->tag.empty() ? std::string() : "[" + w->own->tag + "] ") +
                                           *w->stream->name + ": " + text});
            } else if (!client_said) {
                client_said = true;
                if (opts.on_status) todo.push_back({opts.on_status, *w->stream->name + ": " + text});
            }
        }
        lines.clear();
        lk.unlock();
        for (auto& l : todo) l.h(l.text);
        lk.lock();
    }

    // The earliest moment the timer must act at; max() = nothing to do.
    time_point next_wake_locked() const {
        time_point t = time_point::max();
        if (!deadlines.empty()) t = deadlines.begin()->deadline;
        if (!sweeping && in_flight < poll_slots() && !due.empty()) t = std::min(t, due.begin()->next);
        return t;
    }

    // Ends expired waits and starts what is due: a list round when it pays,
    // else files.get polls up to the pool's bound; then arms the timer.
    void pump_locked(std::vector<finished_wait>& out) {
        const time_point now = pipe.time().now();
        while (!deadlines.empty() && deadlines.begin()->deadline <= now) {
            wait_rec& w = *deadlines.begin();
            poll_stream& s = *w.stream;
            finish_locked(w, deadline_failure(s, w, nullptr), out);
            drop_if_idle_locked(s);
        }
        if (!sweeping && in_flight < poll_slots() && !due.empty() && due.begin()->next <= now) {
            if (opts.poll_list_min_waits > 0 && streams.size() >= opts.poll_list_min_waits) {
                // A round of the list costs its pages; it pays when more
                // streams are due (within the horizon) than that.
                const std::size_t pages = last_pages ? last_pages : (streams.size() + 99) / 100;
                std::size_t n = 0;
                for (auto it = due.begin(); it != due.end() && it->next <= now + list_horizon && n <= pages; ++it) ++n;
                if (n > pages) {
                    sweeping = true;
                    ++in_flight;
                    // Posted: the strand may be running this very code (under the lock).
                    asio::post(http.internal_executor(), [this, n] {
                        asio::co_spawn(http.internal_executor(), sweep(n), [](std::exception_ptr e) {
                            if (e) std::rethrow_exception(e);
                        });
                    });
                }
            }
            while (!sweeping && in_flight < poll_slots() && !due.empty() && due.begin()->next <= now) {
                poll_stream& s = *due.begin();
                due.erase(due.iterator_to(s));
                s.in_flight = true;
                ++in_flight;
                asio::post(http.internal_executor(), [this, &s] {
                    asio::co_spawn(http.internal_executor(), poll(s), [](std::exception_ptr e) {
                        if (e) std::rethrow_exception(e);
                    });
                });
            }
        }
        arm_locked();
    }

    // The one timer: a coroutine on the strand asleep on the client's clock
    // until the next wake-up; woken early (cancelled) when an earlier one
    // appears; gone when nothing is scheduled.
    void arm_locked() {
        const time_point t = next_wake_locked();
        if (t == time_point::max()) {
            // Nothing left to wait for: a timer still asleep would keep the
            // io_context busy until its old wake-up. Woken, it ends.
            if (timer_running && armed_at != time_point::min()) wake_timer_locked();
            return;
        }
        if (!timer_running) {
            timer_running = true;
            armed_at = time_point::min();
            asio::post(http.internal_executor(), [this, t = timer] {
                if (!t->alive) return;
                asio::co_spawn(http.internal_executor(), timer_loop(t),
                               asio::bind_cancellation_slot(t->signal.slot(), [](std::exception_ptr e) {
                                   if (e) std::rethrow_exception(e);
                               }));
            });
        } else if (t < armed_at) {
            wake_timer_locked();
        }
    }

    void wake_timer_locked() {
        if (!rearm_posted) {
            rearm_posted = true;
            asio::post(http.internal_executor(), [this, t = timer] {
                if (!t->alive) return;
                {
                    std::lock_guard lk(smu);
                    rearm_posted = false;
                }
                t->signal.emit(asio::cancellation_type::terminal);
            });
        }
    }

    asio::awaitable<void> timer_loop(std::shared_ptr<timer_state> t_state) {
        clock& clk = pipe.time();
        std::vector<finished_wait> out;
        for (;;) {
            time_point t;
            {
                std::lock_guard lk(smu);
                t = next_wake_locked();
                if (t == time_point::max()) {
                    timer_running = false;
                    co_return;
                }
                armed_at = t;
            }
            co_await asio::this_coro::reset_cancellation_state();
            (void)co_await clk.sleep_until(t);
            if (!t_state->alive) co_return;  // the client is gone
            {
                std::lock_guard lk(smu);
                armed_at = time_point::min();
                pump_locked(out);
            }
            deliver(out);
        }
    }

    // What a poll or list round runs with: the oldest wait's retry overrides
    // and admission, the latest deadline, status and events to every wait.
    struct poll_fanout {
        std::vector<status_handler> say;
        std::vector<event_handler> events;
        bool own_events = false;
    };
    result<void> poll_setup_locked(poll_stream& s, call_setup& cs, poll_fanout& fan) {
        call_options co;
        time_point latest = time_point::min();
        bool client_status = false, client_events = false;
        for (auto& w : s.waits) {
            latest = std::max(latest, w.deadline);
            if (w.own && (w.own->on_status || !w.own->tag.empty())) fan.say.push_back(tagged(w.own->on_status ? w.own->on_status : opts.on_status, w.own->tag));
            else client_status = true;
            if (w.own && w.own->on_event) {
                fan.events.push_back(w.own->on_event);
                fan.own_events = true;
            } else {
                client_events = true;
            }
        }
        if (client_status && opts.on_status) fan.say.push_back(opts.on_status);
        if (client_events && opts.on_event) fan.events.push_back(opts.on_event);
        co.deadline = s.waits.empty() ? time_point::max() : latest;
        if (!s.waits.empty() && s.waits.front().own) {
            const wait_options& first = *s.waits.front().own;
            co.retry = first.retry;
            co.admission = first.admission;
            co.tag = first.tag;
        }
        return setup(cs, co, *s.name);
    }

    // One files.get for every wait on a file.
    asio::awaitable<void> poll(poll_stream& s) {
        call_setup cs;
        poll_fanout fan;
        std::string url;
        result<void> ok;
        {
            std::lock_guard lk(smu);
            ok = poll_setup_locked(s, cs, fan);
            url = file_url(*s.name);
        }
        const std::string& name = *s.name;
        auto say = [&](std::string_view text) {
            for (auto& h : fan.say)
                if (h) h(name + ": " + std::string(text));
        };
        cs.call.on_status = fan.say.empty() ? status_handler() : status_handler(say);
        if (fan.own_events) cs.call.on_event = [this, &fan](const event& e) {
            tally(e);
            for (auto& h : fan.events) h(e);
        };
        // The cause of the round's last failed attempt: a round that ends on
        // a gate (breaker, cooldown, deadline) still names what went wrong.
        std::string cause;
        auto op = [&](const attempt_context& a) -> asio::awaitable<result<file>> {
            {
                std::lock_guard lk(smu);
                ++s.attempts;
            }
            auto r = co_await get_once(url, a);
            if (!r) cause = r.error().what();
            co_return r;
        };
        result<file> r = failure();
        std::exception_ptr thrown;
        if (!ok) {
            r = ok.error();
        } else {
            polls.fetch_add(1, std::memory_order_relaxed);
            try {
                auto counted_op = counted(op);
                r = co_await pipe.run(counted_op, std::move(cs.call));
            } catch (...) {
                thrown = std::current_exception();
                r = resilience::detail::failure_from_exception(thrown);
            }
        }
        if (!r && !cause.empty() && r.error().what().find(cause) == std::string::npos) {
            failure f = r.error();
            f.diag.message = f.what() + " (last error: " + cause + ")";
            r = std::move(f);
        }
        std::vector<finished_wait> out;
        std::vector<std::pair<wait_rec*, std::string>> lines;
        {
            std::unique_lock lk(smu);
            s.in_flight = false;
            --in_flight;
            if (!s.waits.empty()) answer_locked(s, std::move(r), pipe.time().now(), out, lines);
            drop_if_idle_locked(s);  // `s` may be gone from here on
            say_lines(lines, lk);
            pump_locked(out);
        }
        deliver(out);
        if (thrown) std::rethrow_exception(thrown);
    }

    // A list round: files.list pages answer every stream they show (a
    // stream not in flight); a due stream the pages do not show falls back to
    // files.get afterwards. Given up when it has read more pages than polls
    // were due (`due_n`): then single gets are cheaper.
    asio::awaitable<void> sweep(std::size_t due_n) {
        call_setup cs;
        (void)setup(cs, call_options(), "files.list");
        std::string token;
        std::set<std::string> seen;
        std::size_t pages = 0;
        bool complete = false;
        std::vector<finished_wait> out;
        std::vector<std::pair<wait_rec*, std::string>> lines;
        std::exception_ptr thrown;
        try {
            for (; pages < static_cast<std::size_t>(opts.list_max_pages) && pages <= due_n;) {
                boost::urls::url u(api_root + "/files");
                u.params().set("pageSize", "100");
                if (!token.empty()) u.params().set("pageToken", token);
                const std::string url(u.buffer());
                auto op = [&](const attempt_context& a) -> asio::awaitable<result<file_page>> {
                    auto r = co_await exchange(make_request(http::verb::get, url), a);
                    if (!r) co_return r.error();
                    co_return parse_file_page(r->body);
                };
                auto counted_op = counted(op);
                auto p = co_await pipe.run(counted_op, cs.call);
                if (!p) break;
                ++pages;
                list_pages.fetch_add(1, std::memory_order_relaxed);
                {
                    std::unique_lock lk(smu);
                    const time_point now = pipe.time().now();
                    for (auto& f : p->files) {
                        clean(f);
                        auto it = streams.find(f.name);
                        if (it == streams.end()) continue;
                        poll_stream& s = it->second;
                        if (s.in_flight || s.waits.empty()) continue;
                        if (s.by_time.is_linked()) due.erase(due.iterator_to(s));
                        answer_locked(s, result<file>(std::move(f)), now, out, lines);
                        drop_if_idle_locked(s);
                    }
                    say_lines(lines, lk);
                }
                deliver(out);
                if (p->next_page_token.empty()) {
                    complete = true;
                    break;
                }
                if (p->next_page_token.size() > 4096 || !seen.insert(p->next_page_token).second) break;
                token = std::move(p->next_page_token);
            }
        } catch (...) {
            thrown = std::current_exception();
        }
        {
            std::lock_guard lk(smu);
            sweeping = false;
            --in_flight;
            // An incomplete round tells at least how many pages there are.
            last_pages = complete ? pages : std::max(last_pages, pages + 1);
            pump_locked(out);
        }
        deliver(out);
        if (thrown) std::rethrow_exception(thrown);
    }

    // Cancellation of one wait (any thread): it leaves at once.
    void cancel(wait_rec* w) {
        std::vector<finished_wait> out;
        {
            std::lock_guard lk(smu);
            if (w->done) return;
            poll_stream& s = *w->stream;
            finish_locked(*w,
                          failure(make_error_code(asio::error::operation_aborted),
                                  *s.name + ": wait cancelled; last state: " + s.state_text()),
                          out);
            drop_if_idle_locked(s);
            arm_locked();
        }
        deliver(out);
    }

    // `opts` null: the defaults. Kept by the record only when it sets
    // something the client's settings do not cover.
    void start_wait(std::string n, std::unique_ptr<wait_options> opts, wait_handler h) {
        static const wait_options defaults;
        const wait_options& o = opts ? *opts : defaults;
        auto w = std::make_unique<wait_rec>();
        w->deadline = o.deadline;
        w->max_failed_rounds = o.max_failed_rounds;
        w->max_retries = o.retry.max_retries ? *o.retry.max_retries : pipe.options().policy.max_retries;
        const duration initial = o.poll_initial, poll_max = o.poll_max;
        const double mult = o.poll_multiplier, jit = o.poll_jitter;
        if (o.on_status || o.on_event || !o.tag.empty() || !o.retry.empty() || o.admission)
            w->own = std::move(opts);
        w->handler.swap(h);  // (Boost 1.81: any_completion_handler's move assignment recurses)
        wait_rec* rec = w.release();
        auto slot = asio::get_associated_cancellation_slot(rec->handler);
        if (slot.is_connected())
            slot.assign([this, rec](asio::cancellation_type t) {
                if (t != asio::cancellation_type::none) cancel(rec);
            });
        std::vector<finished_wait> out;
        {
            std::lock_guard lk(smu);
            const time_point now = pipe.time().now();
            auto [it, inserted] = streams.try_emplace(std::move(n));
            poll_stream& s = it->second;
            if (inserted) {
                s.name = &it->first;
                s.pause = initial;
                s.poll_max = poll_max;
                s.multiplier = mult;
                s.jitter = jit;
                s.next = now;  // the first poll at once
                due.insert(s);
            } else {
                // A shared stream polls for its most impatient wait.
                s.poll_max = std::min(s.poll_max, poll_max);
                s.multiplier = std::min(s.multiplier, mult);
                s.pause = std::min(s.pause, initial);
                if (s.by_time.is_linked() && s.next > now + initial) {
                    due.erase(due.iterator_to(s));
                    s.next = now + initial;
                    due.insert(s);
                }
            }
            rec->stream = &s;
            rec->attempts_base = s.attempts;
            s.waits.push_back(*rec);
            ++nwaits;
            if (rec->deadline != time_point::max()) deadlines.insert(*rec);
            pump_locked(out);
        }
        deliver(out);
    }

    // A wait refused at its start (bad name or option): completed at once,
    // never inside the initiating call.
    void refuse(wait_handler h, failure f) {
        auto io_ex = http.get_executor();
        asio::post(io_ex, [io_ex, h = std::move(h), f = std::move(f)]() mutable {
            auto ex = asio::get_associated_executor(h, io_ex);
            asio::dispatch(ex, [h = std::move(h), f = std::move(f)]() mutable {
                std::move(h)(result<file>(std::move(f)));
            });
        });
    }

    asio::awaitable<result<std::string>> upload_start(std::uint64_t size, const std::string& mime,
                                                      const std::string& display, const attempt_context& a) {
        http::request req = make_request(http::verb::post, upload_url);
        req.headers.set("X-Goog-Upload-Protocol", "resumable");
        req.headers.set("X-Goog-Upload-Command", "start");
        req.headers.set("X-Goog-Upload-Header-Content-Length", std::to_string(size));
        req.headers.set("X-Goog-Upload-Header-Content-Type", mime);
        req.headers.set(bhttp::field::content_type, "application/json");
        req.body = make_upload_start_body(display);
        auto r = co_await exchange(std::move(req), a);
        if (!r) co_return r.error();
        std::string session = header(*r, "x-goog-upload-url");
        if (session.empty())
            co_return failure(make_error_code(http::errc::malformed_response),
                              "upload start answer has no x-goog-upload-url header");
        // The key goes with every request to the session URL: only to the
        // origin it was configured for (scheme, host and port).
        if (origin_of(session) != origin)
            co_return failure(make_error_code(errc::untrusted_url),
                              "the server named an upload session URL outside the configured origin " + origin +
                                  "; not followed (the API key is sent only to the configured origin)");
        co_return session;
    }

    // Sends the chunk at `offset`; on a retry, first asks the server how much it has.
    asio::awaitable<result<chunk_outcome>> upload_chunk(const std::string& session, const std::string& path,
                                                        std::uint64_t size, std::uint64_t& offset,
                                                        const attempt_context& a) {
        if (a.attempt > 0) {
            http::request q = make_request(http::verb::post, session);
            q.headers.set("X-Goog-Upload-Command", "query");
            auto r = co_await send(std::move(q), a);
            if (!r) co_return r.error();
            if (r->status == 404 || r->status == 410 || (r->status >= 400 && r->status < 500 && r->status != 429)) {
                chunk_outcome lost;
                lost.session_lost = true;
                co_return lost;
            }
            if (!r->ok()) co_return from_response(*r);
            std::string st = header(*r, "x-goog-upload-status");
            if (st == "final") {
                auto f = clean(parse_file(r->body));
                if (!f) co_return f.error();
                chunk_outcome done;
                done.done = std::move(*f);
                co_return done;
            }
            if (st != "active") {
                chunk_outcome lost;
                lost.session_lost = true;
                co_return lost;
            }
            std::string received = header(*r, "x-goog-upload-size-received");
            auto n = parse_upload_size_received(received, size);
            if (!n) co_return n.error();
            offset = *n;
        }
        const std::uint64_t len = std::min<std::uint64_t>(opts.chunk_size, size - offset);
        const bool last = offset + len == size;
        http::request req = make_request(http::verb::post, session);
        req.headers.set("X-Goog-Upload-Command", last ? "upload, finalize" : "upload");
        req.headers.set("X-Goog-Upload-Offset", std::to_string(offset));
        http::file_range range;
        range.path = path;
        range.offset = offset;
        range.length = len;
        req.file = std::move(range);
        auto r = co_await exchange(std::move(req), a);
        if (!r) co_return r.error();
        std::string st = header(*r, "x-goog-upload-status");
        chunk_outcome out;
        if (st == "final" || (last && st.empty())) {
            auto f = clean(parse_file(r->body));
            if (!f)
                co_return failure(f.error().code, f.error().what() +
                                                      " (the upload was finalised: the server may have stored the file)");
            out.done = std::move(*f);
        } else if (st == "active" && last) {
            // Finalised, yet the server says the session is still open: ask
            // again on the retry schedule (a query, then the finalize), never
            // in a tight loop, and only as often as retries allow.
            co_return failure(make_error_code(http::errc::malformed_response),
                              "the server answered \"active\" to the final chunk instead of finalising the upload");
        } else if (st == "active") {
            offset += len;
        } else if (st == "cancelled") {
            out.session_lost = true;
        } else {
            co_return failure(make_error_code(http::errc::malformed_response),
                              "upload chunk answer has no valid x-goog-upload-status header");
        }
        co_return out;
    }
};

client::client(asio::any_io_executor ex, client_options opts) : impl_(std::make_unique<impl>(ex, std::move(opts))) {}
client::~client() = default;

asio::awaitable<result<file>> client::upload(std::string path, upload_options o) {
    impl& d = *impl_;
    d.calls.fetch_add(1, std::memory_order_relaxed);
    // Refused before anything is sent: a missing, unreadable or special file
    // (a FIFO or a device would block or never end).
    const std::string shown = terminal_safe(path);
    std::error_code fec;
    const auto st = std::filesystem::status(path, fec);
    if (fec || !std::filesystem::exists(st))
        co_return failure(make_error_code(resilience::errc::invalid_argument),
                          "cannot read " + shown + ": " + (fec ? fec.message() : std::string("no such file")));
    if (!std::filesystem::is_regular_file(st))
        co_return failure(make_error_code(resilience::errc::invalid_argument), "cannot upload " + shown + ": not a regular file");
    if (!std::ifstream(path, std::ios::binary).is_open())
        co_return failure(make_error_code(resilience::errc::invalid_argument), "cannot read " + shown + ": permission denied");
    const std::uint64_t size = std::filesystem::file_size(path, fec);
    if (fec) co_return failure(make_error_code(resilience::errc::invalid_argument), "cannot read " + shown + ": " + fec.message());
    if (!o.display_name.empty() && !is_valid_utf8(o.display_name))
        co_return failure(make_error_code(resilience::errc::invalid_argument), "the display name is not UTF-8 text");
    const std::string mime = o.mime_type.empty() ? std::string(mime_type_for(path)) : o.mime_type;
    // A file name that is not UTF-8 cannot travel in JSON: its stray bytes
    // are written as \xNN escapes.
    std::string display = o.display_name.empty() ? std::filesystem::path(path).filename().string() : o.display_name;
    if (!is_valid_utf8(display)) display = terminal_safe(display);

    call_setup cs;
    if (auto v = d.setup(cs, o, display); !v) co_return v.error();
    const retry_policy& policy = cs.policy;
    // A lost session is started again at most twice, and not at all when
    // retries are disabled.
    const int session_restarts = std::min(2, policy.max_retries);
    // Chunk rounds of one session: each chunk, and a rewind per retry allowed.
    const std::uint64_t chunks = size / d.opts.chunk_size + 1;
    const std::uint64_t max_rounds = 2 * chunks + static_cast<std::uint64_t>(policy.max_retries) + 2;
    for (int session_try = 0;; ++session_try) {
        auto start_op = [&](const attempt_context& a) { return d.upload_start(size, mime, display, a); };
        auto counted_start = d.counted(start_op);
        auto session = co_await d.pipe.run(counted_start, cs.call);
        if (!session) co_return session.error();

        std::uint64_t offset = 0;
        bool lost = false;
        for (std::uint64_t round = 0; round < max_rounds && !lost; ++round) {
            auto chunk_op = [&](const attempt_context& a) { return d.upload_chunk(*session, path, size, offset, a); };
            auto counted_chunk = d.counted(chunk_op);
            auto c = co_await d.pipe.run(counted_chunk, cs.call);
            if (!c) co_return c.error();
            if (c->done && c->done->state == file_state::failed) {
                // The server stored the file as FAILED: the upload failed, and
                // the file it left behind is deleted (best effort).
                const std::string stored = c->done->name;
                failure f(make_error_code(errc::file_failed),
                          "upload of " + display + ": the server stored the file as FAILED: " +
                              (c->done->error ? c->done->error->message : std::string("no error given")));
                if (c->done->error) f.diag.status = std::to_string(c->done->error->code);
                const std::string note = co_await discard_created(*this, stored, o.deadline);
                f.diag.message += note;
                co_return f;
            }
            if (c->done) co_return std::move(*c->done);
            lost = c->session_lost;
        }
        if (!lost)
            co_return failure(make_error_code(http::errc::malformed_response),
                              "upload of " + display + ": the server did not finalise the upload after " +
                                  std::to_string(max_rounds) + " chunk requests");
        if (session_try >= session_restarts)
            co_return failure(make_error_code(http::errc::malformed_response),
                              "upload of " + display + ": the server lost the upload session" +
                                  (session_restarts ? " " + std::to_string(session_try + 1) + " times" : std::string()));
    }
}

namespace {
// files.get with call options of its own (a retry override, handlers, a tag).
asio::awaitable<result<file>> get_with_setup(client::impl& d, std::string name, call_options o) {
    d.calls.fetch_add(1, std::memory_order_relaxed);
    auto n = checked_file_name(name);
    if (!n) co_return n.error();
    call_setup cs;
    if (auto v = d.setup(cs, o, *n); !v) co_return v.error();
    const std::string url = d.file_url(*n);
    auto once = [&](const attempt_context& a) { return d.get_once(url, a); };
    auto op = d.timed(once);  // one HTTP request per attempt, bounded by the attempt's deadline
    co_return co_await d.pipe.run(op, std::move(cs.call));
}
}  // namespace

// Not a coroutine: a call that sets at most its deadline and admission mode
// is the pipeline's own operation (one frame fewer, the File moved twice
// less), its factory owning the URL.
asio::awaitable<result<file>> client::get(std::string name, call_options o) {
    impl& d = *impl_;
    if (!o.retry.empty() || o.on_status || o.on_event || !o.tag.empty()) return get_with_setup(d, std::move(name), std::move(o));
    auto n = checked_file_name(name);
    if (!n) return get_with_setup(d, std::move(name), std::move(o));
    d.calls.fetch_add(1, std::memory_order_relaxed);
    // One HTTP request per attempt, bounded by the attempt's deadline; its
    // URL made per attempt, straight into the request.
    auto attempts_of = [&d](std::string file) {
        return d.timed([&d, file = std::move(file)](const attempt_context& a) { return d.get_once(d.file_url(file), a); });
    };
    // No handler would hear the subject (the client's counts only): no call
    // options at all, the pipeline's cheapest form.
    if (!d.opts.on_event && o.deadline == time_point::max() && !o.admission) return d.pipe.run(attempts_of(std::move(*n)));
    resilience::call_options call;  // as setup() fills it for such options
    call.deadline = o.deadline;
    call.admission = o.admission;
    call.subject = *n;
    return d.pipe.run(attempts_of(std::move(*n)), std::move(call));
}

asio::awaitable<result<std::vector<file>>> client::list(call_options o) {
    impl& d = *impl_;
    d.calls.fetch_add(1, std::memory_order_relaxed);
    call_setup cs;
    if (auto v = d.setup(cs, o, "files.list"); !v) co_return v.error();
    std::vector<file> all;
    std::string token;
    std::set<std::string> seen;  // every page token followed: a revisited one is a cycle
    std::uint64_t bytes = 0;
    for (int page = 0; page < d.opts.list_max_pages; ++page) {
        boost::urls::url u(d.api_root + "/files");
        u.params().set("pageSize", "100");
        if (!token.empty()) u.params().set("pageToken", token);
        const std::string url(u.buffer());
        auto page_op = [&](const attempt_context& a) -> asio::awaitable<result<file_page>> {
            auto r = co_await d.exchange(d.make_request(http::verb::get, url), a);
            if (!r) co_return r.error();
            bytes += r->body.size();
            if (bytes > d.opts.list_max_bytes)
                co_return failure(make_error_code(http::errc::response_too_large),
                                  "files.list: the pages add up to more than " + std::to_string(d.opts.list_max_bytes) +
                                      " bytes (list_max_bytes)");
            co_return parse_file_page(r->body);
        };
        auto op = d.timed(page_op);
        auto p = co_await d.pipe.run(op, cs.call);
        if (!p) co_return p.error();
        for (auto& f : p->files) {
            d.clean(f);
            all.push_back(std::move(f));
        }
        if (p->next_page_token.empty()) co_return all;
        if (p->next_page_token.size() > 4096)
            co_return failure(make_error_code(http::errc::malformed_response), "files.list: a page token longer than 4096 bytes");
        if (!seen.insert(p->next_page_token).second)
            co_return failure(make_error_code(http::errc::malformed_response),
                              "files.list: the server sent a page token again after " + std::to_string(page + 1) +
                                  " pages (the pages cycle)");
        token = std::move(p->next_page_token);
    }
    co_return failure(make_error_code(http::errc::malformed_response),
                      "files.list did not end after " + std::to_string(d.opts.list_max_pages) + " pages (list_max_pages)");
}

asio::awaitable<result<void>> client::remove(std::string name, call_options o) {
    impl& d = *impl_;
    d.calls.fetch_add(1, std::memory_order_relaxed);
    auto n = checked_file_name(name);
    if (!n) co_return n.error();
    call_setup cs;
    if (auto v = d.setup(cs, o, *n); !v) co_return v.error();
    const std::string url = d.file_url(*n);
    auto once = [&](const attempt_context& a) -> asio::awaitable<result<void>> {
        auto r = co_await d.exchange(d.make_request(http::verb::delete_, url), a);
        if (!r) co_return r.error();
        co_return result<void>();
    };
    auto op = d.timed(once);
    co_return co_await d.pipe.run(op, std::move(cs.call));
}

asio::awaitable<result<generate_result>> client::generate_content(std::string model, std::vector<content> contents,
                                                                  call_options o) {
    impl& d = *impl_;
    d.calls.fetch_add(1, std::memory_order_relaxed);
    std::string_view m = model;
    if (m.starts_with("models/")) m.remove_prefix(7);
    if (!is_valid_model_name(m)) co_return failure(make_error_code(resilience::errc::invalid_argument), "not a model name: \"" + model.substr(0, 80) + "\"");
    call_setup cs;
    if (auto v = d.setup(cs, o, "models/" + std::string(m)); !v) co_return v.error();
    const std::string url = d.api_root + "/models/" + std::string(m) + ":generateContent";
    const std::string body = make_generate_request(contents);
    auto once = [&](const attempt_context& a) -> asio::awaitable<result<generate_result>> {
        http::request req = d.make_request(http::verb::post, url);
        req.headers.set(bhttp::field::content_type, "application/json");
        req.body = body;
        auto r = co_await d.exchange(std::move(req), a);
        if (!r) co_return r.error();
        auto g = parse_generate_result(r->body);
        if (g) {
            d.scrub(g->text);
            d.scrub(g->finish_reason);
            d.scrub(g->model_version);
        }
        co_return g;
    };
    auto op = d.timed(once);
    co_return co_await d.pipe.run(op, std::move(cs.call));
}

void client::start_wait(std::string name, std::unique_ptr<wait_options> opts, wait_handler h) {
    impl& d = *impl_;
    static const wait_options defaults;
    const wait_options& o = opts ? *opts : defaults;
    std::string n = normalize_file_name(name);
    if (n.empty()) return d.refuse(std::move(h), bad_file_name(name));
    if (auto v = validate_wait(o); !v) return d.refuse(std::move(h), v.error());
    if (auto v = d.check(o); !v) return d.refuse(std::move(h), v.error());
    d.start_wait(std::move(n), std::move(opts), std::move(h));
}

// No coroutine: the operation is started by the awaiting coroutine (or any
// other completion token) straight into the scheduler.
wait_operation client::wait_until_active(std::string name, const wait_options& o) {
    return wait_operation(*this, std::move(name), std::make_unique<wait_options>(o));
}
wait_operation client::wait_until_active(std::string name, wait_options&& o) {
    return wait_operation(*this, std::move(name), std::make_unique<wait_options>(std::move(o)));
}
wait_operation client::wait_until_active(std::string name) { return wait_operation(*this, std::move(name), nullptr); }

client_stats client::stats() const noexcept {
    const impl& d = *impl_;
    client_stats s;
    s.calls = d.calls.load();
    s.attempts = d.attempts.load();
    s.retries = d.retries.load();
    for (std::size_t i = 0; i < error_kind_count; ++i) s.retries_by_kind[i] = d.retries_by_kind[i].load();
    s.gave_up = d.gave_up.load();
    s.cooldown_waits = d.cooldown_waits.load();
    s.breaker_waits = d.breaker_waits.load();
    s.breaker_transitions = d.breaker_transitions.load();
    s.rate_waits = d.rate_waits.load();
    s.polls = d.polls.load();
    s.poll_list_pages = d.list_pages.load();
    {
        std::lock_guard lk(impl_->smu);
        s.waits = d.nwaits;
        s.poll_streams = d.streams.size();
    }
    return s;
}

resilience::breaker_state client::breaker_state() const noexcept { return impl_->breaker->state(); }
circuit_breaker& client::breaker() noexcept { return *impl_->breaker; }
http::client& client::http() noexcept { return impl_->http; }
resilience::pipeline& client::pipeline() noexcept { return impl_->pipe; }
clock& client::time() noexcept { return impl_->pipe.time(); }
const client_options& client::options() const noexcept { return impl_->opts; }
asio::any_io_executor client::get_executor() const noexcept { return impl_->http.get_executor(); }

}  // namespace resilience::gemini
