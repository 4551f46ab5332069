/* rules_load: rule files read, checked and compiled into a rule set: the YAML schema, lists and macros, errors as FILE:LINE. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <utf8proc.h>
#include <yaml.h>

#include "chatmon/normalize.h"
#include "chatmon/rules.h"
#include "chatmon/util.h"
#include "chatmon/yamlfile.h"
#include "rules_int.h"

#define RULES_MAX_EXPANDED	262144	/* bytes of a pattern with its lists and macros */
#define RULES_MAX_MACRO_DEPTH	64	/* macros within macros, each a stack frame */
#define RULES_MAX_DEFS		4096	/* lists and macros of a pack (the default: 351) */
/* A list item longer than this is not put into a trie (one frame a character). */
#define RULES_TRIE_MAX_ITEM	1024
#define RULES_MAX_FILE		(4 << 20)	/* bytes of one rule file */

struct rules_load_def {			/* a list or a macro, by name */
	char	*name;
	int	 is_list;
	char	**items;		/* list items */
	size_t	*lines;			/* each item's line */
	size_t	 nitems;
	int	 said;			/* an item that normalises to nothing, reported */
	char	*pattern;		/* macro */
	char	*file;
	size_t	 line;
	int	 visiting;		/* macro expansion: cycle detection */
};

/*
 * Appends "FILE:LINE: message" to errs ("FILE: message" when line is 0).
 * The message quotes values as the file wrote them, control characters
 * escaped (util_escape), so that a value cannot start a line of its own (a
 * forged "FILE:LINE:" error) or send escapes to a terminal.
 */
static void
rules_load_err(struct sbuf *errs, const char *file, size_t line,
    const char *fmt, ...)
{
	char	msg[512], out[6 * sizeof(msg)];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* a message cut by vsnprintf is cut between characters */
	out[util_escape(out, sizeof(out) - 1, 0, msg,
	    util_utf8_cut(msg, sizeof(msg)), 0)] = '\0';
	if (line)
		sbuf_line(errs, "%s:%zu: %s", file, line, out);
	else
		sbuf_line(errs, "%s: %s", file, out);
}

/*
 * The lists and macros are needed only while the rules compile: they go
 * when loading ends, whatever its outcome.
 */
static void
rules_load_free_defs(struct rules *r)
{
	size_t	i, k;

	if (r == NULL)
		return;
	for (i = 0; i < r->ndef; i++) {
		for (k = 0; k < r->def[i].nitems; k++)
			free(r->def[i].items[k]);
		free(r->def[i].items);
		free(r->def[i].lines);
		free(r->def[i].pattern);
		free(r->def[i].name);
		free(r->def[i].file);
	}
	free(r->def);
	r->def = NULL;
	r->ndef = 0;
}

/* --- pattern expansion --------------------------------------------------- */

static struct rules_load_def *
rules_load_find_def(struct rules *r, const char *name, size_t n)
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
rules_load_escape(struct sbuf *out, const char *s, size_t n)
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
rules_load_norm_word(struct rules *r, unsigned steps, const char *w, struct sbuf *out)
{
	const char	*t;
	size_t		 n;
	const uint32_t	*map;

	if (rules_norm(r, steps) == NULL ||
	    norm_run(r->norm[steps], w, strlen(w), steps, &t, &n, &map) == -1)
		return -1;
	return rules_load_escape(out, t, n);
}

/*
 * A list's items as a trie over their code points, so that PCRE2 tries a
 * position against a few first characters instead of every item in turn
 * (微信|微芯|威信 is 微(?:信|芯)|威信). The first match must stay the one
 * the plain alternation finds, which tries the items in their order: only
 * items of which one is a prefix of the other can both match at one
 * place, so items with different first characters may go in any order,
 * and where an item ends inside the trie (微 beside 微信), the items
 * listed before it are tried before it and those after it after it.
 */
struct rules_load_word {
	const char	*s;		/* what is left of the item, normalised */
	size_t		 len;
	size_t		 ord;		/* its place in the list */
};

/* Bytes of the UTF-8 character at s (normalised text is valid UTF-8). */
static size_t
rules_load_cplen(const char *s)
{
	unsigned char	c = (unsigned char)*s;

	return c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
}

/* The first character of a word as the trie groups it: ASCII caselessly. */
static uint32_t
rules_load_key(const struct rules_load_word *w)
{
	const unsigned char	*p = (const unsigned char *)w->s;
	size_t			 k = rules_load_cplen(w->s), i;
	uint32_t		 cp;

	if (k == 1)
		return (uint32_t)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	cp = *p & (0xffu >> (k + 1));
	for (i = 1; i < k; i++)
		cp = cp << 6 | (p[i] & 0x3fu);
	return cp;
}

static int
rules_load_word_cmp(const void *a, const void *b)
{
	const struct rules_load_word	*x = a, *y = b;
	uint32_t			 kx = rules_load_key(x), ky = rules_load_key(y);

	if (kx != ky)
		return kx < ky ? -1 : 1;
	return x->ord < y->ord ? -1 : x->ord > y->ord;
}

/*
 * Whether a list can be written as a trie: caseless matching must not make
 * two different characters equal, which only ASCII letters do here (the
 * trie groups them caselessly); any other cased letter (K, the Kelvin sign,
 * beside k) keeps the list as it is written.
 */
static int
rules_load_trie_ok(struct sbuf *words, size_t n)
{
	struct rules_load_word	 w;
	size_t			 i, k;
	uint32_t		 cp;

	for (i = 0; i < n; i++) {
		/* the trie recurses once a character the items share: bound it */
		if (words[i].len > RULES_TRIE_MAX_ITEM)
			return 0;
		for (k = 0; k < words[i].len; k += rules_load_cplen(sbuf_str(&words[i]) + k)) {
			w.s = sbuf_str(&words[i]) + k;
			if ((cp = rules_load_key(&w)) >= 0x80 &&
			    (utf8proc_tolower((utf8proc_int32_t)cp) != (utf8proc_int32_t)cp ||
			    utf8proc_toupper((utf8proc_int32_t)cp) != (utf8proc_int32_t)cp))
				return 0;
		}
	}
	return 1;
}

