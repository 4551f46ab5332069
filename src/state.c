/* state: what chatmond publishes for dashboards (who waits now, the day's sums per agent): written by chatmond, merged by the dashboard (pure). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "chatmon/jsonw.h"
#include "chatmon/state.h"

static const char *const state_round_names[] = {
	[SLA_ROUND_OPEN] = "open",
	[SLA_ROUND_WARNED] = "warn",
	[SLA_ROUND_BREACHED] = "breach",
	[SLA_ROUND_ESCALATED] = "escalate",
};

int64_t
state_day(char out[16], int64_t now, int32_t off_min)
{
	int64_t		 off = (int64_t)off_min * 60000, l = now + off;
	time_t		 t = (time_t)(l / 1000 - (l % 1000 < 0));
	struct tm	 tm;

	gmtime_r(&t, &tm);
	strftime(out, 16, "%Y-%m-%d", &tm);
	/* floor, for times before 1970 too */
	return l - (l % STATE_DAY_MS + STATE_DAY_MS) % STATE_DAY_MS - off;
}

json_t *
state_figures_json(const struct sla_figures *f)
{
	json_t	*o;

	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
	    "rounds", (json_int_t)f->rounds,
	    "answered", (json_int_t)f->answered,
	    "mean_ms", (json_int_t)f->mean_ms,
	    "p90_ms", (json_int_t)f->p90_ms,
	    "first_rounds", (json_int_t)f->first_rounds,
	    "first_mean_ms", (json_int_t)f->first_mean_ms,
	    "breaches", (json_int_t)f->breaches,
	    "escalations", (json_int_t)f->escalations,
	    "within_rate", (json_int_t)f->within_rate,
	    "rate", f->rate);
	/* what the rate counts, only where it is not every round (docs/sla.md) */
	if (o != NULL && f->rate_base != f->rounds &&
	    json_object_set_new(o, "rate_base", json_integer((json_int_t)
	    f->rate_base)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* --- chatmond's side: the documents -------------------------------------- */

/*
 * "shop" and "queue" into o when set, as alerts carry them: a row without
 * them is of no shop, so the documents of before shops read the same.
 */
static int
state_set_shop(json_t *o, const char *shop, const char *queue)
{
	if (shop != NULL && shop[0] != '\0' &&
	    json_object_set_new(o, "shop", json_string(shop)) == -1)
		return -1;
	if (queue != NULL && queue[0] != '\0' &&
	    json_object_set_new(o, "queue", json_string(queue)) == -1)
		return -1;
	return 0;
}

const struct sla_config *
state_policy(const struct sla_config *cfg, const struct sla_policy *pol,
    size_t npol, const char *shop, const char *queue)
{
	const struct sla_config	*c = sla_policy_find(pol, npol, shop, queue);

	/* as the engine judges: (shop, queue), else (shop, ""), else cfg */
	return c != NULL ? c : cfg;
}

int
state_shops_add(json_t *shops, const char *shop, uint64_t n)
{
	json_t		*v;
	const char	*k = shop != NULL ? shop : "";

	v = json_object_get(shops, k);
	return json_object_set_new(shops, k, json_integer(json_integer_value(v) +
	    (json_int_t)n));
}

/* Every open round, counted by shop as it comes. */
struct state_top {
	struct sla_waiting	*v;
	size_t			 n, cap;
	json_t			*shops;		/* every round counted by its shop */
	int			 failed;	/* ENOMEM gathering them */
};

static void
state_top_add(const struct sla_waiting *w, void *arg)
{
	struct state_top	*t = arg;
	struct sla_waiting	*nv;
	size_t			 cap;

	if (t->failed)
		return;
	if (state_shops_add(t->shops, w->shop, 1) == -1)
		goto fail;
	if (t->n == t->cap) {
		cap = t->cap ? 2 * t->cap : 256;
		if ((nv = realloc(t->v, cap * sizeof(*nv))) == NULL)
			goto fail;
		t->v = nv;
		t->cap = cap;
	}
	t->v[t->n++] = *w;
	return;
fail:
	t->failed = 1;
}

static int
state_by_wait(const void *a, const void *b)
{
	const struct sla_waiting *x = a, *y = b;

	return x->waited_ms < y->waited_ms ? 1 : x->waited_ms > y->waited_ms ?
	    -1 : 0;
}

int
state_waiting_doc(struct sbuf *out, const struct sla *s, int64_t now,
    const struct state_origin *o)
{
	struct state_top	 t = { .v = NULL };
	const struct sla_waiting *w;
	json_t			*rounds = NULL, *kept = NULL, *r;
	size_t			 i;
	int			 rc = -1;

	if ((t.shops = json_object()) == NULL || (kept = json_object()) == NULL ||
	    (rounds = json_array()) == NULL)
		goto out;
	/* the strings stay the engine's: nothing changes it meanwhile */
	sla_waiting(s, now, state_top_add, &t);
	if (t.failed)
		goto out;
	if (t.n > 1)		/* t.v is NULL when nothing waits */
		qsort(t.v, t.n, sizeof(*t.v), state_by_wait);
	/*
	 * The longest of each shop, as many as the feed shows of a shop: the
	 * dashboard's merge of every instance's then has each shop's longest
	 * whatever another shop's customers have waited
	 */
	for (i = 0; i < t.n; i++) {
		w = &t.v[i];
		if (json_integer_value(json_object_get(kept, w->shop != NULL ?
		    w->shop : "")) >= STATE_FEED_WAITING_MAX)
			continue;
		/* NULL for an id that is not UTF-8: JSON cannot carry it */
		if ((r = json_pack("{s:s%, s:s, s:I, s:I, s:I, s:b, s:s}",
		    "conversation", w->conversation, w->conversation_len,
		    "agent", w->agent,
		    "opened", (json_int_t)w->opened,
		    "waited_ms", (json_int_t)w->waited_ms,
		    "threshold_ms", (json_int_t)w->threshold_ms,
		    "first", w->first,
		    "state", state_round_names[w->state])) == NULL)
			continue;
		if (state_set_shop(r, w->shop, w->queue) == -1 ||
		    state_shops_add(kept, w->shop, 1) == -1) {
			json_decref(r);
			goto out;
		}
		if (json_array_append_new(rounds, r) == -1)
			goto out;
	}
	rc = jsonw_dump(out, json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:O, s:O}",
	    "v", 1, "instance", o->instance, "host", o->host,
	    "pid", (json_int_t)o->pid, "ts", (json_int_t)now,
	    "total", (json_int_t)t.n, "shops", t.shops, "rounds", rounds));
out:
	free(t.v);
	json_decref(t.shops);
	json_decref(kept);
	json_decref(rounds);
	return rc;
}

