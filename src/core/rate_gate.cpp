#include <resilience/rate_gate.hpp>

#include <algorithm>
#include <cmath>

namespace resilience {

namespace {

double seconds(time_point t) noexcept {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

time_point from_seconds(double s) noexcept {
    // Saturates: a debt of years (min_fill_rate of a tiny rate) stays representable.
    const double limit = std::chrono::duration<double>(time_point::max().time_since_epoch()).count() / 2;
    return time_point(std::chrono::duration_cast<duration>(std::chrono::duration<double>(std::min(s, limit))));
}

}  // namespace

result<void> validate(const rate_gate_config& c) {
    auto finite = [](double v) { return std::isfinite(v); };
    auto bad = [](const char* field, double v, const char* rule) {
        return failure(make_error_code(errc::invalid_config),
                       std::string("rate_gate.") + field + " = " + std::to_string(v) + ": must be " + rule);
    };
    if (!finite(c.beta) || !(c.beta > 0 && c.beta < 1)) return bad("beta", c.beta, "in (0, 1)");
    if (!finite(c.scale_constant) || !(c.scale_constant > 0)) return bad("scale_constant", c.scale_constant, "> 0");
    if (!finite(c.smooth) || !(c.smooth > 0 && c.smooth <= 1)) return bad("smooth", c.smooth, "in (0, 1]");
    if (!finite(c.min_fill_rate) || !(c.min_fill_rate > 0)) return bad("min_fill_rate", c.min_fill_rate, "> 0");
    if (!finite(c.min_capacity) || !(c.min_capacity >= 1)) return bad("min_capacity", c.min_capacity, ">= 1");
    if (c.cut_interval < duration::zero())
        return failure(make_error_code(errc::invalid_config),
                       "rate_gate.cut_interval = " +
                           std::to_string(std::chrono::duration<double, std::milli>(c.cut_interval).count()) +
                           " ms: must be >= 0");
    return {};
}

rate_gate_state::rate_gate_state(rate_gate_config cfg)
    : cfg_(cfg), fill_rate_(cfg.min_fill_rate), max_capacity_(cfg.min_capacity) {}

void rate_gate_state::refill(double t) {
    if (last_refill_ < 0) {
        last_refill_ = t;
        return;
    }
    if (t > last_refill_) {
        capacity_ = std::min(max_capacity_, capacity_ + (t - last_refill_) * fill_rate_);
        last_refill_ = t;
    }
}

rate_grant rate_gate_state::acquire(time_point now) {
    if (!limiting_) return {true, now};
    const double t = seconds(now);
    refill(t);
    if (capacity_ >= 1) {
        capacity_ -= 1;
        return {true, now, fill_rate_};
    }
    // A token from the future, while the debt stays within one bucket.
    constexpr double slack = 1e-6;  // time points are whole nanoseconds: a repaid debt may read -1e-9
    if (capacity_ - 1 >= -max_capacity_ - slack) {
        capacity_ -= 1;
        return {true, from_seconds(t + (-capacity_) / fill_rate_), fill_rate_};
    }
    // The debt is full: ask again when it has been repaid (about one second),
    // so that each waiter beyond the bucket asks about once a second, not at
    // every token.
    return {false, from_seconds(t + std::max(-capacity_, 1.0) / fill_rate_), fill_rate_};
}

void rate_gate_state::measure(double t) {
    // Answers counted per half-second, smoothed (the AWS SDKs' measured_tx_rate).
    const double bucket = std::floor(t * 2) / 2;
    count_ += 1;
    if (last_bucket_ < 0) {
        last_bucket_ = bucket;
        return;
    }
    if (bucket > last_bucket_) {
        const double current = count_ / (bucket - last_bucket_);
        measured_rate_ = measured_ ? current * cfg_.smooth + measured_rate_ * (1 - cfg_.smooth) : current;
        measured_ = true;
        count_ = 0;
        last_bucket_ = bucket;
    }
}

double rate_gate_state::sending_rate() const noexcept {
    // Before the first half-second is complete: what was counted so far, per half-second.
    return measured_ ? measured_rate_ : count_ * 2;
}

void rate_gate_state::set_rate(double t, double rate) {
    refill(t);
    fill_rate_ = std::max(rate, cfg_.min_fill_rate);
    max_capacity_ = std::max(rate, cfg_.min_capacity);
    // Keeps the bucket within one bucket of debt at the new rate: reservations
    // already handed out keep their times; later callers are not held by the
    // debt of a rate that no longer holds.
    capacity_ = std::clamp(capacity_, -max_capacity_, max_capacity_);
}

bool rate_gate_state::cut(double t) {
    if (limiting_ && t - last_cut_ < std::chrono::duration<double>(cfg_.cut_interval).count())
        return false;  // the same congestion event: the rate was cut already
    // Multiplicative decrease from the rate we were sending at.
    const double sending = sending_rate();
    const double base = limiting_ ? std::min(sending, fill_rate_) : sending;
    last_max_rate_ = base;
    window_ = std::cbrt(last_max_rate_ * (1 - cfg_.beta) / cfg_.scale_constant);
    last_cut_ = t;
    if (!limiting_) {
        limiting_ = true;
        last_refill_ = -1;  // the bucket starts now, empty
        capacity_ = 0;
    }
    set_rate(t, std::min(base * cfg_.beta, 2 * sending));
    return true;
}

bool rate_gate_state::on_response(time_point now, bool throttled) {
    if (!cfg_.enabled) return false;
    const double t = seconds(now);
    measure(t);
    if (throttled) return cut(t);
    if (!limiting_) return false;
    // W(t) = C (t - K)^3 + W_max, t since the last cut: flat near W_max, then probing above it.
    const double dt = t - last_cut_ - window_;
    const double rate = cfg_.scale_constant * dt * dt * dt + last_max_rate_;
    set_rate(t, std::min(rate, 2 * sending_rate()));
    return false;
}

bool rate_gate_state::apply_cut(time_point now) {
    if (!cfg_.enabled || sending_rate() <= 0) return false;
    return cut(seconds(now));
}

rate_gate_snapshot rate_gate_state::snapshot() const noexcept {
    rate_gate_snapshot s;
    s.limiting = limiting_;
    s.fill_rate = fill_rate_;
    s.capacity = capacity_;
    s.max_capacity = max_capacity_;
    s.measured_rate = sending_rate();
    s.last_max_rate = last_max_rate_;
    return s;
}

rate_gate::rate_gate(rate_gate_config cfg) : cfg_(cfg) {}

rate_grant rate_gate::acquire(std::uint64_t scope, time_point now) {
    if (!limiting_.load(std::memory_order_acquire)) return {true, now};
    std::lock_guard lk(mu_);
    auto it = scopes_.find(scope);
    return it == scopes_.end() ? rate_grant{true, now} : it->second.acquire(now);
}

void rate_gate::on_response(std::uint64_t scope, time_point now, bool throttled) {
    if (!cfg_.enabled) return;
    std::optional<rate_cut> cut;
    cut_handler h;
    {
        std::lock_guard lk(mu_);
        auto it = scopes_.try_emplace(scope, cfg_).first;
        rate_gate_state& s = it->second;
        if (s.on_response(now, throttled)) {
            const rate_gate_snapshot snap = s.snapshot();
            cut = rate_cut{now, snap.last_max_rate, snap.fill_rate};
            h = on_cut_;  // copied under the lock: cuts are rare (one per cut_interval)
        }
        if (s.limiting() && !limiting_.load(std::memory_order_relaxed))
            limiting_.store(true, std::memory_order_release);
    }
    if (cut && h) h(scope, *cut);
}

void rate_gate::on_cut(cut_handler h) {
    std::lock_guard lk(mu_);
    on_cut_ = std::move(h);
}

bool rate_gate::apply_cut(std::uint64_t scope, time_point now) {
    if (!cfg_.enabled) return false;
    std::lock_guard lk(mu_);
    auto it = scopes_.find(scope);
    if (it == scopes_.end() || !it->second.apply_cut(now)) return false;
    if (!limiting_.load(std::memory_order_relaxed)) limiting_.store(true, std::memory_order_release);
    return true;
}

std::optional<rate_gate_snapshot> rate_gate::snapshot(std::uint64_t scope) const {
    std::lock_guard lk(mu_);
    auto it = scopes_.find(scope);
    if (it == scopes_.end()) return std::nullopt;
    return it->second.snapshot();
}

}  // namespace resilience
