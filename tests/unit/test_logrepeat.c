/* test_logrepeat: a repeated line once per interval with its held-back count, lines told apart, the slots' bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/logrepeat.h"

#define S(x)	(x), strlen(x)

/* lws's "accept: errno 24" in a spin: one line per interval, each with the count before it */
static void
test_burst(void **state)
{
	struct logrepeat	*r;
	uint64_t		 held = 99, now;
	unsigned		 logged = 0;

	(void)state;
	assert_null(logrepeat_new(0, 1000));
	assert_null(logrepeat_new(65, 1000));
	assert_non_null(r = logrepeat_new(4, 1000));
	assert_int_equal(logrepeat_check(r, S("accept: errno 24"), 5000, &held), 1);
	assert_int_equal(held, 0);
	/* 100 000 more within the second: all held back */
	for (now = 5000; now < 6000; now++)
		for (int i = 0; i < 100; i++)
			assert_int_equal(logrepeat_check(r, S("accept: errno 24"),
			    now, &held), 0);
	/* one interval on: logged, with what was held back */
	assert_int_equal(logrepeat_check(r, S("accept: errno 24"), 6000, &held), 1);
	assert_int_equal(held, 100000);
	assert_int_equal(logrepeat_check(r, S("accept: errno 24"), 6001, &held), 0);
	assert_int_equal(logrepeat_check(r, S("accept: errno 24"), 9000, &held), 1);
	assert_int_equal(held, 1);
	/* a steady spin for a minute: one line a second */
	for (now = 10000; now < 70000; now += 10)
		logged += (unsigned)logrepeat_check(r, S("accept: errno 24"), now, &held);
	assert_int_equal(logged, 60);
	/* a clock that went back logs rather than holds */
	assert_int_equal(logrepeat_check(r, S("accept: errno 24"), 100, &held), 1);
	logrepeat_free(r);
	logrepeat_free(NULL);
}

/* other lines, a prefix, and lines longer than what is kept */
static void
test_apart(void **state)
{
	struct logrepeat	*r;
	char			 a[LOGREPEAT_LINE_MAX + 20], b[sizeof(a)];
	uint64_t		 held;

	(void)state;
	assert_non_null(r = logrepeat_new(4, 1000));
	assert_int_equal(logrepeat_check(r, S("accept: errno 24"), 0, &held), 1);
	assert_int_equal(logrepeat_check(r, S("accept: errno 23"), 0, &held), 1);
	assert_int_equal(logrepeat_check(r, S("accept: errno 2"), 0, &held), 1);
	assert_int_equal(logrepeat_check(r, S("accept: errno 24 "), 0, &held), 1);
	assert_int_equal(logrepeat_check(r, S("accept: errno 24"), 1, &held), 0);
	assert_int_equal(logrepeat_check(r, S("accept: errno 2"), 1, &held), 0);
	/* an empty line is always logged */
	assert_int_equal(logrepeat_check(r, "", 0, 1, &held), 1);
	assert_int_equal(logrepeat_check(r, "", 0, 1, &held), 1);
	/* past the kept bytes, the length still tells lines apart, the text not */
	memset(a, 'x', sizeof(a));
	memcpy(b, a, sizeof(b));
	b[sizeof(b) - 1] = 'y';
	assert_int_equal(logrepeat_check(r, a, sizeof(a), 2, &held), 1);
	assert_int_equal(logrepeat_check(r, a, sizeof(a) - 1, 2, &held), 1);
	assert_int_equal(logrepeat_check(r, b, sizeof(b), 2, &held), 0);
	logrepeat_free(r);
}

/* more lines than slots: the one seen longest ago is forgotten, and its count */
static void
test_slots(void **state)
{
	struct logrepeat	*r;
	uint64_t		 held;

	(void)state;
	assert_non_null(r = logrepeat_new(2, 1000));
	assert_int_equal(logrepeat_check(r, S("one"), 0, &held), 1);
	assert_int_equal(logrepeat_check(r, S("two"), 1, &held), 1);
	assert_int_equal(logrepeat_check(r, S("one"), 2, &held), 0);	/* one seen at 2 */
	assert_int_equal(logrepeat_check(r, S("three"), 3, &held), 1);	/* two goes */
	assert_int_equal(logrepeat_check(r, S("one"), 4, &held), 0);
	assert_int_equal(logrepeat_check(r, S("two"), 5, &held), 1);	/* new again: three goes */
	assert_int_equal(held, 0);
	assert_int_equal(logrepeat_check(r, S("one"), 1000, &held), 1);
	assert_int_equal(held, 2);
	logrepeat_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst),
		cmocka_unit_test(test_apart),
		cmocka_unit_test(test_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
