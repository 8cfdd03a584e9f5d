#ifndef RESILIENCE_SIM_SERVER_HPP
#define RESILIENCE_SIM_SERVER_HPP

// A local, fault-injecting Gemini Files API server (v1beta wire format).
//
//   resilience::sim::config cfg;
//   cfg.api_key = "test-key";
//   cfg.processing = resilience::sim::processing_time::uniform(1s, 5s);
//   resilience::sim::server srv(cfg);          // runs on its own threads (cfg.threads)
//   srv.start();
//   std::string url = srv.base_url();          // "http://127.0.0.1:PORT"
//   srv.add_fault(resilience::sim::fault::next(fault_kind::rate_limit, route::get, 3));
//   auto s = srv.snapshot();                   // counters per route and status
//
// Or on the caller's io_context (tests in virtual time):
//   resilience::testing::manual_clock clk;
//   cfg.time = &clk;
//   resilience::sim::server srv(ctx, cfg);
//
// Routes: resumable upload (start, upload, "upload, finalize", query),
// files.get, files.list, files.delete, models/{model}:generateContent, and the
// admin endpoints GET /admin/stats, GET|POST|DELETE /admin/faults.

#include <resilience/clock.hpp>
#include <resilience/diagnostics.hpp>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace resilience::sim {

using namespace std::chrono_literals;

/// The routes the simulator serves (faults and counters are per route).
enum class route : unsigned char {
    upload_start,  ///< POST /upload/v1beta/files (X-Goog-Upload-Command: start)
    upload_chunk,  ///< POST to a session URL (upload, finalize, query)
    get,           ///< GET /v1beta/files/{id}
    list,          ///< GET /v1beta/files
    remove,        ///< DELETE /v1beta/files/{id} (named "delete" in JSON)
    generate,      ///< POST /v1beta/models/{model}:generateContent
    admin,         ///< /admin/... (never faulted)
    other,         ///< anything else (404)
    all,           ///< in a fault: every route but admin
};
inline constexpr std::size_t route_count = 8;  // all but `all`

/// "upload_start", "upload_chunk", "get", "list", "delete", "generate", "admin", "other", "all".
std::string_view to_string(route r) noexcept;
std::optional<route> route_from_string(std::string_view s) noexcept;

/// What a fault does to a request it matches.
enum class fault_kind : unsigned char {
    rate_limit,            ///< 429 RESOURCE_EXHAUSTED with QuotaFailure + RetryInfo(retry_delay)
    rate_limit_bare,       ///< 429 RESOURCE_EXHAUSTED without details
    quota_per_day,         ///< 429 with QuotaFailure quotaId "...PerDay..." (no RetryInfo)
    retry_after_seconds,   ///< `status` (default 429) with a Retry-After header in seconds
    retry_after_date,      ///< `status` (default 503) with a Retry-After header as an HTTP date
    overloaded,            ///< 503 UNAVAILABLE "The model is overloaded..."
    internal,              ///< 500 INTERNAL
    latency,               ///< waits `latency` on the clock, then the request goes on
    reset_before_headers,  ///< the connection is reset before any byte of the answer
    reset_after_headers,   ///< the answer's headers are sent, then the connection is reset
    truncated_body,        ///< the full Content-Length is announced, half the body is sent, then close
    malformed_json,        ///< 200 with a body that is not valid JSON
    plain_text_error,      ///< `status` (default 500) with a text/plain body
};
std::string_view to_string(fault_kind k) noexcept;
std::optional<fault_kind> fault_kind_from_string(std::string_view s) noexcept;

/// One fault rule. A rule sees the requests to its route from the moment it
/// is installed, numbered 1, 2, ...; it fires on requests skip+1 ..
/// skip+count (every one after skip when count is empty), each with
/// `probability` (drawn from the server's seeded generator).
/// The first matching non-latency rule answers; latency rules add up.
struct fault {
    fault() = default;
    fault(fault_kind k, route r = route::all) : kind(k), target(r) {}

    fault_kind kind = fault_kind::internal;
    route target = route::all;
    double probability = 1.0;         ///< 0..1
    std::uint64_t skip = 0;           ///< matching requests to let through first
    std::optional<std::uint64_t> count;  ///< how many matching requests it may hit (empty: no limit)
    duration retry_delay = 15s;       ///< RetryInfo.retryDelay / Retry-After
    duration latency{};               ///< for fault_kind::latency
    int status = 0;                   ///< HTTP status for the kinds that take one (0: the kind's default)

