/* rules_prefilter: the literals, automatons and filters a set is matched through, built once it is loaded (pure). */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "chatmon/acm.h"
#include "chatmon/normalize.h"
#include "chatmon/rules.h"
#include "chatmon/util.h"
#include "rules_int.h"

/*
 * Registers a literal of a unit of the rule being added, in the text of
 * its mask, reported with its clause's set bit.
 */
static int
rules_add_literal(struct rules *r, unsigned mask, const char *lit,
    uint32_t unit, uint64_t bit)
{
	struct rules_litpair	*nl;
	size_t			 cap;

	/* doubling: a pack has thousands of pairs, and a copy per pair is quadratic */
	if (r->nlit == r->litcap) {
		cap = r->litcap ? 2 * r->litcap : 256;
		if ((nl = realloc(r->lit, cap * sizeof(*nl))) == NULL)
			return -1;
		r->lit = nl;
		r->litcap = cap;
	}
	nl = &r->lit[r->nlit];
	if ((nl->s = strdup(lit)) == NULL)
		return -1;
	nl->mask = mask;
	nl->unit = unit;
	nl->bit = bit;
	r->nlit++;
	return 0;
}

/* Frees the literals as added: the automatons and the pairs have them. */
void
rules_free_lits(struct rules *r)
{
	size_t	i;

	if (r->lit != NULL)
		for (i = 0; i < r->nlit; i++)
			free(r->lit[i].s);
	free(r->lit);
	r->lit = NULL;
	r->litcap = 0;
}

/* The rule a unit (a branch, or a veto) belongs to. */
static const struct rule *
rules_unit_rule(const struct rules *r, uint32_t u)
{
	if (u & RULES_VETO)
		return &r->rule[r->vetoes[u & ~RULES_VETO].rule];
	return &r->rule[(u & ~RULES_LATE) / RULES_MAX_BRANCH];
}

/*
 * Where the literal pair p goes, the order of a literal's pairs: 0 the
 * window pass only (a branch's ending), 1 both passes (a rule marked
 * window), 2 the turn's own pass; then the unless patterns' (vetoes), 3 a
 * window rule's, 4 the others'. The branches' pairs are marked as the
 * literal is found; the vetoes' only when an unless pattern is about to
 * run (rules_veto_marks), which most messages never reach.
 */
static int
rules_lit_class(const struct rules *r, uint32_t p)
{
	int	w;

	if (r->lit[p].unit & RULES_LATE)
		return 0;
	w = rules_unit_rule(r, r->lit[p].unit)->window != 0;
	if (r->lit[p].unit & RULES_VETO)
		return w ? 3 : 4;
	return w ? 1 : 2;
}

static int
rules_literal_cmp(const void *a, const void *b, void *arg)
{
	const struct rules	*r = arg;
	uint32_t		 x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	int			 c;

	if (r->lit[x].mask != r->lit[y].mask)
		return r->lit[x].mask < r->lit[y].mask ? -1 : 1;
	if ((c = strcmp(r->lit[x].s, r->lit[y].s)) != 0)
		return c;
	return rules_lit_class(r, x) - rules_lit_class(r, y);
}

/* Adds literal s, as id, to the automaton of mask m in a (made when first needed). */
static int
rules_acm_add(struct acm **a, unsigned *masks, unsigned m, const char *s,
    uint32_t id)
{
	if (a[m] == NULL) {
		if ((a[m] = acm_new()) == NULL)
			return -1;
		*masks |= 1u << m;
	}
	return acm_add(a[m], s, strlen(s), id);
}

/* The first of ord[from, to) whose class is past c: the end of class c's run. */
static size_t
rules_class_end(const struct rules *r, const uint32_t *ord, size_t from,
    size_t to, int c)
{
	while (from < to && rules_lit_class(r, ord[from]) <= c)
		from++;
	return from;
}

