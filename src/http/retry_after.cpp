// The Retry-After header: delta-seconds and the three HTTP-date forms.
#include <resilience/http/retry_after.hpp>

#include <array>
#include <cctype>
#include <charconv>

namespace resilience::http {
namespace {

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool all_digits(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// Parses exactly `n` digits at the front of s.
bool take_digits(std::string_view& s, std::size_t n, int& out) noexcept {
    if (s.size() < n) return false;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    out = v;
    s.remove_prefix(n);
    return true;
}

bool take(std::string_view& s, std::string_view lit) noexcept {
    if (s.substr(0, lit.size()) != lit) return false;
    s.remove_prefix(lit.size());
    return true;
}

constexpr std::array<std::string_view, 12> months = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> short_days = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
constexpr std::array<std::string_view, 7> long_days = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                                       "Friday", "Saturday", "Sunday"};

bool take_month(std::string_view& s, int& m) noexcept {
    for (std::size_t i = 0; i < months.size(); ++i)
        if (take(s, months[i])) {
            m = static_cast<int>(i) + 1;
            return true;
        }
    return false;
}

template <std::size_t N>
bool take_any(std::string_view& s, const std::array<std::string_view, N>& names) noexcept {
    for (auto n : names)
        if (take(s, n)) return true;
    return false;
}

// "HH:MM:SS"
bool take_time(std::string_view& s, int& h, int& mi, int& se) noexcept {
    return take_digits(s, 2, h) && take(s, ":") && take_digits(s, 2, mi) && take(s, ":") && take_digits(s, 2, se);
}

std::optional<std::chrono::system_clock::time_point> make_time(int y, int mo, int d, int h, int mi, int se) noexcept {
    using namespace std::chrono;
    if (h > 23 || mi > 59 || se > 60) return std::nullopt;
    year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return std::nullopt;
    // system_clock counts nanoseconds here (years 1677..2262): a date outside
    // that range saturates instead of wrapping around ("Fri, 31 Dec 9999"
    // must be far in the future, not in the past).
    using tp = std::chrono::system_clock::time_point;
    const sys_seconds t = sys_days{ymd} + hours{h} + minutes{mi} + seconds{se};
    if (t >= floor<seconds>(tp::max())) return tp::max();
    if (t <= ceil<seconds>(tp::min())) return tp::min();
    return time_point_cast<tp::duration>(t);
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view s) noexcept {
    s = trim(s);
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    {
        std::string_view t = s;
        if (take_any(t, short_days) && take(t, ", ") && take_digits(t, 2, d) && take(t, " ") && take_month(t, mo) &&
            take(t, " ") && take_digits(t, 4, y) && take(t, " ") && take_time(t, h, mi, se) && take(t, " GMT") &&
            t.empty())
            return make_time(y, mo, d, h, mi, se);
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    {
        std::string_view t = s;
        if (take_any(t, long_days) && take(t, ", ") && take_digits(t, 2, d) && take(t, "-") && take_month(t, mo) &&
            take(t, "-") && take_digits(t, 2, y) && take(t, " ") && take_time(t, h, mi, se) && take(t, " GMT") &&
            t.empty())
            return make_time(y < 70 ? 2000 + y : 1900 + y, mo, d, h, mi, se);
    }
    // asctime: "Sun Nov  6 08:49:37 1994"
    {
        std::string_view t = s;
        if (take_any(t, short_days) && take(t, " ") && take_month(t, mo) && take(t, " ")) {
            bool ok = (t.size() >= 2 && t[0] == ' ' && (t.remove_prefix(1), take_digits(t, 1, d))) ||
                      take_digits(t, 2, d);
            if (ok && take(t, " ") && take_time(t, h, mi, se) && take(t, " ") && take_digits(t, 4, y) && t.empty())
                return make_time(y, mo, d, h, mi, se);
        }
    }
    return std::nullopt;
}

std::optional<duration> parse_retry_after(std::string_view value, std::chrono::system_clock::time_point now) noexcept {
    value = trim(value);
    if (all_digits(value)) {
        // Saturating: "99999999999999999999" is a very long time, not an overflow.
        constexpr auto max_s = std::chrono::duration_cast<std::chrono::seconds>(max_pushback).count();
        std::int64_t v = 0;
        for (char c : value) {
            v = v * 10 + (c - '0');
            if (v >= max_s) return max_pushback;
        }
        return std::chrono::seconds(v);
    }
    auto date = parse_http_date(value);
    if (!date) return std::nullopt;
    if (*date <= now) return duration::zero();
    // Saturating: neither a date at the end of the clock's range nor an odd
    // `now` may overflow the subtraction.
    using sys_duration = std::chrono::system_clock::duration;
    sys_duration::rep diff = 0;
    if (__builtin_sub_overflow(date->time_since_epoch().count(), now.time_since_epoch().count(), &diff) ||
        sys_duration(diff) >= std::chrono::duration_cast<sys_duration>(max_pushback))
        return max_pushback;
    return std::chrono::duration_cast<duration>(sys_duration(diff));
}

}  // namespace resilience::http
