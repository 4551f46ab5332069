/* test_copies: a customer message seen again within 30 s is a copy; its first showing's time counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/copies.h"

static int
seen(struct copies *c, const char *conv, const char *text, int64_t now)
{
	return copies_seen(c, conv, strlen(conv), text, strlen(text), now);
}

static void
test_copy_within_30s(void **state)
{
	struct copies	*c;

	(void)state;
	assert_null(copies_new(0));
	assert_non_null(c = copies_new(100));
	assert_int_equal(seen(c, "c-1", "不退款", 1000), 0);
	assert_int_equal(seen(c, "c-1", "不退款", 1005), 1);	/* the other tab */
	assert_int_equal(seen(c, "c-2", "不退款", 1010), 0);	/* another conversation */
	assert_int_equal(seen(c, "c-1", "嗯", 1020), 0);
	assert_int_equal(seen(c, "c-1", "不退款", 1020), 1);	/* not only the last */
	/* copies do not lengthen it: 30 s from the first showing */
	assert_int_equal(seen(c, "c-1", "不退款", 1000 + COPIES_MS - 1), 1);
	assert_int_equal(seen(c, "c-1", "不退款", 1000 + COPIES_MS), 0);
	assert_int_equal(seen(c, "c-1", "不退款", 1000 + COPIES_MS + 1), 1);
	/* "" is a conversation like any other, and an empty text a text */
	assert_int_equal(seen(c, "", "", 40000), 0);
	assert_int_equal(seen(c, "", "", 40001), 1);
	copies_free(c);
	copies_free(NULL);
}

/* Past max the oldest are forgotten; the table grows and its chains hold. */
static void
test_bounded(void **state)
{
	struct copies	*c;
	char		 t[32];
	int		 i;

	(void)state;
	assert_non_null(c = copies_new(1000));
	for (i = 0; i < 3000; i++) {
		snprintf(t, sizeof(t), "m-%d", i);
		assert_int_equal(seen(c, "c", t, i), 0);
	}
	assert_int_equal(copies_count(c), 1000);
	for (i = 2000; i < 3000; i++) {
		snprintf(t, sizeof(t), "m-%d", i);
		assert_int_equal(seen(c, "c", t, 3000), 1);
	}
	assert_int_equal(seen(c, "c", "m-1500", 3000), 0);	/* forgotten */
	/* and every one is gone 30 s on */
	assert_int_equal(seen(c, "c", "new", 3000 + COPIES_MS), 0);
	assert_int_equal(copies_count(c), 1);
	copies_free(c);
}

/*
 * Found by review: a conversation that ended and came back (its id used
 * again) within 30 s: its first message is new, not a copy of the last
 * conversation's, and is a copy again when shown again after that.
 */
static void
test_end(void **state)
{
	struct copies	*c;

	(void)state;
	assert_non_null(c = copies_new(100));
	assert_int_equal(seen(c, "c-1", "返我20", 1000), 0);
	assert_int_equal(seen(c, "c-2", "返我20", 1000), 0);
	copies_end(c, "c-1", 3, 2000);
	assert_int_equal(seen(c, "c-1", "返我20", 3000), 0);	/* the next one's */
	assert_int_equal(seen(c, "c-1", "返我20", 3005), 1);	/* shown again */
	assert_int_equal(seen(c, "c-2", "返我20", 3010), 1);	/* not ended */
	/* an end at the same millisecond as the first showing is after it */
	copies_end(c, "c-2", 3, 4000);
	assert_int_equal(seen(c, "c-2", "好评", 4000), 0);
	assert_int_equal(seen(c, "c-2", "好评", 4000), 1);
	copies_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_within_30s),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_end),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
