// The whole stack as a user links it (asio_resilience::asio_resilience and
// asio_resilience::simulator): upload a small file to an in-process
// simulator, wait until it is ACTIVE, generate content on it. The io_context
// is shared with another Asio-based library (other_asio_library.cpp).
// Exit status 0 when every step succeeded.
#if defined(BOOST_ASIO_SEPARATE_COMPILATION) || defined(BOOST_BEAST_SEPARATE_COMPILATION) || \
    defined(BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE) || defined(BOOST_ASIO_NO_DEPRECATED)
#error "asio_resilience imposed an Asio or Beast configuration macro on its consumer"
#endif

#include <resilience/gemini/client.hpp>
#include <resilience/sim/server.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <unistd.h>

namespace asio = boost::asio;
namespace gemini = resilience::gemini;
using namespace std::chrono_literals;

int* other_library_start(asio::io_context& ctx);

int main() {
    const auto path = std::filesystem::temp_directory_path() /
                      ("asio-resilience-consumer-" + std::to_string(::getpid()) + ".mp4");
    {
        std::ofstream out(path, std::ios::binary);
        out << std::string(4096, 'x');
    }

    resilience::sim::config cfg;
    cfg.api_key = "consumer-test-key";
    cfg.processing = resilience::sim::processing_time::uniform(20ms, 60ms);
    resilience::sim::server srv(cfg);
    srv.start();

    gemini::client_options opts;
    opts.api_key = cfg.api_key;
    opts.base_url = srv.base_url();
    opts.retry.backoff.initial_delay = 10ms;
    opts.retry.backoff.max_delay = 100ms;

    asio::io_context ctx;
    gemini::client g(ctx.get_executor(), opts);
    std::string outcome = "not run";
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            auto up = co_await g.upload(path.string());
            if (!up) {
                outcome = "upload: " + up.error().what();
                co_return;
            }
            gemini::wait_options w;
            w.poll_initial = 10ms;
            w.poll_max = 50ms;
            w.deadline = g.time().now() + 60s;
            auto f = co_await g.wait_until_active(up->name, std::move(w));
            if (!f) {
                outcome = "wait: " + f.error().what();
                co_return;
            }
            gemini::content c;
            c.parts = {gemini::part::from_file(*f), gemini::part::from_text("Describe this clip")};
            std::vector<gemini::content> contents{c};
            auto r = co_await g.generate_content("gemini-2.0-flash", std::move(contents));
            if (!r) {
                outcome = "generate: " + r.error().what();
                co_return;
            }
            outcome = r->text.empty() ? "generate: empty answer" : "ok";
        },
        [](std::exception_ptr p) {
            if (p) std::rethrow_exception(p);
        });
    const int* ticks = other_library_start(ctx);
    ctx.run();
    srv.stop();
    std::filesystem::remove(path);

    const bool ok = outcome == "ok" && *ticks == 2;
    std::cout << "consumer_gemini: " << outcome << ", other library ticks " << *ticks << ": "
              << (ok ? "ok" : "FAILED") << '\n';
    return ok ? 0 : 1;
}
