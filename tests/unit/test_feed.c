/* test_feed: the dashboard's alert history, pages' places in it, and today's rule hits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "chatmon/feed.h"

#define DAY0	1795276800000LL		/* 2026-11-22 00:00 in Beijing (16:00 UTC the day before) */
#define DAYMS	86400000LL

static char *
alert(int n, const char *type, const char *agent, const char *cat,
    const char *ts)
{
	static char	buf[512];

	snprintf(buf, sizeof(buf), "{\"v\":1,\"id\":\"id-%d\",\"ts\":\"%s\","
	    "\"type\":\"%s\",\"severity\":\"warn\",\"agent\":\"%s\","
	    "\"category\":\"%s\",\"text\":\"加我微信\"}", n, ts, type, agent, cat);
	return buf;
}

static int
add(struct feed *f, int ms, int n)
{
	char	sid[32];
	char	*a = alert(n, "rule.hit", "alice", "offplatform",
	    "2026-11-22T02:00:00.000Z");

	snprintf(sid, sizeof(sid), "%d-0", ms);
	return feed_add(f, sid, a, strlen(a));
}

/* The message, parsed; *reset and the ids of its alerts, space-separated. */
static json_t *
msg(const struct feed *f, uint64_t *pos)
{
	struct sbuf	 b;
	json_t		*o;

	sbuf_init(&b);
	assert_int_equal(feed_alerts_msg(f, pos, NULL, &b), 1);
	o = json_loads(sbuf_str(&b), 0, NULL);
	assert_non_null(o);
	sbuf_free(&b);
	assert_string_equal(json_string_value(json_object_get(o, "type")), "alerts");
	return o;
}

static const char *
nth_sid(json_t *o, size_t i)
{
	return json_string_value(json_object_get(json_array_get(
	    json_object_get(o, "alerts"), i), "sid"));
}

static void
test_positions(void **state)
{
	struct feed	*f;
	json_t		*o;
	uint64_t	 pos = FEED_NEW, p2;
	int		 i;

	(void)state;
	assert_null(feed_new(0, 10));
	assert_null(feed_new(10, 9));
	assert_non_null(f = feed_new(10, 10));
	assert_string_equal(feed_last_sid(f), "");
	/* a new page gets a reset even when there is nothing */
	assert_true(feed_pending(f, pos));
	o = msg(f, &pos);
	assert_true(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 0);
	json_decref(o);
	assert_false(feed_pending(f, pos));

	for (i = 1; i <= 4; i++)
		assert_int_equal(add(f, 1000 + i, i), 1);
	assert_string_equal(feed_last_sid(f), "1004-0");
	assert_true(feed_pending(f, pos));
	o = msg(f, &pos);
	assert_false(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 4);
	assert_string_equal(nth_sid(o, 0), "1001-0");
	/* the alert object goes out as it came */
	assert_string_equal(json_string_value(json_object_get(json_object_get(
	    json_array_get(json_object_get(o, "alerts"), 3), "alert"), "id")), "id-4");
	json_decref(o);
	assert_false(feed_pending(f, pos));

	/* a page that reconnects after 1002 gets 1003 and 1004 */
	p2 = feed_position(f, "1002-0");
	o = msg(f, &p2);
	assert_false(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 2);
	assert_string_equal(nth_sid(o, 0), "1003-0");
	json_decref(o);
	/* an id the feed does not hold: start over */
	assert_true(feed_position(f, "999-0") == FEED_NEW);
	assert_true(feed_position(f, "") == FEED_NEW);

	/* repeats, old ids and junk go nowhere; junk is counted */
	assert_int_equal(add(f, 1005, 4), 0);			/* id-4 again */
	assert_int_equal(add(f, 1003, 9), 0);			/* before the last */
	assert_int_equal(feed_add(f, "x-1", "{}", 2), 0);
	assert_int_equal(feed_add(f, "1006-0", "[1]", 3), 0);
	assert_int_equal(feed_add(f, "1007-0", "{\"id\":", 6), 0);
	assert_int_equal(feed_bad(f), 3);
	assert_string_equal(feed_last_sid(f), "1007-0");
	assert_false(feed_pending(f, pos));
	/* a page that saw the last id read, though it was junk, has all */
	assert_true(feed_position(f, "1007-0") == pos);

	/* 12 more through a history of 10: a page left behind starts over */
	p2 = pos;
	for (i = 0; i < 12; i++)
		assert_int_equal(add(f, 2000 + i, 100 + i), 1);
	o = msg(f, &p2);
	assert_true(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 10);
	assert_string_equal(nth_sid(o, 0), "2002-0");
	json_decref(o);
	feed_free(f);
	feed_free(NULL);
}