/*
 * Sorts the pairs by text, literal and class (rules_lit_class) and gives
 * each text's automatons each of their distinct literals once, as the
 * index of the first pair it marks: the turn's own automaton all but the
 * endings (its first pair of class 1), the window pass's the endings and
 * the window rules' literals (its first pair). Each id knows where its
 * branches' pairs end and where its vetoes' lie. 0, or -1 on ENOMEM.
 */
static int
rules_build_literals(struct rules *r)
{
	uint32_t	*ord = NULL;
	size_t		 i, j, k, k0, v0, v1;
	unsigned	 m;
	int		 rc = -1;

	if (r->nlit == 0)
		return 0;
	if ((ord = calloc(r->nlit, sizeof(*ord))) == NULL ||
	    (r->pair = calloc(r->nlit, sizeof(*r->pair))) == NULL ||
	    (r->lit_end = calloc(r->nlit, sizeof(*r->lit_end))) == NULL ||
	    (r->lit_wend = calloc(r->nlit, sizeof(*r->lit_wend))) == NULL ||
	    (r->lit_veto = calloc(r->nlit, sizeof(*r->lit_veto))) == NULL ||
	    (r->lit_vend = calloc(r->nlit, sizeof(*r->lit_vend))) == NULL ||
	    (r->lit_wvend = calloc(r->nlit, sizeof(*r->lit_wvend))) == NULL)
		goto out;
	for (i = 0; i < r->nlit; i++)
		ord[i] = (uint32_t)i;
	qsort_r(ord, r->nlit, sizeof(*ord), rules_literal_cmp, r);
	for (i = 0; i < r->nlit; i++) {
		r->pair[i].unit = r->lit[ord[i]].unit;
		r->pair[i].bit = r->lit[ord[i]].bit;
	}
	for (i = 0; i < r->nlit; i = j) {
		m = r->lit[ord[i]].mask;
		for (j = i + 1; j < r->nlit && r->lit[ord[j]].mask == m &&
		    strcmp(r->lit[ord[i]].s, r->lit[ord[j]].s) == 0; j++)
			;
		k0 = rules_class_end(r, ord, i, j, 0);	/* the turn's first */
		k = rules_class_end(r, ord, k0, j, 1);	/* the window's branches' end */
		v0 = rules_class_end(r, ord, k, j, 2);	/* the vetoes' start */
		v1 = rules_class_end(r, ord, v0, j, 3);	/* the window rules' vetoes' end */
		if (k0 < j) {
			r->lit_end[k0] = (uint32_t)v0;
			r->lit_veto[k0] = (uint32_t)v0;
			r->lit_vend[k0] = (uint32_t)j;
		}
		r->lit_wend[i] = (uint32_t)k;
		r->lit_veto[i] = (uint32_t)v0;
		r->lit_wvend[i] = (uint32_t)v1;
		if ((k0 < j && rules_acm_add(r->acm, &r->acm_masks, m,
		    r->lit[ord[i]].s, (uint32_t)k0) == -1) ||
		    ((k > i || v1 > v0) && rules_acm_add(r->wacm,
		    &r->wacm_masks, m, r->lit[ord[i]].s, (uint32_t)i) == -1))
			goto out;
	}
	for (m = 0; m < RULES_NMASKS; m++)
		if ((r->acm[m] != NULL && acm_build(r->acm[m]) == -1) ||
		    (r->wacm[m] != NULL && acm_build(r->wacm[m]) == -1))
			goto out;
	rc = 0;
out:
	free(ord);
	return rc;
}

/*
 * The prefilter's literals: for each branch, a set for each thing every
 * match must contain, from the branch and from the near cue (both must be
 * there), looked for in the text of the rule's own normalisation.
 */
/*
 * Registers the clauses of p as unit's, in the text of mask: need[c] gets
 * the bits of clause c's sets. Returns 1 when p requires nothing (a clause
 * with no set: its literals were too many), 0, or -1 on ENOMEM.
 */
