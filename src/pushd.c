/* pushd: `chatmon notify`, the push worker: alerts from the stream through a consumer group to the routes they match (docs/notify.md). */
#include <sys/types.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <sodium.h>

#include "chatmon/cliconf.h"
#include "chatmon/config.h"
#include "chatmon/httpc.h"
#include "chatmon/log.h"
#include "chatmon/jsonw.h"
#include "chatmon/pushd.h"
#include "chatmon/pushmsg.h"
#include "chatmon/rconn.h"
#include "chatmon/report.h"
#include "chatmon/reportdb.h"
#include "chatmon/rreply.h"
#include "chatmon/state.h"
#include "chatmon/util.h"

/*
 * At least once, to every route an alert matches: a stream entry is acked
 * only when each of its routes has taken the alert or given up on it (a
 * dead letter). A crash before that leaves the entry pending in the group:
 * a restarted worker of the same consumer name reads its own pending
 * entries first, another worker claims them after notify.claim_idle. A live
 * worker re-claims what it holds every claim_idle / 3 (XCLAIM JUSTID), so
 * that no other worker takes an entry it is still working on. The done
 * marker each route sets when a target took an alert keeps a second pass,
 * and an alert that is in the stream twice (an SLA event two instances
 * raised), from reaching the target again. What is left is the window
 * between a target's 200 and the marker's SET: a crash there sends that one
 * alert again, with the same X-Chatmon-Alert-Id.
 */

#define PD_BATCH	100		/* entries per read or claim */
#define PD_BLOCK_MS	5000		/* a read waits this long for new entries */
/*
 * Memory: notify.max_waiting alerts held for the routes (50 000 by default)
 * and reading pauses until half have gone; the rest wait in the stream.
 * That is right for a burst every route works through, but a route whose
 * target hangs would hold them all, and stop the others for as long as it
 * takes to give them up (minutes). So a pause that lasts notify.timeout
 * (time for a target to answer) makes each route holding more than its
 * share (max_waiting / routes) give up its oldest waiting alerts, to the
 * dead letters, down to half its share (pd_shed). A healthy route has
 * worked through its part of a burst by then; reading goes on.
 * The same holds for notify.max_waiting_bytes, what the held items cost
 * (PD_ITEM_OVERHEAD and its strings): counted in items only, 50 000 ordinary alerts, or a
 * thousand with a chat text of 256 KiB (limits allow 1 MiB), outgrew the
 * unit's MemoryMax, and the pending entries that killed the worker were
 * claimed again by its successor. An item keeps the alert only as the
 * stream held it (the dead letter and a webhook need those bytes), not
 * its parsed tree too, which cost several times as much: the tree is
 * parsed again for each try (pd_send).
 */
/* What an item costs beyond its strings: the item, its entry, the allocator. */
#define PD_ITEM_OVERHEAD (sizeof(struct pd_item) + sizeof(struct pd_entry) + 96)
#define PD_HASH		65536		/* buckets of the two tables below */
#define PD_DONE_TTL	"172800"	/* a done marker outlives any redelivery: 2 days */
/*
 * Before a worker sends an alert it read new from the stream, it claims
 * the alert on each route (chatmon:notify:claim:{ID}:ROUTE = its consumer
 * name): a second copy of the alert (written twice, docs/alerts.md) that
 * another worker reads while the first is on its way finds the claim and
 * is acked as a duplicate, its delivery left to the claim's holder, whose
 * own entry stays pending until delivered; if the holder dies, whoever
 * takes that entry over (XAUTOCLAIM, or the holder restarted reading its
 * pending entries) takes the claim too and sends. The claim outlasts any
 * delivery attempt that ends; after a route's done marker it is not read.
 */
#define PD_CLAIM_TTL	"600000"	/* ms */
static const char pd_claim_lua[] =
    "local out = {}\n"
    "for i = 1, #KEYS, 2 do\n"
    "  if redis.call('EXISTS', KEYS[i]) == 1 then\n"
    "    out[#out + 1] = 1\n"
    "  else\n"
    "    local h = redis.call('GET', KEYS[i + 1])\n"
    "    if h and h ~= ARGV[1] and ARGV[3] == '0' then\n"
    "      out[#out + 1] = 2\n"
    "    else\n"
    "      redis.call('SET', KEYS[i + 1], ARGV[1], 'PX', ARGV[2])\n"
    "      out[#out + 1] = 0\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";
/* A folded message lists every id: this many keep it under WeCom's 4096 bytes. */
#define PD_FOLD_ROBOT	50
#define PD_FOLD_WEBHOOK	1000
#define PD_DAILY_CHECK_MS 30000
/*
 * A finished item stays findable this long after Redis confirmed its done
 * marker: a copy of its alert read while it was in flight has its done
 * markers asked before they were set. Until the confirmation it stays
 * however long that takes: a marker (or an XACK) that could not go while
 * Redis was away is written again when it is back, before our pending
 * entries are read again, and until then only the tombstone keeps the
 * alert from going twice. A dead letter is kept (with its alert) and
 * written again the same way, ahead of its marker.
 */
#define PD_TOMB_MS	30000
#define PD_DAILY_LEASE	"3600"		/* a worker that died while sending: another sends after */
#define PD_DAILY_KEEP	"259200"	/* sent (or dead): nobody sends the day again */

struct pd_entry {			/* a stream entry, acked when waiting is 0 */
	char		 sid[48];
	unsigned	 waiting;	/* routes that have not finished with it */
	int		 lost;		/* a route could not take it: not acked, claimed again */
	struct pd_entry	*prev, *next;	/* every entry held */
	struct pd_entry	*hnext;		/* its bucket of pushd.etab */
};

struct pd_route;

struct pd_item {			/* one alert on one route, or the daily summary */
	struct pd_route	*route;
	char		*id;
	json_t		*alert;		/* the daily summary: the report's JSON; NULL for an alert (raw) */
	size_t		 cost;		/* bytes it holds while live: PD_ITEM_OVERHEAD and its strings */
	char		*raw;		/* the alert as the stream held it; NULL: the daily (its dead letter's: its JSON) */
	int		 daily;		/* the daily summary: its marker is the day's key */
	struct pd_entry	**ents;		/* the entries it stands for (a duplicate joins) */
	size_t		 nents;
	struct pd_item	*next;		/* the route's queue, the tombstones, or pushd.unconf */
	struct pd_item	*hnext;		/* its bucket of pushd.itab */
	int64_t		 done_at;	/* a tombstone since (monotonic ms); 0: live */
	const char	*marker;	/* a tombstone's done marker not confirmed yet: "1", "dead" */
	int		 marker_out;	/* its SET is out */
	char		*dead_why;	/* its dead letter not confirmed yet: the error; owned */
	unsigned	 dead_attempts;
	int		 dead_out;	/* its XADD is out */
};

/* Why a try failed, for chatmon_notify_failures_total{reason}. */
enum pd_reason { PD_TIMEOUT, PD_CONNECT, PD_5XX, PD_429, PD_4XX, PD_REFUSED,
	PD_LIMITED, PD_NOMEM, PD_3XX, PD_NREASONS };
static const char *const pd_reasons[PD_NREASONS] = { "timeout", "connect",
	"http_5xx", "http_429", "http_4xx", "robot_refused", "robot_limited",
	"out_of_memory", "http_3xx" };

struct pushd;

struct pd_route {
	struct pushd		*pd;
	const struct config_route *cfg;
	struct pd_item		*head, **tail;	/* waiting for room in the rate */
	size_t			 nwait;
	size_t			 bytes;		/* what its live items cost */
	struct pd_item		*fly;		/* the message out, or waiting to be tried again */
	size_t			 nfly;
	unsigned		 attempts;	/* failed tries of fly */
	int			 busy;		/* a request is out */
	int64_t			 not_before;	/* fly's next try (monotonic ms) */
	int64_t			*sent_at;	/* the sends of the last rate_ms (monotonic ms), a ring of rate_n */
	size_t			 sent_head, sent_n;	/* the oldest, how many */
	struct event		*timer;
	/* for /metrics */
	uint64_t		 delivered, sent, folded, dup, dead;
	uint64_t		 pauses;	/* told it sends too much */
	uint64_t		 failures[PD_NREASONS];
};

/*
 * The daily summary: past notify.daily_at, yesterday's report goes to one
 * route as a message of its own. One worker sends it: the first to SET the
 * day's lease NX; the lease becomes the day's marker when the message is
 * sent or given up.
 */
struct pd_daily {
	struct pushd		*pd;
	struct pd_route		*route;
	struct event		*timer;
	struct reportdb		*db;
	char			 today[16];	/* this worker has it in hand for this day */
	char			 day[16];	/* the day being reported */
	int			 busy;		/* the claim or the report is out */
	int			 held;		/* the claim won: its lease renewed until done */
};

