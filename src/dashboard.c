/* dashboard: `chatmon dashboard`: the supervisors' page and its live feed, from what chatmond keeps in Redis (lws and hiredis on one libevent loop). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libwebsockets.h>

#include "chatmon/access.h"
#include "chatmon/config.h"
#include "chatmon/convstore.h"
#include "chatmon/dashauth.h"
#include "chatmon/dashboard.h"
#include "chatmon/feed.h"
#include "chatmon/jsonw.h"
#include "chatmon/log.h"
#include "chatmon/lwsctx.h"
#include "chatmon/rconn.h"
#include "chatmon/state.h"

/*
 * Two Redis connections. One reads the alert stream: the history first
 * (the last dashboard.history alerts, and the whole local day for the rule
 * hits), then XREAD BLOCK from the last id, for ever; after an outage it
 * goes on from there. The other polls the state chatmond writes, every
 * redis.snapshot: who waits and the day's figures in Redis, the instances'
 * documents from their index (ZRANGEBYSCORE), MGET, merge.
 *
 * Pages connect to /feed. Each has its place in the feed (src/feed.c); new
 * alerts wake the pages at most every DASH_FLUSH_MS, so a burst goes out in
 * batches. The waiting and agents messages are made once per poll and sent
 * to each page that has not had that version. One lws_write per WRITEABLE
 * callback: a slow page only falls behind (and starts over), it holds up
 * nobody.
 */

#define DASH_PROTOCOL	"chatmon-dashboard"
#define DASH_FLUSH_MS	100
#define DASH_BLOCK_MS	5000
#define DASH_PAGE	1000		/* entries per XRANGE / XREAD, documents per index read */
#define DASH_POLL_MS	2000		/* when redis.snapshot is 0 */
#define DASH_RETRY_MS	1000		/* after Redis refused a stream read */
#define DASH_AUTH_MS	2000		/* sessions swept, feeds of ended ones closed */
/*
 * Alerts kept beyond the history: how far a page may fall behind before
 * it starts over. A burst comes in DASH_PAGE at a time, faster than any
 * page reads; ten pages of it is a few MB.
 */
#define DASH_SLACK	(10 * DASH_PAGE)

struct dash;

struct dash_client {		/* a page's feed (lws's per-connection space) */
	struct dash		*d;
	struct lws		*wsi;		/* NULL until established */
	struct dash_client	*prev, *next;
	uint64_t		 pos;		/* its place in the feed */
	int			 hello;		/* hello sent */
	int			 ended;		/* its login ended: close it */
	char			 sid[DASHAUTH_SID_MAX];	/* its session; "": token or open */
	unsigned		 status_v, waiting_v, agents_v;	/* versions sent */
};

enum dash_doc {
	DASH_SCAN_WAITING,
	DASH_SCAN_AGENTS,
};

/* convstore's buckets and fields (docs/operations.md, "Running many instances") */
#define DASH_BUCKETS	CONVSTORE_BUCKETS
#define DASH_NOPEN_F	6
static const char *const dash_open_fields[DASH_NOPEN_F] = { "op", "f", "x",
    "m1", "a", "w" };

struct dash;

/* An open round in Redis, while a poll reads it. */
struct dash_open {
	struct dash	*d;
	char		*id;
	size_t		 len;
	int		 bucket;
	int64_t		 opened;
	char		*f[DASH_NOPEN_F];	/* HMGET dash_open_fields; NULL nil */
};

struct dash_bucket {		/* a ZRANGE's context */
	struct dash	*d;
	int		 b;
};

struct dash {
	struct config		*cfg;
	struct lwsctx_tls	*tlsc;		/* dashboard.tls: tls.cert and tls.key */
	char			 root[PATH_MAX];
	struct event_base	*base;
	struct lws_context	*ctx;
	struct feed		*feed;
	struct rconn		*stream, *state;
	char			*key;		/* the alert stream, prefix included */
	const char		*prefix;	/* redis.prefix or "" */
	int			 loaded;	/* the history is in: follow */
	char			 day[16];
	int64_t			 day_start;
	uint64_t		 poll_ms;
	/* the poll under way */
	int			 polling;
	enum dash_doc		 scan;	/* which documents are being read */
	char			**keys;
	size_t			 nkeys, capkeys;
	/* who waits, read from the conversations' state in Redis */
	struct dash_bucket	 bk[DASH_BUCKETS];
	struct dash_open	*open;
	size_t			 nopen, capopen;
	uint64_t		 open_total;
	unsigned		 open_wait;	/* replies still to come */
	int			 open_failed;
	struct sbuf		 opendoc;	/* this poll's document of them */
	/* the day's figures, summed from the rounds and events Redis logged */
	struct sla		*figs;
	char			 log_id[DASH_BUCKETS][48];	/* read up to */
	struct sbuf		 figsdoc;
	/* what every page is sent */
	struct sbuf		 waiting, agents;
	unsigned		 waiting_v, agents_v, status_v;
	int			 redis_up;
	struct dash_client	*clients;
	struct lws_http_mount	 mount;		/* the page's files: lws keeps a pointer */
	struct lws_http_mount	 api;		/* /api/: logins (src/dashauth.c) */
	struct dashauth		*auth;
	/* the page is served over TLS: the session cookie is then Secure (0 until the dashboard's TLS lands) */
	int			 tls;
	struct sbuf		 out;		/* LWS_PRE bytes, then a message */
	struct event		*ev_poll, *ev_flush, *ev_stream, *ev_term, *ev_int;
	struct event		*ev_auth;
};

static void	dash_read(struct dash *);
static void	dash_notify(struct dash *);
static int	dash_cb(struct lws *, enum lws_callback_reasons, void *, void *,
		    size_t);
static int	dash_api_cb(struct lws *, enum lws_callback_reasons, void *,
		    void *, size_t);

