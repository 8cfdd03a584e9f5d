// Observability and run-time control: counters, snapshots, and the admin
// endpoints GET /admin/stats, POST /admin/stats/reset, GET|POST|DELETE /admin/faults.

#include "impl.hpp"

namespace resilience::sim::detail {

std::string_view fault_slot_name(std::size_t slot) noexcept {
    if (slot == outage_slot) return "outage";
    if (slot == quota_slot) return "quota";
    return to_string(static_cast<fault_kind>(slot));
}

void counters::count_status(route r, int status) noexcept {
    auto ri = static_cast<std::size_t>(r);
    if (ri >= route_count) return;
    auto si = status >= 0 && static_cast<std::size_t>(status) < max_status ? static_cast<std::size_t>(status) : 0;
    statuses[ri][si].fetch_add(1, std::memory_order_relaxed);
}

void counters::count_fault(std::size_t slot) noexcept {
    if (slot >= fault_slots) return;
    faults[slot].fetch_add(1, std::memory_order_relaxed);
    faults_total.fetch_add(1, std::memory_order_relaxed);
}

void counters::reset() noexcept {
    total = 0;
    timeouts = 0;
    accept_failures = 0;
    files_listed = 0;
    total_connections = open_connections.load();
    faults_total = 0;
    for (auto& r : requests) r = 0;
    for (auto& row : statuses)
        for (auto& c : row) c = 0;
    for (auto& f : faults) f = 0;
}

void server_impl::record(time_point at, route r, int status) {
    counts.count_status(r, status);
    if (!cfg.record_requests) return;
    std::lock_guard lk(log_mu);
    log.push_back({at, r, status});
}

sim::stats server_impl::snapshot() const {
    sim::stats st;
    st.total_requests = counts.total.load(std::memory_order_relaxed);
    st.open_connections = counts.open_connections.load(std::memory_order_relaxed);
    st.total_connections = counts.total_connections.load(std::memory_order_relaxed);
    st.faults_injected = counts.faults_total.load(std::memory_order_relaxed);
    for (std::size_t r = 0; r < route_count; ++r) {
        auto n = counts.requests[r].load(std::memory_order_relaxed);
        route_stats rs;
        rs.requests = n;
        for (std::size_t s = 0; s < counters::max_status; ++s)
            if (auto c = counts.statuses[r][s].load(std::memory_order_relaxed)) rs.statuses[static_cast<int>(s)] = c;
        if (n || !rs.statuses.empty()) st.routes[static_cast<route>(r)] = std::move(rs);
    }
    for (std::size_t i = 0; i < counters::fault_slots; ++i)
        if (auto c = counts.faults[i].load(std::memory_order_relaxed)) st.faults[std::string(fault_slot_name(i))] = c;
    st.polls = files.polls();
    st.files = files.file_count();
    st.upload_sessions = files.session_count();
    st.poll_counters_evicted = files.polls_evicted();
    st.timeouts = counts.timeouts.load(std::memory_order_relaxed);
    st.accept_failures = counts.accept_failures.load(std::memory_order_relaxed);
    st.files_listed = counts.files_listed.load(std::memory_order_relaxed);
    return st;
}

json::object stats_json(const stats& st) {
    json::object root;
    root["total_requests"] = st.total_requests;
    root["open_connections"] = st.open_connections;
    root["total_connections"] = st.total_connections;
    root["faults_injected"] = st.faults_injected;
    root["files"] = st.files;
    root["files_listed"] = st.files_listed;
    root["upload_sessions"] = st.upload_sessions;
    root["poll_counters_evicted"] = st.poll_counters_evicted;
    root["timeouts"] = st.timeouts;
    root["accept_failures"] = st.accept_failures;
    json::object routes;
    for (const auto& [r, rs] : st.routes) {
        json::object o;
        o["requests"] = rs.requests;
        json::object statuses;
        for (const auto& [code, n] : rs.statuses) statuses[std::to_string(code)] = n;
        o["statuses"] = std::move(statuses);
        routes[to_string(r)] = std::move(o);
    }
    root["routes"] = std::move(routes);
    json::object faults;
    for (const auto& [k, n] : st.faults) faults[k] = n;
    root["faults"] = std::move(faults);
    json::object polls;
    for (const auto& [k, n] : st.polls) polls[k] = n;
    root["polls"] = std::move(polls);
    return root;
}

response handle_admin(server_impl& s, const request& req, const target_info& t) {
    unsigned v = req.version();
    bool ka = req.keep_alive();
    auto method = req.method();
    if (t.admin_path == "/admin/stats" && method == http::verb::get)
        return json_response(200, stats_json(s.snapshot()), v, ka);
    if (t.admin_path == "/admin/stats/reset" && method == http::verb::post) {
        s.counts.reset();
        s.files.reset_polls();
        return json_response(200, json::object(), v, ka);
    }
    if (t.admin_path == "/admin/faults") {
        if (method == http::verb::get) return json_response(200, s.faults.describe(), v, ka);
        if (method == http::verb::delete_) {
            s.faults.clear();
            return json_response(200, json::object(), v, ka);
        }
        if (method == http::verb::post || method == http::verb::put) {
            auto plan = fault_plan::from_json(req.body());
            if (!plan) return error_response(400, plan.error().diag.message, v, ka);
            if (method == http::verb::put) s.faults.clear();  // PUT replaces, POST adds
            s.faults.install(*plan, s.clk.now());
            return json_response(200, s.faults.describe(), v, ka);
        }
        return error_response(405, "Use GET, POST, PUT or DELETE on /admin/faults.", v, ka);
    }
    return error_response(404, "Unknown admin endpoint (GET /admin/stats, POST /admin/stats/reset, "
                               "GET|POST|PUT|DELETE /admin/faults).",
                          v, ka, {}, "NOT_FOUND");
}

}  // namespace resilience::sim::detail