static int	rules_load_trie(struct sbuf *, struct rules_load_word *, size_t, int);

/*
 * Appends the words w[0..n) (no empty one), sorted by first character, as
 * alternatives, each first character once followed by the trie of what
 * follows it; *sep says whether an alternative was written before.
 */
static int
rules_load_trie_groups(struct sbuf *out, struct rules_load_word *w, size_t n,
    int *sep)
{
	size_t		 i, j, k, c;
	uint32_t	 key;

	qsort(w, n, sizeof(*w), rules_load_word_cmp);
	for (i = 0; i < n; i = j) {
		key = rules_load_key(&w[i]);
		for (j = i + 1; j < n && rules_load_key(&w[j]) == key; j++)
			;
		if ((*sep && sbuf_append(out, "|", 1) == -1) ||
		    rules_load_escape(out, w[i].s, c = rules_load_cplen(w[i].s)) == -1)
			return -1;
		*sep = 1;
		for (k = i; k < j; k++) {
			w[k].s += c;
			w[k].len -= c;
		}
		if (rules_load_trie(out, w + i, j - i, 0) == -1)
			return -1;
		if (out->len > RULES_MAX_EXPANDED)
			return -2;
	}
	return 0;
}

/*
 * Appends the words w[0..n), in their list order, as a trie: at the top
 * as bare alternatives, inside as a group when there are several. The
 * first empty word (an item that ends here) splits them: the words before
 * it are tried first, then the end (an empty alternative), then the words
 * after it.
 */
static int
rules_load_trie(struct sbuf *out, struct rules_load_word *w, size_t n, int top)
{
	size_t	e, i, m;
	int	sep = 0, rc, wrap;

	if (n == 0)
		return 0;
	for (i = 1; i < n && w[i].len == w[0].len &&
	    memcmp(w[i].s, w[0].s, w[0].len) == 0; i++)
		;
	if (i == n)	/* one word, perhaps repeated: as it is */
		return rules_load_escape(out, w[0].s, w[0].len);
	for (e = 0; e < n && w[e].len > 0; e++)
		;
	/* after the end, a second empty word is never reached */
	for (m = e + 1, i = e + 1; i < n; i++)
		if (w[i].len > 0)
			w[m++] = w[i];
	/* one first character and no end: one piece, no group */
	for (i = 1; e == n && i < n &&
	    rules_load_key(&w[i]) == rules_load_key(&w[0]); i++)
		;
	wrap = !top && !(e == n && i == n);
	if (wrap && sbuf_append(out, "(?:", 3) == -1)
		return -1;
	if ((rc = rules_load_trie_groups(out, w, e, &sep)) != 0)
		return rc;
	if (e < n) {
		/* the end: an empty alternative, then the words after it */
		if (sep && sbuf_append(out, "|", 1) == -1)
			return -1;
		sep = 1;
		if ((rc = rules_load_trie_groups(out, w + e + 1, m - e - 1,
		    &sep)) != 0)
			return rc;
	}
	if (wrap && sbuf_append(out, ")", 1) == -1)
		return -1;
	return 0;
}

/*
 * Appends list d's items, normalised with steps, as the alternatives of
 * one group's inside: as a trie (rules_load_trie) when it is sure to
 * match what the plain alternation matches, else one item after the other.
 * 0; -1 on ENOMEM, or with an error reported for an item that normalises
 * to nothing (an emoji, a space: the rule's text never holds it, and the
 * empty string it leaves matches everywhere); -2 past RULES_MAX_EXPANDED.
 */
static int
rules_load_list(struct rules *r, struct rules_load_def *d, unsigned steps,
    struct sbuf *out, struct sbuf *errs)
{
	struct sbuf		*words = NULL;
	struct rules_load_word	*w = NULL;
	const uint32_t		*map;
	const char		*t;
	size_t			 i, n;
	int			 rc = -1;

	if ((words = calloc(d->nitems, sizeof(*words))) == NULL ||
	    (w = calloc(d->nitems, sizeof(*w))) == NULL)
		goto out;
	for (i = 0; i < d->nitems; i++) {
		sbuf_init(&words[i]);
		if (rules_norm(r, steps) == NULL || norm_run(r->norm[steps],
		    d->items[i], strlen(d->items[i]), steps, &t, &n, &map) == -1 ||
		    sbuf_append(&words[i], t, n) == -1)
			goto out;
		if (n == 0) {
			if (!d->said)	/* once, however many rules use it */
				rules_load_err(errs, d->file, d->lines[i], "list %s: "
				    "item '%s' normalises to nothing (it would match "
				    "anywhere)", d->name, d->items[i]);
			d->said = 1;
			goto out;
		}
	}
	/* the sound view rewrites the pattern's ideographs later: two may become one */
	if (!(steps & NORM_SOUND) && rules_load_trie_ok(words, d->nitems)) {
		for (i = 0; i < d->nitems; i++) {
			w[i].s = sbuf_str(&words[i]);
			w[i].len = words[i].len;
			w[i].ord = i;
		}
		rc = rules_load_trie(out, w, d->nitems, 1);
		goto out;
	}
	for (i = 0; i < d->nitems; i++) {
		if ((i > 0 && sbuf_append(out, "|", 1) == -1) ||
		    rules_load_escape(out, sbuf_str(&words[i]), words[i].len) == -1)
			goto out;
		if (out->len > RULES_MAX_EXPANDED) {
			rc = -2;
			goto out;
		}
	}
	rc = 0;
out:
	if (words != NULL)
		for (i = 0; i < d->nitems; i++)
			sbuf_free(&words[i]);
	free(words);
	free(w);
	return rc;
}

