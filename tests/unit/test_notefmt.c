/* test_notefmt: notes as the dashboard writes them, the frame the agent gets, and the workbench's acks, good and bad. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "chatmon/notefmt.h"

#define NOTE	"{\"id\":\"n-1764800000000-0a1b2c3d\",\"agent\":\"alice\"," \
		"\"conversation\":\"c-1\",\"from\":\"sup1\",\"text\":\"先别承诺退款\"," \
		"\"ts\":1764800000000}"

static void
test_note_frame(void **state)
{
	struct notefmt_note	 n;
	const char		*why = NULL;

	(void)state;
	assert_int_equal(notefmt_note_parse(NOTE, strlen(NOTE), &n, &why), 0);
	assert_string_equal(n.id, "n-1764800000000-0a1b2c3d");
	assert_string_equal(n.agent, "alice");
	assert_true(n.ts == 1764800000000);
	/* the contract's frame, in its order; the agent is not in it */
	assert_string_equal(n.frame, "{\"type\":\"chatmon.note\","
	    "\"id\":\"n-1764800000000-0a1b2c3d\",\"conversation\":\"c-1\","
	    "\"from\":\"sup1\",\"text\":\"先别承诺退款\",\"ts\":1764800000000}");
	assert_int_equal(n.frame_len, strlen(n.frame));
	notefmt_note_clear(&n);
	notefmt_note_clear(&n);		/* twice is fine */
}

static void
test_note_default_from(void **state)
{
	static const char	 j[] = "{\"id\":\"n-1-a\",\"agent\":\"a\","
	    "\"conversation\":\"c\",\"text\":\"t\",\"ts\":1}";
	struct notefmt_note	 n;
	const char		*why;
	json_t			*o;

	(void)state;
	assert_int_equal(notefmt_note_parse(j, strlen(j), &n, &why), 0);
	o = json_loads(n.frame, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(o, "from")), "dashboard");
	json_decref(o);
	notefmt_note_clear(&n);
}

static void
test_note_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"id\":\"n-1\"}",
		/* a number where a string belongs */
		"{\"id\":\"n-1\",\"agent\":1,\"conversation\":\"c\",\"text\":\"t\",\"ts\":1}",
		/* ts as a string */
		"{\"id\":\"n-1\",\"agent\":\"a\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":\"1\"}",
		/* an id that could not be a key or a log word */
		"{\"id\":\"n 1\\n\",\"agent\":\"a\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":1}",
		"{\"id\":\"n-1\",\"agent\":\"\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":1}",
		"{\"id\":\"n-1\",\"id\":\"n-2\",\"agent\":\"a\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":1}",
		/* a ts no clock gives: an age computed from it would overflow */
		"{\"id\":\"n-1\",\"agent\":\"a\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":9223372036854775807}",
		"{\"id\":\"n-1\",\"agent\":\"a\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":-9223372036854775808}",
		"{\"id\":\"n-1\",\"agent\":\"a\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":-1}",
		"{\"id\":\"n-1\",\"agent\":\"a\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":253402300800000}",
	};
	struct notefmt_note	 n;
	const char		*why;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(notefmt_note_parse(bad[i], strlen(bad[i]), &n,
		    &why), -1);
		assert_non_null(why);
		assert_null(n.frame);
		assert_null(n.agent);
		notefmt_note_clear(&n);
	}
}

/* The ends of the range a ts may take. */
static void
test_note_ts_range(void **state)
{
	static const char *const good[] = {
		"{\"id\":\"n-1\",\"agent\":\"a\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":0}",
		"{\"id\":\"n-1\",\"agent\":\"a\",\"conversation\":\"c\",\"text\":\"t\",\"ts\":253402300799999}",
	};
	struct notefmt_note	 n;
	const char		*why;

	(void)state;
	assert_int_equal(notefmt_note_parse(good[0], strlen(good[0]), &n, &why), 0);
	assert_true(n.ts == 0);
	notefmt_note_clear(&n);
	assert_int_equal(notefmt_note_parse(good[1], strlen(good[1]), &n, &why), 0);
	assert_true(n.ts == NOTEFMT_TS_MAX);
	notefmt_note_clear(&n);
}

static void
test_ack(void **state)
{
	static const struct {
		const char	*s;
		size_t		 len;
		int		 rc;
		int		 st;
	} t[] = {
#define A(s)	(s), sizeof(s) - 1
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1-ab\",\"state\":\"delivered\"}"), 0, NOTEFMT_DELIVERED },
		{ A("{\"state\":\"read\",\"id\":\"n-1-ab\",\"type\":\"chatmon.note_ack\",\"x\":[1]}"), 0, NOTEFMT_READ },
		/* what JSON allows and the workbench might send: still an ack */
		{ A("{\"type\":\"chatmon.note\\u005fack\",\"id\":\"n-1-ab\",\"state\":\"read\"}"), 0, NOTEFMT_READ },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1-ab\",\"state\":\"read\",\"x\":\"\\u0000\"}"), 0, NOTEFMT_READ },
		{ A("{\"type\":\"x\",\"type\":\"chatmon.note_ack\",\"id\":\"n-1-ab\",\"state\":\"read\"}"), 0, NOTEFMT_READ },
		/* the caller said ack, but it is not one chatmond can record: dropped */
		{ A("{\"type\":\"chatmon.note_ack\""), -1, 0 },		/* not JSON */
		{ A("[\"chatmon.note_ack\"]"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1-ab\",\"state\":\"read\",\"\\u0000\":1}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1-ab\",\"state\":\"read\",\"n\":1e400}"), -1, 0 },
		{ A("{\"type\":\"message\",\"conversation\":\"c\",\"text\":\"chatmon.note_ack\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\\u0000\",\"id\":\"n-1-ab\",\"state\":\"read\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":7,\"state\":\"read\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"\",\"state\":\"read\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"a b\",\"state\":\"read\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1\\u0000\",\"state\":\"read\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1\",\"state\":\"sent\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1\",\"state\":\"read\\u0000x\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1\",\"state\":null}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-1\"}"), -1, 0 },
		{ A("{\"type\":\"chatmon.note_ack\",\"id\":\"n-0123456789012345678901234567890123456789012345678901234567890123456789\",\"state\":\"read\"}"), -1, 0 },
#undef A
	};
	struct notefmt_ack	 a;
	const char		*why;
	size_t			 i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		why = NULL;
		if (notefmt_ack_parse(t[i].s, t[i].len, &a, &why) != t[i].rc)
			fail_msg("row %zu: %s: not %d", i, t[i].s, t[i].rc);
		if (t[i].rc == -1)
			assert_non_null(why);
		if (t[i].rc == 0) {
			assert_string_equal(a.id, "n-1-ab");
			assert_int_equal(a.state, t[i].st);
		}
	}
}

static void
test_audit(void **state)
{
	struct sbuf	 out = { 0 };

	(void)state;
	assert_int_equal(notefmt_audit(&out, 42, "al\"ice", "n-1-ab",
	    NOTEFMT_READ), 0);
	assert_string_equal(out.s, "{\"ts\":42,\"who\":\"agent:al\\\"ice\","
	    "\"what\":\"note.state\",\"note\":\"n-1-ab\",\"state\":\"read\"}");
	sbuf_free(&out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_note_frame),
		cmocka_unit_test(test_note_default_from),
		cmocka_unit_test(test_note_ts_range),
		cmocka_unit_test(test_note_bad),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_audit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
