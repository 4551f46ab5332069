/* test_rules: rule files load with every error reported, and match what they should, where they should. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "allocfail.h"
#include "chatmon/rules.h"
#include "chatmon/normalize.h"
#include "../../src/rules_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

static char	tmpdir[] = "/tmp/test_rules.XXXXXX";
static int	nfiles;
static unsigned	load_flags;	/* RULES_NO_JIT: the same tests on the interpreter */

/* Writes text to a new file in tmpdir; returns its path (static storage, 8 slots). */
static const char *
put(const char *name, const char *text)
{
	static char	paths[8][256];
	char		*p = paths[nfiles++ % 8];
	FILE		*f;

	snprintf(p, 256, "%s/%s", tmpdir, name);
	assert_non_null(f = fopen(p, "w"));
	fputs(text, f);
	fclose(f);
	return p;
}

static struct rules *
load1(const char *text, struct sbuf *errs)
{
	char	*paths[1];

	paths[0] = (char *)put("r.yaml", text);
	return rules_load_files(paths, 1, load_flags, errs);
}

/* The hit of rule id in text, or NULL. */
static const struct rules_hit *
hit(struct rules *r, enum rules_role role, const char *text, const char *id)
{
	const struct rules_hit	*h;
	size_t			 n, i;

	n = rules_match(r, role, text, strlen(text), &h);
	for (i = 0; i < n; i++)
		if (strcmp(h[i].rule, id) == 0)
			return &h[i];
	return NULL;
}

static const char good[] =
    "- list: wechat\n"
    "  items: [微信, 威信, 薇信, v信, vx, wx]\n"
    "- list: qq\n"
    "  items: [qq, 扣扣, 企鹅]\n"
    "- macro: add_me\n"
    "  pattern: '(?:加|添加|联系)我?'\n"
    "- rule: offplatform.contact_app\n"
    "  category: offplatform\n"
    "  severity: critical\n"
    "  action: block\n"
    "  pattern: '${add_me}(?:的)?(?:${wechat}|${qq})'\n"
    "  message: 亲,请在旺旺上沟通。\n"
    "  examples:\n"
    "    match: [加我微信, 加 我 Ｖ 信, 添加我的扣扣]\n"
    "    no_match: [支持微信支付吗]\n"
    "- rule: offplatform.phone\n"
    "  category: offplatform\n"
    "  severity: critical\n"
    "  action: block\n"
    "  pattern: '1[3-9]\\d{9}'\n"
    "  near: {pattern: '加|微|电话|手机|联系', within: 6}\n"
    "  message: 亲,请不要留电话。\n"
    "  examples:\n"
    "    match: ['加我 138 1234 5678', 电话幺三八一二三四五六七八]\n"
    "    no_match: [您的订单号是13812345678901, 快递单号13812345678]\n"
    "- rule: stock.none\n"
    "  category: stock\n"
    "  severity: warn\n"
    "  action: warn\n"
    "  pattern: '没货|缺货|无货'\n"
    "  unless: ['有货']\n"
    "  message: 亲,这款有现货的哦。\n"
    "  examples:\n"
    "    match: [这款没货了]\n"
    "    no_match: [这款有货, 这款没货了那款有货]\n"
    "- rule: etiquette.bare\n"
    "  category: etiquette\n"
    "  severity: warn\n"
    "  action: warn\n"
    "  whole: [哦, 嗯, 嗯嗯]\n"
    "  message: 亲,请完整回复买家。\n"
    "  examples:\n"
    "    match: ['哦', '嗯。', '  嗯嗯!! ']\n"
    "    no_match: [哦好的, 嗯嗯我帮您查一下]\n"
    "- rule: complaint.threat\n"
    "  category: complaint_risk\n"
    "  severity: warn\n"
    "  action: block\n"
    "  role: customer\n"
    "  pattern: '投诉|差评|12315'\n"
    "  message: 买家提到投诉,请安抚。\n"
    "  examples:\n"
    "    match: [再不发货我就投诉]\n"
    "- rule: etiquette.unsure\n"
    "  category: etiquette\n"
    "  severity: info\n"
    "  action: flag\n"
    "  pattern: '不知道'\n"
    "  enabled: false\n"
    "  examples:\n"
    "    match: [我不知道]\n"
    "- rule: offplatform.digits_raw\n"
    "  category: offplatform\n"
    "  severity: info\n"
    "  action: flag\n"
    "  pattern: '幺三八'\n"
    "  normalize: {digits: false}\n"
    "  examples:\n"
    "    match: [幺三八]\n"
    "    no_match: [138]\n";

static void
test_load_and_match(void **state)
{
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h;

	(void)state;
	sbuf_init(&errs);
	r = load1(good, &errs);
	if (r == NULL)
		print_message("%s", sbuf_str(&errs));
	assert_non_null(r);
	assert_int_equal(rules_count(r), 6);	/* one is disabled */
	assert_int_equal(rules_jit(r), !(load_flags & RULES_NO_JIT));

	/* evasion folded, offsets and text from the original */
	assert_non_null(h = hit(r, RULES_AGENT, "好的,加 我 薇 信 abc", "offplatform.contact_app"));
	assert_int_equal(h->start, 3);
	assert_int_equal(h->end, 10);
	assert_int_equal(h->match_len, strlen("加 我 薇 信"));
	assert_memory_equal(h->match, "加 我 薇 信", h->match_len);
	assert_int_equal(h->action, RULES_BLOCK);
	assert_string_equal(h->category, "offplatform");
	assert_string_equal(h->message, "亲,请在旺旺上沟通。");
	/* traditional characters and full-width letters */
	assert_non_null(hit(r, RULES_AGENT, "加我ＱＱ", "offplatform.contact_app"));
	assert_non_null(hit(r, RULES_AGENT, "聯系我V信", "offplatform.contact_app"));
	assert_null(hit(r, RULES_AGENT, "支持微信支付吗", "offplatform.contact_app"));

	/* near: digits count only with a cue close by */
	assert_non_null(h = hit(r, RULES_AGENT, "加我 1 3 8-1234-5678", "offplatform.phone"));
	assert_int_equal(h->start, 3);
	assert_null(hit(r, RULES_AGENT, "您的订单号是13812345678901", "offplatform.phone"));
	assert_null(hit(r, RULES_AGENT, "13812345678 是快递单号", "offplatform.phone"));
	assert_non_null(hit(r, RULES_AGENT, "快递13812345678,有事打电话13912345678", "offplatform.phone"));

	/* unless anywhere in the message */
	assert_non_null(hit(r, RULES_AGENT, "亲,这款缺货", "stock.none"));
	assert_null(hit(r, RULES_AGENT, "这款缺货,那款有货", "stock.none"));

	/* whole: only the bare word, noise aside */
	assert_non_null(hit(r, RULES_AGENT, "哦~", "etiquette.bare"));
	assert_null(hit(r, RULES_AGENT, "哦,好的", "etiquette.bare"));

	/* roles, and a customer is never blocked */
	assert_null(hit(r, RULES_AGENT, "我要投诉", "complaint.threat"));
	assert_non_null(h = hit(r, RULES_CUSTOMER, "我要投诉", "complaint.threat"));
	assert_int_equal(h->action, RULES_WARNING);
	assert_null(hit(r, RULES_CUSTOMER, "加我微信", "offplatform.contact_app"));

	/* disabled rules do not fire */
	assert_null(hit(r, RULES_AGENT, "我不知道", "etiquette.unsure"));
	/* a rule may opt out of a step */
	assert_non_null(hit(r, RULES_AGENT, "幺三八", "offplatform.digits_raw"));
	assert_null(hit(r, RULES_AGENT, "138", "offplatform.digits_raw"));
	rules_free(r);
	sbuf_free(&errs);
}

