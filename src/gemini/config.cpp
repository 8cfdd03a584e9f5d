// The GEMINI_* environment (resilience/gemini/config.hpp).
#include <resilience/gemini/config.hpp>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace resilience::gemini {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds day{24LL * 3600 * 1000};

failure bad(std::string msg) { return failure(make_error_code(resilience::errc::invalid_config), std::move(msg)); }

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

// Quotes a value for an error message, shortening absurdly long ones.
std::string quoted(std::string_view v) {
    std::string out = "\"";
    out.append(v.substr(0, 64));
    if (v.size() > 64) out += "...";
    out += '"';
    return out;
}

std::optional<failure> read_int(const env_lookup& env, const char* name, long long lo, long long hi,
                                std::optional<long long>& out) {
    auto raw = env(name);
    if (!raw) return std::nullopt;
    std::string_view v = trim(*raw);
    long long n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec == std::errc::invalid_argument || p != v.data() + v.size())
        return bad(std::string(name) + "=" + quoted(*raw) + " is not an integer");
    if (ec == std::errc::result_out_of_range || n < lo || n > hi)
        return bad(std::string(name) + "=" + quoted(*raw) + " is out of range (" + std::to_string(lo) + ".." +
                   std::to_string(hi) + ")");
    out = n;
    return std::nullopt;
}

}  // namespace

namespace {

result<config> load_config_impl(const config_overrides& o, const env_lookup& env) {
    config c;
    std::optional<long long> n;
    if (auto f = read_int(env, "GEMINI_RETRY_MAX_ATTEMPTS", 0, 1000, n)) return *f;
    if (n) c.retry.max_retries = static_cast<int>(*n);
    n.reset();
    if (auto f = read_int(env, "GEMINI_RETRY_INITIAL_DELAY_MS", 0, day.count(), n)) return *f;
    if (n) c.retry.backoff.initial_delay = milliseconds(*n);
    n.reset();
    if (auto f = read_int(env, "GEMINI_RETRY_MAX_DELAY_MS", 0, day.count(), n)) return *f;
    if (n) c.retry.backoff.max_delay = milliseconds(*n);
    n.reset();
    if (auto raw = env("GEMINI_RETRY_BACKOFF_MULTIPLIER")) {
        std::string_view v = trim(*raw);
        double d = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
        if (v.empty() || ec != std::errc() || p != v.data() + v.size() || !std::isfinite(d))
            return bad("GEMINI_RETRY_BACKOFF_MULTIPLIER=" + quoted(*raw) + " is not a number");
        if (d < 1.0 || d > 1000.0)
            return bad("GEMINI_RETRY_BACKOFF_MULTIPLIER=" + quoted(*raw) + " is out of range (1..1000)");
        c.retry.backoff.multiplier = d;
    }
    if (auto f = read_int(env, "GEMINI_CIRCUIT_BREAKER_THRESHOLD", 1, 1'000'000, n)) return *f;
    if (n) c.breaker.failure_threshold = static_cast<int>(*n);
    n.reset();
    if (auto f = read_int(env, "GEMINI_CIRCUIT_BREAKER_TIMEOUT_MS", 1, day.count(), n)) return *f;
    if (n) c.breaker.open_timeout = milliseconds(*n);
    if (auto raw = env("RESILIENCE_ADAPTIVE_RATE")) {
        std::string v(trim(*raw));
        std::transform(v.begin(), v.end(), v.begin(), [](unsigned char ch) { return std::tolower(ch); });
        if (v == "1" || v == "true" || v == "on")
            c.adaptive_rate = true;
        else if (v == "0" || v == "false" || v == "off")
            c.adaptive_rate = false;
        else
            return bad("RESILIENCE_ADAPTIVE_RATE=" + quoted(*raw) + " is not 1 or 0 (true/false, on/off)");
    }
    if (auto k = env("GEMINI_API_KEY")) {
        if (trim(*k).empty()) return bad("GEMINI_API_KEY is set but empty");
        for (char ch : *k)
            if (static_cast<unsigned char>(ch) < 0x21 || static_cast<unsigned char>(ch) > 0x7e)
                return bad("GEMINI_API_KEY contains a character that cannot travel in an HTTP header");
        c.api_key = *k;
    }
    if (auto u = env("GEMINI_BASE_URL")) {
        // Set but empty is a mistake (an unset variable in a script), not a
        // request for the real service.
        if (trim(*u).empty()) return bad("GEMINI_BASE_URL is set but empty (unset it to use the real service)");
        c.base_url = *u;
    }

    // Code wins over the environment.
    if (o.max_retries) c.retry.max_retries = *o.max_retries;
    if (o.initial_delay) c.retry.backoff.initial_delay = *o.initial_delay;
    if (o.max_delay) c.retry.backoff.max_delay = *o.max_delay;
    if (o.multiplier) c.retry.backoff.multiplier = *o.multiplier;
    if (o.breaker_threshold) c.breaker.failure_threshold = *o.breaker_threshold;
    if (o.breaker_timeout) c.breaker.open_timeout = *o.breaker_timeout;
    if (o.adaptive_rate) c.adaptive_rate = *o.adaptive_rate;
    if (o.api_key) c.api_key = *o.api_key;
    if (o.base_url) {
        if (trim(*o.base_url).empty()) return bad("the base URL is empty");
        c.base_url = *o.base_url;
    }

    if (c.retry.backoff.initial_delay > c.retry.backoff.max_delay) {
        const bool from_env = !o.initial_delay && !o.max_delay;
        if (from_env)
            return bad("GEMINI_RETRY_INITIAL_DELAY_MS (" + std::to_string(c.retry.backoff.initial_delay.count()) +
                       ") is greater than GEMINI_RETRY_MAX_DELAY_MS (" +
                       std::to_string(c.retry.backoff.max_delay.count()) + ")");
    }
    if (auto r = validate(c.retry); !r) return r.error();
    if (auto r = validate(c.breaker); !r) return r.error();
    if (!c.base_url.empty()) {
        auto u = boost::urls::parse_absolute_uri(c.base_url);
        // Shown without query, fragment or credentials: they may carry a key.
        std::string shown = c.base_url.substr(0, c.base_url.find_first_of("?#"));
        if (u && u->has_userinfo()) {
            boost::urls::url stripped(*u);
            stripped.remove_userinfo().remove_query().remove_fragment();
            shown = std::string(stripped.buffer());
        }
        if (!u || (u->scheme() != "http" && u->scheme() != "https") || u->host().empty())
            return bad("GEMINI_BASE_URL=" + quoted(shown) + " is not an http:// or https:// URL");
        if (u->has_query() || u->has_userinfo())
            return bad("GEMINI_BASE_URL=" + quoted(shown) + " must not carry a query or credentials (the API key travels in a header)");
        if (auto problem = base_url_problem(c.base_url); !problem.empty())
            return bad("GEMINI_BASE_URL=" + quoted(shown) + ": " + problem);
    }
    return c;
}

}  // namespace

