"""Send-rate limits shared by every worker: GCRA in one Redis Lua call per batch."""

from __future__ import annotations

import time

import redis

# KEYS[1] campaign TAT key, KEYS[2] workspace TAT key (may be unused)
# ARGV[1] n messages, ARGV[2] campaign interval (s), ARGV[3] workspace interval (s, 0 = none)
# Returns {first slot, Redis now} (seconds, as strings). Slot i is first + i * max(intervals). The clock is
# Redis's own (TIME), so workers on machines with skewed clocks still share one timeline; both TATs move on, so
# any number of workers reserving at once get disjoint, evenly spaced slots.
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = tonumber(ARGV[1])
local tc = tonumber(ARGV[2])
local tw = tonumber(ARGV[3])
local start = now
local tat_c = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat_c > start then start = tat_c end
if tw > 0 then
  local tat_w = tonumber(redis.call('GET', KEYS[2]) or '0')
  if tat_w > start then start = tat_w end
end
local step = tc
if tw > step then step = tw end
local ttl = math.ceil(n * step + 3600)
redis.call('SET', KEYS[1], tostring(start + n * step), 'EX', ttl)
if tw > 0 then redis.call('SET', KEYS[2], tostring(start + n * tw), 'EX', ttl) end
return {tostring(start), tostring(now)}
"""


# At one message a second or slower, the sliding-second measure has room for one message only, and a send that
# reaches the provider a few ms late or early (a new connection, a busy CPU) puts two in one second. So there each
# handover also waits a full interval after the provider acknowledged the previous one, whichever worker sent it:
# the provider received it before the acknowledgement, and receives the next one after its handover, so two
# receipts are never closer than the interval. It costs the acknowledgement's round trip per message (~0.5% of
# the rate at 1/s); at faster rates the measure spans several messages and the jitter does not matter.
GATE_MIN_INTERVAL_S = 1.0
GATE_IN_FLIGHT_MS = 10_000  # a worker killed mid-send holds the others this long at most

# KEYS[1] when the last handover was acknowledged (Redis time, s), KEYS[2] a handover in flight.
# ARGV[1] interval (s), ARGV[2] in-flight expiry (ms). Returns {1, wait}: the caller's handover is now in flight
# and may go after `wait` seconds; or {0, wait}: another worker's is in flight, ask again after `wait` seconds.
GATE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return {0, '0.002'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(ARGV[1]) - now
if wait < 0 then wait = 0 end
redis.call('SET', KEYS[2], '1', 'PX', math.ceil(wait * 1000) + tonumber(ARGV[2]))
return {1, tostring(wait)}
"""

# KEYS as GATE; ARGV[1] expiry of the acknowledgement time (s). Called once the provider answered.
ACKED = """
local t = redis.call('TIME')
redis.call('SET', KEYS[1], tostring(tonumber(t[1]) + tonumber(t[2]) / 1000000), 'EX', ARGV[1])
redis.call('DEL', KEYS[2])
return 1
"""


class Gate:
    """Spaces handovers a full interval after the provider acknowledged the previous one (see GATE_MIN_INTERVAL_S)."""

    def __init__(self, connection: redis.Redis, key: str, interval: float) -> None:
        self._keys = [f"{key}:acked", f"{key}:in-flight"]
        self._interval = interval
        self._gate = connection.register_script(GATE)
        self._acked = connection.register_script(ACKED)

    def enter(self) -> None:
        """Blocks until this worker may hand over the next message."""
        while True:
            mine, wait = self._gate(keys=self._keys, args=[repr(self._interval), GATE_IN_FLIGHT_MS])
            # Waits on the local clock from the reply: Redis's clock had moved on at least as far by then.
            time.sleep(float(wait))
            if mine:
                return

    def leave(self) -> None:
        """The provider answered (or failed): the next handover counts its interval from now."""
        self._acked(keys=self._keys, args=[int(self._interval * 2 + 3600)])


class Throttle:
    """Reserves evenly spaced send times for a batch, for a campaign and optionally its workspace."""

    def __init__(self, connection: redis.Redis) -> None:
        self._redis = connection
        self._reserve = connection.register_script(RESERVE)

    def reserve(self, campaign_id: int, workspace_id: int, n: int, per_hour: int,
                workspace_per_hour: int | None = None) -> list[float]:
        """Local monotonic times (time.monotonic()) at which each of the n messages may be handed over."""
        if n <= 0:
            return []
        start, redis_now, step = self.reserve_on_redis_clock(campaign_id, workspace_id, n, per_hour, workspace_per_hour)
        # Counted from when the reply arrived, so a slot is never early by the round trip.
        first = time.monotonic() + (start - redis_now)
        return [first + i * step for i in range(n)]

    def reserve_on_redis_clock(self, campaign_id: int, workspace_id: int, n: int, per_hour: int,
                               workspace_per_hour: int | None = None) -> tuple[float, float, float]:
        """(first slot, Redis's now, spacing) in seconds on the Redis server's clock."""
        tc = 3600.0 / per_hour
        tw = 3600.0 / workspace_per_hour if workspace_per_hour else 0.0
        start, now = self._reserve(
            keys=[f"smsconnect:throttle:campaign:{campaign_id}", f"smsconnect:throttle:ws:{workspace_id}"],
            args=[n, repr(tc), repr(tw)],
        )
        return float(start), float(now), max(tc, tw)

    def gate(self, campaign_id: int, workspace_id: int, per_hour: int,
             workspace_per_hour: int | None = None) -> Gate | None:
        """The handover gate for rates of one message a second or slower (None at faster rates). The workspace's
        cap keys it when that is the slower rate, so every campaign of the workspace passes the same gate."""
        tc = 3600.0 / per_hour
        tw = 3600.0 / workspace_per_hour if workspace_per_hour else 0.0
        if max(tc, tw) < GATE_MIN_INTERVAL_S:
            return None
        key = f"smsconnect:throttle:ws:{workspace_id}" if tw >= tc else f"smsconnect:throttle:campaign:{campaign_id}"
        return Gate(self._redis, f"{key}:gate", max(tc, tw))

    def reset(self, campaign_id: int) -> None:
        """Forgets a campaign's timeline (after a long pause the next batch starts now, not in a burst)."""
        self._redis.delete(f"smsconnect:throttle:campaign:{campaign_id}")
