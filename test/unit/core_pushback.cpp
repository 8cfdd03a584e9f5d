// Retry-After (delta-seconds, the three HTTP-date forms) and RetryInfo
// parsing: tables of valid and invalid inputs. Nothing overflows, garbage
// means no pushback.
#include <resilience/gemini/wire.hpp>      // RetryInfo, google.protobuf.Duration
#include <resilience/http/retry_after.hpp>  // Retry-After, HTTP-date
#include <resilience/pushback.hpp>

#include <boost/test/unit_test.hpp>

#include "core_printers.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace sc = std::chrono;
using namespace std::chrono_literals;
using resilience::duration;
using resilience::max_pushback;
using resilience::gemini::parse_proto_duration;
using resilience::gemini::parse_retry_info;
using resilience::http::parse_http_date;
using resilience::http::parse_retry_after;

namespace {

// 1994-11-06 08:49:37 UTC, the RFC's example date.
const sc::system_clock::time_point rfc_date = sc::sys_days{1994y / sc::November / 6} + 8h + 49min + 37s;
// A "now" some time before it and after it.
const sc::system_clock::time_point before = rfc_date - 120s;
const sc::system_clock::time_point after = rfc_date + 3600s;

std::string show(const std::optional<duration>& d) {
    return d ? std::to_string(d->count()) + "ns" : "nullopt";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(core_pushback)

BOOST_AUTO_TEST_CASE(retry_after_delta_seconds) {
    struct row { std::string_view in; std::optional<duration> out; };
    const row rows[] = {
        {"0", 0s},
        {"1", 1s},
        {"120", 120s},
        {" 5 ", 5s},
        {"\t7\t", 7s},
        {"007", 7s},
        {"99999999999999999999", max_pushback},
        {"9223372036854775807", max_pushback},
        {"18446744073709551616", max_pushback},
        {"-5", std::nullopt},
        {"+5", std::nullopt},
        {"5.5", std::nullopt},
        {"5s", std::nullopt},
        {"5 5", std::nullopt},
        {"", std::nullopt},
        {"   ", std::nullopt},
        {"abc", std::nullopt},
        {"0x10", std::nullopt},
        {"1e3", std::nullopt},
        {std::string_view("5\0", 2), std::nullopt},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT("Retry-After: \"" << r.in << "\"") {
            auto got = parse_retry_after(r.in, after);
            BOOST_TEST(show(got) == show(r.out));
        }
    }
}

BOOST_AUTO_TEST_CASE(http_date_three_forms) {
    for (std::string_view s : {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                               "Sun Nov  6 08:49:37 1994", "  Sun, 06 Nov 1994 08:49:37 GMT  "}) {
        BOOST_TEST_CONTEXT(s) {
            auto t = parse_http_date(s);
            BOOST_TEST_REQUIRE(t.has_value());
            BOOST_TEST((*t == rfc_date));
        }
    }
    // Two-digit day in asctime, leap day, end of year.
    auto t = parse_http_date("Thu Feb 29 23:59:59 2024");
    BOOST_TEST_REQUIRE(t.has_value());
    BOOST_TEST((*t == sc::sys_days{2024y / sc::February / 29} + 23h + 59min + 59s));
    t = parse_http_date("Tue, 31 Dec 2030 00:00:00 GMT");
    BOOST_TEST_REQUIRE(t.has_value());
    BOOST_TEST((*t == sc::sys_days{2030y / sc::December / 31}));
    // RFC 850 two-digit years: 70..99 -> 19xx, 00..69 -> 20xx
    t = parse_http_date("Monday, 01-Jan-30 00:00:00 GMT");
    BOOST_TEST_REQUIRE(t.has_value());
    BOOST_TEST((*t == sc::sys_days{2030y / sc::January / 1}));
}

BOOST_AUTO_TEST_CASE(http_date_invalid) {
    for (std::string_view s : {
             "Fri, 30 Feb 2024 00:00:00 GMT",   // no Feb 30
             "Sat, 29 Feb 2023 00:00:00 GMT",   // not a leap year
             "Sun, 31 Apr 2024 00:00:00 GMT",   // April has 30 days
             "Sun, 06 Foo 1994 08:49:37 GMT",   // bad month
             "Sun, 06 nov 1994 08:49:37 GMT",   // month names are case-sensitive
             "Xyz, 06 Nov 1994 08:49:37 GMT",   // bad day name
             "Sun, 06-Nov-1994 08:49:37 GMT",   // wrong separators
             "Sun 06 Nov 1994 08:49:37 GMT",    // missing comma
             "Sun, 06 Nov 1994 08-49-37 GMT",   // wrong time separators
             "Sun, 06 Nov 1994 08:49:37 UTC",   // not GMT
             "Sun, 06 Nov 1994 08:49:37",       // no zone
             "Sun, 06 Nov 1994 24:00:00 GMT",   // hour out of range
             "Sun, 06 Nov 1994 08:60:00 GMT",   // minute out of range
             "Sun, 6 Nov 1994 08:49:37 GMT",    // one-digit day in IMF-fixdate
             "Sun, 00 Nov 1994 08:49:37 GMT",   // day zero
             "Sun, 06 Nov 94 08:49:37 GMT",     // two-digit year in IMF-fixdate
             "Sun, 06 Nov 1994 08:49:37 GMT x", // trailing garbage
             "Sunday, 06-Nov-94 08:49:37",      // RFC 850 without zone
             "Sun Nov 6 08:49:37 1994",         // asctime needs two columns for the day
             "Sun Nov  6 08:49:37 94",          // asctime needs four digits for the year
             "Sun Nov 31 08:49:37 1994",        // no Nov 31
             "",
             "GMT",
             "Sun,",
         }) {
        BOOST_TEST_CONTEXT("\"" << s << "\"") {
            BOOST_TEST(!parse_http_date(s).has_value());
            BOOST_TEST(!parse_retry_after(s, before).has_value());
        }
    }
}

BOOST_AUTO_TEST_CASE(retry_after_dates) {
    // Future: the difference.
    auto d = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", before);
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST(d->count() == duration(120s).count());
    d = parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", before);
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST(d->count() == duration(120s).count());
    d = parse_retry_after("Sun Nov  6 08:49:37 1994", before);
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST(d->count() == duration(120s).count());
    // Sub-second now: the difference keeps the fraction.
    d = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", rfc_date - 1500ms);
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST(d->count() == duration(1500ms).count());
    // Past or now: zero.
    for (auto now : {after, rfc_date}) {
        d = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now);
        BOOST_TEST_REQUIRE(d.has_value());
        BOOST_TEST(d->count() == 0);
    }
    // Odd clocks: nothing overflows.
    d = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", sc::system_clock::time_point::min());
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST(d->count() == max_pushback.count());
    d = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", sc::system_clock::time_point::max());
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST(d->count() == 0);
    // Dates beyond the nanosecond clock's range (years 1677..2262) saturate.
    auto far = parse_http_date("Fri, 31 Dec 9999 23:59:59 GMT");
    BOOST_TEST_REQUIRE(far.has_value());
    BOOST_TEST((*far == sc::system_clock::time_point::max()));
    auto old = parse_http_date("Thu, 01 Jan 1001 00:00:00 GMT");
    BOOST_TEST_REQUIRE(old.has_value());
    BOOST_TEST((*old == sc::system_clock::time_point::min()));
    d = parse_retry_after("Thu, 01 Jan 1001 00:00:00 GMT", before);
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST(d->count() == 0);
    // A date far in the future saturates.
    d = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", before);
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST(d->count() == max_pushback.count());
}

BOOST_AUTO_TEST_CASE(proto_durations) {
    struct row { std::string_view in; std::optional<duration> out; };
    const row rows[] = {
        {"15s", 15s},
        {"0s", 0s},
        {"34.4s", 34400ms},
        {"45.837906927s", duration(45837906927ns)},
        {"0.000000001s", duration(1ns)},
        {"1.5s", 1500ms},
        {" 2s ", 2s},
        {"9223372036854775807s", max_pushback},
        {"99999999999999999999999s", max_pushback},
        {"9223372036854775807.999999999s", max_pushback},
        {"-5s", std::nullopt},
        {"-0.5s", std::nullopt},
        {"5", std::nullopt},
        {"s", std::nullopt},
        {"", std::nullopt},
        {".5s", std::nullopt},
        {"5.s", std::nullopt},
        {"1.0000000001s", std::nullopt},  // more than nine fractional digits
        {"1e3s", std::nullopt},
        {"5ms", std::nullopt},
        {"abc", std::nullopt},
        {"1.2.3s", std::nullopt},
        {"+5s", std::nullopt},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT("\"" << r.in << "\"") {
            BOOST_TEST(show(parse_proto_duration(r.in)) == show(r.out));
        }
    }
}

BOOST_AUTO_TEST_CASE(retry_info_bodies) {
    auto body = [](std::string_view delay) {
        return std::string(R"({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": [)"
                           R"({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": ")") +
               std::string(delay) + R"("}]}})";
    };
    struct row { std::string in; std::optional<duration> out; };
    const row rows[] = {
        {body("15s"), 15s},
        {body("34.4s"), 34400ms},
        {body("45.837906927s"), duration(45837906927ns)},
        {body("9223372036854775807s"), max_pushback},
        {body("-5s"), std::nullopt},
        {body("garbage"), std::nullopt},
        {"[" + body("15s") + "]", 15s},                       // envelope in a one-element list
        {"[" + body("15s") + "," + body("15s") + "]", std::nullopt},  // not one element
        {R"({"error": {"code": 429, "message": "quota"}})", std::nullopt},  // no details
        {R"({"error": {"code": 429, "details": []}})", std::nullopt},
        {R"({"error": {"code": 429, "details": [{"@type": "type.googleapis.com/google.rpc.Help"}]}})", std::nullopt},
        {R"({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo"}]}})", std::nullopt},
        {R"({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": 15}]}})", std::nullopt},
        {R"({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": {"seconds": 3, "nanos": 500000000}}]}})", 3500ms},
        {R"({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": {"seconds": -3}}]}})", std::nullopt},
        {R"({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": {"seconds": "9223372036854775807"}}]}})", max_pushback},
        {R"({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": {"seconds": 18446744073709551615}}]}})", max_pushback},
        {R"({"error": {"details": "RetryInfo"}})", std::nullopt},
        {R"({"error": "quota"})", std::nullopt},
        {R"({"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]})", std::nullopt},
        {R"([1, 2])", std::nullopt},
        {R"([])", std::nullopt},
        {"null", std::nullopt},
        {"", std::nullopt},
        {"Too Many Requests", std::nullopt},  // a plain-text body
        {"<html><body>429</body></html>", std::nullopt},
        {R"({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "15s")", std::nullopt},  // truncated
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.in) {
            BOOST_TEST(show(parse_retry_info(r.in)) == show(r.out));
        }
    }
}

BOOST_AUTO_TEST_CASE(real_gemini_429_body) {
    // The 429 body of the wire-format notes (gemini-files-api.md, Errors), pretty-printed
    // with two-space indents and a trailing newline, as the service sends it.
    const std::string_view body = R"({
  "error": {
    "code": 429,
    "message": "You exceeded your current quota ...",
    "status": "RESOURCE_EXHAUSTED",
    "details": [
      {
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [
          {
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.Help",
        "links": [
          {
            "description": "...",
            "url": "..."
          }
        ]
      },
      {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "15s"
      }
    ]
  }
}
)";
    auto d = parse_retry_info(body);
    BOOST_TEST_REQUIRE(d.has_value());
    BOOST_TEST(d->count() == duration(15s).count());
}

BOOST_AUTO_TEST_CASE(deeply_nested_garbage_does_not_crash) {
    std::string deep(100000, '[');
    BOOST_TEST(!parse_retry_info(deep).has_value());
    std::string huge(1 << 20, '9');
    BOOST_TEST(parse_retry_after(huge, after).value() == max_pushback);
    BOOST_TEST(parse_proto_duration(huge + "s").value() == max_pushback);
}

BOOST_AUTO_TEST_SUITE_END()
