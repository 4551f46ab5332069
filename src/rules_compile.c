/* rules_compile: a rule's patterns compiled, its branches' anchored twins and first characters (pure). */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "chatmon/normalize.h"
#include "chatmon/rules.h"
#include "chatmon/util.h"
#include "rules_int.h"

int
rules_sound_pattern(struct sbuf *pattern)
{
	const unsigned char	*p = (const unsigned char *)sbuf_str(pattern);
	struct sbuf		 out;
	uint32_t		 cp;
	size_t			 i, k;
	char			 enc[4];

	/* ideographs are 3-byte characters, and so are their tokens */
	sbuf_init(&out);
	for (i = 0; i < pattern->len; i += k) {
		k = rules_utf8_len(p[i]);
		if (k == 3 && i + 3 <= pattern->len) {
			cp = norm_sound_char(rules_cp3(p + i));
			enc[0] = (char)(0xe0 | cp >> 12);
			enc[1] = (char)(0x80 | (cp >> 6 & 0x3f));
			enc[2] = (char)(0x80 | (cp & 0x3f));
			if (sbuf_append(&out, enc, 3) == -1)
				goto err;
			continue;
		}
		if (i + k > pattern->len)
			k = pattern->len - i;
		if (sbuf_append(&out, (const char *)p + i, k) == -1)
			goto err;
	}
	sbuf_free(pattern);
	*pattern = out;
	return 0;
err:
	sbuf_free(&out);
	return -1;
}

/* Compiles without the JIT; NULL with PCRE2's error code and offset. */
static pcre2_code *
rules_pcre(const char *pattern, size_t len, int *ec, size_t *off)
{
	pcre2_code	*re;
	PCRE2_SIZE	 eoff;

	re = pcre2_compile((PCRE2_SPTR)pattern, len,
	    PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, ec, &eoff, NULL);
	if (re == NULL)
		*off = (size_t)eoff;
	return re;
}

void
rules_jit_compile(struct rules *r, pcre2_code *re)
{
	if (r->jit && pcre2_jit_compile(re, PCRE2_JIT_COMPLETE) != 0)
		r->jit = 0;	/* e.g. MemoryDenyWriteExecute: the interpreter still matches */
}

/* rules_compile, JIT-compiled only when jit is set (rules_branch_heads decides). */
static pcre2_code *
rules_compile_jit(struct rules *r, const char *pattern, size_t len,
    struct rules_lit_pf *pf, int *ec, size_t *off, int jit)
{
	pcre2_code	*re;

	if ((re = rules_pcre(pattern, len, ec, off)) == NULL)
		return NULL;
	if (jit)
		rules_jit_compile(r, re);
	if (pf != NULL)
		pf->n = rules_lit_required(pattern, pf->clause);
	return re;
}

pcre2_code *
rules_compile(struct rules *r, const char *pattern, size_t len,
    struct rules_lit_pf *pf, int *ec, size_t *off)
{
	return rules_compile_jit(r, pattern, len, pf, ec, off, 1);
}

/*
 * The top-level alternatives of pattern, groups opened first when open is
 * set (rules_lit_flatten), at most max: rules_lit_branches cuts
 * RULES_MAX_CLAUSE at most, so the last is cut again while there is room.
 * The parts are owned by the caller. Returns their number, 1 (none made)
 * when the pattern cannot be cut, 0 on ENOMEM.
 */