int
state_open_doc(struct sbuf *out, const struct state_open *v, size_t n,
    uint64_t total, json_t *shops, int64_t now, const struct sla_config *cfg,
    const struct sla_policy *pol, size_t npol)
{
	json_t			*rounds, *r;
	enum sla_round_state	 st;
	size_t			 i;

	if ((rounds = json_array()) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		st = v[i].fired & (1u << SLA_ESCALATE) ? SLA_ROUND_ESCALATED :
		    v[i].fired & (1u << SLA_BREACH) ? SLA_ROUND_BREACHED :
		    v[i].fired & (1u << SLA_WARN) ? SLA_ROUND_WARNED :
		    SLA_ROUND_OPEN;
		/* NULL for an id that is not UTF-8: JSON cannot carry it */
		if ((r = json_pack("{s:s%, s:s, s:s, s:I, s:I, s:I, s:b, s:s}",
		    "conversation", v[i].conversation, v[i].conversation_len,
		    "agent", v[i].agent,
		    "instance", v[i].instance[0] ? v[i].instance : STATE_REDIS,
		    "opened", (json_int_t)v[i].opened,
		    /* a shop's own service hours stop its clocks */
		    "waited_ms", (json_int_t)sla_service_ms(state_policy(cfg,
		    pol, npol, v[i].shop, v[i].queue), v[i].opened, now),
		    "threshold_ms", (json_int_t)v[i].threshold_ms,
		    "first", v[i].first,
		    "state", state_round_names[st])) != NULL &&
		    state_set_shop(r, v[i].shop, v[i].queue) == 0)
			json_array_append_new(rounds, r);
		else
			json_decref(r);
	}
	return jsonw_dump(out, json_pack("{s:i, s:s, s:I, s:I, s:o, s:o}",
	    "v", 1, "instance", STATE_REDIS, "ts", (json_int_t)now,
	    "total", (json_int_t)total, "shops", shops != NULL ?
	    json_incref(shops) : json_object(), "rounds", rounds));
}

