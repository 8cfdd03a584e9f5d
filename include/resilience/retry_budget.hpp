#ifndef RESILIENCE_RETRY_BUDGET_HPP
#define RESILIENCE_RETRY_BUDGET_HPP

// The retry budget (DESIGN.md, Retry budget): gRPC's retry throttling.
//
// A token bucket shared by every operation of one scope (share one object per
// service, or per host + key). It holds `max_tokens` tokens at the start;
// each failed attempt whose failure is retryable takes one token (never below
// zero); each successful attempt gives back `token_ratio` tokens (never above
// max_tokens). A retry is allowed only while the bucket holds more than
// max_tokens / 2. First attempts are never refused: the budget limits the
// extra load that retries add during a wide outage, it never makes an
// operation wait. With the defaults (100, 1), a sustained outage lets
// through about 50 retries in total before retrying stops, and each success
// earns back one retry: retries stop once failed attempts outnumber
// successful ones by 50, i.e. when more than about half of the attempts
// fail for a while; at the fault rates a plain retry rides out (up to 30%
// measured) the budget refuses nothing.
//
// Tokens are kept in thousandths in one atomic integer: lock-free, and a
// success at a full bucket does not write at all. Defaults chosen by
// bench/bench_breaker (docs/design-notes.md, "Retry budget").

#include <resilience/diagnostics.hpp>

#include <atomic>
#include <cstdint>

namespace resilience {

struct budget_config {
    double max_tokens = 100;   ///< bucket size (gRPC maxTokens); in (0, 1000]
    double token_ratio = 1;    ///< tokens returned per success (gRPC tokenRatio); in [0.001, max_tokens]
};
/// Checks the ranges above; the failure's message names the field.
result<void> validate(const budget_config& c);

/// The pure bucket (thousandths of a token). Its rules are also offered on
/// a token count passed in (allows, after_failure, after_success), so that
/// retry_budget applies exactly these rules to its atomic count.
class budget_state {
public:
    /// Throws resilience::error (invalid_config) on a value out of range.
    explicit budget_state(budget_config cfg = {});
    bool retry_allowed() const noexcept { return allows(tokens_); }
    void on_failure() noexcept { tokens_ = after_failure(tokens_); }
    void on_success() noexcept { tokens_ = after_success(tokens_); }
    double tokens() const noexcept { return static_cast<double>(tokens_) / 1000.0; }
    const budget_config& config() const noexcept { return cfg_; }

    /// The rules, on a count of thousandths of a token.
    bool allows(std::int64_t t) const noexcept { return t > threshold_; }
    std::int64_t after_failure(std::int64_t t) const noexcept { return t >= 1000 ? t - 1000 : 0; }
    std::int64_t after_success(std::int64_t t) const noexcept { return t + ratio_ >= max_ ? max_ : t + ratio_; }
    bool full(std::int64_t t) const noexcept { return t >= max_; }
    std::int64_t max_milli() const noexcept { return max_; }

private:
    budget_config cfg_;
    std::int64_t max_, ratio_, threshold_, tokens_;
};

/// Shared across threads; every member is lock-free. The rules are
/// budget_state's, applied to one atomic count.
class retry_budget {
public:
    /// Throws resilience::error (invalid_config) on a value out of range.
    explicit retry_budget(budget_config cfg = {});
    retry_budget(const retry_budget&) = delete;
    retry_budget& operator=(const retry_budget&) = delete;

    /// True while a retry may be made (tokens > max_tokens / 2).
    bool retry_allowed() const noexcept { return rules_.allows(tokens_.load(std::memory_order_relaxed)); }
    /// A retryable failure: one token less.
    void on_failure() noexcept;
    /// A success: token_ratio tokens more (no write when full).
    void on_success() noexcept {
        if (!rules_.full(tokens_.load(std::memory_order_relaxed))) add_success();
    }
    double tokens() const noexcept { return static_cast<double>(tokens_.load(std::memory_order_relaxed)) / 1000.0; }
    const budget_config& config() const noexcept { return rules_.config(); }

private:
    void add_success() noexcept;
    budget_state rules_;
    std::atomic<std::int64_t> tokens_;
};

}  // namespace resilience

#endif
