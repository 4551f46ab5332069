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

/* The longest waits, as a min-heap of at most cap on waited_ms. */
struct state_top {
	struct sla_waiting	*v;
	size_t			 n, cap;
	uint64_t		 total;
};

static void
state_top_down(struct state_top *t, size_t i)
{
	struct sla_waiting	 x = t->v[i];
	size_t			 c;

	for (; (c = 2 * i + 1) < t->n; i = c) {
		if (c + 1 < t->n && t->v[c + 1].waited_ms < t->v[c].waited_ms)
			c++;
		if (t->v[c].waited_ms >= x.waited_ms)
			break;
		t->v[i] = t->v[c];
	}
	t->v[i] = x;
}

static void
state_top_add(const struct sla_waiting *w, void *arg)
{
	struct state_top	*t = arg;
	size_t			 i, p;

	t->total++;
	if (t->n < t->cap) {
		for (i = t->n++; i > 0 && t->v[p = (i - 1) / 2].waited_ms >
		    w->waited_ms; i = p)
			t->v[i] = t->v[p];
		t->v[i] = *w;
	} else if (t->cap > 0 && w->waited_ms > t->v[0].waited_ms) {
		t->v[0] = *w;
		state_top_down(t, 0);
	}
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
	struct state_top	 t = { .cap = STATE_WAITING_MAX };
	const struct sla_waiting *w;
	json_t			*rounds, *r;
	size_t			 i;

	if ((t.v = calloc(t.cap, sizeof(*t.v))) == NULL ||
	    (rounds = json_array()) == NULL) {
		free(t.v);
		return -1;
	}
	/* the strings stay the engine's: nothing changes it meanwhile */
	sla_waiting(s, now, state_top_add, &t);
	qsort(t.v, t.n, sizeof(*t.v), state_by_wait);
	for (i = 0; i < t.n; i++) {
		w = &t.v[i];
		/* NULL for an id that is not UTF-8: JSON cannot carry it */
		if ((r = json_pack("{s:s%, s:s, s:I, s:I, s:I, s:b, s:s}",
		    "conversation", w->conversation, w->conversation_len,
		    "agent", w->agent,
		    "opened", (json_int_t)w->opened,
		    "waited_ms", (json_int_t)w->waited_ms,
		    "threshold_ms", (json_int_t)w->threshold_ms,
		    "first", w->first,
		    "state", state_round_names[w->state])) != NULL)
			json_array_append_new(rounds, r);
	}
	free(t.v);
	return jsonw_dump(out, json_pack("{s:i, s:s, s:s, s:I, s:I, s:I, s:o}",
	    "v", 1, "instance", o->instance, "host", o->host,
	    "pid", (json_int_t)o->pid, "ts", (json_int_t)now,
	    "total", (json_int_t)t.total, "rounds", rounds));
}

int
state_open_doc(struct sbuf *out, const struct state_open *v, size_t n,
    uint64_t total, int64_t now, const struct sla_config *cfg)
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
		    "waited_ms", (json_int_t)sla_service_ms(cfg, v[i].opened, now),
		    "threshold_ms", (json_int_t)v[i].threshold_ms,
		    "first", v[i].first,
		    "state", state_round_names[st])) != NULL)
			json_array_append_new(rounds, r);
	}
	return jsonw_dump(out, json_pack("{s:i, s:s, s:I, s:I, s:o}",
	    "v", 1, "instance", STATE_REDIS, "ts", (json_int_t)now,
	    "total", (json_int_t)total, "rounds", rounds));
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
	for (i = 0; i < u->nhist; i++)
		if (u->hist[i] > 0 && json_array_append_new(hist, json_pack("[I, I]",
		    (json_int_t)i, (json_int_t)u->hist[i])) == -1)
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

static void
state_add_agent(const struct sla_account *w, const struct sla_day *d, void *arg)
{
	/* the snapshots are of one shop's settings: shops' figures come from Redis */
	if (w->shop[0] != '\0')
		return;
	/* an agent id that is not UTF-8 cannot be a key: it is left out */
	json_object_set_new(arg, w->agent, state_day_json(d));
}

