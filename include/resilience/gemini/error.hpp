#ifndef RESILIENCE_GEMINI_ERROR_HPP
#define RESILIENCE_GEMINI_ERROR_HPP

// The Gemini layer's error codes (category "resilience.gemini"): outcomes of
// the Gemini API that are neither HTTP statuses nor pipeline outcomes. None
// of them is retried: each maps to resilience::condition::permanent.
// Google's error envelope (status, RetryInfo, QuotaFailure) is decoded by
// resilience::gemini::decode_error (resilience/gemini/wire.hpp).

#include <resilience/error.hpp>

#include <type_traits>

namespace resilience::gemini {

/// The Gemini layer's error codes.
enum class errc : int {
    quota_exhausted = 1,  ///< a quota that no retry window clears (per day, file storage)
    file_failed,          ///< the server reports the file as FAILED
    file_not_active,      ///< the file is not ACTIVE (yet)
    untrusted_url,        ///< the server named a URL outside the configured origin; not followed
};

/// The category of gemini::errc, named "resilience.gemini".
const boost::system::error_category& error_category() noexcept;

inline error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), gemini::error_category()};
}

}  // namespace resilience::gemini

namespace boost::system {
template <> struct is_error_code_enum<resilience::gemini::errc> : std::true_type {};
}  // namespace boost::system

#endif
