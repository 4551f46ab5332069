/* convstore: each conversation's SLA state in Redis, the source of truth (design.md): one script per turn, the deadlines swept with a lease. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "chatmon/access.h"
#include "chatmon/convstore.h"
#include "chatmon/copies.h"
#include "chatmon/log.h"
#include "chatmon/logrepeat.h"
#include "chatmon/rconn.h"

/*
 * Key layout (docs/operations.md, "Running many instances"): a
 * conversation lives in one of CONVSTORE_BUCKETS buckets by a hash of its
 * id; every key of a bucket carries the bucket as its hash tag, so each
 * script touches one hash slot and runs unchanged on Redis Cluster:
 *
 *   PREFIXchatmon:sla:{B}:c:ID   hash: the round (fields below)
 *   PREFIXchatmon:sla:{B}:due    sorted set: ID by its next deadline
 *   PREFIXchatmon:sla:{B}:open   sorted set: ID by when its open round opened
 *                                (who waits now, for the dashboard)
 *   PREFIXchatmon:sla:{B}:log    stream: every round closed or ended and every
 *                                breach and escalation raised, once (the
 *                                day's figures, for the dashboard)
 *
 * A turn or an end is never dropped: while Redis is away (or answers that
 * it cannot write: a replica after a failover, a server loading), calls
 * wait in order, up to CONVSTORE_WAIT_MAX, and go when it is back; each
 * carries its own time, so Redis ends up as if it had never been away.
 *
 * Redis answering is not Redis keeping: after a failover the old master
 * takes writes for seconds until Sentinel demotes it, and then forgets
 * them. So the calls Redis answered in the last CONVSTORE_REPLAY_MS are
 * kept (their arguments only) and sent again, oldest first, on every new
 * connection. The scripts make that harmless: a turn sent twice is a copy
 * (the same customer text within CONVSTORE_COPY_MS opens no round), a
 * reply finds its round closed, an event its bit set, an end nothing to
 * end; their answers are not read again.
 *
 * A script per call applies it atomically, so two instances that see the
 * same conversation (one agent in two tabs, a reconnect, a takeover) agree
 * on when a round opened, whether it is still open, and which events were
 * raised; the one whose call closed or ended a round charges it, once.
 *
 * Every instance sweeps the deadline sets: a conversation whose deadline
 * is more than redis.takeover past is claimed for a lease (its score moved
 * on) and handed to the caller, which raises what is due through
 * convstore_fire, as the owner would have. The owner's own timers fire at
 * the due time and move the score on at once, so a live owner is never
 * raced; a dead one is replaced within takeover plus a sweep interval.
 */

#define CONVSTORE_SWEEP_MAX	100	/* conversations claimed per bucket per sweep */
#define CONVSTORE_WARN_NS	(60ULL * 1000000000)	/* a sweep's refusal logged at most this often */
#define CONVSTORE_LEASE_MS	5000
/* Past its idle end a conversation's record lingers this long, then Redis drops it. */
#define CONVSTORE_TTL_MS	86400000
#define CONVSTORE_WAIT_MAX	100000	/* calls kept while Redis is away */
#define CONVSTORE_REPLAY_MS	20000	/* answered calls sent again on a new connection */
#define CONVSTORE_REPLAY_MAX	50000
/*
 * The instances whose last call applied a record keeps (q): one agent's
 * tabs, a takeover, a restart or two; an instance whose number fell off
 * (as many others wrote the conversation since) has its calls sent again
 * applied as if Redis lacked them.
 */
#define CONVSTORE_WRITERS	8
/*
 * An ended conversation's record of who ended it lives this long (>
 * REPLAY_MS) past the end, or past the last deadline its round had.
 */
#define CONVSTORE_TOMB_MS	60000
#define CONVSTORE_MAXARG	32	/* the most a call sends: a customer turn, 30, + REPLAYED */
/*
 * The last argument of a call sent again on a new connection: the script
 * then applies it only if the record has not seen it already (stale).
 */
#define CONVSTORE_REPLAYED	"replayed"
/* The fields an instance reads back (op .. qu below): the rest stay in Redis. */
#define CONVSTORE_NREAD		15
/* A claim reads one more (pn): a round its instance could not plan. */
#define CONVSTORE_NCLAIM	(CONVSTORE_NREAD + 1)
/*
 * The raising calls a record keeps (xr), its last rounds' (three events a
 * round): a call sent again finds its own unless the conversation raised
 * that many more events since, which takes longer than the connection's
 * timeout after which it is sent again.
 */
#define CONVSTORE_RAISED	8
/*
 * A customer turn repeating one of the last CONVSTORE_COPY_N within this,
 * their round answered: a copy (the backend sent a burst again).
 */
#define CONVSTORE_COPY_MS	COPIES_MS	/* the relay's copies (windows, history) */
#define CONVSTORE_COPY_N	8

enum { CS_TURN, CS_FIRE, CS_END, CS_PLAN, CS_SWEEP, CS_NSCRIPT };

#define CONVSTORE_STR_(x)	#x
#define CONVSTORE_STR(x)	CONVSTORE_STR_(x)

/*
 * Fields: op a round is open, o when it opened, f it is the first, h a
 * round was ever opened, x the events raised (bit per event), d0-d2 their
 * due times and m0-m2 their service times (-1: none), i the idle end, a the
 * agent, sh and qu the shop and queue of its first turn ("" none), ra the
 * agent who held it when the round opened, lc the hashes of the
 * last customer turns with when each came (copies) and lt when the latest did, w the instance that last applied
 * a turn or raised an event, la the latest time of a turn applied and lq
 * the number w gave its last call applied (what instances of before read),
 * xr the calls that raised the last CONVSTORE_RAISED events (fire), q the
 * number of the last call applied of each of the last CONVSTORE_WRITERS
 * instances that wrote it (stale), lr when the last round was answered
 * (copies), pn 1 while its open round waits to be planned by its shop
 * (plan), xc the calls that closed or ended the last CONVSTORE_RAISED
 * rounds (a turn or an end sent again learns whether it was one), lp the
 * time of the latest reply applied, whether it closed a round or not, xv
 * what the last CONVSTORE_RAISED calls that raised overdue events, or
 * charged a round their caller did not hold, did (keepcall; not among
 * these fields). Lua numbers are doubles: millisecond times (< 2^53) are exact. A reply carries the first
 * CONVSTORE_NREAD, what the engine needs (sla_conv_put), and no more: a
 * reply per turn is most of what Redis sends.
 */
static const char convstore_lua_common[] =
"local F = {'op','o','f','h','x','d0','d1','d2','m0','m1','m2','i','a','sh','qu','ra','lc','lt','w','la','lq','xr','q','lr','pn','xc','lp'}\n"
"local function load()\n"
"  local v = redis.call('HMGET', KEYS[1], unpack(F))\n"
"  local t = {}\n"
"  for k = 1, #F do if v[k] then t[F[k]] = v[k] end end\n"
"  return t\n"
"end\n"
"local function dump(t)\n"
"  local r = {}\n"
"  for k = 1, " CONVSTORE_STR(CONVSTORE_NREAD) " do r[k] = t[F[k]] or '' end\n"
"  return r\n"
"end\n"
"local function save(t)\n"
"  local a = {}\n"
"  for k = 1, #F do if t[F[k]] then a[#a+1] = F[k]; a[#a+1] = t[F[k]] end end\n"
"  redis.call('HSET', KEYS[1], unpack(a))\n"
"end\n"
"local function num(s) return tonumber(s or '-1') or -1 end\n"
/* the record lives a while past its idle end (or TTL past now: none) */
"local function expire(t)\n"
"  local ttl = " CONVSTORE_STR(CONVSTORE_TTL_MS) "\n"
"  if num(t.i) >= 0 then redis.call('PEXPIREAT', KEYS[1], num(t.i) + ttl)\n"
"  else redis.call('PEXPIRE', KEYS[1], ttl) end\n"
"end\n"
/*
 * A call sent again after a reconnect (convstore_replay) is there for a
 * Redis that lost it; one that has it must not see it twice: a reply of
 * round 1 would close round 2. A turn, an event or an end ends with its
 * number (each instance counts its calls), then the mark of a call sent
 * again (or sent before a connection went, unanswered). The record keeps
 * the number of each instance's last call applied (q), whoever wrote it
 * since, so that number alone says whether Redis has the call: a stale
 * call is answered 2, with the record as it is. (Who wrote last and the
 * time of the latest turn cannot say: a reply whose call was lost, sent
 * again after the customer's next message reached Redis through another
 * instance, is not in Redis, and was dropped as if it were.)
 * A call Redis lacks is applied, in its place in time where the record
 * says it matters (late): a reply closes no round opened after it, an
 * end or a turn does nothing to a conversation ended, or turned, after it.
 */
