/* test_pipeline: a turn's order of things (rules, blocking, the SLA) and a due event's alert, with real rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "allocfail.h"

#include "chatmon/pipeline.h"

#define T0	1795305600000LL		/* 2026-11-22 00:00:00 UTC */

static const char rules_yaml[] =
    "- rule: t.block\n"
    "  category: abuse\n"
    "  severity: critical\n"
    "  action: block\n"
    "  pattern: '滚出去'\n"
    "  message: 请文明用语\n"
    "  examples: {match: [你滚出去], no_match: [出去走走]}\n"
    "- rule: t.warn\n"
    "  category: etiquette\n"
    "  severity: warn\n"
    "  action: warn\n"
    "  pattern: '不知道'\n"
    "  message: 我帮您查一下\n"
    "  examples: {match: [我不知道], no_match: [知道了]}\n"
    "- rule: t.flag\n"
    "  category: etiquette\n"
    "  severity: info\n"
    "  action: flag\n"
    "  pattern: '自己看'\n"
    "  examples: {match: [你自己看], no_match: [看看]}\n"
    "- rule: t.split\n"
    "  category: offplatform\n"
    "  severity: critical\n"
    "  action: block\n"
    "  window: true\n"
    "  pattern: '加我v[a-z0-9_]{5,}'\n"
    "  message: 请在平台内沟通\n"
    "  examples: {match: ['加我v abc12345'], no_match: [加我, abc12345]}\n"
    "- rule: t.threat\n"
    "  category: complaint_risk\n"
    "  severity: warn\n"
    "  action: flag\n"
    "  role: customer\n"
    "  window: true\n"
    "  pattern: '不退款[^。]{0,6}差评'\n"
    "  examples: {match: [不退款就差评], no_match: [退款了]}\n";

struct fixture {
	char			 dir[64];
	struct rules		*rules;
	struct rulebook		*book;		/* rules alone */
	struct detect		*detect;
	struct alertfmt_ids	 ids;
	struct pipeline		*p;
};

static int
setup(void **state)
{
	struct fixture		*fx;
	struct window_conf	 wc = { 3, 60000, 1024, 100, 0 };
	struct sbuf		 errs;
	char			 path[128];
	FILE			*f;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	*state = fx;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_pipeline.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/t.yaml", fx->dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(rules_yaml, f);
	fclose(f);
	sbuf_init(&errs);
	fx->rules = rules_load_dir(fx->dir, 0, &errs);
	if (fx->rules == NULL)
		fprintf(stderr, "%s", sbuf_str(&errs));
	sbuf_free(&errs);
	if (fx->rules == NULL ||
	    (fx->book = rulebook_of(fx->rules)) == NULL ||
	    (fx->detect = detect_new(fx->book, &wc)) == NULL ||
	    (fx->p = pipeline_new(fx->detect, &fx->ids)) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;
	char		 path[128];

	pipeline_free(fx->p);
	detect_free(fx->detect);
	rulebook_free(fx->book);
	rules_free(fx->rules);
	snprintf(path, sizeof(path), "%s/t.yaml", fx->dir);
	unlink(path);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static int
turn(struct fixture *fx, int customer, const char *conv, const char *text,
    int64_t now, struct pipeline_out *out)
{
	struct pipeline_turn	t;

	t.customer = customer;
	t.agent = "alice";
	t.conversation = conv;
	t.conversation_len = strlen(conv);
	t.text = text;
	t.text_len = text != NULL ? strlen(text) : 0;
	t.now_ms = now;
	t.clock_ms = now;
	t.robot = 0;
	t.shop = "";
	t.queue = "";
	return pipeline_turn(fx->p, &t, out);
}

/* s holds needle, in len bytes (alerts are not NUL-terminated one by one). */
static int
has(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle)) != NULL;
}

static void
test_clean_turn_is_timed(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;

	assert_int_equal(turn(fx, 1, "c-1", "请问什么时候发货", T0, &out), 0);
	assert_int_equal(out.nalerts, 0);
	assert_false(out.drop);
	assert_int_equal(out.sla, PIPELINE_SLA_TURN);
	assert_int_equal(turn(fx, 0, "c-1", "今天就发", T0 + 1000, &out), 0);
	assert_int_equal(out.sla, PIPELINE_SLA_TURN);
}

/*
 * An agent's message that says nothing ("", spaces, U+3000) answers
 * nothing (found by review: it closed the round); a customer's is still a
 * turn (an image may come with no text).
 */
