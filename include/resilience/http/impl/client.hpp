#ifndef RESILIENCE_HTTP_IMPL_CLIENT_HPP
#define RESILIENCE_HTTP_IMPL_CLIENT_HPP

// Template bodies of http::client's asynchronous operations (documented in
// http/client.hpp): send() co_spawned on the client's internal executor.

#include <resilience/detail/async_op.hpp>

namespace resilience::http {

template <class CompletionToken>
auto client::async_send(request req, CompletionToken&& token) {
    return resilience::detail::async_run_result<response>(
        internal_executor(), get_executor(), nullptr,
        [this, r = std::move(req)]() mutable { return send(std::move(r)); }, std::forward<CompletionToken>(token));
}

template <class CompletionToken>
auto client::async_send(request req, diagnostics& diag, CompletionToken&& token) {
    return resilience::detail::async_run_result<response>(
        internal_executor(), get_executor(), &diag,
        [this, r = std::move(req)]() mutable { return send(std::move(r)); }, std::forward<CompletionToken>(token));
}

template <class CompletionToken>
auto client::async_send(request req, request_options opts, CompletionToken&& token) {
    return resilience::detail::async_run_result<response>(
        internal_executor(), get_executor(), nullptr,
        [this, r = std::move(req), o = std::move(opts)]() mutable { return send(std::move(r), std::move(o)); },
        std::forward<CompletionToken>(token));
}

template <class CompletionToken>
auto client::async_send(request req, request_options opts, diagnostics& diag, CompletionToken&& token) {
    return resilience::detail::async_run_result<response>(
        internal_executor(), get_executor(), &diag,
        [this, r = std::move(req), o = std::move(opts)]() mutable { return send(std::move(r), std::move(o)); },
        std::forward<CompletionToken>(token));
}

}  // namespace resilience::http

#endif
