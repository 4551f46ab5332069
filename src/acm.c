/*
 * acm: an Aho-Corasick automaton over bytes (pure; no I/O).
 *
 * Debian packages no C Aho-Corasick library (bookworm has a Python module
 * and a Rust crate only), so the rules prefilter carries this small one.
 *
 * acm_add grows a trie (first-child/next-sibling lists, so adding costs no
 * table). acm_build computes failure links by BFS and then writes a DFA:
 * the goto function completed through the failure links, so scanning is
 * one table lookup per byte and never walks a failure link. To keep the
 * table small, bytes are mapped to classes first (one per byte value that
 * occurs in some literal, class 0 for all the others), so it holds
 * states x classes entries. Chinese literals need about 70 classes (the 6
 * UTF-8 lead bytes of the CJK block, 64 continuation bytes, a few ASCII
 * letters).
 *
 * An entry is the target state's row offset (state x classes), not its
 * number: the scan adds the byte's class and loads, with no multiply on
 * the byte-to-byte dependency chain, which is what bounds the speed. That
 * costs 32-bit entries where 16-bit state numbers would often do. Measured
 * with 3000 random 2-4 character Chinese literals (20 000 states, 71
 * classes) on 48-byte messages of random common characters: 5.7 MB and
 * 380-650 MB/s, against 2.9 MB and 230-460 MB/s with 16-bit numbers.
 *
 * That table is states x classes x 4 bytes: 7 MB for the 17 000 states
 * of a pack with 3 800 literals, and its walk then misses the cache on
 * nearly every byte (48-108 cycles a byte, measured). Past dense_max bytes
 * (ACM_DENSE_MAX by default) the automaton is kept compact instead: each
 * state is a record of its failure state, its output and its trie edges
 * only, and the scan follows failure links (at most as many as the bytes
 * scanned, the Aho-Corasick bound), with the root's row kept whole so that
 * falling back to it costs one lookup. The same pack then takes 0.4 MB.
 *
 * States are numbered so that those with output come last: the scan's
 * "anything to report?" test is one compare against first_out, with no
 * second load. Each output state's list holds its own literals and those of
 * its dictionary suffixes, flattened at build so the scan chases no links:
 * longest literal first (the earliest start), duplicates in the order
 * added.
 */
#include <stdlib.h>
#include <string.h>

#include "chatmon/acm.h"

#define ACM_NONE	UINT32_MAX	/* no node / no literal */
#define ACM_DENSE_MAX	(1024 * 1024)	/* bytes of DFA table, by default */

/*
 * A compact state: words at its offset in acm.sparse (the root at 0):
 * the failure state's offset, the output list's index (output states
 * only), the number of edges, the depth, then each edge as class and
 * target offset.
 */
#define ACM_S_FAIL	0
#define ACM_S_OUT	1
#define ACM_S_N		2
#define ACM_S_DEPTH	3	/* the state's string's length, at most ACM_DEPTH_MAX */
#define ACM_S_EDGES	4
#define ACM_ROW		UINT32_MAX	/* ACM_S_N of a state kept as a whole row */
#define ACM_ROW_MIN	4		/* edges from which a state gets a row */
#define ACM_DEPTH_MAX	255		/* deeper states say 255: acm_scan_across only scans on */

/* A trie node; root is node 0. Dropped by a successful build. */
struct acm_node {
	uint32_t	child;	/* first child, or 0 (root is nobody's child) */
	uint32_t	next;	/* next sibling, or 0 */
	uint8_t		byte;	/* the byte on the edge from the parent */
};

struct acm_lit {
	uint32_t	node;	/* where the literal ends */
	uint32_t	id;
};

struct acm {
	/* until build */
	struct acm_node	*nodes;
	size_t		 nnodes, nodecap;
	struct acm_lit	*lits;
	size_t		 nlits, litcap;
	int		 built;

	/* after build */
	uint8_t		 cls[256];	/* byte -> class; 0: in no literal */
	size_t		 ncls;
	size_t		 nstates;
	uint32_t	 first_out;	/* states >= first_out have output */
	uint32_t	*delta;		/* nstates x ncls target row offsets, or NULL */
	size_t		 dense_max;	/* most bytes delta may take */
	uint32_t	*sparse;	/* the compact states, when delta is NULL */
	size_t		 nsparse;	/* words */
	uint32_t	 sparse_out;	/* offset of the first compact state with output */
	uint32_t	 root[256];	/* compact: the root's row, by class */
	uint8_t		*depth;		/* DFA: per state number, its string's length (capped) */
	uint32_t	*outoff;	/* per output state, then the end */
	uint32_t	*out;		/* literal ids, one run per state */
	size_t		 nout;
};

