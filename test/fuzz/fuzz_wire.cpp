// libFuzzer target for what the Gemini service sends back as JSON: the Google
// error envelope (with RetryInfo, QuotaFailure, ErrorInfo, or a plain-text
// body) through decode_error, a File, a files.list page and a
// generateContent answer; and file names / URIs through normalize_file_name.
// Every parser must return (a value or a clear error) without crashing, and
// what it returns must be sane: a decoded error is a failure with a bounded
// message and a pushback within max_pushback; a normalized name is empty or
// "files/<id>".
//
// The first byte picks the HTTP status (400..599, or a 2xx); a line
// "Retry-After: ..." at the start of the rest becomes the header.
//
// Build (clang only): see test/fuzz/CMakeLists.txt.
// Run:   mkdir -p /tmp/new && build-fuzz/test/fuzz/fuzz_wire -runs=1000000 /tmp/new test/fuzz/corpus/wire
#include <resilience/gemini/wire.hpp>
#include <resilience/pushback.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace gemini = resilience::gemini;
    if (size == 0) return 0;
    const int status = data[0] < 200 ? 400 + data[0] : 200 + (data[0] - 200) % 8;
    std::string_view s(reinterpret_cast<const char*>(data + 1), size - 1);
    std::string_view retry_after;
    if (s.starts_with("Retry-After: ")) {
        auto eol = s.find('\n');
        retry_after = s.substr(13, eol == s.npos ? s.npos : eol - 13);
        s = eol == s.npos ? std::string_view{} : s.substr(eol + 1);
    }
    using namespace std::chrono;
    const auto now = system_clock::time_point(sys_days{year{2024} / January / 1});

    auto f = gemini::decode_error(status, s, retry_after, now);
    if (!f.code) std::abort();                                 // an error answer is never a success
    if (f.diag.message.size() > 4096) std::abort();           // bounded, whatever the body
    if (f.diag.status.size() > 1024 || f.diag.reason.size() > 1024 || f.diag.quota_id.size() > 1024) std::abort();
    if (f.diag.retry_after &&
        (*f.diag.retry_after < resilience::duration::zero() || *f.diag.retry_after > resilience::max_pushback))
        std::abort();

    if (auto file = gemini::parse_file(s)) {
        (void)gemini::to_string(file->state);
    } else if (!file.error().code || file.error().diag.message.empty()) {
        std::abort();  // a refusal says why
    }
    if (auto page = gemini::parse_file_page(s)) {
        for (const auto& fl : page->files) (void)fl.name.size();
    } else if (!page.error().code || page.error().diag.message.empty()) {
        std::abort();
    }
    if (auto g = gemini::parse_generate_result(s); !g && (!g.error().code || g.error().diag.message.empty()))
        std::abort();

    auto n = gemini::normalize_file_name(s);
    if (!n.empty() && (!n.starts_with("files/") || n.size() <= 6)) std::abort();
    // A normalized name is a fixed point.
    if (!n.empty() && gemini::normalize_file_name(n) != n) std::abort();
    (void)gemini::mime_type_for(s);
    return 0;
}
