/* reportdb: a report's days read from Redis on the caller's loop: a finished day's stored aggregate, or the SLA logs, the alert stream and the handling hash, the aggregate then stored for the next time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "chatmon/convstore.h"
#include "chatmon/rconn.h"
#include "chatmon/report.h"
#include "chatmon/reportdb.h"
#include "chatmon/rreply.h"
#include "chatmon/sla.h"
#include "chatmon/state.h"
#include "chatmon/util.h"

/* A day is read STATE_LATE_MS either side, and stored only once that much of the next day has gone. */
#define REPORTDB_PAGE		1000	/* entries per XRANGE */
#define REPORTDB_FP_BATCH	256	/* alert ids per HMGET */

enum reportdb_step {
	REPORTDB_GET,		/* the stored aggregate */
	REPORTDB_INFO,		/* was the bucket's log trimmed into the day? */
	REPORTDB_LOG,		/* the bucket's rounds and events */
	REPORTDB_ALERTS,	/* the alert stream */
	REPORTDB_FP,		/* the handling of the day's rule hits */
	REPORTDB_SET,		/* the aggregate stored */
};

struct reportdb {
	struct rconn		*rc;
	const struct config	*cfg;
	struct sla_config	 scfg;
	reportdb_done_cb	 done;
	void			*arg;
	const char		*agent;		/* NULL: everyone */
	const char		*shop, *queue;	/* --shop, --queue: NULL every one */
	struct sla_policy	*pol;		/* the shops' own settings in sla.timezone (strings: cfg's) */
	size_t			 npol;
	int64_t			 now;
	int64_t			 today;		/* the local day of now starts */
	int64_t			 day_start, last_start;
	char			 day[16];
	enum reportdb_step	 step;
	int			 out;		/* a command is out */
	int			 cancelled;
	int			 starting;	/* in reportdb_start: a failure is its NULL */
	int			 failed;
	int			 bucket;
	int			 partial;
	char			 cursor[64];	/* XRANGE's next start */
	struct report		*range;		/* the days so far */
	struct report		*rep;		/* the day being read */
	struct sla		*figs;		/* its rounds, charged as the dashboard does */
	json_t			*seen;		/* its alert ids */
	json_t			*fpq;		/* its rule hits: {type, agent, category} */
	json_t			*ids;		/* and their ids, for HMGET */
	size_t			 fpi;
	struct sbuf		 key, doc;
};

static void	reportdb_day(struct reportdb *);
static void	reportdb_next(struct reportdb *);

static void
reportdb_free(struct reportdb *r)
{
	if (r == NULL)
		return;
	report_free(r->range);
	report_free(r->rep);
	sla_free(r->figs);
	json_decref(r->seen);
	json_decref(r->fpq);
	json_decref(r->ids);
	sbuf_free(&r->key);
	sbuf_free(&r->doc);
	free(r->pol);
	free(r);
}

/* The end: done gets the report or why not; the reader goes. */
static void
reportdb_finish(struct reportdb *r, const char *err)
{
	struct report	*rep = NULL;

	if (r->starting) {
		r->failed = 1;
		return;
	}
	if (err == NULL) {
		rep = r->range;
		r->range = NULL;
	}
	r->done(rep, err, r->arg);
	reportdb_free(r);
}

static const char *
reportdb_prefix(const struct reportdb *r)
{
	return r->cfg->redis.prefix != NULL ? r->cfg->redis.prefix : "";
}

/*
 * Whether a reply may be used: the reader may have been cancelled
 * meanwhile (then it goes now), or the connection gone.
 */
static int
reportdb_reply_ok(struct reportdb *r, const redisReply *rep)
{
	r->out = 0;
	if (r->cancelled) {
		reportdb_free(r);
		return 0;
	}
	if (rep == NULL) {
		reportdb_finish(r, "the connection to Redis went before the answer");
		return 0;
	}
	return 1;
}

static void	reportdb_on_reply(redisReply *, void *);

