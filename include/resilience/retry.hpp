#ifndef RESILIENCE_RETRY_HPP
#define RESILIENCE_RETRY_HPP

// The awaitable retry combinator.
//
// A `pipeline` holds what many calls share (policy, callbacks, clock, jitter
// source, and later the shared gates) and runs operations:
//
//   resilience::pipeline p({.policy = {.max_retries = 3}, .on_status = print});
//   resilience::result<response> r = co_await p.run([&] { return client.get(url); });
//
// The operation is a factory, called once per attempt, returning
// `asio::awaitable<result<T>>` (or `asio::awaitable<T>` that throws
// `resilience::error` / `boost::system::system_error`). A factory may take an
// `attempt_context` to learn the attempt number and its deadline.
//
// Semantics (DESIGN.md): attempt 0 is the first call; failures the classifier
// calls retryable are retried up to `max_retries` times with jittered
// exponential backoff on the pipeline's clock; a server pushback (429/503
// Retry-After, RetryInfo) replaces the computed delay, capped at
// `pushback_cap()`; the overall deadline holds (a backoff that would end past
// it is not slept; an attempt's timeout shrinks to what remains); per-operation
// cancellation wakes a backoff at once, is never retried, and completes with
// operation_aborted.
//
// Lifetimes: the pipeline must outlive every operation run on it. The
// factory is moved into the coroutine frame.
//
// g++ 12 pitfall (fixed in later GCC, absent in clang): a temporary that owns
// resources and is created inside a `co_await` expression -- a lambda
// capturing a std::string by value, a braced aggregate -- is relocated
// bitwise and freed twice. Capture by reference, or name the lambda first:
//   auto op = [name] { return client.get(name); };
//   co_await p.run(op);
//
// Cost: without a deadline, attempt timeout or event handler, the success
// path reads no clock (so diag.elapsed of a failure then counts from the end
// of the first attempt), and `run(factory)` without call options copies none.
// Attempt 0 takes that quick path (no state machine) also with an event
// handler that does not want attempt_started nor attempt_succeeded
// (retry_options::event_types), and with an attempt timeout when the factory
// is a detail::self_timed one (one clock read).
//
// Executor: the coroutine runs on the awaiting coroutine's executor.
// Cancellation: the awaiting coroutine's cancellation state (terminal by
// default in Asio); a cancelled call completes with operation_aborted.

#include <resilience/circuit_breaker.hpp>
#include <resilience/clock.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/rate_gate.hpp>
#include <resilience/retry_budget.hpp>
#include <resilience/config.hpp>
#include <resilience/diagnostics.hpp>
#include <resilience/events.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>