json_t *
state_day_json(const struct sla_day *d)
{
	json_t			*hist, *hours, *o;
	const struct sla_sums	*u = d->sums;
	size_t			 i;

	if ((hist = json_array()) == NULL || (hours = json_array()) == NULL) {
		json_decref(hist);
		return NULL;
	}
	/* [seconds, rounds]: the documents keep seconds, whatever the slots */
	for (i = 0; i < u->nhist; i++)
		if (u->hist[i] > 0 && json_array_append_new(hist, json_pack("[I, I]",
		    (json_int_t)sla_hist_seconds(i), (json_int_t)u->hist[i])) == -1)
			goto err;
	for (i = 0; i < 24; i++)
		if (d->hour_rounds[i] > 0 && json_array_append_new(hours,
		    json_pack("[I, I, I]", (json_int_t)i, (json_int_t)d->hour_rounds[i],
		    (json_int_t)d->hour_sum_ms[i])) == -1)
			goto err;
	o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}",
	    "rounds", (json_int_t)u->rounds,
	    "answered", (json_int_t)u->answered,
	    "sum_ms", (json_int_t)u->sum_ms,
	    "first_rounds", (json_int_t)u->first_rounds,
	    "first_sum_ms", (json_int_t)u->first_sum_ms,
	    "within_rate", (json_int_t)u->within_rate,
	    "breaches", (json_int_t)u->breaches,
	    "escalations", (json_int_t)u->escalations,
	    "hist", hist, "hours", hours);
	/* rate_base only where it is not every round: the documents as before */
	if (o != NULL && u->rate_base != u->rounds &&
	    json_object_set_new(o, "rate_base", json_integer((json_int_t)
	    u->rate_base)) == -1) {
		json_decref(o);
		return NULL;
	}
	return o;
err:
	json_decref(hist);
	json_decref(hours);
	return NULL;
}

/* What state_add_agent fills. */
struct state_agents_ctx {
	json_t			*agents;	/* of no shop */
	json_t			*shops;		/* {shop: {cap_ms, rate_ms, agents, queues}} */
	const struct sla_config	*cfg;
	const struct sla_policy	*pol;
	size_t			 npol;
	int			 failed;
};

/* The {cap_ms, rate_ms, agents} of (shop, queue) in parent under key, made when new. */
static json_t *
state_group(struct state_agents_ctx *c, json_t *parent, const char *key,
    const char *shop, const char *queue)
{
	const struct sla_config	*p;
	json_t			*g;

	if ((g = json_object_get(parent, key)) != NULL)
		return g;
	/* each shop's figures are capped by its own cap: the merge must know it */
	p = state_policy(c->cfg, c->pol, c->npol, shop, queue);
	if ((g = json_pack("{s:I, s:I, s:{}}", "cap_ms", (json_int_t)p->cap_ms,
	    "rate_ms", (json_int_t)p->rate_ms, "agents")) == NULL ||
	    json_object_set_new(parent, key, g) == -1)
		return NULL;
	return g;
}

