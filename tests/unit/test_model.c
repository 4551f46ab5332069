/* test_model: the n-gram model's features match the training script's, its scores the arithmetic, and bad files are refused. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sodium.h>

#include "chatmon/model.h"
#include "chatmon/util.h"

static char	tmpdir[] = "/tmp/test_model.XXXXXX";
static char	path[sizeof(tmpdir) + 32];

/*
 * Printed by tools/train_model.py --selftest (18 bits, grams up to 3): the
 * role's bucket, then every gram's, in order. If the features ever change,
 * both sides change together, and this table with them.
 */
static const struct {
	enum model_role	 role;
	const char	*text;
	size_t		 len;
	double		 value;
	size_t		 n;
	uint32_t	 b[32];
} py[] = {
{ MODEL_AGENT, "\xe5\x8a\xa0\xe6\x88\x91v\xe4\xbf\xa1" "abc123", 16, 0.4237986574150217, 32,
  { 42250, 209896, 100425, 153487, 31563, 2833, 127905, 51431, 146592, 31754, 14383, 86655, 222158, 22423, 203251, 4143, 71299, 257946, 5158, 239224, 5526, 5585, 130515, 225227, 43551, 207376, 32661, 42518, 178350, 138745, 42945, 4591 } },
{ MODEL_CUSTOMER, "\xe4\xb8\x8d\xe8\xa1\xa5\xe5\x81\xbf\xe5\xb0\xb1\xe7\xbb\x99\xe5\xb7\xae\xe8\xaf\x84", 21, 0.4617366309441026, 23,
  { 43680, 14008, 234620, 165765, 180642, 103794, 104916, 83019, 25252, 242539, 154472, 190504, 88406, 245632, 12244, 60220, 126388, 39030, 187272, 242853, 238521, 148918, 35045 } },
{ MODEL_AGENT, "", 0, 0.0, 1,
  { 42250 } },
{ MODEL_AGENT, "\xe5\x93\xa6", 3, 0.7071067811865475, 5,
  { 42250, 211653, 190980, 207527, 205744 } },
{ MODEL_CUSTOMER, "qq", 2, 0.6147881529512643, 8,
  { 43680, 221890, 259971, 32607, 15300, 169542, 32607, 22558 } },
{ MODEL_AGENT, "\xff\x80" "a", 3, 0.6147881529512643, 8,
  { 42250, 241453, 56825, 184781, 172251, 44113, 4143, 57204 } },
{ MODEL_CUSTOMER, "\x80\x80", 2, 0.7071067811865475, 5,
  { 43680, 20002, 87723, 48579, 141964 } },
{ MODEL_AGENT, "\xf0\x9f\x98\x80" "a", 5, 0.6147881529512643, 8,
  { 42250, 44884, 204570, 170720, 191287, 240659, 4143, 57204 } },
};

static void
test_fnv(void **state)
{
	(void)state;
	/* the published FNV-1a test vectors */
	assert_int_equal(model_fnv1a("", 0), 0x811c9dc5u);
	assert_int_equal(model_fnv1a("a", 1), 0xe40c292cu);
	assert_int_equal(model_fnv1a("foobar", 6), 0xbf9cf968u);
}

static void
test_features_match_python(void **state)
{
	uint32_t	b[64];
	double		v;
	size_t		i, j, n;

	(void)state;
	for (i = 0; i < UTIL_NELEM(py); i++) {
		n = model_features(18, 3, py[i].role, py[i].text, py[i].len, b,
		    UTIL_NELEM(b), &v);
		assert_int_equal(n, py[i].n);
		assert_true(v == py[i].value);	/* the same IEEE operations: bit for bit */
		for (j = 0; j < n; j++)
			assert_int_equal(b[j], py[i].b[j]);
	}
	/* no role feature for another role; the count is right when the array is short */
	n = model_features(18, 3, (enum model_role)3, "qq", 2, b, 2, &v);
	assert_int_equal(n, 7);
	assert_int_equal(b[0], 221890);
	assert_int_equal(b[1], 259971);
	/* 3L + 1 grams of up to 3, 2L + 1 of up to 2, L of 1 */
	assert_int_equal(model_features(18, 3, 0, "abcd", 4, b, 0, &v), 13);
	assert_int_equal(model_features(18, 2, 0, "abcd", 4, b, 0, &v), 9);
	assert_int_equal(model_features(18, 1, 0, "abcd", 4, b, 0, &v), 4);
}