static void
reportdb_send(struct reportdb *r, int argc, const char **argv, const size_t *lens)
{
	if (rconn_command_argv(r->rc, reportdb_on_reply, r, 0, argc, argv, lens) == -1) {
		reportdb_finish(r, "Redis is not reachable");
		return;
	}
	r->out = 1;
}

static void
reportdb_sendv(struct reportdb *r, int argc, const char **argv)
{
	size_t	lens[8];
	int	i;

	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	reportdb_send(r, argc, argv, lens);
}

/* The ms of a stream id "ms-seq", or -1. */
static int64_t
reportdb_id_ms(const char *id)
{
	char	*end;
	long long v;

	if (id == NULL)
		return -1;
	v = strtoll(id, &end, 10);
	return end != id && (*end == '-' || *end == '\0') ? (int64_t)v : -1;
}

/*
 * Whether XINFO STREAM says entries of the day may be gone: some entries
 * were removed (entries-added > length: MAXLEN's trimming) and the oldest
 * left is after the day started. Redis before 7.0 does not say: no.
 */
static int
reportdb_trimmed(const redisReply *info, int64_t day_start)
{
	long long	added = -1, length = -1;
	const char	*first = NULL;
	size_t		i;

	for (i = 0; i + 1 < info->elements; i += 2) {
		const redisReply *k = info->element[i], *v = info->element[i + 1];

		if (k->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(k->str, "entries-added") == 0 && v->type == REDIS_REPLY_INTEGER)
			added = v->integer;
		else if (strcmp(k->str, "length") == 0 && v->type == REDIS_REPLY_INTEGER)
			length = v->integer;
		else if (strcmp(k->str, "recorded-first-entry-id") == 0 &&
		    v->type == REDIS_REPLY_STRING)
			first = v->str;
	}
	return added >= 0 && length >= 0 && added > length && first != NULL &&
	    reportdb_id_ms(first) > day_start;
}

/*
 * An XRANGE bound at ms: a stream id is unsigned, and a day of 1970 in a
 * zone east of UTC (or its hour before) starts before the epoch.
 */
static void
reportdb_bound(char *buf, size_t size, int64_t ms)
{
	snprintf(buf, size, "%lld", (long long)(ms > 0 ? ms : 0));
}

/* A logged time: anyone may write the logs, the engine's range is kept. */
static int64_t
reportdb_num(const char *s)
{
	return s != NULL ? sla_clamp(strtoll(s, NULL, 10)) : 0;
}

/* --- the steps ---------------------------------------------------------------------- */

static void
reportdb_get(struct reportdb *r)
{
	const char	*argv[2] = { "GET", r->key.s };

	r->step = REPORTDB_GET;
	reportdb_sendv(r, 2, argv);
}

static void
reportdb_info(struct reportdb *r)
{
	char		 key[512];
	const char	*argv[3] = { "XINFO", "STREAM", key };

	r->step = REPORTDB_INFO;
	/* the 16 logs, then the alert stream: a rule hit trimmed away is lost too */
	if (r->bucket < CONVSTORE_BUCKETS)
		snprintf(key, sizeof(key), "%schatmon:sla:{%d}:log", reportdb_prefix(r),
		    r->bucket);
	else
		snprintf(key, sizeof(key), "%s%s", reportdb_prefix(r), r->cfg->redis.stream);
	reportdb_sendv(r, 3, argv);
}

static void
reportdb_log(struct reportdb *r)
{
	char		 key[512], end[32], count[16];
	const char	*argv[6] = { "XRANGE", key, r->cursor, end, "COUNT", count };

	r->step = REPORTDB_LOG;
	snprintf(key, sizeof(key), "%schatmon:sla:{%d}:log", reportdb_prefix(r),
	    r->bucket);
	reportdb_bound(end, sizeof(end), r->day_start + STATE_DAY_MS +
	    STATE_LATE_MS - 1);
	snprintf(count, sizeof(count), "%d", REPORTDB_PAGE);
	reportdb_sendv(r, 6, argv);
}

