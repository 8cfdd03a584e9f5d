// gemini-files: the Gemini Files API from the command line, through
// asio-resilience (retries, circuit breaker, cooldown, retry budget).
//
//   gemini-files [--base-url URL] [--timeout SECONDS] [--json] COMMAND [ARGS]
//     upload FILE...                     upload files (concurrently), print their names
//     wait NAME...                       wait until the files are ACTIVE
//     run FILE --prompt TEXT [--model M] upload, wait, generate; print the answer
//     list                               list the project's files
//     delete NAME...                     delete files
//     config                             print the effective configuration, validated
//     demo [--files N] [--generate K] [--time-scale F]
//                                        run against an in-process simulator with faults
//   --poll-interval SECONDS sets the first pause between polls of `wait` and `run`.
//   --redis URL (or RESILIENCE_REDIS_URL) shares the breaker, cooldown and retry
//   budget (and, with --adaptive-rate, the rate gate's cuts) with every process
//   using the same Redis (docs/fleet.md):
//   redis://[user:password@]host:port[/db].
//   --adaptive-rate turns on the adaptive rate gate (as RESILIENCE_ADAPTIVE_RATE=1):
//     after a 429, requests go at the rate the server accepts.
//   --names-from FILE adds names, one a line ("-": standard input), to `wait`.
//   --log FILE writes every status line (and `wait`'s per-file outcome) to FILE.
//   On a terminal (stdout, without --json), `wait` and `demo` show one live
//   view redrawn in place (files by state, requests per second, retries by
//   kind, breaker, cooldown, elapsed, time left); the status lines then go to
//   the --log file, or to stderr when stderr is not a terminal. Elsewhere they
//   go to stderr as before, and --json output is unchanged.
//   --help prints this summary (exit status 0).
//
// Default deadlines (--timeout replaces them): upload 30 min, wait 20 min,
// run 30 min, list and delete 2 min. A silent server cannot hold a command
// longer than that.
//
// Everything printed that came from a server (names, states, messages,
// generated text, --json values) has the API key scrubbed and control
// characters and escape sequences neutralised.
//
// GEMINI_API_KEY is required except for `demo`. GEMINI_BASE_URL or --base-url
// points at another server. Exit status: 0 when everything asked for ended
// well, 1 when some operation failed, 2 for a usage or configuration error.
#include "gemini_files_demo.hpp"
#include "live_view.hpp"

#include <resilience/gemini/client.hpp>
#include <resilience/gemini/media_task.hpp>
#include <resilience/gemini/wire.hpp>

#ifdef RESILIENCE_HAS_REDIS
#include <resilience/redis/fleet.hpp>
#endif

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace asio = boost::asio;
namespace json = boost::json;
namespace gemini = resilience::gemini;
using namespace std::chrono_literals;

namespace {

struct cli {
    std::string command;
    std::vector<std::string> args;
    std::optional<std::string> base_url;
    std::optional<std::string> redis_url;
    std::optional<double> timeout_s;
    bool json = false;
    std::string prompt;
    std::string model = "gemini-2.0-flash";
    int demo_files = 200;
    int demo_generate = 20;
    std::optional<double> poll_s;
    double time_scale = 1.0;
    std::optional<std::string> log_path;
    std::optional<std::string> names_from;
    bool adaptive_rate = false;
};

constexpr const char* usage_text =
    "usage: gemini-files [--base-url URL] [--timeout SECONDS] [--poll-interval SECONDS] [--json] [--log FILE]\n"
    "                    [--adaptive-rate] [--redis URL] COMMAND [ARGS]\n"
    "commands: upload FILE... | wait NAME... | run FILE --prompt TEXT [--model M] | list |\n"
    "          delete NAME... | config | demo [--files N] [--generate K] [--time-scale F]\n"
    "          (wait also takes --names-from FILE: names one a line, \"-\" for standard input)\n"
    "default deadlines (--timeout replaces them): upload 30 min, wait 20 min, run 30 min,\n"
    "          list and delete 2 min\n";

// Text for the terminal: the API key scrubbed, control characters and escape
// sequences neutralised. Everything printed that a server or a user supplied
// goes through it.
std::string g_key;
std::string safe(std::string_view text, bool multiline = false) {
    std::string t(text);
    gemini::redact_secret(t, g_key);
    return gemini::terminal_safe(t, multiline);
}

[[noreturn]] void usage_error(const std::string& msg) {
    std::cerr << "gemini-files: " << safe(msg) << "\n" << usage_text;
    std::exit(2);
}

// Default deadline of a command, in seconds.
double default_timeout(const std::string& command) {
    if (command == "upload" || command == "run") return 30 * 60;
    if (command == "wait") return 20 * 60;
    return 2 * 60;
}

int parse_int(const std::string& flag, const std::string& v, int lo, int hi) {
    int n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi)
        usage_error(flag + " \"" + v + "\" is not an integer between " + std::to_string(lo) + " and " + std::to_string(hi));
    return n;
}