"local replayed = ARGV[#ARGV] == '" CONVSTORE_REPLAYED "'\n"
"local seq = ARGV[#ARGV - (replayed and 1 or 0)]\n"
"local function stale(t, me)\n"
"  if not replayed then return false end\n"
"  local n = string.match(' ' .. (t.q or '') .. ' ', ' ' .. me .. ':(%d+) ')\n"
"  return num(n) >= (tonumber(seq) or -1)\n"
"end\n"
"local function late(t, at) return replayed and num(t.la) > at end\n"
/* this instance's call applied: its number in q, the last writers only */
"local function applied(t, me)\n"
"  local r = {}\n"
"  for e in string.gmatch(t.q or '', '%S+') do\n"
"    if string.sub(e, 1, #me + 1) ~= me .. ':' then r[#r+1] = e end\n"
"  end\n"
"  r[#r+1] = me .. ':' .. seq\n"
"  while #r > " CONVSTORE_STR(CONVSTORE_WRITERS) " do table.remove(r, 1) end\n"
"  t.q = table.concat(r, ' ')\n"
"  t.w = me; t.lq = seq\n"
"end\n"
/*
 * this call closed or ended a round, which it charges: kept by call, as
 * the raising calls are (fire), so that the call sent again, answered 2,
 * is told so, and its caller charges that round, once; any other call
 * answered 2 charges nothing (another instance's call closed it)
 */
"local function closed(t, me)\n"
"  local r = {}\n"
"  for c in string.gmatch(t.xc or '', '%S+') do r[#r+1] = c end\n"
"  r[#r+1] = me .. ':' .. seq\n"
"  while #r > " CONVSTORE_STR(CONVSTORE_RAISED) " do table.remove(r, 1) end\n"
"  t.xc = table.concat(r, ' ')\n"
"end\n"
"local function closer(t, me)\n"
"  if string.find(' ' .. (t.xc or '') .. ' ', ' ' .. me .. ':' .. seq .. ' ', 1, true) then return 1 end\n"
"  return 0\n"
"end\n"
/*
 * What this call did that its caller cannot redo if the answer is lost:
 * the events it raised (overdue, below), and the round it closed or ended
 * when the caller holds none (holds: the call's last argument but its
 * number: 1 when the caller holds the round it closes and charges that
 * itself). Kept by call in xv, the last CONVSTORE_RAISED such calls, as
 * the closing calls are in xc, so that the call sent again, answered 2,
 * gets them back and its caller publishes and charges them, once: marked
 * raised, nobody else would. Read and written only by such a call, an
 * end and a call sent again: not a field of every turn's HMGET. old is
 * xv as it was (a string, or false), written back with this call after
 * it.
 */
"local holds = ARGV[#ARGV - (replayed and 2 or 1)] == '1'\n"
"local function keepcall(old, me, ev, out)\n"
"  if holds then out = {} end\n"
"  if not old and #ev == 0 and not out[1] then return end\n"
"  local l = {}\n"
"  if old then local ok, d = pcall(cjson.decode, old); if ok and type(d) == 'table' then l = d end end\n"
"  if #ev > 0 or out[1] then l[#l+1] = {me .. ':' .. seq, ev, out} end\n"
"  while #l > " CONVSTORE_STR(CONVSTORE_RAISED) " do table.remove(l, 1) end\n"
"  redis.call('HSET', KEYS[1], 'xv', cjson.encode(l))\n"
"end\n"
/* what the call kept (keepcall): its events and its round, each {} if none */
"local function kept(me)\n"
"  local v = redis.call('HGET', KEYS[1], 'xv')\n"
"  if not v then return {}, {} end\n"
"  local ok, l = pcall(cjson.decode, v)\n"
"  if not ok or type(l) ~= 'table' then return {}, {} end\n"
"  for _, e in ipairs(l) do\n"
"    if type(e) == 'table' and e[1] == me .. ':' .. seq and type(e[2]) == 'table' and\n"
"        type(e[3]) == 'table' then return e[2], e[3] end\n"
"  end\n"
"  return {}, {}\n"
"end\n"
/*
 * a round or an event for the figures: k a answered, u unanswered, b breach,
 * e escalation; c the conversation, for the report's worst waits; sh and
 * qu its shop and queue, only when it has them
 */
"local function record(k, ag, o, at, f, c, t)\n"
"  local a = {'k', k, 'ag', ag, 'o', o, 'at', at, 'f', f, 'c', c}\n"
"  if (t.sh or '') ~= '' then a[#a+1] = 'sh'; a[#a+1] = t.sh; a[#a+1] = 'qu'; a[#a+1] = t.qu or '' end\n"
"  redis.call('XADD', KEYS[4], 'MAXLEN', '~', '250000', '*', unpack(a))\n"
"end\n"
/*
 * The events of t's open round due by upto and not raised yet, raised by
 * this call before it closes or ends the round, as the sweep would have
 * raised them (a breach that fell due while no instance ran, answered or
 * ended before any sweep claimed it): marked, a breach or an escalation
 * logged, and handed to the caller in time order (warn, breach, escalate
 * on a tie), each as type, due, waited, threshold, open time, first,
 * agent, shop, queue, for it to publish and charge, once. ag is the agent
 * who held the conversation when they fell due (before this turn).
 */
"local function overdue(t, upto, ag, id)\n"
"  local r, ev = {}, {}\n"
"  if t.op ~= '1' then return ev end\n"
"  local x = num(t.x)\n"
"  for e = 0, 2 do\n"
"    local d = num(t['d'..e])\n"
"    if d >= 0 and d <= upto and num(t['m'..e]) > 0 and math.floor(x / 2^e) % 2 == 0 then r[#r+1] = e end\n"
"  end\n"
"  table.sort(r, function(p, q)\n"
"    local dp, dq = num(t['d'..p]), num(t['d'..q])\n"
"    if dp ~= dq then return dp < dq end\n"
"    return p < q\n"
"  end)\n"
"  for _, e in ipairs(r) do\n"
"    x = x + 2^e\n"
"    local d = t['d'..e]\n"
"    if e > 0 then record(e == 1 and 'b' or 'e', ag or '', t.o, d, t.f or '0', id, t) end\n"
"    ev[#ev+1] = {tostring(e), d, t['m'..e], e == 0 and (t.m1 or '0') or t['m'..e],\n"
"                 t.o or '', t.f or '0', ag or '', t.sh or '', t.qu or ''}\n"
"  end\n"
"  t.x = string.format('%d', x)\n"
"  return ev\n"
"end\n"
/*
 * the next deadline: an event not raised yet, or the idle end, or a
 * round's open time while it waits to be planned (whoever sweeps it
 * plans it if its instance could not); who waits
 */
"local function schedule(t, id)\n"
"  if t.op == '1' then redis.call('ZADD', KEYS[3], t.o, id) else redis.call('ZREM', KEYS[3], id) end\n"
"  local n = num(t.i)\n"
"  if t.op == '1' then\n"
"    local x = num(t.x)\n"
"    for e = 0, 2 do\n"
"      local d = num(t['d'..e])\n"
"      if d >= 0 and math.floor(x / 2^e) % 2 == 0 and (n < 0 or d < n) then n = d end\n"
"    end\n"
"    if t.pn == '1' and (n < 0 or num(t.o) < n) then n = num(t.o) end\n"
"  end\n"
"  if n >= 0 then redis.call('ZADD', KEYS[2], n, id) else redis.call('ZREM', KEYS[2], id) end\n"
"end\n";

/*
 * KEYS: the conversation, its bucket's deadline and open sets and log. ARGV: now, kind (c
 * customer, a reply, r other agent turn), agent, idle end, id, the
 * instance, the shop and queue (kept from the turn that creates the
 * record); a customer turn only (they are half the calls, the rest need
 * none of it): the turn's hash, then m0 d0 m1 d1 m2 d2 of a first round
 * and of a later one, each d in ms from now (-1: none), which is shorter
 * on the wire than a time; then 1 when the caller holds the round the turn
 * would close (keepcall), else 0; last, the call's number (stale).
 * A copy of a customer turn of a round already answered (the backend sent
 * it again, or its whole burst, or one tab got it after another tab
 * replied) opens no round.
 */
