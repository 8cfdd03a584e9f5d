#ifndef RESILIENCE_GEMINI_WIRE_HPP
#define RESILIENCE_GEMINI_WIRE_HPP

// Encoding and decoding of the Gemini wire format: pure functions over
// strings, no I/O, so they are unit-tested and fuzzed directly.

#include <resilience/gemini/types.hpp>
#include <resilience/http/error.hpp>
#include <resilience/pushback.hpp>

#include <boost/json/object.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace resilience::gemini {

/// Parses a File resource (bare, or wrapped as {"file": {...}} as an upload's
/// final answer is). http::errc::malformed_response with a clear message otherwise.
result<file> parse_file(std::string_view json);

/// A File as JSON in the API's own shape (camelCase names; sizeBytes a number;
/// empty fields left out; `error` {code, message} when set): the one view of
/// a file that the tool's --json output and the example server print.
boost::json::object to_json(const file& f);

/// Parses a files.list page.
result<file_page> parse_file_page(std::string_view json);

/// Parses a generateContent answer.
result<generate_result> parse_generate_result(std::string_view json);

/// Builds a generateContent request body.
std::string make_generate_request(const std::vector<content>& contents);

/// Builds the body of an upload start request: {"file": {"displayName": ...}}.
std::string make_upload_start_body(std::string_view display_name);

/// Turns an HTTP error answer into a failure: http::to_failure (the code,
/// the first line of a plain-text body, the Retry-After header `retry_after`
/// against `now`), then Google's error envelope when the body is one
/// (read_google_error; also wrapped in a one-element list), a RetryInfo delay
/// when no Retry-After was given, and Gemini's quotas: a per-day quota or the
/// file-storage quota becomes gemini::errc::quota_exhausted (not retried)
/// with a message naming the quota. Never echoes request data.
failure decode_error(int http_status, std::string_view body, std::string_view retry_after = {},
                     std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// Reads Google's error envelope ({"error": {...}} or [{"error": {...}}])
/// into `d`: status (e.g. "RESOURCE_EXHAUSTED"), message, the ErrorInfo
/// reason and the QuotaFailure quotaId (the first one named, unless a later
/// one is per-day or file storage), each bounded (bounded_text). False, and
/// `d` untouched, when the body is not one.
bool read_google_error(std::string_view body, diagnostics& d);

/// Finds a google.rpc.RetryInfo in a Google error body (the envelope, or the
/// envelope wrapped in a one-element list) and returns its retryDelay
/// ("15s", or {"seconds": N, "nanos": M}). A body that is not JSON, or has
/// no RetryInfo: nullopt. Never throws; saturates at max_pushback.
std::optional<duration> parse_retry_info(std::string_view body) noexcept;

/// Parses a google.protobuf.Duration in JSON form ("15s", "34.4s",
/// "45.837906927s"). Negative or malformed: nullopt; huge: saturated at
/// max_pushback.
std::optional<duration> parse_proto_duration(std::string_view s) noexcept;

/// The x-goog-upload-size-received header of an upload query answer: the
/// bytes the server holds, a decimal integer no larger than `size`.
/// http::errc::malformed_response otherwise.
result<std::uint64_t> parse_upload_size_received(std::string_view header, std::uint64_t size);

/// MIME type from a file name's extension ("clip.mp4" -> "video/mp4");
/// "application/octet-stream" when unknown.
std::string_view mime_type_for(std::string_view path) noexcept;

/// "files/abc" for "abc", "files/abc", or a full file URI; empty if invalid.
std::string normalize_file_name(std::string_view name_or_uri);

/// Replaces every occurrence of `secret` (the API key) in `text` with
/// "[redacted]". The one scrub applied wherever server-provided text enters
/// the client (bodies, error fields, file fields) and the tool prints.
void redact_secret(std::string& text, std::string_view secret);

/// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or values past U+10FFFF).
bool is_valid_utf8(std::string_view s) noexcept;

/// `s` made safe to print on a terminal: C0 and C1 control characters (ESC
/// and CSI included), DEL, bidirectional overrides and bytes that are not
/// UTF-8 become visible escapes (`\x1b`, `\u009b`); with `multiline`, line
/// feeds and tabs are kept.
std::string terminal_safe(std::string_view s, bool multiline = false);

/// A serialized JSON text made safe for a terminal without changing its
/// meaning: C1 controls and bidirectional overrides are written as \uXXXX
/// escapes, bytes that are not UTF-8 as \ufffd. (C0 controls are already
/// escaped by any JSON serializer.)
std::string json_terminal_safe(std::string_view json);

/// Whether `model` (with or without "models/") is a model name the client
/// accepts: 1..128 characters of [A-Za-z0-9._-].
bool is_valid_model_name(std::string_view model) noexcept;

}  // namespace resilience::gemini

#endif
