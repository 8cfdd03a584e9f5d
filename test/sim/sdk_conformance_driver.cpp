// Runs the official @google/genai SDK (test/node/sdk_conformance.mjs) against
// an in-process simulator on the real clock; exits with node's status.
//   sdk_conformance_driver NODE_BINARY TEST_NODE_DIR
// Exits 77 (skipped) when node or the installed SDK is missing.

#include <resilience/sim/server.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <sys/wait.h>

int main(int argc, char** argv) {
    namespace fs = std::filesystem;
    namespace sim = resilience::sim;
    std::string node = argc > 1 ? argv[1] : "";
    fs::path dir = argc > 2 ? argv[2] : "";
    if (node.empty() || node.ends_with("NOTFOUND") || !fs::exists(node)) {
        std::cout << "SKIPPED: node was not found (scripts/setup.sh installs it)\n";
        return 77;
    }
    if (!fs::exists(dir / "node_modules" / "@google" / "genai")) {
        std::cout << "SKIPPED: @google/genai is not installed in test/node (scripts/setup.sh runs npm ci)\n";
        return 77;
    }
    sim::config cfg;
    cfg.api_key = "conformance-key";
    cfg.processing = sim::processing_time::fixed(std::chrono::milliseconds(200));
    cfg.threads = 2;
    sim::server srv(cfg);
    srv.start();
    // The key is passed as an argument to a local child process only.
    std::string cmd = "cd '" + dir.string() + "' && '" + node + "' sdk_conformance.mjs '" + srv.base_url() + "' '" +
                      cfg.api_key + "'";
    int rc = std::system(cmd.c_str());
    auto st = srv.snapshot();
    std::cout << "simulator saw " << st.total_requests << " requests\n";
    if (rc == -1) return 1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}
