// Soak: a million polls through the simulator with 5% of the poll requests
// faulted, in virtual time (simulator and client on one io_context and one
// testing::manual_clock). `--waits` workers each loop: store a file that
// stays PROCESSING 5..35 s, wait_until_active on it (1 s poll pause), delete
// it; until `--polls` polls were made. A poll is a file's state learned by
// the poll scheduler: a files.get, or a file shown by a files.list page of a
// list round (the client's default poll_list_min_waits, 64: in the runs below
// nearly every poll is a list page's). The faults on files.get and files.list,
// each at a quarter of the rate: 503 overloaded, 500 internal, connection
// reset before the answer, 429 with RetryInfo.
//
// Prints a JSON line every tenth of the run: polls, virtual and real seconds,
// resident set (VmRSS) and heap in use (mallinfo2), waits done and lost,
// faults injected, files stored; then a summary line. A wait is lost when it
// ends with an error: the run fails (exit 1) if any is, or if the resident set
// or the heap in use at the end exceeds its value after the first tenth by
// more than --max-growth (a share; default 0.10; 0 skips the check, e.g.
// under AddressSanitizer, whose quarantine grows the resident set by design).
//
// Run: build/bench/bench_soak                          (1,000,000 polls, 1,000 waits)
//      build/bench/bench_soak --polls 100000 --waits 200 (what CI runs, under ASan:
//        about 2,500 waits, as most polls are list-page polls)
#include <resilience/gemini/client.hpp>
#include <resilience/sim/server.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <string>

#include <malloc.h>

namespace asio = boost::asio;
namespace sim = resilience::sim;
namespace gemini = resilience::gemini;
using resilience::duration;
using resilience::testing::manual_clock;
using namespace std::chrono_literals;
using real_clock = std::chrono::steady_clock;

namespace {

const std::string key = "soak-key-3f9a";

struct options {
    std::uint64_t polls = 1'000'000;
    std::size_t waits = 1000;
    double fault_rate = 0.05;
    double max_growth = 0.10;
};

std::size_t rss_kb() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
    return 0;
}

std::size_t heap_kb() {
    struct mallinfo2 m = mallinfo2();
    return (m.uordblks + m.hblkhd) / 1024;
}

struct soak {
    options opt;
    asio::io_context ctx;
    manual_clock clk;
    sim::server srv;
    gemini::client cl;
    std::uint64_t done = 0, lost = 0, workers_left = 0;
    std::string first_error;

    static sim::config sim_config(manual_clock& clk) {
        sim::config cfg;
        cfg.api_key = key;
        cfg.time = &clk;
        cfg.seed = 5;
        cfg.processing = sim::processing_time::uniform(5s, 35s);
        return cfg;
    }
    static gemini::client_options client_config(manual_clock& clk, const std::string& url) {
        gemini::client_options o;
        o.api_key = key;
        o.base_url = url;
        o.time = &clk;
        o.seed = 11;
        return o;
    }

    explicit soak(options o) : opt(o), srv(ctx, sim_config(clk)), cl(ctx.get_executor(), client_config(clk, start_and_url())) {
        // A quarter of the fault rate each (the rules draw one after another).
        const double each = 1.0 - std::pow(1.0 - opt.fault_rate, 0.25);
        for (auto r : {sim::route::get, sim::route::list})
            for (auto k : {sim::fault_kind::overloaded, sim::fault_kind::internal, sim::fault_kind::reset_before_headers,
                           sim::fault_kind::rate_limit}) {
                sim::fault f = sim::fault::sometimes(k, r, each);
                f.retry_delay = 1s;
                srv.add_fault(f);
            }
    }
    std::string start_and_url() {
        srv.start();
        return srv.base_url();
    }

    // Polls so far: files.get requests of the poll scheduler, and the files
    // its list rounds' pages showed (the workers' files are all the simulator
    // stores; a snapshot copies maps: not for every step of the loop).
    std::uint64_t polls() const { return cl.stats().polls + srv.snapshot().files_listed; }

    asio::awaitable<void> worker() {
        while (polls() < opt.polls) {
            std::string name = srv.add_file("soak", "video/mp4");
            gemini::wait_options w;
            w.poll_initial = 1s;
            w.poll_multiplier = 1.0;
            w.poll_max = 1s;
            w.deadline = clk.now() + 1h;
            auto r = co_await cl.wait_until_active(name, std::move(w));
            if (r) {
                ++done;
            } else {
                ++lost;
                if (first_error.empty()) first_error = r.error().what();
            }
            auto d = co_await cl.remove(std::move(name));
            (void)d;
        }
        --workers_left;
    }
};

