/* bintext: a binary message's text, as Node's JSON.parse and Python's json.loads read it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/bintext.h"
#include "allocfail.h"

#define B(s)	s, sizeof(s) - 1
#define JSON	"{\"type\":\"message\",\"text\":\"\xe5\x8a\xa0\"}"	/* 加 */

/* s (ASCII and U+52A0) as UTF-16 or UTF-32, either order. */
static size_t
encode(const char *s, int width, int little, unsigned char *out)
{
	const unsigned char	*p = (const unsigned char *)s;
	uint32_t		 c;
	size_t			 n = 0;
	int			 k;

	while (*p) {
		if (*p < 0x80)
			c = *p++;
		else {	/* three-byte sequences only, as in JSON */
			c = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 |
			    (p[2] & 0x3f);
			p += 3;
		}
		for (k = 0; k < width; k++)
			out[n + (size_t)(little ? k : width - 1 - k)] =
			    (unsigned char)(c >> (8 * k));
		n += (size_t)width;
	}
	return n;
}

static void
expect(struct bintext *bt, const void *data, size_t len, const char *want)
{
	const char	*text;
	size_t		 tlen;

	assert_int_equal(bintext_decode(bt, data, len, &text, &tlen), 0);
	assert_int_equal(tlen, strlen(want));
	assert_memory_equal(text, want, tlen);
}

static void
test_utf8(void **state)
{
	struct bintext	*bt;
	const char	*text, *msg = "  \r\n\t" JSON;
	size_t		 tlen;

	(void)state;
	assert_non_null(bt = bintext_new());
	/* UTF-8 already: the message itself, nothing copied */
	assert_int_equal(bintext_decode(bt, msg, strlen(msg), &text, &tlen), 0);
	assert_ptr_equal(text, msg);
	assert_int_equal(tlen, strlen(msg));
	/* its BOM left out (Python's utf-8-sig) */
	assert_int_equal(bintext_decode(bt, B("\xef\xbb\xbf" JSON), &text, &tlen), 0);
	assert_int_equal(tlen, strlen(JSON));
	assert_memory_equal(text, JSON, tlen);
	/* a byte that starts no sequence is U+FFFD, as Node's Buffer reads it */
	expect(bt, B("{\"t\":\"\xe5\x8a\xa0\xff\xe5\x8a\"}"),
	    "{\"t\":\"\xe5\x8a\xa0\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}");
	expect(bt, B("{\"t\":\"\xed\xa0\x80\"}"),		/* a surrogate in UTF-8 */
	    "{\"t\":\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}");
	bintext_free(bt);
}

static void
test_utf16_utf32(void **state)
{
	struct bintext	*bt;
	unsigned char	 m[512];
	size_t		 n;
	int		 width, little;

	(void)state;
	assert_non_null(bt = bintext_new());
	for (width = 2; width <= 4; width += 2)
		for (little = 0; little <= 1; little++) {
			/* found by the NUL bytes of its first characters */
			n = encode(JSON, width, little, m);
			expect(bt, m, n, JSON);
			/* and by its BOM, which is left out */
			n = encode("\xef\xbb\xbf" JSON, width, little, m);
			expect(bt, m, n, JSON);
			/* white space first */
			n = encode(" \n" JSON, width, little, m);
			expect(bt, m, n, " \n" JSON);
		}
	/* a lone surrogate does not decode: left out, the rest read */
	memcpy(m, "{\0\"\0\x00\xd8x\0\"\0}\0", 12);
	expect(bt, m, 12, "{\"x\"}");
	/* a unit cut short at the end */
	memcpy(m, "{\0}\0x", 5);
	expect(bt, m, 5, "{}");
	bintext_free(bt);
}

static void
test_not_an_object(void **state)
{
	static const struct {
		const char	*data;
		size_t		 len;
	} no[] = {
		{ B("") },
		{ B("\x89PNG\r\n\x1a\n") },
		{ B("[1,2]") },
		{ B("  x{}") },
		{ B("\x08\x96\x01") },			/* protobuf */
		{ B("[\0{\0") },			/* UTF-16LE, an array */
		{ B("\xff\xfe \0[\0") },		/* UTF-16LE with its BOM */
		{ B("\0\0\0[") },			/* UTF-32BE */
		{ B("\xef\xbb\xbf") },			/* a BOM alone */
		{ B("\0{") },				/* two bytes: UTF-16BE */
	};
	struct bintext	*bt;
	const char	*text;
	size_t		 i, tlen;

	(void)state;
	assert_non_null(bt = bintext_new());
	for (i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_int_equal(bintext_decode(bt, no[i].data, no[i].len, &text,
		    &tlen), i == 9 ? 0 : 1);
	bintext_free(bt);
}

static void
test_alloc_failure(void **state)
{
	struct bintext	*bt;
	const char	*text;
	size_t		 tlen;

	(void)state;
	if (!allocfail_active())
		skip();
	assert_non_null(bt = bintext_new());
	allocfail_after = 0;
	allocfail_injected = 0;
	assert_int_equal(bintext_decode(bt, B("{\"t\":\"\xff\"}"), &text, &tlen), -1);
	assert_true(allocfail_injected);
	/* UTF-8 already needs no buffer */
	assert_int_equal(bintext_decode(bt, B(JSON), &text, &tlen), 0);
	allocfail_after = -1;
	expect(bt, B("{\"t\":\"\xff\"}"), "{\"t\":\"\xef\xbf\xbd\"}");
	bintext_free(bt);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_utf16_utf32),
		cmocka_unit_test(test_not_an_object),
		cmocka_unit_test(test_alloc_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
