/*
 * rulebook: packs per shop, and detect running them. The packs are files
 * written into a temporary directory; the shops are built by hand (the
 * configuration's parser of `shops:` is tested in test_config).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "chatmon/config.h"
#include "chatmon/detect.h"
#include "chatmon/rulebook.h"
#include "chatmon/rules.h"
#include "chatmon/util.h"
#include "chatmon/window.h"

/* The top-level pack: a block, a flag, and a window rule. */
static const char base_yaml[] =
    "- rule: b.contact\n"
    "  category: offplatform\n  severity: critical\n  action: block\n"
    "  window: true\n  message: m\n"
    "  pattern: '加我.{0,4}?微信[a-z0-9]{3,}'\n"
    "  examples: {match: [加我微信abc123], no_match: [加我]}\n"
    "- rule: b.rude\n"
    "  category: etiquette\n  severity: info\n  action: flag\n"
    "  pattern: '不知道'\n"
    "  examples: {match: [我不知道], no_match: [知道]}\n";

/* A shop's pack of one file: a block and a window rule of its own. */
static const char cos_yaml[] =
    "- rule: c.fake\n"
    "  category: brand\n  severity: critical\n  action: block\n  message: m\n"
    "  pattern: '假货'\n"
    "  examples: {match: [这是假货], no_match: [真货]}\n"
    "- rule: c.coupon\n"
    "  category: offplatform\n  severity: warn\n  action: warn\n"
    "  window: true\n  message: m\n"
    "  pattern: '优惠.{0,4}?码[0-9]{4}'\n"
    "  examples: {match: [优惠码1234], no_match: [优惠]}\n";

/* A pack of a directory. */
static const char brand_yaml[] =
    "- rule: d.rival\n"
    "  category: brand\n  severity: warn\n  action: warn\n  message: m\n"
    "  pattern: '京东更便宜'\n"
    "  examples: {match: [京东更便宜], no_match: [京东]}\n";

/* Defines the top-level pack's b.rude again. */
static const char dup_yaml[] =
    "- rule: x.other\n"
    "  category: etiquette\n  severity: info\n  action: flag\n"
    "  pattern: '随便'\n"
    "  examples: {match: [随便], no_match: [便]}\n"
    "- rule: b.rude\n"
    "  category: etiquette\n  severity: info\n  action: flag\n"
    "  pattern: '不晓得'\n"
    "  examples: {match: [不晓得], no_match: [晓得]}\n";

struct fixture {
	char	dir[64];
	char	base[128], cos[128], brand[128], dup[128];
	char	brand_file[160], base_file[160];
};

static void
write_file(const char *path, const char *text)
{
	FILE	*f;

	assert_non_null(f = fopen(path, "w"));
	fputs(text, f);
	fclose(f);
}

static int
setup(void **state)
{
	struct fixture	*fx;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	*state = fx;
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_rulebook.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->base, sizeof(fx->base), "%s/rules.d", fx->dir);
	snprintf(fx->base_file, sizeof(fx->base_file), "%s/base.yaml", fx->base);
	snprintf(fx->cos, sizeof(fx->cos), "%s/cosmetics.yaml", fx->dir);
	snprintf(fx->brand, sizeof(fx->brand), "%s/brand.d", fx->dir);
	snprintf(fx->brand_file, sizeof(fx->brand_file), "%s/brand.yaml", fx->brand);
	snprintf(fx->dup, sizeof(fx->dup), "%s/dup.yaml", fx->dir);
	if (mkdir(fx->base, 0700) == -1 || mkdir(fx->brand, 0700) == -1)
		return -1;
	write_file(fx->base_file, base_yaml);
	write_file(fx->cos, cos_yaml);
	write_file(fx->brand_file, brand_yaml);
	write_file(fx->dup, dup_yaml);
	return 0;
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	unlink(fx->base_file);
	unlink(fx->brand_file);
	unlink(fx->cos);
	unlink(fx->dup);
	rmdir(fx->base);
	rmdir(fx->brand);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

