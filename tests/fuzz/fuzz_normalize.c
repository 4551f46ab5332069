/* fuzz_normalize: any bytes through norm_run with each of the 16 step sets; test_normalize's invariants checked on each. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "chatmon/normalize.h"

#include "fuzz.h"

/*
 * The input is the text, whole. For every combination of steps it is
 * normalised by one normaliser that has already seen the other step sets
 * (warm caches and grown buffers) and by a fresh one: both must agree. The
 * invariants are test_random_bytes's: the original and the output are
 * valid UTF-8, the map never decreases and gives every byte of one output
 * character one index, the offsets strictly increase. A valid text is also
 * normalised with an invalid byte in front, which keeps norm_run off its
 * fast path (test_fast_vs_general): the result is the same, shifted by the
 * U+FFFD that byte becomes.
 */

#define FFFD_LEN	3	/* bytes of U+FFFD */

/* The number of code points of valid UTF-8 s; -1 when s is not valid. */
static long
utf8_count(const char *s, size_t len)
{
	const utf8proc_uint8_t	*p = (const utf8proc_uint8_t *)s;
	utf8proc_ssize_t	 k;
	utf8proc_int32_t	 cp;
	size_t			 i;
	long			 count = 0;

	for (i = 0; i < len; i += (size_t)k) {
		k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
		if (k <= 0 || cp < 0)
			return -1;
		count++;
	}
	return count;
}

/* One result, copied out of the normaliser that made it. */
struct result {
	char		*out;
	size_t		 len;
	uint32_t	*map;		/* len + 1 entries */
	uint32_t	 ncp;		/* map[len] */
	size_t		*off;		/* ncp + 1 entries */
};

static void
result_free(struct result *r)
{
	free(r->out);
	free(r->map);
	free(r->off);
}

/* Runs n on text with steps, checks the invariants, and copies the result into r. */
static void
run(struct norm *n, const char *text, size_t tlen, unsigned steps,
    struct result *r)
{
	const char	*out, *orig;
	const uint32_t	*map;
	size_t		 len, olen, j;
	const utf8proc_uint8_t *p;
	utf8proc_ssize_t k;
	utf8proc_int32_t cp;
	uint32_t	 cs, ce;

	FUZZ_CHECK(norm_run(n, text, tlen, steps, &out, &len, &map) == 0);
	FUZZ_CHECK(out[len] == '\0');
	orig = norm_orig(n, &olen);
	FUZZ_CHECK(utf8_count(orig, olen) == (long)map[len]);
	FUZZ_CHECK(utf8_count(out, len) >= 0);
	for (j = 0; j < len; j++) {
		FUZZ_CHECK(map[j] < map[len]);
		if (j > 0)
			FUZZ_CHECK(map[j - 1] <= map[j]);
	}
	/* one output character, one original index (a sound token: its letters) */
	p = (const utf8proc_uint8_t *)out;
	for (j = 0; j < len; j += (size_t)k) {
		k = utf8proc_iterate(p + j, (utf8proc_ssize_t)(len - j), &cp);
		FUZZ_CHECK(k > 0);
		if (!(steps & NORM_SOUND) || (uint32_t)cp - NORM_SOUND_BASE > 0x1000)
			FUZZ_CHECK(map[j + (size_t)k - 1] == map[j]);
	}
	FUZZ_CHECK(norm_orig_offset(n, 0) == 0);
	for (j = 0; j < map[len]; j++)
		FUZZ_CHECK(norm_orig_offset(n, (uint32_t)j) <
		    norm_orig_offset(n, (uint32_t)j + 1));
	FUZZ_CHECK(norm_orig_offset(n, map[len]) == olen);
	FUZZ_CHECK(norm_orig_offset(n, UINT32_MAX) == olen);
	/* without steps, the output is the repaired original */
	if (steps == 0)
		FUZZ_CHECK(len == olen && memcmp(out, orig, len) == 0);
	/* spans: the whole output, and every character boundary to the end */
	norm_span(map, 0, len, &cs, &ce);
	FUZZ_CHECK(cs <= ce && ce <= map[len]);
	for (j = 0; j <= len; j += 1 + len / 8) {
		norm_span(map, j, len, &cs, &ce);
		FUZZ_CHECK(cs <= ce && ce <= map[len]);
	}

	r->len = len;
	r->ncp = map[len];
	r->out = fuzz_strndup(out, len);
	if ((r->map = malloc((len + 1) * sizeof(*r->map))) == NULL ||
	    (r->off = malloc((r->ncp + 1) * sizeof(*r->off))) == NULL)
		abort();
	memcpy(r->map, map, (len + 1) * sizeof(*map));
	for (j = 0; j <= r->ncp; j++)
		r->off[j] = norm_orig_offset(n, (uint32_t)j);
}

static void
same(const struct result *a, const struct result *b)
{
	FUZZ_CHECK(a->len == b->len);
	FUZZ_CHECK(memcmp(a->out, b->out, a->len) == 0);
	FUZZ_CHECK(memcmp(a->map, b->map, (a->len + 1) * sizeof(*a->map)) == 0);
	FUZZ_CHECK(a->ncp == b->ncp);
	FUZZ_CHECK(memcmp(a->off, b->off, (a->ncp + 1) * sizeof(*a->off)) == 0);
}

/* b is a's text with one invalid byte in front (test_fast_vs_general). */
static void
same_shifted(const struct result *a, const struct result *b, unsigned steps)
{
	size_t	lead = steps & NORM_NOISE ? 0 : FFFD_LEN, j;

	FUZZ_CHECK(b->len == a->len + lead);
	FUZZ_CHECK(memcmp(b->out + lead, a->out, a->len) == 0);
	for (j = 0; j < lead; j++)
		FUZZ_CHECK(b->map[j] == 0);
	for (j = 0; j <= a->len; j++)
		FUZZ_CHECK(b->map[lead + j] == a->map[j] + 1);
	FUZZ_CHECK(b->ncp == a->ncp + 1);
	for (j = 0; j <= a->ncp; j++)
		FUZZ_CHECK(b->off[j + 1] == a->off[j] + FFFD_LEN);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*text = (const char *)data;
	struct norm	*warm, *cold;
	struct result	 w, c, s;
	char		*shifted;
	unsigned	 steps;
	int		 valid;

	valid = utf8_count(text, size) >= 0;
	shifted = malloc(size + 1);
	if (shifted == NULL || (warm = norm_new()) == NULL)
		abort();
	shifted[0] = '\x80';
	memcpy(shifted + 1, data, size);
	for (steps = 0; steps <= NORM_STEPS; steps++) {
		run(warm, text, size, steps, &w);
		if ((cold = norm_new()) == NULL)
			abort();
		run(cold, text, size, steps, &c);
		same(&w, &c);
		if (valid) {
			run(cold, shifted, size + 1, steps, &s);
			same_shifted(&w, &s, steps);
			result_free(&s);
		}
		norm_free(cold);
		result_free(&w);
		result_free(&c);
	}
	norm_free(warm);
	free(shifted);
	return 0;
}
