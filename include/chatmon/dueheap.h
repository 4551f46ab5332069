/* dueheap: an indexed min-heap of deadlines, earliest first, equal ones in the order set (pure; no I/O). */
#ifndef CHATMON_DUEHEAP_H
#define CHATMON_DUEHEAP_H

#include <stddef.h>
#include <stdint.h>

/*
 * The caller embeds a node in each thing that has a deadline and keeps it
 * there while it is in the heap; the heap holds pointers to the nodes and
 * each node its place, so that moving or removing one is O(log n) with no
 * search. A node is zeroed (or dueheap_node_init) before first use.
 */
struct dueheap_node {
	int64_t		due;
	uint64_t	seq;	/* order of dueheap_set among equal deadlines */
	size_t		at;	/* 1 + index in the heap; 0: not in it */
};

struct dueheap {
	struct dueheap_node	**v;
	size_t			  n, cap;
	uint64_t		  seq;
};

void	dueheap_init(struct dueheap *);
void	dueheap_free(struct dueheap *);	/* the nodes are the caller's */
/* Puts node in the heap at due, or moves it there; -1 on ENOMEM (node then out of it). */
int	dueheap_set(struct dueheap *, struct dueheap_node *, int64_t due);
/* Takes node out; nothing when it is not in. */
void	dueheap_del(struct dueheap *, struct dueheap_node *);
/* The earliest node (left in), or NULL when the heap is empty. */
struct dueheap_node *dueheap_top(const struct dueheap *);
size_t	dueheap_size(const struct dueheap *);

static inline int
dueheap_in(const struct dueheap_node *n)
{
	return n->at != 0;
}

#endif
