#ifndef RESILIENCE_SRC_SIM_WIRE_HPP
#define RESILIENCE_SRC_SIM_WIRE_HPP

// Wire helpers of the simulator: Google-style pretty JSON, error envelopes,
// durations and timestamps as the service writes them, hashes.

#include <resilience/diagnostics.hpp>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace resilience::sim::detail {

namespace http = boost::beast::http;
namespace json = boost::json;
using response = http::response<http::string_body>;

/// JSON with 2-space indents and a trailing newline, as Google's frontends write it.
std::string pretty(const json::value& v);

/// "15s", "34.4s", "0.25s" (google.protobuf.Duration JSON form).
std::string format_proto_duration(duration d);

/// RFC 3339 UTC with the given number of fractional digits (6 or 9).
std::string format_rfc3339(std::chrono::system_clock::time_point tp, int digits);
/// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
std::string format_http_date(std::chrono::system_clock::time_point tp);

/// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
std::string base64(std::string_view data);

/// The status string of a Google error for an HTTP status.
std::string_view google_status(int http_status) noexcept;

/// {"error": {"code", "message", "status", "details"?}} pretty-printed.
json::object error_object(int http_status, std::string_view message, std::string_view status = {});
response json_response(int status, const json::value& body, unsigned version, bool keep_alive);
response error_response(int http_status, std::string_view message, unsigned version, bool keep_alive,
                        json::array details = {}, std::string_view status = {});
response text_response(int http_status, std::string_view text, unsigned version, bool keep_alive);

/// Turns curl's single-quoted pseudo-JSON into JSON (strings only; nothing else changes).
std::string requote_single_quotes(std::string_view s);

}  // namespace resilience::sim::detail

#endif
