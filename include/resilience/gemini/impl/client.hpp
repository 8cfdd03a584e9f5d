#ifndef RESILIENCE_GEMINI_IMPL_CLIENT_HPP
#define RESILIENCE_GEMINI_IMPL_CLIENT_HPP

// Template bodies of gemini::client's asynchronous operations (documented in
// gemini/client.hpp): the co_await form co_spawned on the client's internal
// strand (the HTTP client's, so that its requests make no further hop).

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
// cancellation slot).
template <class CompletionToken>
auto client::async_wait_until_active(std::string name, wait_options opts, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(error_code, file)>(
        [this](auto handler, std::string n, wait_options o) {
            start_wait(std::move(n), std::move(o), nullptr,
                       boost::asio::any_completion_handler<void(error_code, file)>(std::move(handler)));
        },
        token, std::move(name), std::move(opts));
}
template <class CompletionToken>
auto client::async_wait_until_active(std::string name, wait_options opts, diagnostics& diag,
                                     CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(error_code, file)>(
        [this, &diag](auto handler, std::string n, wait_options o) {
            start_wait(std::move(n), std::move(o), &diag,
                       boost::asio::any_completion_handler<void(error_code, file)>(std::move(handler)));
        },
        token, std::move(name), std::move(opts));
}

}  // namespace resilience::gemini

#endif