/* Several hits: longest match first, each rule once, the prefilter changes nothing. */
static void
test_order_and_prefilter(void **state)
{
	static const char *const msgs[] = {
		"加我微信,这款没货了", "哦", "加我微信 加我qq 加我vx", "没货没货缺货",
		"", "普通的一句话,没有问题", "加我 ① ③ ⑧ 1234 5678",
		"\xff\xfe 加我微信", "联系我的企鹅号", "嗯嗯", "我不知道",
	};
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h, *hn;
	struct rules_hit	 copy[16];
	size_t			 n, nn, i, k;

	(void)state;
	sbuf_init(&errs);
	assert_non_null(r = load1(good, &errs));
	n = rules_match(r, RULES_AGENT, msgs[0], strlen(msgs[0]), &h);
	assert_int_equal(n, 2);
	assert_string_equal(h[0].rule, "offplatform.contact_app");	/* 4 > 2 */
	assert_string_equal(h[1].rule, "stock.none");
	n = rules_match(r, RULES_AGENT, msgs[2], strlen(msgs[2]), &h);
	assert_int_equal(n, 1);	/* three occurrences, one hit */
	for (i = 0; i < UTIL_NELEM(msgs); i++) {
		n = rules_match(r, RULES_AGENT, msgs[i], strlen(msgs[i]), &h);
		assert_true(n <= UTIL_NELEM(copy));
		memcpy(copy, h, n * sizeof(*h));
		nn = rules_match_naive(r, RULES_AGENT, msgs[i], strlen(msgs[i]), &hn);
		assert_int_equal(n, nn);
		for (k = 0; k < n; k++) {
			assert_string_equal(copy[k].rule, hn[k].rule);
			assert_int_equal(copy[k].start, hn[k].start);
			assert_int_equal(copy[k].end, hn[k].end);
		}
	}
	rules_free(r);
	sbuf_free(&errs);
}

/*
 * A rule without the nfkc step sees the capitals as typed, which its
 * caseless regex matches: its literals, kept in lower case as folded text
 * has them, cannot be required of that text (QQ would hide qq's rule).
 */
static void
test_no_nfkc_capitals(void **state)
{
	static const char text[] =
	    "- list: apps\n  items: [QQ, \xe5\xbe\xae\xe4\xbf\xa1]\n"
	    "- rule: t.app\n  category: t\n  severity: critical\n  action: block\n"
	    "  message: m\n  normalize: {nfkc: false}\n"
	    "  pattern: '\xe5\x8a\xa0\xe6\x88\x91?${apps}'\n"
	    "  examples: {match: ['\xe5\x8a\xa0\xe6\x88\x91QQ', '\xe5\x8a\xa0qq'],"
	    " no_match: ['\xe4\xbd\xa0\xe5\xa5\xbd']}\n"
	    "- rule: t.ok\n  category: t\n  severity: info\n  action: flag\n"
	    "  normalize: {nfkc: false}\n  whole: [ok]\n"
	    "  examples: {match: [OK, ok], no_match: [okay]}\n";
	static const char *const msgs[] = { "\xe5\x8a\xa0\xe6\x88\x91QQ",
	    "\xe5\x8a\xa0Qq", "OK", "Ok", "\xe5\x8a\xa0\xe6\x88\x91qq", "OKAY" };
	static const char *const ids[] = { "t.app", "t.app", "t.ok", "t.ok", "t.app", NULL };
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h, *hn;
	char			 rule[32];
	size_t			 n, nn, i;

	(void)state;
	sbuf_init(&errs);
	assert_non_null(r = load1(text, &errs));
	for (i = 0; i < UTIL_NELEM(msgs); i++) {
		n = rules_match(r, RULES_AGENT, msgs[i], strlen(msgs[i]), &h);
		assert_int_equal(n, ids[i] != NULL);
		if (n == 1) {
			assert_string_equal(h[0].rule, ids[i]);
			snprintf(rule, sizeof(rule), "%s", h[0].rule);
		}
		nn = rules_match_naive(r, RULES_AGENT, msgs[i], strlen(msgs[i]), &hn);
		assert_int_equal(nn, n);
		if (n == 1)
			assert_string_equal(hn[0].rule, rule);
	}
	rules_free(r);
	sbuf_free(&errs);
}

/*
 * A view that only rules needing a non-plain word use (emoji, here the
 * view without the noise step) is skipped on plain messages: the engine
 * still finds what the naive run of every rule finds, on plain messages
 * and on others. A rule with a plain word in that view keeps it scanned.
 */
static void
test_plain_blind(void **state)
{
	static const char base[] =
	    "- rule: e.emoji\n  category: t\n  severity: info\n  action: flag\n"
	    "  normalize: {noise: false}\n"
	    "  pattern: '(?:\xf0\x9f\xa7\xa7|\xf0\x9f\x92\xb0)\\s*(?:\xe5\xa5\xbd\xe8\xaf\x84|\xe4\xba\x94\xe6\x98\x9f)'\n"
	    "  examples: {match: ['\xf0\x9f\xa7\xa7 \xe5\xa5\xbd\xe8\xaf\x84'], no_match: ['\xe5\xa5\xbd\xe8\xaf\x84']}\n"
	    "- rule: e.star\n  category: t\n  severity: info\n  action: flag\n"
	    "  normalize: {noise: false}\n"
	    "  pattern: '(?:\xe4\xba\x94|5)\\s*(?:\xe2\xad\x90|\xf0\x9f\x8c\x9f)'\n"
	    "  examples: {match: ['5\xe2\xad\x90'], no_match: ['5']}\n"
	    "- rule: e.plain\n  category: t\n  severity: info\n  action: flag\n"
	    "  pattern: '\xe7\xba\xa2\xe5\x8c\x85'\n"
	    "  examples: {match: ['\xe7\xba\xa2\xe5\x8c\x85'], no_match: ['\xe5\x8c\x85']}\n";
	static const char mixed[] =
	    "- rule: e.mixed\n  category: t\n  severity: info\n  action: flag\n"
	    "  normalize: {noise: false}\n"
	    "  pattern: '\xe8\xbf\x94\xe7\x8e\xb0!'\n"
	    "  examples: {match: ['\xe8\xbf\x94\xe7\x8e\xb0\xef\xbc\x81'], no_match: ['\xe8\xbf\x94\xe7\x8e\xb0']}\n";
	static const char *const msgs[] = {
	    "\xf0\x9f\xa7\xa7 \xe5\xa5\xbd\xe8\xaf\x84",		/* 🧧 好评 */
	    "\xe7\xbb\x99\xe4\xb8\xaa\xf0\x9f\x92\xb0\xe4\xba\x94\xe6\x98\x9f\xe5\x90\xa7",
	    "\xe4\xba\x94 \xe2\xad\x90",				/* 五 ⭐ */
	    "5\xf0\x9f\x8c\x9f\xef\xbc\x8c\xe8\xb0\xa2\xe8\xb0\xa2",	/* 5🌟，谢谢 */
	    "\xe7\xbb\x99\xe4\xbd\xa0\xe5\x8f\x91\xe4\xb8\xaa\xe7\xba\xa2\xe5\x8c\x85\xef\xbc\x8c\xe4\xba\x94\xe6\x98\x9f\xe5\xa5\xbd\xe8\xaf\x84",
	    "\xe8\xbf\x94\xe7\x8e\xb0\xef\xbc\x81\xe4\xba\x94\xe6\x98\x9f",	/* 返现！五星 */
	    "\xe4\xba\x94\xe2\x98\x85", "", "ab\xff \xf0\x9f\xa7\xa7\xe5\xa5\xbd\xe8\xaf\x84",
	};
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h, *hn;
	struct rules_hit	 copy[8];
	char			 both[sizeof(base) + sizeof(mixed)];
	size_t			 n, nn, i, k, pass;
	int			 found = 0;

	(void)state;
	sbuf_init(&errs);
	snprintf(both, sizeof(both), "%s%s", base, mixed);
	for (pass = 0; pass < 2; pass++) {
		assert_non_null(r = load1(pass == 0 ? base : both, &errs));
		assert_int_equal(r->plain_blind, pass == 0 ?
		    1u << (NORM_ALL & ~NORM_NOISE) : 0);
		for (i = 0; i < UTIL_NELEM(msgs); i++) {
			n = rules_match(r, RULES_AGENT, msgs[i], strlen(msgs[i]), &h);
			assert_true(n <= UTIL_NELEM(copy));
			memcpy(copy, h, n * sizeof(*h));
			nn = rules_match_naive(r, RULES_AGENT, msgs[i],
			    strlen(msgs[i]), &hn);
			assert_int_equal(n, nn);
			for (k = 0; k < n; k++) {
				assert_string_equal(copy[k].rule, hn[k].rule);
				assert_int_equal(copy[k].start, hn[k].start);
				assert_int_equal(copy[k].end, hn[k].end);
				found += strncmp(copy[k].rule, "e.", 2) == 0;
			}
		}
		rules_free(r);
	}
	assert_true(found >= 12);
	sbuf_free(&errs);
}

