/* test_report: chatmon report's aggregate: a day from the SLA engine's sums, days merged exactly, the stored document read back, and the JSON, CSV and HTML writers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
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

/* Bytes the heap holds now (glibc; an ASan build's mallinfo2 says 0). */
static size_t
heap_bytes(void)
{
	struct mallinfo2	mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

/*
 * Memory grows with the seconds that hold rounds, not with the cap: 2 000
 * agents of one round each under a cap of a day, a day made, merged into
 * a range, stored and read back, take a few hundred bytes an agent (found
 * by review: a dense histogram of 86 401 seconds per agent and copy,
 * 345 KB each; report --log of 500 agents took 1 GB). The figures stay
 * the engine's: test_merge_matches_engine.
 */
static void
test_many_agents_small(void **state)
{
	struct sla_config	 c;
	struct sla		*s;
	struct sla_round	 w = { 0 };
	struct report		*day, *range, *back;
	struct sbuf		 d;
	char			 id[32];
	size_t			 i, before;
	json_t			*doc;
	int			 partial = 0;

	(void)state;
	base_cfg(&c);
	c.cap_ms = DAY;
	before = heap_bytes();
	assert_non_null(s = sla_new(&c, NULL, NULL, NULL));
	for (i = 0; i < 2000; i++) {
		snprintf(id, sizeof(id), "ag%zu", i);
		w.agent = id;
		w.conversation = id;
		w.conversation_len = strlen(id);
		w.answered = i % 2;	/* half unanswered: at the cap */
		w.opened = D0 + HOUR;
		w.at = D0 + HOUR + (i % 2 ? 3 * SEC : 30 * MIN);
		w.first = 1;
		sla_charge_round(s, &w);
	}
	/*
	 * the engine too: an unanswered round at a day's cap is one slot of
	 * 1 429 (found by review: 86 401 seconds an agent and a histogram,
	 * 600 agents' names took 400 MB of chatmond)
	 */
	if (heap_bytes() > before)
		assert_true(heap_bytes() - before < 2000 * 16 * 1024);
	sbuf_init(&d);
	before = heap_bytes();
	assert_non_null(day = report_new(c.cap_ms, c.rate_ms));
	sla_agents_day(s, D0, add_day_cb, day);
	assert_non_null(range = report_new(c.cap_ms, c.rate_ms));
	assert_int_equal(report_merge(range, day, "2026-11-22", 0), 0);
	assert_int_equal(report_dump(&d, day, "2026-11-22", 480, 0), 0);
	assert_non_null(back = report_load(d.s, d.len, c.cap_ms, c.rate_ms, &partial));
	/* three reports of 2 000 agents: 4 KiB an agent is plenty (not 345 KB) */
	if (heap_bytes() > before)
		assert_true(heap_bytes() - before < 3 * 2000 * 4096 + d.cap);
	assert_int_equal(report_merge(range, back, "2026-11-22", 0), 0);
	/* an unanswered round at the cap: p90 is the cap, as the engine says */
	doc = to_json(range, NULL);
	assert_int_equal(num(agent_of(doc, "ag0"), "p90_ms"), DAY);
	assert_int_equal(num(agent_of(doc, "ag1"), "p90_ms"), 3 * SEC);
	assert_int_equal(num(agent_of(doc, "ag1"), "rounds"), 2);
	json_decref(doc);
	report_free(day);
	report_free(range);
	report_free(back);
	sbuf_free(&d);
	sla_free(s);
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

/*
 * A category is anyone's (an alert another process wrote): its header
 * field "hits:CAT" is quoted whole, not after the prefix, so the header
 * has as many fields as the rows (found by review: hits:"'=cat,""x").
 */
static void
test_csv_category_header(void **state)
{
	static const struct round v[] = {
		{ "alice", "c-1", D0 + HOUR, 5 * SEC, 1 },
	};
	struct report_meta	 m = { "2026-11-22", "2026-11-22", NULL, 480, T0 };
	struct report		*a, *range;
	struct sbuf		 b;
	json_t			*al;
	const char		*s;

	(void)state;
	a = make_day(v, 1, D0, NULL);
	al = alert("alice", "=cat,\\\"x", "flag", "");
	assert_int_equal(report_add_alert(a, al, 0), 0);
	json_decref(al);
	assert_non_null(range = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(range, a, "2026-11-22", 0), 0);
	sbuf_init(&b);
	assert_int_equal(report_csv(&b, range, &m), 0);
	s = sbuf_str(&b);
	assert_non_null(strstr(s, ",false_positives,\"hits:=cat,\"\"x\"\r\n"));
	assert_null(strstr(s, "hits:\""));
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

/*
 * A stored day is Redis's, anyone may have written it: a worst wait opened
 * at INT64_MAX is kept in the engine's range (+-2^61 ms), so the page's
 * local time does not overflow (found by review: UBSan, year -292275055).
 */
static void
test_stored_day_extreme_times(void **state)
{
	static const struct round v[] = {
		{ "alice", "c-1", D0 + 9 * HOUR, 5 * SEC, 1 },
	};
	struct report_meta	 m = { "2026-11-22", "2026-11-22", NULL, 480, T0 };
	struct report		*a, *back, *range;
	struct sbuf		 d, b;
	json_t			*doc, *w;
	char			*s;
	int			 partial = 0;

	(void)state;
	a = make_day(v, 1, D0, NULL);
	sbuf_init(&d);
	sbuf_init(&b);
	assert_int_equal(report_dump(&d, a, "2026-11-22", 480, 0), 0);
	assert_non_null(doc = json_loadb(d.s, d.len, 0, NULL));
	w = json_array_get(json_object_get(json_object_get(json_object_get(doc,
	    "agents"), "alice"), "worst"), 0);
	assert_non_null(w);
	assert_int_equal(json_object_set_new(w, "opened", json_integer(INT64_MAX)), 0);
	assert_int_equal(json_object_set_new(w, "at", json_integer(INT64_MIN)), 0);
	assert_non_null(s = json_dumps(doc, JSON_COMPACT));
	assert_non_null(back = report_load(s, strlen(s), 600 * SEC, 180 * SEC, &partial));
	assert_non_null(range = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(range, back, "2026-11-22", 0), 0);
	assert_int_equal(report_html(&b, range, &m), 0);
	assert_non_null(strstr(sbuf_str(&b), "<td>c-1</td><td>alice</td><td>"));
	assert_null(strstr(sbuf_str(&b), "<td>-"));	/* no year before 0 */
	sbuf_reset(&d);
	assert_int_equal(report_dump(&d, range, "2026-11-22", 480, 0), 0);
	assert_non_null(strstr(d.s, "\"opened\":2305843009213693952"));
	assert_non_null(strstr(d.s, "\"at\":-2305843009213693952"));
	free(s);
	json_decref(doc);
	report_free(a);
	report_free(back);
	report_free(range);
	sbuf_free(&d);
	sbuf_free(&b);
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

/* --- shops (issue 18) ---------------------------------------------------------- */

/* tmall: a cap of 60 s and a rate of 20 s; its presale queue the same; jd: none of its own. */
static void
shop_policies(struct sla_policy pol[2])
{
	base_cfg(&pol[0].cfg);
	pol[0].shop = "tmall";
	pol[0].queue = "";
	pol[0].cfg.cap_ms = 60 * SEC;
	pol[0].cfg.rate_ms = 20 * SEC;
	pol[1] = pol[0];
	pol[1].queue = "presale";
}

struct shop_round {
	const char	*agent, *shop, *queue, *conv;
	int64_t		 opened, ms;	/* -1: unanswered, ended 30 min on */
};

/* alice in three places (one unanswered), bob in none. */
static const struct shop_round shop_day[] = {
	{ "alice", "tmall", "presale", "t-1", D0 + 10 * HOUR, 10 * SEC },
	{ "alice", "tmall", "", "t-2", D0 + 11 * HOUR, -1 },
	{ "alice", "jd", "", "j-1", D0 + 12 * HOUR, 100 * SEC },
	{ "bob", "", "", "n-1", D0 + 13 * HOUR, 5 * SEC },
};

static void
add_shop_day_cb(const struct sla_account *w, const struct sla_day *d, void *arg)
{
	assert_int_equal(report_add_shop_sums(arg, w, d), 0);
}

/* The engine's own figures of (agent, shop, queue), for comparing. */
struct shop_want { const char *agent, *shop, *queue; struct sla_figures f; int found; };

static void
shop_figs_cb(const struct sla_account *w, const struct sla_figures *f, void *arg)
{
	struct shop_want	*x = arg;

	if (strcmp(w->agent, x->agent) == 0 && strcmp(w->shop, x->shop) == 0 &&
	    strcmp(w->queue, x->queue) == 0) {
		x->f = *f;
		x->found = 1;
	}
}

/* A day of shop_day as reportdb makes it: an engine and a report under the shops' settings. */
static struct report *
make_shop_day(struct sla **engine)
{
	struct sla_policy	 pol[2];
	struct sla_config	 c;
	struct sla_round	 w = { 0 };
	struct report		*r;
	struct sla		*s;
	json_t			*al;
	size_t			 i;

	base_cfg(&c);
	shop_policies(pol);
	assert_non_null(s = sla_new(&c, NULL, NULL, NULL));
	assert_int_equal(sla_set_policies(s, pol, 2), 0);
	assert_non_null(r = report_new(c.cap_ms, c.rate_ms));
	assert_int_equal(report_set_policies(r, pol, 2), 0);
	for (i = 0; i < sizeof(shop_day) / sizeof(shop_day[0]); i++) {
		const struct shop_round	*v = &shop_day[i];
		int64_t			 at = v->opened + (v->ms < 0 ? 30 * MIN : v->ms);

		w.agent = v->agent;
		w.shop = v->shop;
		w.queue = v->queue;
		w.conversation = v->conv;
		w.conversation_len = strlen(v->conv);
		w.opened = v->opened;
		w.at = at;
		w.waited_ms = (uint64_t)(at - v->opened);
		w.answered = v->ms >= 0;
		w.first = 1;
		sla_charge_round(s, &w);
		assert_int_equal(report_add_wait(r, &w), 0);
	}
	sla_agents_day(s, D0, add_shop_day_cb, r);
	/* a rule hit in jd, one in tmall's presale, one of no shop */
	al = alert("alice", "abuse", "block", ",\"shop\":\"jd\"");
	assert_int_equal(report_add_alert(r, al, 0), 0);
	json_decref(al);
	al = alert("alice", "offplatform", "warn", ",\"shop\":\"tmall\",\"queue\":\"presale\"");
	assert_int_equal(report_add_alert(r, al, 0), 0);
	assert_int_equal(report_add_alert(r, al, 1), 0);	/* and marked a false positive */
	json_decref(al);
	al = alert("bob", "abuse", "flag", "");
	assert_int_equal(report_add_alert(r, al, 0), 0);
	json_decref(al);
	*engine = s;
	return r;
}

static const json_t *
path(const json_t *o, ...)
{
	va_list		 ap;
	const char	*k;

	va_start(ap, o);
	while (o != NULL && (k = va_arg(ap, const char *)) != NULL)
		o = json_object_get(o, k);
	va_end(ap);
	if (o == NULL)
		fail_msg("no such path");
	return o;
}

/*
 * The same agent in two shops: each shop's figures are the engine's own
 * for it, under the shop's cap and rate, the agent's total their sum;
 * rule hits and false positives counted by the alert's shop and queue.
 */
static void
test_shops_split(void **state)
{
	struct report		*day, *range;
	struct sla		*s;
	struct shop_want	 w;
	const json_t		*tm, *jd, *pre, *alice;
	json_t			*doc;
	const char		*figs[] = { "rounds", "answered", "mean_ms", "p90_ms",
				    "first_rounds", "first_mean_ms", "breaches",
				    "escalations", "within_rate" };
	const char		*who[][3] = { { "alice", "tmall", "" },
				    { "alice", "tmall", "presale" }, { "alice", "jd", "" } };
	size_t			 i, k;

	(void)state;
	day = make_shop_day(&s);
	assert_non_null(range = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(range, day, "2026-11-22", 0), 0);
	doc = to_json(range, NULL);
	alice = agent_of(doc, "alice");
	tm = path(doc, "shops", "tmall", NULL);
	pre = path(tm, "queues", "presale", NULL);
	jd = path(doc, "shops", "jd", NULL);
	/* the totals: every shop's rounds, bob's none of a shop */
	assert_int_equal(num(alice, "rounds"), 3);
	assert_int_equal(num(agent_of(doc, "bob"), "rounds"), 1);
	assert_int_equal(num(path(doc, "team", NULL), "rounds"), 4);
	assert_int_equal(json_object_size(path(doc, "shops", NULL)), 2);
	/* split exactly: tmall (its queue's and its own) and jd make alice's total */
	assert_int_equal(num(path(tm, "agents", "alice", NULL), "rounds") +
	    num(path(jd, "agents", "alice", NULL), "rounds"), num(alice, "rounds"));
	assert_int_equal(num(path(tm, "team", NULL), "rounds"), 2);
	assert_int_equal(num(path(pre, "team", NULL), "rounds"), 1);
	assert_null(json_object_get(path(tm, "agents", NULL), "bob"));
	/* each under its own settings */
	assert_int_equal(num(path(tm, "sla", NULL), "cap_ms"), 60 * SEC);
	assert_int_equal(num(path(tm, "sla", NULL), "rate_ms"), 20 * SEC);
	assert_int_equal(num(path(jd, "sla", NULL), "cap_ms"), 600 * SEC);
	/* the unanswered round counts at tmall's cap: (10 s + 60 s) / 2 */
	assert_int_equal(num(path(tm, "agents", "alice", NULL), "mean_ms"), 35 * SEC);
	assert_int_equal(num(path(tm, "agents", "alice", NULL), "p90_ms"), 60 * SEC);
	assert_int_equal(num(path(pre, "agents", "alice", NULL), "mean_ms"), 10 * SEC);
	assert_int_equal(num(path(jd, "agents", "alice", NULL), "mean_ms"), 100 * SEC);
	/* 100 s is within jd's 180 s rate, 10 s within tmall's 20 s */
	assert_int_equal(num(path(jd, "agents", "alice", NULL), "within_rate"), 1);
	assert_int_equal(num(path(tm, "agents", "alice", NULL), "within_rate"), 1);
	/* the engine's own figures of each (agent, shop, queue), to the unit */
	for (i = 0; i < sizeof(who) / sizeof(who[0]); i++) {
		const json_t	*o = path(doc, "shops", who[i][1], NULL);
		uint64_t	 got[9];

		memset(&w, 0, sizeof(w));
		w.agent = who[i][0];
		w.shop = who[i][1];
		w.queue = who[i][2];
		sla_agents(s, shop_figs_cb, &w);
		if (*who[i][2] == '\0') {
			/* the shop's own conversations: tmall's are also in its queue */
			if (strcmp(who[i][1], "tmall") == 0)
				continue;
		} else
			o = path(o, "queues", who[i][2], NULL);
		assert_true(w.found);
		o = path(o, "agents", who[i][0], NULL);
		got[0] = w.f.rounds;
		got[1] = w.f.answered;
		got[2] = w.f.mean_ms;
		got[3] = w.f.p90_ms;
		got[4] = w.f.first_rounds;
		got[5] = w.f.first_mean_ms;
		got[6] = w.f.breaches;
		got[7] = w.f.escalations;
		got[8] = w.f.within_rate;
		for (k = 0; k < 9; k++)
			assert_int_equal(num(o, figs[k]), got[k]);
		assert_true(fabs(json_real_value(json_object_get(o, "rate")) - w.f.rate) < 1e-9);
	}
	/* rule hits by shop and queue; the false positive too */
	assert_int_equal(num(alice, "alerts"), 2);
	assert_int_equal(num(path(jd, "team", NULL), "alerts"), 1);
	assert_int_equal(num(path(jd, "team", NULL), "blocks"), 1);
	assert_int_equal(num(path(tm, "team", NULL), "alerts"), 1);
	assert_int_equal(num(path(pre, "agents", "alice", NULL), "false_positives"), 1);
	assert_int_equal(num(path(pre, "team", "hits", "offplatform", NULL), "warn"), 1);
	assert_int_equal(num(path(jd, "team", NULL), "false_positives"), 0);
	assert_int_equal(num(path(doc, "team", NULL), "alerts"), 3);
	json_decref(doc);
	report_free(day);
	report_free(range);
	sla_free(s);
}

/* Stored and read back under the shops' settings: the same JSON; a day stored before shops still reads. */
static void
test_shops_dump_load(void **state)
{
	struct report_meta	 m = { "2026-11-22", "2026-11-22", NULL, 480, T0 };
	struct sla_policy	 pol[2];
	struct report		*a, *back, *r1, *r2;
	struct sla		*s;
	struct sbuf		 d, j1, j2;
	json_t			*doc;
	char			*old;
	int			 partial = 0;

	(void)state;
	shop_policies(pol);
	a = make_shop_day(&s);
	sbuf_init(&d);
	sbuf_init(&j1);
	sbuf_init(&j2);
	assert_int_equal(report_dump(&d, a, "2026-11-22", 480, 0), 0);
	assert_non_null(back = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_set_policies(back, pol, 2), 0);
	assert_int_equal(report_load_into(back, d.s, d.len, &partial), 0);
	assert_non_null(r1 = report_new(600 * SEC, 180 * SEC));
	assert_non_null(r2 = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_set_policies(r1, pol, 2), 0);
	assert_int_equal(report_set_policies(r2, pol, 2), 0);
	assert_int_equal(report_merge(r1, a, "2026-11-22", 0), 0);
	assert_int_equal(report_merge(r2, back, "2026-11-22", 0), 0);
	assert_int_equal(report_json(&j1, r1, &m), 0);
	assert_int_equal(report_json(&j2, r2, &m), 0);
	assert_string_equal(sbuf_str(&j1), sbuf_str(&j2));
	assert_non_null(strstr(sbuf_str(&j1), "\"shops\""));
	/* a day stored before shops: its agents, no shops */
	assert_non_null(doc = json_loadb(d.s, d.len, 0, NULL));
	assert_int_equal(json_object_del(doc, "shops"), 0);
	assert_non_null(old = json_dumps(doc, JSON_COMPACT));
	report_free(back);
	assert_non_null(back = report_load(old, strlen(old), 600 * SEC, 180 * SEC, &partial));
	report_free(r2);
	assert_non_null(r2 = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(r2, back, "2026-11-22", 0), 0);
	sbuf_reset(&j2);
	assert_int_equal(report_json(&j2, r2, &m), 0);
	assert_null(strstr(sbuf_str(&j2), "\"shops\""));
	assert_non_null(strstr(sbuf_str(&j2), "\"alice\""));
	/* not a document: nothing added */
	assert_int_equal(report_load_into(r2, "nope", 4, &partial), 1);
	free(old);
	json_decref(doc);
	report_free(a);
	report_free(back);
	report_free(r1);
	report_free(r2);
	sla_free(s);
	sbuf_free(&d);
	sbuf_free(&j1);
	sbuf_free(&j2);
}

/* --shop and --queue: the figures, worst waits and days of that shop only, under its settings. */
static void
test_keep_shop(void **state)
{
	struct sla_policy	 pol[2];
	struct report		*day, *range;
	struct sla		*s;
	json_t			*doc;
	const json_t		*wst;
	size_t			 i;

	(void)state;
	shop_policies(pol);
	for (i = 0; i < 2; i++) {
		const char *q = i == 0 ? NULL : "presale";

		day = make_shop_day(&s);
		assert_non_null(range = report_new(600 * SEC, 180 * SEC));
		assert_int_equal(report_set_policies(range, pol, 2), 0);
		/* as reportdb: the range first, then each day before it is merged */
		assert_int_equal(report_keep_shop(range, "tmall", q), 0);
		assert_int_equal(report_keep_shop(day, "tmall", q), 0);
		assert_int_equal(report_merge(range, day, "2026-11-22", 0), 0);
		doc = to_json(range, NULL);
		assert_string_equal(json_string_value(json_object_get(doc, "shop")), "tmall");
		if (q == NULL)
			assert_null(json_object_get(doc, "queue"));
		else
			assert_string_equal(json_string_value(json_object_get(doc, "queue")), q);
		assert_int_equal(json_array_size(json_object_get(doc, "agents")), 1);
		assert_int_equal(num(agent_of(doc, "alice"), "rounds"), q == NULL ? 2 : 1);
		assert_int_equal(num(path(doc, "team", NULL), "rounds"), q == NULL ? 2 : 1);
		assert_int_equal(num(path(doc, "sla", NULL), "cap_ms"), 60 * SEC);
		assert_int_equal(num(json_array_get(json_object_get(doc, "days"), 0),
		    "rounds"), q == NULL ? 2 : 1);
		assert_int_equal(json_object_size(path(doc, "shops", NULL)), 1);
		assert_int_equal(json_object_size(path(doc, "shops", "tmall", "queues",
		    NULL)), 1);
		json_array_foreach(json_object_get(doc, "worst"), i, wst)
			assert_true(strncmp(json_string_value(json_object_get(wst,
			    "conversation")), "t-", 2) == 0);
		assert_int_equal(num(path(doc, "team", NULL), "alerts"), 1);
		i = q == NULL ? 0 : 1;	/* the loop's, reused above */
		json_decref(doc);
		report_free(day);
		report_free(range);
		sla_free(s);
	}
	/* a shop with nothing: empty, under its settings */
	day = make_shop_day(&s);
	assert_int_equal(report_keep_shop(day, "nowhere", NULL), 0);
	doc = to_json(day, NULL);
	assert_int_equal(json_array_size(json_object_get(doc, "agents")), 0);
	json_decref(doc);
	report_free(day);
	sla_free(s);
}

/* CSV: the agents' table as before, then shop,queue,agent rows; HTML: the shops' tables. */
static void
test_shops_csv_html(void **state)
{
	struct report_meta	 m = { "2026-11-22", "2026-11-22", NULL, 480, T0 };
	struct report		*day, *range;
	struct sla		*s;
	struct sbuf		 b;
	const char		*t;

	(void)state;
	day = make_shop_day(&s);
	assert_non_null(range = report_new(600 * SEC, 180 * SEC));
	assert_int_equal(report_merge(range, day, "2026-11-22", 0), 0);
	sbuf_init(&b);
	assert_int_equal(report_csv(&b, range, &m), 0);
	t = sbuf_str(&b);
	assert_true(strncmp(t, "\xEF\xBB\xBF" "agent,rounds,", 16) == 0);
	assert_non_null(strstr(t, "\r\nalice,3,2,"));
	assert_non_null(strstr(t, "\r\n\r\nshop,queue,agent,rounds,"));
	assert_non_null(strstr(t, "\r\njd,,alice,1,1,100000,"));
	assert_non_null(strstr(t, "\r\ntmall,,alice,2,1,35000,"));
	assert_non_null(strstr(t, "\r\ntmall,presale,alice,1,1,10000,"));
	assert_null(strstr(t, ",bob,"));
	sbuf_reset(&b);
	assert_int_equal(report_html(&b, range, &m), 0);
	t = sbuf_str(&b);
	assert_non_null(strstr(t, "<table id=\"shops\">"));
	assert_non_null(strstr(t, "<table id=\"shop_agents\">"));
	assert_non_null(strstr(t, "<td>tmall / presale(20秒回复率)</td>"));
	assert_non_null(strstr(t, "<td>jd · alice(3分钟回复率)</td>"));
	assert_non_null(strstr(t, "店铺时限回复率"));
	sbuf_free(&b);
	report_free(day);
	report_free(range);
	sla_free(s);
}

/* No shop anywhere: nothing of shops in any output. */
static void
test_no_shops(void **state)
{
	struct report_meta	 m = { "2026-11-22", "2026-11-22", NULL, 480, T0 };
	struct report		*r;
	struct sbuf		 b;

	(void)state;
	r = make_day(day1, sizeof(day1) / sizeof(day1[0]), D0, NULL);
	sbuf_init(&b);
	assert_int_equal(report_json(&b, r, &m), 0);
	assert_null(strstr(sbuf_str(&b), "shop"));
	sbuf_reset(&b);
	assert_int_equal(report_csv(&b, r, &m), 0);
	assert_null(strstr(sbuf_str(&b), "shop"));
	sbuf_reset(&b);
	assert_int_equal(report_dump(&b, r, "2026-11-22", 480, 0), 0);
	assert_null(strstr(sbuf_str(&b), "shop"));
	sbuf_reset(&b);
	assert_int_equal(report_html(&b, r, &m), 0);
	assert_null(strstr(sbuf_str(&b), "店铺"));
	sbuf_free(&b);
	report_free(r);
}

/*
 * A conversation id that is not UTF-8 (the logs are anyone's to write)
 * is shown with '?' for its bad bytes, in today's report and in a stored
 * day read back (found by review: the stored day failed every later
 * report as "out of memory").
 */
static void
test_conversation_not_utf8(void **state)
{
	struct sla_config	 c;
	struct sla		*s;
	struct report		*day, *back;
	struct sbuf		 d;
	json_t			*doc, *wst;
	int			 partial = 0;
	const struct round	 v[] = { { "amy", "c\xff\xe4x", D0 + HOUR, 5 * SEC, 1 } };

	(void)state;
	base_cfg(&c);
	assert_non_null(s = sla_new(&c, NULL, NULL, NULL));
	assert_non_null(day = report_new(c.cap_ms, c.rate_ms));
	charge(s, day, v, 1);
	sla_agents_day(s, D0, add_day_cb, day);
	doc = to_json(day, NULL);
	wst = json_array_get(json_object_get(doc, "worst"), 0);
	assert_string_equal(json_string_value(json_object_get(wst, "conversation")), "c??x");
	json_decref(doc);
	sbuf_init(&d);
	assert_int_equal(report_dump(&d, day, "2026-11-22", 480, 0), 0);
	assert_non_null(back = report_load(d.s, d.len, c.cap_ms, c.rate_ms, &partial));
	doc = to_json(back, NULL);
	wst = json_array_get(json_object_get(doc, "worst"), 0);
	assert_string_equal(json_string_value(json_object_get(wst, "conversation")), "c??x");
	json_decref(doc);
	sbuf_free(&d);
	report_free(back);
	report_free(day);
	sla_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_merge_matches_engine),
		cmocka_unit_test(test_conversation_not_utf8),
		cmocka_unit_test(test_hits),
		cmocka_unit_test(test_dump_load),
		cmocka_unit_test(test_many_agents_small),
		cmocka_unit_test(test_keep_agent),
		cmocka_unit_test(test_csv),
		cmocka_unit_test(test_csv_category_header),
		cmocka_unit_test(test_html),
		cmocka_unit_test(test_stored_day_extreme_times),
		cmocka_unit_test(test_parse_day),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_shops_split),
		cmocka_unit_test(test_shops_dump_load),
		cmocka_unit_test(test_keep_shop),
		cmocka_unit_test(test_shops_csv_html),
		cmocka_unit_test(test_no_shops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