/* A page that needs more than a batch gets it in several messages. */
static void
test_batches(void **state)
{
	struct feed	*f;
	json_t		*o;
	uint64_t	 pos = FEED_NEW;
	int		 i;

	(void)state;
	assert_non_null(f = feed_new(FEED_BATCH_MAX + 200, FEED_BATCH_MAX + 200));
	for (i = 0; i < FEED_BATCH_MAX + 150; i++)
		assert_int_equal(add(f, 10000 + i, i), 1);
	o = msg(f, &pos);
	assert_true(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), FEED_BATCH_MAX);
	json_decref(o);
	assert_true(feed_pending(f, pos));
	o = msg(f, &pos);
	assert_false(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 150);
	json_decref(o);
	assert_false(feed_pending(f, pos));
	feed_free(f);
}

/*
 * A feed that keeps more than its history: a new page gets the history
 * only; a page behind by more than the history but within what is kept
 * catches up without a reset; past what is kept, it starts over.
 */
static void
test_keep_beyond_history(void **state)
{
	struct feed	*f;
	json_t		*o;
	uint64_t	 fresh = FEED_NEW, behind = FEED_NEW, gone;
	int		 i;

	(void)state;
	assert_non_null(f = feed_new(5, 50));
	o = msg(f, &behind);		/* at the start, empty */
	json_decref(o);
	for (i = 0; i < 40; i++)
		assert_int_equal(add(f, 3000 + i, i), 1);
	o = msg(f, &fresh);
	assert_true(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 5);
	assert_string_equal(nth_sid(o, 0), "3035-0");
	json_decref(o);
	o = msg(f, &behind);
	assert_false(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 40);
	assert_string_equal(nth_sid(o, 0), "3000-0");
	json_decref(o);
	/* since= an id older than the history but still kept */
	gone = feed_position(f, "3009-0");
	o = msg(f, &gone);
	assert_false(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 30);
	json_decref(o);
	/* 60 more: a page still at 3039 is 60 behind, more than kept */
	gone = feed_position(f, "3039-0");
	for (i = 0; i < 60; i++)
		assert_int_equal(add(f, 4000 + i, 100 + i), 1);
	o = msg(f, &gone);
	assert_true(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 5);
	assert_string_equal(nth_sid(o, 0), "4055-0");
	json_decref(o);
	feed_free(f);
}

/* feed_item walks what is kept, oldest first, past the ring's wrap (the API lists alerts from it). */
static void
test_item(void **state)
{
	struct feed		*f;
	const struct feed_item	*it;
	int			 i;

	(void)state;
	assert_non_null(f = feed_new(3, 4));
	assert_int_equal(feed_size(f), 0);
	assert_null(feed_item(f, 0));
	for (i = 0; i < 6; i++)
		assert_int_equal(add(f, 5000 + i, i), 1);
	assert_int_equal(feed_size(f), 4);
	assert_non_null(it = feed_item(f, 0));
	assert_string_equal(it->sid, "5002-0");
	assert_string_equal(it->id, "id-2");
	assert_int_equal(it->len, strlen(it->json));
	assert_string_equal(it->agent, "alice");
	assert_null(it->conversation);
	assert_non_null(it = feed_item(f, 3));
	assert_string_equal(it->sid, "5005-0");
	assert_string_equal(it->id, "id-5");
	assert_null(feed_item(f, 4));
	feed_free(f);
}

/*
 * The fields a filter or a scope reads are the alert's; one that holds
 * U+0000 is none at all, never the id before it: an alert of conversation
 * "c1\u0000" must not stand for conversation c1 (a login of one shop would
 * see another shop's c1 by it).
 */
