/* test_window: each speaker's last turns, joined; bounded in turns, time, bytes and speakers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "chatmon/window.h"

static const char *
add(struct window *w, const char *conv, int role, const char *text, int64_t t,
    size_t *last, size_t *n)
{
	const char	*j;
	size_t		 jl;

	assert_int_equal(window_add(w, conv, strlen(conv), role, "", text,
	    strlen(text), t, &j, &jl, last, n), 0);
	assert_int_equal(strlen(j), jl);
	return j;
}

static void
test_joined(void **state)
{
	struct window_conf	 c = { 3, 60000, 64, 100, 0 };
	struct window		*w;
	size_t			 last, n;

	(void)state;
	assert_non_null(w = window_new(&c));
	assert_string_equal(add(w, "c1", 1, "加我", 0, &last, &n), "加我");
	assert_int_equal(last, 0);
	assert_int_equal(n, 1);
	/* the other speaker and the other conversation keep their own */
	assert_string_equal(add(w, "c1", 2, "好的", 10, &last, &n), "好的");
	assert_string_equal(add(w, "c2", 1, "你好", 20, &last, &n), "你好");
	assert_string_equal(add(w, "c1", 1, "v", 30, &last, &n), "加我\nv");
	assert_int_equal(last, strlen("加我\n"));
	assert_int_equal(n, 2);
	assert_string_equal(add(w, "c1", 1, "abc123", 40, &last, &n), "加我\nv\nabc123");
	assert_int_equal(n, 3);
	/* three turns at most: the oldest goes */
	assert_string_equal(add(w, "c1", 1, "亲", 50, &last, &n), "v\nabc123\n亲");
	assert_int_equal(window_count(w), 2);
	window_end(w, "c1", 2);
	assert_int_equal(window_count(w), 1);
	assert_string_equal(add(w, "c1", 1, "new", 60, &last, &n), "new");
	window_free(w);
}

/* A role's turns are one speaker's: another agent in it starts afresh. */
static void
test_speaker(void **state)
{
	struct window_conf	 c = { 3, 60000, 64, 100, 0 };
	struct window		*w;
	const char		*j;
	size_t			 jl, last, n;

	(void)state;
	assert_non_null(w = window_new(&c));
	assert_int_equal(window_add(w, "c", 1, 0, "alice", "加我", strlen("加我"),
	    0, &j, &jl, &last, &n), 0);
	assert_int_equal(window_add(w, "c", 1, 1, "", "嗯", strlen("嗯"),
	    5, &j, &jl, &last, &n), 0);
	assert_int_equal(window_add(w, "c", 1, 0, "bob", "v abc", 5,
	    10, &j, &jl, &last, &n), 0);
	assert_string_equal(j, "v abc");
	assert_int_equal(n, 1);
	assert_int_equal(window_add(w, "c", 1, 0, "bob", "123", 3,
	    20, &j, &jl, &last, &n), 0);
	assert_string_equal(j, "v abc\n123");
	/* the other role's speaker is not touched */
	assert_int_equal(window_add(w, "c", 1, 1, "", "好", strlen("好"),
	    30, &j, &jl, &last, &n), 0);
	assert_string_equal(j, "嗯\n好");
	window_free(w);
}

/*
 * Found by review: bob's turn that took the role was blocked (never
 * said): alice's turns are hers again, and her split 加我 / v / abc12345
 * is seen whole. A turn of bob's that stays takes the role for good.
 */