int
state_agents_doc(struct sbuf *out, const struct sla *s, int64_t now,
    const struct state_origin *o, const struct sla_config *cfg)
{
	json_t	*agents;
	char	 day[16];

	if ((agents = json_object()) == NULL)
		return -1;
	state_day(day, now, cfg->utc_offset_min);
	sla_agents_day(s, now, state_add_agent, agents);
	return jsonw_dump(out, json_pack("{s:i, s:s, s:I, s:s, s:i, s:I, s:I, s:o}",
	    "v", 1, "instance", o->instance, "ts", (json_int_t)now, "day", day,
	    "tz_offset_min", (int)cfg->utc_offset_min,
	    "cap_ms", (json_int_t)cfg->cap_ms, "rate_ms", (json_int_t)cfg->rate_ms,
	    "agents", agents));
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

int
state_waiting_msg(struct sbuf *out, const char *const *docs,
    const size_t *lens, size_t n, int64_t now, size_t *bad)
{
	json_t			**parsed, *rounds = NULL, *r, *ra, *seen = NULL;
	struct state_round	*v = NULL;
	const char		*inst;
	size_t			 i, k, nv = 0, cap = 0;
	uint64_t		 total = 0, ts;
	int			 rc = -1;

	/* the instances named, as the keys of an object */
	if ((seen = json_object()) == NULL ||
	    (parsed = calloc(n ? n : 1, sizeof(*parsed))) == NULL) {
		json_decref(seen);
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
	for (i = 0; i < nv && i < STATE_FEED_WAITING_MAX; i++)
		json_array_append_new(rounds, json_pack(
		    "{s:s, s:s, s:s, s:I, s:I, s:I, s:b, s:s}",
		    "instance", v[i].instance,
		    "conversation", state_str(v[i].o, "conversation", ""),
		    "agent", state_str(v[i].o, "agent", ""),
		    "opened", (json_int_t)state_uint(v[i].o, "opened", 0),
		    "waited_ms", (json_int_t)v[i].waited,
		    "threshold_ms", (json_int_t)state_uint(v[i].o, "threshold_ms", 0),
		    "first", json_is_true(json_object_get(v[i].o, "first")),
		    "state", state_round_state(v[i].o)));
	rc = jsonw_dump(out, json_pack("{s:s, s:I, s:I, s:I, s:o}",
	    "type", "waiting", "now", (json_int_t)now,
	    "instances", (json_int_t)json_object_size(seen),
	    "total", (json_int_t)total, "rounds", rounds));
	rounds = NULL;
out:
	json_decref(rounds);
	json_decref(seen);
	for (i = 0; i < n; i++)
		json_decref(parsed[i]);
	free(parsed);
	free(v);
	return rc;
}

/* One agent being summed. */
struct state_acc {
	const char	*agent;		/* borrowed from a document */
	struct sla_sums	 sums;
	uint32_t	 hour_rounds[24];
	uint64_t	 hour_sum_ms[24];
};

static int
state_acc_cmp(const void *a, const void *b)
{
	return strcmp(((const struct state_acc *)a)->agent,
	    ((const struct state_acc *)b)->agent);
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
		if (json_array_size(e) != 2 ||
		    json_integer_value(json_array_get(e, 0)) < 0 ||
		    json_integer_value(json_array_get(e, 1)) < 0)
			continue;
		sec = (uint64_t)json_integer_value(json_array_get(e, 0));
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

/* Adds one agent's sums from a document into acc. */
static void
state_acc_add(struct state_acc *acc, const json_t *a)
{
	state_day_add(a, &acc->sums, acc->hour_rounds, acc->hour_sum_ms);
}

void
state_agents_free(struct state_agent *v, size_t n)
{
	size_t	i;

	for (i = 0; i < n && v != NULL; i++)
		free(v[i].agent);
	free(v);
}

int
state_agents_merge(const char *const *docs, const size_t *lens, size_t n,
    const char *day, struct state_agent **agents, size_t *nagents, size_t *bad)
{
	json_t			**parsed, *index = NULL, *a, *ix;
	struct state_acc	*acc = NULL, *na;
	struct state_agent	*res = NULL;
	const char		*name;
	size_t			 i, k, nacc = 0, cap = 0, nhist;
	uint64_t		 cap_ms = 0;
	int			 rc = -1;

	*agents = NULL;
	*nagents = 0;
	if ((parsed = calloc(n ? n : 1, sizeof(*parsed))) == NULL ||
	    (index = json_object()) == NULL)
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
		if (state_uint(parsed[i], "cap_ms", 0) > cap_ms)
			cap_ms = state_uint(parsed[i], "cap_ms", 0);
	}
	/* as the engine's: whole seconds up to the cap, the cap included */
	nhist = (size_t)(((cap_ms < STATE_DAY_MS ? cap_ms : STATE_DAY_MS) + 999) / 1000) + 1;
	for (i = 0; i < n; i++) {
		if (parsed[i] == NULL)
			continue;
		json_object_foreach(json_object_get(parsed[i], "agents"), name, a) {
			if (!json_is_object(a))
				continue;
			if ((ix = json_object_get(index, name)) != NULL) {
				state_acc_add(&acc[json_integer_value(ix)], a);
				continue;
			}
			if (nacc == cap) {
				cap = cap ? cap * 2 : 16;
				if ((na = realloc(acc, cap * sizeof(*acc))) == NULL)
					goto out;
				acc = na;
			}
			memset(&acc[nacc], 0, sizeof(acc[nacc]));
			acc[nacc].agent = name;
			acc[nacc].sums.nhist = nhist;
			if ((acc[nacc].sums.hist = calloc(nhist, sizeof(uint32_t))) == NULL)
				goto out;
			nacc++;
			if (json_object_set_new(index, name,
			    json_integer((json_int_t)(nacc - 1))) == -1)
				goto out;
			state_acc_add(&acc[nacc - 1], a);
		}
	}
	/* sorted after summing: the index holds positions */
	if (nacc > 1)			/* acc is NULL without agents */
		qsort(acc, nacc, sizeof(*acc), state_acc_cmp);
	if (nacc > 0 && (res = calloc(nacc, sizeof(*res))) == NULL)
		goto out;
	for (i = 0; i < nacc; i++) {
		if ((res[i].agent = strdup(acc[i].agent)) == NULL)
			goto out;
		sla_sums_figures(&acc[i].sums, cap_ms, &res[i].f);
		for (k = 0; k < 24; k++) {
			res[i].hour_rounds[k] = acc[i].hour_rounds[k];
			if (acc[i].hour_rounds[k] > 0)
				res[i].hour_mean_ms[k] = (acc[i].hour_sum_ms[k] +
				    acc[i].hour_rounds[k] / 2) / acc[i].hour_rounds[k];
		}
	}
	*agents = res;
	*nagents = nacc;
	res = NULL;
	rc = 0;
out:
	state_agents_free(res, nacc);
	for (i = 0; i < nacc; i++)
		free(acc[i].sums.hist);
	free(acc);
	json_decref(index);
	for (i = 0; parsed != NULL && i < n; i++)
		json_decref(parsed[i]);
	free(parsed);
	return rc;
}