static size_t
rules_cut(const char *pattern, int open, char **parts, size_t max)
{
	size_t	 at[RULES_MAX_CLAUSE + 1], at2[RULES_MAX_CLAUSE + 1];
	size_t	 n = 0, k, b;
	char	*rest, *part;

	if ((rest = open ? rules_lit_flatten(pattern) : strdup(pattern)) == NULL)
		return 0;
	if (max < 2 || rules_lit_branches(rest, at) < 2) {
		free(rest);
		return 1;
	}
again:
	if (n + (k = rules_lit_branches(rest, at)) > max)
		k = max - n;	/* the last takes the rest */
	for (b = 0; b < k; b++) {
		part = b == k - 1 ? strdup(rest + at[b]) :
		    strndup(rest + at[b], at[b + 1] - 1 - at[b]);
		if (part == NULL)
			goto oom;
		if (b == k - 1 && n + 1 < max &&
		    rules_lit_branches(part, at2) > 1) {
			free(rest);
			rest = part;
			goto again;
		}
		parts[n++] = part;
	}
	free(rest);
	return n;
oom:
	while (n > 0)
		free(parts[--n]);
	free(rest);
	return 0;
}

/*
 * Compiles the n parts into re[] with their literals in pf[] (left empty
 * on failure). 0, or -1 when one cannot stand alone.
 */
static int
rules_compile_parts(struct rules *r, char **parts, size_t n, pcre2_code **re,
    struct rules_lit_pf *pf, int jit)
{
	size_t	b, off;
	int	ec;

	for (b = 0; b < n; b++)
		if ((re[b] = rules_compile_jit(r, parts[b], strlen(parts[b]),
		    &pf[b], &ec, &off, jit)) == NULL) {
			while (b > 0) {
				b--;
				pcre2_code_free(re[b]);
				re[b] = NULL;
				rules_lit_pf_clear(&pf[b]);
			}
			return -1;
		}
	return 0;
}

static void
rules_free_parts(char **parts, size_t n)
{
	while (n > 0)
		free(parts[--n]);
}

size_t
rules_compile_any(struct rules *r, const char *pattern, size_t len,
    pcre2_code **re, struct rules_lit_pf *pf, size_t max, int *ec, size_t *off)
{
	pcre2_code	*whole;
	char		*parts[RULES_MAX_UNLESS_PARTS];
	size_t		 n;
	int		 rc;

	/* the whole first, for its errors at offsets the writer can find */
	if ((whole = rules_pcre(pattern, len, ec, off)) == NULL)
		return 0;
	if (max > RULES_MAX_UNLESS_PARTS)
		max = RULES_MAX_UNLESS_PARTS;
	if ((n = rules_cut(pattern, 1, parts, max)) > 1) {
		rc = rules_compile_parts(r, parts, n, re, pf, 1);
		rules_free_parts(parts, n);
		if (rc == 0) {
			pcre2_code_free(whole);
			return n;
		}
	}
	rules_jit_compile(r, whole);
	re[0] = whole;
	pf[0].n = rules_lit_required(pattern, pf[0].clause);
	return 1;
}


/*
 * The branch's anchored twin and first-character filter when its matches'
 * first characters are known (rules_lit_heads), in folded text only, where
 * the caseless regex's first character is the literal's bytes. Without
 * them (or short of memory) the branch is searched as it is, and its
 * anchored twin is only there for the starts after one that hit the match
 * limit (rules_branch_match), which PCRE2's search does not name. Only the
 * code that is searched is JIT-compiled: the branch's own, with heads, is
 * not until the naive baseline asks for it (6 MB of the default pack's).
 */
static void
rules_branch_heads(struct rules *r, const struct rule *ru,
    struct rules_branch *br, const char *pattern)
{
	struct rules_lit_req	 h = { { NULL }, 0 };
	const unsigned char	*c;
	pcre2_code		*re = NULL;
	uint64_t		*bits = NULL;
	uint32_t		 k;
	size_t			 i, off;
	int			 ec;

