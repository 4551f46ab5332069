/* test_acm: Aho-Corasick reports just what a naive search finds, in order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "allocfail.h"

#include "chatmon/acm.h"

/* One report: what the automaton passes to the callback. */
struct hit {
	uint32_t	id;
	size_t		end;
	/* for the naive search's ordering only */
	size_t		len;
	size_t		idx;
};

struct hits {
	struct hit	*h;
	size_t		 n, cap;
	size_t		 stop_at;	/* stop after this many; 0: never */
};

static void
hits_push(struct hits *hs, uint32_t id, size_t end, size_t len, size_t idx)
{
	if (hs->n == hs->cap) {
		hs->cap = hs->cap ? hs->cap * 2 : 64;
		hs->h = realloc(hs->h, hs->cap * sizeof(*hs->h));
		assert_non_null(hs->h);
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

struct lit {
	const uint8_t	*p;
	size_t		 len;
	uint32_t	 id;
};

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

/* The reference: every occurrence of every literal, in acm.h's order. */
static void
naive(const struct lit *l, size_t nl, const uint8_t *t, size_t len,
    struct hits *hs)
{
	const uint8_t	*p, *q;
	size_t		 i;

	hs->n = 0;
	for (i = 0; i < nl; i++) {
		for (p = t; p != NULL && p + l[i].len <= t + len; p = q + 1) {
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

static void
assert_same(const struct hits *got, const struct hits *want)
{
	size_t	i;

	assert_int_equal(got->n, want->n);
	for (i = 0; i < got->n; i++) {
		assert_int_equal(got->h[i].end, want->h[i].end);
		assert_int_equal(got->h[i].id, want->h[i].id);
	}
}

/* Every test runs twice: with the one-lookup table, and compact (acm.h). */
static int	compact;

static struct acm *
new_acm(void)
{
	struct acm	*a;

	if ((a = acm_new()) != NULL && compact)
		acm_set_dense_max(a, 0);
	return a;
}

static int
setup_compact(void **state)
{
	(void)state;
	compact = 1;
	return 0;
}

static struct acm *
build(const struct lit *l, size_t nl)
{
	struct acm	*a;
	size_t		 i;

	assert_non_null(a = new_acm());
	for (i = 0; i < nl; i++)
		assert_int_equal(acm_add(a, l[i].p, l[i].len, l[i].id), 0);
	assert_int_equal(acm_build(a), 0);
	assert_int_equal(acm_count(a), nl);
	return a;
}

/* Scans and checks against the naive search. */
static void
check(const struct acm *a, const struct lit *l, size_t nl, const void *t,
    size_t len)
{
	struct hits	got = { 0 }, want = { 0 };

	assert_int_equal(acm_scan(a, t, len, collect, &got), 0);
	naive(l, nl, t, len, &want);
	assert_same(&got, &want);
	free(got.h);
	free(want.h);
}

#define LIT(s, id)	{ (const uint8_t *)(s), sizeof(s) - 1, (id) }

/* Expected (id, end) pairs, in order. */
static void
expect(const struct acm *a, const char *t, size_t len, const uint32_t *ids,
    const size_t *ends, size_t n)
{
	struct hits	got = { 0 };
	size_t		i;

	assert_int_equal(acm_scan(a, t, len, collect, &got), 0);
	assert_int_equal(got.n, n);
	for (i = 0; i < n; i++) {
		assert_int_equal(got.h[i].id, ids[i]);
		assert_int_equal(got.h[i].end, ends[i]);
	}
	free(got.h);
}

static void
test_classic(void **state)
{
	const struct lit l[] = {
		LIT("he", 0), LIT("she", 1), LIT("his", 2), LIT("hers", 3),
	};
	const uint32_t	 ids[] = { 1, 0, 3 };
	const size_t	 ends[] = { 4, 4, 6 };
	struct acm	*a;

	(void)state;
	a = build(l, 4);
	expect(a, "ushers", 6, ids, ends, 3);
	check(a, l, 4, "ushers", 6);
	check(a, l, 4, "hishershehis", 12);
	assert_true(acm_states(a) > 1);
	acm_free(a);
}

static void
test_overlapping_and_nested(void **state)
{
	const struct lit l[] = {
		LIT("aa", 10), LIT("abcd", 11), LIT("bc", 12), LIT("b", 13),
		LIT("cd", 14), LIT("abcdabcd", 15),
	};
	const uint32_t	 ids1[] = { 10, 10, 10 };
	const size_t	 ends1[] = { 2, 3, 4 };
	const uint32_t	 ids2[] = { 13, 12, 11, 14 };
	const size_t	 ends2[] = { 3, 4, 5, 5 };
	struct acm	*a;

	(void)state;
	a = build(l, 6);
	expect(a, "aaaa", 4, ids1, ends1, 3);
	expect(a, "xabcdx", 6, ids2, ends2, 4);
	check(a, l, 6, "abcdabcdabcd", 12);
	acm_free(a);
}

/* A literal that is a suffix of another comes at the same end, after it. */
static void
test_suffix_literal(void **state)
{
	const struct lit l[] = { LIT("c", 1), LIT("abc", 2), LIT("bc", 3) };
	const uint32_t	 ids[] = { 2, 3, 1, 1 };
	const size_t	 ends[] = { 3, 3, 3, 5 };
	struct acm	*a;

	(void)state;
	a = build(l, 3);
	expect(a, "abcxc", 5, ids, ends, 4);
	acm_free(a);
}

static void
test_duplicates(void **state)
{
	const struct lit l[] = {
		LIT("foo", 7), LIT("oo", 1), LIT("foo", 3), LIT("foo", 7),
	};
	const uint32_t	 ids[] = { 7, 3, 7, 1 };
	const size_t	 ends[] = { 4, 4, 4, 4 };
	struct acm	*a;

	(void)state;
	a = build(l, 4);
	expect(a, "xfoo", 4, ids, ends, 4);
	assert_int_equal(acm_count(a), 4);
	acm_free(a);
}

static void
test_single_bytes(void **state)
{
	const struct lit l[] = { LIT("a", 1), LIT("b", 2), LIT("ab", 3) };
	const uint32_t	 ids[] = { 1, 3, 2, 2, 1 };
	const size_t	 ends[] = { 1, 2, 2, 3, 4 };
	struct acm	*a;

	(void)state;
	a = build(l, 3);
	expect(a, "abba", 4, ids, ends, 5);
	acm_free(a);
}

/* NUL and 0xFF are bytes like any other; the text is not a C string. */
static void
test_binary(void **state)
{
	const struct lit l[] = {
		LIT("\0", 1), LIT("\xff\xff", 2), LIT("\0\xff", 3),
		LIT("\xff\0\0", 4),
	};
	const char	 t[] = "a\0\xff\xff\xff\0\0b";
	const uint32_t	 ids[] = { 1, 3, 2, 2, 1, 4, 1 };
	const size_t	 ends[] = { 2, 3, 4, 5, 6, 7, 7 };
	struct acm	*a;

	(void)state;
	a = build(l, 4);
	expect(a, t, sizeof(t) - 1, ids, ends, 7);
	check(a, l, 4, t, sizeof(t) - 1);
	acm_free(a);
}

static void
test_chinese(void **state)
{
	const struct lit l[] = {
		LIT("微信", 1), LIT("信", 2), LIT("加我微信", 3),
	};
	const char	 t[] = "亲，加我微信吧，信我，微 信";
	const uint32_t	 ids[] = { 3, 1, 2, 2, 2 };
	const size_t	 ends[] = { 18, 18, 18, 27, 40 };
	struct acm	*a;

	(void)state;
	a = build(l, 3);
	expect(a, t, sizeof(t) - 1, ids, ends, 5);
	check(a, l, 3, t, sizeof(t) - 1);
	/* a literal's prefix bytes at the end of the text match nothing */
	expect(a, "加我微\xe4", 10, NULL, NULL, 0);
	assert_true(acm_memory(a) > 0);
	acm_free(a);
}

static void
test_stop(void **state)
{
	const struct lit l[] = { LIT("ab", 1), LIT("b", 2), LIT("b", 3) };
	struct hits	 hs = { 0 };
	struct acm	*a;

	(void)state;
	a = build(l, 3);
	hs.stop_at = 1;
	assert_int_equal(acm_scan(a, "abab", 4, collect, &hs), 1);
	assert_int_equal(hs.n, 1);
	assert_int_equal(hs.h[0].id, 1);
	/* stopping in the middle of one state's list */
	hs.n = 0;
	hs.stop_at = 2;
	assert_int_equal(acm_scan(a, "abab", 4, collect, &hs), 1);
	assert_int_equal(hs.n, 2);
	assert_int_equal(hs.h[1].id, 2);
	/* a stop that never comes */
	hs.n = 0;
	hs.stop_at = 7;
	assert_int_equal(acm_scan(a, "abab", 4, collect, &hs), 0);
	assert_int_equal(hs.n, 6);
	free(hs.h);
	acm_free(a);
}

static void
test_empty_text(void **state)
{
	const struct lit l[] = { LIT("a", 1) };
	struct acm	*a;

	(void)state;
	a = build(l, 1);
	expect(a, "", 0, NULL, NULL, 0);
	expect(a, NULL, 0, NULL, NULL, 0);
	expect(a, "bbb", 3, NULL, NULL, 0);
	acm_free(a);
}

static void
test_empty_automaton(void **state)
{
	struct acm	*a;

	(void)state;
	assert_non_null(a = new_acm());
	/* never built: matches nothing */
	expect(a, "abc", 3, NULL, NULL, 0);
	assert_int_equal(acm_states(a), 0);
	assert_int_equal(acm_build(a), 0);
	assert_int_equal(acm_count(a), 0);
	assert_int_equal(acm_states(a), 1);
	expect(a, "abc\0\xff", 5, NULL, NULL, 0);
	acm_free(a);
	acm_free(NULL);
}

static void
test_misuse(void **state)
{
	const uint32_t	 ids[] = { 5 };
	const size_t	 ends[] = { 2 };
	struct acm	*a;
	size_t		 st;

	(void)state;
	assert_non_null(a = new_acm());
	assert_int_equal(acm_add(a, "x", 0, 1), -1);
	assert_int_equal(acm_add(a, NULL, 1, 1), -1);
	assert_int_equal(acm_add(a, "ab", 2, 5), 0);
	assert_int_equal(acm_count(a), 1);
	assert_int_equal(acm_build(a), 0);
	st = acm_states(a);
	assert_int_equal(st, 3);
	/* frozen: adding fails, building again changes nothing */
	assert_int_equal(acm_add(a, "c", 1, 6), -1);
	assert_int_equal(acm_count(a), 1);
	assert_int_equal(acm_build(a), 0);
	assert_int_equal(acm_states(a), st);
	expect(a, "abc", 3, ids, ends, 1);
	acm_free(a);
}

/* All 256 byte values used (no class 0 left), and 255 of them. */
static void
test_all_bytes(void **state)
{
	uint8_t		 buf[512], t[4096];
	struct lit	 l[256];
	struct acm	*a;
	size_t		 i, n;

	(void)state;
	for (n = 255; n <= 256; n++) {
		for (i = 0; i < n; i++) {
			buf[2 * i] = (uint8_t)i;
			buf[2 * i + 1] = (uint8_t)(i * 7 + 1);
			l[i].p = buf + 2 * i;
			l[i].len = 2;
			l[i].id = (uint32_t)i;
		}
		a = build(l, n);
		for (i = 0; i < sizeof(t); i++)
			t[i] = (uint8_t)((i * 7 % 256) ^ (i / 256));
		check(a, l, n, t, sizeof(t));
		check(a, l, n, buf, 2 * n);
		acm_free(a);
	}
}

static uint64_t	rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 11) % n);
}

/*
 * The proof: many random literal sets over small alphabets (so that
 * literals overlap, nest and repeat), many random texts, every report
 * compared with the naive search, including scans stopped part way.
 */
static void
test_random_crosscheck(void **state)
{
	static const char *alpha[] = { "ab", "abc", "\0a\xff\x80", "abcdefgh" };
	static const size_t alen[] = { 2, 3, 4, 8 };
	uint8_t		 lb[40][8], t[160];
	struct lit	 l[40];
	struct hits	 got = { 0 }, want = { 0 };
	struct acm	*a;
	size_t		 round, k, i, j, nl, tl, al;
	const char	*al_s;
	int		 r;

	(void)state;
	for (round = 0; round < 1500; round++) {
		j = rnd(4);
		al_s = alpha[j];
		al = alen[j];
		nl = 1 + rnd(round % 3 == 0 ? 40 : 12);
		for (i = 0; i < nl; i++) {
			l[i].len = 1 + rnd(j == 3 ? 8 : 6);
			for (k = 0; k < l[i].len; k++)
				lb[i][k] = (uint8_t)al_s[rnd((uint32_t)al)];
			l[i].p = lb[i];
			/* small ids repeat; now and then a large one */
			l[i].id = rnd(8) ? rnd(16) : UINT32_MAX - rnd(3);
		}
		a = build(l, nl);
		for (k = 0; k < 12; k++) {
			tl = rnd(sizeof(t) + 1);
			for (i = 0; i < tl; i++)
				t[i] = (uint8_t)al_s[rnd((uint32_t)al)];
			check(a, l, nl, t, tl);

			naive(l, nl, t, tl, &want);
			got.n = 0;
			got.stop_at = 1 + rnd(8);
			r = acm_scan(a, t, tl, collect, &got);
			if (want.n >= got.stop_at) {
				assert_int_equal(r, 1);
				assert_int_equal(got.n, got.stop_at);
			} else {
				assert_int_equal(r, 0);
				assert_int_equal(got.n, want.n);
			}
			for (i = 0; i < got.n; i++) {
				assert_int_equal(got.h[i].id, want.h[i].id);
				assert_int_equal(got.h[i].end, want.h[i].end);
			}
		}
		acm_free(a);
	}
	free(got.h);
	free(want.h);
}

/*
 * acm_scan_across finds every occurrence that starts before the junction
 * and ends after it, as the naive search does, and stops early: random
 * literals (each its own id, so its length is known), texts and junctions.
 */
static void
test_across(void **state)
{
	static const char *alpha[] = { "ab", "abc", "\xe4\xb8\xad\xe6", "abcdefgh" };
	static const size_t alen[] = { 2, 3, 4, 8 };
	uint8_t		 lb[30][10], t[120];
	struct lit	 l[30];
	struct hits	 got = { 0 }, want = { 0 };
	struct acm	*a;
	size_t		 round, k, i, j, n, nl, tl, al, from, early = 0;
	const char	*al_s;

	(void)state;
	for (round = 0; round < 1000; round++) {
		j = rnd(4);
		al_s = alpha[j];
		al = alen[j];
		nl = 1 + rnd(30);
		for (i = 0; i < nl; i++) {
			l[i].len = 1 + rnd(10);
			for (k = 0; k < l[i].len; k++)
				lb[i][k] = (uint8_t)al_s[rnd((uint32_t)al)];
			l[i].p = lb[i];
			l[i].id = (uint32_t)i;
		}
		a = build(l, nl);
		for (k = 0; k < 12; k++) {
			tl = rnd(sizeof(t) + 1);
			for (i = 0; i < tl; i++)
				t[i] = (uint8_t)al_s[rnd((uint32_t)al)];
			from = rnd((uint32_t)tl + 1);
			naive(l, nl, t, tl, &want);
			got.n = 0;
			got.stop_at = 0;
			assert_int_equal(acm_scan_across(a, t, tl, from, collect, &got), 0);
			/* what was reported is there, in order */
			for (i = 0, n = 0; i < got.n; i++) {
				while (n < want.n && (want.h[n].end != got.h[i].end ||
				    want.h[n].id != got.h[i].id))
					n++;
				assert_true(n < want.n);
				n++;
			}
			/* and every one across the junction was reported */
			for (i = 0, n = 0; i < want.n; i++) {
				if (want.h[i].end <= from ||
				    want.h[i].end - want.h[i].len >= from)
					continue;
				while (n < got.n && (got.h[n].end != want.h[i].end ||
				    got.h[n].id != want.h[i].id))
					n++;
				assert_true(n < got.n);
				n++;
			}
			/* it stopped before the end when it could */
			early += got.n < want.n;
		}
		acm_free(a);
	}
	assert_true(early > 1000);
	free(got.h);
	free(want.h);
}

/* A large set: tens of thousands of states, a long text full of hits. */
static void
test_large_set(void **state)
{
	enum { N = 8000, L = 16, TL = 3000 };
	static uint8_t	 lb[N][L], t[TL];
	static struct lit l[N];
	struct acm	*a, *b, *d;
	size_t		 i, k, j;

	(void)state;
	for (i = 0; i < N; i++) {
		for (k = 0; k < L; k++)
			lb[i][k] = (uint8_t)('a' + rnd(26));
		l[i].p = lb[i];
		l[i].len = L - 4 + rnd(5);
		l[i].id = (uint32_t)i;
	}
	/* its table would take far more than 1 MiB: compact by default */
	a = build(l, N);
	assert_true(acm_states(a) > 65536);
	assert_true(acm_memory(a) < acm_states(a) * 27 * sizeof(uint32_t) / 4);
	/* unless the table is allowed to be that big */
	assert_non_null(d = acm_new());
	acm_set_dense_max(d, SIZE_MAX);
	for (i = 0; i < N; i++)
		assert_int_equal(acm_add(d, l[i].p, l[i].len, l[i].id), 0);
	assert_int_equal(acm_build(d), 0);
	assert_true(acm_memory(d) >= acm_states(d) * 27 * sizeof(uint32_t));
	/* text made of pieces of literals, so that there is plenty to find */
	for (i = 0; i < TL; ) {
		j = rnd(N);
		for (k = rnd(L); k < l[j].len && i < TL; k++)
			t[i++] = lb[j][k];
		if (i < TL && rnd(3) == 0)
			t[i++] = (uint8_t)('a' + rnd(26));
	}
	check(a, l, N, t, TL);
	check(d, l, N, t, TL);
	acm_free(d);

	/* the same literals cut short: a smaller table, and more to report */
	for (i = 0; i < N; i++)
		l[i].len = 1 + rnd(3);
	b = build(l, N);
	assert_true(acm_memory(b) < acm_memory(a));
	check(b, l, N, t, TL);
	acm_free(a);
	acm_free(b);
}

/*
 * Fails each allocation in turn while adding and building. Every failure
 * must come back as -1/NULL, leak nothing (valgrind, ASan) and leave the
 * automaton usable: a failed add leaves the literals before it, a failed
 * build may be retried.
 */
static void
test_alloc_failure(void **state)
{
	enum { N = 70 };
	uint8_t		 lb[N][6], t[400];
	struct lit	 l[N];
	struct acm	*a;
	size_t		 i, k, nl;
	long		 n;
	int		 built;

	(void)state;
	if (!allocfail_active())
		skip();
	for (i = 0; i < N; i++) {
		l[i].len = 1 + rnd(6);
		for (k = 0; k < l[i].len; k++)
			lb[i][k] = (uint8_t)"abcd"[rnd(4)];
		l[i].p = lb[i];
		l[i].id = (uint32_t)i;
	}
	for (i = 0; i < sizeof(t); i++)
		t[i] = (uint8_t)"abcd"[rnd(4)];

	for (n = 0;; n++) {
		allocfail_injected = 0;
		allocfail_after = n;
		if ((a = new_acm()) == NULL) {
			allocfail_after = -1;
			assert_true(allocfail_injected);
			continue;
		}
		for (nl = 0; nl < N; nl++)
			if (acm_add(a, l[nl].p, l[nl].len, l[nl].id) == -1)
				break;
		built = nl == N && acm_build(a) == 0;
		allocfail_after = -1;
		if (!allocfail_injected) {
			assert_true(built);
			check(a, l, N, t, sizeof(t));
			acm_free(a);
			break;
		}
		assert_false(built);
		assert_int_equal(acm_count(a), nl);
		assert_int_equal(acm_build(a), 0);
		check(a, l, nl, t, sizeof(t));
		acm_free(a);
	}
	/* new, growing both arrays several times, and the build's own */
	assert_true(n > 10);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classic),
		cmocka_unit_test(test_overlapping_and_nested),
		cmocka_unit_test(test_suffix_literal),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_single_bytes),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_chinese),
		cmocka_unit_test(test_stop),
		cmocka_unit_test(test_empty_text),
		cmocka_unit_test(test_empty_automaton),
		cmocka_unit_test(test_misuse),
		cmocka_unit_test(test_all_bytes),
		cmocka_unit_test(test_random_crosscheck),
		cmocka_unit_test(test_across),
		cmocka_unit_test(test_large_set),
		cmocka_unit_test(test_alloc_failure),
	};

	int	failed;

	failed = cmocka_run_group_tests_name("acm", tests, NULL, NULL);
	return failed + cmocka_run_group_tests_name("acm, compact", tests,
	    setup_compact, NULL);
}
