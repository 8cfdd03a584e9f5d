#ifndef RESILIENCE_GATE_SYNC_HPP
#define RESILIENCE_GATE_SYNC_HPP

// The seam between a process's gates and a fleet of processes sharing them
// (docs/fleet.md). No I/O and no Redis type here: the core reports what
// changed locally ("out") and takes what changed elsewhere ("in"); an
// adapter (resilience::redis::fleet) carries both between processes.
//
// Out: a gate_observer, set once on a gate (set_observer), is told of each
// local change that the fleet cares about: a breaker transition, a counted
// failure or the end of a failure streak, a raised cooldown, the retry
// budget's token changes. It is called outside the gate's lock, on the thread
// that made the change, and never on the success path of a CLOSED breaker
// without a failure streak, of a cooldown never deferred, or of a full
// budget (those take no lock and make no call, observer or not).
//
// In: circuit_breaker::apply_remote, cooldown::apply_remote,
// retry_budget::apply_remote change the local state without reporting it
// back to the observer (no echo). With circuit_breaker::gate_probes(true), a
// HALF_OPEN breaker admits probes only once grant_probes() is called, so
// that the fleet, not each process, decides who probes.
//
// The adaptive rate gate has its own seam (rate_gate::on_cut / apply_cut):
// a link given one in a gate_set publishes the scope's cuts and applies the
// others'. So has the onset gate (onset_gate.hpp): a link sets the permit
// source that caps a cold scope's requests in flight.
//
// gate_link: what a client (e.g. the Gemini client) hands its gates to, once
// per scope, so that an adapter links them to the fleet's.

#include <resilience/diagnostics.hpp>

#include <cstdint>
#include <memory>

namespace resilience {

class circuit_breaker;
class cooldown;
class retry_budget;
class rate_gate;
class onset_gate;
struct breaker_transition;

/// Local changes of one scope's gates. Every member has an empty default;
/// each is called outside the gate's lock and must neither block nor throw.
class gate_observer {
public:
    virtual ~gate_observer() = default;
    /// The breaker changed state by itself (not by apply_remote). When it
    /// opened, `open_for` is the break it will stay OPEN.
    virtual void on_breaker_transition(const breaker_transition& t, duration open_for) noexcept {
        (void)t;
        (void)open_for;
    }
    /// A counted failure while CLOSED; `streak` is the local consecutive count.
    virtual void on_breaker_failure(int streak) noexcept { (void)streak; }
    /// A success ended a local failure streak while CLOSED.
    virtual void on_breaker_streak_reset() noexcept {}
    /// The cooldown of `scope` was raised locally: nobody may start an
    /// attempt for `remaining` from now.
    virtual void on_cooldown(std::uint64_t scope, duration remaining) noexcept {
        (void)scope;
        (void)remaining;
    }
    /// The retry budget's tokens changed locally by `delta` thousandths.
    virtual void on_budget(std::int64_t delta) noexcept { (void)delta; }
};

/// One scope's gates as a client shares them (any may be null).
struct gate_set {
    std::uint64_t scope = 0;  ///< scope_hash() of the scope string
    std::shared_ptr<circuit_breaker> breaker;
    std::shared_ptr<resilience::cooldown> cooldown;
    std::shared_ptr<retry_budget> budget;
    /// The adaptive rate gate (rate_gate.hpp) whose cuts of this scope are
    /// shared (its cut handler is set by the link); null when off.
    std::shared_ptr<resilience::rate_gate> rate;
    /// The onset gate (onset_gate.hpp) of the scope's requests; the link
    /// sets its permit source (or leaves it unlinked: every request goes).
    std::shared_ptr<onset_gate> onset;
};

/// Links gates to those of other processes. Implemented by adapters.
class gate_link {
public:
    virtual ~gate_link() = default;
    /// Called once per gate set by its owner, after making the gates and
    /// before using them. The link sets their observers and keeps them
    /// weakly (the gates may be destroyed first). Thread-safe.
    virtual void attach(const gate_set& gates) = 0;
};

}  // namespace resilience

#endif
