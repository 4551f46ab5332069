/* test_rules_lit: every string a pattern matches holds a literal of every set of one of the clauses read from it (PCRE2 is the oracle). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "allocfail.h"

#include "../../src/rules_lit.h"

/*
 * The contract (rules_lit.h): a rule is confirmed with its regex only when
 * some clause has a literal of each of its sets in the text, so a clause
 * set that misses a true match silently loses a hit. The proof here: for
 * each pattern, many strings that PCRE2 itself says match it (as
 * rules_compile compiles it: UTF, UCP, caseless), found by mutating known
 * matches and random strings over the pattern's own characters; every one
 * must pass the prefilter. The texts are in normalised form, as the
 * automaton sees them: lower case, simplified, digits in ASCII.
 */

static uint64_t	rng = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)((rng >> 11) % n);
}

/* --- patterns as the loader writes them ------------------------------------ */

/*
 * A few of conf/rules.d/00-lists.yaml's lists and macros. ${name} expands
 * as rules_load_expand does it: a list to (?:item|item...), each item with
 * the regex metacharacters escaped, a macro to (?:its pattern).
 */
struct def {
	const char		*name;
	const char *const	*items;		/* a list */
	const char		*pattern;	/* a macro */
};

static const char *const wechat[] = { "微信", "威信", "薇信", "维信", "v信",
    "微v", "vx", "wx", "weixin", "wei信", "微xin", "wechat", "绿泡泡", NULL };
static const char *const qq[] = { "qq", "扣扣", "抠抠", "企鹅", "球球", NULL };
static const char *const other_app[] = { "钉钉", "陌陌", "telegram", "line号", NULL };
static const char *const odd[] = { "q.q", "+86", "a b", "c++", "(vx)", "1-2", "a/b",
    "x#y", "\\n", "{1}", NULL };
static const char *const pay[] = { "信用卡", "花呗", "花呗分期", "分期", "网银", NULL };

static const struct def defs[] = {
	{ "wechat", wechat, NULL },
	{ "qq", qq, NULL },
	{ "other_app", other_app, NULL },
	{ "odd", odd, NULL },
	{ "pay", pay, NULL },
	{ "add_verb", NULL, "(?:加|添加|加个|联系|找|扫一下|搜)(?:我|我们|你|您|亲|客服)?"
	    "(?:的|们的)?(?:私人|个人|小)?" },
	{ "contact_app", NULL, "(?:${wechat}|${qq}|${other_app})" },
	{ "contact_id", NULL, "(?:[a-z][a-z0-9]{5,19}|[1-9][0-9]{4,11})(?![a-z0-9])" },
	{ "shop_owner", NULL, "(?:我|我们|公司|店铺|老板)(?:的|们的)?(?:个人|私人)?" },
	{ "bad_review", NULL, "(?:差评|中评|一星|1星|投诉|举报|12315)" },
};

static void
expand_into(const char *p, char *out, size_t cap, size_t *len)
{
	const char	*e;
	size_t		 i, k;

	for (; *p; p++) {
		if (p[0] == '\\' && p[1] != '\0') {
			assert_true(*len + 2 < cap);
			out[(*len)++] = *p++;
			out[(*len)++] = *p;
			continue;
		}
		if (p[0] != '$' || p[1] != '{') {
			assert_true(*len + 1 < cap);
			out[(*len)++] = *p;
			continue;
		}
		assert_non_null(e = strchr(p + 2, '}'));
		for (i = 0; i < sizeof(defs) / sizeof(defs[0]); i++)
			if (strlen(defs[i].name) == (size_t)(e - p - 2) &&
			    memcmp(defs[i].name, p + 2, (size_t)(e - p - 2)) == 0)
				break;
		assert_true(i < sizeof(defs) / sizeof(defs[0]));
		assert_true(*len + 4 < cap);
		memcpy(out + *len, "(?:", 3);
		*len += 3;
		if (defs[i].items != NULL)
			for (k = 0; defs[i].items[k] != NULL; k++) {
				const char *s;

				if (k > 0)
					out[(*len)++] = '|';
				for (s = defs[i].items[k]; *s; s++) {
					assert_true(*len + 3 < cap);
					if (strchr("\\^$.|?*+()[]{}-#/ ", *s) != NULL)
						out[(*len)++] = '\\';
					out[(*len)++] = *s;
				}
			}
		else
			expand_into(defs[i].pattern, out, cap, len);
		assert_true(*len + 1 < cap);
		out[(*len)++] = ')';
		p = e;
	}
	out[*len] = '\0';
}

/* The pattern with its lists and macros in place (static storage). */
static const char *
expand(const char *pattern)
{
	static char	buf[65536];
	size_t		len = 0;

	expand_into(pattern, buf, sizeof(buf), &len);
	return buf;
}

/* --- the oracle -------------------------------------------------------------- */

static pcre2_code *
compile(const char *pattern)
{
	pcre2_code	*re;
	PCRE2_SIZE	 off;
	int		 ec;

	re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	    PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &ec, &off, NULL);
	if (re == NULL)
		fail_msg("pattern %s does not compile (offset %zu)", pattern,
		    (size_t)off);
	(void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);	/* speed only */
	return re;
}

static int
matches(const pcre2_code *re, const char *s)
{
	static pcre2_match_data	*md;
	int			 rc;

	if (md == NULL)		/* one for the whole run, never freed */
		assert_non_null(md = pcre2_match_data_create(16, NULL));
	rc = pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
	assert_true(rc >= 0 || rc == PCRE2_ERROR_NOMATCH);
	return rc >= 0;
}

/*
 * The automaton takes no empty literal (acm_add), and an empty set or
 * clause could never be seen (rules.c registers nothing for it): none may
 * come out.
 */
static void
check_shape(const struct rules_lit_pf *pf)
{
	size_t	c, k, i;

	for (c = 0; c < pf->n; c++) {
		assert_true(pf->clause[c].n > 0);
		for (k = 0; k < pf->clause[c].n; k++) {
			assert_true(pf->clause[c].set[k]->n > 0);
			for (i = 0; i < pf->clause[c].set[k]->n; i++)
				assert_true(pf->clause[c].set[k]->s[i][0] != '\0');
		}
	}
}

/* What the prefilter decides: some clause has a literal of each of its sets in s. */
static int
accepts(const struct rules_lit_pf *pf, const char *s)
{
	size_t	c, k, i;
	int	all;

	if (pf->n == 0)
		return 1;	/* no literal: the rule is always confirmed */
	for (c = 0; c < pf->n; c++) {
		all = 1;
		for (k = 0; k < pf->clause[c].n && all; k++) {
			for (i = 0; i < pf->clause[c].set[k]->n; i++)
				if (strstr(s, pf->clause[c].set[k]->s[i]) != NULL)
					break;
			all = i < pf->clause[c].set[k]->n;
		}
		if (all)
			return 1;
	}
	return 0;
}

/* The clauses as text: sets joined by " & ", clauses by " | ". */
static const char *
show(const struct rules_lit_pf *pf)
{
	static char	buf[8192];
	size_t		c, k, i, len = 0;

	buf[0] = '\0';
	for (c = 0; c < pf->n; c++) {
		if (c > 0)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, " | ");
		for (k = 0; k < pf->clause[c].n; k++) {
			if (k > 0)
				len += (size_t)snprintf(buf + len, sizeof(buf) - len, " & ");
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "{");
			for (i = 0; i < pf->clause[c].set[k]->n; i++)
				len += (size_t)snprintf(buf + len, sizeof(buf) - len,
				    "%s%s", i ? "," : "", pf->clause[c].set[k]->s[i]);
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "}");
			assert_true(len < sizeof(buf) - 64);
		}
	}
	return buf;
}