/* not const: the /api/ entry's space is dashauth's to say (dash_start) */
static struct lws_protocols dash_protocols[] = {
	/* first: a page offers no subprotocol and gets the first */
	{ DASH_PROTOCOL, dash_cb, sizeof(struct dash_client), 4096, 0, NULL, 0 },
	{ DASHAUTH_PROTOCOL, dash_api_cb, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* --- the alert stream ----------------------------------------------------- */

/* XREVRANGE / XRANGE / XREAD entries into the feed, oldest first; 1 when one was new. */
static int
dash_entries(struct dash *d, const redisReply *list, int newest_first)
{
	const redisReply	*e, *f;
	size_t			 i, k, n = list->elements;
	const char		*json;
	size_t			 len;
	int			 added = 0, rc;

	for (i = 0; i < n; i++) {
		e = list->element[newest_first ? n - 1 - i : i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		f = e->element[1];
		json = "";
		len = 0;
		for (k = 0; k + 1 < f->elements; k += 2)
			if (f->element[k]->type == REDIS_REPLY_STRING &&
			    strcmp(f->element[k]->str, "alert") == 0 &&
			    f->element[k + 1]->type == REDIS_REPLY_STRING) {
				json = f->element[k + 1]->str;
				len = f->element[k + 1]->len;
			}
		/* an entry that is not an alert still moves the reading on */
		if ((rc = feed_add(d->feed, e->element[0]->str, json, len)) == -1)
			log_warnx("dash_entries: out of memory, an alert lost");
		else if (rc == 1)
			added = 1;
	}
	return added;
}

/* New alerts: wake the pages soon, not at once, so a burst goes out in batches. */
static void
dash_alerts_came(struct dash *d)
{
	struct timeval	tv = { 0, DASH_FLUSH_MS * 1000 };

	if (!evtimer_pending(d->ev_flush, NULL))
		evtimer_add(d->ev_flush, &tv);
}

static void
dash_on_flush(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dash_notify(arg);
}

/* Redis refused a read (a key that is not a stream, say): try again later. */
static void
dash_read_later(struct dash *d, const redisReply *r)
{
	struct timeval	tv = { DASH_RETRY_MS / 1000, DASH_RETRY_MS % 1000 * 1000 };

	log_warnx("dash_read: redis %s: %s", d->key, r->type == REDIS_REPLY_ERROR ?
	    r->str : "an unexpected reply");
	evtimer_add(d->ev_stream, &tv);
}

static void
dash_on_read_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dash_read(arg);
}

static void
dash_on_xread(redisReply *r, void *priv)
{
	struct dash	*d = priv;
	size_t		 i;

	if (r == NULL)
		return;		/* the connection went: dash_on_stream reads on */
	if (r->type == REDIS_REPLY_ARRAY) {
		for (i = 0; i < r->elements; i++)
			if (r->element[i]->type == REDIS_REPLY_ARRAY &&
			    r->element[i]->elements == 2 &&
			    r->element[i]->element[1]->type == REDIS_REPLY_ARRAY &&
			    dash_entries(d, r->element[i]->element[1], 0))
				dash_alerts_came(d);
	} else if (r->type != REDIS_REPLY_NIL) {	/* NIL: BLOCK timed out */
		dash_read_later(d, r);
		return;
	}
	dash_read(d);
}

/* The history is in: from now on, follow the stream. */
static void
dash_loaded(struct dash *d)
{
	d->loaded = 1;
	log_info("dash_loaded: history read up to %s, following %s",
	    feed_last_sid(d->feed)[0] ? feed_last_sid(d->feed) : "(none)", d->key);
	dash_read(d);
}

static void
dash_on_range(redisReply *r, void *priv)
{
	struct dash	*d = priv;
	char		 from[FEED_SID_MAX + 1];

	if (r == NULL)
		return;
	if (r->type != REDIS_REPLY_ARRAY) {
		dash_read_later(d, r);
		return;
	}
	if (dash_entries(d, r, 0))
		dash_alerts_came(d);
	if (r->elements < DASH_PAGE) {
		dash_loaded(d);
		return;
	}
	snprintf(from, sizeof(from), "(%s", feed_last_sid(d->feed));
	rconn_command(d->stream, dash_on_range, d, 0, "XRANGE %s %s + COUNT %d",
	    d->key, from, DASH_PAGE);
}

/*
 * The newest `history` entries give where the history starts; the day's
 * rule hits may need earlier ones: from whichever is older, read on.
 */
static void
dash_on_revrange(redisReply *r, void *priv)
{
	struct dash	*d = priv;
	char		 from[FEED_SID_MAX], daystart[32];
	const redisReply *oldest;

	if (r == NULL)
		return;
	if (r->type != REDIS_REPLY_ARRAY) {
		dash_read_later(d, r);
		return;
	}
	snprintf(daystart, sizeof(daystart), "%lld-0", (long long)d->day_start);
	if (r->elements == 0) {
		dash_loaded(d);		/* no stream yet: all of it is news */
		return;
	}
	oldest = r->element[r->elements - 1];
	snprintf(from, sizeof(from), "%s", daystart);
	if (oldest->type == REDIS_REPLY_ARRAY && oldest->elements == 2 &&
	    oldest->element[0]->type == REDIS_REPLY_STRING &&
	    strtoll(oldest->element[0]->str, NULL, 10) < d->day_start)
		snprintf(from, sizeof(from), "%s", oldest->element[0]->str);
	rconn_command(d->stream, dash_on_range, d, 0, "XRANGE %s %s + COUNT %d",
	    d->key, from, DASH_PAGE);
}

/* The next read of the stream: the history until it is in, then XREAD. */
static void
dash_read(struct dash *d)
{
	const char	*last = feed_last_sid(d->feed);

	if (!d->loaded)
		rconn_command(d->stream, dash_on_revrange, d, 0,
		    "XREVRANGE %s + - COUNT %llu", d->key,
		    (unsigned long long)d->cfg->dashboard.history);
	else
		rconn_command(d->stream, dash_on_xread, d, DASH_BLOCK_MS,
		    "XREAD COUNT %d BLOCK %d STREAMS %s %s", DASH_PAGE,
		    DASH_BLOCK_MS, d->key, last[0] ? last : "0-0");
}

/* --- the state documents ---------------------------------------------------- */

static void	dash_log_read(struct dash *);

static int64_t
dash_num(const char *s)
{
	return s != NULL ? strtoll(s, NULL, 10) : 0;
}


static void
dash_keys_clear(struct dash *d)
{
	while (d->nkeys > 0)
		free(d->keys[--d->nkeys]);
}

static void	dash_on_index(redisReply *, void *);

/* The instances' live documents of the kind being read, from their index (src/snapshot.c). */
static void
dash_index(struct dash *d)
{
	char	index[512];

	if (d->scan == DASH_SCAN_WAITING)
		snprintf(index, sizeof(index), "%schatmon:waiting", d->prefix);
	else
		snprintf(index, sizeof(index), "%schatmon:agents:%s", d->prefix,
		    d->day);
	if (rconn_command(d->state, dash_on_index, d, 0,
	    "ZRANGEBYSCORE %s (%lld +inf LIMIT 0 %d", index,
	    (long long)util_wall_ms(), DASH_PAGE) == -1)
		d->polling = 0;
}

static void
dash_set_msg(struct sbuf *msg, unsigned *version,
    const struct sbuf *made)
{
	sbuf_reset(msg);
	if (sbuf_append(msg, made->s, made->len) == 0)
		(*version)++;
}

static void
dash_on_mget(redisReply *r, void *priv)
{
	struct dash		*d = priv;
	const char		**docs = NULL;
	size_t			*lens = NULL, n = 0, i, bad = 0, na = 0;
	struct state_agent	*ag = NULL;
	struct sbuf		 made;
	int			 rc = -1;

	if (r == NULL) {
		d->polling = 0;
		return;
	}
	sbuf_init(&made);
	if ((docs = calloc(r->type == REDIS_REPLY_ARRAY ? r->elements + 1 : 1,
	    sizeof(*docs))) == NULL ||
	    (lens = calloc(r->type == REDIS_REPLY_ARRAY ? r->elements + 1 : 1,
	    sizeof(*lens))) == NULL)
		goto out;
	if (d->scan == DASH_SCAN_WAITING && d->opendoc.len > 0) {
		docs[n] = d->opendoc.s;
		lens[n++] = d->opendoc.len;
	}
	if (d->scan == DASH_SCAN_AGENTS && d->figsdoc.len > 0) {
		docs[n] = d->figsdoc.s;
		lens[n++] = d->figsdoc.len;
	}
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING) {	/* NIL: expired meanwhile */
			docs[n] = r->element[i]->str;
			lens[n++] = r->element[i]->len;
		}
	if (d->scan == DASH_SCAN_WAITING) {
		if ((rc = state_waiting_msg(&made, docs, lens, n, util_wall_ms(),
		    &bad)) == 0)
			dash_set_msg(&d->waiting, &d->waiting_v, &made);
	} else if ((rc = state_agents_merge(docs, lens, n, d->day, &ag, &na,
	    &bad)) == 0 && (rc = feed_agents_msg(d->feed, ag, na, &made)) == 0)
		dash_set_msg(&d->agents, &d->agents_v, &made);
	if (bad > 0)
		log_warnx("dash_on_mget: %zu state documents could not be read", bad);
out:
	if (rc == -1)
		log_warnx("dash_on_mget: out of memory, the pages keep what they have");
	state_agents_free(ag, na);
	sbuf_free(&made);
	free(docs);
	free(lens);
	dash_keys_clear(d);
	if (d->scan == DASH_SCAN_WAITING) {
		d->scan = DASH_SCAN_AGENTS;
		dash_log_read(d);
		return;
	}
	d->polling = 0;
	dash_notify(d);
}

/* --- the day's figures: the rounds and events Redis logged ------------------ */

#define DASH_LOG_PAGE	1000

/* The figures' document (the form of an instance's agents document), then the instances'. */
static void
dash_log_done(struct dash *d)
{
	struct state_origin	 o = { STATE_REDIS, "", 0 };
	struct sla_config	 scfg;

	sla_config_from(&scfg, &d->cfg->sla);
	sbuf_reset(&d->figsdoc);
	if (state_agents_doc(&d->figsdoc, d->figs, util_wall_ms(), &o, &scfg) == -1)
		sbuf_reset(&d->figsdoc);
	dash_index(d);
}

static const char *
dash_field(const redisReply *fv, const char *name)
{
	size_t	i;

	for (i = 0; i + 1 < fv->elements; i += 2)
		if (fv->element[i]->type == REDIS_REPLY_STRING &&
		    fv->element[i + 1]->type == REDIS_REPLY_STRING &&
		    strcmp(fv->element[i]->str, name) == 0)
			return fv->element[i + 1]->str;
	return NULL;
}

/* One logged round or event into the figures (docs/operations.md's fields). */
static void
dash_log_apply(struct dash *d, const redisReply *fv)
{
	const char	*k = dash_field(fv, "k"), *ag = dash_field(fv, "ag");
	const char	*o = dash_field(fv, "o"), *at = dash_field(fv, "at");
	const char	*f = dash_field(fv, "f");

	if (k == NULL || ag == NULL || at == NULL)
		return;		/* not ours: Redis holds what anyone put there */
	if (strcmp(k, "a") == 0 || strcmp(k, "u") == 0)
		sla_charge_round(d->figs, ag, k[0] == 'a', dash_num(o), dash_num(at),
		    f != NULL && strcmp(f, "1") == 0);
	else if (strcmp(k, "b") == 0 || strcmp(k, "e") == 0)
		sla_charge_event(d->figs, ag, k[0] == 'b' ? SLA_BREACH : SLA_ESCALATE,
		    dash_num(at));
}

static void
dash_on_log(redisReply *r, void *priv)
{
	struct dash		*d = priv;
	const redisReply	*s, *e;
	const char		*brace;
	size_t			 i, j, most = 0;
	int			 b;

	if (r == NULL) {
		d->polling = 0;
		return;
	}
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		s = r->element[i];
		if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
		    s->element[0]->type != REDIS_REPLY_STRING ||
		    s->element[1]->type != REDIS_REPLY_ARRAY ||
		    (brace = strstr(s->element[0]->str, "chatmon:sla:{")) == NULL ||
		    (b = atoi(brace + 13)) < 0 || b >= DASH_BUCKETS)
			continue;
		for (j = 0; j < s->element[1]->elements; j++) {
			e = s->element[1]->element[j];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
			    e->element[0]->type != REDIS_REPLY_STRING ||
			    e->element[0]->len >= sizeof(d->log_id[0]))
				continue;
			snprintf(d->log_id[b], sizeof(d->log_id[b]), "%s",
			    e->element[0]->str);
			if (e->element[1]->type == REDIS_REPLY_ARRAY)
				dash_log_apply(d, e->element[1]);
		}
		if (s->element[1]->elements > most)
			most = s->element[1]->elements;
	}
	if (r->type == REDIS_REPLY_ERROR)
		log_warnx("dash_on_log: redis: %s", r->str);
	if (most >= DASH_LOG_PAGE)	/* more to come */
		dash_log_read(d);
	else
		dash_log_done(d);
}

