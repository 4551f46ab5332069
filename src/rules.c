/* rules: rule files loaded, checked and compiled once; messages matched against them (pure; reads only rule files). */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <yaml.h>

#include "chatmon/acm.h"
#include "chatmon/normalize.h"
#include "chatmon/rules.h"
#include "chatmon/yamlfile.h"

/*
 * A message is normalised once (docs/rules.md), scanned once by one
 * Aho-Corasick automaton holding every rule's required literals, and only
 * the rules whose literals occur are confirmed with their own PCRE2 regex.
 * Everything a match needs (normalisers, match data, the candidate bitmap,
 * the hit array) is made at load time, so matching allocates nothing once
 * the normalisers' buffers have grown.
 */

#define RULES_MAX_SET		512	/* literals in one required set */
#define RULES_MAX_CROSS		64	/* strings of a concatenation kept exact */
#define RULES_MAX_AND		8	/* required sets of one clause */
#define RULES_MAX_CLAUSE	8	/* clauses (top-level alternatives) of one rule */
#define RULES_MAX_LIT		48	/* bytes of a literal kept (a prefix is still required) */
#define RULES_MATCH_LIMIT	200000	/* PCRE2 steps: a bad pattern cannot stall the loop */
#define RULES_MAX_EXPANDED	262144	/* bytes of a pattern with its lists and macros */
#define RULES_MAX_FILE		(4 << 20)	/* bytes of one rule file */
#define RULES_MAX_TRIES		64	/* matches of one rule tried against near */
#define RULES_NMASKS		16	/* every combination of the normalisation steps */

struct rules_example_src {
	char	*text;
	size_t	 line;
	int	 want;		/* 1: match, 0: no_match */
};

struct rule {
	struct rules_hit	 proto;		/* id, category, message, severity, action */
	unsigned		 roles;		/* enum rules_role bits */
	unsigned		 steps;		/* normalisation steps */
	int			 enabled;
	int			 always;	/* no required literal: always confirmed */
	uint64_t		 need[RULES_MAX_CLAUSE];	/* per clause: the bits of its sets */
	size_t			 nclause;
	pcre2_code		*re;
	pcre2_code		*near_re;
	uint32_t		 near_within;	/* code points either side */
	size_t			 whole_max;	/* whole: the longest word, normalised (bytes) */
	pcre2_code		**unless;
	size_t			 nunless;
	char			*file;
	size_t			 line;
	struct rules_example_src *ex;
	size_t			 nex;
};

struct rules_def {			/* a list or a macro, by name */
	char	*name;
	int	 is_list;
	char	**items;		/* list items */
	size_t	 nitems;
	char	*pattern;		/* macro */
	char	*file;
	size_t	 line;
	int	 visiting;		/* macro expansion: cycle detection */
};

struct rules {
	struct rule		*rule;
	size_t			 nrule;
	struct rules_def	*def;
	size_t			 ndef;
	struct acm		*acm;
	/*
	 * Every (literal, rule, set bit) of every rule; the automaton knows
	 * each distinct literal once, as the index of its first pair (the
	 * pairs are sorted by literal), and one report marks all its rules.
	 */
	char			**lit;		/* while loading only */
	uint32_t		*lit_rule;
	uint64_t		*lit_bit;
	uint32_t		*lit_end;	/* one past the last pair of the literal */
	size_t			 nlit;
	int			 jit;
	size_t			 enabled;
	/* match-time scratch, sized at load */
	struct norm		*norm[RULES_NMASKS];
	const char		*ntext[RULES_NMASKS];
	size_t			 nlen[RULES_NMASKS];
	const uint32_t		*nmap[RULES_NMASKS];
	unsigned		 nvalid;	/* masks normalised for this message */
	uint64_t		*seen;		/* per rule: the sets a literal of which occurred */
	uint32_t		*touched;	/* the rules whose seen is not 0 */
	size_t			 ntouched;
	uint32_t		*always;	/* enabled rules without literals */
	size_t			 nalways;
	struct rules_hit	*hits;
	pcre2_match_data	*md;
	pcre2_match_context	*mctx;
	const char		*otext;		/* original, for the hits */
	size_t			 olen;
	int			 oom;
};

/* --- small helpers --------------------------------------------------------- */

