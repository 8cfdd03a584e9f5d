#ifndef RESILIENCE_GEMINI_CLIENT_HPP
#define RESILIENCE_GEMINI_CLIENT_HPP

// The Gemini Files API client: resumable upload, get, list, delete,
// generateContent, and wait_until_active, every call through one retry
// pipeline per client (so thousands of concurrent calls share its connection
// pool, circuit breaker, cooldown and retry budget).
//
//   auto opts = resilience::gemini::client_options::from_env().value();
//   resilience::gemini::client gemini(ctx.get_executor(), std::move(opts));
//   auto f = co_await gemini.upload("clip.mp4");                  // result<file>
//   auto ready = co_await gemini.wait_until_active(f->name);      // result<file>
//
// Error model: every call returns resilience::result<T>; a failure carries
// the last error's code and diagnostics (HTTP status, Google status, server
// message, RetryInfo, quota, attempts, elapsed). A per-day or file-storage
// quota is gemini::errc::quota_exhausted and is not retried.
//
// Two spellings of every call: `co_await c.get(name)` returns result<T>
// (the convenient one), and `c.async_get(name, deadline, [diag,] token)`
// takes any Asio completion token (use_awaitable, deferred, use_future, a
// callback, as_tuple, redirect_error, bind_executor,
// bind_cancellation_slot) and completes with `void(error_code, T)`; see
// "The same calls as Asio asynchronous operations" below.
//
// Lifetimes: the client must outlive every call in flight. Arguments are
// copied into the call. Executor: the co_await forms run on the awaiting
// coroutine's executor (the HTTP requests on the client's internal strand);
// the async_ forms run on the client's internal strand. Cancellation:
// per-operation (terminal) cancellation of the awaiting coroutine ends any
// call at once with operation_aborted.
//
// Secrets: the API key travels only in the x-goog-api-key header, and only
// to the configured origin (an upload session URL elsewhere is refused with
// gemini::errc::untrusted_url); it never appears in a URL, a status line, an event or
// an error message. A key echoed back by a server is scrubbed from every text
// the client takes from an answer (bodies, error fields, file fields).
//
// Retries: max_retries = 0 disables retrying everywhere, in
// wait_until_active (the first failed poll ends the wait) and upload (a lost
// session is not restarted) too.

#include <resilience/circuit_breaker.hpp>
#include <resilience/gemini/config.hpp>
#include <resilience/retry_budget.hpp>
#include <resilience/events.hpp>
#include <resilience/gemini/types.hpp>
#include <resilience/http/client.hpp>
#include <resilience/retry.hpp>

#include <atomic>
#include <functional>
#include <memory>

namespace resilience::gemini {

inline constexpr std::uint64_t upload_granularity = 8ull * 1024 * 1024;

/// The client's default failure-rate window (the break stays fixed), chosen
/// by bench/bench_breaker (docs/design-notes.md, "Circuit breaker").
inline breaker_rules default_breaker_window() {
    breaker_rules r;
    r.failure_ratio = 0.5;
    r.minimum_throughput = 100;
    r.sampling_duration = std::chrono::seconds(10);
    r.failure_streak = 15;
    return r;
}

struct client_options {
    client_options() = default;
    std::string api_key;                                                ///< required; never printed
    std::string base_url = "https://generativelanguage.googleapis.com"; ///< no trailing path needed
    std::string api_version = "v1beta";
    retry_policy retry{};         ///< shared by every call (a call may override it)
    breaker_config breaker{};     ///< the client's circuit breaker
    breaker_rules breaker_window = default_breaker_window();  ///< its failure-rate window and growing break
    budget_config budget{};       ///< the client's retry budget (gRPC retry throttling)
    std::chrono::milliseconds request_timeout{60000};  ///< per attempt (upload chunks included); 0 = none
    std::uint64_t chunk_size = upload_granularity;     ///< upload chunk; a multiple of 8 MiB
    status_handler on_status;     ///< status text of every call
    event_handler on_event;       ///< structured events of every call
    clock* time = nullptr;        ///< nullptr = steady_clock()
    std::uint64_t seed = 0;       ///< jitter seed; 0 = random
    http::client_options http{};  ///< pool size, timeouts, TLS
    /// files.list stops with http::errc::malformed_response after this many pages,
    /// or when the answers' bodies add up to more than list_max_bytes (a
    /// server whose page tokens never end; a revisited token ends it at once).
    int list_max_pages = 10000;
    std::uint64_t list_max_bytes = 256ull << 20;