/*
 * What the 16 logs hold past what was read (from the start of the day
 * the first time), one page of each per call.
 */
static void
dash_log_read(struct dash *d)
{
	const char	*argv[4 + 2 * DASH_BUCKETS];
	size_t		 argvlen[4 + 2 * DASH_BUCKETS];
	char		 keys[DASH_BUCKETS][512], count[16];
	int		 b, n = 0;

	argv[n] = "XREAD";
	argvlen[n++] = 5;
	argv[n] = "COUNT";
	argvlen[n++] = 5;
	argvlen[n] = (size_t)snprintf(count, sizeof(count), "%d", DASH_LOG_PAGE);
	argv[n++] = count;
	argv[n] = "STREAMS";
	argvlen[n++] = 7;
	for (b = 0; b < DASH_BUCKETS; b++) {
		argvlen[n] = (size_t)snprintf(keys[b], sizeof(keys[b]),
		    "%schatmon:sla:{%d}:log", d->prefix, b);
		argv[n++] = keys[b];
	}
	for (b = 0; b < DASH_BUCKETS; b++) {
		if (d->log_id[b][0] == '\0')
			snprintf(d->log_id[b], sizeof(d->log_id[b]), "%lld-0",
			    (long long)d->day_start);
		argvlen[n] = strlen(d->log_id[b]);
		argv[n++] = d->log_id[b];
	}
	if (rconn_command_argv(d->state, dash_on_log, d, 0, n, argv, argvlen) == -1)
		d->polling = 0;
}

