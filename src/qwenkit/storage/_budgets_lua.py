"""The Lua scripts of the Redis budget counters: one script per operation, each atomic.

Keys (``B`` is the store's base, ``<prefix>{<prefix>budgets}:``, see ``_budgets_redis``):

- ``B c:<window>:<scope>``: a counter, a hash ``{s: spent, r: reserved}`` (integers), expiring
  ``grace`` after its window ends;
- ``B z``: the held reservations, a sorted set of ids scored by ``expires_at``;
- ``B r:<id>``: one held reservation, a hash ``{counter key: amount}``;
- ``B t:<id>``: the marker of a reservation released by the sweep (kept ``keep`` seconds so a
  late settle still adds what was spent).

Every script first runs ``SWEEP``: up to ``batch`` reservations with ``expires_at <= now`` give
their holds back and become markers. The sweep touches counter keys that are not in ``KEYS``
(they are only known from the reservation hashes): fine on a single node, and on a cluster
because every key of one store shares one hash tag, hence one slot.

Amounts stay strings end to end (``HINCRBY`` takes them as given); only the fit check turns
them into Lua numbers (doubles: exact up to 2**53 nano-units, 9 million currency units).
Times come from the caller's clock (``ARGV``), never from Redis, and every expiry is relative
(``PEXPIRE``/``PX``, in milliseconds), so an injected clock works against a real server.
"""

from __future__ import annotations

__all__ = ["READ", "RESERVE", "SETTLE"]

SWEEP = """
local function sweep(zset, base, now, batch, keep_ms)
  local ids = redis.call('ZRANGEBYSCORE', zset, '-inf', now, 'LIMIT', 0, batch)
  for _, id in ipairs(ids) do
    local rkey = base .. 'r:' .. id
    local held = redis.call('HGETALL', rkey)
    for i = 1, #held, 2 do
      if held[i + 1] ~= '0' and redis.call('EXISTS', held[i]) == 1 then
        redis.call('HINCRBY', held[i], 'r', '-' .. held[i + 1])
      end
    end
    redis.call('DEL', rkey)
    redis.call('SET', base .. 't:' .. id, '1', 'PX', keep_ms)
  end
  if #ids > 0 then
    redis.call('ZREM', zset, unpack(ids))
  end
end
"""

RESERVE = (
    SWEEP
    + """
-- KEYS: zset, reservation, counter...
-- ARGV: base, now, batch, keep_ms, id, expires_at, hold_ms, then per counter amount, limit, ttl_ms
sweep(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
local n = #KEYS - 2
for i = 1, n do
  local j = 8 + 3 * (i - 1)
  local v = redis.call('HMGET', KEYS[i + 2], 's', 'r')
  local spent = v[1] or '0'
  local held = v[2] or '0'
  if tonumber(spent) + tonumber(held) + tonumber(ARGV[j]) > tonumber(ARGV[j + 1]) then
    return {i, spent, held}
  end
end
local items = {}
for i = 1, n do
  local j = 8 + 3 * (i - 1)
  local key = KEYS[i + 2]
  redis.call('HINCRBY', key, 'r', ARGV[j])
  redis.call('PEXPIRE', key, ARGV[j + 2])
  items[#items + 1] = key
  items[#items + 1] = ARGV[j]
end
redis.call('HSET', KEYS[2], unpack(items))
redis.call('PEXPIRE', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[1], ARGV[6], ARGV[5])
return 0
"""
)
"""Hold every charge if all fit; else ``{index (1-based), spent, reserved}`` of the first that
does not, nothing changed."""

SETTLE = (
    SWEEP
    + """
-- KEYS: zset, reservation, marker, counter...
-- ARGV: base, now, batch, keep_ms, id, then per counter the amount used
sweep(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
local n = #KEYS - 3
local function spend()
  for i = 1, n do
    local used = ARGV[5 + i]
    if used ~= '0' and redis.call('EXISTS', KEYS[i + 3]) == 1 then
      redis.call('HINCRBY', KEYS[i + 3], 's', used)
    end
  end
end
local held = redis.call('HGETALL', KEYS[2])
if #held > 0 then
  for i = 1, #held, 2 do
    if held[i + 1] ~= '0' and redis.call('EXISTS', held[i]) == 1 then
      redis.call('HINCRBY', held[i], 'r', '-' .. held[i + 1])
    end
  end
  spend()
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[1], ARGV[5])
  return 1
end
if redis.call('DEL', KEYS[3]) == 1 then
  spend()
  return 2
end
return 0
"""
)
"""Held: release and spend (1); released by the sweep: spend only (2); settled already: 0."""

READ = (
    SWEEP
    + """
-- KEYS: zset, counter...; ARGV: base, now, batch, keep_ms
sweep(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4])
local out = {}
for i = 2, #KEYS do
  local v = redis.call('HMGET', KEYS[i], 's', 'r')
  out[#out + 1] = v[1] or '0'
  out[#out + 1] = v[2] or '0'
end
return out
"""
)
"""``{spent, reserved, ...}`` of each counter after the sweep."""