/* A shop as the configuration would give it; the strings are the caller's. */
static struct config_shop
shop(const char *id, char **rules, size_t nrules, char **off, size_t noff,
    size_t line)
{
	struct config_shop	s;

	memset(&s, 0, sizeof(s));
	s.id = (char *)(uintptr_t)id;
	s.rules.v = rules;
	s.rules.n = nrules;
	s.rules_off.v = off;
	s.rules_off.n = noff;
	s.line = line;
	return s;
}

static void
config_of(struct config *cfg, struct fixture *fx, struct config_shop *shops,
    size_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->file = (char *)(uintptr_t)"/etc/chatmon/chatmond.yaml";
	cfg->rules = fx->base;
	cfg->shops = shops;
	cfg->nshops = n;
}

/*
 * tmall: cosmetics.yaml and brand.d, b.rude off; jd: cosmetics.yaml;
 * plain: nothing of its own.
 */
struct book {
	char			*tmall_rules[2], *jd_rules[1], *tmall_off[1];
	struct config_shop	 shops[3];
	struct config		 cfg;
	struct rulebook		*b;
	struct detect		*d;
};

static void
book_load(struct book *bk, struct fixture *fx)
{
	struct window_conf	wc = { 3, 60000, 512, 100, 0 };
	struct sbuf		errs;

	bk->tmall_rules[0] = fx->cos;
	bk->tmall_rules[1] = fx->brand;
	bk->jd_rules[0] = fx->cos;
	bk->tmall_off[0] = (char *)(uintptr_t)"b.rude";
	bk->shops[0] = shop("tmall", bk->tmall_rules, 2, bk->tmall_off, 1, 10);
	bk->shops[1] = shop("jd", bk->jd_rules, 1, NULL, 0, 20);
	bk->shops[2] = shop("plain", NULL, 0, NULL, 0, 30);
	config_of(&bk->cfg, fx, bk->shops, 3);
	sbuf_init(&errs);
	bk->b = rulebook_load(&bk->cfg, 0, &errs);
	if (bk->b == NULL)
		fprintf(stderr, "%s", sbuf_str(&errs));
	assert_non_null(bk->b);
	assert_int_equal(errs.len, 0);
	sbuf_free(&errs);
	assert_non_null(bk->d = detect_new(bk->b, &wc));
}

static void
book_free(struct book *bk)
{
	detect_free(bk->d);
	rulebook_free(bk->b);
}

/* The turn's hits' rule ids, space-separated, into buf. */
static const char *
ids(struct book *bk, const char *shop_id, const char *conv, const char *text,
    int64_t now, char *buf, size_t len)
{
	const struct detect_hit	*dh;
	ssize_t			 n, i;
	size_t			 at = 0;

	n = detect_turn(bk->d, RULES_AGENT, "", shop_id, conv, strlen(conv), text,
	    strlen(text), now, &dh);
	assert_true(n >= 0);
	buf[0] = '\0';
	for (i = 0; i < n; i++)
		at += (size_t)snprintf(buf + at, len - at, "%s%s%s", i ? " " : "",
		    dh[i].hit.rule, dh[i].turns > 1 ? "+" : "");
	return buf;
}

/* A pack two shops name is compiled once; a shop that adds nothing is no shop. */
static void
test_packs_once(void **state)
{
	struct book	bk;

	book_load(&bk, *state);
	assert_int_equal(rulebook_packs(bk.b), 3);	/* rules.d, cosmetics.yaml, brand.d */
	assert_int_equal(rulebook_depth(bk.b), 3);
	assert_int_equal(rulebook_count(bk.b), 2);
	assert_non_null(rulebook_base(bk.b));
	assert_non_null(rulebook_shop(bk.b, "tmall"));
	assert_non_null(rulebook_shop(bk.b, "jd"));
	assert_null(rulebook_shop(bk.b, "plain"));
	assert_null(rulebook_shop(bk.b, "nosuch"));
	assert_null(rulebook_shop(bk.b, ""));
	/* the same compiled pack in both shops */
	assert_ptr_equal(rulebook_shop_pack(rulebook_shop(bk.b, "tmall"), 1),
	    rulebook_shop_pack(rulebook_shop(bk.b, "jd"), 1));
	assert_ptr_equal(rulebook_shop_pack(rulebook_shop(bk.b, "jd"), 0),
	    rulebook_base(bk.b));
	book_free(&bk);
}