/*
 * Lists are compiled as tries (微(?:信|信号)?): the first match, and so
 * the hit's end, must be the one the plain alternation of the items, in
 * their order, finds. PCRE2 on the plain pattern is the oracle.
 */
static void
test_list_trie(void **state)
{
	static const char rules[] =
	    "- list: w\n"
	    "  items: [ab, a, abc, b, ba, 微信, 微, 微信号, 威信, wx, WX2, 微, abc]\n"
	    "- rule: t.one\n  category: t\n  severity: info\n  action: flag\n"
	    "  pattern: 'x${w}'\n  examples: {match: [xab]}\n"
	    "- rule: t.two\n  category: t\n  severity: info\n  action: flag\n"
	    "  pattern: 'x${w}c'\n  examples: {match: [xabc]}\n"
	    "- rule: t.three\n  category: t\n  severity: info\n  action: flag\n"
	    "  pattern: 'x${w}(?:信号|号|c|)y'\n  examples: {match: [xay]}\n";
	static const char *const plain[] = {
	    "x(?:ab|a|abc|b|ba|微信|微|微信号|威信|wx|wx2|微|abc)",
	    "x(?:ab|a|abc|b|ba|微信|微|微信号|威信|wx|wx2|微|abc)c",
	    "x(?:ab|a|abc|b|ba|微信|微|微信号|威信|wx|wx2|微|abc)(?:信号|号|c|)y",
	};
	static const char *const ids[] = { "t.one", "t.two", "t.three" };
	static const char *const texts[] = {
	    "xabc", "xabcc", "xabcy", "xay", "xaby", "xbay", "xbac", "x微信号",
	    "x微信号y", "x微信y", "x微y", "x微信号号y", "xwx2", "xWX2y", "xwxc",
	    "x威信c", "xx微xab", "xbc", "xabccy",
	};
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h;
	pcre2_code		*re;
	pcre2_match_data	*md;
	PCRE2_SIZE		 off, *ov;
	size_t			 i, k, b, e, j;
	int			 ec;

	(void)state;
	sbuf_init(&errs);
	assert_non_null(r = load1(rules, &errs));
	assert_non_null(md = pcre2_match_data_create(4, NULL));
	for (k = 0; k < UTIL_NELEM(plain); k++) {
		assert_non_null(re = pcre2_compile((PCRE2_SPTR)plain[k],
		    PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS,
		    &ec, &off, NULL));
		for (i = 0; i < UTIL_NELEM(texts); i++) {
			char	low[64];

			/* the text as normalised: lower case */
			for (j = 0; texts[i][j] && j < sizeof(low) - 1; j++)
				low[j] = texts[i][j] >= 'A' && texts[i][j] <= 'Z' ?
				    (char)(texts[i][j] + 32) : texts[i][j];
			low[j] = '\0';
			h = hit(r, RULES_AGENT, texts[i], ids[k]);
			if (pcre2_match(re, (PCRE2_SPTR)low, PCRE2_ZERO_TERMINATED,
			    0, 0, md, NULL) < 0) {
				if (h != NULL)
					fail_msg("%s on %s: a hit, the plain list none",
					    ids[k], texts[i]);
				continue;
			}
			ov = pcre2_get_ovector_pointer(md);
			/* code points */
			for (b = 0, j = 0; j < ov[0]; j++)
				b += ((unsigned char)low[j] & 0xc0) != 0x80;
			for (e = b; j < ov[1]; j++)
				e += ((unsigned char)low[j] & 0xc0) != 0x80;
			if (h == NULL || h->start != b || h->end != e)
				fail_msg("%s on %s: [%d,%d), the plain list [%zu,%zu)",
				    ids[k], texts[i], h ? (int)h->start : -1,
				    h ? (int)h->end : -1, b, e);
		}
		pcre2_code_free(re);
	}
	pcre2_match_data_free(md);
	rules_free(r);
	sbuf_free(&errs);
}

struct bad_case {
	const char	*name;
	const char	*text;
	const char	*want;		/* a line that must be among the errors; '@' is the file */
};

#define RULE_HEAD "- rule: a.b\n  category: abuse\n  severity: warn\n  action: flag\n"
#define EX "  examples:\n    match: [滚]\n"

static const struct bad_case bad_cases[] = {
	{ "yaml syntax", "- rule: a\n  category: [x\n",
	    "@:3: YAML: did not find expected ',' or ']' while parsing a flow sequence" },
	{ "not a list", "rule: a\n", "@:1: expected a list of '- list:', '- macro:' and '- rule:' items" },
	{ "unknown item", "- rulez: a\n", "@:1: unknown item 'rulez': expected list, macro or rule first" },
	{ "unknown key", RULE_HEAD "  pattern: 滚\n  colour: red\n" EX,
	    "@:6: rule: unknown key 'colour'" },
	{ "missing category", "- rule: a.b\n  severity: warn\n  action: flag\n  pattern: 滚\n" EX,
	    "@:1: rule a.b: category missing" },
	{ "bad severity", "- rule: a.b\n  category: abuse\n  severity: huge\n  action: flag\n  pattern: 滚\n" EX,
	    "@:3: severity: 'huge' is not one of the allowed values" },
	{ "bad regex", RULE_HEAD "  pattern: '滚(出去'\n" EX,
	    "@:5: bad pattern at offset 10: missing closing parenthesis" },
	{ "empty alternative", RULE_HEAD "  pattern: '滚|'\n" EX,
	    "@:5: pattern can match an empty text (an empty alternative, or every "
	    "part optional): every message would hit it" },
	{ "empty pattern", RULE_HEAD "  pattern: ''\n" EX,
	    "@:5: pattern can match an empty text (an empty alternative, or every "
	    "part optional): every message would hit it" },
	{ "every part optional", RULE_HEAD "  pattern: '(?:滚)?(?:蛋)*'\n" EX,
	    "@:5: pattern can match an empty text (an empty alternative, or every "
	    "part optional): every message would hit it" },
	{ "unknown list", RULE_HEAD "  pattern: '${nope}'\n" EX,
	    "@:5: unknown list or macro 'nope'" },
	{ "macro cycle", "- macro: m1\n  pattern: 'a${m2}'\n- macro: m2\n  pattern: 'b${m1}'\n"
	    RULE_HEAD "  pattern: '${m1}'\n" EX, "@:3: macro 'm1' uses itself (a cycle of macros)" },
	{ "duplicate id", RULE_HEAD "  pattern: 滚\n" EX RULE_HEAD "  pattern: 滚\n" EX,
	    "@:8: rule 'a.b' is defined twice (first at @:1)" },
	{ "both pattern and whole", RULE_HEAD "  pattern: 滚\n  whole: [滚]\n" EX,
	    "@:1: rule a.b: exactly one of pattern and whole is needed" },
	{ "warn without message", "- rule: a.b\n  category: abuse\n  severity: warn\n  action: warn\n  pattern: 滚\n" EX,
	    "@:1: rule a.b: a warn or block rule needs a message (what the agent should say instead)" },
	{ "no examples", RULE_HEAD "  pattern: 滚\n",
	    "@:1: rule a.b: examples: needed, with match: and no_match: lists" },
	{ "failing match example", RULE_HEAD "  pattern: 滚开\n" EX,
	    "@:7: rule a.b: example \"滚\" should match but does not" },
	{ "failing no_match example", RULE_HEAD "  pattern: 滚\n" EX "    no_match: [滚蛋]\n",
	    "@:8: rule a.b: example \"滚蛋\" matches but should not" },
	{ "bad near", RULE_HEAD "  pattern: 滚\n  near: {pattern: 加, within: 0}\n" EX,
	    "@:6: rule a.b: near: within must be a number of characters from 1 to 1000" },
	{ "bad normalize step", RULE_HEAD "  pattern: 滚\n  normalize: {colour: false}\n" EX,
	    "@:6: normalize: 'colour' is not one of the allowed values" },
	{ "bad list name", "- list: a b\n  items: [x]\n", "@:1: bad name 'a b': letters, digits, _ and - only" },
	{ "empty list", "- list: l\n  items: []\n", "@:2: list l: no items" },
	/* what normalises to nothing would match the empty string: anywhere */
	{ "list item of noise", "- list: app\n  items:\n    - 微信\n    - '❤'\n"
	    RULE_HEAD "  pattern: '滚${app}?'\n" EX,
	    "@:4: list app: item '❤' normalises to nothing (it would match anywhere)" },
	{ "whole word of noise", RULE_HEAD "  whole: [哦, '?']\n  examples:\n    match: [哦]\n",
	    "@:5: rule a.b: whole: '?' normalises to nothing (it would match a message of noise alone)" },
	{ "block with an empty message", "- rule: a.b\n  category: abuse\n  severity: warn\n"
	    "  action: block\n  pattern: 滚\n  message: ''\n" EX,
	    "@:6: rule a.b: a warn or block rule needs a message that is not blank "
	    "(what the agent should say instead)" },
	{ "warn with a blank message", "- rule: a.b\n  category: abuse\n  severity: warn\n"
	    "  action: warn\n  pattern: 滚\n  message: ' \u3000 '\n" EX,
	    "@:6: rule a.b: a warn or block rule needs a message that is not blank" },
};

