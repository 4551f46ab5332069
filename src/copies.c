/* copies: a customer message shown again (on another tab of the agent, a burst the backend sends again) told from a new one (pure). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chatmon/copies.h"
#include "chatmon/util.h"

#define COPIES_CAP0	64
#define COPIES_NIL	SIZE_MAX

/*
 * What was seen, in the order it came, in a ring; each also on its
 * bucket's chain (by index) of a table as large as the ring. A message is
 * known by a keyed hash of its conversation and text (ids and texts come
 * from the backend and the customers): 64 bits, two keys nobody outside
 * knows, so two messages taken for one are out of reach.
 */
struct copies_ent {
	uint64_t	key;
	int64_t		t;
	size_t		next;		/* in its bucket */
};

struct copies {
	struct util_hkey	 kconv, ktext;
	struct copies_ent	*ent;
	size_t			*bucket;	/* cap of them */
	size_t			 cap, head, n, max;
};

struct copies *
copies_new(size_t max)
{
	struct copies	*c;

	if (max == 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->max = max;
	util_hkey_random(&c->kconv);
	util_hkey_random(&c->ktext);
	return c;
}

void
copies_free(struct copies *c)
{
	if (c == NULL)
		return;
	free(c->ent);
	free(c->bucket);
	free(c);
}

size_t
copies_count(const struct copies *c)
{
	return c->n;
}

/* The oldest is forgotten: off its chain and out of the ring. */
static void
copies_pop(struct copies *c)
{
	size_t	i = c->head, *pp;

	for (pp = &c->bucket[c->ent[i].key & (c->cap - 1)]; *pp != i;
	    pp = &c->ent[*pp].next)
		;
	*pp = c->ent[i].next;
	c->head = (c->head + 1) % c->cap;
	c->n--;
}

/* A ring (and table) twice as large, what is kept laid out afresh; -1 on ENOMEM. */
static int
copies_grow(struct copies *c)
{
	struct copies_ent	*ent;
	size_t			*bucket, cap = c->cap ? c->cap * 2 : COPIES_CAP0;
	size_t			 i, k;

	if ((ent = malloc(cap * sizeof(*ent))) == NULL ||
	    (bucket = malloc(cap * sizeof(*bucket))) == NULL) {
		free(ent);
		return -1;
	}
	for (i = 0; i < cap; i++)
		bucket[i] = COPIES_NIL;
	for (i = 0; i < c->n; i++) {
		ent[i] = c->ent[(c->head + i) % c->cap];
		k = ent[i].key & (cap - 1);
		ent[i].next = bucket[k];
		bucket[k] = i;
	}
	free(c->ent);
	free(c->bucket);
	c->ent = ent;
	c->bucket = bucket;
	c->cap = cap;
	c->head = 0;
	return 0;
}

/*
 * A conversation's end is kept as an entry of its own, of this key (the
 * conversation's hash with no text's: a keyed hash equal to this constant
 * is out of reach): a message the same conversation shows again after it
 * is a new conversation's, not a copy. Ends are many, copies few: the end
 * is looked for only when a copy is found.
 */
#define COPIES_END	UINT64_C(0x9e3779b97f4a7c15)

/* The newest entry of key within COPIES_MS, or NULL. */
static const struct copies_ent *
copies_find(const struct copies *c, uint64_t key, int64_t now_ms)
{
	size_t	i;

	if (c->cap > 0)		/* a chain is newest first */
		for (i = c->bucket[key & (c->cap - 1)]; i != COPIES_NIL;
		    i = c->ent[i].next)
			if (c->ent[i].key == key &&
			    now_ms - c->ent[i].t < COPIES_MS)
				return &c->ent[i];
	return NULL;
}

/* How many came after e: the ring is in the order they came. */
static size_t
copies_age(const struct copies *c, const struct copies_ent *e)
{
	return (c->head + c->n - 1 + c->cap - (size_t)(e - c->ent)) % c->cap;
}

/* Remembers key at now_ms, forgetting what is too old or too many; -1 on ENOMEM. */
static int
copies_put(struct copies *c, uint64_t key, int64_t now_ms)
{
	size_t	i;

	/* what is older than COPIES_MS can be the first of nothing now */
	while (c->n > 0 && now_ms - c->ent[c->head].t >= COPIES_MS)
		copies_pop(c);
	if (c->n >= c->max)
		copies_pop(c);
	if (c->n == c->cap && copies_grow(c) == -1)
		return -1;
	i = (c->head + c->n) % c->cap;
	c->ent[i].key = key;
	c->ent[i].t = now_ms;
	c->ent[i].next = c->bucket[key & (c->cap - 1)];
	c->bucket[key & (c->cap - 1)] = i;
	c->n++;
	return 0;
}

int
copies_seen(struct copies *c, const char *conv, size_t conv_len,
    const char *text, size_t len, int64_t now_ms)
{
	const struct copies_ent	*e, *end;
	uint64_t		 hc, key;

	hc = util_hash(&c->kconv, conv, conv_len);
	key = hc ^ util_hash(&c->ktext, text, len);
	/* a copy unless the conversation ended after it came (later in the ring) */
	if ((e = copies_find(c, key, now_ms)) != NULL &&
	    ((end = copies_find(c, hc ^ COPIES_END, now_ms)) == NULL ||
	    copies_age(c, end) > copies_age(c, e)))
		return 1;
	return copies_put(c, key, now_ms);
}

void
copies_end(struct copies *c, const char *conv, size_t conv_len,
    int64_t now_ms)
{
	/* out of memory: a message shown again soon after may pass for a copy */
	(void)copies_put(c, util_hash(&c->kconv, conv, conv_len) ^ COPIES_END,
	    now_ms);
}