struct pushd {
	struct event_base	*base;
	struct config		*cfg;
	struct rconn		*rc;		/* commands */
	struct rconn		*rread;		/* the blocking reads */
	struct httpc		*http;
	struct pd_route		*routes;
	size_t			 nroutes;
	struct pd_entry		*ents;		/* held, any order */
	struct pd_entry		*etab[PD_HASH];	/* by stream id */
	struct pd_item		*itab[PD_HASH];	/* by route and alert id */
	size_t			 held;		/* items on routes */
	size_t			 held_max;	/* notify.max_waiting */
	size_t			 held_bytes;	/* what the items on routes cost */
	size_t			 check_bytes;	/* and the entries waiting for their markers will */
	size_t			 bytes_max;	/* notify.max_waiting_bytes */
	int			 paused;	/* reading waits for pd_held_half */
	struct pd_item		*tombs, **tombs_tail;	/* finished, oldest first */
	struct pd_item		*unconf, **unconf_tail;	/* finished, marker or dead letter not confirmed */
	char			*prefix;
	char			 stream[512], dead[512], consumer[256];
	int			 stopping;	/* replies that come now are dropped */
	int			 draining;	/* SIGTERM: nothing new, what is out finishes (pd_on_drain) */
	int64_t			 drain_until;	/* monotonic ms: then it stops anyway */
	int			 drain_ping;	/* the last PING is out: its answer ends the loop */
	struct event		*ev_drain;
	int			 group_ok;	/* the group exists */
	int			 group_had;	/* it existed once: gone means a new stream */
	int			 reading;	/* a read (or the group's creation) is out */
	size_t			 read_count;	/* its COUNT: pd_read_size */
	int			 read_pending;	/* it reads our own pending entries */
	int			 pending_done;	/* our own pending entries read */
	char			 from[48];	/* the next read of our own pending starts after */
	int			 claiming;
	char			 claim_from[48];
	struct event		*ev_read, *ev_claim, *ev_refresh, *ev_term, *ev_int;
	struct event		*ev_shed;	/* reading paused this long: pd_shed */
	struct pd_daily		*daily;		/* NULL without notify.daily_at */
	struct evhttp		*admin;
	uint64_t		 n_entries, n_unmatched, n_bad;
	struct sbuf		 out;		/* /metrics */
};

static void	pd_read(struct pushd *);
static void	pd_pump(struct pd_route *);
static void	pd_on_entries(struct pushd *, const redisReply *list, int fresh);
static void	pd_daily_finish(struct pd_daily *, const char *marker);

/* Wall clock: signatures, Retry-After dates, the days. */
static int64_t
pd_now(void)
{
	return util_wall_ms();
}

/* Waits and the rate: a clock stepped back does not hold them up. */
static int64_t
pd_mono(void)
{
	return (int64_t)(util_mono_ns() / 1000000);
}

