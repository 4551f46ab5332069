/* test_state: the documents chatmond writes for dashboards, and the dashboard's merge of several instances' documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "chatmon/sla.h"
#include "chatmon/state.h"

#define SEC	1000LL
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define T0	1795305600000LL		/* 2026-11-22 00:00:00 UTC */

static const struct state_origin origin_a = { "aaaa0001", "cs-01", 11 };
static const struct state_origin origin_b = { "bbbb0002", "cs-02", 22 };

static void
base_cfg(struct sla_config *c)
{
	memset(c, 0, sizeof(*c));
	c->first_response_ms = 15 * SEC;
	c->reply_ms = 30 * SEC;
	c->warn_at = 0.8;
	c->escalate_ms = 180 * SEC;
	c->idle_ms = 30 * 60 * SEC;
	c->cap_ms = 600 * SEC;
	c->rate_ms = 180 * SEC;
	c->utc_offset_min = 480;
}

static struct sla *
new_sla(const struct sla_config *c)
{
	struct sla	*s = sla_new(c, NULL, NULL, NULL);

	assert_non_null(s);
	return s;
}

static void
turn(struct sla *s, const char *id, const char *agent, int customer, int64_t t)
{
	assert_non_null(sla_turn(s, id, strlen(id), agent, NULL, NULL, customer, 1, t));
}

static json_t *
parse(const struct sbuf *b)
{
	json_error_t	 e;
	json_t		*o = json_loads(sbuf_str(b), 0, &e);

	if (o == NULL)
		fail_msg("not JSON: %s: %s", e.text, sbuf_str(b));
	return o;
}

static void
test_day(void **state)
{
	char	d[16];

	(void)state;
	assert_true(state_day(d, T0, 0) == T0);
	assert_string_equal(d, "2026-11-22");
	/* 23:59 in Beijing: that day began at 16:00 UTC the day before */
	assert_true(state_day(d, T0 + 15 * HOUR + 59 * MIN, 480) == T0 - 8 * HOUR);
	assert_string_equal(d, "2026-11-22");
	assert_true(state_day(d, T0 + 16 * HOUR, 480) == T0 + 16 * HOUR);	/* midnight there */
	assert_string_equal(d, "2026-11-23");
	/* 23:00 the day before at UTC-3 */
	assert_true(state_day(d, T0 + 2 * HOUR, -180) == T0 - 21 * HOUR);
	assert_string_equal(d, "2026-11-21");
	assert_true(state_day(d, -1, 0) == -STATE_DAY_MS);		/* before 1970 */
	assert_string_equal(d, "1969-12-31");
}

/* The longest waits first, a bounded number of them, all counted. */
static void
test_waiting_doc(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sbuf		 b;
	json_t			*o, *r;
	char			 id[32];
	size_t			 i, n = STATE_FEED_WAITING_MAX + 100;
	int64_t			 now = T0 + 2 * HOUR;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "c-%zu", i);
		turn(s, id, "", 1, T0 + (int64_t)i * SEC);	/* c-0 waits longest */
	}
	turn(s, "c-5", "alice", 0, T0 + 10 * SEC);	/* answered: not waiting */
	/* an id that is not UTF-8 cannot go into JSON: left out, still counted */
	assert_non_null(sla_turn(s, "\xff\xfe", 2, "bob", NULL, NULL, 1, 1, T0));
	sbuf_init(&b);
	assert_int_equal(state_waiting_doc(&b, s, now, &origin_a), 0);
	o = parse(&b);
	assert_int_equal(json_integer_value(json_object_get(o, "v")), 1);
	assert_string_equal(json_string_value(json_object_get(o, "instance")), "aaaa0001");
	assert_string_equal(json_string_value(json_object_get(o, "host")), "cs-01");
	assert_int_equal(json_integer_value(json_object_get(o, "ts")), now);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), n);
	/* the one that cannot be written does not take a place */
	assert_int_equal(json_array_size(json_object_get(o, "rounds")),
	    STATE_FEED_WAITING_MAX);
	r = json_array_get(json_object_get(o, "rounds"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "conversation")), "c-0");
	assert_int_equal(json_integer_value(json_object_get(r, "waited_ms")), 2 * HOUR);
	assert_int_equal(json_integer_value(json_object_get(r, "threshold_ms")), 15 * SEC);
	assert_true(json_is_true(json_object_get(r, "first")));
	/* the engine emitted nothing (no timers ran): still "open" */
	assert_string_equal(json_string_value(json_object_get(r, "state")), "open");
	for (i = 1; i < json_array_size(json_object_get(o, "rounds")); i++)
		assert_true(json_integer_value(json_object_get(json_array_get(
		    json_object_get(o, "rounds"), i - 1), "waited_ms")) >=
		    json_integer_value(json_object_get(json_array_get(
		    json_object_get(o, "rounds"), i), "waited_ms")));
	json_decref(o);
	sbuf_free(&b);
	sla_free(s);
}