static void
test_errors(void **state)
{
	struct sbuf	 errs, want;
	struct rules	*r;
	const char	*path, *p;
	size_t		 i;

	(void)state;
	for (i = 0; i < UTIL_NELEM(bad_cases); i++) {
		sbuf_init(&errs);
		sbuf_init(&want);
		r = load1(bad_cases[i].text, &errs);
		path = nfiles ? NULL : NULL;
		(void)path;
		for (p = bad_cases[i].want; *p; p++)
			if (*p == '@')
				sbuf_printf(&want, "%s/r.yaml", tmpdir);
			else
				sbuf_append(&want, p, 1);
		if (r != NULL || strstr(sbuf_str(&errs), sbuf_str(&want)) == NULL)
			print_message("case %s: got\n%s\nwant a line\n%s\n",
			    bad_cases[i].name, sbuf_str(&errs), sbuf_str(&want));
		assert_null(r);
		assert_non_null(strstr(sbuf_str(&errs), sbuf_str(&want)));
		sbuf_free(&errs);
		sbuf_free(&want);
	}
}

/*
 * An item is refused only where it normalises to nothing: an emoji item
 * stays what it is for a rule that keeps the noise. A flag rule needs no
 * message, nor an empty one.
 */
static void
test_noise_items_in_their_view(void **state)
{
	static const char text[] =
	    "- list: heart\n"
	    "  items: [爱心, '❤']\n"
	    "- rule: etiquette.heart\n"
	    "  category: etiquette\n"
	    "  severity: info\n"
	    "  action: flag\n"
	    "  pattern: '比${heart}'\n"
	    "  normalize: {noise: false}\n"
	    "  message: ''\n"
	    "  examples:\n"
	    "    match: ['比❤', 比爱心]\n"
	    "    no_match: [比]\n";
	struct sbuf	 errs;
	struct rules	*r;

	(void)state;
	sbuf_init(&errs);
	if ((r = load1(text, &errs)) == NULL)
		fail_msg("%s", sbuf_str(&errs));
	assert_null(hit(r, RULES_AGENT, "比一比", "etiquette.heart"));
	rules_free(r);
	sbuf_free(&errs);
}

/* Every error of every file, each with its file and line. */
static void
test_all_errors_reported(void **state)
{
	struct sbuf	 errs;
	struct rules	*r;
	char		*paths[2];
	char		 a[300], b[300];

	(void)state;
	sbuf_init(&errs);
	paths[0] = strdup(put("a.yaml", RULE_HEAD "  pattern: '('\n" EX));
	paths[1] = strdup(put("b.yaml", "- rule: c.d\n  category: abuse\n"
	    "  severity: nope\n  action: flag\n  pattern: '${missing}'\n" EX));
	r = rules_load_files(paths, 2, 0, &errs);
	assert_null(r);
	snprintf(a, sizeof(a), "%s:5: bad pattern", paths[0]);
	snprintf(b, sizeof(b), "%s:3: severity:", paths[1]);
	assert_non_null(strstr(sbuf_str(&errs), a));
	assert_non_null(strstr(sbuf_str(&errs), b));
	snprintf(b, sizeof(b), "%s:5: unknown list or macro 'missing'", paths[1]);
	assert_non_null(strstr(sbuf_str(&errs), b));
	assert_int_equal(errs.lines, 3);
	free(paths[0]);
	free(paths[1]);
	sbuf_free(&errs);
}

static void
count_cb(const struct rules_example *e, void *arg)
{
	size_t	*c = arg;

	c[0]++;
	if (!e->ok)
		c[1]++;
}

/* rules test: a set whose examples fail still loads with SKIP_EXAMPLES and says which. */
static void
test_rules_test(void **state)
{
	struct sbuf	 errs;
	struct rules	*r;
	char		*paths[1];
	size_t		 c[2] = { 0, 0 };

	(void)state;
	sbuf_init(&errs);
	paths[0] = (char *)put("t.yaml", RULE_HEAD "  pattern: 滚开\n"
	    "  examples:\n    match: [滚开, 滚]\n    no_match: [走开]\n");
	assert_null(rules_load_files(paths, 1, 0, &errs));
	r = rules_load_files(paths, 1, RULES_SKIP_EXAMPLES, &errs);
	assert_non_null(r);
	assert_int_equal(rules_test(r, count_cb, c), 1);
	assert_int_equal(c[0], 3);
	assert_int_equal(c[1], 1);
	rules_free(r);
	sbuf_free(&errs);
}

static void
test_load_dir(void **state)
{
	struct sbuf	 errs;
	struct rules	*r;
	char		 dir[300], cmd[400];

	(void)state;
	sbuf_init(&errs);
	snprintf(dir, sizeof(dir), "%s/d", tmpdir);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s", dir);
	assert_int_equal(system(cmd), 0);
	assert_null(rules_load_dir(dir, 0, &errs));	/* empty */
	assert_non_null(strstr(sbuf_str(&errs), "no *.yaml rule files"));
	put("d/10-rules.yaml", RULE_HEAD "  pattern: '${bad}'\n" EX);
	put("d/00-lists.yaml", "- list: bad\n  items: [滚]\n");
	put("d/notes.txt", "not yaml at all: [");
	sbuf_reset(&errs);
	r = rules_load_dir(dir, 0, &errs);	/* lists from an earlier file serve later ones */
	if (r == NULL)
		print_message("%s", sbuf_str(&errs));
	assert_non_null(r);
	assert_int_equal(rules_count(r), 1);
	rules_free(r);
	sbuf_free(&errs);
}

/*
 * A rule of more alternatives than RULES_MAX_BRANCH runs as that many
 * branches and an unless of more than RULES_MAX_UNLESS_PARTS (in nested
 * groups) as that many vetoes, each alternative
 * prefiltered by its own word; every one still matches and vetoes as the
 * whole pattern does (the naive run), the last ones past the cut
 * included. An unless that cannot be cut (a back-reference) stays whole.
 */