static void
state_add_agent(const struct sla_account *w, const struct sla_day *d, void *arg)
{
	struct state_agents_ctx	*c = arg;
	json_t			*into = c->agents, *g, *qs;

	if (w->shop[0] != '\0') {
		if ((g = state_group(c, c->shops, w->shop, w->shop, "")) == NULL)
			goto err;
		into = json_object_get(g, "agents");
		if (w->queue[0] != '\0') {
			if ((qs = json_object_get(g, "queues")) == NULL &&
			    (json_object_set_new(g, "queues", json_object()) == -1 ||
			    (qs = json_object_get(g, "queues")) == NULL))
				goto err;
			if ((g = state_group(c, qs, w->queue, w->shop, w->queue)) == NULL)
				goto err;
			into = json_object_get(g, "agents");
		}
	}
	/* an agent id that is not UTF-8 cannot be a key: it is left out */
	json_object_set_new(into, w->agent, state_day_json(d));
	return;
err:
	c->failed = 1;
}

int
state_agents_doc(struct sbuf *out, const struct sla *s, int64_t now,
    const struct state_origin *o, const struct sla_config *cfg,
    const struct sla_policy *pol, size_t npol)
{
	struct state_agents_ctx	 c = { .cfg = cfg, .pol = pol, .npol = npol };
	json_t			*doc;
	char			 day[16];

	if ((c.agents = json_object()) == NULL || (c.shops = json_object()) == NULL) {
		json_decref(c.agents);
		return -1;
	}
	state_day(day, now, cfg->utc_offset_min);
	sla_agents_day(s, now, state_add_agent, &c);
	if (c.failed) {
		json_decref(c.agents);
		json_decref(c.shops);
		return -1;
	}
	doc = json_pack("{s:i, s:s, s:I, s:s, s:i, s:I, s:I, s:o}",
	    "v", 1, "instance", o->instance, "ts", (json_int_t)now, "day", day,
	    "tz_offset_min", (int)cfg->utc_offset_min,
	    "cap_ms", (json_int_t)cfg->cap_ms, "rate_ms", (json_int_t)cfg->rate_ms,
	    "agents", c.agents);
	/* as chatmon replay's summary: "shops" only once a shop was seen */
	if (doc != NULL && json_object_size(c.shops) > 0 &&
	    json_object_set(doc, "shops", c.shops) == -1) {
		json_decref(doc);
		doc = NULL;
	}
	json_decref(c.shops);
	return jsonw_dump(out, doc);
}

/* --- the dashboard's side: merging --------------------------------------- */