static void
test_blank_reply_is_not_timed(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;

	assert_int_equal(turn(fx, 1, "c-1", "", T0, &out), 0);
	assert_int_equal(out.sla, PIPELINE_SLA_TURN);
	assert_int_equal(turn(fx, 0, "c-1", "", T0 + 1000, &out), 0);
	assert_int_equal(out.sla, PIPELINE_SLA_NONE);
	assert_false(out.drop);
	assert_int_equal(turn(fx, 0, "c-1", " \xe3\x80\x80 ", T0 + 2000, &out), 0);
	assert_int_equal(out.sla, PIPELINE_SLA_NONE);
	assert_int_equal(turn(fx, 0, "c-1", "在的", T0 + 3000, &out), 0);
	assert_int_equal(out.sla, PIPELINE_SLA_TURN);
}

/* warn: the agent is told before anything queued; flag: supervisors only. */
static void
test_warn_and_flag(void **state)
{
	struct fixture			*fx = *state;
	struct pipeline_out		 out;
	const struct pipeline_alert	*a;

	assert_int_equal(turn(fx, 0, "c-2", "你自己看", T0, &out), 0);
	assert_int_equal(out.nalerts, 1);
	a = &out.alerts[0];
	assert_string_equal(a->what, "t.flag");
	assert_int_equal(a->nhits, 1);
	assert_null(a->frame);
	assert_true(has(a->json, a->json_len, "\"v\":2"));
	assert_true(has(a->json, a->json_len, "\"type\":\"rule.hit\""));
	assert_true(has(a->json, a->json_len, "\"conversation\":\"c-2\""));
	assert_true(has(a->json, a->json_len, "\"hits\":[{\"rule\":\"t.flag\""));

	assert_int_equal(turn(fx, 0, "c-2", "我不知道", T0 + 1, &out), 0);
	assert_false(out.drop);
	assert_int_equal(out.sla, PIPELINE_SLA_TURN);
	assert_int_equal(out.nalerts, 1);
	a = &out.alerts[0];
	assert_string_equal(a->what, "t.warn");
	assert_non_null(a->hit);
	assert_int_equal(a->severity, 1);
	assert_non_null(a->frame);
	assert_false(a->ordered);
	assert_true(has(a->frame, a->frame_len, "\"type\":\"chatmon.warning\""));
	assert_true(has(a->frame, a->frame_len, "\"blocked\":false"));
	/* the warning carries the very alert that is published */
	assert_true(has(a->frame, a->frame_len, "\"alert\":"));
	assert_memory_equal(strstr(a->frame, "\"alert\":") + 8, a->json, a->json_len);
}

/*
 * Two rules, one turn: one alert (the strongest's fields on top, both in
 * hits, strongest first) and one warning.
 */
static void
test_two_rules_one_alert(void **state)
{
	struct fixture			*fx = *state;
	struct pipeline_out		 out;
	const struct pipeline_alert	*a;

	assert_int_equal(turn(fx, 0, "c-2b", "你自己看,我不知道", T0, &out), 0);
	assert_false(out.drop);
	assert_int_equal(out.nalerts, 1);
	a = &out.alerts[0];
	assert_int_equal(a->nhits, 2);
	assert_string_equal(a->what, "t.warn");
	assert_string_equal(a->hits[0].hit.rule, "t.warn");
	assert_string_equal(a->hits[1].hit.rule, "t.flag");
	assert_ptr_equal(a->hit, &a->hits[0].hit);
	assert_int_equal(a->severity, 1);
	assert_non_null(a->frame);
	assert_true(has(a->json, a->json_len, "\"rule\":\"t.warn\",\"action\":\"warn\","
	    "\"text\":\"你自己看,我不知道\",\"match\":{\"start\":6,\"end\":9}"));
	assert_true(has(a->json, a->json_len, "\"hits\":[{\"rule\":\"t.warn\","
	    "\"category\":\"etiquette\",\"severity\":\"warn\",\"action\":\"warn\","
	    "\"match\":{\"start\":6,\"end\":9},\"matched\":\"不知道\",\"message\":"
	    "\"我帮您查一下\"},{\"rule\":\"t.flag\",\"category\":\"etiquette\","
	    "\"severity\":\"info\",\"action\":\"flag\",\"match\":{\"start\":1,"
	    "\"end\":4},\"matched\":\"自己看\",\"message\":\"\"}]}"));
}

