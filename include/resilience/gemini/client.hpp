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
// Options: every call takes one gemini::call_options (deadline, per-field
// retry overrides, admission mode, status and event handlers, a tag);
// upload_options and wait_options derive from it; it may be left out (every
// call, and every async_ form, has an overload without it). A time_point
// converts to it, so `co_await c.get(name, deadline)` works. (It is not
// resilience::call_options, the retry pipeline's per-run options: the client
// builds one of those from it for each pipeline run; see call_options
// below.) Settings given in code are checked as the environment's are:
// the constructor throws resilience::error (resilience::errc::invalid_config,
// the message naming the field) for bad client_options, and a call with a
// bad override completes with resilience::errc::invalid_config before
// sending anything.
//
// Deadlines: one owner, one clock. The call's deadline (on the client's
// clock) bounds everything the call does; wherever it expires (pool wait,
// connect, I/O, backoff, breaker wait, cooldown, poll pause) the call
// completes with resilience::errc::deadline_exceeded, and the breaker never counts it.
// The per-attempt timeout is a separate setting (retry.attempt_timeout, else
// client_options::request_timeout), cut to what remains of the deadline; an
// attempt it ends fails with resilience::errc::attempt_timeout and is
// retried, as is one ending on an HTTP step limit (boost::asio::error::timed_out).
// All three match resilience::condition::timeout; only the deadline matches
// condition::deadline (resilience/error.hpp, "Running out of time").
//
// Two spellings of every call: `co_await c.get(name)` returns result<T>
// (the convenient one), and `c.async_get(name, [opts,] [diag,] token)`
// takes any Asio completion token (use_awaitable, deferred, use_future, a
// callback, as_tuple, redirect_error, bind_executor,
// bind_cancellation_slot) and completes with `void(error_code, T)`; see
// "The same calls as Asio asynchronous operations" below.
//
// Lifetimes: the client must outlive every call in flight. Arguments are
// copied into the call. Executor and threads: the co_await forms of upload,
// get, list, remove and generate_content run on the awaiting coroutine's
// executor, and so do their HTTP requests (with the steady clock over TCP
// the HTTP client takes no strand; it opens new connections on its internal
// executor, and with another clock or a connector runs every request there:
// http/client.hpp, Thread safety). They wait with Asio's awaitable operators
// (a breaker wait against the clock, an upload chunk against its timeout),
// which want a single-threaded executor: from an io_context run by several
// threads, run the awaiting coroutine on a strand, or await
// async_X(..., use_awaitable). The async_ forms run on the client's internal
// executor (a strand of the given one unless http.thread_safe is false) and
// may be started from any thread. wait_until_active is a record in the
// client's poll scheduler (under a mutex; its polls run on the internal
// executor): it may be awaited, and cancelled, from any thread.
// Cancellation: per-operation (terminal) cancellation of the awaiting
// coroutine ends any call at once with operation_aborted.
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
#include <resilience/detail/async_op.hpp>
#include <resilience/gemini/config.hpp>
#include <resilience/gate_sync.hpp>
#include <resilience/retry_budget.hpp>
#include <resilience/rate_gate.hpp>
#include <resilience/events.hpp>
#include <resilience/gemini/types.hpp>
#include <resilience/http/client.hpp>
#include <resilience/retry.hpp>

#include <boost/asio/any_completion_handler.hpp>

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