static void
pd_arm(struct event *ev, int64_t ms)
{
	struct timeval	tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* Over either bound of what is held: reading pauses. */
static int
pd_held_full(const struct pushd *pd)
{
	return pd->held >= pd->held_max ||
	    pd->held_bytes + pd->check_bytes >= pd->bytes_max;
}

/* Down to half of both: a paused read goes on. */
static int
pd_held_half(const struct pushd *pd)
{
	return pd->held <= pd->held_max / 2 &&
	    pd->held_bytes + pd->check_bytes <= pd->bytes_max / 2;
}

/* --- entries: acked when every route is done with them ------------------- */

static uint32_t
pd_hash(const void *route, const char *key)
{
	return (util_fnv1a32(key, strlen(key)) ^ (uint32_t)(uintptr_t)route) &
	    (PD_HASH - 1);
}

static struct pd_entry *
pd_entry_find(struct pushd *pd, const char *sid)
{
	struct pd_entry	*e;

	for (e = pd->etab[pd_hash(NULL, sid)]; e != NULL; e = e->hnext)
		if (strcmp(e->sid, sid) == 0)
			return e;
	return NULL;
}

static void
pd_entry_add(struct pushd *pd, struct pd_entry *e)
{
	uint32_t	h = pd_hash(NULL, e->sid);

	if ((e->next = pd->ents) != NULL)
		e->next->prev = e;
	pd->ents = e;
	e->hnext = pd->etab[h];
	pd->etab[h] = e;
}

static void
pd_ack(struct pushd *pd, const char *sid)
{
	/* when it cannot go, the entry stays pending: our claim pass finds it again */
	rconn_command(pd->rc, NULL, NULL, 0, "XACK %s %s %s", pd->stream,
	    pd->cfg->notify.group, sid);
}

/* One route finished with e. */
static void
pd_entry_done(struct pushd *pd, struct pd_entry *e)
{
	struct pd_entry	**pp;

	if (--e->waiting > 0)
		return;
	/* a lost entry stays pending: no longer refreshed, our claim pass takes it again */
	if (!e->lost)
		pd_ack(pd, e->sid);
	for (pp = &pd->etab[pd_hash(NULL, e->sid)]; *pp != e; pp = &(*pp)->hnext)
		;
	*pp = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		pd->ents = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	free(e);
}

static void
pd_item_free(struct pd_item *it)
{
	free(it->id);
	json_decref(it->alert);
	free(it->raw);
	free(it->ents);
	free(it->dead_why);
	free(it);
}

static struct pd_item *
pd_item_find(struct pushd *pd, struct pd_route *r, const char *id)
{
	struct pd_item	*it;

	for (it = pd->itab[pd_hash(r, id)]; it != NULL; it = it->hnext)
		if (it->route == r && strcmp(it->id, id) == 0)
			return it;
	return NULL;
}

/* Tombstones older than PD_TOMB_MS leave the table. */
static void
pd_tombs_purge(struct pushd *pd, int64_t now)
{
	struct pd_item	*it, **pp;

	while ((it = pd->tombs) != NULL && now - it->done_at > PD_TOMB_MS) {
		if ((pd->tombs = it->next) == NULL)
			pd->tombs_tail = &pd->tombs;
		for (pp = &pd->itab[pd_hash(it->route, it->id)]; *pp != it;
		    pp = &(*pp)->hnext)
			;
		*pp = it->hnext;
		pd_item_free(it);
	}
}

/* A tombstone whose marker is confirmed (or that has none): PD_TOMB_MS from now. */
static void
pd_tomb(struct pushd *pd, struct pd_item *it)
{
	it->done_at = pd_mono();
	it->next = NULL;
	*pd->tombs_tail = it;
	pd->tombs_tail = &it->next;
	pd_tombs_purge(pd, it->done_at);
}

/*
 * Redis confirmed what it was asked to keep of a finished item: once both
 * its done marker and its dead letter are, it leaves pushd.unconf (and
 * the alert it kept for the dead letter goes) and is a tombstone for
 * PD_TOMB_MS.
 */
static void
pd_unconf_confirmed(struct pushd *pd, struct pd_item *it)
{
	struct pd_item	**pp;

	if (it->marker != NULL || it->dead_why != NULL)
		return;
	for (pp = &pd->unconf; *pp != it; pp = &(*pp)->next)
		;
	if ((*pp = it->next) == NULL)
		pd->unconf_tail = pp;
	free(it->raw);
	it->raw = NULL;
	pd_tomb(pd, it);
}

/* Redis answered a done marker's SET. */
static void
pd_on_marker(redisReply *rep, void *priv)
{
	struct pd_item	*it = priv;
	struct pushd	*pd = it->route->pd;

	if (pd->stopping)
		return;
	it->marker_out = 0;
	if (rep == NULL)
		return;		/* the connection went: again when it is back */
	if (rep->type == REDIS_REPLY_ERROR) {
		/* not written: the tombstone stays, the marker goes again at the next connection */
		log_warnx("pd_on_marker: route %s: %s's done marker: redis: %s",
		    it->route->cfg->name, it->id, rep->str);
		return;
	}
	it->marker = NULL;
	pd_unconf_confirmed(pd, it);
}

/* Redis answered a dead letter's XADD. */
static void
pd_on_dead(redisReply *rep, void *priv)
{
	struct pd_item	*it = priv;
	struct pushd	*pd = it->route->pd;

	if (pd->stopping)
		return;
	it->dead_out = 0;
	if (rep == NULL)
		return;		/* the connection went: again when it is back */
	if (rep->type == REDIS_REPLY_ERROR) {
		log_warnx("pd_on_dead: route %s: %s's dead letter: redis: %s",
		    it->route->cfg->name, it->id, rep->str);
		return;
	}
	free(it->dead_why);
	it->dead_why = NULL;
	pd_unconf_confirmed(pd, it);
}

/*
 * What Redis has not confirmed of a finished item goes (again): the dead
 * letter first, then the done marker, on one connection, so that a crash
 * between the two leaves the alert to be tried again rather than marked
 * dead with no dead letter to show for it.
 */
static void
pd_unconf_send(struct pushd *pd, struct pd_item *it)
{
	char	n[16];

	if (it->dead_why != NULL && !it->dead_out) {
		snprintf(n, sizeof(n), "%u", it->dead_attempts);
		if (rconn_command(pd->rc, pd_on_dead, it, 0, "XADD %s MAXLEN ~ 100000 "
		    "* route %s id %s alert %s error %s attempts %s", pd->dead,
		    it->route->cfg->name, it->id, it->raw != NULL ? it->raw : "{}",
		    it->dead_why, n) == 0)
			it->dead_out = 1;
	}
	/* the day's key: the lease becomes "sent" or "dead" (the id is daily-DAY) */
	if (it->daily && it->marker != NULL && !it->marker_out &&
	    rconn_command(pd->rc, pd_on_marker, it, 0, "SET %schatmon:notify:daily:%s "
	    "%s EX " PD_DAILY_KEEP, pd->prefix, it->id + 6,
	    strcmp(it->marker, "1") == 0 ? "sent" : "dead") == 0)
		it->marker_out = 1;
	/* the alert id as the hash tag: one alert's markers share a Cluster slot (one script) */
	if (!it->daily && it->marker != NULL && !it->marker_out &&
	    rconn_command(pd->rc, pd_on_marker, it, 0, "SET %schatmon:notify:done:{%s}:%s "
	    "%s EX " PD_DONE_TTL, pd->prefix, it->id, it->route->cfg->name,
	    it->marker) == 0)
		it->marker_out = 1;
}

/*
 * Redis is back: the dead letters and markers it has not confirmed go
 * again, before anything is read.
 */
static void
pd_unconf_flush(struct pushd *pd)
{
	struct pd_item	*it;

	for (it = pd->unconf; it != NULL && rconn_up(pd->rc); it = it->next)
		pd_unconf_send(pd, it);
}

/*
 * The route is done with the item (delivered, or dead): its dead letter
 * (pd_dead_letter) is written, marker ("1", "dead") is set (the daily
 * summary's is the day's key), each entry it stands for hears so
 * (the XACK after them), and it stays behind as a tombstone: until Redis
 * confirms both, then PD_TOMB_MS. The alert stays as long as its dead
 * letter needs it.
 */
static void
pd_item_done(struct pushd *pd, struct pd_item *it, const char *marker)
{
	size_t	i;

	it->done_at = pd_mono();
	it->next = NULL;
	it->marker = marker;
	/* the daily summary's dead letter holds the report, as an alert's holds it */
	if (it->daily && it->dead_why != NULL && it->raw == NULL && it->alert != NULL)
		it->raw = json_dumps(it->alert, JSON_COMPACT);
	if (marker != NULL || it->dead_why != NULL) {
		*pd->unconf_tail = it;
		pd->unconf_tail = &it->next;
		pd_unconf_send(pd, it);
	}
	for (i = 0; i < it->nents; i++)
		pd_entry_done(pd, it->ents[i]);
	pd->held--;
	pd->held_bytes -= it->cost;
	it->route->bytes -= it->cost;
	it->cost = 0;
	json_decref(it->alert);
	free(it->ents);
	it->alert = NULL;
	it->ents = NULL;
	it->nents = 0;
	if (it->dead_why == NULL) {
		free(it->raw);
		it->raw = NULL;
	}
	if (marker == NULL && it->dead_why == NULL)
		pd_tomb(pd, it);
	/* from the loop, not from under whatever finished it (a read's batch) */
	if (pd->paused && pd_held_half(pd))
		pd_arm(pd->ev_read, 0);
}

/* --- a route: at most rate_n sends in any rate_ms, one message out at a time - */

/*
 * The sends of the last rate_ms stay in a ring; what is left of rate_n is
 * what may go now. Not a token bucket: one that starts full with N and
 * refills at N a period lets 2N go within one period (N at once, N more
 * as it refills), and DingTalk throttles a robot for 10 minutes once it
 * has had more than 20 in a minute. A send leaves the window 1 % of the
 * period late (at most a second): the robot counts arrivals, and one that
 * took longer on its way than the send a period later would make N + 1
 * in its window.
 */
static int64_t
pd_period(const struct pd_route *r)
{
	uint64_t	slack = r->cfg->rate_ms / 100;

	return (int64_t)(r->cfg->rate_ms + (slack > 1000 ? 1000 : slack));
}

static size_t
pd_window(struct pd_route *r, int64_t now)
{
	while (r->sent_n > 0 && now - r->sent_at[r->sent_head] >= pd_period(r)) {
		r->sent_head = (r->sent_head + 1) % r->cfg->rate_n;
		r->sent_n--;
	}
	return r->cfg->rate_n - r->sent_n;
}

static void
pd_window_take(struct pd_route *r, int64_t now)
{
	r->sent_at[(r->sent_head + r->sent_n) % r->cfg->rate_n] = now;
	r->sent_n++;
}

/* The route is done with it, off its queue: marker "1" delivered, "dead" given up. */
static void
pd_finish(struct pd_route *r, struct pd_item *it, const char *marker)
{
	if (it->daily && r->pd->daily != NULL)
		pd_daily_finish(r->pd->daily, marker);
	pd_item_done(r->pd, it, marker);
}

static void
pd_fly_done(struct pd_route *r, const char *marker)
{
	struct pd_item	*it;

	while ((it = r->fly) != NULL) {
		r->fly = it->next;
		pd_finish(r, it, marker);
	}
	r->nfly = 0;
	r->attempts = 0;
}

static void
pd_delivered(struct pd_route *r)
{
	r->delivered++;
	if (r->nfly == 1)
		r->sent++;
	else
		r->folded += r->nfly;
	log_debug("pd_delivered: route %s: %zu alert%s (first %s)", r->cfg->name,
	    r->nfly, r->nfly == 1 ? "" : "s", r->fly->id);
	pd_fly_done(r, "1");
}

/*
 * One alert to the dead letters, counted; the caller finishes it, which
 * writes the dead letter as it does the done marker: kept until Redis
 * confirms it, written again when Redis is back (a dead letter dropped
 * while Redis was away vanished, its alert marked done).
 */
static void
pd_dead_letter(struct pd_route *r, struct pd_item *it, const char *why,
    unsigned attempts)
{
	struct pushd	*pd = r->pd;
	char		 n[16];

	r->dead++;
	free(it->dead_why);
	if ((it->dead_why = strdup(why)) != NULL) {
		it->dead_attempts = attempts;
		return;
	}
	/* no memory to keep it: one try, as it can */
	snprintf(n, sizeof(n), "%u", attempts);
	rconn_command(pd->rc, NULL, NULL, 0, "XADD %s MAXLEN ~ 100000 * route %s "
	    "id %s alert %s error %s attempts %s", pd->dead, r->cfg->name,
	    it->id, it->raw != NULL ? it->raw : "{}", why, n);
}

/* Each alert of the message goes to the dead letters, and is done. */
static void
pd_bury(struct pd_route *r, const char *why)
{
	struct pd_item	*it;

	for (it = r->fly; it != NULL; it = it->next) {
		log_warnx("pd_bury: route %s: %s to the dead letters after %u tries: %s",
		    r->cfg->name, it->id, r->attempts, why);
		pd_dead_letter(r, it, why, r->attempts);
	}
	pd_fly_done(r, "dead");
}

/*
 * Reading has paused for notify.timeout: every route holding more than its
 * share of notify.max_waiting gives up its oldest waiting alerts (not the
 * message out) down to half its share, as it gives up on a message that
 * failed notify.attempts times: dead letters, done markers, acked once the
 * entry's other routes are done. One line per route says how many, and
 * the first and last id (each is in the dead letters).
 */
static void
pd_shed(struct pushd *pd)
{
	struct pd_route	*r;
	struct pd_item	*it;
	size_t		 i, share = pd->held_max / pd->nroutes, was, wasb, n;
	size_t		 bshare = pd->bytes_max / pd->nroutes;
	const char	*why;
	char		 first[256], last[256];

	for (i = 0; i < pd->nroutes; i++) {
		r = &pd->routes[i];
		was = r->nwait + r->nfly;
		wasb = r->bytes;
		if (was <= share && wasb <= bshare)
			continue;
		why = was > share ? "over the route's share of notify.max_waiting" :
		    "over the route's share of notify.max_waiting_bytes";
		for (n = 0; r->head != NULL && (r->nwait + r->nfly > share / 2 ||
		    r->bytes > bshare / 2); n++) {
			it = r->head;
			if ((r->head = it->next) == NULL)
				r->tail = &r->head;
			r->nwait--;
			snprintf(n == 0 ? first : last, sizeof(first), "%s", it->id);
			pd_dead_letter(r, it, why, 0);
			pd_finish(r, it, "dead");
		}
		if (n > 0)
			log_warnx("pd_shed: route %s: %zu alerts waiting (%zu KiB), "
			    "over its share of %zu (%zu KiB): the oldest %zu (%s to "
			    "%s) to the dead letters", r->cfg->name, was, wasb / 1024,
			    share, bshare / 1024, n, first, n == 1 ? first : last);
	}
}

/*
 * A try that failed: why, counted; the next try after the backoff, or the
 * dead letters. A target that says it is sent too much (a 429, a robot's
 * rate-limit code) has not judged the message: the route pauses, sending
 * nothing, for the target's own time (pushmsg_limited_pause: DingTalk
 * throttles a robot 10 minutes) and the try is not one of its attempts;
 * retried sooner, every alert of the throttle went to the dead letters.
 */
static void
pd_failed(struct pd_route *r, enum pd_reason reason, const char *why, long status,
    const char *retry_after, int limited)
{
	struct pushd	*pd = r->pd;
	int64_t		 wait, ra;

	r->failures[reason]++;
	if (limited) {
		wait = pushmsg_limited_pause(r->cfg->target, retry_after, pd_now(),
		    pd->cfg->notify.limited_pause_ms);
		r->pauses++;
		log_warnx("pd_failed: route %s: %s (HTTP status %ld): the route sends "
		    "nothing for %llds, %zu alert%s waiting", r->cfg->name, why, status,
		    (long long)(wait + 999) / 1000, r->nwait + r->nfly,
		    r->nwait + r->nfly == 1 ? "" : "s");
		r->not_before = pd_mono() + wait;
		pd_arm(r->timer, wait);
		return;
	}
	r->attempts++;
	log_info("pd_failed: route %s: %zu alert%s not taken (%s, HTTP status %ld), "
	    "try %u of %llu", r->cfg->name, r->nfly, r->nfly == 1 ? "" : "s", why,
	    status, r->attempts, (unsigned long long)pd->cfg->notify.attempts);
	if (r->attempts >= pd->cfg->notify.attempts) {
		pd_bury(r, why);
		pd_pump(r);
		return;
	}
	wait = (int64_t)pushmsg_backoff(pd->cfg->notify.backoff_ms, r->attempts,
	    randombytes_random());
	if ((ra = pushmsg_retry_after(retry_after, pd_now())) > wait)
		wait = ra;
	r->not_before = pd_mono() + wait;
	pd_arm(r->timer, wait);
}

static void
pd_on_answer(void *arg, long status, const char *err, const char *body,
    size_t len, const char *retry_after)
{
	struct pd_route	*r = arg;
	const char	*why = err;
	char		 buf[PUSHMSG_WHY_MAX];
	int		 limited = 0;

	r->busy = 0;
	if (why == NULL)
		why = pushmsg_judge(r->cfg->target, status, body, len, &limited,
		    buf, sizeof(buf));
	if (why == NULL) {
		pd_delivered(r);
		pd_pump(r);
		return;
	}
	pd_failed(r, err != NULL ? (strcmp(err, "timed out") == 0 ? PD_TIMEOUT :
	    PD_CONNECT) : status == 429 ? PD_429 : status >= 500 ? PD_5XX :
	    status >= 300 && status < 400 ? PD_3XX :
	    status < 200 || status >= 300 ? PD_4XX : limited ? PD_LIMITED :
	    PD_REFUSED, why, status, retry_after, limited);
}

static void
pd_send(struct pd_route *r)
{
	struct pushd		*pd = r->pd;
	struct pushmsg_opts	 o = { pd->cfg->dashboard.public_url,
				       pd->cfg->sla.utc_offset_min, pd_now() };
	struct pushmsg_req	 q;
	struct pd_item		*it;
	json_t			**a;
	const char		**raw, *hdr[2];
	size_t			 i, nh = 0;
	int			 rc;

	a = calloc(r->nfly, sizeof(*a));
	raw = calloc(r->nfly, sizeof(*raw));
	pushmsg_req_init(&q);
	if (a == NULL || raw == NULL)
		goto fail;
	/* the tree again from the bytes held: holding both cost several times the alert */
	for (it = r->fly, i = 0; it != NULL; it = it->next, i++) {
		if (it->raw != NULL && (a[i] = json_loadb(it->raw, strlen(it->raw),
		    JSON_ALLOW_NUL, NULL)) == NULL)
			goto fail;
		raw[i] = it->raw;
	}
	rc = r->fly->raw == NULL ? pushmsg_build_daily(&q, r->cfg, &o, r->fly->alert) :
	    pushmsg_build(&q, r->cfg, &o, a, raw, r->nfly);
	if (rc == -1)
		goto fail;
	if (q.sig[0] != '\0')
		hdr[nh++] = q.sig;
	hdr[nh++] = sbuf_str(&q.id);
	if (httpc_post(pd->http, sbuf_str(&q.url), hdr, nh, sbuf_str(&q.body),
	    q.body.len, pd->cfg->notify.timeout_ms, pd_on_answer, r) == -1)
		goto fail;
	r->busy = 1;
	goto out;
fail:
	pd_failed(r, PD_NOMEM, "out of memory", 0, NULL, 0);
out:
	pushmsg_req_free(&q);
	for (i = 0; a != NULL && i < r->nfly; i++)
		json_decref(a[i]);
	free(a);
	free(raw);
}

/*
 * What to send now: a message waiting for its next try, else the alerts
 * waiting, one by one while the window has room for each, folded into
 * one message when it has not (nothing is dropped; a fold holds at most
 * PD_FOLD_* alerts, the rest wait for the next room). The daily summary
 * goes alone.
 */
static void
pd_pump(struct pd_route *r)
{
	struct pd_item	*last;
	int64_t		 now = pd_mono();
	size_t		 cap, left;

	if (r->busy || r->pd->draining || (r->fly == NULL && r->head == NULL))
		return;
	if (r->fly != NULL && now < r->not_before) {
		pd_arm(r->timer, r->not_before - now);
		return;
	}
	if ((left = pd_window(r, now)) == 0) {
		/* when the oldest send of the window leaves it */
		pd_arm(r->timer, r->sent_at[r->sent_head] + pd_period(r) - now);
		return;
	}
	if (r->fly == NULL) {
		cap = r->nwait <= left || r->head->raw == NULL ? 1 :
		    r->cfg->target == CONFIG_TARGET_WEBHOOK ? PD_FOLD_WEBHOOK :
		    PD_FOLD_ROBOT;
		r->fly = last = r->head;
		for (r->nfly = 1; r->nfly < cap && last->next != NULL &&
		    last->next->raw != NULL; r->nfly++)
			last = last->next;
		r->head = last->next;
		last->next = NULL;
		r->nwait -= r->nfly;
		if (r->head == NULL)
			r->tail = &r->head;
		r->attempts = 0;
	}
	pd_window_take(r, now);	/* a folded message too is one request, a retry too */
	pd_send(r);
}

static void
pd_on_route_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pd_pump(arg);
}

