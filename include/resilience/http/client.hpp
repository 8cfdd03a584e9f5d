#ifndef RESILIENCE_HTTP_CLIENT_HPP
#define RESILIENCE_HTTP_CLIENT_HPP

// An HTTP/1.1 client on Beast: TCP and TLS (OpenSSL, verification on by
// default), a keep-alive pool per origin, timeouts, size limits, and every
// failure turned into a classified error (DESIGN.md, Classification).
//
//   resilience::http::client c(ctx.get_executor());
//   resilience::http::request req;
//   req.method = boost::beast::http::verb::get;
//   req.url = "https://generativelanguage.googleapis.com/v1beta/files/abc";
//   req.headers.set("x-goog-api-key", key);   // never in the URL
//   resilience::result<resilience::http::response> r = co_await c.send(std::move(req));
//   if (!r) ...                                // network, TLS, parse, limit, timeout, cancellation
//   else if (!r->ok()) co_return resilience::http::to_failure(*r);  // HTTP error status
//
// An HTTP error status is a response, not a failure: `to_failure(response)`
// (or `check(response)`) maps it to the layer's code (http::errc), the
// diagnostics and the Retry-After pushback.
//
// Time: every limit below runs on the client's clock (client_options::time),
// so a test on a manual clock (resilience/testing/manual_clock.hpp) runs a
// request down to the socket in virtual time when its server runs on the
// same io_context. With the steady clock (the default) over TCP, opening a
// connection (resolve, connect, TLS) is bounded by Beast's own stream
// timers, and an exchange (write, read) by one timer per connection that
// shuts the socket down when its limit passes (no strand needed; see Thread
// safety); with any other clock (or over a connector's streams, see
// Transport), one watchdog coroutine per request sleeps on
// clock::sleep_until and ends the step in progress (closing the
// connection) when its limit passes.
//
// Timeouts and cancellation:
// - The request's deadline: `request_options::deadline` (a time point on the
//   client's clock, e.g. attempt_context::deadline) and the request timeout
//   (`request_options::request_timeout`, else `client_options::request_timeout`;
//   per request, i.e. per attempt) bound
//   the whole request, waiting for a pool slot included. Wherever it expires
//   (slot wait, resolve, connect, TLS, write, read) the request completes
//   with resilience::errc::attempt_timeout, and a deadline already passed fails at once.
//   (The HTTP client knows no overall deadline: a retry pipeline passes an
//   attempt's deadline here and reports its own as
//   resilience::errc::deadline_exceeded.)
// - Step limits complete with boost::asio::error::timed_out (retryable
//   network failures); the message names the limit:
//   `connect_timeout` bounds resolve, connect and the TLS handshake;
//   `io_timeout` bounds each period without progress while writing or
//   reading (a file body is written in 256 KiB chunks, each chunk bounded by
//   io_timeout); `header_timeout` bounds the time from the end of the
//   request to the end of the response header, interim 1xx responses
//   included, so a server that drips its header a byte at a time is caught;
//   the minimum progress rule (`min_progress_bytes` in every
//   `progress_window` while a response body is read or a request body from
//   memory is written) catches a body dripped slowly enough to defeat
//   io_timeout.
// Both codes, like an HTTP 408 (http::errc::request_timeout), match
// resilience::condition::timeout (resilience/error.hpp, "Running out of
// time"); a retry pipeline retries each (until its call's own deadline).
// The awaiting coroutine's per-operation cancellation (terminal) reaches every
// step (waiting for a pool slot, resolve, connect, handshake, write, read) and
// completes with boost::asio::error::operation_aborted. A connection whose
// request failed or was cancelled is closed, never pooled again; its slot is
// released.
//
// Interim responses: 1xx answers (100 Continue, 103 Early Hints, ...) are read
// and skipped; the final answer is returned. 101 Switching Protocols (never
// asked for) is returned as the answer and its connection is not pooled.
//
// TLS: OpenSSL through asio::ssl, TLS 1.2 or later, peer verification
// against the system store (set_default_verify_paths) plus
// client_options::extra_ca_pem / extra_ca_file, host name verification
// (RFC 6125, IP addresses too) and SNI for host names. The TLS context is built
// by the constructor when extra CAs are given (a bad CA throws), otherwise on
// the first https request. Certificate failures complete with a code of
// asio's SSL category ("certificate verify failed").
//
// Stale connections: an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS)
// that fails on a reused pooled connection before any byte of the response
// arrived is re-sent once on a fresh connection. This is transparent (it is
// not a retry attempt) and counted in pool_stats::stale_resends. Before a
// non-idempotent request (POST, PATCH) reuses a pooled connection, a
// non-blocking peek checks that the server has not closed it.
//
// Limits: max_header_bytes (default 64 KiB) and max_body_bytes (default
// 64 MiB) bound a response: memory for a buffered response stays within about
// these limits plus one 64 KiB read buffer (a declared Content-Length above the
// limit fails before any body byte is stored). Exceeding either completes with
// http::errc::response_too_large (not retryable). Content-Length, chunked and
// read-until-close framings are handled by Beast; an answer that is not
// HTTP/1.x (a bad status line, an HTTP/0.9 reply, a broken chunk) completes
// with http::errc::malformed_response, whose message keeps the parser's reason; a
// connection closed before the end of the answer completes with Beast's
// end_of_stream / partial_message (network failures).
//
// Transport: by default the client opens TCP connections itself (resolve,
// connect, TLS). client_options::connect replaces that step with a connector
// (resilience/http/connector.hpp) yielding a type-erased connected stream
// (resilience/http/any_stream.hpp), so that tests drive the client over
// beast::test::stream with no socket and no real time, and users plug in a
// Unix socket, a tunnel or their own resolver. Everything after the connect
// (pool, limits, timeouts, stale re-sends, the mapping of errors) is the
// same code over either transport; over a connector's streams the time
// limits always run as the watchdog on the client's clock, which closes the
// stream when a limit passes. The TCP path is compiled apart from the
// erased one and pays nothing for it.
//
// Secrets: error messages and diagnostics name the scheme, host, port and
// path only, never a request header nor the query string.
//
// Thread safety: one client may be shared by handlers and coroutines of an
// io_context run by several threads without the user arranging strands.
// The client protects its own state: what requests share (the pools, the
// last origin) is guarded by a mutex, and a connection checked out of a
// pool belongs to its request alone. With the steady clock over TCP (the
// default) a request made with co_await send() runs on the caller's
// executor, making no hop: its time limits are one timer per connection
// whose handler only shuts the socket down (no strand needed); new
// connections are opened (resolve, connect, TLS) on the client's internal
// executor (a strand of the given one when client_options::thread_safe).
// With another clock or a connector, the limits run as a watchdog
// coroutine and a request runs on the internal executor (send() enters it
// at its boundary). async_send() runs the request on the internal executor
// and completes on the handler's. client_options::on_request is called on
// the request's thread, one call at a time. stats() and close_idle() may be
// called from any thread, also while requests run. The client must outlive
// every send() in flight; destroying it closes idle connections.