static void
test_item_fields(void **state)
{
	struct feed		*f;
	const struct feed_item	*it;
	const char		*a = "{\"id\":\"a-1\",\"type\":\"rule.hit\","
	    "\"shop\":\"s1\",\"queue\":\"q1\",\"agent\":\"bob\","
	    "\"conversation\":\"c1\",\"severity\":\"warn\"}";
	const char		*b = "{\"id\":\"a-2\",\"type\":\"rule.hit\","
	    "\"shop\":\"s2\\u0000\",\"agent\":\"bob\","
	    "\"conversation\":\"c1\\u0000x\",\"severity\":\"warn\"}";
	const char		*c = "{\"id\":\"a\\u0000-3\",\"type\":\"rule.hit\"}";
	const char		*d = "{\"id\":\"a-4\",\"shop\":\"\",\"conversation\":7}";

	(void)state;
	assert_non_null(f = feed_new(10, 10));
	assert_int_equal(feed_add(f, "1-0", a, strlen(a)), 1);
	assert_int_equal(feed_add(f, "2-0", b, strlen(b)), 1);
	/* an id that holds U+0000 is no alert's */
	assert_int_equal(feed_add(f, "3-0", c, strlen(c)), 0);
	assert_int_equal(feed_bad(f), 1);
	assert_int_equal(feed_add(f, "4-0", d, strlen(d)), 1);
	assert_int_equal(feed_size(f), 3);
	it = feed_item(f, 0);
	assert_string_equal(it->shop, "s1");
	assert_string_equal(it->queue, "q1");
	assert_string_equal(it->agent, "bob");
	assert_string_equal(it->conversation, "c1");
	assert_string_equal(it->severity, "warn");
	it = feed_item(f, 1);
	assert_string_equal(it->id, "a-2");
	assert_null(it->shop);
	assert_null(it->conversation);
	assert_null(it->queue);
	assert_string_equal(it->agent, "bob");
	/* still kept whole, as it came */
	assert_int_equal(it->len, strlen(b));
	it = feed_item(f, 2);
	assert_null(it->shop);		/* "" is no shop */
	assert_null(it->conversation);	/* not a string */
	feed_free(f);
}

/* Chat text may hold U+0000; chatmond keeps it, and so does the feed. */
static void
test_nul_in_text(void **state)
{
	struct feed	*f;
	struct sbuf	 b;
	uint64_t	 pos = FEED_NEW;
	const char	*a = "{\"v\":1,\"id\":\"n-1\",\"type\":\"rule.hit\","
	    "\"text\":\"a\\u0000b\"}";

	(void)state;
	assert_non_null(f = feed_new(10, 10));
	assert_int_equal(feed_add(f, "1-0", a, strlen(a)), 1);
	assert_int_equal(feed_bad(f), 0);
	sbuf_init(&b);
	assert_int_equal(feed_alerts_msg(f, &pos, NULL, &b), 1);
	assert_non_null(strstr(sbuf_str(&b), a));	/* as it came */
	sbuf_free(&b);
	feed_free(f);
}