static int
rules_add_clauses(struct rules *r, unsigned mask, struct rules_lit_pf *p,
    uint32_t unit, uint64_t need[RULES_MAX_CLAUSE], size_t *nclause)
{
	size_t		 i, k, c;
	uint64_t	 bit;
	const char	*s;

	if (p->n == 0)
		return 1;
	for (c = 0; c < p->n; c++)
		if (p->clause[c].n == 0)
			return 1;
	/*
	 * The literals are in lower case, as the nfkc step folds the text;
	 * a text without that step keeps its capitals, which the caseless
	 * regex matches and the automaton's bytes would not: such a literal
	 * cannot be required (QQ typed for qq)
	 */
	if (!(mask & NORM_NFKC))
		for (c = 0; c < p->n; c++)
			for (k = 0; k < p->clause[c].n; k++)
				for (i = 0; i < p->clause[c].set[k]->n; i++)
					for (s = p->clause[c].set[k]->s[i]; *s; s++)
						if ((*s | 0x20) >= 'a' && (*s | 0x20) <= 'z')
							return 1;
	*nclause = p->n;
	for (c = 0; c < p->n; c++)
		rules_lit_req_trim(&p->clause[c]);
	for (c = 0; c < p->n; c++)
		for (k = 0; k < p->clause[c].n; k++) {
			bit = 1ull << (c * RULES_MAX_AND + k);
			need[c] |= bit;
			for (i = 0; i < p->clause[c].set[k]->n; i++)
				if (rules_add_literal(r, mask,
				    p->clause[c].set[k]->s[i], unit, bit) == -1)
					return -1;
		}
	return 0;
}

int
rules_add_prefilter(struct rules *r, struct rule *ru,
    struct rules_lit_pf pf[RULES_MAX_BRANCH], const struct rules_lit_pf *npf,
    struct rules_lit_pf *upf)
{
	struct rules_branch	*br;
	struct rules_veto	*v;
	size_t			 b, k, cap;
	int			 rc;

	for (b = 0; b < ru->nbr; b++) {
		br = &ru->br[b];
		rules_lit_pf_and_near(&pf[b], npf);
		if (!ru->enabled) {
			br->always = 1;
			continue;
		}
		if ((rc = rules_add_clauses(r, ru->steps, &pf[b],
		    RULES_UNIT(r->nrule, b), br->need, &br->nclause)) == -1)
			return -1;
		br->always = rc;
		/*
		 * What every match of the branch ends with: whatever the
		 * window pass reports ends in the last turn (across the
		 * turns, or wholly in it with a near cue before it), so a
		 * rule none of whose candidate branches' endings occur there
		 * need not be confirmed. Only in folded text, where the
		 * regex's caseless match is the literal's bytes.
		 */
		if (ru->window && (ru->steps & NORM_NFKC) && br->tail.n == 1) {
			for (k = 0; k < br->tail.set[0]->n; k++)
				if (rules_add_literal(r, ru->steps,
				    br->tail.set[0]->s[k],
				    RULES_UNIT(r->nrule, b) | RULES_LATE, 0) == -1)
					return -1;
			ru->ends |= 1u << b;
		}
		rules_lit_req_clear(&br->tail);
	}
	/* the unless patterns: vetoes, run only when their words occur */
	if (r->nveto + ru->nunless > r->vetocap) {
		cap = r->vetocap ? 2 * r->vetocap : 64;
		while (cap < r->nveto + ru->nunless)
			cap *= 2;
		if ((v = realloc(r->vetoes, cap * sizeof(*v))) == NULL)
			return -1;
		r->vetoes = v;
		r->vetocap = cap;
	}
	ru->veto = r->nveto;
	for (k = 0; k < ru->nunless; k++) {
		v = &r->vetoes[r->nveto];
		memset(v, 0, sizeof(*v));
		v->rule = (uint32_t)r->nrule;
		v->always = 1;
		if (ru->enabled) {
			if ((rc = rules_add_clauses(r, ru->steps, &upf[k],
			    RULES_VETO | (uint32_t)r->nveto, v->need,
			    &v->nclause)) == -1)
				return -1;
			v->always = rc;
		}
		r->nveto++;
	}
	return 0;
}

