// gemini-sim: a local, fault-injecting Gemini Files API server.
//
//   gemini-sim [--port N] [--address A] [--threads N] [--api-key KEY]
//              [--processing 2s | 1s..5s] [--fail-share 0.1] [--seed N]
//              [--faults FILE.json] [--body-limit BYTES]
//              [--files N --names-out FILE]
//
// Prints its base URL on stdout, then serves until SIGINT or SIGTERM.
// Faults can be changed at run time: POST /admin/faults, GET /admin/stats.

#include <resilience/sim/server.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>

namespace {

void usage(std::FILE* out) {
    std::fputs(
        "usage: gemini-sim [options]\n"
        "  --port N            port to listen on (default 0: an ephemeral port)\n"
        "  --address A         address to listen on (default 127.0.0.1; others get a warning)\n"
        "  --threads N         server threads (default 1)\n"
        "  --api-key KEY       the valid API key (default: any non-empty key)\n"
        "  --processing D      PROCESSING time per file: \"0\", \"2s\", \"200ms\", \"1s..5s\"\n"
        "  --fail-share X      share of files that end FAILED (0..1)\n"
        "  --seed N            seed of processing times and fault probabilities\n"
        "  --faults FILE       JSON fault plan (see resilience/sim/server.hpp)\n"
        "  --body-limit BYTES  largest request body (default 67108864)\n"
        "  --files N           store N small files at start (PROCESSING from then on; for benchmarks)\n"
        "  --names-out FILE    write their names there, one a line (needed with --files)\n"
        "  --help\n"
        "Prints the base URL, then serves until SIGINT/SIGTERM. Connections idle for 610 s, or\n"
        "slower than 60 s to send a request header or a piece of a body, are closed (408).\n"
        "Admin: GET /admin/stats, POST /admin/stats/reset, GET|POST|PUT|DELETE /admin/faults.\n",
        out);
}

template <class T>
bool parse_number(std::string_view s, T& out) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

int fail(const std::string& msg) {
    std::cerr << "gemini-sim: " << msg << "\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    namespace sim = resilience::sim;
    sim::config cfg;
    std::size_t preload = 0;
    std::string names_out;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return fail("missing value for " + std::string(arg));
        }
        std::string_view val = argv[++i];
        if (arg == "--port") {
            if (!parse_number(val, cfg.port)) return fail("invalid --port");
        } else if (arg == "--address") {
            cfg.address = val;
        } else if (arg == "--threads") {
            if (!parse_number(val, cfg.threads) || cfg.threads == 0 || cfg.threads > 256)
                return fail("invalid --threads (1..256)");
        } else if (arg == "--api-key") {
            cfg.api_key = val;
        } else if (arg == "--processing") {
            auto p = sim::processing_time::parse(val);
            if (!p) return fail(p.error().diag.message);
            cfg.processing = *p;
        } else if (arg == "--fail-share") {
            std::string s(val);
            char* end = nullptr;
            double x = std::strtod(s.c_str(), &end);
            if (end == s.c_str() || *end != '\0' || !(x >= 0 && x <= 1)) return fail("invalid --fail-share (0..1)");
            cfg.fail_share = x;
        } else if (arg == "--seed") {
            if (!parse_number(val, cfg.seed)) return fail("invalid --seed");
        } else if (arg == "--body-limit") {
            if (!parse_number(val, cfg.body_limit) || cfg.body_limit == 0) return fail("invalid --body-limit");
        } else if (arg == "--files") {
            if (!parse_number(val, preload) || preload > 10'000'000) return fail("invalid --files (0..10000000)");
        } else if (arg == "--names-out") {
            names_out = val;
        } else if (arg == "--faults") {
            std::ifstream in{std::string(val)};
            if (!in) return fail("cannot read the fault file");
            std::stringstream ss;
            ss << in.rdbuf();
            auto plan = sim::fault_plan::from_json(ss.str());
            if (!plan) return fail(plan.error().diag.message);
            cfg.faults = std::move(*plan);
        } else {
            usage(stderr);
            return fail("unknown option " + std::string(arg));
        }
    }
    // Warnings (a non-loopback --address, no file descriptor left) go to stderr.
    cfg.warn = [](std::string_view msg) { std::cerr << "gemini-sim: warning: " << msg << std::endl; };
    if (preload && names_out.empty()) return fail("--files needs --names-out FILE");
    // Every stored file keeps its poll counter (a benchmark reads them).
    if (preload > cfg.max_poll_counters) cfg.max_poll_counters = preload;
    try {
        sim::server srv(cfg);
        srv.start();
        if (preload) {
            std::ofstream out(names_out, std::ios::trunc);
            if (!out) return fail("cannot write the names file");
            for (std::size_t i = 0; i < preload; ++i) out << srv.add_file("x") << '\n';
            if (!out.flush()) return fail("cannot write the names file");
        }
        std::cout << srv.base_url() << std::endl;
        boost::asio::io_context signals_ctx;
        boost::asio::signal_set signals(signals_ctx, SIGINT, SIGTERM);
        signals.async_wait([](const boost::system::error_code&, int) {});
        signals_ctx.run();
        srv.stop();
        auto st = srv.snapshot();
        std::cerr << "gemini-sim: stopped after " << st.total_requests << " requests\n";
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    return 0;
}
