/* snapshot: every redis.snapshot, who waits now and the day's figures of this instance to Redis, for dashboards, when the conversations' state is not in Redis (redis.takeover 0). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "chatmon/log.h"
#include "chatmon/rconn.h"
#include "chatmon/rreply.h"
#include "chatmon/sla.h"
#include "chatmon/snapshot.h"
#include "chatmon/state.h"

/*
 * A snapshot is state, not an event: it is never queued while Redis is
 * away, and one still unanswered makes the next wait, since the one after
 * replaces it anyway. The waiting document lives three intervals, so a
 * dead instance's customers leave the dashboard on their own; the day's
 * figures live two days, so an instance that restarted still counts for
 * the part of the day before. A server that cannot take writes now
 * (READONLY after a failover, LOADING, ...) is dropped, so that rconn
 * finds the master again; other refusals are only logged.
 */

#define SNAPSHOT_DAY_TTL_S	172800
#define SNAPSHOT_TTL_MIN_MS	1000

struct snapshot {
	const struct sla	*sla;
	struct rconn		*rc;
	struct event		*ev_tick;
	struct sla_config	 scfg;
	struct sla_policies	 pol;		/* the shops' settings, copied */
	uint64_t		 interval_ms;
	int			 shared;	/* redis.takeover: who waits and the figures are in Redis */
	char			*prefix;
	char			 instance[16];
	char			 host[256];
	long			 pid;
	struct sbuf		 doc;		/* scratch, reused */
	unsigned		 inflight;
	int64_t			 day_start;	/* of the day's figures written last; 0 none */
};

static void
snapshot_on_reply(redisReply *reply, void *priv)
{
	struct snapshot	*sn = priv;

	sn->inflight--;
	if (reply == NULL || reply->type != REDIS_REPLY_ERROR)
		return;
	if (rreply_error_transient(rreply_error_kind(reply->str)))
		rconn_drop(sn->rc, reply->str);	/* the other SET hears NULL */
	else
		log_warnx("snapshot_on_reply: redis refused a snapshot: %s",
		    reply->str);
}

/*
 * The index's upkeep: a refusal (an ACL without one of its commands) is
 * said, as the document's is; it went unheard.
 */
static void
snapshot_on_index(redisReply *reply, void *priv)
{
	(void)priv;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
	    !rreply_error_transient(rreply_error_kind(reply->str)))
		log_warnx("snapshot_on_index: redis refused a snapshot's index: %s",
		    reply->str);
}

/*
 * The document goes to key until expires (wall ms), and key into index,
 * scored by when it expires: the dashboard finds the live documents there
 * (ZRANGEBYSCORE) instead of scanning a keyspace that holds every
 * conversation. What expired is taken out of the index as it goes. All
 * instances write the same expiry for a kind of document, so the last
 * write's is the latest.
 */
static void
snapshot_set(struct snapshot *sn, const char *key, const char *index,
    int64_t now, int64_t expires)
{
	if (rconn_command(sn->rc, snapshot_on_reply, sn, 0, "SET %s %b PXAT %lld",
	    key, sn->doc.s, sn->doc.len, (long long)expires) == 0)
		sn->inflight++;
	(void)rconn_command(sn->rc, snapshot_on_index, NULL, 0, "ZADD %s %lld %s",
	    index, (long long)expires, key);
	(void)rconn_command(sn->rc, snapshot_on_index, NULL, 0,
	    "ZREMRANGEBYSCORE %s -inf (%lld", index, (long long)now);
	/* the index goes with the last document it holds */
	(void)rconn_command(sn->rc, snapshot_on_index, NULL, 0, "PEXPIREAT %s %lld",
	    index, (long long)expires);
}

/* The day's figures as of `as` (on its day) to that day's key. */
static int
snapshot_agents(struct snapshot *sn, int64_t as, int64_t now,
    const struct state_origin *o)
{
	char		 key[512], index[512], day[16];
	const char	*pre = sn->prefix ? sn->prefix : "";

	sbuf_reset(&sn->doc);
	if (state_agents_doc(&sn->doc, sn->sla, as, o, &sn->scfg, sn->pol.v,
	    sn->pol.n) == -1)
		return -1;
	state_day(day, as, sn->scfg.utc_offset_min);
	snprintf(key, sizeof(key), "%schatmon:agents:%s:%s", pre, day,
	    sn->instance);
	snprintf(index, sizeof(index), "%schatmon:agents:%s", pre, day);
	snapshot_set(sn, key, index, now, now + SNAPSHOT_DAY_TTL_S * 1000LL);
	return 0;
}

