// A peer process of redis_tests' multi-process test.
//   fleet_peer watch URL   prints "joined", then "open" once the fleet opened its breaker
//   fleet_peer open URL    fails twice (the fleet's threshold), prints "opened" once Redis agreed
//   fleet_peer hold URL    takes 3 onset leases of the cold scope (cap 4), prints "held", gives
//                          them back at the end of its standard input, prints "released"
// Exit status 0 on success; it waits on Redis I/O only (ctest's timeout bounds it).
#include <resilience/circuit_breaker.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/onset_gate.hpp>
#include <resilience/redis/fleet.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>
#include <string>

using namespace resilience;

int main(int argc, char** argv) {
    if (argc != 3) return 2;
    const std::string mode = argv[1];
    boost::asio::io_context ctx;
    breaker_options bo;
    bo.config.failure_threshold = 3;  // more than the fleet's: the fleet's count opens it
    auto breaker = std::make_shared<circuit_breaker>(bo);
    redis::fleet_options o;
    o.url = argv[2];
    o.timeout = std::chrono::milliseconds(5000);
    o.failure_threshold = 2;
    redis::fleet link(ctx.get_executor(), o);
    gate_set g;
    g.scope = scope_hash("peer-scope");
    g.breaker = breaker;
    g.onset = std::make_shared<onset_gate>();
    link.attach(g);
    auto until = [&](auto done) {
        while (!done()) ctx.run_one();
    };
    until([&] { return link.joined() && link.idle(); });
    if (mode == "watch") {
        std::printf("joined\n");
        std::fflush(stdout);
        until([&] { return breaker->state() == breaker_state::open; });
        std::printf("open\n");
    } else if (mode == "open") {
        breaker->try_acquire().permit.failed(error_kind::retryable_server);
        until([&] { return link.idle(); });
        breaker->try_acquire().permit.failed(error_kind::retryable_server);
        until([&] { return link.idle() && breaker->state() == breaker_state::open; });
        std::printf("opened\n");
    } else if (mode == "hold") {
        int held = 0;
        until([&] {  // a request let go, the next one asks at once
            while (held < 3 && g.onset->take() == onset_answer::held) ++held;
            return held == 3;
        });
        std::printf("held\n");
        std::fflush(stdout);
        char line[16];
        while (std::fgets(line, sizeof line, stdin)) {
        }
        for (int i = 0; i < held; ++i) g.onset->give_back(false);
        until([&] { return link.idle(); });
        std::printf("released\n");
    } else {
        return 2;
    }
    std::fflush(stdout);
    link.stop();
    ctx.run();
    return 0;
}