static char *
rules_strndup(const char *s, size_t n)
{
	char	*p;

	if ((p = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void
rules_err(struct sbuf *errs, const char *file, size_t line, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line)
		sbuf_line(errs, "%s:%zu: %s", file, line, msg);
	else
		sbuf_line(errs, "%s: %s", file, msg);
}

const char *
rules_severity_name(enum rules_severity s)
{
	static const char *const n[] = { "info", "warn", "critical" };

	return (unsigned)s < UTIL_NELEM(n) ? n[s] : "?";
}

const char *
rules_action_name(enum rules_action a)
{
	static const char *const n[] = { "flag", "warn", "block" };

	return (unsigned)a < UTIL_NELEM(n) ? n[a] : "?";
}

/* --- literal sets -------------------------------------------------------- */

/*
 * What a piece of a pattern tells the prefilter: `exact`, when known, is
 * every string the piece can match (a small finite set); `req` is a list of
 * literal sets such that every match contains a literal of each set (加我
 * ... 微信: one of {加, 添加} and one of {微信, vx}). A rule is a candidate
 * only when a literal of every one of its sets occurs, so a common word in
 * one set costs little when another set is rare. A NULL exact set, or an
 * empty list, means "unknown": the piece constrains nothing.
 */
struct rules_lset {
	char	**s;
	size_t	  n;
};

struct rules_req {
	struct rules_lset	*set[RULES_MAX_AND];
	size_t			 n;
};

struct rules_info {
	struct rules_lset	*exact;
	struct rules_req	 req;
};

static void
rules_lset_free(struct rules_lset *l)
{
	size_t	i;

	if (l == NULL)
		return;
	for (i = 0; i < l->n; i++)
		free(l->s[i]);
	free(l->s);
	free(l);
}

static struct rules_lset *
rules_lset_new(void)
{
	return calloc(1, sizeof(struct rules_lset));
}

/* Adds a copy of s (truncated to RULES_MAX_LIT bytes at a UTF-8 boundary); -1 on ENOMEM or overflow. */
static int
rules_lset_add(struct rules_lset *l, const char *s, size_t n)
{
	char	**ns;
	size_t	  i;

	if (n > RULES_MAX_LIT) {
		n = RULES_MAX_LIT;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	for (i = 0; i < l->n; i++)
		if (strlen(l->s[i]) == n && memcmp(l->s[i], s, n) == 0)
			return 0;
	if (l->n >= RULES_MAX_SET)
		return -1;
	if ((ns = realloc(l->s, (l->n + 1) * sizeof(*ns))) == NULL)
		return -1;
	l->s = ns;
	if ((l->s[l->n] = rules_strndup(s, n)) == NULL)
		return -1;
	l->n++;
	return 0;
}

static struct rules_lset *
rules_lset_one(const char *s, size_t n)
{
	struct rules_lset	*l;

	if ((l = rules_lset_new()) == NULL || rules_lset_add(l, s, n) == -1) {
		rules_lset_free(l);
		return NULL;
	}
	return l;
}

/*
 * The characters of everyday chat (the most frequent in Chinese text, and
 * the polite forms of customer service): as rare as one Latin letter.
 */
static const char rules_common[] =
    "的一是不了我你您亲在有人这个们中来上大为和到以说时要就出会可也能对下"
    "过后得没好吗呢吧啊哦嗯呀哈么那都看还把给让用去发加买货单天号请问哪";

/* A character's weight: how rarely it occurs in chat, roughly. */
static size_t
rules_char_weight(const char *p, size_t n)
{
	char	c[5];

	if (n == 1)
		return 1;
	memcpy(c, p, n);
	c[n] = '\0';
	return strstr(rules_common, c) != NULL ? 1 : 3;
}

/*
 * How selective a set is: its weakest literal's weight (a rare Chinese
 * character counts as three Latin letters, a common one as one). 0 for an
 * empty or unknown set.
 */
static size_t
rules_lset_score(const struct rules_lset *l)
{
	size_t		 i, w, n, m = SIZE_MAX;
	const char	*p;

	if (l == NULL || l->n == 0)
		return 0;
	for (i = 0; i < l->n; i++) {
		for (w = 0, p = l->s[i]; *p; p += n) {
			for (n = 1; ((unsigned char)p[n] & 0xc0) == 0x80; n++)
				;
			w += rules_char_weight(p, n);
		}
		if (w < m)
			m = w;
	}
	return m;
}

/* a better than b: more selective, then fewer literals. */
static int
rules_lset_better(const struct rules_lset *a, const struct rules_lset *b)
{
	size_t	sa = rules_lset_score(a), sb = rules_lset_score(b);

	return sa > sb || (sa == sb && sa > 0 && a->n < b->n);
}

static void
rules_req_clear(struct rules_req *q)
{
	size_t	i;

	for (i = 0; i < q->n; i++)
		rules_lset_free(q->set[i]);
	q->n = 0;
}

/* Adds a set (stolen) to the list; when full, the weakest set goes. */
static void
rules_req_add(struct rules_req *q, struct rules_lset *l)
{
	size_t	i, w = 0;

	if (rules_lset_score(l) == 0) {
		rules_lset_free(l);
		return;
	}
	if (q->n < RULES_MAX_AND) {
		q->set[q->n++] = l;
		return;
	}
	for (i = 1; i < q->n; i++)
		if (rules_lset_better(q->set[w], q->set[i]))
			w = i;
	if (rules_lset_better(l, q->set[w])) {
		rules_lset_free(q->set[w]);
		q->set[w] = l;
	} else
		rules_lset_free(l);
}

/* Moves every set of src to dst. */
static void
rules_req_merge(struct rules_req *dst, struct rules_req *src)
{
	size_t	i;

	for (i = 0; i < src->n; i++)
		rules_req_add(dst, src->set[i]);
	src->n = 0;
}

/*
 * Drops the sets of common words (你, 我, 加) from a clause that has a
 * selective set: each occurrence of a common word costs a report from the
 * automaton in almost every message, and the selective set alone already
 * keeps the rule from being a candidate.
 */
static void
rules_req_trim(struct rules_req *q)
{
	size_t	i, k = 0, strong = 0;

	for (i = 0; i < q->n; i++)
		if (rules_lset_score(q->set[i]) >= 6)
			strong = 1;
	if (!strong)
		return;
	for (i = 0; i < q->n; i++) {
		if (rules_lset_score(q->set[i]) <= 1)
			rules_lset_free(q->set[i]);
		else
			q->set[k++] = q->set[i];
	}
	q->n = k;
}

/* The index of the most selective set, or -1. */
static ssize_t
rules_req_best(const struct rules_req *q)
{
	size_t	i, b = 0;

	if (q->n == 0)
		return -1;
	for (i = 1; i < q->n; i++)
		if (rules_lset_better(q->set[i], q->set[b]))
			b = i;
	return (ssize_t)b;
}

/* The union of a and b, or NULL when it would be too big; frees both. */
static struct rules_lset *
rules_lset_union(struct rules_lset *a, struct rules_lset *b)
{
	size_t	i;

	if (a == NULL || b == NULL)
		goto fail;
	for (i = 0; i < b->n; i++)
		if (rules_lset_add(a, b->s[i], strlen(b->s[i])) == -1)
			goto fail;
	rules_lset_free(b);
	return a;
fail:
	rules_lset_free(a);
	rules_lset_free(b);
	return NULL;
}

/* Every concatenation x+y, or NULL when too big; a and b stay the caller's. */
static struct rules_lset *
rules_lset_cross(const struct rules_lset *a, const struct rules_lset *b)
{
	struct rules_lset	*l;
	char			 buf[2 * RULES_MAX_LIT + 1];
	size_t			 i, j, na, nb;

	if (a == NULL || b == NULL || a->n * b->n > RULES_MAX_CROSS)
		return NULL;
	if ((l = rules_lset_new()) == NULL)
		return NULL;
	for (i = 0; i < a->n; i++)
		for (j = 0; j < b->n; j++) {
			na = strlen(a->s[i]);
			nb = strlen(b->s[j]);
			memcpy(buf, a->s[i], na);
			memcpy(buf + na, b->s[j], nb);
			if (rules_lset_add(l, buf, na + nb) == -1) {
				rules_lset_free(l);
				return NULL;
			}
		}
	return l;
}

static struct rules_lset *
rules_lset_dup(const struct rules_lset *a)
{
	struct rules_lset	*l;
	size_t			 i;

	if (a == NULL || (l = rules_lset_new()) == NULL)
		return NULL;
	for (i = 0; i < a->n; i++)
		if (rules_lset_add(l, a->s[i], strlen(a->s[i])) == -1) {
			rules_lset_free(l);
			return NULL;
		}
	return l;
}

/* The required set of an exact set: the set itself unless it holds "". */
static struct rules_lset *
rules_exact_req(const struct rules_lset *e)
{
	size_t	i;

	if (e == NULL)
		return NULL;
	for (i = 0; i < e->n; i++)
		if (e->s[i][0] == '\0')
			return NULL;
	return rules_lset_dup(e);
}

/*
 * A small recursive-descent reading of the (expanded) PCRE2 pattern: only
 * what is needed to find required literals. Anything it does not know makes
 * the piece "unknown", which is always safe: the rule is then confirmed on
 * every message.
 */
struct rules_px {
	const char	*p;
	const char	*end;
};

static void	rules_px_alt(struct rules_px *, struct rules_info *);

static void
rules_info_clear(struct rules_info *i)
{
	rules_lset_free(i->exact);
	i->exact = NULL;
	rules_req_clear(&i->req);
}

/* Skips a [...] class. */
static void
rules_px_class(struct rules_px *x)
{
	x->p++;
	if (x->p < x->end && *x->p == '^')
		x->p++;
	if (x->p < x->end && *x->p == ']')
		x->p++;
	while (x->p < x->end && *x->p != ']') {
		if (*x->p == '\\' && x->p + 1 < x->end)
			x->p++;
		else if (*x->p == '[' && x->p + 1 < x->end && x->p[1] == ':') {
			const char *e = strstr(x->p + 2, ":]");

			if (e != NULL && e < x->end)
				x->p = e + 1;
		}
		x->p++;
	}
	if (x->p < x->end)
		x->p++;
}

/* One atom: sets *info; returns 0, or -1 when the pattern cannot be read. */
static int
rules_px_atom(struct rules_px *x, struct rules_info *info)
{
	const char	*s = x->p;
	char		 c;
	size_t		 n;

	memset(info, 0, sizeof(*info));
	c = *x->p;
	if (c == '(') {
		x->p++;
		if (x->p < x->end && *x->p == '?') {
			x->p++;
			if (x->p < x->end && (*x->p == ':' || *x->p == '>' || *x->p == '|'))
				x->p++;
			else if (x->p + 1 < x->end && (*x->p == '=' || *x->p == '!' ||
			    (*x->p == '<' && (x->p[1] == '=' || x->p[1] == '!')))) {
				/* a lookaround matches nothing itself */
				x->p += *x->p == '<' ? 2 : 1;
				rules_px_alt(x, info);
				rules_info_clear(info);
				info->exact = rules_lset_one("", 0);
				if (x->p < x->end && *x->p == ')')
					x->p++;
				return 0;
			} else if (x->p < x->end && (*x->p == '<' || *x->p == 'P' ||
			    *x->p == '\'')) {
				/* a named group */
				while (x->p < x->end && *x->p != '>' && *x->p != '\'')
					x->p++;
				x->p++;
			} else {
				/*
				 * Option settings: harmless, except extended
				 * mode, where spaces stop being literals.
				 */
				while (x->p < x->end && *x->p != ')' && *x->p != ':') {
					if (*x->p == 'x')
						return -1;
					x->p++;
				}
				if (x->p < x->end && *x->p == ')') {
					x->p++;
					info->exact = rules_lset_one("", 0);
					return 0;
				}
				x->p++;
			}
		}
		rules_px_alt(x, info);
		if (x->p >= x->end || *x->p != ')')
			return -1;
		x->p++;
		return 0;
	}
	if (c == '[') {
		rules_px_class(x);
		return 0;
	}
	if (c == '.') {
		x->p++;
		return 0;
	}
	if (c == '^' || c == '$') {
		x->p++;
		info->exact = rules_lset_one("", 0);
		return 0;
	}
	if (c == '\\') {
		x->p++;
		if (x->p >= x->end)
			return -1;
		c = *x->p++;
		if (strchr("bBAzZG", c) != NULL) {
			info->exact = rules_lset_one("", 0);
			return 0;
		}
		if (c == 'Q') {
			const char *e = x->p;

			while (e + 1 < x->end && !(e[0] == '\\' && e[1] == 'E'))
				e++;
			if (e + 1 >= x->end)
				e = x->end;
			info->exact = rules_lset_one(x->p, (size_t)(e - x->p));
			x->p = e < x->end ? e + 2 : e;
			return 0;
		}
		if (strchr(".^$|()[]{}*+?\\/-#&~ \"'", c) != NULL) {
			info->exact = rules_lset_one(&c, 1);
			return 0;
		}
		/* \d \w \s \x{..} \p{..} back-references and the rest */
		if (x->p < x->end && *x->p == '{' && strchr("xpPgko", c) != NULL)
			while (x->p < x->end && *x->p++ != '}')
				;
		return 0;
	}
	if (c == ')' || c == '|')
		return -1;
	/* a literal character, ASCII letters folded as the text is */
	n = 1;
	if ((unsigned char)c >= 0x80)
		while (s + n < x->end && ((unsigned char)s[n] & 0xc0) == 0x80)
			n++;
	x->p += n;
	if (n == 1 && c >= 'A' && c <= 'Z')
		c = (char)(c - 'A' + 'a');
	info->exact = n == 1 ? rules_lset_one(&c, 1) : rules_lset_one(s, n);
	return 0;
}

/* Applies a quantifier after an atom, if there is one. */
static void
rules_px_quant(struct rules_px *x, struct rules_info *info)
{
	int	min_one;

	if (x->p >= x->end)
		return;
	if (*x->p == '?' || *x->p == '*')
		min_one = 0;
	else if (*x->p == '+')
		min_one = 1;
	else if (*x->p == '{' && x->p + 1 < x->end &&
	    (x->p[1] >= '0' && x->p[1] <= '9'))
		min_one = x->p[1] != '0';
	else
		return;
	if (*x->p == '{') {
		while (x->p < x->end && *x->p != '}')
			x->p++;
	}
	x->p++;
	if (x->p < x->end && (*x->p == '?' || *x->p == '+'))
		x->p++;	/* lazy or possessive */
	rules_lset_free(info->exact);
	info->exact = NULL;
	if (!min_one)
		rules_req_clear(&info->req);
}

/* A concatenation, up to '|' or ')'. */
static void
rules_px_seq(struct rules_px *x, struct rules_info *out)
{
	struct rules_info	 a;
	struct rules_lset	*cross;

	memset(out, 0, sizeof(*out));
	out->exact = rules_lset_one("", 0);
	while (x->p < x->end && *x->p != '|' && *x->p != ')') {
		if (rules_px_atom(x, &a) == -1) {
			rules_info_clear(&a);
			x->p = x->end;
			rules_info_clear(out);
			return;
		}
		if (a.req.n == 0)
			rules_req_add(&a.req, rules_exact_req(a.exact));
		rules_px_quant(x, &a);
		cross = rules_lset_cross(out->exact, a.exact);
		rules_lset_free(out->exact);
		out->exact = cross;
		rules_req_merge(&out->req, &a.req);
		rules_info_clear(&a);
	}
	/* the whole sequence as one literal beats its parts */
	if ((cross = rules_exact_req(out->exact)) != NULL) {
		rules_req_clear(&out->req);
		rules_req_add(&out->req, cross);
	}
}

/*
 * Either branch may match, so only a literal set taken from each can be
 * required: the union of each branch's most selective set.
 */
static void
rules_req_or(struct rules_req *a, struct rules_req *b)
{
	struct rules_lset	*u;
	ssize_t			 ia = rules_req_best(a), ib = rules_req_best(b);

	if (ia < 0 || ib < 0) {
		rules_req_clear(a);
		rules_req_clear(b);
		return;
	}
	u = rules_lset_union(a->set[ia], b->set[ib]);
	a->set[ia] = b->set[ib] = NULL;
	rules_req_clear(a);
	rules_req_clear(b);
	rules_req_add(a, u);
}

/* An alternation: every branch must give a required set for the whole to have one. */
static void
rules_px_alt(struct rules_px *x, struct rules_info *out)
{
	struct rules_info	b;
	int			first = 1;

	memset(out, 0, sizeof(*out));
	for (;;) {
		rules_px_seq(x, &b);
		if (first) {
			*out = b;
			first = 0;
		} else {
			out->exact = rules_lset_union(out->exact, b.exact);
			rules_req_or(&out->req, &b.req);
		}
		if (x->p < x->end && *x->p == '|') {
			x->p++;
			continue;
		}
		break;
	}
}

/*
 * The required literal sets of a whole pattern: one clause (an AND of sets)
 * per top-level alternative, so that one weak alternative does not make the
 * others weak. Returns the number of clauses, 0 when the pattern requires
 * nothing that can be found.
 */
static size_t
rules_required(const char *pattern, struct rules_req clause[RULES_MAX_CLAUSE])
{
	struct rules_px		x = { pattern, pattern + strlen(pattern) };
	struct rules_info	info;
	size_t			n = 0, i;

	for (;;) {
		rules_px_seq(&x, &info);
		if (info.req.n == 0)
			goto none;	/* an alternative that requires nothing */
		if (n < RULES_MAX_CLAUSE)
			rules_req_merge(&clause[n++], &info.req);
		else
			rules_req_or(&clause[n - 1], &info.req);
		rules_info_clear(&info);
		if (x.p < x.end && *x.p == '|') {
			x.p++;
			continue;
		}
		break;
	}
	if (x.p == x.end)
		return n;
none:
	rules_info_clear(&info);
	for (i = 0; i < n; i++)
		rules_req_clear(&clause[i]);
	return 0;
}

/* A rule's prefilter: it is a candidate when any clause has all its sets seen. */
struct rules_pf {
	struct rules_req	clause[RULES_MAX_CLAUSE];
	size_t			n;
};

static void
rules_pf_clear(struct rules_pf *pf)
{
	size_t	i;

	for (i = 0; i < pf->n; i++)
		rules_req_clear(&pf->clause[i]);
	pf->n = 0;
}

/*
 * A near cue must match too: the most selective of its sets joins every
 * clause of the pattern (or stands alone when the pattern gave none).
 */
static void
rules_pf_and_near(struct rules_pf *pf, struct rules_pf *near)
{
	struct rules_req	any = { { NULL }, 0 };
	ssize_t			b;
	size_t			i;

	if (near->n == 0)
		return;
	rules_req_merge(&any, &near->clause[0]);
	for (i = 1; i < near->n; i++)
		rules_req_or(&any, &near->clause[i]);
	rules_pf_clear(near);
	if ((b = rules_req_best(&any)) >= 0) {
		if (pf->n == 0) {
			rules_req_add(&pf->clause[0], rules_lset_dup(any.set[b]));
			pf->n = 1;
		} else
			for (i = 0; i < pf->n; i++)
				rules_req_add(&pf->clause[i],
				    rules_lset_dup(any.set[b]));
	}
	rules_req_clear(&any);
}

/* --- pattern expansion --------------------------------------------------- */

static struct rules_def *
rules_find_def(struct rules *r, const char *name, size_t n)
{
	size_t	i;

	for (i = 0; i < r->ndef; i++)
		if (strlen(r->def[i].name) == n &&
		    memcmp(r->def[i].name, name, n) == 0)
			return &r->def[i];
	return NULL;
}

/* Appends s with every regex metacharacter escaped. */
static int
rules_escape(struct sbuf *out, const char *s, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++) {
		if (strchr("\\^$.|?*+()[]{}-#/ ", s[i]) != NULL &&
		    sbuf_append(out, "\\", 1) == -1)
			return -1;
		if (sbuf_append(out, s + i, 1) == -1)
			return -1;
	}
	return 0;
}

/*
 * Normalises a list item or a `whole` word the way the text will be, so a
 * supervisor can write 微信 and still match 薇信 written in any form.
 */
static int
rules_norm_word(struct rules *r, unsigned steps, const char *w, struct sbuf *out)
{
	const char	*t;
	size_t		 n;
	const uint32_t	*map;

	if (norm_run(r->norm[steps], w, strlen(w), steps, &t, &n, &map) == -1)
		return -1;
	return rules_escape(out, t, n);
}

/*
 * Expands ${name} in pattern into out: 0; -1 with an error reported; -2
 * when out grew past RULES_MAX_EXPANDED (the caller reports it, at the rule
 * that asked). The bound is checked as the text grows, so macros that
 * double at every level cost milliseconds to refuse, not gigabytes.
 */
static int
rules_expand(struct rules *r, const char *pattern, unsigned steps,
    struct sbuf *out, const char *file, size_t line, struct sbuf *errs)
{
	const char		*p, *e;
	struct rules_def	*d;
	size_t			 i;
	int			 rc = 0;

	for (p = pattern; *p; ) {
		if (out->len > RULES_MAX_EXPANDED)
			return -2;
		if (p[0] == '\\' && p[1] != '\0') {
			if (sbuf_append(out, p, 2) == -1)
				return -1;
			p += 2;
			continue;
		}
		if (p[0] != '$' || p[1] != '{') {
			if (sbuf_append(out, p, 1) == -1)
				return -1;
			p++;
			continue;
		}
		if ((e = strchr(p + 2, '}')) == NULL) {
			rules_err(errs, file, line, "unterminated ${ in pattern");
			return -1;
		}
		if ((d = rules_find_def(r, p + 2, (size_t)(e - p - 2))) == NULL) {
			rules_err(errs, file, line, "unknown list or macro '%.*s'",
			    (int)(e - p - 2), p + 2);
			return -1;
		}
		if (sbuf_append(out, "(?:", 3) == -1)
			return -1;
		if (d->is_list) {
			for (i = 0; i < d->nitems; i++) {
				if ((i > 0 && sbuf_append(out, "|", 1) == -1) ||
				    rules_norm_word(r, steps, d->items[i], out) == -1)
					return -1;
				if (out->len > RULES_MAX_EXPANDED)
					return -2;
			}
		} else {
			if (d->visiting) {
				rules_err(errs, file, line, "macro '%s' uses itself (a cycle of macros)",
				    d->name);
				return -1;
			}
			d->visiting = 1;
			rc = rules_expand(r, d->pattern, steps, out, d->file,
			    d->line, errs);
			d->visiting = 0;
			if (rc < 0)
				return rc;
		}
		if (sbuf_append(out, ")", 1) == -1)
			return -1;
		p = e + 1;
	}
	return 0;
}

/* Expands and compiles a pattern; NULL with the error reported. */
static pcre2_code *
rules_compile(struct rules *r, const char *pattern, unsigned steps,
    struct rules_pf *pf, const char *file, size_t line, struct sbuf *errs)
{
	struct sbuf	 ex;
	pcre2_code	*re = NULL;
	PCRE2_SIZE	 off;
	PCRE2_UCHAR	 msg[256];
	int		 ec;

	sbuf_init(&ex);
	switch (rules_expand(r, pattern, steps, &ex, file, line, errs)) {
	case 0:
		break;
	case -2:
		rules_err(errs, file, line, "pattern expands past %d bytes "
		    "(lists and macros included)", RULES_MAX_EXPANDED);
		goto out;
	default:
		goto out;
	}
	re = pcre2_compile((PCRE2_SPTR)sbuf_str(&ex), ex.len,
	    PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &ec, &off, NULL);
	if (re == NULL) {
		pcre2_get_error_message(ec, msg, sizeof(msg));
		rules_err(errs, file, line, "bad pattern at offset %zu%s: %s",
		    (size_t)off, ex.len != strlen(pattern) ?
		    " of the expanded pattern" : "", (const char *)msg);
		goto out;
	}
	if (r->jit && pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) != 0)
		r->jit = 0;	/* e.g. MemoryDenyWriteExecute: the interpreter still matches */
	if (pf != NULL)
		pf->n = rules_required(sbuf_str(&ex), pf->clause);
out:
	sbuf_free(&ex);
	return re;
}

/* --- YAML ---------------------------------------------------------------- */

struct rules_doc {
	yaml_document_t	 doc;
	const char	*file;
	struct sbuf	*errs;
	size_t		 nerr;
};

static size_t
rules_line(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

static void
rules_doc_err(struct rules_doc *d, const yaml_node_t *n, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rules_err(d->errs, d->file, n ? rules_line(n) : 0, "%s", msg);
	d->nerr++;
}

static const char *
rules_scalar(struct rules_doc *d, yaml_node_t *n, const char *key)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE) {
		rules_doc_err(d, n, "%s: expected a single value", key);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

/* A sequence of scalars (a lone scalar counts as one); the strings are the document's. */
static int
rules_strings(struct rules_doc *d, yaml_node_t *n, const char *key,
    const char ***out, size_t **lines, size_t *count)
{
	yaml_node_item_t	*it;
	yaml_node_t		*v;
	size_t			 k = 0, cap;

	*out = NULL;
	*count = 0;
	if (lines)
		*lines = NULL;
	if (n->type == YAML_SCALAR_NODE)
		cap = 1;
	else if (n->type == YAML_SEQUENCE_NODE)
		cap = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	else {
		rules_doc_err(d, n, "%s: expected a list", key);
		return -1;
	}
	if (cap == 0)
		return 0;
	if ((*out = calloc(cap, sizeof(**out))) == NULL ||
	    (lines && (*lines = calloc(cap, sizeof(**lines))) == NULL))
		return -1;
	if (n->type == YAML_SCALAR_NODE) {
		(*out)[0] = (const char *)n->data.scalar.value;
		if (lines)
			(*lines)[0] = rules_line(n);
		*count = 1;
		return 0;
	}
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		v = yaml_document_get_node(&d->doc, *it);
		if (v == NULL || v->type != YAML_SCALAR_NODE) {
			rules_doc_err(d, v, "%s: every item must be a single value", key);
			continue;
		}
		(*out)[k] = (const char *)v->data.scalar.value;
		if (lines)
			(*lines)[k] = rules_line(v);
		k++;
	}
	*count = k;
	return 0;
}

static int
rules_name_ok(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		    (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return 1;
}

static int
rules_bool(struct rules_doc *d, yaml_node_t *n, const char *key, int *out)
{
	const char	*s = rules_scalar(d, n, key);

	if (s == NULL)
		return -1;
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)
		*out = 1;
	else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)
		*out = 0;
	else {
		rules_doc_err(d, n, "%s: expected true or false, not '%s'", key, s);
		return -1;
	}
	return 0;
}