/* A block drops the message, its one warning says blocked, nothing is timed. */
static void
test_block_is_not_timed(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;

	assert_int_equal(turn(fx, 0, "c-3", "不知道,滚出去", T0, &out), 0);
	assert_true(out.drop);
	assert_int_equal(out.sla, PIPELINE_SLA_NONE);
	assert_int_equal(out.nalerts, 1);
	assert_int_equal(out.alerts[0].nhits, 2);
	assert_string_equal(out.alerts[0].what, "t.block");
	assert_int_equal(out.alerts[0].severity, 2);
	assert_non_null(out.alerts[0].frame);
	assert_true(has(out.alerts[0].frame, out.alerts[0].frame_len,
	    "\"blocked\":true"));
}

/*
 * A match across turns and one in the turn alone: one alert, its text the
 * turns joined, the turn's own offsets moved into it.
 */
static void
test_window_and_turn_grouped(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;
	const char		*j;

	assert_int_equal(turn(fx, 0, "c-7", "加我", T0, &out), 0);
	assert_int_equal(turn(fx, 0, "c-7", "v abc12345 不知道", T0 + 1000, &out), 0);
	assert_true(out.drop);
	assert_int_equal(out.nalerts, 1);
	assert_int_equal(out.alerts[0].nhits, 2);
	j = out.alerts[0].json;
	assert_true(has(j, out.alerts[0].json_len, "\"rule\":\"t.split\",\"action\":"
	    "\"block\",\"text\":\"加我\\nv abc12345 不知道\",\"match\":{\"start\":0,"
	    "\"end\":13},\"matched\":\"加我\\nv abc12345\""));
	assert_true(has(j, out.alerts[0].json_len, "\"turns\":2,\"hits\":[{\"rule\":\"t.split\""));
	assert_true(has(j, out.alerts[0].json_len, "{\"rule\":\"t.warn\",\"category\":"
	    "\"etiquette\",\"severity\":\"warn\",\"action\":\"warn\",\"match\":"
	    "{\"start\":14,\"end\":17},\"matched\":\"不知道\""));

}

/* The turn that completes a split violation is the one stopped; an end forgets. */
static void
test_window_and_end(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;

	assert_int_equal(turn(fx, 0, "c-4", "加我", T0, &out), 0);
	assert_int_equal(out.nalerts, 0);
	assert_int_equal(turn(fx, 0, "c-4", "v abc12345", T0 + 1000, &out), 0);
	assert_true(out.drop);
	assert_int_equal(out.nalerts, 1);
	assert_true(has(out.alerts[0].json, out.alerts[0].json_len, "\"turns\":2"));

	assert_int_equal(turn(fx, 0, "c-5", "加我", T0, &out), 0);
	assert_int_equal(turn(fx, 0, "c-5", NULL, T0 + 500, &out), 0);
	assert_int_equal(out.sla, PIPELINE_SLA_END);
	assert_int_equal(out.nalerts, 0);
	assert_false(out.drop);
	assert_int_equal(turn(fx, 0, "c-5", "v abc12345", T0 + 1000, &out), 0);
	assert_false(out.drop);
}

/* A turn of customer in conv, said by agent (robot: a robot's), at now. */
static int
turn_as(struct fixture *fx, int customer, const char *agent, int robot,
    const char *conv, const char *text, int64_t now, struct pipeline_out *out)
{
	struct pipeline_turn	t;

	memset(&t, 0, sizeof(t));
	t.customer = customer;
	t.agent = agent;
	t.conversation = conv;
	t.conversation_len = strlen(conv);
	t.text = text;
	t.text_len = strlen(text);
	t.now_ms = t.clock_ms = now;
	t.robot = robot;
	t.shop = t.queue = "";
	return pipeline_turn(fx->p, &t, out);
}

/*
 * Which turns enter a window: a customer message shown again within 30 s
 * (another tab) is a copy and takes no slot; a robot's turn takes none;
 * an agent's window is that agent's.
 */
