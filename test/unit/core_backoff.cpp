// Backoff maths: range, mean and distribution (Kolmogorov-Smirnov) per retry
// and jitter mode, the cap, and the edge cases (retry 1000, huge multiplier,
// multiplier 1, initial 0). Pure functions, no clock.
#include <resilience/backoff.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace std::chrono_literals;
using resilience::backoff_cap;
using resilience::backoff_delay;
using resilience::backoff_policy;
using resilience::duration;
using resilience::jitter_mode;
using resilience::jitter_source;

namespace {

constexpr int samples = 100'000;

double ns(duration d) { return static_cast<double>(d.count()); }

backoff_policy policy(jitter_mode j) {
    backoff_policy p;
    p.jitter = j;
    return p;  // defaults: 1 s, 30 s, x2
}

// Kolmogorov-Smirnov statistic of `xs` against U(lo, hi).
double ks_uniform(std::vector<double> xs, double lo, double hi) {
    std::sort(xs.begin(), xs.end());
    const double n = static_cast<double>(xs.size());
    double d = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
        double f = std::clamp((xs[i] - lo) / (hi - lo), 0.0, 1.0);
        d = std::max({d, (static_cast<double>(i) + 1) / n - f, f - static_cast<double>(i) / n});
    }
    return d;
}

// The critical value of the one-sample KS test at alpha = 0.001.
double ks_critical(std::size_t n) { return 1.95 / std::sqrt(static_cast<double>(n)); }

struct stats {
    std::vector<double> xs;
    double lo = 1e300, hi = -1, mean = 0;
};