/*
 * The alert joins the route's queue, or the item already there with its id
 * (two instances raised one SLA event: one message). e is NULL for the
 * daily summary. The item owns a reference to alert.
 */
static void
pd_enqueue(struct pd_route *r, struct pd_entry *e, const char *id,
    json_t *alert, const char *raw)
{
	struct pushd	 *pd = r->pd;
	struct pd_item	 *it;
	struct pd_entry	**ne;
	uint32_t	  h;

	if ((it = pd_item_find(pd, r, id)) != NULL && it->done_at != 0) {
		r->dup++;	/* finished a moment ago: its marker may not have been set yet */
		if (e != NULL)
			pd_entry_done(pd, e);
		return;
	}
	if (it != NULL) {
		if ((ne = reallocarray(it->ents, it->nents + 1, sizeof(*ne))) == NULL)
			goto oom;
		it->ents = ne;
		it->ents[it->nents++] = e;
		r->dup++;
		return;
	}
	if ((it = calloc(1, sizeof(*it))) == NULL || (it->id = strdup(id)) == NULL ||
	    (raw != NULL && (it->raw = strdup(raw)) == NULL) ||
	    (e != NULL && (it->ents = calloc(1, sizeof(*it->ents))) == NULL)) {
		if (it != NULL)
			pd_item_free(it);
		goto oom;
	}
	it->route = r;
	/* an alert keeps its bytes only (pd_send parses them); the daily its report */
	it->alert = raw == NULL ? json_incref(alert) : NULL;
	it->daily = raw == NULL;
	it->cost = PD_ITEM_OVERHEAD + strlen(id) + (raw != NULL ? strlen(raw) : 0);
	if (e != NULL)
		it->ents[it->nents++] = e;
	h = pd_hash(r, id);
	it->hnext = pd->itab[h];
	pd->itab[h] = it;
	*r->tail = it;
	r->tail = &it->next;
	r->nwait++;
	r->bytes += it->cost;
	pd->held++;
	pd->held_bytes += it->cost;
	pd_pump(r);
	return;
oom:
	log_warnx("pd_enqueue: route %s: out of memory, %s left pending", r->cfg->name,
	    id);
	if (e != NULL) {
		e->lost = 1;
		pd_entry_done(pd, e);
	} else if (pd->daily != NULL)
		pd_daily_finish(pd->daily, NULL);
}

/* --- reading the stream --------------------------------------------------- */

struct pd_check {			/* an entry waiting for its done markers */
	struct pushd	*pd;
	struct pd_entry	*e;
	char		*id;		/* the alert's; its tree went once matched */
	char		*raw;
	size_t		 cost;		/* in pushd.check_bytes */
	size_t		*route;		/* the routes it matches */
	size_t		 n;
};

static void
pd_check_free(struct pd_check *c)
{
	if (c->pd != NULL)
		c->pd->check_bytes -= c->cost;
	free(c->id);
	free(c->raw);
	free(c->route);
	free(c);
}

static void
pd_on_markers(redisReply *rep, void *priv)
{
	struct pd_check	*c = priv;
	struct pushd	*pd = c->pd;
	struct pd_route	*r;
	const char	*id = c->id;
	size_t		 i;

	if (pd->stopping || pd->draining) {
		/* stopping: its entry stays pending, read again at the next start */
		pd_check_free(c);
		return;
	}
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
		log_warnx("pd_on_markers: alert %s: its done markers and claims: "
		    "redis: %s: sent", id, rep->str);
	for (i = 0; i < c->n; i++) {
		r = &pd->routes[c->route[i]];
		/*
		 * 1: done before; 2: another worker's copy is on its way.
		 * Redis away or refusing: send; at least once beats at most once.
		 */
		if (rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
		    i < rep->elements && rep->element[i]->type == REDIS_REPLY_INTEGER &&
		    rep->element[i]->integer != 0) {
			r->dup++;
			log_debug("pd_on_markers: route %s: alert %s %s", r->cfg->name,
			    id, rep->element[i]->integer == 1 ? "done before" :
			    "claimed by another worker");
			pd_entry_done(pd, c->e);
			continue;
		}
		pd_enqueue(r, c->e, id, NULL, c->raw);
	}
	pd_check_free(c);
	/* what paused the read may have been these, all found done */
	if (pd->paused && pd_held_half(pd))
		pd_arm(pd->ev_read, 0);
}

/*
 * One entry: which routes want it, then which of them already have it or
 * another worker's copy of it (only for an entry read new: one taken over
 * or read again is the holder's own, and takes the claim).
 */
