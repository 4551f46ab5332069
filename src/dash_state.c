/* dash_state: the dashboard's poll of the state chatmond keeps in Redis: who waits now (the open rounds), the day's figures (the rounds and events logged), the instances' documents. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "chatmon/feed.h"
#include "chatmon/log.h"
#include "chatmon/rconn.h"
#include "chatmon/rreply.h"
#include "chatmon/sla.h"
#include "chatmon/state.h"
#include "dash_int.h"

static const char *const dash_open_fields[DASH_NOPEN_F] = { "op", "f", "x",
    "m1", "a", "w", "sh", "qu" };

static void	dash_open_clear(struct dash *);
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
		/* every shop's longest for the scoped pages, the longest of all for the others */
		if ((rc = state_waiting_msg(&made, docs, lens, n, util_wall_ms(),
		    &bad)) == 0) {
			sbuf_reset(&d->waiting_all);
			if ((rc = sbuf_append(&d->waiting_all, made.s,
			    made.len)) == 0)
				sbuf_reset(&made);
			if (rc == 0 && (rc = feed_scope_msg(d->waiting_all.s,
			    d->waiting_all.len, NULL, &made)) == 0)
				dash_set_msg(&d->waiting, &d->waiting_v, &made);
			else
				sbuf_reset(&d->waiting_all);
		}
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
	dash_feed_notify(d);
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
	if (state_agents_doc(&d->figsdoc, d->figs, util_wall_ms(), &o, &scfg,
	    d->pol, d->npol) == -1)
		sbuf_reset(&d->figsdoc);
	dash_index(d);
}