/* A document, if it is one: an object of version 1. */
static json_t *
state_parse(const char *doc, size_t len)
{
	/* a conversation id from a chat frame may hold U+0000 */
	json_t	*o = json_loadb(doc, len, JSON_ALLOW_NUL, NULL);

	if (o != NULL && (!json_is_object(o) ||
	    json_integer_value(json_object_get(o, "v")) != 1)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

/* A non-negative integer field, or def. */
static uint64_t
state_uint(const json_t *o, const char *key, uint64_t def)
{
	const json_t	*v = json_object_get(o, key);

	return json_is_integer(v) && json_integer_value(v) >= 0 ?
	    (uint64_t)json_integer_value(v) : def;
}

static const char *
state_str(const json_t *o, const char *key, const char *def)
{
	const json_t	*v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : def;
}

struct state_round {
	json_t		*o;		/* borrowed from its document */
	const char	*instance;
	uint64_t	 waited;	/* carried on to now */
};

static int
state_round_cmp(const void *a, const void *b)
{
	const struct state_round *x = a, *y = b;

	return x->waited < y->waited ? 1 : x->waited > y->waited ? -1 : 0;
}

static const char *
state_round_state(const json_t *o)
{
	const char	*s = state_str(o, "state", "");
	size_t		 i;

	for (i = 0; i < UTIL_NELEM(state_round_names); i++)
		if (strcmp(s, state_round_names[i]) == 0)
			return s;
	return "open";
}

/*
 * A document's count of each shop's rounds into shops: its own "shops"
 * when it has them (all its rounds, past the ones it lists), else the
 * rounds it lists (an instance of before shops were counted). 0 or -1.
 */
static int
state_shops_of(json_t *shops, const json_t *doc, const json_t *ra)
{
	const json_t	*own = json_object_get(doc, "shops"), *v;
	const char	*k;
	size_t		 i;

	if (json_is_object(own)) {
		json_object_foreach((json_t *)own, k, v)
			if (json_is_integer(v) && json_integer_value(v) > 0 &&
			    state_shops_add(shops, k,
			    (uint64_t)json_integer_value(v)) == -1)
				return -1;
		return 0;
	}
	json_array_foreach(ra, i, v)
		if (json_is_object(v) &&
		    state_shops_add(shops, state_str(v, "shop", ""), 1) == -1)
			return -1;
	return 0;
}

int
state_waiting_msg(struct sbuf *out, const char *const *docs,
    const size_t *lens, size_t n, int64_t now, size_t *bad)
{
	json_t			**parsed, *rounds = NULL, *r, *ra, *seen = NULL;
	json_t			*shops = NULL, *kept = NULL, *c;
	struct state_round	*v = NULL;
	const char		*inst, *shop;
	size_t			 i, k, nv = 0, cap = 0;
	uint64_t		 total = 0, ts;
	int			 rc = -1;

	/* the instances named, as the keys of an object */
	if ((seen = json_object()) == NULL || (shops = json_object()) == NULL ||
	    (kept = json_object()) == NULL ||
	    (parsed = calloc(n ? n : 1, sizeof(*parsed))) == NULL) {
		json_decref(seen);
		json_decref(shops);
		json_decref(kept);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((parsed[i] = state_parse(docs[i], lens[i])) == NULL ||
		    !json_is_array(ra = json_object_get(parsed[i], "rounds")) ||
		    !json_is_string(json_object_get(parsed[i], "instance"))) {
			(*bad)++;
			continue;
		}
		inst = json_string_value(json_object_get(parsed[i], "instance"));
		if (strcmp(inst, STATE_REDIS) != 0)
			json_object_set_new(seen, inst, json_true());
		total += state_uint(parsed[i], "total", json_array_size(ra));
		if (state_shops_of(shops, parsed[i], ra) == -1)
			goto out;
		ts = state_uint(parsed[i], "ts", (uint64_t)now);
		if (nv + json_array_size(ra) > cap) {
			struct state_round *nr;

			cap = (nv + json_array_size(ra)) * 2;
			if ((nr = realloc(v, cap * sizeof(*v))) == NULL)
				goto out;
			v = nr;
		}
		json_array_foreach(ra, k, r) {
			if (!json_is_object(r) ||
			    !json_is_string(json_object_get(r, "conversation")))
				continue;
			v[nv].o = r;
			/* Redis's rounds each name the instance that served them */
			v[nv].instance = json_is_string(json_object_get(r, "instance")) ?
			    json_string_value(json_object_get(r, "instance")) : inst;
			if (strcmp(v[nv].instance, STATE_REDIS) != 0)
				json_object_set_new(seen, v[nv].instance, json_true());
			v[nv].waited = state_uint(r, "waited_ms", 0) +
			    ((uint64_t)now > ts ? (uint64_t)now - ts : 0);
			nv++;
		}
	}
	if (nv > 1)			/* v is NULL when nothing waits */
		qsort(v, nv, sizeof(*v), state_round_cmp);
	if ((rounds = json_array()) == NULL)
		goto out;
	/*
	 * The longest of each shop, not of all: a page of one shop must see
	 * its own customers however long another shop's have waited
	 * (feed_scope_msg cuts what a page is sent)
	 */
	for (i = 0; i < nv; i++) {
		shop = state_str(v[i].o, "shop", "");
		c = json_object_get(kept, shop);
		if (json_integer_value(c) >= STATE_FEED_WAITING_MAX)
			continue;
		if (state_shops_add(kept, shop, 1) == -1)
			goto out;
		if ((r = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:s}",
		    "instance", v[i].instance,
		    "conversation", state_str(v[i].o, "conversation", ""),
		    "agent", state_str(v[i].o, "agent", ""),
		    "opened", (json_int_t)state_uint(v[i].o, "opened", 0),
		    "waited_ms", (json_int_t)v[i].waited,
		    "threshold_ms", (json_int_t)state_uint(v[i].o, "threshold_ms", 0),
		    "first", json_is_true(json_object_get(v[i].o, "first")),
		    "state", state_round_state(v[i].o))) == NULL)
			continue;
		if (state_set_shop(r, shop, state_str(v[i].o, "queue", "")) == -1) {
			json_decref(r);
			goto out;
		}
		if (json_array_append_new(rounds, r) == -1)	/* r went with it */
			goto out;
	}
	rc = jsonw_dump(out, json_pack("{s:s, s:I, s:I, s:I, s:O, s:o}",
	    "type", "waiting", "now", (json_int_t)now,
	    "instances", (json_int_t)json_object_size(seen),
	    "total", (json_int_t)total, "shops", shops, "rounds", rounds));
	rounds = NULL;
out:
	json_decref(rounds);
	json_decref(seen);
	json_decref(shops);
	json_decref(kept);
	for (i = 0; i < n; i++)
		json_decref(parsed[i]);
	free(parsed);
	free(v);
	return rc;
}

