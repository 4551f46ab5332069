/* test_dueheap: the deadline heap against a plain array as the oracle. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/dueheap.h"

static void
test_order_and_ties(void **state)
{
	struct dueheap		h;
	struct dueheap_node	n[4];

	(void)state;
	memset(n, 0, sizeof(n));
	dueheap_init(&h);
	assert_null(dueheap_top(&h));
	assert_int_equal(dueheap_set(&h, &n[0], 50), 0);
	assert_int_equal(dueheap_set(&h, &n[1], 20), 0);
	assert_int_equal(dueheap_set(&h, &n[2], 20), 0);	/* ties: first set first */
	assert_int_equal(dueheap_set(&h, &n[3], 90), 0);
	assert_ptr_equal(dueheap_top(&h), &n[1]);
	assert_int_equal(dueheap_size(&h), 4);
	/* moved later: its tie goes to the one that stayed */
	assert_int_equal(dueheap_set(&h, &n[1], 20), 0);
	assert_ptr_equal(dueheap_top(&h), &n[2]);
	assert_int_equal(dueheap_set(&h, &n[3], 5), 0);		/* moved earlier */
	assert_ptr_equal(dueheap_top(&h), &n[3]);
	dueheap_del(&h, &n[3]);
	assert_false(dueheap_in(&n[3]));
	dueheap_del(&h, &n[3]);					/* not in: nothing */
	assert_ptr_equal(dueheap_top(&h), &n[2]);
	assert_int_equal(dueheap_size(&h), 3);
	dueheap_free(&h);
	assert_false(dueheap_in(&n[0]));
	assert_false(dueheap_in(&n[1]));
	assert_null(dueheap_top(&h));
	dueheap_free(&h);
}

/* The earliest (deadline, order set) of the nodes in, by looking at all. */
static struct dueheap_node *
oracle_top(struct dueheap_node *n, const int *in, size_t len)
{
	struct dueheap_node	*best = NULL;
	size_t			 i;

	for (i = 0; i < len; i++)
		if (in[i] && (best == NULL || n[i].due < best->due ||
		    (n[i].due == best->due && n[i].seq < best->seq)))
			best = &n[i];
	return best;
}

/* Sets, moves, deletes and pops at random; the top checked after each step. */
static void
test_against_oracle(void **state)
{
	enum { N = 700 };
	static struct dueheap_node	n[N];
	static int			in[N];
	struct dueheap			h;
	struct dueheap_node		*t;
	unsigned			seed = 11, step, k, op;
	size_t				count = 0;

	(void)state;
	dueheap_init(&h);
	for (step = 0; step < 100000; step++) {
		seed = seed * 1103515245u + 12345u;
		k = (seed >> 8) % N;
		op = (seed >> 4) % 8;
		if (op < 5) {
			/* few distinct deadlines: many ties */
			assert_int_equal(dueheap_set(&h, &n[k], (int64_t)((seed >> 16) % 50)), 0);
			count += !in[k];
			in[k] = 1;
		} else if (op < 7) {
			dueheap_del(&h, &n[k]);
			count -= in[k];
			in[k] = 0;
		} else if ((t = dueheap_top(&h)) != NULL) {
			dueheap_del(&h, t);
			in[t - n] = 0;
			count--;
		}
		assert_int_equal(dueheap_size(&h), count);
		assert_ptr_equal(dueheap_top(&h), oracle_top(n, in, N));
		assert_int_equal(dueheap_in(&n[k]), in[k]);
	}
	/* drained in order */
	while ((t = dueheap_top(&h)) != NULL) {
		assert_ptr_equal(t, oracle_top(n, in, N));
		dueheap_del(&h, t);
		in[t - n] = 0;
	}
	dueheap_free(&h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_ties),
		cmocka_unit_test(test_against_oracle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