void print_sample(soak& s, std::uint64_t polls, real_clock::time_point t0, resilience::time_point v0) {
    auto st = s.srv.snapshot();
    std::printf(
        "{\"polls\":%llu,\"virtual_s\":%.0f,\"real_s\":%.1f,\"rss_kb\":%zu,\"heap_kb\":%zu,\"waits_done\":%llu,"
        "\"waits_lost\":%llu,\"faults\":%llu,\"files\":%llu,\"pool_opened\":%llu}\n",
        static_cast<unsigned long long>(polls), std::chrono::duration<double>(s.clk.now() - v0).count(),
        std::chrono::duration<double>(real_clock::now() - t0).count(), rss_kb(), heap_kb(),
        static_cast<unsigned long long>(s.done), static_cast<unsigned long long>(s.lost),
        static_cast<unsigned long long>(st.faults_injected), static_cast<unsigned long long>(st.files),
        static_cast<unsigned long long>(s.cl.http().stats().opened));
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    options opt;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--polls") opt.polls = std::strtoull(argv[i + 1], nullptr, 10);
        else if (a == "--waits") opt.waits = std::strtoull(argv[i + 1], nullptr, 10);
        else if (a == "--fault-rate") opt.fault_rate = std::strtod(argv[i + 1], nullptr);
        else if (a == "--max-growth") opt.max_growth = std::strtod(argv[i + 1], nullptr);
        else {
            std::fprintf(stderr, "usage: bench_soak [--polls N] [--waits N] [--fault-rate R] [--max-growth G]\n");
            return 2;
        }
    }
    if (opt.polls == 0 || opt.waits == 0 || !(opt.fault_rate >= 0 && opt.fault_rate < 1)) {
        std::fprintf(stderr, "bench_soak: --polls and --waits must be positive, --fault-rate in [0, 1)\n");
        return 2;
    }
    soak s(opt);
    const auto t0 = real_clock::now();
    const auto v0 = s.clk.now();
    s.workers_left = opt.waits;
    for (std::size_t i = 0; i < opt.waits; ++i)
        asio::co_spawn(s.ctx, s.worker(), [](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
        });
    const std::uint64_t step = std::max<std::uint64_t>(1, opt.polls / 10);
    std::uint64_t next = step;
    std::size_t rss_first = 0, rss_last = 0, heap_first = 0, heap_last = 0;
    resilience::testing::run_options ro;
    ro.idle_quantum = std::chrono::microseconds(0);  // one thread: ready loopback I/O shows up in poll()
    ro.max_real = std::chrono::hours(4);
    resilience::time_point next_look{};  // the polls are counted once a virtual second
    bool ok = resilience::testing::run_virtual(
        s.ctx, s.clk,
        [&] {
            if (s.clk.now() < next_look) return s.workers_left == 0;
            next_look = s.clk.now() + 1s;
            const auto polls = s.polls();
            if (polls >= next) {
                print_sample(s, polls, t0, v0);
                rss_last = rss_kb();
                heap_last = heap_kb();
                if (!rss_first) rss_first = rss_last;
                if (!heap_first) heap_first = heap_last;
                next += step;
            }
            return s.workers_left == 0;
        },
        ro);
    const auto polls = s.polls();
    print_sample(s, polls, t0, v0);
    // Growth is judged at the last sample taken while the waits ran (at the
    // end they are over and their memory is given back).
    if (!rss_last) rss_last = rss_kb();
    if (!heap_last) heap_last = heap_kb();
    const double growth = rss_first ? double(rss_last) / double(rss_first) - 1.0 : 0.0;
    const double heap_growth = heap_first ? double(heap_last) / double(heap_first) - 1.0 : 0.0;
    const bool flat = opt.max_growth <= 0 || (growth <= opt.max_growth && heap_growth <= opt.max_growth);
    auto st = s.srv.snapshot();
    std::printf(
        "{\"summary\":\"soak\",\"polls\":%llu,\"get_polls\":%llu,\"list_pages\":%llu,\"files_listed\":%llu,"
        "\"waits\":%zu,\"fault_rate\":%.3f,\"faults\":%llu,\"waits_done\":%llu,"
        "\"waits_lost\":%llu,\"rss_kb_first_tenth\":%zu,\"rss_kb_last\":%zu,\"rss_growth\":%.3f,"
        "\"heap_kb_first_tenth\":%zu,\"heap_kb_last\":%zu,\"heap_growth\":%.3f,\"real_s\":%.1f,"
        "\"ended\":%s,\"ok\":%s}\n",
        static_cast<unsigned long long>(polls), static_cast<unsigned long long>(s.cl.stats().polls),
        static_cast<unsigned long long>(s.cl.stats().poll_list_pages), static_cast<unsigned long long>(st.files_listed),
        opt.waits, opt.fault_rate,
        static_cast<unsigned long long>(st.faults_injected), static_cast<unsigned long long>(s.done),
        static_cast<unsigned long long>(s.lost), rss_first, rss_last, growth, heap_first, heap_last, heap_growth,
        std::chrono::duration<double>(real_clock::now() - t0).count(), ok ? "true" : "false",
        ok && s.lost == 0 && flat ? "true" : "false");
    if (!s.first_error.empty()) std::fprintf(stderr, "bench_soak: first lost wait: %s\n", s.first_error.c_str());
    return ok && s.lost == 0 && flat ? 0 : 1;
}