static const char convstore_lua_turn[] =
"local now = tonumber(ARGV[1])\n"
"local t = load()\n"
"if stale(t, ARGV[6]) then\n"
"  local ev, out = kept(ARGV[6])\n"
"  return {2, dump(t), out, closer(t, ARGV[6]), ev}\n"
"end\n"
/* ended after it: what says so is all that is left (the end's, below) */
"if not t.i and late(t, now) then return {2, dump(t), {}} end\n"
"local out, rt, ev, xv = {}, nil, {}, false\n"
"if num(t.i) >= 0 and num(t.i) <= now then\n"
/*
 * it ended idle, unseen: what fell due before its end is raised, its round
 * is unanswered; this turn starts anew
 */
"  ev = overdue(t, num(t.i), t.a, ARGV[5])\n"
"  if t.op == '1' then out = {'u', t.o, t.f, t.ra or '', t.i, t.sh or '', t.qu or ''} end\n"
"  xv = redis.call('HGET', KEYS[1], 'xv')\n"
"  redis.call('DEL', KEYS[1])\n"
"  rt = t\n"
"  t = {}\n"
"end\n"
/*
 * The caller planned by another shop than the record's (it met the
 * conversation over a connection of that shop, in a frame naming none):
 * a round it opens has no deadline yet, and the answer 3 asks the caller
 * for the record's shop's (convstore_plan). The round opens here all the
 * same, in the turns' order, so that a reply sent meanwhile closes it; it
 * waits in the deadline set from its open time (pn), so that should the
 * caller die before it plans, whoever sweeps it plans it.
 */
"local other = (t.sh or '') ~= '' and (t.sh ~= ARGV[7] or (t.qu or '') ~= ARGV[8])\n"
"local code = 1\n"
"if not t.sh then t.sh = ARGV[7]; t.qu = ARGV[8] end\n"
"local held = t.a\n"
"if ARGV[3] ~= '' then t.a = ARGV[3] end\n"
"if ARGV[2] == 'c' then\n"
/*
 * lc: "hash:time" of the customer's last turns within CONVSTORE_COPY_MS,
 * CONVSTORE_COPY_N at most, so that a burst sent again is a copy whole,
 * not only its last message (a record of before has one hash, and lt).
 * A turn that came after the last answer (lr) is no copy of one the
 * agent answered: a reply applied late (its call lost, sent again) leaves
 * the next message, seen first through another instance while the round
 * was still open, to open the next round. A hash keeps the earliest time
 * it came: a copy's own time is after the answer, so the next copy,
 * measured against it, would open a round.
 */
"  local lc, copy, at, r = t.lc or '', false, ARGV[1], {}\n"
"  if lc ~= '' and not string.find(lc, ':', 1, true) then lc = lc .. ':' .. (t.lt or '0') end\n"
"  for h, w in string.gmatch(lc, '(%x+):(%d+)') do\n"
"    if now - tonumber(w) < " CONVSTORE_STR(CONVSTORE_COPY_MS) " then\n"
"      if h ~= ARGV[9] then r[#r+1] = h .. ':' .. w\n"
"      else copy = not t.lr or tonumber(w) <= num(t.lr); if tonumber(w) < now then at = w end end\n"
"    end\n"
"  end\n"
"  r[#r+1] = ARGV[9] .. ':' .. at\n"
"  while #r > " CONVSTORE_STR(CONVSTORE_COPY_N) " do table.remove(r, 1) end\n"
"  t.lc = table.concat(r, ' ')\n"
"  if now >= num(t.lt) then t.lt = ARGV[1] end\n"
"  if t.op ~= '1' and not copy and late(t, now) and num(t.lp) > now then\n"
/*
 * A customer turn that waited for Redis (or went again) behind a reply
 * of another instance's applied before it: that reply answered it. If no
 * round closed since this turn, it is a round of its own, answered then;
 * else the round that closed holds it. (Opened now, it stayed open with
 * nobody to close it: a breach and an escalation of a chat answered.)
 */
"    if num(t.lr) < now then\n"
"      out = {'a', ARGV[1], (t.h == '1') and '0' or '1', t.a or '', t.lp, t.sh or '', t.qu or ''}\n"
"      t.f = out[3]; t.h = '1'; t.o = ARGV[1]; t.x = '0'; t.lr = t.lp; t.ra = t.a or ''\n"
"    end\n"
"  elseif t.op ~= '1' and not copy then\n"
"    local b = 10\n"
"    if t.h == '1' then b = 16 end\n"
"    t.f = (t.h == '1') and '0' or '1'\n"
"    t.op = '1'; t.o = ARGV[1]; t.h = '1'; t.x = '0'; t.ra = t.a or ''\n"
"    for e = 0, 2 do\n"
"      local d = tonumber(ARGV[b+2*e+1])\n"
"      if other then d = -1 end\n"
"      t['m'..e] = other and '0' or ARGV[b+2*e]; t['d'..e] = d < 0 and '-1' or string.format('%d', now + d)\n"
"    end\n"
"    if other then code = 3; t.pn = '1' elseif t.pn then t.pn = '0' end\n"
"  end\n"
"elseif ARGV[2] == 'a' and t.op == '1' and not (late(t, now) and num(t.o) > now) then\n"
/*
 * a reply cancels the events still to come, not those due already that
 * no instance raised (none ran, or none swept it yet): raised first, for
 * the agent who held the conversation then; one due at the reply's
 * instant too (the engine's rule: a reply at the breach instant breaches)
 */
"  ev = overdue(t, now, held, ARGV[5])\n"
"  out = {'a', t.o, t.f, t.a or '', ARGV[1], t.sh or '', t.qu or ''}\n"
"  t.op = '0'; t.x = '0'; t.lr = ARGV[1]\n"
"end\n"
"if ARGV[2] == 'a' and now > num(t.lp) then t.lp = ARGV[1] end\n"
/*
 * The idle end: ARGV[4] while a round is open after the turn (service
 * time), the part after its ':' when none is (wall time; no ':': the
 * same). An older turn applied late only moves it on; the latest turn
 * with no round open sets it, so that an answered chat ends by the clock.
 */
"local io, ic = string.match(ARGV[4], '^(-?%d+):(-?%d+)$')\n"
"if not io then io = ARGV[4]; ic = ARGV[4] end\n"
"local ie = t.op == '1' and io or ic\n"
"if num(ie) < 0 or num(ie) > num(t.i) or (t.op ~= '1' and now >= num(t.la)) then t.i = ie end\n"
"applied(t, ARGV[6])\n"
"if out[1] then closed(t, ARGV[6]) end\n"
"if now > num(t.la) then t.la = ARGV[1] end\n"
"save(t)\n"
"expire(t)\n"
"schedule(t, ARGV[5])\n"
"if #ev > 0 or (out[1] and not holds) or xv then keepcall(xv or redis.call('HGET', KEYS[1], 'xv'), ARGV[6], ev, out) end\n"
"if out[1] then record(out[1], out[4], out[2], out[5], out[3], ARGV[5], rt or t) end\n"
"return {code, dump(t), out, 0, ev}\n";

/*
 * KEYS as for a turn. ARGV: the round's open time, the event (0-2), id, the
 * instance, then the round as the caller holds it (f, x without this
 * event, m0 d0 m1 d1 m2 d2 with d a time or -1, the idle end, the agent,
 * shop and queue), the call's number: the record then says this instance
 * wrote it last, and which of its calls (stale).
 * No record at all, not even an end's (a Redis restarted without
 * persistence, a failover to a replica that lagged, past what the replay
 * of the last calls covers): the caller's round is written back, and the
 * event raised on it, so that the breach still reaches the supervisors
 * and the reply still closes the round it answers.
 * Who raised an event is kept by call (instance:number, in xr), not by
 * event: a call sent again that Redis ran already, and that raised the
 * event then, is answered 2, so that its caller raises and charges it,
 * once (the first answer went with the connection); found by its bit
 * alone it would be answered 0, "someone else raised it", and nobody
 * would. Kept by call, the answer holds whatever came after it: a later
 * call of the same instance, the round closed, the conversation ended.
 */