/*
 * The views that a plain text (norm_plain) cannot make a candidate in, so
 * that a plain message skips normalising and scanning them: in the
 * default pack, the view without the noise step, which only emoji rules
 * use. A view qualifies when its steps keep plain text plain
 * (norm_plain_closed) and each rule whose literals it holds has all its
 * literals there, never runs a branch unprompted, and has in every clause
 * of every branch a set none of whose words is plain: on a plain text no
 * such set occurs, whatever the view. 0, or -1 on ENOMEM.
 */
static int
rules_plain_blind(struct rules *r)
{
	uint64_t		*plainset = NULL;
	unsigned char		*blind = NULL;
	struct norm		*n = NULL;
	const struct rules_litpair *lp;
	const struct rule	*ru;
	uint32_t		 u;
	size_t			 i, b, c, k;
	unsigned		 m, views = 0;
	int			 rc = -1, closed;

	r->plain_blind = 0;
	if (r->nlit == 0 || r->nrule == 0)
		return 0;
	if ((plainset = calloc(r->nrule * RULES_MAX_BRANCH,
	    sizeof(*plainset))) == NULL ||
	    (blind = malloc(r->nrule)) == NULL || (n = norm_new()) == NULL)
		goto out;
	memset(blind, 1, r->nrule);
	for (k = 0; k < r->nlit; k++) {
		lp = &r->lit[k];
		ru = rules_unit_rule(r, lp->unit);
		views |= 1u << lp->mask;
		if (lp->mask != ru->steps)
			blind[ru - r->rule] = 0;
		if ((lp->unit & (RULES_VETO | RULES_LATE)) == 0 &&
		    norm_plain_text(lp->s, strlen(lp->s)))
			plainset[lp->unit] |= lp->bit;
	}
	for (i = 0; i < r->nrule; i++) {
		ru = &r->rule[i];
		for (b = 0; b < ru->nbr && blind[i]; b++) {
			u = RULES_UNIT(i, b);
			if (ru->br[b].always || ru->br[b].nclause == 0)
				blind[i] = 0;
			/* each clause needs a set with no plain word */
			for (c = 0; c < ru->br[b].nclause && blind[i]; c++)
				if ((ru->br[b].need[c] & ~plainset[u]) == 0)
					blind[i] = 0;
		}
	}
	for (m = 0; m < RULES_NMASKS; m++) {
		if (!(views & 1u << m))
			continue;
		for (k = 0; k < r->nlit; k++)
			if (r->lit[k].mask == m &&
			    !blind[rules_unit_rule(r, r->lit[k].unit) - r->rule])
				break;
		if (k < r->nlit)
			continue;
		if ((closed = norm_plain_closed(n, m)) == -1)
			goto out;
		if (closed)
			r->plain_blind |= 1u << m;
	}
	rc = 0;
out:
	free(plainset);
	free(blind);
	norm_free(n);
	return rc;
}


/*
 * What a note needs of a junction (rules_note_cb reads no ending, no
 * unless word), from the window rules' sets' literals in the default view:
 * the longest one's length into *maxlit, and each pair of characters that
 * follow each other in one into r->jpairs. 0, or -1 on ENOMEM.
 */
static int
rules_window_literals(struct rules *r, size_t *maxlit)
{
	const unsigned char	*s;
	size_t			 k, n, i, j, e;
	uint32_t		 h;

	*maxlit = 0;
	if ((r->jpairs = calloc((1u << RULES_JPAIR_LOG) / 64,
	    sizeof(*r->jpairs))) == NULL)
		return -1;
	for (k = 0; k < r->nlit; k++) {
		if (r->lit[k].mask != NORM_ALL ||
		    (r->lit[k].unit & (RULES_LATE | RULES_VETO)) != 0 ||
		    !rules_unit_rule(r, r->lit[k].unit)->window)
			continue;
		s = (const unsigned char *)r->lit[k].s;
		if ((n = strlen(r->lit[k].s)) > *maxlit)
			*maxlit = n;
		/* whole characters: a literal is cut at a character's end */
		for (i = 0; i < n; i = j) {
			j = i + rules_utf8_len(s[i]);
			if (j >= n || (e = j + rules_utf8_len(s[j])) > n)
				break;
			h = rules_jpair(s + i, e - i);
			r->jpairs[h / 64] |= 1ull << (h % 64);
		}
	}
	return 0;
}

