#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace resilience::testing {

// A coroutine asleep on the manual clock: a real timer that never expires by
// itself; advance() cancels it (on its own executor) after marking it fired.
struct manual_clock::sleeper {
    explicit sleeper(const boost::asio::any_io_executor& ex) : timer(ex, boost::asio::steady_timer::time_point::max()) {}
    boost::asio::steady_timer timer;
    std::atomic<bool> fired{false};
    bool orphaned = false;  // the clock is gone (set under its lock, by its destructor)
};

namespace {
// An arbitrary, fixed start far from zero, so that "now - something" never underflows.
constexpr time_point default_start{std::chrono::hours(1'000'000)};
}  // namespace

manual_clock::manual_clock() noexcept : manual_clock(default_start) {}
manual_clock::manual_clock(time_point start) noexcept : now_(start.time_since_epoch().count()) {}
// A coroutine may still sleep on the clock when it is destroyed (its
// io_context, destroyed later, destroys the coroutine): its sleeper must then
// not unregister from the clock.
manual_clock::~manual_clock() {
    std::lock_guard lk(mu_);
    for (auto& [tp, s] : sleepers_) s->orphaned = true;
}

time_point manual_clock::now() const noexcept { return time_point(duration(now_.load(std::memory_order_acquire))); }

boost::asio::awaitable<error_code> manual_clock::sleep_until(time_point tp) {
    namespace asio = boost::asio;
    auto ex = co_await asio::this_coro::executor;
    auto s = std::make_shared<sleeper>(ex);
    {
        std::lock_guard lk(mu_);
        if (tp <= now()) co_return error_code{};
        sleepers_.emplace(tp, s);
    }
    // Unregisters the sleeper however the wait ends: woken, cancelled, or
    // its coroutine destroyed with the io_context (advance() must then not
    // post to an executor that no longer exists).
    struct unregister {
        manual_clock& clk;
        const std::shared_ptr<sleeper>& s;
        time_point tp;
        ~unregister() {
            // Fired: advance() has removed it. Orphaned: the clock is gone.
            if (s->fired.load(std::memory_order_acquire) || s->orphaned) return;
            std::lock_guard lk(clk.mu_);
            for (auto i = clk.sleepers_.lower_bound(tp); i != clk.sleepers_.end() && i->first == tp; ++i)
                if (i->second == s) {
                    clk.sleepers_.erase(i);
                    break;
                }
        }
    } guard{*this, s, tp};
    error_code ec;
    co_await s->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (s->fired.load(std::memory_order_acquire)) co_return error_code{};
    co_return ec ? ec : error_code(asio::error::operation_aborted);
}

void manual_clock::advance(duration d) {
    if (d < duration::zero()) d = duration::zero();
    advance_to(now() + d);
}

void manual_clock::advance_to(time_point tp) {
    std::vector<std::shared_ptr<sleeper>> due;
    {
        std::lock_guard lk(mu_);
        if (tp > now()) now_.store(tp.time_since_epoch().count(), std::memory_order_release);
        auto end = sleepers_.upper_bound(now());
        for (auto i = sleepers_.begin(); i != end; ++i) due.push_back(std::move(i->second));
        sleepers_.erase(sleepers_.begin(), end);
    }
    for (auto& s : due) {
        s->fired.store(true, std::memory_order_release);
        auto ex = s->timer.get_executor();
        // Moving the expiry into the past wakes a wait in progress and makes a
        // wait not yet started complete at once; `fired` tells the sleeper it
        // was woken by time, not cancelled.
        boost::asio::post(ex, [s] { s->timer.expires_at(boost::asio::steady_timer::time_point::min()); });
    }
}

std::optional<time_point> manual_clock::next_wakeup() const {
    std::lock_guard lk(mu_);
    if (sleepers_.empty()) return std::nullopt;
    return sleepers_.begin()->first;
}

bool manual_clock::advance_to_next() {
    auto next = next_wakeup();
    if (!next) return false;
    advance_to(*next);
    return true;
}

std::size_t manual_clock::sleepers() const {
    std::lock_guard lk(mu_);
    return sleepers_.size();
}

bool run_virtual(boost::asio::io_context& ctx, manual_clock& clk, std::function<bool()> done, run_options opts) {
    const time_point limit = clk.now() + opts.max_virtual;
    const bool real_bound = opts.max_real.count() > 0;
    const auto real_limit = std::chrono::steady_clock::now() + opts.max_real;
    for (;;) {
        if (real_bound && std::chrono::steady_clock::now() > real_limit) return false;
        if (done && done()) return true;
        if (ctx.stopped()) ctx.restart();
        if (ctx.poll() > 0) continue;
        if (done && done()) return true;
        // Nothing ready: give loopback I/O a moment in real time.
        if (ctx.stopped()) ctx.restart();
        if (ctx.run_one_for(opts.idle_quantum) > 0) continue;
        auto next = clk.next_wakeup();
        if (!next) {
            if (!done) {
                // No sleeper and nothing ran: finished if the context has no work left.
                if (ctx.stopped()) return true;
                continue;
            }
            if (ctx.stopped()) return false;  // no work, nobody asleep, not done
            continue;                          // pending I/O only: keep waiting
        }
        if (*next > limit) return false;
        clk.advance_to(*next);
    }
}

}  // namespace resilience::testing
