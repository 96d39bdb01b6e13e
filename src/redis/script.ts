/**
 * The one Lua script of `cbfetch/redis`, run atomically by Redis. KEYS[1] is a key's record (a
 * hash: opened, retryAt, reopens, closed), KEYS[2] its probe lease. ARGV[1] is the operation,
 * ARGV[2] the caller's clock (epoch ms), ARGV[3] the channel, ARGV[4] the breaker's key:
 * - `s` (save) ARGV[5..8] a record, ARGV[9] how long an idle record is kept, ARGV[10] the lease
 *   this save ends (or ""): merges (DESIGN §3, the same rule as `mergeRecords`), stores and
 *   publishes the result if it changed, and answers it;
 * - `l` (load): the record, or nothing (and a "miss" on the channel, so a process that holds
 *   the key's state writes it back after Redis lost it);
 * - `p` (probe lease) ARGV[5] the holder, ARGV[6] ms: refused while the record is open before
 *   its retryAt (no lease after a failed probe), else `SET NX PX`; answers granted (1 or 0),
 *   the lease's remaining ms (-1: refused by the record), and the record;
 * - `r` (release) ARGV[5] the holder: ends its lease.
 * Numbers are compared as numbers but stored and answered as the strings the writer sent:
 * Lua's own number formatting keeps 14 digits, too few for epoch ms with a fraction.
 */
export const SCRIPT = `local k,op,now,ch,key=KEYS[1],ARGV[1],tonumber(ARGV[2]),ARGV[3],ARGV[4]
local function num(s) local n=tonumber(s) if n and n==n and n>=0 and n<math.huge then return n end end
local function read()
local f=redis.call('HMGET',k,'opened','retryAt','reopens','closed')
for i=1,4 do if not num(f[i]) then return nil end end
return f end
local function open(r) local o=num(r[1]) return o>0 and o>=num(r[4]) end
local cur=read()
if op=='l' then
if not cur then redis.call('PUBLISH',ch,'m'..key) end
return cur end
if op=='r' then
if redis.call('GET',KEYS[2])==ARGV[5] then redis.call('DEL',KEYS[2]) end
return nil end
if op=='p' then
if cur and open(cur) and now<num(cur[2]) then return {0,-1,cur} end
if redis.call('SET',KEYS[2],ARGV[5],'NX','PX',ARGV[6]) then return {1,0,cur} end
return {0,redis.call('PTTL',KEYS[2]),cur} end
local m={ARGV[5],ARGV[6],ARGV[7],ARGV[8]}
for i=1,4 do if not num(m[i]) then return redis.error_reply('bad record') end end
if cur then
local a,b=cur,m
local first
if num(a[1])~=num(b[1]) then first=num(a[1])>num(b[1])
elseif num(a[2])~=num(b[2]) then first=num(a[2])>num(b[2])
else first=num(a[3])>=num(b[3]) end
local f=first and a or b
m={f[1],f[2],f[3],num(a[4])>=num(b[4]) and a[4] or b[4]}
end
local same=cur
if cur then for i=1,4 do if num(cur[i])~=num(m[i]) then same=nil end end end
if not same then
local ttl=math.floor((open(m) and num(m[2]) or num(m[4]))+num(ARGV[9])-now)
if ttl>0 then
redis.call('HSET',k,'opened',m[1],'retryAt',m[2],'reopens',m[3],'closed',m[4])
redis.call('PEXPIRE',k,ttl)
redis.call('PUBLISH',ch,'r'..m[1]..','..m[2]..','..m[3]..','..m[4]..','..key)
elseif cur then redis.call('DEL',k) end
end
if ARGV[10]~='' and redis.call('GET',KEYS[2])==ARGV[10] then redis.call('DEL',KEYS[2]) end
return m`;