    /// Defaults, then the GEMINI_* environment, then `overrides` (code wins).
    static result<client_options> from_env(const config_overrides& overrides = {},
                                           const env_lookup& env = process_env);
};

struct upload_options {
    upload_options() = default;
    std::string display_name;  ///< default: the file's base name
    std::string mime_type;     ///< default: from the extension
    time_point deadline = time_point::max();
    const retry_policy* retry = nullptr;  ///< replaces the client's policy for this upload (must outlive it)
    status_handler on_status;             ///< replaces the client's for this upload
};

struct wait_options {
    wait_options() = default;
    duration poll_initial = std::chrono::seconds(1);  ///< first pause between polls while PROCESSING
    double poll_multiplier = 1.5;                     ///< growth of the pause per poll
    duration poll_max = std::chrono::seconds(10);     ///< the pause never exceeds this
    double poll_jitter = 0.1;                         ///< +/- share of each pause, spreads many waiters
    time_point deadline = time_point::max();          ///< overall; ends with the last state seen
    status_handler on_status;                         ///< replaces the client's for this wait
    const retry_policy* retry = nullptr;              ///< replaces the client's policy for failed polls
    /// A poll whose retries end on a transient failure (retries or budget
    /// exhausted, breaker open) does not end the wait: the next round comes
    /// after the pause. With a deadline, rounds go on until it; without one,
    /// the wait ends after this many such rounds in a row.
    int max_failed_rounds = 3;
};

/// Counters of everything the client did (thread-safe snapshots).
struct client_stats {
    std::uint64_t calls = 0;          ///< API calls (each may take several attempts)
    std::uint64_t attempts = 0;       ///< HTTP requests sent through the retry pipeline
    std::uint64_t retries = 0;
    std::uint64_t retries_by_kind[6] = {};  ///< indexed by error_kind
    std::uint64_t gave_up = 0;
    std::uint64_t cooldown_waits = 0;
    std::uint64_t breaker_waits = 0;
    std::uint64_t breaker_transitions = 0;
    std::uint64_t polls = 0;          ///< files.get calls made by wait_until_active
};

class client {
public:
    client(boost::asio::any_io_executor ex, client_options opts);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// Resumable upload in chunk_size pieces streamed from the file. A failed
    /// chunk asks the server where it stands (`query`) and resumes; a session
    /// the server no longer knows is restarted (at most twice).
    boost::asio::awaitable<result<file>> upload(std::string path, upload_options opts = upload_options());

    /// files.get. `name` is "files/ID", "ID" or a file URI.
    boost::asio::awaitable<result<file>> get(std::string name, time_point deadline = time_point::max());

    /// files.list, every page.
    boost::asio::awaitable<result<std::vector<file>>> list(time_point deadline = time_point::max());

    /// files.delete.
    boost::asio::awaitable<result<void>> remove(std::string name, time_point deadline = time_point::max());

    /// models/{model}:generateContent.
    boost::asio::awaitable<result<generate_result>> generate_content(std::string model, std::vector<content> contents,
                                                                     time_point deadline = time_point::max(),
                                                                     const retry_policy* retry = nullptr,
                                                                     status_handler on_status = status_handler());

    /// Polls files.get until the file is ACTIVE (returned), FAILED
    /// (gemini::errc::file_failed with the server's error), or the deadline
    /// (resilience::errc::deadline_exceeded naming the last state seen). While PROCESSING
    /// the pause grows from poll_initial by poll_multiplier up to poll_max;
    /// failed requests follow the retry policy, and the circuit breaker is
    /// waited for rather than failed on; an outage shorter than the deadline
    /// does not end the wait (see max_failed_rounds). Status text is
    /// prefixed "files/ID: ".
    boost::asio::awaitable<result<file>> wait_until_active(std::string name, wait_options opts = wait_options());

