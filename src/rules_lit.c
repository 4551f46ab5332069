/* rules_lit: the literals every match of a PCRE2 pattern must contain, read from the pattern's text (pure: no regex engine, no I/O). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <utf8proc.h>

#include "rules_lit.h"

#define RULES_MAX_SET		512	/* literals in one required set */
#define RULES_MAX_CROSS		64	/* strings of a concatenation kept exact */
#define RULES_MAX_CLASS		32	/* characters of a class read as a set */

/* The characters a backslash makes literal, in a class as outside one. */
static const char rules_lit_meta[] = ".^$|()[]{}*+?\\/-#&~ \"'";

/*
 * What a piece of a pattern tells the prefilter: `exact`, when known, is
 * every string the piece can match (a small finite set); `req` is a list of
 * literal sets such that every match contains a literal of each set (加我
 * ... 微信: one of {加, 添加} and one of {微信, vx}). A rule is a candidate
 * only when a literal of every one of its sets occurs, so a common word in
 * one set costs little when another set is rare. A NULL exact set, or an
 * empty list, means "unknown": the piece constrains nothing.
 */
struct rules_lit_info {
	struct rules_lit_set	*exact;
	struct rules_lit_req	 req;
};

static void
rules_lit_set_free(struct rules_lit_set *l)
{
	if (l == NULL)
		return;
	if (l->s != l->inl_s) {
		free(l->s);
		free(l->h);
	}
	free(l);
}

static struct rules_lit_set *
rules_lit_set_new(void)
{
	struct rules_lit_set	*l;

	if ((l = malloc(sizeof(*l))) == NULL)
		return NULL;
	l->s = l->inl_s;
	l->h = l->inl_h;
	l->n = l->wmin = 0;
	l->cap = RULES_LIT_INLINE;
	return l;
}

/* Room for cap literals (cap > l->cap); -1 on ENOMEM, l unchanged. */
static int
rules_lit_set_grow(struct rules_lit_set *l, size_t cap)
{
	char		(*ns)[RULES_MAX_LIT + 1];
	uint32_t	 *nh;

	if ((ns = malloc(cap * sizeof(*ns))) == NULL)
		return -1;
	if ((nh = malloc(cap * sizeof(*nh))) == NULL) {
		free(ns);
		return -1;
	}
	memcpy(ns, l->s, l->n * sizeof(*ns));
	memcpy(nh, l->h, l->n * sizeof(*nh));
	if (l->s != l->inl_s) {
		free(l->s);
		free(l->h);
	}
	l->s = ns;
	l->h = nh;
	l->cap = cap;
	return 0;
}

static size_t	rules_lit_weight(const char *, size_t);