/* One logged round or event into the figures (docs/operations.md's fields). */
static void
dash_log_apply(struct dash *d, const redisReply *fv)
{
	const char	*k = rreply_field(fv, "k", NULL), *ag = rreply_field(fv, "ag", NULL);
	const char	*o = rreply_field(fv, "o", NULL), *at = rreply_field(fv, "at", NULL);
	const char	*f = rreply_field(fv, "f", NULL);
	const char	*sh = rreply_field(fv, "sh", NULL), *qu = rreply_field(fv, "qu", NULL);
	struct sla_round w;

	if (k == NULL || ag == NULL || at == NULL)
		return;		/* not ours: Redis holds what anyone put there */
	/*
	 * The engine keeps an agent's latest day and the one before: a time
	 * two days ahead (an instance's clock far off) would push today out
	 * of it, and today's figures off the page. The next day's is kept.
	 */
	if (dash_num(at) >= d->day_start + 2 * STATE_DAY_MS)
		return;
	if (strcmp(k, "a") == 0 || strcmp(k, "u") == 0) {
		memset(&w, 0, sizeof(w));
		w.agent = ag;
		w.shop = sh;
		w.queue = qu;
		w.conversation = rreply_field(fv, "c", NULL);
		w.conversation_len = w.conversation != NULL ?
		    strlen(w.conversation) : 0;
		w.answered = k[0] == 'a';
		w.opened = dash_num(o);
		w.at = dash_num(at);
		w.first = f != NULL && strcmp(f, "1") == 0;
		sla_charge_round(d->figs, &w);
	}
	else if (strcmp(k, "b") == 0 || strcmp(k, "e") == 0)
		sla_charge_event(d->figs, ag, sh, qu, k[0] == 'b' ? SLA_BREACH :
		    SLA_ESCALATE, dash_num(at));
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
		/* from an hour before the day, as chatmon report reads it */
		if (d->log_id[b][0] == '\0')
			snprintf(d->log_id[b], sizeof(d->log_id[b]), "%lld-0",
			    (long long)(d->day_start - STATE_LATE_MS));
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
dash_open_free(struct dash_open *v, size_t n)
{
	size_t	i, k;

	for (i = 0; i < n; i++) {
		free(v[i].id);
		for (k = 0; k < DASH_NOPEN_F; k++)
			free(v[i].f[k]);
	}
}

static void
dash_open_clear(struct dash *d)
{
	dash_open_free(d->open, d->nopen);
	d->nopen = 0;
	d->open_total = 0;
	d->open_failed = 0;
}

/* Longest first; a total order (bucket, id), so that two polls' lists merge. */
static int
dash_open_cmp(const void *a, const void *b)
{
	const struct dash_open	*x = a, *y = b;
	int			 c;

	if (x->opened != y->opened)
		return x->opened < y->opened ? -1 : 1;
	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	if ((c = memcmp(x->id, y->id, x->len < y->len ? x->len : y->len)) != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

/*
 * The rounds of this poll that the last one read (the same conversation
 * and open time: the same round of the same record) take their shop and
 * queue from it. Both lists are in dash_open_cmp's order. -1: out of memory.
 */
static int
dash_open_known(struct dash *d)
{
	struct dash_open	*o, *s;
	size_t			 i = 0, j = 0;
	int			 c;

	while (i < d->nopen && j < d->nseen) {
		o = &d->open[i];
		s = &d->seen[j];
		if ((c = dash_open_cmp(o, s)) < 0)
			i++;
		else if (c > 0)
			j++;
		else {
			if ((s->f[6] != NULL && (o->f[6] = strdup(s->f[6])) == NULL) ||
			    (s->f[7] != NULL && (o->f[7] = strdup(s->f[7])) == NULL))
				return -1;
			o->known = 1;
			i++;
			j++;
		}
	}
	return 0;
}

/* This poll's rounds whose shop is known become the next poll's seen. */
static void
dash_open_keep(struct dash *d)
{
	struct dash_open	*o;
	size_t			 i, k, n = 0;

	dash_open_free(d->seen, d->nseen);
	free(d->seen);
	d->seen = NULL;
	d->nseen = 0;
	if (d->nopen == 0 || (d->seen = calloc(d->nopen, sizeof(*d->seen))) == NULL)
		return;
	for (i = 0; i < d->nopen; i++) {
		o = &d->open[i];
		if (o->read ? o->f[0] == NULL || strcmp(o->f[0], "1") != 0 :
		    !o->known)
			continue;	/* no record, or answered */
		d->seen[n] = *o;
		for (k = 0; k < DASH_NOPEN_F; k++)
			if (k != 6 && k != 7) {
				free(o->f[k]);
				d->seen[n].f[k] = NULL;
			}
		memset(o, 0, sizeof(*o));	/* its strings moved */
		n++;
	}
	d->nseen = n;
}

/* Every answer is in: the document of the rounds still open, then the instances'. */
static void
dash_open_done(struct dash *d)
{
	struct state_open	*v = NULL;
	struct sla_config	 scfg;
	struct dash_open	*o;
	json_t			*shops = NULL, *kept = NULL;
	const char		*shop;
	size_t			 i, n = 0;

	sbuf_reset(&d->opendoc);
	if (d->open_failed) {
		dash_open_clear(d);
		d->polling = 0;
		return;
	}
	if ((d->nopen > 0 && (v = calloc(d->nopen, sizeof(*v))) == NULL) ||
	    (shops = json_object()) == NULL || (kept = json_object()) == NULL)
		goto oom;
	/*
	 * Longest first (dash_open_fields_read), each shop's longest kept and
	 * every one counted by its shop: the page of one shop is not left
	 * with nothing because others waited longer (docs/dashboard.md, "Scope")
	 */
	for (i = 0; i < d->nopen; i++) {
		o = &d->open[i];
		if (o->read && (o->f[0] == NULL || strcmp(o->f[0], "1") != 0))
			continue;	/* answered meanwhile */
		shop = o->f[6] != NULL ? o->f[6] : "";
		if (state_shops_add(shops, shop, 1) == -1)
			goto oom;
		/*
		 * not read: behind its shop's longest known ones, counted only
		 * (one of those answered meanwhile leaves its shop one short
		 * until the next poll)
		 */
		if (!o->read || json_integer_value(json_object_get(kept, shop)) >=
		    STATE_FEED_WAITING_MAX)
			continue;
		if (state_shops_add(kept, shop, 1) == -1)
			goto oom;
		v[n].conversation = o->id;
		v[n].conversation_len = o->len;
		v[n].agent = o->f[4] != NULL ? o->f[4] : "";
		v[n].instance = o->f[5] != NULL ? o->f[5] : "";
		v[n].shop = o->f[6] != NULL ? o->f[6] : "";
		v[n].queue = o->f[7] != NULL ? o->f[7] : "";
		v[n].opened = o->opened;
		v[n].first = o->f[1] != NULL && strcmp(o->f[1], "1") == 0;
		v[n].fired = (unsigned)dash_num(o->f[2]);
		v[n].threshold_ms = (uint64_t)dash_num(o->f[3]);
		n++;
	}
	sla_config_from(&scfg, &d->cfg->sla);
	if (state_open_doc(&d->opendoc, v, n, d->open_total, shops,
	    util_wall_ms(), &scfg, d->pol, d->npol) == -1)
		sbuf_reset(&d->opendoc);
	free(v);
	json_decref(shops);
	json_decref(kept);
	dash_open_keep(d);
	dash_open_clear(d);
	dash_index(d);
	return;
oom:
	log_warnx("dash_open_done: out of memory, the pages keep what they have");
	free(v);
	json_decref(shops);
	json_decref(kept);
	dash_open_clear(d);
	d->polling = 0;
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
		for (k = 0; k < DASH_NOPEN_F; k++) {
			free(o->f[k]);
			o->f[k] = r->element[k]->type == REDIS_REPLY_STRING ?
			    strdup(r->element[k]->str) : NULL;
		}
	if (--d->open_wait == 0)
		dash_open_done(d);
}

/* The waits of every bucket are in: read their records, longest first. */
static void
dash_open_fields_read(struct dash *d)
{
	struct sbuf	 key;
	json_t		*known;
	const char	*argv[2 + DASH_NOPEN_F];
	size_t		 argvlen[2 + DASH_NOPEN_F], i, k;

	if (d->open_failed) {
		dash_open_done(d);
		return;
	}
	if (d->nopen > 1)
		qsort(d->open, d->nopen, sizeof(*d->open), dash_open_cmp);
	/*
	 * What is read: a round the last poll did not see (its shop is
	 * unknown) and the longest STATE_FEED_WAITING_MAX known ones of each
	 * shop (agent, instance and events change), a superset of what the
	 * page shows; the others are only counted by their shop. At 6 000
	 * waiting customers that is a quarter of the HMGETs of reading all.
	 */
	if ((known = json_object()) == NULL || dash_open_known(d) == -1) {
		json_decref(known);
		d->open_failed = 1;
		dash_open_done(d);
		return;
	}
	for (i = 0; i < d->nopen; i++) {
		if (!d->open[i].known)
			d->open[i].read = 1;
		else if (json_integer_value(json_object_get(known,
		    d->open[i].f[6] != NULL ? d->open[i].f[6] : "")) <
		    STATE_FEED_WAITING_MAX) {
			d->open[i].read = 1;
			if (state_shops_add(known, d->open[i].f[6] != NULL ?
			    d->open[i].f[6] : "", 1) == -1) {
				json_decref(known);
				d->open_failed = 1;
				dash_open_done(d);
				return;
			}
		}
	}
	json_decref(known);
	sbuf_init(&key);
	argv[0] = "HMGET";
	argvlen[0] = 5;
	for (k = 0; k < DASH_NOPEN_F; k++) {
		argv[2 + k] = dash_open_fields[k];
		argvlen[2 + k] = strlen(dash_open_fields[k]);
	}
	for (i = 0; i < d->nopen; i++) {
		if (!d->open[i].read)
			continue;
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
 * Who waits now comes from Redis (docs/sla.md): each bucket's open set
 * (its longest DASH_OPEN_MAX), then their records, so that a dead
 * instance's customers stay on the page until someone answers them. The
 * shop is in the record only, and each shop's page needs its own longest
 * and its count: every round's record is read once, its shop kept while
 * it stays open (dash_open_fields_read).
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
		    "ZRANGE %s 0 %d WITHSCORES", key.s, DASH_OPEN_MAX - 1) == -1)
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
void
dash_state_day(struct dash *d, int64_t now)
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

/*
 * The figures of the day that started, read afresh from an hour before
 * it: the engine keeps every agent it was told of until it goes, and the
 * page shows one day (review: 1 500 new agents' names a batch grew the
 * dashboard 20 MB each, for good). Between polls, so no log read is in
 * flight; on ENOMEM the old one stays, and the next poll tries again.
 */
static void
dash_figs_renew(struct dash *d)
{
	struct sla_config	 scfg;
	struct sla		*figs;
	int			 b;

	sla_config_from(&scfg, &d->cfg->sla);
	if ((figs = sla_new(&scfg, NULL, NULL, NULL)) == NULL ||
	    sla_set_policies(figs, d->pol, d->npol) == -1) {
		sla_free(figs);
		log_warnx("dash_figs_renew: out of memory, yesterday's agents kept");
		return;
	}
	log_info("dash_figs_renew: the day's figures read afresh, %zu agents' "
	    "of the day before let go", sla_agent_entries(d->figs));
	sla_free(d->figs);
	d->figs = figs;
	d->figs_day = d->day_start;
	for (b = 0; b < DASH_BUCKETS; b++)
		d->log_id[b][0] = '\0';
}

void
dash_state_on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct dash	*d = arg;

	(void)fd;
	(void)what;
	dash_state_day(d, util_wall_ms());
	if (d->polling || !rconn_up(d->state))
		return;
	if (d->figs_day != d->day_start)
		dash_figs_renew(d);
	dash_keys_clear(d);	/* what a poll cut short by Redis left */
	d->polling = 1;
	d->scan = DASH_SCAN_WAITING;
	dash_open_read(d);
}

void
dash_state_status(struct dash *d)
{
	int	up = rconn_up(d->stream) && rconn_up(d->state);

	if (up != d->redis_up) {
		/* conftest.py waits for "dash_status: redis up" */
		log_info("dash_status: redis %s", up ? "up (stream and state)" :
		    "away: the pages are told");
		d->redis_up = up;
		d->status_v++;
		dash_feed_notify(d);
	}
}

void
dash_state_on_conn(void *arg, int up, int lost)
{
	struct dash	*d = arg;

	(void)lost;
	if (!up)
		d->polling = 0;
	else {
		dash_audit_on_read(d);
		dash_state_on_poll(-1, 0, d);
	}
	dash_state_status(d);
}

/* What a poll holds, at shutdown. */
void
dash_state_clear(struct dash *d)
{
	dash_keys_clear(d);
	free(d->keys);
	d->keys = NULL;
	dash_open_clear(d);
	free(d->open);
	d->open = NULL;
	dash_open_free(d->seen, d->nseen);
	free(d->seen);
	d->seen = NULL;
	d->nseen = 0;
	sbuf_free(&d->opendoc);
	sbuf_free(&d->figsdoc);
	sbuf_free(&d->waiting);
	sbuf_free(&d->waiting_all);
	sbuf_free(&d->agents);
	json_decref(d->waiting_doc);
	d->waiting_doc = NULL;
}

json_t *
dash_waiting_rounds(struct dash *d)
{
	if (d->waiting_doc == NULL || d->waiting_doc_v != d->waiting_v) {
		json_decref(d->waiting_doc);
		d->waiting_doc = d->waiting_all.len > 0 ?
		    json_loadb(d->waiting_all.s, d->waiting_all.len,
		    JSON_ALLOW_NUL, NULL) : NULL;
		d->waiting_doc_v = d->waiting_v;
	}
	return json_object_get(d->waiting_doc, "rounds");
}