static void
dash_on_index(redisReply *r, void *priv)
{
	struct dash	*d = priv;
	const char	**argv;
	size_t		*argvlen, i;
	char		**nk;

	if (r == NULL) {
		d->polling = 0;
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY) {
		log_warnx("dash_on_index: redis: %s", r->type == REDIS_REPLY_ERROR ?
		    r->str : "an unexpected reply to ZRANGEBYSCORE");
		d->polling = 0;
		return;
	}
	for (i = 0; i < r->elements; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING)
			continue;
		if (d->nkeys == d->capkeys) {
			if ((nk = reallocarray(d->keys, d->capkeys ? d->capkeys * 2 :
			    16, sizeof(*nk))) == NULL)
				break;
			d->keys = nk;
			d->capkeys = d->capkeys ? d->capkeys * 2 : 16;
		}
		if ((d->keys[d->nkeys] = strdup(r->element[i]->str)) != NULL)
			d->nkeys++;
	}
	if (d->nkeys == 0) {		/* no instance: an empty message still */
		dash_on_mget(&(redisReply){ .type = REDIS_REPLY_ARRAY }, d);
		return;
	}
	if ((argv = calloc(d->nkeys + 1, sizeof(*argv))) == NULL ||
	    (argvlen = calloc(d->nkeys + 1, sizeof(*argvlen))) == NULL) {
		free(argv);
		dash_keys_clear(d);
		d->polling = 0;
		return;
	}
	argv[0] = "MGET";
	argvlen[0] = 4;
	for (i = 0; i < d->nkeys; i++) {
		argv[i + 1] = d->keys[i];
		argvlen[i + 1] = strlen(d->keys[i]);
	}
	if (rconn_command_argv(d->state, dash_on_mget, d, 0, (int)d->nkeys + 1,
	    argv, argvlen) == -1) {
		dash_keys_clear(d);
		d->polling = 0;
	}
	free(argv);
	free(argvlen);
}

/* --- who waits: the open rounds Redis holds -------------------------------- */

static void
dash_open_clear(struct dash *d)
{
	size_t	i, k;

	for (i = 0; i < d->nopen; i++) {
		free(d->open[i].id);
		for (k = 0; k < DASH_NOPEN_F; k++)
			free(d->open[i].f[k]);
	}
	d->nopen = 0;
	d->open_total = 0;
	d->open_failed = 0;
}

static int
dash_open_cmp(const void *a, const void *b)
{
	const struct dash_open	*x = a, *y = b;

	return x->opened < y->opened ? -1 : x->opened > y->opened;
}

/* Every answer is in: the document of the rounds still open, then the instances'. */
static void
dash_open_done(struct dash *d)
{
	struct state_open	*v = NULL;
	struct sla_config	 scfg;
	struct dash_open	*o;
	size_t			 i, n = 0;

	sbuf_reset(&d->opendoc);
	if (d->open_failed) {
		dash_open_clear(d);
		d->polling = 0;
		return;
	}
	if (d->nopen > 0 && (v = calloc(d->nopen, sizeof(*v))) == NULL) {
		log_warnx("dash_open_done: out of memory, the pages keep what they have");
		dash_open_clear(d);
		d->polling = 0;
		return;
	}
	for (i = 0; i < d->nopen; i++) {
		o = &d->open[i];
		if (o->f[0] == NULL || strcmp(o->f[0], "1") != 0)
			continue;	/* answered meanwhile */
		v[n].conversation = o->id;
		v[n].conversation_len = o->len;
		v[n].agent = o->f[4] != NULL ? o->f[4] : "";
		v[n].instance = o->f[5] != NULL ? o->f[5] : "";
		v[n].opened = o->opened;
		v[n].first = o->f[1] != NULL && strcmp(o->f[1], "1") == 0;
		v[n].fired = (unsigned)dash_num(o->f[2]);
		v[n].threshold_ms = (uint64_t)dash_num(o->f[3]);
		n++;
	}
	sla_config_from(&scfg, &d->cfg->sla);
	if (state_open_doc(&d->opendoc, v, n, d->open_total, util_wall_ms(),
	    &scfg) == -1)
		sbuf_reset(&d->opendoc);
	free(v);
	dash_open_clear(d);
	dash_index(d);
}

static void
dash_on_hmget(redisReply *r, void *priv)
{
	struct dash_open	*o = priv;
	struct dash		*d = o->d;
	size_t			 k;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != DASH_NOPEN_F)
		d->open_failed |= r == NULL;
	else
		for (k = 0; k < DASH_NOPEN_F; k++)
			if (r->element[k]->type == REDIS_REPLY_STRING)
				o->f[k] = strdup(r->element[k]->str);
	if (--d->open_wait == 0)
		dash_open_done(d);
}

/* The longest waits of every bucket are in: read the longest of all. */
static void
dash_open_fields_read(struct dash *d)
{
	struct sbuf	 key;
	const char	*argv[2 + DASH_NOPEN_F];
	size_t		 argvlen[2 + DASH_NOPEN_F], i, k;

	if (d->open_failed) {
		dash_open_done(d);
		return;
	}
	if (d->nopen > 1)
		qsort(d->open, d->nopen, sizeof(*d->open), dash_open_cmp);
	while (d->nopen > STATE_FEED_WAITING_MAX) {
		free(d->open[--d->nopen].id);
		d->open[d->nopen].id = NULL;
	}
	sbuf_init(&key);
	argv[0] = "HMGET";
	argvlen[0] = 5;
	for (k = 0; k < DASH_NOPEN_F; k++) {
		argv[2 + k] = dash_open_fields[k];
		argvlen[2 + k] = strlen(dash_open_fields[k]);
	}
	for (i = 0; i < d->nopen; i++) {
		sbuf_reset(&key);
		if (sbuf_printf(&key, "%schatmon:sla:{%d}:c:", d->prefix,
		    d->open[i].bucket) == -1 ||
		    sbuf_append(&key, d->open[i].id, d->open[i].len) == -1) {
			d->open_failed = 1;
			break;
		}
		argv[1] = key.s;
		argvlen[1] = key.len;
		d->open[i].d = d;
		if (rconn_command_argv(d->state, dash_on_hmget, &d->open[i], 0,
		    2 + DASH_NOPEN_F, argv, argvlen) == -1) {
			d->open_failed = 1;
			break;
		}
		d->open_wait++;
	}
	sbuf_free(&key);
	if (d->open_wait == 0)
		dash_open_done(d);
}

