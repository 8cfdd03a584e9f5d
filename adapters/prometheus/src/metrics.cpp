#include <resilience/prometheus/metrics.hpp>

#include <prometheus/check_names.h>

#include <chrono>
#include <cmath>

namespace resilience::prometheus {
namespace {

namespace pc = ::prometheus;

[[noreturn]] void bad(const std::string& what) {
    throw error(failure(make_error_code(errc::invalid_argument), "prometheus metrics: " + what));
}

// Label values: the names the library prints (error kinds) or snake_case
// identifiers (reasons, states), never free text.
constexpr std::array<error_kind, 6> kinds{error_kind::retryable_network,  error_kind::retryable_rate_limit,
                                          error_kind::retryable_server,   error_kind::non_retryable_auth,
                                          error_kind::non_retryable_client, error_kind::non_retryable_aborted};
constexpr std::array<std::string_view, 7> reason_names{"none",   "non_retryable", "max_retries", "deadline",
                                                        "budget", "circuit_open",  "cancelled"};
constexpr std::array<std::string_view, 3> state_names{"closed", "open", "half_open"};
// Labels this adapter sets itself; a constant label of the same name would clash.
constexpr std::array<std::string_view, 8> own_labels{"kind", "source", "reason", "state", "from", "to", "outcome", "le"};

double seconds(duration d) noexcept { return std::chrono::duration<double>(d).count(); }

void check_buckets(const std::vector<double>& b, const char* which) {
    for (std::size_t i = 0; i < b.size(); ++i) {
        if (!std::isfinite(b[i])) bad(std::string(which) + " buckets must be finite numbers");
        if (i > 0 && !(b[i] > b[i - 1])) bad(std::string(which) + " buckets must be strictly increasing");
    }
}

}  // namespace

metrics::metrics(pc::Registry& registry, metrics_options opts) : registry_(registry), opts_(std::move(opts)) {
    const std::string& p = opts_.prefix;
    if (p.empty() || !pc::CheckMetricName(p)) bad("prefix \"" + p + "\" is not a valid metric name");
    for (const auto& [name, value] : opts_.labels) {
        if (!pc::CheckLabelName(name)) bad("constant label \"" + name + "\" is not a valid label name");
        for (auto own : own_labels)
            if (name == own) bad("constant label \"" + name + "\" clashes with a label the adapter sets");
    }
    check_buckets(opts_.request_buckets, "request duration");
    check_buckets(opts_.attempt_buckets, "attempt duration");

    auto counter = [&](const char* name, const char* help) -> pc::Family<pc::Counter>& {
        return pc::BuildCounter().Name(p + "_" + name).Help(help).Labels(opts_.labels).Register(registry_);
    };
    auto gauge = [&](const char* name, const char* help) -> pc::Family<pc::Gauge>& {
        return pc::BuildGauge().Name(p + "_" + name).Help(help).Labels(opts_.labels).Register(registry_);
    };
    auto histogram = [&](const char* name, const char* help) -> pc::Family<pc::Histogram>& {
        return pc::BuildHistogram().Name(p + "_" + name).Help(help).Labels(opts_.labels).Register(registry_);
    };

    attempts_ = &counter("attempts_total", "Attempts started (every call of the operation).").Add({});
    auto& fail = counter("attempt_failures_total", "Failed attempts, by error kind.");
    auto& retry = counter("retries_total", "Retries scheduled, by the kind of the failure that caused them.");
    for (std::size_t i = 0; i < kinds.size(); ++i) {
        const std::string k(to_string(kinds[i]));
        failures_[i] = &fail.Add({{"kind", k}});
        if (is_retryable(kinds[i])) retries_[i] = &retry.Add({{"kind", k}});
    }
    auto& delay = counter("retry_delay_seconds_total",
                          "Delay scheduled before retries: computed backoff, or the server's pushback.");
    delay_backoff_ = &delay.Add({{"source", "backoff"}});
    delay_server_ = &delay.Add({{"source", "server"}});
    auto& gave = counter("gave_up_total", "Calls that ended without success, by reason.");
    for (std::size_t i = 1; i < reason_names.size(); ++i) gave_up_[i] = &gave.Add({{"reason", std::string(reason_names[i])}});

    auto& state = gauge("breaker_state", "1 for the circuit breaker's current state, 0 for the others.");
    for (std::size_t i = 0; i < state_names.size(); ++i) state_[i] = &state.Add({{"state", std::string(state_names[i])}});
    state_[0]->Set(1);
    auto& trans = counter("breaker_transitions_total", "Circuit breaker transitions.");
    auto add_transition = [&](breaker_state from, breaker_state to) {
        transitions_[static_cast<std::size_t>(from)][static_cast<std::size_t>(to)] =
            &trans.Add({{"from", std::string(state_names[static_cast<std::size_t>(from)])},
                        {"to", std::string(state_names[static_cast<std::size_t>(to)])}});
    };
    add_transition(breaker_state::closed, breaker_state::open);
    add_transition(breaker_state::open, breaker_state::half_open);
    add_transition(breaker_state::half_open, breaker_state::closed);
    add_transition(breaker_state::half_open, breaker_state::open);
    add_transition(breaker_state::open, breaker_state::closed);  // reset()
    breaker_waits_ = &counter("breaker_waits_total", "Attempts that waited for the circuit breaker to admit them.").Add({});
    breaker_wait_seconds_ =
        &counter("breaker_wait_seconds_total", "Announced length of the breaker waits (open timeout left).").Add({});
    cooldown_waits_ = &counter("cooldown_waits_total", "Attempts held back by the scope's cooldown (a server pushback).").Add({});
    cooldown_wait_seconds_ = &counter("cooldown_wait_seconds_total", "Announced length of the cooldown waits.").Add({});
    rate_waits_ = &counter("rate_waits_total", "Attempts held back by the adaptive rate gate.").Add({});
    rate_wait_seconds_ =
        &counter("rate_wait_seconds_total", "Announced length of the rate gate's waits (the first of each attempt).").Add({});

    auto& req = histogram("request_duration_seconds", "Whole calls: every attempt, backoff and gate wait.");
    request_ok_ = &req.Add({{"outcome", "success"}}, opts_.request_buckets);
    request_failed_ = &req.Add({{"outcome", "failure"}}, opts_.request_buckets);
    auto& att = histogram("attempt_duration_seconds", "Single attempts.");
    attempt_ok_ = &att.Add({{"outcome", "success"}}, opts_.attempt_buckets);
    attempt_failed_ = &att.Add({{"outcome", "failure"}}, opts_.attempt_buckets);
}

void metrics::set_state(breaker_state s) noexcept {
    for (std::size_t i = 0; i < state_.size(); ++i) state_[i]->Set(i == static_cast<std::size_t>(s) ? 1 : 0);
}

void metrics::record(const event& e) noexcept {
    switch (e.type) {
    case event_type::attempt_started: attempts_->Increment(); break;
    case event_type::attempt_succeeded:
        attempt_ok_->Observe(seconds(e.attempt_elapsed));
        request_ok_->Observe(seconds(e.elapsed));  // a success ends the call
        break;
    case event_type::attempt_failed:
        if (auto* c = failures_[static_cast<std::size_t>(e.kind)]) c->Increment();
        attempt_failed_->Observe(seconds(e.attempt_elapsed));
        break;
    case event_type::retry_scheduled:
        if (auto* c = retries_[static_cast<std::size_t>(e.kind)]) c->Increment();
        (e.pushback ? delay_server_ : delay_backoff_)->Increment(seconds(e.delay));
        break;
    case event_type::gave_up:
        if (auto* c = gave_up_[static_cast<std::size_t>(e.reason)]) c->Increment();
        request_failed_->Observe(seconds(e.elapsed));
        break;
    case event_type::cooldown_wait:
        cooldown_waits_->Increment();
        cooldown_wait_seconds_->Increment(seconds(e.delay));
        break;
    case event_type::breaker_wait:
        breaker_waits_->Increment();
        breaker_wait_seconds_->Increment(seconds(e.delay));
        break;
    case event_type::rate_wait:
        rate_waits_->Increment();
        rate_wait_seconds_->Increment(seconds(e.delay));
        break;
    case event_type::breaker_transition:
        if (auto* c = transitions_[static_cast<std::size_t>(e.from)][static_cast<std::size_t>(e.to)]) c->Increment();
        set_state(e.to);
        break;
    }
    if (e.type == event_type::attempt_succeeded || e.type == event_type::attempt_failed)
        if (const retry_budget* b = budget_.load(std::memory_order_acquire)) budget_tokens_->Set(b->tokens());
}

void metrics::watch(const circuit_breaker& b) {
    breaker_.store(&b, std::memory_order_release);
    set_state(b.state());
}

void metrics::watch(const retry_budget& b) {
    if (!budget_tokens_)
        budget_tokens_ = &::prometheus::BuildGauge()
                              .Name(opts_.prefix + "_retry_budget_tokens")
                              .Help("Tokens in the retry budget (retries are allowed above half of its size).")
                              .Labels(opts_.labels)
                              .Register(registry_)
                              .Add({});
    budget_tokens_->Set(b.tokens());
    budget_.store(&b, std::memory_order_release);
}

void metrics::refresh() noexcept {
    if (const circuit_breaker* b = breaker_.load(std::memory_order_acquire)) set_state(b->state());
    if (const retry_budget* b = budget_.load(std::memory_order_acquire)) budget_tokens_->Set(b->tokens());
}

}  // namespace resilience::prometheus