/* A shop's block hits in that shop only; no shop and unknown shops run the top level. */
static void
test_shop_only(void **state)
{
	struct book	bk;
	char		buf[256];

	book_load(&bk, *state);
	assert_string_equal(ids(&bk, "jd", "", "这是假货", 1, buf, sizeof(buf)), "c.fake");
	assert_string_equal(ids(&bk, "tmall", "", "这是假货", 1, buf, sizeof(buf)), "c.fake");
	assert_string_equal(ids(&bk, "", "", "这是假货", 1, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "plain", "", "这是假货", 1, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "nosuch", "", "这是假货", 1, buf, sizeof(buf)), "");
	/* a directory pack: tmall's alone */
	assert_string_equal(ids(&bk, "tmall", "", "京东更便宜", 1, buf, sizeof(buf)), "d.rival");
	assert_string_equal(ids(&bk, "jd", "", "京东更便宜", 1, buf, sizeof(buf)), "");
	/* the packs' hits merged as one pack orders them: longest first */
	assert_string_equal(ids(&bk, "jd", "", "假货我不知道", 1, buf, sizeof(buf)),
	    "b.rude c.fake");
	assert_string_equal(ids(&bk, "jd", "", "不知道京东更便宜是假货", 1, buf,
	    sizeof(buf)), "b.rude c.fake");
	book_free(&bk);
}

/* rules_off switches a top-level rule off in that shop only. */
static void
test_rules_off(void **state)
{
	struct book	bk;
	char		buf[256];

	book_load(&bk, *state);
	assert_string_equal(ids(&bk, "", "", "我不知道", 1, buf, sizeof(buf)), "b.rude");
	assert_string_equal(ids(&bk, "jd", "", "我不知道", 1, buf, sizeof(buf)), "b.rude");
	assert_string_equal(ids(&bk, "plain", "", "我不知道", 1, buf, sizeof(buf)), "b.rude");
	assert_string_equal(ids(&bk, "tmall", "", "我不知道", 1, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "tmall", "", "我不知道，假货", 1, buf, sizeof(buf)),
	    "c.fake");
	assert_int_equal(rulebook_shop_off(rulebook_shop(bk.b, "tmall"), "b.rude"), 1);
	assert_int_equal(rulebook_shop_off(rulebook_shop(bk.b, "tmall"), "c.fake"), 0);
	assert_int_equal(rulebook_shop_off(rulebook_shop(bk.b, "jd"), "b.rude"), 0);
	book_free(&bk);
}

