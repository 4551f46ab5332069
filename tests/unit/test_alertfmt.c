/* test_alertfmt: the alert objects written without a document give the bytes jansson's compact dump of the same document gives, and allocate nothing once the buffer is grown. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "allocfail.h"
#include "chatmon/alertfmt.h"
#include "chatmon/jsonw.h"
#include "chatmon/sla.h"

#define B(s)	(s), (sizeof(s) - 1)

/* Strings that exercise the escaper: every class of byte a chat text may hold. */
static const struct {
	const char	*s;
	size_t		 len;
} texts[] = {
	{ B("") },
	{ B("加我薇信 abc123") },
	{ B("quote \" backslash \\ slash / ") },
	{ B("\b\f\n\r\t\x01\x1f\x7f") },
	{ B("a\0b") },
	{ B("line\u2028sep\u2029 emoji \xf0\x9f\x98\x80") },
	{ B("亲，您好！【活动】\"满300减50\"\n详情见链接") },
};

static char *
jansson_dump(json_t *o)
{
	char	*s;

	assert_non_null(o);
	s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	json_decref(o);
	assert_non_null(s);
	return s;
}

/* One hit's fields as jansson writes them, in the order of docs/alerts.md. */
static void
hit_fields(json_t *o, const struct alertfmt_hit *x)
{
	const struct rules_hit	*h = &x->hit;

	json_object_set_new(o, "match", json_pack("{s:i, s:i}", "start",
	    (json_int_t)h->start, "end", (json_int_t)h->end));
	json_object_set_new(o, "matched", json_stringn(h->match, h->match_len));
	json_object_set_new(o, "message", json_string(h->message));
	if (x->turns > 1)
		json_object_set_new(o, "turns", json_integer(x->turns));
	if (x->vetoed)
		json_object_set_new(o, "vetoed", json_true());
}

/* The v2 alert built as a document: v1's fields (the strongest hit's), then "hits". */
static char *
doc_rule_hit(const struct alertfmt_turn *t, const struct alertfmt_hit *x, size_t n)
{
	const struct rules_hit	*h = &x[0].hit;
	char			 ts[32];
	json_t			*o, *hits, *e;
	size_t			 i;

	alertfmt_ts(ts, t->wall_ms);
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s#, s:s, s:s, s:s, s:s, s:s#}",
	    "v", 2, "id", t->id, "ts", ts, "type", "rule.hit",
	    "severity", rules_severity_name(h->severity), "agent", t->agent,
	    "conversation", t->conversation, (int)t->conversation_len, "role", t->role,
	    "category", h->category, "rule", h->rule, "action", rules_action_name(h->action),
	    "text", t->text, (int)t->text_len);
	assert_non_null(o);
	hit_fields(o, &x[0]);
	/* at the top, turns counts the text's, whatever the strongest spans */
	json_object_del(o, "turns");
	json_object_del(o, "vetoed");
	if (t->turns > 1)
		json_object_set_new(o, "turns", json_integer(t->turns));
	if (x[0].vetoed)
		json_object_set_new(o, "vetoed", json_true());
	hits = json_array();
	for (i = 0; i < n; i++) {
		h = &x[i].hit;
		e = json_pack("{s:s, s:s, s:s, s:s}", "rule", h->rule, "category",
		    h->category, "severity", rules_severity_name(h->severity),
		    "action", rules_action_name(h->action));
		hit_fields(e, &x[i]);
		json_array_append_new(hits, e);
	}
	json_object_set_new(o, "hits", hits);
	return jansson_dump(o);
}

static void
test_rule_hit_same_bytes(void **state)
{
	struct alertfmt_turn	 t = { .id = "1795341605000-8ebe0f0b-0000000001",
				       .wall_ms = 1795341605123, .agent = "alice",
				       .role = "agent" };
	struct alertfmt_hit	 x[2] = {
		{ .hit = { .rule = "offplatform.add_contact_app",
			   .category = "offplatform",
			   .message = "亲,平台规定只能在旺旺上沟通\n(天猫高压线)",
			   .severity = RULES_CRITICAL, .action = RULES_BLOCK,
			   .start = 0, .end = 4 } },
		{ .hit = { .rule = "abuse.insult", .category = "abuse",
			   .message = "", .severity = RULES_WARN,
			   .action = RULES_FLAG, .start = 1, .end = 2,
			   .match = "我", .match_len = 3 } },
	};
	struct sbuf		 out;
	char			*want;
	size_t			 i, j;

	(void)state;
	sbuf_init(&out);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		for (j = 0; j < 8; j++) {
			t.text = texts[i].s;
			t.text_len = texts[i].len;
			t.conversation = texts[(i + 1) % 7].s;
			t.conversation_len = texts[(i + 1) % 7].len;
			x[0].hit.match = texts[i].s;
			x[0].hit.match_len = texts[i].len;
			x[0].turns = j & 1 ? 3 : 1;
			x[0].vetoed = (j >> 1) & 1;
			x[0].hit.action = (j >> 1) & 1 ? RULES_WARNING : RULES_BLOCK;
			x[1].turns = j & 1 ? 1 : 2;
			/* the text holds the widest hit's turns */
			t.turns = x[0].turns > 1 ? x[0].turns : j >> 2 ? x[1].turns : 1;
			sbuf_reset(&out);
			assert_int_equal(alertfmt_rule_hit(&out, &t, x, 1 + (j >> 2)), 0);
			want = doc_rule_hit(&t, x, 1 + (j >> 2));
			assert_string_equal(sbuf_str(&out), want);
			free(want);
		}
	sbuf_free(&out);
}