stats draw(const backoff_policy& p, int retry, std::uint64_t seed, duration previous = {}) {
    jitter_source rng(seed);
    stats s;
    s.xs.reserve(samples);
    double sum = 0;
    for (int i = 0; i < samples; ++i) {
        double x = ns(backoff_delay(p, retry, rng.next(), previous));
        s.xs.push_back(x);
        s.lo = std::min(s.lo, x);
        s.hi = std::max(s.hi, x);
        sum += x;
    }
    s.mean = sum / samples;
    return s;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(core_backoff)

BOOST_AUTO_TEST_CASE(cap_doubles_until_max_delay) {
    backoff_policy p = policy(jitter_mode::none);
    const duration expected[] = {1s, 2s, 4s, 8s, 16s, 30s, 30s, 30s};
    for (int k = 1; k <= 8; ++k) {
        BOOST_TEST_CONTEXT("retry " << k) {
            BOOST_TEST(backoff_cap(p, k).count() == duration(expected[k - 1]).count());
            // jitter none: exactly the cap
            BOOST_TEST(backoff_delay(p, k, 0.7, {}).count() == duration(expected[k - 1]).count());
        }
    }
}

BOOST_AUTO_TEST_CASE(exact_caps_for_other_multipliers) {
    backoff_policy p = policy(jitter_mode::none);
    p.initial_delay = 100ms;
    p.max_delay = 3600s;
    p.multiplier = 3;
    BOOST_TEST(backoff_cap(p, 1).count() == duration(100ms).count());
    BOOST_TEST(backoff_cap(p, 2).count() == duration(300ms).count());
    BOOST_TEST(backoff_cap(p, 5).count() == duration(8100ms).count());
    p.multiplier = 1.5;
    BOOST_TEST(backoff_cap(p, 3).count() == duration(225ms).count());
}

BOOST_AUTO_TEST_CASE(full_jitter_distribution) {
    backoff_policy p = policy(jitter_mode::full);
    for (int k = 1; k <= 7; ++k) {
        BOOST_TEST_CONTEXT("retry " << k) {
            const double cap = ns(backoff_cap(p, k));
            stats s = draw(p, k, 0x1234 + k);
            BOOST_TEST(s.lo >= 0.0);
            BOOST_TEST(s.hi < cap);
            BOOST_TEST(s.hi > 0.999 * cap);  // the range is used
            BOOST_TEST(s.lo < 0.001 * cap);
            BOOST_TEST(std::abs(s.mean - cap / 2) <= 0.02 * (cap / 2));
            const double d = ks_uniform(s.xs, 0, cap);
            BOOST_TEST_MESSAGE("full jitter retry " << k << ": mean/cap " << s.mean / cap << ", KS D " << d);
            BOOST_TEST(d < ks_critical(samples));
        }
    }
}

BOOST_AUTO_TEST_CASE(equal_jitter_distribution) {
    backoff_policy p = policy(jitter_mode::equal);
    for (int k = 1; k <= 7; ++k) {
        BOOST_TEST_CONTEXT("retry " << k) {
            const double cap = ns(backoff_cap(p, k));
            stats s = draw(p, k, 0x9876 + k);
            BOOST_TEST(s.lo >= cap / 2);
            BOOST_TEST(s.hi < cap);
            BOOST_TEST(std::abs(s.mean - 0.75 * cap) <= 0.02 * (0.75 * cap));
            const double d = ks_uniform(s.xs, cap / 2, cap);
            BOOST_TEST(d < ks_critical(samples));
        }
    }
}

BOOST_AUTO_TEST_CASE(no_jitter_is_constant) {
    backoff_policy p = policy(jitter_mode::none);
    for (int k = 1; k <= 7; ++k) {
        stats s = draw(p, k, 42);
        BOOST_TEST(s.lo == ns(backoff_cap(p, k)));
        BOOST_TEST(s.hi == ns(backoff_cap(p, k)));
    }
}

BOOST_AUTO_TEST_CASE(decorrelated_jitter_distribution) {
    backoff_policy p = policy(jitter_mode::decorrelated);
    const double base = ns(p.initial_delay);
    const double maxd = ns(p.max_delay);
    // retry 1: U(base, 3 * base); then U(base, 3 * previous), capped at max_delay.
    struct row { int retry; duration previous; };
    const row rows[] = {{1, 0s}, {2, 2s}, {3, 5s}, {4, 9s}};
    for (auto r : rows) {
        BOOST_TEST_CONTEXT("retry " << r.retry << " previous " << r.previous.count()) {
            const double prev = r.retry == 1 ? base : ns(r.previous);
            const double hi = std::min(maxd, 3 * prev);
            stats s = draw(p, r.retry, 0x5555 + r.retry, r.previous);
            BOOST_TEST(s.lo >= base);
            BOOST_TEST(s.hi < hi);
            BOOST_TEST(std::abs(s.mean - (base + hi) / 2) <= 0.02 * (base + hi) / 2);
            BOOST_TEST(ks_uniform(s.xs, base, hi) < ks_critical(samples));
        }
    }
    // A previous delay near the cap: every sample is within [base, max_delay].
    stats s = draw(p, 5, 7, 29s);
    BOOST_TEST(s.lo >= base);
    BOOST_TEST(s.hi <= maxd);
}

BOOST_AUTO_TEST_CASE(decorrelated_chain_stays_in_range) {
    backoff_policy p = policy(jitter_mode::decorrelated);
    jitter_source rng(99);
    duration prev{};
    for (int k = 1; k <= 1000; ++k) {
        duration d = backoff_delay(p, k, rng.next(), prev);
        BOOST_TEST_REQUIRE(d >= duration(p.initial_delay));
        BOOST_TEST_REQUIRE(d <= duration(p.max_delay));
        prev = d;
    }
}

BOOST_AUTO_TEST_CASE(every_mode_respects_max_delay) {
    for (auto j : {jitter_mode::none, jitter_mode::full, jitter_mode::equal, jitter_mode::decorrelated}) {
        backoff_policy p = policy(j);
        jitter_source rng(3);
        for (int k = 1; k <= 64; ++k)
            for (int i = 0; i < 100; ++i)
                BOOST_TEST_REQUIRE(backoff_delay(p, k, rng.next(), 30s) <= duration(p.max_delay));
        // u at the edges of [0, 1) and outside it
        for (double u : {0.0, 0.5, std::nextafter(1.0, 0.0), 1.0, 2.0, -1.0, std::nan("")})
            BOOST_TEST_REQUIRE(backoff_delay(p, 10, u, 30s) <= duration(p.max_delay));
    }
}

BOOST_AUTO_TEST_CASE(retry_1000_and_huge_multiplier_saturate) {
    for (auto j : {jitter_mode::none, jitter_mode::full, jitter_mode::equal, jitter_mode::decorrelated}) {
        BOOST_TEST_CONTEXT("jitter " << resilience::to_string(j)) {
            backoff_policy p = policy(j);
            BOOST_TEST(backoff_cap(p, 1000).count() == duration(p.max_delay).count());
            BOOST_TEST(backoff_cap(p, 1'000'000).count() == duration(p.max_delay).count());
            BOOST_TEST(backoff_cap(p, std::numeric_limits<int>::max()).count() == duration(p.max_delay).count());
            p.multiplier = 1e300;
            BOOST_TEST(backoff_cap(p, 2).count() == duration(p.max_delay).count());
            BOOST_TEST(backoff_cap(p, 1000).count() == duration(p.max_delay).count());
            p.multiplier = std::numeric_limits<double>::infinity();
            BOOST_TEST(backoff_cap(p, 3).count() == duration(p.max_delay).count());
            duration d = backoff_delay(p, 1000, 0.999, 30s);
            BOOST_TEST(d >= duration::zero());
            BOOST_TEST(d <= duration(p.max_delay));
            if (j == jitter_mode::none) BOOST_TEST(d.count() == duration(p.max_delay).count());
        }
    }
    // The largest max_delay: no overflow in nanoseconds either.
    backoff_policy p = policy(jitter_mode::none);
    p.max_delay = std::chrono::milliseconds(std::chrono::hours(24));
    BOOST_TEST(backoff_cap(p, 1000).count() == duration(std::chrono::hours(24)).count());
}

BOOST_AUTO_TEST_CASE(multiplier_one_is_constant) {
    backoff_policy p = policy(jitter_mode::none);
    p.multiplier = 1;
    p.initial_delay = 250ms;
    for (int k : {1, 2, 10, 1000}) BOOST_TEST(backoff_cap(p, k).count() == duration(250ms).count());
    // a multiplier below 1 is treated as 1
    p.multiplier = 0.5;
    BOOST_TEST(backoff_cap(p, 5).count() == duration(250ms).count());
}

BOOST_AUTO_TEST_CASE(initial_zero_means_no_delay) {
    for (auto j : {jitter_mode::none, jitter_mode::full, jitter_mode::equal, jitter_mode::decorrelated}) {
        backoff_policy p = policy(j);
        p.initial_delay = 0ms;
        for (int k : {1, 2, 30, 1000}) {
            BOOST_TEST(backoff_cap(p, k).count() == 0);
            BOOST_TEST(backoff_delay(p, k, 0.5, {}).count() <= 0);
        }
    }
}

BOOST_AUTO_TEST_CASE(jitter_source_is_reproducible) {
    jitter_source a(17), b(17), c(18);
    bool differs = false;
    for (int i = 0; i < 1000; ++i) {
        double x = a.next();
        BOOST_TEST_REQUIRE(x == b.next());
        BOOST_TEST_REQUIRE(x >= 0.0);
        BOOST_TEST_REQUIRE(x < 1.0);
        differs = differs || x != c.next();
    }
    BOOST_TEST(differs);
    BOOST_TEST(resilience::to_unit_interval(~std::uint64_t{0}) < 1.0);
    BOOST_TEST(resilience::to_unit_interval(0) == 0.0);
}

BOOST_AUTO_TEST_SUITE_END()
