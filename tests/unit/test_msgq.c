/* test_msgq: the message FIFO keeps order, headroom and bounds its memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/msgq.h"

#define HEADROOM 16

static void
fill(char *p, size_t n, unsigned seed)
{
	size_t	i;

	for (i = 0; i < n; i++)
		p[i] = (char)(seed * 31 + i * 7);
}

static void
test_order_and_content(void **state)
{
	struct msgq	*q = msgq_new(HEADROOM, NULL);
	char		 buf[70000], *d;
	size_t		 sizes[] = { 0, 1, 125, 126, 4095, 4096, 65535, 65536 };
	size_t		 i, len, done;
	unsigned	 fl;

	(void)state;
	assert_non_null(q);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		fill(buf, sizes[i], (unsigned)i);
		assert_int_equal(msgq_append(q, buf, sizes[i]), 0);
		msgq_commit(q, (unsigned)i);
	}
	assert_int_equal(msgq_count(q), 8);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
		assert_int_equal(len, sizes[i]);
		assert_int_equal(fl, i);
		assert_int_equal(done, 0);
		fill(buf, sizes[i], (unsigned)i);
		if (len)
			assert_memory_equal(d, buf, len);
		/* the headroom in front of the payload is ours to clobber */
		memset(d - HEADROOM, 0xa5, HEADROOM);
		msgq_consume(q, len);
	}
	assert_int_equal(msgq_head(q, &d, &len, &fl, &done), -1);
	assert_int_equal(msgq_bytes(q), 0);
	msgq_free(q);
}

static void
test_partial_consume_and_open(void **state)
{
	struct msgq	*q = msgq_new(HEADROOM, NULL);
	char		*d, *o;
	size_t		 len, done;
	unsigned	 fl;

	(void)state;
	assert_int_equal(msgq_append(q, "hello ", 6), 0);
	assert_int_equal(msgq_append(q, "world", 5), 0);
	assert_true(msgq_has_open(q));
	/* an open message is not visible at the head */
	assert_int_equal(msgq_head(q, &d, &len, &fl, &done), -1);
	o = msgq_open(q, &len);
	assert_int_equal(len, 11);
	assert_memory_equal(o, "hello world", 11);
	msgq_commit(q, 1);
	assert_int_equal(msgq_append(q, "next", 4), 0);	/* opens another */
	assert_int_equal(msgq_bytes(q), 15);
	assert_int_equal(msgq_committed_bytes(q), 11);	/* not the open one */
	assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
	msgq_consume(q, 5);
	assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
	assert_int_equal(done, 5);
	assert_memory_equal(d + done, " world", 6);
	msgq_consume(q, 100);	/* clamped to what is left */
	assert_int_equal(msgq_count(q), 0);
	assert_int_equal(msgq_bytes(q), 4);
	assert_int_equal(msgq_committed_bytes(q), 0);
	msgq_discard(q);
	assert_int_equal(msgq_bytes(q), 0);
	assert_false(msgq_has_open(q));
	/* clear drops committed and open messages alike */
	assert_int_equal(msgq_append(q, "a", 1), 0);
	msgq_commit(q, 0);
	assert_int_equal(msgq_append(q, "bc", 2), 0);
	msgq_clear(q);
	assert_int_equal(msgq_bytes(q), 0);
	assert_int_equal(msgq_count(q), 0);
	assert_false(msgq_has_open(q));
	assert_int_equal(msgq_head(q, &d, &len, &fl, &done), -1);
	assert_int_equal(msgq_append(q, "d", 1), 0);
	msgq_commit(q, 5);
	assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
	assert_int_equal(len, 1);
	assert_int_equal(fl, 5);
	msgq_free(q);
}

/* A steady flow through the queue reuses one buffer. */
static void
test_steady_flow_does_not_grow(void **state)
{
	struct msgq	*q = msgq_new(HEADROOM, NULL);
	char		 msg[300], *d;
	size_t		 i, len, done, cap;
	unsigned	 fl;

	(void)state;
	fill(msg, sizeof(msg), 3);
	for (i = 0; i < 8; i++) {
		assert_int_equal(msgq_append(q, msg, sizeof(msg)), 0);
		msgq_commit(q, 0);
	}
	cap = msgq_capacity(q);
	for (i = 0; i < 100000; i++) {
		assert_int_equal(msgq_append(q, msg, sizeof(msg)), 0);
		msgq_commit(q, 0);
		assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
		assert_memory_equal(d, msg, sizeof(msg));
		msgq_consume(q, len);
	}
	assert_int_equal(msgq_capacity(q), cap);
	assert_int_equal(msgq_count(q), 8);
	msgq_free(q);
}