std::string number(double d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", d);
    return buf;
}

// A number in (lo, hi] (or [lo, hi] when lo > 0), else a usage error naming the flag.
double parse_double(const std::string& flag, const std::string& v, double lo, double hi, const char* unit) {
    double d = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
    const bool in_range = lo > 0 ? d >= lo : d > lo;
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || !in_range || !(d <= hi))
        usage_error(flag + " \"" + v + "\" is not a number " + unit + "between " + number(lo) + " and " + number(hi));
    return d;
}

cli parse(int argc, char** argv) {
    cli c;
    std::vector<std::string> a(argv + 1, argv + argc);
    for (std::size_t i = 0; i < a.size(); ++i) {
        const std::string& s = a[i];
        auto value = [&](const char* flag) -> std::string {
            if (i + 1 >= a.size()) usage_error(std::string(flag) + " needs a value");
            return a[++i];
        };
        if (s == "--help" || s == "-h") {
            std::cout << usage_text;
            std::exit(0);
        }
        else if (s == "--base-url") c.base_url = value("--base-url");
        else if (s == "--redis") c.redis_url = value("--redis");
        else if (s == "--timeout") c.timeout_s = parse_double("--timeout", value("--timeout"), 0, 86400 * 7, "of seconds ");
        else if (s == "--poll-interval")
            c.poll_s = parse_double("--poll-interval", value("--poll-interval"), 0, 3600, "of seconds ");
        else if (s == "--time-scale") c.time_scale = parse_double("--time-scale", value("--time-scale"), 0.001, 100, "");
        else if (s == "--json") c.json = true;
        else if (s == "--adaptive-rate") c.adaptive_rate = true;
        else if (s == "--log") c.log_path = value("--log");
        else if (s == "--names-from") c.names_from = value("--names-from");
        else if (s == "--prompt") c.prompt = value("--prompt");
        else if (s == "--model") c.model = value("--model");
        else if (s == "--files") c.demo_files = parse_int("--files", value("--files"), 1, 100000);
        else if (s == "--generate") c.demo_generate = parse_int("--generate", value("--generate"), 0, 100000);
        else if (s.starts_with("--")) usage_error("unknown option " + s);
        else if (c.command.empty()) c.command = s;
        else c.args.push_back(s);
    }
    if (c.command.empty()) usage_error("no command");
    if (c.names_from) {
        if (c.command != "wait") usage_error("--names-from is an option of wait");
        std::ifstream file;
        if (*c.names_from != "-") {
            file.open(*c.names_from);
            if (!file.is_open()) usage_error("--names-from " + *c.names_from + ": cannot be read");
        }
        std::istream& in = *c.names_from == "-" ? std::cin : file;
        for (std::string line; std::getline(in, line);) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            if (!line.empty()) c.args.push_back(std::move(line));
        }
        if (in.bad()) usage_error("--names-from " + *c.names_from + ": read error");
    }
    return c;
}

