// The retry pipeline and the shared gates around ANY awaitable operation, not
// only HTTP: here a database-like client whose errors live in their own
// error_category.
//
// What it shows:
//   1. A user error category (db_errc) and a classifier that tells the
//      pipeline which of its codes are worth retrying (a deadlock is, a
//      syntax error is not) and which are health failures (a lost
//      connection) that count against the circuit breaker.
//   2. A per-call classifier: an INSERT is not idempotent, so a connection
//      lost in the middle of it must not be retried (the row may exist).
//   3. Shared gates: one circuit_breaker (counting only connection failures)
//      and one retry_budget for every call to the database.
//   4. Fail-fast admission: while the breaker is OPEN, interactive calls
//      fail at once with errc::circuit_open; a background job waits for the
//      breaker instead (admission_mode::wait) and succeeds once it closes.
//   5. Virtual time: with --test every wait (latency, backoff, breaker open
//      timeout) runs on a manual_clock, so the 2 s outage takes no real time.
//
//   retry_any_operation            real time (about three seconds)
//   retry_any_operation --test     virtual time, checks every outcome, exit 0/1

#include <resilience/retry.hpp>
#include <resilience/testing/manual_clock.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/io_context.hpp>

#include <cstring>
#include <iostream>
#include <string>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using resilience::error_kind;
using resilience::failure;

// ---------------------------------------------------------------------------
// 1. The database's own error codes.
// ---------------------------------------------------------------------------

enum class db_errc { deadlock = 1, connection_lost, syntax_error };

class db_category_impl : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "db"; }
    std::string message(int ev) const override {
        switch (static_cast<db_errc>(ev)) {
        case db_errc::deadlock: return "deadlock detected";
        case db_errc::connection_lost: return "connection to the database lost";
        case db_errc::syntax_error: return "syntax error";
        }
        return "unknown database error";
    }
};
const boost::system::error_category& db_category() {
    static const db_category_impl c;
    return c;
}
boost::system::error_code make_error_code(db_errc e) { return {static_cast<int>(e), db_category()}; }
template <> struct boost::system::is_error_code_enum<db_errc> : std::true_type {};

// The pipeline knows nothing about "db": the classifier maps its codes to the
// six kinds. RETRYABLE_NETWORK is what our breaker counts (see main); a
// deadlock is retryable but says nothing about the database's health, so it
// is RETRYABLE_SERVER, which this breaker does not count.
error_kind classify_db(const failure& f) {
    if (f.code.category() != db_category()) return resilience::default_classify(f);  // timeouts, aborts
    switch (static_cast<db_errc>(f.code.value())) {
    case db_errc::deadlock: return error_kind::retryable_server;
    case db_errc::connection_lost: return error_kind::retryable_network;
    default: return error_kind::non_retryable_client;
    }
}

// For a statement that is not idempotent: a lost connection may have lost
// the answer, not the write. Retrying could insert the row twice.
error_kind classify_non_idempotent(const failure& f) {
    if (f.code == db_errc::connection_lost) return error_kind::non_retryable_client;
    return classify_db(f);
}

// ---------------------------------------------------------------------------
// 2. A stand-in database: 10 ms per statement, scripted failures.
// ---------------------------------------------------------------------------

class fake_db {
public:
    explicit fake_db(resilience::clock& c) : clock_(c) {}
    int deadlocks = 0;       // the next N statements fail with a deadlock
    bool drop_next = false;  // the next statement loses its connection
    bool down = false;       // every statement fails: connection lost
    int statements = 0;

    asio::awaitable<resilience::result<std::string>> query(std::string sql) {
        ++statements;
        if (auto ec = co_await clock_.sleep_until(clock_.now() + 10ms)) co_return failure(ec);  // cancelled
        if (down) co_return failure(db_errc::connection_lost);
        if (drop_next) {
            drop_next = false;
            co_return failure(db_errc::connection_lost);
        }
        if (deadlocks > 0) {
            --deadlocks;
            co_return failure(db_errc::deadlock, "deadlock detected while running: " + sql);
        }
        if (sql.starts_with("SELEC ")) co_return failure(db_errc::syntax_error, "syntax error at or near \"SELEC\"");
        co_return "1 row";
    }

private:
    resilience::clock& clock_;
};

// ---------------------------------------------------------------------------
// 3. The calls.
// ---------------------------------------------------------------------------

struct checker {
    int failures = 0;
    void operator()(bool ok, const std::string& what) {
        std::cout << (ok ? "ok    " : "FAIL  ") << what << '\n';
        if (!ok) ++failures;
    }
};

std::string outcome(const resilience::result<std::string>& r) {
    return r ? "succeeded: " + *r : "failed: " + r.error().what() + " (attempts " + std::to_string(r.error().diag.attempts) + ")";
}