#include <resilience/clock.hpp>
#include <resilience/diagnostics.hpp>
#include <resilience/http/connector.hpp>
#include <resilience/http/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace resilience::http {

using verb = boost::beast::http::verb;
/// Header fields (case-insensitive names, insertion order kept).
using fields = boost::beast::http::fields;

/// A request body streamed from a part of a file: `length` bytes from
/// `offset`. The file is read in chunks while sending; it never sits in
/// memory whole.
struct file_range {
    file_range() = default;
    std::string path;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
};

/// A request. Not an aggregate on purpose (g++ 12 coroutine bug: build it as
/// a named object and std::move it into send()).
struct request {
    request() = default;
    verb method = verb::get;
    std::string url;   ///< absolute http:// or https:// URL (parsed with Boost.URL)
    fields headers;    ///< Host, Content-Length and User-Agent are set by the client unless present
    std::string body;  ///< the body, from memory (ignored when `file` is set)
    std::optional<file_range> file;  ///< the body, streamed from a file range
};

/// The options of one request (send, async_send): what the request is
/// bounded by and what runs before it. Unset fields take the client's
/// settings. Converts implicitly from a time_point (the deadline), so
/// `c.send(std::move(req), deadline)` works. Not an aggregate on purpose
/// (g++ 12 coroutine bug: build it as a named object or from a deadline).
struct request_options {
    request_options() = default;
    request_options(time_point d) noexcept : deadline(d) {}  // NOLINT: implicit on purpose
    /// When the whole request must be over, waiting for a pool slot included,
    /// on the client's clock (time_point::max() = none). Expiry, wherever it
    /// happens: resilience::errc::attempt_timeout (a retry pipeline whose
    /// overall deadline this is reports resilience::errc::deadline_exceeded).
    time_point deadline = time_point::max();
    /// Replaces client_options::request_timeout for this request (0 = none).
    /// The earlier of deadline and start + timeout applies.
    std::optional<duration> request_timeout;
    /// Replaces client_options::on_request for this request (an empty
    /// function disables the client's hook for it); unset = the client's.
    std::optional<std::function<void(request&)>> on_request;
    /// Asked once the request holds a connection slot, right before it is
    /// written (so after any wait for the pool; the Gemini client rechecks
    /// its breaker and cooldown there). A failure ends the request unsent
    /// with that failure; a time later than now holds the request, slot
    /// kept, until then (bounded by the deadline and by cancellation), and
    /// the gate is asked again. Empty = none.
    std::function<result<time_point>()> gate;
};

