#include <resilience/circuit_breaker.hpp>

#include <resilience/error.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace resilience {

std::string_view to_string(transition_reason r) noexcept {
    switch (r) {
    case transition_reason::failure_threshold: return "failure threshold reached";
    case transition_reason::failure_ratio: return "failure ratio reached";
    case transition_reason::open_timeout: return "open timeout elapsed";
    case transition_reason::probe_succeeded: return "probe succeeded";
    case transition_reason::probe_failed: return "probe failed";
    case transition_reason::isolated: return "isolated";
    case transition_reason::reset: return "reset";
    case transition_reason::remote: return "changed by the fleet";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------
// breaker_machine

namespace {
failure bad_rule(std::string msg) { return failure(make_error_code(errc::invalid_config), std::move(msg)); }
constexpr std::chrono::milliseconds day{86'400'000};
}  // namespace

result<void> validate(const breaker_rules& r) {
    if (!(r.failure_ratio >= 0 && r.failure_ratio <= 1))  // also NaN
        return bad_rule("breaker.failure_ratio = " + std::to_string(r.failure_ratio) +
                        ": must be 0 (window off) or in (0, 1]");
    if (r.minimum_throughput < 1 || r.minimum_throughput > 1'000'000)
        return bad_rule("breaker.minimum_throughput = " + std::to_string(r.minimum_throughput) +
                        ": must be between 1 and 1000000");
    if (r.sampling_duration < std::chrono::milliseconds(100) || r.sampling_duration > day)
        return bad_rule("breaker.sampling_duration = " + std::to_string(r.sampling_duration.count()) +
                        " ms: must be between 100 and 86400000 ms");
    if (!(r.break_multiplier >= 1 && r.break_multiplier <= 100))
        return bad_rule("breaker.break_multiplier = " + std::to_string(r.break_multiplier) +
                        ": must be between 1 and 100");
    if (r.max_break.count() < 0 || r.max_break > day)
        return bad_rule("breaker.max_break = " + std::to_string(r.max_break.count()) +
                        " ms: must be between 0 and 86400000 ms");
    if (r.failure_streak < 0 || r.failure_streak > 1'000'000)
        return bad_rule("breaker.failure_streak = " + std::to_string(r.failure_streak) +
                        ": must be 0 (off) or between 1 and 1000000");
    if (r.failure_streak > 0 && r.failure_ratio == 0)
        return bad_rule("breaker.failure_streak = " + std::to_string(r.failure_streak) +
                        ": needs the failure-rate window (breaker.failure_ratio > 0); without it "
                        "the breaker's failure threshold is the consecutive rule (set it to 0 too)");
    return {};
}

breaker_machine::breaker_machine(breaker_config cfg, unsigned counted_kinds, breaker_rules rules) noexcept
    : cfg_(cfg), counted_(counted_kinds), rules_(rules) {
    if (cfg_.failure_threshold < 1) cfg_.failure_threshold = 1;
    if (cfg_.half_open_probes < 1) cfg_.half_open_probes = 1;
    if (cfg_.open_timeout.count() < 0) cfg_.open_timeout = std::chrono::milliseconds(0);
    // The I/O class validates; the pure machine only keeps itself sane.
    if (!(rules_.failure_ratio >= 0)) rules_.failure_ratio = 0;
    if (rules_.minimum_throughput < 1) rules_.minimum_throughput = 1;
    if (rules_.sampling_duration < std::chrono::milliseconds(10)) rules_.sampling_duration = std::chrono::milliseconds(10);
    if (!(rules_.break_multiplier >= 1)) rules_.break_multiplier = 1;
    if (rules_.max_break < cfg_.open_timeout) rules_.max_break = cfg_.open_timeout;
    if (rules_.failure_streak < 0) rules_.failure_streak = 0;
    bucket_len_ = std::chrono::duration_cast<duration>(rules_.sampling_duration) / buckets;
    break_ = cfg_.open_timeout;
}

std::int64_t breaker_machine::bucket_of(time_point t) const noexcept {
    const auto n = t.time_since_epoch() / bucket_len_;
    return n < 0 ? 0 : static_cast<std::int64_t>(n);
}

breaker_machine::bucket& breaker_machine::bucket_at(std::int64_t index) noexcept {
    bucket& b = window_[index % buckets];
    if (b.index != index) b = bucket{index, 0, 0};
    return b;
}

void breaker_machine::clear_window() noexcept {
    for (auto& b : window_) b = bucket{};
}

std::pair<std::uint64_t, std::uint64_t> breaker_machine::window(time_point now) const noexcept {
    const std::int64_t cur = bucket_of(now);
    std::uint64_t s = 0, f = 0;
    for (const auto& b : window_)
        if (b.index >= 0 && b.index > cur - buckets && b.index <= cur) {
            s += b.successes;
            f += b.failures;
        }
    return {s, f};
}

void breaker_machine::add_successes(std::uint64_t n, time_point since, time_point now) noexcept {
    if (n == 0 || !window_on() || state_ != breaker_state::closed) return;
    const std::int64_t cur = bucket_of(now);
    if (since >= now) {
        bucket_at(cur).successes += n;
        return;
    }
    // Spread evenly over [since, now]; the part before the window is dropped.
    const double span = std::chrono::duration<double>(now - since).count();
    const std::int64_t first = std::max(bucket_of(since), cur - buckets + 1);
    double given = 0;
    std::uint64_t given_n = 0;
    for (std::int64_t i = first; i <= cur; ++i) {
        const time_point lo = std::max(since, time_point(bucket_len_ * i));
        const time_point hi = std::min(now, time_point(bucket_len_ * (i + 1)));
        if (hi <= lo) continue;
        given += double(n) * std::chrono::duration<double>(hi - lo).count() / span;
        const auto upto = static_cast<std::uint64_t>(given + 0.5);  // cumulative rounding keeps the total
        if (upto > given_n) {
            bucket_at(i).successes += upto - given_n;
            given_n = upto;
        }
    }
}

void breaker_machine::go(breaker_state to, time_point now, transition_reason why,
                         std::optional<breaker_transition>& t) {
    t = breaker_transition{state_, to, now, why};
    if (to == breaker_state::open && state_ == breaker_state::half_open && why == transition_reason::probe_failed) {
        // Probes keep failing: a longer break, up to max_break.
        const double grown = std::chrono::duration<double>(break_).count() * rules_.break_multiplier;
        const double cap = std::chrono::duration<double>(rules_.max_break).count();
        break_ = grown >= cap ? std::chrono::duration_cast<duration>(rules_.max_break)
                              : std::chrono::duration_cast<duration>(std::chrono::duration<double>(grown));
    }
    if (to == breaker_state::closed) break_ = cfg_.open_timeout;
    state_ = to;
    ++generation_;
    ++version_;
    failures_ = 0;
    probes_ = 0;
    granted_ = false;
    clear_window();  // a new state starts a new window (Polly, resilience4j)
    if (to == breaker_state::open) open_until_ = now + break_;
}

breaker_machine::admission breaker_machine::try_admit(time_point now, std::optional<breaker_transition>& t) {
    admission a;
    if (state_ == breaker_state::open && !isolated_ && now >= open_until_)
        go(breaker_state::half_open, now, transition_reason::open_timeout, t);
    a.state = state_;
    a.generation = generation_;
    switch (state_) {
    case breaker_state::closed: a.admitted = true; break;
    case breaker_state::open: a.retry_at = isolated_ ? time_point::max() : open_until_; break;
    case breaker_state::half_open:
        if (probes_ < cfg_.half_open_probes && (!probe_gate_ || granted_)) {
            ++probes_;
            a.admitted = true;
            a.probe = true;
        }
        break;
    }
    return a;
}

void breaker_machine::on_success(const admission& a, time_point now, std::optional<breaker_transition>& t) {
    if (a.generation != generation_) return;  // stale: admitted before the last transition
    if (state_ == breaker_state::closed) {
        failures_ = 0;
        if (window_on()) ++bucket_at(bucket_of(now)).successes;
    } else if (state_ == breaker_state::half_open && a.probe) {
        go(breaker_state::closed, now, transition_reason::probe_succeeded, t);
    }
}

void breaker_machine::on_failure(const admission& a, error_kind k, time_point now,
                                 std::optional<breaker_transition>& t) {
    if (a.generation != generation_) return;
    if (!counts(k)) {
        // The service answered (403/404/429...): says nothing against its health.
        if (state_ == breaker_state::half_open && a.probe)
            go(breaker_state::closed, now, transition_reason::probe_succeeded, t);
        return;
    }
    if (state_ == breaker_state::closed) {
        ++failures_;
        if (!window_on()) {
            if (failures_ >= cfg_.failure_threshold)
                go(breaker_state::open, now, transition_reason::failure_threshold, t);
            return;
        }
        ++bucket_at(bucket_of(now)).failures;
        if (rules_.failure_streak > 0 && failures_ >= rules_.failure_streak) {
            go(breaker_state::open, now, transition_reason::failure_threshold, t);
            return;
        }
        const auto [s, f] = window(now);
        const double total = double(s + f);
        if (double(f) < rules_.failure_ratio * total) return;
        if (total >= double(rules_.minimum_throughput))
            go(breaker_state::open, now, transition_reason::failure_ratio, t);
        else if (failures_ >= cfg_.failure_threshold)
            go(breaker_state::open, now, transition_reason::failure_threshold, t);
    } else if (state_ == breaker_state::half_open && a.probe) {
        go(breaker_state::open, now, transition_reason::probe_failed, t);
    }
}

bool breaker_machine::on_abandon(const admission& a) noexcept {
    if (a.generation != generation_ || !a.probe || state_ != breaker_state::half_open || probes_ == 0) return false;
    --probes_;
    ++version_;
    return true;
}

void breaker_machine::isolate(time_point now, std::optional<breaker_transition>& t) {
    isolated_ = true;
    if (state_ != breaker_state::open) {
        go(breaker_state::open, now, transition_reason::isolated, t);
    } else {
        ++version_;  // waiters re-read: they now wait for reset()
    }
}

void breaker_machine::reset(time_point now, std::optional<breaker_transition>& t) {
    isolated_ = false;
    if (state_ != breaker_state::closed) {
        go(breaker_state::closed, now, transition_reason::reset, t);
    } else {
        failures_ = 0;
        clear_window();
    }
}

void breaker_machine::force(breaker_state to, time_point now, duration open_for, std::optional<breaker_transition>& t) {
    if (isolated_) return;
    if (open_for < duration::zero()) open_for = duration::zero();
    if (to == state_) {
        if (to == breaker_state::open) {
            open_until_ = now + open_for;
            ++version_;  // waiters re-read when admission may start
        }
        return;
    }
    go(to, now, transition_reason::remote, t);
    if (to == breaker_state::open) open_until_ = now + open_for;
}

void breaker_machine::set_probe_gate(bool on) noexcept {
    if (probe_gate_ == on) return;
    probe_gate_ = on;
    if (!on && state_ == breaker_state::half_open && !granted_) ++version_;  // held probes may go now
}

void breaker_machine::grant_probes() noexcept {
    if (state_ != breaker_state::half_open || granted_) return;
    granted_ = true;
    ++version_;
}

// ---------------------------------------------------------------------------
// circuit_breaker

// A coroutine suspended in wait_for_change. Its handler is taken (under the
// breaker's mutex) by whoever completes it first: a change, or cancellation.
// (A small type erasure of our own: Asio 1.81's any_completion_handler
// recurses without end when moved into a default-constructed one.)
namespace {
struct erased_handler {
    virtual ~erased_handler() = default;
    virtual void complete(error_code ec) = 0;
};
template <class H>
struct erased_handler_impl final : erased_handler {
    explicit erased_handler_impl(H&& h) : h(std::move(h)) {}
    void complete(error_code ec) override { std::move(h)(ec); }
    H h;
};
}  // namespace

struct circuit_breaker::waiter {
    boost::asio::any_io_executor ex;
    std::unique_ptr<erased_handler> handler;
    bool done = false;
};

circuit_breaker::circuit_breaker(breaker_options opts)
    : opts_(std::move(opts)),
      clock_(opts_.time ? opts_.time : &steady_clock()),
      m_(opts_.config, opts_.counted_kinds, opts_.rules) {
    if (auto r = validate(opts_.config); !r) throw error(r.error());
    if (auto r = validate(opts_.rules); !r) throw error(r.error());
    folded_at_ = clock_->now();
    publish_locked();
}

circuit_breaker::circuit_breaker(breaker_config config, clock* time)
    : circuit_breaker([&] {
          breaker_options o;
          o.config = config;
          o.time = time;
          return o;
      }()) {}

circuit_breaker::~circuit_breaker() = default;

void circuit_breaker::publish_locked() noexcept {
    std::uint64_t w = static_cast<std::uint64_t>(m_.state()) | (m_.generation() << gen_shift);
    if (m_.state() == breaker_state::closed && m_.consecutive_failures() > 0) w |= streak_bit;
    if (m_.state() == breaker_state::closed && m_.window_on()) w |= window_bit;
    word_.store(w, std::memory_order_release);
}

void circuit_breaker::fold_successes_locked(time_point now) noexcept {
    if (!m_.window_on()) return;
    const std::uint64_t n = window_successes_.exchange(0, std::memory_order_relaxed);
    m_.add_successes(n, folded_at_, now);
    folded_at_ = now;
}

breaker_state circuit_breaker::state() const noexcept {
    return static_cast<breaker_state>(word_.load(std::memory_order_acquire) & state_mask);
}

circuit_breaker::acquire_result circuit_breaker::try_acquire() {
    acquire_result r;
    if (try_acquire_closed(r.permit)) return r;  // fast path: no lock, no clock
    r.transition = change([&](time_point now, tx& t) {
        const breaker_machine::admission a = m_.try_admit(now, t);
        r.state = a.state;
        if (a.admitted) {
            r.permit = breaker_permit(this, a);
        } else {
            r.retry_at = a.retry_at;
            r.version = m_.version();
        }
    });
    return r;
}

template <class Step>
circuit_breaker::tx circuit_breaker::change(Step step, bool local) {
    tx t;
    std::vector<std::shared_ptr<waiter>> wake;
    std::shared_ptr<gate_observer> obs;
    int streak_before = 0, streak_after = 0;
    duration open_for{};
    {
        std::lock_guard lk(mu_);
        const std::uint64_t before = m_.version();
        const time_point now = clock_->now();
        fold_successes_locked(now);
        streak_before = m_.consecutive_failures();
        step(now, t);
        // A freed probe slot bumps the version too: the waiters re-check,
        // the first takes the slot, the rest wait again.
        after_change_locked(t, wake, m_.version() != before);
        if (local && observer_) {
            obs = observer_;
            streak_after = m_.consecutive_failures();
            if (m_.state() == breaker_state::open) open_for = m_.open_until() - now;
        }
    }
    notify(t, wake);
    // The fleet seam: local changes only (apply_remote passes local = false).
    if (obs) {
        if (t)
            obs->on_breaker_transition(*t, open_for);
        else if (streak_after > streak_before)
            obs->on_breaker_failure(streak_after);
        else if (streak_before > 0 && streak_after == 0)
            obs->on_breaker_streak_reset();
    }
    return t;
}

void circuit_breaker::after_change_locked(const tx& t, std::vector<std::shared_ptr<waiter>>& wake,
                                          bool version_changed) {
    publish_locked();
    if (t) {
        history_.push_back(*t);
        if (history_.size() > opts_.history && !history_.empty())
            history_.erase(history_.begin(), history_.begin() + static_cast<std::ptrdiff_t>(history_.size() - opts_.history));
    }
    if (version_changed) wake.swap(waiters_);
}

void circuit_breaker::notify(const tx& t, std::vector<std::shared_ptr<waiter>>& wake) noexcept {
    if (t && opts_.on_transition) opts_.on_transition(*t);
    for (auto& w : wake) {
        std::unique_ptr<erased_handler> h;
        {
            std::lock_guard lk(mu_);
            if (w->done) continue;
            w->done = true;
            h = std::move(w->handler);
        }
        boost::asio::post(w->ex, [h = std::move(h)]() { h->complete(error_code{}); });
    }
}

void circuit_breaker::finish(const breaker_machine::admission& a, int outcome, error_kind k, tx& t) noexcept {
    t = change([&](time_point now, tx& out) {
        if (outcome == 0)
            m_.on_success(a, now, out);
        else if (outcome == 1)
            m_.on_failure(a, k, now, out);
        else
            m_.on_abandon(a);
    });
}

std::optional<breaker_transition> circuit_breaker::succeeded_slow(const breaker_machine::admission& a) {
    std::optional<breaker_transition> t;
    finish(a, 0, error_kind::non_retryable_client, t);
    return t;
}

std::optional<breaker_transition> breaker_permit::failed(error_kind k) {
    circuit_breaker* b = b_;
    if (!b) return std::nullopt;
    b_ = nullptr;
    std::optional<breaker_transition> t;
    if (!a_.probe && !b->m_.counts(k)) return t;  // neutral for a non-probe: no lock (counted_ never changes)
    b->finish(a_, 1, k, t);
    return t;
}

void breaker_permit::abandon() noexcept {
    circuit_breaker* b = b_;
    if (!b) return;
    b_ = nullptr;
    if (!a_.probe) return;  // only probes hold a slot
    std::optional<breaker_transition> t;
    b->finish(a_, 2, error_kind::non_retryable_aborted, t);
}

boost::asio::awaitable<error_code> circuit_breaker::wait_for_change(std::uint64_t version) {
    namespace asio = boost::asio;
    auto ex = co_await asio::this_coro::executor;
    {
        std::lock_guard lk(mu_);
        if (m_.version() != version) co_return error_code{};
    }
    auto w = std::make_shared<waiter>();
    w->ex = ex;
    auto init = [this, w, version](auto handler) {
        // The slot is connected before the waiter is published, so that a
        // completion from another thread cannot race with its assignment.
        auto slot = asio::get_associated_cancellation_slot(handler);
        if (slot.is_connected()) {
            std::weak_ptr<waiter> weak = w;
            slot.assign([this, weak](asio::cancellation_type) {
                if (auto sw = weak.lock()) remove_waiter(sw);
            });
        }
        bool now = false;
        {
            std::lock_guard lk(mu_);
            if (m_.version() != version) {
                now = true;
                w->done = true;
            } else {
                w->handler = std::make_unique<erased_handler_impl<decltype(handler)>>(std::move(handler));
                waiters_.push_back(w);
            }
        }
        if (now) {
            asio::post(w->ex, [h = std::move(handler)]() mutable { std::move(h)(error_code{}); });
        }
    };
    error_code ec;
    auto token = asio::redirect_error(asio::use_awaitable, ec);
    co_await asio::async_initiate<decltype(token), void(error_code)>(std::move(init), token);
    co_return ec;
}

void circuit_breaker::remove_waiter(const std::shared_ptr<waiter>& w) {
    std::unique_ptr<erased_handler> h;
    {
        std::lock_guard lk(mu_);
        if (w->done) return;
        w->done = true;
        h = std::move(w->handler);
        auto it = std::find(waiters_.begin(), waiters_.end(), w);
        if (it != waiters_.end()) waiters_.erase(it);
    }
    boost::asio::post(w->ex, [h = std::move(h)]() { h->complete(make_error_code(boost::asio::error::operation_aborted)); });
}

breaker_machine circuit_breaker::snapshot() const {
    std::lock_guard lk(mu_);
    breaker_machine m = m_;
    if (m.window_on())
        m.add_successes(window_successes_.load(std::memory_order_relaxed), folded_at_, clock_->now());
    return m;
}

std::vector<breaker_transition> circuit_breaker::history() const {
    std::lock_guard lk(mu_);
    return history_;
}

std::size_t circuit_breaker::waiters() const {
    std::lock_guard lk(mu_);
    return waiters_.size();
}

void circuit_breaker::isolate() {
    (void)change([&](time_point now, tx& t) { m_.isolate(now, t); });
}

void circuit_breaker::reset() {
    (void)change([&](time_point now, tx& t) { m_.reset(now, t); });
}

void circuit_breaker::set_observer(std::shared_ptr<gate_observer> o) {
    std::lock_guard lk(mu_);
    observer_ = std::move(o);
}

void circuit_breaker::apply_remote(breaker_state to, duration open_for) {
    (void)change([&](time_point now, tx& t) { m_.force(to, now, open_for, t); }, false);
}

void circuit_breaker::gate_probes(bool on) {
    (void)change([&](time_point, tx&) { m_.set_probe_gate(on); }, false);
}

void circuit_breaker::grant_probes() {
    (void)change([&](time_point, tx&) { m_.grant_probes(); }, false);
}

}  // namespace resilience