static void
reportdb_alerts(struct reportdb *r)
{
	char		 key[512], end[32], count[16];
	const char	*argv[6] = { "XRANGE", key, r->cursor, end, "COUNT", count };

	r->step = REPORTDB_ALERTS;
	snprintf(key, sizeof(key), "%s%s", reportdb_prefix(r), r->cfg->redis.stream);
	reportdb_bound(end, sizeof(end), r->day_start + STATE_DAY_MS +
	    STATE_LATE_MS - 1);
	snprintf(count, sizeof(count), "%d", REPORTDB_PAGE);
	reportdb_sendv(r, 6, argv);
}

/* The next batch of the day's rule hits' handling, or on when none is left. */
static void
reportdb_fp(struct reportdb *r)
{
	const char	*argv[2 + REPORTDB_FP_BATCH];
	size_t		 lens[2 + REPORTDB_FP_BATCH], n = 0;
	char		 key[512];
	const json_t	*id;

	if (r->fpi >= json_array_size(r->ids)) {
		reportdb_next(r);
		return;
	}
	r->step = REPORTDB_FP;
	snprintf(key, sizeof(key), "%schatmon:alerts:handling", reportdb_prefix(r));
	argv[0] = "HMGET";
	lens[0] = 5;
	argv[1] = key;
	lens[1] = strlen(key);
	while (n < REPORTDB_FP_BATCH && r->fpi + n < json_array_size(r->ids)) {
		id = json_array_get(r->ids, r->fpi + n);
		argv[2 + n] = json_string_value(id);
		lens[2 + n] = json_string_length(id);
		n++;
	}
	reportdb_send(r, (int)(2 + n), argv, lens);
}

static void
reportdb_add_day(const struct sla_account *w, const struct sla_day *d,
    void *arg)
{
	struct reportdb	*r = arg;

	/* the agent's total, and its figures in the shop and queue */
	if (report_add_shop_sums(r->rep, w, d) == -1)
		r->partial = -1;	/* ENOMEM, said at the end of the day */
}

/* One logged round or event (docs/operations.md's fields) of the day. */
static int
reportdb_log_apply(struct reportdb *r, const redisReply *fv)
{
	const char		*k = rreply_field(fv, "k", NULL), *ag = rreply_field(fv, "ag", NULL);
	const char		*f = rreply_field(fv, "f", NULL), *c = rreply_field(fv, "c", NULL);
	const char		*sh = rreply_field(fv, "sh", NULL), *qu = rreply_field(fv, "qu", NULL);
	int64_t			 o = reportdb_num(rreply_field(fv, "o", NULL));
	int64_t			 at = reportdb_num(rreply_field(fv, "at", NULL));
	const struct sla_config	*pc;
	struct sla_round	 w;

	if (k == NULL || ag == NULL || rreply_field(fv, "at", NULL) == NULL)
		return 0;	/* not ours: Redis holds what anyone put there */
	if (at < r->day_start || at >= r->day_start + STATE_DAY_MS)
		return 0;	/* charged to the day it happened on */
	if (strcmp(k, "a") == 0 || strcmp(k, "u") == 0) {
		w.agent = ag;
		w.shop = sh != NULL ? sh : "";
		w.queue = qu != NULL ? qu : "";
		w.conversation = c != NULL ? c : "";
		w.conversation_len = strlen(w.conversation);
		w.opened = o;
		w.at = at;
		/* waited by its shop's hours, as the engine charged it */
		pc = report_policy(r->rep, w.shop, w.queue);
		w.waited_ms = sla_service_ms(pc != NULL ? pc : &r->scfg, o, at);
		w.answered = k[0] == 'a';
		w.first = f != NULL && strcmp(f, "1") == 0;
		/* the dashboard's charge (src/dash_state.c), so the figures match it */
		/* one in no figure is in no list of the worst waits either */
		return sla_charge_round(r->figs, &w) ? report_add_wait(r->rep, &w) : 0;
	}
	if (strcmp(k, "b") == 0 || strcmp(k, "e") == 0)
		sla_charge_event(r->figs, ag, sh, qu, k[0] == 'b' ? SLA_BREACH :
		    SLA_ESCALATE, at);
	return 0;
}