/* Rounds of two instances, their waits carried on to now, longest first. */
static void
test_waiting_msg(void **state)
{
	struct sla_config	 cfg;
	struct sla		*a, *b;
	struct sbuf		 da, db, m;
	const char		*docs[4];
	size_t			 lens[4], bad = 0, i;
	json_t			*o, *r;
	char			 id[16];

	(void)state;
	base_cfg(&cfg);
	a = new_sla(&cfg);
	b = new_sla(&cfg);
	turn(a, "a-1", "alice", 1, T0);
	turn(b, "b-1", "bob", 1, T0 + 5 * SEC);
	for (i = 0; i < 300; i++) {
		snprintf(id, sizeof(id), "b-x%zu", i);
		turn(b, id, "bob", 1, T0 + 10 * SEC);
	}
	sbuf_init(&da);
	sbuf_init(&db);
	sbuf_init(&m);
	/* a wrote 20 s ago, b just now */
	assert_int_equal(state_waiting_doc(&da, a, T0 + 10 * SEC, &origin_a), 0);
	assert_int_equal(state_waiting_doc(&db, b, T0 + 30 * SEC, &origin_b), 0);
	docs[0] = sbuf_str(&da);
	docs[1] = sbuf_str(&db);
	docs[2] = "{\"v\":1,\"rounds\":\"no\"}";
	docs[3] = "not json";
	for (i = 0; i < 4; i++)
		lens[i] = strlen(docs[i]);
	assert_int_equal(state_waiting_msg(&m, docs, lens, 4, T0 + 30 * SEC, &bad), 0);
	assert_int_equal(bad, 2);
	o = parse(&m);
	assert_string_equal(json_string_value(json_object_get(o, "type")), "waiting");
	assert_int_equal(json_integer_value(json_object_get(o, "instances")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 302);
	assert_int_equal(json_array_size(json_object_get(o, "rounds")),
	    STATE_FEED_WAITING_MAX);
	r = json_array_get(json_object_get(o, "rounds"), 0);
	assert_string_equal(json_string_value(json_object_get(r, "conversation")), "a-1");
	assert_string_equal(json_string_value(json_object_get(r, "instance")), "aaaa0001");
	assert_string_equal(json_string_value(json_object_get(r, "agent")), "alice");
	assert_int_equal(json_integer_value(json_object_get(r, "waited_ms")), 30 * SEC);
	r = json_array_get(json_object_get(o, "rounds"), 1);
	assert_string_equal(json_string_value(json_object_get(r, "conversation")), "b-1");
	assert_int_equal(json_integer_value(json_object_get(r, "waited_ms")), 25 * SEC);
	json_decref(o);
	sbuf_free(&da);
	sbuf_free(&db);
	sbuf_free(&m);
	sla_free(a);
	sla_free(b);
}

/* A conversation id with U+0000 in it does not cost the instance its document. */
static void
test_waiting_nul(void **state)
{
	struct sbuf	 m;
	const char	*doc = "{\"v\":1,\"instance\":\"cccc0003\",\"ts\":1,"
	    "\"total\":1,\"rounds\":[{\"conversation\":\"c\\u0000x\","
	    "\"agent\":\"carol\",\"waited_ms\":1000}]}";
	size_t		 len = strlen(doc), bad = 0;
	json_t		*o;

	(void)state;
	sbuf_init(&m);
	assert_int_equal(state_waiting_msg(&m, &doc, &len, 1, 1, &bad), 0);
	assert_int_equal(bad, 0);
	o = json_loads(sbuf_str(&m), JSON_ALLOW_NUL, NULL);
	assert_non_null(o);
	assert_int_equal(json_array_size(json_object_get(o, "rounds")), 1);
	json_decref(o);
	sbuf_free(&m);
}

static void
agents_doc(struct sbuf *out, const struct sla *s, int64_t now,
    const struct state_origin *o, const struct sla_config *cfg)
{
	sbuf_init(out);
	assert_int_equal(state_agents_doc(out, s, now, o, cfg, NULL, 0), 0);
}

struct fig_find {
	const char		*agent;
	struct sla_figures	 f;
};

static void
fig_cb(const struct sla_account *w, const struct sla_figures *f, void *arg)
{
	const char	*agent = w->agent;
	struct fig_find	*ff = arg;

	if (strcmp(agent, ff->agent) == 0)
		ff->f = *f;
}

static struct sla_figures
figures_of(const struct sla *s, const char *agent)
{
	struct fig_find	ff;

	memset(&ff, 0, sizeof(ff));
	ff.agent = agent;
	sla_agents(s, fig_cb, &ff);
	return ff.f;
}

/*
 * Through JSON, two instances' days add up to what one engine that saw
 * every round reports; another day's documents and broken ones are left out.
 */
static void
test_agents_merge(void **state)
{
	struct sla_config	 cfg;
	struct sla		*one, *two, *both, *s;
	struct sbuf		 d1, d2, dold;
	struct state_agent	*ag;
	const char		*docs[5];
	size_t			 lens[5], n, bad = 0, i;
	struct sla_figures	 want;
	int64_t			 t = T0 + 2 * HOUR;	/* 10:00 in Beijing */
	char			 id[16];

	(void)state;
	base_cfg(&cfg);
	one = new_sla(&cfg);
	two = new_sla(&cfg);
	both = new_sla(&cfg);
	for (i = 0; i < 30; i++) {
		const char *agent = i % 4 == 0 ? "bob" : "alice";

		s = i % 3 ? one : two;
		snprintf(id, sizeof(id), "c-%zu", i);
		turn(s, id, agent, 1, t + (int64_t)i * MIN);
		turn(both, id, agent, 1, t + (int64_t)i * MIN);
		turn(s, id, agent, 0, t + (int64_t)i * MIN + (int64_t)i * 3 * SEC);
		turn(both, id, agent, 0, t + (int64_t)i * MIN + (int64_t)i * 3 * SEC);
	}
	agents_doc(&d1, one, t + HOUR, &origin_a, &cfg);
	agents_doc(&d2, two, t + HOUR, &origin_b, &cfg);
	/* another engine's rounds of yesterday (23:00 on 11-21 in Beijing) */
	s = new_sla(&cfg);
	turn(s, "old", "alice", 1, t - 11 * HOUR);
	turn(s, "old", "alice", 0, t - 11 * HOUR + 5 * SEC);
	agents_doc(&dold, s, t - 11 * HOUR + MIN, &origin_a, &cfg);
	sla_free(s);
	assert_non_null(strstr(sbuf_str(&dold), "\"day\":\"2026-11-21\""));
	assert_non_null(strstr(sbuf_str(&dold), "\"alice\""));
	docs[0] = sbuf_str(&d1);
	docs[1] = sbuf_str(&d2);
	docs[2] = sbuf_str(&dold);
	docs[3] = "{\"v\":2}";
	docs[4] = "{\"v\":1,\"day\":\"2026-11-22\",\"agents\":{\"eve\":{\"rounds\":-4,"
	    "\"hist\":[[1e9,\"x\"],[-1,2]],\"hours\":[[99,1,1],[3]]}}}";
	for (i = 0; i < 5; i++)
		lens[i] = strlen(docs[i]);
	assert_int_equal(state_agents_merge(docs, lens, 5, "2026-11-22", &ag, &n,
	    &bad), 0);
	assert_int_equal(bad, 1);
	assert_int_equal(n, 3);
	assert_string_equal(ag[0].agent, "alice");
	assert_string_equal(ag[1].agent, "bob");
	assert_string_equal(ag[2].agent, "eve");	/* nonsense counts as nothing */
	assert_int_equal(ag[2].f.rounds, 0);
	for (i = 0; i < 2; i++) {
		const struct sla_figures *f = &ag[i].f;
		size_t			 k;
		uint64_t		 hr = 0;

		/* both saw today's rounds only: its figures are the day's */
		want = figures_of(both, ag[i].agent);
		assert_true(want.rounds > 0);
		assert_int_equal(f->rounds, want.rounds);
		assert_int_equal(f->answered, want.answered);
		assert_int_equal(f->mean_ms, want.mean_ms);
		assert_int_equal(f->p90_ms, want.p90_ms);
		assert_int_equal(f->first_mean_ms, want.first_mean_ms);
		assert_int_equal(f->breaches, want.breaches);
		assert_true(f->rate == want.rate);
		for (k = 0; k < 24; k++)
			hr += ag[i].hour_rounds[k];
		assert_int_equal(hr, f->rounds);
		assert_int_equal(ag[i].hour_rounds[10], f->rounds);	/* all at 10:xx */
		assert_true(ag[i].hour_mean_ms[10] > 0);
	}
	state_agents_free(ag, n);
	sbuf_free(&d1);
	sbuf_free(&d2);
	sbuf_free(&dold);
	sla_free(one);
	sla_free(two);
	sla_free(both);
}

static void
shop_turn(struct sla *s, const char *id, const char *agent, const char *shop,
    const char *queue, int customer, int64_t t)
{
	assert_non_null(sla_turn(s, id, strlen(id), agent, shop, queue, customer,
	    1, t));
}

/* The figures of agent in (shop, queue) as the engine has them. */
struct fig_find3 {
	const char		*agent, *shop, *queue;
	struct sla_figures	 f;
	int			 found;
};

static void
fig3_cb(const struct sla_account *w, const struct sla_figures *f, void *arg)
{
	struct fig_find3	*ff = arg;

	if (strcmp(w->agent, ff->agent) == 0 && strcmp(w->shop, ff->shop) == 0 &&
	    strcmp(w->queue, ff->queue) == 0) {
		ff->f = *f;
		ff->found = 1;
	}
}

static struct sla_figures
figures3(const struct sla *s, const char *agent, const char *shop,
    const char *queue)
{
	struct fig_find3	ff;

	memset(&ff, 0, sizeof(ff));
	ff.agent = agent;
	ff.shop = shop;
	ff.queue = queue;
	sla_agents(s, fig3_cb, &ff);
	assert_true(ff.found);
	return ff.f;
}

/*
 * Shops: the document keeps each (shop, queue, agent) apart with its own
 * cap, and two instances' documents merge into each group's figures as one
 * engine with the same policies makes them; the no-shop agents stay
 * under "agents" as before.
 */
static void
test_agents_shops(void **state)
{
	struct sla_config	 cfg;
	struct sla_policy	 pol[2];
	struct sla		*one, *two, *both, *s;
	struct sbuf		 d1, d2;
	struct state_agent	*ag;
	const char		*docs[2];
	size_t			 lens[2], n, bad = 0, i;
	struct sla_figures	 want;
	int64_t			 t = T0 + 2 * HOUR;
	char			 id[16];
	json_t			*o, *g;

	(void)state;
	base_cfg(&cfg);
	/* tm counts a round at most 20 s, its presale queue 10 s */
	pol[0].shop = "tm";
	pol[0].queue = "";
	pol[0].cfg = cfg;
	pol[0].cfg.cap_ms = 20 * SEC;
	pol[1].shop = "tm";
	pol[1].queue = "presale";
	pol[1].cfg = cfg;
	pol[1].cfg.cap_ms = 10 * SEC;
	one = new_sla(&cfg);
	two = new_sla(&cfg);
	both = new_sla(&cfg);
	assert_int_equal(sla_set_policies(one, pol, 2), 0);
	assert_int_equal(sla_set_policies(two, pol, 2), 0);
	assert_int_equal(sla_set_policies(both, pol, 2), 0);
	for (i = 0; i < 24; i++) {
		/* alice serves all three; bob only tm's presale */
		const char *shop = i % 3 == 0 ? NULL : "tm";
		const char *queue = i % 3 == 2 ? "presale" : NULL;
		const char *agent = i % 6 == 5 ? "bob" : "alice";

		s = i % 2 ? one : two;
		snprintf(id, sizeof(id), "c-%zu", i);
		shop_turn(s, id, agent, shop, queue, 1, t + (int64_t)i * MIN);
		shop_turn(both, id, agent, shop, queue, 1, t + (int64_t)i * MIN);
		shop_turn(s, id, agent, shop, queue, 0, t + (int64_t)i * MIN +
		    (int64_t)i * 2 * SEC);
		shop_turn(both, id, agent, shop, queue, 0, t + (int64_t)i * MIN +
		    (int64_t)i * 2 * SEC);
	}
	sbuf_init(&d1);
	sbuf_init(&d2);
	assert_int_equal(state_agents_doc(&d1, one, t + HOUR, &origin_a, &cfg,
	    pol, 2), 0);
	assert_int_equal(state_agents_doc(&d2, two, t + HOUR, &origin_b, &cfg,
	    pol, 2), 0);
	/* the shape: "agents" of no shop, "shops" with each group's cap */
	o = parse(&d1);
	assert_non_null(json_object_get(json_object_get(o, "agents"), "alice"));
	assert_null(json_object_get(json_object_get(o, "agents"), "bob"));
	g = json_object_get(json_object_get(o, "shops"), "tm");
	assert_int_equal(json_integer_value(json_object_get(g, "cap_ms")), 20 * SEC);
	assert_non_null(json_object_get(json_object_get(g, "agents"), "alice"));
	g = json_object_get(json_object_get(g, "queues"), "presale");
	assert_int_equal(json_integer_value(json_object_get(g, "cap_ms")), 10 * SEC);
	assert_non_null(json_object_get(json_object_get(g, "agents"), "bob"));
	json_decref(o);

	docs[0] = sbuf_str(&d1);
	docs[1] = sbuf_str(&d2);
	lens[0] = d1.len;
	lens[1] = d2.len;
	assert_int_equal(state_agents_merge(docs, lens, 2, "2026-11-22", &ag, &n,
	    &bad), 0);
	assert_int_equal(bad, 0);
	/* no shop first, then tm's own, then tm's presale; agents in order within */
	assert_int_equal(n, 4);
	assert_string_equal(ag[0].shop, "");
	assert_string_equal(ag[0].agent, "alice");
	assert_string_equal(ag[1].shop, "tm");
	assert_string_equal(ag[1].queue, "");
	assert_string_equal(ag[1].agent, "alice");
	assert_string_equal(ag[2].queue, "presale");
	assert_string_equal(ag[2].agent, "alice");
	assert_string_equal(ag[3].queue, "presale");
	assert_string_equal(ag[3].agent, "bob");
	for (i = 0; i < n; i++) {
		want = figures3(both, ag[i].agent, ag[i].shop, ag[i].queue);
		assert_true(want.rounds > 0);
		assert_int_equal(ag[i].f.rounds, want.rounds);
		assert_int_equal(ag[i].f.mean_ms, want.mean_ms);
		assert_int_equal(ag[i].f.p90_ms, want.p90_ms);
		assert_int_equal(ag[i].f.first_mean_ms, want.first_mean_ms);
		assert_true(ag[i].f.rate == want.rate);
	}
	/* the caps made a difference: presale's p90 is at most its 10 s */
	assert_true(ag[2].f.p90_ms <= 10 * SEC);
	state_agents_free(ag, n);
	sbuf_free(&d1);
	sbuf_free(&d2);
	sla_free(one);
	sla_free(two);
	sla_free(both);
}

/* The policy of (shop, queue) as the engine picks it. */
static void
test_policy(void **state)
{
	struct sla_config	 cfg;
	struct sla_policy	 pol[3];

	(void)state;
	base_cfg(&cfg);
	memset(pol, 0, sizeof(pol));
	pol[0].shop = "jd";
	pol[0].queue = "after";
	pol[1].shop = "jd";
	pol[1].queue = "";
	pol[2].shop = "tm";
	pol[2].queue = "pre";
	assert_ptr_equal(state_policy(&cfg, pol, 3, "", ""), &cfg);
	assert_ptr_equal(state_policy(&cfg, pol, 3, NULL, NULL), &cfg);
	assert_ptr_equal(state_policy(&cfg, pol, 3, "jd", "after"), &pol[0].cfg);
	assert_ptr_equal(state_policy(&cfg, pol, 3, "jd", "other"), &pol[1].cfg);
	assert_ptr_equal(state_policy(&cfg, pol, 3, "jd", NULL), &pol[1].cfg);
	assert_ptr_equal(state_policy(&cfg, pol, 3, "tm", "pre"), &pol[2].cfg);
	assert_ptr_equal(state_policy(&cfg, pol, 3, "tm", ""), &cfg);
	assert_ptr_equal(state_policy(&cfg, pol, 3, "xx", "pre"), &cfg);
}

/*
 * An instance's document lists the longest of each shop, not of all (found
 * by review: 1 000 of one shop's longer waits left another shop's
 * customers out of the document, so the dashboard never showed them).
 */
static void
test_waiting_doc_each_shop(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sbuf		 b;
	json_t			*o, *rs, *shops;
	char			 id[32];
	size_t			 i, tm = 0, jd = 0, n = 1050;	/* the old cap was 1 000 */

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	for (i = 0; i < n; i++) {		/* tm's wait longest */
		snprintf(id, sizeof(id), "tm-%zu", i);
		shop_turn(s, id, "alice", "tm", NULL, 1, T0 + (int64_t)i * SEC);
	}
	for (i = 0; i < 3; i++) {
		snprintf(id, sizeof(id), "jd-%zu", i);
		shop_turn(s, id, "bob", "jd", NULL, 1, T0 + HOUR + (int64_t)i * SEC);
	}
	sbuf_init(&b);
	assert_int_equal(state_waiting_doc(&b, s, T0 + 2 * HOUR, &origin_a), 0);
	o = parse(&b);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), n + 3);
	shops = json_object_get(o, "shops");
	assert_int_equal(json_integer_value(json_object_get(shops, "tm")), n);
	assert_int_equal(json_integer_value(json_object_get(shops, "jd")), 3);
	rs = json_object_get(o, "rounds");
	for (i = 0; i < json_array_size(rs); i++) {
		const char *sh = json_string_value(json_object_get(
		    json_array_get(rs, i), "shop"));

		assert_non_null(sh);
		if (strcmp(sh, "tm") == 0)
			tm++;
		else if (strcmp(sh, "jd") == 0)
			jd++;
	}
	assert_int_equal(tm, STATE_FEED_WAITING_MAX);
	assert_int_equal(jd, 3);
	/* still longest first: tm-0 heads, jd's come after tm's */
	assert_string_equal(json_string_value(json_object_get(json_array_get(rs, 0),
	    "conversation")), "tm-0");
	assert_string_equal(json_string_value(json_object_get(json_array_get(rs,
	    STATE_FEED_WAITING_MAX), "conversation")), "jd-0");
	json_decref(o);
	sbuf_free(&b);
	sla_free(s);
}