/*
 * Expands ${name} in pattern into out: 0; -1 with an error reported; -2
 * when out grew past RULES_MAX_EXPANDED (the caller reports it, at the rule
 * that asked). The bound is checked as the text grows, so macros that
 * double at every level cost milliseconds to refuse, not gigabytes.
 */
static int
rules_load_expand(struct rules *r, const char *pattern, unsigned steps,
    struct sbuf *out, const char *file, size_t line, unsigned depth,
    struct sbuf *errs)
{
	const char		*p, *e;
	struct rules_load_def	*d;
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
			rules_load_err(errs, file, line, "unterminated ${ in pattern");
			return -1;
		}
		if ((d = rules_load_find_def(r, p + 2, (size_t)(e - p - 2))) == NULL) {
			rules_load_err(errs, file, line, "unknown list or macro '%.*s'",
			    (int)(e - p - 2), p + 2);
			return -1;
		}
		if (sbuf_append(out, "(?:", 3) == -1)
			return -1;
		if (d->is_list) {
			if ((rc = rules_load_list(r, d, steps, out, errs)) < 0)
				return rc;
			if (out->len > RULES_MAX_EXPANDED)
				return -2;
		} else {
			if (d->visiting) {
				rules_load_err(errs, file, line, "macro '%s' uses itself (a cycle of macros)",
				    d->name);
				return -1;
			}
			/* each level a stack frame: a chain of macros is bounded */
			if (depth >= RULES_MAX_MACRO_DEPTH) {
				rules_load_err(errs, file, line, "macros nested more "
				    "than %d deep", RULES_MAX_MACRO_DEPTH);
				return -1;
			}
			d->visiting = 1;
			rc = rules_load_expand(r, d->pattern, steps, out, d->file,
			    d->line, depth + 1, errs);
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

/*
 * Expands a pattern into ex (lists, macros, and the sound view's
 * ideographs as their sounds); 0, or -1 with the error reported.
 */
static int
rules_load_expanded(struct rules *r, const char *pattern, unsigned steps,
    struct sbuf *ex, const char *file, size_t line, struct sbuf *errs)
{
	switch (rules_load_expand(r, pattern, steps, ex, file, line, 0, errs)) {
	case 0:
		break;
	case -2:
		rules_load_err(errs, file, line, "pattern expands past %d bytes "
		    "(lists and macros included)", RULES_MAX_EXPANDED);
		return -1;
	default:
		return -1;
	}
	if ((steps & NORM_SOUND) && rules_sound_pattern(ex) == -1) {
		rules_load_err(errs, file, line, "out of memory");
		return -1;
	}
	return 0;
}

/* Reports a compile error of expanded pattern ex (ec 0: out of memory). */
static void
rules_load_compile_err(const char *pattern, const struct sbuf *ex, int ec,
    size_t off, const char *file, size_t line, struct sbuf *errs)
{
	PCRE2_UCHAR	 msg[256];

	if (ec == 0) {
		rules_load_err(errs, file, line, "out of memory");
		return;
	}
	pcre2_get_error_message(ec, msg, sizeof(msg));
	rules_load_err(errs, file, line, "bad pattern at offset %zu%s: %s",
	    off, ex->len != strlen(pattern) ? " of the expanded pattern" : "",
	    (const char *)msg);
}

/*
 * Whether a branch of ru can match no characters at all (`x|`, `a?`, ``),
 * as PCRE2 reckons the shortest subject it needs: such a rule would hit
 * every message, a block rule block every one.
 */
static int
rules_load_empty_branch(const struct rule *ru)
{
	uint32_t	min;
	size_t		b;

	for (b = 0; b < ru->nbr; b++)
		if (pcre2_pattern_info(ru->br[b].re, PCRE2_INFO_MINLENGTH,
		    &min) == 0 && min == 0)
			return 1;
	return 0;
}

/*
 * Expands and compiles an `unless` pattern into its alternatives
 * (rules_compile_any), appended to ru->unless with their literals in
 * upf[ru->nunless...]; both have room for RULES_MAX_UNLESS_PARTS more.
 * 0, or -1 with the error reported.
 */
static int
rules_load_unless(struct rules *r, const char *pattern, struct rule *ru,
    struct rules_lit_pf *upf, const char *file, size_t line,
    struct sbuf *errs)
{
	struct sbuf	 ex;
	size_t		 off, n;
	int		 ec, rc = -1;

	sbuf_init(&ex);
	if (rules_load_expanded(r, pattern, ru->steps, &ex, file, line, errs) == -1)
		goto out;
	if ((n = rules_compile_any(r, sbuf_str(&ex), ex.len,
	    &ru->unless[ru->nunless], &upf[ru->nunless],
	    RULES_MAX_UNLESS_PARTS, &ec, &off)) == 0) {
		rules_load_compile_err(pattern, &ex, ec, off, file, line, errs);
		goto out;
	}
	ru->nunless += n;
	rc = 0;
out:
	sbuf_free(&ex);
	return rc;
}

/*
 * A rule whose expanded pattern and steps are an earlier rule's (a block
 * rule and its warn twin) takes that rule's compiled branches instead of
 * its own, which are freed: the JIT code once, and rules_first's answer
 * shared. Else its expanded pattern is kept until rules_prepare, for the
 * rules after it. 0, or -1 on ENOMEM.
 */
static int
rules_load_share(struct rules *r, struct rule *ru, const struct sbuf *ex)
{
	const struct rule	*o;
	size_t			 i, b;

	for (i = 0; i < r->nrule; i++) {
		o = &r->rule[i];
		if (o->expanded == NULL || o->steps != ru->steps ||
		    o->nbr != ru->nbr || strcmp(o->expanded, sbuf_str(ex)) != 0)
			continue;
		for (b = 0; b < ru->nbr; b++) {
			pcre2_code_free(ru->br[b].re);
			pcre2_code_free(ru->br[b].anch);
			free(ru->br[b].head);
			ru->br[b].re = o->br[b].re;
			ru->br[b].anch = o->br[b].anch;
			ru->br[b].head = o->br[b].head;
		}
		ru->same = o->same ? o->same : i + 1;
		return 0;
	}
	return (ru->expanded = strdup(sbuf_str(ex))) == NULL ? -1 : 0;
}

/*
 * Expands and compiles a pattern, its required literals into pf when not
 * NULL (rules_compile). A rule's own pattern (ru not NULL) is compiled into
 * ru's branches, pf then being one per branch (rules_compile_rule), and its
 * first branch's code is returned. NULL with the error reported.
 */
static pcre2_code *
rules_load_pattern(struct rules *r, const char *pattern, unsigned steps,
    struct rules_lit_pf *pf, struct rule *ru, const char *file, size_t line,
    struct sbuf *errs)
{
	struct sbuf	 ex;
	pcre2_code	*re = NULL;
	size_t		 off;
	int		 ec;

	sbuf_init(&ex);
	if (rules_load_expanded(r, pattern, steps, &ex, file, line, errs) == -1)
		goto out;
	if (ru != NULL) {
		if (rules_compile_rule(r, ru, sbuf_str(&ex), ex.len, pf, &ec,
		    &off) == 0) {
			if (rules_load_share(r, ru, &ex) == -1) {
				sbuf_line(errs, "%s:%zu: out of memory", file, line);
				goto out;	/* ru's branches are rules_free_rule's */
			}
			re = ru->br[0].re;
			if (rules_load_empty_branch(ru)) {
				rules_load_err(errs, file, line, "pattern can "
				    "match an empty text (an empty alternative, "
				    "or every part optional): every message "
				    "would hit it");
				re = NULL;
				goto out;
			}
		}
	} else
		re = rules_compile(r, sbuf_str(&ex), ex.len, pf, &ec, &off);
	if (re == NULL)
		rules_load_compile_err(pattern, &ex, ec, off, file, line, errs);
out:
	sbuf_free(&ex);
	return re;
}

/* --- YAML ---------------------------------------------------------------- */

struct rules_load_doc {
	yaml_document_t	 doc;
	const char	*file;
	struct sbuf	*errs;
	size_t		 nerr;
};

static size_t
rules_load_line(const yaml_node_t *n)
{
	return n->start_mark.line + 1;
}

static void
rules_load_doc_err(struct rules_load_doc *d, const yaml_node_t *n, const char *fmt, ...)
{
	char	msg[512];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rules_load_err(d->errs, d->file, n ? rules_load_line(n) : 0, "%s", msg);
	d->nerr++;
}

/*
 * A scalar's text; NULL with an error when it holds U+0000 ("\0" in a
 * quoted scalar): as a C string it would end there, and a pattern
 * "abc\0|.*" would load as "abc" and pass its examples.
 */
static const char *
rules_load_text(struct rules_load_doc *d, yaml_node_t *n, const char *key)
{
	const char	*s = (const char *)n->data.scalar.value;

	if (strlen(s) != n->data.scalar.length) {
		rules_load_doc_err(d, n, "%s: holds a NUL character", key);
		return NULL;
	}
	return s;
}

/*
 * A count from 1 to max written in decimal digits only (strtoul would
 * take a sign and wrap "-4294967295" to 1): 0, or -1.
 */
static int
rules_load_count(const char *s, unsigned long max, uint32_t *out)
{
	unsigned long	 n;
	char		*end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (*end != '\0' || errno != 0 || n == 0 || n > max)
		return -1;
	*out = (uint32_t)n;
	return 0;
}

static const char *
rules_load_scalar(struct rules_load_doc *d, yaml_node_t *n, const char *key)
{
	if (n == NULL || n->type != YAML_SCALAR_NODE) {
		rules_load_doc_err(d, n, "%s: expected a single value", key);
		return NULL;
	}
	return rules_load_text(d, n, key);
}

/* A sequence of scalars (a lone scalar counts as one); the strings are the document's. */
static int
rules_load_strings(struct rules_load_doc *d, yaml_node_t *n, const char *key,
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
		rules_load_doc_err(d, n, "%s: expected a list", key);
		return -1;
	}
	if (cap == 0)
		return 0;
	if ((*out = calloc(cap, sizeof(**out))) == NULL ||
	    (lines && (*lines = calloc(cap, sizeof(**lines))) == NULL))
		return -1;
	if (n->type == YAML_SCALAR_NODE) {
		if (((*out)[0] = rules_load_text(d, n, key)) == NULL)
			return 0;
		if (lines)
			(*lines)[0] = rules_load_line(n);
		*count = 1;
		return 0;
	}
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		v = yaml_document_get_node(&d->doc, *it);
		if (v == NULL || v->type != YAML_SCALAR_NODE) {
			rules_load_doc_err(d, v, "%s: every item must be a single value", key);
			continue;
		}
		if (((*out)[k] = rules_load_text(d, v, key)) == NULL)
			continue;
		if (lines)
			(*lines)[k] = rules_load_line(v);
		k++;
	}
	*count = k;
	return 0;
}