static const char convstore_lua_fire[] =
"local call = ARGV[4] .. ':' .. seq\n"
"local t = load()\n"
"if replayed and string.find(' ' .. (t.xr or '') .. ' ', ' ' .. call .. ' ', 1, true) then\n"
"  return {2, dump(t), {}}\n"
"end\n"
"local restored = next(t) == nil\n"
"if restored then\n"
"  t = {op = '1', o = ARGV[1], f = ARGV[5], h = '1', x = ARGV[6], i = ARGV[13],\n"
"       a = ARGV[14], ra = ARGV[14], sh = ARGV[15], qu = ARGV[16], lt = ARGV[1], la = ARGV[1]}\n"
"  for e = 0, 2 do t['m'..e] = ARGV[7+2*e]; t['d'..e] = ARGV[8+2*e] end\n"
"end\n"
"if t.op ~= '1' or t.o ~= ARGV[1] then return {0, dump(t), {}} end\n"
"local x, b = num(t.x), 2^tonumber(ARGV[2])\n"
"if math.floor(x / b) % 2 == 1 then return {0, dump(t), {}} end\n"
"t.x = tostring(x + b)\n"
"applied(t, ARGV[4])\n"
"local r = {}\n"
"for c in string.gmatch(t.xr or '', '%S+') do r[#r+1] = c end\n"
"r[#r+1] = call\n"
"while #r > " CONVSTORE_STR(CONVSTORE_RAISED) " do table.remove(r, 1) end\n"
"t.xr = table.concat(r, ' ')\n"
"if restored then save(t); expire(t)\n"
"else redis.call('HSET', KEYS[1], 'x', t.x, 'w', t.w, 'lq', t.lq, 'xr', t.xr, 'q', t.q) end\n"
"local e = tonumber(ARGV[2])\n"
"if e > 0 then record(e == 1 and 'b' or 'e', t.a or '', t.o, t['d'..e], t.f or '0', ARGV[3], t) end\n"
"schedule(t, ARGV[3])\n"
"return {1, dump(t), {}}\n";

/*
 * KEYS as for a turn. ARGV: the round's open time, m0 d0 m1 d1 m2 d2 (d a
 * time, -1 none), id, the instance, the idle end by the record's shop
 * from the open time (-1 none), the call's number: the deadlines of a
 * round a turn opened without (answer 3), if it is still open. The turn
 * set the idle end by its connection's shop: while the buyer waits it must
 * be no sooner than the record's shop's hours make it.
 */
static const char convstore_lua_plan[] =
"local t = load()\n"
"if t.op ~= '1' or t.o ~= ARGV[1] then return {0, dump(t), {}} end\n"
"for e = 0, 2 do t['m'..e] = ARGV[2+2*e]; t['d'..e] = ARGV[3+2*e] end\n"
"t.pn = '0'\n"
/* no sooner: -1 (never) is the latest of all */
"if num(t.i) >= 0 and (num(ARGV[10]) < 0 or num(ARGV[10]) > num(t.i)) then t.i = ARGV[10] end\n"
"applied(t, ARGV[9])\n"
"redis.call('HSET', KEYS[1], 'm0', t.m0, 'd0', t.d0, 'm1', t.m1, 'd1', t.d1,\n"
"    'm2', t.m2, 'd2', t.d2, 'pn', t.pn, 'i', t.i, 'w', t.w, 'lq', t.lq, 'q', t.q)\n"
"expire(t)\n"
"schedule(t, ARGV[8])\n"
"return {1, dump(t), {}}\n";

/*
 * KEYS as for a turn. ARGV: when, idle only (1/0), id, the instance, 1 when
 * the caller holds the round it would end (keepcall) else 0, the call's
 * number.
 */
static const char convstore_lua_end[] =
"local t = load()\n"
"if stale(t, ARGV[4]) then\n"
"  local ev, out = kept(ARGV[4])\n"
"  return {2, dump(t), out, closer(t, ARGV[4]), ev}\n"
"end\n"
"if late(t, tonumber(ARGV[1])) then return {2, dump(t), {}, 0} end\n"
"if not t.i then\n"
"  redis.call('ZREM', KEYS[2], ARGV[3]); redis.call('ZREM', KEYS[3], ARGV[3])\n"
"  return {0, dump(t), {}}\n"
"end\n"
"local at, i = tonumber(ARGV[1]), num(t.i)\n"
"if ARGV[2] == '1' and (i < 0 or i > at) then return {0, dump(t), {}} end\n"
"if i >= 0 and i < at then at = i end\n"
/* what fell due before the end and no instance raised is raised first */
"local ev = overdue(t, at, t.a, ARGV[3])\n"
"local out = {}\n"
"if t.op == '1' then out = {'u', t.o, t.f, t.ra or '', tostring(at), t.sh or '', t.qu or ''} end\n"
"local xv = redis.call('HGET', KEYS[1], 'xv')\n"
"redis.call('DEL', KEYS[1])\n"
/*
 * what says the end was applied stays a while, so that a call of before
 * it sent again after a reconnect does not bring the conversation back
 * (stale); no idle end (i): to everything else there is no record. It
 * stays past the last deadline the record has planned too: an instance
 * that held the round and did not see the end calls at that deadline, and
 * with no record at all its call would write the round back (fire).
 */
"applied(t, ARGV[4])\n"
"if out[1] then closed(t, ARGV[4]) end\n"
"redis.call('HSET', KEYS[1], 'w', t.w, 'lq', t.lq, 'q', t.q, 'la', ARGV[1], 'xr', t.xr or '', 'xc', t.xc or '')\n"
"keepcall(xv, ARGV[4], ev, out)\n"
"local last = tonumber(ARGV[1])\n"
/* a week at most: a due time another process wrote may be anything */
"for e = 0, 2 do\n"
"  local d = num(t['d'..e])\n"
"  if d > last and d - tonumber(ARGV[1]) < 604800000 then last = d end\n"
"end\n"
"redis.call('PEXPIRE', KEYS[1], " CONVSTORE_STR(CONVSTORE_TOMB_MS) " + math.floor(last - tonumber(ARGV[1])))\n"
"redis.call('ZREM', KEYS[2], ARGV[3])\n"
"redis.call('ZREM', KEYS[3], ARGV[3])\n"
"if out[1] then record(out[1], out[4], out[2], out[5], out[3], ARGV[3], t) end\n"
"return {1, dump({}), out, 0, ev}\n";

/* KEYS: a deadline set. ARGV: claim what is due at or before this, until then, at most. */
static const char convstore_lua_sweep[] =
"local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])\n"
"for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end\n"
"return ids\n";

struct convstore {
	struct event_base	*base;
	struct rconn		*rc;
	struct event		*ev_sweep;
	convstore_claim_cb	 claim;
	void			*arg;
	char			*prefix;
	uint64_t		 takeover_ms;
	unsigned		 sweeping;	/* replies of the last sweep still to come */
	unsigned		 swept;		/* ... and those that came, good */
	int			 sweep_failing;	/* a refusal was logged: quiet until a sweep works */
	uint64_t		 sweep_warned_ns;	/* when (monotonic); 0: never */
	struct logrepeat	*refused_log;	/* a call's refusal: once a minute */
	size_t			 nsent;		/* calls sent, not answered */
	struct convstore_op	*wait, **wait_tail;	/* calls waiting for Redis */
	size_t			 nwait;
	struct convstore_op	*done, **done_tail;	/* answered lately, oldest first */
	size_t			 ndone;
	int			 freeing;
	char			*body[CS_NSCRIPT];	/* common part + script */
	char			 sha[CS_NSCRIPT][41];
	int			 loaded[CS_NSCRIPT];	/* the connection has the script's text */
	char			 instance[9];	/* hex: whose turn, in the record */
	uint64_t		 seq;		/* turns, events and ends numbered (stale) */
};

/* One call in flight: its arguments are kept to send it again as EVAL. */
struct convstore_op {
	struct convstore	*cs;
	struct convstore_op	*next;		/* waiting, or answered lately */
	int64_t			 answered;	/* when (monotonic ms) */
	convstore_cb		 cb;
	void			*priv;
	int			 script;
	int			 bucket;	/* CS_SWEEP: which; claims: -1 */
	int			 maybe;		/* sent once, unanswered: Redis may have it */
	int			 argc;
	const char		*argv[CONVSTORE_MAXARG];
	size_t			 argvlen[CONVSTORE_MAXARG];
	char			 buf[];
};

#define CONVSTORE_KEY_MAX	512	/* bytes of a key name, with its prefix */

/* The argument list being built before it is copied into an op. */
struct convstore_args {
	int		 argc;
	const char	*argv[CONVSTORE_MAXARG];
	size_t		 argvlen[CONVSTORE_MAXARG];
	char		 num[CONVSTORE_MAXARG][24];
	char		 key[4][CONVSTORE_KEY_MAX];
	int		 over;
};


static void
convstore_arg(struct convstore_args *a, const char *s, size_t len)
{
	if (a->argc == CONVSTORE_MAXARG) {
		a->over = 1;	/* a bug: the call is refused, not cut */
		return;
	}
	a->argv[a->argc] = s;
	a->argvlen[a->argc++] = len;
}

static void
convstore_arg_str(struct convstore_args *a, const char *s)
{
	convstore_arg(a, s, strlen(s));
}

