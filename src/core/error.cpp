#include <resilience/diagnostics.hpp>
#include <resilience/error.hpp>

#include <boost/asio/error.hpp>
#include <boost/system/errc.hpp>

#include <array>
#include <atomic>

namespace resilience {
namespace {

// The most specific condition of each core code (see error.hpp).
std::optional<condition> condition_of(errc e) noexcept {
    switch (e) {
    case errc::success: return std::nullopt;
    case errc::circuit_open: return condition::transient;
    case errc::deadline_exceeded: return condition::deadline;
    case errc::attempt_timeout: return condition::timeout;
    case errc::retries_exhausted:
    case errc::retry_budget_exhausted:
    case errc::invalid_argument:
    case errc::invalid_config:
    case errc::operation_threw: return condition::permanent;
    }
    return std::nullopt;
}

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
        case errc::invalid_argument: return "invalid argument";
        case errc::invalid_config: return "invalid configuration";
        case errc::operation_threw: return "the operation threw an exception";
        }
        return "unknown resilience error";
    }
    boost::system::error_condition default_error_condition(int ev) const noexcept override {
        if (auto c = condition_of(static_cast<errc>(ev))) return make_error_condition(*c);
        return {ev, *this};
    }
    bool equivalent(int ev, const boost::system::error_condition& cond) const noexcept override {
        if (cond.category() == condition_category()) {
            auto c = condition_of(static_cast<errc>(ev));
            return c && condition_matches(*c, static_cast<condition>(cond.value()));
        }
        return default_error_condition(ev) == cond;
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
        case condition::network: return "network failure (the connection or an attempt failed)";
        case condition::auth: return "the credentials were refused";
        case condition::cancelled: return "the operation was cancelled";
        case condition::timeout: return "timed out (a deadline, an attempt's timeout or a time limit passed)";
        }
        return "unknown resilience condition";
    }
    // Codes whose category knows nothing of our conditions (Asio's, Beast's,
    // codes taught with add_classifier()) match through their kind. A code
    // whose own category maps it to a condition is answered by that category.
    bool equivalent(const error_code& code, int cond) const noexcept override {
        if (!code) return false;
        const error_kind k = classify(code);
        switch (static_cast<condition>(cond)) {
        case condition::transient: return is_retryable(k);
        case condition::permanent: return !is_retryable(k);
        case condition::throttled: return k == error_kind::retryable_rate_limit;
        case condition::network: return k == error_kind::retryable_network;
        case condition::auth: return k == error_kind::non_retryable_auth;
        case condition::cancelled: return k == error_kind::non_retryable_aborted;
        case condition::deadline: return false;  // only a code's own category says so
        case condition::timeout:
            // ETIMEDOUT (Asio's timed_out), or a code its category calls a deadline.
            return code == boost::system::errc::timed_out ||
                   code.category().equivalent(code.value(), make_error_condition(condition::deadline));
        }
        return false;
    }
};

bool is_network(const error_code& ec) noexcept {
    namespace ae = boost::asio::error;
    // timed_out: Asio's (the system's ETIMEDOUT) and a generic-category one alike.
    return ec == ae::connection_refused || ec == ae::connection_reset || ec == ae::connection_aborted ||
           ec == ae::timed_out || ec == boost::system::errc::timed_out || ec == ae::host_unreachable ||
           ec == ae::network_unreachable ||
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
    if (is_network(ec)) return error_kind::retryable_network;
    if (auto k = from_classifiers(ec)) return *k;
    // The code's own category maps it to our conditions (our layers' enums
    // do; another library's codes opt in the same way). Asked of the category
    // itself, not through `ec == condition`, which would come back here.
    const auto& cat = ec.category();
    for (condition c : {condition::cancelled, condition::deadline, condition::throttled, condition::timeout,
                        condition::network, condition::auth, condition::transient})
        if (cat.equivalent(ec.value(), make_error_condition(c))) return to_kind(c);
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

std::string bounded_text(std::string_view s, std::size_t max) {
    if (s.size() > max) return std::string(s.substr(0, max)) + "...";
    return std::string(s);
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