/* One (shop, queue, agent) being summed. */
struct state_acc {
	const char	*shop, *queue, *agent;	/* borrowed from a document */
	uint64_t	 cap_ms;		/* its group's, the longest of the documents' */
	struct sla_sums	 sums;
	uint32_t	 hour_rounds[24];
	uint64_t	 hour_sum_ms[24];
};

static int
state_acc_cmp(const void *a, const void *b)
{
	const struct state_acc	*x = a, *y = b;
	int			 c;

	/* no shop first, as the engine lists them */
	if ((c = strcmp(x->shop, y->shop)) != 0 ||
	    (c = strcmp(x->queue, y->queue)) != 0)
		return c;
	return strcmp(x->agent, y->agent);
}

void
state_day_add(const json_t *a, struct sla_sums *u, uint32_t hour_rounds[24],
    uint64_t hour_sum_ms[24])
{
	const json_t	*e;
	size_t		 i;
	uint64_t	 sec, h;

	u->rounds += state_uint(a, "rounds", 0);
	u->answered += state_uint(a, "answered", 0);
	u->sum_ms += state_uint(a, "sum_ms", 0);
	u->first_rounds += state_uint(a, "first_rounds", 0);
	u->first_sum_ms += state_uint(a, "first_sum_ms", 0);
	u->within_rate += state_uint(a, "within_rate", 0);
	/* a day written before rates had other bases counted every round */
	u->rate_base += state_uint(a, "rate_base", state_uint(a, "rounds", 0));
	u->breaches += state_uint(a, "breaches", 0);
	u->escalations += state_uint(a, "escalations", 0);
	json_array_foreach(json_object_get(a, "hist"), i, e) {
		if (u->nhist == 0)
			break;		/* the caller reads it its own way */
		if (json_array_size(e) != 2 ||
		    json_integer_value(json_array_get(e, 0)) < 0 ||
		    json_integer_value(json_array_get(e, 1)) < 0)
			continue;
		sec = sla_hist_slot((uint64_t)json_integer_value(json_array_get(e, 0)));
		u->hist[sec < u->nhist ? sec : u->nhist - 1] +=
		    (uint32_t)json_integer_value(json_array_get(e, 1));
	}
	json_array_foreach(json_object_get(a, "hours"), i, e) {
		if (json_array_size(e) != 3 ||
		    json_integer_value(json_array_get(e, 0)) < 0 ||
		    (h = (uint64_t)json_integer_value(json_array_get(e, 0))) >= 24 ||
		    json_integer_value(json_array_get(e, 1)) < 0 ||
		    json_integer_value(json_array_get(e, 2)) < 0)
			continue;
		hour_rounds[h] += (uint32_t)json_integer_value(json_array_get(e, 1));
		hour_sum_ms[h] += (uint64_t)json_integer_value(json_array_get(e, 2));
	}
}

