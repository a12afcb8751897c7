// The Lua scripts of the Redis store. Each runs atomically on the server; key names are built from
// the prefix as in `redis-keys.ts` (so one Redis server, not Redis Cluster: a commit touches many
// sessions' keys). A script validates first and writes after: a Lua error does not roll back.

/** Shared by the scripts: the session's lease is `"<me> <token>"`, or lapsed with nobody taking it since. */
const HOLDS = `
local function holds(key, me, token, leaseMs)
  local mine = me .. ' ' .. token
  local lease = redis.call('GET', key .. ':lease')
  if lease == mine then return true end
  -- Expired while Redis or this instance was away, and nobody acquired it since: still ours.
  if lease == false and redis.call('GET', key .. ':fence') == token then
    redis.call('SET', key .. ':lease', mine, 'PX', leaseMs)
    return true
  end
  return false
end
`;

/**
 * A commit: ARGV = prefix, instanceId, batchId, leaseMs, groupCount, then per session group
 * sessionId, token, n and n op arguments. Ops (letter and arguments):
 * S state openedAt approvalVersion closedAt closeReason (each nullable one '' or '=<value>') |
 * E seq json | T firstSeq | N id json | D id seq | W id | A id view-json | R id outcome decision |
 * P id record-json | X processId | Z.
 * Returns per group `sessionId, status`: `ok`, `applied` (this batch was applied before: its reply
 * was lost), `fenced:<owner>` (the lease is not ours; owner empty when nobody holds it) or
 * `gap:<lastSeq>:<seq>` (an event out of seq order).
 * Nothing in the write phase can fail (no JSON is decoded: a record's fields come as separate
 * strings), so a batch is applied whole or, per group, not at all.
 */
export const COMMIT = `${HOLDS}
local prefix, me, batch, leaseMs = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local ARITY = { S = 5, E = 2, T = 1, N = 2, D = 2, W = 1, A = 2, R = 3, P = 2, X = 1, Z = 0 }
local groups, out, i = {}, {}, 6
for g = 1, tonumber(ARGV[5]) do
  local sid, token, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local group = { sid = sid, key = prefix .. 's:' .. sid, first = i + 3, last = i + 2 + n }
  i = group.last + 1
  local status = 'ok'
  if not holds(group.key, me, token, leaseMs) then
    local lease = redis.call('GET', group.key .. ':lease')
    status = 'fenced:' .. (lease and string.match(lease, '^([^%s/]+)') or '')
  elseif redis.call('HGET', group.key, 'batch') == batch then
    status = 'applied'
  else
    local expected = tonumber(redis.call('HGET', group.key, 'lastSeq') or '0')
    local j = group.first
    while j <= group.last do
      local op = ARGV[j]
      if op == 'E' then
        local seq = tonumber(ARGV[j + 1])
        if seq ~= expected + 1 then
          status = 'gap:' .. expected .. ':' .. seq
          break
        end
        expected = seq
      elseif op == 'Z' then
        expected = 0
      end
      j = j + 1 + ARITY[op]
    end
  end
  group.ok = status == 'ok'
  groups[g] = group
  out[#out + 1] = sid
  out[#out + 1] = status
end

-- A nullable field comes as '' (null) or its value after a '=' (so that '' stays a value).
local function putSession(g, state, openedAt, approvalVersion, closedAt, closeReason)
  redis.call('HSET', g.key, 'state', state, 'openedAt', openedAt, 'approvalVersion', approvalVersion,
    'owner', me)
  for field, value in pairs({ closedAt = closedAt, closeReason = closeReason }) do
    if value == '' then redis.call('HDEL', g.key, field)
    else redis.call('HSET', g.key, field, string.sub(value, 2)) end
  end
  if state == 'closed' then redis.call('SREM', prefix .. 'sessions', g.sid)
  else redis.call('SADD', prefix .. 'sessions', g.sid) end
end

local function trim(g, firstSeq)
  redis.call('XTRIM', g.key .. ':tape', 'MINID', firstSeq .. '-0')
  redis.call('HSET', g.key, 'firstSeq', firstSeq)
  -- A settled notification goes with its event; a completion stays while its process is kept.
  local settled = redis.call('ZRANGEBYSCORE', g.key .. ':delivered', '-inf', '(' .. firstSeq)
  for _, id in ipairs(settled) do
    if string.sub(id, -11) ~= ':completion'
      or redis.call('HEXISTS', g.key .. ':processes', string.sub(id, 1, -12)) == 0 then
      redis.call('ZREM', g.key .. ':delivered', id)
    end
  end
end

local function resolve(g, id, outcome, decision)
  local approvals = g.key .. ':approvals'
  local current = redis.call('HGET', approvals, id)
  if not current then return end
  local at = string.find(current, ',"view":', 1, true)
  local n = string.match(current, '^{"n":(%d+)')
  -- Not written by this script: left as it is rather than failing half-way through the batch.
  if not at or not n then return end
  redis.call('HSET', approvals, id, '{"n":' .. n .. ',"outcome":' .. cjson.encode(outcome) ..
    ',"decision":' .. (decision == '' and 'null' or cjson.encode(decision)) .. string.sub(current, at))
end

local function apply(g)
  local a, j = ARGV, g.first
  while j <= g.last do
    local op = a[j]
    if op == 'S' then putSession(g, a[j + 1], a[j + 2], a[j + 3], a[j + 4], a[j + 5])
    elseif op == 'E' then
      redis.call('XADD', g.key .. ':tape', a[j + 1] .. '-0', 'e', a[j + 2])
      redis.call('HSET', g.key, 'lastSeq', a[j + 1])
      redis.call('HSETNX', g.key, 'firstSeq', a[j + 1])
    elseif op == 'T' then trim(g, a[j + 1])
    elseif op == 'N' then redis.call('HSET', g.key .. ':pending', a[j + 1], a[j + 2])
    elseif op == 'D' then
      redis.call('HDEL', g.key .. ':pending', a[j + 1])
      redis.call('ZADD', g.key .. ':delivered', a[j + 2], a[j + 1])
    elseif op == 'W' then redis.call('HDEL', g.key .. ':pending', a[j + 1])
    elseif op == 'A' then
      local n = redis.call('HINCRBY', g.key, 'approvalSeq', 1)
      redis.call('HSET', g.key .. ':approvals', a[j + 1],
        '{"n":' .. n .. ',"outcome":null,"decision":null,"view":' .. a[j + 2] .. '}')
    elseif op == 'R' then resolve(g, a[j + 1], a[j + 2], a[j + 3])
    elseif op == 'P' then
      redis.call('HSET', g.key .. ':processes', a[j + 1],
        '{"instanceId":' .. cjson.encode(me) .. ',"record":' .. a[j + 2] .. '}')
    elseif op == 'X' then
      -- A completion still pending stays pending: it is delivered after its process is forgotten.
      redis.call('HDEL', g.key .. ':processes', a[j + 1])
      redis.call('ZREM', g.key .. ':delivered', a[j + 1] .. ':completion')
    elseif op == 'Z' then
      -- The fence stays: tokens must keep growing if the id is used again.
      redis.call('DEL', g.key, g.key .. ':tape', g.key .. ':pending', g.key .. ':delivered',
        g.key .. ':approvals', g.key .. ':processes', g.key .. ':lease')
      redis.call('SREM', prefix .. 'sessions', g.sid)
    end
    j = j + 1 + ARITY[op]
  end
  if redis.call('EXISTS', g.key) == 1 then redis.call('HSET', g.key, 'batch', batch) end
end

for _, g in ipairs(groups) do
  if g.ok then apply(g) end
end
return out
`;