#define NALT	(RULES_MAX_UNLESS_PARTS + 8)	/* past both cuts */
static void
test_many_alternatives(void **state)
{
	struct sbuf		 text, errs, msg;
	struct rules		*r;
	const struct rules_hit	*h, *hn;
	struct rules_hit	 copy[4];
	size_t			 n, nn, k, v;
	char			 w[16];

	(void)state;
	sbuf_init(&text);
	sbuf_init(&errs);
	sbuf_init(&msg);
	assert_int_equal(sbuf_printf(&text, "- rule: stock.many\n"
	    "  category: stock\n  severity: warn\n  action: warn\n"
	    "  message: m\n  pattern: '(?:"), 0);
	for (k = 1; k <= NALT; k++)
		assert_int_equal(sbuf_printf(&text, "%sword%03zu", k > 1 ? "|" : "", k), 0);
	assert_int_equal(sbuf_printf(&text, ")'\n  unless: ['(?:(?:"), 0);
	for (k = 1; k < NALT; k++)
		assert_int_equal(sbuf_printf(&text, "%sno%03zu", k > 1 ? "|" : "", k), 0);
	assert_int_equal(sbuf_printf(&text, ")|zz\\d+zz)', '(q)\\1|qq']\n"
	    "  examples: {match: [word001], no_match: [word002 no002, word002 zz7zz]}\n"), 0);
	r = load1(sbuf_str(&text), &errs);
	assert_non_null(r);
	assert_int_equal(r->rule[0].nbr, RULES_MAX_BRANCH);
	assert_int_equal(r->rule[0].nunless, RULES_MAX_UNLESS_PARTS + 1);
	for (k = 1; k <= NALT; k++)
		for (v = 0; v < 4; v++) {
			msg.len = 0;
			snprintf(w, sizeof(w), "no%03zu", k);
			assert_int_equal(sbuf_printf(&msg, "say word%03zu now %s", k,
			    v == 0 ? "" : v == 1 ? w : v == 2 ? "zz42zz" : "qq"), 0);
			n = rules_match(r, RULES_AGENT, sbuf_str(&msg), msg.len, &h);
			assert_int_equal(n, v == 0 || (v == 1 && k == NALT) ? 1 : 0);
			memcpy(copy, h, n * sizeof(*h));
			nn = rules_match_naive(r, RULES_AGENT, sbuf_str(&msg), msg.len, &hn);
			assert_int_equal(n, nn);
			if (n == 1) {
				assert_int_equal(copy[0].start, hn[0].start);
				assert_int_equal(copy[0].end, hn[0].end);
			}
		}
	rules_free(r);
	sbuf_free(&msg);
	sbuf_free(&errs);
	sbuf_free(&text);
}

#undef NALT

/*
 * A block rule and its warn twin with the very same pattern share its
 * compiled branches and the search for its first match, but each keeps its
 * own near cue, unless and role: the shared answer is the match, never the
 * verdict. A twin under other steps is compiled on its own.
 */
static void
test_twins_share_the_pattern(void **state)
{
	struct sbuf		 errs;
	struct rules		*r;
	const char		*rules =
	    "- rule: offp.deal\n  category: offplatform\n  severity: critical\n"
	    "  action: block\n  message: m\n  pattern: '不走(?:平台|淘宝)'\n"
	    "  near: {pattern: '便宜|转我', within: 10}\n"
	    "  examples: {match: [不走平台转我], no_match: [不走平台]}\n"
	    "- rule: offp.bare\n  category: offplatform\n  severity: warn\n"
	    "  action: warn\n  message: m\n  pattern: '不走(?:平台|淘宝)'\n"
	    "  unless: ['不走平台的都是骗子']\n"
	    "  examples: {match: [不走平台], no_match: [不走平台的都是骗子]}\n"
	    "- rule: offp.loose\n  category: offplatform\n  severity: warn\n"
	    "  action: warn\n  message: m\n  pattern: '不走(?:平台|淘宝)'\n"
	    "  normalize: {digits: false}\n"
	    "  examples: {match: [不走平台], no_match: [走平台]}\n"
	    "- rule: offp.buyer\n  category: offplatform\n  severity: warn\n"
	    "  action: warn\n  message: m\n  pattern: '不走(?:平台|淘宝)'\n"
	    "  role: customer\n"
	    "  examples: {match: [不走平台], no_match: [走平台]}\n";

	(void)state;
	sbuf_init(&errs);
	r = load1(rules, &errs);
	if (r == NULL)
		fprintf(stderr, "%s", sbuf_str(&errs));
	assert_non_null(r);
	assert_int_equal(r->rule[0].same, 0);
	assert_int_equal(r->rule[1].same, 1);
	assert_int_equal(r->rule[2].same, 0);		/* other steps */
	assert_int_equal(r->rule[3].same, 1);
	assert_ptr_equal(r->rule[1].br[0].re, r->rule[0].br[0].re);
	assert_ptr_not_equal(r->rule[2].br[0].re, r->rule[0].br[0].re);
	/* the deal needs its cue; the bare one does not */
	assert_non_null(hit(r, RULES_AGENT, "这单不走平台,直接转我", "offp.deal"));
	assert_non_null(hit(r, RULES_AGENT, "这单不走平台,直接转我", "offp.bare"));
	assert_null(hit(r, RULES_AGENT, "亲这单不走平台可以吗", "offp.deal"));
	assert_non_null(hit(r, RULES_AGENT, "亲这单不走平台可以吗", "offp.bare"));
	/* the bare one's unless is its own */
	assert_null(hit(r, RULES_AGENT, "不走平台的都是骗子,便宜也别信", "offp.bare"));
	assert_non_null(hit(r, RULES_AGENT, "不走平台的都是骗子,便宜也别信", "offp.deal"));
	/* and the role: the customer's twin only for the customer */
	assert_null(hit(r, RULES_AGENT, "不走淘宝行吗", "offp.buyer"));
	assert_non_null(hit(r, RULES_CUSTOMER, "不走淘宝行吗", "offp.buyer"));
	assert_non_null(hit(r, RULES_AGENT, "不走淘宝行吗", "offp.loose"));
	/*
	 * The next turn is asked again, not answered from the last, though
	 * its view is in the same buffer at the same length and its words
	 * make it a candidate.
	 */
	assert_non_null(hit(r, RULES_AGENT, "亲这单不走平台可以吗", "offp.bare"));
	assert_null(hit(r, RULES_AGENT, "不走的话平台可以吗呀", "offp.bare"));
	rules_free(r);
	sbuf_free(&errs);
}

/* Without the JIT (MemoryDenyWriteExecute), the interpreter gives the same answers. */
static void
test_interpreter(void **state)
{
	load_flags = RULES_NO_JIT;
	test_load_and_match(state);
	test_order_and_prefilter(state);
	load_flags = 0;
}

/* A rule with normalize: {sound: true} hears homophones and typed pinyin. */
static void
test_sound(void **state)
{
	static const char text[] =
	    "- list: wechat\n"
	    "  items: [微信, vx]\n"
	    "- rule: offplatform.sound\n"
	    "  category: offplatform\n"
	    "  severity: critical\n"
	    "  action: block\n"
	    "  normalize: {sound: true}\n"
	    "  pattern: '加我?${wechat}'\n"
	    "  message: 亲,请在旺旺上沟通。\n"
	    "  examples:\n"
	    "    match: [加我威信, 家我维心, jia wo wei xin, 加卫星, 加我VX]\n"
	    "    no_match: [支持微信支付吗, 加购物车]\n";
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h;

	(void)state;
	sbuf_init(&errs);
	r = load1(text, &errs);
	if (r == NULL)
		fail_msg("%s", sbuf_str(&errs));
	/* the offsets are in what was typed */
	assert_non_null(h = hit(r, RULES_AGENT, "亲 jia wo weixin 哦", "offplatform.sound"));
	assert_int_equal(h->start, 2);
	assert_int_equal(h->end, 15);
	assert_int_equal(h->match_len, 13);
	/* what sounds the same is the same: 价位新 reads jia wei xin */
	assert_non_null(hit(r, RULES_AGENT, "价位新品", "offplatform.sound"));
	assert_null(hit(r, RULES_AGENT, "加入购物车", "offplatform.sound"));
	rules_free(r);
	sbuf_free(&errs);
}

/* The text of n copies of unit then tail, in buf (cap bytes). */
static const char *
repeat(char *buf, size_t cap, const char *unit, size_t n, const char *tail)
{
	size_t	i, k = 0, u = strlen(unit);

	for (i = 0; i < n; i++, k += u) {
		assert_true(k + u < cap);
		memcpy(buf + k, unit, u);
	}
	assert_true(k + strlen(tail) < cap);
	strcpy(buf + k, tail);
	return buf;
}

