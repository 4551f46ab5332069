/* report: `chatmon report`'s figures over days: one day's aggregate (per agent: the SLA sums, the hours, rule hits, false positives, the worst waits), days merged, and the JSON, CSV and HTML a manager gets (pure). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chatmon/alertline.h"
#include "chatmon/jsonw.h"
#include "chatmon/report.h"
#include "chatmon/sla.h"
#include "chatmon/state.h"

#define REPORT_HIST_MAX	86400	/* as the engine's: a day of seconds at most */

struct report_hit {			/* one category's rule hits */
	char		*cat;
	uint64_t	 alerts;	/* alerts whose strongest rule is of it */
	uint64_t	 act[3];	/* rules of it hit: block, warn, flag */
	uint64_t	 fps;		/* its alerts marked false positive */
};

struct report_slot {			/* one of the worst waits */
	char		*conv;
	size_t		 convlen;
	int64_t		 opened, at;
	uint64_t	 waited_ms;
	int		 answered;
};

/*
 * An agent's response times, a bin per second that has rounds, by second:
 * most agents' rounds fall on a few dozen seconds, and a dense array of
 * every second to the cap (86 401 for a cap of a day) per agent, set, day
 * and copy took gigabytes for tens of thousands of agents. The seconds are
 * those of the agent's set (the last its cap and above), so the figures
 * are the engine's, p90 to the second.
 */
struct report_bin {
	uint32_t	sec;
	uint32_t	n;
};

struct report_hist {
	struct report_bin	*v;
	size_t			 n, cap;
};

struct report_agent {
	char			*id;
	struct sla_sums		 sums;		/* no hist: that is in bins */
	struct report_hist	 bins;
	uint32_t		 hour_rounds[24];
	uint64_t		 hour_sum_ms[24];
	uint64_t		 alerts, blocks, fps;
	struct report_hit	*hits;		/* by category name */
	size_t			 nhits;
	struct report_slot	 worst[REPORT_WORST];	/* longest first */
	size_t			 nworst;
};

/*
 * Agents under one cap and rate: the report's (each agent over every
 * shop), a shop's (each agent in that shop) or a queue's. Each keeps its
 * own histogram length, so a shop's p90 and rates are read under its own
 * sla.cap and sla.rate.
 */
struct report_set {
	uint64_t		 cap_ms, rate_ms;
	size_t			 nhist;
	struct report_agent	**agents;	/* by id */
	size_t			 nagents, capagents;
};

struct report_queue {
	char			*id;
	struct report_set	 set;
};

struct report_shop {
	char			*id;
	struct report_set	 set;		/* every conversation of the shop, queue or not */
	struct report_queue	*queues;	/* by id */
	size_t			 nqueues;
};

struct report_day {			/* one row of the days (a range's) */
	char			 day[16];
	struct sla_figures	 f;
	uint64_t		 within_fast, alerts, blocks, fps;
	int			 partial;
};

struct report {
	uint64_t		 def_cap_ms, def_rate_ms;	/* sla.cap, sla.rate */
	struct report_set	 all;
	struct report_shop	*shops;		/* by id; none: the report as before shops */
	size_t			 nshops;
	struct sla_policies	 pol;		/* the shops' own settings */
	struct report_day	*days;
	size_t			 ndays, capdays;
	char			*only_shop;	/* report_keep_shop's, or NULL */
	char			*only_queue;
};

static const char *const report_actions[3] = { "block", "warn", "flag" };

static void
report_set_init(struct report_set *s, uint64_t cap_ms, uint64_t rate_ms)
{
	uint64_t	sec = cap_ms / 1000 + (cap_ms % 1000 != 0);

	memset(s, 0, sizeof(*s));
	s->cap_ms = cap_ms;
	s->rate_ms = rate_ms;
	s->nhist = (size_t)(sec < REPORT_HIST_MAX ? sec : REPORT_HIST_MAX) + 1;
}

struct report *
report_new(uint64_t cap_ms, uint64_t rate_ms)
{
	struct report	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->def_cap_ms = cap_ms;
	r->def_rate_ms = rate_ms;
	report_set_init(&r->all, cap_ms, rate_ms);
	return r;
}

static void
report_agent_free(struct report_agent *a)
{
	size_t	i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nhits; i++)
		free(a->hits[i].cat);
	free(a->hits);
	for (i = 0; i < a->nworst; i++)
		free(a->worst[i].conv);
	free(a->bins.v);
	free(a->id);
	free(a);
}

static void
report_set_free(struct report_set *s)
{
	size_t	i;

	for (i = 0; i < s->nagents; i++)
		report_agent_free(s->agents[i]);
	free(s->agents);
	s->agents = NULL;
	s->nagents = s->capagents = 0;
}

static void
report_shop_free(struct report_shop *sh)
{
	size_t	i;

	for (i = 0; i < sh->nqueues; i++) {
		report_set_free(&sh->queues[i].set);
		free(sh->queues[i].id);
	}
	free(sh->queues);
	report_set_free(&sh->set);
	free(sh->id);
}

void
report_free(struct report *r)
{
	size_t	i;

	if (r == NULL)
		return;
	report_set_free(&r->all);
	for (i = 0; i < r->nshops; i++)
		report_shop_free(&r->shops[i]);
	free(r->shops);
	sla_policies_clear(&r->pol);
	free(r->days);
	free(r->only_shop);
	free(r->only_queue);
	free(r);
}

int
report_set_policies(struct report *r, const struct sla_policy *v, size_t n)
{
	return sla_policies_set(&r->pol, v, n);
}

const struct sla_config *
report_policy(const struct report *r, const char *shop, const char *queue)
{
	/* the queue's own, else the shop's: config_sla_for's order */
	return sla_policy_find(r->pol.v, r->pol.n, shop, queue);
}

