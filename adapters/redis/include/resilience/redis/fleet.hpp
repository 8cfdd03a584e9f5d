#ifndef RESILIENCE_REDIS_FLEET_HPP
#define RESILIENCE_REDIS_FLEET_HPP

// Fleet-wide gates on Redis (docs/fleet.md): the asio_resilience::redis adapter.
//
// A `fleet` links the gates of every process configured with the same Redis
// (resilience/gate_sync.hpp): each process keeps deciding locally (no Redis
// round trip on the success path); what changes (a counted failure, a breaker
// transition, a raised cooldown, the budget's tokens, a cut of the adaptive
// rate gate) goes to Redis, where
// Lua scripts make the transition atomically and publish it; every process
// applies what others published. Only a cold scope's requests (the onset
// cap, resilience/onset_gate.hpp) wait for Redis, for a lease. While Redis is unreachable or slower than
// `timeout`, the gates decide alone (said once through on_event/on_status),
// and they rejoin (pushing their local state, then reading the fleet's) when
// it is back.
//
// Redis protocol: hiredis's reader parses the replies and its formatter
// writes the commands; the I/O is our own Asio socket (docs/design-notes.md,
// "Fleet gates on Redis").
//
// Thread safety: attach() and every observer call may come from any thread;
// the fleet's own work runs on a strand of the executor it was given.
// Lifetimes: the gates may outlive the fleet and the reverse (each side
// holds the other weakly); stop() or the destructor ends the fleet's I/O.

#include <resilience/backoff.hpp>
#include <resilience/config.hpp>
#include <resilience/diagnostics.hpp>
#include <resilience/events.hpp>
#include <resilience/gate_sync.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>

namespace resilience::redis {

/// Why the link to Redis failed (category "resilience.redis"); a refused or
/// lost connection is Asio's own code.
enum class errc : int {
    auth_failed = 1,  ///< AUTH refused (wrong user or password), or Redis wants one
    server_error,     ///< Redis answered an error (SELECT, a script)
    protocol_error,   ///< the reply could not be parsed
    timeout,          ///< a request took longer than fleet_options::timeout (condition::timeout)
};
const boost::system::error_category& error_category() noexcept;
inline error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

/// A parsed `redis://[user:password@]host[:port][/db]`.
struct redis_url {
    std::string host;
    std::uint16_t port = 6379;
    std::string user;      ///< empty: AUTH with the password alone (or no AUTH)
    std::string password;  ///< never printed
    int db = 0;
    /// "host:port/db": what status text and errors name (never the credentials).
    std::string display() const;
};
/// Parses `url` (Boost.URL). A bad one fails with resilience::errc::invalid_config,
/// its message naming what is wrong and never quoting the credentials.
result<redis_url> parse_url(std::string_view url);

/// What the fleet says about its link.
enum class fleet_event_type : unsigned char {
    joined,    ///< connected (again), state resynced: the gates follow the fleet
    fell_back  ///< Redis unreachable, refused or slow: the gates decide locally
};
struct fleet_event {
    fleet_event_type type{};
    std::string_view message;  ///< the status text (never a credential)
    error_code code{};         ///< fell_back: why
};

struct fleet_options {
    fleet_options() = default;
    /// redis://[user:password@]host[:port][/db]; required.
    std::string url;
    /// Longest a Redis request (connect included) may take before the gates
    /// fall back to local state; also the longest any call waits for an
    /// answer of the fleet (a HALF_OPEN probe's grant, an onset lease; a
    /// lease refused because the cap is reached is waited for until one is
    /// freed, within the call's deadline). 1 ms..60 s.
    std::chrono::milliseconds timeout{250};
    /// Reconnection delays (core backoff maths; the cap is reached and kept).
    backoff_policy reconnect{std::chrono::milliseconds(50), std::chrono::milliseconds(5000), 2.0, jitter_mode::full};
    /// A PING after this much idle time notices a silent Redis. 10 ms..1 h.
    std::chrono::milliseconds health_interval{1000};
    /// Prefix of every key and of the channel: PREFIX:{SCOPE}:breaker, ...
    std::string key_prefix = "asio-resilience";
    /// Counted failures fleet-wide (in a row: any success that ends a local
    /// streak resets it) that open every breaker of the scope; 0 = each
    /// breaker's own failure_threshold.
    int failure_threshold = 0;
    /// A fleet failure count older than this is forgotten. 100 ms..24 h.
    std::chrono::milliseconds failure_window{30000};
    /// A HALF_OPEN probe claimed by a process that goes silent is reclaimed
    /// after this. 10 ms..24 h.
    std::chrono::milliseconds probe_lease{10000};
    /// Idle keys expire this long after their last change. 1 s..7 days.
    std::chrono::milliseconds key_ttl{std::chrono::minutes(10)};
    /// How often budget token changes are sent (batched). 1 ms..1 h.
    std::chrono::milliseconds budget_flush{100};
    /// The onset cap (docs/fleet.md): while a scope is cold (no success seen
    /// within onset_window, or a 429 or 5xx answer since), at most this many
    /// of its requests are in flight across the fleet, each holding a lease
    /// on Redis; a warm scope's requests ask nothing. 0 = off. 0..10000.
    int onset_cap = 4;
    /// A lease not given back (its process died, or its request outlasts
    /// it) is freed after this. 10 ms..24 h.
    std::chrono::milliseconds onset_lease{30000};
    /// A scope is warm this long after its newest success. 1 ms..24 h.
    std::chrono::milliseconds onset_window{60000};
    status_handler on_status;                          ///< "Fleet gates: ..." lines
    std::function<void(const fleet_event&)> on_event;  ///< joined / fell_back, once per change
    std::uint64_t seed = 0;                            ///< reconnect jitter and instance id; 0 = random

