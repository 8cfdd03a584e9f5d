#ifndef RESILIENCE_DETAIL_ASYNC_OP_HPP
#define RESILIENCE_DETAIL_ASYNC_OP_HPP

// The bridge from the library's coroutines (which return result<T>) to Asio's
// universal asynchronous model: any completion token, an error_code-first
// completion signature, diagnostics through an optional out-parameter.
//
// An `async_*` operation calls
//   detail::async_run_result<T>(body_ex, io_ex, diag, make_body, token)
// which is asio::async_initiate with an initiation that co_spawns the body
// (make_body() returns asio::awaitable<result<T>>) on `body_ex` (the client's
// strand, or the executor a pipeline call was given) and completes the
// user's handler with `void(error_code, T)` (`void(error_code)` for T = void):
//
// - executor: the handler is invoked on its associated executor, by default
//   `io_ex` (the object's executor, as for any Asio I/O object);
// - allocator: the handler's associated allocator is forwarded to the handler
//   co_spawn holds (the coroutine frames themselves use Asio's recycling
//   allocator);
// - cancellation: the handler's associated cancellation slot is connected to
//   the spawned coroutine (co_spawn does that): a terminal signal ends the
//   operation with operation_aborted;
// - diagnostics: when `diag` is not null, it is cleared on success and set
//   to the failure's diagnostics on error, on the handler's executor, right
//   before the handler runs;
// - exceptions: a resilience::error or boost::system::system_error escaping
//   the body becomes its code (and diagnostics); any other exception
//   (std::bad_alloc, an exception thrown by a user callback) is rethrown from
//   the completion, i.e. out of the io_context's run(), as Asio does for a
//   throwing handler.

#include <resilience/diagnostics.hpp>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/associator.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <exception>
#include <type_traits>
#include <utility>

namespace resilience::detail {

/// The completion signature of an operation producing a T.
template <class T>
struct completion_of {
    using type = void(error_code, T);
};
template <>
struct completion_of<void> {
    using type = void(error_code);
};
template <class T>
using completion_of_t = typename completion_of<T>::type;

/// The handler given to co_spawn: turns (exception_ptr, result<T>) into the
/// error_code-first completion of the user's handler.
template <class Handler, class T, class IoExecutor>
struct result_handler {
    Handler handler;
    diagnostics* diag;
    IoExecutor io_ex;

    void operator()(std::exception_ptr e, result<T> r) {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const resilience::error& x) {
                r = x.get_failure();
            } catch (const boost::system::system_error& x) {
                r = failure(x.code(), x.what());
            }
        }
        if (r) {
            if (diag) *diag = diagnostics();
            if constexpr (std::is_void_v<T>)
                std::move(handler)(error_code());
            else
                std::move(handler)(error_code(), std::move(*r));
        } else {
            failure f = std::move(r).error();
            if (diag) *diag = std::move(f.diag);
            if constexpr (std::is_void_v<T>)
                std::move(handler)(f.code);
            else
                std::move(handler)(f.code, T());
        }
    }
};

/// asio::async_initiate's initiation: co_spawns make_body() on body_ex.
template <class T, class BodyExecutor, class IoExecutor>
struct spawn_initiation {
    BodyExecutor body_ex;
    IoExecutor io_ex;

    template <class Handler, class MakeBody>
    void operator()(Handler&& handler, diagnostics* diag, MakeBody make_body) const {
        using H = std::decay_t<Handler>;
        boost::asio::co_spawn(body_ex, std::move(make_body),
                              result_handler<H, T, IoExecutor>{std::forward<Handler>(handler), diag, io_ex});
    }
};

template <class T, class BodyExecutor, class IoExecutor, class MakeBody, class CompletionToken>
auto async_run_result(const BodyExecutor& body_ex, const IoExecutor& io_ex, diagnostics* diag, MakeBody make_body,
                      CompletionToken&& token) {
    static_assert(std::is_void_v<T> || std::is_default_constructible_v<T>,
                  "the value of an asynchronous operation must be default-constructible (it is passed on error)");
    return boost::asio::async_initiate<CompletionToken, completion_of_t<T>>(
        spawn_initiation<T, BodyExecutor, IoExecutor>{body_ex, io_ex}, token, diag, std::move(make_body));
}

}  // namespace resilience::detail

namespace boost::asio {

// Allocator, cancellation slot and any other association: the user's handler's.
template <template <typename, typename> class Associator, class Handler, class T, class IoExecutor,
          class DefaultCandidate>
struct associator<Associator, resilience::detail::result_handler<Handler, T, IoExecutor>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
    static typename Associator<Handler, DefaultCandidate>::type get(
        const resilience::detail::result_handler<Handler, T, IoExecutor>& h) noexcept {
        return Associator<Handler, DefaultCandidate>::get(h.handler);
    }
    static auto get(const resilience::detail::result_handler<Handler, T, IoExecutor>& h,
                    const DefaultCandidate& c) noexcept -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c)) {
        return Associator<Handler, DefaultCandidate>::get(h.handler, c);
    }
};

// Executor: the user's handler's, by default the object's executor (not the
// strand or executor the body runs on).
template <class Handler, class T, class IoExecutor, class DefaultCandidate>
struct associator<associated_executor, resilience::detail::result_handler<Handler, T, IoExecutor>, DefaultCandidate> {
    using type = associated_executor_t<Handler, IoExecutor>;
    static type get(const resilience::detail::result_handler<Handler, T, IoExecutor>& h) noexcept {
        return boost::asio::get_associated_executor(h.handler, h.io_ex);
    }
    static type get(const resilience::detail::result_handler<Handler, T, IoExecutor>& h,
                    const DefaultCandidate&) noexcept {
        return boost::asio::get_associated_executor(h.handler, h.io_ex);
    }
};

}  // namespace boost::asio

#endif