/* Window rules of a shop's pack across a speaker's turns, and the top level's beside them. */
static void
test_window(void **state)
{
	struct book	bk;
	char		buf[256];

	book_load(&bk, *state);
	/* the shop's window rule: its shop only */
	assert_string_equal(ids(&bk, "jd", "c1", "给您个优惠", 1, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "jd", "c1", "码6688", 2, buf, sizeof(buf)), "c.coupon+");
	assert_string_equal(ids(&bk, "", "c2", "给您个优惠", 1, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "", "c2", "码6688", 2, buf, sizeof(buf)), "");
	/* the top level's window rule in a shop's turns (its note is the first) */
	assert_string_equal(ids(&bk, "tmall", "c3", "亲，加我", 1, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "tmall", "c3", "微信abc123", 2, buf, sizeof(buf)),
	    "b.contact+");
	/* both packs' window rules over the same turns */
	assert_string_equal(ids(&bk, "jd", "c4", "加我", 1, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "jd", "c4", "微信abc123优惠", 2, buf, sizeof(buf)),
	    "b.contact+");
	assert_string_equal(ids(&bk, "jd", "c4", "码1234", 3, buf, sizeof(buf)),
	    "c.coupon+");
	/* clean turns of a shop: nothing from any pack's window */
	assert_string_equal(ids(&bk, "jd", "c5", "亲，您好", 1, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "jd", "c5", "今天下单明天发货", 2, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "jd", "c5", "放心吧", 3, buf, sizeof(buf)), "");
	/* the same turns with no shop are what they always were */
	assert_string_equal(ids(&bk, "", "c6", "亲，加我", 1, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "", "c6", "微信abc123", 2, buf, sizeof(buf)),
	    "b.contact+");
	book_free(&bk);
}

/* A new book with deeper shops: the kept turns go, turns then run as before. */
static void
test_set_book(void **state)
{
	struct fixture		*fx = *state;
	struct window_conf	 wc = { 3, 60000, 512, 100, 0 };
	struct book		 bk;
	struct config		 cfg;
	struct rulebook		*plain;
	struct sbuf		 errs;
	char			 buf[256];

	book_load(&bk, fx);
	config_of(&cfg, fx, NULL, 0);
	sbuf_init(&errs);
	assert_non_null(plain = rulebook_load(&cfg, 0, &errs));
	sbuf_free(&errs);
	assert_int_equal(rulebook_packs(plain), 1);
	assert_int_equal(rulebook_depth(plain), 1);
	detect_free(bk.d);
	assert_non_null(bk.d = detect_new(plain, &wc));
	assert_string_equal(ids(&bk, "jd", "c1", "这是假货", 1, buf, sizeof(buf)), "");
	detect_set_book(bk.d, bk.b);
	assert_string_equal(ids(&bk, "jd", "c1", "这是假货", 2, buf, sizeof(buf)), "c.fake");
	assert_string_equal(ids(&bk, "jd", "c1", "给您个优惠", 3, buf, sizeof(buf)), "");
	assert_string_equal(ids(&bk, "jd", "c1", "码6688", 4, buf, sizeof(buf)), "c.coupon+");
	detect_set_book(bk.d, plain);
	assert_string_equal(ids(&bk, "jd", "c1", "这是假货", 5, buf, sizeof(buf)), "");
	book_free(&bk);
	rulebook_free(plain);
}

/* rules_match's order, for the packs' hits put together by hand. */
static int
hit_cmp(const void *a, const void *b)
{
	return rules_hit_order(a, b);
}

/*
 * Random turns of tmall (three packs, b.rude off): detect_turn, with its
 * window pass skipped on the notes' word, finds what each pack finds when
 * its window pass runs every time, in one pack's order, less b.rude.
 */
