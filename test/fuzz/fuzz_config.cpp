// libFuzzer target for the GEMINI_* environment (load_config). The first byte
// says which of the eight variables are set; the rest, split at '\n', gives
// their values in order (GEMINI_RETRY_MAX_ATTEMPTS, ..._INITIAL_DELAY_MS,
// ..._MAX_DELAY_MS, ..._BACKOFF_MULTIPLIER, GEMINI_CIRCUIT_BREAKER_THRESHOLD,
// ..._TIMEOUT_MS, GEMINI_API_KEY, GEMINI_BASE_URL). Every input is accepted
// with a configuration that validates, or refused with an invalid_config
// error naming a variable; the API key never appears in an error.
//
// Build (clang only): see test/fuzz/CMakeLists.txt.
// Run:   mkdir -p /tmp/new && build-fuzz/test/fuzz/fuzz_config -runs=1000000 /tmp/new test/fuzz/corpus/config
#include <resilience/gemini/config.hpp>
#include <resilience/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

constexpr std::array<const char*, 8> names = {
    "GEMINI_RETRY_MAX_ATTEMPTS",        "GEMINI_RETRY_INITIAL_DELAY_MS",     "GEMINI_RETRY_MAX_DELAY_MS",
    "GEMINI_RETRY_BACKOFF_MULTIPLIER",  "GEMINI_CIRCUIT_BREAKER_THRESHOLD", "GEMINI_CIRCUIT_BREAKER_TIMEOUT_MS",
    "GEMINI_API_KEY",                   "GEMINI_BASE_URL"};
constexpr std::size_t key_index = 6;
// Prefixed to the fuzzed key so that it cannot be mistaken for fixed message text.
constexpr std::string_view key_marker = "kQ7#";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const unsigned set = data[0];
    std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
    std::array<std::string, 8> values;
    for (std::size_t i = 0; i < values.size(); ++i) {
        auto eol = rest.find('\n');
        values[i] = std::string(rest.substr(0, eol));
        rest = eol == rest.npos ? std::string_view{} : rest.substr(eol + 1);
    }
    values[key_index] = std::string(key_marker) + values[key_index];
    resilience::env_lookup env = [&](const char* name) -> std::optional<std::string> {
        for (std::size_t i = 0; i < names.size(); ++i)
            if (std::strcmp(name, names[i]) == 0) return (set >> i) & 1 ? std::optional<std::string>(values[i]) : std::nullopt;
        return std::nullopt;  // any other variable: unset
    };
    auto c = resilience::gemini::load_config({}, env);
    if (c) {
        if (!resilience::validate(c->retry) || !resilience::validate(c->breaker)) std::abort();
        if ((set >> key_index) & 1 && c->api_key.empty()) std::abort();
        return 0;
    }
    const auto& f = c.error();
    if (f.code != resilience::make_error_code(resilience::errc::invalid_config)) std::abort();
    if (f.diag.message.empty()) std::abort();
    // No part of the key appears in an error (unless another value holds the marker, and may be quoted).
    if ((set >> key_index) & 1 && f.diag.message.find(key_marker) != std::string::npos) {
        bool elsewhere = false;
        for (std::size_t i = 0; i < values.size(); ++i)
            if (i != key_index && ((set >> i) & 1) && values[i].find(key_marker) != std::string::npos) elsewhere = true;
        if (!elsewhere) std::abort();
    }
    return 0;
}