/// A response: any status, including 4xx and 5xx.
struct response {
    response() = default;
    int status = 0;
    fields headers;
    std::string body;

    bool ok() const noexcept { return status >= 200 && status < 300; }
};

/// Client configuration. Defaults are documented next to each field.
struct client_options {
    client_options() = default;
    clock* time = nullptr;  ///< the clock of every limit and of request::deadline; nullptr = steady_clock()

    std::size_t max_connections_per_origin = 16;  ///< callers beyond it wait (bounded by deadline, cancellation)
    /// An idle pooled connection older than this is closed instead of reused
    /// (checked when its origin is next used, or by close_idle(); no background timer).
    duration pool_idle_timeout = std::chrono::seconds(30);

    duration connect_timeout = std::chrono::seconds(30);  ///< resolve + connect + TLS handshake; 0 = none
    duration io_timeout = std::chrono::seconds(60);       ///< longest stall while writing or reading; 0 = none
    duration request_timeout = std::chrono::seconds(0);   ///< whole request incl. waiting for a slot; 0 = none
    /// From the end of the request to the end of the response header (1xx
    /// included); 0 = none.
    duration header_timeout = std::chrono::seconds(60);
    /// Minimum progress rule: while a response body is read (or a request body
    /// from memory written), every `progress_window` must carry at least
    /// `min_progress_bytes`, else the request fails with timed_out. 0 in either = off.
    duration progress_window = std::chrono::seconds(10);
    std::uint64_t min_progress_bytes = 1024;

    std::uint32_t max_header_bytes = 64 * 1024;           ///< response header limit (http::errc::response_too_large)
    std::uint64_t max_body_bytes = 64ull * 1024 * 1024;   ///< response body limit (http::errc::response_too_large)

    std::string extra_ca_pem;   ///< PEM certificate(s) trusted in addition to the system store
    std::string extra_ca_file;  ///< a PEM file of certificates trusted in addition to the system store
    /// Disables certificate and host name verification. Only for tests
    /// against servers with throw-away certificates; never in production.
    bool insecure_skip_tls_verify = false;

    std::string user_agent = "asio-resilience/1.0";  ///< sent unless the request sets User-Agent

    /// The transport seam (resilience/http/connector.hpp): opens each new
    /// connection and yields a connected any_stream (TLS done for https).
    /// Empty (the default) = the client's own path: resolve, TCP connect and,
    /// for https, TLS with the settings above. Set, e.g. to drive the client
    /// over beast::test::stream: the pool, limits, timeouts (as watchdogs on
    /// `time`), stale re-sends and error mapping work as on the TCP path;
    /// the TLS settings above are then the connector's business.
    connector connect;

    /// The client's internal executor (connection set-up, async_send, and
    /// with a non-steady clock or a connector every request) is a strand of
    /// the executor it is given, so that it may be shared by handlers of an
    /// io_context run by several threads (Boost.MySQL's pool `thread_safe`).
    /// false: the given executor itself, which must then be single-threaded
    /// (one thread, or a strand). A co_await send() with the steady clock
    /// over TCP runs on the caller's executor either way (see Thread safety).
    bool thread_safe = true;
    /// Called at the start of every send() (so once per attempt when a
    /// pipeline retries it; not again for a transparent stale-connection
    /// re-send), on the thread running the request, one call at a time,
    /// before the request is checked and
    /// built: it may add or change headers, e.g. W3C `traceparent` for the
    /// attempt's span (see docs/retry-mechanism.md, Tracing). An exception it
    /// throws propagates out of send(). Empty = none.
    std::function<void(request&)> on_request;