void
state_agents_free(struct state_agent *v, size_t n)
{
	size_t	i;

	for (i = 0; i < n && v != NULL; i++) {
		free(v[i].agent);
		free(v[i].shop);
		free(v[i].queue);
	}
	free(v);
}

/* What the merge keeps while it reads the documents. */
struct state_merge {
	struct state_acc	*acc;
	size_t			 n, cap, nhist;
	json_t			*index;		/* {"shop\x1fqueue\x1fagent": position} */
};

/* The cap of a group of a document: its own, else the document's. */
static uint64_t
state_group_cap(const json_t *g, uint64_t def)
{
	return state_uint(g, "cap_ms", def);
}

/* The longest cap of a document, its shops' and queues' included: it sizes the histograms. */
static uint64_t
state_doc_cap(const json_t *doc)
{
	uint64_t	 m = state_uint(doc, "cap_ms", 0), c;
	const char	*k, *qk;
	json_t		*g, *q;

	json_object_foreach(json_object_get(doc, "shops"), k, g) {
		if ((c = state_group_cap(g, 0)) > m)
			m = c;
		json_object_foreach(json_object_get(g, "queues"), qk, q)
			if ((c = state_group_cap(q, 0)) > m)
				m = c;
	}
	return m;
}

/* The agents of one group ({agent: day}) of (shop, queue) into m; 0 or -1 on ENOMEM. */
static int
state_merge_group(struct state_merge *m, const json_t *agents, const char *shop,
    const char *queue, uint64_t cap_ms)
{
	struct state_acc	*na, *a;
	struct sbuf		 key;
	const char		*name;
	json_t			*d, *ix;
	int			 rc = -1;

	sbuf_init(&key);
	json_object_foreach((json_t *)agents, name, d) {
		if (!json_is_object(d))
			continue;
		sbuf_reset(&key);
		if (sbuf_printf(&key, "%s\x1f%s\x1f%s", shop, queue, name) == -1)
			goto out;
		if ((ix = json_object_get(m->index, sbuf_str(&key))) != NULL) {
			a = &m->acc[json_integer_value(ix)];
			if (cap_ms > a->cap_ms)
				a->cap_ms = cap_ms;
			state_day_add(d, &a->sums, a->hour_rounds, a->hour_sum_ms);
			continue;
		}
		if (m->n == m->cap) {
			if ((na = reallocarray(m->acc, m->cap ? m->cap * 2 : 16,
			    sizeof(*na))) == NULL)
				goto out;
			m->acc = na;
			m->cap = m->cap ? m->cap * 2 : 16;
		}
		a = &m->acc[m->n];
		memset(a, 0, sizeof(*a));
		a->shop = shop;
		a->queue = queue;
		a->agent = name;
		a->cap_ms = cap_ms;
		a->sums.nhist = m->nhist;
		if ((a->sums.hist = calloc(m->nhist, sizeof(uint32_t))) == NULL)
			goto out;
		m->n++;
		if (json_object_set_new(m->index, sbuf_str(&key),
		    json_integer((json_int_t)(m->n - 1))) == -1)
			goto out;
		state_day_add(d, &a->sums, a->hour_rounds, a->hour_sum_ms);
	}
	rc = 0;
out:
	sbuf_free(&key);
	return rc;
}