void apply_poll(const cli& c, gemini::wait_options& w) {
    if (!c.poll_s) return;
    w.poll_initial = std::chrono::duration_cast<resilience::duration>(std::chrono::duration<double>(*c.poll_s));
    w.poll_max = std::max(w.poll_max, w.poll_initial);
}

template <class F>
void run_coroutine(asio::io_context& ctx, F f) {
    asio::co_spawn(ctx, std::move(f), [](std::exception_ptr p) {
        if (p) std::rethrow_exception(p);
    });
}

json::object error_json(const resilience::failure& f) {
    json::object o{{"code", f.code.message()}, {"kind", std::string(resilience::to_string(resilience::classify(f.code)))},
                   {"message", f.what()},       {"attempts", f.diag.attempts}};
    if (f.diag.http_status) o["httpStatus"] = f.diag.http_status;
    if (!f.diag.status.empty()) o["status"] = f.diag.status;
    return o;
}

// The --log file, opened (appending) before anything is sent; a usage error
// when it cannot be.
std::unique_ptr<std::ofstream> open_log(const cli& c) {
    if (!c.log_path) return nullptr;
    auto f = std::make_unique<std::ofstream>(*c.log_path, std::ios::app);
    if (!f->is_open()) usage_error("--log " + *c.log_path + ": cannot be opened for writing");
    return f;
}

// A file to upload, checked before anything is sent: exists, is a regular
// file, can be read. A usage error (exit status 2) otherwise.
void check_upload_file(const std::string& path) {
    std::error_code ec;
    const auto st = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(st)) usage_error(path + ": no such file");
    if (!std::filesystem::is_regular_file(st)) usage_error(path + ": not a regular file");
    if (!std::ifstream(path, std::ios::binary).is_open()) usage_error(path + ": cannot be read (permission denied)");
}

// The fleet link (--redis / RESILIENCE_REDIS_URL), on its own thread and
// io_context: the commands' ctx.run() ends when their work does, whatever
// the link's timers. Stopped and joined when the command ends.
struct fleet_link {
#ifdef RESILIENCE_HAS_REDIS
    asio::io_context ctx;
    std::shared_ptr<resilience::redis::fleet> link;
    std::thread thread;
    void start(resilience::redis::fleet_options o) {
        static std::mutex err_mu;
        o.on_status = [](std::string_view s) {
            std::lock_guard lk(err_mu);
            std::cerr << safe(s) << '\n';
        };
        link = std::make_shared<resilience::redis::fleet>(ctx.get_executor(), std::move(o));
        thread = std::thread([this] { ctx.run(); });
    }
    ~fleet_link() {
        if (link) link->stop();
        if (thread.joinable()) thread.join();
    }
#endif
};