/**
 * Takes a session's lease: ARGV = prefix, instanceId, sessionId, leaseMs. Returns
 * `owned, <owner>, <owner's instance JSON or ''>` when another instance holds it, else
 * `ok, <token>, <state or ''>`. What a closed session left (its owner died before forgetting it) goes.
 */
export const CLAIM = `
local prefix, me, sid, leaseMs = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local key = prefix .. 's:' .. sid
local lease = redis.call('GET', key .. ':lease')
if lease then
  local owner = string.match(lease, '^(%S+) ')
  if owner ~= me then
    return { 'owned', owner, redis.call('HGET', prefix .. 'instances', owner) or '' }
  end
end
local state = redis.call('HGET', key, 'state') or ''
if state == 'closed' then
  redis.call('DEL', key, key .. ':tape', key .. ':pending', key .. ':delivered', key .. ':approvals',
    key .. ':processes')
  state = ''
end
local token = redis.call('INCR', key .. ':fence')
redis.call('SET', key .. ':lease', me .. ' ' .. token, 'PX', leaseMs)
if state ~= '' then redis.call('HSET', key, 'owner', me) end
return { 'ok', tostring(token), state }
`;

/**
 * Renews this instance and every lease it holds: ARGV = prefix, instanceId, leaseMs, instance JSON,
 * then sessionId, token pairs. Returns the sessions whose lease another instance took.
 */
export const RENEW = `${HOLDS}
local prefix, me, leaseMs = ARGV[1], ARGV[2], tonumber(ARGV[3])
redis.call('SET', prefix .. 'instance:' .. me, ARGV[4], 'PX', leaseMs)
redis.call('HSET', prefix .. 'instances', me, ARGV[4])
local lost = {}
for i = 5, #ARGV, 2 do
  local key = prefix .. 's:' .. ARGV[i]
  if holds(key, me, ARGV[i + 1], leaseMs) then redis.call('PEXPIRE', key .. ':lease', leaseMs)
  else lost[#lost + 1] = ARGV[i] end
end
return lost
`;

/**
 * Gives up leases: ARGV = prefix, instanceId, leaving (`1`: the instance closes, its presence goes
 * too), then sessionId, token pairs. A lease another instance took is left alone.
 */
export const RELEASE = `
local prefix, me = ARGV[1], ARGV[2]
for i = 4, #ARGV, 2 do
  local key = prefix .. 's:' .. ARGV[i] .. ':lease'
  if redis.call('GET', key) == me .. ' ' .. ARGV[i + 1] then redis.call('DEL', key) end
end
if ARGV[3] == '1' then
  redis.call('DEL', prefix .. 'instance:' .. me)
  redis.call('HDEL', prefix .. 'instances', me)
end
return 1
`;