struct acm *
acm_new(void)
{
	struct acm	*a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	if ((a->nodes = calloc(1, sizeof(*a->nodes))) == NULL) {
		free(a);
		return NULL;
	}
	a->nnodes = a->nodecap = 1;	/* the root */
	a->dense_max = ACM_DENSE_MAX;
	return a;
}

void
acm_free(struct acm *a)
{
	if (a == NULL)
		return;
	free(a->nodes);
	free(a->lits);
	free(a->delta);
	free(a->depth);
	free(a->sparse);
	free(a->outoff);
	free(a->out);
	free(a);
}

void
acm_set_dense_max(struct acm *a, size_t bytes)
{
	a->dense_max = bytes;
}

/*
 * Returns the array p (of len elements of size sz) with room for n more,
 * moved or not; NULL on failure, with p left as it was.
 */
static void *
acm_grow(void *p, size_t *cap, size_t len, size_t n, size_t sz)
{
	size_t	 c;
	void	*np;

	if (n > SIZE_MAX / sz - len)
		return NULL;
	if (len + n <= *cap)
		return p;
	c = *cap ? *cap : 16;
	while (c < len + n) {
		if (c > SIZE_MAX / sz / 2)
			return NULL;
		c *= 2;
	}
	if ((np = realloc(p, c * sz)) == NULL)
		return NULL;
	*cap = c;
	return np;
}

static uint32_t
acm_child(const struct acm *a, uint32_t n, uint8_t byte)
{
	uint32_t	c;

	for (c = a->nodes[n].child; c != 0; c = a->nodes[c].next)
		if (a->nodes[c].byte == byte)
			return c;
	return ACM_NONE;
}

int
acm_add(struct acm *a, const void *lit, size_t len, uint32_t id)
{
	const uint8_t	*p = lit;
	struct acm_node	*nd;
	struct acm_lit	*nl;
	uint32_t	 n, c;
	size_t		 i;

	if (a->built || len == 0 || lit == NULL)
		return -1;
	/* node ids must stay below ACM_NONE */
	if (len >= ACM_NONE - a->nnodes)
		return -1;
	/* allocate first, so that a failure leaves the trie untouched */
	if ((nd = acm_grow(a->nodes, &a->nodecap, a->nnodes, len,
	    sizeof(*a->nodes))) == NULL)
		return -1;
	a->nodes = nd;
	if ((nl = acm_grow(a->lits, &a->litcap, a->nlits, 1,
	    sizeof(*a->lits))) == NULL)
		return -1;
	a->lits = nl;

	n = 0;
	for (i = 0; i < len; i++) {
		if ((c = acm_child(a, n, p[i])) == ACM_NONE) {
			c = (uint32_t)a->nnodes++;
			nd = &a->nodes[c];
			nd->child = 0;
			nd->byte = p[i];
			nd->next = a->nodes[n].child;
			a->nodes[n].child = c;
		}
		n = c;
	}
	a->lits[a->nlits].node = n;
	a->lits[a->nlits].id = id;
	a->nlits++;
	return 0;
}

/* Whether trie node s is kept as a whole row in the compact form (its edges, else). */
static int
acm_is_row(const struct acm *a, uint32_t s)
{
	uint32_t	u;
	size_t		n = 0;

	for (u = a->nodes[s].child; u != 0 && n < ACM_ROW_MIN; u = a->nodes[u].next)
		n++;
	return s != 0 && n >= ACM_ROW_MIN;
}

/*
 * Where trie node s goes on class c, through its failure links (the root
 * stays at the root on a byte no edge takes): a row's entry.
 */
static uint32_t
acm_goto(const struct acm *a, const uint32_t *fail, uint32_t s, size_t c)
{
	uint32_t	u;

	for (;;) {
		for (u = a->nodes[s].child; u != 0; u = a->nodes[u].next)
			if (a->cls[a->nodes[u].byte] == c)
				return u;
		if (s == 0)
			return 0;
		s = fail[s];
	}
}

/*
 * The compact form (above): records in the states' numbering (output
 * states last, BFS order within each part), so a record's offset grows
 * with its number. A state with many edges (the first bytes of a Chinese
 * character fan out to dozens) is searched on nearly every byte of a
 * message, so it keeps a whole row instead, completed through its failure
 * links like the DFA's: one lookup, never a failure link. 0, or -1 on
 * ENOMEM or when the offsets would not fit.
 */
