// Configuration: defaults, validation, and loading from the GEMINI_*
// environment through a fake env_lookup.
#include <resilience/gemini/config.hpp>

#include <boost/test/unit_test.hpp>

#include "core_printers.hpp"

#include <map>
#include <string>

using namespace std::chrono_literals;
using resilience::gemini::config_overrides;
using resilience::errc;
using resilience::gemini::load_config;

namespace {

struct fake_env {
    std::map<std::string, std::string> vars;
    resilience::env_lookup lookup() const {
        return [this](const char* name) -> std::optional<std::string> {
            auto it = vars.find(name);
            if (it == vars.end()) return std::nullopt;
            return it->second;
        };
    }
};

resilience::result<resilience::gemini::config> load(std::map<std::string, std::string> vars, config_overrides o = {}) {
    fake_env e{std::move(vars)};
    return load_config(o, e.lookup());
}

}  // namespace

BOOST_AUTO_TEST_SUITE(core_config)

BOOST_AUTO_TEST_CASE(defaults) {
    auto r = load({});
    BOOST_TEST_REQUIRE(r.has_value());
    const auto& c = *r;
    BOOST_TEST(c.retry.max_retries == 5);
    BOOST_TEST(c.retry.backoff.initial_delay.count() == 1000);
    BOOST_TEST(c.retry.backoff.max_delay.count() == 30000);
    BOOST_TEST(c.retry.backoff.multiplier == 2.0);
    BOOST_TEST((c.retry.backoff.jitter == resilience::jitter_mode::full));
    BOOST_TEST(c.breaker.failure_threshold == 3);
    BOOST_TEST(c.breaker.open_timeout.count() == 60000);
    BOOST_TEST(c.breaker.half_open_probes == 1);
    BOOST_TEST(c.api_key.empty());
    BOOST_TEST(c.base_url.empty());
    BOOST_TEST(c.retry.pushback_cap().count() == 30000);
    BOOST_TEST(!c.adaptive_rate);  // the adaptive rate gate is off by default
}

// RESILIENCE_ADAPTIVE_RATE: 1/0, true/false, on/off (any case, spaces
// around); code wins; the Gemini client's options follow it.
BOOST_AUTO_TEST_CASE(adaptive_rate_switch) {
    for (const char* v : {"1", "true", "TRUE", " on ", "On"}) {
        auto r = load({{"RESILIENCE_ADAPTIVE_RATE", v}});
        BOOST_TEST_REQUIRE(r.has_value(), v);
        BOOST_TEST(r->adaptive_rate, v);
    }
    for (const char* v : {"0", "false", "Off"}) {
        auto r = load({{"RESILIENCE_ADAPTIVE_RATE", v}});
        BOOST_TEST_REQUIRE(r.has_value(), v);
        BOOST_TEST(!r->adaptive_rate, v);
    }
    config_overrides off;
    off.adaptive_rate = false;
    auto r = load({{"RESILIENCE_ADAPTIVE_RATE", "1"}}, off);
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(!r->adaptive_rate);
    config_overrides on;
    on.adaptive_rate = true;
    r = load({}, on);
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->adaptive_rate);
}

BOOST_AUTO_TEST_CASE(every_variable_valid) {
    auto r = load({{"GEMINI_RETRY_MAX_ATTEMPTS", "7"},
                   {"GEMINI_RETRY_INITIAL_DELAY_MS", "250"},
                   {"GEMINI_RETRY_MAX_DELAY_MS", "10000"},
                   {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "1.5"},
                   {"GEMINI_CIRCUIT_BREAKER_THRESHOLD", "10"},
                   {"GEMINI_CIRCUIT_BREAKER_TIMEOUT_MS", "5000"},
                   {"GEMINI_API_KEY", "AIzaSyTESTKEY"},
                   {"GEMINI_BASE_URL", "http://127.0.0.1:8080"}});
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.error().what()));
    const auto& c = *r;
    BOOST_TEST(c.retry.max_retries == 7);
    BOOST_TEST(c.retry.backoff.initial_delay.count() == 250);
    BOOST_TEST(c.retry.backoff.max_delay.count() == 10000);
    BOOST_TEST(c.retry.backoff.multiplier == 1.5);
    BOOST_TEST(c.breaker.failure_threshold == 10);
    BOOST_TEST(c.breaker.open_timeout.count() == 5000);
    BOOST_TEST(c.api_key == "AIzaSyTESTKEY");
    BOOST_TEST(c.base_url == "http://127.0.0.1:8080");
}