/* A time or a count; INT64_MAX ("never") is -1 in Redis. */
static void
convstore_arg_num(struct convstore_args *a, int64_t v)
{
	char	*p = a->num[a->argc];

	if (v == INT64_MAX)
		v = -1;
	convstore_arg(a, p, (size_t)snprintf(p, sizeof(a->num[0]), "%" PRId64, v));
}

/* "EVALSHA sha 4 convkey duekey openkey logkey" for the conversation id. */
static void
convstore_head(struct convstore *cs, struct convstore_args *a, int script,
    const char *id, size_t len)
{
	uint32_t	b = convstore_bucket(id, len);
	const char	*pre = cs->prefix != NULL ? cs->prefix : "";
	int		n;

	a->argc = 0;
	a->over = 0;
	convstore_arg_str(a, "EVALSHA");
	convstore_arg_str(a, cs->sha[script]);
	convstore_arg_str(a, "4");
	n = snprintf(a->key[0], sizeof(a->key[0]), "%schatmon:sla:{%u}:c:", pre, b);
	/* an id too long for a key is refused (the engine times it alone), never cut */
	if ((size_t)n + len >= sizeof(a->key[0])) {
		a->over = 1;
		return;
	}
	memcpy(a->key[0] + n, id, len);
	convstore_arg(a, a->key[0], (size_t)n + len);
	convstore_arg(a, a->key[1], (size_t)snprintf(a->key[1], sizeof(a->key[1]),
	    "%schatmon:sla:{%u}:due", pre, b));
	convstore_arg(a, a->key[2], (size_t)snprintf(a->key[2], sizeof(a->key[2]),
	    "%schatmon:sla:{%u}:open", pre, b));
	convstore_arg(a, a->key[3], (size_t)snprintf(a->key[3], sizeof(a->key[3]),
	    "%schatmon:sla:{%u}:log", pre, b));
}

static void	convstore_on_reply(redisReply *, void *);

/*
 * op goes again and Redis may have it: its last argument says so, once
 * (stale). Only scripts' calls are kept, and nothing rides behind them.
 */
static void
convstore_mark_again(struct convstore_op *op)
{
	size_t	n = strlen(CONVSTORE_REPLAYED);

	if (op->argc < CONVSTORE_MAXARG && (op->argvlen[op->argc - 1] != n ||
	    memcmp(op->argv[op->argc - 1], CONVSTORE_REPLAYED, n) != 0)) {
		op->argv[op->argc] = CONVSTORE_REPLAYED;
		op->argvlen[op->argc++] = n;
	}
}

static int
convstore_send(struct convstore_op *op)
{
	struct convstore	*cs = op->cs;
	int			 eval = 0;

	/*
	 * The first call of a script on a connection carries its text (EVAL),
	 * so Redis has it before the EVALSHAs sent behind it: a call answered
	 * NOSCRIPT and sent again would be overtaken by the ones after it (a
	 * reply would find its round not opened yet, and the round stay open).
	 */
	if (op->argvlen[0] == 7 && memcmp(op->argv[0], "EVALSHA", 7) == 0 &&
	    !cs->loaded[op->script]) {
		op->argv[0] = "EVAL";
		op->argvlen[0] = 4;
		op->argv[1] = cs->body[op->script];
		op->argvlen[1] = strlen(cs->body[op->script]);
		eval = 1;
	}
	if (op->maybe)
		convstore_mark_again(op);
	if (rconn_command_argv(cs->rc, convstore_on_reply, op, 0,
	    op->argc, op->argv, op->argvlen) == -1)
		return -1;
	cs->loaded[op->script] |= eval;
	cs->nsent++;
	return 0;
}

/* Whether op is a turn, end or fire that must reach Redis whatever happens. */
static int
convstore_keeps(const struct convstore_op *op)
{
	return op->cb != NULL && op->bucket != -1 && op->script != CS_SWEEP;
}

/*
 * Keeps op until Redis is back: 0, or -1 when too many wait already. A
 * call that waited goes as one sent again (maybe): the scripts then apply
 * it in its place in time (late), as the other instances' calls may have
 * overtaken it meanwhile.
 */
static int
convstore_wait(struct convstore *cs, struct convstore_op *op)
{
	if (cs->freeing || cs->nwait >= CONVSTORE_WAIT_MAX)
		return -1;
	op->maybe = 1;
	op->next = NULL;
	*cs->wait_tail = op;
	cs->wait_tail = &op->next;
	cs->nwait++;
	return 0;
}

/* Forgets the answered calls older than CONVSTORE_REPLAY_MS, or too many. */
static void
convstore_done_trim(struct convstore *cs, int64_t now)
{
	struct convstore_op	*op;

	while ((op = cs->done) != NULL && (cs->ndone > CONVSTORE_REPLAY_MAX ||
	    now - op->answered > CONVSTORE_REPLAY_MS)) {
		if ((cs->done = op->next) == NULL)
			cs->done_tail = &cs->done;
		cs->ndone--;
		free(op);
	}
}

/* op was answered (ok): keep its arguments a while for a failover; else free it. */
static void
convstore_keep_done(struct convstore *cs, struct convstore_op *op, int ok)
{
	int64_t	now = util_mono_ns() / 1000000;

	if (!ok || cs->freeing || !convstore_keeps(op)) {
		free(op);
		return;
	}
	op->cb = NULL;
	op->priv = NULL;
	op->answered = now;
	op->next = NULL;
	*cs->done_tail = op;
	cs->done_tail = &op->next;
	cs->ndone++;
	convstore_done_trim(cs, now);
}

/*
 * A new connection: what Redis answered lately goes again, answers unread.
 * Each script's text goes once, with its first call (the server may be
 * new), the rest by SHA1 behind it: every call as EVAL sent the text again
 * (kilobytes a call, tens of megabytes for a busy instance's 20 s) and
 * stalled the loop and Redis some hundreds of milliseconds at every
 * reconnect.
 */
static void
convstore_replay(struct convstore *cs)
{
	struct convstore_op	*op;
	size_t			 n = 0;

	convstore_done_trim(cs, util_mono_ns() / 1000000);
	for (op = cs->done; op != NULL; op = op->next) {
		if (cs->loaded[op->script]) {
			op->argv[0] = "EVALSHA";
			op->argvlen[0] = 7;
			op->argv[1] = cs->sha[op->script];
			op->argvlen[1] = 40;
		} else {
			op->argv[0] = "EVAL";
			op->argvlen[0] = 4;
			op->argv[1] = cs->body[op->script];
			op->argvlen[1] = strlen(cs->body[op->script]);
		}
		convstore_mark_again(op);
		if (rconn_command_argv(cs->rc, NULL, NULL, 0, op->argc, op->argv,
		    op->argvlen) == -1)
			break;
		cs->loaded[op->script] = 1;
		n++;
	}
	if (n > 0)
		log_info("convstore_replay: %zu calls of the last %d s sent again "
		    "on the new connection", n, CONVSTORE_REPLAY_MS / 1000);
}

/* Sends what waited, in order, while the connection takes it. */
static void
convstore_flush(struct convstore *cs)
{
	struct convstore_op	*op;

	while ((op = cs->wait) != NULL && rconn_up(cs->rc)) {
		if (convstore_send(op) == -1)
			return;
		if ((cs->wait = op->next) == NULL)
			cs->wait_tail = &cs->wait;
		cs->nwait--;
	}
}

/*
 * Errors that say "this server cannot take writes now": another will, or
 * this one later (OOM: its maxmemory reached, MISCONF: its last save
 * failed, a full disk; a script refused for either has written nothing,
 * as Redis refuses only a script's first write), after rconn's back-off;
 * NOPERM too, an ACL changed under a running chatmond, until it is put
 * right. Dropped, such a call left its round open in Redis, and the
 * sweep raised an answered round's breach and escalation, or raised a
 * breach twice (found by review).
 */
static int
convstore_transient(const redisReply *r)
{
	static const char *const why[] = { "READONLY", "LOADING", "MASTERDOWN",
	    "NOREPLICAS", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "NOSCRIPT", "OOM",
	    "MISCONF", "NOPERM" };
	size_t	i;

	for (i = 0; i < UTIL_NELEM(why); i++)
		if (strncmp(r->str, why[i], strlen(why[i])) == 0)
			return 1;
	return 0;
}

/*
 * Copies the arguments into a new op and sends all but the last `keep`
 * (which only ride along in the op): 0, or -1 (op freed).
 */
