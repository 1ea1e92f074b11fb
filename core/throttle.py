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

    def reset(self, campaign_id: int) -> None:
        """Forgets a campaign's timeline (after a long pause the next batch starts now, not in a burst)."""
        self._redis.delete(f"smsconnect:throttle:campaign:{campaign_id}")