static void
test_speaker_unadd(void **state)
{
	struct window_conf	 c = { 3, 60000, 64, 100, 0 };
	struct window		*w;
	const char		*j;
	size_t			 jl, last, n;

	(void)state;
	assert_non_null(w = window_new(&c));
	assert_int_equal(window_add(w, "c", 1, 0, "alice", "加我", strlen("加我"),
	    0, &j, &jl, &last, &n), 0);
	assert_int_equal(window_add(w, "c", 1, 0, "alice", "v", 1,
	    5, &j, &jl, &last, &n), 0);
	assert_int_equal(window_add(w, "c", 1, 0, "bob", "加我微信", strlen("加我微信"),
	    10, &j, &jl, &last, &n), 0);
	assert_string_equal(j, "加我微信");
	window_unadd(w);
	assert_int_equal(window_add(w, "c", 1, 0, "alice", "abc12345", 8,
	    20, &j, &jl, &last, &n), 0);
	assert_string_equal(j, "加我\nv\nabc12345");
	assert_int_equal(n, 3);
	/* bob again, not taken back: alice's are gone for good */
	assert_int_equal(window_add(w, "c", 1, 0, "bob", "好的", strlen("好的"),
	    30, &j, &jl, &last, &n), 0);
	assert_int_equal(window_add(w, "c", 1, 0, "alice", "x", 1,
	    40, &j, &jl, &last, &n), 0);
	assert_string_equal(j, "x");
	/* set aside, then the conversation ended: nothing comes back, nothing leaks */
	assert_int_equal(window_add(w, "c", 1, 0, "bob", "y", 1,
	    50, &j, &jl, &last, &n), 0);
	window_end(w, "c", 1);
	window_unadd(w);
	assert_int_equal(window_add(w, "c", 1, 0, "alice", "z", 1,
	    60, &j, &jl, &last, &n), 0);
	assert_string_equal(j, "z");
	/* set aside and kept at window_free */
	assert_int_equal(window_add(w, "c", 1, 0, "bob", "w", 1,
	    70, &j, &jl, &last, &n), 0);
	window_free(w);
}

static void
test_time_and_bytes(void **state)
{
	struct window_conf	 c = { 4, 1000, 6, 100, 0 };
	struct window		*w;
	size_t			 last, n;

	(void)state;
	assert_non_null(w = window_new(&c));
	add(w, "c", 1, "一二三四", 0, &last, &n);	/* 12 bytes: its last 6 kept */
	assert_string_equal(add(w, "c", 1, "x", 500, &last, &n), "三四\nx");
	/* past the window in time: alone again */
	assert_string_equal(add(w, "c", 1, "y", 1600, &last, &n), "y");
	/* a cut never splits a character: 7 bytes "a" + 2 chars, 6 kept = 2 chars */
	add(w, "c", 1, "a一二", 1700, &last, &n);
	assert_string_equal(add(w, "c", 1, "z", 1701, &last, &n), "y\n一二\nz");
	/* no window: each turn alone (what was kept ages out as ever) */
	c.turns = 1;
	window_set(w, &c);
	assert_string_equal(add(w, "c", 1, "p", 1800, &last, &n), "p");
	assert_string_equal(add(w, "c", 1, "q", 1801, &last, &n), "q");
	window_free(w);
}

/*
 * New limits keep what they still allow: fewer turns keep the newest,
 * fewer bytes cut the kept turns as if kept so, notes of another size go
 * (the turns stay, without notes) and more room takes more.
 */