/* ---- a tiny model, written here ---- */

struct tcat {
	const char	*name;
	float		 bias, thr;
};

struct tw {
	uint32_t	bucket, cat;
	float		w;
};

static void
put32(unsigned char *p, uint32_t u)
{
	p[0] = u & 0xff;
	p[1] = (u >> 8) & 0xff;
	p[2] = (u >> 16) & 0xff;
	p[3] = u >> 24;
}

static void
putf(unsigned char *p, float f)
{
	uint32_t	u;

	memcpy(&u, &f, sizeof(u));
	put32(p, u);
}

/* The file of tools/train_model.py's write_model, into buf; its size. */
static size_t
build(unsigned char *buf, unsigned bits, unsigned max_n, const struct tcat *c,
    size_t nc, const struct tw *w, size_t nw)
{
	size_t	size = 64 + nc * 32 + nw * 8, i;

	memset(buf, 0, size);
	memcpy(buf, "CMNGRAM", 8);
	put32(buf + 8, 1);
	put32(buf + 12, (uint32_t)size);
	put32(buf + 16, bits);
	put32(buf + 20, max_n);
	put32(buf + 24, (uint32_t)nc);
	put32(buf + 28, (uint32_t)nw);
	for (i = 0; i < nc; i++) {
		strncpy((char *)buf + 64 + i * 32, c[i].name, 23);
		putf(buf + 64 + i * 32 + 24, c[i].bias);
		putf(buf + 64 + i * 32 + 28, c[i].thr);
	}
	for (i = 0; i < nw; i++) {
		put32(buf + 64 + nc * 32 + i * 8, w[i].bucket << 5 | w[i].cat);
		putf(buf + 64 + nc * 32 + i * 8 + 4, w[i].w);
	}
	return size;
}

static void
seal(unsigned char *buf, size_t size)
{
	memset(buf + 32, 0, 32);
	crypto_generichash(buf + 32, 32, buf, size, NULL, 0);
}

static void
save(const unsigned char *buf, size_t size)
{
	FILE	*f;

	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(buf, 1, size, f), size);
	assert_int_equal(fclose(f), 0);
}

/*
 * 8 bits, unigrams only. The buckets, from FNV-1a folded to 8 bits (the
 * test checks them): "a" 5, "b" 200, agent 161, customer 132.
 *   alpha: bias -1, threshold 0.5; a +1, b +0.5, agent -0.25
 *   beta:  bias 0, threshold 0.25; a -2, customer +1
 */
static const struct tcat tiny_cats[] = {
	{ "alpha", -1.0f, 0.5f },
	{ "beta", 0.0f, 0.25f },
};
static const struct tw tiny_w[] = {
	{ 5, 0, 1.0f }, { 5, 1, -2.0f }, { 132, 1, 1.0f }, { 161, 0, -0.25f },
	{ 200, 0, 0.5f },
};

static size_t
tiny(unsigned char *buf)
{
	size_t	size;

	size = build(buf, 8, 1, tiny_cats, UTIL_NELEM(tiny_cats), tiny_w,
	    UTIL_NELEM(tiny_w));
	seal(buf, size);
	return size;
}