static void
test_oracle(void **state)
{
	static const char *const pieces[] = {
		"加", "我", "加我", "微", "信", "微信", "abc", "123", "优惠",
		"微信abc", "码1234", "优惠码", "加我微", "信a1b2",
		"码", "12", "34", "假", "货", "假货", "不知道", "京东", "更便宜",
		"，", "。。。。", " ", "亲", "好的", "一三八", "\xf0\x9f\x98\x80",
	};
	struct fixture		*fx = *state;
	struct window_conf	 wc = { 3, 60000, 512, 100, 0 };
	struct book		 bk;
	struct rules		*or[3];
	struct window		*w;
	struct sbuf		 errs;
	struct rules_hit	 want[64];
	const struct rules_hit	*h;
	const struct detect_hit	*dh;
	const char		*joined;
	char			 text[256], conv[8], *cos[1] = { fx->cos };
	const size_t		*starts;
	size_t			 i, j, k, p, n, na, len, jlen, last, nturns, windows = 0;
	size_t			 ns;
	ssize_t			 got;
	uint32_t		 x = 20261205, cp;

	book_load(&bk, fx);
	sbuf_init(&errs);
	assert_non_null(or[0] = rules_load_dir(fx->base, 0, &errs));
	assert_non_null(or[1] = rules_load_files(cos, 1, 0, &errs));
	assert_non_null(or[2] = rules_load_dir(fx->brand, 0, &errs));
	sbuf_free(&errs);
	assert_non_null(w = window_new(&wc));
	for (i = 0; i < 8000; i++) {
		len = 0;
		x = x * 1103515245u + 12345u;
		for (j = 1 + (x >> 16) % 4; j > 0; j--) {
			x = x * 1103515245u + 12345u;
			k = (x >> 16) % UTIL_NELEM(pieces);
			if (len + strlen(pieces[k]) + 1 >= sizeof(text))
				break;
			memcpy(text + len, pieces[k], strlen(pieces[k]));
			len += strlen(pieces[k]);
		}
		text[len] = '\0';
		x = x * 1103515245u + 12345u;
		snprintf(conv, sizeof(conv), "r%u", (x >> 16) % 2);
		/* the oracle: every pack alone, then every pack's window pass */
		n = 0;
		for (p = 0; p < 3; p++) {
			k = rules_match(or[p], RULES_AGENT, text, len, &h);
			for (j = 0; j < k; j++)
				if (strcmp(h[j].rule, "b.rude") != 0)
					want[n++] = h[j];
		}
		qsort(want, n, sizeof(*want), hit_cmp);
		na = n;
		assert_int_equal(window_add(w, conv, strlen(conv), RULES_AGENT, "",
		    text, len, (int64_t)i * 10, &joined, &jlen, &last, &nturns), 0);
		for (p = 0; p < 3 && nturns > 1; p++) {
			k = rules_match_window(or[p], RULES_AGENT, joined, jlen,
			    (uint32_t)util_utf8_count(joined, last), &h);
			for (j = 0; j < k; j++)
				if (strcmp(h[j].rule, "b.rude") != 0)
					want[n++] = h[j];
		}
		qsort(want + na, n - na, sizeof(*want), hit_cmp);
		windows += n - na;
		got = detect_turn(bk.d, RULES_AGENT, "", "tmall", conv, strlen(conv),
		    text, len, (int64_t)i * 10, &dh);
		assert_int_equal(got, (ssize_t)n);
		starts = window_starts(w, &ns);
		for (j = 0; j < n; j++) {
			assert_string_equal(dh[j].hit.rule, want[j].rule);
			assert_int_equal(dh[j].turns > 1, j >= na);
			cp = 0;
			if (j >= na) {
				/* across turns: cut to the turns the match spans */
				for (k = 0; k + 1 < ns && util_utf8_count(joined,
				    starts[k + 1]) <= want[j].start; k++)
					;
				cp = (uint32_t)util_utf8_count(joined, starts[k]);
				assert_int_equal(dh[j].turns, ns - k);
				assert_int_equal(dh[j].text_len, jlen - starts[k]);
			}
			assert_int_equal(dh[j].hit.start, want[j].start - cp);
			assert_int_equal(dh[j].hit.end, want[j].end - cp);
		}
	}
	print_message("%zu window hits\n", windows);
	assert_true(windows > 20);	/* the window passes did find things */
	window_free(w);
	for (p = 0; p < 3; p++)
		rules_free(or[p]);
	book_free(&bk);
}

/* How many times line occurs in s. */
static size_t
count(const char *s, const char *line)
{
	size_t	n = 0;

	for (; (s = strstr(s, line)) != NULL; s += strlen(line))
		n++;
	return n;
}