/* Finds a key's value in a mapping; NULL when absent. */
static yaml_node_t *
rules_get(struct rules_doc *d, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t	*p;
	yaml_node_t		*k;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		k = yaml_document_get_node(&d->doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(&d->doc, p->value);
	}
	return NULL;
}

/* Reports keys of map that are not in allowed (a NULL-terminated list). */
static void
rules_check_keys(struct rules_doc *d, yaml_node_t *map, const char *what,
    const char *const *allowed)
{
	yaml_node_pair_t	*p, *q;
	yaml_node_t		*k, *k2;
	const char		*name;
	size_t			 i;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		k = yaml_document_get_node(&d->doc, p->key);
		if (k == NULL || k->type != YAML_SCALAR_NODE) {
			rules_doc_err(d, k, "%s: keys must be plain words", what);
			continue;
		}
		name = (const char *)k->data.scalar.value;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], name) == 0)
				break;
		if (allowed[i] == NULL)
			rules_doc_err(d, k, "%s: unknown key '%s'", what, name);
		for (q = map->data.mapping.pairs.start; q < p; q++) {
			k2 = yaml_document_get_node(&d->doc, q->key);
			if (k2 && k2->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)k2->data.scalar.value, name) == 0) {
				rules_doc_err(d, k, "%s: duplicate key '%s'", what, name);
				break;
			}
		}
	}
}