std::string base_url_problem(std::string_view url) {
    if (url.empty()) return "the base URL is empty";
    auto u = boost::urls::parse_absolute_uri(url);
    if (!u) return "not a URL";
    if (u->scheme_id() != boost::urls::scheme::http && u->scheme_id() != boost::urls::scheme::https)
        return "the scheme is not http or https";
    if (u->host().empty()) return "no host";
    if (u->has_userinfo()) return "carries credentials";
    if (u->has_query()) return "carries a query";
    if (u->has_fragment()) return "carries a fragment";
    // Boost.URL 1.81 reads "host:8a/x" as port 8 and path "a/x": a path after
    // an authority must start with a slash.
    if (!u->encoded_path().empty() && !u->encoded_path().starts_with('/')) return "the port is not a number";
    std::string_view authority = u->encoded_authority();
    std::string_view after_host = authority.substr(std::min(authority.size(), u->encoded_host().size()));
    if (!after_host.empty()) {
        if (after_host.front() != ':') return "not a URL";
        std::string_view port = after_host.substr(1);
        if (port.empty()) return "the port is empty";
        unsigned long n = 0;
        auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
        if (ec != std::errc() || p != port.data() + port.size() || port.size() > 5 || n == 0 || n > 65535)
            return "the port is not a number between 1 and 65535";
    }
    return {};
}

namespace {

// Replaces every occurrence of `secret` in `s`.
void redact(std::string& s, std::string_view secret) {
    if (secret.size() < 6) return;  // too short to be a key; redacting it would garble the message
    for (auto pos = s.find(secret); pos != std::string::npos; pos = s.find(secret, pos + 10))
        s.replace(pos, secret.size(), "<redacted>");
}

}  // namespace

result<config> load_config(const config_overrides& o, const env_lookup& env) {
    auto r = load_config_impl(o, env);
    if (r) return r;
    // The API key's value never appears in an error, even when it was pasted
    // into another variable (a base URL with ?key=..., a key in the wrong place).
    failure f = std::move(r).error();
    if (o.api_key) redact(f.diag.message, trim(*o.api_key));
    if (auto k = env("GEMINI_API_KEY")) redact(f.diag.message, trim(*k));
    return f;
}

}  // namespace resilience::gemini
