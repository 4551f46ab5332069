/* test_seen: remembering the last N ids, forgetting the oldest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/seen.h"

static void
test_window(void **state)
{
	struct seen	*s;
	char		 id[32];
	int		 i;

	(void)state;
	assert_null(seen_new(0));
	assert_non_null(s = seen_new(100));
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "a-%d", i);
		assert_int_equal(seen_add(s, id), 0);
	}
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof(id), "a-%d", i);
		assert_int_equal(seen_add(s, id), 1);	/* repeats: still there */
	}
	/* 150 more push the first 150 out, oldest first */
	for (i = 100; i < 250; i++) {
		snprintf(id, sizeof(id), "a-%d", i);
		assert_int_equal(seen_add(s, id), 0);
	}
	assert_int_equal(seen_add(s, "a-149"), 0);	/* forgotten: new again */
	assert_int_equal(seen_add(s, "a-249"), 1);
	seen_clear(s);
	assert_int_equal(seen_add(s, "a-249"), 0);
	assert_int_equal(seen_add(s, ""), 0);
	assert_int_equal(seen_add(s, ""), 1);
	seen_free(s);
	seen_free(NULL);
}

/* Many ids into few buckets: the chains hold, eviction unlinks the right one. */
static void
test_collisions(void **state)
{
	struct seen	*s;
	char		 id[32];
	int		 i, round;

	(void)state;
	assert_non_null(s = seen_new(1));
	assert_int_equal(seen_add(s, "x"), 0);
	assert_int_equal(seen_add(s, "y"), 0);
	assert_int_equal(seen_add(s, "x"), 0);
	seen_free(s);
	assert_non_null(s = seen_new(1000));
	for (round = 0; round < 5; round++)
		for (i = 0; i < 3000; i++) {
			snprintf(id, sizeof(id), "%d", i);
			/* a window of 1000 over 3000 ids in order: never a repeat */
			assert_int_equal(seen_add(s, id), 0);
		}
	seen_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_collisions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
