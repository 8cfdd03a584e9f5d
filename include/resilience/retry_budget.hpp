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
// Tokens are kept in thousandths: budget_state is the pure bucket, and the
// shared retry_budget runs it on one atomic integer (lock-free; a success at
// a full bucket does not write at all). Defaults chosen by
// bench/bench_breaker (docs/design-notes.md, "Retry budget").

#include <resilience/diagnostics.hpp>
#include <resilience/gate_sync.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace resilience {

struct budget_config {
    double max_tokens = 100;   ///< bucket size (gRPC maxTokens); in (0, 1000]
    double token_ratio = 1;    ///< tokens returned per success (gRPC tokenRatio); in [0.001, max_tokens]
};
/// Checks the ranges above; the failure's message names the field.
result<void> validate(const budget_config& c);

/// The pure bucket, in thousandths of a token. Its whole mutable state is
/// the count (count()), so that the shared retry_budget keeps just that in
/// one atomic and runs this machine on it (at()): the rules tested here are
/// the rules that run.
class budget_state {
public:
    /// Throws resilience::error (invalid_config) on a value out of range.
    explicit budget_state(budget_config cfg = {});
    /// True while a retry may be made (tokens > max_tokens / 2).
    bool retry_allowed() const noexcept { return tokens_ > threshold_; }
    /// A retryable failure: one token less (never below zero).
    void on_failure() noexcept { tokens_ = tokens_ >= 1000 ? tokens_ - 1000 : 0; }
    /// A success: token_ratio tokens more (never above max_tokens).
    void on_success() noexcept { tokens_ = tokens_ + ratio_ >= max_ ? max_ : tokens_ + ratio_; }
    bool full() const noexcept { return tokens_ >= max_; }
    double tokens() const noexcept { return static_cast<double>(tokens_) / 1000.0; }
    const budget_config& config() const noexcept { return cfg_; }

    /// The count, in thousandths of a token.
    std::int64_t count() const noexcept { return tokens_; }
    /// The same bucket holding `count` thousandths.
    budget_state at(std::int64_t count) const noexcept {
        budget_state s(*this);
        s.tokens_ = count;
        return s;
    }

private:
    budget_config cfg_;
    std::int64_t max_, ratio_, threshold_, tokens_;
};

/// Shared across threads; every member is lock-free: budget_state run on
/// one atomic count (a compare-and-swap per change; a success at a full
/// bucket does not write).
class retry_budget {
public:
    /// Throws resilience::error (invalid_config) on a value out of range.
    explicit retry_budget(budget_config cfg = {});
    retry_budget(const retry_budget&) = delete;
    retry_budget& operator=(const retry_budget&) = delete;

    /// True while a retry may be made (tokens > max_tokens / 2).
    bool retry_allowed() const noexcept { return now().retry_allowed(); }
    /// A retryable failure: one token less.
    void on_failure() noexcept { update(&budget_state::on_failure); }
    /// A success: token_ratio tokens more (no write when full).
    void on_success() noexcept {
        if (!now().full()) update(&budget_state::on_success);
    }
    double tokens() const noexcept { return now().tokens(); }
    const budget_config& config() const noexcept { return initial_.config(); }

    // ---- The fleet seam (resilience/gate_sync.hpp).
    /// The count, in thousandths of a token.
    std::int64_t count() const noexcept { return tokens_.load(std::memory_order_relaxed); }
    /// Reports every local change of the count (its delta) to `o`. At most
    /// once per budget (a second call is ignored); thread-safe.
    void set_observer(std::shared_ptr<gate_observer> o);
    /// Sets the count to the fleet's (clamped to [0, max]); not reported back.
    void apply_remote(std::int64_t count) noexcept;

private:
    budget_state now() const noexcept { return initial_.at(tokens_.load(std::memory_order_relaxed)); }
    /// Applies `step` to the shared count (no write when it changes nothing).
    void update(void (budget_state::*step)() noexcept) noexcept;

    const budget_state initial_;  // the rules, at a full bucket
    std::atomic<std::int64_t> tokens_;
    std::once_flag observer_once_;
    std::shared_ptr<gate_observer> observer_keep_;
    std::atomic<gate_observer*> observer_{nullptr};
};

}  // namespace resilience

#endif
