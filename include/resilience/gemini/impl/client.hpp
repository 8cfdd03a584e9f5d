#ifndef RESILIENCE_GEMINI_IMPL_CLIENT_HPP
#define RESILIENCE_GEMINI_IMPL_CLIENT_HPP

// Template bodies of gemini::client's asynchronous operations (documented in
// gemini/client.hpp): the co_await form co_spawned on the client's internal
// executor (the HTTP client's: a strand unless http.thread_safe is false).

#include <resilience/detail/async_op.hpp>

namespace resilience::detail {
/// Starts a gemini::client call on the client's internal strand.
template <class T, class Client, class MakeBody, class CompletionToken>
auto start_on_client(Client& c, diagnostics* diag, MakeBody make_body, CompletionToken&& token) {
    return async_run_result<T>(c.http().internal_executor(), c.get_executor(), diag, std::move(make_body),
                               std::forward<CompletionToken>(token));
}
}  // namespace resilience::detail

namespace resilience::gemini {


template <class CompletionToken>
auto client::async_upload(std::string path, upload_options opts, CompletionToken&& token) {
    return resilience::detail::start_on_client<file>(*this, nullptr,
                               [this, p = std::move(path), o = std::move(opts)]() mutable {
                                   return upload(std::move(p), std::move(o));
                               },
                               std::forward<CompletionToken>(token));
}
template <class CompletionToken>
auto client::async_upload(std::string path, upload_options opts, diagnostics& diag, CompletionToken&& token) {
    return resilience::detail::start_on_client<file>(*this, &diag,
                               [this, p = std::move(path), o = std::move(opts)]() mutable {
                                   return upload(std::move(p), std::move(o));
                               },
                               std::forward<CompletionToken>(token));
}

template <class CompletionToken>
auto client::async_get(std::string name, call_options opts, CompletionToken&& token) {
    return resilience::detail::start_on_client<file>(*this, nullptr,
                               [this, n = std::move(name), o = std::move(opts)]() mutable {
                                   return get(std::move(n), std::move(o));
                               },
                               std::forward<CompletionToken>(token));
}
template <class CompletionToken>
auto client::async_get(std::string name, call_options opts, diagnostics& diag, CompletionToken&& token) {
    return resilience::detail::start_on_client<file>(*this, &diag,
                               [this, n = std::move(name), o = std::move(opts)]() mutable {
                                   return get(std::move(n), std::move(o));
                               },
                               std::forward<CompletionToken>(token));
}

template <class CompletionToken>
auto client::async_list(call_options opts, CompletionToken&& token) {
    return resilience::detail::start_on_client<std::vector<file>>(
        *this, nullptr, [this, o = std::move(opts)]() mutable { return list(std::move(o)); },
        std::forward<CompletionToken>(token));
}
template <class CompletionToken>
auto client::async_list(call_options opts, diagnostics& diag, CompletionToken&& token) {
    return resilience::detail::start_on_client<std::vector<file>>(
        *this, &diag, [this, o = std::move(opts)]() mutable { return list(std::move(o)); },
        std::forward<CompletionToken>(token));
}

template <class CompletionToken>
auto client::async_remove(std::string name, call_options opts, CompletionToken&& token) {
    return resilience::detail::start_on_client<void>(*this, nullptr,
                               [this, n = std::move(name), o = std::move(opts)]() mutable {
                                   return remove(std::move(n), std::move(o));
                               },
                               std::forward<CompletionToken>(token));
}
template <class CompletionToken>
auto client::async_remove(std::string name, call_options opts, diagnostics& diag, CompletionToken&& token) {
    return resilience::detail::start_on_client<void>(*this, &diag,
                               [this, n = std::move(name), o = std::move(opts)]() mutable {
                                   return remove(std::move(n), std::move(o));
                               },
                               std::forward<CompletionToken>(token));
}

template <class CompletionToken>
auto client::async_generate_content(std::string model, std::vector<content> contents, call_options opts,
                                    CompletionToken&& token) {
    return resilience::detail::start_on_client<generate_result>(
        *this, nullptr,
        [this, m = std::move(model), c = std::move(contents), o = std::move(opts)]() mutable {
            return generate_content(std::move(m), std::move(c), std::move(o));
        },
        std::forward<CompletionToken>(token));
}
template <class CompletionToken>
auto client::async_generate_content(std::string model, std::vector<content> contents, call_options opts,
                                    diagnostics& diag, CompletionToken&& token) {
    return resilience::detail::start_on_client<generate_result>(
        *this, &diag,
        [this, m = std::move(model), c = std::move(contents), o = std::move(opts)]() mutable {
            return generate_content(std::move(m), std::move(c), std::move(o));
        },
        std::forward<CompletionToken>(token));
}

// wait_until_active is a true asynchronous operation: its initiation puts a
// record into the client's poll scheduler (no coroutine per wait); the
// handler is kept type-erased with its associations (executor, allocator,
// cancellation slot). The async_ form's handler is wrapped to take the
// record's `void(result<file>)` completion.
template <class CompletionToken>
    requires boost::asio::completion_token_for<CompletionToken, void(result<file>)>
auto wait_operation::operator()(CompletionToken&& token) && {
    return boost::asio::async_initiate<CompletionToken, void(result<file>)>(
        [c = client_](auto handler, std::string n, std::unique_ptr<wait_options> o) {
            c->start_wait(std::move(n), std::move(o), wait_handler(std::move(handler)));
        },
        token, std::move(name_), std::move(opts_));
}

}  // namespace resilience::gemini