    /// Checks every field (resilience::errc::invalid_config naming it; the
    /// URL's credentials are never quoted).
    result<void> validate() const;
    /// Defaults with `url` from RESILIENCE_REDIS_URL (through `env`), checked
    /// by validate() when set; an unset or empty variable leaves `url` empty
    /// (no fleet).
    static result<fleet_options> from_env(const env_lookup& env = process_env);
};

/// Counters (thread-safe snapshot).
struct fleet_stats {
    std::uint64_t requests = 0;    ///< scripts and commands sent
    std::uint64_t published = 0;   ///< messages received from other processes
    std::uint64_t applied = 0;     ///< remote changes applied to local gates
    std::uint64_t fallbacks = 0;   ///< times the gates fell back to local state
    std::uint64_t joins = 0;       ///< times the link (re)joined
    std::uint64_t noscript = 0;    ///< EVALSHA answered NOSCRIPT (EVAL sent instead)
    std::uint64_t cuts_sent = 0;   ///< local rate cuts published (one per fleet congestion event)
    std::uint64_t cuts_applied = 0;  ///< other processes' rate cuts that cut a local rate
    std::uint64_t leases = 0;        ///< onset leases granted to this process
    std::uint64_t lease_refusals = 0;  ///< onset lease requests refused (cap reached, or a cooldown)
};

class fleet final : public gate_link {
public:
    /// Validates `opts` (throws resilience::error) and starts connecting.
    fleet(boost::asio::any_io_executor ex, fleet_options opts);
    ~fleet() override;
    fleet(const fleet&) = delete;
    fleet& operator=(const fleet&) = delete;

    void attach(const gate_set& gates) override;
    /// True while joined (both connections up, state synced).
    bool joined() const noexcept;
    /// "Fleet gates: ..." for the current link state.
    std::string status() const;
    fleet_stats stats() const;
    /// True when nothing is waiting to be sent (for tests and clean exits).
    bool idle() const noexcept;
    /// Ends the I/O (idempotent); the gates keep deciding locally.
    void stop();

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

}  // namespace resilience::redis

template <>
struct boost::system::is_error_code_enum<resilience::redis::errc> : std::true_type {};

#endif
