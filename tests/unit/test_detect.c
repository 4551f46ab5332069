/*
 * detect: a turn through the rules, alone and with its speaker's last
 * turns. The window pass is skipped when the turns' notes say it cannot
 * find anything (rules_window_needed); these tests hold detect_turn to
 * what the pass run every time finds: rules_match of the turn, then
 * rules_match_window over the same joined text from a window of its own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "chatmon/detect.h"
#include "chatmon/rules.h"
#include "chatmon/util.h"
#include "chatmon/window.h"

static const char rules_yaml[] =
    "- rule: w.contact\n"
    "  category: offplatform\n  severity: critical\n  action: block\n"
    "  window: true\n"
    "  pattern: '加我.{0,4}?(?:微信|vx|v)[a-z0-9]{3,}'\n"
    "  message: m\n"
    "  examples: {match: [加我微信abc123], no_match: [加我]}\n"
    "- rule: w.phone\n"
    "  category: offplatform\n  severity: warn\n  action: warn\n"
    "  window: true\n"
    "  pattern: '(?:电话|手机)(?:是|号)?[0-9]{7,}'\n"
    "  message: m\n"
    "  examples: {match: [电话13812345678], no_match: [电话]}\n"
    "- rule: w.stock\n"
    "  category: stock\n  severity: warn\n  action: warn\n"
    "  window: true\n"
    "  pattern: '仓库.{0,6}?没(?:货|有了)'\n"
    "  message: m\n"
    "  examples: {match: [仓库里没货], no_match: [仓库]}\n"
    "- rule: w.emoji\n"
    "  category: review_bait\n  severity: warn\n  action: warn\n"
    "  window: true\n"
    "  normalize: {noise: false}\n"
    "  pattern: '(?:好评|五星)\\s*\xf0\x9f\xa7\xa7'\n"
    "  message: m\n"
    "  examples: {match: ['好评 \xf0\x9f\xa7\xa7'], no_match: [好评]}\n"
    "- rule: w.num\n"
    "  category: offplatform\n  severity: warn\n  action: warn\n"
    "  window: true\n"
    "  pattern: '138[0-9]{4}'\n"
    "  message: m\n"
    "  examples: {match: [1381234], no_match: [138]}\n"
    "- rule: t.plain\n"
    "  category: etiquette\n  severity: info\n  action: flag\n"
    "  pattern: '不知道'\n"
    "  examples: {match: [我不知道], no_match: [知道]}\n";

struct fixture {
	char		 dir[64];
	struct rules	*r;		/* detect's */
	struct rulebook	*book;		/* r alone */
	struct rules	*oracle;	/* the pass run every time */
	struct detect	*d;
	struct window	*w;		/* the oracle's turns */
};

