// Turning an HTTP error status into a failure: code, diagnostics, Retry-After.
#include <resilience/http/client.hpp>
#include <resilience/http/retry_after.hpp>

namespace resilience::http {

failure to_failure(const response& r, std::chrono::system_clock::time_point now) {
    failure f;
    f.code = status_to_error(r.status);
    if (!f.code) return f;
    f.diag.http_status = r.status;
    std::string_view b = r.body;
    const std::string first_line = bounded_text(b.substr(0, b.find_first_of("\r\n")));
    if (first_line.empty()) f.diag.message = "HTTP " + std::to_string(r.status);
    else f.diag.message = "HTTP " + std::to_string(r.status) + ": " + first_line;
    if (auto it = r.headers.find(boost::beast::http::field::retry_after); it != r.headers.end())
        f.diag.retry_after = parse_retry_after(it->value(), now);
    return f;
}

result<response> check(response r) {
    if (r.ok()) return r;
    return to_failure(r);
}

}  // namespace resilience::http