/// The client's settings. The circuit breaker's are in two parts, as
/// resilience::breaker_options holds them (circuit_breaker.hpp, "Settings"):
/// `breaker` (breaker_config: the consecutive rule the GEMINI_CIRCUIT_BREAKER_*
/// variables set) and `breaker_window` (breaker_rules: the failure-rate
/// window and growing break added to it).
struct client_options {
    client_options() = default;
    std::string api_key;                                                ///< required; never printed
    std::string base_url = "https://generativelanguage.googleapis.com"; ///< no trailing path needed
    std::string api_version = "v1beta";
    /// Shared by every call (a call may override single fields through
    /// call_options::retry). Its attempt_timeout, when set, is the per-attempt
    /// timeout and wins over request_timeout.
    retry_policy retry{};
    breaker_config breaker{};     ///< the client's circuit breaker
    breaker_rules breaker_window = default_breaker_window();  ///< its failure-rate window and growing break
    budget_config budget{};       ///< the client's retry budget (gRPC retry throttling)
    /// The adaptive rate gate, one per scope (the host and hashed API key)
    /// shared by every call of the client, as the cooldown is: off unless
    /// rate_gate.enabled (RESILIENCE_ADAPTIVE_RATE=1, gemini-files
    /// --adaptive-rate). After a 429 the client sends at the rate the server
    /// accepts instead of bouncing off it (resilience/rate_gate.hpp).
    rate_gate_config rate_gate{};
    /// The per-attempt timeout (upload chunks included) when retry.attempt_timeout
    /// is 0; 0 = none. The overall deadline (call_options::deadline) is separate.
    std::chrono::milliseconds request_timeout{60000};
    std::uint64_t chunk_size = upload_granularity;     ///< upload chunk; a multiple of 8 MiB
    status_handler on_status;     ///< status text of every call (a call may replace it)
    event_handler on_event;       ///< structured events of every call (a call may replace it)
    clock* time = nullptr;        ///< nullptr = steady_clock()
    std::uint64_t seed = 0;       ///< jitter seed; 0 = random
    /// Shares the client's gates (breaker, cooldown, budget of its scope)
    /// with other processes' (e.g. resilience::redis::fleet, docs/fleet.md);
    /// null = this process decides alone.
    std::shared_ptr<gate_link> fleet;
    /// Pool size, step timeouts, TLS. Its request_timeout must stay 0: the
    /// per-attempt timeout is request_timeout above (one setting, one owner).
    http::client_options http{};
    /// files.list stops with http::errc::malformed_response after this many pages,
    /// or when the answers' bodies add up to more than list_max_bytes (a
    /// server whose page tokens never end; a revisited token ends it at once).
    int list_max_pages = 10000;
    std::uint64_t list_max_bytes = 256ull << 20;
    /// The largest answer body read (its JSON is parsed whole, at several
    /// times its size in memory): a larger one ends the call at once with
    /// errc::response_too_large (not retried), before its body is stored when
    /// it declares its length. The Gemini answers are far smaller (a File
    /// about 1 KiB, a files.list page of 100 about 100 KiB, a generateContent
    /// answer at most a few MiB). The limit used is the smaller of this and
    /// http.max_body_bytes (64 MiB by default); must be positive.
    std::uint64_t max_response_bytes = 16ull << 20;
    /// The poll scheduler of wait_until_active (docs/design-notes.md, "Poll
    /// scheduler") may learn many files' states from files.list pages (100
    /// files a page) instead of one files.get per file, while at least this
    /// many files are waited for and more polls are due than a sweep of the
    /// list takes pages; 0 = never (one files.get per file and round).
    std::size_t poll_list_min_waits = 64;
    /// While a file of at least 16 MiB is PROCESSING, the poll scheduler
    /// sleeps until shortly before the earliest time it could be ACTIVE,
    /// judged by its createTime and sizeBytes against the files of at least
    /// 16 MiB this client saw become ACTIVE (the lowest processing time per
    /// MiB, updateTime - createTime over sizeBytes); docs/design-notes.md,
    /// "Poll scheduler". false: the plain schedule.
    bool poll_by_size = true;

    /// Defaults, then the GEMINI_* environment, then `overrides` (code wins);
    /// the outcome is checked by validate().
    static result<client_options> from_env(const config_overrides& overrides = {},
                                           const env_lookup& env = process_env);

    /// Checks every setting as the environment's are checked (same ranges,
    /// resilience::errc::invalid_config, a message naming the field), in this
    /// order, the first failure returned: retry (validate(retry_policy)),
    /// breaker (validate(breaker_config)), breaker_window
    /// (validate(breaker_rules)), budget (validate(budget_config)), rate_gate
    /// (validate(rate_gate_config)), api_key (printable ASCII, never quoted;
    /// may be empty here), base_url (trailing slashes ignored; an absolute
    /// http(s) URL with a host and a valid port, no user info, query or
    /// fragment: gemini::base_url_problem), api_version (1 to 64 letters, digits, '.',
    /// '_', '-'), request_timeout (0..24 h), http.request_timeout (must be
    /// 0), chunk_size (a positive multiple of 8 MiB), max_response_bytes
    /// (>= 1), list_max_pages (>= 1), list_max_bytes (>= 1), and last the
    /// whole http member (http::client_options::validate()). Not checked, as
    /// every value is valid: on_status, on_event, time, seed, fleet,
    /// poll_list_min_waits, poll_by_size. The client's constructor calls it
    /// and throws resilience::error (a boost::system::system_error) with its
    /// failure.
    result<void> validate() const;
};

