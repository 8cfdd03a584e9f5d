// The retry engine against a local flaky operation: the operation fails with
// a mix of network errors, 503s and a 429 carrying a pushback before it
// succeeds, and the pipeline prints its status text as it goes.
//
//   flaky_retry            real time (a few seconds of backoff)
//   flaky_retry --test     virtual time: same timeline, no sleeping; checks the outcome

#include <resilience/http/error.hpp>
#include <resilience/retry.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstring>
#include <iostream>

namespace asio = boost::asio;
using namespace std::chrono_literals;

// A stand-in for a remote call: fails in a fixed pattern, then answers.
asio::awaitable<resilience::result<std::string>> flaky_call(int attempt) {
    using resilience::errc;
    switch (attempt) {
    case 0: co_return resilience::failure(asio::error::connection_reset, "connection reset by peer");
    case 1: co_return resilience::failure(resilience::http::errc::server_error, "The model is overloaded. Please try again later.");
    case 2: {
        resilience::failure f(resilience::http::errc::too_many_requests, "Resource has been exhausted (e.g. check quota).");
        f.diag.http_status = 429;
        f.diag.retry_after = 2s;  // as if parsed from a RetryInfo of "2s"
        co_return f;
    }
    default: co_return std::string("{\"state\": \"ACTIVE\"}");
    }
}

int main(int argc, char** argv) {
    const bool test = argc > 1 && std::strcmp(argv[1], "--test") == 0;
    asio::io_context ctx;
    resilience::testing::manual_clock virtual_time;

    resilience::retry_options opts;
    opts.policy.max_retries = 5;
    opts.policy.backoff.initial_delay = 500ms;
    opts.policy.backoff.max_delay = 4s;
    opts.seed = 42;
    if (test) opts.time = &virtual_time;
    opts.on_status = [](std::string_view s) { std::cout << "[status] " << s << '\n'; };
    resilience::pipeline retry(std::move(opts));

    int calls = 0;
    std::optional<resilience::result<std::string>> outcome;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            outcome = co_await retry.run(
                [&](const resilience::attempt_context& a) {
                    ++calls;
                    return flaky_call(a.attempt);
                },
                resilience::call_options());
        },
        [](std::exception_ptr p) {
            if (p) std::rethrow_exception(p);
        });
    if (test)
        resilience::testing::run_virtual(ctx, virtual_time);
    else
        ctx.run();

    if (!outcome || !*outcome) {
        std::cout << "failed: " << (outcome ? outcome->error().what() : "no outcome") << '\n';
        return 1;
    }
    std::cout << "succeeded after " << calls << " attempts: " << outcome->value() << '\n';
    return calls == 4 ? 0 : 1;
}
