#include <resilience/gemini/client.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/gemini/wire.hpp>

#include <boost/asio/this_coro.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

namespace resilience::gemini {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view default_base_url = "https://generativelanguage.googleapis.com";

// An attempt that is one HTTP request (get, list page, delete,
// generateContent) passes its deadline to the HTTP client, which ends it
// there with errc::attempt_timeout: the pipeline races no timer of its own.
using resilience::detail::self_timed;

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
bool transient_round(const failure& f, const wait_options& o, int max_retries, int& failed_rounds) {
    // Retries disabled: the first failed poll ends the wait with its error.
    if (max_retries == 0) return false;
    const bool transient = f.code == resilience::errc::retry_budget_exhausted || f.code == resilience::errc::circuit_open ||
                           f.diag.gave_up == give_up_reason::budget || f.diag.gave_up == give_up_reason::circuit_open ||
                           (is_retryable(classify(f.code)) && f.diag.gave_up == give_up_reason::max_retries);
    if (!transient) return false;
    ++failed_rounds;
    return o.deadline != time_point::max() || failed_rounds <= o.max_failed_rounds;
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

struct chunk_outcome {
    std::optional<file> done;    // the finalized file
    bool session_lost = false;   // the server no longer knows the session: start again
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
    if (auto problem = resilience::validate(rate_gate); !problem.empty()) return bad_option(problem);
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
    resilience::pipeline pipe;

    std::atomic<std::uint64_t> calls{0}, attempts{0}, retries{0}, gave_up{0}, cooldown_waits{0}, breaker_waits{0},
        breaker_transitions{0}, rate_waits{0}, polls{0};
    std::atomic<std::uint64_t> retries_by_kind[6] = {};

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
            opts.fleet->attach(g);
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

    void count(const event& e) {
        tally(e);
        if (opts.on_event) opts.on_event(e);
    }

    void tally(const event& e) {
        switch (e.type) {
        case event_type::attempt_started: attempts.fetch_add(1, std::memory_order_relaxed); break;
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
    result<file> clean(result<file> r) const {
        if (!r) return clean(std::move(r).error());
        clean(*r);
        return r;
    }
    // An answer as it arrives from the HTTP client.
    result<http::response> received(result<http::response> r) const {
        if (!r && r.error().code == http::errc::response_too_large) {
            failure f = std::move(r).error();
            f.diag.message = f.what() + " (a Gemini answer is read up to " +
                             std::to_string(http.options().max_body_bytes) +
                             " bytes of body, client_options::max_response_bytes, and " +
                             std::to_string(http.options().max_header_bytes) + " bytes of header)";
            return clean(std::move(f));
        }
        if (!r) return clean(std::move(r).error());
        scrub(r->body);
        return r;
    }

    failure from_response(const http::response& r) const {
        return clean(decode_error(r.status, r.body, header(r, "retry-after")));
    }

    // The HTTP client's answer, scrubbed; an exception thrown while sending
    // (Beast refuses a header too long) is the attempt's failure, at once.
    // The attempt's deadline (the earlier of the call's deadline and the
    // per-attempt timeout) bounds the whole request, pool wait included.
    asio::awaitable<result<http::response>> send(http::request req, const attempt_context& a) {
        std::exception_ptr thrown;
        try {
            http::request_options ro(a.deadline);
            co_return received(co_await http.send(std::move(req), std::move(ro)));
        } catch (...) {
            thrown = std::current_exception();
        }
        co_return clean(resilience::detail::failure_from_exception(thrown));
    }

    // One HTTP exchange: a failure for transport errors and non-2xx answers.
    asio::awaitable<result<http::response>> exchange(http::request req, const attempt_context& a) {
        auto r = co_await send(std::move(req), a);
        if (!r) co_return r.error();
        if (!r->ok()) co_return from_response(*r);
        co_return std::move(*r);
    }

    asio::awaitable<result<file>> get_once(const std::string& url, const attempt_context& a) {
        auto r = co_await exchange(make_request(http::verb::get, url), a);
        if (!r) co_return r.error();
        // Cleaned in place: a File is a dozen strings, each move costs.
        result<file> f = parse_file(r->body);
        if (!f) co_return clean(std::move(f).error());
        clean(*f);
        co_return f;
    }

    // One poll of wait_until_active: null to poll again after the pause, or
    // the wait's final result (ACTIVE, FAILED, or a failure that ends it).
    asio::awaitable<std::unique_ptr<result<file>>> poll_round(const std::string& url, const std::string& n,
                                                              const wait_options& o, std::string& last_state,
                                                              int& failed_rounds, int& attempts) {
        // Built per round (in this frame, freed before the pause): a sleeping
        // wait keeps only its options.
        call_setup s;
        if (auto v = setup(s, o, n); !v) co_return std::make_unique<result<file>>(v.error());
        const status_handler& user_status = s.say ? s.say : opts.on_status;
        auto say = [&](std::string_view text) {
            if (user_status) user_status(n + ": " + std::string(text));
        };
        s.call.on_status = user_status ? status_handler(say) : status_handler();
        // The cause of the round's last failed attempt: a round that ends on
        // a gate (breaker, cooldown, deadline) still names what went wrong.
        std::string cause;
        auto op = [&](const attempt_context& a) -> asio::awaitable<result<file>> {
            ++attempts;
            auto r = co_await get_once(url, a);
            if (!r) cause = r.error().what();
            co_return r;
        };
        polls.fetch_add(1, std::memory_order_relaxed);
        const retry_policy& policy = s.policy;
        auto r = co_await pipe.run(op, std::move(s.call));
        if (!r && !cause.empty() && r.error().what().find(cause) == std::string::npos) {
            failure f = r.error();
            f.diag.message = f.what() + " (last error: " + cause + ")";
            r = std::move(f);
        }
        if (!r && transient_round(r.error(), o, policy.max_retries, failed_rounds)) {
            // The service is sick (retries or budget exhausted, breaker open):
            // the wait is not lost to it. Poll again after the pause, bounded
            // by the deadline (or by max_failed_rounds without one).
            // A round refused by a gate (no attempt made) keeps the cause the
            // last attempt met: that is what the wait's final error names.
            constexpr std::string_view failed_prefix = "unknown (last poll failed: ";
            if (!cause.empty() || !last_state.starts_with(failed_prefix))
                last_state = std::string(failed_prefix) + r.error().what() + ")";
            co_return nullptr;
        }
        if (!r) {
            failure f = r.error();
            if (f.diag.gave_up == give_up_reason::deadline || f.code == resilience::errc::deadline_exceeded) {
                f.code = make_error_code(resilience::errc::deadline_exceeded);
                f.diag.message = n + ": deadline reached while waiting for ACTIVE; last state: " + last_state +
                                 " (last error: " + r.error().what() + ")";
                f.diag.attempts = attempts;
            }
            co_return std::make_unique<result<file>>(std::move(f));
        }
        failed_rounds = 0;
        file& f = *r;
        last_state = f.state_text.empty() ? std::string(to_string(f.state)) : f.state_text;
        if (f.state == file_state::active) co_return std::make_unique<result<file>>(std::move(f));
        if (f.state == file_state::failed) {
            failure fl(make_error_code(errc::file_failed));
            fl.diag.message = n + " FAILED: " + (f.error ? f.error->message : std::string("no error given"));
            if (f.error) fl.diag.status = std::to_string(f.error->code);
            fl.diag.attempts = attempts;
            co_return std::make_unique<result<file>>(std::move(fl));
        }
        co_return nullptr;
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
        auto session = co_await d.pipe.run(start_op, cs.call);
        if (!session) co_return session.error();

        std::uint64_t offset = 0;
        bool lost = false;
        for (std::uint64_t round = 0; round < max_rounds && !lost; ++round) {
            auto chunk_op = [&](const attempt_context& a) { return d.upload_chunk(*session, path, size, offset, a); };
            auto c = co_await d.pipe.run(chunk_op, cs.call);
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

asio::awaitable<result<file>> client::get(std::string name, call_options o) {
    impl& d = *impl_;
    d.calls.fetch_add(1, std::memory_order_relaxed);
    auto n = checked_file_name(name);
    if (!n) co_return n.error();
    call_setup cs;
    if (auto v = d.setup(cs, o, *n); !v) co_return v.error();
    const std::string url = d.api_root + "/" + *n;
    auto once = [&](const attempt_context& a) { return d.get_once(url, a); };
    self_timed<decltype(once)> op{once};  // one HTTP request per attempt, bounded by the attempt's deadline
    co_return co_await d.pipe.run(op, std::move(cs.call));
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
        self_timed<decltype(page_op)> op{page_op};
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
    const std::string url = d.api_root + "/" + *n;
    auto once = [&](const attempt_context& a) -> asio::awaitable<result<void>> {
        auto r = co_await d.exchange(d.make_request(http::verb::delete_, url), a);
        if (!r) co_return r.error();
        co_return result<void>();
    };
    self_timed<decltype(once)> op{once};
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
    self_timed<decltype(once)> op{once};
    co_return co_await d.pipe.run(op, std::move(cs.call));
}

asio::awaitable<result<file>> client::wait_until_active(std::string name, wait_options o) {
    impl& d = *impl_;
    // No result<> local here: this frame stays alive while the wait sleeps.
    const std::string n = normalize_file_name(name);
    if (n.empty()) co_return bad_file_name(name);
    std::string().swap(name);  // not needed any more: a sleeping wait keeps no copy of it
    const std::string url = d.api_root + "/" + n;
    if (auto v = validate_wait(o); !v) co_return v.error();
    if (auto v = d.check(o); !v) co_return v.error();
    clock& clk = d.pipe.time();
    // The wait's own lines (the pause between polls), tagged like the polls'
    // (the prefix is built when a line is said: this frame stays small).
    const status_handler& user_status = o.on_status ? o.on_status : d.opts.on_status;
    duration pause = o.poll_initial;
    std::string last_state = "unknown (no answer yet)";
    int failed_rounds = 0;
    int attempts = 0;  // every request the wait made, for its final error
    // This frame is what a wait holds while it sleeps between polls, so it is
    // kept small: each poll runs in poll_round's frame (the retry call, the
    // File and its strings, failures), which is freed before the pause.
    for (;;) {
        if (auto done = co_await d.poll_round(url, n, o, last_state, failed_rounds, attempts))
            co_return std::move(*done);
        // PROCESSING (or a state we do not know, or a failed round): wait and poll again.
        double jitter = 1.0 + o.poll_jitter * (2.0 * d.pipe.next_uniform() - 1.0);
        auto this_pause = std::chrono::duration_cast<duration>(pause * std::max(0.0, jitter));
        const time_point now = clk.now();
        if (o.deadline != time_point::max() && o.deadline - now <= this_pause) {
            failure f(make_error_code(resilience::errc::deadline_exceeded),
                      n + ": deadline reached while waiting for ACTIVE; last state: " + last_state);
            f.diag.attempts = attempts;
            f.diag.gave_up = give_up_reason::deadline;
            co_return f;
        }
        if (user_status)
            user_status((o.tag.empty() ? std::string() : "[" + o.tag + "] ") + n + ": " + last_state +
                        ", next check in " + format_seconds(this_pause));
        if (error_code ec = co_await clk.sleep_until(now + this_pause))
            co_return failure(ec, n + ": wait cancelled; last state: " + last_state);
        auto cs = co_await asio::this_coro::cancellation_state;
        if (cs.cancelled() != asio::cancellation_type::none)
            co_return failure(make_error_code(asio::error::operation_aborted), n + ": wait cancelled; last state: " + last_state);
        pause = std::min<duration>(std::chrono::duration_cast<duration>(pause * o.poll_multiplier), o.poll_max);
    }
}

client_stats client::stats() const noexcept {
    const impl& d = *impl_;
    client_stats s;
    s.calls = d.calls.load();
    s.attempts = d.attempts.load();
    s.retries = d.retries.load();
    for (int i = 0; i < 6; ++i) s.retries_by_kind[i] = d.retries_by_kind[i].load();
    s.gave_up = d.gave_up.load();
    s.cooldown_waits = d.cooldown_waits.load();
    s.breaker_waits = d.breaker_waits.load();
    s.breaker_transitions = d.breaker_transitions.load();
    s.rate_waits = d.rate_waits.load();
    s.polls = d.polls.load();
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