/* Rule hits of the local day, by agent and category, folded ones with their count. */
static void
test_hits_and_agents(void **state)
{
	struct feed		*f;
	struct sbuf		 b;
	struct state_agent	 ag[2];
	json_t			*o, *list, *a;
	char			*s;
	const char		*folded = "{\"id\":\"f-1\",\"ts\":\"2026-11-22T03:00:00.000Z\","
	    "\"type\":\"rule.hit\",\"agent\":\"carol\",\"category\":\"abuse\",\"count\":5}";

	(void)state;
	assert_non_null(f = feed_new(100, 100));
	assert_int_equal(feed_set_day(f, "2026-11-22", DAY0, DAY0 + DAYMS), 0);
	/* 23:59:59.999 the day before in Beijing, then 00:00 and later */
	s = alert(1, "rule.hit", "alice", "offplatform", "2026-11-21T15:59:59.999Z");
	assert_int_equal(feed_add(f, "1-0", s, strlen(s)), 1);
	s = alert(2, "rule.hit", "alice", "offplatform", "2026-11-21T16:00:00.000Z");
	assert_int_equal(feed_add(f, "2-0", s, strlen(s)), 1);
	s = alert(3, "rule.hit", "alice", "etiquette", "2026-11-22T09:00:00.000Z");
	assert_int_equal(feed_add(f, "3-0", s, strlen(s)), 1);
	s = alert(4, "sla.breach", "alice", "", "2026-11-22T09:00:00.000Z");
	assert_int_equal(feed_add(f, "4-0", s, strlen(s)), 1);
	s = alert(5, "rule.hit", "alice", "etiquette", "2026-11-22T16:00:00.000Z");
	assert_int_equal(feed_add(f, "5-0", s, strlen(s)), 1);	/* tomorrow there */
	assert_int_equal(feed_add(f, "6-0", folded, strlen(folded)), 1);

	memset(ag, 0, sizeof(ag));
	ag[0].agent = "alice";
	ag[0].f.rounds = 4;
	ag[0].f.mean_ms = 8300;
	ag[0].f.first_rounds = 2;
	ag[0].f.first_mean_ms = 5000;
	ag[0].f.rate = 0.75;
	ag[0].hour_rounds[10] = 4;
	ag[0].hour_mean_ms[10] = 8300;
	ag[1].agent = "bob";
	ag[1].f.rounds = 1;
	sbuf_init(&b);
	assert_int_equal(feed_agents_msg(f, ag, 2, &b), 0);
	o = json_loads(sbuf_str(&b), 0, NULL);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "type")), "agents");
	assert_string_equal(json_string_value(json_object_get(o, "day")), "2026-11-22");
	list = json_object_get(o, "agents");
	assert_int_equal(json_array_size(list), 3);	/* alice, bob, and carol: hits only */
	a = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(a, "agent")), "alice");
	assert_int_equal(json_integer_value(json_object_get(a, "rounds")), 4);
	assert_int_equal(json_integer_value(json_object_get(a, "mean_ms")), 8300);
	assert_int_equal(json_integer_value(json_object_get(a, "first_rounds")), 2);
	assert_int_equal(json_integer_value(json_object_get(a, "first_mean_ms")), 5000);
	assert_true(json_real_value(json_object_get(a, "rate")) == 0.75);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "hits"),
	    "offplatform")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "hits"),
	    "etiquette")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
	    json_object_get(a, "hours"), 0), "hour")), 10);
	a = json_array_get(list, 1);
	assert_string_equal(json_string_value(json_object_get(a, "agent")), "bob");
	assert_int_equal(json_object_size(json_object_get(a, "hits")), 0);
	a = json_array_get(list, 2);
	assert_string_equal(json_string_value(json_object_get(a, "agent")), "carol");
	assert_int_equal(json_integer_value(json_object_get(a, "rounds")), 0);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "hits"),
	    "abuse")), 5);
	json_decref(o);

	/* the next day starts with its own hit, counted ahead, and no other */
	assert_int_equal(feed_set_day(f, "2026-11-23", DAY0 + DAYMS, DAY0 + 2 * DAYMS), 0);
	sbuf_reset(&b);
	assert_int_equal(feed_agents_msg(f, NULL, 0, &b), 0);
	assert_non_null(strstr(sbuf_str(&b), "\"agents\":[{\"agent\":\"alice\","));
	assert_non_null(strstr(sbuf_str(&b), "\"hits\":{\"etiquette\":1}"));
	assert_null(strstr(sbuf_str(&b), "carol"));
	/* and the day after that from nothing */
	assert_int_equal(feed_set_day(f, "2026-11-24", DAY0 + 2 * DAYMS, DAY0 + 3 * DAYMS), 0);
	sbuf_reset(&b);
	assert_int_equal(feed_agents_msg(f, NULL, 0, &b), 0);
	assert_string_equal(sbuf_str(&b), "{\"type\":\"agents\",\"day\":\"2026-11-24\",\"agents\":[]}");
	sbuf_free(&b);
	feed_free(f);
}

/*
 * A v2 alert of a turn that broke two rules is one violation, under its
 * strongest rule's category: the dashboard counts events, not rules.
 */
static void
test_two_rules_count_once(void **state)
{
	struct feed	*f;
	struct sbuf	 b;
	json_t		*o, *a;
	const char	*two = "{\"v\":2,\"id\":\"t-1\",\"ts\":\"2026-11-22T03:00:00.000Z\","
	    "\"type\":\"rule.hit\",\"agent\":\"dave\",\"category\":\"stock\",\"rule\":\"s.n\","
	    "\"hits\":[{\"rule\":\"s.n\",\"category\":\"stock\"},{\"rule\":\"e.u\","
	    "\"category\":\"etiquette\"}]}";

	(void)state;
	assert_non_null(f = feed_new(100, 100));
	assert_int_equal(feed_set_day(f, "2026-11-22", DAY0, DAY0 + DAYMS), 0);
	assert_int_equal(feed_add(f, "1-0", two, strlen(two)), 1);
	sbuf_init(&b);
	assert_int_equal(feed_agents_msg(f, NULL, 0, &b), 0);
	assert_non_null(o = json_loads(sbuf_str(&b), 0, NULL));
	a = json_array_get(json_object_get(o, "agents"), 0);
	assert_string_equal(json_string_value(json_object_get(a, "agent")), "dave");
	assert_int_equal(json_object_size(json_object_get(a, "hits")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "hits"),
	    "stock")), 1);
	assert_int_equal(json_integer_value(json_object_get(a, "blocks")), 0);
	json_decref(o);
	sbuf_free(&b);
	feed_free(f);
}