/* Every group of a document into m: no shop, each shop's own, each of its queues. */
static int
state_merge_doc(struct state_merge *m, const json_t *doc)
{
	uint64_t	 cap = state_uint(doc, "cap_ms", 0), scap;
	const char	*shop, *queue;
	json_t		*g, *q;

	if (state_merge_group(m, json_object_get(doc, "agents"), "", "", cap) == -1)
		return -1;
	json_object_foreach(json_object_get(doc, "shops"), shop, g) {
		if (!json_is_object(g) || shop[0] == '\0')
			continue;
		scap = state_group_cap(g, cap);
		if (json_is_object(json_object_get(g, "agents")) &&
		    state_merge_group(m, json_object_get(g, "agents"), shop, "",
		    scap) == -1)
			return -1;
		json_object_foreach(json_object_get(g, "queues"), queue, q)
			if (json_is_object(q) && queue[0] != '\0' &&
			    json_is_object(json_object_get(q, "agents")) &&
			    state_merge_group(m, json_object_get(q, "agents"), shop,
			    queue, state_group_cap(q, scap)) == -1)
				return -1;
	}
	return 0;
}

int
state_agents_merge(const char *const *docs, const size_t *lens, size_t n,
    const char *day, struct state_agent **agents, size_t *nagents, size_t *bad)
{
	struct state_merge	 m = { 0 };
	json_t			**parsed;
	struct state_agent	*res = NULL;
	size_t			 i, k;
	uint64_t		 cap_ms = 0, c;
	int			 rc = -1;

	*agents = NULL;
	*nagents = 0;
	if ((parsed = calloc(n ? n : 1, sizeof(*parsed))) == NULL ||
	    (m.index = json_object()) == NULL)
		goto out;
	/* the longest cap of them all sizes the histograms */
	for (i = 0; i < n; i++) {
		if ((parsed[i] = state_parse(docs[i], lens[i])) == NULL ||
		    !json_is_object(json_object_get(parsed[i], "agents"))) {
			json_decref(parsed[i]);
			parsed[i] = NULL;
			(*bad)++;
			continue;
		}
		if (strcmp(state_str(parsed[i], "day", ""), day) != 0) {
			json_decref(parsed[i]);
			parsed[i] = NULL;
			continue;
		}
		if ((c = state_doc_cap(parsed[i])) > cap_ms)
			cap_ms = c;
	}
	/* as the engine's: the slots of whole seconds up to the cap, the cap included */
	m.nhist = sla_hist_slot(((cap_ms < STATE_DAY_MS ? cap_ms : STATE_DAY_MS) + 999) /
	    1000) + 1;
	for (i = 0; i < n; i++)
		if (parsed[i] != NULL && state_merge_doc(&m, parsed[i]) == -1)
			goto out;
	/* sorted after summing: the index holds positions */
	if (m.n > 1)			/* acc is NULL without agents */
		qsort(m.acc, m.n, sizeof(*m.acc), state_acc_cmp);
	if (m.n > 0 && (res = calloc(m.n, sizeof(*res))) == NULL)
		goto out;
	for (i = 0; i < m.n; i++) {
		if ((res[i].agent = strdup(m.acc[i].agent)) == NULL ||
		    (res[i].shop = strdup(m.acc[i].shop)) == NULL ||
		    (res[i].queue = strdup(m.acc[i].queue)) == NULL)
			goto out;
		/* each group's figures under its own cap, as its engine made them */
		sla_sums_figures(&m.acc[i].sums, m.acc[i].cap_ms, &res[i].f);
		for (k = 0; k < 24; k++) {
			res[i].hour_rounds[k] = m.acc[i].hour_rounds[k];
			if (m.acc[i].hour_rounds[k] > 0)
				res[i].hour_mean_ms[k] = (m.acc[i].hour_sum_ms[k] +
				    m.acc[i].hour_rounds[k] / 2) / m.acc[i].hour_rounds[k];
		}
	}
	*agents = res;
	*nagents = m.n;
	res = NULL;
	rc = 0;
out:
	state_agents_free(res, m.n);
	for (i = 0; i < m.n; i++)
		free(m.acc[i].sums.hist);
	free(m.acc);
	json_decref(m.index);
	for (i = 0; parsed != NULL && i < n; i++)
		json_decref(parsed[i]);
	free(parsed);
	return rc;
}