static void
pd_on_entry(struct pushd *pd, const char *sid, const redisReply *fv, int fresh)
{
	struct pd_check	*c = NULL;
	struct pd_entry	*e = NULL;
	const char	*raw, *id, **argv = NULL;
	size_t		 len, i, j, nkeys = 0, *argvlen = NULL;
	char		**keys = NULL, numkeys[24];
	json_t		*a = NULL;

	if (strlen(sid) >= sizeof(e->sid) || pd_entry_find(pd, sid) != NULL)
		return;		/* held already: our claim pass found it again */
	if (pd->draining)
		return;		/* stopping: pending, read again at the next start */
	pd->n_entries++;
	/*
	 * A raw NUL byte is no JSON chatmond writes (it escapes U+0000), but
	 * jansson takes one after a number; the alert is kept and sent as a
	 * C string, so a webhook would get, and have signed, a body cut there.
	 */
	if ((raw = rreply_field(fv, "alert", &len)) != NULL &&
	    memchr(raw, '\0', len) != NULL) {
		pd->n_bad++;
		log_info("pd_on_entry: entry %s holds a raw NUL byte, no alert: acked",
		    sid);
		pd_ack(pd, sid);
		return;
	}
	if (raw == NULL ||
	    /* chat text may hold U+0000: chatmond keeps it, so must this */
	    (a = json_loadb(raw, len, JSON_ALLOW_NUL, NULL)) == NULL ||
	    !json_is_object(a) || (id = jsonw_cstr(a, "id")) == NULL ||
	    strlen(id) > 200 || strchr(id, ' ') != NULL) {
		/* nothing to deliver: an entry trimmed away, or not ours */
		pd->n_bad++;
		log_info("pd_on_entry: entry %s holds no readable alert: acked", sid);
		json_decref(a);
		pd_ack(pd, sid);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->route = calloc(pd->nroutes, sizeof(*c->route))) == NULL ||
	    (c->raw = strndup(raw, len)) == NULL)
		goto oom;
	c->pd = pd;
	if ((c->id = strdup(id)) == NULL)
		goto oom;
	for (i = 0; i < pd->nroutes; i++)
		if (pushmsg_match(pd->routes[i].cfg, a))
			c->route[c->n++] = i;
	json_decref(a);
	a = NULL;
	/* held once the markers are read: counted now, or the next read overshoots the bound */
	c->cost = c->n * (PD_ITEM_OVERHEAD + len + strlen(c->id));
	pd->check_bytes += c->cost;
	if (c->n == 0) {
		pd->n_unmatched++;
		pd_ack(pd, sid);
		pd_check_free(c);
		return;
	}
	if ((e = calloc(1, sizeof(*e))) == NULL ||
	    (argv = calloc(2 * c->n + 7, sizeof(*argv))) == NULL ||
	    (argvlen = calloc(2 * c->n + 7, sizeof(*argvlen))) == NULL ||
	    (keys = calloc(2 * c->n, sizeof(*keys))) == NULL)
		goto oom;
	nkeys = 2 * c->n;
	snprintf(e->sid, sizeof(e->sid), "%s", sid);
	e->waiting = (unsigned)c->n;
	pd_entry_add(pd, e);
	c->e = e;
	snprintf(numkeys, sizeof(numkeys), "%zu", nkeys);
	argv[0] = "EVAL";
	argv[1] = pd_claim_lua;
	argv[2] = numkeys;
	for (i = 0; i < nkeys; i++) {
		if (asprintf(&keys[i], "%schatmon:notify:%s:{%s}:%s", pd->prefix,
		    i % 2 == 0 ? "done" : "claim", c->id,
		    pd->routes[c->route[i / 2]].cfg->name) == -1) {
			keys[i] = NULL;
			break;
		}
		argv[i + 3] = keys[i];
	}
	argv[nkeys + 3] = pd->consumer;
	argv[nkeys + 4] = PD_CLAIM_TTL;
	argv[nkeys + 5] = fresh ? "0" : "1";
	for (j = 0; j < nkeys + 6; j++)
		argvlen[j] = argv[j] != NULL ? strlen(argv[j]) : 0;
	if (i < nkeys || rconn_command_argv(pd->rc, pd_on_markers, c, 0,
	    (int)nkeys + 6, argv, argvlen) == -1)
		pd_on_markers(NULL, c);
	c = NULL;
	goto out;
oom:
	log_warnx("pd_on_entry: out of memory: entry %s left pending", sid);
	free(e);
	if (c != NULL)
		pd_check_free(c);
	json_decref(a);
out:
	for (i = 0; i < nkeys; i++)
		free(keys[i]);
	free(keys);
	free(argv);
	free(argvlen);
}

/* [[sid, [field, value, ...]], ...]; a nil fields array: trimmed from the stream. */
static void
pd_on_entries(struct pushd *pd, const redisReply *list, int fresh)
{
	const redisReply	*e;
	size_t			 i;

	for (i = 0; list != NULL && list->type == REDIS_REPLY_ARRAY &&
	    i < list->elements; i++) {
		e = list->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		pd_on_entry(pd, e->element[0]->str, e->element[1], fresh);
	}
}

/*
 * The next read's COUNT: a read of PD_BATCH entries of 1 MiB each (limits
 * allow such alerts) would hold 100 MiB in the reply alone; entries as
 * large as the last read's take about a sixteenth of
 * notify.max_waiting_bytes a read.
 */
static void
pd_read_size(struct pushd *pd, const redisReply *list)
{
	const redisReply	*e;
	size_t			 i, j, bytes = 0, n;

	if (list == NULL || list->elements == 0)
		return;
	for (i = 0; i < list->elements; i++) {
		e = list->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		for (j = 0; j < e->element[1]->elements; j++)
			bytes += e->element[1]->element[j]->len + 16;
	}
	n = bytes == 0 ? PD_BATCH : pd->bytes_max / 16 / (bytes / list->elements + 1);
	pd->read_count = n < 1 ? 1 : n > PD_BATCH ? PD_BATCH : n;
}

static void
pd_on_read(redisReply *r, void *priv)
{
	struct pushd		*pd = priv;
	const redisReply	*s, *last = NULL;
	size_t			 got = 0;

	pd->reading = 0;
	if (r == NULL || pd->stopping)
		return;		/* the connection went: pd_on_state reads again */
	if (r->type == REDIS_REPLY_ERROR) {
		log_warnx("pd_on_read: redis: %s", r->str);
		/* NOGROUP: the stream was deleted under us; make the group again */
		if (strncmp(r->str, "NOGROUP", 7) == 0)
			pd->group_ok = 0;
		pd_arm(pd->ev_read, 1000);
		return;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
		s = r->element[0];
		if (s->type == REDIS_REPLY_ARRAY && s->elements == 2 &&
		    s->element[1]->type == REDIS_REPLY_ARRAY) {
			got = s->element[1]->elements;
			pd_read_size(pd, s->element[1]);
			pd_on_entries(pd, s->element[1], !pd->read_pending);
			last = got > 0 ? s->element[1]->element[got - 1] : NULL;
		}
	}
	if (pd->read_pending && last != NULL && last->type == REDIS_REPLY_ARRAY &&
	    last->elements == 2 && last->element[0]->type == REDIS_REPLY_STRING)
		snprintf(pd->from, sizeof(pd->from), "%s", last->element[0]->str);
	else if (pd->read_pending && got == 0) {
		pd->pending_done = 1;
		log_info("pd_on_read: our pending entries read: reading new alerts");
	}
	pd_read(pd);
}

static void
pd_on_group(redisReply *r, void *priv)
{
	struct pushd	*pd = priv;

	pd->reading = 0;
	if (r == NULL || pd->stopping)
		return;
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
		log_warnx("pd_on_group: XGROUP CREATE: %s", r->str);
		pd_arm(pd->ev_read, 1000);
		return;
	}
	pd->group_ok = 1;
	pd->group_had = 1;
	pd_read(pd);
}

/*
 * The next read: the group first, then our own pending entries from the
 * start (a restart resumes them), then new ones. The group is made at $
 * the first time, so that a new worker does not push the stream's
 * history. One that goes while we run went with its stream (Redis came
 * back empty, or the stream was deleted): everything the new stream holds
 * was written since, unsent, so it is made again at 0. (A group destroyed
 * by hand on a stream that stayed is read again from 0 too: the done
 * markers keep what was delivered in the last two days from going twice.)
 */
static void
pd_read(struct pushd *pd)
{
	char	count[16];

	if (pd->reading || pd->draining || !rconn_up(pd->rc) || !rconn_up(pd->rread))
		return;
	if (!pd->group_ok) {
		if (pd->group_had)
			log_warnx("pd_read: the group %s is gone (Redis restarted "
			    "empty?): made again at the start of the stream",
			    pd->cfg->notify.group);
		if (rconn_command(pd->rc, pd_on_group, pd, 0,
		    "XGROUP CREATE %s %s %s MKSTREAM", pd->stream,
		    pd->cfg->notify.group, pd->group_had ? "0" : "$") == 0)
			pd->reading = 1;
		return;
	}
	if (pd_held_full(pd) || (pd->paused && !pd_held_half(pd))) {
		if (!pd->paused) {
			log_warnx("pd_read: %zu alerts (%zu KiB) wait for their routes: "
			    "reading pauses until %zu (%zu KiB)", pd->held,
			    pd->held_bytes / 1024, pd->held_max / 2,
			    pd->bytes_max / 2 / 1024);
			pd->paused = 1;
			pd_arm(pd->ev_shed, (int64_t)pd->cfg->notify.timeout_ms);
		}
		return;
	}
	if (pd->paused) {
		log_info("pd_read: %zu alerts wait for their routes: reading again",
		    pd->held);
		evtimer_del(pd->ev_shed);
	}
	pd->paused = 0;
	snprintf(count, sizeof(count), "%zu", pd->read_count);
	pd->read_pending = !pd->pending_done;
	if (pd->pending_done ? rconn_command(pd->rread, pd_on_read, pd, PD_BLOCK_MS,
	    "XREADGROUP GROUP %s %s COUNT %s BLOCK %d STREAMS %s >",
	    pd->cfg->notify.group, pd->consumer, count, PD_BLOCK_MS, pd->stream) :
	    rconn_command(pd->rread, pd_on_read, pd, 0,
	    "XREADGROUP GROUP %s %s COUNT %s STREAMS %s %s", pd->cfg->notify.group,
	    pd->consumer, count, pd->stream, pd->from) == -1)
		pd_arm(pd->ev_read, 1000);
	else
		pd->reading = 1;
}