static void
test_set_keeps(void **state)
{
	struct window_conf	 c = { 4, 60000, 64, 100, 8 };
	struct window		*w;
	const void		*const *earlier;
	void			*slot;
	size_t			 last, n, ne;

	(void)state;
	assert_non_null(w = window_new(&c));
	add(w, "c", 1, "一二三", 0, &last, &n);
	window_notes(w, &earlier, &ne, &slot);
	memset(slot, 0xaa, 8);
	add(w, "c", 1, "abcdef", 10, &last, &n);
	window_notes(w, &earlier, &ne, &slot);
	memset(slot, 0xbb, 8);
	add(w, "c", 2, "好的", 15, &last, &n);
	assert_string_equal(add(w, "c", 1, "x", 20, &last, &n), "一二三\nabcdef\nx");
	window_unadd(w);
	/* the same sizes: everything, notes too */
	window_set(w, &c);
	assert_string_equal(add(w, "c", 1, "x", 20, &last, &n), "一二三\nabcdef\nx");
	window_notes(w, &earlier, &ne, &slot);
	assert_int_equal(ne, 2);
	assert_int_equal(((const unsigned char *)earlier[1])[0], 0xbb);
	window_unadd(w);
	/* 4 bytes: 一二三 keeps 三 (3 bytes: no half character), abcdef cdef */
	c.bytes = 4;
	window_set(w, &c);
	assert_string_equal(add(w, "c", 1, "x", 30, &last, &n), "三\ncdef\nx");
	window_notes(w, &earlier, &ne, &slot);
	assert_int_equal(ne, 2);
	assert_int_equal(((const unsigned char *)earlier[0])[0], 0);	/* cut: no note */
	window_unadd(w);
	/* two turns: the newest earlier one */
	c.turns = 2;
	window_set(w, &c);
	assert_string_equal(add(w, "c", 1, "x", 40, &last, &n), "cdef\nx");
	window_unadd(w);
	/* notes of another size: the turns stay, with no notes */
	c.turns = 4;
	c.bytes = 64;
	c.note_bytes = 16;
	window_set(w, &c);
	assert_string_equal(add(w, "c", 1, "y", 50, &last, &n), "cdef\ny");
	window_notes(w, &earlier, &ne, &slot);
	assert_int_equal(ne, 1);
	assert_int_equal(((const unsigned char *)earlier[0])[15], 0);
	assert_non_null(slot);
	memset(slot, 0xcc, 16);
	/* and more room takes more, the other speaker untouched */
	assert_string_equal(add(w, "c", 1, "z", 60, &last, &n), "cdef\ny\nz");
	assert_string_equal(add(w, "c", 2, "嗯", 65, &last, &n), "好的\n嗯");
	window_free(w);
}

/* Speakers past max_convs, and those silent longer than the window, are forgotten. */
static void
test_bounded(void **state)
{
	struct window_conf	 c = { 3, 1000, 32, 50, 0 };
	struct window		*w;
	char			 id[32];
	size_t			 last, n;
	int			 i;

	(void)state;
	assert_non_null(w = window_new(&c));
	for (i = 0; i < 500; i++) {
		snprintf(id, sizeof(id), "conv-%d", i);
		add(w, id, 1, "hello", 10, &last, &n);
		assert_true(window_count(w) <= 50);
	}
	/* the most recent are still there */
	assert_string_equal(add(w, "conv-499", 1, "again", 20, &last, &n), "hello\nagain");
	/* a speaker heard long ago is dropped when someone talks */
	add(w, "late", 1, "now", 5000, &last, &n);
	assert_int_equal(window_count(w), 1);
	window_free(w);
	window_free(NULL);
}

/*
 * Notes: each turn's slot, zeroed for the caller, handed back with the
 * earlier turns it stays with; none for a turn cut to `bytes`.
 */
static void
test_notes(void **state)
{
	struct window_conf	 c = { 3, 60000, 8, 100, 16 };
	struct window		*w;
	const void *const	*earlier;
	void			*slot;
	size_t			 last, n, k;
	static const char	 zero[16];

	(void)state;
	assert_non_null(w = window_new(&c));
	add(w, "c", 0, "ab", 1, &last, &n);
	window_notes(w, &earlier, &k, &slot);
	assert_int_equal(k, 0);
	assert_non_null(slot);
	assert_memory_equal(slot, zero, 16);
	memcpy(slot, "note of ab......", 16);
	add(w, "c", 0, "cd", 2, &last, &n);
	window_notes(w, &earlier, &k, &slot);
	assert_int_equal(k, 1);
	assert_memory_equal(earlier[0], "note of ab......", 16);
	memcpy(slot, "note of cd......", 16);
	/* longer than bytes: kept cut, so no note of it */
	add(w, "c", 0, "0123456789", 3, &last, &n);
	window_notes(w, &earlier, &k, &slot);
	assert_int_equal(k, 2);
	assert_memory_equal(earlier[0], "note of ab......", 16);
	assert_memory_equal(earlier[1], "note of cd......", 16);
	assert_null(slot);
	add(w, "c", 0, "ef", 4, &last, &n);
	window_notes(w, &earlier, &k, &slot);
	assert_int_equal(k, 2);
	assert_memory_equal(earlier[0], "note of cd......", 16);
	assert_memory_equal(earlier[1], zero, 16);	/* the cut turn's */
	/* another speaker has notes of its own */
	add(w, "c", 1, "gh", 5, &last, &n);
	window_notes(w, &earlier, &k, &slot);
	assert_int_equal(k, 0);
	window_free(w);
}