static void
test_tiny_scores(void **state)
{
	unsigned char		 buf[512];
	struct model		*m;
	struct model_hit	 h[4];
	struct sbuf		 errs;
	uint32_t		 b[4];
	double			 p[2], v;

	(void)state;
	sbuf_init(&errs);
	assert_int_equal(model_features(8, 1, MODEL_AGENT, "ab", 2, b, 4, &v), 3);
	assert_int_equal(b[0], 161);
	assert_int_equal(b[1], 5);
	assert_int_equal(b[2], 200);
	assert_int_equal(model_features(8, 1, MODEL_CUSTOMER, "", 0, b, 4, &v), 1);
	assert_int_equal(b[0], 132);

	save(buf, tiny(buf));
	m = model_new(path, &errs);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(m);
	assert_int_equal(model_categories(m), 2);
	assert_string_equal(model_category(m, 0), "alpha");
	assert_string_equal(model_category(m, 1), "beta");
	assert_null(model_category(m, 2));
	assert_true(model_threshold(m, 1) == 0.25);

	/*
	 * agent "ab": two grams of 2^-1/4 each.
	 * alpha: -1 + (1 + 0.5) * 2^-1/4 - 0.25 = 0.0113446 -> 0.5028361
	 * beta: -2 * 2^-1/4 = -1.6817928 -> 0.1568582
	 */
	model_probs(m, MODEL_AGENT, "ab", 2, p);
	assert_float_equal(p[0], 0.5028361253026536, 1e-12);
	assert_float_equal(p[1], 0.15685821449622672, 1e-12);
	assert_int_equal(model_score(m, MODEL_AGENT, "ab", 2, h, 4), 1);
	assert_string_equal(h[0].category, "alpha");
	assert_int_equal(h[0].index, 0);
	assert_float_equal(h[0].p, 0.5028361253026536, 1e-12);

	/* customer "a": alpha -1 + 1 = 0 -> 0.5, not above 0.5; beta -2 + 1 -> 0.2689414 */
	model_probs(m, MODEL_CUSTOMER, "a", 1, p);
	assert_float_equal(p[0], 0.5, 1e-12);
	assert_float_equal(p[1], 0.2689414213699951, 1e-12);
	assert_int_equal(model_score(m, MODEL_CUSTOMER, "a", 1, h, 4), 1);
	assert_string_equal(h[0].category, "beta");

	/* customer "bbbb": alpha -1 + 4 * 0.5 / sqrt(2) -> 0.6020978; beta 1 -> 0.7310586 */
	assert_int_equal(model_score(m, MODEL_CUSTOMER, "bbbb", 4, h, 4), 2);
	assert_string_equal(h[0].category, "beta");
	assert_float_equal(h[0].p, 0.7310585786300049, 1e-12);
	assert_string_equal(h[1].category, "alpha");
	assert_float_equal(h[1].p, 0.6020977804104549, 1e-12);
	/* room for one: the most probable */
	assert_int_equal(model_score(m, MODEL_CUSTOMER, "bbbb", 4, h, 1), 1);
	assert_string_equal(h[0].category, "beta");
	assert_int_equal(model_score(m, MODEL_CUSTOMER, "bbbb", 4, h, 0), 0);

	/* agent, nothing said: the biases and the role: -1.25 -> 0.2227001; 0 -> 0.5 */
	model_probs(m, MODEL_AGENT, "", 0, p);
	assert_float_equal(p[0], 0.22270013882530884, 1e-12);
	assert_float_equal(p[1], 0.5, 1e-12);
	/* a text of none of its grams: the biases alone */
	model_probs(m, (enum model_role)3, "zz", 2, p);
	assert_float_equal(p[0], 1.0 / (1.0 + exp(1.0)), 1e-12);
	model_free(m);
	model_free(NULL);
	sbuf_free(&errs);
}

/* Loading fails with one "PATH: message" line that contains want. */
static void
refused(const unsigned char *buf, size_t size, const char *want)
{
	struct sbuf	 errs;
	char		 prefix[sizeof(path) + 2];

	sbuf_init(&errs);
	save(buf, size);
	assert_null(model_new(path, &errs));
	snprintf(prefix, sizeof(prefix), "%s: ", path);
	if (strncmp(sbuf_str(&errs), prefix, strlen(prefix)) != 0 ||
	    strstr(sbuf_str(&errs), want) == NULL || errs.lines != 1)
		fail_msg("want \"%s...%s\", got \"%s\"", prefix, want, sbuf_str(&errs));
	sbuf_free(&errs);
}

