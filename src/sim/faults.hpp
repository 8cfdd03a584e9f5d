#ifndef RESILIENCE_SRC_SIM_FAULTS_HPP
#define RESILIENCE_SRC_SIM_FAULTS_HPP

// Which fault, if any, a request meets. I/O-free: decide() takes the route
// and the time; the server turns the decision into an answer.

#include <resilience/sim/server.hpp>

#include <boost/json/array.hpp>

#include <atomic>
#include <mutex>
#include <random>

namespace resilience::sim::detail {

struct decision {
    enum class source : unsigned char { none, rule, outage, quota };
    source from = source::none;
    duration latency{};          // added latency (sum of the latency rules that fired)
    fault answer;                // when from == rule
    duration quota_remaining{};  // when from == quota
    std::string quota_id;        // when from == quota
    unsigned latency_hits = 0;
};

class fault_engine {
public:
    explicit fault_engine(std::uint64_t seed) : rng_(seed) {}

    void install(const fault_plan& p, time_point now);
    void clear();
    decision decide(route r, time_point now);
    /// The installed faults in the JSON form of fault_plan.
    boost::json::object describe() const;

private:
    struct rule {
        fault f;
        std::uint64_t seen = 0;
        std::uint64_t hits = 0;
    };
    struct outage_rule {
        outage o;
        time_point from;
    };
    struct quota_rule {
        quota q;
        time_point origin;
        std::uint64_t window = 0;
        std::uint64_t used = 0;
    };

    mutable std::mutex mu_;
    std::atomic<bool> any_{false};
    std::mt19937_64 rng_;
    std::vector<rule> rules_;
    std::vector<outage_rule> outages_;
    std::vector<quota_rule> quotas_;
};

bool route_matches(route target, route r) noexcept;

}  // namespace resilience::sim::detail

#endif