static void
dash_on_zcard(redisReply *r, void *priv)
{
	struct dash	*d = priv;

	if (r == NULL)
		d->open_failed = 1;
	else if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
		d->open_total += (uint64_t)r->integer;
	if (--d->open_wait == 0)
		dash_open_fields_read(d);
}

static void
dash_on_zrange(redisReply *r, void *priv)
{
	struct dash_bucket	*bk = priv;
	struct dash		*d = bk->d;
	struct dash_open	*no, *o;
	size_t			 i;

	if (r == NULL)
		d->open_failed = 1;
	for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
	    i += 2) {
		if (r->element[i]->type != REDIS_REPLY_STRING ||
		    r->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		if (d->nopen == d->capopen) {
			if ((no = reallocarray(d->open, d->capopen ? d->capopen * 2 :
			    64, sizeof(*no))) == NULL)
				break;
			d->open = no;
			d->capopen = d->capopen ? d->capopen * 2 : 64;
		}
		o = &d->open[d->nopen];
		memset(o, 0, sizeof(*o));
		if ((o->id = malloc(r->element[i]->len + 1)) == NULL)
			break;
		memcpy(o->id, r->element[i]->str, r->element[i]->len + 1);
		o->len = r->element[i]->len;
		o->bucket = bk->b;
		o->opened = dash_num(r->element[i + 1]->str);
		d->nopen++;
	}
	if (--d->open_wait == 0)
		dash_open_fields_read(d);
}

/*
 * Who waits now comes from Redis (docs/sla.md): the longest waits of each
 * bucket's open set, then the longest of all with their records, so that a
 * dead instance's customers stay on the page until someone answers them.
 */
static void
dash_open_read(struct dash *d)
{
	struct sbuf	key;
	int		b;

	dash_open_clear(d);
	sbuf_init(&key);
	for (b = 0; b < DASH_BUCKETS; b++) {
		sbuf_reset(&key);
		d->bk[b].d = d;
		d->bk[b].b = b;
		if (sbuf_printf(&key, "%schatmon:sla:{%d}:open", d->prefix, b) == -1 ||
		    rconn_command(d->state, dash_on_zrange, &d->bk[b], 0,
		    "ZRANGE %s 0 %d WITHSCORES", key.s, STATE_FEED_WAITING_MAX - 1) == -1)
			break;
		d->open_wait++;
		if (rconn_command(d->state, dash_on_zcard, d, 0, "ZCARD %s", key.s) == -1)
			break;
		d->open_wait++;
	}
	sbuf_free(&key);
	if (b < DASH_BUCKETS)
		d->open_failed = 1;
	if (d->open_wait == 0)
		dash_open_done(d);
}

/* The local day in sla.timezone; a new one clears the day's hits. */
static void
dash_day(struct dash *d, int64_t now)
{
	char	day[16];
	int64_t	start = state_day(day, now, d->cfg->sla.utc_offset_min);

	if (feed_set_day(d->feed, day, start, start + STATE_DAY_MS) == -1) {
		log_warnx("dash_day: out of memory");
		return;
	}
	if (strcmp(day, d->day) != 0 && d->day[0] != '\0')
		log_info("dash_day: a new day, %s", day);
	snprintf(d->day, sizeof(d->day), "%s", day);
	d->day_start = start;
}

static void
dash_on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct dash	*d = arg;

	(void)fd;
	(void)what;
	dash_day(d, util_wall_ms());
	if (d->polling || !rconn_up(d->state))
		return;
	dash_keys_clear(d);	/* what a poll cut short by Redis left */
	d->polling = 1;
	d->scan = DASH_SCAN_WAITING;
	dash_open_read(d);
}

static void
dash_status(struct dash *d)
{
	int	up = rconn_up(d->stream) && rconn_up(d->state);

	if (up != d->redis_up) {
		log_info("dash_status: redis %s", up ? "up (stream and state)" :
		    "away: the pages are told");
		d->redis_up = up;
		d->status_v++;
		dash_notify(d);
	}
}

static void
dash_on_stream(void *arg, int up, int lost)
{
	struct dash	*d = arg;

	(void)lost;
	if (up) {
		log_info("dash_on_stream: redis %s connected, reading %s",
		    rconn_name(d->stream), d->key);
		evtimer_del(d->ev_stream);
		dash_read(d);
	}
	dash_status(d);
}

static void
dash_on_state(void *arg, int up, int lost)
{
	struct dash	*d = arg;

	(void)lost;
	if (!up)
		d->polling = 0;
	else
		dash_on_poll(-1, 0, d);
	dash_status(d);
}

/* --- the pages ------------------------------------------------------------------- */

static void
dash_notify(struct dash *d)
{
	if (d->ctx != NULL && d->clients != NULL)
		lws_callback_on_writable_all_protocol(d->ctx, &dash_protocols[0]);
}

static int
dash_hello(struct dash *d, struct sbuf *out)
{
	const struct config_sla	*s = &d->cfg->sla;

	return jsonw_dump(out, json_pack("{s:s, s:i, s:I, s:s, s:i, "
	    "s:{s:I, s:I, s:f, s:I, s:I, s:I}, s:I}",
	    "type", "hello", "v", 1, "now", (json_int_t)util_wall_ms(),
	    "day", d->day, "tz_offset_min", (int)s->utc_offset_min,
	    "sla",
	    "first_response_ms", (json_int_t)s->first_response_ms,
	    "reply_ms", (json_int_t)s->reply_ms,
	    "warn_at", s->warn_at,
	    "escalate_ms", (json_int_t)s->escalate_ms,
	    "rate_ms", (json_int_t)s->rate_ms,
	    "cap_ms", (json_int_t)s->cap_ms,
	    "history", (json_int_t)d->cfg->dashboard.history));
}

/* What a page has still to be sent, in order: 0 nothing. */
static int
dash_due(const struct dash_client *c)
{
	const struct dash	*d = c->d;

	return !c->hello || c->status_v != d->status_v ||
	    feed_pending(d->feed, c->pos) ||
	    (c->waiting_v != d->waiting_v && d->waiting.len > 0) ||
	    (c->agents_v != d->agents_v && d->agents.len > 0);
}

