// `gemini-files demo`: without GEMINI_API_KEY, starts the simulator in-process
// with a realistic fault mix (429 with RetryInfo, 503 waves, 500 bursts,
// connection resets, truncated bodies, an outage, a generateContent quota),
// uploads a few hundred generated media files, waits for all of them, runs
// generateContent on some, and prints a summary. With GEMINI_API_KEY set, it
// runs a small version of the same against the configured service.
#include "gemini_files_demo.hpp"
#include "live_view.hpp"

#include <resilience/gemini/media_task.hpp>
#include <resilience/gemini/wire.hpp>
#include <resilience/sim/server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>

namespace asio = boost::asio;
namespace gemini = resilience::gemini;
namespace sim = resilience::sim;
using namespace std::chrono_literals;

namespace gemini_files_demo {
namespace {

std::vector<std::string> make_media_files(const std::filesystem::path& dir, int n) {
    std::filesystem::create_directories(dir);
    std::mt19937_64 rng(2024);
    std::vector<std::string> paths;
    static const char* ext[] = {".mp4", ".mp3", ".png", ".pdf", ".wav"};
    for (int i = 0; i < n; ++i) {
        auto p = dir / ("clip-" + std::to_string(i) + ext[i % 5]);
        std::ofstream out(p, std::ios::binary);
        std::size_t size = 1024 + rng() % (96 * 1024);
        std::string bytes(size, '\0');
        for (auto& b : bytes) b = static_cast<char>(rng());
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        paths.push_back(p.string());
    }
    return paths;
}

sim::fault_plan realistic_faults(double k) {
    auto scaled = [k](resilience::duration d) {
        return std::chrono::duration_cast<resilience::duration>(d * k);
    };
    using sim::fault;
    using sim::fault_kind;
    using sim::route;
    sim::fault_plan p;
    p.seed = 7;
    fault rl = fault::sometimes(fault_kind::rate_limit, route::get, 0.01);
    rl.retry_delay = scaled(2s);
    p.faults.push_back(rl);
    p.faults.push_back(fault::sometimes(fault_kind::overloaded, route::all, 0.03));
    p.faults.push_back(fault::sometimes(fault_kind::internal, route::all, 0.02));
    p.faults.push_back(fault::sometimes(fault_kind::reset_before_headers, route::get, 0.01));
    p.faults.push_back(fault::sometimes(fault_kind::truncated_body, route::get, 0.005));
    fault slow = fault::sometimes(fault_kind::latency, route::all, 0.05);
    slow.latency = scaled(150ms);
    p.faults.push_back(slow);
    p.outages.push_back(sim::outage(scaled(4s), scaled(2s), route::get));
    p.quotas.push_back(sim::quota(route::generate, 10, scaled(3s)));
    return p;
}

}  // namespace

int run(const settings& s, gemini::client_options opts) {
    const double k = s.time_scale;
    auto scaled = [k](resilience::duration d) {
        return std::chrono::duration_cast<resilience::duration>(d * k);
    };
    auto scaled_ms = [k](std::chrono::milliseconds d) {
        return std::max(std::chrono::milliseconds(1),
                        std::chrono::duration_cast<std::chrono::milliseconds>(d * k));
    };
    const bool real = !s.api_key_from_env.empty();
    std::unique_ptr<sim::server> srv;
    if (!real) {
        sim::config cfg;
        cfg.api_key = "demo-key-" + std::to_string(std::random_device{}());
        cfg.processing = sim::processing_time::uniform(scaled(500ms), scaled(4s));
        cfg.fail_share = 0.01;
        cfg.threads = 1;
        cfg.faults = realistic_faults(k);
        srv = std::make_unique<sim::server>(cfg);
        srv->start();
        opts.base_url = srv->base_url();
        opts.api_key = cfg.api_key;
        // Demo-sized schedule: the simulator's faults clear within seconds.
        opts.retry.max_retries = 8;
        opts.retry.backoff.initial_delay = scaled_ms(200ms);
        opts.retry.backoff.max_delay = scaled_ms(3000ms);
        opts.breaker.failure_threshold = 5;
        // The demo's fault mix fails about a fifth of all requests, far above
        // what the default budget (100 tokens, retries while > 50) is sized
        // for; a larger bucket lets the demo show retries rather than throttling.
        opts.budget.max_tokens = 500;
        opts.breaker.open_timeout = scaled_ms(1500ms);
        std::cout << "gemini-files demo: simulator at " << opts.base_url << " with 429/503/500/resets/"
                     "truncation/outage/quota faults\n";
    } else {
        std::cout << "gemini-files demo: GEMINI_API_KEY is set, running a small demo against " << opts.base_url << '\n';
    }
    const int files = real ? std::min(s.files, 3) : s.files;
    const int generate = real ? std::min(s.generate, 1) : s.generate;

    std::mutex mu;
    std::size_t status_lines = 0;
    constexpr std::size_t shown_status = 30;
    std::ofstream log;
    if (!s.log_path.empty()) {
        log.open(s.log_path, std::ios::app);
        if (!log.is_open()) {
            std::cerr << "gemini-files: --log " << resilience::gemini::terminal_safe(s.log_path)
                      << ": cannot be opened for writing\n";
            return 2;
        }
    }
    // Every status line to the log; on the terminal the live view shows
    // progress instead, elsewhere the first lines are printed.
    opts.on_status = [&](std::string_view line) {
        std::lock_guard lk(mu);
        ++status_lines;
        if (log.is_open()) log << resilience::gemini::terminal_safe(line) << '\n';
        if (s.live) return;
        if (status_lines <= shown_status) std::cout << "  " << line << '\n';
        else if (status_lines == shown_status + 1) std::cout << "  ... (further status lines counted, not shown)\n";
    };
    gemini_files_view::tracker events;
    if (s.live) opts.on_event = [&](const resilience::event& e) { events.on_event(e); };
    opts.http.max_connections_per_origin = 16;

    auto dir = std::filesystem::temp_directory_path() / ("gemini-files-demo-" + std::to_string(::getpid()));
    auto paths = make_media_files(dir, files);
    std::cout << "uploading " << files << " files, waiting for ACTIVE, generating on " << generate << "...\n";

    asio::io_context ctx;
    gemini::client g(ctx.get_executor(), opts);
    const std::string key = opts.api_key;  // scrubbed from the live view's server text
    const auto start = std::chrono::steady_clock::now();
    int active = 0, failed_by_server = 0, errors = 0, generated = 0, gen_errors = 0;
    // Files by stage, for the live view.
    int uploading = files, processing = 0, generating = 0, finished = 0;
    std::vector<std::string> error_samples;
    auto note_error = [&](const std::string& what) {
        ++errors;
        if (error_samples.size() < 5) error_samples.push_back(what);
    };

    for (int i = 0; i < files; ++i) {
        asio::co_spawn(ctx, [&, i]() -> asio::awaitable<void> {
            const std::string& path = paths[static_cast<std::size_t>(i)];
            auto up = co_await g.upload(path);
            --uploading;
            if (!up) {
                note_error(path + ": " + up.error().what());
                ++finished;
                co_return;
            }
            ++processing;
            gemini::wait_options w;
            w.poll_initial = scaled(250ms);
            w.poll_max = scaled(2s);
            w.deadline = g.time().now() + 120s;
            auto f = co_await g.wait_until_active(up->name, std::move(w));
            --processing;
            if (!f) {
                if (f.error().code == resilience::gemini::errc::file_failed) ++failed_by_server;
                else note_error(up->name + ": " + f.error().what());
                ++finished;
                co_return;
            }
            ++active;
            if (i < generate) {
                ++generating;
                gemini::content c;
                c.parts = {gemini::part::from_file(*f), gemini::part::from_text("Describe this clip")};
                std::vector<gemini::content> contents{c};
                auto r = co_await g.generate_content("gemini-2.0-flash", std::move(contents), g.time().now() + 60s);
                if (r) ++generated;
                else {
                    ++gen_errors;
                    note_error("generateContent: " + r.error().what());
                }
                --generating;
            }
            if (real) (void)co_await g.remove(f->name);
            ++finished;
        }, [](std::exception_ptr p) { if (p) std::rethrow_exception(p); });
    }
    if (s.live) {
        asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
            gemini_files_view::screen scr;
            asio::steady_timer t(ctx);
            for (;;) {  // 5 frames a second, the last one when every file is through
                gemini_files_view::view_state v;
                v.title = "gemini-files demo";
                v.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
                v.total = static_cast<std::size_t>(files);
                v.done = static_cast<std::size_t>(finished);
                auto n = [](int x) { return static_cast<std::size_t>(std::max(x, 0)); };
                v.states = {{"UPLOADING", n(uploading)}, {"PROCESSING", n(processing)},
                            {"GENERATING", n(generating)}, {"ACTIVE", n(active - generating)},
                            {"FAILED", n(failed_by_server)}, {"ERROR", n(errors - gen_errors)}};
                gemini_files_view::fill_from_client(v, g, events, [&](std::string& t) { gemini::redact_secret(t, key); });
                scr.draw(std::move(v));
                if (finished >= files) break;
                t.expires_after(200ms);
                co_await t.async_wait(asio::use_awaitable);
            }
        }, [](std::exception_ptr p) { if (p) std::rethrow_exception(p); });
    }
    ctx.run();
    const auto elapsed = std::chrono::steady_clock::now() - start;
    std::filesystem::remove_all(dir);

    auto st = g.stats();
    std::uint64_t server_requests = 0, faults = 0;
    if (srv) {
        auto s2 = srv->snapshot();
        server_requests = s2.total_requests;
        faults = s2.faults_injected;
        srv->stop();
    }
    static const char* kinds[] = {"RETRYABLE_NETWORK", "RETRYABLE_RATE_LIMIT", "RETRYABLE_SERVER"};
    if (s.json) {
        boost::json::object j{{"files", files}, {"active", active}, {"failedByServer", failed_by_server},
                              {"errors", errors}, {"generated", generated}, {"requestsSent", st.attempts},
                              {"serverRequests", server_requests}, {"faultsInjected", faults},
                              {"retries", st.retries}, {"breakerTransitions", st.breaker_transitions},
                              {"cooldownWaits", st.cooldown_waits}, {"breakerWaits", st.breaker_waits},
                              {"rateWaits", st.rate_waits},
                              {"statusLines", status_lines},
                              {"seconds", std::chrono::duration<double>(elapsed).count()}};
        boost::json::object by;
        for (int k = 0; k < 3; ++k) by[kinds[k]] = st.retries_by_kind[k];
        j["retriesByKind"] = std::move(by);
        boost::json::array samples;
        for (const auto& e : error_samples) samples.push_back(boost::json::string(e));
        j["errorSamples"] = std::move(samples);
        std::cout << boost::json::serialize(j) << '\n';
    } else {
        std::cout << "\nsummary\n"
                  << "  files:               " << files << " uploaded, " << active << " ACTIVE, " << failed_by_server
                  << " FAILED by the server, " << errors << " errors\n"
                  << "  generateContent:     " << generated << " of " << generate << " succeeded\n"
                  << "  requests sent:       " << st.attempts;
        if (srv) std::cout << " (server saw " << server_requests << ", injected " << faults << " faults)";
        std::cout << "\n  retries:             " << st.retries << " (";
        for (int k = 0; k < 3; ++k) std::cout << (k ? ", " : "") << kinds[k] << " " << st.retries_by_kind[k];
        std::cout << ")\n"
                  << "  breaker transitions: " << st.breaker_transitions << '\n'
                  << "  breaker waits:       " << st.breaker_waits << '\n'
                  << "  cooldown waits:      " << st.cooldown_waits << '\n'
                  << "  rate gate waits:     " << st.rate_waits << '\n'
                  << "  status lines:        " << status_lines << '\n'
                  << "  total time:          " << resilience::format_seconds(elapsed) << '\n';
        for (const auto& e : error_samples) std::cout << "  error: " << e << '\n';
    }
    return errors == 0 ? 0 : 1;
}

}  // namespace gemini_files_demo