/* Nothing waiting: an empty list (found by UBSan: qsort of no array). */
static void
test_waiting_doc_empty(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sbuf		 b;
	json_t			*o;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	sbuf_init(&b);
	assert_int_equal(state_waiting_doc(&b, s, T0, &origin_a), 0);
	o = parse(&b);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 0);
	assert_int_equal(json_array_size(json_object_get(o, "rounds")), 0);
	assert_int_equal(json_object_size(json_object_get(o, "shops")), 0);
	json_decref(o);
	sbuf_free(&b);
	sla_free(s);
}

/* Who waits carries the shop and queue, through the merge, only when set. */
static void
test_waiting_shops(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sbuf		 d, m;
	const char		*docs[1];
	size_t			 lens[1], bad = 0, i;
	json_t			*o, *r;
	int			 seen = 0;

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	shop_turn(s, "c1", "alice", "tm", "presale", 1, T0);
	shop_turn(s, "c2", "alice", NULL, NULL, 1, T0 + SEC);
	sbuf_init(&d);
	sbuf_init(&m);
	assert_int_equal(state_waiting_doc(&d, s, T0 + 5 * SEC, &origin_a), 0);
	docs[0] = sbuf_str(&d);
	lens[0] = d.len;
	assert_int_equal(state_waiting_msg(&m, docs, lens, 1, T0 + 6 * SEC, &bad), 0);
	o = parse(&m);
	json_array_foreach(json_object_get(o, "rounds"), i, r) {
		if (strcmp(json_string_value(json_object_get(r, "conversation")),
		    "c1") == 0) {
			assert_string_equal(json_string_value(json_object_get(r,
			    "shop")), "tm");
			assert_string_equal(json_string_value(json_object_get(r,
			    "queue")), "presale");
			seen++;
		} else {
			assert_null(json_object_get(r, "shop"));
			assert_null(json_object_get(r, "queue"));
			seen++;
		}
	}
	assert_int_equal(seen, 2);
	json_decref(o);
	sbuf_free(&d);
	sbuf_free(&m);
	sla_free(s);
}

