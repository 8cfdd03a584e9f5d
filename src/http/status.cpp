// Turning an HTTP error status into a failure: code, diagnostics, pushback.
#include <resilience/http/client.hpp>
#include <resilience/pushback.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace resilience::http {

namespace {

constexpr std::size_t max_message = 512;

std::string bounded(std::string_view s) {
    if (s.size() > max_message) return std::string(s.substr(0, max_message)) + "...";
    return std::string(s);
}

std::string_view string_at(const boost::json::object& o, std::string_view key) {
    if (auto* v = o.if_contains(key); v && v->is_string()) return v->get_string();
    return {};
}

// Fills status, message, quota_id and reason from a Google error envelope
// ({"error": {...}} or [{"error": {...}}]). False if the body is not one.
bool read_google_error(std::string_view body, diagnostics& d) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(body, ec);
    if (ec) return false;
    if (v.is_array() && v.get_array().size() == 1) v = v.get_array()[0];
    if (!v.is_object()) return false;
    auto* e = v.get_object().if_contains("error");
    if (!e || !e->is_object()) return false;
    const auto& err = e->get_object();
    d.status = bounded(string_at(err, "status"));
    d.message = bounded(string_at(err, "message"));
    if (auto* details = err.if_contains("details"); details && details->is_array()) {
        for (const auto& item : details->get_array()) {
            if (!item.is_object()) continue;
            const auto& it = item.get_object();
            std::string_view type = string_at(it, "@type");
            if (type.ends_with("google.rpc.ErrorInfo") && d.reason.empty()) {
                d.reason = bounded(string_at(it, "reason"));
            } else if (type.ends_with("google.rpc.QuotaFailure") && d.quota_id.empty()) {
                // The first quota named, unless a later one is one that no
                // retry window clears (per day, file storage): that one wins.
                if (auto* vs = it.if_contains("violations"); vs && vs->is_array()) {
                    for (const auto& viol : vs->get_array()) {
                        if (!viol.is_object()) continue;
                        auto q = string_at(viol.get_object(), "quotaId");
                        if (q.empty()) continue;
                        const bool lasting = q.find("PerDay") != q.npos || q.find("FileStorage") != q.npos;
                        if (d.quota_id.empty() || lasting) d.quota_id = bounded(q);
                        if (lasting) break;
                    }
                }
            }
        }
    }
    return true;
}

}  // namespace

failure to_failure(const response& r, std::chrono::system_clock::time_point now) {
    failure f;
    f.code = status_to_error(r.status);
    if (!f.code) return f;
    f.diag.http_status = r.status;
    if (!read_google_error(r.body, f.diag)) {
        std::string_view b = r.body;
        auto eol = b.find_first_of("\r\n");
        f.diag.message = bounded(b.substr(0, eol));
    }
    if (f.diag.message.empty()) f.diag.message = "HTTP " + std::to_string(r.status);
    else f.diag.message = "HTTP " + std::to_string(r.status) + ": " + f.diag.message;
    if (auto it = r.headers.find(boost::beast::http::field::retry_after); it != r.headers.end())
        f.diag.retry_after = parse_retry_after(it->value(), now);
    if (!f.diag.retry_after) f.diag.retry_after = parse_retry_info(r.body);
    return f;
}

result<response> check(response r) {
    if (r.ok()) return r;
    return to_failure(r);
}

}  // namespace resilience::http
