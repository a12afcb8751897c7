// The Lua scripts of the Redis store. Each runs atomically on the server; key names are built from
// the prefix as in `redis-keys.ts` (so one Redis server, not Redis Cluster: a commit touches many
// sessions' keys). A script validates first and writes after: a Lua error does not roll back.

/** How many arguments follow each op letter of a commit group (see `COMMIT`). */
export const OP_ARITY: Readonly<Record<string, number>> = {
  S: 5,
  E: 2,
  T: 1,
  N: 2,
  D: 2,
  W: 1,
  A: 2,
  R: 3,
  P: 2,
  X: 1,
  Z: 0,
};

/** The op letters of a commit group's arguments, in order. */
export function opLetters(ops: readonly string[]): string[] {
  const letters: string[] = [];
  for (let j = 0; j < ops.length; j += 1 + (OP_ARITY[ops[j]!] ?? 0)) letters.push(ops[j]!);
  return letters;
}

const LUA_ARITY = `{ ${Object.entries(OP_ARITY)
  .map(([op, n]) => `${op} = ${n}`)
  .join(', ')} }`;

/**
 * Shared by the scripts: the session's lease is `"<holder> <token>"` (holder = `<instanceId>/<nonce>`,
 * one process), or lapsed with nobody taking it since.
 */
const HOLDS = `
local function holds(key, holder, token, leaseMs)
  local mine = holder .. ' ' .. token
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
 * A commit: ARGV = prefix, holder (`<instanceId>/<nonce>`), batchId (`<process>:<n>`, n rising), leaseMs, groupCount, then per session group
 * sessionId, token, n and n op arguments. Ops (letter and arguments):
 * S state openedAt approvalVersion closedAt closeReason (each nullable one '' or '=<value>') |
 * E seq json | T firstSeq | N id json | D id seq | W id | A id view-json | R id outcome decision |
 * P id record-json | X processId | Z.
 * Returns per group `sessionId, status`: `ok`, `applied` (this batch, or a later one of the same
 * process, was applied before: its reply was lost), `fenced:<owner>` (the lease is not ours; owner
 * empty when nobody holds it) or `gap:<lastSeq>:<seq>` (an event out of seq order).
 * Nothing in the write phase can fail (no JSON is decoded: a record's fields come as separate
 * strings), so a batch is applied whole or, per group, not at all.
 */
export const COMMIT = `${HOLDS}
local prefix, holder, batch, leaseMs = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local me = string.match(holder, '^[^/]*')
-- A batch id is '<process>:<n>', n rising: a copy of this batch or of an older one was applied.
local process, number = string.match(batch, '^(.*):(%d+)$')
local function applied(key)
  local last = redis.call('HGET', key, 'batch')
  if not last then return false end
  local lastProcess, lastNumber = string.match(last, '^(.*):(%d+)$')
  return lastProcess == process and tonumber(lastNumber) >= tonumber(number)
end
local ARITY = ${LUA_ARITY}
local groups, out, i = {}, {}, 6
for g = 1, tonumber(ARGV[5]) do
  local sid, token, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local group = { sid = sid, key = prefix .. 's:' .. sid, first = i + 3, last = i + 2 + n }
  i = group.last + 1
  local status = 'ok'
  if not holds(group.key, holder, token, leaseMs) then
    local lease = redis.call('GET', group.key .. ':lease')
    status = 'fenced:' .. (lease and string.match(lease, '^([^%s/]+)') or '')
  elseif applied(group.key) then
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
 * Takes a session's lease: ARGV = prefix, holder (`<instanceId>/<nonce>`), sessionId, leaseMs,
 * mode, previous. A lease held by another holder is respected, even one of this instance id (a
 * second live process with the same id), except `previous`: the holder that last ran on this
 * instance's stateDir, dead since this process holds the stateDir's lock. Mode `scan` (the
 * failover scan) takes only a session without a lease whose recorded owner is not alive either (a
 * Redis outage expired the leases of live owners: they renew them when it returns). Returns
 * `owned, <owner id>, <owner's instance JSON or ''>` when it is not free, else
 * `ok, <token>, <state or ''>`. What a closed session left (its owner died before forgetting it) goes.
 */
export const CLAIM = `
local prefix, holder, sid, leaseMs = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local mode, previous = ARGV[5], ARGV[6]
local me = string.match(holder, '^[^/]*')
local key = prefix .. 's:' .. sid
local function owned(owner)
  return { 'owned', owner, redis.call('HGET', prefix .. 'instances', owner) or '' }
end
local lease = redis.call('GET', key .. ':lease')
if lease then
  local owner = string.match(lease, '^(%S+) ')
  if owner ~= holder and owner ~= previous then return owned(string.match(owner, '^[^/]*')) end
end
if mode == 'scan' then
  if lease then return owned(string.match(lease, '^[^/ ]*')) end
  local recorded = redis.call('HGET', key, 'owner')
  if recorded and recorded ~= me and redis.call('EXISTS', prefix .. 'instance:' .. recorded) == 1 then
    return owned(recorded)
  end
end
local state = redis.call('HGET', key, 'state') or ''
if state == 'closed' then
  redis.call('DEL', key, key .. ':tape', key .. ':pending', key .. ':delivered', key .. ':approvals',
    key .. ':processes')
  state = ''
end
local token = redis.call('INCR', key .. ':fence')
redis.call('SET', key .. ':lease', holder .. ' ' .. token, 'PX', leaseMs)
if state ~= '' then redis.call('HSET', key, 'owner', me) end
return { 'ok', tostring(token), state }
`;

/**
 * Renews this instance and every lease it holds: ARGV = prefix, holder, leaseMs, instance JSON,
 * then sessionId, token pairs. Returns the sessions whose lease another holder took.
 */
export const RENEW = `${HOLDS}
local prefix, holder, leaseMs = ARGV[1], ARGV[2], tonumber(ARGV[3])
local me = string.match(holder, '^[^/]*')
redis.call('SET', prefix .. 'instance:' .. me, ARGV[4], 'PX', leaseMs)
redis.call('HSET', prefix .. 'instances', me, ARGV[4])
local lost = {}
for i = 5, #ARGV, 2 do
  local key = prefix .. 's:' .. ARGV[i]
  if holds(key, holder, ARGV[i + 1], leaseMs) then redis.call('PEXPIRE', key .. ':lease', leaseMs)
  else lost[#lost + 1] = ARGV[i] end
end
return lost
`;

/**
 * Gives up leases: ARGV = prefix, holder, leaving (`1`: the instance closes, its presence goes
 * too), then sessionId, token pairs. A lease another instance took is left alone.
 */
export const RELEASE = `
local prefix, holder = ARGV[1], ARGV[2]
local me = string.match(holder, '^[^/]*')
for i = 4, #ARGV, 2 do
  local key = prefix .. 's:' .. ARGV[i] .. ':lease'
  if redis.call('GET', key) == holder .. ' ' .. ARGV[i + 1] then redis.call('DEL', key) end
end
if ARGV[3] == '1' then
  redis.call('DEL', prefix .. 'instance:' .. me)
  redis.call('HDEL', prefix .. 'instances', me)
end
return 1
`;