/// The options of one Gemini call, the same for every call (get, list,
/// remove, generate_content, upload, wait_until_active, the media task) and
/// for its async_ form. Everything is optional: an unset field takes the
/// client's setting (and so the environment's).
///
/// Not resilience::call_options (retry.hpp), which is the retry pipeline's
/// per-run options, one layer down: this one speaks of a Gemini call (retry
/// *overrides* applied to the client's policy and validated, no classifier,
/// policy pointer or scope, which the client owns), and the client builds a
/// resilience::call_options from it for every pipeline run it makes (the
/// deadline, admission, handlers and tag carried over; the subject, the file
/// or model name). Inside namespace resilience::gemini the unqualified name
/// is this one; code that uses both namespaces should qualify it.
///
/// Converts implicitly from a time_point, so `c.get(name, deadline)` sets
/// only the deadline. Not an aggregate on purpose (the g++ 12 coroutine
/// pitfall: see retry.hpp): build it as a named object, or from a deadline.
struct call_options {
    call_options() = default;
    call_options(time_point d) noexcept : deadline(d) {}  // NOLINT: implicit on purpose

    /// Overall deadline on the client's clock, for the whole call (every
    /// attempt, backoff, breaker and cooldown wait, poll pause). Wherever it
    /// expires the call completes with resilience::errc::deadline_exceeded, and the
    /// breaker does not count it. max() = none.
    time_point deadline = time_point::max();
    /// Per-field changes to the client's retry policy for this call (e.g.
    /// retry.max_retries = 0). Checked at the call: a bad value completes
    /// with resilience::errc::invalid_config naming the field, before anything is sent.
    retry_overrides retry;
    /// Wait for the circuit breaker (bounded by the deadline) or fail fast
    /// with resilience::errc::circuit_open. Unset: wait (the client's default).
    std::optional<admission_mode> admission;
    status_handler on_status;  ///< replaces the client's status handler for this call
    event_handler on_event;    ///< replaces the client's event handler for this call (stats still count)
    /// Names the call: every status line of the call starts with "[tag] ",
    /// and every event carries it (event::tag). Empty = none.
    std::string tag;
};

/// Options of upload(): the call's options plus what an upload needs.
/// Derived from call_options, so that a call_options field is set the same
/// way on every call, and an upload_options is a call_options wherever one
/// is expected.
struct upload_options : call_options {
    upload_options() = default;
    upload_options(time_point d) noexcept : call_options(d) {}  // NOLINT: implicit on purpose
    std::string display_name;  ///< default: the file's base name
    std::string mime_type;     ///< default: from the extension
};

/// Options of wait_until_active(): the call's options (the deadline bounds
/// the whole wait; retry applies to failed polls) plus the poll schedule.
struct wait_options : call_options {
    wait_options() = default;
    wait_options(time_point d) noexcept : call_options(d) {}  // NOLINT: implicit on purpose
    duration poll_initial = std::chrono::seconds(1);  ///< first pause between polls while PROCESSING
    double poll_multiplier = 1.5;                     ///< growth of the pause per poll (1..1000)
    duration poll_max = std::chrono::seconds(10);     ///< the pause never exceeds this
    double poll_jitter = 0.1;                         ///< +/- share of each pause (0..1), spreads many waiters
    /// A poll whose retries end on a transient failure (retries or budget
    /// exhausted, breaker open) does not end the wait: the next round comes
    /// after the pause. With a deadline, rounds go on until it; without one,
    /// the wait ends after this many such rounds in a row.
    int max_failed_rounds = 3;
};

class client;

