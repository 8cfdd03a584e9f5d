#include <resilience/retry_budget.hpp>

#include <algorithm>
#include <cmath>

namespace resilience {
namespace {
budget_config clamp(budget_config c) noexcept {
    if (!(c.max_tokens > 0)) c.max_tokens = 100;  // also NaN
    c.max_tokens = std::min(c.max_tokens, 1000.0);
    if (!(c.token_ratio > 0)) c.token_ratio = 0.1;
    c.token_ratio = std::min(c.token_ratio, c.max_tokens);
    return c;
}
std::int64_t milli(double v) noexcept { return static_cast<std::int64_t>(std::llround(v * 1000.0)); }
}  // namespace

budget_state::budget_state(budget_config cfg) noexcept {
    cfg = clamp(cfg);
    max_ = milli(cfg.max_tokens);
    ratio_ = std::max<std::int64_t>(1, milli(cfg.token_ratio));
    threshold_ = max_ / 2;
    tokens_ = max_;
}

retry_budget::retry_budget(budget_config cfg) noexcept : cfg_(clamp(cfg)) {
    budget_state s(cfg_);
    max_ = s.max_;
    ratio_ = s.ratio_;
    threshold_ = s.threshold_;
    tokens_.store(max_, std::memory_order_relaxed);
}

void retry_budget::on_failure() noexcept {
    std::int64_t t = tokens_.load(std::memory_order_relaxed);
    while (t > 0 && !tokens_.compare_exchange_weak(t, t >= 1000 ? t - 1000 : 0, std::memory_order_relaxed)) {
    }
}

void retry_budget::add_success() noexcept {
    std::int64_t t = tokens_.load(std::memory_order_relaxed);
    while (t < max_ && !tokens_.compare_exchange_weak(t, std::min(max_, t + ratio_), std::memory_order_relaxed)) {
    }
}

}  // namespace resilience
