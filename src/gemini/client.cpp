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

namespace resilience::gemini {
namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

constexpr std::string_view default_base_url = "https://generativelanguage.googleapis.com";

// Removes every occurrence of the key from a text that may have come from the
// server, so that it can never reach a log line.
void scrub(std::string& text, const std::string& key) {
    if (key.empty()) return;
    for (std::size_t pos; (pos = text.find(key)) != std::string::npos;) text.replace(pos, key.size(), "[redacted]");
}

bool valid_model(std::string_view m) {
    if (m.empty() || m.size() > 128) return false;
    return std::all_of(m.begin(), m.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
               c == '_';
    });
}

std::string header(const http::response& r, std::string_view name) {
    auto it = r.headers.find(name);
    return it == r.headers.end() ? std::string() : std::string(it->value());
}

// A poll whose retries ended on a transient failure (retries or budget
// exhausted, breaker open): worth another round while the deadline allows.
bool transient_round(const failure& f, const wait_options& o, int& failed_rounds) {
    const bool transient = f.code == errc::retry_budget_exhausted || f.code == errc::circuit_open ||
                           f.diag.gave_up == give_up_reason::budget || f.diag.gave_up == give_up_reason::circuit_open ||
                           (is_retryable(classify(f.code)) && f.diag.gave_up == give_up_reason::max_retries);
    if (!transient) return false;
    ++failed_rounds;
    return o.deadline != time_point::max() || failed_rounds <= o.max_failed_rounds;
}

// The options of one API call through the pipeline.
call_options make_call(time_point deadline, std::string subject, const retry_policy* policy = nullptr,
                       status_handler on_status = status_handler()) {
    call_options call;
    call.deadline = deadline;
    call.subject = std::move(subject);
    call.policy = policy;
    call.on_status = std::move(on_status);
    return call;
}

failure bad_file_name(const std::string& name) {
    return failure(make_error_code(errc::invalid_argument), "not a file name: \"" + name.substr(0, 80) + "\"");
}

// "files/ID" for a name, an ID or a file URI; errc::invalid_argument otherwise.
result<std::string> checked_file_name(const std::string& name) {
    std::string n = normalize_file_name(name);
    if (n.empty()) return bad_file_name(name);
    return n;
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
    o.api_key = cfg->api_key;
    if (!cfg->base_url.empty()) o.base_url = cfg->base_url;
    return o;
}

struct client::impl {
    client_options opts;
    http::client http;
    std::string api_root;  // scheme://host[:port][/prefix]/v1beta
    std::string upload_url;
    std::shared_ptr<circuit_breaker> breaker;
    std::shared_ptr<resilience::cooldown> cool = std::make_shared<resilience::cooldown>();
    std::shared_ptr<retry_budget> budget;
    resilience::pipeline pipe;

    std::atomic<std::uint64_t> calls{0}, attempts{0}, retries{0}, gave_up{0}, cooldown_waits{0}, breaker_waits{0},
        breaker_transitions{0}, polls{0};
    std::atomic<std::uint64_t> retries_by_kind[6] = {};

    static http::client_options http_options(const client_options& o) {
        http::client_options h = o.http;
        if (!h.time) h.time = o.time;
        return h;
    }

    retry_options retry_opts() {
        retry_options r;
        r.policy = opts.retry;
        if (opts.request_timeout.count() > 0) r.policy.attempt_timeout = opts.request_timeout;
        r.on_status = opts.on_status;
        r.time = opts.time;
        r.seed = opts.seed;
        r.on_event = [this](const event& e) { count(e); };
        r.breaker = breaker;
        r.cooldown = cool;
        r.budget = budget;
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
        : opts(std::move(o)),
          http(ex, http_options(opts)),
          breaker(make_breaker(opts)),
          budget(std::make_shared<retry_budget>(opts.budget)),
          pipe(retry_opts()) {
        std::string base = opts.base_url.empty() ? std::string(default_base_url) : opts.base_url;
        while (!base.empty() && base.back() == '/') base.pop_back();
        auto u = boost::urls::parse_absolute_uri(base);
        if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->has_query())
            throw resilience::error(failure(make_error_code(errc::invalid_config),
                                            "base URL is not an http:// or https:// URL without a query"));
        std::string origin = std::string(u->scheme()) + "://" + std::string(u->encoded_authority());
        std::string prefix(u->encoded_path());
        while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
        api_root = origin + prefix + "/" + opts.api_version;
        upload_url = origin + prefix + "/upload/" + opts.api_version + "/files";
        if (opts.chunk_size == 0 || opts.chunk_size % upload_granularity != 0)
            throw resilience::error(failure(make_error_code(errc::invalid_config),
                                            "chunk_size must be a positive multiple of 8388608 bytes"));
    }