    /// Checks the settings (resilience::errc::invalid_config, the message naming the
    /// field): durations between 0 and 24 h, max_connections_per_origin,
    /// max_header_bytes and max_body_bytes at least 1, a user agent that can
    /// travel in a header. The client's constructor throws resilience::error
    /// with its failure.
    result<void> validate() const;
};

/// Pool counters, for tests and benchmarks (all origins together).
struct pool_stats {
    std::uint64_t opened = 0;         ///< connections established (TCP, and TLS if https)
    std::uint64_t reused = 0;         ///< requests sent on a pooled connection
    std::uint64_t stale_resends = 0;  ///< idempotent requests re-sent after a stale pooled connection failed
    std::size_t in_use = 0;           ///< connection slots held by requests now (including connecting)
    std::size_t idle = 0;             ///< idle connections kept in the pool now
    std::size_t waiting = 0;          ///< requests waiting for a slot now
};

class client {
public:
    using executor_type = boost::asio::any_io_executor;

    /// Throws resilience::error (resilience::errc::invalid_config) if the options are
    /// unusable (e.g. extra_ca_pem is not PEM).
    explicit client(executor_type ex, client_options opts = client_options());
    explicit client(boost::asio::io_context& ctx, client_options opts = client_options());
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// Sends one request and reads its response. Fails with a network, TLS,
    /// parse, limit (http::errc::response_too_large), timeout, invalid_argument
    /// (bad URL, unreadable file) or operation_aborted code; an HTTP error
    /// status is a successful result.
    boost::asio::awaitable<result<response>> send(request req, request_options opts = request_options());

    /// send() as an Asio asynchronous operation taking any completion token.
    ///
    /// What it does: sends `req` and reads its response, exactly as send().
    /// Completion signature: `void(error_code, response)`; an HTTP error
    /// status is a success (check it with `to_failure` / `check`).
    /// Diagnostics: the overload with `diag` writes the failure's message
    /// there (cleared on success).
    /// Object lifetimes: the client and `diag` must outlive the operation;
    /// the request is moved into it.
    /// Executor: the request runs on the client's internal executor
    /// (internal_executor()); the handler runs on its associated executor, by
    /// default get_executor(); its associated allocator is kept.
    /// Per-operation cancellation: terminal, through the handler's associated
    /// cancellation slot: reaches every step (pool wait, resolve, connect,
    /// handshake, write, read) and completes with operation_aborted; the
    /// connection is closed, its pool slot released.
    /// Errors: as send() (network, TLS, parse, http::errc::response_too_large,
    /// resilience::errc::attempt_timeout, timed_out, resilience::errc::invalid_argument,
    /// operation_aborted).
    /// Thread safety: may be called from any thread when
    /// client_options::thread_safe (the default).
    template <class CompletionToken>
    auto async_send(request req, CompletionToken&& token);
    template <class CompletionToken>
    auto async_send(request req, diagnostics& diag, CompletionToken&& token);
    template <class CompletionToken>
    auto async_send(request req, request_options opts, CompletionToken&& token);
    template <class CompletionToken>
    auto async_send(request req, request_options opts, diagnostics& diag, CompletionToken&& token);

    /// A snapshot of the pool counters. Thread-safe: may be called from any
    /// thread while requests run on others (no strand needed). The pool
    /// sizes (in_use, idle, waiting) are read together under the pool's
    /// mutex; the running totals (opened, reused, stale_resends) are atomics
    /// read just before, so they may be a request apart from the sizes.
    pool_stats stats() const noexcept;

    /// Closes every idle pooled connection. Thread-safe, as stats().
    void close_idle() noexcept;

    /// The executor given at construction (handlers of async_send run there by default).
    executor_type get_executor() const noexcept;
    /// The client's internal executor (connection set-up, async_send; see
    /// Thread safety): a strand of get_executor() when
    /// client_options::thread_safe (the default), else get_executor().
    executor_type internal_executor() const noexcept;
    const client_options& options() const noexcept;

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

/// For a non-2xx response: the layer's code (status_to_error) and
/// diagnostics: http_status; the first line of the body, bounded, as the
/// message ("HTTP 503: ..."); retry_after from the Retry-After header
/// (against `now`). A 2xx response gives a failure with an empty code. The
/// HTTP layer reads no JSON: Google's error envelope (status, RetryInfo,
/// quotas) is read by resilience::gemini::decode_error.
failure to_failure(const response& r,
                   std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

/// The response itself when 2xx, otherwise to_failure(r).
result<response> check(response r);

}  // namespace resilience::http

#include <resilience/http/impl/client.hpp>

#endif
