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
// operation wait. With the defaults (100, 0.1), a sustained outage lets
// through about 50 retries in total before retrying stops, and ten successes
// earn back one retry.
//
// Tokens are kept in thousandths in one atomic integer: lock-free, and a
// success at a full bucket does not write at all.

#include <atomic>
#include <cstdint>

namespace resilience {

struct budget_config {
    double max_tokens = 100;   ///< bucket size (gRPC maxTokens); in (0, 1000]
    double token_ratio = 0.1;  ///< tokens returned per success (gRPC tokenRatio); in (0, max_tokens]
};

/// The pure bucket (thousandths of a token).
class budget_state {
public:
    explicit budget_state(budget_config cfg = {}) noexcept;
    bool retry_allowed() const noexcept { return tokens_ > threshold_; }
    void on_failure() noexcept { tokens_ = tokens_ >= 1000 ? tokens_ - 1000 : 0; }
    void on_success() noexcept { tokens_ = tokens_ + ratio_ >= max_ ? max_ : tokens_ + ratio_; }
    double tokens() const noexcept { return static_cast<double>(tokens_) / 1000.0; }

private:
    friend class retry_budget;
    std::int64_t max_, ratio_, threshold_, tokens_;
};

/// Shared across threads; every member is lock-free.
class retry_budget {
public:
    /// Out-of-range values are clamped into range (see budget_config).
    explicit retry_budget(budget_config cfg = {}) noexcept;
    retry_budget(const retry_budget&) = delete;
    retry_budget& operator=(const retry_budget&) = delete;

    /// True while a retry may be made (tokens > max_tokens / 2).
    bool retry_allowed() const noexcept { return tokens_.load(std::memory_order_relaxed) > threshold_; }
    /// A retryable failure: one token less.
    void on_failure() noexcept;
    /// A success: token_ratio tokens more (no write when full).
    void on_success() noexcept {
        if (tokens_.load(std::memory_order_relaxed) < max_) add_success();
    }
    double tokens() const noexcept { return static_cast<double>(tokens_.load(std::memory_order_relaxed)) / 1000.0; }
    const budget_config& config() const noexcept { return cfg_; }

private:
    void add_success() noexcept;
    budget_config cfg_;
    std::int64_t max_, ratio_, threshold_;
    std::atomic<std::int64_t> tokens_;
};

}  // namespace resilience

#endif