namespace resilience::detail {
/// An async_wait_until_active handler: result<file> to `(error_code, file)`,
/// the diagnostics to `diag` (when given) right before the handler runs.
template <class Handler>
struct wait_completion {
    Handler handler;
    diagnostics* diag;

    void operator()(result<gemini::file> r) {
        if (r) {
            if (diag) *diag = diagnostics();
            std::move(handler)(error_code(), std::move(*r));
        } else {
            failure f = std::move(r).error();
            if (diag) *diag = std::move(f.diag);
            std::move(handler)(f.code, gemini::file());
        }
    }
};
}  // namespace resilience::detail

namespace resilience::gemini {

template <class CompletionToken>
auto client::async_wait_until_active(std::string name, wait_options opts, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(error_code, file)>(
        [this](auto handler, std::string n, wait_options o) {
            using H = std::decay_t<decltype(handler)>;
            start_wait(std::move(n), std::make_unique<wait_options>(std::move(o)),
                       wait_handler(resilience::detail::wait_completion<H>{std::move(handler), nullptr}));
        },
        token, std::move(name), std::move(opts));
}
template <class CompletionToken>
auto client::async_wait_until_active(std::string name, wait_options opts, diagnostics& diag,
                                     CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(error_code, file)>(
        [this, &diag](auto handler, std::string n, wait_options o) {
            using H = std::decay_t<decltype(handler)>;
            start_wait(std::move(n), std::make_unique<wait_options>(std::move(o)),
                       wait_handler(resilience::detail::wait_completion<H>{std::move(handler), &diag}));
        },
        token, std::move(name), std::move(opts));
}

// The forms without options: the call's defaults, as the co_await forms'.
template <call_completion_token<file> CompletionToken>
auto client::async_upload(std::string path, CompletionToken&& token) {
    return async_upload(std::move(path), upload_options(), std::forward<CompletionToken>(token));
}
template <call_completion_token<file> CompletionToken>
auto client::async_upload(std::string path, diagnostics& diag, CompletionToken&& token) {
    return async_upload(std::move(path), upload_options(), diag, std::forward<CompletionToken>(token));
}
template <call_completion_token<file> CompletionToken>
auto client::async_get(std::string name, CompletionToken&& token) {
    return async_get(std::move(name), call_options(), std::forward<CompletionToken>(token));
}
template <call_completion_token<file> CompletionToken>
auto client::async_get(std::string name, diagnostics& diag, CompletionToken&& token) {
    return async_get(std::move(name), call_options(), diag, std::forward<CompletionToken>(token));
}
template <call_completion_token<std::vector<file>> CompletionToken>
auto client::async_list(CompletionToken&& token) {
    return async_list(call_options(), std::forward<CompletionToken>(token));
}
template <call_completion_token<std::vector<file>> CompletionToken>
auto client::async_list(diagnostics& diag, CompletionToken&& token) {
    return async_list(call_options(), diag, std::forward<CompletionToken>(token));
}
template <call_completion_token<void> CompletionToken>
auto client::async_remove(std::string name, CompletionToken&& token) {
    return async_remove(std::move(name), call_options(), std::forward<CompletionToken>(token));
}
template <call_completion_token<void> CompletionToken>
auto client::async_remove(std::string name, diagnostics& diag, CompletionToken&& token) {
    return async_remove(std::move(name), call_options(), diag, std::forward<CompletionToken>(token));
}
template <call_completion_token<generate_result> CompletionToken>
auto client::async_generate_content(std::string model, std::vector<content> contents, CompletionToken&& token) {
    return async_generate_content(std::move(model), std::move(contents), call_options(),
                                  std::forward<CompletionToken>(token));
}
template <call_completion_token<generate_result> CompletionToken>
auto client::async_generate_content(std::string model, std::vector<content> contents, diagnostics& diag,
                                    CompletionToken&& token) {
    return async_generate_content(std::move(model), std::move(contents), call_options(), diag,
                                  std::forward<CompletionToken>(token));
}
template <call_completion_token<file> CompletionToken>
auto client::async_wait_until_active(std::string name, CompletionToken&& token) {
    return async_wait_until_active(std::move(name), wait_options(), std::forward<CompletionToken>(token));
}
template <call_completion_token<file> CompletionToken>
auto client::async_wait_until_active(std::string name, diagnostics& diag, CompletionToken&& token) {
    return async_wait_until_active(std::move(name), wait_options(), diag, std::forward<CompletionToken>(token));
}

}  // namespace resilience::gemini

namespace boost::asio {
// Every association (executor, allocator, cancellation slot): the user's handler's.
template <template <typename, typename> class Associator, class Handler, class DefaultCandidate>
struct associator<Associator, resilience::detail::wait_completion<Handler>, DefaultCandidate>
    : Associator<Handler, DefaultCandidate> {
    static typename Associator<Handler, DefaultCandidate>::type get(
        const resilience::detail::wait_completion<Handler>& h) noexcept {
        return Associator<Handler, DefaultCandidate>::get(h.handler);
    }
    static auto get(const resilience::detail::wait_completion<Handler>& h, const DefaultCandidate& c) noexcept
        -> decltype(Associator<Handler, DefaultCandidate>::get(h.handler, c)) {
        return Associator<Handler, DefaultCandidate>::get(h.handler, c);
    }
};
}  // namespace boost::asio

#endif