/* One alert of the stream: counted when it is of the day and not seen before. */
static int
reportdb_alert_apply(struct reportdb *r, const char *sid, const char *json, size_t len)
{
	json_t		*a, *q = NULL;
	const char	*id, *type;
	int64_t		 t;
	int		 rc = -1;

	if ((a = json_loadb(json, len, JSON_ALLOW_NUL, NULL)) == NULL)
		return 0;
	if (!json_is_object(a) || (id = json_string_value(json_object_get(a,
	    "id"))) == NULL || (type = json_string_value(json_object_get(a,
	    "type"))) == NULL || strcmp(type, "rule.hit") != 0) {
		rc = 0;
		goto out;
	}
	if ((t = util_ts_ms(json_string_value(json_object_get(a, "ts")))) == -1)
		t = reportdb_id_ms(sid);
	if (t < r->day_start || t >= r->day_start + STATE_DAY_MS ||
	    json_object_get(r->seen, id) != NULL) {
		rc = 0;		/* another day's, or again (delivery is at least once) */
		goto out;
	}
	if (json_object_set_new(r->seen, id, json_true()) == -1 ||
	    report_add_alert(r->rep, a, 0) == -1)
		goto out;
	/* what a false positive is counted under, kept until the handling is read */
	if ((q = json_pack("{s:s, s:O?, s:O?, s:O*, s:O*}", "type", "rule.hit",
	    "agent", json_object_get(a, "agent"), "category", json_object_get(a,
	    "category"), "shop", json_object_get(a, "shop"), "queue",
	    json_object_get(a, "queue"))) == NULL ||
	    json_array_append_new(r->fpq, q) == -1 ||
	    json_array_append_new(r->ids, json_string(id)) == -1)
		goto out;
	rc = 0;
out:
	json_decref(a);
	return rc;
}

/* A page of entries: the next start after its last id, 1 when it was full. */
static int
reportdb_page(struct reportdb *r, const redisReply *rep)
{
	const redisReply	*last;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements == 0)
		return 0;
	last = rep->element[rep->elements - 1];
	if (last->type == REDIS_REPLY_ARRAY && last->elements == 2 &&
	    last->element[0]->type == REDIS_REPLY_STRING)
		snprintf(r->cursor, sizeof(r->cursor), "(%s", last->element[0]->str);
	return rep->elements >= REPORTDB_PAGE;
}

