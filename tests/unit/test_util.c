/* test_util: the keyed hash (SipHash-2-4 under a random key per table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/util.h"

/* The reference vector of the SipHash paper (Aumasson, Bernstein 2012, appendix A). */
static void
test_hash_is_siphash24(void **state)
{
	struct util_hkey	key;
	unsigned char		msg[15];
	size_t			i;

	(void)state;
	for (i = 0; i < sizeof(key.k); i++)
		key.k[i] = (unsigned char)i;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	assert_true(util_hash(&key, msg, sizeof(msg)) == 0xa129ca6149be45e5ULL);
}

/*
 * Every table draws its own key: the same id lands in unrelated buckets of
 * two tables, so a peer that learns one table's layout learns nothing of
 * another's, and nothing before the process starts.
 */
static void
test_keys_are_random(void **state)
{
	struct util_hkey	a, b;
	const char		id[] = "c-1";
	unsigned		same = 0;
	int			round;

	(void)state;
	for (round = 0; round < 8; round++) {
		util_hkey_random(&a);
		util_hkey_random(&b);
		assert_memory_not_equal(a.k, b.k, sizeof(a.k));
		assert_true(util_hash(&a, id, 3) == util_hash(&a, id, 3));
		same += (util_hash(&a, id, 3) & 1023) == (util_hash(&b, id, 3) & 1023);
	}
	assert_true(same < 4);	/* 1 in 1024 each */
}

/* FNV-1a's published vectors: every instance and the tests compute the same. */
static void
test_fnv1a(void **state)
{
	(void)state;
	assert_int_equal(util_fnv1a32("", 0), 0x811c9dc5u);
	assert_int_equal(util_fnv1a32("a", 1), 0xe40c292cu);
	assert_int_equal(util_fnv1a32("foobar", 6), 0xbf9cf968u);
	assert_true(util_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
	assert_true(util_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(util_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
}

/* Code points at their lead bytes: a cut sequence or a stray byte counts as one. */
static void
test_utf8_count(void **state)
{
	(void)state;
	assert_int_equal(util_utf8_count("", 0), 0);
	assert_int_equal(util_utf8_count("ab", 2), 2);
	assert_int_equal(util_utf8_count("\xe5\x8a\xa0\xe6\x88\x91", 6), 2);	/* 加我 */
	assert_int_equal(util_utf8_count("\xe5\x8a\xa0\xe6", 4), 2);	/* 加 and a cut lead */
	assert_int_equal(util_utf8_count("\xf0\x9f\x98\x80" "a", 5), 2);	/* an emoji, a */
	assert_int_equal(util_utf8_count("\x80\x80", 2), 0);	/* continuation bytes alone */
}

/* Well-formed UTF-8 (RFC 3629) or not: what a JSON string can hold. */
static void
test_utf8_valid(void **state)
{
	(void)state;
	assert_true(util_utf8_valid("", 0));
	assert_true(util_utf8_valid("alice", 5));
	assert_true(util_utf8_valid("\xe5\x8a\xa0\xe6\x88\x91", 6));	/* 加我 */
	assert_true(util_utf8_valid("\xf0\x9f\x98\x80" "a", 5));
	assert_true(util_utf8_valid("a\0b", 3));		/* U+0000: the caller's call */
	assert_false(util_utf8_valid("\xff", 1));
	assert_false(util_utf8_valid("\xff\xfe", 2));
	assert_false(util_utf8_valid("\xe5\x8a", 2));		/* a cut sequence */
	assert_false(util_utf8_valid("\xc0\xaf", 2));		/* overlong '/' */
	assert_false(util_utf8_valid("\xed\xa0\x80", 3));	/* a surrogate */
	assert_false(util_utf8_valid("ab\x80", 3));		/* a stray continuation byte */
}

/* A %.*s cut of a peer's string ends between two characters, not inside one. */
static void
test_utf8_cut(void **state)
{
	(void)state;
	assert_int_equal(util_utf8_cut("", 4), 0);
	assert_int_equal(util_utf8_cut("abc", 4), 3);
	assert_int_equal(util_utf8_cut("abcd", 4), 4);
	assert_int_equal(util_utf8_cut("abcde", 4), 4);
	assert_int_equal(util_utf8_cut("a\xe4\xb8\xad", 4), 4);	/* a, 中: all of it */
	assert_int_equal(util_utf8_cut("a\xe4\xb8\xad" "b", 4), 4);
	assert_int_equal(util_utf8_cut("a\xe4\xb8\xad", 3), 1);	/* not 2 bytes of 中 */
	assert_int_equal(util_utf8_cut("a\xe4\xb8\xad", 2), 1);
	assert_int_equal(util_utf8_cut("\xf0\x9f\x98\x80", 3), 0);	/* an emoji */
	assert_int_equal(util_utf8_cut("ab\x80\x80\x80\x80", 3), 3);	/* no lead: as strnlen */
	assert_int_equal(util_utf8_cut("\xff\xfe", 1), 1);		/* not UTF-8: as strnlen */
	/* a whole 中 before a stray continuation byte is kept whole */
	assert_int_equal(util_utf8_cut("\xe4\xb8\xad\x80", 3), 3);
	assert_int_equal(util_utf8_trim("\xe4\xb8\xad\x80", 4), 4);
	assert_int_equal(util_utf8_trim("a\xe4\xb8", 3), 1);
	assert_int_equal(util_utf8_trim("a\xc3", 2), 1);
	assert_int_equal(util_utf8_trim("a\xc3\xa9", 3), 3);
	assert_int_equal(util_utf8_trim("\xf0\x9f\x98", 3), 0);
	assert_int_equal(util_utf8_trim("", 0), 0);
}

/* One JSON text through util_json_lone_surrogates: it must become want. */
static void
lone(const char *in, const char *want)
{
	char	buf[256];

	snprintf(buf, sizeof(buf), "%s", in);
	util_json_lone_surrogates(buf, strlen(buf));
	assert_string_equal(buf, want);
}

/* Lone surrogate escapes read as U+FFFD, as the relay's codec reads them. */
static void
test_json_lone_surrogates(void **state)
{
	(void)state;
	lone("{\"t\":\"a\\ud800b\"}", "{\"t\":\"a\\ufffdb\"}");	/* a high alone */
	lone("\"\\uDC00\"", "\"\\ufffd\"");			/* a low alone */
	lone("\"\\ud83d\\ude00\"", "\"\\ud83d\\ude00\"");	/* a pair stays */
	lone("\"\\uD83D\\uDE00\\uDE00\"", "\"\\uD83D\\uDE00\\ufffd\"");
	lone("\"\\ud800\\ud800\\udc00\"", "\"\\ufffd\\ud800\\udc00\"");
	lone("\"\\\\ud800\"", "\"\\\\ud800\"");		/* an escaped backslash, then text */
	lone("\"\\u4e2d\\n\\\"\"", "\"\\u4e2d\\n\\\"\"");	/* other escapes untouched */
	lone("\"\\ud80\"", "\"\\ud80\"");			/* not four digits */
	lone("\"\\ud800", "\"\\ufffd");				/* at the very end */
	lone("\\", "\\");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_is_siphash24),
		cmocka_unit_test(test_keys_are_random),
		cmocka_unit_test(test_fnv1a),
		cmocka_unit_test(test_utf8_count),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_utf8_cut),
		cmocka_unit_test(test_json_lone_surrogates),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