static int
rules_load_bool(struct rules_load_doc *d, yaml_node_t *n, const char *key, int *out)
{
	const char	*s = rules_load_scalar(d, n, key);

	if (s == NULL)
		return -1;
	if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)
		*out = 1;
	else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)
		*out = 0;
	else {
		rules_load_doc_err(d, n, "%s: expected true or false, not '%s'", key, s);
		return -1;
	}
	return 0;
}

/* Finds a key's value in a mapping; NULL when absent. */
static yaml_node_t *
rules_load_get(struct rules_load_doc *d, yaml_node_t *map, const char *key)
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
rules_load_check_keys(struct rules_load_doc *d, yaml_node_t *map, const char *what,
    const char *const *allowed)
{
	yaml_node_pair_t	*p, *q;
	yaml_node_t		*k, *k2;
	const char		*name;
	size_t			 i;

	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		k = yaml_document_get_node(&d->doc, p->key);
		if (k == NULL || k->type != YAML_SCALAR_NODE) {
			rules_load_doc_err(d, k, "%s: keys must be plain words", what);
			continue;
		}
		name = (const char *)k->data.scalar.value;
		for (i = 0; allowed[i] != NULL; i++)
			if (strcmp(allowed[i], name) == 0)
				break;
		if (allowed[i] == NULL)
			rules_load_doc_err(d, k, "%s: unknown key '%s'", what, name);
		for (q = map->data.mapping.pairs.start; q < p; q++) {
			k2 = yaml_document_get_node(&d->doc, q->key);
			if (k2 && k2->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)k2->data.scalar.value, name) == 0) {
				rules_load_doc_err(d, k, "%s: duplicate key '%s'", what, name);
				break;
			}
		}
	}
}