static void
read_pf(const char *pattern, struct rules_lit_pf *pf)
{
	memset(pf, 0, sizeof(*pf));
	pf->n = rules_lit_required(pattern, pf->clause);
	assert_true(pf->n <= RULES_MAX_CLAUSE);
}

/* The same with every clause trimmed, as rules_add_prefilter registers it. */
static void
read_pf_trimmed(const char *pattern, struct rules_lit_pf *pf)
{
	size_t	c;

	read_pf(pattern, pf);
	for (c = 0; c < pf->n; c++)
		rules_lit_req_trim(&pf->clause[c]);
}

/* --- strings that match ------------------------------------------------------- */

/*
 * Texts are sequences of characters of an alphabet: the characters of the
 * pattern and of its known matches, digits and some filler, so that random
 * texts and mutations reach the pattern's words.
 */
#define MAXALPHA	2048
#define MAXC		64
#define POOL		256

struct text {
	uint16_t	c[MAXC];
	size_t		n;
};

struct gen {
	char		 alpha[MAXALPHA][5];
	uint8_t		 alen[MAXALPHA];
	size_t		 nalpha;
	struct text	 pool[POOL];	/* texts known to match */
	size_t		 npool;
};

static void
alpha_add(struct gen *g, const char *p, size_t n)
{
	size_t	i;
	char	c[5];

	memcpy(c, p, n);
	c[n] = '\0';
	if (n == 1 && c[0] >= 'A' && c[0] <= 'Z')
		c[0] = (char)(c[0] - 'A' + 'a');	/* texts are folded */
	if (n == 1 && (unsigned char)c[0] < 0x20)
		return;
	for (i = 0; i < g->nalpha; i++)
		if (strcmp(g->alpha[i], c) == 0)
			return;
	if (g->nalpha < MAXALPHA) {
		g->alen[g->nalpha] = (uint8_t)n;
		strcpy(g->alpha[g->nalpha++], c);
	}
}

static size_t
u8len(const char *p)
{
	size_t	n = 1;

	if ((unsigned char)*p >= 0x80)
		while (((unsigned char)p[n] & 0xc0) == 0x80)
			n++;
	return n;
}

static void
alpha_add_all(struct gen *g, const char *s)
{
	size_t	n;

	for (; *s; s += n) {
		n = u8len(s);
		alpha_add(g, s, n);
	}
}

/* s as a text over g's alphabet (which holds its characters). */
static void
to_text(struct gen *g, const char *s, struct text *t)
{
	size_t	n, i;

	t->n = 0;
	for (; *s && t->n < MAXC; s += n) {
		n = u8len(s);
		for (i = 0; i < g->nalpha; i++)
			if (g->alen[i] == n && memcmp(g->alpha[i], s, n) == 0)
				break;
		assert_true(i < g->nalpha);
		t->c[t->n++] = (uint16_t)i;
	}
}

static const char *
render(const struct gen *g, const struct text *t)
{
	static char	buf[MAXC * 4 + 1];
	size_t		i, len = 0, n;

	for (i = 0; i < t->n; i++) {
		n = g->alen[t->c[i]];
		memcpy(buf + len, g->alpha[t->c[i]], n);
		len += n;
	}
	buf[len] = '\0';
	return buf;
}

static void
ins(struct text *t, size_t at, const uint16_t *c, size_t n)
{
	if (t->n + n > MAXC)
		n = MAXC - t->n;
	memmove(t->c + at + n, t->c + at, (t->n - at) * sizeof(*t->c));
	memcpy(t->c + at, c, n * sizeof(*c));
	t->n += n;
}

/* A mutation of a known match, or a random text. */
static void
candidate(struct gen *g, struct text *t)
{
	const struct text	*o;
	size_t			 m, nm, a, b;
	uint16_t		 c;

	if (g->npool > 0 && rnd(10) < 8)
		*t = g->pool[rnd((uint32_t)g->npool)];
	else
		for (t->n = rnd(16), m = 0; m < t->n; m++)
			t->c[m] = (uint16_t)rnd((uint32_t)g->nalpha);
	nm = 1 + rnd(4);
	for (m = 0; m < nm; m++) {
		o = g->npool ? &g->pool[rnd((uint32_t)g->npool)] : t;
		switch (rnd(7)) {
		case 0:		/* insert a character */
			c = (uint16_t)rnd((uint32_t)g->nalpha);
			ins(t, rnd((uint32_t)t->n + 1), &c, 1);
			break;
		case 1:		/* delete one */
			if (t->n > 0) {
				a = rnd((uint32_t)t->n);
				memmove(t->c + a, t->c + a + 1,
				    (t->n - a - 1) * sizeof(*t->c));
				t->n--;
			}
			break;
		case 2:		/* replace one */
			if (t->n > 0)
				t->c[rnd((uint32_t)t->n)] =
				    (uint16_t)rnd((uint32_t)g->nalpha);
			break;
		case 3:		/* insert a piece of another match */
			if (o->n > 0) {
				a = rnd((uint32_t)o->n);
				b = a + 1 + rnd((uint32_t)(o->n - a));
				ins(t, rnd((uint32_t)t->n + 1), o->c + a, b - a);
			}
			break;
		case 4:		/* delete a range */
			if (t->n > 0) {
				a = rnd((uint32_t)t->n);
				b = a + 1 + rnd((uint32_t)(t->n - a));
				memmove(t->c + a, t->c + b, (t->n - b) * sizeof(*t->c));
				t->n -= b - a;
			}
			break;
		case 5:		/* another match before or after */
			ins(t, rnd(2) ? t->n : 0, o->c, o->n);
			break;
		default:	/* swap two neighbours */
			if (t->n > 1) {
				a = rnd((uint32_t)t->n - 1);
				c = t->c[a];
				t->c[a] = t->c[a + 1];
				t->c[a + 1] = c;
			}
			break;
		}
	}
}

static void
pool_add(struct gen *g, const struct text *t)
{
	if (g->npool < POOL)
		g->pool[g->npool++] = *t;
	else
		g->pool[rnd(POOL)] = *t;
}

/*
 * Checks the prefilters against every string that all of res match, among
 * the seeds and rounds candidates; returns how many matched.
 */
/*
 * Fails unless every match of re in s, from every start, begins with a
 * character of heads (rules_lit_heads), and PCRE2 compiled anchored finds
 * at that start what the search finds: the matching side's equivalence.
 */
static size_t	heads_checked;

