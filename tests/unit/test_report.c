/* test_report: chatmon report's aggregate: a day from the SLA engine's sums, days merged exactly, the stored document read back, and the JSON, CSV and HTML writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "chatmon/report.h"
#include "chatmon/sla.h"
#include "chatmon/state.h"

#define SEC	1000LL
#define MIN	(60 * SEC)
#define HOUR	(60 * MIN)
#define DAY	(24 * HOUR)
#define T0	1795305600000LL		/* 2026-11-22 00:00:00 UTC */
#define D0	(T0 - 8 * HOUR)		/* 2026-11-22 00:00 at +08:00 */

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

/* One round as the logs hold it: into the engine and the worst waits. */
struct round {
	const char	*agent, *conv;
	int64_t		 opened;
	int64_t		 ms;		/* -1: ended unanswered after 30 min */
	int		 first;
};

static void
charge(struct sla *s, struct report *r, const struct round *v, size_t n)
{
	struct sla_round	w = { 0 };
	size_t			i;

	for (i = 0; i < n; i++) {
		int64_t at = v[i].opened + (v[i].ms < 0 ? 30 * MIN : v[i].ms);

		w.agent = v[i].agent;
		w.conversation = v[i].conv;
		w.conversation_len = strlen(v[i].conv);
		w.answered = v[i].ms >= 0;
		w.opened = v[i].opened;
		w.at = at;
		w.first = v[i].first;
		sla_charge_round(s, &w);
		if (r == NULL)
			continue;
		w.waited_ms = (uint64_t)(at - v[i].opened);
		assert_int_equal(report_add_wait(r, &w), 0);
	}
}

static void
add_day_cb(const struct sla_account *w, const struct sla_day *d, void *arg)
{
	const char	*agent = w->agent;
	assert_int_equal(report_add_sums(arg, agent, d), 0);
}

/* A day's aggregate made as reportdb makes it: a fresh engine, the day's sums. */
static struct report *
make_day(const struct round *v, size_t n, int64_t day_start, struct sla *all)
{
	struct sla_config	 c;
	struct sla		*s;
	struct report		*r;

	base_cfg(&c);
	assert_non_null(s = sla_new(&c, NULL, NULL, NULL));
	assert_non_null(r = report_new(c.cap_ms, c.rate_ms));
	charge(s, r, v, n);
	if (all != NULL)
		charge(all, NULL, v, n);
	sla_agents_day(s, day_start, add_day_cb, r);
	sla_free(s);
	return r;
}