BOOST_AUTO_TEST_CASE(whitespace_around_numbers_is_accepted) {
    auto r = load({{"GEMINI_RETRY_MAX_ATTEMPTS", " 3 "}, {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "\t3\n"}});
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->retry.max_retries == 3);
    BOOST_TEST(r->retry.backoff.multiplier == 3.0);
}

BOOST_AUTO_TEST_CASE(edges_of_the_ranges) {
    auto r = load({{"GEMINI_RETRY_MAX_ATTEMPTS", "1000"},
                   {"GEMINI_RETRY_INITIAL_DELAY_MS", "0"},
                   {"GEMINI_RETRY_MAX_DELAY_MS", "86400000"},
                   {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "1"},
                   {"GEMINI_CIRCUIT_BREAKER_THRESHOLD", "1"},
                   {"GEMINI_CIRCUIT_BREAKER_TIMEOUT_MS", "1"}});
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.error().what()));
    BOOST_TEST(r->retry.max_retries == 1000);
    BOOST_TEST(r->retry.backoff.multiplier == 1.0);
}

BOOST_AUTO_TEST_CASE(max_attempts_zero_disables_retrying) {
    auto r = load({{"GEMINI_RETRY_MAX_ATTEMPTS", "0"}});
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->retry.max_retries == 0);
}

BOOST_AUTO_TEST_CASE(every_variable_invalid) {
    struct row { const char* name; const char* value; const char* says; };
    const row rows[] = {
        {"GEMINI_RETRY_MAX_ATTEMPTS", "abc", "not an integer"},
        {"GEMINI_RETRY_MAX_ATTEMPTS", "-1", "out of range"},
        {"GEMINI_RETRY_MAX_ATTEMPTS", "1001", "out of range"},
        {"GEMINI_RETRY_MAX_ATTEMPTS", "", "not an integer"},
        {"GEMINI_RETRY_MAX_ATTEMPTS", "   ", "not an integer"},
        {"GEMINI_RETRY_MAX_ATTEMPTS", "5x", "not an integer"},
        {"GEMINI_RETRY_MAX_ATTEMPTS", "5 5", "not an integer"},
        {"GEMINI_RETRY_MAX_ATTEMPTS", "2.5", "not an integer"},
        {"GEMINI_RETRY_MAX_ATTEMPTS", "99999999999999999999999", "out of range"},
        {"GEMINI_RETRY_INITIAL_DELAY_MS", "soon", "not an integer"},
        {"GEMINI_RETRY_INITIAL_DELAY_MS", "-100", "out of range"},
        {"GEMINI_RETRY_INITIAL_DELAY_MS", "86400001", "out of range"},
        {"GEMINI_RETRY_INITIAL_DELAY_MS", "100ms", "not an integer"},
        {"GEMINI_RETRY_INITIAL_DELAY_MS", "40000", "GEMINI_RETRY_MAX_DELAY_MS"},  // above the default max
        {"GEMINI_RETRY_MAX_DELAY_MS", "", "not an integer"},
        {"GEMINI_RETRY_MAX_DELAY_MS", "-1", "out of range"},
        {"GEMINI_RETRY_MAX_DELAY_MS", "500", "GEMINI_RETRY_INITIAL_DELAY_MS"},  // below the default initial
        {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "two", "not a number"},
        {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "0.5", "out of range"},
        {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "-2", "out of range"},
        {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "1001", "out of range"},
        {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "nan", "not a number"},
        {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "inf", "not a number"},
        {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "2x", "not a number"},
        {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "", "not a number"},
        {"GEMINI_CIRCUIT_BREAKER_THRESHOLD", "0", "out of range"},
        {"GEMINI_CIRCUIT_BREAKER_THRESHOLD", "-3", "out of range"},
        {"GEMINI_CIRCUIT_BREAKER_THRESHOLD", "three", "not an integer"},
        {"GEMINI_CIRCUIT_BREAKER_THRESHOLD", "1000001", "out of range"},
        {"GEMINI_CIRCUIT_BREAKER_TIMEOUT_MS", "0", "out of range"},
        {"GEMINI_CIRCUIT_BREAKER_TIMEOUT_MS", "60s", "not an integer"},
        {"GEMINI_CIRCUIT_BREAKER_TIMEOUT_MS", "86400001", "out of range"},
        {"RESILIENCE_ADAPTIVE_RATE", "", "is not 1 or 0"},
        {"RESILIENCE_ADAPTIVE_RATE", "2", "is not 1 or 0"},
        {"RESILIENCE_ADAPTIVE_RATE", "yes please", "is not 1 or 0"},
        {"RESILIENCE_ADAPTIVE_RATE", "1x", "is not 1 or 0"},
    };
    for (const auto& r : rows) {
        BOOST_TEST_CONTEXT(r.name << "=\"" << r.value << "\"") {
            auto c = load({{r.name, r.value}});
            BOOST_TEST_REQUIRE(!c.has_value());
            BOOST_TEST(c.error().code == errc::invalid_config);
            const std::string msg = c.error().what();
            BOOST_TEST_MESSAGE(msg);
            BOOST_TEST(msg.find(r.name) != std::string::npos, msg);
            BOOST_TEST(msg.find(std::string(r.value).empty() ? std::string(r.name) : std::string(r.value)) !=
                           std::string::npos,
                       msg);
            BOOST_TEST(msg.find(r.says) != std::string::npos, msg);
        }
    }
}

