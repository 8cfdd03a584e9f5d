// Gemini's pushback: google.rpc.RetryInfo in a Google error body, and the
// google.protobuf.Duration it carries. (The HTTP Retry-After header is the
// HTTP layer's.)
#include <resilience/gemini/wire.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <cstdint>

namespace resilience::gemini {
namespace {

bool all_digits(std::string_view s) noexcept {
    return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

std::optional<duration> parse_proto_duration(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.size() < 2 || s.back() != 's') return std::nullopt;
    s.remove_suffix(1);
    std::string_view whole = s, frac;
    if (auto dot = s.find('.'); dot != std::string_view::npos) {
        whole = s.substr(0, dot);
        frac = s.substr(dot + 1);
        if (frac.empty() || frac.size() > 9 || !all_digits(frac)) return std::nullopt;
    }
    if (!all_digits(whole)) return std::nullopt;  // also rejects a sign
    constexpr auto max_s = std::chrono::duration_cast<std::chrono::seconds>(max_pushback).count();
    std::int64_t secs = 0;
    for (char c : whole) {
        secs = secs * 10 + (c - '0');
        if (secs >= max_s) return max_pushback;
    }
    std::int64_t nanos = 0;
    for (std::size_t i = 0; i < 9; ++i) nanos = nanos * 10 + (i < frac.size() ? frac[i] - '0' : 0);
    return std::chrono::duration_cast<duration>(std::chrono::seconds(secs) + std::chrono::nanoseconds(nanos));
}

std::optional<duration> parse_retry_info(std::string_view body) noexcept {
    try {
        boost::system::error_code ec;
        boost::json::value v = boost::json::parse(body, ec);
        if (ec) return std::nullopt;
        // python-genai accepts the envelope wrapped in a one-element list.
        if (auto* arr = v.if_array(); arr && arr->size() == 1) v = (*arr)[0];
        auto* top = v.if_object();
        if (!top) return std::nullopt;
        auto* err = top->if_contains("error");
        if (!err || !err->is_object()) return std::nullopt;
        auto* details = err->as_object().if_contains("details");
        if (!details || !details->is_array()) return std::nullopt;
        for (const auto& d : details->as_array()) {
            auto* o = d.if_object();
            if (!o) continue;
            auto* type = o->if_contains("@type");
            if (!type || !type->is_string()) continue;
            std::string_view t = type->as_string();
            constexpr std::string_view suffix = "google.rpc.RetryInfo";
            if (t.size() < suffix.size() || t.substr(t.size() - suffix.size()) != suffix) continue;
            auto* delay = o->if_contains("retryDelay");
            if (!delay) delay = o->if_contains("retry_delay");
            if (!delay) continue;
            if (delay->is_string()) return parse_proto_duration(delay->as_string());
            if (auto* dobj = delay->if_object()) {  // {"seconds": N, "nanos": M}
                std::int64_t secs = 0, nanos = 0;
                if (auto* s = dobj->if_contains("seconds")) {
                    if (s->is_int64()) secs = s->as_int64();
                    else if (s->is_uint64()) secs = s->as_uint64() > 9'000'000'000'000'000'000ULL ? INT64_MAX : static_cast<std::int64_t>(s->as_uint64());
                    else if (s->is_string()) {
                        auto sv = std::string_view(s->as_string());
                        auto r = std::from_chars(sv.data(), sv.data() + sv.size(), secs);
                        if (r.ec != std::errc() || r.ptr != sv.data() + sv.size()) return std::nullopt;
                    } else return std::nullopt;
                }
                if (auto* n = dobj->if_contains("nanos"); n && n->is_int64()) nanos = n->as_int64();
                if (secs < 0 || nanos < 0 || nanos > 999'999'999) return std::nullopt;
                constexpr auto max_s = std::chrono::duration_cast<std::chrono::seconds>(max_pushback).count();
                if (secs >= max_s) return max_pushback;
                return std::chrono::duration_cast<duration>(std::chrono::seconds(secs) + std::chrono::nanoseconds(nanos));
            }
            return std::nullopt;
        }
        return std::nullopt;
    } catch (...) {  // std::bad_alloc from a hostile body: no pushback
        return std::nullopt;
    }
}

}  // namespace resilience::gemini
