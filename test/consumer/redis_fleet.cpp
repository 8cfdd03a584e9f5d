// The redis adapter as its users link it: options checked, a URL parsed,
// a fleet made (it falls back at once: nobody listens on port 1) and stopped.
#include <resilience/circuit_breaker.hpp>
#include <resilience/cooldown.hpp>
#include <resilience/redis/fleet.hpp>

#include <boost/asio/io_context.hpp>

#include <cstdio>

int main() {
    auto u = resilience::redis::parse_url("redis://user:pw@127.0.0.1:1/2");
    if (!u || u->display() != "127.0.0.1:1/2") return 1;
    boost::asio::io_context ctx;
    resilience::redis::fleet_options o;
    o.url = "redis://127.0.0.1:1";
    bool fell_back = false;
    o.on_event = [&](const resilience::redis::fleet_event& e) {
        fell_back = e.type == resilience::redis::fleet_event_type::fell_back;
    };
    resilience::redis::fleet link(ctx.get_executor(), o);
    resilience::gate_set g;
    g.scope = resilience::scope_hash("consumer");
    g.breaker = std::make_shared<resilience::circuit_breaker>();
    link.attach(g);
    while (!fell_back) ctx.run_one();
    link.stop();
    ctx.run();
    std::puts("consumer_redis: ok");
    return 0;
}
