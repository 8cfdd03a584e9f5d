#ifndef RESILIENCE_SRC_SIM_IMPL_HPP
#define RESILIENCE_SRC_SIM_IMPL_HPP

// The server's shared state, seen by the network loop (server.cpp), the
// routes (routes.cpp) and the admin endpoints (admin.cpp).

#include "faults.hpp"
#include "store.hpp"
#include "wire.hpp"

#include <resilience/sim/server.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/url_view.hpp>

#include <array>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace resilience::sim::detail {

using request = http::request<http::string_body>;

/// Counters; all atomics, so that the hot path takes no lock.
struct counters {
    static constexpr std::size_t max_status = 600;
    static constexpr std::size_t fault_slots = 15;  // kinds + outage + quota
    std::atomic<std::uint64_t> total{0};
    std::atomic<std::uint64_t> open_connections{0};
    std::atomic<std::uint64_t> total_connections{0};
    std::atomic<std::uint64_t> faults_total{0};
    std::atomic<std::uint64_t> timeouts{0};
    std::atomic<std::uint64_t> accept_failures{0};
    std::atomic<std::uint64_t> files_listed{0};
    std::array<std::atomic<std::uint64_t>, route_count> requests{};
    std::array<std::array<std::atomic<std::uint64_t>, max_status>, route_count> statuses{};
    std::array<std::atomic<std::uint64_t>, fault_slots> faults{};

    void count_status(route r, int status) noexcept;
    void count_fault(std::size_t slot) noexcept;
    void reset() noexcept;
};
inline constexpr std::size_t outage_slot = 13;
inline constexpr std::size_t quota_slot = 14;
std::string_view fault_slot_name(std::size_t slot) noexcept;

/// Where a request goes, from its method and target.
struct target_info {
    route r = route::other;
    bool known_path = false;     // the path exists but not with this method
    std::string_view file_id;    // get / delete
    std::string_view model;      // generate
    std::string upload_id;       // upload_chunk
    std::string key;             // ?key= (decoded)
    std::string page_token;
    std::string page_size;
    bool has_page_size = false;
    std::string_view admin_path; // "/admin/..."
};
target_info classify(const request& req);

struct server_impl {
    server_impl(config c, boost::asio::io_context* caller);

    config cfg;
    clock& clk;
    store files;
    fault_engine faults;
    counters counts;
    std::mutex log_mu;
    std::vector<request_record> log;

    boost::asio::io_context* ctx = nullptr;             // the context we run on
    std::unique_ptr<boost::asio::io_context> own_ctx;   // when running on our own threads
    std::vector<std::thread> threads;
    std::unique_ptr<boost::asio::ip::tcp::acceptor> acceptor;
    std::atomic<unsigned short> port{0};
    std::atomic<bool> running{false};

    std::mutex conns_mu;
    std::uint64_t next_conn = 0;
    std::unordered_map<std::uint64_t, boost::asio::ip::tcp::socket*> conns;

    void record(time_point at, route r, int status);
    /// A warning for the operator: config.warn, or std::clog.
    void warn(std::string_view message) const;
    sim::stats snapshot() const;
};

/// The answer of the simulated API to a request that met no fault.
response handle_api(server_impl& s, const request& req, const target_info& t, time_point now);
/// GET /admin/stats, GET|POST|DELETE /admin/faults.
response handle_admin(server_impl& s, const request& req, const target_info& t);
/// The answer a response-fault gives instead of the API.
response fault_response(server_impl& s, const decision& d, unsigned version, bool keep_alive, time_point now);
boost::json::object stats_json(const stats& st);

}  // namespace resilience::sim::detail

#endif