/* clear: a cue next to the match clears it; two negations cancel; quotes. */
static void
test_clear(void **state)
{
	static const char text[] =
	    "- rule: returns.refuse\n"
	    "  category: returns\n"
	    "  severity: critical\n"
	    "  action: block\n"
	    "  pattern: '不支持七天无理由'\n"
	    "  clear: {before: '不是|没有|不存在', after: '的说法', within: 4, quoted: true}\n"
	    "  message: 亲,本店支持七天无理由退货。\n"
	    "  examples:\n"
	    "    match: [这款不支持七天无理由]\n"
	    "    no_match: [不是不支持七天无理由哦, '买家说“不支持七天无理由”是误会']\n";
	struct sbuf	 errs;
	struct rules	*r;

	(void)state;
	sbuf_init(&errs);
	r = load1(text, &errs);
	if (r == NULL)
		fail_msg("%s", sbuf_str(&errs));
	assert_non_null(hit(r, RULES_AGENT, "这款不支持七天无理由", "returns.refuse"));
	assert_null(hit(r, RULES_AGENT, "我们没有不支持七天无理由", "returns.refuse"));
	/* a double negation is not a negation */
	assert_non_null(hit(r, RULES_AGENT, "不是没有不支持七天无理由", "returns.refuse"));
	/* the cue must be close */
	assert_non_null(hit(r, RULES_AGENT, "没有问题的,这个不支持七天无理由", "returns.refuse"));
	assert_null(hit(r, RULES_AGENT, "不支持七天无理由的说法不对", "returns.refuse"));
	assert_null(hit(r, RULES_AGENT, "他说「不支持七天无理由」", "returns.refuse"));
	assert_non_null(hit(r, RULES_AGENT, "「好的」不支持七天无理由", "returns.refuse"));
	/* ASCII single quotes quote too; an apostrophe in a word does not */
	assert_null(hit(r, RULES_AGENT, "这件'不支持七天无理由'T恤", "returns.refuse"));
	assert_non_null(hit(r, RULES_AGENT, "it's ok,不支持七天无理由", "returns.refuse"));
	/*
	 * Quoted means between an opening mark and its closing one: a mark
	 * left open (a stray “, an inch sign) quotes nothing after it, nor
	 * does a pair that closes inside the match or before it.
	 */
	assert_non_null(hit(r, RULES_AGENT, "“不支持七天无理由", "returns.refuse"));
	assert_non_null(hit(r, RULES_AGENT, "「不支持七天无理由", "returns.refuse"));
	assert_non_null(hit(r, RULES_AGENT, "\"好的亲。不支持七天无理由", "returns.refuse"));
	assert_non_null(hit(r, RULES_AGENT, "5\" 屏的,不支持七天无理由", "returns.refuse"));
	assert_non_null(hit(r, RULES_AGENT, "他说“不支持”七天无理由", "returns.refuse"));
	assert_non_null(hit(r, RULES_AGENT, "“好的”,“不支持七天无理由", "returns.refuse"));
	assert_non_null(hit(r, RULES_AGENT, "”不支持七天无理由“", "returns.refuse"));
	assert_null(hit(r, RULES_AGENT, "他说\"不支持七天无理由\"", "returns.refuse"));
	assert_null(hit(r, RULES_AGENT, "『他说「不支持七天无理由」』", "returns.refuse"));
	assert_null(hit(r, RULES_AGENT, "“他说“不支持”七天无理由”", "returns.refuse"));
	assert_null(hit(r, RULES_AGENT, "“好的”,“不支持七天无理由”", "returns.refuse"));
	rules_free(r);
	sbuf_free(&errs);
}

/*
 * More cues before a match than are counted (64) clear nothing: with the
 * last cue unknown, a double negation right before the match could be
 * read as a single one (the 64th cue, far away, taken for the nearest).
 */
static void
test_clear_too_many_cues(void **state)
{
	static const char text[] =
	    "- rule: offplatform.wx\n"
	    "  category: offplatform\n"
	    "  severity: critical\n"
	    "  action: warn\n"
	    "  pattern: '加微信'\n"
	    "  clear: {before: '别', within: 100}\n"
	    "  message: 亲,请在平台内沟通。\n"
	    "  examples:\n"
	    "    match: [加微信, 别别加微信]\n"
	    "    no_match: [别加微信]\n";
	struct sbuf	 errs;
	struct rules	*r;
	char		 buf[512];

	(void)state;
	sbuf_init(&errs);
	r = load1(text, &errs);
	if (r == NULL)
		fail_msg("%s", sbuf_str(&errs));
	assert_null(hit(r, RULES_AGENT, repeat(buf, sizeof(buf), "别", 3, "加微信"),
	    "offplatform.wx"));
	assert_non_null(hit(r, RULES_AGENT, repeat(buf, sizeof(buf), "别", 20,
	    "xx别别加微信"), "offplatform.wx"));
	assert_non_null(hit(r, RULES_AGENT, repeat(buf, sizeof(buf), "别", 64,
	    "xx别别加微信"), "offplatform.wx"));
	assert_non_null(hit(r, RULES_AGENT, repeat(buf, sizeof(buf), "别", 70,
	    "加微信"), "offplatform.wx"));
	rules_free(r);
	sbuf_free(&errs);
}


/*
 * Each occurrence is judged on its own, however many before it do not
 * count (cleared, or without their near cue): a rule judges 64 of them and
 * one more for every 4 bytes of its text. Past that it fails closed: the
 * next occurrence is reported unjudged (unless still vetoes it).
 */
static void
test_many_occurrences(void **state)
{
	static const char text[] =
	    "- rule: returns.refuse\n"
	    "  category: returns\n"
	    "  severity: critical\n"
	    "  action: block\n"
	    "  pattern: '不退'\n"
	    "  clear: {before: '不是', within: 3}\n"
	    "  message: 亲,本店支持退货。\n"
	    "  examples:\n"
	    "    match: [不退]\n"
	    "    no_match: [不是不退]\n"
	    "- rule: offplatform.phone\n"
	    "  category: offplatform\n"
	    "  severity: critical\n"
	    "  action: block\n"
	    "  pattern: '(?<![0-9])1[3-9][0-9]{9}(?![0-9])'\n"
	    "  near: {pattern: '手机|电话', within: 6}\n"
	    "  message: 亲,请不要留电话。\n"
	    "  examples:\n"
	    "    match: [我手机13812345678]\n"
	    "    no_match: [订单13812345678]\n"
	    "- rule: etiquette.dense\n"
	    "  category: etiquette\n"
	    "  severity: info\n"
	    "  action: flag\n"
	    "  pattern: 'a'\n"
	    "  clear: {after: 'b', within: 1}\n"
	    "  unless: ['zz']\n"
	    "  examples:\n"
	    "    match: [a]\n"
	    "    no_match: [ab]\n";
	static char		 buf[65536];
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h;
	size_t			 n;

	(void)state;
	sbuf_init(&errs);
	if ((r = load1(text, &errs)) == NULL)
		fail_msg("%s", sbuf_str(&errs));
	/* the reviewer's: 64 cleared occurrences, then one that counts */
	for (n = 63; n <= 1000; n += n < 100 ? 1 : 900) {
		repeat(buf, sizeof(buf), "不是不退，", n, "我们就是不退");
		assert_non_null(h = hit(r, RULES_AGENT, buf, "returns.refuse"));
		assert_int_equal(h->start, 5 * n + 4);
		repeat(buf, sizeof(buf), "不是不退，", n, "");
		assert_null(hit(r, RULES_AGENT, buf, "returns.refuse"));
	}
	/* 70 numbers without their cue, then the agent's own */
	buf[0] = '\0';
	for (n = 0; n < 70; n++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf),
		    "%s1391234%04zu", n > 0 ? "和" : "这些单的尾号", n);
	strcat(buf, "。。。。。营业时间是九点到晚上十点。。。。。有事打我手机13812345678");
	assert_non_null(h = hit(r, RULES_AGENT, buf, "offplatform.phone"));
	assert_int_equal(h->match_len, 11);
	assert_memory_equal(h->match, "13812345678", 11);
	/* one occurrence every 2 bytes: 100 are judged (all cleared) ... */
	assert_null(hit(r, RULES_AGENT, repeat(buf, sizeof(buf), "ab", 100, ""),
	    "etiquette.dense"));
	/* ... 1000 are not: the 565th is reported unjudged */
	assert_non_null(h = hit(r, RULES_AGENT,
	    repeat(buf, sizeof(buf), "ab", 1000, ""), "etiquette.dense"));
	assert_int_equal(h->start, 2 * (64 + 2000 / 4));
	assert_null(hit(r, RULES_AGENT, repeat(buf, sizeof(buf), "ab", 1000, "zz"),
	    "etiquette.dense"));
	rules_free(r);
	sbuf_free(&errs);
}