static void
heads_hold(const char *what, const pcre2_code *re,
    const struct rules_lit_req *heads, const char *s)
{
	pcre2_match_data	*md, *amd;
	pcre2_code		*anch;
	PCRE2_SIZE		*ov, *aov, eoff;
	size_t			 at, len = strlen(s), n, sl;
	int			 ec;

	md = pcre2_match_data_create(4, NULL);
	amd = pcre2_match_data_create(4, NULL);
	anch = pcre2_compile((PCRE2_SPTR)what, PCRE2_ZERO_TERMINATED,
	    PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_ANCHORED, &ec, &eoff,
	    NULL);
	assert_non_null(anch);
	for (at = 0; at < len; at++) {
		if (pcre2_match(re, (PCRE2_SPTR)s, len, at, 0, md, NULL) < 0)
			continue;
		ov = pcre2_get_ovector_pointer(md);
		for (n = 0; n < heads->set[0]->n; n++) {
			sl = strlen(heads->set[0]->s[n]);
			if (ov[1] - ov[0] >= sl &&
			    memcmp(s + ov[0], heads->set[0]->s[n], sl) == 0)
				break;
		}
		if (n == heads->set[0]->n)
			fail_msg("%s: the match %.*s of %s starts otherwise", what,
			    (int)(ov[1] - ov[0]), s + ov[0], s);
		if (pcre2_match(anch, (PCRE2_SPTR)s, len, ov[0], 0, amd, NULL) < 0)
			fail_msg("%s: anchored at %zu of %s: no match", what,
			    (size_t)ov[0], s);
		aov = pcre2_get_ovector_pointer(amd);
		if (aov[0] != ov[0] || aov[1] != ov[1])
			fail_msg("%s: anchored at %zu of %s: another match", what,
			    (size_t)ov[0], s);
		heads_checked++;
	}
	pcre2_code_free(anch);
	pcre2_match_data_free(md);
	pcre2_match_data_free(amd);
}

/* Set by a test: explore checks heads_hold on every matching string. */
static const struct rules_lit_req	*explore_heads;

static size_t
explore(pcre2_code *const *res, size_t nre, const char *const *seeds,
    const struct rules_lit_pf *const *pfs, size_t npf, size_t rounds,
    const char *what)
{
	static struct gen	 g;
	struct text		 t;
	const char		*s;
	size_t			 i, k, r, found = 0;
	int			 all;

	g.nalpha = g.npool = 0;
	for (k = 0; k < npf; k++)
		check_shape(pfs[k]);
	for (i = 0; seeds[i] != NULL; i++)
		alpha_add_all(&g, seeds[i]);
	alpha_add_all(&g, what);
	alpha_add_all(&g, "0123456789 的我a1");
	for (i = 0; seeds[i] != NULL; i++) {
		to_text(&g, seeds[i], &t);
		for (k = 0; k < nre; k++)
			if (!matches(res[k], seeds[i]))
				fail_msg("%s: the seed \"%s\" does not match", what,
				    seeds[i]);
		pool_add(&g, &t);
	}
	for (r = 0; r < rounds + i; r++) {
		if (r < i)
			to_text(&g, seeds[r], &t);
		else
			candidate(&g, &t);
		s = render(&g, &t);
		for (all = 1, k = 0; k < nre && all; k++)
			all = matches(res[k], s);
		if (!all)
			continue;
		found++;
		if (explore_heads != NULL)
			heads_hold(what, res[0], explore_heads, s);
		for (k = 0; k < npf; k++)
			if (!accepts(pfs[k], s))
				fail_msg("%s matches \"%s\", which has no literal of "
				    "a set of each clause: %s", what, s, show(pfs[k]));
		if (r >= i)
			pool_add(&g, &t);
	}
	return found;
}

/* --- the cases -------------------------------------------------------------- */

struct pcase {
	const char	*pattern;	/* ${name}: defs[] */
	int		 lits;		/* literals expected (0: always confirmed) */
	const char	*match[8];	/* known matches, in normalised form */
};

static const struct pcase cases[] = {
	/* plain literals, concatenation, case */
	{ "加我微信", 1, { "加我微信", "亲加我微信吧" } },
	{ "QQ", 1, { "qq", "加qq123" } },
	{ "WeChat号", 1, { "wechat号", "我的wechat号是" } },
	{ "abc", 1, { "abc", "xabcx" } },
	/* a letter case folding changes is not in the text as written (found by review) */
	{ "Éclair", 1, { "éclair", "un éclair" } },
	{ "cafÉ", 1, { "café", "le café" } },
	/* alternation, at the top and inside groups */
	{ "微信|qq|钉钉", 1, { "微信", "qq", "钉钉", "有钉钉吗" } },
	{ "加(?:我|你)(?:微信|vx)", 1, { "加我微信", "加你vx", "加你微信" } },
	{ "(?:加|添加)我?(?:的)?(?:微信|vx)号", 1, { "加微信号", "添加我的vx号", "加的微信号" } },
	{ "(a|b)(c|d)(e|f)", 1, { "ace", "bdf", "xbcfx" } },
	{ "(?:ab|)c", 1, { "c", "abc" } },
	{ "(?:a|b|)", 0, { "", "a" } },
	{ "x(?:a|b|)y", 1, { "xy", "xay", "xby" } },
	{ "(?:微信(?:号|账号)|q(?:q|群))(?:是|为)", 1, { "微信号是", "qq为", "q群是" } },
	{ "(?<name>微|威)信", 1, { "微信", "威信" } },
	{ "(?P<n>ab)c|(?<m>de)f", 1, { "abc", "def" } },
	{ "(?>abc|ab)d", 1, { "abcd" } },
	/* a plain list of characters is a set; other classes and dots are unknown */
	{ "[abc]", 1, { "a", "c" } },
	{ "最后一[件个双]卖掉", 1, { "最后一件卖掉", "最后一双卖掉" } },
	{ "[给帮][您你]下单", 1, { "给您下单", "帮你下单" } },
	{ "[AbC]x", 1, { "ax", "cx" } },
	{ "[-a]b|[a-]c", 1, { "-b", "ab", "ac", "-c" } },
	{ "[\\.\\-]x|[a-c]y|[\\dz]w", 1, { ".x", "-x", "by", "5w", "zw" } },
	{ "[^0-9]x[[:digit:]]y", 1, { "ax1y", "微x9y" } },
	{ "[]a]bc", 1, { "]bc", "abc" } },
	{ "[\\]x]yz", 1, { "]yz", "xyz" } },
	{ "a.b", 1, { "axb", "a微b" } },
	{ ".*", 0, { "", "x" } },
	/* quantifiers */
	{ "ab?c", 1, { "ac", "abc" } },
	{ "ab*c", 1, { "ac", "abbbc" } },
	{ "ab+c", 1, { "abc", "abbbc" } },
	{ "a(?:bc)?d", 1, { "ad", "abcd" } },
	{ "a(?:bc)*d", 1, { "ad", "abcbcd" } },
	{ "a(?:bc)+d", 1, { "abcd", "abcbcd" } },
	{ "a(?:bc){0}d", 1, { "ad" } },
	{ "a(?:bc){0,2}d", 1, { "ad", "abcd", "abcbcd" } },
	{ "a(?:bc){1,2}d", 1, { "abcd", "abcbcd" } },
	{ "a(?:bc){2}d", 1, { "abcbcd" } },
	{ "(?:微信){0}qq", 1, { "qq" } },
	{ "x{0}yz", 1, { "yz" } },
	{ "ab??c|d+?e|f*+g", 1, { "ac", "de", "ddde", "g", "ffg" } },
	{ "a{,2}b", 1, { "a{,2}b" } },
	{ "a{x}b", 1, { "a{x}b" } },
	{ "\\d{11}", 0, { "13812345678" } },
	{ "(?:1[3-9]\\d{9})", 1, { "13812345678" } },
	/* escapes */
	{ "a\\.b", 1, { "a.b" } },
	{ "q\\.q|\\+86|a\\ b|c\\+\\+|\\(vx\\)", 1, { "q.q", "+86", "a b", "c++", "(vx)" } },
	{ "1\\-2\\/3\\#4", 1, { "1-2/3#4" } },
	{ "\\bqq\\b", 1, { "qq", "加 qq 吧" } },
	{ "\\Aab\\z|^cd$", 1, { "ab", "cd" } },
	{ "\\d+元\\s*包邮", 1, { "5元包邮", "10元 包邮" } },
	{ "\\w+@\\w+\\.com", 1, { "a@b.com", "abc@qq.com" } },
	{ "\\x{5fae}信", 1, { "微信" } },
	{ "\\p{Han}+信", 1, { "微信", "威威信" } },
	{ "\\Qa.b\\E|\\Qx*\\E", 1, { "a.b", "x*" } },
	{ "\\Qabc", 1, { "abc" } },
	{ "(a)\\1", 1, { "aa" } },
	{ "(a)\\g{1}b", 1, { "aab" } },
	{ "ab\\Kcd", 1, { "abcd" } },
	/* option settings */
	{ "(?i)qq", 1, { "qq" } },
	{ "(?i:Q)Q", 1, { "qq" } },
	{ "(?x) a b ", 0, { "ab" } },
	{ "(?x:a b)", 0, { "ab" } },
	{ "(?s)a.b", 1, { "a b" } },
	{ "(?|(a)|(b))c", 1, { "ac", "bc" } },
	/* lookarounds match nothing themselves */
	{ "(?<=加)微信", 1, { "加微信" } },
	{ "(?<!不)微信", 1, { "微信", "加微信" } },
	{ "微信(?=号)", 1, { "微信号" } },
	{ "微信(?!支付)", 1, { "微信", "微信号" } },
	{ "(?=.*qq)(?=.*微信).*", 0, { "qq微信", "微信qq" } },
	{ "(?<![0-9])1[3-9][0-9]{9}(?![0-9])", 1, { "13812345678", "电话13912345678" } },
	/* long literals are cut, still required */
	{ "这是一个非常非常非常非常非常非常长的需要被截断的字面量文本", 1,
	    { "这是一个非常非常非常非常非常非常长的需要被截断的字面量文本" } },
	{ "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123", 1,
	    { "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123" } },
	/* more alternatives than clauses, more sets than a clause holds */
	{ "a1|b2|c3|d4|e5|f6|g7|h8|i9|j0", 1, { "a1", "h8", "i9", "j0" } },
	{ "(?:a|b)x(?:c|d)y(?:e|f)z(?:g|h)w(?:i|j)v(?:k|l)u(?:m|n)t(?:o|p)s(?:q|r)",
	    1, { "axcyezgwivkumtosq", "bxdyfzhwjvluntpsr" } },
	/* ${list} and ${macro}, expanded as the loader does */
	{ "${wechat}", 1, { "微信", "vx", "加我weixin", "wei信" } },
	{ "${add_verb}${contact_app}", 1, { "加微信", "添加我的私人vx", "找客服企鹅",
	    "扫一下亲钉钉", "联系line号" } },
	{ "(?:${wechat}|${qq})(?:号)?(?:是|为)?${contact_id}", 1,
	    { "微信号是abc123x", "qq12345", "vx为wx123456" } },
	{ "${odd}", 1, { "q.q", "+86", "a b", "c++", "(vx)", "x#y" } },
	{ "(?:不|别)(?:用|走)?${pay}", 1, { "不用信用卡", "别花呗分期", "不网银" } },
	{ "${shop_owner}(?:的)?(?:银行卡|卡上)", 1, { "我的银行卡", "老板卡上" } },
	{ "${bad_review}|(?:给|打)(?:你|您)?(?:差|低)(?:评|分)", 1,
	    { "差评", "12315", "给你差评", "打低分" } },
	{ "${add_verb}${contact_app}|${contact_app}(?:上|里)?(?:发|传|聊)(?:您|你)|"
	    "(?:看|扫)(?:一下|下)?我(?:的)?朋友圈|加(?:我|你)?(?:微|薇|威|v)"
	    "(?!波|博|信支付)", 1,
	    { "加我微信", "微信上发你", "看一下我的朋友圈", "加v", "qq聊您" } },
	{ "(?:7|七)(?:天|日)(?:内)?(?:无理由|退|换)|无理由(?:退|换)", 1,
	    { "7天无理由", "七日内退", "无理由换" } },
	{ "^(?:哦|嗯|好的|ok)$", 1, { "哦", "嗯", "好的", "ok" } },
};

