// Fault injection over raw HTTP: every kind, schedules, probabilities, the admin endpoint.

#include "http_client.hpp"

#include <resilience/sim/server.hpp>

#include <boost/test/unit_test.hpp>

#include <regex>

using namespace simtest;
namespace sim = resilience::sim;
using sim::fault;
using sim::fault_kind;
using sim::route;

namespace {

const headers key_headers{std::pair<std::string, std::string>("x-goog-api-key", "k")};

struct fixture {
    sim::server srv;
    sync_client c;
    fixture() : srv(make()), c(start(srv)) {}
    static sim::config make() {
        sim::config cfg;
        cfg.api_key = "k";
        return cfg;
    }
    static unsigned short start(sim::server& s) {
        s.start();
        return s.port();
    }
    response get_list(beast::error_code& ec) { return c.send(http::verb::get, "/v1beta/files", "", key_headers, ec); }
    response get_list() { return c.send(http::verb::get, "/v1beta/files", "", key_headers); }
    json::array details(const response& res) {
        auto v = body_json(res);
        auto& e = v.at("error").as_object();
        return e.contains("details") ? e.at("details").as_array() : json::array();
    }
    const json::object* detail(const response& res, std::string_view type) {
        static json::array keep;
        keep = details(res);
        for (auto& d : keep)
            if (d.at("@type").as_string() == type) return &d.as_object();
        return nullptr;
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(sim_faults, fixture)

BOOST_AUTO_TEST_CASE(rate_limit_with_retry_info_then_success) {
    auto f = fault::next(fault_kind::rate_limit, route::list, 2);
    f.retry_delay = std::chrono::milliseconds(34400);
    srv.add_fault(f);
    auto r1 = get_list();
    BOOST_CHECK_EQUAL(r1.result_int(), 429);
    BOOST_CHECK_EQUAL(body_json(r1).at("error").at("status").as_string(), "RESOURCE_EXHAUSTED");
    auto* ri = detail(r1, "type.googleapis.com/google.rpc.RetryInfo");
    BOOST_REQUIRE(ri);
    BOOST_CHECK_EQUAL(ri->at("retryDelay").as_string(), "34.4s");
    auto* qf = detail(r1, "type.googleapis.com/google.rpc.QuotaFailure");
    BOOST_REQUIRE(qf);
    BOOST_CHECK(r1.find(http::field::retry_after) == r1.end());  // Gemini sends no Retry-After
    BOOST_CHECK_EQUAL(get_list().result_int(), 429);
    BOOST_CHECK_EQUAL(get_list().result_int(), 200);
    // other routes are unaffected
    auto st = srv.snapshot();
    BOOST_CHECK_EQUAL(st.count(route::list, 429), 2u);
    BOOST_CHECK_EQUAL(st.faults_of("rate_limit"), 2u);
    BOOST_CHECK_EQUAL(st.faults_injected, 2u);
}

BOOST_AUTO_TEST_CASE(rate_limit_bare_and_per_day) {
    srv.add_fault(fault::next(fault_kind::rate_limit_bare, route::all, 1));
    srv.add_fault(fault::next(fault_kind::quota_per_day, route::all, 1));
    auto bare = get_list();
    BOOST_CHECK_EQUAL(bare.result_int(), 429);
    BOOST_CHECK(details(bare).empty());
    auto day = get_list();
    BOOST_CHECK_EQUAL(day.result_int(), 429);
    auto* qf = detail(day, "type.googleapis.com/google.rpc.QuotaFailure");
    BOOST_REQUIRE(qf);
    std::string id(qf->at("violations").at(0).at("quotaId").as_string());
    BOOST_CHECK(id.find("PerDay") != std::string::npos);
    BOOST_CHECK_EQUAL(get_list().result_int(), 200);
}

BOOST_AUTO_TEST_CASE(retry_after_header_forms) {
    auto secs = fault::next(fault_kind::retry_after_seconds, route::list, 1);
    secs.retry_delay = std::chrono::milliseconds(2500);
    srv.add_fault(secs);
    auto date = fault::next(fault_kind::retry_after_date, route::list, 1);
    date.retry_delay = std::chrono::seconds(30);
    srv.add_fault(date);
    auto r1 = get_list();
    BOOST_CHECK_EQUAL(r1.result_int(), 429);
    BOOST_CHECK_EQUAL(r1[http::field::retry_after], "3");
    auto r2 = get_list();
    BOOST_CHECK_EQUAL(r2.result_int(), 503);
    std::string d(r2[http::field::retry_after]);
    BOOST_CHECK(std::regex_match(d, std::regex(R"((Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT)")));
}

BOOST_AUTO_TEST_CASE(overloaded_internal_plain_text) {
    srv.add_fault(fault::next(fault_kind::overloaded, route::list, 1));
    srv.add_fault(fault::next(fault_kind::internal, route::list, 1));
    auto pt = fault::next(fault_kind::plain_text_error, route::list, 1);
    pt.status = 502;
    srv.add_fault(pt);
    auto r1 = get_list();
    BOOST_CHECK_EQUAL(r1.result_int(), 503);
    BOOST_CHECK_EQUAL(body_json(r1).at("error").at("message").as_string(), "The model is overloaded. Please try again later.");
    BOOST_CHECK_EQUAL(body_json(r1).at("error").at("status").as_string(), "UNAVAILABLE");
    auto r2 = get_list();
    BOOST_CHECK_EQUAL(r2.result_int(), 500);
    BOOST_CHECK_EQUAL(body_json(r2).at("error").at("status").as_string(), "INTERNAL");
    auto r3 = get_list();
    BOOST_CHECK_EQUAL(r3.result_int(), 502);
    BOOST_CHECK(r3[http::field::content_type].starts_with("text/plain"));
    BOOST_CHECK_EQUAL(r3.body(), "502 Bad Gateway\n");
}

BOOST_AUTO_TEST_CASE(transport_faults) {
    srv.add_fault(fault::next(fault_kind::reset_before_headers, route::list, 1));
    srv.add_fault(fault::next(fault_kind::reset_after_headers, route::list, 1));
    srv.add_fault(fault::next(fault_kind::truncated_body, route::list, 1));
    srv.add_fault(fault::next(fault_kind::malformed_json, route::list, 1));
    srv.add_file("x");
    beast::error_code ec;
    get_list(ec);
    BOOST_CHECK(ec);  // reset before headers
    get_list(ec);
    BOOST_CHECK(ec);  // headers, then reset
    get_list(ec);
    BOOST_CHECK(ec);  // truncated body: the read ends early
    auto bad = get_list(ec);
    BOOST_REQUIRE(!ec);
    BOOST_CHECK_EQUAL(bad.result_int(), 200);
    boost::system::error_code pec;
    json::parse(bad.body(), pec);
    BOOST_CHECK(pec);  // not JSON
    BOOST_CHECK_EQUAL(get_list().result_int(), 200);
    auto st = srv.snapshot();
    BOOST_CHECK_EQUAL(st.faults_of("reset_before_headers"), 1u);
    BOOST_CHECK_EQUAL(st.faults_of("truncated_body"), 1u);
    BOOST_CHECK_EQUAL(st.count(route::list, 0), 2u);  // resets have no status
    BOOST_CHECK_EQUAL(st.total_connections, 4u);        // three were closed by faults
}

BOOST_AUTO_TEST_CASE(schedules_and_routes) {
    // requests 2..3 to get fail; list is untouched; the rule after the first answers next.
    auto name = srv.add_file("x");
    srv.add_fault(fault::requests(fault_kind::internal, route::get, 2, 3));
    srv.add_fault(fault::next(fault_kind::overloaded, route::get, 1));
    std::vector<int> statuses;
    for (int i = 0; i < 6; ++i) statuses.push_back(c.send(http::verb::get, "/v1beta/" + name, "", key_headers).result_int());
    // 1: internal rule skips it, overloaded rule fires; 2,3: internal; then 200.
    BOOST_CHECK((statuses == std::vector<int>{503, 500, 500, 200, 200, 200}));
    BOOST_CHECK_EQUAL(get_list().result_int(), 200);
    srv.clear_faults();
    srv.add_fault(fault::next(fault_kind::internal, route::remove, 1));
    BOOST_CHECK_EQUAL(c.send(http::verb::delete_, "/v1beta/" + name, "", key_headers).result_int(), 500);
    BOOST_CHECK_EQUAL(c.send(http::verb::delete_, "/v1beta/" + name, "", key_headers).result_int(), 200);
}

BOOST_AUTO_TEST_CASE(probability_is_seeded) {
    auto run = [](std::uint64_t seed) {
        sim::config cfg;
        cfg.api_key = "k";
        cfg.faults.faults.push_back(fault::sometimes(fault_kind::internal, route::list, 0.3));
        cfg.faults.seed = seed;
        sim::server s(cfg);
        s.start();
        sync_client c(s.port());
        std::vector<int> out;
        for (int i = 0; i < 200; ++i) out.push_back(c.send(http::verb::get, "/v1beta/files", "", key_headers).result_int());
        return out;
    };
    auto a = run(42), b = run(42), other = run(43);
    BOOST_CHECK(a == b);
    BOOST_CHECK(a != other);
    auto fails = std::count(a.begin(), a.end(), 500);
    BOOST_CHECK_GT(fails, 30);
    BOOST_CHECK_LT(fails, 90);
}

BOOST_AUTO_TEST_CASE(latency_real_clock) {
    auto f = fault::next(fault_kind::latency, route::list, 1);
    f.latency = std::chrono::milliseconds(100);
    srv.add_fault(f);
    auto t0 = std::chrono::steady_clock::now();
    BOOST_CHECK_EQUAL(get_list().result_int(), 200);  // latency delays, then the request goes on
    BOOST_CHECK_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(95));
    BOOST_CHECK_EQUAL(srv.snapshot().faults_of("latency"), 1u);
}

BOOST_AUTO_TEST_CASE(upload_faults) {
    srv.add_fault(fault::next(fault_kind::rate_limit, route::upload_start, 1));
    srv.add_fault(fault::next(fault_kind::internal, route::upload_chunk, 1));
    headers h{{"x-goog-api-key", "k"}, {"X-Goog-Upload-Protocol", "resumable"}, {"X-Goog-Upload-Command", "start"},
              {"X-Goog-Upload-Header-Content-Type", "text/plain"}};
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/upload/v1beta/files", "", h).result_int(), 429);
    auto start = c.send(http::verb::post, "/upload/v1beta/files", "", h);
    BOOST_REQUIRE_EQUAL(start.result_int(), 200);
    auto t = target_of(std::string(start["x-goog-upload-url"]));
    headers ch{{"X-Goog-Upload-Command", "upload, finalize"}, {"X-Goog-Upload-Offset", "0"}};
    auto failed = c.send(http::verb::post, t, "abc", ch);
    BOOST_CHECK_EQUAL(failed.result_int(), 500);
    BOOST_CHECK(failed.find("x-goog-upload-status") == failed.end());  // SDKs re-send when it is missing
    BOOST_CHECK_EQUAL(c.send(http::verb::post, t, "abc", ch).result_int(), 200);
}

BOOST_AUTO_TEST_CASE(admin_endpoint) {
    auto r = c.send(http::verb::post, "/admin/faults",
                    R"({"faults": [{"kind": "rate_limit", "route": "list", "count": 1, "retry_delay": "2s"},
                                   {"kind": "internal", "route": "list", "requests": [2, 2]}]})");
    BOOST_REQUIRE_EQUAL(r.result_int(), 200);
    BOOST_CHECK_EQUAL(body_json(r).at("faults").as_array().size(), 2u);
    auto r1 = get_list();
    BOOST_CHECK_EQUAL(r1.result_int(), 429);
    BOOST_CHECK_EQUAL(detail(r1, "type.googleapis.com/google.rpc.RetryInfo")->at("retryDelay").as_string(), "2s");
    // A rule sees only the requests earlier rules let through: request 1 was
    // answered by the first rule, so the second rule's request 2 is the third.
    BOOST_CHECK_EQUAL(get_list().result_int(), 200);
    BOOST_CHECK_EQUAL(get_list().result_int(), 500);
    BOOST_CHECK_EQUAL(get_list().result_int(), 200);
    auto bad = c.send(http::verb::post, "/admin/faults", R"({"faults": [{"kind": "nope"}]})");
    BOOST_CHECK_EQUAL(bad.result_int(), 400);
    BOOST_CHECK(std::string(body_json(bad).at("error").at("message").as_string()).find("nope") != std::string::npos);
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/admin/faults", "{").result_int(), 400);
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/admin/faults", R"({"kind": "internal", "probability": 2})").result_int(), 400);
    BOOST_CHECK_EQUAL(c.send(http::verb::post, "/admin/faults", R"({"kind": "internal", "route": "list"})").result_int(), 200);
    BOOST_CHECK_EQUAL(get_list().result_int(), 500);
    BOOST_CHECK_EQUAL(c.send(http::verb::delete_, "/admin/faults").result_int(), 200);
    BOOST_CHECK_EQUAL(get_list().result_int(), 200);
    auto stats = body_json(c.send(http::verb::get, "/admin/stats")).as_object();
    BOOST_CHECK_EQUAL(stats.at("faults").at("internal").to_number<std::uint64_t>(), 2u);
    BOOST_CHECK_EQUAL(stats.at("faults").at("rate_limit").to_number<std::uint64_t>(), 1u);
    BOOST_CHECK_EQUAL(stats.at("routes").at("list").at("statuses").at("500").to_number<std::uint64_t>(), 2u);
    BOOST_CHECK_EQUAL(c.send(http::verb::get, "/admin/nope").result_int(), 404);
}

BOOST_AUTO_TEST_CASE(fault_plan_json) {
    auto plan = sim::fault_plan::from_json(R"({"seed": 7,
        "faults": [{"kind": "latency", "latency": "250ms"}, {"kind": "retry_after_date", "status": 429, "retry_delay": 3}],
        "outages": [{"start": "10s", "length": "1m", "route": "get"}],
        "quotas": [{"route": "generate", "limit": 10, "window": "60s", "quota_id": "X"}]})");
    BOOST_REQUIRE(plan);
    BOOST_CHECK_EQUAL(*plan->seed, 7u);
    BOOST_CHECK(plan->faults[0].latency == std::chrono::milliseconds(250));
    BOOST_CHECK_EQUAL(plan->faults[1].status, 429);
    BOOST_CHECK(plan->faults[1].retry_delay == std::chrono::seconds(3));
    BOOST_CHECK(plan->outages[0].length == std::chrono::minutes(1));
    BOOST_CHECK(plan->outages[0].target == route::get);
    BOOST_CHECK_EQUAL(plan->quotas[0].limit, 10u);
    BOOST_CHECK(!sim::fault_plan::from_json(R"({"faults": [{"kind": "internal", "route": "nowhere"}]})"));
    BOOST_CHECK(!sim::fault_plan::from_json(R"({"faults": [{"kind": "internal", "count": -1}]})"));
    BOOST_CHECK(!sim::fault_plan::from_json(R"({"outages": [{"start": "soon"}]})"));
    BOOST_CHECK(!sim::fault_plan::from_json(R"({"quotas": [{"window": "1s"}]})"));
    BOOST_CHECK(!sim::fault_plan::from_json(R"({"extra": 1})"));
    BOOST_CHECK(!sim::fault_plan::from_json("[1]"));
    auto p = sim::processing_time::parse("1s..5s");
    BOOST_REQUIRE(p);
    BOOST_CHECK(p->min == std::chrono::seconds(1) && p->max == std::chrono::seconds(5));
    BOOST_CHECK(!sim::processing_time::parse("5s..1s"));
    BOOST_CHECK(!sim::processing_time::parse("fast"));
    BOOST_CHECK(*sim::parse_duration("1.5s") == std::chrono::milliseconds(1500));
    BOOST_CHECK(*sim::parse_duration("2m") == std::chrono::minutes(2));
    BOOST_CHECK(!sim::parse_duration("-1s"));
    BOOST_CHECK(!sim::parse_duration(""));
}

BOOST_AUTO_TEST_SUITE_END()