    /// The next `n` requests to `r`.
    static fault next(fault_kind k, route r, std::uint64_t n);
    /// Requests number `first` .. `last` (1-based, inclusive) to `r` from now on.
    static fault requests(fault_kind k, route r, std::uint64_t first, std::uint64_t last);
    /// Every request to `r` with probability `p`.
    static fault sometimes(fault_kind k, route r, double p);
};

/// Every request to `target` fails with 503 UNAVAILABLE during
/// [installed + start, installed + start + length) on the server's clock.
struct outage {
    outage() = default;
    outage(duration s, duration l, route r = route::all) : start(s), length(l), target(r) {}
    duration start{};
    duration length{};
    route target = route::all;
};

/// At most `limit` requests to `target` per fixed window (windows start when
/// installed); the others get 429 with QuotaFailure(quota_id) and a RetryInfo
/// of what remains of the window.
struct quota {
    quota() = default;
    quota(route r, std::uint64_t l, duration w) : target(r), limit(l), window(w) {}
    route target = route::all;
    std::uint64_t limit = 0;
    duration window = 60s;
    std::string quota_id = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier";
};

/// A set of faults, as given in the config, a JSON file, or POST /admin/faults:
///   {"seed": 7,
///    "faults":  [{"kind": "rate_limit", "route": "get", "count": 3, "retry_delay": "2s"},
///                {"kind": "internal", "probability": 0.1}],
///    "outages": [{"start": "10s", "length": "30s"}],
///    "quotas":  [{"route": "generate", "limit": 10, "window": "60s"}]}
/// Durations are strings ("250ms", "2s", "1.5s", "2m", "1h") or numbers of seconds.
struct fault_plan {
    fault_plan() = default;
    std::vector<fault> faults;
    std::vector<outage> outages;
    std::vector<quota> quotas;
    std::optional<std::uint64_t> seed;  ///< reseeds the fault generator when set

    /// Parses the JSON form; the error names the offending field.
    static result<fault_plan> from_json(std::string_view text);
    bool empty() const noexcept { return faults.empty() && outages.empty() && quotas.empty(); }
};

/// How long a file stays PROCESSING: uniform in [min, max] (fixed when equal).
struct processing_time {
    duration min{};
    duration max{};
    static processing_time fixed(duration d) { return {d, d}; }
    static processing_time uniform(duration a, duration b) { return {a, b}; }
    /// "0", "2s", "200ms", "1s..5s".
    static result<processing_time> parse(std::string_view s);
};

/// Parses "250ms", "2s", "1.5s", "2m", "1h", "100us" or a bare number of seconds.
result<duration> parse_duration(std::string_view s);

struct config {
    config() = default;

    std::string address = "127.0.0.1";  ///< address to listen on (loopback)
    unsigned short port = 0;            ///< 0: an ephemeral port
    unsigned threads = 1;               ///< threads of its own (ignored on a caller's io_context)
    std::string api_key;                ///< the valid key; empty: any non-empty key is valid
    processing_time processing;         ///< PROCESSING duration per file (default: instant)
    duration processing_per_mib{};      ///< added to a file's PROCESSING time per MiB of its size (large videos take longer)
    double fail_share = 0;              ///< share of files that end FAILED instead of ACTIVE
    std::uint64_t seed = 1;             ///< seeds processing times, failures and fault probabilities
    std::size_t body_limit = 64u << 20; ///< larger request bodies get 413
    fault_plan faults;                  ///< installed by start()
    resilience::clock* time = nullptr;  ///< processing, expiry, windows, latency; null: steady_clock()
    std::string file_uri_base = "https://generativelanguage.googleapis.com";  ///< for File.uri
    bool record_requests = false;       ///< keep a log of (time, route, status) for requests()