/* The first match of re in s from 0: 1 with its span, or 0. */
static int
first_match(const pcre2_code *re, const char *s, size_t *b, size_t *e)
{
	static pcre2_match_data	*md;
	PCRE2_SIZE		*ov;

	if (md == NULL)		/* one for the whole run, never freed */
		md = pcre2_match_data_create(32, NULL);
	if (pcre2_match(re, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL) < 0)
		return 0;
	ov = pcre2_get_ovector_pointer(md);
	*b = ov[0];
	*e = ov[1];
	return 1;
}

/* The alternatives of p as rules_lit_branches cuts them, joined by " / ". */
static const char *
show_branches(const char *p)
{
	static char	buf[4096];
	size_t		at[RULES_MAX_CLAUSE + 1], n, i, len = 0;

	n = rules_lit_branches(p, at);
	buf[0] = '\0';
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%.*s",
		    i > 0 ? " / " : "", (int)(at[i + 1] - 1 - at[i]), p + at[i]);
	return buf;
}

/*
 * The top-level alternatives, compiled apart by the rules: cut only at a
 * '|' outside groups, classes, escapes, \Q..\E and comments, and not at
 * all when something ties the alternatives together.
 */
static void
test_branches(void **state)
{
	static const struct {
		const char	*pattern, *want;
	} bc[] = {
		{ "abc", "abc" },
		{ "a|b(c|d)|e", "a / b(c|d) / e" },
		{ "a\\|b|c", "a\\|b / c" },
		{ "[|)]x|y", "[|)]x / y" },
		{ "\\Qa|b\\E|c", "\\Qa|b\\E / c" },
		{ "(?#x|y)a|b", "(?#x|y)a / b" },
		{ "(?<!不)微信|(?:vx|v信)", "(?<!不)微信 / (?:vx|v信)" },
		{ "(?i:a)|b", "(?i:a) / b" },
		{ "a||b", "a /  / b" },
		{ "a|b|c|d|e|f|g|h|i", "a / b / c / d / e / f / g / h|i" },
		/* tied: kept whole */
		{ "(?i)a|b", "(?i)a|b" },
		{ "(a)\\1|b", "(a)\\1|b" },
		{ "(?<n>a)\\k<n>|b", "(?<n>a)\\k<n>|b" },
		{ "(a)|(?1)b", "(a)|(?1)b" },
		{ "(?(1)a|b)|c", "(?(1)a|b)|c" },
		{ "(*UCP)a|b", "(*UCP)a|b" },
		{ "a)|b", "a)|b" },
		{ "(a|b", "(a|b" },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(bc) / sizeof(bc[0]); i++)
		assert_string_equal(show_branches(bc[i].pattern), bc[i].want);
}

