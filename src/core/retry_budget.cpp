#include <resilience/retry_budget.hpp>

#include <resilience/error.hpp>

#include <algorithm>
#include <cmath>
#include <string>

namespace resilience {
namespace {
std::int64_t milli(double v) noexcept { return static_cast<std::int64_t>(std::llround(v * 1000.0)); }
}  // namespace

result<void> validate(const budget_config& c) {
    if (!(c.max_tokens > 0 && c.max_tokens <= 1000))  // also NaN
        return failure(make_error_code(errc::invalid_config),
                       "budget.max_tokens = " + std::to_string(c.max_tokens) + ": must be in (0, 1000]");
    if (!(c.token_ratio >= 0.001 && c.token_ratio <= c.max_tokens))
        return failure(make_error_code(errc::invalid_config),
                       "budget.token_ratio = " + std::to_string(c.token_ratio) +
                           ": must be between 0.001 and budget.max_tokens (" + std::to_string(c.max_tokens) + ")");
    return {};
}

budget_state::budget_state(budget_config cfg) : cfg_(cfg) {
    if (auto r = validate(cfg_); !r) throw error(r.error());
    max_ = milli(cfg_.max_tokens);
    ratio_ = std::max<std::int64_t>(1, milli(cfg_.token_ratio));
    threshold_ = max_ / 2;
    tokens_ = max_;
}

retry_budget::retry_budget(budget_config cfg) : initial_(cfg), tokens_(initial_.count()) {}

void retry_budget::update(void (budget_state::*step)() noexcept) noexcept {
    std::int64_t t = tokens_.load(std::memory_order_relaxed);
    for (;;) {
        budget_state s = initial_.at(t);
        (s.*step)();
        if (s.count() == t) return;
        if (tokens_.compare_exchange_weak(t, s.count(), std::memory_order_relaxed)) {
            if (gate_observer* o = observer_.load(std::memory_order_acquire)) o->on_budget(s.count() - t);
            return;
        }
    }
}

void retry_budget::set_observer(std::shared_ptr<gate_observer> o) {
    std::call_once(observer_once_, [&] {
        observer_keep_ = std::move(o);
        observer_.store(observer_keep_.get(), std::memory_order_release);
    });
}

void retry_budget::apply_remote(std::int64_t count) noexcept {
    const std::int64_t max = initial_.count();
    tokens_.store(count < 0 ? 0 : count > max ? max : count, std::memory_order_relaxed);
}

}  // namespace resilience
