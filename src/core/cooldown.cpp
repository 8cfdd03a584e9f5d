#include <resilience/cooldown.hpp>

#include <algorithm>

namespace resilience {

std::uint64_t scope_hash(std::string_view scope) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (unsigned char c : scope) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

std::string make_scope(std::string_view host, std::string_view api_key) {
    static constexpr char hex[] = "0123456789abcdef";
    std::uint64_t h = scope_hash(api_key);
    std::string s(host);
    s += '#';
    for (int i = 60; i >= 0; i -= 4) s += hex[(h >> i) & 0xf];
    return s;
}

time_point cooldown_release(time_point until, duration held, double u) noexcept {
    const duration spread = std::min<duration>(held / 10, std::chrono::seconds(2));
    return until + std::chrono::duration_cast<duration>(spread * u);
}

void cooldown_state::defer(std::uint64_t scope, time_point until) {
    auto [it, inserted] = m_.try_emplace(scope, until);
    if (!inserted && it->second < until) it->second = until;
}

std::optional<time_point> cooldown_state::blocked_until(std::uint64_t scope, time_point now) const {
    auto it = m_.find(scope);
    if (it == m_.end() || it->second <= now) return std::nullopt;
    return it->second;
}

void cooldown_state::sweep(time_point now) {
    std::erase_if(m_, [now](const auto& kv) { return kv.second <= now; });
}

void cooldown::raise_locked(std::uint64_t scope, time_point until, time_point now) {
    if (s_.size() >= 1024) s_.sweep(now);
    s_.defer(scope, until);
    const auto rep = until.time_since_epoch().count();
    if (rep > latest_.load(std::memory_order_relaxed)) latest_.store(rep, std::memory_order_release);
}

void cooldown::defer(std::uint64_t scope, time_point until, time_point now) {
    std::shared_ptr<gate_observer> obs;
    {
        std::lock_guard lk(mu_);
        // Reported only when it raises the scope's time, and only with `now`
        // (the fleet is told how long, not until when: clocks differ).
        if (observer_ && now != time_point::min() && until > now) {
            const auto before = s_.blocked_until(scope, now);
            if (!before || *before < until) obs = observer_;
        }
        raise_locked(scope, until, now);
    }
    if (obs) obs->on_cooldown(scope, until - now);
}

void cooldown::set_observer(std::shared_ptr<gate_observer> o) {
    std::lock_guard lk(mu_);
    observer_ = std::move(o);
}

void cooldown::apply_remote(std::uint64_t scope, time_point until, time_point now) {
    std::lock_guard lk(mu_);
    raise_locked(scope, until, now);
}

std::optional<time_point> cooldown::blocked_until(std::uint64_t scope, time_point now) const {
    if (clear_at(now)) return std::nullopt;
    std::lock_guard lk(mu_);
    return s_.blocked_until(scope, now);
}

std::size_t cooldown::scopes() const {
    std::lock_guard lk(mu_);
    return s_.size();
}

}  // namespace resilience