BOOST_AUTO_TEST_CASE(overlong_values_are_shortened_in_messages) {
    const std::string v(10000, '7');
    auto c = load({{"GEMINI_RETRY_MAX_ATTEMPTS", v + "x"}});
    BOOST_TEST_REQUIRE(!c.has_value());
    BOOST_TEST(c.error().what().size() < 300u);
}

BOOST_AUTO_TEST_CASE(code_wins_over_environment) {
    config_overrides o;
    o.max_retries = 2;
    o.initial_delay = 100ms;
    o.max_delay = 2000ms;
    o.multiplier = 3.0;
    o.breaker_threshold = 9;
    o.breaker_timeout = 1234ms;
    o.api_key = "code-key";
    o.base_url = "https://example.test";
    auto r = load({{"GEMINI_RETRY_MAX_ATTEMPTS", "7"},
                   {"GEMINI_RETRY_INITIAL_DELAY_MS", "250"},
                   {"GEMINI_RETRY_MAX_DELAY_MS", "10000"},
                   {"GEMINI_RETRY_BACKOFF_MULTIPLIER", "1.5"},
                   {"GEMINI_CIRCUIT_BREAKER_THRESHOLD", "10"},
                   {"GEMINI_CIRCUIT_BREAKER_TIMEOUT_MS", "5000"},
                   {"GEMINI_API_KEY", "env-key"},
                   {"GEMINI_BASE_URL", "http://127.0.0.1:8080"}},
                  o);
    BOOST_TEST_REQUIRE(r.has_value(), (r ? "" : r.error().what()));
    BOOST_TEST(r->retry.max_retries == 2);
    BOOST_TEST(r->retry.backoff.initial_delay.count() == 100);
    BOOST_TEST(r->retry.backoff.max_delay.count() == 2000);
    BOOST_TEST(r->retry.backoff.multiplier == 3.0);
    BOOST_TEST(r->breaker.failure_threshold == 9);
    BOOST_TEST(r->breaker.open_timeout.count() == 1234);
    BOOST_TEST(r->api_key == "code-key");
    BOOST_TEST(r->base_url == "https://example.test");
    // One override, the rest from the environment.
    config_overrides one;
    one.max_retries = 0;
    r = load({{"GEMINI_RETRY_MAX_ATTEMPTS", "7"}, {"GEMINI_RETRY_INITIAL_DELAY_MS", "250"}}, one);
    BOOST_TEST_REQUIRE(r.has_value());
    BOOST_TEST(r->retry.max_retries == 0);
    BOOST_TEST(r->retry.backoff.initial_delay.count() == 250);
}

