/* rules: rule sets compiled once; messages matched against them (pure; loading is rules_load.c's). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "chatmon/acm.h"
#include "chatmon/normalize.h"
#include "chatmon/rules.h"
#include "chatmon/util.h"
#include "rules_int.h"

/*
 * A message is normalised once (docs/rules.md), scanned once by one
 * Aho-Corasick automaton holding every rule's required literals, and only
 * the rules whose literals occur are confirmed with their own PCRE2 regex.
 * Everything a match needs (normalisers, match data, the candidate bitmap,
 * the hit array) is made at load time, so matching allocates nothing once
 * the normalisers' buffers have grown.
 */

#define RULES_MATCH_LIMIT	200000	/* PCRE2 steps: a bad pattern cannot stall the loop */
#define RULES_MAX_TRIES		64	/* matches of a clear cue looked at; see also below */
/*
 * Occurrences of a rule judged in a message (near, clear): RULES_MAX_TRIES,
 * and one more for each RULES_TRY_BYTES bytes of its text, so that the work
 * grows with the text, not with its square, and every occurrence of a
 * pattern that needs more bytes than that is judged however long the text.
 */
#define RULES_TRY_BYTES		4
#define RULES_LIMIT_HITS	32	/* match limit hits a rule may take in a message */

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

/* --- compiling ----------------------------------------------------------- */

struct rules *
rules_new(unsigned flags)
{
	static uint64_t	 gens;	/* rule sets are made on one thread */
	struct rules	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	r->gen = ++gens;
	r->jit = !(flags & RULES_NO_JIT);
	if ((r->md = pcre2_match_data_create(32, NULL)) == NULL ||
	    (r->mctx = pcre2_match_context_create(NULL)) == NULL)
		goto oom;
	pcre2_set_match_limit(r->mctx, RULES_MATCH_LIMIT);
	pcre2_set_depth_limit(r->mctx, RULES_MATCH_LIMIT / 10);
	return r;
oom:
	rules_free(r);
	return NULL;
}

struct norm *
rules_norm(struct rules *r, unsigned mask)
{
	if (r->norm[mask] == NULL)
		r->norm[mask] = norm_new();
	return r->norm[mask];
}

/* --- matching ------------------------------------------------------------ */

/*
 * A branch's ending (in a window pass), which counts when it ends in the
 * last turn. Kept out of rules_cand_cb's loop, which is hot.
 */
static void
rules_cand_late(struct rules *r, uint32_t p, size_t end)
{
	struct rule	*ru;
	uint32_t	 u = r->pair[p].unit & ~RULES_LATE;

	if (r->scan_map[end - 1] < r->boundary)
		return;
	ru = &r->rule[u / RULES_MAX_BRANCH];
	if (ru->late == 0)
		r->lates[r->nlates++] = u / RULES_MAX_BRANCH;
	ru->late |= 1u << (u % RULES_MAX_BRANCH);
}

/*
 * Marks the vetoes' sets of the literals found so far (r->vfound), which
 * rules_cand_cb only listed: an unless pattern runs for ~1 message in 2
 * of the benchmark corpus and hardly ever on clean chat, and its words
 * are common ones (a third of the pairs the literals found would mark).
 */
static void
rules_veto_marks(struct rules *r)
{
	const uint32_t	*vend = r->windowed ? r->lit_wvend : r->lit_vend;
	size_t		 k;
	uint32_t	 id, p, v;

	for (k = 0; k < r->nvfound; k++) {
		id = r->vfound[k];
		for (p = r->lit_veto[id]; p < vend[id]; p++) {
			v = r->pair[p].unit & ~RULES_VETO;
			if (r->vseen[v] == 0)
				r->vtouched[r->nvtouched++] = v;
			r->vseen[v] |= r->pair[p].bit;
		}
	}
	r->nvfound = 0;
}

static int
rules_cand_cb(uint32_t id, size_t end, void *arg)
{
	struct rules		*r = arg;
	const struct rules_pair	*pair = r->pair;
	uint64_t		*seen = r->seen;
	uint32_t		*touched = r->touched;
	size_t			 nt = r->ntouched;
	uint32_t		 p, u, last;

	/*
	 * A window pass marks the endings and the window rules' sets, listed
	 * first. r's fields are in locals: a store to seen[] could be one to
	 * r->ntouched (both 64-bit) for all the compiler knows, which made it
	 * reload them at every pair (~100 a message).
	 */
	last = (r->windowed ? r->lit_wend : r->lit_end)[id];
	for (p = id; p < last; p++) {
		u = pair[p].unit;
		if (u & RULES_LATE) {
			rules_cand_late(r, p, end);
			continue;
		}
		if (seen[u] == 0)
			touched[nt++] = u;
		seen[u] |= pair[p].bit;
	}
	r->ntouched = nt;
	/* the vetoes' pairs, if any, when an unless pattern is to run */
	if (r->lit_veto[id] < (r->windowed ? r->lit_wvend : r->lit_vend)[id]) {
		if (r->nvfound == RULES_VFOUND)
			rules_veto_marks(r);
		r->vfound[r->nvfound++] = id;
	}
	return 0;
}

/*
 * The text normalised with mask, computed once per message. A view
 * without the noise step, beside the one with it that the pass scans
 * anyway, is that one's when it found no noise (a third of the corpus):
 * the same bytes and map, one normalisation fewer.
 */
static int
rules_text(struct rules *r, unsigned mask)
{
	unsigned	full = mask | NORM_NOISE;

	if (r->nvalid & (1u << mask))
		return 0;
	if (full != mask && ((r->windowed ? r->wacm_masks : r->acm_masks) &
	    1u << full)) {
		if (rules_text(r, full) == -1)
			return -1;
		if (!norm_noisy(r->norm[full])) {
			r->ntext[mask] = r->ntext[full];
			r->nlen[mask] = r->nlen[full];
			r->nmap[mask] = r->nmap[full];
			r->nsrc[mask] = full;
			r->nvalid |= 1u << mask;
			return 0;
		}
	}
	r->nsrc[mask] = mask;
	if (rules_norm(r, mask) == NULL || norm_run(r->norm[mask], r->otext, r->olen, mask, &r->ntext[mask],
	    &r->nlen[mask], &r->nmap[mask]) == -1) {
		r->oom = 1;
		return -1;
	}
	r->nvalid |= 1u << mask;
	return 0;
}