static int
convstore_call(struct convstore *cs, struct convstore_args *a, int keep,
    int script, int bucket, convstore_cb cb, void *priv)
{
	struct convstore_op	*op;
	size_t			 total = 0, off = 0;
	int			 i;

	if (cs->takeover_ms == 0 || a->over)
		return -1;
	for (i = 0; i < a->argc; i++)
		total += a->argvlen[i];
	if ((op = calloc(1, sizeof(*op) + total + 1)) == NULL)
		return -1;
	op->cs = cs;
	op->cb = cb;
	op->priv = priv;
	op->script = script;
	op->bucket = bucket;
	op->argc = a->argc;
	for (i = 0; i < a->argc; i++) {
		memcpy(op->buf + off, a->argv[i], a->argvlen[i]);
		op->argv[i] = op->buf + off;
		op->argvlen[i] = a->argvlen[i];
		off += a->argvlen[i];
	}
	op->argc -= keep;
	/* behind what waits already, so that Redis sees the calls in order */
	if ((cs->wait == NULL && convstore_send(op) == 0) ||
	    (convstore_keeps(op) && convstore_wait(cs, op) == 0))
		return 0;
	free(op);
	return -1;
}

/*
 * A time or a count from Redis, within the engine's range (sla_clamp):
 * another process may have written anything there.
 */
static int64_t
convstore_num(const redisReply *r)
{
	if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0)
		return INT64_MAX;
	/* -1 is "never" */
	return r->str[0] == '-' ? INT64_MAX : sla_clamp(strtoll(r->str, NULL, 10));
}

static const char *
convstore_str(const redisReply *r)
{
	return r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "";
}

/*
 * An agent, shop or queue a record names, as a connection may name one
 * (access_agent_id_why), else "": the record is anyone's to write, and a
 * 16 MiB name planted in it went into three 16 MiB alerts, the figures'
 * labels and a 134 MB /metrics (found by review).
 */
static const char *
convstore_id(const redisReply *r)
{
	const char	*s = convstore_str(r);

	return access_agent_id_why(s, strlen(s)) == NULL ? s : "";
}

/* The fields of a dump or a claim (the scripts' order) into out; 0, or -1 when malformed. */
static int
convstore_parse_state(const redisReply *d, struct convstore_reply *out)
{
	redisReply	**e;
	int		  i;
	int64_t		  v;

	if (d->type != REDIS_REPLY_ARRAY || (d->elements != CONVSTORE_NREAD &&
	    d->elements != CONVSTORE_NCLAIM))
		return -1;
	e = d->element;
	out->exists = convstore_str(e[11])[0] != '\0';	/* every record has an idle end */
	out->st.open = strcmp(convstore_str(e[0]), "1") == 0;
	out->st.opened = convstore_num(e[1]) == INT64_MAX ? 0 : convstore_num(e[1]);
	out->st.first = strcmp(convstore_str(e[2]), "1") == 0;
	out->st.had_round = strcmp(convstore_str(e[3]), "1") == 0;
	v = convstore_num(e[4]);
	out->st.fired = v == INT64_MAX ? 0 : (unsigned)v;
	for (i = 0; i < 3; i++) {
		out->st.due[i] = convstore_num(e[5 + i]);
		v = convstore_num(e[8 + i]);
		out->st.ms[i] = v == INT64_MAX ? 0 : (uint64_t)v;
	}
	out->st.idle_at = convstore_num(e[11]);
	out->agent = convstore_id(e[12]);
	out->shop = convstore_id(e[13]);
	out->queue = convstore_id(e[14]);
	out->unplanned = d->elements == CONVSTORE_NCLAIM && out->st.open &&
	    strcmp(convstore_str(e[15]), "1") == 0;
	return 0;
}

/*
 * The events a turn or an end raised (its answer's fifth element): type,
 * due, waited, threshold, open time, first, agent, shop, queue each; 0,
 * or -1 when malformed.
 */
static int
convstore_parse_raised(const redisReply *v, struct convstore_reply *out)
{
	const redisReply	*e;
	struct sla_event	*ev;
	size_t			 i;
	int64_t			 type, w, thr;

	if (v->type != REDIS_REPLY_ARRAY || v->elements > UTIL_NELEM(out->raised))
		return -1;
	for (i = 0; i < v->elements; i++) {
		e = v->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 9)
			return -1;
		ev = &out->raised[i];
		memset(ev, 0, sizeof(*ev));
		type = convstore_num(e->element[0]);
		w = convstore_num(e->element[2]);
		thr = convstore_num(e->element[3]);
		if (type < SLA_WARN || type > SLA_ESCALATE || w == INT64_MAX ||
		    thr == INT64_MAX)
			return -1;
		ev->type = (enum sla_event_type)type;
		ev->due = convstore_num(e->element[1]);
		ev->waited_ms = (uint64_t)w;
		ev->threshold_ms = (uint64_t)thr;
		ev->opened = convstore_num(e->element[4]);
		if (ev->due == INT64_MAX || ev->opened == INT64_MAX)
			return -1;
		ev->first = strcmp(convstore_str(e->element[5]), "1") == 0;
		ev->agent = convstore_id(e->element[6]);
		ev->shop = convstore_id(e->element[7]);
		ev->queue = convstore_id(e->element[8]);
	}
	out->nraised = v->elements;
	return 0;
}

static int
convstore_parse(const redisReply *r, struct convstore_reply *out)
{
	const redisReply	*c;

	if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->elements > 5 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER ||
	    convstore_parse_state(r->element[1], out) == -1 ||
	    r->element[2]->type != REDIS_REPLY_ARRAY)
		return -1;
	out->done = r->element[0]->integer != 0;
	out->stale = r->element[0]->integer == 2;
	/* a turn or an end answered 2 says whether it closed or ended a round */
	out->stale_closed = out->stale && r->elements >= 4 &&
	    r->element[3]->type == REDIS_REPLY_INTEGER && r->element[3]->integer == 1;
	if (r->elements == 5 && convstore_parse_raised(r->element[4], out) == -1)
		return -1;
	out->other_shop = r->element[0]->integer == 3;
	c = r->element[2];
	if (c->elements == 7) {
		out->charged = 1;
		out->answered = strcmp(convstore_str(c->element[0]), "a") == 0;
		out->opened = convstore_num(c->element[1]);
		out->first = strcmp(convstore_str(c->element[2]), "1") == 0;
		out->charged_agent = convstore_id(c->element[3]);
		out->at = convstore_num(c->element[4]);
		out->charged_shop = convstore_id(c->element[5]);
		out->charged_queue = convstore_id(c->element[6]);
		if (out->opened == INT64_MAX || out->at == INT64_MAX)
			return -1;
	}
	out->ok = 1;
	return 0;
}

static void	convstore_on_sweep(struct convstore_op *, redisReply *);
static void	convstore_on_claim(struct convstore_op *, redisReply *);

/*
 * Redis refused a sweep or a claim (a deadline set or a record of another
 * type: WRONGTYPE): the sweep runs every takeover / 2, so the refusal is
 * logged once until a whole sweep works again, and at most once a minute.
 * Redis's error names no value.
 */
static void
convstore_sweep_refused(struct convstore *cs, const redisReply *r)
{
	uint64_t	now = util_mono_ns();

	if (cs->sweep_failing || (cs->sweep_warned_ns != 0 &&
	    now - cs->sweep_warned_ns < CONVSTORE_WARN_NS))
		return;
	cs->sweep_failing = 1;
	cs->sweep_warned_ns = now;
	log_warnx("convstore_on_reply: redis refused a sweep of the deadlines: "
	    "%s (not logged again until a sweep works)", r->str);
}

/*
 * A turn, an end or an event Redis refused (a key of chatmon's that another
 * program wrote with another type: WRONGTYPE): each refusal logged at most
 * once a CONVSTORE_WARN_NS, with how many more came meanwhile; a key gone
 * wrong refuses every call of its bucket, a sixteenth of every turn.
 */
static void
convstore_call_refused(struct convstore *cs, const redisReply *r)
{
	uint64_t	held = 0;

	if (cs->refused_log != NULL && !logrepeat_check(cs->refused_log, r->str,
	    r->len, util_mono_ns() / 1000000, &held))
		return;
	log_warnx("convstore_on_reply: redis refused a call: %s (the same at "
	    "most once a minute; %llu more since it was last logged)", r->str,
	    (unsigned long long)held);
}

/* No answer: every string "" so that the caller never meets a NULL. */
static void
convstore_reply_init(struct convstore_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->agent = r->shop = r->queue = "";
	r->charged_agent = r->charged_shop = r->charged_queue = "";
}