/* The agent id of s (found, or added in its place); NULL on ENOMEM. */
static struct report_agent *
report_agent(struct report_set *s, const char *id)
{
	struct report_agent	*a, **na;
	size_t			 lo = 0, hi = s->nagents, mid;
	int			 c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(s->agents[mid]->id, id)) == 0)
			return s->agents[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (s->nagents == s->capagents) {
		if ((na = reallocarray(s->agents, s->capagents ? s->capagents * 2 : 16,
		    sizeof(*na))) == NULL)
			return NULL;
		s->agents = na;
		s->capagents = s->capagents ? s->capagents * 2 : 16;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	if ((a->id = strdup(id)) == NULL) {
		report_agent_free(a);
		return NULL;
	}
	memmove(s->agents + lo + 1, s->agents + lo, (s->nagents - lo) * sizeof(*s->agents));
	s->agents[lo] = a;
	s->nagents++;
	return a;
}

/*
 * The shop id (found, or added under its settings: like's, when it is a
 * shop's of another report being merged, else r's policy); NULL on ENOMEM.
 */
static struct report_shop *
report_shop(struct report *r, const char *id, const struct report_set *like)
{
	const struct sla_config	*c = report_policy(r, id, "");
	struct report_shop	*ns;
	size_t			 i;
	int			 cmp = 1;

	for (i = 0; i < r->nshops && (cmp = strcmp(r->shops[i].id, id)) < 0; i++)
		;
	if (i < r->nshops && cmp == 0)
		return &r->shops[i];
	if ((ns = reallocarray(r->shops, r->nshops + 1, sizeof(*ns))) == NULL)
		return NULL;
	r->shops = ns;
	memmove(ns + i + 1, ns + i, (r->nshops - i) * sizeof(*ns));
	memset(&ns[i], 0, sizeof(ns[i]));
	if (like != NULL)
		report_set_init(&ns[i].set, like->cap_ms, like->rate_ms);
	else
		report_set_init(&ns[i].set, c != NULL ? c->cap_ms : r->def_cap_ms,
		    c != NULL ? c->rate_ms : r->def_rate_ms);
	if ((ns[i].id = strdup(id)) == NULL) {
		memmove(ns + i, ns + i + 1, (r->nshops - i) * sizeof(*ns));
		return NULL;
	}
	r->nshops++;
	return &ns[i];
}

/* The queue id of shop sh (found, or added under its settings, or like's as report_shop's); NULL on ENOMEM. */
static struct report_queue *
report_queue(const struct report *r, struct report_shop *sh, const char *id,
    const struct report_set *like)
{
	const struct sla_config	*c = report_policy(r, sh->id, id);
	struct report_queue	*nq;
	size_t			 i;
	int			 cmp = 1;

	for (i = 0; i < sh->nqueues && (cmp = strcmp(sh->queues[i].id, id)) < 0; i++)
		;
	if (i < sh->nqueues && cmp == 0)
		return &sh->queues[i];
	if ((nq = reallocarray(sh->queues, sh->nqueues + 1, sizeof(*nq))) == NULL)
		return NULL;
	sh->queues = nq;
	memmove(nq + i + 1, nq + i, (sh->nqueues - i) * sizeof(*nq));
	memset(&nq[i], 0, sizeof(nq[i]));
	if (like != NULL)
		report_set_init(&nq[i].set, like->cap_ms, like->rate_ms);
	else
		report_set_init(&nq[i].set, c != NULL ? c->cap_ms : r->def_cap_ms,
		    c != NULL ? c->rate_ms : r->def_rate_ms);
	if ((nq[i].id = strdup(id)) == NULL) {
		memmove(nq + i, nq + i + 1, (sh->nqueues - i) * sizeof(*nq));
		return NULL;
	}
	sh->nqueues++;
	return &nq[i];
}

/*
 * The sets a thing of (shop, queue) is counted in: the report's, and
 * the shop's and the queue's when it has them (a queue without a shop is
 * none). The number of them, or -1 on ENOMEM.
 */
static int
report_sets(struct report *r, const char *shop, const char *queue,
    struct report_set *v[3])
{
	struct report_shop	*sh;
	struct report_queue	*q;
	int			 n = 0;

	v[n++] = &r->all;
	if (shop == NULL || *shop == '\0')
		return n;
	if ((sh = report_shop(r, shop, NULL)) == NULL)
		return -1;
	v[n++] = &sh->set;
	if (queue == NULL || *queue == '\0')
		return n;
	if ((q = report_queue(r, sh, queue, NULL)) == NULL)
		return -1;
	v[n++] = &q->set;
	return n;
}

/* The category's counters (found, or added); NULL on ENOMEM. */
static struct report_hit *
report_hit(struct report_agent *a, const char *cat)
{
	struct report_hit	*nh;
	size_t			 i;
	int			 c = 1;

	for (i = 0; i < a->nhits && (c = strcmp(a->hits[i].cat, cat)) < 0; i++)
		;
	if (i < a->nhits && c == 0)
		return &a->hits[i];
	if ((nh = reallocarray(a->hits, a->nhits + 1, sizeof(*nh))) == NULL)
		return NULL;
	a->hits = nh;
	memmove(nh + i + 1, nh + i, (a->nhits - i) * sizeof(*nh));
	memset(&nh[i], 0, sizeof(nh[i]));
	if ((nh[i].cat = strdup(cat)) == NULL) {
		memmove(nh + i, nh + i + 1, (a->nhits - i) * sizeof(*nh));
		return NULL;
	}
	a->nhits++;
	return &nh[i];
}

/* n rounds at second sec of s's histogram (the last: the cap and above); -1 on ENOMEM. */
static int
report_hist_add(const struct report_set *s, struct report_hist *h,
    uint64_t sec, uint32_t n)
{
	struct report_bin	*nv;
	size_t			 lo = 0, hi = h->n, mid, cap;

	if (n == 0)
		return 0;
	if (sec > s->nhist - 1)
		sec = s->nhist - 1;
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (h->v[mid].sec == sec) {
			h->v[mid].n += n;
			return 0;
		}
		if (h->v[mid].sec < sec)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (h->n == h->cap) {
		cap = h->cap ? h->cap * 2 : 4;
		if ((nv = reallocarray(h->v, cap, sizeof(*nv))) == NULL)
			return -1;
		h->v = nv;
		h->cap = cap;
	}
	memmove(h->v + lo + 1, h->v + lo, (h->n - lo) * sizeof(*h->v));
	h->v[lo].sec = (uint32_t)sec;
	h->v[lo].n = n;
	h->n++;
	return 0;
}

/* Every sum but the histogram. */
static void
report_sums_add(struct sla_sums *u, const struct sla_sums *v)
{
	u->rounds += v->rounds;
	u->answered += v->answered;
	u->sum_ms += v->sum_ms;
	u->first_rounds += v->first_rounds;
	u->first_sum_ms += v->first_sum_ms;
	u->breaches += v->breaches;
	u->escalations += v->escalations;
	u->within_rate += v->within_rate;
	u->rate_base += v->rate_base;
}

int
report_add_shop_sums(struct report *r, const struct sla_account *w,
    const struct sla_day *d)
{
	struct report_set	*v[3];
	struct report_agent	*a;
	size_t			 h;
	int			 i, n;

	/* an agent's total is the sum of its shops' */
	if ((n = report_sets(r, w->shop, w->queue, v)) == -1)
		return -1;
	for (i = 0; i < n; i++) {
		if ((a = report_agent(v[i], w->agent)) == NULL)
			return -1;
		report_sums_add(&a->sums, d->sums);
		for (h = 0; h < d->sums->nhist; h++)
			if (report_hist_add(v[i], &a->bins, sla_hist_seconds(h),
			    d->sums->hist[h]) == -1)
				return -1;
		for (h = 0; h < 24; h++) {
			a->hour_rounds[h] += d->hour_rounds[h];
			a->hour_sum_ms[h] += d->hour_sum_ms[h];
		}
	}
	return 0;
}

int
report_add_sums(struct report *r, const char *agent, const struct sla_day *d)
{
	struct sla_account	w = { agent, "", "" };

	return report_add_shop_sums(r, &w, d);
}

/* Longer first; then the earlier opened. */
static int
report_slot_before(const struct report_slot *x, uint64_t waited, int64_t opened)
{
	return x->waited_ms > waited || (x->waited_ms == waited && x->opened <= opened);
}

/*
 * w into a's worst waits when it is among them; conv is copied, a byte
 * that is not UTF-8 as '?': the logs are anyone's to write, and JSON holds
 * UTF-8 only (found by review: a stored day with such an id failed every
 * later report, "out of memory", and today's lost the row).
 */
static int
report_slot_put(struct report_agent *a, const char *conv, size_t len,
    int64_t opened, int64_t at, uint64_t waited, int answered)
{
	struct report_slot	 s;
	size_t			 i, k, n;

	for (i = 0; i < a->nworst && report_slot_before(&a->worst[i], waited,
	    opened); i++)
		;
	if (i == REPORT_WORST)
		return 0;
	if ((s.conv = malloc(len + 1)) == NULL)
		return -1;
	memcpy(s.conv, conv, len);
	for (k = 0; k < len; k += n ? n : 1)
		if ((n = (unsigned char)conv[k] < 0x80 ? 1 : util_utf8_seq(
		    (const unsigned char *)conv + k,
		    (const unsigned char *)conv + len)) == 0)
			s.conv[k] = '?';
	s.conv[len] = '\0';
	s.convlen = len;
	s.opened = opened;
	s.at = at;
	s.waited_ms = waited;
	s.answered = answered;
	if (a->nworst == REPORT_WORST)
		free(a->worst[--a->nworst].conv);
	memmove(&a->worst[i + 1], &a->worst[i], (a->nworst - i) * sizeof(s));
	a->worst[i] = s;
	a->nworst++;
	return 0;
}

int
report_add_wait(struct report *r, const struct sla_round *w)
{
	struct report_set	*v[3];
	struct report_agent	*a;
	int			 i, n;

	/* a shop's worst waits too: --shop keeps them */
	if ((n = report_sets(r, w->shop, w->queue, v)) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if ((a = report_agent(v[i], w->agent)) == NULL ||
		    report_slot_put(a, w->conversation, w->conversation_len,
		    w->opened, w->at, w->waited_ms, w->answered) == -1)
			return -1;
	return 0;
}

static int
report_action(const char *s)
{
	size_t	i;

	for (i = 0; s != NULL && i < 3; i++)
		if (strcmp(s, report_actions[i]) == 0)
			return (int)i;
	return -1;
}

/* One rule hit (report_add_alert's) counted c times into agent of s. */
static int
report_alert_into(struct report_set *s, const json_t *al, const char *agent,
    json_int_t c, int fp)
{
	struct report_agent	*a;
	struct report_hit	*h;
	const json_t		*hits, *e;
	const char		*cat;
	size_t			 i;
	int			 act;

	if ((cat = json_string_value(json_object_get(al, "category"))) == NULL)
		cat = "";
	if ((a = report_agent(s, agent)) == NULL || (h = report_hit(a, cat)) == NULL)
		return -1;
	if (fp) {
		a->fps++;
		h->fps++;
		return 0;
	}
	a->alerts += (uint64_t)c;
	h->alerts += (uint64_t)c;
	if (report_action(json_string_value(json_object_get(al, "action"))) == 0)
		a->blocks += (uint64_t)c;
	/* v1: the top level is the one hit */
	if (!json_is_array(hits = json_object_get(al, "hits")) || json_array_size(hits) == 0)
		hits = NULL;
	for (i = 0; i < (hits != NULL ? json_array_size(hits) : 1); i++) {
		e = hits != NULL ? json_array_get(hits, i) : al;
		if ((cat = json_string_value(json_object_get(e, "category"))) == NULL ||
		    (act = report_action(json_string_value(json_object_get(e,
		    "action")))) == -1)
			continue;
		if ((h = report_hit(a, cat)) == NULL)
			return -1;
		h->act[act] += (uint64_t)c;
	}
	return 0;
}

int
report_add_alert(struct report *r, const json_t *al, int fp)
{
	struct report_set	*v[3];
	const char		*type, *agent;
	json_int_t		 c = 1;
	int			 i, n;

	type = json_string_value(json_object_get(al, "type"));
	if (type == NULL || strcmp(type, "rule.hit") != 0)
		return 0;
	if ((agent = json_string_value(json_object_get(al, "agent"))) == NULL)
		agent = "";
	if (json_integer_value(json_object_get(al, "count")) > 1)
		c = json_integer_value(json_object_get(al, "count"));
	/* docs/alerts.md: "shop" and "queue" only when the conversation has them */
	if ((n = report_sets(r, json_string_value(json_object_get(al, "shop")),
	    json_string_value(json_object_get(al, "queue")), v)) == -1)
		return -1;
	for (i = 0; i < n; i++)
		if (report_alert_into(v[i], al, agent, c, fp) == -1)
			return -1;
	return 0;
}

static void
report_set_keep_agent(struct report_set *s, const char *agent)
{
	size_t	i, n = 0;

	for (i = 0; i < s->nagents; i++) {
		if (strcmp(s->agents[i]->id, agent) == 0)
			s->agents[n++] = s->agents[i];
		else
			report_agent_free(s->agents[i]);
	}
	s->nagents = n;
}

void
report_keep_agent(struct report *r, const char *agent)
{
	size_t	i, k;

	report_set_keep_agent(&r->all, agent);
	for (i = 0; i < r->nshops; i++) {
		report_set_keep_agent(&r->shops[i].set, agent);
		for (k = 0; k < r->shops[i].nqueues; k++)
			report_set_keep_agent(&r->shops[i].queues[k].set, agent);
	}
}

/* Every agent of src added into dst's (made as need be). 0, or -1 on ENOMEM. */
static int
report_set_merge(struct report_set *dst, const struct report_set *src)
{
	struct report_agent	*a, *b;
	struct report_hit	*h;
	size_t			 i, k;

	for (i = 0; i < src->nagents; i++) {
		b = src->agents[i];
		if ((a = report_agent(dst, b->id)) == NULL)
			return -1;
		report_sums_add(&a->sums, &b->sums);
		for (k = 0; k < b->bins.n; k++)
			if (report_hist_add(dst, &a->bins, b->bins.v[k].sec,
			    b->bins.v[k].n) == -1)
				return -1;
		for (k = 0; k < 24; k++) {
			a->hour_rounds[k] += b->hour_rounds[k];
			a->hour_sum_ms[k] += b->hour_sum_ms[k];
		}
		a->alerts += b->alerts;
		a->blocks += b->blocks;
		a->fps += b->fps;
		for (k = 0; k < b->nhits; k++) {
			if ((h = report_hit(a, b->hits[k].cat)) == NULL)
				return -1;
			h->alerts += b->hits[k].alerts;
			h->act[0] += b->hits[k].act[0];
			h->act[1] += b->hits[k].act[1];
			h->act[2] += b->hits[k].act[2];
			h->fps += b->hits[k].fps;
		}
		for (k = 0; k < b->nworst; k++)
			if (report_slot_put(a, b->worst[k].conv, b->worst[k].convlen,
			    b->worst[k].opened, b->worst[k].at, b->worst[k].waited_ms,
			    b->worst[k].answered) == -1)
				return -1;
	}
	return 0;
}

/* A copy of src under its own cap and rate into *dst (a fresh set). 0, or -1 on ENOMEM (*dst empty). */
static int
report_set_copy(struct report_set *dst, const struct report_set *src)
{
	report_set_init(dst, src->cap_ms, src->rate_ms);
	if (report_set_merge(dst, src) == -1) {
		report_set_free(dst);
		return -1;
	}
	return 0;
}

int
report_keep_shop(struct report *r, const char *shop, const char *queue)
{
	struct report_shop	*sh;
	struct report_queue	*q = NULL;
	struct report_set	 all, qs;
	size_t			 i;
	char			*os = NULL, *oq = NULL;	/* what the writers say */

	if ((os = strdup(shop)) == NULL ||
	    (queue != NULL && (oq = strdup(queue)) == NULL) ||
	    (sh = report_shop(r, shop, NULL)) == NULL ||
	    (queue != NULL && (q = report_queue(r, sh, queue, NULL)) == NULL))
		goto err;
	if (report_set_copy(&all, q != NULL ? &q->set : &sh->set) == -1)
		goto err;
	if (q != NULL) {
		/* the shop's own figures are the queue's: the rest is not asked for */
		if (report_set_copy(&qs, &q->set) == -1) {
			report_set_free(&all);
			goto err;
		}
		report_set_free(&sh->set);
		sh->set = qs;
		for (i = 0; i < sh->nqueues; i++)
			if (&sh->queues[i] != q) {
				report_set_free(&sh->queues[i].set);
				free(sh->queues[i].id);
			}
		sh->queues[0] = *q;
		sh->nqueues = 1;
	}
	/* sh moves to the front: the others go */
	for (i = 0; i < r->nshops; i++)
		if (&r->shops[i] != sh)
			report_shop_free(&r->shops[i]);
	r->shops[0] = *sh;
	r->nshops = 1;
	report_set_free(&r->all);
	r->all = all;
	free(r->only_shop);
	free(r->only_queue);
	r->only_shop = os;
	r->only_queue = oq;
	return 0;
err:
	free(os);
	free(oq);
	return -1;
}

/* The engine's histogram slots of a set's seconds (report_team's hist). */
static size_t
report_team_slots(const struct report_set *s)
{
	return sla_hist_slot(s->nhist - 1) + 1;
}

/*
 * The team: every agent's sums of s added (hist the caller's,
 * report_team_slots long: by the engine's slots, as sla_sums_figures reads
 * them).
 */
static void
report_team(const struct report_set *s, struct sla_sums *u, uint32_t *hist,
    uint32_t hour_rounds[24], uint64_t hour_sum_ms[24], uint64_t *alerts,
    uint64_t *blocks, uint64_t *fps)
{
	const struct report_hist	*b;
	size_t				 i, h, k;

	memset(u, 0, sizeof(*u));
	memset(hist, 0, report_team_slots(s) * sizeof(*hist));
	u->hist = hist;
	u->nhist = report_team_slots(s);
	if (hour_rounds != NULL) {
		memset(hour_rounds, 0, 24 * sizeof(*hour_rounds));
		memset(hour_sum_ms, 0, 24 * sizeof(*hour_sum_ms));
	}
	*alerts = *blocks = *fps = 0;
	for (i = 0; i < s->nagents; i++) {
		report_sums_add(u, &s->agents[i]->sums);
		b = &s->agents[i]->bins;
		for (k = 0; k < b->n; k++)
			hist[sla_hist_slot(b->v[k].sec)] += b->v[k].n;	/* of s: below nhist */
		*alerts += s->agents[i]->alerts;
		*blocks += s->agents[i]->blocks;
		*fps += s->agents[i]->fps;
		for (h = 0; hour_rounds != NULL && h < 24; h++) {
			hour_rounds[h] += s->agents[i]->hour_rounds[h];
			hour_sum_ms[h] += s->agents[i]->hour_sum_ms[h];
		}
	}
}

/*
 * The rounds answered within REPORT_FAST_MS, from the histogram the
 * figures keep: a round's second is its time rounded up, so "within 30 s"
 * is exactly the rounds of seconds 0 to 30 (a slot a second there);
 * unanswered rounds sit at the cap (600 s), above them.
 */
static uint64_t
report_within_fast(const struct sla_sums *u)
{
	uint64_t	n = 0;
	size_t		s;

	for (s = 0; s < u->nhist && s <= REPORT_FAST_MS / 1000; s++)
		n += u->hist[s];
	return n;
}

/* The same of an agent's bins. */
static uint64_t
report_hist_within_fast(const struct report_hist *h)
{
	uint64_t	n = 0;
	size_t		i;

	for (i = 0; i < h->n && h->v[i].sec <= REPORT_FAST_MS / 1000; i++)
		n += h->v[i].n;
	return n;
}

/*
 * An agent's figures: sla_sums_figures' of its sums, p90 by the same
 * rule read from its bins (the seconds between them hold no round, so
 * the second the count reaches 90 % is a bin's; none: the set's last).
 */
static void
report_agent_figures(const struct report_set *s, const struct report_agent *a,
    struct sla_figures *f)
{
	uint64_t	cum = 0, v = s->nhist;
	size_t		i;

	sla_sums_figures(&a->sums, s->cap_ms, f);
	if (a->sums.rounds == 0)
		return;
	for (i = 0; i < a->bins.n; i++) {
		cum += a->bins.v[i].n;
		if (cum * 10 >= a->sums.rounds * 9) {
			v = a->bins.v[i].sec;
			break;
		}
	}
	f->p90_ms = v * 1000 < s->cap_ms ? v * 1000 : s->cap_ms;
}

int
report_merge(struct report *range, const struct report *day,
    const char *dayname, int partial)
{
	struct report_shop	*sh;
	struct report_queue	*q;
	struct report_day	*nd, *row;
	struct sla_sums		 team;
	uint32_t		*hist;
	size_t			 i, k;

	if (report_set_merge(&range->all, &day->all) == -1)
		return -1;
	for (i = 0; i < day->nshops; i++) {
		/* a shop new to the range keeps the day's settings */
		if ((sh = report_shop(range, day->shops[i].id,
		    &day->shops[i].set)) == NULL ||
		    report_set_merge(&sh->set, &day->shops[i].set) == -1)
			return -1;
		for (k = 0; k < day->shops[i].nqueues; k++)
			if ((q = report_queue(range, sh, day->shops[i].queues[k].id,
			    &day->shops[i].queues[k].set)) == NULL ||
			    report_set_merge(&q->set,
			    &day->shops[i].queues[k].set) == -1)
				return -1;
	}
	if (range->ndays == range->capdays) {
		if ((nd = reallocarray(range->days, range->capdays ? range->capdays * 2 :
		    8, sizeof(*nd))) == NULL)
			return -1;
		range->days = nd;
		range->capdays = range->capdays ? range->capdays * 2 : 8;
	}
	if ((hist = calloc(report_team_slots(&day->all), sizeof(*hist))) == NULL)
		return -1;
	row = &range->days[range->ndays++];
	memset(row, 0, sizeof(*row));
	snprintf(row->day, sizeof(row->day), "%s", dayname);
	report_team(&day->all, &team, hist, NULL, NULL, &row->alerts, &row->blocks,
	    &row->fps);
	sla_sums_figures(&team, day->all.cap_ms, &row->f);
	row->within_fast = report_within_fast(&team);
	row->partial = partial;
	free(hist);
	return 0;
}

/* --- the stored document ---------------------------------------------------- */

static json_t *
report_sums_json(const struct report_agent *a)
{
	struct sla_day	 day = { &a->sums, a->hour_rounds, a->hour_sum_ms };
	json_t		*hits, *worst, *hist, *o;
	size_t		 i;

	/* the sums in the form of an instance's agents document (docs/dashboard.md) */
	o = state_day_json(&day);
	hits = json_object();
	worst = json_array();
	if (o == NULL || hits == NULL || worst == NULL)
		goto err;
	/* its "hist", [second, rounds] of the seconds with rounds, from the bins */
	hist = json_object_get(o, "hist");
	for (i = 0; i < a->bins.n; i++)
		if (a->bins.v[i].n > 0 && json_array_append_new(hist, json_pack("[I, I]",
		    (json_int_t)a->bins.v[i].sec, (json_int_t)a->bins.v[i].n)) == -1)
			goto err;
	for (i = 0; i < a->nhits; i++)
		if (json_object_set_new(hits, a->hits[i].cat, json_pack(
		    "{s:I, s:I, s:I, s:I, s:I}", "alerts", (json_int_t)a->hits[i].alerts,
		    "block", (json_int_t)a->hits[i].act[0],
		    "warn", (json_int_t)a->hits[i].act[1],
		    "flag", (json_int_t)a->hits[i].act[2],
		    "false_positives", (json_int_t)a->hits[i].fps)) == -1)
			goto err;
	for (i = 0; i < a->nworst; i++)
		if (json_array_append_new(worst, json_pack("{s:s%, s:I, s:I, s:I, s:b}",
		    "conversation", a->worst[i].conv, a->worst[i].convlen,
		    "opened", (json_int_t)a->worst[i].opened,
		    "at", (json_int_t)a->worst[i].at,
		    "waited_ms", (json_int_t)a->worst[i].waited_ms,
		    "answered", a->worst[i].answered)) == -1)
			goto err;
	if (json_object_set_new(o, "alerts", json_integer((json_int_t)a->alerts)) == -1 ||
	    json_object_set_new(o, "blocks", json_integer((json_int_t)a->blocks)) == -1 ||
	    json_object_set_new(o, "false_positives",
	    json_integer((json_int_t)a->fps)) == -1)
		goto err;
	json_object_set_new(o, "hits", hits);
	json_object_set_new(o, "worst", worst);
	return o;
err:
	json_decref(o);
	json_decref(hits);
	json_decref(worst);
	return NULL;
}

/* The agents of s as the stored document's "agents"; NULL on ENOMEM. */
static json_t *
report_set_dump(const struct report_set *s)
{
	json_t	*agents, *a;
	size_t	 i;

	if ((agents = json_object()) == NULL)
		return NULL;
	for (i = 0; i < s->nagents; i++) {
		if ((a = report_sums_json(s->agents[i])) == NULL) {
			json_decref(agents);
			return NULL;
		}
		/* an agent id that is not UTF-8 cannot be a key: it is left out */
		json_object_set_new(agents, s->agents[i]->id, a);
	}
	return agents;
}

/* The stored "shops": {SHOP: {cap_ms, rate_ms, agents, queues: {Q: {cap_ms, rate_ms, agents}}}}; NULL on ENOMEM. */
static json_t *
report_shops_dump(const struct report *r)
{
	const struct report_shop	*sh;
	json_t				*shops, *queues = NULL;
	size_t				 i, k;

	if ((shops = json_object()) == NULL)
		return NULL;
	for (i = 0; i < r->nshops; i++) {
		sh = &r->shops[i];
		if ((queues = json_object()) == NULL)
			goto err;
		for (k = 0; k < sh->nqueues; k++)
			if (json_object_set_new(queues, sh->queues[k].id, json_pack(
			    "{s:I, s:I, s:o}", "cap_ms", (json_int_t)sh->queues[k].set.cap_ms,
			    "rate_ms", (json_int_t)sh->queues[k].set.rate_ms,
			    "agents", report_set_dump(&sh->queues[k].set))) == -1)
				goto err;
		/* a shop id that is not UTF-8 cannot be a key: it is left out, as an agent's */
		json_object_set_new(shops, sh->id, json_pack("{s:I, s:I, s:o, s:o}",
		    "cap_ms", (json_int_t)sh->set.cap_ms, "rate_ms",
		    (json_int_t)sh->set.rate_ms, "agents", report_set_dump(&sh->set),
		    "queues", queues));
		queues = NULL;
	}
	return shops;
err:
	json_decref(queues);
	json_decref(shops);
	return NULL;
}

int
report_dump(struct sbuf *out, const struct report *r, const char *day,
    int32_t off_min, int partial)
{
	json_t	*agents, *shops = NULL;

	if ((agents = report_set_dump(&r->all)) == NULL ||
	    (r->nshops > 0 && (shops = report_shops_dump(r)) == NULL)) {
		json_decref(agents);
		return -1;
	}
	/* "shops" only when some conversation had one: the document as before */
	return jsonw_dump(out, json_pack("{s:i, s:s, s:i, s:I, s:I, s:b, s:o, s:o*}",
	    "v", 1, "day", day, "tz_offset_min", (int)off_min,
	    "cap_ms", (json_int_t)r->all.cap_ms, "rate_ms", (json_int_t)r->all.rate_ms,
	    "partial", partial, "agents", agents, "shops", shops));
}

static uint64_t
report_uint(const json_t *o, const char *key)
{
	const json_t	*v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0 ?
	    (uint64_t)json_integer_value(v) : 0;
}

static int
report_load_agent(struct report_set *s, const char *id, const json_t *o)
{
	struct report_agent	*a;
	struct report_hit	*h;
	const json_t		*e, *v;
	const char		*cat, *conv;
	size_t			 i;

	if ((a = report_agent(s, id)) == NULL)
		return -1;
	state_day_add(o, &a->sums, a->hour_rounds, a->hour_sum_ms);
	/* "hist" as state_day_add reads it, into the bins */
	json_array_foreach(json_object_get(o, "hist"), i, e) {
		if (json_array_size(e) != 2 ||
		    json_integer_value(json_array_get(e, 0)) < 0 ||
		    json_integer_value(json_array_get(e, 1)) < 0)
			continue;
		if (report_hist_add(s, &a->bins,
		    (uint64_t)json_integer_value(json_array_get(e, 0)),
		    (uint32_t)json_integer_value(json_array_get(e, 1))) == -1)
			return -1;
	}
	a->alerts += report_uint(o, "alerts");
	a->blocks += report_uint(o, "blocks");
	a->fps += report_uint(o, "false_positives");
	json_object_foreach((json_t *)json_object_get(o, "hits"), cat, v) {
		if (!json_is_object(v))
			continue;
		if ((h = report_hit(a, cat)) == NULL)
			return -1;
		h->alerts += report_uint(v, "alerts");
		h->act[0] += report_uint(v, "block");
		h->act[1] += report_uint(v, "warn");
		h->act[2] += report_uint(v, "flag");
		h->fps += report_uint(v, "false_positives");
	}
	json_array_foreach(json_object_get(o, "worst"), i, e) {
		if ((conv = json_string_value(json_object_get(e, "conversation"))) == NULL)
			continue;
		/* a stored day is Redis's: anyone may have written it */
		if (report_slot_put(a, conv, json_string_length(json_object_get(e,
		    "conversation")), sla_clamp(json_integer_value(json_object_get(e,
		    "opened"))), sla_clamp(json_integer_value(json_object_get(e, "at"))),
		    report_uint(e, "waited_ms"),
		    json_is_true(json_object_get(e, "answered"))) == -1)
			return -1;
	}
	return 0;
}

/* A stored "agents" object into s. 0, or -1 on ENOMEM. */
static int
report_load_set(struct report_set *s, const json_t *agents)
{
	const char	*id;
	json_t		*a;

	json_object_foreach((json_t *)agents, id, a)
		if (json_is_object(a) && report_load_agent(s, id, a) == -1)
			return -1;
	return 0;
}

/*
 * A stored "shops" object (absent in days stored before shops: nothing)
 * into r, each shop and queue under r's settings for it now, as the top
 * level is under the caller's. 0, or -1 on ENOMEM.
 */
static int
report_load_shops(struct report *r, const json_t *shops)
{
	struct report_shop	*sh;
	struct report_queue	*q;
	const char		*id, *qid;
	json_t			*o, *qo;

	json_object_foreach((json_t *)shops, id, o) {
		if (!json_is_object(o) || *id == '\0')
			continue;
		if ((sh = report_shop(r, id, NULL)) == NULL ||
		    report_load_set(&sh->set, json_object_get(o, "agents")) == -1)
			return -1;
		json_object_foreach(json_object_get(o, "queues"), qid, qo) {
			if (!json_is_object(qo) || *qid == '\0')
				continue;
			if ((q = report_queue(r, sh, qid, NULL)) == NULL ||
			    report_load_set(&q->set, json_object_get(qo, "agents")) == -1)
				return -1;
		}
	}
	return 0;
}

int
report_load_into(struct report *r, const char *doc, size_t len, int *partial)
{
	json_t	*o;
	int	 rc = 1;

	*partial = 0;
	if ((o = json_loadb(doc, len, JSON_ALLOW_NUL, NULL)) == NULL)
		return 1;
	if (!json_is_object(o) || json_integer_value(json_object_get(o, "v")) != 1 ||
	    !json_is_object(json_object_get(o, "agents")))
		goto out;
	*partial = json_is_true(json_object_get(o, "partial"));
	rc = report_load_set(&r->all, json_object_get(o, "agents")) == -1 ||
	    report_load_shops(r, json_object_get(o, "shops")) == -1 ? -1 : 0;
out:
	json_decref(o);
	return rc;
}

struct report *
report_load(const char *doc, size_t len, uint64_t cap_ms, uint64_t rate_ms,
    int *partial)
{
	struct report	*r;

	*partial = 0;
	if ((r = report_new(cap_ms, rate_ms)) == NULL)
		return NULL;
	if (report_load_into(r, doc, len, partial) != 0) {
		report_free(r);
		return NULL;
	}
	return r;
}

/* --- what the writers share --------------------------------------------------- */

/* A computed row: figures and the counts around them. */
struct report_row {
	const char		*agent;		/* NULL: the team */
	struct sla_figures	 f;
	uint64_t		 within_fast;
	double			 rate_fast;
	uint64_t		 alerts, blocks, fps;
};

static void
report_row(const struct report_set *s, const struct report_agent *a,
    struct report_row *row)
{
	memset(row, 0, sizeof(*row));
	row->agent = a->id;
	report_agent_figures(s, a, &row->f);
	row->within_fast = report_hist_within_fast(&a->bins);
	row->rate_fast = a->sums.rounds > 0 ? (double)row->within_fast /
	    (double)a->sums.rounds : 0;
	row->alerts = a->alerts;
	row->blocks = a->blocks;
	row->fps = a->fps;
}

/* The team's row and hours; -1 on ENOMEM. */
static int
report_team_row(const struct report_set *s, struct report_row *row,
    uint32_t hour_rounds[24], uint64_t hour_sum_ms[24])
{
	struct sla_sums	 u;
	uint32_t	*hist;

	memset(row, 0, sizeof(*row));
	if ((hist = calloc(report_team_slots(s), sizeof(*hist))) == NULL)
		return -1;
	report_team(s, &u, hist, hour_rounds, hour_sum_ms, &row->alerts,
	    &row->blocks, &row->fps);
	sla_sums_figures(&u, s->cap_ms, &row->f);
	row->within_fast = report_within_fast(&u);
	row->rate_fast = u.rounds > 0 ? (double)row->within_fast / (double)u.rounds : 0;
	free(hist);
	return 0;
}

/* The team's worst waits: the longest of every agent's (each agent keeps its REPORT_WORST). */
struct report_worst {
	const struct report_agent	*a;
	const struct report_slot	*s;
};

static size_t
report_team_worst(const struct report_set *r, struct report_worst w[REPORT_WORST])
{
	size_t	i, k, j, n = 0;

	for (i = 0; i < r->nagents; i++)
		for (k = 0; k < r->agents[i]->nworst; k++) {
			const struct report_slot *s = &r->agents[i]->worst[k];

			for (j = 0; j < n && report_slot_before(w[j].s, s->waited_ms,
			    s->opened); j++)
				;
			if (j == REPORT_WORST)
				break;	/* this agent's next are shorter still */
			if (n < REPORT_WORST)
				n++;
			memmove(&w[j + 1], &w[j], (n - 1 - j) * sizeof(*w));
			w[j].a = r->agents[i];
			w[j].s = s;
		}
	return n;
}

static uint64_t
report_hour_mean(uint32_t n, uint64_t sum)
{
	return n > 0 ? (sum + n / 2) / n : 0;
}

/* --- JSON ---------------------------------------------------------------------- */

/*
 * json_object_update borrows its second argument: a packed one that is
 * merged is leaked unless dropped. This wrapper merges and drops.
 */
static int
report_update(json_t *o, json_t *more)
{
	int	rc;

	if (o == NULL || more == NULL) {
		json_decref(more);
		return -1;
	}
	rc = json_object_update(o, more);
	json_decref(more);
	return rc;
}

static json_t *
report_row_obj(const struct report_row *row)
{
	json_t	*o = state_figures_json(&row->f);

	if (report_update(o, json_pack("{s:I, s:f, s:I, s:I, s:I}",
	    "within_30s", (json_int_t)row->within_fast, "rate_30s", row->rate_fast,
	    "alerts", (json_int_t)row->alerts, "blocks", (json_int_t)row->blocks,
	    "false_positives", (json_int_t)row->fps)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *
report_hits_json(const struct report_hit *hits, size_t n)
{
	json_t	*o = json_object();
	size_t	 i;

	for (i = 0; o != NULL && i < n; i++)
		if (json_object_set_new(o, hits[i].cat, json_pack(
		    "{s:I, s:I, s:I, s:I, s:I}", "alerts", (json_int_t)hits[i].alerts,
		    "block", (json_int_t)hits[i].act[0], "warn", (json_int_t)hits[i].act[1],
		    "flag", (json_int_t)hits[i].act[2],
		    "false_positives", (json_int_t)hits[i].fps)) == -1) {
			json_decref(o);
			return NULL;
		}
	return o;
}

/* Every agent's hits by category added up, *n of them: the caller's, for report_hits_free; NULL on ENOMEM. */
static struct report_hit *
report_team_hits(const struct report_set *r, size_t *n)
{
	struct report_agent	 team;
	struct report_hit	*h;
	size_t			 i, k;

	memset(&team, 0, sizeof(team));
	for (i = 0; i < r->nagents; i++)
		for (k = 0; k < r->agents[i]->nhits; k++) {
			if ((h = report_hit(&team, r->agents[i]->hits[k].cat)) == NULL)
				goto err;
			h->alerts += r->agents[i]->hits[k].alerts;
			h->act[0] += r->agents[i]->hits[k].act[0];
			h->act[1] += r->agents[i]->hits[k].act[1];
			h->act[2] += r->agents[i]->hits[k].act[2];
			h->fps += r->agents[i]->hits[k].fps;
		}
	*n = team.nhits;
	if (team.hits == NULL)		/* none: an empty, freeable array */
		team.hits = calloc(1, sizeof(*team.hits));
	return team.hits;
err:
	for (k = 0; k < team.nhits; k++)
		free(team.hits[k].cat);
	free(team.hits);
	return NULL;
}

static void
report_hits_free(struct report_hit *h, size_t n)
{
	size_t	i;

	for (i = 0; h != NULL && i < n; i++)
		free(h[i].cat);
	free(h);
}

static json_t *
report_hours_json(const uint32_t *rounds, const uint64_t *sum, int all)
{
	json_t	*a = json_array();
	size_t	 h;

	for (h = 0; a != NULL && h < 24; h++)
		if ((all || rounds[h] > 0) && json_array_append_new(a, json_pack(
		    "{s:I, s:I, s:I}", "hour", (json_int_t)h, "rounds",
		    (json_int_t)rounds[h], "mean_ms",
		    (json_int_t)report_hour_mean(rounds[h], sum[h]))) == -1) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* The team of s as the report's "team": its row, how many agents, the hits by category. NULL on ENOMEM. */
static json_t *
report_team_json(const struct report_set *s)
{
	struct report_row	 row;
	struct report_hit	*th;
	uint32_t		 hr[24];
	uint64_t		 hs[24];
	json_t			*team;
	size_t			 nth = 0;

	if (report_team_row(s, &row, hr, hs) == -1 ||
	    (th = report_team_hits(s, &nth)) == NULL)
		return NULL;
	team = report_row_obj(&row);
	if (report_update(team, json_pack("{s:I, s:o}", "agents",
	    (json_int_t)s->nagents, "hits", report_hits_json(th, nth))) == -1) {
		json_decref(team);
		team = NULL;
	}
	report_hits_free(th, nth);
	return team;
}

/*
 * A shop's or a queue's figures: {"sla": {cap_ms, rate_ms}, "team",
 * "agents": {AGENT: {figures, hits}}}, keyed by agent as chatmon
 * replay's summary has them. NULL on ENOMEM.
 */
static json_t *
report_set_json(const struct report_set *s)
{
	struct report_row	 row;
	json_t			*o, *agents, *a;
	size_t			 i;

	if ((o = json_pack("{s:{s:I, s:I}, s:o}", "sla", "cap_ms",
	    (json_int_t)s->cap_ms, "rate_ms", (json_int_t)s->rate_ms, "team",
	    report_team_json(s))) == NULL)
		return NULL;
	if ((agents = json_object()) == NULL ||
	    json_object_set_new(o, "agents", agents) == -1)
		goto err;
	for (i = 0; i < s->nagents; i++) {
		report_row(s, s->agents[i], &row);
		a = report_row_obj(&row);
		if (report_update(a, json_pack("{s:o}", "hits", report_hits_json(
		    s->agents[i]->hits, s->agents[i]->nhits))) == -1)
			goto err;
		/* an agent id that is not UTF-8: left out, as everywhere */
		json_object_set_new(agents, s->agents[i]->id, a);
	}
	return o;
err:
	json_decref(o);
	return NULL;
}

/* "shops": {SHOP: {sla, team, agents, queues: {Q: {sla, team, agents}}}}; NULL on ENOMEM. */
static json_t *
report_shops_json(const struct report *r)
{
	const struct report_shop	*sh;
	json_t				*shops, *o, *queues;
	size_t				 i, k;

	if ((shops = json_object()) == NULL)
		return NULL;
	for (i = 0; i < r->nshops; i++) {
		sh = &r->shops[i];
		if ((o = report_set_json(&sh->set)) == NULL ||
		    (queues = json_object()) == NULL ||
		    json_object_set_new(o, "queues", queues) == -1)
			goto err;
		for (k = 0; k < sh->nqueues; k++)
			json_object_set_new(queues, sh->queues[k].id,
			    report_set_json(&sh->queues[k].set));
		/* a shop id that is not UTF-8: left out, as an agent's */
		json_object_set_new(shops, sh->id, o);
	}
	return shops;
err:
	json_decref(o);
	json_decref(shops);
	return NULL;
}

int
report_json(struct sbuf *out, const struct report *r, const struct report_meta *m)
{
	struct report_row	 row;
	struct report_worst	 w[REPORT_WORST];
	struct report_hit	*th = NULL;
	uint32_t		 hr[24];
	uint64_t		 hs[24];
	json_t			*doc = NULL, *team, *agents, *worst, *days, *o;
	size_t			 i, n, nth = 0;
	int			 rc = -1;

	if (report_team_row(&r->all, &row, hr, hs) == -1 ||
	    (th = report_team_hits(&r->all, &nth)) == NULL)
		goto out;
	team = report_row_obj(&row);
	if (report_update(team, json_pack("{s:I, s:o}", "agents",
	    (json_int_t)r->all.nagents, "hits", report_hits_json(th, nth))) == -1) {
		json_decref(team);
		goto out;
	}
	/* "shop" and "queue" only under --shop, --queue: the document as before */
	doc = json_pack("{s:i, s:s, s:s, s:o, s:s*, s:s*, s:i, s:I, s:{s:I, s:I, s:I}, s:o}",
	    "v", 1, "from", m->from, "to", m->to,
	    "agent", m->agent != NULL ? json_string(m->agent) : json_null(),
	    "shop", r->only_shop, "queue", r->only_queue,
	    "tz_offset_min", (int)m->utc_offset_min,
	    "generated", (json_int_t)m->generated,
	    "sla", "cap_ms", (json_int_t)r->all.cap_ms, "rate_ms", (json_int_t)r->all.rate_ms,
	    "fast_ms", (json_int_t)REPORT_FAST_MS,
	    "team", team);
	if (doc == NULL || (agents = json_array()) == NULL ||
	    json_object_set_new(doc, "agents", agents) == -1)
		goto out;
	for (i = 0; i < r->all.nagents; i++) {
		report_row(&r->all, r->all.agents[i], &row);
		/* the agent's name first, as a reader looks for it */
		if ((o = json_pack("{s:s}", "agent", r->all.agents[i]->id)) == NULL)
			continue;	/* an agent id that is not UTF-8: left out, as everywhere */
		if (report_update(o, report_row_obj(&row)) == -1 ||
		    report_update(o, json_pack("{s:o, s:o}", "hits", report_hits_json(
		    r->all.agents[i]->hits, r->all.agents[i]->nhits), "hours", report_hours_json(
		    r->all.agents[i]->hour_rounds, r->all.agents[i]->hour_sum_ms, 0))) == -1 ||
		    json_array_append_new(agents, o) == -1)
			goto out;
	}
	/* "shops" only when some conversation had one, as chatmon replay's summary */
	if (r->nshops > 0 && json_object_set_new(doc, "shops",
	    report_shops_json(r)) == -1)
		goto out;
	if (json_object_set_new(doc, "hours", report_hours_json(hr, hs, 1)) == -1 ||
	    (worst = json_array()) == NULL ||
	    json_object_set_new(doc, "worst", worst) == -1)
		goto out;
	n = report_team_worst(&r->all, w);
	for (i = 0; i < n; i++)
		json_array_append_new(worst, json_pack("{s:s, s:s%, s:I, s:I, s:I, s:b}",
		    "agent", w[i].a->id, "conversation", w[i].s->conv, w[i].s->convlen,
		    "opened", (json_int_t)w[i].s->opened, "at", (json_int_t)w[i].s->at,
		    "waited_ms", (json_int_t)w[i].s->waited_ms,
		    "answered", w[i].s->answered));
	if ((days = json_array()) == NULL || json_object_set_new(doc, "days", days) == -1)
		goto out;
	for (i = 0; i < r->ndays; i++) {
		row.f = r->days[i].f;
		row.within_fast = r->days[i].within_fast;
		row.rate_fast = row.f.rounds > 0 ? (double)row.within_fast /
		    (double)row.f.rounds : 0;
		row.alerts = r->days[i].alerts;
		row.blocks = r->days[i].blocks;
		row.fps = r->days[i].fps;
		o = json_pack("{s:s, s:b}", "day", r->days[i].day, "partial",
		    r->days[i].partial);
		if (report_update(o, report_row_obj(&row)) == -1 ||
		    json_array_append_new(days, o) == -1) {
			json_decref(o);
			goto out;
		}
	}
	rc = jsonw_dump(out, doc);
	doc = NULL;
out:
	json_decref(doc);
	report_hits_free(th, nth);
	return rc;
}

/* --- CSV ------------------------------------------------------------------------ */

/*
 * One field: quoted when it holds a comma, a quote or a line break (quotes
 * doubled, RFC 4180); one that starts like a formula (= + - @, a tab or a
 * carriage return) gets a leading ' so that Excel shows it instead of
 * running it (an agent id is whatever the workbench sent).
 */
static int
report_csv_field(struct sbuf *out, const char *s, size_t len)
{
	size_t	i;
	int	q = 0, rc = 0;

	for (i = 0; i < len; i++)
		if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r')
			q = 1;
	if (q)
		rc |= sbuf_append(out, "\"", 1);
	if (len > 0 && strchr("=+-@\t\r", s[0]) != NULL)
		rc |= sbuf_append(out, "'", 1);
	for (i = 0; i < len; i++)
		rc |= s[i] == '"' ? sbuf_append(out, "\"\"", 2) : sbuf_append(out, s + i, 1);
	if (q)
		rc |= sbuf_append(out, "\"", 1);
	return rc ? -1 : 0;
}

/* One agent's figures after its first fields, and its hits under the header's categories th, then the line's end. */
static int
report_csv_row(struct sbuf *out, const struct report_set *s,
    const struct report_agent *a, const struct report_hit *th, size_t nth)
{
	struct report_row	 row;
	const struct report_hit	*h;
	size_t			 j, k;
	int			 rc = 0;

	report_row(s, a, &row);
	rc |= sbuf_printf(out, ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
	    ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64
	    ",%.6f,%" PRIu64 ",%.6f,%" PRIu64 ",%" PRIu64 ",%" PRIu64,
	    row.f.rounds, row.f.answered, row.f.mean_ms, row.f.p90_ms,
	    row.f.first_rounds, row.f.first_mean_ms, row.f.breaches,
	    row.f.escalations, row.f.within_rate, row.f.rate, row.within_fast,
	    row.rate_fast, row.alerts, row.blocks, row.fps);
	for (k = 0; k < nth; k++) {
		h = NULL;
		for (j = 0; j < a->nhits; j++)
			if (strcmp(a->hits[j].cat, th[k].cat) == 0)
				h = &a->hits[j];
		rc |= sbuf_printf(out, ",%" PRIu64, h != NULL ? h->alerts : 0);
	}
	rc |= sbuf_append(out, "\r\n", 2);
	return rc ? -1 : 0;
}

static int
report_csv_head(struct sbuf *out, const char *first, const struct report_hit *th,
    size_t nth)
{
	struct sbuf	name;
	size_t		k;
	int		rc = 0;

	rc |= sbuf_printf(out, "%sagent,rounds,answered,mean_ms,p90_ms,first_rounds,"
	    "first_mean_ms,breaches,escalations,within_rate,rate,within_30s,rate_30s,"
	    "alerts,blocks,false_positives", first);
	/* "hits:" is part of the field: quoted, it is quoted whole */
	sbuf_init(&name);
	for (k = 0; k < nth; k++) {
		sbuf_reset(&name);
		rc |= sbuf_append(out, ",", 1);
		rc |= sbuf_printf(&name, "hits:%s", th[k].cat);
		rc |= report_csv_field(out, name.s != NULL ? name.s : "", name.len);
	}
	sbuf_free(&name);
	rc |= sbuf_append(out, "\r\n", 2);
	return rc ? -1 : 0;
}

/*
 * The shops' rows, a table of their own after a blank line: shop, queue
 * (empty: the agent in the whole shop), then an agent's columns. Apart,
 * so that the agents' table stays as it was, and its totals are not
 * rows of a shop that a sum in Excel would count twice.
 */
static int
report_csv_shops(struct sbuf *out, const struct report *r,
    const struct report_hit *th, size_t nth)
{
	const struct report_shop	*sh;
	const struct report_set		*set;
	size_t				 i, k, q;
	int				 rc = 0;

	rc |= sbuf_append(out, "\r\n", 2);
	rc |= report_csv_head(out, "shop,queue,", th, nth);
	for (i = 0; i < r->nshops; i++) {
		sh = &r->shops[i];
		for (q = 0; q <= sh->nqueues; q++) {
			set = q == 0 ? &sh->set : &sh->queues[q - 1].set;
			for (k = 0; k < set->nagents; k++) {
				rc |= report_csv_field(out, sh->id, strlen(sh->id));
				rc |= sbuf_append(out, ",", 1);
				if (q > 0)
					rc |= report_csv_field(out, sh->queues[q - 1].id,
					    strlen(sh->queues[q - 1].id));
				rc |= sbuf_append(out, ",", 1);
				rc |= report_csv_field(out, set->agents[k]->id,
				    strlen(set->agents[k]->id));
				rc |= report_csv_row(out, set, set->agents[k], th, nth);
			}
		}
	}
	return rc ? -1 : 0;
}

int
report_csv(struct sbuf *out, const struct report *r, const struct report_meta *m)
{
	struct report_hit	*th;
	size_t			 i, nth = 0;
	int			 rc = 0;

	(void)m;
	if ((th = report_team_hits(&r->all, &nth)) == NULL)
		return -1;
	/* the BOM: Excel reads UTF-8 only when the file says so */
	rc |= sbuf_append(out, "\xEF\xBB\xBF", 3);
	rc |= report_csv_head(out, "", th, nth);
	for (i = 0; i < r->all.nagents; i++) {
		rc |= report_csv_field(out, r->all.agents[i]->id,
		    strlen(r->all.agents[i]->id));
		rc |= report_csv_row(out, &r->all, r->all.agents[i], th, nth);
	}
	/* the agents' totals hold every shop's hits: their categories are all */
	if (r->nshops > 0)
		rc |= report_csv_shops(out, r, th, nth);
	report_hits_free(th, nth);
	return rc ? -1 : 0;
}

/* --- HTML ------------------------------------------------------------------------ */

/* Text into HTML: & < > " ' as entities, control characters as U+FFFD. */
static int
report_esc(struct sbuf *out, const char *s, size_t len)
{
	size_t	i;
	int	rc = 0;

	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '&': rc |= sbuf_append(out, "&amp;", 5); break;
		case '<': rc |= sbuf_append(out, "&lt;", 4); break;
		case '>': rc |= sbuf_append(out, "&gt;", 4); break;
		case '"': rc |= sbuf_append(out, "&quot;", 6); break;
		case '\'': rc |= sbuf_append(out, "&#39;", 5); break;
		default:
			if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
				rc |= sbuf_append(out, "\xEF\xBF\xBD", 3);
			else
				rc |= sbuf_append(out, s + i, 1);
		}
	}
	return rc ? -1 : 0;
}

static int
report_escs(struct sbuf *out, const char *s)
{
	return report_esc(out, s, strlen(s));
}

/* 12.3秒, 3分20秒: a duration as a manager reads it. */
static int
report_dur(struct sbuf *out, uint64_t ms)
{
	if (ms < 60000)
		return sbuf_printf(out, "%.1f秒", (double)ms / 1000);
	return sbuf_printf(out, "%" PRIu64 "分%02" PRIu64 "秒", ms / 60000,
	    (ms % 60000 + 500) / 1000 == 60 ? 59 : (ms % 60000 + 500) / 1000);
}

/* Local time (UTC + off) of wall ms t, "2026-11-22 10:00:05". */
static int
report_time(struct sbuf *out, int64_t t, int32_t off_min)
{
	int64_t		l = t + (int64_t)off_min * 60000;
	time_t		s = (time_t)(l / 1000 - (l % 1000 < 0));
	struct tm	tm;
	char		buf[32];

	if (gmtime_r(&s, &tm) == NULL)
		return sbuf_printf(out, "?");
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	return sbuf_printf(out, "%s", buf);
}

static int
report_pct(struct sbuf *out, double v, uint64_t rounds, int bad_below_80)
{
	if (rounds == 0)
		return sbuf_printf(out, "<td>—</td>");
	return sbuf_printf(out, "<td%s>%.1f%%</td>", bad_below_80 && v < 0.8 ?
	    " class=\"bad\"" : "", v * 100);
}

/* The rate's label: 3分钟回复率 for 180 s. */
static int
report_rate_label(struct sbuf *out, uint64_t rate_ms)
{
	if (rate_ms % 60000 == 0)
		return sbuf_printf(out, "%" PRIu64 "分钟回复率", rate_ms / 60000);
	return sbuf_printf(out, "%" PRIu64 "秒回复率", rate_ms / 1000);
}

static int
report_html_row(struct sbuf *out, const struct report_row *row)
{
	int	rc = 0;

	rc |= sbuf_printf(out, "<td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>",
	    row->f.rounds, row->f.answered);
	if (row->f.first_rounds > 0)
		rc |= report_dur(out, row->f.first_mean_ms);
	else
		rc |= sbuf_printf(out, "—");
	rc |= sbuf_printf(out, "</td><td>");
	rc |= row->f.rounds > 0 ? report_dur(out, row->f.mean_ms) : sbuf_printf(out, "—");
	rc |= sbuf_printf(out, "</td><td>");
	rc |= row->f.rounds > 0 ? report_dur(out, row->f.p90_ms) : sbuf_printf(out, "—");
	rc |= sbuf_printf(out, "</td>");
	rc |= report_pct(out, row->f.rate, row->f.rounds, 1);
	rc |= report_pct(out, row->rate_fast, row->f.rounds, 0);
	rc |= sbuf_printf(out, "<td%s>%" PRIu64 "</td><td%s>%" PRIu64 "</td>"
	    "<td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td>",
	    row->f.breaches > 0 ? " class=\"bad\"" : "", row->f.breaches,
	    row->f.escalations > 0 ? " class=\"bad\"" : "", row->f.escalations,
	    row->alerts, row->blocks, row->fps);
	return rc ? -1 : 0;
}

static int
report_html_head_rate(struct sbuf *out, const char *first, uint64_t rate_ms)
{
	int	rc = 0;

	rc |= sbuf_printf(out, "<tr><th>%s</th><th>轮次</th><th>已回复</th>"
	    "<th>首响均值</th><th>平均响应</th><th>P90</th><th>", first);
	/* 0: shops of their own rates, each said in its row */
	rc |= rate_ms > 0 ? report_rate_label(out, rate_ms) :
	    sbuf_printf(out, "店铺时限回复率");
	rc |= sbuf_printf(out, "</th><th>30秒回复率</th><th>超时</th><th>升级</th>"
	    "<th>违规</th><th>拦截</th><th>误报</th></tr>\n");
	return rc ? -1 : 0;
}

static int
report_html_head(struct sbuf *out, const char *first, const struct report *r)
{
	return report_html_head_rate(out, first, r->all.rate_ms);
}

/* The rate every shop and queue has, or 0 when they differ. */
static uint64_t
report_shops_rate(const struct report *r)
{
	uint64_t	rate = r->all.rate_ms;
	size_t		i, k;

	for (i = 0; i < r->nshops; i++) {
		if (r->shops[i].set.rate_ms != rate)
			return 0;
		for (k = 0; k < r->shops[i].nqueues; k++)
			if (r->shops[i].queues[k].set.rate_ms != rate)
				return 0;
	}
	return rate;
}

/* A shop's or queue's first cell: its name, and its rate when the header cannot say it. */
static int
report_html_shop_cell(struct sbuf *out, const char *shop, const char *queue,
    const char *agent, const struct report_set *s, uint64_t rate)
{
	int	rc = 0;

	rc |= sbuf_printf(out, "<tr><td>");
	rc |= report_escs(out, shop);
	if (queue != NULL) {
		rc |= sbuf_printf(out, " / ");
		rc |= report_escs(out, queue);
	}
	if (agent != NULL) {
		rc |= sbuf_printf(out, " · ");
		rc |= report_escs(out, agent[0] != '\0' ? agent : "(未知)");
	}
	if (rate == 0) {
		rc |= sbuf_printf(out, "(");
		rc |= report_rate_label(out, s->rate_ms);
		rc |= sbuf_printf(out, ")");
	}
	rc |= sbuf_printf(out, "</td>");
	return rc ? -1 : 0;
}

/*
 * Per shop: a row for the shop and one for each of its queues (#shops),
 * then each agent within each shop (#shop_agents), every one under its
 * shop's cap and rate.
 */
static int
report_html_shops(struct sbuf *out, const struct report *r)
{
	const struct report_shop	*sh;
	const struct report_set		*set;
	struct report_row		 row;
	uint32_t			 hr[24];
	uint64_t			 hs[24];
	uint64_t			 rate = report_shops_rate(r);
	size_t				 i, k;
	int				 rc = 0;

	rc |= sbuf_printf(out, "<h2>店铺</h2>\n<table id=\"shops\">\n");
	rc |= report_html_head_rate(out, "店铺 / 分组", rate);
	for (i = 0; i < r->nshops; i++) {
		sh = &r->shops[i];
		for (k = 0; k <= sh->nqueues; k++) {
			set = k == 0 ? &sh->set : &sh->queues[k - 1].set;
			if (report_team_row(set, &row, hr, hs) == -1)
				return -1;
			rc |= report_html_shop_cell(out, sh->id, k == 0 ? NULL :
			    sh->queues[k - 1].id, NULL, set, rate);
			rc |= report_html_row(out, &row);
			rc |= sbuf_printf(out, "</tr>\n");
		}
	}
	rc |= sbuf_printf(out, "</table>\n<table id=\"shop_agents\">\n");
	rc |= report_html_head_rate(out, "店铺 · 客服", rate);
	for (i = 0; i < r->nshops; i++) {
		set = &r->shops[i].set;
		for (k = 0; k < set->nagents; k++) {
			report_row(set, set->agents[k], &row);
			rc |= report_html_shop_cell(out, r->shops[i].id, NULL,
			    set->agents[k]->id, set, rate);
			rc |= report_html_row(out, &row);
			rc |= sbuf_printf(out, "</tr>\n");
		}
	}
	rc |= sbuf_printf(out, "</table>\n");
	return rc ? -1 : 0;
}

/* The hourly profile: rounds per local hour as bars, the mean above each. */
static int
report_svg_hours(struct sbuf *out, const uint32_t *hr, const uint64_t *hs)
{
	uint32_t	max = 1;
	size_t		h;
	int		rc = 0, x, bh;

	for (h = 0; h < 24; h++)
		if (hr[h] > max)
			max = hr[h];
	rc |= sbuf_printf(out, "<svg class=\"chart\" viewBox=\"0 0 760 230\" "
	    "width=\"760\" height=\"230\" role=\"img\" aria-label=\"每小时轮次与平均响应\">"
	    "<line x1=\"30\" y1=\"190\" x2=\"750\" y2=\"190\" stroke=\"#999\"/>");
	for (h = 0; h < 24; h++) {
		x = 32 + (int)h * 30;
		bh = (int)((uint64_t)hr[h] * 150 / max);
		if (hr[h] > 0) {
			rc |= sbuf_printf(out, "<rect x=\"%d\" y=\"%d\" width=\"24\" "
			    "height=\"%d\" fill=\"#4a7bd0\"><title>%02zu时 %" PRIu32 "轮 平均",
			    x, 190 - bh, bh, h, hr[h]);
			rc |= report_dur(out, report_hour_mean(hr[h], hs[h]));
			rc |= sbuf_printf(out, "</title></rect><text x=\"%d\" y=\"%d\" "
			    "class=\"v\">%" PRIu32 "</text><text x=\"%d\" y=\"%d\" "
			    "class=\"m\">%.0fs</text>", x + 12, 186 - bh, hr[h], x + 12,
			    172 - bh, (double)report_hour_mean(hr[h], hs[h]) / 1000);
		}
		rc |= sbuf_printf(out, "<text x=\"%d\" y=\"206\" class=\"h\">%02zu</text>",
		    x + 12, h);
	}
	rc |= sbuf_printf(out, "<text x=\"30\" y=\"224\" class=\"l\">柱:轮次(个);"
	    "柱上:平均响应(秒);横轴:本地小时</text></svg>\n");
	return rc ? -1 : 0;
}

/* Per agent: the mean response as a bar, the reply rate beside it. */
static int
report_svg_agents(struct sbuf *out, const struct report *r)
{
	struct report_row	 row;
	uint64_t		 max = 1;
	size_t			 i;
	int			 rc = 0, y, w, hgt = 30 + 26 * (int)r->all.nagents;

	for (i = 0; i < r->all.nagents; i++) {
		report_row(&r->all, r->all.agents[i], &row);
		if (row.f.mean_ms > max)
			max = row.f.mean_ms;
	}
	rc |= sbuf_printf(out, "<svg class=\"chart\" viewBox=\"0 0 760 %d\" width=\"760\" "
	    "height=\"%d\" role=\"img\" aria-label=\"客服平均响应对比\">", hgt, hgt);
	for (i = 0; i < r->all.nagents; i++) {
		report_row(&r->all, r->all.agents[i], &row);
		y = 10 + 26 * (int)i;
		w = (int)(row.f.mean_ms * 430 / max);
		rc |= sbuf_printf(out, "<text x=\"150\" y=\"%d\" class=\"a\">", y + 15);
		rc |= report_escs(out, row.agent[0] != '\0' ? row.agent : "(未知)");
		rc |= sbuf_printf(out, "</text><rect x=\"160\" y=\"%d\" width=\"%d\" "
		    "height=\"18\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" class=\"r\">",
		    y + 2, w, row.f.rate < 0.8 && row.f.rounds > 0 ? "#d9534f" : "#5cb85c",
		    166 + w, y + 15);
		rc |= row.f.rounds > 0 ? report_dur(out, row.f.mean_ms) : sbuf_printf(out, "—");
		if (row.f.rounds > 0)
			rc |= sbuf_printf(out, " · %.1f%%", row.f.rate * 100);
		rc |= sbuf_printf(out, "</text>");
	}
	rc |= sbuf_printf(out, "<text x=\"160\" y=\"%d\" class=\"l\">条:平均响应;"
	    "数字:平均响应 · ", hgt - 6);
	rc |= report_rate_label(out, r->all.rate_ms);
	rc |= sbuf_printf(out, "(低于80%%为红)</text></svg>\n");
	return rc ? -1 : 0;
}

static const char report_css[] =
    "body{font-family:\"Noto Sans CJK SC\",\"PingFang SC\",\"Microsoft YaHei\",sans-serif;"
    "margin:24px;color:#222;max-width:1100px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
    "border-bottom:1px solid #ddd;padding-bottom:4px}"
    ".meta{color:#666;font-size:13px}"
    "table{border-collapse:collapse;font-size:13px;margin:4px 0}"
    "th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}"
    "th{background:#f3f5f8}td:first-child,th:first-child{text-align:left}"
    "td.bad{color:#c9302c;font-weight:bold}tr.partial td{color:#999}"
    ".chart{max-width:100%;height:auto}.chart text{font-size:11px}"
    ".chart .v,.chart .m,.chart .h{text-anchor:middle}.chart .m{fill:#666}"
    ".chart .a{text-anchor:end}.chart .l{fill:#666}"
    ".note{color:#666;font-size:12px;margin-top:24px}";

int
report_html(struct sbuf *out, const struct report *r, const struct report_meta *m)
{
	struct report_row	 row;
	struct report_worst	 w[REPORT_WORST];
	struct report_hit	*th = NULL;
	uint32_t		 hr[24];
	uint64_t		 hs[24];
	const char		*zh;
	size_t			 i, n, nth = 0;
	int			 rc = 0, off = m->utc_offset_min < 0 ? -m->utc_offset_min :
				    m->utc_offset_min;

	if (report_team_row(&r->all, &row, hr, hs) == -1 ||
	    (th = report_team_hits(&r->all, &nth)) == NULL)
		return -1;
	rc |= sbuf_printf(out, "<!DOCTYPE html>\n<html lang=\"zh-CN\">\n<head>\n"
	    "<meta charset=\"utf-8\">\n<title>客服质检报表 %s", m->from);
	if (strcmp(m->from, m->to) != 0)
		rc |= sbuf_printf(out, " 至 %s", m->to);
	rc |= sbuf_printf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n"
	    "<h1>客服质检报表</h1>\n<p class=\"meta\">日期:%s", report_css, m->from);
	if (strcmp(m->from, m->to) != 0)
		rc |= sbuf_printf(out, " 至 %s", m->to);
	rc |= sbuf_printf(out, "(UTC%c%02d:%02d)", m->utc_offset_min < 0 ? '-' : '+',
	    off / 60, off % 60);
	if (m->agent != NULL) {
		rc |= sbuf_printf(out, " · 客服:");
		rc |= report_escs(out, m->agent);
	}
	if (r->only_shop != NULL) {
		rc |= sbuf_printf(out, " · 店铺:");
		rc |= report_escs(out, r->only_shop);
	}
	if (r->only_queue != NULL) {
		rc |= sbuf_printf(out, " / ");
		rc |= report_escs(out, r->only_queue);
	}
	rc |= sbuf_printf(out, " · 生成于 ");
	rc |= report_time(out, m->generated, m->utc_offset_min);
	rc |= sbuf_printf(out, "</p>\n");

	rc |= sbuf_printf(out, "<h2>团队概览</h2>\n<table id=\"team\">\n");
	rc |= report_html_head(out, "团队", r);
	rc |= sbuf_printf(out, "<tr><td>%zu 位客服</td>", r->all.nagents);
	rc |= report_html_row(out, &row);
	rc |= sbuf_printf(out, "</tr>\n</table>\n");

	rc |= sbuf_printf(out, "<h2>每小时分布</h2>\n");
	rc |= report_svg_hours(out, hr, hs);

	rc |= sbuf_printf(out, "<h2>客服对比</h2>\n");
	rc |= report_svg_agents(out, r);
	rc |= sbuf_printf(out, "<table id=\"agents\">\n");
	rc |= report_html_head(out, "客服", r);
	for (i = 0; i < r->all.nagents; i++) {
		report_row(&r->all, r->all.agents[i], &row);
		rc |= sbuf_printf(out, "<tr><td>");
		rc |= report_escs(out, row.agent[0] != '\0' ? row.agent : "(未知)");
		rc |= sbuf_printf(out, "</td>");
		rc |= report_html_row(out, &row);
		rc |= sbuf_printf(out, "</tr>\n");
	}
	rc |= sbuf_printf(out, "</table>\n");

	/* no shop: the page as before */
	if (r->nshops > 0 && report_html_shops(out, r) == -1)
		rc = -1;

	rc |= sbuf_printf(out, "<h2>违规分类</h2>\n<table id=\"hits\">\n<tr><th>类别</th>"
	    "<th>告警</th><th>拦截规则</th><th>提醒规则</th><th>标记规则</th><th>误报</th></tr>\n");
	for (i = 0; i < nth; i++) {
		rc |= sbuf_printf(out, "<tr><td>");
		if ((zh = alertline_category(th[i].cat)) != NULL)
			rc |= sbuf_printf(out, "%s ", zh);
		rc |= report_escs(out, th[i].cat);
		rc |= sbuf_printf(out, "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%"
		    PRIu64 "</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td></tr>\n",
		    th[i].alerts, th[i].act[0], th[i].act[1], th[i].act[2], th[i].fps);
	}
	if (nth == 0)
		rc |= sbuf_printf(out, "<tr><td colspan=\"6\">无违规</td></tr>\n");
	rc |= sbuf_printf(out, "</table>\n");

	rc |= sbuf_printf(out, "<h2>最长等待(前 %d)</h2>\n<table id=\"worst\">\n"
	    "<tr><th>会话</th><th>客服</th><th>开始</th><th>等待</th><th>结果</th></tr>\n",
	    REPORT_WORST);
	n = report_team_worst(&r->all, w);
	for (i = 0; i < n; i++) {
		rc |= sbuf_printf(out, "<tr><td>");
		rc |= report_esc(out, w[i].s->conv, w[i].s->convlen);
		rc |= sbuf_printf(out, "</td><td>");
		rc |= report_escs(out, w[i].a->id);
		rc |= sbuf_printf(out, "</td><td>");
		rc |= report_time(out, w[i].s->opened, m->utc_offset_min);
		rc |= sbuf_printf(out, "</td><td>");
		rc |= report_dur(out, w[i].s->waited_ms);
		rc |= sbuf_printf(out, "</td><td>%s</td></tr>\n", w[i].s->answered ?
		    "已回复" : "未回复");
	}
	if (n == 0)
		rc |= sbuf_printf(out, "<tr><td colspan=\"5\">无</td></tr>\n");
	rc |= sbuf_printf(out, "</table>\n");

	rc |= sbuf_printf(out, "<h2>每日</h2>\n<table id=\"days\">\n");
	rc |= report_html_head(out, "日期", r);
	for (i = 0; i < r->ndays; i++) {
		row.f = r->days[i].f;
		row.within_fast = r->days[i].within_fast;
		row.rate_fast = row.f.rounds > 0 ? (double)row.within_fast /
		    (double)row.f.rounds : 0;
		row.alerts = r->days[i].alerts;
		row.blocks = r->days[i].blocks;
		row.fps = r->days[i].fps;
		rc |= sbuf_printf(out, "<tr%s><td>%s%s</td>", r->days[i].partial ?
		    " class=\"partial\"" : "", r->days[i].day, r->days[i].partial ?
		    "(不完整)" : "");
		rc |= report_html_row(out, &row);
		rc |= sbuf_printf(out, "</tr>\n");
	}
	rc |= sbuf_printf(out, "</table>\n<p class=\"note\">口径:轮次从顾客在客服上次回复后"
	    "的第一条消息起,到客服下一次有效回复止,按服务时间计;平均响应与 P90 中每轮最多计 ");
	rc |= report_dur(out, r->all.cap_ms);
	rc |= sbuf_printf(out, ",未回复的轮次按此计;");
	rc |= report_rate_label(out, r->all.rate_ms);
	rc |= sbuf_printf(out, "与 30 秒回复率为该时间内回复的轮次占全部轮次的比例;"
	    "违规为规则命中的告警数,拦截/提醒/标记为命中的规则数;误报为主管在看板上标记的告警。"
	    "详见 chatmon 文档 docs/report.md。</p>\n</body>\n</html>\n");
	report_hits_free(th, nth);
	return rc ? -1 : 0;
}

int
report_parse_day(const char *s, int32_t off_min, int64_t *start)
{
	struct tm	tm, back;
	time_t		t;
	int		n = 0;

	memset(&tm, 0, sizeof(tm));
	for (n = 0; s != NULL && n < 10; n++)
		if ((n == 4 || n == 7) ? s[n] != '-' : (s[n] < '0' || s[n] > '9'))
			return -1;
	n = 0;
	if (s == NULL || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year,
	    &tm.tm_mon, &tm.tm_mday, &n) != 3 || n != 10 || s[4] != '-' || s[7] != '-' ||
	    tm.tm_year < 1970 || tm.tm_year > 9999)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	back = tm;
	if ((t = timegm(&tm)) == (time_t)-1 || tm.tm_mday != back.tm_mday ||
	    tm.tm_mon != back.tm_mon)
		return -1;	/* 2026-02-30 */
	*start = (int64_t)t * 1000 - (int64_t)off_min * 60000;
	return 0;
}