static int
rules_load_add_def(struct rules *r, struct rules_load_doc *d, yaml_node_t *item, int is_list)
{
	static const char *const list_keys[] = { "list", "items", NULL };
	static const char *const macro_keys[] = { "macro", "pattern", NULL };
	struct rules_load_def	 def, *nd;
	const char		*name, **items = NULL, *pat;
	yaml_node_t		*v;
	size_t			 i, n = 0, *lines = NULL;

	memset(&def, 0, sizeof(def));
	rules_load_check_keys(d, item, is_list ? "list" : "macro",
	    is_list ? list_keys : macro_keys);
	if ((name = rules_load_scalar(d, rules_load_get(d, item, is_list ? "list" : "macro"),
	    is_list ? "list" : "macro")) == NULL)
		return 0;
	if (!util_name_ok(name) || strchr(name, '.') != NULL) {
		rules_load_doc_err(d, item, "bad name '%s': letters, digits, _ and - only",
		    name);
		return 0;
	}
	/* each is looked up by name among the others: bound their number */
	if (r->ndef >= RULES_MAX_DEFS) {
		if (!r->defs_full)
			rules_load_doc_err(d, item, "more than %d lists and macros",
			    RULES_MAX_DEFS);
		r->defs_full = 1;
		return 0;
	}
	if (rules_load_find_def(r, name, strlen(name)) != NULL) {
		rules_load_doc_err(d, item, "'%s' is defined twice", name);
		return 0;
	}
	def.is_list = is_list;
	def.line = rules_load_line(item);
	if (is_list) {
		if ((v = rules_load_get(d, item, "items")) == NULL) {
			rules_load_doc_err(d, item, "list %s: items missing", name);
			return 0;
		}
		if (rules_load_strings(d, v, "items", &items, &lines, &n) == -1)
			goto oom;
		if (n == 0) {
			rules_load_doc_err(d, v, "list %s: no items", name);
			free(items);
			free(lines);
			return 0;
		}
		if ((def.items = calloc(n, sizeof(char *))) == NULL)
			goto oom;
		for (i = 0; i < n; i++) {
			if (items[i][0] == '\0')
				rules_load_doc_err(d, v, "list %s: an empty item", name);
			if ((def.items[i] = strdup(items[i])) == NULL)
				goto oom;
			def.nitems++;
		}
		free(items);
		items = NULL;
		def.lines = lines;	/* for the items that normalise to nothing */
		lines = NULL;
	} else {
		if ((pat = rules_load_scalar(d, rules_load_get(d, item, "pattern"),
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
	free(lines);
	for (i = 0; i < def.nitems; i++)
		free(def.items[i]);
	free(def.items);
	free(def.lines);
	free(def.pattern);
	free(def.name);
	free(def.file);
	return -1;
}

/*
 * A rule's fields, read in a first pass: patterns compile only once every
 * list and macro of every file is known.
 */
struct rules_load_src {
	yaml_node_t	*item;
	struct rules_load_doc *doc;
};

static int
rules_load_enum(struct rules_load_doc *d, yaml_node_t *n, const char *key,
    const char *const *names, int *out)
{
	const char	*s = rules_load_scalar(d, n, key);
	int		 i;

	if (s == NULL)
		return -1;
	for (i = 0; names[i] != NULL; i++)
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
	rules_load_doc_err(d, n, "%s: '%s' is not one of the allowed values", key, s);
	return -1;
}

/*
 * A rule's `clear: {before: P, after: P, within: N, quoted: true}`:
 * what next to a match clears it (docs/rules.md, "Context"). 0 (errors
 * reported), or -1 on ENOMEM.
 */
static int
rules_load_clear(struct rules *r, struct rules_load_doc *d, yaml_node_t *v,
    const char *id, struct rule *ru)
{
	static const char *const keys[] = { "before", "after", "within",
	    "quoted", NULL };
	yaml_node_t	*w;
	const char	*s;

	ru->clear.within = RULES_CLEAR_WITHIN;
	if (v->type != YAML_MAPPING_NODE) {
		rules_load_doc_err(d, v, "rule %s: clear: expected a mapping like "
		    "{before: '不能|请勿', within: 4}", id);
		return 0;
	}
	rules_load_check_keys(d, v, "clear", keys);
	if ((w = rules_load_get(d, v, "within")) != NULL &&
	    (s = rules_load_scalar(d, w, "within")) != NULL &&
	    rules_load_count(s, 100, &ru->clear.within) == -1)
		rules_load_doc_err(d, w, "rule %s: clear: within must be a "
		    "number of characters from 1 to 100", id);
	if ((w = rules_load_get(d, v, "quoted")) != NULL)
		rules_load_bool(d, w, "quoted", &ru->clear.quoted);
	if ((w = rules_load_get(d, v, "before")) != NULL &&
	    (s = rules_load_scalar(d, w, "before")) != NULL &&
	    (ru->clear.before = rules_load_pattern(r, s, ru->steps, NULL, NULL, d->file,
	    rules_load_line(w), d->errs)) == NULL)
		d->nerr++;
	if ((w = rules_load_get(d, v, "after")) != NULL &&
	    (s = rules_load_scalar(d, w, "after")) != NULL &&
	    (ru->clear.after = rules_load_pattern(r, s, ru->steps, NULL, NULL, d->file,
	    rules_load_line(w), d->errs)) == NULL)
		d->nerr++;
	return 0;
}

/* Whether s is empty or spaces only (ASCII white space, U+3000). */
static int
rules_load_blank(const char *s)
{
	while (*s != '\0') {
		if (isspace((unsigned char)*s))
			s++;
		else if (strncmp(s, "\xe3\x80\x80", 3) == 0)
			s += 3;
		else
			return 0;
	}
	return 1;
}

/* Builds one rule and registers its literals. 0 (errors reported), or -1 on ENOMEM. */
static int
rules_load_add_rule(struct rules *r, struct rules_load_doc *d, yaml_node_t *item)
{
	static const char *const keys[] = { "rule", "category", "severity",
	    "action", "role", "pattern", "whole", "near", "unless", "clear",
	    "window", "message", "enabled", "normalize", "examples", NULL };
	static const char *const sev[] = { "info", "warn", "critical", NULL };
	static const char *const act[] = { "flag", "warn", "block", NULL };
	static const char *const role[] = { "agent", "customer", "any", NULL };
	/* in the order of NORM_NFKC..NORM_SOUND */
	static const char *const steps[] = { "nfkc", "t2s", "noise", "digits",
	    "sound", NULL };
	struct rule		 ru, *nr;
	struct rules_lit_pf	 pf[RULES_MAX_BRANCH], npf, *upf = NULL;
	yaml_node_t		*v, *w;
	yaml_node_pair_t	*p;
	const char		*id, *s, **strs = NULL;
	size_t			*lines = NULL, n = 0, i, before = d->nerr, nupf = 0, cap;
	struct sbuf		 pat;
	int			 x, on, rc = -1;

	memset(&ru, 0, sizeof(ru));
	memset(pf, 0, sizeof(pf));
	memset(&npf, 0, sizeof(npf));
	sbuf_init(&pat);
	ru.enabled = 1;
	ru.roles = RULES_AGENT;
	ru.steps = NORM_ALL;
	ru.line = rules_load_line(item);
	rules_load_check_keys(d, item, "rule", keys);
	if ((id = rules_load_scalar(d, rules_load_get(d, item, "rule"), "rule")) == NULL)
		return 0;
	if (!util_name_ok(id)) {
		rules_load_doc_err(d, item, "rule '%s': ids are letters, digits, '.', '_' and '-'", id);
		return 0;
	}
	for (i = 0; i < r->nrule; i++)
		if (strcmp(r->rule[i].proto.rule, id) == 0) {
			rules_load_doc_err(d, item, "rule '%s' is defined twice (first at %s:%zu)",
			    id, r->rule[i].file, r->rule[i].line);
			return 0;
		}
	if ((ru.proto.rule = strdup(id)) == NULL || (ru.file = strdup(d->file)) == NULL)
		goto out;

	if ((v = rules_load_get(d, item, "category")) == NULL)
		rules_load_doc_err(d, item, "rule %s: category missing", id);
	else if ((s = rules_load_scalar(d, v, "category")) != NULL) {
		if (!util_name_ok(s))
			rules_load_doc_err(d, v, "rule %s: bad category '%s'", id, s);
		if ((ru.proto.category = strdup(s)) == NULL)
			goto out;
	}
	if ((v = rules_load_get(d, item, "severity")) == NULL)
		rules_load_doc_err(d, item, "rule %s: severity missing", id);
	else if (rules_load_enum(d, v, "severity", sev, &x) == 0)
		ru.proto.severity = (enum rules_severity)x;
	if ((v = rules_load_get(d, item, "action")) == NULL)
		rules_load_doc_err(d, item, "rule %s: action missing", id);
	else if (rules_load_enum(d, v, "action", act, &x) == 0)
		ru.proto.action = (enum rules_action)x;
	if ((v = rules_load_get(d, item, "role")) != NULL && rules_load_enum(d, v, "role", role, &x) == 0)
		ru.roles = (unsigned)x + 1;	/* agent 1, customer 2, any 3 */
	if ((v = rules_load_get(d, item, "enabled")) != NULL)
		rules_load_bool(d, v, "enabled", &ru.enabled);
	if ((v = rules_load_get(d, item, "window")) != NULL)
		rules_load_bool(d, v, "window", &ru.window);
	if ((v = rules_load_get(d, item, "message")) != NULL) {
		if ((s = rules_load_scalar(d, v, "message")) != NULL &&
		    (ru.proto.message = strdup(s)) == NULL)
			goto out;
		/* the agent is told this and nothing else */
		if (s != NULL && ru.proto.action != RULES_FLAG &&
		    rules_load_blank(s))
			rules_load_doc_err(d, v, "rule %s: a warn or block rule "
			    "needs a message that is not blank (what the agent "
			    "should say instead)", id);
	} else if (ru.proto.action != RULES_FLAG)
		rules_load_doc_err(d, item, "rule %s: a warn or block rule needs a message "
		    "(what the agent should say instead)", id);
	if (ru.proto.message == NULL && (ru.proto.message = strdup("")) == NULL)
		goto out;
	if ((v = rules_load_get(d, item, "normalize")) != NULL) {
		if (v->type != YAML_MAPPING_NODE)
			rules_load_doc_err(d, v, "rule %s: normalize: expected a mapping "
			    "like {digits: false}", id);
		else
			for (p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
				w = yaml_document_get_node(&d->doc, p->key);
				if (rules_load_enum(d, w, "normalize", steps, &x) == -1)
					continue;
				if (rules_load_bool(d, yaml_document_get_node(&d->doc,
				    p->value), "normalize", &on) == 0) {
					if (on)
						ru.steps |= 1u << x;
					else
						ru.steps &= ~(1u << x);
				}
			}
	}

	/* the pattern, or the whole-message words */
	v = rules_load_get(d, item, "pattern");
	w = rules_load_get(d, item, "whole");
	if ((v == NULL) == (w == NULL))
		rules_load_doc_err(d, item, "rule %s: exactly one of pattern and whole is needed", id);
	else if (v != NULL) {
		if ((s = rules_load_scalar(d, v, "pattern")) != NULL &&
		    rules_load_pattern(r, s, ru.steps, pf, &ru, d->file,
		    rules_load_line(v), d->errs) == NULL)
			d->nerr++;
	} else {
		ru.steps |= NORM_NOISE;
		if (rules_load_strings(d, w, "whole", &strs, &lines, &n) == -1)
			goto out;
		if (sbuf_append(&pat, "^(?:", 4) == -1)
			goto out;
		for (i = 0; i < n; i++) {
			size_t from = pat.len + (i > 0);

			if ((i > 0 && sbuf_append(&pat, "|", 1) == -1) ||
			    rules_load_norm_word(r, ru.steps, strs[i], &pat) == -1)
				goto out;
			/* a message of noise alone would be this word */
			if (pat.len == from) {
				rules_load_err(d->errs, d->file, lines[i], "rule %s: "
				    "whole: '%s' normalises to nothing (it would match "
				    "a message of noise alone)", id, strs[i]);
				d->nerr++;
			}
			/* escaped, so an upper bound of the word's length */
			if (pat.len - from > ru.whole_max)
				ru.whole_max = pat.len - from;
		}
		if (sbuf_append(&pat, ")$", 2) == -1)
			goto out;
		if (n == 0)
			rules_load_doc_err(d, w, "rule %s: whole: no words", id);
		else if (rules_load_pattern(r, sbuf_str(&pat), ru.steps, pf, &ru,
		    d->file, rules_load_line(w), d->errs) == NULL)
			d->nerr++;
		free(strs);
		free(lines);
		strs = NULL;
		lines = NULL;
	}
	if ((v = rules_load_get(d, item, "near")) != NULL) {
		yaml_node_t *np, *nw;

		if (v->type != YAML_MAPPING_NODE ||
		    (np = rules_load_get(d, v, "pattern")) == NULL ||
		    (nw = rules_load_get(d, v, "within")) == NULL)
			rules_load_doc_err(d, v, "rule %s: near: expected {pattern: P, within: N}", id);
		else {
			static const char *const near_keys[] = { "pattern", "within", NULL };

			rules_load_check_keys(d, v, "near", near_keys);
			if ((s = rules_load_scalar(d, nw, "within")) != NULL &&
			    rules_load_count(s, 1000, &ru.near_within) == -1)
				rules_load_doc_err(d, nw, "rule %s: near: within must be "
				    "a number of characters from 1 to 1000", id);
			if ((s = rules_load_scalar(d, np, "pattern")) != NULL &&
			    (ru.near_re = rules_load_pattern(r, s, ru.steps, &npf,
			    NULL, d->file, rules_load_line(np), d->errs)) == NULL)
				d->nerr++;
		}
	}
	if ((v = rules_load_get(d, item, "clear")) != NULL &&
	    rules_load_clear(r, d, v, id, &ru) == -1)
		goto out;
	if ((v = rules_load_get(d, item, "unless")) != NULL) {
		if (rules_load_strings(d, v, "unless", &strs, &lines, &n) == -1)
			goto out;
		/* room for each pattern's alternatives, compiled apart */
		if (n > 0 && ((ru.unless = calloc(n * RULES_MAX_UNLESS_PARTS,
		    sizeof(*ru.unless))) == NULL || (upf = calloc(n *
		    RULES_MAX_UNLESS_PARTS, sizeof(*upf))) == NULL))
			goto out;
		nupf = n * RULES_MAX_UNLESS_PARTS;
		for (i = 0; i < n; i++)
			if (rules_load_unless(r, strs[i], &ru, upf, d->file,
			    lines[i], d->errs) == -1)
				d->nerr++;
		free(strs);
		free(lines);
		strs = NULL;
		lines = NULL;
	}
	if ((v = rules_load_get(d, item, "examples")) == NULL || v->type != YAML_MAPPING_NODE)
		rules_load_doc_err(d, v ? v : item, "rule %s: examples: needed, with match: "
		    "and no_match: lists", id);
	else {
		static const char *const ex_keys[] = { "match", "no_match", NULL };

		rules_load_check_keys(d, v, "examples", ex_keys);
		for (x = 0; x < 2; x++) {
			if ((w = rules_load_get(d, v, x == 0 ? "match" : "no_match")) == NULL)
				continue;
			if (rules_load_strings(d, w, x == 0 ? "match" : "no_match",
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
			rules_load_doc_err(d, v, "rule %s: examples: at least one match: "
			    "example is needed", id);
	}
	if (d->nerr != before) {
		rc = 0;	/* reported; the set will be refused */
		goto out;
	}

	/* the prefilter's literals, from the pattern and from the near cue */
	if (rules_add_prefilter(r, &ru, pf, &npf, upf) == -1)
		goto out;
	/* doubling: a rule is 5.8 KB, and a copy of the array per rule is
	 * quadratic (a sanitizer's realloc always copies) */
	if (r->nrule == r->rulecap) {
		cap = r->rulecap ? 2 * r->rulecap : 64;
		if ((nr = realloc(r->rule, cap * sizeof(*nr))) == NULL)
			goto out;
		r->rule = nr;
		r->rulecap = cap;
	}
	r->rule[r->nrule++] = ru;
	memset(&ru, 0, sizeof(ru));
	rc = 0;
out:
	for (i = 0; i < RULES_MAX_BRANCH; i++)
		rules_lit_pf_clear(&pf[i]);
	rules_lit_pf_clear(&npf);
	for (i = 0; i < nupf; i++)
		rules_lit_pf_clear(&upf[i]);
	free(upf);
	free(strs);
	free(lines);
	sbuf_free(&pat);
	rules_free_rule(&ru);
	return rc;
}

/* Loads one file's document; 0, or -1 when it could not be parsed at all. */
static int
rules_load_parse_file(const char *path, struct rules_load_doc *d, struct sbuf *errs)
{
	yaml_parser_t	 parser;
	const char	*why;
	char		*buf;
	size_t		 len, line;
	int		 rc = -1;

	memset(d, 0, sizeof(*d));
	d->file = path;
	d->errs = errs;
	if (util_read_file(path, RULES_MAX_FILE, &buf, &len) == -1) {
		if (errno == EFBIG)
			rules_load_err(errs, path, 0, "larger than %d bytes: split "
			    "it into several files", RULES_MAX_FILE);
		else
			rules_load_err(errs, path, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	switch (yamlfile_check(buf, len, &line, &why)) {
	case 0:
		break;
	case -1:
		rules_load_err(errs, path, line, "%s", why);
		free(buf);
		return -1;
	default:
		rules_load_err(errs, path, 0, "out of memory");
		free(buf);
		return -1;
	}
	if (!yaml_parser_initialize(&parser)) {
		rules_load_err(errs, path, 0, "out of memory");
		free(buf);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &d->doc))
		rules_load_err(errs, path, yamlfile_error_line(&parser, buf, len),
		    "YAML: %s%s%s",
		    parser.problem ? parser.problem : "syntax error",
		    parser.context ? " " : "", parser.context ? parser.context : "");
	else
		rc = 0;
	yaml_parser_delete(&parser);
	free(buf);
	return rc;
}

/* --- loading -------------------------------------------------------------- */

/* The load-time check of the examples (rules_test) reports each failure here. */
static void
rules_load_example_err(const struct rules_example *e, void *arg)
{
	struct sbuf	*errs = arg;

	if (!e->ok)
		rules_load_err(errs, e->file, e->line, "rule %s: example \"%s\" %s",
		    e->rule, e->text, e->want_match ? "should match but does not" :
		    "matches but should not");
}

struct rules *
rules_load_files(char *const *paths, size_t npaths, unsigned flags,
    struct sbuf *errs)
{
	struct rules		*r;
	struct rules_load_doc	*docs = NULL;
	yaml_node_t		*root, *item, *k;
	yaml_node_item_t	*it;
	size_t			 f, nerr = 0;
	const char		*kind;
	int			 pass;

	if ((r = rules_new(flags)) == NULL ||
	    (docs = calloc(npaths ? npaths : 1, sizeof(*docs))) == NULL)
		goto oom;

	for (f = 0; f < npaths; f++)
		if (rules_load_parse_file(paths[f], &docs[f], errs) == -1)
			nerr++;

	/* pass 0: lists and macros of every file; pass 1: the rules */
	for (pass = 0; pass < 2; pass++) {
		for (f = 0; f < npaths; f++) {
			struct rules_load_doc *d = &docs[f];

			if (d->file == NULL || (root = yaml_document_get_root_node(&d->doc)) == NULL)
				continue;
			if (root->type != YAML_SEQUENCE_NODE) {
				if (pass == 0)
					rules_load_doc_err(d, root, "expected a list of "
					    "'- list:', '- macro:' and '- rule:' items");
				continue;
			}
			for (it = root->data.sequence.items.start;
			    it < root->data.sequence.items.top; it++) {
				item = yaml_document_get_node(&d->doc, *it);
				if (item == NULL || item->type != YAML_MAPPING_NODE ||
				    item->data.mapping.pairs.start == item->data.mapping.pairs.top) {
					if (pass == 0)
						rules_load_doc_err(d, item, "expected '- list:', "
						    "'- macro:' or '- rule:'");
					continue;
				}
				k = yaml_document_get_node(&d->doc,
				    item->data.mapping.pairs.start->key);
				kind = k && k->type == YAML_SCALAR_NODE ?
				    (const char *)k->data.scalar.value : "";
				if (strcmp(kind, "list") == 0 || strcmp(kind, "macro") == 0) {
					if (pass == 0 && rules_load_add_def(r, d, item,
					    kind[0] == 'l') == -1)
						goto oom;
				} else if (strcmp(kind, "rule") == 0) {
					if (pass == 1 && rules_load_add_rule(r, d, item) == -1)
						goto oom;
				} else if (pass == 0)
					rules_load_doc_err(d, item, "unknown item '%s': "
					    "expected list, macro or rule first", kind);
			}
		}
	}
	for (f = 0; f < npaths; f++)
		nerr += docs[f].nerr;
	rules_load_free_defs(r);
	if (rules_prepare(r) == -1)
		goto oom;
	if (nerr == 0 && !(flags & RULES_SKIP_EXAMPLES))
		nerr += rules_test(r, rules_load_example_err, errs);
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
	rules_load_free_defs(r);
	rules_free(r);
	return NULL;
}

static int
rules_load_path_cmp(const void *a, const void *b)
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
		rules_load_err(errs, dir, 0, "cannot open the rules directory: %s",
		    strerror(errno));
		return NULL;
	}
	while ((de = readdir(dp)) != NULL) {
		l = strlen(de->d_name);
		/* NAME.yaml or NAME.yml, NAME not empty */
		if (de->d_name[0] == '.' ||
		    !((l > 5 && strcmp(de->d_name + l - 5, ".yaml") == 0) ||
		    (l > 4 && strcmp(de->d_name + l - 4, ".yml") == 0)))
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
		rules_load_err(errs, dir, 0, RULES_NO_FILES);
	else {
		qsort(paths, n, sizeof(*paths), rules_load_path_cmp);
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