static void
pd_on_read_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	pd_read(arg);
}

/* Still paused after notify.timeout: the routes over their share give way. */
static void
pd_on_shed_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pushd	*pd = arg;

	(void)fd;
	(void)what;
	if (!pd->paused)
		return;
	pd_shed(pd);	/* down to half: pd_item_done has the read go on */
	if (!pd_held_half(pd))
		pd_arm(pd->ev_shed, (int64_t)pd->cfg->notify.timeout_ms);
}

/*
 * XAUTOCLAIM: entries a consumer left pending claim_idle: another worker's
 * that died, or ours that could not be acked or taken (lost). Ours still
 * held are refreshed more often than that (pd_on_refresh_timer), so only a
 * stalled worker loses them.
 */
static void
pd_on_claim(redisReply *r, void *priv)
{
	struct pushd	*pd = priv;

	pd->claiming = 0;
	if (pd->stopping)
		return;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		if (r != NULL && r->type == REDIS_REPLY_ERROR)
			log_warnx("pd_on_claim: redis: %s", r->str);
		snprintf(pd->claim_from, sizeof(pd->claim_from), "0-0");
		return;
	}
	pd_on_entries(pd, r->element[1], 0);
	snprintf(pd->claim_from, sizeof(pd->claim_from), "%s", r->element[0]->str);
	if (strcmp(pd->claim_from, "0-0") != 0 && !pd_held_full(pd) &&
	    rconn_command(pd->rc, pd_on_claim, pd, 0,
	    "XAUTOCLAIM %s %s %s %llu %s COUNT %d", pd->stream, pd->cfg->notify.group,
	    pd->consumer, (unsigned long long)pd->cfg->notify.claim_idle_ms,
	    pd->claim_from, PD_BATCH) == 0)
		pd->claiming = 1;
}

/* XINFO CONSUMERS: [[name, N, pending, P, idle, I, ...], ...]; the gone ones go. */
static void
pd_on_consumers(redisReply *r, void *priv)
{
	struct pushd		*pd = priv;
	const redisReply	*c, *k, *v;
	const char		*name;
	long long		 pending, idle;
	size_t			 i, j;

	if (r == NULL || pd->stopping || r->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i < r->elements; i++) {
		c = r->element[i];
		name = NULL;
		pending = idle = -1;
		for (j = 0; c->type == REDIS_REPLY_ARRAY && j + 1 < c->elements; j += 2) {
			k = c->element[j];
			v = c->element[j + 1];
			if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS)
				continue;
			if (strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
				name = v->str;
			else if (strcmp(k->str, "pending") == 0 &&
			    v->type == REDIS_REPLY_INTEGER)
				pending = v->integer;
			else if (strcmp(k->str, "idle") == 0 &&
			    v->type == REDIS_REPLY_INTEGER)
				idle = v->integer;
		}
		/*
		 * Idle notify.consumer_gone (at least twice PD_BLOCK_MS: a live
		 * worker reads every PD_BLOCK_MS) and holding nothing: a worker
		 * gone, as each start of a worker without notify.consumer adds
		 * a name of its own. DELCONSUMER drops what it holds: only one
		 * that holds nothing
		 */
		if (name == NULL || strcmp(name, pd->consumer) == 0 || pending != 0 ||
		    idle < 0 || (uint64_t)idle < pd->cfg->notify.consumer_gone_ms)
			continue;
		log_info("pd_on_consumers: consumer %s idle %llds, holding nothing: "
		    "deleted", name, idle / 1000);
		rconn_command(pd->rc, NULL, NULL, 0, "XGROUP DELCONSUMER %s %s %s",
		    pd->stream, pd->cfg->notify.group, name);
	}
}

static void
pd_on_claim_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pushd	*pd = arg;

	(void)fd;
	(void)what;
	pd_arm(pd->ev_claim, (int64_t)(pd->cfg->notify.claim_idle_ms / 2));
	if (pd->group_ok)
		rconn_command(pd->rc, pd_on_consumers, pd, 0, "XINFO CONSUMERS %s %s",
		    pd->stream, pd->cfg->notify.group);
	if (pd->claiming || !pd->group_ok || !pd->pending_done || pd->paused ||
	    pd_held_full(pd))
		return;
	if (rconn_command(pd->rc, pd_on_claim, pd, 0,
	    "XAUTOCLAIM %s %s %s %llu 0-0 COUNT %d", pd->stream, pd->cfg->notify.group,
	    pd->consumer, (unsigned long long)pd->cfg->notify.claim_idle_ms,
	    PD_BATCH) == 0)
		pd->claiming = 1;
}

/*
 * What we hold is ours: XCLAIM JUSTID with no minimum idle time resets each
 * entry's idle time, so that another worker's claim pass leaves it alone.
 */
static void
pd_on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
	struct pushd	*pd = arg;
	struct pd_entry	*e;
	const char	*argv[6 + PD_BATCH + 1];
	size_t		 argvlen[6 + PD_BATCH + 1];
	int		 n = 0, i;

	(void)fd;
	(void)what;
	pd_arm(pd->ev_refresh, (int64_t)(pd->cfg->notify.claim_idle_ms / 3));
	if (!rconn_up(pd->rc) || !pd->group_ok)
		return;
	for (e = pd->ents; e != NULL; e = e->next) {
		if (n == 0) {
			argv[n++] = "XCLAIM";
			argv[n++] = pd->stream;
			argv[n++] = pd->cfg->notify.group;
			argv[n++] = pd->consumer;
			argv[n++] = "0";
		}
		argv[n++] = e->sid;
		if (n == 5 + PD_BATCH || e->next == NULL) {
			argv[n++] = "JUSTID";
			for (i = 0; i < n; i++)
				argvlen[i] = strlen(argv[i]);
			if (rconn_command_argv(pd->rc, NULL, NULL, 0, n, argv, argvlen) == -1)
				return;
			n = 0;
		}
	}
}

static void
pd_on_state(void *arg, int up, int lost)
{
	struct pushd	*pd = arg;

	/* a read or claim that was out ends with a NULL reply, which says so */
	(void)lost;
	if (!up)
		return;
	/*
	 * The dead letters and done markers that did not go first: on one
	 * connection, ahead of the marker checks of the entries read again (an XACK
	 * that did not go either leaves its entry pending: read again, it is
	 * found done and acked).
	 */
	pd_unconf_flush(pd);
	/* our pending entries again from the start: what was not acked comes back */
	pd->pending_done = 0;
	snprintf(pd->from, sizeof(pd->from), "0");
	pd_read(pd);
}

/* --- the daily summary ---------------------------------------------------- */

/*
 * The day's message is finished: marker "1" sent, "dead" given up (nobody
 * sends that day again: the day's key says so, written as an alert's done
 * marker is, kept until Redis confirms it), NULL not queued at all (the
 * lease goes; the next check tries again).
 */
static void
pd_daily_finish(struct pd_daily *dy, const char *marker)
{
	struct pushd	*pd = dy->pd;

	dy->busy = dy->held = 0;
	if (marker == NULL) {
		rconn_command(pd->rc, NULL, NULL, 0, "DEL %schatmon:notify:daily:%s",
		    pd->prefix, dy->day);
		dy->today[0] = '\0';
		return;
	}
	log_info("pd_daily_finish: %s's summary %s route %s", dy->day,
	    strcmp(marker, "1") == 0 ? "sent to" : "given up on by", dy->route->cfg->name);
}

static void
pd_daily_on_report(struct report *rep, const char *err, void *arg)
{
	struct pd_daily		*dy = arg;
	struct pushd		*pd = dy->pd;
	struct report_meta	 m = { dy->day, dy->day, NULL,
				       pd->cfg->sla.utc_offset_min, pd_now() };
	struct sbuf		 out;
	json_t			*j = NULL;
	char			 id[32];

	dy->db = NULL;
	sbuf_init(&out);
	if (rep == NULL || report_json(&out, rep, &m) == -1 ||
	    (j = json_loadb(sbuf_str(&out), out.len, 0, NULL)) == NULL) {
		log_warnx("pd_daily_on_report: %s's report: %s", dy->day, err ? err :
		    "out of memory");
		pd_daily_finish(dy, NULL);
	} else {
		/* a message of the route's own, in its queue: its rate, retries and dead letters */
		snprintf(id, sizeof(id), "daily-%s", dy->day);
		pd_enqueue(dy->route, NULL, id, j, NULL);
	}
	json_decref(j);
	report_free(rep);
	sbuf_free(&out);
}

static void
pd_daily_on_claim(redisReply *r, void *priv)
{
	struct pd_daily	*dy = priv;
	struct pushd	*pd = dy->pd;

	if (pd->stopping)
		return;
	if (r == NULL || r->type != REDIS_REPLY_STATUS) {
		/* another worker has it (nil), or Redis did not say: ask at the next check */
		dy->today[0] = '\0';
		dy->busy = 0;
		return;
	}
	dy->held = 1;
	if ((dy->db = reportdb_start(pd->rc, pd->cfg, dy->day, dy->day, NULL,
	    pd_now(), pd_daily_on_report, dy)) == NULL)
		pd_daily_on_report(NULL, "cannot start the report", dy);
}

/*
 * Past notify.daily_at, yesterday's summary: claimed with a lease (a worker
 * that dies with it leaves it to the next after an hour), reported, queued.
 */
