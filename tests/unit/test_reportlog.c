/* test_reportlog: a log's rounds, SLA events and alerts, straight from an SLA engine's callbacks, charged per local day: each day's figures are the engine's own for that day, days outside the range and warnings are left out, --agent keeps one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "chatmon/report.h"
#include "chatmon/reportlog.h"
#include "chatmon/sla.h"

#define SEC	1000LL
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define DAY	(24 * HOUR)
#define D0	(1795305600000LL - 8 * HOUR)	/* 2026-11-22 00:00 at +08:00 */

static void
base_cfg(struct sla_config *c)
{
	memset(c, 0, sizeof(*c));
	c->first_response_ms = 15 * SEC;
	c->reply_ms = 30 * SEC;
	c->warn_at = 0.8;
	c->escalate_ms = 180 * SEC;
	c->idle_ms = 30 * MIN;
	c->cap_ms = 600 * SEC;
	c->rate_ms = 180 * SEC;
	c->utc_offset_min = 480;
}

/* The engine's callbacks, into the log's days, as replay's hooks do. */
static void
on_emit(const struct sla_event *e, void *arg)
{
	assert_int_equal(reportlog_event(arg, e), 0);
}

static void
on_round(const struct sla_round *r, void *arg)
{
	assert_int_equal(reportlog_round(arg, r), 0);
}

static void
turn(struct sla *s, const char *conv, const char *agent, int customer, int64_t t)
{
	assert_non_null(sla_turn(s, conv, strlen(conv), agent, NULL, NULL, customer, 1, t));
}

static void
hit(struct reportlog *rl, const char *agent, const char *action, int64_t at)
{
	json_t	*a;

	assert_non_null(a = json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s}]}",
	    "type", "rule.hit", "agent", agent, "category", "offplatform",
	    "action", action, "hits", "category", "offplatform", "action", action));
	assert_int_equal(reportlog_alert(rl, a, at), 0);
	json_decref(a);
}

static json_t *
to_json(const struct report *r, const char *from, const char *to)
{
	struct report_meta	 m = { from, to, NULL, 480, D0 };
	struct sbuf		 b;
	json_t			*o;

	sbuf_init(&b);
	assert_int_equal(report_json(&b, r, &m), 0);
	o = json_loads(sbuf_str(&b), 0, NULL);
	if (o == NULL)
		fail_msg("not JSON: %s", sbuf_str(&b));
	sbuf_free(&b);
	return o;
}

static json_int_t
num(const json_t *o, const char *k)
{
	const json_t	*v = json_object_get(o, k);

	if (!json_is_integer(v))
		fail_msg("%s is not an integer", k);
	return json_integer_value(v);
}

/* The engine's own figures of an agent. */
static struct sla_figures	got;
static const char		*want_agent;

static void
on_agent(const struct sla_account *w, const struct sla_figures *f, void *arg)
{
	const char	*agent = w->agent;
	(void)arg;
	if (strcmp(agent, want_agent) == 0)
		got = *f;
}

static struct sla_figures
fig(const struct sla *s, const char *agent)
{
	memset(&got, 0, sizeof(got));
	want_agent = agent;
	sla_agents(s, on_agent, NULL);
	return got;
}

static const json_t *
agent_of(const json_t *rep, const char *id)
{
	const json_t	*a;
	size_t		 i;

	json_array_foreach(json_object_get(rep, "agents"), i, a)
		if (strcmp(json_string_value(json_object_get(a, "agent")), id) == 0)
			return a;
	return NULL;
}