static int
acm_build_sparse(struct acm *a, const uint32_t *queue, const uint32_t *fail,
    const uint32_t *map, const uint32_t *cnt, const uint8_t *dep)
{
	uint32_t	*off = NULL, *byn = NULL, *w, u, s;
	size_t		 i, n, c, total = 0;
	int		 rc = -1;

	if ((off = malloc(a->nstates * sizeof(*off))) == NULL ||
	    (byn = malloc(a->nstates * sizeof(*byn))) == NULL)
		goto out;
	for (i = 0; i < a->nstates; i++)
		byn[map[queue[i]]] = queue[i];	/* trie node of each number */
	for (i = 0; i < a->nstates; i++) {
		s = byn[i];
		if (acm_is_row(a, s))
			n = (a->ncls + 1) / 2;	/* the row: ncls words, in pairs' room */
		else
			for (n = 0, u = a->nodes[s].child; u != 0; u = a->nodes[u].next)
				n++;
		if (total > UINT32_MAX - ACM_S_EDGES - 2 * n)
			goto out;
		off[s] = (uint32_t)total;
		if (i == a->first_out)
			a->sparse_out = (uint32_t)total;
		total += ACM_S_EDGES + 2 * n;
	}
	if (a->first_out == a->nstates)
		a->sparse_out = (uint32_t)total;
	if ((a->sparse = calloc(total, sizeof(*a->sparse))) == NULL)
		goto out;
	a->nsparse = total;
	for (i = 0; i < a->nstates; i++) {
		s = byn[i];
		w = a->sparse + off[s];
		w[ACM_S_FAIL] = off[fail[s]];
		w[ACM_S_OUT] = cnt[s] ? map[s] - a->first_out : 0;
		w[ACM_S_DEPTH] = dep[s];
		if (acm_is_row(a, s)) {
			w[ACM_S_N] = ACM_ROW;
			for (c = 0; c < a->ncls; c++)
				w[ACM_S_EDGES + c] = off[acm_goto(a, fail, s, c)];
			continue;
		}
		n = 0;
		for (u = a->nodes[s].child; u != 0; u = a->nodes[u].next) {
			w[ACM_S_EDGES + 2 * n] = a->cls[a->nodes[u].byte];
			w[ACM_S_EDGES + 2 * n + 1] = off[u];
			n++;
		}
		w[ACM_S_N] = (uint32_t)n;
	}
	/* the root's whole row: a byte no edge takes stays at the root (0) */
	memset(a->root, 0, sizeof(a->root));
	for (u = a->nodes[0].child; u != 0; u = a->nodes[u].next)
		a->root[a->cls[a->nodes[u].byte]] = off[u];
	rc = 0;
out:
	free(off);
	free(byn);
	return rc;
}

/*
 * Builds the DFA from the trie. On failure the automaton is left unbuilt
 * with its literals, so a later acm_build may succeed.
 */