/* A pattern's top-level groups opened: (?:a|b)|c is a|b|c, matched alone. */
static void
test_flatten(void **state)
{
	static const struct {
		const char	*pattern, *want;
	} fc[] = {
		{ "(?:a|b)", "a|b" },
		{ "(?:(?:a|b)|c)|d", "a|b|c|d" },
		{ "(?:a|b)c|(?:d)", "(?:a|b)c|d" },
		{ "(?:a|b)?", "(?:a|b)?" },
		{ "(?:a)(?:b)", "(?:a)(?:b)" },
		{ "(?:a|(?:b|c)d)", "a|(?:b|c)d" },
		{ "(?:[(]|\\(|\\Q(\\E)", "[(]|\\(|\\Q(\\E" },
		{ "(?:(?#)|x)", "(?#)|x" },
		{ "(?:)", "" },
		{ "(?=a|b)", "(?=a|b)" },
		{ "(?i:a|b)", "(?i:a|b)" },
		/* an option set inside reaches the alternatives after it */
		{ "(?:(?i)a|b)|c", "(?:(?i)a|b)|c" },
		{ "(?:a(?:(?i)b)|c)", "a(?:(?i)b)|c" },
		/* not cut at all */
		{ "(?:(a)\\1|b)", "(?:(a)\\1|b)" },
		{ "(?i)(?:a|b)", "(?i)(?:a|b)" },
		{ "(?:a|b", "(?:a|b" },
	};
	char	*f;
	size_t	 i;

	(void)state;
	for (i = 0; i < sizeof(fc) / sizeof(fc[0]); i++) {
		f = rules_lit_flatten(fc[i].pattern);
		assert_non_null(f);
		assert_string_equal(f, fc[i].want);
		free(f);
	}
}

/*
 * The first match of the whole pattern is the leftmost of its branches'
 * first matches, the earlier branch's on a tie: what rules_first relies
 * on. Checked on strings made from the oracle's patterns, matching or not.
 */
static void
test_branches_match_as_whole(void **state)
{
	static struct gen	 g;
	struct text		 t;
	pcre2_code		*whole, *br[RULES_MAX_CLAUSE];
	static char		 part[65536], wrap[65536 + 8];
	const char		*p, *s;
	char			*cut;
	size_t			 at[RULES_MAX_CLAUSE + 1], n, i, k, r, b, e, bb = 0, be = 0;
	size_t			 checked = 0, hits = 0;
	int			 found, any;

	(void)state;
	/* v 1: the pattern as one group, opened by rules_lit_flatten, then cut */
	for (i = 0; i < 2 * sizeof(cases) / sizeof(cases[0]); i++) {
		int	v = i % 2;

		p = expand(cases[i / 2].pattern);
		whole = compile(p);
		snprintf(wrap, sizeof(wrap), "(?:%s)", p);
		if (v && strstr(p, "\\Q") != NULL && strstr(p, "\\E") == NULL) {
			pcre2_code_free(whole);
			continue;	/* \Q runs to the end: no group around it */
		}
		cut = v ? rules_lit_flatten(wrap) : strdup(p);
		assert_non_null(cut);
		n = rules_lit_branches(cut, at);
		for (k = 0; k < n; k++) {
			snprintf(part, sizeof(part), "%.*s",
			    (int)(at[k + 1] - 1 - at[k]), cut + at[k]);
			br[k] = compile(part);
		}
		free(cut);
		g.nalpha = g.npool = 0;
		for (k = 0; cases[i / 2].match[k] != NULL; k++)
			alpha_add_all(&g, cases[i / 2].match[k]);
		alpha_add_all(&g, p);
		alpha_add_all(&g, "0123456789 的我a1");
		for (k = 0; cases[i / 2].match[k] != NULL; k++) {
			to_text(&g, cases[i / 2].match[k], &t);
			pool_add(&g, &t);
		}
		for (r = 0; r < 2000; r++) {
			candidate(&g, &t);
			s = render(&g, &t);
			found = first_match(whole, s, &b, &e);
			for (any = 0, k = 0; k < n; k++) {
				size_t	 kb, ke;

				if (first_match(br[k], s, &kb, &ke) &&
				    (!any || kb < bb)) {
					bb = kb;
					be = ke;
					any = 1;
				}
			}
			if (found != any || (found && (b != bb || e != be)))
				fail_msg("%s on \"%s\": whole %d [%zu,%zu), branches "
				    "%d [%zu,%zu)", p, s, found, found ? b : 0,
				    found ? e : 0, any, any ? bb : 0, any ? be : 0);
			checked++;
			hits += found;
			if (found)
				pool_add(&g, &t);
		}
		for (k = 0; k < n; k++)
			pcre2_code_free(br[k]);
		pcre2_code_free(whole);
	}
	assert_true(hits > 1000);
	print_message("%zu strings checked, %zu matching\n", checked, hits);
}

static void
test_never_rejects_a_match(void **state)
{
	const struct rules_lit_pf	*pfs[2];
	struct rules_lit_pf		 pf, tpf;
	pcre2_code			*re;
	const char			*p;
	size_t				 i, found, total = 0;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = expand(cases[i].pattern);
		re = compile(p);
		read_pf(p, &pf);
		read_pf_trimmed(p, &tpf);
		if (cases[i].lits != (pf.n > 0))
			fail_msg("%s: %s literals: %s", cases[i].pattern,
			    cases[i].lits ? "expected" : "unexpected", show(&pf));
		pfs[0] = &pf;
		pfs[1] = &tpf;
		found = explore(&re, 1, cases[i].match, pfs, 2, 3000, p);
		if (found < 50)
			fail_msg("%s: only %zu matching strings", cases[i].pattern, found);
		total += found;
		rules_lit_pf_clear(&pf);
		rules_lit_pf_clear(&tpf);
		pcre2_code_free(re);
	}
	print_message("%zu patterns, %zu matching strings checked\n", i, total);
}

/*
 * A near cue: the rule fires only when its pattern and its cue both match,
 * so the clauses after rules_lit_pf_and_near must pass every text that
 * both match (the cue within N characters is only a narrower case).
 */
static void
test_near(void **state)
{
	static const struct {
		const char	*pattern, *near;
		const char	*match[4];
	} nc[] = {
		{ "(?<![0-9])1[3-9][0-9]{9}(?![0-9])", "(?:加|微|v|q|电话|手机)",
		    { "加13812345678", "13812345678电话" } },
		{ "(?<![0-9])[1-9][0-9]{4,11}(?![0-9])", "(?:${wechat}|${qq})",
		    { "微信12345", "qq 123456" } },
		{ "银行卡|卡号", "(?:转|打)(?:账|款)", { "转账到银行卡", "卡号打款" } },
		{ "a|b", "c|d", { "ac", "bd" } },
		{ "xyz", "[0-9]+", { "xyz1" } },
	};
	const struct rules_lit_pf	*pfs[2];
	struct rules_lit_pf		 pf, npf, tpf;
	pcre2_code			*re[2];
	static char			 p[65536];
	size_t				 i, c, found, total = 0;

	(void)state;
	for (i = 0; i < sizeof(nc) / sizeof(nc[0]); i++) {
		snprintf(p, sizeof(p), "%s", expand(nc[i].pattern));
		re[0] = compile(p);
		re[1] = compile(expand(nc[i].near));
		read_pf(p, &pf);
		read_pf(p, &tpf);
		read_pf(expand(nc[i].near), &npf);
		rules_lit_pf_and_near(&pf, &npf);
		rules_lit_pf_and_near(&tpf, &npf);	/* near is left as it is */
		rules_lit_pf_clear(&npf);
		for (c = 0; c < tpf.n; c++)
			rules_lit_req_trim(&tpf.clause[c]);
		pfs[0] = &pf;
		pfs[1] = &tpf;
		found = explore(re, 2, nc[i].match, pfs, 2, 3000, p);
		assert_true(found >= 50);
		total += found;
		rules_lit_pf_clear(&pf);
		rules_lit_pf_clear(&tpf);
		pcre2_code_free(re[0]);
		pcre2_code_free(re[1]);
	}
	print_message("%zu pairs, %zu matching strings checked\n", i, total);
}

/* --- exact sets for simple patterns ------------------------------------------- */