static void
test_days_of_a_log(void **state)
{
	struct sla_config	 cfg;
	struct sla		*s;
	struct reportlog	*rl;
	struct report		*r;
	struct sla_figures	 f;
	json_t			*o;
	const json_t		*a, *days;

	(void)state;
	base_cfg(&cfg);
	/* the 22nd and the 23rd; the 21st's last minute is outside */
	assert_non_null(rl = reportlog_new(&cfg, D0, D0 + DAY));
	assert_non_null(s = sla_new(&cfg, on_emit, NULL, rl));
	sla_set_round_cb(s, on_round, rl);
	turn(s, "c-0", "alice", 1, D0 - MIN);
	turn(s, "c-0", "alice", 0, D0 - MIN + 5 * SEC);		/* the 21st */
	turn(s, "c-1", "alice", 1, D0 + 10 * HOUR);
	turn(s, "c-1", "alice", 0, D0 + 10 * HOUR + 4 * SEC);	/* fast, first */
	turn(s, "c-1", "alice", 1, D0 + 10 * HOUR + MIN);
	turn(s, "c-1", "alice", 0, D0 + 10 * HOUR + MIN + 50 * SEC);	/* slow: breach */
	turn(s, "c-2", "bob", 1, D0 + 11 * HOUR);
	turn(s, "c-2", "bob", 0, D0 + 11 * HOUR + 8 * SEC);
	hit(rl, "bob", "block", D0 + 11 * HOUR + 9 * SEC);
	hit(rl, "bob", "warn", D0 - 1);					/* the 21st */
	/* the engine's figures so far are the 22nd's (and the 21st's round) */
	f = fig(s, "alice");
	turn(s, "c-3", "bob", 1, D0 + DAY + HOUR);
	turn(s, "c-3", "bob", 0, D0 + DAY + HOUR + 20 * SEC);		/* the 23rd */
	turn(s, "c-4", "bob", 1, D0 + 2 * DAY + HOUR);
	turn(s, "c-4", "bob", 0, D0 + 2 * DAY + HOUR + 20 * SEC);	/* the 24th */

	assert_non_null(r = reportlog_report(rl, NULL));
	o = to_json(r, "2026-11-22", "2026-11-23");
	assert_non_null(a = agent_of(o, "alice"));
	/* alice's 21st round is not in it: her figures less that one */
	assert_int_equal(num(a, "rounds"), f.rounds - 1);
	assert_int_equal(num(a, "rounds"), 2);
	assert_int_equal(num(a, "answered"), 2);
	assert_int_equal(num(a, "breaches"), f.breaches);
	assert_int_equal(num(a, "breaches"), 1);
	assert_int_equal(num(a, "mean_ms"), 27000);
	assert_int_equal(num(a, "first_rounds"), 1);
	assert_int_equal(num(a, "first_mean_ms"), 4000);
	assert_int_equal(num(a, "p90_ms"), 50000);
	assert_non_null(a = agent_of(o, "bob"));
	assert_int_equal(num(a, "rounds"), 2);			/* the 22nd and the 23rd */
	assert_int_equal(num(a, "alerts"), 1);
	assert_int_equal(num(a, "blocks"), 1);
	assert_int_equal(num(a, "false_positives"), 0);
	assert_int_equal(num(json_object_get(o, "team"), "rounds"), 4);
	/* alice's, and bob's first response of the 23rd (20 s) */
	assert_int_equal(num(json_object_get(o, "team"), "breaches"), 2);
	days = json_object_get(o, "days");
	assert_int_equal(json_array_size(days), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(days, 1),
	    "day")), "2026-11-23");
	assert_int_equal(num(json_array_get(days, 0), "rounds"), 3);
	assert_int_equal(num(json_array_get(days, 1), "rounds"), 1);
	assert_int_equal(num(json_array_get(days, 1), "breaches"), 1);
	assert_true(json_is_false(json_object_get(json_array_get(days, 0), "partial")));
	json_decref(o);
	report_free(r);

	/* asked again, for one agent: the days are as they were */
	assert_non_null(r = reportlog_report(rl, "bob"));
	o = to_json(r, "2026-11-22", "2026-11-23");
	assert_null(agent_of(o, "alice"));
	assert_int_equal(num(json_object_get(o, "team"), "rounds"), 2);
	assert_int_equal(num(json_object_get(o, "team"), "alerts"), 1);
	json_decref(o);
	report_free(r);
	sla_free(s);
	reportlog_free(rl);
}

/* A range of days with nothing in them: a row each, all zero. */
static void
test_empty_days(void **state)
{
	struct sla_config	 cfg;
	struct reportlog	*rl;
	struct report		*r;
	json_t			*o;

	(void)state;
	base_cfg(&cfg);
	assert_null(reportlog_new(&cfg, D0 + DAY, D0));
	assert_non_null(rl = reportlog_new(&cfg, D0, D0 + 6 * DAY));
	assert_non_null(r = reportlog_report(rl, NULL));
	o = to_json(r, "2026-11-22", "2026-11-28");
	assert_int_equal(json_array_size(json_object_get(o, "days")), 7);
	assert_int_equal(json_array_size(json_object_get(o, "agents")), 0);
	assert_int_equal(num(json_object_get(o, "team"), "rounds"), 0);
	json_decref(o);
	report_free(r);
	reportlog_free(rl);
	reportlog_free(NULL);
}

/* The engine's own figures of (agent, shop, queue). */
struct shop_want { const char *agent, *shop; struct sla_figures f; int found; };

static void
on_shop_agent(const struct sla_account *w, const struct sla_figures *f, void *arg)
{
	struct shop_want	*x = arg;

	if (strcmp(w->agent, x->agent) == 0 && strcmp(w->shop, x->shop) == 0 &&
	    w->queue[0] == '\0') {
		x->f = *f;
		x->found = 1;
	}
}