    void count(const event& e) {
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
        default: break;
        }
        if (opts.on_event) opts.on_event(e);
    }

    http::request make_request(http::verb method, std::string url, const attempt_context& a) const {
        http::request req;
        req.method = method;
        req.url = std::move(url);
        if (!opts.api_key.empty()) req.headers.set("x-goog-api-key", opts.api_key);
        req.deadline = a.deadline;
        return req;
    }

    failure clean(failure f) const {
        scrub(f.diag.message, opts.api_key);
        return f;
    }

    failure from_response(const http::response& r) const {
        return clean(decode_error(r.status, r.body, header(r, "retry-after")));
    }

    // One HTTP exchange: a failure for transport errors and non-2xx answers.
    asio::awaitable<result<http::response>> exchange(http::request req) {
        auto r = co_await http.send(std::move(req));
        if (!r) co_return clean(r.error());
        if (!r->ok()) co_return from_response(*r);
        co_return std::move(*r);
    }

    asio::awaitable<result<file>> get_once(const std::string& url, const attempt_context& a) {
        auto r = co_await exchange(make_request(http::verb::get, url, a));
        if (!r) co_return r.error();
        co_return parse_file(r->body);
    }

    // One poll of wait_until_active: null to poll again after the pause, or
    // the wait's final result (ACTIVE, FAILED, or a failure that ends it).
    asio::awaitable<std::unique_ptr<result<file>>> poll_round(const std::string& url, const std::string& n,
                                                              const wait_options& o, const status_handler& user_status,
                                                              std::string& last_state, int& failed_rounds) {
        auto say = [&](std::string_view text) {
            if (user_status) user_status(n + ": " + std::string(text));
        };
        auto op = [&](const attempt_context& a) { return get_once(url, a); };
        polls.fetch_add(1, std::memory_order_relaxed);
        auto r = co_await pipe.run(op, make_call(o.deadline, n, o.retry, user_status ? status_handler(say) : status_handler()));
        if (!r && transient_round(r.error(), o, failed_rounds)) {
            // The service is sick (retries or budget exhausted, breaker open):
            // the wait is not lost to it. Poll again after the pause, bounded
            // by the deadline (or by max_failed_rounds without one).
            last_state = "unknown (last poll failed: " + r.error().what() + ")";
            co_return nullptr;
        }
        if (!r) {
            failure f = r.error();
            if (f.diag.gave_up == give_up_reason::deadline || f.code == errc::deadline_exceeded) {
                f.code = make_error_code(errc::deadline_exceeded);
                f.diag.message = n + ": deadline reached while waiting for ACTIVE; last state: " + last_state +
                                 " (last error: " + r.error().what() + ")";
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
            scrub(fl.diag.message, opts.api_key);
            co_return std::make_unique<result<file>>(std::move(fl));
        }
        co_return nullptr;
    }

    asio::awaitable<result<std::string>> upload_start(std::uint64_t size, const std::string& mime,
                                                      const std::string& display, const attempt_context& a) {
        http::request req = make_request(http::verb::post, upload_url, a);
        req.headers.set("X-Goog-Upload-Protocol", "resumable");
        req.headers.set("X-Goog-Upload-Command", "start");
        req.headers.set("X-Goog-Upload-Header-Content-Length", std::to_string(size));
        req.headers.set("X-Goog-Upload-Header-Content-Type", mime);
        req.headers.set(bhttp::field::content_type, "application/json");
        req.body = make_upload_start_body(display);
        auto r = co_await exchange(std::move(req));
        if (!r) co_return r.error();
        std::string session = header(*r, "x-goog-upload-url");
        if (session.empty())
            co_return failure(make_error_code(errc::malformed_response),
                              "upload start answer has no x-goog-upload-url header");
        co_return session;
    }

    // Sends the chunk at `offset`; on a retry, first asks the server how much it has.
    asio::awaitable<result<chunk_outcome>> upload_chunk(const std::string& session, const std::string& path,
                                                        std::uint64_t size, std::uint64_t& offset,
                                                        const attempt_context& a) {
        if (a.attempt > 0) {
            http::request q = make_request(http::verb::post, session, a);
            q.headers.set("X-Goog-Upload-Command", "query");
            auto r = co_await http.send(std::move(q));
            if (!r) co_return clean(r.error());
            if (r->status == 404 || r->status == 410 || (r->status >= 400 && r->status < 500 && r->status != 429)) {
                chunk_outcome lost;
                lost.session_lost = true;
                co_return lost;
            }
            if (!r->ok()) co_return from_response(*r);
            std::string st = header(*r, "x-goog-upload-status");
            if (st == "final") {
                auto f = parse_file(r->body);
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
            std::uint64_t n = 0;
            auto [p, ec] = std::from_chars(received.data(), received.data() + received.size(), n);
            if (received.empty() || ec != std::errc() || p != received.data() + received.size() || n > size)
                co_return failure(make_error_code(errc::malformed_response),
                                  "upload query answer has no valid x-goog-upload-size-received");
            offset = n;
        }
        const std::uint64_t len = std::min<std::uint64_t>(opts.chunk_size, size - offset);
        const bool last = offset + len == size;
        http::request req = make_request(http::verb::post, session, a);
        req.headers.set("X-Goog-Upload-Command", last ? "upload, finalize" : "upload");
        req.headers.set("X-Goog-Upload-Offset", std::to_string(offset));
        http::file_range range;
        range.path = path;
        range.offset = offset;
        range.length = len;
        req.file = std::move(range);
        auto r = co_await exchange(std::move(req));
        if (!r) co_return r.error();
        std::string st = header(*r, "x-goog-upload-status");
        chunk_outcome out;
        if (st == "final" || (last && st.empty())) {
            auto f = parse_file(r->body);
            if (!f) co_return f.error();
            out.done = std::move(*f);
        } else if (st == "active") {
            offset += len;
        } else if (st == "cancelled") {
            out.session_lost = true;
        } else {
            co_return failure(make_error_code(errc::malformed_response),
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
    std::error_code fec;
    const std::uint64_t size = std::filesystem::file_size(path, fec);
    if (fec) co_return failure(make_error_code(errc::invalid_argument), "cannot read " + path + ": " + fec.message());
    const std::string mime = o.mime_type.empty() ? std::string(mime_type_for(path)) : o.mime_type;
    const std::string display =
        o.display_name.empty() ? std::filesystem::path(path).filename().string() : o.display_name;

    for (int session_try = 0;; ++session_try) {
        auto start_op = [&](const attempt_context& a) { return d.upload_start(size, mime, display, a); };
        auto session = co_await d.pipe.run(start_op, make_call(o.deadline, display, o.retry, o.on_status));
        if (!session) co_return session.error();

        std::uint64_t offset = 0;
        for (;;) {
            auto chunk_op = [&](const attempt_context& a) { return d.upload_chunk(*session, path, size, offset, a); };
            auto c = co_await d.pipe.run(chunk_op, make_call(o.deadline, display, o.retry, o.on_status));
            if (!c) co_return c.error();
            if (c->done) co_return std::move(*c->done);
            if (c->session_lost) break;
        }
        if (session_try >= 2)
            co_return failure(make_error_code(errc::malformed_response),
                              "upload of " + display + ": the server lost the upload session three times");
    }
}

asio::awaitable<result<file>> client::get(std::string name, time_point deadline) {
    impl& d = *impl_;
    d.calls.fetch_add(1, std::memory_order_relaxed);
    auto n = checked_file_name(name);
    if (!n) co_return n.error();
    const std::string url = d.api_root + "/" + *n;
    auto op = [&](const attempt_context& a) { return d.get_once(url, a); };
    co_return co_await d.pipe.run(op, make_call(deadline, *n));
}

asio::awaitable<result<std::vector<file>>> client::list(time_point deadline) {
    impl& d = *impl_;
    d.calls.fetch_add(1, std::memory_order_relaxed);
    std::vector<file> all;
    std::string token;
    for (int page = 0; page < 100000; ++page) {
        boost::urls::url u(d.api_root + "/files");
        u.params().set("pageSize", "100");
        if (!token.empty()) u.params().set("pageToken", token);
        const std::string url(u.buffer());
        auto op = [&](const attempt_context& a) -> asio::awaitable<result<file_page>> {
            auto r = co_await d.exchange(d.make_request(http::verb::get, url, a));
            if (!r) co_return r.error();
            co_return parse_file_page(r->body);
        };
        auto p = co_await d.pipe.run(op, make_call(deadline, "files.list"));
        if (!p) co_return p.error();
        for (auto& f : p->files) all.push_back(std::move(f));
        if (p->next_page_token.empty()) co_return all;
        if (p->next_page_token == token)
            co_return failure(make_error_code(errc::malformed_response), "files.list returned the same page token twice");
        token = std::move(p->next_page_token);
    }
    co_return failure(make_error_code(errc::malformed_response), "files.list did not end after 100000 pages");
}

asio::awaitable<result<void>> client::remove(std::string name, time_point deadline) {
    impl& d = *impl_;
    d.calls.fetch_add(1, std::memory_order_relaxed);
    auto n = checked_file_name(name);
    if (!n) co_return n.error();
    const std::string url = d.api_root + "/" + *n;
    auto op = [&](const attempt_context& a) -> asio::awaitable<result<void>> {
        auto r = co_await d.exchange(d.make_request(http::verb::delete_, url, a));
        if (!r) co_return r.error();
        co_return result<void>();
    };
    co_return co_await d.pipe.run(op, make_call(deadline, *n));
}

asio::awaitable<result<generate_result>> client::generate_content(std::string model, std::vector<content> contents,
                                                                  time_point deadline, const retry_policy* retry,
                                                                  status_handler on_status) {
    impl& d = *impl_;
    d.calls.fetch_add(1, std::memory_order_relaxed);
    std::string_view m = model;
    if (m.starts_with("models/")) m.remove_prefix(7);
    if (!valid_model(m)) co_return failure(make_error_code(errc::invalid_argument), "not a model name: \"" + model.substr(0, 80) + "\"");
    const std::string url = d.api_root + "/models/" + std::string(m) + ":generateContent";
    const std::string body = make_generate_request(contents);
    auto op = [&](const attempt_context& a) -> asio::awaitable<result<generate_result>> {
        http::request req = d.make_request(http::verb::post, url, a);
        req.headers.set(bhttp::field::content_type, "application/json");
        req.body = body;
        auto r = co_await d.exchange(std::move(req));
        if (!r) co_return r.error();
        co_return parse_generate_result(r->body);
    };
    co_return co_await d.pipe.run(op, make_call(deadline, "models/" + std::string(m), retry, std::move(on_status)));
}

asio::awaitable<result<file>> client::wait_until_active(std::string name, wait_options o) {
    impl& d = *impl_;
    // No result<> local here: this frame stays alive while the wait sleeps.
    const std::string n = normalize_file_name(name);
    if (n.empty()) co_return bad_file_name(name);
    std::string().swap(name);  // not needed any more: a sleeping wait keeps no copy of it
    const std::string url = d.api_root + "/" + n;
    clock& clk = d.pipe.time();
    const status_handler& user_status = o.on_status ? o.on_status : d.opts.on_status;
    duration pause = o.poll_initial;
    std::string last_state = "unknown (no answer yet)";
    int failed_rounds = 0;
    // This frame is what a wait holds while it sleeps between polls, so it is
    // kept small: each poll runs in poll_round's frame (the retry call, the
    // File and its strings, failures), which is freed before the pause.
    for (;;) {
        if (auto done = co_await d.poll_round(url, n, o, user_status, last_state, failed_rounds))
            co_return std::move(*done);
        // PROCESSING (or a state we do not know, or a failed round): wait and poll again.
        double jitter = 1.0 + o.poll_jitter * (2.0 * d.pipe.next_uniform() - 1.0);
        auto this_pause = std::chrono::duration_cast<duration>(pause * std::max(0.0, jitter));
        const time_point now = clk.now();
        if (o.deadline != time_point::max() && o.deadline - now <= this_pause)
            co_return failure(make_error_code(errc::deadline_exceeded),
                              n + ": deadline reached while waiting for ACTIVE; last state: " + last_state);
        if (user_status) user_status(n + ": " + last_state + ", next check in " + format_seconds(this_pause));
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
    s.polls = d.polls.load();
    return s;
}

resilience::breaker_state client::breaker_state() const noexcept { return impl_->breaker->state(); }
circuit_breaker& client::breaker() noexcept { return *impl_->breaker; }
http::client& client::http() noexcept { return impl_->http; }
resilience::pipeline& client::pipeline() noexcept { return impl_->pipe; }
clock& client::time() noexcept { return impl_->pipe.time(); }
const client_options& client::options() const noexcept { return impl_->opts; }

}  // namespace resilience::gemini