static void
pd_daily_check(evutil_socket_t fd, short what, void *arg)
{
	struct pd_daily	*dy = arg;
	struct pushd	*pd = dy->pd;
	int64_t		 now = pd_now(), start;
	int32_t		 off = pd->cfg->sla.utc_offset_min;
	char		 today[16];

	(void)fd;
	(void)what;
	pd_arm(dy->timer, PD_DAILY_CHECK_MS);
	/*
	 * While this worker holds the day (its message waits out a robot's
	 * pause, or retries), the lease is set again at each check: it ran
	 * out after an hour, and a Redis restarted without persistence lost
	 * it at once, and another live worker sent the day too (found by
	 * review). Set, not renewed (XX): a lost lease is taken back.
	 */
	if (dy->held && !pd->draining && rconn_up(pd->rc))
		rconn_command(pd->rc, NULL, NULL, 0,
		    "SET %schatmon:notify:daily:%s sending EX " PD_DAILY_LEASE,
		    pd->prefix, dy->day);
	if (dy->busy || pd->draining || !rconn_up(pd->rc))
		return;
	start = state_day(today, now, off);
	/*
	 * Not before yesterday's late hour is over (STATE_LATE_MS): the rounds
	 * of its last moments are logged after midnight, and would be missing.
	 */
	if (strcmp(today, dy->today) == 0 ||
	    now - start < (int64_t)pd->cfg->notify.daily_at_min * 60000 ||
	    now - start < STATE_LATE_MS)
		return;
	snprintf(dy->today, sizeof(dy->today), "%s", today);
	state_day(dy->day, start - 1, off);
	dy->busy = 1;
	if (rconn_command(pd->rc, pd_daily_on_claim, dy, 0,
	    "SET %schatmon:notify:daily:%s sending NX EX " PD_DAILY_LEASE, pd->prefix,
	    dy->day) == -1) {
		dy->today[0] = '\0';
		dy->busy = 0;
	}
}

static int
pd_daily_new(struct pushd *pd)
{
	const struct config_notify	*n = &pd->cfg->notify;
	struct pd_daily			*dy;
	size_t				 i;

	if (n->daily_at_min < 0)
		return 0;
	if ((dy = calloc(1, sizeof(*dy))) == NULL ||
	    (dy->timer = evtimer_new(pd->base, pd_daily_check, dy)) == NULL) {
		free(dy);
		return -1;
	}
	dy->pd = pd;
	for (i = 0; i < pd->nroutes; i++)	/* config_check made sure it is there */
		if (strcmp(n->routes[i].name, n->daily_route) == 0)
			dy->route = &pd->routes[i];
	pd->daily = dy;
	pd_arm(dy->timer, 1000);	/* soon after the start: a day not sent yet goes now */
	return 0;
}

/* --- /metrics and /healthz ------------------------------------------------ */

static void
pd_metric(struct sbuf *o, const char *name, const char *help, const char *type)
{
	sbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
pd_metrics(struct pushd *pd, struct sbuf *o)
{
	struct pd_route	*r;
	size_t		 i, k;

	pd_metric(o, "chatmon_notify_delivered_total",
	    "Messages a target took (one alert or a folded burst).", "counter");
	for (i = 0; i < pd->nroutes; i++)
		sbuf_printf(o, "chatmon_notify_delivered_total{route=\"%s\"} %llu\n",
		    pd->routes[i].cfg->name,
		    (unsigned long long)pd->routes[i].delivered);
	pd_metric(o, "chatmon_notify_alerts_total",
	    "Alerts finished per route: sent alone, folded, a duplicate, dead.",
	    "counter");
	for (i = 0; i < pd->nroutes; i++) {
		r = &pd->routes[i];
		sbuf_printf(o, "chatmon_notify_alerts_total{route=\"%s\",result=\"sent\"} %llu\n"
		    "chatmon_notify_alerts_total{route=\"%s\",result=\"folded\"} %llu\n"
		    "chatmon_notify_alerts_total{route=\"%s\",result=\"duplicate\"} %llu\n"
		    "chatmon_notify_alerts_total{route=\"%s\",result=\"dead\"} %llu\n",
		    r->cfg->name, (unsigned long long)r->sent,
		    r->cfg->name, (unsigned long long)r->folded,
		    r->cfg->name, (unsigned long long)r->dup,
		    r->cfg->name, (unsigned long long)r->dead);
	}
	pd_metric(o, "chatmon_notify_failures_total",
	    "Tries a target did not take.", "counter");
	for (i = 0; i < pd->nroutes; i++)
		for (k = 0; k < PD_NREASONS; k++)
			sbuf_printf(o, "chatmon_notify_failures_total{route=\"%s\","
			    "reason=\"%s\"} %llu\n", pd->routes[i].cfg->name,
			    pd_reasons[k],
			    (unsigned long long)pd->routes[i].failures[k]);
	pd_metric(o, "chatmon_notify_pauses_total",
	    "Pauses of a route whose target said it was sent too much.", "counter");
	for (i = 0; i < pd->nroutes; i++)
		sbuf_printf(o, "chatmon_notify_pauses_total{route=\"%s\"} %llu\n",
		    pd->routes[i].cfg->name,
		    (unsigned long long)pd->routes[i].pauses);
	pd_metric(o, "chatmon_notify_waiting",
	    "Alerts waiting for their route (room in the rate, a retry, an answer).", "gauge");
	for (i = 0; i < pd->nroutes; i++)
		sbuf_printf(o, "chatmon_notify_waiting{route=\"%s\"} %zu\n",
		    pd->routes[i].cfg->name, pd->routes[i].nwait + pd->routes[i].nfly);
	pd_metric(o, "chatmon_notify_entries_total",
	    "Stream entries read: every one, matched by no route, unreadable.", "counter");
	sbuf_printf(o, "chatmon_notify_entries_total{result=\"read\"} %llu\n"
	    "chatmon_notify_entries_total{result=\"unmatched\"} %llu\n"
	    "chatmon_notify_entries_total{result=\"unreadable\"} %llu\n",
	    (unsigned long long)pd->n_entries, (unsigned long long)pd->n_unmatched,
	    (unsigned long long)pd->n_bad);
	pd_metric(o, "chatmon_notify_redis_up", "1 while Redis answers.", "gauge");
	sbuf_printf(o, "chatmon_notify_redis_up %d\n", rconn_up(pd->rc) &&
	    rconn_up(pd->rread));
}

static void
pd_on_http(struct evhttp_request *req, void *arg)
{
	struct pushd	*pd = arg;
	struct evbuffer	*b = evhttp_request_get_output_buffer(req);
	const char	*path = evhttp_request_get_uri(req);
	int		 ok;

	sbuf_reset(&pd->out);
	if (strcmp(path, "/metrics") == 0) {
		pd_metrics(pd, &pd->out);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
		evbuffer_add(b, sbuf_str(&pd->out), pd->out.len);
		evhttp_send_reply(req, 200, "OK", NULL);
	} else if (strcmp(path, "/healthz") == 0) {
		ok = rconn_up(pd->rc) && rconn_up(pd->rread) && pd->group_ok;
		evbuffer_add_printf(b, ok ? "ok\n" : "redis down\n");
		evhttp_send_reply(req, ok ? 200 : 503, ok ? "OK" :
		    "Service Unavailable", NULL);
	} else
		evhttp_send_error(req, 404, NULL);
}

/* --- start and stop --------------------------------------------------------- */

/* Redis answered the last PING: every marker and XACK sent before it is done. */
static void
pd_on_drain_ping(redisReply *r, void *priv)
{
	struct pushd	*pd = priv;

	(void)r;
	if (pd->stopping)
		return;
	log_info("pd_on_drain_ping: the requests out finished: stopped");
	event_base_loopbreak(pd->base);
}

/*
 * Stopping cleanly: once no request is out and Redis has confirmed the
 * done markers of what went (or is away: nothing to wait for), a PING
 * behind the XACKs, then the loop ends. notify.timeout (and a second)
 * after the signal it ends anyway.
 */
static void
pd_on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct pushd	*pd = arg;
	size_t		 i, busy = 0;

	(void)fd;
	(void)what;
	if (pd_mono() >= pd->drain_until) {
		log_warnx("pd_on_drain: still waiting after notify.timeout: stopped");
		event_base_loopbreak(pd->base);
		return;
	}
	for (i = 0; i < pd->nroutes; i++)
		busy += pd->routes[i].busy != 0;
	if (busy > 0 || pd->drain_ping ||
	    (rconn_up(pd->rc) && pd->unconf != NULL)) {
		pd_arm(pd->ev_drain, 20);
		return;
	}
	if (!rconn_up(pd->rc) ||
	    rconn_command(pd->rc, pd_on_drain_ping, pd, 0, "PING") == -1) {
		event_base_loopbreak(pd->base);
		return;
	}
	pd->drain_ping = 1;
	pd_arm(pd->ev_drain, 20);
}

/*
 * SIGTERM or SIGINT: nothing new is read or sent, the requests out are
 * let finish (at most notify.timeout) and their done markers and XACKs
 * written, then the loop ends: a request cut short here was the target's
 * to take, and the restarted worker sent it again. What is not acked is
 * read again at the next start. A second signal stops at once.
 */