/*
 * One agent in two shops, tmall with a reply threshold of 10 s of its own:
 * the same 12 s first response is a breach in tmall, none in jd; each shop's
 * figures are the engine's for it, the agent's the two added; --shop.
 */
static void
test_shops_of_a_log(void **state)
{
	struct sla_config	 cfg;
	struct sla_policy	 pol;
	struct shop_want	 w;
	struct sla		*s;
	struct reportlog	*rl;
	struct report		*r;
	json_t			*o, *a;
	const json_t		*x;
	const char		*shops[] = { "tmall", "jd" };
	size_t			 i;

	(void)state;
	base_cfg(&cfg);
	pol.shop = "tmall";
	pol.queue = "";
	pol.cfg = cfg;
	pol.cfg.first_response_ms = 10 * SEC;
	pol.cfg.reply_ms = 10 * SEC;
	pol.cfg.cap_ms = 120 * SEC;
	assert_non_null(rl = reportlog_new(&cfg, D0, D0));
	reportlog_set_policies(rl, &pol, 1);
	assert_non_null(s = sla_new(&cfg, on_emit, NULL, rl));
	assert_int_equal(sla_set_policies(s, &pol, 1), 0);
	sla_set_round_cb(s, on_round, rl);
	assert_non_null(sla_turn(s, "t-1", 3, "alice", "tmall", "", 1, 1, D0 + 10 * HOUR));
	assert_non_null(sla_turn(s, "t-1", 3, "alice", "tmall", "", 0, 1,
	    D0 + 10 * HOUR + 12 * SEC));
	assert_non_null(sla_turn(s, "j-1", 3, "alice", "jd", "", 1, 1, D0 + 11 * HOUR));
	assert_non_null(sla_turn(s, "j-1", 3, "alice", "jd", "", 0, 1,
	    D0 + 11 * HOUR + 12 * SEC));
	turn(s, "n-1", "bob", 1, D0 + 12 * HOUR);
	turn(s, "n-1", "bob", 0, D0 + 12 * HOUR + 3 * SEC);
	assert_non_null(a = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "rule.hit",
	    "agent", "alice", "shop", "tmall", "category", "offplatform", "action",
	    "block"));
	assert_int_equal(reportlog_alert(rl, a, D0 + 10 * HOUR + 5 * SEC), 0);
	json_decref(a);

	assert_non_null(r = reportlog_report(rl, NULL));
	o = to_json(r, "2026-11-22", "2026-11-22");
	assert_int_equal(num(agent_of(o, "alice"), "rounds"), 2);
	assert_int_equal(num(agent_of(o, "alice"), "breaches"), 1);
	assert_int_equal(num(agent_of(o, "alice"), "alerts"), 1);
	for (i = 0; i < 2; i++) {
		memset(&w, 0, sizeof(w));
		w.agent = "alice";
		w.shop = shops[i];
		sla_agents(s, on_shop_agent, &w);
		assert_true(w.found);
		x = json_object_get(json_object_get(json_object_get(json_object_get(o,
		    "shops"), shops[i]), "agents"), "alice");
		assert_non_null(x);
		assert_int_equal(num(x, "rounds"), w.f.rounds);
		assert_int_equal(num(x, "breaches"), w.f.breaches);
		assert_int_equal(num(x, "mean_ms"), w.f.mean_ms);
		assert_int_equal(num(x, "within_rate"), w.f.within_rate);
		assert_int_equal(num(x, "alerts"), i == 0 ? 1 : 0);
	}
	assert_int_equal(num(json_object_get(json_object_get(json_object_get(o, "shops"),
	    "tmall"), "sla"), "cap_ms"), 120 * SEC);
	assert_int_equal(w.f.breaches, 0);		/* jd's: 12 s is within 15 s */
	assert_null(json_object_get(json_object_get(o, "shops"), ""));
	json_decref(o);
	report_free(r);

	/* --shop jd: alice's jd round only, no breach, no alert */
	assert_non_null(r = reportlog_report_shop(rl, NULL, "jd", NULL));
	o = to_json(r, "2026-11-22", "2026-11-22");
	assert_int_equal(num(json_object_get(o, "team"), "rounds"), 1);
	assert_int_equal(num(json_object_get(o, "team"), "breaches"), 0);
	assert_int_equal(num(json_object_get(o, "team"), "alerts"), 0);
	assert_null(agent_of(o, "bob"));
	json_decref(o);
	report_free(r);
	sla_free(s);
	reportlog_free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_days_of_a_log),
		cmocka_unit_test(test_empty_days),
		cmocka_unit_test(test_shops_of_a_log),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