static void
test_window_turns(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;

	/* 不退款 / 嗯 / 嗯 (the other tab) / 我就差评: three turns, not four */
	assert_int_equal(turn_as(fx, 1, "alice", 0, "c-c", "不退款", T0, &out), 0);
	assert_false(out.copy);
	assert_int_equal(turn_as(fx, 1, "alice", 0, "c-c", "嗯", T0 + 10, &out), 0);
	assert_int_equal(turn_as(fx, 1, "alice", 0, "c-c", "嗯", T0 + 20, &out), 0);
	assert_true(out.copy);
	assert_int_equal(turn_as(fx, 1, "alice", 0, "c-c", "我就差评", T0 + 30,
	    &out), 0);
	assert_false(out.copy);
	assert_int_equal(out.nalerts, 1);
	assert_true(has(out.alerts[0].json, out.alerts[0].json_len, "\"turns\":3"));
	/* 30 s on, the same words are new again */
	assert_int_equal(turn_as(fx, 1, "alice", 0, "c-c", "嗯", T0 + 30010,
	    &out), 0);
	assert_false(out.copy);
	/* the robot's 加我 is nobody's */
	assert_int_equal(turn_as(fx, 0, "alice", 1, "c-r", "加我", T0, &out), 0);
	assert_int_equal(turn_as(fx, 0, "alice", 0, "c-r", "v abc12345", T0 + 10,
	    &out), 0);
	assert_int_equal(out.nalerts, 0);
	assert_false(out.drop);
	/* nor is alice's bob's */
	assert_int_equal(turn_as(fx, 0, "alice", 0, "c-t", "加我", T0, &out), 0);
	assert_int_equal(turn_as(fx, 0, "bob", 0, "c-t", "v abc12345", T0 + 10,
	    &out), 0);
	assert_int_equal(out.nalerts, 0);
	assert_int_equal(turn_as(fx, 0, "bob", 0, "c-t", "加我", T0 + 20, &out), 0);
	assert_int_equal(turn_as(fx, 0, "bob", 0, "c-t", "v abc12345", T0 + 30,
	    &out), 0);
	assert_true(out.drop);
	/* and "" is a conversation */
	assert_int_equal(turn_as(fx, 0, "alice", 0, "", "加我", T0, &out), 0);
	assert_int_equal(turn_as(fx, 0, "alice", 0, "", "v abc12345", T0 + 10,
	    &out), 0);
	assert_true(out.drop);
}

/*
 * A blocked turn never reached the customer: it leaves the window, so
 * sending it again (or another id) completes the violation again and is
 * stopped too, instead of passing as the tail of a match already reported.
 */
static void
test_blocked_turn_not_kept(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;
	static const char	*again[] = { "v abc12345", "v zzz99999" };
	size_t			 i;

	assert_int_equal(turn(fx, 0, "c-8", "加我", T0, &out), 0);
	assert_false(out.drop);
	for (i = 0; i < 3; i++) {
		assert_int_equal(turn(fx, 0, "c-8", again[i % 2],
		    T0 + 1000 * (int64_t)(i + 1), &out), 0);
		assert_true(out.drop);
		assert_int_equal(out.nalerts, 1);
		assert_true(has(out.alerts[0].json, out.alerts[0].json_len,
		    "\"turns\":2"));
	}
	/* a turn stopped alone does not linger either */
	assert_int_equal(turn(fx, 0, "c-9", "加我vabc12345", T0, &out), 0);
	assert_true(out.drop);
	assert_int_equal(turn(fx, 0, "c-9", "ok", T0 + 1000, &out), 0);
	assert_false(out.drop);
	assert_int_equal(out.nalerts, 0);
}

/*
 * The alert's text holds the turns the match spans, and turns counts them:
 * a turn may hold newlines (they are not where turns begin), and an earlier
 * turn the match does not reach is not in the text.
 */
static void
test_turns_are_the_texts(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;

	assert_int_equal(turn(fx, 0, "c-10", "加\n\n我", T0, &out), 0);
	assert_int_equal(turn(fx, 0, "c-10", "v abc12345", T0 + 1000, &out), 0);
	assert_true(out.drop);
	assert_true(has(out.alerts[0].json, out.alerts[0].json_len,
	    "\"text\":\"加\\n\\n我\\nv abc12345\",\"match\":{\"start\":0,"
	    "\"end\":15},\"matched\":\"加\\n\\n我\\nv abc12345\""));
	assert_true(has(out.alerts[0].json, out.alerts[0].json_len,
	    "\"turns\":2,\"hits\""));

	assert_int_equal(turn(fx, 0, "c-11", "你好", T0, &out), 0);
	assert_int_equal(turn(fx, 0, "c-11", "加我", T0 + 1000, &out), 0);
	assert_int_equal(turn(fx, 0, "c-11", "v abc12345 不知道", T0 + 2000, &out), 0);
	assert_true(out.drop);
	assert_int_equal(out.alerts[0].nhits, 2);
	/* the turn's own hit counts in that text too */
	assert_true(has(out.alerts[0].json, out.alerts[0].json_len,
	    "\"text\":\"加我\\nv abc12345 不知道\",\"match\":{\"start\":0,"
	    "\"end\":13}"));
	assert_true(has(out.alerts[0].json, out.alerts[0].json_len,
	    "\"turns\":2,\"hits\""));
	assert_true(has(out.alerts[0].json, out.alerts[0].json_len,
	    "\"match\":{\"start\":14,\"end\":17},\"matched\":\"不知道\""));
}

