"""Send-rate limits shared by every worker: GCRA in one Redis Lua call per batch."""

from __future__ import annotations

import math
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


# Up to 4 messages a second, one message more in a sliding second is a burst of 1.25 times the rate or more, and a send
# that reaches the provider a few ms late (a new connection, a busy CPU) lets the next one in early. So there each
# handover also waits for the latest moment by which the provider had the handover `per_span` places back, plus one
# `span`, whichever worker sent it. That moment is the provider's answer, or the transit allowance (GATE_TRANSIT_S)
# after the handover if it answers later, so a slow gateway costs the allowance per span, never its round trip.
# No second then holds more than `per_span` receipts (span = one second, per_span = the rate per second rounded up;
# slower than 1/s: one receipt per interval). The simulator answers in 3 to 5 ms: about 0.5% of the rate. Above
# 4/s one message of jitter stays under 1.25 times the rate.
GATE_UP_TO_PER_S = 4.0
GATE_TRANSIT_S = 0.010  # a gateway is taken to have a message this long after its handover at the latest
# (Settings.throttle_transit_ms)

# KEYS[1] a sorted set: the latest moments by which the provider had each handover (Redis time, s), KEYS[2] a counter.
# ARGV[1] span (s), ARGV[2] per_span, ARGV[3] transit allowance (s), ARGV[4] expiry (s). Returns {token, wait, now}:
# the caller hands over after `wait` seconds, and that handover counts as had by the provider the allowance later
# until ACKED says better.
GATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local per_span = tonumber(ARGV[2])
local wait = 0
local back = redis.call('ZREVRANGE', KEYS[1], per_span - 1, per_span - 1, 'WITHSCORES')
if back[2] then wait = tonumber(back[2]) + tonumber(ARGV[1]) - now end
if wait < 0 then wait = 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], now + wait + tonumber(ARGV[3]), token)
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(per_span + 1))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return {token, tostring(wait), tostring(now)}
"""

# KEYS[1] as GATE; ARGV[1] the token, ARGV[2] the handover's time plus the allowance (Redis time, s), ARGV[3] per_span.
# Called once the provider answered: it had the message by then, or by the handover plus the allowance if sooner.
ACKED = """
local t = redis.call('TIME')
local had = tonumber(t[1]) + tonumber(t[2]) / 1000000
if tonumber(ARGV[2]) < had then had = tonumber(ARGV[2]) end
redis.call('ZADD', KEYS[1], had, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
return 1
"""


class Gate:
    """At most `per_span` receipts in any `span` seconds despite the transport's jitter (see GATE_UP_TO_PER_S)."""

    def __init__(self, connection: redis.Redis, key: str, span: float, per_span: int,
                 transit_s: float = GATE_TRANSIT_S) -> None:
        self._keys = [f"{key}:had", f"{key}:seq"]
        self._span, self._per_span, self._transit = span, per_span, transit_s
        self._gate = connection.register_script(GATE)
        self._acked = connection.register_script(ACKED)
        self._offsets: dict[int, float] = {}  # token → Redis time minus local monotonic time, rounded up

    @classmethod
    def for_interval(cls, connection: redis.Redis, key: str, interval: float,
                     transit_s: float = GATE_TRANSIT_S) -> Gate:
        """One receipt per interval from 1 s up; below, per second as many as the rate rounded up."""
        if interval >= 1.0:
            return cls(connection, key, interval, 1, transit_s)
        return cls(connection, key, 1.0, math.ceil(1.0 / interval - 1e-9), transit_s)

    def enter(self) -> int:
        """Blocks until this worker may hand over the next message; returns the handover's token for `leave`."""
        asked = time.monotonic()
        token, wait, now = self._gate(keys=self._keys, args=[repr(self._span), self._per_span, repr(self._transit),
                                                             int(self._span * 2 + 3600)])
        # Redis's clock read `now` after `asked`: counting from `asked` maps a local time to a Redis time no earlier
        # than the true one. The wait runs on the local clock from the reply: Redis's had moved on as far by then.
        self._offsets[int(token)] = float(now) - asked
        time.sleep(float(wait))
        return int(token)

    def leave(self, token: int, handed_over: float) -> None:
        """The provider answered (or failed) the handover of `token`, made at `handed_over` (time.monotonic()).
        The handover's own time counts, not the gate's: a worker held up in between hands over later."""
        latest = handed_over + self._offsets.pop(token) + self._transit
        self._acked(keys=self._keys[:1], args=[token, repr(latest), self._per_span])


CAMPAIGN_KEY = "smsconnect:throttle:campaign:{}"
WORKSPACE_KEY = "smsconnect:throttle:ws:{}"


def _intervals(per_hour: int, workspace_per_hour: int | None) -> tuple[float, float]:
    """(campaign interval, workspace interval or 0 when there is no cap), in seconds."""
    return 3600.0 / per_hour, 3600.0 / workspace_per_hour if workspace_per_hour else 0.0


class Throttle:
    """Reserves evenly spaced send times for a batch, for a campaign and optionally its workspace."""

    def __init__(self, connection: redis.Redis, transit_s: float = GATE_TRANSIT_S) -> None:
        self._redis = connection
        self._transit = transit_s  # for the handover gate
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
        tc, tw = _intervals(per_hour, workspace_per_hour)
        start, now = self._reserve(keys=[CAMPAIGN_KEY.format(campaign_id), WORKSPACE_KEY.format(workspace_id)],
                                   args=[n, repr(tc), repr(tw)])
        return float(start), float(now), max(tc, tw)

    def gate(self, campaign_id: int, workspace_id: int, per_hour: int,
             workspace_per_hour: int | None = None) -> Gate | None:
        """The handover gate for rates up to GATE_UP_TO_PER_S (None above). The workspace's cap keys it
        when that is the slower rate, so every campaign of the workspace passes the same gate."""
        tc, tw = _intervals(per_hour, workspace_per_hour)
        if max(tc, tw) * GATE_UP_TO_PER_S < 1.0:
            return None
        key = WORKSPACE_KEY.format(workspace_id) if tw >= tc else CAMPAIGN_KEY.format(campaign_id)
        return Gate.for_interval(self._redis, f"{key}:handover", max(tc, tw), self._transit)

    def reset(self, campaign_id: int) -> None:
        """Forgets a campaign's timeline (after a long pause the next batch starts now, not in a burst)."""
        self._redis.delete(CAMPAIGN_KEY.format(campaign_id))