static void
expect(const char *pattern, const char *want)
{
	struct rules_lit_pf	pf;

	read_pf(expand(pattern), &pf);
	if (strcmp(show(&pf), want) != 0)
		fail_msg("%s: got \"%s\", want \"%s\"", pattern, show(&pf), want);
	rules_lit_pf_clear(&pf);
}

static void
test_exact(void **state)
{
	(void)state;
	/* a literal, the whole concatenation as one, folded */
	expect("加我微信", "{加我微信}");
	expect("QQ", "{qq}");
	expect("WeChat", "{wechat}");
	/* one clause per top-level alternative */
	expect("微信|qq", "{微信} | {qq}");
	/* a group's alternatives: every combination while there are few */
	expect("加(?:我|你)(?:微信|vx)", "{加我微信,加我vx,加你微信,加你vx}");
	expect("${wechat}", "{微信,威信,薇信,维信,v信,微v,vx,wx,weixin,wei信,微xin,wechat,绿泡泡}");
	/* an optional part is one more string; a repeated one ends the run */
	expect("ab?c", "{abc,ac}");
	expect("a(?:bc)?d", "{abcd,ad}");
	expect("我不(?:太)?清楚.*", "{我不太清楚,我不清楚}");
	expect("a.{0,3}b(?:c)?d", "{a} & {bcd,bd}");
	expect("a(?:bc)+d", "{a} & {bc} & {d}");
	expect("a(?:bc){2}d", "{a} & {bc} & {d}");
	expect("a(?:bc){0}d", "{a} & {d}");
	/* an empty alternative is one more string; a class, a dot are unknown */
	expect("x(?:a|)y", "{xay,xy}");
	expect("a[0-9]b", "{a} & {b}");
	expect("a.b", "{a} & {b}");
	/* anchors and lookarounds are empty: the literal goes on across them */
	expect("^qq$", "{qq}");
	expect("\\bqq\\b", "{qq}");
	expect("(?<=加)微信(?!号)", "{微信}");
	/* escaped metacharacters are literals */
	expect("q\\.q", "{q.q}");
	expect("\\Qa.b\\E", "{a.b}");
	/* nothing to find */
	expect("[abc]+", "{a,b,c}");
	expect("[a-c]+", "");
	expect("最后一[件个](?:卖掉|出掉)", "{最后一件卖掉,最后一件出掉,最后一个卖掉,最后一个出掉}");
	expect("\\d{11}", "");
	expect(".*", "");
	expect("a?", "");
	expect("(?:a|b|)", "");
	expect("qq|\\d+", "");		/* an alternative that requires nothing */
	expect("(?x)qq", "");		/* extended mode: spaces stop being literals */
	expect("(qq", "");		/* unreadable */
	/* a literal longer than 48 bytes: its first 48, at a character boundary */
	expect("这是一个非常非常非常非常非常非常长的需要被截断的字面量文本",
	    "{这是一个非常非常非常非常非常非常}");
	/* more than 8 alternatives: the last clause takes the rest */
	expect("a1|b2|c3|d4|e5|f6|g7|h8|i9|j0",
	    "{a1} | {b2} | {c3} | {d4} | {e5} | {f6} | {g7} | {h8,i9,j0}");
}

/* Sets of common words go from a clause that has a selective set. */
static void
test_trim(void **state)
{
	struct rules_lit_pf	pf;

	(void)state;
	read_pf("你.*(?:微信)", &pf);
	assert_string_equal(show(&pf), "{你} & {微信}");
	rules_lit_req_trim(&pf.clause[0]);
	assert_string_equal(show(&pf), "{微信}");
	rules_lit_pf_clear(&pf);
	read_pf("你.*我", &pf);			/* nothing selective: kept */
	rules_lit_req_trim(&pf.clause[0]);
	assert_string_equal(show(&pf), "{你} & {我}");
	rules_lit_pf_clear(&pf);
}

/* The most selective set of the cue joins every clause. */
static void
test_and_near(void **state)
{
	struct rules_lit_pf	pf, npf;

	(void)state;
	read_pf("银行卡|卡号", &pf);
	read_pf("转账|打款", &npf);
	rules_lit_pf_and_near(&pf, &npf);
	assert_string_equal(show(&pf), "{银行卡} & {转账,打款} | {卡号} & {转账,打款}");
	assert_string_equal(show(&npf), "{转账} | {打款}");	/* left as it is */
	rules_lit_pf_clear(&pf);
	rules_lit_pf_clear(&npf);
	read_pf("\\d{11}", &pf);			/* none of its own: the cue's alone */
	read_pf("电话|手机", &npf);
	rules_lit_pf_and_near(&pf, &npf);
	assert_string_equal(show(&pf), "{电话,手机}");
	rules_lit_pf_clear(&pf);
	rules_lit_pf_clear(&npf);
	read_pf("qq", &pf);				/* a cue without literals adds nothing */
	read_pf("[0-9]+", &npf);
	rules_lit_pf_and_near(&pf, &npf);
	assert_string_equal(show(&pf), "{qq}");
	rules_lit_pf_clear(&pf);
	rules_lit_pf_clear(&npf);
}

/* A set of more than 512 literals is dropped, never cut. */
static void
test_big_set(void **state)
{
	static char	p[16384];
	size_t		i, len = 0;

	(void)state;
	len += (size_t)snprintf(p + len, sizeof(p) - len, "(?:");
	for (i = 0; i < 600; i++)
		len += (size_t)snprintf(p + len, sizeof(p) - len, "%sw%03zu",
		    i ? "|" : "", i);
	snprintf(p + len, sizeof(p) - len, ")");
	expect(p, "");
	snprintf(p + len, sizeof(p) - len, ")xyz");
	expect(p, "{xyz}");
}

/*
 * Fails each allocation in turn: a failure only loses literals (which is
 * safe: the rule is confirmed more often), never leaks (valgrind) and never
 * leaves a set that misses a match. Not with more top-level alternatives
 * than clauses: a failure there empties the last clause (test_known_gaps).
 */
static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The strings of l sorted, joined by commas into got. */
static const char *
set_str(const struct rules_lit_set *l, char *got, size_t cap)
{
	char	*str[512];
	size_t	 k;

	assert_true(l->n <= 512);
	for (k = 0; k < l->n; k++)
		str[k] = l->s[k];
	qsort(str, l->n, sizeof(*str), str_cmp);
	got[0] = '\0';
	for (k = 0; k < l->n; k++)
		snprintf(got + strlen(got), cap - strlen(got), "%s%s",
		    k ? "," : "", str[k]);
	return got;
}

/* Fails unless every match of pattern in texts, from every start, ends with a string of tail. */
static void
tail_holds(const char *pattern, const struct rules_lit_req *tail,
    const char *const *text, size_t ntext)
{
	pcre2_match_data	*md;
	pcre2_code		*re;
	PCRE2_SIZE		*ov;
	size_t			 k, n, at, len, sl;

	md = pcre2_match_data_create(4, NULL);
	re = compile(pattern);
	for (k = 0; k < ntext && text[k] != NULL; k++) {
		len = strlen(text[k]);
		for (at = 0; at < len; at++) {
			if (pcre2_match(re, (PCRE2_SPTR)text[k], len, at, 0, md,
			    NULL) < 0)
				continue;
			ov = pcre2_get_ovector_pointer(md);
			for (n = 0; n < tail->set[0]->n; n++) {
				sl = strlen(tail->set[0]->s[n]);
				if (ov[1] - ov[0] >= sl && memcmp(text[k] + ov[1] - sl,
				    tail->set[0]->s[n], sl) == 0)
					break;
			}
			if (n == tail->set[0]->n)
				fail_msg("%s: the match %.*s of %s ends otherwise",
				    pattern, (int)(ov[1] - ov[0]), text[k] + ov[0],
				    text[k]);
		}
	}
	pcre2_code_free(re);
	pcre2_match_data_free(md);
}