/* window: only what spans an earlier turn and the last one is reported. */
static void
test_window(void **state)
{
	static const char text[] =
	    "- rule: offplatform.split\n"
	    "  category: offplatform\n"
	    "  severity: critical\n"
	    "  action: block\n"
	    "  window: true\n"
	    "  pattern: '加我v[a-z0-9]{4,}'\n"
	    "  message: 亲,请在旺旺上沟通。\n"
	    "  examples:\n"
	    "    match: [加我vabc123]\n";
	static const char joined[] = "加我\nv\nabc123";
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h;

	(void)state;
	sbuf_init(&errs);
	r = load1(text, &errs);
	if (r == NULL)
		fail_msg("%s", sbuf_str(&errs));
	assert_int_equal(rules_window_count(r), 1);
	/* the last turn "abc123" starts at code point 5; it breaks nothing alone */
	assert_int_equal(rules_match(r, RULES_AGENT, "abc123", 6, &h), 0);
	assert_int_equal(rules_match_window(r, RULES_AGENT, joined, strlen(joined),
	    5, &h), 1);
	assert_int_equal(h[0].start, 0);
	assert_int_equal(h[0].end, 11);
	/* all in the last turn: the single-turn pass has it, not the window */
	assert_int_equal(rules_match(r, RULES_AGENT, "加我vabc123", 13, &h), 1);
	assert_int_equal(rules_match_window(r, RULES_AGENT, "hi\n加我vabc123", 16,
	    3, &h), 0);
	/* the last turn broke it alone: the window does not report it twice */
	assert_int_equal(rules_match(r, RULES_AGENT, "加我vxyz987", 13, &h), 1);
	assert_int_equal(rules_match_window(r, RULES_AGENT, "加我\nv\n加我vxyz987",
	    strlen("加我\nv\n加我vxyz987"), 5, &h), 0);
	/* all before the last turn (ok only lengthens it): reported then */
	assert_int_equal(rules_match(r, RULES_AGENT, "ok", 2, &h), 0);
	assert_int_equal(rules_match_window(r, RULES_AGENT, "加我vabc123\nok",
	    strlen("加我vabc123\nok"), 10, &h), 0);
	/* two earlier matches, none spanning: each is tried once, none reported */
	assert_int_equal(rules_match(r, RULES_AGENT, "ok", 2, &h), 0);
	assert_int_equal(rules_match_window(r, RULES_AGENT,
	    "加我vabc123加我vdef456\nok", strlen("加我vabc123加我vdef456\nok"), 19,
	    &h), 0);
	/* an earlier match, then one spanning into the last turn */
	assert_int_equal(rules_match(r, RULES_AGENT, "xy99", 4, &h), 0);
	assert_int_equal(rules_match_window(r, RULES_AGENT,
	    "加我vabc123加我\nv\nxy99", strlen("加我vabc123加我\nv\nxy99"), 14,
	    &h), 1);
	assert_int_equal(h[0].start, 9);
	assert_int_equal(h[0].end, 18);
	rules_free(r);
	sbuf_free(&errs);
}

/* window with near: a cue in an earlier turn makes the last turn's match a hit. */
static void
test_window_near(void **state)
{
	static const char text[] =
	    "- rule: privacy.phone\n"
	    "  category: privacy\n"
	    "  severity: critical\n"
	    "  action: block\n"
	    "  window: true\n"
	    "  pattern: '1[3-9][0-9]{9}'\n"
	    "  near: {pattern: '那位|上一个买家', within: 12}\n"
	    "  message: 亲,不能透露其他买家的信息。\n"
	    "  examples:\n"
	    "    match: [那位买家电话13812345678]\n";
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h;
	const char		*j;

	(void)state;
	sbuf_init(&errs);
	r = load1(text, &errs);
	if (r == NULL)
		fail_msg("%s", sbuf_str(&errs));
	/* 上一个买家的电话是 / 13812345678: the number starts at code point 10 */
	j = "上一个买家的电话是\n13812345678";
	assert_int_equal(rules_match(r, RULES_AGENT, "13812345678", 11, &h), 0);
	assert_int_equal(rules_match_window(r, RULES_AGENT, j, strlen(j), 10, &h), 1);
	assert_int_equal(h[0].start, 0);		/* from the cue */
	assert_int_equal(h[0].end, 21);
	/* the cue too far back, or none: nothing */
	j = "上一个买家,我们已经处理好了,您放心吧\n13812345678";
	assert_int_equal(rules_match(r, RULES_AGENT, "13812345678", 11, &h), 0);
	assert_int_equal(rules_match_window(r, RULES_AGENT, j, strlen(j), 20, &h), 0);
	j = "我的电话是\n13812345678";
	assert_int_equal(rules_match(r, RULES_AGENT, "13812345678", 11, &h), 0);
	assert_int_equal(rules_match_window(r, RULES_AGENT, j, strlen(j), 6, &h), 0);
	rules_free(r);
	sbuf_free(&errs);
}

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char	cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * A branch whose matches start with known characters (不) is tried
 * anchored where they stand, from a list of the text's characters grown
 * with the longest text seen. Short of memory for it, the branch is
 * searched whole instead: the same hit, nothing lost.
 */
static void
test_heads_out_of_memory(void **state)
{
	static const char rule[] =
	    "- rule: offplatform.skip\n"
	    "  category: offplatform\n"
	    "  severity: critical\n"
	    "  action: block\n"
	    "  pattern: '不(?:走|通过)平台'\n"
	    "  message: 亲,请在平台上下单哦。\n"
	    "  examples:\n"
	    "    match: [不走平台]\n";
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h;
	char			 t1[512], t2[512];
	uint32_t		 s, e;
	int			 i;

	(void)state;
	if (!allocfail_active())
		skip();
	sbuf_init(&errs);
	if ((r = load1(rule, &errs)) == NULL)
		fail_msg("%s", sbuf_str(&errs));
	/* two texts of one length: the second alone has the rule's words */
	t1[0] = t2[0] = '\0';
	for (i = 0; i < 40; i++) {
		strcat(t1, "好的");
		strcat(t2, i == 30 ? "不走平台" : "好的");
	}
	strcat(t1, "好的");
	assert_int_equal(strlen(t1), strlen(t2));
	assert_null(hit(r, RULES_AGENT, t1, "offplatform.skip"));
	allocfail_injected = 0;
	allocfail_after = 0;
	h = hit(r, RULES_AGENT, t2, "offplatform.skip");
	allocfail_after = -1;
	assert_true(allocfail_injected);	/* the list could not grow */
	assert_non_null(h);
	s = h->start;
	e = h->end;
	assert_int_equal(s, 60);
	assert_non_null(h = hit(r, RULES_AGENT, t2, "offplatform.skip"));
	assert_int_equal(h->start, s);
	assert_int_equal(h->end, e);
	rules_free(r);
	sbuf_free(&errs);
}

/*
 * PCRE2's match limit holds for each start: a start that hits it is no
 * match there, and the search goes on after it, naive or prefiltered, with
 * heads or without (where PCRE2's search does not say which start hit
 * it), until the rule has hit the limit RULES_LIMIT_HITS times in the
 * message; then the rest of the message is no match for it.
 */
