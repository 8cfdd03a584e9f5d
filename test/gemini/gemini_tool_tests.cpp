// The gemini-files tool as users run it: subcommands, exit statuses, --json,
// and that the API key never appears in anything it prints.
#include <resilience/sim/server.hpp>

#include <boost/json.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/wait.h>

#ifdef GEMINI_FILES_TOOL
namespace sim = resilience::sim;
using namespace std::chrono_literals;

namespace {

const std::string tool_key = "tool-key-8d1e44a07c";

struct run_result {
    int status = -1;
    std::string out;  // stdout and stderr together
};

run_result run_command(const std::string& cmd);

run_result run_tool(const std::string& env, const std::string& args) {
    if (args.empty()) return run_command(env + " 2>&1 </dev/null");  // `env` is the whole command
    return run_command(env + " " + GEMINI_FILES_TOOL + " " + args + " 2>&1 </dev/null");
}

run_result run_command(const std::string& cmd) {
    run_result r;
    FILE* p = ::popen(cmd.c_str(), "r");
    BOOST_REQUIRE(p);
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

struct tool_fixture {
    std::unique_ptr<sim::server> srv;
    std::string env;
    tool_fixture() {
        sim::config cfg;
        cfg.api_key = tool_key;
        cfg.processing = sim::processing_time::fixed(200ms);
        srv = std::make_unique<sim::server>(cfg);
        srv->start();
        env = "env -u GEMINI_RETRY_MAX_ATTEMPTS GEMINI_API_KEY=" + tool_key + " GEMINI_BASE_URL=" + srv->base_url() +
              " GEMINI_RETRY_INITIAL_DELAY_MS=10 GEMINI_RETRY_MAX_DELAY_MS=50";
    }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(gemini_files_tool, tool_fixture)

BOOST_AUTO_TEST_CASE(upload_wait_list_delete_with_json) {
    auto path = std::filesystem::temp_directory_path() / ("tool-test-" + std::to_string(::getpid()) + ".mp4");
    std::ofstream(path) << std::string(5000, 'v');
    auto up = run_tool(env, "--json upload " + path.string());
    BOOST_TEST_REQUIRE(up.status == 0, up.out);
    auto uj = boost::json::parse(up.out.substr(up.out.find('[')));
    std::string name(uj.as_array()[0].at("file").at("name").as_string());
    BOOST_TEST(name.starts_with("files/"));

    auto w = run_tool(env, "--json --timeout 30 --poll-interval 0.05 wait " + name);
    BOOST_TEST_REQUIRE(w.status == 0, w.out);
    auto wj = boost::json::parse(w.out.substr(w.out.find('[')));
    BOOST_TEST(wj.as_array()[0].at("ok").as_bool());
    BOOST_TEST(wj.as_array()[0].at("file").at("state").as_string() == "ACTIVE");

    auto l = run_tool(env, "list");
    BOOST_TEST(l.status == 0);
    BOOST_TEST(l.out.find(name) != std::string::npos);

    auto d = run_tool(env, "delete " + name);
    BOOST_TEST(d.status == 0, d.out);
    BOOST_TEST(!srv->file(name).has_value());
    for (auto* o : {&up, &w, &l, &d}) BOOST_TEST(o->out.find(tool_key) == std::string::npos);
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(wait_draws_progress_on_a_terminal) {
    // `script` gives the tool a pseudo-terminal, as a user's shell would.
    if (std::system("command -v script >/dev/null 2>&1") != 0) {
        BOOST_TEST_MESSAGE("script(1) not available: terminal progress not checked");
        return;
    }
    std::string a = srv->add_file("a"), b = srv->add_file("b");
    auto r = run_tool("script -qec \"" + env + " " + GEMINI_FILES_TOOL + " --poll-interval 0.05 wait " + a + " " + b +
                          "\" /dev/null",
                      "");
    BOOST_TEST(r.status == 0, r.out);
    BOOST_TEST(r.out.find("2/2 done") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("ACTIVE 2") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("breaker   CLOSED") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("requests  ") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("\x1b[2K") != std::string::npos);  // each line erased, then drawn
    BOOST_TEST(r.out.find(tool_key) == std::string::npos);
    // The per-file lines are not printed on a terminal (the view counts them),
    // and the status lines go to the --log file when one is given.
    BOOST_TEST(r.out.find(a + ": ACTIVE") == std::string::npos, r.out);
}

BOOST_AUTO_TEST_CASE(wait_on_a_terminal_writes_the_status_text_to_the_log_file) {
    if (std::system("command -v script >/dev/null 2>&1") != 0) {
        BOOST_TEST_MESSAGE("script(1) not available: terminal view not checked");
        return;
    }
    std::string a = srv->add_file("a");
    srv->add_fault(resilience::sim::fault::next(resilience::sim::fault_kind::overloaded, resilience::sim::route::get, 1));
    const auto log = std::filesystem::temp_directory_path() / ("gemini-files-log-" + std::to_string(::getpid()));
    std::filesystem::remove(log);
    auto r = run_tool("script -qec \"" + env + " GEMINI_RETRY_INITIAL_DELAY_MS=10 " + GEMINI_FILES_TOOL +
                          " --poll-interval 0.05 --log " + log.string() + " wait " + a + "\" /dev/null",
                      "");
    BOOST_TEST(r.status == 0, r.out);
    BOOST_TEST(r.out.find("1/1 done") != std::string::npos, r.out);
    BOOST_TEST(r.out.find("Retry 1/") == std::string::npos, r.out);  // not scrolled on the terminal
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    BOOST_TEST(text.find("Retry 1/") != std::string::npos, text);  // the status text, in the log
    BOOST_TEST(text.find(a + ": ACTIVE") != std::string::npos, text);
    BOOST_TEST(text.find(tool_key) == std::string::npos);
    std::filesystem::remove(log);
}

BOOST_AUTO_TEST_CASE(wait_reads_names_from_a_file_and_refuses_an_unreadable_one) {
    std::string a = srv->add_file("a"), b = srv->add_file("b");
    const auto names = std::filesystem::temp_directory_path() / ("gemini-files-names-" + std::to_string(::getpid()));
    std::ofstream(names) << a << "\n" << b << "\r\n\n";
    auto r = run_tool(env, "--poll-interval 0.05 wait --names-from " + names.string());
    BOOST_TEST(r.status == 0, r.out);
    BOOST_TEST(r.out.find(a + ": ACTIVE") != std::string::npos, r.out);
    BOOST_TEST(r.out.find(b + ": ACTIVE") != std::string::npos, r.out);
    std::filesystem::remove(names);
    BOOST_TEST(run_tool(env, "wait --names-from " + names.string()).status == 2);
    BOOST_TEST(run_tool(env, "list --names-from /dev/null").status == 2);
}

BOOST_AUTO_TEST_CASE(run_generates_from_a_file) {
    auto path = std::filesystem::temp_directory_path() / ("tool-run-" + std::to_string(::getpid()) + ".png");
    std::ofstream(path) << std::string(3000, 'p');
    auto r = run_tool(env, "--timeout 30 --poll-interval 0.05 run " + path.string() + " --prompt 'Describe it'");
    BOOST_TEST(r.status == 0, r.out);
    BOOST_TEST(r.out.find("Generating content...") != std::string::npos);
    BOOST_TEST(r.out.find(tool_key) == std::string::npos);
    std::filesystem::remove(path);
}

BOOST_AUTO_TEST_CASE(exit_statuses) {
    // A missing file: the wait fails (403), exit 1, a clear message.
    auto missing = run_tool(env, "wait files/doesnotexist");
    BOOST_TEST(missing.status == 1, missing.out);
    BOOST_TEST(missing.out.find("files/doesnotexist") != std::string::npos);
    // One good and one missing: still 1.
    std::string good = srv->add_file("ok");
    auto mixed = run_tool(env, "--json wait " + good + " files/doesnotexist");
    BOOST_TEST(mixed.status == 1, mixed.out);
    // No key: usage error 2, and it says which variable.
    auto nokey = run_tool("env -u GEMINI_API_KEY GEMINI_BASE_URL=" + srv->base_url(), "list");
    BOOST_TEST(nokey.status == 2);
    BOOST_TEST(nokey.out.find("GEMINI_API_KEY") != std::string::npos);
    // A bad environment value: 2, naming the variable and the value.
    auto bad = run_tool(env + " GEMINI_RETRY_BACKOFF_MULTIPLIER=0.5", "list");
    BOOST_TEST(bad.status == 2);
    BOOST_TEST(bad.out.find("GEMINI_RETRY_BACKOFF_MULTIPLIER") != std::string::npos);
    BOOST_TEST(bad.out.find("0.5") != std::string::npos);
    // Unknown command and bad flag values.
    BOOST_TEST(run_tool(env, "frobnicate").status == 2);
    BOOST_TEST(run_tool(env, "--timeout -3 list").status == 2);
    // A wrong key: exit 1, and neither key is printed.
    auto wrong = run_tool("env GEMINI_API_KEY=not-" + tool_key + " GEMINI_BASE_URL=" + srv->base_url(), "list");
    BOOST_TEST(wrong.status == 1, wrong.out);
    BOOST_TEST(wrong.out.find(tool_key) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(config_shows_the_effective_configuration_without_the_key) {
    auto c = run_tool(env + " GEMINI_RETRY_MAX_ATTEMPTS=7", "--json config");
    BOOST_TEST_REQUIRE(c.status == 0, c.out);
    auto j = boost::json::parse(c.out);
    BOOST_TEST(j.at("maxRetries").as_int64() == 7);
    BOOST_TEST(j.at("apiKey").as_string() == "set");
    BOOST_TEST(c.out.find(tool_key) == std::string::npos);
    auto zero = run_tool(env + " GEMINI_RETRY_MAX_ATTEMPTS=0", "config");
    BOOST_TEST(zero.status == 0);
    BOOST_TEST(zero.out.find("max retries:            0") != std::string::npos);
}

// The adaptive rate gate: off by default, on by --adaptive-rate or
// RESILIENCE_ADAPTIVE_RATE=1; a bad value is a configuration error (exit 2).
BOOST_AUTO_TEST_CASE(adaptive_rate_from_the_flag_or_the_environment) {
    const std::string base = "env -u RESILIENCE_ADAPTIVE_RATE " + env.substr(4);
    auto gate = [](const run_result& r) { return boost::json::parse(r.out).at("adaptiveRate").as_bool(); };
    auto off = run_tool(base, "--json config");
    BOOST_TEST_REQUIRE(off.status == 0, off.out);
    BOOST_TEST(!gate(off));
    auto flag = run_tool(base, "--adaptive-rate --json config");
    BOOST_TEST_REQUIRE(flag.status == 0, flag.out);
    BOOST_TEST(gate(flag));
    auto var = run_tool(base + " RESILIENCE_ADAPTIVE_RATE=1", "--json config");
    BOOST_TEST_REQUIRE(var.status == 0, var.out);
    BOOST_TEST(gate(var));
    auto text = run_tool(base + " RESILIENCE_ADAPTIVE_RATE=on", "config");
    BOOST_TEST(text.out.find("adaptive rate gate:     on") != std::string::npos, text.out);
    auto bad = run_tool(base + " RESILIENCE_ADAPTIVE_RATE=maybe", "config");
    BOOST_TEST(bad.status == 2);
    BOOST_TEST(bad.out.find("RESILIENCE_ADAPTIVE_RATE=\"maybe\"") != std::string::npos, bad.out);
}

BOOST_AUTO_TEST_CASE(demo_runs_against_the_in_process_simulator) {
    auto d = run_tool("env -u GEMINI_API_KEY -u GEMINI_BASE_URL", "--json demo --files 40 --generate 5 --time-scale 0.2");
    BOOST_TEST_REQUIRE(d.status == 0, d.out);
    auto j = boost::json::parse(d.out.substr(d.out.rfind("\n{") + 1));
    BOOST_TEST(j.at("files").as_int64() == 40);
    BOOST_TEST(j.at("errors").as_int64() == 0);
    BOOST_TEST(j.at("active").as_int64() + j.at("failedByServer").as_int64() == 40);
    BOOST_TEST(j.at("requestsSent").as_int64() > 40);
}

BOOST_AUTO_TEST_CASE(help_exits_0) {
    auto h = run_tool(env, "--help");
    BOOST_TEST(h.status == 0, h.out);
    BOOST_TEST(h.out.find("usage: gemini-files") != std::string::npos);
    BOOST_TEST(h.out.find("default deadlines") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(unusable_inputs_are_refused_before_anything_is_uploaded) {
    auto dir = std::filesystem::temp_directory_path();
    auto good = dir / ("tool-good-" + std::to_string(::getpid()) + ".txt");
    std::ofstream(good) << "hello";
    struct case_t {
        std::string args, says;
    };
    const std::vector<case_t> cases = {
        {"upload /nonexistent/clip.mp4", "no such file"},
        {"upload " + good.string() + " /nonexistent/clip.mp4", "no such file"},  // nothing uploaded, not even the good one
        {"upload " + dir.string(), "not a regular file"},
        {"upload /dev/null", "not a regular file"},
        {"run /nonexistent/clip.mp4 --prompt hi", "no such file"},
        {"run " + good.string() + " --prompt hi --model 'bad model/..'", "not a model name"},
    };
    for (const auto& c : cases) {
        auto r = run_tool(env, c.args);
        BOOST_TEST_CONTEXT(c.args) {
            BOOST_TEST(r.status == 2, r.out);
            BOOST_TEST(r.out.find(c.says) != std::string::npos, r.out);
        }
    }
    BOOST_TEST(srv->snapshot().requests(sim::route::upload_start) == 0u);
    std::filesystem::remove(good);
}

BOOST_AUTO_TEST_CASE(server_text_reaches_the_terminal_neutralised_and_without_the_key) {
    // Display names are server text: escape sequences (clear screen, set the
    // window title, a C1 CSI, a bidi override) and an echoed key.
    const std::string hostile_name = "\x1b[2J\x1b]0;pwned\x07" "evil\xc2\x9b" "31m\xe2\x80\xae" "txt.exe " + tool_key;
    srv->add_file("x", "text/plain", hostile_name);
    for (std::string args : {"list", "--json list"}) {
        auto r = run_tool(env, args);
        BOOST_TEST_CONTEXT(args) {
            BOOST_TEST(r.status == 0, r.out);
            BOOST_TEST(r.out.find("evil") != std::string::npos, r.out);
            BOOST_TEST(r.out.find('\x1b') == std::string::npos);
            BOOST_TEST(r.out.find('\x07') == std::string::npos);
            BOOST_TEST(r.out.find("\xc2\x9b") == std::string::npos);
            BOOST_TEST(r.out.find("\xe2\x80\xae") == std::string::npos);
            BOOST_TEST(r.out.find(tool_key) == std::string::npos);
        }
    }
    // --json stays valid JSON, its values intact apart from the key.
    auto j = run_tool(env, "--json list");
    auto v = boost::json::parse(j.out.substr(j.out.find('[')));
    std::string shown(v.as_array()[0].at("displayName").as_string());
    BOOST_TEST(shown.find("\x1b[2J") != std::string::npos);
    BOOST_TEST(shown.find("[redacted]") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
#endif