static void
convstore_on_reply(redisReply *reply, void *priv)
{
	struct convstore_op	*op = priv;
	struct convstore	*cs = op->cs;
	struct convstore_reply	 r;

	cs->nsent--;
	/*
	 * The connection went, or the server cannot write (a replica after a
	 * failover), or it lost the scripts under a live connection (SCRIPT
	 * FLUSH): drop it, so that rconn finds the master again, and send the
	 * calls again from there, in their order, the scripts' text first.
	 */
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
	    convstore_transient(reply) && !cs->freeing) {
		log_warnx("convstore_on_reply: %s: reconnecting", reply->str);
		op->maybe = 1;	/* a failover may yet bring it back */
		/* first in the queue, ahead of the calls the drop sends back */
		if (convstore_keeps(op) && convstore_wait(cs, op) == 0) {
			rconn_drop(cs->rc, "it cannot take writes");
			return;
		}
		rconn_drop(cs->rc, "it cannot take writes");
		reply = NULL;
	}
	/* the connection went before the answer: Redis may have run it */
	if (reply == NULL && !cs->freeing)
		op->maybe = 1;
	if (reply == NULL && convstore_keeps(op) && convstore_wait(cs, op) == 0)
		return;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
		if (op->script == CS_SWEEP)
			convstore_sweep_refused(cs, reply);
		else
			convstore_call_refused(cs, reply);
	}
	if (op->bucket == -1) {
		convstore_on_claim(op, reply);
		free(op);
		return;
	}
	if (op->script == CS_SWEEP) {
		convstore_on_sweep(op, reply);
		free(op);
		return;
	}
	convstore_reply_init(&r);
	if (reply != NULL && reply->type != REDIS_REPLY_ERROR &&
	    convstore_parse(reply, &r) == -1) {
		log_warnx("convstore_on_reply: a reply of an unexpected shape");
		convstore_reply_init(&r);
	}
	op->cb(&r, op->priv);
	convstore_keep_done(cs, op, r.ok);
}

/* KEYS: the record, the due set, the open set; ARGV[1]: the id. */
static const char convstore_lua_gone[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then\n"
    "  redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "  redis.call('ZREM', KEYS[3], ARGV[1])\n"
    "end\n";

/* A claimed conversation's fields (HMGET) to the caller. */
static void
convstore_on_claim(struct convstore_op *op, redisReply *reply)
{
	struct convstore	*cs = op->cs;
	struct convstore_reply	 r;
	const char		*id = op->argv[CONVSTORE_NCLAIM + 2], *due;
	size_t			 len = op->argvlen[CONVSTORE_NCLAIM + 2], dlen;
	char			 open[CONVSTORE_KEY_MAX];

	convstore_reply_init(&r);
	if (reply == NULL || convstore_parse_state(reply, &r) == -1)
		return;	/* the lease runs out and someone sweeps it again */
	r.ok = 1;
	if (!r.exists) {
		/*
		 * Redis dropped the record (its TTL, an eviction): nothing is
		 * due any more, and nobody waits: out of the open set too, or
		 * the pages count a customer for ever whom no one will answer.
		 * Only if it is still gone: a turn may have made it again.
		 */
		due = op->argv[CONVSTORE_NCLAIM + 3];
		dlen = op->argvlen[CONVSTORE_NCLAIM + 3];
		if (dlen < 4 || dlen - 3 >= sizeof(open) - 4)
			return;
		memcpy(open, due, dlen - 3);		/* "...:due" */
		memcpy(open + dlen - 3, "open", 4);
		(void)rconn_command(cs->rc, NULL, NULL, 0, "EVAL %s 3 %b %b %b %b",
		    convstore_lua_gone, op->argv[1], op->argvlen[1], due, dlen,
		    open, dlen + 1, id, len);
		return;
	}
	cs->claim(id, len, &r, cs->arg);
}

static void
convstore_on_sweep(struct convstore_op *op, redisReply *reply)
{
	struct convstore	*cs = op->cs;
	static const char	*const fields[CONVSTORE_NCLAIM] = { "op", "o",
				    "f", "h", "x", "d0", "d1", "d2", "m0", "m1",
				    "m2", "i", "a", "sh", "qu", "pn" };
	struct convstore_args	 a;
	const char		*pre = cs->prefix != NULL ? cs->prefix : "";
	size_t			 i, len;
	int			 k, n;

	cs->sweeping--;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY)
		cs->swept++;
	/* every bucket answered: the sweep works */
	if (cs->sweeping == 0 && cs->swept == CONVSTORE_BUCKETS)
		cs->sweep_failing = 0;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i < reply->elements; i++) {
		if (reply->element[i]->type != REDIS_REPLY_STRING)
			continue;
		/* HMGET key fields..., then the id and the deadline set ride along */
		len = reply->element[i]->len;
		a.argc = 0;
		a.over = 0;
		convstore_arg_str(&a, "HMGET");
		n = snprintf(a.key[0], sizeof(a.key[0]), "%schatmon:sla:{%d}:c:",
		    pre, op->bucket);
		if ((size_t)n + len >= sizeof(a.key[0]))
			continue;
		memcpy(a.key[0] + n, reply->element[i]->str, len);
		convstore_arg(&a, a.key[0], (size_t)n + len);
		for (k = 0; k < CONVSTORE_NCLAIM; k++)
			convstore_arg_str(&a, fields[k]);
		convstore_arg(&a, reply->element[i]->str, len);
		convstore_arg(&a, op->argv[3], op->argvlen[3]);
		if (convstore_call(cs, &a, 2, CS_SWEEP, -1, NULL, NULL) == -1)
			return;
	}
}

static void
convstore_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct convstore	*cs = arg;
	struct convstore_args	 a;
	const char		*pre = cs->prefix != NULL ? cs->prefix : "";
	int64_t			 now = util_wall_ms();
	int			 b;

	(void)fd;
	(void)what;
	if (!convstore_up(cs) || cs->sweeping > 0)
		return;
	cs->swept = 0;
	for (b = 0; b < CONVSTORE_BUCKETS; b++) {
		a.argc = 0;
		a.over = 0;
		convstore_arg_str(&a, "EVALSHA");
		convstore_arg_str(&a, cs->sha[CS_SWEEP]);
		convstore_arg_str(&a, "1");
		convstore_arg(&a, a.key[1], (size_t)snprintf(a.key[1],
		    sizeof(a.key[1]), "%schatmon:sla:{%d}:due", pre, b));
		convstore_arg_num(&a, now - (int64_t)cs->takeover_ms);
		convstore_arg_num(&a, now + CONVSTORE_LEASE_MS);
		convstore_arg_num(&a, CONVSTORE_SWEEP_MAX);
		if (convstore_call(cs, &a, 0, CS_SWEEP, b, NULL, NULL) == -1)
			return;
		cs->sweeping++;
	}
}

int
convstore_turn(struct convstore *cs, const char *id, size_t len,
    const char *agent, const char *shop, const char *queue,
    enum convstore_turn_kind kind, uint64_t text_hash,
    const struct sla_conv_state *first, const struct sla_conv_state *later,
    int64_t idle_none, int64_t now, int holds, convstore_cb cb, void *priv)
{
	const struct sla_conv_state *p;
	struct convstore_args	 a;
	char			 k = (char)kind, hash[17], idle[48];
	int			 i;

	convstore_head(cs, &a, CS_TURN, id, len);
	convstore_arg_num(&a, now);
	convstore_arg(&a, &k, 1);
	convstore_arg_str(&a, agent != NULL ? agent : "");
	/* the second only when it differs (service hours): most calls need one */
	if (idle_none == first->idle_at)
		convstore_arg_num(&a, first->idle_at);
	else
		convstore_arg(&a, idle, (size_t)snprintf(idle, sizeof(idle),
		    "%" PRId64 ":%" PRId64,
		    first->idle_at == INT64_MAX ? -1 : first->idle_at,
		    idle_none == INT64_MAX ? -1 : idle_none));
	convstore_arg(&a, id, len);
	convstore_arg_str(&a, cs->instance);
	convstore_arg_str(&a, shop != NULL ? shop : "");
	convstore_arg_str(&a, queue != NULL ? queue : "");
	if (kind == CONVSTORE_CUSTOMER) {
		convstore_arg(&a, hash, (size_t)snprintf(hash, sizeof(hash),
		    "%016" PRIx64, text_hash));
		for (p = first; p != NULL; p = p == first ? later : NULL)
			for (i = 0; i < 3; i++) {
				convstore_arg_num(&a, (int64_t)p->ms[i]);
				convstore_arg_num(&a, !p->ms[i] || p->due[i] ==
				    INT64_MAX ? -1 : p->due[i] > now ? p->due[i] - now : 0);
			}
	}
	convstore_arg_str(&a, holds ? "1" : "0");
	convstore_arg_num(&a, (int64_t)++cs->seq);
	return convstore_call(cs, &a, 0, CS_TURN, 0, cb, priv);
}

