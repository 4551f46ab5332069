/* test_websess: login sessions (ids, whole-life and idle expiry, the bound, logout) and the Cookie header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/websess.h"

#define H	3600000ULL

static void
test_life(void **state)
{
	struct websess	*s;
	char		 a[WEBSESS_ID_LEN + 1], b[WEBSESS_ID_LEN + 1], bad[WEBSESS_ID_LEN + 1];
	int		 ev;

	(void)state;
	assert_null(websess_new(0, 1, 12 * H, H));
	assert_non_null(s = websess_new(4, 4, 12 * H, H));
	assert_int_equal(websess_create(s, "alice", NULL, 1000, a, &ev), 0);
	assert_int_equal(ev, 0);
	assert_int_equal(strlen(a), WEBSESS_ID_LEN);
	assert_null(strpbrk(a, "+/="));		/* base64url, no padding: a cookie value as is */
	assert_int_equal(websess_create(s, "alice", NULL, 1000, b, &ev), 0);
	assert_string_not_equal(a, b);
	assert_string_equal(websess_get(s, a, 2000, 1, NULL), "alice");
	/* a changed character, a cut one, junk: no session */
	memcpy(bad, a, sizeof(bad));
	bad[5] = bad[5] == 'A' ? 'B' : 'A';
	assert_null(websess_get(s, bad, 2000, 1, NULL));
	bad[WEBSESS_ID_LEN - 1] = '\0';
	assert_null(websess_get(s, bad, 2000, 1, NULL));
	assert_null(websess_get(s, "", 2000, 1, NULL));
	assert_null(websess_get(s, "not base64 at all, but 43 characters long!!", 2000, 1, NULL));

	/* idle: used within the hour it lives on, without it ends */
	assert_non_null(websess_get(s, a, 1000 + H - 1, 1, NULL));
	assert_non_null(websess_get(s, a, 1000 + 2 * H - 2, 1, NULL));
	assert_null(websess_get(s, b, 1000 + 2 * H - 2, 0, NULL));	/* b was idle */
	assert_int_equal(websess_count(s), 1);
	/* a look without touch does not keep it alive */
	assert_non_null(websess_get(s, a, 1000 + 2 * H, 0, NULL));
	assert_null(websess_get(s, a, 1000 + 3 * H, 0, NULL));

	/* whole life: 12 h from login however busy */
	assert_int_equal(websess_create(s, "bob", NULL, 0, a, &ev), 0);
	{
		uint64_t	t;

		for (t = 0; t < 12 * H; t += H / 2)
			assert_non_null(websess_get(s, a, t, 1, NULL));
		assert_null(websess_get(s, a, 12 * H, 1, NULL));
	}
	websess_free(s);
	websess_free(NULL);
}

static void
test_bound_logout_sweep(void **state)
{
	struct websess	*s;
	char		 id[5][WEBSESS_ID_LEN + 1];
	int		 ev, i;

	(void)state;
	assert_non_null(s = websess_new(3, 3, 12 * H, H));
	for (i = 0; i < 3; i++)
		assert_int_equal(websess_create(s, "u", NULL, (uint64_t)i, id[i], &ev), 0);
	assert_non_null(websess_get(s, id[0], 10, 1, NULL));	/* 1 is now least used */
	assert_int_equal(websess_create(s, "v", NULL, 11, id[3], &ev), 0);
	assert_int_equal(ev, WEBSESS_EVICTED_FULL);
	assert_int_equal(websess_count(s), 3);
	assert_null(websess_get(s, id[1], 12, 0, NULL));
	assert_non_null(websess_get(s, id[0], 12, 0, NULL));
	assert_non_null(websess_get(s, id[3], 12, 0, NULL));

	assert_int_equal(websess_end(s, id[0]), 1);
	assert_int_equal(websess_end(s, id[0]), 0);
	assert_null(websess_get(s, id[0], 13, 0, NULL));
	assert_int_equal(websess_create(s, "v", NULL, 14, id[4], &ev), 0);
	assert_int_equal(ev, 0);
	assert_int_equal(websess_end_user(s, "v"), 2);
	assert_int_equal(websess_count(s), 1);
	assert_int_equal(websess_sweep(s, 2 + H - 1), 0);
	assert_int_equal(websess_sweep(s, 2 + H), 1);
	assert_int_equal(websess_count(s), 0);
	/* a user name longer than any valid one */
	assert_int_equal(websess_create(s, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL,
	    0, id[0], &ev), -1);
	websess_free(s);
}

