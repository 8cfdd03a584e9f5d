#include <resilience/diagnostics.hpp>
#include <resilience/error.hpp>

#include <boost/asio/error.hpp>

#include <array>
#include <atomic>

namespace resilience {
namespace {

class resilience_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "resilience"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::success: return "success";
        case errc::circuit_open: return "circuit breaker is open";
        case errc::retries_exhausted: return "retries exhausted";
        case errc::retry_budget_exhausted: return "retry budget exhausted";
        case errc::deadline_exceeded: return "deadline exceeded";
        case errc::attempt_timeout: return "attempt timed out";
        case errc::http_unauthorized: return "HTTP 401 unauthorized";
        case errc::http_forbidden: return "HTTP 403 forbidden";
        case errc::http_too_many_requests: return "HTTP 429 too many requests";
        case errc::http_client_error: return "HTTP client error (4xx)";
        case errc::http_server_error: return "HTTP server error (5xx)";
        case errc::http_unexpected_status: return "unexpected HTTP status";
        case errc::malformed_response: return "malformed response";
        case errc::response_too_large: return "response exceeds the size limit";
        case errc::invalid_argument: return "invalid argument";
        case errc::invalid_config: return "invalid configuration";
        case errc::quota_exhausted: return "quota exhausted";
        case errc::file_failed: return "file processing failed";
        case errc::file_not_active: return "file is not active";
        case errc::http_request_timeout: return "HTTP 408 request timeout";
        case errc::operation_threw: return "the operation threw an exception";
        case errc::untrusted_url: return "the server named a URL outside the configured origin";
        }
        return "unknown resilience error";
    }
};

class condition_category_impl final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "resilience.condition"; }
    std::string message(int ev) const override {
        switch (static_cast<condition>(ev)) {
        case condition::transient: return "transient failure (worth retrying)";
        case condition::permanent: return "permanent failure (retrying will not help)";
        case condition::throttled: return "throttled (rate limited or over quota for now)";
        case condition::deadline: return "the deadline passed";
        }
        return "unknown resilience condition";
    }
    bool equivalent(const error_code& code, int cond) const noexcept override {
        if (!code) return false;
        switch (static_cast<condition>(cond)) {
        case condition::transient: return is_retryable(classify(code));
        case condition::permanent: return !is_retryable(classify(code));
        case condition::throttled: return classify(code) == error_kind::retryable_rate_limit;
        case condition::deadline:
            return code == errc::deadline_exceeded ||
                   (code.category() != resilience::error_category() &&
                    code.category().equivalent(code.value(), make_error_condition(condition::deadline)));
        }
        return false;
    }
};

bool is_network(const error_code& ec) noexcept {
    namespace ae = boost::asio::error;
    return ec == ae::connection_refused || ec == ae::connection_reset || ec == ae::connection_aborted ||
           ec == ae::timed_out || ec == ae::host_unreachable || ec == ae::network_unreachable ||
           ec == ae::network_down || ec == ae::network_reset || ec == ae::broken_pipe || ec == ae::not_connected ||
           ec == ae::shut_down || ec == ae::try_again || ec == ae::host_not_found ||
           ec == ae::host_not_found_try_again || ec == ae::no_data || ec == ae::eof || ec == ae::no_buffer_space;
}

// Classifiers of the layers above (constant-initialised: usable during
// static initialisation).
std::array<std::atomic<category_classifier>, 8> classifiers{};

std::optional<error_kind> from_classifiers(const error_code& ec) noexcept {
    for (auto& slot : classifiers) {
        auto f = slot.load(std::memory_order_acquire);
        if (!f) break;
        if (auto k = f(ec)) return k;
    }
    return std::nullopt;
}

}  // namespace

const boost::system::error_category& error_category() noexcept {
    static const resilience_category c;
    return c;
}
const boost::system::error_category& condition_category() noexcept {
    static const condition_category_impl c;
    return c;
}

std::string_view to_string(error_kind k) noexcept {
    switch (k) {
    case error_kind::retryable_network: return "RETRYABLE_NETWORK";
    case error_kind::retryable_rate_limit: return "RETRYABLE_RATE_LIMIT";
    case error_kind::retryable_server: return "RETRYABLE_SERVER";
    case error_kind::non_retryable_auth: return "NON_RETRYABLE_AUTH";
    case error_kind::non_retryable_client: return "NON_RETRYABLE_CLIENT";
    case error_kind::non_retryable_aborted: return "NON_RETRYABLE_ABORTED";
    }
    return "UNKNOWN";
}

error_kind classify(const error_code& ec) noexcept {
    if (ec == boost::asio::error::operation_aborted || ec == boost::system::errc::operation_canceled)
        return error_kind::non_retryable_aborted;
    if (ec.category() == error_category()) {
        switch (static_cast<errc>(ec.value())) {
        case errc::attempt_timeout:
        case errc::http_request_timeout: return error_kind::retryable_network;
        case errc::http_too_many_requests: return error_kind::retryable_rate_limit;
        case errc::http_server_error:
        case errc::malformed_response:
        case errc::circuit_open: return error_kind::retryable_server;
        case errc::http_unauthorized:
        case errc::http_forbidden: return error_kind::non_retryable_auth;
        default: return error_kind::non_retryable_client;
        }
    }
    if (is_network(ec)) return error_kind::retryable_network;
    if (auto k = from_classifiers(ec)) return *k;
    // Another library's code opts in by mapping to one of our conditions.
    const auto& cat = ec.category();
    if (cat.equivalent(ec.value(), make_error_condition(condition::throttled)))
        return error_kind::retryable_rate_limit;
    if (cat.equivalent(ec.value(), make_error_condition(condition::transient)))
        return error_kind::retryable_server;
    return error_kind::non_retryable_client;
}

bool add_classifier(category_classifier f) noexcept {
    if (!f) return false;
    for (auto& slot : classifiers) {
        category_classifier cur = nullptr;
        if (slot.compare_exchange_strong(cur, f, std::memory_order_acq_rel) || cur == f) return true;
    }
    return false;
}

error_code http_status_to_error(int status) noexcept {
    if (status >= 200 && status < 300) return {};
    if (status == 401) return errc::http_unauthorized;
    if (status == 403) return errc::http_forbidden;
    if (status == 408) return errc::http_request_timeout;
    if (status == 429) return errc::http_too_many_requests;
    if (status >= 400 && status < 500) return errc::http_client_error;
    if (status >= 500 && status < 600) return errc::http_server_error;
    return errc::http_unexpected_status;
}

error_kind classify_http_status(int status) noexcept { return classify(http_status_to_error(status)); }

std::string_view to_string(give_up_reason r) noexcept {
    switch (r) {
    case give_up_reason::none: return "none";
    case give_up_reason::non_retryable: return "non-retryable error";
    case give_up_reason::max_retries: return "retries exhausted";
    case give_up_reason::deadline: return "deadline";
    case give_up_reason::budget: return "retry budget exhausted";
    case give_up_reason::circuit_open: return "circuit breaker open";
    case give_up_reason::cancelled: return "cancelled";
    }
    return "unknown";
}

std::string failure::what() const {
    if (!diag.message.empty()) return diag.message;
    return code.message();
}

error::error(failure f) : boost::system::system_error(f.code, f.diag.message), f_(std::move(f)) {}

void throw_exception_from_error(const failure& f, const boost::source_location& loc) {
    boost::throw_exception(error(f), loc);
}

}  // namespace resilience
