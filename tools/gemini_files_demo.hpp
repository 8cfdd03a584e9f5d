#ifndef GEMINI_FILES_DEMO_HPP
#define GEMINI_FILES_DEMO_HPP

#include <resilience/gemini/client.hpp>

namespace gemini_files_demo {

struct settings {
    int files = 200;       ///< media files to upload and wait for
    int generate = 20;     ///< generateContent calls on ACTIVE files
    bool json = false;     ///< print the summary as JSON
    double time_scale = 1.0;  ///< multiplies every simulated time and client delay (tests use 0.05)
    std::string api_key_from_env;  ///< with a key, the demo runs (small) against the configured service
    bool live = false;     ///< draw the live view on stdout (a terminal) instead of status lines
    std::string log_path;  ///< every status line goes there too (empty: none)
};

/// Runs the demo; returns the process exit status.
int run(const settings& s, resilience::gemini::client_options opts);

}  // namespace gemini_files_demo

#endif