/*
 * What a log may show of an alert (found by review: a dropped alert was
 * logged whole, chat text and all): its id, type and severity, read off
 * the object's head; a text that spells a key does not fool it.
 */
static void
test_get_word(void **state)
{
	struct alertfmt_turn	 t = { .id = "1795341605000-8ebe0f0b-0000000001",
				       .wall_ms = 1795341605123, .agent = "alice",
				       .conversation = "c-1", .conversation_len = 3,
				       .role = "agent", .text = B("加我薇信") };
	struct alertfmt_hit	 x = { .hit = { .rule = "offplatform.add_contact_app",
					.category = "offplatform", .message = "",
					.severity = RULES_WARN, .action = RULES_FLAG } };
	struct sla_event	 e = { .agent = "bob", .conversation = "c-2",
				       .conversation_len = 3, .type = SLA_ESCALATE,
				       .due = 1795341635000, .opened = 1795341605000,
				       .waited_ms = 180000, .threshold_ms = 180000 };
	struct alertfmt_ids	 ids = { 0x8ebe0f0b, 0, 0 };
	struct sbuf		 out;
	char			 id[ALERTFMT_ID_MAX], w[16], tiny[4];

	(void)state;
	sbuf_init(&out);
	assert_int_equal(alertfmt_rule_hit(&out, &t, &x, 1), 0);
	alertfmt_get_id(id, out.s, out.len);
	assert_string_equal(id, t.id);
	alertfmt_get_word(w, sizeof(w), out.s, out.len, "type");
	assert_string_equal(w, "rule.hit");
	alertfmt_get_word(w, sizeof(w), out.s, out.len, "severity");
	assert_string_equal(w, "warn");
	alertfmt_get_word(tiny, sizeof(tiny), out.s, out.len, "type");
	assert_string_equal(tiny, "-");		/* does not fit */
	alertfmt_get_word(w, sizeof(w), out.s, 10, "type");
	assert_string_equal(w, "-");		/* cut short */

	sbuf_reset(&out);
	assert_int_equal(alertfmt_sla(&out, &ids, &e), 0);
	alertfmt_get_word(w, sizeof(w), out.s, out.len, "type");
	assert_string_equal(w, "sla.escalate");
	alertfmt_get_word(w, sizeof(w), out.s, out.len, "severity");
	assert_string_equal(w, "critical");
	alertfmt_get_word(w, sizeof(w), B("{\"v\":2}"), "type");
	assert_string_equal(w, "-");
	/* chat text spelling a key is escaped: not taken for one */
	alertfmt_get_word(w, sizeof(w), B("{\"text\":\"\\\"type\\\":\\\"x\\\"\","
	    "\"type\":\"rule.hit\"}"), "type");
	assert_string_equal(w, "rule.hit");
	sbuf_free(&out);
}

/* Strongest first: action, then severity; a tie keeps the order given. */
static void
test_hit_order(void **state)
{
	struct alertfmt_hit	 a = { .hit = { .action = RULES_BLOCK, .severity = RULES_INFO } };
	struct alertfmt_hit	 b = { .hit = { .action = RULES_WARNING, .severity = RULES_CRITICAL } };
	struct alertfmt_hit	 c = { .hit = { .action = RULES_WARNING, .severity = RULES_WARN } };
	struct alertfmt_hit	 d = { .hit = { .action = RULES_FLAG, .severity = RULES_CRITICAL } };

	(void)state;
	assert_true(alertfmt_hit_cmp(&a, &b) < 0);
	assert_true(alertfmt_hit_cmp(&b, &a) > 0);
	assert_true(alertfmt_hit_cmp(&b, &c) < 0);
	assert_true(alertfmt_hit_cmp(&c, &d) < 0);
	assert_int_equal(alertfmt_hit_cmp(&c, &c), 0);
}

