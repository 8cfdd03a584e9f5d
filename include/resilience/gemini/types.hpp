#ifndef RESILIENCE_GEMINI_TYPES_HPP
#define RESILIENCE_GEMINI_TYPES_HPP

// The Gemini Files API's resources and messages, as C++ values.
// Wire details: shared/gemini-files-api.md. Unknown fields and unknown states
// are tolerated.

#include <resilience/diagnostics.hpp>
#include <resilience/gemini/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace resilience::gemini {

enum class file_state : unsigned char { unspecified, processing, active, failed, unknown };
/// "STATE_UNSPECIFIED", "PROCESSING", "ACTIVE", "FAILED", or "UNKNOWN".
std::string_view to_string(file_state s) noexcept;
file_state parse_file_state(std::string_view s) noexcept;

/// A google.rpc.Status (the `error` of a FAILED file).
struct rpc_status {
    int code = 0;
    std::string message;
};

/// A File resource.
struct file {
    std::string name;          ///< "files/abc123def456"
    std::string display_name;
    std::string mime_type;
    std::int64_t size_bytes = 0;
    std::string create_time, update_time, expiration_time;  ///< RFC 3339, as sent
    std::string sha256_hash;
    std::string uri;
    file_state state = file_state::unspecified;
    std::string state_text;    ///< the state as sent (useful when unknown)
    std::string source;
    std::optional<rpc_status> error;  ///< set when FAILED
};

/// One part of a content: text, or a file reference.
struct part {
    std::string text;
    std::string file_uri;   ///< non-empty for a file part
    std::string mime_type;  ///< of the file part

    static part from_text(std::string t) {
        part p;
        p.text = std::move(t);
        return p;
    }
    static part from_file(const file& f) {
        part p;
        p.file_uri = f.uri;
        p.mime_type = f.mime_type;
        return p;
    }
};

struct content {
    std::string role = "user";
    std::vector<part> parts;
};

struct usage_metadata {
    std::int64_t prompt_tokens = 0;
    std::int64_t candidates_tokens = 0;
    std::int64_t total_tokens = 0;
};

/// What generateContent answered (the first candidate).
struct generate_result {
    std::string text;           ///< the first candidate's text parts, concatenated
    std::string finish_reason;  ///< e.g. "STOP"
    usage_metadata usage;
    std::string model_version;
};

/// One page of files.list.
struct file_page {
    std::vector<file> files;
    std::string next_page_token;
};

}  // namespace resilience::gemini

#endif
