/* test_histfmt: the history items of issue 15's contract, read back with jansson as the dashboard reads them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "chatmon/histfmt.h"

static json_t *
item(const struct histfmt_turn *t, struct sbuf *out)
{
	json_t	*o;

	sbuf_reset(out);
	assert_int_equal(histfmt_item(out, t), 0);
	o = json_loadb(out->s, out->len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
	assert_non_null(o);
	return o;
}

static void
test_agent_turn(void **state)
{
	struct histfmt_turn	 t = { 0 };
	struct sbuf		 out = { 0 };
	json_t			*o;

	(void)state;
	t.ts = 1764800000123;
	t.agent = "alice";
	t.text = "亲,在的";
	t.text_len = strlen(t.text);
	/* an agent turn never carries the buyer's nickname */
	t.nick = "买家小王";
	t.nick_len = strlen(t.nick);
	o = item(&t, &out);
	/* exact bytes: compact, the contract's key order, no optional keys */
	assert_string_equal(out.s, "{\"ts\":1764800000123,\"role\":\"agent\","
	    "\"agent\":\"alice\",\"text\":\"亲,在的\"}");
	json_decref(o);
	sbuf_free(&out);
}

static void
test_customer_turn_with_all(void **state)
{
	struct histfmt_turn	 t = { 0 };
	struct sbuf		 out = { 0 };
	json_t			*o;
	static const char	 text[] = "a\"b\\c\n\0d";

	(void)state;
	t.ts = 5;
	t.customer = 1;
	t.agent = "bob \"the\" agent";
	t.text = text;
	t.text_len = sizeof(text) - 1;		/* a NUL inside is kept */
	t.nick = "王<b>";
	t.nick_len = strlen(t.nick);
	t.blocked = 1;
	t.alert = "0190f-abc";
	o = item(&t, &out);
	assert_int_equal(json_integer_value(json_object_get(o, "ts")), 5);
	assert_string_equal(json_string_value(json_object_get(o, "role")), "customer");
	assert_string_equal(json_string_value(json_object_get(o, "agent")),
	    "bob \"the\" agent");
	assert_int_equal(json_string_length(json_object_get(o, "text")),
	    sizeof(text) - 1);
	assert_memory_equal(json_string_value(json_object_get(o, "text")), text,
	    sizeof(text) - 1);
	assert_string_equal(json_string_value(json_object_get(o, "nick")), "王<b>");
	assert_true(json_is_true(json_object_get(o, "blocked")));
	assert_string_equal(json_string_value(json_object_get(o, "alert")),
	    "0190f-abc");
	json_decref(o);
	sbuf_free(&out);
}

static void
test_empty_and_bad_utf8(void **state)
{
	struct histfmt_turn	 t = { 0 };
	struct sbuf		 out = { 0 };
	json_t			*o;

	(void)state;
	t.customer = 1;
	t.agent = NULL;			/* no agent id: "" */
	t.text = "\xff";
	t.text_len = 1;
	t.nick = "";			/* empty: left out */
	t.alert = "";
	o = item(&t, &out);
	assert_string_equal(json_string_value(json_object_get(o, "agent")), "");
	assert_string_equal(json_string_value(json_object_get(o, "text")),
	    "\xef\xbf\xbd");		/* U+FFFD: the item stays valid JSON */
	assert_null(json_object_get(o, "nick"));
	assert_null(json_object_get(o, "alert"));
	assert_null(json_object_get(o, "blocked"));
	json_decref(o);
	sbuf_free(&out);
}

/*
 * Found by review: the platform robot's auto-reply was kept as the
 * buyer's words; and a megabyte turn was kept whole, fifty of them
 * stalling the dashboard's conversation view. The robot is marked, and
 * a text past HISTFMT_TEXT_MAX keeps its start, a whole character, and
 * says how long it was.
 */
static void
test_robot_and_cut(void **state)
{
	struct histfmt_turn	 t = { 0 };
	struct sbuf		 out = { 0 };
	json_t			*o;
	static char		 big[HISTFMT_TEXT_MAX + 100];
	size_t			 i;

	(void)state;
	t.ts = 7;
	t.customer = 1;
	t.robot = 1;
	t.text = "亲,客服正在赶来,请稍等";
	t.text_len = strlen(t.text);
	t.nick = "买家小王";
	t.nick_len = strlen(t.nick);
	o = item(&t, &out);
	assert_true(json_is_true(json_object_get(o, "robot")));
	assert_null(json_object_get(o, "nick"));	/* not the buyer's */
	assert_null(json_object_get(o, "cut"));
	json_decref(o);
	/* three-byte characters from byte 1: the cut falls inside one */
	big[0] = 'x';
	for (i = 1; i + 3 <= sizeof(big); i += 3)
		memcpy(big + i, "\xe4\xb8\xad", 3);
	t.robot = 0;
	t.text = big;
	t.text_len = i;
	o = item(&t, &out);
	assert_int_equal(json_integer_value(json_object_get(o, "cut")), i);
	assert_true(json_string_length(json_object_get(o, "text")) <= HISTFMT_TEXT_MAX);
	assert_true(json_string_length(json_object_get(o, "text")) > HISTFMT_TEXT_MAX - 3);
	assert_int_equal((json_string_length(json_object_get(o, "text")) - 1) % 3, 0);
	json_decref(o);
	sbuf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_turn),
		cmocka_unit_test(test_customer_turn_with_all),
		cmocka_unit_test(test_empty_and_bad_utf8),
		cmocka_unit_test(test_robot_and_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