/// A completion token for a client call completing with `void(error_code, T)`
/// (`void(error_code)` when T is void): what the async_ forms without options
/// take, so that a call missing its token is an overload error.
template <class Token, class T>
concept call_completion_token = boost::asio::completion_token_for<Token, resilience::detail::completion_of_t<T>>;

/// The completion handler the poll scheduler keeps per wait.
using wait_handler = boost::asio::any_completion_handler<void(result<file>)>;

/// What client::wait_until_active returns: an Asio asynchronous operation
/// completing with `void(result<file>)`, started when it is given a
/// completion token (nothing happens before). `co_await` it in a coroutine,
/// the usual spelling (`auto r = co_await gemini.wait_until_active(name);`):
/// the wait is then a record in the client's poll scheduler holding Asio's
/// own small handler, no coroutine of its own. Any other token works too:
/// `std::move(op)(asio::use_awaitable)` is an asio::awaitable<result<file>>
/// (for co_spawn or the awaitable operators), `std::move(op)(f)` calls
/// `f(result<file>)`. Cancellation and executor: the token's (the awaiting
/// coroutine's), as for async_wait_until_active.
class wait_operation {
public:
    wait_operation(wait_operation&&) noexcept = default;
    wait_operation(const wait_operation&) = delete;
    wait_operation& operator=(const wait_operation&) = delete;
    wait_operation& operator=(wait_operation&&) = delete;

    template <class CompletionToken>
        requires boost::asio::completion_token_for<CompletionToken, void(result<file>)>
    auto operator()(CompletionToken&& token) &&;

private:
    friend class client;
    wait_operation(client& c, std::string name, std::unique_ptr<wait_options> opts) noexcept
        : client_(&c), name_(std::move(name)), opts_(std::move(opts)) {}
    // Small: it lives in the awaiting coroutine's frame while the wait sleeps.
    client* client_;
    std::string name_;
    std::unique_ptr<wait_options> opts_;  // null: the defaults; handed to the scheduler's record
};

/// Counters of everything the client did. client::stats() may be called
/// from any thread while calls run: the counters are atomics read one after
/// the other (waits and poll_streams together, under the scheduler's
/// mutex), so a snapshot taken under load may be a request apart between
/// counters.
struct client_stats {
    std::uint64_t calls = 0;          ///< API calls (each may take several attempts)
    std::uint64_t attempts = 0;       ///< HTTP requests sent through the retry pipeline
    std::uint64_t retries = 0;
    std::uint64_t retries_by_kind[error_kind_count] = {};  ///< indexed by error_kind
    std::uint64_t gave_up = 0;
    std::uint64_t cooldown_waits = 0;
    std::uint64_t breaker_waits = 0;
    std::uint64_t breaker_transitions = 0;
    std::uint64_t rate_waits = 0;     ///< attempts the adaptive rate gate held back
    std::uint64_t polls = 0;          ///< files.get calls made by wait_until_active
    std::uint64_t poll_list_pages = 0;  ///< files.list pages read by wait_until_active's list rounds
    std::uint64_t waits = 0;          ///< wait_until_active calls outstanding in the poll scheduler
    std::uint64_t poll_streams = 0;   ///< distinct files they wait for (one poll stream each)
};

class client {
public:
    /// Builds a client: its HTTP client (connection pool, TLS settings) on
    /// `ex`, its circuit breaker, cooldown, retry budget and (if enabled)
    /// adaptive rate gate, and the retry pipeline every call goes through;
    /// attaches them to `opts.fleet` when set. Opens no connection to the
    /// API and sends nothing to it.
    ///
    /// `ex`: the executor the async_ handlers run on by default
    /// (get_executor()); the client's internal executor is a strand of it
    /// unless opts.http.thread_safe is false (then `ex` must be
    /// single-threaded). `opts` is checked first with opts.validate():
    /// throws resilience::error (resilience::errc::invalid_config, the
    /// message naming the field; the API key is never quoted) and builds
    /// nothing on a bad value, and throws it too for an unusable TLS setting
    /// (an http.extra_ca_pem that is not PEM, an http.extra_ca_file that
    /// cannot be loaded). An empty api_key is accepted: requests then carry
    /// no key (the API refuses them; a local server may not). opts.time, when
    /// set, must outlive the client.
    client(boost::asio::any_io_executor ex, client_options opts);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    /// Resumable upload in chunk_size pieces streamed from the file. A failed
    /// chunk asks the server where it stands (`query`) and resumes; a session
    /// the server no longer knows is restarted (at most twice). A file the
    /// server stores as FAILED fails the upload (errc::file_failed) and is
    /// deleted (best effort, within the deadline); the error names it and
    /// says whether it was deleted.
    boost::asio::awaitable<result<file>> upload(std::string path, upload_options opts = upload_options());