BOOST_AUTO_TEST_CASE(invalid_overrides_are_errors) {
    config_overrides o;
    o.multiplier = 0.5;
    auto r = load({}, o);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().what().find("multiplier") != std::string::npos);
    config_overrides o2;
    o2.initial_delay = 5000ms;
    o2.max_delay = 1000ms;
    r = load({}, o2);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().what().find("initial_delay") != std::string::npos);
    config_overrides o3;
    o3.max_retries = -1;
    r = load({}, o3);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().what().find("max_retries") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(validate_policies) {
    resilience::retry_policy p;
    BOOST_TEST(resilience::validate(p).has_value());
    p.backoff.multiplier = std::numeric_limits<double>::quiet_NaN();
    BOOST_TEST(!resilience::validate(p).has_value());
    p = {};
    p.attempt_timeout = -1ms;
    BOOST_TEST(!resilience::validate(p).has_value());
    resilience::breaker_config b;
    BOOST_TEST(resilience::validate(b).has_value());
    b.half_open_probes = 0;
    auto r = resilience::validate(b);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().what().find("half_open_probes") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(api_key_never_in_messages) {
    const std::string key = "AIzaSySECRETSECRETSECRET";
    // A bad key: named, not shown.
    for (std::string bad_key : {key + " x", key + "\n", std::string("   "), key + "\x7f"}) {
        auto r = load({{"GEMINI_API_KEY", bad_key}});
        BOOST_TEST_REQUIRE(!r.has_value());
        BOOST_TEST(r.error().what().find("GEMINI_API_KEY") != std::string::npos);
        BOOST_TEST(r.error().what().find("SECRET") == std::string::npos, r.error().what());
    }
    // A key, with other variables bad; also a base URL that carries the key.
    const std::map<std::string, std::string> bad_vars[] = {
        {{"GEMINI_RETRY_MAX_ATTEMPTS", "x"}},
        {{"GEMINI_BASE_URL", "https://host.test/v1?key=" + key}},
        {{"GEMINI_BASE_URL", "ftp://host.test/?key=" + key}},
        {{"GEMINI_BASE_URL", "https://" + key + "@host.test/"}},
        {{"GEMINI_BASE_URL", "https://user:" + key + "@host.test/"}},
        {{"GEMINI_BASE_URL", "https://host.test/#" + key}},
        {{"GEMINI_BASE_URL", "not a url " + key}},
        {{"GEMINI_BASE_URL", "https://host.test/" + key + "?x=1"}},
        {{"GEMINI_RETRY_MAX_ATTEMPTS", key}},
    };
    for (auto vars : bad_vars) {
        vars["GEMINI_API_KEY"] = key;
        auto r = load(vars);
        BOOST_TEST_CONTEXT(vars.begin()->first << "=" << vars.begin()->second) {
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().what().find("SECRET") == std::string::npos, r.error().what());
        }
    }
    // The key from code is protected too.
    config_overrides o;
    o.api_key = key;
    auto r = load({{"GEMINI_BASE_URL", "https://host.test/?k=" + key}}, o);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().what().find("SECRET") == std::string::npos, r.error().what());
}

BOOST_AUTO_TEST_CASE(base_url_validation) {
    for (std::string good : {"http://127.0.0.1:8080", "https://generativelanguage.test", "http://[::1]:9000/",
                             "https://host.test/prefix/v1beta"}) {
        auto r = load({{"GEMINI_BASE_URL", good}});
        BOOST_TEST_CONTEXT(good) BOOST_TEST(r.has_value(), (r ? "" : r.error().what()));
    }
    for (std::string bad : {"127.0.0.1:8080", "ftp://host.test", "http://", "https:///path", "not a url",
                            "http://host.test/?key=x", "http://user:pw@host.test/", "file:///etc/passwd",
                            "//host.test", "", "   ", "http://host.test:0", "http://host.test:65536",
                            "http://host.test:123456", "http://host.test:8o", "http://host.test:", "http://host.test/#x"}) {
        auto r = load({{"GEMINI_BASE_URL", bad}});
        BOOST_TEST_CONTEXT("\"" << bad << "\"") {
            BOOST_TEST_REQUIRE(!r.has_value());
            BOOST_TEST(r.error().code == errc::invalid_config);
            BOOST_TEST(r.error().what().find("GEMINI_BASE_URL") != std::string::npos, r.error().what());
        }
    }
    // An empty base URL set in code is an error too, not the real service.
    config_overrides o;
    o.base_url = "";
    auto r = load({}, o);
    BOOST_TEST_REQUIRE(!r.has_value());
    BOOST_TEST(r.error().what().find("empty") != std::string::npos, r.error().what());
    for (std::string good : {"http://host.test:1", "http://host.test:65535"}) {
        auto ok = load({{"GEMINI_BASE_URL", good}});
        BOOST_TEST_CONTEXT(good) BOOST_TEST(ok.has_value(), (ok ? "" : ok.error().what()));
    }
}

BOOST_AUTO_TEST_SUITE_END()