int
convstore_fire(struct convstore *cs, const char *id, size_t len,
    enum sla_event_type type, const struct sla_conv_state *held,
    const char *agent, const char *shop, const char *queue, convstore_cb cb,
    void *priv)
{
	struct convstore_args	 a;
	int			 i;

	convstore_head(cs, &a, CS_FIRE, id, len);
	convstore_arg_num(&a, held->opened);
	convstore_arg_num(&a, (int64_t)type);
	convstore_arg(&a, id, len);
	convstore_arg_str(&a, cs->instance);
	/* the round to write back to a Redis that has no record of it */
	convstore_arg_str(&a, held->first ? "1" : "0");
	convstore_arg_num(&a, (int64_t)(held->fired & ~(1u << type)));
	for (i = 0; i < 3; i++) {
		convstore_arg_num(&a, (int64_t)held->ms[i]);
		convstore_arg_num(&a, !held->ms[i] || held->due[i] == INT64_MAX ?
		    -1 : held->due[i]);
	}
	convstore_arg_num(&a, held->idle_at == INT64_MAX ? -1 : held->idle_at);
	convstore_arg_str(&a, agent != NULL ? agent : "");
	convstore_arg_str(&a, shop != NULL ? shop : "");
	convstore_arg_str(&a, queue != NULL ? queue : "");
	convstore_arg_num(&a, (int64_t)++cs->seq);
	return convstore_call(cs, &a, 0, CS_FIRE, 0, cb, priv);
}

int
convstore_plan(struct convstore *cs, const char *id, size_t len,
    const struct sla_conv_state *plan, convstore_cb cb, void *priv)
{
	struct convstore_args	 a;
	int			 i;

	convstore_head(cs, &a, CS_PLAN, id, len);
	convstore_arg_num(&a, plan->opened);
	for (i = 0; i < 3; i++) {
		convstore_arg_num(&a, (int64_t)plan->ms[i]);
		convstore_arg_num(&a, !plan->ms[i] || plan->due[i] == INT64_MAX ?
		    -1 : plan->due[i]);
	}
	convstore_arg(&a, id, len);
	convstore_arg_str(&a, cs->instance);
	convstore_arg_num(&a, plan->idle_at);
	convstore_arg_num(&a, (int64_t)++cs->seq);
	return convstore_call(cs, &a, 0, CS_PLAN, 0, cb, priv);
}

int
convstore_end(struct convstore *cs, const char *id, size_t len, int64_t at,
    int idle, int holds, convstore_cb cb, void *priv)
{
	struct convstore_args	 a;

	convstore_head(cs, &a, CS_END, id, len);
	convstore_arg_num(&a, at);
	convstore_arg_str(&a, idle ? "1" : "0");
	convstore_arg(&a, id, len);
	convstore_arg_str(&a, cs->instance);
	convstore_arg_str(&a, holds ? "1" : "0");
	convstore_arg_num(&a, (int64_t)++cs->seq);
	return convstore_call(cs, &a, 0, CS_END, 0, cb, priv);
}

size_t
convstore_pending(const struct convstore *cs)
{
	return cs != NULL && rconn_up(cs->rc) ? cs->nsent : 0;
}

size_t
convstore_connecting(const struct convstore *cs)
{
	return cs != NULL && rconn_connecting(cs->rc) ? cs->nwait : 0;
}

size_t
convstore_waiting(const struct convstore *cs)
{
	return cs != NULL ? cs->nwait : 0;
}

void
convstore_hurry(struct convstore *cs)
{
	if (cs != NULL && cs->nwait > 0)
		rconn_hurry(cs->rc);
}

int
convstore_on(const struct convstore *cs)
{
	return cs != NULL && cs->takeover_ms > 0 && cs->nwait < CONVSTORE_WAIT_MAX;
}

int
convstore_up(const struct convstore *cs)
{
	return cs != NULL && cs->takeover_ms > 0 && rconn_up(cs->rc);
}

static void
convstore_on_state(void *arg, int up, int lost)
{
	struct convstore	*cs = arg;

	(void)lost;	/* rconn logs it */
	if (up) {
		/* a new server, or one restarted: it may have none of them */
		memset(cs->loaded, 0, sizeof(cs->loaded));
		convstore_replay(cs);	/* older than what waits */
		convstore_flush(cs);
	}
}

/* The scripts' full text and their SHA1 (what EVALSHA names them by). */
static int
convstore_scripts(struct convstore *cs)
{
	static const char	*const parts[CS_NSCRIPT] = { convstore_lua_turn,
				    convstore_lua_fire, convstore_lua_end,
				    convstore_lua_plan, convstore_lua_sweep };
	size_t			 n;
	int			 i;

	for (i = 0; i < CS_NSCRIPT; i++) {
		n = sizeof(convstore_lua_common) + strlen(parts[i]);
		if ((cs->body[i] = malloc(n)) == NULL)
			return -1;
		/* the sweep needs none of the helpers */
		snprintf(cs->body[i], n, "%s%s", i == CS_SWEEP ? "" :
		    convstore_lua_common, parts[i]);
		if (rconn_script_sha(cs->body[i], strlen(cs->body[i]),
		    cs->sha[i]) == -1)
			return -1;
	}
	return 0;
}

struct convstore *
convstore_new(struct event_base *base, const struct config *cfg,
    uint32_t instance, convstore_claim_cb claim, void *arg, struct sbuf *errs)
{
	struct convstore	*cs;

	if ((cs = calloc(1, sizeof(*cs))) == NULL)
		goto oom;
	snprintf(cs->instance, sizeof(cs->instance), "%08" PRIx32, instance);
	cs->wait_tail = &cs->wait;
	cs->done_tail = &cs->done;
	cs->base = base;
	cs->claim = claim;
	cs->arg = arg;
	if (convstore_scripts(cs) == -1 ||
	    (cs->rc = rconn_new(base, "convstore", convstore_on_state, cs)) == NULL ||
	    (cs->ev_sweep = event_new(base, -1, EV_PERSIST, convstore_sweep,
	    cs)) == NULL || (cs->refused_log = logrepeat_new(8,
	    CONVSTORE_WARN_NS / 1000000)) == NULL)
		goto oom;
	convstore_set_config(cs, cfg);
	return cs;
oom:
	sbuf_line(errs, "convstore_new: out of memory");
	convstore_free(cs);
	return NULL;
}

void
convstore_set_config(struct convstore *cs, const struct config *cfg)
{
	struct timeval	 tv;
	uint64_t	 every;
	char		*p = NULL;

	if (cfg->redis.prefix != NULL && (p = strdup(cfg->redis.prefix)) == NULL) {
		log_warnx("convstore_set_config: out of memory, settings kept");
		return;
	}
	free(cs->prefix);
	cs->prefix = p;
	cs->takeover_ms = cfg->redis.takeover_ms;
	event_del(cs->ev_sweep);
	if (cs->takeover_ms == 0)
		return;	/* off: no connection is made */
	if (rconn_set_target(cs->rc, &cfg->redis, 0) == -1)
		log_warnx("convstore_set_config: out of memory, Redis target kept");
	/* a sweep every half takeover: a dead owner's deadline waits at most 1.5x */
	every = cs->takeover_ms / 2 < 100 ? 100 : cs->takeover_ms / 2;
	tv.tv_sec = (time_t)(every / 1000);
	tv.tv_usec = (suseconds_t)(every % 1000 * 1000);
	event_add(cs->ev_sweep, &tv);
}

void
convstore_free(struct convstore *cs)
{
	struct convstore_op	*op;
	struct convstore_reply	 r;
	int			 i;

	if (cs == NULL)
		return;
	cs->freeing = 1;
	if (cs->ev_sweep != NULL)
		event_free(cs->ev_sweep);
	rconn_free(cs->rc);	/* calls sent get ok 0 now */
	memset(&r, 0, sizeof(r));
	r.agent = r.charged_agent = "";
	while ((op = cs->wait) != NULL) {
		cs->wait = op->next;
		op->cb(&r, op->priv);
		free(op);
	}
	while ((op = cs->done) != NULL) {
		cs->done = op->next;
		free(op);
	}
	for (i = 0; i < CS_NSCRIPT; i++)
		free(cs->body[i]);
	free(cs->prefix);
	logrepeat_free(cs->refused_log);
	free(cs);
}
