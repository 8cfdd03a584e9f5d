// The optional prometheus adapter as a user links it
// (asio_resilience::prometheus): an event in, its series in the text
// exposition out. Exit status 0 when the attempt counter shows up.
#include <resilience/prometheus/metrics.hpp>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <iostream>

int main() {
    ::prometheus::Registry registry;
    resilience::prometheus::metrics m(registry);
    resilience::event e;
    e.type = resilience::event_type::attempt_started;
    m.record(e);
    const std::string text = ::prometheus::TextSerializer().Serialize(registry.Collect());
    if (text.find("resilience_attempts_total 1") == std::string::npos) {
        std::cerr << "consumer_prometheus: no attempt counted\n" << text;
        return 1;
    }
    std::cout << "consumer_prometheus: ok\n";
    return 0;
}