/* A turn taken back (blocked) is as if it had never come. */
static void
test_unadd(void **state)
{
	struct window_conf	 c = { 3, 60000, 64, 100, 0 };
	struct window		*w;
	size_t			 last, n;

	(void)state;
	assert_non_null(w = window_new(&c));
	add(w, "c", 1, "加我", 0, &last, &n);
	add(w, "c", 1, "v abc12345", 10, &last, &n);
	window_unadd(w);
	assert_string_equal(add(w, "c", 1, "v abc12345", 20, &last, &n),
	    "加我\nv abc12345");
	assert_int_equal(n, 2);
	/* a full ring: the turn it pushed out was out of the next one's reach */
	add(w, "c", 1, "x", 30, &last, &n);
	add(w, "c", 1, "y", 40, &last, &n);
	window_unadd(w);
	assert_string_equal(add(w, "c", 1, "z", 50, &last, &n),
	    "v abc12345\nx\nz");
	/* only the last add, once; nothing after the conversation ended */
	window_unadd(w);
	window_unadd(w);
	assert_string_equal(add(w, "c", 1, "q", 60, &last, &n), "v abc12345\nx\nq");
	window_end(w, "c", 1);
	window_unadd(w);
	assert_string_equal(add(w, "c", 1, "r", 70, &last, &n), "r");
	window_free(w);
}

/* A ring grows with what it holds; its turns survive the growth, wrapped or not. */
static void
test_grow(void **state)
{
	struct window_conf	 c = { 3, 60000, 256, 100, 16 };
	struct window		*w;
	const void *const	*earlier;
	void			*slot;
	size_t			 last, n, k;
	char			 l100[101], l300[301], want[512];

	(void)state;
	memset(l100, 'l', 100);
	l100[100] = '\0';
	memset(l300, 'x', 300);
	l300[300] = '\0';
	assert_non_null(w = window_new(&c));
	add(w, "c", 0, "a", 0, &last, &n);
	window_notes(w, &earlier, &k, &slot);
	memcpy(slot, "note of a.......", 16);
	add(w, "c", 0, "b", 1, &last, &n);
	window_notes(w, &earlier, &k, &slot);
	memcpy(slot, "note of b.......", 16);
	assert_string_equal(add(w, "c", 0, "c", 2, &last, &n), "a\nb\nc");
	window_notes(w, &earlier, &k, &slot);
	assert_int_equal(k, 2);
	assert_memory_equal(earlier[0], "note of a.......", 16);
	assert_memory_equal(earlier[1], "note of b.......", 16);
	memcpy(slot, "note of c.......", 16);
	/* full: the oldest goes, the ring wraps */
	assert_string_equal(add(w, "c", 0, "d", 3, &last, &n), "b\nc\nd");
	/* a longer turn than the slots hold: laid out afresh, notes and all */
	snprintf(want, sizeof(want), "c\nd\n%s", l100);
	assert_string_equal(add(w, "c", 0, l100, 4, &last, &n), want);
	window_notes(w, &earlier, &k, &slot);
	assert_memory_equal(earlier[0], "note of c.......", 16);
	snprintf(want, sizeof(want), "d\n%s\ne", l100);
	assert_string_equal(add(w, "c", 0, "e", 5, &last, &n), want);
	/* past bytes: its last 256 kept, in slots no larger */
	add(w, "c", 0, l300, 6, &last, &n);
	snprintf(want, sizeof(want), "e\n%s\nf", l300 + 44);
	assert_string_equal(add(w, "c", 0, "f", 7, &last, &n), want);
	window_free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_joined),
		cmocka_unit_test(test_speaker),
		cmocka_unit_test(test_speaker_unadd),
		cmocka_unit_test(test_time_and_bytes),
		cmocka_unit_test(test_set_keeps),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_notes),
		cmocka_unit_test(test_unadd),
		cmocka_unit_test(test_grow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
