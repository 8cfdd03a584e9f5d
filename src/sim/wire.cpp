#include "wire.hpp"

#include <resilience/sim/server.hpp>

#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/json/serialize.hpp>

#include <openssl/sha.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace resilience::sim {

namespace {

// Parses a decimal number with an optional fraction; false on anything else.
bool parse_decimal(std::string_view s, double& out) {
    if (s.empty() || s.size() > 32) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || c == '.')) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && std::isfinite(out);
}

}  // namespace

result<duration> parse_duration(std::string_view s) {
    auto bad = [&] {
        return failure(make_error_code(errc::invalid_config),
                       "invalid duration \"" + std::string(s.substr(0, 40)) +
                           "\" (expected e.g. 250ms, 2s, 1.5s, 2m, 1h)");
    };
    std::string_view num = s;
    double scale = 1.0;  // seconds per unit
    struct unit { std::string_view suffix; double seconds; };
    static constexpr unit units[] = {{"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}, {"s", 1.0},
                                     {"m", 60.0},  {"h", 3600.0}};
    for (const auto& u : units) {
        if (s.size() > u.suffix.size() && s.ends_with(u.suffix)) {
            num = s.substr(0, s.size() - u.suffix.size());
            scale = u.seconds;
            break;
        }
    }
    double v = 0;
    if (!parse_decimal(num, v)) return bad();
    double secs = v * scale;
    if (secs > 1e9) return bad();
    return std::chrono::duration_cast<duration>(std::chrono::duration<double>(secs));
}

result<processing_time> processing_time::parse(std::string_view s) {
    auto dots = s.find("..");
    if (dots == std::string_view::npos) {
        auto d = parse_duration(s);
        if (!d) return d.error();
        return processing_time::fixed(*d);
    }
    auto a = parse_duration(s.substr(0, dots));
    if (!a) return a.error();
    auto b = parse_duration(s.substr(dots + 2));
    if (!b) return b.error();
    if (*b < *a)
        return failure(make_error_code(errc::invalid_config),
                       "invalid processing range: the maximum is below the minimum");
    return processing_time::uniform(*a, *b);
}

}  // namespace resilience::sim

namespace resilience::sim::detail {

namespace {

void indent(std::string& out, int level) { out.append(static_cast<std::size_t>(level) * 2, ' '); }

void pretty_into(std::string& out, const json::value& v, int level) {
    switch (v.kind()) {
    case json::kind::object: {
        const auto& o = v.get_object();
        if (o.empty()) {
            out += "{}";
            return;
        }
        out += "{\n";
        bool first = true;
        for (const auto& kv : o) {
            if (!first) out += ",\n";
            first = false;
            indent(out, level + 1);
            out += json::serialize(json::string_view(kv.key()));
            out += ": ";
            pretty_into(out, kv.value(), level + 1);
        }
        out += '\n';
        indent(out, level);
        out += '}';
        return;
    }
    case json::kind::array: {
        const auto& a = v.get_array();
        if (a.empty()) {
            out += "[]";
            return;
        }
        out += "[\n";
        bool first = true;
        for (const auto& e : a) {
            if (!first) out += ",\n";
            first = false;
            indent(out, level + 1);
            pretty_into(out, e, level + 1);
        }
        out += '\n';
        indent(out, level);
        out += ']';
        return;
    }
    default:
        out += json::serialize(v);
    }
}

}  // namespace

std::string pretty(const json::value& v) {
    std::string out;
    out.reserve(512);
    pretty_into(out, v, 0);
    out += '\n';
    return out;
}

std::string format_proto_duration(duration d) {
    using namespace std::chrono;
    if (d < duration::zero()) d = duration::zero();
    auto ns = duration_cast<nanoseconds>(d).count();
    auto secs = ns / 1'000'000'000;
    auto frac = ns % 1'000'000'000;
    std::string out = std::to_string(secs);
    if (frac != 0) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "%09lld", static_cast<long long>(frac));
        std::string f(buf);
        while (!f.empty() && f.back() == '0') f.pop_back();
        out += '.';
        out += f;
    }
    out += 's';
    return out;
}