namespace resilience {

/// What a factory may learn about the attempt it makes.
struct attempt_context {
    int attempt = 0;                          ///< 0-based
    time_point deadline = time_point::max();  ///< when this attempt must be over (max() = none)
    clock* time = nullptr;                    ///< the pipeline's clock
};

/// Decides the kind of a failure. The default is classify(f.code).
using classifier = std::function<error_kind(const failure&)>;
error_kind default_classify(const failure& f) noexcept;

/// What a call does when the circuit breaker refuses it.
enum class admission_mode : unsigned char {
    wait,       ///< wait for admission (open timeout, a probe's verdict), bounded by deadline and cancellation
    fail_fast,  ///< give up at once with errc::circuit_open
};

/// Shared by every call of a pipeline.
///
/// Gates (all optional, all shareable by many pipelines across threads; they
/// must outlive every operation that uses them, which holding them here
/// ensures while the pipeline lives):
/// - `breaker`: checked before every attempt; attempts' outcomes feed it
///   (only the kinds in its counted_kinds count). Refused calls wait or fail
///   fast (`admission`). A probe cancelled, cut by the deadline or destroyed
///   gives its slot back.
/// - `cooldown`: before every attempt (the first one too) the call waits until
///   its scope's "not before" time; a failure carrying a pushback delay sets
///   it for the whole scope (capped like the pushback itself). A wait that
///   would end past the deadline gives up at once (reason deadline). Such a
///   wait reports `Rate limited. Respecting Retry-After header: Xs` with the
///   time left, so every operation held back by another one's 429 says why
///   it is idle; the operation that got the 429 reports it once, as before.
/// - `budget`: every failed attempt with a retryable kind takes a token, every
///   success gives token_ratio back; a retry the budget refuses ends the call
///   with errc::retry_budget_exhausted (reason budget). It never waits.
/// - `rate_gate`: the adaptive rate gate (rate_gate.hpp), off unless set and
///   its config enabled. Before every attempt (after the cooldown, before
///   the breaker, so that a held call takes no probe slot) the call takes a
///   send slot from its scope's bucket and sleeps until it (on the clock,
///   bounded by the deadline and cancellation: a slot past the deadline
///   ends the call at once with errc::deadline_exceeded); every answer feeds
///   the gate, throttled when classified retryable_rate_limit (or a 503 with
///   a pushback). A held attempt says `Waiting Ns for the rate gate (R
///   requests/s)...` and emits event_type::rate_wait, once per attempt. Until
///   a scope is throttled the gate holds nobody; when it is on, calls take
///   the state machine (they read the clock after each attempt).
struct retry_options {
    retry_policy policy{};
    status_handler on_status;     ///< status text; empty = none
    event_handler on_event;       ///< structured events; empty = none
    classifier classify;          ///< empty = default_classify
    clock* time = nullptr;        ///< nullptr = steady_clock(); must outlive the pipeline
    std::uint64_t seed = 0;       ///< jitter seed; 0 = from std::random_device
    std::shared_ptr<circuit_breaker> breaker;  ///< shared breaker; null = none
    std::shared_ptr<resilience::cooldown> cooldown;  ///< shared cooldown map; null = none
    /// Shared retry budget (gRPC retry throttling, 100 tokens, ratio 1), on by
    /// default: copies of these options share it. Set to null to turn it off.
    std::shared_ptr<retry_budget> budget = std::make_shared<retry_budget>();
    /// Shared adaptive rate gate; null (or its config not enabled) = off.
    std::shared_ptr<resilience::rate_gate> rate_gate;
    std::string scope;            ///< cooldown and rate gate scope (e.g. make_scope(host, key)); hashed, never stored
    admission_mode admission = admission_mode::wait;
    /// The types of event `on_event` is given (a call's own handler gets
    /// all). Without attempt_started and attempt_succeeded, a success of
    /// attempt 0 takes the quick path (see Cost above), and a failure of it
    /// may report attempt_elapsed zero.
    event_mask event_types = all_events;
};

/// Per call. Everything here is optional.
///
/// The retry pipeline's per-run options, for code that drives a pipeline
/// itself. Not gemini::call_options (gemini/client.hpp), the Gemini client's
/// per-call options one layer up: that one carries retry *overrides*
/// (applied to the client's policy and validated), and the client turns it
/// into one of these for every pipeline run; this one takes a whole
/// replacement policy by pointer, a classifier, a scope and a subject, which
/// a Gemini call does not expose. Code that uses both namespaces should
/// qualify the name.
///
/// Not an aggregate on purpose: g++ 12 miscompiles a temporary aggregate (or a
/// lambda that owns a std::string or another resource) created inside a
/// `co_await` expression, so `co_await p.run(f, {})` must not build one. Set
/// fields on a named object, or use the default.
struct call_options {
    call_options() = default;
    time_point deadline = time_point::max();  ///< overall deadline on the pipeline's clock
    std::string subject;                      ///< what the call is about, for events (e.g. a file name)
    status_handler on_status;                 ///< replaces the pipeline's for this call
    event_handler on_event;                   ///< replaces the pipeline's for this call
    classifier classify;                      ///< replaces the pipeline's for this call
    const retry_policy* policy = nullptr;     ///< replaces the pipeline's for this call (must outlive it)
    std::string scope;                        ///< cooldown and rate gate scope; empty = the pipeline's
    std::optional<admission_mode> admission;  ///< replaces the pipeline's for this call
    std::string tag;                          ///< names the call in every event (event::tag); status text is unchanged
};

namespace detail {
/// The value a factory's return yields: an awaitable's value type, or, for a
/// deferred Asio operation completing with `void(error_code, Ts...)`,
/// result<void>, result<T> or result<std::tuple<Ts...>> (impl/async_retry.hpp).
template <class A, class = void> struct awaitable_value;
template <class T, class E> struct awaitable_value<boost::asio::awaitable<T, E>, void> { using type = T; };
template <class T> struct is_awaitable : std::false_type {};
template <class T, class E> struct is_awaitable<boost::asio::awaitable<T, E>> : std::true_type {};
/// What co_awaiting a deferred operation with as_tuple(use_awaitable) yields.
template <class Op>
using deferred_tuple_t = typename awaitable_value<decltype(std::declval<Op>()(
    boost::asio::as_tuple(boost::asio::use_awaitable)))>::type;
template <class Tuple> struct deferred_result;
template <class... Ts> struct deferred_result<std::tuple<error_code, Ts...>> {
    using type = result<std::tuple<Ts...>>;
};
template <> struct deferred_result<std::tuple<error_code>> { using type = result<void>; };
template <class T> struct deferred_result<std::tuple<error_code, T>> { using type = result<T>; };
template <class Op>
struct awaitable_value<Op, std::enable_if_t<!is_awaitable<Op>::value &&
                                            is_awaitable<decltype(std::declval<Op>()(boost::asio::as_tuple(
                                                boost::asio::use_awaitable)))>::value>> {
    static_assert(std::is_same_v<std::tuple_element_t<0, deferred_tuple_t<Op>>, error_code>,
                  "a deferred operation given to the retry combinator must complete with void(error_code, Ts...)");
    using type = typename deferred_result<deferred_tuple_t<Op>>::type;
};
template <class T> struct unwrap_result { using type = T; static constexpr bool is_result = false; };
template <class T> struct unwrap_result<result<T>> { using type = T; static constexpr bool is_result = true; };

template <class F>
auto call_factory(F& f, const attempt_context& ctx) {
    if constexpr (std::is_invocable_v<F&, const attempt_context&>)
        return f(ctx);
    else
        return f();
}
/// A factory whose every attempt ends itself when attempt_context::deadline
/// passes, completing with errc::attempt_timeout (it hands the deadline on,
/// e.g. as http::request_options::deadline to its one HTTP request): the
/// pipeline then races no timer of its own against the attempt (a parallel
/// group, two coroutines and a timer per attempt), and reports such a
/// failure as it reports its own timeout (retry_fsm::timed_out).
template <class F>
struct self_timed {
    F f;
    auto operator()(const attempt_context& ctx) { return call_factory(f, ctx); }
};
template <class F> struct is_self_timed : std::false_type {};
template <class F> struct is_self_timed<self_timed<F>> : std::true_type {};
template <class F>
using factory_awaitable_t = decltype(call_factory(std::declval<F&>(), std::declval<const attempt_context&>()));
template <class F>
using factory_value_t = typename unwrap_result<typename awaitable_value<factory_awaitable_t<F>>::type>::type;

/// The retry loop's decisions, without I/O (detail/retry_fsm.hpp).
class retry_fsm;
/// A default-constructed call_options, shared (never modified).
const call_options& default_call_options() noexcept;
/// run(factory) without call options: the default ones, none in the frame.
struct no_call_options {};
inline const call_options& options_of(const call_options& c) noexcept { return c; }
inline const call_options& options_of(no_call_options) noexcept { return default_call_options(); }

/// A successful attempt, heard by the breaker (through the permit) and the
/// budget: the one place both the quick path and retry_fsm record it.
inline std::optional<breaker_transition> record_success(const retry_options& o, breaker_permit& permit) {
    std::optional<breaker_transition> t;
    if (permit) t = permit.succeeded();
    if (const auto& b = o.budget) b->on_success();
    return t;
}

}  // namespace detail

class pipeline {
public:
    explicit pipeline(retry_options opts = {});
    pipeline(const pipeline&) = delete;
    pipeline& operator=(const pipeline&) = delete;