/*
 * Blocks per agent, for the page's "blocks today": a blocked turn (its
 * strongest hit blocks) is one block, a folded one "count" blocks, a
 * warning none, yesterday's none; a new day starts from nothing.
 */
static void
test_blocks(void **state)
{
	struct feed	*f;
	struct sbuf	 b;
	json_t		*o, *a;
	char		 s[512];
	const char	*acts[] = { "block", "warn", "block", "flag" };
	const char	*ts[] = { "2026-11-22T03:00:00.000Z", "2026-11-22T03:00:01.000Z",
	    "2026-11-21T03:00:00.000Z", "2026-11-22T03:00:02.000Z" };
	char		 sid[16];
	int		 i;

	(void)state;
	assert_non_null(f = feed_new(100, 100));
	assert_int_equal(feed_set_day(f, "2026-11-22", DAY0, DAY0 + DAYMS), 0);
	for (i = 0; i < 4; i++) {
		snprintf(s, sizeof(s), "{\"v\":2,\"id\":\"b-%d\",\"ts\":\"%s\","
		    "\"type\":\"rule.hit\",\"agent\":\"erin\",\"category\":\"c\","
		    "\"action\":\"%s\"}", i, ts[i], acts[i]);
		snprintf(sid, sizeof(sid), "%d-0", i + 1);
		assert_int_equal(feed_add(f, sid, s, strlen(s)), 1);
	}
	snprintf(s, sizeof(s), "{\"v\":2,\"id\":\"b-9\",\"ts\":\"%s\",\"count\":3,"
	    "\"type\":\"rule.hit\",\"agent\":\"erin\",\"category\":\"c\","
	    "\"action\":\"block\"}", ts[0]);
	assert_int_equal(feed_add(f, "9-0", s, strlen(s)), 1);
	sbuf_init(&b);
	assert_int_equal(feed_agents_msg(f, NULL, 0, &b), 0);
	assert_non_null(o = json_loads(sbuf_str(&b), 0, NULL));
	a = json_array_get(json_object_get(o, "agents"), 0);
	assert_int_equal(json_integer_value(json_object_get(a, "blocks")), 4);
	json_decref(o);
	assert_int_equal(feed_set_day(f, "2026-11-23", DAY0 + DAYMS, DAY0 + 2 * DAYMS), 0);
	sbuf_reset(&b);
	assert_int_equal(feed_agents_msg(f, NULL, 0, &b), 0);
	assert_string_equal(sbuf_str(&b), "{\"type\":\"agents\",\"day\":\"2026-11-23\",\"agents\":[]}");
	sbuf_free(&b);
	feed_free(f);
}

/* The hits of a day's agents message, as {agent: {category: n}}; a reference the caller owns. */
static json_t *
day_hits(struct feed *f, const char *day)
{
	struct sbuf	 b;
	json_t		*o, *out, *a;
	size_t		 i;

	sbuf_init(&b);
	assert_int_equal(feed_agents_msg(f, NULL, 0, &b), 0);
	assert_non_null(o = json_loads(sbuf_str(&b), 0, NULL));
	assert_string_equal(json_string_value(json_object_get(o, "day")), day);
	out = json_object();
	json_array_foreach(json_object_get(o, "agents"), i, a)
		json_object_set(out, json_string_value(json_object_get(a, "agent")),
		    json_object_get(a, "hits"));
	json_decref(o);
	sbuf_free(&b);
	return out;
}

/*
 * A rule hit of the next local day is counted apart until the day moves:
 * today's are not wiped by an instance whose clock runs ahead (they were:
 * the feed moved to the next day on that alert), and the first seconds
 * after midnight are not lost. One days ahead (a wrong clock) is not
 * counted; a day that is not the next clears both.
 */