static void
reportdb_on_reply(redisReply *rep, void *priv)
{
	struct reportdb		*r = priv;
	const redisReply	*e;
	const char		*v;
	json_t			*h;
	size_t			 i;
	int			 partial, n;

	if (!reportdb_reply_ok(r, rep))
		return;
	/*
	 * XINFO's error is a log never written (no such key); SET's a replica
	 * (READONLY) or a full Redis: the report is still right, the day is
	 * read from the logs again next time.
	 */
	if (rep->type == REDIS_REPLY_ERROR && r->step != REPORTDB_INFO &&
	    r->step != REPORTDB_SET) {
		char	err[256];

		snprintf(err, sizeof(err), "redis: %s", rep->str);
		reportdb_finish(r, err);
		return;
	}
	switch (r->step) {
	case REPORTDB_GET:
		/* read under the shops' settings of now, as the top level's */
		if (rep->type == REDIS_REPLY_STRING && (n = report_load_into(r->rep,
		    rep->str, rep->len, &partial)) != 1) {
			if (n == -1) {
				reportdb_finish(r, "out of memory");
				return;
			}
			r->partial = partial;
			r->step = REPORTDB_SET;		/* nothing to store */
			reportdb_next(r);
			return;
		}
		r->bucket = 0;
		reportdb_info(r);
		return;
	case REPORTDB_INFO:
		if (rep->type == REDIS_REPLY_ARRAY && reportdb_trimmed(rep,
		    r->day_start - STATE_LATE_MS))
			r->partial = 1;
		if (++r->bucket <= CONVSTORE_BUCKETS) {
			reportdb_info(r);
			return;
		}
		r->bucket = 0;
		reportdb_bound(r->cursor, sizeof(r->cursor),
		    r->day_start - STATE_LATE_MS);
		reportdb_log(r);
		return;
	case REPORTDB_LOG:
		for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
			e = rep->element[i];
			if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
			    e->element[1]->type == REDIS_REPLY_ARRAY &&
			    reportdb_log_apply(r, e->element[1]) == -1) {
				reportdb_finish(r, "out of memory");
				return;
			}
		}
		if (reportdb_page(r, rep)) {
			reportdb_log(r);
			return;
		}
		if (++r->bucket < CONVSTORE_BUCKETS) {
			reportdb_bound(r->cursor, sizeof(r->cursor),
			    r->day_start - STATE_LATE_MS);
			reportdb_log(r);
			return;
		}
		/* the day's sums, as the dashboard's agents document has them */
		sla_agents_day(r->figs, r->day_start, reportdb_add_day, r);
		if (r->partial == -1) {
			reportdb_finish(r, "out of memory");
			return;
		}
		reportdb_bound(r->cursor, sizeof(r->cursor),
		    r->day_start - STATE_LATE_MS);
		reportdb_alerts(r);
		return;
	case REPORTDB_ALERTS:
		for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
			e = rep->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
			    e->element[0]->type != REDIS_REPLY_STRING ||
			    e->element[1]->type != REDIS_REPLY_ARRAY)
				continue;
			v = rreply_field(e->element[1], "alert", NULL);
			if (v != NULL && reportdb_alert_apply(r, e->element[0]->str, v,
			    strlen(v)) == -1) {
				reportdb_finish(r, "out of memory");
				return;
			}
		}
		if (reportdb_page(r, rep)) {
			reportdb_alerts(r);
			return;
		}
		r->fpi = 0;
		reportdb_fp(r);
		return;
	case REPORTDB_FP:
		for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
			if (rep->element[i]->type != REDIS_REPLY_STRING)
				continue;
			h = json_loadb(rep->element[i]->str, rep->element[i]->len, 0, NULL);
			v = json_string_value(json_object_get(h, "state"));
			if (v != NULL && strcmp(v, "false_positive") == 0 &&
			    report_add_alert(r->rep, json_array_get(r->fpq, r->fpi + i),
			    1) == -1) {
				json_decref(h);
				reportdb_finish(r, "out of memory");
				return;
			}
			json_decref(h);
		}
		r->fpi += REPORTDB_FP_BATCH;
		reportdb_fp(r);
		return;
	case REPORTDB_SET:
		reportdb_next(r);
		return;
	}
}

/*
 * The day is read: stored when it is finished and came from the logs
 * (step != SET), then merged into the range; on to the next day.
 */
static void
reportdb_next(struct reportdb *r)
{
	char		 ttl[32];
	const char	*argv[5];
	size_t		 lens[5];

	if (r->step != REPORTDB_SET && r->now >= r->day_start + STATE_DAY_MS +
	    STATE_LATE_MS) {
		sbuf_reset(&r->doc);
		if (report_dump(&r->doc, r->rep, r->day, r->scfg.utc_offset_min,
		    r->partial) == -1) {
			reportdb_finish(r, "out of memory");
			return;
		}
		snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)
		    (r->cfg->report.retention_days * 86400));
		argv[0] = "SET";
		argv[1] = r->key.s;
		argv[2] = r->doc.s;
		argv[3] = "EX";
		argv[4] = ttl;
		for (int i = 0; i < 5; i++)
			lens[i] = i == 2 ? r->doc.len : strlen(argv[i]);
		r->step = REPORTDB_SET;
		reportdb_send(r, 5, argv, lens);
		return;
	}
	if (r->agent != NULL)
		report_keep_agent(r->rep, r->agent);
	if ((r->shop != NULL && report_keep_shop(r->rep, r->shop, r->queue) == -1) ||
	    report_merge(r->range, r->rep, r->day, r->partial) == -1) {
		reportdb_finish(r, "out of memory");
		return;
	}
	r->day_start += STATE_DAY_MS;
	reportdb_day(r);
}