    const retry_options& options() const noexcept { return opts_; }
    clock& time() const noexcept { return *clock_; }

    /// Runs `factory` under the retry policy. See the header comment.
    template <class Factory>
    boost::asio::awaitable<result<detail::factory_value_t<Factory>>> run(Factory factory, call_options call);
    /// Same with default call options (the cheapest form).
    template <class Factory>
    boost::asio::awaitable<result<detail::factory_value_t<Factory>>> run(Factory factory);

    /// Runs `factory` under the retry policy, as an Asio asynchronous
    /// operation taking any completion token (impl/async_retry.hpp has the
    /// full documentation).
    ///
    /// Completion signature: `void(error_code, T)` (`void(error_code)` when T
    /// is void), T = detail::factory_value_t<Factory> (default-constructible;
    /// a default T is passed on error). `diag` receives the failure's
    /// diagnostics (cleared on success). The retried operation runs on `ex`;
    /// the handler runs on its associated executor, by default `ex`.
    template <class Executor, class Factory, class CompletionToken>
    auto async_run(const Executor& ex, Factory factory, CompletionToken&& token);
    template <class Executor, class Factory, class CompletionToken>
    auto async_run(const Executor& ex, Factory factory, call_options call, diagnostics& diag, CompletionToken&& token);

    /// A sample in [0, 1) from the pipeline's jitter source (thread-safe).
    double next_uniform() noexcept { return rng_.next(); }

private:
    /// The one body of run(factory[, call]) (impl/retry.hpp); async_run
    /// co_spawns it too.
    template <class T, class Factory, class Call>
    boost::asio::awaitable<result<T>> run_body(Factory factory, Call call);

