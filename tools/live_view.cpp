#include "live_view.hpp"

#include <resilience/error.hpp>
#include <resilience/gemini/wire.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <sys/ioctl.h>
#include <unistd.h>

namespace gemini_files_view {

std::string group_digits(std::uint64_t n) {
    std::string d = std::to_string(n);
    std::string out;
    for (std::size_t i = 0; i < d.size(); ++i) {
        if (i && (d.size() - i) % 3 == 0) out += ',';
        out += d[i];
    }
    return out;
}

std::string format_duration(double s) {
    if (!(s >= 0) || !std::isfinite(s)) return "?";
    char buf[32];
    if (s < 10) std::snprintf(buf, sizeof buf, "%.1fs", s);
    else if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", std::floor(s));
    else if (s < 3600) {
        const long t = long(s);
        std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
    } else {
        const long t = long(s / 60);
        std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 60, t % 60);
    }
    return buf;
}

std::optional<double> estimate_remaining(double elapsed_s, std::size_t done, std::size_t total) {
    if (total == 0 || done >= total) return 0.0;
    if (done == 0 || !(elapsed_s > 0)) return std::nullopt;
    return elapsed_s * double(total - done) / double(done);
}

void rate_meter::add(double t, std::uint64_t count) {
    samples_.emplace_back(t, count);
    // Keep one sample at or before the window's start, so the rate spans it.
    while (samples_.size() > 2 && samples_[1].first <= t - window_s_) samples_.pop_front();
}

double rate_meter::per_second() const {
    if (samples_.size() < 2) return 0;
    const auto& [t0, c0] = samples_.front();
    const auto& [t1, c1] = samples_.back();
    if (!(t1 > t0) || c1 < c0) return 0;
    return double(c1 - c0) / (t1 - t0);
}

void tracker::on_event(const resilience::event& e) {
    using resilience::event_type;
    switch (e.type) {
    case event_type::cooldown_wait:
    case event_type::retry_scheduled:
        // A cooldown wait, or a pause the server chose (it becomes the scope's cooldown).
        if (e.type == event_type::cooldown_wait || e.pushback) {
            const auto until = e.at + e.delay;
            if (!cooldown_until_ || until > *cooldown_until_) cooldown_until_ = until;
        }
        break;
    case event_type::rate_wait: {
        rate_wait_s_ += std::chrono::duration<double>(e.delay).count();
        rate_ = e.rate;
        const auto until = e.at + e.delay;
        if (!rate_gate_until_ || until > *rate_gate_until_) rate_gate_until_ = until;
        break;
    }
    case event_type::breaker_transition: breaker_ = e.to; break;
    case event_type::attempt_failed:
        last_.assign(e.subject);
        if (!last_.empty()) last_ += ": ";
        last_ += resilience::to_string(e.kind);
        if (!e.message.empty()) {
            last_ += ' ';
            last_.append(e.message);
        }
        break;
    default: break;
    }
}

namespace {

double seconds_left(const std::optional<resilience::time_point>& until, resilience::time_point now) {
    if (!until || *until <= now) return 0;
    return std::chrono::duration<double>(*until - now).count();
}

}  // namespace

double tracker::cooldown_remaining_s(resilience::time_point now) const { return seconds_left(cooldown_until_, now); }

double tracker::rate_gate_remaining_s(resilience::time_point now) const {
    return seconds_left(rate_gate_until_, now);
}

namespace {

// Cuts `s` to at most `cols` columns (a UTF-8 sequence counts as one column;
// terminal_safe has already turned controls into visible ASCII escapes).
std::string fit(std::string s, std::size_t cols) {
    std::size_t col = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;  // continuation byte
        if (col == cols) {
            s.resize(i);
            return s;
        }
        ++col;
    }
    return s;
}

std::string per_second(double r) {
    char buf[32];
    if (r < 10) std::snprintf(buf, sizeof buf, "%.1f/s", r);
    else std::snprintf(buf, sizeof buf, "%s/s", group_digits(std::uint64_t(std::llround(r))).c_str());
    return buf;
}

}  // namespace

std::vector<std::string> render(const view_state& s) {
    namespace gemini = resilience::gemini;
    std::vector<std::string> lines;
    std::string l = gemini::terminal_safe(s.title) + ": " + group_digits(s.done) + "/" + group_digits(s.total) +
                    " done, " + format_duration(s.elapsed_s) + " elapsed, ";
    if (s.done >= s.total) l += "finished";
    else if (s.remaining_s) l += "about " + format_duration(*s.remaining_s) + " left";
    else l += "time left not known yet";
    lines.push_back(std::move(l));

    l = "  files     ";
    bool any = false;
    for (const auto& [state, n] : s.states) {
        if (!n) continue;
        l += (any ? "  " : "") + gemini::terminal_safe(state) + " " + group_digits(n);
        any = true;
    }
    if (!any) l += "none yet";
    lines.push_back(std::move(l));

    lines.push_back("  requests  " + group_digits(s.requests) + " sent, " + per_second(s.requests_per_s));

    static const char* kinds[3] = {"network", "rate limit", "server"};
    const std::uint64_t retries = s.retries_by_kind[0] + s.retries_by_kind[1] + s.retries_by_kind[2];
    l = "  retries   " + group_digits(retries);
    if (retries) {
        l += " (";
        bool first = true;
        for (int k = 0; k < 3; ++k)
            if (s.retries_by_kind[k]) {
                l += std::string(first ? "" : ", ") + kinds[k] + " " + group_digits(s.retries_by_kind[k]);
                first = false;
            }
        l += ")";
    }
    lines.push_back(std::move(l));

    l = "  breaker   " + std::string(resilience::to_string(s.breaker)) + "   cooldown ";
    l += s.cooldown_remaining_s > 0 ? format_duration(s.cooldown_remaining_s) + " left" : "none";
    lines.push_back(std::move(l));

    if (s.rate_waits) {
        l = "  rate gate " + per_second(s.rate) + "   " + group_digits(s.rate_waits) + " held, " +
            format_duration(s.rate_wait_s) + " in all";
        if (s.rate_gate_remaining_s > 0) l += ", " + format_duration(s.rate_gate_remaining_s) + " left";
        lines.push_back(std::move(l));
    }

    if (!s.last.empty()) lines.push_back("  last      " + gemini::terminal_safe(s.last));

    const std::size_t cols = s.width > 1 ? s.width - 1 : 1;
    for (auto& line : lines) line = fit(std::move(line), cols);
    return lines;
}

std::string redraw(std::size_t previous_lines, const std::vector<std::string>& lines) {
    std::string out;
    if (previous_lines) out += "\x1b[" + std::to_string(previous_lines) + "A";  // cursor up
    for (const auto& line : lines) out += "\r\x1b[2K" + line + "\n";            // erase line, write
    // A shorter frame than the previous one: erase what is left below it.
    if (previous_lines > lines.size()) out += "\x1b[J";
    return out;
}

std::size_t screen::columns() const {
    struct winsize w {};
    if (::ioctl(fd_, TIOCGWINSZ, &w) == 0 && w.ws_col > 0) return w.ws_col;
    return 80;
}

void screen::draw(view_state s) {
    meter_.add(s.elapsed_s, s.requests);
    s.requests_per_s = meter_.per_second();
    s.width = columns();
    const auto lines = render(s);
    const std::string bytes = redraw(lines_, lines);
    std::fwrite(bytes.data(), 1, bytes.size(), out_);
    std::fflush(out_);
    lines_ = lines.size();
}

}  // namespace gemini_files_view
