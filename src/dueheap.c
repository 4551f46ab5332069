/*
 * dueheap: an indexed binary min-heap of deadlines (pure; no I/O).
 *
 * slaclock keeps every held conversation's next SLA deadline here and arms
 * one timer at the earliest (src/slaclock.c says why not one libevent
 * timer each). Ties go to the node set first, as timers of the same
 * deadline fire in the order they were armed.
 */
#include <stdlib.h>

#include "chatmon/dueheap.h"

void
dueheap_init(struct dueheap *h)
{
	h->v = NULL;
	h->n = h->cap = 0;
	h->seq = 0;
}

void
dueheap_free(struct dueheap *h)
{
	size_t	i;

	for (i = 0; i < h->n; i++)
		h->v[i]->at = 0;
	free(h->v);
	dueheap_init(h);
}

static int
dueheap_before(const struct dueheap_node *a, const struct dueheap_node *b)
{
	return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void
dueheap_put(struct dueheap *h, size_t i, struct dueheap_node *n)
{
	h->v[i] = n;
	n->at = i + 1;
}

/* Moves the node at i up or down to its place. */
static void
dueheap_fix(struct dueheap *h, size_t i)
{
	struct dueheap_node	*n = h->v[i];
	size_t			 c;

	while (i > 0 && dueheap_before(n, h->v[(i - 1) / 2])) {
		dueheap_put(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && dueheap_before(h->v[c + 1], h->v[c]))
			c++;
		if (!dueheap_before(h->v[c], n))
			break;
		dueheap_put(h, i, h->v[c]);
		i = c;
	}
	dueheap_put(h, i, n);
}

int
dueheap_set(struct dueheap *h, struct dueheap_node *n, int64_t due)
{
	struct dueheap_node	**v;
	size_t			  cap;

	n->due = due;
	n->seq = h->seq++;
	if (n->at != 0) {
		dueheap_fix(h, n->at - 1);
		return 0;
	}
	if (h->n == h->cap) {
		cap = h->cap ? h->cap * 2 : 64;
		if (cap > SIZE_MAX / sizeof(*v) ||
		    (v = realloc(h->v, cap * sizeof(*v))) == NULL)
			return -1;
		h->v = v;
		h->cap = cap;
	}
	h->v[h->n++] = n;
	dueheap_fix(h, h->n - 1);
	return 0;
}

void
dueheap_del(struct dueheap *h, struct dueheap_node *n)
{
	size_t	i;

	if (n->at == 0)
		return;
	i = n->at - 1;
	n->at = 0;
	if (i == --h->n)
		return;
	h->v[i] = h->v[h->n];
	dueheap_fix(h, i);
}

struct dueheap_node *
dueheap_top(const struct dueheap *h)
{
	return h->n ? h->v[0] : NULL;
}

size_t
dueheap_size(const struct dueheap *h)
{
	return h->n;
}