int
acm_build(struct acm *a)
{
	uint32_t	*queue = NULL, *fail = NULL, *cnt = NULL, *map = NULL;
	uint32_t	*own = NULL, *litnext = NULL;
	uint8_t		*dep = NULL;
	uint32_t	 r, u, f, v, s, l, k, n0;
	size_t		 head, tail, i, c;
	uint64_t	 nout;
	uint8_t		 used[256], b;
	int		 rc = -1;

	if (a->built)
		return 0;
	a->nstates = a->nnodes;

	/* byte classes */
	memset(used, 0, sizeof(used));
	for (i = 1; i < a->nnodes; i++)
		used[a->nodes[i].byte] = 1;
	for (c = 0, i = 0; i < 256; i++)
		c += used[i];
	if (c == 256) {
		/* no byte is left over for class 0 */
		for (i = 0; i < 256; i++)
			a->cls[i] = (uint8_t)i;
		a->ncls = 256;
	} else {
		a->ncls = 1;
		for (i = 0; i < 256; i++)
			a->cls[i] = used[i] ? (uint8_t)a->ncls++ : 0;
	}

	if ((queue = malloc(a->nstates * sizeof(*queue))) == NULL ||
	    (fail = malloc(a->nstates * sizeof(*fail))) == NULL ||
	    (cnt = calloc(a->nstates, sizeof(*cnt))) == NULL ||
	    (map = malloc(a->nstates * sizeof(*map))) == NULL ||
	    (own = malloc(a->nstates * sizeof(*own))) == NULL ||
	    (dep = calloc(a->nstates, sizeof(*dep))) == NULL ||
	    (a->nlits &&
	    (litnext = malloc(a->nlits * sizeof(*litnext))) == NULL))
		goto err;

	/* each state's own literals, as lists in the order added */
	for (i = 0; i < a->nstates; i++)
		own[i] = ACM_NONE;
	for (i = a->nlits; i-- > 0; ) {
		s = a->lits[i].node;
		litnext[i] = own[s];
		own[s] = (uint32_t)i;
		cnt[s]++;
	}

	/*
	 * Failure links by BFS, walking failure links here, once, so that the
	 * scan never does. cnt becomes the length of the flattened output
	 * list: own literals plus those of the failure state.
	 */
	head = tail = 0;
	queue[tail++] = 0;
	fail[0] = 0;
	while (head < tail) {
		r = queue[head++];
		for (u = a->nodes[r].child; u != 0; u = a->nodes[u].next) {
			queue[tail++] = u;
			dep[u] = dep[r] < ACM_DEPTH_MAX ? dep[r] + 1 : ACM_DEPTH_MAX;
			/* longest proper suffix of u's string in the trie */
			f = 0;
			if (r != 0) {
				b = a->nodes[u].byte;
				for (f = fail[r]; (v = acm_child(a, f, b)) ==
				    ACM_NONE && f != 0; f = fail[f])
					;
				f = v != ACM_NONE ? v : 0;
			}
			fail[u] = f;
			if (cnt[f] > UINT32_MAX - cnt[u])
				goto err;
			cnt[u] += cnt[f];
		}
	}

	/* number states without output first, BFS order within each part */
	n0 = 0;
	for (i = 0; i < a->nstates; i++)
		if (cnt[queue[i]] == 0)
			map[queue[i]] = n0++;
	a->first_out = n0;
	k = n0;
	nout = 0;
	for (i = 0; i < a->nstates; i++) {
		s = queue[i];
		if (cnt[s] != 0) {
			map[s] = k++;
			nout += cnt[s];
			if (nout > UINT32_MAX)
				goto err;
		}
	}

	/* flattened output lists; a failure state's list is done before */
	if ((a->outoff = malloc((a->nstates - n0 + 1) *
	    sizeof(*a->outoff))) == NULL ||
	    (nout && (a->out = malloc(nout * sizeof(*a->out))) == NULL))
		goto err;
	a->nout = (size_t)nout;
	nout = 0;
	for (i = 0; i < a->nstates; i++) {
		s = queue[i];
		if (cnt[s] == 0)
			continue;
		a->outoff[map[s] - n0] = (uint32_t)nout;
		for (l = own[s]; l != ACM_NONE; l = litnext[l])
			a->out[nout++] = a->lits[l].id;
		f = fail[s];
		if (cnt[f] != 0) {
			memcpy(a->out + nout, a->out + a->outoff[map[f] - n0],
			    cnt[f] * sizeof(*a->out));
			nout += cnt[f];
		}
	}
	a->outoff[a->nstates - n0] = (uint32_t)nout;

	if (a->ncls > UINT32_MAX / a->nstates ||
	    a->nstates * a->ncls > a->dense_max / sizeof(*a->delta)) {
		if (acm_build_sparse(a, queue, fail, map, cnt, dep) == -1)
			goto err;
		goto done;
	}
	if ((a->depth = malloc(a->nstates)) == NULL)
		goto err;
	for (i = 0; i < a->nstates; i++)
		a->depth[map[i]] = dep[i];
	/*
	 * The DFA, in BFS order: a state's row is its failure state's row
	 * (already complete, being shallower) overridden by its trie edges.
	 * Row offsets must fit the 32-bit entries.
	 */
	if ((a->delta = calloc(a->nstates * a->ncls, sizeof(*a->delta))) ==
	    NULL)
		goto err;
	for (i = 0; i < a->nstates; i++) {
		s = queue[i];
		if (s != 0)
			memcpy(a->delta + map[s] * a->ncls,
			    a->delta + map[fail[s]] * a->ncls,
			    a->ncls * sizeof(*a->delta));
		for (u = a->nodes[s].child; u != 0; u = a->nodes[u].next) {
			c = a->cls[a->nodes[u].byte];
			a->delta[map[s] * a->ncls + c] =
			    map[u] * (uint32_t)a->ncls;
		}
	}

done:
	/* the trie and the literal records are not needed any more */
	free(a->nodes);
	a->nodes = NULL;
	a->nnodes = a->nodecap = 0;
	free(a->lits);
	a->lits = NULL;
	a->litcap = 0;
	a->built = 1;
	rc = 0;
	goto out;

err:
	free(a->delta);
	a->delta = NULL;
	free(a->depth);
	a->depth = NULL;
	free(a->sparse);
	a->sparse = NULL;
	a->nsparse = 0;
	free(a->outoff);
	a->outoff = NULL;
	free(a->out);
	a->out = NULL;
	a->nout = 0;
	a->nstates = 0;
out:
	free(queue);
	free(fail);
	free(cnt);
	free(map);
	free(own);
	free(litnext);
	free(dep);
	return rc;
}