int run_command(const cli& c, gemini::client_options opts, fleet_link& fleet) {
#ifdef RESILIENCE_HAS_REDIS
    if (fleet.link) opts.fleet = fleet.link;
#else
    (void)fleet;
#endif
    // Usage errors first: nothing is sent when any argument is unusable.
    if (c.command == "upload") {
        if (c.args.empty()) usage_error("upload needs at least one FILE");
        for (const auto& path : c.args) check_upload_file(path);
    } else if (c.command == "run") {
        if (c.args.size() != 1) usage_error("run needs exactly one FILE");
        if (c.prompt.empty()) usage_error("run needs --prompt TEXT");
        if (!gemini::is_valid_model_name(c.model)) usage_error("--model \"" + c.model + "\" is not a model name");
        check_upload_file(c.args[0]);
    }
    asio::io_context ctx;
    const bool tty = ::isatty(1) && !c.json;
    // `wait` on a terminal: the live view on stdout instead of scrolling lines.
    const bool live = tty && c.command == "wait";
    auto log = open_log(c);
    auto start = std::chrono::steady_clock::now();
    // Status lines go to the --log file; else to stderr, unless a terminal
    // shows the progress instead (stderr being a terminal too).
    std::mutex out_mu;
    const bool status_to_stderr = !tty || (live && !::isatty(2));
    if (log || status_to_stderr)
        opts.on_status = [&](std::string_view s) {
            std::lock_guard lk(out_mu);
            if (log) *log << safe(s) << '\n';
            else std::cerr << safe(s) << '\n';
        };
    gemini_files_view::tracker events;
    if (live) opts.on_event = [&](const resilience::event& e) { events.on_event(e); };
    gemini::client g(ctx.get_executor(), std::move(opts));
    const double timeout_s = c.timeout_s ? *c.timeout_s : default_timeout(c.command);
    auto deadline = [&]() {
        return g.time().now() +
               std::chrono::duration_cast<resilience::duration>(std::chrono::duration<double>(timeout_s));
    };
    int failures = 0;
    json::array out;

    if (c.command == "upload") {
        if (c.args.empty()) usage_error("upload needs at least one FILE");
        for (const auto& path : c.args)
            run_coroutine(ctx, [&, path]() -> asio::awaitable<void> {
                gemini::upload_options uo;
                uo.deadline = deadline();
                auto r = co_await g.upload(path, std::move(uo));
                if (r) {
                    if (c.json) out.push_back(json::object{{"path", path}, {"ok", true}, {"file", gemini::to_json(*r)}});
                    else std::cout << safe(path) << ": " << safe(r->name) << " (" << gemini::to_string(r->state) << ")\n";
                } else {
                    ++failures;
                    if (c.json) out.push_back(json::object{{"path", path}, {"ok", false}, {"error", error_json(r.error())}});
                    else std::cerr << safe(path) << ": upload failed: " << safe(r.error().what()) << '\n';
                }
            });
        ctx.run();
    } else if (c.command == "wait") {
        if (c.args.empty()) usage_error("wait needs at least one NAME");
        std::size_t done = 0, active = 0, failed = 0, errors = 0;
        std::vector<std::string> failures_shown;  // below the final frame
        auto draw = [&](gemini_files_view::screen& scr) {
            gemini_files_view::view_state v;
            v.title = "gemini-files wait";
            v.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            v.total = c.args.size();
            v.done = done;
            v.states = {{"PROCESSING", v.total - done}, {"ACTIVE", active}, {"FAILED", failed}, {"ERROR", errors}};
            gemini_files_view::fill_from_client(v, g, events, [](std::string& t) { gemini::redact_secret(t, g_key); });
            scr.draw(std::move(v));
        };
        for (const auto& name : c.args)
            run_coroutine(ctx, [&, name]() -> asio::awaitable<void> {
                gemini::wait_options wo;
                wo.deadline = deadline();
                apply_poll(c, wo);
                auto r = co_await g.wait_until_active(name, std::move(wo));
                ++done;
                if (r) ++active;
                else if (r.error().code == gemini::errc::file_failed) ++failed;
                else ++errors;
                if (!r) ++failures;
                if (c.json) {
                    json::object o{{"name", name}, {"ok", bool(r)}};
                    if (r) o["file"] = gemini::to_json(*r);
                    else o["error"] = error_json(r.error());
                    out.push_back(std::move(o));
                    co_return;
                }
                const std::string line = safe(name) + ": " + (r ? std::string("ACTIVE") : safe(r.error().what()));
                std::lock_guard lk(out_mu);
                if (log) *log << line << '\n';
                if (!live) std::cout << line << '\n';
                else if (!r && failures_shown.size() < 10) failures_shown.push_back(line);
            });
        if (live) {
            run_coroutine(ctx, [&]() -> asio::awaitable<void> {
                gemini_files_view::screen scr;
                asio::steady_timer t(ctx);
                while (done < c.args.size()) {  // 5 frames a second
                    draw(scr);
                    t.expires_after(200ms);
                    co_await t.async_wait(asio::use_awaitable);
                }
                draw(scr);
                for (const auto& f : failures_shown) std::cout << f << '\n';
                if (failures > static_cast<int>(failures_shown.size()))
                    std::cout << "... and " << failures - static_cast<int>(failures_shown.size()) << " more failures"
                              << (log ? " (all in the --log file)" : "") << '\n';
            });
        }
        ctx.run();
    } else if (c.command == "run") {
        if (c.args.size() != 1) usage_error("run needs exactly one FILE");
        if (c.prompt.empty()) usage_error("run needs --prompt TEXT");
        run_coroutine(ctx, [&]() -> asio::awaitable<void> {
            gemini::media_task_options t;
            t.file_path = c.args[0];
            t.model = c.model;
            t.deadline = deadline();
            apply_poll(c, t.wait);
            const std::string prompt = c.prompt;
            t.build_contents = [prompt](const gemini::file& f) {
                gemini::content ct;
                ct.parts = {gemini::part::from_file(f), gemini::part::from_text(prompt)};
                return std::vector<gemini::content>{ct};
            };
            auto r = co_await gemini::run_media_task(g, std::move(t));
            if (!r) {
                ++failures;
                if (c.json) out.push_back(json::object{{"ok", false}, {"error", error_json(r.error())}});
                else std::cerr << "run failed: " << safe(r.error().what()) << '\n';
                co_return;
            }
            if (c.json)
                out.push_back(json::object{{"ok", true}, {"file", gemini::to_json(r->uploaded)}, {"text", r->generated.text},
                                           {"finishReason", r->generated.finish_reason},
                                           {"totalTokens", r->generated.usage.total_tokens}});
            else std::cout << safe(r->generated.text, true) << '\n';
        });
        ctx.run();
    } else if (c.command == "list") {
        run_coroutine(ctx, [&]() -> asio::awaitable<void> {
            auto r = co_await g.list(deadline());
            if (!r) {
                ++failures;
                if (c.json) out.push_back(json::object{{"ok", false}, {"error", error_json(r.error())}});
                else std::cerr << "list failed: " << safe(r.error().what()) << '\n';
                co_return;
            }
            for (const auto& f : *r) {
                if (c.json) out.push_back(gemini::to_json(f));
                else std::cout << safe(f.name) << '\t' << gemini::to_string(f.state) << '\t' << f.size_bytes << '\t'
                               << safe(f.display_name) << '\n';
            }
        });
        ctx.run();
    } else if (c.command == "delete") {
        if (c.args.empty()) usage_error("delete needs at least one NAME");
        for (const auto& name : c.args)
            run_coroutine(ctx, [&, name]() -> asio::awaitable<void> {
                auto r = co_await g.remove(name, deadline());
                if (!r) ++failures;
                if (c.json) {
                    json::object o{{"name", name}, {"ok", bool(r)}};
                    if (!r) o["error"] = error_json(r.error());
                    out.push_back(std::move(o));
                } else if (r) std::cout << safe(name) << ": deleted\n";
                else std::cerr << safe(name) << ": delete failed: " << safe(r.error().what()) << '\n';
            });
        ctx.run();
    } else {
        usage_error("unknown command " + c.command);
    }
    if (c.json) {
        std::string text = json::serialize(out);
        gemini::redact_secret(text, g_key);
        std::cout << gemini::json_terminal_safe(text) << '\n';
    }
    return failures == 0 ? 0 : 1;
}