std::string format_rfc3339(std::chrono::system_clock::time_point tp, int digits) {
    using namespace std::chrono;
    auto ns = duration_cast<nanoseconds>(tp.time_since_epoch()).count();
    auto secs = static_cast<std::time_t>(ns / 1'000'000'000);
    auto frac = ns % 1'000'000'000;
    if (frac < 0) {
        frac += 1'000'000'000;
        --secs;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::string out(buf);
    if (digits > 0) {
        char f[16];
        std::snprintf(f, sizeof f, "%09lld", static_cast<long long>(frac));
        out += '.';
        out.append(f, static_cast<std::size_t>(std::min(digits, 9)));
    }
    out += 'Z';
    return out;
}

std::string format_http_date(std::chrono::system_clock::time_point tp) {
    auto secs = std::chrono::system_clock::to_time_t(tp);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    static constexpr const char* days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                             "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
                  months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

std::string sha256_hex(std::string_view data) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * SHA256_DIGEST_LENGTH);
    for (unsigned char c : md) {
        out += hex[c >> 4];
        out += hex[c & 15];
    }
    return out;
}

std::string base64(std::string_view data) {
    namespace b64 = boost::beast::detail::base64;
    std::string out(b64::encoded_size(data.size()), '\0');
    out.resize(b64::encode(out.data(), data.data(), data.size()));
    return out;
}

std::string_view google_status(int s) noexcept {
    switch (s) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 405: return "INVALID_ARGUMENT";
    case 409: return "ALREADY_EXISTS";
    case 413: return "INVALID_ARGUMENT";
    case 429: return "RESOURCE_EXHAUSTED";
    case 499: return "CANCELLED";
    case 500: return "INTERNAL";
    case 501: return "UNIMPLEMENTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return s >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
    }
}

json::object error_object(int http_status, std::string_view message, std::string_view status) {
    json::object e;
    e["code"] = http_status;
    e["message"] = message;
    e["status"] = status.empty() ? google_status(http_status) : status;
    return e;
}

response json_response(int status, const json::value& body, unsigned version, bool keep_alive) {
    response res{static_cast<http::status>(status), version};
    res.set(http::field::content_type, "application/json; charset=UTF-8");
    res.set(http::field::server, "resilience-gemini-sim");
    res.keep_alive(keep_alive);
    res.body() = pretty(body);
    res.prepare_payload();
    return res;
}

response error_response(int http_status, std::string_view message, unsigned version, bool keep_alive,
                        json::array details, std::string_view status) {
    json::object e = error_object(http_status, message, status);
    if (!details.empty()) e["details"] = std::move(details);
    json::object root;
    root["error"] = std::move(e);
    return json_response(http_status, root, version, keep_alive);
}

response text_response(int http_status, std::string_view text, unsigned version, bool keep_alive) {
    response res{static_cast<http::status>(http_status), version};
    res.set(http::field::content_type, "text/plain; charset=UTF-8");
    res.set(http::field::server, "resilience-gemini-sim");
    res.keep_alive(keep_alive);
    res.body() = std::string(text);
    res.prepare_payload();
    return res;
}

std::string requote_single_quotes(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 8);
    char quote = 0;  // the quote that opened the current string, 0 outside strings
    for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (quote == 0) {
            if (c == '\'' || c == '"') {
                quote = c;
                out += '"';
            } else {
                out += c;
            }
            continue;
        }
        if (c == '\\' && i + 1 < s.size()) {
            char n = s[++i];
            if (n == '\'') {
                out += '\'';
            } else {
                out += '\\';
                out += n;
            }
        } else if (c == quote) {
            quote = 0;
            out += '"';
        } else if (c == '"') {
            out += "\\\"";  // a double quote inside a single-quoted string
        } else {
            out += c;
        }
    }
    return out;
}

}  // namespace resilience::sim::detail