static void
test_heads_match_limit(void **state)
{
	static const char rule[] =
	    "- rule: etiquette.slow\n"
	    "  category: etiquette\n"
	    "  severity: warn\n"
	    "  action: warn\n"
	    "  pattern: 'x(?:a+a+)+y'\n"
	    "  message: 亲,请换个说法。\n"
	    "  examples:\n"
	    "    match: [xaay]\n"
	    "    no_match: [xy]\n"
	    "- rule: offplatform.slow\n"
	    "  category: offplatform\n"
	    "  severity: critical\n"
	    "  action: block\n"
	    "  pattern: '(?:[0-9]+)*微信'\n"
	    "  message: 亲,请在旺旺上沟通。\n"
	    "  examples:\n"
	    "    match: [加微信, 123微信]\n";
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h;
	const char		*later = "xaay";
	const char		*t = "xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaz xaay";
	char			 digits[256];
	size_t			 n;
	int			 pass;

	(void)state;
	sbuf_init(&errs);
	for (pass = 0; pass < 2; pass++) {
		load_flags = pass == 0 ? 0 : RULES_NO_JIT;
		if ((r = load1(rule, &errs)) == NULL)
			fail_msg("%s", sbuf_str(&errs));
		assert_non_null(hit(r, RULES_AGENT, later, "etiquette.slow"));
		/* with heads (x): the start at the first x hits the limit */
		assert_int_equal(rules_match_naive(r, RULES_AGENT, t, strlen(t), &h), 1);
		assert_int_equal(h[0].start, 34);
		assert_int_equal(rules_match(r, RULES_AGENT, t, strlen(t), &h), 1);
		assert_int_equal(h[0].start, 34);
		assert_int_equal(h[0].end, 38);
		/* without: the starts in the run of 40 digits hit it, 微信 does not */
		memset(digits, '1', 40);
		strcpy(digits + 40, "x 加微信");
		assert_non_null(h = hit(r, RULES_AGENT, digits, "offplatform.slow"));
		assert_int_equal(h->start, 43);
		assert_int_equal(h->end, 45);
		n = rules_match_naive(r, RULES_AGENT, digits, strlen(digits), &h);
		assert_int_equal(n, 1);
		assert_int_equal(h[0].start, 43);
		/* 200: far more starts than the budget, which ends the search */
		memset(digits, '1', 200);
		strcpy(digits + 200, "x 加微信");
		assert_null(hit(r, RULES_AGENT, digits, "offplatform.slow"));
		rules_free(r);
	}
	load_flags = 0;
	sbuf_free(&errs);
}

/*
 * A near cue that hits the match limit at every occurrence draws on the
 * same budget: once the rule has spent it, the occurrence at hand is
 * reported as it stands (fail closed) instead of a search of the cue for
 * each of thousands of occurrences.
 */
static void
test_cue_match_limit(void **state)
{
	static const char rule[] =
	    "- rule: privacy.slow_cue\n"
	    "  category: privacy\n"
	    "  severity: warn\n"
	    "  action: flag\n"
	    "  pattern: '1'\n"
	    "  near: {pattern: '(?:[0-9]+)*(?:号|码)', within: 100}\n"
	    "  examples:\n"
	    "    match: [电话号1]\n"
	    "    no_match: [x1]\n";
	struct sbuf		 errs;
	struct rules		*r;
	const struct rules_hit	*h;
	char			*t;
	size_t			 n = 8000;
	int			 pass;

	(void)state;
	sbuf_init(&errs);
	assert_non_null(t = malloc(n + 4));
	memset(t, '1', n);
	strcpy(t + n, "号");
	for (pass = 0; pass < 2; pass++) {
		load_flags = pass == 0 ? 0 : RULES_NO_JIT;
		if ((r = load1(rule, &errs)) == NULL)
			fail_msg("%s", sbuf_str(&errs));
		/* each cue search hits the limit: the 33rd occurrence is reported */
		assert_non_null(h = hit(r, RULES_AGENT, t, "privacy.slow_cue"));
		assert_true(h->start <= 32);
		assert_int_equal(rules_match_naive(r, RULES_AGENT, t, strlen(t), &h), 1);
		assert_true(h[0].start <= 32);
		rules_free(r);
	}
	load_flags = 0;
	free(t);
	sbuf_free(&errs);
}

/*
 * The window pass's hits over joined (the last turn from code point
 * boundary on), after the last turn alone, which must break nothing.
 */
static size_t
window_after(struct rules *r, const char *last, const char *joined,
    uint32_t boundary)
{
	const struct rules_hit	*h;

	assert_int_equal(rules_match(r, RULES_AGENT, last, strlen(last), &h), 0);
	return rules_match_window(r, RULES_AGENT, joined, strlen(joined),
	    boundary, &h);
}

/*
 * An unless pattern's words are marked only when it is about to run
 * (rules_veto_marks), from a list of the literals found that holds
 * RULES_VFOUND; a longer list is marked as it fills. Whatever the order of
 * the vetoed word and the other rules' unless words around it, the veto
 * holds, in a turn and in a window pass.
 */
static void
test_veto_marks(void **state)
{
	static const char text[] =
	    "- rule: stock.none\n"
	    "  category: stock\n"
	    "  severity: warn\n"
	    "  action: warn\n"
	    "  pattern: '缺货'\n"
	    "  unless: ['有货']\n"
	    "  message: 亲,这款有现货的哦。\n"
	    "  examples:\n"
	    "    match: [这款缺货]\n"
	    "    no_match: [这款缺货那款有货]\n"
	    "- rule: stock.other\n"
	    "  category: stock\n"
	    "  severity: warn\n"
	    "  action: warn\n"
	    "  pattern: '断码'\n"
	    "  unless: ['那款']\n"
	    "  message: 亲,请核实库存。\n"
	    "  examples:\n"
	    "    match: [断码了]\n"
	    "- rule: offplatform.split\n"
	    "  category: offplatform\n"
	    "  severity: critical\n"
	    "  action: block\n"
	    "  window: true\n"
	    "  pattern: '加我v[a-z0-9]{4,}'\n"
	    "  unless: ['小心']\n"
	    "  message: 亲,请在旺旺上沟通。\n"
	    "  examples:\n"
	    "    match: [加我vabc123]\n"
	    "    no_match: [小心加我vabc123的人]\n";
	struct sbuf		 errs, t;
	struct rules		*r;
	size_t			 k, order;

	(void)state;
	sbuf_init(&errs);
	if ((r = load1(text, &errs)) == NULL)
		fail_msg("%s", sbuf_str(&errs));
	for (order = 0; order < 3; order++) {
		/* 有货 before, after or among more other unless words than the list holds */
		sbuf_init(&t);
		assert_int_equal(sbuf_printf(&t, "缺货%s", order == 0 ? "有货" : ""), 0);
		for (k = 0; k < 2 * RULES_VFOUND + 3; k++)
			assert_int_equal(sbuf_printf(&t, "那款%s",
			    order == 1 && k == RULES_VFOUND ? "有货" : ""), 0);
		assert_int_equal(sbuf_printf(&t, "%s", order == 2 ? "有货" : ""), 0);
		assert_null(hit(r, RULES_AGENT, sbuf_str(&t), "stock.none"));
		sbuf_free(&t);
	}
	/* nothing to veto: the rule fires among the same words */
	sbuf_init(&t);
	assert_int_equal(sbuf_printf(&t, "缺货"), 0);
	for (k = 0; k < 2 * RULES_VFOUND + 3; k++)
		assert_int_equal(sbuf_printf(&t, "那款"), 0);
	assert_non_null(hit(r, RULES_AGENT, sbuf_str(&t), "stock.none"));
	sbuf_free(&t);
	/* a window rule's unless, its word in the earlier turn or the last */
	assert_int_equal(window_after(r, "abc123", "加我\nv\nabc123", 5), 1);
	assert_int_equal(window_after(r, "abc123", "小心加我\nv\nabc123", 7), 0);
	assert_int_equal(window_after(r, "abc123小心", "加我\nv\nabc123小心", 5), 0);
	rules_free(r);
	sbuf_free(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_and_match),
		cmocka_unit_test(test_order_and_prefilter),
		cmocka_unit_test(test_plain_blind),
		cmocka_unit_test(test_no_nfkc_capitals),
		cmocka_unit_test(test_list_trie),
		cmocka_unit_test(test_many_alternatives),
		cmocka_unit_test(test_twins_share_the_pattern),
		cmocka_unit_test(test_interpreter),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_noise_items_in_their_view),
		cmocka_unit_test(test_rules_test),
		cmocka_unit_test(test_load_dir),
		cmocka_unit_test(test_sound),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_clear_too_many_cues),
		cmocka_unit_test(test_many_occurrences),
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_window_near),
		cmocka_unit_test(test_heads_out_of_memory),
		cmocka_unit_test(test_heads_match_limit),
		cmocka_unit_test(test_cue_match_limit),
		cmocka_unit_test(test_veto_marks),
	};

	rules_free(NULL);
	return cmocka_run_group_tests_name("rules", tests, setup, teardown);
}