static int
setup(void **state)
{
	struct fixture		*fx;
	struct window_conf	 wc = { 3, 60000, 64, 100, 0 };
	struct sbuf		 errs;
	char			 path[128];
	FILE			*f;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	*state = fx;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_detect.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/t.yaml", fx->dir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(rules_yaml, f);
	fclose(f);
	sbuf_init(&errs);
	fx->r = rules_load_dir(fx->dir, 0, &errs);
	fx->oracle = rules_load_dir(fx->dir, 0, &errs);
	if (fx->r == NULL || fx->oracle == NULL)
		fprintf(stderr, "%s", sbuf_str(&errs));
	sbuf_free(&errs);
	unlink(path);
	if (fx->r == NULL || fx->oracle == NULL)
		return -1;
	if ((fx->book = rulebook_of(fx->r)) == NULL)
		return -1;
	fx->d = detect_new(fx->book, &wc);
	fx->w = window_new(&wc);
	return fx->d != NULL && fx->w != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	detect_free(fx->d);
	window_free(fx->w);
	rulebook_free(fx->book);
	rules_free(fx->r);
	rules_free(fx->oracle);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/*
 * One turn through detect_turn and through the oracle: the same hits (rule,
 * code points, turns) in the same order. Returns the window hits.
 */
static size_t
turn(struct fixture *fx, const char *conv, enum rules_role role,
    const char *text, int64_t now)
{
	const struct detect_hit	*dh;
	const struct rules_hit	*h;
	struct rules_hit	 want[16];
	const char		*joined;
	const size_t		*starts;
	size_t			 n, nw = 0, i, k, ns, jlen, last, nturns;
	size_t			 len = strlen(text);
	uint32_t		 cp;
	ssize_t			 got;

	n = rules_match(fx->oracle, role, text, len, &h);
	assert_true(n < 16);
	memcpy(want, h, n * sizeof(*h));
	assert_int_equal(window_add(fx->w, conv, strlen(conv), (int)role, "", text,
	    len, now, &joined, &jlen, &last, &nturns), 0);
	if (nturns > 1) {
		nw = rules_match_window(fx->oracle, role, joined, jlen,
		    (uint32_t)util_utf8_count(joined, last), &h);
		assert_true(n + nw < 16);
		memcpy(want + n, h, nw * sizeof(*h));
	}
	starts = window_starts(fx->w, &ns);
	got = detect_turn(fx->d, role, "", "", conv, strlen(conv), text, len, now, &dh);
	assert_int_equal(got, (ssize_t)(n + nw));
	for (i = 0; i < n + nw; i++) {
		assert_string_equal(dh[i].hit.rule, want[i].rule);
		assert_int_equal(dh[i].turns > 1, i >= n);
		if (i < n) {
			assert_int_equal(dh[i].hit.start, want[i].start);
			assert_int_equal(dh[i].hit.end, want[i].end);
			continue;
		}
		/* across turns: the text is cut to the turns the match spans */
		for (k = 0; k + 1 < ns &&
		    util_utf8_count(joined, starts[k + 1]) <= want[i].start; k++)
			;
		cp = (uint32_t)util_utf8_count(joined, starts[k]);
		assert_int_equal(dh[i].turns, ns - k);
		assert_int_equal(dh[i].text_len, jlen - starts[k]);
		assert_memory_equal(dh[i].text, joined + starts[k], dh[i].text_len);
		assert_int_equal(dh[i].last, last - starts[k]);
		assert_int_equal(dh[i].hit.start, want[i].start - cp);
		assert_int_equal(dh[i].hit.end, want[i].end - cp);
	}
	return nw;
}

/* A contact split over turns, at a junction inside a word and across noise. */
static void
test_split(void **state)
{
	struct fixture	*fx = *state;

	assert_int_equal(turn(fx, "c1", RULES_AGENT, "亲，加", 1), 0);
	assert_int_equal(turn(fx, "c1", RULES_AGENT, "我微", 2), 0);
	assert_int_equal(turn(fx, "c1", RULES_AGENT, "信abc123", 3), 1);
	/* a long gap at the junction: a space in the joined text */
	assert_int_equal(turn(fx, "c2", RULES_AGENT, "加我。。。。", 1), 0);
	assert_int_equal(turn(fx, "c2", RULES_AGENT, "！！vabc", 2), 1);
	/* numerals run across a junction: the digit step joins them */
	assert_int_equal(turn(fx, "c3", RULES_AGENT, "电话是一三", 1), 0);
	assert_int_equal(turn(fx, "c3", RULES_AGENT, "八一二三四五六七", 2), 2);
	/* a numeral on each side: the run goes on, 一 | 三八1234 reads 1381234 */
	assert_int_equal(turn(fx, "c6", RULES_AGENT, "好的一", 1), 0);
	assert_int_equal(turn(fx, "c6", RULES_AGENT, "三八1234", 2), 1);
	/*
	 * three noise characters at a junction: removed as in one message (the
	 * line feed that joins the turns is no fourth), the notes agreeing
	 */
	assert_int_equal(turn(fx, "c8", RULES_AGENT, "好的138。。。", 1), 0);
	assert_int_equal(turn(fx, "c8", RULES_AGENT, "4567", 2), 1);
	/* ... and an emoji as typed is one, however many code points */
	assert_int_equal(turn(fx, "c9", RULES_AGENT, "好的138\xf0\x9f\x91\xa9\xf0\x9f\x8f\xbd"
	    "\xe2\x80\x8d\xf0\x9f\x92\xbb", 1), 0);
	assert_int_equal(turn(fx, "c9", RULES_AGENT, "。。4567", 2), 1);
	/* a literal over a turn shorter than it: 没有了 reads across two junctions */
	assert_int_equal(turn(fx, "c7", RULES_AGENT, "仓库里没", 1), 0);
	assert_int_equal(turn(fx, "c7", RULES_AGENT, "有", 2), 0);
	assert_int_equal(turn(fx, "c7", RULES_AGENT, "了", 3), 1);
	/* not plain: the emoji rule's view */
	assert_int_equal(turn(fx, "c4", RULES_AGENT, "给个好评", 1), 0);
	assert_int_equal(turn(fx, "c4", RULES_AGENT, "\xf0\x9f\xa7\xa7", 2), 1);
	/* clean turns: nothing, and nothing from the window */
	assert_int_equal(turn(fx, "c5", RULES_AGENT, "亲，您好，这款是304不锈钢的", 1), 0);
	assert_int_equal(turn(fx, "c5", RULES_AGENT, "今天下单明天发货哦", 2), 0);
	assert_int_equal(turn(fx, "c5", RULES_AGENT, "仓库打包会仔细检查", 3), 0);
	assert_int_equal(turn(fx, "c5", RULES_AGENT, "放心吧，没有问题", 4), 0);
}

/* The notes alone: clean turns need no window pass, a split contact does. */
static void
test_needed(void **state)
{
	struct fixture		*fx = *state;
	static const char *const clean[] = { "亲，您好", "这款是304不锈钢的", "今天下单" };
	static const char *const split[] = { "亲，加", "我微", "信abc123" };
	struct rules_note	 notes[3];
	const struct rules_note	*earlier[2];
	const struct rules_hit	*h;
	size_t			 i;

	for (i = 0; i < 3; i++) {
		rules_match(fx->r, RULES_AGENT, clean[i], strlen(clean[i]), &h);
		rules_note_take(fx->r, &notes[i]);
		assert_true(notes[i].gen != 0);
	}
	earlier[0] = &notes[0];
	earlier[1] = &notes[1];
	assert_int_equal(rules_window_needed(fx->r, RULES_AGENT, earlier, 2,
	    &notes[2]), 0);
	for (i = 0; i < 3; i++) {
		rules_match(fx->r, RULES_AGENT, split[i], strlen(split[i]), &h);
		rules_note_take(fx->r, &notes[i]);
	}
	/* 加 | 我微 | 信: only the junctions hold 加我 and 微信 */
	assert_int_equal(rules_window_needed(fx->r, RULES_AGENT, earlier, 2,
	    &notes[2]), 1);
	/* a note of another rule set is no note */
	rules_match(fx->oracle, RULES_AGENT, clean[2], strlen(clean[2]), &h);
	rules_note_take(fx->oracle, &notes[2]);
	assert_int_equal(rules_window_needed(fx->r, RULES_AGENT, earlier, 2,
	    &notes[2]), 1);
}

/*
 * Random conversations from pieces that split words, numerals, noise of
 * every length, emoji and invalid bytes: detect_turn always finds what the
 * pass run every time finds.
 */
static void
test_random(void **state)
{
	static const char *const pieces[] = {
		"加", "我", "加我", "微", "信", "微信", "v", "x", "abc", "123",
		"电话", "手机", "是", "一三八", "八", "1", "2345678", "仓库",
		"里", "没", "货", "没有了", "好评", "五星", "\xf0\x9f\xa7\xa7",
		"，", "。。。。", " ", "！", "~", "亲", "好的", "您", "稍等",
		"不知道", "\xf0\x9f\x98\x80", "\xff", "Ｖ", "薇", "①",
	};
	struct fixture	*fx = *state;
	char		 text[256], conv[8];
	size_t		 i, j, k, len, windows = 0;
	uint32_t	 x = 20261204;

	for (i = 0; i < 6000; i++) {
		len = 0;
		x = x * 1103515245u + 12345u;
		for (j = 1 + (x >> 16) % 5; j > 0; j--) {
			x = x * 1103515245u + 12345u;
			k = (x >> 16) % UTIL_NELEM(pieces);
			/* mostly plain words, as chat is */
			if (k >= 24 && (x >> 8) % 3 != 0)
				k = (x >> 11) % 24;
			if (len + strlen(pieces[k]) + 1 >= sizeof(text))
				break;
			memcpy(text + len, pieces[k], strlen(pieces[k]));
			len += strlen(pieces[k]);
		}
		text[len] = '\0';
		x = x * 1103515245u + 12345u;
		snprintf(conv, sizeof(conv), "r%u", (x >> 16) % 7);
		windows += turn(fx, conv, (x >> 8) % 2 ? RULES_AGENT :
		    RULES_CUSTOMER, text, (int64_t)i * 10);
	}
	assert_true(windows > 50);	/* the window pass did find things */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_split, setup, teardown),
		cmocka_unit_test_setup_teardown(test_needed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