static void
test_corrupt(void **state)
{
	unsigned char	 buf[512], bad[512];
	struct sbuf	 errs;
	struct tw	 w[UTIL_NELEM(tiny_w)];
	struct tcat	 c[UTIL_NELEM(tiny_cats)];
	size_t		 size, n;

	(void)state;
	size = tiny(buf);

	/* cut anywhere: header, categories, weights */
	refused(buf, 0, "truncated: 0 bytes");
	refused(buf, 40, "truncated: 40 bytes");
	refused(buf, size - 1, "truncated: the header says");
	refused(buf, 64 + 10, "truncated: the header says");
	memcpy(bad, buf, size);
	bad[size] = 0;
	refused(bad, size + 1, "trailing bytes");

	memcpy(bad, buf, size);
	bad[0] = 'X';
	refused(bad, size, "bad magic");
	memcpy(bad, buf, size);
	put32(bad + 8, 2);
	refused(bad, size, "model version 2: this chatmon reads version 1");

	/* one bit anywhere past the header's first fields is caught by the checksum */
	for (n = 16; n < size; n += 7) {
		if (n >= 32 && n < 64)
			continue;
		memcpy(bad, buf, size);
		bad[n] ^= 0x10;
		refused(bad, size, "checksum mismatch");
	}
	memcpy(bad, buf, size);
	bad[40] ^= 1;		/* the checksum itself */
	refused(bad, size, "checksum mismatch");

	/* well sealed, but wrong inside: the writer is not trusted either */
	size = build(bad, 25, 1, tiny_cats, 2, tiny_w, 5);
	seal(bad, size);
	refused(bad, size, "25 bucket bits");
	size = build(bad, 8, 4, tiny_cats, 2, tiny_w, 5);
	seal(bad, size);
	refused(bad, size, "grams of up to 4");
	size = build(bad, 8, 1, tiny_cats, 0, tiny_w, 0);
	seal(bad, size);
	refused(bad, size, "0 categories");
	size = build(bad, 8, 1, tiny_cats, 2, tiny_w, 5);
	put32(bad + 28, 4);	/* one weight fewer than there are bytes for */
	seal(bad, size);
	refused(bad, size, "2 categories and 4 weights do not make");

	memcpy(w, tiny_w, sizeof(w));
	w[1] = tiny_w[0];	/* the same key twice */
	size = build(bad, 8, 1, tiny_cats, 2, w, 5);
	seal(bad, size);
	refused(bad, size, "weight 1: keys out of order");
	memcpy(w, tiny_w, sizeof(w));
	w[4].cat = 2;		/* a category the file does not have */
	size = build(bad, 8, 1, tiny_cats, 2, w, 5);
	seal(bad, size);
	refused(bad, size, "weight 4: bucket 200, category 2");
	memcpy(w, tiny_w, sizeof(w));
	w[4].w = NAN;
	size = build(bad, 8, 1, tiny_cats, 2, w, 5);
	seal(bad, size);
	refused(bad, size, "weight 4");
	w[4].bucket = 256;	/* past 8 bits */
	w[4].w = 1;
	size = build(bad, 8, 1, tiny_cats, 2, w, 5);
	seal(bad, size);
	refused(bad, size, "bucket 256");

	memcpy(c, tiny_cats, sizeof(c));
	c[1].thr = 0;
	size = build(bad, 8, 1, c, 2, tiny_w, 5);
	seal(bad, size);
	refused(bad, size, "category beta: threshold 0");
	c[1].thr = 0.5f;
	c[1].bias = INFINITY;
	size = build(bad, 8, 1, c, 2, tiny_w, 5);
	seal(bad, size);
	refused(bad, size, "category beta: a bias that is not a number");
	c[1].bias = 0;
	c[1].name = "";
	size = build(bad, 8, 1, c, 2, tiny_w, 5);
	seal(bad, size);
	refused(bad, size, "category 1: no name");
	c[1].name = "be ta";
	size = build(bad, 8, 1, c, 2, tiny_w, 5);
	seal(bad, size);
	refused(bad, size, "category 1: name 'be ta': letters, digits, '.', '_' and '-' only");
	/* printable, but it would break /metrics' labels and the alerts' JSON */
	c[1].name = "off\"} 1";
	size = build(bad, 8, 1, c, 2, tiny_w, 5);
	seal(bad, size);
	refused(bad, size, "category 1: name 'off\"} 1': letters, digits");
	c[1].name = "b\xc3\xa9ta";
	size = build(bad, 8, 1, c, 2, tiny_w, 5);
	seal(bad, size);
	refused(bad, size, "category 1: name: letters, digits");
	/* the second of a name could never flag, and the veto read the first */
	c[1].name = "alpha";
	size = build(bad, 8, 1, c, 2, tiny_w, 5);
	seal(bad, size);
	refused(bad, size, "category alpha: named twice (categories 0 and 1)");
	size = build(bad, 8, 1, tiny_cats, 2, tiny_w, 5);
	memset(bad + 64 + 32, 'x', 24);	/* no NUL in the name */
	seal(bad, size);
	refused(bad, size, "category 1: no name");

	/* a threshold of 1 loads, and never fires */
	c[1].name = "beta";
	c[1].thr = 1.0f;
	size = build(bad, 8, 1, c, 2, tiny_w, 5);
	seal(bad, size);
	save(bad, size);
	sbuf_init(&errs);
	{
		struct model		*m;
		struct model_hit	 h[2];

		assert_non_null(m = model_new(path, &errs));
		assert_int_equal(model_score(m, MODEL_CUSTOMER, "bbbb", 4, h, 2), 1);
		assert_string_equal(h[0].category, "alpha");
		model_free(m);
	}

	/* no file, a directory: the system's reason */
	assert_int_equal(unlink(path), 0);
	assert_null(model_new(path, &errs));
	assert_non_null(strstr(sbuf_str(&errs), ": cannot read: No such file or directory"));
	sbuf_reset(&errs);
	assert_null(model_new(tmpdir, &errs));
	assert_non_null(strstr(sbuf_str(&errs), "cannot read"));
	/* errs may be NULL */
	assert_null(model_new(tmpdir, NULL));
	sbuf_free(&errs);
}