/* Whether this message is plain, as a view normalised for it says (0 before any). */
static int
rules_plain(const struct rules *r)
{
	unsigned	v;

	if (r->nvalid == 0)
		return 0;
	v = (unsigned)__builtin_ctz(r->nvalid);
	return norm_plain(r->norm[r->nsrc[v]]);
}

/* PCRE2's answer: a match (>= 0), PCRE2_ERROR_NOMATCH, or a limit hit. */
static int
rules_re_rc(struct rules *r, const pcre2_code *re, const char *s, size_t len,
    size_t start)
{
	/* pcre2_jit_match skips the checks pcre2_match makes each time */
	if (r->jit)
		return pcre2_jit_match(re, (PCRE2_SPTR)s, len, start, 0, r->md,
		    r->mctx);
	return pcre2_match(re, (PCRE2_SPTR)s, len, start, PCRE2_NO_UTF_CHECK,
	    r->md, r->mctx);
}

/*
 * A cue's search (near, clear, unless): 1 when re matches. A match limit
 * hit counts as none, and draws on the rule's budget as the pattern's own
 * do (rules_limit_go_on): once it is spent, rules_confirm judges no more
 * occurrences, so that a cue that hits the limit at every occurrence
 * cannot cost the message a search per occurrence.
 */
static int	rules_limit_go_on(struct rules *, int);

static int
rules_re_match(struct rules *r, const pcre2_code *re, const char *s,
    size_t len, size_t start)
{
	int	rc;

	if (r->limit_left == 0)
		return 0;	/* spent: the caller reports as it stands */
	rc = rules_re_rc(r, re, s, len, start);
	if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
		(void)rules_limit_go_on(r, rc);
	return rc >= 0;
}

/*
 * The characters of view mask's text that can be heads (ASCII, or three
 * bytes long: rules_lit_heads), with their filter bits; NULL on ENOMEM.
 */
static const struct rules_hpos *
rules_hpos(struct rules *r, unsigned mask, size_t *nh)
{
	const unsigned char	*p = (const unsigned char *)r->ntext[mask];
	struct rules_hpos	*h;
	unsigned		 v = r->nsrc[mask];
	size_t			 i, cap, k = 0, len = r->nlen[mask];

	if (r->hvalid & 1u << v) {
		*nh = r->nhpos[v];
		return r->hpos[v];
	}
	if (len > r->hposcap[v]) {	/* at most a character a byte; doubling */
		cap = len > 2 * r->hposcap[v] ? len : 2 * r->hposcap[v];
		if ((h = realloc(r->hpos[v], cap * sizeof(*h))) == NULL)
			return NULL;
		r->hpos[v] = h;
		r->hposcap[v] = cap;
	}
	h = r->hpos[v];
	for (i = 0; i < len; ) {
		if (p[i] < 0x80) {
			h[k].off = (uint32_t)i;
			h[k++].bit = rules_head_bit(p[i]);
			i++;
		} else if ((p[i] & 0xf0) == 0xe0 && i + 2 < len) {
			h[k].off = (uint32_t)i;
			h[k++].bit = rules_head_bit(rules_cp3(p + i));
			i += 3;
		} else
			i++;	/* not a head; its continuation bytes neither */
	}
	r->nhpos[v] = k;
	r->hvalid |= 1u << v;
	*nh = k;
	return h;
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

/*
 * Whether a search may go on past a start that hit PCRE2's match limit
 * (rc, when it is not a match or PCRE2_ERROR_NOMATCH): such a start is no
 * match there, and the rule being confirmed has RULES_LIMIT_HITS of them
 * to spend in a message (rules_confirm), so that a bad pattern costs the
 * relay a bounded time on any text. 1 to go on, 0 when spent.
 */
static int
rules_limit_go_on(struct rules *r, int rc)
{
	if (rc != PCRE2_ERROR_MATCHLIMIT && rc != PCRE2_ERROR_DEPTHLIMIT &&
	    rc != PCRE2_ERROR_HEAPLIMIT && rc != PCRE2_ERROR_JIT_STACKLIMIT)
		return 0;	/* anything else ends the search */
	if (r->limit_left == 0)
		return 0;
	r->limit_left--;
	return 1;
}

/*
 * The first match of branch br in s, view mask's text, at or after start,
 * as rules_re_match: with a head filter, the anchored twin tried where a
 * character the filter holds stands, leftmost first, which is what the
 * search would find (no match starts elsewhere). PCRE2's match limit
 * holds for each start: a start that hits it is no match there, and the
 * search goes on after it while the rule's budget lasts
 * (rules_limit_go_on). PCRE2's own search stops at such a start without
 * saying which it was, so from there the anchored twin is tried at every
 * character.
 */
static int
rules_branch_match(struct rules *r, const struct rules_branch *br,
    unsigned mask, const char *s, size_t len, size_t start)
{
	const struct rules_hpos	*h;
	size_t			 i, n, hi, mid;
	uint32_t		 k;
	int			 rc;

	if (br->head != NULL && r->anchored &&
	    (h = rules_hpos(r, mask, &n)) != NULL) {
		/* the first at or after start (they are in order): not a walk from 0 each time */
		for (i = 0, hi = n; i < hi; ) {
			mid = i + (hi - i) / 2;
			if (h[mid].off < start)
				i = mid + 1;
			else
				hi = mid;
		}
		for (; i < n && h[i].off < len; i++) {
			k = h[i].bit;
			if (!(br->head[k / 64] >> (k % 64) & 1))
				continue;
			if ((rc = rules_re_rc(r, br->anch, s, len, h[i].off)) >= 0)
				return 1;
			if (rc != PCRE2_ERROR_NOMATCH && !rules_limit_go_on(r, rc))
				return 0;
		}
		return 0;
	}
	/* short of memory: the interpreter, the branch's code not being JIT-compiled */
	if (br->head != NULL && r->anchored)
		rc = pcre2_match(br->re, (PCRE2_SPTR)s, len, start,
		    PCRE2_NO_UTF_CHECK, r->md, r->mctx);
	else
		rc = rules_re_rc(r, br->re, s, len, start);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH || br->anch == NULL ||
	    !rules_limit_go_on(r, rc))
		return 0;
	for (i = start; i <= len; i = rules_walk(s, len, i, 1, 1)) {
		if ((rc = rules_re_rc(r, br->anch, s, len, i)) >= 0)
			return 1;
		if (rc != PCRE2_ERROR_NOMATCH && !rules_limit_go_on(r, rc))
			return 0;
		if (i == len)
			break;
	}
	return 0;
}

