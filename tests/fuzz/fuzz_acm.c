/* fuzz_acm: literals and a text from the input; acm_scan must report just what a naive search finds, in acm.h's order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/acm.h"

#include "fuzz.h"

/*
 * The input is "LITERAL\nLITERAL\n...\n\nTEXT": the literals are the
 * non-empty lines before the first empty line, each added with its line's
 * number as id (a repeated line is the same literal under several ids).
 * Without an empty line every line is a literal and the text is the whole
 * input. The naive search is test_acm.c's.
 */

#define MAX_LITS	2048	/* keeps the naive search quick */

struct hit {
	uint32_t	id;
	size_t		end;
	size_t		len;	/* for the naive order only */
	size_t		idx;
};

struct hits {
	struct hit	*h;
	size_t		 n, cap;
	size_t		 stop_at;	/* stop after this many; 0: never */
};

struct lit {
	const uint8_t	*p;
	size_t		 len;
	uint32_t	 id;
};

static void
hits_push(struct hits *hs, uint32_t id, size_t end, size_t len, size_t idx)
{
	if (hs->n == hs->cap) {
		hs->cap = hs->cap ? hs->cap * 2 : 64;
		if ((hs->h = realloc(hs->h, hs->cap * sizeof(*hs->h))) == NULL)
			abort();
	}
	hs->h[hs->n].id = id;
	hs->h[hs->n].end = end;
	hs->h[hs->n].len = len;
	hs->h[hs->n].idx = idx;
	hs->n++;
}

static int
collect(uint32_t id, size_t end, void *arg)
{
	struct hits	*hs = arg;

	hits_push(hs, id, end, 0, 0);
	return hs->stop_at != 0 && hs->n >= hs->stop_at;
}

static int
hit_cmp(const void *x, const void *y)
{
	const struct hit	*a = x, *b = y;

	if (a->end != b->end)
		return a->end < b->end ? -1 : 1;
	if (a->len != b->len)
		return a->len > b->len ? -1 : 1;	/* longer first */
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static void
naive(const struct lit *l, size_t nl, const uint8_t *t, size_t len,
    struct hits *hs)
{
	const uint8_t	*p, *q;
	size_t		 i;

	for (i = 0; i < nl; i++) {
		for (p = t; p + l[i].len <= t + len; p = q + 1) {
			q = memmem(p, (size_t)(t + len - p), l[i].p, l[i].len);
			if (q == NULL)
				break;
			hits_push(hs, l[i].id, (size_t)(q - t) + l[i].len,
			    l[i].len, i);
		}
	}
	if (hs->n)
		qsort(hs->h, hs->n, sizeof(*hs->h), hit_cmp);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lit	*l;
	struct acm	*a;
	struct hits	 got = { 0 }, want = { 0 };
	const uint8_t	*text = data, *end = data + size, *p, *nl;
	size_t		 tlen = size, n = 0, i;
	uint32_t	 line = 0;

	/* the literals end at the first empty line */
	for (p = data; p + 1 < end; p++)
		if (p[0] == '\n' && p[1] == '\n') {
			end = p + 1;
			text = p + 2;
			tlen = size - (size_t)(text - data);
			break;
		}
	if ((l = calloc(MAX_LITS, sizeof(*l))) == NULL ||
	    (a = acm_new()) == NULL)
		abort();
	/* both forms (acm.h): the input's size picks one */
	if (size % 2)
		acm_set_dense_max(a, 0);
	for (p = data; p < end && n < MAX_LITS; p = nl + 1, line++) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if (nl == p)
			continue;
		l[n].p = p;
		l[n].len = (size_t)(nl - p);
		l[n].id = line;
		FUZZ_CHECK(acm_add(a, l[n].p, l[n].len, l[n].id) == 0);
		n++;
	}
	FUZZ_CHECK(acm_add(a, data, 0, 0) == -1);	/* len 0 is refused */
	FUZZ_CHECK(acm_build(a) == 0);
	FUZZ_CHECK(acm_count(a) == n);
	FUZZ_CHECK(acm_add(a, "x", 1, 0) == -1);	/* and so is adding after build */
	(void)acm_states(a);
	(void)acm_memory(a);

	FUZZ_CHECK(acm_scan(a, text, tlen, collect, &got) == 0);
	naive(l, n, text, tlen, &want);
	FUZZ_CHECK(got.n == want.n);
	for (i = 0; i < got.n; i++) {
		FUZZ_CHECK(got.h[i].end == want.h[i].end);
		FUZZ_CHECK(got.h[i].id == want.h[i].id);
	}

	/* stopped part way: the same hits up to the stop */
	if (want.n > 0) {
		got.n = 0;
		got.stop_at = 1 + tlen % want.n;
		FUZZ_CHECK(acm_scan(a, text, tlen, collect, &got) == 1);
		FUZZ_CHECK(got.n == got.stop_at);
		for (i = 0; i < got.n; i++) {
			FUZZ_CHECK(got.h[i].end == want.h[i].end);
			FUZZ_CHECK(got.h[i].id == want.h[i].id);
		}
	}
	/* an empty text has no hits */
	got.n = 0;
	got.stop_at = 0;
	FUZZ_CHECK(acm_scan(a, text, 0, collect, &got) == 0 && got.n == 0);

	acm_free(a);
	free(l);
	free(got.h);
	free(want.h);
	return 0;
}