static void
test_next_day_counted_apart(void **state)
{
	struct feed	*f;
	json_t		*h;
	char		*s;

	(void)state;
	assert_non_null(f = feed_new(100, 100));
	assert_int_equal(feed_set_day(f, "2026-11-22", DAY0, DAY0 + DAYMS), 0);
	s = alert(1, "rule.hit", "alice", "offplatform", "2026-11-22T15:59:59.900Z");
	assert_int_equal(feed_add(f, "1-0", s, strlen(s)), 1);
	/* 00:00:00.100 in Beijing, 2026-11-23: six minutes early, say */
	s = alert(2, "rule.hit", "bob", "abuse", "2026-11-22T16:00:00.100Z");
	assert_int_equal(feed_add(f, "2-0", s, strlen(s)), 1);
	/* a week ahead: not counted */
	s = alert(3, "rule.hit", "carol", "offplatform", "2026-11-30T16:00:00.100Z");
	assert_int_equal(feed_add(f, "3-0", s, strlen(s)), 1);
	h = day_hits(f, "2026-11-22");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(h,
	    "alice"), "offplatform")), 1);
	assert_null(json_object_get(h, "bob"));
	assert_null(json_object_get(h, "carol"));
	json_decref(h);
	/* midnight by the caller's clock: bob's hit is the new day's */
	assert_int_equal(feed_set_day(f, "2026-11-23", DAY0 + DAYMS, DAY0 + 2 * DAYMS), 0);
	h = day_hits(f, "2026-11-23");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(h,
	    "bob"), "abuse")), 1);
	assert_null(json_object_get(h, "alice"));
	json_decref(h);
	/* a hit of the day after, then a jump of a week: nothing carried over */
	s = alert(4, "rule.hit", "dave", "abuse", "2026-11-23T17:00:00.000Z");
	assert_int_equal(feed_add(f, "4-0", s, strlen(s)), 1);
	assert_int_equal(feed_set_day(f, "2026-11-30", DAY0 + 8 * DAYMS, DAY0 + 9 * DAYMS), 0);
	h = day_hits(f, "2026-11-30");
	assert_int_equal(json_object_size(h), 0);
	json_decref(h);
	feed_free(f);
}

/* A shop's alert: alert() with "shop" and "queue" (NULL: none) after "conversation". */
static const char *
shop_alert(int n, const char *agent, const char *shop, const char *queue,
    const char *conv)
{
	static char	buf[512];

	snprintf(buf, sizeof(buf), "{\"v\":1,\"id\":\"s-%d\",\"ts\":"
	    "\"2026-11-22T02:00:00.000Z\",\"type\":\"rule.hit\",\"severity\":"
	    "\"warn\",\"agent\":\"%s\",\"conversation\":\"%s\"%s%s%s%s%s%s,"
	    "\"category\":\"abuse\"}", n, agent, conv,
	    shop ? ",\"shop\":\"" : "", shop ? shop : "", shop ? "\"" : "",
	    queue ? ",\"queue\":\"" : "", queue ? queue : "", queue ? "\"" : "");
	return buf;
}

/*
 * Shops: an agent's hits stay within the shop of the alert, the rows carry
 * their shop and queue, and a scoped page gets only its shops' alerts and
 * rows.
 */