/* One message to the page (lws: one write per WRITEABLE); -1 closes it. */
static int
dash_send(struct dash_client *c)
{
	static const char	 pad[LWS_PRE];
	struct dash		*d = c->d;
	struct sbuf		*o = &d->out;
	int			 rc;

	if (c->ended) {
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
		    (unsigned char *)"logged out", 10);
		return -1;
	}
	sbuf_reset(o);
	if (sbuf_append(o, pad, LWS_PRE) == -1)
		return -1;
	if (!c->hello) {
		rc = dash_hello(d, o);
		c->hello = 1;
	} else if (c->status_v != d->status_v) {
		rc = sbuf_printf(o, "{\"type\":\"status\",\"redis\":%s}",
		    d->redis_up ? "true" : "false");
		c->status_v = d->status_v;
	} else if (feed_pending(d->feed, c->pos))
		rc = feed_alerts_msg(d->feed, &c->pos, o);
	else if (c->waiting_v != d->waiting_v && d->waiting.len > 0) {
		rc = sbuf_append(o, d->waiting.s, d->waiting.len);
		c->waiting_v = d->waiting_v;
	} else if (c->agents_v != d->agents_v && d->agents.len > 0) {
		rc = sbuf_append(o, d->agents.s, d->agents.len);
		c->agents_v = d->agents_v;
	} else
		return 0;
	if (rc == -1) {
		log_warnx("dash_send: out of memory, closing a page's feed");
		return -1;
	}
	if (lws_write(c->wsi, (unsigned char *)o->s + LWS_PRE, o->len - LWS_PRE,
	    LWS_WRITE_TEXT) < 0)
		return -1;
	if (dash_due(c))
		lws_callback_on_writable(c->wsi);
	return 0;
}

/*
 * A browser sends Origin with every WebSocket upgrade: a page of another
 * site open in a supervisor's browser could otherwise read every alert,
 * chat text included (cross-site WebSocket hijacking). The page's own
 * origin (the Host it was loaded from) and dashboard.allowed_origins pass;
 * a request without Origin is not from a browser's page, and passes.
 */
static int
dash_origin_ok(struct dash *d, struct lws *wsi)
{
	char	origin[256], host[256], own[300];
	int	n;

	if ((n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN)) <= 0)
		return 1;
	if ((size_t)n >= sizeof(origin) ||
	    lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
		return 0;
	own[0] = '\0';
	if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) > 0)
		snprintf(own, sizeof(own), "%s://%s", lws_is_ssl(wsi) ?
		    "https" : "http", host);
	/* the agents' side checks with the same function (session.c) */
	return access_origin_ok(&d->cfg->dashboard.allowed_origins, origin, own);
}

/* Only /feed upgrades; with logins only with a session, with dashboard.token with the token. */
static int
dash_confirm_upgrade(struct dash *d, struct lws *wsi)
{
	char		 uri[64], sid[DASHAUTH_SID_MAX];
	int		 st;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strcmp(uri, "/feed") != 0) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return 1;
	}
	if (!dash_origin_ok(d, wsi)) {
		log_warnx("dash_confirm_upgrade: a feed from a foreign origin "
		    "refused (dashboard.allowed_origins)");
		lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
		return 1;
	}
	if ((st = dashauth_feed(d->auth, wsi, sid)) != 0) {
		log_info("dash_confirm_upgrade: a feed without %s refused",
		    dashauth_logins(d->auth) ? "a login (or the right token)" :
		    "the right token");
		lws_return_http_status(wsi, (unsigned)st, NULL);
		return 1;
	}
	return 0;
}

/* The page's headers: its own origin only, nothing inline, no sniffing. */
static int
dash_add_headers(struct lws *wsi, struct lws_process_html_args *args)
{
	static const struct {
		const char *name, *value;
	} h[] = {
		{ "content-security-policy:", "default-src 'self'; connect-src "
		    "'self'; img-src 'self' data:; style-src 'self'; "
		    "frame-ancestors 'none'" },
		{ "x-content-type-options:", "nosniff" },
		{ "referrer-policy:", "no-referrer" },
		{ "cache-control:", "no-cache" },
	};
	unsigned char	*p = (unsigned char *)args->p;
	size_t		 i;

	for (i = 0; i < UTIL_NELEM(h); i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)h[i].name,
		    (const unsigned char *)h[i].value, (int)strlen(h[i].value), &p,
		    (unsigned char *)args->p + args->max_len))
			return -1;
	args->max_len -= (int)(p - (unsigned char *)args->p);
	args->p = (char *)p;
	return 0;
}

static int
dash_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct dash		*d = lws_context_user(lws_get_context(wsi));
	struct dash_client	*c = user;
	char			 buf[FEED_SID_MAX + 16];
	const char		*since;

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* dashboard.tls: the listener's SSL_CTX, empty until now */
		return d->tlsc == NULL || lwsctx_tls_use(d->tlsc, user) == -1;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return dash_confirm_upgrade(d, wsi);
	case LWS_CALLBACK_ADD_HEADERS:
		return dash_add_headers(wsi, in);
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		memset(c, 0, sizeof(*c));
		c->d = d;
		since = lws_get_urlarg_by_name(wsi, "since=", buf, sizeof(buf));
		c->pos = feed_position(d->feed, since);
		/* which session it rides on, to close it when that ends */
		return dashauth_feed(d->auth, wsi, c->sid) != 0;
	case LWS_CALLBACK_ESTABLISHED:
		c->wsi = wsi;
		c->next = d->clients;
		if (d->clients != NULL)
			d->clients->prev = c;
		d->clients = c;
		log_debug("dash_cb: a page connected");
		lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return dash_send(c);
	case LWS_CALLBACK_RECEIVE:
		return 0;		/* the page has nothing to say */
	case LWS_CALLBACK_CLOSED:
		if (c->wsi == NULL)
			return 0;
		if (c->prev != NULL)
			c->prev->next = c->next;
		else
			d->clients = c->next;
		if (c->next != NULL)
			c->next->prev = c->prev;
		c->wsi = NULL;
		log_debug("dash_cb: a page left");
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

static int
dash_api_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct dash	*d = lws_context_user(lws_get_context(wsi));

	return dashauth_http(d->auth, wsi, (int)reason, user, in, len);
}

/* Sessions swept; the feeds whose login ended (logout, expiry, user gone) closed. */
static void
dash_on_auth(evutil_socket_t fd, short what, void *arg)
{
	struct dash		*d = arg;
	struct dash_client	*c;

	(void)fd;
	(void)what;
	dashauth_tick(d->auth);
	for (c = d->clients; c != NULL; c = c->next)
		if (!c->ended && !dashauth_feed_live(d->auth, c->sid)) {
			log_info("dash_on_auth: a page's login ended: closing its feed");
			c->ended = 1;
			lws_callback_on_writable(c->wsi);
		}
}