    /// files.get. `name` is "files/ID", "ID" or a file URI.
    boost::asio::awaitable<result<file>> get(std::string name, call_options opts = call_options());

    /// files.list, every page.
    boost::asio::awaitable<result<std::vector<file>>> list(call_options opts = call_options());

    /// files.delete.
    boost::asio::awaitable<result<void>> remove(std::string name, call_options opts = call_options());

    /// models/{model}:generateContent.
    boost::asio::awaitable<result<generate_result>> generate_content(std::string model, std::vector<content> contents,
                                                                     call_options opts = call_options());

    /// Polls files.get until the file is ACTIVE (returned), FAILED
    /// (gemini::errc::file_failed with the server's error), or the deadline
    /// (resilience::errc::deadline_exceeded naming the last state seen). While PROCESSING
    /// the pause grows from poll_initial by poll_multiplier up to poll_max;
    /// failed requests follow the retry policy, and the circuit breaker is
    /// waited for rather than failed on; an outage shorter than the deadline
    /// does not end the wait (see max_failed_rounds). Status text is
    /// prefixed "files/ID: ".
    ///
    /// Waits are scheduled, not suspended: the client keeps one poll
    /// scheduler (a timer set driven by one timer on the client's clock); a
    /// wait asleep between polls is a small record in it, and a coroutine
    /// exists only while a poll is in flight (at most the pool's connection
    /// bound of them). Waits on the same file share one poll stream (one
    /// files.get answers all of them; it runs with the oldest wait's retry
    /// overrides and admission mode, and every wait keeps its own deadline,
    /// max_failed_rounds, status and event handlers); with many waits a round
    /// may read files.list pages instead (client_options::poll_list_min_waits).
    /// Returns an asynchronous operation (see wait_operation): `co_await` it.
    /// The options are taken by reference and copied into the operation
    /// (moved from an rvalue), so that no copy of them stays in the awaiting
    /// coroutine's frame while the wait sleeps.
    wait_operation wait_until_active(std::string name, const wait_options& opts);
    wait_operation wait_until_active(std::string name, wait_options&& opts);
    wait_operation wait_until_active(std::string name);  ///< with wait_options()

    // ---- The same calls as Asio asynchronous operations (any completion token).
    //
    // Each async_X(args..., [opts,] [diag,] token) does what X(args..., opts)
    // does above and completes with `void(error_code, T)` (`void(error_code)`
    // for remove), T being what X's result holds (a default T on error).
    // Without `opts` the call takes the defaults (call_options(),
    // upload_options(), wait_options()), as X(args...) does; with or without
    // `diag`, as Boost.MySQL's operations. They follow the same rules,
    // documented once here (Boost.MySQL's sections):
    //
    // Diagnostics: the overload taking `diagnostics& diag` writes the
    // failure's diagnostics there (HTTP status, Google status, server
    // message, RetryInfo, quota, attempts, elapsed) and clears it on
    // success, before the handler runs. Without it only the code is
    // reported; the co_await forms above return both in a result<T>.
    // Object lifetimes: the client and `diag` must outlive the operation;
    // the arguments (options included) are moved into it.
    // Executor: the call runs on the client's internal executor
    // (http().internal_executor(): a strand of get_executor() unless
    // http.thread_safe is false); the handler runs on its associated
    // executor, by default get_executor(); its associated allocator is kept.
    // Per-operation cancellation: terminal, through the handler's associated
    // cancellation slot (e.g. bind_cancellation_slot): reaches the request in
    // flight and any wait (backoff, breaker, cooldown, poll pause), is never
    // retried, and completes with operation_aborted; nothing stays pending.
    // Errors: as the co_await form (the last error's code after retries,
    // resilience::errc::deadline_exceeded, gemini::errc::quota_exhausted,
    // gemini::errc::file_failed, resilience::errc::invalid_argument,
    // resilience::errc::invalid_config for a bad per-call override,
    // operation_aborted, ...).
    // Thread safety: any number of operations may be started from any
    // threads of a multi-threaded io_context without user strands: each
    // enters the client's internal executor (a wait: the poll scheduler).
    // The co_await forms above but wait_until_active run on the awaiting
    // coroutine's executor: from an io_context run by several threads, await
    // async_X(..., asio::use_awaitable) instead, or run it on a strand.

