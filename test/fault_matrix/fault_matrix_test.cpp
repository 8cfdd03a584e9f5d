#define BOOST_TEST_MODULE fault_matrix
// The fault matrix: every simulator fault crossed with every Gemini operation
// (upload, get, list, delete, generateContent, wait_until_active, the media
// task), once with the fault on the first two requests (transient) and once
// on every request (persistent). Each cell runs the simulator and the client
// on one io_context with a manual clock (virtual time) and checks that the
// operation ends, with success or a classified error, within its deadline;
// that the HTTP pool is idle afterwards (no slot held, nobody waiting); and
// that no circuit-breaker probe is left held.
//
// The faults: the thirteen fault_kind values, an outage (503 on every route)
// and a quota (one request per minute, then 429 with RetryInfo).

#include <resilience/gemini/client.hpp>
#include <resilience/gemini/media_task.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <test_common.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <unistd.h>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace sim = resilience::sim;
namespace gemini = resilience::gemini;
namespace rt = resilience::testing;
using namespace std::chrono_literals;
using resilience::duration;
using resilience::time_point;

namespace {

const std::string key = "matrix-key";

enum class op { upload, get, list, remove, generate, wait, media_task };
constexpr op all_ops[] = {op::upload, op::get, op::list, op::remove, op::generate, op::wait, op::media_task};
const char* name_of(op o) {
    switch (o) {
        case op::upload: return "upload";
        case op::get: return "get";
        case op::list: return "list";
        case op::remove: return "delete";
        case op::generate: return "generateContent";
        case op::wait: return "wait_until_active";
        case op::media_task: return "media_task";
    }
    return "?";
}

// One fault of the matrix: a fault kind, or an outage, or a quota.
struct matrix_fault {
    std::string name;
    std::function<void(sim::server&, bool persistent)> install;
};

std::vector<matrix_fault> all_faults() {
    std::vector<matrix_fault> out;
    for (int k = 0; k <= static_cast<int>(sim::fault_kind::plain_text_error); ++k) {
        auto kind = static_cast<sim::fault_kind>(k);
        out.push_back({std::string(sim::to_string(kind)), [kind](sim::server& s, bool persistent) {
                           sim::fault f(kind, sim::route::all);
                           if (!persistent) f.count = 2;
                           f.retry_delay = 3s;
                           f.latency = 2s;
                           s.add_fault(f);
                       }});
    }
    out.push_back({"outage", [](sim::server& s, bool persistent) {
                       s.add_outage(sim::outage(0s, persistent ? duration(24h) : duration(20s)));
                   }});
    out.push_back({"quota", [](sim::server& s, bool persistent) {
                       s.add_quota(sim::quota(sim::route::all, persistent ? 0 : 1, 60s));
                   }});
    return out;
}

struct outcome {
    bool ended = false;
    bool ok = false;
    resilience::error_code code;
    std::string message;
    time_point at{};
};

// A temporary file for the uploads (removed at exit).
struct temp_file {
    std::filesystem::path path;
    temp_file() {
        path = std::filesystem::temp_directory_path() /
               ("fault_matrix_" + std::to_string(::getpid()) + ".txt");
        std::ofstream(path) << std::string(3000, 'x');
    }
    ~temp_file() {
        std::error_code ec;
        std::filesystem::remove(path, ec);
    }
};

struct cell_result {
    outcome out;
    time_point deadline{};
    resilience::http::pool_stats pool;
    int probes = 0;
    bool run_ok = false;
};

template <class T>
void take(outcome& o, rt::manual_clock& clk, const resilience::result<T>& r) {
    o.ended = true;
    o.at = clk.now();
    o.ok = r.has_value();
    if (!r) {
        o.code = r.error().code;
        o.message = r.error().what();
    }
}

cell_result run_cell(const matrix_fault& mf, bool persistent, op operation, const std::string& upload_path) {
    cell_result res;
    asio::io_context ctx;
    rt::manual_clock clk;
    sim::config cfg;
    cfg.api_key = key;
    cfg.time = &clk;
    cfg.processing = sim::processing_time::fixed(5s);
    sim::server srv(ctx, cfg);
    srv.start();
    // A file that is ACTIVE by the time the fault is installed (get, delete, generate),
    // and one still PROCESSING (wait).
    const std::string active = srv.add_file("hello", "text/plain", "hello.txt");
    clk.advance(6s);
    const std::string processing = srv.add_file("video", "video/mp4", "clip.mp4");
    mf.install(srv, persistent);

    gemini::client_options opts;
    opts.api_key = key;
    opts.base_url = srv.base_url();
    opts.time = &clk;
    opts.seed = 7;
    opts.request_timeout = 30s;
    gemini::client cl(ctx.get_executor(), std::move(opts));

    const time_point deadline = clk.now() + 10min;
    res.deadline = deadline;
    outcome& o = res.out;
    auto text = [] {
        std::vector<gemini::content> c(1);
        c[0].parts.push_back(gemini::part::from_text("Describe it"));
        return c;
    };
    auto body = [&]() -> asio::awaitable<void> {
        switch (operation) {
            case op::upload: {
                gemini::upload_options u;
                u.deadline = deadline;
                auto r = co_await cl.upload(upload_path, std::move(u));
                take(o, clk, r);
                break;
            }
            case op::get: {
                auto r = co_await cl.get(active, deadline);
                take(o, clk, r);
                break;
            }
            case op::list: {
                auto r = co_await cl.list(deadline);
                take(o, clk, r);
                break;
            }
            case op::remove: {
                auto r = co_await cl.remove(active, deadline);
                take(o, clk, r);
                break;
            }
            case op::generate: {
                auto contents = text();
                auto r = co_await cl.generate_content("gemini-2.0-flash", std::move(contents), deadline);
                take(o, clk, r);
                break;
            }
            case op::wait: {
                gemini::wait_options w;
                w.deadline = deadline;
                auto r = co_await cl.wait_until_active(processing, std::move(w));
                take(o, clk, r);
                break;
            }
            case op::media_task: {
                gemini::media_task_options t;
                t.file_path = upload_path;
                t.deadline = deadline;
                t.delete_after = true;
                t.build_contents = [](const gemini::file& f) {
                    std::vector<gemini::content> c(1);
                    c[0].parts.push_back(gemini::part::from_file(f));
                    c[0].parts.push_back(gemini::part::from_text("Describe it"));
                    return c;
                };
                auto r = co_await gemini::run_media_task(cl, std::move(t));
                take(o, clk, r);
                break;
            }
        }
    };
    asio::co_spawn(ctx, body(), test::rethrow{});
    rt::run_options ro;
    ro.max_virtual = 1h;
    res.run_ok = rt::run_virtual(ctx, clk, [&] { return o.ended; }, ro);
    // Let what the operation started wind down (a connection's close, a probe's release).
    ctx.poll();
    res.pool = cl.http().stats();
    res.probes = cl.breaker().snapshot().probes_in_flight();
    return res;
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_fault_times_every_operation) {
    temp_file upload;
    const auto faults = all_faults();
    std::size_t cells = 0, successes = 0;
    std::map<std::string, std::size_t> errors;  // error message's code -> cells
    std::ostringstream table;
    table << "fault / mode";
    for (op o : all_ops) table << " | " << name_of(o);
    table << "\n";
    for (const auto& mf : faults) {
        for (bool persistent : {false, true}) {
            table << mf.name << (persistent ? " (always)" : " (first 2)");
            for (op o : all_ops) {
                BOOST_TEST_CONTEXT(mf.name << (persistent ? " always" : " first 2") << " x " << name_of(o)) {
                    auto r = run_cell(mf, persistent, o, upload.path.string());
                    ++cells;
                    // It ends (no hang), within its deadline.
                    BOOST_CHECK(r.run_ok);
                    BOOST_CHECK(r.out.ended);
                    BOOST_CHECK(r.out.at <= r.deadline);
                    // Success, or a classified error that says what happened.
                    if (r.out.ended && !r.out.ok) {
                        BOOST_CHECK(r.out.code);
                        BOOST_CHECK(!r.out.message.empty());
                        (void)resilience::classify(r.out.code);
                        ++errors[r.out.code.message()];
                    }
                    if (r.out.ok) ++successes;
                    // Two failed requests are within every retry policy: the operation succeeds,
                    // unless the fault is not retryable (a per-day quota), the quota allows one
                    // request a minute (an upload needs two), or a delete went through before
                    // its answer was lost (the retry then finds no file).
                    const bool lost_answer = o == op::remove && (mf.name == "reset_before_headers" ||
                                                                 mf.name == "reset_after_headers" ||
                                                                 mf.name == "truncated_body");
                    if (!persistent && mf.name != "quota_per_day" && mf.name != "quota" && !lost_answer)
                        BOOST_CHECK_MESSAGE(r.out.ok, "failed: " << r.out.message);
                    // The pool is idle and no probe is held.
                    BOOST_CHECK_EQUAL(r.pool.in_use, 0u);
                    BOOST_CHECK_EQUAL(r.pool.waiting, 0u);
                    BOOST_CHECK_EQUAL(r.probes, 0);
                    table << " | " << (!r.out.ended ? "HANG" : r.out.ok ? "ok" : r.out.code.message());
                }
            }
            table << "\n";
        }
    }
    // 15 faults x 2 modes x 7 operations.
    BOOST_CHECK_EQUAL(cells, faults.size() * 2 * std::size(all_ops));
    BOOST_TEST_MESSAGE("fault matrix: " << cells << " cells, " << successes << " succeeded\n" << table.str());
    // A transient fault (two requests) is always overcome by the default retry policy.
    BOOST_CHECK_GT(successes, faults.size() * std::size(all_ops) / 2);
}