static void
test_sla_and_warning_same_bytes(void **state)
{
	struct alertfmt_ids	 ids = { .instance = 0x8ebe0f0b };
	struct sla_event	 e = { .type = SLA_BREACH, .agent = "bob", .first = 1,
				       .waited_ms = 30000, .threshold_ms = 30000,
				       .due = 1795341635000, .opened = 1795341605000 };
	struct sbuf		 out, frame;
	json_t			*o;
	char			*want, id[ALERTFMT_ID_MAX], ts[32];
	size_t			 i;

	(void)state;
	sbuf_init(&out);
	sbuf_init(&frame);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		e.conversation = texts[i].s;
		e.conversation_len = texts[i].len;
		e.type = (enum sla_event_type)(i % 3);
		e.first = (int)(i & 1);
		ids.by_round = (int)(i & 1);
		sbuf_reset(&out);
		assert_int_equal(alertfmt_sla(&out, &ids, &e), 0);
		/* the id it chose, read back, is the one the old writer would take */
		alertfmt_get_id(id, sbuf_str(&out), out.len);
		alertfmt_ts(ts, e.due);
		o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s#, s:I, s:I, s:b}",
		    "v", 2, "id", id, "ts", ts, "type", alertfmt_sla_type(&e),
		    "severity", alertfmt_sla_severity(&e), "agent", e.agent,
		    "conversation", e.conversation, (int)e.conversation_len,
		    "waited_ms", (json_int_t)e.waited_ms,
		    "threshold_ms", (json_int_t)e.threshold_ms, "first", e.first);
		want = jansson_dump(o);
		assert_string_equal(sbuf_str(&out), want);
		free(want);

		sbuf_reset(&frame);
		assert_int_equal(alertfmt_warning(&frame, e.conversation, e.conversation_len,
		    out.s, out.len, (int)(i & 1)), 0);
		o = json_pack("{s:s, s:s#, s:o, s:b}", "type", "chatmon.warning",
		    "conversation", e.conversation, (int)e.conversation_len,
		    "alert", json_loadb(out.s, out.len, JSON_ALLOW_NUL, NULL), "blocked",
		    (int)(i & 1));
		want = jansson_dump(o);
		assert_string_equal(sbuf_str(&frame), want);
		free(want);
	}
	sbuf_free(&out);
	sbuf_free(&frame);
}

/* Bytes that are not UTF-8 (the writer's callers check, but it stays JSON). */
static void
test_not_utf8(void **state)
{
	struct sbuf	out;
	json_t		*j;

	(void)state;
	sbuf_init(&out);
	assert_int_equal(jsonw_str(&out, B("a\xff" "b\xe5\x9c" "c\xc0\xaf" "\xed\xa0\x80")), 0);
	assert_string_equal(sbuf_str(&out), "\"a\xef\xbf\xbd" "b\xef\xbf\xbd\xef\xbf\xbd"
	    "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	j = json_loadb(out.s, out.len, JSON_DECODE_ANY, NULL);
	assert_non_null(j);
	json_decref(j);
	sbuf_free(&out);
}

/* One buffer grown once serves every alert after: the hot path allocates nothing. */
static void
test_no_allocation(void **state)
{
	struct alertfmt_turn	 t = { .id = "x", .wall_ms = 1, .agent = "alice",
				       .conversation = "c-1", .conversation_len = 3,
				       .role = "agent", .text = "加我薇信 abc123",
				       .text_len = sizeof("加我薇信 abc123") - 1 };
	struct alertfmt_hit	 h[2] = {
		{ .hit = { .rule = "r", .category = "c", .message = "m",
			   .match = "加我", .match_len = 6, .end = 2 } },
		{ .hit = { .rule = "s", .category = "c", .message = "",
			   .match = "我", .match_len = 3, .start = 1, .end = 2 } },
	};
	struct sbuf		 out;
	int			 i;

	(void)state;
	if (!allocfail_active())
		skip();
	sbuf_init(&out);
	assert_int_equal(alertfmt_rule_hit(&out, &t, h, 2), 0);
	allocfail_calls = 0;
	for (i = 0; i < 100; i++) {
		sbuf_reset(&out);
		assert_int_equal(alertfmt_rule_hit(&out, &t, h, 2), 0);
	}
	assert_int_equal(allocfail_calls, 0);
	/* and a buffer that cannot grow is an error, not a cut alert */
	sbuf_free(&out);
	sbuf_init(&out);
	allocfail_after = 0;
	assert_int_equal(alertfmt_rule_hit(&out, &t, h, 2), -1);
	allocfail_after = -1;
	sbuf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rule_hit_same_bytes),
		cmocka_unit_test(test_hit_order),
		cmocka_unit_test(test_sla_and_warning_same_bytes),
		cmocka_unit_test(test_not_utf8),
		cmocka_unit_test(test_no_allocation),
		cmocka_unit_test(test_get_word),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