    template <class CompletionToken>
    auto async_upload(std::string path, upload_options opts, CompletionToken&& token);
    template <class CompletionToken>
    auto async_upload(std::string path, upload_options opts, diagnostics& diag, CompletionToken&& token);
    template <call_completion_token<file> CompletionToken>
    auto async_upload(std::string path, CompletionToken&& token);
    template <call_completion_token<file> CompletionToken>
    auto async_upload(std::string path, diagnostics& diag, CompletionToken&& token);

    template <class CompletionToken>
    auto async_get(std::string name, call_options opts, CompletionToken&& token);
    template <class CompletionToken>
    auto async_get(std::string name, call_options opts, diagnostics& diag, CompletionToken&& token);
    template <call_completion_token<file> CompletionToken>
    auto async_get(std::string name, CompletionToken&& token);
    template <call_completion_token<file> CompletionToken>
    auto async_get(std::string name, diagnostics& diag, CompletionToken&& token);

    template <class CompletionToken>
    auto async_list(call_options opts, CompletionToken&& token);
    template <class CompletionToken>
    auto async_list(call_options opts, diagnostics& diag, CompletionToken&& token);
    template <call_completion_token<std::vector<file>> CompletionToken>
    auto async_list(CompletionToken&& token);
    template <call_completion_token<std::vector<file>> CompletionToken>
    auto async_list(diagnostics& diag, CompletionToken&& token);

    template <class CompletionToken>
    auto async_remove(std::string name, call_options opts, CompletionToken&& token);
    template <class CompletionToken>
    auto async_remove(std::string name, call_options opts, diagnostics& diag, CompletionToken&& token);
    template <call_completion_token<void> CompletionToken>
    auto async_remove(std::string name, CompletionToken&& token);
    template <call_completion_token<void> CompletionToken>
    auto async_remove(std::string name, diagnostics& diag, CompletionToken&& token);

    template <class CompletionToken>
    auto async_generate_content(std::string model, std::vector<content> contents, call_options opts,
                                CompletionToken&& token);
    template <class CompletionToken>
    auto async_generate_content(std::string model, std::vector<content> contents, call_options opts,
                                diagnostics& diag, CompletionToken&& token);
    template <call_completion_token<generate_result> CompletionToken>
    auto async_generate_content(std::string model, std::vector<content> contents, CompletionToken&& token);
    template <call_completion_token<generate_result> CompletionToken>
    auto async_generate_content(std::string model, std::vector<content> contents, diagnostics& diag,
                                CompletionToken&& token);

    template <class CompletionToken>
    auto async_wait_until_active(std::string name, wait_options opts, CompletionToken&& token);
    template <class CompletionToken>
    auto async_wait_until_active(std::string name, wait_options opts, diagnostics& diag, CompletionToken&& token);
    template <call_completion_token<file> CompletionToken>
    auto async_wait_until_active(std::string name, CompletionToken&& token);
    template <call_completion_token<file> CompletionToken>
    auto async_wait_until_active(std::string name, diagnostics& diag, CompletionToken&& token);

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
    // The initiation of wait_until_active and async_wait_until_active: a
    // record in the client's poll scheduler (no coroutine while the wait sleeps).
    friend class wait_operation;
    void start_wait(std::string name, std::unique_ptr<wait_options> opts, wait_handler handler);

    std::unique_ptr<impl> impl_;
};

}  // namespace resilience::gemini

#include <resilience/gemini/impl/client.hpp>

#endif