/* force: the last one, at exit, goes behind one still unanswered. */
static void
snapshot_write(struct snapshot *sn, int force)
{
	struct state_origin	 o = { sn->instance, sn->host, sn->pid };
	int64_t			 now = util_wall_ms(), start;
	uint64_t		 ttl = 3 * sn->interval_ms;
	char			 key[512], index[512], day[16];
	const char		*pre = sn->prefix ? sn->prefix : "";

	/* with the conversations' state in Redis, the dashboard reads it all there */
	if (sn->interval_ms == 0 || sn->shared || !rconn_up(sn->rc) ||
	    (sn->inflight > 0 && !force))
		return;
	if (ttl < SNAPSHOT_TTL_MIN_MS)
		ttl = SNAPSHOT_TTL_MIN_MS;
	sbuf_reset(&sn->doc);
	if (state_waiting_doc(&sn->doc, sn->sla, now, &o) == 0) {
		snprintf(key, sizeof(key), "%schatmon:waiting:%s", pre, sn->instance);
		snprintf(index, sizeof(index), "%schatmon:waiting", pre);
		snapshot_set(sn, key, index, now, now + (int64_t)ttl);
	}
	/*
	 * The day turned since the last write: the day before once more, as
	 * of its last millisecond, with the rounds closed since that write
	 * (the engine keeps it whole for a day after).
	 */
	start = state_day(day, now, sn->scfg.utc_offset_min);
	if (sn->day_start != 0 && sn->day_start < start)
		snapshot_agents(sn, start - 1, now, &o);
	if (snapshot_agents(sn, now, now, &o) == 0)
		sn->day_start = start;
}

static void
snapshot_on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	snapshot_write(arg, 0);
}

static void
snapshot_on_state(void *arg, int up, int lost)
{
	(void)lost;
	if (up)
		snapshot_write(arg, 0);	/* at once: a dashboard need not wait a tick */
}

/*
 * The shops' settings, for the cap and rate of each shop's figures, copied:
 * the configuration they come from goes at a reload.
 */
static int
snapshot_policies(struct snapshot *sn, const struct config *cfg)
{
	return sla_policies_load(&sn->pol, cfg);
}

void
snapshot_set_config(struct snapshot *sn, const struct config *cfg)
{
	struct timeval	 tv;
	char		*pre = NULL;

	if (cfg->redis.prefix != NULL && (pre = strdup(cfg->redis.prefix)) == NULL) {
		log_warnx("snapshot_set_config: out of memory, settings kept");
		return;
	}
	free(sn->prefix);
	sn->prefix = pre;
	sla_config_from(&sn->scfg, &cfg->sla);
	if (snapshot_policies(sn, cfg) == -1)
		log_warnx("snapshot_set_config: out of memory, the shops' settings kept");
	sn->shared = cfg->redis.takeover_ms > 0;
	if (sn->interval_ms != cfg->redis.snapshot_ms) {
		sn->interval_ms = cfg->redis.snapshot_ms;
		evtimer_del(sn->ev_tick);
		if (sn->interval_ms > 0) {
			tv.tv_sec = (time_t)(sn->interval_ms / 1000);
			tv.tv_usec = (suseconds_t)(sn->interval_ms % 1000 * 1000);
			evtimer_add(sn->ev_tick, &tv);
		}
	}
	/* no connection while snapshots are off */
	if (sn->interval_ms > 0 && !sn->shared && rconn_set_target(sn->rc, &cfg->redis, 0) == -1)
		log_warnx("snapshot_set_config: out of memory, Redis target kept");
}

struct snapshot *
snapshot_new(struct event_base *base, const struct config *cfg,
    const struct sla *s, uint32_t instance, struct sbuf *errs)
{
	struct snapshot	*sn;

	if ((sn = calloc(1, sizeof(*sn))) == NULL)
		goto oom;
	sn->sla = s;
	sn->pid = (long)getpid();
	snprintf(sn->instance, sizeof(sn->instance), "%08" PRIx32, instance);
	if (gethostname(sn->host, sizeof(sn->host)) == -1)
		snprintf(sn->host, sizeof(sn->host), "?");
	sn->host[sizeof(sn->host) - 1] = '\0';
	if ((sn->rc = rconn_new(base, "snapshot", snapshot_on_state, sn)) == NULL ||
	    (sn->ev_tick = event_new(base, -1, EV_PERSIST, snapshot_on_tick,
	    sn)) == NULL)
		goto oom;
	snapshot_set_config(sn, cfg);
	return sn;
oom:
	sbuf_line(errs, "snapshot_new: out of memory");
	snapshot_free(sn);
	return NULL;
}

void
snapshot_final(struct snapshot *sn)
{
	if (sn != NULL)
		snapshot_write(sn, 1);
}

size_t
snapshot_inflight(const struct snapshot *sn)
{
	return sn != NULL ? sn->inflight : 0;
}

void
snapshot_free(struct snapshot *sn)
{
	if (sn == NULL)
		return;
	rconn_free(sn->rc);
	if (sn->ev_tick != NULL)
		event_free(sn->ev_tick);
	sbuf_free(&sn->doc);
	sla_policies_clear(&sn->pol);
	free(sn->prefix);
	free(sn);
}
