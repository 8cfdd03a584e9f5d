// libFuzzer target for the resumable upload protocol's answers as the client
// reads them: x-goog-upload-size-received (the bytes a query answer says the
// server holds) and the File in the final answer's body. The first 8 bytes
// are the file's size; the next line is the header's value; the rest is the
// body. What is accepted is a byte count within the file; a refusal is
// resilience::http::errc::malformed_response with a message; a canonical decimal within the
// size is always accepted as itself.
//
// Build (clang only): see test/fuzz/CMakeLists.txt.
// Run:   mkdir -p /tmp/new && build-fuzz/test/fuzz/fuzz_upload_headers -runs=1000000 /tmp/new test/fuzz/corpus/upload_headers
#include <resilience/error.hpp>
#include <resilience/gemini/wire.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace gemini = resilience::gemini;
    if (size < 8) return 0;
    std::uint64_t file_size = 0;
    std::memcpy(&file_size, data, 8);
    std::string_view rest(reinterpret_cast<const char*>(data + 8), size - 8);
    auto eol = rest.find('\n');
    std::string_view header = rest.substr(0, eol);
    std::string_view body = eol == rest.npos ? std::string_view{} : rest.substr(eol + 1);

    auto n = gemini::parse_upload_size_received(header, file_size);
    if (n) {
        if (*n > file_size) std::abort();
        if (std::to_string(*n) != header && !(header.size() > 1 && header.front() == '0')) std::abort();
    } else {
        if (n.error().code != resilience::http::make_error_code(resilience::http::errc::malformed_response)) std::abort();
        if (n.error().diag.message.empty()) std::abort();
    }
    // Every canonical count within the size is accepted as itself.
    for (std::uint64_t v : {std::uint64_t{0}, file_size, file_size / 2}) {
        auto r = gemini::parse_upload_size_received(std::to_string(v), file_size);
        if (!r || *r != v) std::abort();
    }
    if (auto f = gemini::parse_file(body); !f && f.error().diag.message.empty()) std::abort();
    return 0;
}