/* A burst grows the buffer; once drained, the big buffer is let go. */
static void
test_burst_released_when_empty(void **state)
{
	struct msgq	*q = msgq_new(HEADROOM, NULL);
	static char	 big[1 << 20];
	char		*d;
	size_t		 len, done;
	unsigned	 fl;

	(void)state;
	fill(big, sizeof(big), 9);
	assert_int_equal(msgq_append(q, big, sizeof(big)), 0);
	msgq_commit(q, 2);
	assert_true(msgq_capacity(q) >= sizeof(big));
	assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
	assert_memory_equal(d, big, sizeof(big));
	msgq_consume(q, len);
	assert_true(msgq_capacity(q) <= 64 * 1024);
	msgq_free(q);
}

/* Building a message while older ones drain keeps both intact. */
static void
test_interleaved_build_and_drain(void **state)
{
	struct msgq	*q = msgq_new(HEADROOM, NULL);
	char		 chunk[1000], want[5000], *d;
	size_t		 i, j, len, done;
	unsigned	 fl;

	(void)state;
	for (i = 0; i < 2000; i++) {
		for (j = 0; j < 5; j++) {
			fill(chunk, sizeof(chunk), (unsigned)(i * 5 + j));
			assert_int_equal(msgq_append(q, chunk, sizeof(chunk)), 0);
			if (i > 0 && msgq_head(q, &d, &len, &fl, &done) == 0)
				msgq_consume(q, 999);	/* drain the previous one */
		}
		msgq_commit(q, (unsigned)i);
		while (msgq_count(q) > 1) {
			assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
			msgq_consume(q, len - done);
		}
		assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
		for (j = 0; j < 5; j++)
			fill(want + j * 1000, 1000, (unsigned)(i * 5 + j));
		assert_int_equal(fl, i);
		assert_memory_equal(d + done, want + done, len - done);
	}
	msgq_free(q);
}

/*
 * With a pool: an emptied queue holds no buffer, the next message of any
 * queue takes the idle one (no new allocation for a steady flow over many
 * sessions), a large buffer is never pooled, and the pool keeps at most
 * its max.
 */
static void
test_pool(void **state)
{
	struct msgq_pool	*pool = msgq_pool_new(2);
	struct msgq		*a, *b, *c;
	char			 msg[100], big[10000], *d, *first;
	size_t			 len, done;
	unsigned		 fl;

	(void)state;
	assert_non_null(pool);
	a = msgq_new(HEADROOM, pool);
	b = msgq_new(HEADROOM, pool);
	c = msgq_new(HEADROOM, pool);
	fill(msg, sizeof(msg), 1);
	assert_int_equal(msgq_append(a, msg, sizeof(msg)), 0);
	msgq_commit(a, 0);
	assert_int_equal(msgq_head(a, &first, &len, &fl, &done), 0);
	msgq_consume(a, len);
	assert_int_equal(msgq_capacity(a), 0);		/* idle: nothing held */
	assert_int_equal(msgq_pool_count(pool), 1);

	/* another queue's message lands in the same buffer */
	assert_int_equal(msgq_append(b, msg, sizeof(msg)), 0);
	msgq_commit(b, 0);
	assert_int_equal(msgq_pool_count(pool), 0);
	assert_int_equal(msgq_head(b, &d, &len, &fl, &done), 0);
	assert_ptr_equal(d, first);
	assert_memory_equal(d, msg, sizeof(msg));

	/* a big message grows its own buffer; freed, not pooled, when done */
	fill(big, sizeof(big), 2);
	assert_int_equal(msgq_append(c, big, sizeof(big)), 0);
	msgq_commit(c, 0);
	assert_int_equal(msgq_head(c, &d, &len, &fl, &done), 0);
	assert_memory_equal(d, big, sizeof(big));
	msgq_consume(c, len);
	assert_int_equal(msgq_pool_count(pool), 0);

	/* at most max idle buffers are kept */
	msgq_consume(b, sizeof(msg));
	assert_int_equal(msgq_pool_count(pool), 1);
	assert_int_equal(msgq_append(a, msg, 1), 0);	/* takes it */
	assert_int_equal(msgq_append(b, msg, 1), 0);	/* a new one */
	assert_int_equal(msgq_append(c, msg, 1), 0);	/* a new one */
	msgq_clear(a);
	msgq_clear(b);
	msgq_clear(c);
	assert_int_equal(msgq_pool_count(pool), 2);
	msgq_free(a);
	msgq_free(b);
	msgq_free(c);
	msgq_pool_free(pool);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_content),
		cmocka_unit_test(test_partial_consume_and_open),
		cmocka_unit_test(test_steady_flow_does_not_grow),
		cmocka_unit_test(test_burst_released_when_empty),
		cmocka_unit_test(test_interleaved_build_and_drain),
		cmocka_unit_test(test_pool),
	};

	msgq_free(NULL);
	return cmocka_run_group_tests_name("msgq", tests, NULL, NULL);
}