/*
 * Reports the literals of output list k (ending at end); 1 when cb stops
 * the scan. Kept out of line and cold, so that the scan loop keeps its
 * values in registers.
 */
static int __attribute__((noinline, cold))
acm_report(const struct acm *a, uint32_t k, size_t end, acm_cb cb, void *arg)
{
	const uint32_t	*o = a->outoff + k;
	uint32_t	 i;

	for (i = o[0]; i < o[1]; i++)
		if (cb(a->out[i], end, arg))
			return 1;
	return 0;
}

/*
 * The compact form's scan: a state's edges, else its failure state's.
 * With across, past byte from it stops once the state is no longer than
 * what was read since (acm_scan_across).
 */
static inline __attribute__((always_inline)) int
acm_scan_sparse(const struct acm *a, const uint8_t *p, size_t len,
    size_t from, int across, acm_cb cb, void *arg)
{
	const uint8_t	*e = p + len, *start = p;
	const uint32_t	*w;
	uint32_t	 s = 0, c, n, k;
	size_t		 at;

	while (p < e) {
		c = a->cls[*p++];
		for (;;) {
			if (s == 0) {
				s = a->root[c];
				break;
			}
			w = a->sparse + s;
			if ((n = w[ACM_S_N]) == ACM_ROW) {
				s = w[ACM_S_EDGES + c];
				break;
			}
			for (k = 0; k < n; k++)
				if (w[ACM_S_EDGES + 2 * k] == c)
					break;
			if (k < n) {
				s = w[ACM_S_EDGES + 2 * k + 1];
				break;
			}
			s = w[ACM_S_FAIL];
		}
		if (__builtin_expect(s >= a->sparse_out, 0) &&
		    acm_report(a, a->sparse[s + ACM_S_OUT],
		    (size_t)(p - start), cb, arg))
			return 1;
		if (across && (at = (size_t)(p - start)) >= from &&
		    (s == 0 || a->sparse[s + ACM_S_DEPTH] <= at - from))
			break;
	}
	return 0;
}

/*
 * One class load (off the dependency chain) and one table load per byte;
 * the output test is a compare, as output states come last. With across,
 * as acm_scan_sparse; inlined into each caller, so that acm_scan's loop
 * does not test it.
 */
static inline __attribute__((always_inline)) int
acm_scan_any(const struct acm *a, const void *text, size_t len, size_t from,
    int across, acm_cb cb, void *arg)
{
	const uint8_t	*p = text, *e, *cls = a->cls;
	const uint32_t	*t = a->delta;
	size_t		 s = 0, first, at;	/* size_t: no zero-extension per byte */

	/* never built, or nothing to find (text may be NULL when len is 0) */
	if (!a->built || a->first_out == a->nstates || len == 0)
		return 0;
	if (t == NULL)
		return acm_scan_sparse(a, text, len, from, across, cb, arg);
	e = p + len;
	first = a->first_out * a->ncls;
	while (p < e) {
		s = t[s + cls[*p++]];
		if (__builtin_expect(s >= first, 0) &&
		    acm_report(a, (uint32_t)(s / a->ncls - a->first_out),
		    (size_t)(p - (const uint8_t *)text), cb, arg))
			return 1;
		if (across && (at = (size_t)(p - (const uint8_t *)text)) >= from &&
		    a->depth[s / a->ncls] <= at - from)
			break;
	}
	return 0;
}

int
acm_scan(const struct acm *a, const void *text, size_t len, acm_cb cb,
    void *arg)
{
	return acm_scan_any(a, text, len, 0, 0, cb, arg);
}

int
acm_scan_across(const struct acm *a, const void *text, size_t len,
    size_t from, acm_cb cb, void *arg)
{
	return acm_scan_any(a, text, len, from, 1, cb, arg);
}

size_t
acm_count(const struct acm *a)
{
	return a->nlits;
}

size_t
acm_states(const struct acm *a)
{
	return a->built ? a->nstates : 0;
}

size_t
acm_memory(const struct acm *a)
{
	size_t	n = sizeof(*a);

	n += a->nodecap * sizeof(*a->nodes) + a->litcap * sizeof(*a->lits);
	if (a->built) {
		n += a->delta != NULL ? a->nstates * a->ncls * sizeof(*a->delta) +
		    a->nstates : a->nsparse * sizeof(*a->sparse);
		n += (a->nstates - a->first_out + 1) * sizeof(*a->outoff);
		n += a->nout * sizeof(*a->out);
	}
	return n;
}