static void
pd_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct pushd	*pd = arg;
	const char	*name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
	size_t		 i, busy = 0;

	(void)what;
	if (pd->draining) {
		log_info("pd_on_signal: %s again: stopping now (what is not acked "
		    "is read again at the next start)", name);
		event_base_loopbreak(pd->base);
		return;
	}
	for (i = 0; i < pd->nroutes; i++)
		busy += pd->routes[i].busy != 0;
	log_info("pd_on_signal: %s: stopping once the %zu request%s out finish "
	    "(at most notify.timeout; what is not acked is read again at the "
	    "next start)", name, busy, busy == 1 ? "" : "s");
	pd->draining = 1;
	pd->drain_until = pd_mono() + (int64_t)pd->cfg->notify.timeout_ms + 1000;
	evtimer_del(pd->ev_read);
	evtimer_del(pd->ev_shed);
	evtimer_del(pd->ev_claim);
	evtimer_del(pd->ev_refresh);
	for (i = 0; i < pd->nroutes; i++)
		evtimer_del(pd->routes[i].timer);
	pd_arm(pd->ev_drain, 0);
}

static void
pd_items_free(struct pd_item *it)
{
	struct pd_item	*next;

	for (; it != NULL; it = next) {
		next = it->next;
		pd_item_free(it);
	}
}

static void
pd_stop(struct pushd *pd)
{
	struct pd_entry	*e;
	size_t		 i;

	/*
	 * Redis first, while everything its pending replies point at is still
	 * there: they come now, with NULL, and are dropped (stopping).
	 */
	pd->stopping = 1;
	if (pd->daily != NULL && pd->daily->db != NULL)
		reportdb_cancel(pd->daily->db);
	rconn_free(pd->rc);
	rconn_free(pd->rread);
	httpc_free(pd->http);
	if (pd->daily != NULL) {
		event_free(pd->daily->timer);
		free(pd->daily);
	}
	pd_items_free(pd->tombs);
	pd_items_free(pd->unconf);
	for (i = 0; i < pd->nroutes; i++) {
		pd_items_free(pd->routes[i].head);
		pd_items_free(pd->routes[i].fly);
		if (pd->routes[i].timer != NULL)
			event_free(pd->routes[i].timer);
		free(pd->routes[i].sent_at);
	}
	free(pd->routes);
	while ((e = pd->ents) != NULL) {
		pd->ents = e->next;
		free(e);
	}
	if (pd->admin != NULL)
		evhttp_free(pd->admin);
	if (pd->ev_read != NULL)
		event_free(pd->ev_read);
	if (pd->ev_shed != NULL)
		event_free(pd->ev_shed);
	if (pd->ev_drain != NULL)
		event_free(pd->ev_drain);
	if (pd->ev_claim != NULL)
		event_free(pd->ev_claim);
	if (pd->ev_refresh != NULL)
		event_free(pd->ev_refresh);
	if (pd->ev_term != NULL)
		event_free(pd->ev_term);
	if (pd->ev_int != NULL)
		event_free(pd->ev_int);
	if (pd->base != NULL)
		event_base_free(pd->base);
	libevent_global_shutdown();
	sbuf_free(&pd->out);
}

static int
pd_start(struct pushd *pd)
{
	const struct config	*cfg = pd->cfg;
	struct sbuf		 errs;
	size_t			 i;
	char			 host[200];

	sbuf_init(&errs);
	pd->prefix = cfg->redis.prefix != NULL ? cfg->redis.prefix : "";
	pd->held_max = (size_t)cfg->notify.max_waiting;
	pd->bytes_max = (size_t)cfg->notify.max_waiting_bytes;
	pd->read_count = PD_BATCH;
	pd->tombs_tail = &pd->tombs;
	pd->unconf_tail = &pd->unconf;
	snprintf(pd->stream, sizeof(pd->stream), "%s%s", pd->prefix, cfg->redis.stream);
	snprintf(pd->dead, sizeof(pd->dead), "%s%s", pd->prefix, cfg->notify.dead_letter);
	/*
	 * By default a name of this process's own: two workers of one name
	 * (a second started by hand next to the service) each read the
	 * other's pending entries as their own and send them again. What a
	 * worker that died held is taken over after claim_idle (XAUTOCLAIM).
	 */
	if (cfg->notify.consumer != NULL)
		snprintf(pd->consumer, sizeof(pd->consumer), "%s", cfg->notify.consumer);
	else {
		if (gethostname(host, sizeof(host) - 1) == -1 || host[0] == '\0')
			snprintf(host, sizeof(host), "chatmon-notify");
		host[sizeof(host) - 1] = '\0';
		snprintf(pd->consumer, sizeof(pd->consumer), "%s-%ld-%08x", host,
		    (long)getpid(), (unsigned)randombytes_random());
	}
	if ((pd->base = event_base_new()) == NULL ||
	    (pd->routes = calloc(cfg->notify.nroutes + 1, sizeof(*pd->routes))) == NULL ||
	    (pd->ev_read = evtimer_new(pd->base, pd_on_read_timer, pd)) == NULL ||
	    (pd->ev_shed = evtimer_new(pd->base, pd_on_shed_timer, pd)) == NULL ||
	    (pd->ev_drain = evtimer_new(pd->base, pd_on_drain, pd)) == NULL ||
	    (pd->ev_claim = evtimer_new(pd->base, pd_on_claim_timer, pd)) == NULL ||
	    (pd->ev_refresh = evtimer_new(pd->base, pd_on_refresh_timer, pd)) == NULL ||
	    (pd->ev_term = evsignal_new(pd->base, SIGTERM, pd_on_signal, pd)) == NULL ||
	    (pd->ev_int = evsignal_new(pd->base, SIGINT, pd_on_signal, pd)) == NULL ||
	    evsignal_add(pd->ev_term, NULL) == -1 || evsignal_add(pd->ev_int, NULL) == -1)
		goto oom;
	pd->nroutes = cfg->notify.nroutes;
	for (i = 0; i < pd->nroutes; i++) {
		pd->routes[i].pd = pd;
		pd->routes[i].cfg = &cfg->notify.routes[i];
		pd->routes[i].tail = &pd->routes[i].head;
		if ((pd->routes[i].sent_at = calloc(cfg->notify.routes[i].rate_n,
		    sizeof(*pd->routes[i].sent_at))) == NULL ||
		    (pd->routes[i].timer = evtimer_new(pd->base, pd_on_route_timer,
		    &pd->routes[i])) == NULL)
			goto oom;
	}
	if ((pd->http = httpc_new(pd->base, cfg->notify.ca, &errs)) == NULL)
		goto err;
	if ((pd->admin = evhttp_new(pd->base)) == NULL)
		goto oom;
	evhttp_set_gencb(pd->admin, pd_on_http, pd);
	evhttp_set_allowed_methods(pd->admin, EVHTTP_REQ_GET);
	if (evhttp_bind_socket(pd->admin, cfg->notify.admin.host,
	    (ev_uint16_t)cfg->notify.admin.port) == -1) {
		sbuf_line(&errs, "chatmon: notify: notify.admin %s:%d: cannot listen: %s",
		    cfg->notify.admin.host, cfg->notify.admin.port, strerror(errno));
		goto err;
	}
	if ((pd->rc = rconn_new(pd->base, "notify", pd_on_state, pd)) == NULL ||
	    (pd->rread = rconn_new(pd->base, "notify-read", pd_on_state, pd)) == NULL ||
	    rconn_set_target(pd->rc, &cfg->redis, 0) == -1 ||
	    rconn_set_target(pd->rread, &cfg->redis, 0) == -1)
		goto oom;
	if (pd_daily_new(pd) == -1)
		goto oom;
	pd_arm(pd->ev_claim, (int64_t)(cfg->notify.claim_idle_ms / 2));
	pd_arm(pd->ev_refresh, (int64_t)(cfg->notify.claim_idle_ms / 3));
	log_info("pd_start: %s as %s/%s, %zu route%s, admin on %s:%d", pd->stream,
	    cfg->notify.group, pd->consumer, pd->nroutes, pd->nroutes == 1 ? "" : "s",
	    cfg->notify.admin.host, cfg->notify.admin.port);
	if (pd->nroutes == 0)
		log_warnx("pd_start: no notify.routes: every alert is acked unsent");
	sbuf_free(&errs);
	return 0;
oom:
	sbuf_line(&errs, "chatmon: notify: out of memory");
err:
	log_errlines(NULL, &errs);	/* under systemd, at error priority */
	sbuf_free(&errs);
	return -1;
}

static int
pd_usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon notify [-c FILE] [-o key.path=value]...\n"
	    "\n"
	    "Pushes the alerts of the stream to the routes of notify.routes\n"
	    "(DingTalk, WeCom, Feishu, Slack, webhooks), through the Redis\n"
	    "consumer group notify.group: several workers share the load, a\n"
	    "restart resumes. Runs in the foreground; /metrics and /healthz on\n"
	    "notify.admin. docs/notify.md.\n");
	return f == stdout ? 0 : 2;
}

int
pushd_main(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct pushd	 pd;
	struct cliconf	 cc;
	int		 ch, rc = 1;

	memset(&pd, 0, sizeof(pd));
	cliconf_init(&cc, default_config);
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
		case 'o':
			if (cliconf_opt(&cc, ch, optarg, "notify") == -1)
				goto usage;
			break;
		case 'h':
			cliconf_free(&cc);
			return pd_usage(stdout);
		default:
			goto usage;
		}
	}
	if (optind != argc)
		goto usage;
	pd.cfg = cliconf_load(&cc);
	cliconf_free(&cc);
	if (pd.cfg == NULL)
		return 1;
	log_set_level(pd.cfg->log_level);
	log_set_json(pd.cfg->log_json);
	if (sodium_init() == -1 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_errline("chatmon: notify: cannot initialise libsodium or libcurl");
		config_free(pd.cfg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (pd_start(&pd) == 0) {
		event_base_dispatch(pd.base);
		rc = 0;
	}
	pd_stop(&pd);
	curl_global_cleanup();
	config_free(pd.cfg);
	return rc;
usage:
	cliconf_free(&cc);
	return pd_usage(stderr);
}