int show_config(const cli& c, const gemini::client_options& o) {
    const auto& r = o.retry;
    if (c.json) {
        json::object j{{"baseUrl", o.base_url},
                       {"apiKey", o.api_key.empty() ? "unset" : "set"},
                       {"maxRetries", r.max_retries},
                       {"initialDelayMs", r.backoff.initial_delay.count()},
                       {"maxDelayMs", r.backoff.max_delay.count()},
                       {"multiplier", r.backoff.multiplier},
                       {"jitter", std::string(resilience::to_string(r.backoff.jitter))},
                       {"breakerThreshold", o.breaker.failure_threshold},
                       {"breakerTimeoutMs", o.breaker.open_timeout.count()},
                       {"adaptiveRate", o.rate_gate.enabled},
                       {"timeoutS", c.timeout_s ? *c.timeout_s : 0.0}};
        std::cout << gemini::json_terminal_safe(json::serialize(j)) << '\n';
    } else {
        std::cout << "base URL:               " << safe(o.base_url) << '\n'
                  << "API key:                " << (o.api_key.empty() ? "unset" : "set (not shown)") << '\n'
                  << "max retries:            " << r.max_retries << '\n'
                  << "initial delay:          " << r.backoff.initial_delay.count() << " ms\n"
                  << "max delay:              " << r.backoff.max_delay.count() << " ms\n"
                  << "backoff multiplier:     " << r.backoff.multiplier << '\n'
                  << "jitter:                 " << resilience::to_string(r.backoff.jitter) << '\n'
                  << "breaker threshold:      " << o.breaker.failure_threshold << '\n'
                  << "breaker open timeout:   " << o.breaker.open_timeout.count() << " ms\n"
                  << "adaptive rate gate:     " << (o.rate_gate.enabled ? "on" : "off") << '\n'
                  << "timeout:                " << (c.timeout_s ? number(*c.timeout_s) + " s" : "none") << '\n';
    }
    if (o.api_key.empty()) {
        std::cerr << "gemini-files: GEMINI_API_KEY is not set (required except for demo)\n";
        return 2;
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    cli c = parse(argc, argv);
    if (const char* k = std::getenv("GEMINI_API_KEY")) g_key = k;
    resilience::gemini::config_overrides ov;
    if (c.base_url) ov.base_url = *c.base_url;
    if (c.adaptive_rate) ov.adaptive_rate = true;
    auto opts = gemini::client_options::from_env(ov);
    if (!opts) {
        std::cerr << "gemini-files: configuration error: " << opts.error().what() << '\n';
        return 2;
    }
    try {
        if (c.command == "config") return show_config(c, *opts);
        if (c.command == "demo") {
            gemini_files_demo::settings s;
            s.files = c.demo_files;
            s.generate = c.demo_generate;
            s.json = c.json;
            s.time_scale = c.time_scale;
            s.api_key_from_env = opts->api_key;
            s.live = ::isatty(1) && !c.json;
            if (c.log_path) s.log_path = *c.log_path;
            return gemini_files_demo::run(s, *opts);
        }
        if (opts->api_key.empty()) {
            std::cerr << "gemini-files: GEMINI_API_KEY is not set (required for " << c.command << ")\n";
            return 2;
        }
        // The fleet: --redis wins over RESILIENCE_REDIS_URL; a bad URL is a configuration error.
        fleet_link fleet;
#ifdef RESILIENCE_HAS_REDIS
        auto fo = resilience::redis::fleet_options::from_env();
        if (!fo) {
            std::cerr << "gemini-files: configuration error: " << fo.error().what() << '\n';
            return 2;
        }
        if (c.redis_url) {
            fo->url = *c.redis_url;
            if (auto v = fo->validate(); !v) {
                std::cerr << "gemini-files: configuration error: --redis: " << v.error().what() << '\n';
                return 2;
            }
        }
        if (!fo->url.empty()) fleet.start(std::move(*fo));
#else
        if (c.redis_url || resilience::process_env("RESILIENCE_REDIS_URL")) {
            std::cerr << "gemini-files: --redis / RESILIENCE_REDIS_URL: this build has no Redis adapter "
                         "(configure with -DRESILIENCE_REDIS=ON)\n";
            return 2;
        }
#endif
        return run_command(c, std::move(*opts), fleet);
    } catch (const resilience::error& e) {
        std::cerr << "gemini-files: " << e.get_failure().what() << '\n';
        return 2;
    }
}
