// libFuzzer target for the pushback parsers: Retry-After (delta-seconds and
// the three HTTP-date forms), google.protobuf.Duration and RetryInfo bodies.
// Every parser must return without crashing, and whatever it returns must be
// a sane duration: never negative, never above max_pushback.
//
// Build (clang only): CXX=clang++-14 cmake -S . -B build-fuzz -G Ninja && ninja -C build-fuzz fuzz_pushback
// Run:   build-fuzz/test/fuzz/fuzz_pushback -max_total_time=60 test/fuzz/corpus
#include <resilience/gemini/wire.hpp>
#include <resilience/http/retry_after.hpp>
#include <resilience/pushback.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

namespace {

void check(const std::optional<resilience::duration>& d) {
    if (d && (*d < resilience::duration::zero() || *d > resilience::max_pushback)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view s(reinterpret_cast<const char*>(data), size);
    using namespace std::chrono;
    // A fixed "now" (2024-01-01) and the extremes of the clock.
    for (auto now : {system_clock::time_point(sys_days{year{2024} / January / 1}), system_clock::time_point::min(),
                     system_clock::time_point::max(), system_clock::time_point{}})
        check(resilience::http::parse_retry_after(s, now));
    if (auto t = resilience::http::parse_http_date(s)) {
        // A date that parses is a valid calendar date: it must also be accepted as Retry-After.
        if (!resilience::http::parse_retry_after(s, system_clock::time_point{})) std::abort();
        (void)t;
    }
    check(resilience::gemini::parse_proto_duration(s));
    check(resilience::gemini::parse_retry_info(s));
    return 0;
}