/*
 * What every match ends with (rules_lit_suffix), checked against PCRE2:
 * each match of each text, from every start, ends with one of the strings.
 */
static void
test_suffix(void **state)
{
	static const struct {
		const char	*pattern, *want;	/* want NULL: unknown */
		const char	*text[3];
	} sc[] = {
		{ "不(?:算|在)(?:里面|范围)", "不在范围,不在里面,不算范围,不算里面",
		    { "这不算里面", "不在范围内" } },
		{ "(?:我|我们)关(?:掉|了)(?!问题)", "我们关了,我们关掉,我关了,我关掉",
		    { "我们关了吧" } },
		{ "加.{0,4}微信(?:号)?", "微信,微信号", { "加我微信号码", "加个微信" } },
		{ "1[3-9][0-9]{9}(?![0-9])", "0,1,2,3,4,5,6,7,8,9",
		    { "电话13812345678", "139000011112" } },
		{ "(?:[a-z]{2,}|\\d+)", NULL, { "ab12" } },
		{ "(?:[a-z][a-z0-9_-]{4,18}[a-z0-9]|[1-9][0-9]{4,11})(?![a-z0-9])",
		    "0,1,2,3,4,5,6,7,8,9,a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z",
		    { "微信abc_12 号", "qq 123456" } },
		{ "(?:好评|hp)返(?:[0-9]+(?:元|块)?)?",
		    "0,0元,0块,1,1元,1块,2,2元,2块,3,3元,3块,4,4元,4块,5,5元,5块,6,6元,"
		    "6块,7,7元,7块,8,8元,8块,9,9元,9块,hp返,好评返",
		    { "好评返5元", "hp返" } },
		{ "(?:好评|hp)返[0-9]+(?:元|块)?",
		    "0,0元,0块,1,1元,1块,2,2元,2块,3,3元,3块,4,4元,4块,5,5元,5块,6,6元,"
		    "6块,7,7元,7块,8,8元,8块,9,9元,9块",
		    { "好评返5元", "hp返10" } },
		{ "(?:七|7)天(?:无理由|退)|(?<![a-z])qtwly(?![a-z])",
		    "7天无理由,7天退,qtwly,七天无理由,七天退",
		    { "7天无理由退", "qtwly" } },
		{ "(?:一张|个)?券", "一张券,个券,券", { "返您一张券" } },
		{ "a.{0,3}b*", NULL, { "axxbb" } },
		{ "xa(?:b|c)*", "b,c,xa", { "xabcb", "xa", "xac" } },
		{ "a.*", NULL, { "abc" } },
		{ "a|b?", NULL, { "ab" } },
		{ "(a)\\1", NULL, { "aa" } },
		{ "ab\\d", NULL, { "ab1" } },
		{ "[^a]b", "b", { "xb" } },
		{ "a)", NULL, { "a" } },
		{ "(*UCP)ab", NULL, { "ab" } },
	};
	struct rules_lit_req	 tail;
	char			 got[1024];
	size_t			 i, n;
	int			 ok;

	(void)state;
	for (i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		memset(&tail, 0, sizeof(tail));
		ok = rules_lit_suffix(sc[i].pattern, &tail);
		if (sc[i].want == NULL) {
			if (ok)
				fail_msg("%s: a tail of %zu strings, want none",
				    sc[i].pattern, tail.set[0]->n);
			assert_int_equal(tail.n, 0);
			continue;
		}
		if (!ok)
			fail_msg("%s: no tail, want %s", sc[i].pattern, sc[i].want);
		assert_int_equal(tail.n, 1);
		assert_string_equal(set_str(tail.set[0], got, sizeof(got)),
		    sc[i].want);
		tail_holds(sc[i].pattern, &tail, sc[i].text, 3);
		rules_lit_req_clear(&tail);
	}
	/* out of memory, a tail is still right, or there is none */
	for (n = 0;; n++) {
		memset(&tail, 0, sizeof(tail));
		allocfail_injected = 0;
		allocfail_after = (long)n;
		ok = rules_lit_suffix(sc[7].pattern, &tail);
		allocfail_after = -1;
		if (ok)
			tail_holds(sc[7].pattern, &tail, sc[7].text, 3);
		else
			assert_true(allocfail_injected);
		rules_lit_req_clear(&tail);
		if (!allocfail_injected || !allocfail_active())
			break;
	}
}

/*
 * What every match starts with (rules_lit_heads): the characters expected
 * of a few forms, then every case pattern's heads, when it has them,
 * checked against PCRE2 on the strings explore finds matching it.
 */
static void
test_heads(void **state)
{
	static const struct {
		const char	*pattern, *want;	/* want NULL: unknown */
	} sc[] = {
		{ "不(?:走|通过)平台", "不" },
		{ "(?:给您|给你)?返", "给,返" },
		{ "(?<![a-z])hpfx(?![a-z])", "h" },
		{ "(?<=[0-9一二])张图", "张" },
		{ "^号是[a-z]{3,}", "号" },
		{ "\\b(?:vx|wx)", "v,w" },
		{ "(?:微信|QQ)号", "q,微" },
		{ "[0-9]+元", "0,1,2,3,4,5,6,7,8,9" },
		{ "(?:七|7)天|(?:十五|15)天", "1,7,七,十" },
		{ "(?:亲)*您好", "亲,您" },
		{ "a{0,2}b", "a,b" },
		{ "(?:ab)+c", "a" },
		{ "(?:)?x", "x" },
		{ "a?", NULL },
		{ "a|b?", NULL },
		{ ".{0,3}微信", NULL },
		{ "\\p{Han}{2}号", NULL },
		{ "[^a]b", NULL },
		{ "\\d+", NULL },
		{ "(a)\\1", "a" },
		{ "(*UCP)ab", NULL },
		{ "a)", NULL },
		{ "Éa", NULL },
		{ "(?x)a b", NULL },
		{ "ab\\Kcd", NULL },
	};
	struct rules_lit_req	 h;
	pcre2_code		*re;
	const char		*p;
	char			 got[1024];
	size_t			 i, n, withheads = 0;
	int			 ok;

	(void)state;
	for (i = 0; i < sizeof(sc) / sizeof(sc[0]); i++) {
		memset(&h, 0, sizeof(h));
		ok = rules_lit_heads(sc[i].pattern, &h);
		if (sc[i].want == NULL) {
			if (ok)
				fail_msg("%s: %zu heads, want none",
				    sc[i].pattern, h.set[0]->n);
			assert_int_equal(h.n, 0);
			continue;
		}
		if (!ok)
			fail_msg("%s: no heads, want %s", sc[i].pattern, sc[i].want);
		assert_string_equal(set_str(h.set[0], got, sizeof(got)),
		    sc[i].want);
		rules_lit_req_clear(&h);
	}
	heads_checked = 0;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		p = expand(cases[i].pattern);
		memset(&h, 0, sizeof(h));
		if (!rules_lit_heads(p, &h))
			continue;
		withheads++;
		re = compile(p);
		explore_heads = &h;
		(void)explore(&re, 1, cases[i].match, NULL, 0, 500, p);
		explore_heads = NULL;
		pcre2_code_free(re);
		rules_lit_req_clear(&h);
	}
	assert_true(withheads > 20);
	assert_true(heads_checked > 10000);
	print_message("%zu of %zu patterns with heads, %zu matches checked\n",
	    withheads, i, heads_checked);
	/* out of memory: heads are still right, or there are none */
	for (n = 0;; n++) {
		memset(&h, 0, sizeof(h));
		allocfail_injected = 0;
		allocfail_after = (long)n;
		ok = rules_lit_heads(sc[1].pattern, &h);
		allocfail_after = -1;
		if (ok)
			assert_string_equal(h.set[0]->s[0], "给");
		else
			assert_true(allocfail_injected);
		rules_lit_req_clear(&h);
		if (!allocfail_injected || !allocfail_active())
			break;
	}
}