/* FNV-1a: only to tell literals apart before comparing them. */
static uint32_t
rules_lit_hash(const char *s, size_t n)
{
	uint32_t	h = 2166136261u;

	while (n-- > 0)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/*
 * Adds a copy of s (n bytes, no NUL among them; truncated to RULES_MAX_LIT
 * bytes at a UTF-8 boundary); -1 on ENOMEM or overflow. The loader builds
 * about a million sets a pack, one string at a time: a copy is found by
 * its hash, and the set's weight is kept as it grows.
 */
static int
rules_lit_set_add(struct rules_lit_set *l, const char *s, size_t n)
{
	uint32_t	h;
	size_t		i, w;

	if (n > RULES_MAX_LIT) {
		n = RULES_MAX_LIT;
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	h = rules_lit_hash(s, n);
	for (i = 0; i < l->n; i++)
		if (l->h[i] == h && strncmp(l->s[i], s, n) == 0 &&
		    l->s[i][n] == '\0')
			return 0;
	if (l->n >= RULES_MAX_SET)
		return -1;
	/* doubling: sets are built one string at a time */
	if (l->n == l->cap && rules_lit_set_grow(l, 2 * l->cap) == -1)
		return -1;
	memcpy(l->s[l->n], s, n);
	l->s[l->n][n] = '\0';
	l->h[l->n] = h;
	w = rules_lit_weight(s, n);
	if (l->n == 0 || w < l->wmin)
		l->wmin = w;
	l->n++;
	return 0;
}

static struct rules_lit_set *
rules_lit_set_one(const char *s, size_t n)
{
	struct rules_lit_set	*l;

	if ((l = rules_lit_set_new()) == NULL || rules_lit_set_add(l, s, n) == -1) {
		rules_lit_set_free(l);
		return NULL;
	}
	return l;
}

/*
 * The characters of everyday chat (the most frequent in Chinese text, and
 * the polite forms of customer service): as rare as one Latin letter. A
 * switch, not a search in a string: the weights are read for every
 * character of every set the loader builds (about two billion
 * instructions of a pack's load went to strstr).
 */
static int
rules_lit_common(uint32_t c)
{
	switch (c) {
	case u'的': case u'一': case u'是': case u'不': case u'了': case u'我':
	case u'你': case u'您': case u'亲': case u'在': case u'有': case u'人':
	case u'这': case u'个': case u'们': case u'中': case u'来': case u'上':
	case u'大': case u'为': case u'和': case u'到': case u'以': case u'说':
	case u'时': case u'要': case u'就': case u'出': case u'会': case u'可':
	case u'也': case u'能': case u'对': case u'下': case u'过': case u'后':
	case u'得': case u'没': case u'好': case u'吗': case u'呢': case u'吧':
	case u'啊': case u'哦': case u'嗯': case u'呀': case u'哈': case u'么':
	case u'那': case u'都': case u'看': case u'还': case u'把': case u'给':
	case u'让': case u'用': case u'去': case u'发': case u'加': case u'买':
	case u'货': case u'单': case u'天': case u'号': case u'请': case u'问':
	case u'哪':
		return 1;
	default:
		return 0;
	}
}

/* A character's weight (its n bytes at p): how rarely it occurs in chat, roughly. */
static size_t
rules_lit_char_weight(const unsigned char *p, size_t n)
{
	if (n == 1)
		return 1;
	if (n == 3 && rules_lit_common((uint32_t)(p[0] & 0x0f) << 12 |
	    (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f)))
		return 1;
	return 3;
}

/* A literal's weight: the sum of its characters'. */
static size_t
rules_lit_weight(const char *s, size_t len)
{
	const unsigned char	*p = (const unsigned char *)s, *end = p + len;
	size_t			 w = 0, n;

	for (; p < end; p += n) {
		for (n = 1; p + n < end && (p[n] & 0xc0) == 0x80; n++)
			;
		w += rules_lit_char_weight(p, n);
	}
	return w;
}

/*
 * How selective a set is: its weakest literal's weight (a rare Chinese
 * character counts as three Latin letters, a common one as one). 0 for an
 * empty or unknown set.
 */
static size_t
rules_lit_set_score(const struct rules_lit_set *l)
{
	return l == NULL || l->n == 0 ? 0 : l->wmin;
}

/* a better than b: more selective, then fewer literals. */
static int
rules_lit_set_better(const struct rules_lit_set *a,
    const struct rules_lit_set *b)
{
	size_t	sa = rules_lit_set_score(a), sb = rules_lit_set_score(b);

	return sa > sb || (sa == sb && sa > 0 && a->n < b->n);
}

void
rules_lit_req_clear(struct rules_lit_req *q)
{
	size_t	i;

	for (i = 0; i < q->n; i++)
		rules_lit_set_free(q->set[i]);
	q->n = 0;
}

/* Adds a set (stolen) to the list; when full, the weakest set goes. */
static void
rules_lit_req_add(struct rules_lit_req *q, struct rules_lit_set *l)
{
	size_t	i, w = 0;

	if (rules_lit_set_score(l) == 0) {
		rules_lit_set_free(l);
		return;
	}
	if (q->n < RULES_MAX_AND) {
		q->set[q->n++] = l;
		return;
	}
	for (i = 1; i < q->n; i++)
		if (rules_lit_set_better(q->set[w], q->set[i]))
			w = i;
	if (rules_lit_set_better(l, q->set[w])) {
		rules_lit_set_free(q->set[w]);
		q->set[w] = l;
	} else
		rules_lit_set_free(l);
}

/* Moves every set of src to dst. */
static void
rules_lit_req_merge(struct rules_lit_req *dst, struct rules_lit_req *src)
{
	size_t	i;

	for (i = 0; i < src->n; i++)
		rules_lit_req_add(dst, src->set[i]);
	src->n = 0;
}

/*
 * Drops the sets of one common word (你, 不, 加) from a clause that has a
 * set of at least one rare character: each occurrence of a common word
 * costs a report from the automaton in almost every message (不 alone was
 * a literal of 55 branches), and the rarer set keeps the rule from being
 * a candidate nearly as well.
 */
void
rules_lit_req_trim(struct rules_lit_req *q)
{
	size_t	i, k = 0, strong = 0;

	for (i = 0; i < q->n; i++)
		if (rules_lit_set_score(q->set[i]) >= 3)
			strong = 1;
	if (!strong)
		return;
	for (i = 0; i < q->n; i++) {
		if (rules_lit_set_score(q->set[i]) <= 1)
			rules_lit_set_free(q->set[i]);
		else
			q->set[k++] = q->set[i];
	}
	q->n = k;
}

/* The index of the most selective set, or -1. */
static ssize_t
rules_lit_req_best(const struct rules_lit_req *q)
{
	size_t	i, b = 0;

	if (q->n == 0)
		return -1;
	for (i = 1; i < q->n; i++)
		if (rules_lit_set_better(q->set[i], q->set[b]))
			b = i;
	return (ssize_t)b;
}

/* The union of a and b, or NULL when it would be too big; frees both. */
static struct rules_lit_set *
rules_lit_set_union(struct rules_lit_set *a, struct rules_lit_set *b)
{
	size_t	i;

	if (a == NULL || b == NULL)
		goto fail;
	for (i = 0; i < b->n; i++)
		if (rules_lit_set_add(a, b->s[i], strlen(b->s[i])) == -1)
			goto fail;
	rules_lit_set_free(b);
	return a;
fail:
	rules_lit_set_free(a);
	rules_lit_set_free(b);
	return NULL;
}

/* Every concatenation x+y, or NULL when too big; a and b stay the caller's. */
static struct rules_lit_set *
rules_lit_set_cross(const struct rules_lit_set *a,
    const struct rules_lit_set *b)
{
	struct rules_lit_set	*l;
	char			 buf[2 * RULES_MAX_LIT + 1];
	size_t			 i, j, na, nb;

	if (a == NULL || b == NULL || a->n * b->n > RULES_MAX_CROSS)
		return NULL;
	if ((l = rules_lit_set_new()) == NULL)
		return NULL;
	for (i = 0; i < a->n; i++)
		for (j = 0; j < b->n; j++) {
			na = strlen(a->s[i]);
			nb = strlen(b->s[j]);
			memcpy(buf, a->s[i], na);
			memcpy(buf + na, b->s[j], nb);
			if (rules_lit_set_add(l, buf, na + nb) == -1) {
				rules_lit_set_free(l);
				return NULL;
			}
		}
	return l;
}

/* A copy of a: its literals are distinct already, so none is looked for. */
static struct rules_lit_set *
rules_lit_set_dup(const struct rules_lit_set *a)
{
	struct rules_lit_set	*l;

	if (a == NULL || (l = rules_lit_set_new()) == NULL)
		return NULL;
	if (a->n > l->cap && rules_lit_set_grow(l, a->n) == -1)
		goto fail;
	l->n = a->n;
	memcpy(l->s, a->s, a->n * sizeof(*l->s));
	memcpy(l->h, a->h, a->n * sizeof(*l->h));
	l->wmin = a->wmin;
	return l;
fail:
	rules_lit_set_free(l);
	return NULL;
}

/* The required set of an exact set: the set itself unless it holds "". */
static struct rules_lit_set *
rules_lit_exact_req(const struct rules_lit_set *e)
{
	size_t	i;

	if (e == NULL)
		return NULL;
	for (i = 0; i < e->n; i++)
		if (e->s[i][0] == '\0')
			return NULL;
	return rules_lit_set_dup(e);
}

/*
 * A small recursive-descent reading of the (expanded) PCRE2 pattern: only
 * what is needed to find required literals. Anything it does not know makes
 * the piece "unknown", which is always safe: the rule is then confirmed on
 * every message.
 */
struct rules_lit_px {
	const char	*p;
	const char	*end;
};

static void	rules_lit_px_alt(struct rules_lit_px *, struct rules_lit_info *);

static void
rules_lit_info_clear(struct rules_lit_info *i)
{
	rules_lit_set_free(i->exact);
	i->exact = NULL;
	rules_lit_req_clear(&i->req);
}

/* Skips a [...] class. */
static void
rules_lit_px_class(struct rules_lit_px *x)
{
	x->p++;
	if (x->p < x->end && *x->p == '^')
		x->p++;
	if (x->p < x->end && *x->p == ']')
		x->p++;
	while (x->p < x->end && *x->p != ']') {
		if (*x->p == '\\' && x->p + 1 < x->end && x->p[1] == 'Q') {
			/* \Q...\E quotes a ']' too: [\Qv]\E] holds v and ] */
			for (x->p += 2; x->p + 1 < x->end &&
			    !(x->p[0] == '\\' && x->p[1] == 'E'); x->p++)
				;
			if (x->p + 1 >= x->end)
				x->p = x->end;
			else
				x->p++;	/* on the E: the loop steps past it */
		} else if (*x->p == '\\' && x->p + 1 < x->end)
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

/*
 * The characters a class [s, e) can match, when it is a plain list of at
 * most RULES_MAX_CLASS characters ([码款], [给帮]): no negation, range,
 * escape of a letter (\d, \x, \p) or POSIX name. NULL otherwise.
 */
static struct rules_lit_set *
rules_lit_class_set(const char *s, const char *e)
{
	struct rules_lit_set	*l;
	const char		*p = s + 1;
	char			 c;
	size_t			 n;

	if (e - s < 3 || e[-1] != ']' || *p == '^' ||
	    (l = rules_lit_set_new()) == NULL)
		return NULL;
	for (; p < e - 1; p += n) {
		c = *p;
		n = 1;
		if (c == '\\') {
			if (p + 1 >= e - 1 ||
			    strchr(rules_lit_meta, p[1]) == NULL)
				goto unknown;
			c = p[1];
			p++;
		} else if ((c == '[' && p[1] == ':') ||
		    (c == '-' && p != s + 1 && p + 1 < e - 1))
			goto unknown;	/* [:digit:], a range */
		else if ((unsigned char)c >= 0x80)
			while (p + n < e - 1 && ((unsigned char)p[n] & 0xc0) == 0x80)
				n++;
		else if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (l->n == RULES_MAX_CLASS ||
		    rules_lit_set_add(l, n == 1 ? &c : p, n) == -1)
			goto unknown;
	}
	return l;
unknown:
	rules_lit_set_free(l);
	return NULL;
}

/* One atom: sets *info; returns 0, or -1 when the pattern cannot be read. */
/* Skips a bracketed argument: {..}, <..> or '..'; 0 when there is none. */
static int
rules_lit_px_bracket(struct rules_lit_px *x)
{
	char	close;

	if (x->p >= x->end)
		return 0;
	switch (*x->p) {
	case '{':
		close = '}';
		break;
	case '<':
		close = '>';
		break;
	case '\'':
		close = '\'';
		break;
	default:
		return 0;
	}
	x->p++;
	while (x->p < x->end && *x->p++ != close)
		;
	return 1;
}

/* Whether case folding changes the one character s[0, n) (valid UTF-8). */
static int
rules_lit_folds(const char *s, size_t n)
{
	utf8proc_int32_t	cp, out[8];
	int			bound = 0;

	if (utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
	    &cp) != (utf8proc_ssize_t)n)
		return 1;
	return utf8proc_decompose_char(cp, out, 8, UTF8PROC_CASEFOLD, &bound) != 1 ||
	    out[0] != cp;
}

/* Skips the rest of the escape \c whose letter was just read. */
static void
rules_lit_px_escape(struct rules_lit_px *x, char c)
{
	int	n;

	switch (c) {
	case 'x':			/* \x{hhh} or \xhh */
		if (!rules_lit_px_bracket(x))
			for (n = 0; n < 2 && x->p < x->end &&
			    strchr("0123456789abcdefABCDEF", *x->p) != NULL; n++)
				x->p++;
		break;
	case 'o': case 'N': case 'k':	/* \o{ooo} \N{U+hhhh} \k<n> \k{n} \k'n' */
		rules_lit_px_bracket(x);
		break;
	case 'p': case 'P':		/* \p{Han} or \pL */
		if (!rules_lit_px_bracket(x) && x->p < x->end)
			x->p++;
		break;
	case 'c':			/* \cA */
		if (x->p < x->end)
			x->p++;
		break;
	case 'g':			/* \g{n} \g<n> \g'n' \gn \g-n \g+n */
		if (!rules_lit_px_bracket(x)) {
			if (x->p < x->end && (*x->p == '-' || *x->p == '+'))
				x->p++;
			while (x->p < x->end && *x->p >= '0' && *x->p <= '9')
				x->p++;
		}
		break;
	default:
		/* \1..\9: a back-reference or an octal escape, and its digits */
		if (c >= '0' && c <= '9')
			while (x->p < x->end && *x->p >= '0' && *x->p <= '9')
				x->p++;
		break;
	}
}

static int
rules_lit_px_atom(struct rules_lit_px *x, struct rules_lit_info *info)
{
	const char	*s = x->p;
	char		 c;
	size_t		 n;

	memset(info, 0, sizeof(*info));
	c = *x->p;
	if (c == '(') {
		x->p++;
		/* a verb, (*UCP) or (*MARK:...): too rare to read, so no literal at all */
		if (x->p < x->end && *x->p == '*')
			return -1;
		if (x->p + 1 < x->end && x->p[0] == '?' && x->p[1] == '#') {
			/* a comment: matches nothing */
			while (x->p < x->end && *x->p != ')')
				x->p++;
			if (x->p >= x->end)
				return -1;
			x->p++;
			info->exact = rules_lit_set_one("", 0);
			return 0;
		}
		if (x->p < x->end && *x->p == '?') {
			x->p++;
			/* a subroutine call or recursion matches what it calls: unknown */
			if (x->p < x->end && (strchr("0123456789+-&R", *x->p) != NULL ||
			    (*x->p == 'P' && x->p + 1 < x->end && x->p[1] == '>')))
				return -1;
			/* (?P=name), a back-reference: an atom of unknown text, as \1 */
			if (x->p + 1 < x->end && *x->p == 'P' && x->p[1] == '=') {
				while (x->p < x->end && *x->p != ')')
					x->p++;
				if (x->p >= x->end)
					return -1;
				x->p++;
				return 0;
			}
			if (x->p < x->end && (*x->p == ':' || *x->p == '>' || *x->p == '|'))
				x->p++;
			else if (x->p + 1 < x->end && (*x->p == '=' || *x->p == '!' ||
			    (*x->p == '<' && (x->p[1] == '=' || x->p[1] == '!')))) {
				/* a lookaround matches nothing itself */
				x->p += *x->p == '<' ? 2 : 1;
				rules_lit_px_alt(x, info);
				rules_lit_info_clear(info);
				info->exact = rules_lit_set_one("", 0);
				if (x->p < x->end && *x->p == ')')
					x->p++;
				return 0;
			} else if (x->p < x->end && (*x->p == '<' || *x->p == 'P' ||
			    *x->p == '\'')) {
				/* a named group: (?<n>, (?P<n>, (?'n' */
				if (*x->p == '\'')
					x->p++;
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
					info->exact = rules_lit_set_one("", 0);
					return 0;
				}
				x->p++;
			}
		}
		rules_lit_px_alt(x, info);
		if (x->p >= x->end || *x->p != ')')
			return -1;
		x->p++;
		return 0;
	}
	if (c == '[') {
		rules_lit_px_class(x);
		info->exact = rules_lit_class_set(s, x->p);
		return 0;
	}
	if (c == '.') {
		x->p++;
		return 0;
	}
	if (c == '^' || c == '$') {
		x->p++;
		info->exact = rules_lit_set_one("", 0);
		return 0;
	}
	if (c == '\\') {
		x->p++;
		if (x->p >= x->end)
			return -1;
		c = *x->p++;
		if (strchr("bBAzZG", c) != NULL) {
			info->exact = rules_lit_set_one("", 0);
			return 0;
		}
		if (c == 'Q') {
			const char	*e = x->p;
			char		*q;
			size_t		 k;

			while (e + 1 < x->end && !(e[0] == '\\' && e[1] == 'E'))
				e++;
			if (e + 1 >= x->end)
				e = x->end;
			/* literal text, ASCII letters folded as the text is */
			info->exact = rules_lit_set_one(x->p, (size_t)(e - x->p));
			if (info->exact != NULL && info->exact->n == 1)
				for (q = info->exact->s[0], k = 0; q[k] != '\0'; k++)
					if (q[k] >= 'A' && q[k] <= 'Z')
						q[k] = (char)(q[k] - 'A' + 'a');
			x->p = e < x->end ? e + 2 : e;
			return 0;
		}
		if (strchr(rules_lit_meta, c) != NULL) {
			info->exact = rules_lit_set_one(&c, 1);
			return 0;
		}
		/*
		 * \d \w \s, characters by number, properties, control
		 * characters, back-references: an atom of unknown text, read
		 * whole so that its tail is not taken for literals
		 */
		rules_lit_px_escape(x, c);
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
	/*
	 * Another letter that case folding changes (É, Σ, ß): the text never
	 * holds it as written, so it is no literal to look for; an atom of
	 * unknown text (the pattern still matches it caselessly)
	 */
	if (n > 1 && rules_lit_folds(s, n))
		return 0;
	if (n == 1 && c >= 'A' && c <= 'Z')
		c = (char)(c - 'A' + 'a');
	info->exact = n == 1 ? rules_lit_set_one(&c, 1) : rules_lit_set_one(s, n);
	return 0;
}

/* Applies a quantifier after an atom, if there is one. */
static void
rules_lit_px_quant(struct rules_lit_px *x, struct rules_lit_info *info)
{
	int	min_one, optional;

	if (x->p >= x->end)
		return;
	/* x? is x or nothing: still exact, so 不(?:太)?清楚 reads 不清楚|不太清楚 */
	optional = *x->p == '?' || (x->p + 4 < x->end &&
	    strncmp(x->p, "{0,1}", 5) == 0);
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
	if (!optional || info->exact == NULL ||
	    rules_lit_set_add(info->exact, "", 0) == -1) {
		/* x+ still requires one of x's strings */
		if (min_one && info->req.n == 0)
			rules_lit_req_add(&info->req, rules_lit_exact_req(info->exact));
		rules_lit_set_free(info->exact);
		info->exact = NULL;
	}
	if (!min_one)
		rules_lit_req_clear(&info->req);
}

/*
 * A run of atoms whose strings are all known (不(?:太)?清楚 in 我不(?:太)?清楚.*)
 * is one required set, stronger than its characters one by one: added to
 * req when the run ends (at an atom of unknown text, or when the run would
 * grow too big), unless it may be empty.
 */
static void
rules_lit_run_end(struct rules_lit_req *req, struct rules_lit_set **run,
    size_t *natoms)
{
	if (*natoms > 0)
		rules_lit_req_add(req, rules_lit_exact_req(*run));
	rules_lit_set_free(*run);
	*run = rules_lit_set_one("", 0);
	*natoms = 0;
}

/*
 * A concatenation, up to '|' or ')'. Its exact strings are the run's when
 * every atom joined the run (nothing was flushed): one chain of crosses,
 * not two.
 */
static void
rules_lit_px_seq(struct rules_lit_px *x, struct rules_lit_info *out)
{
	struct rules_lit_info	 a;
	struct rules_lit_set	*cross, *run;
	size_t			 natoms = 0;
	int			 whole = 1;

	memset(out, 0, sizeof(*out));
	run = rules_lit_set_one("", 0);
	while (x->p < x->end && *x->p != '|' && *x->p != ')') {
		if (rules_lit_px_atom(x, &a) == -1) {
			rules_lit_info_clear(&a);
			x->p = x->end;
			rules_lit_info_clear(out);
			rules_lit_set_free(run);
			return;
		}
		rules_lit_px_quant(x, &a);
		/* an atom of known strings joins the run; the others bring their sets */
		cross = NULL;
		if (a.exact != NULL && run != NULL &&
		    (cross = rules_lit_set_cross(run, a.exact)) == NULL) {
			whole = 0;	/* too many strings: the sequence's are unknown */
			rules_lit_run_end(&out->req, &run, &natoms);
			if (run != NULL)
				cross = rules_lit_set_cross(run, a.exact);
		}
		if (cross != NULL) {
			rules_lit_set_free(run);
			run = cross;
			natoms++;
		} else {
			whole = 0;
			rules_lit_run_end(&out->req, &run, &natoms);
			if (a.req.n == 0)
				rules_lit_req_add(&a.req, rules_lit_exact_req(a.exact));
			rules_lit_req_merge(&out->req, &a.req);
		}
		rules_lit_info_clear(&a);
	}
	if (whole && run != NULL) {
		/* the whole sequence as one literal beats its parts */
		out->exact = run;
		rules_lit_req_clear(&out->req);
		rules_lit_req_add(&out->req, rules_lit_exact_req(out->exact));
		return;
	}
	rules_lit_run_end(&out->req, &run, &natoms);
	rules_lit_set_free(run);
}

/*
 * Either branch may match, so only a literal set taken from each can be
 * required: the union of each branch's most selective set.
 */
static void
rules_lit_req_or(struct rules_lit_req *a, struct rules_lit_req *b)
{
	struct rules_lit_set	*u;
	ssize_t			 ia = rules_lit_req_best(a), ib = rules_lit_req_best(b);

	if (ia < 0 || ib < 0) {
		rules_lit_req_clear(a);
		rules_lit_req_clear(b);
		return;
	}
	u = rules_lit_set_union(a->set[ia], b->set[ib]);
	a->set[ia] = b->set[ib] = NULL;
	rules_lit_req_clear(a);
	rules_lit_req_clear(b);
	rules_lit_req_add(a, u);
}

/* An alternation: every branch must give a required set for the whole to have one. */
static void
rules_lit_px_alt(struct rules_lit_px *x, struct rules_lit_info *out)
{
	struct rules_lit_info	b;
	int			first = 1;

	memset(out, 0, sizeof(*out));
	for (;;) {
		rules_lit_px_seq(x, &b);
		if (first) {
			*out = b;
			first = 0;
		} else {
			out->exact = rules_lit_set_union(out->exact, b.exact);
			rules_lit_req_or(&out->req, &b.req);
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
size_t
rules_lit_required(const char *pattern,
    struct rules_lit_req clause[RULES_MAX_CLAUSE])
{
	struct rules_lit_px	x = { pattern, pattern + strlen(pattern) };
	struct rules_lit_info	info;
	size_t			n = 0, i;

	for (;;) {
		rules_lit_px_seq(&x, &info);
		if (info.req.n == 0)
			goto none;	/* an alternative that requires nothing */
		if (n < RULES_MAX_CLAUSE)
			rules_lit_req_merge(&clause[n++], &info.req);
		else
			rules_lit_req_or(&clause[n - 1], &info.req);
		rules_lit_info_clear(&info);
		if (x.p < x.end && *x.p == '|') {
			x.p++;
			continue;
		}
		break;
	}
	if (x.p == x.end)
		return n;
none:
	rules_lit_info_clear(&info);
	for (i = 0; i < n; i++)
		rules_lit_req_clear(&clause[i]);
	return 0;
}

/*
 * The characters of a class [s, e) for a tail: a plain list as
 * rules_lit_class_set reads it, or ranges of ASCII digits or letters
 * ([0-9], [a-z0-9_-]), at most 64 characters. NULL otherwise.
 */
static struct rules_lit_set *
rules_lit_class_tail(const char *s, const char *e)
{
	struct rules_lit_set	*l;
	const char		*p = s + 1;
	char			 c, hi;

	if ((l = rules_lit_class_set(s, e)) != NULL)
		return l;
	if (e - s < 3 || e[-1] != ']' || *p == '^' ||
	    (l = rules_lit_set_new()) == NULL)
		return NULL;
	for (; p < e - 1; p++) {
		c = *p;
		hi = c;
		if (c == '\\' || c == '[' || (unsigned char)c >= 0x80)
			goto unknown;
		if (p + 2 < e - 1 && p[1] == '-') {
			hi = p[2];
			p += 2;
			if (!((c >= '0' && hi <= '9') || (c >= 'a' && hi <= 'z') ||
			    (c >= 'A' && hi <= 'Z')) || hi < c)
				goto unknown;
		}
		for (; c <= hi; c++) {
			char f = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;

			if (l->n == 64 || rules_lit_set_add(l, &f, 1) == -1)
				goto unknown;
		}
	}
	return l;
unknown:
	rules_lit_set_free(l);
	return NULL;
}

/* Where the alternatives of the group at s start, or NULL for a group of another kind. */
static const char *
rules_lit_group_body(const char *s, const char *end)
{
	const char	*p;

	if (s + 2 >= end || s[0] != '(')
		return NULL;
	if (s[1] != '?')
		return s + 1;
	if (strchr(":>|", s[2]) != NULL)
		return s + 3;
	if ((s[2] == '<' && s + 3 < end && s[3] != '=' && s[3] != '!') ||
	    s[2] == 'P' || s[2] == '\'') {
		for (p = s + 3; p < end && *p != '>' && *p != '\''; p++)
			;
		return p < end ? p + 1 : NULL;
	}
	return NULL;
}

typedef struct rules_lit_set *(*rules_lit_seq_fn)(struct rules_lit_px *, int *);

static struct rules_lit_set	*rules_lit_px_tail_alt(struct rules_lit_px *,
				    int *);

/*
 * The strings of the atom just read at s, a (up to x->p), for a tail or a
 * head: its own when known, a class's characters, else a group's as alt
 * reads its alternatives. NULL when unknown.
 */
static struct rules_lit_set *
rules_lit_atom_set(const struct rules_lit_px *x, const char *s,
    const struct rules_lit_info *a, int *bad, rules_lit_seq_fn alt)
{
	struct rules_lit_px	 y;
	struct rules_lit_set	*e;
	const char		*body;

	if (a->exact != NULL)
		return rules_lit_set_dup(a->exact);
	if (*s == '[')
		return rules_lit_class_tail(s, x->p);
	if ((body = rules_lit_group_body(s, x->p)) == NULL)
		return NULL;
	y.p = body;
	y.end = x->end;
	e = alt(&y, bad);
	if (y.p != x->p - 1) {	/* not read as the atom was */
		rules_lit_set_free(e);
		e = NULL;
	}
	return e;
}

/*
 * The strings one of which every match of a sequence (up to '|' or ')')
 * ends with: its last atoms' strings crossed, each atom's own ending when
 * its strings are not known (a group's alternatives' endings, a class's
 * characters), an optional atom's ending added to what comes before it.
 * An atom whose ending is unknown starts the tail afresh after it: fewer
 * atoms still end every match. The set may hold "" (nothing is known
 * about the end); NULL on ENOMEM; *bad when the sequence cannot be read.
 */
static struct rules_lit_set *
rules_lit_px_tail(struct rules_lit_px *x, int *bad)
{
	struct rules_lit_info	 a;
	struct rules_lit_set	*run, *e, *next;
	const char		*s;
	int			 quant, min0, opt, whole;
	size_t			 i;

	run = rules_lit_set_one("", 0);
	while (!*bad && x->p < x->end && *x->p != '|' && *x->p != ')') {
		s = x->p;
		if (rules_lit_px_atom(x, &a) == -1) {
			rules_lit_info_clear(&a);
			*bad = 1;
			break;
		}
		e = rules_lit_atom_set(x, s, &a, bad, rules_lit_px_tail_alt);
		whole = a.exact != NULL || (*s == '[' && e != NULL);
		quant = x->p < x->end && (strchr("?*+", *x->p) != NULL ||
		    (*x->p == '{' && x->p + 1 < x->end && x->p[1] >= '0' &&
		    x->p[1] <= '9'));
		min0 = quant && (*x->p == '?' || *x->p == '*' ||
		    (*x->p == '{' && x->p[1] == '0'));
		opt = quant && (*x->p == '?' || strncmp(x->p, "{0,1}", 5) == 0);
		rules_lit_px_quant(x, &a);
		rules_lit_info_clear(&a);
		/* a group that may end unknown, or a repetition that may be empty */
		for (i = 0; e != NULL && (quant || !whole) && i < e->n; i++)
			if (e->s[i][0] == '\0')
				min0 = 1;
		if (e == NULL)
			next = rules_lit_set_one("", 0);
		else if (opt && whole && rules_lit_set_add(e, "", 0) == 0 &&
		    (next = rules_lit_set_cross(run, e)) != NULL)
			rules_lit_set_free(e);	/* 微信(?:号)? ends 微信 or 微信号 */
		else if (min0)
			next = rules_lit_set_union(rules_lit_set_dup(run), e);
		else if (quant || !whole)
			next = e;	/* the last repetition's, or the group's ending */
		else if ((next = rules_lit_set_cross(run, e)) == NULL)
			next = e;	/* too many: the atom's own strings */
		else
			rules_lit_set_free(e);
		rules_lit_set_free(run);
		if ((run = next) == NULL)
			run = rules_lit_set_one("", 0);
	}
	return run;
}

/*
 * The union of what seq reads of each alternative up to ')' or the end
 * (their tails, their heads); NULL when one is unknown.
 */
static struct rules_lit_set *
rules_lit_px_union(struct rules_lit_px *x, int *bad, rules_lit_seq_fn seq)
{
	struct rules_lit_set	*all = NULL, *t;

	for (;;) {
		t = seq(x, bad);
		if (t == NULL || *bad) {
			rules_lit_set_free(t);
			rules_lit_set_free(all);
			return NULL;
		}
		if ((all = all == NULL ? t : rules_lit_set_union(all, t)) == NULL)
			return NULL;
		if (x->p < x->end && *x->p == '|') {
			x->p++;
			continue;
		}
		return all;
	}
}

/* The union of the tails of the alternatives up to ')' or the end; NULL when one is unknown. */
static struct rules_lit_set *
rules_lit_px_tail_alt(struct rules_lit_px *x, int *bad)
{
	return rules_lit_px_union(x, bad, rules_lit_px_tail);
}

/*
 * Whether every string of a tail can be found as it is at the end of a
 * match: not empty, not possibly cut to RULES_MAX_LIT (a prefix is no
 * suffix), and of characters whose caseless forms are the string's own in
 * the normalised text (ASCII folded, ideographs, the sound tokens).
 */
static int
rules_lit_tail_ok(const struct rules_lit_set *l)
{
	const unsigned char	*p;
	size_t			 i, n;
	uint32_t		 cp;

	for (i = 0; i < l->n; i++) {
		n = strlen(l->s[i]);
		if (n == 0 || n > RULES_MAX_TAIL || n + 4 > RULES_MAX_LIT)
			return 0;
		for (p = (const unsigned char *)l->s[i]; *p != '\0'; p += n) {
			if (*p < 0x80) {
				if (*p >= 'A' && *p <= 'Z')
					return 0;
				n = 1;
				continue;
			}
			if ((*p & 0xf0) != 0xe0 || (p[1] & 0xc0) != 0x80 ||
			    (p[2] & 0xc0) != 0x80)
				return 0;
			cp = (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 |
			    (p[2] & 0x3fu);
			if (!(cp >= 0x3000 && cp < 0xa000) &&
			    !(cp >= 0xe000 && cp < 0xfb00))
				return 0;
			n = 3;
		}
	}
	return 1;
}

int
rules_lit_suffix(const char *pattern, struct rules_lit_req *tail)
{
	struct rules_lit_px	 x = { pattern, pattern + strlen(pattern) };
	struct rules_lit_set	*all;
	int			 bad = 0;

	all = rules_lit_px_tail_alt(&x, &bad);
	/* a ')' with no '(' stops the reading early */
	if (all == NULL || x.p != x.end || !rules_lit_tail_ok(all)) {
		rules_lit_set_free(all);
		return 0;
	}
	tail->set[0] = all;
	tail->n = 1;
	return 1;
}

/*
 * Whether a string's first character is found as written at the start of a
 * match in the normalised text (rules_lit_tail_ok's characters).
 */
static int
rules_lit_first_ok(const unsigned char *p)
{
	uint32_t	cp;

	if (*p < 0x80)
		return !(*p >= 'A' && *p <= 'Z');
	if ((*p & 0xf0) != 0xe0 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
		return 0;
	cp = (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
	return (cp >= 0x3000 && cp < 0xa000) || (cp >= 0xe000 && cp < 0xfb00);
}

/*
 * The first characters of e's strings, "" kept (the atom may match
 * nothing); frees e. NULL when e is, or a first character is not one
 * rules_lit_first_ok knows.
 */
static struct rules_lit_set *
rules_lit_set_firsts(struct rules_lit_set *e)
{
	struct rules_lit_set	*f = NULL;
	const unsigned char	*p;
	size_t			 i;

	if (e == NULL || (f = rules_lit_set_new()) == NULL)
		goto fail;
	for (i = 0; i < e->n; i++) {
		p = (const unsigned char *)e->s[i];
		if (*p != '\0' && !rules_lit_first_ok(p))
			goto fail;
		if (rules_lit_set_add(f, e->s[i], *p == '\0' ? 0 :
		    *p < 0x80 ? 1 : 3) == -1)
			goto fail;
	}
	rules_lit_set_free(e);
	return f;
fail:
	rules_lit_set_free(f);
	rules_lit_set_free(e);
	return NULL;
}

static struct rules_lit_set	*rules_lit_px_head_alt(struct rules_lit_px *,
				    int *);

/*
 * The characters one of which every match of a sequence (up to '|' or
 * ')') starts with: its first atom's first characters, and the next
 * atom's too while an atom may match nothing (an optional one, a
 * lookaround). NULL when they are not known (an atom of unknown text
 * first: ., \p{Han}, a negated class) or the whole sequence may match
 * nothing; *bad when it cannot be read.
 */
static struct rules_lit_set *
rules_lit_px_head(struct rules_lit_px *x, int *bad)
{
	struct rules_lit_info	 a;
	struct rules_lit_set	*all, *e, *f;
	const char		*s;
	int			 min0, full, done = 0;
	size_t			 i;

	all = rules_lit_set_new();
	while (!*bad && x->p < x->end && *x->p != '|' && *x->p != ')') {
		s = x->p;
		if (rules_lit_px_atom(x, &a) == -1) {
			rules_lit_info_clear(&a);
			*bad = 1;
			break;
		}
		e = done ? NULL :
		    rules_lit_atom_set(x, s, &a, bad, rules_lit_px_head_alt);
		min0 = x->p < x->end && (*x->p == '?' || *x->p == '*' ||
		    (*x->p == '{' && x->p + 1 < x->end && x->p[1] == '0'));
		rules_lit_px_quant(x, &a);
		rules_lit_info_clear(&a);
		if (done)
			continue;
		done = 1;
		if ((e = rules_lit_set_firsts(e)) == NULL)
			goto unknown;
		if ((f = rules_lit_set_new()) == NULL) {
			rules_lit_set_free(e);
			goto unknown;
		}
		for (i = 0; i < e->n; i++) {
			if (e->s[i][0] == '\0')
				min0 = 1;
			else if (rules_lit_set_add(f, e->s[i], strlen(e->s[i])) == -1)
				break;
		}
		full = i < e->n;
		rules_lit_set_free(e);
		if (full) {
			rules_lit_set_free(f);
			goto unknown;
		}
		if ((all = rules_lit_set_union(all, f)) == NULL)
			goto unknown;
		done = !min0;
	}
	if (done && all != NULL && all->n > 0 && !*bad)
		return all;
	rules_lit_set_free(all);
	return NULL;
unknown:
	/* read the rest of the sequence, so that the caller's reading goes on */
	rules_lit_set_free(all);
	all = NULL;
	while (!*bad && x->p < x->end && *x->p != '|' && *x->p != ')') {
		if (rules_lit_px_atom(x, &a) == -1)
			*bad = 1;
		else
			rules_lit_px_quant(x, &a);
		rules_lit_info_clear(&a);
	}
	return NULL;
}

/* The union of the heads of the alternatives up to ')' or the end; NULL when one is unknown. */
static struct rules_lit_set *
rules_lit_px_head_alt(struct rules_lit_px *x, int *bad)
{
	return rules_lit_px_union(x, bad, rules_lit_px_head);
}

int
rules_lit_heads(const char *pattern, struct rules_lit_req *heads)
{
	struct rules_lit_px	 x = { pattern, pattern + strlen(pattern) };
	struct rules_lit_set	*all;
	int			 bad = 0;

	/* \K moves the start a match reports past its first characters */
	if (strstr(pattern, "\\K") != NULL)
		return 0;
	all = rules_lit_px_head_alt(&x, &bad);
	/* a ')' with no '(' stops the reading early */
	if (all == NULL || bad || x.p != x.end) {
		rules_lit_set_free(all);
		return 0;
	}
	heads->set[0] = all;
	heads->n = 1;
	return 1;
}

/*
 * Whether the construct at p (just past a '(' or a '\\') ties one top-level
 * alternative to another, so that they cannot be compiled apart: a
 * back-reference, a subroutine call or recursion, a condition on a group,
 * or a verb.
 */
static int
rules_lit_binds(const char *p, const char *end, int paren)
{
	if (p >= end)
		return 1;
	if (!paren)
		return *p == 'g' || *p == 'k' || (*p >= '1' && *p <= '9');
	if (*p == '*')
		return 1;
	if (*p != '?' || p + 1 >= end)
		return 0;
	p++;
	return strchr("0123456789+-&R(", *p) != NULL ||
	    (*p == 'P' && p + 1 < end && (p[1] == '>' || p[1] == '='));
}

/* What rules_lit_px_next read: the tokens that give a pattern its shape. */
enum rules_lit_tok {
	RULES_LIT_OTHER,	/* anything else: a character, a class, an escape */
	RULES_LIT_OPEN,		/* a group's '(' */
	RULES_LIT_OPTION,	/* an option setting's '(' ((?i)): its ')' follows */
	RULES_LIT_CLOSE,	/* ')' */
	RULES_LIT_BAR,		/* '|' */
	RULES_LIT_BINDS		/* a construct that ties alternatives (rules_lit_binds) */
};

/* Reads one token of the pattern at x->p (x->p < x->end) and moves past it. */
static enum rules_lit_tok
rules_lit_px_next(struct rules_lit_px *x)
{
	const char	*o;
	char		 c = *x->p;

	if (c == '[') {
		rules_lit_px_class(x);
		return RULES_LIT_OTHER;
	}
	x->p++;
	if (c == '\\') {
		if (rules_lit_binds(x->p, x->end, 0))
			return RULES_LIT_BINDS;
		if (x->p < x->end && *x->p == 'Q') {
			/* literal text up to \E: no syntax inside */
			while (x->p + 1 < x->end && !(x->p[0] == '\\' && x->p[1] == 'E'))
				x->p++;
			x->p = x->p + 1 < x->end ? x->p + 2 : x->end;
		} else if (x->p < x->end)
			rules_lit_px_escape(x, *x->p++);
		return RULES_LIT_OTHER;
	}
	if (c == '(') {
		if (rules_lit_binds(x->p, x->end, 1))
			return RULES_LIT_BINDS;
		if (x->p + 1 < x->end && x->p[0] == '?' && x->p[1] == '#') {
			while (x->p < x->end && *x->p != ')')
				x->p++;
			x->p += x->p < x->end;
			return RULES_LIT_OTHER;
		}
		if (x->p < x->end && *x->p == '?') {
			for (o = x->p + 1; o < x->end && strchr("abcdefghijklmnopqrstuvwxyz"
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZ-^", *o) != NULL; o++)
				;
			if (o < x->end && *o == ')')
				return RULES_LIT_OPTION;
		}
		return RULES_LIT_OPEN;
	}
	if (c == ')')
		return RULES_LIT_CLOSE;
	return c == '|' ? RULES_LIT_BAR : RULES_LIT_OTHER;
}

/*
 * Whether the alternatives of the pattern [p, end) can be taken apart: its
 * parentheses balance, nothing ties one alternative to another, and no
 * option is set at the top (it would apply to the alternatives after it).
 */
static int
rules_lit_separable(const char *p, const char *end)
{
	struct rules_lit_px	x = { p, end };
	int			depth = 0;

	while (x.p < x.end)
		switch (rules_lit_px_next(&x)) {
		case RULES_LIT_BINDS:
			return 0;
		case RULES_LIT_OPTION:
			if (depth == 0)
				return 0;
			/* FALLTHROUGH */
		case RULES_LIT_OPEN:
			depth++;
			break;
		case RULES_LIT_CLOSE:
			if (--depth < 0)
				return 0;
			break;
		default:
			break;
		}
	return depth == 0;
}

size_t
rules_lit_branches(const char *pattern, size_t at[RULES_MAX_CLAUSE + 1])
{
	struct rules_lit_px	x = { pattern, pattern + strlen(pattern) };
	size_t			n = 1;
	int			depth = 0;

	at[0] = 0;
	if (!rules_lit_separable(x.p, x.end))
		goto whole;
	while (x.p < x.end)
		switch (rules_lit_px_next(&x)) {
		case RULES_LIT_OPEN:
		case RULES_LIT_OPTION:
			depth++;
			break;
		case RULES_LIT_CLOSE:
			depth--;
			break;
		case RULES_LIT_BAR:
			if (depth == 0 && n < RULES_MAX_CLAUSE)
				at[n++] = (size_t)(x.p - pattern);
			break;
		default:
			break;
		}
	at[n] = (size_t)(x.end - pattern) + 1;
	return n;
whole:
	at[1] = strlen(pattern) + 1;
	return 1;
}

/*
 * Appends the alternatives [s, e) of one level (a separable pattern's) to
 * out at *n, each one that is a whole non-capturing group, (?:A|B), as its
 * own alternatives, A|B: matched alone, (?:A|B)|C finds what A|B|C finds.
 * A group that sets an option at its own level ((?:(?i)a|b)) stays whole:
 * the option would reach past it.
 */
static void
rules_lit_flat(const char *s, const char *e, char *out, size_t *n)
{
	struct rules_lit_px	 x = { s, e };
	const char		*alt = s, *close0 = NULL, *at;
	enum rules_lit_tok	 t = RULES_LIT_OTHER;
	int			 depth = 0, opt1 = 0;

	for (;;) {
		at = x.p;
		if (x.p < x.end)
			t = rules_lit_px_next(&x);
		if (x.p == at || (t == RULES_LIT_BAR && depth == 0)) {
			/* the alternative [alt, at) is complete */
			if (at - alt >= 4 && memcmp(alt, "(?:", 3) == 0 &&
			    close0 == at && !opt1)
				rules_lit_flat(alt + 3, at - 1, out, n);
			else {
				memcpy(out + *n, alt, (size_t)(at - alt));
				*n += (size_t)(at - alt);
			}
			if (x.p == at)
				return;
			out[(*n)++] = '|';
			alt = x.p;
			close0 = NULL;
			opt1 = 0;
			continue;
		}
		switch (t) {
		case RULES_LIT_OPTION:
			opt1 |= depth == 1;
			/* FALLTHROUGH */
		case RULES_LIT_OPEN:
			depth++;
			break;
		case RULES_LIT_CLOSE:
			if (--depth == 0 && close0 == NULL)
				close0 = x.p;
			break;
		default:
			break;
		}
	}
}

char *
rules_lit_flatten(const char *pattern)
{
	size_t	len = strlen(pattern), n = 0;
	char	*out;

	if (!rules_lit_separable(pattern, pattern + len))
		return strdup(pattern);
	/* only parentheses are dropped: it never grows */
	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	rules_lit_flat(pattern, pattern + len, out, &n);
	out[n] = '\0';
	return out;
}

void
rules_lit_pf_clear(struct rules_lit_pf *pf)
{
	size_t	i;

	for (i = 0; i < pf->n; i++)
		rules_lit_req_clear(&pf->clause[i]);
	pf->n = 0;
}

/* Adds a copy of every set of src to dst. */
static void
rules_lit_req_copy(struct rules_lit_req *dst, const struct rules_lit_req *src)
{
	size_t	i;

	for (i = 0; i < src->n; i++)
		rules_lit_req_add(dst, rules_lit_set_dup(src->set[i]));
}

/*
 * A near cue must match too: the most selective of its sets joins every
 * clause of the pattern (or stands alone when the pattern gave none).
 */
void
rules_lit_pf_and_near(struct rules_lit_pf *pf, const struct rules_lit_pf *near)
{
	struct rules_lit_req	any = { { NULL }, 0 }, alt;
	ssize_t			b;
	size_t			i;

	if (near->n == 0)
		return;
	rules_lit_req_copy(&any, &near->clause[0]);
	for (i = 1; i < near->n; i++) {
		memset(&alt, 0, sizeof(alt));
		rules_lit_req_copy(&alt, &near->clause[i]);
		rules_lit_req_or(&any, &alt);
	}
	if ((b = rules_lit_req_best(&any)) >= 0) {
		if (pf->n == 0) {
			rules_lit_req_add(&pf->clause[0],
			    rules_lit_set_dup(any.set[b]));
			pf->n = 1;
		} else
			for (i = 0; i < pf->n; i++)
				rules_lit_req_add(&pf->clause[i],
				    rules_lit_set_dup(any.set[b]));
	}
	rules_lit_req_clear(&any);
}
