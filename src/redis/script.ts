/**
 * The one Lua script of `cbfetch/redis`, run atomically by Redis. KEYS[1] is a key's record (a
 * hash: `o` opened, `t` retryAt, `n` reopens, `c` closed), KEYS[2] its probe lease. ARGV[1] is
 * the operation, ARGV[2] the caller's clock (epoch ms), ARGV[3] the channel, ARGV[4] the key:
 * - `s` (save) ARGV[5..8] a record, ARGV[9] how long an idle record is kept, ARGV[10] the lease
 *   this save ends: merges (DESIGN §3, the same rule as `mergeRecords`), stores, expires and
 *   publishes the result if it changed, ends the lease, and answers the result;
 * - `r` (release) ARGV[10] the lease to end;
 * - `l` (load): the record, or nothing (and a "miss" on the channel, so a process that holds
 *   the key's state writes it back after Redis lost it);
 * - `p` (probe lease) ARGV[5] the holder, ARGV[6] ms: refused while the record is open before
 *   its retryAt (no lease after a failed probe), else `SET NX PX`; answers granted (1 or 0),
 *   the lease's remaining ms (-1: refused by the record), and the record.
 * Numbers are compared as numbers but stored and answered as the strings the writer sent:
 * Lua's own number formatting keeps 14 digits, too few for epoch ms with a fraction. Garbage
 * found stored counts as no record.
 */
export const SCRIPT = `local k,l,op,now,ch,key=KEYS[1],KEYS[2],ARGV[1],tonumber(ARGV[2]),ARGV[3],ARGV[4]
local function n(s) local x=tonumber(s) if x and x==x and x>=0 and x<math.huge then return x end end
local c=redis.call('HMGET',k,'o','t','n','c')
for i=1,4 do if not n(c[i]) then c=nil break end end
local function open(r) return n(r[1])>0 and n(r[1])>=n(r[4]) end
if op=='l' then
if not c then redis.call('PUBLISH',ch,'m'..key) end
return c end
if op=='p' then
if c and open(c) and now<n(c[2]) then return {0,-1,c} end
if redis.call('SET',l,ARGV[5],'NX','PX',ARGV[6]) then return {1,0,c} end
return {0,redis.call('PTTL',l),c} end
local m={ARGV[5],ARGV[6],ARGV[7],ARGV[8]}
if op=='s' then
local same=c
if c then
local f=c
for i=1,3 do local x,y=n(c[i]),n(m[i]) if x~=y then if y>x then f=m end break end end
m={f[1],f[2],f[3],n(c[4])>=n(m[4]) and c[4] or m[4]}
for i=1,4 do if n(c[i])~=n(m[i]) then same=nil end end
end
if not same then
local t=math.floor((open(m) and n(m[2]) or n(m[4]))+n(ARGV[9])-now)
if t>0 then
redis.call('HSET',k,'o',m[1],'t',m[2],'n',m[3],'c',m[4])
redis.call('PEXPIRE',k,t)
redis.call('PUBLISH',ch,'r'..table.concat(m,',')..','..key)
elseif c then redis.call('DEL',k) end
end
end
if redis.call('GET',l)==ARGV[10] then redis.call('DEL',l) end
return m`;
