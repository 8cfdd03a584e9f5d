// The Gemini layer's error category.
#include <resilience/gemini/error.hpp>

#include <string>

namespace resilience::gemini {
namespace {

bool known(int ev) noexcept {
    return ev >= static_cast<int>(errc::quota_exhausted) && ev <= static_cast<int>(errc::untrusted_url);
}

class gemini_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "resilience.gemini"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
        case errc::quota_exhausted: return "quota exhausted";
        case errc::file_failed: return "file processing failed";
        case errc::file_not_active: return "file is not active";
        case errc::untrusted_url: return "the server named a URL outside the configured origin";
        }
        return "unknown resilience.gemini error";
    }
    // Every code is permanent: no retry changes the answer.
    boost::system::error_condition default_error_condition(int ev) const noexcept override {
        if (known(ev)) return make_error_condition(condition::permanent);
        return {ev, *this};
    }
    bool equivalent(int ev, const boost::system::error_condition& cond) const noexcept override {
        if (cond.category() == condition_category())
            return known(ev) && condition_matches(condition::permanent, static_cast<condition>(cond.value()));
        return default_error_condition(ev) == cond;
    }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
    static const gemini_category c;
    return c;
}

}  // namespace resilience::gemini
