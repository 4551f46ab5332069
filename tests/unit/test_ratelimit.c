/* test_ratelimit: N failures per key in a sliding window, Retry-After, the bound on keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/ratelimit.h"

#define MIN	60000ULL

static void
test_window(void **state)
{
	struct ratelimit	*r;
	int			 i;

	(void)state;
	assert_null(ratelimit_new(10, 0, MIN));
	assert_null(ratelimit_new(10, RATELIMIT_MAX_FAILS + 1, MIN));
	assert_non_null(r = ratelimit_new(10, 5, 15 * MIN));
	/* failures at minutes 1 to 4: still allowed */
	for (i = 1; i <= 4; i++) {
		assert_int_equal(ratelimit_wait(r, "ip:1.2.3.4", (uint64_t)i * MIN), 0);
		ratelimit_fail(r, "ip:1.2.3.4", (uint64_t)i * MIN);
	}
	assert_int_equal(ratelimit_wait(r, "ip:1.2.3.4", 5 * MIN), 0);
	ratelimit_fail(r, "ip:1.2.3.4", 5 * MIN);
	/* the fifth: refused until the first leaves the window (minute 16) */
	assert_int_equal(ratelimit_wait(r, "ip:1.2.3.4", 6 * MIN), 10 * MIN);
	assert_int_equal(ratelimit_wait(r, "ip:1.2.3.4", 16 * MIN - 1), 1);
	assert_int_equal(ratelimit_wait(r, "ip:1.2.3.4", 16 * MIN), 0);
	/* another key is not affected */
	assert_int_equal(ratelimit_wait(r, "ip:1.2.3.5", 6 * MIN), 0);
	assert_int_equal(ratelimit_wait(r, "user:alice", 6 * MIN), 0);
	/* one more failure at minute 16: again five in the window, from minute 2 */
	ratelimit_fail(r, "ip:1.2.3.4", 16 * MIN);
	assert_int_equal(ratelimit_wait(r, "ip:1.2.3.4", 16 * MIN), 1 * MIN);
	ratelimit_clear(r, "ip:1.2.3.4");
	assert_int_equal(ratelimit_wait(r, "ip:1.2.3.4", 16 * MIN), 0);
	ratelimit_free(r);
	ratelimit_free(NULL);
}

static void
test_bound(void **state)
{
	struct ratelimit	*r;
	char			 key[32];
	int			 i;

	(void)state;
	assert_non_null(r = ratelimit_new(3, 1, MIN));
	ratelimit_fail(r, "a", 1);
	ratelimit_fail(r, "b", 2);
	ratelimit_fail(r, "c", 3);
	assert_true(ratelimit_wait(r, "a", 4) > 0);
	ratelimit_fail(r, "d", 4);		/* full: a, the oldest, is forgotten */
	assert_int_equal(ratelimit_wait(r, "a", 5), 0);
	assert_true(ratelimit_wait(r, "d", 5) > 0);
	for (i = 0; i < 1000; i++) {
		snprintf(key, sizeof(key), "user:%d", i);
		ratelimit_fail(r, key, 10 + (uint64_t)i);
	}
	assert_int_equal(ratelimit_sweep(r, 1009), 3);
	assert_int_equal(ratelimit_sweep(r, 1009 + MIN), 0);
	ratelimit_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_bound),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