/*
 * The start of the last match of re that lies wholly in [from, to) of t,
 * or -1 (PCRE2 is asked with the subject cut at to); -2 when more than
 * RULES_MAX_TRIES matches are there, so that the last is not known.
 */
static ssize_t
rules_last_in(struct rules *r, const pcre2_code *re, const char *t,
    size_t from, size_t to)
{
	PCRE2_SIZE	*ov;
	ssize_t		 last = -1;
	size_t		 at = from;
	int		 n;

	for (n = 0; at <= to; n++) {
		if (!rules_re_match(r, re, t, to, at))
			return last;
		if (n == RULES_MAX_TRIES)
			return -2;
		ov = pcre2_get_ovector_pointer(r->md);
		last = (ssize_t)ov[0];
		at = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
	}
	return last;
}

/*
 * The pairs of quotation marks of original o, in r->quote (grown, never
 * shrunk), once for each original of this text: an opening mark paired
 * with its closing one, brackets nested by kind, ASCII quotes in the
 * order they come (the first opens, the second closes); a mark never
 * closed, as an inch sign or a typo leaves it, pairs with nothing. 0, or
 * -1 on ENOMEM.
 */
static int
rules_quotes(struct rules *r, const char *o, size_t olen)
{
	static const char *const open[] = { "\xe2\x80\x9c", "\xe3\x80\x8c",
	    "\xe3\x80\x8e", "\xe3\x80\x8a", "\xe2\x80\x98" };	/* “ 「 『 《 ‘ */
	static const char *const close[] = { "\xe2\x80\x9d", "\xe3\x80\x8d",
	    "\xe3\x80\x8f", "\xe3\x80\x8b", "\xe2\x80\x99" };	/* ” 」 』 》 ’ */
	struct rules_quote	*q;
	uint32_t		 top[UTIL_NELEM(open) + 2], reach = 0;
	size_t			 i, k, n = 0, cap;
	int			 kind, closing;

	if (r->qorig == o)
		return 0;
	for (k = 0; k < UTIL_NELEM(top); k++)
		top[k] = UINT32_MAX;	/* per kind, its innermost open pair; the last two: " and ' */
	for (i = 0; i < olen; i++) {
		kind = -1;
		closing = 0;
		if (o[i] == '"')
			kind = UTIL_NELEM(open);
		/* 'quoted', but not the apostrophe of don't */
		else if (o[i] == '\'' && !(i > 0 && i + 1 < olen &&
		    isalpha((unsigned char)o[i - 1]) &&
		    isalpha((unsigned char)o[i + 1])))
			kind = UTIL_NELEM(open) + 1;
		else if ((unsigned char)o[i] >= 0xe2 && i + 2 < olen) {
			for (k = 0; k < UTIL_NELEM(open) && kind < 0; k++) {
				if (memcmp(o + i, open[k], 3) == 0)
					kind = (int)k;
				else if (memcmp(o + i, close[k], 3) == 0) {
					kind = (int)k;
					closing = 1;
				}
			}
		}
		if (kind < 0)
			continue;
		if (kind >= (int)UTIL_NELEM(open))
			closing = top[kind] != UINT32_MAX;
		if (closing) {
			if (top[kind] != UINT32_MAX) {	/* a closing mark alone closes nothing */
				r->quote[top[kind]].close = (uint32_t)i;
				top[kind] = r->quote[top[kind]].prev;
			}
			continue;
		}
		if (n == r->quotecap) {
			cap = r->quotecap > 0 ? 2 * r->quotecap : 16;
			if ((q = realloc(r->quote, cap * sizeof(*q))) == NULL)
				return -1;
			r->quote = q;
			r->quotecap = cap;
		}
		r->quote[n].open = (uint32_t)i;
		r->quote[n].close = UINT32_MAX;
		r->quote[n].prev = top[kind];
		top[kind] = (uint32_t)n++;
	}
	/* by opening mark, the furthest any pair so far reaches */
	for (i = 0; i < n; i++) {
		if (r->quote[i].close != UINT32_MAX && r->quote[i].close > reach)
			reach = r->quote[i].close;
		r->quote[i].reach = reach;
	}
	r->nquote = n;
	r->qorig = o;
	return 0;
}

/*
 * Whether the original bytes [a, b) of o lie inside quotation marks: a
 * pair opened before a and closed at or after b. An opening mark alone
 * quotes nothing: one stray “ must not clear every quoted rule after it.
 */