/*
 * Each shop keeps its longest in the merged message and every round is
 * counted by its shop: 250 of jd's wait longer than 30 of tm's, and tm's
 * are all there (a page of tm is made of them: feed_scope_msg).
 */
static void
test_waiting_longest_of_each_shop(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct sbuf		 d, m;
	const char		*docs[2];
	size_t			 lens[2], bad = 0, i, tm = 0, jd = 0;
	json_t			*o, *r;
	char			 id[16];
	const char		*old = "{\"v\":1,\"instance\":\"old1\",\"ts\":1,"
	    "\"total\":2,\"rounds\":[{\"conversation\":\"o1\",\"agent\":\"x\","
	    "\"waited_ms\":1,\"shop\":\"tm\"}]}";

	(void)state;
	base_cfg(&cfg);
	s = new_sla(&cfg);
	for (i = 0; i < 250; i++) {
		snprintf(id, sizeof(id), "jd-%zu", i);
		shop_turn(s, id, "bob", "jd", NULL, 1, T0);
	}
	for (i = 0; i < 30; i++) {
		snprintf(id, sizeof(id), "tm-%zu", i);
		shop_turn(s, id, "alice", "tm", NULL, 1, T0 + MIN);
	}
	shop_turn(s, "none", "carol", NULL, NULL, 1, T0 + MIN);
	sbuf_init(&d);
	sbuf_init(&m);
	assert_int_equal(state_waiting_doc(&d, s, T0 + 2 * MIN, &origin_a), 0);
	o = parse(&d);
	r = json_object_get(o, "shops");
	assert_int_equal(json_integer_value(json_object_get(r, "jd")), 250);
	assert_int_equal(json_integer_value(json_object_get(r, "tm")), 30);
	assert_int_equal(json_integer_value(json_object_get(r, "")), 1);
	json_decref(o);
	docs[0] = sbuf_str(&d);
	lens[0] = d.len;
	/* an instance of before the counts: its listed rounds are counted */
	docs[1] = old;
	lens[1] = strlen(old);
	assert_int_equal(state_waiting_msg(&m, docs, lens, 2, T0 + 2 * MIN, &bad), 0);
	assert_int_equal(bad, 0);
	o = parse(&m);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 283);
	r = json_object_get(o, "shops");
	assert_int_equal(json_integer_value(json_object_get(r, "jd")), 250);
	assert_int_equal(json_integer_value(json_object_get(r, "tm")), 31);
	assert_int_equal(json_integer_value(json_object_get(r, "")), 1);
	json_array_foreach(json_object_get(o, "rounds"), i, r) {
		if (json_object_get(r, "shop") == NULL)
			continue;
		if (strcmp(json_string_value(json_object_get(r, "shop")), "tm") == 0)
			tm++;
		else
			jd++;
	}
	assert_int_equal(jd, STATE_FEED_WAITING_MAX);
	assert_int_equal(tm, 31);
	json_decref(o);
	sbuf_free(&d);
	sbuf_free(&m);
	sla_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_day),
		cmocka_unit_test(test_waiting_doc),
		cmocka_unit_test(test_waiting_doc_each_shop),
		cmocka_unit_test(test_waiting_doc_empty),
		cmocka_unit_test(test_waiting_msg),
		cmocka_unit_test(test_waiting_nul),
		cmocka_unit_test(test_agents_merge),
		cmocka_unit_test(test_agents_shops),
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_waiting_shops),
		cmocka_unit_test(test_waiting_longest_of_each_shop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