asio::awaitable<void> scenario(resilience::pipeline& db_calls, fake_db& db, resilience::circuit_breaker& breaker,
                               checker& check) {
    resilience::clock& clk = db_calls.time();

    // a) A read that meets two deadlocks: retried with backoff, succeeds.
    db.deadlocks = 2;
    std::string select = "SELECT * FROM clips WHERE id = 7";
    auto read = [&] { return db.query(select); };  // captures by reference (g++ 12, see README.md)
    auto r = co_await db_calls.run(read);
    std::cout << "read with deadlocks " << outcome(r) << '\n';
    check(r && db.statements == 3, "two deadlocks, then the read succeeds (3 statements)");

    // b) An INSERT whose connection drops: the per-call classifier forbids a retry.
    db.statements = 0;
    db.drop_next = true;
    std::string insert = "INSERT INTO clips VALUES (8, 'clip.mp4')";
    auto write = [&] { return db.query(insert); };
    resilience::call_options once;
    once.classify = classify_non_idempotent;
    once.subject = "insert clip 8";
    auto w = co_await db_calls.run(write, std::move(once));
    std::cout << "insert on a dropped connection " << outcome(w) << '\n';
    check(!w && w.error().code == db_errc::connection_lost && db.statements == 1,
          "a non-idempotent INSERT on a lost connection is not retried");

    // c) A syntax error is not retried either (classify_db says so).
    db.statements = 0;
    std::string bad = "SELEC 1";
    auto typo = [&] { return db.query(bad); };
    auto t = co_await db_calls.run(typo);
    check(!t && t.error().code == db_errc::syntax_error && db.statements == 1, "a syntax error is not retried");

    // d) The database goes down: connection failures open the shared breaker
    //    (threshold 3); from then on interactive calls fail fast.
    db.down = true;
    resilience::call_options give_up_when_open;
    give_up_when_open.admission = resilience::admission_mode::fail_fast;
    auto r2 = co_await db_calls.run(read, std::move(give_up_when_open));
    std::cout << "read while down " << outcome(r2) << '\n';
    check(!r2 && breaker.state() == resilience::breaker_state::open, "the outage opens the circuit breaker");

    db.statements = 0;
    resilience::call_options interactive;
    interactive.admission = resilience::admission_mode::fail_fast;
    const auto before = clk.now();
    auto r3 = co_await db_calls.run(read, std::move(interactive));
    std::cout << "interactive read while OPEN " << outcome(r3) << '\n';
    check(!r3 && r3.error().code == resilience::errc::circuit_open && db.statements == 0 && clk.now() - before < 5ms,
          "fail-fast admission: errc::circuit_open at once, the database is not touched");

    // e) A background job waits for the breaker (the pipeline's default
    //    admission), bounded by its deadline. The database comes back after
    //    1 s; the breaker's open timeout (2 s) lets a probe through, which
    //    succeeds and closes it.
    resilience::call_options background;
    background.deadline = clk.now() + 10s;
    background.subject = "nightly report";
    auto repair = [&]() -> asio::awaitable<void> {
        co_await clk.sleep_until(clk.now() + 1s);
        db.down = false;
        std::cout << "(the database is back)\n";
    };
    auto ex = co_await asio::this_coro::executor;
    asio::co_spawn(ex, repair(), asio::detached);
    auto r4 = co_await db_calls.run(read, std::move(background));
    std::cout << "background read " << outcome(r4) << " after " << resilience::format_seconds(clk.now() - before) << '\n';
    check(r4 && breaker.state() == resilience::breaker_state::closed, "the waiting call succeeds and the breaker closes");
}

int main(int argc, char** argv) {
    const bool test = argc > 1 && std::strcmp(argv[1], "--test") == 0;
    resilience::testing::manual_clock virtual_time;  // before the io_context: it outlives its sleepers
    resilience::clock& clk = test ? static_cast<resilience::clock&>(virtual_time) : resilience::steady_clock();
    asio::io_context ctx;

    // The shared gates. Only connection failures are health failures here.
    resilience::breaker_options bo;
    bo.config.failure_threshold = 3;
    bo.config.open_timeout = 2s;
    bo.counted_kinds = resilience::kind_bit(error_kind::retryable_network);
    bo.time = &clk;
    bo.on_transition = [](const resilience::breaker_transition& t) {
        std::cout << "[breaker] " << resilience::to_string(t.from) << " -> " << resilience::to_string(t.to) << '\n';
    };
    auto breaker = std::make_shared<resilience::circuit_breaker>(std::move(bo));

    resilience::retry_options opts;
    opts.policy.max_retries = 4;
    opts.policy.backoff.initial_delay = 50ms;
    opts.policy.backoff.max_delay = 1s;
    opts.policy.attempt_timeout = 500ms;  // a statement that hangs is cut and retried
    opts.classify = classify_db;
    opts.breaker = breaker;
    opts.budget = std::make_shared<resilience::retry_budget>();  // share it with other pipelines of this database
    opts.time = &clk;
    opts.seed = 11;
    opts.on_status = [](std::string_view s) { std::cout << "  [status] " << s << '\n'; };
    resilience::pipeline db_calls(std::move(opts));

    fake_db db(clk);
    checker check;
    bool done = false;
    asio::co_spawn(ctx, scenario(db_calls, db, *breaker, check), [&](std::exception_ptr p) {
        done = true;
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::exception& e) {
            check(false, std::string("scenario threw: ") + e.what());
        }
    });
    if (test) {
        if (!resilience::testing::run_virtual(ctx, virtual_time, [&] { return done; }))
            check(false, "the scenario did not finish in virtual time");
    } else {
        ctx.run();
    }
    std::cout << (check.failures ? "FAILED" : "passed") << '\n';
    return check.failures ? 1 : 0;
}