/* The page's files say they are UTF-8; lws's own table does not. */
static const struct lws_protocol_vhost_options dash_mime[] = {
	{ &dash_mime[1], NULL, ".html", "text/html; charset=utf-8" },
	{ &dash_mime[2], NULL, ".js", "text/javascript; charset=utf-8" },
	{ &dash_mime[3], NULL, ".css", "text/css; charset=utf-8" },
	{ NULL, NULL, ".svg", "image/svg+xml" },
};

/* --- start and stop ------------------------------------------------------------ */

static void
dash_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct dash	*d = arg;

	(void)what;
	log_info("dash_on_signal: signal %d, stopping", (int)sig);
	event_base_loopbreak(d->base);
}

static int
dash_usage(FILE *f)
{
	fprintf(f,
	    "usage: chatmon dashboard [-c FILE] [-o key.path=value]... "
	    "[--listen ADDR] [--redis URL]\n"
	    "\n"
	    "Serves the supervisors' page (dashboard.root) and its live feed on\n"
	    "dashboard.listen: the alerts of every chatmond instance, who is\n"
	    "waiting now and each agent's day, read from Redis (docs/dashboard.md).\n"
	    "--listen  HOST:PORT instead of dashboard.listen\n"
	    "--redis   redis://host[:port][/db] or unix:/path, instead of redis.url\n");
	return f == stdout ? 0 : 2;
}

/*
 * Whether dir holds the page: 1 (its absolute form in out, PATH_MAX), 0
 * without index.html, -1 when dir itself cannot be found; errno says why.
 */
static int
dash_page_in(const char *dir, char *out)
{
	char	index[PATH_MAX + 16];

	if (realpath(dir, out) == NULL)
		return -1;
	snprintf(index, sizeof(index), "%s/index.html", out);
	return access(index, R_OK) == 0;
}

/*
 * The page of the checkout this binary was built in (build/chatmon beside
 * web/dashboard), for a dashboard.root left at the installed default that
 * `make install` has not filled: `build/chatmon dashboard` then works from
 * a checkout as it is. 1 when found.
 */
static int
dash_build_tree_page(char *out)
{
	char	exe[PATH_MAX], dir[PATH_MAX + 32];
	ssize_t	n;
	char	*slash;

	if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
		return 0;
	exe[n] = '\0';
	if ((slash = strrchr(exe, '/')) == NULL)
		return 0;
	*slash = '\0';
	snprintf(dir, sizeof(dir), "%s/../web/dashboard", exe);
	return dash_page_in(dir, out) == 1;
}

/* The page's directory, absolute and holding index.html; 0 or -1 (said). */
static int
dash_root(struct dash *d)
{
	const char	*root = d->cfg->dashboard.root;
	int		 dflt = strcmp(root, CHATMON_DATADIR "/dashboard") == 0, e, in;

	if ((in = dash_page_in(root, d->root)) == 1)
		return 0;
	e = errno;
	if (dflt && dash_build_tree_page(d->root)) {
		fprintf(stderr, "chatmon: dashboard: %s has no page (not installed): "
		    "serving the build tree's, %s\n", root, d->root);
		return 0;
	}
	fprintf(stderr, "chatmon: dashboard: %s%s: %s (dashboard.root)\n", root,
	    in == 0 ? "/index.html" : "", strerror(e));
	fprintf(stderr, "chatmon: dashboard: %s\n", dflt ?
	    "the page is installed there by `make install`; from a checkout, "
	    "pass -o dashboard.root=$PWD/web/dashboard at its top" :
	    "set dashboard.root to the directory holding the page's index.html "
	    "(a checkout's web/dashboard, or where `make install` put it)");
	return -1;
}