/* The shipped model, when the tree has one: it loads, and agrees with itself. */
static void
test_shipped(void **state)
{
	static const char	*want[] = { "offplatform", "invoice", "returns",
	    "stock", "review_bait", "payment", "order_close", "privacy",
	    "etiquette", "abuse", "ad_law", "complaint_risk", "extortion" };
	const char		*text = "\xe5\x8a\xa0\xe6\x88\x91v\xe4\xbf\xa1" "abc123";
	struct model		*m;
	struct model_hit	 h[MODEL_MAX_CATEGORIES];
	struct sbuf		 errs;
	double			 p[MODEL_MAX_CATEGORIES];
	size_t			 i, n, fired = 0;

	(void)state;
	if (access("conf/model/chatmon-ngram.model", R_OK) == -1)
		skip();
	sbuf_init(&errs);
	m = model_new("conf/model/chatmon-ngram.model", &errs);
	assert_string_equal(sbuf_str(&errs), "");
	assert_non_null(m);
	assert_int_equal(model_categories(m), UTIL_NELEM(want));
	for (i = 0; i < UTIL_NELEM(want); i++)
		assert_string_equal(model_category(m, i), want[i]);
	model_probs(m, MODEL_AGENT, text, strlen(text), p);
	n = model_score(m, MODEL_AGENT, text, strlen(text), h, UTIL_NELEM(h));
	for (i = 0; i < UTIL_NELEM(want); i++) {
		assert_true(p[i] >= 0 && p[i] <= 1);
		fired += p[i] > model_threshold(m, i);
	}
	assert_int_equal(n, fired);
	for (i = 0; i < n; i++)
		assert_float_equal(h[i].p, p[h[i].index], 1e-12);
	model_free(m);
	sbuf_free(&errs);
}

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/t.model", tmpdir);
	return sodium_init() < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(tmpdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fnv),
		cmocka_unit_test(test_features_match_python),
		cmocka_unit_test(test_tiny_scores),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_shipped),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