	re = pcre2_compile((PCRE2_SPTR)pattern, strlen(pattern), PCRE2_UTF |
	    PCRE2_UCP | PCRE2_CASELESS | PCRE2_ANCHORED, &ec, &off, NULL);
	if (re == NULL)
		goto out;
	rules_jit_compile(r, re);
	if (!(ru->steps & NORM_NFKC) || !rules_lit_heads(pattern, &h) ||
	    (bits = calloc(RULES_HEAD_WORDS, sizeof(*bits))) == NULL) {
		br->anch = re;	/* a twin without heads */
		re = NULL;
		goto out;
	}
	for (i = 0; i < h.set[0]->n; i++) {
		c = (const unsigned char *)h.set[0]->s[i];
		k = rules_head_bit(c[0] < 0x80 ? c[0] : rules_cp3(c));
		bits[k / 64] |= (uint64_t)1 << (k % 64);
	}
	br->anch = re;
	br->head = bits;
	re = NULL;
	bits = NULL;
out:
	/* searched as it is: JIT-compiled now (with heads: only if ever naive) */
	if (br->head == NULL)
		rules_jit_compile(r, br->re);
	pcre2_code_free(re);
	free(bits);
	rules_lit_req_clear(&h);
}

int
rules_compile_rule(struct rules *r, struct rule *ru, const char *pattern,
    size_t len, struct rules_lit_pf pf[RULES_MAX_BRANCH], int *ec, size_t *off)
{
	pcre2_code	*whole, *re[RULES_MAX_BRANCH];
	char		*parts[RULES_MAX_BRANCH];
	size_t		 at[RULES_MAX_CLAUSE + 1], n, b;
	int		 rc;

	/*
	 * The whole first, for its errors at offsets the writer can find;
	 * JIT-compiled only when it is kept whole. Each top-level
	 * alternative is compiled apart, so that only those whose literals
	 * occur are run; a pattern that is one group (a rule written as
	 * ${macro}) is cut inside it. Opening the groups of a pattern that
	 * has alternatives already as well was measured worse, also with 32
	 * branches (19 743 instructions a message against 20 110, 43 597
	 * against 46 222 with windows): its branches' literals are commoner.
	 */
	if ((whole = rules_pcre(pattern, len, ec, off)) == NULL)
		return -1;
	if ((n = rules_cut(pattern, rules_lit_branches(pattern, at) < 2, parts,
	    RULES_MAX_BRANCH)) == 0)
		goto oom;
	if (n > 1) {
		rc = rules_compile_parts(r, parts, n, re, pf, 0);
		for (b = 0; rc == 0 && b < n; b++) {
			ru->br[b].re = re[b];
			(void)rules_lit_suffix(parts[b], &ru->br[b].tail);
			rules_branch_heads(r, ru, &ru->br[b], parts[b]);
		}
		rules_free_parts(parts, n);
		if (rc == 0) {
			pcre2_code_free(whole);
			ru->nbr = n;
			return 0;
		}
	}
	ru->br[0].re = whole;
	ru->nbr = 1;
	pf[0].n = rules_lit_required(pattern, pf[0].clause);
	(void)rules_lit_suffix(pattern, &ru->br[0].tail);
	rules_branch_heads(r, ru, &ru->br[0], pattern);
	return 0;
oom:
	pcre2_code_free(whole);
	*ec = 0;
	return -1;
}

void
rules_free_rule(struct rule *ru)
{
	size_t	i;

	free((char *)ru->proto.rule);
	free((char *)ru->proto.category);
	free((char *)ru->proto.message);
	for (i = 0; i < ru->nbr && !ru->same; i++) {
		pcre2_code_free(ru->br[i].re);
		pcre2_code_free(ru->br[i].anch);
		free(ru->br[i].head);
	}
	free(ru->expanded);
	for (i = 0; i < RULES_MAX_BRANCH; i++)
		rules_lit_req_clear(&ru->br[i].tail);
	pcre2_code_free(ru->near_re);
	pcre2_code_free(ru->clear.before);
	pcre2_code_free(ru->clear.after);
	for (i = 0; i < ru->nunless; i++)
		pcre2_code_free(ru->unless[i]);
	free(ru->unless);
	free(ru->file);
	for (i = 0; i < ru->nex; i++)
		free(ru->ex[i].text);
	free(ru->ex);
}