static void
test_sla_events(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;
	struct sla_event	 e;

	memset(&e, 0, sizeof(e));
	e.type = SLA_BREACH;
	e.conversation = "c-6";
	e.conversation_len = 3;
	e.agent = "alice";
	e.first = 1;
	e.waited_ms = 30000;
	e.threshold_ms = 30000;
	e.due = T0 + 30000;
	e.opened = T0;
	assert_int_equal(pipeline_event(fx->p, &e, &out), 0);
	assert_int_equal(out.nalerts, 1);
	assert_string_equal(out.alerts[0].what, "sla.breach");
	assert_null(out.alerts[0].hit);
	assert_int_equal(out.alerts[0].severity, 1);
	assert_non_null(out.alerts[0].frame);
	assert_true(out.alerts[0].ordered);
	assert_true(has(out.alerts[0].json, out.alerts[0].json_len,
	    "\"waited_ms\":30000"));
	assert_false(out.drop);
	assert_int_equal(out.sla, PIPELINE_SLA_NONE);

	e.type = SLA_ESCALATE;
	assert_int_equal(pipeline_event(fx->p, &e, &out), 0);
	assert_int_equal(out.nalerts, 1);
	assert_string_equal(out.alerts[0].what, "sla.escalate");
	assert_int_equal(out.alerts[0].severity, 2);
	assert_null(out.alerts[0].frame);	/* for supervisors only */
}

/*
 * Each allocation may fail: -1, and what comes out is still what to do: a
 * blocked message is dropped, every alert that is there is whole.
 */
static void
test_alloc_failure(void **state)
{
	struct fixture		*fx = *state;
	struct pipeline_out	 out;
	struct pipeline		*p;
	long			 n;
	size_t			 i;
	int			 rc;
	char			 conv[32];

	if (!allocfail_active())
		skip();
	for (n = 0; n < 200; n++) {
		allocfail_injected = 0;
		allocfail_after = n;
		p = pipeline_new(fx->detect, &fx->ids);
		if (p == NULL) {
			allocfail_after = -1;
			assert_true(allocfail_injected);
			continue;
		}
		pipeline_free(fx->p);
		fx->p = p;
		snprintf(conv, sizeof(conv), "f-%ld", n);
		rc = turn(fx, 0, conv, "我不知道,你自己看,滚出去", T0, &out);
		allocfail_after = -1;
		if (rc == 0 && !out.rule_error) {
			assert_int_equal(out.nalerts, 1);
			assert_int_equal(out.alerts[0].nhits, 3);
			if (!allocfail_injected)
				break;	/* nothing left to fail */
		} else
			assert_true(out.nalerts < 1 || out.rule_error ||
			    out.alerts[0].frame == NULL);
		assert_true(out.drop || out.rule_error);
		for (i = 0; i < out.nalerts; i++) {
			assert_true(out.alerts[i].json_len > 0);
			assert_int_equal(out.alerts[i].json[0], '{');
			assert_int_equal(out.alerts[i].json[out.alerts[i].json_len - 1], '}');
		}
	}
	assert_true(n > 0 && n < 200);
	print_message("each of %ld allocations failed in turn\n", n);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clean_turn_is_timed),
		cmocka_unit_test(test_blank_reply_is_not_timed),
		cmocka_unit_test(test_warn_and_flag),
		cmocka_unit_test(test_two_rules_one_alert),
		cmocka_unit_test(test_block_is_not_timed),
		cmocka_unit_test(test_window_and_turn_grouped),
		cmocka_unit_test(test_window_and_end),
		cmocka_unit_test(test_window_turns),
		cmocka_unit_test(test_blocked_turn_not_kept),
		cmocka_unit_test(test_turns_are_the_texts),
		cmocka_unit_test(test_sla_events),
		cmocka_unit_test(test_alloc_failure),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