static int
dash_start(struct dash *d)
{
	struct sbuf		 errs;
	struct timeval		 tv;
	struct lws_http_mount	*mount = &d->mount;
	struct lwsctx_info	 li;
	struct sla_config	 scfg;
	size_t			 n;

	d->prefix = d->cfg->redis.prefix != NULL ? d->cfg->redis.prefix : "";
	n = strlen(d->prefix) + strlen(d->cfg->redis.stream) + 1;
	d->poll_ms = d->cfg->redis.snapshot_ms ? d->cfg->redis.snapshot_ms : DASH_POLL_MS;
	if ((d->key = malloc(n)) == NULL ||
	    (d->feed = feed_new((size_t)d->cfg->dashboard.history,
	    (size_t)d->cfg->dashboard.history + DASH_SLACK)) == NULL ||
	    (d->base = event_base_new()) == NULL ||
	    (d->stream = rconn_new(d->base, "dashboard", dash_on_stream, d)) == NULL ||
	    (d->state = rconn_new(d->base, "dashboard state", dash_on_state, d)) == NULL ||
	    (d->ev_poll = event_new(d->base, -1, EV_PERSIST, dash_on_poll, d)) == NULL ||
	    (d->ev_flush = evtimer_new(d->base, dash_on_flush, d)) == NULL ||
	    (d->ev_stream = evtimer_new(d->base, dash_on_read_retry, d)) == NULL ||
	    (d->ev_term = evsignal_new(d->base, SIGTERM, dash_on_signal, d)) == NULL ||
	    (d->ev_int = evsignal_new(d->base, SIGINT, dash_on_signal, d)) == NULL ||
	    (d->ev_auth = event_new(d->base, -1, EV_PERSIST, dash_on_auth, d)) == NULL ||
	    evsignal_add(d->ev_term, NULL) == -1 || evsignal_add(d->ev_int, NULL) == -1) {
		fprintf(stderr, "chatmon: dashboard: out of memory\n");
		return -1;
	}
	snprintf(d->key, n, "%s%s", d->prefix, d->cfg->redis.stream);
	sla_config_from(&scfg, &d->cfg->sla);
	if ((d->figs = sla_new(&scfg, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "chatmon: dashboard: out of memory\n");
		return -1;
	}
	dash_day(d, util_wall_ms());
	d->status_v = 1;	/* a page's first status is always sent */

	/* lws reads the mount on every request: it lives as long as d */
	memset(mount, 0, sizeof(*mount));
	mount->mountpoint = "/";
	mount->mountpoint_len = 1;
	mount->origin = d->root;
	mount->def = "index.html";
	mount->protocol = DASH_PROTOCOL;
	mount->extra_mimetypes = dash_mime;
	mount->origin_protocol = LWSMPRO_FILE;
	mount->cache_revalidate = 1;
	memset(&d->api, 0, sizeof(d->api));
	d->api.mountpoint = "/api";
	d->api.mountpoint_len = 4;
	d->api.origin = DASHAUTH_PROTOCOL;
	d->api.protocol = DASHAUTH_PROTOCOL;
	d->api.origin_protocol = LWSMPRO_CALLBACK;
	d->api.mount_next = mount;
	dash_protocols[1].per_session_data_size = dashauth_pss_size();
	sbuf_init(&errs);
	d->tls = d->cfg->dashboard.tls;
	if (d->tls && (d->tlsc = lwsctx_tls_load(&d->cfg->tls, &errs)) == NULL) {
		fprintf(stderr, "chatmon: dashboard: %s", sbuf_str(&errs));
		sbuf_free(&errs);
		return -1;
	}
	if ((d->auth = dashauth_new(d->cfg->dashboard.users, d->cfg->dashboard.token,
	    d->cfg->dashboard.session_ttl_ms, d->tls, &errs)) == NULL) {
		fputs(sbuf_str(&errs), stderr);	/* FILE:LINE: each */
		sbuf_free(&errs);
		return -1;
	}
	sbuf_free(&errs);
	memset(&li, 0, sizeof(li));
	li.listen = &d->cfg->dashboard.listen;
	li.protocols = dash_protocols;
	li.mounts = &d->api;
	li.user = d;
	li.vhost = "dashboard";
	li.timeout_secs = 10;
	li.tls = d->tls;
	sbuf_init(&errs);
	if ((d->ctx = lwsctx_new(d->base, &li, &errs)) == NULL) {
		fprintf(stderr, "chatmon: dashboard: %s", sbuf_str(&errs));
		sbuf_free(&errs);
		return -1;
	}
	sbuf_free(&errs);
	/* it only reads: a replica named by redis.url will do */
	if (rconn_set_target(d->stream, &d->cfg->redis, RCONN_ANY_ROLE) == -1 ||
	    rconn_set_target(d->state, &d->cfg->redis, RCONN_ANY_ROLE) == -1) {
		fprintf(stderr, "chatmon: dashboard: out of memory\n");
		return -1;
	}
	tv.tv_sec = (time_t)(d->poll_ms / 1000);
	tv.tv_usec = (suseconds_t)(d->poll_ms % 1000 * 1000);
	evtimer_add(d->ev_poll, &tv);
	tv.tv_sec = DASH_AUTH_MS / 1000;
	tv.tv_usec = 0;
	evtimer_add(d->ev_auth, &tv);
	if (dashauth_logins(d->auth))
		log_info("dash_start: logins from %s; sessions last %llu s, %llu s "
		    "idle at most", d->cfg->dashboard.users,
		    (unsigned long long)(d->cfg->dashboard.session_ttl_ms / 1000),
		    (unsigned long long)(d->cfg->dashboard.session_ttl_ms < 3600000 ?
		    d->cfg->dashboard.session_ttl_ms / 1000 : 3600));
	log_info("dash_start: http://%s:%d/ (page from %s), reading %s at redis %s",
	    d->cfg->dashboard.listen.host, d->cfg->dashboard.listen.port, d->root,
	    d->key, rconn_name(d->stream));
	return 0;
}

/* As chatmond's: lws first, outside its callbacks; then what it left on the loop. */
static void
dash_stop(struct dash *d)
{
	int	i;

	if (d->ctx != NULL) {
		lws_context_destroy(d->ctx);
		d->ctx = NULL;
		for (i = 0; i < 100 && event_base_loop(d->base, EVLOOP_NONBLOCK) == 0; i++)
			;
	}
	d->clients = NULL;
	rconn_free(d->stream);
	rconn_free(d->state);
	if (d->ev_poll)
		event_free(d->ev_poll);
	if (d->ev_flush)
		event_free(d->ev_flush);
	if (d->ev_stream)
		event_free(d->ev_stream);
	if (d->ev_term)
		event_free(d->ev_term);
	if (d->ev_int)
		event_free(d->ev_int);
	if (d->ev_auth)
		event_free(d->ev_auth);
	if (d->base != NULL)
		event_base_free(d->base);
	libevent_global_shutdown();
	dash_keys_clear(d);
	free(d->keys);
	feed_free(d->feed);
	free(d->key);
	sbuf_free(&d->waiting);
	sbuf_free(&d->agents);
	dash_open_clear(d);
	free(d->open);
	sbuf_free(&d->opendoc);
	sbuf_free(&d->figsdoc);
	sla_free(d->figs);
	sbuf_free(&d->out);
	dashauth_free(d->auth);
	lwsctx_tls_free(d->tlsc);
}

int
dashboard_main(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "listen", required_argument, NULL, 'l' },
		{ "redis", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct dash	 d;
	struct sbuf	 errs;
	const char	*path = default_config, *listen = NULL, *redis = NULL;
	char		**ov = NULL, **nov;
	size_t		 nov_n = 0;
	int		 ch, explicit = 0, rc = 1;

	memset(&d, 0, sizeof(d));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			explicit = 1;
			break;
		case 'o':
			if ((nov = reallocarray(ov, nov_n + 1, sizeof(*ov))) == NULL) {
				free(ov);
				fprintf(stderr, "chatmon: dashboard: out of memory\n");
				return 1;
			}
			ov = nov;
			ov[nov_n++] = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'r':
			redis = optarg;
			break;
		case 'h':
			free(ov);
			return dash_usage(stdout);
		default:
			free(ov);
			return dash_usage(stderr);
		}
	}
	if (optind != argc) {
		free(ov);
		return dash_usage(stderr);
	}
	/* installed, the default file is there; in a build tree it may not be */
	if (!explicit && access(path, F_OK) == -1 && errno == ENOENT)
		path = NULL;
	sbuf_init(&errs);
	d.cfg = config_load(path, ov, nov_n, &errs);
	free(ov);
	if (d.cfg == NULL) {
		fputs(sbuf_str(&errs), stderr);
		sbuf_free(&errs);
		return 1;
	}
	sbuf_free(&errs);
	if (listen != NULL && config_parse_addr(listen, &d.cfg->dashboard.listen) == -1) {
		fprintf(stderr, "chatmon: dashboard: --listen: want HOST:PORT, not '%s'\n",
		    listen);
		rc = 2;
		goto out;
	}
	if (redis != NULL && config_parse_redis_url(redis, &d.cfg->redis.target) == -1) {
		fprintf(stderr, "chatmon: dashboard: --redis: want redis://host[:port][/db] "
		    "or unix:/path, not '%s'\n", redis);
		rc = 2;
		goto out;
	}
	if (redis != NULL)
		d.cfg->redis.nsentinels = 0;	/* the server named wins over Sentinel too */
	log_set_level(d.cfg->log_level);
	log_set_json(d.cfg->log_json);
	if (path == NULL)
		log_info("dashboard_main: no %s: the built-in defaults", default_config);
	if (dash_root(&d) == -1)
		goto out;
	signal(SIGPIPE, SIG_IGN);
	if (dash_start(&d) == -1)
		goto out;
	event_base_dispatch(d.base);
	rc = 0;
out:
	dash_stop(&d);
	config_free(d.cfg);
	return rc;
}
