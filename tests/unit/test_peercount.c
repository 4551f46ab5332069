/* test_peercount: connections per peer address, against a plain array as the oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/peercount.h"

static void
test_counts(void **state)
{
	struct peercount	*pc;

	(void)state;
	assert_non_null(pc = peercount_new());
	assert_int_equal(peercount_get(pc, "10.0.0.1"), 0);
	assert_int_equal(peercount_add(pc, "10.0.0.1"), 1);
	assert_int_equal(peercount_add(pc, "10.0.0.1"), 2);
	assert_int_equal(peercount_add(pc, "::1"), 1);
	assert_int_equal(peercount_size(pc), 2);
	peercount_del(pc, "10.0.0.1");
	assert_int_equal(peercount_get(pc, "10.0.0.1"), 1);
	peercount_del(pc, "10.0.0.1");
	assert_int_equal(peercount_get(pc, "10.0.0.1"), 0);
	assert_int_equal(peercount_size(pc), 1);
	peercount_del(pc, "10.0.0.1");		/* unknown: ignored */
	peercount_del(pc, "192.0.2.7");
	assert_int_equal(peercount_size(pc), 1);
	/* a prefix is another address */
	assert_int_equal(peercount_add(pc, "10.0.0.12"), 1);
	assert_int_equal(peercount_get(pc, "10.0.0.1"), 0);
	peercount_free(pc);
	peercount_free(NULL);
}

/* Thousands of addresses through growth, every count checked against an array. */
static void
test_many_against_oracle(void **state)
{
	enum { N = 5000 };
	struct peercount	*pc;
	static size_t		 want[N];
	char			 a[64];
	unsigned		 seed = 7, i, k, step;

	(void)state;
	assert_non_null(pc = peercount_new());
	for (step = 0; step < 60000; step++) {
		seed = seed * 1103515245u + 12345u;
		k = (seed >> 8) % N;
		snprintf(a, sizeof(a), "2001:db8::%x", k);
		if ((seed >> 4) % 3 != 0) {
			assert_int_equal(peercount_add(pc, a), ++want[k]);
		} else {
			peercount_del(pc, a);
			if (want[k] > 0)
				want[k]--;
		}
	}
	for (i = 0, k = 0; i < N; i++) {
		snprintf(a, sizeof(a), "2001:db8::%x", i);
		assert_int_equal(peercount_get(pc, a), want[i]);
		k += want[i] > 0;
	}
	assert_int_equal(peercount_size(pc), k);
	peercount_free(pc);
}

/* An address longer than the bound is kept by its first bytes. */
static void
test_long_address(void **state)
{
	struct peercount	*pc;
	char			 a[200];

	(void)state;
	memset(a, 'x', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	assert_non_null(pc = peercount_new());
	assert_int_equal(peercount_add(pc, a), 1);
	a[150] = 'y';				/* past the bound: the same key */
	assert_int_equal(peercount_add(pc, a), 2);
	peercount_del(pc, a);
	peercount_del(pc, a);
	assert_int_equal(peercount_size(pc), 0);
	peercount_free(pc);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_many_against_oracle),
		cmocka_unit_test(test_long_address),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