    // Limits, on the server's clock (`time`); zero turns a timeout off.
    duration idle_timeout = 610s;       ///< a connection waiting for a request closes after this (Google's front ends: 610 s)
    duration header_timeout = 60s;      ///< a request's header must be complete this long after its first byte (else 408)
    duration body_timeout = 60s;        ///< longest pause while reading a body (else 408) or writing an answer (else close)
    duration upload_session_ttl = std::chrono::hours(24 * 7);  ///< an upload session expires this long after its start
    std::size_t max_upload_sessions = 10000;  ///< open upload sessions kept; a new one past it evicts the oldest
    std::uint64_t upload_limit = std::uint64_t{2} << 30;  ///< largest file (the service's 2 GiB); past it: 400 / 413
    std::size_t max_poll_counters = 65536;  ///< per-file poll counters kept; a new one past it evicts the oldest (a deleted file's goes with it)
    /// Where warnings go (a non-loopback address, file descriptors exhausted); empty: std::clog.
    std::function<void(std::string_view)> warn;
};

struct route_stats {
    std::uint64_t requests = 0;
    std::map<int, std::uint64_t> statuses;  ///< HTTP status -> answers (0: connection reset, no status)
};

/// A point-in-time copy of the counters.
struct stats {
    std::uint64_t total_requests = 0;  ///< every request but the admin endpoints' (those count under route::admin)
    std::uint64_t open_connections = 0;
    std::uint64_t total_connections = 0;
    std::uint64_t faults_injected = 0;
    std::map<route, route_stats> routes;           ///< only routes that saw requests
    std::map<std::string, std::uint64_t> faults;   ///< fault kind (or "outage", "quota") -> injected
    std::map<std::string, std::uint64_t> polls;    ///< "files/<id>" -> files.get requests
    std::uint64_t files = 0;                       ///< files currently stored
    std::uint64_t files_listed = 0;                ///< files in files.list pages answered (once per page showing one)
    std::uint64_t upload_sessions = 0;             ///< upload sessions currently kept
    std::uint64_t poll_counters_evicted = 0;       ///< per-file poll counters dropped at max_poll_counters
    std::uint64_t timeouts = 0;                    ///< connections ended by the idle, header or body timeout
    std::uint64_t accept_failures = 0;             ///< accepts that failed (e.g. no file descriptor left)

    std::uint64_t requests(route r) const;
    std::uint64_t count(route r, int status) const;
    std::uint64_t polls_of(std::string_view name) const;
    std::uint64_t faults_of(std::string_view kind) const;
};

struct request_record {
    time_point at;  ///< on the server's clock, when the request was read
    route target = route::other;
    int status = 0;  ///< 0: reset without a status
};

enum class file_state : unsigned char { processing, active, failed };

struct file_info {
    std::string name;  ///< "files/<id>"
    std::string display_name;
    std::string mime_type;
    std::uint64_t size = 0;
    std::string sha256_hex;
    file_state state = file_state::processing;
    time_point created{};
    time_point ready_at{};  ///< when PROCESSING ends (clock time)
};

class server {
public:
    /// Runs on `cfg.threads` threads of its own.
    explicit server(config cfg = config());
    /// Runs on the caller's io_context (which the caller runs).
    server(boost::asio::io_context& ctx, config cfg = config());
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Binds, listens and starts accepting (and its threads). Throws
    /// boost::system::system_error if it cannot bind.
    void start();
    /// Stops accepting and closes every connection; joins its own threads.
    void stop();

    unsigned short port() const noexcept;
    std::string base_url() const;  ///< "http://127.0.0.1:PORT"
    const config& settings() const noexcept;

    stats snapshot() const;
    void reset_stats();
    std::vector<request_record> requests() const;  ///< needs config.record_requests

    void add_fault(const fault& f);
    void add_outage(const outage& o);
    void add_quota(const quota& q);
    void add_faults(const fault_plan& p);
    void clear_faults();

    /// Stored files, by "files/<id>" or "<id>".
    std::optional<file_info> file(std::string_view name) const;
    std::optional<std::string> file_bytes(std::string_view name) const;
    std::vector<std::string> file_names() const;
    /// Stores a file directly (as if uploaded now); returns its name.
    std::string add_file(std::string bytes, std::string mime_type = "text/plain",
                         std::string display_name = {});
    /// Stores a file of `size_bytes` without its bytes (a large video as
    /// files.get describes it: sizeBytes, processing time); returns its name.
    std::string add_file_of_size(std::uint64_t size_bytes, std::string mime_type = "video/mp4",
                                 std::string display_name = {});

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace resilience::sim

#endif