/* An id in two packs one shop runs: FILE:LINE of the later, said once however many shops. */
static void
test_duplicate(void **state)
{
	struct fixture		*fx = *state;
	char			*dup[1] = { fx->dup }, *cos[1] = { fx->cos };
	struct config_shop	 shops[3];
	struct config		 cfg;
	struct sbuf		 errs;
	char			 want[512];

	shops[0] = shop("a", dup, 1, NULL, 0, 5);
	shops[1] = shop("b", dup, 1, NULL, 0, 9);
	shops[2] = shop("c", cos, 1, NULL, 0, 13);	/* fine alone */
	config_of(&cfg, fx, shops, 3);
	sbuf_init(&errs);
	assert_null(rulebook_load(&cfg, 0, &errs));
	snprintf(want, sizeof(want), "%s:7: rule b.rude is already defined in %s\n",
	    fx->dup, fx->base);
	if (count(sbuf_str(&errs), want) != 1)
		fprintf(stderr, "%s", sbuf_str(&errs));
	assert_int_equal(count(sbuf_str(&errs), want), 1);
	assert_int_equal(errs.lines, 1);
	sbuf_free(&errs);

	/* the same pack twice in one shop is that pack once, no error */
	cos[0] = fx->cos;
	{
		char	*twice[2] = { fx->cos, fx->cos };
		struct rulebook	*b;

		shops[0] = shop("a", twice, 2, NULL, 0, 5);
		config_of(&cfg, fx, shops, 1);
		sbuf_init(&errs);
		assert_non_null(b = rulebook_load(&cfg, 0, &errs));
		assert_int_equal(rulebook_shop_packs(rulebook_shop(b, "a")), 2);
		rulebook_free(b);
		sbuf_free(&errs);
	}
}

/* A rules_off id none of the shop's packs has; another shop's pack does not count. */
static void
test_unknown_off(void **state)
{
	struct fixture		*fx = *state;
	char			*cos[1] = { fx->cos };
	char			*off_a[2] = { (char *)(uintptr_t)"nosuch", (char *)(uintptr_t)"b.rude" };
	char			*off_b[1] = { (char *)(uintptr_t)"c.fake" };
	struct config_shop	 shops[2];
	struct config		 cfg;
	struct sbuf		 errs;

	shops[0] = shop("a", cos, 1, off_a, 2, 12);
	shops[1] = shop("b", NULL, 0, off_b, 1, 17);	/* c.fake is only in a's packs */
	config_of(&cfg, fx, shops, 2);
	sbuf_init(&errs);
	assert_null(rulebook_load(&cfg, 0, &errs));
	assert_string_equal(sbuf_str(&errs),
	    "/etc/chatmon/chatmond.yaml:12: shops.a: rules_off: no rule nosuch in the shop's packs\n"
	    "/etc/chatmon/chatmond.yaml:17: shops.b: rules_off: no rule c.fake in the shop's packs\n");
	sbuf_free(&errs);
}

/* A shop's pack that does not load: its errors, and no book. */
static void
test_bad_pack(void **state)
{
	struct fixture		*fx = *state;
	char			 missing[160], want[400];
	char			*rules[1] = { missing };
	size_t			 line[1] = { 5 };
	struct config_shop	 shops[1];
	struct config		 cfg;
	struct sbuf		 errs;

	snprintf(missing, sizeof(missing), "%s/missing.yaml", fx->dir);
	shops[0] = shop("a", rules, 1, NULL, 0, 3);
	shops[0].rules_line = line;
	config_of(&cfg, fx, shops, 1);
	sbuf_init(&errs);
	assert_null(rulebook_load(&cfg, 0, &errs));
	/* at the item that names it, and not as a directory */
	snprintf(want, sizeof(want), "/etc/chatmon/chatmond.yaml:5: shops.a: "
	    "rules: %s: cannot open: No such file or directory\n", missing);
	assert_string_equal(sbuf_str(&errs), want);
	sbuf_free(&errs);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_packs_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shop_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rules_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_book, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oracle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_pack, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
