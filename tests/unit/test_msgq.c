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
	struct msgq	*q = msgq_new(HEADROOM);
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
	struct msgq	*q = msgq_new(HEADROOM);
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
	assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
	msgq_consume(q, 5);
	assert_int_equal(msgq_head(q, &d, &len, &fl, &done), 0);
	assert_int_equal(done, 5);
	assert_memory_equal(d + done, " world", 6);
	msgq_consume(q, 100);	/* clamped to what is left */
	assert_int_equal(msgq_count(q), 0);
	assert_int_equal(msgq_bytes(q), 4);
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
	struct msgq	*q = msgq_new(HEADROOM);
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
	struct msgq	*q = msgq_new(HEADROOM);
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
	struct msgq	*q = msgq_new(HEADROOM);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_content),
		cmocka_unit_test(test_partial_consume_and_open),
		cmocka_unit_test(test_steady_flow_does_not_grow),
		cmocka_unit_test(test_burst_released_when_empty),
		cmocka_unit_test(test_interleaved_build_and_drain),
	};

	msgq_free(NULL);
	return cmocka_run_group_tests_name("msgq", tests, NULL, NULL);
}