static void
test_alloc_failure(void **state)
{
	static const struct {
		const char	*pattern, *near;
		const char	*match[4];
	} ac[] = {
		{ "加(?:我|你)(?:微信|vx)号", NULL, { "加我微信号", "加你vx号" } },
		{ "${add_verb}${contact_app}", NULL, { "加微信", "添加我的私人vx" } },
		{ "(?:ab|cd)(?:ef|gh)|ij|kl", NULL, { "abgh", "cdef", "ij" } },
		{ "(?:a|b)x(?:c|d)y(?:e|f)z(?:g|h)w(?:i|j)v(?:k|l)u(?:m|n)t", NULL,
		    { "axcyezgwivkumt" } },
		{ "你.*(?:微信)", NULL, { "你加微信" } },
		{ "银行卡|卡号", "(?:转|打)(?:账|款)", { "转账到银行卡", "卡号打款" } },
	};
	const struct rules_lit_pf *pfs[1];
	struct rules_lit_pf	pf, npf;
	pcre2_code		*re[2];
	static char		 p[65536], np[65536];
	size_t			 i, c, nre;
	long			 n;

	(void)state;
	if (!allocfail_active())
		skip();
	for (i = 0; i < sizeof(ac) / sizeof(ac[0]); i++) {
		snprintf(p, sizeof(p), "%s", expand(ac[i].pattern));
		snprintf(np, sizeof(np), "%s", ac[i].near ? expand(ac[i].near) : "");
		re[0] = compile(p);
		re[1] = ac[i].near ? compile(np) : NULL;
		nre = ac[i].near ? 2 : 1;
		for (n = 0;; n++) {
			memset(&pf, 0, sizeof(pf));
			memset(&npf, 0, sizeof(npf));
			allocfail_injected = 0;
			allocfail_after = n;
			pf.n = rules_lit_required(p, pf.clause);
			if (ac[i].near != NULL) {
				npf.n = rules_lit_required(np, npf.clause);
				rules_lit_pf_and_near(&pf, &npf);
			}
			for (c = 0; c < pf.n; c++)
				rules_lit_req_trim(&pf.clause[c]);
			allocfail_after = -1;
			pfs[0] = &pf;
			explore(re, nre, ac[i].match, pfs, 1, 100, p);
			if (!allocfail_injected)
				assert_true(pf.n > 0);
			rules_lit_pf_clear(&pf);
			rules_lit_pf_clear(&npf);
			if (!allocfail_injected)
				break;
		}
		assert_true(n > 2);
		pcre2_code_free(re[0]);
		pcre2_code_free(re[1]);
	}
}

/*
 * Pattern forms the reader used to take for literals (each pattern matched
 * its text while its clauses rejected it): each is now read whole, or
 * leaves the rule without a prefilter, so the text is accepted.
 */
static const struct {
	const char	*pattern, *text;
} gaps[] = {
	{ "(?'m'de)f", "def" },			/* a group named with quotes */
	{ "\\x41b", "ab" },			/* \xhh without braces */
	{ "\\101b", "ab" },			/* an octal escape */
	{ "\\pLb", "ab" },			/* a one-letter property */
	{ "\\cAb", "\x01" "b" },		/* a control character */
	{ "\\N{U+5FAE}信", "微信" },		/* a code point by number */
	{ "\\QAB\\E", "ab" },			/* \Q...\E, folded as the text is */
	{ "(a)\\g1b", "aab" },			/* back-references */
	{ "(?<n>a)\\k<n>b", "aab" },
	{ "(x)a(?1)b", "xaxb" },			/* subroutine calls */
	{ "(x)a\\g<1>b", "xaxb" },
	{ "(*UCP)ab", "ab" },			/* a leading option verb */
	{ "(?#no:y)ab", "ab" },			/* a comment with a colon */
	{ "(?:ab)(*:mark|x)cd", "abcd" },	/* a mark: matches nothing */
	{ "(?<a>x)(?P=a)y(?<b>z)", "xxyz" },	/* a back-reference by name, Python's way */
	{ "[\\Qv]\\E]w", "vw" },		/* \Q...\E in a class quotes its ] */
	{ "[\\Qv]\\E]w", "]w" },
};

static void
test_known_gaps(void **state)
{
	static char		 p[16384];
	struct rules_lit_pf	 pf;
	pcre2_code		*re;
	size_t			 i, len = 0;

	(void)state;
	for (i = 0; i < sizeof(gaps) / sizeof(gaps[0]); i++) {
		re = compile(gaps[i].pattern);
		assert_true(matches(re, gaps[i].text));
		read_pf(gaps[i].pattern, &pf);
		if (!accepts(&pf, gaps[i].text))
			fail_msg("%s: the prefilter rejects %s, which it matches",
			    gaps[i].pattern, gaps[i].text);
		rules_lit_pf_clear(&pf);
		pcre2_code_free(re);
	}

	/*
	 * More top-level alternatives than clauses: the last clause takes the
	 * union of the rest, and when that union is too big (more than 512
	 * literals, or out of memory) the clause is left with no set while the
	 * count still includes it. rules.c registers nothing for it, so a
	 * message matching only those alternatives is never a candidate:
	 * chatmon refuses such a rule whose examples include "x001".
	 */
	len += (size_t)snprintf(p + len, sizeof(p) - len, "a1|b2|c3|d4|e5|f6|g7|(?:");
	for (i = 0; i < 300; i++)
		len += (size_t)snprintf(p + len, sizeof(p) - len, "%sw%03zu",
		    i ? "|" : "", i);
	len += (size_t)snprintf(p + len, sizeof(p) - len, ")|(?:");
	for (i = 0; i < 300; i++)
		len += (size_t)snprintf(p + len, sizeof(p) - len, "%sx%03zu",
		    i ? "|" : "", i);
	snprintf(p + len, sizeof(p) - len, ")");
	re = compile(p);
	assert_true(matches(re, "x001"));
	read_pf(p, &pf);
	/* rules.c confirms a rule with an empty clause on every message */
	if (pf.n != RULES_MAX_CLAUSE || pf.clause[RULES_MAX_CLAUSE - 1].n != 0)
		fail_msg("the empty last clause is gone (%s): rules.c may then "
		    "stop treating it as requiring nothing", show(&pf));
	rules_lit_pf_clear(&pf);
	pcre2_code_free(re);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact),
		cmocka_unit_test(test_trim),
		cmocka_unit_test(test_and_near),
		cmocka_unit_test(test_big_set),
		cmocka_unit_test(test_never_rejects_a_match),
		cmocka_unit_test(test_branches),
		cmocka_unit_test(test_flatten),
		cmocka_unit_test(test_branches_match_as_whole),
		cmocka_unit_test(test_near),
		cmocka_unit_test(test_suffix),
		cmocka_unit_test(test_heads),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_known_gaps),
	};

	return cmocka_run_group_tests_name("rules_lit", tests, NULL, NULL);
}
