// The live view of gemini-files (tools/live_view.hpp): the pure renderer, the
// event tracker, the rate meter and the redraw bytes, without a terminal.
#include "live_view.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <string>

namespace view = gemini_files_view;
using namespace std::chrono_literals;

namespace {

std::string joined(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
}

bool has(const std::vector<std::string>& lines, const std::string& what) {
    return joined(lines).find(what) != std::string::npos;
}

view::view_state sample() {
    view::view_state v;
    v.title = "gemini-files wait";
    v.elapsed_s = 30;
    v.total = 1000;
    v.done = 250;
    v.states = {{"PROCESSING", 750}, {"ACTIVE", 240}, {"FAILED", 4}, {"ERROR", 6}};
    v.requests = 12345;
    v.requests_per_s = 411.6;
    v.retries_by_kind[0] = 3;
    v.retries_by_kind[1] = 1200;
    v.retries_by_kind[2] = 17;
    v.breaker = resilience::breaker_state::open;
    v.cooldown_remaining_s = 4.25;
    v.remaining_s = view::estimate_remaining(v.elapsed_s, v.done, v.total);
    v.width = 120;
    return v;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(gemini_view)

BOOST_AUTO_TEST_CASE(frame_shows_counts_rates_retries_breaker_and_cooldown) {
    auto lines = view::render(sample());
    BOOST_TEST(has(lines, "gemini-files wait: 250/1,000 done, 30s elapsed, about 1m30s left"), joined(lines));
    BOOST_TEST(has(lines, "PROCESSING 750  ACTIVE 240  FAILED 4  ERROR 6"), joined(lines));
    BOOST_TEST(has(lines, "12,345 sent, 412/s"), joined(lines));
    BOOST_TEST(has(lines, "retries   1,220 (network 3, rate limit 1,200, server 17)"), joined(lines));
    BOOST_TEST(has(lines, "breaker   OPEN   cooldown 4.2s left"), joined(lines));
    BOOST_TEST(!has(lines, "rate gate"), joined(lines));  // the gate has held nothing (or is off)
    for (const auto& l : lines) BOOST_TEST(l.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(frame_shows_the_rate_gate_once_it_has_held_an_attempt) {
    auto v = sample();
    v.rate_waits = 1234;
    v.rate_wait_s = 75.5;
    v.rate_gate_remaining_s = 0.4;
    v.rate = 2.5;
    auto lines = view::render(v);
    BOOST_TEST(has(lines, "rate gate 2.5/s   1,234 held, 1m15s in all, 0.4s left"), joined(lines));
    v.rate_gate_remaining_s = 0;  // no hold now
    v.rate = 40;
    lines = view::render(v);
    const auto line = std::find_if(lines.begin(), lines.end(), [](const std::string& l) {
        return l.find("rate gate") != std::string::npos;
    });
    BOOST_REQUIRE(line != lines.end());
    BOOST_TEST(*line == "  rate gate 40/s   1,234 held, 1m15s in all");
}

BOOST_AUTO_TEST_CASE(empty_states_and_no_cooldown_read_plainly) {
    auto v = sample();
    v.states = {{"PROCESSING", 0}, {"ACTIVE", 1000}, {"FAILED", 0}};
    v.done = 1000;
    v.remaining_s = view::estimate_remaining(v.elapsed_s, v.done, v.total);
    v.cooldown_remaining_s = 0;
    v.breaker = resilience::breaker_state::closed;
    for (auto& r : v.retries_by_kind) r = 0;
    auto lines = view::render(v);
    BOOST_TEST(has(lines, "1,000/1,000 done, 30s elapsed, finished"), joined(lines));
    BOOST_TEST(has(lines, "files     ACTIVE 1,000\n"), joined(lines));  // zero states left out
    BOOST_TEST(has(lines, "retries   0\n"), joined(lines));
    BOOST_TEST(has(lines, "breaker   CLOSED   cooldown none"), joined(lines));
    BOOST_TEST(!has(lines, "last"), joined(lines));
}

BOOST_AUTO_TEST_CASE(estimate_of_what_remains) {
    BOOST_TEST(!view::estimate_remaining(10, 0, 100).has_value());  // nothing done yet: not known
    BOOST_TEST(*view::estimate_remaining(10, 25, 100) == 30.0);
    BOOST_TEST(*view::estimate_remaining(10, 100, 100) == 0.0);
    BOOST_TEST(*view::estimate_remaining(0, 0, 0) == 0.0);
    auto v = sample();
    v.done = 0;
    v.remaining_s = view::estimate_remaining(v.elapsed_s, v.done, v.total);
    BOOST_TEST(has(view::render(v), "time left not known yet"));
}

BOOST_AUTO_TEST_CASE(durations_and_digits) {
    BOOST_TEST(view::format_duration(0.44) == "0.4s");
    BOOST_TEST(view::format_duration(12.9) == "12s");
    BOOST_TEST(view::format_duration(185) == "3m05s");
    BOOST_TEST(view::format_duration(7260) == "2h01m");
    BOOST_TEST(view::format_duration(-1) == "?");
    BOOST_TEST(view::group_digits(0) == "0");
    BOOST_TEST(view::group_digits(999) == "999");
    BOOST_TEST(view::group_digits(1000000) == "1,000,000");
}

BOOST_AUTO_TEST_CASE(server_text_is_neutralised_and_lines_fit_the_terminal) {
    auto v = sample();
    v.last = "files/abc: RETRYABLE_SERVER \x1b]0;pwned\x07 \x1b[2J\xc2\x9b" "31m overloaded " + std::string(300, 'x');
    v.states.emplace_back("WEIRD\x1b[1m", 1);
    v.width = 60;
    auto lines = view::render(v);
    for (const auto& l : lines) {
        for (unsigned char ch : l) BOOST_TEST(((ch >= 0x20 && ch != 0x7f) || ch >= 0x80), l);
        BOOST_TEST(l.find("\xc2\x9b") == std::string::npos, l);  // C1 CSI made visible
        BOOST_TEST(l.size() <= 59u, l);                          // ASCII here: bytes == columns
    }
    BOOST_TEST(has(lines, "\\x1b"), joined(lines));
}

BOOST_AUTO_TEST_CASE(utf8_is_cut_at_a_character_boundary) {
    auto v = sample();
    v.last = std::string(200, 'a') + "\xc3\xa9\xc3\xa9\xc3\xa9";
    v.width = 222;  // "  last      " is 12 columns: 200 a's, then room for 9 columns
    auto lines = view::render(v);
    const std::string& last = lines.back();
    BOOST_TEST(last.substr(12) == std::string(200, 'a') + "\xc3\xa9\xc3\xa9\xc3\xa9");
    v.width = 214;  // 213 columns: 12 + 200 + one é
    lines = view::render(v);
    BOOST_TEST(lines.back().substr(12) == std::string(200, 'a') + "\xc3\xa9");
}

BOOST_AUTO_TEST_CASE(redraw_moves_up_over_the_previous_frame_and_erases) {
    const std::vector<std::string> two{"a", "b"};
    BOOST_TEST(view::redraw(0, two) == "\r\x1b[2Ka\n\r\x1b[2Kb\n");
    BOOST_TEST(view::redraw(2, two) == "\x1b[2A\r\x1b[2Ka\n\r\x1b[2Kb\n");
    BOOST_TEST(view::redraw(3, two) == "\x1b[3A\r\x1b[2Ka\n\r\x1b[2Kb\n\x1b[J");  // a shorter frame clears below
}

BOOST_AUTO_TEST_CASE(rate_meter_measures_over_its_window) {
    view::rate_meter m(2.0);
    BOOST_TEST(m.per_second() == 0.0);
    m.add(0.0, 0);
    BOOST_TEST(m.per_second() == 0.0);
    m.add(1.0, 100);
    BOOST_TEST(m.per_second() == 100.0);
    m.add(2.0, 300);
    BOOST_TEST(m.per_second() == 150.0);  // 300 over 2 s
    m.add(3.0, 300);
    m.add(4.0, 300);
    BOOST_TEST(m.per_second() == 0.0);  // nothing sent in the last 2 s
    m.add(4.5, 400);
    BOOST_TEST(m.per_second() == 100.0 / 2.5);  // from the sample at t=2 (300): the window start or before
}

BOOST_AUTO_TEST_CASE(tracker_follows_cooldown_breaker_and_failures_from_events) {
    view::tracker t;
    const resilience::time_point t0{};
    BOOST_TEST(t.cooldown_remaining_s(t0) == 0.0);

    resilience::event cw;
    cw.type = resilience::event_type::cooldown_wait;
    cw.at = t0;
    cw.delay = 10s;
    t.on_event(cw);
    BOOST_TEST(t.cooldown_remaining_s(t0 + 4s) == 6.0);

    resilience::event rs;  // a backoff the client chose is not a cooldown
    rs.type = resilience::event_type::retry_scheduled;
    rs.at = t0;
    rs.delay = 30s;
    t.on_event(rs);
    BOOST_TEST(t.cooldown_remaining_s(t0 + 4s) == 6.0);
    rs.pushback = true;  // the server's Retry-After / RetryInfo is
    t.on_event(rs);
    BOOST_TEST(t.cooldown_remaining_s(t0 + 4s) == 26.0);
    BOOST_TEST(t.cooldown_remaining_s(t0 + 31s) == 0.0);

    // The rate gate's holds: summed, the latest end, the rate last told.
    BOOST_TEST(t.rate_wait_s() == 0.0);
    BOOST_TEST(t.rate_gate_remaining_s(t0) == 0.0);
    resilience::event rw;
    rw.type = resilience::event_type::rate_wait;
    rw.at = t0;
    rw.delay = 2s;
    rw.rate = 4;
    t.on_event(rw);
    rw.at = t0 + 1s;
    rw.delay = 500ms;
    rw.rate = 2.5;
    t.on_event(rw);
    BOOST_TEST(t.rate_wait_s() == 2.5);
    BOOST_TEST(t.rate() == 2.5);
    BOOST_TEST(t.rate_gate_remaining_s(t0 + 1s) == 1.0);  // the first hold ends last
    BOOST_TEST(t.rate_gate_remaining_s(t0 + 2s) == 0.0);
    BOOST_TEST(t.cooldown_remaining_s(t0 + 4s) == 26.0);  // not a cooldown

    resilience::event tr;
    tr.type = resilience::event_type::breaker_transition;
    tr.from = resilience::breaker_state::closed;
    tr.to = resilience::breaker_state::open;
    t.on_event(tr);
    BOOST_TEST((t.breaker() == resilience::breaker_state::open));

    resilience::event f;
    f.type = resilience::event_type::attempt_failed;
    f.kind = resilience::error_kind::retryable_rate_limit;
    f.subject = "files/abc";
    f.message = "Resource has been exhausted";
    t.on_event(f);
    BOOST_TEST(t.last_failure() == "files/abc: RETRYABLE_RATE_LIMIT Resource has been exhausted");
}

BOOST_AUTO_TEST_SUITE_END()
