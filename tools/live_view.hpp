#ifndef GEMINI_FILES_LIVE_VIEW_HPP
#define GEMINI_FILES_LIVE_VIEW_HPP

// The live view of `gemini-files wait` and `gemini-files demo` on a terminal:
// one block of lines redrawn in place a few times a second (files by state,
// requests per second, retries by kind, breaker state, cooldown remaining,
// the adaptive rate gate's holds, elapsed, an estimate of what remains)
// instead of thousands of scrolling status lines.
//
// Three parts, the first two pure (unit-tested without a terminal):
//   - tracker: folds the client's structured events (resilience::event) into
//     what the counters do not say (cooldown end, breaker state, rate gate
//     holds, last failure);
//   - render(view_state) -> lines: the frame, every line terminal-safe and no
//     wider than view_state::width;
//   - redraw(previous_lines, lines): the bytes that replace the previous frame
//     (plain ANSI: cursor up, erase line).

#include <resilience/events.hpp>

#include <cstdint>
#include <cstdio>
#include <deque>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gemini_files_view {

/// Everything one frame shows.
struct view_state {
    std::string title;                 ///< e.g. "gemini-files wait"
    double elapsed_s = 0;
    std::size_t total = 0;             ///< files the command handles
    std::size_t done = 0;              ///< of which finished (whatever the outcome)
    /// Files by state, in display order; states with 0 files are not shown.
    std::vector<std::pair<std::string, std::size_t>> states;
    std::uint64_t requests = 0;        ///< HTTP requests sent (client_stats::attempts)
    double requests_per_s = 0;         ///< over the last seconds (rate_meter)
    std::uint64_t retries_by_kind[3] = {};  ///< network, rate limit, server (client_stats::retries_by_kind)
    resilience::breaker_state breaker = resilience::breaker_state::closed;
    double cooldown_remaining_s = 0;   ///< 0: no cooldown in force
    /// The adaptive rate gate (shown once it has held an attempt):
    std::uint64_t rate_waits = 0;      ///< attempts it held (client_stats::rate_waits); 0: no line
    double rate_wait_s = 0;            ///< their waits, summed over attempts (tracker::rate_wait_s)
    double rate_gate_remaining_s = 0;  ///< the latest hold's time left (0: none now)
    double rate = 0;                   ///< the gate's rate as last announced, requests per second
    std::optional<double> remaining_s; ///< estimate of the time left (estimate_remaining)
    std::string last;                  ///< the latest failure or status text (may be server text)
    std::size_t width = 80;            ///< terminal columns; every line is cut to width - 1
};

/// The frame: a handful of lines, no line feed in any, each at most
/// width - 1 columns, text from servers made terminal-safe.
std::vector<std::string> render(const view_state& s);

/// Bytes that move the cursor up over the previous frame's `previous_lines`
/// lines and write `lines` in their place, each erased first and ended by a
/// line feed (so the cursor ends below the frame).
std::string redraw(std::size_t previous_lines, const std::vector<std::string>& lines);

/// Time left, from the share done so far: elapsed * (total - done) / done.
/// Nothing before the first file is done; 0 when all are.
std::optional<double> estimate_remaining(double elapsed_s, std::size_t done, std::size_t total);

/// "0.4s", "12s", "3m05s", "2h01m".
std::string format_duration(double seconds);

/// "1,234,567".
std::string group_digits(std::uint64_t n);

/// Rate of a growing counter over a sliding window of samples.
class rate_meter {
public:
    explicit rate_meter(double window_s = 2.0) : window_s_(window_s) {}
    /// Records the counter's value at time t (seconds, non-decreasing).
    void add(double t, std::uint64_t count);
    /// Per second over the window (0 until two samples are apart in time).
    double per_second() const;

private:
    double window_s_;
    std::deque<std::pair<double, std::uint64_t>> samples_;
};

/// What the structured events tell beyond the counters. Feed it every event
/// of the client (client_options::on_event); read it when drawing.
class tracker {
public:
    void on_event(const resilience::event& e);
    /// Seconds of cooldown left at `now` (0: none).
    double cooldown_remaining_s(resilience::time_point now) const;
    /// The adaptive rate gate: its holds' announced seconds summed over the
    /// attempts held, the time left of the latest-ending hold at `now` (0:
    /// none), and its rate as the last hold told it (requests per second).
    double rate_wait_s() const noexcept { return rate_wait_s_; }
    double rate_gate_remaining_s(resilience::time_point now) const;
    double rate() const noexcept { return rate_; }
    /// The breaker's state as the last transition event told it.
    resilience::breaker_state breaker() const noexcept { return breaker_; }
    /// The latest failure, as "subject: KIND message" (raw: render makes it terminal-safe).
    const std::string& last_failure() const noexcept { return last_; }

private:
    std::optional<resilience::time_point> cooldown_until_;
    std::optional<resilience::time_point> rate_gate_until_;
    double rate_wait_s_ = 0;
    double rate_ = 0;
    resilience::breaker_state breaker_ = resilience::breaker_state::closed;
    std::string last_;
};

/// The part of a frame every command fills the same way from its client
/// (gemini::client): requests, retries by kind, breaker, cooldown left, the
/// rate gate's holds, the estimate, and the latest failure with the API key
/// scrubbed out. The caller
/// sets title, elapsed_s, total, done and states first.
template <class Client, class Redact>
void fill_from_client(view_state& v, Client& g, const tracker& events, Redact&& redact) {
    const auto st = g.stats();
    v.requests = st.attempts;
    for (int k = 0; k < 3; ++k) v.retries_by_kind[k] = st.retries_by_kind[k];
    v.breaker = g.breaker_state();
    v.cooldown_remaining_s = events.cooldown_remaining_s(g.time().now());
    v.rate_waits = st.rate_waits;
    v.rate_wait_s = events.rate_wait_s();
    v.rate_gate_remaining_s = events.rate_gate_remaining_s(g.time().now());
    v.rate = events.rate();
    v.remaining_s = estimate_remaining(v.elapsed_s, v.done, v.total);
    std::string last = events.last_failure();
    redact(last);
    v.last = std::move(last);
}

/// The terminal side: draws frames in place on a stream (stdout), with the
/// request rate measured between frames and the width read from the terminal.
class screen {
public:
    explicit screen(int fd = 1, std::FILE* out = stdout) : fd_(fd), out_(out) {}
    /// Fills requests_per_s and width, renders and redraws.
    void draw(view_state s);
    /// The terminal's width (80 when it cannot be read).
    std::size_t columns() const;

private:
    int fd_;
    std::FILE* out_;
    rate_meter meter_;
    std::size_t lines_ = 0;
};

}  // namespace gemini_files_view

#endif