/*
 * One user logging in over and over ends only their own sessions (the
 * reviewer's 1 000 logins of a viewer logged the boss out), and a full
 * table gives up a session of the user who holds the most.
 */
static void
test_per_user(void **state)
{
	struct websess	*s;
	char		 boss[WEBSESS_ID_LEN + 1], v[WEBSESS_ID_LEN + 1];
	char		 last[3][WEBSESS_ID_LEN + 1], first[WEBSESS_ID_LEN + 1];
	int		 ev, i;

	(void)state;
	assert_null(websess_new(4, 0, 12 * H, H));
	assert_null(websess_new(4, 5, 12 * H, H));
	assert_non_null(s = websess_new(10, 3, 12 * H, H));
	assert_int_equal(websess_create(s, "boss", NULL, 1, boss, &ev), 0);
	assert_int_equal(websess_create(s, "tmview", NULL, 2, first, &ev), 0);
	for (i = 0; i < 100; i++) {
		assert_int_equal(websess_create(s, "tmview", NULL, 3 + (uint64_t)i,
		    last[i % 3], &ev), 0);
		assert_int_equal(ev, i < 2 ? 0 : WEBSESS_EVICTED_OWN);
	}
	assert_string_equal(websess_get(s, boss, 200, 0, NULL), "boss");
	assert_int_equal(websess_count_user(s, "tmview"), 3);
	assert_int_equal(websess_count(s), 4);
	assert_null(websess_get(s, first, 200, 0, NULL));
	for (i = 0; i < 3; i++)		/* the three newest are the ones left */
		assert_string_equal(websess_get(s, last[i], 200, 0, NULL), "tmview");
	/* used, an old one is kept over a newer one left alone */
	assert_non_null(websess_get(s, last[(100 - 3) % 3], 300, 1, NULL));
	assert_int_equal(websess_create(s, "tmview", NULL, 301, v, &ev), 0);
	assert_non_null(websess_get(s, last[(100 - 3) % 3], 302, 0, NULL));
	assert_null(websess_get(s, last[(100 - 2) % 3], 302, 0, NULL));
	websess_free(s);

	/* full (4 of 4): the least used session of the user with the most goes */
	assert_non_null(s = websess_new(4, 3, 12 * H, H));
	assert_int_equal(websess_create(s, "boss", NULL, 1, boss, &ev), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(websess_create(s, "u", NULL, 2 + (uint64_t)i,
		    last[i], &ev), 0);
	assert_non_null(websess_get(s, last[0], 10, 1, NULL));
	assert_int_equal(websess_create(s, "w", NULL, 11, v, &ev), 0);
	assert_int_equal(ev, WEBSESS_EVICTED_FULL);
	assert_string_equal(websess_get(s, boss, 12, 0, NULL), "boss");
	assert_null(websess_get(s, last[1], 12, 0, NULL));
	assert_int_equal(websess_count_user(s, "u"), 2);
	websess_free(s);
}

/* A session keeps the stamp it was made with, for the caller to compare. */
static void
test_stamp(void **state)
{
	struct websess		*s;
	char			 a[WEBSESS_ID_LEN + 1], b[WEBSESS_ID_LEN + 1];
	unsigned char		 st[WEBSESS_STAMP_BYTES], zero[WEBSESS_STAMP_BYTES];
	const unsigned char	*got = NULL;
	int			 ev;

	(void)state;
	memset(st, 0xa5, sizeof(st));
	memset(zero, 0, sizeof(zero));
	assert_non_null(s = websess_new(4, 4, 12 * H, H));
	assert_int_equal(websess_create(s, "alice", st, 1, a, &ev), 0);
	assert_int_equal(websess_create(s, "alice", NULL, 1, b, &ev), 0);
	assert_non_null(websess_get(s, a, 2, 0, &got));
	assert_memory_equal(got, st, sizeof(st));
	assert_non_null(websess_get(s, b, 2, 0, &got));
	assert_memory_equal(got, zero, sizeof(zero));
	websess_free(s);
}

/* The first value of cookie name in header, or -1. */
static int
first(const char *header, const char *name, char *out, size_t outsz)
{
	const char	*pos = header;

	return websess_cookie(&pos, name, out, outsz);
}

static void
test_cookie(void **state)
{
	char	v[64];

	(void)state;
	assert_int_equal(first("chatmon_session=abc", "chatmon_session", v, sizeof(v)), 0);
	assert_string_equal(v, "abc");
	assert_int_equal(first("a=1; chatmon_session=x-y_z ; b=2",
	    "chatmon_session", v, sizeof(v)), 0);
	assert_string_equal(v, "x-y_z");
	assert_int_equal(first("xchatmon_session=1; chatmon_sessionx=2",
	    "chatmon_session", v, sizeof(v)), -1);
	assert_int_equal(first("", "chatmon_session", v, sizeof(v)), -1);
	assert_int_equal(first("chatmon_session=0123456789", "chatmon_session",
	    v, 5), -1);
	assert_int_equal(first("chatmon_session=", "chatmon_session", v,
	    sizeof(v)), 0);
	assert_string_equal(v, "");
}

/* Every value of the name, in order: a stale one first must not hide the live one. */
static void
test_cookie_every_value(void **state)
{
	const char	*h = "chatmon_session=AAAA; a=1; chatmon_session=good;"
			    "chatmon_session=0123456789abcdef; noeq; chatmon_session=last";
	const char	*pos = h;
	char		 v[8], *big;
	size_t		 n = 6000;
	struct websess	*s;
	char		 id[WEBSESS_ID_LEN + 1], hdr[256];

	(void)state;
	assert_int_equal(websess_cookie(&pos, "chatmon_session", v, sizeof(v)), 0);
	assert_string_equal(v, "AAAA");
	assert_int_equal(websess_cookie(&pos, "chatmon_session", v, sizeof(v)), 0);
	assert_string_equal(v, "good");
	/* too long for v: passed over, not the end */
	assert_int_equal(websess_cookie(&pos, "chatmon_session", v, sizeof(v)), 0);
	assert_string_equal(v, "last");
	assert_int_equal(websess_cookie(&pos, "chatmon_session", v, sizeof(v)), -1);
	assert_int_equal(websess_cookie(&pos, "chatmon_session", v, sizeof(v)), -1);

	/* a value after kilobytes of other cookies */
	assert_non_null(big = malloc(n + 64));
	memset(big, 'x', n);
	memcpy(big, "x=", 2);
	snprintf(big + n, 64, "; chatmon_session=far");
	pos = big;
	assert_int_equal(websess_cookie(&pos, "chatmon_session", v, sizeof(v)), 0);
	assert_string_equal(v, "far");
	free(big);

	/* the way dashauth uses it: the first value that is a live session */
	assert_non_null(s = websess_new(4, 4, 1000, 1000));
	assert_int_equal(websess_create(s, "alice", NULL, 1, id, &(int){ 0 }), 0);
	snprintf(hdr, sizeof(hdr), "chatmon_session=AAAA; chatmon_session=%s", id);
	pos = hdr;
	while (websess_cookie(&pos, "chatmon_session", id, sizeof(id)) == 0 &&
	    websess_get(s, id, 2, 0, NULL) == NULL)
		;
	assert_string_equal(websess_get(s, id, 2, 0, NULL), "alice");
	websess_free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_life),
		cmocka_unit_test(test_bound_logout_sweep),
		cmocka_unit_test(test_per_user),
		cmocka_unit_test(test_stamp),
		cmocka_unit_test(test_cookie),
		cmocka_unit_test(test_cookie_every_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
