/* test_normalize: golden texts through each step and all of them, offsets, invalid UTF-8, reuse without growth. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <utf8proc.h>

#include "chatmon/normalize.h"

/* The look-alikes the normaliser folds (tools/gen_fold.py). */
#include "fold_table.h"
#include "chatmon/util.h"

/* A literal with its exact length, so rows may hold NUL bytes. */
#define B(s)	(s), (sizeof(s) - 1)
/* An array literal with its length. */
#define M(...)	((const uint32_t[]){ __VA_ARGS__ }), \
		(sizeof((const uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))

#define K	NORM_NFKC
#define T	NORM_T2S
#define N	NORM_NOISE
#define D	NORM_DIGITS
#define ALL	NORM_ALL

#define FFFD	"\xef\xbf\xbd"

struct golden {
	const char	*name;
	const char	*in;
	size_t		 in_len;
	unsigned	 steps;
	const char	*want;
	size_t		 want_len;
};

static const struct golden golden[] = {
	/* No step: only the UTF-8 repair. */
	{ "nothing", B("ＡＢ 電話 一三八 ❤"), 0, B("ＡＢ 電話 一三八 ❤") },
	{ "empty", B(""), ALL, B("") },
	{ "empty, no step", B(""), 0, B("") },
	{ "embedded NUL kept", B("a\0b"), 0, B("a\0b") },

	/* NFKC + case folding alone. */
	{ "full-width QQ", B("ＱＱ号"), K, B("qq号") },
	{ "full-width V", B("Ｖ信"), K, B("v信") },
	{ "full-width digits", B("１３８"), K, B("138") },
	{ "circled digits", B("①③⑧"), K, B("138") },
	{ "parenthesized ideograph", B("㈠"), K, B("(一)") },
	{ "ligature", B("ﬁ"), K, B("fi") },
	{ "ASCII case", B("Add Me WX"), K, B("add me wx") },
	{ "ASCII kept without nfkc", B("Add Me WX"), N, B("AddMeWX") },
	{ "sharp s folds", B("Straße"), K, B("strasse") },
	{ "roman numeral", B("Ⅻ"), K, B("xii") },
	{ "ideographic space", B("加\xe3\x80\x80我"), K, B("加 我") },
	{ "half-width katakana", B("ｶﾀｶﾅ"), K, B("カタカナ") },
	{ "hiragana digraph", B("ゟ"), K, B("より") },
	/* One character at a time: the separate voiced mark stays (and is noise). */
	{ "half-width voiced mark", B("ｶﾞ"), K, B("カ\xe3\x82\x99") },
	{ "half-width voiced mark, noise", B("ｶﾞ"), K | N, B("カ") },
	{ "precomposed stays", B("é"), K, B("é") },
	{ "kangxi radical", B("⼀"), K, B("一") },
	{ "t2s off under nfkc", B("電話"), K, B("電話") },

	/* t2s alone. */
	{ "telephone", B("電話"), T, B("电话") },
	{ "invoice", B("發票"), T, B("发票") },
	{ "refuse an invoice", B("不開發票"), T, B("不开发票") },
	{ "tax point", B("開發票要加稅點"), T, B("开发票要加税点") },
	{ "wechat is the same", B("加我微信"), T, B("加我微信") },
	{ "weixin variants are the same", B("薇信威信"), T, B("薇信威信") },
	{ "order number", B("您的訂單號"), T, B("您的订单号") },
	{ "traditional numeral", B("貳兩陸叄"), T, B("贰两陆叁") },
	{ "full-width stays without nfkc", B("ＱＱ"), T, B("ＱＱ") },
	{ "BMP to supplementary", B("\xe4\x82\x8e"), T, B("\xf0\xa5\x8e\x9d") },

	/* Noise alone. */
	{ "spaces and a heart", B("加 我 微❤信"), N, B("加我微信") },
	{ "split phone number", B("1 3 8-1234 5678"), N, B("13812345678") },
	{ "zero-width", B("加\u200b我\u200c微\u200d信\ufeff"), N, B("加我微信") },
	{ "word joiner", B("微\u2060信"), N, B("微信") },
	{ "variation selector", B("微❤\ufe0f信"), N, B("微信") },
	{ "variation selector supplement", B("微\U000E0100信"), N, B("微信") },
	{ "emoji", B("好😀的"), N, B("好的") },
	{ "skin tone", B("好👍🏽的"), N, B("好的") },
	{ "keycap", B("1\ufe0f\u20e3号"), N, B("1号") },
	{ "flag", B("好\U0001F1E8\U0001F1F3的"), N, B("好的") },
	{ "hangul filler", B("微\u3164信"), N, B("微信") },
	{ "soft hyphen", B("微\u00ad信"), N, B("微信") },
	{ "combining mark", B("e\u0301"), N, B("e") },
	{ "dots", B("q.q"), N, B("qq") },
	{ "gap of three removed", B("a!!!b"), N, B("ab") },
	{ "gap of four is a space", B("a!!!!b"), N, B("a b") },
	{ "ellipsis run", B("你……………好"), N, B("你 好") },
	{ "full-width punctuation", B("你，好！"), N, B("你好") },
	{ "corner brackets", B("「加我微信」"), N, B("加我微信") },
	{ "line break", B("加\n我"), N, B("加我") },
	/* a line feed takes no room: the turns of a window are joined by one */
	{ "line breaks", B("加\r\n\r\n我"), N, B("加我") },
	{ "line feeds", B("加\n\n\n\n\n我"), N, B("加我") },
	{ "a long run with line feeds", B("加\r\r\n!!我"), N, B("加 我") },
	{ "leading and trailing", B("   加我  "), N, B("加我") },
	{ "long leading and trailing", B("!!!!!!加我!!!!!!"), N, B("加我") },
	{ "only noise", B("❤️❤️❤️❤️❤️"), N, B("") },
	{ "full-width letter is no noise", B("Ｖ 信"), N, B("Ｖ信") },
	{ "invalid byte is noise", B("加\x80我"), N, B("加我") },

	/* Digits alone. */
	{ "chinese digits", B("一三八"), D, B("138") },
	{ "yao", B("幺三八一二三四五六七八"), D, B("13812345678") },
	{ "financial digits", B("壹叁捌"), D, B("138") },
	{ "financial rest", B("贰肆伍陆柒玖"), D, B("245679") },
	{ "traditional financial", B("貳叄陸"), D, B("236") },
	{ "liang", B("兩三四两"), D, B("2342") },
	{ "zeros", B("零〇九"), D, B("009") },
	{ "mixed with ASCII", B("1三8"), D, B("138") },
	{ "two numerals stay", B("两三个"), D, B("两三个") },
	{ "one time stays", B("一次"), D, B("一次") },
	{ "first stays", B("第一"), D, B("第一") },
	{ "one two stays", B("一二"), D, B("一二") },
	{ "ten breaks a run", B("一百二十三"), D, B("一百二十三") },
	{ "ten before a pair", B("十一二"), D, B("十一二") },
	{ "in a sentence", B("我的号码是幺三八"), D, B("我的号码是138") },
	{ "spaces break without noise", B("一 三 八"), D, B("一 三 八") },
	{ "ASCII digits as they are", B("12"), D, B("12") },
	{ "arabic-indic digits", B("١٣٨١٢٣٤٥٦٧٨"), D, B("13812345678") },
	{ "persian digits", B("۱۳۸۱۲۳۴۵۶۷۸"), D, B("13812345678") },
	{ "devanagari digits", B("१३८१२३४५६७८"), D, B("13812345678") },
	{ "bengali digits", B("১৩৮১২৩৪৫৬৭৮"), D, B("13812345678") },
	{ "digits of two scripts", B("1٣八"), D, B("138") },

	/* Noise and digits. */
	{ "spaced numerals", B("幺 三 八"), N | D, B("138") },
	{ "short gaps join", B("一……三……八"), N | D, B("138") },
	{ "long gap splits", B("一,,,,三八"), N | D, B("一 三八") },

	/* Everything. */
	{ "rules example", B("加 我 Ｖ 信 abc123"), ALL, B("加我v信abc123") },
	{ "arabic-indic phone", B("我手机١٣٨ ١٢٣٤ ٥٦٧٨"), ALL, B("我手机13812345678") },
	/* digits are no look-alikes: ١ is not l, ٥ not o, ٧ not v */
	{ "two arabic-indic digits stay", B("١٥"), ALL, B("١٥") },
	{ "arabic-indic without digits", B("١٥٧"), ALL & ~D, B("١٥٧") },
	{ "add my weixin", B("添加我的威信"), ALL, B("添加我的威信") },
	{ "quoted traditional", B("「加我薇信」"), ALL, B("加我薇信") },
	{ "qq and circled", B("加我Ｑ Ｑ：①③⑧一二三四五六七八"), ALL,
	  B("加我qq13812345678") },
	{ "telephone in financial digits", B("電話：壹叁捌 貳貳貳貳 捌捌捌捌"), ALL,
	  B("电话13822228888") },
	{ "parenthesized digits", B("㈠㈢㈧"), ALL, B("138") },
	{ "invoice tax", B("開發票要加稅點"), ALL, B("开发票要加税点") },
	{ "order number is not a phone", B("您的訂單號是1234567890123"), ALL,
	  B("您的订单号是1234567890123") },
	{ "waiting", B("不好意思久等了～"), ALL, B("不好意思久等了") },
	{ "first time", B("第一次"), ALL, B("第一次") },
	{ "emoji only", B("😀"), ALL, B("") },
	{ "far apart words", B("加我……………微信"), ALL, B("加我 微信") },
	/* Gaps are counted in original characters, not in what NFKC makes of them. */
	{ "ellipsis is two characters", B("加我……微信"), ALL, B("加我微信") },
	{ "four ellipses are a gap", B("加我…………微信"), ALL, B("加我 微信") },
	{ "brackets of a parenthesized are no gap", B("㈠   二"), ALL, B("一二") },
	/* ... and in graphemes: an emoji as typed is one, however many code points */
	{ "a ZWJ sequence with a skin tone is one character",
	  B("加我微\xf0\x9f\x91\xa9\xf0\x9f\x8f\xbd\xe2\x80\x8d\xf0\x9f\x92\xbb信"), ALL,
	  B("加我微信") },
	{ "a flag is one character", B("加我\xf0\x9f\x87\xa8\xf0\x9f\x87\xb3扣扣"), ALL,
	  B("加我扣扣") },
	{ "three flags vanish", B("微\xf0\x9f\x87\xa8\xf0\x9f\x87\xb3\xf0\x9f\x87\xa8"
	  "\xf0\x9f\x87\xb3\xf0\x9f\x87\xa8\xf0\x9f\x87\xb3信"), ALL, B("微信") },
	{ "four flags are a gap", B("微\xf0\x9f\x87\xa8\xf0\x9f\x87\xb3\xf0\x9f\x87\xa8"
	  "\xf0\x9f\x87\xb3\xf0\x9f\x87\xa8\xf0\x9f\x87\xb3\xf0\x9f\x87\xa8\xf0\x9f\x87\xb3信"),
	  ALL, B("微 信") },
	{ "a space, a toned thumb and a space are three", B("微 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd 信"),
	  ALL, B("微信") },
	{ "combining marks belong to their letter", B("x\xcc\x81\xcc\x81\xcc\x81\xcc\x81y"), ALL,
	  B("xy") },
	{ "four emoji are still a gap", B("加我微\xf0\x9f\x99\x82\xf0\x9f\x99\x82\xf0\x9f\x99\x82"
	  "\xf0\x9f\x99\x82信"), ALL, B("加我微 信") },
	{ "a rainbow flag in a phone number", B("138\xf0\x9f\x8f\xb3\xef\xb8\x8f\xe2\x80\x8d"
	  "\xf0\x9f\x8c\x88" "12345678"), ALL, B("13812345678") },
	{ "full-width spaces", B("加\xe3\x80\x80\xe3\x80\x80\xe3\x80\x80我"), ALL,
	  B("加我") },
	{ "full-width punctuation in a phone number", B("１３８－１２３４－５６７８"), ALL,
	  B("13812345678") },
	{ "numerals across noise and scripts", B("幺.三.8，１２"), ALL, B("13812") },

	/* Invalid UTF-8 (maximal subparts), no step so U+FFFD shows. */
	{ "lone continuation", B("\x80"), 0, B(FFFD) },
	{ "continuations", B("a\x80\xbf" "b"), 0, B("a" FFFD FFFD "b") },
	{ "truncated 3-byte", B("a\xe4\xb8" "b"), 0, B("a" FFFD "b") },
	{ "truncated at the end", B("a\xe4\xb8"), 0, B("a" FFFD) },
	{ "truncated 4-byte", B("\xf0\x9f\x98"), 0, B(FFFD) },
	{ "truncated 4-byte then letter", B("\xf0\x9f\x98" "a"), 0, B(FFFD "a") },
	{ "overlong 2-byte", B("\xc0\xaf"), 0, B(FFFD FFFD) },
	{ "overlong C1", B("\xc1\xbf"), 0, B(FFFD FFFD) },
	{ "overlong 3-byte", B("\xe0\x80\xaf"), 0, B(FFFD FFFD FFFD) },
	{ "overlong 4-byte", B("\xf0\x8f\xbf\xbf"), 0, B(FFFD FFFD FFFD FFFD) },
	{ "encoded surrogate", B("\xed\xa0\x80"), 0, B(FFFD FFFD FFFD) },
	{ "encoded surrogate pair", B("\xed\xa0\xbd\xed\xb8\x80"), 0,
	  B(FFFD FFFD FFFD FFFD FFFD FFFD) },
	{ "past U+10FFFF", B("\xf4\x90\x80\x80"), 0, B(FFFD FFFD FFFD FFFD) },
	{ "F5", B("\xf5\x80"), 0, B(FFFD FFFD) },
	{ "FF", B("\xff" "a"), 0, B(FFFD "a") },
	{ "lead without continuation", B("\xc3" "a"), 0, B(FFFD "a") },
	{ "last valid values", B("\xf4\x8f\xbf\xbf\xef\xbf\xbf"), 0,
	  B("\xf4\x8f\xbf\xbf\xef\xbf\xbf") },
	{ "invalid then chinese, all steps", B("\xe4\xb8加我"), ALL, B("加我") },
};

static void
check_golden(struct norm *n, const struct golden *g)
{
	const char	*out;
	size_t		 len;
	const uint32_t	*map;

	assert_int_equal(norm_run(n, g->in, g->in_len, g->steps, &out, &len,
	    &map), 0);
	if (len != g->want_len || memcmp(out, g->want, len) != 0)
		fail_msg("%s: got \"%.*s\" (%zu bytes), want \"%s\"", g->name,
		    (int)len, out, len, g->want);
	assert_int_equal(out[len], '\0');
}

static void
test_golden(void **state)
{
	struct norm	*n;
	size_t		 i;

	(void)state;
	assert_non_null(n = norm_new());
	for (i = 0; i < UTIL_NELEM(golden); i++)
		check_golden(n, &golden[i]);
	/* Again, warm: the cache must not change any answer. */
	for (i = UTIL_NELEM(golden); i-- > 0; )
		check_golden(n, &golden[i]);
	norm_free(n);
}

struct maprow {
	const char	*in;
	size_t		 in_len;
	unsigned	 steps;
	const char	*want;
	size_t		 want_len;
	const uint32_t	*map;	/* want_len + 1 entries: the last is the count */
	size_t		 nmap;
};

static const struct maprow maps[] = {
	{ B("ﬁ"), K, B("fi"), M(0, 0, 1) },
	{ B("ß"), K, B("ss"), M(0, 0, 1) },
	{ B("㈠"), K, B("(一)"), M(0, 0, 0, 0, 0, 1) },
	{ B("Ｑ"), K, B("q"), M(0, 1) },
	{ B("電話"), T, B("电话"), M(0, 0, 0, 1, 1, 1, 2) },
	{ B("\xe4\x82\x8e"), T, B("\xf0\xa5\x8e\x9d"), M(0, 0, 0, 0, 1) },
	{ B("😀a"), 0, B("😀a"), M(0, 0, 0, 0, 1, 2) },
	{ B("加😀我"), N, B("加我"), M(0, 0, 0, 2, 2, 2, 3) },
	{ B("你,,,,好"), N, B("你 好"), M(0, 0, 0, 1, 5, 5, 5, 6) },
	{ B("!!加!!!!"), N, B("加"), M(2, 2, 2, 7) },
	{ B("一次一二三"), D, B("一次123"), M(0, 0, 0, 1, 1, 1, 2, 3, 4, 5) },
	{ B("一二三四"), D, B("1234"), M(0, 1, 2, 3, 4) },
	{ B("幺 三 八"), ALL, B("138"), M(0, 2, 4, 5) },
	{ B("1 3 8-1234 5678"), ALL, B("13812345678"),
	  M(0, 2, 4, 6, 7, 8, 9, 11, 12, 13, 14, 15) },
	{ B("①③⑧"), ALL, B("138"), M(0, 1, 2, 3) },
	{ B("㈠㈢㈧"), ALL, B("138"), M(0, 1, 2, 3) },
	{ B("a\x80" "b"), 0, B("a" FFFD "b"), M(0, 1, 1, 1, 2, 3) },
	{ B("\xc0\xaf" "x"), 0, B(FFFD FFFD "x"), M(0, 0, 0, 1, 1, 1, 2, 3) },
	{ B("\xe4\xb8\xe5\x8a\xa0"), 0, B(FFFD "加"), M(0, 0, 0, 1, 1, 1, 2) },
	{ B(""), ALL, B(""), M(0) },
	{ B("   "), ALL, B(""), M(3) },
};

static void
test_maps(void **state)
{
	struct norm	*n;
	const char	*out;
	size_t		 len, i, j;
	const uint32_t	*map;

	(void)state;
	assert_non_null(n = norm_new());
	for (i = 0; i < UTIL_NELEM(maps); i++) {
		assert_int_equal(norm_run(n, maps[i].in, maps[i].in_len,
		    maps[i].steps, &out, &len, &map), 0);
		assert_int_equal(len, maps[i].want_len);
		assert_memory_equal(out, maps[i].want, len);
		assert_int_equal(maps[i].nmap, len + 1);
		for (j = 0; j <= len; j++)
			if (map[j] != maps[i].map[j])
				fail_msg("row %zu (%s): map[%zu] = %u, want %u",
				    i, maps[i].want, j, map[j], maps[i].map[j]);
	}
	norm_free(n);
}

struct spanrow {
	const char	*in;
	size_t		 in_len;
	unsigned	 steps;
	const char	*needle;	/* found in the normalised text */
	uint32_t	 cs, ce;
	const char	*orig;		/* the original text of [cs, ce) */
};

static const struct spanrow spans[] = {
	{ B("幺 三 八"), ALL, "138", 0, 5, "幺 三 八" },
	{ B("请加 我 微❤信 abc"), ALL, "微信", 5, 8, "微❤信" },
	{ B("请加我薇信"), ALL, "加我薇信", 1, 5, "加我薇信" },
	{ B("請加我電話"), ALL, "电话", 3, 5, "電話" },
	{ B("1 3 8-1234 5678"), ALL, "138", 0, 5, "1 3 8" },
	{ B("1 3 8-1234 5678"), ALL, "5678", 11, 15, "5678" },
	{ B("ﬁle"), K, "i", 0, 1, "ﬁ" },
	{ B("ﬁle"), K, "le", 1, 3, "le" },
	{ B("号码①③⑧"), ALL, "138", 2, 5, "①③⑧" },
	{ B("a\x80微信"), ALL, "微信", 2, 4, "微信" },
	{ B("\xe4\xb8\xe5\x8a\xa0我"), 0, "加我", 1, 3, "加我" },
	{ B("\xf0\x9f\x98\xc0\xaf" "加 Q\xed\xa0\x80Q"), ALL, "加qq", 3, 10,
	  "加 Q" FFFD FFFD FFFD "Q" },
	{ B("加我……………微信"), ALL, " ", 2, 3, "…" },
};

static void
test_spans(void **state)
{
	struct norm	*n;
	const char	*out, *orig, *hit;
	size_t		 len, olen, i, a, b;
	const uint32_t	*map;
	uint32_t	 cs, ce;

	(void)state;
	assert_non_null(n = norm_new());
	for (i = 0; i < UTIL_NELEM(spans); i++) {
		assert_int_equal(norm_run(n, spans[i].in, spans[i].in_len,
		    spans[i].steps, &out, &len, &map), 0);
		if ((hit = strstr(out, spans[i].needle)) == NULL)
			fail_msg("row %zu: \"%s\" not in \"%s\"", i,
			    spans[i].needle, out);
		norm_span(map, (size_t)(hit - out),
		    (size_t)(hit - out) + strlen(spans[i].needle), &cs, &ce);
		if (cs != spans[i].cs || ce != spans[i].ce)
			fail_msg("row %zu: span [%u,%u), want [%u,%u)", i, cs,
			    ce, spans[i].cs, spans[i].ce);
		orig = norm_orig(n, &olen);
		a = norm_orig_offset(n, cs);
		b = norm_orig_offset(n, ce);
		assert_true(a <= b && b <= olen);
		assert_int_equal(b - a, strlen(spans[i].orig));
		assert_memory_equal(orig + a, spans[i].orig, b - a);
	}
	norm_free(n);
}

static void
test_span_edges(void **state)
{
	struct norm	*n;
	const char	*out, *orig;
	size_t		 len, olen;
	const uint32_t	*map;
	uint32_t	 cs, ce;

	(void)state;
	assert_non_null(n = norm_new());
	assert_int_equal(norm_run(n, B("加 我!!!!"), ALL, &out, &len, &map), 0);
	assert_string_equal(out, "加我");
	/* Empty matches, at the start and at the end. */
	norm_span(map, 0, 0, &cs, &ce);
	assert_int_equal(cs, 0);
	assert_int_equal(ce, 0);
	norm_span(map, len, len, &cs, &ce);
	assert_int_equal(cs, 7);
	assert_int_equal(ce, 7);
	/* The whole output covers the original but the trailing noise. */
	norm_span(map, 0, len, &cs, &ce);
	assert_int_equal(cs, 0);
	assert_int_equal(ce, 3);
	orig = norm_orig(n, &olen);
	assert_int_equal(olen, strlen("加 我!!!!"));
	assert_string_equal(orig, "加 我!!!!");
	assert_int_equal(norm_orig_offset(n, 0), 0);
	assert_int_equal(norm_orig_offset(n, 1), 3);
	assert_int_equal(norm_orig_offset(n, 2), 4);
	assert_int_equal(norm_orig_offset(n, 7), olen);
	/* Past the end: clamped to the end. */
	assert_int_equal(norm_orig_offset(n, 8), olen);
	assert_int_equal(norm_orig_offset(n, UINT32_MAX), olen);
	norm_free(n);
}

/* The original, made valid: each maximal ill-formed subpart is one U+FFFD. */
static void
test_orig_invalid(void **state)
{
	static const struct {
		const char	*in;
		size_t		 in_len;
		const char	*orig;
		size_t		 orig_len;
		uint32_t	 ncp;
	} rows[] = {
		{ B("abc"), B("abc"), 3 },
		{ B("\x80"), B(FFFD), 1 },
		{ B("a\xe4\xb8" "b"), B("a" FFFD "b"), 3 },
		{ B("\xc0\xaf"), B(FFFD FFFD), 2 },
		{ B("\xe0\x80\xaf"), B(FFFD FFFD FFFD), 3 },
		{ B("\xed\xa0\x80"), B(FFFD FFFD FFFD), 3 },
		{ B("\xf5\xf6\xff"), B(FFFD FFFD FFFD), 3 },
		{ B("微\xf0\x9f\x98信"), B("微" FFFD "信"), 3 },
		{ B("ok\xf0\x9f\x98\x80"), B("ok\xf0\x9f\x98\x80"), 3 },
		/* Once U+00A0 and U+3001 are cached, their overlong forms stay invalid. */
		{ B("a\xc2\xa0\xe3\x80\x81" "b\xe0\x82\xa0\xe0\x80\x81" "c"),
		  B("a\xc2\xa0\xe3\x80\x81" "b" FFFD FFFD FFFD FFFD FFFD FFFD "c"), 11 },
		{ B("\xe5\x8a\xa0\xed\xa0\x80\xed\xbf\xbf"),
		  B("\xe5\x8a\xa0" FFFD FFFD FFFD FFFD FFFD FFFD), 7 },
	};
	struct norm	*n;
	const char	*out, *orig;
	size_t		 len, olen, i;
	const uint32_t	*map;

	(void)state;
	assert_non_null(n = norm_new());
	for (i = 0; i < UTIL_NELEM(rows); i++) {
		assert_int_equal(norm_run(n, rows[i].in, rows[i].in_len, ALL,
		    &out, &len, &map), 0);
		orig = norm_orig(n, &olen);
		assert_int_equal(olen, rows[i].orig_len);
		assert_memory_equal(orig, rows[i].orig, olen);
		assert_int_equal(orig[olen], '\0');
		assert_int_equal(map[len], rows[i].ncp);
		assert_int_equal(norm_orig_offset(n, rows[i].ncp), olen);
	}
	norm_free(n);
}

/* Asserts that s is valid UTF-8, and counts its code points. */
static void
check_valid_utf8(const char *s, size_t len, uint32_t *count)
{
	const utf8proc_uint8_t	*p = (const utf8proc_uint8_t *)s;
	utf8proc_ssize_t	 k;
	utf8proc_int32_t	 cp;
	size_t			 i;

	*count = 0;
	for (i = 0; i < len; i += (size_t)k) {
		k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
		assert_true(k > 0 && cp >= 0);
		(*count)++;
	}
}

/*
 * Random bytes: never a crash, and the invariants hold. The original is
 * valid UTF-8 with as many code points as map[len] says, offsets and map
 * never decrease, and the output is valid UTF-8.
 */
static void
test_random_bytes(void **state)
{
	static const unsigned char alphabet[] = {
		0x00, 'a', 'A', '1', ' ', '!', 0x7f, 0x80, 0x8f, 0x90, 0x9f,
		0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe4, 0xed, 0xef, 0xf0,
		0xf4, 0xf5, 0xff, 0xb8, 0x80, 0xe4, 0xb8, 0x80,
	};
	struct norm	*n;
	unsigned char	 buf[64];
	const char	*out, *orig;
	size_t		 len, olen, i, j, blen;
	const uint32_t	*map;
	uint32_t	 count, x = 12345;
	unsigned	 steps;

	(void)state;
	assert_non_null(n = norm_new());
	for (i = 0; i < 3000; i++) {
		x = x * 1103515245u + 12345u;
		blen = (x >> 16) % sizeof(buf);
		for (j = 0; j < blen; j++) {
			x = x * 1103515245u + 12345u;
			buf[j] = alphabet[(x >> 16) % sizeof(alphabet)];
		}
		steps = (unsigned)i & NORM_STEPS;
		assert_int_equal(norm_run(n, (const char *)buf, blen, steps,
		    &out, &len, &map), 0);
		orig = norm_orig(n, &olen);
		check_valid_utf8(orig, olen, &count);
		assert_int_equal(count, map[len]);
		check_valid_utf8(out, len, &count);
		for (j = 0; j < len; j++) {
			assert_true(map[j] < map[len]);
			if (j > 0)
				assert_true(map[j - 1] <= map[j]);
		}
		for (j = 0; j < map[len]; j++)
			assert_true(norm_orig_offset(n, (uint32_t)j) <
			    norm_orig_offset(n, (uint32_t)j + 1));
		/* Without steps, the output is the repaired original. */
		if (steps == 0) {
			assert_int_equal(len, olen);
			assert_memory_equal(out, orig, len);
		}
	}
	norm_free(n);
}

/*
 * The fast loop against the general path. An invalid first byte keeps the
 * fast loop off for the whole text, and a fresh normaliser starts with a
 * cold cache: both runs must agree on the output, the map and the offsets,
 * for random texts of characters that take every path.
 */
static void
test_fast_vs_general(void **state)
{
	static const char *alphabet[] = {
		"a", "Z", "q", "7", "0", " ", ".", "-", "\n", "一", "三", "八",
		"幺", "两", "貳", "十", "微", "信", "電", "話", "加", "\xe4\x82\x8e",
		"，", "。", "、", "…", "「", "！", "Ｑ", "１", "①", "㈠", "ﬁ", "😀",
		"❤", "\xef\xb8\x8f", "\xe2\x80\x8b", "\xf0\x9f\x8f\xbd", "ｶ",
		"ﾞ", "é", "ß", "\xe3\x80\x80", "\xc2\xa0", "〇",
	};
	static char	 in[256], in2[257], out1[2048];
	static uint32_t	 map1[2048], off1[256];
	struct norm	*warm, *cold;
	const char	*out, *out2;
	const uint32_t	*map, *map2;
	size_t		 len1, len2, ilen, j, k, lead;
	uint32_t	 x = 7, ncp;
	unsigned	 steps;
	int		 iter;

	(void)state;
	assert_non_null(warm = norm_new());
	for (iter = 0; iter < 1500; iter++) {
		ilen = 0;
		x = x * 1103515245u + 12345u;
		for (k = (x >> 16) % 24; k > 0; k--) {
			x = x * 1103515245u + 12345u;
			j = strlen(alphabet[(x >> 16) % UTIL_NELEM(alphabet)]);
			memcpy(in + ilen, alphabet[(x >> 16) %
			    UTIL_NELEM(alphabet)], j);
			ilen += j;
		}
		in2[0] = '\x80';
		memcpy(in2 + 1, in, ilen);
		for (steps = 0; steps <= NORM_STEPS; steps++) {
			assert_int_equal(norm_run(warm, in, ilen, steps, &out,
			    &len1, &map), 0);
			memcpy(out1, out, len1);
			memcpy(map1, map, (len1 + 1) * sizeof(*map));
			ncp = map1[len1];
			for (j = 0; j <= ncp; j++)
				off1[j] = (uint32_t)norm_orig_offset(warm,
				    (uint32_t)j);

			assert_non_null(cold = norm_new());
			assert_int_equal(norm_run(cold, in2, ilen + 1, steps,
			    &out2, &len2, &map2), 0);
			/* U+FFFD is noise: gone with the noise step, else first. */
			lead = steps & N ? 0 : 3;
			if (len2 != len1 + lead ||
			    memcmp(out2 + lead, out1, len1) != 0)
				fail_msg("steps %x, \"%.*s\": fast \"%.*s\", "
				    "general \"%.*s\"", steps, (int)ilen, in,
				    (int)len1, out1, (int)len2, out2);
			for (j = 0; j < lead; j++)
				assert_int_equal(map2[j], 0);
			for (j = 0; j <= len1; j++)
				if (map2[lead + j] != map1[j] + 1)
					fail_msg("steps %x, \"%.*s\": map[%zu]",
					    steps, (int)ilen, in, j);
			for (j = 0; j <= ncp; j++)
				assert_int_equal(norm_orig_offset(cold,
				    (uint32_t)j + 1), off1[j] + 3);
			norm_free(cold);
		}
	}
	norm_free(warm);
}

/*
 * The fast paths skip utf8proc: check that what they assume is what
 * utf8proc says, for every code point they take.
 */
static int
nfkc_cf_is(uint32_t cp, uint32_t want)
{
	utf8proc_int32_t	 buf[32];
	utf8proc_ssize_t	 k;

	k = utf8proc_decompose_char((utf8proc_int32_t)cp, buf, 32,
	    UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD, NULL);
	return k == 1 && (uint32_t)buf[0] == want;
}

static void
test_fast_paths(void **state)
{
	uint32_t	 cp;
	int		 unstable;

	(void)state;
	for (cp = 0; cp < 0x80; cp++)
		assert_true(nfkc_cf_is(cp, cp >= 'A' && cp <= 'Z' ?
		    cp + 32 : cp));
	for (cp = 0x3400; cp <= 0x4dbf; cp++) {
		assert_true(nfkc_cf_is(cp, cp));
		assert_int_equal(utf8proc_category((utf8proc_int32_t)cp),
		    UTF8PROC_CATEGORY_LO);
	}
	for (cp = 0x4e00; cp <= 0x9fff; cp++) {
		assert_true(nfkc_cf_is(cp, cp));
		assert_int_equal(utf8proc_category((utf8proc_int32_t)cp),
		    UTF8PROC_CATEGORY_LO);
	}
	/* Kana are not all stable (ゟ, ヿ, ゛): they must not take a fast path. */
	unstable = 0;
	for (cp = 0x3040; cp <= 0x30ff; cp++)
		unstable += !nfkc_cf_is(cp, cp);
	assert_true(unstable > 0);
}

/* Not utf8proc_encode_char: it writes U+FFFF as one byte 0xFF. */
static utf8proc_ssize_t
encode(uint32_t cp, utf8proc_uint8_t *p)
{
	if (cp < 0x80) {
		p[0] = (utf8proc_uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (utf8proc_uint8_t)(0xc0 | cp >> 6);
		p[1] = (utf8proc_uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (utf8proc_uint8_t)(0xe0 | cp >> 12);
		p[1] = (utf8proc_uint8_t)(0x80 | (cp >> 6 & 0x3f));
		p[2] = (utf8proc_uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	p[0] = (utf8proc_uint8_t)(0xf0 | cp >> 18);
	p[1] = (utf8proc_uint8_t)(0x80 | (cp >> 12 & 0x3f));
	p[2] = (utf8proc_uint8_t)(0x80 | (cp >> 6 & 0x3f));
	p[3] = (utf8proc_uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* ICU's look-alike of cp from the generated table, by a plain scan. */
static uint32_t
lookalike(uint32_t cp)
{
	size_t	i;

	for (i = 0; i < sizeof(fold_conf) / sizeof(fold_conf[0]); i++)
		if (fold_conf[i].cp == cp)
			return (uint32_t)(unsigned char)fold_conf[i].to;
	return cp;
}

/*
 * NFKC + case folding alone, against utf8proc_map on each character by
 * itself then the look-alike table, for every code point of the BMP and of
 * plane 1 and a sample of the rest: the fast paths, the cache (run twice)
 * and the per-character composition all agree with the library.
 */
static void
check_nfkc_block(struct norm *n, uint32_t from, uint32_t to, uint32_t stride)
{
	static char		 in[4 * 4096];
	static char		 want[64 * 1024];
	static uint32_t		 wmap[64 * 1024];
	const char		*out;
	const uint32_t		*map;
	utf8proc_uint8_t	*one;
	utf8proc_uint8_t	 enc[4];
	utf8proc_ssize_t	 k, e;
	size_t			 ilen, wlen, len;
	uint32_t		 cp, idx;
	int			 pass;

	ilen = wlen = 0;
	idx = 0;
	for (cp = from; cp < to && cp < 0x110000; cp += stride) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		e = encode(cp, enc);
		assert_true(ilen + (size_t)e <= sizeof(in));
		memcpy(in + ilen, enc, (size_t)e);
		ilen += (size_t)e;
		if (lookalike(cp) != cp) {	/* looked up as typed first */
			e = encode(lookalike(cp), enc);
			memcpy(want + wlen, enc, (size_t)e);
			while (e-- > 0)
				wmap[wlen++] = idx;
			idx++;
			continue;
		}
		k = utf8proc_map(enc, e, &one, UTF8PROC_STABLE |
		    UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD);
		if (k <= 0)
			fail_msg("U+%04X: %ld", cp, (long)k);
		assert_true(wlen + (size_t)k < sizeof(want));
		for (utf8proc_ssize_t at = 0; at < k; ) {
			utf8proc_int32_t	c;
			utf8proc_ssize_t	l;

			l = utf8proc_iterate(one + at, k - at, &c);
			assert_true(l > 0);
			at += l;
			l = encode(lookalike((uint32_t)c), enc);
			memcpy(want + wlen, enc, (size_t)l);
			while (l-- > 0)
				wmap[wlen++] = idx;
		}
		free(one);
		idx++;
	}
	for (pass = 0; pass < 2; pass++) {
		assert_int_equal(norm_run(n, in, ilen, K, &out, &len, &map), 0);
		if (len != wlen || memcmp(out, want, len) != 0) {
			for (len = 0; len < wlen && out[len] == want[len]; len++)
				;
			fail_msg("U+%04X..U+%04X: differs at character %u",
			    from, to, wmap[len]);
		}
		assert_memory_equal(map, wmap, len * sizeof(*map));
		assert_int_equal(map[len], idx);
	}
}

static void
test_nfkc_reference(void **state)
{
	struct norm	*n;
	uint32_t	 cp;

	(void)state;
	assert_non_null(n = norm_new());
	for (cp = 1; cp < 0x20000; cp += 1024)
		check_nfkc_block(n, cp, cp + 1024, 1);
	for (cp = 0x20000; cp < 0x110000; cp += 1024 * 61)
		check_nfkc_block(n, cp, cp + 1024 * 61, 61);
	check_nfkc_block(n, 0xe0000, 0xe1000, 1);
	norm_free(n);
}

/* Every numeral, in a run long enough, with and without t2s. */
static void
test_numerals(void **state)
{
	static const struct {
		const char	*s;
		char		 digit;
	} nums[] = {
		{ "零", '0' }, { "〇", '0' }, { "一", '1' }, { "二", '2' },
		{ "三", '3' }, { "四", '4' }, { "五", '5' }, { "六", '6' },
		{ "七", '7' }, { "八", '8' }, { "九", '9' }, { "壹", '1' },
		{ "贰", '2' }, { "叁", '3' }, { "肆", '4' }, { "伍", '5' },
		{ "陆", '6' }, { "柒", '7' }, { "捌", '8' }, { "玖", '9' },
		{ "貳", '2' }, { "叄", '3' }, { "陸", '6' }, { "幺", '1' },
		{ "两", '2' }, { "兩", '2' },
	};
	static const char *words[] = {
		"十", "百", "千", "万", "亿", "个", "次", "第", "参", "么", "拾",
	};
	static const unsigned steps[] = { D, D | T, ALL, N | D };
	struct norm	*n;
	const char	*out;
	char		 in[64], want[8];
	size_t		 len, i, s;
	const uint32_t	*map;

	(void)state;
	assert_non_null(n = norm_new());
	for (s = 0; s < UTIL_NELEM(steps); s++) {
		for (i = 0; i < UTIL_NELEM(nums); i++) {
			snprintf(in, sizeof(in), "%s%s%s", nums[i].s,
			    nums[i].s, nums[i].s);
			memset(want, nums[i].digit, 3);
			assert_int_equal(norm_run(n, in, strlen(in), steps[s],
			    &out, &len, &map), 0);
			assert_int_equal(len, 3);
			assert_memory_equal(out, want, 3);
		}
		for (i = 0; i < UTIL_NELEM(words); i++) {
			snprintf(in, sizeof(in), "%s%s%s", words[i], words[i],
			    words[i]);
			assert_int_equal(norm_run(n, in, strlen(in), steps[s],
			    &out, &len, &map), 0);
			assert_string_equal(out, in);
		}
	}
	/* Without the digits step, numerals stay as they are. */
	assert_int_equal(norm_run(n, B("一三八"), K | T | N, &out, &len, &map), 0);
	assert_string_equal(out, "一三八");
	norm_free(n);
}

/* Texts whose output outgrows the first reservation mid-run (U+FDFA: 18 code points). */
static void
test_growth(void **state)
{
	struct norm	*n;
	char		*in;
	const char	*out;
	size_t		 len, i, count = 20000, per;
	const uint32_t	*map;

	(void)state;
	assert_non_null(n = norm_new());
	assert_non_null(in = malloc(3 * count));
	for (i = 0; i < count; i++)
		memcpy(in + 3 * i, "\xef\xb7\xba", 3);
	assert_int_equal(norm_run(n, in, 3 * count, K, &out, &len, &map), 0);
	per = len / count;
	assert_int_equal(len, per * count);
	assert_true(per > 18);
	for (i = 0; i < len; i++)
		assert_int_equal(map[i], i / per);
	assert_int_equal(map[len], count);

	/* The same through the fast loop: 3 bytes to 4 (t2s to plane 2). */
	norm_free(n);
	assert_non_null(n = norm_new());
	for (i = 0; i < count; i++)
		memcpy(in + 3 * i, "\xe4\x82\x8e", 3);
	assert_int_equal(norm_run(n, in, 3 * count, ALL, &out, &len, &map), 0);
	assert_int_equal(len, 4 * count);
	for (i = 0; i < len; i++) {
		assert_int_equal(map[i], i / 4);
		if (i % 4 == 0)
			assert_memory_equal(out + i, "\xf0\xa5\x8e\x9d", 4);
	}
	assert_int_equal(map[len], count);
	free(in);
	norm_free(n);
}

/*
 * Steady state: once the largest text has been seen, no buffer moves. The
 * loop is sized to run under valgrind.
 */
static void
test_no_growth(void **state)
{
	static const char *texts[] = {
		"亲,在的,请问有什么可以帮您?",
		"加 我 Ｖ 信 abc123",
		"電話：壹叁捌 貳貳貳貳 捌捌捌捌",
		"您的订单号是1234567890123",
		"好👍🏽的❤️❤️❤️❤️😀",
		"\xe4\xb8\x80\x80\xff\xc0\xaf",
		"ﬁ㈠①③⑧",
		"",
	};
	struct norm	*n;
	const char	*out, *out0, *orig, *orig0;
	const uint32_t	*map, *map0;
	size_t		 len, olen, i;
	char		 big[512];

	(void)state;
	assert_non_null(n = norm_new());
	memset(big, 'x', sizeof(big));
	for (i = 0; i < sizeof(big) / 3; i++)
		memcpy(big + 3 * i, "①", 3);
	assert_int_equal(norm_run(n, big, sizeof(big), ALL, &out0, &len,
	    &map0), 0);
	orig0 = norm_orig(n, &olen);
	for (i = 0; i < 10000; i++) {
		assert_int_equal(norm_run(n, texts[i % UTIL_NELEM(texts)],
		    strlen(texts[i % UTIL_NELEM(texts)]), (unsigned)i & ALL,
		    &out, &len, &map), 0);
		orig = norm_orig(n, &olen);
		if (out != out0 || map != map0 || orig != orig0)
			fail_msg("a buffer moved at iteration %zu", i);
	}
	norm_free(n);
}

static void
test_errors(void **state)
{
	struct norm	*n;
	const char	*out, *orig;
	size_t		 len, olen;
	const uint32_t	*map;

	(void)state;
	norm_free(NULL);
	assert_non_null(n = norm_new());
	/* Before any run: an empty original. */
	orig = norm_orig(n, &olen);
	assert_int_equal(olen, 0);
	assert_string_equal(orig, "");
	assert_int_equal(norm_orig_offset(n, 0), 0);
	assert_int_equal(norm_run(n, B("電話"), ALL, &out, &len, &map), 0);
	/* Too long for 32-bit indexes: refused before the text is read. */
	if (SIZE_MAX > UINT32_MAX) {
		assert_int_equal(norm_run(n, "x", (size_t)UINT32_MAX + 2, ALL,
		    &out, &len, &map), -1);
		orig = norm_orig(n, &olen);
		assert_int_equal(olen, 0);
		assert_string_equal(orig, "");
		assert_int_equal(norm_orig_offset(n, 5), 0);
	}
	/* No text at all. */
	assert_int_equal(norm_run(n, NULL, 0, ALL, &out, &len, &map), 0);
	assert_int_equal(len, 0);
	assert_int_equal(map[0], 0);
	/* Usable afterwards. */
	assert_int_equal(norm_run(n, B("電話"), ALL, &out, &len, &map), 0);
	assert_string_equal(out, "电话");
	norm_free(n);
}

/* The sound view of s with every step; a copy the caller frees. */
static char *
sound(struct norm *n, const char *s, const uint32_t **map)
{
	const char	*out;
	size_t		 len;

	assert_int_equal(norm_run(n, s, strlen(s), ALL | NORM_SOUND, &out, &len,
	    map), 0);
	assert_int_equal(strlen(out), len);
	return strdup(out);
}

static void
test_sound(void **state)
{
	static const char *const same[][2] = {
		{ "加我微信", "加我威信" },
		{ "加我微信", "家我薇信" },
		{ "加我微信", "加我維信" },		/* traditional */
		{ "加我微信", "加我卫星" },		/* xing folds into xin */
		{ "加我微信", "加我weixin" },		/* typed pinyin */
		{ "加我微信", "加我 Wei Xin" },		/* noise gone, case folded */
		{ "加我微信", "jiawo微xin" },
		{ "扣扣", "kou kou" },
		{ "知道", "zidao" },			/* zh folds into z */
		/* pinyin, then words that are not: an id, "ok" */
		{ "加我微信abc", "jia wo wei xin abc" },
		{ "加我微信ok", "Jia Wo Wei-Xin ok" },
		{ "加微信abc123", "加weixin abc123" },
		{ "加我微信dgkj", "加我wei xin dgkj" },
		{ "vx加我微信", "vx jia wo wei xin" },
	};
	static const char *const differ[][2] = {
		{ "微信", "vx" },			/* not pinyin: stays letters */
		{ "微信", "wx" },
		{ "西安", "xian" },			/* xian is one syllable */
		{ "加我微信", "加我为心吗" },
		/* no break the writer typed: where the syllables end is unknown */
		{ "微信abc", "weixinabc" },
	};
	struct norm	*n;
	const uint32_t	*map;
	char		*a, *b;
	size_t		 i;

	(void)state;
	assert_non_null(n = norm_new());
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		a = sound(n, same[i][0], &map);
		b = sound(n, same[i][1], &map);
		if (strcmp(a, b) != 0)
			fail_msg("%s and %s differ in the sound view", same[i][0],
			    same[i][1]);
		free(a);
		free(b);
	}
	for (i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		a = sound(n, differ[i][0], &map);
		b = sound(n, differ[i][1], &map);
		if (strcmp(a, b) == 0)
			fail_msg("%s and %s agree in the sound view", differ[i][0],
			    differ[i][1]);
		free(a);
		free(b);
	}
	/* each token points at what was typed: 加 at 0, wei at 2, xin at 5 */
	a = sound(n, "加 wei-xin", &map);
	assert_int_equal(strlen(a), 9);
	assert_int_equal(map[0], 0);
	assert_int_equal(map[3], 2);
	assert_int_equal(map[6], 6);
	assert_int_equal(map[9], 9);
	free(a);
	/* letters that are not all pinyin, digits and others stay */
	a = sound(n, "vx:abc123", &map);
	assert_string_equal(a, "vxabc123");
	free(a);
	/* an id after pinyin stays whole (not the syllable a, then bc), mapped to what was typed */
	a = sound(n, "jia wo wei xin abc123", &map);
	assert_int_equal(strlen(a), 4 * 3 + 6);
	assert_string_equal(a + 12, "abc123");
	assert_int_equal(map[9], 11);		/* xin */
	assert_int_equal(map[11], 13);
	assert_int_equal(map[12], 15);		/* abc123 */
	assert_int_equal(map[18], 21);
	free(a);
	/* a run of words longer than NORM_SOUND_RUN letters still finds its pinyin */
	a = sound(n, "please do add me on the other app right now or later "
	    "today, jia wo wei xin", &map);
	b = sound(n, "加我微信", &map);
	assert_non_null(strstr(a, b));
	assert_non_null(strstr(a, "please"));
	free(a);
	free(b);
	/* a private-use character in the text (kept when noise is) is never a sound */
	assert_int_equal(norm_run(n, "\xee\x80\x81", 3, (ALL & ~NORM_NOISE) |
	    NORM_SOUND, (const char **)&a, &i, &map), 0);
	assert_string_equal(a, "\xef\xbf\xbd");
	/* patterns are converted per character, simplified first */
	assert_int_equal(norm_sound_char(0x5a01 /* 威 */), norm_sound_char(0x5fae /* 微 */));
	assert_int_equal(norm_sound_char(0x7dad /* 維 */), norm_sound_char(0x5fae));
	assert_true(norm_sound_char(0x5fae) >= NORM_SOUND_BASE);
	assert_int_equal(norm_sound_char('v'), 'v');
	norm_free(n);
}

/* ICU's look-alikes fold with NFKC: Cyrillic, small capitals, Greek. */
static void
test_lookalikes(void **state)
{
	struct norm	*n;
	const char	*out;
	const uint32_t	*map;
	size_t		 len;

	(void)state;
	assert_non_null(n = norm_new());
	/* Cyrillic х, small capital ᴠ, Greek ν, Cyrillic ԛ */
	assert_int_equal(norm_run(n, "\xd1\x85 \xe1\xb4\xa0 \xce\xbd \xd4\x9b\xd4\x9b",
	    14, ALL, &out, &len, &map), 0);
	assert_string_equal(out, "xvvqq");
	/* Greek Η and Cyrillic Н pass for H as typed; lower-case η reads n, not h */
	assert_int_equal(norm_run(n, "\xce\x97uabei \xd0\x9d \xce\xb7", 13, ALL,
	    &out, &len, &map), 0);
	assert_string_equal(out, "huabeih\xce\xb7");
	/*
	 * Greek Ι and Cyrillic І pass for I, which folds to i: ICU's skeleton
	 * of them (and of I) is l. Hebrew ו, caseless, stays l.
	 */
	assert_int_equal(norm_run(n, "\xce\x97U\xce\x91\xce\x92\xce\x95\xce\x99 "
	    "\xd0\x9dU\xd0\x90\xd0\x92\xd0\x95\xd0\x86 \xd7\x95", 26, ALL,
	    &out, &len, &map), 0);
	assert_string_equal(out, "huabeihuabeil");
	/*
	 * numerals of one look like their digit, not like l (ICU's skeleton
	 * of 1): Old Italic 𐌠, Mende Kikakui 𞣇; a numeral of another value
	 * keeps its look (Mende Kikakui five is 8)
	 */
	assert_int_equal(norm_run(n, "\xf0\x90\x8c\xa0\xf0\x9e\xa3\x87\xf0\x9e\xa3\x8b",
	    12, ALL, &out, &len, &map), 0);
	assert_string_equal(out, "118");
	assert_int_equal(norm_run(n, "\xd1\x85", 2, ALL & ~NORM_NFKC, &out, &len,
	    &map), 0);
	assert_string_equal(out, "\xd1\x85");		/* only with nfkc */
	norm_free(n);
}

/*
 * norm_noisy: a run with the noise step that found no noise gives what
 * the same steps without it give, bytes and map (rules.c then keeps one
 * view for both). Random texts of characters that take every path:
 * noise in the fast loop, in the cache, in a character's parts (㈠).
 */
static void
test_noisy(void **state)
{
	static const char *const alphabet[] = {
		"a", "Q", "7", " ", ",", "-", "\xef\xbc\x8c" /* ， */, "\xe2\x80\x8b",
		"\xe5\x8a\xa0" /* 加 */, "\xe5\xbe\xae" /* 微 */,
		"\xe9\x80\x99" /* 這 */, "\xe4\xb8\x89" /* 三 */,
		"\xe5\x85\xab" /* 八 */, "\xef\xbc\xb1" /* Ｑ */,
		"\xe2\x91\xa0" /* ① */, "\xe3\x88\xa0" /* ㈠ */,
		"\xf0\x9f\x98\x80" /* emoji */, "\xff", "\xe4\xb8",
	};
	static const unsigned steps[] = {
		NORM_ALL, NORM_ALL | NORM_SOUND, NORM_NOISE,
		NORM_NFKC | NORM_NOISE, NORM_NOISE | NORM_DIGITS,
	};
	struct norm	*n, *m;
	char		 buf[128];
	const char	*out, *out2;
	size_t		 len, len2, i, j, k, blen;
	const uint32_t	*map, *map2;
	uint32_t	 x = 4242;
	int		 clean = 0, noisy = 0;

	(void)state;
	assert_non_null(n = norm_new());
	assert_non_null(m = norm_new());
	assert_int_equal(norm_run(n, "\xe5\x8a\xa0 \xe6\x88\x91", 7, ALL,
	    &out, &len, &map), 0);
	assert_true(norm_noisy(n));
	assert_int_equal(norm_run(n, "\xe3\x88\xa0", 3, ALL, &out, &len, &map), 0);
	assert_true(norm_noisy(n));
	for (i = 0; i < 4000; i++) {
		blen = 0;
		x = x * 1103515245u + 12345u;
		for (j = (x >> 16) % 12; j > 0; j--) {
			x = x * 1103515245u + 12345u;
			k = (x >> 16) % (sizeof(alphabet) / sizeof(*alphabet));
			/* mostly words: a text without noise must be common */
			if (k < 8 && (x >> 8) % 4 != 0)
				k = 8 + (x >> 10) % 8;
			memcpy(buf + blen, alphabet[k], strlen(alphabet[k]));
			blen += strlen(alphabet[k]);
		}
		k = i % (sizeof(steps) / sizeof(*steps));
		assert_int_equal(norm_run(n, buf, blen, steps[k], &out, &len,
		    &map), 0);
		if (norm_noisy(n)) {
			noisy++;
			continue;
		}
		clean++;
		assert_int_equal(norm_run(m, buf, blen, steps[k] & ~NORM_NOISE,
		    &out2, &len2, &map2), 0);
		assert_int_equal(len, len2);
		assert_memory_equal(out, out2, len);
		assert_memory_equal(map, map2, (len + 1) * sizeof(*map));
	}
	assert_true(clean > 500 && noisy > 500);
	norm_free(n);
	norm_free(m);
}

/*
 * norm_plain says whether the original held plain characters only, after
 * the fast paths and the slow one alike, and whatever the steps; the steps
 * without the sound view keep plain text plain, which is what lets the
 * rules skip a view that only emoji rules use.
 */
static void
test_plain(void **state)
{
	static const struct {
		const char	*text;
		int		 plain;
	} cases[] = {
		{ "", 1 },
		{ "hello 123", 1 },
		{ "\xe4\xba\xb2\xef\xbc\x8c\xe5\x9c\xa8\xe7\x9a\x84\xe3\x80\x82", 1 },	/* 亲，在的。 */
		{ "\xe2\x80\x9c\xe5\xa5\xbd\xe2\x80\x9d\xe2\x80\xa6", 1 },	/* “好”… */
		{ "\xe3\x80\x80\xe8\x8f\xaf", 1 },	/* ideographic space, 華 */
		{ "\xf0\xa0\x80\x80", 1 },		/* U+20000 */
		{ "\xe5\xa5\xbd\xf0\x9f\x98\x80", 0 },	/* 好😀 */
		{ "\xe2\xad\x90", 0 },			/* ⭐ */
		{ "\xe2\x80\x97", 0 },			/* U+2017: NFKC adds a combining mark */
		{ "caf\xc3\xa9", 0 },			/* é */
		{ "\xe3\x81\x82", 0 },			/* あ */
		{ "\xe2\x91\xa0", 0 },			/* ① */
		{ "ab\xff", 0 },			/* invalid: U+FFFD */
		{ "\xe4\xb8", 0 },			/* cut */
	};
	static const unsigned steps[] = { 0, NORM_ALL, NORM_ALL & ~NORM_NOISE,
	    NORM_NFKC, NORM_NOISE, NORM_ALL | NORM_SOUND };
	struct norm	*n;
	const char	*out;
	size_t		 len, i, k;
	const uint32_t	*map;

	(void)state;
	assert_non_null(n = norm_new());
	for (i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		assert_int_equal(norm_plain_text(cases[i].text,
		    strlen(cases[i].text)), cases[i].plain);
		for (k = 0; k < sizeof(steps) / sizeof(*steps); k++) {
			/* a plain character before and after: through the fast loop and out of it */
			char buf[64];

			snprintf(buf, sizeof(buf), "\xe5\xa5\xbd%s\xe5\xa5\xbd",
			    cases[i].text);
			assert_int_equal(norm_run(n, buf, strlen(buf), steps[k],
			    &out, &len, &map), 0);
			assert_int_equal(norm_plain(n), cases[i].plain);
			if (cases[i].plain && !(steps[k] & NORM_SOUND))
				assert_true(norm_plain_text(out, len));
		}
	}
	for (k = 0; k <= NORM_ALL; k++)
		assert_int_equal(norm_plain_closed(n, k), 1);
	/* the ends: noise dropped there, numerals (一 stays 一 in a run of one) */
	{
		static const char t[] = "\xef\xbc\x8c\xef\xbc\x8c\xe4\xb8\x80\xe5\xa5\xbd" "7" "\xe3\x80\x82";
		struct norm_ends e;

		assert_int_equal(norm_run(n, t, strlen(t), NORM_ALL, &out, &len,
		    &map), 0);
		norm_ends(n, &e);
		assert_int_equal(e.lead_gap, 2);	/* ，， */
		assert_int_equal(e.trail_gap, 1);	/* 。 */
		assert_true(e.lead_num && e.trail_num);
		assert_int_equal(norm_run(n, "ab c", 4, NORM_ALL, &out, &len,
		    &map), 0);
		norm_ends(n, &e);
		assert_true(!e.lead_num && !e.trail_num && e.lead_gap == 0 &&
		    e.trail_gap == 0);
		assert_int_equal(norm_run(n, "  ", 2, NORM_ALL, &out, &len,
		    &map), 0);
		norm_ends(n, &e);
		assert_true(e.lead_gap == 0 && e.trail_gap == 0);
	}
	assert_int_equal(norm_plain_closed(n, NORM_ALL | NORM_SOUND), 0);
	norm_free(n);
}

/* A message that says nothing: no character but spaces and invisible ones. */
static void
test_blank(void **state)
{
	static const char *const blank[] = { "", " ", "\t\n\r ", "\xe3\x80\x80",
	    "\xe2\x80\x8b", "\xef\xbb\xbf \xc2\xa0", "\xe2\x80\xa8" };
	static const char *const said[] = { "嗯", ".", " 1 ", "\xf0\x9f\x98\x80",
	    "\xff", " \xe3\x80", "a\xe2\x80\x8b" };
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(blank) / sizeof(blank[0]); i++)
		assert_true(norm_blank_text(blank[i], strlen(blank[i])));
	for (i = 0; i < sizeof(said) / sizeof(said[0]); i++)
		assert_false(norm_blank_text(said[i], strlen(said[i])));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_maps),
		cmocka_unit_test(test_spans),
		cmocka_unit_test(test_span_edges),
		cmocka_unit_test(test_orig_invalid),
		cmocka_unit_test(test_random_bytes),
		cmocka_unit_test(test_fast_vs_general),
		cmocka_unit_test(test_fast_paths),
		cmocka_unit_test(test_nfkc_reference),
		cmocka_unit_test(test_numerals),
		cmocka_unit_test(test_growth),
		cmocka_unit_test(test_no_growth),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_sound),
		cmocka_unit_test(test_lookalikes),
		cmocka_unit_test(test_noisy),
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_blank),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