    // ---- The same calls as Asio asynchronous operations (any completion token).
    //
    // Each async_X(args..., [diag,] token) does what X(args...) does above and
    // completes with `void(error_code, T)` (`void(error_code)` for remove),
    // T being what X's result holds (a default T on error). They follow the
    // same rules, documented once here (Boost.MySQL's sections):
    //
    // Diagnostics: the overload taking `diagnostics& diag` writes the
    // failure's diagnostics there (HTTP status, Google status, server
    // message, RetryInfo, quota, attempts, elapsed) and clears it on
    // success, before the handler runs. Without it only the code is
    // reported; the co_await forms above return both in a result<T>.
    // Object lifetimes: the client and `diag` must outlive the operation;
    // the arguments are moved into it (a retry_policy pointer in the options
    // must stay valid until completion).
    // Executor: the call runs on the client's internal strand
    // (http().internal_executor()); the handler runs on its associated
    // executor, by default get_executor(); its associated allocator is kept.
    // Per-operation cancellation: terminal, through the handler's associated
    // cancellation slot (e.g. bind_cancellation_slot): reaches the request in
    // flight and any wait (backoff, breaker, cooldown, poll pause), is never
    // retried, and completes with operation_aborted; nothing stays pending.
    // Errors: as the co_await form (the last error's code after retries,
    // resilience::errc::deadline_exceeded, gemini::errc::quota_exhausted, gemini::errc::file_failed,
    // resilience::errc::invalid_argument, operation_aborted, ...).
    // Thread safety: any number of operations may be started from any
    // threads of a multi-threaded io_context without user strands: each
    // enters the client's strand at its boundary. (The co_await forms above
    // run on the awaiting coroutine's executor: from an io_context run by
    // several threads, await an async_X(..., asio::use_awaitable) instead, or
    // run the coroutine on a strand.)

    template <class CompletionToken>
    auto async_upload(std::string path, upload_options opts, CompletionToken&& token);
    template <class CompletionToken>
    auto async_upload(std::string path, upload_options opts, diagnostics& diag, CompletionToken&& token);

    template <class CompletionToken>
    auto async_get(std::string name, time_point deadline, CompletionToken&& token);
    template <class CompletionToken>
    auto async_get(std::string name, time_point deadline, diagnostics& diag, CompletionToken&& token);

    template <class CompletionToken>
    auto async_list(time_point deadline, CompletionToken&& token);
    template <class CompletionToken>
    auto async_list(time_point deadline, diagnostics& diag, CompletionToken&& token);

    template <class CompletionToken>
    auto async_remove(std::string name, time_point deadline, CompletionToken&& token);
    template <class CompletionToken>
    auto async_remove(std::string name, time_point deadline, diagnostics& diag, CompletionToken&& token);

    template <class CompletionToken>
    auto async_generate_content(std::string model, std::vector<content> contents, time_point deadline,
                                CompletionToken&& token);
    template <class CompletionToken>
    auto async_generate_content(std::string model, std::vector<content> contents, time_point deadline,
                                diagnostics& diag, CompletionToken&& token);

    template <class CompletionToken>
    auto async_wait_until_active(std::string name, wait_options opts, CompletionToken&& token);
    template <class CompletionToken>
    auto async_wait_until_active(std::string name, wait_options opts, diagnostics& diag, CompletionToken&& token);

    /// The executor given at construction: handlers of the async_ operations
    /// run there unless they have an associated executor.
    boost::asio::any_io_executor get_executor() const noexcept;

    client_stats stats() const noexcept;
    /// The state of the client's circuit breaker now.
    resilience::breaker_state breaker_state() const noexcept;
    resilience::circuit_breaker& breaker() noexcept;
    http::client& http() noexcept;
    resilience::pipeline& pipeline() noexcept;
    clock& time() noexcept;
    const client_options& options() const noexcept;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace resilience::gemini

#include <resilience/gemini/impl/client.hpp>

#endif