/*
 * Whether notes can stand in for the window pass: it reads the default
 * view only (a plain text skips the others), the literals that can span
 * a junction fit a note's ends, and no window rule runs a branch
 * unprompted.
 */
static int
rules_wgate(const struct rules *r, size_t maxlit)
{
	size_t	i, b;

	if (r->nwindow == 0 || maxlit == 0 || maxlit + 4 > RULES_NOTE_EDGE ||
	    (r->wacm_masks & ~r->plain_blind) != 1u << NORM_ALL ||
	    !(r->acm_masks & 1u << NORM_ALL))
		return 0;
	for (i = 0; i < r->nrule; i++)
		for (b = 0; r->rule[i].window && b < r->rule[i].nbr; b++)
			if (r->rule[i].br[b].always)
				return 0;
	return 1;
}

static void
rules_unit_fill(struct rules_unit *un, const struct rule *ru,
    const struct rules_branch *br)
{
	un->roles = (uint8_t)ru->roles;
	un->window = ru->window != 0;
	if (br->always)
		un->test = RULES_UNIT_ALWAYS;
	else if (br->nclause == 0)
		un->test = RULES_UNIT_NEVER;
	else if (br->nclause == 1) {
		un->test = RULES_UNIT_ONE;
		un->need = br->need[0];
	} else
		un->test = RULES_UNIT_MANY;
}

int
rules_prepare(struct rules *r)
{
	size_t	i, b, nmax, maxlit;

	if (rules_build_literals(r) == -1 || rules_plain_blind(r) == -1 ||
	    rules_window_literals(r, &maxlit) == -1)
		return -1;
	rules_free_lits(r);
	nmax = r->nrule ? r->nrule : 1;
	if ((r->seen = calloc(nmax * RULES_MAX_BRANCH, sizeof(*r->seen))) == NULL ||
	    (r->touched = calloc(nmax * RULES_MAX_BRANCH, sizeof(*r->touched))) == NULL ||
	    (r->always = calloc(nmax * RULES_MAX_BRANCH, sizeof(*r->always))) == NULL ||
	    (r->cands = calloc(nmax, sizeof(*r->cands))) == NULL ||
	    (r->lates = calloc(nmax, sizeof(*r->lates))) == NULL ||
	    (r->vseen = calloc(r->nveto ? r->nveto : 1, sizeof(*r->vseen))) == NULL ||
	    (r->vtouched = calloc(r->nveto ? r->nveto : 1, sizeof(*r->vtouched))) == NULL ||
	    (r->vfound = calloc(RULES_VFOUND, sizeof(*r->vfound))) == NULL ||
	    (r->hits = calloc(nmax, sizeof(*r->hits))) == NULL ||
	    (r->memo = calloc(nmax, sizeof(*r->memo))) == NULL)
		return -1;
	for (i = 0; i < r->nrule; i++) {
		free(r->rule[i].expanded);
		r->rule[i].expanded = NULL;
		if (!r->rule[i].enabled)
			continue;
		r->enabled++;
		r->nwindow += r->rule[i].window != 0;
		for (b = 0; b < r->rule[i].nbr; b++)
			if (r->rule[i].br[b].always)
				r->always[r->nalways++] = RULES_UNIT(i, b);
	}
	r->wgate = rules_wgate(r, maxlit);
	r->wmaxlit = maxlit;
	if ((r->unit = calloc(nmax * RULES_MAX_BRANCH, sizeof(*r->unit))) == NULL)
		return -1;
	for (i = 0; i < r->nrule; i++)
		for (b = 0; b < r->rule[i].nbr; b++)
			rules_unit_fill(&r->unit[RULES_UNIT(i, b)], &r->rule[i],
			    &r->rule[i].br[b]);
	return 0;
}
