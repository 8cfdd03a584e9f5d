// The core layer alone (asio_resilience::core): a retried operation whose
// failures are codes of this program's own category, which opts into retries
// by mapping them to resilience::condition::transient. Virtual time, so the
// backoff costs nothing. Exit status 0 when the third attempt succeeds.
#if defined(BOOST_ASIO_SEPARATE_COMPILATION) || defined(BOOST_BEAST_SEPARATE_COMPILATION) || \
    defined(BOOST_ASIO_RECYCLING_ALLOCATOR_CACHE_SIZE) || defined(BOOST_ASIO_NO_DEPRECATED)
#error "asio_resilience imposed an Asio or Beast configuration macro on its consumer"
#endif

#include <resilience/retry.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <iostream>
#include <optional>
#include <string>

namespace asio = boost::asio;

namespace {

// Another library's error codes: "busy" is worth retrying, "refused" is not.
enum class db_errc { busy = 1, refused };

class db_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "db"; }
    std::string message(int ev) const override { return ev == 1 ? "database busy" : "request refused"; }
    boost::system::error_condition default_error_condition(int ev) const noexcept override {
        if (ev == static_cast<int>(db_errc::busy)) return resilience::condition::transient;
        return {ev, *this};
    }
};

const boost::system::error_category& db_cat() {
    static const db_category c;
    return c;
}

resilience::error_code make_db_error(db_errc e) { return {static_cast<int>(e), db_cat()}; }

asio::awaitable<resilience::result<int>> query(int attempt, db_errc failure) {
    if (attempt < 2) co_return resilience::failure(make_db_error(failure), "query failed");
    co_return 42;
}

// Runs the operation through a pipeline; returns {attempts, outcome}.
std::pair<int, std::optional<resilience::result<int>>> run(db_errc failure) {
    asio::io_context ctx;
    resilience::testing::manual_clock virtual_time;
    resilience::retry_options opts;
    opts.time = &virtual_time;
    opts.seed = 7;
    resilience::pipeline retry(std::move(opts));
    int attempts = 0;
    std::optional<resilience::result<int>> outcome;
    asio::co_spawn(
        ctx,
        [&]() -> asio::awaitable<void> {
            resilience::call_options call;
            outcome = co_await retry.run(
                [&](const resilience::attempt_context& a) {
                    ++attempts;
                    return query(a.attempt, failure);
                },
                call);
        },
        [](std::exception_ptr p) {
            if (p) std::rethrow_exception(p);
        });
    resilience::testing::run_virtual(ctx, virtual_time);
    return {attempts, std::move(outcome)};
}

}  // namespace

int main() {
    auto [busy_attempts, busy] = run(db_errc::busy);
    auto [refused_attempts, refused] = run(db_errc::refused);
    const bool ok = busy && *busy && busy->value() == 42 && busy_attempts == 3 && refused && !*refused &&
                    refused_attempts == 1;
    std::cout << "consumer_core: busy -> " << busy_attempts << " attempts, refused -> " << refused_attempts
              << " attempt(s): " << (ok ? "ok" : "FAILED") << '\n';
    return ok ? 0 : 1;
}