static json_t *
to_json(const struct report *r, const char *agent)
{
	struct report_meta	 m = { "2026-11-22", "2026-11-23", agent, 480, T0 };
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

static const json_t *
agent_of(const json_t *doc, const char *id)
{
	size_t		 i;
	const json_t	*a;

	json_array_foreach(json_object_get(doc, "agents"), i, a)
		if (strcmp(json_string_value(json_object_get(a, "agent")), id) == 0)
			return a;
	fail_msg("no agent %s", id);
	return NULL;
}

/* What the engine itself says of an agent over every round charged. */
struct want { const char *agent; struct sla_figures f; int found; };

static void
figs_cb(const struct sla_account *who, const struct sla_figures *f, void *arg)
{
	const char	*agent = who->agent;
	struct want	*w = arg;

	if (strcmp(agent, w->agent) == 0) {
		w->f = *f;
		w->found = 1;
	}
}

static void
assert_figures(const json_t *o, const struct sla_figures *f)
{
	assert_int_equal(num(o, "rounds"), f->rounds);
	assert_int_equal(num(o, "answered"), f->answered);
	assert_int_equal(num(o, "mean_ms"), f->mean_ms);
	assert_int_equal(num(o, "p90_ms"), f->p90_ms);
	assert_int_equal(num(o, "first_rounds"), f->first_rounds);
	assert_int_equal(num(o, "first_mean_ms"), f->first_mean_ms);
	assert_int_equal(num(o, "breaches"), f->breaches);
	assert_int_equal(num(o, "escalations"), f->escalations);
	assert_int_equal(num(o, "within_rate"), f->within_rate);
	/* rates are written to 10 significant digits (jsonw), as the dashboard's */
	assert_true(fabs(json_number_value(json_object_get(o, "rate")) - f->rate) < 1e-6);
}

static const struct round day1[] = {
	{ "alice", "c-1", D0 + 9 * HOUR, 5 * SEC, 1 },
	{ "alice", "c-1", D0 + 9 * HOUR + 10 * MIN, 12 * SEC + 1, 0 },
	{ "alice", "c-2", D0 + 10 * HOUR, 40 * SEC, 1 },
	{ "alice", "c-3", D0 + 10 * HOUR + 5 * MIN, -1, 1 },
	{ "bob", "c-4", D0 + 14 * HOUR, 200 * SEC, 1 },
	{ "bob", "c-5", D0 + 14 * HOUR + 1, 30 * SEC, 0 },
};
static const struct round day2[] = {
	{ "alice", "d-1", D0 + DAY + 9 * HOUR, 800 * SEC, 1 },
	{ "carol", "d-2", D0 + DAY + 11 * HOUR, 30 * SEC + 1, 1 },
	{ "bob", "d-3", D0 + DAY + 23 * HOUR, 3 * SEC, 0 },
};

/* The figures of a range are the engine's over the same rounds, to the unit; the 30 s rate from the histogram. */
static void
test_merge_matches_engine(void **state)
{
	struct sla_config	 c;
	struct sla		*all;
	struct report		*range, *a, *b;
	struct want		 w;
	json_t			*doc;
	const json_t		*o;
	const char		*ids[] = { "alice", "bob", "carol" };
	size_t			 i;

	(void)state;
	base_cfg(&c);
	assert_non_null(all = sla_new(&c, NULL, NULL, NULL));
	a = make_day(day1, sizeof(day1) / sizeof(day1[0]), D0, all);
	b = make_day(day2, sizeof(day2) / sizeof(day2[0]), D0 + DAY, all);
	sla_charge_event(all, "bob", NULL, NULL, SLA_BREACH, D0 + 14 * HOUR + 30 * SEC);
	assert_non_null(range = report_new(c.cap_ms, c.rate_ms));
	assert_int_equal(report_merge(range, a, "2026-11-22", 0), 0);
	assert_int_equal(report_merge(range, b, "2026-11-23", 1), 0);
	doc = to_json(range, NULL);
	for (i = 0; i < 3; i++) {
		w.agent = ids[i];
		w.found = 0;
		sla_agents(all, figs_cb, &w);
		assert_true(w.found);
		if (strcmp(ids[i], "bob") == 0)
			w.f.breaches = 0;	/* the event was charged to `all` only */
		assert_figures(agent_of(doc, ids[i]), &w.f);
	}
	/* alice: 5 s and 12.001 s within 30 s; 40 s, 800 s and unanswered not */
	o = agent_of(doc, "alice");
	assert_int_equal(num(o, "within_30s"), 2);
	assert_int_equal(num(agent_of(doc, "carol"), "within_30s"), 0);	/* 30.001 s */
	assert_int_equal(num(agent_of(doc, "bob"), "within_30s"), 2);	/* 30 s, 3 s */
	/* the team: every round once */
	o = json_object_get(doc, "team");
	assert_int_equal(num(o, "rounds"), 9);
	assert_int_equal(num(o, "answered"), 8);
	assert_int_equal(num(o, "within_30s"), 4);
	assert_int_equal(num(o, "agents"), 3);
	/* hours: local 09:00 holds alice's 3 rounds of 9 o'clock */
	o = json_array_get(json_object_get(doc, "hours"), 9);
	assert_int_equal(num(o, "hour"), 9);
	assert_int_equal(num(o, "rounds"), 3);
	assert_int_equal(json_array_size(json_object_get(doc, "hours")), 24);
	/* the days: a row each, the second partial */
	assert_int_equal(json_array_size(json_object_get(doc, "days")), 2);
	o = json_array_get(json_object_get(doc, "days"), 1);
	assert_string_equal(json_string_value(json_object_get(o, "day")), "2026-11-23");
	assert_true(json_is_true(json_object_get(o, "partial")));
	assert_int_equal(num(o, "rounds"), 3);
	/* the worst waits: the longest first, across days and agents */
	o = json_object_get(doc, "worst");
	assert_int_equal(json_array_size(o), 9);
	assert_string_equal(json_string_value(json_object_get(json_array_get(o, 0),
	    "conversation")), "c-3");		/* 30 min, unanswered */
	assert_false(json_is_true(json_object_get(json_array_get(o, 0), "answered")));
	assert_string_equal(json_string_value(json_object_get(json_array_get(o, 1),
	    "conversation")), "d-1");		/* 800 s, uncapped here */
	assert_int_equal(num(json_array_get(o, 1), "waited_ms"), 800 * SEC);
	json_decref(doc);
	report_free(a);
	report_free(b);
	report_free(range);
	sla_free(all);
}

static json_t *
alert(const char *agent, const char *cat, const char *action, const char *extra)
{
	char	buf[1024];
	json_t	*a;

	snprintf(buf, sizeof(buf), "{\"v\":2,\"id\":\"x\",\"type\":\"rule.hit\","
	    "\"agent\":\"%s\",\"category\":\"%s\",\"action\":\"%s\"%s}", agent, cat,
	    action, extra);
	assert_non_null(a = json_loads(buf, 0, NULL));
	return a;
}

/* Rule hits: an alert under its strongest category, each hit under its own and its action; folded counts; false positives. */
static void
test_hits(void **state)
{
	struct report	*day, *range;
	json_t		*a, *doc;
	const json_t	*h;

	(void)state;
	assert_non_null(day = report_new(600 * SEC, 180 * SEC));
	a = alert("alice", "offplatform", "block", ",\"hits\":[{\"category\":"
	    "\"offplatform\",\"action\":\"block\"},{\"category\":\"etiquette\","
	    "\"action\":\"flag\"}]");
	assert_int_equal(report_add_alert(day, a, 0), 0);
	assert_int_equal(report_add_alert(day, a, 1), 0);	/* marked a false positive */
	json_decref(a);
	a = alert("alice", "stock", "warn", ",\"count\":3");	/* v1, folded */
	assert_int_equal(report_add_alert(day, a, 0), 0);
	json_decref(a);
	assert_non_null(a = json_loads("{\"type\":\"sla.breach\",\"agent\":\"bob\"}", 0, NULL));
	assert_int_equal(report_add_alert(day, a, 0), 0);	/* not a rule hit */
	json_decref(a);
	assert_non_null(range = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(range, day, "2026-11-22", 0), 0);
	doc = to_json(range, NULL);
	assert_int_equal(json_array_size(json_object_get(doc, "agents")), 1);
	h = json_object_get(agent_of(doc, "alice"), "hits");
	assert_int_equal(num(json_object_get(h, "offplatform"), "alerts"), 1);
	assert_int_equal(num(json_object_get(h, "offplatform"), "block"), 1);
	assert_int_equal(num(json_object_get(h, "offplatform"), "false_positives"), 1);
	assert_int_equal(num(json_object_get(h, "etiquette"), "alerts"), 0);
	assert_int_equal(num(json_object_get(h, "etiquette"), "flag"), 1);
	assert_int_equal(num(json_object_get(h, "stock"), "alerts"), 3);
	assert_int_equal(num(json_object_get(h, "stock"), "warn"), 3);
	assert_int_equal(num(agent_of(doc, "alice"), "alerts"), 4);
	assert_int_equal(num(agent_of(doc, "alice"), "blocks"), 1);
	assert_int_equal(num(agent_of(doc, "alice"), "false_positives"), 1);
	assert_int_equal(num(json_object_get(doc, "team"), "alerts"), 4);
	json_decref(doc);
	report_free(day);
	report_free(range);
}

/* A day stored and read back merges as the day itself did: the JSON is the same, byte for byte. */
static void
test_dump_load(void **state)
{
	struct report		*a, *back, *r1, *r2;
	struct sbuf		 d, j1, j2;
	struct report_meta	 m = { "2026-11-22", "2026-11-22", NULL, 480, T0 };
	json_t			*al;
	int			 partial = 0;

	(void)state;
	a = make_day(day1, sizeof(day1) / sizeof(day1[0]), D0, NULL);
	al = alert("bob", "abuse", "block", "");
	assert_int_equal(report_add_alert(a, al, 0), 0);
	json_decref(al);
	sbuf_init(&d);
	sbuf_init(&j1);
	sbuf_init(&j2);
	assert_int_equal(report_dump(&d, a, "2026-11-22", 480, 1), 0);
	assert_non_null(back = report_load(d.s, d.len, 600 * SEC, 180 * SEC, &partial));
	assert_int_equal(partial, 1);
	assert_non_null(r1 = report_new(600 * SEC, 180 * SEC));
	assert_non_null(r2 = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(r1, a, "2026-11-22", 1), 0);
	assert_int_equal(report_merge(r2, back, "2026-11-22", 1), 0);
	assert_int_equal(report_json(&j1, r1, &m), 0);
	assert_int_equal(report_json(&j2, r2, &m), 0);
	assert_string_equal(sbuf_str(&j1), sbuf_str(&j2));
	/* not a document */
	assert_null(report_load("{\"v\":2,\"agents\":{}}", 19, 600 * SEC, 180 * SEC, &partial));
	assert_null(report_load("nope", 4, 600 * SEC, 180 * SEC, &partial));
	report_free(a);
	report_free(back);
	report_free(r1);
	report_free(r2);
	sbuf_free(&d);
	sbuf_free(&j1);
	sbuf_free(&j2);
}

static void
test_keep_agent(void **state)
{
	struct report	*a, *range;
	json_t		*doc;

	(void)state;
	a = make_day(day1, sizeof(day1) / sizeof(day1[0]), D0, NULL);
	report_keep_agent(a, "bob");
	assert_non_null(range = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(range, a, "2026-11-22", 0), 0);
	doc = to_json(range, "bob");
	assert_int_equal(json_array_size(json_object_get(doc, "agents")), 1);
	assert_string_equal(json_string_value(json_object_get(doc, "agent")), "bob");
	assert_int_equal(num(json_object_get(doc, "team"), "rounds"), 2);
	assert_int_equal(json_array_size(json_object_get(doc, "worst")), 2);
	json_decref(doc);
	report_free(a);
	report_free(range);
}

/* Excel's CSV: the BOM, a header, a row per agent, fields quoted, formulas defused. */
static void
test_csv(void **state)
{
	static const struct round v[] = {
		{ "a,\"b\"", "c-1", D0 + HOUR, 5 * SEC, 1 },
		{ "=cmd()", "c-2", D0 + HOUR, 5 * SEC, 1 },
		{ "小王", "c-3", D0 + HOUR, 5 * SEC, 1 },
	};
	struct report_meta	 m = { "2026-11-22", "2026-11-22", NULL, 480, T0 };
	struct report		*a, *range;
	struct sbuf		 b;
	const char		*s, *nl;
	size_t			 lines = 0;

	(void)state;
	a = make_day(v, 3, D0, NULL);
	assert_non_null(range = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(range, a, "2026-11-22", 0), 0);
	sbuf_init(&b);
	assert_int_equal(report_csv(&b, range, &m), 0);
	s = sbuf_str(&b);
	assert_memory_equal(s, "\xEF\xBB\xBF" "agent,rounds,answered,mean_ms,", 33);
	for (nl = s; (nl = strstr(nl, "\r\n")) != NULL; nl += 2)
		lines++;
	assert_int_equal(lines, 4);
	assert_non_null(strstr(s, "\r\n\"a,\"\"b\"\"\",1,1,5000,5000,"));
	assert_non_null(strstr(s, "\r\n'=cmd(),1,"));
	assert_non_null(strstr(s, "\r\n小王,1,1,5000,"));
	sbuf_free(&b);
	report_free(a);
	report_free(range);
}

/* One page a manager can mail: Chinese, inline SVG, nothing run or fetched, ids escaped. */
static void
test_html(void **state)
{
	static const struct round v[] = {
		{ "<b>x</b>", "<c>", D0 + 9 * HOUR, 5 * SEC, 1 },
		{ "bob", "c-2", D0 + 10 * HOUR, 500 * SEC, 1 },
	};
	struct report_meta	 m = { "2026-11-22", "2026-11-22", NULL, 480, T0 };
	struct report		*a, *range;
	struct sbuf		 b;
	const char		*s;

	(void)state;
	a = make_day(v, 2, D0, NULL);
	assert_non_null(range = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(range, a, "2026-11-22", 0), 0);
	sbuf_init(&b);
	assert_int_equal(report_html(&b, range, &m), 0);
	s = sbuf_str(&b);
	assert_non_null(strstr(s, "<!DOCTYPE html>"));
	assert_non_null(strstr(s, "<svg"));
	assert_non_null(strstr(s, "3分钟回复率"));
	assert_non_null(strstr(s, "&lt;b&gt;x&lt;/b&gt;"));
	assert_non_null(strstr(s, "&lt;c&gt;"));
	assert_null(strstr(s, "<b>x"));
	assert_null(strstr(s, "<script"));
	assert_null(strstr(s, "http://"));
	assert_null(strstr(s, "https://"));
	assert_non_null(strstr(s, "8分20秒"));		/* the 500 s wait */
	sbuf_free(&b);
	report_free(a);
	report_free(range);
}

static void
test_parse_day(void **state)
{
	int64_t	t;

	(void)state;
	assert_int_equal(report_parse_day("2026-11-22", 480, &t), 0);
	assert_int_equal(t, D0);
	assert_int_equal(report_parse_day("2026-11-22", 0, &t), 0);
	assert_int_equal(t, T0);
	assert_int_equal(report_parse_day("2024-02-29", 0, &t), 0);
	assert_int_equal(report_parse_day("2026-02-29", 0, &t), -1);
	assert_int_equal(report_parse_day("2026-13-01", 0, &t), -1);
	assert_int_equal(report_parse_day("2026-1-05", 0, &t), -1);
	assert_int_equal(report_parse_day("2026-01-05x", 0, &t), -1);
	assert_int_equal(report_parse_day("2026-+1-05", 0, &t), -1);
	assert_int_equal(report_parse_day("yesterday", 0, &t), -1);
	assert_int_equal(report_parse_day("", 0, &t), -1);
}

/* An empty range still writes every format. */
static void
test_empty(void **state)
{
	struct report_meta	 m = { "2026-11-22", "2026-11-22", NULL, -300, T0 };
	struct report		*r;
	struct sbuf		 b;
	json_t			*doc;

	(void)state;
	assert_non_null(r = report_new(600 * SEC, 180 * SEC));
	doc = to_json(r, NULL);
	assert_int_equal(num(json_object_get(doc, "team"), "rounds"), 0);
	json_decref(doc);
	sbuf_init(&b);
	assert_int_equal(report_csv(&b, r, &m), 0);
	assert_int_equal(report_html(&b, r, &m), 0);
	assert_non_null(strstr(sbuf_str(&b), "UTC-05:00"));
	sbuf_free(&b);
	report_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_matches_engine),
		cmocka_unit_test(test_hits),
		cmocka_unit_test(test_dump_load),
		cmocka_unit_test(test_keep_agent),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_parse_day),
		cmocka_unit_test(test_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