static int
rules_in_quotes(struct rules *r, const char *o, size_t olen, size_t a,
    size_t b)
{
	size_t	lo = 0, hi, mid;

	if (rules_quotes(r, o, olen) == -1)
		return 0;	/* short of memory: not cleared, the rule judges */
	/* the pairs opened before a: [0, lo) */
	for (hi = r->nquote; lo < hi; ) {
		mid = lo + (hi - lo) / 2;
		if (r->quote[mid].open < a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && r->quote[lo - 1].reach >= b;
}

/*
 * Whether the occurrence [s, e) of ru in its text t is cleared by what is
 * next to it: a `before` cue ending within `within` characters before it
 * (each further cue right before that one cancels it: a double negation is
 * not a negation), an `after` cue starting within `within` after it, or
 * a pair of quotation marks around it in the original.
 */
static int
rules_cleared(struct rules *r, const struct rule *ru, const char *t,
    size_t len, size_t s, size_t e)
{
	const struct rules_clear	*c = &ru->clear;
	const struct norm		*n;
	const char			*o;
	ssize_t				 cs;
	size_t				 at = s, olen;
	uint32_t			 qs, qe;
	int				 k;

	if (c->before != NULL) {
		for (k = 0; k < 3; k++) {
			cs = rules_last_in(r, c->before, t, rules_walk(t, len, at,
			    k == 0 ? c->within : 2, -1), at);
			/*
			 * a run of cues too long to count is no negation to
			 * trust (64 of them put before "don't add WeChat"
			 * would hide its double negation): fail closed
			 */
			if (cs == -2)
				return 0;
			if (cs < 0)
				break;
			at = (size_t)cs;
		}
		if (k % 2 == 1)
			return 1;
	}
	if (c->after != NULL && rules_re_match(r, c->after, t,
	    rules_walk(t, len, e, c->within, 1), e))
		return 1;
	if (c->quoted) {
		n = r->norm[r->nsrc[ru->steps]];
		norm_span(r->nmap[ru->steps], s, e, &qs, &qe);
		o = norm_orig(n, &olen);
		return rules_in_quotes(r, o, olen, norm_orig_offset(n, qs),
		    norm_orig_offset(n, qe));
	}
	return 0;
}

static int
rules_candidate(const uint64_t need[RULES_MAX_CLAUSE], size_t nclause,
    uint64_t seen)
{
	size_t	c;

	for (c = 0; c < nclause; c++)
		if ((seen & need[c]) == need[c])
			return 1;
	return 0;
}

/* Whether unless pattern k of ru may match: its words occur, or nobody looked. */
static int
rules_veto_possible(struct rules *r, const struct rule *ru, size_t k)
{
	const struct rules_veto	*v = &r->vetoes[ru->veto + k];

	if (!r->prefiltered || v->always)
		return 1;
	if (r->nvfound > 0)
		rules_veto_marks(r);
	return r->vseen[ru->veto + k] != 0 &&	/* most: none of its words */
	    rules_candidate(v->need, v->nclause, r->vseen[ru->veto + k]);
}

/*
 * The first match at or after off of ru's branches in mask, in [*s, *e):
 * the leftmost one, the earlier branch's when two start at one place,
 * which is what the whole pattern would find. 1, or 0 when none matches.
 * Rules sharing a pattern share the answer: the last question and its
 * answer are kept on the first of them, for as long as the text is this
 * turn's in this pass.
 */
static int
rules_first(struct rules *r, const struct rule *ru, unsigned mask,
    const char *t, size_t len, size_t off, size_t *s, size_t *e)
{
	struct rules_first_memo	*m;
	struct rules_branch_memo *bm = &r->bmemo;
	PCRE2_SIZE		*ov;
	size_t			 b, key, bs, be;
	uint32_t		 bit;
	int			 found = 0;

	key = ru->same ? ru->same - 1 : (size_t)(ru - r->rule);
	m = &r->memo[key];
	if (m->turn == r->turn && m->windowed == r->windowed && m->t == t &&
	    m->len == len && m->off == off && m->mask == mask) {
		*s = m->s;
		*e = m->e;
		return m->found;
	}
	if (bm->turn != r->turn || bm->windowed != r->windowed || bm->t != t ||
	    bm->len != len || bm->rule != key) {
		bm->turn = r->turn;
		bm->windowed = r->windowed;
		bm->t = t;
		bm->len = len;
		bm->rule = key;
		bm->known = bm->found = 0;
	}
	for (b = 0; b < ru->nbr; b++) {
		bit = 1u << b;
		if (!(mask & bit))
			continue;
		if (!(bm->known & bit) || bm->from[b] > off ||
		    ((bm->found & bit) && bm->s[b] < off)) {
			bm->known |= bit;
			bm->from[b] = off;
			bm->found &= ~bit;
			if (rules_branch_match(r, &ru->br[b], ru->steps, t, len,
			    off)) {
				ov = pcre2_get_ovector_pointer(r->md);
				bm->found |= bit;
				bm->s[b] = ov[0];
				bm->e[b] = ov[1];
			}
		}
		if (!(bm->found & bit))
			continue;
		bs = bm->s[b];
		be = bm->e[b];
		if (!found || bs < *s) {
			*s = bs;
			*e = be;
			found = 1;
		}
	}
	m->turn = r->turn;
	m->windowed = r->windowed;
	m->t = t;
	m->len = len;
	m->off = off;
	m->mask = mask;
	m->found = found;
	m->s = found ? *s : 0;
	m->e = found ? *e : 0;
	return found;
}

/*
 * Whether the window match [s, e) of ru merely extends one that the
 * earlier turns held whole (加我vabc123 then "ok": [a-z0-9]+ runs on into
 * the last turn): ru matches at s in the text cut where the last turn
 * starts. Such a match was the earlier turn's to report.
 */
static int
rules_before_boundary(struct rules *r, const struct rule *ru, unsigned mask,
    const char *t, size_t s, size_t e)
{
	const uint32_t	*map = r->nmap[ru->steps];
	size_t		 cut = s, s2 = 0, e2 = 0;

	while (cut < e && map[cut] < r->boundary)
		cut++;
	return rules_first(r, ru, mask, t, cut, s, &s2, &e2) && s2 == s;
}

/* Confirms the branches in mask of rule i on the message; adds a hit when it fires. */
static void
rules_confirm(struct rules *r, size_t i, enum rules_role role, unsigned mask,
    size_t *nhits)
{
	struct rule		*ru = &r->rule[i];
	struct rules_hit	*h;
	const char		*t, *o;
	size_t			 len, s = 0, e = 0, ws, we, off = 0, k, olen, a, b;
	size_t			 tries, judged;
	uint32_t		 cs, ce, ncs;

	if (r->windowed && !ru->window)
		return;
	if (rules_text(r, ru->steps) == -1)
		return;
	r->limit_left = RULES_LIMIT_HITS;
	t = r->ntext[ru->steps];
	len = r->nlen[ru->steps];
	if (ru->whole_max > 0 && len > ru->whole_max)
		return;	/* longer than any of its words: cannot be the whole message */
	judged = RULES_MAX_TRIES + len / RULES_TRY_BYTES;
	for (tries = 0; off <= len; tries++) {
		if (!rules_first(r, ru, mask, t, len, off, &s, &e))
			return;
		/* an occurrence that does not count: try one starting later */
		off = s < len ? rules_walk(t, len, s, 1, 1) : len + 1;
		norm_span(r->nmap[ru->steps], s, e, &cs, &ce);
		/*
		 * A window pass reports what spans the turns only; the matches
		 * come in the order they start, so none after this one can,
		 * unless its near cue is in an earlier turn (那位买家的电话 /
		 * 138…: the number alone is no leak).
		 */
		if (r->windowed && cs >= r->boundary && ru->near_re == NULL)
			return;
		if (r->windowed && ce <= r->boundary) {
			/*
			 * Wholly in the earlier turns, which were matched as
			 * they came: one starting inside it would overlap it,
			 * so go on after it, not one character on (each try
			 * is a search of the rest).
			 */
			off = e > s ? e : off;
			continue;
		}
		if (r->windowed && cs < r->boundary &&
		    rules_before_boundary(r, ru, mask, t, s, e))
			continue;
		/*
		 * Past the occurrences it may judge, the rule fails closed: this
		 * one is reported as it stands, cue or not, so that padding a
		 * message with occurrences that do not count cannot hide one
		 * that does.
		 */
		/* a cue that spent the rule's budget: judged no more, as above */
		if (r->limit_left == 0)
			tries = judged;
		if (tries < judged && ru->near_re != NULL) {
			ws = rules_walk(t, len, s, ru->near_within, -1);
			we = rules_walk(t, len, e, ru->near_within, 1);
			if (!rules_re_match(r, ru->near_re, t, we, ws))
				continue;
			if (r->windowed && cs >= r->boundary) {
				/* the cue must be the earlier turns': the hit spans from it */
				ncs = r->nmap[ru->steps][pcre2_get_ovector_pointer(r->md)[0]];
				if (ncs >= r->boundary)
					continue;
				cs = ncs;
			}
		}
		if (tries < judged && rules_cleared(r, ru, t, len, s, e) &&
		    r->limit_left > 0)
			continue;
		/* last, as the dearest: most candidates never get this far */
		for (k = 0; k < ru->nunless; k++)
			if (rules_veto_possible(r, ru, k) &&
			    rules_re_match(r, ru->unless[k], t, len, 0))
				return;
		ru->hit_turn = r->turn;
		h = &r->hits[(*nhits)++];
		*h = ru->proto;
		if (role == RULES_CUSTOMER && h->action == RULES_BLOCK)
			h->action = RULES_WARNING;	/* a customer is never blocked */
		h->start = cs;
		h->end = ce;
		o = norm_orig(r->norm[r->nsrc[ru->steps]], &olen);
		a = norm_orig_offset(r->norm[r->nsrc[ru->steps]], cs);
		b = norm_orig_offset(r->norm[r->nsrc[ru->steps]], ce);
		h->match = o + a;
		h->match_len = b - a;
		return;
	}
}

int
rules_hit_order(const struct rules_hit *x, const struct rules_hit *y)
{
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
rules_hit_cmp(const void *a, const void *b)
{
	return rules_hit_order(a, b);
}

/* Whether the branch of unit u can match: it is always run, or its literals were seen. */
static inline int
rules_seen_enough(const struct rules *r, uint32_t u, uint64_t seen)
{
	const struct rules_unit		*un = &r->unit[u];
	const struct rules_branch	*br;

	switch (un->test) {
	case RULES_UNIT_ONE:
		return (seen & un->need) == un->need;
	case RULES_UNIT_ALWAYS:
		return 1;
	case RULES_UNIT_NEVER:
		return 0;
	}
	br = &r->rule[u / RULES_MAX_BRANCH].br[u % RULES_MAX_BRANCH];
	return rules_candidate(br->need, br->nclause, seen);
}

/*
 * Marks the branch of unit u a candidate, its literals being enough. The
 * literals are checked first, by the caller: of the ~45 units a message
 * touches, ~3 pass, and the rule's role and window are on another line.
 */
static void
rules_mark(struct rules *r, uint32_t u, enum rules_role role)
{
	struct rule	*ru = &r->rule[u / RULES_MAX_BRANCH];
	unsigned	 b = u % RULES_MAX_BRANCH;

	/* a window pass looks for what the last turn alone did not break */
	if (!(ru->roles & role) || (r->windowed && (!ru->window ||
	    ru->hit_turn == r->turn)))
		return;
	if (ru->cand == 0)
		r->cands[r->ncands++] = u / RULES_MAX_BRANCH;
	ru->cand |= 1u << b;
}

/*
 * Whether a window pass can skip rule ru: what it reports is a match that
 * ends in the last turn (ce > boundary: across the turns, or after a near
 * cue in an earlier one), and every candidate branch's match ends with a
 * literal that the automaton looked for and did not find there.
 */
static int
rules_window_dead(const struct rule *ru)
{
	return ru->window && (ru->cand & ~ru->ends) == 0 &&
	    (ru->cand & ru->late) == 0;
}

/* --- notes for the window pass ------------------------------------------- */

/* Adds the sets bits of unit u to note; 1 when it has no room left. */
static int
rules_note_add(struct rules_note *note, uint32_t u, uint64_t bits)
{
	size_t	i;

	for (i = 0; i < note->nseen; i++)
		if (note->unit[i] == u) {
			note->bits[i] |= bits;
			return 0;
		}
	if (note->nseen == RULES_NOTE_SEEN)
		return 1;
	note->unit[note->nseen] = u;
	note->bits[note->nseen++] = bits;
	return 0;
}

/*
 * The note is the turn's default view seen from its ends (the bytes the
 * junctions need, the noise dropped there, whether a numeral run ends
 * there) and the window rules' sets its own rules_match found. It needs
 * a plain turn, so that the view is the only one the window pass reads.
 */
void
rules_note_take(struct rules *r, struct rules_note *note)
{
	const struct norm	*n;
	const unsigned char	*out;
	struct norm_ends	 ends;
	size_t			 len, k;

	note->gen = 0;
	if (!r->wgate || r->windowed || !r->prefiltered || r->oom ||
	    r->cur_over || !(r->nvalid & 1u << NORM_ALL))
		return;
	n = r->norm[r->nsrc[NORM_ALL]];
	out = (const unsigned char *)r->ntext[NORM_ALL];
	len = r->nlen[NORM_ALL];
	if (!norm_plain(n) || len == 0)
		return;
	memcpy(note->unit, r->cur.unit, r->cur.nseen * sizeof(*note->unit));
	memcpy(note->bits, r->cur.bits, r->cur.nseen * sizeof(*note->bits));
	note->nseen = r->cur.nseen;
	norm_ends(n, &ends);
	note->lead_gap = ends.lead_gap;
	note->trail_gap = ends.trail_gap;
	note->lead_num = (uint8_t)ends.lead_num;
	note->trail_num = (uint8_t)ends.trail_num;
	/* whole characters at each end */
	k = len < RULES_NOTE_EDGE ? len : RULES_NOTE_EDGE;
	while (k < len && k > 0 && (out[k] & 0xc0) == 0x80)
		k--;
	memcpy(note->head, out, k);
	note->nhead = (uint8_t)k;
	k = len < RULES_NOTE_EDGE ? 0 : len - RULES_NOTE_EDGE;
	while (k < len && (out[k] & 0xc0) == 0x80)
		k++;
	memcpy(note->tail, out + k, len - k);
	note->ntail = (uint8_t)(len - k);
	note->join_bad = 0;
	note->joined = 0;
	note->gen = r->gen;
}

struct rules_note_scan {
	const struct rules	*r;
	struct rules_note	*note;
	size_t			 past;	/* a literal ending after this byte spans the junction */
	int			 over;
};

/* A window literal across the junction: its window branches' sets, into the note. */
static int
rules_note_cb(uint32_t id, size_t end, void *arg)
{
	struct rules_note_scan	*s = arg;
	const struct rules	*r = s->r;
	uint32_t		 p, u;

	if (end <= s->past)
		return 0;
	for (p = id; p < r->lit_wend[id]; p++) {
		u = r->pair[p].unit;
		if ((u & RULES_LATE) == 0)	/* a branch's set, not its ending */
			s->over |= rules_note_add(s->note, u, r->pair[p].bit);
	}
	return 0;
}

/* The bytes of the joined default view on both sides of a junction (wmaxlit < the edge). */
#define RULES_JUNCTION	(2 * RULES_NOTE_EDGE)

/*
 * The joined text reads, at each junction, the turn before's default
 * view, a space when the noise there is a long gap, then the next turn's:
 * unless a numeral run goes across it (the digit step would fold the two
 * ends together). buf gets what the window pass's automaton needs to find
 * every literal that ends in note's turn and starts before it: the turns
 * before it, prev[0..n) (the last the nearest), back to wmaxlit - 1 bytes
 * (a turn shorter than that lets a literal reach into the one before it:
 * 仓库里没 | 有 | 了), then note's first bytes. Returns the length, *past the
 * junction's offset, or -1 when the turns do not join as their views.
 */
static ssize_t
rules_note_junction(const struct rules *r, const struct rules_note *const *prev,
    size_t n, const struct rules_note *note, char buf[RULES_JUNCTION],
    size_t *past)
{
	const struct rules_note	*cur = note, *p;
	size_t			 at = RULES_NOTE_EDGE, need = r->wmaxlit - 1;
	size_t			 take, k;

	for (; n-- > 0 && need > 0; cur = p) {
		p = prev[n];
		if (p->gen != r->gen || (p->trail_num && cur->lead_num))
			return -1;
		/* the WINDOW_SEP between them is no noise (norm_noise) */
		if ((uint64_t)p->trail_gap + cur->lead_gap > NORM_MAX_GAP) {
			buf[--at] = ' ';
			need--;
		}
		/* a tail shorter than need is its turn's whole view (wmaxlit + 4 <= the edge) */
		take = p->ntail < need ? p->ntail : need;
		at -= take;
		memcpy(buf + at, p->tail + p->ntail - take, take);
		need -= take;
	}
	*past = RULES_NOTE_EDGE - at;
	memmove(buf, buf + at, *past);
	k = note->nhead < r->wmaxlit ? note->nhead : r->wmaxlit - 1;
	memcpy(buf + *past, note->head, k);
	return (ssize_t)(*past + k);
}

/*
 * Whether a window literal can span the junction at past of the len bytes
 * at buf: one that does holds the character ending there and the one
 * beginning there, one after the other. Most junctions (哦 | 亲) hold no
 * such pair, and the scan is skipped: on clean chat it was most of what
 * the gate cost, and a cold walk through the window pass's automaton.
 */
static int
rules_junction_spannable(const struct rules *r, const char *buf, size_t len,
    size_t past)
{
	const unsigned char	*b = (const unsigned char *)buf;
	size_t			 i, e;
	uint32_t		 h;

	if (past == 0 || past >= len)
		return 1;
	for (i = past - 1; i > 0 && (b[i] & 0xc0) == 0x80; i--)
		;
	e = past + rules_utf8_len(b[past]);
	if ((b[i] & 0xc0) == 0x80 || e > len)
		return 1;	/* a character cut by the edge: scan */
	h = rules_jpair(b + i, e - i);
	return (int)(r->jpairs[h / 64] >> (h % 64) & 1);
}

/*
 * Adds to note the sets of the literals across the junction between it and
 * the turns before it, prev[0..n): every literal spanning it is in the
 * junction's bytes.
 */
static void
rules_note_join(struct rules *r, const struct rules_note *const *prev,
    size_t n, struct rules_note *note)
{
	struct rules_note_scan	 s = { r, note, 0, 0 };
	char			 buf[RULES_JUNCTION];
	ssize_t			 len;

	note->joined = 1;
	if (note->gen != r->gen)
		return;
	if ((len = rules_note_junction(r, prev, n, note, buf, &s.past)) < 0) {
		note->join_bad = 1;
		return;
	}
	if (!rules_junction_spannable(r, buf, (size_t)len, s.past))
		return;
	/* what spans the junction is found by the first bytes after it */
	acm_scan_across(r->wacm[NORM_ALL], buf, (size_t)len, s.past,
	    rules_note_cb, &s);
	if (s.over)
		note->gen = 0;
}

/* The units whose sets a junction added to (rules_window_needed). */
struct rules_grown {
	uint32_t	unit[2 * RULES_NOTE_SEEN];
	size_t		n;
	int		over;	/* more than unit holds */
};

/*
 * Adds note's sets to r->seen (r->touched lists the units); with grown,
 * lists there the units that gained a set.
 */
static void
rules_note_union(struct rules *r, const struct rules_note *note,
    struct rules_grown *grown)
{
	size_t		k;
	uint32_t	u;

	for (k = 0; k < note->nseen; k++) {
		u = note->unit[k];
		if (r->seen[u] == 0)
			r->touched[r->ntouched++] = u;
		if (grown != NULL && (r->seen[u] | note->bits[k]) != r->seen[u]) {
			if (grown->n == UTIL_NELEM(grown->unit))
				grown->over = 1;
			else
				grown->unit[grown->n++] = u;
		}
		r->seen[u] |= note->bits[k];
	}
}

/*
 * Whether a branch of role's rules is a candidate of the window pass with
 * the sets in r->seen: not when the last turn alone broke its rule
 * (rules_mark).
 */
static int
rules_note_cands(const struct rules *r, enum rules_role role,
    const uint32_t *units, size_t n)
{
	size_t		k;
	uint32_t	u;

	for (k = 0; k < n; k++) {
		u = units[k];
		if ((r->unit[u].roles & role) &&
		    rules_seen_enough(r, u, r->seen[u]) &&
		    r->rule[u / RULES_MAX_BRANCH].hit_turn != r->turn)
			return 1;
	}
	return 0;
}

/* Empties r->seen; need passes through. */
static int
rules_note_clear(struct rules *r, int need)
{
	size_t	k;

	for (k = 0; k < r->ntouched; k++)
		r->seen[r->touched[k]] = 0;
	r->ntouched = 0;
	return need;
}

int
rules_window_needed(struct rules *r, enum rules_role role,
    const struct rules_note *const *earlier, size_t n, struct rules_note *last)
{
	struct rules_note	tmp;
	struct rules_grown	grown = { { 0 }, 0, 0 };
	size_t			i;

	if (!r->wgate || n == 0 || last->gen != r->gen || last->join_bad)
		return 1;
	for (i = 0; i < n; i++)
		if (earlier[i]->gen != r->gen || (i > 0 && earlier[i]->join_bad))
			return 1;
	/* r->seen is all zero between calls: every path below clears it */
	for (i = 0; i < n; i++)
		rules_note_union(r, earlier[i], NULL);
	rules_note_union(r, last, NULL);
	if (rules_note_cands(r, role, r->touched, r->ntouched))
		return rules_note_clear(r, 1);
	/*
	 * The turns alone are not enough: the junctions too (the notes' own
	 * sets are in), and only a unit they add to can become a candidate.
	 */
	if (!last->joined) {
		rules_note_join(r, earlier, n, last);
		if (last->gen != r->gen || last->join_bad)
			return rules_note_clear(r, 1);
		rules_note_union(r, last, &grown);
	}
	for (i = 1; i < n; i++) {
		if (earlier[i]->joined)
			continue;
		tmp = *earlier[i];
		rules_note_join(r, earlier, i, &tmp);
		if (tmp.gen != r->gen || tmp.join_bad)
			return rules_note_clear(r, 1);
		rules_note_union(r, &tmp, &grown);
	}
	return rules_note_clear(r, grown.over ?
	    rules_note_cands(r, role, r->touched, r->ntouched) :
	    rules_note_cands(r, role, grown.unit, grown.n));
}

/*
 * The naive baseline searches every branch as it is: the branches with
 * heads are JIT-compiled the first time it runs (rules_branch_heads).
 */
static void
rules_naive_jit(struct rules *r)
{
	size_t	i, b;

	if (r->naive_jit)
		return;
	for (i = 0; i < r->nrule; i++)
		for (b = 0; b < r->rule[i].nbr && !r->rule[i].same; b++)
			if (r->rule[i].br[b].head != NULL)
				rules_jit_compile(r, r->rule[i].br[b].re);
	r->naive_jit = 1;
}

size_t
rules_run(struct rules *r, enum rules_role role, const char *text, size_t len,
    int prefilter, ssize_t only, const struct rules_hit **hits)
{
	struct acm	*const *acm;
	uint64_t	*seen, bits;
	size_t		 i, k, n, nhits = 0;
	unsigned	 m, masks, left;
	int		 pass, note, oom;
	uint32_t	 u;

	r->prefiltered = prefilter && only < 0;
	r->anchored = prefilter || only >= 0;	/* not the naive baseline */
	if (!r->windowed)
		r->turn++;	/* a new last turn (the window pass follows its own) */
	r->otext = text;
	r->olen = len;
	r->nvalid = 0;
	r->hvalid = 0;
	r->qorig = NULL;
	r->oom = 0;
	if (only >= 0) {
		rules_confirm(r, (size_t)only, role, ~0u, &nhits);
		goto done;
	}
	if (!prefilter) {
		rules_naive_jit(r);
		for (i = 0; i < r->nrule; i++)
			if (r->rule[i].enabled && (r->rule[i].roles & role))
				rules_confirm(r, i, role, ~0u, &nhits);
		goto done;
	}
	/*
	 * The work is proportional to the literals found, not to the rules:
	 * only the branches whose literals occur are run.
	 */
	r->ntouched = 0;
	r->nvtouched = 0;
	r->nvfound = 0;
	r->ncands = 0;
	r->nlates = 0;
	r->cur.nseen = 0;
	r->cur_over = 0;
	acm = r->windowed ? r->wacm : r->acm;
	masks = r->windowed ? r->wacm_masks : r->acm_masks;
	/* the views a plain text cannot use last, once a view says whether it is */
	for (left = masks & ~r->plain_blind, pass = 0; pass < 2; pass++,
	    left = masks & r->plain_blind) {
		if (pass == 1 && left != 0 && rules_plain(r))
			break;
		for (; left != 0 && !r->oom; left &= left - 1) {
			m = (unsigned)__builtin_ctz(left);
			if (rules_text(r, m) == -1)
				break;
			r->scan_map = r->nmap[m];
			acm_scan(acm[m], r->ntext[m], r->nlen[m], rules_cand_cb, r);
		}
	}
	/* in locals: the stores below could alias r's fields, for the compiler */
	seen = r->seen;
	note = r->wgate && !r->windowed;
	for (k = 0, n = r->ntouched, oom = r->oom; k < n; k++) {
		u = r->touched[k];
		bits = seen[u];
		seen[u] = 0;
		if (!oom && rules_seen_enough(r, u, bits))
			rules_mark(r, u, role);
		/*
		 * The window rules' sets this turn holds, for its note: the
		 * touched units are distinct, so each is appended, not looked up.
		 */
		if (note && r->unit[u].window) {
			if (r->cur.nseen == RULES_NOTE_SEEN)
				r->cur_over = 1;
			else {
				r->cur.unit[r->cur.nseen] = u;
				r->cur.bits[r->cur.nseen++] = bits;
			}
		}
	}
	for (k = 0; k < r->nalways && !r->oom; k++)
		if (rules_seen_enough(r, r->always[k], 0))
			rules_mark(r, r->always[k], role);
	for (k = 0; k < r->ncands; k++) {
		i = r->cands[k];
		if (!(r->windowed && rules_window_dead(&r->rule[i])))
			rules_confirm(r, i, role, r->rule[i].cand, &nhits);
		r->rule[i].cand = 0;
	}
	for (k = 0; k < r->nlates; k++)
		r->rule[r->lates[k]].late = 0;
	for (k = 0; k < r->nvtouched; k++)
		r->vseen[r->vtouched[k]] = 0;
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
	r->windowed = 0;
	return rules_run(r, role, text, len, 1, -1, hits);
}

size_t
rules_match_window(struct rules *r, enum rules_role role, const char *text,
    size_t len, uint32_t boundary, const struct rules_hit **hits)
{
	size_t	n;

	if (r->nwindow == 0 || boundary == 0) {
		*hits = r->hits;
		return 0;
	}
	r->windowed = 1;
	r->boundary = boundary;
	n = rules_run(r, role, text, len, 1, -1, hits);
	r->windowed = 0;
	return n;
}

size_t
rules_window_count(const struct rules *r)
{
	return r->nwindow;
}

void
rules_cost(const struct rules *r, unsigned *views, unsigned *plain_views,
    unsigned *every_turn, int *window_gate)
{
	unsigned	all = r->acm_masks | r->wacm_masks, seen = 0;
	size_t		k, i, last = SIZE_MAX;

	/* a branch without literals runs on every turn, in its rule's view */
	*every_turn = 0;
	for (k = 0; k < r->nalways; k++) {
		i = r->always[k] / RULES_MAX_BRANCH;
		if (!r->rule[i].enabled || i == last)
			continue;
		last = i;
		(*every_turn)++;
		seen |= 1u << r->rule[i].steps;
	}
	*views = (unsigned)__builtin_popcount(all | seen);
	*plain_views = (unsigned)__builtin_popcount((all & ~r->plain_blind) |
	    seen);
	*window_gate = r->wgate;
}

size_t
rules_match_naive(struct rules *r, enum rules_role role, const char *text,
    size_t len, const struct rules_hit **hits)
{
	r->windowed = 0;
	return rules_run(r, role, text, len, 0, -1, hits);
}

/* --- the set's lifetime -------------------------------------------------- */

void
rules_free(struct rules *r)
{
	size_t		i;
	unsigned	m;

	if (r == NULL)
		return;
	for (i = 0; i < r->nrule; i++)
		rules_free_rule(&r->rule[i]);
	free(r->rule);
	for (m = 0; m < RULES_NMASKS; m++) {
		acm_free(r->acm[m]);
		acm_free(r->wacm[m]);
	}
	rules_free_lits(r);
	free(r->pair);
	free(r->unit);
	free(r->lit_end);
	free(r->lit_wend);
	free(r->lit_veto);
	free(r->lit_vend);
	free(r->lit_wvend);
	free(r->vfound);
	free(r->jpairs);
	for (m = 0; m < RULES_NMASKS; m++) {
		norm_free(r->norm[m]);
		free(r->hpos[m]);
	}
	free(r->quote);
	free(r->seen);
	free(r->touched);
	free(r->always);
	free(r->cands);
	free(r->lates);
	free(r->vetoes);
	free(r->vseen);
	free(r->vtouched);
	free(r->hits);
	free(r->memo);
	pcre2_match_data_free(r->md);
	pcre2_match_context_free(r->mctx);
	free(r);
}

size_t
rules_count(const struct rules *r)
{
	return r->enabled;
}

size_t
rules_all(const struct rules *r)
{
	return r->nrule;
}

const char *
rules_rule(const struct rules *r, size_t i, const char **file, size_t *line)
{
	*file = r->rule[i].file;
	*line = r->rule[i].line;
	return r->rule[i].proto.rule;
}

int
rules_jit(const struct rules *r)
{
	return r->jit;
}