static int
rules_add_def(struct rules *r, struct rules_doc *d, yaml_node_t *item, int is_list)
{
	static const char *const list_keys[] = { "list", "items", NULL };
	static const char *const macro_keys[] = { "macro", "pattern", NULL };
	struct rules_def	 def, *nd;
	const char		*name, **items = NULL, *pat;
	yaml_node_t		*v;
	size_t			 i, n = 0;

	memset(&def, 0, sizeof(def));
	rules_check_keys(d, item, is_list ? "list" : "macro",
	    is_list ? list_keys : macro_keys);
	if ((name = rules_scalar(d, rules_get(d, item, is_list ? "list" : "macro"),
	    is_list ? "list" : "macro")) == NULL)
		return 0;
	if (!rules_name_ok(name) || strchr(name, '.') != NULL) {
		rules_doc_err(d, item, "bad name '%s': letters, digits, _ and - only",
		    name);
		return 0;
	}
	if (rules_find_def(r, name, strlen(name)) != NULL) {
		rules_doc_err(d, item, "'%s' is defined twice", name);
		return 0;
	}
	def.is_list = is_list;
	def.line = rules_line(item);
	if (is_list) {
		if ((v = rules_get(d, item, "items")) == NULL) {
			rules_doc_err(d, item, "list %s: items missing", name);
			return 0;
		}
		if (rules_strings(d, v, "items", &items, NULL, &n) == -1)
			goto oom;
		if (n == 0) {
			rules_doc_err(d, v, "list %s: no items", name);
			free(items);
			return 0;
		}
		if ((def.items = calloc(n, sizeof(char *))) == NULL)
			goto oom;
		for (i = 0; i < n; i++) {
			if (items[i][0] == '\0')
				rules_doc_err(d, v, "list %s: an empty item", name);
			if ((def.items[i] = strdup(items[i])) == NULL)
				goto oom;
			def.nitems++;
		}
		free(items);
		items = NULL;
	} else {
		if ((pat = rules_scalar(d, rules_get(d, item, "pattern"),
		    "pattern")) == NULL)
			return 0;
		if ((def.pattern = strdup(pat)) == NULL)
			goto oom;
	}
	if ((def.name = strdup(name)) == NULL || (def.file = strdup(d->file)) == NULL)
		goto oom;
	if ((nd = realloc(r->def, (r->ndef + 1) * sizeof(*nd))) == NULL)
		goto oom;
	r->def = nd;
	r->def[r->ndef++] = def;
	return 0;
oom:
	free(items);
	for (i = 0; i < def.nitems; i++)
		free(def.items[i]);
	free(def.items);
	free(def.pattern);
	free(def.name);
	free(def.file);
	return -1;
}

