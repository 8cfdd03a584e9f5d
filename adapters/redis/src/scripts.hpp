#ifndef RESILIENCE_REDIS_SCRIPTS_HPP
#define RESILIENCE_REDIS_SCRIPTS_HPP

// The Lua scripts of the fleet gates (docs/fleet.md, "Scripts"). Each runs
// atomically on the server; each breaker script answers {state, generation,
// milliseconds} with state c(losed), o(pen), h(alf-open, another process
// probes), g(ranted: the caller probes) or n(othing known), and publishes
// what it changed on the channel as "ORIGIN SCOPE b STATE GEN MS".
//
// Breaker scripts: KEYS = {breaker hash, open marker, probe lease};
// ARGV[1..3] = channel, origin (the process's id), scope (hex).
// A generation is max(previous + 1, the server's TIME in microseconds): it
// grows across key expiry and server restarts, so a process can always tell
// a newer state from an older one.

#include <string_view>

namespace resilience::redis::detail {

inline constexpr std::string_view breaker_prelude = R"lua(
local H, OPEN, PROBE = KEYS[1], KEYS[2], KEYS[3]
local CH, ORIGIN, SCOPE = ARGV[1], ARGV[2], ARGV[3]
local function fmt(n) return string.format('%.0f', n) end
local function gen_now() return tonumber(redis.call('HGET', H, 'gen') or '0') end
local function gen_next()
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local g = gen_now()
  if now > g then g = now else g = g + 1 end
  redis.call('HSET', H, 'gen', fmt(g))
  return g
end
local function state_now() return redis.call('HGET', H, 'state') or 'c' end
local function publish(st, g, ms)
  redis.call('PUBLISH', CH, ORIGIN .. ' ' .. SCOPE .. ' b ' .. st .. ' ' .. fmt(g) .. ' ' .. fmt(ms))
end
local function current()
  local st = state_now()
  local ms = 0
  if st == 'o' then ms = redis.call('PTTL', OPEN) elseif st == 'h' then ms = redis.call('PTTL', PROBE) end
  if ms < 0 then ms = 0 end
  return {st, gen_now(), ms}
end
local function open_now(ms, ttl)
  local g = gen_next()
  redis.call('HSET', H, 'state', 'o')
  redis.call('HDEL', H, 'fails')
  redis.call('SET', OPEN, '1', 'PX', ms)
  redis.call('DEL', PROBE)
  redis.call('PEXPIRE', H, ms + ttl)
  publish('o', g, ms)
  return {'o', g, ms}
end
)lua";

/// n counted failures: ARGV[4] n, [5] threshold, [6] window ms, [7] break ms, [8] ttl ms.
inline constexpr std::string_view breaker_failure = R"lua(
if state_now() ~= 'c' then return current() end
local f = redis.call('HINCRBY', H, 'fails', tonumber(ARGV[4]))
if f >= tonumber(ARGV[5]) then return open_now(tonumber(ARGV[7]), tonumber(ARGV[8])) end
redis.call('HSET', H, 'state', 'c')
redis.call('PEXPIRE', H, tonumber(ARGV[6]))
return {'c', gen_now(), f}
)lua";

/// A success ended a failure streak: the fleet's count starts again.
inline constexpr std::string_view breaker_reset_streak = R"lua(
if state_now() == 'c' then redis.call('HDEL', H, 'fails') end
return current()
)lua";

/// The caller's breaker opened: ARGV[4] break ms, [5] ttl ms, [6] from (c or h).
/// Already OPEN: the fleet's end wins. HALF_OPEN with a live probe elsewhere:
/// the probe decides (unless the caller is the one whose probe failed).
inline constexpr std::string_view breaker_open = R"lua(
local st = state_now()
if st == 'o' then return current() end
if st == 'h' and ARGV[6] ~= 'h' and redis.call('EXISTS', PROBE) == 1 then return current() end
return open_now(tonumber(ARGV[4]), tonumber(ARGV[5]))
)lua";

/// The caller's open period ended: claim the probe. ARGV[4] lease ms, [5] ttl
/// ms, [6] the generation whose open period ended for the caller: a newer one
/// (the fleet reopened meanwhile) is answered, not claimed.
inline constexpr std::string_view breaker_claim = R"lua(
local st = state_now()
if st == 'c' then return current() end
if tonumber(ARGV[6]) ~= gen_now() then return current() end
if st == 'h' and redis.call('EXISTS', PROBE) == 1 then return current() end
local g = gen_next()
local lease = tonumber(ARGV[4])
redis.call('HSET', H, 'state', 'h')
redis.call('SET', PROBE, ORIGIN, 'PX', lease)
redis.call('DEL', OPEN)
redis.call('PEXPIRE', H, lease + tonumber(ARGV[5]))
publish('h', g, lease)
return {'g', g, lease}
)lua";

/// The caller's breaker closed (a probe succeeded, or reset()): ARGV[4] ttl ms.
inline constexpr std::string_view breaker_close = R"lua(
if state_now() == 'c' then return current() end
local g = gen_next()
redis.call('HSET', H, 'state', 'c')
redis.call('HDEL', H, 'fails')
redis.call('DEL', OPEN, PROBE)
redis.call('PEXPIRE', H, tonumber(ARGV[4]))
publish('c', g, 0)
return {'c', g, 0}
)lua";