/* A day begins: its stored aggregate when it is over, else its logs. */
static void
reportdb_day(struct reportdb *r)
{
	report_free(r->rep);
	r->rep = NULL;
	sla_free(r->figs);
	r->figs = NULL;
	json_decref(r->seen);
	json_decref(r->fpq);
	json_decref(r->ids);
	r->seen = r->fpq = r->ids = NULL;
	if (r->day_start > r->last_start) {
		reportdb_finish(r, NULL);
		return;
	}
	state_day(r->day, r->day_start, r->scfg.utc_offset_min);
	r->partial = 0;
	sbuf_reset(&r->key);
	/* each shop judged and read by its own settings, as chatmond judged it */
	if ((r->rep = report_new(r->scfg.cap_ms, r->scfg.rate_ms)) == NULL ||
	    report_set_policies(r->rep, r->pol, r->npol) == -1 ||
	    (r->figs = sla_new(&r->scfg, NULL, NULL, NULL)) == NULL ||
	    sla_set_policies(r->figs, r->pol, r->npol) == -1 ||
	    (r->seen = json_object()) == NULL || (r->fpq = json_array()) == NULL ||
	    (r->ids = json_array()) == NULL ||
	    sbuf_printf(&r->key, "%schatmon:report:day:%s", reportdb_prefix(r),
	    r->day) == -1) {
		reportdb_finish(r, "out of memory");
		return;
	}
	if (r->day_start + STATE_DAY_MS <= r->today) {
		reportdb_get(r);
		return;
	}
	r->bucket = 0;
	reportdb_info(r);
}

struct reportdb *
reportdb_start(struct rconn *rc, const struct config *cfg, const char *from,
    const char *to, const char *agent, int64_t now, reportdb_done_cb done,
    void *arg)
{
	return reportdb_start_shop(rc, cfg, from, to, agent, NULL, NULL, now,
	    done, arg);
}

struct reportdb *
reportdb_start_shop(struct rconn *rc, const struct config *cfg, const char *from,
    const char *to, const char *agent, const char *shop, const char *queue,
    int64_t now, reportdb_done_cb done, void *arg)
{
	struct reportdb	*r;
	char		 day[16];

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	sbuf_init(&r->key);
	sbuf_init(&r->doc);
	r->rc = rc;
	r->cfg = cfg;
	r->done = done;
	r->arg = arg;
	r->agent = agent;
	r->shop = shop;
	r->queue = shop != NULL ? queue : NULL;
	r->now = now;
	sla_config_from(&r->scfg, &cfg->sla);
	r->today = state_day(day, now, r->scfg.utc_offset_min);
	if (report_parse_day(from, r->scfg.utc_offset_min, &r->day_start) == -1 ||
	    report_parse_day(to, r->scfg.utc_offset_min, &r->last_start) == -1 ||
	    sla_policies_from(cfg, &r->pol, &r->npol) == -1)
		goto err;
	if ((r->range = report_new(r->scfg.cap_ms, r->scfg.rate_ms)) == NULL ||
	    report_set_policies(r->range, r->pol, r->npol) == -1 ||
	    (shop != NULL && report_keep_shop(r->range, shop, r->queue) == -1))
		goto err;
	if (!rconn_up(rc))
		goto err;
	/* the first command goes now; a failure to send it is the caller's NULL */
	r->starting = 1;
	reportdb_day(r);
	r->starting = 0;
	if (r->failed || !r->out)
		goto err;
	return r;
err:
	reportdb_free(r);
	return NULL;
}

void
reportdb_cancel(struct reportdb *r)
{
	if (r == NULL)
		return;
	if (r->out)
		r->cancelled = 1;
	else
		reportdb_free(r);
}