static void
test_shops(void **state)
{
	struct feed		*f;
	struct sbuf		 b, sc;
	struct state_agent	 ag[3];
	json_t			*o, *list, *a;
	const char		*s;
	uint64_t		 pos = FEED_NEW;

	(void)state;
	assert_non_null(f = feed_new(100, 100));
	assert_int_equal(feed_set_day(f, "2026-11-22", DAY0, DAY0 + DAYMS), 0);
	s = shop_alert(1, "alice", NULL, NULL, "c0");
	assert_int_equal(feed_add(f, "1-0", s, strlen(s)), 1);
	s = shop_alert(2, "alice", "tm", NULL, "c1");
	assert_int_equal(feed_add(f, "2-0", s, strlen(s)), 1);
	s = shop_alert(3, "alice", "tm", "presale", "c2");
	assert_int_equal(feed_add(f, "3-0", s, strlen(s)), 1);
	s = shop_alert(4, "alice", "jd", NULL, "c3");
	assert_int_equal(feed_add(f, "4-0", s, strlen(s)), 1);
	assert_null(feed_item(f, 0)->shop);
	assert_string_equal(feed_item(f, 0)->conversation, "c0");
	assert_string_equal(feed_item(f, 2)->shop, "tm");
	assert_string_equal(feed_item(f, 2)->queue, "presale");
	assert_string_equal(feed_item(f, 2)->conversation, "c2");
	assert_null(feed_item(f, 9));

	/* figures of alice in no shop and in tm's presale; her hits in tm and jd have no figures */
	memset(ag, 0, sizeof(ag));
	ag[0].agent = "alice";
	ag[0].shop = "";
	ag[0].queue = "";
	ag[0].f.rounds = 1;
	ag[1].agent = "alice";
	ag[1].shop = "tm";
	ag[1].queue = "presale";
	ag[1].f.rounds = 2;
	ag[2].agent = "bob";
	ag[2].shop = "tm";
	ag[2].queue = "presale";
	ag[2].f.rounds = 3;
	sbuf_init(&b);
	sbuf_init(&sc);
	assert_int_equal(feed_agents_msg(f, ag, 3, &b), 0);
	assert_non_null(o = json_loads(sbuf_str(&b), 0, NULL));
	list = json_object_get(o, "agents");
	/* "", then jd, then tm (its own before presale) */
	assert_int_equal(json_array_size(list), 5);
	a = json_array_get(list, 0);
	assert_null(json_object_get(a, "shop"));
	assert_int_equal(json_integer_value(json_object_get(a, "rounds")), 1);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a,
	    "hits"), "abuse")), 1);
	a = json_array_get(list, 1);
	assert_string_equal(json_string_value(json_object_get(a, "shop")), "jd");
	assert_null(json_object_get(a, "queue"));
	assert_int_equal(json_integer_value(json_object_get(a, "rounds")), 0);
	a = json_array_get(list, 2);
	assert_string_equal(json_string_value(json_object_get(a, "shop")), "tm");
	assert_null(json_object_get(a, "queue"));
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a,
	    "hits"), "abuse")), 1);
	a = json_array_get(list, 3);
	assert_string_equal(json_string_value(json_object_get(a, "shop")), "tm");
	assert_string_equal(json_string_value(json_object_get(a, "queue")), "presale");
	assert_string_equal(json_string_value(json_object_get(a, "agent")), "alice");
	assert_int_equal(json_integer_value(json_object_get(a, "rounds")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a,
	    "hits"), "abuse")), 1);
	a = json_array_get(list, 4);
	assert_string_equal(json_string_value(json_object_get(a, "agent")), "bob");
	json_decref(o);

	/* the rows a login of tm sees */
	assert_int_equal(feed_scope_msg(b.s, b.len, "tm", &sc), 0);
	assert_non_null(o = json_loads(sbuf_str(&sc), 0, NULL));
	assert_int_equal(json_array_size(json_object_get(o, "agents")), 3);
	json_decref(o);
	/* a waiting message: the rows and the total of its shops */
	sbuf_reset(&sc);
	s = "{\"type\":\"waiting\",\"total\":3,\"rounds\":[{\"conversation\":\"a\"},"
	    "{\"conversation\":\"b\",\"shop\":\"jd\"},{\"conversation\":\"c\","
	    "\"shop\":\"tm\"}]}";
	assert_int_equal(feed_scope_msg(s, strlen(s), "jd,tm", &sc), 0);
	assert_non_null(o = json_loads(sbuf_str(&sc), 0, NULL));
	assert_int_equal(json_array_size(json_object_get(o, "rounds")), 2);
	assert_int_equal(json_integer_value(json_object_get(o, "total")), 2);
	json_decref(o);
	assert_int_equal(feed_scope_msg("nope", 4, "tm", &sc), -1);
	/*
	 * a message of every shop's longest with their counts: a page gets
	 * the longest STATE_FEED_WAITING_MAX of its shops, their count, and
	 * no other shop's count
	 */
	{
		struct sbuf	 w;
		size_t		 i;

		sbuf_init(&w);
		assert_int_equal(sbuf_printf(&w, "{\"type\":\"waiting\","
		    "\"total\":900,\"shops\":{\"jd\":600,\"tm\":290,\"\":10},"
		    "\"rounds\":["), 0);
		for (i = 0; i < 2 * STATE_FEED_WAITING_MAX + 10; i++)
			assert_int_equal(sbuf_printf(&w, "%s{\"conversation\":"
			    "\"c%zu\",\"shop\":\"%s\"}", i ? "," : "", i,
			    i < STATE_FEED_WAITING_MAX ? "jd" : i < 2 *
			    STATE_FEED_WAITING_MAX ? "tm" : "ot"), 0);
		assert_int_equal(sbuf_printf(&w, "]}"), 0);
		sbuf_reset(&sc);
		assert_int_equal(feed_scope_msg(w.s, w.len, "tm", &sc), 0);
		assert_non_null(o = json_loads(sbuf_str(&sc), 0, NULL));
		assert_int_equal(json_array_size(json_object_get(o, "rounds")),
		    STATE_FEED_WAITING_MAX);
		assert_int_equal(json_integer_value(json_object_get(o, "total")), 290);
		assert_int_equal(json_object_size(json_object_get(o, "shops")), 1);
		json_decref(o);
		/* every shop: the longest of all, the total as it is */
		sbuf_reset(&sc);
		assert_int_equal(feed_scope_msg(w.s, w.len, NULL, &sc), 0);
		assert_non_null(o = json_loads(sbuf_str(&sc), 0, NULL));
		assert_int_equal(json_array_size(json_object_get(o, "rounds")),
		    STATE_FEED_WAITING_MAX);
		assert_string_equal(json_string_value(json_object_get(json_array_get(
		    json_object_get(o, "rounds"), 0), "shop")), "jd");
		assert_int_equal(json_integer_value(json_object_get(o, "total")), 900);
		json_decref(o);
		sbuf_free(&w);
	}

	/* the alerts a login of tm gets: its two, none without a shop */
	sbuf_reset(&b);
	assert_int_equal(feed_alerts_msg(f, &pos, "tm", &b), 1);
	assert_non_null(o = json_loads(sbuf_str(&b), 0, NULL));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 2);
	assert_string_equal(nth_sid(o, 0), "2-0");
	assert_string_equal(nth_sid(o, 1), "3-0");
	assert_int_equal(pos, 4);	/* past all, seen or not */
	json_decref(o);
	/*
	 * another shop's alerts, and one without a shop: no message (an empty
	 * one would tell the login that another shop had an alert), the
	 * page's place past them all the same, and out as it was
	 */
	s = shop_alert(5, "alice", "jd", NULL, "c3");
	assert_int_equal(feed_add(f, "5-0", s, strlen(s)), 1);
	s = shop_alert(6, "alice", NULL, NULL, "c0");
	assert_int_equal(feed_add(f, "6-0", s, strlen(s)), 1);
	sbuf_reset(&b);
	assert_int_equal(sbuf_printf(&b, "before"), 0);
	assert_int_equal(feed_alerts_msg(f, &pos, "tm", &b), 0);
	assert_int_equal(pos, 6);
	assert_string_equal(sbuf_str(&b), "before");
	assert_int_equal(feed_pending(f, pos), 0);
	/* its own shop's next is sent as before */
	s = shop_alert(7, "alice", "tm", NULL, "c1");
	assert_int_equal(feed_add(f, "7-0", s, strlen(s)), 1);
	sbuf_reset(&b);
	assert_int_equal(feed_alerts_msg(f, &pos, "tm", &b), 1);
	assert_non_null(o = json_loads(sbuf_str(&b), 0, NULL));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 1);
	assert_string_equal(nth_sid(o, 0), "7-0");
	json_decref(o);
	/* a page that has nothing yet gets its (empty) reset, whatever its shops */
	pos = FEED_NEW;
	sbuf_reset(&b);
	assert_int_equal(feed_alerts_msg(f, &pos, "nope", &b), 1);
	assert_non_null(o = json_loads(sbuf_str(&b), 0, NULL));
	assert_true(json_is_true(json_object_get(o, "reset")));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 0);
	json_decref(o);
	pos = FEED_NEW;
	sbuf_reset(&b);
	assert_int_equal(feed_alerts_msg(f, &pos, NULL, &b), 1);
	assert_non_null(o = json_loads(sbuf_str(&b), 0, NULL));
	assert_int_equal(json_array_size(json_object_get(o, "alerts")), 7);
	json_decref(o);
	sbuf_free(&b);
	sbuf_free(&sc);
	feed_free(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_keep_beyond_history),
		cmocka_unit_test(test_item),
		cmocka_unit_test(test_item_fields),
		cmocka_unit_test(test_nul_in_text),
		cmocka_unit_test(test_hits_and_agents),
		cmocka_unit_test(test_two_rules_count_once),
		cmocka_unit_test(test_blocks),
		cmocka_unit_test(test_next_day_counted_apart),
		cmocka_unit_test(test_shops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