/// Rejoining: ARGV[4] the local state (c, o, h), [5] its open ms left, [6] ttl ms.
/// The fleet's OPEN or HALF_OPEN wins; a local OPEN the fleet does not know
/// (it opened while Redis was away, or Redis lost its keys) opens the fleet.
inline constexpr std::string_view breaker_sync = R"lua(
local st = state_now()
if st == 'c' and ARGV[4] == 'o' and tonumber(ARGV[5]) > 0 then
  return open_now(tonumber(ARGV[5]), tonumber(ARGV[6]))
end
if st == 'c' then return {'n', 0, 0} end
return current()
)lua";

/// Cooldown: KEYS[1] the scope's cooldown key; ARGV[4] ms (0 = read only).
/// Raises only; answers the fleet's ms left; publishes "ORIGIN SCOPE c MS".
inline constexpr std::string_view cooldown_raise = R"lua(
local cur = redis.call('PTTL', KEYS[1])
local ms = tonumber(ARGV[4])
if ms > 0 and cur < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
  redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' c ' .. ARGV[4])
  return ms
end
if cur < 0 then return 0 end
return cur
)lua";

/// Retry budget: KEYS[1] the scope's budget hash {v, seq}; ARGV[4] delta
/// (thousandths), [5] max, [6] ttl ms. Answers {count, seq}; publishes
/// "ORIGIN SCOPE t COUNT SEQ" (seq, grown like a generation, orders them).
inline constexpr std::string_view budget_add = R"lua(
local max = tonumber(ARGV[5])
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or ARGV[5])
local d = tonumber(ARGV[4])
v = v + d
if v < 0 then v = 0 end
if v > max then v = max end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if now > seq then seq = now else seq = seq + 1 end
local s = string.format('%.0f', v)
local q = string.format('%.0f', seq)
redis.call('HSET', KEYS[1], 'v', s, 'seq', q)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[6]))
if d ~= 0 then redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' t ' .. s .. ' ' .. q) end
return {v, seq}
)lua";

/// Adaptive rate gate: a cut of the scope's rate in some process. KEYS[1]
/// the scope's rate hash {gen, from, to}; ARGV[4] the newest fleet cut's
/// generation the caller had heard of when it cut ('' = read only), [5] the
/// rate cut from, [6] the rate cut to (requests/s, kept for inspection), [7]
/// ttl ms. A caller that had not heard of the newest cut met the same
/// congestion event (or an older one): nothing changes. Else the cut gets a
/// generation (grown like the breaker's), is published as "ORIGIN SCOPE r
/// GEN FROM TO", and the script answers {1, gen}; otherwise {0, gen}.
inline constexpr std::string_view rate_cut = R"lua(
local cur = tonumber(redis.call('HGET', KEYS[1], 'gen') or '0')
if ARGV[4] == '' or tonumber(ARGV[4]) ~= cur then return {0, cur} end
local t = redis.call('TIME')
local g = tonumber(t[1]) * 1000000 + tonumber(t[2])
if g <= cur then g = cur + 1 end
local gs = string.format('%.0f', g)
redis.call('HSET', KEYS[1], 'gen', gs, 'from', ARGV[5], 'to', ARGV[6])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7]))
redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' r ' .. gs .. ' ' .. ARGV[5] .. ' ' .. ARGV[6])
return {1, g}
)lua";

/// The onset cap (docs/fleet.md, "The onset cap"): a semaphore of leases for
/// the requests of a cold scope. KEYS[1] the scope's lease set (a sorted set:
/// lease id -> expiry, server ms), [2] the scope's cooldown key; ARGV[4] the
/// lease id (ORIGIN:N), [5] the cap, [6] the lease ms. Expired leases are
/// dropped first. Answers {1, 0, 0} (granted), {0, COOLDOWN_MS, 0} (the
/// fleet's cooldown holds the scope: no lease), or {0, 0, MS} (full: the
/// oldest lease expires in MS).
inline constexpr std::string_view onset_acquire = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local cool = redis.call('PTTL', KEYS[2])
if cool > 0 then return {0, cool, 0} end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[5]) then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, 0, tonumber(first[2]) - now}
end
local lease = tonumber(ARGV[6])
redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
redis.call('PEXPIRE', KEYS[1], lease)
return {1, 0, 0}
)lua";

/// A lease given back: KEYS[1] the lease set; ARGV[4] the lease id, [5] w
/// (its request succeeded: the scope is warm) or f. Publishes "ORIGIN SCOPE
/// s w|f" when a lease was freed or the scope is warm; answers 1 if the
/// lease was still held.
inline constexpr std::string_view onset_release = R"lua(
local n = redis.call('ZREM', KEYS[1], ARGV[4])
if n == 1 or ARGV[5] == 'w' then
  redis.call('PUBLISH', ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' s ' .. ARGV[5])
end
return n
)lua";

}  // namespace resilience::redis::detail

#endif