/*
 * A rule's fields, read in a first pass: patterns compile only once every
 * list and macro of every file is known.
 */
struct rules_src {
	yaml_node_t	*item;
	struct rules_doc *doc;
};

static int
rules_enum(struct rules_doc *d, yaml_node_t *n, const char *key,
    const char *const *names, int *out)
{
	const char	*s = rules_scalar(d, n, key);
	int		 i;

	if (s == NULL)
		return -1;
	for (i = 0; names[i] != NULL; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
	rules_doc_err(d, n, "%s: '%s' is not one of the allowed values", key, s);
	return -1;
}

static void
rules_free_rule(struct rule *ru)
{
	size_t	i;

	free((char *)ru->proto.rule);
	free((char *)ru->proto.category);
	free((char *)ru->proto.message);
	pcre2_code_free(ru->re);
	pcre2_code_free(ru->near_re);
	for (i = 0; i < ru->nunless; i++)
		pcre2_code_free(ru->unless[i]);
	free(ru->unless);
	free(ru->file);
	for (i = 0; i < ru->nex; i++)
		free(ru->ex[i].text);
	free(ru->ex);
}

/* Registers a literal of the rule being added, reported with its clause's set bit. */
static int
rules_add_literal(struct rules *r, const char *lit, uint64_t bit)
{
	uint32_t	*nl;
	uint64_t	*nb;
	char		**ns;

	if ((nl = realloc(r->lit_rule, (r->nlit + 1) * sizeof(*nl))) == NULL)
		return -1;
	r->lit_rule = nl;
	if ((nb = realloc(r->lit_bit, (r->nlit + 1) * sizeof(*nb))) == NULL)
		return -1;
	r->lit_bit = nb;
	if ((ns = realloc(r->lit, (r->nlit + 1) * sizeof(*ns))) == NULL)
		return -1;
	r->lit = ns;
	if ((r->lit[r->nlit] = strdup(lit)) == NULL)
		return -1;
	r->lit_rule[r->nlit] = (uint32_t)r->nrule;
	r->lit_bit[r->nlit] = bit;
	r->nlit++;
	return 0;
}

static int
rules_lit_cmp(const void *a, const void *b, void *arg)
{
	char *const	*lit = arg;

	return strcmp(lit[*(const uint32_t *)a], lit[*(const uint32_t *)b]);
}

/*
 * Sorts the pairs by literal and gives the automaton each distinct literal
 * once. 0, or -1 on ENOMEM.
 */
static int
rules_build_literals(struct rules *r)
{
	uint32_t	*ord = NULL, *nr = NULL;
	uint64_t	*nb = NULL;
	size_t		 i, j;
	int		 rc = -1;

	if (r->nlit == 0)
		return acm_build(r->acm);
	if ((ord = calloc(r->nlit, sizeof(*ord))) == NULL ||
	    (nr = calloc(r->nlit, sizeof(*nr))) == NULL ||
	    (nb = calloc(r->nlit, sizeof(*nb))) == NULL ||
	    (r->lit_end = calloc(r->nlit, sizeof(*r->lit_end))) == NULL)
		goto out;
	for (i = 0; i < r->nlit; i++)
		ord[i] = (uint32_t)i;
	qsort_r(ord, r->nlit, sizeof(*ord), rules_lit_cmp, r->lit);
	for (i = 0; i < r->nlit; i++) {
		nr[i] = r->lit_rule[ord[i]];
		nb[i] = r->lit_bit[ord[i]];
	}
	for (i = 0; i < r->nlit; i = j) {
		for (j = i + 1; j < r->nlit &&
		    strcmp(r->lit[ord[i]], r->lit[ord[j]]) == 0; j++)
			;
		r->lit_end[i] = (uint32_t)j;
		if (acm_add(r->acm, r->lit[ord[i]], strlen(r->lit[ord[i]]),
		    (uint32_t)i) == -1)
			goto out;
	}
	free(r->lit_rule);
	free(r->lit_bit);
	r->lit_rule = nr;
	r->lit_bit = nb;
	nr = NULL;
	nb = NULL;
	rc = acm_build(r->acm);
out:
	free(ord);
	free(nr);
	free(nb);
	return rc;
}

/* Builds one rule and registers its literals. 0 (errors reported), or -1 on ENOMEM. */
static int
rules_add_rule(struct rules *r, struct rules_doc *d, yaml_node_t *item)
{
	static const char *const keys[] = { "rule", "category", "severity",
	    "action", "role", "pattern", "whole", "near", "unless", "message",
	    "enabled", "normalize", "examples", NULL };
	static const char *const sev[] = { "info", "warn", "critical", NULL };
	static const char *const act[] = { "flag", "warn", "block", NULL };
	static const char *const role[] = { "agent", "customer", "any", NULL };
	static const char *const steps[] = { "nfkc", "t2s", "noise", "digits", NULL };
	struct rule		 ru, *nr;
	struct rules_pf		 pf, npf;
	yaml_node_t		*v, *w;
	yaml_node_pair_t	*p;
	const char		*id, *s, **strs = NULL;
	size_t			*lines = NULL, n = 0, i, k, c, before = d->nerr;
	uint64_t		 bit;
	struct sbuf		 pat;
	int			 x, on, rc = -1;

	memset(&ru, 0, sizeof(ru));
	memset(&pf, 0, sizeof(pf));
	memset(&npf, 0, sizeof(npf));
	sbuf_init(&pat);
	ru.enabled = 1;
	ru.roles = RULES_AGENT;
	ru.steps = NORM_ALL;
	ru.line = rules_line(item);
	rules_check_keys(d, item, "rule", keys);
	if ((id = rules_scalar(d, rules_get(d, item, "rule"), "rule")) == NULL)
		return 0;
	if (!rules_name_ok(id)) {
		rules_doc_err(d, item, "rule '%s': ids are letters, digits, '.', '_' and '-'", id);
		return 0;
	}
	for (i = 0; i < r->nrule; i++)
		if (strcmp(r->rule[i].proto.rule, id) == 0) {
			rules_doc_err(d, item, "rule '%s' is defined twice (first at %s:%zu)",
			    id, r->rule[i].file, r->rule[i].line);
			return 0;
		}
	if ((ru.proto.rule = strdup(id)) == NULL || (ru.file = strdup(d->file)) == NULL)
		goto out;

	if ((v = rules_get(d, item, "category")) == NULL)
		rules_doc_err(d, item, "rule %s: category missing", id);
	else if ((s = rules_scalar(d, v, "category")) != NULL) {
		if (!rules_name_ok(s))
			rules_doc_err(d, v, "rule %s: bad category '%s'", id, s);
		if ((ru.proto.category = strdup(s)) == NULL)
			goto out;
	}
	if ((v = rules_get(d, item, "severity")) == NULL)
		rules_doc_err(d, item, "rule %s: severity missing", id);
	else if (rules_enum(d, v, "severity", sev, &x) == 0)
		ru.proto.severity = (enum rules_severity)x;
	if ((v = rules_get(d, item, "action")) == NULL)
		rules_doc_err(d, item, "rule %s: action missing", id);
	else if (rules_enum(d, v, "action", act, &x) == 0)
		ru.proto.action = (enum rules_action)x;
	if ((v = rules_get(d, item, "role")) != NULL && rules_enum(d, v, "role", role, &x) == 0)
		ru.roles = (unsigned)x + 1;	/* agent 1, customer 2, any 3 */
	if ((v = rules_get(d, item, "enabled")) != NULL)
		rules_bool(d, v, "enabled", &ru.enabled);
	if ((v = rules_get(d, item, "message")) != NULL) {
		if ((s = rules_scalar(d, v, "message")) != NULL &&
		    (ru.proto.message = strdup(s)) == NULL)
			goto out;
	} else if (ru.proto.action != RULES_FLAG)
		rules_doc_err(d, item, "rule %s: a warn or block rule needs a message "
		    "(what the agent should say instead)", id);
	if (ru.proto.message == NULL && (ru.proto.message = strdup("")) == NULL)
		goto out;
	if ((v = rules_get(d, item, "normalize")) != NULL) {
		if (v->type != YAML_MAPPING_NODE)
			rules_doc_err(d, v, "rule %s: normalize: expected a mapping "
			    "like {digits: false}", id);
		else
			for (p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
				w = yaml_document_get_node(&d->doc, p->key);
				if (rules_enum(d, w, "normalize", steps, &x) == -1)
					continue;
				if (rules_bool(d, yaml_document_get_node(&d->doc,
				    p->value), "normalize", &on) == 0 && !on)
					ru.steps &= ~(1u << x);
			}
	}

	/* the pattern, or the whole-message words */
	v = rules_get(d, item, "pattern");
	w = rules_get(d, item, "whole");
	if ((v == NULL) == (w == NULL))
		rules_doc_err(d, item, "rule %s: exactly one of pattern and whole is needed", id);
	else if (v != NULL) {
		if ((s = rules_scalar(d, v, "pattern")) != NULL &&
		    (ru.re = rules_compile(r, s, ru.steps, &pf, d->file,
		    rules_line(v), d->errs)) == NULL)
			d->nerr++;
	} else {
		ru.steps |= NORM_NOISE;
		if (rules_strings(d, w, "whole", &strs, NULL, &n) == -1)
			goto out;
		if (sbuf_append(&pat, "^(?:", 4) == -1)
			goto out;
		for (i = 0; i < n; i++) {
			size_t from = pat.len;

			if ((i > 0 && sbuf_append(&pat, "|", 1) == -1) ||
			    rules_norm_word(r, ru.steps, strs[i], &pat) == -1)
				goto out;
			/* escaped, so an upper bound of the word's length */
			if (pat.len - from > ru.whole_max)
				ru.whole_max = pat.len - from;
		}
		if (sbuf_append(&pat, ")$", 2) == -1)
			goto out;
		if (n == 0)
			rules_doc_err(d, w, "rule %s: whole: no words", id);
		else if ((ru.re = rules_compile(r, sbuf_str(&pat), ru.steps, &pf,
		    d->file, rules_line(w), d->errs)) == NULL)
			d->nerr++;
		free(strs);
		strs = NULL;
	}
	if ((v = rules_get(d, item, "near")) != NULL) {
		yaml_node_t *np, *nw;

		if (v->type != YAML_MAPPING_NODE ||
		    (np = rules_get(d, v, "pattern")) == NULL ||
		    (nw = rules_get(d, v, "within")) == NULL)
			rules_doc_err(d, v, "rule %s: near: expected {pattern: P, within: N}", id);
		else {
			static const char *const near_keys[] = { "pattern", "within", NULL };
			char *end;

			rules_check_keys(d, v, "near", near_keys);
			if ((s = rules_scalar(d, nw, "within")) != NULL) {
				errno = 0;
				ru.near_within = (uint32_t)strtoul(s, &end, 10);
				if (*s == '\0' || *end != '\0' || errno != 0 ||
				    ru.near_within == 0 || ru.near_within > 1000)
					rules_doc_err(d, nw, "rule %s: near: within must be "
					    "a number of characters from 1 to 1000", id);
			}
			if ((s = rules_scalar(d, np, "pattern")) != NULL &&
			    (ru.near_re = rules_compile(r, s, ru.steps, &npf,
			    d->file, rules_line(np), d->errs)) == NULL)
				d->nerr++;
		}
	}
	if ((v = rules_get(d, item, "unless")) != NULL) {
		if (rules_strings(d, v, "unless", &strs, &lines, &n) == -1)
			goto out;
		if (n > 0 && (ru.unless = calloc(n, sizeof(*ru.unless))) == NULL)
			goto out;
		for (i = 0; i < n; i++) {
			if ((ru.unless[ru.nunless] = rules_compile(r, strs[i], ru.steps,
			    NULL, d->file, lines[i], d->errs)) == NULL)
				d->nerr++;
			else
				ru.nunless++;
		}
		free(strs);
		free(lines);
		strs = NULL;
		lines = NULL;
	}
	if ((v = rules_get(d, item, "examples")) == NULL || v->type != YAML_MAPPING_NODE)
		rules_doc_err(d, v ? v : item, "rule %s: examples: needed, with match: "
		    "and no_match: lists", id);
	else {
		static const char *const ex_keys[] = { "match", "no_match", NULL };

		rules_check_keys(d, v, "examples", ex_keys);
		for (x = 0; x < 2; x++) {
			if ((w = rules_get(d, v, x == 0 ? "match" : "no_match")) == NULL)
				continue;
			if (rules_strings(d, w, x == 0 ? "match" : "no_match",
			    &strs, &lines, &n) == -1)
				goto out;
			for (i = 0; i < n; i++) {
				struct rules_example_src *ne;

				if ((ne = realloc(ru.ex, (ru.nex + 1) * sizeof(*ne))) == NULL)
					goto out;
				ru.ex = ne;
				ru.ex[ru.nex].want = x == 0;
				ru.ex[ru.nex].line = lines[i];
				if ((ru.ex[ru.nex].text = strdup(strs[i])) == NULL)
					goto out;
				ru.nex++;
			}
			free(strs);
			free(lines);
			strs = NULL;
			lines = NULL;
		}
		if (ru.nex == 0 || !ru.ex[0].want)
			rules_doc_err(d, v, "rule %s: examples: at least one match: "
			    "example is needed", id);
	}
	if (d->nerr != before) {
		rc = 0;	/* reported; the set will be refused */
		goto out;
	}

	/*
	 * The prefilter's literals: a set for each thing every match must
	 * contain, from the pattern and from the near cue (both must be
	 * there). A rule with its own normalisation sees another text than the
	 * automaton does, so it is always confirmed.
	 */
	rules_pf_and_near(&pf, &npf);
	ru.always = pf.n == 0 || ru.steps != NORM_ALL;
	if (!ru.always && ru.enabled) {
		ru.nclause = pf.n;
		for (c = 0; c < pf.n; c++)
			rules_req_trim(&pf.clause[c]);
		for (c = 0; c < pf.n; c++)
			for (k = 0; k < pf.clause[c].n; k++) {
				bit = 1ull << (c * RULES_MAX_AND + k);
				ru.need[c] |= bit;
				for (i = 0; i < pf.clause[c].set[k]->n; i++)
					if (rules_add_literal(r,
					    pf.clause[c].set[k]->s[i], bit) == -1)
						goto out;
			}
	}
	if ((nr = realloc(r->rule, (r->nrule + 1) * sizeof(*nr))) == NULL)
		goto out;
	r->rule = nr;
	r->rule[r->nrule++] = ru;
	memset(&ru, 0, sizeof(ru));
	rc = 0;
out:
	rules_pf_clear(&pf);
	rules_pf_clear(&npf);
	free(strs);
	free(lines);
	sbuf_free(&pat);
	rules_free_rule(&ru);
	return rc;
}

/* Loads one file's document; 0, or -1 when it could not be parsed at all. */
static int
rules_parse_file(const char *path, struct rules_doc *d, struct sbuf *errs)
{
	yaml_parser_t	 parser;
	char		*buf;
	size_t		 len, line;
	int		 rc = -1;

	memset(d, 0, sizeof(*d));
	d->file = path;
	d->errs = errs;
	if (yamlfile_read(path, RULES_MAX_FILE, &buf, &len) == -1) {
		if (errno == EFBIG)
			rules_err(errs, path, 0, "larger than %d bytes: split "
			    "it into several files", RULES_MAX_FILE);
		else
			rules_err(errs, path, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	switch (yamlfile_check_depth(buf, len, &line)) {
	case 0:
		break;
	case -1:
		rules_err(errs, path, line, "nested deeper than %d levels",
		    YAMLFILE_MAX_DEPTH);
		free(buf);
		return -1;
	default:
		rules_err(errs, path, 0, "out of memory");
		free(buf);
		return -1;
	}
	if (!yaml_parser_initialize(&parser)) {
		rules_err(errs, path, 0, "out of memory");
		free(buf);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &d->doc))
		rules_err(errs, path, parser.problem_mark.line + 1, "YAML: %s%s%s",
		    parser.problem ? parser.problem : "syntax error",
		    parser.context ? " " : "", parser.context ? parser.context : "");
	else
		rc = 0;
	yaml_parser_delete(&parser);
	free(buf);
	return rc;
}

/* --- matching ------------------------------------------------------------ */

static int
rules_cand_cb(uint32_t id, size_t end, void *arg)
{
	struct rules	*r = arg;

	uint32_t	 p, ru;

	(void)end;
	for (p = id; p < r->lit_end[id]; p++) {
		ru = r->lit_rule[p];
		if (r->seen[ru] == 0)
			r->touched[r->ntouched++] = ru;
		r->seen[ru] |= r->lit_bit[p];
	}
	return 0;
}

/* The text normalised with mask, computed once per message. */
static int
rules_text(struct rules *r, unsigned mask)
{
	if (r->nvalid & (1u << mask))
		return 0;
	if (norm_run(r->norm[mask], r->otext, r->olen, mask, &r->ntext[mask],
	    &r->nlen[mask], &r->nmap[mask]) == -1) {
		r->oom = 1;
		return -1;
	}
	r->nvalid |= 1u << mask;
	return 0;
}

static int
rules_re_match(struct rules *r, const pcre2_code *re, const char *s,
    size_t len, size_t start)
{
	int	rc;

	/* pcre2_jit_match skips the checks pcre2_match makes each time */
	if (r->jit)
		rc = pcre2_jit_match(re, (PCRE2_SPTR)s, len, start, 0, r->md, r->mctx);
	else
		rc = pcre2_match(re, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK,
		    r->md, r->mctx);
	return rc >= 0;	/* no match, and a match limit hit, both count as none */
}

/* Byte offset n code points before (dir < 0) or after off in UTF-8 s. */
static size_t
rules_walk(const char *s, size_t len, size_t off, uint32_t n, int dir)
{
	while (n-- > 0) {
		if (dir < 0) {
			if (off == 0)
				break;
			do
				off--;
			while (off > 0 && ((unsigned char)s[off] & 0xc0) == 0x80);
		} else {
			if (off >= len)
				break;
			do
				off++;
			while (off < len && ((unsigned char)s[off] & 0xc0) == 0x80);
		}
	}
	return off;
}

/* Confirms rule i on the message; adds a hit when it fires. */
static void
rules_confirm(struct rules *r, size_t i, enum rules_role role, size_t *nhits)
{
	struct rule		*ru = &r->rule[i];
	struct rules_hit	*h;
	PCRE2_SIZE		*ov;
	const char		*t;
	size_t			 len, s, e, ws, we, off = 0, k;
	int			 tries;

	if (rules_text(r, ru->steps) == -1)
		return;
	t = r->ntext[ru->steps];
	len = r->nlen[ru->steps];
	if (ru->whole_max > 0 && len > ru->whole_max)
		return;	/* longer than any of its words: cannot be the whole message */
	for (tries = 0; tries < RULES_MAX_TRIES && off <= len; tries++) {
		if (!rules_re_match(r, ru->re, t, len, off))
			return;
		ov = pcre2_get_ovector_pointer(r->md);
		s = ov[0];
		e = ov[1];
		if (ru->near_re != NULL) {
			ws = rules_walk(t, len, s, ru->near_within, -1);
			we = rules_walk(t, len, e, ru->near_within, 1);
			if (!rules_re_match(r, ru->near_re, t, we, ws)) {
				/* this occurrence has no cue: try one starting later */
				if (s >= len)
					return;
				off = rules_walk(t, len, s, 1, 1);
				continue;
			}
			/* the near match clobbered the ovector: match again */
			if (!rules_re_match(r, ru->re, t, len, s))
				return;
			ov = pcre2_get_ovector_pointer(r->md);
			s = ov[0];
			e = ov[1];
		}
		for (k = 0; k < ru->nunless; k++)
			if (rules_re_match(r, ru->unless[k], t, len, 0))
				return;
		h = &r->hits[(*nhits)++];
		*h = ru->proto;
		if (role == RULES_CUSTOMER && h->action == RULES_BLOCK)
			h->action = RULES_WARNING;	/* a customer is never blocked */
		norm_span(r->nmap[ru->steps], s, e, &h->start, &h->end);
		{
			size_t	olen, a, b;
			const char *o = norm_orig(r->norm[ru->steps], &olen);

			a = norm_orig_offset(r->norm[ru->steps], h->start);
			b = norm_orig_offset(r->norm[ru->steps], h->end);
			h->match = o + a;
			h->match_len = b - a;
		}
		return;
	}
}

static int
rules_hit_cmp(const void *a, const void *b)
{
	const struct rules_hit	*x = a, *y = b;
	uint32_t		 lx = x->end - x->start, ly = y->end - y->start;

	if (lx != ly)
		return lx > ly ? -1 : 1;
	if (x->severity != y->severity)
		return x->severity > y->severity ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return strcmp(x->rule, y->rule);
}

static int
rules_candidate(const struct rule *ru, uint64_t seen)
{
	size_t	c;

	for (c = 0; c < ru->nclause; c++)
		if ((seen & ru->need[c]) == ru->need[c])
			return 1;
	return 0;
}

static size_t
rules_run(struct rules *r, enum rules_role role, const char *text, size_t len,
    int prefilter, ssize_t only, const struct rules_hit **hits)
{
	size_t	i, k, nhits = 0;

	r->otext = text;
	r->olen = len;
	r->nvalid = 0;
	r->oom = 0;
	if (only >= 0) {
		rules_confirm(r, (size_t)only, role, &nhits);
		goto done;
	}
	if (!prefilter) {
		for (i = 0; i < r->nrule; i++)
			if (r->rule[i].enabled && (r->rule[i].roles & role))
				rules_confirm(r, i, role, &nhits);
		goto done;
	}
	/* the work is proportional to the literals found, not to the rules */
	r->ntouched = 0;
	if (r->nlit > 0) {
		if (rules_text(r, NORM_ALL) == -1)
			goto done;
		acm_scan(r->acm, r->ntext[NORM_ALL], r->nlen[NORM_ALL],
		    rules_cand_cb, r);
	}
	for (k = 0; k < r->ntouched; k++) {
		i = r->touched[k];
		if ((r->rule[i].roles & role) &&
		    rules_candidate(&r->rule[i], r->seen[i]))
			rules_confirm(r, i, role, &nhits);
		r->seen[i] = 0;
	}
	for (k = 0; k < r->nalways; k++) {
		i = r->always[k];
		if (r->rule[i].roles & role)
			rules_confirm(r, i, role, &nhits);
	}
done:
	if (nhits > 1)
		qsort(r->hits, nhits, sizeof(*r->hits), rules_hit_cmp);
	*hits = r->hits;
	return nhits;
}

size_t
rules_match(struct rules *r, enum rules_role role, const char *text,
    size_t len, const struct rules_hit **hits)
{
	return rules_run(r, role, text, len, 1, -1, hits);
}

size_t
rules_match_naive(struct rules *r, enum rules_role role, const char *text,
    size_t len, const struct rules_hit **hits)
{
	return rules_run(r, role, text, len, 0, -1, hits);
}

/*
 * Whether rule i fires on text. An enabled rule goes the way every message
 * goes, prefilter included, so its examples also prove that the literals
 * taken from its pattern are right.
 */
static int
rules_example_fires(struct rules *r, size_t i, enum rules_role role,
    const char *text)
{
	const struct rules_hit	*hits;
	size_t			 n, k;

	if (!r->rule[i].enabled)
		return rules_run(r, role, text, strlen(text), 0, (ssize_t)i,
		    &hits) > 0;
	n = rules_run(r, role, text, strlen(text), 1, -1, &hits);
	for (k = 0; k < n; k++)
		if (hits[k].rule == r->rule[i].proto.rule)
			return 1;
	return 0;
}

size_t
rules_test(struct rules *r, void (*cb)(const struct rules_example *, void *),
    void *arg)
{
	struct rules_example	 e;
	size_t			 i, k, fails = 0;
	enum rules_role		 role;

	for (i = 0; i < r->nrule; i++) {
		struct rule *ru = &r->rule[i];

		role = ru->roles & RULES_AGENT ? RULES_AGENT : RULES_CUSTOMER;
		for (k = 0; k < ru->nex; k++) {
			e.rule = ru->proto.rule;
			e.file = ru->file;
			e.line = ru->ex[k].line;
			e.text = ru->ex[k].text;
			e.want_match = ru->ex[k].want;
			e.ok = rules_example_fires(r, i, role, e.text) == e.want_match;
			if (!e.ok)
				fails++;
			if (cb != NULL)
				cb(&e, arg);
		}
	}
	return fails;
}

/* --- loading -------------------------------------------------------------- */

static void
rules_example_err(const struct rules_example *e, void *arg)
{
	struct sbuf	*errs = arg;

	if (!e->ok)
		rules_err(errs, e->file, e->line, "rule %s: example \"%s\" %s",
		    e->rule, e->text, e->want_match ? "should match but does not" :
		    "matches but should not");
}

struct rules *
rules_load_files(char *const *paths, size_t npaths, unsigned flags,
    struct sbuf *errs)
{
	struct rules		*r;
	struct rules_doc	*docs = NULL;
	yaml_node_t		*root, *item, *k;
	yaml_node_item_t	*it;
	size_t			 f, nerr = 0, nmax = 0;
	unsigned		 m;
	const char		*kind;
	int			 pass;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		goto oom;
	r->jit = !(flags & RULES_NO_JIT);
	if ((r->acm = acm_new()) == NULL ||
	    (docs = calloc(npaths ? npaths : 1, sizeof(*docs))) == NULL)
		goto oom;
	for (m = 0; m < RULES_NMASKS; m++)
		if ((r->norm[m] = norm_new()) == NULL)
			goto oom;
	if ((r->md = pcre2_match_data_create(32, NULL)) == NULL ||
	    (r->mctx = pcre2_match_context_create(NULL)) == NULL)
		goto oom;
	pcre2_set_match_limit(r->mctx, RULES_MATCH_LIMIT);
	pcre2_set_depth_limit(r->mctx, RULES_MATCH_LIMIT / 10);

	for (f = 0; f < npaths; f++)
		if (rules_parse_file(paths[f], &docs[f], errs) == -1)
			nerr++;

	/* pass 0: lists and macros of every file; pass 1: the rules */
	for (pass = 0; pass < 2; pass++) {
		for (f = 0; f < npaths; f++) {
			struct rules_doc *d = &docs[f];

			if (d->file == NULL || (root = yaml_document_get_root_node(&d->doc)) == NULL)
				continue;
			if (root->type != YAML_SEQUENCE_NODE) {
				if (pass == 0)
					rules_doc_err(d, root, "expected a list of "
					    "'- list:', '- macro:' and '- rule:' items");
				continue;
			}
			for (it = root->data.sequence.items.start;
			    it < root->data.sequence.items.top; it++) {
				item = yaml_document_get_node(&d->doc, *it);
				if (item == NULL || item->type != YAML_MAPPING_NODE ||
				    item->data.mapping.pairs.start == item->data.mapping.pairs.top) {
					if (pass == 0)
						rules_doc_err(d, item, "expected '- list:', "
						    "'- macro:' or '- rule:'");
					continue;
				}
				k = yaml_document_get_node(&d->doc,
				    item->data.mapping.pairs.start->key);
				kind = k && k->type == YAML_SCALAR_NODE ?
				    (const char *)k->data.scalar.value : "";
				if (strcmp(kind, "list") == 0 || strcmp(kind, "macro") == 0) {
					if (pass == 0 && rules_add_def(r, d, item,
					    kind[0] == 'l') == -1)
						goto oom;
				} else if (strcmp(kind, "rule") == 0) {
					if (pass == 1 && rules_add_rule(r, d, item) == -1)
						goto oom;
				} else if (pass == 0)
					rules_doc_err(d, item, "unknown item '%s': "
					    "expected list, macro or rule first", kind);
			}
		}
	}
	for (f = 0; f < npaths; f++)
		nerr += docs[f].nerr;
	if (rules_build_literals(r) == -1)
		goto oom;
	for (f = 0; f < r->nlit; f++)
		free(r->lit[f]);
	free(r->lit);
	r->lit = NULL;
	nmax = r->nrule;
	if ((r->seen = calloc(nmax ? nmax : 1, sizeof(*r->seen))) == NULL ||
	    (r->touched = calloc(nmax ? nmax : 1, sizeof(*r->touched))) == NULL ||
	    (r->always = calloc(nmax ? nmax : 1, sizeof(*r->always))) == NULL ||
	    (r->hits = calloc(nmax ? nmax : 1, sizeof(*r->hits))) == NULL)
		goto oom;
	for (f = 0; f < r->nrule; f++) {
		if (!r->rule[f].enabled)
			continue;
		r->enabled++;
		if (r->rule[f].always)
			r->always[r->nalways++] = (uint32_t)f;
	}
	if (nerr == 0 && !(flags & RULES_SKIP_EXAMPLES))
		nerr += rules_test(r, rules_example_err, errs);
	for (f = 0; f < npaths; f++)
		if (docs[f].file != NULL)
			yaml_document_delete(&docs[f].doc);
	free(docs);
	if (nerr > 0) {
		rules_free(r);
		return NULL;
	}
	return r;
oom:
	sbuf_line(errs, "rules: out of memory");
	if (docs != NULL)
		for (f = 0; f < npaths; f++)
			if (docs[f].file != NULL)
				yaml_document_delete(&docs[f].doc);
	free(docs);
	rules_free(r);
	return NULL;
}

static int
rules_path_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct rules *
rules_load_dir(const char *dir, unsigned flags, struct sbuf *errs)
{
	struct rules	*r = NULL;
	struct dirent	*de;
	DIR		*dp;
	char		**paths = NULL, **np;
	size_t		 n = 0, i, l;

	if ((dp = opendir(dir)) == NULL) {
		rules_err(errs, dir, 0, "cannot open the rules directory: %s",
		    strerror(errno));
		return NULL;
	}
	while ((de = readdir(dp)) != NULL) {
		l = strlen(de->d_name);
		if (de->d_name[0] == '.' || l < 6 ||
		    (strcmp(de->d_name + l - 5, ".yaml") != 0 &&
		    strcmp(de->d_name + l - 4, ".yml") != 0))
			continue;
		if ((np = realloc(paths, (n + 1) * sizeof(*np))) == NULL)
			goto oom;
		paths = np;
		if (asprintf(&paths[n], "%s/%s", dir, de->d_name) == -1)
			goto oom;
		n++;
	}
	closedir(dp);
	dp = NULL;
	if (n == 0)
		rules_err(errs, dir, 0, "no *.yaml rule files");
	else {
		qsort(paths, n, sizeof(*paths), rules_path_cmp);
		r = rules_load_files(paths, n, flags, errs);
	}
	goto out;
oom:
	sbuf_line(errs, "rules: out of memory");
out:
	if (dp != NULL)
		closedir(dp);
	for (i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	return r;
}

void
rules_free(struct rules *r)
{
	size_t		i, k;
	unsigned	m;

	if (r == NULL)
		return;
	for (i = 0; i < r->nrule; i++)
		rules_free_rule(&r->rule[i]);
	free(r->rule);
	for (i = 0; i < r->ndef; i++) {
		for (k = 0; k < r->def[i].nitems; k++)
			free(r->def[i].items[k]);
		free(r->def[i].items);
		free(r->def[i].pattern);
		free(r->def[i].name);
		free(r->def[i].file);
	}
	free(r->def);
	acm_free(r->acm);
	if (r->lit != NULL)
		for (i = 0; i < r->nlit; i++)
			free(r->lit[i]);
	free(r->lit);
	free(r->lit_rule);
	free(r->lit_end);
	for (m = 0; m < RULES_NMASKS; m++)
		norm_free(r->norm[m]);
	free(r->seen);
	free(r->touched);
	free(r->always);
	free(r->lit_bit);
	free(r->hits);
	pcre2_match_data_free(r->md);
	pcre2_match_context_free(r->mctx);
	free(r);
}

size_t
rules_count(const struct rules *r)
{
	return r->enabled;
}

int
rules_jit(const struct rules *r)
{
	return r->jit;
}