    /// The gates' success path for attempt 0 (breaker CLOSED, no cooldown in
    /// force); no side effect when it returns false.
    bool quick_gates(breaker_permit& permit) {
        if (const auto& cd = opts_.cooldown; cd && !cd->never_deferred() && !cd->clear_at(clock_->now()))
            return false;
        if (const auto& b = opts_.breaker) return b->try_acquire_closed(permit);
        return true;
    }
    /// Attempt 0 of `call` may run on the quick path (no retry_fsm): no
    /// event handler wanting its events, no call event handler, no deadline;
    /// no attempt timeout unless `timed` (a self-timed factory: the quick
    /// path then bounds the attempt itself).
    bool quick_call(detail::no_call_options, bool timed) const noexcept { return timed ? quick_timed_ : quick_; }
    bool quick_call(const call_options& call, bool timed) const noexcept {
        return (timed ? quick_timed_ : quick_ && (!call.policy || call.policy->attempt_timeout.count() <= 0)) &&
               call.deadline == time_point::max() && !call.on_event;
    }
    /// The attempt timeout of `call` (0 = none).
    duration attempt_timeout(detail::no_call_options) const noexcept { return opts_.policy.attempt_timeout; }
    duration attempt_timeout(const call_options& call) const noexcept {
        return (call.policy ? *call.policy : opts_.policy).attempt_timeout;
    }

    retry_options opts_;
    clock* clock_;
    /// Attempt 0 on the quick path (no deadline), shared by its calls.
    attempt_context quick_context_;
    jitter_source rng_;
    /// No pipeline event handler wanting attempt 0's events, no attempt
    /// timeout, no rate gate on.
    bool quick_ = false;
    /// The same, any attempt timeout (for self-timed factories).
    bool quick_timed_ = false;
    /// A breaker or a cooldown is set.
    bool gates_ = false;
};

/// One-shot form: builds a pipeline for this call only.
template <class Factory>
boost::asio::awaitable<result<detail::factory_value_t<Factory>>> retry(Factory factory, retry_options opts,
                                                                        call_options call = {});

}  // namespace resilience

#include <resilience/detail/retry_fsm.hpp>
#include <resilience/impl/retry.hpp>
#include <resilience/impl/async_retry.hpp>

#endif
